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
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>

#define DEFAULT_REQUEST_LINE (8 * 1024)
#define DEFAULT_HEADER_BYTES (64 * 1024)
#define DEFAULT_HEADERS 256
#define DEFAULT_BODY ((size_t)1 << 20)
#define DEFAULT_IDLE_MS 30000
#define DEFAULT_REQUEST_MS 10000
#define READ_CHUNK 65536
#define DEFAULT_LINGER_MS 1000
#define MAX_PARAMS 8

struct http_conn;

/* The watchdog of a connection: while a handler awaits, it watches the socket for the client going away
 * (end of stream or an error) and cancels the handler then. It is one task per connection, started with
 * the first handler, and it sleeps on an event between handlers. */
typedef struct http_dog {
    async_task task;
    struct http_conn *c;
} http_dog;

/* How the response of the request in flight is being sent. */
enum { RES_NONE, RES_CHUNKED, RES_LENGTH, RES_TO_CLOSE, RES_TAKEN };

typedef struct http_conn {
    async_task task;
    async_loop *loop; /* the task's loop, kept at hand */
    async_stream *s;
    async_http_server *hs;
    http_parser parser;
    char *head; /* target, then name\0value\0 pairs, NUL-separated; at dispatch the decoded path and params */
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
    /* the request in flight and its handler */
    async_http_request req;
    async_http_response res;
    const async_http_route *route;
    async_task *h; /* the handler's frame, in `frame` below */
    size_t nparams;
    const char *pname[MAX_PARAMS]; /* into the route's pattern, pname_len bytes */
    size_t pname_len[MAX_PARAMS], pval[MAX_PARAMS]; /* pval: offsets of the decoded values in head */
    char *query; /* the decoded query: name\0value\0 ..., nquery pairs; built on the first lookup */
    size_t nquery;
    bool query_done;
    char peer[64];
    char *rh; /* the response's extra header lines */
    size_t rh_len, rh_cap;
    int mode; /* RES_* */
    bool has_type, has_length, head_only;
    unsigned long long length_left;
    /* a body streamed to its handler (a route with ASYNC_HTTP_READ_BODY) */
    bool streaming;    /* the request's body is read by its handler */
    bool in_body;      /* the head is parsed: fields from now on are trailers */
    bool body_done;    /* the body has been read to its end */
    bool to_user;      /* on_body copies into ubuf */
    char *ubuf;
    size_t ucap, ugot, body_pos;
    struct {
        async_task task;
        struct http_conn *c;
        char *buf;
        size_t cap, *out;
        int64_t ms;
        async_ms deadline;
        size_t n;
    } rd; /* the read AWAIT_HTTP_REQUEST_READ runs */
    /* the watchdog */
    bool h_running, watching, gone, over, dog_started;
    int herr; /* what the handler raised */
    async_io watch;
    async_event wake;
    async__cb nudge; /* at the end of the pass a handler started in: wakes the watchdog if it still runs */
    http_dog dog;
    union {
        void *p;
        double d;
        long long ll;
    } frame[]; /* the handlers' frames: the server's largest */
} http_conn;

/* ---- parser callbacks: copy the pieces of the message out of the read buffer ---- */

/* Makes room for n more bytes and a NUL in the head block. */
static int reserve(http_conn *c, size_t n) {
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
    return 0;
}

