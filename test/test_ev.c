/* The hosted runtime's loops on libev: a loop of its own with the real clock or the virtual one
 * (ASYNC_CLOCK, the flag), a loop attached to an ev_loop the application runs, what it prints, a
 * deadlock on the real clock, an application's watcher that wakes main, libev unable to make a loop,
 * async_main's own errors, and the heap's frame pools (async_frame_array_new). Real time here is only bounded
 * from below, never measured. */
#include "test.h"
#include "util.h"

#include <ev.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- loops of their own and attached loops ---- */

TEST(ev_loop_new_sleeps_in_real_time) {
    async_loop *loop = async_loop_new(0);
    static worker_frame a, b;
    double t0 = now_s();
    ASSERT(loop != NULL);
    trace[0] = '\0';
    async_spawn(loop, worker(&a, "a", 5000, 1)); /* far beyond b: never due, even under valgrind */
    ASSERT_EQ(async_run(loop, worker(&b, "b", 10, 2)), 0);
    ASSERT(now_s() - t0 >= 0.009);
    ASSERT_STR_EQ(trace, "a+ b+ b- ");
    async_loop_free(loop); /* a is still sleeping: its frame is ours, it simply never runs again */
}

TEST(ev_loop_new_with_virtual_clock_flag) {
    async_loop *loop = async_loop_new(ASYNC_LOOP_VIRTUAL_CLOCK);
    static worker_frame w;
    double t0 = now_s();
    trace[0] = '\0';
    ASSERT_EQ(async_run(loop, worker(&w, "w", 60000, 3)), 0); /* a minute, in no time */
    ASSERT(now_s() - t0 < 5.0);
    ASSERT_EQ(async_task_value(&w.task), 3);
    async_loop_free(loop);
}

static async_ms evl_clock_moves(async_loop *loop) {
    async_ms before = async_loop_time(loop);
    sleep_ms(5);
    return async_loop_time(loop) - before;
}

/* ASYNC_CLOCK=virtual gives the virtual clock; any other value (or none) the monotonic clock, unless
 * the flag asks for the virtual one. */
