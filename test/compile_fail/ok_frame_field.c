/* Must compile: the coroutine of local_initialised.c with its state in the frame (the control case). */
#include <stdio.h>

#include "async.h"

ASYNC_DEF(counter, int count;) {
    f->count = 5;
    AWAIT_SLEEP(t, 10);
    printf("%d\n", f->count);
} ASYNC_END_DEF

ASYNC_MAIN(counter)
