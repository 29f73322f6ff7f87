/* Every sample in samples/ run as a program: under the virtual clock, the seed's lines in the seed's
 * order in the seed's time; performance in real time, as the slide measures it; the network samples
 * against local peers (python's http.server, a port that refuses, a listener that never answers, curl,
 * nc clients), each bounded by `timeout`. */
#include "test.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define SAMPLE SAMPLES_DIR "/"

/* ---- running a sample ---- */

/* Reads all of fd into a malloc'ed string. */
static char *read_all(int fd) {
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    ssize_t n;
    if (!buf) return NULL;
    while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
        len += (size_t)n;
        if (cap - len < 2) {
            char *p = realloc(buf, cap * 2);
            if (!p) break;
            buf = p;
            cap *= 2;
        }
    }
    buf[len] = '\0';
    return buf;
}

/* Runs samples/NAME with the virtual clock or in real time; *out and *err receive its standard output
 * and error (malloc'ed); returns its exit status (-1 if it did not exit). */
static int capture_sample(const char *name, int virtual_clock, char **out, char **err) {
    char path[512];
    int outp[2], errp[2], status;
    pid_t pid;
    snprintf(path, sizeof path, "%s/%s", SAMPLES_DIR, name);
    if (access(path, X_OK) != 0) test_fail(__FILE__, __LINE__, "sample %s is not built", path);
    if (pipe(outp) || pipe(errp)) test_fail(__FILE__, __LINE__, "pipe failed");
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        dup2(outp[1], 1);
        dup2(errp[1], 2);
        close(outp[0]);
        close(errp[0]);
        if (virtual_clock)
            setenv("ASYNC_CLOCK", "virtual", 1);
        else
            unsetenv("ASYNC_CLOCK");
        execl(path, path, (char *)NULL);
        _exit(127);
    }
    close(outp[1]);
    close(errp[1]);
    *out = read_all(outp[0]); /* the sample's output is small: one pipe drained after the other is fine */
    *err = read_all(errp[0]);
    close(outp[0]);
    close(errp[0]);
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Runs samples/NAME under the virtual clock; checks its exit status, that its standard output is
 * exactly `expected`, and that it took exactly `virtual_ms` of virtual time. */
static void run_sample(const char *name, int exit_status, const char *expected, long virtual_ms) {
    char *out, *err;
    const char *vt;
    int status = capture_sample(name, 1, &out, &err);
    if (status != exit_status)
        test_fail(__FILE__, __LINE__, "%s exited with status %d, expected %d; stderr:\n%s", name, status, exit_status,
                  err);
    ASSERT_STR_EQ(out, expected);
    vt = strstr(err, "async: virtual time ");
    if (!vt) test_fail(__FILE__, __LINE__, "%s printed no virtual time; stderr:\n%s", name, err);
    ASSERT_EQ(strtol(vt + strlen("async: virtual time "), NULL, 10), virtual_ms);
    free(out);
    free(err);
}

