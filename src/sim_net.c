/* Simulated TCP: the world's network part (sim.h), called by the network layers through sim_net.h.
 *
 * A listener is bound to host:port of the world. A connection joins a client end (the client's address
 * is the loopback address of the server's family, with a port of its own) and a server end; its one-way
 * latency is drawn in [latency_min_ms, latency_max_ms] when it is made, its bandwidth is the options'.
 *
 *   connect    the SYN reaches the listener after the latency: the server's end waits in the backlog
 *              (the listener is readable) and the answer reaches the client after the latency again
 *              (it turns writable, connected). Nothing listens, or refuse_pct draws: the answer is a
 *              refusal (ASYNC_ECONNREFUSED after one round trip).
 *   a pipe     each direction is an ordered list of segments, one per send: a segment leaves when the
 *              sender's link has sent what it was given before, takes len / bandwidth ms on it (0:
 *              unlimited; small sends share a ms, as on a real link), and arrives `latency` ms after its
 *              last byte left, so that L bytes sent on an idle connection arrive ceil(L / bandwidth) +
 *              latency ms later. Bytes in flight and unread count against the window: a send takes at
 *              most the room left, and none (would block) when it is full. A reader's receive makes
 *              room at once (no acknowledgement travels back).
 *   partial    partial_pct of sends take, and of receives return, a length drawn in [1, n - 1].
 *   reset      after reset_pct of sends the connection is reset: both ends fail with ASYNC_ECONNRESET
 *              at once (readable and writable), what was in flight or unread is lost.
 *   stall      stall_pct of segments are held, on their arrival, for a time drawn in [1, stall_max_ms];
 *              the later ones wait behind (TCP delivers in order).
 *   partition  while a host is cut (async_sim_partition), nothing reaches a connection one of whose
 *              ends is on that host, in either direction, the handshake included: segments wait, and
 *              a connect gets no answer (its deadline ends it). When the host heals, what waited is
 *              sent again and arrives `latency` ms later, as TCP's retransmission would.
 *   close      sends the end of the stream after what was sent (the peer reads it, then 0) unless the
 *              closer had input it had not read: then the connection is reset, as TCP resets it (the
 *              peer fails with ASYNC_ECONNRESET). Bytes arriving at an end already closed reset the
 *              connection too (TCP answers them with RST); a connection that a closing listener had
 *              not accepted yet is reset. shutdown(SHUT_WR) sends the end of the stream alone.
 *
 * Every happening is noted in the run's hash (ASYNC__SIM_NOTE_NET, a = connection number * 256 + kind
 * below), deliveries with their bytes. Descriptors are the world's (async__sim_fd_new); a table indexed
 * by number finds them (numbers are never reused: it grows by a pointer per descriptor the world ever
 * made). Memory is malloc's: the world is the hosted runtime's, and async__sim_net_close frees what is
 * left, a world freed with live connections included. A call that cannot allocate returns ASYNC_ENOMEM
 * (connect, listen, accept, send); where the world itself needs memory (a server's end when a SYN
 * arrives, a FIN, a reset travelling behind data) it turns the failure into a fault the program must
 * handle anyway: a refused connect, a reset connection. */
#define _POSIX_C_SOURCE 200809L
#include "sim_net.h"
#include "net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* What the hash is told (the low byte of a note's number). */
enum {
    N_LISTEN = 1, N_CONNECT, N_SYN, N_ESTABLISHED, N_REFUSED, N_ACCEPT, N_SEND, N_DELIVER, N_RECV, N_FIN,
    N_EOF, N_RESET, N_STALL, N_CLOSE, N_CUT, N_HEAL, N_BLOCKED
};

/* An address of the world: IPv4 (v6 false, the address in ip[0..3]) or IPv6, and a port. */
typedef struct net_addr {
    unsigned char ip[16];
    uint16_t port;
    bool v6;
} net_addr;

/* One send's bytes on their way and, once arrived, until they are read. A FIN is a segment of 0 bytes. */
typedef struct seg {
    struct seg *next;
    async_ms at;  /* when it arrives */
    size_t len, off; /* off: bytes read */
    bool fin, stalled;
    bool rst; /* a reset sent by an end that closed with input unread, or that got bytes once closed */
    unsigned char data[];
} seg;

struct sim_conn;

/* A direction of a connection: segments head..flight have arrived (readable), flight..tail are on
 * their way. */
