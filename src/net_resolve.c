/* Name resolution for AWAIT_STREAM_CONNECT without blocking the loop: getaddrinfo runs as a job on the
 * loop's thread pool, like any to_thread call, and its answer comes back to the loop's thread with the
 * pool's other completions.
 *
 * The job is the lookup: its payload holds the name, and the answer once it is back. A connect that is
 * cancelled, times out or whose stream closes lets go of it at once (net__lookup_end): the lookup
 * finishes on its thread and the job's dtor frees the answer no one takes; nothing ever kills a thread.
 * Freeing the loop waits for lookups in flight, as for every call on its pool.
 *
 * The simulated world (async/sim.h) has no resolver: a lookup on its loop fails at once with ASYNC_ENXIO
 * (net_stream.c does not even start one: IP literals and "localhost" need none). */
#include "net.h"
#include "thread_pool.h"

#include <netdb.h>
#include <stdio.h>
#include <sys/socket.h>

/* The longest name looked up (a DNS name has at most 253 characters). */
#define LOOKUP_NAME_MAX 255

typedef struct lookup_args {
    void (*done)(void *ctx); /* loop thread: the answer is back */
    void *ctx;
    int gai;                 /* pool thread: getaddrinfo's result */
    struct addrinfo *res;    /* pool thread: its answer */
    char port[8];
    char host[];
} lookup_args;

/* On a pool thread. */
static int lookup_fn(void *arg, intptr_t *result) {
    lookup_args *a = (lookup_args *)arg;
    struct addrinfo hints;
    (void)result;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    a->gai = getaddrinfo(a->host, a->port, &hints, &a->res);
    return 0;
}

/* An answer no one takes. */
static void lookup_dtor(intptr_t result, void *arg) {
    lookup_args *a = (lookup_args *)arg;
    (void)result;
    if (a->res) freeaddrinfo(a->res);
    a->res = NULL;
}

static void lookup_back(async__job *j, void *ctx) {
    lookup_args *a = (lookup_args *)ctx;
    (void)j;
    a->done(a->ctx);
}

net_lookup *net__lookup_start(async_loop *loop, const char *host, int port, void (*done)(void *ctx), void *ctx,
                              int *err) {
    size_t n = strlen(host);
    async__job *j;
    lookup_args *a;
    if (n > LOOKUP_NAME_MAX) {
        *err = ASYNC_EINVAL;
        return NULL;
    }
    if (async__loop_is_sim(loop)) { /* no getaddrinfo in the world: its names are its addresses */
        *err = ASYNC_ENXIO;
        return NULL;
    }
    j = async__job_new(loop, sizeof *a + n + 1, err);
    if (!j) return NULL;
    a = (lookup_args *)async__job_payload(j);
    memset(a, 0, sizeof *a);
    a->done = done;
    a->ctx = ctx;
    snprintf(a->port, sizeof a->port, "%d", port);
    memcpy(a->host, host, n + 1);
    async__job_set_fn(j, lookup_fn, a, lookup_dtor);
    async__job_submit(j, lookup_back, a);
    return j;
}

int net__lookup_result(net_lookup *l, struct addrinfo **res) {
    lookup_args *a = (lookup_args *)async__job_payload(l);
    if (a->gai || !a->res) return ASYNC_ENXIO;
    *res = a->res;
    return 0;
}

void net__lookup_end(net_lookup *l) { async__job_abandon(l); }
