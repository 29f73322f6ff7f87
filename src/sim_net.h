/* Private to src/: simulated TCP (sim_net.c) as the network layers call it. When a stream or a server
 * belongs to a simulated loop, each of its system calls goes to the counterpart below instead of the OS:
 * the numbers are the world's descriptors (async__sim_fd_new), never the process's, so a world's number
 * must never reach close(2) or recv(2). Each returns what the system call would, with the error as an
 * ASYNC_E* code (no errno): ASYNC_EAGAIN where the call would block.
 *
 * The semantics (sim_net.c has the details): a connect reaches the listener of its address after the
 * connection's one-way latency and is answered after another; each direction is an ordered byte pipe
 * with the connection's latency and bandwidth, and a window (bytes in flight and unread) beyond which a
 * send would block; a close sends the end of the stream after what was sent, or a reset if the closer
 * left input unread; bytes arriving at a closed end reset the connection (as TCP answers them with RST). */
#ifndef ASYNC_SIM_NET_H
#define ASYNC_SIM_NET_H

#include "sim.h"

struct sockaddr;
struct sockaddr_storage;

/** connect(2) on a new socket of the world: ASYNC_EINPROGRESS with *fd set (the socket turns writable
 *  when the connect has ended, and async__sim_net_error says how), or ASYNC_EINVAL (an address of no family the world knows), ASYNC_ENOMEM. */
int async__sim_net_connect(async__sim *sim, const struct sockaddr *sa, unsigned len, int *fd);
/** getsockopt(SO_ERROR): 0 (connected, or still connecting), the connect's error (ASYNC_ECONNREFUSED), or
 *  the connection's (ASYNC_ECONNRESET); ASYNC_EBADF. */
int async__sim_net_error(async__sim *sim, int fd);
/** socket + bind + listen on sa (port 0: a free port, the lowest one above the last picked, so that a
 *  run picks the same ones): 0 with *fd and *port set, ASYNC_EADDRINUSE, ASYNC_EINVAL, ASYNC_ENOMEM. */
int async__sim_net_listen(async__sim *sim, const struct sockaddr *sa, unsigned len, int *fd, int *port);
/** accept4 on a listener: the new descriptor, ASYNC_EAGAIN (nothing waits), ASYNC_EBADF, ASYNC_EINVAL
 *  (not a listener). */
int async__sim_net_accept(async__sim *sim, int fd);
/** recv(2) (peek: MSG_PEEK, never cut short): bytes, 0 at the end of the stream, ASYNC_EAGAIN,
 *  ASYNC_ECONNRESET, ASYNC_EBADF. */
long async__sim_net_recv(async__sim *sim, int fd, void *buf, size_t n, bool peek);
/** send(2): the bytes taken (maybe fewer than n), ASYNC_EAGAIN (the window is full, or the connect has
 *  not ended), ASYNC_EPIPE (shut down), ASYNC_ECONNRESET, ASYNC_ENOMEM, ASYNC_EBADF. */
long async__sim_net_send(async__sim *sim, int fd, const void *buf, size_t n);
/** shutdown(SHUT_WR): the peer reads the end of the stream after what was sent. 0, ASYNC_ENOTCONN,
 *  ASYNC_EBADF. */
int async__sim_net_shutdown(async__sim *sim, int fd);
/** close(2): 0 or ASYNC_EBADF. POLL requests on fd fail with ASYNC_EBADF. */
int async__sim_net_close_fd(async__sim *sim, int fd);
/** getpeername(2) into *ss (*len its length): 0, ASYNC_ENOTCONN, ASYNC_EBADF. */
int async__sim_net_peer(async__sim *sim, int fd, struct sockaddr_storage *ss, unsigned *len);

/* ---- the simulated loop current on this thread (loop.c) ---- */

/** The world of the simulated loop that runs on this thread, or was made on it last (asyncio's
 *  get_running_loop): what async_server_listen, which has no loop at hand, listens in. NULL when no
 *  simulated loop was made on this thread or the last one was freed. Only simulated loops set it (when
 *  made, and at each of their passes), so that real loops pay nothing for it: a real loop run on a
 *  thread that also made a simulated one does not clear it. */
async__sim *async__sim_current(void);

#endif
