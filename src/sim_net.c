/* Simulated TCP (the world's network part, sim.h). */
#define _POSIX_C_SOURCE 200809L
#include "sim.h"

#include <stdlib.h>

typedef struct sim_net {
    async__sim *sim;
} sim_net;

void *async__sim_net_open(async__sim *sim, int *err) {
    sim_net *n = (sim_net *)calloc(1, sizeof *n);
    if (!n) {
        *err = ASYNC_ENOMEM;
        return NULL;
    }
    n->sim = sim;
    return n;
}

void async__sim_net_close(async__sim *sim, void *net) {
    (void)sim;
    free(net);
}

unsigned async__sim_net_count(const void *net) {
    (void)net;
    return 0;
}

int async__sim_net_ready(async__sim *sim, void *net, int fd) {
    (void)sim;
    (void)net;
    (void)fd;
    return ASYNC_EBADF;
}

int async_sim_partition(async_loop *loop, const char *host, bool cut) {
    (void)cut;
    return loop && host && async__loop_sim(loop) ? ASYNC_ENOTSUP : ASYNC_EINVAL;
}
