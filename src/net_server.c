/* asyncio.start_server: a listening socket, an accept loop, a task per connection.
 *
 * Each connection is one allocation: a small wrapper task, the stream, and the user's frame. The wrapper
 * awaits the user's task inline (no extra scheduling hop), swallows its error (a reset peer ends one
 * connection, never the server), closes the stream, and moves itself to the server's zombie list: a
 * task's memory cannot be freed by its own last step, so a call deferred to the end of the pass (the
 * hosted loop's) frees ended connections after the pass that ended them. Connections are root tasks of
 * the loop rather than children of a task group: a group keeps its finished children linked until all
 * have ended, which a server never reaches.
 *
 * async_server_listen on a thread where a simulated loop is current (async__sim_current: it has no loop
 * argument) listens in that loop's world (srv->world), and the server's system calls go to the world's
 * counterparts (sim_net.h); serving it on another loop than that world's is ASYNC_EINVAL. */
#include "net.h"
#include "sim_net.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define ACCEPT_BATCH 64
#define LISTEN_BACKLOG 4096
#define POOL_MAX 64

typedef struct net_conn {
    async_task task; /* the wrapper */
    async_server *srv;
    struct net_conn *next, *prev;
    async_task *user;
    bool started, cancelled;
    async_stream stream;
    union {
        void *p;
        double d;
        long long ll;
    } frame[]; /* the user's frame, srv->frame_size bytes */
} net_conn;

typedef char reaper_fits[sizeof(async__cb) <= sizeof(((async_server *)0)->reaper) ? 1 : -1];

static const async_error server_closed = {ASYNC_ESHUTDOWN, "server closed"};

static async__cb *reaper(async_server *srv) { return (async__cb *)(void *)srv->reaper.bytes; }

/* Frees ended connections, keeping up to POOL_MAX of their blocks for the next ones (a block is the
 * wrapper, the stream and the user's frame: the HTTP server's holds a connection's buffers and its
 * handlers' frames, so a busy server stops going to malloc for them). */
static void reap(async_server *srv) {
    net_conn *c = (net_conn *)srv->zombies;
    srv->zombies = NULL;
    while (c) {
        net_conn *next = c->next;
        if (srv->npool < POOL_MAX) {
            c->next = (net_conn *)srv->pool;
            srv->pool = c;
            srv->npool++;
        } else {
            free(c);
        }
        c = next;
    }
}

static void free_pool(async_server *srv) {
    net_conn *c = (net_conn *)srv->pool;
    while (c) {
        net_conn *next = c->next;
        free(c);
        c = next;
    }
    srv->pool = NULL;
    srv->npool = 0;
}

/* A zeroed block for a new connection: one of the pool's, or a new one. */
static net_conn *conn_alloc(async_server *srv) {
    net_conn *c = (net_conn *)srv->pool;
    if (!c) return (net_conn *)calloc(1, sizeof *c + srv->frame_size);
    srv->pool = c->next;
    srv->npool--;
    memset(c, 0, sizeof *c + srv->frame_size);
    return c;
}

static void reaper_fn(async_loop *loop, async__cb *cb) {
    async_server *srv = (async_server *)(void *)((char *)cb - offsetof(async_server, reaper));
    (void)loop;
    reap(srv);
}

static void conn_unlink(net_conn *c) {
    async_server *srv = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->live = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = NULL;
    srv->nlive--;
}

static void conn_end(net_conn *c) {
    async_server *srv = c->srv;
    async_stream_close(&c->stream);
    conn_unlink(c);
    c->next = (net_conn *)srv->zombies;
    srv->zombies = c;
    async__loop_defer(async_task_loop(&c->task), reaper(srv)); /* freed once this pass is over */
    /* idle is pending here: it completes only when nlive drops to 0, and accept_some re-arms it */
    if (srv->closing && srv->nlive == 0) async_future_set_value(&srv->idle, 0);
}

