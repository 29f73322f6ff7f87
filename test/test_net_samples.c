/* Our HTTP client against python servers, and the network samples run as programs against local peers:
 * web scraping and fetch_json against python's http.server, api_errors against a refused port and a
 * listener that never answers, hello_server under curl (1 and 2 threads), the chat server with nc
 * clients and a slow client. Every child is bounded by `timeout`. */
#include <sys/prctl.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NS_NEED(prog)                                                                 \
    do {                                                                              \
        if (system("command -v " prog " >/dev/null 2>&1") != 0) {                     \
            printf("    skipped: %s is not installed (Debian: %s)\n", prog,           \
                   strcmp(prog, "nc") == 0 ? "netcat-openbsd" : prog);                \
            return;                                                                   \
        }                                                                             \
    } while (0)

/* A free TCP port of 127.0.0.1 (bound to port 0, then released). */
static int ns_free_port(void) {
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    ASSERT(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static void ns_sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Connects (blocking) to 127.0.0.1:port with a receive buffer of rcvbuf bytes (0: default); -1 if
 * nothing listens. */
static int ns_connect_buf(int port, int rcvbuf) {
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (rcvbuf) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf); /* before connect: sets the window */
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int ns_connect(int port) { return ns_connect_buf(port, 0); }

static void ns_wait_listening(int port) {
    int i, fd;
    for (i = 0; i < 100; i++) {
        fd = ns_connect(port);
        if (fd >= 0) {
            close(fd);
            return;
        }
        ns_sleep_ms(50);
    }
    test_fail(__FILE__, __LINE__, "nothing listens on port %d after 5 s", port);
}

/* Starts `sh -c cmd` in its own process group; returns its pid. */
static pid_t ns_start(const char *cmd) {
    pid_t pid;
    fflush(NULL);
    pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a server never outlives its test, even one that failed part-way */
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    setpgid(pid, pid);
    return pid;
}

static void ns_stop(pid_t pid) {
    kill(-pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

/* Runs cmd (bounded by `timeout 10`), returns its exit status; its stdout goes to out. */
static int ns_run(const char *cmd, char *out, size_t cap) {
    char full[2048];
    FILE *p;
    size_t n = 0, r;
    int st;
    snprintf(full, sizeof full, "timeout 10 %s", cmd);
    fflush(NULL);
    p = popen(full, "r");
    ASSERT(p != NULL);
    while (n + 1 < cap && (r = fread(out + n, 1, cap - 1 - n, p)) > 0) n += r;
    out[n] = '\0';
    st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A directory of files for python's http.server. */
static char ns_dir[64];

static void ns_make_site(void) {
    char path[128];
    FILE *f;
    int i;
    strcpy(ns_dir, "/tmp/async-net-XXXXXX");
    ASSERT(mkdtemp(ns_dir) != NULL);
    snprintf(path, sizeof path, "%s/a.txt", ns_dir);
    f = fopen(path, "w");
    for (i = 0; i < 100; i++) fputc('a', f);
    fclose(f);
    snprintf(path, sizeof path, "%s/b.html", ns_dir);
    f = fopen(path, "w");
    for (i = 0; i < 2000; i++) fputc('b', f);
    fclose(f);
    snprintf(path, sizeof path, "%s/post.json", ns_dir);
    f = fopen(path, "w");
    fputs("{\"userId\": 1, \"id\": 1, \"title\": \"delectus aut autem\"}", f);
    fclose(f);
}

static void ns_remove_site(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", ns_dir);
    ASSERT(system(cmd) == 0);
}

static pid_t ns_python_server(int port) {
    char cmd[256];
    pid_t pid;
    snprintf(cmd, sizeof cmd, "exec python3 -m http.server %d --bind 127.0.0.1 --directory %s >/dev/null 2>&1", port,
             ns_dir);
    pid = ns_start(cmd);
    ns_wait_listening(port);
    return pid;
}

#define NS_SAMPLE SAMPLES_DIR "/"

TEST(sample_web_scraping_fetches_concurrently_in_argument_order) {
    char cmd[512], out[1024], expect[512];
    int port = ns_free_port();
    pid_t srv;
    NS_NEED("python3");
    ns_make_site();
    srv = ns_python_server(port);
    snprintf(cmd, sizeof cmd,
             NS_SAMPLE "web_scraping http://127.0.0.1:%d/b.html http://127.0.0.1:%d/a.txt http://localhost:%d/post.json",
             port, port, port);
    ASSERT_EQ(ns_run(cmd, out, sizeof out), 0);
    snprintf(expect, sizeof expect,
             "Fetched 2000 bytes from http://127.0.0.1:%d/b.html\n"
             "Fetched 100 bytes from http://127.0.0.1:%d/a.txt\n"
             "Fetched 53 bytes from http://localhost:%d/post.json\n",
             port, port, port);
    ASSERT_STR_EQ(out, expect);
    ns_stop(srv);
    ns_remove_site();
}

TEST(sample_fetch_json_prints_the_document) {
    char cmd[256], out[512];
    int port = ns_free_port();
    pid_t srv;
    NS_NEED("python3");
    ns_make_site();
    srv = ns_python_server(port);
    snprintf(cmd, sizeof cmd, NS_SAMPLE "fetch_json http://127.0.0.1:%d/post.json", port);
    ASSERT_EQ(ns_run(cmd, out, sizeof out), 0);
    ASSERT_STR_EQ(out, "{\"userId\": 1, \"id\": 1, \"title\": \"delectus aut autem\"}\n");
    snprintf(cmd, sizeof cmd, NS_SAMPLE "fetch_json http://127.0.0.1:%d/nothing.json 2>/dev/null", port);
    ASSERT_EQ(ns_run(cmd, out, sizeof out), 1); /* a 404 is reported as a failure */
    ns_stop(srv);
    ns_remove_site();
}

TEST(sample_api_errors_catches_refused_and_timeout) {
    char cmd[256], out[512], expect[512];
    int refused = ns_free_port(), silent, fd;
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    fd = socket(AF_INET, SOCK_STREAM, 0); /* accepts into its backlog, never answers */
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT(bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && listen(fd, 8) == 0);
    ASSERT(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    silent = ntohs(a.sin_port);
    snprintf(cmd, sizeof cmd, NS_SAMPLE "api_errors http://127.0.0.1:%d/api http://127.0.0.1:%d/api", refused, silent);
    ASSERT_EQ(ns_run(cmd, out, sizeof out), 0);
    snprintf(expect, sizeof expect,
             "Request to http://127.0.0.1:%d/api failed: connection refused\n"
             "Request to http://127.0.0.1:%d/api timed out\n"
             "2 of 2 requests failed\n",
             refused, silent);
    ASSERT_STR_EQ(out, expect);
    close(fd);
}

TEST(samples_without_arguments_print_usage) {
    char out[256];
    ASSERT_EQ(ns_run(NS_SAMPLE "web_scraping 2>&1", out, sizeof out), 2);
    ASSERT(strstr(out, "usage:") != NULL);
    ASSERT_EQ(ns_run(NS_SAMPLE "fetch_json 2>&1", out, sizeof out), 2);
    ASSERT_EQ(ns_run(NS_SAMPLE "api_errors 2>&1", out, sizeof out), 2);
    ASSERT_EQ(ns_run(NS_SAMPLE "hello_server --bogus 1 2>&1", out, sizeof out), 2);
}

/* hello_server: prints its port, answers curl, stops by itself after --seconds. */
static void ns_hello(int threads) {
    char cmd[256], line[128], out[256];
    FILE *p;
    int port = 0, i;
    NS_NEED("curl");
    snprintf(cmd, sizeof cmd, "timeout 10 " NS_SAMPLE "hello_server --port 0 --threads %d --seconds 2", threads);
    fflush(NULL);
    p = popen(cmd, "r");
    ASSERT(p != NULL);
    ASSERT(fgets(line, sizeof line, p) != NULL);
    ASSERT(sscanf(line, "Serving on http://127.0.0.1:%d/", &port) == 1);
    for (i = 0; i < 4; i++) {
        snprintf(cmd, sizeof cmd, "curl -s http://127.0.0.1:%d/ http://127.0.0.1:%d/x", port, port);
        ASSERT_EQ(ns_run(cmd, out, sizeof out), 0);
        ASSERT_STR_EQ(out, "hellohello");
    }
    ASSERT_EQ(pclose(p), 0); /* graceful end after 2 s, exit status 0 */
}

TEST(sample_hello_server_one_thread) { ns_hello(1); }
TEST(sample_hello_server_two_threads_share_the_port) { ns_hello(2); }

/* The chat: nc clients see each other's lines; a client that never reads is disconnected while the
 * others keep chatting. */
TEST(sample_chat_server_broadcasts_between_nc_clients) {
    char cmd[1024], out[1024];
    int port = ns_free_port();
    pid_t srv;
    NS_NEED("nc");
    snprintf(cmd, sizeof cmd, "exec " NS_SAMPLE "chat_server --port %d --seconds 4 >/dev/null", port);
    srv = ns_start(cmd);
    ns_wait_listening(port);
    snprintf(cmd, sizeof cmd,
             "sh -c '(sleep 0.3; echo alice; sleep 0.6; echo hi from alice; sleep 1) | nc 127.0.0.1 %d > /dev/null &"
             " (sleep 0.1; echo bob; sleep 1.3) | nc 127.0.0.1 %d; wait'",
             port, port);
    ASSERT_EQ(ns_run(cmd, out, sizeof out), 0);
    ASSERT_STR_EQ(out, "Welcome! Your nickname? * alice joined\n<alice> hi from alice\n");
    ns_stop(srv);
}

TEST(sample_chat_server_disconnects_a_slow_client) {
    char cmd[256], buf[4096], line[600];
    int port = ns_free_port(), slow, fast, talker, i, got_after = 0, st;
    pid_t reader;
    ssize_t n;
    pid_t srv;
    struct timeval tv = {3, 0};
    snprintf(cmd, sizeof cmd, "exec " NS_SAMPLE "chat_server --port %d --seconds 6 >/dev/null", port);
    srv = ns_start(cmd);
    ns_wait_listening(port);
    slow = ns_connect_buf(port, 4096); /* a tiny receive window, and it never reads */
    ASSERT(write(slow, "slow\n", 5) == 5);
    fast = ns_connect(port);
    setsockopt(fast, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ASSERT(write(fast, "fast\n", 5) == 5);
    talker = ns_connect(port);
    ASSERT(write(talker, "talker\n", 7) == 7);
    ns_sleep_ms(200);
    memset(line, 'x', sizeof line);
    line[sizeof line - 1] = '\n';
    fflush(NULL);
    memset(buf, 0, 4);
    reader = fork(); /* the fast client reads in a process of its own, as a real client would */
    ASSERT(reader >= 0);
    if (reader == 0) {
        for (;;) { /* keep the last 4 bytes in front: "END\n" may arrive split across reads */
            n = recv(fast, buf + 4, sizeof buf - 5, 0);
            if (n <= 0) _exit(n == 0 ? 1 : errno == EAGAIN ? 3 : 4);
            got_after += (int)n;
            buf[4 + n] = '\0';
            if (strstr(buf, "END\n")) _exit(got_after > 3000 * 600 ? 0 : 2);
            memmove(buf, buf + n, 4);
        }
    }
    close(fast);
    for (i = 0; i < 3000; i++) { /* ~1.8 MB: far more than the slow client's window and queue hold */
        ASSERT(write(talker, line, sizeof line) == (ssize_t)sizeof line);
        if (i % 50 == 49) ns_sleep_ms(5); /* a fast chatter, not a flood that no reader could follow */
    }
    ASSERT(write(talker, "END\n", 4) == 4);
    ASSERT(waitpid(reader, &st, 0) == reader);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) /* the fast client gets everything, up to END */
        test_fail(__FILE__, __LINE__, "fast client: status %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    /* the slow one was cut off: draining it ends in EOF or reset, well before 1.8 MB */
    i = 0;
    setsockopt(slow, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    while ((n = recv(slow, buf, sizeof buf, 0)) > 0) i += (int)n;
    if (!(n == 0 || errno == ECONNRESET)) test_fail(__FILE__, __LINE__, "slow client: n=%ld errno=%d after %d bytes", (long)n, errno, i);
    ASSERT(i < 3000 * 600);
    close(slow);
    close(talker);
    ns_stop(srv);
}


/* ---- our client against a python HTTP/1.1 server: chunked, redirects, keep-alive, close-delimited ---- */

static const char ns_py_server[] =
    "import http.server, sys, time\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    protocol_version = 'HTTP/1.1'\n"
    "    def log_message(self, *a): pass\n"
    "    def do_GET(self):\n"
    "        if self.path == '/chunked':\n"
    "            self.send_response(200); self.send_header('Transfer-Encoding', 'chunked'); self.end_headers()\n"
    "            for part in (b'hello ', b'chunked ', b'world'):\n"
    "                self.wfile.write(b'%x\\r\\n%s\\r\\n' % (len(part), part))\n"
    "            self.wfile.write(b'0\\r\\n\\r\\n')\n"
    "        elif self.path == '/redirect':\n"
    "            self.send_response(302); self.send_header('Location', '/json')\n"
    "            self.send_header('Content-Length', '0'); self.end_headers()\n"
    "        elif self.path == '/close':\n"
    "            self.send_response(200); self.send_header('Connection', 'close'); self.end_headers()\n"
    "            self.wfile.write(b'until close'); self.close_connection = True\n"
    "        elif self.path == '/slow':\n"
    "            time.sleep(2); self.send_response(200); self.send_header('Content-Length', '0'); self.end_headers()\n"
    "        else:\n"
    "            body = ('{\"path\": \"%s\", \"port\": %d}' % (self.path, self.client_address[1])).encode()\n"
    "            self.send_response(200); self.send_header('Content-Type', 'application/json')\n"
    "            self.send_header('Content-Length', str(len(body))); self.end_headers(); self.wfile.write(body)\n"
    "http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()\n";

typedef struct {
    async_task task;
    async_http_client c;
    char url[128];
    int port;
    int step;
    char first[128];
    int fd;
} ns_client_frame;

static const char *ns_url(ns_client_frame *f, const char *path) {
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d%s", f->port, path);
    return f->url;
}

static async_status ns_client_run(async_task *t) {
    ns_client_frame *f = (ns_client_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT(t, async_http_get(&f->c, ns_url(f, "/json"), 2000));
    ASSERT_EQ(async_http_status(&f->c), 200);
    ASSERT_STR_EQ(async_http_header(&f->c, "content-type"), "application/json");
    snprintf(f->first, sizeof f->first, "%s", async_http_body(&f->c, NULL));
    f->fd = async_stream_fd(&f->c.stream);
    AWAIT(t, async_http_get(&f->c, ns_url(f, "/json"), 2000));
    ASSERT_STR_EQ(async_http_body(&f->c, NULL), f->first); /* same client port: the connection was kept */
    ASSERT_EQ(async_stream_fd(&f->c.stream), f->fd);
    AWAIT(t, async_http_get(&f->c, ns_url(f, "/chunked"), 2000));
    ASSERT_STR_EQ(async_http_body(&f->c, NULL), "hello chunked world");
    AWAIT(t, async_http_get(&f->c, ns_url(f, "/redirect"), 2000));
    ASSERT_EQ(async_http_status(&f->c), 302); /* redirects are off by default */
    ASSERT_STR_EQ(async_http_header(&f->c, "Location"), "/json");
    f->c.max_redirects = 1;
    AWAIT(t, async_http_get(&f->c, ns_url(f, "/redirect"), 2000));
    ASSERT_EQ(async_http_status(&f->c), 200);
    ASSERT(strstr(async_http_body(&f->c, NULL), "\"path\": \"/json\"") != NULL);
    AWAIT(t, async_http_get(&f->c, ns_url(f, "/close"), 2000));
    ASSERT_STR_EQ(async_http_body(&f->c, NULL), "until close");
    ASSERT_EQ(async_stream_fd(&f->c.stream), -1); /* the server closed it */
    ASYNC_TRY(t) {
        AWAIT(t, async_http_get(&f->c, ns_url(f, "/slow"), 200));
        f->step = 1;
    }
    ASYNC_CATCH(t) {
        ASSERT_EQ(async_caught(t)->code, ASYNC_ETIMEDOUT);
        f->step = 2;
    }
    ASYNC_END_TRY(t);
    ASYNC_TRY(t) {
        AWAIT(t, async_http_get(&f->c, "https://127.0.0.1/", 200));
    }
    ASYNC_CATCH(t) {
        ASSERT_EQ(async_caught(t)->code, ASYNC_ENOTSUP);
        f->step++;
    }
    ASYNC_END_TRY(t);
    ASYNC_TRY(t) {
        AWAIT(t, async_http_get(&f->c, "ftp:/nonsense", 200));
    }
    ASYNC_CATCH(t) {
        ASSERT_EQ(async_caught(t)->code, ASYNC_EINVAL);
        f->step++;
    }
    ASYNC_END_TRY(t);
    async_http_client_close(&f->c);
    ASYNC_END(t);
}

TEST(http_client_against_python_keep_alive_chunked_redirect_timeout) {
    static ns_client_frame f;
    char cmd[2048];
    int port = ns_free_port();
    pid_t srv;
    async_loop *loop;
    NS_NEED("python3");
    snprintf(cmd, sizeof cmd, "exec python3 -c \"$NS_PY\" %d", port);
    setenv("NS_PY", ns_py_server, 1);
    srv = ns_start(cmd);
    ns_wait_listening(port);
    ASYNC_FRAME_INIT(&f, ns_client_run);
    f.port = port;
    loop = async_loop_new(0);
    ASSERT_EQ(async_run(loop, &f.task), 0);
    async_loop_free(loop);
    ASSERT_EQ(f.step, 4);
    ns_stop(srv);
}

/* ---- many loops: a call into another loop's thread ---- */

typedef struct {
    async_task task;
    async_future got;
    async_remote *remote;
    int value;
} ns_loop_frame;

static ns_loop_frame ns_loops[2];

static void ns_deliver(async_loop *loop, void *arg) {
    (void)loop;
    async_future_set_value(&ns_loops[1].got, (intptr_t)arg); /* runs on loop 1's thread */
}

static async_status ns_loop_run(async_task *t) {
    ns_loop_frame *f = (ns_loop_frame *)t;
    ASYNC_BEGIN(t);
    if (f == &ns_loops[1]) {
        __atomic_store_n(&f->remote, async_remote_new(async_task_loop(t)), __ATOMIC_RELEASE);
        ASSERT(f->remote != NULL);
        AWAIT_FUTURE(t, &f->got); /* only another thread can complete it: no deadlock is reported */
        f->value = (int)async_future_value(&f->got);
        async_remote_free(f->remote);
    } else {
        while (!__atomic_load_n(&ns_loops[1].remote, __ATOMIC_ACQUIRE)) AWAIT_SLEEP(t, 5);
        ASSERT_EQ(async_remote_call(ns_loops[1].remote, ns_deliver, (void *)(intptr_t)42), 0);
        ASSERT_EQ(async_remote_call(NULL, ns_deliver, NULL), ASYNC_EINVAL);
    }
    ASYNC_END(t);
}

static async_task *ns_make_loop(unsigned i, void *arg) {
    (void)arg;
    ASYNC_FRAME_INIT(&ns_loops[i], ns_loop_run);
    return &ns_loops[i].task;
}

TEST(net_threads_call_soon_into_another_loop) {
    ASSERT_EQ(async_run_threads(2, ns_make_loop, NULL), 0);
    ASSERT_EQ(ns_loops[1].value, 42);
    ASSERT_EQ(async_run_threads(0, ns_make_loop, NULL), ASYNC_EINVAL);
    ASSERT(async_remote_new(NULL) == NULL);
}

static const test_case net_samples_tests[] = {
    TEST_ENTRY(sample_web_scraping_fetches_concurrently_in_argument_order)
    TEST_ENTRY(sample_fetch_json_prints_the_document)
    TEST_ENTRY(sample_api_errors_catches_refused_and_timeout)
    TEST_ENTRY(samples_without_arguments_print_usage)
    TEST_ENTRY(sample_hello_server_one_thread)
    TEST_ENTRY(sample_hello_server_two_threads_share_the_port)
    TEST_ENTRY(sample_chat_server_broadcasts_between_nc_clients)
    TEST_ENTRY(sample_chat_server_disconnects_a_slow_client)
    TEST_ENTRY(http_client_against_python_keep_alive_chunked_redirect_timeout)
    TEST_ENTRY(net_threads_call_soon_into_another_loop)
    {NULL, NULL}
};
