/* Seed 003, section 5.2: "Cancelling Tasks".
 *
 *   async def long_running_task():
 *       try:
 *           await asyncio.sleep(10)
 *       except asyncio.CancelledError:
 *           print("Task was cancelled")
 *           raise
 *
 *   async def main():
 *       task = asyncio.create_task(long_running_task())
 *       await asyncio.sleep(1)
 *       task.cancel()
 *       try:
 *           await task
 *       except asyncio.CancelledError:
 *           print("Caught task cancellation")
 *
 * The cancellation interrupts the 10 s sleep after 1 s: the task sees it as an error at its await,
 * re-raises it, and main sees it again at `await task`. The whole takes 1 s. */
#include <stdio.h>

#include "async.h"

typedef struct {
    async_task task;
} long_running_task_frame;

static async_status long_running_task_run(async_task *t) {
    ASYNC_BEGIN(t);
    ASYNC_TRY(t) {
        AWAIT_SLEEP(t, 10000);
    } ASYNC_CATCH(t) {
        if (async_caught(t)->code == ASYNC_ECANCELED) printf("Task was cancelled\n");
        ASYNC_RERAISE(t);
    } ASYNC_END_TRY(t);
    ASYNC_END(t);
}

/* long_running_task() */
static async_task *long_running_task(long_running_task_frame *f) {
    ASYNC_FRAME_INIT(f, long_running_task_run);
    return &f->task;
}

typedef struct {
    async_task task;
    long_running_task_frame long_running; /* task */
    async_group tasks;
} main_frame;

static async_status main_run(async_task *t) {
    main_frame *f = (main_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_SPAWN(t, &f->tasks, long_running_task(&f->long_running));
    AWAIT_SLEEP(t, 1000);
    async_cancel(&f->long_running.task);
    ASYNC_TRY(t) {
        AWAIT(t, &f->long_running.task);
    } ASYNC_CATCH(t) {
        if (async_caught(t)->code != ASYNC_ECANCELED) ASYNC_RERAISE(t);
        printf("Caught task cancellation\n");
    } ASYNC_END_TRY(t);
    ASYNC_END(t);
}

int main(void) {
    static main_frame m;
    ASYNC_FRAME_INIT(&m, main_run);
    return async_main(&m.task) ? 1 : 0;
}
