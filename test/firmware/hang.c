/* A deliberately hung image: main awaits a signal that no interrupt raises, so the board sleeps in WFI
 * for ever. `make test-firmware` requires its run to fail at the time limit: a hung image fails the
 * target instead of stalling it. */
#include <stdio.h>

#include "board.h"

static async_loop loop;
static async_signal never;

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
    async_signal_init(&never, &loop);
    ASYNC_FRAME_INIT(&m, main_run);
    return async_run(&loop, &m.task) ? 1 : 0;
}
