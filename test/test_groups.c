/* Children awaited together under the virtual clock: gather (results in argument order, the first error
 * at once while the others run on, settled results, arrays of frames), task groups (the first error
 * cancels the siblings), wait_for (the deadline wins even over a child that swallows the cancellation)
 * and shield; a frame never ends while its children run; and each of them given bad arguments, busy
 * objects, or cancelled at odd moments. */
#include "test.h"
#include "util.h"

/* ---- gather ---- */

/* return_early: return as soon as gather raised (children still run). */
ASYNC_DEF(gather, worker_frame a, b, c; async_group all; int settled; int code; int return_early;) {
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
} ASYNC_END_DEF

static gather_frame *setup_gather(int fail_b) {
    static gather_frame f;
    ASYNC_CALL(gather, &f);
    worker(&f.a, "a", 300, 1);
    worker(&f.b, "b", 200, 2);
    worker(&f.c, "c", 100, 3);
    f.b.fail = fail_b;
    return &f;
}

TEST(groups_gather_results_in_argument_order_in_the_longest_time) {
    async_loop *loop = new_loop();
    gather_frame *f = setup_gather(0);
    ASSERT_EQ(async_run(loop, &f->task), 0);
    ASSERT_STR_EQ(trace, "a+ b+ c+ c- b- a- gathered main-end ");
    ASSERT_EQ(async_task_value(&f->a.task), 1);
    ASSERT_EQ(async_task_value(&f->b.task), 2);
    ASSERT_EQ(async_task_value(&f->c.task), 3);
    ASSERT_EQ(async_loop_now(loop), 1300);
}

TEST(groups_gather_first_error_propagates_at_once_others_keep_running) {
    async_loop *loop = new_loop();
    gather_frame *f = setup_gather(1);
    ASSERT_EQ(async_run(loop, &f->task), 0);
    ASSERT_STR_EQ(trace, "a+ b+ c+ c- gather!1001 a- main-end ");
    ASSERT_EQ(async_task_value(&f->a.task), 1); /* a finished normally */
}

TEST(groups_gather_settled_collects_errors_as_results) {
    async_loop *loop = new_loop();
    gather_frame *f = setup_gather(1);
    f->settled = 1;
    ASSERT_EQ(async_run(loop, &f->task), 0);
    ASSERT_STR_EQ(trace, "a+ b+ c+ c- a- gathered main-end ");
    ASSERT_EQ(async_task_code(&f->b.task), ASYNC_EUSER + 1);
    ASSERT_EQ(async_task_value(&f->c.task), 3);
}

