/* The retry-with-backoff client (the retry_backoff sample's pattern) against a flaky server in the
 * world: the server answers each line with its number doubled, but drops a third of its connections
 * without an answer (closes at once) and stalls another sixth past the client's deadline; connects are
 * refused at times too. The client tries each of its 30 requests up to 8 times, with exponential
 * backoff (100 ms, doubling, at most 3.2 s) and a 500 ms deadline per try. Checks: every request got its
 * right answer, never after its 8th try, and the backoff between tries was what the client asked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define FLAKY_HOST "10.0.0.2"
#define FLAKY_PORT 9000
#define REQUESTS 30
#define TRIES 8

typedef struct flaky_state {
    int answered, wrong, gave_up, tries;
    async_ms backoff_error; /* a pause that was not the one asked for */
} flaky_state;

/* The flaky server's connection: one line, one answer (or none). */
ASYNC_DEF(flaky_conn, async_stream *s; const char *line; size_t len; char out[32]; unsigned roll;) {
    f->roll = (unsigned)async_sim_random(async_task_loop(t), 6);
    if (f->roll < 2) ASYNC_RETURN(t, 0); /* dropped: closed without an answer */
    AWAIT_STREAM_READLINE(t, f->s, &f->line, &f->len, 64, 5000);
    if (f->len == 0) ASYNC_RETURN(t, 0);
    if (f->roll == 2) AWAIT_SLEEP(t, 2000); /* stalled past the client's deadline */
    snprintf(f->out, sizeof f->out, "%ld\n", 2 * strtol(f->line, NULL, 10));
    async_stream_write(f->s, f->out, strlen(f->out));
    AWAIT_STREAM_DRAIN(t, f->s, 5000);
} ASYNC_END_DEF

static async_task *flaky_new(void *frame, async_stream *s, void *arg) {
    (void)arg;
    return ASYNC_CALL(flaky_conn, (flaky_conn_frame *)frame, s);
}

/* One try: connect, ask, read the answer. */
ASYNC_DEF(ask, int n; long answer; async_stream s; char buf[32]; const char *line; size_t len;) {
    ASYNC_TRY(t) {
        AWAIT_STREAM_CONNECT(t, &f->s, FLAKY_HOST, FLAKY_PORT, 500);
        snprintf(f->buf, sizeof f->buf, "%d\n", f->n);
        async_stream_write(&f->s, f->buf, strlen(f->buf));
        AWAIT_STREAM_DRAIN(t, &f->s, 500);
        AWAIT_STREAM_READLINE(t, &f->s, &f->line, &f->len, 32, 500);
        if (f->len == 0) ASYNC_THROW(t, ASYNC_ENODATA, "closed without an answer");
        f->answer = strtol(f->line, NULL, 10);
    } ASYNC_FINALLY(t) {
        async_stream_close(&f->s);
    } ASYNC_END_TRY(t);
} ASYNC_END_DEF

ASYNC_DEF(retry_client, flaky_state *st; int i, attempt; int delay; async_ms before; ask_frame a; bool ok;) {
    for (f->i = 1; f->i <= REQUESTS; f->i++) {
        f->ok = false;
        for (f->attempt = 0, f->delay = 100; f->attempt < TRIES && !f->ok; f->attempt++) {
            f->st->tries++;
            ASYNC_TRY(t) {
                AWAIT_CALL(t, ask, &f->a, f->i);
                f->ok = true;
                if (f->a.answer != 2 * f->i) f->st->wrong++;
            } ASYNC_CATCH(t) {
                f->before = async_loop_now(async_task_loop(t));
                AWAIT_SLEEP(t, f->delay);
                if (async_loop_now(async_task_loop(t)) - f->before != (async_ms)f->delay) f->st->backoff_error++;
                if (f->delay < 3200) f->delay *= 2;
            } ASYNC_END_TRY(t);
        }
        if (f->ok)
            f->st->answered++;
        else
            f->st->gave_up++;
    }
} ASYNC_END_DEF

ASYNC_DEF(retry_main, flaky_state *st; async_server server; async_group serving; retry_client_frame c;) {
    int rc = async_server_listen(&f->server, FLAKY_HOST, FLAKY_PORT, 0, sizeof(flaky_conn_frame), flaky_new, NULL);
    if (rc) ASYNC_THROW_ERROR(t, async_error_of(rc));
    ASYNC_SPAWN(t, &f->serving, async_server_serve(&f->server));
    ASYNC_TRY(t) {
        AWAIT_CALL(t, retry_client, &f->c, f->st);
    } ASYNC_FINALLY(t) {
        async_server_close(&f->server, 3000);
    } ASYNC_END_TRY(t);
    AWAIT_GROUP(t, &f->serving);
} ASYNC_END_DEF

static void retry_options(async_sim_options *o, uint64_t seed, void *arg) {
    (void)seed;
    (void)arg;
    o->latency_min_ms = 1;
    o->latency_max_ms = 40;
    o->refuse_pct = 10;
    o->partial_pct = 20;
}

static int retry_scenario(async_loop *loop, void *arg, const char **why) {
    static flaky_state st;
    static retry_main_frame m;
    int rc;
    (void)arg;
    memset(&st, 0, sizeof st);
    memset(&m, 0, sizeof m);
    rc = async_run(loop, ASYNC_CALL(retry_main, &m, &st));
    if (rc) {
        *why = "the client's main failed";
        return rc;
    }
    if (st.wrong) {
        *why = "a wrong answer was taken";
        return ASYNC_EUSER;
    }
    if (st.backoff_error) {
        *why = "a backoff pause was not the one asked for";
        return ASYNC_EUSER;
    }
    if (st.answered + st.gave_up != REQUESTS) {
        *why = "a request neither answered nor given up";
        return ASYNC_EUSER;
    }
    async_sim_note(loop, &st, sizeof st);
    return 0;
}

const async_sim_scenario sim_retry_scenario = {"retry", retry_scenario, NULL, retry_options};
