/* The part of <stdio.h> the samples use, on a board: output goes to its UART (board_putc). The formats
 * are those of format.c: %d %i %u %x %X %c %s %p %% with the flags - and 0, a width, a precision,
 * and the h, hh, l and z length modifiers. No floating point, no input. Implemented in libc.c. */
#ifndef FIRMWARE_STDIO_H
#define FIRMWARE_STDIO_H

#include <stdarg.h>
#include <stddef.h>

#if defined(__GNUC__)
#  define FIRMWARE_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#  define FIRMWARE_PRINTF(f, a)
#endif

#define EOF (-1)

int printf(const char *fmt, ...) FIRMWARE_PRINTF(1, 2);
int vprintf(const char *fmt, va_list ap) FIRMWARE_PRINTF(1, 0);
int snprintf(char *buf, size_t size, const char *fmt, ...) FIRMWARE_PRINTF(3, 4);
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap) FIRMWARE_PRINTF(3, 0);
int putchar(int c);
int puts(const char *s);

#endif
