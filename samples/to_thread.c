/* Seed 001, slide 9: "Combining Synchronous and Asynchronous Code".
 *
 *   def sync_operation(duration):
 *       time.sleep(duration)
 *       return f"Slept for {duration} seconds"
 *
 *   async def async_wrapper(duration):
 *       result = await asyncio.to_thread(sync_operation, duration)
 *       return result
 *
 *   async def main():
 *       results = await asyncio.gather(async_wrapper(2), async_wrapper(1), async_wrapper(3))
 *       print(results)
 *
 * Three blocking sleeps of 2, 1 and 3 s run on the loop's thread pool while the loop stays free: the
 * gather takes about 3 s, not 6, and the results come back in argument order. Thread work takes no
 * virtual time, so under ASYNC_CLOCK=virtual (the tests) a "second" of blocking is 10 ms of real sleep. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "async.h"

static long ms_per_second = 1000;

/* sync_operation(duration): a plain blocking C function; it runs on a pool thread */
static int sync_operation(void *arg, intptr_t *result) {
    int duration = (int)(intptr_t)arg;
    long ms = duration * ms_per_second;
    struct timespec ts = {ms / 1000, ms % 1000 * 1000000L};
    char *text = malloc(32);
    if (!text) return ASYNC_ENOMEM;
    nanosleep(&ts, NULL);
    snprintf(text, 32, "Slept for %d seconds", duration);
    *result = (intptr_t)text;
    return 0;
}

/* a result no one awaits any more (the awaiter was cancelled) is freed here */
static void free_text(intptr_t result, void *arg) {
    (void)arg;
    free((void *)result);
}

typedef struct {
    async_task task;
    int duration;
    async_thread_call call;
    char result[32];
} wrapper_frame;

static async_status async_wrapper_run(async_task *t) {
    wrapper_frame *f = (wrapper_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT_TO_THREAD(t, &f->call, sync_operation, (void *)(intptr_t)f->duration, free_text);
    snprintf(f->result, sizeof f->result, "%s", (char *)async_thread_result(&f->call));
    free((void *)async_thread_result(&f->call));
    ASYNC_END(t);
}

/* async_wrapper(duration) */
static async_task *async_wrapper(wrapper_frame *f, int duration) {
    if (ASYNC_FRAME_INIT(f, async_wrapper_run)) f->duration = duration;
    return &f->task;
}

typedef struct {
    async_task task;
    wrapper_frame a, b, c;
    async_group all;
} main_frame;

static async_status main_run(async_task *t) {
    main_frame *f = (main_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT_GATHER(t, &f->all, async_wrapper(&f->a, 2), async_wrapper(&f->b, 1), async_wrapper(&f->c, 3));
    printf("['%s', '%s', '%s']\n", f->a.result, f->b.result, f->c.result);
    ASYNC_END(t);
}

int main(void) {
    static main_frame m;
    const char *clock = getenv("ASYNC_CLOCK");
    if (clock && strcmp(clock, "virtual") == 0) ms_per_second = 10;
    ASYNC_FRAME_INIT(&m, main_run);
    return async_main(&m.task) ? 1 : 0;
}
