/* Simulated files (the world's file part, sim.h). */
#define _POSIX_C_SOURCE 200809L
#include "sim.h"

#include <stdlib.h>

typedef struct sim_fs {
    async__sim *sim;
} sim_fs;

void *async__sim_fs_open(async__sim *sim, int *err) {
    sim_fs *fs = (sim_fs *)calloc(1, sizeof *fs);
    if (!fs) {
        *err = ASYNC_ENOMEM;
        return NULL;
    }
    fs->sim = sim;
    return fs;
}

void async__sim_fs_close(async__sim *sim, void *fs) {
    (void)sim;
    free(fs);
}

unsigned async__sim_fs_count(const void *fs) {
    (void)fs;
    return 0;
}

int async_sim_file_put(async_loop *loop, const char *path, const void *data, size_t len) {
    (void)data;
    (void)len;
    return loop && path && async__loop_sim(loop) ? ASYNC_ENOTSUP : ASYNC_EINVAL;
}

long async_sim_file_get(async_loop *loop, const char *path, void *buf, size_t cap) {
    (void)buf;
    (void)cap;
    return loop && path && async__loop_sim(loop) ? ASYNC_ENOTSUP : ASYNC_EINVAL;
}