typedef struct pipe_dir {
    async__sim_event ev; /* the arrival of `flight` */
    seg *head, *tail, *flight;
    size_t readable, in_flight; /* bytes */
    async_ms link_ms;           /* the sender's link is busy until link_ms and link_rem bytes of the */
    uint32_t link_rem;          /* next ms (bandwidth): small sends share a ms, as on a real link */
    bool blocked;               /* an arrival found the connection cut: it waits for the heal */
    bool eof;                   /* the FIN arrived */
    bool fin_sent;
    bool rst_sent;              /* a reset is on its way behind the data (see end_close) */
    struct sim_conn *conn;
    int dir; /* 0: client to server (written by end[0]), 1: server to client */
} pipe_dir;

enum { K_CONN = 1, K_LISTEN = 2 };
enum { S_CONNECTING = 1, S_OPEN, S_FAILED };

/* A socket of the world: a connection's end, or a listener. */
typedef struct sock {
    int fd; /* -1 for a server's end not accepted yet */
    async__sim_waiters waits; /* the POLL requests on fd (the world's: emptied when fd closes) */
    uint8_t kind, state;
    int side;  /* K_CONN: 0 client, 1 server */
    int error; /* the connect's failure, or the reset (sticky) */
    bool shut_wr;
    struct sim_conn *conn;
    struct sock *next; /* a server's end: in its listener's backlog; a listener: in the world's list */
    /* K_LISTEN */
    net_addr addr;
    struct sock *bl_head, *bl_tail;
} sock;

enum { HS_SYN = 1, HS_ACCEPT, HS_REFUSE, HS_DONE };

typedef struct sim_conn {
    struct sim_net *net;
    sock *end[2];    /* client, server; NULL once closed (the server's also before the SYN arrived) */
    pipe_dir p[2];   /* p[i] is written by end[i] and read by end[1 - i] */
    async__sim_event hs; /* the handshake's next arrival: the SYN, then the answer */
    uint8_t hs_state;
    bool hs_blocked, reset;
    async_ms latency;
    uint32_t bandwidth;
    net_addr client, server;
    uint64_t id;
    struct sim_conn *prev, *next; /* the world's connections */
} sim_conn;

typedef struct sim_net {
    async__sim *sim;
    sock **fds; /* by descriptor number, less ASYNC__SIM_FD_BASE */
    size_t nfds;
    unsigned open; /* descriptors open (the runner's census) */
    sim_conn *conns;
    sock *listeners;
    net_addr *cut; /* hosts cut off (ports unused) */
    size_t ncut, capcut;
    uint16_t next_port;
    uint64_t next_id;
} sim_net;

#define PORT_FIRST 49152u

static sim_net *net_of(async__sim *sim) { return (sim_net *)async__sim_net(sim); }
static async_ms now_of(const sim_net *n) { return async_loop_now(async__sim_loop(n->sim)); }

static void note(sim_net *n, uint64_t id, unsigned kind, const void *data, size_t len) {
    async__sim_note(n->sim, ASYNC__SIM_NOTE_NET, (int64_t)((id << 8) | kind), data, len);
}

/* A number's bytes in a fixed order, for a note. */
static void note_num(sim_net *n, uint64_t id, unsigned kind, uint64_t v) {
    unsigned char b[8];
    int i;
    for (i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
    note(n, id, kind, b, sizeof b);
}

/* ---- addresses ---- */

static int addr_from(const struct sockaddr *sa, unsigned len, net_addr *a) {
    memset(a, 0, sizeof *a);
    if (!sa) return ASYNC_EINVAL;
    if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;
        memcpy(a->ip, &s4->sin_addr, 4);
        a->port = ntohs(s4->sin_port);
        return 0;
    }
    if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;
        memcpy(a->ip, &s6->sin6_addr, 16);
        a->port = ntohs(s6->sin6_port);
        a->v6 = true;
        return 0;
    }
    return ASYNC_EINVAL;
}

static unsigned addr_to(const net_addr *a, struct sockaddr_storage *ss) {
    memset(ss, 0, sizeof *ss);
    if (a->v6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)(void *)ss;
        s6->sin6_family = AF_INET6;
        memcpy(&s6->sin6_addr, a->ip, 16);
        s6->sin6_port = htons(a->port);
        return sizeof *s6;
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)(void *)ss;
        s4->sin_family = AF_INET;
        memcpy(&s4->sin_addr, a->ip, 4);
        s4->sin_port = htons(a->port);
        return sizeof *s4;
    }
}

