/* The portable core under the virtual clock: scheduling order, awaits, errors, try/catch/finally,
 * cancellation, gather, task groups, timeouts, shield, futures, misuse. */

/* ---- an event log the coroutines write to, compared as one string ---- */
static char trace[4096];
static void logf_(const char *fmt, ...) {
    va_list ap;
    size_t len = strlen(trace);
    va_start(ap, fmt);
    vsnprintf(trace + len, sizeof trace - len, fmt, ap);
    va_end(ap);
}
#define LOG(...) logf_(__VA_ARGS__)

static void *std_realloc(void *ctx, void *p, size_t n) {
    (void)ctx;
    if (n == 0) {
        free(p);
        return NULL;
    }
    return realloc(p, n);
}

/* A virtual-clock loop whose timer heap grows on the heap (freed when the test's process ends). */
static async_loop *new_loop(void) {
    static async_loop loop;
    async_loop_init(&loop);
    async_loop_set_allocator(&loop, std_realloc, NULL);
    trace[0] = '\0';
    return &loop;
}

/* Runs the loop until nothing is scheduled, jumping the virtual clock to each next timer. */
static void drain(async_loop *loop) {
    int32_t d;
    while ((d = async_poll(loop)) >= 0) loop->now += (async_ms)d;
}

/* ---- a worker: logs start, sleeps ms, optionally fails, logs end, returns value ---- */
typedef struct {
    async_task task;
    const char *name;
    int ms;
    int fail;  /* error code to raise after the sleep, 0 for none */
    int value;
    int swallow_cancel; /* catch ECANCELED and finish normally */
} worker_frame;

static const async_error worker_error = {ASYNC_EUSER + 1, "worker failed"};

static async_status worker_run(async_task *t) {
    worker_frame *f = (worker_frame *)t;
    ASYNC_BEGIN(t);
    LOG("%s+ ", f->name);
    ASYNC_TRY(t) {
        AWAIT_SLEEP(t, f->ms);
    }
    ASYNC_CATCH(t) {
        LOG("%s!%d ", f->name, async_caught(t)->code);
        if (!f->swallow_cancel) ASYNC_RERAISE(t);
    }
    ASYNC_END_TRY(t);
    if (f->fail) ASYNC_THROW_ERROR(t, &worker_error);
    LOG("%s- ", f->name);
    ASYNC_RETURN(t, f->value);
    ASYNC_END(t);
}

static async_task *worker(worker_frame *f, const char *name, int ms, int value) {
    if (ASYNC_FRAME_INIT(f, worker_run)) {
        f->name = name;
        f->ms = ms;
        f->value = value;
    }
    return &f->task;
}

/* ---- basic scheduling ---- */

TEST(spawn_runs_in_fifo_order_and_sleep_zero_yields) {
    async_loop *loop = new_loop();
    static worker_frame w[3];
    int i;
    for (i = 0; i < 3; i++) ASSERT_EQ(async_spawn(loop, worker(&w[i], i == 0 ? "a" : i == 1 ? "b" : "c", 0, i)), 0);
    while (async_poll(loop) >= 0) {}
    ASSERT_STR_EQ(trace, "a+ b+ c+ a- b- c- ");
    for (i = 0; i < 3; i++) ASSERT_EQ(async_task_value(&w[i].task), i);
}

TEST(equal_deadlines_fire_in_the_order_set) {
    async_loop *loop = new_loop();
    static worker_frame w[4];
    async_spawn(loop, worker(&w[0], "a", 20, 0));
    async_spawn(loop, worker(&w[1], "b", 10, 0));
    async_spawn(loop, worker(&w[2], "c", 20, 0));
    async_spawn(loop, worker(&w[3], "d", 10, 0));
    while (async_poll(loop) >= 0) loop->now += 1; /* a slow real-ish clock: both become due together */
    ASSERT_STR_EQ(trace, "a+ b+ c+ d+ b- d- a- c- ");
}

TEST(virtual_clock_jumps_exactly) {
    async_loop *loop = new_loop();
    static worker_frame w;
    ASSERT_EQ(async_run(loop, worker(&w, "w", 2500, 7)), 0);
    ASSERT_EQ(async_loop_now(loop), 2500);
    ASSERT_EQ(async_task_value(&w.task), 7);
}

TEST(poll_reports_how_long_to_sleep) {
    async_loop *loop = new_loop();
    static worker_frame w;
    ASSERT_EQ(async_poll(loop), -1);
    async_spawn(loop, worker(&w, "w", 40, 0));
    ASSERT_EQ(async_poll(loop), 40); /* started, now sleeping */
    loop->now += 15;
    ASSERT_EQ(async_poll(loop), 25);
    loop->now += 25;
    ASSERT_EQ(async_poll(loop), -1);
    ASSERT(async_task_done(&w.task));
}

/* ---- awaiting coroutines and tasks ---- */

typedef struct {
    async_task task;
    worker_frame child;
    worker_frame *other; /* a task to await */
    long got;
    int steps_at_call;
} caller_frame;

static async_status call_inline_run(async_task *t) {
    caller_frame *f = (caller_frame *)t;
    ASYNC_BEGIN(t);
    LOG("call ");
    AWAIT(t, worker(&f->child, "child", 0, 42)); /* sleep(0): one yield inside the child */
    f->got = (long)async_task_value(&f->child.task);
    LOG("got%ld ", f->got);
    ASYNC_RETURN(t, f->got + 1);
    ASYNC_END(t);
}

