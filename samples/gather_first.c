/* Seed 004, "Creating and Running Multiple Async Tasks".
 *
 *   async def task1():
 *       await asyncio.sleep(2)
 *       print("Task 1 completed")
 *
 *   async def task2():
 *       await asyncio.sleep(1)
 *       print("Task 2 completed")
 *
 *   async def main():
 *       await asyncio.gather(task1(), task2())
 *
 * Task 2 finishes first because it sleeps for 1 s while task 1 sleeps for 2; the whole takes 2 s. */
#include <stdio.h>

#include "async.h"

typedef struct {
    async_task task;
} task1_frame;

static async_status task1_run(async_task *t) {
    ASYNC_BEGIN(t);
    AWAIT_SLEEP(t, 2000);
    printf("Task 1 completed\n");
    ASYNC_END(t);
}

/* task1() */
static async_task *task1(task1_frame *f) {
    ASYNC_FRAME_INIT(f, task1_run);
    return &f->task;
}

typedef struct {
    async_task task;
} task2_frame;

static async_status task2_run(async_task *t) {
    ASYNC_BEGIN(t);
    AWAIT_SLEEP(t, 1000);
    printf("Task 2 completed\n");
    ASYNC_END(t);
}

/* task2() */
static async_task *task2(task2_frame *f) {
    ASYNC_FRAME_INIT(f, task2_run);
    return &f->task;
}

typedef struct {
    async_task task;
    task1_frame task1;
    task2_frame task2;
    async_group all;
} main_frame;

static async_status main_run(async_task *t) {
    main_frame *f = (main_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT_GATHER(t, &f->all, task1(&f->task1), task2(&f->task2));
    ASYNC_END(t);
}

int main(void) {
    static main_frame m;
    ASYNC_FRAME_INIT(&m, main_run);
    return async_main(&m.task) ? 1 : 0;
}
