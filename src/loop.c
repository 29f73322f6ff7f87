/* The hosted loop: a core loop plus what every backend shares. It allocates the loop with the backend's
 * state, plugs the backend into the core's seam (clock, wait, allocator), and keeps the runtime's
 * bookkeeping that is no backend's business: the components attached to the loop and their free at
 * async_loop_free, the calls deferred to the end of a pass, the calls posted from other threads, and the
 * holds that keep the loop waiting. The layers above reach the backend through its table (backend.h). */
#define _POSIX_C_SOURCE 200809L
#include "backend.h"
#include "internal.h"
#include "sim_net.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Calls the loop makes later: a FIFO in which a call is queued at most once. */
typedef struct cb_fifo {
    async__cb *head, *tail;
} cb_fifo;

typedef struct async__hosted {
    async__hosted_head head;         /* first: the table and the backend's state (backend.h) */
    async_loop loop;
    const async_backend *be;
    async__part *parts;              /* attached components, by stage, the latest first within one */
    cb_fifo deferred;                /* to run at the end of the pass */
    unsigned holds;
    pthread_t thread;                /* the loop's thread (async__loop_on_thread): written under inbox_mu */
    pthread_mutex_t inbox_mu;        /* guards the posted calls and `thread` */
    cb_fifo inbox;                   /* posted from other threads */
    async__max_align state[];            /* the backend's */
} async__hosted;

/* The hosted state of loop, or NULL for a loop without a backend (the core keeps the data only with a
 * table: one call tells both). */
static async__hosted *hosted_of(const async_loop *loop) { return (async__hosted *)async_loop_backend_data(loop); }

static void *hosted_realloc(void *ctx, void *ptr, size_t size) {
    (void)ctx;
    if (size == 0) { /* the core's way of freeing */
        free(ptr);
        return NULL;
    }
    return realloc(ptr, size);
}

static void hosted_report(async_loop *loop, async_task *task, const async_error *error, void *ctx) {
    const char *function = NULL, *name = async_task_name(task);
    (void)ctx;
    /* a task with no name of its own (names cost a field: ASYNC_CONFIG_TASK_NAMES) is told by its
     * coroutine's function, which costs nothing */
    if (strcmp(name, "task") == 0 && async_task_where(task, NULL, &function, NULL) && function) name = function;
    /* error is never NULL: only a task that raised is reported, and async__raise stores EINVAL's record
     * for a NULL error */
    fprintf(stderr, "async: error never retrieved in %s: %s (%d)\n", name, async_loop_error_message(loop, error),
            error->code);
}

/* ---- calls made later ---- */

/* Appends cb unless it is queued already; true if the FIFO was empty. */
static bool fifo_push(cb_fifo *q, async__cb *cb) {
    bool first = q->head == NULL;
    if (cb->queued) return false;
    cb->queued = true;
    cb->next = NULL;
    if (q->tail)
        q->tail->next = cb;
    else
        q->head = cb;
    q->tail = cb;
    return first;
}

/* Unlinks cb if it is queued there. */
static void fifo_remove(cb_fifo *q, async__cb *cb) {
    async__cb **pp, *prev = NULL;
    for (pp = &q->head; *pp; prev = *pp, pp = &(*pp)->next) {
        if (*pp != cb) continue;
        *pp = cb->next;
        if (q->tail == cb) q->tail = prev;
        cb->next = NULL;
        cb->queued = false;
        return;
    }
}

/* Takes every call out of the FIFO, queued no more: a call asked for again while they run is queued
 * again, for the next round. Returns the first; they stay linked through `next`. */
static async__cb *fifo_take(cb_fifo *q) {
    async__cb *first = q->head, *c;
    q->head = q->tail = NULL;
    for (c = first; c; c = c->next) c->queued = false;
    return first;
}

/* Runs the calls taken from a FIFO, in order. */
static void run_calls(async_loop *loop, async__cb *c) {
    while (c) {
        async__cb *next = c->next;
        c->next = NULL;
        c->fn(loop, c);
        c = next;
    }
}

void async__loop_defer(async_loop *loop, async__cb *cb) {
    async__hosted *h = hosted_of(loop);
    if (h) fifo_push(&h->deferred, cb);
}

void async__loop_undefer(async_loop *loop, async__cb *cb) {
    async__hosted *h = hosted_of(loop);
    if (h && cb->queued) fifo_remove(&h->deferred, cb);
}

/* The thread that runs the loop is its thread. Only the loop's thread writes it, and only when it
 * changes (a loop made on one thread and run on another), under the lock other threads read it with. */
static void note_thread(async__hosted *h) {
    pthread_t self = pthread_self();
    if (pthread_equal(h->thread, self)) return;
    pthread_mutex_lock(&h->inbox_mu);
    h->thread = self;
    pthread_mutex_unlock(&h->inbox_mu);
}

