/* TCP streams: connect, the read operations over one growable input buffer, write + drain.
 *
 * Every operation tries the socket first and waits for readiness only when it would block, with one
 * exception that saves a system call per message: after a recv that came back short, the kernel buffer
 * is known to be empty, so the next read waits for readiness before trying (raw libev servers do the
 * same by reading only in their ev_io callback). Output is sent at once when the socket takes it; the
 * rest is buffered and moves during AWAIT_STREAM_DRAIN. A connect to a name waits for its lookup
 * (net_resolve.c) on the write side's wait, under the connect's deadline, then connects to the first
 * address that does not fail at once.
 *
 * Once a TLS handshake has run on the stream (tls.c), the same operations go through the TLS session's
 * recv and send (net.h's net_tls) instead of the socket's, and wait for whatever readiness the session
 * asks for.
 *
 * A stream of a simulated loop (async/sim.h) holds a socket of the world (s->world): each system call
 * below goes to the world's counterpart (sim_net.h) instead, and a name other than an IP literal or
 * "localhost" is ASYNC_ENXIO at once (the world has no resolver). */
#include "net.h"
#include "sim_net.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define RBUF_MIN 4096
/* the pending read waits for a native receive into the input buffer (see recv_start) */
#define NS_NATIVE_R 0x4000u
/* the pending drain waits for a native send of the output buffer (see send_start) */
#define NS_NATIVE_W 0x8000u

/* read operations (the `op` argument of async__stream_read_start) */
enum { OP_READ = 0, OP_EXACTLY = 1, OP_LINE = 2, OP_FILL = 3 };
/* outcome of one attempt at the pending read */
enum { TRY_DONE = 1, TRY_WAIT = 2 };

int async_stream_open(async_stream *s, int fd) {
    int fl;
    if (!s) {
        if (fd >= 0) close(fd);
        return ASYNC_EINVAL;
    }
    memset(s, 0, sizeof *s);
    s->fd = -1;
    if (fd < 0) return ASYNC_EBADF;
    /* A number that is no open descriptor fails here, not at the first read: the stream would otherwise
     * close() it later, when it may belong to someone else. */
    fl = fcntl(fd, F_GETFL);
    if (fl < 0) return ASYNC_EBADF;
    if (!(fl & O_NONBLOCK)) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    s->fd = fd;
    s->flags = NS_OPEN;
    return 0;
}

static const async_error closed_under_wait = {ASYNC_EBADF, "the stream was closed under the operation"};

/* Lets go of the pending connect's name lookup (the stream closes or the connect ended). */
static void resolve_end(async_stream *s) {
    net__lookup_end((net_lookup *)s->op_buf);
    s->op_buf = NULL;
    s->flags &= ~NS_RESOLVING;
}

void async_stream_close(async_stream *s) {
    unsigned keep;
    if (!s) return;
    if (s->flags & NS_RESOLVING) resolve_end(s);
    if (s->tls) ((net_tls *)s->tls)->close(s); /* before the fd goes: close_notify, when it can */
    /* A task may wait on the stream (read, drain, connect), or have been woken and not yet resumed: the
     * memset below must not drop it from a future's wait list (a lost waiter, and a corrupt list), and
     * whatever it finds when it resumes must say that the stream is gone. So waiters are woken first and
     * both waits are left failed with ASYNC_EBADF (every operation resets its wait when it starts). */
    net__io_fail(&s->rio, &closed_under_wait);
    net__io_fail(&s->wio, &closed_under_wait);
    if (s->flags & NS_OPEN) {
        if (s->world)
            async__sim_net_close_fd((async__sim *)s->world, s->fd);
        else
            close(s->fd);
    }
    free(s->rbuf);
    free(s->wbuf);
    keep = s->flags & NS_SERVER;
    memset(s, 0, sizeof *s);
    s->fd = -1;
    s->flags = keep;
    net__io_fail(&s->rio, &closed_under_wait);
    net__io_fail(&s->wio, &closed_under_wait);
}

bool net__stream_has(const async_stream *s, unsigned flag) { return (s->flags & flag) != 0; }

void net__stream_mark(async_stream *s, unsigned flag, bool on) {
    if (on)
        s->flags |= flag;
    else
        s->flags &= ~flag;
}

bool net__stream_mark_idle(async_stream *s, bool idle) {
    if (!(s->flags & NS_SERVER)) return false;
    s->flags = idle ? s->flags | NS_IDLE : s->flags & ~NS_IDLE;
    return true;
}

