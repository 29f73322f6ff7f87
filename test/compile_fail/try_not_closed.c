/* Must not compile: an ASYNC_TRY left open. */
#include "async.h"

ASYNC_DEF(leaky) {
    ASYNC_TRY(t) {
        AWAIT_SLEEP(t, 10);
    }
    ASYNC_FINALLY(t) {
        AWAIT_YIELD(t);
    }
} ASYNC_END_DEF /* ERROR HERE */

ASYNC_MAIN(leaky)
