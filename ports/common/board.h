/* What the port (port.c) and the test images need from a board. Each board directory implements it in
 * board.c with its startup code and linker script: reset zeroes .bss, copies .data, paints the stack,
 * starts the UART and a 1 kHz tick, enables interrupts, calls main(), and ends the run with
 * board_exit(main's status). */
#ifndef FIRMWARE_BOARD_H
#define FIRMWARE_BOARD_H

#include <stdint.h>

/** Writes one character to the console UART (blocks while its FIFO is full). */
void board_putc(char c);
/** Milliseconds since reset, counted by the 1 kHz tick interrupt (wraps after 49 days). */
uint32_t board_millis(void);
/** Masks interrupts (PRIMASK on Cortex-M, mstatus.MIE on RISC-V). */
void board_irq_disable(void);
/** Unmasks interrupts; a pending one runs now. */
void board_irq_enable(void);
/** Sleeps until an interrupt is pending: WFI, which also wakes on an interrupt that is masked. */
void board_wfi(void);
/** Calls isr from a timer interrupt every period_ms milliseconds (0 stops it): the interrupt source the
 *  ISR test drives. */
void board_timer_start(uint32_t period_ms, void (*isr)(void));
/** The deepest the stack has been so far, in bytes (reset painted it). */
uint32_t board_stack_used(void);
/** Ends the run: prints the board's report line, then QEMU exits with status (0..255). */
void board_exit(int status)
#if defined(__GNUC__)
    __attribute__((noreturn))
#endif
    ;

#endif