int async_stream_fd(const async_stream *s) { return s && (s->flags & NS_OPEN) ? s->fd : -1; }

const char *async_stream_peek(const async_stream *s, size_t *len) {
    if (len) *len = s && s->rbuf ? s->rlen - s->rpos : 0;
    return s && s->rbuf ? s->rbuf + s->rpos : "";
}

void async_stream_consume(async_stream *s, size_t n) {
    if (!s || !s->rbuf) return;
    if (n > s->rlen - s->rpos) n = s->rlen - s->rpos;
    s->rpos += n;
    /* not while the kernel receives into the buffer after rlen (a native receive in flight) */
    if (s->rpos == s->rlen && !(s->flags & NS_NATIVE_R)) s->rpos = s->rlen = 0;
}

size_t async_stream_pending(const async_stream *s) { return s ? s->wlen - s->wpos : 0; }

/* The sticky errors a peer causes (code: an ASYNC_E* code); others are reported once. */
static int stream_fail_code(async_stream *s, int code) {
    if (code == ASYNC_ECONNRESET || code == ASYNC_EPIPE || code == ASYNC_ENOTCONN) s->error = code;
    return code;
}

/* The same for an errno value. */
static int stream_fail(async_stream *s, int err) { return stream_fail_code(s, async__errno_code(err)); }

/* The world of a stream's socket, or NULL: the OS's. */
static async__sim *world_of(const async_stream *s) { return (async__sim *)s->world; }

int32_t net__remaining(async_loop *loop, async_ms deadline, int32_t ms) {
    int32_t d;
    if (ms < 0) return -1;
    d = (int32_t)(deadline - async_loop_now(loop));
    return d > 0 ? d : 0;
}

/* The TLS session, if one speaks on the stream. */
static net_tls *tls_of(const async_stream *s) { return (net_tls *)s->tls; }

/* A read or write may not go through a TLS session whose handshake has not ended (EBUSY). */
static bool tls_busy(const async_stream *s) { return s->tls && !tls_of(s)->ready; }

/* One receive into buf: >0 bytes, 0 at the end of the stream, ASYNC_EAGAIN (wait for rwant()), or an
 * error code. A short plain recv leaves the kernel's buffer empty (NS_DRAINED); a short TLS read says
 * nothing of the socket (the session may hold more of a record), so only its EAGAIN marks it. */
static long net_recv(async_stream *s, void *buf, size_t n) {
    ssize_t r;
    if (s->tls) {
        long got = tls_of(s)->recv(s, buf, n);
        if (got == ASYNC_EAGAIN) s->flags |= NS_DRAINED;
        return got;
    }
    if (s->world) {
        long got = async__sim_net_recv(world_of(s), s->fd, buf, n, false);
        if (got == ASYNC_EAGAIN || (got >= 0 && (size_t)got < n)) s->flags |= NS_DRAINED;
        return got < 0 && got != ASYNC_EAGAIN ? stream_fail_code(s, (int)got) : got;
    }
    do r = recv(s->fd, buf, n, 0);
    while (r < 0 && errno == EINTR);
    if (r >= 0) {
        if ((size_t)r < n) s->flags |= NS_DRAINED;
        return (long)r;
    }
    if (NET_WOULD_BLOCK(errno)) {
        s->flags |= NS_DRAINED;
        return ASYNC_EAGAIN;
    }
    return stream_fail(s, errno);
}

/* One send: the bytes taken (maybe fewer than n), ASYNC_EAGAIN (wait for wwant()), or an error code. */
static long net_send(async_stream *s, const void *buf, size_t n) {
    ssize_t r;
    if (s->tls) return tls_of(s)->send(s, buf, n);
    if (s->world) {
        long took = async__sim_net_send(world_of(s), s->fd, buf, n);
        return took < 0 && took != ASYNC_EAGAIN ? stream_fail_code(s, (int)took) : took;
    }
    do r = send(s->fd, buf, n, MSG_NOSIGNAL);
    while (r < 0 && errno == EINTR);
    if (r >= 0) return (long)r;
    if (NET_WOULD_BLOCK(errno)) return ASYNC_EAGAIN;
    return stream_fail(s, errno);
}

/* The readiness the pending read / write waits for. */
static unsigned rwant(const async_stream *s) { return s->tls ? tls_of(s)->rwant : ASYNC_IO_READ; }
static unsigned wwant(const async_stream *s) { return s->tls ? tls_of(s)->wwant : ASYNC_IO_WRITE; }

