/* Seed 001, slide 9: "Combining Synchronous and Asynchronous Code". Three blocking sleeps of 2, 1 and 3 s
 * run on the loop's thread pool while the loop stays free: about 3 s in all, not 6, the results in
 * argument order. Under ASYNC_CLOCK=virtual (the tests) a "second" of blocking is 10 ms of real sleep. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "async.h"

static long ms_per_second = 1000;

/* sync_operation(duration): a plain blocking C function, run on a pool thread; its result is malloc'd */
static int sync_operation(void *arg, intptr_t *result) {
    int duration = (int)(intptr_t)arg;
    long ms = duration * ms_per_second;
    char *text = malloc(32);
    if (!text) return ASYNC_ENOMEM;
    nanosleep(&(struct timespec){ms / 1000, ms % 1000 * 1000000L}, NULL); /* time.sleep(duration) */
    snprintf(text, 32, "Slept for %d seconds", duration);
    *result = (intptr_t)text;
    return 0;
}

/* frees a result no one awaits any more (its awaiter was cancelled) */
static void free_text(intptr_t result, void *arg) {
    (void)arg;
    free((void *)result);
}

ASYNC_DEF(async_wrapper, int duration; async_thread_call call; char result[32];) {
    AWAIT_TO_THREAD(t, &f->call, sync_operation, (void *)(intptr_t)f->duration, free_text);
    snprintf(f->result, sizeof f->result, "%s", (char *)async_thread_call_result(&f->call));
    free((void *)async_thread_call_result(&f->call));
} ASYNC_END_DEF

ASYNC_DEF(main, async_wrapper_frame a, b, c; async_group all;) {
    AWAIT_GATHER(t, &f->all, ASYNC_CALL(async_wrapper, &f->a, 2), ASYNC_CALL(async_wrapper, &f->b, 1),
                 ASYNC_CALL(async_wrapper, &f->c, 3));
    printf("['%s', '%s', '%s']\n", f->a.result, f->b.result, f->c.result);
} ASYNC_END_DEF

int main(void) {
    static main_frame m;
    const char *clock = getenv("ASYNC_CLOCK");
    if (clock && strcmp(clock, "virtual") == 0) ms_per_second = 10;
    return async_main(ASYNC_CALL(main, &m)) ? 1 : 0;
}
