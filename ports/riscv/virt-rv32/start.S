/* Reset entry of QEMU's virt RV32 (-bios none jumps to 0x80000000): the global and stack pointers, then
 * board_start in C. */
    .section .text.start, "ax"
    .globl _start
_start:
    .option push
    .option norelax
    la gp, __global_pointer$
    .option pop
    la sp, __stack_top
    call board_start
1:  wfi
    j 1b