/* Runs cmd (bounded by `timeout 10`), returns its exit status; its stdout goes to out. */
static int run_cmd(const char *cmd, char *out, size_t cap) {
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

/* python's http.server on a port it picks, serving a directory of the test's own with a.txt (100
 * bytes), b.html (2000) and post.json. */
static void start_site_server(test_server *srv) {
    FILE *f;
    int i;
    char cmd[256];
    f = fopen(test_path("a.txt"), "w");
    for (i = 0; i < 100; i++) fputc('a', f);
    fclose(f);
    f = fopen(test_path("b.html"), "w");
    for (i = 0; i < 2000; i++) fputc('b', f);
    fclose(f);
    test_write_file(test_path("post.json"), "{\"userId\": 1, \"id\": 1, \"title\": \"delectus aut autem\"}");
    /* unbuffered: its first line ("Serving HTTP on 127.0.0.1 port N (http://127.0.0.1:N/) ...") names the port */
    snprintf(cmd, sizeof cmd, "exec python3 -u -m http.server 0 --bind 127.0.0.1 --directory %s 2>/dev/null", test_dir());
    test_server_start(srv, cmd);
}

/* ---- under the virtual clock ---- */

TEST(samples_gather) {
    run_sample("gather", 0,
               "Task A started\n"
               "Task B started\n"
               "Task C started\n"
               "Task C completed\n"
               "Task B completed\n"
               "Task A completed\n"
               "['Result of A', 'Result of B', 'Result of C']\n",
               3000);
}

TEST(samples_hello_world) {
    run_sample("hello_world", 0, "Hello\nWorld\n", 1000);
}

TEST(samples_create_task) {
    run_sample("create_task", 0, "Hello, Alice!\nHello, Bob!\n", 1000);
}

TEST(samples_greet_value) {
    run_sample("greet_value", 0, "Hello, Alice!\n", 1000);
}

TEST(samples_countdown) {
    run_sample("countdown", 0, "5\n4\n3\n2\n1\nCountdown finished!\n", 5000);
}

TEST(samples_fetch_data) {
    run_sample("fetch_data", 0,
               "Fetching data from example.com\n"
               "Fetching data from python.org\n"
               "Processed: Data from example.com\n"
               "Processed: Data from python.org\n",
               2000);
}

TEST(samples_return_exceptions) {
    run_sample("return_exceptions", 0, "Results: [5.0, ZeroDivisionError('division by zero')]\n", 1000);
}

TEST(samples_risky_task) {
    run_sample("risky_task", 0, "Caught an error: An error occurred!\n", 1000);
}

TEST(samples_faulty_coroutine) {
    run_sample("faulty_coroutine", 0, "Caught an exception: An error occurred!\n", 1000);
}

TEST(samples_cancel) {
    run_sample("cancel", 0, "Task was cancelled\nCaught task cancellation\n", 1000);
}

TEST(samples_gather_first) {
    run_sample("gather_first", 0, "Task 2 completed\nTask 1 completed\n", 2000);
}

TEST(samples_send_email) {
    run_sample("send_email", 0, "Email Sent!\n", 3000);
}

TEST(samples_gather_list) {
    run_sample("gather_list", 0, "['Task 1 complete', 'Task 2 complete']\n", 2000);
}

TEST(samples_tasks_sequential) {
    run_sample("tasks_sequential", 0, "Task 1 completed\nTask 2 completed\n", 2000);
}

/* ---- the toolkit's samples ---- */

TEST(samples_async_with) {
    run_sample("async_with", 0, "Acquiring resource\nUsing resource\nReleasing resource\n", 3000);
}

TEST(samples_async_range) {
    run_sample("async_range", 0, "Generated: 1\nGenerated: 2\nGenerated: 3\nGenerated: 4\n", 2000);
}

TEST(samples_task_queue) {
    run_sample("task_queue", 0,
               "Processed task: Task 0\nProcessed task: Task 1\nProcessed task: Task 2\n"
               "Processed task: Task 3\nProcessed task: Task 4\nProcessed task: Task 5\n"
               "Processed task: Task 6\nProcessed task: Task 7\nProcessed task: Task 8\n"
               "Processed task: Task 9\n",
               2817); /* ten durations from the sample's fixed seed, each within 100..500 ms */
}

TEST(samples_debugging) {
    run_sample("debugging", 0, "Caught an error: Oops!\nTask failed, but we caught it!\n", 2000);
}

TEST(samples_producer_consumer) {
    run_sample("producer_consumer", 0,
               "Produced 1\nProduced 2\nProduced 3\nConsumed 1\nProduced 4\nConsumed 2\nProduced 5\n"
               "Consumed 3\nProduced 6\nConsumed 4\nConsumed 5\nConsumed 6\nConsumer done\n",
               1800); /* the consumer's pace: 6 x 0.3 s */
}

TEST(samples_retry_backoff) {
    run_sample("retry_backoff", 0,
               "Attempt 1 failed: service unavailable; retrying in 0.5 s\n"
               "Attempt 2 failed: service unavailable; retrying in 1.0 s\n"
               "Result: OK\n",
               2100);
}

/* The concurrency, exactly: under the virtual clock the ten sleeps gathered take 0.10 s, not 1.00, and the
 * blocking call takes no virtual time at all (which is why the slide is run in real time below). */
TEST(samples_performance_gathered_sleeps_take_one_sleep) {
    run_sample("performance", 0, "10 fast operations took 0.10 seconds\n1 slow operation took 0.00 seconds\n", 100);
}

/* Real time, as the slide measures it: the blocking call is what the sample is about. Lower bounds only:
 * a busy machine can stretch any real interval, and the virtual-clock test above tells one 0.1 s wait
 * from ten. */
TEST(samples_performance_blocking_call_is_measured_and_named) {
    char *out, *err;
    double fast = -1, slow = -1;
    const char *second;
    ASSERT_EQ(capture_sample("performance", 0, &out, &err), 0);
    ASSERT(sscanf(out, "10 fast operations took %lf seconds\n", &fast) == 1);
    second = strchr(out, '\n');
    ASSERT(second && sscanf(second + 1, "1 slow operation took %lf seconds\n", &slow) == 1);
    ASSERT(fast >= 0.10);
    ASSERT(slow >= 1.00); /* the loop's clock saw the blocking second */
    if (!strstr(err, "async: debug: slow_operation_run (samples/performance.c) blocked the loop for "))
        test_fail(__FILE__, __LINE__, "debug mode did not name the blocking call; stderr:\n%s", err);
    free(out);
    free(err);
}

TEST_TAGGED(samples_to_thread, TEST_THREADS) {
    run_sample("to_thread", 0, "['Slept for 2 seconds', 'Slept for 1 seconds', 'Slept for 3 seconds']\n", 0);
}

TEST_TAGGED(samples_file_io, TEST_THREADS) {
    run_sample("file_io", 0, "File content: Hello, Async World!\n", 0);
}

/* ---- the network samples ---- */

TEST(samples_web_scraping_fetches_concurrently_in_argument_order) {
    char cmd[512], out[1024], expect[512];
    test_server srv;
    int port;
    test_need("python3");
    start_site_server(&srv);
    port = srv.port;
    snprintf(cmd, sizeof cmd,
             SAMPLE "web_scraping http://127.0.0.1:%d/b.html http://127.0.0.1:%d/a.txt http://localhost:%d/post.json",
             port, port, port);
    ASSERT_EQ(run_cmd(cmd, out, sizeof out), 0);
    snprintf(expect, sizeof expect,
             "Fetched 2000 bytes from http://127.0.0.1:%d/b.html\n"
             "Fetched 100 bytes from http://127.0.0.1:%d/a.txt\n"
             "Fetched 53 bytes from http://localhost:%d/post.json\n",
             port, port, port);
    ASSERT_STR_EQ(out, expect);
    test_server_stop(&srv);
}

TEST(samples_fetch_json_prints_the_document) {
    char cmd[256], out[512];
    test_server srv;
    int port;
    test_need("python3");
    start_site_server(&srv);
    port = srv.port;
    snprintf(cmd, sizeof cmd, SAMPLE "fetch_json http://127.0.0.1:%d/post.json", port);
    ASSERT_EQ(run_cmd(cmd, out, sizeof out), 0);
    ASSERT_STR_EQ(out, "{\"userId\": 1, \"id\": 1, \"title\": \"delectus aut autem\"}\n");
    snprintf(cmd, sizeof cmd, SAMPLE "fetch_json http://127.0.0.1:%d/nothing.json 2>/dev/null", port);
    ASSERT_EQ(run_cmd(cmd, out, sizeof out), 1); /* a 404 is reported as a failure */
    test_server_stop(&srv);
}

TEST(samples_api_errors_catches_refused_and_timeout) {
    char cmd[256], out[512], expect[512];
    int refused = test_refused_port(), silent;
    int fd = test_listen_raw(8, &silent); /* accepts into its backlog, never answers */
    snprintf(cmd, sizeof cmd, SAMPLE "api_errors http://127.0.0.1:%d/api http://127.0.0.1:%d/api", refused, silent);
    ASSERT_EQ(run_cmd(cmd, out, sizeof out), 0);
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
    ASSERT_EQ(run_cmd(SAMPLE "web_scraping 2>&1", out, sizeof out), 2);
    ASSERT(strstr(out, "usage:") != NULL);
    ASSERT_EQ(run_cmd(SAMPLE "fetch_json 2>&1", out, sizeof out), 2);
    ASSERT_EQ(run_cmd(SAMPLE "api_errors 2>&1", out, sizeof out), 2);
    ASSERT_EQ(run_cmd(SAMPLE "hello_server --bogus 1 2>&1", out, sizeof out), 2);
}

/* hello_server: prints its port, answers curl, stops by itself after --seconds. */
static void hello_server_answers_curl(int threads) {
    char cmd[256], line[128], out[256];
    FILE *p;
    int port = 0, i;
    test_need("curl");
    snprintf(cmd, sizeof cmd, "timeout 10 " SAMPLE "hello_server --port 0 --threads %d --seconds 2", threads);
    fflush(NULL);
    p = popen(cmd, "r");
    ASSERT(p != NULL);
    ASSERT(fgets(line, sizeof line, p) != NULL);
    ASSERT(sscanf(line, "Serving on http://127.0.0.1:%d/", &port) == 1);
    for (i = 0; i < 4; i++) {
        snprintf(cmd, sizeof cmd, "curl -s http://127.0.0.1:%d/ http://127.0.0.1:%d/x", port, port);
        ASSERT_EQ(run_cmd(cmd, out, sizeof out), 0);
        ASSERT_STR_EQ(out, "hellohello");
    }
    ASSERT_EQ(pclose(p), 0); /* graceful end after 2 s, exit status 0 */
}

TEST(samples_hello_server_one_thread) { hello_server_answers_curl(1); }
TEST_TAGGED(samples_hello_server_two_threads_share_the_port, TEST_THREADS) { hello_server_answers_curl(2); }

/* Reads fd into buf (cap bytes with its '\0') until it holds `want` or `seconds` pass; whether it does. */
static bool chat_read_for(int fd, char *buf, size_t cap, const char *want, double seconds) {
    size_t len = strlen(buf);
    double end = now_s() + seconds;
    struct pollfd p;
    p.fd = fd;
    p.events = POLLIN;
    while (!strstr(buf, want) && len < cap - 1 && now_s() < end) {
        ssize_t n;
        if (poll(&p, 1, 50) <= 0) continue;
        n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n <= 0) break;
        len += (size_t)n;
        buf[len] = '\0';
    }
    return strstr(buf, want) != NULL;
}