static bool host_eq(const net_addr *a, const net_addr *b) {
    return a->v6 == b->v6 && memcmp(a->ip, b->ip, a->v6 ? 16 : 4) == 0;
}

static bool host_any(const net_addr *a) {
    static const unsigned char zero[16];
    return memcmp(a->ip, zero, a->v6 ? 16 : 4) == 0;
}

/* The loopback address of a's family: a client's host, and where a connect to "any" goes. */
static void loopback(net_addr *a, bool v6) {
    memset(a->ip, 0, sizeof a->ip);
    a->v6 = v6;
    if (v6)
        a->ip[15] = 1;
    else
        a->ip[0] = 127, a->ip[3] = 1;
}

static bool host_cut(const sim_net *n, const net_addr *a) {
    size_t i;
    for (i = 0; i < n->ncut; i++)
        if (host_eq(&n->cut[i], a)) return true;
    return false;
}

static bool conn_cut(const sim_conn *c) {
    return c->net->ncut && (host_cut(c->net, &c->client) || host_cut(c->net, &c->server));
}

/* ---- descriptors ---- */

static int fd_put(sim_net *n, sock *s) {
    int fd = async__sim_fd_new(n->sim);
    size_t i = (size_t)(fd - ASYNC__SIM_FD_BASE);
    if (i >= n->nfds) {
        size_t cap = n->nfds ? n->nfds * 2 : 64;
        sock **p;
        while (cap <= i) cap *= 2;
        p = (sock **)realloc(n->fds, cap * sizeof *p);
        if (!p) return ASYNC_ENOMEM;
        memset(p + n->nfds, 0, (cap - n->nfds) * sizeof *p);
        n->fds = p;
        n->nfds = cap;
    }
    n->fds[i] = s;
    n->open++;
    s->fd = fd;
    return fd;
}

static sock *sock_of(const sim_net *n, int fd) {
    return fd >= ASYNC__SIM_FD_BASE && (size_t)(fd - ASYNC__SIM_FD_BASE) < n->nfds ? n->fds[fd - ASYNC__SIM_FD_BASE] : NULL;
}

/* fd's readiness may have changed (a server's end not accepted yet has no POLL to tell). */
static void changed(sim_net *n, const sock *s) {
    if (s && s->fd >= 0) async__sim_fd_changed(n->sim, s->fd);
}

/* ---- pipes ---- */

static size_t window(const sim_net *n) { return async__sim_options(n->sim)->window; }

static size_t room(const sim_net *n, const pipe_dir *p) {
    size_t used = p->in_flight + p->readable, w = window(n);
    return used < w ? w - used : 0;
}

static void pipe_free(sim_net *n, pipe_dir *p) {
    seg *s = p->head, *next;
    async__sim_cancel(n->sim, &p->ev);
    for (; s; s = next) {
        next = s->next;
        free(s);
    }
    p->head = p->tail = p->flight = NULL;
    p->readable = p->in_flight = 0;
}

/* The connection's reset: both ends fail, what was on its way or unread is lost. */
static void conn_reset(sim_conn *c) {
    sim_net *n = c->net;
    int i;
    if (c->reset) return;
    c->reset = true;
    note(n, c->id, N_RESET, NULL, 0);
    for (i = 0; i < 2; i++) pipe_free(n, &c->p[i]);
    for (i = 0; i < 2; i++) {
        if (!c->end[i]) continue;
        c->end[i]->error = ASYNC_ECONNRESET;
        if (c->end[i]->state == S_CONNECTING) c->end[i]->state = S_FAILED;
        changed(n, c->end[i]);
    }
}

/* Frees a connection both of whose ends are closed, once its handshake has nothing more to do. */
static void conn_maybe_free(sim_conn *c) {
    sim_net *n = c->net;
    if (c->end[0] || c->end[1] || (c->hs_state != HS_DONE && async__sim_scheduled(&c->hs))) return;
    if (c->hs_blocked && c->hs_state != HS_DONE) return; /* the heal finishes it */
    async__sim_cancel(n->sim, &c->hs);
    pipe_free(n, &c->p[0]);
    pipe_free(n, &c->p[1]);
    if (c->prev)
        c->prev->next = c->next;
    else
        n->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    free(c);
}

static void pipe_arrive(async__sim *sim, async__sim_event *ev);
static int pipe_push_seg(sim_net *n, pipe_dir *p, const void *data, size_t len, bool fin, bool rst);

