/* libFuzzer target: the WebSocket endpoint (http_ws.c, server role) receiving frames from the input over a
 * connection of the simulated world (fuzz_sim.h: the input's first four bytes choose the world's options,
 * its seed and the chunking; a fresh world per input). The fifth byte sets the endpoint's limits: bits
 * 0-5 max_message = 1 + 16 x (0..63), bit 6 max_frame = max_message / 2 + 1 (else the default, all of it).
 * The rest is sent as is, as the client's side of the connection after the upgrade (frames must be
 * masked: the seeds mask with the key 0, which leaves the payload readable), then the peer ends its
 * stream. The server's connection opens an endpoint on its stream and echoes every message until the
 * close or an error.
 *
 * Checked: no crash, leak or undefined behaviour (sanitizers); the endpoint ends with a code its
 * documentation lists (none, or ASYNC_EPROTO, ASYNC_EMSGSIZE after a peer's error, ASYNC_ECONNRESET when the
 * world resets), an echo is never refused (a text message received is valid UTF-8); what the server sent
 * is a sequence of whole unmasked frames with FIN set, of known opcodes, control payloads within 125
 * bytes, nothing after a close frame, and, after a peer's error, a close frame with the matching status
 * (1002 or 1007 for ASYNC_EPROTO, 1009 for ASYNC_EMSGSIZE) unless the world reset the connection; the
 * world's census reads zero after each input. */
#define FUZZ_SIM_PEER
#include "fuzz_sim.h"

static async_server server;
static async_ws_limits limits;
static int ws_err, may_reset;
static char out[FUZZ_PEER_CAP];

