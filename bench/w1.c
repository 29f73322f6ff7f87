/* W1 of the shared workloads: spawn N tasks that each yield once (sleep 0) and return i; gather; sum.
 *
 *   async def task(i):
 *       await asyncio.sleep(0)
 *       return i
 *   rs = await asyncio.gather(*(task(i) for i in range(n)))
 *
 * Runs on the hosted libev loop, as a user's program would. Prints one line in the peers' format. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "async.h"

typedef struct {
    async_task task;
    long i;
} task_frame;

static async_status task_run(async_task *t) {
    task_frame *f = (task_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_YIELD(t);
    ASYNC_RETURN(t, f->i);
    ASYNC_END(t);
}

typedef struct {
    async_task task;
    task_frame *tasks;
    long n;
    long long sum;
    async_group all;
} main_frame;

static async_status main_run(async_task *t) {
    main_frame *f = (main_frame *)t;
    long i;
    ASYNC_BEGIN(t);
    for (i = 0; i < f->n; i++) {
        async_task_init(&f->tasks[i].task, task_run);
        f->tasks[i].i = i;
    }
    AWAIT_GATHER_ARRAY(t, &f->all, &f->tasks[0].task, (size_t)f->n, sizeof f->tasks[0]);
    for (i = 0; i < f->n; i++) f->sum += async_task_value(&f->tasks[i].task);
    ASYNC_END(t);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    static main_frame m;
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    async_loop *loop = async_loop_new(0);
    struct rusage ru;
    double t0, wall;
    int rc;
    if (!loop || n < 1) return 2;
    ASYNC_FRAME_INIT(&m, main_run);
    m.n = n;
    t0 = now_s(); /* the frames' memory is part of the cost: allocated inside the timing */
    m.tasks = async_frames_new((size_t)n, sizeof *m.tasks); /* calloc with BENCH_CALLOC=1 */
    if (getenv("BENCH_CALLOC")) {
        async_frames_free(m.tasks, (size_t)n, sizeof *m.tasks);
        t0 = now_s();
        m.tasks = calloc((size_t)n, sizeof *m.tasks);
    }
    if (!m.tasks) return 2;
    rc = async_run(loop, &m.task);
    wall = now_s() - t0;
    getrusage(RUSAGE_SELF, &ru);
    printf("workload=W1 impl=async.h%s n=%ld wall_s=%.4f rss_kb=%ld ns_per_op=%.1f checksum=%lld\n",
           getenv("BENCH_CALLOC") ? "-calloc" : "", n, wall,
           ru.ru_maxrss, wall * 1e9 / (double)n, m.sum);
    if (getenv("BENCH_CALLOC"))
        free(m.tasks);
    else
        async_frames_free(m.tasks, (size_t)n, sizeof *m.tasks);
    async_loop_free(loop);
    return rc ? 1 : 0;
}