/* ---- reading ---- */

/* Makes room in the input buffer for one more read, growing it up to `limit` bytes buffered (at least
 * one byte of room): 0 or ASYNC_ENOMEM. */
static int room(async_stream *s, size_t limit) {
    if (s->rpos == s->rlen) s->rpos = s->rlen = 0;
    if (s->rpos > 0 && s->rlen == s->rcap) { /* compact */
        memmove(s->rbuf, s->rbuf + s->rpos, s->rlen - s->rpos);
        s->rlen -= s->rpos;
        s->rpos = 0;
    }
    if (s->rlen == s->rcap) {
        size_t cap = s->rcap ? s->rcap * 2 : RBUF_MIN;
        char *p;
        /* Up to limit + 1 bytes (limit + 1 wraps to 0 for SIZE_MAX: no cap). Still more than rcap: the
         * callers never fill past their limit (have <= limit), and the buffer is only full here with
         * rpos == 0, so rcap == have <= limit. */
        if (cap > limit + 1 && limit + 1 > s->rcap) cap = limit + 1;
        p = (char *)realloc(s->rbuf, cap);
        if (!p) return ASYNC_ENOMEM;
        s->rbuf = p;
        s->rcap = cap;
    }
    return 0;
}

/* Reads once from the socket into the input buffer, growing it up to `limit` bytes buffered (at least
 * one byte of room). >0: bytes read; 0: end of stream; ASYNC_EAGAIN; another error. */
static long fill(async_stream *s, size_t limit) {
    long r = room(s, limit);
    if (r) return r;
    r = net_recv(s, s->rbuf + s->rlen, s->rcap - s->rlen);
    if (r > 0) s->rlen += (size_t)r;
    if (r == 0) s->flags |= NS_EOF;
    return r;
}

static size_t take(async_stream *s, void *dst, size_t n) {
    size_t have = s->rbuf ? s->rlen - s->rpos : 0;
    if (n > have) n = have;
    if (n) {
        memcpy(dst, s->rbuf + s->rpos, n);
        async_stream_consume(s, n);
    }
    return n;
}

/* One attempt at the pending read: TRY_DONE, TRY_WAIT (needs readiness) or an error code. */
static int try_read(async_stream *s, int op) {
    long r;
    for (;;) {
        size_t have = s->rbuf ? s->rlen - s->rpos : 0;
        switch (op) {
        case OP_READ:
            if (have) {
                *s->op_out = take(s, s->op_buf, s->op_n);
                return TRY_DONE;
            }
            if (s->flags & NS_EOF) {
                *s->op_out = 0;
                return TRY_DONE;
            }
            if (s->flags & NS_DRAINED) return TRY_WAIT;
            r = net_recv(s, s->op_buf, s->op_n); /* nothing buffered: straight into the caller's memory */
            if (r > 0) {
                *s->op_out = (size_t)r;
                return TRY_DONE;
            }
            if (r == 0) {
                s->flags |= NS_EOF;
                continue;
            }
            if (r == ASYNC_EAGAIN) return TRY_WAIT;
            return (int)r;
        case OP_EXACTLY:
            s->op_limit += take(s, (char *)s->op_buf + s->op_limit, s->op_n - s->op_limit);
            if (s->op_limit == s->op_n) return TRY_DONE;
            if (s->flags & NS_EOF) return ASYNC_ENODATA;
            if (s->flags & NS_DRAINED) return TRY_WAIT;
            r = fill(s, s->op_n - s->op_limit);
            break;
        case OP_LINE: {
            const char *nl = have > s->op_n ? memchr(s->rbuf + s->rpos + s->op_n, '\n', have - s->op_n) : NULL;
            if (nl || (s->flags & NS_EOF)) {
                size_t len = nl ? (size_t)(nl - (s->rbuf + s->rpos)) + 1 : have;
                if (len > s->op_limit) return ASYNC_EOVERFLOW;
                *s->op_line = have ? s->rbuf + s->rpos : "";
                *s->op_out = len;
                s->rpos += len; /* consumed, but not moved: the line stays valid until the next read */
                return TRY_DONE;
            }
            s->op_n = have; /* scanned so far */
            /* a line of exactly `limit` bytes may still end with EOF: only one more byte overflows */
            if (have > s->op_limit) return ASYNC_EOVERFLOW;
            if (s->flags & NS_DRAINED) return TRY_WAIT;
            r = fill(s, s->op_limit);
            break;
        }
        default: /* OP_FILL */
            if (have >= s->op_limit) return ASYNC_EOVERFLOW;
            if (s->flags & NS_EOF) {
                *s->op_out = 0;
                return TRY_DONE;
            }
            if (s->flags & NS_DRAINED) return TRY_WAIT;
            r = fill(s, s->op_limit);
            if (r >= 0) {
                *s->op_out = (size_t)r;
                return TRY_DONE;
            }
            break;
        }
        if (r == ASYNC_EAGAIN) return TRY_WAIT;
        if (r < 0) return (int)r;
        /* read something or hit the end: look again */
    }
}

