/* Debug mode: reports of a step that blocks the loop (naming the coroutine and both lines), the dump
 * of live tasks as an await tree (capped for deep chains, exact for hundreds of tasks), tasks never
 * started, async_task_where, the mode switched on and off while tasks wait or inside a step, the API on
 * loops without it, and the ASYNC_DEBUG switch and SIGQUIT. Reports are captured in a temporary file
 * and read back. */
#include "test.h"
#include "util.h"

#include <signal.h>
#include <unistd.h>

/* ---- a step that blocks the loop ---- */

ASYNC_DEF(blocker, int block; unsigned resumed_line, suspended_line;) {
    AWAIT_SLEEP(t, 5); f->resumed_line = __LINE__;
    if (f->block) sleep_ms(f->block);
    AWAIT_SLEEP(t, 5); f->suspended_line = __LINE__;
} ASYNC_END_DEF

TEST(debug_reports_a_step_that_blocks_the_loop_with_both_lines) {
    async_loop *loop = async_loop_new(ASYNC_LOOP_VIRTUAL_CLOCK);
    static blocker_frame f;
    FILE *out = test_capture();
    char expect[256];
    const char *got;
    ASSERT_EQ(async_loop_set_debug(loop, true), 0);
    ASSERT(async_loop_debug(loop));
    async_loop_set_debug_output(loop, out);
    async_loop_set_slow_step(loop, 20);
    ASSERT_EQ(async_run(loop, ASYNC_CALL(blocker, &f, 30)), 0);
    got = test_captured(out);
    ASSERT(strstr(got, "async: debug: a step of blocker_run (task) blocked the loop for ") == got);
    snprintf(expect, sizeof expect, "resumed at %s:%u in blocker_run, next suspended at %s:%u in blocker_run\n",
             __FILE__, f.resumed_line, __FILE__, f.suspended_line);
    ASSERT(strstr(got, expect));
    ASSERT(!strstr(strstr(got, expect) + 1, expect)); /* that step is reported once */
    /* The quick steps are not asserted quiet here: on a busy machine (valgrind, a parallel make check) the
     * scheduler can hold a quick step past 20 ms of wall time, and then its report is right.
     * debug_mode_off_or_fast_steps_report_nothing checks quick steps under a threshold they cannot reach. */
    async_loop_free(loop);
    fclose(out);
}

ASYNC_DEF(culprit) { /* async def culprit(): time.sleep(0.03) */
    sleep_ms(30);
} ASYNC_END_DEF

ASYNC_DEF(culprit_main, culprit_frame culprit; unsigned line;) {
    f->line = __LINE__ + 1;
    AWAIT_CALL(t, culprit, &f->culprit);
} ASYNC_END_DEF

TEST(debug_names_the_inline_coroutine_that_blocked) {
    async_loop *loop = async_loop_new(ASYNC_LOOP_VIRTUAL_CLOCK);
    static culprit_main_frame f;
    FILE *out = test_capture();
    char expect[256];
    const char *got;
    ASSERT_EQ(async_loop_set_debug(loop, true), 0);
    async_loop_set_debug_output(loop, out);
    async_loop_set_slow_step(loop, 20);
    ASSERT_EQ(async_run(loop, ASYNC_CALL(culprit_main, &f)), 0);
    got = test_captured(out);
    ASSERT(strstr(got, "async: debug: culprit_run (" __FILE__ ") blocked the loop for ") == got);
    snprintf(expect, sizeof expect, " ms without awaiting, called from %s:%u in culprit_main_run\n", __FILE__, f.line);
    ASSERT(strstr(got, expect));
    ASSERT(!strstr(got, "a step of")); /* the culprit's report replaces the step's */
    async_loop_free(loop);
    fclose(out);
}

