/* Seed 001, slide 1: "Unlocking Efficiency with Asynchronous Programming in Python".
 *
 *   async def greet(name):
 *       await asyncio.sleep(1)  # Simulating an I/O operation
 *       return f"Hello, {name}!"
 *
 *   async def main():
 *       result = await greet("Alice")
 *       print(result)
 *
 * Awaiting a coroutine runs it inline, as a call; its result stays in its frame, inside main's. */
#include <stdio.h>

#include "async.h"

typedef struct {
    async_task task;
    const char *name;
    char result[32];
} greet_frame;

static async_status greet_run(async_task *t) {
    greet_frame *f = (greet_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT_SLEEP(t, 1000);
    snprintf(f->result, sizeof f->result, "Hello, %s!", f->name);
    ASYNC_END(t);
}

/* greet(name) */
static async_task *greet(greet_frame *f, const char *name) {
    if (ASYNC_FRAME_INIT(f, greet_run)) f->name = name;
    return &f->task;
}

typedef struct {
    async_task task;
    greet_frame greet;
} main_frame;

static async_status main_run(async_task *t) {
    main_frame *f = (main_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT(t, greet(&f->greet, "Alice"));
    printf("%s\n", f->greet.result);
    ASYNC_END(t);
}

int main(void) {
    static main_frame m;
    ASYNC_FRAME_INIT(&m, main_run);
    return async_main(&m.task) ? 1 : 0;
}
