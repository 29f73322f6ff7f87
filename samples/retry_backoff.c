/* Seed 002, "Strategies for Error Recovery": retry logic with exponential backoff, and logging. Each
 * attempt of the flaky operation has a 1 s deadline (asyncio.wait_for) and a failure waits 0.5 s, then
 * 1 s, ... before the next: two failures, then success, in 0.2 + 0.5 + 0.2 + 1.0 + 0.2 = 2.1 s. */
#include <stdio.h>

#include "async.h"

enum { CONNECTION_ERROR = ASYNC_EUSER + 1, RUNTIME_ERROR };

ASYNC_DEF(flaky_operation, int attempt;) {
    AWAIT_SLEEP(t, 200);
    if (f->attempt < 3) ASYNC_THROW(t, CONNECTION_ERROR, "service unavailable");
    ASYNC_RETURN(t, "OK");
} ASYNC_END_DEF

ASYNC_DEF(with_retries, int max_attempts, base_delay_ms; int attempt, delay_ms; flaky_operation_frame op;
          async_timeout deadline;) {
    for (f->attempt = 1; f->attempt <= f->max_attempts; f->attempt++) {
        ASYNC_TRY(t) {
            AWAIT_TIMEOUT(t, &f->deadline, 1000, ASYNC_CALL(flaky_operation, &f->op, f->attempt));
            ASYNC_RETURN(t, async_task_value(&f->op.task));
        } ASYNC_EXCEPT(t, CONNECTION_ERROR, ASYNC_ETIMEDOUT) {
            f->delay_ms = f->base_delay_ms << (f->attempt - 1);
            printf("Attempt %d failed: %s; retrying in %.1f s\n", f->attempt, async_error_message(async_caught(t)),
                   f->delay_ms / 1000.0);
        } ASYNC_END_TRY(t);
        AWAIT_SLEEP(t, f->delay_ms);
    }
    ASYNC_THROW(t, RUNTIME_ERROR, "giving up");
} ASYNC_END_DEF

ASYNC_DEF(main, with_retries_frame retry;) {
    AWAIT_CALL(t, with_retries, &f->retry, 5, 500);
    printf("Result: %s\n", (const char *)async_task_value(&f->retry.task));
} ASYNC_END_DEF

ASYNC_MAIN(main)