/* Schedules the arrival of p's first segment on its way. */
static void pipe_schedule(sim_net *n, pipe_dir *p) {
    if (p->flight && !p->blocked) async__sim_at(n->sim, &p->ev, p->flight->at);
}

/* Puts a segment of len bytes (a FIN if fin) on its way. 0 or ASYNC_ENOMEM. */
static int pipe_push(sim_net *n, pipe_dir *p, const void *data, size_t len, bool fin) {
    return pipe_push_seg(n, p, data, len, fin, false);
}

/* Puts a segment on its way: len bytes, a FIN, or a reset (which, as TCP's, travels behind what the end
 * sent before it). 0 or ASYNC_ENOMEM. */
static int pipe_push_seg(sim_net *n, pipe_dir *p, const void *data, size_t len, bool fin, bool rst) {
    sim_conn *c = p->conn;
    seg *s = (seg *)malloc(sizeof *s + len);
    async_ms now = now_of(n);
    uint64_t total;
    if (!s) return ASYNC_ENOMEM;
    memset(s, 0, sizeof *s);
    s->len = len;
    s->fin = fin;
    s->rst = rst;
    if (len) memcpy(s->data, data, len);
    if ((int32_t)(p->link_ms - now) < 0) { /* the link was idle */
        p->link_ms = now;
        p->link_rem = 0;
    }
    if (c->bandwidth) {
        total = (uint64_t)p->link_rem + len;
        p->link_ms += (async_ms)(total / c->bandwidth);
        p->link_rem = (uint32_t)(total % c->bandwidth);
    }
    s->at = p->link_ms + (p->link_rem ? 1u : 0u) + c->latency; /* its last byte off the link, then the latency */
    if (p->tail)
        p->tail->next = s;
    else
        p->head = s;
    p->tail = s;
    p->in_flight += len;
    if (!p->flight) {
        p->flight = s;
        if (!async__sim_scheduled(&p->ev)) pipe_schedule(n, p);
    }
    return 0;
}

/* An end sends a reset behind what it sent (it closed with input unread, or bytes came for it once
 * closed): the peer reads what arrived before it, then ASYNC_ECONNRESET. The direction towards the end
 * that sent it is dropped (that end reads no more). */
static void rst_send(sim_net *n, sim_conn *c, int side) {
    pipe_dir *out = &c->p[side];
    pipe_free(n, &c->p[1 - side]);
    if (c->reset || out->rst_sent) return;
    out->rst_sent = out->fin_sent = true;
    if (pipe_push_seg(n, out, NULL, 0, false, true)) conn_reset(c); /* no memory: at once */
}

/* A reset sent by the end p is written by arrives at the other end. */
static void rst_arrive(sim_net *n, sim_conn *c, pipe_dir *p) {
    sock *r = c->end[1 - p->dir];
    c->reset = true;
    note(n, c->id, N_RESET, NULL, 0);
    pipe_free(n, &c->p[1 - p->dir]); /* what the reader sent is refused */
    if (r) {
        r->error = ASYNC_ECONNRESET; /* after what arrived before it is read (recv) */
        changed(n, r);
    }
}

/* The arrival of p's segments due now. */
static void pipe_arrive(async__sim *sim, async__sim_event *ev) {
    pipe_dir *p = (pipe_dir *)(void *)((char *)ev - offsetof(pipe_dir, ev));
    sim_conn *c = p->conn;
    sim_net *n = net_of(sim);
    const async_sim_options *o = async__sim_options(sim);
    async_ms now = now_of(n);
    sock *reader = c->end[1 - p->dir];
    seg *s;
    bool any = false;
    if (conn_cut(c)) {
        p->blocked = true;
        note(n, c->id, N_BLOCKED, NULL, 0);
        return;
    }
    while ((s = p->flight) != NULL && (int32_t)(s->at - now) <= 0) {
        if (!s->stalled && o->stall_max_ms && async__sim_chance(sim, o->stall_pct)) {
            s->stalled = true;
            s->at = now + (async_ms)async__sim_range(sim, 1, o->stall_max_ms);
            note_num(n, c->id, N_STALL, s->at - now);
            break;
        }
        p->flight = s->next;
        p->in_flight -= s->len;
        any = true;
        if (s->rst) {
            rst_arrive(n, c, p);
            conn_maybe_free(c);
            return;
        }
        if (s->fin) {
            p->eof = true;
            note(n, c->id, N_FIN, NULL, 0);
            continue;
        }
        p->readable += s->len;
        note(n, c->id, N_DELIVER, s->data, s->len);
        if (!reader && s->len) { /* bytes for an end that is closed: TCP answers with a reset */
            rst_send(n, c, 1 - p->dir);
            conn_maybe_free(c);
            return;
        }
    }
    pipe_schedule(n, p);
    if (any) changed(n, reader);
}

