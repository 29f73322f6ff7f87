/* Load on the HTTP server, with plain sockets from this process against samples/hello_server on
 * 127.0.0.1: 10,000 connections open at once and each answered, while slow clients, malformed requests
 * and abrupt disconnects come and go; a fresh client is answered promptly throughout. Bounded in count
 * and time; the server stops by itself (--seconds). */
#include "test.h"
#include "util.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define LOAD_CONNECTIONS 10000

static void load_send(int fd, const char *s) {
    size_t len = strlen(s), off = 0;
    while (off < len) {
        ssize_t n = send(fd, s + off, len - off, MSG_NOSIGNAL);
        if (n <= 0) test_fail(__FILE__, __LINE__, "send failed: %s", strerror(errno));
        off += (size_t)n;
    }
}

/* Reads one response (the server sends Content-Length: 5 "hello" or an error page) within `ms`. */
static int load_status(int fd, int ms) {
    char buf[1024];
    size_t len = 0;
    double end = now_s() + ms / 1000.0;
    struct pollfd p;
    p.fd = fd;
    p.events = POLLIN;
    while (now_s() < end && len < sizeof buf - 1) {
        ssize_t n;
        if (poll(&p, 1, 50) <= 0) continue;
        n = recv(fd, buf + len, sizeof buf - 1 - len, 0);
        if (n <= 0) break;
        len += (size_t)n;
        buf[len] = '\0';
        if (strstr(buf, "\r\n\r\n") && (strstr(buf, "\r\n\r\nhello") || !strstr(buf, " 200 "))) break;
    }
    buf[len] = '\0';
    return strncmp(buf, "HTTP/1.1 ", 9) == 0 ? atoi(buf + 9) : -1;
}

static const char load_get[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

TEST(load_ten_thousand_connections_with_slow_malformed_and_vanishing_clients) {
    static int fds[LOAD_CONNECTIONS];
    static struct pollfd pfd[LOAD_CONNECTIONS];
    static char got[LOAD_CONNECTIONS];
    struct rlimit rl;
    char cmd[512];
    int port, i, answered = 0, status, probe, rounds;
    test_server srv;
    double t0;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < LOAD_CONNECTIONS + 200)
        test_skip("needs %d open files, the hard limit is %lu", LOAD_CONNECTIONS + 200, (unsigned long)rl.rlim_max);
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? LOAD_CONNECTIONS + 1000 : rl.rlim_max;
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &rl), 0); /* the server inherits it */
    snprintf(cmd, sizeof cmd, "exec %s/hello_server --port 0 --seconds 15", SAMPLES_DIR); /* it prints its port */
    test_server_start(&srv, cmd);
    port = srv.port;
    t0 = now_s();

    /* 10,000 connections, all open at once */
    for (i = 0; i < LOAD_CONNECTIONS; i++) {
        fds[i] = test_connect(port, 0);
        if (fds[i] < 0) test_fail(__FILE__, __LINE__, "connection %d failed: %s", i, strerror(errno));
    }
    /* the troublemakers: slow clients (half a request, then nothing), malformed requests, clients that
     * vanish mid-request with a reset */
    for (rounds = 0; rounds < 3; rounds++) {
        int slow[20], bad, gone;
        struct linger lg = {1, 0};
        for (i = 0; i < 20; i++) {
            slow[i] = test_connect(port, 0);
            ASSERT(slow[i] >= 0);
            load_send(slow[i], "GET / HT");
        }
        for (i = 0; i < 20; i++) {
            bad = test_connect(port, 0);
            ASSERT(bad >= 0);
            load_send(bad, i % 2 ? "BLAH\r\n\r\n" : "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n");
            status = load_status(bad, 2000);
            ASSERT_EQ(status, 400);
            close(bad);
            gone = test_connect(port, 0);
            ASSERT(gone >= 0);
            load_send(gone, "GET / HTTP/1.1\r\nHo");
            setsockopt(gone, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            close(gone); /* RST */
        }
        /* a fresh client is answered promptly while all of that is going on */
        probe = test_connect(port, 0);
        ASSERT(probe >= 0);
        load_send(probe, load_get);
        ASSERT_EQ(load_status(probe, TEST_LONG_MS), 200); /* promptly: well before the 10,000 are answered */
        close(probe);
        for (i = 0; i < 20; i++) close(slow[i]);
    }

    /* every one of the 10,000 asks and is answered */
    for (i = 0; i < LOAD_CONNECTIONS; i++) {
        load_send(fds[i], load_get);
        pfd[i].fd = fds[i];
        pfd[i].events = POLLIN;
    }
    while (answered < LOAD_CONNECTIONS && now_s() - t0 < 12) {
        int ready = poll(pfd, LOAD_CONNECTIONS, 100);
        for (i = 0; ready > 0 && i < LOAD_CONNECTIONS; i++) {
            char buf[512];
            ssize_t n;
            if (got[i] || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            n = recv(fds[i], buf, sizeof buf - 1, 0);
            if (n <= 0) test_fail(__FILE__, __LINE__, "connection %d closed without an answer", i);
            buf[n] = '\0';
            if (strstr(buf, "\r\n\r\nhello")) {
                got[i] = 1;
                pfd[i].fd = -1;
                answered++;
            }
        }
    }
    ASSERT_EQ(answered, LOAD_CONNECTIONS);
    for (i = 0; i < LOAD_CONNECTIONS; i++) close(fds[i]);
    test_server_stop(&srv);
}
