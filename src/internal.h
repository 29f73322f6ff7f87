/* Private to the hosted runtime (src/): what its files share and users never include. */
#ifndef ASYNC_INTERNAL_H
#define ASYNC_INTERNAL_H

#include "async.h"

/* Milliseconds of CLOCK_MONOTONIC, truncated to the loop's wrap-safe 32-bit clock. */
async_ms async__monotonic_ms(void);

/* A hosted loop's thread-pool state (to_thread and files, src/thread_pool.c), made on first use. */
typedef struct async__threads async__threads;
/* The loop's slot for it (ev_loop.c), or NULL if loop is not a hosted loop. */
async__threads **async__loop_threads(async_loop *loop);
/* True while calls of the loop run on threads: the loop must wait for them, not jump time. */
bool async__threads_busy(async_loop *loop);
/* At loop free: waits for the calls in flight, passes undelivered results to their dtors, frees it all. */
void async__threads_free(async_loop *loop);

/* Debug mode (debug.c): at loop free, reports tasks never started and frees its state. */
void async__debug_free(async_loop *loop);

/* The library's code for an errno value: its own code where it has one for that meaning (by name, so
 * another OS's numbering does not matter), the nearest one for a few (ENFILE: EMFILE, ENOBUFS: ENOMEM,
 * EDQUOT: ENOSPC, EWOULDBLOCK: EAGAIN), else ASYNC_EIO. The one translation of the runtime (errors.c). */
int async__errno_code(int err);

#endif
