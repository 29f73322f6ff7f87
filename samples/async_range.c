/* Seed 001, slide 8: "Asynchronous Generators".
 *
 *   async def async_range(start, stop):
 *       for i in range(start, stop):
 *           await asyncio.sleep(0.5)  # Simulate some async work
 *           yield i
 *
 *   async def main():
 *       async for num in async_range(1, 5):
 *           print(f"Generated: {num}")
 *
 * Generated: 1 to 4, half a second apart (2 s). The generator runs as a child of main: leaving the loop
 * early, or main ending, cancels it and runs its cleanup. */
#include <stdio.h>

#include "async.h"

typedef struct {
    async_task task;
    int i, stop;
} async_range_frame;

static async_status async_range_run(async_task *t) {
    async_range_frame *f = (async_range_frame *)t;
    ASYNC_BEGIN(t);
    for (; f->i < f->stop; f->i++) {
        AWAIT_SLEEP(t, 500); /* Simulate some async work */
        ASYNC_YIELD_VALUE(t, f->i);
    }
    ASYNC_END(t);
}

static async_task *async_range(async_range_frame *f, int start, int stop) {
    if (ASYNC_FRAME_INIT(f, async_range_run)) {
        f->i = start;
        f->stop = stop;
    }
    return &f->task;
}

typedef struct {
    async_task task;
    async_range_frame range;
    async_gen gen;
    intptr_t num;
} main_frame;

static async_status main_run(async_task *t) {
    main_frame *f = (main_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_FOR(t, &f->gen, async_range(&f->range, 1, 5), &f->num) {
        printf("Generated: %d\n", (int)f->num);
    }
    ASYNC_END(t);
}

int main(void) {
    static main_frame m;
    ASYNC_FRAME_INIT(&m, main_run);
    return async_main(&m.task) ? 1 : 0;
}
