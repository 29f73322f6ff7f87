/* Socket helpers the network test files share: raw listeners on 127.0.0.1, connected pairs, resets, and
 * a count of open descriptors for the tests that must leak none. Static inline: every test file may
 * include it, alone (make test TEST_SRC=...) or together in the runner. */
#ifndef NET_UTIL_H
#define NET_UTIL_H

#include "test.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

/* A listening socket on a free port of 127.0.0.1 that never accepts unless the test does. */
static inline int test_listen_raw(int backlog, int *port) {
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT(fd >= 0);
    ASSERT(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    ASSERT(listen(fd, backlog) == 0);
    ASSERT(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* A port with nothing listening on it (bound, then closed). */
static inline int test_closed_port(void) {
    int port, fd = test_listen_raw(1, &port);
    close(fd);
    return port;
}

/* Two connected TCP sockets on 127.0.0.1 (blocking; a stream made from one turns it non-blocking). */
static inline void test_tcp_pair(int fds[2]) {
    struct sockaddr_in a;
    int port, lfd = test_listen_raw(1, &port);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fds[0] = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT(fds[0] >= 0);
    ASSERT(connect(fds[0], (struct sockaddr *)&a, sizeof a) == 0);
    fds[1] = accept(lfd, NULL, NULL);
    ASSERT(fds[1] >= 0);
    close(lfd);
}

/* Makes the next close() of fd send a reset instead of a FIN. */
static inline void test_linger0(int fd) {
    struct linger l;
    l.l_onoff = 1;
    l.l_linger = 0;
    ASSERT(setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l) == 0);
}

/* Open descriptors below 1024: a test that must leak none compares this before and after. */
static inline int test_count_fds(void) {
    int fd, n = 0;
    for (fd = 0; fd < 1024; fd++) n += fcntl(fd, F_GETFD) != -1;
    return n;
}

#endif
