/* Seed 001, slide 6: "Asynchronous Context Managers".
 *
 *   class AsyncResource:
 *       async def __aenter__(self):
 *           print("Acquiring resource")
 *           await asyncio.sleep(1)
 *           return self
 *       async def __aexit__(self, exc_type, exc, tb):
 *           print("Releasing resource")
 *           await asyncio.sleep(1)
 *       async def use_resource(self):
 *           print("Using resource")
 *           await asyncio.sleep(1)
 *
 *   async def main():
 *       async with AsyncResource() as resource:
 *           await resource.use_resource()
 *
 * Acquire, use and release, a second each: 3 s. The exit part runs however the body ends (an error or
 * a cancellation included), and it may itself await. */
#include <stdio.h>

#include "async.h"

/* One small coroutine per method; the resource holds their frames. */
typedef struct {
    async_task task;
} method_frame;

typedef struct {
    method_frame aenter, use, aexit;
} async_resource;

static async_status aenter_run(async_task *t) {
    ASYNC_BEGIN(t);
    printf("Acquiring resource\n");
    AWAIT_SLEEP(t, 1000);
    ASYNC_END(t);
}

static async_status aexit_run(async_task *t) {
    ASYNC_BEGIN(t);
    printf("Releasing resource\n");
    AWAIT_SLEEP(t, 1000);
    ASYNC_END(t);
}

static async_status use_resource_run(async_task *t) {
    ASYNC_BEGIN(t);
    printf("Using resource\n");
    AWAIT_SLEEP(t, 1000);
    ASYNC_END(t);
}

static async_task *method(method_frame *f, async_fn fn) {
    ASYNC_FRAME_INIT(f, fn);
    return &f->task;
}

typedef struct {
    async_task task;
    async_resource resource;
} main_frame;

static async_status main_run(async_task *t) {
    main_frame *f = (main_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT(t, method(&f->resource.aenter, aenter_run));
    ASYNC_WITH(t) {
        AWAIT(t, method(&f->resource.use, use_resource_run));
    }
    ASYNC_WITH_EXIT(t) {
        AWAIT(t, method(&f->resource.aexit, aexit_run));
    }
    ASYNC_END_WITH(t);
    ASYNC_END(t);
}

int main(void) {
    static main_frame m;
    ASYNC_FRAME_INIT(&m, main_run);
    return async_main(&m.task) ? 1 : 0;
}
