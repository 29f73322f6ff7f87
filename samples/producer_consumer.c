/* Seed 002, "Real-time Data Processing": a producer and a consumer through asyncio.Queue(maxsize=2),
 * gathered; the producer shuts the queue down when done, and the consumer's get then fails
 * (QueueShutDown) once the queue is empty. The consumer is slower (0.3 s an item against 0.1 s), so the
 * producer waits for room: the pipeline runs at the consumer's pace (back-pressure), 6 x 0.3 s. */
#include <stdio.h>

#include "async.h"

ASYNC_DEF(producer, async_queue *queue; int i;) {
    for (f->i = 1; f->i < 7; f->i++) {
        AWAIT_QUEUE_PUT(t, f->queue, f->i); /* waits while the queue is full */
        printf("Produced %d\n", f->i);
        AWAIT_SLEEP(t, 100);
    }
    async_queue_shutdown(f->queue, false);
} ASYNC_END_DEF

ASYNC_DEF(consumer, async_queue *queue; intptr_t item;) {
    ASYNC_TRY(t) {
        for (;;) {
            AWAIT_QUEUE_GET(t, f->queue, &f->item);
            AWAIT_SLEEP(t, 300); /* processing is slower than producing */
            printf("Consumed %d\n", (int)f->item);
            async_queue_task_done(f->queue);
        }
    } ASYNC_EXCEPT(t, ASYNC_ESHUTDOWN) {
        printf("Consumer done\n");
    } ASYNC_END_TRY(t);
} ASYNC_END_DEF

ASYNC_DEF(main, async_queue queue; intptr_t slots[2]; producer_frame producer; consumer_frame consumer;
          async_group both;) {
    async_queue_init(&f->queue, ASYNC_QUEUE_FIFO, f->slots, NULL, 2); /* maxsize=2 */
    AWAIT_GATHER(t, &f->both, ASYNC_CALL(producer, &f->producer, &f->queue),
                 ASYNC_CALL(consumer, &f->consumer, &f->queue));
} ASYNC_END_DEF

ASYNC_MAIN(main)
