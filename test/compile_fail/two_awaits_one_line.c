/* Must not compile: two awaits on one line would share a resume point. */
#include "async.h"

ASYNC_DEF(twice) {
    AWAIT_SLEEP(t, 10); AWAIT_SLEEP(t, 20); /* ERROR HERE */
} ASYNC_END_DEF

ASYNC_MAIN(twice)