TEST(debug_mode_off_or_fast_steps_report_nothing) {
    async_loop *loop = async_loop_new(ASYNC_LOOP_VIRTUAL_CLOCK);
    static blocker_frame f;
    FILE *out = test_capture();
    ASSERT_EQ(async_loop_set_debug(loop, true), 0);
    async_loop_set_debug_output(loop, out);
    async_loop_set_slow_step(loop, 600000); /* no quick step reaches it, however busy the machine */
    ASSERT_EQ(async_run(loop, ASYNC_CALL(blocker, &f)), 0);
    ASSERT_STR_EQ(test_captured(out), "");
    ASSERT_EQ(async_loop_set_debug(loop, false), 0);
    ASSERT(!async_loop_debug(loop));
    async_loop_dump(loop, out);
    ASSERT(strstr(test_captured(out), "debug mode is off"));
    ASSERT_EQ(async_loop_set_debug(NULL, true), ASYNC_EINVAL);
    async_loop_free(loop);
    fclose(out);
}

ASYNC_DEF(dbg_sleeper, int ms; unsigned slept_line;) {
    AWAIT_SLEEP(t, f->ms); f->slept_line = __LINE__;
} ASYNC_END_DEF

/* With a threshold of 0 every step is reported: a step that ends the task says "then finished". */
TEST(debug_slow_step_of_a_step_that_finishes) {
    async_loop *loop = new_hosted_loop();
    static dbg_sleeper_frame s;
    FILE *out = test_capture();
    const char *got, *last;
    char expect[256];
    ASSERT_EQ(async_loop_set_debug(loop, true), 0);
    async_loop_set_debug_output(loop, out);
    async_loop_set_slow_step(loop, 0);
    ASSERT_EQ(async_run(loop, ASYNC_CALL(dbg_sleeper, &s, 5)), 0);
    got = test_captured(out);
    ASSERT(strstr(got, "async: debug: a step of dbg_sleeper_run (task) blocked the loop for ") == got);
    snprintf(expect, sizeof expect, "next suspended at %s:%u in dbg_sleeper_run\n", __FILE__, s.slept_line);
    ASSERT(strstr(got, expect));
    last = strstr(got + 1, "async: debug: a step of dbg_sleeper_run");
    ASSERT(last != NULL);
    snprintf(expect, sizeof expect, "resumed at %s:%u in dbg_sleeper_run, then finished\n", __FILE__, s.slept_line);
    ASSERT(strstr(last, expect) != NULL);
    async_loop_free(loop);
    fclose(out);
}

/* A coroutine awaited inline that ends at once: no report (no step, no culprit). */
ASYNC_DEF(dbg_quick) {
    ASYNC_RETURN(t, 42);
} ASYNC_END_DEF

ASYNC_DEF(dbg_quick_main, dbg_quick_frame q[3]; intptr_t sum; int i;) {
    for (f->i = 0; f->i < 3; f->i++) {
        AWAIT_CALL(t, dbg_quick, &f->q[f->i]);
        f->sum += async_task_value(&f->q[f->i].task);
    }
} ASYNC_END_DEF

TEST(debug_quick_inline_coroutine_is_not_reported) {
    async_loop *loop = new_hosted_loop();
    static dbg_quick_main_frame m;
    FILE *out = test_capture();
    ASSERT_EQ(async_loop_set_debug(loop, true), 0);
    async_loop_set_debug_output(loop, out);
    async_loop_set_slow_step(loop, 600000); /* the default (100 ms) can pass for a quick step under valgrind */
    ASSERT_EQ(async_run(loop, ASYNC_CALL(dbg_quick_main, &m)), 0);
    ASSERT_EQ(m.sum, 126);
    ASSERT_STR_EQ(test_captured(out), "");
    async_loop_dump(loop, out);
    ASSERT(strstr(test_captured(out), "async: 0 live tasks at ") != NULL); /* the table let go of them all */
    async_loop_free(loop);
    fclose(out);
}

/* ---- the dump: live tasks as an await tree ---- */

/* a tree to dump: main gathers two workers; worker 0 awaits a coroutine inline */
ASYNC_DEF(leaf, int ms;) {
    AWAIT_SLEEP(t, f->ms);
} ASYNC_END_DEF

ASYNC_DEF(branch, int inline_child; leaf_frame leaf;) {
    if (f->inline_child) {
        AWAIT_CALL(t, leaf, &f->leaf, 100);
    } else {
        AWAIT_SLEEP(t, 100);
    }
} ASYNC_END_DEF

