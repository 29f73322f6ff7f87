/* W2 of the shared workloads: N tasks each sleep 1.0 s concurrently, then return 1.
 *
 *   async def sleeper(i):
 *       await asyncio.sleep(1.0)
 *       return 1
 *   rs = await asyncio.gather(*(sleeper(i) for i in range(n)))
 *
 * The figure is RSS per waiting task (peak RSS growth / N), frames included; the line also gives the part
 * beyond the frame (the task's share of the timer heap and the gather). Wall - 1 s is the overhead of
 * starting, timing and finishing N sleepers. The main is bench.h's bench_gather. */
#include "bench.h"

typedef struct {
    async_task task; /* the whole frame: a sleeper has no state of its own */
} sleeper_frame;

static async_status sleeper_run(async_task *t) {
    ASYNC_BEGIN(t);
    AWAIT_SLEEP(t, 1000);
    ASYNC_RETURN(t, 1);
    ASYNC_END(t);
}

int main(int argc, char **argv) {
    static bench_gather g;
    long n, base, i;
    async_loop *loop = bench_start(argc, argv, 100000, &n);
    sleeper_frame *sleepers;
    double t0, wall, per_task;
    char extra[64];
    int rc;
    if (!loop) return 2;
    base = bench_rss_kb();
    t0 = bench_now_s();
    sleepers = async_frame_array_new((size_t)n, sizeof *sleepers);
    if (!sleepers) return bench_exit(argv[0], loop, ASYNC_ENOMEM);
    for (i = 0; i < n; i++) async_task_init(&sleepers[i].task, sleeper_run);
    bench_gather_init(&g, &sleepers[0].task, (size_t)n, sizeof sleepers[0]);
    rc = async_run(loop, &g.task);
    wall = bench_now_s() - t0;
    per_task = (double)(bench_rss_kb() - base) * 1024.0 / (double)n;
    snprintf(extra, sizeof extra, "beyond_frame_bytes=%.1f", per_task - (double)sizeof(sleeper_frame));
    bench_print(&(bench_result){.workload = "W2", .impl = "async.h", .n = n, .wall_s = wall, .extra = extra,
                                .figure = "bytes_per_task", .value = per_task, .checksum = g.sum});
    rc = bench_exit(argv[0], loop, rc);
    async_frame_array_free(sleepers, (size_t)n, sizeof *sleepers);
    return rc;
}
