/* POSIX signals on a hosted loop: loop.add_signal_handler, AWAIT_SIGNAL, and the runtime's own use of a
 * signal when nothing else listens to it (async_main's Ctrl-C).
 *
 * A loop keeps one record per signal number it has used, in a component attached to the loop and freed
 * with it: the application's handler, the tasks awaiting the next delivery (FIFO), and the runtime's
 * fallback. One SIGNAL request of the backend serves all of them: started while any of them listens,
 * keeping the loop alive while a handler or a task waits (the fallback alone does not), stopped when the
 * last one goes, which puts the signal's old disposition back. When the last task waiting goes, the stop
 * waits for the end of the pass, so that a task that waits again at once (a loop around AWAIT_SIGNAL)
 * does not leave the signal to its default action in between; removing a handler stops it at once.
 * Records stay until the loop is freed (one per signal number at most), so a handler may remove itself,
 * and a woken task wait again, while a delivery is being handed out. */
#define _POSIX_C_SOURCE 200809L
#include "backend.h"
#include "internal.h"

#include <stdlib.h>

typedef struct async__signals async__signals;
typedef struct sig_slot sig_slot;

struct sig_slot {
    async__req req;       /* the backend's SIGNAL request for signo */
    async__cb stop_later; /* stops req at the end of the pass if no one listens by then */
    sig_slot *next;
    async__signals *owner;
    int signo;
    bool started;
    async_sighandler fn; /* the application's handler */
    void *arg;
    async_sighandler fallback; /* the runtime's, when neither a handler nor a task listens */
    void *fallback_arg;
    async_sigwait *head, *tail; /* tasks awaiting the next delivery, in the order they began */
};

struct async__signals {
    async__part part; /* attached to the loop, which frees it */
    async_loop *loop;
    sig_slot *slots;
};

static const char signals_kind = 0; /* tags the part */

/* ---- records ---- */

/* A signal a handler can take on the loop, later, on its thread: not SIGKILL and SIGSTOP, which no one
 * can catch, nor the faults a thread raises against itself (SIGSEGV, SIGBUS, SIGFPE, SIGILL), whose
 * handler must act before the faulting instruction runs again. */
static bool signo_ok(int signo) {
    return signo > 0 && signo < ASYNC__NSIG && signo != SIGKILL && signo != SIGSTOP && signo != SIGSEGV &&
           signo != SIGBUS && signo != SIGFPE && signo != SIGILL;
}

static async__signals *signals_of(const async_loop *loop) {
    async__part *p = async__loop_find(loop, &signals_kind);
    return p ? (async__signals *)(void *)((char *)p - offsetof(async__signals, part)) : NULL;
}

static sig_slot *slot_find(const async_loop *loop, int signo) {
    async__signals *ss = signals_of(loop);
    sig_slot *s;
    for (s = ss ? ss->slots : NULL; s; s = s->next)
        if (s->signo == signo) return s;
    return NULL;
}

static void stop_later_fn(async_loop *loop, async__cb *cb);
static void slot_fired(async__req *r, int signo);
static void free_part(async_loop *loop, async__part *part);

/* The loop's record of signo, made if need be: NULL with *err ASYNC_ENOTSUP (a loop without the hosted
 * runtime) or ASYNC_ENOMEM. */
static sig_slot *slot_get(async_loop *loop, int signo, int *err) {
    async__signals *ss;
    sig_slot *s = slot_find(loop, signo);
    if (s) return s;
    if (!async__head_of(loop)) {
        *err = ASYNC_ENOTSUP;
        return NULL;
    }
    ss = signals_of(loop);
    if (!ss) {
        ss = (async__signals *)async__loop_alloc(loop, sizeof *ss);
        if (!ss) {
            *err = ASYNC_ENOMEM;
            return NULL;
        }
        memset(ss, 0, sizeof *ss);
        ss->loop = loop;
        async__loop_attach(loop, &ss->part, &signals_kind, ASYNC__STAGE_DOORS, free_part);
    }
    s = (sig_slot *)async__loop_alloc(loop, sizeof *s);
    if (!s) { /* the component stays, empty, until the loop goes */
        *err = ASYNC_ENOMEM;
        return NULL;
    }
    memset(s, 0, sizeof *s);
    s->owner = ss;
    s->signo = signo;
    s->req.cb = slot_fired;
    s->req.kind = ASYNC__REQ_SIGNAL;
    s->req.fd = signo;
    s->stop_later.fn = stop_later_fn;
    s->next = ss->slots;
    ss->slots = s;
    return s;
}

static void slot_stop(sig_slot *s) {
    async__loop_undefer(s->owner->loop, &s->stop_later);
    if (!s->started) return;
    async__req_stop(s->owner->loop, &s->req);
    s->started = false;
}

/* Starts or stops the request as the listeners say: a handler or a task keeps the loop alive, the
 * fallback alone does not. With no one left it stops at once (`now`) or at the end of the pass. 0, or
 * the backend's error when the request could not start (ASYNC_EBUSY: another loop has the signal;
 * ASYNC_EINVAL). */
static int slot_update(sig_slot *s, bool now) {
    async_loop *loop = s->owner->loop;
    bool keep = s->fn || s->head;
    int rc;
    if (!keep && !s->fallback) {
        if (now)
            slot_stop(s);
        else if (s->started)
            async__loop_defer(loop, &s->stop_later);
        return 0;
    }
    async__loop_undefer(loop, &s->stop_later);
    s->req.events = keep ? ASYNC__SIGNAL_KEEP : 0;
    rc = async__req_start(loop, &s->req, -1); /* when started already: only whether it keeps the loop */
    if (rc) return rc;
    s->started = true;
    return 0;
}

