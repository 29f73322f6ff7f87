/* to_thread and the thread pool: calls on the pool, their results and errors, cancellation and timeouts
 * of the awaiter (the thread runs on, the dtor gets the result exactly once), loops freed with calls in
 * flight, pools shared by loops on two threads, pools that cannot start their threads, resized or
 * switched, the call record (a cancellation pending at the start of each await of the pool, a NULL
 * record, one swapped during the await), the job records kept for reuse. Thread work takes no virtual
 * time, so these run on the virtual clock; where a call must still be running when something happens,
 * it waits at a gate that the test opens, never for a duration. The files, built on the pool, have a
 * file of their own (test_files.c). */
#include "test.h"
#include "util.h"

#include <ev.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

/* glibc's (GNU) default thread attributes; declared here because the tests are built as POSIX C */
int pthread_getattr_default_np(pthread_attr_t *attr);
int pthread_setattr_default_np(const pthread_attr_t *attr);

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

static long thr_meet_ms = TEST_LONG_MS;

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

static int thr_heap(void *arg, intptr_t *result) { /* a result that leaks unless someone frees it */
    char *p = malloc(8);
    if (!p) return ASYNC_ENOMEM;
    snprintf(p, 8, "r%d", (int)(intptr_t)arg);
    *result = (intptr_t)p;
    return 0;
}

static void thr_reset(void) {
    thr_gate.open = thr_gate.started = thr_gate.finished = 0;
    thr_dtor_calls = 0;
}

/* ---- a coroutine awaiting one call: records the result or the error it caught, and re-raises ---- */

