/* to_thread and files: calls on the thread pool, their results and errors, cancellation and timeouts of
 * the awaiter (the thread runs on, the dtor gets the result exactly once), loops freed with calls in
 * flight, pools shared by loops on two threads, and the file calls' errors. Thread work takes no virtual
 * time, so these run on the virtual clock; where a call must still be running when something happens,
 * it waits at a gate that the test opens, never for a duration. */
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "net_util.h"

/* ---- calls for the pool ---- */

static int thr_identity(void *arg, intptr_t *result) {
    *result = (intptr_t)arg;
    return 0;
}

static int thr_fail(void *arg, intptr_t *result) {
    *result = 7; /* a failed call's result is not delivered */
    return (int)(intptr_t)arg;
}

/* A gate the calls wait at until the test opens it; started/finished count the calls. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int open, started, finished;
} thr_gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0};

static int thr_gated(void *arg, intptr_t *result) {
    char *heap = malloc(16); /* a result that leaks unless someone frees it */
    if (!heap) return ASYNC_ENOMEM;
    pthread_mutex_lock(&thr_gate.mu);
    thr_gate.started++;
    pthread_cond_broadcast(&thr_gate.cv);
    while (!thr_gate.open) pthread_cond_wait(&thr_gate.cv, &thr_gate.mu);
    thr_gate.finished++;
    pthread_mutex_unlock(&thr_gate.mu);
    snprintf(heap, 16, "gated %d", (int)(intptr_t)arg);
    *result = (intptr_t)heap;
    return 0;
}

static int thr_gate_count(int *which) {
    int n;
    pthread_mutex_lock(&thr_gate.mu);
    n = *which;
    pthread_mutex_unlock(&thr_gate.mu);
    return n;
}

static void thr_gate_open(void) {
    pthread_mutex_lock(&thr_gate.mu);
    thr_gate.open = 1;
    pthread_cond_broadcast(&thr_gate.cv);
    pthread_mutex_unlock(&thr_gate.mu);
}

/* Calls that each wait (at most thr_meet_ms) until `thr_meet_want` of them run at the same time. */
static int thr_meet_want;
static long thr_meet_ms = 2000;
static int thr_meet(void *arg, intptr_t *result) {
    struct timespec until;
    int rc = 0;
    (void)arg;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += thr_meet_ms % 1000 * 1000000L;
    until.tv_sec += thr_meet_ms / 1000 + until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    pthread_mutex_lock(&thr_gate.mu);
    thr_gate.started++;
    pthread_cond_broadcast(&thr_gate.cv);
    while (thr_gate.started < thr_meet_want && rc == 0) rc = pthread_cond_timedwait(&thr_gate.cv, &thr_gate.mu, &until);
    *result = thr_gate.started;
    pthread_mutex_unlock(&thr_gate.mu);
    return rc ? ASYNC_ETIMEDOUT : 0;
}

static int thr_dtor_calls;
static void thr_free_dtor(intptr_t result, void *arg) {
    (void)arg;
    thr_dtor_calls++;
    free((void *)result);
}

static void thr_reset(void) {
    thr_gate.open = thr_gate.started = thr_gate.finished = 0;
    thr_dtor_calls = 0;
}

/* ---- a coroutine awaiting one call: records the result or the error it caught, and re-raises ---- */

typedef struct {
    async_task task;
    async_thread_fn fn;
    void *arg;
    async_thread_dtor dtor;
    async_thread_call call;
    intptr_t result;
    int code;
    const char *message;
} thr_call_frame;