static bool chat_read_until(int fd, char *buf, size_t cap, const char *want) {
    return chat_read_for(fd, buf, cap, want, 10);
}

/* A client of the chat tests: its socket, what it read while joining, then its lines one by one. */
typedef struct chat_peer {
    int fd;
    char nick[16];
    char got[1024];  /* what it read while joining (chat_read_for appends to it) */
    bool reading;    /* chat_step reads it */
    char line[2048]; /* the line being read, len bytes so far */
    size_t len;
    int next;        /* the number of the next paste line it must get ("<nick> N ...") */
    bool saw;        /* it got the line chat_step watches for */
    bool ended;      /* its connection ended (end of stream or reset) */
    char last[128];  /* the start of its last whole line, without the '\n' */
} chat_peer;

/* Connects a client with a receive buffer of rcvbuf bytes (0: the default) and gives its nickname once
 * welcomed. */
static void chat_join(chat_peer *p, int port, int rcvbuf, const char *nick) {
    char msg[24];
    memset(p, 0, sizeof *p);
    snprintf(p->nick, sizeof p->nick, "%s", nick);
    p->fd = test_connect(port, rcvbuf);
    ASSERT(p->fd >= 0);
    ASSERT(chat_read_until(p->fd, p->got, sizeof p->got, "Welcome! Your nickname? "));
    snprintf(msg, sizeof msg, "%s\n", nick);
    ASSERT(write(p->fd, msg, strlen(msg)) == (ssize_t)strlen(msg));
}

/* Waits until a and b are both in the room: one of them has seen the other join (whichever the server
 * took first), within 10 s. */
static void chat_both_in(chat_peer *a, chat_peer *b) {
    char a_sees[32], b_sees[32];
    int i;
    snprintf(a_sees, sizeof a_sees, "* %s joined\n", b->nick);
    snprintf(b_sees, sizeof b_sees, "* %s joined\n", a->nick);
    for (i = 0; i < 100 && !chat_read_for(a->fd, a->got, sizeof a->got, a_sees, 0.05) &&
                !chat_read_for(b->fd, b->got, sizeof b->got, b_sees, 0.05);
         i++)
        ;
    ASSERT(i < 100);
}

/* Starts cmd (the chat server) and fills its room: a and b (receive windows of a_rcvbuf and b_rcvbuf
 * bytes, 0 for the default), then the talker once both are in; returns once both have seen it join. */
static void chat_room(test_server *srv, const char *cmd, chat_peer *a, const char *a_nick, int a_rcvbuf,
                      chat_peer *b, const char *b_nick, int b_rcvbuf, chat_peer *talker, const char *talker_nick) {
    char joined[32];
    test_server_start(srv, cmd);
    chat_join(a, srv->port, a_rcvbuf, a_nick);
    chat_join(b, srv->port, b_rcvbuf, b_nick);
    chat_both_in(a, b);
    chat_join(talker, srv->port, 0, talker_nick);
    snprintf(joined, sizeof joined, "* %s joined\n", talker_nick);
    ASSERT(chat_read_until(a->fd, a->got, sizeof a->got, joined));
    ASSERT(chat_read_until(b->fd, b->got, sizeof b->got, joined));
}

/* Reads what p's socket holds now (one read, without waiting), line by line: a line "<from> N ..." must
 * be the paste line p expects next; `watch` sets p->saw. Whether anything came (or the stream ended). */
static bool chat_take(chat_peer *p, const char *from, const char *watch) {
    char buf[4096], prefix[24];
    ssize_t n = recv(p->fd, buf, sizeof buf, MSG_DONTWAIT), i;
    if (n == 0 || (n < 0 && errno == ECONNRESET)) p->ended = true;
    if (n <= 0) return p->ended;
    snprintf(prefix, sizeof prefix, "<%s> ", from);
    for (i = 0; i < n; i++) {
        if (buf[i] != '\n') {
            if (p->len == sizeof p->line - 1) test_fail(__FILE__, __LINE__, "%s got a line too long", p->nick);
            p->line[p->len++] = buf[i];
            continue;
        }
        p->line[p->len] = '\0';
        p->len = 0;
        if (strncmp(p->line, prefix, strlen(prefix)) == 0) {
            int k = atoi(p->line + strlen(prefix));
            if (k != p->next) test_fail(__FILE__, __LINE__, "%s got paste line %d, expected %d", p->nick, k, p->next);
            p->next++;
        }
        if (watch && strcmp(p->line, watch) == 0) p->saw = true;
        snprintf(p->last, sizeof p->last, "%.127s", p->line); /* its start is enough to compare */
    }
    return true;
}

/* A paste in progress: the talker's lines, what its socket took of them, and since when nothing moved. */
typedef struct chat_paste {
    chat_peer *talker;
    char *text;
    size_t size, sent;
    double quiet;    /* when something last moved */
    double patience; /* how long nothing may move, in seconds */
} chat_paste;

/* Prepares `lines` lines of `size` bytes each for the talker: "0000 xxx...x\n", "0001 xxx...x\n", ... */
static void chat_paste_init(chat_paste *p, chat_peer *talker, int lines, int size, double patience) {
    char num[8];
    int i;
    p->talker = talker;
    p->size = (size_t)lines * (size_t)size;
    p->text = malloc(p->size);
    ASSERT(p->text != NULL);
    memset(p->text, 'x', p->size);
    for (i = 0; i < lines; i++) {
        snprintf(num, sizeof num, "%04d ", i);
        memcpy(p->text + (size_t)i * (size_t)size, num, 5);
        p->text[(size_t)(i + 1) * (size_t)size - 1] = '\n';
    }
    p->sent = 0;
    p->quiet = now_s();
    p->patience = patience;
}

