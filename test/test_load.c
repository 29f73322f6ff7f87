/* Load on the HTTP server, with plain sockets from this process against samples/hello_server on
 * 127.0.0.1: 10,000 connections open at once and each answered, while slow clients, malformed requests
 * and abrupt disconnects come and go; a fresh client is answered promptly throughout. Bounded in count
 * and time; the server stops by itself (--seconds). */
#include <sys/prctl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#define LOAD_CONNECTIONS 10000

static double load_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Starts hello_server on a free port; returns its pid, *port its port. */
static pid_t load_start_server(int *port, int seconds) {
    char path[512], secs[16], line[64];
    int out[2];
    ssize_t n;
    size_t len = 0;
    pid_t pid;
    snprintf(path, sizeof path, "%s/hello_server", SAMPLES_DIR);
    snprintf(secs, sizeof secs, "%d", seconds);
    if (access(path, X_OK) != 0) test_fail(__FILE__, __LINE__, "%s is not built", path);
    if (pipe(out)) test_fail(__FILE__, __LINE__, "pipe failed");
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlives its test */
        dup2(out[1], 1);
        close(out[0]);
        execl(path, path, "--port", "0", "--seconds", secs, (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    while (len < sizeof line - 1 && (n = read(out[0], line + len, 1)) == 1 && line[len] != '\n') len++;
    line[len] = '\0';
    close(out[0]);
    *port = strrchr(line, ':') ? atoi(strrchr(line, ':') + 1) : 0; /* "Serving on http://127.0.0.1:PORT/ ..." */
    if (*port <= 0) test_fail(__FILE__, __LINE__, "hello_server printed no port: \"%s\"", line);
    return pid;
}

static int load_connect(int port) {
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

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
    double end = load_now() + ms / 1000.0;
    struct pollfd p;
    p.fd = fd;
    p.events = POLLIN;
    while (load_now() < end && len < sizeof buf - 1) {
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
    int port, i, answered = 0, status, probe, rounds;
    pid_t pid;
    double t0;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < LOAD_CONNECTIONS + 200) {
        printf("    skipped: needs %d open files, the hard limit is %lu\n", LOAD_CONNECTIONS + 200,
               (unsigned long)rl.rlim_max);
        return;
    }
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? LOAD_CONNECTIONS + 1000 : rl.rlim_max;
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &rl), 0); /* the server inherits it */
    pid = load_start_server(&port, 15);
    t0 = load_now();

    /* 10,000 connections, all open at once */
    for (i = 0; i < LOAD_CONNECTIONS; i++) {
        fds[i] = load_connect(port);
        if (fds[i] < 0) test_fail(__FILE__, __LINE__, "connection %d failed: %s", i, strerror(errno));
    }
    /* the troublemakers: slow clients (half a request, then nothing), malformed requests, clients that
     * vanish mid-request with a reset */
    for (rounds = 0; rounds < 3; rounds++) {
        int slow[20], bad, gone;
        struct linger lg = {1, 0};
        for (i = 0; i < 20; i++) {
            slow[i] = load_connect(port);
            ASSERT(slow[i] >= 0);
            load_send(slow[i], "GET / HT");
        }
        for (i = 0; i < 20; i++) {
            bad = load_connect(port);
            ASSERT(bad >= 0);
            load_send(bad, i % 2 ? "BLAH\r\n\r\n" : "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n");
            status = load_status(bad, 2000);
            ASSERT_EQ(status, 400);
            close(bad);
            gone = load_connect(port);
            ASSERT(gone >= 0);
            load_send(gone, "GET / HTTP/1.1\r\nHo");
            setsockopt(gone, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            close(gone); /* RST */
        }
        /* a fresh client is answered promptly while all of that is going on */
        probe = load_connect(port);
        ASSERT(probe >= 0);
        load_send(probe, load_get);
        ASSERT_EQ(load_status(probe, 1000), 200);
        close(probe);
        for (i = 0; i < 20; i++) close(slow[i]);
    }

    /* every one of the 10,000 asks and is answered */
    for (i = 0; i < LOAD_CONNECTIONS; i++) {
        load_send(fds[i], load_get);
        pfd[i].fd = fds[i];
        pfd[i].events = POLLIN;
    }
    while (answered < LOAD_CONNECTIONS && load_now() - t0 < 12) {
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
    {
        int st;
        kill(pid, SIGTERM);
        waitpid(pid, &st, 0);
    }
}

static const test_case load_tests[] = {
    TEST_ENTRY(load_ten_thousand_connections_with_slow_malformed_and_vanishing_clients)
    {NULL, NULL}
};
