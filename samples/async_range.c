/* Seed 001, slide 8: "Asynchronous Generators". Generated: 1 to 4, half a second apart (2 s). The
 * generator runs as a child of main: leaving the loop early, or main ending, cancels it and runs its
 * cleanup. */
#include <stdio.h>

#include "async.h"

ASYNC_DEF(async_range, int start, stop; int i;) {
    for (f->i = f->start; f->i < f->stop; f->i++) {
        AWAIT_SLEEP(t, 500); /* Simulate some async work */
        AWAIT_YIELD_VALUE(t, f->i);
    }
} ASYNC_END_DEF

ASYNC_DEF(main, async_range_frame range; async_gen gen; intptr_t num;) {
    AWAIT_FOR(t, &f->gen, ASYNC_CALL(async_range, &f->range, 1, 5), &f->num) {
        printf("Generated: %d\n", (int)f->num);
    }
} ASYNC_END_DEF

ASYNC_MAIN(main)
