/* W3 of the shared workloads: two tasks pass M values through two bounded queues of size 1.
 *
 *   q1, q2 = asyncio.Queue(1), asyncio.Queue(1)
 *   async def ping():
 *       s = 0
 *       for i in range(m):
 *           await q1.put(i)
 *           s += await q2.get()
 *       return s
 *   async def pong():
 *       for _ in range(m):
 *           v = await q1.get()
 *           await q2.put(v)
 *   s, _ = await asyncio.gather(ping(), pong())
 *
 * Runs on the hosted libev loop as a user's program would; prints ns per switch (wall / 2M). */
#include "bench.h"

typedef struct {
    async_task task;
    async_queue *q1, *q2;
    long i, m;
    intptr_t v;
    long long sum;
} player_frame;

static async_status ping_run(async_task *t) {
    player_frame *f = (player_frame *)t;
    ASYNC_BEGIN(t);
    for (f->i = 0; f->i < f->m; f->i++) {
        AWAIT_QUEUE_PUT(t, f->q1, f->i);
        AWAIT_QUEUE_GET(t, f->q2, &f->v);
        f->sum += f->v;
    }
    ASYNC_END(t);
}

static async_status pong_run(async_task *t) {
    player_frame *f = (player_frame *)t;
    ASYNC_BEGIN(t);
    for (f->i = 0; f->i < f->m; f->i++) {
        AWAIT_QUEUE_GET(t, f->q1, &f->v);
        AWAIT_QUEUE_PUT(t, f->q2, f->v);
    }
    ASYNC_END(t);
}

typedef struct {
    async_task task;
    async_queue q1, q2;
    intptr_t s1[1], s2[1];
    player_frame ping, pong;
    async_group both;
} main_frame;

static async_status main_run(async_task *t) {
    main_frame *f = (main_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT_GATHER(t, &f->both, &f->ping.task, &f->pong.task);
    ASYNC_END(t);
}

int main(int argc, char **argv) {
    static main_frame m;
    long n;
    async_loop *loop = bench_start(argc, argv, 1000000, &n);
    double wall;
    int rc;
    if (!loop) return 2;
    ASYNC_FRAME_INIT(&m, main_run);
    async_queue_init(&m.q1, ASYNC_QUEUE_FIFO, m.s1, NULL, 1);
    async_queue_init(&m.q2, ASYNC_QUEUE_FIFO, m.s2, NULL, 1);
    ASYNC_FRAME_INIT(&m.ping, ping_run);
    ASYNC_FRAME_INIT(&m.pong, pong_run);
    m.ping.q1 = m.pong.q1 = &m.q1;
    m.ping.q2 = m.pong.q2 = &m.q2;
    m.ping.m = m.pong.m = n;
    rc = bench_run(loop, &m.task, &wall);
    bench_print(&(bench_result){.workload = "W3", .impl = "async.h", .n = n, .wall_s = wall,
                                .figure = "ns_per_switch", .value = wall * 1e9 / (2.0 * (double)n),
                                .checksum = m.ping.sum});
    return bench_exit(argv[0], loop, rc);
}