static async_status thr_call_run(async_task *t) {
    thr_call_frame *f = (thr_call_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_TRY(t) {
        AWAIT_TO_THREAD(t, &f->call, f->fn, f->arg, f->dtor);
        f->result = async_thread_result(&f->call);
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
        f->message = async_error_message(async_caught(t));
        ASYNC_RERAISE(t);
    }
    ASYNC_END_TRY(t);
    ASYNC_END(t);
}

/* thr_call(fn, arg, dtor); AWAIT evaluates it again when it resumes: the running frame is left alone */
static async_task *thr_call(thr_call_frame *f, async_thread_fn fn, intptr_t arg, async_thread_dtor dtor) {
    if (ASYNC_FRAME_INIT(f, thr_call_run)) {
        f->fn = fn;
        f->arg = (void *)arg;
        f->dtor = dtor;
    }
    return &f->task;
}

static async_loop *thr_virtual_loop(void) {
    async_loop *loop = async_loop_new(ASYNC_LOOP_VIRTUAL_CLOCK);
    ASSERT(loop != NULL);
    thr_reset();
    return loop;
}

/* ---- results and ordering ---- */

typedef struct {
    async_task task;
    thr_call_frame a, b, c;
    async_group all;
} thr_three_frame;

static async_status thr_three_run(async_task *t) {
    thr_three_frame *f = (thr_three_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT_GATHER(t, &f->all, thr_call(&f->a, thr_identity, 2, NULL), thr_call(&f->b, thr_identity, 1, NULL),
                 thr_call(&f->c, thr_identity, 3, NULL));
    ASYNC_END(t);
}

TEST(thread_results_come_back_in_argument_order) {
    async_loop *loop = thr_virtual_loop();
    static thr_three_frame m;
    async_ms start = async_loop_now(loop);
    ASYNC_FRAME_INIT(&m, thr_three_run);
    ASSERT_EQ(async_run(loop, &m.task), 0);
    ASSERT_EQ(m.a.result, 2);
    ASSERT_EQ(m.b.result, 1);
    ASSERT_EQ(m.c.result, 3);
    ASSERT_EQ(async_loop_now(loop) - start, 0); /* thread work takes no virtual time */
    ASSERT_EQ(async_loop_jobs(loop), 0);
    async_loop_free(loop);
}

/* Three calls that only return once all three run at the same time: the pool runs them concurrently. */
typedef struct {
    async_task task;
    thr_call_frame calls[3];
    async_group all;
    unsigned threads;
} thr_meet_frame;

static async_status thr_meet_run(async_task *t) {
    thr_meet_frame *f = (thr_meet_frame *)t;
    int i;
    ASYNC_BEGIN(t);
    if (f->threads) ASSERT_EQ(async_loop_set_threads(async_task_loop(t), f->threads), 0);
    for (i = 0; i < 3; i++) thr_call(&f->calls[i], thr_meet, 0, NULL);
    AWAIT_GATHER_ARRAY(t, &f->all, &f->calls[0].task, 3, sizeof f->calls[0]);
    ASYNC_END(t);
}

TEST(thread_calls_run_concurrently_on_the_pool) {
    async_loop *loop = thr_virtual_loop();
    static thr_meet_frame m;
    ASYNC_FRAME_INIT(&m, thr_meet_run);
    m.threads = 3;
    thr_meet_want = 3;
    ASSERT_EQ(async_run(loop, &m.task), 0);
    ASSERT_EQ(m.calls[0].result, 3); /* each saw all three arrive */
    ASSERT_EQ(m.calls[1].result, 3);
    ASSERT_EQ(m.calls[2].result, 3);
    async_loop_free(loop);
}

TEST(thread_pool_size_limits_concurrency) {
    async_loop *loop = thr_virtual_loop();
    static thr_meet_frame m;
    ASYNC_FRAME_INIT(&m, thr_meet_run);
    m.threads = 2; /* the third call cannot start while two wait: they time out */
    thr_meet_want = 3;
    thr_meet_ms = 100;
    ASSERT_EQ(async_run(loop, &m.task), ASYNC_ETIMEDOUT);
    async_loop_free(loop);
}

TEST(thread_pool_size_from_the_environment) {
    async_loop *loop;
    static thr_meet_frame m;
    static thr_call_frame more[2];
    setenv("ASYNC_THREADS", "5", 1);
    loop = thr_virtual_loop();
    ASYNC_FRAME_INIT(&m, thr_meet_run);
    thr_meet_want = 5; /* more than the default 4 */
    m.threads = 0;
    async_spawn(loop, thr_call(&more[0], thr_meet, 0, NULL));
    async_spawn(loop, thr_call(&more[1], thr_meet, 0, NULL));
    ASSERT_EQ(async_run(loop, &m.task), 0);
    async_loop_free(loop);
    unsetenv("ASYNC_THREADS");
}

/* ---- many in flight ---- */

enum { THR_MANY = 1000 };

typedef struct {
    async_task task;
    thr_call_frame calls[THR_MANY];
    async_group all;
    long long sum;
} thr_many_frame;

static async_status thr_many_run(async_task *t) {
    thr_many_frame *f = (thr_many_frame *)t;
    int i;
    ASYNC_BEGIN(t);
    for (i = 0; i < THR_MANY; i++) thr_call(&f->calls[i], thr_identity, i, NULL);
    AWAIT_GATHER_ARRAY(t, &f->all, &f->calls[0].task, THR_MANY, sizeof f->calls[0]);
    for (i = 0; i < THR_MANY; i++) {
        ASSERT_EQ(f->calls[i].result, i);
        f->sum += f->calls[i].result;
    }
    ASYNC_END(t);
}

TEST(thread_a_thousand_calls_in_flight) {
    async_loop *loop = thr_virtual_loop();
    static thr_many_frame m;
    ASYNC_FRAME_INIT(&m, thr_many_run);
    ASSERT_EQ(async_run(loop, &m.task), 0);
    ASSERT_EQ(m.sum, (long long)THR_MANY * (THR_MANY - 1) / 2);
    ASSERT_EQ(async_loop_jobs(loop), 0);
    async_loop_free(loop);
}

TEST(thread_calls_on_a_real_clock_loop) {
    async_loop *loop = async_loop_new(0);
    static thr_many_frame m;
    ASSERT(loop != NULL);
    ASYNC_FRAME_INIT(&m, thr_many_run);
    ASSERT_EQ(async_run(loop, &m.task), 0);
    ASSERT_EQ(m.sum, (long long)THR_MANY * (THR_MANY - 1) / 2);
    async_loop_free(loop);
}

/* ---- errors ---- */

typedef struct {
    async_task task;
    thr_call_frame io, user, unknown, bad;
    async_group all;
} thr_errors_frame;

static async_status thr_errors_run(async_task *t) {
    thr_errors_frame *f = (thr_errors_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT_GATHER_SETTLED(t, &f->all, thr_call(&f->io, thr_fail, ASYNC_EIO, NULL),
                         thr_call(&f->user, thr_fail, ASYNC_EUSER + 5, NULL),
                         thr_call(&f->unknown, thr_fail, -200, NULL), thr_call(&f->bad, NULL, 0, NULL));
    ASYNC_END(t);
}

TEST(thread_errors_of_the_function_are_raised_at_the_await) {
    static thr_errors_frame m;
    thr_call_frame *io = &m.io, *user = &m.user, *unknown = &m.unknown;
    async_loop *loop = thr_virtual_loop();
    ASYNC_FRAME_INIT(&m, thr_errors_run);
    ASSERT_EQ(async_run(loop, &m.task), 0);
    ASSERT_EQ(async_task_code(&m.bad.task), ASYNC_EINVAL); /* a NULL function */
    ASSERT_EQ(io->code, ASYNC_EIO);
    ASSERT_STR_EQ(io->message, "input/output error");
    ASSERT_EQ(io->result, 0);
    ASSERT_EQ(async_task_code(&io->task), ASYNC_EIO);
    ASSERT_EQ(user->code, ASYNC_EUSER + 5);
    ASSERT_STR_EQ(user->message, "error raised by a thread function");
    ASSERT_EQ(async_task_code(&user->task), ASYNC_EUSER + 5);
    ASSERT_EQ(unknown->code, -200);
    ASSERT_EQ(async_task_code(&unknown->task), -200);
    ASSERT_EQ(async_thread_result(&io->call), 0);
    ASSERT_EQ(async_thread_result(NULL), 0);
    async_loop_free(loop);
}

TEST(thread_portable_loop_is_not_supported) {
    static async_loop plain;
    static thr_call_frame c;
    async_loop_init(&plain);
    ASSERT_EQ(async_run(&plain, thr_call(&c, thr_identity, 1, NULL)), ASYNC_ENOTSUP);
    ASSERT_EQ(async_loop_set_threads(&plain, 2), ASYNC_EINVAL);
    ASSERT_EQ(async_loop_set_pool(&plain, NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_loop_jobs(&plain), 0);
}

TEST(thread_pool_api_rejects_bad_input) {
    async_loop *loop = thr_virtual_loop();
    ASSERT(async_pool_new(0) == NULL);
    ASSERT(async_pool_new(ASYNC_POOL_MAX_THREADS + 1) == NULL);
    ASSERT_EQ(async_pool_free(NULL), 0);
    ASSERT_EQ(async_loop_set_threads(loop, 0), ASYNC_EINVAL);
    ASSERT_EQ(async_loop_set_threads(loop, ASYNC_POOL_MAX_THREADS + 1), ASYNC_EINVAL);
    ASSERT_EQ(async_loop_set_threads(NULL, 2), ASYNC_EINVAL);
    ASSERT_EQ(async_loop_set_pool(NULL, NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_loop_jobs(NULL), 0);
    ASSERT_EQ(async_loop_set_threads(loop, 2), 0);
    async_loop_free(loop);
}

/* A loop allocator that allows `thr_alloc_budget` allocations, then fails (size 0 frees). */
static int thr_alloc_budget;
static void *thr_budget_realloc(void *ctx, void *p, size_t n) {
    (void)ctx;
    if (n == 0) {
        free(p);
        return NULL;
    }
    if (!p && thr_alloc_budget-- <= 0) return NULL;
    return realloc(p, n);
}

TEST(thread_allocation_failure_is_enomem_at_the_await) {
    static thr_call_frame c;
    async_loop *loop = thr_virtual_loop();
    async_loop_set_allocator(loop, thr_budget_realloc, NULL);
    thr_alloc_budget = 0; /* the loop's thread state cannot be made */
    ASSERT_EQ(async_run(loop, thr_call(&c, thr_identity, 1, NULL)), ASYNC_ENOMEM);
    ASSERT_EQ(c.code, ASYNC_ENOMEM);
    thr_alloc_budget = 1; /* the state, but not the call's record */
    ASSERT_EQ(async_run(loop, thr_call(&c, thr_identity, 1, NULL)), ASYNC_ENOMEM);
    thr_alloc_budget = 1; /* the call's record: it works again */
    ASSERT_EQ(async_run(loop, thr_call(&c, thr_identity, 5, NULL)), 0);
    ASSERT_EQ(c.result, 5);
    async_loop_free(loop);
}

/* ---- cancellation, timeouts, loops freed with calls in flight ---- */

typedef struct {
    async_task task;
    thr_call_frame w;
    async_group g;
    async_timeout tmo;
    int code;
} thr_cancel_frame;

static async_status thr_cancel_run(async_task *t) {
    thr_cancel_frame *f = (thr_cancel_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_SPAWN(t, &f->g, thr_call(&f->w, thr_gated, 1, thr_free_dtor));
    while (thr_gate_count(&thr_gate.started) < 1) ASYNC_YIELD(t); /* the call runs on a pool thread */
    ASSERT_EQ(async_loop_jobs(async_task_loop(t)), 1);
    ASSERT_EQ(async_loop_set_threads(async_task_loop(t), 2), ASYNC_EBUSY);
    ASSERT_EQ(async_loop_set_pool(async_task_loop(t), NULL), ASYNC_EBUSY);
    ASSERT(async_cancel(&f->w.task));
    AWAIT_GROUP(t, &f->g); /* a child that ended cancelled is no error of the group */
    ASSERT_EQ(f->w.code, ASYNC_ECANCELED);
    ASSERT(async_task_cancelled(&f->w.task));
    ASSERT_EQ(thr_dtor_calls, 0);          /* the call still runs: nothing to free yet */
    ASSERT_EQ(thr_gate_count(&thr_gate.finished), 0); /* and it was not stopped */
    thr_gate_open();
    while (async_loop_jobs(async_task_loop(t)) > 0) ASYNC_YIELD(t);
    ASSERT_EQ(thr_gate_count(&thr_gate.finished), 1);
    ASSERT_EQ(thr_dtor_calls, 1); /* the result no one awaits went to the dtor */
    ASYNC_END(t);
}

TEST(thread_cancelled_awaiter_leaves_the_thread_running_and_the_dtor_frees) {
    async_loop *loop = thr_virtual_loop();
    static thr_cancel_frame m;
    ASYNC_FRAME_INIT(&m, thr_cancel_run);
    ASSERT_EQ(async_run(loop, &m.task), 0);
    ASSERT_EQ(thr_dtor_calls, 1);
    async_loop_free(loop);
    ASSERT_EQ(thr_dtor_calls, 1); /* exactly once */
}

/* Cancelled after the call finished, before the awaiter ran: the result is discarded at once. */
typedef struct {
    async_task task;
    thr_call_frame w;
    async_group g;
} thr_late_frame;

static async_status thr_late_run(async_task *t) {
    thr_late_frame *f = (thr_late_frame *)t;
    ASYNC_BEGIN(t);
    thr_gate_open();
    ASYNC_SPAWN(t, &f->g, thr_call(&f->w, thr_gated, 2, thr_free_dtor));
    while (async_loop_jobs(async_task_loop(t)) == 0) ASYNC_YIELD(t); /* started */
    while (async_loop_jobs(async_task_loop(t)) > 0) ASYNC_YIELD(t);  /* back: w is woken, not run */
    ASSERT(!async_task_done(&f->w.task));
    async_cancel(&f->w.task);
    AWAIT_GROUP(t, &f->g);
    ASSERT(async_task_cancelled(&f->w.task));
    ASSERT_EQ(thr_dtor_calls, 1);
    ASYNC_END(t);
}

TEST(thread_cancel_after_completion_discards_the_result) {
    async_loop *loop = thr_virtual_loop();
    static thr_late_frame m;
    ASYNC_FRAME_INIT(&m, thr_late_run);
    ASSERT_EQ(async_run(loop, &m.task), 0);
    async_loop_free(loop);
    ASSERT_EQ(thr_dtor_calls, 1);
}

static async_status thr_timeout_run(async_task *t) {
    thr_cancel_frame *f = (thr_cancel_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_TRY(t) {
        AWAIT_TIMEOUT(t, &f->tmo, 10, thr_call(&f->w, thr_gated, 3, thr_free_dtor));
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
    ASSERT_EQ(thr_gate_count(&thr_gate.finished), 0);
    thr_gate_open();
    while (async_loop_jobs(async_task_loop(t)) > 0) ASYNC_YIELD(t);
    ASYNC_END(t);
}

/* The timeout needs time to pass while the call runs: a real-clock loop, 10 ms. */
TEST(thread_timeout_of_the_awaiter_discards_the_result) {
    async_loop *loop = async_loop_new(0);
    static thr_cancel_frame m;
    ASSERT(loop != NULL);
    thr_reset();
    ASYNC_FRAME_INIT(&m, thr_timeout_run);
    ASSERT_EQ(async_run(loop, &m.task), 0);
    ASSERT_EQ(m.code, ASYNC_ETIMEDOUT);
    ASSERT_EQ(m.w.code, ASYNC_ECANCELED);
    ASSERT_EQ(thr_gate_count(&thr_gate.finished), 1);
    ASSERT_EQ(thr_dtor_calls, 1);
    async_loop_free(loop);
    ASSERT_EQ(thr_dtor_calls, 1);
}

/* On the virtual clock the loop waits for the call before time jumps: a 1 s timeout does not fire. */
typedef struct {
    async_task task;
    thr_call_frame w;
    async_timeout tmo;
} thr_vtimeout_frame;

static int thr_sleep_20ms(void *arg, intptr_t *result) {
    struct timespec ts = {0, 20000000L};
    nanosleep(&ts, NULL);
    *result = (intptr_t)arg;
    return 0;
}

static async_status thr_vtimeout_run(async_task *t) {
    thr_vtimeout_frame *f = (thr_vtimeout_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT_TIMEOUT(t, &f->tmo, 1000, thr_call(&f->w, thr_sleep_20ms, 9, NULL));
    ASYNC_END(t);
}

TEST(thread_virtual_clock_waits_for_calls_instead_of_jumping) {
    async_loop *loop = thr_virtual_loop();
    static thr_vtimeout_frame m;
    async_ms start = async_loop_now(loop);
    ASYNC_FRAME_INIT(&m, thr_vtimeout_run);
    ASSERT_EQ(async_run(loop, &m.task), 0);
    ASSERT_EQ(m.w.result, 9);
    ASSERT_EQ(async_loop_now(loop) - start, 0);
    async_loop_free(loop);
}

/* A main that waits for nothing that could ever come is still a deadlock, with or without a pool. */
typedef struct {
    async_task task;
    thr_call_frame c;
    async_future never;
} thr_deadlock_frame;

static async_status thr_deadlock_run(async_task *t) {
    thr_deadlock_frame *f = (thr_deadlock_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT(t, thr_call(&f->c, thr_identity, 4, NULL));
    AWAIT_FUTURE(t, &f->never);
    ASYNC_END(t);
}

static void thr_quiet(async_loop *loop, async_task *task, const async_error *error, void *ctx) {
    (void)loop;
    (void)task;
    (void)error;
    (void)ctx;
}

TEST(thread_deadlock_is_still_detected_after_calls) {
    async_loop *loop = thr_virtual_loop();
    static thr_deadlock_frame m;
    async_loop_set_error_handler(loop, thr_quiet, NULL); /* main's cancellation is expected */
    ASYNC_FRAME_INIT(&m, thr_deadlock_run);
    ASSERT_EQ(async_run(loop, &m.task), ASYNC_EDEADLK);
    ASSERT_EQ(m.c.result, 4);
    async_loop_free(loop);
}

/* Starts three gated calls on tasks of the loop, and returns once they all run. */
typedef struct {
    async_task task;
} thr_starter_frame;

static async_status thr_starter_run(async_task *t) {
    ASYNC_BEGIN(t);
    while (thr_gate_count(&thr_gate.started) < 3) ASYNC_YIELD(t);
    ASYNC_END(t);
}

static void *thr_open_later(void *arg) {
    struct timespec ts = {0, 20000000L};
    (void)arg;
    nanosleep(&ts, NULL);
    thr_gate_open();
    return NULL;
}

TEST(thread_loop_free_waits_for_calls_in_flight) {
    async_loop *loop = thr_virtual_loop();
    static thr_call_frame c[3];
    static thr_starter_frame s;
    pthread_t opener;
    int i;
    for (i = 0; i < 3; i++) async_spawn(loop, thr_call(&c[i], thr_gated, i, thr_free_dtor));
    ASYNC_FRAME_INIT(&s, thr_starter_run);
    ASSERT_EQ(async_run(loop, &s.task), 0);
    ASSERT_EQ(async_loop_jobs(loop), 3);
    ASSERT_EQ(pthread_create(&opener, NULL, thr_open_later, NULL), 0);
    async_loop_free(loop); /* blocks until the calls return, then gives their results to the dtor */
    ASSERT_EQ(thr_gate_count(&thr_gate.finished), 3);
    ASSERT_EQ(thr_dtor_calls, 3);
    pthread_join(opener, NULL);
}

TEST(thread_loop_free_discards_results_never_delivered) {
    async_loop *loop = thr_virtual_loop();
    static thr_call_frame c[3];
    static thr_starter_frame s;
    int i;
    for (i = 0; i < 3; i++) async_spawn(loop, thr_call(&c[i], thr_gated, i, thr_free_dtor));
    ASYNC_FRAME_INIT(&s, thr_starter_run);
    ASSERT_EQ(async_run(loop, &s.task), 0);
    thr_gate_open();
    while (thr_gate_count(&thr_gate.finished) < 3) {
        struct timespec ts = {0, 1000000L};
        nanosleep(&ts, NULL);
    }
    async_loop_free(loop); /* the awaiters never run again: the results go to the dtor */
    ASSERT_EQ(thr_dtor_calls, 3);
}

/* ---- pools shared by loops ---- */

typedef struct {
    async_pool *pool;
    long long sum;
    int rc;
} thr_loop_job;

static void *thr_run_loop(void *arg) {
    thr_loop_job *job = (thr_loop_job *)arg;
    async_loop *loop = async_loop_new(ASYNC_LOOP_VIRTUAL_CLOCK);
    thr_many_frame *m = calloc(1, sizeof *m);
    if (!loop || !m) return NULL;
    job->rc = async_loop_set_pool(loop, job->pool);
    if (!job->rc) {
        ASYNC_FRAME_INIT(m, thr_many_run);
        job->rc = async_run(loop, &m->task);
        job->sum = m->sum;
    }
    async_loop_free(loop);
    free(m);
    return NULL;
}

TEST(thread_two_loops_on_two_threads_share_one_pool) {
    async_pool *pool = async_pool_new(2);
    async_loop *idle = thr_virtual_loop();
    thr_loop_job a = {0, 0, -1}, b = {0, 0, -1};
    pthread_t ta, tb;
    ASSERT(pool != NULL);
    a.pool = b.pool = pool;
    ASSERT_EQ(async_loop_set_pool(idle, pool), 0);
    ASSERT_EQ(async_pool_free(pool), ASYNC_EBUSY); /* a loop still uses it */
    ASSERT_EQ(pthread_create(&ta, NULL, thr_run_loop, &a), 0);
    ASSERT_EQ(pthread_create(&tb, NULL, thr_run_loop, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    ASSERT_EQ(a.rc, 0);
    ASSERT_EQ(b.rc, 0);
    ASSERT_EQ(a.sum, (long long)THR_MANY * (THR_MANY - 1) / 2);
    ASSERT_EQ(b.sum, a.sum);
    ASSERT_EQ(async_loop_set_pool(idle, NULL), 0); /* back to a pool of its own */
    ASSERT_EQ(async_pool_free(pool), 0);
    async_loop_free(idle);
}

/* ---- a loop attached to the application's ev_loop ---- */

TEST(thread_calls_in_an_attached_loop) {
    struct ev_loop *ev = ev_loop_new(EVFLAG_AUTO);
    async_loop *loop = async_loop_attach(ev);
    static thr_three_frame m;
    ASSERT(loop != NULL);
    thr_reset();
    ASYNC_FRAME_INIT(&m, thr_three_run);
    ASSERT_EQ(async_spawn(loop, &m.task), 0);
    ev_run(ev, 0); /* returns once the calls are back and the tasks done: nothing keeps it alive */
    ASSERT(async_task_done(&m.task));
    ASSERT_EQ(m.a.result + m.b.result + m.c.result, 6);
    async_loop_free(loop);
    ev_loop_destroy(ev);
}

/* ---- files ---- */

static char thr_dir[64];

/* Removes the test's directory; also at exit, so that a failing test leaves nothing behind. */
static void thr_rmdir(void) {
    char cmd[128];
    if (!thr_dir[0]) return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", thr_dir);
    thr_dir[0] = '\0';
    if (system(cmd) != 0) fprintf(stderr, "    could not remove %s\n", cmd + 7);
}

/* A path in a fresh directory of the test's own under /tmp. */
static const char *thr_path(const char *name) {
    static char path[2][128];
    static int k;
    k ^= 1;
    if (!thr_dir[0]) {
        strcpy(thr_dir, "/tmp/async-test-thread-XXXXXX");
        ASSERT(mkdtemp(thr_dir) != NULL);
        atexit(thr_rmdir);
    }
    snprintf(path[k], sizeof path[k], "%s/%s", thr_dir, name);
    return path[k];
}

/* A file coroutine: one step per field, each catching its error into codes[]. */
typedef struct {
    async_task task;
    const char *path;
    async_thread_call call;
    async_file *file;
    char *data;
    size_t len, n;
    char buf[64];
    char all[256];
    int code;
} thr_file_frame;

static async_status thr_write_read_run(async_task *t) {
    thr_file_frame *f = (thr_file_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT_FILE_WRITE_ALL(t, &f->call, f->path, "Hello, Async World!", 19, 0600);
    ASSERT_EQ(async_thread_result(&f->call), 19);
    AWAIT_FILE_READ_ALL(t, &f->call, f->path, &f->data, &f->len);
    ASSERT_EQ(f->len, 19);
    ASSERT_STR_EQ(f->data, "Hello, Async World!");
    free(f->data);
    f->data = NULL;
    AWAIT_FILE_WRITE_ALL(t, &f->call, f->path, NULL, 0, 0600); /* truncates */
    AWAIT_FILE_READ_ALL(t, &f->call, f->path, &f->data, &f->len);
    ASSERT_EQ(f->len, 0);
    ASSERT_STR_EQ(f->data, "");
    free(f->data);
    ASYNC_END(t);
}

TEST(thread_file_write_all_then_read_all) {
    async_loop *loop = thr_virtual_loop();
    static thr_file_frame m;
    struct stat st;
    ASYNC_FRAME_INIT(&m, thr_write_read_run);
    m.path = thr_path("hello.txt");
    ASSERT_EQ(async_run(loop, &m.task), 0);
    ASSERT_EQ(stat(m.path, &st), 0);
    ASSERT_EQ(st.st_mode & 0177, 0); /* created with 0600 (the umask may only remove bits) */
    async_loop_free(loop);
    thr_rmdir();
}

/* A read_all of a file bigger than any first guess (a /proc file says size 0) still gets everything. */
static async_status thr_read_proc_run(async_task *t) {
    thr_file_frame *f = (thr_file_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT_FILE_READ_ALL(t, &f->call, "/proc/self/maps", &f->data, &f->len);
    ASSERT(f->len > 0);
    ASSERT_EQ(strlen(f->data), f->len);
    free(f->data);
    ASYNC_END(t);
}

TEST(thread_file_read_all_of_a_file_of_unknown_size) {
    async_loop *loop = thr_virtual_loop();
    static thr_file_frame m;
    ASYNC_FRAME_INIT(&m, thr_read_proc_run);
    ASSERT_EQ(async_run(loop, &m.task), 0);
    async_loop_free(loop);
}

static async_status thr_chunks_run(async_task *t) {
    thr_file_frame *f = (thr_file_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT_FILE_OPEN(t, &f->call, &f->file, f->path, "w");
    AWAIT_FILE_WRITE(t, &f->call, f->file, "one ", 4);
    AWAIT_FILE_WRITE(t, &f->call, f->file, "two ", 4);
    AWAIT_FILE_CLOSE(t, &f->call, f->file);
    AWAIT_FILE_OPEN(t, &f->call, &f->file, f->path, "a");
    AWAIT_FILE_WRITE(t, &f->call, f->file, "three", 5);
    AWAIT_FILE_CLOSE(t, &f->call, f->file);
    /* read back in chunks of 3 bytes until the end */
    AWAIT_FILE_OPEN(t, &f->call, &f->file, f->path, "rb");
    f->len = 0;
    do {
        AWAIT_FILE_READ(t, &f->call, f->file, f->buf, 3, &f->n);
        ASSERT(f->n <= 3);
        memcpy(f->all + f->len, f->buf, f->n);
        f->len += f->n;
    } while (f->n > 0);
    f->all[f->len] = '\0';
    ASSERT_STR_EQ(f->all, "one two three");
    AWAIT_FILE_READ(t, &f->call, f->file, f->buf, 0, &f->n); /* zero bytes asked, zero read */
    ASSERT_EQ(f->n, 0);
    AWAIT_FILE_CLOSE(t, &f->call, f->file);
    /* "x" refuses an existing file, "r+" reads and writes */
    ASYNC_TRY(t) {
        AWAIT_FILE_OPEN(t, &f->call, &f->file, f->path, "wx");
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
    ASSERT_EQ(f->code, ASYNC_EEXIST);
    AWAIT_FILE_OPEN(t, &f->call, &f->file, f->path, "r+");
    AWAIT_FILE_WRITE(t, &f->call, f->file, "ONE", 3);
    AWAIT_FILE_READ(t, &f->call, f->file, f->buf, sizeof f->buf, &f->n);
    ASSERT_EQ(f->n, 10);
    ASSERT(memcmp(f->buf, " two three", 10) == 0);
    AWAIT_FILE_CLOSE(t, &f->call, f->file);
    ASYNC_END(t);
}

TEST(thread_file_chunked_reads_and_writes) {
    async_loop *loop = thr_virtual_loop();
    static thr_file_frame m;
    ASYNC_FRAME_INIT(&m, thr_chunks_run);
    m.path = thr_path("chunks.txt");
    ASSERT_EQ(async_run(loop, &m.task), 0);
    async_loop_free(loop);
    thr_rmdir();
}

/* One failing file call: which one is `op`; the code it raised goes to f->code. */
enum { THR_READ_ALL, THR_WRITE_ALL, THR_OPEN_R, THR_OPEN_W, THR_OPEN_BAD, THR_WRITE_CHUNK, THR_NULLS };

typedef struct {
    async_task task;
    int op;
    const char *path, *how;
    async_thread_call call;
    async_file *file;
    char *data;
    size_t len;
    int code;
} thr_fail_frame;

static async_status thr_file_fail_run(async_task *t) {
    thr_fail_frame *f = (thr_fail_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_TRY(t) {
        if (f->op == THR_READ_ALL) {
            AWAIT_FILE_READ_ALL(t, &f->call, f->path, &f->data, &f->len);
            free(f->data); /* not reached when it fails */
        } else if (f->op == THR_WRITE_ALL) {
            AWAIT_FILE_WRITE_ALL(t, &f->call, f->path, "x", 1, 0644);
        } else if (f->op == THR_OPEN_R || f->op == THR_OPEN_W || f->op == THR_OPEN_BAD) {
            AWAIT_FILE_OPEN(t, &f->call, &f->file, f->path, f->how);
            AWAIT_FILE_CLOSE(t, &f->call, f->file); /* not reached when it fails */
        } else if (f->op == THR_WRITE_CHUNK) {
            AWAIT_FILE_OPEN(t, &f->call, &f->file, f->path, "w");
            ASYNC_TRY(t) {
                AWAIT_FILE_WRITE(t, &f->call, f->file, "hello", 5);
            }
            ASYNC_FINALLY(t) {
                AWAIT_FILE_CLOSE(t, &f->call, f->file);
            }
            ASYNC_END_TRY(t);
        } else {
            AWAIT_FILE_CLOSE(t, &f->call, NULL);
        }
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
    ASYNC_END(t);
}

static int thr_file_fails(int op, const char *path, const char *how) {
    async_loop *loop = thr_virtual_loop();
    static thr_fail_frame m;
    ASSERT(ASYNC_FRAME_INIT(&m, thr_file_fail_run));
    m.op = op;
    m.path = path;
    m.how = how;
    ASSERT_EQ(async_run(loop, &m.task), 0);
    async_loop_free(loop);
    return m.code;
}

TEST(thread_file_missing_is_enoent) {
    ASSERT_EQ(thr_file_fails(THR_READ_ALL, thr_path("missing"), NULL), ASYNC_ENOENT);
    ASSERT_EQ(thr_file_fails(THR_OPEN_R, thr_path("missing"), "r"), ASYNC_ENOENT);
    ASSERT_EQ(thr_file_fails(THR_WRITE_ALL, thr_path("no/such/dir"), NULL), ASYNC_ENOENT);
    thr_rmdir();
}

/* As root, mode 000 denies nothing: this test's own process becomes nobody first (each test runs in a
 * process of its own), before it makes its files and threads. */
TEST(thread_file_directories_and_permissions) {
    const char *locked;
    int fd, dropped = geteuid() != 0 || (setgid(65534) == 0 && setuid(65534) == 0);
    if (!dropped) fprintf(stderr, "    root could not become nobody: EACCES is not checked\n");
    locked = thr_path("locked");
    fd = open(locked, O_WRONLY | O_CREAT, 0600);
    ASSERT(fd >= 0);
    close(fd);
    ASSERT_EQ(chmod(locked, 0), 0);
    ASSERT_EQ(thr_file_fails(THR_OPEN_W, thr_dir, "w"), ASYNC_EISDIR);
    ASSERT_EQ(thr_file_fails(THR_WRITE_ALL, thr_dir, NULL), ASYNC_EISDIR);
    ASSERT_EQ(thr_file_fails(THR_READ_ALL, thr_dir, NULL), ASYNC_EISDIR);
    ASSERT_EQ(thr_file_fails(THR_READ_ALL, "/dev/null/x", NULL), ASYNC_ENOTDIR);
    if (dropped) {
        ASSERT_EQ(thr_file_fails(THR_READ_ALL, locked, NULL), ASYNC_EACCES);
        ASSERT_EQ(thr_file_fails(THR_OPEN_W, locked, "w"), ASYNC_EACCES);
        ASSERT_EQ(thr_file_fails(THR_WRITE_ALL, locked, NULL), ASYNC_EACCES);
    }
    thr_rmdir();
}

TEST(thread_file_full_disk_is_enospc) {
    ASSERT_EQ(thr_file_fails(THR_WRITE_ALL, "/dev/full", NULL), ASYNC_ENOSPC);
    ASSERT_EQ(thr_file_fails(THR_WRITE_CHUNK, "/dev/full", NULL), ASYNC_ENOSPC);
}

TEST(thread_file_bad_arguments_are_einval) {
    ASSERT_EQ(thr_file_fails(THR_READ_ALL, NULL, NULL), ASYNC_EINVAL);
    ASSERT_EQ(thr_file_fails(THR_WRITE_ALL, NULL, NULL), ASYNC_EINVAL);
    ASSERT_EQ(thr_file_fails(THR_OPEN_BAD, thr_path("f"), "q"), ASYNC_EINVAL);
    ASSERT_EQ(thr_file_fails(THR_OPEN_BAD, thr_path("f"), "rx"), ASYNC_EINVAL);
    ASSERT_EQ(thr_file_fails(THR_OPEN_BAD, thr_path("f"), "w++"), ASYNC_EINVAL);
    ASSERT_EQ(thr_file_fails(THR_OPEN_BAD, thr_path("f"), NULL), ASYNC_EINVAL);
    ASSERT_EQ(thr_file_fails(THR_NULLS, NULL, NULL), ASYNC_EINVAL);
    thr_rmdir();
}

/* A read blocked on a FIFO: cancelled, then the file closed while the read still runs (the close waits
 * for it, and calls on the closing file fail with EBADF), then data arrives and everything ends. */
typedef struct {
    async_task task;
    async_file *file;
    async_thread_call call;
    char buf[8];
    size_t n;
    int code;
} thr_reader_frame;

static async_status thr_reader_run(async_task *t) {
    thr_reader_frame *f = (thr_reader_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT_FILE_READ(t, &f->call, f->file, f->buf, sizeof f->buf, &f->n);
    ASYNC_END(t);
}

typedef struct {
    async_task task;
    const char *path;
    async_thread_call call, call2;
    async_file *file;
    thr_reader_frame reader;
    thr_fail_frame closer;
    async_group g;
    int wfd, code;
} thr_fifo_frame;

static async_status thr_closer_run(async_task *t) {
    thr_fail_frame *f = (thr_fail_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT_FILE_CLOSE(t, &f->call, f->file);
    ASYNC_END(t);
}

static async_status thr_fifo_run(async_task *t) {
    thr_fifo_frame *f = (thr_fifo_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT_FILE_OPEN(t, &f->call, &f->file, f->path, "r+"); /* O_RDWR: a FIFO opens without a writer */
    ASYNC_FRAME_INIT(&f->reader, thr_reader_run);
    f->reader.file = f->file;
    ASYNC_SPAWN(t, &f->g, &f->reader.task);
    while (async_loop_jobs(async_task_loop(t)) == 0) ASYNC_YIELD(t);
    async_cancel(&f->reader.task); /* its read is blocked in a pool thread */
    ASYNC_FRAME_INIT(&f->closer, thr_closer_run);
    f->closer.file = f->file;
    ASYNC_SPAWN(t, &f->g, &f->closer.task);
    ASYNC_YIELD(t);
    ASYNC_YIELD(t); /* the closer has started its close, parked behind the read */
    ASSERT(!async_task_done(&f->closer.task));
    ASYNC_TRY(t) {
        AWAIT_FILE_WRITE(t, &f->call2, f->file, "no", 2);
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
    ASSERT_EQ(f->code, ASYNC_EBADF);
    ASSERT_EQ(write(f->wfd, "data", 4), 4); /* the blocked read returns; then the close runs */
    AWAIT_GROUP(t, &f->g);
    ASSERT(async_task_cancelled(&f->reader.task));
    ASSERT_EQ(async_task_code(&f->closer.task), 0);
    ASSERT_EQ(async_loop_jobs(async_task_loop(t)), 0);
    ASYNC_END(t);
}

TEST(thread_file_close_waits_for_a_cancelled_read) {
    async_loop *loop = thr_virtual_loop();
    static thr_fifo_frame m;
    const char *fifo = thr_path("fifo");
    ASSERT_EQ(mkfifo(fifo, 0600), 0);
    ASYNC_FRAME_INIT(&m, thr_fifo_run);
    m.path = fifo;
    m.wfd = open(fifo, O_RDWR | O_NONBLOCK);
    ASSERT(m.wfd >= 0);
    ASSERT_EQ(async_run(loop, &m.task), 0);
    close(m.wfd);
    async_loop_free(loop);
    thr_rmdir();
}

/* A read_all cancelled while it blocks in open() on a FIFO: its buffer is freed when it comes back. */
typedef struct {
    async_task task;
    const char *path;
    thr_fail_frame reader;
    async_group g;
} thr_fifo_all_frame;

static void *thr_feed_fifo(void *arg) {
    int fd = open((const char *)arg, O_WRONLY); /* blocks until the reader has opened */
    if (fd >= 0) {
        if (write(fd, "fifo data", 9) != 9) perror("write");
        close(fd);
    }
    return NULL;
}

static async_status thr_fifo_all_run(async_task *t) {
    thr_fifo_all_frame *f = (thr_fifo_all_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_FRAME_INIT(&f->reader, thr_file_fail_run);
    f->reader.op = THR_READ_ALL;
    f->reader.path = f->path;
    ASYNC_SPAWN(t, &f->g, &f->reader.task);
    while (async_loop_jobs(async_task_loop(t)) == 0) ASYNC_YIELD(t);
    async_cancel(&f->reader.task);
    AWAIT_GROUP(t, &f->g);
    ASSERT_EQ(f->reader.code, ASYNC_ECANCELED);
    ASYNC_END(t);
}

TEST(thread_file_cancelled_read_all_frees_its_buffer) {
    async_loop *loop = thr_virtual_loop();
    static thr_fifo_all_frame m;
    pthread_t feeder;
    const char *fifo = thr_path("fifo2");
    ASSERT_EQ(mkfifo(fifo, 0600), 0);
    ASYNC_FRAME_INIT(&m, thr_fifo_all_run);
    m.path = fifo;
    ASSERT_EQ(async_run(loop, &m.task), 0);
    ASSERT_EQ(pthread_create(&feeder, NULL, thr_feed_fifo, (void *)fifo), 0);
    async_loop_free(loop); /* waits for the read_all; its buffer goes (ASan and valgrind check) */
    pthread_join(feeder, NULL);
    thr_rmdir();
}

/* Files left open are closed when the loop is freed. */
static async_status thr_leave_open_run(async_task *t) {
    thr_file_frame *f = (thr_file_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT_FILE_OPEN(t, &f->call, &f->file, f->path, "w");
    AWAIT_FILE_OPEN(t, &f->call, &f->file, f->path, "r");
    ASYNC_END(t);
}

TEST(thread_file_loop_free_closes_files_left_open) {
    static thr_file_frame m;
    async_loop *loop = thr_virtual_loop();
    int before;
    ASYNC_FRAME_INIT(&m, thr_leave_open_run);
    m.path = thr_path("open.txt");
    ASSERT_EQ(async_run(loop, &m.task), 0); /* makes the loop's pool and its eventfd */
    before = test_count_fds();
    async_loop_free(loop);
    ASSERT(test_count_fds() <= before - 2);
    thr_rmdir();
}

/* ---- the samples ---- */

TEST(thread_sample_to_thread) {
    test_run_sample("to_thread", 0, "['Slept for 2 seconds', 'Slept for 1 seconds', 'Slept for 3 seconds']\n", 0);
}

TEST(thread_sample_file_io) {
    test_run_sample("file_io", 0, "File content: Hello, Async World!\n", 0);
}

static const test_case thread_tests[] = {
    TEST_ENTRY(thread_results_come_back_in_argument_order)
    TEST_ENTRY(thread_calls_run_concurrently_on_the_pool)
    TEST_ENTRY(thread_pool_size_limits_concurrency)
    TEST_ENTRY(thread_pool_size_from_the_environment)
    TEST_ENTRY(thread_a_thousand_calls_in_flight)
    TEST_ENTRY(thread_calls_on_a_real_clock_loop)
    TEST_ENTRY(thread_errors_of_the_function_are_raised_at_the_await)
    TEST_ENTRY(thread_portable_loop_is_not_supported)
    TEST_ENTRY(thread_pool_api_rejects_bad_input)
    TEST_ENTRY(thread_allocation_failure_is_enomem_at_the_await)
    TEST_ENTRY(thread_cancelled_awaiter_leaves_the_thread_running_and_the_dtor_frees)
    TEST_ENTRY(thread_cancel_after_completion_discards_the_result)
    TEST_ENTRY(thread_timeout_of_the_awaiter_discards_the_result)
    TEST_ENTRY(thread_virtual_clock_waits_for_calls_instead_of_jumping)
    TEST_ENTRY(thread_deadlock_is_still_detected_after_calls)
    TEST_ENTRY(thread_loop_free_waits_for_calls_in_flight)
    TEST_ENTRY(thread_loop_free_discards_results_never_delivered)
    TEST_ENTRY(thread_two_loops_on_two_threads_share_one_pool)
    TEST_ENTRY(thread_calls_in_an_attached_loop)
    TEST_ENTRY(thread_file_write_all_then_read_all)
    TEST_ENTRY(thread_file_read_all_of_a_file_of_unknown_size)
    TEST_ENTRY(thread_file_chunked_reads_and_writes)
    TEST_ENTRY(thread_file_missing_is_enoent)
    TEST_ENTRY(thread_file_directories_and_permissions)
    TEST_ENTRY(thread_file_full_disk_is_enospc)
    TEST_ENTRY(thread_file_bad_arguments_are_einval)
    TEST_ENTRY(thread_file_close_waits_for_a_cancelled_read)
    TEST_ENTRY(thread_file_cancelled_read_all_frees_its_buffer)
    TEST_ENTRY(thread_file_loop_free_closes_files_left_open)
    TEST_ENTRY(thread_sample_to_thread)
    TEST_ENTRY(thread_sample_file_io)
    {NULL, NULL}
};
