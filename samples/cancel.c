/* Seed 003, section 5.2: "Cancelling Tasks". The cancellation interrupts the 10 s sleep after 1 s: the
 * task sees it at its await, re-raises it, and main sees it again at `await task`. 1 s in all. */
#include <stdio.h>

#include "async.h"

ASYNC_DEF(long_running_task) {
    ASYNC_TRY(t) {
        AWAIT_SLEEP(t, 10000);
    } ASYNC_EXCEPT(t, ASYNC_ECANCELED) {
        printf("Task was cancelled\n");
        ASYNC_RERAISE(t);
    } ASYNC_END_TRY(t);
} ASYNC_END_DEF

ASYNC_DEF(main, long_running_task_frame long_task; async_group tasks;) {
    ASYNC_SPAWN(t, &f->tasks, ASYNC_CALL(long_running_task, &f->long_task));
    AWAIT_SLEEP(t, 1000);
    async_cancel(&f->long_task.task);
    ASYNC_TRY(t) {
        AWAIT(t, &f->long_task.task);
    } ASYNC_EXCEPT(t, ASYNC_ECANCELED) {
        printf("Caught task cancellation\n");
    } ASYNC_END_TRY(t);
} ASYNC_END_DEF

ASYNC_MAIN(main)
