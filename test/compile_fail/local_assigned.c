/* Must not compile: `count` is assigned before an await and read after it; the resume path reaches the
 * read without the assignment. The three-piece form underneath ASYNC_DEF is checked the same way. */
#include <stdio.h>

#include "async.h"

async_status counter(async_task *t);
async_status counter(async_task *t) {
    int count;
    ASYNC_BEGIN(t);
    count = 5;
    AWAIT_SLEEP(t, 10);
    printf("%d\n", count); /* ERROR HERE */
    ASYNC_END(t);
}
