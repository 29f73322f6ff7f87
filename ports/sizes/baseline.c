/* samples/gather.c's output with no async.h: three hand-rolled switch/case tasks and a scheduler loop
 * that sleeps with WFI between ticks. The floor that `make firmware` measures the core against (the
 * gather image's text minus this one's is what the core costs), and a check that the board alone
 * prints and times the sample as the hosted run does. */
#include <stdio.h>

#include "board.h"

typedef struct {
    int lc; /* resume point */
    uint32_t wake;
    const char *name;
    int seconds;
    char result[32];
} job;

/* task(name, duration) by hand: one step; returns 1 once finished */
static int job_step(job *j, uint32_t now) {
    switch (j->lc) {
    case 0:
        printf("Task %s started\n", j->name);
        j->wake = now + (uint32_t)j->seconds * 1000u;
        j->lc = 1;
        return 0;
    case 1:
        if ((int32_t)(now - j->wake) < 0) return 0;
        printf("Task %s completed\n", j->name);
        snprintf(j->result, sizeof j->result, "Result of %s", j->name);
        j->lc = 2;
        return 1;
    default: return 1;
    }
}

int main(void) {
    static job jobs[3] = {{0, 0, "A", 3, ""}, {0, 0, "B", 2, ""}, {0, 0, "C", 1, ""}};
    uint32_t start = board_millis(), now = start;
    int done = 0, i;
    while (done < 3) {
        now = board_millis();
        for (done = 0, i = 0; i < 3; i++) done += job_step(&jobs[i], now);
        if (done < 3) { /* sleep until the next tick (masked test-and-WFI, as in port.c) */
            board_irq_disable();
            if (board_millis() == now) board_wfi();
            board_irq_enable();
        }
    }
    printf("['%s', '%s', '%s']\n", jobs[0].result, jobs[1].result, jobs[2].result);
    printf("board: elapsed %lu ms\n", (unsigned long)(now - start));
    return 0;
}
