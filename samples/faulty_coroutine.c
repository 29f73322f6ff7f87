/* Seed 003, section 5.1: "Exception Handling in Coroutines".
 *
 *   async def faulty_coroutine():
 *       await asyncio.sleep(1)
 *       raise ValueError("An error occurred!")
 *
 *   async def main():
 *       try:
 *           await faulty_coroutine()
 *       except ValueError as e:
 *           print(f"Caught an exception: {e}")
 *
 * The error raised in the awaited coroutine comes out of the await in main, after 1 s. */
#include <stdio.h>

#include "async.h"

enum { VALUE_ERROR = ASYNC_EUSER };

typedef struct {
    async_task task;
} faulty_coroutine_frame;

static async_status faulty_coroutine_run(async_task *t) {
    ASYNC_BEGIN(t);
    AWAIT_SLEEP(t, 1000);
    ASYNC_THROW(t, VALUE_ERROR, "An error occurred!");
    ASYNC_END(t);
}

/* faulty_coroutine() */
static async_task *faulty_coroutine(faulty_coroutine_frame *f) {
    ASYNC_FRAME_INIT(f, faulty_coroutine_run);
    return &f->task;
}

typedef struct {
    async_task task;
    faulty_coroutine_frame faulty;
} main_frame;

static async_status main_run(async_task *t) {
    main_frame *f = (main_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_TRY(t) {
        AWAIT(t, faulty_coroutine(&f->faulty));
    } ASYNC_CATCH(t) {
        if (async_caught(t)->code != VALUE_ERROR) ASYNC_RERAISE(t);
        printf("Caught an exception: %s\n", async_caught(t)->message);
    } ASYNC_END_TRY(t);
    ASYNC_END(t);
}

int main(void) {
    static main_frame m;
    ASYNC_FRAME_INIT(&m, main_run);
    return async_main(&m.task) ? 1 : 0;
}
