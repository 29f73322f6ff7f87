/* Seed 001, slide 5: "Handling Exceptions in Asynchronous Code".
 *
 *   async def risky_operation(divisor):
 *       await asyncio.sleep(1)
 *       return 10 / divisor
 *
 *   async def main():
 *       try:
 *           result = await asyncio.gather(
 *               risky_operation(2),
 *               risky_operation(0),
 *               return_exceptions=True
 *           )
 *           print(f"Results: {result}")
 *       except Exception as e:
 *           print(f"An error occurred: {e}")
 *
 * With return_exceptions=True the gather raises nothing: it waits for both, and each child holds a
 * value or an error. Both take 1 s side by side. C has no ZeroDivisionError, so the sample raises its
 * own error code where Python's division would. */
#include <stdio.h>

#include "async.h"

enum { ZERO_DIVISION_ERROR = ASYNC_EUSER };

typedef struct {
    async_task task;
    int divisor;
    double result;
} risky_operation_frame;

static async_status risky_operation_run(async_task *t) {
    risky_operation_frame *f = (risky_operation_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT_SLEEP(t, 1000);
    if (f->divisor == 0) ASYNC_THROW(t, ZERO_DIVISION_ERROR, "division by zero");
    f->result = 10.0 / f->divisor;
    ASYNC_END(t);
}

/* risky_operation(divisor) */
static async_task *risky_operation(risky_operation_frame *f, int divisor) {
    if (ASYNC_FRAME_INIT(f, risky_operation_run)) f->divisor = divisor;
    return &f->task;
}

/* One element of the printed list, as Python's repr shows it: the value, or the exception. */
static void print_result(risky_operation_frame *r) {
    const async_error *e = async_task_error(&r->task);
    if (!e)
        printf("%.1f", r->result);
    else
        printf("%s('%s')", e->code == ZERO_DIVISION_ERROR ? "ZeroDivisionError" : "Exception",
               async_error_message(e));
}

typedef struct {
    async_task task;
    risky_operation_frame a, b;
    async_group all;
} main_frame;

static async_status main_run(async_task *t) {
    main_frame *f = (main_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_TRY(t) {
        AWAIT_GATHER_SETTLED(t, &f->all, risky_operation(&f->a, 2), risky_operation(&f->b, 0));
        printf("Results: [");
        print_result(&f->a);
        printf(", ");
        print_result(&f->b);
        printf("]\n");
    } ASYNC_CATCH(t) {
        if (async_caught(t)->code == ASYNC_ECANCELED) ASYNC_RERAISE(t); /* not an Exception */
        printf("An error occurred: %s\n", async_error_message(async_caught(t)));
    } ASYNC_END_TRY(t);
    ASYNC_END(t);
}

int main(void) {
    static main_frame m;
    ASYNC_FRAME_INIT(&m, main_run);
    return async_main(&m.task) ? 1 : 0;
}
