/* Must not compile: `count` is an automatic local initialised before an await and read after it. The
 * resume jumps over its initialisation, so after the await it would hold garbage: keep it in the frame. */
#include <stdio.h>

#include "async.h"

ASYNC_DEF(counter) {
    int count = 5;
    AWAIT_SLEEP(t, 10);
    printf("%d\n", count); /* ERROR HERE */
} ASYNC_END_DEF

ASYNC_MAIN(counter)