/* One step of a paste: waits (50 ms at most) until the talker's socket takes more of the paste or a
 * reading peer has input; sends what the socket takes (never blocking) or, if it takes nothing, reads one
 * chunk from each peer (chat_take, which checks the order of the talker's lines and looks for `watch`).
 * Fails the test when nothing has moved for the paste's patience. */
static void chat_step(chat_paste *paste, chat_peer *const *peers, int n, const char *watch) {
    struct pollfd p[4];
    bool moved = false;
    int i;
    ASSERT(n < 4);
    p[0].fd = paste->sent < paste->size ? paste->talker->fd : -1; /* poll skips a negative descriptor */
    p[0].events = POLLOUT;
    for (i = 0; i < n; i++) {
        p[i + 1].fd = peers[i]->reading && !peers[i]->ended ? peers[i]->fd : -1;
        p[i + 1].events = POLLIN;
    }
    if (poll(p, (nfds_t)n + 1, 50) > 0 && (p[0].revents & POLLOUT)) {
        ssize_t w = send(p[0].fd, paste->text + paste->sent, paste->size - paste->sent, MSG_DONTWAIT | MSG_NOSIGNAL);
        ASSERT(w > 0 || errno == EAGAIN);
        if (w > 0) paste->sent += (size_t)w;
        moved = w > 0;
    }
    for (i = 0; i < n && !moved; i++) /* the readers are slower: they read only while the talker cannot send */
        if (p[i + 1].revents && chat_take(peers[i], paste->talker->nick, watch)) moved = true;
    if (moved) paste->quiet = now_s();
    else if (now_s() - paste->quiet > paste->patience)
        test_fail(__FILE__, __LINE__, "the paste stopped: %lu of %lu bytes sent; %s at line %d, %s at line %d",
                  (unsigned long)paste->sent, (unsigned long)paste->size, peers[0]->nick, peers[0]->next,
                  n > 1 ? peers[1]->nick : "-", n > 1 ? peers[1]->next : 0);
}

/* Whether fd's connection ends (end of stream or reset) with nothing more to read, within TEST_LONG_MS. */
static bool chat_ends(int fd) {
    char c;
    struct pollfd p;
    ssize_t n;
    p.fd = fd;
    p.events = POLLIN;
    if (poll(&p, 1, TEST_LONG_MS) != 1) return false;
    n = recv(fd, &c, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
}

/* The chat: an nc client's lines reach the others. Each step waits for what shows it happened, never for
 * a while: bob and carol are both in the room, and only then does alice (nc) join and talk. */
TEST(samples_chat_server_broadcasts_between_nc_clients) {
    char cmd[256];
    test_server srv;
    chat_peer bob, carol;
    FILE *alice;
    const char *tail;
    test_need("nc");
    test_server_start(&srv, "exec " SAMPLE "chat_server --port 0"); /* it prints its port */
    chat_join(&bob, srv.port, 0, "bob");
    chat_join(&carol, srv.port, 0, "carol");
    chat_both_in(&bob, &carol);
    snprintf(cmd, sizeof cmd, "timeout 10 nc -N 127.0.0.1 %d > /dev/null", srv.port);
    fflush(NULL);
    alice = popen(cmd, "w");
    ASSERT(alice != NULL);
    fputs("alice\nhi from alice\n", alice);
    fflush(alice);
    ASSERT(chat_read_until(bob.fd, bob.got, sizeof bob.got, "<alice> hi from alice\n"));
    ASSERT(chat_read_until(carol.fd, carol.got, sizeof carol.got, "<alice> hi from alice\n"));
    ASSERT_EQ(pclose(alice), 0); /* its input ended, it shut its side down, the server closed */
    ASSERT(strncmp(bob.got, "Welcome! Your nickname? ", 24) == 0);
    tail = strstr(bob.got, "* alice joined\n");
    ASSERT(tail != NULL);
    ASSERT_STR_EQ(tail, "* alice joined\n<alice> hi from alice\n"); /* in order, and nothing else after */
    close(bob.fd);
    close(carol.fd);
    test_server_stop(&srv);
}

/* A paste of 5,000 lines (500 KB) into a room whose two readers are slower than the paster (a small
 * window each, one read per step): their queues pass the high-water mark and the paster is read less
 * instead of anyone being cut off. Every line reaches both readers, in order, and the room goes on. */
TEST(samples_chat_server_paste_reaches_every_reader) {
    chat_peer ann, ben, paster;
    chat_peer *readers[2];
    chat_paste paste;
    test_server srv;
    chat_room(&srv, "exec " SAMPLE "chat_server --port 0", &ann, "ann", 4096, &ben, "ben", 4096, &paster, "paster");
    chat_paste_init(&paste, &paster, 5000, 100, TEST_LONG_MS / 1000.0);
    readers[0] = &ann;
    readers[1] = &ben;
    ann.reading = ben.reading = true;
    while (ann.next < 5000 || ben.next < 5000) {
        ASSERT(!ann.ended && !ben.ended);
        chat_step(&paste, readers, 2, NULL);
    }
    /* nobody was cut off: ann still talks to ben and to the paster */
    ASSERT(write(ann.fd, "still here\n", 11) == 11);
    ASSERT(chat_read_until(ben.fd, ben.got, sizeof ben.got, "<ann> still here\n"));
    ASSERT(chat_read_until(paster.fd, paster.got, sizeof paster.got, "<ann> still here\n"));
    free(paste.text);
    close(ann.fd);
    close(ben.fd);
    close(paster.fd);
    test_server_stop(&srv);
}

/* A client that never reads holds the room back for the stall time only (1 s here): once its writer has
 * handed nothing to the kernel for that long, it is cut off, the others see it leave and the paste goes on
 * to the reader. The cut client, reading from then on, gets the reason, then the end of the stream. */
TEST(samples_chat_server_cuts_off_a_stalled_client) {
    chat_peer slow, reader, talker;
    chat_peer *peers[2];
    chat_paste paste;
    test_server srv;
    /* slow: a tiny window, and once the talker is in it stops reading */
    chat_room(&srv, "exec " SAMPLE "chat_server --port 0 --stall-seconds 1", &slow, "slow", 4096, &reader, "reader",
              0, &talker, "talker");
    /* 900 KB: far more than the stalled client's window and queue hold; the room may wait the stall time */
    chat_paste_init(&paste, &talker, 1500, 600, 1 + TEST_LONG_MS / 1000.0);
    peers[0] = &reader;
    peers[1] = &slow;
    reader.reading = true;
    while (reader.next < 1500 || !slow.ended) {
        chat_step(&paste, peers, 2, "* slow left");
        slow.reading = reader.saw; /* cut off: from now on it reads what it was sent */
    }
    ASSERT(slow.next < 1500); /* it was cut off part-way */
    ASSERT_STR_EQ(slow.last, "* disconnected: too slow (no progress for 1 s)");
    /* the others chat on */
    ASSERT(write(reader.fd, "still here\n", 11) == 11);
    ASSERT(chat_read_until(talker.fd, talker.got, sizeof talker.got, "<reader> still here\n"));
    free(paste.text);
    close(slow.fd);
    close(reader.fd);
    close(talker.fd);
    test_server_stop(&srv);
}

/* A line over 1,024 bytes (or a nickname over 64) ends its sender's chat: it is told why, then the stream
 * ends; the line reaches no one. */
TEST(samples_chat_server_cuts_off_a_line_too_long) {
    char longline[1500];
    chat_peer other, chatty;
    test_server srv;
    int fd;
    test_server_start(&srv, "exec " SAMPLE "chat_server --port 0");
    chat_join(&other, srv.port, 0, "other");
    chat_join(&chatty, srv.port, 0, "chatty");
    chat_both_in(&other, &chatty);
    memset(longline, 'x', sizeof longline); /* and no '\n' */
    ASSERT(write(chatty.fd, longline, sizeof longline) == (ssize_t)sizeof longline);
    ASSERT(chat_read_until(chatty.fd, chatty.got, sizeof chatty.got,
                           "* disconnected: line too long (over 1024 bytes)\n"));
    ASSERT(chat_ends(chatty.fd));
    ASSERT(chat_read_until(other.fd, other.got, sizeof other.got, "* chatty left\n"));
    ASSERT(strstr(other.got, "<chatty>") == NULL);
    /* a nickname is a line of 64 bytes at most */
    fd = test_connect(srv.port, 0);
    ASSERT(fd >= 0);
    ASSERT(write(fd, longline, 100) == 100);
    chatty.got[0] = '\0';
    ASSERT(chat_read_until(fd, chatty.got, sizeof chatty.got, "* disconnected: line too long (over 64 bytes)\n"));
    ASSERT(chat_ends(fd));
    close(fd);
    close(other.fd);
    close(chatty.fd);
    test_server_stop(&srv);
}

TEST(samples_gather_tasks) {
    run_sample("gather_tasks", 0, "Task 1 completed\nTask 2 completed\n", 2000);
}

TEST(samples_say_hello) {
    run_sample("say_hello", 0, "Hello\nWorld\n", 2000);
}

TEST(samples_try_except) {
    run_sample("try_except", 0, "Caught an error: Something went wrong!\n", 1000);
}

/* File calls run on the thread pool, which takes no virtual time. */
TEST_TAGGED(samples_file_write_read, TEST_THREADS) {
    run_sample("file_write_read", 0, "Hello, asyncio!\n", 0);
}

/* ---- the application samples: a JSON API over SQLite, a browser chat over WebSocket ---- */

/* Starts a server sample with its arguments; under `make valgrind`, under memcheck too (its own errors
 * and leaks then show in its exit status, 99). */
static void app_start(test_server *srv, const char *args) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "exec %s" SAMPLE "%s",
             test_under_valgrind() ? "valgrind -q --leak-check=full --show-leak-kinds=definite,indirect "
                                     "--errors-for-leak-kinds=definite,indirect --error-exitcode=99 "
                                   : "",
             args);
    test_server_start(srv, cmd);
}

