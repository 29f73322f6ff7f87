/* Interrupts into coroutines, on the board: a hardware timer interrupt every 10 ms raises an
 * async_interrupt, and the task awaiting its future wakes on the loop's next pass. The image drives
 * the loop itself, as firmware does (async_poll, then WFI for as long as it returned), and checks each
 * way a raise can reach a task: a value, raises that coalesce, a raise kept until the future is re-armed,
 * an error, a wait that times out, a raise after the record was closed, and a loop that nothing can wake.
 * Its output is compared with isr.expected on every board, so what it prints counts interrupts, not ms
 * (the boards' timers and ticks need not agree on a millisecond). */
#include <stdio.h>

#include "board.h"

static async_loop loop;
static async_interrupt sensor; /* what the timer interrupt reports */
static async_interrupt step;   /* when the script below moves on */
static volatile uint32_t irqs;
static volatile int late_raise = 1; /* what a raise after async_interrupt_close returned */

static const async_error sensor_fault = {ASYNC_EUSER + 1, "sensor fault"};

/* The timer interrupt, every 10 ms: what it raises at its n-th run. The tasks print the interrupt they
 * woke at, which is the one that raised (the loop runs right after it, well before the next). */
static void timer_isr(void) {
    uint32_t n = irqs = irqs + 1;
    switch (n) {
    case 5: async_interrupt_raise(&sensor, 42); break;
    case 10: /* three raises before the loop runs: they coalesce, the latest wins */
        async_interrupt_raise(&sensor, 1);
        async_interrupt_raise(&sensor, 2);
        async_interrupt_raise(&sensor, 3);
        break;
    case 15: async_interrupt_raise(&sensor, 7); break; /* the future still holds 3: kept until reset */
    case 20: async_interrupt_raise(&step, 20); break;
    case 30: async_interrupt_raise_error(&sensor, &sensor_fault); break;
    case 50: /* the sensor's record is closed by then */
        late_raise = async_interrupt_raise(&sensor, 9);
        async_interrupt_raise(&step, 50);
        break;
    default: break;
    }
}

/* awaits the sensor: the work that AWAIT_TIMEOUT cancels */
typedef struct {
    async_task task;
} waiter_frame;

static async_status waiter_run(async_task *t) {
    ASYNC_BEGIN(t);
    ASYNC_TRY(t) {
        AWAIT_FUTURE(t, &sensor.future);
    } ASYNC_CATCH(t) {
        printf("waiter: %s\n", async_error_message(async_caught(t)));
        ASYNC_RERAISE(t);
    } ASYNC_END_TRY(t);
    ASYNC_END(t);
}

typedef struct {
    async_task task;
    async_ms start;
    waiter_frame waiter;
    async_timeout timeout;
} main_frame;

static long sensor_value(void) { return (long)async_future_value(&sensor.future); }
static unsigned long irq(void) { return (unsigned long)irqs; }

static async_status main_run(async_task *t) {
    main_frame *f = (main_frame *)t;
    ASYNC_BEGIN(t);
    board_timer_start(10, timer_isr);

    AWAIT_FUTURE(t, &sensor.future); /* nothing else is scheduled: the board sleeps until the interrupt */
    printf("value %ld at interrupt %lu\n", sensor_value(), irq());

    async_interrupt_reset(&sensor);
    AWAIT_FUTURE(t, &sensor.future);
    printf("coalesced to %ld at interrupt %lu\n", sensor_value(), irq());

    AWAIT_FUTURE(t, &step.future); /* meanwhile the raise at 15 finds the sensor's future complete */
    printf("still %ld at interrupt %lu\n", sensor_value(), irq());
    async_interrupt_reset(&sensor);
    AWAIT_FUTURE(t, &sensor.future);
    printf("kept %ld, delivered at interrupt %lu\n", sensor_value(), irq());

    async_interrupt_reset(&sensor);
    ASYNC_TRY(t) {
        AWAIT_FUTURE(t, &sensor.future);
        printf("no error?\n");
    } ASYNC_CATCH(t) {
        printf("caught %s (%d) at interrupt %lu\n", async_error_message(async_caught(t)),
               async_caught(t)->code, irq());
    } ASYNC_END_TRY(t);

    async_interrupt_reset(&sensor);
    f->start = async_loop_now(&loop);
    ASYNC_TRY(t) {
        ASYNC_FRAME_INIT(&f->waiter, waiter_run);
        AWAIT_TIMEOUT(t, &f->timeout, 50, &f->waiter.task); /* the next raise is at 50: too late */
    } ASYNC_CATCH(t) {
        printf("wait_for: %s after %lu ms\n", async_error_message(async_caught(t)),
               (unsigned long)(async_loop_now(&loop) - f->start));
    } ASYNC_END_TRY(t);

    printf("close: %d\n", async_interrupt_close(&sensor));
    async_interrupt_reset(&step);
    AWAIT_FUTURE(t, &step.future);
    printf("raise after close: %d (%s) at interrupt %lu\n", late_raise, async_strerror(late_raise), irq());
    board_timer_start(0, NULL);
    ASYNC_END(t);
}

/* a task that awaits a future nothing completes */
typedef struct {
    async_task task;
    async_future never;
} stuck_frame;

static async_status stuck_run(async_task *t) {
    stuck_frame *f = (stuck_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT_FUTURE(t, &f->never);
    ASYNC_END(t);
}

int main(void) {
    static main_frame m;
    static stuck_frame stuck;
    int32_t ms;
    uint32_t passes = 0;
    board_loop_init(&loop);
    printf("init: %d %d\n", async_interrupt_init(&sensor, &loop), async_interrupt_init(&step, &loop));
    ASYNC_FRAME_INIT(&m, main_run);
    async_spawn(&loop, &m.task);
    while (!async_task_done(&m.task)) { /* the firmware main loop */
        ms = async_poll(&loop);
        passes++;
        if (!async_task_done(&m.task) && !board_wait(&loop, ms)) break;
    }
    printf("main: %d after %lu interrupts\n", async_task_code(&m.task), irq());
    /* some dozen events in 500 ms of 1 kHz ticks: a loop that slept between them ran a few passes */
    if (passes <= 20)
        printf("loop passes: 20 or fewer, the board slept between events\n");
    else
        printf("loop passes: %lu, the loop spun instead of sleeping\n", (unsigned long)passes);
    async_interrupt_close(&step);

    /* with no interrupt registered, a loop whose task waits for nothing that can come is a deadlock: the
     * board's wait says so and async_run ends the task instead of sleeping forever */
    ASYNC_FRAME_INIT(&stuck, stuck_run);
    printf("stuck: %d\n", async_run(&loop, &stuck.task));
    return async_task_code(&m.task) ? 1 : 0;
}
