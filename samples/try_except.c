/* Seed 004, "Async Exception Handling": handle an exception in an async function like a normal
 * try-except block. The ValueError raised after a 1 s sleep is caught where it is raised. */
#include <stdio.h>

#include "async.h"

enum { VALUE_ERROR = ASYNC_EUSER };

ASYNC_DEF(risky_task) {
    ASYNC_TRY(t) {
        AWAIT_SLEEP(t, 1000);
        ASYNC_THROW(t, VALUE_ERROR, "Something went wrong!");
    } ASYNC_EXCEPT(t, VALUE_ERROR) {
        printf("Caught an error: %s\n", async_caught(t)->message);
    } ASYNC_END_TRY(t);
} ASYNC_END_DEF

ASYNC_MAIN(risky_task)