static int append(http_conn *c, const char *p, size_t n) {
    if (reserve(c, n)) return 1;
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
    if (c->streaming) return 0; /* a trailer of a streamed body: the handler holds pointers into head */
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
    if (c->streaming) return 0;
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

/* The characters of an HTTP token (RFC 9110 5.6.2): what a field name is made of. A table, since every
 * character of every field name of every request goes through it. */
static const unsigned char tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1, ['-'] = 1, ['.'] = 1,
    ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1, ['~'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1,
    ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1,
    ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1,
    ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1,
    ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

static bool is_tchar(int ch) { return tchar[(unsigned char)ch] != 0; }

/* Why the request's head must be refused (RFC 9112), or 0: a request line without a version (HTTP/0.9,
 * which has no headers to say anything with) is a 400, a major version other than 1 a 505; a field name
 * must be a token; an HTTP/1.1 request needs exactly one Host (3.2, also for 1.0 there may be one at most);
 * a CONNECT no route names is a 501. */
static int head_refusal(const http_conn *c, const http_parser *p) {
    size_t i, hosts = 0;
    if (p->http_major == 0) return 400;
    if (p->http_major != 1) return 505;
    for (i = 0; i < c->nheaders; i++) { /* http-parser lets "Name : value" through (RFC 9112 5.1: a 400) */
        const char *name = c->head + c->offs[2 * i], *q;
        for (q = name; tchar[(unsigned char)*q]; q++) continue;
        if (*q || q == name) return 400;
        if (q - name == 4 && strcasecmp(name, "Host") == 0) hosts++;
    }
    if (hosts > 1 || (p->http_minor >= 1 && hosts != 1)) return 400;
    if (p->method == HTTP_CONNECT) {
        const async_http_route *r;
        for (r = c->hs->routes; r->fn; r++)
            if (r->method && strcmp(r->method, "CONNECT") == 0) return 0;
        return 501;
    }
    return 0;
}

static bool streams_body(http_conn *c, const http_parser *p);

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
    c->reject = head_refusal(c, p);
    if (c->reject) return -1;
    if (p->content_length != ULLONG_MAX && p->content_length > c->hs->limits.max_body) {
        c->reject = 413; /* answered at once, so a client that waits for 100 Continue sends nothing */
        return -1;
    }
    if (c->hs->stream_routes && ((p->content_length != ULLONG_MAX && p->content_length > 0) || (p->flags & F_CHUNKED)) &&
        streams_body(c, p)) {
        c->streaming = true; /* the handler starts now and reads the body itself */
        c->keep_alive = http_should_keep_alive(p) != 0;
        http_parser_pause(p, 1);
    }
    if (p->http_major == 1 && p->http_minor >= 1 &&
        ((p->content_length != ULLONG_MAX && p->content_length > 0) || (p->flags & F_CHUNKED)) && expects_continue(c)) {
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
    if (c->to_user) { /* streamed: the reader fed at most ucap - ugot bytes, so the body's part fits */
        memcpy(c->ubuf + c->ugot, at, n);
        c->ugot += n;
        c->body_len += n;
        return 0;
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

/* The reason phrases of the IANA HTTP status code registry. */
static const char *reason(int status) {
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 102: return "Processing";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 207: return "Multi-Status";
    case 208: return "Already Reported";
    case 226: return "IM Used";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 305: return "Use Proxy";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 423: return "Locked";
    case 424: return "Failed Dependency";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 506: return "Variant Also Negotiates";
    case 507: return "Insufficient Storage";
    case 508: return "Loop Detected";
    case 511: return "Network Authentication Required";
    default: return status < 200 ? "Informational" : status < 300 ? "Success" : status < 400 ? "Redirection"
                  : status < 500 ? "Client Error" : "Server Error";
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

const char net__month_names[] = "JanFebMarAprMayJunJulAugSepOctNovDec";

void net__http_date(long long t, char out[32]) {
    static const char days[] = "SunMonTueWedThuFriSat";
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm)) {
        tt = 0;
        gmtime_r(&tt, &tm);
    }
    snprintf(out, 32, "%.3s, %02u %.3s %04u %02u:%02u:%02u GMT", days + 3 * tm.tm_wday, (unsigned)tm.tm_mday % 100u,
             net__month_names + 3 * tm.tm_mon, (unsigned)(tm.tm_year + 1900) % 10000u, (unsigned)tm.tm_hour % 100u,
             (unsigned)tm.tm_min % 100u, (unsigned)tm.tm_sec % 100u);
}

/* In the simulated world (async/sim.h) the time of day is this date, 2000-01-01 00:00:00 UTC, plus the
 * loop's virtual time: the world reads no real clock, so that a seed replays its run byte for byte. */
#define SIM_EPOCH 946684800LL

long long net__sim_time_of_day(async_ms ms) { return SIM_EPOCH + (long long)(ms / 1000u); }

/* The time of day on loop, in seconds since the epoch: the OS's, or the world's. */
static long long loop_time(async_loop *loop) {
    if (loop && async__loop_is_sim(loop)) return net__sim_time_of_day(async_loop_now(loop));
    return (long long)time(NULL);
}

/* The Date header (RFC 9110 6.6.1) of a response on loop, remade once a second. */
static const char *date_line(async_http_server *hs, async_loop *loop) {
    long long now = loop_time(loop);
    if ((long)now != hs->date_sec) {
        char date[32];
        net__http_date(now, date);
        snprintf(hs->date, sizeof hs->date, "Date: %s\r\n", date);
        hs->date_sec = (long)now;
    }
    return hs->date;
}

/* The Connection header of a response: none (HTTP/1.1 keeps the connection), close, or keep-alive (an
 * HTTP/1.0 client that asked to keep it: without the header it would close, RFC 9112 C.2.2). */
enum { CONN_DEFAULT, CONN_CLOSE, CONN_KEEP };

/* How the body of a response is framed in its head. */
enum { BODY_LENGTH, BODY_CHUNKED, BODY_TO_CLOSE };

/* Writes a response head, and the body with it when it is small enough to go in one send. */
static int respond(http_conn *c, int status, const char *type, const char *extra, size_t extra_len, int framing,
                   unsigned long long len, const void *body, int conn) {
    char small[2048], *buf = small, *o;
    const char *date = date_line(c->hs, c->loop);
    size_t type_len, head_cap, date_len = strlen(date);
    bool together;
    int rc;
    if (status < 200 || status > 999) status = 500; /* a 1xx is not a final answer */
    if (status == 204 || status == 304) { /* never a body (RFC 9110 15.3.5, 15.4.5) */
        framing = BODY_TO_CLOSE;
        type = NULL;
        body = NULL;
        len = 0;
    }
    type_len = type ? strlen(type) : 0;
    head_cap = 200 + type_len + extra_len + date_len; /* the fixed parts: at most 150 bytes */
    together = body && len <= sizeof small && head_cap + len <= sizeof small;
    if (head_cap > sizeof small) {
        buf = (char *)malloc(head_cap);
        if (!buf) return ASYNC_ENOMEM;
    }
    o = buf;
    o = put(o, "HTTP/1.1 ");
    o = put_num(o, (unsigned)status);
    *o++ = ' ';
    o = put(o, reason(status));
    o = put(o, "\r\n");
    if (framing == BODY_LENGTH) {
        o = put(o, "Content-Length: ");
        o = put_num(o, len);
        o = put(o, "\r\n");
    } else if (framing == BODY_CHUNKED) {
        o = put(o, "Transfer-Encoding: chunked\r\n");
    }
    if (type) {
        o = put(o, "Content-Type: ");
        memcpy(o, type, type_len);
        o += type_len;
        o = put(o, "\r\n");
    }
    o = put(o, conn == CONN_CLOSE ? "Connection: close\r\n" : conn == CONN_KEEP ? "Connection: keep-alive\r\n" : "");
    memcpy(o, date, date_len);
    o += date_len;
    if (extra_len) {
        memcpy(o, extra, extra_len);
        o += extra_len;
    }
    o = put(o, "\r\n");
    if (together && !c->head_only && len) {
        memcpy(o, body, (size_t)len);
        o += len;
    }
    rc = async_stream_write(c->s, buf, (size_t)(o - buf));
    if (!rc && body && !together && !c->head_only && len) rc = async_stream_write(c->s, body, (size_t)len);
    if (buf != small) free(buf);
    return rc;
}

/* An error answer of the server's own; the connection closes after it. */
static int respond_error(http_conn *c, int status, const char *extra, size_t extra_len) {
    const char *text = reason(status);
    c->keep_alive = false;
    return respond(c, status, "text/plain; charset=utf-8", extra, extra_len, BODY_LENGTH, strlen(text), text,
                   CONN_CLOSE);
}

static int conn_header(const http_conn *c) {
    return !c->keep_alive ? CONN_CLOSE : c->parser.http_minor == 0 ? CONN_KEEP : CONN_DEFAULT;
}

/* ---- the request's path, route, parameters and query ---- */

static int hexval(int ch) {
    return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
}

/* Percent-decodes in[0, n) into out (room for n bytes), '+' as a space if plus; the decoded length, or
 * -1 for a bad escape or an encoded NUL (which no C string can carry). */
static long decode(const char *in, size_t n, char *out, bool plus) {
    size_t i;
    char *o = out;
    for (i = 0; i < n; i++) {
        int hi, lo;
        if (in[i] == '+' && plus) {
            *o++ = ' ';
        } else if (in[i] != '%') {
            *o++ = in[i];
        } else {
            if (i + 2 >= n) return -1;
            hi = hexval((unsigned char)in[i + 1]);
            lo = hexval((unsigned char)in[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) return -1;
            *o++ = (char)(hi * 16 + lo);
            i += 2;
        }
    }
    return (long)(o - out);
}

/* Appends in[0, n) decoded, and a NUL, to the head block; its offset there, or (size_t)-1 on a bad escape
 * (c->reject 400) or no memory (c->reject 500). */
static size_t append_decoded(http_conn *c, const char *in, size_t n) {
    size_t at = c->head_len;
    long len;
    if (append(c, in, n)) return (size_t)-1; /* room for it: decoding only shrinks */
    len = decode(c->head + at, n, c->head + at, false);
    if (len < 0) {
        c->reject = 400;
        return (size_t)-1;
    }
    c->head_len = at + (size_t)len;
    c->head[c->head_len] = '\0';
    if (append(c, "", 1)) return (size_t)-1;
    return at;
}

/* Whether a raw path segment equals a literal one once decoded. */
static bool segment_is(const char *lit, size_t lit_len, const char *raw, size_t raw_len) {
    size_t i = 0, j = 0;
    while (j < raw_len) {
        int ch = (unsigned char)raw[j];
        if (ch == '%') {
            int hi, lo;
            if (j + 2 >= raw_len) return false;
            hi = hexval((unsigned char)raw[j + 1]);
            lo = hexval((unsigned char)raw[j + 2]);
            if (hi < 0 || lo < 0) return false;
            ch = hi * 16 + lo;
            j += 3;
        } else {
            j++;
        }
        if (i == lit_len || (unsigned char)lit[i] != ch) return false;
        i++;
    }
    return i == lit_len;
}

/* Matches a raw path against a route's pattern; on a match the parameters' raw values are left in
 * c->pname/pval as (raw offset into path, length) pairs: pval[k] is the offset, plen[k] the length. */
static bool match(http_conn *c, const char *pattern, const char *path, size_t path_len, size_t *plen) {
    const char *p = pattern, *q = path, *end = path + path_len;
    c->nparams = 0;
    if (!pattern) return true;
    while (*p) {
        const char *pseg, *qseg;
        size_t pn, qn;
        if (*p != '/' || q == end || *q != '/') return false;
        p++;
        q++;
        pseg = p;
        while (*p && *p != '/') p++;
        pn = (size_t)(p - pseg);
        qseg = q;
        if (pn >= 2 && pseg[0] == '{' && pseg[pn - 1] == '}') {
            bool rest = pn >= 5 && memcmp(pseg + pn - 4, "...}", 4) == 0;
            size_t k = c->nparams++;
            if (rest) {
                q = end;
            } else {
                while (q < end && *q != '/') q++;
                if (q == qseg) return false; /* {name} takes one segment, not an empty one */
            }
            c->pname[k] = pseg + 1;
            c->pname_len[k] = pn - 2 - (rest ? 3 : 0);
            c->pval[k] = (size_t)(qseg - path);
            plen[k] = (size_t)(q - qseg);
            if (rest) return true;
        } else {
            while (q < end && *q != '/') q++;
            qn = (size_t)(q - qseg);
            if (!segment_is(pseg, pn, qseg, qn)) return false;
        }
    }
    return q == end;
}

static bool method_is(const async_http_route *r, const char *method) {
    if (!r->method) return true;
    if (strcmp(r->method, method) == 0) return true;
    return strcmp(method, "HEAD") == 0 && strcmp(r->method, "GET") == 0;
}

/* Appends to the response's extra header lines. */
static int append_rh(http_conn *c, const char *p, size_t n) {
    if (c->rh_len + n > c->rh_cap) {
        size_t cap = c->rh_cap ? c->rh_cap : 256;
        char *q;
        while (cap < c->rh_len + n) cap *= 2;
        q = (char *)realloc(c->rh, cap);
        if (!q) return ASYNC_ENOMEM;
        c->rh = q;
        c->rh_cap = cap;
    }
    memcpy(c->rh + c->rh_len, p, n);
    c->rh_len += n;
    return 0;
}

/* Finds the route of the request, decodes its path and parameters into the head block, and sets up the
 * handler's frame. 0: the handler is to run; otherwise the status the server answers itself (404, 405 with
 * its Allow line in c->rh, 400 for a path that does not decode, 500 without memory). */
/* The path and the query of the request's target (not decoded): "*", an origin form ("/p?q") or an
 * absolute one ("http://host/p?q", whose empty path is the root: *root). */
static void target_parts(http_conn *c, const char **path, size_t *path_len, const char **query, size_t *query_len,
                         bool *root) {
    struct http_parser_url u;
    const char *target = c->head;
    *path = target;
    *path_len = strlen(target);
    *query = "";
    *query_len = 0;
    *root = false;
    if (target[0] == '/') { /* the origin form, nearly every request: no need for the URL parser */
        size_t n = strcspn(target, "?#");
        *path_len = n;
        if (target[n] == '?') {
            *query = target + n + 1;
            *query_len = strcspn(*query, "#");
        }
        return;
    }
    http_parser_url_init(&u);
    if (strcmp(target, "*") != 0 && http_parser_parse_url(target, strlen(target), c->parser.method == HTTP_CONNECT, &u) == 0) {
        if (u.field_set & (1 << UF_PATH)) {
            *path = target + u.field_data[UF_PATH].off;
            *path_len = u.field_data[UF_PATH].len;
        } else {
            *root = true; /* "http://host" names the root */
            *path = "/";
            *path_len = 1;
        }
        if (u.field_set & (1 << UF_QUERY)) {
            *query = target + u.field_data[UF_QUERY].off;
            *query_len = u.field_data[UF_QUERY].len;
        }
    }
}

/* Whether the route the request's head goes to streams its body (called once the head is parsed). */
static bool streams_body(http_conn *c, const http_parser *p) {
    const char *path, *query, *method = http_method_str((enum http_method)p->method);
    size_t path_len, query_len, plen[MAX_PARAMS];
    bool root;
    const async_http_route *r;
    target_parts(c, &path, &path_len, &query, &query_len, &root);
    for (r = c->hs->routes; r->fn; r++)
        if (match(c, r->pattern, path, path_len, plen) && method_is(r, method)) return (r->flags & ASYNC_HTTP_READ_BODY) != 0;
    return false;
}

static int route_request(http_conn *c) {
    const char *target = c->head, *path, *query;
    size_t path_len, query_len, plen[MAX_PARAMS], k, path_at, query_at;
    const async_http_route *r, *found = NULL;
    bool path_matched = false, root;
    target_parts(c, &path, &path_len, &query, &query_len, &root);
    for (r = c->hs->routes; r->fn; r++) {
        if (!match(c, r->pattern, path, path_len, plen)) continue;
        path_matched = true;
        if (method_is(r, c->req.method)) {
            found = r;
            break;
        }
    }
    c->rh_len = 0;
    if (!found) {
        if (!path_matched) return 404;
        if (append_rh(c, "Allow: ", 7)) return 500;
        for (r = c->hs->routes, k = 0; r->fn; r++) {
            if (!r->method || !match(c, r->pattern, path, path_len, plen)) continue;
            if ((k++ && append_rh(c, ", ", 2)) || append_rh(c, r->method, strlen(r->method))) return 500;
            if (strcmp(r->method, "GET") == 0 && (append_rh(c, ", HEAD", 6))) return 500;
        }
        if (append_rh(c, "\r\n", 2)) return 500;
        return 405;
    }
    /* The decoded pieces go after the head's, copied from it: room for all of them is made first, so that
     * the block does not move under the copies. */
    {
        size_t path_off = root ? 0 : (size_t)(path - target);
        size_t query_off = query_len ? (size_t)(query - target) : 0, need = path_len + query_len + 3;
        for (k = 0; k < c->nparams; k++) need += plen[k] + 1;
        if (reserve(c, need + 1)) return 500;
        c->head[c->head_len++] = '\0'; /* ends the last trailer's value, which nothing else ends */
        path = root ? "/" : c->head + path_off; /* the block may have moved */
        if (!root && path[path_len] == '\0' && !memchr(path, '%', path_len)) {
            path_at = path_off; /* the target is the path, with nothing to decode: no copy */
        } else {
            path_at = append_decoded(c, root ? "/" : c->head + path_off, path_len);
            if (path_at == (size_t)-1) return c->reject ? c->reject : 500;
        }
        for (k = 0; k < c->nparams; k++) {
            size_t at = append_decoded(c, c->head + path_off + c->pval[k], plen[k]);
            if (at == (size_t)-1) return c->reject ? c->reject : 500;
            c->pval[k] = at;
        }
        query_at = c->head_len; /* the raw query again, ended by a NUL (a fragment may follow it) */
        if (append(c, c->head + query_off, query_len) || append(c, "", 1)) return 500;
        if (!query_len) query_at = (size_t)-1;
    }
    c->route = found;
    c->req.path = c->head + path_at;
    c->req.query = query_at == (size_t)-1 ? "" : c->head + query_at;
    return 0;
}


static http_conn *conn_of_req(const async_http_request *req) { return req ? (http_conn *)req->conn : NULL; }
static http_conn *conn_of_res(const async_http_response *res) { return res ? (http_conn *)res->conn : NULL; }

const char *async_http_request_header(const async_http_request *req, const char *name) {
    size_t i;
    if (!req || !name) return NULL;
    for (i = 0; i < req->nheaders; i++)
        if (strcasecmp(req->names[i], name) == 0) return req->values[i];
    return NULL;
}

const char *async_http_request_param(const async_http_request *req, const char *name) {
    http_conn *c = conn_of_req(req);
    size_t k, n;
    if (!c || !name) return NULL;
    n = strlen(name);
    for (k = 0; k < c->nparams; k++)
        if (c->pname_len[k] == n && memcmp(c->pname[k], name, n) == 0) return c->head + c->pval[k];
    return NULL;
}

/* Decodes the whole query once into c->query: name\0value\0 pairs. */
static bool decode_query(http_conn *c) {
    const char *q = c->req.query, *end = q + strlen(q);
    size_t cap = 2 * (size_t)(end - q) + 2;
    char *o;
    if (c->query_done) return c->query != NULL;
    c->query_done = true;
    c->nquery = 0;
    free(c->query);
    c->query = o = (char *)malloc(cap);
    if (!o) return false;
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q)), *eq;
        long n;
        if (!amp) amp = end;
        eq = memchr(q, '=', (size_t)(amp - q));
        if (amp > q) {
            n = decode(q, (size_t)((eq ? eq : amp) - q), o, true);
            if (n >= 0) {
                char *name = o;
                o += n;
                *o++ = '\0';
                n = eq ? decode(eq + 1, (size_t)(amp - eq - 1), o, true) : 0;
                if (n >= 0) {
                    o += n;
                    *o++ = '\0';
                    c->nquery++;
                } else {
                    o = name; /* a pair that does not decode is left out */
                }
            }
        }
        q = amp + 1;
    }
    return true;
}

const char *async_http_request_query(const async_http_request *req, const char *name) {
    http_conn *c = conn_of_req(req);
    const char *p;
    size_t k;
    if (!c || !name || !decode_query(c)) return NULL;
    for (p = c->query, k = 0; k < c->nquery; k++) {
        const char *value = p + strlen(p) + 1;
        if (strcmp(p, name) == 0) return value;
        p = value + strlen(value) + 1;
    }
    return NULL;
}

const char *async_http_request_peer(const async_http_request *req) {
    http_conn *c = conn_of_req(req);
    struct sockaddr_storage ss;
    unsigned len;
    char ip[INET6_ADDRSTRLEN];
    if (!c) return "";
    c->peer[0] = '\0';
    if (net__stream_peer(c->s, &ss, &len)) return c->peer;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)(void *)&ss;
        if (inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip))
            snprintf(c->peer, sizeof c->peer, "%s:%u", ip, (unsigned)ntohs(a->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)(void *)&ss;
        if (inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip))
            snprintf(c->peer, sizeof c->peer, "[%s]:%u", ip, (unsigned)ntohs(a->sin6_port));
    }
    return c->peer;
}

