/* Streams against real sockets on 127.0.0.1 and socket pairs: connect (by address, by name on a
 * thread, refused, timed out, unreachable, without memory for the lookup thread, on the virtual clock),
 * read, readline, readexactly, fill, write, drain and back-pressure, errors that stick (reset, EPIPE,
 * ENOTCONN) and those that do not (a pipe), the write queue, closing and cancelling at each await, two
 * waits on one stream, and bad arguments. Real time, but every wait has a deadline in ms, so a broken
 * test fails fast instead of hanging; timeouts that are the expected result are a few ms long. */
#include "test.h"
#include "util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- connect ---- */

ASYNC_DEF(net_connect, const char *host; int port; int32_t ms; async_stream s;) {
    AWAIT_STREAM_CONNECT(t, &f->s, f->host, f->port, f->ms);
    async_stream_close(&f->s);
} ASYNC_END_DEF

/* A connection that the kernel accepted for lfd (the raw listener), or -1 if none came. */
static int net_accept_now(int lfd) {
    int fl = fcntl(lfd, F_GETFL), fd;
    fcntl(lfd, F_SETFL, fl | O_NONBLOCK);
    fd = accept(lfd, NULL, NULL);
    fcntl(lfd, F_SETFL, fl);
    return fd;
}

/* A listener that never accepts, whose accept queue is full: later SYNs are dropped, connects to it
 * wait. */
typedef struct {
    int lfd, port, fill[8];
} net_full_backlog;

