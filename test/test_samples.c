/* Every sample in samples/ run as a program: under the virtual clock, the seed's lines in the seed's
 * order in the seed's time; performance in real time, as the slide measures it; the network samples
 * against local peers (python's http.server, a port that refuses, a listener that never answers, curl,
 * nc clients), each bounded by `timeout`. */
#include "test.h"
#include "util.h"

#include <errno.h>
#include <poll.h>
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

/* The chat: an nc client's lines reach the others. Each step waits for what shows it happened, never for
 * a while: bob and carol are both in the room once one of them has seen the other join (whichever the
 * server took first), and only then does alice (nc) join and talk. */
TEST(samples_chat_server_broadcasts_between_nc_clients) {
    char cmd[256], bob_got[1024] = "", carol_got[1024] = "";
    test_server srv;
    int bob, carol, i;
    FILE *alice;
    const char *tail;
    test_need("nc");
    test_server_start(&srv, "exec " SAMPLE "chat_server --port 0"); /* it prints its port */
    bob = test_connect(srv.port, 0);
    carol = test_connect(srv.port, 0);
    ASSERT(bob >= 0 && carol >= 0);
    ASSERT(chat_read_until(bob, bob_got, sizeof bob_got, "Welcome! Your nickname? "));
    ASSERT(chat_read_until(carol, carol_got, sizeof carol_got, "Welcome! Your nickname? "));
    ASSERT(write(bob, "bob\n", 4) == 4);
    ASSERT(write(carol, "carol\n", 6) == 6);
    for (i = 0; i < 100 && !chat_read_for(bob, bob_got, sizeof bob_got, "* carol joined\n", 0.05) &&
                !chat_read_for(carol, carol_got, sizeof carol_got, "* bob joined\n", 0.05);
         i++) /* one of the two comes, within 10 s */
        ;
    ASSERT(i < 100);
    snprintf(cmd, sizeof cmd, "timeout 10 nc -N 127.0.0.1 %d > /dev/null", srv.port);
    fflush(NULL);
    alice = popen(cmd, "w");
    ASSERT(alice != NULL);
    fputs("alice\nhi from alice\n", alice);
    fflush(alice);
    ASSERT(chat_read_until(bob, bob_got, sizeof bob_got, "<alice> hi from alice\n"));
    ASSERT(chat_read_until(carol, carol_got, sizeof carol_got, "<alice> hi from alice\n"));
    ASSERT_EQ(pclose(alice), 0); /* its input ended, it shut its side down, the server closed */
    ASSERT(strncmp(bob_got, "Welcome! Your nickname? ", 24) == 0);
    tail = strstr(bob_got, "* alice joined\n");
    ASSERT(tail != NULL);
    ASSERT_STR_EQ(tail, "* alice joined\n<alice> hi from alice\n"); /* in order, and nothing else after */
    close(bob);
    close(carol);
    test_server_stop(&srv);
}

TEST(samples_chat_server_disconnects_a_slow_client) {
    char buf[4096], line[600], slow_got[256] = "", fast_got[256] = "";
    int port, slow, fast, talker, i, got_after = 0, st, progress[2];
    pid_t reader;
    ssize_t n;
    test_server srv;
    struct timeval tv = {3, 0};
    test_server_start(&srv, "exec " SAMPLE "chat_server --port 0");
    port = srv.port;
    slow = test_connect(port, 4096); /* a tiny receive window, and once in the room it never reads */
    fast = test_connect(port, 0);
    ASSERT(slow >= 0 && fast >= 0);
    setsockopt(fast, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ASSERT(chat_read_until(slow, slow_got, sizeof slow_got, "Welcome! Your nickname? "));
    ASSERT(chat_read_until(fast, fast_got, sizeof fast_got, "Welcome! Your nickname? "));
    ASSERT(write(slow, "slow\n", 5) == 5);
    ASSERT(write(fast, "fast\n", 5) == 5);
    /* both are in the room once one has seen the other join (whichever the server took first); the
     * talker's lines come after its own join, so they reach both */
    for (i = 0; i < 100 && !chat_read_for(slow, slow_got, sizeof slow_got, "* fast joined\n", 0.05) &&
                !chat_read_for(fast, fast_got, sizeof fast_got, "* slow joined\n", 0.05);
         i++)
        ;
    ASSERT(i < 100);
    talker = test_connect(port, 0);
    ASSERT(talker >= 0);
    ASSERT(write(talker, "talker\n", 7) == 7);
    memset(line, 'x', sizeof line);
    line[sizeof line - 1] = '\n';
    ASSERT(pipe(progress) == 0);
    fflush(NULL);
    memset(buf, 0, 4);
    reader = fork(); /* the fast client reads in a process of its own, as a real client would */
    ASSERT(reader >= 0);
    if (reader == 0) {
        close(progress[0]);
        for (;;) { /* keep the last 4 bytes in front: "END\n" may arrive split across reads */
            n = recv(fast, buf + 4, sizeof buf - 5, 0);
            if (n <= 0) _exit(n == 0 ? 1 : errno == EAGAIN ? 3 : 4);
            got_after += (int)n;
            if (write(progress[1], &got_after, sizeof got_after) != sizeof got_after) _exit(5);
            buf[4 + n] = '\0';
            if (strstr(buf, "END\n")) _exit(got_after > 3000 * 600 ? 0 : 2);
            memmove(buf, buf + n, 4);
        }
    }
    close(fast);
    close(progress[1]);
    for (i = 0; i < 3000; i++) { /* ~1.8 MB: far more than the slow client's window and queue hold */
        ASSERT(write(talker, line, sizeof line) == (ssize_t)sizeof line);
        /* a fast chatter, not a flood: never more than 200 KB ahead of the fast client, however long the
         * scheduler holds it (the slow client's share, its 1,024 queued lines, is 600 KB) */
        while ((i + 1) * (int)sizeof line - got_after > 200 * 1024)
            if (read(progress[0], &got_after, sizeof got_after) != sizeof got_after)
                test_fail(__FILE__, __LINE__, "the fast client stopped reading after %d bytes", got_after);
    }
    ASSERT(write(talker, "END\n", 4) == 4);
    while (read(progress[0], &got_after, sizeof got_after) > 0) /* the rest of its progress */
        ;
    close(progress[0]);
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
