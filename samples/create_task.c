/* Seed 000, section 5: "Running Multiple Tasks". Both tasks start at once, so both greetings come after
 * 1 s, not 2. The tasks belong to a task group in main's frame: main cannot end while one still runs. */
#include <stdio.h>

#include "async.h"

ASYNC_DEF(greet, const char *name;) {
    AWAIT_SLEEP(t, 1000);
    printf("Hello, %s!\n", f->name);
} ASYNC_END_DEF

ASYNC_DEF(main, greet_frame task1, task2; async_group tasks;) {
    ASYNC_SPAWN(t, &f->tasks, ASYNC_CALL(greet, &f->task1, "Alice"));
    ASYNC_SPAWN(t, &f->tasks, ASYNC_CALL(greet, &f->task2, "Bob"));
    AWAIT(t, &f->task1.task);
    AWAIT(t, &f->task2.task);
} ASYNC_END_DEF

ASYNC_MAIN(main)
