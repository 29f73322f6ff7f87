/* Must not compile: ASYNC_FINALLY and ASYNC_END_TRY without an ASYNC_TRY. */
#include "async.h"

ASYNC_DEF(lonely) {
    AWAIT_SLEEP(t, 10);
    ASYNC_FINALLY(t) { /* ERROR HERE */
        AWAIT_YIELD(t);
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

ASYNC_MAIN(lonely)
