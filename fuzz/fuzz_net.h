/* What the network fuzz targets share: one hosted loop for the whole run (real clock: fd waits need a
 * loop that polls the OS), and a coroutine that sends the fuzz input in chunks.
 *
 * The input's first byte seeds the chunk sizes (1..64 bytes each); the rest is sent as is, so a seed
 * file is a byte and a readable message. After each chunk the sender waits until its socket is
 * writable, which costs one round of the loop's I/O poll: the peer's reader has seen that chunk
 * before the next one is written, so parsers meet their input split at every kind of place. */
#ifndef FUZZ_NET_H
#define FUZZ_NET_H

#define _GNU_SOURCE
#include "async.h"
#include "fuzz_check.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>


/* The loop of the whole fuzzing run. */
static async_loop *fuzz_loop(void) {
    static async_loop *loop;
    if (!loop) {
        loop = async_loop_new(0);
        FUZZ_CHECK(loop != NULL);
    }
    return loop;
}

typedef struct fuzz_sender {
    async_task task;
    int fd;            /* the socket written to (not owned) */
    const uint8_t *data;
    size_t len, pos, n;
    uint32_t rng;
    int shut;          /* shut the write side down at the end (the peer sees the end of the stream) */
    async_io io;
} fuzz_sender;

static async_status fuzz_sender_run(async_task *t) {
    fuzz_sender *f = (fuzz_sender *)t;
    ASYNC_BEGIN(t);
    while (f->pos < f->len) {
        f->rng = f->rng * 1103515245u + 12345u;
        f->n = 1 + (f->rng >> 16) % 64;
        if (f->n > f->len - f->pos) f->n = f->len - f->pos;
        {
            ssize_t w = send(f->fd, f->data + f->pos, f->n, MSG_NOSIGNAL);
            if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) break; /* the peer closed: fine */
            if (w > 0) f->pos += (size_t)w;
        }
        AWAIT_WRITABLE(t, &f->io, f->fd, 2000);
    }
    if (f->shut) shutdown(f->fd, SHUT_WR);
    ASYNC_END(t);
}

/* Sends data[1..size) to fd in chunks seeded by data[0]. */
static async_task *fuzz_sender_new(fuzz_sender *f, int fd, const uint8_t *data, size_t size, int shut) {
    ASYNC_FRAME_INIT(f, fuzz_sender_run);
    f->fd = fd;
    f->rng = size ? data[0] : 0;
    f->data = size ? data + 1 : data;
    f->len = size ? size - 1 : 0;
    f->shut = shut;
    return &f->task;
}

#endif
