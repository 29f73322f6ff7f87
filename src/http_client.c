/* The HTTP/1.1 client: GET over a kept-alive stream, responses parsed by libhttp-parser.
 *
 * One coroutine per client (the client's embedded task, awaited inline by the caller). The connection
 * is kept while the server allows it and the next URL names the same host and port. A request sent on a
 * kept connection that the server had already closed (it answers with EOF before a single byte) is sent
 * once more on a new connection, as browsers do for idempotent requests. */
#include "net.h"

#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#define DEFAULT_MAX_BODY ((size_t)16 << 20)
#define HEAD_LIMIT (64 * 1024)

typedef struct http_resp {
    http_parser parser;
    async_http_client *c;
    int status;
    bool complete, keep_alive, got_bytes, reused;
    int last; /* 0 none, 2 field, 3 value */
    char *head; /* "name\0value\0" pairs */
    size_t head_len, head_cap;
    char *body;
    size_t body_len, body_cap;
    int error; /* an error found in a callback */
    char url[2048]; /* the request's URL (a redirect's Location is copied here) */
    char req[4096];
    size_t req_len;
    char path[2048];
} http_resp;

static int grow(char **p, size_t *cap, size_t need) {
    size_t n = *cap ? *cap : 256;
    char *q;
    if (need <= *cap) return 0;
    while (n < need) n *= 2;
    q = (char *)realloc(*p, n);
    if (!q) return ASYNC_ENOMEM;
    *p = q;
    *cap = n;
    return 0;
}

static int head_add(http_resp *r, const char *at, size_t n, int kind) {
    size_t extra = (r->last != kind && r->last != 0) ? 1 : 0;
    if (r->head_len + n + extra + 2 > HEAD_LIMIT) {
        r->error = ASYNC_EMSGSIZE;
        return 1;
    }
    if (grow(&r->head, &r->head_cap, r->head_len + n + extra + 2)) {
        r->error = ASYNC_ENOMEM;
        return 1;
    }
    if (extra) r->head[r->head_len++] = '\0';
    memcpy(r->head + r->head_len, at, n);
    r->head_len += n;
    /* kept NUL-terminated (room reserved above): a response cut inside a trailer's name leaves that
     * name last, and async_http_client_header's strlen ran past it into stale or uninitialised bytes */
    r->head[r->head_len] = '\0';
    r->last = kind;
    return 0;
}

static int on_begin(http_parser *p) {
    http_resp *r = (http_resp *)p->data;
    r->head_len = r->body_len = 0;
    r->last = 0;
    return 0;
}

static int on_field(http_parser *p, const char *at, size_t n) {
    return head_add((http_resp *)p->data, at, n, 2); /* after a value, a NUL ends it first */
}

static int on_value(http_parser *p, const char *at, size_t n) {
    return head_add((http_resp *)p->data, at, n, 3);
}

