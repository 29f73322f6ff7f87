/* The hosted runtime on libev: a loop of its own with the real clock, a loop attached to an ev_loop the
 * application runs, and what it prints. Real time here is only bounded from below, never measured. */
#include <ev.h>
#include <time.h>

static double wall_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

TEST(ev_loop_new_sleeps_in_real_time) {
    async_loop *loop = async_loop_new(0);
    static worker_frame a, b;
    static gather_frame g;
    double t0 = wall_s();
    ASSERT(loop != NULL);
    trace[0] = '\0';
    async_spawn(loop, worker(&a, "a", 5000, 1)); /* far beyond b: never due, even under valgrind */
    ASSERT_EQ(async_run(loop, worker(&b, "b", 10, 2)), 0);
    ASSERT(wall_s() - t0 >= 0.009);
    ASSERT_STR_EQ(trace, "a+ b+ b- ");
    async_loop_free(loop); /* a is still sleeping: its frame is ours, it simply never runs again */
    (void)g;
}

TEST(ev_loop_new_with_virtual_clock_flag) {
    async_loop *loop = async_loop_new(ASYNC_LOOP_VIRTUAL_CLOCK);
    static worker_frame w;
    double t0 = wall_s();
    trace[0] = '\0';
    ASSERT_EQ(async_run(loop, worker(&w, "w", 60000, 3)), 0); /* a minute, in no time */
    ASSERT(wall_s() - t0 < 5.0);
    ASSERT_EQ(async_task_value(&w.task), 3);
    async_loop_free(loop);
}

TEST(ev_attach_runs_tasks_inside_the_applications_ev_run) {
    struct ev_loop *ev = ev_loop_new(EVFLAG_AUTO);
    async_loop *loop = async_loop_attach(ev);
    static worker_frame a, b, c;
    ASSERT(loop != NULL);
    ASSERT(async_loop_ev(loop) == ev);
    trace[0] = '\0';
    async_spawn(loop, worker(&a, "a", 20, 1));
    async_spawn(loop, worker(&b, "b", 0, 2));
    async_spawn(loop, worker(&c, "c", 5, 3));
    ev_run(ev, 0); /* returns once nothing is ready or sleeping: the scheduler keeps no extra reference */
    ASSERT_STR_EQ(trace, "a+ b+ c+ b- c- a- ");
    ASSERT(async_task_done(&a.task));
    async_loop_free(loop);
    ev_loop_destroy(ev);
}

TEST(ev_attach_null_and_free_null_are_safe) {
    ASSERT(async_loop_attach(NULL) == NULL);
    async_loop_free(NULL);
    ASSERT(async_loop_ev(NULL) == NULL);
}

TEST(ev_unretrieved_error_is_printed_when_the_loop_is_freed) {
    async_loop *loop = async_loop_new(ASYNC_LOOP_VIRTUAL_CLOCK);
    static worker_frame w, m;
    char buf[512] = {0};
    int pipefd[2];
    ASSERT(pipe(pipefd) == 0);
    fflush(stderr);
    dup2(pipefd[1], 2);
    async_spawn(loop, worker(&w, "w", 0, 0));
    w.fail = 1;
    async_run(loop, worker(&m, "m", 10, 0));
    async_loop_free(loop);
    fflush(stderr);
    close(pipefd[1]);
    close(2);
    ASSERT(read(pipefd[0], buf, sizeof buf - 1) > 0);
    ASSERT(strstr(buf, "async: error never retrieved in task: worker failed (1001)") != NULL);
}

TEST(frames_pool_is_zeroed_and_checks_its_size) {
    size_t big = 100000, i;
    worker_frame *small = async_frames_new(10, sizeof *small), *many = async_frames_new(big, sizeof *many);
    ASSERT(small != NULL && many != NULL);
    for (i = 0; i < big; i++) ASSERT_EQ(many[i].task.state, 0);
    ASSERT(ASYNC_FRAME_INIT(&many[big - 1], worker_run));
    ASSERT(async_frames_new(0, 8) == NULL);
    ASSERT(async_frames_new(8, 0) == NULL);
    ASSERT(async_frames_new((size_t)-1 / 2, 4) == NULL); /* overflow */
    async_frames_free(small, 10, sizeof *small);
    async_frames_free(many, big, sizeof *many);
    async_frames_free(NULL, 1, 1);
}

static const test_case ev_tests[] = {
    TEST_ENTRY(frames_pool_is_zeroed_and_checks_its_size)
    TEST_ENTRY(ev_loop_new_sleeps_in_real_time)
    TEST_ENTRY(ev_loop_new_with_virtual_clock_flag)
    TEST_ENTRY(ev_attach_runs_tasks_inside_the_applications_ev_run)
    TEST_ENTRY(ev_attach_null_and_free_null_are_safe)
    TEST_ENTRY(ev_unretrieved_error_is_printed_when_the_loop_is_freed)
    {NULL, NULL}
};
