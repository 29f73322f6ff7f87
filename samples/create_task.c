/* Seed 000, section 5: "Running Multiple Tasks".
 *
 *   async def greet(name):
 *       await asyncio.sleep(1)
 *       print(f"Hello, {name}!")
 *
 *   async def main():
 *       task1 = asyncio.create_task(greet("Alice"))
 *       task2 = asyncio.create_task(greet("Bob"))
 *       await task1
 *       await task2
 *
 * Both tasks start at once, so both greetings come after 1 s, not 2. The tasks belong to a task group
 * in main's frame: main cannot end while one of them still runs. */
#include <stdio.h>

#include "async.h"

typedef struct {
    async_task task;
    const char *name;
} greet_frame;

static async_status greet_run(async_task *t) {
    greet_frame *f = (greet_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT_SLEEP(t, 1000);
    printf("Hello, %s!\n", f->name);
    ASYNC_END(t);
}

/* greet(name) */
static async_task *greet(greet_frame *f, const char *name) {
    if (ASYNC_FRAME_INIT(f, greet_run)) f->name = name;
    return &f->task;
}

typedef struct {
    async_task task;
    greet_frame task1, task2;
    async_group tasks;
} main_frame;

static async_status main_run(async_task *t) {
    main_frame *f = (main_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_SPAWN(t, &f->tasks, greet(&f->task1, "Alice"));
    ASYNC_SPAWN(t, &f->tasks, greet(&f->task2, "Bob"));
    AWAIT(t, &f->task1.task);
    AWAIT(t, &f->task2.task);
    ASYNC_END(t);
}

int main(void) {
    static main_frame m;
    ASYNC_FRAME_INIT(&m, main_run);
    return async_main(&m.task) ? 1 : 0;
}
