/* The formatter behind the board's printf and snprintf, also built on the host by the tests, which
 * compare it with the C library's. */
#ifndef FIRMWARE_FORMAT_H
#define FIRMWARE_FORMAT_H

#include <stdarg.h>
#include <stddef.h>

/** Receives each output character. */
typedef void (*board_out)(char c, void *ctx);

/** printf's formatting of fmt and ap through out, for the conversions %d %i %u %x %X %c %s %p %%, the
 *  flags '-' and '0', a width and a precision (digits or *), and the length modifiers h, hh, l and z;
 *  %p prints a null pointer as 0x0. Anything else (%f, %lld, %n, ...) is written out as it stands in
 *  fmt, so a format this formatter does not know shows in the output instead of reading arguments it
 *  cannot type. Returns the number of characters passed to out. */
int board_vformat(board_out out, void *ctx, const char *fmt, va_list ap);

/** vsnprintf through board_vformat: writes at most size - 1 characters and a NUL into buf (nothing if
 *  size is 0 or buf NULL); returns the length the whole output has. */
int board_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);

#endif
