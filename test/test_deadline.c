/* Milliseconds in the hosted API are int64_t and never cut short: a deadline over ASYNC_MS_MAX (what the
 * loop's 32-bit clock can time) raises ASYNC_ERANGE at the await, for fd waits, every stream await and
 * the HTTP client; a grace period that large (which cannot fail) means no limit; the HTTP server's
 * limits refuse it; debug mode's slow-step threshold keeps its 64 bits. Each value below would have
 * been a short or negative 32-bit value before: 3000000000 is negative as int32_t, 2^32 + 1 is 1. */
#include "test.h"
#include "util.h"

#include <time.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#define DL_NEGATIVE_AS_INT32 ((int64_t)3000000000)      /* int32_t: -1294967296 */
#define DL_ONE_AS_INT32 (((int64_t)1 << 32) + 1)        /* int32_t: 1 */
#define DL_JUST_OVER ((int64_t)ASYNC_MS_MAX + 1)

static int dl_run(async_task *main) {
    async_loop *loop = async_loop_new(0);
    int rc;
    ASSERT(loop != NULL);
    rc = async_run(loop, main);
    async_loop_free(loop);
    return rc;
}

/* ---- one await with a 64-bit deadline, its outcome recorded ---- */

enum { DL_READABLE, DL_WRITABLE, DL_READ, DL_EXACTLY, DL_LINE, DL_FILL, DL_DRAIN, DL_CONNECT };

/* Awaits op with deadline ms on the fd, stream or host given; code: what the await raised (0: it
 * succeeded). */
