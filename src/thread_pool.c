/* to_thread: blocking calls on a pthread pool, their completions back on the loop thread.
 *
 * A pool is a FIFO of jobs under one mutex and a set of threads that take one job at a time (FIFO: a
 * slow call never holds back the calls queued after it while a thread is free). The jobs a loop starts
 * during one pass of its tasks reach the pool together, when the pass is over (a call deferred to its
 * end), in one lock round trip that wakes one idle thread, which wakes the next while work is left: the
 * loop does not pay a lock and a futex wake per call. A thread hands a finished job to its home (the
 * loop's state here, a component attached to the loop): a list under the home's mutex, and one call
 * posted to the loop when that list goes from empty to non-empty, so one loop wake-up delivers every
 * completion that arrived meanwhile. The loop thread takes the list whole and delivers each job: it
 * completes the future its awaiter waits on, or calls its completion callback.
 *
 * Lifetimes. A job is allocated by the home (payload-free ones come from a free list) and belongs to the
 * loop thread except while it is queued or running. Its awaiter only points at it from its
 * async_thread_call; a cancelled awaiter detaches the job, and the job's dtor receives the result when it
 * comes back. Finished jobs not yet delivered sit in the home's live list so that freeing the loop can
 * discard them. While calls are in flight the home holds the loop (async__loop_hold), so that it waits
 * for them; it lets go once they are back and the tasks they woke have run.
 *
 * The pool thread touches a home (push, post, signal) only under the home's mutex: once the loop has
 * taken back all its jobs under that mutex, no thread will touch the home again, and it can go.
 *
 * The simulated world (backend_sim.c). A simulated loop starts no thread, ever: each job is a CALL
 * request of the world instead, the shape a native job has on io_uring (the job's own request, started
 * when the job is launched). The world completes it after a delay it draws, in an order it draws among
 * the calls due together; the completion runs fn on the loop's thread, and the job comes back the usual
 * way (to its awaiter or completion callback, or its outcome to the dtor if no one wants it any more: a
 * cancelled awaiter's call still runs at its time, as a thread's would). The pool settings still take
 * and check their arguments (a shared pool set is counted as in use), but no call reaches a pool. A loop
 * freed with calls in flight runs them then, in the order they started (a real loop waits for its calls
 * to end), and their outcomes go to the dtors. */
#define _POSIX_C_SOURCE 200809L
#include "thread_pool.h"
#include "backend.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

/* Finished payload-free jobs a loop keeps for reuse (W5: 1,000 in flight allocate nothing after the
 * first round). */
#define HOME_FREE_MAX 4096u

typedef struct thread_home thread_home;

/* One call, from its start on the loop thread to its delivery or discard. The fields above `state` are
 * written by the loop thread before the job is queued, then read (fn, arg, home) and written (result,
 * rc, next) by one pool thread, then read by the loop thread again after it took the job back under its
 * home's mutex. The others belong to the loop thread alone. */
struct async__job {
    async__job *next;  /* the pool's queue, then the home's list of finished jobs */
    thread_home *home; /* the loop the job returns to */
    async_thread_fn fn;
    void *arg;
    intptr_t result;
    int rc;
    /* loop thread only */
    uint8_t state;          /* JOB_* below */
    uint8_t detached;       /* no one wants the outcome: discard it when it comes */
    uint8_t recycle;        /* no payload: goes back to the home's free list */
    async_thread_dtor dtor; /* for an outcome no one receives */
    async_future done;      /* an awaiter waits here */
    void (*deliver)(async__job *j, void *ctx); /* or, for a submitted job, its completion */
    void *deliver_ctx;
    void (*back)(async__job *j, void *ctx); /* bookkeeping when it comes back (files) */
    void *back_ctx;
    async__job *live_prev, *live_next; /* the home's finished, undelivered jobs */
    /* a native operation instead of fn (async__job_set_native) */
    uint8_t native;         /* its ASYNC__REQ_* kind, or 0 */
    int nfd;
    void *nbuf;
    size_t nlen, ndone;     /* a write goes on until all nlen bytes are written */
    int64_t noff;           /* where in the file, or -1: at the file's position */
    async__job *native_next; /* the home's native jobs in flight */
    async__job *call_prev, *call_next; /* the home's simulated calls in flight, in the order started */
    async__req req;
    async__max_align payload[];               /* the call's copy of its arguments */
};

