/* W4 of ../shared/bench: an HTTP/1.1 keep-alive "hello" server on 127.0.0.1, loaded by wrk.
 *   w4 W4 PORT SECONDS [THREADS]     (the peers' arguments; prints the peers' W4 line at the end) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "async.h"

static int hello(const async_http_request *req, async_http_response *res, void *arg) {
    (void)req;
    (void)arg;
    res->body = "hello";
    res->body_len = 5;
    return 0;
}

typedef struct {
    async_task task;
    async_http_server http;
    async_group g;
    int ms;
} w4_frame;

static async_status w4_run(async_task *t) {
    w4_frame *f = (w4_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_SPAWN(t, &f->g, async_http_server_serve(&f->http));
    AWAIT_SLEEP(t, f->ms);
    async_http_server_close(&f->http, 0);
    AWAIT_GROUP(t, &f->g);
    ASYNC_END(t);
}

static w4_frame *frames;
static int port, threads = 1;
static double seconds;

static async_task *make(unsigned i, void *arg) {
    w4_frame *f = &frames[i];
    (void)arg;
    ASYNC_FRAME_INIT(f, w4_run);
    f->ms = (int)(seconds * 1000);
    if (async_http_server_listen(&f->http, "127.0.0.1", port, threads > 1 ? ASYNC_SERVER_REUSEPORT : 0, NULL, hello,
                                 NULL)) {
        perror("bind/listen");
        return NULL;
    }
    return &f->task;
}

int main(int argc, char **argv) {
    int rc;
    if (argc < 4 || strcmp(argv[1], "W4") != 0) {
        fprintf(stderr, "usage: %s W4 PORT SECONDS [THREADS]\n", argv[0]);
        return 2;
    }
    port = atoi(argv[2]);
    seconds = atof(argv[3]);
    if (argc > 4) threads = atoi(argv[4]);
    if (threads < 1) threads = 1;
    frames = calloc((size_t)threads, sizeof *frames);
    if (!frames) return 1;
    rc = async_run_threads((unsigned)threads, make, NULL);
    free(frames);
    printf("workload=W4 impl=async.h threads=%d port=%d served_s=%g\n", threads, port, seconds);
    return rc ? 1 : 0;
}