/* ---- native receives (a loop whose backend does them: io_uring) ---- */

/* The pending read waits for a receive that the kernel does into the input buffer, not for readiness
 * and a recv of its own: the bytes are the stream's as soon as the kernel has them (a read cancelled
 * or timed out meanwhile loses none: they stay buffered for the next read). */

static async_stream *stream_of_rio(async_io *w) { return (async_stream *)(void *)((char *)w - offsetof(async_stream, rio)); }

/* A native operation's end, after its bytes were counted: a peer's error is sticky (as stream_fail
 * keeps it), and the wait is over. */
static void native_end(async_stream *s, async_io *w, int res) {
    if (res == ASYNC_ECONNRESET || res == ASYNC_EPIPE || res == ASYNC_ENOTCONN) s->error = res;
    if (async_future_done(&w->ready)) return;
    if (res >= 0)
        net__io_complete(w, res);
    else
        async_future_set_error(&w->ready, async_error_of(res));
}

/* Starts the native operation `kind` over buf[0, len) as w's wait, marked by `flag` while it waits. */
static int native_start(async_task *t, async_stream *s, async_io *w, unsigned flag, int kind, char *buf, size_t len,
                        int32_t ms, async__req_cb done) {
    async__req_op op;
    int rc;
    op.buf = buf;
    op.len = len;
    op.offset = 0;
    s->flags |= flag;
    rc = net__io_native_start(t, w, kind, s->fd, &op, ms, done);
    if (rc != ASYNC__WAIT) s->flags &= ~flag;
    return rc;
}

/* The receive's completion (also inside the stop of a receive the kernel had finished). */
static void recv_done(async__req *r, int res) {
    async_io *w = net__io_of(r);
    async_stream *s = stream_of_rio(w);
    if (res > 0) {
        s->rlen = (size_t)((char *)async__req_op_of(r)->buf - s->rbuf) + (size_t)res; /* where it landed */
        /* a short receive leaves the kernel's buffer empty: the next read waits at once */
        if ((size_t)res < async__req_op_of(r)->len)
            s->flags |= NS_DRAINED;
        else
            s->flags &= ~NS_DRAINED;
    } else if (res == 0) {
        s->flags |= NS_EOF;
    }
    native_end(s, w, res);
}

/* The limit of the input buffer for the pending read (try_read's). */
static size_t read_limit(const async_stream *s, int op) {
    if (op == OP_READ) return s->op_n;
    if (op == OP_EXACTLY) return s->op_n - s->op_limit;
    return s->op_limit;
}

static int recv_start(async_task *t, async_stream *s, int op) {
    int rc = room(s, read_limit(s, op));
    if (rc) return async__raise_error_code(t, rc);
    return native_start(t, s, &s->rio, NS_NATIVE_R, ASYNC__REQ_RECV, s->rbuf + s->rlen, s->rcap - s->rlen,
                        net__remaining(async_task_loop(t), s->rdeadline, s->rms), recv_done);
}

static int read_step(async_task *t, async_stream *s) {
    int op = (int)((s->flags >> 16) & 3u), r = try_read(s, op);
    if (r == TRY_DONE) {
        s->flags |= NS_RDONE;
        return ASYNC__GO;
    }
    if (r == TRY_WAIT) {
        if (!s->tls && async__loop_native(async_task_loop(t))) return recv_start(t, s, op);
        return async__io_start(t, &s->rio, s->fd, rwant(s),
                               net__remaining(async_task_loop(t), s->rdeadline, s->rms));
    }
    return async__raise_error_code(t, r);
}

