/* The network layer against real sockets on 127.0.0.1: fd readiness, streams (connect, read, readline,
 * readexactly, write, drain, errors), the stream server. Real time, but every wait has a deadline in ms,
 * so a broken test fails fast instead of hanging. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "net_util.h"

static int net_run(async_task *main) {
    async_loop *loop = async_loop_new(0);
    int rc;
    ASSERT(loop != NULL);
    rc = async_run(loop, main);
    async_loop_free(loop);
    return rc;
}

static double net_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- fd readiness ---- */

typedef struct {
    async_task task;
    async_io io;
    int fd;
    int32_t ms;
    unsigned events;
    int write;
} net_wait_frame;

static async_status net_wait_run(async_task *t) {
    net_wait_frame *f = (net_wait_frame *)t;
    ASYNC_BEGIN(t);
    if (f->write)
        AWAIT_WRITABLE(t, &f->io, f->fd, f->ms);
    else
        AWAIT_READABLE(t, &f->io, f->fd, f->ms);
    f->events = async_io_events(&f->io);
    ASYNC_END(t);
}

static async_task *net_wait(net_wait_frame *f, int fd, int write, int32_t ms) {
    ASYNC_FRAME_INIT(f, net_wait_run);
    f->fd = fd;
    f->write = write;
    f->ms = ms;
    return &f->task;
}

TEST(net_readable_when_data_arrives_writable_at_once) {
    static net_wait_frame r, w;
    int sv[2];
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    ASSERT_EQ(net_run(net_wait(&w, sv[0], 1, 1000)), 0);
    ASSERT_EQ(w.events, ASYNC_IO_WRITE);
    ASSERT_EQ(write(sv[1], "x", 1), 1);
    ASSERT_EQ(net_run(net_wait(&r, sv[0], 0, 1000)), 0);
    ASSERT_EQ(r.events, ASYNC_IO_READ);
    close(sv[0]);
    close(sv[1]);
}

TEST(net_readable_deadline_raises_timedout) {
    static net_wait_frame r;
    int sv[2];
    double t0 = net_now();
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    ASSERT_EQ(net_run(net_wait(&r, sv[0], 0, 30)), ASYNC_ETIMEDOUT);
    ASSERT(net_now() - t0 >= 0.025);
    ASSERT(net_now() - t0 < 2.0);
    close(sv[0]);
    close(sv[1]);
}

TEST(net_readable_bad_arguments) {
    static net_wait_frame r;
    async_loop *virt = async_loop_new(ASYNC_LOOP_VIRTUAL_CLOCK);
    int sv[2];
    ASSERT_EQ(net_run(net_wait(&r, -1, 0, 10)), ASYNC_EBADF);
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    ASSERT_EQ(async_run(virt, net_wait(&r, sv[0], 0, 10)), ASYNC_ENOTSUP); /* the virtual clock polls no fd */
    async_loop_free(virt);
    close(sv[0]);
    close(sv[1]);
}

typedef struct {
    async_task task;
    net_wait_frame waiter;
    async_group g;
    int fd;
} net_cancel_frame;

