/* Seed 000, section 8: "Using asyncio.gather()".
 *
 *   async def task1():
 *       await asyncio.sleep(1)
 *       return "Task 1 complete"
 *
 *   async def task2():
 *       await asyncio.sleep(2)
 *       return "Task 2 complete"
 *
 *   async def main():
 *       results = await asyncio.gather(task1(), task2())
 *       print(results)
 *
 * The two run side by side: the list is printed after 2 s, not 3, with the results in argument order. */
#include <stdio.h>

#include "async.h"

typedef struct {
    async_task task;
    const char *result;
} task1_frame;

static async_status task1_run(async_task *t) {
    task1_frame *f = (task1_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT_SLEEP(t, 1000);
    f->result = "Task 1 complete";
    ASYNC_END(t);
}

/* task1() */
static async_task *task1(task1_frame *f) {
    ASYNC_FRAME_INIT(f, task1_run);
    return &f->task;
}

typedef struct {
    async_task task;
    const char *result;
} task2_frame;

static async_status task2_run(async_task *t) {
    task2_frame *f = (task2_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT_SLEEP(t, 2000);
    f->result = "Task 2 complete";
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
    printf("['%s', '%s']\n", f->task1.result, f->task2.result);
    ASYNC_END(t);
}

int main(void) {
    static main_frame m;
    ASYNC_FRAME_INIT(&m, main_run);
    return async_main(&m.task) ? 1 : 0;
}
