/* Seed 001, slide 7 "Asynchronous Web Scraping", and seed 004, task 2: fetch several URLs concurrently.
 *
 *   async def fetch_url(session, url):
 *       async with session.get(url) as response:
 *           return await response.text()
 *
 *   async def main():
 *       async with aiohttp.ClientSession() as session:
 *           tasks = [fetch_url(session, url) for url in urls]
 *           results = await asyncio.gather(*tasks)
 *       for url, content in zip(urls, results):
 *           print(f"Fetched {len(content)} bytes from {url}")
 *
 *   web_scraping URL...      e.g. web_scraping http://127.0.0.1:8000/ http://127.0.0.1:8000/a.html
 *
 * Every URL is fetched at once; the lines come in argument order whatever order the answers arrive in. */
#include <stdio.h>
#include <stdlib.h>

#include "async.h"

typedef struct {
    async_task task;
    async_http_client session;
    const char *url;
    size_t bytes;
} fetch_frame;

static async_status fetch_url_run(async_task *t) {
    fetch_frame *f = (fetch_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_TRY(t) {
        AWAIT(t, async_http_get(&f->session, f->url, 10000));
        async_http_body(&f->session, &f->bytes);
    }
    ASYNC_FINALLY(t) {
        async_http_client_close(&f->session);
    }
    ASYNC_END_TRY(t);
    ASYNC_END(t);
}

typedef struct {
    async_task task;
    fetch_frame *fetches;
    int n;
    async_group all;
} main_frame;

static async_status main_run(async_task *t) {
    main_frame *f = (main_frame *)t;
    int i;
    ASYNC_BEGIN(t);
    AWAIT_GATHER_ARRAY(t, &f->all, &f->fetches[0].task, (size_t)f->n, sizeof f->fetches[0]);
    for (i = 0; i < f->n; i++) printf("Fetched %zu bytes from %s\n", f->fetches[i].bytes, f->fetches[i].url);
    ASYNC_END(t);
}

int main(int argc, char **argv) {
    static main_frame m;
    int i, rc;
    if (argc < 2) {
        fprintf(stderr, "usage: %s URL...   (http://host:port/path)\n", argv[0]);
        return 2;
    }
    ASYNC_FRAME_INIT(&m, main_run);
    m.n = argc - 1;
    m.fetches = calloc((size_t)m.n, sizeof *m.fetches);
    if (!m.fetches) return 1;
    for (i = 0; i < m.n; i++) {
        ASYNC_FRAME_INIT(&m.fetches[i], fetch_url_run);
        m.fetches[i].url = argv[i + 1];
    }
    rc = async_main(&m.task);
    free(m.fetches);
    return rc ? 1 : 0;
}