static async_status conn_run(async_task *t) {
    net_conn *c = (net_conn *)t;
    ASYNC_BEGIN(t);
    c->started = true;
    if (!c->cancelled) {
        ASYNC_TRY(t) {
            if (c->srv->tls) { /* https and the like: the handshake first (tls.c's, through the server) */
                ASYNC_TRY(t) {
                    ASYNC__AWAIT(t, c->srv->tls_start(t, &c->stream, (async_tls_ctx *)c->srv->tls, NULL, true,
                                                      c->srv->tls_ms),
                                 c->srv->tls_check(t, &c->stream));
                }
                ASYNC_CATCH(t) {
                    if (async_caught(t)->code != ASYNC_ECANCELED) c->srv->tls_failed++;
                    ASYNC_RERAISE(t);
                }
                ASYNC_END_TRY(t);
            }
            AWAIT(t, c->user);
        }
        ASYNC_CATCH(t) {
            /* the connection's own error (reset, timeout, cancelled at shutdown) ends it alone */
        }
        ASYNC_END_TRY(t);
    }
    conn_end(c);
    ASYNC_END(t);
}

static void conn_cancel(net_conn *c) {
    if (c->started)
        async_cancel(&c->task);
    else
        c->cancelled = true; /* not stepped yet: its body will skip the user's task */
}

static void cancel_all(async_server *srv, bool idle_only) {
    net_conn *c;
    for (c = (net_conn *)srv->live; c; c = c->next)
        if (!idle_only || net__stream_has(&c->stream, NS_IDLE)) conn_cancel(c);
}

void async_stream_set_idle(async_stream *s, bool idle) {
    if (!s || !net__stream_mark_idle(s, idle)) return;
    if (idle) {
        net_conn *c = (net_conn *)(void *)((char *)s - offsetof(net_conn, stream));
        if (c->srv->closing) conn_cancel(c);
    }
}

static void close_listener(async_server *srv) {
    /* fn is set by a successful listen: a zero-initialised server's fd 0 is not its to close */
    if (srv->fn && srv->fd >= 0) {
        async_io_stop(&srv->accept);
        if (srv->world)
            async__sim_net_close_fd((async__sim *)srv->world, srv->fd);
        else
            close(srv->fd);
        srv->fd = -1;
    }
}

int async_server_listen(async_server *srv, const char *host, int port, unsigned flags, size_t frame_size,
                        async_conn_fn fn, void *arg) {
    struct sockaddr_storage ss;
    unsigned len;
    socklen_t slen;
    int fd, one = 1, rc;
    if (!srv || !fn || port < 0 || port > 65535 || frame_size > ((size_t)1 << 30)) return ASYNC_EINVAL;
    memset(srv, 0, sizeof *srv);
    srv->fd = -1;
    if (!net__numeric_addr(host, port, &ss, &len)) return ASYNC_EINVAL; /* listen on an address, not a name */
    if ((srv->world = async__sim_current()) != NULL) { /* SO_REUSEPORT means nothing in the world */
        rc = async__sim_net_listen((async__sim *)srv->world, (struct sockaddr *)&ss, len, &fd, &srv->port);
        if (rc) {
            srv->world = NULL;
            return rc;
        }
        goto listening;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return async__errno_code(errno);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if ((flags & ASYNC_SERVER_REUSEPORT) && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) {
        rc = async__errno_code(errno);
        close(fd);
        return rc;
    }
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
        rc = async__errno_code(errno);
        close(fd);
        return rc;
    }
    slen = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &slen);
    srv->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)(void *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)(void *)&ss)->sin_port);
listening:
    srv->fd = fd;
    srv->frame_size = frame_size;
    srv->fn = fn;
    srv->arg = arg;
    srv->grace_ms = -1;
    return 0;
}

int async_server_port(const async_server *srv) { return srv ? srv->port : 0; }
size_t async_server_connections(const async_server *srv) { return srv ? srv->nlive : 0; }
bool async_server_closing(const async_server *srv) { return srv && srv->closing; }

