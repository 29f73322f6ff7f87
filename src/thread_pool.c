/* to_thread: blocking calls on a pthread pool, their completions back on the loop thread.
 *
 * A pool is a FIFO of jobs under one mutex and a set of threads that take one job at a time (FIFO: a
 * slow call never holds back the calls queued after it while a thread is free). The jobs a loop starts
 * during one pass of its tasks reach the pool together, in one lock round trip that wakes one idle
 * thread, which wakes the next while work is left: the loop does not pay a lock and a futex wake per
 * call. A thread hands a finished job to its home (the loop's state here): a list under the home's
 * mutex, and one ev_async_send when that list goes from empty to non-empty, so one loop wake-up
 * delivers every completion that arrived meanwhile. The loop thread takes the list whole and completes
 * each job's future, which wakes its awaiter.
 *
 * Lifetimes. A job is allocated by the home (payload-free ones come from a free list) and belongs to the
 * loop thread except while it is queued or running. Its awaiter only points at it from its
 * async_thread_call; a cancelled awaiter detaches the job, and the job's dtor receives the result when it
 * comes back. Finished jobs not yet delivered sit in the home's live list so that freeing the loop can
 * discard them. The ev_async is unreferenced while nothing is in flight, so it never keeps ev_run alive
 * by itself, and referenced while calls run, so the loop waits for them.
 *
 * The pool thread touches a home (push, ev_async_send, signal) only under the home's mutex: once the loop
 * has taken back all its jobs under that mutex, no thread will touch the home again, and it can go. */
#define _POSIX_C_SOURCE 200809L
#include "thread_pool.h"

#include <errno.h>
#include <ev.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Finished payload-free jobs a loop keeps for reuse (W5: 1,000 in flight allocate nothing after the
 * first round). */
#define HOME_FREE_MAX 4096u

struct async_pool {
    pthread_mutex_t mu;
    pthread_cond_t work;     /* idle threads wait here */
    async__job *head, *tail; /* queued jobs, FIFO */
    unsigned nthreads;
    unsigned idle;    /* threads waiting on `work` */
    unsigned waking;  /* signals sent that no thread has taken yet */
    unsigned loops;   /* loops that use the pool (async_loop_set_pool) */
    bool quit;
    pthread_t threads[];
};

struct async__threads {
    /* shared with the pool threads, under mu */
    pthread_mutex_t mu;
    pthread_cond_t drained; /* async__threads_free waits here for the last calls */
    async__job *done;       /* finished jobs, newest first */
    bool freeing;           /* the loop is being freed: signal `drained` */
    /* fixed while calls are in flight */
    struct ev_loop *ev;
    ev_async wake;
    ev_prepare flush;         /* hands the pass's new jobs to the pool before libev waits */
    async__job *pending, *pending_tail; /* loop thread: started this pass, not yet handed over */
    /* loop thread only */
    async_loop *loop;
    async_pool *pool;   /* the pool in use: shared, or own (NULL until first use) */
    async_pool *shared; /* from async_loop_set_pool */
    async_pool *own;    /* the loop's own pool, made on first use */
    unsigned own_threads; /* its size, 0: ASYNC_THREADS or the default */
    unsigned inflight;    /* jobs started (queued, running or parked) and not taken back */
    bool held;            /* the ev_async is referenced: the loop waits for calls */
    async__job *live;     /* finished, undelivered jobs */
    async__job *free_jobs;
    unsigned nfree;
    async_file *files; /* open files */
};

/* ---- pools ---- */

/* Runs a job and hands it back to its home: one wake-up of the loop per empty-to-non-empty list. */
static void pool_run(async__job *j) {
    async__threads *h = j->home;
    j->result = 0;
    j->rc = j->fn(j->arg, &j->result);
    pthread_mutex_lock(&h->mu);
    if (!h->done) {
        ev_async_send(h->ev, &h->wake);
        if (h->freeing) pthread_cond_signal(&h->drained);
    }
    j->next = h->done;
    h->done = j;
    pthread_mutex_unlock(&h->mu);
}

