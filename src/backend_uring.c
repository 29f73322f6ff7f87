/* The io_uring backend (liburing): the loop's wait is one io_uring_enter that submits the pass's
 * requests and blocks for their completions, on the real monotonic clock. The virtual clock stays on
 * libev (backend_ev.c); so does async_loop_attach.
 *
 * Requests and the kernel. A request's storage is the caller's and may be freed as soon as stop
 * returns, but a completion of the kernel's can come later. So the kernel never sees a request: each
 * operation in flight has a slot of the backend's (a growing array, reused once the kernel has posted
 * the slot's last completion), the completion's user_data names the slot, and the slot names the
 * request while it is started. Stopping a request unhooks it from its slot and queues a cancel
 * (IORING_OP_ASYNC_CANCEL, sent with the next io_uring_enter: no system call of its own); the slot's
 * late completion then finds no request and frees the slot. A poll reads no memory of the caller's, so
 * that is enough for POLL. An operation that reads or writes the caller's buffer is cancelled
 * synchronously instead (IORING_REGISTER_SYNC_CANCEL): when stop returns, the kernel is done with the
 * buffer.
 *
 * Deadlines are the backend's own, in a binary heap of the started requests that have one (no kernel
 * timer per request): the wait blocks until the earliest, and a request past its deadline completes
 * with ASYNC_ETIMEDOUT (its operation cancelled) or, for TIMER, 0.
 *
 * Wake-ups from other threads write an eventfd that the ring reads (an IORING_OP_READ always in flight,
 * into the state). Signals use the same eventfd: a signal's handler marks it pending and writes the
 * eventfd of the loop that has it, and the loop hands the delivery to its requests on its thread. A
 * handler rather than a signalfd: a signalfd sees only signals blocked in every thread of the process,
 * and a thread that does not block one (a worker of the pool, an application's thread) would take it
 * with its default action; a handler runs wherever the signal lands, as libev's does, and the
 * disposition is saved and restored through the table every backend shares (async__signal_claim). */
#define _GNU_SOURCE
#include "backend.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* user_data of the completions that name no slot */
#define UD_NONE 0u                  /* a cancel's own completion */
#define UD_WAKE 1u                  /* the eventfd's read */
#define UD_SLOT(i) ((uint64_t)(i) + 2u) /* slot i's operation */

#define NO_SLOT UINT32_MAX

/* An operation queued or in flight, until the kernel posts its completion: the request it completes
 * while one is hooked to it. */
typedef struct ur_slot {
    async__req *req;
    uint32_t next_free; /* free list, while free */
    unsigned sqe_idx;   /* its SQE's place in the submission queue, until submitted */
} ur_slot;

typedef struct ur_state {
    async_loop *loop;
    struct io_uring ring;
    int wakefd;
    uint64_t wake_buf; /* the eventfd's count, read by the ring */
    ur_slot *slots;
    uint32_t nslots, cap_slots, free_slot;
    async__req **heap; /* requests with a deadline, the earliest first */
    uint32_t nheap, cap_heap;
    unsigned alive;    /* started POLL and TIMER requests, SIGNAL ones that keep it, holds */
    unsigned signals;  /* SIGNAL requests started */
    async__req *sigs[ASYNC__NSIG]; /* started SIGNAL requests, by signal */
    async__req *sig_next; /* the next one a delivery being handed out will reach */
} ur_state;

/* A request's bytes. */
typedef struct ur_req {
    async__req_op op; /* first: a native operation's memory, the caller's (backend.h) */
    int64_t deadline; /* ns on the monotonic clock, while in the heap */
    uint32_t slot;    /* its operation's slot, or NO_SLOT */
    uint32_t heap_i;  /* index + 1 in the heap, or 0 */
    int checked_fd;   /* fd + 1 whose validity was checked (one fcntl per fd, not per wait) */
    async__req *sig_next;
} ur_req;

typedef char ur_req_fits[sizeof(ur_req) <= ASYNC__REQ_BACKEND_BYTES ? 1 : -1];

/* be_flags */
#define REQ_STARTED 0x01u /* counted in alive (POLL, TIMER) or listed (SIGNAL) */
#define REQ_FIRED 0x02u   /* completed: nothing more is passed on */
#define REQ_KEEP 0x04u    /* a SIGNAL request counted in alive */