/* Serves an accepted connection: a task of its own on the server's loop. */
static void serve_fd(async_server *srv, async_loop *loop, int fd) {
    int one = 1;
    net_conn *c;
    if (!srv->world) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c = conn_alloc(srv);
    if (!c) { /* ASYNC_ENOMEM for this connection: it is closed, the server goes on */
        if (srv->world)
            async__sim_net_close_fd((async__sim *)srv->world, fd);
        else
            close(fd);
        srv->refused++;
        return;
    }
    c->srv = srv;
    net__stream_adopt(&c->stream, fd, srv->world); /* accept4 made it non-blocking */
    net__stream_mark(&c->stream, NS_SERVER, true);
    c->user = srv->fn(c->frame, &c->stream, srv->arg);
    if (!c->user) {
        async_stream_close(&c->stream);
        free(c);
        srv->refused++;
        return;
    }
    async_task_init(&c->task, conn_run); /* a fresh task on the server's own loop: neither can fail */
    async_spawn(loop, &c->task);
    c->next = (net_conn *)srv->live;
    if (c->next) c->next->prev = c;
    srv->live = c;
    srv->nlive++;
    srv->accepted++;
    /* fn closed the server (with no connection live, `idle` is complete): now there is one to wait
     * for, or the accept loop would spin on the complete future while this connection never runs */
    if (srv->closing && async_future_done(&srv->idle)) async_future_init(&srv->idle);
}

/* Accepts what is waiting (up to a batch). ASYNC_EMFILE when out of descriptors, else 0. */
static int accept_some(async_server *srv, async_loop *loop) {
    int i;
    for (i = 0; i < ACCEPT_BATCH && srv->fd >= 0; i++) {
        int fd;
        if (srv->world) {
            fd = async__sim_net_accept((async__sim *)srv->world, srv->fd);
            if (fd < 0) return fd == ASYNC_ENOMEM ? ASYNC_EMFILE : 0; /* EAGAIN: none waits */
            serve_fd(srv, loop, fd);
            continue;
        }
        fd = accept4(srv->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) return ASYNC_EMFILE;
            return 0; /* EAGAIN, or an error of this one connection */
        }
        serve_fd(srv, loop, fd);
    }
    return 0;
}

/* ---- native accepts (a loop whose backend does them: io_uring) ---- */

/* The accept loop waits for an accept the kernel does, not for readiness and an accept4 of its own.
 * The wait's value is the new descriptor or the accept's error; a descriptor handed out by a stop after
 * the wait ended (the server closes, or the loop goes) is closed: to the client it is a connection the
 * closing listener had not taken yet. */
static void accept_done(async__req *r, int res) {
    async_io *w = net__io_of(r);
    if (!async_future_done(&w->ready))
        async_future_set_value(&w->ready, res);
    else if (res >= 0)
        close(res);
}

static int accept_start(async_task *t, async_server *srv) {
    static const async__req_op none = {NULL, 0, 0};
    return net__io_native_start(t, &srv->accept, ASYNC__REQ_ACCEPT, srv->fd, &none, -1, accept_done);
}

/* The native accept's check. A wait that ends otherwise than with its value (the task was cancelled
 * after the kernel had accepted, or the stop inside the check handed the connection out) closes the
 * descriptor the future holds: no one else will ever read it. */
static int accept_check(async_task *t, async_server *srv) {
    int rc = async__io_check(t, &srv->accept);
    if (rc != ASYNC__WAIT && rc != ASYNC__GO && async_future_done(&srv->accept.ready)) {
        intptr_t fd = async_future_value(&srv->accept.ready);
        if (fd >= 0 && !async_future_error(&srv->accept.ready)) close((int)fd);
        async_future_init(&srv->accept.ready); /* closed once: the value is gone */
    }
    return rc;
}

/* What the native accept brought: a connection served (0), ASYNC_EMFILE (out of descriptors), or
 * ASYNC_EAGAIN: another error, after which the loop waits for readiness once, so that a listener that
 * keeps failing is not asked again and again at once. */
static int accepted(async_server *srv, async_loop *loop) {
    intptr_t res = async_future_value(&srv->accept.ready);
    if (res >= 0) {
        serve_fd(srv, loop, (int)res);
        return 0;
    }
    if (res == ASYNC_ECONNABORTED) return 0;
    if (res == ASYNC_EMFILE || res == ASYNC_ENOMEM) return ASYNC_EMFILE;
    return ASYNC_EAGAIN;
}

static async_status idle_waiter_run(async_task *t) {
    async_server *srv = (async_server *)(void *)((char *)t - offsetof(async_server, waiter));
    ASYNC_BEGIN(t);
    AWAIT_FUTURE(t, &srv->idle);
    ASYNC_END(t);
}