/* ---- the response API of handlers ---- */


int async_http_response_header(async_http_response *res, const char *name, const char *value) {
    http_conn *c = conn_of_res(res);
    const char *p;
    size_t at;
    if (!c || !name || !value || !*name) return ASYNC_EINVAL;
    for (p = name; *p; p++)
        if (!is_tchar((unsigned char)*p)) return ASYNC_EINVAL;
    for (p = value; *p; p++)
        if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f) return ASYNC_EINVAL; /* CR, LF and the rest */
    if (strcasecmp(name, "Transfer-Encoding") == 0 || strcasecmp(name, "Connection") == 0 ||
        strcasecmp(name, "Date") == 0)
        return ASYNC_EINVAL;
    if (c->mode != RES_NONE) return ASYNC_EBUSY;
    if (strcasecmp(name, "Content-Length") == 0) { /* for a streamed response only: the server counts others */
        char *end;
        unsigned long long v;
        if (!(*value >= '0' && *value <= '9')) return ASYNC_EINVAL;
        errno = 0;
        v = strtoull(value, &end, 10);
        if (*end || errno) return ASYNC_EINVAL;
        c->has_length = true;
        c->length_left = v;
        return 0;
    }
    at = c->rh_len;
    if (append_rh(c, name, strlen(name)) || append_rh(c, ": ", 2) || append_rh(c, value, strlen(value)) ||
        append_rh(c, "\r\n", 2)) {
        c->rh_len = at;
        return ASYNC_ENOMEM;
    }
    if (strcasecmp(name, "Content-Type") == 0) c->has_type = true;
    return 0;
}