ASYNC_DEF(tree, branch_frame b[2]; async_group g;) {
    AWAIT_GATHER(t, &f->g, ASYNC_CALL(branch, &f->b[0], 1), ASYNC_CALL(branch, &f->b[1], 0));
} ASYNC_END_DEF

TEST(debug_dump_prints_the_live_tasks_as_an_await_tree) {
    async_loop *loop = async_loop_new(ASYNC_LOOP_VIRTUAL_CLOCK);
    static tree_frame f;
    FILE *out = test_capture();
    const char *got;
    ASSERT_EQ(async_loop_set_debug(loop, true), 0);
    async_loop_set_slow_step(loop, 600000); /* no step report, however busy the machine: the output is compared */
    async_loop_set_debug_output(loop, out);
    async_spawn(loop, ASYNC_CALL(tree, &f));
    async_poll(loop);
    async_poll(loop);
    async_loop_dump(loop, out);
    got = test_captured(out);
    ASSERT(strstr(got, "async: 4 live tasks at ") == got);
    ASSERT(strstr(got, "\n  tree_run " __FILE__ ":"));
    ASSERT(strstr(got, "(awaiting children)\n    branch_run " __FILE__ ":"));
    ASSERT(strstr(got, "(awaiting inline)\n      leaf_run " __FILE__ ":"));
    ASSERT(strstr(got, " (sleeping)\n    branch_run ")); /* the inline leaf shows its task's state */
    while (async_poll(loop) >= 0) loop->now += 100;
    rewind(out);
    ASSERT_EQ(ftruncate(fileno(out), 0), 0);
    async_loop_dump(loop, out);
    ASSERT(strstr(test_captured(out), "async: 0 live tasks at "));
    async_loop_free(loop);
    fclose(out);
}

/* Hundreds of tasks ending in a scrambled order: the table of live tasks grows, and after every wave of
 * endings the dump lists exactly the tasks still alive (an entry lost by a deletion would come back as
 * a duplicate when its task next steps). The frames are a random subset of a larger pool, so that their
 * addresses hash like random keys: sequential frames spread evenly and never form the long runs of
 * slots, wrapping past the table's end, that deletion must shift back. */
enum { DBG_CROWD = 760, DBG_POOL = 4 * DBG_CROWD }; /* 1,024 slots three quarters full */

static dbg_sleeper_frame dbg_crowd_pool[DBG_POOL];

/* debug.c's slot for task t in a table of cap slots (its hash, copied: if it changes, only the runs
 * that wrap become a matter of chance) */
static size_t dbg_slot(const void *t, size_t cap) {
    uintptr_t h = (uintptr_t)t;
    h ^= h >> 17;
    h *= (uintptr_t)0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 7) & (cap - 1);
}

static int dbg_dump_count(FILE *out, const char *name, int *lines) {
    const char *got = test_captured(out), *p;
    unsigned long n = 0;
    *lines = 0;
    if (sscanf(got, "async: %lu live task", &n) != 1) return -1;
    for (p = got; (p = strstr(p, name)) != NULL; p++) (*lines)++;
    return (int)n;
}

ASYNC_DEF(dbg_crowd, FILE *out; dbg_sleeper_frame *s[DBG_CROWD]; async_group g; int i, alive, bad;) {
    int i, lines;
    for (i = 0; i < DBG_CROWD; i++) ASYNC_SPAWN(t, &f->g, &f->s[i]->task);
    for (f->i = 0; f->i < 64; f->i++) {
        AWAIT_SLEEP(t, 1);
        f->alive = 0;
        for (i = 0; i < DBG_CROWD; i++)
            if (!async_task_done(&f->s[i]->task)) f->alive++;
        test_capture_clear(f->out);
        async_loop_dump(async_task_loop(t), f->out);
        if (dbg_dump_count(f->out, "dbg_sleeper_run ", &lines) != 1 + f->alive || lines != f->alive) f->bad++;
    }
    ASSERT_EQ(f->alive, 0);
    AWAIT_GROUP(t, &f->g);
} ASYNC_END_DEF

