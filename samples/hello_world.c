/* Seed 000, section 4: "Defining Coroutines" (seed 003's say_hello is the same coroutine). One
 * coroutine: "Hello", a 1 s pause, "World". */
#include <stdio.h>

#include "async.h"

ASYNC_DEF(hello_world) {
    printf("Hello\n");
    AWAIT_SLEEP(t, 1000);
    printf("World\n");
} ASYNC_END_DEF

ASYNC_MAIN(hello_world)
