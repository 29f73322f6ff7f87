/* The firmware port: async_main, the loop's clock and sleep for a board (see port.h), and picolibc's
 * standard streams on the board's UART. */
#include <stdio.h>

#include "board.h"

/* picolibc's stdio writes through a FILE whose put function the program supplies; stdout and stderr
 * both go to the UART, in the order they are written (the check compares the board's output with the
 * hosted sample's stdout followed by its stderr, and the samples write errors last). */
static int board_stdio_put(char c, FILE *file) {
    (void)file;
    board_putc(c);
    return (unsigned char)c;
}

static FILE board_stdio = FDEV_SETUP_STREAM(board_stdio_put, NULL, NULL, _FDEV_SETUP_WRITE);
FILE *const stdout = &board_stdio;
FILE *const stderr = &board_stdio;

static async_ms board_clock(async_loop *loop) {
    (void)loop;
    return board_millis();
}

bool board_wait(async_loop *loop, int32_t ms) {
    async_ms deadline = async_loop_now(loop) + (async_ms)ms;
    if (ms == 0) return true;
    if (ms < 0 && !async_loop_has_interrupts(loop)) return false;
    for (;;) {
        /* masked between the test and the WFI: an interrupt in between stays pending, so WFI returns at
         * once instead of sleeping through a raise */
        board_irq_disable();
        if (async_loop_interrupted(loop) || (ms > 0 && (int32_t)(board_millis() - deadline) >= 0)) break;
        board_wfi();
        board_irq_enable(); /* the pending handler runs here */
    }
    board_irq_enable();
    return true;
}

#if ASYNC_CONFIG_UNRETRIEVED /* else the core keeps no such errors */
static void board_report(async_loop *loop, async_task *task, const async_error *error, void *ctx) {
    (void)loop;
    (void)ctx;
    printf("async: error never retrieved in %s: %s (%d)\n", async_task_name(task), async_error_message(error),
           error ? error->code : 0);
}
#endif

void board_loop_init(async_loop *loop) {
    async_loop_init(loop);
    async_loop_set_clock(loop, board_clock);
    async_loop_set_wait(loop, board_wait);
#if ASYNC_CONFIG_UNRETRIEVED
    async_loop_set_error_handler(loop, board_report, NULL);
#endif
}

int async_main(async_task *main) {
    static async_loop loop;
    async_ms start;
    int rc;
    board_loop_init(&loop);
    start = async_loop_now(&loop);
    rc = async_run(&loop, main);
    if (rc) {
#if ASYNC_CONFIG_ERROR_MESSAGES
        const async_error *e = async_task_error(main);
        printf("async: main failed: %s (%d)\n", e ? async_error_message(e) : async_strerror(rc), rc);
#else /* no texts: the code says it (an ASYNC_THROW's own message is not looked up) */
        printf("async: main failed: %s (%d)\n", async_strerror(rc), rc);
#endif
    }
    printf("board: elapsed %lu ms\n", (unsigned long)(async_ms)(async_loop_now(&loop) - start));
    return rc;
}

int async_main_exit(int rc) { return rc == 0 ? 0 : 1; }
