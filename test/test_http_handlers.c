/* The HTTP server's handlers as coroutines: handlers that await while other connections and requests go
 * on, pipelined answers kept in order, handlers cancelled when their client goes away or the server
 * closes (their finally blocks run), streamed responses (chunked, with a length, to the close, HEAD),
 * routes with parameters, 404 and 405, queries, percent-decoding, the peer's address, response headers
 * validated, a connection taken over for an Upgrade. Clients are raw streams of the same loop, and curl. */
#include "test.h"
#include "util.h"

#include <ctype.h>
#include <strings.h>
#include <sys/socket.h>

/* ---- the handlers ---- */

static async_event hh_gate;   /* what the /gate handler waits for */
static int hh_cleaned;        /* finally blocks of handlers that ran */
static int hh_cancelled;      /* handlers that saw ASYNC_ECANCELED */
static int hh_started;        /* handlers of /hang that started */
static int hh_write_rc[8];    /* what async_http_response_write / _header returned in /stream-bad */

/* Waits for the gate, then answers. */
ASYNC_HTTP_DEF(hh_gated) {
    AWAIT_EVENT(t, &hh_gate);
    async_http_response_text(f->res, 200, "gated");
} ASYNC_END_DEF

/* Sleeps ms (from the query), then answers with its path. */
ASYNC_HTTP_DEF(hh_sleepy, char out[64];) {
    AWAIT_SLEEP(t, atoi(async_http_request_query(f->req, "ms") ? async_http_request_query(f->req, "ms") : "0"));
    snprintf(f->out, sizeof f->out, "slept %s", f->req->path);
    async_http_response_text(f->res, 200, f->out);
} ASYNC_END_DEF

