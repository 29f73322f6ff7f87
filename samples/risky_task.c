/* Seed 000, section 7: "Error Handling in Asynchronous Code".
 *
 *   async def risky_task():
 *       try:
 *           # Simulate a task that may fail
 *           await asyncio.sleep(1)
 *           raise ValueError("An error occurred!")
 *       except ValueError as e:
 *           print(f"Caught an error: {e}")
 *
 *   asyncio.run(risky_task())
 *
 * Seed 004 ("Async Exception Handling") has the same coroutine with the message "Something went
 * wrong!". The except clause catches ValueError only; anything else goes on outwards. */
#include <stdio.h>

#include "async.h"

enum { VALUE_ERROR = ASYNC_EUSER };

typedef struct {
    async_task task;
} risky_task_frame;

static async_status risky_task_run(async_task *t) {
    ASYNC_BEGIN(t);
    ASYNC_TRY(t) {
        AWAIT_SLEEP(t, 1000);
        ASYNC_THROW(t, VALUE_ERROR, "An error occurred!");
    } ASYNC_CATCH(t) {
        if (async_caught(t)->code != VALUE_ERROR) ASYNC_RERAISE(t);
        printf("Caught an error: %s\n", async_caught(t)->message);
    } ASYNC_END_TRY(t);
    ASYNC_END(t);
}

/* risky_task() */
static async_task *risky_task(risky_task_frame *f) {
    ASYNC_FRAME_INIT(f, risky_task_run);
    return &f->task;
}

int main(void) {
    static risky_task_frame m;
    return async_main(risky_task(&m)) ? 1 : 0;
}
