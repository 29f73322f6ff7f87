/* Private to the network files of the hosted runtime (src/net_*.c, src/http_*.c). */
#ifndef ASYNC_NET_H
#define ASYNC_NET_H

#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>

struct ev_loop;

/* The libev loop under a hosted loop that polls the OS, or NULL (virtual clock, portable loop). */
struct ev_loop *net__ev_of(async_loop *loop);
/* Raises the static record of `code` in t; returns ASYNC__RAISE for the await helpers. */
int net__raise(async_task *t, int code);
/* Parses a numeric IPv4/IPv6 address or "localhost" (NULL: every IPv4 address) with a port into *ss;
 * false if host is a name that needs resolving. */
struct sockaddr_storage;
int net__numeric_addr(const char *host, int port, struct sockaddr_storage *ss, unsigned *len);

/* Lets go of a pending name resolution (the stream closes or the connect ended). */
void net__resolve_abandon(async_stream *s);
/* The name-resolution wait of a connect (net_resolve.c). */
int net__resolve_start(async_task *t, async_stream *s);
int net__resolve_check(async_task *t, async_stream *s);
/* Starts a non-blocking connect of s to an address: 0, ASYNC_EINPROGRESS, or an error (s closed). */
struct sockaddr;
int net__connect_addr(async_stream *s, const struct sockaddr *sa, unsigned len);

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