static ur_req *ur_of(async__req *r) { return (ur_req *)(void *)r->be.bytes; }

static ur_state *state_of(const async_loop *loop) { return (ur_state *)async__loop_backend_state(loop); }

static int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static async_ms monotonic_ms(async_loop *loop) {
    (void)loop;
    /* truncated to the loop's wrap-safe 32-bit clock */
    return (async_ms)((uint64_t)mono_ns() / 1000000u);
}

/* ---- submissions ---- */

/* A free SQE: when the ring's queue is full, what is queued goes to the kernel first. NULL only if the
 * kernel takes none (its completion queue overflowed beyond what it keeps). */
static struct io_uring_sqe *get_sqe(ur_state *st) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&st->ring);
    if (!sqe) {
        io_uring_submit(&st->ring);
        sqe = io_uring_get_sqe(&st->ring);
    }
    return sqe;
}

static void arm_wake(ur_state *st) {
    struct io_uring_sqe *sqe = get_sqe(st);
    if (!sqe) return; /* the next wake-up's read is armed at the next completion */
    io_uring_prep_read(sqe, st->wakefd, &st->wake_buf, sizeof st->wake_buf, 0);
    io_uring_sqe_set_data64(sqe, UD_WAKE);
}

/* ---- slots ---- */

static uint32_t slot_new(ur_state *st, async__req *r) {
    uint32_t i;
    if (st->free_slot != NO_SLOT) {
        i = st->free_slot;
        st->free_slot = st->slots[i].next_free;
    } else {
        if (st->nslots == st->cap_slots) {
            uint32_t cap = st->cap_slots ? st->cap_slots * 2 : 64;
            ur_slot *s = (ur_slot *)realloc(st->slots, cap * sizeof *s);
            if (!s) return NO_SLOT;
            st->slots = s;
            st->cap_slots = cap;
        }
        i = st->nslots++;
    }
    st->slots[i].req = r;
    return i;
}

static void slot_free(ur_state *st, uint32_t i) {
    st->slots[i].req = NULL;
    st->slots[i].next_free = st->free_slot;
    st->free_slot = i;
}

/* An operation whose SQE is still queued here, not yet submitted, is taken back without the kernel: its
 * SQE becomes a no-op and the slot is free at once. True if so. */
static bool take_back_unsent(ur_state *st, uint32_t i) {
    struct io_uring_sq *sq = &st->ring.sq;
    unsigned idx = st->slots[i].sqe_idx;
    struct io_uring_sqe *sqe;
    if ((unsigned)(idx - sq->sqe_head) >= (unsigned)(sq->sqe_tail - sq->sqe_head)) return false;
    sqe = &sq->sqes[idx & sq->ring_mask];
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data64(sqe, UD_NONE);
    slot_free(st, i);
    return true;
}

/* Unhooks r from its operation, which the kernel drops (a cancel queued for the next submission);
 * the slot goes when its completion comes. */
static void slot_detach(ur_state *st, async__req *r) {
    ur_req *x = ur_of(r);
    uint32_t i = x->slot;
    struct io_uring_sqe *sqe;
    if (i == NO_SLOT) return;
    x->slot = NO_SLOT;
    st->slots[i].req = NULL;
    if (take_back_unsent(st, i)) return;
    sqe = get_sqe(st);
    if (!sqe) return; /* the operation stays until it completes; its completion finds no request */
    io_uring_prep_cancel64(sqe, UD_SLOT(i), 0);
    io_uring_sqe_set_data64(sqe, UD_NONE);
}

/* ---- deadlines ---- */

static bool heap_less(async__req *a, async__req *b) { return ur_of(a)->deadline < ur_of(b)->deadline; }

static void heap_set(ur_state *st, uint32_t i, async__req *r) {
    st->heap[i] = r;
    ur_of(r)->heap_i = i + 1;
}

static void heap_up(ur_state *st, uint32_t i) {
    async__req *r = st->heap[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!heap_less(r, st->heap[parent])) break;
        heap_set(st, i, st->heap[parent]);
        i = parent;
    }
    heap_set(st, i, r);
}

