/* Seed 003, section 4.2: "Fetching Data from an API" (and seed 000's fetch of one URL): GET a JSON
 * document and print it. A status other than 200 fails the program.
 *
 *   fetch_json URL           e.g. fetch_json http://127.0.0.1:8000/posts/1.json */
#include <stdio.h>

#include "async.h"

ASYNC_DEF(fetch_data, const char *url; async_http_client session;) {
    ASYNC_WITH(t) { /* async with session.get(url) as response */
        AWAIT(t, async_http_client_get(&f->session, f->url, 10000));
        if (async_http_client_status(&f->session) != 200) ASYNC_THROW(t, ASYNC_EUSER, "the API did not answer 200 OK");
        printf("%s\n", async_http_client_body(&f->session, NULL));
    } ASYNC_WITH_EXIT(t) {
        async_http_client_close(&f->session);
    } ASYNC_END_WITH(t);
} ASYNC_END_DEF

int main(int argc, char **argv) {
    static fetch_data_frame m;
    if (argc != 2) {
        fprintf(stderr, "usage: %s URL   (http://host:port/path)\n", argv[0]);
        return 2;
    }
    return async_main(ASYNC_CALL(fetch_data, &m, argv[1])) ? 1 : 0;
}