/* The core's guard of the loop's thread (async_loop_set_thread_check): `what` NULL is the core saying
 * that this thread runs a pass of the loop now (async_run, async_poll), which makes it the loop's
 * thread; otherwise a call named `what` asks whether it may touch the loop's tasks. The loop's own
 * thread reads `thread` without the lock: only that thread writes it. */
static bool hosted_thread_check(const async_loop *loop, const char *what) {
    async__hosted *h = hosted_of(loop);
    if (!what) {
        note_thread(h);
        return true;
    }
    if (pthread_equal(h->thread, pthread_self())) return true;
    fprintf(stderr, "async: %s called from a thread that does not run the task's loop: refused (from another "
                    "thread, use async_remote_cancel)\n", what);
    return false;
}

void async__loop_pass_over(async_loop *loop) {
    async__hosted *h = hosted_of(loop);
    note_thread(h);
    if (h->deferred.head) run_calls(loop, fifo_take(&h->deferred));
}

/* The core's wait: the pass's deferred calls, then the backend's wait. */
static bool hosted_wait(async_loop *loop, int32_t timeout_ms) {
    async__hosted *h = (async__hosted *)async_loop_backend_data(loop);
    note_thread(h);
    if (h->deferred.head) { /* calls deferred meanwhile run at the end of the next pass */
        run_calls(loop, fifo_take(&h->deferred));
        if (async_loop_has_ready(loop)) timeout_ms = 0; /* a deferred call woke a task: do not block */
    }
    return h->be->wait(loop, timeout_ms);
}

/* ---- the simulated loop current on this thread (sim_net.h) ---- */

/* A thread-specific key, made once: a simulated loop sets it when it is made and at each pass (and
 * async_run's start), and clears it when it is freed; real loops never touch it. */
static pthread_key_t sim_key;
static pthread_once_t sim_key_once = PTHREAD_ONCE_INIT;
static bool sim_key_made;

static void sim_key_make(void) { sim_key_made = pthread_key_create(&sim_key, NULL) == 0; }

static void sim_set_current(async_loop *loop) {
    pthread_once(&sim_key_once, sim_key_make);
    if (sim_key_made) pthread_setspecific(sim_key, loop);
}

async__sim *async__sim_current(void) {
    async_loop *loop;
    pthread_once(&sim_key_once, sim_key_make);
    loop = sim_key_made ? (async_loop *)pthread_getspecific(sim_key) : NULL;
    return loop ? async__loop_sim(loop) : NULL;
}

/* A simulated loop's wait and thread check: the real ones, after making the loop current. */
static bool sim_hosted_wait(async_loop *loop, int32_t timeout_ms) {
    sim_set_current(loop);
    return hosted_wait(loop, timeout_ms);
}

static bool sim_thread_check(const async_loop *loop, const char *what) {
    if (!what) sim_set_current((async_loop *)(uintptr_t)loop); /* a pass of it starts on this thread */
    return hosted_thread_check(loop, what);
}

/* ---- posted calls ---- */

int async__loop_post(async_loop *loop, async__cb *cb) {
    async__hosted *h = hosted_of(loop);
    if (!h || !cb || !cb->fn) return ASYNC_EINVAL;
    pthread_mutex_lock(&h->inbox_mu);
    /* one wake-up per empty-to-non-empty inbox; under the lock, so that the loop's thread cannot take the
     * inbox and free the loop between the push and the wake */
    if (fifo_push(&h->inbox, cb)) h->be->wake(loop);
    pthread_mutex_unlock(&h->inbox_mu);
    return 0;
}

void async__loop_unpost(async_loop *loop, async__cb *cb) {
    async__hosted *h = hosted_of(loop);
    if (!h) return;
    pthread_mutex_lock(&h->inbox_mu);
    if (cb->queued) fifo_remove(&h->inbox, cb);
    pthread_mutex_unlock(&h->inbox_mu);
}

void async__loop_run_posts(async_loop *loop) {
    async__hosted *h = hosted_of(loop);
    async__cb *c;
    pthread_mutex_lock(&h->inbox_mu);
    c = fifo_take(&h->inbox);
    pthread_mutex_unlock(&h->inbox_mu);
    run_calls(loop, c);
}

bool async__loop_on_thread(const async_loop *loop) {
    async__hosted *h = hosted_of(loop);
    bool on;
    if (!h) return false;
    pthread_mutex_lock(&h->inbox_mu);
    on = pthread_equal(h->thread, pthread_self()) != 0;
    pthread_mutex_unlock(&h->inbox_mu);
    return on;
}

/* ---- holds ---- */

