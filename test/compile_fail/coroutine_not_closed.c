/* Must not compile: the first coroutine lacks its ASYNC_END_DEF. */
#include "async.h"

ASYNC_DEF(first) {
    AWAIT_SLEEP(t, 10);
}

ASYNC_DEF(second) { /* ERROR HERE */
    AWAIT_SLEEP(t, 10);
} ASYNC_END_DEF

ASYNC_MAIN(second)
