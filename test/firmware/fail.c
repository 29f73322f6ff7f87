/* A deliberately failing image: its main raises, so it prints an error and exits with status 1 instead
 * of printing what fail.expected says. `make test-firmware` runs it through the same check as the other
 * images and requires that check to fail: a failing image does fail the target. */
#include <stdio.h>

#include "async.h"

typedef struct {
    async_task task;
} main_frame;

static async_status main_run(async_task *t) {
    ASYNC_BEGIN(t);
    printf("Starting\n");
    AWAIT_SLEEP(t, 10);
    ASYNC_THROW(t, ASYNC_EUSER + 7, "deliberate failure");
    printf("Done\n");
    ASYNC_END(t);
}

int main(void) {
    static main_frame m;
    ASYNC_FRAME_INIT(&m, main_run);
    return async_main(&m.task) ? 1 : 0;
}
