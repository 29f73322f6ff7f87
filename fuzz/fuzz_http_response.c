/* libFuzzer target: the HTTP/1.1 client's response parsing. A listening socket on 127.0.0.1 stands in
 * for a server: for each input, async_http_client_get connects, and a coroutine of this file accepts, reads
 * the request head and answers with the input, in chunks (see fuzz_net.h), then closes. Checked: no
 * crash, leak or undefined behaviour (sanitizers); the GET ends with a response or with one of the
 * codes its documentation lists, never a timeout (the peer always closes); a response has a status in
 * 100..999, a NUL-terminated body no longer than max_body, and header lookups that work. */
#include "fuzz_net.h"

#include <arpa/inet.h>
#include <netinet/in.h>

typedef struct {
    async_task task;
    async_io io;
    async_stream s;
    const char *line;
    size_t len;
    const uint8_t *data;
    size_t size;
    fuzz_sender sender;
} peer_frame;

typedef struct {
    async_task task;
    async_http_client client;
    char url[64];
    int err;
} get_frame;

typedef struct {
    async_task task;
    peer_frame *peer;
    get_frame *get;
    async_group g;
} main_frame;

static int listen_fd = -1, listen_port;

static async_status peer_run(async_task *t) {
    peer_frame *f = (peer_frame *)t;
    int fd;
    ASYNC_BEGIN(t);
    ASYNC_TRY(t) {
        AWAIT_READABLE(t, &f->io, listen_fd, 3000);
        fd = accept(listen_fd, NULL, NULL);
        FUZZ_CHECK(fd >= 0);
        FUZZ_CHECK(async_stream_open(&f->s, fd) == 0);
        do AWAIT_STREAM_READLINE(t, &f->s, &f->line, &f->len, 4096, 3000);
        while (f->len > 2); /* up to the empty line that ends the head */
        AWAIT(t, fuzz_sender_new(&f->sender, async_stream_fd(&f->s), f->data, f->size, 0));
    }
    ASYNC_FINALLY(t) {
        async_stream_close(&f->s);
    }
    ASYNC_END_TRY(t);
    ASYNC_END(t);
}

static async_status get_run(async_task *t) {
    get_frame *f = (get_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_TRY(t) {
        AWAIT(t, async_http_client_get(&f->client, f->url, 3000));
    }
    ASYNC_CATCH(t) {
        f->err = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
    ASYNC_END(t);
}

static async_status main_run(async_task *t) {
    main_frame *f = (main_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT_GATHER_SETTLED(t, &f->g, &f->peer->task, &f->get->task);
    ASYNC_END(t);
}

static void start_listening(void) {
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    FUZZ_CHECK(listen_fd >= 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    FUZZ_CHECK(bind(listen_fd, (struct sockaddr *)&a, sizeof a) == 0 && listen(listen_fd, 8) == 0);
    FUZZ_CHECK(getsockname(listen_fd, (struct sockaddr *)&a, &alen) == 0);
    listen_port = ntohs(a.sin_port);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static peer_frame peer;
    static get_frame get;
    static main_frame m;
    const char *body;
    size_t len;
    if (size > 8192) return 0;
    if (listen_fd < 0) start_listening();
    ASYNC_FRAME_INIT(&peer, peer_run);
    peer.data = data;
    peer.size = size;
    ASYNC_FRAME_INIT(&get, get_run);
    get.client.max_body = 2048;
    snprintf(get.url, sizeof get.url, "http://127.0.0.1:%d/fuzz", listen_port);
    ASYNC_FRAME_INIT(&m, main_run);
    m.peer = &peer;
    m.get = &get;
    FUZZ_CHECK(async_run(fuzz_loop(), &m.task) == 0);
    FUZZ_CHECK(async_task_code(&peer.task) == 0);
    FUZZ_CHECK(get.err == 0 || get.err == ASYNC_EPROTO || get.err == ASYNC_ENODATA || get.err == ASYNC_EMSGSIZE ||
               get.err == ASYNC_ECONNRESET);
    body = async_http_client_body(&get.client, &len);
    FUZZ_CHECK(body && body[len] == '\0');
    if (get.err == 0) {
        FUZZ_CHECK(async_http_client_status(&get.client) >= 100 && async_http_client_status(&get.client) <= 999);
        FUZZ_CHECK(len <= 2048);
        (void)async_http_client_header(&get.client, "Content-Type");
        (void)async_http_client_header(&get.client, "content-length");
    }
    async_http_client_close(&get.client);
    return 0;
}
