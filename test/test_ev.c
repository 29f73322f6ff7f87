/* The hosted runtime's loops on libev: a loop of its own with the real clock or the virtual one
 * (ASYNC_CLOCK, the flag), a loop attached to an ev_loop the application runs, what it prints, a
 * deadlock on the real clock, an application's watcher that wakes main, libev unable to make a loop,
 * async_main's own errors, the heap's frame pools (async_frame_array_new), and async_main's options from
 * code against the environment. Real time here is only bounded from below, never measured. */
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

/* Run in a child: the process's main ends with "main failed" on stderr for a finished task. */
static void main_twice(void) {
    static sleeper_frame s;
    int first, second;
    unsetenv("ASYNC_CLOCK");
    first = async_main(sleeper(&s, 1, 0));
    second = async_main(&s.task); /* not re-initialised */
    fprintf(stderr, "rc %d %d\n", first, second);
}

TEST(ev_main_of_a_finished_task_is_einval) {
    char buf[512];
    int status;
    test_in_child(main_twice, 2, buf, sizeof buf, &status);
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

/* ---- async_main's options from code ---- */

/* What main's loop is like. */
ASYNC_DEF(ev_loop_kind, int virt; int debug;) {
    async_loop_set_slow_step(async_task_loop(t), 600000); /* no report of this step, however slow: stderr is compared */
    f->virt = async_loop_virtual(async_task_loop(t));
    f->debug = async_loop_debug(async_task_loop(t));
} ASYNC_END_DEF

/* Runs ev_loop_kind with opts and the environment given (NULL: unset); its stderr in *err. */
static ev_loop_kind_frame *ev_kind_with(const async_main_options *opts, const char *clock, const char *debug,
                                        const char **err) {
    static ev_loop_kind_frame k;
    int rc;
    if (clock)
        setenv("ASYNC_CLOCK", clock, 1);
    else
        unsetenv("ASYNC_CLOCK");
    if (debug)
        setenv("ASYNC_DEBUG", debug, 1);
    else
        unsetenv("ASYNC_DEBUG");
    test_capture_stderr();
    rc = async_main_with(ASYNC_CALL(ev_loop_kind, &k), opts);
    *err = test_release_stderr();
    ASSERT_EQ(rc, 0);
    unsetenv("ASYNC_CLOCK");
    unsetenv("ASYNC_DEBUG");
    return &k;
}

/* A field that is set wins over its environment variable; a field left 0 (and NULL options) takes it. */
TEST(ev_main_options_win_over_the_environment) {
    async_main_options on, off, unset;
    ev_loop_kind_frame *k;
    const char *err;
    memset(&on, 0, sizeof on);
    memset(&off, 0, sizeof off);
    memset(&unset, 0, sizeof unset);
    on.virtual_clock = on.debug = ASYNC_OPTION_ON;
    off.virtual_clock = off.debug = ASYNC_OPTION_OFF;
    k = ev_kind_with(&off, "virtual", "1", &err);
    ASSERT(!k->virt && !k->debug);
    ASSERT_STR_EQ(err, "");
    k = ev_kind_with(&on, NULL, NULL, &err);
    ASSERT(k->virt && k->debug);
    ASSERT_STR_EQ(err, "async: virtual time 0 ms\n");
    k = ev_kind_with(&unset, "virtual", "1", &err);
    ASSERT(k->virt && k->debug);
    k = ev_kind_with(NULL, "virtual", "1", &err);
    ASSERT(k->virt && k->debug);
    k = ev_kind_with(&unset, NULL, NULL, &err);
    ASSERT(!k->virt && !k->debug);
    k = ev_kind_with(NULL, "real", "0", &err);
    ASSERT(!k->virt && !k->debug);
}

/* The virtual clock from code: a minute's sleep in no time, and the virtual time it took printed. */
TEST(ev_main_options_virtual_clock_from_code) {
    static sleeper_frame s;
    double t0 = now_s();
    const char *err;
    int rc;
    unsetenv("ASYNC_CLOCK");
    test_capture_stderr();
    rc = async_main_with(sleeper(&s, 60000, 4), &(async_main_options){.virtual_clock = true, .threads = 8});
    err = test_release_stderr();
    ASSERT_EQ(rc, 0);
    ASSERT_EQ(async_task_value(&s.task), 4);
    ASSERT_STR_EQ(err, "async: virtual time 60000 ms\n");
    ASSERT(now_s() - t0 < 5.0);
}

/* A field out of range is ASYNC_EINVAL, said on stderr, before anything runs. */
TEST(ev_main_options_out_of_range_are_einval) {
    static sleeper_frame s;
    async_main_options opts[3];
    const char *err;
    size_t i;
    memset(opts, 0, sizeof opts);
    opts[0].debug = 2;
    opts[1].virtual_clock = -2;
    opts[2].threads = ASYNC_THREAD_POOL_MAX + 1;
    for (i = 0; i < 3; i++) {
        test_capture_stderr();
        ASSERT_EQ(async_main_with(sleeper(&s, 1, 0), &opts[i]), ASYNC_EINVAL);
        err = test_release_stderr();
        ASSERT(strncmp(err, "async: bad options: ", 20) == 0);
        ASSERT(!async_task_started(&s.task));
    }
}

/* opts.threads sizes the loop's own pool, over ASYNC_THREADS: six calls that each wait (up to 5 s) until
 * all six run at once meet, where ASYNC_THREADS=2 alone would let two run. */
static int ev_meet_count;

static int ev_meet(void *arg, intptr_t *result) {
    int n = (int)(intptr_t)arg;
    double until = now_s() + 5.0;
    __atomic_add_fetch(&ev_meet_count, 1, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&ev_meet_count, __ATOMIC_SEQ_CST) < n && now_s() < until) sleep_ms(1);
    *result = __atomic_load_n(&ev_meet_count, __ATOMIC_SEQ_CST) >= n;
    return 0;
}

