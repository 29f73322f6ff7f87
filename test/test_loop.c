/* The portable loop under the virtual clock, a clock of the test's own or a ticking one: timers (equal
 * deadlines in the order set, the FIFO lane and the heap together, storage that grows, fails or was
 * handed back), async_poll's answer, async_run's ways of waiting (a wait that finds no waker, a real
 * clock without a wait, a busy main), hooks with missing members, the loop's and frame pools' functions
 * given NULL, and async_interrupt (the interrupt's way in) misused. */
#include "test.h"
#include "util.h"

/* ---- timers ---- */

TEST(loop_equal_deadlines_fire_in_the_order_set) {
    async_loop *loop = new_loop();
    static worker_frame w[4];
    async_spawn(loop, worker(&w[0], "a", 20, 0));
    async_spawn(loop, worker(&w[1], "b", 10, 0));
    async_spawn(loop, worker(&w[2], "c", 20, 0));
    async_spawn(loop, worker(&w[3], "d", 10, 0));
    while (async_poll(loop) >= 0) loop->now += 1; /* a slow real-ish clock: both become due together */
    ASSERT_STR_EQ(trace, "a+ b+ c+ d+ b- d- a- c- ");
}

TEST(loop_virtual_clock_jumps_exactly) {
    async_loop *loop = new_loop();
    static worker_frame w;
    ASSERT_EQ(async_run(loop, worker(&w, "w", 2500, 7)), 0);
    ASSERT_EQ(async_loop_now(loop), 2500);
    ASSERT_EQ(async_task_value(&w.task), 7);
}

