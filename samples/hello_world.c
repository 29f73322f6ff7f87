/* Seed 000, section 4: "Defining Coroutines".
 *
 *   async def hello_world():
 *       print("Hello")
 *       await asyncio.sleep(1)
 *       print("World")
 *
 *   asyncio.run(hello_world())
 *
 * One coroutine: "Hello", a 1 s pause, "World". */
#include <stdio.h>

#include "async.h"

typedef struct {
    async_task task;
} hello_world_frame;

static async_status hello_world_run(async_task *t) {
    ASYNC_BEGIN(t);
    printf("Hello\n");
    AWAIT_SLEEP(t, 1000);
    printf("World\n");
    ASYNC_END(t);
}

/* hello_world() */
static async_task *hello_world(hello_world_frame *f) {
    ASYNC_FRAME_INIT(f, hello_world_run);
    return &f->task;
}

int main(void) {
    static hello_world_frame m;
    return async_main(hello_world(&m)) ? 1 : 0;
}
