/* The C library functions a board image needs, with no C library: memory and string helpers (async.h
 * uses memset and memcpy; the compiler may call them for struct copies too) and printf-style output to
 * the board's UART. Built with -fno-tree-loop-distribute-patterns, so that gcc does not turn the loops
 * below into calls of the functions they define. */
#include <stdio.h>
#include <string.h>

#include "board.h"
#include "format.h"

void *memset(void *dst, int c, size_t n) {
    unsigned char *d = dst;
    while (n--) *d++ = (unsigned char)c;
    return dst;
}

void *memcpy(void *dst, const void *src, size_t n) {
    unsigned char *d = dst;
    const unsigned char *s = src;
    while (n--) *d++ = *s++;
    return dst;
}

void *memmove(void *dst, const void *src, size_t n) {
    unsigned char *d = dst;
    const unsigned char *s = src;
    if (d < s) return memcpy(dst, src, n);
    while (n--) d[n] = s[n];
    return dst;
}

int memcmp(const void *a, const void *b, size_t n) {
    const unsigned char *x = a, *y = b;
    for (; n; n--, x++, y++)
        if (*x != *y) return *x - *y;
    return 0;
}

size_t strlen(const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    return n;
}

/* ---- output ---- */

static void to_uart(char c, void *ctx) {
    (void)ctx;
    board_putc(c);
}

int vprintf(const char *fmt, va_list ap) { return board_vformat(to_uart, NULL, fmt, ap); }

int printf(const char *fmt, ...) {
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vprintf(fmt, ap);
    va_end(ap);
    return n;
}

int putchar(int c) {
    board_putc((char)c);
    return (unsigned char)c;
}

int puts(const char *s) {
    while (*s) board_putc(*s++);
    board_putc('\n');
    return 0;
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap) {
    return board_vsnprintf(buf, size, fmt, ap);
}

int snprintf(char *buf, size_t size, const char *fmt, ...) {
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n;
}