TEST(debug_table_of_hundreds_of_tasks) {
    async_loop *loop = new_hosted_loop();
    static dbg_crowd_frame m;
    static int taken[DBG_POOL];
    FILE *out = test_capture();
    uint32_t seed = 2024; /* a fixed sequence: the same subset and durations every run */
    int i, k, late;
    ASSERT_EQ(async_loop_set_debug(loop, true), 0);
    async_loop_set_debug_output(loop, out);
    async_loop_set_slow_step(loop, 600000); /* the dumps themselves are slow under valgrind */
    ASYNC_CALL(dbg_crowd, &m, out);
    /* first a run across the end of the 1,024-slot table: twelve frames whose home is one of its last
     * eight slots (they overflow past the end) and twelve homed in its first eight; then random ones */
    for (i = 0, k = 0, late = 0; k < DBG_POOL && i < 24; k++) {
        size_t home = dbg_slot(&dbg_crowd_pool[k].task, 1024);
        if ((home >= 1016 && late < 12) || (home < 8 && i - late < 12)) {
            late += home >= 1016;
            taken[k] = 1;
            m.s[i++] = &dbg_crowd_pool[k];
        }
    }
    for (; i < DBG_CROWD; i++) {
        k = (int)(test_rand(&seed) % DBG_POOL);
        while (taken[k]) k = (k + 1) % DBG_POOL;
        taken[k] = 1;
        m.s[i] = &dbg_crowd_pool[k];
    }
    for (i = 0; i < DBG_CROWD; i++) ASYNC_CALL(dbg_sleeper, m.s[i], 1 + (int)(test_rand(&seed) % 60));
    ASSERT_EQ(async_run(loop, &m.task), 0);
    ASSERT_EQ(m.bad, 0);
    async_loop_free(loop);
    fclose(out);
}

/* A chain of 1,100 coroutines, each awaiting the next inline: the dump prints the tree only 64 levels
 * deep (it would otherwise run away), counts every task, and stepping the chain stays bounded. */
enum { DBG_DEPTH = 1100 };

/* The link i of the chain (its frame is dbg_chain[i]), called. */
static async_task *dbg_link(int i);

ASYNC_DEF(dbg_chain, int i;) {
    if (f->i + 1 < DBG_DEPTH) {
        AWAIT(t, dbg_link(f->i + 1));
    } else {
        AWAIT_SLEEP(t, 10);
    }
    ASYNC_RETURN(t, f->i);
} ASYNC_END_DEF

static dbg_chain_frame dbg_chain[DBG_DEPTH];

static async_task *dbg_link(int i) {
    return ASYNC_CALL(dbg_chain, &dbg_chain[i], i);
}

ASYNC_DEF(dbg_deep, FILE *out; async_group g;) {
    ASYNC_SPAWN(t, &f->g, dbg_link(0));
    AWAIT_YIELD(t); /* the whole chain has started: its innermost coroutine sleeps */
    async_loop_dump(async_task_loop(t), f->out);
    async_loop_set_slow_step(async_task_loop(t), 0); /* the resume of the chain is reported */
    AWAIT_GROUP(t, &f->g);
} ASYNC_END_DEF

TEST(debug_deep_inline_chain_dump_is_capped) {
    async_loop *loop = new_hosted_loop();
    static dbg_deep_frame m;
    FILE *out = test_capture();
    const char *got, *p, *last = NULL;
    int lines = 0;
    ASSERT_EQ(async_loop_set_debug(loop, true), 0);
    async_loop_set_debug_output(loop, out);
    async_loop_set_slow_step(loop, 600000); /* starting 1,100 coroutines under valgrind is no report */
    ASSERT_EQ(async_run(loop, ASYNC_CALL(dbg_deep, &m, out)), 0);
    ASSERT_EQ(async_task_value(&dbg_chain[0].task), 0);
    ASSERT(async_task_done(&dbg_chain[DBG_DEPTH - 1].task));
    got = test_captured(out);
    ASSERT(strstr(got, "async: 1101 live tasks at ") == got);
    for (p = strchr(got, '\n'); p && p[1] == ' '; p = strchr(p + 1, '\n')) {
        lines++;
        last = p + 1;
    }
    ASSERT_EQ(lines, 65); /* dbg_deep_run, then the chain down to depth 64 */
    ASSERT(last != NULL);
    ASSERT_EQ(strspn(last, " "), 2 + 2 * 64);
    ASSERT(strstr(last, "dbg_chain_run " __FILE__ ":"));
    ASSERT(strstr(last, "(awaiting inline)\n"));
    /* the step that resumed the chain was reported, naming a coroutine of the chain */
    ASSERT(strstr(got, "async: debug: a step of dbg_chain_run (task) blocked the loop for "));
    async_loop_free(loop);
    fclose(out);
}