static int set_body(async_http_response *res, int status, const char *type, const char *body) {
    if (!res || !body || status < 100 || status > 999) return ASYNC_EINVAL;
    res->status = status;
    res->content_type = type;
    res->body = body;
    res->body_len = strlen(body);
    return 0;
}

int async_http_response_text(async_http_response *res, int status, const char *text) {
    return set_body(res, status, "text/plain; charset=utf-8", text);
}

int async_http_response_json(async_http_response *res, int status, const char *json) {
    return set_body(res, status, "application/json", json);
}

static const char *content_type(const http_conn *c) {
    if (c->has_type) return NULL; /* among the extra lines */
    return c->res.content_type ? c->res.content_type : "text/plain; charset=utf-8";
}

static int send_head(http_conn *c) {
    int status = c->res.status ? c->res.status : 200;
    int framing;
    if (c->has_length) {
        c->mode = RES_LENGTH;
        framing = BODY_LENGTH;
    } else if (c->parser.http_minor >= 1) {
        c->mode = RES_CHUNKED;
        framing = BODY_CHUNKED;
    } else {
        c->mode = RES_TO_CLOSE; /* an HTTP/1.0 client reads to the end of the connection */
        c->keep_alive = false;
        framing = BODY_TO_CLOSE;
    }
    if (c->res.close || async_server_closing(&c->hs->server)) c->keep_alive = false;
    return respond(c, status, content_type(c), c->rh, c->rh_len, framing, c->length_left, NULL, conn_header(c));
}

