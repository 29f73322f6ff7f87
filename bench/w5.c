/* W5 of the shared workloads: N trivial blocking calls offloaded to a thread pool, 1,000 in flight.
 *
 *   def blocking(i):
 *       return i
 *   sem = asyncio.Semaphore(1000)
 *   async def one(i):
 *       async with sem:
 *           return await asyncio.to_thread(blocking, i)
 *   rs = await asyncio.gather(*(one(i) for i in range(n)))
 *
 * Here 1,000 coroutines each await their share of the calls one after another (call i goes to
 * coroutine i % 1000), which keeps exactly 1,000 in flight like the semaphore. The loop's own pool has
 * 4 threads, as the peers' pools. Prints one line in the peers' format. */
#include "bench.h"

enum { IN_FLIGHT = 1000 };

static int blocking(void *arg, intptr_t *result) {
    *result = (intptr_t)arg;
    return 0;
}

typedef struct {
    async_task task;
    long i, n;
    long long sum;
    async_thread_call call;
} one_frame;

static async_status one_run(async_task *t) {
    one_frame *f = (one_frame *)t;
    ASYNC_BEGIN(t);
    for (; f->i < f->n; f->i += IN_FLIGHT) {
        AWAIT_TO_THREAD(t, &f->call, blocking, (void *)(intptr_t)f->i, NULL);
        f->sum += async_thread_call_result(&f->call);
    }
    ASYNC_END(t);
}

typedef struct {
    async_task task;
    one_frame ones[IN_FLIGHT];
    long n;
    long long sum;
    async_group all;
} main_frame;

static async_status main_run(async_task *t) {
    main_frame *f = (main_frame *)t;
    long k;
    ASYNC_BEGIN(t);
    for (k = 0; k < IN_FLIGHT; k++) {
        ASYNC_FRAME_INIT(&f->ones[k], one_run);
        f->ones[k].i = k;
        f->ones[k].n = f->n;
    }
    AWAIT_GATHER_ARRAY(t, &f->all, &f->ones[0].task, IN_FLIGHT, sizeof f->ones[0]);
    for (k = 0; k < IN_FLIGHT; k++) f->sum += f->ones[k].sum;
    ASYNC_END(t);
}

int main(int argc, char **argv) {
    static main_frame m;
    long n;
    async_loop *loop = bench_start(argc, argv, 100000, &n);
    double wall;
    int rc;
    if (!loop) return 2;
    if ((rc = async_loop_set_threads(loop, 4)) != 0) return bench_exit(argv[0], loop, rc);
    ASYNC_FRAME_INIT(&m, main_run);
    m.n = n;
    rc = bench_run(loop, &m.task, &wall);
    bench_print(&(bench_result){.workload = "W5", .impl = "async.h", .n = n, .wall_s = wall, .figure = "ns_per_op",
                                .value = wall * 1e9 / (double)n, .checksum = m.sum});
    return bench_exit(argv[0], loop, rc);
}