TEST(debug_task_where_names_file_function_and_line) {
    async_loop *loop = new_loop();
    static blocker_frame f;
    const char *file = NULL, *fn = NULL;
    unsigned line = 99;
    ASSERT(!async_task_where(NULL, &file, &fn, &line));
    ASYNC_CALL(blocker, &f);
    ASSERT(async_task_where(&f.task, &file, &fn, &line));
    ASSERT_STR_EQ(file, __FILE__);
    ASSERT_STR_EQ(fn, "blocker_run");
    ASSERT_EQ(line, 0);
    async_spawn(loop, &f.task);
    async_poll(loop);
    ASSERT(async_task_where(&f.task, &file, &fn, &line));
    ASSERT_STR_EQ(async_task_state(&f.task), "sleeping");
    drain(loop);
    ASSERT_EQ(line, f.resumed_line); /* it waited in the first sleep */
    fn = NULL;
    ASSERT(async_task_where(&f.task, &file, &fn, &line)); /* where it ended */
    ASSERT_STR_EQ(fn, "blocker_run");
    ASSERT_STR_EQ(async_task_state(&f.task), "done");
    ASSERT(async_task_loop(&f.task) == loop);
    ASSERT(async_task_parent(&f.task) == NULL);
}

/* ---- tasks never started ---- */

TEST(debug_reports_tasks_never_started_at_loop_free) {
    async_loop *loop = async_loop_new(ASYNC_LOOP_VIRTUAL_CLOCK);
    static leaf_frame f;
    FILE *out = test_capture();
    ASSERT_EQ(async_loop_set_debug(loop, true), 0);
    async_loop_set_slow_step(loop, 600000); /* no step report, however busy the machine: the output is compared */
    async_loop_set_debug_output(loop, out);
    async_spawn(loop, ASYNC_CALL(leaf, &f));
    async_loop_free(loop);
    ASSERT_STR_EQ(test_captured(out), "async: debug: task leaf_run (task, " __FILE__ ") was never started\n");
    fclose(out);
}

/* At loop free: a task cancelled before it started ended without running and is forgotten; one that
 * ran and waits in the ready queue is not "never started"; one spawned and never run is reported. */
ASYNC_DEF(dbg_yielder, int steps;) {
    for (;;) {
        f->steps++;
        AWAIT_YIELD(t);
    }
} ASYNC_END_DEF

TEST(debug_cancelled_and_unstarted_tasks_at_loop_free) {
    async_loop *loop = new_hosted_loop();
    static dbg_sleeper_frame cancelled, never;
    static dbg_yielder_frame y;
    FILE *out = test_capture();
    ASSERT_EQ(async_loop_set_debug(loop, true), 0);
    async_loop_set_slow_step(loop, 600000); /* no step report, however busy the machine: the output is compared */
    async_loop_set_debug_output(loop, out);
    ASSERT_EQ(async_spawn(loop, ASYNC_CALL(dbg_sleeper, &cancelled, 5)), 0);
    ASSERT(async_cancel(&cancelled.task));
    ASSERT_EQ(async_spawn(loop, ASYNC_CALL(dbg_yielder, &y)), 0);
    ASSERT_EQ(async_poll(loop), 0);
    ASSERT_EQ(async_task_code(&cancelled.task), ASYNC_ECANCELED);
    ASSERT_EQ(cancelled.slept_line, 0); /* its body never ran */
    ASSERT_EQ(y.steps, 1);
    async_loop_dump(loop, out);
    ASSERT(strstr(test_captured(out), "async: 1 live task at ") == test_captured(out));
    ASSERT(strstr(test_captured(out), "  dbg_yielder_run " __FILE__ ":"));
    test_capture_clear(out);
    ASSERT_EQ(async_spawn(loop, ASYNC_CALL(dbg_sleeper, &never, 5)), 0);
    async_loop_free(loop);
    ASSERT_STR_EQ(test_captured(out), "async: debug: task dbg_sleeper_run (task, " __FILE__ ") was never started\n");
    fclose(out);
}

