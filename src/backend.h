/* The backend seam: the one table of functions through which the hosted runtime meets the world outside
 * the process (Redis ae's aeApi* + apidata, libuv's uv__io_*). Private to src/.
 *
 *   streams, servers, HTTP   files, to_thread     debug mode     remote doors
 *        \_______________________|___________________|_______________/
 *                     loop.c: the hosted loop (components attached, deferred and posted calls, holds)
 *                                           |  async_backend (this table)
 *            backend_ev.c (libev, real or virtual clock)  |  backend_uring.c (io_uring)  |  simulated world
 *
 * Its unit is the request, made for completions: a request is started, later it completes once with a
 * result (its callback runs on the loop's thread, never inside start), and it can be stopped (cancelled)
 * before that. Readiness is one kind of completion (ASYNC__REQ_POLL completes when the fd is ready), so
 * a backend built on completions (io_uring) and a simulated one (in-process sockets under the virtual
 * clock, every choice drawn from one seed) implement the same table, and the layers above never see
 * which one runs: they call the functions below, and only the backend's own file includes its library.
 *
 * The core's seam stays what firmware needs: a hosted loop's clock and wait (struct async_loop) are the
 * backend's `now` and, through loop.c, its `wait`; the table is found through async_loop_backend(), so
 * a hosted loop is recognised by its table. */
#ifndef ASYNC_BACKEND_H
#define ASYNC_BACKEND_H

#include "async.h"

#include <signal.h>

/* One past the largest signal number (NSIG is not POSIX; glibc's own name for it is _NSIG, 65 on Linux,
 * which is libev's EV_NSIG too). */
#if defined(NSIG)
#define ASYNC__NSIG NSIG
#elif defined(_NSIG)
#define ASYNC__NSIG _NSIG
#else
#define ASYNC__NSIG 65
#endif

typedef struct async__req async__req;

/** A request's completion, on the loop's thread: result >= 0 as its kind says, or an ASYNC_E* code. */
typedef void (*async__req_cb)(async__req *req, int result);

/** Kinds of request. */
enum {
    ASYNC__REQ_NONE = 0,
    /** fd ready for `events` (ASYNC_IO_READ | ASYNC_IO_WRITE): completes with the bits that are ready,
     *  ASYNC_ETIMEDOUT at the deadline, ASYNC_EBADF if the fd cannot be watched (closed under it).
     *  Starting it on a number that is no open descriptor fails with ASYNC_EBADF. Keeps the loop alive. */
    ASYNC__REQ_POLL = 1,
    /** Completes with 0 when its deadline (ms >= 0) has passed. Keeps the loop alive. */
    ASYNC__REQ_TIMER = 2,
    /** Completes with the signal number (fd) at each delivery until stopped (multishot), on the loop's
     *  thread, never inside the signal handler. Keeps the loop alive only with ASYNC__SIGNAL_KEEP in
     *  `events` (a task or an application's handler waits for it); without, waiting for the signal alone
     *  is no reason to keep running (debug mode's SIGQUIT, async_main's Ctrl-C). Starting a started
     *  request again for the same signal only takes its new `events`. A signal belongs to one loop of
     *  the process at a time (libev's rule): starting it on another fails with ASYNC_EBUSY; a number
     *  that is no signal the process can catch is ASYNC_EINVAL. The first request of a signal saves
     *  the process's disposition for it, and stopping the last one restores it. */
    ASYNC__REQ_SIGNAL = 3,
    /* Native operations (a backend with ASYNC__BACKEND_NATIVE; another answers ASYNC_ENOTSUP and the
     * layers keep to readiness and their own system calls). The kernel does the I/O: the request's
     * async__req_op (async__req_op_of) says on which memory, which must stay until the completion or
     * the stop. Each completes once with its result (bytes, or the accepted descriptor) or an ASYNC_E*
     * code, ASYNC_ETIMEDOUT at the deadline. Stopping one in flight cancels it in the kernel and waits
     * for that (a system call on that path alone), so that the memory can go when stop returns; if the
     * kernel finished it first, its completion runs inside stop with the real result, so that no byte
     * received and no connection accepted is lost. Keep the loop alive. */
    /** recv(fd, buf, len) on a socket: bytes, 0 at the end of the stream. */
    ASYNC__REQ_RECV = 4,
    /** send(fd, buf, len, MSG_NOSIGNAL) on a socket: bytes taken (maybe fewer than len). */
    ASYNC__REQ_SEND = 5,
    /** pread(fd, buf, len, offset): bytes, 0 at the end of the file. */
    ASYNC__REQ_READ = 6,
    /** pwrite(fd, buf, len, offset): bytes written. */
    ASYNC__REQ_WRITE = 7,
    /** accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC) on a listening socket: the new descriptor,
     *  which the completion owns (a completion handed out by a stop must close or keep it). */
    ASYNC__REQ_ACCEPT = 8,
    /** A call on a simulated thread (a backend with ASYNC__BACKEND_SIM; another answers ASYNC_ENOTSUP):
     *  completes with 0 once the world says the call has ended, after a delay of its choosing; the
     *  completion does the call's work, on the loop's thread. Keeps the loop alive. */
    ASYNC__REQ_CALL = 9
};

