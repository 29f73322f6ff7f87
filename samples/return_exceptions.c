/* Seed 001, slide 5: "Handling Exceptions in Asynchronous Code". With return_exceptions=True the gather
 * raises nothing: it waits for both (1 s side by side) and each child holds a value or an error. C has no
 * ZeroDivisionError: the coroutine raises its own error code where Python's division would. */
#include <stdio.h>

#include "async.h"

enum { ZERO_DIVISION_ERROR = ASYNC_EUSER };

ASYNC_DEF(risky_operation, int divisor; double result; char repr[64];) {
    AWAIT_SLEEP(t, 1000);
    if (f->divisor == 0) ASYNC_THROW(t, ZERO_DIVISION_ERROR, "division by zero");
    f->result = 10.0 / f->divisor;
} ASYNC_END_DEF

/* One element of the printed list, as Python's repr shows it: the value, or the exception. */
static const char *repr(risky_operation_frame *r) {
    const async_error *e = async_task_error(&r->task);
    if (!e) snprintf(r->repr, sizeof r->repr, "%.1f", r->result);
    else snprintf(r->repr, sizeof r->repr, "%s('%s')",
                  e->code == ZERO_DIVISION_ERROR ? "ZeroDivisionError" : "Exception", async_error_message(e));
    return r->repr;
}

ASYNC_DEF(main, risky_operation_frame a, b; async_group all;) {
    ASYNC_TRY(t) {
        AWAIT_GATHER_SETTLED(t, &f->all, ASYNC_CALL(risky_operation, &f->a, 2),
                             ASYNC_CALL(risky_operation, &f->b, 0));
        printf("Results: [%s, %s]\n", repr(&f->a), repr(&f->b));
    } ASYNC_EXCEPT_ANY(t) { /* except Exception: every error but a cancellation */
        printf("An error occurred: %s\n", async_error_message(async_caught(t)));
    } ASYNC_END_TRY(t);
} ASYNC_END_DEF

ASYNC_MAIN(main)
