/* Seed 004, task 3: "Handle an exception in an async function that simulates a failed API request." Each
 * URL is requested with a 1 s deadline; a failure (a refused connection, a timeout, any other error) is
 * caught and reported, and the program goes on to the next URL.
 *
 *   api_errors URL...        e.g. api_errors http://127.0.0.1:1/ http://127.0.0.1:9/slow */
#include <stdio.h>

#include "async.h"

ASYNC_DEF(main, char **urls; int n; async_http_client session; int i, failures;) {
    for (f->i = 0; f->i < f->n; f->i++) {
        ASYNC_TRY(t) {
            AWAIT(t, async_http_client_get(&f->session, f->urls[f->i], 1000));
            printf("Request to %s answered %d\n", f->urls[f->i], async_http_client_status(&f->session));
        } ASYNC_EXCEPT_ANY(t) {
            f->failures++;
            if (async_caught(t)->code == ASYNC_ETIMEDOUT)
                printf("Request to %s timed out\n", f->urls[f->i]);
            else
                printf("Request to %s failed: %s\n", f->urls[f->i], async_error_message(async_caught(t)));
        } ASYNC_END_TRY(t);
    }
    async_http_client_close(&f->session);
    printf("%d of %d requests failed\n", f->failures, f->n);
} ASYNC_END_DEF

int main(int argc, char **argv) {
    static main_frame m;
    if (argc < 2) {
        fprintf(stderr, "usage: %s URL...   (http://host:port/path)\n", argv[0]);
        return 2;
    }
    return async_main(ASYNC_CALL(main, &m, argv + 1, argc - 1)) ? 1 : 0;
}