TEST(ev_clock_environment_values) {
    async_loop *loop;
    ASSERT_EQ(setenv("ASYNC_CLOCK", "virtual", 1), 0);
    loop = async_loop_new(0);
    ASSERT(loop != NULL);
    ASSERT_EQ(evl_clock_moves(loop), 0);
    async_loop_free(loop);
    ASSERT_EQ(setenv("ASYNC_CLOCK", "real", 1), 0);
    loop = async_loop_new(0);
    ASSERT(loop != NULL);
    ASSERT(evl_clock_moves(loop) >= 5);
    async_loop_free(loop);
    loop = async_loop_new(ASYNC_LOOP_VIRTUAL_CLOCK); /* the flag wins */
    ASSERT(loop != NULL);
    ASSERT_EQ(evl_clock_moves(loop), 0);
    async_loop_free(loop);
    unsetenv("ASYNC_CLOCK");
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

/* A one-shot libev timer of the application, on the loop's own ev_loop, completes the future main waits
 * for: the timer was libev's last active watcher and stopped itself, yet the task it woke runs (no false
 * deadlock). */
typedef struct {
    async_task task;
    async_future woken;
} evl_woken_frame;

static async_status evl_woken_run(async_task *t) {
    evl_woken_frame *f = (evl_woken_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT_FUTURE(t, &f->woken);
    ASYNC_RETURN(t, async_future_value(&f->woken));
    ASYNC_END(t);
}

static void evl_app_timer_cb(struct ev_loop *ev, ev_timer *w, int revents) {
    (void)ev;
    (void)revents;
    async_future_set_value((async_future *)w->data, 17);
}

TEST(ev_application_watcher_that_stops_itself_wakes_main) {
    async_loop *loop = async_loop_new(0);
    static evl_woken_frame m;
    static ev_timer tm;
    ASSERT(loop != NULL);
    ASYNC_FRAME_INIT(&m, evl_woken_run);
    ev_timer_init(&tm, evl_app_timer_cb, 0., 0.);
    tm.data = &m.woken;
    ev_timer_start(async_loop_ev(loop), &tm);
    ASSERT_EQ(async_run(loop, &m.task), 0);
    ASSERT_EQ(async_task_value(&m.task), 17);
    ASSERT(!ev_is_active(&tm));
    async_loop_free(loop);
}

/* libev cannot make a loop (LIBEV_FLAGS asks for kqueue only, which Linux has not): async_loop_new is
 * NULL and async_main says so and returns ASYNC_ENOMEM; an application's own ev_loop still attaches. */
TEST(ev_libev_without_a_backend) {
    static sleeper_frame s;
    struct ev_loop *ev = ev_loop_new(EVFLAG_AUTO);
    async_loop *attached;
    const char *err;
    int rc;
    ASSERT(ev != NULL);
    ASSERT_EQ(setenv("LIBEV_FLAGS", "8", 1), 0); /* EVBACKEND_KQUEUE */
    ASSERT(async_loop_new(0) == NULL);
    ASSERT(async_loop_new(ASYNC_LOOP_VIRTUAL_CLOCK) == NULL);
    test_capture_stderr();
    rc = async_main(sleeper(&s, 1, 0));
    err = test_release_stderr();
    ASSERT_EQ(rc, ASYNC_ENOMEM);
    ASSERT_STR_EQ(err, "async: out of memory\n");
    ASSERT(!async_task_done(&s.task)); /* never ran */
    attached = async_loop_attach(ev);
    ASSERT(attached != NULL);
    ASSERT_EQ(async_spawn(attached, &s.task), 0);
    ev_run(ev, 0);
    ASSERT(async_task_done(&s.task));
    async_loop_free(attached);
    ev_loop_destroy(ev);
    unsetenv("LIBEV_FLAGS");
}

/* ---- errors: unretrieved, deadlock, async_main ---- */

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
    ASSERT(strstr(buf, "async: error never retrieved in worker_run: worker failed (1001)") != NULL);
}

/* On the real clock, a main waiting for something nothing can bring is a deadlock too, found at once. */
typedef struct {
    async_task task;
    async_future never;
    int code;
} evl_never_frame;

static async_status evl_never_run(async_task *t) {
    evl_never_frame *f = (evl_never_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_TRY(t) {
        AWAIT_FUTURE(t, &f->never);
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
        ASYNC_RERAISE(t);
    }
    ASYNC_END_TRY(t);
    ASYNC_END(t);
}

TEST(ev_real_clock_deadlock_is_edeadlk) {
    async_loop *loop = async_loop_new(0);
    static evl_never_frame m;
    ASSERT(loop != NULL);
    ASYNC_FRAME_INIT(&m, evl_never_run);
    ASSERT_EQ(async_run(loop, &m.task), ASYNC_EDEADLK);
    ASSERT_EQ(m.code, ASYNC_ECANCELED); /* main was cancelled first, so its handlers ran */
    async_loop_free(loop);
}

TEST(ev_main_of_a_finished_task_is_einval) {
    char buf[512];
    size_t len = 0;
    ssize_t n;
    int p[2], status;
    pid_t pid;
    ASSERT_EQ(pipe(p), 0);
    fflush(NULL);
    pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        static sleeper_frame s;
        int first, second;
        close(p[0]);
        dup2(p[1], 2);
        unsetenv("ASYNC_CLOCK");
        first = async_main(sleeper(&s, 1, 0));
        second = async_main(&s.task); /* not re-initialised */
        fprintf(stderr, "rc %d %d\n", first, second);
        exit(0);
    }
    close(p[1]);
    while (len < sizeof buf - 1 && (n = read(p[0], buf + len, sizeof buf - 1 - len)) > 0) len += (size_t)n;
    buf[len] = '\0';
    close(p[0]);
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ASSERT_STR_EQ(buf, "async: main failed: invalid argument (-22)\nrc 0 -22\n");
}

/* ---- frames from the heap ---- */

TEST(ev_frames_pool_is_zeroed_and_checks_its_size) {
    size_t big = 100000, i;
    worker_frame *small = async_frame_array_new(10, sizeof *small), *many = async_frame_array_new(big, sizeof *many);
    ASSERT(small != NULL && many != NULL);
    for (i = 0; i < big; i++) ASSERT_EQ(many[i].task.state, 0);
    ASSERT(ASYNC_FRAME_INIT(&many[big - 1], worker_run));
    ASSERT(async_frame_array_new(0, 8) == NULL);
    ASSERT(async_frame_array_new(8, 0) == NULL);
    ASSERT(async_frame_array_new((size_t)-1 / 2, 4) == NULL); /* overflow */
    async_frame_array_free(small, 10, sizeof *small);
    async_frame_array_free(many, big, sizeof *many);
    async_frame_array_free(NULL, 1, 1);
}

TEST(ev_frames_larger_than_the_address_space_are_null) {
    void *p = async_frame_array_new((size_t)1 << 50, 1); /* no overflow, but no mapping can be that large */
    ASSERT(p == NULL);
    async_frame_array_free(p, (size_t)1 << 50, 1);
    p = async_frame_array_new(1 << 20, 2); /* 2 MiB: mapped */
    ASSERT(p != NULL);
    ASSERT_EQ(((unsigned char *)p)[(2 << 20) - 1], 0);
    async_frame_array_free(p, 1 << 20, 2);
}

static const char *ev_app_strerror(int code) { return code == ASYNC_EUSER + 3 ? "the disk is on fire" : NULL; }

ASYNC_DEF(ev_bare_thrower) {
    static const async_error bare = {ASYNC_EUSER + 3, NULL};
    ASYNC_THROW_ERROR(t, &bare);
} ASYNC_END_DEF

TEST(ev_reports_use_the_applications_messages) {
    static ev_bare_thrower_frame f;
    async_loop *loop = async_loop_new(ASYNC_LOOP_VIRTUAL_CLOCK);
    const char *err;
    ASSERT(loop != NULL);
    async_loop_set_strerror(loop, ev_app_strerror);
    ASSERT_EQ(async_spawn(loop, ASYNC_CALL(ev_bare_thrower, &f)), 0);
    test_capture_stderr();
    while (async_poll(loop) >= 0) {}
    async_loop_free(loop); /* reports the error no one retrieved */
    err = test_release_stderr();
    ASSERT(strstr(err, "the disk is on fire (1003)") != NULL);
}