/* ---- switching debug mode, its API on loops without it ---- */

TEST(debug_refuses_to_replace_other_hooks) {
    static async_loop loop;
    static const async_loop_hooks none = {.step_begin = NULL};
    async_loop_init(&loop);
    async_loop_set_hooks(&loop, &none, NULL);
    ASSERT_EQ(async_loop_set_debug(&loop, true), ASYNC_EBUSY);
    ASSERT_EQ(async_loop_dump_on_sigquit(&loop), ASYNC_EINVAL);
    async_loop_set_hooks(&loop, NULL, NULL);
    ASSERT_EQ(async_loop_set_debug(&loop, true), 0); /* a loop without libev: no signals */
    ASSERT_EQ(async_loop_dump_on_sigquit(&loop), ASYNC_ENOTSUP);
    ASSERT(async_loop_ev(&loop) == NULL);
    ASSERT_EQ(async_loop_set_debug(&loop, false), 0);
}

/* The debug calls on a loop that is not in debug mode change nothing, turning it on or off twice is no
 * error, and the dump goes to stderr when given no stream (NULL loop: nothing at all). */
/* Every step report in text is of a step of at least ms milliseconds ("blocked the loop for N ms"). */
static void dbg_reports_at_least(const char *text, unsigned long ms) {
    const char *p = text;
    while ((p = strstr(p, "blocked the loop for ")) != NULL) {
        p += strlen("blocked the loop for ");
        ASSERT(strtoul(p, NULL, 10) >= ms);
    }
}

TEST(debug_api_on_loops_without_debug_mode) {
    async_loop *loop = new_hosted_loop();
    static dbg_sleeper_frame s;
    FILE *out = test_capture();
    const char *err;
    async_loop_set_slow_step(loop, 0);  /* ignored: not in debug mode */
    async_loop_set_debug_output(loop, out);   /* ignored too */
    ASSERT_EQ(async_loop_dump_on_sigquit(loop), ASYNC_EINVAL);
    ASSERT_EQ(async_loop_set_debug(loop, false), 0); /* already off */
    ASSERT(!async_loop_debug(loop));
    ASSERT(!async_loop_debug(NULL));
    ASSERT_EQ(async_loop_set_debug(loop, true), 0);
    ASSERT_EQ(async_loop_set_debug(loop, true), 0); /* already on: the same state, not a second one */
    ASSERT(async_loop_debug(loop));
    ASSERT_EQ(async_loop_dump_on_sigquit(loop), 0);
    ASSERT_EQ(async_loop_dump_on_sigquit(loop), 0); /* already on */
    test_capture_stderr();
    /* quick steps: the 0 ms threshold was ignored */
    ASSERT_EQ(async_run(loop, ASYNC_CALL(dbg_sleeper, &s, 5)), 0);
    async_loop_set_debug_output(loop, NULL); /* reports go to stderr */
    async_loop_dump(loop, NULL);             /* and so does a dump without a stream */
    async_loop_dump(NULL, out);              /* no loop: nothing */
    err = test_release_stderr();
    ASSERT_STR_EQ(test_captured(out), "");
    ASSERT(strstr(err, "async: 0 live tasks at ") != NULL);
    dbg_reports_at_least(err, 100); /* the default threshold, not 0 (a busy machine may hold a step that long) */
    ASSERT_EQ(async_loop_set_debug(loop, false), 0);
    ASSERT_EQ(async_loop_set_debug(loop, false), 0);
    ASSERT(!async_loop_debug(loop));
    async_loop_free(loop);
    fclose(out);
}

