/* A deliberately hung image: main awaits an async_interrupt that no ISR raises, so the board sleeps in WFI
 * for ever. `make test-firmware` requires its run to fail at the time limit: a hung image fails the
 * target instead of stalling it. */
#include <stdio.h>

#include "board.h"

static async_loop loop;
static async_interrupt never;

typedef struct {
    async_task task;
} main_frame;

static async_status main_run(async_task *t) {
    ASYNC_BEGIN(t);
    printf("Waiting for an interrupt that never comes\n");
    AWAIT_FUTURE(t, &never.future);
    ASYNC_END(t);
}

int main(void) {
    static main_frame m;
    board_loop_init(&loop);
    async_interrupt_init(&never, &loop);
    ASYNC_FRAME_INIT(&m, main_run);
    return async_run(&loop, &m.task) ? 1 : 0;
}
