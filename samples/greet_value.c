/* Seed 001, slide 1: "Unlocking Efficiency with Asynchronous Programming in Python". Awaiting a
 * coroutine runs it inline, as a call; its result stays in its frame, which lives inside main's. */
#include <stdio.h>

#include "async.h"

ASYNC_DEF(greet, const char *name; char result[32];) {
    AWAIT_SLEEP(t, 1000); /* Simulating an I/O operation */
    snprintf(f->result, sizeof f->result, "Hello, %s!", f->name);
} ASYNC_END_DEF

ASYNC_DEF(main, greet_frame greet;) {
    AWAIT_CALL(t, greet, &f->greet, "Alice");
    printf("%s\n", f->greet.result);
} ASYNC_END_DEF

ASYNC_MAIN(main)
