/* Seed 001, slide 11: "Real-Life Example: Asynchronous Task Queue".
 *
 *   class AsyncTaskQueue:
 *       def __init__(self):
 *           self.queue = asyncio.Queue()
 *       async def add_task(self, task):
 *           await self.queue.put(task)
 *       async def process_tasks(self):
 *           while True:
 *               task = await self.queue.get()
 *               await self.execute_task(task)
 *               self.queue.task_done()
 *       async def execute_task(self, task):
 *           await asyncio.sleep(random.uniform(0.1, 0.5))
 *           print(f"Processed task: {task}")
 *
 *   async def main():
 *       queue = AsyncTaskQueue()
 *       for i in range(10):
 *           await queue.add_task(f"Task {i}")
 *       processor = asyncio.create_task(queue.process_tasks())
 *       await queue.queue.join()
 *       processor.cancel()
 *
 * Ten tasks processed in order by one worker; main waits for the queue to drain, then cancels the
 * worker. The random durations come from a fixed seed so that every run takes the same time. */
#include <stdio.h>
#include <stdlib.h>

#include "async.h"

/* random.uniform(0.1, 0.5) in ms, from a fixed seed (xorshift) */
static int uniform_ms(int lo, int hi) {
    static uint32_t x = 2463534242u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return lo + (int)(x % (uint32_t)(hi - lo + 1));
}

typedef struct {
    async_queue queue; /* asyncio.Queue(): unbounded, grows with realloc */
} async_task_queue;

typedef struct {
    async_task task;
    intptr_t item;
} execute_frame;

static async_status execute_task_run(async_task *t) {
    execute_frame *f = (execute_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT_SLEEP(t, uniform_ms(100, 500));
    printf("Processed task: Task %d\n", (int)f->item);
    ASYNC_END(t);
}

static async_task *execute_task(execute_frame *f, intptr_t item) {
    if (ASYNC_FRAME_INIT(f, execute_task_run)) f->item = item;
    return &f->task;
}

typedef struct {
    async_task task;
    async_task_queue *self;
    intptr_t item;
    execute_frame execute;
} process_frame;

static async_status process_tasks_run(async_task *t) {
    process_frame *f = (process_frame *)t;
    ASYNC_BEGIN(t);
    for (;;) {
        AWAIT_QUEUE_GET(t, &f->self->queue, &f->item);
        AWAIT(t, execute_task(&f->execute, f->item));
        async_queue_task_done(&f->self->queue);
    }
    ASYNC_END(t);
}

static async_task *process_tasks(process_frame *f, async_task_queue *self) {
    if (ASYNC_FRAME_INIT(f, process_tasks_run)) f->self = self;
    return &f->task;
}

typedef struct {
    async_task task;
    async_task_queue queue;
    process_frame processor;
    int i;
} main_frame;

static async_status main_run(async_task *t) {
    main_frame *f = (main_frame *)t;
    ASYNC_BEGIN(t);
    async_queue_init_growing(&f->queue.queue, ASYNC_QUEUE_FIFO, 0, realloc);
    for (f->i = 0; f->i < 10; f->i++) AWAIT_QUEUE_PUT(t, &f->queue.queue, f->i); /* add_task */
    async_spawn(async_task_loop(t), process_tasks(&f->processor, &f->queue));
    AWAIT_QUEUE_JOIN(t, &f->queue.queue);
    async_cancel(&f->processor.task);
    async_queue_free_storage(&f->queue.queue);
    ASYNC_END(t);
}

int main(void) {
    static main_frame m;
    ASYNC_FRAME_INIT(&m, main_run);
    return async_main(&m.task) ? 1 : 0;
}
