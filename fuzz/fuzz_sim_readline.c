/* libFuzzer target: a stream's reads (AWAIT_STREAM_READLINE, _READEXACTLY, _READ) over a connection of
 * the simulated world, whose chunking, partial receives, latency, stalls and resets come from the input
 * (fuzz_sim.h: its first four bytes; a fresh world per input). The next four bytes are the reader's
 * program, repeated until the stream ends: each byte's low two bits are the operation (0 and 3 readline,
 * 1 readexactly, 2 read), the other six its argument a (readline's limit 1 + 6a, readexactly's count and
 * read's capacity 1 + a). A peer sends the rest of the input in chunks and ends its stream; the server's
 * connection runs the program on its end.
 *
 * Checked against a model of the input: each read returns exactly the input's next bytes; a line ends in
 * '\n' except the last one of the stream, and is no longer than the limit; ASYNC_EOVERFLOW exactly when
 * the next line is longer than the limit, ASYNC_ENODATA exactly when fewer bytes than asked are left, 0
 * (end of stream) only once everything was read; a reset (when the world resets) only cuts it short.
 * Then the world's census reads zero. No crash, leak or undefined behaviour (sanitizers). */
#define FUZZ_SIM_PEER
#include "fuzz_sim.h"

static async_server server;
static const uint8_t *payload;
static size_t payload_len;
static uint8_t prog[4];
static int may_reset;

/* Checks that what was read is the input's next n bytes. */
static void expect_next(size_t *pos, const void *got, size_t n) {
    FUZZ_CHECK(n <= payload_len - *pos && memcmp(got, payload + *pos, n) == 0);
    *pos += n;
}

/* The model's answer for readline(limit) at pos: the line's length (0 at the end), or -1 for
 * ASYNC_EOVERFLOW. */
static long line_at(size_t pos, size_t limit) {
    const uint8_t *nl = memchr(payload + pos, '\n', payload_len - pos);
    size_t n = nl ? (size_t)(nl - (payload + pos)) + 1 : payload_len - pos;
    return n > limit ? -1 : (long)n;
}

ASYNC_DEF(reader, async_stream *s; unsigned pc; size_t pos, n, want; long expect; const char *line;
          char buf[64]; int err, op, stop;) {
    while (!f->stop) {
        f->op = prog[f->pc % 4] & 3;
        f->want = (size_t)(prog[f->pc % 4] >> 2);
        f->pc++;
        f->err = 0;
        ASYNC_TRY(t) {
            if (f->op == 0 || f->op == 3) {
                f->want = 1 + 6 * f->want;
                f->expect = line_at(f->pos, f->want);
                AWAIT_STREAM_READLINE(t, f->s, &f->line, &f->n, f->want, 600000);
                FUZZ_CHECK(f->n <= f->want && (long)f->n == f->expect);
                FUZZ_CHECK(f->n == 0 || f->line[f->n - 1] == '\n' || f->pos + f->n == payload_len);
                expect_next(&f->pos, f->line, f->n);
                f->stop = f->n == 0;
            } else if (f->op == 1) {
                f->want += 1;
                AWAIT_STREAM_READEXACTLY(t, f->s, f->buf, f->want, 600000);
                expect_next(&f->pos, f->buf, f->want);
            } else {
                f->want += 1;
                AWAIT_STREAM_READ(t, f->s, f->buf, f->want, &f->n, 600000);
                FUZZ_CHECK(f->n <= f->want && (f->n > 0 || f->pos == payload_len));
                expect_next(&f->pos, f->buf, f->n);
                f->stop = f->n == 0;
            }
        }
        ASYNC_CATCH(t) {
            f->err = async_caught(t)->code;
            f->stop = 1;
        }
        ASYNC_END_TRY(t);
        if (f->err == ASYNC_ECONNRESET) {
            FUZZ_CHECK(may_reset);
        } else if (f->err == ASYNC_EOVERFLOW) {
            FUZZ_CHECK((f->op == 0 || f->op == 3) && f->expect == -1);
        } else if (f->err == ASYNC_ENODATA) {
            FUZZ_CHECK(f->op == 1 && payload_len - f->pos < f->want);
        } else {
            FUZZ_CHECK(f->err == 0);
        }
    }
    if (fuzz_verbose())
        fprintf(stderr, "reader: %u reads, %zu of %zu bytes, code %d\n", f->pc, f->pos, payload_len, f->err);
} ASYNC_END_DEF

static async_task *reader_new(void *frame, async_stream *s, void *arg) {
    (void)arg;
    return ASYNC_CALL(reader, (reader_frame *)frame, s);
}

static char out[FUZZ_PEER_CAP];

ASYNC_DEF(exchange, fuzz_world *w; async_group g; fuzz_peer_frame peer; fuzz_settle_frame settle;) {
    FUZZ_CHECK(async_server_listen(&server, "127.0.0.1", 80, 0, sizeof(reader_frame), reader_new, NULL) == 0);
    ASYNC_SPAWN(t, &f->g, async_server_serve(&server));
    AWAIT_CALL(t, fuzz_peer, &f->peer, 80, payload, payload_len, f->w->chunk_seed, 1, out);
    FUZZ_CHECK(f->peer.connect_err == 0 || (may_reset && f->peer.connect_err == ASYNC_ECONNRESET));
    FUZZ_CHECK(f->peer.reader.total == 0); /* the server sends nothing */
    async_server_close(&server, 600000);
    AWAIT_CALL(t, fuzz_settle, &f->settle, &f->g);
    FUZZ_CHECK(server.accepted <= 1);
} ASYNC_END_DEF

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static exchange_frame main;
    fuzz_world w;
    size_t n;
    memset(&server, 0, sizeof server);
    if (!fuzz_world_new(&w, &data, &size, 8192)) return 0;
    may_reset = w.o.reset_pct > 0;
    memset(prog, 0, sizeof prog);
    n = size < 4 ? size : 4;
    memcpy(prog, data, n);
    payload = data + n;
    payload_len = size - n;
    fuzz_world_run(&w, ASYNC_CALL(exchange, &main, &w));
    return 0;
}