TEST(await_coroutine_runs_inline_and_returns_its_value) {
    async_loop *loop = new_loop();
    static caller_frame c;
    memset(&c, 0, sizeof c);
    async_task_init(&c.task, call_inline_run);
    ASSERT_EQ(async_run(loop, &c.task), 0);
    ASSERT_STR_EQ(trace, "call child+ child- got42 ");
    ASSERT_EQ(async_task_value(&c.task), 43);
    /* inline: the child cost no scheduling of its own: 1 step to start, 1 after the yield */
    ASSERT_EQ(loop->steps, 2);
}

/* Awaits a task (target) or a future (fut), logs the value or the error it got. */
typedef struct {
    async_task task;
    async_task *target;
    async_future *fut;
    const char *name;
    long got;
    int code;
} awaiter_frame;

static async_status awaiter_run(async_task *t) {
    awaiter_frame *f = (awaiter_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_TRY(t) {
        if (f->fut) {
            AWAIT_FUTURE(t, f->fut);
            f->got = (long)async_future_value(f->fut);
        } else {
            AWAIT(t, f->target);
            f->got = (long)async_task_value(f->target);
        }
        LOG("%s=%ld ", f->name, f->got);
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
        LOG("%s!%d ", f->name, f->code);
    }
    ASYNC_END_TRY(t);
    ASYNC_END(t);
}

static async_task *awaiter(awaiter_frame *f, const char *name, async_task *target) {
    if (ASYNC_FRAME_INIT(f, awaiter_run)) {
        f->name = name;
        f->target = target;
    }
    return &f->task;
}

static async_task *fwait(awaiter_frame *f, const char *name, async_future *fut) {
    if (ASYNC_FRAME_INIT(f, awaiter_run)) {
        f->name = name;
        f->fut = fut;
    }
    return &f->task;
}

TEST(several_awaiters_get_the_result_in_wait_order) {
    async_loop *loop = new_loop();
    static worker_frame w;
    static awaiter_frame a[3];
    async_spawn(loop, worker(&w, "w", 100, 5));
    async_spawn(loop, awaiter(&a[0], "x", &w.task));
    async_spawn(loop, awaiter(&a[1], "y", &w.task));
    async_spawn(loop, awaiter(&a[2], "z", &w.task));
    while (async_poll(loop) >= 0) loop->now += 100;
    ASSERT_STR_EQ(trace, "w+ w- x=5 y=5 z=5 ");
    /* awaiting a finished task returns at once */
    async_spawn(loop, awaiter(&a[0], "late", &w.task));
    while (async_poll(loop) >= 0) {}
    ASSERT_STR_EQ(trace, "w+ w- x=5 y=5 z=5 late=5 ");
}

TEST(awaiting_a_failed_task_raises_its_error_in_every_awaiter) {
    async_loop *loop = new_loop();
    static worker_frame w;
    static awaiter_frame a, b;
    async_spawn(loop, worker(&w, "w", 10, 0));
    w.fail = 1;
    async_spawn(loop, awaiter(&a, "a", &w.task));
    async_spawn(loop, awaiter(&b, "b", &w.task));
    while (async_poll(loop) >= 0) loop->now += 10;
    ASSERT_EQ(a.code, ASYNC_EUSER + 1);
    ASSERT_EQ(b.code, ASYNC_EUSER + 1);
    ASSERT_EQ(async_task_code(&w.task), ASYNC_EUSER + 1);
    ASSERT_STR_EQ(async_error_message(async_task_error(&w.task)), "worker failed");
    ASSERT_EQ(async_loop_report_errors(loop), 0); /* retrieved: nothing to report */
}

/* ---- errors nobody retrieved ---- */

static int reported;
static void count_report(async_loop *loop, async_task *task, const async_error *e, void *ctx) {
    (void)loop;
    (void)ctx;
    reported++;
    LOG("report:%s:%d ", async_task_name(task), e->code);
}

TEST(unretrieved_error_is_reported_once) {
    async_loop *loop = new_loop();
    static worker_frame w, ok;
    reported = 0;
    async_loop_set_error_handler(loop, count_report, NULL);
    async_spawn(loop, worker(&w, "w", 0, 0));
    async_task_set_name(&w.task, "bad");
    w.fail = 1;
    ASSERT_EQ(async_run(loop, worker(&ok, "ok", 10, 0)), 0); /* run reports at its end */
    ASSERT_EQ(reported, 1);
    ASSERT(strstr(trace, ASYNC_CONFIG_TASK_NAMES ? "report:bad:1001 " : "report:task:1001 ") != NULL);
    ASSERT_EQ(async_loop_report_errors(loop), 0);
}

TEST(retrieving_an_error_later_takes_it_off_the_report) {
    async_loop *loop = new_loop();
    static worker_frame w;
    reported = 0;
    async_loop_set_error_handler(loop, count_report, NULL);
    async_spawn(loop, worker(&w, "w", 0, 0));
    w.fail = 1;
    while (async_poll(loop) >= 0) {}
    ASSERT_EQ(async_task_code(&w.task), ASYNC_EUSER + 1);
    ASSERT_EQ(async_loop_report_errors(loop), 0);
    ASSERT_EQ(reported, 0);
}

/* asyncio logs "exception was never retrieved" for failed tasks only, not for cancelled ones */
TEST(cancelled_task_is_not_reported_as_unretrieved) {
    async_loop *loop = new_loop();
    static worker_frame started, unstarted, bad;
    reported = 0;
    async_loop_set_error_handler(loop, count_report, NULL);
    async_spawn(loop, worker(&started, "s", 50, 0));
    async_spawn(loop, worker(&bad, "b", 0, 0));
    bad.fail = 1;
    ASSERT_EQ(async_poll(loop), 0); /* all three have run their first step; "b" has failed */
    ASSERT(async_cancel(&started.task));
    async_spawn(loop, worker(&unstarted, "u", 50, 0)); /* not yet started when cancelled */
    ASSERT(async_cancel(&unstarted.task));
    while (async_poll(loop) >= 0) {}
    ASSERT(async_task_cancelled(&started.task));
    ASSERT(async_task_cancelled(&unstarted.task));
    ASSERT_EQ(async_loop_report_errors(loop), 1); /* only the failure */
    ASSERT_EQ(reported, 1);
}

TEST(main_error_is_async_run_result) {
    async_loop *loop = new_loop();
    static worker_frame w;
    async_task_init(&w.task, worker_run);
    w.name = "m";
    w.fail = 1;
    ASSERT_EQ(async_run(loop, &w.task), ASYNC_EUSER + 1);
}

/* ---- try / catch / finally ---- */

typedef struct {
    async_task task;
    worker_frame child;
    int mode; /* 0 ok, 1 child fails, 2 return inside try, 3 raise in catch, 4 nested */
    int child_fails;
} tcf_frame;

static const async_error other_error = {ASYNC_EUSER + 2, "other"};

static async_status tcf_run(async_task *t) {
    tcf_frame *f = (tcf_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_TRY(t) {
        LOG("try ");
        if (f->mode == 2) ASYNC_RETURN(t, 9);
        worker(&f->child, "c", 10, 0);
        f->child.fail = f->child_fails;
        AWAIT(t, &f->child.task);
        LOG("after ");
    }
    ASYNC_CATCH(t) {
        LOG("catch%d ", async_caught(t)->code);
        if (f->mode == 3) ASYNC_THROW_ERROR(t, &other_error);
        if (f->mode == 4) {
            ASYNC_TRY(t) {
                AWAIT_SLEEP(t, 5);
                ASYNC_THROW(t, ASYNC_EUSER + 3, "inner");
            }
            ASYNC_CATCH(t) {
                LOG("inner%d ", async_caught(t)->code);
            }
            ASYNC_FINALLY(t) {
                LOG("innerfin ");
            }
            ASYNC_END_TRY(t);
        }
    }
    ASYNC_FINALLY(t) {
        AWAIT_SLEEP(t, 1); /* a finally block may await */
        LOG("finally ");
    }
    ASYNC_END_TRY(t);
    LOG("end ");
    ASYNC_END(t);
}

static int run_tcf(int mode, int child_fails) {
    async_loop *loop = new_loop();
    static tcf_frame f;
    ASYNC_FRAME_INIT(&f, tcf_run);
    f.mode = mode;
    f.child_fails = child_fails;
    return async_run(loop, &f.task);
}

TEST(try_without_error_runs_finally) {
    ASSERT_EQ(run_tcf(0, 0), 0);
    ASSERT_STR_EQ(trace, "try c+ c- after finally end ");
}

TEST(catch_handles_the_childs_error_then_finally) {
    ASSERT_EQ(run_tcf(1, 1), 0);
    ASSERT_STR_EQ(trace, "try c+ catch1001 finally end ");
}

TEST(return_inside_try_runs_finally_first) {
    static tcf_frame *fp;
    ASSERT_EQ(run_tcf(2, 0), 0);
    ASSERT_STR_EQ(trace, "try finally ");
    (void)fp;
}

TEST(error_raised_in_catch_runs_finally_and_propagates) {
    ASSERT_EQ(run_tcf(3, 1), ASYNC_EUSER + 2);
    ASSERT_STR_EQ(trace, "try c+ catch1001 finally ");
}

TEST(nested_try_inside_catch) {
    ASSERT_EQ(run_tcf(4, 1), 0);
    ASSERT_STR_EQ(trace, "try c+ catch1001 inner1003 innerfin finally end ");
}

typedef struct {
    async_task task;
    int stage;
} fin_only_frame;

static async_status fin_only_run(async_task *t) {
    fin_only_frame *f = (fin_only_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_TRY(t) {
        AWAIT_SLEEP(t, 10);
        if (f->stage == 1) ASYNC_THROW(t, ASYNC_EUSER + 4, "no catch here");
    }
    ASYNC_FINALLY(t) {
        LOG("fin ");
    }
    ASYNC_END_TRY(t);
    LOG("after ");
    ASYNC_END(t);
}

TEST(try_finally_without_catch_propagates_after_finally) {
    async_loop *loop = new_loop();
    static fin_only_frame f;
    memset(&f, 0, sizeof f);
    async_task_init(&f.task, fin_only_run);
    f.stage = 1;
    ASSERT_EQ(async_run(loop, &f.task), ASYNC_EUSER + 4);
    ASSERT_STR_EQ(trace, "fin ");
    loop = new_loop();
    async_task_init(&f.task, fin_only_run);
    f.stage = 0;
    ASSERT_EQ(async_run(loop, &f.task), 0);
    ASSERT_STR_EQ(trace, "fin after ");
}

TEST(corrupt_resume_point_fails_cleanly) {
    async_loop *loop = new_loop();
    static worker_frame w;
    async_spawn(loop, worker(&w, "w", 10, 0));
    async_poll(loop);
    w.task.lc = 7; /* no such resume point */
    loop->now += 10;
    while (async_poll(loop) >= 0) {}
    ASSERT_EQ(async_task_code(&w.task), ASYNC_EFAULT);
}

/* ---- cancellation ---- */

TEST(cancel_sleeping_task_raises_ecanceled_in_it) {
    async_loop *loop = new_loop();
    static worker_frame w;
    async_spawn(loop, worker(&w, "w", 1000, 0));
    async_poll(loop);
    ASSERT_EQ(async_loop_timers(loop), 1);
    ASSERT(async_cancel(&w.task));
    ASSERT_EQ(async_loop_timers(loop), 0); /* removed from the timer heap at once */
    while (async_poll(loop) >= 0) {}
    ASSERT_STR_EQ(trace, "w+ w!-125 ");
    ASSERT(async_task_cancelled(&w.task));
    ASSERT_EQ(async_loop_now(loop), 0);
}

TEST(cancel_finished_or_null_task_is_a_noop_returning_false) {
    async_loop *loop = new_loop();
    static worker_frame w;
    async_spawn(loop, worker(&w, "w", 0, 3));
    while (async_poll(loop) >= 0) {}
    ASSERT(!async_cancel(&w.task));
    ASSERT(!async_cancel(NULL));
    ASSERT_EQ(async_task_value(&w.task), 3);
    ASSERT_EQ(async_task_code(&w.task), 0);
}

TEST(cancel_before_first_step_never_runs_the_body) {
    async_loop *loop = new_loop();
    static worker_frame w, never;
    async_spawn(loop, worker(&w, "w", 0, 0));
    ASSERT(async_cancel(&w.task));
    ASSERT(async_cancel(&w.task)); /* twice is fine */
    while (async_poll(loop) >= 0) {}
    ASSERT_STR_EQ(trace, "");
    ASSERT(async_task_cancelled(&w.task));
    /* never spawned at all */
    worker(&never, "n", 0, 0);
    ASSERT(async_cancel(&never.task));
    ASSERT(async_task_cancelled(&never.task));
    ASSERT_EQ(async_spawn(loop, &never.task), ASYNC_EINVAL);
}

typedef struct {
    async_task task;
    int rounds;
} selfcancel_frame;

static async_status selfcancel_run(async_task *t) {
    selfcancel_frame *f = (selfcancel_frame *)t;
    ASYNC_BEGIN(t);
    async_cancel(t); /* while running: takes effect at the next await */
    LOG("still ");
    ASYNC_TRY(t) {
        AWAIT_SLEEP(t, 100);
        LOG("slept ");
    }
    ASYNC_CATCH(t) {
        LOG("cancelled ");
    }
    ASYNC_END_TRY(t);
    /* the cancellation was delivered once: the task may go on (asyncio's uncancel) */
    AWAIT_SLEEP(t, 100);
    f->rounds++;
    LOG("again ");
    ASYNC_END(t);
}

TEST(cancel_while_running_takes_effect_at_next_await_and_can_be_survived) {
    async_loop *loop = new_loop();
    static selfcancel_frame f;
    memset(&f, 0, sizeof f);
    async_task_init(&f.task, selfcancel_run);
    ASSERT_EQ(async_run(loop, &f.task), 0);
    ASSERT_STR_EQ(trace, "still cancelled again ");
    ASSERT_EQ(async_loop_now(loop), 100);
}

TEST(cancelling_an_awaiter_cancels_the_awaited_task_and_waits_for_it) {
    async_loop *loop = new_loop();
    static worker_frame w;
    static awaiter_frame a;
    async_spawn(loop, worker(&w, "w", 1000, 0));
    async_spawn(loop, awaiter(&a, "a", &w.task));
    async_poll(loop);
    ASSERT(async_cancel(&a.task));
    while (async_poll(loop) >= 0) {}
    ASSERT_STR_EQ(trace, "w+ w!-125 a!-125 ");
    ASSERT(async_task_cancelled(&w.task));
}

/* ---- futures ---- */

TEST(future_wakes_waiters_in_order_and_cancel_detaches_one) {
    async_loop *loop = new_loop();
    async_future fut;
    static awaiter_frame w[3];
    memset(&fut, 0, sizeof fut);
    async_spawn(loop, fwait(&w[0], "a", &fut));
    async_spawn(loop, fwait(&w[1], "b", &fut));
    async_spawn(loop, fwait(&w[2], "c", &fut));
    async_poll(loop);
    ASSERT_EQ(async_future_init(&fut), ASYNC_EBUSY); /* waiters: cannot reset */
    ASSERT(async_cancel(&w[1].task));
    async_poll(loop);
    ASSERT_STR_EQ(trace, "b!-125 ");
    ASSERT_EQ(async_future_set_value(&fut, 8), 0);
    ASSERT_EQ(async_future_set_value(&fut, 9), ASYNC_EBUSY);
    ASSERT_EQ(async_future_set_error(&fut, NULL), ASYNC_EINVAL);
    while (async_poll(loop) >= 0) {}
    ASSERT_STR_EQ(trace, "b!-125 a=8 c=8 ");
    ASSERT_EQ(async_future_value(&fut), 8);
}

TEST(future_error_is_raised_in_the_awaiter) {
    async_loop *loop = new_loop();
    async_future fut;
    static awaiter_frame w;
    async_future_init(memset(&fut, 0, sizeof fut));
    async_spawn(loop, fwait(&w, "a", &fut));
    async_poll(loop);
    async_future_set_error(&fut, &worker_error);
    while (async_poll(loop) >= 0) {}
    ASSERT_EQ(w.code, ASYNC_EUSER + 1);
    ASSERT(async_future_error(&fut) == &worker_error);
    ASSERT_EQ(async_future_set_value(NULL, 1), ASYNC_EINVAL);
}

TEST(main_waiting_forever_is_a_deadlock_and_its_finally_runs) {
    async_loop *loop = new_loop();
    async_future fut;
    static awaiter_frame w;
    memset(&fut, 0, sizeof fut);
    ASSERT_EQ(async_run(loop, fwait(&w, "m", &fut)), ASYNC_EDEADLK);
    ASSERT_STR_EQ(trace, "m!-125 "); /* cancelled so that its handlers ran */
    ASSERT(async_task_done(&w.task));
}

/* ---- gather ---- */

typedef struct {
    async_task task;
    worker_frame a, b, c;
    async_group all;
    int settled;
    int code;
    int return_early; /* return as soon as gather raised (children still run) */
} gather_frame;

static async_status gather_run(async_task *t) {
    gather_frame *f = (gather_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_TRY(t) {
        if (f->settled)
            AWAIT_GATHER_SETTLED(t, &f->all, &f->a.task, &f->b.task, &f->c.task);
        else
            AWAIT_GATHER(t, &f->all, &f->a.task, &f->b.task, &f->c.task);
        LOG("gathered ");
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
        LOG("gather!%d ", f->code);
        if (f->return_early) ASYNC_RETURN(t, -1);
    }
    ASYNC_END_TRY(t);
    AWAIT_SLEEP(t, 1000); /* the other children keep running meanwhile */
    LOG("main-end ");
    ASYNC_END(t);
}

static gather_frame *setup_gather(int fail_b) {
    static gather_frame f;
    ASYNC_FRAME_INIT(&f, gather_run);
    worker(&f.a, "a", 300, 1);
    worker(&f.b, "b", 200, 2);
    worker(&f.c, "c", 100, 3);
    f.b.fail = fail_b;
    return &f;
}

TEST(gather_results_in_argument_order_in_the_longest_time) {
    async_loop *loop = new_loop();
    gather_frame *f = setup_gather(0);
    ASSERT_EQ(async_run(loop, &f->task), 0);
    ASSERT_STR_EQ(trace, "a+ b+ c+ c- b- a- gathered main-end ");
    ASSERT_EQ(async_task_value(&f->a.task), 1);
    ASSERT_EQ(async_task_value(&f->b.task), 2);
    ASSERT_EQ(async_task_value(&f->c.task), 3);
    ASSERT_EQ(async_loop_now(loop), 1300);
}

TEST(gather_first_error_propagates_at_once_others_keep_running) {
    async_loop *loop = new_loop();
    gather_frame *f = setup_gather(1);
    ASSERT_EQ(async_run(loop, &f->task), 0);
    ASSERT_STR_EQ(trace, "a+ b+ c+ c- gather!1001 a- main-end ");
    ASSERT_EQ(async_task_value(&f->a.task), 1); /* a finished normally */
}

TEST(gather_settled_collects_errors_as_results) {
    async_loop *loop = new_loop();
    gather_frame *f = setup_gather(1);
    f->settled = 1;
    ASSERT_EQ(async_run(loop, &f->task), 0);
    ASSERT_STR_EQ(trace, "a+ b+ c+ c- a- gathered main-end ");
    ASSERT_EQ(async_task_code(&f->b.task), ASYNC_EUSER + 1);
    ASSERT_EQ(async_task_value(&f->c.task), 3);
}

TEST(parent_ending_mid_gather_cancels_and_awaits_its_children) {
    async_loop *loop = new_loop();
    gather_frame *f = setup_gather(1);
    static awaiter_frame watcher;
    f->return_early = 1;
    async_spawn(loop, &f->task);
    async_spawn(loop, awaiter(&watcher, "watch", &f->task));
    while (async_poll(loop) >= 0) loop->now += 50;
    /* the parent returned at 200 ms; child a was cancelled and ended before the parent completed */
    ASSERT_STR_EQ(trace, "a+ b+ c+ c- gather!1001 a!-125 watch=-1 ");
    ASSERT(async_task_cancelled(&f->a.task));
    ASSERT_EQ(async_task_value(&f->task), -1);
}

TEST(cancelling_a_task_awaiting_gather_cancels_the_children) {
    async_loop *loop = new_loop();
    gather_frame *f = setup_gather(0);
    async_spawn(loop, &f->task);
    async_poll(loop);
    async_poll(loop);
    ASSERT(async_cancel(&f->task));
    drain(loop);
    ASSERT_STR_EQ(trace, "a+ b+ c+ a!-125 b!-125 c!-125 gather!-125 main-end ");
    ASSERT_EQ(async_loop_now(loop), 1000); /* the children ended at once; main slept 1 s after */
}

TEST(gather_misuse_null_or_running_child_raises_and_leaves_nothing_running) {
    async_loop *loop = new_loop();
    static gather_frame f;
    ASYNC_FRAME_INIT(&f, gather_run);
    worker(&f.a, "a", 300, 1);
    worker(&f.c, "c", 100, 3);
    async_spawn(loop, &f.c.task); /* already running elsewhere */
    worker(&f.b, "b", 100, 2);
    ASSERT_EQ(async_run(loop, &f.task), 0);
    ASSERT_EQ(f.code, ASYNC_EBUSY);
    ASSERT(async_task_cancelled(&f.a.task)); /* started before the bad one: cancelled */
    ASSERT_EQ(async_group_running(&f.all), 0);
    ASSERT_EQ(async_task_value(&f.c.task), 3);
}

/* gather over an array of frames */
typedef struct {
    async_task task;
    worker_frame w[50];
    async_group all;
    long sum;
    int i;
} many_frame;

static async_status many_run(async_task *t) {
    many_frame *f = (many_frame *)t;
    ASYNC_BEGIN(t);
    for (f->i = 0; f->i < 50; f->i++) worker(&f->w[f->i], "", f->i % 7, f->i);
    AWAIT_GATHER_ARRAY(t, &f->all, &f->w[0].task, 50, sizeof f->w[0]);
    for (f->i = 0; f->i < 50; f->i++) f->sum += (long)async_task_value(&f->w[f->i].task);
    ASYNC_END(t);
}

TEST(gather_array_over_frames) {
    async_loop *loop = new_loop();
    static many_frame f;
    ASYNC_FRAME_INIT(&f, many_run);
    ASSERT_EQ(async_run(loop, &f.task), 0);
    ASSERT_EQ(f.sum, 49 * 50 / 2);
    ASSERT_EQ(async_loop_now(loop), 6);
}

/* ---- task groups ---- */

typedef struct {
    async_task task;
    worker_frame a, b, c;
    async_group tg;
    int code;
    int skip_join;
} tg_frame;

static async_status tg_run(async_task *t) {
    tg_frame *f = (tg_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_TRY(t) {
        ASYNC_SPAWN(t, &f->tg, &f->a.task);
        ASYNC_SPAWN(t, &f->tg, &f->b.task);
        ASYNC_SPAWN(t, &f->tg, &f->c.task);
        if (f->skip_join) {
            AWAIT_SLEEP(t, 50);
            ASYNC_RETURN(t, 0); /* the frame's end still waits for the children */
        }
        AWAIT_GROUP(t, &f->tg);
        LOG("joined ");
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
        LOG("tg!%d ", f->code);
    }
    ASYNC_END_TRY(t);
    ASYNC_END(t);
}

static tg_frame *setup_tg(int fail_c) {
    static tg_frame f;
    ASYNC_FRAME_INIT(&f, tg_run);
    worker(&f.a, "a", 300, 1);
    worker(&f.b, "b", 200, 2);
    worker(&f.c, "c", 100, 3);
    f.c.fail = fail_c;
    return &f;
}

TEST(task_group_joins_all_children) {
    async_loop *loop = new_loop();
    tg_frame *f = setup_tg(0);
    ASSERT_EQ(async_run(loop, &f->task), 0);
    ASSERT_STR_EQ(trace, "a+ b+ c+ c- b- a- joined ");
}

TEST(task_group_first_error_cancels_siblings_and_is_raised_after_all_ended) {
    async_loop *loop = new_loop();
    tg_frame *f = setup_tg(1);
    ASSERT_EQ(async_run(loop, &f->task), 0);
    ASSERT_STR_EQ(trace, "a+ b+ c+ a!-125 b!-125 tg!1001 ");
    ASSERT_EQ(async_loop_now(loop), 100);
}

TEST(frame_end_waits_for_spawned_children_without_join) {
    async_loop *loop = new_loop();
    tg_frame *f = setup_tg(0);
    f->skip_join = 1;
    ASSERT_EQ(async_run(loop, &f->task), 0);
    /* returning cancels the children still running, and waits for them */
    ASSERT_STR_EQ(trace, "a+ b+ c+ a!-125 b!-125 c!-125 ");
    ASSERT(async_task_done(&f->a.task));
    ASSERT_EQ(async_loop_now(loop), 50);
}

TEST(spawn_misuse_codes) {
    async_loop *loop = new_loop();
    static worker_frame w;
    async_group g;
    memset(&g, 0, sizeof g);
    ASSERT_EQ(async_spawn(NULL, &w.task), ASYNC_EINVAL);
    ASSERT_EQ(async_spawn(loop, NULL), ASYNC_EINVAL);
    async_spawn(loop, worker(&w, "w", 100, 0));
    ASSERT_EQ(async_spawn(loop, &w.task), ASYNC_EBUSY); /* already running */
    ASSERT(async_task_init(&w.task, worker_run) == NULL); /* frame reuse while it runs: refused */
    ASSERT(!ASYNC_FRAME_INIT(&w, worker_run));
    ASSERT_EQ(async_group_spawn(&w.task, &g, &w.task), ASYNC_EBUSY);
    ASSERT_EQ(async_group_spawn(NULL, &g, &w.task), ASYNC_EINVAL);
    ASSERT(async_task_init(NULL, worker_run) == NULL);
    ASSERT(async_task_init(&w.task, NULL) == NULL);
    ASSERT_EQ(async_task_code(&w.task), ASYNC_EINPROGRESS);
    ASSERT_EQ(async_task_code(NULL), ASYNC_EINVAL);
    while (async_poll(loop) >= 0) loop->now += 100;
    ASSERT(async_task_init(&w.task, worker_run) == &w.task); /* finished: reusable */
}

/* ---- timeout and shield ---- */

typedef struct {
    async_task task;
    worker_frame work;
    async_timeout tmo;
    int limit;
    int code;
} to_frame;

static async_status to_run(async_task *t) {
    to_frame *f = (to_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_TRY(t) {
        AWAIT_TIMEOUT(t, &f->tmo, f->limit, &f->work.task);
        LOG("in-time=%ld ", (long)async_task_value(&f->work.task));
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
        LOG("timeout!%d ", f->code);
    }
    ASYNC_END_TRY(t);
    ASYNC_END(t);
}

static int run_timeout(int work_ms, int limit, int swallow) {
    async_loop *loop = new_loop();
    static to_frame f;
    ASYNC_FRAME_INIT(&f, to_run);
    f.limit = limit;
    worker(&f.work, "w", work_ms, 4);
    f.work.swallow_cancel = swallow;
    ASSERT_EQ(async_run(loop, &f.task), 0);
    return (int)async_loop_now(loop);
}

TEST(wait_for_returns_the_result_in_time) {
    ASSERT_EQ(run_timeout(100, 500, 0), 100);
    ASSERT_STR_EQ(trace, "w+ w- in-time=4 ");
}

TEST(wait_for_cancels_the_work_at_the_deadline) {
    ASSERT_EQ(run_timeout(1000, 300, 0), 300);
    ASSERT_STR_EQ(trace, "w+ w!-125 timeout!-110 ");
}

TEST(wait_for_deadline_wins_even_if_the_work_swallows_cancellation) {
    ASSERT_EQ(run_timeout(1000, 300, 1), 300);
    ASSERT_STR_EQ(trace, "w+ w!-125 w- timeout!-110 ");
}

typedef struct {
    async_task task;
    worker_frame work;
    async_group shield;
    int code;
} sh_frame;

static async_status sh_run(async_task *t) {
    sh_frame *f = (sh_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_TRY(t) {
        AWAIT_SHIELD(t, &f->shield, worker(&f->work, "w", 500, 6));
        LOG("shielded=%ld ", (long)async_task_value(&f->work.task));
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
        LOG("outer!%d ", f->code);
    }
    ASYNC_END_TRY(t);
    LOG("outer-end ");
    ASYNC_END(t);
}

TEST(shield_keeps_the_child_running_when_the_awaiter_is_cancelled) {
    async_loop *loop = new_loop();
    static sh_frame f;
    static awaiter_frame watch;
    ASYNC_FRAME_INIT(&f, sh_run);
    async_spawn(loop, &f.task);
    async_spawn(loop, awaiter(&watch, "watch", &f.task));
    async_poll(loop);
    async_poll(loop);
    loop->now = 100;
    ASSERT(async_cancel(&f.task));
    while (async_poll(loop) >= 0) loop->now += 100;
    /* the awaiter saw the cancellation at once; its frame ended only after the shielded work did */
    ASSERT_STR_EQ(trace, "w+ outer!-125 outer-end w- watch=0 ");
    ASSERT_EQ(async_task_value(&f.work.task), 6);
}

/* ---- timer storage ---- */

static int allocs_left;
static void *failing_realloc(void *ctx, void *p, size_t n) {
    (void)ctx;
    if (n == 0) {
        free(p);
        return NULL;
    }
    if (allocs_left-- <= 0) return NULL;
    return realloc(p, n);
}

TEST(timer_heap_full_without_allocator_is_enomem) {
    async_loop *loop = new_loop();
    async_loop_set_allocator(loop, NULL, NULL);
    static worker_frame w[ASYNC_CONFIG_INLINE_TIMERS + 1];
    int i;
    for (i = 0; i <= ASYNC_CONFIG_INLINE_TIMERS; i++) async_spawn(loop, worker(&w[i], "", 10, 0));
    while (async_poll(loop) >= 0) loop->now += 10;
    for (i = 0; i < ASYNC_CONFIG_INLINE_TIMERS; i++) ASSERT_EQ(async_task_code(&w[i].task), 0);
    ASSERT_EQ(async_task_code(&w[ASYNC_CONFIG_INLINE_TIMERS].task), ASYNC_ENOMEM);
}

TEST(timer_heap_grows_and_allocation_failure_is_enomem) {
    async_loop *loop = new_loop();
    static worker_frame w[1000];
    int i, failed = 0;
    allocs_left = 2; /* 8 -> 16 -> 32, then the allocator fails */
    async_loop_set_allocator(loop, failing_realloc, NULL);
    for (i = 0; i < 1000; i++) async_spawn(loop, worker(&w[i], "", 10 + i % 13, 0));
    while (async_poll(loop) >= 0) loop->now += 1;
    for (i = 0; i < 1000; i++) failed += async_task_code(&w[i].task) == ASYNC_ENOMEM;
#if ASYNC_CONFIG_TIMER_FIFO
    ASSERT_EQ(failed, 1000 - 64 - 16); /* the lane's first 64 in-order sleeps (10..22, then each 22), the heap's 16 */
#else
    ASSERT_EQ(failed, 1000 - 32);
#endif
    async_loop_free_storage(loop);
    loop = new_loop();
    allocs_left = 100;
    async_loop_set_allocator(loop, failing_realloc, NULL);
    for (i = 0; i < 1000; i++) async_spawn(loop, worker(&w[i], "", 1000 - i, i));
    while (async_poll(loop) >= 0) loop->now += 1;
    for (i = 0; i < 1000; i++) ASSERT_EQ(async_task_value(&w[i].task), i);
    ASSERT_EQ(async_loop_now(loop), 1000);
    async_loop_free_storage(loop);
}

/* ---- error codes ---- */

TEST(error_codes_and_messages) {
    ASSERT_STR_EQ(async_strerror(ASYNC_ECANCELED), "task was cancelled");
    ASSERT_STR_EQ(async_strerror(12345), "unknown error");
    ASSERT(async_error_of(ASYNC_ETIMEDOUT)->code == ASYNC_ETIMEDOUT);
    ASSERT(async_error_of(ASYNC_EUSER) == NULL);
    ASSERT_STR_EQ(async_error_message(&worker_error), "worker failed");
    ASSERT_STR_EQ(async_error_message(NULL), "success");
    ASSERT(sizeof(async_task) <= 6 * sizeof(void *) + (ASYNC_CONFIG_TASK_NAMES ? sizeof(void *) : 0));
}

/* Sleeps set in deadline order take the FIFO lane, the others the heap: together they still fire by
 * deadline, equal deadlines in the order set, and a cancelled sleeper leaves either at once. */
TEST(timers_in_order_and_out_of_order_fire_by_deadline_then_set_order) {
    async_loop *loop = new_loop();
    static worker_frame w[200];
    static char names[200][8];
    static const int ms[] = {10, 20, 20, 5, 30, 20, 40, 5, 40, 50};
    int i;
    for (i = 0; i < 10; i++) {
        snprintf(names[i], sizeof names[i], "%c", 'a' + i);
        async_spawn(loop, worker(&w[i], names[i], ms[i], 0));
    }
    async_poll(loop);
    ASSERT_EQ(async_loop_timers(loop), 10);
    async_cancel(&w[1].task); /* in the lane */
    async_cancel(&w[3].task); /* in the heap */
    ASSERT_EQ(async_loop_timers(loop), 8); /* a cancelled sleeper leaves the timers at once */
    drain(loop);
    ASSERT_STR_EQ(trace, "a+ b+ c+ d+ e+ f+ g+ h+ i+ j+ b!-125 d!-125 h- a- c- f- e- g- i- j- ");
    ASSERT_EQ(async_loop_timers(loop), 0);
    async_loop_free_storage(loop);
    /* many in order, the lane grows past a wrap, and cancels from its middle */
    loop = new_loop();
    for (i = 0; i < 100; i++) async_spawn(loop, worker(&w[i], "", 100 + i / 3, i));
    async_poll(loop); /* 100 sleepers in order: deadlines 100..133 */
    for (i = 0; i < 200; i += 7) async_cancel(&w[i].task);
    loop->now = 120;
    async_poll(loop); /* those due by 120 fire: the lane's head moves on */
    for (i = 100; i < 200; i++) async_spawn(loop, worker(&w[i], "", 20 + i / 3, i));
    async_poll(loop); /* 100 more behind them (140..186): the ring wraps, then grows */
    for (i = 101; i < 200; i += 7) async_cancel(&w[i].task);
    drain(loop);
    for (i = 0; i < 200; i++)
        ASSERT_EQ(async_task_code(&w[i].task), (i < 100 ? i % 7 : (i - 101) % 7) ? 0 : ASYNC_ECANCELED);
    for (i = 0; i < 200; i++) ASSERT_EQ(async_task_value(&w[i].task), (i < 100 ? i % 7 : (i - 101) % 7) ? i : 0);
    ASSERT_EQ(async_loop_timers(loop), 0);
    async_loop_free_storage(loop);
}

static const test_case core_tests[] = {
    TEST_ENTRY(spawn_runs_in_fifo_order_and_sleep_zero_yields)
    TEST_ENTRY(equal_deadlines_fire_in_the_order_set)
    TEST_ENTRY(virtual_clock_jumps_exactly)
    TEST_ENTRY(poll_reports_how_long_to_sleep)
    TEST_ENTRY(await_coroutine_runs_inline_and_returns_its_value)
    TEST_ENTRY(several_awaiters_get_the_result_in_wait_order)
    TEST_ENTRY(awaiting_a_failed_task_raises_its_error_in_every_awaiter)
    TEST_ENTRY(unretrieved_error_is_reported_once)
    TEST_ENTRY(retrieving_an_error_later_takes_it_off_the_report)
    TEST_ENTRY(cancelled_task_is_not_reported_as_unretrieved)
    TEST_ENTRY(main_error_is_async_run_result)
    TEST_ENTRY(try_without_error_runs_finally)
    TEST_ENTRY(catch_handles_the_childs_error_then_finally)
    TEST_ENTRY(return_inside_try_runs_finally_first)
    TEST_ENTRY(error_raised_in_catch_runs_finally_and_propagates)
    TEST_ENTRY(nested_try_inside_catch)
    TEST_ENTRY(try_finally_without_catch_propagates_after_finally)
    TEST_ENTRY(corrupt_resume_point_fails_cleanly)
    TEST_ENTRY(cancel_sleeping_task_raises_ecanceled_in_it)
    TEST_ENTRY(cancel_finished_or_null_task_is_a_noop_returning_false)
    TEST_ENTRY(cancel_before_first_step_never_runs_the_body)
    TEST_ENTRY(cancel_while_running_takes_effect_at_next_await_and_can_be_survived)
    TEST_ENTRY(cancelling_an_awaiter_cancels_the_awaited_task_and_waits_for_it)
    TEST_ENTRY(future_wakes_waiters_in_order_and_cancel_detaches_one)
    TEST_ENTRY(future_error_is_raised_in_the_awaiter)
    TEST_ENTRY(main_waiting_forever_is_a_deadlock_and_its_finally_runs)
    TEST_ENTRY(gather_results_in_argument_order_in_the_longest_time)
    TEST_ENTRY(gather_first_error_propagates_at_once_others_keep_running)
    TEST_ENTRY(gather_settled_collects_errors_as_results)
    TEST_ENTRY(parent_ending_mid_gather_cancels_and_awaits_its_children)
    TEST_ENTRY(cancelling_a_task_awaiting_gather_cancels_the_children)
    TEST_ENTRY(gather_misuse_null_or_running_child_raises_and_leaves_nothing_running)
    TEST_ENTRY(gather_array_over_frames)
    TEST_ENTRY(task_group_joins_all_children)
    TEST_ENTRY(task_group_first_error_cancels_siblings_and_is_raised_after_all_ended)
    TEST_ENTRY(frame_end_waits_for_spawned_children_without_join)
    TEST_ENTRY(spawn_misuse_codes)
    TEST_ENTRY(wait_for_returns_the_result_in_time)
    TEST_ENTRY(wait_for_cancels_the_work_at_the_deadline)
    TEST_ENTRY(wait_for_deadline_wins_even_if_the_work_swallows_cancellation)
    TEST_ENTRY(shield_keeps_the_child_running_when_the_awaiter_is_cancelled)
    TEST_ENTRY(timer_heap_full_without_allocator_is_enomem)
    TEST_ENTRY(timer_heap_grows_and_allocation_failure_is_enomem)
    TEST_ENTRY(timers_in_order_and_out_of_order_fire_by_deadline_then_set_order)
    TEST_ENTRY(error_codes_and_messages)
    {NULL, NULL}
};
