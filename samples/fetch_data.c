/* Seed 001, slide 3: "The Power of await". Each process_url awaits its fetch_data inline; the two run
 * side by side, so both fetches start at once and both are processed after 2 s, in the order gathered. */
#include <stdio.h>

#include "async.h"

ASYNC_DEF(fetch_data, const char *url; char result[64];) {
    printf("Fetching data from %s\n", f->url);
    AWAIT_SLEEP(t, 2000); /* Simulate network delay */
    snprintf(f->result, sizeof f->result, "Data from %s", f->url);
} ASYNC_END_DEF

ASYNC_DEF(process_url, const char *url; fetch_data_frame data;) {
    AWAIT_CALL(t, fetch_data, &f->data, f->url);
    printf("Processed: %s\n", f->data.result);
} ASYNC_END_DEF

ASYNC_DEF(main, process_url_frame a, b; async_group all;) {
    AWAIT_GATHER(t, &f->all, ASYNC_CALL(process_url, &f->a, "example.com"),
                 ASYNC_CALL(process_url, &f->b, "python.org"));
} ASYNC_END_DEF

ASYNC_MAIN(main)