/** SIGNAL requests' `events`: the request keeps the loop alive. */
#define ASYNC__SIGNAL_KEEP 0x01u

/** Bytes a request keeps for its backend (libev: an ev_io and an ev_timer). */
#define ASYNC__REQ_BACKEND_BYTES 96

/** A native operation's memory and offset, at the start of the request's backend bytes: written by the
 *  caller before the start, on a loop whose backend has ASYNC__BACKEND_NATIVE only (the bytes are
 *  another backend's own). */
typedef struct async__req_op {
    void *buf;
    size_t len;
    int64_t offset; /* READ, WRITE */
} async__req_op;

/** A request: storage the caller owns (a frame field, a component's state), zeroed before its first
 *  start; a backend may keep what it learnt across starts of the same request (libev: the fd's epoll
 *  registration, reused when the next wait is for the same fd and events). */
struct async__req {
    async__req_cb cb;    /* the completion */
    int fd;              /* POLL: the descriptor; SIGNAL: the signal number */
    uint8_t kind;        /* ASYNC__REQ_* */
    uint8_t events;      /* POLL: ASYNC_IO_READ | ASYNC_IO_WRITE; SIGNAL: ASYNC__SIGNAL_KEEP */
    uint8_t be_flags;    /* the backend's */
    union {
        void *align_p;
        double align_d;
        long long align_ll;
        unsigned char bytes[ASYNC__REQ_BACKEND_BYTES];
    } be; /* the backend's */
};

/** What a backend can do besides its clock, wait, wake-ups and signals. */
enum {
    /** POLL and TIMER requests: waits on real descriptors in real time (not so on the virtual clock,
     *  whose time is the scheduler's own). */
    ASYNC__BACKEND_IO = 1u,
    /** The native operations (ASYNC__REQ_RECV and after). */
    ASYNC__BACKEND_NATIVE = 2u,
    /** The simulated world (backend_sim.c, sim.h): descriptors are the world's, the layers reach its
     *  sockets and files instead of the OS's, and calls on threads are CALL requests. */
    ASYNC__BACKEND_SIM = 4u
};

/** A backend: one table per kind (a file each), shared by every loop of that kind. Every function runs
 *  on the loop's thread except `wake`. */
struct async_backend {
    const char *name;
    unsigned caps;     /* ASYNC__BACKEND_* */
    size_t state_size; /* bytes of per-loop state, allocated with the hosted loop (async__loop_backend_state) */
    /** Makes the backend's state for a new loop in `state` (zeroed), before the loop itself is set up:
     *  it may keep the loop pointer but must not call it yet. `arg` is the constructor's (libev: an
     *  application's ev_loop to attach to, or NULL for a loop of its own). 0 or ASYNC_ENOMEM. */
    int (*open)(async_loop *loop, void *state, void *arg);
    /** Frees the state, after every component attached to the loop has gone. */
    void (*close)(async_loop *loop);
    /** The clock in ms (the core's loop->clock); NULL: the virtual clock. */
    async_ms (*now)(async_loop *loop);
    /** Blocks for completions up to timeout_ms (0: look without blocking; -1: no timer is set), runs
     *  their callbacks, and returns false only if nothing could ever wake the loop (the core's wait;
     *  loop.c calls it after the pass's deferred calls). A virtual clock's wait moves time on
     *  (async_loop_advance) instead, unless the loop is held (async__loop_held): then work on threads may
     *  still wake tasks before the next timer, and it blocks for that. */
    bool (*wait)(async_loop *loop, int32_t timeout_ms);
    /** Starts a request (its cb, kind, fd and events set), with a deadline of ms (negative: none; the
     *  caller has checked ms <= ASYNC_MS_MAX). 0, or ASYNC_ENOTSUP (a kind this backend does not do),
     *  ASYNC_EBADF, and for SIGNAL ASYNC_EINVAL, ASYNC_EBUSY. It gets the loop's backend state, not the loop: it runs for every wait of every
     *  request, and the state is then one load away (async__hosted_head). */
    int (*start)(void *state, async__req *req, int64_t ms);
    /** Stops a request: its callback will not run any more. Required after a completion too (a backend
     *  may hold the request until then: libev keeps an fd watcher active so that the loop is not taken
     *  for idle before the woken task ran); harmless on a zeroed request or a stopped one. */
    void (*stop)(void *state, async__req *req);
    /** Any thread: makes the loop's wait return soon and run async__loop_run_posts. */
    void (*wake)(async_loop *loop);
    /** The loop is held (work outside the backend's requests may still wake it: calls on threads, a
     *  remote door) or let go: while held, the wait blocks instead of reporting that nothing can come. */
    void (*hold)(async_loop *loop, bool on);
};

