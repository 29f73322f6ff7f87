/* Seed 003, section 5.1: "Exception Handling in Coroutines". The error raised in the awaited coroutine
 * comes out of the await in main, after 1 s. */
#include <stdio.h>

#include "async.h"

enum { VALUE_ERROR = ASYNC_EUSER };

ASYNC_DEF(faulty_coroutine) {
    AWAIT_SLEEP(t, 1000);
    ASYNC_THROW(t, VALUE_ERROR, "An error occurred!");
} ASYNC_END_DEF

ASYNC_DEF(main, faulty_coroutine_frame faulty;) {
    ASYNC_TRY(t) {
        AWAIT_CALL(t, faulty_coroutine, &f->faulty);
    } ASYNC_EXCEPT(t, VALUE_ERROR) {
        printf("Caught an exception: %s\n", async_caught(t)->message);
    } ASYNC_END_TRY(t);
} ASYNC_END_DEF

ASYNC_MAIN(main)
