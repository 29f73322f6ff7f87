/* Seed 004, task 3: "Handle an exception in an async function that simulates a failed API request."
 *
 *   async def fetch(session, url):
 *       try:
 *           async with session.get(url, timeout=1) as response:
 *               return await response.text()
 *       except aiohttp.ClientConnectorError as e:
 *           print(f"Request to {url} failed: {e}")
 *       except asyncio.TimeoutError:
 *           print(f"Request to {url} timed out")
 *
 *   api_errors URL...        e.g. api_errors http://127.0.0.1:1/ http://127.0.0.1:9/slow
 *
 * Each URL is requested with a 1 s deadline; a refused connection and a timeout are each caught and
 * reported, and the program goes on to the next URL. */
#include <stdio.h>

#include "async.h"

typedef struct {
    async_task task;
    async_http_client session;
    char **urls;
    int n, i, failures;
} main_frame;

static async_status main_run(async_task *t) {
    main_frame *f = (main_frame *)t;
    ASYNC_BEGIN(t);
    for (f->i = 0; f->i < f->n; f->i++) {
        ASYNC_TRY(t) {
            AWAIT(t, async_http_get(&f->session, f->urls[f->i], 1000));
            printf("Request to %s answered %d\n", f->urls[f->i], async_http_status(&f->session));
        }
        ASYNC_CATCH(t) {
            f->failures++;
            if (async_caught(t)->code == ASYNC_ETIMEDOUT)
                printf("Request to %s timed out\n", f->urls[f->i]);
            else
                printf("Request to %s failed: %s\n", f->urls[f->i], async_error_message(async_caught(t)));
        }
        ASYNC_END_TRY(t);
    }
    async_http_client_close(&f->session);
    printf("%d of %d requests failed\n", f->failures, f->n);
    ASYNC_END(t);
}

int main(int argc, char **argv) {
    static main_frame m;
    if (argc < 2) {
        fprintf(stderr, "usage: %s URL...   (http://host:port/path)\n", argv[0]);
        return 2;
    }
    ASYNC_FRAME_INIT(&m, main_run);
    m.urls = argv + 1;
    m.n = argc - 1;
    return async_main(&m.task) ? 1 : 0;
}
