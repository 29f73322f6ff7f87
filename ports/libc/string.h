/* The part of <string.h> a board image needs, with no C library (the RISC-V toolchain has none; on ARM
 * it stands in for newlib's): the four functions GCC may call in freestanding code (memcpy, memmove,
 * memset, memcmp; async.h uses memset and memcpy) and strlen. Implemented in libc.c. */
#ifndef FIRMWARE_STRING_H
#define FIRMWARE_STRING_H

#include <stddef.h>

void *memset(void *dst, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

#endif