int async_http_response_write(async_http_response *res, const void *data, size_t n) {
    http_conn *c = conn_of_res(res);
    int rc;
    if (!c || (!data && n)) return ASYNC_EINVAL;
    if (c->mode == RES_TAKEN) return ASYNC_EBADF;
    if (c->mode == RES_NONE && (rc = send_head(c)) != 0) return rc;
    if (!n || c->head_only) return 0;
    if (c->mode == RES_LENGTH) {
        if (n > c->length_left) return ASYNC_EMSGSIZE;
        c->length_left -= n;
    }
    if (c->mode == RES_CHUNKED) {
        char size[24];
        int len = snprintf(size, sizeof size, "%zx\r\n", n);
        if ((rc = async_stream_write(c->s, size, (size_t)len)) != 0) return rc;
        if ((rc = async_stream_write(c->s, data, n)) != 0) return rc;
        return async_stream_write(c->s, "\r\n", 2);
    }
    return async_stream_write(c->s, data, n);
}

int async__http_response_sent(async_http_response *res, unsigned long long n) {
    http_conn *c = conn_of_res(res);
    if (!c || c->mode != RES_LENGTH || n > c->length_left) return ASYNC_EINVAL;
    c->length_left -= n;
    return 0;
}

async_stream *async__http_stream(async_http_response *res) {
    http_conn *c = conn_of_res(res);
    return c && c->mode != RES_TAKEN ? c->s : NULL;
}

async_stream *async_http_response_upgrade(async_http_response *res) {
    http_conn *c = conn_of_res(res);
    if (!c || c->mode != RES_NONE) return NULL;
    c->mode = RES_TAKEN;
    c->keep_alive = false;
    c->watching = false; /* the handler reads the socket now: the watchdog would take its input for a close */
    if (net__io_waiting(&c->watch)) net__io_complete(&c->watch, 0);
    return c->s;
}