static void heap_down(ur_state *st, uint32_t i) {
    async__req *r = st->heap[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= st->nheap) break;
        if (c + 1 < st->nheap && heap_less(st->heap[c + 1], st->heap[c])) c++;
        if (!heap_less(st->heap[c], r)) break;
        heap_set(st, i, st->heap[c]);
        i = c;
    }
    heap_set(st, i, r);
}

/* Room for one more deadline: 0 or ASYNC_ENOMEM (asked before anything is started, so that nothing is
 * to undo). */
static int heap_reserve(ur_state *st) {
    if (st->nheap == st->cap_heap) {
        uint32_t cap = st->cap_heap ? st->cap_heap * 2 : 64;
        async__req **h = (async__req **)realloc(st->heap, cap * sizeof *h);
        if (!h) return ASYNC_ENOMEM;
        st->heap = h;
        st->cap_heap = cap;
    }
    return 0;
}

static void heap_add(ur_state *st, async__req *r, int64_t ms) {
    ur_of(r)->deadline = mono_ns() + ms * 1000000;
    st->heap[st->nheap] = r;
    heap_up(st, st->nheap++);
}

static void heap_remove(ur_state *st, async__req *r) {
    ur_req *x = ur_of(r);
    uint32_t i;
    async__req *last;
    if (!x->heap_i) return;
    i = x->heap_i - 1;
    x->heap_i = 0;
    last = st->heap[--st->nheap];
    if (i == st->nheap) return;
    heap_set(st, i, last);
    heap_up(st, i);
    heap_down(st, ur_of(last)->heap_i - 1);
}

/* ---- completions ---- */

static void complete(async__req *r, int result) {
    if (r->be_flags & REQ_FIRED) return;
    r->be_flags |= REQ_FIRED;
    r->cb(r, result);
}

/* A poll's revents as the request's bits: a hang-up or an error wakes both directions asked for, as
 * epoll reports them and libev passes them on. */
static int poll_bits(const async__req *r, int revents) {
    int bits = 0;
    if (revents & POLLNVAL) return ASYNC_EBADF;
    if ((r->events & ASYNC_IO_READ) && (revents & (POLLIN | POLLHUP | POLLERR | POLLRDHUP))) bits |= ASYNC_IO_READ;
    if ((r->events & ASYNC_IO_WRITE) && (revents & (POLLOUT | POLLHUP | POLLERR))) bits |= ASYNC_IO_WRITE;
    return bits;
}

static bool is_native(const async__req *r) { return r->kind >= ASYNC__REQ_RECV && r->kind <= ASYNC__REQ_ACCEPT; }

/* A completion's result as the request's: readiness bits for a poll, bytes for a native operation. */
static int result_of(const async__req *r, int res) {
    if (res == -ECANCELED) res = -EBADF; /* the kernel dropped it: the file went (closed under the wait) */
    if (res < 0) return async__errno_code(-res);
    return is_native(r) ? res : poll_bits(r, res);
}

/* Stops a native operation in flight so that the kernel is done with the caller's memory when this
 * returns: a synchronous cancel, then a look at the completions posted meanwhile (the kernel may have
 * finished first): such a result is handed out now, not lost. The slot goes when its completion is
 * reaped. */
static void native_cancel(ur_state *st, async__req *r) {
    ur_req *x = ur_of(r);
    uint32_t i = x->slot;
    struct io_uring_sync_cancel_reg reg;
    unsigned head, tail;
    bool found = false;
    int res = 0;
    x->slot = NO_SLOT;
    st->slots[i].req = NULL;
    if (take_back_unsent(st, i)) return; /* the kernel never saw it */
    memset(&reg, 0, sizeof reg);
    reg.addr = UD_SLOT(i);
    reg.timeout.tv_sec = -1;
    reg.timeout.tv_nsec = -1;
    /* a signal that comes while the kernel waits for an operation it cannot interrupt (one running on
     * its worker threads) ends the wait with EINTR, the operation still at work on the memory: again */
    while (io_uring_register_sync_cancel(&st->ring, &reg) == -EINTR) {}
    io_uring_get_events(&st->ring); /* completions still in the kernel's hands are posted */
    /* the posted completions, left in place (liburing's io_uring_for_each_cqe is C11 in a macro) */
    tail = __atomic_load_n(st->ring.cq.ktail, __ATOMIC_ACQUIRE);
    for (head = *st->ring.cq.khead; head != tail; head++) {
        struct io_uring_cqe *cqe = &st->ring.cq.cqes[head & st->ring.cq.ring_mask];
        if (cqe->user_data == UD_SLOT(i)) {
            found = true;
            res = cqe->res;
            break;
        }
    }
    if (found && res != -ECANCELED) complete(r, result_of(r, res));
}