/* ---- what the layers above call (through the loop's table) ---- */

/** What a hosted loop's data (async_loop_backend_data, which a loop has only with a table) begins with:
 *  its table and the backend's state, so that a request reaches its backend in one call and two loads. */
typedef struct async__hosted_head {
    const async_backend *be;
    void *state;
} async__hosted_head;

static inline const async__hosted_head *async__head_of(const async_loop *loop) {
    return (const async__hosted_head *)async_loop_backend_data(loop);
}

/** True if the loop's backend waits on real descriptors (ASYNC__BACKEND_IO). */
static inline bool async__loop_has_io(const async_loop *loop) {
    const async__hosted_head *hh = async__head_of(loop);
    return hh && (hh->be->caps & ASYNC__BACKEND_IO);
}

/** True if the loop's backend is the simulated world (ASYNC__BACKEND_SIM). */
static inline bool async__loop_is_sim(const async_loop *loop) {
    const async__hosted_head *hh = async__head_of(loop);
    return hh && (hh->be->caps & ASYNC__BACKEND_SIM);
}

/** True if the loop's backend does the native operations (ASYNC__BACKEND_NATIVE). */
static inline bool async__loop_native(const async_loop *loop) {
    const async__hosted_head *hh = async__head_of(loop);
    return hh && (hh->be->caps & ASYNC__BACKEND_NATIVE);
}

/** The memory of a native operation (see async__req_op). */
static inline async__req_op *async__req_op_of(async__req *req) { return (async__req_op *)(void *)req->be.bytes; }

/** Starts req on the loop's backend: 0, ASYNC_ENOTSUP (no backend, or not this kind), ASYNC_EBADF. */
static inline int async__req_start(async_loop *loop, async__req *req, int64_t ms) {
    const async__hosted_head *hh = async__head_of(loop);
    return hh ? hh->be->start(hh->state, req, ms) : ASYNC_ENOTSUP;
}

/** Stops req (see async_backend.stop). */
static inline void async__req_stop(async_loop *loop, async__req *req) {
    const async__hosted_head *hh = async__head_of(loop);
    if (hh) hh->be->stop(hh->state, req);
}

/** A native operation (ASYNC__REQ_RECV and after; the loop has ASYNC__BACKEND_NATIVE) as the wait of the
 *  async_io w (net_io.c): over op's memory on fd, with a deadline of ms; its completion goes to done,
 *  which ends the wait (net__io_complete, net__io_fail) and may run inside a stop (see the kinds). The
 *  await's start: ASYNC__WAIT or a raise; the check is async__io_check's. */
int net__io_native_start(async_task *t, async_io *w, int kind, int fd, const async__req_op *op, int64_t ms,
                         async__req_cb done);
/** The async_io whose request r is. */
async_io *net__io_of(async__req *r);

/* ---- what a backend calls (loop.c) ---- */

/** A new hosted loop on backend be (arg goes to its open), with the monotonic or virtual clock the
 *  backend's `now` says, a heap allocator and errors no one retrieved printed to stderr. NULL if out of
 *  memory or the backend could not open. */
async_loop *async__hosted_new(const async_backend *be, void *arg);

/** The backend's per-loop state (state_size bytes). */
void *async__loop_backend_state(const async_loop *loop);
/** After each pass, before the backend waits when it drives the passes itself (a loop attached to an
 *  application's ev_run): runs the calls deferred to the end of the pass. */
void async__loop_pass_over(async_loop *loop);
/** On the loop's thread, after a wake: runs the calls posted from other threads. */
void async__loop_run_posts(async_loop *loop);
/** True while the loop is held (see async_backend.hold). */
bool async__loop_held(const async_loop *loop);

/** Signals are the process's: one loop at a time has a signal, whatever its backend (owner: the
 *  backend's object for the loop). The first claim of a signal saves its disposition, the release of the
 *  last puts it back. 0, ASYNC_EBUSY (another owner has it), ASYNC_EINVAL (no signal one can catch). */
int async__signal_claim(const void *owner, int signo);
void async__signal_release(const void *owner, int signo);

/** The libev backend (backend_ev.c): the real clock, or the virtual clock with threads but no fd waits. */
extern const async_backend async__backend_ev;
extern const async_backend async__backend_ev_virtual;
/** The io_uring backend (backend_uring.c): the real clock. Its open's arg is an int * that receives the
 *  errno value saying why io_uring cannot be had (the kernel or a sandbox refuses it), or NULL. */
extern const async_backend async__backend_uring;
/** The simulated world (backend_sim.c): the virtual clock, its own descriptors. Its open's arg is the
 *  const async_sim_options * to run by. */
extern const async_backend async__backend_sim;

#endif