static async_status net_cancel_run(async_task *t) {
    net_cancel_frame *f = (net_cancel_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_SPAWN(t, &f->g, net_wait(&f->waiter, f->fd, 0, -1));
    AWAIT_SLEEP(t, 10);
    async_cancel(&f->waiter.task);
    AWAIT_GROUP(t, &f->g);
    ASYNC_END(t);
}

TEST(net_cancel_stops_the_watcher) {
    static net_cancel_frame m;
    int sv[2];
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    ASYNC_FRAME_INIT(&m, net_cancel_run);
    m.fd = sv[0];
    ASSERT_EQ(net_run(&m.task), 0);
    ASSERT(async_task_cancelled(&m.waiter.task));
    ASSERT(m.waiter.io.loop == NULL); /* watchers stopped */
    close(sv[0]);
    close(sv[1]);
}


/* ---- connect errors, write errors, back-pressure ---- */

typedef struct {
    async_task task;
    async_stream s;
    const char *host;
    int port;
    int32_t ms;
    char big[65536];
} net_connect_frame;

static async_status net_connect_run(async_task *t) {
    net_connect_frame *f = (net_connect_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT_STREAM_CONNECT(t, &f->s, f->host, f->port, f->ms);
    async_stream_close(&f->s);
    ASYNC_END(t);
}

static async_task *net_connect(net_connect_frame *f, const char *host, int port, int32_t ms) {
    ASYNC_FRAME_INIT(f, net_connect_run);
    f->host = host;
    f->port = port;
    f->ms = ms;
    return &f->task;
}

TEST(net_connect_refused) {
    static net_connect_frame f;
    ASSERT_EQ(net_run(net_connect(&f, "127.0.0.1", test_closed_port(), 1000)), ASYNC_ECONNREFUSED);
    ASSERT_EQ(async_stream_fd(&f.s), -1);
}

TEST(net_connect_bad_arguments) {
    static net_connect_frame f;
    ASSERT_EQ(net_run(net_connect(&f, "127.0.0.1", 0, 1000)), ASYNC_EINVAL);
    ASSERT_EQ(net_run(net_connect(&f, NULL, 80, 1000)), ASYNC_EINVAL);
    ASSERT_EQ(net_run(net_connect(&f, "no-such-host.invalid", 80, 2000)), ASYNC_ENXIO);
}

TEST(net_connect_localhost_name_resolves_on_a_thread) {
    static net_connect_frame f;
    int port, fd = test_listen_raw(8, &port);
    ASSERT_EQ(net_run(net_connect(&f, "localhost", port, 2000)), 0);
    ASSERT_EQ(net_run(net_connect(&f, "ip6-localhost.invalid", port, 2000)), ASYNC_ENXIO);
    close(fd);
}

TEST(net_connect_timeout_when_the_backlog_is_full) {
    static net_connect_frame f;
    int port, fd = test_listen_raw(0, &port), i, fill[8];
    double t0;
    /* fill the accept queue of a listener that never accepts: later SYNs are dropped */
    for (i = 0; i < 8; i++) {
        struct sockaddr_in a;
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_port = htons((uint16_t)port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(fill[i], (struct sockaddr *)&a, sizeof a);
    }
    t0 = net_now();
    ASSERT_EQ(net_run(net_connect(&f, "127.0.0.1", port, 100)), ASYNC_ETIMEDOUT);
    ASSERT(net_now() - t0 < 2.0);
    ASSERT_EQ(async_stream_fd(&f.s), -1); /* no half-open socket left */
    for (i = 0; i < 8; i++) close(fill[i]);
    close(fd);
}

static async_status net_backpressure_run(async_task *t) {
    net_connect_frame *f = (net_connect_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT_STREAM_CONNECT(t, &f->s, "127.0.0.1", f->port, 1000);
    ASYNC_TRY(t) {
        for (;;) { /* the peer never reads: the kernel buffers fill, then ours grows and drain waits */
            ASSERT_EQ(async_stream_write(&f->s, f->big, sizeof f->big), 0);
            AWAIT_STREAM_DRAIN(t, &f->s, 50);
        }
    }
    ASYNC_CATCH(t) {
        ASSERT_EQ(async_caught(t)->code, ASYNC_ETIMEDOUT);
        ASSERT(async_stream_pending(&f->s) > 0);
    }
    ASYNC_END_TRY(t);
    async_stream_close(&f->s);
    ASYNC_END(t);
}

TEST(net_drain_waits_for_a_slow_reader_with_deadline) {
    static net_connect_frame f;
    int port, lfd = test_listen_raw(8, &port);
    ASYNC_FRAME_INIT(&f, net_backpressure_run);
    f.port = port;
    ASSERT_EQ(net_run(&f.task), 0);
    close(lfd);
}

static async_status net_epipe_run(async_task *t) {
    net_connect_frame *f = (net_connect_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT_STREAM_CONNECT(t, &f->s, "127.0.0.1", f->port, 1000);
    f->port = accept(f->ms, NULL, NULL); /* the peer's end (in the backlog already) */
    ASSERT(f->port >= 0);
    close(f->port); /* closing it makes our writes fail: a reset, then a broken pipe */
    for (;;) {
        f->port = async_stream_write(&f->s, f->big, sizeof f->big);
        if (f->port) break;
        AWAIT_SLEEP(t, 5);
    }
    ASSERT(f->port == ASYNC_EPIPE || f->port == ASYNC_ECONNRESET);
    ASSERT_EQ(async_stream_write(&f->s, "x", 1), f->port); /* sticky */
    async_stream_close(&f->s);
    ASSERT_EQ(async_stream_write(&f->s, "x", 1), ASYNC_EBADF);
    ASYNC_END(t);
}

TEST(net_write_to_a_closed_peer_is_epipe_not_sigpipe) {
    static net_connect_frame f;
    int port, lfd = test_listen_raw(8, &port);
    ASYNC_FRAME_INIT(&f, net_epipe_run);
    f.port = port;
    f.ms = lfd;
    ASSERT_EQ(net_run(&f.task), 0); /* a SIGPIPE would have killed the test */
    close(lfd);
}

/* ---- streams and the server: an echo server, clients that exercise every read ---- */

typedef struct {
    async_task task;
    async_stream *s;
    char buf[256];
    size_t n;
} net_echo_frame;

static async_status net_echo_run(async_task *t) {
    net_echo_frame *f = (net_echo_frame *)t;
    ASYNC_BEGIN(t);
    for (;;) {
        AWAIT_STREAM_READ(t, f->s, f->buf, sizeof f->buf, &f->n, 2000);
        if (f->n == 0) break;
        if (f->n >= 5 && memcmp(f->buf, "RESET", 5) == 0) { /* abortive close: the client sees a reset */
            struct linger lg = {1, 0};
            setsockopt(async_stream_fd(f->s), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            break;
        }
        if (f->n >= 4 && memcmp(f->buf, "QUIT", 4) == 0) break;
        if (async_stream_write(f->s, f->buf, f->n)) ASYNC_THROW(t, ASYNC_EIO, "echo write failed");
        AWAIT_STREAM_DRAIN(t, f->s, 2000);
    }
    ASYNC_END(t);
}

static async_task *net_echo(void *frame, async_stream *s, void *arg) {
    net_echo_frame *f = (net_echo_frame *)frame;
    (void)arg;
    ASYNC_FRAME_INIT(f, net_echo_run);
    f->s = s;
    return &f->task;
}

/* The client side of a scenario: what it did is recorded in `log`. */
typedef struct {
    async_task task;
    async_stream c;
    async_server srv;
    async_group g;
    const char *line;
    size_t len, n;
    char buf[64];
    char log[512];
    int port;
    int scenario;
    int code;
} net_client_frame;

static void net_log(net_client_frame *f, const char *fmt, const char *p, size_t n) {
    size_t used = strlen(f->log);
    snprintf(f->log + used, sizeof f->log - used, fmt, (int)n, p);
}

static async_status net_client_run(async_task *t) {
    net_client_frame *f = (net_client_frame *)t;
    ASYNC_BEGIN(t);
    ASSERT_EQ(async_server_listen(&f->srv, f->scenario == 3 ? "::1" : "127.0.0.1", 0, 0, sizeof(net_echo_frame),
                                  net_echo, NULL), 0);
    f->port = async_server_port(&f->srv);
    ASSERT(f->port > 0);
    ASYNC_SPAWN(t, &f->g, async_server_serve(&f->srv));
    ASYNC_TRY(t) {
        AWAIT_STREAM_CONNECT(t, &f->c, f->scenario == 3 ? "::1" : "127.0.0.1", f->port, 1000);
        switch (f->scenario) { /* no await inside this switch: each case only writes */
        case 0: async_stream_write(&f->c, "hello\nwor", 9); break;
        case 1: async_stream_write(&f->c, "0123456789", 10); break;
        case 2: async_stream_write(&f->c, "RESET", 5); break;
        default: async_stream_write(&f->c, "v6\n", 3); break;
        }
        AWAIT_STREAM_DRAIN(t, &f->c, 1000);
        if (f->scenario == 0) { /* readline over a line split across two writes */
            AWAIT_STREAM_READLINE(t, &f->c, &f->line, &f->len, 100, 1000);
            net_log(f, "[%.*s]", f->line, f->len);
            async_stream_write(&f->c, "ld\nlast", 7);
            AWAIT_STREAM_DRAIN(t, &f->c, 1000);
            AWAIT_STREAM_READLINE(t, &f->c, &f->line, &f->len, 100, 1000);
            net_log(f, "[%.*s]", f->line, f->len);
            AWAIT_STREAM_READLINE(t, &f->c, &f->line, &f->len, 3, 200); /* "last": 4 > 3, no newline */
        } else if (f->scenario == 1) { /* readexactly, then the server hangs up mid-message */
            AWAIT_STREAM_READEXACTLY(t, &f->c, f->buf, 4, 1000);
            net_log(f, "[%.*s]", f->buf, 4);
            AWAIT_STREAM_READEXACTLY(t, &f->c, f->buf, 6, 1000);
            net_log(f, "[%.*s]", f->buf, 6);
            async_stream_write(&f->c, "QUIT", 4);
            AWAIT_STREAM_DRAIN(t, &f->c, 1000);
            AWAIT_STREAM_READEXACTLY(t, &f->c, f->buf, 6, 1000);
        } else if (f->scenario == 2) {
            AWAIT_STREAM_READ(t, &f->c, f->buf, sizeof f->buf, &f->n, 1000);
        } else {
            AWAIT_STREAM_READLINE(t, &f->c, &f->line, &f->len, 100, 1000);
            net_log(f, "[%.*s]", f->line, f->len);
        }
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
    async_stream_close(&f->c);
    async_server_close(&f->srv, 1000);
    AWAIT_GROUP(t, &f->g);
    ASYNC_END(t);
}

static int net_scenario(net_client_frame *f, int scenario) {
    ASYNC_FRAME_INIT(f, net_client_run);
    f->scenario = scenario;
    return net_run(&f->task);
}

TEST(net_stream_readline_across_chunks_and_overflow) {
    static net_client_frame f;
    ASSERT_EQ(net_scenario(&f, 0), 0);
    ASSERT_STR_EQ(f.log, "[hello\n][world\n]");
    ASSERT_EQ(f.code, ASYNC_EOVERFLOW);
    ASSERT_EQ(f.srv.accepted, 1);
    ASSERT_EQ(async_server_connections(&f.srv), 0);
}

TEST(net_stream_readexactly_then_eof_mid_message) {
    static net_client_frame f;
    ASSERT_EQ(net_scenario(&f, 1), 0);
    ASSERT_STR_EQ(f.log, "[0123][456789]");
    ASSERT_EQ(f.code, ASYNC_ENODATA);
}

TEST(net_stream_peer_reset_is_econnreset) {
    static net_client_frame f;
    ASSERT_EQ(net_scenario(&f, 2), 0);
    ASSERT_EQ(f.code, ASYNC_ECONNRESET);
}

TEST(net_stream_ipv6_literal) {
    static net_client_frame f;
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    if (fd < 0) {
        printf("    skipped: no IPv6\n");
        return;
    }
    close(fd);
    ASSERT_EQ(net_scenario(&f, 3), 0);
    ASSERT_EQ(f.code, 0);
}


/* ---- the server: refused connections, listen errors, misuse ---- */

static int net_refuse_count;

static async_task *net_refuse_odd(void *frame, async_stream *s, void *arg) {
    (void)arg;
    if (net_refuse_count++ % 2 == 0) return NULL; /* as if its memory could not be had: closed at once */
    return net_echo(frame, s, NULL);
}

typedef struct {
    async_task task;
    async_server srv;
    async_group g;
    async_stream c;
    char buf[16];
    size_t n;
    int i, eofs, echoes;
} net_refuse_frame;

static async_status net_refuse_run(async_task *t) {
    net_refuse_frame *f = (net_refuse_frame *)t;
    ASYNC_BEGIN(t);
    ASSERT_EQ(async_server_listen(&f->srv, "127.0.0.1", 0, 0, sizeof(net_echo_frame), net_refuse_odd, NULL), 0);
    ASYNC_SPAWN(t, &f->g, async_server_serve(&f->srv));
    for (f->i = 0; f->i < 4; f->i++) {
        AWAIT_STREAM_CONNECT(t, &f->c, "127.0.0.1", async_server_port(&f->srv), 1000);
        async_stream_write(&f->c, "ping", 4);
        ASYNC_TRY(t) {
            AWAIT_STREAM_DRAIN(t, &f->c, 1000);
            AWAIT_STREAM_READ(t, &f->c, f->buf, sizeof f->buf, &f->n, 1000);
            if (f->n == 4) f->echoes++;
            if (f->n == 0) f->eofs++;
        }
        ASYNC_CATCH(t) {
            f->eofs++; /* a reset counts as the refusal too */
        }
        ASYNC_END_TRY(t);
        async_stream_close(&f->c);
    }
    async_server_close(&f->srv, 1000);
    AWAIT_GROUP(t, &f->g);
    ASYNC_END(t);
}

TEST(net_server_refused_connection_is_closed_and_the_server_goes_on) {
    static net_refuse_frame f;
    ASYNC_FRAME_INIT(&f, net_refuse_run);
    ASSERT_EQ(net_run(&f.task), 0);
    ASSERT_EQ(f.echoes, 2);
    ASSERT_EQ(f.eofs, 2);
    ASSERT_EQ(f.srv.refused, 2);
    ASSERT_EQ(f.srv.accepted, 2);
}

TEST(net_server_listen_errors) {
    static async_server a, b;
    ASSERT_EQ(async_server_listen(&a, "127.0.0.1", 0, 0, sizeof(net_echo_frame), net_echo, NULL), 0);
    ASSERT_EQ(async_server_listen(&b, "127.0.0.1", async_server_port(&a), 0, 16, net_echo, NULL), ASYNC_EADDRINUSE);
    ASSERT_EQ(async_server_listen(&b, "127.0.0.1", 70000, 0, 16, net_echo, NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_server_listen(&b, "127.0.0.1", 0, 0, 16, NULL, NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_server_listen(NULL, "127.0.0.1", 0, 0, 16, net_echo, NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_server_listen(&b, "not-an-address", 0, 0, 16, net_echo, NULL), ASYNC_EINVAL);
    async_server_close(&a, 0); /* never served: the listening socket is closed here */
    ASSERT_EQ(async_server_listen(&b, "127.0.0.1", async_server_port(&a), 0, 16, net_echo, NULL), 0);
    async_server_close(&b, 0);
    ASSERT(async_server_serve(NULL) == NULL);
    ASSERT_EQ(async_server_port(NULL), 0);
}

static async_status net_misuse_run(async_task *t) {
    net_connect_frame *f = (net_connect_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_TRY(t) {
        AWAIT_STREAM_READ(t, &f->s, f->big, sizeof f->big, NULL, 100); /* no count pointer */
    }
    ASYNC_CATCH(t) {
        ASSERT_EQ(async_caught(t)->code, ASYNC_EINVAL);
        f->port++;
    }
    ASYNC_END_TRY(t);
    ASYNC_TRY(t) {
        AWAIT_STREAM_READEXACTLY(t, &f->s, f->big, 4, 100); /* never opened */
    }
    ASYNC_CATCH(t) {
        ASSERT_EQ(async_caught(t)->code, ASYNC_EBADF);
        f->port++;
    }
    ASYNC_END_TRY(t);
    ASYNC_TRY(t) {
        AWAIT_STREAM_DRAIN(t, (async_stream *)NULL, 100);
    }
    ASYNC_CATCH(t) {
        ASSERT_EQ(async_caught(t)->code, ASYNC_EINVAL);
        f->port++;
    }
    ASYNC_END_TRY(t);
    ASYNC_END(t);
}

TEST(net_stream_misuse_raises_clear_codes) {
    static net_connect_frame f;
    size_t len;
    ASYNC_FRAME_INIT(&f, net_misuse_run);
    ASSERT_EQ(net_run(&f.task), 0);
    ASSERT_EQ(f.port, 3);
    ASSERT_EQ(async_stream_open(NULL, -1), ASYNC_EINVAL);
    ASSERT_EQ(async_stream_open(&f.s, -1), ASYNC_EBADF);
    ASSERT_EQ(async_stream_write(&f.s, "x", 1), ASYNC_EBADF);
    ASSERT_EQ(async_stream_write(NULL, "x", 1), ASYNC_EINVAL);
    ASSERT_STR_EQ(async_stream_peek(&f.s, &len), "");
    ASSERT_EQ(len, 0);
    async_stream_close(&f.s);
    async_stream_close(NULL);
    ASSERT_EQ(async_stream_fd(NULL), -1);
}
static const test_case net_tests[] = {
    TEST_ENTRY(net_readable_when_data_arrives_writable_at_once)
    TEST_ENTRY(net_readable_deadline_raises_timedout)
    TEST_ENTRY(net_readable_bad_arguments)
    TEST_ENTRY(net_cancel_stops_the_watcher)
    TEST_ENTRY(net_connect_refused)
    TEST_ENTRY(net_connect_bad_arguments)
    TEST_ENTRY(net_connect_localhost_name_resolves_on_a_thread)
    TEST_ENTRY(net_connect_timeout_when_the_backlog_is_full)
    TEST_ENTRY(net_drain_waits_for_a_slow_reader_with_deadline)
    TEST_ENTRY(net_write_to_a_closed_peer_is_epipe_not_sigpipe)
    TEST_ENTRY(net_stream_readline_across_chunks_and_overflow)
    TEST_ENTRY(net_stream_readexactly_then_eof_mid_message)
    TEST_ENTRY(net_stream_peer_reset_is_econnreset)
    TEST_ENTRY(net_stream_ipv6_literal)
    TEST_ENTRY(net_server_refused_connection_is_closed_and_the_server_goes_on)
    TEST_ENTRY(net_server_listen_errors)
    TEST_ENTRY(net_stream_misuse_raises_clear_codes)
    {NULL, NULL}
};