int async__stream_read_start(async_task *t, async_stream *s, int op, void *buf, size_t n, size_t limit,
                             size_t *out, const char **line, int64_t ms) {
    if (!s || (op == OP_READ && (!buf || !n || !out)) || (op == OP_EXACTLY && n && !buf) ||
        (op == OP_LINE && (!line || !out || !limit)) || (op == OP_FILL && (!out || !limit)))
        return async__raise_error_code(t, ASYNC_EINVAL);
    if (ms > ASYNC_MS_MAX) return async__raise_error_code(t, ASYNC_ERANGE); /* the loop's clock cannot hold the deadline */
    if (!(s->flags & NS_OPEN)) return async__raise_error_code(t, ASYNC_EBADF);
    if (s->error) return async__raise_error_code(t, s->error);
    if (net__io_waiting(&s->rio) || tls_busy(s)) /* another read waits: its arguments must stay; or a handshake runs */
        return async__raise_error_code(t, ASYNC_EBUSY);
    s->flags = (s->flags & 0xFFFFu & ~NS_RDONE) | ((unsigned)op << 16);
    s->op_buf = buf;
    s->op_n = op == OP_EXACTLY ? n : op == OP_READ ? n : 0;
    s->op_limit = op == OP_EXACTLY ? 0 : limit;
    s->op_out = out;
    s->op_line = line;
    s->rms = ms < 0 ? -1 : (int32_t)ms;
    if (ms >= 0) s->rdeadline = async_loop_now(async_task_loop(t)) + (async_ms)ms;
    return read_step(t, s);
}

int async__stream_read_check(async_task *t, async_stream *s) {
    int rc;
    if (s->flags & NS_RDONE) {
        s->flags &= ~NS_RDONE;
        return ASYNC__GO;
    }
    rc = async__io_check(t, &s->rio);
    if (rc == ASYNC__WAIT) return rc;
    if (s->flags & NS_NATIVE_R) { /* the bytes are in the buffer already (recv_done) */
        s->flags &= ~NS_NATIVE_R;
        if (rc != ASYNC__GO) return rc;
        if (((s->flags >> 16) & 3u) == OP_FILL) { /* what this fill read */
            *s->op_out = async_io_events(&s->rio);
            return ASYNC__GO;
        }
    } else {
        if (rc != ASYNC__GO) return rc; /* also when the stream was closed meanwhile: ASYNC_EBADF */
        s->flags &= ~NS_DRAINED;
    }
    rc = read_step(t, s);
    if (rc == ASYNC__GO) s->flags &= ~NS_RDONE;
    return rc;
}

/* ---- native sends (a loop whose backend does them: io_uring) ---- */

/* A drain whose output the socket does not take at once waits for a send that the kernel does from the
 * output buffer, not for writability and a send of its own. Writes still go to the socket at once when
 * nothing is queued (their errors are told at the write, as on libev); what waits is in the buffer,
 * which the kernel reads while the send is in flight: a write that must move or grow the buffer stops
 * the send first (synchronously; what the kernel took counts) and wakes the drain to send the rest. */

static async_stream *stream_of_wio(async_io *w) { return (async_stream *)(void *)((char *)w - offsetof(async_stream, wio)); }

/* The send's completion (also inside the stop of a send the kernel had finished). */
static void send_done(async__req *r, int res) {
    async_io *w = net__io_of(r);
    async_stream *s = stream_of_wio(w);
    if (res > 0) {
        s->wpos += (size_t)res;
        if (s->wpos == s->wlen) s->wpos = s->wlen = 0;
    }
    native_end(s, w, res);
}

/* Stops the send in flight before the output buffer moves; the drain wakes and sends the rest. */
static void send_stop(async_stream *s) {
    async_io_stop(&s->wio);
    s->flags &= ~NS_NATIVE_W;
    net__io_complete(&s->wio, 0);
}

/* ---- writing ---- */

/* Sends buffered output. 0 when all of it went, ASYNC_EAGAIN, or an error. */
static int flush(async_stream *s) {
    while (s->wpos < s->wlen) {
        long r = net_send(s, s->wbuf + s->wpos, s->wlen - s->wpos);
        if (r < 0) return (int)r;
        s->wpos += (size_t)r;
    }
    s->wpos = s->wlen = 0;
    return 0;
}

