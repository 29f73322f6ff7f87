/* The HTTP/1.1 server: one coroutine per connection on the stream server, parsing with libhttp-parser.
 *
 * Why http-parser rather than a parser of our own: it is the parser Node.js shipped for a decade,
 * fuzzed and hardened against request smuggling (conflicting Content-Length / Transfer-Encoding, bare
 * CR, bad chunk sizes), it keeps no buffer of its own (callbacks point into ours), and a hand-written
 * parser would not be measurably faster at the sizes that matter: in W4 the parser's share of a
 * request is well under a microsecond, the kernel's loopback TCP work is most of the rest.
 *
 * The loop of a connection: parse what is buffered (the parser pauses at each message end, so
 * pipelined requests are answered one by one, in order), answer, and only when the buffer holds no
 * complete request flush the answers and read more. The request line, the header fields and the body
 * are copied out of the read buffer as they are parsed (a message may span reads) into one growing
 * block per connection, bounded by the limits. */
#include "net.h"

#include <http_parser.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/socket.h>

#define DEFAULT_REQUEST_LINE (8 * 1024)
#define DEFAULT_HEADER_BYTES (16 * 1024)
#define DEFAULT_HEADERS 64
#define DEFAULT_BODY ((size_t)1 << 20)
#define DEFAULT_IDLE_MS 30000
#define DEFAULT_REQUEST_MS 10000
#define READ_CHUNK 65536
#define DEFAULT_LINGER_MS 1000

typedef struct http_conn {
    async_task task;
    async_stream *s;
    async_http_server *hs;
    http_parser parser;
    char *head; /* target, then name\0value\0 pairs, NUL-separated */
    size_t head_len, head_cap, url_len, header_bytes;
    size_t *offs; /* per header: name offset, value offset */
    const char **ptrs; /* per header: name, value (built for the handler) */
    size_t nheaders, offs_cap;
    char *body;
    size_t body_len, body_cap;
    int last; /* 0 none, 1 url, 2 field, 3 value */
    int reject; /* an error status to answer with, then close */
    bool started; /* bytes of a request have arrived */
    bool complete;
    bool keep_alive;
    size_t n;
    async_ms deadline;
} http_conn;

/* ---- parser callbacks: copy the pieces of the message out of the read buffer ---- */

static int append(http_conn *c, const char *p, size_t n) {
    if (c->head_len + n + 1 > c->head_cap) {
        size_t cap = c->head_cap ? c->head_cap : 512;
        char *q;
        while (cap < c->head_len + n + 1) cap *= 2;
        q = (char *)realloc(c->head, cap);
        if (!q) {
            c->reject = 500;
            return 1;
        }
        c->head = q;
        c->head_cap = cap;
    }
    memcpy(c->head + c->head_len, p, n);
    c->head_len += n;
    /* Always NUL-terminated (room kept above): the trailers of a chunked body come as fields after
     * on_headers_complete and nothing ends the last one, whose value the handler then read on into the
     * bytes of an earlier, longer request. */
    c->head[c->head_len] = '\0';
    return 0;
}

static int end_piece(http_conn *c) {
    if (c->last == 0) return 0;
    if (append(c, "", 1)) return 1; /* the NUL ending the previous piece */
    return 0;
}

static int on_message_begin(http_parser *p) {
    http_conn *c = (http_conn *)p->data;
    c->head_len = c->url_len = c->header_bytes = c->nheaders = c->body_len = 0;
    c->last = 0;
    c->started = true;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n) {
    http_conn *c = (http_conn *)p->data;
    c->url_len += n;
    if (c->url_len > c->hs->limits.max_request_line) {
        c->reject = 414;
        return 1;
    }
    c->last = 1;
    return append(c, at, n);
}

static int on_header_field(http_parser *p, const char *at, size_t n) {
    http_conn *c = (http_conn *)p->data;
    c->header_bytes += n;
    if (c->header_bytes > c->hs->limits.max_header_bytes) {
        c->reject = 431;
        return 1;
    }
    if (c->last != 2) { /* a new field */
        if (end_piece(c)) return 1;
        if (c->nheaders == c->hs->limits.max_headers) {
            c->reject = 431;
            return 1;
        }
        if (c->nheaders == c->offs_cap) {
            size_t cap = c->offs_cap ? c->offs_cap * 2 : 16;
            size_t *o = (size_t *)realloc(c->offs, cap * 2 * sizeof *o);
            const char **q;
            if (!o) {
                c->reject = 500;
                return 1;
            }
            c->offs = o;
            q = (const char **)realloc((void *)c->ptrs, cap * 2 * sizeof *q); /* names, then values */
            if (!q) {
                c->reject = 500;
                return 1;
            }
            c->ptrs = q;
            c->offs_cap = cap;
        }
        c->offs[2 * c->nheaders] = c->head_len;
        c->offs[2 * c->nheaders + 1] = c->head_len; /* an empty value until one comes */
        c->nheaders++;
        c->last = 2;
    }
    return append(c, at, n);
}