/* Ends the response of the request once its handler has returned (err: what it raised, 0 if nothing). */
static int finish_response(http_conn *c, int err) {
    switch (c->mode) {
    case RES_TAKEN:
        c->keep_alive = false;
        return 0;
    case RES_NONE:
        if (err) /* then close (RFC 9112 9.6); a body over the limit that the handler let through: 413 */
            return respond_error(c, err == ASYNC_EMSGSIZE && c->reject == 413 ? 413 : 500, NULL, 0) ? err : 0;
        if (c->res.close || async_server_closing(&c->hs->server)) c->keep_alive = false;
        if (c->has_length && c->length_left != c->res.body_len) return respond_error(c, 500, NULL, 0) ? ASYNC_EINVAL : 0;
        return respond(c, c->res.status ? c->res.status : 200, content_type(c), c->rh, c->rh_len, BODY_LENGTH,
                       c->res.body_len, c->res.body ? c->res.body : "", conn_header(c));
    case RES_CHUNKED:
        if (err) break;
        return c->head_only ? 0 : async_stream_write(c->s, "0\r\n\r\n", 5);
    case RES_LENGTH:
        if (err || (c->length_left && !c->head_only)) break; /* the client must not take it for whole */
        return 0;
    default:
        break;
    }
    c->keep_alive = false; /* a streamed body cut short, or one delimited by the close */
    return 0;
}

/* ---- the request's body, read by its handler ---- */

static int32_t ms_left(const http_conn *c, async_ms deadline) {
    int32_t d = (int32_t)(deadline - async_loop_now(c->loop));
    return d > 0 ? d : 0;
}


static const async_error body_cut = {ASYNC_ENODATA, "the client closed before the end of the request's body"};
static const async_error body_bad = {ASYNC_EPROTO, "malformed request body"};
static const async_error body_big = {ASYNC_EMSGSIZE, "request body over the server's max_body"};

static async_status body_read_run(async_task *t) {
    http_conn *c = *(http_conn **)(void *)((char *)t + offsetof(http_conn, rd.c) - offsetof(http_conn, rd.task));
    const char *data;
    size_t len, n;
    ASYNC_BEGIN(t);
    *c->rd.out = 0;
    if (!c->streaming) { /* the body the server read already, handed out in pieces */
        n = c->body_len - c->body_pos;
        if (n > c->rd.cap) n = c->rd.cap;
        if (n) memcpy(c->rd.buf, c->body + c->body_pos, n);
        c->body_pos += n;
        *c->rd.out = n;
        ASYNC_RETURN(t, 0);
    }
    while (!c->body_done) {
        if (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK && HTTP_PARSER_ERRNO(&c->parser) != HPE_PAUSED)
            ASYNC_THROW_ERROR(t, c->reject == 413 ? &body_big : &body_bad); /* an earlier read failed */
        data = async_stream_peek(c->s, &len);
        if (len) {
            /* at most cap input bytes: the body's part of them fits in buf */
            c->ubuf = c->rd.buf;
            c->ucap = c->rd.cap;
            c->ugot = 0;
            c->to_user = true;
            http_parser_pause(&c->parser, 0);
            n = http_parser_execute(&c->parser, &settings, data, len < c->rd.cap ? len : c->rd.cap);
            c->to_user = false;
            async_stream_consume(c->s, n);
            if (c->complete) {
                c->body_done = true; /* the parser paused at the message's end */
            } else if (c->reject || HTTP_PARSER_ERRNO(&c->parser) != HPE_OK) {
                c->keep_alive = false;
                if (c->reject == 413) ASYNC_THROW_ERROR(t, &body_big);
                ASYNC_THROW_ERROR(t, &body_bad);
            }
            if (c->ugot) {
                *c->rd.out = c->ugot;
                break;
            }
            continue;
        }
        AWAIT_STREAM_FILL(t, c->s, READ_CHUNK, &c->rd.n,
                          c->rd.ms >= 0 && c->rd.ms < ms_left(c, c->deadline) ? c->rd.ms : ms_left(c, c->deadline));
        if (c->rd.n == 0) {
            c->keep_alive = false;
            ASYNC_THROW_ERROR(t, &body_cut);
        }
    }
    ASYNC_END(t);
}

async_task *async__http_body_task(const async_http_request *req) {
    http_conn *c = conn_of_req(req);
    return c ? &c->rd.task : NULL;
}

async_task *async__http_body_read(const async_http_request *req, void *buf, size_t cap, size_t *n, int64_t ms) {
    http_conn *c = conn_of_req(req);
    if (!c || !buf || !cap || !n || c->mode == RES_TAKEN) return NULL; /* AWAIT raises ASYNC_EINVAL */
    if (!async_task_init(&c->rd.task, body_read_run)) return &c->rd.task; /* a read runs: ASYNC_EBUSY */
    c->rd.c = c;
    c->rd.buf = (char *)buf;
    c->rd.cap = cap;
    c->rd.out = n;
    c->rd.ms = ms;
    return &c->rd.task;
}

/* ---- the watchdog ---- */

static async_status dog_run(async_task *t) {
    http_conn *c = ((http_dog *)t)->c;
    ASYNC_BEGIN(t);
    while (!c->over) {
        if (!c->h_running || !c->watching) {
            async_event_clear(&c->wake);
            AWAIT_EVENT(t, &c->wake);
            continue;
        }
        ASYNC_TRY(t) {
            AWAIT_READABLE(t, &c->watch, async_stream_fd(c->s), -1);
        }
        ASYNC_CATCH(t) {
            if (async_caught(t)->code == ASYNC_ECANCELED) ASYNC_RERAISE(t);
            c->watching = false; /* the socket cannot be watched: the handler ends as it would */
        }
        ASYNC_END_TRY(t);
        if (c->h_running && c->watching && (async_io_events(&c->watch) & ASYNC_IO_READ)) {
            char b;
            long r = net__stream_peek(c->s, &b, 1);
            if (r > 0) {
                c->watching = false; /* a pipelined request: the client is there */
            } else if (r != ASYNC_EAGAIN) { /* the end of the stream, or an error */
                c->watching = false;
                c->gone = true;
                async_cancel(c->h);
            }
        }
    }
    ASYNC_END(t);
}

