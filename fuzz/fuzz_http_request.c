/* libFuzzer target: the HTTP/1.1 server's request parsing. A server (async_http_server, small limits)
 * listens on 127.0.0.1 for the whole run; each input is one connection that sends the input in chunks
 * (see fuzz_net.h), shuts its write side and reads until the server closes. Checked: no crash, leak or
 * undefined behaviour (sanitizers); every response starts with "HTTP/1.1 " and a 3-digit status; the
 * server closes the connection once its peer has ended the stream (no connection is left behind); and
 * after each input the server still answers a well-formed request with 200. */
#include "fuzz_net.h"
#include "fuzz_http_handler.h"

typedef struct {
    async_task task;
    async_stream s;
    const uint8_t *data;
    size_t size;
    fuzz_sender sender;
    char resp[65536];
    size_t len, n;
    int err;
} client_frame;

static async_http_server server;
static int server_port;


static async_status client_run(async_task *t) {
    client_frame *f = (client_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_TRY(t) {
        AWAIT_STREAM_CONNECT(t, &f->s, "127.0.0.1", server_port, 2000);
        AWAIT(t, fuzz_sender_new(&f->sender, async_stream_fd(&f->s), f->data, f->size, 1));
        for (;;) {
            AWAIT_STREAM_READ(t, &f->s, f->resp + f->len, sizeof f->resp - f->len, &f->n, 3000);
            if (f->n == 0) break;
            f->len += f->n;
            FUZZ_CHECK(f->len < sizeof f->resp); /* responses to at most 64 KiB of requests */
        }
    }
    ASYNC_CATCH(t) {
        f->err = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
    async_stream_close(&f->s);
    ASYNC_END(t);
}

static void start_server(void) {
    static const async_http_limits limits = {256, 1024, 16, 4096, 2000, 2000, 1000};
    FUZZ_CHECK(async_http_server_listen(&server, "127.0.0.1", 0, 0, &limits, routes, NULL) == 0);
    server_port = async_http_server_port(&server);
    FUZZ_CHECK(async_spawn(fuzz_loop(), async_http_server_serve(&server)) == 0);
}

static void exchange(client_frame *c, const uint8_t *data, size_t size) {
    ASYNC_FRAME_INIT(c, client_run);
    c->data = data;
    c->size = size;
    FUZZ_CHECK(async_run(fuzz_loop(), &c->task) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static client_frame c;
    static const uint8_t probe[] = "\x05GET /probe HTTP/1.1\r\nHost: x\r\n\r\n";
    if (size > 8192) return 0;
    if (!server_port) start_server();
    exchange(&c, data, size);
    /* a peer that ended its stream is answered (or refused) and closed, never waited on */
    FUZZ_CHECK(c.err == 0 || c.err == ASYNC_ECONNRESET);
    FUZZ_CHECK(c.len == 0 || (c.len >= 12 && memcmp(c.resp, "HTTP/1.1 ", 9) == 0 && c.resp[9] >= '1' &&
                              c.resp[9] <= '5' && c.resp[10] >= '0' && c.resp[10] <= '9'));
    /* and the server still serves */
    exchange(&c, probe, sizeof probe - 1);
    FUZZ_CHECK(c.err == 0 && c.len > 12 && memcmp(c.resp, "HTTP/1.1 200 ", 13) == 0);
    return 0;
}
