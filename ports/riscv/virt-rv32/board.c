/* QEMU's virt machine, one RV32 hart in machine mode: a 16550 UART at 0x10000000, the CLINT's machine
 * timer (10 MHz) for the 1 kHz tick, and the SiFive test device at 0x100000, which ends QEMU with the
 * program's status. The board functions of board.h and the C side of the reset code (start.S). */
#include <stdio.h>

#include "board.h"

#define UART_THR (*(volatile uint8_t *)0x10000000u)
#define UART_LSR (*(volatile uint8_t *)0x10000005u) /* bit 5: transmit holding register empty */

#define CLINT_MTIMECMP_LO (*(volatile uint32_t *)0x02004000u)
#define CLINT_MTIMECMP_HI (*(volatile uint32_t *)0x02004004u)
#define CLINT_MTIME_LO (*(volatile uint32_t *)0x0200BFF8u)
#define CLINT_MTIME_HI (*(volatile uint32_t *)0x0200BFFCu)
#define MTIME_PER_MS 10000u

#define TEST_DEVICE (*(volatile uint32_t *)0x00100000u)

#define MSTATUS_MIE 0x8u
#define MIE_MTIE 0x80u

/* from link.ld */
extern uint32_t __data_load[], __data_start[], __data_end[], __bss_start[], __bss_end[];
extern uint32_t __stack_bottom[], __stack_top[];

int main(void);
void board_start(void);

#define STACK_PAINT 0x5AC3A55Cu

static volatile uint32_t ticks;
static uint64_t next_tick; /* mtime of the next tick */
static void (*volatile timer_isr)(void);
static volatile uint32_t timer_period, timer_left;

static void set_mtimecmp(uint64_t t) {
    CLINT_MTIMECMP_HI = 0xFFFFFFFFu; /* no spurious interrupt while the two halves are written */
    CLINT_MTIMECMP_LO = (uint32_t)t;
    CLINT_MTIMECMP_HI = (uint32_t)(t >> 32);
}

/* The machine trap handler: the tick, the board timer's ISR on it, and anything else ends the run. */
__attribute__((interrupt("machine"), aligned(4))) static void trap_handler(void) {
    uint32_t cause;
    __asm__ volatile("csrr %0, mcause" : "=r"(cause));
    if (cause == 0x80000007u) { /* machine timer interrupt */
        next_tick += MTIME_PER_MS;
        set_mtimecmp(next_tick);
        ticks = ticks + 1;
        if (timer_period && --timer_left == 0) {
            void (*isr)(void) = timer_isr;
            timer_left = timer_period;
            if (isr) isr();
        }
        return;
    }
    printf("board: trap, mcause 0x%lx\n", (unsigned long)cause);
    board_exit(99);
}

static uint64_t mtime(void) {
    uint32_t hi, lo;
    do {
        hi = CLINT_MTIME_HI;
        lo = CLINT_MTIME_LO;
    } while (hi != CLINT_MTIME_HI);
    return (uint64_t)hi << 32 | lo;
}

void board_start(void) {
    uint32_t *p, *s, *sp;
    for (p = __data_start, s = __data_load; p < __data_end;) *p++ = *s++;
    for (p = __bss_start; p < __bss_end;) *p++ = 0;
    __asm__ volatile("mv %0, sp" : "=r"(sp));
    for (p = __stack_bottom; p < sp - 16;) *p++ = STACK_PAINT; /* below this frame, with a margin */

    __asm__ volatile("csrw mtvec, %0" ::"r"(trap_handler));
    next_tick = mtime() + MTIME_PER_MS;
    set_mtimecmp(next_tick);
    __asm__ volatile("csrs mie, %0" ::"r"(MIE_MTIE));
    board_irq_enable();
    board_exit(main());
}

void board_putc(char c) {
    while (!(UART_LSR & 0x20u)) {}
    UART_THR = (uint8_t)c;
}

uint32_t board_millis(void) { return ticks; }

void board_irq_disable(void) { __asm__ volatile("csrc mstatus, %0" ::"r"(MSTATUS_MIE) : "memory"); }
void board_irq_enable(void) { __asm__ volatile("csrs mstatus, %0" ::"r"(MSTATUS_MIE) : "memory"); }
void board_wfi(void) { __asm__ volatile("wfi" ::: "memory"); }

/* There is one timer on this machine: the board's timer counts ticks inside the tick interrupt. */
void board_timer_start(uint32_t period_ms, void (*isr)(void)) {
    board_irq_disable();
    timer_period = isr ? period_ms : 0;
    timer_left = period_ms;
    timer_isr = isr;
    board_irq_enable();
}

uint32_t board_stack_used(void) {
    const uint32_t *p = __stack_bottom;
    while (p < __stack_top && *p == STACK_PAINT) p++;
    return (uint32_t)((const char *)__stack_top - (const char *)p);
}

void board_exit(int status) {
    printf("board: stack %lu bytes, status %d\n", (unsigned long)board_stack_used(), status);
    TEST_DEVICE = status ? ((uint32_t)status & 0xFFFFu) << 16 | 0x3333u : 0x5555u;
    for (;;) board_wfi();
}
