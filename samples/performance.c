/* Seed 001, slide 13: "Performance Considerations and Best Practices".
 *
 *   async def fast_operation():
 *       await asyncio.sleep(0.1)
 *
 *   async def slow_operation():
 *       time.sleep(1)  # This blocks the event loop!
 *
 *   async def main():
 *       start = time.time()
 *       await asyncio.gather(*[fast_operation() for _ in range(10)])   # Good: concurrently
 *       mid = time.time()
 *       print(f"10 fast operations took {mid - start:.2f} seconds")
 *       await slow_operation()                                         # Bad: blocks the loop
 *       end = time.time()
 *       print(f"1 slow operation took {end - mid:.2f} seconds")
 *
 * Ten 0.1 s sleeps gathered take 0.10 s; one blocking 1 s call holds the whole loop for 1 s, and debug
 * mode (on here) names it on stderr with its file and caller. Run it in real time: a blocking call is
 * invisible to the virtual clock. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <time.h>

#include "async.h"

typedef struct {
    async_task task;
} op_frame;

static async_status fast_operation_run(async_task *t) {
    ASYNC_BEGIN(t);
    AWAIT_SLEEP(t, 100);
    ASYNC_END(t);
}

static async_status slow_operation_run(async_task *t) {
    struct timespec one_second = {1, 0};
    ASYNC_BEGIN(t);
    nanosleep(&one_second, NULL); /* This blocks the event loop! */
    ASYNC_END(t);
}

typedef struct {
    async_task task;
    op_frame fast[10], slow;
    async_group all;
    async_ms start, mid;
} main_frame;

static double seconds_since(async_task *t, async_ms since) {
    return (double)(async_ms)(async_loop_time(async_task_loop(t)) - since) / 1000.0;
}

static async_status main_run(async_task *t) {
    main_frame *f = (main_frame *)t;
    int i;
    ASYNC_BEGIN(t);
    async_loop_set_debug(async_task_loop(t), true);
    f->start = async_loop_time(async_task_loop(t));
    for (i = 0; i < 10; i++) ASYNC_FRAME_INIT(&f->fast[i], fast_operation_run);
    AWAIT_GATHER_ARRAY(t, &f->all, &f->fast[0].task, 10, sizeof f->fast[0]);
    f->mid = async_loop_time(async_task_loop(t));
    printf("10 fast operations took %.2f seconds\n", seconds_since(t, f->start));
    ASYNC_FRAME_INIT(&f->slow, slow_operation_run);
    AWAIT(t, &f->slow.task);
    printf("1 slow operation took %.2f seconds\n", seconds_since(t, f->mid));
    ASYNC_END(t);
}

int main(void) {
    static main_frame m;
    ASYNC_FRAME_INIT(&m, main_run);
    return async_main(&m.task) ? 1 : 0;
}
