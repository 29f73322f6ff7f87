/* The libev backend: the loop's clock and blocking wait, requests as libev watchers, wake-ups from other
 * threads through one ev_async, and embedding in an application's ev_loop. The only file that includes
 * <ev.h> besides the public async_loop_attach / async_loop_ev it defines.
 *
 * Two ways to drive the scheduler:
 *  - async_run (async_loop_new): the core runs passes, then the wait blocks in ev_run(EVRUN_ONCE) until
 *    the next timer is due or a watcher fires.
 *  - async_loop_attach: the application calls ev_run; an ev_prepare callback runs each pass (the whole
 *    batch of ready tasks in one callback) and the calls deferred to its end, one ev_timer stands for
 *    every sleeper, and an ev_idle keeps libev from blocking while tasks are ready.
 * Two tables: the real clock (every request), and the virtual clock (time jumps; threads and signals
 * work, fd waits and timers in real time do not).
 *
 * Signals are the process's, and libev lets one loop of the process watch a given signal (a second
 * one is an assertion failure, which aborts): a table shared by every loop of every backend
 * (async__signal_claim) says which loop has each signal, under a mutex, and keeps the disposition the signal had before its first request, which
 * the last request's stop puts back (libev itself leaves SIG_DFL behind). */
#define _POSIX_C_SOURCE 200809L
#include "backend.h"
#include "internal.h"

#include <ev.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>

typedef struct ev_state {
    async_loop *loop;
    struct ev_loop *ev;
    bool owns_ev;       /* made here (async_loop_new), not the application's */
    ev_timer timer;     /* the next timer deadline */
    ev_prepare prepare; /* attach mode: one pass per libev iteration */
    ev_idle idle;       /* attach mode: do not block while tasks are ready */
    ev_async wake;      /* calls posted from other threads */
    unsigned signals;   /* SIGNAL requests started */
    unsigned keep;      /* of which keep the loop alive (ASYNC__SIGNAL_KEEP) */
} ev_state;

/* A request's watchers, in its backend bytes: an fd wait and its deadline, or a signal. */
typedef union ev_req {
    struct {
        ev_io io;
        ev_timer timer;
    } fd;
    ev_signal sig;
} ev_req;

typedef char ev_req_fits[sizeof(ev_req) <= ASYNC__REQ_BACKEND_BYTES ? 1 : -1];

/* be_flags: the request has completed; later events of its watchers are not passed on */
#define REQ_FIRED 0x01u
/* be_flags of a started SIGNAL request: it holds a reference of the libev loop (keeps it alive) */
#define REQ_KEEP 0x02u

static ev_state *state_of(const async_loop *loop) { return (ev_state *)async__loop_backend_state(loop); }

static ev_req *watchers_of(async__req *r) { return (ev_req *)(void *)r->be.bytes; }

static async__req *req_of(void *watcher_in_req) {
    /* every watcher of an ev_req starts at its first byte or inside its fd struct */
    return (async__req *)(void *)((char *)watcher_in_req - offsetof(async__req, be));
}

static async_ms monotonic_ms(async_loop *loop) {
    struct timespec ts;
    (void)loop;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    /* truncated to the loop's wrap-safe 32-bit clock */
    return (async_ms)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}

/* ---- requests ---- */

static void complete(async__req *r, int result) {
    if (r->be_flags & REQ_FIRED) return;
    r->be_flags |= REQ_FIRED;
    r->cb(r, result);
}

/* The callbacks leave the ev_io running until the request is stopped (the woken task's check step does
 * it): a loop whose last active watcher stopped inside ev_run would take the wake-up for a deadlock.
 * Nothing completes twice: REQ_FIRED. */
static void io_cb(struct ev_loop *ev, ev_io *io, int revents) {
    async__req *r = req_of(io);
    unsigned bits = 0;
    ev_timer_stop(ev, &watchers_of(r)->fd.timer);
    if (revents & EV_ERROR) { /* libev could not watch the fd: it was closed under the wait */
        complete(r, ASYNC_EBADF);
        return;
    }
    if (revents & EV_READ) bits |= ASYNC_IO_READ;
    if (revents & EV_WRITE) bits |= ASYNC_IO_WRITE;
    complete(r, (int)bits);
}

static void deadline_cb(struct ev_loop *ev, ev_timer *tm, int revents) {
    async__req *r = req_of((char *)tm - offsetof(ev_req, fd.timer));
    (void)ev;
    (void)revents;
    complete(r, r->kind == ASYNC__REQ_TIMER ? 0 : ASYNC_ETIMEDOUT);
}