int async_stream_write(async_stream *s, const void *data, size_t n) {
    const char *p = (const char *)data;
    if (!s || (n && !data)) return ASYNC_EINVAL;
    if (!(s->flags & NS_OPEN)) return ASYNC_EBADF;
    if (s->error) return s->error;
    if (tls_busy(s)) return ASYNC_EBUSY;
    if (!n) return 0;
    if (s->wpos == s->wlen) { /* nothing queued: hand it to the kernel now */
        for (;;) {
            /* a TLS write that would block must be offered the same bytes again: they are queued below,
             * first in the buffer, which flush hands back */
            long r = net_send(s, p, n);
            if (r == ASYNC_EAGAIN) break;
            if (r < 0) return (int)r;
            p += r;
            n -= (size_t)r;
            if (!n) return 0;
        }
    }
    if (n > s->wcap - s->wlen && (s->flags & NS_NATIVE_W)) send_stop(s); /* the buffer moves */
    if (n > s->wcap - s->wlen) { /* no room at the end (not wlen + n > wcap: that sum may wrap) */
        size_t used = s->wlen - s->wpos, cap = s->wcap ? s->wcap : RBUF_MIN;
        char *q;
        if (s->wpos) { /* compact first */
            memmove(s->wbuf, s->wbuf + s->wpos, used);
            s->wpos = 0;
            s->wlen = used;
        }
        if (used + n < used) return ASYNC_ENOMEM;
        while (cap < used + n) {
            if (cap > SIZE_MAX / 2) return ASYNC_ENOMEM;
            cap *= 2;
        }
        if (cap > s->wcap) {
            q = (char *)realloc(s->wbuf, cap);
            if (!q) return ASYNC_ENOMEM;
            s->wbuf = q;
            s->wcap = cap;
        }
    }
    memcpy(s->wbuf + s->wlen, p, n);
    s->wlen += n;
    return 0;
}

static int send_start(async_task *t, async_stream *s) {
    return native_start(t, s, &s->wio, NS_NATIVE_W, ASYNC__REQ_SEND, s->wbuf + s->wpos, s->wlen - s->wpos,
                        net__remaining(async_task_loop(t), s->wdeadline, s->wms), send_done);
}

static int drain_step(async_task *t, async_stream *s) {
    int rc = flush(s);
    if (rc == 0) {
        s->flags |= NS_WDONE;
        return ASYNC__GO;
    }
    if (rc == ASYNC_EAGAIN) {
        if (!s->tls && async__loop_native(async_task_loop(t))) return send_start(t, s);
        return async__io_start(t, &s->wio, s->fd, wwant(s), net__remaining(async_task_loop(t), s->wdeadline, s->wms));
    }
    return async__raise_error_code(t, rc);
}

int async__stream_drain_start(async_task *t, async_stream *s, int64_t ms) {
    if (!s) return async__raise_error_code(t, ASYNC_EINVAL);
    if (ms > ASYNC_MS_MAX) return async__raise_error_code(t, ASYNC_ERANGE);
    if (!(s->flags & NS_OPEN)) return async__raise_error_code(t, ASYNC_EBADF);
    if (s->error) return async__raise_error_code(t, s->error);
    if (net__io_waiting(&s->wio) || tls_busy(s)) /* another drain, the connect or a handshake waits */
        return async__raise_error_code(t, ASYNC_EBUSY);
    s->flags &= ~NS_WDONE;
    s->wms = ms < 0 ? -1 : (int32_t)ms;
    if (ms >= 0) s->wdeadline = async_loop_now(async_task_loop(t)) + (async_ms)ms;
    return drain_step(t, s);
}

int async__stream_drain_check(async_task *t, async_stream *s) {
    int rc;
    if (s->flags & NS_WDONE) {
        s->flags &= ~NS_WDONE;
        return ASYNC__GO;
    }
    rc = async__io_check(t, &s->wio);
    if (rc == ASYNC__WAIT) return rc;
    s->flags &= ~NS_NATIVE_W; /* what the kernel sent is counted already (send_done) */
    if (rc != ASYNC__GO) return rc; /* also when the stream was closed meanwhile: ASYNC_EBADF */
    rc = drain_step(t, s);
    if (rc == ASYNC__GO) s->flags &= ~NS_WDONE;
    return rc;
}

/* ---- connecting ---- */