static int on_headers(http_parser *p) {
    http_resp *r = (http_resp *)p->data;
    size_t max = r->c->max_body ? r->c->max_body : DEFAULT_MAX_BODY;
    /* errors return -1: 1 would mean "no body" to the parser */
    if (r->last == 2 && head_add(r, "", 0, 3)) return -1; /* a field without a value */
    if (r->last == 3) r->head[r->head_len++] = '\0';  /* room was kept by head_add */
    r->last = 0;
    r->status = (int)p->status_code;
    if (r->status < 100 || r->status > 999) { /* the parser takes one or two digits too: not HTTP */
        r->status = 0;
        r->error = ASYNC_EPROTO;
        return -1;
    }
    if (p->content_length != (uint64_t)-1 && p->content_length > max) {
        r->error = ASYNC_EMSGSIZE;
        return -1;
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n) {
    http_resp *r = (http_resp *)p->data;
    size_t max = r->c->max_body ? r->c->max_body : DEFAULT_MAX_BODY;
    if (r->body_len + n > max) {
        r->error = ASYNC_EMSGSIZE;
        return 1;
    }
    if (grow(&r->body, &r->body_cap, r->body_len + n + 1)) {
        r->error = ASYNC_ENOMEM;
        return 1;
    }
    memcpy(r->body + r->body_len, at, n);
    r->body_len += n;
    r->body[r->body_len] = '\0'; /* terminated at every step: also when a later error ends the parse */
    return 0;
}

static int on_complete(http_parser *p) {
    http_resp *r = (http_resp *)p->data;
    /* Trailers of a chunked body come as more fields after on_headers, with no call to end them: the last
     * value was left without its NUL (the lookup then read past it: into an older response's bytes, or
     * missed an empty value). Room for the NUL was kept by head_add. */
    if (r->last == 3) r->head[r->head_len++] = '\0';
    r->last = 0;
    if (r->status / 100 == 1 && r->status != 101) {
        /* an interim response (100 Continue, 103 Early Hints): the final one follows on the same stream
         * (RFC 9110 15.2: a client must parse and may ignore them). It used to be taken as the answer, and
         * the real answer then stayed in the buffer as the answer to the next request. */
        r->status = 0;
        return 0;
    }
    r->complete = true;
    /* after a 101 the connection speaks another protocol: never reused for the next GET */
    r->keep_alive = http_should_keep_alive(p) != 0 && !p->upgrade;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings settings = {
    on_begin, NULL, NULL, on_field, on_value, on_headers, on_body, on_complete, NULL, NULL,
};

const char *async_http_client_header(const async_http_client *c, const char *name) {
    const http_resp *r = c ? (const http_resp *)c->state : NULL;
    const char *p, *end;
    if (!r || !name || !r->head_len || !r->status) return NULL;
    p = r->head;
    end = r->head + r->head_len;
    while (p < end) {
        const char *v = p + strlen(p) + 1;
        if (v >= end) break;
        if (strcasecmp(p, name) == 0) return v;
        p = v + strlen(v) + 1;
    }
    return NULL;
}

int async_http_client_status(const async_http_client *c) {
    return c && c->state ? ((const http_resp *)c->state)->status : 0;
}

const char *async_http_client_body(const async_http_client *c, size_t *len) {
    const http_resp *r = c ? (const http_resp *)c->state : NULL;
    if (len) *len = r && r->body ? r->body_len : 0;
    return r && r->body ? r->body : "";
}

void async_http_client_close(async_http_client *c) {
    http_resp *r;
    if (!c) return;
    async_stream_close(&c->stream);
    r = (http_resp *)c->state;
    if (r) {
        free(r->head);
        free(r->body);
        free(r);
    }
    c->state = NULL;
    c->host[0] = '\0';
    c->port = 0;
}

/* Splits r->url into c->host, c->port and r->path; builds the request. 0 or an error code. */
static int prepare(async_http_client *c, http_resp *r, bool *same) {
    struct http_parser_url u;
    char host[sizeof c->host];
    int port = 80, n;
    size_t hl;
    http_parser_url_init(&u);
    if (http_parser_parse_url(r->url, strlen(r->url), 0, &u) || !(u.field_set & (1 << UF_SCHEMA)) ||
        !(u.field_set & (1 << UF_HOST)))
        return ASYNC_EINVAL;
    if (u.field_data[UF_SCHEMA].len == 5 && strncasecmp(r->url + u.field_data[UF_SCHEMA].off, "https", 5) == 0)
        return ASYNC_ENOTSUP;
    if (u.field_data[UF_SCHEMA].len != 4 || strncasecmp(r->url + u.field_data[UF_SCHEMA].off, "http", 4) != 0)
        return ASYNC_EINVAL;
    hl = u.field_data[UF_HOST].len;
    if (hl + 1 > sizeof host) return ASYNC_EINVAL;
    memcpy(host, r->url + u.field_data[UF_HOST].off, hl);
    host[hl] = '\0';
    if (u.field_set & (1 << UF_PORT)) port = u.port;
    if (port <= 0) return ASYNC_EINVAL;
    if (u.field_set & (1 << UF_PATH)) {
        size_t pl = strlen(r->url) - u.field_data[UF_PATH].off; /* path, query and fragment as written */
        const char *hash = memchr(r->url + u.field_data[UF_PATH].off, '#', pl);
        if (hash) pl = (size_t)(hash - (r->url + u.field_data[UF_PATH].off));
        if (pl + 1 > sizeof r->path) return ASYNC_EINVAL;
        memcpy(r->path, r->url + u.field_data[UF_PATH].off, pl);
        r->path[pl] = '\0';
    } else if (u.field_set & (1 << UF_QUERY)) {
        /* "http://host?q": an empty path with a query, sent as "/?q" (RFC 3986 6.2.3); the query used to be
         * dropped. It is shorter than the URL, so it fits r->path. */
        r->path[0] = '/';
        r->path[1] = '?';
        memcpy(r->path + 2, r->url + u.field_data[UF_QUERY].off, u.field_data[UF_QUERY].len);
        r->path[2 + u.field_data[UF_QUERY].len] = '\0';
    } else {
        strcpy(r->path, "/");
    }
    *same = async_stream_fd(&c->stream) >= 0 && c->port == port && strcmp(c->host, host) == 0;
    strcpy(c->host, host);
    c->port = port;
    n = snprintf(r->req, sizeof r->req,
                 "GET %s HTTP/1.1\r\nHost: %s%s%s%s\r\nUser-Agent: async.h\r\nAccept: */*\r\n\r\n", r->path,
                 strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "", "");
    if (n < 0 || (size_t)n >= sizeof r->req) return ASYNC_EINVAL;
    if (port != 80) { /* Host carries the port when it is not the default */
        char *end = strstr(r->req, "\r\nUser-Agent");
        char tail[64];
        int m = snprintf(tail, sizeof tail, ":%d", port);
        if ((size_t)n + (size_t)m >= sizeof r->req) return ASYNC_EINVAL;
        memmove(end + m, end, strlen(end) + 1);
        memcpy(end, tail, (size_t)m);
        n += m;
    }
    r->req_len = (size_t)n;
    return 0;
}

/* RFC 3986 5.2.4 on an absolute path, up to its query: "/a/b/../c/./d?x" becomes "/a/c/d?x". In place
 * (the result is never longer). */
static void remove_dot_segments(char *path) {
    char *in = path, *out = path, *end = path + strcspn(path, "?#");
    while (in < end) { /* in is at a '/' */
        char *seg = in + 1, *next = seg + strcspn(seg, "/?#");
        size_t n = (size_t)(next - seg);
        bool last = next == end;
        if (n == 1 && seg[0] == '.') {
            if (last) *out++ = '/';
        } else if (n == 2 && seg[0] == '.' && seg[1] == '.') {
            while (out > path && *--out != '/') {}
            if (last) *out++ = '/';
        } else {
            memmove(out, in, (size_t)(next - in));
            out += next - in;
        }
        in = next;
    }
    if (out == path) *out++ = '/';
    memmove(out, end, strlen(end) + 1);
}

/* The URL a redirect's Location names, resolved against the request's URL (RFC 3986 5.2: absolute,
 * "//host/path", "/path", "?query", "#fragment" or a path relative to the request's directory, with
 * "." and ".." segments removed), into r->url. 0, or ASYNC_EINVAL if it does not fit. */
static int resolve_location(const async_http_client *c, http_resp *r, const char *loc) {
    char path[sizeof r->path + sizeof r->url];
    size_t scheme = strcspn(loc, ":/?#"), base;
    int m;
    if (strlen(loc) + 1 > sizeof r->url) return ASYNC_EINVAL;
    if (scheme > 0 && loc[scheme] == ':') { /* absolute */
        memmove(r->url, loc, strlen(loc) + 1);
        return 0;
    }
    if (loc[0] == '/' && loc[1] == '/') { /* another server, the same scheme */
        m = snprintf(path, sizeof path, "http:%s", loc);
        if (m < 0 || (size_t)m >= sizeof r->url) return ASYNC_EINVAL;
        memcpy(r->url, path, (size_t)m + 1);
        return 0;
    }
    if (loc[0] == '/') {
        base = 0;
    } else if (loc[0] == '?') {
        base = strcspn(r->path, "?");
    } else if (loc[0] == '#' || loc[0] == '\0') {
        base = strlen(r->path);
        loc = "";
    } else { /* relative to the request's directory */
        base = strcspn(r->path, "?");
        while (base > 0 && r->path[base - 1] != '/') base--;
    }
    memcpy(path, r->path, base); /* r->path starts with '/', so path does too */
    memcpy(path + base, loc, strlen(loc) + 1);
    remove_dot_segments(path);
    {
        char url[sizeof r->url + sizeof c->host + 16];
        m = snprintf(url, sizeof url, "http://%s%s%s:%d%s", strchr(c->host, ':') ? "[" : "", c->host,
                     strchr(c->host, ':') ? "]" : "", c->port, path);
        if (m < 0 || (size_t)m >= sizeof r->url) return ASYNC_EINVAL;
        memcpy(r->url, url, (size_t)m + 1);
    }
    return 0;
}

static int32_t left(async_task *t, async_http_client *c) {
    int32_t d;
    if (c->ms < 0) return -1;
    d = (int32_t)(c->deadline - async_loop_now(async_task_loop(t)));
    return d > 0 ? d : 0;
}

static async_status get_run(async_task *t) {
    async_http_client *c = (async_http_client *)t;
    http_resp *r = (http_resp *)c->state;
    bool same = false;
    int rc;
    const char *data;
    size_t len, n;
    ASYNC_BEGIN(t);
    if (c->ms >= 0) c->deadline = async_loop_now(async_task_loop(t)) + (async_ms)c->ms;
    ASYNC_TRY(t) {
        for (;;) { /* one request per turn: the first, a retry on a stale connection, or a redirect */
            rc = prepare(c, r, &same);
            if (rc) ASYNC_THROW_ERROR(t, async_error_of(rc));
            if (!same) async_stream_close(&c->stream);
            r->reused = same;
            if (!same) AWAIT_STREAM_CONNECT(t, &c->stream, c->host, c->port, left(t, c));
            rc = async_stream_write(&c->stream, r->req, r->req_len);
            if (rc) {
                if (!r->reused) ASYNC_THROW_ERROR(t, async_error_of(rc));
                async_stream_close(&c->stream); /* stale kept connection: once more on a new one */
                continue;
            }
            AWAIT_STREAM_DRAIN(t, &c->stream, left(t, c));
            http_parser_init(&r->parser, HTTP_RESPONSE);
            r->parser.data = r;
            r->complete = r->got_bytes = false;
            r->status = 0;
            r->error = 0;
            r->head_len = r->body_len = 0;
            for (;;) {
                data = async_stream_peek(&c->stream, &len);
                if (len) {
                    r->got_bytes = true;
                    n = http_parser_execute(&r->parser, &settings, data, len);
                    async_stream_consume(&c->stream, n);
                    if (r->complete) break;
                    if (r->error) ASYNC_THROW_ERROR(t, async_error_of(r->error));
                    if (HTTP_PARSER_ERRNO(&r->parser) != HPE_OK)
                        ASYNC_THROW(t, ASYNC_EPROTO, "malformed HTTP response");
                }
                ASYNC_TRY(t) {
                    AWAIT_STREAM_FILL(t, &c->stream, HEAD_LIMIT + 65536, &c->n, left(t, c));
                }
                ASYNC_CATCH(t) {
                    if (async_caught(t)->code != ASYNC_ECONNRESET || !r->reused || r->got_bytes) ASYNC_RERAISE(t);
                    c->n = 0; /* a kept connection reset before answering: treat as closed */
                }
                ASYNC_END_TRY(t);
                if (c->n == 0) { /* end of stream: completes a body that runs to the close */
                    http_parser_execute(&r->parser, &settings, NULL, 0);
                    if (r->complete) break;
                    if (!r->got_bytes && r->reused) break; /* stale: retried below */
                    ASYNC_THROW(t, ASYNC_ENODATA, "connection closed in the middle of the response");
                }
            }
            if (!r->complete) { /* the kept connection was stale */
                async_stream_close(&c->stream);
                r->reused = false;
                continue;
            }
            if (r->body) r->body[r->body_len] = '\0';
            if (!r->keep_alive) async_stream_close(&c->stream);
            if (r->status >= 300 && r->status < 400 && c->redirects < c->max_redirects && async_http_client_header(c, "Location")) {
                if (resolve_location(c, r, async_http_client_header(c, "Location")))
                    ASYNC_THROW(t, ASYNC_EINVAL, "redirect location too long");
                c->redirects++;
                continue;
            }
            break;
        }
    }
    ASYNC_CATCH(t) {
        async_stream_close(&c->stream); /* its state is unknown after an error */
        ASYNC_RERAISE(t);
    }
    ASYNC_END_TRY(t);
    ASYNC_END(t);
}

/* Stands in for the GET when it cannot start: raises the code kept in c->n. */
static async_status fail_run(async_task *t) {
    async_http_client *c = (async_http_client *)t;
    ASYNC_BEGIN(t);
    ASYNC_THROW_ERROR(t, async_error_of((int)c->n));
    ASYNC_END(t);
}

async_task *async_http_client_get(async_http_client *c, const char *url, int64_t ms) {
    http_resp *r;
    if (!c) return NULL;
    if (!async_task_init(&c->task, get_run)) return &c->task; /* still running: awaiting it says EBUSY */
    r = (http_resp *)c->state;
    if (!r) {
        r = (http_resp *)calloc(1, sizeof *r);
        c->state = r;
    }
    c->url = url;
    c->ms = ms < 0 || ms > ASYNC_MS_MAX ? -1 : (int32_t)ms;
    c->redirects = 0;
    if (!r || !url || strlen(url) + 1 > sizeof r->url || ms > ASYNC_MS_MAX) {
        /* ASYNC_ERANGE: the loop's 32-bit clock cannot hold the deadline (never cut short) */
        c->n = (size_t)(intptr_t)(!r ? ASYNC_ENOMEM : ms > ASYNC_MS_MAX ? ASYNC_ERANGE : ASYNC_EINVAL);
        async_task_init(&c->task, fail_run);
        return &c->task;
    }
    r->c = c;
    r->status = 0;
    r->head_len = r->body_len = 0;
    strcpy(r->url, url);
    return &c->task;
}
