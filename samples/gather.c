/* Seed 001, slide 4: "Concurrent Execution with asyncio.gather()". Three tasks of 3, 2 and 1 s,
 * gathered: they start in argument order, finish shortest first, and the results come back in argument
 * order. The whole takes 3 s, not 6. */
#include <stdio.h>

#include "async.h"

ASYNC_DEF(task, const char *name; int duration; char result[32];) {
    printf("Task %s started\n", f->name);
    AWAIT_SLEEP(t, f->duration * 1000);
    printf("Task %s completed\n", f->name);
    snprintf(f->result, sizeof f->result, "Result of %s", f->name);
} ASYNC_END_DEF

ASYNC_DEF(main, task_frame a, b, c; async_group all;) {
    AWAIT_GATHER(t, &f->all, ASYNC_CALL(task, &f->a, "A", 3), ASYNC_CALL(task, &f->b, "B", 2),
                 ASYNC_CALL(task, &f->c, "C", 1));
    printf("['%s', '%s', '%s']\n", f->a.result, f->b.result, f->c.result);
} ASYNC_END_DEF

ASYNC_MAIN(main)