static int on_header_value(http_parser *p, const char *at, size_t n) {
    http_conn *c = (http_conn *)p->data;
    c->header_bytes += n;
    if (c->header_bytes > c->hs->limits.max_header_bytes) {
        c->reject = 431;
        return 1;
    }
    if (c->last != 3) {
        if (end_piece(c)) return 1;
        c->offs[2 * c->nheaders - 1] = c->head_len;
        c->last = 3;
    }
    return append(c, at, n);
}

/* Whether the request so far has "Expect: 100-continue" (names and values are NUL-terminated pieces of
 * c->head by now). */
static bool expects_continue(const http_conn *c) {
    size_t i;
    for (i = 0; i < c->nheaders; i++)
        if (strcasecmp(c->head + c->offs[2 * i], "Expect") == 0 &&
            strcasecmp(c->head + c->offs[2 * i + 1], "100-continue") == 0)
            return true;
    return false;
}

/* Errors return -1 here: 1 would mean "no body" to the parser. */
static int on_headers_complete(http_parser *p) {
    http_conn *c = (http_conn *)p->data;
    if (c->last == 2) { /* a field without a value: the value is the empty string after its NUL */
        if (end_piece(c)) return -1;
        c->offs[2 * c->nheaders - 1] = c->head_len;
        c->last = 3;
    }
    if (c->last == 0) c->last = 1; /* no target piece came: the NUL below still gives an empty one */
    if (end_piece(c)) return -1;
    if (p->content_length != ULLONG_MAX && p->content_length > c->hs->limits.max_body) {
        c->reject = 413; /* answered at once, so a client that waits for 100 Continue sends nothing */
        return -1;
    }
    if (p->http_major == 1 && p->http_minor >= 1 && expects_continue(c) &&
        ((p->content_length != ULLONG_MAX && p->content_length > 0) || (p->flags & F_CHUNKED))) {
        /* RFC 9110 10.1.1: the client waits for this before it sends the body (curl for a second), so
         * it goes out now: the connection's loop drains it before it reads again */
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        if (async_stream_write(c->s, cont, sizeof cont - 1)) {
            c->reject = 500;
            return -1;
        }
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n) {
    http_conn *c = (http_conn *)p->data;
    if (c->body_len + n > c->hs->limits.max_body) {
        c->reject = 413;
        return 1;
    }
    if (c->body_len + n + 1 > c->body_cap) {
        size_t cap = c->body_cap ? c->body_cap : 1024;
        char *q;
        while (cap < c->body_len + n + 1) cap *= 2;
        q = (char *)realloc(c->body, cap);
        if (!q) {
            c->reject = 500;
            return 1;
        }
        c->body = q;
        c->body_cap = cap;
    }
    memcpy(c->body + c->body_len, at, n);
    c->body_len += n;
    return 0;
}

static int on_message_complete(http_parser *p) {
    http_conn *c = (http_conn *)p->data;
    c->complete = true;
    c->keep_alive = http_should_keep_alive(p) != 0;
    http_parser_pause(p, 1); /* one request at a time: pipelined ones wait in the buffer */
    return 0;
}

static const http_parser_settings settings = {
    on_message_begin, on_url, NULL, on_header_field, on_header_value, on_headers_complete, on_body,
    on_message_complete, NULL, NULL,
};

/* ---- responses ---- */

static const char *reason(int status) {
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return status < 300 ? "OK" : status < 400 ? "Redirect" : status < 500 ? "Client Error" : "Server Error";
    }
}

static char *put(char *o, const char *s) {
    size_t n = strlen(s);
    memcpy(o, s, n);
    return o + n;
}