enum { JOB_NEW = 0, JOB_PARKED, JOB_QUEUED, JOB_DONE };

struct async_thread_pool {
    pthread_mutex_t mu;
    pthread_cond_t work;     /* idle threads wait here */
    async__job *head, *tail; /* queued jobs, FIFO */
    unsigned nthreads;
    unsigned idle;    /* threads waiting on `work` */
    unsigned waking;  /* signals sent that no thread has taken yet */
    unsigned loops;   /* loops that use the pool (async_loop_set_thread_pool) */
    bool quit;
    pthread_t threads[];
};

/* A loop's to_thread state, attached to the loop (stage WORK: freeing the loop waits for its calls). */
struct thread_home {
    async__part part;
    /* shared with the pool threads, under mu */
    pthread_mutex_t mu;
    pthread_cond_t drained; /* home_free waits here for the last calls */
    async__job *done;       /* finished jobs, newest first */
    bool freeing;           /* the loop is being freed: signal `drained` */
    /* fixed while calls are in flight */
    async_loop *loop;
    async__cb wake;         /* posted to the loop when `done` becomes non-empty */
    /* loop thread only */
    async__cb flush;        /* deferred to the pass's end: hands its jobs over, lets go of the loop */
    async__job *pending, *pending_tail; /* started this pass, not yet handed over */
    async_thread_pool *pool;   /* the pool in use: shared, or own (NULL until first use) */
    async_thread_pool *shared; /* from async_loop_set_thread_pool */
    async_thread_pool *own;    /* the loop's own pool, made on first use */
    unsigned own_threads; /* its size, 0: ASYNC_THREADS or the default */
    unsigned inflight;    /* jobs started (queued, running or parked) and not taken back */
    bool held;            /* the home holds the loop: it waits for calls */
    async__job *live;     /* finished, undelivered jobs */
    async__job *native;   /* native jobs in the kernel's hands */
    async__job *calls, *calls_tail; /* simulated calls in flight, oldest first */
    bool sim;             /* the loop is simulated: jobs are the world's CALL requests, no pool */
    async__job *free_jobs;
    unsigned nfree;
};

/* ---- pools ---- */

/* Runs a job and hands it back to its home: one wake-up of the loop per empty-to-non-empty list. */
static void pool_run(async__job *j) {
    thread_home *h = j->home;
    j->result = 0;
    j->rc = j->fn(j->arg, &j->result);
    pthread_mutex_lock(&h->mu);
    if (!h->done) {
        async__loop_post(h->loop, &h->wake);
        if (h->freeing) pthread_cond_signal(&h->drained);
    }
    j->next = h->done;
    h->done = j;
    pthread_mutex_unlock(&h->mu);
}