static void run_signals(ur_state *st);

static void on_cqe(ur_state *st, uint64_t ud, int res) {
    uint32_t i;
    async__req *r;
    if (ud == UD_NONE) return;
    if (ud == UD_WAKE) {
        arm_wake(st);
        if (st->signals) run_signals(st);
        async__loop_run_posts(st->loop);
        return;
    }
    i = (uint32_t)(ud - UD_SLOT(0));
    if (i >= st->nslots) return;
    r = st->slots[i].req;
    slot_free(st, i);
    if (!r) return; /* stopped before the kernel answered */
    ur_of(r)->slot = NO_SLOT;
    heap_remove(st, r);
    complete(r, result_of(r, res));
}

/* Hands out the completions the kernel has posted; the number handed out. */
static unsigned reap(ur_state *st) {
    struct io_uring_cqe *cqe;
    unsigned n = 0;
    while (io_uring_peek_cqe(&st->ring, &cqe) == 0) {
        uint64_t ud = cqe->user_data;
        int res = cqe->res;
        io_uring_cqe_seen(&st->ring, cqe); /* before the callback, which may start and stop requests */
        on_cqe(st, ud, res);
        n++;
    }
    return n;
}

/* Completes the requests whose deadline has passed. */
static void expire(ur_state *st) {
    int64_t now;
    if (!st->nheap) return;
    now = mono_ns();
    while (st->nheap && ur_of(st->heap[0])->deadline <= now) {
        async__req *r = st->heap[0];
        heap_remove(st, r);
        if (is_native(r) && ur_of(r)->slot != NO_SLOT)
            native_cancel(st, r); /* its result, if the kernel finished first */
        else
            slot_detach(st, r);
        complete(r, r->kind == ASYNC__REQ_TIMER ? 0 : ASYNC_ETIMEDOUT);
    }
}

/* ---- signals ---- */

/* The loop's eventfd for each signal, and whether the signal came: written by the handler. */
static volatile sig_atomic_t sig_fd[ASYNC__NSIG];
static volatile sig_atomic_t sig_pending[ASYNC__NSIG];

static void sig_handler(int signo) {
    int saved = errno, fd = (int)sig_fd[signo];
    uint64_t one = 1;
    sig_pending[signo] = 1;
    if (fd > 0 && write(fd, &one, sizeof one) < 0) {} /* a full count wakes the loop all the same */
    errno = saved;
}

static void run_signals(ur_state *st) {
    int signo;
    for (signo = 1; signo < ASYNC__NSIG; signo++) {
        async__req *r;
        if (!st->sigs[signo] || !sig_pending[signo]) continue;
        sig_pending[signo] = 0;
        /* a callback may stop any request of the list: stop moves sig_next past the one it takes */
        for (r = st->sigs[signo]; r; r = st->sig_next) {
            st->sig_next = ur_of(r)->sig_next;
            r->cb(r, signo); /* multishot */
        }
        st->sig_next = NULL;
    }
}

static void signal_keep(ur_state *st, async__req *r, bool keep) {
    if (keep == ((r->be_flags & REQ_KEEP) != 0)) return;
    if (keep) {
        r->be_flags |= REQ_KEEP;
        st->alive++;
    } else {
        r->be_flags &= (uint8_t)~REQ_KEEP;
        st->alive--;
    }
}