int net__numeric_addr(const char *host, int port, struct sockaddr_storage *ss, unsigned *len) {
    struct sockaddr_in *a4 = (struct sockaddr_in *)(void *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)(void *)ss;
    char buf[64];
    size_t n;
    memset(ss, 0, sizeof *ss);
    if (!host || !*host || strcmp(host, "0.0.0.0") == 0) {
        a4->sin_family = AF_INET;
        a4->sin_addr.s_addr = htonl(INADDR_ANY);
        a4->sin_port = htons((uint16_t)port);
        *len = sizeof *a4;
        return 1;
    }
    if (strcmp(host, "localhost") == 0) host = "127.0.0.1";
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *len = sizeof *a4;
        return 1;
    }
    n = strlen(host); /* "[::1]" as in URLs, or "::1" */
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof buf) {
        memcpy(buf, host + 1, n - 2);
        buf[n - 2] = '\0';
        host = buf;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *len = sizeof *a6;
        return 1;
    }
    return 0;
}

/* Starts a non-blocking connect to a resolved address: 0 (connected), ASYNC_EINPROGRESS, or an error
 * (the socket is then closed). */
static int connect_addr(async_stream *s, async__sim *world, const struct sockaddr *sa, unsigned len) {
    int fd, one = 1, rc;
    if (world) { /* the world's socket: it always connects in the background */
        rc = async__sim_net_connect(world, sa, len, &fd);
        if (rc != ASYNC_EINPROGRESS) return rc;
        s->fd = fd;
        s->world = world;
        s->flags = (s->flags & NS_SERVER) | NS_OPEN | NS_CONNECTING;
        return rc;
    }
    fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return async__errno_code(errno);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    s->fd = fd;
    s->flags = (s->flags & NS_SERVER) | NS_OPEN;
    do rc = connect(fd, sa, (socklen_t)len);
    while (rc < 0 && errno == EINTR);
    if (rc == 0) return 0;
    if (errno == EINPROGRESS) {
        s->flags |= NS_CONNECTING;
        return ASYNC_EINPROGRESS;
    }
    rc = async__errno_code(errno);
    /* Not async_stream_close, whose memset would drop the connect's state: the name lookup and the
     * deadline that the next address of the lookup still needs. */
    close(fd);
    s->fd = -1;
    s->flags &= ~NS_OPEN;
    return rc;
}

/* The lookup's answer is back: the connect's wait ends (net_resolve.c calls it on the loop thread). */
static void resolved(void *ctx) { net__io_complete(&((async_stream *)ctx)->wio, 1); }

/* The wait for the connect's name lookup, under its deadline. */
static int resolve_start(async_task *t, async_stream *s) {
    async_loop *loop = async_task_loop(t);
    net_lookup *l;
    int err = 0, rc;
    if (!async__loop_has_io(loop)) return async__raise_error_code(t, ASYNC_ENOTSUP);
    l = net__lookup_start(loop, s->op_host, s->op_port, resolved, s, &err);
    if (!l) return async__raise_error_code(t, err);
    s->op_buf = l;
    s->flags |= NS_RESOLVING;
    rc = net__io_wait(t, &s->wio, net__remaining(loop, s->wdeadline, s->wms));
    if (rc != ASYNC__WAIT) resolve_end(s);
    return rc;
}

/* After the lookup: GO with the socket connecting (NS_CONNECTING) or connected, or a raise. */
static int resolve_done(async_task *t, async_stream *s) {
    static const async_error unknown = {ASYNC_ENXIO, "host name not resolved"};
    net_lookup *l = (net_lookup *)s->op_buf;
    struct addrinfo *res = NULL, *ai;
    int last = ASYNC_ENXIO;
    if (net__lookup_result(l, &res)) {
        resolve_end(s);
        async__raise(t, &unknown);
        return ASYNC__RAISE;
    }
    for (ai = res; ai; ai = ai->ai_next) { /* the first address that does not fail at once */
        last = connect_addr(s, NULL, ai->ai_addr, (unsigned)ai->ai_addrlen);
        if (last == 0 || last == ASYNC_EINPROGRESS) break;
    }
    resolve_end(s);
    if (last == 0 || last == ASYNC_EINPROGRESS) return ASYNC__GO;
    return async__raise_error_code(t, last);
}

