/* Many cores: one loop per thread, and a thread-safe door into a loop (call_soon_threadsafe).
 *
 * A remote is a mutex-guarded FIFO of calls plus one call posted to its loop (the hosted loop's way in
 * from other threads): any thread appends a call and, when the FIFO was empty, posts; the loop's thread
 * runs the calls between passes, in the order they came. While a remote exists it holds its loop (another
 * thread may still wake it), and it is attached to the loop, which frees a remote still open when it is
 * freed itself. Servers on several loops share one port through SO_REUSEPORT (async_server_listen's
 * flag): the kernel spreads the connections over the listeners, so the loops share nothing.
 *
 * The simulated world (async/sim.h) is one loop on one thread: async_run_threads runs one loop there (n =
 * 1: made before its main, so that the main's servers listen in its world) and refuses more with
 * ASYNC_ENOTSUP; a remote needs a loop that polls the OS, which a world is not. */
#include "net.h"
#include "sim_net.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct remote_call {
    struct remote_call *next;
    void (*fn)(async_loop *loop, void *arg);
    void *arg;
} remote_call;

struct async_remote {
    async__part part; /* attached to the loop (stage DOORS) */
    async_loop *loop;
    async__cb wake;   /* posted to the loop when the FIFO becomes non-empty */
    pthread_mutex_t mu;
    remote_call *head, *tail;
};

/* Takes the queued calls and runs them, in order. */
static void run_calls(async_remote *r) {
    remote_call *c;
    pthread_mutex_lock(&r->mu);
    c = r->head;
    r->head = r->tail = NULL;
    pthread_mutex_unlock(&r->mu);
    while (c) {
        remote_call *next = c->next;
        c->fn(r->loop, c->arg);
        free(c);
        c = next;
    }
}

static void wake_fn(async_loop *loop, async__cb *cb) {
    (void)loop;
    run_calls((async_remote *)(void *)((char *)cb - offsetof(async_remote, wake)));
}

/* Runs what is still queued and frees r (detached from its loop already). */
static void remote_free(async_loop *loop, async_remote *r) {
    async__loop_unpost(loop, &r->wake);
    run_calls(r);
    async__loop_hold(loop, -1);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

static void remote_part_free(async_loop *loop, async__part *part) {
    remote_free(loop, (async_remote *)(void *)((char *)part - offsetof(async_remote, part)));
}

static const char remote_kind = 0; /* tags remotes among the loop's parts */

async_remote *async_remote_new(async_loop *loop) {
    async_remote *r;
    if (!async__loop_has_io(loop)) return NULL; /* a loop that polls the OS */
    r = (async_remote *)calloc(1, sizeof *r);
    if (!r) return NULL;
    if (pthread_mutex_init(&r->mu, NULL)) {
        free(r);
        return NULL;
    }
    r->loop = loop;
    r->wake.fn = wake_fn;
    async__loop_attach(loop, &r->part, &remote_kind, ASYNC__STAGE_DOORS, remote_part_free); /* hosted */
    async__loop_hold(loop, +1); /* another thread may still wake the loop */
    return r;
}

int async_remote_call(async_remote *r, void (*fn)(async_loop *loop, void *arg), void *arg) {
    remote_call *c;
    if (!r || !fn) return ASYNC_EINVAL;
    c = (remote_call *)malloc(sizeof *c);
    if (!c) return ASYNC_ENOMEM;
    c->next = NULL;
    c->fn = fn;
    c->arg = arg;
    pthread_mutex_lock(&r->mu);
    if (r->tail) {
        r->tail->next = c;
    } else {
        r->head = c;
        async__loop_post(r->loop, &r->wake); /* under the lock: async_remote_free cannot run meanwhile */
    }
    r->tail = c;
    pthread_mutex_unlock(&r->mu);
    return 0;
}

static void cancel_fn(async_loop *loop, void *arg) {
    (void)loop;
    async_cancel((async_task *)arg);
}

int async_remote_cancel(async_remote *r, async_task *t) {
    if (!t) return ASYNC_EINVAL;
    return async_remote_call(r, cancel_fn, t);
}

void async_remote_free(async_remote *r) {
    if (!r) return;
    async__loop_detach(r->loop, &r->part);
    remote_free(r->loop, r);
}

typedef struct loop_thread {
    pthread_t th;
    async_task *main;
    int rc;
    bool started;
} loop_thread;

static void *loop_thread_run(void *arg) {
    loop_thread *lt = (loop_thread *)arg;
    async_loop *loop = async_loop_new(0);
    if (!loop) {
        lt->rc = ASYNC_ENOMEM;
        return NULL;
    }
    lt->rc = async_run(loop, lt->main);
    async_loop_free(loop);
    return NULL;
}

/* async_run_threads in a simulated context: the environment's ASYNC_SIM makes every new loop a world, or a
 * world is current on this thread (async__sim_current), where make_main's servers would listen. One loop
 * runs, made first on this thread, so that it is the current world when its main is made; n > 1 is
 * refused before anything is made (no main, no port), as is a world of the caller's that is current (its
 * servers could not be served by a loop of ours). */
static int run_simulated(unsigned n, async_task *(*make_main)(unsigned index, void *arg), void *arg) {
    async_loop *loop;
    async_task *main;
    int rc;
    if (n > 1) {
        fprintf(stderr, "async.h: async_run_threads(%u): the simulated world is one loop on one "
                        "thread; run 1 loop in it\n", n);
        return ASYNC_ENOTSUP;
    }
    loop = async_loop_new(0);
    if (!loop) return ASYNC_ENOMEM;
    if (async__loop_sim(loop) == NULL || async__sim_current() != async__loop_sim(loop)) {
        async_loop_free(loop);
        fprintf(stderr, "async.h: async_run_threads: a simulated loop is current on this thread, and its servers "
                        "are served on it alone; run the main there (async_run)\n");
        return ASYNC_ENOTSUP;
    }
    main = make_main(0, arg);
    rc = main ? async_run(loop, main) : ASYNC_EINVAL;
    async_loop_free(loop);
    return rc;
}

int async_run_threads(unsigned n, async_task *(*make_main)(unsigned index, void *arg), void *arg) {
    const char *sim = getenv("ASYNC_SIM");
    loop_thread *lts;
    unsigned i;
    int rc = 0;
    if (!n || !make_main) return ASYNC_EINVAL;
    if ((sim && *sim) || async__sim_current()) return run_simulated(n, make_main, arg);
    lts = (loop_thread *)calloc(n, sizeof *lts);
    if (!lts) return ASYNC_ENOMEM;
    for (i = 0; i < n; i++) { /* every main is made before any runs, in index order, on this thread */
        lts[i].main = make_main(i, arg);
        if (!lts[i].main) {
            free(lts);
            return ASYNC_EINVAL;
        }
    }
    for (i = 1; i < n; i++) {
        if (pthread_create(&lts[i].th, NULL, loop_thread_run, &lts[i])) {
            lts[i].rc = ASYNC_EAGAIN;
            continue;
        }
        lts[i].started = true;
    }
    loop_thread_run(&lts[0]); /* the calling thread is loop 0 */
    for (i = 1; i < n; i++)
        if (lts[i].started) pthread_join(lts[i].th, NULL);
    for (i = 0; i < n && !rc; i++) rc = lts[i].rc;
    free(lts);
    return rc;
}