static void stop_signal(ur_state *st, async__req *r) {
    ur_req *x = ur_of(r);
    int signo = x->checked_fd; /* a SIGNAL request keeps its signal there */
    async__req **pp;
    sigset_t one, old;
    signal_keep(st, r, false);
    r->be_flags &= (uint8_t)~REQ_STARTED;
    st->signals--;
    if (st->sig_next == r) st->sig_next = x->sig_next;
    for (pp = &st->sigs[signo]; *pp; pp = &ur_of(*pp)->sig_next) {
        if (*pp == r) {
            *pp = x->sig_next;
            break;
        }
    }
    x->sig_next = NULL;
    /* blocked meanwhile in this thread: a signal that comes waits for the restored disposition */
    sigemptyset(&one);
    sigaddset(&one, signo);
    pthread_sigmask(SIG_BLOCK, &one, &old);
    if (!st->sigs[signo]) sig_fd[signo] = 0;
    async__signal_release(st, signo);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static int start_signal(ur_state *st, async__req *r) {
    ur_req *x = ur_of(r);
    int signo = r->fd, rc;
    if (r->be_flags & REQ_STARTED) {
        if (x->checked_fd == signo) { /* started: only whether it keeps the loop alive changes */
            signal_keep(st, r, (r->events & ASYNC__SIGNAL_KEEP) != 0);
            return 0;
        }
        stop_signal(st, r); /* started for another signal */
    }
    rc = async__signal_claim(st, signo);
    if (rc) return rc;
    if (!st->sigs[signo]) { /* the loop's first request of it: the handler points at this loop */
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = sig_handler;
        sa.sa_flags = SA_RESTART;
        sigfillset(&sa.sa_mask);
        sig_fd[signo] = st->wakefd;
        if (sigaction(signo, &sa, NULL) != 0) {
            sig_fd[signo] = 0;
            async__signal_release(st, signo);
            return ASYNC_EINVAL;
        }
    }
    r->be_flags = REQ_STARTED;
    x->checked_fd = signo;
    x->slot = NO_SLOT;
    x->heap_i = 0;
    x->sig_next = st->sigs[signo];
    st->sigs[signo] = r;
    st->signals++;
    signal_keep(st, r, (r->events & ASYNC__SIGNAL_KEEP) != 0);
    return 0;
}

/* ---- starting and stopping ---- */

static void ur_stop(void *state, async__req *r) {
    ur_state *st = (ur_state *)state;
    if (!(r->be_flags & REQ_STARTED)) return;
    if (r->kind == ASYNC__REQ_SIGNAL) {
        stop_signal(st, r);
        return;
    }
    r->be_flags &= (uint8_t)~REQ_STARTED;
    st->alive--;
    heap_remove(st, r);
    if (is_native(r) && ur_of(r)->slot != NO_SLOT)
        native_cancel(st, r);
    else
        slot_detach(st, r);
}

/* Queues r's operation (a poll or a native one) in a new slot. */
static int start_op(ur_state *st, async__req *r) {
    ur_req *x = ur_of(r);
    struct io_uring_sqe *sqe;
    unsigned mask = (r->events & ASYNC_IO_READ ? POLLIN | POLLRDHUP : 0u) | (r->events & ASYNC_IO_WRITE ? POLLOUT : 0u);
    unsigned len = x->op.len > 0x7ffff000u ? 0x7ffff000u : (unsigned)x->op.len; /* Linux's own cap of one call */
    uint32_t i;
    /* a number that is no open descriptor fails here, as the table says, not later in the kernel: one
     * fcntl per fd of a request, not per wait (streams zero their request when they close) */
    if (r->kind == ASYNC__REQ_POLL && x->checked_fd != r->fd + 1) {
        if (fcntl(r->fd, F_GETFD) < 0) return ASYNC_EBADF;
        x->checked_fd = r->fd + 1;
    }
    if (r->fd < 0) return ASYNC_EBADF;
    sqe = get_sqe(st);
    if (!sqe) return ASYNC_ENOMEM;
    i = slot_new(st, r);
    if (i == NO_SLOT) {
        io_uring_prep_nop(sqe); /* the SQE is the ring's now: send it as a no-op */
        io_uring_sqe_set_data64(sqe, UD_NONE);
        return ASYNC_ENOMEM;
    }
    switch (r->kind) {
    case ASYNC__REQ_RECV:
        io_uring_prep_recv(sqe, r->fd, x->op.buf, len, 0);
        break;
    case ASYNC__REQ_SEND:
        io_uring_prep_send(sqe, r->fd, x->op.buf, len, MSG_NOSIGNAL);
        break;
    case ASYNC__REQ_READ:
        io_uring_prep_read(sqe, r->fd, x->op.buf, len, (uint64_t)x->op.offset);
        break;
    case ASYNC__REQ_WRITE:
        io_uring_prep_write(sqe, r->fd, x->op.buf, len, (uint64_t)x->op.offset);
        break;
    case ASYNC__REQ_ACCEPT:
        io_uring_prep_accept(sqe, r->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        break;
    default:
        io_uring_prep_poll_add(sqe, r->fd, mask);
        break;
    }
    io_uring_sqe_set_data64(sqe, UD_SLOT(i));
    st->slots[i].sqe_idx = st->ring.sq.sqe_tail - 1u;
    x->slot = i;
    return 0;
}

static int ur_start(void *state, async__req *r, int64_t ms) {
    ur_state *st = (ur_state *)state;
    ur_req *x = ur_of(r);
    int rc;
    if (r->kind == ASYNC__REQ_SIGNAL) return start_signal(st, r);
    if (r->kind != ASYNC__REQ_POLL && r->kind != ASYNC__REQ_TIMER && !is_native(r)) return ASYNC_ENOTSUP;
    if (r->kind == ASYNC__REQ_TIMER && ms < 0) return ASYNC_EINVAL;
    if (is_native(r) && (!x->op.buf || !x->op.len) && r->kind != ASYNC__REQ_WRITE && r->kind != ASYNC__REQ_ACCEPT)
        return ASYNC_EINVAL;
    ur_stop(st, r); /* started again without a stop: the earlier one goes */
    x->slot = NO_SLOT;
    x->heap_i = 0;
    if (ms >= 0 && (rc = heap_reserve(st)) != 0) return rc;
    if (r->kind != ASYNC__REQ_TIMER && (rc = start_op(st, r)) != 0) return rc;
    r->be_flags = REQ_STARTED;
    st->alive++;
    if (ms >= 0) heap_add(st, r, ms);
    return 0;
}

/* ---- waiting ---- */

static bool ur_wait(async_loop *loop, int32_t timeout_ms) {
    ur_state *st = state_of(loop);
    int64_t wait_ns = timeout_ms < 0 ? -1 : (int64_t)timeout_ms * 1000000;
    struct io_uring_cqe *cqe;
    /* what came while the pass ran needs no system call to be seen */
    if (reap(st) && async_loop_has_ready(loop)) wait_ns = 0;
    if (st->nheap) {
        int64_t d = ur_of(st->heap[0])->deadline - mono_ns();
        if (d < 0) d = 0;
        if (wait_ns < 0 || d < wait_ns) wait_ns = d;
    }
    if (wait_ns < 0 && !st->alive) { /* nothing could come: what is queued still goes (cancels) */
        if (io_uring_sq_ready(&st->ring)) io_uring_submit(&st->ring);
        reap(st);
        return st->alive != 0 || async_loop_has_ready(loop);
    }
    if (wait_ns == 0) {
        if (io_uring_sq_ready(&st->ring)) io_uring_submit(&st->ring);
    } else {
        struct __kernel_timespec ts;
        ts.tv_sec = wait_ns / 1000000000;
        ts.tv_nsec = wait_ns % 1000000000;
        /* one io_uring_enter: the pass's submissions, and the wait for one completion or the time */
        io_uring_submit_and_wait_timeout(&st->ring, &cqe, 1, wait_ns < 0 ? NULL : &ts, NULL);
    }
    reap(st);
    expire(st);
    return st->alive != 0 || async_loop_has_ready(loop);
}

static void ur_wake(async_loop *loop) {
    uint64_t one = 1;
    if (write(state_of(loop)->wakefd, &one, sizeof one) < 0) {} /* a full count wakes the loop all the same */
}

static void ur_hold(async_loop *loop, bool on) {
    ur_state *st = state_of(loop);
    if (on)
        st->alive++;
    else
        st->alive--;
}

/* ---- lifetime ---- */

/* The operations the backend needs: without one of them the ring is refused (the kernel is older). */
static bool ops_supported(struct io_uring *ring) {
    struct io_uring_probe *p = io_uring_get_probe_ring(ring);
    bool ok;
    if (!p) return false;
    ok = io_uring_opcode_supported(p, IORING_OP_POLL_ADD) && io_uring_opcode_supported(p, IORING_OP_ASYNC_CANCEL) &&
         io_uring_opcode_supported(p, IORING_OP_READ) && io_uring_opcode_supported(p, IORING_OP_NOP) &&
         io_uring_opcode_supported(p, IORING_OP_WRITE) && io_uring_opcode_supported(p, IORING_OP_RECV) &&
         io_uring_opcode_supported(p, IORING_OP_SEND) && io_uring_opcode_supported(p, IORING_OP_ACCEPT);
    io_uring_free_probe(p);
    return ok;
}

/* arg: an int where the reason goes (an errno value) when io_uring cannot be had, or NULL. */
static int ur_open(async_loop *loop, void *state, void *arg) {
    ur_state *st = (ur_state *)state;
    int *why = (int *)arg, rc;
    struct io_uring_params p;
    struct io_uring_sync_cancel_reg reg;
    st->loop = loop;
    st->free_slot = NO_SLOT;
    st->wakefd = -1;
    memset(&p, 0, sizeof p);
    /* a completion queue larger than the submission one: many connections each with a wait in flight;
     * completions run as the loop enters the kernel, not by interrupting it (5.19; without, older) */
    p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
    p.cq_entries = 4096;
    rc = io_uring_queue_init_params(256, &st->ring, &p);
    if (rc == -EINVAL) {
        memset(&p, 0, sizeof p);
        p.flags = IORING_SETUP_CQSIZE;
        p.cq_entries = 4096;
        rc = io_uring_queue_init_params(256, &st->ring, &p);
    }
    if (rc < 0) {
        if (why) *why = -rc;
        return rc == -ENOMEM ? ASYNC_ENOMEM : ASYNC_ENOTSUP;
    }
    if (!ops_supported(&st->ring) || !(p.features & IORING_FEAT_EXT_ARG)) {
        io_uring_queue_exit(&st->ring);
        if (why) *why = EOPNOTSUPP;
        return ASYNC_ENOTSUP;
    }
    /* blocking: the ring's read of a file opened O_NONBLOCK would answer EAGAIN instead of waiting */
    st->wakefd = eventfd(0, EFD_CLOEXEC);
    if (st->wakefd < 0) {
        if (why) *why = errno;
        io_uring_queue_exit(&st->ring);
        return ASYNC_ENOMEM;
    }
    /* the kernel cancels synchronously (6.0): asked for a request that is not there, it says ENOENT.
     * Needed: a native operation's stop must leave the caller's memory alone when it returns. */
    memset(&reg, 0, sizeof reg);
    reg.addr = UD_NONE;
    reg.timeout.tv_sec = -1;
    reg.timeout.tv_nsec = -1;
    if (io_uring_register_sync_cancel(&st->ring, &reg) != -ENOENT) { /* no stop that is safe for the caller's memory: the kernel is older than 6.0 */
        if (why) *why = EOPNOTSUPP;
        close(st->wakefd);
        io_uring_queue_exit(&st->ring);
        return ASYNC_ENOTSUP;
    }
    arm_wake(st);
    return 0;
}

static void ur_close(async_loop *loop) {
    ur_state *st = state_of(loop);
    int signo;
    /* a loop freed with signals still started (their owners went first): the dispositions go back */
    for (signo = 1; signo < ASYNC__NSIG; signo++)
        while (st->sigs[signo]) stop_signal(st, st->sigs[signo]);
    { /* the eventfd's read writes into this state: done before it goes */
        struct io_uring_sync_cancel_reg reg;
        memset(&reg, 0, sizeof reg);
        reg.addr = UD_WAKE;
        reg.timeout.tv_sec = -1;
        reg.timeout.tv_nsec = -1;
        while (io_uring_register_sync_cancel(&st->ring, &reg) == -EINTR) {} /* as native_cancel */
    }
    io_uring_queue_exit(&st->ring); /* the kernel drops what is in flight */
    close(st->wakefd);
    free(st->slots);
    free(st->heap);
}

const async_backend async__backend_uring = {
    "io_uring", ASYNC__BACKEND_IO | ASYNC__BACKEND_NATIVE, sizeof(ur_state), ur_open, ur_close, monotonic_ms, ur_wait,
    ur_start, ur_stop, ur_wake, ur_hold,
};
