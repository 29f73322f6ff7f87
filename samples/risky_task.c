/* Seed 000, section 7: "Error Handling in Asynchronous Code". The error raised after the await is
 * caught in the same coroutine; the except clause takes ValueError only, anything else goes on outwards. */
#include <stdio.h>

#include "async.h"

enum { VALUE_ERROR = ASYNC_EUSER };

ASYNC_DEF(risky_task) {
    ASYNC_TRY(t) {
        AWAIT_SLEEP(t, 1000); /* Simulate a task that may fail */
        ASYNC_THROW(t, VALUE_ERROR, "An error occurred!");
    } ASYNC_EXCEPT(t, VALUE_ERROR) {
        printf("Caught an error: %s\n", async_caught(t)->message);
    } ASYNC_END_TRY(t);
} ASYNC_END_DEF

ASYNC_MAIN(risky_task)
