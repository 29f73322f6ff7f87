/* Must not compile: two awaits on one line would share a resume point. */
#include "async.h"

async_status twice(async_task *t);
async_status twice(async_task *t) {
    ASYNC_BEGIN(t);
    AWAIT_SLEEP(t, 10); AWAIT_SLEEP(t, 20);
    ASYNC_END(t);
}