/* At the end of the pass a handler started in: if it awaits, the watchdog (started the first time) watches
 * the socket. A handler that answers at once costs no more than this call. */
static void nudge_fn(async_loop *loop, async__cb *cb) {
    http_conn *c = (http_conn *)(void *)((char *)cb - offsetof(http_conn, nudge));
    if (!c->h_running || !c->watching || c->over) return;
    if (!c->dog_started) {
        c->dog.c = c;
        async_task_init(&c->dog.task, dog_run);
        if (async_spawn(loop, &c->dog.task) != 0) return;
        c->dog_started = true;
    } else {
        async_event_set(&c->wake);
    }
}

/* Stops watching for the handler that just ended. */
static void dog_rest(http_conn *c) {
    c->h_running = false;
    if (net__io_waiting(&c->watch)) net__io_complete(&c->watch, 0);
}

/* Makes the handler's frame for the request that has just been parsed; 0, or the status to answer. */
static int prepare(http_conn *c) {
    async_http_frame *h = (async_http_frame *)(void *)c->frame;
    size_t i;
    int rc;
    memset(&c->req, 0, sizeof c->req);
    memset(&c->res, 0, sizeof c->res);
    c->req.method = http_method_str((enum http_method)c->parser.method);
    c->mode = RES_NONE;
    c->has_type = c->has_length = false;
    c->length_left = 0;
    c->query_done = false;
    c->nparams = 0;
    c->body_pos = 0;
    c->body_done = !c->streaming;
    c->head_only = c->parser.method == HTTP_HEAD;
    rc = route_request(c);
    if (rc) return rc;
    for (i = 0; i < c->nheaders; i++) {
        c->ptrs[i] = c->head + c->offs[2 * i];
        c->ptrs[c->offs_cap + i] = c->head + c->offs[2 * i + 1];
    }
    c->req.target = c->head;
    c->req.version_minor = c->parser.http_minor;
    c->req.nheaders = c->nheaders;
    c->req.names = c->ptrs;
    c->req.values = c->ptrs ? c->ptrs + c->offs_cap : NULL;
    if (c->body) c->body[c->body_len] = '\0';
    c->req.body = c->body ? c->body : "";
    c->req.body_len = c->body_len;
    c->req.arg = c->hs->arg;
    c->req.conn = c->res.conn = c;
    async_frame_init(&h->task, c->route->frame_size, c->route->fn); /* the last handler has ended */
    h->req = &c->req;
    h->res = &c->res;
    c->h = &h->task;
    return 0;
}


/* After an answer on a connection that goes on: an Upgrade that no handler took leaves the parser in its
 * upgraded state, and HTTP/1.1 goes on instead. */
static void next_request(http_conn *c) {
    if (c->parser.upgrade) {
        http_parser_init(&c->parser, HTTP_REQUEST);
        c->parser.data = c;
    }
}

