/* Seed 003, section 3.3: "Creating and Running Tasks".
 *
 *   async def task1():
 *       await asyncio.sleep(1)
 *       print("Task 1 completed")
 *
 *   async def task2():
 *       await asyncio.sleep(2)
 *       print("Task 2 completed")
 *
 *   async def main():
 *       task_1 = asyncio.create_task(task1())
 *       task_2 = asyncio.create_task(task2())
 *       await task_1
 *       await task_2
 *
 * Both tasks start at once: "Task 1 completed" after 1 s, "Task 2 completed" after 2 s, not 3. The
 * tasks belong to a task group in main's frame. */
#include <stdio.h>

#include "async.h"

typedef struct {
    async_task task;
} task1_frame;

static async_status task1_run(async_task *t) {
    ASYNC_BEGIN(t);
    AWAIT_SLEEP(t, 1000);
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
    AWAIT_SLEEP(t, 2000);
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
    task1_frame task_1;
    task2_frame task_2;
    async_group tasks;
} main_frame;

static async_status main_run(async_task *t) {
    main_frame *f = (main_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_SPAWN(t, &f->tasks, task1(&f->task_1));
    ASYNC_SPAWN(t, &f->tasks, task2(&f->task_2));
    AWAIT(t, &f->task_1.task);
    AWAIT(t, &f->task_2.task);
    ASYNC_END(t);
}

int main(void) {
    static main_frame m;
    ASYNC_FRAME_INIT(&m, main_run);
    return async_main(&m.task) ? 1 : 0;
}