ASYNC_DEF(ws_conn, async_stream *s; async_ws ws; async_ws_message msg; int err;) {
    FUZZ_CHECK(async_ws_open(&f->ws, f->s, &limits) == 0);
    ASYNC_TRY(t) {
        for (;;) {
            AWAIT_WS_RECV(t, &f->ws, &f->msg, 600000);
            if (f->msg.opcode == ASYNC_WS_CLOSE) break;
            FUZZ_CHECK(f->msg.opcode == ASYNC_WS_TEXT || f->msg.opcode == ASYNC_WS_BINARY);
            FUZZ_CHECK(f->msg.len <= limits.max_message && f->msg.data && f->msg.data[f->msg.len] == '\0');
            AWAIT_WS_SEND(t, &f->ws, f->msg.opcode, f->msg.data, f->msg.len, 600000);
        }
    }
    ASYNC_CATCH(t) {
        f->err = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
    async_ws_free(&f->ws);
    ws_err = f->err;
} ASYNC_END_DEF

static async_task *ws_conn_new(void *frame, async_stream *s, void *arg) {
    (void)arg;
    return ASYNC_CALL(ws_conn, (ws_conn_frame *)frame, s);
}

/* Checks the server's frames in p[0, len); cut: the connection was reset, so the end may be missing.
 * Returns the status of the server's close frame (0: none, -1: one without a status). */
static int check_frames(const uint8_t *p, size_t len, int cut) {
    int close_code = 0;
    while (len > 0) {
        size_t hdr = 2, plen;
        int op;
        FUZZ_CHECK(close_code == 0); /* nothing after a close */
        if (len < 2) break;
        op = p[0] & 15;
        FUZZ_CHECK((p[0] & 0xF0) == 0x80);  /* FIN, no RSV bits */
        FUZZ_CHECK((p[1] & 0x80) == 0);     /* a server does not mask */
        plen = p[1] & 127;
        if (plen == 126) {
            hdr = 4;
            if (len < hdr) break;
            plen = (size_t)p[2] << 8 | p[3];
        } else if (plen == 127) {
            hdr = 10;
            FUZZ_CHECK(len < hdr || (p[2] == 0 && p[3] == 0 && p[4] == 0 && p[5] == 0)); /* < 4 GiB here */
            if (len < hdr) break;
            plen = (size_t)p[6] << 24 | (size_t)p[7] << 16 | (size_t)p[8] << 8 | p[9];
        }
        FUZZ_CHECK(op == ASYNC_WS_TEXT || op == ASYNC_WS_BINARY || op == ASYNC_WS_CLOSE || op == ASYNC_WS_PONG);
        FUZZ_CHECK(op < 8 || plen <= 125);
        if (len - hdr < plen) break;
        if (op == ASYNC_WS_CLOSE) {
            FUZZ_CHECK(plen != 1);
            close_code = plen >= 2 ? (int)p[hdr] << 8 | p[hdr + 1] : -1;
        }
        p += hdr + plen;
        len -= hdr + plen;
    }
    FUZZ_CHECK(len == 0 || cut); /* only a reset leaves a frame unfinished */
    return close_code;
}

ASYNC_DEF(exchange, fuzz_world *w; const uint8_t *data; size_t len; async_group g; fuzz_peer_frame peer;
          fuzz_settle_frame settle;) {
    int cut, close_code;
    FUZZ_CHECK(async_server_listen(&server, "127.0.0.1", 80, 0, sizeof(ws_conn_frame), ws_conn_new, NULL) == 0);
    ASYNC_SPAWN(t, &f->g, async_server_serve(&server));
    AWAIT_CALL(t, fuzz_peer, &f->peer, 80, f->data, f->len, f->w->chunk_seed, 1, out);
    async_server_close(&server, 600000);
    AWAIT_CALL(t, fuzz_settle, &f->settle, &f->g);
    if (fuzz_verbose())
        fprintf(stderr, "ws: connect %d send %d read %d\n", f->peer.connect_err, f->peer.sender.err,
                f->peer.reader.err);
    FUZZ_CHECK(ws_err != -1 || server.accepted == 0); /* the endpoint's connection ran to its end */
    FUZZ_CHECK(f->peer.connect_err == 0 || (may_reset && f->peer.connect_err == ASYNC_ECONNRESET));
    /* a reset: the world's, or the server's close with the peer's bytes unread (after a peer's error, or
     * bytes behind the close), as TCP resets it */
    FUZZ_CHECK(f->peer.reader.err == 0 || f->peer.reader.err == ASYNC_ECONNRESET);
    cut = f->peer.reader.err != 0 || f->peer.reader.total > FUZZ_PEER_CAP;
    if (fuzz_verbose()) {
        size_t i;
        fprintf(stderr, "ws: the server sent");
        for (i = 0; i < f->peer.reader.len && i < 64; i++) fprintf(stderr, " %02x", (unsigned char)out[i]);
        fprintf(stderr, "\n");
    }
    close_code = check_frames((const uint8_t *)out, f->peer.reader.len, cut);
    if (fuzz_verbose())
        fprintf(stderr, "ws: code %d, %zu bytes back, close %d, reader %d\n", ws_err, f->peer.reader.total, close_code,
                f->peer.reader.err);
    FUZZ_CHECK(ws_err == 0 || ws_err == ASYNC_EPROTO || ws_err == ASYNC_EMSGSIZE ||
               (may_reset && (ws_err == ASYNC_ECONNRESET || ws_err == ASYNC_EPIPE)));
    if (!cut && ws_err == ASYNC_EPROTO) FUZZ_CHECK(close_code == 1002 || close_code == 1007);
    if (!cut && ws_err == ASYNC_EMSGSIZE) FUZZ_CHECK(close_code == 1009);
} ASYNC_END_DEF

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static exchange_frame main;
    fuzz_world w;
    uint8_t l;
    memset(&server, 0, sizeof server);
    if (!fuzz_world_new(&w, &data, &size, 8192)) return 0;
    may_reset = w.o.reset_pct > 0;
    l = size ? data[0] : 0;
    memset(&limits, 0, sizeof limits);
    limits.max_message = 1 + 16 * (size_t)(l & 63);
    limits.max_frame = (l & 64) ? limits.max_message / 2 + 1 : 0;
    limits.close_ms = 600000; /* the close frame always leaves (the peer reads to the end): checked whole */
    if (limits.max_frame == 0) limits.max_frame = limits.max_message;
    ws_err = -1;
    fuzz_world_run(&w, ASYNC_CALL(exchange, &main, &w, size ? data + 1 : data, size ? size - 1 : 0));
    return 0;
}