/* ---- the handshake ---- */

static sock *listener_of(sim_net *n, const net_addr *a) {
    sock *l, *any = NULL;
    for (l = n->listeners; l; l = l->next) {
        if (l->addr.port != a->port || l->addr.v6 != a->v6) continue;
        if (host_eq(&l->addr, a)) return l;
        if (host_any(&l->addr)) any = l;
    }
    return any;
}

static void hs_arrive(async__sim *sim, async__sim_event *ev) {
    sim_conn *c = (sim_conn *)(void *)((char *)ev - offsetof(sim_conn, hs));
    sim_net *n = net_of(sim);
    sock *l, *s;
    if (conn_cut(c)) { /* no answer: the heal sends it again */
        c->hs_blocked = true;
        note(n, c->id, N_BLOCKED, NULL, 0);
        return;
    }
    switch (c->hs_state) {
    case HS_SYN:
        if (!c->end[0]) { /* the client gave up: nothing to answer */
            c->hs_state = HS_DONE;
            conn_maybe_free(c);
            return;
        }
        l = listener_of(n, &c->server);
        s = l ? (sock *)calloc(1, sizeof *s) : NULL;
        if (!l || !s || async__sim_chance(sim, async__sim_options(sim)->refuse_pct)) {
            free(s);
            c->hs_state = HS_REFUSE;
            note(n, c->id, N_REFUSED, NULL, 0);
        } else {
            s->fd = -1;
            s->kind = K_CONN;
            s->state = S_OPEN;
            s->side = 1;
            s->conn = c;
            c->end[1] = s;
            if (l->bl_tail)
                l->bl_tail->next = s;
            else
                l->bl_head = s;
            l->bl_tail = s;
            c->hs_state = HS_ACCEPT;
            note(n, c->id, N_SYN, NULL, 0);
            changed(n, l);
        }
        async__sim_at(sim, &c->hs, now_of(n) + c->latency);
        return;
    case HS_ACCEPT:
        c->hs_state = HS_DONE;
        if (!c->end[0]) { /* the client closed meanwhile: its end answers with a reset */
            conn_reset(c);
            conn_maybe_free(c);
            return;
        }
        if (c->end[0]->state == S_CONNECTING) c->end[0]->state = S_OPEN;
        note(n, c->id, N_ESTABLISHED, NULL, 0);
        changed(n, c->end[0]);
        return;
    default: /* HS_REFUSE */
        c->hs_state = HS_DONE;
        if (c->end[0] && c->end[0]->state == S_CONNECTING) {
            c->end[0]->state = S_FAILED;
            c->end[0]->error = ASYNC_ECONNREFUSED;
            changed(n, c->end[0]);
        }
        conn_maybe_free(c);
        return;
    }
}

/* ---- the part's entry points (sim.h) ---- */

void *async__sim_net_open(async__sim *sim, int *err) {
    sim_net *n = (sim_net *)calloc(1, sizeof *n);
    if (!n) {
        *err = ASYNC_ENOMEM;
        return NULL;
    }
    n->sim = sim;
    n->next_port = PORT_FIRST;
    return n;
}

void async__sim_net_close(async__sim *sim, void *net) {
    sim_net *n = (sim_net *)net;
    sim_conn *c, *cn;
    sock *l, *ln;
    (void)sim;
    if (!n) return;
    /* the world ends: its schedule is not read again, so events need no cancelling */
    for (c = n->conns; c; c = cn) {
        int i;
        cn = c->next;
        for (i = 0; i < 2; i++) {
            seg *s, *sn;
            for (s = c->p[i].head; s; s = sn) {
                sn = s->next;
                free(s);
            }
            free(c->end[i]);
        }
        free(c);
    }
    for (l = n->listeners; l; l = ln) {
        ln = l->next;
        free(l);
    }
    free(n->fds);
    free(n->cut);
    free(n);
}

unsigned async__sim_net_count(const void *net) { return ((const sim_net *)net)->open; }