static void stop_later_fn(async_loop *loop, async__cb *cb) {
    sig_slot *s = (sig_slot *)(void *)((char *)cb - offsetof(sig_slot, stop_later));
    (void)loop;
    if (!s->fn && !s->head && !s->fallback) slot_stop(s);
}

/* A delivery, on the loop's thread: the waiting tasks are woken (they run on a later pass), then the
 * handler runs; the fallback only when neither listens. */
static void slot_fired(async__req *r, int signo) {
    sig_slot *s = (sig_slot *)(void *)((char *)r - offsetof(sig_slot, req));
    async_loop *loop = s->owner->loop;
    async_sighandler fn = s->fn;
    void *arg = s->arg;
    async_sigwait *w = s->head;
    if (!fn && !w) {
        if (s->fallback) s->fallback(loop, signo, s->fallback_arg);
        return;
    }
    s->head = s->tail = NULL;
    while (w) {
        async_sigwait *next = w->next;
        w->next = w->prev = NULL;
        w->slot = NULL;
        async_future_set_value(&w->done, signo);
        w = next;
    }
    if (fn)
        fn(loop, signo, arg);
    else
        slot_update(s, false);
}

/* At loop free: every request stops (the dispositions go back), waits left pending forget the record. */
static void free_part(async_loop *loop, async__part *part) {
    async__signals *ss = (async__signals *)(void *)((char *)part - offsetof(async__signals, part));
    sig_slot *s, *next;
    for (s = ss->slots; s; s = next) {
        async_sigwait *w;
        next = s->next;
        for (w = s->head; w; w = w->next) {
            w->slot = NULL;
            w->task = NULL;
        }
        slot_stop(s);
        async__loop_release(loop, s);
    }
    async__loop_release(loop, ss);
}

/* ---- handlers ---- */

int async_loop_add_signal_handler(async_loop *loop, int signo, async_sighandler fn, void *arg) {
    sig_slot *s;
    int rc = 0;
    if (!loop || !fn || !signo_ok(signo)) return ASYNC_EINVAL;
    s = slot_get(loop, signo, &rc);
    if (!s) return rc;
    if (s->fn) return ASYNC_EBUSY;
    s->fn = fn;
    s->arg = arg;
    rc = slot_update(s, true);
    if (rc) {
        s->fn = NULL;
        s->arg = NULL;
    }
    return rc;
}

int async_loop_remove_signal_handler(async_loop *loop, int signo) {
    sig_slot *s;
    if (!loop || !signo_ok(signo)) return ASYNC_EINVAL;
    if (!async__head_of(loop)) return ASYNC_ENOTSUP;
    s = slot_find(loop, signo);
    if (!s || !s->fn) return 0;
    s->fn = NULL;
    s->arg = NULL;
    slot_update(s, true);
    return 1;
}

int async__loop_signal_fallback(async_loop *loop, int signo, async_sighandler fn, void *arg) {
    sig_slot *s;
    int rc = 0;
    if (!loop || !signo_ok(signo)) return ASYNC_EINVAL;
    if (!fn) {
        s = slot_find(loop, signo);
        if (s && s->fallback) {
            s->fallback = NULL;
            s->fallback_arg = NULL;
            slot_update(s, true);
        }
        return 0;
    }
    s = slot_get(loop, signo, &rc);
    if (!s) return rc;
    if (s->fallback) return ASYNC_EBUSY;
    s->fallback = fn;
    s->fallback_arg = arg;
    rc = slot_update(s, true);
    if (rc) {
        s->fallback = NULL;
        s->fallback_arg = NULL;
    }
    return rc;
}

/* ---- AWAIT_SIGNAL ---- */


/* Takes w out of its signal's waiters (if it is still there); with no one left, the request stops now
 * or at the end of the pass (see slot_update). */
static void wait_end(async_sigwait *w, bool now) {
    sig_slot *s = (sig_slot *)w->slot;
    if (!s) return;
    if (w->prev)
        w->prev->next = w->next;
    else
        s->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        s->tail = w->prev;
    w->next = w->prev = NULL;
    w->slot = NULL;
    slot_update(s, now);
}

int async__sigwait_start(async_task *t, async_sigwait *w, int signo) {
    sig_slot *s;
    int rc = 0;
    if (!w || !signo_ok(signo)) return async__raise_error_code(t, ASYNC_EINVAL);
    /* another task waits on w (or was woken and has not resumed): its wait is left alone */
    if (w->task || async_future_init(&w->done)) return async__raise_error_code(t, ASYNC_EBUSY);
    s = slot_get(async_task_loop(t), signo, &rc);
    if (!s) return async__raise_error_code(t, rc);
    w->task = t;
    w->slot = s;
    w->next = NULL;
    w->prev = s->tail;
    if (s->tail)
        s->tail->next = w;
    else
        s->head = w;
    s->tail = w;
    rc = slot_update(s, true);
    if (rc) {
        wait_end(w, true);
        w->task = NULL;
        return async__raise_error_code(t, rc);
    }
    rc = async__future_start(t, &w->done);
    if (rc != ASYNC__WAIT) { /* a cancellation was pending: it never waited */
        wait_end(w, true);
        w->task = NULL;
    }
    return rc;
}

int async__sigwait_check(async_task *t, async_sigwait *w) {
    int rc = async__future_check(t, &w->done);
    if (rc != ASYNC__WAIT) { /* delivered (listed no more), or cancelled */
        wait_end(w, false);
        w->task = NULL;
    }
    return rc;
}
