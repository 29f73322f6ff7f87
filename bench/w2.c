/* W2 of the shared workloads: N tasks each sleep 1.0 s concurrently, then return 1.
 *
 *   async def sleeper(i):
 *       await asyncio.sleep(1.0)
 *       return 1
 *   rs = await asyncio.gather(*(sleeper(i) for i in range(n)))
 *
 * The figure is RSS per waiting task (peak RSS growth / N), frames included; the line also gives the part
 * beyond the frame (the task's share of the timer heap and the gather). Wall - 1 s is the overhead of
 * starting, timing and finishing N sleepers. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "async.h"

typedef struct {
    async_task task; /* the whole frame: a sleeper has no state of its own */
} sleeper_frame;

static async_status sleeper_run(async_task *t) {
    ASYNC_BEGIN(t);
    AWAIT_SLEEP(t, 1000);
    ASYNC_RETURN(t, 1);
    ASYNC_END(t);
}

typedef struct {
    async_task task;
    sleeper_frame *sleepers;
    long n;
    long long sum;
    async_group all;
} main_frame;

static async_status main_run(async_task *t) {
    main_frame *f = (main_frame *)t;
    long i;
    ASYNC_BEGIN(t);
    for (i = 0; i < f->n; i++) async_task_init(&f->sleepers[i].task, sleeper_run);
    AWAIT_GATHER_ARRAY(t, &f->all, &f->sleepers[0].task, (size_t)f->n, sizeof f->sleepers[0]);
    for (i = 0; i < f->n; i++) f->sum += async_task_value(&f->sleepers[i].task);
    ASYNC_END(t);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static long rss_kb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

int main(int argc, char **argv) {
    static main_frame m;
    long n = argc > 1 ? atol(argv[1]) : 100000, base;
    async_loop *loop = async_loop_new(0);
    double t0, wall, per_task;
    int rc;
    if (!loop || n < 1) return 2;
    base = rss_kb();
    t0 = now_s();
    ASYNC_FRAME_INIT(&m, main_run);
    m.n = n;
    m.sleepers = async_frames_new((size_t)n, sizeof *m.sleepers);
    if (!m.sleepers) return 2;
    rc = async_run(loop, &m.task);
    wall = now_s() - t0;
    per_task = (double)(rss_kb() - base) * 1024.0 / (double)n;
    printf("workload=W2 impl=async.h n=%ld wall_s=%.4f rss_kb=%ld beyond_frame_bytes=%.1f bytes_per_task=%.1f "
           "checksum=%lld\n",
           n, wall, rss_kb(), per_task - (double)sizeof(sleeper_frame), per_task, m.sum);
    async_frames_free(m.sleepers, (size_t)n, sizeof *m.sleepers);
    async_loop_free(loop);
    return rc ? 1 : 0;
}
