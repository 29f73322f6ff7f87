/* libFuzzer target: the scheduler and the hosted runtime together in the simulated world. The input's
 * first four bytes choose the world (fuzz_sim.h, with a window of at least 64 bytes here, so that an input
 * costs at most a few thousand events; partial_pct also cuts file reads and writes short,
 * and a world that may reset also fails 10% of file calls); the rest is the program of four workers, two
 * bytes an instruction (an operation, an argument), dealt to the workers in turn. Operations:
 *
 *   sleep        AWAIT_SLEEP(arg % 20)
 *   echo         connect to the world's echo server, send 1 + arg % 48 bytes, read them back, close
 *   echo-by      the same under ASYNC_TIMEOUT of arg % 16 ms (cancelled anywhere in it)
 *   thread       AWAIT_TO_THREAD of a function that returns arg: the result must be arg
 *   file         write 1 + arg % 48 bytes to a file of the worker's, read it whole: the same bytes
 *   cancel       cancels worker arg % 4 (itself too)
 *   yield        AWAIT_YIELD
 *   bulk         send 100 x (1 + arg % 4) bytes and read them back (the window's back-pressure)
 *
 * Checked: every worker ends, with a code the operations may raise (cancelled, timed out, the world's
 * resets and file errors), its finally block ran exactly once (or it was cancelled before it started);
 * the echo's and the file's bytes are the ones sent; the world's census reads zero at the end (no socket,
 * file, event, timer or wait left). No crash, leak or undefined behaviour (sanitizers). A failure replays
 * from its input alone. */
#include "fuzz_sim.h"

#define WORKERS 4
#define MAX_STEPS 48

enum { OP_SLEEP, OP_ECHO, OP_ECHO_BY, OP_THREAD, OP_FILE, OP_CANCEL, OP_YIELD, OP_BULK, NOPS };

static async_server server;
static int may_fail; /* the world resets connections and fails file calls */
static const uint8_t *prog;
static size_t prog_len;

/* The echo server's connection: echoes until the end of the stream. */
ASYNC_DEF(echo_conn, async_stream *s; char buf[512]; size_t n;) {
    for (;;) {
        AWAIT_STREAM_READ(t, f->s, f->buf, sizeof f->buf, &f->n, 600000);
        if (f->n == 0) break;
        if (async_stream_write(f->s, f->buf, f->n)) break;
        AWAIT_STREAM_DRAIN(t, f->s, 600000);
    }
} ASYNC_END_DEF

static async_task *echo_conn_new(void *frame, async_stream *s, void *arg) {
    (void)arg;
    return ASYNC_CALL(echo_conn, (echo_conn_frame *)frame, s);
}

static int thread_fn(void *arg, intptr_t *result) {
    *result = (intptr_t)arg;
    return 0;
}

/* Writes len bytes to s and waits until the world took them all (a write alone leaves what the window
 * did not take in the stream's buffer). */
ASYNC_DEF(echo_write, async_stream *s; const uint8_t *out; size_t len;) {
    int rc = async_stream_write(f->s, f->out, f->len);
    if (rc) ASYNC_THROW_ERROR(t, async_error_of(rc));
    AWAIT_STREAM_DRAIN(t, f->s, 600000);
} ASYNC_END_DEF

ASYNC_DEF(echo_read, async_stream *s; uint8_t *in; size_t len;) {
    AWAIT_STREAM_READEXACTLY(t, f->s, f->in, f->len, 600000);
} ASYNC_END_DEF

/* One exchange with the echo server: len bytes out while the same come back (both at once: the echo
 * needs its answer read to go on reading). */