ASYNC_DEF(thr_call, async_thread_fn fn; intptr_t arg; async_thread_dtor dtor; async_thread_call call; intptr_t result;
          int code; const char *message;) {
    ASYNC_TRY(t) {
        AWAIT_TO_THREAD(t, &f->call, f->fn, (void *)f->arg, f->dtor);
        f->result = async_thread_call_result(&f->call);
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
        f->message = async_error_message(async_caught(t));
        ASYNC_RERAISE(t);
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

static async_loop *thr_loop(void) {
    async_loop *loop = new_hosted_loop();
    thr_reset();
    return loop;
}

/* ---- results and ordering ---- */

ASYNC_DEF(thr_three, thr_call_frame a, b, c; async_group all;) {
    AWAIT_GATHER(t, &f->all, ASYNC_CALL(thr_call, &f->a, thr_identity, 2, NULL),
                 ASYNC_CALL(thr_call, &f->b, thr_identity, 1, NULL),
                 ASYNC_CALL(thr_call, &f->c, thr_identity, 3, NULL));
} ASYNC_END_DEF

TEST_TAGGED(thread_results_come_back_in_argument_order, TEST_THREADS) {
    async_loop *loop = thr_loop();
    static thr_three_frame m;
    async_ms start = async_loop_now(loop);
    ASSERT_EQ(async_run(loop, ASYNC_CALL(thr_three, &m)), 0);
    ASSERT_EQ(m.a.result, 2);
    ASSERT_EQ(m.b.result, 1);
    ASSERT_EQ(m.c.result, 3);
    ASSERT_EQ(async_loop_now(loop) - start, 0); /* thread work takes no virtual time */
    ASSERT_EQ(async_loop_jobs(loop), 0);
    async_loop_free(loop);
}

/* Three calls that only return once all three run at the same time: the pool runs them concurrently. */
ASYNC_DEF(thr_meet, unsigned threads; thr_call_frame calls[3]; async_group all;) {
    int i;
    if (f->threads) ASSERT_EQ(async_loop_set_threads(async_task_loop(t), f->threads), 0);
    for (i = 0; i < 3; i++) ASYNC_CALL(thr_call, &f->calls[i], thr_meet, 0, NULL);
    AWAIT_GATHER_ARRAY(t, &f->all, &f->calls[0].task, 3, sizeof f->calls[0]);
} ASYNC_END_DEF

TEST_TAGGED(thread_calls_run_concurrently_on_the_pool, TEST_THREADS) {
    async_loop *loop = thr_loop();
    static thr_meet_frame m;
    thr_meet_want = 3;
    ASSERT_EQ(async_run(loop, ASYNC_CALL(thr_meet, &m, 3)), 0);
    ASSERT_EQ(m.calls[0].result, 3); /* each saw all three arrive */
    ASSERT_EQ(m.calls[1].result, 3);
    ASSERT_EQ(m.calls[2].result, 3);
    async_loop_free(loop);
}

TEST_TAGGED(thread_pool_size_limits_concurrency, TEST_THREADS) {
    async_loop *loop = thr_loop();
    static thr_meet_frame m;
    thr_meet_want = 3;
    thr_meet_ms = 100;
    /* two threads: the third call cannot start while two wait: they time out */
    ASSERT_EQ(async_run(loop, ASYNC_CALL(thr_meet, &m, 2)), ASYNC_ETIMEDOUT);
    async_loop_free(loop);
}

TEST_TAGGED(thread_pool_size_from_the_environment, TEST_THREADS) {
    async_loop *loop;
    static thr_meet_frame m;
    static thr_call_frame more[2];
    setenv("ASYNC_THREADS", "5", 1);
    loop = thr_loop();
    thr_meet_want = 5; /* more than the default 4 */
    async_spawn(loop, ASYNC_CALL(thr_call, &more[0], thr_meet, 0, NULL));
    async_spawn(loop, ASYNC_CALL(thr_call, &more[1], thr_meet, 0, NULL));
    ASSERT_EQ(async_run(loop, ASYNC_CALL(thr_meet, &m, 0)), 0); /* 0: the size ASYNC_THREADS gives */
    async_loop_free(loop);
    unsetenv("ASYNC_THREADS");
}

enum { THR_MANY = 1000 };

ASYNC_DEF(thr_many, thr_call_frame calls[THR_MANY]; async_group all; long long sum;) {
    int i;
    for (i = 0; i < THR_MANY; i++) ASYNC_CALL(thr_call, &f->calls[i], thr_identity, i, NULL);
    AWAIT_GATHER_ARRAY(t, &f->all, &f->calls[0].task, THR_MANY, sizeof f->calls[0]);
    for (i = 0; i < THR_MANY; i++) {
        ASSERT_EQ(f->calls[i].result, i);
        f->sum += f->calls[i].result;
    }
} ASYNC_END_DEF

TEST_TAGGED(thread_a_thousand_calls_in_flight, TEST_THREADS) {
    async_loop *loop = thr_loop();
    static thr_many_frame m;
    ASSERT_EQ(async_run(loop, ASYNC_CALL(thr_many, &m)), 0);
    ASSERT_EQ(m.sum, (long long)THR_MANY * (THR_MANY - 1) / 2);
    ASSERT_EQ(async_loop_jobs(loop), 0);
    async_loop_free(loop);
}

TEST_TAGGED(thread_calls_on_a_real_clock_loop, TEST_THREADS) {
    async_loop *loop = async_loop_new(0);
    static thr_many_frame m;
    ASSERT(loop != NULL);
    ASSERT_EQ(async_run(loop, ASYNC_CALL(thr_many, &m)), 0);
    ASSERT_EQ(m.sum, (long long)THR_MANY * (THR_MANY - 1) / 2);
    async_loop_free(loop);
}

/* ---- errors ---- */

ASYNC_DEF(thr_errors, thr_call_frame io, user, unknown, bad; async_group all;) {
    AWAIT_GATHER_SETTLED(t, &f->all, ASYNC_CALL(thr_call, &f->io, thr_fail, ASYNC_EIO, NULL),
                         ASYNC_CALL(thr_call, &f->user, thr_fail, ASYNC_EUSER + 5, NULL),
                         ASYNC_CALL(thr_call, &f->unknown, thr_fail, -200, NULL),
                         ASYNC_CALL(thr_call, &f->bad, NULL, 0, NULL));
} ASYNC_END_DEF

TEST_TAGGED(thread_errors_of_the_function_are_raised_at_the_await, TEST_THREADS) {
    static thr_errors_frame m;
    thr_call_frame *io = &m.io, *user = &m.user, *unknown = &m.unknown;
    async_loop *loop = thr_loop();
    ASSERT_EQ(async_run(loop, ASYNC_CALL(thr_errors, &m)), 0);
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
    ASSERT_EQ(async_thread_call_result(&io->call), 0);
    ASSERT_EQ(async_thread_call_result(NULL), 0);
    async_loop_free(loop);
}

TEST_TAGGED(thread_portable_loop_is_not_supported, TEST_THREADS) {
    static async_loop plain;
    static thr_call_frame c;
    async_loop_init(&plain);
    ASSERT_EQ(async_run(&plain, ASYNC_CALL(thr_call, &c, thr_identity, 1, NULL)), ASYNC_ENOTSUP);
    ASSERT_EQ(async_loop_set_threads(&plain, 2), ASYNC_EINVAL);
    ASSERT_EQ(async_loop_set_thread_pool(&plain, NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_loop_jobs(&plain), 0);
}

TEST_TAGGED(thread_pool_api_rejects_bad_input, TEST_THREADS) {
    async_loop *loop = thr_loop();
    ASSERT(async_thread_pool_new(0) == NULL);
    ASSERT(async_thread_pool_new(ASYNC_THREAD_POOL_MAX + 1) == NULL);
    ASSERT_EQ(async_thread_pool_free(NULL), 0);
    ASSERT_EQ(async_loop_set_threads(loop, 0), ASYNC_EINVAL);
    ASSERT_EQ(async_loop_set_threads(loop, ASYNC_THREAD_POOL_MAX + 1), ASYNC_EINVAL);
    ASSERT_EQ(async_loop_set_threads(NULL, 2), ASYNC_EINVAL);
    ASSERT_EQ(async_loop_set_thread_pool(NULL, NULL), ASYNC_EINVAL);
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

TEST_TAGGED(thread_allocation_failure_is_enomem_at_the_await, TEST_THREADS) {
    static thr_call_frame c;
    async_loop *loop = thr_loop();
    async_loop_set_allocator(loop, thr_budget_realloc, NULL);
    thr_alloc_budget = 0; /* the loop's thread state cannot be made */
    ASSERT_EQ(async_run(loop, ASYNC_CALL(thr_call, &c, thr_identity, 1, NULL)), ASYNC_ENOMEM);
    ASSERT_EQ(c.code, ASYNC_ENOMEM);
    thr_alloc_budget = 1; /* the state, but not the call's record */
    ASSERT_EQ(async_run(loop, ASYNC_CALL(thr_call, &c, thr_identity, 1, NULL)), ASYNC_ENOMEM);
    thr_alloc_budget = 1; /* the call's record: it works again */
    ASSERT_EQ(async_run(loop, ASYNC_CALL(thr_call, &c, thr_identity, 5, NULL)), 0);
    ASSERT_EQ(c.result, 5);
    async_loop_free(loop);
}

/* A hosted loop whose allocator was taken away: job records and the loop's thread state come from
 * malloc, and go back to free. */
TEST_TAGGED(thread_loop_without_allocator_uses_malloc, TEST_THREADS) {
    async_loop *loop = new_hosted_loop();
    static pool_op_frame f;
    const char *path = test_path("malloc.txt");
    async_loop_set_allocator(loop, NULL, NULL);
    pool_op(&f, POOL_TO_THREAD)->arg = 11;
    ASSERT_EQ(pool_go(loop, &f), 0);
    ASSERT_EQ(f.result, 11);
    pool_op(&f, POOL_WRITE_ALL)->path = path; /* a record with a payload */
    f.data = "mem";
    f.len = 3;
    ASSERT_EQ(pool_go(loop, &f), 0);
    ASSERT_EQ(f.result, 3);
    ASSERT_STR_EQ(test_read_file(path), "mem");
    async_loop_free(loop);
    test_rmdir();
}

/* ---- cancellation, timeouts, loops freed with calls in flight ---- */

ASYNC_DEF(thr_cancel, thr_call_frame w; async_group g;) {
    ASYNC_SPAWN(t, &f->g, ASYNC_CALL(thr_call, &f->w, thr_gated, 1, thr_free_dtor));
    while (thr_gate_count(&thr_gate.started) < 1) AWAIT_YIELD(t); /* the call runs on a pool thread */
    ASSERT_EQ(async_loop_jobs(async_task_loop(t)), 1);
    ASSERT_EQ(async_loop_set_threads(async_task_loop(t), 2), ASYNC_EBUSY);
    ASSERT_EQ(async_loop_set_thread_pool(async_task_loop(t), NULL), ASYNC_EBUSY);
    ASSERT(async_cancel(&f->w.task));
    AWAIT_GROUP(t, &f->g); /* a child that ended cancelled is no error of the group */
    ASSERT_EQ(f->w.code, ASYNC_ECANCELED);
    ASSERT(async_task_cancelled(&f->w.task));
    ASSERT_EQ(thr_dtor_calls, 0);          /* the call still runs: nothing to free yet */
    ASSERT_EQ(thr_gate_count(&thr_gate.finished), 0); /* and it was not stopped */
    thr_gate_open();
    while (async_loop_jobs(async_task_loop(t)) > 0) AWAIT_YIELD(t);
    ASSERT_EQ(thr_gate_count(&thr_gate.finished), 1);
    ASSERT_EQ(thr_dtor_calls, 1); /* the result no one awaits went to the dtor */
} ASYNC_END_DEF

TEST_TAGGED(thread_cancelled_awaiter_leaves_the_thread_running_and_the_dtor_frees, TEST_THREADS | TEST_WAITS) {
    async_loop *loop = thr_loop();
    static thr_cancel_frame m;
    ASSERT_EQ(async_run(loop, ASYNC_CALL(thr_cancel, &m)), 0);
    ASSERT_EQ(thr_dtor_calls, 1);
    async_loop_free(loop);
    ASSERT_EQ(thr_dtor_calls, 1); /* exactly once */
}

/* Cancelled after the call finished, before the awaiter ran: the result is discarded at once. */
ASYNC_DEF(thr_late, thr_call_frame w; async_group g;) {
    thr_gate_open();
    ASYNC_SPAWN(t, &f->g, ASYNC_CALL(thr_call, &f->w, thr_gated, 2, thr_free_dtor));
    while (async_loop_jobs(async_task_loop(t)) == 0) AWAIT_YIELD(t); /* started */
    while (async_loop_jobs(async_task_loop(t)) > 0) AWAIT_YIELD(t);  /* back: w is woken, not run */
    ASSERT(!async_task_done(&f->w.task));
    async_cancel(&f->w.task);
    AWAIT_GROUP(t, &f->g);
    ASSERT(async_task_cancelled(&f->w.task));
    ASSERT_EQ(thr_dtor_calls, 1);
} ASYNC_END_DEF

TEST_TAGGED(thread_cancel_after_completion_discards_the_result, TEST_THREADS | TEST_WAITS) {
    async_loop *loop = thr_loop();
    static thr_late_frame m;
    ASSERT_EQ(async_run(loop, ASYNC_CALL(thr_late, &m)), 0);
    async_loop_free(loop);
    ASSERT_EQ(thr_dtor_calls, 1);
}

ASYNC_DEF(thr_timeout, thr_call_frame w; async_timeout tmo; int code;) {
    ASYNC_TRY(t) {
        AWAIT_TIMEOUT(t, &f->tmo, 10, ASYNC_CALL(thr_call, &f->w, thr_gated, 3, thr_free_dtor));
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
    ASSERT_EQ(thr_gate_count(&thr_gate.finished), 0);
    thr_gate_open();
    while (async_loop_jobs(async_task_loop(t)) > 0) AWAIT_YIELD(t);
} ASYNC_END_DEF

/* The timeout needs time to pass while the call runs: a real-clock loop, 10 ms. */
TEST_TAGGED(thread_timeout_of_the_awaiter_discards_the_result, TEST_THREADS) {
    async_loop *loop = async_loop_new(0);
    static thr_timeout_frame m;
    ASSERT(loop != NULL);
    thr_reset();
    ASSERT_EQ(async_run(loop, ASYNC_CALL(thr_timeout, &m)), 0);
    ASSERT_EQ(m.code, ASYNC_ETIMEDOUT);
    ASSERT_EQ(m.w.code, ASYNC_ECANCELED);
    ASSERT_EQ(thr_gate_count(&thr_gate.finished), 1);
    ASSERT_EQ(thr_dtor_calls, 1);
    async_loop_free(loop);
    ASSERT_EQ(thr_dtor_calls, 1);
}

/* On the virtual clock the loop waits for the call before time jumps: a 1 s timeout does not fire. */
static int thr_sleep_20ms(void *arg, intptr_t *result) {
    sleep_ms(20);
    *result = (intptr_t)arg;
    return 0;
}

ASYNC_DEF(thr_vtimeout, thr_call_frame w; async_timeout tmo;) {
    AWAIT_TIMEOUT(t, &f->tmo, 1000, ASYNC_CALL(thr_call, &f->w, thr_sleep_20ms, 9, NULL));
} ASYNC_END_DEF

TEST_TAGGED(thread_virtual_clock_waits_for_calls_instead_of_jumping, TEST_THREADS) {
    async_loop *loop = thr_loop();
    static thr_vtimeout_frame m;
    async_ms start = async_loop_now(loop);
    ASSERT_EQ(async_run(loop, ASYNC_CALL(thr_vtimeout, &m)), 0);
    ASSERT_EQ(m.w.result, 9);
    ASSERT_EQ(async_loop_now(loop) - start, 0);
    async_loop_free(loop);
}

/* A main that waits for nothing that could ever come is still a deadlock, with or without a pool. */
ASYNC_DEF(thr_deadlock, thr_call_frame c; async_future never;) {
    AWAIT_CALL(t, thr_call, &f->c, thr_identity, 4, NULL);
    AWAIT_FUTURE(t, &f->never);
} ASYNC_END_DEF

static void thr_quiet(async_loop *loop, async_task *task, const async_error *error, void *ctx) {
    (void)loop;
    (void)task;
    (void)error;
    (void)ctx;
}

TEST_TAGGED(thread_deadlock_is_still_detected_after_calls, TEST_THREADS) {
    async_loop *loop = thr_loop();
    static thr_deadlock_frame m;
    async_loop_set_error_handler(loop, thr_quiet, NULL); /* main's cancellation is expected */
    ASSERT_EQ(async_run(loop, ASYNC_CALL(thr_deadlock, &m)), ASYNC_EDEADLK);
    ASSERT_EQ(m.c.result, 4);
    async_loop_free(loop);
}

/* Starts three gated calls on tasks of the loop, and returns once they all run. */
ASYNC_DEF(thr_starter) {
    while (thr_gate_count(&thr_gate.started) < 3) AWAIT_YIELD(t);
} ASYNC_END_DEF

static void *thr_open_later(void *arg) {
    (void)arg;
    sleep_ms(20);
    thr_gate_open();
    return NULL;
}

TEST_TAGGED(thread_loop_free_waits_for_calls_in_flight, TEST_THREADS | TEST_WAITS) {
    async_loop *loop = thr_loop();
    static thr_call_frame c[3];
    static thr_starter_frame s;
    pthread_t opener;
    int i;
    for (i = 0; i < 3; i++) async_spawn(loop, ASYNC_CALL(thr_call, &c[i], thr_gated, i, thr_free_dtor));
    ASSERT_EQ(async_run(loop, ASYNC_CALL(thr_starter, &s)), 0);
    ASSERT_EQ(async_loop_jobs(loop), 3);
    ASSERT_EQ(pthread_create(&opener, NULL, thr_open_later, NULL), 0);
    async_loop_free(loop); /* blocks until the calls return, then gives their results to the dtor */
    ASSERT_EQ(thr_gate_count(&thr_gate.finished), 3);
    ASSERT_EQ(thr_dtor_calls, 3);
    pthread_join(opener, NULL);
}

TEST_TAGGED(thread_loop_free_discards_results_never_delivered, TEST_THREADS | TEST_WAITS) {
    async_loop *loop = thr_loop();
    static thr_call_frame c[3];
    static thr_starter_frame s;
    int i;
    for (i = 0; i < 3; i++) async_spawn(loop, ASYNC_CALL(thr_call, &c[i], thr_gated, i, thr_free_dtor));
    ASSERT_EQ(async_run(loop, ASYNC_CALL(thr_starter, &s)), 0);
    thr_gate_open();
    while (thr_gate_count(&thr_gate.finished) < 3) {
        sleep_ms(1);
    }
    async_loop_free(loop); /* the awaiters never run again: the results go to the dtor */
    ASSERT_EQ(thr_dtor_calls, 3);
}

/* ---- the call record: pending cancellation, NULL, swapped during the await ---- */

TEST_TAGGED(thread_cancel_pending_at_each_await_never_starts_the_call, TEST_THREADS) {
    async_loop *loop = new_hosted_loop();
    static pool_op_frame f;
    static char buf[8];
    const char *path = test_path("c.txt"), *fresh = test_path("fresh.txt");
    async_file *file;
    test_write_file(path, "abc");
    file = pool_open(loop, path, "r+");
    pool_runs = 0;
    pool_op(&f, POOL_TO_THREAD)->cancel_first = true;
    ASSERT_EQ(pool_go(loop, &f), ASYNC_ECANCELED);
    ASSERT(!f.reached);
    pool_op(&f, POOL_READ_ALL)->cancel_first = true;
    f.path = path;
    ASSERT_EQ(pool_go(loop, &f), ASYNC_ECANCELED);
    ASSERT(f.all == NULL);
    pool_op(&f, POOL_WRITE_ALL)->cancel_first = true;
    f.path = fresh;
    f.data = "new";
    f.len = 3;
    ASSERT_EQ(pool_go(loop, &f), ASYNC_ECANCELED);
    pool_op(&f, POOL_OPEN)->cancel_first = true;
    f.path = fresh;
    f.how = "w";
    ASSERT_EQ(pool_go(loop, &f), ASYNC_ECANCELED);
    ASSERT(f.file == NULL);
    ASSERT(access(fresh, F_OK) != 0); /* neither the write_all nor the open created it */
    pool_op(&f, POOL_WRITE)->cancel_first = true;
    f.file = file;
    f.data = "XYZ";
    f.len = 3;
    ASSERT_EQ(pool_go(loop, &f), ASYNC_ECANCELED);
    pool_op(&f, POOL_READ)->cancel_first = true;
    f.file = file;
    f.buf = buf;
    f.cap = sizeof buf;
    ASSERT_EQ(pool_go(loop, &f), ASYNC_ECANCELED);
    pool_op(&f, POOL_CLOSE)->cancel_first = true;
    f.file = file;
    ASSERT_EQ(pool_go(loop, &f), ASYNC_ECANCELED);
    ASSERT_EQ(async_loop_jobs(loop), 0);
    /* none of them ran: the function was never called, the file is open, unread and unwritten */
    ASSERT_EQ(__atomic_load_n(&pool_runs, __ATOMIC_SEQ_CST), 0);
    pool_op(&f, POOL_READ)->file = file;
    f.buf = buf;
    f.cap = sizeof buf;
    ASSERT_EQ(pool_go(loop, &f), 0);
    ASSERT_EQ(f.nread, 3);
    ASSERT(memcmp(buf, "abc", 3) == 0);
    ASSERT_EQ(pool_close(loop, file), 0);
    async_loop_free(loop);
    test_rmdir();
}

TEST_TAGGED(thread_null_call_is_einval_for_every_await, TEST_THREADS) {
    async_loop *loop = new_hosted_loop();
    static pool_op_frame f;
    static char buf[8];
    const char *path = test_path("n.txt");
    async_file *file;
    int op;
    test_write_file(path, "abc");
    file = pool_open(loop, path, "r+");
    pool_runs = 0;
    for (op = POOL_TO_THREAD; op <= POOL_CLOSE; op++) {
        pool_op(&f, op)->callp = NULL;
        f.path = path;
        f.how = "r";
        f.data = "x";
        f.len = 1;
        f.buf = buf;
        f.cap = sizeof buf;
        f.file = file;
        ASSERT_EQ(pool_go(loop, &f), ASYNC_EINVAL);
        ASSERT(!f.reached);
    }
    ASSERT_EQ(async_loop_jobs(loop), 0);
    ASSERT_EQ(__atomic_load_n(&pool_runs, __ATOMIC_SEQ_CST), 0);
    ASSERT_STR_EQ(test_read_file(path), "abc");
    ASSERT_EQ(pool_close(loop, file), 0); /* the NULL close did not close it */
    async_loop_free(loop);
    test_rmdir();
}

/* The await's call record is an argument evaluated again at the resume: one swapped for a record with
 * no call in it is ASYNC_EINVAL there, and the call's result, which no one can receive now, goes to the
 * dtor (when the loop is freed), exactly once. */
ASYNC_DEF(thr_swap, pool_op_frame w; async_thread_call other; async_group g;) {
    pool_op(&f->w, POOL_TO_THREAD)->fn = thr_heap;
    f->w.arg = 5;
    f->w.dtor = thr_free_dtor;
    ASYNC_SPAWN(t, &f->g, &f->w.task);
    AWAIT_YIELD(t); /* w waits for its call */
    ASSERT_EQ(async_loop_jobs(async_task_loop(t)), 1);
    f->w.callp = &f->other;
    AWAIT_GROUP(t, &f->g);
} ASYNC_END_DEF

TEST_TAGGED(thread_call_swapped_during_the_await_is_einval_and_the_dtor_frees, TEST_THREADS) {
    async_loop *loop = new_hosted_loop();
    static thr_swap_frame m;
    thr_dtor_calls = 0;
    ASSERT_EQ(async_run(loop, ASYNC_CALL(thr_swap, &m)), 0);
    ASSERT_EQ(m.w.code, ASYNC_EINVAL);
    ASSERT(!m.w.reached);
    ASSERT_EQ(async_thread_call_result(&m.other), 0);
    ASSERT_EQ(async_loop_jobs(loop), 0);
    ASSERT_EQ(thr_dtor_calls, 0);
    async_loop_free(loop);
    ASSERT_EQ(thr_dtor_calls, 1);
}

/* ---- pools: shared by loops, attached loops, threads that cannot start, sizes, switches, job records ---- */

typedef struct {
    async_thread_pool *pool;
    long long sum;
    int rc;
} thr_loop_job;

static void *thr_run_loop(void *arg) {
    thr_loop_job *job = (thr_loop_job *)arg;
    async_loop *loop = async_loop_new(ASYNC_LOOP_VIRTUAL_CLOCK);
    thr_many_frame *m = calloc(1, sizeof *m);
    if (!loop || !m) return NULL;
    job->rc = async_loop_set_thread_pool(loop, job->pool);
    if (!job->rc) {
        job->rc = async_run(loop, ASYNC_CALL(thr_many, m));
        job->sum = m->sum;
    }
    async_loop_free(loop);
    free(m);
    return NULL;
}

TEST_TAGGED(thread_two_loops_on_two_threads_share_one_pool, TEST_THREADS | TEST_WAITS) {
    async_thread_pool *pool = async_thread_pool_new(2);
    async_loop *idle = thr_loop();
    thr_loop_job a = {0, 0, -1}, b = {0, 0, -1};
    pthread_t ta, tb;
    ASSERT(pool != NULL);
    a.pool = b.pool = pool;
    ASSERT_EQ(async_loop_set_thread_pool(idle, pool), 0);
    ASSERT_EQ(async_thread_pool_free(pool), ASYNC_EBUSY); /* a loop still uses it */
    ASSERT_EQ(pthread_create(&ta, NULL, thr_run_loop, &a), 0);
    ASSERT_EQ(pthread_create(&tb, NULL, thr_run_loop, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    ASSERT_EQ(a.rc, 0);
    ASSERT_EQ(b.rc, 0);
    ASSERT_EQ(a.sum, (long long)THR_MANY * (THR_MANY - 1) / 2);
    ASSERT_EQ(b.sum, a.sum);
    ASSERT_EQ(async_loop_set_thread_pool(idle, NULL), 0); /* back to a pool of its own */
    ASSERT_EQ(async_thread_pool_free(pool), 0);
    async_loop_free(idle);
}

TEST_TAGGED(thread_calls_in_an_attached_loop, TEST_THREADS) {
    struct ev_loop *ev = ev_loop_new(EVFLAG_AUTO);
    async_loop *loop = async_loop_attach(ev);
    static thr_three_frame m;
    ASSERT(loop != NULL);
    thr_reset();
    ASSERT_EQ(async_spawn(loop, ASYNC_CALL(thr_three, &m)), 0);
    ev_run(ev, 0); /* returns once the calls are back and the tasks done: nothing keeps it alive */
    ASSERT(async_task_done(&m.task));
    ASSERT_EQ(m.a.result + m.b.result + m.c.result, 6);
    async_loop_free(loop);
    ev_loop_destroy(ev);
}

/* The process's threads, as the kernel counts them. */
static int thr_threads_now(void) {
    char line[256];
    int n = -1;
    FILE *f = fopen("/proc/self/status", "r");
    ASSERT(f != NULL);
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %d", &n) == 1) break;
    fclose(f);
    return n;
}

/* The thread count once it reads `want` (a joined thread leaves the kernel's count a moment after
 * pthread_join returns); the last reading if it does not within 2 s. */
static int thr_threads(int want) {
    int i, n = thr_threads_now();
    for (i = 0; i < 2000 && n != want; i++) {
        sleep_ms(1);
        n = thr_threads_now();
    }
    return n;
}

static void *thr_wait_for_eof(void *arg) {
    char c;
    while (read(*(int *)arg, &c, 1) > 0) {}
    return NULL;
}

/* The thread count with no pool running, once any helper thread a sanitizer starts with the first
 * pthread_create (ThreadSanitizer's background thread) exists: a thread is made, counted while it
 * waits, and joined first. */
static int thr_threads_base(void) {
    pthread_t th;
    int p[2], n;
    ASSERT_EQ(pipe(p), 0);
    ASSERT_EQ(pthread_create(&th, NULL, thr_wait_for_eof, &p[0]), 0);
    n = thr_threads_now();
    close(p[1]);
    ASSERT_EQ(pthread_join(th, NULL), 0);
    close(p[0]);
    return thr_threads(n - 1);
}

/* The default stack size set so large that no thread can be made: the loop's pool fails to start with
 * ASYNC_EAGAIN at the await, async_thread_pool_new gives NULL, and once threads can be made again the same loop
 * makes its pool at the next call. */
TEST_TAGGED(thread_pool_that_cannot_start_threads_is_eagain, TEST_THREADS) {
    async_loop *loop = new_hosted_loop();
    static pool_op_frame f;
    pthread_attr_t saved, huge;
    int base = thr_threads_base();
    ASSERT_EQ(pthread_getattr_default_np(&saved), 0);
    ASSERT_EQ(pthread_attr_init(&huge), 0);
    ASSERT_EQ(pthread_attr_setstacksize(&huge, (size_t)1 << 50), 0); /* more than the address space */
    ASSERT_EQ(pthread_setattr_default_np(&huge), 0);
    pool_runs = 0;
    pool_op(&f, POOL_TO_THREAD)->arg = 3;
    /* glibc turns the failed mmap of the stack into EAGAIN; under valgrind that mmap fails with EINVAL,
     * which pthread_create passes on: the pool reports ASYNC_EAGAIN either way, as async.h says */
    ASSERT_EQ(pool_go(loop, &f), ASYNC_EAGAIN);
    ASSERT(async_thread_pool_new(2) == NULL);
    ASSERT_EQ(pthread_setattr_default_np(&saved), 0);
    pthread_attr_destroy(&huge);
    pthread_attr_destroy(&saved);
    ASSERT_EQ(thr_threads(base), base); /* nothing half-made is left running */
    ASSERT_EQ(__atomic_load_n(&pool_runs, __ATOMIC_SEQ_CST), 0);
    ASSERT_EQ(async_loop_set_threads(loop, 2), 0);
    pool_op(&f, POOL_TO_THREAD)->arg = 4;
    ASSERT_EQ(pool_go(loop, &f), 0);
    ASSERT_EQ(f.result, 4);
    ASSERT_EQ(thr_threads(base + 2), base + 2);
    async_loop_free(loop);
}

/* ASYNC_THREADS values that are no count in 1..ASYNC_THREAD_POOL_MAX give the default pool. */
TEST_TAGGED(thread_bad_async_threads_values_give_the_default_pool, TEST_THREADS) {
    static const char *const bad[] = {"abc", "", "5x", "0", "-3", "1025"};
    static pool_op_frame f;
    int base = thr_threads_base();
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        async_loop *loop;
        ASSERT_EQ(setenv("ASYNC_THREADS", bad[i], 1), 0);
        loop = new_hosted_loop();
        pool_op(&f, POOL_TO_THREAD)->arg = (intptr_t)i;
        ASSERT_EQ(pool_go(loop, &f), 0);
        ASSERT_EQ(f.result, (intptr_t)i);
        ASSERT_EQ(thr_threads(base + (int)ASYNC_THREAD_POOL_DEFAULT), base + (int)ASYNC_THREAD_POOL_DEFAULT);
        async_loop_free(loop);
        ASSERT_EQ(thr_threads(base), base);
    }
    unsetenv("ASYNC_THREADS");
}

/* The loop's own pool: a size equal to the current one changes nothing, another size stops it (remade at
 * the next call); a shared pool stops it too; the same shared pool again is no change; NULL goes back to
 * a pool of its own. */
TEST_TAGGED(thread_pool_resizes_and_switches_stop_idle_threads, TEST_THREADS) {
    async_loop *loop = new_hosted_loop();
    static pool_op_frame f;
    async_thread_pool *shared;
    int base = thr_threads_base();
    ASSERT_EQ(async_loop_set_threads(loop, 2), 0);
    pool_op(&f, POOL_TO_THREAD);
    ASSERT_EQ(pool_go(loop, &f), 0);
    ASSERT_EQ(thr_threads(base + 2), base + 2);
    ASSERT_EQ(async_loop_set_threads(loop, 2), 0); /* the same size: the pool stays */
    ASSERT_EQ(thr_threads_now(), base + 2);
    ASSERT_EQ(async_loop_set_threads(loop, 3), 0); /* stopped now, made again at the next call */
    ASSERT_EQ(thr_threads(base), base);
    pool_op(&f, POOL_TO_THREAD)->arg = 1;
    ASSERT_EQ(pool_go(loop, &f), 0);
    ASSERT_EQ(f.result, 1);
    ASSERT_EQ(thr_threads(base + 3), base + 3);
    shared = async_thread_pool_new(1);
    ASSERT(shared != NULL);
    ASSERT_EQ(async_loop_set_thread_pool(loop, shared), 0); /* its own pool would only idle: stopped */
    ASSERT_EQ(thr_threads(base + 1), base + 1);
    ASSERT_EQ(async_loop_set_thread_pool(loop, shared), 0); /* again: nothing changes */
    ASSERT_EQ(async_thread_pool_free(shared), ASYNC_EBUSY);
    pool_op(&f, POOL_TO_THREAD)->arg = 2;
    ASSERT_EQ(pool_go(loop, &f), 0);
    ASSERT_EQ(f.result, 2);
    ASSERT_EQ(thr_threads_now(), base + 1);
    ASSERT_EQ(async_loop_set_thread_pool(loop, NULL), 0);
    ASSERT_EQ(async_thread_pool_free(shared), 0); /* no loop uses it now */
    ASSERT_EQ(thr_threads(base), base);
    pool_op(&f, POOL_TO_THREAD)->arg = 3;
    ASSERT_EQ(pool_go(loop, &f), 0); /* on a new pool of its own, of the size set */
    ASSERT_EQ(f.result, 3);
    ASSERT_EQ(thr_threads(base + 3), base + 3);
    async_loop_free(loop);
    ASSERT_EQ(thr_threads(base), base);
}

/* More calls in flight than the loop keeps records for reuse: each comes back right, then a second
 * round reuses the kept records; the surplus is freed (ASan and valgrind see no leak). */
enum { THR_REUSE_CALLS = 5000 };

ASYNC_DEF(thr_small, intptr_t i; async_thread_call call; intptr_t result;) {
    AWAIT_TO_THREAD(t, &f->call, pool_count, (void *)f->i, NULL);
    f->result = async_thread_call_result(&f->call);
} ASYNC_END_DEF

ASYNC_DEF(thr_reuse, thr_small_frame calls[THR_REUSE_CALLS]; async_group all; int round, bad;) {
    int i;
    for (f->round = 0; f->round < 2; f->round++) {
        for (i = 0; i < THR_REUSE_CALLS; i++) ASYNC_CALL(thr_small, &f->calls[i], i * 3 + f->round);
        AWAIT_GATHER_ARRAY(t, &f->all, &f->calls[0].task, THR_REUSE_CALLS, sizeof f->calls[0]);
        for (i = 0; i < THR_REUSE_CALLS; i++)
            if (f->calls[i].result != i * 3 + f->round) f->bad++;
    }
} ASYNC_END_DEF

TEST_TAGGED(thread_job_records_kept_for_reuse_are_capped, TEST_THREADS) {
    async_loop *loop = new_hosted_loop();
    static thr_reuse_frame m;
    pool_runs = 0;
    ASSERT_EQ(async_run(loop, ASYNC_CALL(thr_reuse, &m)), 0);
    ASSERT_EQ(m.bad, 0);
    ASSERT_EQ(__atomic_load_n(&pool_runs, __ATOMIC_SEQ_CST), 2 * THR_REUSE_CALLS);
    ASSERT_EQ(async_loop_jobs(loop), 0);
    async_loop_free(loop);
}
