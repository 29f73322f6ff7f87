/* The firmware port of async.h: the hosted runtime's async_main, for a board. Board builds include this
 * header before every source file (-include port.h), so the hosted samples compile unchanged. */
#ifndef FIRMWARE_PORT_H
#define FIRMWARE_PORT_H

#include "async.h"

/** asyncio.run(main) on the board: a static loop on the board's millisecond clock, run until main ends,
 *  sleeping with WFI between passes. Prints main's error like the hosted runtime ("async: main failed:
 *  ..."), then the run's length ("board: elapsed N ms"). Returns main's code. */
int async_main(async_task *main);
/** The exit status for main() after async_main returned rc (what ASYNC_MAIN returns): 0 for 0, else 1. A
 *  board has no Ctrl-C to end by. */
int async_main_exit(int rc);

/** Sets up a loop for the board: its clock, its WFI wait (for async_run), and an error handler that
 *  prints errors no one retrieved as the hosted runtime does. For images that drive the loop themselves. */
void board_loop_init(async_loop *loop);

/** The wait of board_loop_init's loops, for images that call async_poll themselves: sleeps with WFI
 *  until ms have passed (from the loop's time; -1: no limit) or an ISR raised an async_interrupt. Returns
 *  false at once if ms is -1 and no interrupt is registered: then nothing could wake the loop. */
bool board_wait(async_loop *loop, int32_t ms);

#endif