void async__loop_hold(async_loop *loop, int delta) {
    async__hosted *h = hosted_of(loop);
    unsigned before;
    if (!h) return;
    before = h->holds;
    h->holds = (unsigned)((int)h->holds + delta);
    if (!before && h->holds) h->be->hold(loop, true);
    if (before && !h->holds) h->be->hold(loop, false);
}

bool async__loop_held(const async_loop *loop) {
    const async__hosted *h = hosted_of(loop);
    return h && h->holds > 0;
}

void *async__loop_backend_state(const async_loop *loop) {
    async__hosted *h = hosted_of(loop);
    return h ? h->head.state : NULL;
}

/* ---- components ---- */

int async__loop_attach(async_loop *loop, async__part *part, const void *kind, int stage, async__part_free_fn free_fn) {
    async__hosted *h = hosted_of(loop);
    async__part **pp, *prev = NULL;
    if (!h) return ASYNC_ENOTSUP;
    part->kind = kind;
    part->stage = stage;
    part->free_fn = free_fn;
    /* before the first part of the same or a later stage: stage order, the latest first within one */
    for (pp = &h->parts; *pp && (*pp)->stage < stage; prev = *pp, pp = &(*pp)->next) {}
    part->prev = prev;
    part->next = *pp;
    if (*pp) (*pp)->prev = part;
    *pp = part;
    return 0;
}

void async__loop_detach(async_loop *loop, async__part *part) {
    async__hosted *h = hosted_of(loop);
    if (!h) return;
    if (part->prev)
        part->prev->next = part->next;
    else if (h->parts == part)
        h->parts = part->next;
    if (part->next) part->next->prev = part->prev;
    part->prev = part->next = NULL;
}

async__part *async__loop_find(const async_loop *loop, const void *kind) {
    const async__hosted *h = hosted_of(loop);
    async__part *p;
    for (p = h ? h->parts : NULL; p; p = p->next)
        if (p->kind == kind) return p;
    return NULL;
}

void *async__loop_alloc(async_loop *loop, size_t size) {
    void *ctx;
    async_loop_realloc_fn fn = async_loop_get_allocator(loop, &ctx);
    return fn ? fn(ctx, NULL, size) : malloc(size);
}

void async__loop_release(async_loop *loop, void *p) {
    void *ctx;
    async_loop_realloc_fn fn = async_loop_get_allocator(loop, &ctx);
    if (fn)
        fn(ctx, p, 0);
    else
        free(p);
}

/* ---- making and freeing ---- */

async_loop *async__hosted_new(const async_backend *be, void *arg) {
    async__hosted *h = (async__hosted *)calloc(1, sizeof *h + be->state_size);
    if (!h) return NULL;
    if (pthread_mutex_init(&h->inbox_mu, NULL)) {
        free(h);
        return NULL;
    }
    /* the backend first: it is the one part that may fail, and the loop is not set up yet to be undone */
    if (be->open(&h->loop, h->state, arg)) {
        pthread_mutex_destroy(&h->inbox_mu);
        free(h);
        return NULL;
    }
    h->be = be;
    h->head.be = be;
    h->head.state = h->state;
    h->thread = pthread_self();
    async_loop_init(&h->loop);
    async_loop_set_allocator(&h->loop, hosted_realloc, NULL);
    async_loop_set_error_handler(&h->loop, hosted_report, NULL);
    async_loop_set_clock(&h->loop, be->now);
    if (be->caps & ASYNC__BACKEND_SIM) {
        async_loop_set_wait(&h->loop, sim_hosted_wait);
        async_loop_set_thread_check(&h->loop, sim_thread_check);
    } else {
        async_loop_set_wait(&h->loop, hosted_wait);
        async_loop_set_thread_check(&h->loop, hosted_thread_check);
    }
    async_loop_set_backend(&h->loop, be, h);
    if (be->caps & ASYNC__BACKEND_SIM) sim_set_current(&h->loop);
    return &h->loop;
}

void async_loop_free(async_loop *loop) {
    async__hosted *h = hosted_of(loop);
    bool reported = false;
    async__part *p;
    if (!h) return; /* NULL, or not a loop of the hosted runtime's: nothing of ours to free */
    while ((p = h->parts) != NULL) {
        if (!reported && p->stage > ASYNC__STAGE_REPORT) {
            async_loop_report_errors(loop);
            reported = true;
        }
        async__loop_detach(loop, p);
        p->free_fn(loop, p);
    }
    if (!reported) async_loop_report_errors(loop);
    if ((h->be->caps & ASYNC__BACKEND_SIM) && async__sim_current() == async__loop_sim(loop)) sim_set_current(NULL);
    h->be->close(loop);
    async_loop_free_storage(loop); /* the timer heap and lane */
    pthread_mutex_destroy(&h->inbox_mu);
    free(h);
}