static void net_full_backlog_open(net_full_backlog *b) {
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

static void net_full_backlog_close(net_full_backlog *b) {
    int i;
    for (i = 0; i < 8; i++) close(b->fill[i]);
    close(b->lfd);
}

TEST(net_stream_connect_refused) {
    static net_connect_frame f;
    ASSERT_EQ(run_real(ASYNC_CALL(net_connect, &f, "127.0.0.1", test_refused_port(), 1000)), ASYNC_ECONNREFUSED);
    ASSERT_EQ(async_stream_fd(&f.s), -1);
}

TEST_TAGGED(net_stream_connect_bad_arguments, TEST_THREADS) {
    static net_connect_frame f;
    ASSERT_EQ(run_real(ASYNC_CALL(net_connect, &f, "127.0.0.1", 0, 1000)), ASYNC_EINVAL);
    ASSERT_EQ(run_real(ASYNC_CALL(net_connect, &f, NULL, 80, 1000)), ASYNC_EINVAL);
    ASSERT_EQ(run_real(ASYNC_CALL(net_connect, &f, "no-such-host.invalid", 80, 2000)), ASYNC_ENXIO);
}

TEST(net_stream_connect_rejects_bad_arguments) {
    static net_op_frame f;
    static async_stream s;
    static char long_name[300];
    int sv[2], port, lfd = test_listen_raw(4, &port);
    ASSERT_EQ(net_do(net_connect_op(&f, NULL, "127.0.0.1", port, 100)), ASYNC_EINVAL);
    ASSERT_EQ(net_do(net_connect_op(&f, &s, NULL, port, 100)), ASYNC_EINVAL);
    ASSERT_EQ(net_do(net_connect_op(&f, &s, "127.0.0.1", 0, 100)), ASYNC_EINVAL);
    ASSERT_EQ(net_do(net_connect_op(&f, &s, "127.0.0.1", -1, 100)), ASYNC_EINVAL);
    ASSERT_EQ(net_do(net_connect_op(&f, &s, "127.0.0.1", 65536, 100)), ASYNC_EINVAL);
    memset(long_name, 'a', sizeof long_name - 1); /* longer than any host name */
    ASSERT_EQ(net_do(net_connect_op(&f, &s, long_name, port, 100)), ASYNC_EINVAL);
    ASSERT_EQ(async_stream_fd(&s), -1);
    /* an open stream is busy: it stays as it was */
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    ASSERT_EQ(async_stream_open(&s, sv[0]), 0);
    ASSERT_EQ(net_do(net_connect_op(&f, &s, "127.0.0.1", port, 100)), ASYNC_EBUSY);
    ASSERT_EQ(async_stream_fd(&s), sv[0]);
    async_stream_close(&s);
    close(sv[1]);
    ASSERT_EQ(net_accept_now(lfd), -1); /* no connection was attempted */
    close(lfd);
}

TEST_TAGGED(net_stream_connect_localhost_name_resolves_on_a_thread, TEST_THREADS) {
    static net_connect_frame f;
    int port, fd = test_listen_raw(8, &port);
    ASSERT_EQ(run_real(ASYNC_CALL(net_connect, &f, "localhost", port, 2000)), 0);
    ASSERT_EQ(run_real(ASYNC_CALL(net_connect, &f, "ip6-localhost.invalid", port, 2000)), ASYNC_ENXIO);
    close(fd);
}

TEST(net_stream_connect_timeout_when_the_backlog_is_full) {
    static net_connect_frame f;
    net_full_backlog b;
    double t0;
    net_full_backlog_open(&b);
    t0 = now_s();
    ASSERT_EQ(run_real(ASYNC_CALL(net_connect, &f, "127.0.0.1", b.port, 100)), ASYNC_ETIMEDOUT);
    ASSERT(now_s() - t0 < 10.0); /* the 100 ms deadline, not the kernel's connect timeout (minutes) */
    ASSERT_EQ(async_stream_fd(&f.s), -1); /* no half-open socket left */
    net_full_backlog_close(&b);
}

TEST(net_stream_connect_on_the_virtual_clock_is_enotsup_and_leaves_no_socket) {
    static net_op_frame f;
    static async_stream s;
    int port, lfd = test_listen_raw(4, &port), fds = test_count_fds();
    ASSERT_EQ(run_virtual(&net_connect_op(&f, &s, "127.0.0.1", port, 100)->task), 0);
    ASSERT_EQ(f.code, ASYNC_ENOTSUP);
    ASSERT_EQ(async_stream_fd(&s), -1);
    ASSERT_EQ(run_virtual(&net_connect_op(&f, &s, "127.1", port, 100)->task), 0); /* a name to resolve */
    ASSERT_EQ(f.code, ASYNC_ENOTSUP);
    ASSERT_EQ(async_stream_fd(&s), -1);
    ASSERT_EQ(test_count_fds(), fds); /* the socket of the first attempt was closed */
    close(lfd);
}

TEST_TAGGED(net_stream_connect_by_name_resolves_on_a_thread_and_connects, TEST_THREADS) {
    static net_op_frame f;
    static async_stream s;
    char buf[8];
    int port, lfd = test_listen_raw(8, &port), peer;
    /* "127.1" is not a literal inet_pton takes: getaddrinfo resolves it (numerically, no DNS) */
    ASSERT_EQ(net_do(net_connect_op(&f, &s, "127.1", port, 2000)), 0);
    ASSERT(async_stream_fd(&s) >= 0);
    peer = net_accept_now(lfd);
    ASSERT(peer >= 0);
    ASSERT_EQ(async_stream_write(&s, "hi", 2), 0);
    ASSERT_EQ(read(peer, buf, sizeof buf), 2);
    ASSERT(memcmp(buf, "hi", 2) == 0);
    async_stream_close(&s);
    close(peer);
    /* no deadline at all */
    ASSERT_EQ(net_do(net_connect_op(&f, &s, "2130706433", port, -1)), 0);
    ASSERT(async_stream_fd(&s) >= 0);
    peer = net_accept_now(lfd);
    ASSERT(peer >= 0);
    async_stream_close(&s);
    close(peer);
    close(lfd);
}

TEST_TAGGED(net_stream_connect_by_name_to_a_closed_port_is_refused, TEST_THREADS) {
    static net_op_frame f;
    static async_stream s;
    ASSERT_EQ(net_do(net_connect_op(&f, &s, "127.1", test_refused_port(), 2000)), ASYNC_ECONNREFUSED);
    ASSERT_EQ(async_stream_fd(&s), -1);
}

TEST_TAGGED(net_stream_connect_fails_at_once_for_unreachable_addresses, TEST_THREADS) {
    static net_op_frame f;
    static async_stream s;
    /* TCP to a broadcast or multicast address fails inside connect(): no wait */
    ASSERT_EQ(net_do(net_connect_op(&f, &s, "255.255.255.255", 80, 1000)), ASYNC_ENETUNREACH);
    ASSERT_EQ(async_stream_fd(&s), -1);
    /* the same after resolution: every address fails at once */
    ASSERT_EQ(net_do(net_connect_op(&f, &s, "224.1", 80, 1000)), ASYNC_ENETUNREACH);
    ASSERT_EQ(async_stream_fd(&s), -1);
}

TEST_TAGGED(net_stream_connect_to_a_malformed_name_is_enxio, TEST_THREADS) {
    static net_op_frame f;
    static async_stream s;
    /* names no resolver would send anywhere: getaddrinfo refuses them on the spot */
    ASSERT_EQ(net_do(net_connect_op(&f, &s, "bad host name", 80, 2000)), ASYNC_ENXIO);
    ASSERT_EQ(async_stream_fd(&s), -1);
    ASSERT_EQ(net_do(net_connect_op(&f, &s, "[not an address]", 80, 2000)), ASYNC_ENXIO);
    ASSERT_EQ(net_do(net_connect_op(&f, &s, "[", 80, 2000)), ASYNC_ENXIO);
    ASSERT_EQ(async_stream_fd(&s), -1);
}

TEST(net_stream_connect_to_the_any_address_reaches_this_host) {
    static net_op_frame f;
    static async_stream s;
    int port, lfd = test_listen_raw(8, &port), peer;
    ASSERT_EQ(net_do(net_connect_op(&f, &s, "", port, 1000)), 0);
    peer = net_accept_now(lfd);
    ASSERT(peer >= 0);
    close(peer);
    async_stream_close(&s);
    ASSERT_EQ(net_do(net_connect_op(&f, &s, "0.0.0.0", port, 1000)), 0);
    peer = net_accept_now(lfd);
    ASSERT(peer >= 0);
    close(peer);
    async_stream_close(&s);
    close(lfd);
}

TEST_TAGGED(net_stream_connect_by_name_without_memory_for_the_lookup_thread, TEST_THREADS) {
    static net_op_frame f;
    static async_stream s;
    struct rlimit old;
    int port, lfd = test_listen_raw(4, &port), fds = test_count_fds();
    async_loop *loop = async_loop_new(0);
    ASSERT(loop != NULL);
    net_connect_op(&f, &s, "127.1", port, 1000);
    /* before any thread ran: glibc has no stack of an ended thread to reuse */
    if (!net_cap_address_space(64 * 1024, &old)) { /* the lookup thread's stack is 256 KiB */
        async_loop_free(loop);
        close(lfd);
        test_skip("a sanitizer or valgrind manages memory its own way, or no address space limit can be set");
    }
    ASSERT_EQ(async_run(loop, &f.task), 0);
    ASSERT(setrlimit(RLIMIT_AS, &old) == 0);
    ASSERT_EQ(f.code, ASYNC_EAGAIN);
    ASSERT_EQ(async_stream_fd(&s), -1);
    async_loop_free(loop);
    ASSERT_EQ(test_count_fds(), fds); /* nothing left open */
    ASSERT_EQ(net_accept_now(lfd), -1);
    /* with memory back, the same stream connects by name */
    ASSERT_EQ(net_do(net_connect_op(&f, &s, "127.1", port, 1000)), 0);
    async_stream_close(&s);
    close(lfd);
}

TEST(net_stream_out_of_descriptors_connect_and_listen_are_emfile) {
    static net_op_frame f;
    static async_stream s;
    static async_server srv;
    struct rlimit old;
    int port, lfd = test_listen_raw(8, &port);
    async_loop *loop = async_loop_new(0);
    ASSERT(loop != NULL);
    old = net_no_more_fds();
    ASSERT_EQ(async_run(loop, &net_connect_op(&f, &s, "127.0.0.1", port, 1000)->task), 0);
    ASSERT_EQ(f.code, ASYNC_EMFILE);
    ASSERT_EQ(async_stream_fd(&s), -1);
    ASSERT_EQ(async_server_listen(&srv, "127.0.0.1", 0, 0, 64, echo_new, NULL), ASYNC_EMFILE);
    ASSERT(setrlimit(RLIMIT_NOFILE, &old) == 0);
    ASSERT_EQ(net_accept_now(lfd), -1);
    async_loop_free(loop);
    close(lfd);
}

/* ---- reading and writing against an echo server ---- */

struct net_client_frame;
static void net_log(struct net_client_frame *f, const char *fmt, const char *p, size_t n);

/* The client side of a scenario: what it did is recorded in `log`. */
ASYNC_DEF(net_client, int scenario; async_stream c; async_server srv; async_group g; const char *line; size_t len, n;
          char buf[64]; char log[512]; int port; int code;) {
    ASSERT_EQ(async_server_listen(&f->srv, f->scenario == 3 ? "::1" : "127.0.0.1", 0, 0, sizeof(echo_frame),
                                  echo_new, NULL), 0);
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
} ASYNC_END_DEF

static void net_log(net_client_frame *f, const char *fmt, const char *p, size_t n) {
    size_t used = strlen(f->log);
    snprintf(f->log + used, sizeof f->log - used, fmt, (int)n, p);
}

static int net_scenario(net_client_frame *f, int scenario) {
    return run_real(ASYNC_CALL(net_client, f, scenario));
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
    if (fd < 0) test_skip("no IPv6");
    close(fd);
    ASSERT_EQ(net_scenario(&f, 3), 0);
    ASSERT_EQ(f.code, 0);
}

/* ---- reading: buffered input, limits, end of stream ---- */

struct net_buffered_frame;
static void net_logf(struct net_buffered_frame *f, const char *tag, const char *p, size_t n, int code);
static void net_feed(struct net_buffered_frame *f, const char *data);

/* One read op on f's stream, logged. */
#define NET_READ_OP(t, f, op_, tag, limit_, ms_)                                                       \
    do {                                                                                               \
        net_op(&(f)->op, (op_), &(f)->s)->limit = (limit_);                                             \
        (f)->op.n = (limit_);                                                                          \
        (f)->op.ms = (ms_);                                                                            \
        AWAIT(t, &(f)->op.task);                                                                       \
        net_logf((f), (tag), (op_) == NET_LINE ? (f)->op.ln : (f)->op.mem,                              \
                (op_) == NET_EXACTLY ? (f)->op.n : (f)->op.got, (f)->op.code);                          \
    } while (0)

ASYNC_DEF(net_buffered, int peer; async_stream s; net_op_frame op; char log[512];) {
    net_feed(f, "line\nrest");
    NET_READ_OP(t, f, NET_LINE, "line", 64, 1000);
    NET_READ_OP(t, f, NET_READ, "read", 16, 1000); /* "rest" is buffered: no system call */
    net_feed(f, "abcd");
    NET_READ_OP(t, f, NET_READ, "read", 4, 1000); /* exactly what came: the next read must try the socket */
    NET_READ_OP(t, f, NET_READ, "read", 4, 20); /* nothing there: the deadline */
    NET_READ_OP(t, f, NET_EXACTLY, "exactly", 2, 20); /* the same: it waits for input */
    net_feed(f, "toolong\nxyz");
    NET_READ_OP(t, f, NET_LINE, "line3", 3, 1000); /* a whole line over its limit */
    async_stream_consume(&f->s, 8);
    NET_READ_OP(t, f, NET_FILL, "fill", 2, 1000); /* "xyz" buffered is over a 2-byte fill limit */
    net_logf(f, "peek", async_stream_peek(&f->s, NULL), 3, 0);
    NET_READ_OP(t, f, NET_EXACTLY, "exactly", 2, 1000);
    shutdown(f->peer, SHUT_WR);
    NET_READ_OP(t, f, NET_FILL, "fill", 64, 1000); /* "z" was buffered: the fill reads the end */
    NET_READ_OP(t, f, NET_FILL, "fill", 64, 1000); /* and again: still the end */
    NET_READ_OP(t, f, NET_LINE, "line", 64, 1000); /* the rest without '\n' */
    NET_READ_OP(t, f, NET_LINE, "line", 64, 1000); /* nothing left */
    NET_READ_OP(t, f, NET_READ, "read", 8, 1000);
    NET_READ_OP(t, f, NET_EXACTLY, "exactly", 1, 1000);
} ASYNC_END_DEF

static void net_logf(net_buffered_frame *f, const char *tag, const char *p, size_t n, int code) {
    size_t used = strlen(f->log);
    if (code)
        snprintf(f->log + used, sizeof f->log - used, "%s:%d ", tag, code);
    else
        snprintf(f->log + used, sizeof f->log - used, "%s[%.*s] ", tag, (int)n, p);
}

static void net_feed(net_buffered_frame *f, const char *data) {
    ASSERT_EQ(write(f->peer, data, strlen(data)), (long long)strlen(data));
}

TEST(net_stream_reads_from_the_buffer_limits_and_end_of_stream) {
    static net_buffered_frame f;
    int sv[2];
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    ASYNC_CALL(net_buffered, &f, sv[1]);
    ASSERT_EQ(async_stream_open(&f.s, sv[0]), 0);
    ASSERT_EQ(run_real(&f.task), 0);
    ASSERT_STR_EQ(f.log, "line[line\n] read[rest] read[abcd] read:-110 exactly:-110 line3:-75 fill:-75 "
                         "peek[xyz] exactly[xy] fill[] fill[] line[z] line[] read[] exactly:-61 ");
    async_stream_close(&f.s);
    close(sv[1]);
}

ASYNC_DEF(net_long_line, async_stream s; const char *line; size_t len; size_t len1, len2; char first[8];) {
    AWAIT_STREAM_READLINE(t, &f->s, &f->line, &f->len, SIZE_MAX, 1000); /* no limit */
    f->len1 = f->len;
    memcpy(f->first, f->line, f->len < sizeof f->first ? f->len : sizeof f->first);
    AWAIT_STREAM_READLINE(t, &f->s, &f->line, &f->len, SIZE_MAX, 1000);
    f->len2 = f->len;
    ASSERT_EQ(f->line[0], 'x');
    ASSERT_EQ(f->line[f->len - 2], 'y');
    ASSERT_EQ(f->line[f->len - 1], '\n');
} ASYNC_END_DEF

TEST(net_stream_readline_without_limit_compacts_and_grows_the_buffer) {
    static net_long_line_frame f;
    static char data[4096 + 10];
    int sv[2];
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    memcpy(data, "ab\n", 3);
    memset(data + 3, 'x', 4093);
    memset(data + 4096, 'y', 9);
    data[sizeof data - 1] = '\n';
    ASSERT_EQ(write(sv[1], data, sizeof data), (long long)sizeof data);
    ASYNC_CALL(net_long_line, &f);
    ASSERT_EQ(async_stream_open(&f.s, sv[0]), 0);
    ASSERT_EQ(run_real(&f.task), 0);
    ASSERT_EQ(f.len1, 3);
    ASSERT(memcmp(f.first, "ab\n", 3) == 0);
    ASSERT_EQ(f.len2, sizeof data - 3);
    async_stream_close(&f.s);
    close(sv[1]);
}

/* ---- writing: back-pressure, the write queue, vanished peers ---- */

ASYNC_DEF(net_backpressure, int port; async_stream s; char big[65536];) {
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
} ASYNC_END_DEF

TEST(net_stream_drain_waits_for_a_slow_reader_with_deadline) {
    static net_backpressure_frame f;
    int port, lfd = test_listen_raw(8, &port);
    ASSERT_EQ(run_real(ASYNC_CALL(net_backpressure, &f, port)), 0);
    close(lfd);
}

ASYNC_DEF(net_epipe, int port; int lfd; async_stream s; int peer; int rc; char big[65536];) {
    AWAIT_STREAM_CONNECT(t, &f->s, "127.0.0.1", f->port, 1000);
    f->peer = accept(f->lfd, NULL, NULL); /* the peer's end (in the backlog already) */
    ASSERT(f->peer >= 0);
    close(f->peer); /* closing it makes our writes fail: a reset, then a broken pipe */
    for (;;) {
        f->rc = async_stream_write(&f->s, f->big, sizeof f->big);
        if (f->rc) break;
        AWAIT_SLEEP(t, 5);
    }
    ASSERT(f->rc == ASYNC_EPIPE || f->rc == ASYNC_ECONNRESET);
    ASSERT_EQ(async_stream_write(&f->s, "x", 1), f->rc); /* sticky */
    async_stream_close(&f->s);
    ASSERT_EQ(async_stream_write(&f->s, "x", 1), ASYNC_EBADF);
} ASYNC_END_DEF

TEST(net_stream_write_to_a_closed_peer_is_epipe_not_sigpipe) {
    static net_epipe_frame f;
    int port, lfd = test_listen_raw(8, &port);
    ASSERT_EQ(run_real(ASYNC_CALL(net_epipe, &f, port, lfd)), 0); /* a SIGPIPE would have killed the test */
    close(lfd);
}

#define NET_BIG (1u << 20)

typedef struct {
    async_task task;
    async_stream s;
    async_group g;
    net_op_frame op;
    async_io io;
    int peer;
    size_t sent_total;  /* bytes accepted by async_stream_write, in the pattern's order */
    size_t recv_total;
    size_t pending1, pending2, cap_before;
    int bad;            /* bytes the reader found out of pattern */
    int code_wrap, code_huge, drain_code;
    char rbuf[65536];
} net_queue_frame;

static unsigned char net_pattern_byte(size_t i) { return (unsigned char)(i % 251); }

static char *net_pattern(size_t from, size_t n) {
    static char buf[NET_BIG];
    size_t i;
    ASSERT(n <= sizeof buf);
    for (i = 0; i < n; i++) buf[i] = (char)net_pattern_byte(from + i);
    return buf;
}

static int net_queue_write(net_queue_frame *f, size_t n) {
    int rc = async_stream_write(&f->s, net_pattern(f->sent_total, n), n);
    if (rc == 0) f->sent_total += n;
    return rc;
}

static void net_queue_take(net_queue_frame *f, long n) {
    long i;
    for (i = 0; i < n; i++)
        if ((unsigned char)f->rbuf[i] != net_pattern_byte(f->recv_total + (size_t)i)) f->bad++;
    f->recv_total += (size_t)n;
}

/* Reads the peer's end until every byte written has come. */
static async_status net_queue_reader_run(async_task *t) {
    net_queue_frame *f = (net_queue_frame *)(void *)((char *)t - offsetof(net_queue_frame, op));
    long n;
    ASYNC_BEGIN(t);
    while (f->recv_total < f->sent_total) {
        AWAIT_READABLE(t, &f->io, f->peer, TEST_LONG_MS);
        n = read(f->peer, f->rbuf, sizeof f->rbuf);
        ASSERT(n > 0);
        net_queue_take(f, n);
    }
    ASYNC_END(t);
}

static async_status net_queue_run(async_task *t) {
    net_queue_frame *f = (net_queue_frame *)t;
    long n;
    ASYNC_BEGIN(t);
    ASSERT_EQ(net_queue_write(f, NET_BIG), 0); /* more than the socket takes: the rest is queued */
    f->pending1 = async_stream_pending(&f->s);
    ASSERT(f->pending1 > 0);
    ASSERT_EQ(net_queue_write(f, 10), 0); /* queued behind it, not sent */
    ASSERT_EQ(async_stream_pending(&f->s), f->pending1 + 10);
    /* lengths whose sum with what is queued wraps, or is more than memory: ENOMEM, nothing changes */
    f->code_wrap = async_stream_write(&f->s, f->rbuf, SIZE_MAX);
    f->code_huge = async_stream_write(&f->s, f->rbuf, SIZE_MAX - async_stream_pending(&f->s) - 1);
    ASSERT_EQ(async_stream_pending(&f->s), f->pending1 + 10);
    /* the peer reads a little: a drain moves some of the queue, then times out */
    n = read(f->peer, f->rbuf, sizeof f->rbuf);
    ASSERT(n > 0);
    net_queue_take(f, n);
    net_op(&f->op, NET_DRAIN, &f->s)->ms = 20;
    AWAIT(t, &f->op.task);
    f->drain_code = f->op.code;
    f->pending2 = async_stream_pending(&f->s);
    /* a write that fits once the sent part at the front is dropped: no new memory */
    f->cap_before = f->s.wcap;
    ASSERT(f->s.wpos > 0);
    ASSERT_EQ(net_queue_write(f, f->s.wcap - f->pending2), 0);
    ASSERT_EQ(f->s.wcap, f->cap_before);
    ASSERT_EQ(async_stream_pending(&f->s), f->cap_before);
    /* now the peer reads everything while the drain waits */
    ASYNC_FRAME_INIT(&f->op, net_queue_reader_run);
    ASYNC_SPAWN(t, &f->g, &f->op.task);
    AWAIT_STREAM_DRAIN(t, &f->s, TEST_LONG_MS); /* the reader checks every byte: slow under valgrind */
    ASSERT_EQ(async_stream_pending(&f->s), 0);
    AWAIT_GROUP(t, &f->g);
    ASYNC_END(t);
}

TEST(net_stream_write_queue_grows_compacts_and_refuses_impossible_lengths) {
    static net_queue_frame f;
    int sv[2], small = 16384;
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    ASYNC_FRAME_INIT(&f, net_queue_run);
    ASSERT_EQ(async_stream_open(&f.s, sv[0]), 0);
    f.peer = sv[1];
    ASSERT_EQ(run_real(&f.task), 0);
    ASSERT_EQ(f.code_wrap, ASYNC_ENOMEM);
    ASSERT_EQ(f.code_huge, ASYNC_ENOMEM);
    ASSERT_EQ(f.drain_code, ASYNC_ETIMEDOUT);
    ASSERT(f.pending2 < f.pending1 + 10); /* the drain moved some */
    ASSERT_EQ(f.recv_total, f.sent_total);
    ASSERT_EQ(f.sent_total, NET_BIG + 10 + (f.cap_before - f.pending2));
    ASSERT_EQ(f.bad, 0);
    async_stream_close(&f.s);
    close(sv[1]);
}

ASYNC_DEF(net_vanish, int peer; async_stream s; net_op_frame op; int drain_code, write_code, read_code;) {
    ASSERT_EQ(async_stream_write(&f->s, net_pattern(0, NET_BIG), NET_BIG), 0);
    ASSERT(async_stream_pending(&f->s) > 0);
    close(f->peer); /* the peer goes away with our queue unsent */
    AWAIT(t, &net_op(&f->op, NET_DRAIN, &f->s)->task);
    f->drain_code = f->op.code;
    f->write_code = async_stream_write(&f->s, "x", 1);
    AWAIT(t, &net_op(&f->op, NET_READ, &f->s)->task);
    f->read_code = f->op.code;
} ASYNC_END_DEF

TEST(net_stream_drain_to_a_vanished_peer_is_epipe) {
    static net_vanish_frame f;
    int sv[2];
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    ASYNC_CALL(net_vanish, &f, sv[1]);
    ASSERT_EQ(async_stream_open(&f.s, sv[0]), 0);
    ASSERT_EQ(run_real(&f.task), 0);
    ASSERT_EQ(f.drain_code, ASYNC_EPIPE);
    ASSERT_EQ(f.write_code, ASYNC_EPIPE);
    ASSERT_EQ(f.read_code, ASYNC_EPIPE); /* sticky: reads fail too */
    async_stream_close(&f.s);
}

/* ---- errors that stick, and those that do not ---- */

ASYNC_DEF(net_sticky, async_stream s; net_op_frame op; int read_code, line_code, drain_code, write_code;) {
    AWAIT(t, &net_op(&f->op, NET_LINE, &f->s)->task); /* the error comes from a read into the buffer */
    f->line_code = f->op.code;
    f->write_code = async_stream_write(&f->s, "x", 1);
    AWAIT(t, &net_op(&f->op, NET_DRAIN, &f->s)->task);
    f->drain_code = f->op.code;
    AWAIT(t, &net_op(&f->op, NET_READ, &f->s)->task);
    f->read_code = f->op.code;
} ASYNC_END_DEF

TEST(net_stream_reset_by_peer_is_sticky_for_every_operation) {
    static net_sticky_frame f;
    struct linger lg = {1, 0};
    int fds[2];
    test_tcp_pair(fds);
    ASSERT(setsockopt(fds[1], SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0);
    close(fds[1]); /* an abortive close: a reset */
    ASYNC_CALL(net_sticky, &f);
    ASSERT_EQ(async_stream_open(&f.s, fds[0]), 0);
    ASSERT_EQ(run_real(&f.task), 0);
    ASSERT_EQ(f.read_code, ASYNC_ECONNRESET);
    ASSERT_EQ(f.write_code, ASYNC_ECONNRESET);
    ASSERT_EQ(f.drain_code, ASYNC_ECONNRESET);
    ASSERT_EQ(f.line_code, ASYNC_ECONNRESET);
    async_stream_close(&f.s);
}

TEST(net_stream_unconnected_socket_is_enotconn_and_sticky) {
    static net_sticky_frame f;
    ASYNC_CALL(net_sticky, &f);
    ASSERT_EQ(async_stream_open(&f.s, socket(AF_INET, SOCK_STREAM, 0)), 0);
    ASSERT_EQ(run_real(&f.task), 0);
    ASSERT_EQ(f.read_code, ASYNC_ENOTCONN);
    ASSERT_EQ(f.write_code, ASYNC_ENOTCONN); /* not the EPIPE send would say now */
    ASSERT_EQ(f.drain_code, ASYNC_ENOTCONN);
    ASSERT_EQ(f.line_code, ASYNC_ENOTCONN);
    async_stream_close(&f.s);
}

ASYNC_DEF(net_pipe, async_stream s; net_op_frame op; int code1, code2, wcode;) {
    AWAIT(t, &net_op(&f->op, NET_READ, &f->s)->task);
    f->code1 = f->op.code;
    f->wcode = async_stream_write(&f->s, "x", 1);
    AWAIT(t, &net_op(&f->op, NET_READ, &f->s)->task);
    f->code2 = f->op.code;
} ASYNC_END_DEF

TEST(net_stream_on_a_pipe_fails_with_eio_not_sticky) {
    static net_pipe_frame f;
    int p[2];
    ASSERT(pipe(p) == 0);
    ASSERT_EQ(write(p[1], "abc", 3), 3); /* readable at once: recv is tried and fails with ENOTSOCK */
    ASYNC_CALL(net_pipe, &f);
    ASSERT_EQ(async_stream_open(&f.s, p[0]), 0);
    ASSERT_EQ(run_real(&f.task), 0);
    ASSERT_EQ(f.code1, ASYNC_EIO);
    ASSERT_EQ(f.wcode, ASYNC_EIO);
    ASSERT_EQ(f.code2, ASYNC_EIO); /* not sticky: tried again, failed again */
    ASSERT_EQ(async_stream_fd(&f.s), p[0]);
    async_stream_close(&f.s);
    ASSERT(!net_fd_is_open(p[0]));
    close(p[1]);
}

/* ---- closing, cancelling, and double waits at each await ---- */

TEST(net_stream_close_wakes_a_waiting_read_with_ebadf) {
    static net_duo d;
    static async_stream s;
    int sv[2];
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    ASSERT_EQ(async_stream_open(&s, sv[0]), 0);
    net_duo_init(&d, net_between_close, 0)->s = &s;
    net_op(&d.a, NET_READ, &s);
    ASSERT_EQ(run_real(&d.task), 0); /* not a deadlock: the reader is woken */
    ASSERT_EQ(d.a.code, ASYNC_EBADF);
    ASSERT(!net_fd_is_open(sv[0]));
    close(sv[1]);
}

/* Closes a stream as soon as its fd is readable: woken in the same libev pass as a read of the stream,
 * and (started first) queued before it. */
ASYNC_DEF(net_closer, async_stream *s; async_io io;) {
    AWAIT_READABLE(t, &f->io, async_stream_fd(f->s), 1000);
    async_stream_close(f->s);
} ASYNC_END_DEF

ASYNC_DEF(net_woken, int peer; async_group g; net_closer_frame closer; net_op_frame reader;) {
    ASYNC_SPAWN(t, &f->g, &f->closer.task);
    ASYNC_SPAWN(t, &f->g, &f->reader.task);
    AWAIT_SLEEP(t, 0); /* both wait */
    ASSERT_EQ(write(f->peer, "data\n", 5), 5);
    AWAIT_GROUP(t, &f->g);
} ASYNC_END_DEF

TEST(net_stream_close_after_a_read_was_woken_but_before_it_resumed) {
    static net_woken_frame f;
    static async_stream s;
    int sv[2];
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    ASSERT_EQ(async_stream_open(&s, sv[0]), 0);
    ASYNC_CALL(net_woken, &f, sv[1]);
    ASYNC_CALL(net_closer, &f.closer, &s);
    net_op(&f.reader, NET_READ, &s);
    ASSERT_EQ(run_real(&f.task), 0); /* not a deadlock: the woken reader does not wait again */
    ASSERT_EQ(f.reader.code, ASYNC_EBADF);
    ASSERT_EQ(f.reader.got, 0);
    close(sv[1]);
}

TEST(net_stream_close_wakes_a_waiting_drain_with_ebadf) {
    static net_duo d;
    static async_stream s;
    int sv[2];
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    ASSERT_EQ(async_stream_open(&s, sv[0]), 0);
    ASSERT_EQ(async_stream_write(&s, net_pattern(0, NET_BIG), NET_BIG), 0);
    net_duo_init(&d, net_between_close, 0)->s = &s;
    net_op(&d.a, NET_DRAIN, &s);
    ASSERT_EQ(run_real(&d.task), 0);
    ASSERT_EQ(d.a.code, ASYNC_EBADF);
    ASSERT_EQ(async_stream_pending(&s), 0);
    close(sv[1]);
}

TEST(net_stream_close_wakes_a_waiting_connect_with_ebadf) {
    static net_duo d;
    static async_stream s;
    net_full_backlog b;
    net_full_backlog_open(&b);
    net_duo_init(&d, net_between_close, 0)->s = &s;
    net_connect_op(&d.a, &s, "127.0.0.1", b.port, 2000);
    ASSERT_EQ(run_real(&d.task), 0);
    ASSERT_EQ(d.a.code, ASYNC_EBADF);
    ASSERT_EQ(async_stream_fd(&s), -1);
    net_full_backlog_close(&b);
}

TEST_TAGGED(net_stream_close_during_name_resolution_wakes_the_connect, TEST_THREADS) {
    static net_duo d;
    static async_stream s;
    int port, lfd;
    lfd = test_listen_raw(8, &port);
    net_duo_init(&d, net_between_close, 0)->s = &s;
    net_connect_op(&d.a, &s, "127.1", port, 2000);
    ASSERT_EQ(run_real(&d.task), 0);
    ASSERT_EQ(d.a.code, ASYNC_EBADF);
    ASSERT_EQ(async_stream_fd(&s), -1);
    /* the lookup's answer is dropped: nothing connects, and a new connect by name works */
    ASSERT_EQ(net_do(net_connect_op(&d.b, &s, "127.1", port, 2000)), 0);
    async_stream_close(&s);
    close(lfd);
}

TEST(net_stream_cancel_a_waiting_read_keeps_the_stream_usable) {
    static net_duo d;
    static net_op_frame f;
    static async_stream s;
    int sv[2];
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    ASSERT_EQ(async_stream_open(&s, sv[0]), 0);
    net_duo_init(&d, net_between_cancel_a, 0);
    net_op(&d.a, NET_LINE, &s);
    ASSERT_EQ(run_real(&d.task), 0);
    ASSERT_EQ(d.a.code, ASYNC_ECANCELED);
    ASSERT(s.rio.loop == NULL); /* its watcher is stopped */
    ASSERT_EQ(write(sv[1], "after\n", 6), 6);
    ASSERT_EQ(net_do(net_op(&f, NET_LINE, &s)), 0);
    ASSERT_EQ(f.got, 6);
    ASSERT(memcmp(f.ln, "after\n", 6) == 0);
    async_stream_close(&s);
    close(sv[1]);
}

TEST(net_stream_cancel_a_waiting_drain_keeps_the_queue) {
    static net_duo d;
    static async_stream s;
    int sv[2];
    size_t before;
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    ASSERT_EQ(async_stream_open(&s, sv[0]), 0);
    ASSERT_EQ(async_stream_write(&s, net_pattern(0, NET_BIG), NET_BIG), 0);
    before = async_stream_pending(&s);
    net_duo_init(&d, net_between_cancel_a, 0);
    net_op(&d.a, NET_DRAIN, &s);
    ASSERT_EQ(run_real(&d.task), 0);
    ASSERT_EQ(d.a.code, ASYNC_ECANCELED);
    ASSERT(async_stream_pending(&s) > 0 && async_stream_pending(&s) <= before);
    ASSERT(s.wio.loop == NULL);
    async_stream_close(&s);
    close(sv[1]);
}

TEST(net_stream_cancel_a_waiting_connect_leaves_no_socket) {
    static net_duo d;
    static async_stream s;
    net_full_backlog b;
    net_full_backlog_open(&b);
    net_duo_init(&d, net_between_cancel_a, 0);
    net_connect_op(&d.a, &s, "127.0.0.1", b.port, 2000);
    ASSERT_EQ(run_real(&d.task), 0);
    ASSERT_EQ(d.a.code, ASYNC_ECANCELED);
    ASSERT_EQ(async_stream_fd(&s), -1);
    net_full_backlog_close(&b);
}

TEST_TAGGED(net_stream_cancel_during_name_resolution, TEST_THREADS) {
    static net_duo d;
    static async_stream s;
    int port, lfd = test_listen_raw(8, &port);
    net_duo_init(&d, net_between_cancel_a, 0);
    net_connect_op(&d.a, &s, "127.1", port, 2000);
    ASSERT_EQ(run_real(&d.task), 0);
    ASSERT_EQ(d.a.code, ASYNC_ECANCELED);
    ASSERT_EQ(async_stream_fd(&s), -1);
    ASSERT_EQ(net_do(net_connect_op(&d.b, &s, "127.1", port, 2000)), 0); /* the stream connects again */
    async_stream_close(&s);
    close(lfd);
}

TEST_TAGGED(net_stream_cancelled_before_each_wait_starts, TEST_THREADS) {
    static net_op_frame f;
    static async_stream s;
    int sv[2], port, lfd = test_listen_raw(8, &port);
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    net_wait_op(&f, NET_READABLE, &f.own_io, sv[0], 1000)->cancel_first = true;
    ASSERT_EQ(net_do(&f), ASYNC_ECANCELED);
    ASSERT(f.own_io.loop == NULL);
    ASSERT_EQ(async_stream_open(&s, sv[0]), 0);
    net_op(&f, NET_READ, &s)->cancel_first = true;
    ASSERT_EQ(net_do(&f), ASYNC_ECANCELED);
    ASSERT(s.rio.loop == NULL);
    ASSERT_EQ(async_stream_write(&s, net_pattern(0, NET_BIG), NET_BIG), 0);
    net_op(&f, NET_DRAIN, &s)->cancel_first = true;
    ASSERT_EQ(net_do(&f), ASYNC_ECANCELED);
    ASSERT(s.wio.loop == NULL);
    ASSERT(async_stream_pending(&s) > 0);
    async_stream_close(&s);
    close(sv[1]);
    net_connect_op(&f, &s, "127.0.0.1", port, 1000)->cancel_first = true;
    ASSERT_EQ(net_do(&f), ASYNC_ECANCELED);
    ASSERT_EQ(async_stream_fd(&s), -1);
    net_connect_op(&f, &s, "127.1", port, 1000)->cancel_first = true;
    ASSERT_EQ(net_do(&f), ASYNC_ECANCELED);
    ASSERT_EQ(async_stream_fd(&s), -1);
    close(lfd);
}

TEST(net_stream_two_reads_on_one_stream_second_is_ebusy) {
    static net_duo d;
    static async_stream s;
    int sv[2];
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    ASSERT_EQ(async_stream_open(&s, sv[0]), 0);
    net_duo_init(&d, net_between_write_fd, 0)->fd = sv[1];
    d.with_b = true;
    net_op(&d.a, NET_LINE, &s);
    net_op(&d.b, NET_READ, &s);
    ASSERT_EQ(run_real(&d.task), 0);
    ASSERT_EQ(d.b.code, ASYNC_EBUSY);
    ASSERT_EQ(d.a.code, 0);
    ASSERT_EQ(d.a.got, 5);
    ASSERT(memcmp(d.a.ln, "data\n", 5) == 0);
    ASSERT_EQ(d.b.got, 0);
    async_stream_close(&s);
    close(sv[1]);
}

TEST(net_stream_two_drains_on_one_stream_second_is_ebusy) {
    static net_duo d;
    static async_stream s;
    int sv[2];
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    ASSERT_EQ(async_stream_open(&s, sv[0]), 0);
    ASSERT_EQ(async_stream_write(&s, net_pattern(0, NET_BIG), NET_BIG), 0);
    net_duo_init(&d, NULL, 0);
    d.with_b = true;
    net_op(&d.a, NET_DRAIN, &s)->ms = 20;
    net_op(&d.b, NET_DRAIN, &s)->ms = 1000;
    ASSERT_EQ(run_real(&d.task), 0);
    ASSERT_EQ(d.b.code, ASYNC_EBUSY);
    ASSERT_EQ(d.a.code, ASYNC_ETIMEDOUT); /* its own deadline, not the second one's */
    async_stream_close(&s);
    close(sv[1]);
}

/* ---- bad arguments and closed streams ---- */

/* caught: the errors it caught, each the one expected. */
ASYNC_DEF(net_misuse, async_stream s; char big[65536]; int caught;) {
    ASYNC_TRY(t) {
        AWAIT_STREAM_READ(t, &f->s, f->big, sizeof f->big, NULL, 100); /* no count pointer */
    }
    ASYNC_CATCH(t) {
        ASSERT_EQ(async_caught(t)->code, ASYNC_EINVAL);
        f->caught++;
    }
    ASYNC_END_TRY(t);
    ASYNC_TRY(t) {
        AWAIT_STREAM_READEXACTLY(t, &f->s, f->big, 4, 100); /* never opened */
    }
    ASYNC_CATCH(t) {
        ASSERT_EQ(async_caught(t)->code, ASYNC_EBADF);
        f->caught++;
    }
    ASYNC_END_TRY(t);
    ASYNC_TRY(t) {
        AWAIT_STREAM_DRAIN(t, (async_stream *)NULL, 100);
    }
    ASYNC_CATCH(t) {
        ASSERT_EQ(async_caught(t)->code, ASYNC_EINVAL);
        f->caught++;
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

TEST(net_stream_misuse_raises_clear_codes) {
    static net_misuse_frame f;
    size_t len;
    ASSERT_EQ(run_real(ASYNC_CALL(net_misuse, &f)), 0);
    ASSERT_EQ(f.caught, 3);
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

TEST(net_stream_functions_reject_bad_arguments) {
    static async_stream s;
    static async_io io;
    size_t len = 99;
    int p[2], sv[2], closed_fd;
    unsigned flags;
    char buf[4];
    ASSERT(pipe(p) == 0);
    ASSERT_EQ(async_stream_open(NULL, p[0]), ASYNC_EINVAL);
    ASSERT(!net_fd_is_open(p[0])); /* the stream owns fd, also on failure */
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
    ASSERT(!net_fd_is_open(sv[0]));
    ASSERT_EQ(async_stream_fd(&s), -1);
    async_stream_close(&s); /* twice is fine */
    close(sv[1]);

    ASSERT_EQ(async_io_events(NULL), 0);
    ASSERT_EQ(async_io_events(&io), 0);
    async_io_stop(NULL);
    async_io_stop(&io);
}

TEST(net_stream_read_operations_reject_bad_arguments) {
    static net_op_frame f;
    static async_stream s;
    int sv[2];
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    ASSERT_EQ(async_stream_open(&s, sv[0]), 0);
    net_op(&f, NET_READ, &s)->buf = NULL;
    ASSERT_EQ(net_do(&f), ASYNC_EINVAL);
    net_op(&f, NET_READ, &s)->n = 0;
    ASSERT_EQ(net_do(&f), ASYNC_EINVAL);
    net_op(&f, NET_READ, &s)->out = NULL;
    ASSERT_EQ(net_do(&f), ASYNC_EINVAL);
    net_op(&f, NET_EXACTLY, &s)->buf = NULL;
    ASSERT_EQ(net_do(&f), ASYNC_EINVAL);
    net_op(&f, NET_EXACTLY, &s)->buf = NULL;
    f.n = 0;
    ASSERT_EQ(net_do(&f), 0); /* zero bytes need no buffer: done at once */
    net_op(&f, NET_LINE, &s)->line = NULL;
    ASSERT_EQ(net_do(&f), ASYNC_EINVAL);
    net_op(&f, NET_LINE, &s)->out = NULL;
    ASSERT_EQ(net_do(&f), ASYNC_EINVAL);
    net_op(&f, NET_LINE, &s)->limit = 0;
    ASSERT_EQ(net_do(&f), ASYNC_EINVAL);
    net_op(&f, NET_FILL, &s)->out = NULL;
    ASSERT_EQ(net_do(&f), ASYNC_EINVAL);
    net_op(&f, NET_FILL, &s)->limit = 0;
    ASSERT_EQ(net_do(&f), ASYNC_EINVAL);
    ASSERT_EQ(net_do(net_op(&f, NET_READ, NULL)), ASYNC_EINVAL);
    ASSERT_EQ(net_do(net_op(&f, NET_EXACTLY, NULL)), ASYNC_EINVAL);
    ASSERT_EQ(net_do(net_op(&f, NET_LINE, NULL)), ASYNC_EINVAL);
    ASSERT_EQ(net_do(net_op(&f, NET_FILL, NULL)), ASYNC_EINVAL);
    ASSERT_EQ(net_do(net_op(&f, NET_DRAIN, NULL)), ASYNC_EINVAL);
    net_op(&f, NET_DRAIN, &s)->ms = -1; /* nothing queued, no deadline: done at once */
    ASSERT_EQ(net_do(&f), 0);
    /* none of it touched the stream: it still reads */
    ASSERT_EQ(write(sv[1], "ok", 2), 2);
    ASSERT_EQ(net_do(net_op(&f, NET_READ, &s)), 0);
    ASSERT_EQ(f.got, 2);
    ASSERT(memcmp(f.mem, "ok", 2) == 0);
    async_stream_close(&s);
    close(sv[1]);
}

TEST(net_stream_closed_fails_every_operation_with_ebadf) {
    static net_op_frame f;
    static async_stream s; /* zeroed: never opened */
    int op;
    for (op = NET_READ; op <= NET_DRAIN; op++) ASSERT_EQ(net_do(net_op(&f, op, &s)), ASYNC_EBADF);
    ASSERT_EQ(async_stream_write(&s, "x", 1), ASYNC_EBADF);
    async_stream_close(&s);
    for (op = NET_READ; op <= NET_DRAIN; op++) ASSERT_EQ(net_do(net_op(&f, op, &s)), ASYNC_EBADF);
    ASSERT_EQ(async_stream_write(&s, "x", 1), ASYNC_EBADF);
}