async__sim_waiters *async__sim_net_waiters(void *net, int fd) {
    sock *s = sock_of((sim_net *)net, fd);
    return s ? &s->waits : NULL;
}

int async__sim_net_ready(async__sim *sim, void *net, int fd) {
    sim_net *n = (sim_net *)net;
    sock *s = sock_of(n, fd);
    sim_conn *c;
    int r = 0;
    (void)sim;
    if (!s) return ASYNC_EBADF;
    if (s->kind == K_LISTEN) return s->bl_head ? ASYNC_IO_READ : 0;
    if (s->error) return ASYNC_IO_READ | ASYNC_IO_WRITE;
    if (s->state != S_OPEN) return 0;
    c = s->conn;
    if (c->p[1 - s->side].readable || c->p[1 - s->side].eof) r |= ASYNC_IO_READ;
    if (s->shut_wr || room(n, &c->p[s->side])) r |= ASYNC_IO_WRITE;
    return r;
}

/* ---- the layers' calls (sim_net.h) ---- */

static sock *conn_sock(sim_net *n, int fd, int *err) {
    sock *s = sock_of(n, fd);
    *err = !s ? ASYNC_EBADF : s->kind != K_CONN ? ASYNC_ENOTCONN : 0;
    return *err ? NULL : s;
}

int async__sim_net_connect(async__sim *sim, const struct sockaddr *sa, unsigned len, int *fd) {
    sim_net *n = net_of(sim);
    const async_sim_options *o = async__sim_options(sim);
    net_addr to;
    sim_conn *c;
    sock *s;
    int rc = addr_from(sa, len, &to);
    if (rc) return rc;
    if (host_any(&to)) loopback(&to, to.v6); /* as the OS connects "any" to the host itself */
    c = (sim_conn *)calloc(1, sizeof *c);
    s = (sock *)calloc(1, sizeof *s);
    if (!c || !s || (rc = fd_put(n, s)) < 0) {
        free(c);
        free(s);
        return ASYNC_ENOMEM;
    }
    *fd = rc;
    s->kind = K_CONN;
    s->state = S_CONNECTING;
    s->conn = c;
    c->net = n;
    c->end[0] = s;
    c->id = ++n->next_id;
    c->latency = (async_ms)async__sim_range(sim, o->latency_min_ms, o->latency_max_ms);
    c->bandwidth = o->bandwidth;
    c->server = to;
    loopback(&c->client, to.v6);
    c->client.port = n->next_port;
    n->next_port = (uint16_t)(n->next_port == 65535 ? PORT_FIRST : n->next_port + 1u);
    c->p[0].conn = c->p[1].conn = c;
    c->p[1].dir = 1;
    c->p[0].ev.fn = c->p[1].ev.fn = pipe_arrive;
    c->p[0].link_ms = c->p[1].link_ms = now_of(n);
    c->hs.fn = hs_arrive;
    c->hs_state = HS_SYN;
    c->next = n->conns;
    if (n->conns) n->conns->prev = c;
    n->conns = c;
    note_num(n, c->id, N_CONNECT, ((uint64_t)to.port << 32) | c->latency);
    async__sim_at(sim, &c->hs, now_of(n) + c->latency);
    return ASYNC_EINPROGRESS;
}

int async__sim_net_error(async__sim *sim, int fd) {
    int err;
    sock *s = conn_sock(net_of(sim), fd, &err);
    return s ? s->error : err;
}

/* A port of host a that no listener takes (a.port 0 picks one). */
static bool port_taken(const sim_net *n, const net_addr *a) {
    const sock *l;
    for (l = n->listeners; l; l = l->next)
        if (l->addr.port == a->port && l->addr.v6 == a->v6 &&
            (host_eq(&l->addr, a) || host_any(&l->addr) || host_any(a)))
            return true;
    return false;
}

