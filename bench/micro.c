/* Microbenchmarks of the portable core alone (no libev, virtual clock): what each primitive costs.
 * Frame memory is faulted in before timing (on virtual machines a first-touch page fault can cost
 * microseconds and would swamp the core's own cost; bench/w1.c measures W1 the way a user writes it).
 * Run under `valgrind --tool=callgrind` for instruction counts that a noisy machine does not blur
 * (`make bench-callgrind`). Prints one line per figure: name, ns per operation, operations. */
#define ASYNC_IMPLEMENTATION
#include "bench.h"

#include <string.h>

/* Under callgrind (make bench-callgrind) only the timed parts are counted. */
#ifdef ASYNC_BENCH_CALLGRIND
#include <valgrind/callgrind.h>
#define TIMED_BEGIN() CALLGRIND_TOGGLE_COLLECT
#define TIMED_END() CALLGRIND_TOGGLE_COLLECT
#else
#define TIMED_BEGIN() ((void)0)
#define TIMED_END() ((void)0)
#endif

static void *std_realloc(void *ctx, void *p, size_t n) {
    (void)ctx;
    if (n == 0) {
        free(p);
        return NULL;
    }
    return realloc(p, n);
}

static void report(const char *name, double seconds, long ops) {
    printf("micro=%-28s ns_per_op=%7.2f ops=%ld\n", name, seconds * 1e9 / (double)ops, ops);
}

/* calloc, then touch every page so that the timing sees the core, not the kernel's page faults */
static void *prefaulted(size_t n, size_t size) {
    void *p = calloc(n, size);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    { /* a volatile store per page: gcc folds a memset of calloc'ed memory away */
        volatile char *c = (volatile char *)p;
        size_t i;
        for (i = 0; i < n * size; i += 4096) c[i] = 0;
    }
    return p;
}

/* ---- resume of a ready task: K tasks each yield R times ---- */
typedef struct {
    async_task task;
    long left;
} yielder_frame;

static async_status yielder_run(async_task *t) {
    yielder_frame *f = (yielder_frame *)t;
    ASYNC_BEGIN(t);
    while (f->left-- > 0) AWAIT_YIELD(t);
    ASYNC_END(t);
}

static void bench_resume(long rounds) { /* 1000 tasks yield `rounds` times each */
    const long k = 1000;
    async_loop loop;
    yielder_frame *fs = prefaulted((size_t)k, sizeof *fs);
    double t0;
    long i;
    async_loop_init(&loop);
    for (i = 0; i < k; i++) {
        async_task_init(&fs[i].task, yielder_run);
        fs[i].left = rounds;
        async_spawn(&loop, &fs[i].task);
    }
    t0 = bench_now_s();
    TIMED_BEGIN();
    while (async_poll(&loop) >= 0) {}
    TIMED_END();
    report("resume_ready_task (yield)", bench_now_s() - t0, k * (rounds + 1));
    free(fs);
}

/* ---- spawn + yield + complete (W1 without libev): bench.h's W1 coroutines, as w1.c runs them ---- */
static void bench_spawn(long n) {
    async_loop loop;
    static bench_gather g;
    bench_w1_task *tasks = prefaulted((size_t)n, sizeof *tasks);
    double t0;
    async_loop_init(&loop);
    t0 = bench_now_s();
    TIMED_BEGIN();
    bench_w1_init(&g, tasks, n);
    async_run(&loop, &g.task);
    TIMED_END();
    report("spawn_yield_complete (W1)", bench_now_s() - t0, n);
    if (g.sum != (long long)n * (n - 1) / 2) printf("checksum mismatch\n");
    free(tasks);
}

/* ---- await of a completed future, R times in one task ---- */
typedef struct {
    async_task task;
    async_future *fut;
    long left;
} fut_frame;

static async_status fut_run(async_task *t) {
    fut_frame *f = (fut_frame *)t;
    ASYNC_BEGIN(t);
    while (f->left-- > 0) AWAIT_FUTURE(t, f->fut);
    ASYNC_END(t);
}

static void bench_future(long rounds) {
    async_loop loop;
    async_future fut = {0};
    static fut_frame f;
    double t0;
    async_loop_init(&loop);
    async_future_set_value(&fut, 1);
    ASYNC_FRAME_INIT(&f, fut_run);
    f.fut = &fut;
    f.left = rounds;
    t0 = bench_now_s();
    TIMED_BEGIN();
    async_run(&loop, &f.task);
    TIMED_END();
    report("await_completed_future", bench_now_s() - t0, rounds);
}

/* ---- timer insert + fire: N sleepers with spread deadlines ---- */
typedef struct {
    async_task task;
    int ms;
} sleeper_frame;

