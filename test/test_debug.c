/* Debug mode: slow-step reports, the live-task dump, tasks never started, async_task_where, the
 * environment switch and SIGQUIT. Reports are captured in a temporary file and read back. */
#include <signal.h>
#include <time.h>

static FILE *debug_capture(void) {
    FILE *f = tmpfile();
    if (!f) test_fail(__FILE__, __LINE__, "tmpfile failed");
    return f;
}

static char *debug_captured(FILE *f) {
    static char buf[8192];
    size_t n;
    fflush(f);
    rewind(f);
    n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    return buf;
}

static void block_ms(long ms) { /* a blocking call, as a careless coroutine would make */
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0) {}
}

typedef struct {
    async_task task;
    int block;
    unsigned resumed_line, suspended_line;
} blocker_frame;

static async_status blocker_run(async_task *t) {
    blocker_frame *f = (blocker_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT_SLEEP(t, 5); f->resumed_line = __LINE__;
    if (f->block) block_ms(f->block);
    AWAIT_SLEEP(t, 5); f->suspended_line = __LINE__;
    ASYNC_END(t);
}

TEST(debug_reports_a_step_that_blocks_the_loop_with_both_lines) {
    async_loop *loop = async_loop_new(ASYNC_LOOP_VIRTUAL_CLOCK);
    static blocker_frame f;
    FILE *out = debug_capture();
    char expect[256];
    const char *got;
    ASSERT_EQ(async_loop_set_debug(loop, true), 0);
    ASSERT(async_loop_debug(loop));
    async_debug_set_output(loop, out);
    async_debug_set_slow_step(loop, 20);
    ASYNC_FRAME_INIT(&f, blocker_run);
    f.block = 30;
    ASSERT_EQ(async_run(loop, &f.task), 0);
    got = debug_captured(out);
    ASSERT(strstr(got, "async: debug: a step of blocker_run (task) blocked the loop for "));
    snprintf(expect, sizeof expect, "resumed at %s:%u in blocker_run, next suspended at %s:%u in blocker_run\n",
             __FILE__, f.resumed_line, __FILE__, f.suspended_line);
    ASSERT(strstr(got, expect));
    ASSERT(strstr(got, "async: debug: a step") == got);
    ASSERT(!strstr(got + 1, "async: debug: a step")); /* one report: the quick steps stay quiet */
    async_loop_free(loop);
    fclose(out);
}

typedef struct {
    async_task task;
} culprit_frame;

static async_status culprit_run(async_task *t) { /* async def culprit(): time.sleep(0.03) */
    ASYNC_BEGIN(t);
    block_ms(30);
    ASYNC_END(t);
}

typedef struct {
    async_task task;
    culprit_frame culprit;
    unsigned line;
} culprit_main_frame;

static async_status culprit_main_run(async_task *t) {
    culprit_main_frame *f = (culprit_main_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_FRAME_INIT(&f->culprit, culprit_run);
    f->line = __LINE__ + 1;
    AWAIT(t, &f->culprit.task);
    ASYNC_END(t);
}

TEST(debug_names_the_inline_coroutine_that_blocked) {
    async_loop *loop = async_loop_new(ASYNC_LOOP_VIRTUAL_CLOCK);
    static culprit_main_frame f;
    FILE *out = debug_capture();
    char expect[256];
    const char *got;
    ASSERT_EQ(async_loop_set_debug(loop, true), 0);
    async_debug_set_output(loop, out);
    async_debug_set_slow_step(loop, 20);
    ASYNC_FRAME_INIT(&f, culprit_main_run);
    ASSERT_EQ(async_run(loop, &f.task), 0);
    got = debug_captured(out);
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
    FILE *out = debug_capture();
    ASSERT_EQ(async_loop_set_debug(loop, true), 0);
    async_debug_set_output(loop, out);
    async_debug_set_slow_step(loop, 1000);
    ASYNC_FRAME_INIT(&f, blocker_run);
    ASSERT_EQ(async_run(loop, &f.task), 0);
    ASSERT_STR_EQ(debug_captured(out), "");
    ASSERT_EQ(async_loop_set_debug(loop, false), 0);
    ASSERT(!async_loop_debug(loop));
    async_dump(loop, out);
    ASSERT(strstr(debug_captured(out), "debug mode is off"));
    ASSERT_EQ(async_loop_set_debug(NULL, true), ASYNC_EINVAL);
    async_loop_free(loop);
    fclose(out);
}

TEST(debug_refuses_to_replace_other_hooks) {
    static async_loop loop;
    static const async_loop_hooks none = {NULL, NULL, NULL, NULL};
    async_loop_init(&loop);
    async_loop_set_hooks(&loop, &none, NULL);
    ASSERT_EQ(async_loop_set_debug(&loop, true), ASYNC_EBUSY);
    ASSERT_EQ(async_debug_dump_on_sigquit(&loop), ASYNC_EINVAL);
    async_loop_set_hooks(&loop, NULL, NULL);
    ASSERT_EQ(async_loop_set_debug(&loop, true), 0); /* a loop without libev: no signals */
    ASSERT_EQ(async_debug_dump_on_sigquit(&loop), ASYNC_ENOTSUP);
    ASSERT(async_loop_ev(&loop) == NULL);
    ASSERT_EQ(async_loop_set_debug(&loop, false), 0);
}

/* a tree to dump: main gathers two workers; worker 0 awaits a coroutine inline */
typedef struct {
    async_task task;
    int ms;
} leaf_frame;

static async_status leaf_run(async_task *t) {
    leaf_frame *f = (leaf_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT_SLEEP(t, f->ms);
    ASYNC_END(t);
}

typedef struct {
    async_task task;
    leaf_frame leaf;
    int inline_child;
} branch_frame;

static async_status branch_run(async_task *t) {
    branch_frame *f = (branch_frame *)t;
    ASYNC_BEGIN(t);
    if (f->inline_child) {
        ASYNC_FRAME_INIT(&f->leaf, leaf_run);
        f->leaf.ms = 100;
        AWAIT(t, &f->leaf.task);
    } else {
        AWAIT_SLEEP(t, 100);
    }
    ASYNC_END(t);
}

typedef struct {
    async_task task;
    branch_frame b[2];
    async_group g;
} tree_frame;

static async_status tree_run(async_task *t) {
    tree_frame *f = (tree_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_FRAME_INIT(&f->b[0], branch_run);
    f->b[0].inline_child = 1;
    ASYNC_FRAME_INIT(&f->b[1], branch_run);
    AWAIT_GATHER(t, &f->g, &f->b[0].task, &f->b[1].task);
    ASYNC_END(t);
}

TEST(dump_prints_the_live_tasks_as_an_await_tree) {
    async_loop *loop = async_loop_new(ASYNC_LOOP_VIRTUAL_CLOCK);
    static tree_frame f;
    FILE *out = debug_capture();
    const char *got;
    ASSERT_EQ(async_loop_set_debug(loop, true), 0);
    async_debug_set_output(loop, out);
    ASYNC_FRAME_INIT(&f, tree_run);
    async_spawn(loop, &f.task);
    async_poll(loop);
    async_poll(loop);
    async_dump(loop, out);
    got = debug_captured(out);
    ASSERT(strstr(got, "async: 4 live tasks at ") == got);
    ASSERT(strstr(got, "\n  tree_run " __FILE__ ":"));
    ASSERT(strstr(got, "(awaiting children)\n    branch_run " __FILE__ ":"));
    ASSERT(strstr(got, "(awaiting inline)\n      leaf_run " __FILE__ ":"));
    ASSERT(strstr(got, " (sleeping)\n    branch_run ")); /* the inline leaf shows its task's state */
    while (async_poll(loop) >= 0) loop->now += 100;
    rewind(out);
    ASSERT_EQ(ftruncate(fileno(out), 0), 0);
    async_dump(loop, out);
    ASSERT(strstr(debug_captured(out), "async: 0 live tasks at "));
    async_loop_free(loop);
    fclose(out);
}

TEST(debug_reports_tasks_never_started_at_loop_free) {
    async_loop *loop = async_loop_new(ASYNC_LOOP_VIRTUAL_CLOCK);
    static leaf_frame f;
    FILE *out = debug_capture();
    ASSERT_EQ(async_loop_set_debug(loop, true), 0);
    async_debug_set_output(loop, out);
    ASYNC_FRAME_INIT(&f, leaf_run);
    async_spawn(loop, &f.task);
    async_loop_free(loop);
    ASSERT_STR_EQ(debug_captured(out), "async: debug: task leaf_run (task, " __FILE__ ") was never started\n");
    fclose(out);
}

TEST(task_where_names_file_function_and_line) {
    async_loop *loop = new_loop();
    static blocker_frame f;
    const char *file = NULL, *fn = NULL;
    unsigned line = 99;
    ASSERT(!async_task_where(NULL, &file, &fn, &line));
    ASYNC_FRAME_INIT(&f, blocker_run);
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

TEST(asyncdebug_environment_turns_debug_mode_on) {
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

typedef struct {
    async_task task;
} quitter_frame;

static async_status quitter_run(async_task *t) {
    ASYNC_BEGIN(t);
    raise(SIGQUIT); /* delivered to libev, which runs the dump in its next iteration */
    AWAIT_SLEEP(t, 20);
    ASYNC_END(t);
}

TEST(sigquit_prints_the_dump_in_debug_mode) {
    async_loop *loop = async_loop_new(0); /* real time: libev delivers the signal */
    static quitter_frame f;
    FILE *out = debug_capture();
    ASSERT_EQ(async_loop_set_debug(loop, true), 0);
    async_debug_set_output(loop, out);
    ASSERT_EQ(async_debug_dump_on_sigquit(loop), 0);
    ASYNC_FRAME_INIT(&f, quitter_run);
    ASSERT_EQ(async_run(loop, &f.task), 0);
    ASSERT(strstr(debug_captured(out), "async: 1 live task at "));
    ASSERT(strstr(debug_captured(out), "  quitter_run " __FILE__ ":"));
    async_loop_free(loop);
    fclose(out);
}

static const test_case debug_tests[] = {
    TEST_ENTRY(debug_reports_a_step_that_blocks_the_loop_with_both_lines)
    TEST_ENTRY(debug_names_the_inline_coroutine_that_blocked)
    TEST_ENTRY(debug_mode_off_or_fast_steps_report_nothing)
    TEST_ENTRY(debug_refuses_to_replace_other_hooks)
    TEST_ENTRY(dump_prints_the_live_tasks_as_an_await_tree)
    TEST_ENTRY(debug_reports_tasks_never_started_at_loop_free)
    TEST_ENTRY(task_where_names_file_function_and_line)
    TEST_ENTRY(asyncdebug_environment_turns_debug_mode_on)
    TEST_ENTRY(sigquit_prints_the_dump_in_debug_mode)
    {NULL, NULL}
};
