/* The HTTP server on 127.0.0.1: curl and python's http.client as its clients; raw requests of our own,
 * malformed, oversized, pipelined, at every limit (414, 431, 413, 408), with trailers, Expect:
 * 100-continue, HTTP/1.0; reason phrases and response shapes; handler errors; slow, vanishing and
 * resetting clients, lingering closes, idle connections, 1,000 connections at once; big answers that
 * drain; shutdown with and without grace, also from a handler; bad arguments. Peers run as child
 * processes whose output comes back through a stream of the same loop that runs the server, so nothing
 * blocks and every wait has a deadline. */
#include "test.h"
#include "util.h"

#include <fcntl.h>
#include <signal.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- peer programs run as coroutines ---- */

/* Starts argv with stdout+stderr on one end of a socketpair; returns the pid, *fd gets our end. */
static pid_t http_spawn(const char *const argv[], int *fd) {
    int sv[2];
    pid_t pid;
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    fflush(NULL);
    pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlives its test */
        dup2(devnull, 0);
        dup2(sv[1], 1);
        dup2(sv[1], 2);
        execvp(argv[0], (char *const *)(void *)argv);
        _exit(127);
    }
    close(sv[1]);
    *fd = sv[0];
    return pid;
}

/* A peer process run as a coroutine: its whole output is collected, then its exit status. */
ASYNC_DEF(http_peer, const char *const *argv; async_stream out; pid_t pid; char buf[65536]; size_t len, n;
          int status;) {
    int fd;
    f->pid = http_spawn(f->argv, &fd);
    ASSERT_EQ(async_stream_open(&f->out, fd), 0);
    ASYNC_TRY(t) {
        do {
            AWAIT_STREAM_READ(t, &f->out, f->buf + f->len, sizeof f->buf - 1 - f->len, &f->n, 8000);
            f->len += f->n;
        } while (f->n && f->len < sizeof f->buf - 1);
    }
    ASYNC_FINALLY(t) {
        f->buf[f->len] = '\0';
        async_stream_close(&f->out);
        kill(f->pid, SIGKILL); /* already gone unless something went wrong */
        waitpid(f->pid, &f->status, 0);
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

/* Every response carries a Date line ("Date: Mon, 07 Dec 2026 05:01:43 GMT\r\n", always this long): the
 * answers are compared without it, once checked that it has that shape. */
#define HS_DATE_LEN 37
static char *hs_undate(char *s) {
    char *p = s;
    while ((p = strstr(p, "\r\nDate: ")) != NULL) {
        char *line = p + 2, *end = strstr(line, "\r\n");
        ASSERT(end && end + 2 - line == HS_DATE_LEN && memcmp(end - 4, " GMT", 4) == 0);
        memmove(line, end + 2, strlen(end + 2) + 1);
        p = line - 2;
    }
    return s;
}

/* Sets each "Name: value\r\n" line of `lines` on res (the tests' handlers keep their headers as text). */
static void http_set_lines(async_http_response *res, const char *lines) {
    static char name[64], value[4096];
    while (*lines) {
        const char *colon = strchr(lines, ':'), *end = strstr(lines, "\r\n");
        ASSERT(colon && end && colon < end && (size_t)(colon - lines) < sizeof name);
        memcpy(name, lines, (size_t)(colon - lines));
        name[colon - lines] = '\0';
        colon += *(colon + 1) == ' ' ? 2 : 1;
        ASSERT((size_t)(end - colon) < sizeof value);
        memcpy(value, colon, (size_t)(end - colon));
        value[end - colon] = '\0';
        ASSERT_EQ(async_http_response_header(res, name, value), 0);
        lines = end + 2;
    }
}

/* A handler written as a function: the coroutine that runs it raises what it returns. */
#define HTTP_FN_HANDLER(name, fn)                                                                     \
    ASYNC_HTTP_DEF(name) {                                                                            \
        int rc = fn(f->req, f->res, f->req->arg);                                                     \
        if (rc) ASYNC_THROW_ERROR(t, async_error_of(rc));                                             \
    }                                                                                                 \
    ASYNC_END_DEF

/* ---- a server that echoes what it got, or serves a large body, and one client scenario against it ---- */

static char http_big[4 << 20];

static int http_handler(const async_http_request *req, async_http_response *res, void *arg) {
    static char out[4096];
    const char *agent = async_http_request_header(req, "user-agent");
    (void)arg;
    if (strcmp(req->target, "/big") == 0) {
        res->body = http_big;
        res->body_len = sizeof http_big;
        return 0;
    }
    if (strcmp(req->target, "/fail") == 0) return ASYNC_EIO;
    if (strcmp(req->target, "/missing") == 0) {
        res->status = 404;
        res->body = "no such page";
        res->body_len = 12;
        return 0;
    }
    snprintf(out, sizeof out, "%s %s body=%zu:%.*s agent=%s", req->method, req->target, req->body_len,
             (int)(req->body_len < 64 ? req->body_len : 64), req->body, agent ? agent : "-");
    res->body = out;
    res->body_len = strlen(out);
    http_set_lines(res, "X-Test: yes\r\n");
    return 0;
}

HTTP_FN_HANDLER(http_echo, http_handler)
static const async_http_route http_routes[] = {ASYNC_HTTP_ROUTE(NULL, NULL, http_echo), ASYNC_HTTP_ROUTES_END};

/* main: a server, then one client scenario against it, then a graceful close. */
typedef struct http_main_frame http_main_frame;

typedef async_task *(*http_client_fn)(http_main_frame *m);

struct http_main_frame {
    async_task task;
    async_http_server http;
    async_http_limits limits;
    async_group g, clients;
    http_client_fn client;
    int port;
    char url[128];
    http_peer_frame peer;
    const char *argv[16];
    /* a raw client of our own */
    async_task raw;
    async_stream s;
    const char *send;
    size_t send_len;
    char got[8192];
    size_t got_len, n;
    int code;
    int i;
};

static async_status http_main_run(async_task *t) {
    http_main_frame *f = (http_main_frame *)t;
    ASYNC_BEGIN(t);
    ASSERT_EQ(async_http_server_listen(&f->http, "127.0.0.1", 0, 0, &f->limits, http_routes, NULL), 0);
    f->port = async_http_server_port(&f->http);
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d", f->port);
    ASYNC_SPAWN(t, &f->g, async_http_server_serve(&f->http));
    ASYNC_TRY(t) {
        AWAIT(t, f->client(f));
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
    async_http_server_close(&f->http, 1000);
    AWAIT_GROUP(t, &f->g);
    ASYNC_END(t);
}

static void http_serve_with(http_main_frame *f, http_client_fn client) {
    ASSERT(ASYNC_FRAME_INIT(f, http_main_run));
    f->client = client;
    ASSERT_EQ(run_real(&f->task), 0);
    ASSERT_EQ(async_http_server_port(&f->http), f->port);
    ASSERT_EQ(async_server_connections(&f->http.server), 0);
}

/* ---- curl and python's http.client against the server ---- */

static char http_url_a[160], http_url_b[160];

static async_task *http_curl_client(http_main_frame *m) {
    snprintf(http_url_a, sizeof http_url_a, "%s/a?x=1", m->url);
    snprintf(http_url_b, sizeof http_url_b, "%s/b", m->url);
    m->argv[0] = "curl";
    m->argv[1] = "-s";
    m->argv[2] = "-i";
    m->argv[3] = "-A";
    m->argv[4] = "curl-test";
    m->argv[5] = http_url_a;
    m->argv[6] = http_url_b;
    m->argv[7] = NULL;
    return ASYNC_CALL(http_peer, &m->peer, m->argv);
}

TEST(http_server_answers_curl_with_keep_alive) {
    static http_main_frame f;
    test_need("curl");
    http_serve_with(&f, http_curl_client);
    ASSERT_EQ(f.code, 0);
    ASSERT(strstr(f.peer.buf, "HTTP/1.1 200 OK\r\nContent-Length: 34\r\nContent-Type: text/plain; charset=utf-8\r\n") != NULL);
    ASSERT(strstr(f.peer.buf, "GET /a?x=1 body=0: agent=curl-test") != NULL);
    ASSERT(strstr(f.peer.buf, "GET /b body=0: agent=curl-test") != NULL);
    ASSERT(strstr(f.peer.buf, "X-Test: yes") != NULL);
    ASSERT_EQ(f.http.server.accepted, 1); /* both requests on one kept-alive connection */
}

static const char http_py_script[] =
    "import http.client, sys\n"
    "c = http.client.HTTPConnection('127.0.0.1', int(sys.argv[1]), timeout=5)\n"
    "c.request('GET', '/hello'); r = c.getresponse(); print(r.status, r.read().decode())\n"
    "c.request('POST', '/form', body=b'x=1&y=2'); r = c.getresponse(); print(r.status, r.read().decode())\n"
    "c.request('POST', '/chunked', body=iter([b'ab', b'cde']), encode_chunked=True)\n"
    "r = c.getresponse(); print(r.status, r.read().decode())\n"
    "c.request('HEAD', '/head'); r = c.getresponse(); print(r.status, r.getheader('Content-Length'), repr(r.read()))\n"
    "c.request('GET', '/missing'); r = c.getresponse(); print(r.status, r.read().decode())\n"
    "c.request('GET', '/fail'); r = c.getresponse(); print(r.status, r.read().decode())\n";

static char http_port_arg[16];

static async_task *http_python_client(http_main_frame *m) {
    snprintf(http_port_arg, sizeof http_port_arg, "%d", m->port);
    m->argv[0] = "python3";
    m->argv[1] = "-c";
    m->argv[2] = http_py_script;
    m->argv[3] = http_port_arg;
    m->argv[4] = NULL;
    return ASYNC_CALL(http_peer, &m->peer, m->argv);
}

TEST(http_server_answers_python_http_client) {
    static http_main_frame f;
    test_need("python3");
    http_serve_with(&f, http_python_client);
    ASSERT(strstr(f.peer.buf, "200 GET /hello body=0: agent=-\n") != NULL);
    ASSERT(strstr(f.peer.buf, "200 POST /form body=7:x=1&y=2 agent=-\n") != NULL);
    ASSERT(strstr(f.peer.buf, "200 POST /chunked body=5:abcde agent=-\n") != NULL);
    ASSERT(strstr(f.peer.buf, "200 26 b''\n") != NULL); /* HEAD: the length, no body */
    ASSERT(strstr(f.peer.buf, "404 no such page\n") != NULL);
    ASSERT(strstr(f.peer.buf, "500 Internal Server Error\n") != NULL);
    ASSERT_EQ(f.http.server.accepted, 1);
}

/* ---- raw requests: malformed, oversized, pipelined ---- */

typedef struct {
    const char *name;
    const char *request; /* NULL: built by http_build */
    const char *expect;  /* the start of the whole answer */
} http_raw_case;

static char http_req_buf[128 * 1024];

static const char *http_build(const char *name) {
    char *o = http_req_buf;
    int i;
    if (strcmp(name, "long-line") == 0) {
        o += sprintf(o, "GET /");
        memset(o, 'a', 9000);
        o += 9000;
        sprintf(o, " HTTP/1.1\r\nHost: t\r\n\r\n");
    } else if (strcmp(name, "many-headers") == 0) {
        o += sprintf(o, "GET / HTTP/1.1\r\nHost: t\r\n");
        for (i = 0; i < 300; i++) o += sprintf(o, "X-H%d: v\r\n", i); /* the default allows 256 */
        sprintf(o, "\r\n");
    } else { /* big-header */
        o += sprintf(o, "GET / HTTP/1.1\r\nHost: t\r\nX-Big: ");
        memset(o, 'b', 70000); /* the default allows 64 KiB */
        o += 70000;
        sprintf(o, "\r\n\r\n");
    }
    return http_req_buf;
}

static const http_raw_case http_raw_cases[] = {
    {"garbage", "GARBAGE\r\n\r\n", "HTTP/1.1 400 Bad Request\r\n"},
    {"bad-version", "GET / HTTP/9\r\n\r\n", "HTTP/1.1 400 Bad Request\r\n"},
    /* RFC 9112: a request line without a version is HTTP/0.9, which has no headers to answer with */
    {"http09", "GET /\r\n\r\n", "HTTP/1.1 400 Bad Request\r\n"},
    {"http2-line", "GET / HTTP/2.0\r\nHost: t\r\n\r\n", "HTTP/1.1 505 HTTP Version Not Supported\r\n"},
    {"no-host", "GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 400 Bad Request\r\n"},
    {"two-hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "HTTP/1.1 400 Bad Request\r\n"},
    {"space-before-colon", "GET / HTTP/1.1\r\nHost: t\r\nX-A : 1\r\n\r\n", "HTTP/1.1 400 Bad Request\r\n"},
    {"connect", "CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n",
     "HTTP/1.1 501 Not Implemented\r\n"},
    {"http10-no-host", "GET /h HTTP/1.0\r\n\r\n",
     "HTTP/1.1 200 OK\r\nContent-Length: 22\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n"},
    {"long-line", NULL, "HTTP/1.1 414 URI Too Long\r\n"},
    {"many-headers", NULL, "HTTP/1.1 431 Request Header Fields Too Large\r\n"},
    {"big-header", NULL, "HTTP/1.1 431 Request Header Fields Too Large\r\n"},
    {"big-body", "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\n\r\n", "HTTP/1.1 413 Content Too Large\r\n"},
    {"bad-chunk", "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "HTTP/1.1 400 Bad Request\r\n"},
    {"smuggling", "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
     "HTTP/1.1 400 Bad Request\r\n"},
    {"pipelined",
     "GET /1 HTTP/1.1\r\nHost: t\r\n\r\nGET /2 HTTP/1.1\r\nHost: t\r\n\r\nPOST /3 HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi",
     "HTTP/1.1 200 OK\r\nContent-Length: 22\r\nContent-Type: text/plain; charset=utf-8\r\nX-Test: yes\r\n\r\nGET /1 body=0: agent=-"
     "HTTP/1.1 200 OK\r\nContent-Length: 22\r\nContent-Type: text/plain; charset=utf-8\r\nX-Test: yes\r\n\r\nGET /2 body=0: agent=-"
     "HTTP/1.1 200 OK\r\nContent-Length: 25\r\nContent-Type: text/plain; charset=utf-8\r\nX-Test: yes\r\n\r\nPOST /3 body=2:hi agent=-"},
    {"http10-closes", "GET /old HTTP/1.0\r\n\r\n",
     "HTTP/1.1 200 OK\r\nContent-Length: 24\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n"},
};

static async_status http_raw_run(async_task *t) {
    http_main_frame *m = (http_main_frame *)(void *)((char *)t - offsetof(http_main_frame, raw));
    ASYNC_BEGIN(t);
    for (m->i = 0; m->i < (int)(sizeof http_raw_cases / sizeof http_raw_cases[0]); m->i++) {
        m->send = http_raw_cases[m->i].request ? http_raw_cases[m->i].request : http_build(http_raw_cases[m->i].name);
        AWAIT_STREAM_CONNECT(t, &m->s, "127.0.0.1", m->port, 1000);
        ASSERT_EQ(async_stream_write(&m->s, m->send, strlen(m->send)), 0);
        AWAIT_STREAM_DRAIN(t, &m->s, 1000);
        shutdown(async_stream_fd(&m->s), SHUT_WR);
        m->got_len = 0;
        ASYNC_TRY(t) {
            do {
                AWAIT_STREAM_READ(t, &m->s, m->got + m->got_len, sizeof m->got - 1 - m->got_len, &m->n, 3000);
                m->got_len += m->n;
            } while (m->n && m->got_len < sizeof m->got - 1);
        }
        ASYNC_CATCH(t) {
            /* a reset after the answer (the server closed with our unread bytes): the answer counts */
            if (async_caught(t)->code != ASYNC_ECONNRESET) ASYNC_RERAISE(t);
        }
        ASYNC_END_TRY(t);
        m->got[m->got_len] = '\0';
        async_stream_close(&m->s);
        if (strncmp(hs_undate(m->got), http_raw_cases[m->i].expect, strlen(http_raw_cases[m->i].expect)) != 0)
            test_fail(__FILE__, __LINE__, "case %s: got\n%s\nexpected it to start with\n%s", http_raw_cases[m->i].name,
                      m->got, http_raw_cases[m->i].expect);
    }
    ASYNC_END(t);
}

static async_task *http_raw_client(http_main_frame *m) {
    async_task_init(&m->raw, http_raw_run);
    return &m->raw;
}

TEST(http_server_rejects_malformed_and_oversized_and_pipelines) {
    static http_main_frame f;
    http_serve_with(&f, http_raw_client);
    ASSERT_EQ(f.code, 0);
}

/* ---- slow, vanishing and many clients; graceful shutdown ---- */

ASYNC_DEF(http_slow, int port; const char *req; int32_t gap_ms; const int *answered; int hold;
          async_stream s; size_t i; char got[256]; size_t len, n;) {
    AWAIT_STREAM_CONNECT(t, &f->s, "127.0.0.1", f->port, 1000);
    ASYNC_TRY(t) {
        for (f->i = 0; f->req[f->i]; f->i++) { /* one byte at a time, until the server gives up */
            if (async_stream_write(&f->s, f->req + f->i, 1)) break;
            AWAIT_STREAM_DRAIN(t, &f->s, 1000);
            AWAIT_SLEEP(t, f->gap_ms);
            /* mid-request, it waits until others have been answered: a server that stalled on this
             * connection would answer no one, and their requests would time out */
            while (f->answered && *f->answered < f->hold) AWAIT_SLEEP(t, 10);
        }
        do {
            AWAIT_STREAM_READ(t, &f->s, f->got + f->len, sizeof f->got - 1 - f->len, &f->n, 3000);
            f->len += f->n;
        } while (f->n && f->len < sizeof f->got - 1);
    }
    ASYNC_CATCH(t) {
        if (async_caught(t)->code != ASYNC_ECONNRESET && async_caught(t)->code != ASYNC_EPIPE) ASYNC_RERAISE(t);
    }
    ASYNC_END_TRY(t);
    async_stream_close(&f->s);
} ASYNC_END_DEF

ASYNC_DEF(http_fast, int count; char url[160]; async_http_client c; int i; int answered;) {
    for (f->i = 0; f->i < f->count; f->i++) {
        AWAIT(t, async_http_client_get(&f->c, f->url, 5000));
        ASSERT_EQ(async_http_client_status(&f->c), 200);
        f->answered++;
        AWAIT_SLEEP(t, 50);
    }
    async_http_client_close(&f->c);
} ASYNC_END_DEF

typedef struct {
    async_task task;
    http_slow_frame slow;
    http_fast_frame fast;
    async_group g;
} http_slow_main;

static http_slow_main http_slow_m;

static async_task *http_slow_client(http_main_frame *m) {
    http_slow_main *f = &http_slow_m;
    ASYNC_CALL(http_slow, &f->slow, m->port, "GET / HTTP/1.0\r\n\r\n", 100);
    ASYNC_CALL(http_fast, &f->fast, 20);
    snprintf(f->fast.url, sizeof f->fast.url, "%s/fast", m->url);
    return &f->slow.task;
}

static async_status http_both_run(async_task *t) {
    http_main_frame *m = (http_main_frame *)(void *)((char *)t - offsetof(http_main_frame, raw));
    ASYNC_BEGIN(t);
    http_slow_client(m);
    http_slow_m.slow.answered = &http_slow_m.fast.answered; /* it holds its request open until 5 are */
    http_slow_m.slow.hold = 5;
    AWAIT_GATHER(t, &http_slow_m.g, &http_slow_m.slow.task, &http_slow_m.fast.task);
    ASYNC_END(t);
}

static async_task *http_both_client(http_main_frame *m) {
    async_task_init(&m->raw, http_both_run);
    return &m->raw;
}

TEST(http_server_slow_client_does_not_stall_the_others) {
    static http_main_frame f;
    http_serve_with(&f, http_both_client);
    ASSERT_EQ(f.code, 0);
    ASSERT(strncmp(http_slow_m.slow.got, "HTTP/1.1 200 OK\r\n", 17) == 0); /* the slow one is served too */
    ASSERT_EQ(http_slow_m.fast.answered, 20); /* the others were answered meanwhile (see http_slow) */
}

static async_task *http_slow_only(http_main_frame *m) {
    http_slow_client(m);
    http_slow_m.slow.req = "GET"; /* then nothing: the request never completes */
    return &http_slow_m.slow.task;
}

TEST(http_server_request_deadline_answers_408) {
    static http_main_frame f;
    ASYNC_FRAME_INIT(&f, http_main_run);
    f.limits.request_ms = 300;
    f.client = http_slow_only;
    ASSERT_EQ(run_real(&f.task), 0);
    ASSERT_EQ(f.code, 0);
    ASSERT(strncmp(http_slow_m.slow.got, "HTTP/1.1 408 Request Timeout\r\n", 30) == 0);
}

static async_status http_vanish_run(async_task *t) {
    http_main_frame *m = (http_main_frame *)(void *)((char *)t - offsetof(http_main_frame, raw));
    ASYNC_BEGIN(t);
    for (m->i = 0; m->i < 3; m->i++) { /* ask for 4 MiB, read a little, hang up */
        AWAIT_STREAM_CONNECT(t, &m->s, "127.0.0.1", m->port, 1000);
        ASSERT_EQ(async_stream_write(&m->s, "GET /big HTTP/1.1\r\nHost: t\r\n\r\n", 30), 0);
        AWAIT_STREAM_DRAIN(t, &m->s, 1000);
        AWAIT_STREAM_READEXACTLY(t, &m->s, m->got, 1000, 2000);
        async_stream_close(&m->s);
    }
    http_slow_client(m);
    http_slow_m.fast.count = 2;
    AWAIT(t, &http_slow_m.fast.task); /* the server is still up and answers */
    AWAIT_SLEEP(t, 100);
    ASSERT_EQ(async_server_connections(&m->http.server), 0); /* the vanished ones were cleaned up */
    ASYNC_END(t);
}

static async_task *http_vanish_client(http_main_frame *m) {
    async_task_init(&m->raw, http_vanish_run);
    return &m->raw;
}

TEST(http_server_client_disconnects_mid_response) {
    static http_main_frame f;
    http_serve_with(&f, http_vanish_client);
    ASSERT_EQ(f.code, 0);
    ASSERT_EQ(f.http.server.accepted, 4);
}

#define HTTP_MANY 1000

ASYNC_DEF(http_one, async_http_client c; char url[160];) {
    ASYNC_TRY(t) {
        AWAIT(t, async_http_client_get(&f->c, f->url, 4000));
        ASSERT_EQ(async_http_client_status(&f->c), 200);
    }
    ASYNC_FINALLY(t) {
        async_http_client_close(&f->c);
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

static http_one_frame *http_many;

static async_status http_many_run(async_task *t) {
    http_main_frame *m = (http_main_frame *)(void *)((char *)t - offsetof(http_main_frame, raw));
    ASYNC_BEGIN(t);
    for (m->i = 0; m->i < HTTP_MANY; m->i++) {
        ASYNC_CALL(http_one, &http_many[m->i]);
        snprintf(http_many[m->i].url, sizeof http_many[m->i].url, "%s/n%d", m->url, m->i);
    }
    AWAIT_GATHER_ARRAY(t, &m->clients, &http_many[0].task, HTTP_MANY, sizeof http_many[0]);
    ASYNC_END(t);
}

static async_task *http_many_client(http_main_frame *m) {
    async_task_init(&m->raw, http_many_run);
    return &m->raw;
}

TEST(http_server_1000_concurrent_connections) {
    static http_main_frame f;
    struct rlimit rl;
    ASSERT(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    if (rl.rlim_cur < 2 * HTTP_MANY + 64) { /* both ends of every connection live in this process */
        rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
        setrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur < 2 * HTTP_MANY + 64)
            test_skip("the hard limit of descriptors (RLIMIT_NOFILE) is %lu, too low", (unsigned long)rl.rlim_max);
    }
    http_many = async_frame_array_new(HTTP_MANY, sizeof *http_many);
    ASSERT(http_many != NULL);
    http_serve_with(&f, http_many_client);
    ASSERT_EQ(f.code, 0);
    ASSERT_EQ(f.http.server.accepted, HTTP_MANY);
    async_frame_array_free(http_many, HTTP_MANY, sizeof *http_many);
}

/* Graceful shutdown: an idle kept-alive connection is closed at once, a request in flight is finished
 * and answered with "Connection: close", then the accept loop ends. */
static async_status http_graceful_run(async_task *t) {
    http_main_frame *m = (http_main_frame *)(void *)((char *)t - offsetof(http_main_frame, raw));
    ASYNC_BEGIN(t);
    http_slow_client(m);
    snprintf(http_slow_m.fast.url, sizeof http_slow_m.fast.url, "%s/idle", m->url);
    AWAIT(t, async_http_client_get(&http_slow_m.fast.c, http_slow_m.fast.url, 1000)); /* now idle, kept alive */
    AWAIT_STREAM_CONNECT(t, &m->s, "127.0.0.1", m->port, 1000);
    ASSERT_EQ(async_stream_write(&m->s, "GET /inflight HTTP/1.1\r\nHost: t\r\n", 33), 0);
    AWAIT_STREAM_DRAIN(t, &m->s, 1000);
    AWAIT_SLEEP(t, 50);
    async_http_server_close(&m->http, 2000);
    AWAIT_SLEEP(t, 50);
    ASSERT_EQ(async_server_connections(&m->http.server), 1); /* the idle one is gone, the busy one stays */
    ASSERT_EQ(async_stream_write(&m->s, "\r\n", 2), 0);
    AWAIT_STREAM_DRAIN(t, &m->s, 1000);
    m->got_len = 0;
    do {
        AWAIT_STREAM_READ(t, &m->s, m->got + m->got_len, sizeof m->got - 1 - m->got_len, &m->n, 2000);
        m->got_len += m->n;
    } while (m->n);
    m->got[m->got_len] = '\0';
    async_stream_close(&m->s);
    async_http_client_close(&http_slow_m.fast.c);
    ASYNC_END(t);
}

static async_task *http_graceful_client(http_main_frame *m) {
    async_task_init(&m->raw, http_graceful_run);
    return &m->raw;
}

TEST(http_server_graceful_shutdown_finishes_in_flight_requests) {
    static http_main_frame f;
    http_serve_with(&f, http_graceful_client);
    ASSERT_EQ(f.code, 0);
    ASSERT(strstr(f.got, "HTTP/1.1 200 OK\r\n") == f.got);
    ASSERT(strstr(f.got, "Connection: close\r\n") != NULL);
    ASSERT(strstr(f.got, "GET /inflight body=0: agent=-") != NULL);
}

/* ---- the server at its edges: a scenario of raw exchanges against a server with the limits given ---- */

static char hs_dump[16384];

typedef struct hs_srv hs_srv;

struct hs_srv {
    async_task task;
    async_http_server http;
    async_http_limits limits;
    async_group g;
    int port;
    async_task scen; /* the scenario */
    async_fn scen_fn;
    async_task xch;  /* one raw exchange: connect, send, read to the end */
    async_stream s;
    const char *send;
    size_t send_len;
    unsigned xflags;
    char got[65536];
    size_t got_len, total, n;
    int code;
    async_stream s2; /* a second raw connection */
    char got2[4096];
    size_t got2_len;
    int i, w;
    unsigned long conns; /* connections made by the scenario */
    async_ms t0;
};

#define HS_SRV(t, member) ((hs_srv *)(void *)((char *)(t) - offsetof(hs_srv, member)))

enum { HS_X_SHUT = 1, HS_X_RESET = 2 };

static int hs_calls;

static char hs_big[4 << 20];

static char hs_big_hdrs[3100];

static int hs_handler(const async_http_request *req, async_http_response *res, void *arg) {
    static char out[1024];
    hs_srv *m = (hs_srv *)arg;
    const char *xt = async_http_request_header(req, "x-t");
    int st;
    hs_calls++;
    if (sscanf(req->target, "/s/%d", &st) == 1) {
        res->status = st;
        res->body = "s";
        res->body_len = 1;
        return 0;
    }
    if (strcmp(req->target, "/empty") == 0) return 0;
    if (strcmp(req->target, "/fail") == 0) return ASYNC_EIO;
    if (strcmp(req->target, "/big") == 0) {
        res->body = hs_big;
        res->body_len = sizeof hs_big;
        return 0;
    }
    if (strcmp(req->target, "/hdrs-empty") == 0) { /* a head too long for the small buffer, no body */
        http_set_lines(res, hs_big_hdrs);
        return 0;
    }
    if (strcmp(req->target, "/hdrs") == 0) {
        http_set_lines(res, hs_big_hdrs);
        res->body = "h";
        res->body_len = 1;
        return 0;
    }
    if (strcmp(req->target, "/type") == 0) {
        res->content_type = "application/json";
        res->body = "{}";
        res->body_len = 2;
        return 0;
    }
    if (strcmp(req->target, "/close") == 0) {
        res->close = true;
        res->body = "bye";
        res->body_len = 3;
        return 0;
    }
    if (strncmp(req->target, "/rst", 4) == 0) { /* the client (our s2) resets under the handler's feet */
        test_linger0(async_stream_fd(&m->s2));
        async_stream_close(&m->s2);
        if (strcmp(req->target, "/rst-fail") == 0) return ASYNC_EIO;
        if (strcmp(req->target, "/rst-big") == 0) { /* the head cannot be sent: nor is the body tried */
            res->body = hs_big;
            res->body_len = sizeof hs_big;
            return 0;
        }
        res->body = "unsent";
        res->body_len = 6;
        return 0;
    }
    if (strcmp(req->target, "/stop") == 0) {
        async_http_server_close(&m->http, 1000);
        res->body = "stopping";
        res->body_len = 8;
        return 0;
    }
    snprintf(out, sizeof out, "%s %s 1.%d n=%zu body=%zu:%.8s xt=[%s] null=%d", req->method, req->target,
             req->version_minor, req->nheaders, req->body_len, req->body, xt ? xt : "-",
             async_http_request_header(req, NULL) == NULL);
    res->body = out;
    res->body_len = strlen(out);
    return 0;
}

HTTP_FN_HANDLER(hs_echo, hs_handler)
static const async_http_route hs_routes[] = {ASYNC_HTTP_ROUTE(NULL, NULL, hs_echo), ASYNC_HTTP_ROUTES_END};

static async_status hs_xch_run(async_task *t) {
    hs_srv *m = HS_SRV(t, xch);
    ASYNC_BEGIN(t);
    m->got_len = m->total = 0;
    m->got[0] = '\0';
    m->code = ASYNC_EINPROGRESS;
    AWAIT_STREAM_CONNECT(t, &m->s, "127.0.0.1", m->port, 1000);
    m->conns++;
    ASYNC_TRY(t) {
        ASSERT_EQ(async_stream_write(&m->s, m->send, m->send_len), 0);
        AWAIT_STREAM_DRAIN(t, &m->s, 1000);
        if (m->xflags & HS_X_RESET) {
            test_linger0(async_stream_fd(&m->s));
            m->code = 0;
            ASYNC_RETURN(t, 0);
        }
        if (m->xflags & HS_X_SHUT) shutdown(async_stream_fd(&m->s), SHUT_WR);
        do {
            AWAIT_STREAM_READ(t, &m->s, m->got + m->got_len, sizeof m->got - 1 - m->got_len, &m->n, 3000);
            m->total += m->n;
            m->got_len += m->n;
            if (m->got_len > 32768) m->got_len = 32768; /* keeps the start of long answers */
            m->got[m->got_len] = '\0';
        } while (m->n);
        m->code = 0;
    }
    ASYNC_CATCH(t) {
        m->code = async_caught(t)->code;
    }
    ASYNC_FINALLY(t) {
        async_stream_close(&m->s);
    }
    ASYNC_END_TRY(t);
    ASYNC_END(t);
}

/* One raw exchange of `req` (a string) on a new connection. */
static async_task *hs_xch(hs_srv *m, const char *req, unsigned flags) {
    m->send = req;
    m->send_len = strlen(req);
    m->xflags = flags;
    async_task_init(&m->xch, hs_xch_run);
    return &m->xch;
}

static async_status hs_srv_run(async_task *t) {
    hs_srv *m = (hs_srv *)t;
    ASYNC_BEGIN(t);
    ASSERT_EQ(async_http_server_listen(&m->http, "127.0.0.1", 0, 0, &m->limits, hs_routes, m), 0);
    m->port = async_http_server_port(&m->http);
    ASYNC_SPAWN(t, &m->g, async_http_server_serve(&m->http));
    async_task_init(&m->scen, m->scen_fn);
    ASYNC_TRY(t) {
        AWAIT(t, &m->scen);
    }
    ASYNC_FINALLY(t) {
        async_stream_close(&m->s);
        async_stream_close(&m->s2);
        async_http_server_close(&m->http, 1000);
    }
    ASYNC_END_TRY(t);
    AWAIT_GROUP(t, &m->g);
    ASYNC_END(t);
}

static hs_srv hs_srv_frame;

/* Runs scenario fn against a server with `limits` (NULL: defaults); debug: a loop in debug mode. */
static hs_srv *hs_server_test(async_fn fn, const async_http_limits *limits, bool debug) {
    hs_srv *m = &hs_srv_frame;
    async_loop *loop = async_loop_new(0);
    ASSERT(loop != NULL);
    if (debug) {
        ASSERT_EQ(async_loop_set_debug(loop, true), 0);
        async_loop_set_slow_step(loop, 60000); /* the dump itself is slow under valgrind */
    }
    ASSERT(async_frame_init(&m->task, sizeof *m, hs_srv_run));
    if (limits) m->limits = *limits;
    m->scen_fn = fn;
    hs_calls = 0;
    ASSERT_EQ(async_run(loop, &m->task), 0);
    async_loop_free(loop);
    ASSERT_EQ(async_server_connections(&m->http.server), 0);
    return m;
}

/* The exact answer to an error: the reason as the body, then the close. */
static void hs_error_answer(char *out, size_t cap, int status, const char *reason) {
    snprintf(out, cap, "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n%s",
             status, reason, strlen(reason), reason);
}

/* Appends the answer to a request that the echo handler answers with `body`; returns the end. */
static char *hs_ok_answer(char *w, const char *body) {
    return w + sprintf(w, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s", strlen(body),
                       body);
}

/* ---- arguments, configuration, limits ---- */

TEST(http_server_null_arguments_and_bad_configuration) {
    static async_http_server hs, hs2;
    int port;
    ASSERT_EQ(async_http_server_listen(NULL, "127.0.0.1", 0, 0, NULL, hs_routes, NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_http_server_listen(&hs, "127.0.0.1", 0, 0, NULL, NULL, NULL), ASYNC_EINVAL);
    ASSERT(async_http_server_serve(NULL) == NULL);
    async_http_server_close(NULL, 0);
    ASSERT_EQ(async_http_server_port(NULL), 0);
    ASSERT(async_http_request_header(NULL, "Host") == NULL);
    /* a host that is not an address; a port out of range */
    ASSERT_EQ(async_http_server_listen(&hs, "example.invalid", 0, 0, NULL, hs_routes, NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_http_server_port(&hs), 0);
    async_http_server_close(&hs, 0); /* nothing to close: fine */
    ASSERT_EQ(async_http_server_listen(&hs, "127.0.0.1", 70000, 0, NULL, hs_routes, NULL), ASYNC_EINVAL);
    /* a port in use; closing a server that was never served frees its port */
    ASSERT_EQ(async_http_server_listen(&hs, "127.0.0.1", 0, 0, NULL, hs_routes, NULL), 0);
    port = async_http_server_port(&hs);
    ASSERT(port > 0);
    ASSERT_EQ(async_http_server_listen(&hs2, "127.0.0.1", port, 0, NULL, hs_routes, NULL), ASYNC_EADDRINUSE);
    async_http_server_close(&hs, 0);
    ASSERT_EQ(async_http_server_listen(&hs2, "127.0.0.1", port, 0, NULL, hs_routes, NULL), 0);
    ASSERT_EQ(async_http_server_port(&hs2), port);
    async_http_server_close(&hs2, 0);
}

static char hs_req[16384], hs_want[16384];

static async_status hs_limits(async_task *t) {
    hs_srv *m = HS_SRV(t, scen);
    char *o;
    ASYNC_BEGIN(t);
    /* a request line over 64 bytes */
    o = hs_req + sprintf(hs_req, "GET /");
    memset(o, 'a', 100);
    strcpy(o + 100, " HTTP/1.1\r\nHost: t\r\n\r\n");
    AWAIT(t, hs_xch(m, hs_req, HS_X_SHUT));
    hs_error_answer(hs_want, sizeof hs_want, 414, "URI Too Long");
    ASSERT_STR_EQ(hs_undate(m->got), hs_want);
    /* a field name over the 128 bytes of header fields */
    o = hs_req + sprintf(hs_req, "GET / HTTP/1.1\r\nHost: t\r\nX-");
    memset(o, 'n', 200);
    strcpy(o + 200, ": v\r\n\r\n");
    AWAIT(t, hs_xch(m, hs_req, HS_X_SHUT));
    hs_error_answer(hs_want, sizeof hs_want, 431, "Request Header Fields Too Large");
    ASSERT_STR_EQ(hs_undate(m->got), hs_want);
    /* a 4th field */
    AWAIT(t, hs_xch(m, "GET / HTTP/1.1\r\nHost: t\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", HS_X_SHUT));
    ASSERT_STR_EQ(hs_undate(m->got), hs_want);
    /* a declared body over 16 bytes, and a chunked one that grows over it */
    AWAIT(t, hs_xch(m, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 17\r\n\r\n01234567890123456", HS_X_SHUT));
    hs_error_answer(hs_want, sizeof hs_want, 413, "Content Too Large");
    ASSERT_STR_EQ(hs_undate(m->got), hs_want);
    AWAIT(t, hs_xch(m, "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n",
                    HS_X_SHUT));
    ASSERT_STR_EQ(hs_undate(m->got), hs_want);
    ASSERT_EQ(hs_calls, 0);
    /* at the limits: 3 fields (one empty), a body of 16 */
    AWAIT(t, hs_xch(m, "POST /in HTTP/1.1\r\nHost: t\r\nX-T: v\r\nX-E:\r\nContent-Length: 16\r\n\r\n0123456789abcdef", HS_X_SHUT));
    hs_ok_answer(hs_want, "POST /in 1.1 n=4 body=16:01234567 xt=[v] null=1");
    ASSERT_STR_EQ(hs_undate(m->got), hs_want);
    ASSERT_EQ(hs_calls, 1);
    ASSERT_EQ(m->http.server.accepted, 6);
    ASYNC_END(t);
}

TEST(http_server_custom_limits_answer_414_431_413) {
    async_http_limits l;
    memset(&l, 0, sizeof l);
    l.max_request_line = 64;
    l.max_header_bytes = 128;
    l.max_headers = 4;
    l.max_body = 16;
    l.idle_ms = 2000;
    l.request_ms = 2000;
    hs_server_test(hs_limits, &l, false);
}

/* ---- responses ---- */

static const struct {
    int status;
    const char *line;
} hs_reasons[] = {
    {200, "200 OK"}, {201, "201 Created"}, {204, "204 No Content"}, {206, "206 Partial Content"},
    {301, "301 Moved Permanently"}, {302, "302 Found"}, {304, "304 Not Modified"}, {308, "308 Permanent Redirect"},
    {400, "400 Bad Request"}, {403, "403 Forbidden"}, {404, "404 Not Found"}, {405, "405 Method Not Allowed"},
    {408, "408 Request Timeout"}, {413, "413 Content Too Large"}, {414, "414 URI Too Long"},
    {416, "416 Range Not Satisfiable"}, {418, "418 Client Error"}, {426, "426 Upgrade Required"},
    {429, "429 Too Many Requests"}, {431, "431 Request Header Fields Too Large"}, {500, "500 Internal Server Error"},
    {501, "501 Not Implemented"}, {503, "503 Service Unavailable"}, {505, "505 HTTP Version Not Supported"},
    {511, "511 Network Authentication Required"}, {299, "299 Success"}, {399, "399 Redirection"},
    {499, "499 Client Error"}, {599, "599 Server Error"},
    {100, "500 Internal Server Error"}, /* not a final status: a server error */
    {42, "500 Internal Server Error"}, /* out of range: a server error */
    {1000, "500 Internal Server Error"},
};

static async_status hs_statuses(async_task *t) {
    hs_srv *m = HS_SRV(t, scen);
    size_t i, n = sizeof hs_reasons / sizeof hs_reasons[0];
    char *o = hs_req, *w = hs_want;
    ASYNC_BEGIN(t);
    for (i = 0; i < n; i++) { /* all pipelined on one connection, the last one closing it */
        o += sprintf(o, "GET /s/%d HTTP/1.1\r\nHost: t\r\n%s\r\n", hs_reasons[i].status, i + 1 == n ? "Connection: close\r\n" : "");
        if (hs_reasons[i].status == 204 || hs_reasons[i].status == 304) /* no body, nor its length */
            w += sprintf(w, "HTTP/1.1 %s\r\n%s\r\n", hs_reasons[i].line, i + 1 == n ? "Connection: close\r\n" : "");
        else
            w += sprintf(w, "HTTP/1.1 %s\r\nContent-Length: 1\r\nContent-Type: text/plain; charset=utf-8\r\n%s\r\ns",
                         hs_reasons[i].line, i + 1 == n ? "Connection: close\r\n" : "");
    }
    AWAIT(t, hs_xch(m, hs_req, 0));
    ASSERT_EQ(m->code, 0);
    ASSERT_STR_EQ(hs_undate(m->got), hs_want);
    ASSERT_EQ(m->http.server.accepted, 1);
    ASYNC_END(t);
}

TEST(http_server_reason_phrases_for_every_status_class) {
    hs_server_test(hs_statuses, NULL, false);
    ASSERT_EQ(hs_calls, (int)(sizeof hs_reasons / sizeof hs_reasons[0]));
}

static char hs_body1500[1501], hs_body3000[3001];

/* Empty bodies, other content types, long extra headers, HEAD, bodies that grow the request's buffer,
 * a handler asking to close with requests still pipelined behind. */
static async_status hs_shapes(async_task *t) {
    hs_srv *m = HS_SRV(t, scen);
    char *o = hs_req, *w = hs_want;
    ASYNC_BEGIN(t);
    memset(hs_big_hdrs, 'x', sizeof hs_big_hdrs - 1);
    memcpy(hs_big_hdrs, "X-Long: ", 8);
    memcpy(hs_big_hdrs + sizeof hs_big_hdrs - 3, "\r\n", 3);
    memset(hs_body1500, 'b', 1500);
    memset(hs_body3000, 'c', 3000);
    o += sprintf(o, "GET /empty HTTP/1.1\r\nHost: t\r\n\r\n");
    w += sprintf(w, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n");
    o += sprintf(o, "GET /type HTTP/1.1\r\nHost: t\r\n\r\n");
    w += sprintf(w, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}");
    o += sprintf(o, "GET /hdrs HTTP/1.1\r\nHost: t\r\n\r\n");
    w += sprintf(w, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Type: text/plain; charset=utf-8\r\n%s\r\nh", hs_big_hdrs);
    o += sprintf(o, "GET /hdrs-empty HTTP/1.1\r\nHost: t\r\n\r\n");
    w += sprintf(w, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nContent-Type: text/plain; charset=utf-8\r\n%s\r\n", hs_big_hdrs);
    o += sprintf(o, "HEAD /hdrs HTTP/1.1\r\nHost: t\r\n\r\n");
    w += sprintf(w, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Type: text/plain; charset=utf-8\r\n%s\r\n", hs_big_hdrs);
    o += sprintf(o, "HEAD /big HTTP/1.1\r\nHost: t\r\n\r\n");
    w += sprintf(w, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n", sizeof hs_big);
    o += sprintf(o, "HEAD /s/201 HTTP/1.1\r\nHost: t\r\n\r\n");
    w += sprintf(w, "HTTP/1.1 201 Created\r\nContent-Length: 1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n");
    o += sprintf(o, "POST /p1 HTTP/1.1\r\nHost: t\r\nContent-Length: 1500\r\n\r\n%s", hs_body1500);
    w = hs_ok_answer(w, "POST /p1 1.1 n=2 body=1500:bbbbbbbb xt=[-] null=1");
    o += sprintf(o, "POST /p2 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", 3000, hs_body3000);
    w = hs_ok_answer(w, "POST /p2 1.1 n=2 body=3000:cccccccc xt=[-] null=1");
    o += sprintf(o, "GET /old HTTP/1.0\r\nConnection: keep-alive\r\nX-T: 1.0\r\n\r\n");
    /* an HTTP/1.0 client keeps the connection only if the answer says so (RFC 9112 C.2.2) */
    w += sprintf(w, "HTTP/1.1 200 OK\r\nContent-Length: 40\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: keep-alive\r\n\r\n"
                    "GET /old 1.0 n=2 body=0: xt=[1.0] null=1");
    o += sprintf(o, "GET /close HTTP/1.1\r\nHost: t\r\n\r\nGET /never HTTP/1.1\r\nHost: t\r\n\r\n");
    w += sprintf(w, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nbye");
    AWAIT(t, hs_xch(m, hs_req, 0));
    ASSERT_EQ(m->code, 0);
    if (strcmp(hs_undate(m->got), hs_want) != 0) {
        size_t i = 0;
        while (m->got[i] == hs_want[i]) i++;
        test_fail(__FILE__, __LINE__, "answers differ at byte %zu: got \"%.60s\", expected \"%.60s\"", i, m->got + i,
                  hs_want + i);
    }
    ASSERT_EQ(hs_calls, 11); /* not /never */
    ASYNC_END(t);
}

TEST(http_server_response_shapes_head_and_handler_close) {
    hs_server_test(hs_shapes, NULL, false);
}

/* Trailers of a chunked request reach the handler as fields, each value ending where it ends although
 * the previous request's longer head was in the same memory. */
static async_status hs_trailers(async_task *t) {
    hs_srv *m = HS_SRV(t, scen);
    char *o = hs_req;
    ASYNC_BEGIN(t);
    o += sprintf(o, "GET /first HTTP/1.1\r\nHost: t\r\nX-Pad: ");
    memset(o, 'q', 600);
    o += 600;
    o += sprintf(o, "\r\n\r\n");
    o += sprintf(o, "POST /t HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-E:\r\nX-T: v\r\n\r\n");
    sprintf(o, "POST /u HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n1\r\nd\r\n0\r\nX-T:\r\n\r\n");
    AWAIT(t, hs_xch(m, hs_req, 0));
    ASSERT_EQ(m->code, 0);
    ASSERT(strstr(m->got, "GET /first 1.1 n=2 body=0: xt=[-] null=1") != NULL);
    if (!strstr(m->got, "POST /t 1.1 n=4 body=3:abc xt=[v] null=1")) test_fail(__FILE__, __LINE__, "got %.400s", m->got);
    ASSERT(strstr(m->got, "POST /u 1.1 n=4 body=1:d xt=[] null=1") != NULL);
    ASSERT_EQ(hs_calls, 3);
    ASYNC_END(t);
}

TEST(http_server_request_trailers_are_terminated) {
    hs_server_test(hs_trailers, NULL, false);
}

/* A handler's error is a 500 that closes the connection: what is pipelined behind it is not answered. */
static async_status hs_handler_error(async_task *t) {
    hs_srv *m = HS_SRV(t, scen);
    ASYNC_BEGIN(t);
    AWAIT(t, hs_xch(m, "GET /fail HTTP/1.1\r\nHost: t\r\n\r\nGET /after HTTP/1.1\r\nHost: t\r\n\r\n", 0));
    ASSERT_EQ(m->code, 0);
    hs_error_answer(hs_want, sizeof hs_want, 500, "Internal Server Error");
    ASSERT_STR_EQ(hs_undate(m->got), hs_want);
    ASSERT_EQ(hs_calls, 1);
    ASYNC_END(t);
}

TEST(http_server_handler_error_answers_500_and_closes) {
    hs_server_test(hs_handler_error, NULL, false);
}

/* The request's pieces are copied into one buffer that starts at 512 bytes: requests whose separating
 * NUL falls exactly on its end (after the target, after a field name, after the last value) are parsed
 * whole. (Under the allocation-failure driver, the growth there fails: a 500.) */
static async_status hs_boundaries(async_task *t) {
    hs_srv *m = HS_SRV(t, scen);
    char *o;
    ASYNC_BEGIN(t);
    /* a target of 511 bytes: the NUL after it needs byte 512 */
    o = hs_req + sprintf(hs_req, "GET /");
    memset(o, 'a', 510);
    sprintf(o + 510, " HTTP/1.1\r\nHost: t\r\nX-T: y\r\n\r\n");
    AWAIT(t, hs_xch(m, hs_req, HS_X_SHUT));
    ASSERT(strstr(m->got, "HTTP/1.1 200 OK\r\n") == m->got);
    ASSERT(strstr(m->got, "aaaa 1.1 n=2 body=0: xt=[y] null=1") != NULL);
    /* a 100-byte target, "X-T: z", a 404-byte field name: the NUL after the name */
    o = hs_req + sprintf(hs_req, "GET /");
    memset(o, 'b', 99);
    o += 99;
    o += sprintf(o, " HTTP/1.1\r\nHost: t\r\nX-T: z\r\nX-");
    memset(o, 'n', 408 - 6);
    sprintf(o + 408 - 6, ": v\r\n\r\n");
    AWAIT(t, hs_xch(m, hs_req, HS_X_SHUT));
    ASSERT(strstr(m->got, "bbbb 1.1 n=3 body=0: xt=[z] null=1") != NULL);
    /* a 100-byte target, "X-T", a 406-byte value: the NUL after the value */
    o = hs_req + sprintf(hs_req, "GET /");
    memset(o, 'c', 99);
    o += 99;
    o += sprintf(o, " HTTP/1.1\r\nHost: t\r\nX-T: ");
    memset(o, 'v', 406);
    sprintf(o + 406, "\r\n\r\n");
    AWAIT(t, hs_xch(m, hs_req, HS_X_SHUT));
    ASSERT(strstr(m->got, "cccc 1.1 n=2 body=0: xt=[vvvvvvvv") != NULL);
    ASSERT_EQ(hs_calls, 3);
    ASYNC_END(t);
}

TEST(http_server_request_buffer_grows_at_every_separator) {
    hs_server_test(hs_boundaries, NULL, false);
}

/* ---- peers that stall, reset or linger ---- */

/* Waits (up to 2 s) until the server has accepted every connection the scenario made and ended them. */
static async_status hs_wait_idle_run(async_task *t) {
    hs_srv *m = HS_SRV(t, xch);
    ASYNC_BEGIN(t);
    for (m->w = 0; m->w < 400 && (async_server_connections(&m->http.server) || m->http.server.accepted < m->conns); m->w++)
        AWAIT_SLEEP(t, 5);
    ASSERT_EQ(m->http.server.accepted, m->conns);
    ASSERT_EQ(async_server_connections(&m->http.server), 0);
    ASYNC_END(t);
}

static async_task *hs_wait_idle(hs_srv *m) {
    async_task_init(&m->xch, hs_wait_idle_run);
    return &m->xch;
}

/* Reads s2 to its end (or error) into got2; the code lands in m->code. */
static async_status hs_read2_run(async_task *t) {
    hs_srv *m = HS_SRV(t, xch);
    ASYNC_BEGIN(t);
    m->got2_len = 0;
    m->code = ASYNC_EINPROGRESS;
    ASYNC_TRY(t) {
        do {
            AWAIT_STREAM_READ(t, &m->s2, m->got2 + m->got2_len, sizeof m->got2 - 1 - m->got2_len, &m->n, 3000);
            m->got2_len += m->n;
        } while (m->n && m->got2_len < sizeof m->got2 - 1);
        m->code = 0;
    }
    ASYNC_CATCH(t) {
        m->code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
    m->got2[m->got2_len] = '\0';
    ASYNC_END(t);
}

static async_task *hs_read2(hs_srv *m) {
    async_task_init(&m->xch, hs_read2_run);
    return &m->xch;
}

/* Expect: 100-continue (RFC 9110 10.1.1): a client that waits for the 100 before it sends the body gets
 * it at once; an HTTP/1.0 request's expectation is ignored; a body over the limit is refused (413) at
 * once, with no 100; a client that sends the body anyway gets the 100 and then the answer. */
static async_status hs_continue(async_task *t) {
    hs_srv *m = HS_SRV(t, scen);
    static const char head[] = "POST /up HTTP/1.1\r\nHost: t\r\nExpect: 100-Continue\r\nContent-Length: 5\r\n\r\n";
    ASYNC_BEGIN(t);
    AWAIT_STREAM_CONNECT(t, &m->s2, "127.0.0.1", m->port, 1000);
    ASSERT_EQ(async_stream_write(&m->s2, head, sizeof head - 1), 0);
    AWAIT_STREAM_DRAIN(t, &m->s2, 1000);
    m->got2_len = 0;
    do { /* the body is not sent until the 100 has come */
        AWAIT_STREAM_READ(t, &m->s2, m->got2 + m->got2_len, sizeof m->got2 - 1 - m->got2_len, &m->n, 3000);
        ASSERT(m->n > 0);
        m->got2_len += m->n;
        m->got2[m->got2_len] = '\0';
    } while (m->got2_len < 25);
    ASSERT_STR_EQ(hs_undate(m->got2), "HTTP/1.1 100 Continue\r\n\r\n");
    ASSERT_EQ(hs_calls, 0);
    ASSERT_EQ(async_stream_write(&m->s2, "hello", 5), 0);
    AWAIT_STREAM_DRAIN(t, &m->s2, 1000);
    shutdown(async_stream_fd(&m->s2), SHUT_WR);
    AWAIT(t, hs_read2(m));
    ASSERT_EQ(m->code, 0);
    hs_ok_answer(hs_want, "POST /up 1.1 n=3 body=5:hello xt=[-] null=1");
    ASSERT_STR_EQ(hs_undate(m->got2), hs_want);
    async_stream_close(&m->s2);
    /* HTTP/1.0: no 100 */
    AWAIT(t, hs_xch(m, "POST /old HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi", HS_X_SHUT));
    ASSERT_EQ(m->code, 0);
    ASSERT(strstr(m->got, "100 Continue") == NULL);
    ASSERT(strstr(m->got, "POST /old 1.0 n=2 body=2:hi") != NULL);
    /* over the limit: 413 at once */
    AWAIT(t, hs_xch(m, "POST /big HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 99\r\n\r\n", HS_X_SHUT));
    ASSERT_EQ(m->code, 0);
    hs_error_answer(hs_want, sizeof hs_want, 413, "Content Too Large");
    ASSERT_STR_EQ(hs_undate(m->got), hs_want);
    /* the body sent without waiting, chunked: the 100, then the answer; no body: no 100 */
    AWAIT(t, hs_xch(m, "POST /eager HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "2\r\nhi\r\n0\r\n\r\nGET /none HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n\r\n", HS_X_SHUT));
    ASSERT_EQ(m->code, 0);
    {
        char *w = hs_want + sprintf(hs_want, "HTTP/1.1 100 Continue\r\n\r\n");
        w = hs_ok_answer(w, "POST /eager 1.1 n=3 body=2:hi xt=[-] null=1");
        hs_ok_answer(w, "GET /none 1.1 n=2 body=0: xt=[-] null=1");
    }
    ASSERT_STR_EQ(hs_undate(m->got), hs_want);
    ASSERT_EQ(hs_calls, 4);
    ASYNC_END(t);
}

TEST(http_server_expect_100_continue) {
    async_http_limits lim = {0};
    lim.max_body = 64;
    hs_server_test(hs_continue, &lim, false);
}

/* A connection that never sends a byte, and one kept alive after a request: both closed quietly when
 * idle_ms passes. A request cut by a reset ends its connection without an answer. */
static async_status hs_idle(async_task *t) {
    hs_srv *m = HS_SRV(t, scen);
    ASYNC_BEGIN(t);
    m->t0 = async_loop_now(async_task_loop(t));
    AWAIT(t, hs_xch(m, "", 0));
    ASSERT_EQ(m->code, 0);
    ASSERT_STR_EQ(hs_undate(m->got), ""); /* closed without a word */
    ASSERT(async_loop_now(async_task_loop(t)) - m->t0 >= 25); /* see hs_deadlines: may come a little early */
    m->t0 = async_loop_now(async_task_loop(t));
    AWAIT(t, hs_xch(m, "GET /kept HTTP/1.1\r\nHost: t\r\n\r\n", 0));
    ASSERT_EQ(m->code, 0);
    hs_ok_answer(hs_want, "GET /kept 1.1 n=1 body=0: xt=[-] null=1");
    ASSERT_STR_EQ(hs_undate(m->got), hs_want);
    ASSERT(async_loop_now(async_task_loop(t)) - m->t0 >= 25); /* see hs_deadlines: may come a little early */
    ASSERT(async_loop_now(async_task_loop(t)) - m->t0 < 2500); /* the idle close, not the read's 3 s deadline */
    AWAIT(t, hs_xch(m, "GET /cut HTTP/1.1\r\nHost: t\r\nX-Half: ", HS_X_RESET));
    AWAIT(t, hs_wait_idle(m));
    ASSERT_EQ(hs_calls, 1);
    ASYNC_END(t);
}

TEST(http_server_idle_connections_close_quietly) {
    async_http_limits l;
    memset(&l, 0, sizeof l);
    l.idle_ms = 50;
    hs_server_test(hs_idle, &l, false);
}

/* After a rejection the server reads and drops what the client still sends, so the answer is not
 * destroyed by a reset; a client that resets meanwhile ends the connection at once. A client that resets
 * right after a whole request: the handler runs, the answer cannot be sent, the connection ends. */
static async_status hs_linger(async_task *t) {
    hs_srv *m = HS_SRV(t, scen);
    ASYNC_BEGIN(t);
    hs_error_answer(hs_want, sizeof hs_want, 413, "Content Too Large");
    /* still sending after the 413 */
    AWAIT_STREAM_CONNECT(t, &m->s2, "127.0.0.1", m->port, 1000);
    m->conns++;
    ASSERT_EQ(async_stream_write(&m->s2, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n0123456789", 59), 0);
    AWAIT_STREAM_READEXACTLY(t, &m->s2, m->got2, strlen(hs_want) + HS_DATE_LEN, 1000);
    m->got2[strlen(hs_want) + HS_DATE_LEN] = '\0';
    ASSERT_STR_EQ(hs_undate(m->got2), hs_want);
    for (m->i = 0; m->i < 3; m->i++) {
        ASSERT_EQ(async_stream_write(&m->s2, "more body bytes", 15), 0);
        AWAIT_STREAM_DRAIN(t, &m->s2, 1000);
        AWAIT_SLEEP(t, 5);
    }
    shutdown(async_stream_fd(&m->s2), SHUT_WR);
    AWAIT(t, hs_read2(m));
    ASSERT_EQ(m->code, 0);
    ASSERT_EQ(m->got2_len, 0); /* then the end: the server closed after our FIN */
    async_stream_close(&m->s2);
    AWAIT(t, hs_wait_idle(m));
    /* a reset during the lingering close */
    m->t0 = async_loop_now(async_task_loop(t));
    AWAIT_STREAM_CONNECT(t, &m->s2, "127.0.0.1", m->port, 1000);
    m->conns++;
    ASSERT_EQ(async_stream_write(&m->s2, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n0123456789", 59), 0);
    AWAIT_STREAM_READEXACTLY(t, &m->s2, m->got2, strlen(hs_want) + HS_DATE_LEN, 1000);
    test_linger0(async_stream_fd(&m->s2));
    async_stream_close(&m->s2);
    AWAIT(t, hs_wait_idle(m));
    ASSERT(async_loop_now(async_task_loop(t)) - m->t0 < TEST_LONG_MS); /* not the whole linger */
    /* a reset right after a whole request: the request may be lost with the connection */
    AWAIT(t, hs_xch(m, "GET /gone HTTP/1.1\r\nHost: t\r\n\r\n", HS_X_RESET));
    AWAIT(t, hs_wait_idle(m));
    ASSERT(hs_calls <= 1);
    hs_calls = 0;
    /* the client resets while the handler runs: the answer, or the 500 of a failing handler, cannot be
     * sent; the connection ends there, even with requests pipelined behind */
    AWAIT_STREAM_CONNECT(t, &m->s2, "127.0.0.1", m->port, 1000);
    m->conns++;
    ASSERT_EQ(async_stream_write(&m->s2, "GET /rst HTTP/1.1\r\nHost: t\r\n\r\nGET /behind HTTP/1.1\r\nHost: t\r\n\r\n", 63), 0);
    AWAIT_STREAM_DRAIN(t, &m->s2, 1000);
    AWAIT(t, hs_wait_idle(m));
    ASSERT_EQ(async_stream_fd(&m->s2), -1); /* the handler closed it */
    AWAIT_STREAM_CONNECT(t, &m->s2, "127.0.0.1", m->port, 1000);
    m->conns++;
    ASSERT_EQ(async_stream_write(&m->s2, "GET /rst-fail HTTP/1.1\r\nHost: t\r\n\r\nGET /behind HTTP/1.1\r\nHost: t\r\n\r\n", 68), 0);
    AWAIT_STREAM_DRAIN(t, &m->s2, 1000);
    AWAIT(t, hs_wait_idle(m));
    ASSERT_EQ(async_stream_fd(&m->s2), -1);
    AWAIT_STREAM_CONNECT(t, &m->s2, "127.0.0.1", m->port, 1000);
    m->conns++;
    ASSERT_EQ(async_stream_write(&m->s2, "GET /rst-big HTTP/1.1\r\nHost: t\r\n\r\n", 34), 0);
    AWAIT_STREAM_DRAIN(t, &m->s2, 1000);
    AWAIT(t, hs_wait_idle(m));
    ASSERT_EQ(async_stream_fd(&m->s2), -1);
    ASSERT_EQ(hs_calls, 3); /* not /behind */
    /* the server still answers */
    AWAIT(t, hs_xch(m, "GET /still HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 0));
    ASSERT_STR_EQ(hs_undate(m->got), "HTTP/1.1 200 OK\r\nContent-Length: 40\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
                          "GET /still 1.1 n=2 body=0: xt=[-] null=1");
    ASYNC_END(t);
}

TEST(http_server_lingering_close_and_resetting_clients) {
    async_http_limits l;
    memset(&l, 0, sizeof l);
    l.max_body = 16;
    l.linger_ms = TEST_LONG_MS; /* longer than a busy machine's stall */
    hs_server_test(hs_linger, &l, false);
}

/* Output larger than the socket takes: the connection waits for it to drain, after the last answer of
 * an HTTP/1.0 request, and between keep-alive requests while the server is closing (which then ends the
 * connection at that message boundary). */
#define HS_BIG_HEAD "HTTP/1.1 200 OK\r\nContent-Length: 4194304\r\nContent-Type: text/plain; charset=utf-8\r\n"

static async_status hs_drains(async_task *t) {
    hs_srv *m = HS_SRV(t, scen);
    ASYNC_BEGIN(t);
    AWAIT(t, hs_xch(m, "GET /big HTTP/1.0\r\n\r\n", 0));
    ASSERT_EQ(m->code, 0);
    ASSERT(strncmp(hs_undate(m->got), HS_BIG_HEAD "Connection: close\r\n\r\n", strlen(HS_BIG_HEAD) + 21) == 0);
    ASSERT_EQ(m->total, strlen(HS_BIG_HEAD) + 21 + HS_DATE_LEN + sizeof hs_big);
    /* keep-alive, then the server closes while the answer drains */
    AWAIT_STREAM_CONNECT(t, &m->s, "127.0.0.1", m->port, 1000);
    m->conns++;
    ASSERT_EQ(async_stream_write(&m->s, "GET /big HTTP/1.1\r\nHost: t\r\n\r\n", 30), 0);
    AWAIT_STREAM_READEXACTLY(t, &m->s, m->got, 1000, 1000);
    ASSERT(strncmp(hs_undate(m->got), HS_BIG_HEAD "\r\n", strlen(HS_BIG_HEAD) + 2) == 0);
    async_http_server_close(&m->http, 5000);
    ASSERT_EQ(async_server_connections(&m->http.server), 1); /* busy: it goes on */
    m->total = 1000;
    do {
        AWAIT_STREAM_READ(t, &m->s, m->got, sizeof m->got, &m->n, 3000);
        m->total += m->n;
    } while (m->n);
    ASSERT_EQ(m->total, strlen(HS_BIG_HEAD) + 2 + HS_DATE_LEN + sizeof hs_big); /* all of it, then the end */
    ASSERT_EQ(hs_calls, 2);
    async_stream_close(&m->s);
    ASYNC_END(t);
}

/* A client that resets while a big answer drains, kept alive or the last one: the connection ends. */
static async_status hs_drain_resets(async_task *t) {
    hs_srv *m = HS_SRV(t, scen);
    ASYNC_BEGIN(t);
    for (m->i = 0; m->i < 2; m->i++) {
        AWAIT_STREAM_CONNECT(t, &m->s, "127.0.0.1", m->port, 1000);
        m->conns++;
        ASSERT_EQ(async_stream_write(&m->s, m->i ? "GET /big HTTP/1.0\r\nHost: t\r\n\r\n" : "GET /big HTTP/1.1\r\nHost: t\r\n\r\n", 30), 0);
        AWAIT_STREAM_READEXACTLY(t, &m->s, m->got, 1000, 1000);
        test_linger0(async_stream_fd(&m->s));
        async_stream_close(&m->s);
        AWAIT(t, hs_wait_idle(m));
    }
    ASSERT_EQ(hs_calls, 2);
    ASYNC_END(t);
}

TEST(http_server_drains_big_answers_and_closes_between_requests) {
    hs_server_test(hs_drains, NULL, false);
}

TEST(http_server_client_reset_while_an_answer_drains) {
    hs_server_test(hs_drain_resets, NULL, false);
}

/* Close with no grace: an idle and a busy connection are both cancelled, without an answer. A dump
 * taken before shows where the connections wait. */
static async_status hs_no_grace(async_task *t) {
    hs_srv *m = HS_SRV(t, scen);
    FILE *out;
    ASYNC_BEGIN(t);
    AWAIT_STREAM_CONNECT(t, &m->s, "127.0.0.1", m->port, 1000); /* idle */
    m->conns++;
    AWAIT_STREAM_CONNECT(t, &m->s2, "127.0.0.1", m->port, 1000);
    m->conns++;
    ASSERT_EQ(async_stream_write(&m->s2, "GET /half HTTP/1.1\r\nHost: t\r\n", 29), 0); /* busy */
    AWAIT_SLEEP(t, 30);
    ASSERT_EQ(async_server_connections(&m->http.server), 2);
    out = fmemopen(hs_dump, sizeof hs_dump - 1, "w");
    ASSERT(out != NULL);
    async_loop_dump(async_task_loop(t), out);
    fclose(out);
    ASSERT(strstr(hs_dump, "conn_run") != NULL);
    ASSERT(strstr(hs_dump, "http_server.c") != NULL);
    async_http_server_close(&m->http, 0);
    AWAIT(t, hs_read2(m));
    ASSERT_EQ(m->code, 0);
    ASSERT_EQ(m->got2_len, 0);
    AWAIT(t, hs_wait_idle(m));
    ASSERT_EQ(hs_calls, 0);
    ASYNC_END(t);
}

TEST(http_server_close_without_grace_cancels_live_connections) {
    hs_server_test(hs_no_grace, NULL, true);
}

/* A handler may close the server: its answer says "Connection: close" and the accept loop ends. */
static async_status hs_stop(async_task *t) {
    hs_srv *m = HS_SRV(t, scen);
    ASYNC_BEGIN(t);
    AWAIT(t, hs_xch(m, "GET /stop HTTP/1.1\r\nHost: t\r\n\r\nGET /late HTTP/1.1\r\nHost: t\r\n\r\n", 0));
    ASSERT_EQ(m->code, 0);
    ASSERT_STR_EQ(hs_undate(m->got), "HTTP/1.1 200 OK\r\nContent-Length: 8\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nstopping");
    AWAIT_GROUP(t, &m->g); /* the accept loop ended by itself */
    ASSERT(async_server_closing(&m->http.server));
    ASSERT_EQ(hs_calls, 1);
    ASYNC_END(t);
}

TEST(http_server_handler_can_close_the_server) {
    hs_server_test(hs_stop, NULL, false);
}
