/* The hosted runtime's front door: async_loop_new picks the backend (the libev one, on the real or the
 * virtual clock) and switches debug mode on when the environment asks; async_main is asyncio.run. Above
 * the loop, the backend and debug mode alike, so none of them needs to know the others. */
#define _POSIX_C_SOURCE 200809L
#include "backend.h"
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

async_loop *async_loop_new(unsigned flags) {
    const char *clock = getenv("ASYNC_CLOCK"), *debug;
    bool virt = (flags & ASYNC_LOOP_VIRTUAL_CLOCK) || (clock && strcmp(clock, "virtual") == 0);
    async_loop *loop = async__hosted_new(virt ? &async__backend_ev_virtual : &async__backend_ev, NULL);
    if (!loop) return NULL;
    debug = getenv("ASYNC_DEBUG");
    /* "0" and the empty string are off (as asyncio reads PYTHONASYNCIODEBUG: set and non-empty): an
     * empty value is how a shell script unsets a variable for one command */
    if (debug && *debug && strcmp(debug, "0") != 0 && async_loop_set_debug(loop, true) == 0)
        async_loop_dump_on_sigquit(loop);
    return loop;
}

int async_main(async_task *main) {
    async_loop *loop = async_loop_new(0);
    async_ms start;
    int rc;
    if (!loop) {
        fprintf(stderr, "async: %s\n", async_strerror(ASYNC_ENOMEM));
        return ASYNC_ENOMEM;
    }
    start = async_loop_now(loop);
    rc = async_run(loop, main);
    if (rc) {
        const async_error *e = async_task_error(main);
        fprintf(stderr, "async: main failed: %s (%d)\n",
                e ? async_loop_error_message(loop, e) : async_loop_strerror(loop, rc), rc);
    }
    if (async_loop_virtual(loop))
        fprintf(stderr, "async: virtual time %lu ms\n", (unsigned long)(async_ms)(async_loop_now(loop) - start));
    async_loop_free(loop);
    return rc;
}
