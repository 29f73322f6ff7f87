/* The portable core misused: NULL and nonsense arguments to every public function, reuse of live tasks,
 * futures and primitives, cancellation arriving at each kind of wait, spurious resumes, allocation
 * failures of the timer heap and of growing queues, generators closed or thrown into at odd moments,
 * and async_run's ways of waiting. Every case checks the exact code and that nothing is lost.
 * Self-contained (its own loop and helpers, all named mu_*), so it builds alone or with the others. */

/* ---- the loop: virtual clock, timer storage on the heap through a counting allocator ---- */

static long mu_allocs;   /* live blocks of mu_realloc_impl */
static long mu_fail_at;  /* the call number (1-based) that fails, 0: none; mu_fail_all: every one */
static int mu_fail_all;
static long mu_calls;

static void *mu_realloc_impl(void *p, size_t n) {
    if (n == 0) {
        if (p) mu_allocs--;
        free(p);
        return NULL;
    }
    mu_calls++;
    if (mu_fail_all || mu_calls == mu_fail_at) return NULL;
    if (!p) mu_allocs++;
    return realloc(p, n);
}

static void *mu_loop_realloc(void *ctx, void *p, size_t n) {
    (void)ctx;
    return mu_realloc_impl(p, n);
}

static void *mu_queue_realloc(void *p, size_t n) { return mu_realloc_impl(p, n); }

static async_loop mu_the_loop;

static async_loop *mu_loop(void) {
    async_loop_init(&mu_the_loop);
    async_loop_set_allocator(&mu_the_loop, mu_loop_realloc, NULL);
    mu_allocs = mu_calls = mu_fail_at = 0;
    mu_fail_all = 0;
    return &mu_the_loop;
}

/* Runs until nothing is scheduled, jumping the virtual clock to each next timer. */
static void mu_drain(async_loop *loop) {
    int32_t d;
    while ((d = async_poll(loop)) >= 0) loop->now += (async_ms)d;
}

/* Runs passes (and timers) up to virtual time `until`. */
static void mu_run_until(async_loop *loop, async_ms until) {
    int32_t d;
    while ((d = async_poll(loop)) >= 0 && (int32_t)(loop->now + (async_ms)d - until) <= 0) {
        if (d == 0 && !async_loop_has_ready(loop)) break;
        loop->now += (async_ms)d;
    }
    loop->now = until;
    async_poll(loop);
}

/* A coroutine stepped by hand, as the loop would (a spurious resume when the task waits). */
static async_status mu_step_by_hand(async_task *t) {
    async_status st;
    do st = t->fn(t);
    while (st == ASYNC__AGAIN);
    return st;
}

/* ---- a worker: sleeps (or waits for an event), then fails or returns a value ---- */

typedef struct {
    async_task task;
    int ms;
    async_event *gate;      /* wait for this event instead of sleeping */
    const async_error *fail;
    int swallow_cancel;     /* catch ECANCELED and finish normally */
    int after_cancel_ms;    /* when swallowing: sleep this long afterwards */
    const async_error *fail_on_cancel; /* when cancelled: raise this instead */
    intptr_t value;
    int cancelled;          /* saw ECANCELED */
} mu_worker_frame;

