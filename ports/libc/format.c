/* A small printf formatter for boards without a C library: integers in decimal and hex, characters,
 * strings, pointers; no floating point (the samples print none). See format.h for what it accepts. */
#include "format.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    board_out out;
    void *ctx;
    int count;
} format_sink;

static void format_put(format_sink *k, char c) {
    k->out(c, k->ctx);
    k->count++;
}

static void format_pad(format_sink *k, char c, int n) {
    while (n-- > 0) format_put(k, c);
}

/* Writes `len` bytes of s after a sign or prefix and `zeros` leading zeros (a precision), in a field
 * of `width`; the '0' flag pads with zeros between the prefix and the digits, as printf does. */
static void format_field(format_sink *k, const char *prefix, int zeros, const char *s, int len, int width,
                         int left, int zero) {
    int plen = 0, fill;
    while (prefix[plen]) plen++;
    if (zeros < 0) zeros = 0;
    fill = width - plen - zeros - len;
    if (!left && !zero) format_pad(k, ' ', fill);
    while (*prefix) format_put(k, *prefix++);
    if (!left && zero) format_pad(k, '0', fill);
    format_pad(k, '0', zeros);
    while (len-- > 0) format_put(k, *s++);
    if (left) format_pad(k, ' ', fill);
}

/* The digits of v in base 10 or 16, written backwards from the end of buf; returns the first one. */
static char *format_digits(char *end, unsigned long v, unsigned base, int upper) {
    const char *set = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    char *p = end;
    do {
        *--p = set[v % base];
        v /= base;
    } while (v);
    return p;
}

int board_vformat(board_out out, void *ctx, const char *fmt, va_list ap) {
    format_sink k;
    k.out = out;
    k.ctx = ctx;
    k.count = 0;
    while (*fmt) {
        const char *start = fmt;
        char buf[3 * sizeof(unsigned long) + 1], *end = buf + sizeof buf, *p;
        int width = 0, prec = -1, left = 0, zero = 0, len_mod = 0; /* see the cases below */
        if (*fmt != '%') {
            format_put(&k, *fmt++);
            continue;
        }
        fmt++;
        for (;; fmt++) {
            if (*fmt == '-')
                left = 1;
            else if (*fmt == '0')
                zero = 1;
            else
                break;
        }
        if (*fmt == '*') {
            width = va_arg(ap, int);
            if (width < 0) {
                left = 1;
                width = -width;
            }
            fmt++;
        } else {
            while (*fmt >= '0' && *fmt <= '9') width = width * 10 + (*fmt++ - '0');
        }
        if (*fmt == '.') {
            fmt++;
            prec = 0;
            if (*fmt == '*') {
                prec = va_arg(ap, int);
                if (prec < 0) prec = -1;
                fmt++;
            } else {
                while (*fmt >= '0' && *fmt <= '9') prec = prec * 10 + (*fmt++ - '0');
            }
        }
        if (*fmt == 'h') { /* short (-1) or char (-2): promoted to int, converted back before printing */
            len_mod = -1;
            fmt++;
            if (*fmt == 'h') {
                len_mod = -2;
                fmt++;
            }
        } else if (*fmt == 'l' && fmt[1] != 'l') {
            len_mod = 1;
            fmt++;
        } else if (*fmt == 'z') {
            len_mod = 2;
            fmt++;
        }
        if (left || prec >= 0) zero = 0; /* as in printf: '-' or a precision overrides '0' */
        switch (*fmt) {
        case 'd':
        case 'i': {
            long v = len_mod == 1   ? va_arg(ap, long)
                     : len_mod == 2 ? (long)va_arg(ap, ptrdiff_t)
                                    : va_arg(ap, int);
            if (len_mod == -1) v = (short)v;
            if (len_mod == -2) v = (signed char)v;
            unsigned long mag = v < 0 ? 0ul - (unsigned long)v : (unsigned long)v;
            p = prec == 0 && mag == 0 ? end : format_digits(end, mag, 10, 0);
            format_field(&k, v < 0 ? "-" : "", prec - (int)(end - p), p, (int)(end - p), width, left, zero);
            break;
        }
        case 'u':
        case 'x':
        case 'X': {
            unsigned long v = len_mod == 1   ? va_arg(ap, unsigned long)
                              : len_mod == 2 ? (unsigned long)va_arg(ap, size_t)
                                             : va_arg(ap, unsigned);
            if (len_mod == -1) v = (unsigned short)v;
            if (len_mod == -2) v = (unsigned char)v;
            p = prec == 0 && v == 0 ? end : format_digits(end, v, *fmt == 'u' ? 10 : 16, *fmt == 'X');
            format_field(&k, "", prec - (int)(end - p), p, (int)(end - p), width, left, zero);
            break;
        }
        case 'p':
            p = format_digits(end, (unsigned long)(uintptr_t)va_arg(ap, void *), 16, 0);
            format_field(&k, "0x", 0, p, (int)(end - p), width, left, 0);
            break;
        case 'c':
            buf[0] = (char)va_arg(ap, int);
            format_field(&k, "", 0, buf, 1, width, left, 0);
            break;
        case 's': {
            const char *s = va_arg(ap, const char *);
            int n = 0;
            if (!s) s = "(null)";
            while (s[n] && (prec < 0 || n < prec)) n++;
            format_field(&k, "", 0, s, n, width, left, 0);
            break;
        }
        case '%':
            format_put(&k, '%');
            break;
        default: /* not a conversion this formatter knows: show it as written */
            while (start < fmt) format_put(&k, *start++);
            if (*fmt) format_put(&k, *fmt);
            else continue;
            break;
        }
        fmt++;
    }
    return k.count;
}

/* snprintf's buffer: keeps what fits, counts everything (C99's return value). */
typedef struct {
    char *buf;
    size_t size, len;
} format_buffer;

static void format_to_buffer(char c, void *ctx) {
    format_buffer *b = ctx;
    if (b->len + 1 < b->size) b->buf[b->len] = c;
    b->len++;
}

int board_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap) {
    format_buffer b;
    int n;
    b.buf = buf;
    b.size = buf ? size : 0;
    b.len = 0;
    n = board_vformat(format_to_buffer, &b, fmt, ap);
    if (b.size) b.buf[b.len < b.size ? b.len : b.size - 1] = '\0';
    return n;
}
