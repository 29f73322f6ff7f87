/* Must compile: the same coroutine with its state in the frame (the control case). */
#include <stdio.h>

#include "async.h"

typedef struct {
    async_task task;
    int count;
} counter_frame;

async_status counter(async_task *t);
async_status counter(async_task *t) {
    counter_frame *f = (counter_frame *)t;
    ASYNC_BEGIN(t);
    f->count = 5;
    AWAIT_SLEEP(t, 10);
    printf("%d\n", f->count);
    ASYNC_END(t);
}
