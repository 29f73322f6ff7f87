/* Seed 001, slide 7 "Real-Life Example: Asynchronous Web Scraping", and seed 004's task 2: fetch several
 * URLs concurrently. Every URL is fetched at once; the lines come in argument order whatever order the
 * answers arrive in.
 *
 *   web_scraping URL...      e.g. web_scraping http://127.0.0.1:8000/ http://127.0.0.1:8000/a.html */
#include <stdio.h>
#include <stdlib.h>

#include "async.h"

ASYNC_DEF(fetch_url, const char *url; async_http_client session; size_t bytes;) {
    ASYNC_WITH(t) { /* async with session.get(url) as response */
        AWAIT(t, async_http_client_get(&f->session, f->url, 10000));
        async_http_client_body(&f->session, &f->bytes); /* return await response.text() */
    } ASYNC_WITH_EXIT(t) {
        async_http_client_close(&f->session);
    } ASYNC_END_WITH(t);
} ASYNC_END_DEF

ASYNC_DEF(main, char **urls; int n; fetch_url_frame *fetches; async_group all;) {
    for (int i = 0; i < f->n; i++) ASYNC_CALL(fetch_url, &f->fetches[i], f->urls[i]);
    AWAIT_GATHER_ARRAY(t, &f->all, &f->fetches[0].task, (size_t)f->n, sizeof f->fetches[0]);
    for (int i = 0; i < f->n; i++) printf("Fetched %zu bytes from %s\n", f->fetches[i].bytes, f->urls[i]);
} ASYNC_END_DEF

int main(int argc, char **argv) {
    static main_frame m;
    fetch_url_frame *fetches;
    int rc;
    if (argc < 2) {
        fprintf(stderr, "usage: %s URL...   (http://host:port/path)\n", argv[0]);
        return 2;
    }
    fetches = calloc((size_t)argc - 1, sizeof *fetches);
    if (!fetches) return 1;
    rc = async_main(ASYNC_CALL(main, &m, argv + 1, argc - 1, fetches));
    free(fetches);
    return rc ? 1 : 0;
}
