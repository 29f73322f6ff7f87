/* HTTP against real peers on 127.0.0.1: curl and python's http.client against our server, python's
 * http.server (and a small HTTP/1.1 python server for chunked bodies and redirects) as the target of our
 * client, malformed and oversized requests, pipelining, slow and vanishing clients, 1,000 connections,
 * graceful shutdown, and the network samples. Peers run as child processes whose output comes back
 * through a stream of the same loop that runs our server, so nothing blocks and every wait has a
 * deadline. */
#include <sys/prctl.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* Whether a peer program is installed (tests that need it skip with a message otherwise). */
static int http_have(const char *prog) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", prog);
    return system(cmd) == 0;
}

#define HTTP_NEED(prog)                                                           \
    do {                                                                          \
        if (!http_have(prog)) {                                                   \
            printf("    skipped: %s is not installed (apt-get install %s)\n", prog, \
                   strcmp(prog, "nc") == 0 ? "netcat-openbsd" : prog);            \
            return;                                                               \
        }                                                                         \
    } while (0)

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
typedef struct {
    async_task task;
    async_stream out;
    const char *const *argv;
    pid_t pid;
    char buf[65536];
    size_t len, n;
    int status;
} http_peer_frame;

static async_status http_peer_run(async_task *t) {
    http_peer_frame *f = (http_peer_frame *)t;
    int fd;
    ASYNC_BEGIN(t);
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
    ASYNC_END(t);
}

static async_task *http_peer(http_peer_frame *f, const char *const *argv) {
    ASYNC_FRAME_INIT(f, http_peer_run);
    f->argv = argv;
    return &f->task;
}

static int http_run(async_task *main) {
    async_loop *loop = async_loop_new(0);
    int rc;
    ASSERT(loop != NULL);
    rc = async_run(loop, main);
    async_loop_free(loop);
    return rc;
}

/* ---- the server under test: echoes what it got, or serves a large body ---- */

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
    res->headers = "X-Test: yes\r\n";
    return 0;
}

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
    ASSERT_EQ(async_http_server_listen(&f->http, "127.0.0.1", 0, 0, &f->limits, http_handler, NULL), 0);
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
    ASSERT_EQ(http_run(&f->task), 0);
    ASSERT_EQ(async_http_server_port(&f->http), f->port);
    ASSERT_EQ(async_server_connections(&f->http.server), 0);
}

/* ---- curl and python's http.client against our server ---- */

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
    return http_peer(&m->peer, m->argv);
}

TEST(http_server_answers_curl_with_keep_alive) {
    static http_main_frame f;
    HTTP_NEED("curl");
    http_serve_with(&f, http_curl_client);
    ASSERT_EQ(f.code, 0);
    ASSERT(strstr(f.peer.buf, "HTTP/1.1 200 OK\r\nContent-Length: 34\r\nContent-Type: text/plain\r\n") != NULL);
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
    return http_peer(&m->peer, m->argv);
}

TEST(http_server_answers_python_http_client) {
    static http_main_frame f;
    HTTP_NEED("python3");
    http_serve_with(&f, http_python_client);
    ASSERT(strstr(f.peer.buf, "200 GET /hello body=0: agent=-\n") != NULL);
    ASSERT(strstr(f.peer.buf, "200 POST /form body=7:x=1&y=2 agent=-\n") != NULL);
    ASSERT(strstr(f.peer.buf, "200 POST /chunked body=5:abcde agent=-\n") != NULL);
    ASSERT(strstr(f.peer.buf, "200 26 b''\n") != NULL); /* HEAD: the length, no body */
    ASSERT(strstr(f.peer.buf, "404 no such page\n") != NULL);
    ASSERT(strstr(f.peer.buf, "500 Internal Server Error\n") != NULL);
    ASSERT_EQ(f.http.server.accepted, 1);
}

/* ---- raw requests of our own: malformed, oversized, pipelined ---- */

typedef struct {
    const char *name;
    const char *request; /* NULL: built by http_build */
    const char *expect;  /* the start of the whole answer */
} http_raw_case;

static char http_req_buf[64 * 1024];