static void *pool_thread(void *arg) {
    async_pool *p = (async_pool *)arg;
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

static void pool_stop(async_pool *p, unsigned started) {
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
static async_pool *pool_create(unsigned threads, int *err) {
    async_pool *p;
    sigset_t all, old;
    unsigned i;
    if (threads < 1 || threads > ASYNC_POOL_MAX_THREADS) {
        *err = ASYNC_EINVAL;
        return NULL;
    }
    p = (async_pool *)calloc(1, sizeof *p + threads * sizeof p->threads[0]);
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

async_pool *async_pool_new(unsigned threads) {
    int err;
    return pool_create(threads, &err);
}

int async_pool_free(async_pool *pool) {
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
static void pool_submit(async_pool *p, async__job *first, async__job *last) {
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

static void pool_use(async_pool *p, int delta) {
    pthread_mutex_lock(&p->mu);
    p->loops = (unsigned)((int)p->loops + delta);
    pthread_mutex_unlock(&p->mu);
}

/* The size of a loop's own pool: set, else ASYNC_THREADS, else the default. */
static unsigned own_size(const async__threads *h) {
    const char *env;
    long n;
    if (h->own_threads) return h->own_threads;
    env = getenv("ASYNC_THREADS");
    if (env) {
        char *end;
        n = strtol(env, &end, 10);
        if (end != env && *end == '\0' && n >= 1 && n <= (long)ASYNC_POOL_MAX_THREADS) return (unsigned)n;
    }
    return ASYNC_POOL_DEFAULT_THREADS;
}

/* ---- the loop's home ---- */

/* Job records and the home come from the loop's allocator (a test can make it fail), which frees when
 * asked for size 0. */
static void *loop_alloc(async_loop *loop, size_t size) {
    return loop->realloc_fn ? loop->realloc_fn(loop->alloc_ctx, NULL, size) : malloc(size);
}

static void loop_release(async_loop *loop, void *p) {
    if (loop->realloc_fn)
        loop->realloc_fn(loop->alloc_ctx, p, 0);
    else
        free(p);
}

static void live_link(async__threads *h, async__job *j) {
    j->live_prev = NULL;
    j->live_next = h->live;
    if (h->live) h->live->live_prev = j;
    h->live = j;
}

static void live_unlink(async__threads *h, async__job *j) {
    if (j->live_prev)
        j->live_prev->live_next = j->live_next;
    else
        h->live = j->live_next;
    if (j->live_next) j->live_next->live_prev = j->live_prev;
    j->live_prev = j->live_next = NULL;
}

static void job_free(async__threads *h, async__job *j) {
    if (j->recycle && h->nfree < HOME_FREE_MAX) {
        j->next = h->free_jobs;
        h->free_jobs = j;
        h->nfree++;
    } else {
        loop_release(h->loop, j);
    }
}

/* An outcome no one will receive: the dtor gets it, then the job goes. */
static void job_discard(async__threads *h, async__job *j) {
    if (j->dtor) j->dtor(j->result, j->arg);
    job_free(h, j);
}

static void file_free(async__threads *h, async_file *f) {
    if (f->prev)
        f->prev->next = f->next;
    else
        h->files = f->next;
    if (f->next) f->next->prev = f->prev;
    free(f);
}

void async__file_link(async__threads *home, async_file *file) {
    file->home = home;
    file->prev = NULL;
    file->next = home->files;
    if (home->files) home->files->prev = file;
    home->files = file;
}

/* Jobs started in a pass go to the pool together, when the pass is over (flush_cb). The first one
 * feeds the flush watcher an event: libev then runs it before it polls even when the watcher was started
 * during this iteration's prepare callbacks (a loop attached to the application's ev_run). */
static void job_launch(async__threads *h, async__job *j) {
    j->state = JOB_QUEUED;
    j->next = NULL;
    if (h->pending_tail) {
        h->pending_tail->next = j;
    } else {
        h->pending = j;
        ev_feed_event(h->ev, &h->flush, EV_PREPARE);
    }
    h->pending_tail = j;
}

static void home_flush(async__threads *h) {
    if (!h->pending) return;
    pool_submit(h->pool, h->pending, h->pending_tail);
    h->pending = h->pending_tail = NULL;
}

/* Runs in every libev iteration before it polls, after the scheduler's pass (its lowest priority puts
 * it after the prepare watcher of an attached loop). */
static void flush_cb(struct ev_loop *ev, ev_prepare *w, int revents) {
    async__threads *h = (async__threads *)(void *)((char *)w - offsetof(async__threads, flush));
    (void)revents;
    home_flush(h);
    if (h->held && h->inflight == 0) { /* nothing in flight: the ev_async keeps no one waiting */
        h->held = false;
        ev_unref(ev);
    }
}

/* Takes back finished jobs (newest first in `list`): their files' bookkeeping, then each outcome goes
 * to its awaiter (the future wakes it) or, if the awaiter left, to the dtor. */
static void home_take_back(async__threads *h, async__job *list) {
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
        if (j->file) {
            async_file *f = j->file;
            if (j->closes) {
                file_free(h, f);
                j->file = NULL;
            } else if (--f->busy == 0 && f->close_job) { /* the parked close goes now */
                async__job *c = f->close_job;
                f->close_job = NULL;
                job_launch(h, c);
            }
        }
        if (j->detached) {
            job_discard(h, j);
        } else {
            j->state = JOB_DONE;
            live_link(h, j);
            async_future_set_value(&j->done, 0);
        }
    }
    /* the reference that kept the loop waiting is dropped by flush_cb, once the tasks woken here have
     * run: dropping it now could end an application's ev_run before they do */
}

static void wake_cb(struct ev_loop *ev, ev_async *w, int revents) {
    async__threads *h = (async__threads *)(void *)((char *)w - offsetof(async__threads, wake));
    async__job *list;
    (void)ev;
    (void)revents;
    pthread_mutex_lock(&h->mu);
    list = h->done;
    h->done = NULL;
    pthread_mutex_unlock(&h->mu);
    home_take_back(h, list); /* an empty list takes nothing back */
}


/* The loop's home, made on first use; NULL with *err set. */
static async__threads *home_of(async_loop *loop, int *err) {
    async__threads **slot = async__loop_threads(loop), *h;
    if (!slot) {
        *err = loop ? ASYNC_ENOTSUP : ASYNC_EINVAL;
        return NULL;
    }
    if (*slot) return *slot;
    h = (async__threads *)loop_alloc(loop, sizeof *h);
    if (!h) {
        *err = ASYNC_ENOMEM;
        return NULL;
    }
    memset(h, 0, sizeof *h);
    if (pthread_mutex_init(&h->mu, NULL)) {
        loop_release(loop, h);
        *err = ASYNC_ENOMEM;
        return NULL;
    }
    if (pthread_cond_init(&h->drained, NULL)) {
        pthread_mutex_destroy(&h->mu);
        loop_release(loop, h);
        *err = ASYNC_ENOMEM;
        return NULL;
    }
    h->loop = loop;
    h->ev = async_loop_ev(loop);
    ev_async_init(&h->wake, wake_cb);
    ev_async_start(h->ev, &h->wake);
    ev_unref(h->ev); /* nothing in flight yet */
    ev_prepare_init(&h->flush, flush_cb);
    ev_set_priority(&h->flush, EV_MINPRI);
    ev_prepare_start(h->ev, &h->flush);
    ev_unref(h->ev); /* never keeps ev_run going by itself */
    *slot = h;
    return h;
}

/* The pool the home's calls go to, made if it is the loop's own and does not exist yet. */
static async_pool *home_pool(async__threads *h, int *err) {
    if (h->pool) return h->pool;
    h->own = pool_create(own_size(h), err);
    h->pool = h->own;
    return h->pool;
}

bool async__threads_busy(async_loop *loop) {
    async__threads **slot = async__loop_threads(loop);
    return slot && *slot && (*slot)->inflight > 0;
}

void async__threads_free(async_loop *loop) {
    async__threads **slot = async__loop_threads(loop), *h;
    async__job *j;
    if (!slot || !*slot) return;
    h = *slot;
    /* wait for every call in flight; what they finish is taken back as usual (their awaiters are
     * woken into a loop that will not run them again, and discarded just below) */
    home_flush(h);
    pthread_mutex_lock(&h->mu);
    h->freeing = true;
    while (h->inflight) {
        async__job *list;
        while (!h->done) pthread_cond_wait(&h->drained, &h->mu);
        list = h->done;
        h->done = NULL;
        pthread_mutex_unlock(&h->mu);
        home_take_back(h, list);
        home_flush(h); /* parked closes that could go now */
        pthread_mutex_lock(&h->mu);
    }
    pthread_mutex_unlock(&h->mu);
    /* no pool thread will touch h again */
    while ((j = h->live) != NULL) {
        live_unlink(h, j);
        job_discard(h, j);
    }
    while (h->files) {
        close(h->files->fd);
        file_free(h, h->files);
    }
    while ((j = h->free_jobs) != NULL) {
        h->free_jobs = j->next;
        loop_release(loop, j);
    }
    if (h->shared) pool_use(h->shared, -1);
    if (h->own) pool_stop(h->own, h->own->nthreads);
    if (!h->held) ev_ref(h->ev); /* balances the unref of an idle ev_async */
    ev_async_stop(h->ev, &h->wake);
    ev_ref(h->ev);
    ev_prepare_stop(h->ev, &h->flush);
    pthread_cond_destroy(&h->drained);
    pthread_mutex_destroy(&h->mu);
    loop_release(loop, h);
    *slot = NULL;
}

int async_loop_set_pool(async_loop *loop, async_pool *pool) {
    int err = 0;
    async__threads *h = home_of(loop, &err);
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
    async__threads *h;
    if (!loop || threads < 1 || threads > ASYNC_POOL_MAX_THREADS) return ASYNC_EINVAL;
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
    async__threads **slot = async__loop_threads(loop);
    return slot && *slot ? (*slot)->inflight : 0;
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

async__job *async__job_new(async_task *t, size_t extra, int *err) {
    async_loop *loop = async_task_loop(t);
    async__threads *h;
    async__job *j;
    if (!loop) {
        *err = ASYNC_EINVAL;
        return NULL;
    }
    h = home_of(loop, err);
    if (!h || !home_pool(h, err)) return NULL;
    if (extra == 0 && h->free_jobs) {
        j = h->free_jobs;
        h->free_jobs = j->next;
        h->nfree--;
    } else {
        if (extra > SIZE_MAX - sizeof *j - sizeof(async__align)) {
            *err = ASYNC_ENOMEM;
            return NULL;
        }
        j = (async__job *)loop_alloc(loop, sizeof *j + extra);
        if (!j) {
            *err = ASYNC_ENOMEM;
            return NULL;
        }
    }
    memset(j, 0, sizeof *j);
    j->home = h;
    j->recycle = extra == 0;
    return j;
}

void async__job_drop(async__job *j) { job_free(j->home, j); }

int async__job_start(async_task *t, async_thread_call *call, async__job *j) {
    async__threads *h = j->home;
    int rc = async__future_start(t, &j->done);
    if (rc != ASYNC__WAIT) { /* a cancellation was pending: the call never starts */
        job_free(h, j);
        return ASYNC__RAISE;
    }
    call->job = j;
    call->result = 0;
    h->inflight++;
    if (!h->held) { /* calls in flight: the loop waits for them */
        h->held = true;
        ev_ref(h->ev);
    }
    if (j->file && j->closes) {
        j->file->closing = true;
        if (j->file->busy) { /* calls on the file still run (cancelled ones): close after them */
            j->state = JOB_PARKED;
            j->file->close_job = j;
            return ASYNC__WAIT;
        }
    } else if (j->file) {
        j->file->busy++;
    }
    job_launch(h, j);
    return ASYNC__WAIT;
}

int async__job_wait(async_task *t, async_thread_call *call, async__job **out) {
    async__job *j = call->job;
    int rc;
    if (!j) return async__thread_raise(t, call, ASYNC_EINVAL);
    rc = async__future_check(t, &j->done);
    if (rc == ASYNC__WAIT) return ASYNC__WAIT;
    call->job = NULL;
    if (rc != ASYNC__GO) { /* cancelled: the thread runs on, its outcome goes to the dtor */
        if (j->state == JOB_DONE) {
            live_unlink(j->home, j);
            job_discard(j->home, j);
        } else {
            j->detached = 1;
        }
        return rc;
    }
    live_unlink(j->home, j);
    *out = j;
    return ASYNC__GO;
}

int async__job_end(async_task *t, async_thread_call *call, async__job *j) {
    int rc = j->rc;
    call->result = rc ? 0 : j->result;
    job_free(j->home, j);
    return rc ? async__thread_raise(t, call, rc) : ASYNC__GO;
}

/* ---- to_thread ---- */

int async__thread_start(async_task *t, async_thread_call *call, async_thread_fn fn, void *arg,
                        async_thread_dtor dtor) {
    async__job *j;
    int err = 0;
    if (!call) {
        async__raise(t, async_error_of(ASYNC_EINVAL));
        return ASYNC__RAISE;
    }
    call->job = NULL;
    call->result = 0;
    if (!fn) return async__thread_raise(t, call, ASYNC_EINVAL);
    j = async__job_new(t, 0, &err);
    if (!j) return async__thread_raise(t, call, err);
    j->fn = fn;
    j->arg = arg;
    j->dtor = dtor;
    return async__job_start(t, call, j);
}

int async__thread_check(async_task *t, async_thread_call *call) {
    async__job *j = NULL;
    int rc = async__job_wait(t, call, &j);
    return rc == ASYNC__GO ? async__job_end(t, call, j) : rc;
}

intptr_t async_thread_result(const async_thread_call *call) { return call ? call->result : 0; }