int async__sim_net_listen(async__sim *sim, const struct sockaddr *sa, unsigned len, int *fd, int *port) {
    sim_net *n = net_of(sim);
    net_addr a;
    sock *l;
    int rc = addr_from(sa, len, &a), tries;
    if (rc) return rc;
    if (a.port == 0) { /* the next free one from the last picked: the same ones every run */
        for (tries = 0; tries <= 65535 - (int)PORT_FIRST; tries++) {
            a.port = n->next_port;
            n->next_port = (uint16_t)(n->next_port == 65535 ? PORT_FIRST : n->next_port + 1u);
            if (!port_taken(n, &a)) break;
        }
    }
    if (port_taken(n, &a)) return ASYNC_EADDRINUSE;
    l = (sock *)calloc(1, sizeof *l);
    if (!l || (rc = fd_put(n, l)) < 0) {
        free(l);
        return ASYNC_ENOMEM;
    }
    l->kind = K_LISTEN;
    l->addr = a;
    l->next = n->listeners;
    n->listeners = l;
    *fd = rc;
    *port = a.port;
    note_num(n, 0, N_LISTEN, a.port);
    return 0;
}

int async__sim_net_accept(async__sim *sim, int fd) {
    sim_net *n = net_of(sim);
    sock *l = sock_of(n, fd), *s;
    int rc;
    if (!l) return ASYNC_EBADF;
    if (l->kind != K_LISTEN) return ASYNC_EINVAL;
    s = l->bl_head;
    if (!s) return ASYNC_EAGAIN;
    if ((rc = fd_put(n, s)) < 0) return rc;
    l->bl_head = s->next;
    if (!l->bl_head) l->bl_tail = NULL;
    s->next = NULL;
    note_num(n, s->conn->id, N_ACCEPT, (uint64_t)rc);
    return rc;
}

long async__sim_net_recv(async__sim *sim, int fd, void *buf, size_t len, bool peek) {
    sim_net *n = net_of(sim);
    int err;
    sock *s = conn_sock(n, fd, &err);
    pipe_dir *p;
    size_t take, got = 0;
    seg *g;
    if (!s) return err;
    /* a reset that came behind data: the data is read first (as Linux's recv does) */
    if (s->error && (s->state != S_OPEN || !s->conn->p[1 - s->side].readable)) return s->error;
    if (s->state != S_OPEN) return ASYNC_EAGAIN;
    p = &s->conn->p[1 - s->side];
    if (!p->readable) {
        if (!p->eof) return ASYNC_EAGAIN;
        note(n, s->conn->id, N_EOF, NULL, 0);
        return 0;
    }
    if (!len) return 0;
    take = len < p->readable ? len : p->readable;
    if (!peek && take > 1 && async__sim_chance(sim, async__sim_options(sim)->partial_pct))
        take = (size_t)async__sim_range(sim, 1, take - 1);
    for (g = p->head; got < take; g = g->next) {
        size_t k = g->len - g->off;
        if (k > take - got) k = take - got;
        memcpy((char *)buf + got, g->data + g->off, k);
        got += k;
    }
    if (peek) return (long)take;
    got = 0;
    while (got < take || (p->head && p->head != p->flight && p->head->off == p->head->len)) {
        g = p->head;
        if (g->off < g->len) {
            size_t k = g->len - g->off;
            if (k > take - got) k = take - got;
            g->off += k;
            got += k;
        }
        if (g->off == g->len) { /* read (or a FIN): gone */
            p->head = g->next;
            if (!p->head) p->tail = NULL;
            free(g);
        }
    }
    p->readable -= take;
    note_num(n, s->conn->id, N_RECV, take);
    changed(n, s->conn->end[1 - s->side]); /* room for the writer */
    return (long)take;
}

long async__sim_net_send(async__sim *sim, int fd, const void *buf, size_t len) {
    sim_net *n = net_of(sim);
    int err;
    sock *s = conn_sock(n, fd, &err);
    sim_conn *c;
    size_t take;
    if (!s) return err;
    if (s->error) return s->error;
    if (s->state != S_OPEN) return ASYNC_EAGAIN;
    if (s->shut_wr) return ASYNC_EPIPE;
    if (!len) return 0;
    c = s->conn;
    take = room(n, &c->p[s->side]);
    if (!take) return ASYNC_EAGAIN;
    if (take > len) take = len;
    if (take > 1 && async__sim_chance(sim, async__sim_options(sim)->partial_pct))
        take = (size_t)async__sim_range(sim, 1, take - 1);
    if ((err = pipe_push(n, &c->p[s->side], buf, take, false)) != 0) return err;
    note_num(n, c->id, N_SEND, take);
    if (async__sim_chance(sim, async__sim_options(sim)->reset_pct)) conn_reset(c);
    return (long)take;
}

