/* W6 baseline without a coroutine framework: an HTTP/1.1 keep-alive server on raw libev callbacks whose
 * every request waits on an ev_timer of 10 ms (a stand-in for a backend) before its "hello" answer. It
 * bounds what a libev-based framework can reach on this workload.
 *
 *   libev_w6 PORT SECONDS     serves SECONDS s; port 0 picks a free one; prints "impl=c-raw-libev port=N"
 *                             once listening
 *
 * A request ends at its blank line (wrk sends GETs without a body). Pipelined requests of one connection
 * are answered in order, one 10 ms wait after the other, as the other W6 servers do. */
#define _GNU_SOURCE /* accept4, memmem */
#include <ev.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BACKEND_MS 10

static const char RESP[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello";

struct conn {
    ev_io io;
    ev_timer backend; /* the request in service: armed while one waits */
    size_t pending;   /* complete requests not answered yet, the one in service included */
    size_t len;       /* bytes of an incomplete request kept in buf */
    char buf[4096];
};

static void conn_close(struct ev_loop *loop, struct conn *c) {
    ev_io_stop(loop, &c->io);
    ev_timer_stop(loop, &c->backend);
    close(c->io.fd);
    free(c);
}

/* The backend answered: send the response, then start the next pipelined request's wait, if any. */
static void backend_cb(struct ev_loop *loop, ev_timer *t, int revents) {
    struct conn *c = (struct conn *)((char *)t - offsetof(struct conn, backend));
    (void)revents;
    if (write(c->io.fd, RESP, sizeof RESP - 1) != (ssize_t)(sizeof RESP - 1)) {
        conn_close(loop, c);
        return;
    }
    if (--c->pending) {
        ev_timer_set(&c->backend, BACKEND_MS / 1000., 0.);
        ev_timer_start(loop, &c->backend);
    }
}

static void conn_cb(struct ev_loop *loop, ev_io *w, int revents) {
    struct conn *c = (struct conn *)w;
    char *start = c->buf, *end;
    ssize_t r = read(w->fd, c->buf + c->len, sizeof c->buf - c->len);
    (void)revents;
    if (r <= 0) {
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
        conn_close(loop, c);
        return;
    }
    c->len += (size_t)r;
    while ((end = memmem(start, (size_t)(c->buf + c->len - start), "\r\n\r\n", 4)) != NULL) {
        if (c->pending++ == 0) {
            ev_timer_set(&c->backend, BACKEND_MS / 1000., 0.);
            ev_timer_start(loop, &c->backend);
        }
        start = end + 4;
    }
    c->len -= (size_t)(start - c->buf);
    memmove(c->buf, start, c->len);
    if (c->len == sizeof c->buf) conn_close(loop, c); /* a head larger than the buffer: refuse it */
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents) {
    (void)revents;
    for (;;) {
        int one = 1, fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK);
        struct conn *c;
        if (fd < 0) return;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        ev_io_init(&c->io, conn_cb, fd, EV_READ);
        ev_timer_init(&c->backend, backend_cb, BACKEND_MS / 1000., 0.);
        ev_io_start(loop, &c->io);
    }
}

static void stop_cb(struct ev_loop *loop, ev_timer *t, int revents) {
    (void)t;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

int main(int argc, char **argv) {
    struct ev_loop *loop = EV_DEFAULT;
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    ev_io acc;
    ev_timer stop;
    int one = 1, s;
    if (argc != 3) {
        fprintf(stderr, "usage: %s PORT SECONDS\n", argv[0]);
        return 2;
    }
    s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)atoi(argv[1]));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 4096) ||
        getsockname(s, (struct sockaddr *)&a, &alen)) {
        perror("libev_w6: socket/bind/listen");
        return 1;
    }
    printf("impl=c-raw-libev port=%d\n", ntohs(a.sin_port));
    fflush(stdout);
    ev_io_init(&acc, accept_cb, s, EV_READ);
    ev_io_start(loop, &acc);
    ev_timer_init(&stop, stop_cb, atof(argv[2]), 0.);
    ev_timer_start(loop, &stop);
    ev_run(loop, 0);
    return 0;
}