static async_status mu_worker_run(async_task *t) {
    mu_worker_frame *f = (mu_worker_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_TRY(t) {
        if (f->gate)
            AWAIT_EVENT(t, f->gate);
        else
            AWAIT_SLEEP(t, f->ms);
    }
    ASYNC_CATCH(t) {
        if (async_caught(t)->code != ASYNC_ECANCELED) ASYNC_RERAISE(t);
        f->cancelled = 1;
        if (f->fail_on_cancel) ASYNC_THROW_ERROR(t, f->fail_on_cancel);
        if (!f->swallow_cancel) ASYNC_RERAISE(t);
    }
    ASYNC_END_TRY(t);
    if (f->cancelled && f->after_cancel_ms) AWAIT_SLEEP(t, f->after_cancel_ms);
    if (f->fail) ASYNC_THROW_ERROR(t, f->fail);
    ASYNC_RETURN(t, f->value);
    ASYNC_END(t);
}

static async_task *mu_worker(mu_worker_frame *f, int ms, intptr_t value) {
    if (ASYNC_FRAME_INIT(f, mu_worker_run)) {
        f->ms = ms;
        f->value = value;
    }
    return &f->task;
}

static const async_error mu_err_a = {ASYNC_EUSER + 1, "first failure"};
static const async_error mu_err_b = {ASYNC_EUSER + 2, "second failure"};
static const async_error mu_err_c = {ASYNC_EUSER + 3, "cleanup failure"};

/* ---- one coroutine for every kind of await: a list of steps, each in its own try/catch ---- */

enum {
    MU_SLEEP = 1, MU_AWAIT, MU_FUTURE, MU_GATHER, MU_GATHER_ARRAY, MU_GROUP, MU_SPAWN, MU_TIMEOUT, MU_SHIELD,
    MU_LOCK, MU_UNLOCK, MU_EVENT, MU_COND, MU_SEM, MU_QPUT, MU_QGET, MU_QJOIN, MU_NEXT, MU_GEN_THROW,
    MU_GEN_CLOSE, MU_YIELD_VALUE, MU_THROW_NULL, MU_GROUP_SPAWN_API, MU_NOTIFY
};

#define MU_STEPS 16

typedef struct {
    int op;
    int self_cancel;    /* async_cancel(t) just before the await: a cancellation already pending */
    void *a;            /* the object awaited: task, future, group, timeout, lock, ..., generator */
    async_task *c0, *c1; /* children (gather, spawn, timeout, shield, producer) */
    size_t n, stride;   /* gather over an array */
    int32_t ms;
    intptr_t item;      /* put; yield */
    intptr_t *out;      /* get; next */
    const async_error *err;
} mu_step;

typedef struct {
    async_task task;
    mu_step s[MU_STEPS];
    int nsteps, i;
    int code[MU_STEPS];    /* 0 or the error the step raised */
    int reached[MU_STEPS]; /* the step's await returned normally */
    int held[MU_STEPS];    /* MU_COND: the condition's lock was held by this task right after the await */
    int rc[MU_STEPS];      /* the return of a plain call (MU_UNLOCK, MU_NOTIFY, MU_GROUP_SPAWN_API) */
    async_ms at[MU_STEPS]; /* the loop's time when the step ended */
    intptr_t got;   /* a default place for values */
} mu_op_frame;

#define MU_S (f->s[f->i])

enum { MU_OP_FIRST_LINE = __LINE__ };
static async_status mu_op_run(async_task *t) {
    mu_op_frame *f = (mu_op_frame *)t;
    ASYNC_BEGIN(t);
    for (f->i = 0; f->i < f->nsteps; f->i++) {
        if (MU_S.self_cancel) async_cancel(t);
        ASYNC_TRY(t) {
            if (MU_S.op == MU_SLEEP)
                AWAIT_SLEEP(t, MU_S.ms);
            else if (MU_S.op == MU_AWAIT)
                AWAIT(t, (async_task *)MU_S.a);
            else if (MU_S.op == MU_FUTURE)
                AWAIT_FUTURE(t, (async_future *)MU_S.a);
            else if (MU_S.op == MU_GATHER)
                AWAIT_GATHER(t, (async_group *)MU_S.a, MU_S.c0, MU_S.c1);
            else if (MU_S.op == MU_GATHER_ARRAY)
                AWAIT_GATHER_ARRAY(t, (async_group *)MU_S.a, MU_S.c0, MU_S.n, MU_S.stride);
            else if (MU_S.op == MU_GROUP)
                AWAIT_GROUP(t, (async_group *)MU_S.a);
            else if (MU_S.op == MU_SPAWN)
                ASYNC_SPAWN(t, (async_group *)MU_S.a, MU_S.c0);
            else if (MU_S.op == MU_TIMEOUT)
                AWAIT_TIMEOUT(t, (async_timeout *)MU_S.a, MU_S.ms, MU_S.c0);
            else if (MU_S.op == MU_SHIELD)
                AWAIT_SHIELD(t, (async_group *)MU_S.a, MU_S.c0);
            else if (MU_S.op == MU_LOCK)
                AWAIT_LOCK(t, (async_lock *)MU_S.a);
            else if (MU_S.op == MU_UNLOCK)
                f->rc[f->i] = async_lock_release((async_lock *)MU_S.a);
            else if (MU_S.op == MU_EVENT)
                AWAIT_EVENT(t, (async_event *)MU_S.a);
            else if (MU_S.op == MU_COND)
                AWAIT_CONDITION(t, (async_condition *)MU_S.a);
            else if (MU_S.op == MU_SEM)
                AWAIT_SEMAPHORE(t, (async_semaphore *)MU_S.a);
            else if (MU_S.op == MU_QPUT)
                AWAIT_QUEUE_PUT(t, (async_queue *)MU_S.a, MU_S.item);
            else if (MU_S.op == MU_QGET)
                AWAIT_QUEUE_GET(t, (async_queue *)MU_S.a, MU_S.out);
            else if (MU_S.op == MU_QJOIN)
                AWAIT_QUEUE_JOIN(t, (async_queue *)MU_S.a);
            else if (MU_S.op == MU_NEXT)
                AWAIT_NEXT(t, (async_gen *)MU_S.a, MU_S.c0, MU_S.out);
            else if (MU_S.op == MU_GEN_THROW)
                AWAIT_GEN_THROW(t, (async_gen *)MU_S.a, MU_S.err, MU_S.out);
            else if (MU_S.op == MU_GEN_CLOSE)
                AWAIT_GEN_CLOSE(t, (async_gen *)MU_S.a);
            else if (MU_S.op == MU_YIELD_VALUE)
                ASYNC_YIELD_VALUE(t, MU_S.item);
            else if (MU_S.op == MU_THROW_NULL)
                ASYNC_THROW_ERROR(t, (const async_error *)NULL);
            else if (MU_S.op == MU_GROUP_SPAWN_API)
                f->rc[f->i] = async_group_spawn(t, (async_group *)MU_S.a, MU_S.c0);
            else if (MU_S.op == MU_NOTIFY)
                f->rc[f->i] = async_condition_notify((async_condition *)MU_S.a, (int)MU_S.n);
            f->reached[f->i] = 1;
        }
        ASYNC_CATCH(t) {
            f->code[f->i] = async_caught(t)->code;
        }
        ASYNC_END_TRY(t);
        f->at[f->i] = async_loop_now(async_task_loop(t));
        if (MU_S.op == MU_COND && MU_S.a) {
            f->held[f->i] = async_condition_lock((async_condition *)MU_S.a)->holder == t;
            if (f->held[f->i]) async_lock_release(async_condition_lock((async_condition *)MU_S.a));
        }
    }
    ASYNC_END(t);
}
enum { MU_OP_LAST_LINE = __LINE__ };

/* Prepares an op frame with no steps; add them with mu_add. */
static async_task *mu_op(mu_op_frame *f) {
    ASYNC_FRAME_INIT(f, mu_op_run);
    return &f->task;
}

static mu_step *mu_add(mu_op_frame *f, int op, void *a) {
    mu_step *s = &f->s[f->nsteps++];
    s->op = op;
    s->a = a;
    return s;
}

/* An op frame of one step, for the common case. */
static mu_step *mu_op1(mu_op_frame *f, int op, void *a) {
    mu_op(f);
    return mu_add(f, op, a);
}

/* ================================================================================================ */
/* Queries and setters: NULL and nonsense arguments give the documented code or a neutral value       */
/* ================================================================================================ */

static async_status mu_return_run(async_task *t) {
    ASYNC_BEGIN(t);
    ASYNC_RETURN(t, 5);
    ASYNC_END(t);
}

TEST(misuse_task_queries_of_null_unscheduled_and_corrupt_tasks) {
    async_loop *loop = mu_loop();
    static async_task zero, bogus;
    static mu_worker_frame w;
    static async_task r;
    const char *file = NULL;
    unsigned line = 99;
    /* NULL */
    ASSERT(async_task_loop(NULL) == NULL);
    ASSERT(async_task_parent(NULL) == NULL);
    ASSERT_STR_EQ(async_task_state(NULL), "invalid");
    ASSERT(!async_task_where(NULL, &file, NULL, &line));
    ASSERT(file == NULL && line == 99); /* outputs untouched */
    ASSERT(!async_task_done(NULL));
    ASSERT(async_task_error(NULL) == NULL);
    ASSERT_EQ(async_task_value(NULL), 0);
    ASSERT(!async_task_cancelled(NULL));
    ASSERT(!async_cancel(NULL));
    ASSERT(!async_frame_init(NULL, sizeof w, mu_worker_run));
    ASSERT(!async_frame_init(&w.task, sizeof w, NULL));
    ASSERT(!async_frame_init(&w.task, sizeof w.task - 1, mu_worker_run)); /* smaller than a header */
    ASSERT_STR_EQ(async_task_name(NULL), "task");
    async_task_set_name(NULL, "x"); /* ignored */
    /* a zeroed header: no function, no loop */
    ASSERT(!async_task_where(&zero, &file, NULL, &line));
    ASSERT(async_task_loop(&zero) == NULL);
    ASSERT_EQ(async_spawn(loop, &zero), ASYNC_EINVAL); /* nothing to run */
    ASSERT(!async_loop_has_ready(loop));
    /* a prepared task that was never spawned belongs to no loop and has no result yet */
    mu_worker(&w, 10, 3);
    ASSERT(async_task_loop(&w.task) == NULL);
    ASSERT(async_task_parent(&w.task) == NULL);
    ASSERT_STR_EQ(async_task_state(&w.task), "new");
    ASSERT(async_task_error(&w.task) == NULL);
    ASSERT_EQ(async_task_value(&w.task), 0);
    ASSERT(!async_task_cancelled(&w.task));
    ASSERT_EQ(async_task_code(&w.task), ASYNC_EINPROGRESS);
    /* where, with the function and line not wanted */
    file = NULL;
    ASSERT(async_task_where(&w.task, &file, NULL, NULL));
    ASSERT(file != NULL && strstr(file, "test_misuse.c") != NULL);
    /* a corrupt state byte reads as "invalid" */
    async_task_init(&bogus, mu_worker_run);
    bogus.state = 200;
    ASSERT_STR_EQ(async_task_state(&bogus), "invalid");
    /* a task that ended through ASYNC_RETURN tells where it ended: line 0 (no await left) */
    async_task_init(&r, mu_return_run);
    ASSERT_EQ(async_run(loop, &r), 0);
    ASSERT_EQ(async_task_value(&r), 5);
    line = 99;
    ASSERT(async_task_where(&r, NULL, NULL, &line));
    ASSERT_EQ(line, 0);
    ASSERT_EQ(async_task_value(&r), 5); /* where changed nothing */
}

TEST(misuse_failed_task_is_not_cancelled_and_its_value_is_zero) {
    async_loop *loop = mu_loop();
    static mu_worker_frame w;
    mu_worker(&w, 5, 9);
    w.fail = &mu_err_a;
    ASSERT_EQ(async_run(loop, &w.task), ASYNC_EUSER + 1);
    ASSERT(async_task_done(&w.task));
    ASSERT(!async_task_cancelled(&w.task)); /* failed, but not with ECANCELED */
    ASSERT_EQ(async_task_value(&w.task), 0);
    ASSERT(async_task_error(&w.task) == &mu_err_a);
    ASSERT_EQ(async_loop_report_errors(loop), 0); /* retrieved by async_run */
}

TEST(misuse_future_and_group_queries_of_null) {
    static async_future f;
    static async_group g;
    ASSERT_EQ(async_future_init(NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_future_set_value(NULL, 1), ASYNC_EINVAL);
    ASSERT_EQ(async_future_set_error(NULL, &mu_err_a), ASYNC_EINVAL);
    ASSERT_EQ(async_future_set_error(&f, NULL), ASYNC_EINVAL);
    ASSERT(!async_future_done(&f)); /* still pending */
    ASSERT(!async_future_done(NULL));
    ASSERT_EQ(async_future_value(NULL), 0);
    ASSERT(async_future_error(NULL) == NULL);
    ASSERT_EQ(async_future_set_error(&f, &mu_err_a), 0);
    ASSERT_EQ(async_future_value(&f), 0); /* failed: no value */
    ASSERT(async_future_error(&f) == &mu_err_a);
    ASSERT_EQ(async_future_set_value(&f, 1), ASYNC_EBUSY); /* already complete */
    ASSERT(async_future_error(&f) == &mu_err_a);
    ASSERT_EQ(async_future_init(&f), 0);
    ASSERT(!async_future_done(&f) && async_future_error(&f) == NULL);
    ASSERT_EQ(async_group_running(NULL), 0);
    ASSERT(async_group_error(NULL) == NULL);
    ASSERT(async_group_error(&g) == NULL);
    ASSERT_EQ(async_group_spawn(NULL, &g, NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_group_spawn((async_task *)&f, NULL, (async_task *)&f), ASYNC_EINVAL);
    ASSERT_EQ(async_future_set_value(&f, 3), 0);
    ASSERT(async_future_done(&f));
    ASSERT_EQ(async_future_set_error(&f, &mu_err_a), ASYNC_EBUSY); /* complete: the value stays */
    ASSERT_EQ(async_future_value(&f), 3);
}

TEST(misuse_sync_primitive_queries_of_null) {
    static async_event e;
    static async_condition c;
    static async_semaphore s;
    ASSERT_EQ(async_lock_release(NULL), ASYNC_EINVAL);
    ASSERT(!async_lock_locked(NULL));
    ASSERT_EQ(async_event_set(NULL), ASYNC_EINVAL);
    async_event_clear(NULL);
    ASSERT(!async_event_is_set(NULL));
    ASSERT_EQ(async_event_set(&e), 0);
    ASSERT(async_event_is_set(&e));
    async_event_clear(&e);
    ASSERT(!async_event_is_set(&e));
    ASSERT_EQ(async_condition_init(NULL, NULL), ASYNC_EINVAL);
    ASSERT(async_condition_lock(NULL) == NULL);
    ASSERT_EQ(async_condition_notify(NULL, 1), ASYNC_EINVAL);
    ASSERT_EQ(async_condition_notify_all(NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_condition_init(&c, NULL), 0);
    ASSERT_EQ(async_condition_notify(&c, -1), ASYNC_EINVAL);
    ASSERT_EQ(async_condition_notify(&c, 1), ASYNC_EPERM); /* its lock is not held */
    ASSERT_EQ(async_semaphore_init(NULL, 1, false), ASYNC_EINVAL);
    ASSERT_EQ(async_semaphore_init(&s, -1, false), ASYNC_EINVAL);
    ASSERT_EQ(async_semaphore_release(NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_semaphore_try_acquire(NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_semaphore_value(NULL), 0);
    /* an unbounded semaphore at the largest count refuses one more */
    ASSERT_EQ(async_semaphore_init(&s, 0x7FFFFFFF, false), 0);
    ASSERT_EQ(async_semaphore_release(&s), ASYNC_ERANGE);
    ASSERT_EQ(async_semaphore_value(&s), 0x7FFFFFFF);
    ASSERT_EQ(async_semaphore_try_acquire(&s), 0);
    ASSERT_EQ(async_semaphore_release(&s), 0);
    ASSERT_EQ(async_semaphore_value(&s), 0x7FFFFFFF);
    ASSERT_EQ(async_semaphore_init(&s, 0, false), 0);
    ASSERT_EQ(async_semaphore_try_acquire(&s), ASYNC_EAGAIN);
}

TEST(misuse_queue_and_generator_queries_of_null_and_bad_arguments) {
    static async_queue q, zero;
    static intptr_t items[4];
    static uint32_t seq[4];
    intptr_t x = 77;
    ASSERT_EQ(async_queue_init(NULL, ASYNC_QUEUE_FIFO, items, NULL, 4), ASYNC_EINVAL);
    ASSERT_EQ(async_queue_init(&q, ASYNC_QUEUE_FIFO, NULL, NULL, 4), ASYNC_EINVAL);
    ASSERT_EQ(async_queue_init(&q, ASYNC_QUEUE_FIFO, items, NULL, 0), ASYNC_EINVAL);
    ASSERT_EQ(async_queue_init(&q, ASYNC_QUEUE_PRIORITY, items, NULL, 4), ASYNC_EINVAL);
    ASSERT_EQ(async_queue_init(&q, (async_queue_kind)7, items, seq, 4), ASYNC_EINVAL);
    ASSERT_EQ(async_queue_init_growing(NULL, ASYNC_QUEUE_FIFO, 0, mu_queue_realloc), ASYNC_EINVAL);
    ASSERT_EQ(async_queue_init_growing(&q, ASYNC_QUEUE_FIFO, 0, NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_queue_init_growing(&q, (async_queue_kind)3, 0, mu_queue_realloc), ASYNC_EINVAL);
    ASSERT_EQ(async_queue_free_storage(NULL), ASYNC_EINVAL);
    async_queue_set_compare(NULL, NULL);
    ASSERT_EQ(async_queue_size(NULL), 0);
    ASSERT_EQ(async_queue_unfinished(NULL), 0);
    ASSERT(!async_queue_full(NULL));
    ASSERT_EQ(async_queue_put_nowait(NULL, 1), ASYNC_EINVAL);
    ASSERT_EQ(async_queue_get_nowait(NULL, &x), ASYNC_EINVAL);
    ASSERT_EQ(async_queue_task_done(NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_queue_shutdown(NULL, false), ASYNC_EINVAL);
    /* a zeroed queue was never initialised: it has no storage and no way to grow */
    ASSERT_EQ(async_queue_put_nowait(&zero, 1), ASYNC_EINVAL);
    ASSERT_EQ(async_queue_get_nowait(&zero, &x), ASYNC_EAGAIN);
    ASSERT_EQ(x, 77);
    ASSERT_EQ(async_queue_size(&zero), 0);
    /* a fixed queue's storage is the caller's: free_storage leaves it alone */
    ASSERT_EQ(async_queue_init(&q, ASYNC_QUEUE_FIFO, items, NULL, 4), 0);
    ASSERT_EQ(async_queue_put_nowait(&q, 11), 0);
    ASSERT_EQ(async_queue_free_storage(&q), 0);
    ASSERT_EQ(async_queue_size(&q), 1);
    ASSERT_EQ(async_queue_get_nowait(&q, &x), 0);
    ASSERT_EQ(x, 11);
    ASSERT_EQ(async_queue_get_nowait(&q, NULL), ASYNC_EINVAL);
    /* a growing queue that never grew has nothing to free */
    ASSERT_EQ(async_queue_init_growing(&q, ASYNC_QUEUE_LIFO, 0, mu_queue_realloc), 0);
    ASSERT_EQ(async_queue_free_storage(&q), 0);
    ASSERT_EQ(mu_allocs, 0);
    ASSERT(!async_gen_done(NULL));
    ASSERT(!async_gen_started(NULL));
}

TEST(misuse_loop_and_frame_pool_functions_of_null) {
    static async_loop l;
    static char frames[4][sizeof(async_task) + 8];
    static uint32_t used[1];
    async_frame_pool nof = {NULL, used, sizeof frames[0], 4};
    async_frame_pool nou = {frames, NULL, sizeof frames[0], 4};
    async_frame_pool nosize = {frames, used, 0, 4};
    async_frame_pool ok = {&frames[1], used, sizeof frames[0], 3};
    ASSERT_EQ(async_loop_init(NULL), ASYNC_EINVAL);
    async_loop_set_clock(NULL, NULL);
    async_loop_set_allocator(NULL, mu_loop_realloc, NULL);
    async_loop_set_error_handler(NULL, NULL, NULL);
    async_loop_set_hooks(NULL, NULL, NULL);
    async_loop_set_wait(NULL, NULL);
    async_loop_free_storage(NULL);
    ASSERT_EQ(async_loop_now(NULL), 0);
    ASSERT_EQ(async_loop_time(NULL), 0);
    ASSERT_EQ(async_loop_timers(NULL), 0);
    ASSERT(!async_loop_has_ready(NULL));
    ASSERT(async_loop_hooks_ctx(NULL) == NULL);
    ASSERT_EQ(async_poll(NULL), -1);
    ASSERT_EQ(async_poll_batch(NULL, 10), -1);
    ASSERT_EQ(async_loop_report_errors(NULL), 0);
    ASSERT_EQ(async_run(NULL, NULL), ASYNC_EINVAL);
    ASSERT(!async_loop_signalled(NULL));
    ASSERT(!async_loop_has_signals(NULL));
    ASSERT_EQ(async_loop_init(&l), 0);
    ASSERT_EQ(async_run(&l, NULL), ASYNC_EINVAL);
    /* the virtual clock: loop.time() is the loop's own time */
    l.now = 1234;
    ASSERT_EQ(async_loop_time(&l), 1234);
    /* frame pools missing a part */
    ASSERT(async_frame_pool_get(NULL) == NULL);
    ASSERT(async_frame_pool_get(&nof) == NULL);
    ASSERT(async_frame_pool_get(&nou) == NULL);
    ASSERT_EQ(async_frame_pool_available(NULL), 0);
    ASSERT_EQ(async_frame_pool_available(&nou), 0);
    ASSERT_EQ(async_frame_pool_put(NULL, frames[0]), ASYNC_EINVAL);
    ASSERT_EQ(async_frame_pool_put(&ok, NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_frame_pool_put(&nof, frames[0]), ASYNC_EINVAL);
    ASSERT_EQ(async_frame_pool_put(&nosize, frames[0]), ASYNC_EINVAL);
    ASSERT_EQ(async_frame_pool_put(&ok, frames[0]), ASYNC_EINVAL); /* just before the pool */
    ASSERT_EQ(async_frame_pool_available(&ok), 3);
    ASSERT(async_frame_pool_get(&ok) == frames[1]);
    ASSERT_EQ(async_frame_pool_put(&ok, frames[0]), ASYNC_EINVAL);
    ASSERT_EQ(async_frame_pool_available(&ok), 2); /* nothing was put back by the bad calls */
    ASSERT_EQ(async_frame_pool_put(&ok, frames[1]), 0);
    ASSERT_EQ(async_frame_pool_available(&ok), 3);
}

/* ---- a producer for generators: yields 1..n, ms apart; its cleanup may sleep, yield again or fail ---- */

typedef struct {
    async_task task;
    int n, i, ms;
    int cleanup_ms;                 /* the finally block sleeps this long */
    int yield_in_cleanup;           /* the finally block yields once more (ignores the close) */
    const async_error *cleanup_error; /* the finally block raises this */
    int cleaned;                    /* times the finally block ran */
    int cleanup_code;               /* what the yield in the finally block raised */
} mu_range_frame;

static async_status mu_range_run(async_task *t) {
    mu_range_frame *f = (mu_range_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_TRY(t) {
        for (f->i = 1; f->i <= f->n; f->i++) {
            if (f->ms) AWAIT_SLEEP(t, f->ms);
            ASYNC_YIELD_VALUE(t, f->i);
        }
    }
    ASYNC_FINALLY(t) {
        f->cleaned++;
        if (f->cleanup_ms) AWAIT_SLEEP(t, f->cleanup_ms);
        if (f->yield_in_cleanup) {
            ASYNC_TRY(t) {
                ASYNC_YIELD_VALUE(t, -1);
            }
            ASYNC_CATCH(t) {
                f->cleanup_code = async_caught(t)->code;
                ASYNC_RERAISE(t);
            }
            ASYNC_END_TRY(t);
        }
        if (f->cleanup_error) ASYNC_THROW_ERROR(t, f->cleanup_error);
    }
    ASYNC_END_TRY(t);
    ASYNC_END(t);
}

static async_task *mu_range(mu_range_frame *f, int n, int ms) {
    if (ASYNC_FRAME_INIT(f, mu_range_run)) {
        f->n = n;
        f->ms = ms;
    }
    return &f->task;
}

/* ================================================================================================ */
/* Coroutines stepped outside a loop, and waiting tasks stepped by hand                               */
/* ================================================================================================ */

TEST(misuse_coroutine_stepped_without_a_loop_gets_einval_where_it_needs_one) {
    static mu_op_frame o, inl;
    static mu_worker_frame c, s, w, gated;
    static mu_range_frame p;
    static async_group g, h;
    static async_gen gen;
    static async_event open_gate;
    mu_step *st;
    mu_op(&o);
    mu_add(&o, MU_SLEEP, NULL)->ms = 5;
    st = mu_add(&o, MU_GATHER, &g);
    st->c0 = mu_worker(&c, 0, 1);
    st->c1 = mu_worker(&s, 0, 2);
    mu_add(&o, MU_NEXT, &gen)->c0 = mu_range(&p, 3, 0);
    mu_add(&o, MU_GROUP_SPAWN_API, &h)->c0 = mu_worker(&w, 0, 3);
    ASSERT_EQ(mu_step_by_hand(&o.task), ASYNC_DONE); /* nothing waited: each step failed at once */
    ASSERT_EQ(o.code[0], ASYNC_EINVAL);                /* a sleep needs a loop's timers */
    ASSERT_EQ(o.code[1], ASYNC_EINVAL);                /* children need a loop to run on */
    ASSERT_EQ(o.code[2], ASYNC_EINVAL);
    ASSERT(o.reached[3]);
    ASSERT_EQ(o.rc[3], ASYNC_EINVAL);
    ASSERT(async_task_done(&o.task) && async_task_loop(&o.task) == NULL);
    /* nothing was started or left half-started */
    ASSERT_STR_EQ(async_task_state(&c.task), "new");
    ASSERT_STR_EQ(async_task_state(&s.task), "new");
    ASSERT_STR_EQ(async_task_state(&p.task), "new");
    ASSERT_STR_EQ(async_task_state(&w.task), "new");
    ASSERT_EQ(async_group_running(&g), 0);
    ASSERT_EQ(async_group_running(&h), 0);
    ASSERT(!async_gen_started(&gen));
    /* a coroutine call needs no loop: it runs inline and its result comes back */
    async_event_set(&open_gate);
    mu_op1(&inl, MU_AWAIT, mu_worker(&gated, 0, 8));
    gated.gate = &open_gate;
    ASSERT_EQ(mu_step_by_hand(&inl.task), ASYNC_DONE);
    ASSERT(inl.reached[0]);
    ASSERT_EQ(async_task_value(&gated.task), 8);
    ASSERT_EQ(async_task_code(&inl.task), 0);
}

TEST(misuse_resuming_a_waiting_task_by_hand_changes_nothing) {
    async_loop *loop = mu_loop();
    static mu_op_frame o[16];
    static mu_worker_frame w[3];
    static mu_range_frame pr;
    static async_future fut;
    static async_lock lk;
    static async_event ev;
    static async_condition cv;
    static async_semaphore sem;
    static async_queue qfull, qempty;
    static intptr_t s1[1], s2[1];
    static async_group g;
    static async_gen gen;
    static const char *const expected[14] = {"sleeping", "ready", "waiting", "sleeping", "waiting",
                                             "waiting", "waiting", "waiting", "waiting", "waiting",
                                             "waiting", "awaiting children", "awaiting a task",
                                             "awaiting children"};
    const char *before[14];
    intptr_t x;
    mu_step *st;
    int i, n = 15;
    async_condition_init(&cv, NULL);
    async_semaphore_init(&sem, 0, false);
    async_queue_init(&qfull, ASYNC_QUEUE_FIFO, s1, NULL, 1);
    async_queue_put_nowait(&qfull, 1);
    async_queue_init(&qempty, ASYNC_QUEUE_FIFO, s2, NULL, 1);
    mu_op1(&o[0], MU_SLEEP, NULL)->ms = 10;
    mu_op1(&o[1], MU_SLEEP, NULL)->ms = 0; /* ready again at once */
    mu_op1(&o[2], MU_FUTURE, &fut);
    mu_op1(&o[3], MU_LOCK, &lk);
    mu_add(&o[3], MU_SLEEP, NULL)->ms = 10;
    mu_add(&o[3], MU_UNLOCK, &lk);
    mu_op1(&o[4], MU_LOCK, &lk);
    mu_add(&o[4], MU_UNLOCK, &lk);
    mu_op1(&o[5], MU_LOCK, async_condition_lock(&cv));
    mu_add(&o[5], MU_COND, &cv);
    mu_op1(&o[6], MU_EVENT, &ev);
    mu_op1(&o[7], MU_SEM, &sem);
    mu_op1(&o[8], MU_QPUT, &qfull)->item = 2;
    mu_op1(&o[9], MU_QGET, &qempty)->out = &o[9].got;
    mu_op1(&o[10], MU_QJOIN, &qfull);
    st = mu_op1(&o[11], MU_GATHER, &g);
    st->c0 = mu_worker(&w[0], 10, 1);
    st->c1 = mu_worker(&w[1], 20, 2);
    mu_op1(&o[12], MU_AWAIT, mu_worker(&w[2], 10, 3));
    st = mu_op1(&o[13], MU_NEXT, &gen);
    st->c0 = mu_range(&pr, 3, 10);
    st->out = &o[13].got;
    mu_add(&o[13], MU_SLEEP, NULL)->ms = 10;
    mu_add(&o[13], MU_GEN_CLOSE, &gen);
    pr.cleanup_ms = 10;
    mu_op1(&o[14], MU_LOCK, async_condition_lock(&cv)); /* the notifier, started later */
    mu_add(&o[14], MU_NOTIFY, &cv)->n = 1;
    mu_add(&o[14], MU_UNLOCK, async_condition_lock(&cv));
    ASSERT_EQ(async_spawn(loop, &w[2].task), 0);
    for (i = 0; i < 14; i++) ASSERT_EQ(async_spawn(loop, &o[i].task), 0);
    ASSERT_EQ(async_poll(loop), 0);
    /* each waits where it should (checked before any hand step: stepping a task that is not waiting
     * would run it outside the loop) */
    for (i = 0; i < 14; i++) {
        before[i] = async_task_state(&o[i].task);
        ASSERT_STR_EQ(before[i], expected[i]);
    }
    for (i = 0; i < 14; i++) {
        if (i == 3) continue; /* the lock holder, sleeping too */
        ASSERT_EQ(mu_step_by_hand(&o[i].task), ASYNC_PENDING);
        ASSERT_STR_EQ(async_task_state(&o[i].task), before[i]);
        ASSERT(!o[i].reached[i == 5 ? 1 : 0] && o[i].code[i == 5 ? 1 : 0] == 0); /* o[5] waits at step 1 */
    }
    ASSERT_STR_EQ(async_task_state(&o[5].task), "waiting");
    ASSERT(!async_lock_locked(async_condition_lock(&cv))); /* the condition wait let go of it */
    /* at 10 the producer yields 1 and then waits at its yield: step it by hand too */
    mu_run_until(loop, 10);
    ASSERT_EQ(o[13].got, 1);
    ASSERT_STR_EQ(async_task_state(&pr.task), "waiting");
    ASSERT_EQ(mu_step_by_hand(&pr.task), ASYNC_PENDING);
    ASSERT_STR_EQ(async_task_state(&pr.task), "waiting");
    /* at 20 the consumer closes the generator and waits for the producer's 10 ms cleanup */
    mu_run_until(loop, 20);
    ASSERT_EQ(pr.cleaned, 1);
    ASSERT_STR_EQ(async_task_state(&o[13].task), "awaiting children");
    ASSERT_EQ(mu_step_by_hand(&o[13].task), ASYNC_PENDING);
    ASSERT_STR_EQ(async_task_state(&o[13].task), "awaiting children");
    /* now release everything the ordinary way: every wait ends as if the hand steps never happened */
    ASSERT_EQ(async_future_set_value(&fut, 4), 0);
    ASSERT_EQ(async_event_set(&ev), 0);
    ASSERT_EQ(async_semaphore_release(&sem), 0);
    ASSERT_EQ(async_queue_get_nowait(&qfull, &x), 0); /* room for the putter */
    ASSERT_EQ(x, 1);
    ASSERT_EQ(async_queue_put_nowait(&qempty, 5), 0); /* an item for the getter */
    ASSERT_EQ(async_spawn(loop, &o[14].task), 0);
    mu_drain(loop);
    ASSERT_EQ(async_queue_get_nowait(&qfull, &x), 0);
    ASSERT_EQ(x, 2);
    ASSERT_EQ(async_queue_task_done(&qfull), 0);
    ASSERT_EQ(async_queue_task_done(&qfull), 0); /* both items done: the joiner goes */
    mu_drain(loop);
    for (i = 0; i < n; i++) {
        ASSERT_EQ(o[i].code[0], 0);
        ASSERT(o[i].reached[0]);
        ASSERT_EQ(async_task_code(&o[i].task), 0);
    }
    ASSERT(o[5].held[1] && o[5].reached[1]);
    ASSERT_EQ(o[14].rc[1], 1); /* one waiter notified */
    ASSERT_EQ(async_future_value(&fut), 4);
    ASSERT_EQ(o[9].got, 5);
    ASSERT(o[13].reached[2] && async_gen_done(&gen));
    ASSERT_EQ(async_task_code(&pr.task), ASYNC_ECANCELED);
    ASSERT_EQ(async_task_value(&w[0].task) + async_task_value(&w[1].task), 3);
    ASSERT_EQ(async_queue_unfinished(&qfull), 0);
    ASSERT(!async_lock_locked(&lk));
    ASSERT(!async_lock_locked(async_condition_lock(&cv)));
    ASSERT_EQ(async_loop_timers(loop), 0);
    async_loop_free_storage(loop);
    ASSERT_EQ(mu_allocs, 0);
}

/* ================================================================================================ */
/* A cancellation already pending when each kind of await starts                                      */
/* ================================================================================================ */

TEST(misuse_cancel_pending_at_the_start_of_each_await_raises_and_takes_nothing) {
    async_loop *loop = mu_loop();
    static mu_op_frame o, prod;
    static mu_worker_frame run, c[6], spawned;
    static async_future fut;
    static async_group g1, g2, g3, g4;
    static async_timeout tmo;
    static async_lock lk;
    static async_event ev;
    static async_condition cv;
    static async_semaphore sem;
    static async_queue q;
    static intptr_t items[2];
    static async_gen gen, gen2;
    static mu_range_frame pr;
    mu_step *st;
    int i;
    async_event_set(&ev);
    async_condition_init(&cv, NULL);
    async_semaphore_init(&sem, 1, false);
    async_queue_init(&q, ASYNC_QUEUE_FIFO, items, NULL, 2);
    async_queue_put_nowait(&q, 9);
    async_queue_task_done(&q);
    mu_op(&o);
    mu_add(&o, MU_SLEEP, NULL)->ms = 10;
    mu_add(&o, MU_AWAIT, mu_worker(&run, 30, 6));
    mu_add(&o, MU_FUTURE, &fut);
    st = mu_add(&o, MU_GATHER, &g1);
    st->c0 = mu_worker(&c[0], 5, 1);
    st->c1 = mu_worker(&c[1], 5, 1);
    st = mu_add(&o, MU_GATHER_ARRAY, &g2);
    st->c0 = mu_worker(&c[2], 5, 1);
    mu_worker(&c[3], 5, 1);
    st->n = 2;
    st->stride = sizeof c[0];
    mu_add(&o, MU_SPAWN, &g3)->c0 = mu_worker(&spawned, 50, 1); /* not cancelled: starts the child */
    mu_add(&o, MU_GROUP, &g3);                                  /* cancelled: passes it to the child */
    st = mu_add(&o, MU_TIMEOUT, &tmo);
    st->c0 = mu_worker(&c[4], 5, 1);
    st->ms = 100;
    mu_add(&o, MU_SHIELD, &g4)->c0 = mu_worker(&c[5], 5, 1);
    mu_add(&o, MU_LOCK, &lk);
    mu_add(&o, MU_EVENT, &ev);
    mu_add(&o, MU_LOCK, async_condition_lock(&cv)); /* not cancelled: takes the lock */
    mu_add(&o, MU_COND, &cv);
    mu_add(&o, MU_SEM, &sem);
    mu_add(&o, MU_QPUT, &q)->item = 4;
    mu_add(&o, MU_QGET, &q)->out = &o.got;
    ASSERT_EQ(o.nsteps, 16);
    for (i = 0; i < o.nsteps; i++)
        if (i != 5 && i != 11) o.s[i].self_cancel = 1;
    ASSERT_EQ(async_spawn(loop, &run.task), 0);
    ASSERT_EQ(async_spawn(loop, &o.task), 0);
    mu_drain(loop);
    for (i = 0; i < o.nsteps; i++) {
        if (i == 5 || i == 11) {
            ASSERT(o.reached[i] && o.code[i] == 0);
        } else {
            ASSERT_EQ(o.code[i], ASYNC_ECANCELED);
            ASSERT(!o.reached[i]);
        }
    }
    ASSERT_EQ(async_task_code(&o.task), 0); /* every cancellation was caught */
    /* the awaited task was not cancelled with its awaiter: it was never waited for */
    ASSERT_EQ(async_task_code(&run.task), 0);
    ASSERT_EQ(async_task_value(&run.task), 6);
    /* gather, gather array, timeout and shield started no child */
    for (i = 0; i < 6; i++) ASSERT_STR_EQ(async_task_state(&c[i].task), "new");
    ASSERT_EQ(async_group_running(&g1) + async_group_running(&g2) + async_group_running(&g4), 0);
    ASSERT_EQ(async_group_running(&tmo.group), 0);
    /* AWAIT_GROUP passed the cancellation on to the running child and waited for it */
    ASSERT(!spawned.cancelled); /* cancelled before its first step: its body never ran */
    ASSERT_EQ(async_task_code(&spawned.task), ASYNC_ECANCELED);
    ASSERT_EQ(async_group_running(&g3), 0);
    ASSERT_EQ(async_loop_now(loop), 30); /* only `run` took time: nobody waited 50 ms */
    /* nothing was taken: lock free, the condition wait kept the lock, permit, slot and item are there */
    ASSERT(!async_lock_locked(&lk));
    ASSERT(o.held[12]); /* returned holding the condition's lock (then released it) */
    ASSERT(!async_lock_locked(async_condition_lock(&cv)));
    ASSERT_EQ(async_semaphore_value(&sem), 1);
    ASSERT_EQ(async_queue_size(&q), 1);
    ASSERT(!async_queue_full(&q));
    ASSERT_EQ(o.got, 0);
    ASSERT_EQ(async_queue_put_nowait(&q, 5), 0);
    ASSERT(async_queue_full(&q));
    /* join, anext and a producer's yield */
    async_queue_init(&q, ASYNC_QUEUE_FIFO, items, NULL, 2);
    mu_op(&o);
    mu_add(&o, MU_QJOIN, &q)->self_cancel = 1;
    st = mu_add(&o, MU_NEXT, &gen);
    st->self_cancel = 1;
    st->c0 = mu_range(&pr, 2, 0);
    st = mu_add(&o, MU_NEXT, &gen2); /* its producer cancels itself just before it yields */
    st->c0 = mu_op(&prod);
    st->out = &o.got;
    st = mu_add(&prod, MU_YIELD_VALUE, NULL);
    st->self_cancel = 1;
    st->item = 3;
    ASSERT_EQ(async_spawn(loop, &o.task), 0);
    mu_drain(loop);
    ASSERT_EQ(o.code[0], ASYNC_ECANCELED);
    ASSERT_EQ(o.code[1], ASYNC_ECANCELED);
    ASSERT(!async_gen_started(&gen)); /* the producer never started */
    ASSERT_STR_EQ(async_task_state(&pr.task), "new");
    ASSERT_EQ(prod.code[0], ASYNC_ECANCELED); /* raised at its yield, value never handed over */
    ASSERT(o.reached[2] && async_gen_done(&gen2));
    ASSERT_EQ(o.got, 0);
    ASSERT_EQ(async_task_code(&o.task), 0);
    ASSERT_EQ(async_loop_timers(loop), 0);
}

/* ================================================================================================ */
/* Awaits, gathers, groups, timeouts and shields given bad arguments or busy objects                  */
/* ================================================================================================ */

TEST(misuse_await_of_itself_nothing_or_an_inline_running_task) {
    async_loop *loop = mu_loop();
    static mu_op_frame a, b, c, d;
    static mu_worker_frame x, failing;
    static async_task zero;
    mu_op(&c);
    mu_add(&c, MU_AWAIT, &c.task);
    mu_add(&c, MU_AWAIT, &zero);
    mu_add(&c, MU_AWAIT, NULL);
    mu_add(&c, MU_FUTURE, NULL);
    mu_add(&c, MU_THROW_NULL, NULL); /* raising a NULL error record raises EINVAL */
    mu_op1(&a, MU_AWAIT, mu_worker(&x, 100, 7));
    mu_op1(&b, MU_SLEEP, NULL)->ms = 10;
    mu_add(&b, MU_AWAIT, &x.task); /* x runs inline inside a: it is not a task one can await */
    ASSERT_EQ(async_spawn(loop, &c.task), 0);
    ASSERT_EQ(async_spawn(loop, &a.task), 0);
    ASSERT_EQ(async_spawn(loop, &b.task), 0);
    mu_run_until(loop, 20);
    ASSERT_EQ(c.code[0], ASYNC_EINVAL);
    ASSERT_EQ(c.code[1], ASYNC_EINVAL);
    ASSERT_EQ(c.code[2], ASYNC_EINVAL);
    ASSERT_EQ(c.code[3], ASYNC_EINVAL);
    ASSERT_EQ(c.code[4], ASYNC_EINVAL);
    ASSERT_EQ(b.code[1], ASYNC_EBUSY);
    ASSERT(async_task_done(&b.task));
    {   /* c ended after its last catch block: where names the line of that try, in mu_op_run */
        const char *fn = NULL;
        unsigned line = 0;
        ASSERT(async_task_where(&c.task, NULL, &fn, &line));
        ASSERT_STR_EQ(fn, "mu_op_run");
        ASSERT(line > MU_OP_FIRST_LINE && line < MU_OP_LAST_LINE);
    }
    ASSERT_STR_EQ(async_task_state(&x.task), "running"); /* untouched by b */
    ASSERT(async_task_parent(&x.task) == &a.task);
    ASSERT(async_task_loop(&x.task) == loop);
    /* cancelling a coroutine that runs inline cancels the task it is part of */
    ASSERT(async_cancel(&x.task));
    mu_drain(loop);
    ASSERT(x.cancelled);
    ASSERT(async_task_cancelled(&x.task));
    ASSERT_EQ(a.code[0], ASYNC_ECANCELED);
    ASSERT_EQ(a.at[0], 20);
    /* a failed task awaited twice raises its error both times */
    mu_worker(&failing, 5, 0);
    failing.fail = &mu_err_a;
    mu_op1(&d, MU_AWAIT, &failing.task);
    mu_add(&d, MU_AWAIT, &failing.task);
    ASSERT_EQ(async_spawn(loop, &failing.task), 0);
    ASSERT_EQ(async_spawn(loop, &d.task), 0);
    mu_drain(loop);
    ASSERT_EQ(d.code[0], ASYNC_EUSER + 1);
    ASSERT_EQ(d.code[1], ASYNC_EUSER + 1);
    ASSERT_EQ(async_loop_report_errors(loop), 0); /* retrieved by the awaits */
    /* a coroutine that finished inline: awaiting it again, here or elsewhere, gives its outcome */
    {
        static mu_op_frame e, e2;
        static mu_worker_frame y;
        mu_op1(&e, MU_AWAIT, mu_worker(&y, 5, 4));
        mu_add(&e, MU_AWAIT, &y.task);
        mu_op1(&e2, MU_SLEEP, NULL)->ms = 10;
        mu_add(&e2, MU_AWAIT, &y.task);
        mu_add(&e2, MU_AWAIT, &x.task); /* finished cancelled inside a */
        ASSERT_EQ(async_spawn(loop, &e.task), 0);
        ASSERT_EQ(async_spawn(loop, &e2.task), 0);
        mu_drain(loop);
        ASSERT(e.reached[0] && e.reached[1]);
        ASSERT(e2.reached[1]);
        ASSERT_EQ(e2.code[2], ASYNC_ECANCELED);
        ASSERT_EQ(async_task_value(&y.task), 4);
    }
}

TEST(misuse_gather_group_timeout_and_shield_with_bad_arguments_leave_nothing_running) {
    async_loop *loop = mu_loop();
    static mu_op_frame o, p;
    static mu_worker_frame w[8], arr[2], arr2[2], finished;
    static async_task zero;
    static async_group g[8], h, sg;
    static async_timeout tmo;
    mu_step *st;
    int i;
    ASSERT_EQ(async_run(loop, mu_worker(&finished, 0, 1)), 0);
    mu_worker(&arr[0], 5, 1);
    mu_worker(&arr[1], 5, 1);
    mu_worker(&arr2[0], 5, 1);
    ASSERT_EQ(async_run(loop, mu_worker(&arr2[1], 0, 1)), 0); /* the array's second frame has finished */
    mu_op(&o);
    st = mu_add(&o, MU_GATHER, NULL);
    st->c0 = mu_worker(&w[0], 5, 1);
    st->c1 = mu_worker(&w[1], 5, 1);
    st = mu_add(&o, MU_GATHER, &g[0]);
    st->c0 = mu_worker(&w[2], 5, 1); /* started, then cancelled when the NULL child is refused */
    st = mu_add(&o, MU_GATHER, &g[1]);
    st->c0 = &zero;
    st->c1 = mu_worker(&w[3], 5, 1);
    st = mu_add(&o, MU_GATHER, &g[2]);
    st->c0 = &finished.task;
    st = mu_add(&o, MU_GATHER_ARRAY, &g[3]); /* an empty array: nothing to wait for */
    st->c0 = &arr[0].task;
    st = mu_add(&o, MU_GATHER_ARRAY, &g[4]);
    st->n = 2;
    st->stride = sizeof arr[0];
    st = mu_add(&o, MU_GATHER_ARRAY, &g[5]);
    st->c0 = &arr[0].task;
    st->n = 2;
    st->stride = sizeof(async_task) - 1; /* frames cannot overlap */
    st = mu_add(&o, MU_GATHER_ARRAY, NULL);
    st->c0 = &arr[0].task;
    st->n = 2;
    st->stride = sizeof arr[0];
    st = mu_add(&o, MU_GATHER_ARRAY, &g[6]);
    st->c0 = &arr2[0].task;
    st->n = 2;
    st->stride = sizeof arr2[0];
    mu_add(&o, MU_SPAWN, &h); /* no child */
    mu_add(&o, MU_GROUP_SPAWN_API, &h)->c0 = &zero;
    mu_add(&o, MU_GROUP_SPAWN_API, &h)->c0 = &finished.task;
    mu_add(&o, MU_GROUP, NULL);
    mu_add(&o, MU_TIMEOUT, NULL)->c0 = mu_worker(&w[4], 5, 1);
    mu_add(&o, MU_TIMEOUT, &tmo)->ms = 10; /* no child */
    mu_add(&o, MU_SHIELD, &sg);               /* no child */
    ASSERT_EQ(o.nsteps, 16);
    mu_op(&p);
    mu_add(&p, MU_GROUP, &sg); /* the group the failed shield left: nothing in it, nothing raised */
    mu_add(&p, MU_TIMEOUT, &tmo)->c0 = &finished.task;
    ASSERT_EQ(async_spawn(loop, &o.task), 0);
    ASSERT_EQ(async_spawn(loop, &p.task), 0);
    mu_drain(loop);
    for (i = 0; i < 16; i++) {
        if (i == 4 || i == 10 || i == 11) continue;
        ASSERT_EQ(o.code[i], ASYNC_EINVAL);
    }
    ASSERT(o.reached[4]);
    ASSERT_EQ(o.rc[10], ASYNC_EINVAL);
    ASSERT_EQ(o.rc[11], ASYNC_EINVAL);
    ASSERT(o.reached[10] && o.reached[11]);
    ASSERT(p.reached[0] && p.code[0] == 0);
    ASSERT_EQ(p.code[1], ASYNC_EINVAL);
    /* what had started was cancelled before its first step; the rest never started */
    ASSERT_STR_EQ(async_task_state(&w[0].task), "new");
    ASSERT_STR_EQ(async_task_state(&w[1].task), "new");
    ASSERT(async_task_cancelled(&w[2].task) && !w[2].cancelled);
    ASSERT_STR_EQ(async_task_state(&w[3].task), "new");
    ASSERT_STR_EQ(async_task_state(&w[4].task), "new");
    ASSERT_STR_EQ(async_task_state(&arr[0].task), "new");
    ASSERT_STR_EQ(async_task_state(&arr[1].task), "new");
    ASSERT(async_task_cancelled(&arr2[0].task) && !arr2[0].cancelled);
    for (i = 0; i < 7; i++) ASSERT_EQ(async_group_running(&g[i]), 0);
    ASSERT_EQ(async_group_running(&tmo.group), 0);
    ASSERT_EQ(async_task_value(&finished.task), 1); /* a finished child is left as it was */
    ASSERT_EQ(async_loop_now(loop), 0);
    ASSERT_EQ(async_loop_timers(loop), 0);
}

TEST(misuse_busy_groups_and_timeouts_are_ebusy_and_their_children_run_on) {
    async_loop *loop = mu_loop();
    static mu_op_frame p, other;
    static mu_worker_frame k, ga, gb, x, y, extra, work, work2;
    static async_group h, gg;
    static async_timeout tmo;
    mu_step *st;
    mu_op(&p);
    mu_add(&p, MU_SPAWN, &h)->c0 = mu_worker(&k, 50, 1);
    st = mu_add(&p, MU_GATHER, &h); /* h still runs k: a gather cannot take it over */
    st->c0 = mu_worker(&ga, 5, 1);
    st->c1 = mu_worker(&gb, 5, 1);
    st = mu_add(&p, MU_GATHER, &gg);
    st->c0 = mu_worker(&x, 20, 2);
    st->c1 = mu_worker(&y, 20, 3);
    st = mu_add(&p, MU_TIMEOUT, &tmo);
    st->c0 = mu_worker(&work, 20, 4);
    st->ms = 100;
    mu_add(&p, MU_GROUP, &h);
    st = mu_op1(&other, MU_SLEEP, NULL);
    st->ms = 30;
    st = mu_add(&other, MU_TIMEOUT, &tmo); /* p's timeout, in use */
    st->c0 = mu_worker(&work2, 5, 1);
    st->ms = 100;
    mu_add(&other, MU_GROUP_SPAWN_API, &h)->c0 = mu_worker(&extra, 5, 1); /* p's group */
    ASSERT_EQ(async_spawn(loop, &p.task), 0);
    ASSERT_EQ(async_spawn(loop, &other.task), 0);
    mu_run_until(loop, 5);
    ASSERT_EQ(p.code[1], ASYNC_EBUSY);
    ASSERT_STR_EQ(async_task_state(&ga.task), "new");
    ASSERT_STR_EQ(async_task_state(&gb.task), "new");
    ASSERT_EQ(async_group_running(&h), 1); /* k runs on */
    /* p waits in its gather: its own group may not take a spawned child in the middle of it */
    ASSERT_STR_EQ(async_task_state(&p.task), "awaiting children");
    ASSERT_EQ(async_group_spawn(&p.task, &gg, &extra.task), ASYNC_EBUSY);
    ASSERT_EQ(async_group_running(&gg), 2);
    mu_run_until(loop, 25);
    {   /* p is in its wait_for now: the deadline's task is a coroutine of the library */
        const char *file = NULL, *fn = NULL;
        unsigned line = 0;
        ASSERT_STR_EQ(async_task_state(&tmo.timer), "sleeping");
        ASSERT(async_task_where(&tmo.timer, &file, &fn, &line));
        ASSERT_STR_EQ(fn, "async__timeout_run");
        ASSERT(strstr(file, "async.h") != NULL && line > 0);
        ASSERT(async_task_parent(&tmo.timer) == &p.task);
    }
    mu_run_until(loop, 35);
    ASSERT_EQ(other.code[1], ASYNC_EBUSY);
    ASSERT_STR_EQ(async_task_state(&work2.task), "new");
    ASSERT_EQ(other.rc[2], ASYNC_EBUSY); /* a group another task owns */
    ASSERT_STR_EQ(async_task_state(&extra.task), "new");
    mu_drain(loop);
    ASSERT(p.reached[2] && p.reached[3] && p.reached[4]);
    ASSERT_EQ(async_task_value(&k.task), 1);
    ASSERT_EQ(async_task_value(&x.task) + async_task_value(&y.task), 5);
    ASSERT_EQ(async_task_value(&work.task), 4);
    ASSERT_EQ(p.at[3], 40);
    ASSERT_EQ(p.at[4], 50);
    ASSERT_EQ(async_loop_timers(loop), 0);
}

TEST(misuse_task_group_keeps_the_first_error_when_a_cancelled_sibling_fails_too) {
    async_loop *loop = mu_loop();
    static mu_op_frame o;
    static mu_worker_frame a, b;
    static async_group g;
    mu_op(&o);
    mu_add(&o, MU_SPAWN, &g)->c0 = mu_worker(&a, 10, 0);
    a.fail = &mu_err_a;
    mu_add(&o, MU_SPAWN, &g)->c0 = mu_worker(&b, 50, 0);
    b.fail_on_cancel = &mu_err_b; /* cancelled by a's failure, it fails with an error of its own */
    mu_add(&o, MU_GROUP, &g);
    ASSERT_EQ(async_run(loop, &o.task), 0);
    ASSERT_EQ(o.code[2], ASYNC_EUSER + 1);
    ASSERT(async_group_error(&g) == &mu_err_a);
    ASSERT(b.cancelled);
    ASSERT(async_task_error(&b.task) == &mu_err_b); /* still readable on the child */
    ASSERT_EQ(o.at[2], 10);
}

TEST(misuse_finished_child_of_a_running_group_cannot_be_reinitialised) {
    async_loop *loop = mu_loop();
    static mu_op_frame o;
    static mu_worker_frame a, b;
    static async_group g;
    mu_step *st = mu_op1(&o, MU_GATHER, &g);
    st->c0 = mu_worker(&a, 10, 1);
    st->c1 = mu_worker(&b, 30, 2);
    ASSERT_EQ(async_spawn(loop, &o.task), 0);
    mu_run_until(loop, 20);
    ASSERT(async_task_done(&a.task));
    /* a still sits in g's child list while b runs: reusing its frame now would corrupt the list */
    ASSERT(async_task_init(&a.task, mu_worker_run) == NULL);
    ASSERT(!ASYNC_FRAME_INIT(&a, mu_worker_run));
    ASSERT_EQ(async_task_value(&a.task), 1);
    ASSERT_EQ(a.ms, 10);
    mu_drain(loop);
    ASSERT(o.reached[0]);
    ASSERT(ASYNC_FRAME_INIT(&a, mu_worker_run)); /* the group is idle: reusable */
}

TEST(misuse_awaiting_a_group_child_wakes_on_each_sibling_end_and_cancel_passes_on) {
    async_loop *loop = mu_loop();
    static mu_op_frame a, b, c;
    static mu_worker_frame w[3];
    static async_group g;
    int i;
    mu_op(&a);
    for (i = 0; i < 3; i++) mu_add(&a, MU_SPAWN, &g)->c0 = mu_worker(&w[i], i ? 30 : 10, i + 1);
    w[2].swallow_cancel = 1;
    w[2].after_cancel_ms = 10;
    mu_add(&a, MU_GROUP, &g);
    mu_op1(&b, MU_AWAIT, &w[0].task); /* children of a running gather: awaited from outside */
    mu_op1(&c, MU_AWAIT, &w[1].task);
    ASSERT_EQ(async_spawn(loop, &a.task), 0);
    ASSERT_EQ(async_spawn(loop, &b.task), 0);
    ASSERT_EQ(async_spawn(loop, &c.task), 0);
    mu_run_until(loop, 10); /* w0 ends: every waiter of g looks; only b's child is done */
    ASSERT(b.reached[0] && b.at[0] == 10);
    ASSERT_EQ(async_task_value(&w[0].task), 1);
    ASSERT_STR_EQ(async_task_state(&a.task), "awaiting children");
    ASSERT_STR_EQ(async_task_state(&c.task), "waiting");
    mu_run_until(loop, 15);
    /* c cancelled: as for any awaited task (asyncio), the cancellation passes on to the child it
     * awaits, though that child belongs to a's gather, and c waits for it to end */
    ASSERT(async_cancel(&c.task));
    mu_run_until(loop, 20);
    ASSERT_EQ(c.code[0], ASYNC_ECANCELED);
    ASSERT_EQ(c.at[0], 15);
    ASSERT(async_task_cancelled(&w[1].task));
    ASSERT_STR_EQ(async_task_state(&a.task), "awaiting children"); /* a's gather waits for w2 */
    /* a cancelled: w2 is cancelled; a waits on for w2's cleanup */
    ASSERT(async_cancel(&a.task));
    mu_run_until(loop, 25);
    ASSERT(!async_task_done(&a.task));
    mu_drain(loop);
    ASSERT_EQ(a.code[3], ASYNC_ECANCELED);
    ASSERT_EQ(a.at[3], 30);
    ASSERT_EQ(async_task_code(&w[2].task), 0); /* swallowed the cancellation, ended normally */
    ASSERT_EQ(async_task_value(&w[2].task), 3);
    ASSERT_EQ(async_group_running(&g), 0);
}

/* The awaiter waits for the child's end, even when the child swallows the cancellation and cleans up. */
TEST(misuse_awaiter_of_a_group_child_waits_for_the_cancelled_childs_cleanup) {
    async_loop *loop = mu_loop();
    static mu_op_frame a, c;
    static mu_worker_frame w;
    static async_group g;
    mu_op(&a);
    mu_add(&a, MU_SPAWN, &g)->c0 = mu_worker(&w, 30, 7);
    w.swallow_cancel = 1;
    w.after_cancel_ms = 10;
    mu_add(&a, MU_GROUP, &g);
    mu_op1(&c, MU_AWAIT, &w.task);
    ASSERT_EQ(async_spawn(loop, &a.task), 0);
    ASSERT_EQ(async_spawn(loop, &c.task), 0);
    mu_run_until(loop, 5);
    ASSERT(async_cancel(&c.task));
    mu_run_until(loop, 10);
    ASSERT(!async_task_done(&c.task)); /* w cleans up for 10 ms */
    mu_drain(loop);
    ASSERT_EQ(c.code[0], ASYNC_ECANCELED);
    ASSERT_EQ(c.at[0], 15);
    ASSERT_EQ(async_task_value(&w.task), 7); /* swallowed, ended normally */
    ASSERT_EQ(a.code[1], 0);
    ASSERT_EQ(a.at[1], 15);
}

TEST(misuse_shield_returns_the_childs_outcome_and_a_cancel_at_a_later_await_of_its_group) {
    async_loop *loop = mu_loop();
    static mu_op_frame o, s;
    static mu_worker_frame ok, bad, slow;
    static async_group g1, g2, g3;
    mu_op(&o);
    mu_add(&o, MU_SHIELD, &g1)->c0 = mu_worker(&ok, 10, 5);
    mu_add(&o, MU_SHIELD, &g2)->c0 = mu_worker(&bad, 10, 0);
    bad.fail = &mu_err_a;
    ASSERT_EQ(async_run(loop, &o.task), 0);
    ASSERT(o.reached[0] && o.code[0] == 0);
    ASSERT_EQ(async_task_value(&ok.task), 5);
    ASSERT_EQ(o.code[1], ASYNC_EUSER + 1);
    ASSERT_EQ(o.at[1], 20);
    /* cancelled in a shield: raised at once; awaiting its group again with a cancellation pending
     * raises at once too; awaiting it plainly waits for the shielded child */
    loop = mu_loop();
    mu_op(&s);
    mu_add(&s, MU_SHIELD, &g3)->c0 = mu_worker(&slow, 50, 6);
    mu_add(&s, MU_GROUP, &g3)->self_cancel = 1;
    mu_add(&s, MU_GROUP, &g3);
    ASSERT_EQ(async_spawn(loop, &s.task), 0);
    mu_run_until(loop, 10);
    ASSERT(async_cancel(&s.task));
    mu_drain(loop);
    ASSERT_EQ(s.code[0], ASYNC_ECANCELED);
    ASSERT_EQ(s.at[0], 10);
    ASSERT_EQ(s.code[1], ASYNC_ECANCELED);
    ASSERT_EQ(s.at[1], 10);
    ASSERT(s.reached[2] && s.code[2] == 0);
    ASSERT_EQ(s.at[2], 50);
    ASSERT(!slow.cancelled);
    ASSERT_EQ(async_task_value(&slow.task), 6);
}

TEST(misuse_wait_for_whose_deadline_cannot_be_set_is_enomem_not_unbounded) {
    async_loop *loop = mu_loop();
    static mu_worker_frame s[8], gated;
    static mu_op_frame o;
    static async_event never;
    static async_timeout tmo;
    mu_step *st;
    int i;
    for (i = 0; i < 8; i++) ASSERT_EQ(async_spawn(loop, mu_worker(&s[i], 100, i)), 0); /* the inline slots */
    ASSERT_EQ(async_poll(loop), 100);
    mu_fail_all = 1; /* the timer heap cannot grow */
    st = mu_op1(&o, MU_TIMEOUT, &tmo);
    st->c0 = mu_worker(&gated, 0, 1);
    gated.gate = &never; /* would wait forever without its deadline */
    st->ms = 10;
    ASSERT_EQ(async_spawn(loop, &o.task), 0);
    mu_drain(loop);
    ASSERT(async_task_done(&o.task));
    ASSERT_EQ(o.code[0], ASYNC_ENOMEM);
    ASSERT(gated.cancelled);
    ASSERT(async_task_cancelled(&gated.task));
    ASSERT_EQ(o.at[0], 0); /* failed at once, not at the other sleepers' 100 ms */
    for (i = 0; i < 8; i++) ASSERT_EQ(async_task_value(&s[i].task), i);
    ASSERT_EQ(async_group_running(&tmo.group), 0);
    ASSERT_EQ(mu_allocs, 0);
}

TEST(misuse_corrupt_resume_point_in_the_handler_range_fails_with_efault) {
    async_loop *loop = mu_loop();
    static mu_worker_frame a, b, c;
    async_spawn(loop, mu_worker(&a, 10, 1));
    async_spawn(loop, mu_worker(&b, 10, 1));
    async_spawn(loop, mu_worker(&c, 10, 1));
    async_poll(loop);
    a.task.lc = 0x4000; /* a catch label of line 0: no such try */
    b.task.lc = 0xC123; /* an end-of-try label of a try that does not exist */
    c.task.lc = 0x8000; /* a finally label of line 0 */
    mu_drain(loop);
    ASSERT_EQ(async_task_code(&a.task), ASYNC_EFAULT);
    ASSERT_EQ(async_task_code(&b.task), ASYNC_EFAULT);
    ASSERT_EQ(async_task_code(&c.task), ASYNC_EFAULT);
    ASSERT_EQ(async_task_value(&a.task), 0);
}

TEST(misuse_future_reset_between_its_completion_and_the_waiters_run_makes_them_wait_again) {
    async_loop *loop = mu_loop();
    static mu_op_frame o;
    static async_future f;
    mu_op1(&o, MU_FUTURE, &f);
    ASSERT_EQ(async_spawn(loop, &o.task), 0);
    async_poll(loop);
    ASSERT_EQ(async_future_init(&f), ASYNC_EBUSY); /* a task waits on it */
    ASSERT_EQ(async_future_set_value(&f, 1), 0);
    ASSERT_EQ(async_future_init(&f), 0); /* the waiter was woken already, not yet run */
    async_poll(loop);
    ASSERT_STR_EQ(async_task_state(&o.task), "waiting"); /* no result: it waits again */
    ASSERT(!o.reached[0]);
    ASSERT_EQ(async_future_set_value(&f, 2), 0);
    mu_drain(loop);
    ASSERT(o.reached[0] && o.code[0] == 0);
    ASSERT_EQ(async_future_value(&f), 2);
}

/* ================================================================================================ */
/* Locks, events, conditions, semaphores and queues: NULL awaits, busy re-initialisation, hand-overs  */
/* ================================================================================================ */

TEST(misuse_await_of_a_null_or_uninitialised_primitive_is_einval) {
    async_loop *loop = mu_loop();
    static mu_op_frame o;
    static async_queue zero;
    int i;
    mu_op(&o);
    mu_add(&o, MU_LOCK, NULL);
    mu_add(&o, MU_EVENT, NULL);
    mu_add(&o, MU_COND, NULL);
    mu_add(&o, MU_SEM, NULL);
    mu_add(&o, MU_QPUT, NULL)->item = 1;
    mu_add(&o, MU_QPUT, &zero)->item = 1; /* never initialised: no storage, cannot grow */
    mu_add(&o, MU_QGET, NULL);
    mu_add(&o, MU_QJOIN, NULL);
    mu_add(&o, MU_NEXT, NULL);
    mu_add(&o, MU_GEN_CLOSE, NULL);
    mu_add(&o, MU_GEN_THROW, NULL)->err = &mu_err_a;
    ASSERT_EQ(async_run(loop, &o.task), 0);
    for (i = 0; i < o.nsteps; i++) {
        ASSERT_EQ(o.code[i], ASYNC_EINVAL);
        ASSERT(!o.reached[i]);
    }
    ASSERT_EQ(async_queue_size(&zero), 0);
}

TEST(misuse_condition_busy_init_and_a_waiter_cancelled_while_it_reacquires_holds_the_lock) {
    async_loop *loop = mu_loop();
    static mu_op_frame w, n;
    static async_condition cv, cv2;
    static async_lock shared;
    async_lock *l;
    ASSERT_EQ(async_condition_init(&cv, NULL), 0);
    l = async_condition_lock(&cv);
    mu_op1(&w, MU_LOCK, l);
    mu_add(&w, MU_COND, &cv);
    mu_op1(&n, MU_LOCK, l);
    mu_add(&n, MU_NOTIFY, &cv)->n = 1;
    mu_add(&n, MU_SLEEP, NULL)->ms = 10; /* keeps the lock after notifying */
    mu_add(&n, MU_UNLOCK, l);
    ASSERT_EQ(async_spawn(loop, &w.task), 0);
    async_poll(loop);
    ASSERT_STR_EQ(async_task_state(&w.task), "waiting");
    ASSERT_EQ(async_condition_init(&cv, &shared), ASYNC_EBUSY); /* a task waits on it */
    ASSERT(async_condition_lock(&cv) == l);
    ASSERT_EQ(async_spawn(loop, &n.task), 0);
    async_poll(loop); /* n takes the lock, notifies w, sleeps holding it */
    async_poll(loop); /* w, notified, must reacquire the lock first: it waits in the lock's queue */
    ASSERT_EQ(n.rc[1], 1);
    ASSERT(l->holder == &n.task);
    ASSERT_STR_EQ(async_task_state(&w.task), "waiting");
    ASSERT_EQ(async_condition_init(&cv, NULL), ASYNC_EBUSY); /* its lock has a waiter */
    /* cancelled while it waits for the lock: it still returns holding the lock, once n lets go */
    ASSERT(async_cancel(&w.task));
    async_poll(loop);
    ASSERT_STR_EQ(async_task_state(&w.task), "waiting");
    ASSERT(l->holder == &n.task);
    mu_drain(loop);
    ASSERT_EQ(w.code[1], ASYNC_ECANCELED);
    ASSERT(w.held[1]);
    ASSERT_EQ(w.at[1], 10);
    ASSERT(!async_lock_locked(l));
    ASSERT_EQ(n.rc[3], 0);
    /* a condition over a lock that another task waits for is busy too */
    ASSERT_EQ(async_condition_init(&cv2, &shared), 0);
    mu_op1(&w, MU_LOCK, &shared);
    mu_add(&w, MU_SLEEP, NULL)->ms = 10;
    mu_add(&w, MU_UNLOCK, &shared);
    mu_op1(&n, MU_LOCK, &shared);
    mu_add(&n, MU_UNLOCK, &shared);
    ASSERT_EQ(async_spawn(loop, &w.task), 0);
    ASSERT_EQ(async_spawn(loop, &n.task), 0);
    async_poll(loop);
    ASSERT_EQ(async_condition_init(&cv2, &shared), ASYNC_EBUSY);
    mu_drain(loop);
    ASSERT_EQ(async_condition_init(&cv2, &shared), 0);
    ASSERT(n.reached[0] && n.rc[1] == 0);
}

TEST(misuse_semaphore_and_queue_init_while_tasks_wait_is_ebusy) {
    async_loop *loop = mu_loop();
    static mu_op_frame s, g, p, j;
    static async_semaphore sem;
    static async_queue q;
    static intptr_t items[1];
    intptr_t x = 0;
    ASSERT_EQ(async_semaphore_init(&sem, 0, true), 0);
    mu_op1(&s, MU_SEM, &sem);
    ASSERT_EQ(async_spawn(loop, &s.task), 0);
    async_poll(loop);
    ASSERT_EQ(async_semaphore_init(&sem, 3, false), ASYNC_EBUSY);
    ASSERT_EQ(async_semaphore_value(&sem), 0);
    ASSERT_EQ(async_semaphore_release(&sem), 0); /* to the waiter, not to the count */
    mu_drain(loop);
    ASSERT(s.reached[0]);
    ASSERT_EQ(async_semaphore_value(&sem), 0);
    ASSERT_EQ(async_semaphore_init(&sem, 3, false), 0);
    /* a getter, a putter, a joiner: each makes the queue busy */
    ASSERT_EQ(async_queue_init(&q, ASYNC_QUEUE_FIFO, items, NULL, 1), 0);
    mu_op1(&g, MU_QGET, &q)->out = &g.got;
    ASSERT_EQ(async_spawn(loop, &g.task), 0);
    async_poll(loop);
    ASSERT_EQ(async_queue_init(&q, ASYNC_QUEUE_LIFO, items, NULL, 1), ASYNC_EBUSY);
    ASSERT_EQ(async_queue_init_growing(&q, ASYNC_QUEUE_LIFO, 0, mu_queue_realloc), ASYNC_EBUSY);
    ASSERT_EQ(async_queue_put_nowait(&q, 7), 0);
    mu_drain(loop);
    ASSERT_EQ(g.got, 7);
    ASSERT_EQ(async_queue_put_nowait(&q, 8), 0);
    mu_op1(&p, MU_QPUT, &q)->item = 9;
    mu_op1(&j, MU_QJOIN, &q);
    ASSERT_EQ(async_spawn(loop, &p.task), 0);
    ASSERT_EQ(async_spawn(loop, &j.task), 0);
    async_poll(loop);
    ASSERT_EQ(async_queue_init(&q, ASYNC_QUEUE_FIFO, items, NULL, 1), ASYNC_EBUSY);
    ASSERT_EQ(async_queue_init_growing(&q, ASYNC_QUEUE_FIFO, 0, mu_queue_realloc), ASYNC_EBUSY);
    ASSERT_EQ(async_queue_get_nowait(&q, &x), 0);
    ASSERT_EQ(x, 8);
    mu_drain(loop); /* the putter puts 9; the joiner still waits for three task_done */
    ASSERT(p.reached[0]);
    ASSERT_EQ(async_queue_get_nowait(&q, &x), 0);
    ASSERT_EQ(x, 9);
    ASSERT_EQ(async_queue_init(&q, ASYNC_QUEUE_FIFO, items, NULL, 1), ASYNC_EBUSY); /* the joiner */
    ASSERT_EQ(async_queue_init_growing(&q, ASYNC_QUEUE_FIFO, 0, mu_queue_realloc), ASYNC_EBUSY);
    ASSERT_EQ(async_queue_unfinished(&q), 3);
    ASSERT_EQ(async_queue_task_done(&q), 0);
    ASSERT_EQ(async_queue_task_done(&q), 0);
    ASSERT_EQ(async_queue_task_done(&q), 0);
    ASSERT_EQ(async_queue_task_done(&q), ASYNC_ERANGE);
    mu_drain(loop);
    ASSERT(j.reached[0]);
    ASSERT_EQ(async_queue_init(&q, ASYNC_QUEUE_FIFO, items, NULL, 1), 0);
}

TEST(misuse_growing_queue_that_cannot_grow_fails_the_put_and_loses_nothing) {
    async_loop *loop = mu_loop();
    static mu_op_frame o;
    static async_queue q, pq;
    intptr_t i, x;
    ASSERT_EQ(async_queue_init_growing(&q, ASYNC_QUEUE_FIFO, 10, mu_queue_realloc), 0);
    for (i = 0; i < 8; i++) ASSERT_EQ(async_queue_put_nowait(&q, i), 0); /* 8 slots: below maxsize */
    mu_fail_all = 1;
    ASSERT_EQ(async_queue_put_nowait(&q, 8), ASYNC_ENOMEM);
    mu_op1(&o, MU_QPUT, &q)->item = 8; /* a put that may go on at once, then cannot store */
    ASSERT_EQ(async_run(loop, &o.task), 0);
    ASSERT_EQ(o.code[0], ASYNC_ENOMEM);
    ASSERT_EQ(async_queue_size(&q), 8);
    ASSERT_EQ(async_queue_unfinished(&q), 8);
    ASSERT(!async_queue_full(&q)); /* the slot the put had reserved is free again */
    mu_fail_all = 0;
    ASSERT_EQ(async_queue_put_nowait(&q, 8), 0); /* grows to maxsize, not to 16 */
    ASSERT_EQ(async_queue_put_nowait(&q, 9), 0);
    ASSERT(async_queue_full(&q));
    ASSERT_EQ(async_queue_put_nowait(&q, 10), ASYNC_EAGAIN);
    for (i = 0; i < 10; i++) {
        ASSERT_EQ(async_queue_get_nowait(&q, &x), 0);
        ASSERT_EQ(x, i);
    }
    ASSERT_EQ(async_queue_free_storage(&q), 0);
    /* a priority queue grows two arrays: the second one failing leaves the first harmlessly larger */
    ASSERT_EQ(async_queue_init_growing(&pq, ASYNC_QUEUE_PRIORITY, 0, mu_queue_realloc), 0);
    mu_calls = 0;
    mu_fail_at = 2;
    ASSERT_EQ(async_queue_put_nowait(&pq, 5), ASYNC_ENOMEM);
    ASSERT_EQ(async_queue_size(&pq), 0);
    ASSERT_EQ(async_queue_unfinished(&pq), 0);
    ASSERT_EQ(async_queue_put_nowait(&pq, 5), 0);
    ASSERT_EQ(async_queue_put_nowait(&pq, 3), 0);
    ASSERT_EQ(async_queue_put_nowait(&pq, 4), 0);
    ASSERT_EQ(async_queue_get_nowait(&pq, &x), 0);
    ASSERT_EQ(x, 3);
    ASSERT_EQ(async_queue_get_nowait(&pq, &x), 0);
    ASSERT_EQ(x, 4);
    ASSERT_EQ(async_queue_get_nowait(&pq, &x), 0);
    ASSERT_EQ(x, 5);
    ASSERT_EQ(async_queue_free_storage(&pq), 0);
    ASSERT_EQ(mu_allocs, 0);
}

TEST(misuse_growing_queue_storage_is_not_freed_under_waiting_or_granted_tasks) {
    async_loop *loop = mu_loop();
    static mu_op_frame g, p, j;
    static async_queue q;
    intptr_t x;
    ASSERT_EQ(async_queue_init_growing(&q, ASYNC_QUEUE_FIFO, 1, mu_queue_realloc), 0);
    mu_op1(&g, MU_QGET, &q)->out = &g.got;
    ASSERT_EQ(async_spawn(loop, &g.task), 0);
    async_poll(loop);
    ASSERT_EQ(async_queue_free_storage(&q), ASYNC_EBUSY); /* a getter waits */
    ASSERT_EQ(async_queue_put_nowait(&q, 5), 0);           /* handed to it; it has not run yet */
    ASSERT_EQ(async_queue_free_storage(&q), ASYNC_EBUSY); /* freeing now would pull its item from NULL */
    mu_drain(loop);
    ASSERT_EQ(g.got, 5);
    ASSERT_EQ(async_queue_put_nowait(&q, 6), 0);
    mu_op1(&p, MU_QPUT, &q)->item = 7; /* the queue is full: waits */
    mu_op1(&j, MU_QJOIN, &q);
    ASSERT_EQ(async_spawn(loop, &p.task), 0);
    async_poll(loop);
    ASSERT_EQ(async_queue_free_storage(&q), ASYNC_EBUSY); /* a putter waits */
    ASSERT_EQ(async_queue_get_nowait(&q, &x), 0);          /* its slot is handed over */
    ASSERT_EQ(x, 6);
    ASSERT_EQ(async_queue_free_storage(&q), ASYNC_EBUSY);
    mu_drain(loop);
    ASSERT(p.reached[0]);
    ASSERT_EQ(async_spawn(loop, &j.task), 0);
    async_poll(loop);
    ASSERT_EQ(async_queue_free_storage(&q), ASYNC_EBUSY); /* a joiner waits */
    ASSERT_EQ(async_queue_size(&q), 1);                   /* nothing was dropped meanwhile */
    ASSERT_EQ(async_queue_get_nowait(&q, &x), 0);
    ASSERT_EQ(x, 7);
    ASSERT_EQ(async_queue_task_done(&q), 0);
    ASSERT_EQ(async_queue_task_done(&q), 0);
    ASSERT_EQ(async_queue_task_done(&q), 0);
    mu_drain(loop);
    ASSERT(j.reached[0]);
    ASSERT_EQ(mu_allocs, 1);
    ASSERT_EQ(async_queue_free_storage(&q), 0);
    ASSERT_EQ(mu_allocs, 0);
}

TEST(misuse_queue_slot_granted_then_cancelled_or_shut_down_is_not_lost) {
    async_loop *loop = mu_loop();
    static mu_op_frame p1, p2, p3, g;
    static async_queue q;
    static intptr_t items[1];
    intptr_t x;
    ASSERT_EQ(async_queue_init(&q, ASYNC_QUEUE_FIFO, items, NULL, 1), 0);
    ASSERT_EQ(async_queue_put_nowait(&q, 1), 0);
    mu_op1(&p1, MU_QPUT, &q)->item = 2;
    mu_op1(&p2, MU_QPUT, &q)->item = 3;
    ASSERT_EQ(async_spawn(loop, &p1.task), 0);
    ASSERT_EQ(async_spawn(loop, &p2.task), 0);
    async_poll(loop);
    ASSERT_EQ(async_queue_get_nowait(&q, &x), 0); /* the free slot is handed to p1 */
    ASSERT_EQ(x, 1);
    ASSERT(async_queue_full(&q));                  /* reserved for p1: a newcomer cannot take it */
    ASSERT_EQ(async_queue_put_nowait(&q, 99), ASYNC_EAGAIN);
    ASSERT(async_cancel(&p1.task));                /* before p1 could use it: it passes to p2 */
    mu_drain(loop);
    ASSERT_EQ(p1.code[0], ASYNC_ECANCELED);
    ASSERT(p2.reached[0]);
    ASSERT_EQ(async_queue_get_nowait(&q, &x), 0);
    ASSERT_EQ(x, 3);
    /* a slot granted to a putter that runs only after a shutdown: ESHUTDOWN, the slot is freed */
    ASSERT_EQ(async_queue_put_nowait(&q, 4), 0);
    mu_op1(&p3, MU_QPUT, &q)->item = 5;
    ASSERT_EQ(async_spawn(loop, &p3.task), 0);
    async_poll(loop);
    ASSERT_EQ(async_queue_get_nowait(&q, &x), 0);
    ASSERT_EQ(x, 4);
    ASSERT_EQ(async_queue_shutdown(&q, false), 0);
    mu_drain(loop);
    ASSERT_EQ(p3.code[0], ASYNC_ESHUTDOWN);
    ASSERT_EQ(async_queue_size(&q), 0);
    ASSERT(!async_queue_full(&q));
    ASSERT_EQ(async_queue_put_nowait(&q, 6), ASYNC_ESHUTDOWN);
    /* a getter woken by the shutdown of an empty queue: ESHUTDOWN, not an item */
    ASSERT_EQ(async_queue_init(&q, ASYNC_QUEUE_FIFO, items, NULL, 1), 0);
    mu_op1(&g, MU_QGET, &q)->out = &g.got;
    g.got = -1;
    ASSERT_EQ(async_spawn(loop, &g.task), 0);
    async_poll(loop);
    ASSERT_EQ(async_queue_shutdown(&q, false), 0);
    mu_drain(loop);
    ASSERT_EQ(g.code[0], ASYNC_ESHUTDOWN);
    ASSERT_EQ(g.got, -1);
}

TEST(misuse_immediate_shutdown_keeps_reserved_items_and_counts_unfinished_right) {
    async_loop *loop = mu_loop();
    static mu_op_frame g, j, n;
    static async_queue q;
    static intptr_t items[4];
    intptr_t x;
    ASSERT_EQ(async_queue_init(&q, ASYNC_QUEUE_FIFO, items, NULL, 4), 0);
    mu_op1(&g, MU_QGET, &q)->out = &g.got;
    ASSERT_EQ(async_spawn(loop, &g.task), 0);
    async_poll(loop);
    ASSERT_EQ(async_queue_put_nowait(&q, 5), 0); /* handed to the waiting getter, which has not run */
    ASSERT_EQ(async_queue_put_nowait(&q, 6), 0);
    ASSERT_EQ(async_queue_put_nowait(&q, 7), 0);
    mu_op1(&j, MU_QJOIN, &q);
    ASSERT_EQ(async_spawn(loop, &j.task), 0);
    ASSERT_EQ(async_queue_shutdown(&q, true), 0); /* drops 6 and 7, keeps the getter's 5 */
    ASSERT_EQ(async_queue_size(&q), 1);
    ASSERT_EQ(async_queue_unfinished(&q), 1);
    mu_drain(loop);
    ASSERT(g.reached[0]);
    ASSERT_EQ(g.got, 5);
    ASSERT_STR_EQ(async_task_state(&j.task), "waiting"); /* 5 is not done yet */
    ASSERT_EQ(async_queue_task_done(&q), 0);
    mu_drain(loop);
    ASSERT(j.reached[0]);
    ASSERT_EQ(async_queue_get_nowait(&q, &x), ASYNC_ESHUTDOWN);
    /* task_done called ahead of the gets: dropping the items cannot make unfinished wrap */
    ASSERT_EQ(async_queue_init(&q, ASYNC_QUEUE_FIFO, items, NULL, 4), 0);
    ASSERT_EQ(async_queue_put_nowait(&q, 1), 0);
    ASSERT_EQ(async_queue_put_nowait(&q, 2), 0);
    ASSERT_EQ(async_queue_task_done(&q), 0);
    ASSERT_EQ(async_queue_task_done(&q), 0);
    ASSERT_EQ(async_queue_shutdown(&q, true), 0);
    ASSERT_EQ(async_queue_unfinished(&q), 0);
    ASSERT_EQ(async_queue_size(&q), 0);
    /* a get that throws the item away */
    ASSERT_EQ(async_queue_init(&q, ASYNC_QUEUE_LIFO, items, NULL, 4), 0);
    ASSERT_EQ(async_queue_put_nowait(&q, 1), 0);
    ASSERT_EQ(async_queue_put_nowait(&q, 2), 0);
    mu_op1(&n, MU_QGET, &q); /* out NULL */
    ASSERT_EQ(async_run(loop, &n.task), 0);
    ASSERT(n.reached[0]);
    ASSERT_EQ(async_queue_size(&q), 1);
    ASSERT_EQ(async_queue_get_nowait(&q, &x), 0);
    ASSERT_EQ(x, 1);
}

/* ================================================================================================ */
/* Async generators                                                                                   */
/* ================================================================================================ */

TEST(misuse_generator_thrown_into_or_closed_before_it_starts_never_runs_the_producer) {
    async_loop *loop = mu_loop();
    static mu_op_frame o;
    static async_gen g1, g2, g3;
    static mu_range_frame p1, p2, p3;
    mu_step *st;
    mu_op(&o);
    st = mu_add(&o, MU_NEXT, &g1); /* no producer to start */
    st->out = &o.got;
    st = mu_add(&o, MU_GEN_THROW, &g2);
    st->err = &mu_err_a;
    st->out = &o.got;
    st = mu_add(&o, MU_NEXT, &g2); /* finished by the throw: returns at once, done */
    st->c0 = mu_range(&p2, 3, 0);
    st->out = &o.got;
    mu_add(&o, MU_GEN_CLOSE, &g3);
    st = mu_add(&o, MU_NEXT, &g3);
    st->c0 = mu_range(&p3, 3, 0);
    st->out = &o.got;
    st = mu_add(&o, MU_NEXT, &g1); /* g1 was left untouched: it still works */
    st->c0 = mu_range(&p1, 2, 0);
    st->out = &o.got;
    o.got = -7;
    ASSERT_EQ(async_run(loop, &o.task), 0);
    ASSERT_EQ(o.code[0], ASYNC_EINVAL);
    ASSERT_EQ(o.code[1], ASYNC_EUSER + 1); /* athrow before anext raises the error right back */
    ASSERT(o.reached[2]);
    ASSERT(async_gen_started(&g2) && async_gen_done(&g2));
    ASSERT_STR_EQ(async_task_state(&p2.task), "new");
    ASSERT(o.reached[3] && o.reached[4]);
    ASSERT(async_gen_started(&g3) && async_gen_done(&g3));
    ASSERT_STR_EQ(async_task_state(&p3.task), "new");
    ASSERT(o.reached[5]);
    ASSERT_EQ(o.got, 1); /* only g1's first value ever arrived */
}

TEST(misuse_generator_second_consumer_is_ebusy_and_values_may_be_dropped) {
    async_loop *loop = mu_loop();
    static mu_op_frame a, b;
    static async_gen g;
    static mu_range_frame p;
    mu_step *st;
    mu_op(&a);
    st = mu_add(&a, MU_NEXT, &g);
    st->c0 = mu_range(&p, 3, 10);
    st->out = &a.got;
    mu_add(&a, MU_NEXT, &g); /* value 2, not wanted: out NULL */
    mu_add(&a, MU_NEXT, &g)->out = &a.got;
    mu_add(&a, MU_GEN_CLOSE, &g);
    mu_op1(&b, MU_SLEEP, NULL)->ms = 5;
    mu_add(&b, MU_NEXT, &g)->out = &b.got; /* a already waits for the next value */
    b.got = -1;
    ASSERT_EQ(async_spawn(loop, &a.task), 0);
    ASSERT_EQ(async_spawn(loop, &b.task), 0);
    mu_drain(loop);
    ASSERT_EQ(b.code[1], ASYNC_EBUSY);
    ASSERT_EQ(b.got, -1);
    ASSERT(a.reached[0] && a.reached[1] && a.reached[2] && a.reached[3]);
    ASSERT_EQ(a.got, 3);
    ASSERT_EQ(p.cleaned, 1);
    ASSERT_EQ(async_task_code(&p.task), ASYNC_ECANCELED);
}

TEST(misuse_generator_close_raises_the_cleanups_error_and_stops_a_producer_that_yields_again) {
    async_loop *loop = mu_loop();
    static mu_op_frame a, b;
    static async_gen g, h;
    static mu_range_frame p, q;
    mu_step *st;
    mu_op(&a);
    st = mu_add(&a, MU_NEXT, &g);
    st->c0 = mu_range(&p, 3, 0);
    st->out = &a.got;
    mu_add(&a, MU_GEN_CLOSE, &g);
    p.cleanup_error = &mu_err_c;
    ASSERT_EQ(async_run(loop, &a.task), 0);
    ASSERT_EQ(a.got, 1);
    ASSERT_EQ(a.code[1], ASYNC_EUSER + 3);
    ASSERT(async_gen_done(&g));
    ASSERT_EQ(p.cleaned, 1);
    /* a producer whose cleanup yields once more: the close cancels it again instead of waiting for a
     * consumer that will never ask (asyncio: "async generator ignored GeneratorExit") */
    mu_op(&b);
    st = mu_add(&b, MU_NEXT, &h);
    st->c0 = mu_range(&q, 3, 0);
    st->out = &b.got;
    mu_add(&b, MU_GEN_CLOSE, &h);
    q.yield_in_cleanup = 1;
    q.cleanup_ms = 5;
    ASSERT_EQ(async_run(loop, &b.task), 0);
    ASSERT_EQ(b.got, 1);
    ASSERT(b.reached[1]);
    ASSERT_EQ(b.code[1], 0);
    ASSERT_EQ(q.cleanup_code, ASYNC_ECANCELED);
    ASSERT_EQ(async_task_code(&q.task), ASYNC_ECANCELED);
    ASSERT(async_gen_done(&h));
    ASSERT_EQ(async_loop_timers(loop), 0);
}

/* A gather child that tries to yield: it is not a generator's producer. */
TEST(misuse_yield_value_in_a_gather_child_is_einval) {
    async_loop *loop = mu_loop();
    static mu_op_frame o, c0, c1;
    mu_step *st = mu_op1(&o, MU_GATHER, NULL);
    static async_group g;
    st->a = &g;
    st->c0 = mu_op(&c0);
    st->c1 = mu_op(&c1);
    mu_add(&c0, MU_YIELD_VALUE, NULL)->item = 1;
    mu_add(&c1, MU_SLEEP, NULL)->ms = 1;
    ASSERT_EQ(async_run(loop, &o.task), 0);
    ASSERT(o.reached[0]);
    ASSERT_EQ(c0.code[0], ASYNC_EINVAL);
    ASSERT(c1.reached[0]);
}

/* ================================================================================================ */
/* Timer storage, hooks, async_run's ways of waiting, signals                                         */
/* ================================================================================================ */

TEST(misuse_ninth_sleeper_without_memory_gets_enomem_and_the_others_sleep_on) {
    async_loop *loop = mu_loop();
    static mu_op_frame o[9];
    int i;
    mu_fail_all = 1; /* neither the FIFO lane nor the heap can grow past the inline slots */
    for (i = 0; i < 9; i++) {
        mu_op1(&o[i], MU_SLEEP, NULL)->ms = 100 - i;
        ASSERT_EQ(async_spawn(loop, &o[i].task), 0);
    }
    mu_drain(loop);
    for (i = 0; i < 8; i++) {
        ASSERT(o[i].reached[0]);
        ASSERT_EQ(o[i].at[0], 100 - i);
    }
    ASSERT_EQ(o[8].code[0], ASYNC_ENOMEM);
    ASSERT_EQ(o[8].at[0], 0);
    ASSERT_EQ(async_loop_timers(loop), 0);
    ASSERT_EQ(mu_allocs, 0);
}

TEST(misuse_timer_storage_is_left_alone_once_the_allocator_was_removed) {
    async_loop *loop = mu_loop();
    static mu_op_frame o[20];
    void *heap, *lane;
    int i;
    for (i = 0; i < 20; i++) {
        mu_op1(&o[i], MU_SLEEP, NULL)->ms = 100 - i; /* out of order: the heap grows; the lane too */
        ASSERT_EQ(async_spawn(loop, &o[i].task), 0);
    }
    async_poll(loop);
    ASSERT_EQ(async_loop_timers(loop), 20);
    ASSERT_EQ(mu_allocs, 2);
    mu_drain(loop);
    for (i = 0; i < 20; i++) ASSERT_EQ(o[i].at[0], 100 - i);
    heap = loop->timers;
    lane = loop->fifo;
    async_loop_set_allocator(loop, NULL, NULL);
    async_loop_free_storage(loop); /* no allocator to free with: the blocks are the caller's now */
    ASSERT_EQ(mu_allocs, 2);
    ASSERT(loop->timers == loop->inline_timers && loop->fifo == NULL);
    for (i = 0; i < 9; i++) { /* back to the inline slots, with no way to grow */
        mu_op1(&o[i], MU_SLEEP, NULL)->ms = 10 + i;
        ASSERT_EQ(async_spawn(loop, &o[i].task), 0);
    }
    mu_drain(loop);
    for (i = 0; i < 8; i++) ASSERT(o[i].reached[0]);
    ASSERT_EQ(o[8].code[0], ASYNC_ENOMEM);
    mu_realloc_impl(heap, 0);
    mu_realloc_impl(lane, 0);
    ASSERT_EQ(mu_allocs, 0);
}

static int mu_n_begin, mu_n_end, mu_n_done, mu_n_inline;
static void mu_h_begin(async_loop *l, async_task *t) {
    (void)l;
    (void)t;
    mu_n_begin++;
}
static void mu_h_end(async_loop *l, async_task *t) {
    (void)l;
    (void)t;
    mu_n_end++;
}
static void mu_h_done(async_loop *l, async_task *t) {
    (void)l;
    (void)t;
    mu_n_done++;
}
static void mu_h_inline(async_loop *l, async_task *p, async_task *c) {
    (void)l;
    (void)p;
    (void)c;
    mu_n_inline++;
}

TEST(misuse_hooks_with_missing_members_are_skipped) {
    static const async_loop_hooks done_only = {NULL, NULL, mu_h_done, NULL};
    static const async_loop_hooks steps_only = {mu_h_begin, mu_h_end, NULL, mu_h_inline};
    static mu_op_frame o;
    static mu_worker_frame w;
    static int ctx;
    async_loop *loop = mu_loop();
    async_loop_set_hooks(loop, &done_only, &ctx);
    ASSERT(async_loop_hooks_ctx(loop) == &ctx);
    mu_op1(&o, MU_AWAIT, mu_worker(&w, 5, 2));
    ASSERT_EQ(async_run(loop, &o.task), 0);
    ASSERT_EQ(mu_n_done, 2); /* the inline child and the task */
    ASSERT_EQ(mu_n_begin + mu_n_end + mu_n_inline, 0);
    loop = mu_loop();
    async_loop_set_hooks(loop, &steps_only, NULL);
    mu_op1(&o, MU_AWAIT, mu_worker(&w, 5, 2));
    ASSERT_EQ(async_run(loop, &o.task), 0);
    ASSERT_EQ(mu_n_begin, (int)loop->steps);
    ASSERT_EQ(mu_n_end, (int)loop->steps);
    ASSERT_EQ(mu_n_inline, 1);
    ASSERT_EQ(mu_n_done, 2);
    ASSERT_EQ(async_task_value(&w.task), 2);
}

static async_ms mu_clock_now;
static int mu_waits, mu_clock_reads;
static async_ms mu_clock(async_loop *l) {
    (void)l;
    mu_clock_reads++;
    return mu_clock_now;
}
static async_ms mu_ticking_clock(async_loop *l) { /* a real clock: 1 ms passes between two looks */
    (void)l;
    return ++mu_clock_now;
}
static bool mu_wait_says_nothing_wakes(async_loop *l, int32_t ms) {
    (void)l;
    mu_waits++;
    if (ms > 0) mu_clock_now += (async_ms)ms; /* it did sleep that long */
    return false;
}

TEST(misuse_run_with_a_wait_that_finds_no_waker_still_runs_the_timers) {
    async_loop *loop = mu_loop();
    static mu_op_frame o, m;
    static async_future never;
    mu_clock_now = 1000;
    async_loop_set_clock(loop, mu_clock);
    async_loop_set_wait(loop, mu_wait_says_nothing_wakes);
    ASSERT_EQ(async_loop_now(loop), 1000);
    mu_clock_now = 1005;
    ASSERT_EQ(async_loop_time(loop), 1005); /* reads the clock */
    mu_op1(&o, MU_SLEEP, NULL)->ms = 30;
    mu_add(&o, MU_SLEEP, NULL)->ms = 20;
    ASSERT_EQ(async_run(loop, &o.task), 0); /* a timer is set: the loop goes on despite wait's false */
    ASSERT_EQ(o.at[0], 1035);
    ASSERT_EQ(o.at[1], 1055);
    ASSERT(mu_waits >= 2);
    /* no timer and nothing to wake main: a deadlock, found by wait's false */
    mu_op1(&m, MU_FUTURE, &never);
    ASSERT_EQ(async_run(loop, &m.task), ASYNC_EDEADLK);
    ASSERT_EQ(m.code[0], ASYNC_ECANCELED);
    ASSERT(mu_clock_reads > 0);
}

TEST(misuse_run_on_a_real_clock_without_wait_polls_until_the_deadline) {
    async_loop *loop = mu_loop();
    static mu_op_frame o;
    mu_clock_now = 0;
    async_loop_set_clock(loop, mu_ticking_clock);
    mu_op1(&o, MU_SLEEP, NULL)->ms = 5;
    ASSERT_EQ(async_run(loop, &o.task), 0);
    ASSERT(o.reached[0]);
    ASSERT((int32_t)(o.at[0] - 6) >= 0); /* started at 1 or later, woke 5 ms after */
    ASSERT(o.at[0] < 20);
}

TEST(misuse_run_of_a_busy_task_or_of_a_main_that_ignores_its_deadlock_cancel) {
    async_loop *loop = mu_loop();
    static mu_op_frame m;
    static mu_worker_frame w;
    static async_future never;
    ASSERT_EQ(async_spawn(loop, mu_worker(&w, 10, 1)), 0);
    ASSERT_EQ(async_run(loop, &w.task), ASYNC_EBUSY); /* already spawned */
    mu_drain(loop);
    ASSERT_EQ(async_task_value(&w.task), 1);
    /* main catches the cancellation that reports the deadlock and waits again: run gives up */
    mu_op1(&m, MU_FUTURE, &never);
    mu_add(&m, MU_FUTURE, &never);
    ASSERT_EQ(async_run(loop, &m.task), ASYNC_EDEADLK);
    ASSERT_EQ(m.code[0], ASYNC_ECANCELED);
    ASSERT(!async_task_done(&m.task));
    ASSERT_STR_EQ(async_task_state(&m.task), "waiting");
    ASSERT_EQ(async_task_code(&m.task), ASYNC_EINPROGRESS);
    /* it is still a waiter of the future: completing it lets main finish */
    ASSERT_EQ(async_future_set_value(&never, 1), 0);
    mu_drain(loop);
    ASSERT(m.reached[1]);
    ASSERT_EQ(async_task_code(&m.task), 0);
}

TEST(misuse_signal_misuse_codes_and_close_after_the_loop_was_reinitialised) {
    async_loop *loop = mu_loop();
    static async_signal s, s2, s3;
    ASSERT_EQ(async_signal_init(NULL, loop), ASYNC_EINVAL);
    ASSERT_EQ(async_signal_init(&s, NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_signal_raise(&s, 1), ASYNC_ESHUTDOWN); /* never registered */
    ASSERT_EQ(async_signal_raise(NULL, 1), ASYNC_EINVAL);
    ASSERT_EQ(async_signal_raise_error(&s, NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_signal_reset(NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_signal_reset(&s), ASYNC_ESHUTDOWN);
    ASSERT_EQ(async_signal_close(NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_signal_close(&s), ASYNC_ESHUTDOWN);
    ASSERT_EQ(async_signal_init(&s, loop), 0);
    ASSERT_EQ(async_signal_init(&s, loop), ASYNC_EBUSY);
    ASSERT_EQ(async_signal_init(&s2, loop), 0);
    ASSERT_EQ(async_signal_init(&s3, loop), 0);
    ASSERT_EQ(async_signal_close(&s), 0); /* the last of the list */
    ASSERT(async_loop_has_signals(loop));
    ASSERT_EQ(async_signal_raise(&s2, 4), 0);
    ASSERT(async_loop_signalled(loop));
    /* the loop initialised again with signals still registered (the header says: close them first) */
    async_loop_init(loop);
    ASSERT(!async_loop_has_signals(loop));
    ASSERT_EQ(async_signal_close(&s2), 0); /* no longer in the loop's list: nothing to unlink */
    ASSERT_EQ(async_signal_close(&s3), 0);
    ASSERT_EQ(async_signal_raise(&s2, 5), ASYNC_ESHUTDOWN);
    ASSERT(!async_loop_has_signals(loop));
    ASSERT_EQ(async_poll(loop), -1);
}

/* ================================================================================================ */
/* More cancellations at waits: the tail of a wait queue, grants not yet used, joins, generators      */
/* ================================================================================================ */

TEST(misuse_cancelled_waiters_leave_queues_and_pass_on_what_they_were_granted) {
    async_loop *loop = mu_loop();
    static mu_op_frame a, b, c, s1, s2, p, g1, g2, j;
    static async_lock lk;
    static async_semaphore sem;
    static async_queue q, q2;
    static intptr_t items[1], items2[1];
    intptr_t x;
    /* the last of three lock waiters leaves */
    mu_op1(&a, MU_LOCK, &lk);
    mu_add(&a, MU_SLEEP, NULL)->ms = 10;
    mu_add(&a, MU_UNLOCK, &lk);
    mu_op1(&b, MU_LOCK, &lk);
    mu_add(&b, MU_UNLOCK, &lk);
    mu_op1(&c, MU_LOCK, &lk);
    async_spawn(loop, &a.task);
    async_spawn(loop, &b.task);
    async_spawn(loop, &c.task);
    async_poll(loop);
    ASSERT(async_cancel(&c.task));
    mu_drain(loop);
    ASSERT_EQ(c.code[0], ASYNC_ECANCELED);
    ASSERT(b.reached[0] && b.at[0] == 10 && b.rc[1] == 0);
    ASSERT(!async_lock_locked(&lk));
    /* a permit granted to a waiter cancelled before it ran goes to the next waiter */
    async_semaphore_init(&sem, 0, false);
    mu_op1(&s1, MU_SEM, &sem);
    mu_op1(&s2, MU_SEM, &sem);
    async_spawn(loop, &s1.task);
    async_spawn(loop, &s2.task);
    async_poll(loop);
    ASSERT_EQ(async_semaphore_release(&sem), 0);
    ASSERT(async_cancel(&s1.task));
    mu_drain(loop);
    ASSERT_EQ(s1.code[0], ASYNC_ECANCELED);
    ASSERT(s2.reached[0]);
    ASSERT_EQ(async_semaphore_value(&sem), 0);
    /* ... and back to the count when no one else waits */
    mu_op1(&s1, MU_SEM, &sem);
    async_spawn(loop, &s1.task);
    async_poll(loop);
    ASSERT_EQ(async_semaphore_release(&sem), 0);
    ASSERT_EQ(async_semaphore_value(&sem), 0); /* granted to s1, not counted */
    ASSERT(async_cancel(&s1.task));
    mu_drain(loop);
    ASSERT_EQ(s1.code[0], ASYNC_ECANCELED);
    ASSERT_EQ(async_semaphore_value(&sem), 1);
    /* a slot granted to the only putter, cancelled before it ran: the slot is free again */
    async_queue_init(&q, ASYNC_QUEUE_FIFO, items, NULL, 1);
    async_queue_put_nowait(&q, 1);
    mu_op1(&p, MU_QPUT, &q)->item = 2;
    async_spawn(loop, &p.task);
    async_poll(loop);
    ASSERT_EQ(async_queue_get_nowait(&q, &x), 0);
    ASSERT(async_queue_full(&q)); /* reserved */
    ASSERT(async_cancel(&p.task));
    mu_drain(loop);
    ASSERT_EQ(p.code[0], ASYNC_ECANCELED);
    ASSERT(!async_queue_full(&q));
    ASSERT_EQ(async_queue_size(&q), 0);
    ASSERT_EQ(async_queue_put_nowait(&q, 3), 0);
    /* an item granted to a getter cancelled before it ran goes to the next getter */
    async_queue_init(&q2, ASYNC_QUEUE_FIFO, items2, NULL, 1);
    mu_op1(&g1, MU_QGET, &q2)->out = &g1.got;
    mu_op1(&g2, MU_QGET, &q2)->out = &g2.got;
    mu_op1(&j, MU_QJOIN, &q2);
    async_spawn(loop, &g1.task);
    async_spawn(loop, &g2.task);
    async_poll(loop);
    ASSERT_EQ(async_queue_put_nowait(&q2, 8), 0);
    ASSERT(async_cancel(&g1.task));
    async_spawn(loop, &j.task);
    mu_drain(loop);
    ASSERT_EQ(g1.code[0], ASYNC_ECANCELED);
    ASSERT_EQ(g1.got, 0);
    ASSERT(g2.reached[0]);
    ASSERT_EQ(g2.got, 8);
    /* a joiner cancelled while it waits: the count of unfinished items is untouched */
    ASSERT_STR_EQ(async_task_state(&j.task), "waiting");
    ASSERT(async_cancel(&j.task));
    mu_drain(loop);
    ASSERT_EQ(j.code[0], ASYNC_ECANCELED);
    ASSERT_EQ(async_queue_unfinished(&q2), 1);
    ASSERT_EQ(async_queue_task_done(&q2), 0);
}

TEST(misuse_generator_consumer_cancelled_with_a_value_waiting_or_during_close) {
    async_loop *loop = mu_loop();
    static mu_op_frame c, d;
    static async_gen g, h;
    static mu_range_frame p, q;
    mu_step *st = mu_op1(&c, MU_NEXT, &g);
    st->c0 = mu_range(&p, 3, 10);
    st->out = &c.got;
    c.got = -1;
    ASSERT_EQ(async_spawn(loop, &c.task), 0);
    async_poll(loop); /* c starts the producer */
    async_poll(loop); /* the producer sleeps 10 */
    loop->now = 10;
    async_poll(loop); /* it yields 1: c is woken with the value */
    ASSERT_STR_EQ(async_task_state(&c.task), "ready");
    ASSERT(async_cancel(&c.task)); /* before c runs */
    mu_drain(loop);
    ASSERT_EQ(c.code[0], ASYNC_ECANCELED);
    ASSERT_EQ(c.got, -1); /* the value was not delivered */
    ASSERT_EQ(p.cleaned, 1); /* the producer was closed when c ended */
    ASSERT_EQ(async_task_code(&p.task), ASYNC_ECANCELED);
    /* cancelled while AWAIT_GEN_CLOSE waits for a slow cleanup: the cleanup is cut short */
    st = mu_op1(&d, MU_NEXT, &h);
    st->c0 = mu_range(&q, 3, 0);
    st->out = &d.got;
    mu_add(&d, MU_GEN_CLOSE, &h);
    q.cleanup_ms = 20;
    ASSERT_EQ(async_spawn(loop, &d.task), 0);
    mu_run_until(loop, 15);
    ASSERT_EQ(d.got, 1);
    ASSERT_STR_EQ(async_task_state(&d.task), "awaiting children");
    ASSERT(async_cancel(&d.task));
    mu_drain(loop);
    ASSERT_EQ(d.code[1], ASYNC_ECANCELED);
    ASSERT_EQ(d.at[1], 15);
    ASSERT_EQ(q.cleaned, 1);
    ASSERT_EQ(async_task_code(&q.task), ASYNC_ECANCELED);
    ASSERT(async_gen_done(&h));
}

TEST(misuse_cancelling_a_parent_that_waits_at_its_end_for_a_shielded_child_cancels_the_child) {
    async_loop *loop = mu_loop();
    static mu_op_frame p;
    static mu_worker_frame child;
    static async_group g;
    mu_op1(&p, MU_SHIELD, &g)->c0 = mu_worker(&child, 50, 1);
    ASSERT_EQ(async_spawn(loop, &p.task), 0);
    mu_run_until(loop, 10);
    ASSERT(async_cancel(&p.task)); /* the shield raises at once; the child runs on */
    mu_run_until(loop, 20);
    ASSERT_EQ(p.code[0], ASYNC_ECANCELED);
    ASSERT_EQ(p.at[0], 10);
    ASSERT(!async_task_done(&p.task)); /* its frame has ended but must outlive the child */
    ASSERT_STR_EQ(async_task_state(&p.task), "awaiting children");
    ASSERT(!child.cancelled);
    /* cancelled again now: nothing is left to detach from, so the child is cancelled */
    ASSERT(async_cancel(&p.task));
    mu_drain(loop);
    ASSERT(child.cancelled);
    ASSERT_EQ(async_task_code(&child.task), ASYNC_ECANCELED);
    ASSERT_EQ(async_task_code(&p.task), 0);
    ASSERT_EQ(async_loop_now(loop), 20);
}

TEST(misuse_group_argument_that_became_null_while_waiting_is_einval) {
    async_loop *loop = mu_loop();
    static mu_op_frame o;
    static mu_worker_frame w;
    static async_group g;
    mu_op1(&o, MU_SPAWN, &g)->c0 = mu_worker(&w, 10, 1);
    mu_add(&o, MU_GROUP, &g);
    ASSERT_EQ(async_spawn(loop, &o.task), 0);
    mu_run_until(loop, 5);
    o.s[1].a = NULL; /* the await's arguments are evaluated again when it resumes */
    mu_drain(loop);
    ASSERT_EQ(o.code[1], ASYNC_EINVAL);
    ASSERT_EQ(async_task_value(&w.task), 1);
    ASSERT_EQ(async_group_running(&g), 0);
}

static int mu_reported;
static void mu_on_error(async_loop *loop, async_task *task, const async_error *error, void *ctx) {
    (void)loop;
    (void)task;
    (void)error;
    (void)ctx;
    mu_reported++;
}

TEST(misuse_unretrieved_error_without_a_handler_is_counted_and_forgotten) {
    async_loop *loop = mu_loop();
    static mu_worker_frame w;
    mu_worker(&w, 5, 0);
    w.fail = &mu_err_b;
    ASSERT_EQ(async_spawn(loop, &w.task), 0);
    mu_drain(loop);
    ASSERT_EQ(async_loop_report_errors(loop), 1);
    ASSERT_EQ(async_loop_report_errors(loop), 0);
    ASSERT(async_task_error(&w.task) == &mu_err_b); /* still readable on the task */
    async_loop_set_error_handler(loop, mu_on_error, NULL);
    ASSERT_EQ(async_loop_report_errors(loop), 0);
    ASSERT_EQ(mu_reported, 0);
}

static const test_case misuse_tests[] = {
    TEST_ENTRY(misuse_task_queries_of_null_unscheduled_and_corrupt_tasks)
    TEST_ENTRY(misuse_failed_task_is_not_cancelled_and_its_value_is_zero)
    TEST_ENTRY(misuse_future_and_group_queries_of_null)
    TEST_ENTRY(misuse_sync_primitive_queries_of_null)
    TEST_ENTRY(misuse_queue_and_generator_queries_of_null_and_bad_arguments)
    TEST_ENTRY(misuse_loop_and_frame_pool_functions_of_null)
    TEST_ENTRY(misuse_coroutine_stepped_without_a_loop_gets_einval_where_it_needs_one)
    TEST_ENTRY(misuse_resuming_a_waiting_task_by_hand_changes_nothing)
    TEST_ENTRY(misuse_cancel_pending_at_the_start_of_each_await_raises_and_takes_nothing)
    TEST_ENTRY(misuse_await_of_itself_nothing_or_an_inline_running_task)
    TEST_ENTRY(misuse_gather_group_timeout_and_shield_with_bad_arguments_leave_nothing_running)
    TEST_ENTRY(misuse_busy_groups_and_timeouts_are_ebusy_and_their_children_run_on)
    TEST_ENTRY(misuse_task_group_keeps_the_first_error_when_a_cancelled_sibling_fails_too)
    TEST_ENTRY(misuse_finished_child_of_a_running_group_cannot_be_reinitialised)
    TEST_ENTRY(misuse_awaiting_a_group_child_wakes_on_each_sibling_end_and_cancel_passes_on)
    TEST_ENTRY(misuse_awaiter_of_a_group_child_waits_for_the_cancelled_childs_cleanup)
    TEST_ENTRY(misuse_shield_returns_the_childs_outcome_and_a_cancel_at_a_later_await_of_its_group)
    TEST_ENTRY(misuse_wait_for_whose_deadline_cannot_be_set_is_enomem_not_unbounded)
    TEST_ENTRY(misuse_corrupt_resume_point_in_the_handler_range_fails_with_efault)
    TEST_ENTRY(misuse_future_reset_between_its_completion_and_the_waiters_run_makes_them_wait_again)
    TEST_ENTRY(misuse_await_of_a_null_or_uninitialised_primitive_is_einval)
    TEST_ENTRY(misuse_condition_busy_init_and_a_waiter_cancelled_while_it_reacquires_holds_the_lock)
    TEST_ENTRY(misuse_semaphore_and_queue_init_while_tasks_wait_is_ebusy)
    TEST_ENTRY(misuse_growing_queue_that_cannot_grow_fails_the_put_and_loses_nothing)
    TEST_ENTRY(misuse_growing_queue_storage_is_not_freed_under_waiting_or_granted_tasks)
    TEST_ENTRY(misuse_queue_slot_granted_then_cancelled_or_shut_down_is_not_lost)
    TEST_ENTRY(misuse_immediate_shutdown_keeps_reserved_items_and_counts_unfinished_right)
    TEST_ENTRY(misuse_generator_thrown_into_or_closed_before_it_starts_never_runs_the_producer)
    TEST_ENTRY(misuse_generator_second_consumer_is_ebusy_and_values_may_be_dropped)
    TEST_ENTRY(misuse_generator_close_raises_the_cleanups_error_and_stops_a_producer_that_yields_again)
    TEST_ENTRY(misuse_yield_value_in_a_gather_child_is_einval)
    TEST_ENTRY(misuse_ninth_sleeper_without_memory_gets_enomem_and_the_others_sleep_on)
    TEST_ENTRY(misuse_timer_storage_is_left_alone_once_the_allocator_was_removed)
    TEST_ENTRY(misuse_hooks_with_missing_members_are_skipped)
    TEST_ENTRY(misuse_run_with_a_wait_that_finds_no_waker_still_runs_the_timers)
    TEST_ENTRY(misuse_run_on_a_real_clock_without_wait_polls_until_the_deadline)
    TEST_ENTRY(misuse_run_of_a_busy_task_or_of_a_main_that_ignores_its_deadlock_cancel)
    TEST_ENTRY(misuse_signal_misuse_codes_and_close_after_the_loop_was_reinitialised)
    TEST_ENTRY(misuse_cancelled_waiters_leave_queues_and_pass_on_what_they_were_granted)
    TEST_ENTRY(misuse_generator_consumer_cancelled_with_a_value_waiting_or_during_close)
    TEST_ENTRY(misuse_cancelling_a_parent_that_waits_at_its_end_for_a_shielded_child_cancels_the_child)
    TEST_ENTRY(misuse_group_argument_that_became_null_while_waiting_is_einval)
    TEST_ENTRY(misuse_unretrieved_error_without_a_handler_is_counted_and_forgotten)
    {NULL, NULL}
};