TEST(groups_parent_ending_mid_gather_cancels_and_awaits_its_children) {
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

TEST(groups_cancelling_a_task_awaiting_gather_cancels_the_children) {
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

TEST(groups_gather_misuse_null_or_running_child_raises_and_leaves_nothing_running) {
    async_loop *loop = new_loop();
    static gather_frame f;
    ASYNC_CALL(gather, &f);
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
ASYNC_DEF(many, worker_frame w[50]; async_group all; long sum; int i;) {
    for (f->i = 0; f->i < 50; f->i++) worker(&f->w[f->i], "", f->i % 7, f->i);
    AWAIT_GATHER_ARRAY(t, &f->all, &f->w[0].task, 50, sizeof f->w[0]);
    for (f->i = 0; f->i < 50; f->i++) f->sum += (long)async_task_value(&f->w[f->i].task);
} ASYNC_END_DEF

TEST(groups_gather_array_over_frames) {
    async_loop *loop = new_loop();
    static many_frame f;
    ASSERT_EQ(async_run(loop, ASYNC_CALL(many, &f)), 0);
    ASSERT_EQ(f.sum, 49 * 50 / 2);
    ASSERT_EQ(async_loop_now(loop), 6);
}

/* ---- task groups ---- */

ASYNC_DEF(tg, worker_frame a, b, c; async_group tg; int code; int skip_join;) {
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
} ASYNC_END_DEF

static tg_frame *setup_tg(int fail_c) {
    static tg_frame f;
    ASYNC_CALL(tg, &f);
    worker(&f.a, "a", 300, 1);
    worker(&f.b, "b", 200, 2);
    worker(&f.c, "c", 100, 3);
    f.c.fail = fail_c;
    return &f;
}

TEST(groups_task_group_joins_all_children) {
    async_loop *loop = new_loop();
    tg_frame *f = setup_tg(0);
    ASSERT_EQ(async_run(loop, &f->task), 0);
    ASSERT_STR_EQ(trace, "a+ b+ c+ c- b- a- joined ");
}

TEST(groups_task_group_first_error_cancels_siblings_and_is_raised_after_all_ended) {
    async_loop *loop = new_loop();
    tg_frame *f = setup_tg(1);
    ASSERT_EQ(async_run(loop, &f->task), 0);
    ASSERT_STR_EQ(trace, "a+ b+ c+ a!-125 b!-125 tg!1001 ");
    ASSERT_EQ(async_loop_now(loop), 100);
}

TEST(groups_frame_end_waits_for_spawned_children_without_join) {
    async_loop *loop = new_loop();
    tg_frame *f = setup_tg(0);
    f->skip_join = 1;
    ASSERT_EQ(async_run(loop, &f->task), 0);
    /* returning cancels the children still running, and waits for them */
    ASSERT_STR_EQ(trace, "a+ b+ c+ a!-125 b!-125 c!-125 ");
    ASSERT(async_task_done(&f->a.task));
    ASSERT_EQ(async_loop_now(loop), 50);
}

TEST(groups_task_group_keeps_the_first_error_when_a_cancelled_sibling_fails_too) {
    async_loop *loop = new_loop();
    static script_frame o;
    static sleeper_frame a, b;
    static async_group g;
    script_init(&o);
    script_add(&o, OP_SPAWN, &g)->c0 = sleeper(&a, 10, 0);
    a.fail = &err_a;
    script_add(&o, OP_SPAWN, &g)->c0 = sleeper(&b, 50, 0);
    b.fail_on_cancel = &err_b; /* cancelled by a's failure, it fails with an error of its own */
    script_add(&o, OP_GROUP, &g);
    ASSERT_EQ(async_run(loop, &o.task), 0);
    ASSERT_EQ(o.code[2], ASYNC_EUSER + 1);
    ASSERT(async_group_error(&g) == &err_a);
    ASSERT(b.cancelled);
    ASSERT(async_task_error(&b.task) == &err_b); /* still readable on the child */
    ASSERT_EQ(o.at[2], 10);
}

TEST(groups_finished_child_of_a_running_group_cannot_be_reinitialised) {
    async_loop *loop = new_loop();
    static script_frame o;
    static sleeper_frame a, b;
    static async_group g;
    script_step *st = script_one(&o, OP_GATHER, &g);
    st->c0 = sleeper(&a, 10, 1);
    st->c1 = sleeper(&b, 30, 2);
    ASSERT_EQ(async_spawn(loop, &o.task), 0);
    run_until(loop, 20);
    ASSERT(async_task_done(&a.task));
    /* a still sits in g's child list while b runs: reusing its frame now would corrupt the list */
    ASSERT(async_task_init(&a.task, sleeper_run) == NULL);
    ASSERT(!ASYNC_FRAME_INIT(&a, sleeper_run));
    ASSERT_EQ(async_task_value(&a.task), 1);
    ASSERT_EQ(a.ms, 10);
    drain(loop);
    ASSERT(o.reached[0]);
    ASSERT(ASYNC_FRAME_INIT(&a, sleeper_run)); /* the group is idle: reusable */
}

TEST(groups_awaiting_a_group_child_wakes_on_each_sibling_end_and_cancel_passes_on) {
    async_loop *loop = new_loop();
    static script_frame a, b, c;
    static sleeper_frame w[3];
    static async_group g;
    int i;
    script_init(&a);
    for (i = 0; i < 3; i++) script_add(&a, OP_SPAWN, &g)->c0 = sleeper(&w[i], i ? 30 : 10, i + 1);
    w[2].swallow_cancel = 1;
    w[2].after_cancel_ms = 10;
    script_add(&a, OP_GROUP, &g);
    script_one(&b, OP_AWAIT, &w[0].task); /* children of a running gather: awaited from outside */
    script_one(&c, OP_AWAIT, &w[1].task);
    ASSERT_EQ(async_spawn(loop, &a.task), 0);
    ASSERT_EQ(async_spawn(loop, &b.task), 0);
    ASSERT_EQ(async_spawn(loop, &c.task), 0);
    run_until(loop, 10); /* w0 ends: every waiter of g looks; only b's child is done */
    ASSERT(b.reached[0] && b.at[0] == 10);
    ASSERT_EQ(async_task_value(&w[0].task), 1);
    ASSERT_STR_EQ(async_task_state(&a.task), "awaiting children");
    ASSERT_STR_EQ(async_task_state(&c.task), "waiting");
    run_until(loop, 15);
    /* c cancelled: as for any awaited task (asyncio), the cancellation passes on to the child it
     * awaits, though that child belongs to a's gather, and c waits for it to end */
    ASSERT(async_cancel(&c.task));
    run_until(loop, 20);
    ASSERT_EQ(c.code[0], ASYNC_ECANCELED);
    ASSERT_EQ(c.at[0], 15);
    ASSERT(async_task_cancelled(&w[1].task));
    ASSERT_STR_EQ(async_task_state(&a.task), "awaiting children"); /* a's gather waits for w2 */
    /* a cancelled: w2 is cancelled; a waits on for w2's cleanup */
    ASSERT(async_cancel(&a.task));
    run_until(loop, 25);
    ASSERT(!async_task_done(&a.task));
    drain(loop);
    ASSERT_EQ(a.code[3], ASYNC_ECANCELED);
    ASSERT_EQ(a.at[3], 30);
    ASSERT_EQ(async_task_code(&w[2].task), 0); /* swallowed the cancellation, ended normally */
    ASSERT_EQ(async_task_value(&w[2].task), 3);
    ASSERT_EQ(async_group_running(&g), 0);
}

/* The awaiter waits for the child's end, even when the child swallows the cancellation and cleans up. */
TEST(groups_awaiter_of_a_group_child_waits_for_the_cancelled_childs_cleanup) {
    async_loop *loop = new_loop();
    static script_frame a, c;
    static sleeper_frame w;
    static async_group g;
    script_init(&a);
    script_add(&a, OP_SPAWN, &g)->c0 = sleeper(&w, 30, 7);
    w.swallow_cancel = 1;
    w.after_cancel_ms = 10;
    script_add(&a, OP_GROUP, &g);
    script_one(&c, OP_AWAIT, &w.task);
    ASSERT_EQ(async_spawn(loop, &a.task), 0);
    ASSERT_EQ(async_spawn(loop, &c.task), 0);
    run_until(loop, 5);
    ASSERT(async_cancel(&c.task));
    run_until(loop, 10);
    ASSERT(!async_task_done(&c.task)); /* w cleans up for 10 ms */
    drain(loop);
    ASSERT_EQ(c.code[0], ASYNC_ECANCELED);
    ASSERT_EQ(c.at[0], 15);
    ASSERT_EQ(async_task_value(&w.task), 7); /* swallowed, ended normally */
    ASSERT_EQ(a.code[1], 0);
    ASSERT_EQ(a.at[1], 15);
}

TEST(groups_group_argument_that_became_null_while_waiting_is_einval) {
    async_loop *loop = new_loop();
    static script_frame o;
    static sleeper_frame w;
    static async_group g;
    script_one(&o, OP_SPAWN, &g)->c0 = sleeper(&w, 10, 1);
    script_add(&o, OP_GROUP, &g);
    ASSERT_EQ(async_spawn(loop, &o.task), 0);
    run_until(loop, 5);
    o.s[1].a = NULL; /* the await's arguments are evaluated again when it resumes */
    drain(loop);
    ASSERT_EQ(o.code[1], ASYNC_EINVAL);
    ASSERT_EQ(async_task_value(&w.task), 1);
    ASSERT_EQ(async_group_running(&g), 0);
}

/* ---- timeout and shield ---- */

ASYNC_DEF(to, int limit; worker_frame work; async_timeout tmo; int code;) {
    ASYNC_TRY(t) {
        AWAIT_TIMEOUT(t, &f->tmo, f->limit, &f->work.task);
        LOG("in-time=%ld ", (long)async_task_value(&f->work.task));
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
        LOG("timeout!%d ", f->code);
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

static int run_timeout(int work_ms, int limit, int swallow) {
    async_loop *loop = new_loop();
    static to_frame f;
    ASYNC_CALL(to, &f, limit);
    worker(&f.work, "w", work_ms, 4);
    f.work.swallow_cancel = swallow;
    ASSERT_EQ(async_run(loop, &f.task), 0);
    return (int)async_loop_now(loop);
}

TEST(groups_wait_for_returns_the_result_in_time) {
    ASSERT_EQ(run_timeout(100, 500, 0), 100);
    ASSERT_STR_EQ(trace, "w+ w- in-time=4 ");
}

TEST(groups_wait_for_cancels_the_work_at_the_deadline) {
    ASSERT_EQ(run_timeout(1000, 300, 0), 300);
    ASSERT_STR_EQ(trace, "w+ w!-125 timeout!-110 ");
}

TEST(groups_wait_for_deadline_wins_even_if_the_work_swallows_cancellation) {
    ASSERT_EQ(run_timeout(1000, 300, 1), 300);
    ASSERT_STR_EQ(trace, "w+ w!-125 w- timeout!-110 ");
}

TEST(groups_wait_for_whose_deadline_cannot_be_set_is_enomem_not_unbounded) {
    async_loop *loop = new_loop();
    static sleeper_frame s[8], gated;
    static script_frame o;
    static async_event never;
    static async_timeout tmo;
    script_step *st;
    int i;
    for (i = 0; i < 8; i++) ASSERT_EQ(async_spawn(loop, sleeper(&s[i], 100, i)), 0); /* the inline slots */
    ASSERT_EQ(async_poll(loop), 100);
    alloc_fail_all = 1; /* the timer heap cannot grow */
    st = script_one(&o, OP_TIMEOUT, &tmo);
    st->c0 = sleeper(&gated, 0, 1);
    gated.gate = &never; /* would wait forever without its deadline */
    st->ms = 10;
    ASSERT_EQ(async_spawn(loop, &o.task), 0);
    drain(loop);
    ASSERT(async_task_done(&o.task));
    ASSERT_EQ(o.code[0], ASYNC_ENOMEM);
    ASSERT(gated.cancelled);
    ASSERT(async_task_cancelled(&gated.task));
    ASSERT_EQ(o.at[0], 0); /* failed at once, not at the other sleepers' 100 ms */
    for (i = 0; i < 8; i++) ASSERT_EQ(async_task_value(&s[i].task), i);
    ASSERT_EQ(async_group_running(&tmo.group), 0);
    ASSERT_EQ(loop_allocs, 0);
}

ASYNC_DEF(sh, worker_frame work; async_group shield; int code;) {
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
} ASYNC_END_DEF

TEST(groups_shield_keeps_the_child_running_when_the_awaiter_is_cancelled) {
    async_loop *loop = new_loop();
    static sh_frame f;
    static awaiter_frame watch;
    async_spawn(loop, ASYNC_CALL(sh, &f));
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

TEST(groups_shield_returns_the_childs_outcome_and_a_cancel_at_a_later_await_of_its_group) {
    async_loop *loop = new_loop();
    static script_frame o, s;
    static sleeper_frame ok, bad, slow;
    static async_group g1, g2, g3;
    script_init(&o);
    script_add(&o, OP_SHIELD, &g1)->c0 = sleeper(&ok, 10, 5);
    script_add(&o, OP_SHIELD, &g2)->c0 = sleeper(&bad, 10, 0);
    bad.fail = &err_a;
    ASSERT_EQ(async_run(loop, &o.task), 0);
    ASSERT(o.reached[0] && o.code[0] == 0);
    ASSERT_EQ(async_task_value(&ok.task), 5);
    ASSERT_EQ(o.code[1], ASYNC_EUSER + 1);
    ASSERT_EQ(o.at[1], 20);
    /* cancelled in a shield: raised at once; awaiting its group again with a cancellation pending
     * raises at once too; awaiting it plainly waits for the shielded child */
    loop = new_loop();
    script_init(&s);
    script_add(&s, OP_SHIELD, &g3)->c0 = sleeper(&slow, 50, 6);
    script_add(&s, OP_GROUP, &g3)->self_cancel = 1;
    script_add(&s, OP_GROUP, &g3);
    ASSERT_EQ(async_spawn(loop, &s.task), 0);
    run_until(loop, 10);
    ASSERT(async_cancel(&s.task));
    drain(loop);
    ASSERT_EQ(s.code[0], ASYNC_ECANCELED);
    ASSERT_EQ(s.at[0], 10);
    ASSERT_EQ(s.code[1], ASYNC_ECANCELED);
    ASSERT_EQ(s.at[1], 10);
    ASSERT(s.reached[2] && s.code[2] == 0);
    ASSERT_EQ(s.at[2], 50);
    ASSERT(!slow.cancelled);
    ASSERT_EQ(async_task_value(&slow.task), 6);
}

TEST(groups_cancelling_a_parent_that_waits_at_its_end_for_a_shielded_child_cancels_the_child) {
    async_loop *loop = new_loop();
    static script_frame p;
    static sleeper_frame child;
    static async_group g;
    script_one(&p, OP_SHIELD, &g)->c0 = sleeper(&child, 50, 1);
    ASSERT_EQ(async_spawn(loop, &p.task), 0);
    run_until(loop, 10);
    ASSERT(async_cancel(&p.task)); /* the shield raises at once; the child runs on */
    run_until(loop, 20);
    ASSERT_EQ(p.code[0], ASYNC_ECANCELED);
    ASSERT_EQ(p.at[0], 10);
    ASSERT(!async_task_done(&p.task)); /* its frame has ended but must outlive the child */
    ASSERT_STR_EQ(async_task_state(&p.task), "awaiting children");
    ASSERT(!child.cancelled);
    /* cancelled again now: nothing is left to detach from, so the child is cancelled */
    ASSERT(async_cancel(&p.task));
    drain(loop);
    ASSERT(child.cancelled);
    ASSERT_EQ(async_task_code(&child.task), ASYNC_ECANCELED);
    ASSERT_EQ(async_task_code(&p.task), 0);
    ASSERT_EQ(async_loop_now(loop), 20);
}

/* ---- bad arguments and busy objects ---- */

TEST(groups_gather_group_timeout_and_shield_with_bad_arguments_leave_nothing_running) {
    async_loop *loop = new_loop();
    static script_frame o, p;
    static sleeper_frame w[8], arr[2], arr2[2], finished;
    static async_task zero;
    static async_group g[8], h, sg;
    static async_timeout tmo;
    script_step *st;
    int i;
    ASSERT_EQ(async_run(loop, sleeper(&finished, 0, 1)), 0);
    sleeper(&arr[0], 5, 1);
    sleeper(&arr[1], 5, 1);
    sleeper(&arr2[0], 5, 1);
    ASSERT_EQ(async_run(loop, sleeper(&arr2[1], 0, 1)), 0); /* the array's second frame has finished */
    script_init(&o);
    st = script_add(&o, OP_GATHER, NULL);
    st->c0 = sleeper(&w[0], 5, 1);
    st->c1 = sleeper(&w[1], 5, 1);
    st = script_add(&o, OP_GATHER, &g[0]);
    st->c0 = sleeper(&w[2], 5, 1); /* started, then cancelled when the NULL child is refused */
    st = script_add(&o, OP_GATHER, &g[1]);
    st->c0 = &zero;
    st->c1 = sleeper(&w[3], 5, 1);
    st = script_add(&o, OP_GATHER, &g[2]);
    st->c0 = &finished.task;
    st = script_add(&o, OP_GATHER_ARRAY, &g[3]); /* an empty array: nothing to wait for */
    st->c0 = &arr[0].task;
    st = script_add(&o, OP_GATHER_ARRAY, &g[4]);
    st->n = 2;
    st->stride = sizeof arr[0];
    st = script_add(&o, OP_GATHER_ARRAY, &g[5]);
    st->c0 = &arr[0].task;
    st->n = 2;
    st->stride = sizeof(async_task) - 1; /* frames cannot overlap */
    st = script_add(&o, OP_GATHER_ARRAY, NULL);
    st->c0 = &arr[0].task;
    st->n = 2;
    st->stride = sizeof arr[0];
    st = script_add(&o, OP_GATHER_ARRAY, &g[6]);
    st->c0 = &arr2[0].task;
    st->n = 2;
    st->stride = sizeof arr2[0];
    script_add(&o, OP_SPAWN, &h); /* no child */
    script_add(&o, OP_GROUP_SPAWN_API, &h)->c0 = &zero;
    script_add(&o, OP_GROUP_SPAWN_API, &h)->c0 = &finished.task;
    script_add(&o, OP_GROUP, NULL);
    script_add(&o, OP_TIMEOUT, NULL)->c0 = sleeper(&w[4], 5, 1);
    script_add(&o, OP_TIMEOUT, &tmo)->ms = 10; /* no child */
    script_add(&o, OP_SHIELD, &sg);               /* no child */
    ASSERT_EQ(o.nsteps, 16);
    script_init(&p);
    script_add(&p, OP_GROUP, &sg); /* the group the failed shield left: nothing in it, nothing raised */
    script_add(&p, OP_TIMEOUT, &tmo)->c0 = &finished.task;
    ASSERT_EQ(async_spawn(loop, &o.task), 0);
    ASSERT_EQ(async_spawn(loop, &p.task), 0);
    drain(loop);
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

TEST(groups_busy_groups_and_timeouts_are_ebusy_and_their_children_run_on) {
    async_loop *loop = new_loop();
    static script_frame p, other;
    static sleeper_frame k, ga, gb, x, y, extra, work, work2;
    static async_group h, gg;
    static async_timeout tmo;
    script_step *st;
    script_init(&p);
    script_add(&p, OP_SPAWN, &h)->c0 = sleeper(&k, 50, 1);
    st = script_add(&p, OP_GATHER, &h); /* h still runs k: a gather cannot take it over */
    st->c0 = sleeper(&ga, 5, 1);
    st->c1 = sleeper(&gb, 5, 1);
    st = script_add(&p, OP_GATHER, &gg);
    st->c0 = sleeper(&x, 20, 2);
    st->c1 = sleeper(&y, 20, 3);
    st = script_add(&p, OP_TIMEOUT, &tmo);
    st->c0 = sleeper(&work, 20, 4);
    st->ms = 100;
    script_add(&p, OP_GROUP, &h);
    st = script_one(&other, OP_SLEEP, NULL);
    st->ms = 30;
    st = script_add(&other, OP_TIMEOUT, &tmo); /* p's timeout, in use */
    st->c0 = sleeper(&work2, 5, 1);
    st->ms = 100;
    script_add(&other, OP_GROUP_SPAWN_API, &h)->c0 = sleeper(&extra, 5, 1); /* p's group */
    ASSERT_EQ(async_spawn(loop, &p.task), 0);
    ASSERT_EQ(async_spawn(loop, &other.task), 0);
    run_until(loop, 5);
    ASSERT_EQ(p.code[1], ASYNC_EBUSY);
    ASSERT_STR_EQ(async_task_state(&ga.task), "new");
    ASSERT_STR_EQ(async_task_state(&gb.task), "new");
    ASSERT_EQ(async_group_running(&h), 1); /* k runs on */
    /* p waits in its gather: its own group may not take a spawned child in the middle of it */
    ASSERT_STR_EQ(async_task_state(&p.task), "awaiting children");
    ASSERT_EQ(async_group_spawn(&p.task, &gg, &extra.task), ASYNC_EBUSY);
    ASSERT_EQ(async_group_running(&gg), 2);
    run_until(loop, 25);
    {   /* p is in its wait_for now: the deadline's task is a coroutine of the library */
        const char *file = NULL, *fn = NULL;
        unsigned line = 0;
        ASSERT_STR_EQ(async_task_state(&tmo.timer), "sleeping");
        ASSERT(async_task_where(&tmo.timer, &file, &fn, &line));
        ASSERT_STR_EQ(fn, "async__timeout_run");
        ASSERT(strstr(file, "async.h") != NULL && line > 0);
        ASSERT(async_task_parent(&tmo.timer) == &p.task);
    }
    run_until(loop, 35);
    ASSERT_EQ(other.code[1], ASYNC_EBUSY);
    ASSERT_STR_EQ(async_task_state(&work2.task), "new");
    ASSERT_EQ(other.rc[2], ASYNC_EBUSY); /* a group another task owns */
    ASSERT_STR_EQ(async_task_state(&extra.task), "new");
    drain(loop);
    ASSERT(p.reached[2] && p.reached[3] && p.reached[4]);
    ASSERT_EQ(async_task_value(&k.task), 1);
    ASSERT_EQ(async_task_value(&x.task) + async_task_value(&y.task), 5);
    ASSERT_EQ(async_task_value(&work.task), 4);
    ASSERT_EQ(p.at[3], 40);
    ASSERT_EQ(p.at[4], 50);
    ASSERT_EQ(async_loop_timers(loop), 0);
}

ASYNC_DEF(long_wait_for, int64_t ms; async_timeout tmo; sleeper_frame child; int code;) {
    ASYNC_TRY(t) {
        AWAIT_TIMEOUT(t, &f->tmo, f->ms, sleeper(&f->child, 5, 0));
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

TEST(groups_wait_for_beyond_the_clock_range_is_erange_and_the_child_never_starts) {
    async_loop *loop = new_loop();
    static long_wait_for_frame f;
    ASSERT_EQ(async_run(loop, ASYNC_CALL(long_wait_for, &f, (int64_t)3000000000)), 0);
    ASSERT_EQ(f.code, ASYNC_ERANGE);
    ASSERT_STR_EQ(async_task_state(&f.child.task), "new"); /* never started */
}

/* ---- the errors of a task group as a list (ExceptionGroup) ---- */

ASYNC_DEF(group_of_three, async_group g; sleeper_frame a, b, c; const async_error *errs[4]; size_t n;) {
    ASYNC_TRY(t) {
        ASYNC_SPAWN(t, &f->g, sleeper(&f->a, 10, 0));
        ASYNC_SPAWN(t, &f->g, sleeper(&f->b, 20, 0));
        ASYNC_SPAWN(t, &f->g, sleeper(&f->c, 30, 0));
        f->a.fail = &err_a;
        f->b.fail_on_cancel = &err_b; /* b fails too, when a's error cancels it */
        AWAIT_GROUP(t, &f->g);
    }
    ASYNC_CATCH(t) {
        f->n = async_group_errors(&f->g, f->errs, 4);
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

TEST(groups_every_childs_error_is_readable_from_the_group_in_start_order) {
    async_loop *loop = new_loop();
    static group_of_three_frame g;
    const async_error *one[1];
    ASSERT_EQ(async_run(loop, ASYNC_CALL(group_of_three, &g)), 0);
    ASSERT_EQ(g.n, 2); /* a's and b's; c's cancellation is left out */
    ASSERT(g.errs[0] == &err_a);
    ASSERT(g.errs[1] == &err_b);
    ASSERT(async_task_cancelled(&g.c.task));
    ASSERT_EQ(async_group_errors(&g.g, one, 1), 2); /* the count, even when fewer fit */
    ASSERT(one[0] == &err_a);
    ASSERT_EQ(async_group_errors(&g.g, NULL, 0), 2);
    ASSERT_EQ(async_group_errors(NULL, one, 1), 0);
}

/* ---- timeout blocks: asyncio.timeout() inline in the task ---- */

ASYNC_DEF(timed, int64_t ms; int work_ms; int swallow; int reschedule_to; async_deadline d; int code; int after;
          int inner_ms; async_deadline inner; int inner_code;) {
    ASYNC_TRY(t) {
        ASYNC_TIMEOUT(t, &f->d, f->ms) {
            if (f->reschedule_to) ASSERT_EQ(async_deadline_reschedule(&f->d, f->reschedule_to), 0);
            if (f->inner_ms) {
                ASYNC_TRY(t) {
                    ASYNC_TIMEOUT(t, &f->inner, f->inner_ms) {
                        AWAIT_SLEEP(t, f->work_ms);
                    }
                    ASYNC_END_TIMEOUT(t, &f->inner);
                }
                ASYNC_CATCH(t) {
                    f->inner_code = async_caught(t)->code;
                    ASYNC_RERAISE(t);
                }
                ASYNC_END_TRY(t);
            } else if (f->swallow) {
                ASYNC_TRY(t) {
                    AWAIT_SLEEP(t, f->work_ms);
                }
                ASYNC_CATCH(t) {
                    LOG("swallowed@%u ", NOW());
                }
                ASYNC_END_TRY(t);
                AWAIT_SLEEP(t, 1);
            } else {
                AWAIT_SLEEP(t, f->work_ms);
            }
            f->after = 1;
        }
        ASYNC_END_TIMEOUT(t, &f->d);
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
    LOG("end@%u ", NOW());
} ASYNC_END_DEF

TEST(groups_timeout_block_raises_etimedout_at_its_deadline_without_a_child_task) {
    async_loop *loop = new_loop();
    static timed_frame f;
    async_ms when;
    ASSERT_EQ(async_run(loop, ASYNC_CALL(timed, &f, .ms = 50, .work_ms = 1000)), 0);
    ASSERT_EQ(f.code, ASYNC_ETIMEDOUT);
    ASSERT_EQ(f.after, 0);
    ASSERT_STR_EQ(trace, "end@50 ");
    ASSERT(async_deadline_expired(&f.d));
    ASSERT(async_deadline_when(&f.d, &when) && when == 50);
    ASSERT_EQ(async_loop_timers(loop), 0);
    ASSERT_EQ(async_run(loop, ASYNC_CALL(timed, &f, .ms = 50, .work_ms = 10)), 0); /* in time */
    ASSERT_EQ(f.code, 0);
    ASSERT_EQ(f.after, 1);
    ASSERT(!async_deadline_expired(&f.d));
    ASSERT_EQ(async_loop_timers(loop), 0); /* the unused deadline was taken out of the heap */
}

TEST(groups_timeout_block_deadline_wins_even_if_the_block_swallows_the_cancellation) {
    async_loop *loop = new_loop();
    static timed_frame f;
    ASSERT_EQ(async_run(loop, ASYNC_CALL(timed, &f, .ms = 20, .work_ms = 1000, .swallow = 1)), 0);
    ASSERT_EQ(f.code, ASYNC_ETIMEDOUT);
    ASSERT_EQ(f.after, 1);
    ASSERT_STR_EQ(trace, "swallowed@20 end@21 ");
}

TEST(groups_timeout_blocks_nest_and_the_earlier_deadline_wins) {
    async_loop *loop = new_loop();
    static timed_frame f;
    /* the outer deadline (30) comes first: the inner block lets its cancellation through */
    ASSERT_EQ(async_run(loop, ASYNC_CALL(timed, &f, .ms = 30, .work_ms = 1000, .inner_ms = 100)), 0);
    ASSERT_EQ(f.inner_code, ASYNC_ECANCELED);
    ASSERT_EQ(f.code, ASYNC_ETIMEDOUT);
    ASSERT(!async_deadline_expired(&f.inner));
    /* the inner one (30) first: it times out and the outer block sees its ETIMEDOUT go by */
    ASSERT_EQ(async_run(loop, ASYNC_CALL(timed, &f, .ms = 100, .work_ms = 1000, .inner_ms = 30)), 0);
    ASSERT_EQ(f.inner_code, ASYNC_ETIMEDOUT);
    ASSERT_EQ(f.code, ASYNC_ETIMEDOUT);
    ASSERT(!async_deadline_expired(&f.d));
}

TEST(groups_timeout_block_reschedule_moves_the_deadline) {
    async_loop *loop = new_loop();
    static timed_frame f;
    ASSERT_EQ(async_run(loop, ASYNC_CALL(timed, &f, .ms = 10, .work_ms = 40, .reschedule_to = 100)), 0);
    ASSERT_EQ(f.code, 0);
    ASSERT_EQ(async_run(loop, ASYNC_CALL(timed, &f, .ms = -1, .work_ms = 40, .reschedule_to = 15)), 0);
    ASSERT_EQ(f.code, ASYNC_ETIMEDOUT); /* no deadline at first, then one */
    ASSERT_EQ(async_deadline_reschedule(&f.d, 10), ASYNC_EINVAL); /* the block has ended */
    ASSERT_EQ(async_deadline_reschedule(NULL, 10), ASYNC_EINVAL);
}

TEST(groups_timeout_block_beyond_the_clock_range_is_erange_before_the_block) {
    async_loop *loop = new_loop();
    static timed_frame f;
    ASSERT_EQ(async_run(loop, ASYNC_CALL(timed, &f, .ms = (int64_t)ASYNC_MS_MAX + 1, .work_ms = 5)), 0);
    ASSERT_EQ(f.code, ASYNC_ERANGE);
    ASSERT_EQ(f.after, 0);
}

TEST(groups_timeout_block_cancelled_from_outside_stays_cancelled) {
    async_loop *loop = new_loop();
    static timed_frame f;
    ASSERT_EQ(async_spawn(loop, ASYNC_CALL(timed, &f, .ms = 100, .work_ms = 1000)), 0);
    run_until(loop, 10);
    ASSERT(async_cancel(&f.task));
    drain(loop);
    ASSERT_EQ(f.code, ASYNC_ECANCELED); /* the deadline had not passed: no timeout */
    ASSERT_EQ(async_loop_timers(loop), 0);
}

/* ---- asyncio.wait, as_completed and gather over tasks already running ---- */

ASYNC_DEF(waiter_of_three, int how; sleeper_frame a, b, c; ASYNC_WAIT_SET(4) ws; async_ms at; int code;) {
    async_spawn(async_task_loop(t), sleeper(&f->a, 30, 1));
    async_spawn(async_task_loop(t), sleeper(&f->b, 10, 2));
    async_spawn(async_task_loop(t), sleeper(&f->c, 20, 3));
    ASYNC_TRY(t) {
        AWAIT_WAIT(t, &f->ws, (async_wait_how)f->how, &f->a.task, &f->b.task, &f->c.task);
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
    f->at = async_time(t);
} ASYNC_END_DEF

TEST(groups_wait_returns_when_its_condition_holds_and_leaves_the_others_running) {
    async_loop *loop = new_loop();
    static waiter_of_three_frame w;
    ASSERT_EQ(async_run(loop, ASYNC_CALL(waiter_of_three, &w, ASYNC_FIRST_COMPLETED)), 0);
    ASSERT_EQ(w.at, 10);
    ASSERT(async_task_done(&w.b.task));
    ASSERT(!async_task_done(&w.a.task) && !async_task_done(&w.c.task)); /* pending, not cancelled */
    drain(loop);
    ASSERT_EQ(async_task_value(&w.a.task), 1);
    ASSERT_EQ(async_task_code(&w.c.task), 0);
    ASSERT_EQ(async_run(loop, ASYNC_CALL(waiter_of_three, &w, ASYNC_ALL_COMPLETED)), 0);
    ASSERT_EQ(w.at, 30 + 30); /* the second run started at 30 */
    ASSERT(async_task_done(&w.a.task) && async_task_done(&w.b.task) && async_task_done(&w.c.task));
}

TEST(groups_wait_first_exception_returns_at_the_first_failure_not_at_a_cancellation) {
    async_loop *loop = new_loop();
    static waiter_of_three_frame w;
    ASYNC_CALL(waiter_of_three, &w, ASYNC_FIRST_EXCEPTION);
    ASSERT_EQ(async_spawn(loop, &w.task), 0);
    async_poll(loop); /* the sleepers are spawned; they start next pass */
    w.c.fail = &err_c;
    async_poll(loop);
    ASSERT(async_cancel(&w.b.task)); /* a cancellation does not end the wait */
    drain(loop);
    ASSERT_EQ(w.at, 20); /* c failed at 20 */
    ASSERT_EQ(w.code, 0); /* wait raises nothing */
    ASSERT(async_task_cancelled(&w.b.task));
    ASSERT(async_task_error(&w.c.task) == &err_c);
    ASSERT(async_task_done(&w.a.task)); /* drained: it ran to its end */
}

TEST(groups_wait_cancelled_leaves_the_tasks_running_and_nothing_behind) {
    async_loop *loop = new_loop();
    static waiter_of_three_frame w;
    ASSERT_EQ(async_spawn(loop, ASYNC_CALL(waiter_of_three, &w, ASYNC_ALL_COMPLETED)), 0);
    run_until(loop, 5);
    ASSERT(async_cancel(&w.task));
    run_until(loop, 6);
    ASSERT_EQ(w.code, ASYNC_ECANCELED);
    ASSERT(!async_task_done(&w.a.task)); /* not cancelled with it */
    drain(loop);
    ASSERT_EQ(async_task_value(&w.a.task), 1);
    ASSERT(async_task_done(&w.task));
}

ASYNC_DEF(completer, sleeper_frame a, b, c; ASYNC_WAIT_SET(3) ws; async_task *next; int order[4]; int n;) {
    async_spawn(async_task_loop(t), sleeper(&f->a, 30, 1));
    async_spawn(async_task_loop(t), sleeper(&f->b, 10, 2));
    async_spawn(async_task_loop(t), sleeper(&f->c, 20, 3));
    for (;;) {
        AWAIT_AS_COMPLETED(t, &f->ws, &f->next, &f->a.task, &f->b.task, &f->c.task);
        if (!f->next) break;
        f->order[f->n++] = (int)async_task_value(f->next);
        LOG("%d@%u ", f->order[f->n - 1], NOW());
    }
} ASYNC_END_DEF

TEST(groups_as_completed_hands_out_the_tasks_in_the_order_they_finish) {
    async_loop *loop = new_loop();
    static completer_frame c;
    ASSERT_EQ(async_run(loop, ASYNC_CALL(completer, &c)), 0);
    ASSERT_STR_EQ(trace, "2@10 3@20 1@30 ");
    ASSERT_EQ(c.n, 3);
    ASSERT_EQ(async_run(loop, ASYNC_CALL(completer, &c)), 0); /* the set is reusable */
    ASSERT_EQ(c.n, 3);
}

ASYNC_DEF(task_gatherer, sleeper_frame a, b; ASYNC_WAIT_SET(2) ws; int code; async_ms at;) {
    async_spawn(async_task_loop(t), sleeper(&f->a, 30, 1));
    async_spawn(async_task_loop(t), sleeper(&f->b, 10, 2));
    ASYNC_TRY(t) {
        AWAIT_GATHER_TASKS(t, &f->ws, &f->a.task, &f->b.task);
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
    f->at = async_time(t);
} ASYNC_END_DEF

TEST(groups_gather_of_running_tasks_waits_for_all_and_raises_the_first_error_at_once) {
    async_loop *loop = new_loop();
    static task_gatherer_frame g;
    ASSERT_EQ(async_run(loop, ASYNC_CALL(task_gatherer, &g)), 0);
    ASSERT_EQ(g.code, 0);
    ASSERT_EQ(g.at, 30);
    ASSERT_EQ(async_task_value(&g.a.task) + async_task_value(&g.b.task), 3);
    ASYNC_CALL(task_gatherer, &g);
    ASSERT_EQ(async_spawn(loop, &g.task), 0);
    async_poll(loop);
    g.b.fail = &err_b;
    drain(loop);
    ASSERT_EQ(g.code, err_b.code); /* at once, at 10 */
    ASSERT_EQ(g.at, 30 + 10);
    ASSERT_EQ(async_task_value(&g.a.task), 1); /* the other kept running */
}

/* A running task cancelled while gathered: the gather raises ASYNC_ECANCELED at once (asyncio's
 * CancelledError), as for any other failure, and the other task runs on. */
TEST(groups_gather_of_running_tasks_raises_a_cancellation_of_one_of_them) {
    async_loop *loop = new_loop();
    static task_gatherer_frame g;
    ASSERT_EQ(async_spawn(loop, ASYNC_CALL(task_gatherer, &g)), 0);
    async_poll(loop);
    ASSERT(async_cancel(&g.b.task));
    drain(loop);
    ASSERT_EQ(g.code, ASYNC_ECANCELED);
    ASSERT_EQ(g.at, 0); /* at once, not after a's 30 */
    ASSERT(!async_task_cancelled(&g.task));
    ASSERT_EQ(async_task_value(&g.a.task), 1); /* the other kept running */
}

/* A set in use, and a task that runs inline in a coroutine: each refused with its code. */
ASYNC_DEF(inline_sleeper_host, sleeper_frame s;) {
    AWAIT(t, sleeper(&f->s, 50, 0));
} ASYNC_END_DEF

ASYNC_DEF(busy_waiter, sleeper_frame a; inline_sleeper_host_frame host; ASYNC_WAIT_SET(1) ws; int codes[2];) {
    async_spawn(async_task_loop(t), sleeper(&f->a, 20, 0));
    async_spawn(async_task_loop(t), ASYNC_CALL(inline_sleeper_host, &f->host));
    AWAIT_YIELD(t); /* the host runs its sleeper inline now */
    f->ws.set.started = 1; /* what an await of another coroutine on this set leaves while it waits */
    ASYNC_TRY(t) {
        AWAIT_WAIT(t, &f->ws, ASYNC_ALL_COMPLETED, &f->a.task);
    }
    ASYNC_CATCH(t) {
        f->codes[0] = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
    f->ws.set.started = 0;
    ASYNC_TRY(t) {
        AWAIT_WAIT(t, &f->ws, ASYNC_ALL_COMPLETED, &f->host.s.task);
    }
    ASYNC_CATCH(t) {
        f->codes[1] = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
    AWAIT(t, &f->host.task);
} ASYNC_END_DEF

TEST(groups_wait_refuses_a_set_in_use_and_a_task_running_inline) {
    async_loop *loop = new_loop();
    static busy_waiter_frame b;
    ASSERT_EQ(async_run(loop, ASYNC_CALL(busy_waiter, &b)), 0);
    ASSERT_EQ(b.codes[0], ASYNC_EBUSY); /* the set is in use */
    ASSERT_EQ(b.codes[1], ASYNC_EBUSY); /* it runs inside host's step, not as a task of its own */
    ASSERT(async_task_done(&b.a.task));
}

ASYNC_DEF(bad_waiter, int mode; sleeper_frame a; ASYNC_WAIT_SET(1) ws; int code;) {
    ASYNC_TRY(t) {
        if (f->mode == 0) AWAIT_WAIT(t, &f->ws, ASYNC_ALL_COMPLETED, &f->a.task); /* never started */
        if (f->mode == 1) AWAIT_WAIT(t, &f->ws, ASYNC_ALL_COMPLETED, &f->a.task, &f->a.task); /* too many */
        if (f->mode == 2) AWAIT_WAIT(t, &f->ws, ASYNC_ALL_COMPLETED, t); /* itself */
        if (f->mode == 3) AWAIT_WAIT(t, &f->ws, (async_wait_how)7, t);
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

TEST(groups_wait_rejects_bad_sets_and_tasks) {
    async_loop *loop = new_loop();
    static bad_waiter_frame b;
    sleeper(&b.a, 5, 0);
    ASSERT_EQ(async_run(loop, ASYNC_CALL(bad_waiter, &b, 0)), 0);
    ASSERT_EQ(b.code, ASYNC_EINVAL);
    ASSERT_EQ(async_run(loop, ASYNC_CALL(bad_waiter, &b, 1)), 0);
    ASSERT_EQ(b.code, ASYNC_ERANGE);
    ASSERT_EQ(async_run(loop, ASYNC_CALL(bad_waiter, &b, 2)), 0);
    ASSERT_EQ(b.code, ASYNC_EINVAL);
    ASSERT_EQ(async_run(loop, ASYNC_CALL(bad_waiter, &b, 3)), 0);
    ASSERT_EQ(b.code, ASYNC_EINVAL);
}
