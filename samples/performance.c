/* Seed 001, slide 13: "Performance Considerations and Best Practices". Ten 0.1 s sleeps gathered take
 * 0.10 s; one blocking 1 s call holds the whole loop for 1 s, and debug mode (on here) names it on
 * stderr. Run it in real time: a blocking call is invisible to the virtual clock. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <time.h>

#include "async.h"

ASYNC_DEF(fast_operation) {
    AWAIT_SLEEP(t, 100);
} ASYNC_END_DEF

ASYNC_DEF(slow_operation) {
    nanosleep(&(struct timespec){1, 0}, NULL); /* This blocks the event loop! */
} ASYNC_END_DEF

static double seconds_since(async_task *t, async_ms since) {
    return (double)(async_ms)(async_loop_time(async_task_loop(t)) - since) / 1000.0;
}

ASYNC_DEF(main, fast_operation_frame fast[10]; slow_operation_frame slow; async_group all; async_ms start, mid;) {
    async_loop_set_debug(async_task_loop(t), true);
    f->start = async_loop_time(async_task_loop(t));
    for (int i = 0; i < 10; i++) ASYNC_CALL(fast_operation, &f->fast[i]);
    AWAIT_GATHER_ARRAY(t, &f->all, &f->fast[0].task, 10, sizeof f->fast[0]); /* Good: concurrently */
    f->mid = async_loop_time(async_task_loop(t));
    printf("10 fast operations took %.2f seconds\n", seconds_since(t, f->start));
    AWAIT_CALL(t, slow_operation, &f->slow); /* Bad: blocks the event loop */
    printf("1 slow operation took %.2f seconds\n", seconds_since(t, f->mid));
} ASYNC_END_DEF

ASYNC_MAIN(main)
