/* Seed 000, section 8: "Using asyncio.gather()". The two run side by side: the list is printed after
 * 2 s, not 3, with the results in argument order. */
#include <stdio.h>

#include "async.h"

ASYNC_DEF(task1, const char *result;) {
    AWAIT_SLEEP(t, 1000);
    f->result = "Task 1 complete";
} ASYNC_END_DEF

ASYNC_DEF(task2, const char *result;) {
    AWAIT_SLEEP(t, 2000);
    f->result = "Task 2 complete";
} ASYNC_END_DEF

ASYNC_DEF(main, task1_frame task1; task2_frame task2; async_group all;) {
    AWAIT_GATHER(t, &f->all, ASYNC_CALL(task1, &f->task1), ASYNC_CALL(task2, &f->task2));
    printf("['%s', '%s']\n", f->task1.result, f->task2.result);
} ASYNC_END_DEF

ASYNC_MAIN(main)
