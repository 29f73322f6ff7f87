/* Seed 002, "Real-time Data Processing": a producer/consumer pipeline through a bounded queue.
 *
 *   async def producer(queue):
 *       for i in range(1, 7):
 *           await queue.put(i)          # waits while the queue is full
 *           print(f"Produced {i}")
 *           await asyncio.sleep(0.1)
 *       queue.shutdown()                # no more items: the consumer's get fails once it is empty
 *
 *   async def consumer(queue):
 *       try:
 *           while True:
 *               item = await queue.get()
 *               await asyncio.sleep(0.3)  # processing is slower than producing
 *               print(f"Consumed {item}")
 *               queue.task_done()
 *       except asyncio.QueueShutDown:
 *           print("Consumer done")
 *
 *   async def main():
 *       queue = asyncio.Queue(maxsize=2)
 *       await asyncio.gather(producer(queue), consumer(queue))
 *
 * The queue holds two items: once the consumer falls behind, the producer waits for room, so the
 * pipeline runs at the consumer's pace (back-pressure) and memory stays bounded. 6 items x 0.3 s. */
#include <stdio.h>

#include "async.h"

typedef struct {
    async_task task;
    async_queue *queue;
    int i;
} producer_frame;

static async_status producer_run(async_task *t) {
    producer_frame *f = (producer_frame *)t;
    ASYNC_BEGIN(t);
    for (f->i = 1; f->i < 7; f->i++) {
        AWAIT_QUEUE_PUT(t, f->queue, f->i);
        printf("Produced %d\n", f->i);
        AWAIT_SLEEP(t, 100);
    }
    async_queue_shutdown(f->queue, false);
    ASYNC_END(t);
}

typedef struct {
    async_task task;
    async_queue *queue;
    intptr_t item;
} consumer_frame;

static async_status consumer_run(async_task *t) {
    consumer_frame *f = (consumer_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_TRY(t) {
        for (;;) {
            AWAIT_QUEUE_GET(t, f->queue, &f->item);
            AWAIT_SLEEP(t, 300); /* processing is slower than producing */
            printf("Consumed %d\n", (int)f->item);
            async_queue_task_done(f->queue);
        }
    }
    ASYNC_CATCH(t) {
        if (async_caught(t)->code != ASYNC_ESHUTDOWN) ASYNC_RERAISE(t);
        printf("Consumer done\n");
    }
    ASYNC_END_TRY(t);
    ASYNC_END(t);
}

typedef struct {
    async_task task;
    async_queue queue;
    intptr_t slots[2]; /* maxsize=2 */
    producer_frame producer;
    consumer_frame consumer;
    async_group both;
} main_frame;

static async_status main_run(async_task *t) {
    main_frame *f = (main_frame *)t;
    ASYNC_BEGIN(t);
    async_queue_init(&f->queue, ASYNC_QUEUE_FIFO, f->slots, NULL, 2);
    ASYNC_FRAME_INIT(&f->producer, producer_run);
    f->producer.queue = &f->queue;
    ASYNC_FRAME_INIT(&f->consumer, consumer_run);
    f->consumer.queue = &f->queue;
    AWAIT_GATHER(t, &f->both, &f->producer.task, &f->consumer.task);
    ASYNC_END(t);
}

int main(void) {
    static main_frame m;
    ASYNC_FRAME_INIT(&m, main_run);
    return async_main(&m.task) ? 1 : 0;
}