TEST(loop_poll_reports_how_long_to_sleep) {
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

/* Sleeps set in deadline order take the FIFO lane, the others the heap: together they still fire by
 * deadline, equal deadlines in the order set, and a cancelled sleeper leaves either at once. */
TEST(loop_timers_in_order_and_out_of_order_fire_by_deadline_then_set_order) {
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

/* ---- timer storage ---- */

TEST(loop_timer_heap_full_without_allocator_is_enomem) {
    async_loop *loop = new_loop();
    async_loop_set_allocator(loop, NULL, NULL);
    static worker_frame w[ASYNC_CONFIG_INLINE_TIMERS + 1];
    int i;
    for (i = 0; i <= ASYNC_CONFIG_INLINE_TIMERS; i++) async_spawn(loop, worker(&w[i], "", 10, 0));
    while (async_poll(loop) >= 0) loop->now += 10;
    for (i = 0; i < ASYNC_CONFIG_INLINE_TIMERS; i++) ASSERT_EQ(async_task_code(&w[i].task), 0);
    ASSERT_EQ(async_task_code(&w[ASYNC_CONFIG_INLINE_TIMERS].task), ASYNC_ENOMEM);
}

TEST(loop_timer_heap_grows_and_allocation_failure_is_enomem) {
    async_loop *loop = new_loop();
    static worker_frame w[1000];
    int i, failed = 0;
    alloc_left = 2; /* new_loop's allocator: 8 -> 16 -> 32, then it fails */
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
    alloc_left = 100;
    for (i = 0; i < 1000; i++) async_spawn(loop, worker(&w[i], "", 1000 - i, i));
    while (async_poll(loop) >= 0) loop->now += 1;
    for (i = 0; i < 1000; i++) ASSERT_EQ(async_task_value(&w[i].task), i);
    ASSERT_EQ(async_loop_now(loop), 1000);
    async_loop_free_storage(loop);
}

TEST(loop_ninth_sleeper_without_memory_gets_enomem_and_the_others_sleep_on) {
    async_loop *loop = new_loop();
    static script_frame o[9];
    int i;
    alloc_fail_all = 1; /* neither the FIFO lane nor the heap can grow past the inline slots */
    for (i = 0; i < 9; i++) {
        script_one(&o[i], OP_SLEEP, NULL)->ms = 100 - i;
        ASSERT_EQ(async_spawn(loop, &o[i].task), 0);
    }
    drain(loop);
    for (i = 0; i < 8; i++) {
        ASSERT(o[i].reached[0]);
        ASSERT_EQ(o[i].at[0], 100 - i);
    }
    ASSERT_EQ(o[8].code[0], ASYNC_ENOMEM);
    ASSERT_EQ(o[8].at[0], 0);
    ASSERT_EQ(async_loop_timers(loop), 0);
    ASSERT_EQ(loop_allocs, 0);
}

TEST(loop_timer_storage_is_left_alone_once_the_allocator_was_removed) {
    async_loop *loop = new_loop();
    static script_frame o[20];
    void *heap, *lane;
    int i;
    for (i = 0; i < 20; i++) {
        script_one(&o[i], OP_SLEEP, NULL)->ms = 100 - i; /* out of order: the heap grows; the lane too */
        ASSERT_EQ(async_spawn(loop, &o[i].task), 0);
    }
    async_poll(loop);
    ASSERT_EQ(async_loop_timers(loop), 20);
    ASSERT_EQ(loop_allocs, 2);
    drain(loop);
    for (i = 0; i < 20; i++) ASSERT_EQ(o[i].at[0], 100 - i);
    heap = loop->timers;
    lane = loop->fifo;
    async_loop_set_allocator(loop, NULL, NULL);
    async_loop_free_storage(loop); /* no allocator to free with: the blocks are the caller's now */
    ASSERT_EQ(loop_allocs, 2);
    ASSERT(loop->timers == loop->inline_timers && loop->fifo == NULL);
    for (i = 0; i < 9; i++) { /* back to the inline slots, with no way to grow */
        script_one(&o[i], OP_SLEEP, NULL)->ms = 10 + i;
        ASSERT_EQ(async_spawn(loop, &o[i].task), 0);
    }
    drain(loop);
    for (i = 0; i < 8; i++) ASSERT(o[i].reached[0]);
    ASSERT_EQ(o[8].code[0], ASYNC_ENOMEM);
    counted_realloc(heap, 0);
    counted_realloc(lane, 0);
    ASSERT_EQ(loop_allocs, 0);
}

/* ---- async_run's ways of waiting, clocks ---- */

static async_ms clock_now;

static int waits, clock_reads;

static async_ms fixed_clock(async_loop *l) {
    (void)l;
    clock_reads++;
    return clock_now;
}

static async_ms ticking_clock(async_loop *l) { /* a real clock: 1 ms passes between two looks */
    (void)l;
    return ++clock_now;
}

static bool wait_says_nothing_wakes(async_loop *l, int32_t ms) {
    (void)l;
    waits++;
    if (ms > 0) clock_now += (async_ms)ms; /* it did sleep that long */
    return false;
}

TEST(loop_run_with_a_wait_that_finds_no_waker_still_runs_the_timers) {
    async_loop *loop = new_loop();
    static script_frame o, m;
    static async_future never;
    clock_now = 1000;
    async_loop_set_clock(loop, fixed_clock);
    async_loop_set_wait(loop, wait_says_nothing_wakes);
    ASSERT_EQ(async_loop_now(loop), 1000);
    clock_now = 1005;
    ASSERT_EQ(async_loop_time(loop), 1005); /* reads the clock */
    script_one(&o, OP_SLEEP, NULL)->ms = 30;
    script_add(&o, OP_SLEEP, NULL)->ms = 20;
    ASSERT_EQ(async_run(loop, &o.task), 0); /* a timer is set: the loop goes on despite wait's false */
    ASSERT_EQ(o.at[0], 1035);
    ASSERT_EQ(o.at[1], 1055);
    ASSERT(waits >= 2);
    /* no timer and nothing to wake main: a deadlock, found by wait's false */
    script_one(&m, OP_FUTURE, &never);
    ASSERT_EQ(async_run(loop, &m.task), ASYNC_EDEADLK);
    ASSERT_EQ(m.code[0], ASYNC_ECANCELED);
    ASSERT(clock_reads > 0);
}

TEST(loop_run_on_a_real_clock_without_wait_polls_until_the_deadline) {
    async_loop *loop = new_loop();
    static script_frame o;
    clock_now = 0;
    async_loop_set_clock(loop, ticking_clock);
    script_one(&o, OP_SLEEP, NULL)->ms = 5;
    ASSERT_EQ(async_run(loop, &o.task), 0);
    ASSERT(o.reached[0]);
    ASSERT((int32_t)(o.at[0] - 6) >= 0); /* started at 1 or later, woke 5 ms after */
    ASSERT(o.at[0] < 20);
}

TEST(loop_run_of_a_busy_task_or_of_a_main_that_ignores_its_deadlock_cancel) {
    async_loop *loop = new_loop();
    static script_frame m;
    static sleeper_frame w;
    static async_future never;
    ASSERT_EQ(async_spawn(loop, sleeper(&w, 10, 1)), 0);
    ASSERT_EQ(async_run(loop, &w.task), ASYNC_EBUSY); /* already spawned */
    drain(loop);
    ASSERT_EQ(async_task_value(&w.task), 1);
    /* main catches the cancellation that reports the deadlock and waits again: run gives up */
    script_one(&m, OP_FUTURE, &never);
    script_add(&m, OP_FUTURE, &never);
    ASSERT_EQ(async_run(loop, &m.task), ASYNC_EDEADLK);
    ASSERT_EQ(m.code[0], ASYNC_ECANCELED);
    ASSERT(!async_task_done(&m.task));
    ASSERT_STR_EQ(async_task_state(&m.task), "waiting");
    ASSERT_EQ(async_task_code(&m.task), ASYNC_EINPROGRESS);
    /* it is still a waiter of the future: completing it lets main finish */
    ASSERT_EQ(async_future_set_value(&never, 1), 0);
    drain(loop);
    ASSERT(m.reached[1]);
    ASSERT_EQ(async_task_code(&m.task), 0);
}

/* ---- hooks, signals, frame pools, NULL loops ---- */

static int hook_begins, hook_ends, hook_dones, hook_inlines;

static void hook_begin(async_loop *l, async_task *t) {
    (void)l;
    (void)t;
    hook_begins++;
}

static void hook_end(async_loop *l, async_task *t) {
    (void)l;
    (void)t;
    hook_ends++;
}

static void hook_done(async_loop *l, async_task *t) {
    (void)l;
    (void)t;
    hook_dones++;
}

static void hook_inline(async_loop *l, async_task *p, async_task *c) {
    (void)l;
    (void)p;
    (void)c;
    hook_inlines++;
}

TEST(loop_hooks_with_missing_members_are_skipped) {
    static const async_loop_hooks done_only = {.task_done = hook_done};
    static const async_loop_hooks steps_only = {.step_begin = hook_begin, .step_end = hook_end, .inline_start = hook_inline};
    static script_frame o;
    static sleeper_frame w;
    static int ctx;
    async_loop *loop = new_loop();
    async_loop_set_hooks(loop, &done_only, &ctx);
    ASSERT(async_loop_hooks_ctx(loop) == &ctx);
    script_one(&o, OP_AWAIT, sleeper(&w, 5, 2));
    ASSERT_EQ(async_run(loop, &o.task), 0);
    ASSERT_EQ(hook_dones, 2); /* the inline child and the task */
    ASSERT_EQ(hook_begins + hook_ends + hook_inlines, 0);
    loop = new_loop();
    async_loop_set_hooks(loop, &steps_only, NULL);
    script_one(&o, OP_AWAIT, sleeper(&w, 5, 2));
    ASSERT_EQ(async_run(loop, &o.task), 0);
    ASSERT_EQ(hook_begins, (int)loop->steps);
    ASSERT_EQ(hook_ends, (int)loop->steps);
    ASSERT_EQ(hook_inlines, 1);
    ASSERT_EQ(hook_dones, 2);
    ASSERT_EQ(async_task_value(&w.task), 2);
}

TEST(loop_signal_misuse_codes_and_close_after_the_loop_was_reinitialised) {
    async_loop *loop = new_loop();
    static async_interrupt s, s2, s3;
    ASSERT_EQ(async_interrupt_init(NULL, loop), ASYNC_EINVAL);
    ASSERT_EQ(async_interrupt_init(&s, NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_interrupt_raise(&s, 1), ASYNC_ESHUTDOWN); /* never registered */
    ASSERT_EQ(async_interrupt_raise(NULL, 1), ASYNC_EINVAL);
    ASSERT_EQ(async_interrupt_raise_error(&s, NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_interrupt_reset(NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_interrupt_reset(&s), ASYNC_ESHUTDOWN);
    ASSERT_EQ(async_interrupt_close(NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_interrupt_close(&s), ASYNC_ESHUTDOWN);
    ASSERT_EQ(async_interrupt_init(&s, loop), 0);
    ASSERT_EQ(async_interrupt_init(&s, loop), ASYNC_EBUSY);
    ASSERT_EQ(async_interrupt_init(&s2, loop), 0);
    ASSERT_EQ(async_interrupt_init(&s3, loop), 0);
    ASSERT_EQ(async_interrupt_close(&s), 0); /* the last of the list */
    ASSERT(async_loop_has_interrupts(loop));
    ASSERT_EQ(async_interrupt_raise(&s2, 4), 0);
    ASSERT(async_loop_interrupted(loop));
    /* the loop initialised again with signals still registered (the header says: close them first) */
    async_loop_init(loop);
    ASSERT(!async_loop_has_interrupts(loop));
    ASSERT_EQ(async_interrupt_close(&s2), 0); /* no longer in the loop's list: nothing to unlink */
    ASSERT_EQ(async_interrupt_close(&s3), 0);
    ASSERT_EQ(async_interrupt_raise(&s2, 5), ASYNC_ESHUTDOWN);
    ASSERT(!async_loop_has_interrupts(loop));
    ASSERT_EQ(async_poll(loop), -1);
}

TEST(loop_functions_and_frame_pools_of_null) {
    static async_loop l;
    static char frames[4][sizeof(async_task) + 8];
    static uint32_t used[1];
    async_frame_pool nof = {NULL, used, sizeof frames[0], 4};
    async_frame_pool nou = {frames, NULL, sizeof frames[0], 4};
    async_frame_pool nosize = {frames, used, 0, 4};
    async_frame_pool ok = {&frames[1], used, sizeof frames[0], 3};
    ASSERT_EQ(async_loop_init(NULL), ASYNC_EINVAL);
    async_loop_set_clock(NULL, NULL);
    async_loop_set_allocator(NULL, counted_loop_realloc, NULL);
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
    ASSERT(!async_loop_interrupted(NULL));
    ASSERT(!async_loop_has_interrupts(NULL));
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

/* ---- a deadlock of tasks awaiting each other: async_run unwinds the cycle ---- */

ASYNC_DEF(peer, const char *name; async_task *target;) {
    AWAIT_YIELD(t); /* both run before either awaits */
    ASYNC_TRY(t) {
        AWAIT(t, f->target);
        LOG("never ");
    }
    ASYNC_FINALLY(t) {
        LOG("%s-finally ", f->name);
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

ASYNC_DEF(mutual, peer_frame a, b;) {
    async_spawn(async_task_loop(t), ASYNC_CALL(peer, &f->a, "a", &f->b.task));
    async_spawn(async_task_loop(t), ASYNC_CALL(peer, &f->b, "b", &f->a.task));
    ASYNC_TRY(t) {
        AWAIT(t, &f->a.task);
    }
    ASYNC_FINALLY(t) {
        LOG("main-finally ");
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

TEST(loop_two_tasks_awaiting_each_other_are_unwound_and_their_finally_blocks_run) {
    async_loop *loop = new_loop();
    static mutual_frame m;
    ASSERT_EQ(async_run(loop, ASYNC_CALL(mutual, &m)), ASYNC_EDEADLK);
    ASSERT(async_task_cancelled(&m.a.task));
    ASSERT(async_task_cancelled(&m.b.task));
    /* a, where main's chain enters the cycle a -> b -> a, is released first; its end wakes main and b */
    ASSERT_STR_EQ(trace, "a-finally main-finally b-finally ");
    ASSERT(!async_loop_has_ready(loop));
}

/* main awaits a; a gathers c; c awaits b; b awaits a: the cycle a -> c -> b -> a passes a group */
ASYNC_DEF(gathers_a_peer, peer_frame c; async_group g; async_task *b;) {
    ASYNC_TRY(t) {
        AWAIT_GATHER(t, &f->g, ASYNC_CALL(peer, &f->c, "c", f->b));
    }
    ASYNC_FINALLY(t) {
        LOG("a-finally ");
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

ASYNC_DEF(mutual_through_a_group, gathers_a_peer_frame a; peer_frame b;) {
    async_spawn(async_task_loop(t), ASYNC_CALL(gathers_a_peer, &f->a, .b = &f->b.task));
    async_spawn(async_task_loop(t), ASYNC_CALL(peer, &f->b, "b", &f->a.task));
    ASYNC_TRY(t) {
        AWAIT(t, &f->a.task);
    }
    ASYNC_FINALLY(t) {
        LOG("main-finally ");
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

TEST(loop_a_cycle_through_a_gathered_child_is_unwound_too) {
    async_loop *loop = new_loop();
    static mutual_through_a_group_frame m;
    ASSERT_EQ(async_run(loop, ASYNC_CALL(mutual_through_a_group, &m)), ASYNC_EDEADLK);
    ASSERT(async_task_done(&m.a.task) && async_task_done(&m.b.task) && async_task_done(&m.a.c.task));
    /* c, the first task of the cycle that awaits a task, is released: a's gather ends, a ends (cancelled
     * by main's cancellation), and that wakes main and b */
    ASSERT_STR_EQ(trace, "c-finally a-finally main-finally b-finally ");
}

/* ---- milliseconds beyond the 32-bit clock: refused, never cut short ---- */

ASYNC_DEF(long_sleeper, int64_t ms; int code;) {
    ASYNC_TRY(t) {
        AWAIT_SLEEP(t, f->ms);
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

TEST(loop_sleep_beyond_the_clock_range_is_erange_not_truncated) {
    async_loop *loop = new_loop();
    static long_sleeper_frame f;
    ASSERT_EQ(async_run(loop, ASYNC_CALL(long_sleeper, &f, (int64_t)1 << 32)), 0); /* cut: 0, a yield */
    ASSERT_EQ(f.code, ASYNC_ERANGE);
    ASSERT_EQ(async_loop_now(loop), 0);
    ASSERT_EQ(async_run(loop, ASYNC_CALL(long_sleeper, &f, (int64_t)ASYNC_MS_MAX + 1)), 0); /* cut: negative */
    ASSERT_EQ(f.code, ASYNC_ERANGE);
    ASSERT_EQ(async_run(loop, ASYNC_CALL(long_sleeper, &f, ASYNC_MS_MAX)), 0); /* the longest there is */
    ASSERT_EQ(f.code, 0);
    ASSERT_EQ(async_loop_now(loop), ASYNC_MS_MAX);
}

/* ---- plain callbacks: call_soon, call_later, call_at ---- */

static const char *const call_names[] = {"later30", "soon", "at20", "later0", "a", "b", "again", "reused", "", "past"};
#define CALL(name) ((void *)(intptr_t)(name)) /* an index into call_names */
static void log_arg(void *arg) { LOG("%s@%u ", call_names[(intptr_t)arg], NOW()); }

TEST(loop_call_soon_later_and_at_run_in_order_with_the_tasks) {
    async_loop *loop = new_loop();
    static async_handle a, b, c, d;
    static worker_frame w;
    ASSERT_EQ(async_loop_call_later(loop, &a, 30, log_arg, CALL(0)), 0);
    ASSERT_EQ(async_spawn(loop, worker(&w, "w", 10, 0)), 0);
    ASSERT_EQ(async_loop_call_soon(loop, &b, log_arg, CALL(1)), 0);
    ASSERT_EQ(async_loop_call_at(loop, &c, 20, log_arg, CALL(2)), 0);
    ASSERT_EQ(async_loop_call_later(loop, &d, 0, log_arg, CALL(3)), 0); /* as call_soon */
    ASSERT(async_handle_pending(&a));
    drain(loop);
    ASSERT_STR_EQ(trace, "w+ soon@0 later0@0 w- at20@20 later30@30 ");
    ASSERT(!async_handle_pending(&a));
    ASSERT(!async_handle_cancel(&a)); /* it has run */
    ASSERT_EQ(async_loop_timers(loop), 0);
}

TEST(loop_call_cancelled_before_it_runs_never_runs_and_the_handle_is_reusable) {
    async_loop *loop = new_loop();
    static async_handle a, b;
    ASSERT_EQ(async_loop_call_later(loop, &a, 50, log_arg, CALL(4)), 0);
    ASSERT_EQ(async_loop_call_soon(loop, &b, log_arg, CALL(5)), 0);
    ASSERT_EQ(async_loop_call_soon(loop, &b, log_arg, CALL(6)), ASYNC_EBUSY); /* still scheduled */
    ASSERT(async_handle_cancel(&a));
    ASSERT(async_handle_cancel(&b));
    ASSERT(!async_handle_cancel(&b));
    drain(loop);
    ASSERT_STR_EQ(trace, "");
    ASSERT_EQ(async_loop_now(loop), 0); /* the cancelled timer left no deadline behind */
    ASSERT_EQ(async_loop_call_soon(loop, &b, log_arg, CALL(7)), 0);
    drain(loop);
    ASSERT_STR_EQ(trace, "reused@0 ");
    ASSERT_EQ(async_loop_report_errors(loop), 0); /* cancelled calls are no unretrieved errors */
}

TEST(loop_call_rejects_bad_arguments) {
    async_loop *loop = new_loop();
    static async_handle h;
    ASSERT_EQ(async_loop_call_soon(NULL, &h, log_arg, CALL(8)), ASYNC_EINVAL);
    ASSERT_EQ(async_loop_call_soon(loop, NULL, log_arg, CALL(8)), ASYNC_EINVAL);
    ASSERT_EQ(async_loop_call_soon(loop, &h, NULL, CALL(8)), ASYNC_EINVAL);
    ASSERT_EQ(async_loop_call_later(loop, &h, (int64_t)ASYNC_MS_MAX + 1, log_arg, CALL(8)), ASYNC_ERANGE);
    ASSERT_EQ(async_loop_call_later(NULL, &h, 5, log_arg, CALL(8)), ASYNC_EINVAL);
    ASSERT(!async_handle_cancel(NULL));
    ASSERT(!async_handle_pending(NULL));
    ASSERT(!async_handle_pending(&h));
    ASSERT_EQ(async_loop_call_at(loop, &h, 0, log_arg, CALL(9)), 0); /* a time that has passed: at once */
    drain(loop);
    ASSERT_STR_EQ(trace, "past@0 ");
}

ASYNC_DEF(clock_reader, async_ms seen[2];) {
    f->seen[0] = async_time(t);
    AWAIT_SLEEP(t, 25);
    f->seen[1] = async_time(t);
} ASYNC_END_DEF

TEST(loop_time_is_one_call_from_a_coroutine) {
    async_loop *loop = new_loop();
    static clock_reader_frame c;
    ASSERT_EQ(async_run(loop, ASYNC_CALL(clock_reader, &c)), 0);
    ASSERT_EQ(c.seen[0], 0);
    ASSERT_EQ(c.seen[1], 25);
    ASSERT_EQ(async_time(NULL), 0);
}

/* ---- the current task, and the application's error messages ---- */

ASYNC_DEF(current_inner, async_task *seen;) {
    f->seen = async_loop_current_task(the_loop());
} ASYNC_END_DEF

ASYNC_DEF(current_outer, async_task *seen, *seen_after; current_inner_frame inner;) {
    f->seen = async_loop_current_task(the_loop());
    AWAIT_CALL(t, current_inner, &f->inner); /* inline: part of this task */
    AWAIT_SLEEP(t, 5);
    f->seen_after = async_loop_current_task(the_loop());
} ASYNC_END_DEF

TEST(loop_current_task_is_the_task_being_stepped) {
    async_loop *loop = new_loop();
    static current_outer_frame o;
    ASSERT(async_loop_current_task(loop) == NULL);
    ASSERT_EQ(async_run(loop, ASYNC_CALL(current_outer, &o)), 0);
    ASSERT(o.seen == &o.task);
    ASSERT(o.inner.seen == &o.task);
    ASSERT(o.seen_after == &o.task);
    ASSERT(async_loop_current_task(loop) == NULL);
    ASSERT(async_loop_current_task(NULL) == NULL);
}

static const char *app_strerror(int code) { return code == ASYNC_EUSER + 1 ? "the application's own" : NULL; }

TEST(loop_strerror_asks_the_application_for_its_codes) {
    async_loop *loop = new_loop();
    static const async_error bare = {ASYNC_EUSER + 1, NULL}, told = {ASYNC_EUSER + 1, "its own text"};
    ASSERT_STR_EQ(async_loop_strerror(loop, ASYNC_EUSER + 1), "unknown error");
    async_loop_set_strerror(loop, app_strerror);
    ASSERT_STR_EQ(async_loop_strerror(loop, ASYNC_EUSER + 1), "the application's own");
    ASSERT_STR_EQ(async_loop_strerror(loop, ASYNC_EUSER + 2), "unknown error");
    ASSERT_STR_EQ(async_loop_strerror(loop, ASYNC_ETIMEDOUT), "timed out"); /* the library's stay its own */
    ASSERT_STR_EQ(async_loop_error_message(loop, &bare), "the application's own");
    ASSERT_STR_EQ(async_loop_error_message(loop, &told), "its own text");
    ASSERT_STR_EQ(async_loop_error_message(loop, NULL), "success");
    ASSERT_STR_EQ(async_loop_strerror(NULL, ASYNC_EUSER + 1), "unknown error");
}