/* Waits for process pid to end, within 10 s (SIGKILL to its group and a failed test after that); its exit
 * status, -1 if a signal ended it. */
static int app_reap(pid_t pid, const char *what) {
    int status = 0;
    double end = now_s() + 10;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (now_s() > end) {
            kill(-pid, SIGKILL);
            waitpid(pid, &status, 0);
            test_fail(__FILE__, __LINE__, "%s did not end within 10 s", what);
        }
        sleep_ms(10);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static bool app_output(test_server *srv, char *log, size_t cap, const char *want, int ms);

/* Stops a server sample as a service manager does, with SIGTERM; its exit status (0: a clean stop). What
 * it still prints goes to log if log is not NULL. */
static int app_stop(test_server *srv, char *log, size_t cap) {
    int status;
    kill(srv->pid, SIGTERM);
    if (log) app_output(srv, log, cap, "\n\n", TEST_LONG_MS); /* to the end of its output: no "\n\n" comes */
    status = app_reap(srv->pid, "the sample");
    close(srv->out);
    srv->pid = 0;
    return status;
}

/* One request to the JSON API with curl (the body, if any, from a file): "STATUS TYPE BODY", with the
 * type and the body left out when there is none (a static buffer). */
static const char *api(int port, const char *method, const char *path, const char *json) {
    static char answer[3 * 8192]; /* room for the three pieces of out as the compiler counts them */
    char cmd[1024], out[8192], *nl, *type;
    if (json) test_write_file(test_path("body.json"), json);
    snprintf(cmd, sizeof cmd, "curl -s -X %s %s%s -w '\\n%%{http_code} %%{content_type}' 'http://127.0.0.1:%d%s'",
             method, json ? "--data-binary @" : "", json ? test_path("body.json") : "", port, path);
    ASSERT_EQ(run_cmd(cmd, out, sizeof out), 0);
    nl = strrchr(out, '\n');
    ASSERT(nl != NULL);
    *nl++ = '\0';
    type = strchr(nl, ' ');
    ASSERT(type != NULL);
    *type++ = '\0';
    snprintf(answer, sizeof answer, "%s%s%s%s%s", nl, *type ? " " : "", type, *out ? " " : "", out);
    return answer;
}

#define ITEM_JSON "application/json "

/* Every route, and what each answers: the list, a item made, read, changed in part, deleted; titles
 * with escapes come back escaped; the page. */
TEST_TAGGED(samples_json_api_serves_every_route, TEST_THREADS) {
    test_server srv;
    char cmd[256], out[4096];
    int p;
    test_need("curl");
    app_start(&srv, "json_api --port 0");
    p = srv.port;
    ASSERT_STR_EQ(api(p, "GET", "/api/items", NULL), "200 " ITEM_JSON "[]");
    ASSERT_STR_EQ(api(p, "POST", "/api/items", "{\"title\": \"milk\"}"),
                  "201 " ITEM_JSON "{\"id\":1,\"title\":\"milk\",\"done\":false}");
    /* escapes read (\", \\, \t, \u00e9, a surrogate pair) and written back (UTF-8 as it is) */
    ASSERT_STR_EQ(api(p, "POST", "/api/items", "{\"done\": true, \"title\": \"say \\\"hi\\\" \\\\ \\u00e9 \\ud83d\\ude00\\t.\"}"),
                  "201 " ITEM_JSON "{\"id\":2,\"title\":\"say \\\"hi\\\" \\\\ \xc3\xa9 \xf0\x9f\x98\x80\\t.\",\"done\":true}");
    ASSERT_STR_EQ(api(p, "GET", "/api/items/1", NULL), "200 " ITEM_JSON "{\"id\":1,\"title\":\"milk\",\"done\":false}");
    ASSERT_STR_EQ(api(p, "PUT", "/api/items/1", "{\"done\": true}"),
                  "200 " ITEM_JSON "{\"id\":1,\"title\":\"milk\",\"done\":true}");
    ASSERT_STR_EQ(api(p, "PUT", "/api/items/1", "{\"title\": \"oat milk\"}"), /* done stays */
                  "200 " ITEM_JSON "{\"id\":1,\"title\":\"oat milk\",\"done\":true}");
    ASSERT_STR_EQ(api(p, "PUT", "/api/items/1", "{}"), "200 " ITEM_JSON "{\"id\":1,\"title\":\"oat milk\",\"done\":true}");
    ASSERT_STR_EQ(api(p, "DELETE", "/api/items/2", NULL), "204");
    ASSERT_STR_EQ(api(p, "POST", "/api/items", "{\"title\": \"\"}"),
                  "201 " ITEM_JSON "{\"id\":3,\"title\":\"\",\"done\":false}");
    ASSERT_STR_EQ(api(p, "GET", "/api/items", NULL),
                  "200 " ITEM_JSON "[{\"id\":1,\"title\":\"oat milk\",\"done\":true},{\"id\":3,\"title\":\"\",\"done\":false}]");
    /* the new item's address, and the page */
    snprintf(cmd, sizeof cmd, "curl -s -o /dev/null -D - -d '{\"title\":\"x\"}' http://127.0.0.1:%d/api/items", p);
    ASSERT_EQ(run_cmd(cmd, out, sizeof out), 0);
    ASSERT(strstr(out, "Location: /api/items/4\r\n") != NULL);
    snprintf(cmd, sizeof cmd, "curl -s -w '%%{http_code} %%{content_type}' http://127.0.0.1:%d/", p);
    ASSERT_EQ(run_cmd(cmd, out, sizeof out), 0);
    ASSERT(strstr(out, "<title>items</title>") != NULL);
    ASSERT(strstr(out, "</script>\n200 text/html; charset=utf-8") != NULL);
    ASSERT_EQ(app_stop(&srv, NULL, 0), 0);
}

/* What the API refuses, each as {"error": ...} with its status; what the server refuses itself (405 with
 * Allow, 413, 404 for a path no route has) in plain text. */
TEST_TAGGED(samples_json_api_answers_errors_as_json, TEST_THREADS) {
    test_server srv;
    char cmd[512], out[512], *big;
    int p;
    test_need("curl");
    app_start(&srv, "json_api --port 0");
    p = srv.port;
    ASSERT_STR_EQ(api(p, "POST", "/api/items", "{\"title\": \"milk\""), "400 " ITEM_JSON "{\"error\":\"the body is not JSON\"}");
    ASSERT_STR_EQ(api(p, "POST", "/api/items", ""), "400 " ITEM_JSON "{\"error\":\"the body is not JSON\"}");
    ASSERT_STR_EQ(api(p, "POST", "/api/items", "[\"milk\"]"),
                  "400 " ITEM_JSON "{\"error\":\"the body is not a JSON object\"}");
    ASSERT_STR_EQ(api(p, "POST", "/api/items", "{}"), "400 " ITEM_JSON "{\"error\":\"title must be a string\"}");
    ASSERT_STR_EQ(api(p, "POST", "/api/items", "{\"title\": 7}"), "400 " ITEM_JSON "{\"error\":\"title must be a string\"}");
    ASSERT_STR_EQ(api(p, "POST", "/api/items", "{\"title\": \"a\", \"done\": 1}"),
                  "400 " ITEM_JSON "{\"error\":\"done must be true or false\"}");
    ASSERT_STR_EQ(api(p, "POST", "/api/items", "{\"title\": \"milk\"}"),
                  "201 " ITEM_JSON "{\"id\":1,\"title\":\"milk\",\"done\":false}");
    ASSERT_STR_EQ(api(p, "PUT", "/api/items/1", "{\"title\": null}"), "400 " ITEM_JSON "{\"error\":\"title must be a string\"}");
    ASSERT_STR_EQ(api(p, "PUT", "/api/items/1", "nope"), "400 " ITEM_JSON "{\"error\":\"the body is not JSON\"}");
    ASSERT_STR_EQ(api(p, "GET", "/api/items/2", NULL), "404 " ITEM_JSON "{\"error\":\"no item 2\"}");
    ASSERT_STR_EQ(api(p, "PUT", "/api/items/2", "{\"done\": true}"), "404 " ITEM_JSON "{\"error\":\"no item 2\"}");
    ASSERT_STR_EQ(api(p, "DELETE", "/api/items/2", NULL), "404 " ITEM_JSON "{\"error\":\"no item 2\"}");
    ASSERT_STR_EQ(api(p, "GET", "/api/items/x%22y", NULL), "404 " ITEM_JSON "{\"error\":\"no item x\\\"y\"}");
    ASSERT_STR_EQ(api(p, "GET", "/api/items/-1", NULL), "404 " ITEM_JSON "{\"error\":\"no item -1\"}");
    ASSERT_STR_EQ(api(p, "GET", "/api/items/99999999999999999999", NULL),
                  "404 " ITEM_JSON "{\"error\":\"no item 99999999999999999999\"}");
    /* nothing was changed by the refusals */
    ASSERT_STR_EQ(api(p, "GET", "/api/items", NULL), "200 " ITEM_JSON "[{\"id\":1,\"title\":\"milk\",\"done\":false}]");
    /* the server's own answers */
    snprintf(cmd, sizeof cmd, "curl -s -D - -X PATCH http://127.0.0.1:%d/api/items/1", p);
    ASSERT_EQ(run_cmd(cmd, out, sizeof out), 0);
    ASSERT(strncmp(out, "HTTP/1.1 405 Method Not Allowed\r\n", 33) == 0);
    ASSERT(strstr(out, "Allow: GET, HEAD, PUT, DELETE\r\n") != NULL);
    ASSERT_STR_EQ(api(p, "GET", "/api/nothing", NULL), "404 text/plain; charset=utf-8 Not Found");
    big = malloc(70 * 1024);
    ASSERT(big != NULL);
    memset(big, 'x', 70 * 1024 - 1);
    big[70 * 1024 - 1] = '\0';
    memcpy(big, "{\"title\": \"", 11);
    ASSERT(strncmp(api(p, "POST", "/api/items", big), "413 ", 4) == 0);
    free(big);
    ASSERT_EQ(app_stop(&srv, NULL, 0), 0);
}

/* With --db FILE the items outlive the process; a database error is a 500 that says what SQLite said. */
TEST_TAGGED(samples_json_api_keeps_items_in_its_file_and_reports_database_errors, TEST_THREADS) {
    test_server srv;
    char args[256], cmd[512], out[512];
    test_need("curl");
    test_need("python3");
    snprintf(args, sizeof args, "json_api --port 0 --db %s", test_path("items.db"));
    app_start(&srv, args);
    ASSERT_STR_EQ(api(srv.port, "POST", "/api/items", "{\"title\": \"kept\"}"),
                  "201 " ITEM_JSON "{\"id\":1,\"title\":\"kept\",\"done\":false}");
    ASSERT_EQ(app_stop(&srv, NULL, 0), 0);
    app_start(&srv, args);
    ASSERT_STR_EQ(api(srv.port, "GET", "/api/items", NULL), "200 " ITEM_JSON "[{\"id\":1,\"title\":\"kept\",\"done\":false}]");
    /* another program drops the table under the running server */
    snprintf(cmd, sizeof cmd,
             "python3 -c \"import sqlite3; sqlite3.connect('%s', isolation_level=None).execute('DROP TABLE items')\"",
             test_path("items.db"));
    ASSERT_EQ(run_cmd(cmd, out, sizeof out), 0);
    ASSERT_STR_EQ(api(srv.port, "GET", "/api/items", NULL), "500 " ITEM_JSON "{\"error\":\"no such table: items\"}");
    ASSERT_STR_EQ(api(srv.port, "POST", "/api/items", "{\"title\": \"lost\"}"),
                  "500 " ITEM_JSON "{\"error\":\"no such table: items\"}");
    ASSERT_EQ(app_stop(&srv, NULL, 0), 0);
    /* a database that cannot be opened stops it at the start */
    snprintf(cmd, sizeof cmd, SAMPLE "json_api --db %s/no/such/dir/x.db 2>&1", test_dir());
    ASSERT_EQ(run_cmd(cmd, out, sizeof out), 1);
    ASSERT(strstr(out, "unable to open database file") != NULL);
}

/* Forty requests at once from ten clients: every one answered, each item made once (the queries take
 * turns on the one connection while the pool runs them). */
TEST_TAGGED(samples_json_api_answers_concurrent_clients, TEST_THREADS) {
    test_server srv;
    char cmd[512], out[4096];
    int i;
    test_need("curl");
    app_start(&srv, "json_api --port 0");
    snprintf(cmd, sizeof cmd,
             "seq 1 40 | xargs -P 10 -I N curl -s -o /dev/null -w '%%{http_code}\\n' -d '{\"title\": \"tN\"}' "
             "http://127.0.0.1:%d/api/items | sort | uniq -c",
             srv.port);
    ASSERT_EQ(run_cmd(cmd, out, sizeof out), 0);
    ASSERT_STR_EQ(out, "     40 201\n");
    snprintf(cmd, sizeof cmd, "curl -s http://127.0.0.1:%d/api/items", srv.port);
    ASSERT_EQ(run_cmd(cmd, out, sizeof out), 0);
    for (i = 1; i <= 40; i++) { /* ids 1..40, and each title once */
        char id[32], title[32];
        snprintf(id, sizeof id, "{\"id\":%d,", i);
        snprintf(title, sizeof title, "\"title\":\"t%d\"", i);
        ASSERT(strstr(out, id) != NULL);
        ASSERT(strstr(out, title) != NULL && strstr(strstr(out, title) + 1, title) == NULL);
    }
    ASSERT_EQ(app_stop(&srv, NULL, 0), 0);
}

TEST(samples_json_api_and_web_chat_refuse_bad_arguments) {
    char out[256];
    ASSERT_EQ(run_cmd(SAMPLE "json_api --bogus 1 2>&1", out, sizeof out), 2);
    ASSERT(strstr(out, "usage:") != NULL);
    ASSERT_EQ(run_cmd(SAMPLE "json_api --port 2>&1", out, sizeof out), 2);
    ASSERT_EQ(run_cmd(SAMPLE "web_chat --port 70000 2>&1", out, sizeof out), 2);
    ASSERT(strstr(out, "usage:") != NULL);
}

/* Reads the server's output into log (cap bytes with its '\0') until it holds `want` or ms pass; whether
 * it does. */
static bool app_output(test_server *srv, char *log, size_t cap, const char *want, int ms) {
    size_t len = strlen(log);
    double end = now_s() + ms / 1000.0;
    struct pollfd p;
    p.fd = srv->out;
    p.events = POLLIN;
    while (!strstr(log, want) && len < cap - 1 && now_s() < end) {
        ssize_t n;
        if (poll(&p, 1, 50) <= 0) continue;
        n = read(srv->out, log + len, cap - 1 - len);
        if (n <= 0) break;
        len += (size_t)n;
        log[len] = '\0';
    }
    return strstr(log, want) != NULL;
}

/* The page and the endpoint without a browser: the page has the client; a GET of /ws that is not an
 * upgrade is refused; python's websockets clients talk through the room. */
TEST(samples_web_chat_serves_its_page_and_refuses_plain_gets) {
    test_server srv;
    char cmd[256], out[4096];
    test_need("curl");
    app_start(&srv, "web_chat --port 0");
    snprintf(cmd, sizeof cmd, "curl -s http://127.0.0.1:%d/", srv.port);
    ASSERT_EQ(run_cmd(cmd, out, sizeof out), 0);
    ASSERT(strstr(out, "new WebSocket('ws://' + location.host + '/ws?name='") != NULL);
    snprintf(cmd, sizeof cmd, "curl -s -o /dev/null -w '%%{http_code}' http://127.0.0.1:%d/ws", srv.port);
    ASSERT_EQ(run_cmd(cmd, out, sizeof out), 0);
    ASSERT_STR_EQ(out, "400");
    ASSERT_EQ(app_stop(&srv, NULL, 0), 0);
}

/* A headless chromium with a profile of its own showing url, in a process group of its own that never
 * outlives the test; its output goes to log. */
static pid_t browser_open(const char *url, const char *profile, const char *log) {
    char dir[300];
    pid_t pid;
    snprintf(dir, sizeof dir, "--user-data-dir=%s", test_path(profile));
    fflush(NULL);
    pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(fd, 1);
        dup2(fd, 2);
        execlp("chromium", "chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--no-first-run", "--no-default-browser-check", "--disable-extensions",
               "--disable-background-networking", dir, url, (char *)NULL);
        _exit(127);
    }
    setpgid(pid, pid);
    return pid;
}