static async_status serve_run(async_task *t) {
    async_server *srv = (async_server *)t;
    int rc = 0;
    ASYNC_BEGIN(t);
    if (srv->world ? srv->world != (void *)async__loop_sim(async_task_loop(t)) : !async__loop_has_io(async_task_loop(t))) {
        if (srv->world) ASYNC_THROW(t, ASYNC_EINVAL, "a server of a simulated world is served on that world's loop");
        ASYNC_THROW(t, ASYNC_ENOTSUP, "a server needs a loop that polls the OS (not the virtual clock)");
    }
    /* Never listened (zero-initialised: its fd 0 is not ours), or the listen failed. A listen that
     * succeeded set fn, and only a close (closing) takes its fd away. */
    if (!srv->fn) ASYNC_THROW(t, ASYNC_EBADF, "the server is not listening");
    memset(reaper(srv), 0, sizeof *reaper(srv));
    reaper(srv)->fn = reaper_fn;
    ASYNC_TRY(t) {
        while (!srv->closing) {
            if (async__loop_native(async_task_loop(t))) {
                ASYNC__AWAIT(t, accept_start(t, srv), accept_check(t, srv));
                rc = accepted(srv, async_task_loop(t)); /* read before the next await only */
            } else {
                AWAIT_READABLE(t, &srv->accept, srv->fd, -1);
                rc = accept_some(srv, async_task_loop(t));
            }
            if (rc == ASYNC_EMFILE)
                AWAIT_SLEEP(t, 50); /* out of descriptors: the listener stays readable; let some close */
            else if (rc == ASYNC_EAGAIN)
                AWAIT_READABLE(t, &srv->accept, srv->fd, -1);
        }
    }
    ASYNC_CATCH(t) {
        if (async_caught(t)->code != ASYNC_ESHUTDOWN) { /* cancelled, or the listener failed */
            srv->error = async_caught(t);
            srv->closing = true;
            srv->grace_ms = 0;
            async_future_init(&srv->idle);
        }
    }
    ASYNC_END_TRY(t);
    close_listener(srv);
    if (srv->nlive && srv->grace_ms > 0) {
        ASYNC_TRY(t) {
            async_task_init(&srv->waiter, idle_waiter_run);
            AWAIT_TIMEOUT(t, &srv->grace, srv->grace_ms, &srv->waiter);
        }
        ASYNC_CATCH(t) {
            /* the grace period ran out, or the server was cancelled (raised at the end, as documented; no
             * error is recorded yet, or grace_ms would be 0): what is left is cancelled below */
            if (async_caught(t)->code == ASYNC_ECANCELED) srv->error = async_caught(t);
        }
        ASYNC_END_TRY(t);
    }
    if (srv->grace_ms >= 0) cancel_all(srv, false);
    while (srv->nlive) { /* a frame never ends while connections it owns run: wait, even if cancelled */
        ASYNC_TRY(t) {
            AWAIT_FUTURE(t, &srv->idle);
        }
        ASYNC_CATCH(t) { /* cancelled (idle only ever completes with a value) */
            if (!srv->error) srv->error = async_caught(t);
            cancel_all(srv, false);
        }
        ASYNC_END_TRY(t);
    }
    async__loop_undefer(async_task_loop(t), reaper(srv));
    reap(srv);
    free_pool(srv);
    if (srv->error) ASYNC_THROW_ERROR(t, srv->error);
    ASYNC_END(t);
}

async_task *async_server_serve(async_server *srv) {
    if (!srv) return NULL;
    async_task_init(&srv->task, serve_run);
    return &srv->task;
}

void async_server_close(async_server *srv, int64_t grace_ms) {
    if (!srv || srv->closing) return;
    srv->closing = true;
    /* more than the loop's clock can time is no limit (this cannot fail: see net.h) */
    srv->grace_ms = grace_ms < 0 || grace_ms > ASYNC_MS_MAX ? -1 : (int32_t)grace_ms;
    async_future_init(&srv->idle);
    if (srv->nlive == 0) async_future_set_value(&srv->idle, 0);
    cancel_all(srv, true); /* idle connections end now */
    if (net__io_waiting(&srv->accept)) { /* the accept loop waits: wake it with the shutdown */
        net__io_fail(&srv->accept, &server_closed);
    } else {
        close_listener(srv); /* never served, or between waits: the loop sees `closing` */
    }
}