static const char *http_build(const char *name) {
    char *o = http_req_buf;
    int i;
    if (strcmp(name, "long-line") == 0) {
        o += sprintf(o, "GET /");
        memset(o, 'a', 9000);
        o += 9000;
        sprintf(o, " HTTP/1.1\r\n\r\n");
    } else if (strcmp(name, "many-headers") == 0) {
        o += sprintf(o, "GET / HTTP/1.1\r\n");
        for (i = 0; i < 100; i++) o += sprintf(o, "X-H%d: v\r\n", i);
        sprintf(o, "\r\n");
    } else { /* big-header */
        o += sprintf(o, "GET / HTTP/1.1\r\nX-Big: ");
        memset(o, 'b', 20000);
        o += 20000;
        sprintf(o, "\r\n\r\n");
    }
    return http_req_buf;
}

static const http_raw_case http_raw_cases[] = {
    {"garbage", "GARBAGE\r\n\r\n", "HTTP/1.1 400 Bad Request\r\n"},
    {"bad-version", "GET / HTTP/9\r\n\r\n", "HTTP/1.1 400 Bad Request\r\n"},
    {"long-line", NULL, "HTTP/1.1 414 URI Too Long\r\n"},
    {"many-headers", NULL, "HTTP/1.1 431 Request Header Fields Too Large\r\n"},
    {"big-header", NULL, "HTTP/1.1 431 Request Header Fields Too Large\r\n"},
    {"big-body", "POST / HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n", "HTTP/1.1 413 Content Too Large\r\n"},
    {"bad-chunk", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "HTTP/1.1 400 Bad Request\r\n"},
    {"smuggling", "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
     "HTTP/1.1 400 Bad Request\r\n"},
    {"pipelined",
     "GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nPOST /3 HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi",
     "HTTP/1.1 200 OK\r\nContent-Length: 22\r\nContent-Type: text/plain\r\nX-Test: yes\r\n\r\nGET /1 body=0: agent=-"
     "HTTP/1.1 200 OK\r\nContent-Length: 22\r\nContent-Type: text/plain\r\nX-Test: yes\r\n\r\nGET /2 body=0: agent=-"
     "HTTP/1.1 200 OK\r\nContent-Length: 25\r\nContent-Type: text/plain\r\nX-Test: yes\r\n\r\nPOST /3 body=2:hi agent=-"},
    {"http10-closes", "GET /old HTTP/1.0\r\n\r\n",
     "HTTP/1.1 200 OK\r\nContent-Length: 24\r\nContent-Type: text/plain\r\nConnection: close\r\n"},
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
        if (strncmp(m->got, http_raw_cases[m->i].expect, strlen(http_raw_cases[m->i].expect)) != 0)
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

typedef struct {
    async_task task;
    async_stream s;
    int port;
    const char *req;
    size_t i;
    int32_t gap_ms;
    char got[256];
    size_t len, n;
} http_slow_frame;

static async_status http_slow_run(async_task *t) {
    http_slow_frame *f = (http_slow_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT_STREAM_CONNECT(t, &f->s, "127.0.0.1", f->port, 1000);
    ASYNC_TRY(t) {
        for (f->i = 0; f->req[f->i]; f->i++) { /* one byte at a time, until the server gives up */
            if (async_stream_write(&f->s, f->req + f->i, 1)) break;
            AWAIT_STREAM_DRAIN(t, &f->s, 1000);
            AWAIT_SLEEP(t, f->gap_ms);
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
    ASYNC_END(t);
}

typedef struct {
    async_task task;
    async_http_client c;
    char url[160];
    int count, i;
    async_ms worst;
    async_ms t0;
} http_fast_frame;

static async_status http_fast_run(async_task *t) {
    http_fast_frame *f = (http_fast_frame *)t;
    ASYNC_BEGIN(t);
    for (f->i = 0; f->i < f->count; f->i++) {
        f->t0 = async_loop_now(async_task_loop(t));
        AWAIT(t, async_http_get(&f->c, f->url, 1000));
        ASSERT_EQ(async_http_status(&f->c), 200);
        if (async_loop_now(async_task_loop(t)) - f->t0 > f->worst) f->worst = async_loop_now(async_task_loop(t)) - f->t0;
        AWAIT_SLEEP(t, 50);
    }
    async_http_client_close(&f->c);
    ASYNC_END(t);
}

typedef struct {
    async_task task;
    http_slow_frame slow;
    http_fast_frame fast;
    async_group g;
} http_slow_main;

static http_slow_main http_slow_m;

static async_task *http_slow_client(http_main_frame *m) {
    http_slow_main *f = &http_slow_m;
    ASYNC_FRAME_INIT(&f->slow, http_slow_run);
    f->slow.port = m->port;
    f->slow.req = "GET / HTTP/1.0\r\n\r\n";
    f->slow.gap_ms = 100;
    ASYNC_FRAME_INIT(&f->fast, http_fast_run);
    snprintf(f->fast.url, sizeof f->fast.url, "%s/fast", m->url);
    f->fast.count = 20;
    return &f->slow.task;
}

static async_status http_both_run(async_task *t) {
    http_main_frame *m = (http_main_frame *)(void *)((char *)t - offsetof(http_main_frame, raw));
    ASYNC_BEGIN(t);
    http_slow_client(m);
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
    ASSERT(http_slow_m.fast.worst < 500); /* the others were answered meanwhile */
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
    ASSERT_EQ(http_run(&f.task), 0);
    ASSERT_EQ(f.code, 0);
    ASSERT(strncmp(http_slow_m.slow.got, "HTTP/1.1 408 Request Timeout\r\n", 30) == 0);
}

static async_status http_vanish_run(async_task *t) {
    http_main_frame *m = (http_main_frame *)(void *)((char *)t - offsetof(http_main_frame, raw));
    ASYNC_BEGIN(t);
    for (m->i = 0; m->i < 3; m->i++) { /* ask for 4 MiB, read a little, hang up */
        AWAIT_STREAM_CONNECT(t, &m->s, "127.0.0.1", m->port, 1000);
        ASSERT_EQ(async_stream_write(&m->s, "GET /big HTTP/1.1\r\n\r\n", 21), 0);
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

typedef struct {
    async_task task;
    async_http_client c;
    char url[160];
} http_one_frame;

static async_status http_one_run(async_task *t) {
    http_one_frame *f = (http_one_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_TRY(t) {
        AWAIT(t, async_http_get(&f->c, f->url, 4000));
        ASSERT_EQ(async_http_status(&f->c), 200);
    }
    ASYNC_FINALLY(t) {
        async_http_client_close(&f->c);
    }
    ASYNC_END_TRY(t);
    ASYNC_END(t);
}

static http_one_frame *http_many;

static async_status http_many_run(async_task *t) {
    http_main_frame *m = (http_main_frame *)(void *)((char *)t - offsetof(http_main_frame, raw));
    ASYNC_BEGIN(t);
    for (m->i = 0; m->i < HTTP_MANY; m->i++) {
        ASYNC_FRAME_INIT(&http_many[m->i], http_one_run);
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
        if (rl.rlim_cur < 2 * HTTP_MANY + 64) {
            printf("    skipped: RLIMIT_NOFILE hard limit %lu is too low\n", (unsigned long)rl.rlim_max);
            return;
        }
    }
    http_many = async_frames_new(HTTP_MANY, sizeof *http_many);
    ASSERT(http_many != NULL);
    http_serve_with(&f, http_many_client);
    ASSERT_EQ(f.code, 0);
    ASSERT_EQ(f.http.server.accepted, HTTP_MANY);
    async_frames_free(http_many, HTTP_MANY, sizeof *http_many);
}

/* Graceful shutdown: an idle kept-alive connection is closed at once, a request in flight is finished
 * and answered with "Connection: close", then the accept loop ends. */
static async_status http_graceful_run(async_task *t) {
    http_main_frame *m = (http_main_frame *)(void *)((char *)t - offsetof(http_main_frame, raw));
    ASYNC_BEGIN(t);
    http_slow_client(m);
    snprintf(http_slow_m.fast.url, sizeof http_slow_m.fast.url, "%s/idle", m->url);
    AWAIT(t, async_http_get(&http_slow_m.fast.c, http_slow_m.fast.url, 1000)); /* now idle, kept alive */
    AWAIT_STREAM_CONNECT(t, &m->s, "127.0.0.1", m->port, 1000);
    ASSERT_EQ(async_stream_write(&m->s, "GET /inflight HTTP/1.1\r\n", 24), 0);
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
static const test_case net_http_tests[] = {
    TEST_ENTRY(http_server_answers_curl_with_keep_alive)
    TEST_ENTRY(http_server_answers_python_http_client)
    TEST_ENTRY(http_server_rejects_malformed_and_oversized_and_pipelines)
    TEST_ENTRY(http_server_slow_client_does_not_stall_the_others)
    TEST_ENTRY(http_server_request_deadline_answers_408)
    TEST_ENTRY(http_server_client_disconnects_mid_response)
    TEST_ENTRY(http_server_1000_concurrent_connections)
    TEST_ENTRY(http_server_graceful_shutdown_finishes_in_flight_requests)
    {NULL, NULL}
};