int async__sim_net_shutdown(async__sim *sim, int fd) {
    sim_net *n = net_of(sim);
    int err;
    sock *s = conn_sock(n, fd, &err);
    if (!s) return err;
    if (s->state != S_OPEN) return ASYNC_ENOTCONN;
    if (s->shut_wr || s->error) return 0;
    s->shut_wr = true;
    s->conn->p[s->side].fin_sent = true;
    changed(n, s);
    return pipe_push(n, &s->conn->p[s->side], NULL, 0, true);
}

/* A connection's end closes: the end of the stream, or a reset if it left input unread. */
static void end_close(sim_net *n, sock *s) {
    sim_conn *c = s->conn;
    c->end[s->side] = NULL;
    note(n, c->id, N_CLOSE, NULL, 0);
    if (!c->reset && s->state == S_OPEN) {
        if (c->p[1 - s->side].readable) {
            rst_send(n, c, s->side);
        } else if (!c->p[s->side].fin_sent) {
            c->p[s->side].fin_sent = true;
            if (pipe_push(n, &c->p[s->side], NULL, 0, true)) conn_reset(c); /* no memory for the FIN */
        }
    }
    free(s);
    conn_maybe_free(c);
}

int async__sim_net_close_fd(async__sim *sim, int fd) {
    sim_net *n = net_of(sim);
    sock *s = sock_of(n, fd), **pp;
    if (!s) return ASYNC_EBADF;
    async__sim_fd_closed(sim, fd); /* while fd still finds its waits */
    n->fds[fd - ASYNC__SIM_FD_BASE] = NULL;
    n->open--;
    if (s->kind == K_CONN) {
        end_close(n, s);
        return 0;
    }
    for (pp = &n->listeners; *pp != s; pp = &(*pp)->next) {}
    *pp = s->next;
    note_num(n, 0, N_CLOSE, s->addr.port);
    while (s->bl_head) { /* connections not accepted yet: reset */
        sock *e = s->bl_head;
        s->bl_head = e->next;
        conn_reset(e->conn);
        end_close(n, e);
    }
    free(s);
    return 0;
}

int async__sim_net_peer(async__sim *sim, int fd, struct sockaddr_storage *ss, unsigned *len) {
    int err;
    sock *s = conn_sock(net_of(sim), fd, &err);
    if (!s) return err;
    if (s->state != S_OPEN) return ASYNC_ENOTCONN;
    *len = addr_to(s->side ? &s->conn->client : &s->conn->server, ss);
    return 0;
}

/* ---- partitions (async/sim.h) ---- */

int async_sim_partition(async_loop *loop, const char *host, bool cut) {
    async__sim *sim = loop ? async__loop_sim(loop) : NULL;
    struct sockaddr_storage ss;
    unsigned len;
    net_addr a;
    sim_net *n;
    sim_conn *c;
    size_t i;
    if (!sim || !host || !*host || !net__numeric_addr(host, 0, &ss, &len)) return ASYNC_EINVAL;
    if (addr_from((struct sockaddr *)&ss, len, &a)) return ASYNC_EINVAL;
    n = net_of(sim);
    for (i = 0; i < n->ncut && !host_eq(&n->cut[i], &a); i++) {}
    if (cut) {
        if (i < n->ncut) return 0;
        if (n->ncut == n->capcut) {
            size_t cap = n->capcut ? n->capcut * 2 : 4;
            net_addr *p = (net_addr *)realloc(n->cut, cap * sizeof *p);
            if (!p) return ASYNC_ENOMEM;
            n->cut = p;
            n->capcut = cap;
        }
        n->cut[n->ncut++] = a;
        note(n, 0, N_CUT, a.ip, sizeof a.ip);
        return 0;
    }
    if (i == n->ncut) return 0;
    n->cut[i] = n->cut[--n->ncut];
    note(n, 0, N_HEAL, a.ip, sizeof a.ip);
    /* what waited is sent again: it arrives one latency from now */
    for (c = n->conns; c; c = c->next) {
        async_ms at = now_of(n) + c->latency;
        if (conn_cut(c)) continue;
        if (c->hs_blocked) {
            c->hs_blocked = false;
            async__sim_at(sim, &c->hs, at);
        }
        for (i = 0; i < 2; i++) {
            pipe_dir *p = &c->p[i];
            seg *s;
            if (!p->blocked) continue;
            p->blocked = false;
            for (s = p->flight; s; s = s->next)
                if ((int32_t)(s->at - at) < 0) s->at = at;
            pipe_schedule(n, p);
        }
    }
    return 0;
}
