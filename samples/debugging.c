/* Seed 001, slide 12: "Debugging Asynchronous Code".
 *
 *   async def problematic_coroutine():
 *       await asyncio.sleep(1)
 *       raise ValueError("Oops!")
 *
 *   async def main():
 *       try:
 *           await problematic_coroutine()
 *       except ValueError as e:
 *           print(f"Caught an error: {e}")
 *       asyncio.get_event_loop().set_debug(True)   # Enable debug mode
 *       task = asyncio.create_task(problematic_coroutine())
 *       try:
 *           await task
 *       except ValueError:
 *           print("Task failed, but we caught it!")
 *
 * The same error caught from an awaited coroutine and from a task. In debug mode a step that blocks the
 * loop is reported with its file:line, `async_dump` (or SIGQUIT) prints every live task's await chain,
 * and tasks never started are reported; ASYNC_DEBUG=1 turns it on for any program. */
#include <stdio.h>

#include "async.h"

#define VALUE_ERROR (ASYNC_EUSER + 1) /* an application error code */

typedef struct {
    async_task task;
} problematic_frame;

static async_status problematic_coroutine_run(async_task *t) {
    ASYNC_BEGIN(t);
    AWAIT_SLEEP(t, 1000);
    ASYNC_THROW(t, VALUE_ERROR, "Oops!");
    ASYNC_END(t);
}

static async_task *problematic_coroutine(problematic_frame *f) {
    ASYNC_FRAME_INIT(f, problematic_coroutine_run);
    return &f->task;
}

typedef struct {
    async_task task;
    problematic_frame first, task2;
} main_frame;

static async_status main_run(async_task *t) {
    main_frame *f = (main_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_TRY(t) {
        AWAIT(t, problematic_coroutine(&f->first));
    }
    ASYNC_CATCH(t) {
        if (async_caught(t)->code != VALUE_ERROR) ASYNC_RERAISE(t);
        printf("Caught an error: %s\n", async_error_message(async_caught(t)));
    }
    ASYNC_END_TRY(t);

    async_loop_set_debug(async_task_loop(t), true); /* Enable debug mode */

    async_spawn(async_task_loop(t), problematic_coroutine(&f->task2));
    ASYNC_TRY(t) {
        AWAIT(t, &f->task2.task);
    }
    ASYNC_CATCH(t) {
        if (async_caught(t)->code != VALUE_ERROR) ASYNC_RERAISE(t);
        printf("Task failed, but we caught it!\n");
    }
    ASYNC_END_TRY(t);
    ASYNC_END(t);
}

int main(void) {
    static main_frame m;
    ASYNC_FRAME_INIT(&m, main_run);
    return async_main(&m.task) ? 1 : 0;
}
