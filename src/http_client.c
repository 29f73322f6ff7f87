/* The HTTP/1.1 client: GET over a kept-alive stream, responses parsed by libhttp-parser.
 *
 * One coroutine per client (the client's embedded task, awaited inline by the caller). The connection
 * is kept while the server allows it and the next URL names the same host and port. A request sent on a
 * kept connection that the server had already closed (it answers with EOF before a single byte) is sent
 * once more on a new connection, as browsers do for idempotent requests.
 *
 * https URLs speak TLS on the connection (tls.c) before the request: the server's certificate is verified
 * for the URL's host against the system's CAs (a session may name a CA file, or turn verification off),
 * with ALPN http/1.1. A kept connection serves only URLs of the same scheme, host and port. */
#include "net.h"

#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#define DEFAULT_MAX_BODY ((size_t)16 << 20)
#define HEAD_LIMIT (64 * 1024)

struct http_resp;

/* The frame of the coroutine that reads one response (recv_run) from stream s into r. */
typedef struct recv_frame {
    async_task task;
    async_stream *s;
    struct http_resp *r;
    bool timed;       /* each read ends by `deadline` (the loop's clock) */
    async_ms deadline;
    int32_t read_ms;  /* and within read_ms (-1: no limit) */
    size_t n;
    bool stale;       /* out: a kept connection closed before a byte of the answer (send again) */
} recv_frame;

