/* The portable core under the virtual clock: tasks and their scheduling order, awaiting coroutines,
 * tasks and futures, errors (try/catch/finally, async with, errors nobody retrieved), cancellation at
 * every kind of await, and the core's misuse: NULL and nonsense arguments, coroutines stepped outside a
 * loop or by hand, corrupt resume points. Groups, sync primitives, generators and the loop's timers
 * have files of their own. */
#include "test.h"
#include "util.h"

#include <pthread.h>
#include <stdlib.h>

/* ---- scheduling and awaits ---- */

TEST(core_spawn_runs_in_fifo_order_and_sleep_zero_yields) {
    async_loop *loop = new_loop();
    static worker_frame w[3];
    int i;
    for (i = 0; i < 3; i++) ASSERT_EQ(async_spawn(loop, worker(&w[i], i == 0 ? "a" : i == 1 ? "b" : "c", 0, i)), 0);
    while (async_poll(loop) >= 0) {}
    ASSERT_STR_EQ(trace, "a+ b+ c+ a- b- c- ");
    for (i = 0; i < 3; i++) ASSERT_EQ(async_task_value(&w[i].task), i);
}

ASYNC_DEF(call_inline, worker_frame child; long got;) {
    LOG("call ");
    AWAIT(t, worker(&f->child, "child", 0, 42)); /* sleep(0): one yield inside the child */
    f->got = (long)async_task_value(&f->child.task);
    LOG("got%ld ", f->got);
    ASYNC_RETURN(t, f->got + 1);
} ASYNC_END_DEF

TEST(core_await_coroutine_runs_inline_and_returns_its_value) {
    async_loop *loop = new_loop();
    static call_inline_frame c;
    ASSERT_EQ(async_run(loop, ASYNC_CALL(call_inline, &c)), 0);
    ASSERT_STR_EQ(trace, "call child+ child- got42 ");
    ASSERT_EQ(async_task_value(&c.task), 43);
    /* inline: the child cost no scheduling of its own: 1 step to start, 1 after the yield */
    ASSERT_EQ(loop->steps, 2);
}

/* ---- deep chains of inline awaits: a step goes straight to the innermost coroutine, and each one
 * that ends hands the step back to its parent, so neither time per level nor C stack grows with depth */

typedef struct chain_frame {
    async_task task;
    struct chain_frame *below; /* the next level; NULL at the innermost */
    long value;
    int finally_ran;
} chain_frame;

static long chain_finallies;

