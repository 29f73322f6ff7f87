/* Seed 004, "Basic Async Syntax": define an async function and run it. "Hello", a 2 s pause (the
 * simulated async task), "World". */
#include <stdio.h>

#include "async.h"

ASYNC_DEF(say_hello) {
    printf("Hello\n");
    AWAIT_SLEEP(t, 2000); /* Simulating async task */
    printf("World\n");
} ASYNC_END_DEF

ASYNC_MAIN(say_hello)
