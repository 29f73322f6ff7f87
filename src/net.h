/* Private to the network files of the hosted runtime (src/net_*.c, src/http_*.c): what one of them
 * offers the others. */
#ifndef ASYNC_NET_H
#define ASYNC_NET_H

#define _GNU_SOURCE
#include "backend.h"
#include "internal.h"

#include <errno.h>

/* Parses a numeric IPv4/IPv6 address or "localhost" (NULL: every IPv4 address) with a port into *ss;
 * false if host is a name that needs resolving (net_stream.c). */
struct sockaddr_storage;
int net__numeric_addr(const char *host, int port, struct sockaddr_storage *ss, unsigned *len);

/* ---- waits (net_io.c): an async_io is a future and a request of the loop's backend ---- */

/* A wait on w that another component ends with net__io_complete, with a deadline of ms (negative: none;
 * at most ASYNC_MS_MAX): ASYNC__WAIT, or ASYNC__RAISE (cancellation pending, ASYNC_EBUSY). Ended by
 * async__io_check like an fd wait. */
int net__io_wait(async_task *t, async_io *w, int64_t ms);
/* Ends the wait on w with value (nothing if it has ended already). */
void net__io_complete(async_io *w, intptr_t value);
/* True while w's request is started (a task waits on w, or was woken and has not resumed yet). */
bool net__io_waiting(const async_io *w);
/* Stops w's request and ends its wait with `why` (also when no task waits: the future is left failed). */
void net__io_fail(async_io *w, const async_error *why);

/* ---- name lookups (net_resolve.c): getaddrinfo as a job on the loop's thread pool ---- */

struct addrinfo;
typedef struct async__job net_lookup;
/* Starts resolving host:port (TCP) on the loop's pool; done(ctx) runs on the loop thread once the answer
 * is back, unless the lookup was ended first. NULL with *err set: ASYNC_EINVAL (a name too long to be
 * one), ASYNC_ENOMEM, ASYNC_EAGAIN (the pool could not start its threads), ASYNC_ENOTSUP. */
net_lookup *net__lookup_start(async_loop *loop, const char *host, int port, void (*done)(void *ctx), void *ctx,
                              int *err);
/* After done: 0 with *res the addresses (valid until net__lookup_end), or ASYNC_ENXIO (not resolved). */
int net__lookup_result(net_lookup *l, struct addrinfo **res);
/* Lets go of a lookup, done or not: its answer is freed now, or on the pool's side when it comes. */
void net__lookup_end(net_lookup *l);

/* ---- streams (net_stream.c) ---- */

/* A stream's flag (NS_* below) is set. */
bool net__stream_has(const async_stream *s, unsigned flag);
/* Sets or clears a stream's flag (the server's NS_SERVER and NS_IDLE). */
void net__stream_mark(async_stream *s, unsigned flag, bool on);
/* A server's stream between messages or not (NS_IDLE), in one call: twice per message. False, and
 * nothing changes, for a stream that is no server's. */
bool net__stream_mark_idle(async_stream *s, bool idle);

/* Adopts an accepted socket fd, of the simulated world `world` (async__sim *) or of the OS (NULL, and
 * already non-blocking), into a zeroed s: async_stream_open without its checks. */
void net__stream_adopt(async_stream *s, int fd, void *world);
/* recv(MSG_PEEK | MSG_DONTWAIT) on the stream's socket: bytes, 0 (the peer closed), ASYNC_EAGAIN, or an
 * error code (ASYNC_EBADF once closed). */
long net__stream_peek(async_stream *s, void *buf, size_t n);
/* shutdown(SHUT_WR) of the stream's socket: 0 or an error code. */
int net__stream_shutdown(async_stream *s);
/* getpeername of the stream's socket into *ss (*len its length): 0 or an error code. */
int net__stream_peer(const async_stream *s, struct sockaddr_storage *ss, unsigned *len);

/* Remaining ms of a deadline set ms ago for `deadline` (-1: none; 0 once passed). */
int32_t net__remaining(async_loop *loop, async_ms deadline, int32_t ms);

/* A stream's TLS session (tls.c), reached only through these pointers: net_stream.c never names a libssl
 * function, so a program that starts no TLS does not link libssl. recv and send answer as the socket
 * calls would: recv >0 bytes, 0 at the end; send the bytes taken; both ASYNC_EAGAIN with the readiness to
 * wait for in rwant / wwant (ASYNC_IO_READ or ASYNC_IO_WRITE: a TLS read may have to write, and a write to
 * read), or an error code (set as the stream's sticky error: the session cannot go on). close sends
 * close_notify when it can, frees the session and clears s->tls. */
typedef struct net_tls {
    long (*recv)(async_stream *s, void *buf, size_t n);
    long (*send)(async_stream *s, const void *buf, size_t n);
    void (*close)(async_stream *s);
    unsigned rwant, wwant;
    bool ready; /* the handshake is done: reads and writes may go through */
} net_tls;

/* ---- HTTP (http_server.c) ---- */

/* The IMF-fixdate of t ("Sun, 06 Nov 1994 08:49:37 GMT", RFC 9110 5.6.7) into out, NUL-terminated; spelled
 * by hand rather than by strftime, whose day and month names follow the locale. A t gmtime cannot take
 * is the epoch. */
void net__http_date(long long t, char out[32]);
/* The time of day, in seconds since the epoch, at the virtual time ms of a simulated world (async/sim.h):
 * 2000-01-01 00:00:00 UTC plus ms. The world reads no real clock, so that a seed replays its run byte
 * for byte: its Date headers and its files' Last-Modified are both made of this. */
long long net__sim_time_of_day(async_ms ms);
/* "Jan".."Dec", three letters each: net__http_date's months, and what parsing a date looks them up in. */
extern const char net__month_names[];

/* errno says the call would block. EWOULDBLOCK is EAGAIN on Linux: compared only where it differs. */
#if EWOULDBLOCK == EAGAIN
#define NET_WOULD_BLOCK(err) ((err) == EAGAIN)
#else
#define NET_WOULD_BLOCK(err) ((err) == EAGAIN || (err) == EWOULDBLOCK)
#endif

/* Stream flags */
#define NS_OPEN 0x01u       /* fd is ours and open */
#define NS_EOF 0x02u        /* the peer sent FIN */
#define NS_DRAINED 0x04u    /* the last recv came back short: wait for readiness before the next */
#define NS_SERVER 0x08u     /* the stream sits in a server connection block */
#define NS_IDLE 0x10u       /* between messages: a closing server cancels it */
#define NS_RDONE 0x20u      /* the pending read finished in its start step */
#define NS_WDONE 0x40u      /* the pending drain or connect finished in its start step */
#define NS_CONNECTING 0x80u /* a connect is in progress (waiting for writability) */
#define NS_RESOLVING 0x100u /* a connect waits for name resolution */

#endif
