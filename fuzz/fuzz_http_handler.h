/* The HTTP server's handler of the request targets (fuzz_http_request.c over real sockets,
 * fuzz_sim_http_request.c in the simulated world): it checks what the parser handed it and answers with a
 * status that depends on the request (200, 201 with a body, 202 with a query field "a"). */
#ifndef FUZZ_HTTP_HANDLER_H
#define FUZZ_HTTP_HANDLER_H

#include "async.h"
#include "fuzz_check.h"

ASYNC_HTTP_DEF(handler, char body[256];) {
    FUZZ_CHECK(f->req->method && f->req->target && f->req->path && f->req->query &&
               (f->req->body || f->req->body_len == 0));
    FUZZ_CHECK(f->req->nheaders <= 16);
    f->res->body_len = (size_t)snprintf(f->body, sizeof f->body, "%s %zu %zu", f->req->method, f->req->nheaders,
                                        f->req->body_len);
    f->res->body = f->body;
    if (f->req->body_len > 2) f->res->status = 201;
    if (async_http_request_query(f->req, "a")) f->res->status = 202;
} ASYNC_END_DEF

static const async_http_route routes[] = {ASYNC_HTTP_ROUTE(NULL, NULL, handler), ASYNC_HTTP_ROUTES_END};

#endif