static void dbg_copy(char *dst, size_t size, const char *src) {
    size_t n = strlen(src);
    if (n >= size) n = size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Debug mode switched on by a coroutine while other tasks wait: tasks it has not seen step yet are not
 * in its table. A group child seen first is shown as a root (its parent is unknown); an inline coroutine
 * that ends before its task was seen is let go without a trace; no step is misreported. */
ASYNC_DEF(dbg_twice) {
    AWAIT_SLEEP(t, 10);
    AWAIT_SLEEP(t, 10);
} ASYNC_END_DEF

ASYNC_DEF(dbg_late_main, dbg_twice_frame kid; dbg_sleeper_frame inner; async_group g;) {
    ASYNC_SPAWN(t, &f->g, ASYNC_CALL(dbg_twice, &f->kid));
    AWAIT_CALL(t, dbg_sleeper, &f->inner, 15);
    AWAIT_GROUP(t, &f->g);
} ASYNC_END_DEF

ASYNC_DEF(dbg_observer, FILE *out; char first[1024], second[1024];) {
    AWAIT_YIELD(t);
    AWAIT_YIELD(t); /* main and its child wait now */
    ASSERT_EQ(async_loop_set_debug(async_task_loop(t), true), 0);
    async_loop_set_slow_step(async_task_loop(t), 600000); /* no step report, however busy the machine */
    async_loop_set_debug_output(async_task_loop(t), f->out);
    AWAIT_SLEEP(t, 12); /* the child has stepped (at 10), main has not (its inline sleep ends at 15) */
    test_capture_clear(f->out);
    async_loop_dump(async_task_loop(t), f->out);
    dbg_copy(f->first, sizeof f->first, test_captured(f->out));
    AWAIT_SLEEP(t, 10); /* everything else has ended */
    test_capture_clear(f->out);
    async_loop_dump(async_task_loop(t), f->out);
    dbg_copy(f->second, sizeof f->second, test_captured(f->out));
} ASYNC_END_DEF

TEST(debug_switched_on_while_tasks_wait) {
    async_loop *loop = new_hosted_loop();
    static dbg_late_main_frame m;
    static dbg_observer_frame o;
    FILE *out = test_capture();
    ASSERT_EQ(async_spawn(loop, ASYNC_CALL(dbg_late_main, &m)), 0);
    ASSERT_EQ(async_run(loop, ASYNC_CALL(dbg_observer, &o, out)), 0);
    ASSERT_EQ(async_task_code(&m.task), 0);
    ASSERT(strstr(o.first, "async: 2 live tasks at ") == o.first);
    ASSERT(strstr(o.first, "\n  dbg_twice_run " __FILE__ ":")); /* a root: depth 0 */
    ASSERT(strstr(o.first, " (sleeping)\n"));
    ASSERT(strstr(o.first, "\n  dbg_observer_run " __FILE__ ":"));
    ASSERT(!strstr(o.first, "dbg_late_main_run"));
    ASSERT(strstr(o.second, "async: 1 live task at ") == o.second);
    ASSERT(!strstr(test_captured(out), "blocked the loop")); /* the steps were under the threshold */
    async_loop_free(loop);
    fclose(out);
}

/* Debug mode switched off by a coroutine in the middle of its step: the step ends normally, the loop runs
 * on without hooks, and a task spawned but not yet started is reported as the mode goes. */
ASYNC_DEF(dbg_off, dbg_sleeper_frame later; bool after;) {
    AWAIT_YIELD(t);
    ASSERT_EQ(async_spawn(async_task_loop(t), ASYNC_CALL(dbg_sleeper, &f->later, 1)), 0);
    ASSERT_EQ(async_loop_set_debug(async_task_loop(t), false), 0);
    ASSERT(!async_loop_debug(async_task_loop(t)));
    ASSERT_EQ(async_loop_set_debug(async_task_loop(t), false), 0); /* off twice: still off */
    ASSERT(!async_loop_debug(async_task_loop(t)));
    ASSERT_EQ(async_loop_set_debug(async_task_loop(t), true), 0); /* on again within the step: kept */
    ASSERT(async_loop_debug(async_task_loop(t)));
    ASSERT_EQ(async_loop_set_debug(async_task_loop(t), false), 0);
    ASSERT(!async_loop_debug(async_task_loop(t)));
    AWAIT_YIELD(t);
    AWAIT(t, &f->later.task);
    f->after = true;
} ASYNC_END_DEF

TEST(debug_switched_off_inside_a_step) {
    async_loop *loop = new_hosted_loop();
    static dbg_off_frame m;
    FILE *out = test_capture();
    ASSERT_EQ(async_loop_set_debug(loop, true), 0);
    async_loop_set_slow_step(loop, 600000); /* no step report, however busy the machine: the output is compared */
    async_loop_set_debug_output(loop, out);
    ASSERT_EQ(async_run(loop, ASYNC_CALL(dbg_off, &m)), 0);
    ASSERT(m.after);
    ASSERT(!async_loop_debug(loop));
    ASSERT_STR_EQ(test_captured(out), "async: debug: task dbg_sleeper_run (task, " __FILE__ ") was never started\n");
    async_loop_free(loop);
    fclose(out);
}

/* ---- ASYNC_DEBUG and SIGQUIT ---- */

TEST(debug_environment_turns_debug_mode_on) {
    async_loop *loop;
    setenv("ASYNC_DEBUG", "1", 1);
    loop = async_loop_new(0);
    ASSERT(loop);
    ASSERT(async_loop_debug(loop));
    async_loop_free(loop);
    setenv("ASYNC_DEBUG", "0", 1);
    loop = async_loop_new(0);
    ASSERT(!async_loop_debug(loop));
    async_loop_free(loop);
}

ASYNC_DEF(quitter) {
    raise(SIGQUIT); /* delivered to libev, which runs the dump in its next iteration */
    AWAIT_SLEEP(t, 20);
} ASYNC_END_DEF

TEST(debug_sigquit_prints_the_dump_in_debug_mode) {
    async_loop *loop = async_loop_new(0); /* real time: libev delivers the signal */
    static quitter_frame f;
    FILE *out = test_capture();
    ASSERT_EQ(async_loop_set_debug(loop, true), 0);
    async_loop_set_debug_output(loop, out);
    ASSERT_EQ(async_loop_dump_on_sigquit(loop), 0);
    ASSERT_EQ(async_run(loop, ASYNC_CALL(quitter, &f)), 0);
    ASSERT(strstr(test_captured(out), "async: 1 live task at "));
    ASSERT(strstr(test_captured(out), "  quitter_run " __FILE__ ":"));
    async_loop_free(loop);
    fclose(out);
}

/* ASYNC_DEBUG: any value but "0" or the empty string turns debug mode on, with the SIGQUIT dump. */
ASYNC_DEF(dbg_quit, FILE *out; int polls;) {
    raise(SIGQUIT); /* caught by libev; the dump runs in a later iteration */
    while (ftell(f->out) == 0 && f->polls++ < 100000) AWAIT_YIELD(t);
} ASYNC_END_DEF

TEST(debug_environment_values_and_sigquit) {
    async_loop *loop;
    static dbg_quit_frame q;
    FILE *out = test_capture();
    ASSERT_EQ(setenv("ASYNC_DEBUG", "", 1), 0);
    loop = async_loop_new(0);
    ASSERT(loop != NULL);
    ASSERT(!async_loop_debug(loop)); /* empty: as if unset */
    async_loop_free(loop);
    ASSERT_EQ(setenv("ASYNC_DEBUG", "yes", 1), 0);
    loop = async_loop_new(0);
    ASSERT(loop != NULL);
    ASSERT(async_loop_debug(loop));
    ASSERT_EQ(async_loop_dump_on_sigquit(loop), 0); /* already installed by the environment */
    async_loop_set_debug_output(loop, out);
    ASSERT_EQ(async_run(loop, ASYNC_CALL(dbg_quit, &q, out)), 0);
    ASSERT(strstr(test_captured(out), "async: 1 live task at "));
    ASSERT(strstr(test_captured(out), "  dbg_quit_run " __FILE__ ":"));
    async_loop_free(loop);
    unsetenv("ASYNC_DEBUG");
    fclose(out);
}
