/* W6: an HTTP/1.1 keep-alive server whose coroutine handler awaits a 10 ms sleep (a stand-in for a
 * backend) before it answers "hello". Under wrk -c500 the ceiling is 500 requests in flight / 10 ms =
 * 50,000 req/s; what the runtime costs shows as req/s under it, p99 over 10 ms and CPU per request.
 *
 *   w6 PORT SECONDS     serves SECONDS s; port 0 picks a free one; prints "impl=async.h port=N" once
 *                       listening */
#include <stdio.h>
#include <stdlib.h>

#include "async.h"

ASYNC_HTTP_DEF(slow_hello) {
    AWAIT_SLEEP(t, 10);
    async_http_response_text(f->res, 200, "hello");
} ASYNC_END_DEF

static const async_http_route routes[] = {ASYNC_HTTP_ROUTE("GET", "/", slow_hello), ASYNC_HTTP_ROUTES_END};

ASYNC_DEF(server, int port, seconds; async_http_server http; async_group g;) {
    int rc = async_http_server_listen(&f->http, "127.0.0.1", f->port, 0, NULL, routes, NULL);
    if (rc) ASYNC_THROW_ERROR(t, async_error_of(rc));
    printf("impl=async.h port=%d\n", async_http_server_port(&f->http));
    fflush(stdout);
    ASYNC_SPAWN(t, &f->g, async_http_server_serve(&f->http));
    AWAIT_SLEEP(t, f->seconds * 1000);
    async_http_server_close(&f->http, 1000);
    AWAIT_GROUP(t, &f->g);
} ASYNC_END_DEF

int main(int argc, char **argv) {
    static server_frame m;
    int port = argc == 3 ? atoi(argv[1]) : -1, seconds = argc == 3 ? atoi(argv[2]) : 0;
    if (port < 0 || port > 65535 || seconds < 1) {
        fprintf(stderr, "usage: %s PORT SECONDS\n", argv[0]);
        return 2;
    }
    return async_main_exit(async_main(ASYNC_CALL(server, &m, port, seconds)));
}
