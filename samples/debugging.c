/* Seed 001, slide 12: "Debugging Asynchronous Code". The same error caught from an awaited coroutine and
 * from a task. Debug mode (here switched on midway; ASYNC_DEBUG=1 for any program) reports a step that
 * blocks the loop with its file:line, and async_loop_dump (or SIGQUIT) prints every live task's await chain. */
#include <stdio.h>

#include "async.h"

enum { VALUE_ERROR = ASYNC_EUSER + 1 };

ASYNC_DEF(problematic_coroutine) {
    AWAIT_SLEEP(t, 1000);
    ASYNC_THROW(t, VALUE_ERROR, "Oops!");
} ASYNC_END_DEF

ASYNC_DEF(main, problematic_coroutine_frame first, second;) {
    ASYNC_TRY(t) {
        AWAIT_CALL(t, problematic_coroutine, &f->first);
    } ASYNC_EXCEPT(t, VALUE_ERROR) {
        printf("Caught an error: %s\n", async_caught(t)->message);
    } ASYNC_END_TRY(t);

    async_loop_set_debug(async_task_loop(t), true); /* Enable debug mode */

    async_spawn(async_task_loop(t), ASYNC_CALL(problematic_coroutine, &f->second));
    ASYNC_TRY(t) {
        AWAIT(t, &f->second.task);
    } ASYNC_EXCEPT(t, VALUE_ERROR) {
        printf("Task failed, but we caught it!\n");
    } ASYNC_END_TRY(t);
} ASYNC_END_DEF

ASYNC_MAIN(main)
