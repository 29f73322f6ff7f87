/* Seed 003, "Making Asynchronous HTTP Requests": GET a JSON document from an API and print it.
 *
 *   async def fetch_data(session, url):
 *       async with session.get(url) as response:
 *           data = await response.text()
 *           print(data)
 *
 *   async def main():
 *       async with aiohttp.ClientSession() as session:
 *           await fetch_data(session, 'https://jsonplaceholder.typicode.com/posts/1')
 *
 *   fetch_json URL           e.g. fetch_json http://127.0.0.1:8000/posts/1.json */
#include <stdio.h>

#include "async.h"

typedef struct {
    async_task task;
    async_http_client session;
    const char *url;
} fetch_frame;

static async_status fetch_data_run(async_task *t) {
    fetch_frame *f = (fetch_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_TRY(t) {
        AWAIT(t, async_http_get(&f->session, f->url, 10000));
        if (async_http_status(&f->session) != 200)
            ASYNC_THROW(t, ASYNC_EUSER, "the API did not answer 200 OK");
        printf("%s\n", async_http_body(&f->session, NULL));
    }
    ASYNC_FINALLY(t) {
        async_http_client_close(&f->session);
    }
    ASYNC_END_TRY(t);
    ASYNC_END(t);
}

int main(int argc, char **argv) {
    static fetch_frame m;
    if (argc != 2) {
        fprintf(stderr, "usage: %s URL   (http://host:port/path)\n", argv[0]);
        return 2;
    }
    ASYNC_FRAME_INIT(&m, fetch_data_run);
    m.url = argv[1];
    return async_main(&m.task) ? 1 : 0;
}
