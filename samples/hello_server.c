/* Seed 002, "Building Scalable Web Servers": an HTTP/1.1 server that answers "hello" (aiohttp's
 * web.Response(text="hello")), and the W4 benchmark target. With --threads N, N loops on N threads listen
 * on one port (SO_REUSEPORT) and the kernel spreads the connections; with --seconds S it shuts down
 * gracefully after S seconds, otherwise it serves until killed. With --tls it speaks https with the
 * certificate and key of two PEM files (one TLS context, shared by the loops), ALPN "http/1.1".
 *
 *   hello_server [--port N] [--threads N] [--seconds S] [--tls CERT KEY]
 *                                                   prints the port (0, the default: a free one) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "async.h"

ASYNC_HTTP_DEF(hello) {
    async_http_response_text(f->res, 200, "hello");
} ASYNC_END_DEF

static const async_http_route routes[] = {ASYNC_HTTP_ROUTE("GET", NULL, hello), ASYNC_HTTP_ROUTES_END};

ASYNC_DEF(server, int seconds; async_http_server http; async_group g;) {
    ASYNC_SPAWN(t, &f->g, async_http_server_serve(&f->http));
    if (f->seconds > 0) {
        AWAIT_SLEEP(t, f->seconds * 1000);
        async_http_server_close(&f->http, 1000);
    }
    AWAIT_GROUP(t, &f->g);
} ASYNC_END_DEF

static struct {
    int port, threads, seconds;
    server_frame *frames;
    async_tls_ctx *tls; /* --tls: https */
} opt = {0, 1, 0, NULL, NULL};

/* Loop i's main: a server on the shared port (loop 0 picks it when asked for port 0). */
static async_task *make_server(unsigned i, void *arg) {
    server_frame *f = &opt.frames[i];
    async_task *task = ASYNC_CALL(server, f, opt.seconds);
    int rc;
    (void)arg;
    rc = async_http_server_listen(&f->http, "127.0.0.1", opt.port, opt.threads > 1 ? ASYNC_SERVER_REUSEPORT : 0,
                                  NULL, routes, NULL);
    if (!rc && opt.tls && (rc = async_http_server_tls(&f->http, opt.tls)) != 0) async_http_server_close(&f->http, 0);
    if (rc) {
        fprintf(stderr, "hello_server: cannot serve on port %d: %s\n", opt.port, async_strerror(rc));
        return NULL;
    }
    if (i == 0) {
        opt.port = async_http_server_port(&f->http);
        printf("Serving on http%s://127.0.0.1:%d/ with %d thread%s\n", opt.tls ? "s" : "", opt.port, opt.threads,
               opt.threads > 1 ? "s" : "");
        fflush(stdout);
    }
    return task;
}

int main(int argc, char **argv) {
    async_tls_opts tls = {true, false, NULL, NULL, NULL, "http/1.1"}; /* a server's, if --tls names its files */
    int i, rc;
    for (i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--port") == 0) opt.port = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--threads") == 0) opt.threads = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--seconds") == 0) opt.seconds = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--tls") == 0 && i + 2 < argc) {
            tls.cert_file = argv[++i];
            tls.key_file = argv[i + 1];
        } else break;
    }
    if (i < argc || opt.threads < 1 || opt.threads > 256 || opt.port < 0 || opt.port > 65535) {
        fprintf(stderr, "usage: %s [--port N] [--threads N] [--seconds S] [--tls CERT KEY]\n", argv[0]);
        return 2;
    }
    if (tls.cert_file && (rc = async_tls_ctx_new(&opt.tls, &tls)) != 0) {
        fprintf(stderr, "hello_server: cannot use %s and %s: %s\n", tls.cert_file, tls.key_file, async_strerror(rc));
        return 1;
    }
    opt.frames = calloc((size_t)opt.threads, sizeof *opt.frames);
    rc = opt.frames ? async_run_threads((unsigned)opt.threads, make_server, NULL) : ASYNC_ENOMEM;
    free(opt.frames);
    async_tls_ctx_free(opt.tls);
    if (rc) fprintf(stderr, "hello_server: %s\n", async_strerror(rc));
    return rc ? 1 : 0;
}
