/* Seed 003, section 3.4: "Waiting for Multiple Tasks". The two tasks of section 3.3 (tasks_sequential.c)
 * gathered instead of created and awaited in turn: "Task 1 completed" at 1 s, "Task 2 completed" at 2 s. */
#include <stdio.h>

#include "async.h"

ASYNC_DEF(task1) {
    AWAIT_SLEEP(t, 1000);
    printf("Task 1 completed\n");
} ASYNC_END_DEF

ASYNC_DEF(task2) {
    AWAIT_SLEEP(t, 2000);
    printf("Task 2 completed\n");
} ASYNC_END_DEF

ASYNC_DEF(main, task1_frame task1; task2_frame task2; async_group all;) {
    AWAIT_GATHER(t, &f->all, ASYNC_CALL(task1, &f->task1), ASYNC_CALL(task2, &f->task2));
} ASYNC_END_DEF

ASYNC_MAIN(main)