static async_status conn_run(async_task *t) {
    http_conn *c = (http_conn *)t;
    const async_http_limits *lim = &c->hs->limits;
    const char *data;
    size_t len, n;
    int rc;
    ASYNC_BEGIN(t);
    c->loop = async_task_loop(t);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    ASYNC_TRY(t) {
        for (;;) {
            data = async_stream_peek(c->s, &len);
            if (len) {
                n = http_parser_execute(&c->parser, &settings, data, len);
                async_stream_consume(c->s, n);
                if (c->complete || c->streaming) { /* a whole request, or the head of one whose body streams */
                    c->complete = c->started = false;
                    if (!c->streaming) http_parser_pause(&c->parser, 0);
                    rc = prepare(c);
                    if (rc) {
                        int allow = rc == 405 ? (int)c->rh_len : 0;
                        c->keep_alive = c->keep_alive && (rc == 404 || rc == 405) && !async_server_closing(&c->hs->server);
                        if (!c->keep_alive || rc >= 500) {
                            if (respond_error(c, rc, c->rh, (size_t)allow)) break;
                        } else if (respond(c, rc, "text/plain; charset=utf-8", c->rh, (size_t)allow, BODY_LENGTH,
                                           strlen(reason(rc)), reason(rc), conn_header(c))) {
                            break;
                        }
                        if (!c->keep_alive) break;
                        next_request(c);
                        continue;
                    }
                    /* the handler runs inline in this task; if it still runs at the end of the pass (it
                     * awaits), the watchdog looks after the socket meanwhile */
                    c->h_running = true;
                    c->watching = !c->streaming; /* a handler reading its body sees the client's end itself */
                    c->gone = false;
                    c->herr = 0;
                    c->nudge.fn = nudge_fn;
                    async__loop_defer(c->loop, &c->nudge);
                    c->n = 0;
                    ASYNC_TRY(t) {
                        AWAIT(t, c->h);
                    }
                    ASYNC_CATCH(t) {
                        dog_rest(c);
                        /* cancelled by the watchdog (the client went away), or raised by the handler; a
                         * cancellation of this connection (the server closes) goes on */
                        if (!c->gone && async_caught(t)->code == ASYNC_ECANCELED) ASYNC_RERAISE(t);
                        c->herr = async_caught(t)->code ? async_caught(t)->code : ASYNC_EIO;
                    }
                    ASYNC_END_TRY(t);
                    dog_rest(c);
                    if (c->gone) break;
                    if (c->streaming) { /* a body not read to its end cannot be skipped safely: close after */
                        if (!c->body_done) c->keep_alive = false;
                        c->streaming = c->complete = false;
                        if (HTTP_PARSER_ERRNO(&c->parser) == HPE_PAUSED) http_parser_pause(&c->parser, 0);
                        else c->keep_alive = false; /* the body failed: the connection cannot go on */
                    }
                    if (finish_response(c, c->herr) || !c->keep_alive) break;
                    next_request(c);
                    continue; /* a pipelined request may follow in the buffer */
                }
                if (c->reject || HTTP_PARSER_ERRNO(&c->parser) != HPE_OK) {
                    respond_error(c, c->reject ? c->reject : 400, NULL, 0);
                    if (!c->reject) c->reject = 400;
                    break;
                }
            }
            /* the buffer holds no complete request: send the answers, then read */
            if (async_stream_pending(c->s)) AWAIT_STREAM_DRAIN(t, c->s, lim->request_ms);
            if (!c->started) {
                if (async_server_closing(&c->hs->server)) break;
                c->deadline = async_loop_now(c->loop) + (async_ms)lim->idle_ms;
                async_stream_set_idle(c->s, true);
            }
            ASYNC_TRY(t) {
                AWAIT_STREAM_FILL(t, c->s, READ_CHUNK + lim->max_request_line + lim->max_header_bytes, &c->n,
                                  ms_left(c, c->deadline));
            }
            ASYNC_CATCH(t) {
                if (async_caught(t)->code != ASYNC_ETIMEDOUT || !c->started) ASYNC_RERAISE(t);
                respond_error(c, 408, NULL, 0); /* the request did not arrive in time */
                c->n = 0;
                c->reject = 408;
            }
            ASYNC_END_TRY(t);
            if (c->reject) break;
            async_stream_set_idle(c->s, false);
            if (c->n == 0) break; /* the client closed */
            if (!c->started) {
                c->started = true; /* the request's clock starts with its first byte */
                c->deadline = async_loop_now(c->loop) + (async_ms)lim->request_ms;
            }
        }
        if (c->mode != RES_TAKEN && async_stream_pending(c->s)) AWAIT_STREAM_DRAIN(t, c->s, lim->request_ms);
        if (c->reject) { /* lingering close: a client still sending would get a reset that destroys the
                          * answer it has not read yet, so read and drop its bytes for a while first */
            net__stream_shutdown(c->s);
            c->deadline = async_loop_now(c->loop) + (async_ms)lim->linger_ms;
            do {
                async_stream_consume(c->s, (size_t)-1);
                AWAIT_STREAM_FILL(t, c->s, READ_CHUNK, &c->n, ms_left(c, c->deadline));
            } while (c->n);
        }
    }
    ASYNC_FINALLY(t) {
        /* the watchdog's frame is in this connection's memory: it ends before the connection does (an
         * await of a running task passes a cancellation on and still waits for it) */
        c->over = true;
        async__loop_undefer(c->loop, &c->nudge); /* this memory goes with the connection */
        dog_rest(c);
        async_event_set(&c->wake);
        free(c->head); /* before the await below, which a second cancellation would leave at once */
        free(c->offs);
        free((void *)c->ptrs);
        free(c->body);
        free(c->query);
        free(c->rh);
        c->head = NULL;
        c->offs = NULL;
        c->ptrs = NULL;
        c->body = NULL;
        c->query = NULL;
        c->rh = NULL;
        if (c->dog_started && !async_task_done(&c->dog.task)) AWAIT(t, &c->dog.task);
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

/* A pattern is "/" and segments: literal ones, {name}, and a last {name...}; at most MAX_PARAMS names. */
static bool pattern_ok(const char *p) {
    size_t params = 0;
    if (!p) return true;
    if (*p != '/') return false;
    while (*p) {
        const char *seg = ++p;
        size_t n;
        while (*p && *p != '/') p++;
        n = (size_t)(p - seg);
        if (memchr(seg, '{', n) || memchr(seg, '}', n)) {
            if (n < 3 || seg[0] != '{' || seg[n - 1] != '}' || memchr(seg + 1, '{', n - 2) || memchr(seg + 1, '}', n - 2))
                return false;
            if (++params > MAX_PARAMS) return false;
            if (n >= 5 && memcmp(seg + n - 4, "...}", 4) == 0 && (*p || n == 5)) return false; /* last, named */
        }
    }
    return true;
}

int async_http_server_listen(async_http_server *hs, const char *host, int port, unsigned flags,
                             const async_http_limits *limits, const async_http_route *routes, void *arg) {
    async_http_limits *l;
    const async_http_route *r;
    size_t frame = sizeof(async_http_frame);
    if (!hs || !routes) return ASYNC_EINVAL;
    for (r = routes; r->fn || r->method || r->pattern; r++) {
        if (!r->fn || r->frame_size < sizeof(async_http_frame) || r->frame_size > ((size_t)1 << 24) ||
            !pattern_ok(r->pattern))
            return ASYNC_EINVAL;
        if (r->frame_size > frame) frame = r->frame_size;
        if (r->flags & ~(unsigned)ASYNC_HTTP_READ_BODY) return ASYNC_EINVAL;
    }
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
    hs->routes = routes;
    for (r = routes; r->fn; r++)
        if (r->flags & ASYNC_HTTP_READ_BODY) hs->stream_routes = true;
    hs->frame_size = (frame + sizeof(long long) - 1) / sizeof(long long) * sizeof(long long);
    hs->arg = arg;
    hs->date_sec = -1;
    return async_server_listen(&hs->server, host, port, flags, sizeof(http_conn) + hs->frame_size, conn_new, hs);
}

int async_http_server_tls(async_http_server *hs, async_tls_ctx *ctx) {
    return hs ? async_server_tls(&hs->server, ctx, hs->limits.request_ms) : ASYNC_EINVAL;
}

async_task *async_http_server_serve(async_http_server *hs) { return hs ? async_server_serve(&hs->server) : NULL; }
void async_http_server_close(async_http_server *hs, int64_t grace_ms) {
    if (hs) async_server_close(&hs->server, grace_ms);
}
int async_http_server_port(const async_http_server *hs) { return hs ? async_server_port(&hs->server) : 0; }
