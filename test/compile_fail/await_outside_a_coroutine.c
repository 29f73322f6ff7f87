/* Must not compile: an AWAIT in a function that is no coroutine. */
#include "async.h"

int plain(async_task *t);
int plain(async_task *t) {
    AWAIT_SLEEP(t, 10); /* ERROR HERE */
    return 0;
}