static void signal_cb(struct ev_loop *ev, ev_signal *w, int revents) {
    async__req *r = req_of(w);
    (void)ev;
    (void)revents;
    r->cb(r, r->fd); /* multishot */
}

static void start_deadline(struct ev_loop *ev, ev_req *x, int64_t ms) {
    ev_init(&x->fd.timer, deadline_cb);
    if (ms < 0) return;
    /* libev counts the timeout from its time of the last poll, which lags by however long this pass has
     * run so far: without the update a deadline fires that much early (seen: 52 ms for 60) */
    ev_now_update(ev);
    ev_timer_set(&x->fd.timer, (double)ms / 1000.0, 0.);
    ev_timer_start(ev, &x->fd.timer);
}

static int start_poll(ev_state *st, async__req *r, int64_t ms) {
    ev_req *x = watchers_of(r);
    int evmask = (r->events & ASYNC_IO_READ ? EV_READ : 0) | (r->events & ASYNC_IO_WRITE ? EV_WRITE : 0);
    bool same_fd = x->fd.io.cb == io_cb && x->fd.io.fd == r->fd;
    /* The first wait of this request on this fd: a number that is no open descriptor is ASYNC_EBADF
     * here (libev would abort the process on it, in its epoll_ctl assertion). One fcntl per fd, not per
     * wait; F_GETFD fails only with EBADF. */
    if (!same_fd && fcntl(r->fd, F_GETFD) < 0) return ASYNC_EBADF;
    /* The same fd and events as the last wait: restart without ev_io_set, which would make libev call
     * epoll_ctl again at its next poll (one system call per wait saved on a keep-alive connection). A
     * zeroed request never matches: streams zero theirs when they close, since a new socket may reuse
     * the number. */
    if (!same_fd || (x->fd.io.events & (EV_READ | EV_WRITE)) != evmask) ev_io_init(&x->fd.io, io_cb, r->fd, evmask);
    ev_io_start(st->ev, &x->fd.io);
    start_deadline(st->ev, x, ms);
    return 0;
}

/* ---- signals ---- */

/* Which loop of the process has each signal (whatever its backend: the owner is the backend's own
 * object), how many requests of it, and the disposition the signal had before the first of them. */
typedef struct sig_owner {
    const void *owner;
    unsigned requests;
    struct sigaction saved;
} sig_owner;

static pthread_mutex_t sig_mu = PTHREAD_MUTEX_INITIALIZER;
static sig_owner sig_owners[ASYNC__NSIG];

int async__signal_claim(const void *owner, int signo) {
    sig_owner *o;
    int rc = 0;
    if (signo <= 0 || signo >= ASYNC__NSIG || signo == SIGKILL || signo == SIGSTOP) return ASYNC_EINVAL;
    o = &sig_owners[signo];
    pthread_mutex_lock(&sig_mu);
    if (o->owner && o->owner != owner) {
        rc = ASYNC_EBUSY; /* another loop of the process has it */
    } else if (!o->requests && sigaction(signo, NULL, &o->saved) != 0) {
        rc = ASYNC_EINVAL; /* a number the C library keeps for itself */
    } else {
        o->owner = owner;
        o->requests++;
    }
    pthread_mutex_unlock(&sig_mu);
    return rc;
}

void async__signal_release(const void *owner, int signo) {
    sig_owner *o = &sig_owners[signo];
    pthread_mutex_lock(&sig_mu);
    if (o->owner == owner && o->requests && --o->requests == 0) {
        sigaction(signo, &o->saved, NULL);
        o->owner = NULL;
    }
    pthread_mutex_unlock(&sig_mu);
}

/* A watched request gains or loses its hold on the libev loop. */
static void signal_keep(ev_state *st, async__req *r, bool keep) {
    if (keep == ((r->be_flags & REQ_KEEP) != 0)) return;
    if (keep) {
        ev_ref(st->ev);
        r->be_flags |= REQ_KEEP;
        st->keep++;
    } else {
        ev_unref(st->ev);
        r->be_flags &= (uint8_t)~REQ_KEEP;
        st->keep--;
    }
}

static void stop_signal(ev_state *st, async__req *r);

