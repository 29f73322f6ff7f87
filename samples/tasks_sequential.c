/* Seed 003, section 3.3: "Creating and Running Tasks". Both tasks start at once: "Task 1 completed"
 * after 1 s, "Task 2 completed" after 2 s, not 3. The tasks belong to a task group in main's frame. */
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

ASYNC_DEF(main, task1_frame task_1; task2_frame task_2; async_group tasks;) {
    ASYNC_SPAWN(t, &f->tasks, ASYNC_CALL(task1, &f->task_1));
    ASYNC_SPAWN(t, &f->tasks, ASYNC_CALL(task2, &f->task_2));
    AWAIT(t, &f->task_1.task);
    AWAIT(t, &f->task_2.task);
} ASYNC_END_DEF

ASYNC_MAIN(main)