static async_status sleeper_run(async_task *t) {
    sleeper_frame *f = (sleeper_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT_SLEEP(t, f->ms);
    ASYNC_END(t);
}

/* n sleepers: with `spread`, deadlines 1..1000 ms in a scrambled order (the heap); without, all 1000 ms
 * (deadlines in order: the FIFO lane). */
static void timers(long n, int spread, const char *name) {
    async_loop loop;
    sleeper_frame *fs = prefaulted((size_t)n, sizeof *fs);
    double t0;
    long i;
    int32_t d;
    async_loop_init(&loop);
    async_loop_set_allocator(&loop, std_realloc, NULL);
    for (i = 0; i < n; i++) {
        async_task_init(&fs[i].task, sleeper_run);
        fs[i].ms = spread ? 1 + (int)((i * 7919) % 1000) : 1000;
        async_spawn(&loop, &fs[i].task);
    }
    t0 = bench_now_s();
    TIMED_BEGIN();
    while ((d = async_poll(&loop)) >= 0) loop.now += (async_ms)d;
    TIMED_END();
    report(name, bench_now_s() - t0, n);
    async_loop_free_storage(&loop);
    free(fs);
}

/* Two names, so that `micro small NAME` (make bench-callgrind) counts each alone. */
static void bench_timers(long n) { timers(n, 1, "timer_insert_fire (heap)"); }
static void bench_timers_in_order(long n) { timers(n, 0, "timer_insert_fire (in order)"); }

/* ---- nested inline awaits: a chain of D coroutines, each awaiting the next inline (AWAIT of a coroutine
 * never started runs it as part of the awaiting task); the innermost yields Y times, so that each of its
 * resumes starts from the task at the top of the chain, then every level returns its child's value + 1.
 * Reports ns per level: constant if a resume goes straight to the innermost coroutine and a completion
 * returns to its parent, growing with D if either walks the chain. ---- */
typedef struct nest_frame {
    async_task task;
    struct nest_frame *below; /* the next level, NULL at the innermost */
    long yields, value;
} nest_frame;

static async_status nest_run(async_task *t) {
    nest_frame *f = (nest_frame *)t;
    ASYNC_BEGIN(t);
    if (!f->below) {
        while (f->yields-- > 0) AWAIT_YIELD(t);
        f->value = 1;
    } else {
        async_task_init(&f->below->task, nest_run);
        AWAIT(t, &f->below->task);
        f->value = f->below->value + 1;
    }
    ASYNC_END(t);
}

static void depth(long levels, const char *name) {
    const long yields = 10;
    async_loop loop;
    nest_frame *fs = prefaulted((size_t)levels, sizeof *fs);
    double t0;
    long i;
    for (i = 0; i < levels; i++) {
        fs[i].below = i + 1 < levels ? &fs[i + 1] : NULL;
        fs[i].yields = yields;
    }
    async_loop_init(&loop);
    async_task_init(&fs[0].task, nest_run);
    t0 = bench_now_s();
    TIMED_BEGIN();
    async_run(&loop, &fs[0].task);
    TIMED_END();
    report(name, bench_now_s() - t0, levels);
    if (fs[0].value != levels) printf("checksum mismatch: %ld levels gave %ld\n", levels, fs[0].value);
    free(fs);
}
static void bench_depth_1k(long n) { depth(n, "inline_await_depth_1k"); }
static void bench_depth_100k(long n) { depth(n, "inline_await_depth_100k"); }
static void bench_depth_1m(long n) { depth(n, "inline_await_depth_1m"); }

/* micro [small [NAME]]: "small" divides the counts by 100 (for callgrind); NAME runs one benchmark. */
int main(int argc, char **argv) {
    long div = argc > 1 && strcmp(argv[1], "small") == 0 ? 100 : 1;
    const char *only = argc > 2 ? argv[2] : NULL;
    /* called through a volatile pointer: never inlined, so callgrind can count each one by name */
    void (*volatile fn)(long);
#define RUN(name, n)                                                     \
    if (!only || strcmp(only, #name) == 0) {                             \
        fn = name;                                                       \
        fn(n);                                                           \
    }
    if (!only) printf("micro=%-28s bytes=%lu\n", "sizeof(async_task)", (unsigned long)sizeof(async_task));
    RUN(bench_resume, 1000 / div);
    RUN(bench_spawn, 1000000 / div);
    RUN(bench_future, 10000000 / div);
    RUN(bench_timers_in_order, 1000000 / div);
    RUN(bench_timers, 1000000 / div);
    RUN(bench_depth_1k, 1000);
    RUN(bench_depth_100k, 100000 / div);
    if (div == 1) RUN(bench_depth_1m, 1000000);
    return 0;
}
