/* Private to the hosted runtime (src/): what its files share and users never include. */
#ifndef ASYNC_INTERNAL_H
#define ASYNC_INTERNAL_H

#include "async.h"

/* Milliseconds of CLOCK_MONOTONIC, truncated to the loop's wrap-safe 32-bit clock. */
async_ms async__monotonic_ms(void);

/* Debug mode (debug.c): at loop free, reports tasks never started and frees its state. */
void async__debug_free(async_loop *loop);

#endif