ASYNC_DEF(dl_op, int op; int64_t ms; int fd; async_stream *s; const char *host; int port; async_io io; char buf[16];
          size_t n; const char *line; int code;) {
    ASYNC_TRY(t) {
        if (f->op == DL_READABLE)
            AWAIT_READABLE(t, &f->io, f->fd, f->ms);
        else if (f->op == DL_WRITABLE)
            AWAIT_WRITABLE(t, &f->io, f->fd, f->ms);
        else if (f->op == DL_READ)
            AWAIT_STREAM_READ(t, f->s, f->buf, sizeof f->buf, &f->n, f->ms);
        else if (f->op == DL_EXACTLY)
            AWAIT_STREAM_READEXACTLY(t, f->s, f->buf, 2, f->ms);
        else if (f->op == DL_LINE)
            AWAIT_STREAM_READLINE(t, f->s, &f->line, &f->n, sizeof f->buf, f->ms);
        else if (f->op == DL_FILL)
            AWAIT_STREAM_FILL(t, f->s, sizeof f->buf, &f->n, f->ms);
        else if (f->op == DL_DRAIN)
            AWAIT_STREAM_DRAIN(t, f->s, f->ms);
        else
            AWAIT_STREAM_CONNECT(t, f->s, f->host, f->port, f->ms);
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

/* Runs f on a loop of its own; the code its await raised. */
static int dl_go(dl_op_frame *f) {
    ASSERT_EQ(dl_run(&f->task), 0);
    return f->code;
}

TEST(deadline_fd_waits_over_the_clocks_range_are_erange) {
    static dl_op_frame f;
    int sv[2];
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    ASYNC_CALL(dl_op, &f, DL_READABLE, DL_NEGATIVE_AS_INT32, .fd = sv[0]);
    ASSERT_EQ(dl_go(&f), ASYNC_ERANGE);
    ASSERT(f.io.loop == NULL); /* nothing was started */
    ASYNC_CALL(dl_op, &f, DL_WRITABLE, DL_ONE_AS_INT32, .fd = sv[0]);
    ASSERT_EQ(dl_go(&f), ASYNC_ERANGE);
    ASYNC_CALL(dl_op, &f, DL_READABLE, DL_JUST_OVER, .fd = sv[0]);
    ASSERT_EQ(dl_go(&f), ASYNC_ERANGE);
    ASYNC_CALL(dl_op, &f, DL_READABLE, INT64_MAX, .fd = sv[0]);
    ASSERT_EQ(dl_go(&f), ASYNC_ERANGE);
    /* the largest the clock can time is a deadline like any: the fd is ready, the wait ends at once */
    ASSERT_EQ(write(sv[1], "x", 1), 1);
    ASYNC_CALL(dl_op, &f, DL_READABLE, ASYNC_MS_MAX, .fd = sv[0]);
    ASSERT_EQ(dl_go(&f), 0);
    ASSERT_EQ(async_io_events(&f.io), ASYNC_IO_READ);
    ASYNC_CALL(dl_op, &f, DL_WRITABLE, ASYNC_MS_MAX, .fd = sv[0]);
    ASSERT_EQ(dl_go(&f), 0);
    /* negative, however wide: no deadline */
    ASYNC_CALL(dl_op, &f, DL_READABLE, INT64_MIN, .fd = sv[0]);
    ASSERT_EQ(dl_go(&f), 0);
    close(sv[0]);
    close(sv[1]);
}

TEST(deadline_stream_awaits_over_the_clocks_range_are_erange_and_leave_the_stream_usable) {
    static dl_op_frame f;
    static async_stream s;
    static const int ops[] = {DL_READ, DL_EXACTLY, DL_LINE, DL_FILL};
    int sv[2];
    size_t i;
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    ASSERT_EQ(async_stream_open(&s, sv[0]), 0);
    ASSERT_EQ(write(sv[1], "ab\n", 3), 3);
    for (i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        ASYNC_CALL(dl_op, &f, ops[i], DL_NEGATIVE_AS_INT32, .s = &s);
        ASSERT_EQ(dl_go(&f), ASYNC_ERANGE);
        ASYNC_CALL(dl_op, &f, ops[i], DL_ONE_AS_INT32, .s = &s);
        ASSERT_EQ(dl_go(&f), ASYNC_ERANGE);
    }
    ASSERT_EQ(async_stream_write(&s, "out", 3), 0);
    ASYNC_CALL(dl_op, &f, DL_DRAIN, DL_JUST_OVER, .s = &s);
    ASSERT_EQ(dl_go(&f), ASYNC_ERANGE);
    /* nothing was consumed or lost: the same awaits work with deadlines the clock can hold */
    ASYNC_CALL(dl_op, &f, DL_LINE, ASYNC_MS_MAX, .s = &s);
    ASSERT_EQ(dl_go(&f), 0);
    ASSERT_EQ(f.n, 3);
    ASSERT(memcmp(f.line, "ab\n", 3) == 0);
    ASYNC_CALL(dl_op, &f, DL_DRAIN, -1, .s = &s);
    ASSERT_EQ(dl_go(&f), 0);
    ASSERT_EQ(read(sv[1], f.buf, sizeof f.buf), 3);
    async_stream_close(&s);
    close(sv[1]);
}

TEST(deadline_connect_over_the_clocks_range_is_erange_before_any_socket_or_lookup) {
    static dl_op_frame f;
    static async_stream s;
    int port, lfd = test_listen_raw(4, &port), fds = test_count_fds();
    ASYNC_CALL(dl_op, &f, DL_CONNECT, DL_NEGATIVE_AS_INT32, .s = &s, .host = "127.0.0.1", .port = port);
    ASSERT_EQ(dl_go(&f), ASYNC_ERANGE);
    ASSERT_EQ(async_stream_fd(&s), -1);
    /* a name: no lookup is started either */
    ASYNC_CALL(dl_op, &f, DL_CONNECT, DL_ONE_AS_INT32, .s = &s, .host = "127.1", .port = port);
    ASSERT_EQ(dl_go(&f), ASYNC_ERANGE);
    ASSERT_EQ(async_stream_fd(&s), -1);
    ASSERT_EQ(test_count_fds(), fds);
    ASYNC_CALL(dl_op, &f, DL_CONNECT, ASYNC_MS_MAX, .s = &s, .host = "127.1", .port = port);
    ASSERT_EQ(dl_go(&f), 0);
    ASSERT(async_stream_fd(&s) >= 0);
    async_stream_close(&s);
    close(lfd);
}

/* ---- the HTTP client ---- */

ASYNC_DEF(dl_get, const char *url; int64_t ms; async_http_client c; int code;) {
    ASYNC_TRY(t) {
        AWAIT(t, async_http_client_get(&f->c, f->url, f->ms));
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
    async_http_client_close(&f->c);
} ASYNC_END_DEF

TEST(deadline_http_get_over_the_clocks_range_is_erange_without_connecting) {
    static dl_get_frame f;
    static char url[64];
    int port, lfd = test_listen_raw(4, &port), fl;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    ASSERT_EQ(dl_run(ASYNC_CALL(dl_get, &f, url, DL_ONE_AS_INT32)), 0);
    ASSERT_EQ(f.code, ASYNC_ERANGE);
    ASSERT_EQ(dl_run(ASYNC_CALL(dl_get, &f, url, DL_NEGATIVE_AS_INT32)), 0);
    ASSERT_EQ(f.code, ASYNC_ERANGE);
    fl = fcntl(lfd, F_GETFL);
    fcntl(lfd, F_SETFL, fl | O_NONBLOCK);
    ASSERT_EQ(accept(lfd, NULL, NULL), -1); /* no connection was attempted */
    close(lfd);
}

/* ---- grace periods: too large to time is no limit ---- */

/* What the server's connections did (their frames are the server's, gone once they end), and how long
 * they work. */
static int dl_finished, dl_cancelled;
static int64_t dl_work_ms;

ASYNC_DEF(dl_conn) {
    ASYNC_TRY(t) {
        AWAIT_SLEEP(t, dl_work_ms);
        dl_finished++;
    }
    ASYNC_CATCH(t) {
        if (async_caught(t)->code == ASYNC_ECANCELED) dl_cancelled++;
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

static async_task *dl_conn_new(void *frame, async_stream *s, void *arg) {
    (void)s;
    (void)arg;
    return ASYNC_CALL(dl_conn, (dl_conn_frame *)frame);
}

ASYNC_DEF(dl_grace, int64_t grace; async_server srv; async_group g; int client, tries;) {
    struct sockaddr_in a;
    ASSERT_EQ(async_server_listen(&f->srv, "127.0.0.1", 0, 0, sizeof(dl_conn_frame), dl_conn_new, NULL), 0);
    ASYNC_SPAWN(t, &f->g, async_server_serve(&f->srv));
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)async_server_port(&f->srv));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    f->client = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT(connect(f->client, (struct sockaddr *)&a, sizeof a) == 0); /* the backlog takes it */
    /* accepted, or refused for want of memory (then the assertion below says so, and the test ends) */
    while (f->srv.accepted + f->srv.refused == 0 && f->tries++ < 5000) AWAIT_SLEEP(t, 1);
    ASSERT_EQ(async_server_connections(&f->srv), 1);
    async_server_close(&f->srv, f->grace);
    AWAIT_GROUP(t, &f->g); /* serve ends once the connection has ended */
    close(f->client);
} ASYNC_END_DEF

/* Closes a server with one connection running (work_ms more) with grace; what the connection did. */
static void dl_close_with_grace(int64_t grace, int64_t work_ms, int *finished, int *cancelled) {
    static dl_grace_frame f;
    dl_finished = dl_cancelled = 0;
    dl_work_ms = work_ms;
    ASSERT_EQ(dl_run(ASYNC_CALL(dl_grace, &f, grace)), 0);
    ASSERT_EQ(f.srv.accepted, 1);
    *finished = dl_finished;
    *cancelled = dl_cancelled;
}

TEST(deadline_server_grace_over_the_clocks_range_is_no_limit) {
    static const int64_t graces[] = {DL_ONE_AS_INT32, DL_JUST_OVER, INT64_MAX, DL_NEGATIVE_AS_INT32, -1};
    int finished, cancelled;
    size_t i;
    for (i = 0; i < sizeof graces / sizeof graces[0]; i++) {
        /* 60 ms: longer than the grace would be if it were cut to 32 bits (1 ms) */
        dl_close_with_grace(graces[i], 60, &finished, &cancelled);
        ASSERT_EQ(finished, 1);
        ASSERT_EQ(cancelled, 0);
    }
    /* a grace the clock can time still cancels: 1 ms against TEST_LONG_MS of work (60 ms could run out
     * first when the process stalls) */
    dl_close_with_grace(1, TEST_LONG_MS, &finished, &cancelled);
    ASSERT_EQ(finished, 0);
    ASSERT_EQ(cancelled, 1);
}

/* ---- the HTTP server: its limits refuse such times, its close takes them as no limit ---- */

ASYNC_HTTP_DEF(dl_http_handler) {
    async_http_response_text(f->res, 200, "ok");
} ASYNC_END_DEF

static const async_http_route dl_http_routes[] = {ASYNC_HTTP_ROUTE(NULL, NULL, dl_http_handler), ASYNC_HTTP_ROUTES_END};

TEST(deadline_http_server_limits_over_the_clocks_range_are_erange) {
    static async_http_server hs;
    async_http_limits lim;
    memset(&lim, 0, sizeof lim);
    lim.idle_ms = DL_ONE_AS_INT32;
    ASSERT_EQ(async_http_server_listen(&hs, "127.0.0.1", 0, 0, &lim, dl_http_routes, NULL), ASYNC_ERANGE);
    lim.idle_ms = 0;
    lim.request_ms = DL_JUST_OVER;
    ASSERT_EQ(async_http_server_listen(&hs, "127.0.0.1", 0, 0, &lim, dl_http_routes, NULL), ASYNC_ERANGE);
    lim.request_ms = 0;
    lim.linger_ms = DL_JUST_OVER;
    ASSERT_EQ(async_http_server_listen(&hs, "127.0.0.1", 0, 0, &lim, dl_http_routes, NULL), ASYNC_ERANGE);
    lim.request_ms = ASYNC_MS_MAX; /* the most the clock can time is fine */
    lim.idle_ms = ASYNC_MS_MAX;
    lim.linger_ms = ASYNC_MS_MAX;
    ASSERT_EQ(async_http_server_listen(&hs, "127.0.0.1", 0, 0, &lim, dl_http_routes, NULL), 0);
    async_http_server_close(&hs, 0);
}

/* A request half sent when the server closes with a grace of 2^32 + 1 ms: it is answered once its end
 * arrives 60 ms later (cut to 32 bits, the grace was 1 ms and the connection was cancelled unanswered). */
ASYNC_DEF(dl_http_close, async_http_server hs; async_group g; async_stream c; char buf[512]; size_t n, len;
          int tries;) {
    static const char head[] = "GET / HTTP/1.1\r\nHost: a\r\n";
    ASSERT_EQ(async_http_server_listen(&f->hs, "127.0.0.1", 0, 0, NULL, dl_http_routes, NULL), 0);
    ASYNC_SPAWN(t, &f->g, async_http_server_serve(&f->hs));
    AWAIT_STREAM_CONNECT(t, &f->c, "127.0.0.1", async_http_server_port(&f->hs), 2000);
    ASSERT_EQ(async_stream_write(&f->c, head, sizeof head - 1), 0);
    AWAIT_STREAM_DRAIN(t, &f->c, 2000);
    while (f->hs.server.accepted + f->hs.server.refused == 0 && f->tries++ < 5000) AWAIT_SLEEP(t, 1);
    ASSERT_EQ(async_server_connections(&f->hs.server), 1);
    AWAIT_SLEEP(t, 20); /* the connection has read the first bytes: it is busy, not idle */
    async_http_server_close(&f->hs, DL_ONE_AS_INT32);
    AWAIT_SLEEP(t, 60);
    ASSERT_EQ(async_stream_write(&f->c, "\r\n", 2), 0);
    AWAIT_STREAM_DRAIN(t, &f->c, 2000);
    do {
        AWAIT_STREAM_READ(t, &f->c, f->buf + f->len, sizeof f->buf - 1 - f->len, &f->n, 2000);
        f->len += f->n;
    } while (f->n && f->len < sizeof f->buf - 1);
    f->buf[f->len] = '\0';
    async_stream_close(&f->c);
    AWAIT_GROUP(t, &f->g);
} ASYNC_END_DEF

TEST(deadline_http_server_close_with_a_grace_over_the_clocks_range_waits) {
    static dl_http_close_frame f;
    ASSERT_EQ(dl_run(ASYNC_CALL(dl_http_close, &f)), 0);
    ASSERT(strstr(f.buf, "HTTP/1.1 200 OK\r\n") == f.buf);
    ASSERT(strstr(f.buf, "Connection: close\r\n") != NULL);
}

/* ---- debug mode's slow-step threshold ---- */

ASYNC_DEF(dl_quick) {
    AWAIT_SLEEP(t, 1);
} ASYNC_END_DEF

/* What debug mode reported for two quick steps under the threshold ms. */
static const char *dl_slow_steps(uint64_t ms) {
    static char out[4096];
    static dl_quick_frame q;
    async_loop *loop = async_loop_new(0);
    FILE *f = tmpfile();
    size_t n;
    ASSERT(loop != NULL && f != NULL);
    ASSERT_EQ(async_loop_set_debug(loop, true), 0);
    async_loop_set_debug_output(loop, f);
    async_loop_set_slow_step(loop, ms);
    ASSERT_EQ(async_run(loop, ASYNC_CALL(dl_quick, &q)), 0);
    async_loop_free(loop);
    rewind(f);
    n = fread(out, 1, sizeof out - 1, f);
    out[n] = '\0';
    fclose(f);
    return out;
}

TEST(deadline_debug_slow_step_threshold_keeps_its_64_bits) {
    ASSERT(strstr(dl_slow_steps(0), "blocked the loop") != NULL); /* 0: every step */
    ASSERT_STR_EQ(dl_slow_steps((uint64_t)1 << 32), "");          /* was 0 as 32 bits */
    ASSERT_STR_EQ(dl_slow_steps(UINT64_MAX), "");                 /* no overflow into a small one */
}
