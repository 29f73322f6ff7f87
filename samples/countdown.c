/* Seed 001, slide 2: "Understanding Coroutines".
 *
 *   async def countdown(n):
 *       while n > 0:
 *           print(n)
 *           await asyncio.sleep(1)  # Simulate a time-consuming task
 *           n -= 1
 *       print("Countdown finished!")
 *
 *   asyncio.run(countdown(5))
 *
 * 5 4 3 2 1, a second apart, then "Countdown finished!" at 5 s. n lives across the await, so it lives
 * in the frame. */
#include <stdio.h>

#include "async.h"

typedef struct {
    async_task task;
    int n;
} countdown_frame;

static async_status countdown_run(async_task *t) {
    countdown_frame *f = (countdown_frame *)t;
    ASYNC_BEGIN(t);
    while (f->n > 0) {
        printf("%d\n", f->n);
        AWAIT_SLEEP(t, 1000);
        f->n -= 1;
    }
    printf("Countdown finished!\n");
    ASYNC_END(t);
}

/* countdown(n) */
static async_task *countdown(countdown_frame *f, int n) {
    if (ASYNC_FRAME_INIT(f, countdown_run)) f->n = n;
    return &f->task;
}

int main(void) {
    static countdown_frame m;
    return async_main(countdown(&m, 5)) ? 1 : 0;
}
