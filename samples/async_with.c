/* Seed 001, slide 6: "Asynchronous Context Managers". Acquire, use and release, a second each: 3 s. The
 * exit part runs however the body ends (an error or a cancellation included), and it may itself await. */
#include <stdio.h>

#include "async.h"

/* The class's three methods, one coroutine each; the resource holds their frames. */
ASYNC_DEF(aenter) {
    printf("Acquiring resource\n");
    AWAIT_SLEEP(t, 1000);
} ASYNC_END_DEF

ASYNC_DEF(aexit) {
    printf("Releasing resource\n");
    AWAIT_SLEEP(t, 1000);
} ASYNC_END_DEF

ASYNC_DEF(use_resource) {
    printf("Using resource\n");
    AWAIT_SLEEP(t, 1000);
} ASYNC_END_DEF

typedef struct { aenter_frame aenter; aexit_frame aexit; use_resource_frame use; } async_resource;

ASYNC_DEF(main, async_resource resource;) {
    AWAIT_CALL(t, aenter, &f->resource.aenter);
    ASYNC_WITH(t) {
        AWAIT_CALL(t, use_resource, &f->resource.use);
    } ASYNC_WITH_EXIT(t) {
        AWAIT_CALL(t, aexit, &f->resource.aexit);
    } ASYNC_END_WITH(t);
} ASYNC_END_DEF

ASYNC_MAIN(main)