typedef struct http_resp {
    http_parser parser;
    recv_frame rx;
    size_t max_body; /* of a whole body */
    int status;
    bool complete, keep_alive, got_bytes, reused;
    bool head_only;   /* the answer to a HEAD: no body whatever its head says */
    bool want_stream; /* the body is read in pieces, unless the response is a redirect to follow */
    bool may_follow;  /* redirects are followed for this request */
    bool headers_done, streaming, follow;
    size_t body_pos;  /* streamed: body[body_pos, body_len) is not read yet */
    int last; /* 0 none, 2 field, 3 value */
    char *head; /* "name\0value\0" pairs */
    size_t head_len, head_cap;
    char *body;
    size_t body_len, body_cap;
    int error; /* an error found in a callback */
    bool tls;       /* the URL is https */
    bool conn_tls;  /* the simple client's connection speaks TLS */
    async_tls_ctx *ctx; /* the simple client's TLS context, made for its first https URL */
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

/* Empties the body, still NUL-terminated (async_http_call_body promises it; the bytes an interim response
 * or an earlier one left are not this response's). */
static void body_clear(http_resp *r) {
    r->body_len = r->body_pos = 0;
    if (r->body) r->body[0] = '\0';
}

static int on_begin(http_parser *p) {
    http_resp *r = (http_resp *)p->data;
    r->head_len = 0;
    body_clear(r);
    r->last = 0;
    r->headers_done = r->streaming = r->follow = false;
    return 0;
}

static int on_field(http_parser *p, const char *at, size_t n) {
    return head_add((http_resp *)p->data, at, n, 2); /* after a value, a NUL ends it first */
}

static int on_value(http_parser *p, const char *at, size_t n) {
    return head_add((http_resp *)p->data, at, n, 3);
}

static const char *resp_header(const http_resp *r, const char *name);

static int on_headers(http_parser *p) {
    http_resp *r = (http_resp *)p->data;
    size_t max = r->max_body;
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
    r->headers_done = true;
    if (r->status / 100 != 1) {
        int s = r->status;
        r->follow = r->may_follow && (s == 301 || s == 302 || s == 303 || s == 307 || s == 308) &&
                    resp_header(r, "Location") != NULL;
        r->streaming = r->want_stream && !r->follow; /* a redirect's body is read and dropped */
    }
    if (!r->streaming && p->content_length != (uint64_t)-1 && p->content_length > max) {
        r->error = ASYNC_EMSGSIZE;
        return -1;
    }
    return r->head_only ? 1 : 0; /* 1: no body follows */
}

static int on_body(http_parser *p, const char *at, size_t n) {
    http_resp *r = (http_resp *)p->data;
    size_t max = r->max_body;
    if (!r->streaming && r->body_len + n > max) {
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
    if (r->streaming) http_parser_pause(p, 1); /* one piece at a time: the reader takes it first */
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
    return resp_header(c ? (const http_resp *)c->state : NULL, name);
}

static const char *resp_header(const http_resp *r, const char *name) {
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
        async_tls_ctx_free(r->ctx);
        free(r->head);
        free(r->body);
        free(r);
    }
    c->state = NULL;
    c->host[0] = '\0';
    c->port = 0;
}

/* Splits r->url into r->tls (https), host (256 bytes), *port and r->path. 0 or an error code. */
static int split_url(http_resp *r, char *host, int *port) {
    struct http_parser_url u;
    size_t hl;
    http_parser_url_init(&u);
    if (http_parser_parse_url(r->url, strlen(r->url), 0, &u) || !(u.field_set & (1 << UF_SCHEMA)) ||
        !(u.field_set & (1 << UF_HOST)))
        return ASYNC_EINVAL;
    r->tls = u.field_data[UF_SCHEMA].len == 5 && strncasecmp(r->url + u.field_data[UF_SCHEMA].off, "https", 5) == 0;
    if (!r->tls &&
        (u.field_data[UF_SCHEMA].len != 4 || strncasecmp(r->url + u.field_data[UF_SCHEMA].off, "http", 4) != 0))
        return ASYNC_EINVAL;
    hl = u.field_data[UF_HOST].len;
    if (hl + 1 > 256) return ASYNC_EINVAL;
    memcpy(host, r->url + u.field_data[UF_HOST].off, hl);
    host[hl] = '\0';
    *port = r->tls ? 443 : 80;
    if (u.field_set & (1 << UF_PORT)) *port = u.port;
    if (*port <= 0) return ASYNC_EINVAL;
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
    return 0;
}

/* Splits r->url into c->host, c->port and r->path; builds the GET. 0 or an error code. */
static int prepare(async_http_client *c, http_resp *r, bool *same) {
    char host[sizeof c->host];
    int port, n = split_url(r, host, &port);
    if (n) return n;
    *same = async_stream_fd(&c->stream) >= 0 && c->port == port && strcmp(c->host, host) == 0 && r->conn_tls == r->tls;
    strcpy(c->host, host);
    c->port = port;
    n = snprintf(r->req, sizeof r->req,
                 "GET %s HTTP/1.1\r\nHost: %s%s%s%s\r\nUser-Agent: async.h\r\nAccept: */*\r\n\r\n", r->path,
                 strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "", "");
    if (n < 0 || (size_t)n >= sizeof r->req) return ASYNC_EINVAL;
    if (port != (r->tls ? 443 : 80)) { /* Host carries the port when it is not the scheme's default */
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
static int resolve_location(const char *host, int port, http_resp *r, const char *loc) {
    char path[sizeof r->path + sizeof r->url];
    size_t scheme = strcspn(loc, ":/?#"), base;
    int m;
    if (strlen(loc) + 1 > sizeof r->url) return ASYNC_EINVAL;
    if (scheme > 0 && loc[scheme] == ':') { /* absolute */
        memmove(r->url, loc, strlen(loc) + 1);
        return 0;
    }
    if (loc[0] == '/' && loc[1] == '/') { /* another server, the same scheme */
        m = snprintf(path, sizeof path, "%s:%s", r->tls ? "https" : "http", loc);
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
        char url[sizeof r->url + 256 + 16];
        m = snprintf(url, sizeof url, "%s://%s%s%s:%d%s", r->tls ? "https" : "http", strchr(host, ':') ? "[" : "", host,
                     strchr(host, ':') ? "]" : "", port, path);
        if (m < 0 || (size_t)m >= sizeof r->url) return ASYNC_EINVAL;
        memcpy(r->url, url, (size_t)m + 1);
    }
    return 0;
}

static int32_t recv_ms(recv_frame *f) {
    int32_t d;
    if (!f->timed) return f->read_ms;
    d = (int32_t)(f->deadline - async_loop_now(async_task_loop(&f->task)));
    if (d < 0) d = 0;
    return f->read_ms >= 0 && f->read_ms < d ? f->read_ms : d;
}

/* Reads the response to the request just sent on s into r: to its end, or with r->want_stream to the end
 * of its head (the first piece of the body may be buffered in r->body). A kept connection (r->reused) that
 * ends or is reset before a byte of the answer sets f->stale instead of failing. A response that completes
 * with bytes behind it leaves the connection unusable: r->keep_alive is then false. */
static async_status recv_run(async_task *t) {
    recv_frame *f = (recv_frame *)t;
    http_resp *r = f->r;
    const char *data;
    size_t len, n;
    ASYNC_BEGIN(t);
    http_parser_init(&r->parser, HTTP_RESPONSE);
    r->parser.data = r;
    r->complete = r->got_bytes = r->headers_done = r->streaming = r->follow = false;
    r->status = 0;
    r->error = 0;
    r->head_len = 0;
    body_clear(r);
    f->stale = false;
    for (;;) {
        data = async_stream_peek(f->s, &len);
        if (len) {
            r->got_bytes = true;
            n = http_parser_execute(&r->parser, &settings, data, len);
            async_stream_consume(f->s, n);
            if (r->complete || (r->streaming && r->headers_done)) break;
            if (r->error) ASYNC_THROW_ERROR(t, async_error_of(r->error));
            if (HTTP_PARSER_ERRNO(&r->parser) != HPE_OK) ASYNC_THROW(t, ASYNC_EPROTO, "malformed HTTP response");
        }
        ASYNC_TRY(t) {
            AWAIT_STREAM_FILL(t, f->s, HEAD_LIMIT + 65536, &f->n, recv_ms(f));
        }
        ASYNC_CATCH(t) {
            if (async_caught(t)->code != ASYNC_ECONNRESET || !r->reused || r->got_bytes) ASYNC_RERAISE(t);
            f->n = 0; /* a kept connection reset before answering: treat as closed */
        }
        ASYNC_END_TRY(t);
        if (f->n == 0) { /* end of stream: completes a body that runs to the close */
            http_parser_execute(&r->parser, &settings, NULL, 0);
            if (r->complete) break;
            if (!r->got_bytes && r->reused) { /* stale: the caller sends it again */
                f->stale = true;
                ASYNC_RETURN(t, 0);
            }
            if (!r->got_bytes) ASYNC_THROW(t, ASYNC_ENODATA, "connection closed before any byte of the response");
            ASYNC_THROW(t, ASYNC_ENODATA, "connection closed in the middle of the response");
        }
    }
    if (r->body) r->body[r->body_len] = '\0';
    /* bytes behind a whole response are no answer to anything sent: the connection's framing is lost (the
     * next request on it read them as its answer, or failed as malformed) */
    if (r->complete) {
        async_stream_peek(f->s, &len);
        if (len) r->keep_alive = false;
    }
    ASYNC_END(t);
}

static async_task *recv_start(recv_frame *f, async_stream *s, http_resp *r, bool timed, async_ms deadline,
                              int32_t read_ms) {
    if (!async_task_init(&f->task, recv_run)) return &f->task; /* resumed: still running */
    f->s = s;
    f->r = r;
    f->timed = timed;
    f->deadline = deadline;
    f->read_ms = read_ms;
    return &f->task;
}

/* The client's TLS context for https: the system's CAs or ca_file, verification on unless no_verify,
 * ALPN http/1.1. */
static int http_tls_ctx(async_tls_ctx **ctx, const char *ca_file, bool no_verify) {
    async_tls_opts o;
    memset(&o, 0, sizeof o);
    o.ca_file = ca_file;
    o.no_verify = no_verify;
    o.alpn = "http/1.1";
    return async_tls_ctx_new(ctx, &o);
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
    ASYNC_BEGIN(t);
    if (c->ms >= 0) c->deadline = async_loop_now(async_task_loop(t)) + (async_ms)c->ms;
    ASYNC_TRY(t) {
        for (;;) { /* one request per turn: the first, a retry on a stale connection, or a redirect */
            rc = prepare(c, r, &same);
            if (rc) ASYNC_THROW_ERROR(t, async_error_of(rc));
            if (!same) async_stream_close(&c->stream);
            r->reused = same;
            if (!same) {
                AWAIT_STREAM_CONNECT(t, &c->stream, c->host, c->port, left(t, c));
                r->conn_tls = r->tls;
                if (r->tls) {
                    rc = r->ctx ? 0 : http_tls_ctx(&r->ctx, NULL, false);
                    if (rc) ASYNC_THROW_ERROR(t, async_error_of(rc));
                    AWAIT_STREAM_TLS_CONNECT(t, &c->stream, r->ctx, c->host, left(t, c));
                }
            }
            rc = async_stream_write(&c->stream, r->req, r->req_len);
            if (rc) {
                if (!r->reused) ASYNC_THROW_ERROR(t, async_error_of(rc));
                async_stream_close(&c->stream); /* stale kept connection: once more on a new one */
                continue;
            }
            AWAIT_STREAM_DRAIN(t, &c->stream, left(t, c));
            AWAIT(t, recv_start(&r->rx, &c->stream, r, c->ms >= 0, c->deadline, -1));
            if (r->rx.stale) { /* the kept connection had been closed: once more on a new one */
                async_stream_close(&c->stream);
                continue;
            }
            if (!r->keep_alive) async_stream_close(&c->stream);
            if (r->status >= 300 && r->status < 400 && c->redirects < c->max_redirects && async_http_client_header(c, "Location")) {
                if (resolve_location(c->host, c->port, r, async_http_client_header(c, "Location")))
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
    r->max_body = c->max_body ? c->max_body : DEFAULT_MAX_BODY;
    r->status = 0;
    r->head_len = 0;
    body_clear(r);
    strcpy(r->url, url);
    return &c->task;
}

/* ==== Sessions: a pool of connections per host:port, shared by the tasks of one loop ==== */

#define DEFAULT_MAX_CONNECTIONS 100u
#define DEFAULT_MAX_REDIRECTS 10

/* An open connection of a session: in its list (idle, or in use by one call) until closed. */
struct async__http_conn {
    async_stream stream;
    struct async__http_conn *next;
    async_http_session *session; /* NULL once the session was closed while a call used it */
    char host[256];
    int port;
    bool tls;                   /* https: TLS runs on it */
    bool idle, connected, used; /* used: a request was sent on it before */
    unsigned long idle_since;   /* the session's tick when it went idle */
};

/* A call's state (c->state): its response and what its steps keep. */
typedef struct call_state {
    http_resp r;
    async_deadline dl;  /* the request's total time, around each step */
    bool timed;
    int64_t total_ms;
    async_ms when; /* the end of total_ms, from the request's start */
    int32_t read_ms;
    char host[256];
    int port;
    const char *method; /* this turn's: a 303 turns it into GET */
    bool send_body;     /* this turn sends c->body */
    bool body_open;     /* a streamed body is being written */
    char *req;          /* the request head */
    size_t req_len, req_cap;
    int redirects, max_redirects;
    void *buf; /* a streamed read's arguments */
    size_t cap, *out;
    const void *wdata; /* a streamed write's */
    size_t wlen;
} call_state;

/* Errors of a 4xx or 5xx answer (ASYNC_HTTP_RAISE_FOR_STATUS), a static record per status. */
static const struct {
    int status;
    async_error error;
} status_errors[] = {
    {400, {ASYNC_EIO, "HTTP 400 Bad Request"}},
    {401, {ASYNC_EIO, "HTTP 401 Unauthorized"}},
    {402, {ASYNC_EIO, "HTTP 402 Payment Required"}},
    {403, {ASYNC_EIO, "HTTP 403 Forbidden"}},
    {404, {ASYNC_EIO, "HTTP 404 Not Found"}},
    {405, {ASYNC_EIO, "HTTP 405 Method Not Allowed"}},
    {406, {ASYNC_EIO, "HTTP 406 Not Acceptable"}},
    {407, {ASYNC_EIO, "HTTP 407 Proxy Authentication Required"}},
    {408, {ASYNC_EIO, "HTTP 408 Request Timeout"}},
    {409, {ASYNC_EIO, "HTTP 409 Conflict"}},
    {410, {ASYNC_EIO, "HTTP 410 Gone"}},
    {411, {ASYNC_EIO, "HTTP 411 Length Required"}},
    {412, {ASYNC_EIO, "HTTP 412 Precondition Failed"}},
    {413, {ASYNC_EIO, "HTTP 413 Content Too Large"}},
    {414, {ASYNC_EIO, "HTTP 414 URI Too Long"}},
    {415, {ASYNC_EIO, "HTTP 415 Unsupported Media Type"}},
    {416, {ASYNC_EIO, "HTTP 416 Range Not Satisfiable"}},
    {417, {ASYNC_EIO, "HTTP 417 Expectation Failed"}},
    {421, {ASYNC_EIO, "HTTP 421 Misdirected Request"}},
    {422, {ASYNC_EIO, "HTTP 422 Unprocessable Content"}},
    {425, {ASYNC_EIO, "HTTP 425 Too Early"}},
    {426, {ASYNC_EIO, "HTTP 426 Upgrade Required"}},
    {428, {ASYNC_EIO, "HTTP 428 Precondition Required"}},
    {429, {ASYNC_EIO, "HTTP 429 Too Many Requests"}},
    {431, {ASYNC_EIO, "HTTP 431 Request Header Fields Too Large"}},
    {451, {ASYNC_EIO, "HTTP 451 Unavailable For Legal Reasons"}},
    {500, {ASYNC_EIO, "HTTP 500 Internal Server Error"}},
    {501, {ASYNC_EIO, "HTTP 501 Not Implemented"}},
    {502, {ASYNC_EIO, "HTTP 502 Bad Gateway"}},
    {503, {ASYNC_EIO, "HTTP 503 Service Unavailable"}},
    {504, {ASYNC_EIO, "HTTP 504 Gateway Timeout"}},
    {505, {ASYNC_EIO, "HTTP 505 HTTP Version Not Supported"}},
};
static const async_error client_error = {ASYNC_EIO, "HTTP 4xx client error"};
static const async_error server_error = {ASYNC_EIO, "HTTP 5xx server error"};

static const async_error *status_error(int status) {
    size_t i;
    for (i = 0; i < sizeof status_errors / sizeof status_errors[0]; i++)
        if (status_errors[i].status == status) return &status_errors[i].error;
    return status < 500 ? &client_error : &server_error;
}

static unsigned sess_max(const async_http_session *s) {
    return s->opts.max_connections ? s->opts.max_connections : DEFAULT_MAX_CONNECTIONS;
}

static unsigned sess_per_host(const async_http_session *s) {
    return s->opts.max_per_host ? s->opts.max_per_host : sess_max(s);
}

static void conn_destroy(struct async__http_conn *k) {
    async_stream_close(&k->stream);
    free(k);
}

/* Takes k out of its session's list and closes it. */
static void conn_drop(async_http_session *s, struct async__http_conn *k) {
    struct async__http_conn **pp = &s->conns;
    while (*pp && *pp != k) pp = &(*pp)->next;
    if (*pp) {
        *pp = k->next;
        s->open--;
    }
    conn_destroy(k);
}

/* An idle connection the server has closed, or that has input no request asked for, is of no use. */
static bool conn_stale(struct async__http_conn *k) {
    char b;
    size_t len;
    if (async_stream_fd(&k->stream) < 0) return true;
    async_stream_peek(&k->stream, &len);
    if (len) return true;
    /* bytes, the end or an error: anything but "would block". Through the stream (not poll(2) on its
     * number): a simulated world's descriptor is no descriptor of the OS, whose poll calls it invalid,
     * so that a session never reused a connection there */
    return net__stream_peek(&k->stream, &b, 1) != ASYNC_EAGAIN;
}

/* Gives c a connection to its host: an idle one, a new one within the limits (closing the oldest idle
 * connection to another host to make room). 1: c->conn is set; 0: c must wait; or ASYNC_ENOMEM. */
static int sess_try(async_http_session *s, async_http_call *c) {
    call_state *st = (call_state *)c->state;
    struct async__http_conn **pp, *k, *oldest = NULL;
    unsigned host_n = 0;
    for (pp = &s->conns; (k = *pp) != NULL;) {
        bool same = k->port == st->port && k->tls == st->r.tls && strcmp(k->host, st->host) == 0;
        if (k->idle && conn_stale(k)) {
            *pp = k->next;
            s->open--;
            conn_destroy(k);
            continue;
        }
        if (same && k->idle) {
            k->idle = false;
            c->conn = k;
            return 1;
        }
        if (same) host_n++;
        else if (k->idle && (!oldest || k->idle_since < oldest->idle_since)) oldest = k;
        pp = &k->next;
    }
    if (host_n >= sess_per_host(s)) return 0;
    if (s->open >= sess_max(s)) {
        if (!oldest) return 0;
        conn_drop(s, oldest);
    }
    k = (struct async__http_conn *)calloc(1, sizeof *k);
    if (!k) return ASYNC_ENOMEM;
    strcpy(k->host, st->host);
    k->port = st->port;
    k->tls = st->r.tls;
    k->session = s;
    k->next = s->conns;
    s->conns = k;
    s->open++;
    c->conn = k;
    return 1;
}

/* Hands connections to the waiting calls that can have one, first come first served. */
static void sess_dispatch(async_http_session *s) {
    async_http_call **pp = &s->waiters, *w;
    while ((w = *pp) != NULL) {
        int rc = sess_try(s, w);
        if (rc == 0) {
            pp = &w->wnext;
            continue;
        }
        *pp = w->wnext;
        w->wnext = NULL;
        w->waiting = false;
        w->wait_error = rc < 0 ? rc : 0;
        async_event_set(&w->granted);
    }
}

static void call_unwait(async_http_call *c) {
    async_http_call **pp;
    if (!c->waiting) return;
    for (pp = &c->session->waiters; *pp && *pp != c; pp = &(*pp)->wnext) {}
    if (*pp) *pp = c->wnext;
    c->wnext = NULL;
    c->waiting = false;
}

/* Gives c's connection back: to the pool if reuse (a whole response with nothing behind it), else
 * closed; then the next waiters may have it or its place. */
static void call_release(async_http_call *c, bool reuse) {
    struct async__http_conn *k = c->conn;
    async_http_session *s;
    if (!k) return;
    c->conn = NULL;
    s = k->session;
    if (!s) {
        conn_destroy(k);
        return;
    }
    if (reuse && !s->closed && async_stream_fd(&k->stream) >= 0) {
        k->idle = true;
        k->idle_since = ++s->ticks;
    } else {
        conn_drop(s, k);
    }
    sess_dispatch(s);
}

/* After a failure or cancellation in a step: out of the wait list, the connection closed (its state is
 * unknown). */
static void call_abort(async_http_call *c) {
    call_state *st = (call_state *)c->state;
    call_unwait(c);
    call_release(c, false);
    if (st) st->body_open = false;
}

int async_http_session_init(async_http_session *s, const async_http_session_opts *opts) {
    if (!s) return ASYNC_EINVAL;
    if (s->conns || s->waiters) return ASYNC_EBUSY;
    if (opts && (opts->timeout_ms > ASYNC_MS_MAX || opts->read_timeout_ms > ASYNC_MS_MAX)) return ASYNC_ERANGE;
    async_tls_ctx_free((async_tls_ctx *)s->tls); /* a session used and not closed: its context goes */
    memset(s, 0, sizeof *s);
    if (opts) s->opts = *opts;
    return 0;
}

void async_http_session_close(async_http_session *s) {
    struct async__http_conn *k;
    if (!s) return;
    s->closed = true;
    while (s->waiters) {
        async_http_call *w = s->waiters;
        s->waiters = w->wnext;
        w->wnext = NULL;
        w->waiting = false;
        w->wait_error = ASYNC_ESHUTDOWN;
        async_event_set(&w->granted);
    }
    while ((k = s->conns) != NULL) {
        s->conns = k->next;
        if (k->idle) conn_destroy(k);
        else k->session = NULL; /* its call closes it when done */
    }
    s->open = 0;
    async_tls_ctx_free((async_tls_ctx *)s->tls); /* handshakes under way no longer need it */
    s->tls = NULL;
}

unsigned async_http_session_connections(const async_http_session *s, unsigned *idle) {
    const struct async__http_conn *k;
    unsigned n = 0;
    if (idle) *idle = 0;
    if (!s) return 0;
    for (k = s->conns; k; k = k->next) {
        n++;
        if (idle && k->idle) (*idle)++;
    }
    return n;
}

unsigned async_http_session_reused(const async_http_session *s) { return s ? s->reused : 0; }

/* ---- building a request ---- */

static int req_add(call_state *st, const char *p, size_t n) {
    if (grow(&st->req, &st->req_cap, st->req_len + n + 1)) return ASYNC_ENOMEM;
    memcpy(st->req + st->req_len, p, n);
    st->req_len += n;
    return 0;
}

static int req_line(call_state *st, const char *name, const char *value) {
    return req_add(st, name, strlen(name)) || req_add(st, ": ", 2) || req_add(st, value, strlen(value)) ||
                   req_add(st, "\r\n", 2)
               ? ASYNC_ENOMEM
               : 0;
}

/* An HTTP token (RFC 9110 5.6.2): a method or a field name. */
static bool is_token(const char *p) {
    if (!p || !*p) return false;
    for (; *p; p++)
        if ((unsigned char)*p <= 32 || (unsigned char)*p >= 127 || strchr("\"(),/:;<=>?@[\\]{}", *p)) return false;
    return true;
}

static bool given(const async_http_call *c, const char *name) {
    size_t i;
    for (i = 0; i < c->nheaders; i++)
        if (strcasecmp(c->headers[i].name, name) == 0) return true;
    return false;
}

/* Checks the inputs that do not change between redirects: 0 or ASYNC_EINVAL. */
static int call_check(const async_http_call *c) {
    size_t i;
    if (!c->url || (c->method && !is_token(c->method)) || (c->nheaders && !c->headers) ||
        (c->body_len && !c->body) || (c->body && (c->flags & ASYNC_HTTP_STREAM_BODY)))
        return ASYNC_EINVAL;
    for (i = 0; i < c->nheaders; i++) {
        const char *v = c->headers[i].value;
        if (!is_token(c->headers[i].name) || !v || strpbrk(v, "\r\n")) return ASYNC_EINVAL;
        if (strcasecmp(c->headers[i].name, "Content-Length") == 0 ||
            strcasecmp(c->headers[i].name, "Transfer-Encoding") == 0)
            return ASYNC_EINVAL;
    }
    return 0;
}

/* Splits this turn's URL (st->r.url) and writes the request head into st->req. */
static int call_prepare(async_http_call *c, call_state *st) {
    char hostport[300], len[32];
    size_t i;
    int rc = split_url(&st->r, st->host, &st->port);
    bool v6 = strchr(st->host, ':') != NULL;
    if (rc) return rc;
    st->req_len = 0;
    if (st->port == (st->r.tls ? 443 : 80)) snprintf(hostport, sizeof hostport, "%s%s%s", v6 ? "[" : "", st->host, v6 ? "]" : "");
    else snprintf(hostport, sizeof hostport, "%s%s%s:%d", v6 ? "[" : "", st->host, v6 ? "]" : "", st->port);
    if (req_add(st, st->method, strlen(st->method)) || req_add(st, " ", 1) ||
        req_add(st, st->r.path, strlen(st->r.path)) || req_add(st, " HTTP/1.1\r\n", 11) ||
        (!given(c, "Host") && req_line(st, "Host", hostport)) ||
        (!given(c, "User-Agent") && req_line(st, "User-Agent", "async.h")) ||
        (!given(c, "Accept") && req_line(st, "Accept", "*/*")))
        return ASYNC_ENOMEM;
    for (i = 0; i < c->nheaders; i++)
        if (req_line(st, c->headers[i].name, c->headers[i].value)) return ASYNC_ENOMEM;
    if (c->flags & ASYNC_HTTP_STREAM_BODY) {
        if (req_line(st, "Transfer-Encoding", "chunked")) return ASYNC_ENOMEM;
    } else if (st->send_body || strcmp(st->method, "POST") == 0 || strcmp(st->method, "PUT") == 0 ||
               strcmp(st->method, "PATCH") == 0) {
        snprintf(len, sizeof len, "%lu", (unsigned long)(st->send_body ? c->body_len : 0));
        if (req_line(st, "Content-Length", len)) return ASYNC_ENOMEM;
    }
    if (req_add(st, "\r\n", 2)) return ASYNC_ENOMEM;
    st->r.head_only = strcmp(st->method, "HEAD") == 0;
    st->r.may_follow = st->max_redirects >= 0 && !(c->flags & ASYNC_HTTP_STREAM_BODY);
    st->r.want_stream = (c->flags & ASYNC_HTTP_STREAM_RESPONSE) != 0;
    return 0;
}

/* The time left of the request's total, for ASYNC_TIMEOUT (-1: none). */
static int64_t call_left(async_task *t, const call_state *st) {
    int64_t d;
    if (!st->timed) return -1;
    d = (int64_t)(st->when - async_loop_now(async_task_loop(t)));
    return d > 0 ? d : 0;
}

/* What a step raises when it cannot start (the code is in c->wait_error). */
static async_status call_fail_run(async_task *t) {
    async_http_call *c = (async_http_call *)t;
    ASYNC_BEGIN(t);
    ASYNC_THROW_ERROR(t, async_error_of(c->wait_error));
    ASYNC_END(t);
}

/* A step with nothing to do. */
static async_status call_noop_run(async_task *t) {
    ASYNC_BEGIN(t);
    ASYNC_END(t);
}

static async_task *call_fail(async_http_call *c, int code) {
    async_task_init(&c->task, call_fail_run);
    c->wait_error = code;
    return &c->task;
}

/* After the response: the connection goes back (a whole response) or is kept for the streamed reads. */
static void call_received(async_http_call *c, call_state *st) {
    if (st->r.complete) call_release(c, st->r.keep_alive);
}

static async_status request_run(async_task *t) {
    async_http_call *c = (async_http_call *)t;
    call_state *st = (call_state *)c->state;
    int rc;
    ASYNC_BEGIN(t);
    st->when = async_loop_now(async_task_loop(t)) + (async_ms)st->total_ms;
    ASYNC_TIMEOUT(t, &st->dl, call_left(t, st)) {
        ASYNC_TRY(t) {
            for (;;) { /* a turn per request sent: the first, a retry on a stale connection, a redirect */
                rc = call_prepare(c, st);
                if (rc) ASYNC_THROW_ERROR(t, async_error_of(rc));
                if (c->session->closed) ASYNC_THROW(t, ASYNC_ESHUTDOWN, "HTTP session closed");
                /* in the queue behind the calls already waiting: it may be served at once */
                async_event_clear(&c->granted);
                c->waiting = true;
                {
                    async_http_call **pp = &c->session->waiters;
                    while (*pp) pp = &(*pp)->wnext;
                    *pp = c;
                }
                sess_dispatch(c->session);
                AWAIT_EVENT(t, &c->granted);
                if (c->wait_error) ASYNC_THROW_ERROR(t, async_error_of(c->wait_error));
                st->r.reused = c->conn->used;
                if (!c->conn->connected) {
                    AWAIT_STREAM_CONNECT(t, &c->conn->stream, c->conn->host, c->conn->port, -1);
                    if (c->conn->tls) {
                        rc = c->session->tls ? 0
                                             : http_tls_ctx((async_tls_ctx **)&c->session->tls, c->session->opts.ca_file,
                                                            c->session->opts.tls_no_verify);
                        if (rc) ASYNC_THROW_ERROR(t, async_error_of(rc));
                        AWAIT_STREAM_TLS_CONNECT(t, &c->conn->stream, (async_tls_ctx *)c->session->tls, c->conn->host, -1);
                    }
                    c->conn->connected = true;
                }
                if (c->conn->used) c->session->reused++;
                c->conn->used = true;
                rc = async_stream_write(&c->conn->stream, st->req, st->req_len);
                if (!rc && st->send_body && c->body_len)
                    rc = async_stream_write(&c->conn->stream, c->body, c->body_len);
                if (rc) {
                    if (!st->r.reused || (c->flags & ASYNC_HTTP_STREAM_BODY)) ASYNC_THROW_ERROR(t, async_error_of(rc));
                    call_release(c, false); /* a stale kept connection: once more */
                    continue;
                }
                AWAIT_STREAM_DRAIN(t, &c->conn->stream, -1);
                if (c->flags & ASYNC_HTTP_STREAM_BODY) {
                    st->body_open = true;
                    break;
                }
                AWAIT(t, recv_start(&st->r.rx, &c->conn->stream, &st->r, false, 0, st->read_ms));
                if (st->r.rx.stale) {
                    call_release(c, false);
                    continue;
                }
                call_received(c, st);
                if (!st->r.follow) break;
                if (++st->redirects > st->max_redirects) ASYNC_THROW(t, ASYNC_ELOOP, "too many HTTP redirects");
                if (resolve_location(st->host, st->port, &st->r, resp_header(&st->r, "Location")))
                    ASYNC_THROW(t, ASYNC_EINVAL, "redirect location too long");
                /* 303, and 301/302 after a POST (as browsers do): GET without the body; 307/308 keep both */
                if ((st->r.status == 303 && strcmp(st->method, "HEAD") != 0) ||
                    ((st->r.status == 301 || st->r.status == 302) && strcmp(st->method, "POST") == 0)) {
                    st->method = "GET";
                    st->send_body = false;
                }
            }
        }
        ASYNC_CATCH(t) {
            call_abort(c);
            ASYNC_RERAISE(t);
        }
        ASYNC_END_TRY(t);
    }
    ASYNC_END_TIMEOUT(t, &st->dl);
    if ((c->flags & ASYNC_HTTP_RAISE_FOR_STATUS) && st->r.status >= 400)
        ASYNC_THROW_ERROR(t, status_error(st->r.status));
    ASYNC_END(t);
}

async_task *async_http_session_request(async_http_session *s, async_http_call *c) {
    call_state *st;
    int64_t ms;
    int rc;
    if (!c) return NULL;
    if (!async_task_init(&c->task, request_run)) return &c->task; /* resumed, or busy: AWAIT says which */
    if (!s) return call_fail(c, ASYNC_EINVAL);
    if (c->waiting || c->conn) return call_fail(c, ASYNC_EBUSY); /* a call not closed since a streamed step */
    rc = call_check(c);
    if (rc) return call_fail(c, rc);
    if (s->closed) return call_fail(c, ASYNC_ESHUTDOWN);
    ms = c->timeout_ms ? c->timeout_ms : s->opts.timeout_ms;
    if (ms > ASYNC_MS_MAX || strlen(c->url) + 1 > sizeof st->r.url) return call_fail(c, ms > ASYNC_MS_MAX ? ASYNC_ERANGE : ASYNC_EINVAL);
    st = (call_state *)c->state;
    if (!st) {
        st = (call_state *)calloc(1, sizeof *st);
        if (!st) return call_fail(c, ASYNC_ENOMEM);
        c->state = st;
    }
    c->session = s;
    c->wait_error = 0;
    st->r.max_body = s->opts.max_body ? s->opts.max_body : DEFAULT_MAX_BODY;
    st->r.status = 0;
    st->r.head_len = 0;
    body_clear(&st->r);
    st->r.complete = false;
    strcpy(st->r.url, c->url);
    st->timed = ms > 0;
    st->total_ms = ms > 0 ? ms : 0;
    st->read_ms = s->opts.read_timeout_ms > 0 ? (int32_t)s->opts.read_timeout_ms : -1;
    st->method = c->method ? c->method : "GET";
    st->send_body = c->body != NULL;
    st->body_open = false;
    st->redirects = 0;
    st->max_redirects = c->max_redirects ? c->max_redirects
                        : s->opts.max_redirects ? s->opts.max_redirects : DEFAULT_MAX_REDIRECTS;
    return &c->task;
}

/* Writes st->wdata as one chunk of the streamed body. */
static async_status body_write_run(async_task *t) {
    async_http_call *c = (async_http_call *)t;
    call_state *st = (call_state *)c->state;
    char size[32];
    int rc;
    ASYNC_BEGIN(t);
    ASYNC_TIMEOUT(t, &st->dl, call_left(t, st)) {
        ASYNC_TRY(t) {
            snprintf(size, sizeof size, "%lx\r\n", (unsigned long)st->wlen);
            rc = async_stream_write(&c->conn->stream, size, strlen(size));
            if (!rc) rc = async_stream_write(&c->conn->stream, st->wdata, st->wlen);
            if (!rc) rc = async_stream_write(&c->conn->stream, "\r\n", 2);
            if (rc) ASYNC_THROW_ERROR(t, async_error_of(rc));
            AWAIT_STREAM_DRAIN(t, &c->conn->stream, -1); /* one piece in flight at a time */
        }
        ASYNC_CATCH(t) {
            call_abort(c);
            ASYNC_RERAISE(t);
        }
        ASYNC_END_TRY(t);
    }
    ASYNC_END_TIMEOUT(t, &st->dl);
    ASYNC_END(t);
}

async_task *async_http_body_write(async_http_call *c, const void *data, size_t len) {
    call_state *st;
    if (!c) return NULL;
    if (!async_task_init(&c->task, len ? body_write_run : call_noop_run)) return &c->task;
    st = (call_state *)c->state;
    if (!st || !st->body_open || !c->conn || (len && !data)) return call_fail(c, ASYNC_EINVAL);
    /* len 0 does nothing: a chunk of 0 bytes would end the body */
    st->wdata = data;
    st->wlen = len;
    return &c->task;
}

/* Ends the streamed body and reads the response. */
static async_status body_end_run(async_task *t) {
    async_http_call *c = (async_http_call *)t;
    call_state *st = (call_state *)c->state;
    int rc;
    ASYNC_BEGIN(t);
    ASYNC_TIMEOUT(t, &st->dl, call_left(t, st)) {
        ASYNC_TRY(t) {
            st->body_open = false;
            rc = async_stream_write(&c->conn->stream, "0\r\n\r\n", 5);
            if (rc) ASYNC_THROW_ERROR(t, async_error_of(rc));
            AWAIT_STREAM_DRAIN(t, &c->conn->stream, -1);
            st->r.reused = false; /* no second sending: a stale connection is an error now */
            AWAIT(t, recv_start(&st->r.rx, &c->conn->stream, &st->r, false, 0, st->read_ms));
            call_received(c, st);
        }
        ASYNC_CATCH(t) {
            call_abort(c);
            ASYNC_RERAISE(t);
        }
        ASYNC_END_TRY(t);
    }
    ASYNC_END_TIMEOUT(t, &st->dl);
    if ((c->flags & ASYNC_HTTP_RAISE_FOR_STATUS) && st->r.status >= 400)
        ASYNC_THROW_ERROR(t, status_error(st->r.status));
    ASYNC_END(t);
}

async_task *async_http_body_end(async_http_call *c) {
    call_state *st;
    if (!c) return NULL;
    if (!async_task_init(&c->task, body_end_run)) return &c->task;
    st = (call_state *)c->state;
    if (!st || !st->body_open || !c->conn) return call_fail(c, ASYNC_EINVAL);
    return &c->task;
}

/* Lets the parser go on after its pause; false if it had stopped at an error instead (the head of a
 * streamed response is handed over as soon as it is parsed, and the body bytes that came with it may
 * already have failed: http_parser asserts, and aborts the program, when such a parser is unpaused). */
static bool parser_resume(http_parser *p) {
    if (HTTP_PARSER_ERRNO(p) != HPE_OK && HTTP_PARSER_ERRNO(p) != HPE_PAUSED) return false;
    http_parser_pause(p, 0);
    return true;
}

/* Reads the next piece of a streamed response body into st->buf. */
static async_status body_read_run(async_task *t) {
    async_http_call *c = (async_http_call *)t;
    call_state *st = (call_state *)c->state;
    http_resp *r = &st->r;
    const char *data;
    size_t len, n;
    ASYNC_BEGIN(t);
    ASYNC_TIMEOUT(t, &st->dl, call_left(t, st)) {
        ASYNC_TRY(t) {
            for (;;) {
                if (r->body_pos < r->body_len) { /* a piece the parser left */
                    n = r->body_len - r->body_pos < st->cap ? r->body_len - r->body_pos : st->cap;
                    memcpy(st->buf, r->body + r->body_pos, n);
                    r->body_pos += n;
                    *st->out = n;
                    break;
                }
                if (r->complete) { /* the end: the connection goes back */
                    *st->out = 0;
                    async_stream_peek(&c->conn->stream, &len);
                    call_release(c, r->keep_alive && !len);
                    break;
                }
                body_clear(r);
                data = async_stream_peek(&c->conn->stream, &len);
                if (len) {
                    if (!parser_resume(&r->parser)) ASYNC_THROW(t, ASYNC_EPROTO, "malformed HTTP response");
                    n = http_parser_execute(&r->parser, &settings, data, len);
                    async_stream_consume(&c->conn->stream, n);
                    if (r->error) ASYNC_THROW_ERROR(t, async_error_of(r->error));
                    if (HTTP_PARSER_ERRNO(&r->parser) != HPE_OK && HTTP_PARSER_ERRNO(&r->parser) != HPE_PAUSED)
                        ASYNC_THROW(t, ASYNC_EPROTO, "malformed HTTP response");
                    continue;
                }
                AWAIT_STREAM_FILL(t, &c->conn->stream, HEAD_LIMIT + 65536, &r->rx.n, st->read_ms);
                if (r->rx.n == 0) {
                    if (!parser_resume(&r->parser)) ASYNC_THROW(t, ASYNC_EPROTO, "malformed HTTP response");
                    http_parser_execute(&r->parser, &settings, NULL, 0);
                    if (!r->complete) ASYNC_THROW(t, ASYNC_ENODATA, "connection closed in the middle of the response");
                }
            }
        }
        ASYNC_CATCH(t) {
            call_abort(c);
            ASYNC_RERAISE(t);
        }
        ASYNC_END_TRY(t);
    }
    ASYNC_END_TIMEOUT(t, &st->dl);
    ASYNC_END(t);
}

async_task *async_http_body_read(async_http_call *c, void *buf, size_t cap, size_t *n) {
    call_state *st;
    if (!c) return NULL;
    if (!async_task_init(&c->task, body_read_run)) return &c->task;
    st = (call_state *)c->state;
    if (st && !st->r.streaming && st->r.status == 101 && (c->flags & ASYNC_HTTP_STREAM_RESPONSE) && buf && cap && n) {
        /* a 101 has no body (the connection speaks another protocol now): its streamed body is empty */
        *n = 0;
        async_task_init(&c->task, call_noop_run);
        return &c->task;
    }
    if (!st || !st->r.streaming || !buf || !cap || !n) return call_fail(c, ASYNC_EINVAL);
    if (!c->conn && st->r.body_pos >= st->r.body_len) { /* read to its end already */
        *n = 0;
        async_task_init(&c->task, call_noop_run);
        return &c->task;
    }
    st->buf = buf;
    st->cap = cap;
    st->out = n;
    return &c->task;
}

int async_http_call_status(const async_http_call *c) {
    return c && c->state ? ((const call_state *)c->state)->r.status : 0;
}

const char *async_http_call_header(const async_http_call *c, const char *name) {
    return c && c->state ? resp_header(&((const call_state *)c->state)->r, name) : NULL;
}

const char *async_http_call_body(const async_http_call *c, size_t *len) {
    const http_resp *r = c && c->state ? &((const call_state *)c->state)->r : NULL;
    bool have = r && r->body && !r->streaming;
    if (len) *len = have ? r->body_len : 0;
    return have ? r->body : "";
}

const char *async_http_call_url(const async_http_call *c) {
    return c && c->state ? ((const call_state *)c->state)->r.url : "";
}

void async_http_call_close(async_http_call *c) {
    call_state *st;
    if (!c) return;
    if (c->session) call_abort(c);
    st = (call_state *)c->state;
    if (st) {
        free(st->r.head);
        free(st->r.body);
        free(st->req);
        free(st);
    }
    c->state = NULL;
    c->session = NULL;
}
