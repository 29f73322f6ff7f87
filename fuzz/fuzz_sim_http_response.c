/* libFuzzer target: the HTTP/1.1 client's response parsing (sessions: async_http_session_request), over
 * connections of the simulated world (fuzz_sim.h: the input's first four bytes choose the world's
 * options, its seed and the chunking; a fresh world per input). The fifth byte chooses the requests:
 *
 *   bit 0  HEAD instead of GET            bit 2  ASYNC_HTTP_RAISE_FOR_STATUS
 *   bit 1  ASYNC_HTTP_STREAM_RESPONSE     bit 3  a second request on the same session (the server then
 *                                                keeps the connection for 50 ms after each answer)
 *
 * A server of the world reads each request head and answers with the rest of the input, in chunks, then
 * closes the connection (or, with bit 3, waits 50 ms for another request first). Checked: no crash, leak
 * or undefined behaviour (sanitizers); every request ends with a response or with one of the codes its
 * documentation lists, never a timeout (the server always ends the connection); a response has a status
 * in 100..999, a NUL-terminated body no longer than max_body, and header lookups that work; after the
 * session and the server are closed the world's census reads zero. */
#define FUZZ_SIM_SENDER
#include "fuzz_sim.h"

enum { F_HEAD = 1, F_STREAM = 2, F_RAISE = 4, F_TWICE = 8 };

static async_server server;
static const uint8_t *answer;
static size_t answer_len;
static unsigned flags;
static uint32_t chunk_seed;

/* A connection of the server: each request head (up to its empty line) is answered with the input. */
ASYNC_DEF(conn, async_stream *s; const char *line; size_t len; fuzz_sender_frame sender; int answered;) {
    if (fuzz_verbose()) fprintf(stderr, "  server: accepted at %u ms\n", fuzz_now(t));
    ASYNC_TRY(t) {
        for (;;) {
            do AWAIT_STREAM_READLINE(t, f->s, &f->line, &f->len, 4096, f->answered ? 50 : 600000);
            while (f->len > 2);
            if (fuzz_verbose()) fprintf(stderr, "  server: a request at %u ms\n", fuzz_now(t));
            if (f->len == 0) break; /* the client closed */
            AWAIT_CALL(t, fuzz_sender, &f->sender, f->s, answer, answer_len, chunk_seed, 0);
            if (f->sender.err || !(flags & F_TWICE)) break;
            f->answered = 1; /* a kept connection: the server closes it if nothing comes within 50 ms */
        }
    }
    ASYNC_CATCH(t) {
        /* the keep-alive wait's end, or the world's reset: the connection ends either way */
        if (fuzz_verbose())
            fprintf(stderr, "  server: connection ends: %d at %u ms\n", async_caught(t)->code, fuzz_now(t));
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

static async_task *conn_new(void *frame, async_stream *s, void *arg) {
    (void)arg;
    return ASYNC_CALL(conn, (conn_frame *)frame, s);
}

ASYNC_DEF(client, async_http_session session; async_http_call call; int i, err; char buf[97]; size_t n, got;) {
    static const async_http_session_opts opts = {4, 0, 600000, 0, 0, 2048, NULL, false};
    const char *body;
    size_t len;
    FUZZ_CHECK(async_http_session_init(&f->session, &opts) == 0);
    for (f->i = 0; f->i < ((flags & F_TWICE) ? 2 : 1); f->i++) {
        memset(&f->call, 0, sizeof f->call);
        f->call.method = (flags & F_HEAD) ? "HEAD" : "GET";
        f->call.url = "http://127.0.0.1:80/fuzz";
        f->call.flags = ((flags & F_STREAM) ? ASYNC_HTTP_STREAM_RESPONSE : 0) |
                        ((flags & F_RAISE) ? ASYNC_HTTP_RAISE_FOR_STATUS : 0);
        f->err = 0;
        f->got = 0;
        ASYNC_TRY(t) {
            AWAIT_HTTP_REQUEST(t, &f->session, &f->call);
            if (flags & F_STREAM) {
                do {
                    AWAIT_HTTP_BODY_READ(t, &f->call, f->buf, sizeof f->buf, &f->n);
                    FUZZ_CHECK(f->n <= sizeof f->buf);
                    f->got += f->n;
                } while (f->n > 0);
            }
        }
        ASYNC_CATCH(t) {
            f->err = async_caught(t)->code;
        }
        ASYNC_END_TRY(t);
        body = async_http_call_body(&f->call, &len);
        if (fuzz_verbose())
            fprintf(stderr, "request %d at %u ms: code %d status %d body %zu streamed %zu\n", f->i, fuzz_now(t), f->err,
                    async_http_call_status(&f->call), len, f->got);
        /* ETIMEDOUT for the second request alone: sent on the kept connection while the server still sends
         * bytes behind the first answer (they had not come when it ended), its drain waits for a server that
         * does not read until it has sent them, and that server waits for a client that does not read
         * while it drains: both write, neither reads, and the request's deadline ends it, as it would on
         * TCP with buffers full */
        FUZZ_CHECK(f->err == 0 || f->err == ASYNC_EPROTO || f->err == ASYNC_ENODATA || f->err == ASYNC_EMSGSIZE ||
                   f->err == ASYNC_ECONNRESET || (f->err == ASYNC_EIO && (flags & F_RAISE)) ||
                   (f->err == ASYNC_ETIMEDOUT && f->i == 1));
        FUZZ_CHECK(body && body[len] == '\0');
        if (f->err == 0 || f->err == ASYNC_EIO) {
            FUZZ_CHECK(async_http_call_status(&f->call) >= 100 && async_http_call_status(&f->call) <= 999);
            FUZZ_CHECK(len <= 2048);
            FUZZ_CHECK(!(flags & F_STREAM) || len == 0);
            FUZZ_CHECK(f->err == 0 || async_http_call_status(&f->call) >= 400);
            (void)async_http_call_header(&f->call, "Content-Type");
            (void)async_http_call_header(&f->call, "content-length");
            FUZZ_CHECK(async_http_call_url(&f->call) != NULL);
        }
        async_http_call_close(&f->call);
    }
    async_http_session_close(&f->session);
    FUZZ_CHECK(async_http_session_connections(&f->session, NULL) == 0);
} ASYNC_END_DEF

ASYNC_DEF(exchange, async_group g; client_frame client; fuzz_settle_frame settle;) {
    FUZZ_CHECK(async_server_listen(&server, "127.0.0.1", 80, 0, sizeof(conn_frame), conn_new, NULL) == 0);
    ASYNC_SPAWN(t, &f->g, async_server_serve(&server));
    AWAIT_CALL(t, client, &f->client);
    async_server_close(&server, 600000); /* the connections end by themselves: the client has closed */
    AWAIT_CALL(t, fuzz_settle, &f->settle, &f->g);
} ASYNC_END_DEF

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static exchange_frame main;
    fuzz_world w;
    memset(&server, 0, sizeof server);
    if (!fuzz_world_new(&w, &data, &size, 8192)) return 0;
    flags = size ? data[0] : 0;
    answer = size ? data + 1 : data;
    answer_len = size ? size - 1 : 0;
    chunk_seed = w.chunk_seed;
    fuzz_world_run(&w, ASYNC_CALL(exchange, &main));
    return 0;
}
