/* bench.h: what the benchmark programs share. A monotonic clock, peak RSS, a program's start (its size
 * argument and loop) and end, a timed async_run, the result line in the format every peer of
 * ../shared/bench prints
 *
 *   workload=W impl=NAME n=N wall_s=S rss_kb=K <figure>=X checksum=C
 *
 * (bench/run.sh reads these lines), and W1's coroutines, which w1.c runs on the hosted loop and micro.c
 * on the portable core alone: one definition, so both measure the same code.
 *
 * Include it before any other header: it asks for POSIX (clock_gettime). A program that compiles the core
 * itself (micro.c) defines ASYNC_IMPLEMENTATION first. Everything here is static inline: a program pays
 * only for what it calls, and an unused helper draws no warning. */
#ifndef ASYNC_BENCH_H_INCLUDED
#define ASYNC_BENCH_H_INCLUDED

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "async.h"

/** Monotonic time in seconds; a timed part is bench_now_s() - t0. */
static inline double bench_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/** Peak resident set size of this process in KiB (Linux gives ru_maxrss in KiB), as the peers report it. */
static inline long bench_rss_kb(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return -1;
    return ru.ru_maxrss;
}

/** The start of a workload program, `prog [N]`: *n is N (tasks, messages or calls) if given, else
 *  `fallback`, and the result a new hosted loop. NULL after saying why on stderr: the usage, for anything
 *  but one positive whole number; or out of memory. The program then exits with 2. */
static inline async_loop *bench_start(int argc, char **argv, long fallback, long *n) {
    async_loop *loop;
    char *end = NULL;
    *n = fallback;
    if (argc > 1) {
        errno = 0;
        *n = strtol(argv[1], &end, 10);
        if (errno || end == argv[1] || *end != '\0') *n = -1;
    }
    if (argc > 2 || *n < 1) {
        fprintf(stderr, "usage: %s [N]   (N: a positive count, default %ld)\n", argv[0], fallback);
        return NULL;
    }
    if (!(loop = async_loop_new(0))) fprintf(stderr, "%s: %s\n", argv[0], async_strerror(ASYNC_ENOMEM));
    return loop;
}

/** async_run(loop, main) with its wall time in *wall_s: what W3 and W5 time (W1 and W2 start the clock
 *  earlier, before their frames are allocated). */
static inline int bench_run(async_loop *loop, async_task *main, double *wall_s) {
    double t0 = bench_now_s();
    int rc = async_run(loop, main);
    *wall_s = bench_now_s() - t0;
    return rc;
}

/** One result line. The figure is the workload's (lower is better), named as the peers name it. */
typedef struct {
    const char *workload; /**< "W1" ... "W5" */
    const char *impl;     /**< "async.h", or a variant such as "async.h-calloc" */
    long n;               /**< tasks, messages or calls */
    double wall_s;        /**< the timed part, in seconds */
    const char *extra;    /**< more "key=value" fields to print before the figure, or NULL */
    const char *figure;   /**< ns_per_op, bytes_per_task, ns_per_switch ... */
    double value;         /**< the figure */
    long long checksum;   /**< proves the work happened: W1/W3/W5 the sum of 0..n-1, W2 n */
} bench_result;

/** Prints r as one line in the peers' format; rss_kb is the peak RSS at the time of printing. */
static inline void bench_print(const bench_result *r) {
    printf("workload=%s impl=%s n=%ld wall_s=%.4f rss_kb=%ld %s%s%s=%.1f checksum=%lld\n", r->workload, r->impl,
           r->n, r->wall_s, bench_rss_kb(), r->extra ? r->extra : "", r->extra ? " " : "", r->figure, r->value,
           r->checksum);
    fflush(stdout);
}

/** The end of a workload program: frees loop, says on stderr what failed if rc is an error code (the
 *  run's, or ASYNC_ENOMEM from the setup), and returns the exit status: 0, or 1 after an error. */
static inline int bench_exit(const char *prog, async_loop *loop, int rc) {
    async_loop_free(loop);
    if (rc) fprintf(stderr, "%s: %s\n", prog, async_strerror(rc));
    return rc ? 1 : 0;
}

/* ---- gather over an array of frames, summing the results ---- */

/** The main of W1 and W2: asyncio.gather over `count` frames laid out `size` bytes apart from `first`,
 *  each already prepared by async_task_init; `sum` is the sum of their results. */
typedef struct {
    async_task task;
    async_task *first;
    size_t count, size;
    long long sum;
    async_group all;
} bench_gather;

/** bench_gather's coroutine. */
static inline async_status bench_gather_run(async_task *t) {
    bench_gather *f = (bench_gather *)t;
    size_t i;
    ASYNC_BEGIN(t);
    AWAIT_GATHER_ARRAY(t, &f->all, f->first, f->count, f->size);
    for (i = 0; i < f->count; i++) f->sum += async_task_value((async_task *)((char *)f->first + i * f->size));
    ASYNC_END(t);
}

/** Prepares g to gather the count frames of `size` bytes from first (the header of frame 0). */
static inline void bench_gather_init(bench_gather *g, async_task *first, size_t count, size_t size) {
    ASYNC_FRAME_INIT(g, bench_gather_run);
    g->first = first;
    g->count = count;
    g->size = size;
}

/* ---- W1: spawn N tasks that each yield once and return i; gather; sum ---- */

/** W1's task, `async def task(i): await asyncio.sleep(0); return i`. */
typedef struct {
    async_task task;
    long i;
} bench_w1_task;

/** bench_w1_task's coroutine. */
static inline async_status bench_w1_task_run(async_task *t) {
    bench_w1_task *f = (bench_w1_task *)t;
    ASYNC_BEGIN(t);
    AWAIT_YIELD(t);
    ASYNC_RETURN(t, f->i);
    ASYNC_END(t);
}

/** Prepares W1 on n zeroed task frames: task(0) ... task(n - 1), and g to gather them. */
static inline void bench_w1_init(bench_gather *g, bench_w1_task *tasks, long n) {
    long i;
    for (i = 0; i < n; i++) {
        async_task_init(&tasks[i].task, bench_w1_task_run);
        tasks[i].i = i;
    }
    bench_gather_init(g, &tasks[0].task, (size_t)n, sizeof tasks[0]);
}

#endif /* ASYNC_BENCH_H_INCLUDED */