static void browser_close(pid_t pid) {
    kill(-pid, SIGTERM);
    app_reap(pid, "chromium");
}

/* Whether chromium can run here at all (a container may lack what it needs): it must print a page's
 * DOM; otherwise the test is skipped with the end of what it said. */
static void need_browser(void) {
    char cmd[512], out[4096];
    const char *err;
    size_t len;
    test_need("chromium");
    snprintf(cmd, sizeof cmd,
             "chromium --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run "
             "--user-data-dir=%s --dump-dom 'data:text/html,<p>browser%%20ok</p>' 2>%s",
             test_path("profile-probe"), test_path("probe.log"));
    if (run_cmd(cmd, out, sizeof out) == 0 && strstr(out, "<p>browser ok</p>")) return;
    err = test_read_file(test_path("probe.log")); /* its first 255 bytes */
    len = strlen(err);
    test_skip("headless chromium does not run here: %s%s", err, len == 255 ? "..." : "");
}

/* Two real browsers: page b joins (ready to answer), page a joins and sends "hello"; b gets it and
 * answers "got hello from a", which the server's log shows. A page whose browser is gone is dropped;
 * SIGTERM stops the server, and the page still open is told. */
TEST(samples_web_chat_two_browsers_talk) {
    test_server srv;
    char url[256], log[4096] = "";
    pid_t a, b;
    need_browser();
    app_start(&srv, "web_chat --port 0");
    snprintf(url, sizeof url, "http://127.0.0.1:%d/?name=b&ack=1", srv.port);
    b = browser_open(url, "profile-b", test_path("chromium-b.log"));
    /* a browser's start takes a second or more: four times the usual bound */
    ASSERT(app_output(&srv, log, sizeof log, "* b joined\n", 4 * TEST_LONG_MS));
    snprintf(url, sizeof url, "http://127.0.0.1:%d/?name=a&send=hello", srv.port);
    a = browser_open(url, "profile-a", test_path("chromium-a.log"));
    ASSERT(app_output(&srv, log, sizeof log, "b: got hello from a\n", 4 * TEST_LONG_MS));
    ASSERT(strstr(log, "* b joined\n* a joined\na: hello\nb: got hello from a\n") != NULL);
    browser_close(a);
    if (!app_output(&srv, log, sizeof log, "* a left", TEST_LONG_MS)) /* its reason may follow */
        test_fail(__FILE__, __LINE__, "the server did not drop page a; its log:\n%s", log);
    ASSERT_EQ(app_stop(&srv, log, sizeof log), 0);
    ASSERT(strstr(log, "* b left\n") != NULL);
    browser_close(b);
}

