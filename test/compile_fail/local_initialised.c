/* Must not compile: `count` is an automatic local initialised before an await and read after it. The
 * resume jumps over its initialisation, so after the await it holds garbage. Keep it in the frame. */
#include <stdio.h>

#include "async.h"

async_status counter(async_task *t);
async_status counter(async_task *t) {
    ASYNC_BEGIN(t);
    int count = 5;
    AWAIT_SLEEP(t, 10);
    printf("%d\n", count);
    ASYNC_END(t);
}
