/* The stream server (async_server) against real sockets on 127.0.0.1: listening and its errors,
 * refused connections, closing with and without grace while connections are busy, idle or stubborn,
 * cancelling it at each of its waits, a connection function that closes the server, connections that
 * end in their first step or fail, running out of descriptors, host literals, and bad arguments.
 * Real time, with a deadline in ms on every wait. */
#include "test.h"
#include "util.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- listening and accepting ---- */

TEST(net_server_listen_errors) {
    static async_server a, b;
    ASSERT_EQ(async_server_listen(&a, "127.0.0.1", 0, 0, sizeof(echo_frame), echo_new, NULL), 0);
    ASSERT_EQ(async_server_listen(&b, "127.0.0.1", async_server_port(&a), 0, 16, echo_new, NULL), ASYNC_EADDRINUSE);
    ASSERT_EQ(async_server_listen(&b, "127.0.0.1", 70000, 0, 16, echo_new, NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_server_listen(&b, "127.0.0.1", 0, 0, 16, NULL, NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_server_listen(NULL, "127.0.0.1", 0, 0, 16, echo_new, NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_server_listen(&b, "not-an-address", 0, 0, 16, echo_new, NULL), ASYNC_EINVAL);
    async_server_close(&a, 0); /* never served: the listening socket is closed here */
    ASSERT_EQ(async_server_listen(&b, "127.0.0.1", async_server_port(&a), 0, 16, echo_new, NULL), 0);
    async_server_close(&b, 0);
    ASSERT(async_server_serve(NULL) == NULL);
    ASSERT_EQ(async_server_port(NULL), 0);
}

TEST(net_server_bracketed_ipv6_literals) {
    static net_op_frame f;
    static async_stream s;
    static async_server srv, bad;
    static char long_literal[80];
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    memset(long_literal, '1', sizeof long_literal - 1);
    long_literal[0] = '[';
    long_literal[sizeof long_literal - 2] = ']';
    ASSERT_EQ(async_server_listen(&bad, "[", 0, 0, 64, echo_new, NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_server_listen(&bad, "[::1", 0, 0, 64, echo_new, NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_server_listen(&bad, long_literal, 0, 0, 64, echo_new, NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_server_listen(&bad, "[127.0.0.1]", 0, 0, 64, echo_new, NULL), ASYNC_EINVAL);
    if (fd < 0) test_skip("no IPv6: the malformed literals were checked, not a server on [::1]");
    close(fd);
    ASSERT_EQ(async_server_listen(&srv, "[::1]", 0, 0, 64, echo_new, NULL), 0);
    ASSERT_EQ(net_do(net_connect_op(&f, &s, "[::1]", async_server_port(&srv), 1000)), 0);
    ASSERT(async_stream_fd(&s) >= 0);
    async_stream_close(&s);
    async_server_close(&srv, 0);
}

static int net_refuse_count;

static async_task *net_refuse_odd(void *frame, async_stream *s, void *arg) {
    (void)arg;
    if (net_refuse_count++ % 2 == 0) return NULL; /* as if its memory could not be had: closed at once */
    return echo_new(frame, s, NULL);
}

ASYNC_DEF(net_refuse, async_server srv; async_group g; async_stream c; char buf[16]; size_t n; int i, eofs, echoes;) {
    ASSERT_EQ(async_server_listen(&f->srv, "127.0.0.1", 0, 0, sizeof(echo_frame), net_refuse_odd, NULL), 0);
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
} ASYNC_END_DEF

TEST(net_server_refused_connection_is_closed_and_the_server_goes_on) {
    static net_refuse_frame f;
    ASSERT_EQ(run_real(ASYNC_CALL(net_refuse, &f)), 0);
    ASSERT_EQ(f.echoes, 2);
    ASSERT_EQ(f.eofs, 2);
    ASSERT_EQ(f.srv.refused, 2);
    ASSERT_EQ(f.srv.accepted, 2);
}

/* ---- closing with live connections ---- */

/* What the connections of a scenario server did. */
typedef struct {
    async_server *srv;
    int made, started, finished, cancelled, cleaned;
    int close_at;   /* the conn fn closes the server at this connection (1-based); 0: never */
    bool born_idle; /* the conn fn marks new connections idle */
    int mode;       /* 0: net_conn; 1: net_conn_quick, which answers "bye" and ends in its first step;
                       2: net_conn_failing, which fails in its first step */
} net_srv_stats;

/* A connection: reads one command line and acts on it. "slow": answers "busy", sleeps 30 ms, answers
 * "done". "hang": answers "ok" and waits for input forever. "stubborn": the same, but once cancelled it
 * takes TEST_LONG_MS to clean up. "idle": answers "ok", marks itself idle and waits for the next line. "late":
 * answers "ok", sleeps 30 ms, then marks itself idle and reads. cmd: the line without its newline. */
ASYNC_DEF(net_conn, async_stream *s; net_srv_stats *st; const char *line; size_t len, n; bool cleanup; char cmd[16];
          char buf[16];) {
    f->st->started++;
    ASYNC_TRY(t) {
        AWAIT_STREAM_READLINE(t, f->s, &f->line, &f->len, 64, 2000);
        /* the whole command, not its first four bytes: "stubborn" must not read as no command at all */
        f->n = f->len && f->line[f->len - 1] == '\n' ? f->len - 1 : f->len;
        memcpy(f->cmd, f->line, f->n < sizeof f->cmd - 1 ? f->n : sizeof f->cmd - 1);
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
    if (f->cleanup) { /* the server waits for it; a second cancellation, 5 ms after the first, cuts it short
                         (a short clean-up would race that cancel on a busy machine) */
        AWAIT_SLEEP(t, TEST_LONG_MS);
        f->st->cleaned++;
    }
} ASYNC_END_DEF

ASYNC_DEF(net_conn_quick, async_stream *s; net_srv_stats *st;) {
    f->st->started++;
    async_stream_write(f->s, "bye\n", 4); /* the server closes the stream after the task: unsent output
                                             is dropped, but 4 bytes go out at once */
    f->st->finished++;
} ASYNC_END_DEF

ASYNC_DEF(net_conn_failing, async_stream *s; net_srv_stats *st;) {
    f->st->started++;
    ASYNC_THROW(t, ASYNC_EPROTO, "this connection fails at once");
} ASYNC_END_DEF

/* The server's frames are sizeof(net_conn_frame), the largest of the three. */
static async_task *net_conn_new(void *frame, async_stream *s, void *arg) {
    net_srv_stats *st = (net_srv_stats *)arg;
    st->made++;
    if (st->made == st->close_at) async_server_close(st->srv, -1);
    if (st->born_idle) async_stream_set_idle(s, true);
    if (st->mode == 1) return ASYNC_CALL(net_conn_quick, (net_conn_quick_frame *)frame, s, st);
    if (st->mode == 2) return ASYNC_CALL(net_conn_failing, (net_conn_failing_frame *)frame, s, st);
    return ASYNC_CALL(net_conn, (net_conn_frame *)frame, s, st);
}

struct net_srv_frame;
static void net_srv_log(struct net_srv_frame *f, const char *p, size_t n);

/* A server scenario: the client connects, sends `cmd`, reads the first answer, then the server is closed
 * with `grace_ms` (or cancelled, if cancel_serve: the times to cancel the accept loop, 5 ms apart, after
 * the close unless grace_ms is NET_NO_CLOSE), and the client reads what else comes. st: what the
 * connections do, and what they did. */
#define NET_NO_LIMIT (-1) /* grace_ms: close, and wait for the connections however long they take */
#define NET_NO_CLOSE (-2) /* grace_ms: the scenario does not close the server itself */

ASYNC_DEF(net_srv, const char *cmd; int32_t grace_ms; int cancel_serve; net_srv_stats st; async_server srv;
          async_group g; async_stream c; int i; const char *line; size_t len; char log[128]; int client_code;
          int port;) {
    ASSERT_EQ(async_server_listen(&f->srv, "127.0.0.1", 0, 0, sizeof(net_conn_frame), net_conn_new, &f->st), 0);
    f->st.srv = &f->srv;
    f->port = async_server_port(&f->srv);
    ASYNC_SPAWN(t, &f->g, async_server_serve(&f->srv));
    ASYNC_TRY(t) {
        AWAIT_STREAM_CONNECT(t, &f->c, "127.0.0.1", f->port, 1000);
        async_stream_write(&f->c, f->cmd, strlen(f->cmd));
        AWAIT_STREAM_READLINE(t, &f->c, &f->line, &f->len, 64, 2000);
        net_srv_log(f, f->line, f->len);
        if (f->grace_ms != NET_NO_CLOSE) async_server_close(&f->srv, f->grace_ms);
        ASSERT(async_server_closing(&f->srv));
        for (f->i = 0; f->i < f->cancel_serve; f->i++) {
            AWAIT_SLEEP(t, 5);
            async_cancel(&f->srv.task);
        }
        for (;;) {
            AWAIT_STREAM_READLINE(t, &f->c, &f->line, &f->len, 64, 2000);
            if (!f->len) break;
            net_srv_log(f, f->line, f->len);
        }
    }
    ASYNC_CATCH(t) {
        f->client_code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
    async_stream_close(&f->c);
    async_server_close(&f->srv, 0); /* if the client failed before it closed the server */
    AWAIT_GROUP(t, &f->g);
} ASYNC_END_DEF

static void net_srv_log(net_srv_frame *f, const char *p, size_t n) {
    size_t used = strlen(f->log);
    snprintf(f->log + used, sizeof f->log - used, "[%.*s]", (int)n, p);
}

static int net_srv_scenario(net_srv_frame *f, const char *cmd, int32_t grace_ms) {
    return run_real(ASYNC_CALL(net_srv, f, cmd, grace_ms));
}

TEST(net_server_close_with_grace_lets_a_busy_connection_finish) {
    static net_srv_frame f;
    ASSERT_EQ(net_srv_scenario(&f, "slow\n", 2000), 0);
    ASSERT_STR_EQ(f.log, "[busy\n][done\n]");
    ASSERT_EQ(f.client_code, 0);
    ASSERT_EQ(f.st.finished, 1);
    ASSERT_EQ(f.st.cancelled, 0);
    ASSERT_EQ(async_task_code(&f.srv.task), 0);
    ASSERT_EQ(async_server_connections(&f.srv), 0);
}

TEST(net_server_close_without_limit_waits_for_the_connection) {
    static net_srv_frame f;
    ASSERT_EQ(net_srv_scenario(&f, "slow\n", NET_NO_LIMIT), 0);
    ASSERT_STR_EQ(f.log, "[busy\n][done\n]");
    ASSERT_EQ(f.st.finished, 1);
    ASSERT_EQ(f.st.cancelled, 0);
}

TEST(net_server_grace_runs_out_and_cancels_the_connection) {
    static net_srv_frame f;
    ASSERT_EQ(net_srv_scenario(&f, "hang\n", 20), 0);
    ASSERT_STR_EQ(f.log, "[ok\n]");
    ASSERT_EQ(f.st.finished, 0);
    ASSERT_EQ(f.st.cancelled, 1);
    ASSERT_EQ(async_task_code(&f.srv.task), 0);
    ASSERT_EQ(f.srv.accepted, 1);
}

TEST(net_server_close_without_grace_cancels_at_once) {
    static net_srv_frame f;
    ASSERT_EQ(net_srv_scenario(&f, "hang\n", 0), 0);
    ASSERT_EQ(f.st.cancelled, 1);
    ASSERT_EQ(async_task_code(&f.srv.task), 0);
}

TEST(net_server_close_cancels_idle_connections_at_once) {
    static net_srv_frame f;
    ASSERT_EQ(net_srv_scenario(&f, "idle\n", NET_NO_LIMIT), 0); /* no limit: only its being idle ends it */
    ASSERT_STR_EQ(f.log, "[ok\n]");
    ASSERT_EQ(f.st.cancelled, 1);
    ASSERT_EQ(f.st.finished, 0);
}

TEST(net_server_connection_going_idle_after_close_is_cancelled) {
    static net_srv_frame f;
    ASSERT_EQ(net_srv_scenario(&f, "late\n", NET_NO_LIMIT), 0);
    ASSERT_EQ(f.st.cancelled, 1);
    ASSERT_EQ(f.st.finished, 0);
}

TEST(net_server_cancelled_while_waiting_for_its_connections) {
    static net_srv_frame f;
    /* closed without a limit: only the cancellation ends the connection */
    ASSERT_EQ(run_real(ASYNC_CALL(net_srv, &f, "hang\n", NET_NO_LIMIT, .cancel_serve = 1)), 0);
    ASSERT_EQ(f.st.cancelled, 1);
    ASSERT_EQ(async_task_code(&f.srv.task), ASYNC_ECANCELED);
}

TEST(net_server_cancelled_during_its_grace_period) {
    static net_srv_frame f;
    ASSERT_EQ(run_real(ASYNC_CALL(net_srv, &f, "hang\n", 2000, .cancel_serve = 1)), 0);
    ASSERT_EQ(f.st.cancelled, 1);
    ASSERT_EQ(async_task_code(&f.srv.task), ASYNC_ECANCELED);
}

TEST(net_server_cancelled_twice_cancels_its_connections_again) {
    static net_srv_frame f;
    /* closed without a limit, then the accept loop cancelled twice, 5 ms apart: the stubborn connection's
     * clean-up (TEST_LONG_MS) is cut short by the second cancellation */
    ASSERT_EQ(run_real(ASYNC_CALL(net_srv, &f, "stubborn\n", NET_NO_LIMIT, .cancel_serve = 2)), 0);
    ASSERT_EQ(f.st.cancelled, 1);
    ASSERT_EQ(f.st.cleaned, 0); /* its clean-up was cancelled by the second one */
    ASSERT_EQ(async_task_code(&f.srv.task), ASYNC_ECANCELED);
    ASSERT_EQ(async_server_connections(&f.srv), 0);
}

TEST(net_server_fn_closing_the_server_skips_the_new_connection) {
    static net_srv_frame f;
    /* nothing sent: the server's close of it is an orderly end, not a reset */
    ASSERT_EQ(run_real(ASYNC_CALL(net_srv, &f, "", NET_NO_CLOSE, .st.close_at = 1, .st.born_idle = true)), 0);
    ASSERT_EQ(f.st.made, 1);
    ASSERT_EQ(f.st.started, 0); /* closed and idle before it ran: its body never ran */
    ASSERT_EQ(f.client_code, 0);
    ASSERT_STR_EQ(f.log, "[]"); /* the client's first readline saw the end */
    ASSERT_EQ(async_task_code(&f.srv.task), 0);
    ASSERT_EQ(f.srv.accepted, 1);
}

TEST(net_server_connection_task_ending_in_its_first_step) {
    static net_srv_frame f;
    ASSERT_EQ(run_real(ASYNC_CALL(net_srv, &f, "", NET_NO_LIMIT, .st.mode = 1)), 0);
    ASSERT_STR_EQ(f.log, "[bye\n]");
    ASSERT_EQ(f.st.finished, 1);
    ASSERT_EQ(async_server_connections(&f.srv), 0);
    ASSERT_EQ(async_task_code(&f.srv.task), 0);
}

TEST(net_server_connection_failing_ends_it_alone) {
    static net_srv_frame f;
    ASSERT_EQ(run_real(ASYNC_CALL(net_srv, &f, "", NET_NO_LIMIT, .st.mode = 2)), 0);
    ASSERT_STR_EQ(f.log, "[]"); /* the end of the stream */
    ASSERT_EQ(f.st.started, 1);
    ASSERT_EQ(f.client_code, 0);
    ASSERT_EQ(async_task_code(&f.srv.task), 0); /* the server was not hurt */
    ASSERT_EQ(f.srv.accepted, 1);
}

/* Two clients; the conn fn closes the server when the second arrives, while the first still runs. */
ASYNC_DEF(net_two, async_server srv; async_group g; async_stream c1, c2; net_srv_stats st; const char *line; size_t len;
          char log[64];) {
    ASSERT_EQ(async_server_listen(&f->srv, "127.0.0.1", 0, 0, sizeof(net_conn_frame), net_conn_new, &f->st), 0);
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
} ASYNC_END_DEF

TEST(net_server_closed_by_its_conn_fn_waits_for_every_connection) {
    static net_two_frame f;
    ASSERT_EQ(run_real(ASYNC_CALL(net_two, &f)), 0);
    ASSERT_STR_EQ(f.log, "busy\ndone\n");
    ASSERT_EQ(f.st.made, 2);
    ASSERT_EQ(f.st.finished, 2);
    ASSERT_EQ(f.st.cancelled, 0);
    ASSERT_EQ(async_task_code(&f.srv.task), 0);
    ASSERT_EQ(async_server_connections(&f.srv), 0);
}

ASYNC_DEF(net_accept_cancel, async_server srv; async_group g; net_op_frame op; async_stream c;) {
    ASSERT_EQ(async_server_listen(&f->srv, "127.0.0.1", 0, 0, sizeof(echo_frame), echo_new, NULL), 0);
    ASYNC_SPAWN(t, &f->g, async_server_serve(&f->srv));
    AWAIT_SLEEP(t, 0);
    async_cancel(&f->srv.task);
    AWAIT_GROUP(t, &f->g);
    AWAIT(t, &net_connect_op(&f->op, &f->c, "127.0.0.1", async_server_port(&f->srv), 1000)->task);
} ASYNC_END_DEF

TEST(net_server_cancelled_in_its_accept_wait_closes_the_listener) {
    static net_accept_cancel_frame f;
    ASSERT_EQ(run_real(ASYNC_CALL(net_accept_cancel, &f)), 0);
    ASSERT_EQ(async_task_code(&f.srv.task), ASYNC_ECANCELED);
    ASSERT_EQ(f.op.code, ASYNC_ECONNREFUSED); /* nothing listens any more */
    ASSERT(async_server_closing(&f.srv));
}

/* ---- out of descriptors ---- */

ASYNC_DEF(net_emfile, async_server srv; async_group g; async_stream c; struct rlimit old; char buf[8];) {
    ASSERT_EQ(async_server_listen(&f->srv, "127.0.0.1", 0, 0, sizeof(echo_frame), echo_new, NULL), 0);
    AWAIT_STREAM_CONNECT(t, &f->c, "127.0.0.1", async_server_port(&f->srv), 1000); /* in the backlog */
    f->old = net_no_more_fds();
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
} ASYNC_END_DEF

ASYNC_DEF(net_emfile_cancel, async_server srv; async_group g; async_stream c; struct rlimit old;) {
    ASSERT_EQ(async_server_listen(&f->srv, "127.0.0.1", 0, 0, sizeof(echo_frame), echo_new, NULL), 0);
    AWAIT_STREAM_CONNECT(t, &f->c, "127.0.0.1", async_server_port(&f->srv), 1000);
    f->old = net_no_more_fds();
    ASYNC_SPAWN(t, &f->g, async_server_serve(&f->srv));
    AWAIT_SLEEP(t, 10); /* the accept loop sleeps, out of descriptors */
    async_cancel(&f->srv.task);
    AWAIT_GROUP(t, &f->g);
    ASSERT(setrlimit(RLIMIT_NOFILE, &f->old) == 0);
} ASYNC_END_DEF

TEST(net_server_cancelled_while_out_of_descriptors) {
    static net_emfile_cancel_frame f;
    ASSERT_EQ(run_real(ASYNC_CALL(net_emfile_cancel, &f)), 0);
    ASSERT_EQ(async_task_code(&f.srv.task), ASYNC_ECANCELED);
    ASSERT_EQ(f.srv.accepted, 0);
    async_stream_close(&f.c);
}

TEST(net_server_out_of_descriptors_waits_and_accepts_later) {
    static net_emfile_frame f;
    if (test_under_valgrind())
        test_skip("valgrind emulates the descriptor limit after the fact: it closes the accepted socket, and "
                  "the connection is lost");
    ASSERT_EQ(run_real(ASYNC_CALL(net_emfile, &f)), 0);
    ASSERT_EQ(f.srv.accepted, 1);
    ASSERT_EQ(f.srv.refused, 0);
}

/* ---- misuse ---- */

ASYNC_DEF(net_serve, async_server srv; int code;) {
    ASYNC_TRY(t) {
        AWAIT(t, async_server_serve(&f->srv));
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

TEST(net_server_serve_misuse) {
    static net_serve_frame f;
    static async_server zeroed;
    if (!net_fd_is_open(0)) ASSERT_EQ(open("/dev/null", O_RDONLY), 0);
    /* never listened: its fd field is 0, which is not its socket */
    ASSERT_EQ(run_real(ASYNC_CALL(net_serve, &f)), 0);
    ASSERT_EQ(f.code, ASYNC_EBADF);
    ASSERT(net_fd_is_open(0));
    async_server_close(&zeroed, 0);
    ASSERT(async_server_closing(&zeroed));
    ASSERT(net_fd_is_open(0)); /* closing it closes nothing */
    ASSERT_EQ(run_real(ASYNC_CALL(net_serve, &f, zeroed)), 0);
    ASSERT_EQ(f.code, ASYNC_EBADF); /* closed, but it never listened */
    ASSERT(net_fd_is_open(0));
    /* the virtual clock polls no sockets */
    ASYNC_CALL(net_serve, &f);
    ASSERT_EQ(async_server_listen(&f.srv, "127.0.0.1", 0, 0, 64, echo_new, NULL), 0);
    ASSERT_EQ(run_virtual(&f.task), 0);
    ASSERT_EQ(f.code, ASYNC_ENOTSUP);
    async_server_close(&f.srv, 0);
    /* closed before it served: it ends at once */
    ASYNC_CALL(net_serve, &f);
    ASSERT_EQ(async_server_listen(&f.srv, "127.0.0.1", 0, 0, 64, echo_new, NULL), 0);
    async_server_close(&f.srv, 0);
    async_server_close(&f.srv, 0); /* twice is fine */
    ASSERT_EQ(run_real(&f.task), 0);
    ASSERT_EQ(f.code, 0);
    ASSERT_EQ(f.srv.accepted, 0);
}

TEST(net_server_and_thread_functions_reject_bad_arguments) {
    static async_server srv;
    async_loop *virt;
    ASSERT_EQ(async_server_listen(&srv, "127.0.0.1", -1, 0, 16, echo_new, NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_server_listen(&srv, "127.0.0.1", 0, 0, ((size_t)1 << 30) + 1, echo_new, NULL),
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
