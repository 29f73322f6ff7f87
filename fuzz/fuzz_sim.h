/* What the fuzz targets over the simulated world share (async/sim.h): a fresh simulated loop per input,
 * whose options and seed come from the input's first four bytes, a peer that sends the rest of the input
 * over a world connection in chunks while it reads what comes back, and the checks made at the end.
 *
 * The world's header (missing bytes count as 0, so that a seed file is four bytes and a readable
 * message; every byte value means something, so that no input is wasted):
 *
 *   byte 0   the seed (with byte 3's high bits)
 *   byte 1   faults: bits 0-2 partial_pct (0, 0, 0, 0, 10, 30, 60, 90); bits 3-4 stall_pct (0, 0, 5,
 *            30, stall_max_ms 1 + byte 0 % 40); bits 5-7 all set: reset_pct 2 (1 input in 8 may be reset)
 *   byte 2   latency: bits 0-3 latency_max_ms (x 3), bit 4 latency_min_ms = max (else 0); bits 5-7
 *            bandwidth in bytes per ms (unlimited, unlimited, unlimited, 1, 4, 64, 1024, 100000)
 *   byte 3   bits 0-2 the window in bytes (65,536 five times, 4,096, 64, 3); bits 3-7 the peer's chunking
 *            (sizes 1..64 and pauses of 0..2 ms between chunks, drawn from them)
 *
 * Everything then follows from the input: a crash or a broken invariant replays from the input alone. */
#ifndef FUZZ_SIM_H
#define FUZZ_SIM_H

#include "async.h"
#include "fuzz_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* shutdown(SHUT_WR) of a stream's socket (the library's own, src/net.h: no public call half-closes a
 * stream), so that the server meets the end of the stream after the input. */
int net__stream_shutdown(async_stream *s);

/* AddressSanitizer's defaults for these targets (ASAN_OPTIONS still overrides them): a quarantine of 16 MB
 * instead of 256 (each input allocates and frees a few dozen blocks; with the default every block was new
 * memory, a page fault each, and the quarantine's recycling ran most of the time) and stacks of 8 frames
 * for allocations (the handler, the stream, the world: enough to say who allocated). */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "quarantine_size_mb=16:malloc_context_size=8"; }

/* FUZZ_VERBOSE=1 in the environment: a target tells what each input did (to replay one by hand). */
static inline int fuzz_verbose(void) {
    static int v = -1;
    if (v < 0) v = getenv("FUZZ_VERBOSE") != NULL;
    return v;
}

/* The world's time at t, for what fuzz_verbose prints. */
static inline unsigned fuzz_now(async_task *t) { return (unsigned)async_loop_now(async_task_loop(t)); }

/* The world of one input and what the peer needs of the header. */
typedef struct fuzz_world {
    async_loop *loop;
    async_sim_options o;
    uint32_t chunk_seed; /* the peer's chunking */
} fuzz_world;

/* Makes the world of the input's header and moves *data, *size past it; false (no world) for an input
 * longer than max, which the target skips. */
static inline bool fuzz_world_new(fuzz_world *w, const uint8_t **data, size_t *size, size_t max) {
    static const unsigned partial[8] = {0, 0, 0, 0, 10, 30, 60, 90};
    static const unsigned stall[4] = {0, 0, 5, 30};
    static const uint32_t bandwidth[8] = {0, 0, 0, 1, 4, 64, 1024, 100000};
    static const uint32_t window[8] = {0, 0, 0, 0, 0, 4096, 64, 3};
    uint8_t h[4] = {0, 0, 0, 0};
    size_t n = *size < 4 ? *size : 4;
    if (*size > max) return false;
    memcpy(h, *data, n);
    *data += n;
    *size -= n;
    memset(&w->o, 0, sizeof w->o);
    w->o.seed = (uint64_t)h[0] | (uint64_t)(h[3] >> 3) << 8;
    w->o.partial_pct = partial[h[1] & 7];
    w->o.stall_pct = stall[(h[1] >> 3) & 3];
    w->o.stall_max_ms = 1 + h[0] % 40u;
    w->o.reset_pct = (h[1] >> 5) == 7 ? 2 : 0;
    w->o.latency_max_ms = (uint32_t)(h[2] & 15) * 3;
    w->o.latency_min_ms = (h[2] & 16) ? w->o.latency_max_ms : 0;
    w->o.bandwidth = bandwidth[h[2] >> 5];
    w->o.window = window[h[3] & 7];
    w->chunk_seed = (uint32_t)(h[3] >> 3) * 2654435761u + h[0];
    w->loop = async_sim_new(&w->o);
    FUZZ_CHECK(w->loop != NULL);
    return true;
}

/* Calms the world (no fault, no latency) for what a target checks after the input. */
static inline void fuzz_world_calm(fuzz_world *w) {
    async_sim_options calm;
    memset(&calm, 0, sizeof calm);
    FUZZ_CHECK(async_sim_set_faults(w->loop, &calm) == 0);
}

