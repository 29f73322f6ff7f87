/* Simulated TCP (the world's network, sim_net.c) under the unchanged streams, servers and HTTP: an echo
 * with exact virtual timings from latency and bandwidth, partial reads and writes that keep every byte
 * in order, window back-pressure, refused connects, resets, stalls, partitions and their heal, the end of
 * the stream, many clients, HTTP requests, one seed replaying a run with faults bit for bit, a loop freed
 * with live connections, and bad inputs. Everything runs in virtual time: no socket, no real wait. */
#include "test.h"
#include "util.h"

/* A world with a fixed latency (min = max) and bandwidth, no faults. */
static async_loop *sn_loop(uint64_t seed, uint32_t latency, uint32_t bandwidth) {
    async_sim_options o = async_sim_defaults(seed);
    async_loop *loop;
    o.latency_min_ms = o.latency_max_ms = latency;
    o.bandwidth = bandwidth;
    loop = async_sim_new(&o);
    ASSERT(loop != NULL);
    return loop;
}

/* Runs main on loop to its end: its code. */
static int sn_run(async_loop *loop, async_task *main) { return async_run(loop, main); }

/* ---- an echo server of the world: echoes what it reads until the end of the stream ---- */

static int sn_echo_error; /* what the last echo connection raised (0: it ended at the end of stream) */

ASYNC_DEF(sn_echo, async_stream *s; char buf[4096]; size_t n;) {
    ASYNC_TRY(t) {
        for (;;) {
            AWAIT_STREAM_READ(t, f->s, f->buf, sizeof f->buf, &f->n, -1);
            if (f->n == 0) break;
            if (async_stream_write(f->s, f->buf, f->n)) ASYNC_THROW(t, ASYNC_EIO, "echo write failed");
            AWAIT_STREAM_DRAIN(t, f->s, -1);
        }
        sn_echo_error = 0;
    }
    ASYNC_CATCH(t) {
        sn_echo_error = async_caught(t)->code;
        ASYNC_RERAISE(t);
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

static async_task *sn_echo_new(void *frame, async_stream *s, void *arg) {
    (void)arg;
    return ASYNC_CALL(sn_echo, (sn_echo_frame *)frame, s);
}

/* ---- echo with exact timings ---- */

ASYNC_DEF(sn_timed, async_server srv; async_group g; async_stream c; char out[1000], in[1000];
          async_ms connected, answered;) {
    ASSERT_EQ(async_server_listen(&f->srv, "127.0.0.1", 0, 0, sizeof(sn_echo_frame), sn_echo_new, NULL), 0);
    ASYNC_SPAWN(t, &f->g, async_server_serve(&f->srv));
    AWAIT_STREAM_CONNECT(t, &f->c, "127.0.0.1", async_server_port(&f->srv), 1000);
    f->connected = async_loop_now(async_task_loop(t));
    memset(f->out, 'x', sizeof f->out);
    ASSERT_EQ(async_stream_write(&f->c, f->out, sizeof f->out), 0);
    ASSERT_EQ(async_stream_pending(&f->c), 0); /* the window took it */
    AWAIT_STREAM_READEXACTLY(t, &f->c, f->in, sizeof f->in, 1000);
    f->answered = async_loop_now(async_task_loop(t));
    ASSERT(memcmp(f->in, f->out, sizeof f->in) == 0);
    async_stream_close(&f->c);
    async_server_close(&f->srv, 1000);
    AWAIT_GROUP(t, &f->g);
} ASYNC_END_DEF

TEST(sim_net_echo_has_exact_virtual_timings) {
    static sn_timed_frame f;
    async_loop *loop = sn_loop(1, 10, 100);
    ASSERT_EQ(sn_run(loop, ASYNC_CALL(sn_timed, &f)), 0);
    ASSERT_EQ(f.connected, 20); /* one round trip */
    /* 1000 bytes at 100 bytes/ms: 10 ms on the link and 10 ms of latency, each way */
    ASSERT_EQ(f.answered, 20 + 20 + 20);
    ASSERT_EQ(f.srv.accepted, 1);
    ASSERT_EQ(sn_echo_error, 0);
    ASSERT(async_sim_events(loop) > 0);
    async_loop_free(loop);
}
