/* The network layer's error paths against real sockets on 127.0.0.1: bad arguments to every public
 * function, connect by name and its failures, closed and reset streams, read limits, the write queue,
 * cancellation and closing at each await, the server's shutdown with live connections and out of
 * descriptors, loops on threads and remote calls. Every wait has a deadline in ms, so a broken test fails
 * fast instead of hanging; timeouts that are the expected result are a few ms long. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net_util.h"

/* The runtime's errno mapping (src/errors.c), tested directly. */
int async__errno_code(int err);

static int ne_run(async_task *main) {
    async_loop *loop = async_loop_new(0);
    int rc;
    ASSERT(loop != NULL);
    rc = async_run(loop, main);
    async_loop_free(loop);
    return rc;
}

static int ne_run_virtual(async_task *main) {
    async_loop *loop = async_loop_new(ASYNC_LOOP_VIRTUAL_CLOCK);
    int rc;
    ASSERT(loop != NULL);
    rc = async_run(loop, main);
    async_loop_free(loop);
    return rc;
}

/* A connection that the kernel accepted for lfd (the raw listener), or -1 if none came. */
static int ne_accept_now(int lfd) {
    int fl = fcntl(lfd, F_GETFL), fd;
    fcntl(lfd, F_SETFL, fl | O_NONBLOCK);
    fd = accept(lfd, NULL, NULL);
    fcntl(lfd, F_SETFL, fl);
    return fd;
}

static bool ne_fd_is_open(int fd) { return fcntl(fd, F_GETFD) != -1 || errno != EBADF; }

static async_ms ne_frozen_clock(async_loop *loop) {
    (void)loop;
    return 1000;
}

/* An echo server's connections (defined with the server tests). */
static async_task *ne_echo_new(void *frame, async_stream *s, void *arg);

/* ---- one operation in a task of its own: what it raised is recorded, never passed on ---- */

enum { NE_READ, NE_EXACTLY, NE_LINE, NE_FILL, NE_DRAIN, NE_CONNECT, NE_READABLE, NE_WRITABLE, NE_IO_RAW };

typedef struct {
    async_task task;
    int op;
    async_stream *s;
    async_io *io;      /* fd waits */
    async_io own_io;   /* the default io */
    int fd;
    unsigned events;   /* NE_IO_RAW: async__io_start's events argument as given */
    const char *host;  /* NE_CONNECT */
    int port;
    void *buf;
    size_t n, limit;
    size_t *out;
    const char **line;
    int32_t ms;
    bool cancel_first; /* the task cancels itself first: the cancellation meets the operation's start */
    int code;          /* what the operation raised, 0 if it succeeded */
    size_t got;        /* the default *out */
    const char *ln;    /* the default *line */
    char mem[64];      /* the default buf */
} ne_op_frame;

