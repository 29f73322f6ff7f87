/* Many cores: one loop per thread, and a thread-safe door into a loop (call_soon_threadsafe).
 *
 * A remote is a mutex-guarded FIFO of calls plus an ev_async: any thread appends a call and sends the
 * ev_async; the loop's thread runs the calls in its callback, between passes, in the order they came.
 * Servers on several loops share one port through SO_REUSEPORT (async_server_listen's flag): the kernel
 * spreads the connections over the listeners, so the loops share nothing. */
#include "net.h"

#include <ev.h>
#include <pthread.h>
#include <stdlib.h>

typedef struct remote_call {
    struct remote_call *next;
    void (*fn)(async_loop *loop, void *arg);
    void *arg;
} remote_call;

struct async_remote {
    async_loop *loop;
    struct ev_loop *ev;
    ev_async wake;
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

static void wake_cb(struct ev_loop *ev, ev_async *w, int revents) {
    (void)ev;
    (void)revents;
    run_calls((async_remote *)(void *)((char *)w - offsetof(async_remote, wake)));
}

async_remote *async_remote_new(async_loop *loop) {
    struct ev_loop *ev = net__ev_of(loop);
    async_remote *r;
    if (!ev) return NULL;
    r = (async_remote *)calloc(1, sizeof *r);
    if (!r) return NULL;
    if (pthread_mutex_init(&r->mu, NULL)) {
        free(r);
        return NULL;
    }
    r->loop = loop;
    r->ev = ev;
    ev_async_init(&r->wake, wake_cb);
    ev_async_start(ev, &r->wake);
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
    if (r->tail)
        r->tail->next = c;
    else
        r->head = c;
    r->tail = c;
    ev_async_send(r->ev, &r->wake); /* under the lock: async_remote_free cannot run meanwhile */
    pthread_mutex_unlock(&r->mu);
    return 0;
}

void async_remote_free(async_remote *r) {
    if (!r) return;
    ev_async_stop(r->ev, &r->wake);
    run_calls(r);
    pthread_mutex_destroy(&r->mu);
    free(r);
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

int async_run_threads(unsigned n, async_task *(*make_main)(unsigned index, void *arg), void *arg) {
    loop_thread *lts;
    unsigned i;
    int rc = 0;
    if (!n || !make_main) return ASYNC_EINVAL;
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
