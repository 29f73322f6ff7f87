/* Seed 001, slide 2: "Understanding Coroutines". 5 4 3 2 1, a second apart, then "Countdown finished!"
 * at 5 s. n lives across the await, so it is a field of the frame. */
#include <stdio.h>

#include "async.h"

ASYNC_DEF(countdown, int n;) {
    while (f->n > 0) {
        printf("%d\n", f->n);
        AWAIT_SLEEP(t, 1000); /* Simulate a time-consuming task */
        f->n -= 1;
    }
    printf("Countdown finished!\n");
} ASYNC_END_DEF

ASYNC_MAIN(countdown, 5)
