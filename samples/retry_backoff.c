/* Seed 002, "Strategies for Error Recovery": retry logic with exponential backoff, and logging.
 *
 *   async def flaky_operation(attempt):
 *       await asyncio.sleep(0.2)
 *       if attempt < 3:
 *           raise ConnectionError("service unavailable")
 *       return "OK"
 *
 *   async def with_retries(max_attempts=5, base_delay=0.5):
 *       for attempt in range(1, max_attempts + 1):
 *           try:
 *               return await asyncio.wait_for(flaky_operation(attempt), timeout=1.0)
 *           except (ConnectionError, asyncio.TimeoutError) as e:
 *               delay = base_delay * 2 ** (attempt - 1)
 *               print(f"Attempt {attempt} failed: {e}; retrying in {delay:.1f} s")
 *               await asyncio.sleep(delay)
 *       raise RuntimeError("giving up")
 *
 *   async def main():
 *       print(f"Result: {await with_retries()}")
 *
 * Two failures, waits of 0.5 s and 1 s, then success: 0.2 + 0.5 + 0.2 + 1.0 + 0.2 = 2.1 s. Each
 * attempt also has a deadline, so a hung service counts as a failure too. */
#include <stdio.h>

#include "async.h"

#define CONNECTION_ERROR (ASYNC_EUSER + 1)
#define GIVING_UP (ASYNC_EUSER + 2)

typedef struct {
    async_task task;
    int attempt;
} flaky_frame;

static async_status flaky_operation_run(async_task *t) {
    flaky_frame *f = (flaky_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT_SLEEP(t, 200);
    if (f->attempt < 3) ASYNC_THROW(t, CONNECTION_ERROR, "service unavailable");
    ASYNC_RETURN(t, "OK");
    ASYNC_END(t);
}

static async_task *flaky_operation(flaky_frame *f, int attempt) {
    if (ASYNC_FRAME_INIT(f, flaky_operation_run)) f->attempt = attempt;
    return &f->task;
}

typedef struct {
    async_task task;
    int attempt, max_attempts, base_delay_ms, delay_ms;
    flaky_frame op;
    async_timeout deadline;
} retry_frame;

static async_status with_retries_run(async_task *t) {
    retry_frame *f = (retry_frame *)t;
    ASYNC_BEGIN(t);
    for (f->attempt = 1; f->attempt <= f->max_attempts; f->attempt++) {
        ASYNC_TRY(t) {
            AWAIT_TIMEOUT(t, &f->deadline, 1000, flaky_operation(&f->op, f->attempt));
            ASYNC_RETURN(t, async_task_value(&f->op.task));
        }
        ASYNC_CATCH(t) {
            int code = async_caught(t)->code;
            if (code != CONNECTION_ERROR && code != ASYNC_ETIMEDOUT) ASYNC_RERAISE(t);
            f->delay_ms = f->base_delay_ms << (f->attempt - 1);
            printf("Attempt %d failed: %s; retrying in %.1f s\n", f->attempt, async_error_message(async_caught(t)),
                   f->delay_ms / 1000.0);
        }
        ASYNC_END_TRY(t);
        AWAIT_SLEEP(t, f->delay_ms);
    }
    ASYNC_THROW(t, GIVING_UP, "giving up");
    ASYNC_END(t);
}

static async_task *with_retries(retry_frame *f, int max_attempts, int base_delay_ms) {
    if (ASYNC_FRAME_INIT(f, with_retries_run)) {
        f->max_attempts = max_attempts;
        f->base_delay_ms = base_delay_ms;
    }
    return &f->task;
}

typedef struct {
    async_task task;
    retry_frame retry;
} main_frame;

static async_status main_run(async_task *t) {
    main_frame *f = (main_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT(t, with_retries(&f->retry, 5, 500));
    printf("Result: %s\n", (const char *)async_task_value(&f->retry.task));
    ASYNC_END(t);
}

int main(void) {
    static main_frame m;
    ASYNC_FRAME_INIT(&m, main_run);
    return async_main(&m.task) ? 1 : 0;
}