static async_status chain_run(async_task *t) {
    chain_frame *f = (chain_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_TRY(t) {
        if (!f->below) {
            AWAIT_YIELD(t);
            AWAIT_SLEEP(t, 1000); /* the root's cancellation finds it here */
            f->value = 1;
        } else {
            async_task_init(&f->below->task, chain_run);
            AWAIT(t, &f->below->task);
            f->value = f->below->value + 1;
        }
    }
    ASYNC_FINALLY(t) {
        f->finally_ran = 1;
        chain_finallies++;
    }
    ASYNC_END_TRY(t);
    ASYNC_END(t);
}

static chain_frame *chain_new(long levels) {
    chain_frame *fs = (chain_frame *)calloc((size_t)levels, sizeof *fs);
    long i;
    if (!fs) test_fail(__FILE__, __LINE__, "out of memory");
    for (i = 0; i + 1 < levels; i++) fs[i].below = &fs[i + 1];
    async_task_init(&fs[0].task, chain_run);
    chain_finallies = 0;
    return fs;
}

typedef struct {
    chain_frame *chain;
    int rc;
} chain_job;

static void *chain_thread(void *arg) {
    chain_job *job = (chain_job *)arg;
    async_loop loop;
    async_loop_init(&loop);
    job->rc = async_run(&loop, &job->chain[0].task);
    return NULL;
}

TEST(core_a_million_nested_inline_awaits_run_on_a_128_kib_stack) {
    /* under valgrind (50 times slower) 100,000: still 80 times what the stack could hold recursively */
    const long levels = getenv("ASYNC_TEST_VALGRIND") ? 100000 : 1000000;
    chain_job job = {chain_new(levels), -1};
    pthread_attr_t attr;
    pthread_t th;
    /* a thread whose whole stack is 128 KiB: the chain would need ~100 bytes of it per level if a step
     * recursed through the levels */
    ASSERT_EQ(pthread_attr_init(&attr), 0);
    ASSERT_EQ(pthread_attr_setstacksize(&attr, 128 * 1024), 0);
    ASSERT_EQ(pthread_create(&th, &attr, chain_thread, &job), 0);
    ASSERT_EQ(pthread_join(th, NULL), 0);
    pthread_attr_destroy(&attr);
    ASSERT_EQ(job.rc, 0);
    ASSERT_EQ(job.chain[0].value, levels);
    ASSERT_EQ(chain_finallies, levels);
    ASSERT(async_task_done(&job.chain[levels - 1].task));
    free(job.chain);
}

TEST(core_cancelling_a_deep_chain_runs_every_finally_innermost_first) {
    async_loop *loop = new_loop();
    const long levels = 10000;
    chain_frame *fs = chain_new(levels);
    ASSERT_EQ(async_spawn(loop, &fs[0].task), 0);
    ASSERT(async_poll(loop) == 0); /* the chain is built, the innermost one yielded */
    ASSERT(async_poll(loop) > 0);  /* now it sleeps, 10,000 levels down */
    ASSERT_STR_EQ(async_task_state(&fs[0].task), "sleeping");
    ASSERT(async_cancel(&fs[levels / 2].task)); /* any level: the cancellation is the task's */
    while (async_poll(loop) >= 0) {}
    ASSERT(async_task_cancelled(&fs[0].task));
    ASSERT_EQ(chain_finallies, levels);
    ASSERT_EQ(fs[0].value, 0);
    ASSERT(async_task_done(&fs[levels - 1].task) && async_task_done(&fs[1].task));
    free(fs);
}

TEST(core_deep_chain_stepped_by_hand_completes) {
    /* no loop: the coroutine's function called directly, as a test or an embedding might */
    const long levels = 1000;
    chain_frame *fs = chain_new(levels);
    fs[levels - 1].below = NULL;
    /* without a loop the innermost one's first yield fails (no loop to yield to), which unwinds the chain */
    ASSERT_EQ(step_by_hand(&fs[0].task), ASYNC_DONE);
    ASSERT_EQ(async_task_code(&fs[0].task), ASYNC_EINVAL);
    ASSERT_EQ(chain_finallies, levels);
    free(fs);
}

TEST(core_several_awaiters_get_the_result_in_wait_order) {
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

TEST(core_awaiting_a_failed_task_raises_its_error_in_every_awaiter) {
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

TEST(core_main_waiting_forever_is_a_deadlock_and_its_finally_runs) {
    async_loop *loop = new_loop();
    async_future fut;
    static awaiter_frame w;
    memset(&fut, 0, sizeof fut);
    ASSERT_EQ(async_run(loop, fwait(&w, "m", &fut)), ASYNC_EDEADLK);
    ASSERT_STR_EQ(trace, "m!-125 "); /* cancelled so that its handlers ran */
    ASSERT(async_task_done(&w.task));
}

TEST(core_await_of_itself_nothing_or_an_inline_running_task) {
    async_loop *loop = new_loop();
    static script_frame a, b, c, d;
    static sleeper_frame x, failing;
    static async_task zero;
    script_init(&c);
    script_add(&c, OP_AWAIT, &c.task);
    script_add(&c, OP_AWAIT, &zero);
    script_add(&c, OP_AWAIT, NULL);
    script_add(&c, OP_FUTURE, NULL);
    script_add(&c, OP_THROW_NULL, NULL); /* raising a NULL error record raises EINVAL */
    script_one(&a, OP_AWAIT, sleeper(&x, 100, 7));
    script_one(&b, OP_SLEEP, NULL)->ms = 10;
    script_add(&b, OP_AWAIT, &x.task); /* x runs inline inside a: it is not a task one can await */
    ASSERT_EQ(async_spawn(loop, &c.task), 0);
    ASSERT_EQ(async_spawn(loop, &a.task), 0);
    ASSERT_EQ(async_spawn(loop, &b.task), 0);
    run_until(loop, 20);
    ASSERT_EQ(c.code[0], ASYNC_EINVAL);
    ASSERT_EQ(c.code[1], ASYNC_EINVAL);
    ASSERT_EQ(c.code[2], ASYNC_EINVAL);
    ASSERT_EQ(c.code[3], ASYNC_EINVAL);
    ASSERT_EQ(c.code[4], ASYNC_EINVAL);
    ASSERT_EQ(b.code[1], ASYNC_EBUSY);
    ASSERT(async_task_done(&b.task));
    {   /* c ended after its last catch block: where names the line of that try, in script_run */
        const char *fn = NULL;
        unsigned line = 0;
        ASSERT(async_task_where(&c.task, NULL, &fn, &line));
        ASSERT_STR_EQ(fn, "script_run");
        ASSERT(line > script_first_line && line < script_last_line);
    }
    ASSERT_STR_EQ(async_task_state(&x.task), "running"); /* untouched by b */
    ASSERT(async_task_parent(&x.task) == &a.task);
    ASSERT(async_task_loop(&x.task) == loop);
    /* cancelling a coroutine that runs inline cancels the task it is part of */
    ASSERT(async_cancel(&x.task));
    drain(loop);
    ASSERT(x.cancelled);
    ASSERT(async_task_cancelled(&x.task));
    ASSERT_EQ(a.code[0], ASYNC_ECANCELED);
    ASSERT_EQ(a.at[0], 20);
    /* a failed task awaited twice raises its error both times */
    sleeper(&failing, 5, 0);
    failing.fail = &err_a;
    script_one(&d, OP_AWAIT, &failing.task);
    script_add(&d, OP_AWAIT, &failing.task);
    ASSERT_EQ(async_spawn(loop, &failing.task), 0);
    ASSERT_EQ(async_spawn(loop, &d.task), 0);
    drain(loop);
    ASSERT_EQ(d.code[0], ASYNC_EUSER + 1);
    ASSERT_EQ(d.code[1], ASYNC_EUSER + 1);
    ASSERT_EQ(async_loop_report_errors(loop), 0); /* retrieved by the awaits */
    /* a coroutine that finished inline: awaiting it again, here or elsewhere, gives its outcome */
    {
        static script_frame e, e2;
        static sleeper_frame y;
        script_one(&e, OP_AWAIT, sleeper(&y, 5, 4));
        script_add(&e, OP_AWAIT, &y.task);
        script_one(&e2, OP_SLEEP, NULL)->ms = 10;
        script_add(&e2, OP_AWAIT, &y.task);
        script_add(&e2, OP_AWAIT, &x.task); /* finished cancelled inside a */
        ASSERT_EQ(async_spawn(loop, &e.task), 0);
        ASSERT_EQ(async_spawn(loop, &e2.task), 0);
        drain(loop);
        ASSERT(e.reached[0] && e.reached[1]);
        ASSERT(e2.reached[1]);
        ASSERT_EQ(e2.code[2], ASYNC_ECANCELED);
        ASSERT_EQ(async_task_value(&y.task), 4);
    }
}

/* ---- errors nobody retrieved ---- */

static int reported;

static void count_report(async_loop *loop, async_task *task, const async_error *e, void *ctx) {
    (void)loop;
    (void)ctx;
    reported++;
    LOG("report:%s:%d ", async_task_name(task), e->code);
}

TEST(core_unretrieved_error_is_reported_once) {
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

TEST(core_retrieving_an_error_later_takes_it_off_the_report) {
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
TEST(core_cancelled_task_is_not_reported_as_unretrieved) {
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

TEST(core_main_error_is_async_run_result) {
    async_loop *loop = new_loop();
    static worker_frame w;
    async_task_init(&w.task, worker_run);
    w.name = "m";
    w.fail = 1;
    ASSERT_EQ(async_run(loop, &w.task), ASYNC_EUSER + 1);
}

TEST(core_unretrieved_error_without_a_handler_is_counted_and_forgotten) {
    async_loop *loop = new_loop();
    static sleeper_frame w;
    sleeper(&w, 5, 0);
    w.fail = &err_b;
    ASSERT_EQ(async_spawn(loop, &w.task), 0);
    drain(loop);
    ASSERT_EQ(async_loop_report_errors(loop), 1);
    ASSERT_EQ(async_loop_report_errors(loop), 0);
    ASSERT(async_task_error(&w.task) == &err_b); /* still readable on the task */
    async_loop_set_error_handler(loop, count_report, NULL);
    ASSERT_EQ(async_loop_report_errors(loop), 0);
    ASSERT_EQ(reported, 0);
}

TEST(core_error_codes_and_messages) {
    ASSERT_STR_EQ(async_strerror(ASYNC_ECANCELED), "task was cancelled");
    ASSERT_STR_EQ(async_strerror(12345), "unknown error");
    ASSERT(async_error_of(ASYNC_ETIMEDOUT)->code == ASYNC_ETIMEDOUT);
    ASSERT(async_error_of(ASYNC_ECERT)->code == ASYNC_ECERT); /* a code of its own: no errno means it */
    ASSERT_STR_EQ(async_strerror(ASYNC_ECERT), "certificate rejected (TLS verification failed)");
    ASSERT(async_error_of(ASYNC_EUSER) == NULL);
    ASSERT_STR_EQ(async_error_message(&worker_error), "worker failed");
    ASSERT_STR_EQ(async_error_message(NULL), "success");
    ASSERT(sizeof(async_task) <= 6 * sizeof(void *) + (ASYNC_CONFIG_TASK_NAMES ? sizeof(void *) : 0));
}

/* ---- try / catch / finally, async with ---- */

static const async_error other_error = {ASYNC_EUSER + 2, "other"};

/* mode: 0 ok, 1 child fails, 2 return inside try, 3 raise in catch, 4 nested */
ASYNC_DEF(tcf, int mode; int child_fails; worker_frame child;) {
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
} ASYNC_END_DEF

static int run_tcf(int mode, int child_fails) {
    async_loop *loop = new_loop();
    static tcf_frame f;
    return async_run(loop, ASYNC_CALL(tcf, &f, mode, child_fails));
}

TEST(core_try_without_error_runs_finally) {
    ASSERT_EQ(run_tcf(0, 0), 0);
    ASSERT_STR_EQ(trace, "try c+ c- after finally end ");
}

TEST(core_catch_handles_the_childs_error_then_finally) {
    ASSERT_EQ(run_tcf(1, 1), 0);
    ASSERT_STR_EQ(trace, "try c+ catch1001 finally end ");
}

TEST(core_return_inside_try_runs_finally_first) {
    static tcf_frame *fp;
    ASSERT_EQ(run_tcf(2, 0), 0);
    ASSERT_STR_EQ(trace, "try finally ");
    (void)fp;
}

TEST(core_error_raised_in_catch_runs_finally_and_propagates) {
    ASSERT_EQ(run_tcf(3, 1), ASYNC_EUSER + 2);
    ASSERT_STR_EQ(trace, "try c+ catch1001 finally ");
}

TEST(core_nested_try_inside_catch) {
    ASSERT_EQ(run_tcf(4, 1), 0);
    ASSERT_STR_EQ(trace, "try c+ catch1001 inner1003 innerfin finally end ");
}

ASYNC_DEF(fin_only, int stage;) {
    ASYNC_TRY(t) {
        AWAIT_SLEEP(t, 10);
        if (f->stage == 1) ASYNC_THROW(t, ASYNC_EUSER + 4, "no catch here");
    }
    ASYNC_FINALLY(t) {
        LOG("fin ");
    }
    ASYNC_END_TRY(t);
    LOG("after ");
} ASYNC_END_DEF

TEST(core_try_finally_without_catch_propagates_after_finally) {
    async_loop *loop = new_loop();
    static fin_only_frame f;
    ASSERT_EQ(async_run(loop, ASYNC_CALL(fin_only, &f, 1)), ASYNC_EUSER + 4);
    ASSERT_STR_EQ(trace, "fin ");
    loop = new_loop();
    ASSERT_EQ(async_run(loop, ASYNC_CALL(fin_only, &f, 0)), 0);
    ASSERT_STR_EQ(trace, "fin after ");
}

TEST(core_corrupt_resume_point_fails_cleanly) {
    async_loop *loop = new_loop();
    static worker_frame w;
    async_spawn(loop, worker(&w, "w", 10, 0));
    async_poll(loop);
    w.task.lc = 7; /* no such resume point */
    loop->now += 10;
    while (async_poll(loop) >= 0) {}
    ASSERT_EQ(async_task_code(&w.task), ASYNC_EFAULT);
}

TEST(core_corrupt_resume_point_in_the_handler_range_fails_with_efault) {
    async_loop *loop = new_loop();
    static sleeper_frame a, b, c;
    async_spawn(loop, sleeper(&a, 10, 1));
    async_spawn(loop, sleeper(&b, 10, 1));
    async_spawn(loop, sleeper(&c, 10, 1));
    async_poll(loop);
    a.task.lc = 0x4000; /* a catch label of line 0: no such try */
    b.task.lc = 0xC123; /* an end-of-try label of a try that does not exist */
    c.task.lc = 0x8000; /* a finally label of line 0 */
    drain(loop);
    ASSERT_EQ(async_task_code(&a.task), ASYNC_EFAULT);
    ASSERT_EQ(async_task_code(&b.task), ASYNC_EFAULT);
    ASSERT_EQ(async_task_code(&c.task), ASYNC_EFAULT);
    ASSERT_EQ(async_task_value(&a.task), 0);
}

/* ---- async with: the exit part runs on every way out, also when it awaits ---- */

static const async_error with_error = {ASYNC_EUSER + 7, "body failed"};

ASYNC_DEF(with, int ms; int fail;) {
    LOG("enter ");
    AWAIT_SLEEP(t, 1);
    ASYNC_WITH(t) {
        LOG("body ");
        AWAIT_SLEEP(t, f->ms);
        if (f->fail) ASYNC_THROW_ERROR(t, &with_error);
        LOG("done ");
    }
    ASYNC_WITH_EXIT(t) {
        AWAIT_SLEEP(t, 100); /* the release itself awaits */
        LOG("exit@%u ", NOW());
    }
    ASYNC_END_WITH(t);
    LOG("after ");
} ASYNC_END_DEF

TEST(core_async_with_exit_runs_on_success_error_and_cancellation) {
    async_loop *loop = new_loop();
    static with_frame f;
    ASSERT_EQ(async_run(loop, ASYNC_CALL(with, &f, 10)), 0);
    ASSERT_STR_EQ(trace, "enter body done exit@111 after ");

    loop = new_loop();
    ASSERT_EQ(async_run(loop, ASYNC_CALL(with, &f, 10, 1)), with_error.code);
    ASSERT_STR_EQ(trace, "enter body exit@111 ");

    loop = new_loop();
    async_spawn(loop, ASYNC_CALL(with, &f, 1000));
    async_poll(loop);
    loop->now = 1;
    async_poll(loop);
    loop->now = 50;
    async_cancel(&f.task); /* a cancel while the exit awaits does not cut the exit short */
    drain(loop);
    ASSERT_STR_EQ(trace, "enter body exit@150 ");
    ASSERT(async_task_cancelled(&f.task));
}

/* ---- cancellation ---- */

TEST(core_cancel_sleeping_task_raises_ecanceled_in_it) {
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

TEST(core_cancel_finished_or_null_task_is_a_noop_returning_false) {
    async_loop *loop = new_loop();
    static worker_frame w;
    async_spawn(loop, worker(&w, "w", 0, 3));
    while (async_poll(loop) >= 0) {}
    ASSERT(!async_cancel(&w.task));
    ASSERT(!async_cancel(NULL));
    ASSERT_EQ(async_task_value(&w.task), 3);
    ASSERT_EQ(async_task_code(&w.task), 0);
}

TEST(core_cancel_before_first_step_never_runs_the_body) {
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

ASYNC_DEF(selfcancel, int rounds;) {
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
} ASYNC_END_DEF

TEST(core_cancel_while_running_takes_effect_at_next_await_and_can_be_survived) {
    async_loop *loop = new_loop();
    static selfcancel_frame f;
    ASSERT_EQ(async_run(loop, ASYNC_CALL(selfcancel, &f)), 0);
    ASSERT_STR_EQ(trace, "still cancelled again ");
    ASSERT_EQ(async_loop_now(loop), 100);
}

TEST(core_cancelling_an_awaiter_cancels_the_awaited_task_and_waits_for_it) {
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

/* ---- a cancellation already pending when each kind of await starts ---- */

TEST(core_cancel_pending_at_the_start_of_each_await_raises_and_takes_nothing) {
    async_loop *loop = new_loop();
    static script_frame o, prod;
    static sleeper_frame run, c[6], spawned;
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
    static producer_frame pr;
    script_step *st;
    int i;
    async_event_set(&ev);
    async_condition_init(&cv, NULL);
    async_semaphore_init(&sem, 1, false);
    async_queue_init(&q, ASYNC_QUEUE_FIFO, items, NULL, 2);
    async_queue_put_nowait(&q, 9);
    async_queue_task_done(&q);
    script_init(&o);
    script_add(&o, OP_SLEEP, NULL)->ms = 10;
    script_add(&o, OP_AWAIT, sleeper(&run, 30, 6));
    script_add(&o, OP_FUTURE, &fut);
    st = script_add(&o, OP_GATHER, &g1);
    st->c0 = sleeper(&c[0], 5, 1);
    st->c1 = sleeper(&c[1], 5, 1);
    st = script_add(&o, OP_GATHER_ARRAY, &g2);
    st->c0 = sleeper(&c[2], 5, 1);
    sleeper(&c[3], 5, 1);
    st->n = 2;
    st->stride = sizeof c[0];
    script_add(&o, OP_SPAWN, &g3)->c0 = sleeper(&spawned, 50, 1); /* not cancelled: starts the child */
    script_add(&o, OP_GROUP, &g3);                                  /* cancelled: passes it to the child */
    st = script_add(&o, OP_TIMEOUT, &tmo);
    st->c0 = sleeper(&c[4], 5, 1);
    st->ms = 100;
    script_add(&o, OP_SHIELD, &g4)->c0 = sleeper(&c[5], 5, 1);
    script_add(&o, OP_LOCK, &lk);
    script_add(&o, OP_EVENT, &ev);
    script_add(&o, OP_LOCK, async_condition_lock(&cv)); /* not cancelled: takes the lock */
    script_add(&o, OP_COND, &cv);
    script_add(&o, OP_SEM, &sem);
    script_add(&o, OP_QPUT, &q)->item = 4;
    script_add(&o, OP_QGET, &q)->out = &o.got;
    ASSERT_EQ(o.nsteps, 16);
    for (i = 0; i < o.nsteps; i++)
        if (i != 5 && i != 11) o.s[i].self_cancel = 1;
    ASSERT_EQ(async_spawn(loop, &run.task), 0);
    ASSERT_EQ(async_spawn(loop, &o.task), 0);
    drain(loop);
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
    script_init(&o);
    script_add(&o, OP_QJOIN, &q)->self_cancel = 1;
    st = script_add(&o, OP_NEXT, &gen);
    st->self_cancel = 1;
    st->c0 = producer(&pr, 2, 0);
    st = script_add(&o, OP_NEXT, &gen2); /* its producer cancels itself just before it yields */
    st->c0 = script_init(&prod);
    st->out = &o.got;
    st = script_add(&prod, OP_YIELD_VALUE, NULL);
    st->self_cancel = 1;
    st->item = 3;
    ASSERT_EQ(async_spawn(loop, &o.task), 0);
    drain(loop);
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

/* ---- futures ---- */

TEST(core_future_wakes_waiters_in_order_and_cancel_detaches_one) {
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

TEST(core_future_error_is_raised_in_the_awaiter) {
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

TEST(core_future_reset_between_its_completion_and_the_waiters_run_makes_them_wait_again) {
    async_loop *loop = new_loop();
    static script_frame o;
    static async_future f;
    script_one(&o, OP_FUTURE, &f);
    ASSERT_EQ(async_spawn(loop, &o.task), 0);
    async_poll(loop);
    ASSERT_EQ(async_future_init(&f), ASYNC_EBUSY); /* a task waits on it */
    ASSERT_EQ(async_future_set_value(&f, 1), 0);
    ASSERT_EQ(async_future_init(&f), 0); /* the waiter was woken already, not yet run */
    async_poll(loop);
    ASSERT_STR_EQ(async_task_state(&o.task), "waiting"); /* no result: it waits again */
    ASSERT(!o.reached[0]);
    ASSERT_EQ(async_future_set_value(&f, 2), 0);
    drain(loop);
    ASSERT(o.reached[0] && o.code[0] == 0);
    ASSERT_EQ(async_future_value(&f), 2);
}

/* ---- misuse: NULL and nonsense arguments give the documented code or a neutral value ---- */

TEST(core_spawn_misuse_codes) {
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

static async_status return_five_run(async_task *t) {
    ASYNC_BEGIN(t);
    ASYNC_RETURN(t, 5);
    ASYNC_END(t);
}

TEST(core_task_queries_of_null_unscheduled_and_corrupt_tasks) {
    async_loop *loop = new_loop();
    static async_task zero, bogus;
    static sleeper_frame w;
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
    ASSERT(!async_frame_init(NULL, sizeof w, sleeper_run));
    ASSERT(!async_frame_init(&w.task, sizeof w, NULL));
    ASSERT(!async_frame_init(&w.task, sizeof w.task - 1, sleeper_run)); /* smaller than a header */
    ASSERT_STR_EQ(async_task_name(NULL), "task");
    async_task_set_name(NULL, "x"); /* ignored */
    /* a zeroed header: no function, no loop */
    ASSERT(!async_task_where(&zero, &file, NULL, &line));
    ASSERT(async_task_loop(&zero) == NULL);
    ASSERT_EQ(async_spawn(loop, &zero), ASYNC_EINVAL); /* nothing to run */
    ASSERT(!async_loop_has_ready(loop));
    /* a prepared task that was never spawned belongs to no loop and has no result yet */
    sleeper(&w, 10, 3);
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
    ASSERT(file != NULL && strstr(file, "util.c") != NULL);
    /* a corrupt state byte reads as "invalid" */
    async_task_init(&bogus, sleeper_run);
    bogus.state = 200;
    ASSERT_STR_EQ(async_task_state(&bogus), "invalid");
    /* a task that ended through ASYNC_RETURN tells where it ended: line 0 (no await left) */
    async_task_init(&r, return_five_run);
    ASSERT_EQ(async_run(loop, &r), 0);
    ASSERT_EQ(async_task_value(&r), 5);
    line = 99;
    ASSERT(async_task_where(&r, NULL, NULL, &line));
    ASSERT_EQ(line, 0);
    ASSERT_EQ(async_task_value(&r), 5); /* where changed nothing */
}

TEST(core_failed_task_is_not_cancelled_and_its_value_is_zero) {
    async_loop *loop = new_loop();
    static sleeper_frame w;
    sleeper(&w, 5, 9);
    w.fail = &err_a;
    ASSERT_EQ(async_run(loop, &w.task), ASYNC_EUSER + 1);
    ASSERT(async_task_done(&w.task));
    ASSERT(!async_task_cancelled(&w.task)); /* failed, but not with ECANCELED */
    ASSERT_EQ(async_task_value(&w.task), 0);
    ASSERT(async_task_error(&w.task) == &err_a);
    ASSERT_EQ(async_loop_report_errors(loop), 0); /* retrieved by async_run */
}

TEST(core_future_and_group_queries_of_null) {
    static async_future f;
    static async_group g;
    ASSERT_EQ(async_future_init(NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_future_set_value(NULL, 1), ASYNC_EINVAL);
    ASSERT_EQ(async_future_set_error(NULL, &err_a), ASYNC_EINVAL);
    ASSERT_EQ(async_future_set_error(&f, NULL), ASYNC_EINVAL);
    ASSERT(!async_future_done(&f)); /* still pending */
    ASSERT(!async_future_done(NULL));
    ASSERT_EQ(async_future_value(NULL), 0);
    ASSERT(async_future_error(NULL) == NULL);
    ASSERT_EQ(async_future_set_error(&f, &err_a), 0);
    ASSERT_EQ(async_future_value(&f), 0); /* failed: no value */
    ASSERT(async_future_error(&f) == &err_a);
    ASSERT_EQ(async_future_set_value(&f, 1), ASYNC_EBUSY); /* already complete */
    ASSERT(async_future_error(&f) == &err_a);
    ASSERT_EQ(async_future_init(&f), 0);
    ASSERT(!async_future_done(&f) && async_future_error(&f) == NULL);
    ASSERT_EQ(async_group_running(NULL), 0);
    ASSERT(async_group_error(NULL) == NULL);
    ASSERT(async_group_error(&g) == NULL);
    ASSERT_EQ(async_group_spawn(NULL, &g, NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_group_spawn((async_task *)&f, NULL, (async_task *)&f), ASYNC_EINVAL);
    ASSERT_EQ(async_future_set_value(&f, 3), 0);
    ASSERT(async_future_done(&f));
    ASSERT_EQ(async_future_set_error(&f, &err_a), ASYNC_EBUSY); /* complete: the value stays */
    ASSERT_EQ(async_future_value(&f), 3);
}

/* ---- coroutines stepped outside a loop, and waiting tasks stepped by hand ---- */

TEST(core_coroutine_stepped_without_a_loop_gets_einval_where_it_needs_one) {
    static script_frame o, inl;
    static sleeper_frame c, s, w, gated;
    static producer_frame p;
    static async_group g, h;
    static async_gen gen;
    static async_event open_gate;
    script_step *st;
    script_init(&o);
    script_add(&o, OP_SLEEP, NULL)->ms = 5;
    st = script_add(&o, OP_GATHER, &g);
    st->c0 = sleeper(&c, 0, 1);
    st->c1 = sleeper(&s, 0, 2);
    script_add(&o, OP_NEXT, &gen)->c0 = producer(&p, 3, 0);
    script_add(&o, OP_GROUP_SPAWN_API, &h)->c0 = sleeper(&w, 0, 3);
    ASSERT_EQ(step_by_hand(&o.task), ASYNC_DONE); /* nothing waited: each step failed at once */
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
    script_one(&inl, OP_AWAIT, sleeper(&gated, 0, 8));
    gated.gate = &open_gate;
    ASSERT_EQ(step_by_hand(&inl.task), ASYNC_DONE);
    ASSERT(inl.reached[0]);
    ASSERT_EQ(async_task_value(&gated.task), 8);
    ASSERT_EQ(async_task_code(&inl.task), 0);
}

TEST(core_resuming_a_waiting_task_by_hand_changes_nothing) {
    async_loop *loop = new_loop();
    static script_frame o[16];
    static sleeper_frame w[3];
    static producer_frame pr;
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
    script_step *st;
    int i, n = 15;
    async_condition_init(&cv, NULL);
    async_semaphore_init(&sem, 0, false);
    async_queue_init(&qfull, ASYNC_QUEUE_FIFO, s1, NULL, 1);
    async_queue_put_nowait(&qfull, 1);
    async_queue_init(&qempty, ASYNC_QUEUE_FIFO, s2, NULL, 1);
    script_one(&o[0], OP_SLEEP, NULL)->ms = 10;
    script_one(&o[1], OP_SLEEP, NULL)->ms = 0; /* ready again at once */
    script_one(&o[2], OP_FUTURE, &fut);
    script_one(&o[3], OP_LOCK, &lk);
    script_add(&o[3], OP_SLEEP, NULL)->ms = 10;
    script_add(&o[3], OP_UNLOCK, &lk);
    script_one(&o[4], OP_LOCK, &lk);
    script_add(&o[4], OP_UNLOCK, &lk);
    script_one(&o[5], OP_LOCK, async_condition_lock(&cv));
    script_add(&o[5], OP_COND, &cv);
    script_one(&o[6], OP_EVENT, &ev);
    script_one(&o[7], OP_SEM, &sem);
    script_one(&o[8], OP_QPUT, &qfull)->item = 2;
    script_one(&o[9], OP_QGET, &qempty)->out = &o[9].got;
    script_one(&o[10], OP_QJOIN, &qfull);
    st = script_one(&o[11], OP_GATHER, &g);
    st->c0 = sleeper(&w[0], 10, 1);
    st->c1 = sleeper(&w[1], 20, 2);
    script_one(&o[12], OP_AWAIT, sleeper(&w[2], 10, 3));
    st = script_one(&o[13], OP_NEXT, &gen);
    st->c0 = producer(&pr, 3, 10);
    st->out = &o[13].got;
    script_add(&o[13], OP_SLEEP, NULL)->ms = 10;
    script_add(&o[13], OP_GEN_CLOSE, &gen);
    pr.cleanup_ms = 10;
    script_one(&o[14], OP_LOCK, async_condition_lock(&cv)); /* the notifier, started later */
    script_add(&o[14], OP_NOTIFY, &cv)->n = 1;
    script_add(&o[14], OP_UNLOCK, async_condition_lock(&cv));
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
        ASSERT_EQ(step_by_hand(&o[i].task), ASYNC_PENDING);
        ASSERT_STR_EQ(async_task_state(&o[i].task), before[i]);
        ASSERT(!o[i].reached[i == 5 ? 1 : 0] && o[i].code[i == 5 ? 1 : 0] == 0); /* o[5] waits at step 1 */
    }
    ASSERT_STR_EQ(async_task_state(&o[5].task), "waiting");
    ASSERT(!async_lock_locked(async_condition_lock(&cv))); /* the condition wait let go of it */
    /* at 10 the producer yields 1 and then waits at its yield: step it by hand too */
    run_until(loop, 10);
    ASSERT_EQ(o[13].got, 1);
    ASSERT_STR_EQ(async_task_state(&pr.task), "waiting");
    ASSERT_EQ(step_by_hand(&pr.task), ASYNC_PENDING);
    ASSERT_STR_EQ(async_task_state(&pr.task), "waiting");
    /* at 20 the consumer closes the generator and waits for the producer's 10 ms cleanup */
    run_until(loop, 20);
    ASSERT_EQ(pr.cleaned, 1);
    ASSERT_STR_EQ(async_task_state(&o[13].task), "awaiting children");
    ASSERT_EQ(step_by_hand(&o[13].task), ASYNC_PENDING);
    ASSERT_STR_EQ(async_task_state(&o[13].task), "awaiting children");
    /* now release everything the ordinary way: every wait ends as if the hand steps never happened */
    ASSERT_EQ(async_future_set_value(&fut, 4), 0);
    ASSERT_EQ(async_event_set(&ev), 0);
    ASSERT_EQ(async_semaphore_release(&sem), 0);
    ASSERT_EQ(async_queue_get_nowait(&qfull, &x), 0); /* room for the putter */
    ASSERT_EQ(x, 1);
    ASSERT_EQ(async_queue_put_nowait(&qempty, 5), 0); /* an item for the getter */
    ASSERT_EQ(async_spawn(loop, &o[14].task), 0);
    drain(loop);
    ASSERT_EQ(async_queue_get_nowait(&qfull, &x), 0);
    ASSERT_EQ(x, 2);
    ASSERT_EQ(async_queue_task_done(&qfull), 0);
    ASSERT_EQ(async_queue_task_done(&qfull), 0); /* both items done: the joiner goes */
    drain(loop);
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
    ASSERT_EQ(loop_allocs, 0);
}

/* ---- awaiting the task you run in ---- */

ASYNC_DEF(self_awaiter, async_task *target; int code;) {
    ASYNC_TRY(t) {
        AWAIT(t, f->target);
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

ASYNC_DEF(runs_its_awaiter, self_awaiter_frame child; async_group g; int gathered;) {
    ASYNC_CALL(self_awaiter, &f->child, t); /* the child awaits this very task */
    if (f->gathered)
        AWAIT_GATHER(t, &f->g, &f->child.task);
    else
        AWAIT(t, &f->child.task);
} ASYNC_END_DEF

TEST(core_inline_child_awaiting_the_task_it_runs_in_is_einval) {
    async_loop *loop = new_loop();
    static runs_its_awaiter_frame f;
    ASSERT_EQ(async_run(loop, ASYNC_CALL(runs_its_awaiter, &f)), 0); /* it hung before */
    ASSERT_EQ(f.child.code, ASYNC_EINVAL);
}

TEST(core_gathered_child_awaiting_its_parent_is_einval) {
    async_loop *loop = new_loop();
    static runs_its_awaiter_frame f;
    ASSERT_EQ(async_run(loop, ASYNC_CALL(runs_its_awaiter, &f, .gathered = 1)), 0);
    ASSERT_EQ(f.child.code, ASYNC_EINVAL);
}

TEST(core_awaiting_a_finished_or_an_unrelated_running_task_still_works) {
    async_loop *loop = new_loop();
    static self_awaiter_frame none, a, b;
    ASYNC_CALL(self_awaiter, &none, NULL); /* awaits NULL: EINVAL, then ends */
    ASSERT_EQ(async_spawn(loop, &none.task), 0);
    ASSERT_EQ(async_run(loop, ASYNC_CALL(self_awaiter, &a, &none.task)), 0); /* running, unrelated */
    ASSERT_EQ(none.code, ASYNC_EINVAL);
    ASSERT_EQ(a.code, 0);
    ASSERT_EQ(async_run(loop, ASYNC_CALL(self_awaiter, &b, &none.task)), 0); /* finished: at once */
    ASSERT_EQ(b.code, 0);
}

/* ---- what a task holds while it awaits inline: its pending outcome waits in its first inline child's
 * frame, and comes back when that child ends, however the child ends ---- */

ASYNC_DEF(chain_nap, int ms; long v;) {
    AWAIT_SLEEP(t, f->ms);
    ASYNC_RETURN(t, f->v);
} ASYNC_END_DEF

/* A break pending in a finally block, and an error, are the task's r while the block awaits a coroutine
 * inline: both take effect after it. */
ASYNC_DEF(chain_in_finally, int i; chain_nap_frame s; int after;) {
    for (f->i = 0; f->i < 5; f->i++) {
        ASYNC_TRY(t) {
            if (f->i == 2) break;
        }
        ASYNC_FINALLY(t) {
            AWAIT_CALL(t, chain_nap, &f->s, 1, 7);
        }
        ASYNC_END_TRY(t);
    }
    f->after = f->i;
    ASYNC_TRY(t) {
        ASYNC_THROW(t, ASYNC_EPROTO, "x");
    }
    ASYNC_FINALLY(t) {
        AWAIT_CALL(t, chain_nap, &f->s, 1, 9);
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

TEST(core_pending_break_and_error_survive_an_inline_await_in_finally) {
    async_loop *loop = new_loop();
    static chain_in_finally_frame m;
    ASSERT_EQ(async_run(loop, ASYNC_CALL(chain_in_finally, &m)), ASYNC_EPROTO);
    ASSERT_EQ(m.after, 2);
}

/* An inline child returns while a task spawned in its frame still runs: it waits for that one (ASYNC_END's
 * return case), then its value reaches the parent, whose pending error is kept meanwhile. */
ASYNC_DEF(chain_returns_with_child, async_group g; chain_nap_frame s;) {
    ASYNC_SPAWN(t, &f->g, ASYNC_CALL(chain_nap, &f->s, 50, 1));
    ASYNC_RETURN(t, 77);
} ASYNC_END_DEF

ASYNC_DEF(chain_finishing_parent, chain_returns_with_child_frame c; long got; int pend;) {
    ASYNC_TRY(t) {
        ASYNC_THROW(t, ASYNC_EPROTO, "pending");
    }
    ASYNC_FINALLY(t) {
        AWAIT_CALL(t, chain_returns_with_child, &f->c);
        f->got = (long)async_task_value(&f->c.task);
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

TEST(core_inline_child_returning_while_its_child_runs_keeps_the_parents_pending_error) {
    async_loop *loop = new_loop();
    static chain_finishing_parent_frame m;
    ASSERT_EQ(async_run(loop, ASYNC_CALL(chain_finishing_parent, &m)), ASYNC_EPROTO);
    ASSERT_EQ(m.got, 77);
}

/* Timeouts (a block, and AWAIT_TIMEOUT's task) around a chain of inline awaits end it each time, and the
 * task goes on to its own value. */
ASYNC_DEF(chain_mid, chain_nap_frame s;) {
    AWAIT_CALL(t, chain_nap, &f->s, 1000, 3);
    ASYNC_RETURN(t, 5);
} ASYNC_END_DEF

ASYNC_DEF(chain_timed, chain_mid_frame m; async_deadline d; async_timeout tmo; int code; int n;) {
    for (f->n = 0; f->n < 3; f->n++) {
        ASYNC_TRY(t) {
            if (f->n == 1) {
                AWAIT_TIMEOUT(t, &f->tmo, 10, ASYNC_CALL(chain_mid, &f->m));
            } else {
                ASYNC_TIMEOUT(t, &f->d, 10) {
                    AWAIT_CALL(t, chain_mid, &f->m);
                }
                ASYNC_END_TIMEOUT(t, &f->d);
            }
        }
        ASYNC_CATCH(t) {
            f->code = async_caught(t)->code;
        }
        ASYNC_END_TRY(t);
        if (f->code != ASYNC_ETIMEDOUT) ASYNC_THROW(t, ASYNC_EPROTO, "no timeout");
        f->code = 0;
    }
    ASYNC_RETURN(t, 11);
} ASYNC_END_DEF

TEST(core_timeouts_around_an_inline_chain_end_it_each_time) {
    async_loop *loop = new_loop();
    static chain_timed_frame m;
    ASSERT_EQ(async_run(loop, ASYNC_CALL(chain_timed, &m)), 0);
    ASSERT_EQ(async_task_value(&m.task), 11);
}
