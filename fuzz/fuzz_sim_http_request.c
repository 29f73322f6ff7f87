/* libFuzzer target: the HTTP/1.1 server's request parsing, over a connection of the simulated world
 * (fuzz_sim.h: the input's first four bytes choose the world's options, its seed and the chunking; a
 * fresh world per input). The server (async_http_server, small limits, as fuzz_http_request.c) listens in
 * the world; a peer sends the rest of the input in chunks, ends its stream and reads until the server
 * closes. Checked: no crash, leak or undefined behaviour (sanitizers); every response starts with
 * "HTTP/1.1 " and a 3-digit status; the server closes the connection once its peer has ended the stream
 * (no connection is left behind: the world would report the wait as a deadlock, or the read's deadline
 * would pass); after the input, in a calmed world, the server still answers a well-formed request with
 * 200; and once the server is closed the world's census reads zero. */
#define FUZZ_SIM_PEER
#include "fuzz_sim.h"
#include "fuzz_http_handler.h"

static async_http_server server;
static char resp[FUZZ_PEER_CAP];


static const uint8_t probe[] = "GET /probe HTTP/1.1\r\nHost: x\r\n\r\n";

/* True if out[0, len) starts as a response must (cut: the world reset the connection, and len bytes of
 * the start are all that came: they must be the start of one). */
static int well_formed(const char *out, size_t len, int cut) {
    static const char start[] = "HTTP/1.1 ";
    size_t i;
    if (!cut && len < 12) return 0;
    for (i = 0; i < len && i < 9; i++)
        if (out[i] != start[i]) return 0;
    return (len <= 9 || (out[9] >= '1' && out[9] <= '5')) && (len <= 10 || (out[10] >= '0' && out[10] <= '9'));
}

ASYNC_DEF(exchange, fuzz_world *w; const uint8_t *data; size_t len; async_group g; fuzz_peer_frame peer;
          fuzz_settle_frame settle;) {
    static const async_http_limits limits = {256, 1024, 16, 4096, 2000, 2000, 1000};
    FUZZ_CHECK(async_http_server_listen(&server, "127.0.0.1", 80, 0, &limits, routes, NULL) == 0);
    ASYNC_SPAWN(t, &f->g, async_http_server_serve(&server));
    AWAIT_CALL(t, fuzz_peer, &f->peer, 80, f->data, f->len, f->w->chunk_seed, 1, resp);
    if (fuzz_verbose())
        fprintf(stderr, "connect %d send %d read %d: %zu bytes: %.40s\n", f->peer.connect_err, f->peer.sender.err,
                f->peer.reader.err, f->peer.reader.len, resp);
    /* a peer that ended its stream is answered (or refused) and closed, never waited on */
    FUZZ_CHECK(f->peer.connect_err == 0 || f->peer.connect_err == ASYNC_ECONNRESET);
    FUZZ_CHECK(f->peer.reader.err == 0 || f->peer.reader.err == ASYNC_ECONNRESET);
    FUZZ_CHECK(f->peer.reader.len == 0 ||
               well_formed(resp, f->peer.reader.len, f->peer.reader.err == ASYNC_ECONNRESET));
    /* and the server still serves */
    fuzz_world_calm(f->w);
    AWAIT_CALL(t, fuzz_peer, &f->peer, 80, probe, sizeof probe - 1, 1, 1, resp);
    FUZZ_CHECK(f->peer.connect_err == 0 && f->peer.sender.err == 0 && f->peer.reader.err == 0);
    FUZZ_CHECK(f->peer.reader.len > 13 && memcmp(resp, "HTTP/1.1 200 ", 13) == 0);
    async_http_server_close(&server, 0);
    AWAIT_CALL(t, fuzz_settle, &f->settle, &f->g);
} ASYNC_END_DEF

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static exchange_frame main;
    fuzz_world w;
    memset(&server, 0, sizeof server);
    if (!fuzz_world_new(&w, &data, &size, 8192)) return 0;
    fuzz_world_run(&w, ASYNC_CALL(exchange, &main, &w, data, size));
    return 0;
}
