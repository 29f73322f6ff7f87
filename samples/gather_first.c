/* Seed 004, "Creating and Running Multiple Async Tasks". Task 2 finishes first because it sleeps for 1 s
 * while task 1 sleeps for 2; the whole takes 2 s. */
#include <stdio.h>

#include "async.h"

ASYNC_DEF(task1) {
    AWAIT_SLEEP(t, 2000);
    printf("Task 1 completed\n");
} ASYNC_END_DEF

ASYNC_DEF(task2) {
    AWAIT_SLEEP(t, 1000);
    printf("Task 2 completed\n");
} ASYNC_END_DEF

ASYNC_DEF(main, task1_frame task1; task2_frame task2; async_group all;) {
    AWAIT_GATHER(t, &f->all, ASYNC_CALL(task1, &f->task1), ASYNC_CALL(task2, &f->task2));
} ASYNC_END_DEF

ASYNC_MAIN(main)
