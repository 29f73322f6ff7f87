/* Seed 001, slide 11: "Real-Life Example: Asynchronous Task Queue". Ten tasks processed in order by one
 * worker; main waits for the queue to drain, then cancels the worker. The random durations come from a
 * fixed seed so that every run takes the same time. A board has no heap: there the queue has ten fixed
 * slots, room for every task the sample adds. */
#include <stdio.h>
#include <stdlib.h>

#include "async.h"

/* random.uniform(lo, hi) in ms, from a fixed seed (xorshift) */
static int uniform_ms(int lo, int hi) {
    static uint32_t x = 2463534242u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return lo + (int)(x % (uint32_t)(hi - lo + 1));
}

/* asyncio.Queue(): unbounded, grows with realloc (on a board: ten slots) */
typedef struct {
    async_queue queue;
#if !__STDC_HOSTED__
    intptr_t slots[10];
#endif
} async_task_queue;

static int task_queue_init(async_task_queue *self) {
#if __STDC_HOSTED__
    return async_queue_init_growing(&self->queue, ASYNC_QUEUE_FIFO, 0, realloc);
#else
    return async_queue_init(&self->queue, ASYNC_QUEUE_FIFO, self->slots, NULL, 10);
#endif
}

ASYNC_DEF(execute_task, intptr_t item;) {
    AWAIT_SLEEP(t, uniform_ms(100, 500));
    printf("Processed task: Task %d\n", (int)f->item);
} ASYNC_END_DEF

ASYNC_DEF(process_tasks, async_task_queue *self; intptr_t item; execute_task_frame execute;) {
    for (;;) {
        AWAIT_QUEUE_GET(t, &f->self->queue, &f->item);
        AWAIT_CALL(t, execute_task, &f->execute, f->item);
        async_queue_task_done(&f->self->queue);
    }
} ASYNC_END_DEF

ASYNC_DEF(main, async_task_queue queue; process_tasks_frame processor; int i;) {
    task_queue_init(&f->queue);
    for (f->i = 0; f->i < 10; f->i++) AWAIT_QUEUE_PUT(t, &f->queue.queue, f->i); /* add_task(f"Task {i}") */
    async_spawn(async_task_loop(t), ASYNC_CALL(process_tasks, &f->processor, &f->queue));
    AWAIT_QUEUE_JOIN(t, &f->queue.queue);
    async_cancel(&f->processor.task);
    async_queue_free_storage(&f->queue.queue);
} ASYNC_END_DEF

ASYNC_MAIN(main)