static int start_signal(ev_state *st, async__req *r) {
    ev_req *x = watchers_of(r);
    int signo = r->fd, rc;
    if (ev_is_active(&x->sig)) {
        if (x->sig.signum == signo) { /* started: only whether it keeps the loop alive changes */
            signal_keep(st, r, (r->events & ASYNC__SIGNAL_KEEP) != 0);
            return 0;
        }
        stop_signal(st, r); /* started for another signal */
    }
    rc = async__signal_claim(st->ev, signo);
    if (rc) return rc;
    r->be_flags = 0;
    ev_signal_init(&x->sig, signal_cb, signo);
    ev_signal_start(st->ev, &x->sig);
    st->signals++;
    ev_unref(st->ev); /* by default waiting for a signal does not keep the loop alive */
    signal_keep(st, r, (r->events & ASYNC__SIGNAL_KEEP) != 0);
    return 0;
}

/* Stops a started SIGNAL request; the last of its signal puts the old disposition back. The signal is
 * blocked in this thread meanwhile: between libev's SIG_DFL and the restore, a signal that comes waits
 * and meets the restored disposition (threads that do not block it could still meet SIG_DFL). */
static void stop_signal(ev_state *st, async__req *r) {
    ev_req *x = watchers_of(r);
    int signo = x->sig.signum;
    sigset_t one, old;
    signal_keep(st, r, false);
    ev_ref(st->ev);
    st->signals--;
    sigemptyset(&one);
    sigaddset(&one, signo);
    pthread_sigmask(SIG_BLOCK, &one, &old);
    ev_signal_stop(st->ev, &x->sig);
    async__signal_release(st->ev, signo);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* ---- starting and stopping ---- */

static int ev_start(void *state, async__req *r, int64_t ms) {
    ev_state *st = (ev_state *)state;
    ev_req *x = watchers_of(r);
    if (r->kind == ASYNC__REQ_SIGNAL) return start_signal(st, r);
    r->be_flags = 0;
    switch (r->kind) {
    case ASYNC__REQ_POLL:
        return start_poll(st, r, ms);
    case ASYNC__REQ_TIMER:
        if (ms < 0) return ASYNC_EINVAL;
        start_deadline(st->ev, x, ms);
        return 0;
    default:
        return ASYNC_ENOTSUP;
    }
}

static void ev_stop(void *state, async__req *r) {
    ev_state *st = (ev_state *)state;
    ev_req *x = watchers_of(r);
    if (r->kind == ASYNC__REQ_SIGNAL) {
        if (ev_is_active(&x->sig)) stop_signal(st, r);
        return;
    }
    ev_io_stop(st->ev, &x->fd.io);
    ev_timer_stop(st->ev, &x->fd.timer);
}

/* The virtual clock: its time is the scheduler's, and the OS's descriptors are not part of its world. */
static int ev_start_virtual(void *state, async__req *r, int64_t ms) {
    return r->kind == ASYNC__REQ_SIGNAL ? ev_start(state, r, ms) : ASYNC_ENOTSUP;
}

/* ---- waiting ---- */

static void timer_cb(struct ev_loop *ev, ev_timer *w, int revents) {
    (void)ev;
    (void)w;
    (void)revents; /* waking up is all it is for: the next pass fires the due sleepers */
}

static void idle_cb(struct ev_loop *ev, ev_idle *w, int revents) {
    (void)ev;
    (void)w;
    (void)revents;
}

static void wake_cb(struct ev_loop *ev, ev_async *w, int revents) {
    ev_state *st = (ev_state *)(void *)((char *)w - offsetof(ev_state, wake));
    (void)ev;
    (void)revents;
    async__loop_run_posts(st->loop);
}

/* Arms the single ev_timer for `timeout_ms` (stopped if negative; never 0: both callers handle "tasks
 * are ready" without the timer, so an armed interval is at least 1 ms). It repeats, so that once it has
 * fired it still holds the application's ev_run open until the next prepare callback runs the sleepers
 * it woke and re-arms it (or stops it when nothing is left). */
static void arm_timer(ev_state *st, int32_t timeout_ms) {
    ev_timer_stop(st->ev, &st->timer);
    if (timeout_ms > 0) {
        double s = timeout_ms / 1000.0;
        ev_timer_set(&st->timer, s, s);
        ev_timer_start(st->ev, &st->timer);
    }
}

static bool ev_wait(async_loop *loop, int32_t timeout_ms) {
    ev_state *st = state_of(loop);
    int active;
    if (timeout_ms == 0) { /* tasks are ready: look at I/O without blocking */
        ev_run(st->ev, EVRUN_NOWAIT);
        return true;
    }
    arm_timer(st, timeout_ms);
    active = ev_run(st->ev, EVRUN_ONCE);
    ev_timer_stop(st->ev, &st->timer);
    /* a callback that woke a task may have stopped the last active watcher: that is no deadlock */
    return active != 0 || async_loop_has_ready(loop);
}

/* The virtual clock: time jumps to the next timer (as async_run does without a wait), except while the
 * loop is held: calls on threads may wake tasks before that timer, so block for them first. A signal
 * that came meanwhile is delivered before time moves (one look, while signals are watched), and with
 * no timer left a signal that keeps the loop alive is waited for. */
static bool ev_wait_virtual(async_loop *loop, int32_t timeout_ms) {
    ev_state *st = state_of(loop);
    if (async__loop_held(loop)) {
        ev_run(st->ev, timeout_ms == 0 ? EVRUN_NOWAIT : EVRUN_ONCE);
        return true;
    }
    if (st->signals) {
        ev_run(st->ev, EVRUN_NOWAIT);
        if (async_loop_has_ready(loop)) return true;
    }
    if (timeout_ms < 0) {
        if (!st->keep) return false;
        ev_run(st->ev, EVRUN_ONCE);
        return true;
    }
    async_loop_advance(loop, (async_ms)timeout_ms);
    return true;
}

static void prepare_cb(struct ev_loop *ev, ev_prepare *w, int revents) {
    ev_state *st = (ev_state *)(void *)((char *)w - offsetof(ev_state, prepare));
    int32_t timeout = async_poll(st->loop);
    (void)revents;
    async__loop_pass_over(st->loop);
    if (timeout != 0 && async_loop_has_ready(st->loop)) timeout = 0; /* a deferred call woke a task */
    if (timeout == 0) {
        if (!ev_is_active(&st->idle)) ev_idle_start(ev, &st->idle);
    } else if (ev_is_active(&st->idle)) {
        ev_idle_stop(ev, &st->idle);
    }
    arm_timer(st, timeout > 0 ? timeout : -1);
}

static void ev_wake(async_loop *loop) { ev_async_send(state_of(loop)->ev, &state_of(loop)->wake); }

static void ev_hold(async_loop *loop, bool on) {
    ev_state *st = state_of(loop);
    if (on)
        ev_ref(st->ev);
    else
        ev_unref(st->ev);
}

/* ---- lifetime ---- */

static int ev_open(async_loop *loop, void *state, void *arg) {
    ev_state *st = (ev_state *)state;
    st->loop = loop;
    st->ev = (struct ev_loop *)arg;
    if (!st->ev) {
        st->ev = ev_loop_new(EVFLAG_AUTO);
        if (!st->ev) return ASYNC_ENOMEM;
        st->owns_ev = true;
    }
    ev_timer_init(&st->timer, timer_cb, 0., 0.);
    ev_idle_init(&st->idle, idle_cb);
    ev_prepare_init(&st->prepare, prepare_cb);
    ev_async_init(&st->wake, wake_cb);
    ev_async_start(st->ev, &st->wake);
    ev_unref(st->ev); /* never keeps ev_run going by itself: holds do */
    if (!st->owns_ev) {
        ev_prepare_start(st->ev, &st->prepare);
        ev_unref(st->ev); /* the prepare watcher alone does not keep the application's ev_run going */
    }
    return 0;
}

static void ev_close(async_loop *loop) {
    ev_state *st = state_of(loop);
    ev_timer_stop(st->ev, &st->timer);
    ev_idle_stop(st->ev, &st->idle);
    if (ev_is_active(&st->prepare)) {
        ev_ref(st->ev);
        ev_prepare_stop(st->ev, &st->prepare);
    }
    ev_ref(st->ev);
    ev_async_stop(st->ev, &st->wake);
    if (st->owns_ev) ev_loop_destroy(st->ev);
}

const async_backend async__backend_ev = {
    "libev", ASYNC__BACKEND_IO, sizeof(ev_state), ev_open, ev_close, monotonic_ms, ev_wait,
    ev_start, ev_stop, ev_wake, ev_hold,
};

const async_backend async__backend_ev_virtual = {
    "libev-virtual", 0, sizeof(ev_state), ev_open, ev_close, NULL, ev_wait_virtual,
    ev_start_virtual, ev_stop, ev_wake, ev_hold,
};

/* ---- the public libev API ---- */

async_loop *async_loop_attach(struct ev_loop *ev) { return ev ? async__hosted_new(&async__backend_ev, ev) : NULL; }

struct ev_loop *async_loop_ev(async_loop *loop) {
    const async_backend *be = async_loop_backend(loop);
    return be == &async__backend_ev || be == &async__backend_ev_virtual ? state_of(loop)->ev : NULL;
}
