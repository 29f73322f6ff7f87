/* Must not compile: the await's resume point would belong to the user's switch, not the coroutine's. */
#include "async.h"

ASYNC_DEF(chooser, int k;) {
    switch (f->k) {
    case 1:
        AWAIT_SLEEP(t, 10); /* ERROR HERE */
        break;
    default:
        break;
    }
} ASYNC_END_DEF

ASYNC_MAIN(chooser, 1)
