/* QEMU's mps2-an385: a Cortex-M3 at 25 MHz, CMSDK UART0 at 0x40004000, CMSDK timer 0 at 0x40000000
 * (IRQ 8), SysTick at 1 kHz. The vector table, the reset code and the board functions of board.h.
 * QEMU exits with the program's status through semihosting (SYS_EXIT_EXTENDED): run it with
 * -semihosting-config enable=on,target=native. */
#include <stdio.h>

#include "board.h"

#define REG(addr) (*(volatile uint32_t *)(addr))

#define CPU_HZ 25000000u /* SysTick's and the APB timers' clock on this board */

#define UART0_DATA REG(0x40004000u)
#define UART0_STATE REG(0x40004004u) /* bit 0: TX buffer full */
#define UART0_CTRL REG(0x40004008u)  /* bit 0: TX enable */
#define UART0_BAUDDIV REG(0x40004010u)

#define TIMER0_CTRL REG(0x40000000u) /* bit 0: enable, bit 3: interrupt enable */
#define TIMER0_RELOAD REG(0x40000008u)
#define TIMER0_VALUE REG(0x40000004u)
#define TIMER0_INTCLEAR REG(0x4000000Cu)
#define TIMER0_IRQ 8u

#define SYST_CSR REG(0xE000E010u) /* bit 0: enable, 1: interrupt, 2: processor clock */
#define SYST_RVR REG(0xE000E014u)
#define SYST_CVR REG(0xE000E018u)
#define NVIC_ISER0 REG(0xE000E100u)
#define NVIC_ICER0 REG(0xE000E180u)

/* from link.ld */
extern uint32_t __data_load[], __data_start[], __data_end[], __bss_start[], __bss_end[];
extern uint32_t __stack_bottom[], __stack_top[];

int main(void);

#define STACK_PAINT 0x5AC3A55Cu

static volatile uint32_t ticks;
static void (*volatile timer_isr)(void);

static void systick_handler(void) { ticks = ticks + 1; }

static void timer0_handler(void) {
    void (*isr)(void) = timer_isr;
    TIMER0_INTCLEAR = 1;
    if (isr) isr();
}

/* A fault or an interrupt with no handler: say so and end the run, rather than hang until the test's
 * time limit. */
static void fault_handler(void) {
    printf("board: fault or unexpected interrupt\n");
    board_exit(99);
}

static void reset_handler(void) {
    uint32_t *p, *s, *sp;
    for (p = __data_start, s = __data_load; p < __data_end;) *p++ = *s++;
    for (p = __bss_start; p < __bss_end;) *p++ = 0;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (p = __stack_bottom; p < sp - 16;) *p++ = STACK_PAINT; /* below this frame, with a margin */

    UART0_BAUDDIV = 16; /* the smallest valid divider; QEMU does not pace the output */
    UART0_CTRL = 1;
    SYST_RVR = CPU_HZ / 1000u - 1u;
    SYST_CVR = 0;
    SYST_CSR = 7;
    __asm__ volatile("cpsie i" ::: "memory");
    board_exit(main());
}

typedef void (*handler)(void);

/* The vector table, first in flash: the initial stack pointer, then 15 system exceptions and the first
 * 16 external interrupts. */
static const struct {
    uint32_t *stack;
    handler vectors[15 + 16];
} vector_table __attribute__((section(".isr_vector"), used)) = {
    __stack_top,
    {
        reset_handler, fault_handler, fault_handler, fault_handler, fault_handler, fault_handler, /* 1..6 */
        0, 0, 0, 0,                                                                             /* 7..10 */
        fault_handler, fault_handler, 0, fault_handler, systick_handler,                       /* 11..15 */
        fault_handler, fault_handler, fault_handler, fault_handler, /* IRQ 0..3 */
        fault_handler, fault_handler, fault_handler, fault_handler, /* IRQ 4..7 */
        timer0_handler, fault_handler, fault_handler, fault_handler, /* IRQ 8..11 */
        fault_handler, fault_handler, fault_handler, fault_handler, /* IRQ 12..15 */
    },
};

void board_putc(char c) {
    while (UART0_STATE & 1u) {}
    UART0_DATA = (uint8_t)c;
}

uint32_t board_millis(void) { return ticks; }

void board_irq_disable(void) { __asm__ volatile("cpsid i" ::: "memory"); }
void board_irq_enable(void) { __asm__ volatile("cpsie i" ::: "memory"); }
void board_wfi(void) { __asm__ volatile("wfi" ::: "memory"); }

void board_timer_start(uint32_t period_ms, void (*isr)(void)) {
    NVIC_ICER0 = 1u << TIMER0_IRQ;
    TIMER0_CTRL = 0;
    TIMER0_INTCLEAR = 1;
    timer_isr = isr;
    if (!period_ms || !isr) return;
    TIMER0_RELOAD = period_ms * (CPU_HZ / 1000u) - 1u;
    TIMER0_VALUE = period_ms * (CPU_HZ / 1000u) - 1u;
    TIMER0_CTRL = 1u | 8u;
    NVIC_ISER0 = 1u << TIMER0_IRQ;
}

uint32_t board_stack_used(void) {
    const uint32_t *p = __stack_bottom;
    while (p < __stack_top && *p == STACK_PAINT) p++;
    return (uint32_t)((const char *)__stack_top - (const char *)p);
}

void board_exit(int status) {
    static uint32_t block[2];
    printf("board: stack %lu bytes, status %d\n", (unsigned long)board_stack_used(), status);
    block[0] = 0x20026u; /* ADP_Stopped_ApplicationExit */
    block[1] = (uint32_t)status;
    {   /* semihosting SYS_EXIT_EXTENDED: r0 the call, r1 the block; set right before the BKPT */
        register uint32_t r0 __asm__("r0") = 0x20u;
        register uint32_t *r1 __asm__("r1") = block;
        __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    }
    for (;;) board_wfi();
}