ASYNC_DEF(echo_once, size_t len; uint8_t seed; async_stream s; uint8_t out[400], in[400]; async_group g;
          echo_write_frame w; echo_read_frame r;) {
    size_t i;
    for (i = 0; i < f->len; i++) f->out[i] = (uint8_t)(f->seed + i * 7);
    ASYNC_TRY(t) {
        AWAIT_STREAM_CONNECT(t, &f->s, "127.0.0.1", 7, 600000);
        AWAIT_GATHER_SETTLED(t, &f->g, ASYNC_CALL(echo_write, &f->w, &f->s, f->out, f->len),
                             ASYNC_CALL(echo_read, &f->r, &f->s, f->in, f->len));
        if (async_task_code(&f->w.task)) ASYNC_THROW_ERROR(t, async_task_error(&f->w.task));
        if (async_task_code(&f->r.task)) ASYNC_THROW_ERROR(t, async_task_error(&f->r.task));
        FUZZ_CHECK(memcmp(f->in, f->out, f->len) == 0);
    }
    ASYNC_FINALLY(t) {
        async_stream_close(&f->s);
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

static async_task *workers[WORKERS]; /* what a cancel aims at */

ASYNC_DEF(worker, int id; size_t pc; int started, finally_runs, code; uint8_t op, arg; echo_once_frame echo;
          async_deadline dl; async_thread_call call; char path[16]; char *data; size_t len; uint8_t buf[64];) {
    size_t i;
    f->started = 1;
    ASYNC_TRY(t) {
        for (f->pc = (size_t)f->id * 2; f->pc + 1 < prog_len && f->pc / 2 / WORKERS < MAX_STEPS;
             f->pc += 2 * WORKERS) {
            f->op = (uint8_t)(prog[f->pc] % NOPS);
            f->arg = prog[f->pc + 1];
            if (fuzz_verbose())
                fprintf(stderr, "  worker %d at %u ms: op %d arg %d\n", f->id, fuzz_now(t),
                        f->op, f->arg);
            if (f->op == OP_SLEEP) {
                AWAIT_SLEEP(t, f->arg % 20);
            } else if (f->op == OP_ECHO) {
                AWAIT_CALL(t, echo_once, &f->echo, 1 + f->arg % 48u, f->arg);
            } else if (f->op == OP_ECHO_BY) {
                ASYNC_TIMEOUT(t, &f->dl, f->arg % 16) {
                    AWAIT_CALL(t, echo_once, &f->echo, 1 + f->arg % 48u, f->arg);
                }
                ASYNC_END_TIMEOUT(t, &f->dl);
            } else if (f->op == OP_THREAD) {
                AWAIT_TO_THREAD(t, &f->call, thread_fn, (void *)(intptr_t)f->arg, NULL);
                FUZZ_CHECK(async_thread_call_result(&f->call) == f->arg);
            } else if (f->op == OP_FILE) {
                snprintf(f->path, sizeof f->path, "/w%d", f->id);
                f->len = 1 + f->arg % 48u;
                for (i = 0; i < f->len; i++) f->buf[i] = (uint8_t)(f->arg ^ i);
                AWAIT_FILE_WRITE_ALL(t, &f->call, f->path, f->buf, f->len, 0644);
                AWAIT_FILE_READ_ALL(t, &f->call, f->path, &f->data, &f->len);
                FUZZ_CHECK(f->len == 1 + f->arg % 48u && memcmp(f->data, f->buf, f->len) == 0);
                free(f->data);
                f->data = NULL;
            } else if (f->op == OP_CANCEL) {
                async_cancel(workers[f->arg % WORKERS]);
            } else if (f->op == OP_YIELD) {
                AWAIT_YIELD(t);
            } else {
                AWAIT_CALL(t, echo_once, &f->echo, 100 * (1 + f->arg % 4u), f->arg);
            }
        }
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
    }
    ASYNC_FINALLY(t) {
        f->finally_runs++;
        free(f->data);
        f->data = NULL;
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

ASYNC_DEF(scenario, async_group g, all; worker_frame w[WORKERS]; fuzz_settle_frame settle;) {
    int i;
    FUZZ_CHECK(async_server_listen(&server, "127.0.0.1", 7, 0, sizeof(echo_conn_frame), echo_conn_new, NULL) == 0);
    ASYNC_SPAWN(t, &f->g, async_server_serve(&server));
    for (i = 0; i < WORKERS; i++) workers[i] = &f->w[i].task;
    AWAIT_GATHER_SETTLED(t, &f->all, ASYNC_CALL(worker, &f->w[0], 0), ASYNC_CALL(worker, &f->w[1], 1),
                         ASYNC_CALL(worker, &f->w[2], 2), ASYNC_CALL(worker, &f->w[3], 3));
    for (i = 0; i < WORKERS; i++) {
        int c = f->w[i].code;
        if (fuzz_verbose())
            fprintf(stderr, "worker %d: %s, finally %d, code %d (task %d), at %zu\n", i,
                    async_task_state(&f->w[i].task), f->w[i].finally_runs, c, async_task_code(&f->w[i].task),
                    f->w[i].pc);
        /* a worker cancelled before it started never runs (as in asyncio) */
        FUZZ_CHECK(async_task_done(&f->w[i].task));
        FUZZ_CHECK(f->w[i].finally_runs == 1 ||
                   (!f->w[i].started && async_task_code(&f->w[i].task) == ASYNC_ECANCELED));
        FUZZ_CHECK(c == 0 || c == ASYNC_ECANCELED || c == ASYNC_ETIMEDOUT ||
                   (may_fail && (c == ASYNC_ECONNRESET || c == ASYNC_EPIPE || c == ASYNC_ENODATA ||
                                 c == ASYNC_EIO || c == ASYNC_ENOSPC || c == ASYNC_ENOENT)));
    }
    if (fuzz_verbose())
        fprintf(stderr, "workers: %d %d %d %d\n", f->w[0].code, f->w[1].code, f->w[2].code, f->w[3].code);
    async_server_close(&server, 600000);
    AWAIT_CALL(t, fuzz_settle, &f->settle, &f->g);
} ASYNC_END_DEF

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static scenario_frame main;
    fuzz_world w;
    async_sim_options o;
    memset(&server, 0, sizeof server);
    if (!fuzz_world_new(&w, &data, &size, 4096)) return 0;
    o = w.o;
    o.file_short_pct = o.partial_pct;
    o.file_error_pct = o.reset_pct ? 10 : 0;
    o.call_delay_max_ms = 5;
    if (o.window && o.window < 64) o.window = 64;
    FUZZ_CHECK(async_sim_set_faults(w.loop, &o) == 0);
    may_fail = o.reset_pct > 0;
    prog = data;
    prog_len = size;
    fuzz_world_run(&w, ASYNC_CALL(scenario, &main));
    return 0;
}
