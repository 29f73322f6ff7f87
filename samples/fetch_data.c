/* Seed 001, slide 3: "The Power of await".
 *
 *   async def fetch_data(url):
 *       print(f"Fetching data from {url}")
 *       await asyncio.sleep(2)  # Simulate network delay
 *       return f"Data from {url}"
 *
 *   async def process_url(url):
 *       data = await fetch_data(url)
 *       print(f"Processed: {data}")
 *
 *   async def main():
 *       await asyncio.gather(
 *           process_url("example.com"),
 *           process_url("python.org")
 *       )
 *
 * Each process_url awaits its fetch_data inline; the two run side by side, so both fetches start at
 * once and both are processed after 2 s, in the order they were gathered. */
#include <stdio.h>

#include "async.h"

typedef struct {
    async_task task;
    const char *url;
    char result[64];
} fetch_data_frame;

static async_status fetch_data_run(async_task *t) {
    fetch_data_frame *f = (fetch_data_frame *)t;
    ASYNC_BEGIN(t);
    printf("Fetching data from %s\n", f->url);
    AWAIT_SLEEP(t, 2000);
    snprintf(f->result, sizeof f->result, "Data from %s", f->url);
    ASYNC_END(t);
}

/* fetch_data(url) */
static async_task *fetch_data(fetch_data_frame *f, const char *url) {
    if (ASYNC_FRAME_INIT(f, fetch_data_run)) f->url = url;
    return &f->task;
}

typedef struct {
    async_task task;
    const char *url;
    fetch_data_frame data;
} process_url_frame;

static async_status process_url_run(async_task *t) {
    process_url_frame *f = (process_url_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT(t, fetch_data(&f->data, f->url));
    printf("Processed: %s\n", f->data.result);
    ASYNC_END(t);
}

/* process_url(url) */
static async_task *process_url(process_url_frame *f, const char *url) {
    if (ASYNC_FRAME_INIT(f, process_url_run)) f->url = url;
    return &f->task;
}

typedef struct {
    async_task task;
    process_url_frame a, b;
    async_group all;
} main_frame;

static async_status main_run(async_task *t) {
    main_frame *f = (main_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT_GATHER(t, &f->all, process_url(&f->a, "example.com"), process_url(&f->b, "python.org"));
    ASYNC_END(t);
}

int main(void) {
    static main_frame m;
    ASYNC_FRAME_INIT(&m, main_run);
    return async_main(&m.task) ? 1 : 0;
}