/* Never answers: counts its start, and how it ended. */
ASYNC_HTTP_DEF(hh_hang) {
    hh_started++;
    ASYNC_TRY(t) {
        AWAIT_EVENT(t, &hh_gate);
        AWAIT_SLEEP(t, 60000);
    }
    ASYNC_CATCH(t) {
        if (async_caught(t)->code == ASYNC_ECANCELED) hh_cancelled++;
        ASYNC_RERAISE(t);
    }
    ASYNC_FINALLY(t) {
        hh_cleaned++;
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

/* Streams three pieces, with a pause and a drain between them. */
ASYNC_HTTP_DEF(hh_stream, int i; char piece[32];) {
    f->res->content_type = "text/event-stream";
    ASSERT_EQ(async_http_response_header(f->res, "Cache-Control", "no-cache"), 0);
    for (f->i = 0; f->i < 3; f->i++) {
        snprintf(f->piece, sizeof f->piece, "data: %d\n\n", f->i);
        ASSERT_EQ(async_http_response_write(f->res, f->piece, strlen(f->piece)), 0);
        AWAIT_HTTP_DRAIN(t, f->res, TEST_LONG_MS);
        AWAIT_SLEEP(t, 5);
    }
} ASYNC_END_DEF

/* A streamed body with the length set first. */
ASYNC_HTTP_DEF(hh_sized) {
    ASSERT_EQ(async_http_response_header(f->res, "Content-Length", "10"), 0);
    ASSERT_EQ(async_http_response_write(f->res, "01234", 5), 0);
    AWAIT_YIELD(t);
    ASSERT_EQ(async_http_response_write(f->res, "567890", 6), ASYNC_EMSGSIZE); /* one too many */
    ASSERT_EQ(async_http_response_write(f->res, "56789", 5), 0);
} ASYNC_END_DEF

/* Headers that must be refused, and what happens after the head is out. */
ASYNC_HTTP_DEF(hh_headers) {
    async_http_response *r = f->res;
    hh_write_rc[0] = async_http_response_header(r, "X-Ok", "fine\tvalue");
    hh_write_rc[1] = async_http_response_header(r, "X-Bad", "evil\r\nSet-Cookie: x=1");
    hh_write_rc[2] = async_http_response_header(r, "X Bad", "v");
    hh_write_rc[3] = async_http_response_header(r, "Connection", "close");
    hh_write_rc[4] = async_http_response_header(r, "X-Nul", "a\nb");
    hh_write_rc[5] = async_http_response_header(NULL, "X-A", "b");
    ASSERT_EQ(async_http_response_write(r, "x", 1), 0);
    hh_write_rc[6] = async_http_response_header(r, "X-Late", "v");
    hh_write_rc[7] = async_http_response_text(r, 99, "no");
} ASYNC_END_DEF

/* Raises after the head and a piece went out: the client must not take the body for whole. */
ASYNC_HTTP_DEF(hh_fails_midway) {
    ASSERT_EQ(async_http_response_write(f->res, "partial", 7), 0);
    AWAIT_YIELD(t);
    ASYNC_THROW(t, ASYNC_EIO, "the backend failed");
} ASYNC_END_DEF

/* Echoes the route's parameters, the query's values and the decoded path. */
ASYNC_HTTP_DEF(hh_params, char out[512];) {
    const char *a = async_http_request_query(f->req, "a"), *b = async_http_request_query(f->req, "b");
    const char *e = async_http_request_query(f->req, "e");
    snprintf(f->out, sizeof f->out, "%s id=%s rest=%s path=%s a=%s b=%s e=%s none=%d q=%s", f->req->method,
             async_http_request_param(f->req, "id") ? async_http_request_param(f->req, "id") : "-",
             async_http_request_param(f->req, "rest") ? async_http_request_param(f->req, "rest") : "-", f->req->path,
             a ? a : "-", b ? b : "-", e ? e : "-",
             async_http_request_query(f->req, "zz") == NULL && async_http_request_param(f->req, "zz") == NULL,
             f->req->query);
    async_http_response_text(f->res, 200, f->out);
} ASYNC_END_DEF

/* Answers with the peer's address. */
ASYNC_HTTP_DEF(hh_peer) {
    async_http_response_json(f->res, 201, async_http_request_peer(f->req));
} ASYNC_END_DEF

/* Takes the connection over: a 101, then echoes one line in upper case. */
ASYNC_HTTP_DEF(hh_upgrade, async_stream *s; const char *line; size_t len; char out[64];) {
    f->s = async_http_response_upgrade(f->res);
    ASSERT(f->s != NULL);
    ASSERT(async_http_response_upgrade(f->res) == NULL); /* once */
    ASSERT_EQ(async_http_response_write(f->res, "x", 1), ASYNC_EBADF);
    async_stream_write(f->s, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: shout\r\nConnection: Upgrade\r\n\r\n", 73);
    AWAIT_STREAM_READLINE(t, f->s, &f->line, &f->len, 64, TEST_LONG_MS);
    {
        size_t i;
        for (i = 0; i < f->len && i < sizeof f->out; i++) f->out[i] = (char)toupper((unsigned char)f->line[i]);
        async_stream_write(f->s, f->out, i);
    }
    AWAIT_STREAM_DRAIN(t, f->s, TEST_LONG_MS);
} ASYNC_END_DEF

static const async_http_route hh_routes[] = {
    ASYNC_HTTP_ROUTE("GET", "/gate", hh_gated),
    ASYNC_HTTP_ROUTE("GET", "/sleep/{n}", hh_sleepy),
    ASYNC_HTTP_ROUTE("GET", "/hang", hh_hang),
    ASYNC_HTTP_ROUTE("GET", "/stream", hh_stream),
    ASYNC_HTTP_ROUTE("GET", "/sized", hh_sized),
    ASYNC_HTTP_ROUTE("GET", "/headers", hh_headers),
    ASYNC_HTTP_ROUTE("GET", "/fails-midway", hh_fails_midway),
    ASYNC_HTTP_ROUTE("GET", "/users/{id}", hh_params),
    ASYNC_HTTP_ROUTE("DELETE", "/users/{id}", hh_params),
    ASYNC_HTTP_ROUTE("PUT", "/users/{id}/name", hh_params),
    ASYNC_HTTP_ROUTE("GET", "/files/{rest...}", hh_params),
    ASYNC_HTTP_ROUTE("GET", "/a b/x", hh_params),
    ASYNC_HTTP_ROUTE(NULL, "/any", hh_params),
    ASYNC_HTTP_ROUTE("POST", "/peer", hh_peer),
    ASYNC_HTTP_ROUTE("GET", "/shout", hh_upgrade),
    ASYNC_HTTP_ROUTES_END,
};

/* ---- raw clients ---- */

/* Sends `req` on a new connection and reads the answer until the server closes or `want` bytes came
 * (0: until the close); shut: half-close after sending. */
ASYNC_DEF(hh_client, int port; const char *req; size_t want; bool shut; async_stream s; char got[8192]; size_t len, n;
          int code;) {
    f->code = ASYNC_EINPROGRESS;
    ASYNC_TRY(t) {
        AWAIT_STREAM_CONNECT(t, &f->s, "127.0.0.1", f->port, TEST_LONG_MS);
        ASSERT_EQ(async_stream_write(&f->s, f->req, strlen(f->req)), 0);
        AWAIT_STREAM_DRAIN(t, &f->s, TEST_LONG_MS);
        if (f->shut) shutdown(async_stream_fd(&f->s), SHUT_WR);
        do {
            AWAIT_STREAM_READ(t, &f->s, f->got + f->len, sizeof f->got - 1 - f->len, &f->n, TEST_LONG_MS);
            f->len += f->n;
            f->got[f->len] = '\0';
        } while (f->n && (!f->want || f->len < f->want));
        f->code = 0;
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
    }
    ASYNC_FINALLY(t) {
        async_stream_close(&f->s);
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

/* The answer without its Date line (checked for its shape). */
static char *hh_undate(char *s) {
    char *p = strstr(s, "\r\nDate: "), *end;
    if (!p) return s;
    end = strstr(p + 2, "\r\n");
    ASSERT(end && end - (p + 2) == 35 && memcmp(end - 4, " GMT", 4) == 0);
    memmove(p + 2, end + 2, strlen(end + 2) + 1);
    return hh_undate(s);
}

/* A server with hh_routes, and a scenario run against it; the server closes when the scenario ends. */
ASYNC_DEF(hh_main, async_fn scenario; async_http_server http; async_group g; async_task scen; int port;
          hh_client_frame c[8]; async_group clients; async_ms t0; int i;) {
    ASSERT_EQ(async_http_server_listen(&f->http, "127.0.0.1", 0, 0, NULL, hh_routes, f), 0);
    f->port = async_http_server_port(&f->http);
    ASYNC_SPAWN(t, &f->g, async_http_server_serve(&f->http));
    async_task_init(&f->scen, f->scenario);
    ASYNC_TRY(t) {
        AWAIT(t, &f->scen);
    }
    ASYNC_FINALLY(t) {
        async_http_server_close(&f->http, 0);
    }
    ASYNC_END_TRY(t);
    AWAIT_GROUP(t, &f->g);
} ASYNC_END_DEF

static hh_main_frame *hh_of(async_task *scen) {
    return (hh_main_frame *)(void *)((char *)scen - offsetof(hh_main_frame, scen));
}

static void hh_run(async_fn scenario) {
    static hh_main_frame m;
    async_loop *loop = async_loop_new(0);
    ASSERT(loop != NULL);
    memset(&m, 0, sizeof m);
    memset(&hh_gate, 0, sizeof hh_gate);
    hh_cleaned = hh_cancelled = hh_started = 0;
    ASSERT_EQ(async_run(loop, ASYNC_CALL(hh_main, &m, scenario)), 0);
    ASSERT_EQ(async_server_connections(&m.http.server), 0);
    async_loop_free(loop);
}

/* got begins with the literal lit. */
#define HH_STARTS(got, lit) (strncmp((got), (lit), sizeof(lit) - 1) == 0)

#define HH_GET(path) "GET " path " HTTP/1.1\r\nHost: t\r\n\r\n"
#define HH_GET_CLOSE(path) "GET " path " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"

/* ---- handlers that await ---- */

/* Five requests wait for the gate; a sixth on another connection is answered meanwhile, and only then
 * is the gate opened: nothing waits for anything but its own handler. */
static async_status hh_others_go_on(async_task *t) {
    hh_main_frame *m = hh_of(t);
    ASYNC_BEGIN(t);
    for (m->i = 0; m->i < 5; m->i++)
        ASYNC_SPAWN(t, &m->clients, ASYNC_CALL(hh_client, &m->c[m->i], m->port, HH_GET_CLOSE("/gate"), 0, false));
    AWAIT_CALL(t, hh_client, &m->c[5], m->port, HH_GET_CLOSE("/sleep/x?ms=0"), 0, false);
    ASSERT_EQ(m->c[5].code, 0);
    ASSERT(strstr(m->c[5].got, "\r\n\r\nslept /sleep/x") != NULL);
    for (m->i = 0; m->i < 5; m->i++) ASSERT_EQ(m->c[m->i].len, 0); /* still waiting */
    async_event_set(&hh_gate);
    AWAIT_GROUP(t, &m->clients);
    for (m->i = 0; m->i < 5; m->i++) {
        ASSERT_EQ(m->c[m->i].code, 0);
        ASSERT_STR_EQ(hh_undate(m->c[m->i].got),
                      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain; charset=utf-8\r\n"
                      "Connection: close\r\n\r\ngated");
    }
    ASYNC_END(t);
}

TEST(http_handlers_await_while_other_connections_are_answered) { hh_run(hh_others_go_on); }

/* Pipelined: the first handler sleeps longer than the second would; the answers keep the requests' order. */
static async_status hh_pipeline(async_task *t) {
    hh_main_frame *m = hh_of(t);
    ASYNC_BEGIN(t);
    AWAIT_CALL(t, hh_client, &m->c[0], m->port,
               HH_GET("/sleep/1?ms=60") HH_GET("/sleep/2?ms=0") HH_GET("/sleep/3?ms=30") HH_GET_CLOSE("/sleep/4"), 0,
               false);
    ASSERT_EQ(m->c[0].code, 0);
    {
        const char *a = strstr(m->c[0].got, "slept /sleep/1"), *b = strstr(m->c[0].got, "slept /sleep/2");
        const char *c = strstr(m->c[0].got, "slept /sleep/3"), *d = strstr(m->c[0].got, "slept /sleep/4");
        ASSERT(a && b && c && d && a < b && b < c && c < d);
    }
    ASSERT_EQ(m->http.server.accepted, 1);
    ASYNC_END(t);
}

TEST(http_handlers_pipelined_answers_keep_their_order_when_handlers_await) { hh_run(hh_pipeline); }

/* A client that goes away while its handler awaits: the handler is cancelled and its finally runs; a
 * half-closed client (FIN after the request) counts as gone too, as in Go's net/http. */
static async_status hh_gone(async_task *t) {
    hh_main_frame *m = hh_of(t);
    ASYNC_BEGIN(t);
    AWAIT_STREAM_CONNECT(t, &m->c[0].s, "127.0.0.1", m->port, TEST_LONG_MS);
    ASSERT_EQ(async_stream_write(&m->c[0].s, HH_GET("/hang"), strlen(HH_GET("/hang"))), 0);
    AWAIT_STREAM_DRAIN(t, &m->c[0].s, TEST_LONG_MS);
    for (m->t0 = async_loop_now(async_task_loop(t)); hh_started < 1;) {
        ASSERT(async_loop_now(async_task_loop(t)) - m->t0 < TEST_LONG_MS);
        AWAIT_SLEEP(t, 1);
    }
    async_stream_close(&m->c[0].s); /* gone */
    for (m->t0 = async_loop_now(async_task_loop(t)); hh_cleaned < 1;) {
        ASSERT(async_loop_now(async_task_loop(t)) - m->t0 < TEST_LONG_MS);
        AWAIT_SLEEP(t, 1);
    }
    ASSERT_EQ(hh_cancelled, 1);
    /* half-closed after the request */
    AWAIT_CALL(t, hh_client, &m->c[1], m->port, HH_GET("/hang"), 0, true);
    ASSERT_EQ(m->c[1].code, 0);
    ASSERT_EQ(m->c[1].len, 0); /* closed without an answer */
    ASSERT_EQ(hh_cleaned, 2);
    ASSERT_EQ(hh_cancelled, 2);
    /* a pipelined request behind a handler that awaits is not taken for a departure */
    AWAIT_CALL(t, hh_client, &m->c[2], m->port, HH_GET("/sleep/a?ms=20") HH_GET_CLOSE("/sleep/b"), 0, false);
    ASSERT(strstr(m->c[2].got, "slept /sleep/a") && strstr(m->c[2].got, "slept /sleep/b"));
    ASYNC_END(t);
}

TEST(http_handlers_are_cancelled_when_the_client_goes_away) { hh_run(hh_gone); }

/* The server closes while handlers await: after the grace they are cancelled, their finally blocks run. */
static async_status hh_close(async_task *t) {
    hh_main_frame *m = hh_of(t);
    ASYNC_BEGIN(t);
    for (m->i = 0; m->i < 3; m->i++)
        ASYNC_SPAWN(t, &m->clients, ASYNC_CALL(hh_client, &m->c[m->i], m->port, HH_GET("/hang"), 0, false));
    for (m->t0 = async_loop_now(async_task_loop(t)); hh_started < 3;) {
        ASSERT(async_loop_now(async_task_loop(t)) - m->t0 < TEST_LONG_MS);
        AWAIT_SLEEP(t, 1);
    }
    async_http_server_close(&m->http, 20);
    AWAIT_GROUP(t, &m->clients);
    ASSERT_EQ(hh_cleaned, 3);
    ASSERT_EQ(hh_cancelled, 3);
    for (m->i = 0; m->i < 3; m->i++) ASSERT_EQ(m->c[m->i].len, 0);
    ASYNC_END(t);
}

TEST(http_handlers_are_cancelled_when_the_server_closes_after_its_grace) { hh_run(hh_close); }

/* ---- streamed responses ---- */

static async_status hh_streams(async_task *t) {
    hh_main_frame *m = hh_of(t);
    ASYNC_BEGIN(t);
    /* HTTP/1.1: chunked, then the connection goes on */
    AWAIT_CALL(t, hh_client, &m->c[0], m->port, HH_GET("/stream") HH_GET_CLOSE("/sleep/after"), 0, false);
    ASSERT_EQ(m->c[0].code, 0);
    ASSERT(HH_STARTS(hh_undate(m->c[0].got),
                   "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/event-stream\r\n"
                   "Cache-Control: no-cache\r\n\r\n9\r\ndata: 0\n\n\r\n9\r\ndata: 1\n\n\r\n9\r\ndata: 2\n\n\r\n0\r\n\r\n"
                   "HTTP/1.1 200 OK\r\n"));
    ASSERT(strstr(m->c[0].got, "slept /sleep/after") != NULL);
    /* HTTP/1.0: no chunks, the body ends with the connection */
    AWAIT_CALL(t, hh_client, &m->c[1], m->port, "GET /stream HTTP/1.0\r\n\r\n", 0, false);
    ASSERT_STR_EQ(hh_undate(m->c[1].got), "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n"
                                          "Cache-Control: no-cache\r\n\r\ndata: 0\n\ndata: 1\n\ndata: 2\n\n");
    /* a length set first: sent as it is, and a write past it refused */
    AWAIT_CALL(t, hh_client, &m->c[2], m->port, HH_GET("/sized") HH_GET_CLOSE("/sleep/after"), 0, false);
    ASSERT(HH_STARTS(hh_undate(m->c[2].got),
                   "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n0123456789"
                   "HTTP/1.1 200 OK\r\n"));
    /* HEAD: the head alone */
    AWAIT_CALL(t, hh_client, &m->c[3], m->port, "HEAD /stream HTTP/1.1\r\nHost: t\r\n\r\n" HH_GET_CLOSE("/sleep/z"), 0,
               false);
    ASSERT(HH_STARTS(hh_undate(m->c[3].got),
                   "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/event-stream\r\n"
                   "Cache-Control: no-cache\r\n\r\nHTTP/1.1 200 OK\r\n"));
    /* a handler that fails after its head went out: the body is cut short, and the connection closes */
    AWAIT_CALL(t, hh_client, &m->c[4], m->port, HH_GET("/fails-midway") HH_GET("/sleep/never"), 0, false);
    ASSERT_EQ(m->c[4].code, 0);
    ASSERT(strstr(m->c[4].got, "7\r\npartial\r\n") != NULL);
    ASSERT(strstr(m->c[4].got, "0\r\n\r\n") == NULL && strstr(m->c[4].got, "never") == NULL);
    ASYNC_END(t);
}

TEST(http_handlers_stream_chunked_sized_to_the_close_and_head) { hh_run(hh_streams); }

/* ---- response headers ---- */

static async_status hh_header_checks(async_task *t) {
    hh_main_frame *m = hh_of(t);
    ASYNC_BEGIN(t);
    AWAIT_CALL(t, hh_client, &m->c[0], m->port, HH_GET_CLOSE("/headers"), 0, false);
    ASSERT_EQ(hh_write_rc[0], 0);
    ASSERT_EQ(hh_write_rc[1], ASYNC_EINVAL); /* CR LF: refused, never sent */
    ASSERT_EQ(hh_write_rc[2], ASYNC_EINVAL); /* not a token */
    ASSERT_EQ(hh_write_rc[3], ASYNC_EINVAL); /* the server's own */
    ASSERT_EQ(hh_write_rc[4], ASYNC_EINVAL);
    ASSERT_EQ(hh_write_rc[5], ASYNC_EINVAL);
    ASSERT_EQ(hh_write_rc[6], ASYNC_EBUSY); /* the head is out */
    ASSERT_EQ(hh_write_rc[7], ASYNC_EINVAL);
    ASSERT(strstr(m->c[0].got, "\r\nX-Ok: fine\tvalue\r\n") != NULL);
    ASSERT(strstr(m->c[0].got, "Set-Cookie") == NULL && strstr(m->c[0].got, "evil") == NULL);
    ASSERT(strstr(m->c[0].got, "\r\nDate: ") != NULL);
    ASSERT(strstr(m->c[0].got, "\r\n1\r\nx\r\n0\r\n\r\n") != NULL);
    ASYNC_END(t);
}

TEST(http_handlers_response_headers_are_validated) { hh_run(hh_header_checks); }

/* ---- routes ---- */

static const struct {
    const char *request, *answer;
} hh_route_cases[] = {
    {HH_GET_CLOSE("/users/42"), "GET id=42 rest=- path=/users/42 a=- b=- e=- none=1 q="},
    {"DELETE /users/a%2Fb HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
     "DELETE id=a/b rest=- path=/users/a/b a=- b=- e=- none=1 q="},
    {"PUT /users/7/name HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
     "PUT id=7 rest=- path=/users/7/name a=- b=- e=- none=1 q="},
    {HH_GET_CLOSE("/files/a/b%20c.txt?a=1&b=x+y%21&e&a=2#frag"),
     "GET id=- rest=a/b c.txt path=/files/a/b c.txt a=1 b=x y! e= none=1 q=a=1&b=x+y%21&e&a=2"},
    {HH_GET_CLOSE("/files/"), "GET id=- rest= path=/files/ a=- b=- e=- none=1 q="},
    {HH_GET_CLOSE("/a%20b/x"), "GET id=- rest=- path=/a b/x a=- b=- e=- none=1 q="},
    {"PATCH /any?b=%zz&a=ok HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
     "PATCH id=- rest=- path=/any a=ok b=- e=- none=1 q=b=%zz&a=ok"},
    {"GET http://t/users/9?a=abs HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
     "GET id=9 rest=- path=/users/9 a=abs b=- e=- none=1 q=a=abs"},
};

static async_status hh_routing(async_task *t) {
    hh_main_frame *m = hh_of(t);
    ASYNC_BEGIN(t);
    for (m->i = 0; m->i < (int)(sizeof hh_route_cases / sizeof hh_route_cases[0]); m->i++) {
        memset(&m->c[0], 0, sizeof m->c[0]);
        AWAIT_CALL(t, hh_client, &m->c[0], m->port, hh_route_cases[m->i].request, 0, false);
        ASSERT_EQ(m->c[0].code, 0);
        if (!strstr(m->c[0].got, "HTTP/1.1 200 OK\r\n") || !strstr(m->c[0].got, hh_route_cases[m->i].answer))
            test_fail(__FILE__, __LINE__, "case %d: got\n%s\nexpected the body %s", m->i, m->c[0].got,
                      hh_route_cases[m->i].answer);
    }
    /* no route for the path: 404, and the connection goes on */
    memset(&m->c[0], 0, sizeof m->c[0]);
    AWAIT_CALL(t, hh_client, &m->c[0], m->port, HH_GET("/nowhere") HH_GET("/users") HH_GET_CLOSE("/users/1/x"), 0,
               false);
    ASSERT_STR_EQ(hh_undate(m->c[0].got),
                  "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nNot Found"
                  "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nNot Found"
                  "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nContent-Type: text/plain; charset=utf-8\r\n"
                  "Connection: close\r\n\r\nNot Found");
    /* a path some route has, with a method none takes: 405 with what they take; HEAD on a GET route */
    memset(&m->c[0], 0, sizeof m->c[0]);
    AWAIT_CALL(t, hh_client, &m->c[0], m->port,
               "POST /users/3 HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\nHEAD /users/3 HTTP/1.1\r\nHost: t\r\n"
               "Connection: close\r\n\r\n",
               0, false);
    ASSERT_STR_EQ(hh_undate(m->c[0].got),
                  "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 18\r\nContent-Type: text/plain; charset=utf-8\r\n"
                  "Allow: GET, HEAD, DELETE\r\n\r\nMethod Not Allowed"
                  "HTTP/1.1 200 OK\r\nContent-Length: 52\r\nContent-Type: text/plain; charset=utf-8\r\n"
                  "Connection: close\r\n\r\n");
    /* a path that does not decode: 400, then the close */
    memset(&m->c[0], 0, sizeof m->c[0]);
    AWAIT_CALL(t, hh_client, &m->c[0], m->port, HH_GET("/users/%zz"), 0, false);
    ASSERT(HH_STARTS(m->c[0].got, "HTTP/1.1 400 Bad Request\r\n"));
    memset(&m->c[0], 0, sizeof m->c[0]);
    AWAIT_CALL(t, hh_client, &m->c[0], m->port, HH_GET("/users/a%00b"), 0, false);
    ASSERT(HH_STARTS(m->c[0].got, "HTTP/1.1 400 Bad Request\r\n"));
    /* the peer's address, and a JSON answer with another status */
    memset(&m->c[0], 0, sizeof m->c[0]);
    AWAIT_CALL(t, hh_client, &m->c[0], m->port,
               "POST /peer HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 0, false);
    ASSERT(HH_STARTS(m->c[0].got, "HTTP/1.1 201 Created\r\n"));
    ASSERT(strstr(m->c[0].got, "Content-Type: application/json\r\n") != NULL);
    ASSERT(strstr(m->c[0].got, "\r\n\r\n127.0.0.1:") != NULL);
    ASYNC_END(t);
}

TEST(http_handlers_routes_parameters_query_and_decoding) { hh_run(hh_routing); }

/* A handler takes the connection over for an Upgrade, and talks its own protocol on it. */
static async_status hh_upgrades(async_task *t) {
    hh_main_frame *m = hh_of(t);
    ASYNC_BEGIN(t);
    AWAIT_CALL(t, hh_client, &m->c[0], m->port,
               "GET /shout HTTP/1.1\r\nHost: t\r\nUpgrade: shout\r\nConnection: Upgrade\r\n\r\nhello there\n", 0, false);
    ASSERT_EQ(m->c[0].code, 0);
    ASSERT_STR_EQ(m->c[0].got, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: shout\r\nConnection: Upgrade\r\n\r\n"
                               "HELLO THERE\n");
    ASYNC_END(t);
}

TEST(http_handlers_a_handler_takes_the_connection_for_an_upgrade) { hh_run(hh_upgrades); }

/* ---- configuration ---- */

TEST(http_handlers_bad_routes_are_refused) {
    static async_http_server hs;
    static const async_http_route no_slash[] = {ASYNC_HTTP_ROUTE("GET", "x", hh_gated), ASYNC_HTTP_ROUTES_END};
    static const async_http_route rest_not_last[] = {ASYNC_HTTP_ROUTE("GET", "/{a...}/b", hh_gated),
                                                     ASYNC_HTTP_ROUTES_END};
    static const async_http_route open_brace[] = {ASYNC_HTTP_ROUTE("GET", "/{a", hh_gated), ASYNC_HTTP_ROUTES_END};
    static const async_http_route unnamed[] = {ASYNC_HTTP_ROUTE("GET", "/{...}", hh_gated), ASYNC_HTTP_ROUTES_END};
    static const async_http_route many[] = {ASYNC_HTTP_ROUTE("GET", "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}", hh_gated),
                                            ASYNC_HTTP_ROUTES_END};
    static const async_http_route no_fn[] = {{"GET", "/", NULL, 100}, ASYNC_HTTP_ROUTES_END};
    static const async_http_route small[] = {{"GET", "/", hh_gated_run, 8}, ASYNC_HTTP_ROUTES_END};
    ASSERT_EQ(async_http_server_listen(&hs, "127.0.0.1", 0, 0, NULL, NULL, NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_http_server_listen(&hs, "127.0.0.1", 0, 0, NULL, no_slash, NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_http_server_listen(&hs, "127.0.0.1", 0, 0, NULL, rest_not_last, NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_http_server_listen(&hs, "127.0.0.1", 0, 0, NULL, open_brace, NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_http_server_listen(&hs, "127.0.0.1", 0, 0, NULL, unnamed, NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_http_server_listen(&hs, "127.0.0.1", 0, 0, NULL, many, NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_http_server_listen(&hs, "127.0.0.1", 0, 0, NULL, no_fn, NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_http_server_listen(&hs, "127.0.0.1", 0, 0, NULL, small, NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_http_server_listen(&hs, "127.0.0.1", 0, 0, NULL, hh_routes, NULL), 0);
    async_http_server_close(&hs, 0);
    ASSERT(async_http_request_param(NULL, "a") == NULL);
    ASSERT(async_http_request_query(NULL, "a") == NULL);
    ASSERT_STR_EQ(async_http_request_peer(NULL), "");
    ASSERT_EQ(async_http_response_write(NULL, "a", 1), ASYNC_EINVAL);
    ASSERT(async_http_response_upgrade(NULL) == NULL);
    ASSERT_EQ(async_http_response_text(NULL, 200, "a"), ASYNC_EINVAL);
}