static void *pool_thread(void *arg) {
    async_thread_pool *p = (async_thread_pool *)arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        async__job *j;
        while (!p->head && !p->quit) {
            p->idle++;
            pthread_cond_wait(&p->work, &p->mu);
            p->idle--;
            if (p->waking) p->waking--;
        }
        if (!p->head) break; /* quitting, nothing left */
        j = p->head;
        p->head = j->next;
        if (!p->head) p->tail = NULL;
        /* more left: make sure an idle thread comes for it (the loop woke only one) */
        if (p->head && p->idle > p->waking) {
            p->waking++;
            pthread_cond_signal(&p->work);
        }
        pthread_mutex_unlock(&p->mu);
        pool_run(j);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static void pool_stop(async_thread_pool *p, unsigned started) {
    unsigned i;
    pthread_mutex_lock(&p->mu);
    p->quit = true;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (i = 0; i < started; i++) pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->work);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* A pool with its threads started, or NULL with *err set. */
static async_thread_pool *pool_create(unsigned threads, int *err) {
    async_thread_pool *p;
    sigset_t all, old;
    unsigned i;
    if (threads < 1 || threads > ASYNC_THREAD_POOL_MAX) {
        *err = ASYNC_EINVAL;
        return NULL;
    }
    p = (async_thread_pool *)calloc(1, sizeof *p + threads * sizeof p->threads[0]);
    if (!p) {
        *err = ASYNC_ENOMEM;
        return NULL;
    }
    if (pthread_mutex_init(&p->mu, NULL)) {
        free(p);
        *err = ASYNC_ENOMEM;
        return NULL;
    }
    if (pthread_cond_init(&p->work, NULL)) {
        pthread_mutex_destroy(&p->mu);
        free(p);
        *err = ASYNC_ENOMEM;
        return NULL;
    }
    p->nthreads = threads;
    /* the threads block every signal: signals go to the application's threads, and a blocking call in
     * a pool thread is not cut short by one */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (i = 0; i < threads; i++) {
        if (pthread_create(&p->threads[i], NULL, pool_thread, p)) {
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            pool_stop(p, i);
            /* whatever pthread_create says (EAGAIN, EPERM, or EINVAL from a stack mmap under valgrind),
             * for the caller it is what async.h promises: the pool could not start its threads */
            *err = ASYNC_EAGAIN;
            return NULL;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return p;
}

async_thread_pool *async_thread_pool_new(unsigned threads) {
    int err;
    return pool_create(threads, &err);
}

int async_thread_pool_free(async_thread_pool *pool) {
    if (!pool) return 0;
    pthread_mutex_lock(&pool->mu);
    if (pool->loops) {
        pthread_mutex_unlock(&pool->mu);
        return ASYNC_EBUSY;
    }
    pthread_mutex_unlock(&pool->mu);
    pool_stop(pool, pool->nthreads); /* no loop uses it: its queue is empty */
    return 0;
}

/* Queues a list of jobs in one lock round trip and wakes one idle thread; a thread that leaves work
 * behind in the queue wakes the next one. */
static void pool_submit(async_thread_pool *p, async__job *first, async__job *last) {
    pthread_mutex_lock(&p->mu);
    if (p->tail)
        p->tail->next = first;
    else
        p->head = first;
    p->tail = last;
    if (p->idle > p->waking) {
        p->waking++;
        pthread_cond_signal(&p->work);
    }
    pthread_mutex_unlock(&p->mu);
}

static void pool_use(async_thread_pool *p, int delta) {
    pthread_mutex_lock(&p->mu);
    p->loops = (unsigned)((int)p->loops + delta);
    pthread_mutex_unlock(&p->mu);
}

/* The size of a loop's own pool: set, else ASYNC_THREADS, else the default. */
static unsigned own_size(const thread_home *h) {
    const char *env;
    long n;
    if (h->own_threads) return h->own_threads;
    env = getenv("ASYNC_THREADS");
    if (env) {
        char *end;
        n = strtol(env, &end, 10);
        if (end != env && *end == '\0' && n >= 1 && n <= (long)ASYNC_THREAD_POOL_MAX) return (unsigned)n;
    }
    return ASYNC_THREAD_POOL_DEFAULT;
}

/* ---- the loop's home ---- */

/* Job records and the home come from the loop's allocator (async__loop_alloc). */

static void live_link(thread_home *h, async__job *j) {
    j->live_prev = NULL;
    j->live_next = h->live;
    if (h->live) h->live->live_prev = j;
    h->live = j;
}

static void live_unlink(thread_home *h, async__job *j) {
    if (j->live_prev)
        j->live_prev->live_next = j->live_next;
    else
        h->live = j->live_next;
    if (j->live_next) j->live_next->live_prev = j->live_prev;
    j->live_prev = j->live_next = NULL;
}

static void job_free(thread_home *h, async__job *j) {
    if (j->recycle && h->nfree < HOME_FREE_MAX) {
        j->next = h->free_jobs;
        h->free_jobs = j;
        h->nfree++;
    } else {
        async__loop_release(h->loop, j);
    }
}

/* An outcome no one will receive: the dtor gets it, then the job goes. */
static void job_discard(thread_home *h, async__job *j) {
    if (j->dtor) j->dtor(j->result, j->arg);
    job_free(h, j);
}

static void home_take_back(thread_home *h, async__job *list);
static void native_back(async__req *r, int res);

/* ---- native jobs: the kernel does the call (io_uring), no pool thread ---- */

/* Hands the rest of a native job's operation to the backend: 0, or its error. */
static int native_start(thread_home *h, async__job *j) {
    async__req_op *op = async__req_op_of(&j->req);
    j->req.cb = native_back;
    j->req.kind = j->native;
    j->req.fd = j->nfd;
    op->buf = (char *)j->nbuf + j->ndone;
    op->len = j->nlen - j->ndone;
    op->offset = j->noff < 0 ? -1 : j->noff + (int64_t)j->ndone; /* -1: the position, as read(2) uses it */
    return async__req_start(h->loop, &j->req, -1);
}

static void native_unlink(thread_home *h, async__job *j) {
    async__job **pp;
    for (pp = &h->native; *pp; pp = &(*pp)->native_next) {
        if (*pp == j) {
            *pp = j->native_next;
            break;
        }
    }
    j->native_next = NULL;
}

/* The operation is over: the job comes back as from a pool thread, with fn's rc and result. */
static void native_end(thread_home *h, async__job *j, int res) {
    native_unlink(h, j);
    j->rc = res < 0 ? res : 0;
    j->result = res < 0 ? 0 : j->native == ASYNC__REQ_WRITE ? (intptr_t)j->nlen : (intptr_t)res;
    j->next = NULL;
    home_take_back(h, j);
}

static void native_back(async__req *r, int res) {
    async__job *j = (async__job *)(void *)((char *)r - offsetof(async__job, req));
    thread_home *h = j->home;
    async__req_stop(h->loop, r);
    if (res > 0 && j->native == ASYNC__REQ_WRITE && j->ndone + (size_t)res < j->nlen) { /* short: the rest */
        j->ndone += (size_t)res;
        res = native_start(h, j);
        if (res == 0) return;
    } else if (res == 0 && j->native == ASYNC__REQ_WRITE && j->ndone < j->nlen) {
        res = ASYNC_EIO; /* the kernel took nothing and said no error: write_all would loop forever */
    }
    native_end(h, j, res);
}

/* ---- simulated calls: the world's CALL requests, no thread ---- */

static void call_link(thread_home *h, async__job *j) {
    j->call_next = NULL;
    j->call_prev = h->calls_tail;
    if (h->calls_tail)
        h->calls_tail->call_next = j;
    else
        h->calls = j;
    h->calls_tail = j;
}

static void call_unlink(thread_home *h, async__job *j) {
    if (j->call_prev)
        j->call_prev->call_next = j->call_next;
    else
        h->calls = j->call_next;
    if (j->call_next)
        j->call_next->call_prev = j->call_prev;
    else
        h->calls_tail = j->call_prev;
    j->call_prev = j->call_next = NULL;
}

/* The call's time has come (res 0), or the world would not take it (res < 0: fn never runs): fn runs
 * here, on the loop's thread, and the job comes back as from a pool thread. */
static void call_run(thread_home *h, async__job *j, int res) {
    call_unlink(h, j);
    j->result = 0;
    j->rc = res < 0 ? res : j->fn(j->arg, &j->result);
    j->next = NULL;
    home_take_back(h, j);
}

static void call_back(async__req *r, int res) {
    async__job *j = (async__job *)(void *)((char *)r - offsetof(async__job, req));
    async__req_stop(j->home->loop, r);
    call_run(j->home, j, res);
}

/* Hands the job to the world, which draws when its call ends. */
static void call_start(thread_home *h, async__job *j) {
    int rc;
    j->state = JOB_QUEUED;
    j->req.cb = call_back;
    j->req.kind = ASYNC__REQ_CALL;
    j->req.fd = -1;
    call_link(h, j);
    rc = async__req_start(h->loop, &j->req, -1);
    if (rc) call_run(h, j, rc); /* the world takes every call: not reached */
}

/* Jobs started in a pass go to the pool together, when the pass is over (flush_fn); a native one goes to
 * the kernel (its SQE with the pass's others), or to the pool if the backend cannot take it; on a
 * simulated loop each is a call of the world. */
static void job_launch(thread_home *h, async__job *j) {
    if (h->sim) {
        call_start(h, j);
        return;
    }
    if (j->native) {
        if (native_start(h, j) == 0) {
            j->state = JOB_QUEUED;
            j->native_next = h->native;
            h->native = j;
            return;
        }
        j->native = 0;
    }
    j->state = JOB_QUEUED;
    j->next = NULL;
    if (h->pending_tail) {
        h->pending_tail->next = j;
    } else {
        h->pending = j;
        async__loop_defer(h->loop, &h->flush);
    }
    h->pending_tail = j;
}

static void home_flush(thread_home *h) {
    if (!h->pending) return;
    pool_submit(h->pool, h->pending, h->pending_tail);
    h->pending = h->pending_tail = NULL;
}

static void hold(thread_home *h, bool on) {
    if (h->held == on) return;
    h->held = on;
    async__loop_hold(h->loop, on ? 1 : -1);
}

/* At the end of a pass: the jobs it started go to the pool; with nothing in flight any more, the loop
 * need not wait for calls (let go only now, after the tasks woken by the last ones have run: earlier
 * could end an application's ev_run before they do). */
static void flush_fn(async_loop *loop, async__cb *cb) {
    thread_home *h = (thread_home *)(void *)((char *)cb - offsetof(thread_home, flush));
    (void)loop;
    home_flush(h);
    if (h->inflight == 0) hold(h, false);
}

/* Takes back finished jobs (newest first in `list`): their bookkeeping, then each outcome goes to its
 * awaiter or completion callback, or, if no one wants it, to the dtor. */
static void home_take_back(thread_home *h, async__job *list) {
    async__job *fifo = NULL, *j;
    while (list) { /* oldest first */
        j = list->next;
        list->next = fifo;
        fifo = list;
        list = j;
    }
    while ((j = fifo) != NULL) {
        fifo = j->next;
        j->next = NULL;
        h->inflight--;
        if (j->back) j->back(j, j->back_ctx);
        if (j->detached) {
            job_discard(h, j);
        } else {
            j->state = JOB_DONE;
            live_link(h, j);
            if (j->deliver)
                j->deliver(j, j->deliver_ctx);
            else
                async_future_set_value(&j->done, 0);
        }
    }
    if (h->inflight == 0) async__loop_defer(h->loop, &h->flush); /* lets go of the loop after the pass */
}

/* Posted by the pool thread that made `done` non-empty. */
static void wake_fn(async_loop *loop, async__cb *cb) {
    thread_home *h = (thread_home *)(void *)((char *)cb - offsetof(thread_home, wake));
    async__job *list;
    (void)loop;
    pthread_mutex_lock(&h->mu);
    list = h->done;
    h->done = NULL;
    pthread_mutex_unlock(&h->mu);
    home_take_back(h, list); /* an empty list takes nothing back */
}

/* At loop free: waits for every call in flight (what they finish is taken back as usual: awaiters are
 * woken into a loop that will not run them again, and discarded just below), then frees it all. */
static void home_free(async_loop *loop, async__part *part) {
    thread_home *h = (thread_home *)(void *)((char *)part - offsetof(thread_home, part));
    async__job *j;
    /* the world's calls in flight run now, in the order started (a parked close that their return lets
     * go joins the list), and come back as usual */
    while ((j = h->calls) != NULL) {
        async__req_stop(loop, &j->req);
        call_run(h, j, 0);
    }
    /* native jobs are the ring's, which no one waits on any more: stopped (synchronously; an
     * operation the kernel finished is handed out by the stop), else back as cancelled */
    while ((j = h->native) != NULL) {
        async__req_stop(loop, &j->req);
        if (h->native == j) native_end(h, j, ASYNC_ECANCELED);
    }
    home_flush(h);
    pthread_mutex_lock(&h->mu);
    h->freeing = true;
    while (h->inflight && !h->sim) { /* the world's are back: no thread will bring any */
        async__job *list;
        while (!h->done) pthread_cond_wait(&h->drained, &h->mu);
        list = h->done;
        h->done = NULL;
        pthread_mutex_unlock(&h->mu);
        home_take_back(h, list);
        home_flush(h); /* parked jobs that could go now */
        pthread_mutex_lock(&h->mu);
    }
    pthread_mutex_unlock(&h->mu);
    /* no pool thread will touch h again; its calls may still be queued with the loop */
    async__loop_unpost(loop, &h->wake);
    async__loop_undefer(loop, &h->flush);
    while ((j = h->live) != NULL) {
        live_unlink(h, j);
        job_discard(h, j);
    }
    while ((j = h->free_jobs) != NULL) {
        h->free_jobs = j->next;
        async__loop_release(loop, j);
    }
    if (h->shared) pool_use(h->shared, -1);
    if (h->own) pool_stop(h->own, h->own->nthreads);
    hold(h, false);
    pthread_cond_destroy(&h->drained);
    pthread_mutex_destroy(&h->mu);
    async__loop_release(loop, h);
}

static const char home_kind = 0; /* tags the home among the loop's parts */

/* The loop's home, made on first use; NULL with *err set. */
static thread_home *home_of(async_loop *loop, int *err) {
    async__part *part = async__loop_find(loop, &home_kind);
    thread_home *h;
    if (part) return (thread_home *)(void *)((char *)part - offsetof(thread_home, part));
    if (!loop || !async_loop_backend(loop)) {
        *err = loop ? ASYNC_ENOTSUP : ASYNC_EINVAL;
        return NULL;
    }
    h = (thread_home *)async__loop_alloc(loop, sizeof *h);
    if (!h) {
        *err = ASYNC_ENOMEM;
        return NULL;
    }
    memset(h, 0, sizeof *h);
    if (pthread_mutex_init(&h->mu, NULL)) {
        async__loop_release(loop, h);
        *err = ASYNC_ENOMEM;
        return NULL;
    }
    if (pthread_cond_init(&h->drained, NULL)) {
        pthread_mutex_destroy(&h->mu);
        async__loop_release(loop, h);
        *err = ASYNC_ENOMEM;
        return NULL;
    }
    h->loop = loop;
    h->sim = async__loop_is_sim(loop);
    h->wake.fn = wake_fn;
    h->flush.fn = flush_fn;
    async__loop_attach(loop, &h->part, &home_kind, ASYNC__STAGE_WORK, home_free); /* hosted: cannot fail */
    return h;
}

/* The pool the home's calls go to, made if it is the loop's own and does not exist yet. */
static async_thread_pool *home_pool(thread_home *h, int *err) {
    if (h->pool) return h->pool;
    h->own = pool_create(own_size(h), err);
    h->pool = h->own;
    return h->pool;
}

int async_loop_set_thread_pool(async_loop *loop, async_thread_pool *pool) {
    int err = 0;
    thread_home *h = home_of(loop, &err);
    if (!h) return err == ASYNC_ENOTSUP ? ASYNC_EINVAL : err;
    if (h->inflight) return ASYNC_EBUSY;
    if (pool == h->shared) return 0;
    if (pool) pool_use(pool, +1);
    if (h->shared) pool_use(h->shared, -1);
    if (pool && h->own) { /* its threads would only idle */
        pool_stop(h->own, h->own->nthreads);
        h->own = NULL;
    }
    h->shared = pool;
    h->pool = pool ? pool : h->own;
    return 0;
}

int async_loop_set_threads(async_loop *loop, unsigned threads) {
    int err = 0;
    thread_home *h;
    if (!loop || threads < 1 || threads > ASYNC_THREAD_POOL_MAX) return ASYNC_EINVAL;
    h = home_of(loop, &err);
    if (!h) return err == ASYNC_ENOTSUP ? ASYNC_EINVAL : err;
    if (h->inflight) return ASYNC_EBUSY;
    h->own_threads = threads;
    if (h->own && h->own->nthreads != threads) { /* remade at the next call */
        h->pool = NULL; /* it was the own pool: while a shared pool is set, the loop has no own one */
        pool_stop(h->own, h->own->nthreads);
        h->own = NULL;
    }
    return 0;
}

unsigned async_loop_jobs(async_loop *loop) {
    async__part *part = async__loop_find(loop, &home_kind);
    return part ? ((thread_home *)(void *)((char *)part - offsetof(thread_home, part)))->inflight : 0;
}

/* ---- jobs ---- */

int async__thread_raise(async_task *t, async_thread_call *call, int code) {
    const async_error *e = async_error_of(code);
    if (!e) { /* a code of the application's, or one the library does not list: the call's own record */
        call->error.code = code;
        call->error.message = code >= ASYNC_EUSER ? "error raised by a thread function" : NULL;
        e = &call->error;
    }
    async__raise(t, e);
    return ASYNC__RAISE;
}

int async__call_fail(async_task *t, async_thread_call *call, int code) {
    call->job = NULL;
    call->result = 0;
    return async__thread_raise(t, call, code);
}

async__job *async__job_new(async_loop *loop, size_t extra, int *err) {
    thread_home *h;
    async__job *j;
    h = home_of(loop, err);
    if (!h || (!h->sim && !home_pool(h, err))) return NULL; /* the world's calls need no pool */
    if (extra == 0 && h->free_jobs) {
        j = h->free_jobs;
        h->free_jobs = j->next;
        h->nfree--;
    } else {
        if (extra > SIZE_MAX - sizeof *j - sizeof(async__max_align)) {
            *err = ASYNC_ENOMEM;
            return NULL;
        }
        j = (async__job *)async__loop_alloc(loop, sizeof *j + extra);
        if (!j) {
            *err = ASYNC_ENOMEM;
            return NULL;
        }
    }
    memset(j, 0, sizeof *j);
    j->home = h;
    j->recycle = extra == 0;
    j->arg = j->payload;
    return j;
}

void async__job_set_fn(async__job *j, async_thread_fn fn, void *arg, async_thread_dtor dtor) {
    j->fn = fn;
    j->arg = arg;
    j->dtor = dtor;
}

void *async__job_payload(async__job *j) { return j->payload; }

void async__job_set_native(async__job *j, int kind, int fd, void *buf, size_t len, int64_t offset) {
    if (!async__loop_native(j->home->loop)) return;
    j->native = (uint8_t)kind;
    j->nfd = fd;
    j->nbuf = buf;
    j->nlen = len;
    j->ndone = 0;
    j->noff = offset;
}

void async__job_on_back(async__job *j, void (*back)(async__job *j, void *ctx), void *ctx) {
    j->back = back;
    j->back_ctx = ctx;
}

int async__job_rc(const async__job *j) { return j->rc; }
intptr_t async__job_result(const async__job *j) { return j->result; }
async_loop *async__job_loop(const async__job *j) { return j->home->loop; }

void async__job_drop(async__job *j) {
    if (j->state == JOB_DONE) live_unlink(j->home, j);
    job_free(j->home, j);
}

/* The job is on its way: the loop waits for it. */
static void job_go(thread_home *h, async__job *j, bool parked) {
    h->inflight++;
    hold(h, true);
    if (parked)
        j->state = JOB_PARKED;
    else
        job_launch(h, j);
}

int async__job_start(async_task *t, async_thread_call *call, async__job *j, bool parked) {
    int rc = async__future_start(t, &j->done);
    if (rc != ASYNC__WAIT) { /* a cancellation was pending: the call never starts */
        job_free(j->home, j);
        return ASYNC__RAISE;
    }
    call->job = j;
    call->result = 0;
    job_go(j->home, j, parked);
    return ASYNC__WAIT;
}

void async__job_launch(async__job *j) { job_launch(j->home, j); }

int async__job_wait(async_task *t, async_thread_call *call, async__job **out) {
    async__job *j = call->job;
    int rc;
    if (!j) return async__thread_raise(t, call, ASYNC_EINVAL);
    rc = async__future_check(t, &j->done);
    if (rc == ASYNC__WAIT) return ASYNC__WAIT;
    call->job = NULL;
    if (rc != ASYNC__GO) { /* cancelled: the thread runs on, its outcome goes to the dtor */
        async__job_abandon(j);
        return rc;
    }
    live_unlink(j->home, j);
    j->state = JOB_NEW; /* taken: the caller ends it */
    *out = j;
    return ASYNC__GO;
}

int async__job_end(async_task *t, async_thread_call *call, async__job *j, int rc) {
    call->result = rc ? 0 : j->result;
    job_free(j->home, j);
    return rc ? async__thread_raise(t, call, rc) : ASYNC__GO;
}

void async__job_submit(async__job *j, void (*done)(async__job *j, void *ctx), void *ctx) {
    j->deliver = done;
    j->deliver_ctx = ctx;
    job_go(j->home, j, false);
}

void async__job_abandon(async__job *j) {
    if (j->state == JOB_DONE) {
        live_unlink(j->home, j);
        job_discard(j->home, j);
    } else {
        j->detached = 1;
    }
}

/* ---- to_thread ---- */

int async__thread_start(async_task *t, async_thread_call *call, async_thread_fn fn, void *arg,
                        async_thread_dtor dtor) {
    async__job *j;
    int err = 0;
    if (!call) return async__raise_error_code(t, ASYNC_EINVAL);
    call->job = NULL;
    call->result = 0;
    if (!fn) return async__thread_raise(t, call, ASYNC_EINVAL);
    j = async__job_new(async_task_loop(t), 0, &err);
    if (!j) return async__thread_raise(t, call, err);
    async__job_set_fn(j, fn, arg, dtor);
    return async__job_start(t, call, j, false);
}

int async__thread_check(async_task *t, async_thread_call *call) {
    async__job *j = NULL;
    int rc = async__job_wait(t, call, &j);
    return rc == ASYNC__GO ? async__job_end(t, call, j, async__job_rc(j)) : rc;
}

intptr_t async_thread_call_result(const async_thread_call *call) { return call ? call->result : 0; }