/* hello_server --tls: https with a self-signed certificate for localhost and 127.0.0.1 that curl is told
 * to trust: ALPN gives HTTP/1.1, two requests share one connection, the name is checked by address and by
 * name; with --threads 2 the loops share one TLS context. It ends by itself, freeing everything (under
 * `make valgrind`, checked). Files it cannot use end it at once with status 1 and why. */
static void hello_server_answers_https(int threads) {
    char cmd[1024], args[256], out[256];
    const char *cert = test_path("cert.pem"), *key = test_path("key.pem");
    test_server srv;
    test_need("curl");
    test_need("openssl");
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=localhost "
             "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout %s -out %s 2>&1", key, cert);
    ASSERT_EQ(run_cmd(cmd, out, sizeof out), 0);
    snprintf(cmd, sizeof cmd, SAMPLE "hello_server --tls %s %s 2>&1", key, cert); /* swapped: not a certificate */
    ASSERT_EQ(run_cmd(cmd, out, sizeof out), 1);
    ASSERT(strstr(out, "hello_server: cannot use ") != NULL);
    /* a slower start and handshakes under valgrind: a longer life, within app_reap's 10 s */
    snprintf(args, sizeof args, "hello_server --port 0 --threads %d --seconds %d --tls %s %s", threads,
             test_under_valgrind() ? 8 : 2, cert, key);
    app_start(&srv, args);
    snprintf(cmd, sizeof cmd,
             "curl -s --cacert %s -w ' %%{http_version} %%{num_connects}\\n' https://127.0.0.1:%d/ "
             "https://127.0.0.1:%d/x https://localhost:%d/",
             cert, srv.port, srv.port, srv.port);
    ASSERT_EQ(run_cmd(cmd, out, sizeof out), 0);
    ASSERT_STR_EQ(out, "hello 1.1 1\nhello 1.1 0\nhello 1.1 1\n");
    ASSERT_EQ(app_reap(srv.pid, "hello_server"), 0); /* a graceful end after --seconds */
    close(srv.out);
}

