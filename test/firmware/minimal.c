/* The minimal core (ASYNC_CONFIG_MINIMAL) on a board: what it keeps and what it gives up. Timers in a
 * sorted array: equal deadlines fire in the order they were set, and a timer cancelled in the middle
 * leaves the others in order; the eight inline slots are all there are (a ninth sleep is ASYNC_ENOMEM at
 * its await); wait_for and a timeout block, which the loop reaches through pointers that their first use
 * sets; no error texts, the codes stay; and async_run returns ASYNC_EDEADLK at once when nothing can
 * wake main, leaving it waiting rather than cancelling it. Compared with minimal.expected. */
#include <stdio.h>

#include "board.h"

#if !ASYNC_CONFIG_MINIMAL
#error "minimal.c tests the minimal core: build it with -DASYNC_CONFIG_MINIMAL=1"
#endif

static async_ms start;

/* ms since the tests began, on the loop's clock */
static unsigned long since(const async_task *t) { return (unsigned long)(async_ms)(async_time(t) - start); }

ASYNC_DEF(sleeper, int id; int ms;) {
    AWAIT_SLEEP(t, f->ms);
    printf("sleeper %d woke at %lu ms\n", f->id, since(t));
} ASYNC_END_DEF

ASYNC_DEF(tests, sleeper_frame s[8]; sleeper_frame slow; int i; async_timeout tmo; async_deadline d;) {
    start = async_time(t);

    /* set in the order 30, 10, 20, 10 ms; the 20 is cancelled while it sleeps */
    async_spawn(async_task_loop(t), ASYNC_CALL(sleeper, &f->s[0], 0, 30));
    async_spawn(async_task_loop(t), ASYNC_CALL(sleeper, &f->s[1], 1, 10));
    async_spawn(async_task_loop(t), ASYNC_CALL(sleeper, &f->s[2], 2, 20));
    async_spawn(async_task_loop(t), ASYNC_CALL(sleeper, &f->s[3], 3, 10));
    AWAIT_SLEEP(t, 5);
    printf("timers: %lu; cancel sleeper 2: %d\n", (unsigned long)async_loop_timers(async_task_loop(t)),
           async_cancel(&f->s[2].task));
    AWAIT(t, &f->s[0].task);
    printf("sleeper 2: %d; timers: %lu\n", async_task_code(&f->s[2].task),
           (unsigned long)async_loop_timers(async_task_loop(t)));

    /* eight sleepers take the eight slots; main's own sleep is a ninth */
    for (f->i = 0; f->i < 8; f->i++)
        async_spawn(async_task_loop(t), ASYNC_CALL(sleeper, &f->s[f->i], 10 + f->i, 50));
    AWAIT_YIELD(t);
    printf("timers: %lu\n", (unsigned long)async_loop_timers(async_task_loop(t)));
    ASYNC_TRY(t) {
        AWAIT_SLEEP(t, 10);
        printf("a ninth timer?\n");
    } ASYNC_EXCEPT(t, ASYNC_ENOMEM) {
        printf("ninth timer: %d (%s)\n", async_caught(t)->code, async_error_message(async_caught(t)));
    } ASYNC_END_TRY(t);
    AWAIT(t, &f->s[7].task);

    ASYNC_TRY(t) {
        AWAIT_TIMEOUT(t, &f->tmo, 20, ASYNC_CALL(sleeper, &f->slow, 99, 100));
        printf("the slow sleeper in time?\n");
    } ASYNC_EXCEPT(t, ASYNC_ETIMEDOUT) {
        printf("wait_for: %d at %lu ms\n", async_caught(t)->code, since(t));
    } ASYNC_END_TRY(t);

    ASYNC_TRY(t) {
        ASYNC_TIMEOUT(t, &f->d, 15) {
            AWAIT_SLEEP(t, 100);
            printf("the block in time?\n");
        } ASYNC_END_TIMEOUT(t, &f->d);
    } ASYNC_EXCEPT(t, ASYNC_ETIMEDOUT) {
        printf("timeout block: %d at %lu ms\n", async_caught(t)->code, since(t));
    } ASYNC_END_TRY(t);

    printf("texts: %s, %s; ASYNC_EIO's record: %s\n", async_strerror(ASYNC_ECANCELED),
           async_strerror(ASYNC_EUSER), async_error_of(ASYNC_EIO) ? "kept" : "none");
} ASYNC_END_DEF

/* awaits a future that nothing completes */
ASYNC_DEF(stuck, async_future *never;) {
    AWAIT_FUTURE(t, f->never);
    printf("stuck woke?\n");
} ASYNC_END_DEF

int main(void) {
    static async_loop loop;
    static async_future never;
    static stuck_frame s;
    static tests_frame m;
    int rc;
    board_loop_init(&loop);
    rc = async_run(&loop, ASYNC_CALL(stuck, &s, &never));
    printf("deadlock: %d; main %s\n", rc, async_task_done(&s.task) ? "ended" : "left waiting");
    return async_main_exit(async_main(ASYNC_CALL(tests, &m)));
}