ASYNC_DEF(ev_meet_call, async_thread_call call; intptr_t met;) {
    AWAIT_TO_THREAD(t, &f->call, ev_meet, (void *)(intptr_t)6, NULL);
    f->met = async_thread_call_result(&f->call);
} ASYNC_END_DEF

ASYNC_DEF(ev_meet_six, ev_meet_call_frame c[6]; async_group g; int i;) {
    for (f->i = 0; f->i < 6; f->i++) ASYNC_CALL(ev_meet_call, &f->c[f->i]);
    AWAIT_GATHER_ARRAY(t, &f->g, &f->c[0].task, 6, sizeof f->c[0]);
} ASYNC_END_DEF

TEST_TAGGED(ev_main_options_threads_size_the_pool, TEST_THREADS | TEST_WAITS) {
    static ev_meet_six_frame m;
    async_main_options opts;
    int i;
    unsetenv("ASYNC_CLOCK");
    setenv("ASYNC_THREADS", "2", 1);
    memset(&opts, 0, sizeof opts);
    opts.threads = 6;
    ASSERT_EQ(async_main_with(ASYNC_CALL(ev_meet_six, &m), &opts), 0);
    for (i = 0; i < 6; i++) ASSERT_EQ(m.c[i].met, 1);
    unsetenv("ASYNC_THREADS");
}

/* C++ callers: the options without designated initializers (C++11), with the compiler's strict flags. */
TEST(ev_main_options_from_cxx_without_designated_initializers) {
    const char *src = test_path("options.cc"), *log = test_path("cxx.log");
    char cmd[1024];
    if (system("g++ --version >/dev/null 2>&1") != 0) test_skip("g++ is not installed");
    test_write_file(src, "#include \"async.h\"\n"
                         "int run(async_task *main);\n"
                         "int run(async_task *main) {\n"
                         "    async_main_options o = {};\n"
                         "    o.virtual_clock = ASYNC_OPTION_ON;\n"
                         "    o.debug = ASYNC_OPTION_OFF;\n"
                         "    o.threads = 8;\n"
                         "    return async_main_exit(async_main_with(main, &o));\n"
                         "}\n");
    snprintf(cmd, sizeof cmd, "g++ -std=c++11 -Wall -Wextra -Wpedantic -Werror -Iinclude -fsyntax-only %s >%s 2>&1",
             src, log);
    if (system(cmd) != 0) test_fail(__FILE__, __LINE__, "g++ -std=c++11 rejects the options:\n%s", test_read_file(log));
}