/* The census must read zero (every socket closed, no event, timer or wait left), then the world goes. */
static inline void fuzz_world_free(fuzz_world *w) {
    async_sim_census c;
    FUZZ_CHECK(async_sim_census_of(w->loop, &c) == 0);
    if (fuzz_verbose())
        fprintf(stderr, "world: %llu events, %u ms, hash %016llx\n", (unsigned long long)async_sim_events(w->loop),
                (unsigned)async_loop_now(w->loop), (unsigned long long)async_sim_hash(w->loop));
    if (c.ready || c.timers || c.events || c.polls || c.sockets || c.files) {
        fprintf(stderr, "census: ready %u timers %u events %u polls %u sockets %u files %u\n", c.ready, c.timers,
                c.events, c.polls, c.sockets, c.files);
        FUZZ_CHECK(!"the world's census reads zero");
    }
    async_loop_free(w->loop);
    w->loop = NULL;
}

/* Waits for group g (the server's accept loop, once closed), then lets the world's events still to come
 * happen (a FIN or bytes in flight to an end already closed, the answer to a connect given up): a
 * program's end leaves them behind as TCP does, and they end by themselves. Sleeps 100 ms at a time while
 * there are some, at most 1,000 s of the world's time; what is left then is the census's to report. */
ASYNC_DEF(fuzz_settle, async_group *g; int i; async_sim_census c;) {
    AWAIT_GROUP(t, f->g);
    for (f->i = 0; f->i < 10000; f->i++) {
        FUZZ_CHECK(async_sim_census_of(async_task_loop(t), &f->c) == 0);
        if (f->c.events == 0) break;
        AWAIT_SLEEP(t, 100);
    }
} ASYNC_END_DEF

/* Runs main on the world to its end (it must end without an error), then checks the census and frees
 * the world. */
static inline void fuzz_world_run(fuzz_world *w, async_task *main) {
    FUZZ_CHECK(async_run(w->loop, main) == 0);
    fuzz_world_free(w);
}

/* ---- the peer: sends data in chunks on a connected stream (then ends its stream if asked), and reads
 * what comes back until the end of the stream, both at once (the three where FUZZ_SIM_PEER
 * is defined before this header, fuzz_sender alone where FUZZ_SIM_SENDER is) ---- */

#define FUZZ_PEER_CAP 65536

#if defined FUZZ_SIM_PEER || defined FUZZ_SIM_SENDER
/* Sends data[0, len) in chunks (the world may cut them further), then shuts the write side if shut. */
ASYNC_DEF(fuzz_sender, async_stream *s; const uint8_t *data; size_t len; uint32_t rng; int shut; size_t pos, n;
          int err;) {
    ASYNC_TRY(t) {
        while (f->pos < f->len) {
            f->rng = f->rng * 1103515245u + 12345u;
            f->n = 1 + (f->rng >> 16) % 64;
            if (f->n > f->len - f->pos) f->n = f->len - f->pos;
            f->err = async_stream_write(f->s, f->data + f->pos, f->n);
            if (f->err) break; /* the server closed or the world reset: the rest cannot go */
            f->pos += f->n;
            AWAIT_STREAM_DRAIN(t, f->s, 600000);
            if (((f->rng >> 8) & 3) == 0) AWAIT_SLEEP(t, 1); /* the reader sees the chunk alone */
        }
        if (f->shut && !f->err) f->err = net__stream_shutdown(f->s);
    }
    ASYNC_CATCH(t) {
        f->err = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF
#endif

#ifdef FUZZ_SIM_PEER
/* Reads until the end of the stream (or an error: err) into out (the first FUZZ_PEER_CAP bytes; total
 * counts them all). */
ASYNC_DEF(fuzz_reader, async_stream *s; char *out; size_t len, total, n; char scratch[512]; int err;) {
    ASYNC_TRY(t) {
        for (;;) {
            if (f->len < FUZZ_PEER_CAP)
                AWAIT_STREAM_READ(t, f->s, f->out + f->len, FUZZ_PEER_CAP - f->len, &f->n, 600000);
            else
                AWAIT_STREAM_READ(t, f->s, f->scratch, sizeof f->scratch, &f->n, 600000);
            if (f->n == 0) break;
            if (f->len < FUZZ_PEER_CAP) f->len += f->n;
            f->total += f->n;
        }
    }
    ASYNC_CATCH(t) {
        f->err = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

/* Connects to 127.0.0.1:port of the world, sends head (if any) then data[0, len) while reading, and closes.
 * connect_err: the connect's error; the sender's and reader's in their frames. */
ASYNC_DEF(fuzz_peer, int port; const uint8_t *data; size_t len; uint32_t rng; int shut; char *out; async_stream s;
          fuzz_sender_frame sender; fuzz_reader_frame reader; async_group g; int connect_err;) {
    ASYNC_TRY(t) {
        AWAIT_STREAM_CONNECT(t, &f->s, "127.0.0.1", f->port, 600000);
    }
    ASYNC_CATCH(t) {
        f->connect_err = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
    if (!f->connect_err)
        AWAIT_GATHER_SETTLED(t, &f->g, ASYNC_CALL(fuzz_sender, &f->sender, &f->s, f->data, f->len, f->rng, f->shut),
                             ASYNC_CALL(fuzz_reader, &f->reader, &f->s, f->out));
    async_stream_close(&f->s);
} ASYNC_END_DEF
#endif

#endif
