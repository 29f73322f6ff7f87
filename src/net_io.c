/* Waits of the network layer: AWAIT_READABLE / AWAIT_WRITABLE, and waits that another component ends.
 *
 * A wait is a future in the caller's async_io, completed by a request of the loop's backend kept in the
 * async_io's opaque storage: a POLL request (the readiness bits, ASYNC_ETIMEDOUT at its deadline,
 * ASYNC_EBADF if the fd cannot be watched) or, for a wait that another component ends (a name lookup),
 * a TIMER request for its deadline alone. The request runs only while a task waits: the check step that
 * resumes the task stops it, whichever way the wait ended. */
#include "net.h"

typedef char req_fits[sizeof(async__req) <= sizeof(((async_io *)0)->ev) ? 1 : -1];


static async__req *req_of(async_io *w) { return (async__req *)(void *)w->ev.bytes; }

async_io *net__io_of(async__req *r) { return (async_io *)(void *)((char *)r - offsetof(async_io, ev)); }

static void stop_req(async_io *w) {
    if (!w->loop) return;
    async__req_stop(w->loop, req_of(w));
    w->loop = NULL;
}

/* The completions: the first outcome wins (a wait ended by someone else may meet its deadline after). */
static void io_done(async__req *r, int result) {
    async_io *w = net__io_of(r);
    if (async_future_done(&w->ready)) return;
    if (result < 0)
        async_future_set_error(&w->ready, async_error_of(result));
    else
        async_future_set_value(&w->ready, (intptr_t)result);
}

static void deadline_done(async__req *r, int result) {
    async_io *w = net__io_of(r);
    (void)result;
    if (!async_future_done(&w->ready)) async_future_set_error(&w->ready, async_error_of(ASYNC_ETIMEDOUT));
}

/* Starts w's request of kind (POLL: on fd for events; a native one: over op's memory, its completion
 * to cb) on t's loop and the wait on its future. */
static int wait_start(async_task *t, async_loop *loop, async_io *w, int kind, int fd, unsigned events, int64_t ms,
                      const async__req_op *op, async__req_cb cb) {
    async__req *r = req_of(w);
    int rc;
    /* Another task waits on w: its wait is left alone (its request stays). */
    if (async_future_init(&w->ready)) return async__raise_error_code(t, ASYNC_EBUSY);
    if (w->loop) stop_req(w); /* a wait abandoned earlier */
    r->cb = cb ? cb : kind == ASYNC__REQ_POLL ? io_done : deadline_done;
    if (op) *async__req_op_of(r) = *op; /* after the stop: the backend's bytes are free to take it */
    r->kind = (uint8_t)kind;
    r->fd = fd;
    r->events = (uint8_t)events;
    if (kind != ASYNC__REQ_TIMER || ms >= 0) { /* a wait ended by someone else needs no request without a deadline */
        rc = async__req_start(loop, r, ms);
        if (rc) return async__raise_error_code(t, rc);
    }
    w->loop = loop;
    rc = async__future_start(t, &w->ready);
    if (rc != ASYNC__WAIT) stop_req(w); /* cancelled before it could wait */
    return rc;
}

int async__io_start(async_task *t, async_io *w, int fd, unsigned events, int64_t ms) {
    async_loop *loop = async_task_loop(t);
    if (!w || !events || (events & ~(unsigned)(ASYNC_IO_READ | ASYNC_IO_WRITE))) return async__raise_error_code(t, ASYNC_EINVAL);
    if (fd < 0) return async__raise_error_code(t, ASYNC_EBADF);
    if (ms > ASYNC_MS_MAX) return async__raise_error_code(t, ASYNC_ERANGE); /* the loop's clock cannot hold the deadline */
    if (!async__loop_has_io(loop) && !async__loop_is_sim(loop)) { /* the world's descriptors are its own */
        static const async_error no_os = {ASYNC_ENOTSUP, "fd waits need a loop that polls the OS (not the virtual clock)"};
        async__raise(t, &no_os);
        return ASYNC__RAISE;
    }
    return wait_start(t, loop, w, ASYNC__REQ_POLL, fd, events, ms, NULL, NULL);
}

int net__io_native_start(async_task *t, async_io *w, int kind, int fd, const async__req_op *op, int64_t ms,
                         async__req_cb done) {
    if (ms > ASYNC_MS_MAX) return async__raise_error_code(t, ASYNC_ERANGE);
    return wait_start(t, async_task_loop(t), w, kind, fd, 0, ms, op, done);
}

int net__io_wait(async_task *t, async_io *w, int64_t ms) {
    if (ms > ASYNC_MS_MAX) return async__raise_error_code(t, ASYNC_ERANGE);
    return wait_start(t, async_task_loop(t), w, ASYNC__REQ_TIMER, -1, 0, ms, NULL, NULL);
}

void net__io_complete(async_io *w, intptr_t value) {
    if (!async_future_done(&w->ready)) async_future_set_value(&w->ready, value);
}

bool net__io_waiting(const async_io *w) { return w->loop != NULL; }

void net__io_fail(async_io *w, const async_error *why) {
    stop_req(w);
    if (!async_future_done(&w->ready)) async_future_set_error(&w->ready, why);
}

int async__io_check(async_task *t, async_io *w) {
    int rc = async__future_check(t, &w->ready);
    if (rc != ASYNC__WAIT) stop_req(w);
    return rc;
}

unsigned async_io_events(const async_io *w) {
    return w ? (unsigned)async_future_value(&w->ready) : 0;
}

void async_io_stop(async_io *w) {
    if (w) stop_req(w);
}
