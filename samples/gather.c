/* Seed 001, slide 4: "Concurrent Execution with asyncio.gather()".
 *
 *   async def task(name, duration):
 *       print(f"Task {name} started")
 *       await asyncio.sleep(duration)
 *       print(f"Task {name} completed")
 *       return f"Result of {name}"
 *
 *   async def main():
 *       results = await asyncio.gather(task("A", 3), task("B", 2), task("C", 1))
 *       print(results)
 *
 * Three tasks of 3, 2 and 1 s, gathered: they start in argument order, finish shortest first, and the
 * results come back in argument order. The whole takes 3 s, not 6. */
#include <stdio.h>

#include "async.h"

typedef struct {
    async_task task;
    const char *name;
    int seconds;
    char result[32];
} task_frame;

static async_status task_run(async_task *t) {
    task_frame *f = (task_frame *)t;
    ASYNC_BEGIN(t);
    printf("Task %s started\n", f->name);
    AWAIT_SLEEP(t, f->seconds * 1000);
    printf("Task %s completed\n", f->name);
    snprintf(f->result, sizeof f->result, "Result of %s", f->name);
    ASYNC_END(t);
}

/* task(name, duration): the coroutine's arguments go into its frame */
static async_task *task(task_frame *f, const char *name, int seconds) {
    if (ASYNC_FRAME_INIT(f, task_run)) {
        f->name = name;
        f->seconds = seconds;
    }
    return &f->task;
}

typedef struct {
    async_task task;
    task_frame a, b, c;
    async_group all;
} main_frame;

static async_status main_run(async_task *t) {
    main_frame *f = (main_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT_GATHER(t, &f->all, task(&f->a, "A", 3), task(&f->b, "B", 2), task(&f->c, "C", 1));
    printf("['%s', '%s', '%s']\n", f->a.result, f->b.result, f->c.result);
    ASYNC_END(t);
}

int main(void) {
    static main_frame m;
    ASYNC_FRAME_INIT(&m, main_run);
    return async_main(&m.task) ? 1 : 0;
}
