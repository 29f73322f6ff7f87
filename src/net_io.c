/* fd readiness: AWAIT_READABLE / AWAIT_WRITABLE.
 *
 * A wait is a future in the caller's async_io, completed by an ev_io (the readiness bits) or an ev_timer
 * (ASYNC_ETIMEDOUT). Both watchers live in the async_io's opaque storage and run only while a task waits:
 * the check step that resumes the task stops them, whichever way the wait ended. Stopping and restarting an ev_io on the same fd between two epoll_waits
 * costs no system call: libev only calls epoll_ctl when the interest set really changes. */
#include "net.h"

#include <ev.h>
#include <fcntl.h>
#include <stdlib.h>

typedef struct io_watchers {
    ev_io io;
    ev_timer timer;
} io_watchers;

typedef char io_storage_fits[sizeof(io_watchers) <= sizeof(((async_io *)0)->ev) ? 1 : -1];

/* Which field of async_task's flags says what `owner` points to (the core's private encoding). */
#define NET_OWNER_MASK 0x03u
#define NET_OWN_LOOP 0x01u
#define NET_OWN_GROUP 0x02u
#define NET_OWN_TASK 0x03u


struct ev_loop *net__ev_of(async_loop *loop) {
    /* a hosted loop's backend is the loop itself (ev_loop.c); the virtual clock never polls the OS */
    if (!loop || loop->backend != (void *)loop || !loop->clock) return NULL;
    return async_loop_ev(loop);
}

int net__raise(async_task *t, int code) {
    async__raise(t, async_error_of(code)); /* every caller's code is in the table (async__errno_code's are) */
    return ASYNC__RAISE;
}

static io_watchers *watchers(async_io *w) { return (io_watchers *)(void *)w->ev.bytes; }

static async_io *io_of(io_watchers *x) {
    return (async_io *)(void *)((char *)x - offsetof(async_io, ev));
}

static void stop_watchers(async_io *w) {
    io_watchers *x = watchers(w);
    struct ev_loop *ev;
    if (!w->loop) return;
    ev = async_loop_ev(w->loop);
    ev_io_stop(ev, &x->io);
    ev_timer_stop(ev, &x->timer);
    w->loop = NULL;
}

/* The callbacks leave the ev_io running until the woken task's check step stops it: a loop whose last
 * active watcher stopped inside ev_run would take the wake-up for a deadlock. Nothing runs twice: the
 * task runs before libev polls again, and completing a complete future is a no-op. */
static void io_cb(struct ev_loop *ev, ev_io *io, int revents) {
    async_io *w = io_of((io_watchers *)(void *)io);
    unsigned bits = 0;
    ev_timer_stop(ev, &watchers(w)->timer);
    if (revents & EV_ERROR) { /* libev could not watch the fd: it was closed under the wait */
        async_future_set_error(&w->ready, async_error_of(ASYNC_EBADF));
        return;
    }
    if (revents & EV_READ) bits |= ASYNC_IO_READ;
    if (revents & EV_WRITE) bits |= ASYNC_IO_WRITE;
    async_future_set_value(&w->ready, (intptr_t)bits);
}

static void timer_cb(struct ev_loop *ev, ev_timer *tm, int revents) {
    async_io *w = io_of((io_watchers *)(void *)((char *)tm - offsetof(io_watchers, timer)));
    (void)ev;
    (void)revents;
    async_future_set_error(&w->ready, async_error_of(ASYNC_ETIMEDOUT));
}

int async__io_start(async_task *t, async_io *w, int fd, unsigned events, int32_t ms) {
    async_loop *loop = async_task_loop(t);
    struct ev_loop *ev = net__ev_of(loop);
    io_watchers *x;
    int rc, evmask;
    if (!w || !events || (events & ~(unsigned)(ASYNC_IO_READ | ASYNC_IO_WRITE))) return net__raise(t, ASYNC_EINVAL);
    if (fd < 0) return net__raise(t, ASYNC_EBADF);
    if (!ev) {
        static const async_error no_os = {ASYNC_ENOTSUP, "fd waits need a loop that polls the OS (not the virtual clock)"};
        async__raise(t, &no_os);
        return ASYNC__RAISE;
    }
    /* Another task waits on w: its wait is left alone (its watchers stay). */
    if (async_future_init(&w->ready)) return net__raise(t, ASYNC_EBUSY);
    if (w->loop) stop_watchers(w); /* a wait abandoned earlier */
    x = watchers(w);
    /* The first wait of w on this fd: a number that is no open descriptor is ASYNC_EBADF here (libev
     * would abort the process on it, in its epoll_ctl assertion). One fcntl per fd, not per wait; F_GETFD
     * fails only with EBADF. */
    if ((x->io.cb != io_cb || x->io.fd != fd) && fcntl(fd, F_GETFD) < 0) return net__raise(t, ASYNC_EBADF);
    evmask = (events & ASYNC_IO_READ ? EV_READ : 0) | (events & ASYNC_IO_WRITE ? EV_WRITE : 0);
    /* The same fd and events as the last wait: restart without ev_io_set, which would make libev call
     * epoll_ctl again at its next poll (one system call per wait saved on a keep-alive connection). A
     * zeroed async_io never matches: streams zero theirs when they close, since a new socket may reuse
     * the number. */
    if (x->io.cb != io_cb || x->io.fd != fd || (x->io.events & (EV_READ | EV_WRITE)) != evmask)
        ev_io_init(&x->io, io_cb, fd, evmask);
    ev_io_start(ev, &x->io);
    ev_init(&x->timer, timer_cb);
    if (ms >= 0) {
        /* libev counts the timeout from its time of the last poll, which lags by however long this pass
         * has run so far: without the update a deadline fires that much early (seen: 52 ms for 60) */
        ev_now_update(ev);
        ev_timer_set(&x->timer, ms / 1000.0, 0.);
        ev_timer_start(ev, &x->timer);
    }
    w->loop = loop;
    rc = async__future_start(t, &w->ready);
    if (rc != ASYNC__WAIT) stop_watchers(w); /* cancelled before it could wait */
    return rc;
}

int async__io_check(async_task *t, async_io *w) {
    int rc = async__future_check(t, &w->ready);
    if (rc != ASYNC__WAIT) stop_watchers(w);
    return rc;
}

unsigned async_io_events(const async_io *w) {
    return w ? (unsigned)async_future_value(&w->ready) : 0;
}

void async_io_stop(async_io *w) {
    if (w) stop_watchers(w);
}