static async_status ne_op_run(async_task *t) {
    ne_op_frame *f = (ne_op_frame *)t;
    ASYNC_BEGIN(t);
    if (f->cancel_first) async_cancel(t);
    ASYNC_TRY(t) {
        if (f->op == NE_READ)
            AWAIT_STREAM_READ(t, f->s, f->buf, f->n, f->out, f->ms);
        else if (f->op == NE_EXACTLY)
            AWAIT_STREAM_READEXACTLY(t, f->s, f->buf, f->n, f->ms);
        else if (f->op == NE_LINE)
            AWAIT_STREAM_READLINE(t, f->s, f->line, f->out, f->limit, f->ms);
        else if (f->op == NE_FILL)
            AWAIT_STREAM_FILL(t, f->s, f->limit, f->out, f->ms);
        else if (f->op == NE_DRAIN)
            AWAIT_STREAM_DRAIN(t, f->s, f->ms);
        else if (f->op == NE_CONNECT)
            AWAIT_STREAM_CONNECT(t, f->s, f->host, f->port, f->ms);
        else if (f->op == NE_READABLE)
            AWAIT_READABLE(t, f->io, f->fd, f->ms);
        else if (f->op == NE_WRITABLE)
            AWAIT_WRITABLE(t, f->io, f->fd, f->ms);
        else
            ASYNC__AWAIT(t, async__io_start(t, f->io, f->fd, f->events, f->ms), async__io_check(t, f->io));
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
    ASYNC_END(t);
}

/* Prepares f to run `op` on s with roomy defaults (its own buffer, out and line, a 1 s deadline). */
static ne_op_frame *ne_op(ne_op_frame *f, int op, async_stream *s) {
    ASYNC_FRAME_INIT(f, ne_op_run);
    f->op = op;
    f->s = s;
    f->io = &f->own_io;
    f->buf = f->mem;
    f->n = sizeof f->mem;
    f->limit = sizeof f->mem;
    f->out = &f->got;
    f->line = &f->ln;
    f->ms = 1000;
    return f;
}

static ne_op_frame *ne_connect_op(ne_op_frame *f, async_stream *s, const char *host, int port, int32_t ms) {
    ne_op(f, NE_CONNECT, s);
    f->host = host;
    f->port = port;
    f->ms = ms;
    return f;
}

static ne_op_frame *ne_wait_op(ne_op_frame *f, int op, async_io *io, int fd, int32_t ms) {
    ne_op(f, op, NULL);
    f->io = io;
    f->fd = fd;
    f->ms = ms;
    return f;
}

/* Runs f on a new loop of its own; the code the operation raised (0: it succeeded). */
static int ne_do(ne_op_frame *f) {
    ASSERT_EQ(ne_run(&f->task), 0);
    return f->code;
}

/* Two operations at once: a starts, then b, then `between` runs once both have had their first step
 * (after pause_ms; 0: one yield), and the group waits for both. */
typedef struct ne_duo ne_duo;
struct ne_duo {
    async_task task;
    async_group g;
    ne_op_frame a, b;
    bool with_b;
    int32_t pause_ms;
    void (*between)(ne_duo *d);
    async_stream *s;
    int fd;
};

static async_status ne_duo_run(async_task *t) {
    ne_duo *d = (ne_duo *)t;
    ASYNC_BEGIN(t);
    ASYNC_SPAWN(t, &d->g, &d->a.task);
    if (d->with_b) ASYNC_SPAWN(t, &d->g, &d->b.task);
    AWAIT_SLEEP(t, d->pause_ms);
    if (d->between) d->between(d);
    AWAIT_GROUP(t, &d->g);
    ASYNC_END(t);
}

static ne_duo *ne_duo_init(ne_duo *d, void (*between)(ne_duo *d), int32_t pause_ms) {
    ASYNC_FRAME_INIT(d, ne_duo_run);
    d->between = between;
    d->pause_ms = pause_ms;
    return d;
}

static void ne_between_close(ne_duo *d) { async_stream_close(d->s); }
static void ne_between_cancel_a(ne_duo *d) { ASSERT(async_cancel(&d->a.task)); }
static void ne_between_write_fd(ne_duo *d) { ASSERT_EQ(write(d->fd, "data\n", 5), 5); }

/* ---- errno mapping ---- */

TEST(net_errors_errno_codes_map_to_library_codes) {
    ASSERT_EQ(async__errno_code(EAGAIN), ASYNC_EAGAIN);
    ASSERT_EQ(async__errno_code(EWOULDBLOCK), ASYNC_EAGAIN);
    ASSERT_EQ(async__errno_code(ENFILE), ASYNC_EMFILE); /* the system's table full: as the process's */
    ASSERT_EQ(async__errno_code(EMFILE), ASYNC_EMFILE);
    ASSERT_EQ(async__errno_code(ENOBUFS), ASYNC_ENOMEM);
    ASSERT_EQ(async__errno_code(ETIMEDOUT), ASYNC_ETIMEDOUT);
    ASSERT_EQ(async__errno_code(ECONNREFUSED), ASYNC_ECONNREFUSED);
    ASSERT_EQ(async__errno_code(EHOSTUNREACH), ASYNC_EHOSTUNREACH);
    ASSERT_EQ(async__errno_code(ENOTSOCK), ASYNC_EIO); /* no code of ours: a generic I/O error */
    ASSERT_EQ(async__errno_code(EDOM), ASYNC_EIO);
}

typedef struct {
    async_task task;
    async_stream s;
    ne_op_frame op;
    int code1, code2, wcode;
} ne_pipe_frame;

static async_status ne_pipe_run(async_task *t) {
    ne_pipe_frame *f = (ne_pipe_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT(t, &ne_op(&f->op, NE_READ, &f->s)->task);
    f->code1 = f->op.code;
    f->wcode = async_stream_write(&f->s, "x", 1);
    AWAIT(t, &ne_op(&f->op, NE_READ, &f->s)->task);
    f->code2 = f->op.code;
    ASYNC_END(t);
}

TEST(net_errors_stream_on_a_pipe_fails_with_eio_not_sticky) {
    static ne_pipe_frame f;
    int p[2];
    ASSERT(pipe(p) == 0);
    ASSERT_EQ(write(p[1], "abc", 3), 3); /* readable at once: recv is tried and fails with ENOTSOCK */
    ASYNC_FRAME_INIT(&f, ne_pipe_run);
    ASSERT_EQ(async_stream_open(&f.s, p[0]), 0);
    ASSERT_EQ(ne_run(&f.task), 0);
    ASSERT_EQ(f.code1, ASYNC_EIO);
    ASSERT_EQ(f.wcode, ASYNC_EIO);
    ASSERT_EQ(f.code2, ASYNC_EIO); /* not sticky: tried again, failed again */
    ASSERT_EQ(async_stream_fd(&f.s), p[0]);
    async_stream_close(&f.s);
    ASSERT(!ne_fd_is_open(p[0]));
    close(p[1]);
}

/* ---- bad arguments ---- */

TEST(net_errors_stream_functions_reject_bad_arguments) {
    static async_stream s;
    static async_io io;
    size_t len = 99;
    int p[2], sv[2], closed_fd;
    unsigned flags;
    char buf[4];
    ASSERT(pipe(p) == 0);
    ASSERT_EQ(async_stream_open(NULL, p[0]), ASYNC_EINVAL);
    ASSERT(!ne_fd_is_open(p[0])); /* the stream owns fd, also on failure */
    ASSERT_EQ(async_stream_open(NULL, -1), ASYNC_EINVAL);
    ASSERT_EQ(async_stream_open(&s, -1), ASYNC_EBADF);
    ASSERT_EQ(async_stream_fd(&s), -1);
    closed_fd = p[1];
    close(p[1]); /* a number that is no open descriptor */
    ASSERT_EQ(async_stream_open(&s, closed_fd), ASYNC_EBADF);
    ASSERT_EQ(async_stream_fd(&s), -1);
    async_stream_close(&s);

    ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    ASSERT_EQ(fcntl(sv[0], F_GETFL) & O_NONBLOCK, 0);
    ASSERT_EQ(async_stream_open(&s, sv[0]), 0);
    ASSERT(fcntl(sv[0], F_GETFL) & O_NONBLOCK);
    ASSERT_EQ(async_stream_fd(&s), sv[0]);
    ASSERT_STR_EQ(async_stream_peek(NULL, &len), "");
    ASSERT_EQ(len, 0);
    ASSERT_STR_EQ(async_stream_peek(NULL, NULL), "");
    len = 99;
    ASSERT_STR_EQ(async_stream_peek(&s, &len), ""); /* nothing read yet: no buffer */
    ASSERT_EQ(len, 0);
    async_stream_consume(NULL, 5);
    async_stream_consume(&s, 5);
    ASSERT_EQ(async_stream_pending(NULL), 0);
    ASSERT_EQ(async_stream_write(NULL, "x", 1), ASYNC_EINVAL);
    ASSERT_EQ(async_stream_write(&s, NULL, 3), ASYNC_EINVAL);
    ASSERT_EQ(async_stream_write(&s, NULL, 0), 0);
    ASSERT_EQ(async_stream_write(&s, "", 0), 0);
    ASSERT_EQ(async_stream_pending(&s), 0);
    flags = s.flags;
    async_stream_set_idle(NULL, true);
    async_stream_set_idle(&s, true); /* not a server's connection: nothing to mark */
    ASSERT_EQ(s.flags, flags);
    ASSERT_EQ(async_stream_write(&s, "ab", 2), 0);
    ASSERT_EQ(read(sv[1], buf, sizeof buf), 2);
    async_stream_close(&s);
    ASSERT(!ne_fd_is_open(sv[0]));
    ASSERT_EQ(async_stream_fd(&s), -1);
    async_stream_close(&s); /* twice is fine */
    close(sv[1]);

    ASSERT_EQ(async_io_events(NULL), 0);
    ASSERT_EQ(async_io_events(&io), 0);
    async_io_stop(NULL);
    async_io_stop(&io);
}

TEST(net_errors_server_and_thread_functions_reject_bad_arguments) {
    static async_server srv;
    async_loop *virt;
    ASSERT_EQ(async_server_listen(&srv, "127.0.0.1", -1, 0, 16, ne_echo_new, NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_server_listen(&srv, "127.0.0.1", 0, 0, ((size_t)1 << 30) + 1, ne_echo_new, NULL),
              ASYNC_EINVAL);
    ASSERT_EQ(async_server_port(NULL), 0);
    ASSERT_EQ(async_server_connections(NULL), 0);
    ASSERT(!async_server_closing(NULL));
    async_server_close(NULL, 0);
    ASSERT(async_server_serve(NULL) == NULL);
    ASSERT(async_remote_new(NULL) == NULL);
    ASSERT_EQ(async_remote_call(NULL, NULL, NULL), ASYNC_EINVAL);
    async_remote_free(NULL);
    ASSERT_EQ(async_run_threads(0, NULL, NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_run_threads(2, NULL, NULL), ASYNC_EINVAL);
    virt = async_loop_new(ASYNC_LOOP_VIRTUAL_CLOCK);
    ASSERT(virt != NULL);
    ASSERT(async_remote_new(virt) == NULL); /* a remote needs a loop that polls the OS */
    async_loop_free(virt);
}

TEST(net_errors_read_operations_reject_bad_arguments) {
    static ne_op_frame f;
    static async_stream s;
    int sv[2];
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    ASSERT_EQ(async_stream_open(&s, sv[0]), 0);
    ne_op(&f, NE_READ, &s)->buf = NULL;
    ASSERT_EQ(ne_do(&f), ASYNC_EINVAL);
    ne_op(&f, NE_READ, &s)->n = 0;
    ASSERT_EQ(ne_do(&f), ASYNC_EINVAL);
    ne_op(&f, NE_READ, &s)->out = NULL;
    ASSERT_EQ(ne_do(&f), ASYNC_EINVAL);
    ne_op(&f, NE_EXACTLY, &s)->buf = NULL;
    ASSERT_EQ(ne_do(&f), ASYNC_EINVAL);
    ne_op(&f, NE_EXACTLY, &s)->buf = NULL;
    f.n = 0;
    ASSERT_EQ(ne_do(&f), 0); /* zero bytes need no buffer: done at once */
    ne_op(&f, NE_LINE, &s)->line = NULL;
    ASSERT_EQ(ne_do(&f), ASYNC_EINVAL);
    ne_op(&f, NE_LINE, &s)->out = NULL;
    ASSERT_EQ(ne_do(&f), ASYNC_EINVAL);
    ne_op(&f, NE_LINE, &s)->limit = 0;
    ASSERT_EQ(ne_do(&f), ASYNC_EINVAL);
    ne_op(&f, NE_FILL, &s)->out = NULL;
    ASSERT_EQ(ne_do(&f), ASYNC_EINVAL);
    ne_op(&f, NE_FILL, &s)->limit = 0;
    ASSERT_EQ(ne_do(&f), ASYNC_EINVAL);
    ASSERT_EQ(ne_do(ne_op(&f, NE_READ, NULL)), ASYNC_EINVAL);
    ASSERT_EQ(ne_do(ne_op(&f, NE_EXACTLY, NULL)), ASYNC_EINVAL);
    ASSERT_EQ(ne_do(ne_op(&f, NE_LINE, NULL)), ASYNC_EINVAL);
    ASSERT_EQ(ne_do(ne_op(&f, NE_FILL, NULL)), ASYNC_EINVAL);
    ASSERT_EQ(ne_do(ne_op(&f, NE_DRAIN, NULL)), ASYNC_EINVAL);
    ne_op(&f, NE_DRAIN, &s)->ms = -1; /* nothing queued, no deadline: done at once */
    ASSERT_EQ(ne_do(&f), 0);
    /* none of it touched the stream: it still reads */
    ASSERT_EQ(write(sv[1], "ok", 2), 2);
    ASSERT_EQ(ne_do(ne_op(&f, NE_READ, &s)), 0);
    ASSERT_EQ(f.got, 2);
    ASSERT(memcmp(f.mem, "ok", 2) == 0);
    async_stream_close(&s);
    close(sv[1]);
}

TEST(net_errors_fd_waits_reject_bad_arguments) {
    static ne_op_frame f;
    static async_io io;
    static async_loop loop; /* static: a loop set up by hand is never freed */
    int sv[2];
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    ASSERT_EQ(ne_do(ne_wait_op(&f, NE_READABLE, NULL, sv[0], 10)), ASYNC_EINVAL);
    ASSERT_EQ(ne_do(ne_wait_op(&f, NE_IO_RAW, &io, sv[0], 10)), ASYNC_EINVAL); /* no events */
    ne_wait_op(&f, NE_IO_RAW, &io, sv[0], 10)->events = 4;
    ASSERT_EQ(ne_do(&f), ASYNC_EINVAL);
    ne_wait_op(&f, NE_IO_RAW, &io, sv[0], 10)->events = ASYNC_IO_READ | 8;
    ASSERT_EQ(ne_do(&f), ASYNC_EINVAL);
    ASSERT_EQ(ne_do(ne_wait_op(&f, NE_WRITABLE, &io, -1, 10)), ASYNC_EBADF);
    ASSERT(io.loop == NULL);
    /* a loop set up by hand, with a real clock but no libev under it: no fd waits there */
    ASSERT_EQ(async_loop_init(&loop), 0);
    async_loop_set_clock(&loop, ne_frozen_clock);
    ASSERT_EQ(async_run(&loop, &ne_wait_op(&f, NE_READABLE, &io, sv[0], 10)->task), 0);
    ASSERT_EQ(f.code, ASYNC_ENOTSUP);
    ASSERT(async_remote_new(&loop) == NULL);
    /* the same async_io waits again, for another event and on another fd */
    ASSERT_EQ(ne_do(ne_wait_op(&f, NE_WRITABLE, &io, sv[0], 1000)), 0);
    ASSERT_EQ(async_io_events(&io), ASYNC_IO_WRITE);
    ASSERT_EQ(write(sv[0], "x", 1), 1);
    ASSERT_EQ(ne_do(ne_wait_op(&f, NE_READABLE, &io, sv[1], 1000)), 0);
    ASSERT_EQ(async_io_events(&io), ASYNC_IO_READ);
    ASSERT_EQ(ne_do(ne_wait_op(&f, NE_IO_RAW, &io, sv[1], 1000)), ASYNC_EINVAL); /* events 0 again */
    ne_wait_op(&f, NE_IO_RAW, &io, sv[1], 1000)->events = ASYNC_IO_READ | ASYNC_IO_WRITE;
    ASSERT_EQ(ne_do(&f), 0);
    ASSERT_EQ(async_io_events(&io), ASYNC_IO_READ | ASYNC_IO_WRITE);
    close(sv[0]);
    close(sv[1]);
}

TEST(net_errors_fd_wait_on_a_closed_descriptor_is_ebadf) {
    static ne_op_frame f;
    async_loop *loop = async_loop_new(0); /* its own descriptors first: the closed number stays free */
    int sv[2];
    ASSERT(loop != NULL);
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    close(sv[0]);
    ne_wait_op(&f, NE_READABLE, &f.own_io, sv[0], 1000);
    ASSERT_EQ(async_run(loop, &f.task), 0);
    ASSERT_EQ(f.code, ASYNC_EBADF); /* libev could not watch it (EV_ERROR) */
    ASSERT(f.own_io.loop == NULL);
    async_loop_free(loop);
    close(sv[1]);
}

TEST(net_errors_closed_stream_fails_every_operation_with_ebadf) {
    static ne_op_frame f;
    static async_stream s; /* zeroed: never opened */
    int op;
    for (op = NE_READ; op <= NE_DRAIN; op++) ASSERT_EQ(ne_do(ne_op(&f, op, &s)), ASYNC_EBADF);
    ASSERT_EQ(async_stream_write(&s, "x", 1), ASYNC_EBADF);
    async_stream_close(&s);
    for (op = NE_READ; op <= NE_DRAIN; op++) ASSERT_EQ(ne_do(ne_op(&f, op, &s)), ASYNC_EBADF);
    ASSERT_EQ(async_stream_write(&s, "x", 1), ASYNC_EBADF);
}

/* ---- connect ---- */

TEST(net_errors_connect_rejects_bad_arguments) {
    static ne_op_frame f;
    static async_stream s;
    static char long_name[300];
    int sv[2], port, lfd = test_listen_raw(4, &port);
    ASSERT_EQ(ne_do(ne_connect_op(&f, NULL, "127.0.0.1", port, 100)), ASYNC_EINVAL);
    ASSERT_EQ(ne_do(ne_connect_op(&f, &s, NULL, port, 100)), ASYNC_EINVAL);
    ASSERT_EQ(ne_do(ne_connect_op(&f, &s, "127.0.0.1", 0, 100)), ASYNC_EINVAL);
    ASSERT_EQ(ne_do(ne_connect_op(&f, &s, "127.0.0.1", -1, 100)), ASYNC_EINVAL);
    ASSERT_EQ(ne_do(ne_connect_op(&f, &s, "127.0.0.1", 65536, 100)), ASYNC_EINVAL);
    memset(long_name, 'a', sizeof long_name - 1); /* longer than any host name */
    ASSERT_EQ(ne_do(ne_connect_op(&f, &s, long_name, port, 100)), ASYNC_EINVAL);
    ASSERT_EQ(async_stream_fd(&s), -1);
    /* an open stream is busy: it stays as it was */
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    ASSERT_EQ(async_stream_open(&s, sv[0]), 0);
    ASSERT_EQ(ne_do(ne_connect_op(&f, &s, "127.0.0.1", port, 100)), ASYNC_EBUSY);
    ASSERT_EQ(async_stream_fd(&s), sv[0]);
    async_stream_close(&s);
    close(sv[1]);
    ASSERT_EQ(ne_accept_now(lfd), -1); /* no connection was attempted */
    close(lfd);
}

TEST(net_errors_connect_on_the_virtual_clock_is_enotsup_and_leaves_no_socket) {
    static ne_op_frame f;
    static async_stream s;
    int port, lfd = test_listen_raw(4, &port), fds = test_count_fds();
    ASSERT_EQ(ne_run_virtual(&ne_connect_op(&f, &s, "127.0.0.1", port, 100)->task), 0);
    ASSERT_EQ(f.code, ASYNC_ENOTSUP);
    ASSERT_EQ(async_stream_fd(&s), -1);
    ASSERT_EQ(ne_run_virtual(&ne_connect_op(&f, &s, "127.1", port, 100)->task), 0); /* a name to resolve */
    ASSERT_EQ(f.code, ASYNC_ENOTSUP);
    ASSERT_EQ(async_stream_fd(&s), -1);
    ASSERT_EQ(test_count_fds(), fds); /* the socket of the first attempt was closed */
    close(lfd);
}

TEST(net_errors_connect_by_name_resolves_on_a_thread_and_connects) {
    static ne_op_frame f;
    static async_stream s;
    char buf[8];
    int port, lfd = test_listen_raw(8, &port), peer;
    /* "127.1" is not a literal inet_pton takes: getaddrinfo resolves it (numerically, no DNS) */
    ASSERT_EQ(ne_do(ne_connect_op(&f, &s, "127.1", port, 2000)), 0);
    ASSERT(async_stream_fd(&s) >= 0);
    peer = ne_accept_now(lfd);
    ASSERT(peer >= 0);
    ASSERT_EQ(async_stream_write(&s, "hi", 2), 0);
    ASSERT_EQ(read(peer, buf, sizeof buf), 2);
    ASSERT(memcmp(buf, "hi", 2) == 0);
    async_stream_close(&s);
    close(peer);
    /* no deadline at all */
    ASSERT_EQ(ne_do(ne_connect_op(&f, &s, "2130706433", port, -1)), 0);
    ASSERT(async_stream_fd(&s) >= 0);
    peer = ne_accept_now(lfd);
    ASSERT(peer >= 0);
    async_stream_close(&s);
    close(peer);
    close(lfd);
}

TEST(net_errors_connect_by_name_to_a_closed_port_is_refused) {
    static ne_op_frame f;
    static async_stream s;
    ASSERT_EQ(ne_do(ne_connect_op(&f, &s, "127.1", test_closed_port(), 2000)), ASYNC_ECONNREFUSED);
    ASSERT_EQ(async_stream_fd(&s), -1);
}

TEST(net_errors_connect_fails_at_once_for_unreachable_addresses) {
    static ne_op_frame f;
    static async_stream s;
    /* TCP to a broadcast or multicast address fails inside connect(): no wait */
    ASSERT_EQ(ne_do(ne_connect_op(&f, &s, "255.255.255.255", 80, 1000)), ASYNC_ENETUNREACH);
    ASSERT_EQ(async_stream_fd(&s), -1);
    /* the same after resolution: every address fails at once */
    ASSERT_EQ(ne_do(ne_connect_op(&f, &s, "224.1", 80, 1000)), ASYNC_ENETUNREACH);
    ASSERT_EQ(async_stream_fd(&s), -1);
}

TEST(net_errors_connect_to_a_malformed_name_is_enxio) {
    static ne_op_frame f;
    static async_stream s;
    /* names no resolver would send anywhere: getaddrinfo refuses them on the spot */
    ASSERT_EQ(ne_do(ne_connect_op(&f, &s, "bad host name", 80, 2000)), ASYNC_ENXIO);
    ASSERT_EQ(async_stream_fd(&s), -1);
    ASSERT_EQ(ne_do(ne_connect_op(&f, &s, "[not an address]", 80, 2000)), ASYNC_ENXIO);
    ASSERT_EQ(ne_do(ne_connect_op(&f, &s, "[", 80, 2000)), ASYNC_ENXIO);
    ASSERT_EQ(async_stream_fd(&s), -1);
}

TEST(net_errors_connect_to_the_any_address_reaches_this_host) {
    static ne_op_frame f;
    static async_stream s;
    int port, lfd = test_listen_raw(8, &port), peer;
    ASSERT_EQ(ne_do(ne_connect_op(&f, &s, "", port, 1000)), 0);
    peer = ne_accept_now(lfd);
    ASSERT(peer >= 0);
    close(peer);
    async_stream_close(&s);
    ASSERT_EQ(ne_do(ne_connect_op(&f, &s, "0.0.0.0", port, 1000)), 0);
    peer = ne_accept_now(lfd);
    ASSERT(peer >= 0);
    close(peer);
    async_stream_close(&s);
    close(lfd);
}

TEST(net_errors_bracketed_ipv6_literals) {
    static ne_op_frame f;
    static async_stream s;
    static async_server srv, bad;
    static char long_literal[80];
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    memset(long_literal, '1', sizeof long_literal - 1);
    long_literal[0] = '[';
    long_literal[sizeof long_literal - 2] = ']';
    ASSERT_EQ(async_server_listen(&bad, "[", 0, 0, 64, ne_echo_new, NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_server_listen(&bad, "[::1", 0, 0, 64, ne_echo_new, NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_server_listen(&bad, long_literal, 0, 0, 64, ne_echo_new, NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_server_listen(&bad, "[127.0.0.1]", 0, 0, 64, ne_echo_new, NULL), ASYNC_EINVAL);
    if (fd < 0) {
        printf("    skipped the IPv6 part: no IPv6\n");
        return;
    }
    close(fd);
    ASSERT_EQ(async_server_listen(&srv, "[::1]", 0, 0, 64, ne_echo_new, NULL), 0);
    ASSERT_EQ(ne_do(ne_connect_op(&f, &s, "[::1]", async_server_port(&srv), 1000)), 0);
    ASSERT(async_stream_fd(&s) >= 0);
    async_stream_close(&s);
    async_server_close(&srv, 0);
}

/* Lowers the soft limit of descriptors so that the next one cannot be had; returns the old limit. */
static struct rlimit ne_no_more_fds(void) {
    struct rlimit old, lim;
    int next = dup(0);
    ASSERT(next >= 0);
    close(next);
    ASSERT(getrlimit(RLIMIT_NOFILE, &old) == 0);
    lim = old;
    lim.rlim_cur = (rlim_t)next;
    ASSERT(setrlimit(RLIMIT_NOFILE, &lim) == 0);
    ASSERT_EQ(dup(0), -1);
    return old;
}

TEST(net_errors_out_of_descriptors_connect_and_listen_are_emfile) {
    static ne_op_frame f;
    static async_stream s;
    static async_server srv;
    struct rlimit old;
    int port, lfd = test_listen_raw(8, &port);
    async_loop *loop = async_loop_new(0);
    ASSERT(loop != NULL);
    old = ne_no_more_fds();
    ASSERT_EQ(async_run(loop, &ne_connect_op(&f, &s, "127.0.0.1", port, 1000)->task), 0);
    ASSERT_EQ(f.code, ASYNC_EMFILE);
    ASSERT_EQ(async_stream_fd(&s), -1);
    ASSERT_EQ(async_server_listen(&srv, "127.0.0.1", 0, 0, 64, ne_echo_new, NULL), ASYNC_EMFILE);
    ASSERT(setrlimit(RLIMIT_NOFILE, &old) == 0);
    ASSERT_EQ(ne_accept_now(lfd), -1);
    async_loop_free(loop);
    close(lfd);
}

/* ---- reading: buffered input, limits, end of stream ---- */

typedef struct {
    async_task task;
    async_stream s;
    ne_op_frame op;
    int peer;
    char log[512];
} ne_read_frame;

static void ne_logf(ne_read_frame *f, const char *tag, const char *p, size_t n, int code) {
    size_t used = strlen(f->log);
    if (code)
        snprintf(f->log + used, sizeof f->log - used, "%s:%d ", tag, code);
    else
        snprintf(f->log + used, sizeof f->log - used, "%s[%.*s] ", tag, (int)n, p);
}

static void ne_feed(ne_read_frame *f, const char *data) {
    ASSERT_EQ(write(f->peer, data, strlen(data)), (long long)strlen(data));
}

/* One read op on f's stream, logged. */
#define NE_READ_OP(t, f, op_, tag, limit_, ms_)                                                       \
    do {                                                                                               \
        ne_op(&(f)->op, (op_), &(f)->s)->limit = (limit_);                                             \
        (f)->op.n = (limit_);                                                                          \
        (f)->op.ms = (ms_);                                                                            \
        AWAIT(t, &(f)->op.task);                                                                       \
        ne_logf((f), (tag), (op_) == NE_LINE ? (f)->op.ln : (f)->op.mem,                              \
                (op_) == NE_EXACTLY ? (f)->op.n : (f)->op.got, (f)->op.code);                          \
    } while (0)

static async_status ne_buffered_run(async_task *t) {
    ne_read_frame *f = (ne_read_frame *)t;
    ASYNC_BEGIN(t);
    ne_feed(f, "line\nrest");
    NE_READ_OP(t, f, NE_LINE, "line", 64, 1000);
    NE_READ_OP(t, f, NE_READ, "read", 16, 1000); /* "rest" is buffered: no system call */
    ne_feed(f, "abcd");
    NE_READ_OP(t, f, NE_READ, "read", 4, 1000); /* exactly what came: the next read must try the socket */
    NE_READ_OP(t, f, NE_READ, "read", 4, 20); /* nothing there: the deadline */
    NE_READ_OP(t, f, NE_EXACTLY, "exactly", 2, 20); /* the same: it waits for input */
    ne_feed(f, "toolong\nxyz");
    NE_READ_OP(t, f, NE_LINE, "line3", 3, 1000); /* a whole line over its limit */
    async_stream_consume(&f->s, 8);
    NE_READ_OP(t, f, NE_FILL, "fill", 2, 1000); /* "xyz" buffered is over a 2-byte fill limit */
    ne_logf(f, "peek", async_stream_peek(&f->s, NULL), 3, 0);
    NE_READ_OP(t, f, NE_EXACTLY, "exactly", 2, 1000);
    shutdown(f->peer, SHUT_WR);
    NE_READ_OP(t, f, NE_FILL, "fill", 64, 1000); /* "z" was buffered: the fill reads the end */
    NE_READ_OP(t, f, NE_FILL, "fill", 64, 1000); /* and again: still the end */
    NE_READ_OP(t, f, NE_LINE, "line", 64, 1000); /* the rest without '\n' */
    NE_READ_OP(t, f, NE_LINE, "line", 64, 1000); /* nothing left */
    NE_READ_OP(t, f, NE_READ, "read", 8, 1000);
    NE_READ_OP(t, f, NE_EXACTLY, "exactly", 1, 1000);
    ASYNC_END(t);
}

TEST(net_errors_reads_from_the_buffer_limits_and_end_of_stream) {
    static ne_read_frame f;
    int sv[2];
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    ASYNC_FRAME_INIT(&f, ne_buffered_run);
    ASSERT_EQ(async_stream_open(&f.s, sv[0]), 0);
    f.peer = sv[1];
    ASSERT_EQ(ne_run(&f.task), 0);
    ASSERT_STR_EQ(f.log, "line[line\n] read[rest] read[abcd] read:-110 exactly:-110 line3:-75 fill:-75 "
                         "peek[xyz] exactly[xy] fill[] fill[] line[z] line[] read[] exactly:-61 ");
    async_stream_close(&f.s);
    close(sv[1]);
}

typedef struct {
    async_task task;
    async_stream s;
    int peer;
    const char *line;
    size_t len;
    size_t len1, len2;
    char first[8];
} ne_long_line_frame;

static async_status ne_long_line_run(async_task *t) {
    ne_long_line_frame *f = (ne_long_line_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT_STREAM_READLINE(t, &f->s, &f->line, &f->len, SIZE_MAX, 1000); /* no limit */
    f->len1 = f->len;
    memcpy(f->first, f->line, f->len < sizeof f->first ? f->len : sizeof f->first);
    AWAIT_STREAM_READLINE(t, &f->s, &f->line, &f->len, SIZE_MAX, 1000);
    f->len2 = f->len;
    ASSERT_EQ(f->line[0], 'x');
    ASSERT_EQ(f->line[f->len - 2], 'y');
    ASSERT_EQ(f->line[f->len - 1], '\n');
    ASYNC_END(t);
}

TEST(net_errors_readline_without_limit_compacts_and_grows_the_buffer) {
    static ne_long_line_frame f;
    static char data[4096 + 10];
    int sv[2];
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    memcpy(data, "ab\n", 3);
    memset(data + 3, 'x', 4093);
    memset(data + 4096, 'y', 9);
    data[sizeof data - 1] = '\n';
    ASSERT_EQ(write(sv[1], data, sizeof data), (long long)sizeof data);
    ASYNC_FRAME_INIT(&f, ne_long_line_run);
    ASSERT_EQ(async_stream_open(&f.s, sv[0]), 0);
    ASSERT_EQ(ne_run(&f.task), 0);
    ASSERT_EQ(f.len1, 3);
    ASSERT(memcmp(f.first, "ab\n", 3) == 0);
    ASSERT_EQ(f.len2, sizeof data - 3);
    async_stream_close(&f.s);
    close(sv[1]);
}

/* ---- reset and vanished peers: sticky errors ---- */

typedef struct {
    async_task task;
    async_stream s;
    ne_op_frame op;
    int read_code, line_code, drain_code, write_code;
} ne_sticky_frame;

static async_status ne_sticky_run(async_task *t) {
    ne_sticky_frame *f = (ne_sticky_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT(t, &ne_op(&f->op, NE_LINE, &f->s)->task); /* the error comes from a read into the buffer */
    f->line_code = f->op.code;
    f->write_code = async_stream_write(&f->s, "x", 1);
    AWAIT(t, &ne_op(&f->op, NE_DRAIN, &f->s)->task);
    f->drain_code = f->op.code;
    AWAIT(t, &ne_op(&f->op, NE_READ, &f->s)->task);
    f->read_code = f->op.code;
    ASYNC_END(t);
}

TEST(net_errors_reset_by_peer_is_sticky_for_every_operation) {
    static ne_sticky_frame f;
    struct linger lg = {1, 0};
    int fds[2];
    test_tcp_pair(fds);
    ASSERT(setsockopt(fds[1], SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0);
    close(fds[1]); /* an abortive close: a reset */
    ASYNC_FRAME_INIT(&f, ne_sticky_run);
    ASSERT_EQ(async_stream_open(&f.s, fds[0]), 0);
    ASSERT_EQ(ne_run(&f.task), 0);
    ASSERT_EQ(f.read_code, ASYNC_ECONNRESET);
    ASSERT_EQ(f.write_code, ASYNC_ECONNRESET);
    ASSERT_EQ(f.drain_code, ASYNC_ECONNRESET);
    ASSERT_EQ(f.line_code, ASYNC_ECONNRESET);
    async_stream_close(&f.s);
}

TEST(net_errors_unconnected_socket_is_enotconn_and_sticky) {
    static ne_sticky_frame f;
    ASYNC_FRAME_INIT(&f, ne_sticky_run);
    ASSERT_EQ(async_stream_open(&f.s, socket(AF_INET, SOCK_STREAM, 0)), 0);
    ASSERT_EQ(ne_run(&f.task), 0);
    ASSERT_EQ(f.read_code, ASYNC_ENOTCONN);
    ASSERT_EQ(f.write_code, ASYNC_ENOTCONN); /* not the EPIPE send would say now */
    ASSERT_EQ(f.drain_code, ASYNC_ENOTCONN);
    ASSERT_EQ(f.line_code, ASYNC_ENOTCONN);
    async_stream_close(&f.s);
}

/* ---- the write queue ---- */

#define NE_BIG (1u << 20)

typedef struct {
    async_task task;
    async_stream s;
    async_group g;
    ne_op_frame op;
    async_io io;
    int peer;
    size_t sent_total;  /* bytes accepted by async_stream_write, in the pattern's order */
    size_t recv_total;
    size_t pending1, pending2, cap_before;
    int bad;            /* bytes the reader found out of pattern */
    int code_wrap, code_huge, drain_code;
    char rbuf[65536];
} ne_queue_frame;

static unsigned char ne_pattern_byte(size_t i) { return (unsigned char)(i % 251); }

static char *ne_pattern(size_t from, size_t n) {
    static char buf[NE_BIG];
    size_t i;
    ASSERT(n <= sizeof buf);
    for (i = 0; i < n; i++) buf[i] = (char)ne_pattern_byte(from + i);
    return buf;
}

static int ne_queue_write(ne_queue_frame *f, size_t n) {
    int rc = async_stream_write(&f->s, ne_pattern(f->sent_total, n), n);
    if (rc == 0) f->sent_total += n;
    return rc;
}

static void ne_queue_take(ne_queue_frame *f, long n) {
    long i;
    for (i = 0; i < n; i++)
        if ((unsigned char)f->rbuf[i] != ne_pattern_byte(f->recv_total + (size_t)i)) f->bad++;
    f->recv_total += (size_t)n;
}

/* Reads the peer's end until every byte written has come. */
static async_status ne_queue_reader_run(async_task *t) {
    ne_queue_frame *f = (ne_queue_frame *)(void *)((char *)t - offsetof(ne_queue_frame, op));
    long n;
    ASYNC_BEGIN(t);
    while (f->recv_total < f->sent_total) {
        AWAIT_READABLE(t, &f->io, f->peer, 2000);
        n = read(f->peer, f->rbuf, sizeof f->rbuf);
        ASSERT(n > 0);
        ne_queue_take(f, n);
    }
    ASYNC_END(t);
}

static async_status ne_queue_run(async_task *t) {
    ne_queue_frame *f = (ne_queue_frame *)t;
    long n;
    ASYNC_BEGIN(t);
    ASSERT_EQ(ne_queue_write(f, NE_BIG), 0); /* more than the socket takes: the rest is queued */
    f->pending1 = async_stream_pending(&f->s);
    ASSERT(f->pending1 > 0);
    ASSERT_EQ(ne_queue_write(f, 10), 0); /* queued behind it, not sent */
    ASSERT_EQ(async_stream_pending(&f->s), f->pending1 + 10);
    /* lengths whose sum with what is queued wraps, or is more than memory: ENOMEM, nothing changes */
    f->code_wrap = async_stream_write(&f->s, f->rbuf, SIZE_MAX);
    f->code_huge = async_stream_write(&f->s, f->rbuf, SIZE_MAX - async_stream_pending(&f->s) - 1);
    ASSERT_EQ(async_stream_pending(&f->s), f->pending1 + 10);
    /* the peer reads a little: a drain moves some of the queue, then times out */
    n = read(f->peer, f->rbuf, sizeof f->rbuf);
    ASSERT(n > 0);
    ne_queue_take(f, n);
    ne_op(&f->op, NE_DRAIN, &f->s)->ms = 20;
    AWAIT(t, &f->op.task);
    f->drain_code = f->op.code;
    f->pending2 = async_stream_pending(&f->s);
    /* a write that fits once the sent part at the front is dropped: no new memory */
    f->cap_before = f->s.wcap;
    ASSERT(f->s.wpos > 0);
    ASSERT_EQ(ne_queue_write(f, f->s.wcap - f->pending2), 0);
    ASSERT_EQ(f->s.wcap, f->cap_before);
    ASSERT_EQ(async_stream_pending(&f->s), f->cap_before);
    /* now the peer reads everything while the drain waits */
    ASYNC_FRAME_INIT(&f->op, ne_queue_reader_run);
    ASYNC_SPAWN(t, &f->g, &f->op.task);
    AWAIT_STREAM_DRAIN(t, &f->s, 1000);
    ASSERT_EQ(async_stream_pending(&f->s), 0);
    AWAIT_GROUP(t, &f->g);
    ASYNC_END(t);
}

TEST(net_errors_write_queue_grows_compacts_and_refuses_impossible_lengths) {
    static ne_queue_frame f;
    int sv[2], small = 16384;
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    ASYNC_FRAME_INIT(&f, ne_queue_run);
    ASSERT_EQ(async_stream_open(&f.s, sv[0]), 0);
    f.peer = sv[1];
    ASSERT_EQ(ne_run(&f.task), 0);
    ASSERT_EQ(f.code_wrap, ASYNC_ENOMEM);
    ASSERT_EQ(f.code_huge, ASYNC_ENOMEM);
    ASSERT_EQ(f.drain_code, ASYNC_ETIMEDOUT);
    ASSERT(f.pending2 < f.pending1 + 10); /* the drain moved some */
    ASSERT_EQ(f.recv_total, f.sent_total);
    ASSERT_EQ(f.sent_total, NE_BIG + 10 + (f.cap_before - f.pending2));
    ASSERT_EQ(f.bad, 0);
    async_stream_close(&f.s);
    close(sv[1]);
}

typedef struct {
    async_task task;
    async_stream s;
    ne_op_frame op;
    int peer;
    int drain_code, write_code, read_code;
} ne_vanish_frame;

static async_status ne_vanish_run(async_task *t) {
    ne_vanish_frame *f = (ne_vanish_frame *)t;
    ASYNC_BEGIN(t);
    ASSERT_EQ(async_stream_write(&f->s, ne_pattern(0, NE_BIG), NE_BIG), 0);
    ASSERT(async_stream_pending(&f->s) > 0);
    close(f->peer); /* the peer goes away with our queue unsent */
    AWAIT(t, &ne_op(&f->op, NE_DRAIN, &f->s)->task);
    f->drain_code = f->op.code;
    f->write_code = async_stream_write(&f->s, "x", 1);
    AWAIT(t, &ne_op(&f->op, NE_READ, &f->s)->task);
    f->read_code = f->op.code;
    ASYNC_END(t);
}

TEST(net_errors_drain_to_a_vanished_peer_is_epipe) {
    static ne_vanish_frame f;
    int sv[2];
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    ASYNC_FRAME_INIT(&f, ne_vanish_run);
    ASSERT_EQ(async_stream_open(&f.s, sv[0]), 0);
    f.peer = sv[1];
    ASSERT_EQ(ne_run(&f.task), 0);
    ASSERT_EQ(f.drain_code, ASYNC_EPIPE);
    ASSERT_EQ(f.write_code, ASYNC_EPIPE);
    ASSERT_EQ(f.read_code, ASYNC_EPIPE); /* sticky: reads fail too */
    async_stream_close(&f.s);
}

/* ---- closing, cancelling, and double waits at each await ---- */

TEST(net_errors_close_wakes_a_waiting_read_with_ebadf) {
    static ne_duo d;
    static async_stream s;
    int sv[2];
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    ASSERT_EQ(async_stream_open(&s, sv[0]), 0);
    ne_duo_init(&d, ne_between_close, 0)->s = &s;
    ne_op(&d.a, NE_READ, &s);
    ASSERT_EQ(ne_run(&d.task), 0); /* not a deadlock: the reader is woken */
    ASSERT_EQ(d.a.code, ASYNC_EBADF);
    ASSERT(!ne_fd_is_open(sv[0]));
    close(sv[1]);
}

/* Closes a stream as soon as its fd is readable: woken in the same libev pass as a read of the stream,
 * and (started first) queued before it. */
typedef struct {
    async_task task;
    async_io io;
    async_stream *s;
} ne_closer_frame;

static async_status ne_closer_run(async_task *t) {
    ne_closer_frame *f = (ne_closer_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT_READABLE(t, &f->io, async_stream_fd(f->s), 1000);
    async_stream_close(f->s);
    ASYNC_END(t);
}

typedef struct {
    async_task task;
    async_group g;
    ne_closer_frame closer;
    ne_op_frame reader;
    int peer;
} ne_woken_frame;

static async_status ne_woken_run(async_task *t) {
    ne_woken_frame *f = (ne_woken_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_SPAWN(t, &f->g, &f->closer.task);
    ASYNC_SPAWN(t, &f->g, &f->reader.task);
    AWAIT_SLEEP(t, 0); /* both wait */
    ASSERT_EQ(write(f->peer, "data\n", 5), 5);
    AWAIT_GROUP(t, &f->g);
    ASYNC_END(t);
}

TEST(net_errors_close_after_a_read_was_woken_but_before_it_resumed) {
    static ne_woken_frame f;
    static async_stream s;
    int sv[2];
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    ASSERT_EQ(async_stream_open(&s, sv[0]), 0);
    ASYNC_FRAME_INIT(&f, ne_woken_run);
    f.peer = sv[1];
    ASYNC_FRAME_INIT(&f.closer, ne_closer_run);
    f.closer.s = &s;
    ne_op(&f.reader, NE_READ, &s);
    ASSERT_EQ(ne_run(&f.task), 0); /* not a deadlock: the woken reader does not wait again */
    ASSERT_EQ(f.reader.code, ASYNC_EBADF);
    ASSERT_EQ(f.reader.got, 0);
    close(sv[1]);
}

TEST(net_errors_close_wakes_a_waiting_drain_with_ebadf) {
    static ne_duo d;
    static async_stream s;
    int sv[2];
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    ASSERT_EQ(async_stream_open(&s, sv[0]), 0);
    ASSERT_EQ(async_stream_write(&s, ne_pattern(0, NE_BIG), NE_BIG), 0);
    ne_duo_init(&d, ne_between_close, 0)->s = &s;
    ne_op(&d.a, NE_DRAIN, &s);
    ASSERT_EQ(ne_run(&d.task), 0);
    ASSERT_EQ(d.a.code, ASYNC_EBADF);
    ASSERT_EQ(async_stream_pending(&s), 0);
    close(sv[1]);
}

/* A listener whose accept queue is full: connects to it wait. */
typedef struct {
    int lfd, port, fill[8];
} ne_full_backlog;

static void ne_full_backlog_open(ne_full_backlog *b) {
    int i;
    b->lfd = test_listen_raw(0, &b->port);
    for (i = 0; i < 8; i++) {
        struct sockaddr_in a;
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_port = htons((uint16_t)b->port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        b->fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(b->fill[i], (struct sockaddr *)&a, sizeof a);
    }
}

static void ne_full_backlog_close(ne_full_backlog *b) {
    int i;
    for (i = 0; i < 8; i++) close(b->fill[i]);
    close(b->lfd);
}

TEST(net_errors_close_wakes_a_waiting_connect_with_ebadf) {
    static ne_duo d;
    static async_stream s;
    ne_full_backlog b;
    ne_full_backlog_open(&b);
    ne_duo_init(&d, ne_between_close, 0)->s = &s;
    ne_connect_op(&d.a, &s, "127.0.0.1", b.port, 2000);
    ASSERT_EQ(ne_run(&d.task), 0);
    ASSERT_EQ(d.a.code, ASYNC_EBADF);
    ASSERT_EQ(async_stream_fd(&s), -1);
    ne_full_backlog_close(&b);
}

TEST(net_errors_close_during_name_resolution_wakes_the_connect) {
    static ne_duo d;
    static async_stream s;
    int port, lfd = test_listen_raw(8, &port);
    ne_duo_init(&d, ne_between_close, 0)->s = &s;
    ne_connect_op(&d.a, &s, "127.1", port, 2000);
    ASSERT_EQ(ne_run(&d.task), 0);
    ASSERT_EQ(d.a.code, ASYNC_EBADF);
    ASSERT_EQ(async_stream_fd(&s), -1);
    /* the lookup's answer is dropped: nothing connects, and a new connect by name works */
    ASSERT_EQ(ne_do(ne_connect_op(&d.b, &s, "127.1", port, 2000)), 0);
    async_stream_close(&s);
    close(lfd);
}

TEST(net_errors_cancel_a_waiting_read_keeps_the_stream_usable) {
    static ne_duo d;
    static ne_op_frame f;
    static async_stream s;
    int sv[2];
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    ASSERT_EQ(async_stream_open(&s, sv[0]), 0);
    ne_duo_init(&d, ne_between_cancel_a, 0);
    ne_op(&d.a, NE_LINE, &s);
    ASSERT_EQ(ne_run(&d.task), 0);
    ASSERT_EQ(d.a.code, ASYNC_ECANCELED);
    ASSERT(s.rio.loop == NULL); /* its watcher is stopped */
    ASSERT_EQ(write(sv[1], "after\n", 6), 6);
    ASSERT_EQ(ne_do(ne_op(&f, NE_LINE, &s)), 0);
    ASSERT_EQ(f.got, 6);
    ASSERT(memcmp(f.ln, "after\n", 6) == 0);
    async_stream_close(&s);
    close(sv[1]);
}

TEST(net_errors_cancel_a_waiting_drain_keeps_the_queue) {
    static ne_duo d;
    static async_stream s;
    int sv[2];
    size_t before;
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    ASSERT_EQ(async_stream_open(&s, sv[0]), 0);
    ASSERT_EQ(async_stream_write(&s, ne_pattern(0, NE_BIG), NE_BIG), 0);
    before = async_stream_pending(&s);
    ne_duo_init(&d, ne_between_cancel_a, 0);
    ne_op(&d.a, NE_DRAIN, &s);
    ASSERT_EQ(ne_run(&d.task), 0);
    ASSERT_EQ(d.a.code, ASYNC_ECANCELED);
    ASSERT(async_stream_pending(&s) > 0 && async_stream_pending(&s) <= before);
    ASSERT(s.wio.loop == NULL);
    async_stream_close(&s);
    close(sv[1]);
}

TEST(net_errors_cancel_a_waiting_connect_leaves_no_socket) {
    static ne_duo d;
    static async_stream s;
    ne_full_backlog b;
    ne_full_backlog_open(&b);
    ne_duo_init(&d, ne_between_cancel_a, 0);
    ne_connect_op(&d.a, &s, "127.0.0.1", b.port, 2000);
    ASSERT_EQ(ne_run(&d.task), 0);
    ASSERT_EQ(d.a.code, ASYNC_ECANCELED);
    ASSERT_EQ(async_stream_fd(&s), -1);
    ne_full_backlog_close(&b);
}

TEST(net_errors_cancel_during_name_resolution) {
    static ne_duo d;
    static async_stream s;
    int port, lfd = test_listen_raw(8, &port);
    ne_duo_init(&d, ne_between_cancel_a, 0);
    ne_connect_op(&d.a, &s, "127.1", port, 2000);
    ASSERT_EQ(ne_run(&d.task), 0);
    ASSERT_EQ(d.a.code, ASYNC_ECANCELED);
    ASSERT_EQ(async_stream_fd(&s), -1);
    ASSERT_EQ(ne_do(ne_connect_op(&d.b, &s, "127.1", port, 2000)), 0); /* the stream connects again */
    async_stream_close(&s);
    close(lfd);
}

TEST(net_errors_cancelled_before_each_wait_starts) {
    static ne_op_frame f;
    static async_stream s;
    int sv[2], port, lfd = test_listen_raw(8, &port);
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    ne_wait_op(&f, NE_READABLE, &f.own_io, sv[0], 1000)->cancel_first = true;
    ASSERT_EQ(ne_do(&f), ASYNC_ECANCELED);
    ASSERT(f.own_io.loop == NULL);
    ASSERT_EQ(async_stream_open(&s, sv[0]), 0);
    ne_op(&f, NE_READ, &s)->cancel_first = true;
    ASSERT_EQ(ne_do(&f), ASYNC_ECANCELED);
    ASSERT(s.rio.loop == NULL);
    ASSERT_EQ(async_stream_write(&s, ne_pattern(0, NE_BIG), NE_BIG), 0);
    ne_op(&f, NE_DRAIN, &s)->cancel_first = true;
    ASSERT_EQ(ne_do(&f), ASYNC_ECANCELED);
    ASSERT(s.wio.loop == NULL);
    ASSERT(async_stream_pending(&s) > 0);
    async_stream_close(&s);
    close(sv[1]);
    ne_connect_op(&f, &s, "127.0.0.1", port, 1000)->cancel_first = true;
    ASSERT_EQ(ne_do(&f), ASYNC_ECANCELED);
    ASSERT_EQ(async_stream_fd(&s), -1);
    ne_connect_op(&f, &s, "127.1", port, 1000)->cancel_first = true;
    ASSERT_EQ(ne_do(&f), ASYNC_ECANCELED);
    ASSERT_EQ(async_stream_fd(&s), -1);
    close(lfd);
}

TEST(net_errors_two_waits_on_one_async_io_second_is_ebusy) {
    static ne_duo d;
    static async_io io;
    int sv[2];
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    ne_duo_init(&d, ne_between_write_fd, 0)->fd = sv[1];
    d.with_b = true;
    ne_wait_op(&d.a, NE_READABLE, &io, sv[0], 1000);
    ne_wait_op(&d.b, NE_READABLE, &io, sv[0], 1000);
    ASSERT_EQ(ne_run(&d.task), 0);
    ASSERT_EQ(d.b.code, ASYNC_EBUSY);
    ASSERT_EQ(d.a.code, 0); /* the first wait was left alone and saw the data */
    ASSERT_EQ(async_io_events(&io), ASYNC_IO_READ);
    close(sv[0]);
    close(sv[1]);
}

TEST(net_errors_two_reads_on_one_stream_second_is_ebusy) {
    static ne_duo d;
    static async_stream s;
    int sv[2];
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    ASSERT_EQ(async_stream_open(&s, sv[0]), 0);
    ne_duo_init(&d, ne_between_write_fd, 0)->fd = sv[1];
    d.with_b = true;
    ne_op(&d.a, NE_LINE, &s);
    ne_op(&d.b, NE_READ, &s);
    ASSERT_EQ(ne_run(&d.task), 0);
    ASSERT_EQ(d.b.code, ASYNC_EBUSY);
    ASSERT_EQ(d.a.code, 0);
    ASSERT_EQ(d.a.got, 5);
    ASSERT(memcmp(d.a.ln, "data\n", 5) == 0);
    ASSERT_EQ(d.b.got, 0);
    async_stream_close(&s);
    close(sv[1]);
}

TEST(net_errors_two_drains_on_one_stream_second_is_ebusy) {
    static ne_duo d;
    static async_stream s;
    int sv[2];
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    ASSERT_EQ(async_stream_open(&s, sv[0]), 0);
    ASSERT_EQ(async_stream_write(&s, ne_pattern(0, NE_BIG), NE_BIG), 0);
    ne_duo_init(&d, NULL, 0);
    d.with_b = true;
    ne_op(&d.a, NE_DRAIN, &s)->ms = 20;
    ne_op(&d.b, NE_DRAIN, &s)->ms = 1000;
    ASSERT_EQ(ne_run(&d.task), 0);
    ASSERT_EQ(d.b.code, ASYNC_EBUSY);
    ASSERT_EQ(d.a.code, ASYNC_ETIMEDOUT); /* its own deadline, not the second one's */
    async_stream_close(&s);
    close(sv[1]);
}

/* ---- the server ---- */

typedef struct {
    async_task task;
    async_stream *s;
    char buf[64];
    size_t n;
} ne_echo_frame;

static async_status ne_echo_run(async_task *t) {
    ne_echo_frame *f = (ne_echo_frame *)t;
    ASYNC_BEGIN(t);
    for (;;) {
        AWAIT_STREAM_READ(t, f->s, f->buf, sizeof f->buf, &f->n, 2000);
        if (f->n == 0) break;
        if (async_stream_write(f->s, f->buf, f->n)) ASYNC_THROW(t, ASYNC_EIO, "echo write failed");
        AWAIT_STREAM_DRAIN(t, f->s, 2000);
    }
    ASYNC_END(t);
}

static async_task *ne_echo_new(void *frame, async_stream *s, void *arg) {
    ne_echo_frame *f = (ne_echo_frame *)frame;
    (void)arg;
    ASYNC_FRAME_INIT(f, ne_echo_run);
    f->s = s;
    return &f->task;
}

/* What the connections of a scenario server did. */
typedef struct {
    async_server *srv;
    int made, started, finished, cancelled, cleaned;
    int close_at;   /* the conn fn closes the server at this connection (1-based); 0: never */
    bool born_idle; /* the conn fn marks new connections idle */
    int mode;       /* 0: ne_conn_run; 1: a task that answers "bye" and ends in its first step; 2: one
                       that fails in its first step */
} ne_srv_stats;

/* A connection: reads one command line and acts on it. "slow": answers "busy", sleeps 30 ms, answers
 * "done". "hang": answers "ok" and waits for input forever. "stubborn": the same, but once cancelled it
 * takes 30 ms to clean up. "idle": answers "ok", marks itself idle and waits for the next line. "late":
 * answers "ok", sleeps 30 ms, then marks itself idle and reads. */
typedef struct {
    async_task task;
    async_stream *s;
    ne_srv_stats *st;
    const char *line;
    size_t len, n;
    bool cleanup;
    char cmd[8];
    char buf[16];
} ne_conn_frame;

static async_status ne_conn_run(async_task *t) {
    ne_conn_frame *f = (ne_conn_frame *)t;
    ASYNC_BEGIN(t);
    f->st->started++;
    ASYNC_TRY(t) {
        AWAIT_STREAM_READLINE(t, f->s, &f->line, &f->len, 64, 2000);
        memcpy(f->cmd, f->line, f->len < 4 ? f->len : 4);
        if (strcmp(f->cmd, "slow") == 0)
            async_stream_write(f->s, "busy\n", 5);
        else
            async_stream_write(f->s, "ok\n", 3);
        AWAIT_STREAM_DRAIN(t, f->s, 1000);
        if (strcmp(f->cmd, "slow") == 0) {
            AWAIT_SLEEP(t, 30);
            async_stream_write(f->s, "done\n", 5);
            AWAIT_STREAM_DRAIN(t, f->s, 1000);
        } else if (strcmp(f->cmd, "hang") == 0 || strcmp(f->cmd, "stubborn") == 0) {
            AWAIT_STREAM_READ(t, f->s, f->buf, sizeof f->buf, &f->n, -1);
        } else if (strcmp(f->cmd, "idle") == 0) {
            async_stream_set_idle(f->s, true);
            AWAIT_STREAM_READLINE(t, f->s, &f->line, &f->len, 64, 2000);
        } else {
            AWAIT_SLEEP(t, 30);
            async_stream_set_idle(f->s, true); /* the server closed meanwhile: cancelled at the next await */
            AWAIT_STREAM_READLINE(t, f->s, &f->line, &f->len, 64, 2000);
        }
        f->st->finished++;
    }
    ASYNC_CATCH(t) {
        if (async_caught(t)->code == ASYNC_ECANCELED) f->st->cancelled++;
        f->cleanup = strcmp(f->cmd, "stubborn") == 0;
    }
    ASYNC_END_TRY(t);
    if (f->cleanup) { /* the server waits for it; a second cancellation cuts it short */
        AWAIT_SLEEP(t, 30);
        f->st->cleaned++;
    }
    ASYNC_END(t);
}

static async_status ne_conn_quick_run(async_task *t) {
    ne_conn_frame *f = (ne_conn_frame *)t;
    ASYNC_BEGIN(t);
    f->st->started++;
    async_stream_write(f->s, "bye\n", 4); /* the server closes the stream after the task: unsent output
                                             is dropped, but 4 bytes go out at once */
    f->st->finished++;
    ASYNC_END(t);
}

static async_status ne_conn_failing_run(async_task *t) {
    ne_conn_frame *f = (ne_conn_frame *)t;
    ASYNC_BEGIN(t);
    f->st->started++;
    ASYNC_THROW(t, ASYNC_EPROTO, "this connection fails at once");
    ASYNC_END(t);
}

static async_task *ne_conn_new(void *frame, async_stream *s, void *arg) {
    ne_srv_stats *st = (ne_srv_stats *)arg;
    ne_conn_frame *f = (ne_conn_frame *)frame;
    st->made++;
    if (st->made == st->close_at) async_server_close(st->srv, -1);
    if (st->born_idle) async_stream_set_idle(s, true);
    ASYNC_FRAME_INIT(f, st->mode == 1 ? ne_conn_quick_run : st->mode == 2 ? ne_conn_failing_run : ne_conn_run);
    f->s = s;
    f->st = st;
    return &f->task;
}

/* A server scenario: the client connects, sends `cmd`, reads the first answer, then the server is closed
 * with `grace_ms` (or cancelled, if cancel_serve), and the client reads what else comes. */
typedef struct {
    async_task task;
    async_server srv;
    async_group g;
    async_stream c;
    ne_srv_stats st;
    const char *cmd;
    int32_t grace_ms;
    int cancel_serve;   /* times to cancel the accept loop, 5 ms apart, after the close (if grace_ms > -2) */
    int i;
    const char *line;
    size_t len;
    char log[128];
    int client_code;
    int port;
} ne_srv_frame;

static void ne_srv_log(ne_srv_frame *f, const char *p, size_t n) {
    size_t used = strlen(f->log);
    snprintf(f->log + used, sizeof f->log - used, "[%.*s]", (int)n, p);
}

static async_status ne_srv_run(async_task *t) {
    ne_srv_frame *f = (ne_srv_frame *)t;
    ASYNC_BEGIN(t);
    ASSERT_EQ(async_server_listen(&f->srv, "127.0.0.1", 0, 0, sizeof(ne_conn_frame), ne_conn_new, &f->st), 0);
    f->st.srv = &f->srv;
    f->port = async_server_port(&f->srv);
    ASYNC_SPAWN(t, &f->g, async_server_serve(&f->srv));
    ASYNC_TRY(t) {
        AWAIT_STREAM_CONNECT(t, &f->c, "127.0.0.1", f->port, 1000);
        async_stream_write(&f->c, f->cmd, strlen(f->cmd));
        AWAIT_STREAM_READLINE(t, &f->c, &f->line, &f->len, 64, 2000);
        ne_srv_log(f, f->line, f->len);
        if (f->grace_ms > -2) async_server_close(&f->srv, f->grace_ms);
        ASSERT(async_server_closing(&f->srv));
        for (f->i = 0; f->i < f->cancel_serve; f->i++) {
            AWAIT_SLEEP(t, 5);
            async_cancel(&f->srv.task);
        }
        for (;;) {
            AWAIT_STREAM_READLINE(t, &f->c, &f->line, &f->len, 64, 2000);
            if (!f->len) break;
            ne_srv_log(f, f->line, f->len);
        }
    }
    ASYNC_CATCH(t) {
        f->client_code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
    async_stream_close(&f->c);
    async_server_close(&f->srv, 0); /* if the client failed before it closed the server */
    AWAIT_GROUP(t, &f->g);
    ASYNC_END(t);
}

static int ne_srv_scenario(ne_srv_frame *f, const char *cmd, int32_t grace_ms) {
    ASYNC_FRAME_INIT(f, ne_srv_run);
    f->cmd = cmd;
    f->grace_ms = grace_ms;
    return ne_run(&f->task);
}

TEST(net_errors_server_close_with_grace_lets_a_busy_connection_finish) {
    static ne_srv_frame f;
    ASSERT_EQ(ne_srv_scenario(&f, "slow\n", 2000), 0);
    ASSERT_STR_EQ(f.log, "[busy\n][done\n]");
    ASSERT_EQ(f.client_code, 0);
    ASSERT_EQ(f.st.finished, 1);
    ASSERT_EQ(f.st.cancelled, 0);
    ASSERT_EQ(async_task_code(&f.srv.task), 0);
    ASSERT_EQ(async_server_connections(&f.srv), 0);
}

TEST(net_errors_server_close_without_limit_waits_for_the_connection) {
    static ne_srv_frame f;
    ASSERT_EQ(ne_srv_scenario(&f, "slow\n", -1), 0);
    ASSERT_STR_EQ(f.log, "[busy\n][done\n]");
    ASSERT_EQ(f.st.finished, 1);
    ASSERT_EQ(f.st.cancelled, 0);
}

TEST(net_errors_server_grace_runs_out_and_cancels_the_connection) {
    static ne_srv_frame f;
    ASSERT_EQ(ne_srv_scenario(&f, "hang\n", 20), 0);
    ASSERT_STR_EQ(f.log, "[ok\n]");
    ASSERT_EQ(f.st.finished, 0);
    ASSERT_EQ(f.st.cancelled, 1);
    ASSERT_EQ(async_task_code(&f.srv.task), 0);
    ASSERT_EQ(f.srv.accepted, 1);
}

TEST(net_errors_server_close_without_grace_cancels_at_once) {
    static ne_srv_frame f;
    ASSERT_EQ(ne_srv_scenario(&f, "hang\n", 0), 0);
    ASSERT_EQ(f.st.cancelled, 1);
    ASSERT_EQ(async_task_code(&f.srv.task), 0);
}

TEST(net_errors_server_close_cancels_idle_connections_at_once) {
    static ne_srv_frame f;
    ASSERT_EQ(ne_srv_scenario(&f, "idle\n", -1), 0); /* no limit: only its being idle ends it */
    ASSERT_STR_EQ(f.log, "[ok\n]");
    ASSERT_EQ(f.st.cancelled, 1);
    ASSERT_EQ(f.st.finished, 0);
}

TEST(net_errors_server_connection_going_idle_after_close_is_cancelled) {
    static ne_srv_frame f;
    ASSERT_EQ(ne_srv_scenario(&f, "late\n", -1), 0);
    ASSERT_EQ(f.st.cancelled, 1);
    ASSERT_EQ(f.st.finished, 0);
}

TEST(net_errors_server_cancelled_while_waiting_for_its_connections) {
    static ne_srv_frame f;
    ASYNC_FRAME_INIT(&f, ne_srv_run);
    f.cmd = "hang\n";
    f.grace_ms = -1; /* closed without a limit: only the cancellation ends the connection */
    f.cancel_serve = 1;
    ASSERT_EQ(ne_run(&f.task), 0);
    ASSERT_EQ(f.st.cancelled, 1);
    ASSERT_EQ(async_task_code(&f.srv.task), ASYNC_ECANCELED);
}

TEST(net_errors_server_cancelled_during_its_grace_period) {
    static ne_srv_frame f;
    ASYNC_FRAME_INIT(&f, ne_srv_run);
    f.cmd = "hang\n";
    f.grace_ms = 2000;
    f.cancel_serve = 1;
    ASSERT_EQ(ne_run(&f.task), 0);
    ASSERT_EQ(f.st.cancelled, 1);
    ASSERT_EQ(async_task_code(&f.srv.task), ASYNC_ECANCELED);
}

TEST(net_errors_server_cancelled_twice_cancels_its_connections_again) {
    static ne_srv_frame f;
    ASYNC_FRAME_INIT(&f, ne_srv_run);
    f.cmd = "stubborn\n";
    f.grace_ms = -1;
    f.cancel_serve = 2;
    ASSERT_EQ(ne_run(&f.task), 0);
    ASSERT_EQ(f.st.cancelled, 1);
    ASSERT_EQ(f.st.cleaned, 0); /* its clean-up was cancelled by the second one */
    ASSERT_EQ(async_task_code(&f.srv.task), ASYNC_ECANCELED);
    ASSERT_EQ(async_server_connections(&f.srv), 0);
}

TEST(net_errors_server_fn_closing_the_server_skips_the_new_connection) {
    static ne_srv_frame f;
    ASYNC_FRAME_INIT(&f, ne_srv_run);
    f.cmd = ""; /* nothing sent: the server's close of it is an orderly end, not a reset */
    f.grace_ms = -2;
    f.st.close_at = 1;
    f.st.born_idle = true;
    ASSERT_EQ(ne_run(&f.task), 0);
    ASSERT_EQ(f.st.made, 1);
    ASSERT_EQ(f.st.started, 0); /* closed and idle before it ran: its body never ran */
    ASSERT_EQ(f.client_code, 0);
    ASSERT_STR_EQ(f.log, "[]"); /* the client's first readline saw the end */
    ASSERT_EQ(async_task_code(&f.srv.task), 0);
    ASSERT_EQ(f.srv.accepted, 1);
}

TEST(net_errors_server_connection_task_ending_in_its_first_step) {
    static ne_srv_frame f;
    ASYNC_FRAME_INIT(&f, ne_srv_run);
    f.cmd = "";
    f.grace_ms = -1;
    f.st.mode = 1;
    ASSERT_EQ(ne_run(&f.task), 0);
    ASSERT_STR_EQ(f.log, "[bye\n]");
    ASSERT_EQ(f.st.finished, 1);
    ASSERT_EQ(async_server_connections(&f.srv), 0);
    ASSERT_EQ(async_task_code(&f.srv.task), 0);
}

TEST(net_errors_server_connection_failing_ends_it_alone) {
    static ne_srv_frame f;
    ASYNC_FRAME_INIT(&f, ne_srv_run);
    f.cmd = "";
    f.grace_ms = -1;
    f.st.mode = 2;
    ASSERT_EQ(ne_run(&f.task), 0);
    ASSERT_STR_EQ(f.log, "[]"); /* the end of the stream */
    ASSERT_EQ(f.st.started, 1);
    ASSERT_EQ(f.client_code, 0);
    ASSERT_EQ(async_task_code(&f.srv.task), 0); /* the server was not hurt */
    ASSERT_EQ(f.srv.accepted, 1);
}

/* Two clients; the conn fn closes the server when the second arrives, while the first still runs. */
typedef struct {
    async_task task;
    async_server srv;
    async_group g;
    async_stream c1, c2;
    ne_srv_stats st;
    const char *line;
    size_t len;
    char log[64];
} ne_two_frame;

static async_status ne_two_run(async_task *t) {
    ne_two_frame *f = (ne_two_frame *)t;
    ASYNC_BEGIN(t);
    ASSERT_EQ(async_server_listen(&f->srv, "127.0.0.1", 0, 0, sizeof(ne_conn_frame), ne_conn_new, &f->st), 0);
    f->st.srv = &f->srv;
    f->st.close_at = 2;
    ASYNC_SPAWN(t, &f->g, async_server_serve(&f->srv));
    AWAIT_STREAM_CONNECT(t, &f->c1, "127.0.0.1", async_server_port(&f->srv), 1000);
    async_stream_write(&f->c1, "hang\n", 5);
    AWAIT_STREAM_READLINE(t, &f->c1, &f->line, &f->len, 64, 2000); /* the first connection runs */
    AWAIT_STREAM_CONNECT(t, &f->c2, "127.0.0.1", async_server_port(&f->srv), 1000);
    async_stream_write(&f->c2, "slow\n", 5);
    for (;;) { /* the second one is served to its end, though the server closed when it came */
        AWAIT_STREAM_READLINE(t, &f->c2, &f->line, &f->len, 64, 2000);
        if (!f->len) break;
        strncat(f->log, f->line, f->len);
    }
    ASSERT(async_server_closing(&f->srv));
    ASSERT_EQ(async_server_connections(&f->srv), 1); /* the first still waits for input */
    async_stream_close(&f->c1); /* its end of stream ends it */
    AWAIT_GROUP(t, &f->g);
    async_stream_close(&f->c2);
    ASYNC_END(t);
}

TEST(net_errors_server_closed_by_its_conn_fn_waits_for_every_connection) {
    static ne_two_frame f;
    ASYNC_FRAME_INIT(&f, ne_two_run);
    ASSERT_EQ(ne_run(&f.task), 0);
    ASSERT_STR_EQ(f.log, "busy\ndone\n");
    ASSERT_EQ(f.st.made, 2);
    ASSERT_EQ(f.st.finished, 2);
    ASSERT_EQ(f.st.cancelled, 0);
    ASSERT_EQ(async_task_code(&f.srv.task), 0);
    ASSERT_EQ(async_server_connections(&f.srv), 0);
}

typedef struct {
    async_task task;
    async_server srv;
    async_group g;
    ne_op_frame op;
    async_stream c;
} ne_accept_cancel_frame;

static async_status ne_accept_cancel_run(async_task *t) {
    ne_accept_cancel_frame *f = (ne_accept_cancel_frame *)t;
    ASYNC_BEGIN(t);
    ASSERT_EQ(async_server_listen(&f->srv, "127.0.0.1", 0, 0, sizeof(ne_echo_frame), ne_echo_new, NULL), 0);
    ASYNC_SPAWN(t, &f->g, async_server_serve(&f->srv));
    AWAIT_SLEEP(t, 0);
    async_cancel(&f->srv.task);
    AWAIT_GROUP(t, &f->g);
    AWAIT(t, &ne_connect_op(&f->op, &f->c, "127.0.0.1", async_server_port(&f->srv), 1000)->task);
    ASYNC_END(t);
}

TEST(net_errors_server_cancelled_in_its_accept_wait_closes_the_listener) {
    static ne_accept_cancel_frame f;
    ASYNC_FRAME_INIT(&f, ne_accept_cancel_run);
    ASSERT_EQ(ne_run(&f.task), 0);
    ASSERT_EQ(async_task_code(&f.srv.task), ASYNC_ECANCELED);
    ASSERT_EQ(f.op.code, ASYNC_ECONNREFUSED); /* nothing listens any more */
    ASSERT(async_server_closing(&f.srv));
}

typedef struct {
    async_task task;
    async_server srv;
    int code;
} ne_serve_frame;

static async_status ne_serve_run(async_task *t) {
    ne_serve_frame *f = (ne_serve_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_TRY(t) {
        AWAIT(t, async_server_serve(&f->srv));
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
    ASYNC_END(t);
}

TEST(net_errors_serve_misuse) {
    static ne_serve_frame f;
    static async_server zeroed;
    if (!ne_fd_is_open(0)) ASSERT_EQ(open("/dev/null", O_RDONLY), 0);
    /* never listened: its fd field is 0, which is not its socket */
    ASYNC_FRAME_INIT(&f, ne_serve_run);
    ASSERT_EQ(ne_run(&f.task), 0);
    ASSERT_EQ(f.code, ASYNC_EBADF);
    ASSERT(ne_fd_is_open(0));
    async_server_close(&zeroed, 0);
    ASSERT(async_server_closing(&zeroed));
    ASSERT(ne_fd_is_open(0)); /* closing it closes nothing */
    ASYNC_FRAME_INIT(&f, ne_serve_run);
    f.srv = zeroed;
    ASSERT_EQ(ne_run(&f.task), 0);
    ASSERT_EQ(f.code, ASYNC_EBADF); /* closed, but it never listened */
    ASSERT(ne_fd_is_open(0));
    /* the virtual clock polls no sockets */
    ASYNC_FRAME_INIT(&f, ne_serve_run);
    ASSERT_EQ(async_server_listen(&f.srv, "127.0.0.1", 0, 0, 64, ne_echo_new, NULL), 0);
    ASSERT_EQ(ne_run_virtual(&f.task), 0);
    ASSERT_EQ(f.code, ASYNC_ENOTSUP);
    async_server_close(&f.srv, 0);
    /* closed before it served: it ends at once */
    ASYNC_FRAME_INIT(&f, ne_serve_run);
    ASSERT_EQ(async_server_listen(&f.srv, "127.0.0.1", 0, 0, 64, ne_echo_new, NULL), 0);
    async_server_close(&f.srv, 0);
    async_server_close(&f.srv, 0); /* twice is fine */
    ASSERT_EQ(ne_run(&f.task), 0);
    ASSERT_EQ(f.code, 0);
    ASSERT_EQ(f.srv.accepted, 0);
}

typedef struct {
    async_task task;
    async_server srv;
    async_group g;
    async_stream c;
    struct rlimit old;
    char buf[8];
    int64_t t0;
    int code;
} ne_emfile_frame;

static async_status ne_emfile_run(async_task *t) {
    ne_emfile_frame *f = (ne_emfile_frame *)t;
    ASYNC_BEGIN(t);
    ASSERT_EQ(async_server_listen(&f->srv, "127.0.0.1", 0, 0, sizeof(ne_echo_frame), ne_echo_new, NULL), 0);
    AWAIT_STREAM_CONNECT(t, &f->c, "127.0.0.1", async_server_port(&f->srv), 1000); /* in the backlog */
    f->old = ne_no_more_fds();
    ASYNC_SPAWN(t, &f->g, async_server_serve(&f->srv));
    AWAIT_SLEEP(t, 20); /* the accept loop finds no descriptor for it and waits */
    ASSERT_EQ(f->srv.accepted, 0);
    ASSERT(setrlimit(RLIMIT_NOFILE, &f->old) == 0);
    async_stream_write(&f->c, "ping", 4);
    AWAIT_STREAM_READEXACTLY(t, &f->c, f->buf, 4, 2000); /* accepted once descriptors are back */
    ASSERT(memcmp(f->buf, "ping", 4) == 0);
    async_stream_close(&f->c);
    async_server_close(&f->srv, 1000);
    AWAIT_GROUP(t, &f->g);
    ASYNC_END(t);
}

static async_status ne_emfile_cancel_run(async_task *t) {
    ne_emfile_frame *f = (ne_emfile_frame *)t;
    ASYNC_BEGIN(t);
    ASSERT_EQ(async_server_listen(&f->srv, "127.0.0.1", 0, 0, sizeof(ne_echo_frame), ne_echo_new, NULL), 0);
    AWAIT_STREAM_CONNECT(t, &f->c, "127.0.0.1", async_server_port(&f->srv), 1000);
    f->old = ne_no_more_fds();
    ASYNC_SPAWN(t, &f->g, async_server_serve(&f->srv));
    AWAIT_SLEEP(t, 10); /* the accept loop sleeps, out of descriptors */
    async_cancel(&f->srv.task);
    AWAIT_GROUP(t, &f->g);
    ASSERT(setrlimit(RLIMIT_NOFILE, &f->old) == 0);
    ASYNC_END(t);
}

TEST(net_errors_server_cancelled_while_out_of_descriptors) {
    static ne_emfile_frame f;
    ASYNC_FRAME_INIT(&f, ne_emfile_cancel_run);
    ASSERT_EQ(ne_run(&f.task), 0);
    ASSERT_EQ(async_task_code(&f.srv.task), ASYNC_ECANCELED);
    ASSERT_EQ(f.srv.accepted, 0);
    async_stream_close(&f.c);
}

TEST(net_errors_server_out_of_descriptors_waits_and_accepts_later) {
    static ne_emfile_frame f;
    if (getenv("ASYNC_TEST_VALGRIND")) { /* valgrind emulates the limit after the fact: it closes the
                                            accepted socket, and the connection is lost */
        printf("    skipped under valgrind\n");
        return;
    }
    ASYNC_FRAME_INIT(&f, ne_emfile_run);
    ASSERT_EQ(ne_run(&f.task), 0);
    ASSERT_EQ(f.srv.accepted, 1);
    ASSERT_EQ(f.srv.refused, 0);
}

/* ---- no memory for a thread's stack ---- */

/* Caps the address space a little above what the process maps now: small allocations still fit,
 * a thread's stack does not. Returns the old limit. Sanitizers and valgrind manage memory their own way:
 * false there (the test is skipped). */
static bool ne_cap_address_space(size_t margin, struct rlimit *old) {
    struct rlimit lim;
    unsigned long pages = 0;
    FILE *f;
#if defined(__SANITIZE_ADDRESS__)
    return false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    return false;
#endif
#endif
    if (getenv("ASYNC_TEST_VALGRIND")) return false;
    f = fopen("/proc/self/statm", "r");
    if (!f) return false;
    if (fscanf(f, "%lu", &pages) != 1) pages = 0;
    fclose(f);
    if (!pages) return false;
    ASSERT(getrlimit(RLIMIT_AS, old) == 0);
    lim = *old;
    lim.rlim_cur = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + margin;
    return setrlimit(RLIMIT_AS, &lim) == 0;
}

TEST(net_errors_connect_by_name_without_memory_for_the_lookup_thread) {
    static ne_op_frame f;
    static async_stream s;
    struct rlimit old;
    int port, lfd = test_listen_raw(4, &port), fds = test_count_fds();
    async_loop *loop = async_loop_new(0);
    ASSERT(loop != NULL);
    ne_connect_op(&f, &s, "127.1", port, 1000);
    /* before any thread ran: glibc has no stack of an ended thread to reuse */
    if (!ne_cap_address_space(64 * 1024, &old)) { /* the lookup thread's stack is 256 KiB */
        printf("    skipped: sanitizer, valgrind or no address space limit\n");
        async_loop_free(loop);
        close(lfd);
        return;
    }
    ASSERT_EQ(async_run(loop, &f.task), 0);
    ASSERT(setrlimit(RLIMIT_AS, &old) == 0);
    ASSERT_EQ(f.code, ASYNC_EAGAIN);
    ASSERT_EQ(async_stream_fd(&s), -1);
    async_loop_free(loop);
    ASSERT_EQ(test_count_fds(), fds); /* nothing left open */
    ASSERT_EQ(ne_accept_now(lfd), -1);
    /* with memory back, the same stream connects by name */
    ASSERT_EQ(ne_do(ne_connect_op(&f, &s, "127.1", port, 1000)), 0);
    async_stream_close(&s);
    close(lfd);
}

/* ---- loops on threads, remote calls ---- */

static int ne_remote_log[8], ne_remote_n;

typedef struct {
    async_task task;
    async_remote *r;
    async_future done;
    int code_null;
} ne_remote_frame;

static ne_remote_frame ne_remote;

static void ne_remote_fn(async_loop *loop, void *arg) {
    ASSERT(loop != NULL);
    ne_remote_log[ne_remote_n++] = (int)(intptr_t)arg;
    if ((intptr_t)arg == 2) async_future_set_value(&ne_remote.done, 2);
}

static async_status ne_remote_run(async_task *t) {
    ne_remote_frame *f = (ne_remote_frame *)t;
    ASYNC_BEGIN(t);
    f->r = async_remote_new(async_task_loop(t));
    ASSERT(f->r != NULL);
    ASSERT_EQ(async_remote_call(f->r, ne_remote_fn, (void *)(intptr_t)1), 0);
    ASSERT_EQ(async_remote_call(f->r, ne_remote_fn, (void *)(intptr_t)2), 0); /* queued behind the first */
    f->code_null = async_remote_call(f->r, NULL, NULL);
    AWAIT_FUTURE(t, &f->done);
    ASSERT_EQ(async_remote_call(f->r, ne_remote_fn, (void *)(intptr_t)3), 0);
    ASSERT_EQ(async_remote_call(f->r, ne_remote_fn, (void *)(intptr_t)4), 0);
    async_remote_free(f->r); /* runs what is still queued */
    ASYNC_END(t);
}

TEST(net_errors_remote_calls_run_in_order_and_free_runs_the_rest) {
    ASYNC_FRAME_INIT(&ne_remote, ne_remote_run);
    ne_remote_n = 0;
    ASSERT_EQ(ne_run(&ne_remote.task), 0);
    ASSERT_EQ(ne_remote.code_null, ASYNC_EINVAL);
    ASSERT_EQ(ne_remote_n, 4);
    ASSERT_EQ(ne_remote_log[0], 1);
    ASSERT_EQ(ne_remote_log[1], 2);
    ASSERT_EQ(ne_remote_log[2], 3);
    ASSERT_EQ(ne_remote_log[3], 4);
}

typedef struct {
    async_task task;
    int code;
    bool ran;
} ne_thread_main;

static ne_thread_main ne_thread_mains[3];

static async_status ne_thread_main_run(async_task *t) {
    ne_thread_main *f = (ne_thread_main *)t;
    ASYNC_BEGIN(t);
    f->ran = true;
    AWAIT_SLEEP(t, 1);
    if (f->code) ASYNC_THROW_ERROR(t, async_error_of(f->code));
    ASYNC_END(t);
}

/* arg: the code each main ends with; 1 means make_main gives no task for that index. */
static async_task *ne_make_thread_main(unsigned i, void *arg) {
    const int *codes = (const int *)arg;
    if (codes[i] == 1) return NULL;
    ASYNC_FRAME_INIT(&ne_thread_mains[i], ne_thread_main_run);
    ne_thread_mains[i].code = codes[i];
    return &ne_thread_mains[i].task;
}

TEST(net_errors_run_threads_returns_the_first_error_in_index_order) {
    static const int second_fails[] = {0, ASYNC_EPROTO}, both_fail[] = {ASYNC_EPERM, ASYNC_EPROTO, 0},
                     no_task[] = {0, 1};
    ASSERT_EQ(async_run_threads(2, ne_make_thread_main, (void *)second_fails), ASYNC_EPROTO);
    ASSERT(ne_thread_mains[0].ran && ne_thread_mains[1].ran);
    ASSERT_EQ(async_run_threads(3, ne_make_thread_main, (void *)both_fail), ASYNC_EPERM);
    ASSERT(ne_thread_mains[2].ran);
    memset(ne_thread_mains, 0, sizeof ne_thread_mains);
    ASSERT_EQ(async_run_threads(2, ne_make_thread_main, (void *)no_task), ASYNC_EINVAL);
    ASSERT(!ne_thread_mains[0].ran); /* nothing ran: every main is made first */
}

TEST(net_errors_run_threads_without_memory_for_a_thread) {
    static const int codes[] = {0, 0};
    struct rlimit old;
    memset(ne_thread_mains, 0, sizeof ne_thread_mains);
    if (!ne_cap_address_space(2u << 20, &old)) { /* a thread's default stack is 8 MiB */
        printf("    skipped: sanitizer, valgrind or no address space limit\n");
        return;
    }
    ASSERT_EQ(async_run_threads(2, ne_make_thread_main, (void *)codes), ASYNC_EAGAIN);
    ASSERT(setrlimit(RLIMIT_AS, &old) == 0);
    ASSERT(ne_thread_mains[0].ran);  /* loop 0 runs on the calling thread */
    ASSERT(!ne_thread_mains[1].ran); /* loop 1 had no thread */
}

static const test_case net_errors_tests[] = {
    TEST_ENTRY(net_errors_errno_codes_map_to_library_codes)
    TEST_ENTRY(net_errors_stream_on_a_pipe_fails_with_eio_not_sticky)
    TEST_ENTRY(net_errors_stream_functions_reject_bad_arguments)
    TEST_ENTRY(net_errors_server_and_thread_functions_reject_bad_arguments)
    TEST_ENTRY(net_errors_read_operations_reject_bad_arguments)
    TEST_ENTRY(net_errors_fd_waits_reject_bad_arguments)
    TEST_ENTRY(net_errors_fd_wait_on_a_closed_descriptor_is_ebadf)
    TEST_ENTRY(net_errors_closed_stream_fails_every_operation_with_ebadf)
    TEST_ENTRY(net_errors_connect_rejects_bad_arguments)
    TEST_ENTRY(net_errors_connect_on_the_virtual_clock_is_enotsup_and_leaves_no_socket)
    TEST_ENTRY(net_errors_connect_by_name_resolves_on_a_thread_and_connects)
    TEST_ENTRY(net_errors_connect_by_name_to_a_closed_port_is_refused)
    TEST_ENTRY(net_errors_connect_fails_at_once_for_unreachable_addresses)
    TEST_ENTRY(net_errors_connect_to_a_malformed_name_is_enxio)
    TEST_ENTRY(net_errors_connect_to_the_any_address_reaches_this_host)
    TEST_ENTRY(net_errors_bracketed_ipv6_literals)
    TEST_ENTRY(net_errors_out_of_descriptors_connect_and_listen_are_emfile)
    TEST_ENTRY(net_errors_reads_from_the_buffer_limits_and_end_of_stream)
    TEST_ENTRY(net_errors_readline_without_limit_compacts_and_grows_the_buffer)
    TEST_ENTRY(net_errors_reset_by_peer_is_sticky_for_every_operation)
    TEST_ENTRY(net_errors_unconnected_socket_is_enotconn_and_sticky)
    TEST_ENTRY(net_errors_write_queue_grows_compacts_and_refuses_impossible_lengths)
    TEST_ENTRY(net_errors_drain_to_a_vanished_peer_is_epipe)
    TEST_ENTRY(net_errors_close_wakes_a_waiting_read_with_ebadf)
    TEST_ENTRY(net_errors_close_after_a_read_was_woken_but_before_it_resumed)
    TEST_ENTRY(net_errors_close_wakes_a_waiting_drain_with_ebadf)
    TEST_ENTRY(net_errors_close_wakes_a_waiting_connect_with_ebadf)
    TEST_ENTRY(net_errors_close_during_name_resolution_wakes_the_connect)
    TEST_ENTRY(net_errors_cancel_a_waiting_read_keeps_the_stream_usable)
    TEST_ENTRY(net_errors_cancel_a_waiting_drain_keeps_the_queue)
    TEST_ENTRY(net_errors_cancel_a_waiting_connect_leaves_no_socket)
    TEST_ENTRY(net_errors_cancel_during_name_resolution)
    TEST_ENTRY(net_errors_cancelled_before_each_wait_starts)
    TEST_ENTRY(net_errors_two_waits_on_one_async_io_second_is_ebusy)
    TEST_ENTRY(net_errors_two_reads_on_one_stream_second_is_ebusy)
    TEST_ENTRY(net_errors_two_drains_on_one_stream_second_is_ebusy)
    TEST_ENTRY(net_errors_server_close_with_grace_lets_a_busy_connection_finish)
    TEST_ENTRY(net_errors_server_close_without_limit_waits_for_the_connection)
    TEST_ENTRY(net_errors_server_grace_runs_out_and_cancels_the_connection)
    TEST_ENTRY(net_errors_server_close_without_grace_cancels_at_once)
    TEST_ENTRY(net_errors_server_close_cancels_idle_connections_at_once)
    TEST_ENTRY(net_errors_server_connection_going_idle_after_close_is_cancelled)
    TEST_ENTRY(net_errors_server_cancelled_while_waiting_for_its_connections)
    TEST_ENTRY(net_errors_server_cancelled_during_its_grace_period)
    TEST_ENTRY(net_errors_server_cancelled_twice_cancels_its_connections_again)
    TEST_ENTRY(net_errors_server_fn_closing_the_server_skips_the_new_connection)
    TEST_ENTRY(net_errors_server_connection_task_ending_in_its_first_step)
    TEST_ENTRY(net_errors_server_connection_failing_ends_it_alone)
    TEST_ENTRY(net_errors_server_closed_by_its_conn_fn_waits_for_every_connection)
    TEST_ENTRY(net_errors_server_cancelled_in_its_accept_wait_closes_the_listener)
    TEST_ENTRY(net_errors_serve_misuse)
    TEST_ENTRY(net_errors_server_cancelled_while_out_of_descriptors)
    TEST_ENTRY(net_errors_server_out_of_descriptors_waits_and_accepts_later)
    TEST_ENTRY(net_errors_connect_by_name_without_memory_for_the_lookup_thread)
    TEST_ENTRY(net_errors_remote_calls_run_in_order_and_free_runs_the_rest)
    TEST_ENTRY(net_errors_run_threads_returns_the_first_error_in_index_order)
    TEST_ENTRY(net_errors_run_threads_without_memory_for_a_thread)
    {NULL, NULL}
};