TEST(samples_hello_server_https) { hello_server_answers_https(1); }
TEST_TAGGED(samples_hello_server_https_two_threads_share_the_context, TEST_THREADS) { hello_server_answers_https(2); }

/* hello_server in the simulated world (ASYNC_SIM): one loop serves there, for --seconds of virtual time
 * (no real port, no wall-clock wait); without --seconds nothing in the world can ever reach it, which the
 * loop reports as a deadlock; --threads 2 is refused at once. */
TEST(samples_hello_server_in_the_simulated_world) {
    char out[512];
    ASSERT_EQ(run_cmd("env ASYNC_SIM=1 " SAMPLE "hello_server --seconds 30 2>&1", out, sizeof out), 0);
    ASSERT(strncmp(out, "Serving on http://127.0.0.1:", 28) == 0 && strstr(out, "/ with 1 thread\n") != NULL);
    ASSERT_EQ(run_cmd("env ASYNC_SIM=1 " SAMPLE "hello_server 2>&1", out, sizeof out), 1);
    ASSERT(strstr(out, "deadlock") != NULL);
    ASSERT_EQ(run_cmd("env ASYNC_SIM=1 " SAMPLE "hello_server --threads 2 --seconds 1 2>&1", out, sizeof out), 1);
    ASSERT(strstr(out, "the simulated world is one loop on one thread") != NULL);
    ASSERT(strstr(out, "hello_server: operation not supported") != NULL);
}