int async__stream_connect_start(async_task *t, async_stream *s, const char *host, int port, int64_t ms) {
    struct sockaddr_storage ss;
    unsigned len;
    int rc;
    if (!s || !host || port <= 0 || port > 65535) return async__raise_error_code(t, ASYNC_EINVAL);
    if (ms > ASYNC_MS_MAX) return async__raise_error_code(t, ASYNC_ERANGE);
    if (s->flags & NS_OPEN) return async__raise_error_code(t, ASYNC_EBUSY);
    s->fd = -1;
    s->error = 0;
    s->world = NULL;
    s->flags &= NS_SERVER;
    s->wms = ms < 0 ? -1 : (int32_t)ms;
    if (ms >= 0) s->wdeadline = async_loop_now(async_task_loop(t)) + (async_ms)ms;
    s->op_host = host;
    s->op_port = port;
    if (!net__numeric_addr(host, port, &ss, &len)) {
        static const async_error unknown = {ASYNC_ENXIO, "host name not known in the simulated world"};
        if (!async__loop_is_sim(async_task_loop(t))) return resolve_start(t, s);
        async__raise(t, &unknown); /* the world has no resolver: IP literals and "localhost" only */
        return ASYNC__RAISE;
    }
    rc = connect_addr(s, async__loop_sim(async_task_loop(t)), (struct sockaddr *)&ss, len);
    if (rc == 0) {
        s->flags |= NS_WDONE;
        return ASYNC__GO;
    }
    if (rc != ASYNC_EINPROGRESS) return async__raise_error_code(t, rc);
    rc = async__io_start(t, &s->wio, s->fd, ASYNC_IO_WRITE, net__remaining(async_task_loop(t), s->wdeadline, ms));
    if (rc == ASYNC__RAISE) async_stream_close(s);
    return rc;
}

int async__stream_connect_check(async_task *t, async_stream *s) {
    int rc, err = 0;
    socklen_t len = sizeof err;
    if (s->flags & NS_WDONE) {
        s->flags &= ~NS_WDONE;
        return ASYNC__GO;
    }
    if (s->flags & NS_RESOLVING) {
        rc = async__io_check(t, &s->wio);
        if (rc == ASYNC__WAIT) return rc;
        if (rc == ASYNC__RAISE) { /* deadline or cancellation: the lookup's answer will be dropped */
            resolve_end(s);
            return rc;
        }
        rc = resolve_done(t, s);
        if (rc != ASYNC__GO) return rc;
        if (!(s->flags & NS_CONNECTING)) return ASYNC__GO; /* connected at once */
        rc = async__io_start(t, &s->wio, s->fd, ASYNC_IO_WRITE, net__remaining(async_task_loop(t), s->wdeadline, s->wms));
        if (rc == ASYNC__RAISE) async_stream_close(s);
        return rc;
    }
    rc = async__io_check(t, &s->wio);
    if (rc == ASYNC__WAIT) return rc;
    if (rc == ASYNC__RAISE) { /* deadline or cancellation: no half-open socket is left behind */
        async_stream_close(s);
        return rc;
    }
    s->flags &= ~NS_CONNECTING;
    if (s->world) {
        err = async__sim_net_error(world_of(s), s->fd);
    } else {
        if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
        err = err ? async__errno_code(err) : 0;
    }
    if (err) {
        async_stream_close(s);
        return async__raise_error_code(t, err);
    }
    return ASYNC__GO;
}

/* ---- what the server and HTTP call on a stream's socket, the world's or the OS's ---- */

void net__stream_adopt(async_stream *s, int fd, void *world) {
    memset(s, 0, sizeof *s);
    s->fd = fd;
    s->flags = NS_OPEN;
    s->world = world;
}

long net__stream_peek(async_stream *s, void *buf, size_t n) {
    ssize_t r;
    if (!(s->flags & NS_OPEN)) return ASYNC_EBADF;
    if (s->world) return async__sim_net_recv(world_of(s), s->fd, buf, n, true);
    do r = recv(s->fd, buf, n, MSG_PEEK | MSG_DONTWAIT);
    while (r < 0 && errno == EINTR);
    if (r >= 0) return (long)r;
    return NET_WOULD_BLOCK(errno) ? ASYNC_EAGAIN : async__errno_code(errno);
}

int net__stream_shutdown(async_stream *s) {
    if (!(s->flags & NS_OPEN)) return ASYNC_EBADF;
    if (s->world) return async__sim_net_shutdown(world_of(s), s->fd);
    return shutdown(s->fd, SHUT_WR) < 0 ? async__errno_code(errno) : 0;
}

int net__stream_peer(const async_stream *s, struct sockaddr_storage *ss, unsigned *len) {
    socklen_t slen = sizeof *ss;
    if (!(s->flags & NS_OPEN)) return ASYNC_EBADF;
    if (s->world) return async__sim_net_peer(world_of(s), s->fd, ss, len);
    if (getpeername(s->fd, (struct sockaddr *)ss, &slen) < 0) return async__errno_code(errno);
    *len = (unsigned)slen;
    return 0;
}