static char *put_num(char *o, unsigned long long v) {
    char tmp[24];
    int i = 0;
    do tmp[i++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    while (i) *o++ = tmp[--i];
    return o;
}

/* The Connection header of a response: none (HTTP/1.1 keeps the connection), close, or keep-alive (an
 * HTTP/1.0 client that asked to keep it: without the header it would close, RFC 9112 C.2.2). */
enum { CONN_DEFAULT, CONN_CLOSE, CONN_KEEP };

/* Writes one response: head and body in one send when the body is small. */
static int respond(async_stream *s, int status, const char *type, const char *extra, const void *body, size_t len,
                   int conn, bool head_only) {
    char small[2048], *buf = small, *o;
    size_t extra_len = extra ? strlen(extra) : 0, type_len, head_cap;
    bool together;
    int rc;
    if (status < 100 || status > 999) status = 500;
    if (!type) type = "text/plain";
    type_len = strlen(type);
    head_cap = 160 + type_len + extra_len; /* the fixed parts: at most 126 bytes */
    together = !head_only && head_cap + len <= sizeof small;
    if (head_cap > sizeof small) {
        buf = (char *)malloc(head_cap);
        if (!buf) return ASYNC_ENOMEM;
    }
    o = buf;
    o = put(o, "HTTP/1.1 ");
    o = put_num(o, (unsigned)status);
    *o++ = ' ';
    o = put(o, reason(status));
    o = put(o, "\r\nContent-Length: ");
    o = put_num(o, len);
    o = put(o, "\r\nContent-Type: ");
    memcpy(o, type, type_len);
    o += type_len;
    o = put(o, conn == CONN_CLOSE  ? "\r\nConnection: close\r\n"
               : conn == CONN_KEEP ? "\r\nConnection: keep-alive\r\n"
                                   : "\r\n");
    if (extra_len) {
        memcpy(o, extra, extra_len);
        o += extra_len;
    }
    o = put(o, "\r\n");
    if (together && len) {
        memcpy(o, body, len);
        o += len;
    }
    rc = async_stream_write(s, buf, (size_t)(o - buf));
    if (!rc && !together && !head_only && len) rc = async_stream_write(s, body, len);
    if (buf != small) free(buf);
    return rc;
}

static int respond_error(http_conn *c, int status) {
    const char *text = reason(status);
    return respond(c->s, status, "text/plain", NULL, text, strlen(text), CONN_CLOSE, false);
}

/* Calls the handler for the parsed request and writes its response. */
static int dispatch(http_conn *c) {
    async_http_request req;
    async_http_response res;
    size_t i;
    int rc;
    bool close;
    for (i = 0; i < c->nheaders; i++) {
        c->ptrs[i] = c->head + c->offs[2 * i];
        c->ptrs[c->offs_cap + i] = c->head + c->offs[2 * i + 1];
    }
    memset(&req, 0, sizeof req);
    memset(&res, 0, sizeof res);
    req.method = http_method_str((enum http_method)c->parser.method);
    req.target = c->head ? c->head : "";
    req.version_minor = c->parser.http_minor;
    req.nheaders = c->nheaders;
    req.names = c->ptrs;
    req.values = c->ptrs ? c->ptrs + c->offs_cap : NULL;
    if (c->body) c->body[c->body_len] = '\0';
    req.body = c->body ? c->body : "";
    req.body_len = c->body_len;
    rc = c->hs->handler(&req, &res, c->hs->arg);
    close = res.close || !c->keep_alive || async_server_closing(&c->hs->server);
    c->keep_alive = !close;
    if (rc) { /* the 500 says "Connection: close": then close (RFC 9112 9.6), not read what is pipelined */
        c->keep_alive = false;
        return respond(c->s, 500, "text/plain", NULL, "Internal Server Error", 21, CONN_CLOSE, false) ? rc : 0;
    }
    return respond(c->s, res.status ? res.status : 200, res.content_type, res.headers, res.body, res.body_len,
                   close ? CONN_CLOSE : c->parser.http_minor == 0 ? CONN_KEEP : CONN_DEFAULT,
                   c->parser.method == HTTP_HEAD);
}

const char *async_http_request_header(const async_http_request *req, const char *name) {
    size_t i;
    if (!req || !name) return NULL;
    for (i = 0; i < req->nheaders; i++)
        if (strcasecmp(req->names[i], name) == 0) return req->values[i];
    return NULL;
}

static int32_t ms_left(async_task *t, async_ms deadline) {
    int32_t d = (int32_t)(deadline - async_loop_now(async_task_loop(t)));
    return d > 0 ? d : 0;
}

static async_status conn_run(async_task *t) {
    http_conn *c = (http_conn *)t;
    const async_http_limits *lim = &c->hs->limits;
    const char *data;
    size_t len, n;
    ASYNC_BEGIN(t);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    ASYNC_TRY(t) {
        for (;;) {
            data = async_stream_peek(c->s, &len);
            if (len) {
                n = http_parser_execute(&c->parser, &settings, data, len);
                async_stream_consume(c->s, n);
                if (c->complete) {
                    c->complete = c->started = false;
                    http_parser_pause(&c->parser, 0);
                    if (dispatch(c) || !c->keep_alive) break;
                    continue; /* a pipelined request may follow in the buffer */
                }
                if (c->reject || HTTP_PARSER_ERRNO(&c->parser) != HPE_OK) {
                    respond_error(c, c->reject ? c->reject : 400);
                    break;
                }
            }
            /* the buffer holds no complete request: send the answers, then read */
            if (async_stream_pending(c->s)) AWAIT_STREAM_DRAIN(t, c->s, lim->request_ms);
            if (!c->started) {
                if (async_server_closing(&c->hs->server)) break;
                c->deadline = async_loop_now(async_task_loop(t)) + (async_ms)lim->idle_ms;
                async_stream_set_idle(c->s, true);
            }
            ASYNC_TRY(t) {
                AWAIT_STREAM_FILL(t, c->s, READ_CHUNK + lim->max_request_line + lim->max_header_bytes, &c->n,
                                  ms_left(t, c->deadline));
            }
            ASYNC_CATCH(t) {
                if (async_caught(t)->code != ASYNC_ETIMEDOUT || !c->started) ASYNC_RERAISE(t);
                respond_error(c, 408); /* the request did not arrive in time */
                c->n = 0;
                c->reject = 408;
            }
            ASYNC_END_TRY(t);
            if (c->reject) break;
            async_stream_set_idle(c->s, false);
            if (c->n == 0) break; /* the client closed */
            if (!c->started) {
                c->started = true; /* the request's clock starts with its first byte */
                c->deadline = async_loop_now(async_task_loop(t)) + (async_ms)lim->request_ms;
            }
        }
        if (async_stream_pending(c->s)) AWAIT_STREAM_DRAIN(t, c->s, lim->request_ms);
        if (c->reject) { /* lingering close: a client still sending would get a reset that destroys the
                          * answer it has not read yet, so read and drop its bytes for a while first */
            shutdown(async_stream_fd(c->s), SHUT_WR);
            c->deadline = async_loop_now(async_task_loop(t)) + (async_ms)lim->linger_ms;
            do {
                async_stream_consume(c->s, (size_t)-1);
                AWAIT_STREAM_FILL(t, c->s, READ_CHUNK, &c->n, ms_left(t, c->deadline));
            } while (c->n);
        }
    }
    ASYNC_FINALLY(t) {
        free(c->head);
        free(c->offs);
        free((void *)c->ptrs);
        free(c->body);
        c->head = NULL;
        c->offs = NULL;
        c->ptrs = NULL;
        c->body = NULL;
    }
    ASYNC_END_TRY(t);
    ASYNC_END(t);
}

static async_task *conn_new(void *frame, async_stream *s, void *arg) {
    http_conn *c = (http_conn *)frame;
    if (!async_task_init(&c->task, conn_run)) return NULL;
    c->s = s;
    c->hs = (async_http_server *)arg;
    return &c->task;
}

int async_http_server_listen(async_http_server *hs, const char *host, int port, unsigned flags,
                             const async_http_limits *limits, async_http_handler handler, void *arg) {
    async_http_limits *l;
    if (!hs || !handler) return ASYNC_EINVAL;
    /* the deadlines of the loop's 32-bit clock: more is refused, never cut short */
    if (limits && (limits->idle_ms > ASYNC_MS_MAX || limits->request_ms > ASYNC_MS_MAX ||
                   limits->linger_ms > ASYNC_MS_MAX))
        return ASYNC_ERANGE;
    memset(hs, 0, sizeof *hs); /* a zeroed server is one that never listened (async_server_serve says so) */
    l = &hs->limits;
    if (limits) *l = *limits;
    if (!l->max_request_line) l->max_request_line = DEFAULT_REQUEST_LINE;
    if (!l->max_header_bytes) l->max_header_bytes = DEFAULT_HEADER_BYTES;
    if (!l->max_headers) l->max_headers = DEFAULT_HEADERS;
    if (!l->max_body) l->max_body = DEFAULT_BODY;
    if (l->idle_ms <= 0) l->idle_ms = DEFAULT_IDLE_MS;
    if (l->request_ms <= 0) l->request_ms = DEFAULT_REQUEST_MS;
    if (l->linger_ms <= 0) l->linger_ms = DEFAULT_LINGER_MS;
    hs->handler = handler;
    hs->arg = arg;
    return async_server_listen(&hs->server, host, port, flags, sizeof(http_conn), conn_new, hs);
}

async_task *async_http_server_serve(async_http_server *hs) { return hs ? async_server_serve(&hs->server) : NULL; }
void async_http_server_close(async_http_server *hs, int64_t grace_ms) {
    if (hs) async_server_close(&hs->server, grace_ms);
}
int async_http_server_port(const async_http_server *hs) { return hs ? async_server_port(&hs->server) : 0; }
