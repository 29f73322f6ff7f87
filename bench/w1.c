/* W1 of the shared workloads: spawn N tasks that each yield once (sleep 0) and return i; gather; sum.
 *
 *   async def task(i):
 *       await asyncio.sleep(0)
 *       return i
 *   rs = await asyncio.gather(*(task(i) for i in range(n)))
 *
 * Runs on the hosted libev loop, as a user's program would; the coroutines are bench.h's bench_w1_task and
 * bench_gather, which micro.c also runs on the core alone. The frames' memory is part of the cost: the
 * timing starts before it is allocated, by async_frame_array_new (one populated mapping), or by plain calloc
 * with BENCH_CALLOC=1 (first-touch page faults included). Prints one line in the peers' format. */
#include "bench.h"

int main(int argc, char **argv) {
    static bench_gather g;
    const int use_calloc = getenv("BENCH_CALLOC") != NULL;
    long n;
    async_loop *loop = bench_start(argc, argv, 1000000, &n);
    bench_w1_task *tasks;
    double t0, wall;
    int rc;
    if (!loop) return 2;
    t0 = bench_now_s();
    tasks = use_calloc ? calloc((size_t)n, sizeof *tasks) : async_frame_array_new((size_t)n, sizeof *tasks);
    if (!tasks) return bench_exit(argv[0], loop, ASYNC_ENOMEM);
    bench_w1_init(&g, tasks, n);
    rc = async_run(loop, &g.task);
    wall = bench_now_s() - t0;
    bench_print(&(bench_result){.workload = "W1", .impl = use_calloc ? "async.h-calloc" : "async.h", .n = n,
                                .wall_s = wall, .figure = "ns_per_op", .value = wall * 1e9 / (double)n,
                                .checksum = g.sum});
    rc = bench_exit(argv[0], loop, rc);
    if (use_calloc)
        free(tasks);
    else
        async_frame_array_free(tasks, (size_t)n, sizeof *tasks);
    return rc;
}
