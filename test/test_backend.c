/* The backend seam of the hosted runtime (src/backend.h, src/loop.c): a hosted loop is known by its
 * backend table; the one errno translation; name lookups as calls on the loop's thread pool (queued
 * behind other calls, under the connect's deadline, cancelled, closed under, out of memory, waited for
 * by async_loop_free); what async_loop_free frees, in its order; and the loop's door for other threads
 * (a posted call runs on the loop's thread, which knows itself). */
#include "internal.h" /* src/: the hosted loop's private interface, for the door tests */
#include "test.h"
#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <unistd.h>

static int bk_run(async_loop *loop, async_task *main) {
    int rc;
    ASSERT(loop != NULL);
    rc = async_run(loop, main);
    async_loop_free(loop);
    return rc;
}

/* ---- the loop and its table ---- */

TEST(backend_hosted_loops_are_known_by_their_table) {
    static async_loop plain;
    struct ev_loop *ev;
    async_loop *real = async_loop_new(0), *virt = async_loop_new(ASYNC_LOOP_VIRTUAL_CLOCK), *attached;
    ASSERT(real != NULL && virt != NULL);
    ASSERT(async_loop_backend(real) != NULL);
    ASSERT(async_loop_backend(virt) != NULL);
    ASSERT(async_loop_backend(real) != async_loop_backend(virt)); /* virtual time: another table */
    ASSERT(!async_loop_virtual(real));
    ASSERT(async_loop_virtual(virt));
    ev = async_loop_ev(real);
    ASSERT(ev != NULL);
    attached = async_loop_attach(ev); /* an application's ev_loop: the real clock's table */
    ASSERT(attached != NULL);
    ASSERT(async_loop_backend(attached) == async_loop_backend(real));
    ASSERT(async_loop_ev(attached) == ev);
    async_loop_free(attached);
    /* a loop of the core's has none: no libev under it, nothing of the runtime's to free */
    async_loop_init(&plain);
    ASSERT(async_loop_backend(&plain) == NULL);
    ASSERT(async_loop_backend_data(&plain) == NULL);
    ASSERT(async_loop_ev(&plain) == NULL);
    ASSERT(async_loop_virtual(&plain));
    async_loop_free(&plain); /* ignored */
    ASSERT(async_loop_backend(NULL) == NULL);
    ASSERT(!async_loop_virtual(NULL));
    async_loop_free(real);
    async_loop_free(virt);
}

TEST(backend_advance_moves_virtual_time_only) {
    static async_loop plain;
    async_loop *real = async_loop_new(0);
    async_ms before;
    ASSERT(real != NULL);
    async_loop_init(&plain);
    async_loop_advance(&plain, 1500);
    ASSERT_EQ(async_loop_now(&plain), 1500);
    async_loop_advance(&plain, 0);
    ASSERT_EQ(async_loop_now(&plain), 1500);
    before = async_loop_now(real);
    async_loop_advance(real, 1000000); /* a real clock is the clock's */
    ASSERT((async_ms)(async_loop_now(real) - before) < 1000000u);
    async_loop_advance(NULL, 1);
    async_loop_free(real);
}

/* ---- one errno translation: every errno both earlier tables knew, by name ---- */

TEST(backend_errno_translation_is_one_table_for_files_and_sockets) {
    /* what the files' table had */
    ASSERT_EQ(async__errno_code(ENOENT), ASYNC_ENOENT);
    ASSERT_EQ(async__errno_code(EACCES), ASYNC_EACCES);
    ASSERT_EQ(async__errno_code(EPERM), ASYNC_EPERM);
    ASSERT_EQ(async__errno_code(EEXIST), ASYNC_EEXIST);
    ASSERT_EQ(async__errno_code(EISDIR), ASYNC_EISDIR);
    ASSERT_EQ(async__errno_code(ENOTDIR), ASYNC_ENOTDIR);
    ASSERT_EQ(async__errno_code(ENFILE), ASYNC_EMFILE);
    ASSERT_EQ(async__errno_code(ENOSPC), ASYNC_ENOSPC);
#ifdef EDQUOT
    ASSERT_EQ(async__errno_code(EDQUOT), ASYNC_ENOSPC); /* a quota is a full disk */
#endif
    ASSERT_EQ(async__errno_code(EFBIG), ASYNC_EFBIG);
    ASSERT_EQ(async__errno_code(EROFS), ASYNC_EROFS);
    ASSERT_EQ(async__errno_code(ELOOP), ASYNC_ELOOP);
    ASSERT_EQ(async__errno_code(ENAMETOOLONG), ASYNC_ENAMETOOLONG);
    ASSERT_EQ(async__errno_code(EOVERFLOW), ASYNC_EOVERFLOW);
    ASSERT_EQ(async__errno_code(EBUSY), ASYNC_EBUSY);
    ASSERT_EQ(async__errno_code(ENXIO), ASYNC_ENXIO);
    ASSERT_EQ(async__errno_code(EIO), ASYNC_EIO);
    ASSERT_EQ(async__errno_code(EBADF), ASYNC_EBADF);
    ASSERT_EQ(async__errno_code(EINVAL), ASYNC_EINVAL);
    ASSERT_EQ(async__errno_code(ENOMEM), ASYNC_ENOMEM);
    /* what the sockets' rules gave: every code the library has, and the nearest for two */
    ASSERT_EQ(async__errno_code(EAGAIN), ASYNC_EAGAIN);
    ASSERT_EQ(async__errno_code(EWOULDBLOCK), ASYNC_EAGAIN);
    ASSERT_EQ(async__errno_code(ENOBUFS), ASYNC_ENOMEM);
    ASSERT_EQ(async__errno_code(EPIPE), ASYNC_EPIPE);
    ASSERT_EQ(async__errno_code(ECONNRESET), ASYNC_ECONNRESET);
    ASSERT_EQ(async__errno_code(ECONNABORTED), ASYNC_ECONNABORTED);
    ASSERT_EQ(async__errno_code(ECONNREFUSED), ASYNC_ECONNREFUSED);
    ASSERT_EQ(async__errno_code(ENOTCONN), ASYNC_ENOTCONN);
    ASSERT_EQ(async__errno_code(EADDRINUSE), ASYNC_EADDRINUSE);
    ASSERT_EQ(async__errno_code(ENETUNREACH), ASYNC_ENETUNREACH);
    ASSERT_EQ(async__errno_code(EHOSTUNREACH), ASYNC_EHOSTUNREACH);
    ASSERT_EQ(async__errno_code(ETIMEDOUT), ASYNC_ETIMEDOUT);
    ASSERT_EQ(async__errno_code(EMSGSIZE), ASYNC_EMSGSIZE);
    ASSERT_EQ(async__errno_code(EPROTO), ASYNC_EPROTO);
    ASSERT_EQ(async__errno_code(ENOTSUP), ASYNC_ENOTSUP);
    ASSERT_EQ(async__errno_code(EOPNOTSUPP), ASYNC_ENOTSUP);
    ASSERT_EQ(async__errno_code(ESHUTDOWN), ASYNC_ESHUTDOWN);
    ASSERT_EQ(async__errno_code(ECANCELED), ASYNC_ECANCELED);
    ASSERT_EQ(async__errno_code(ERANGE), ASYNC_ERANGE);
    /* neither had these: a generic I/O error */
    ASSERT_EQ(async__errno_code(ENOTSOCK), ASYNC_EIO);
    ASSERT_EQ(async__errno_code(EDOM), ASYNC_EIO);
    ASSERT_EQ(async__errno_code(0), ASYNC_EIO);
}

/* ---- name lookups on the thread pool ---- */

/* A call that holds the pool's only thread until the test opens the gate. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int open, started;
} bk_gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};

static int bk_gated(void *arg, intptr_t *result) {
    (void)arg;
    pthread_mutex_lock(&bk_gate.mu);
    bk_gate.started++;
    while (!bk_gate.open) pthread_cond_wait(&bk_gate.cv, &bk_gate.mu);
    pthread_mutex_unlock(&bk_gate.mu);
    *result = 7;
    return 0;
}

static int bk_gate_started(void) {
    int n;
    pthread_mutex_lock(&bk_gate.mu);
    n = bk_gate.started;
    pthread_mutex_unlock(&bk_gate.mu);
    return n;
}

static void bk_gate_set(int open) {
    pthread_mutex_lock(&bk_gate.mu);
    bk_gate.open = open;
    if (!open) bk_gate.started = 0;
    pthread_cond_broadcast(&bk_gate.cv);
    pthread_mutex_unlock(&bk_gate.mu);
}

ASYNC_DEF(bk_gated_call, async_thread_call call; int code;) {
    ASYNC_TRY(t) {
        AWAIT_TO_THREAD(t, &f->call, bk_gated, NULL, NULL);
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

enum { BK_WAIT, BK_CANCEL, BK_CLOSE };

/* A connect by name queued behind a call that holds the pool's one thread, ended by its deadline, a
 * cancellation or a close of its stream while the lookup has not even started. */
typedef struct {
    async_task task;
    async_group g;
    bk_gated_call_frame gated;
    struct {
        async_task task;
        int code;
    } conn;
    async_stream s;
    int how, port;
    int64_t ms;
    unsigned jobs; /* calls in flight while the connect waited */
} bk_queued_frame;

static bk_queued_frame bk_queued;

/* The connect by name of bk_queued (a task of its own): its code in bk_queued.conn.code. */
static async_status bk_conn_run(async_task *t) {
    bk_queued_frame *f = &bk_queued;
    ASYNC_BEGIN(t);
    f->conn.code = 0;
    ASYNC_TRY(t) {
        AWAIT_STREAM_CONNECT(t, &f->s, "127.1", f->port, f->ms);
    }
    ASYNC_CATCH(t) {
        f->conn.code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
    ASYNC_END(t);
}

static async_status bk_queued_run(async_task *t) {
    bk_queued_frame *f = (bk_queued_frame *)t;
    ASYNC_BEGIN(t);
    ASSERT_EQ(async_loop_set_threads(async_task_loop(t), 1), 0);
    ASYNC_SPAWN(t, &f->g, ASYNC_CALL(bk_gated_call, &f->gated));
    while (bk_gate_started() == 0 && !async_task_done(&f->gated.task)) AWAIT_SLEEP(t, 1);
    ASSERT_EQ(f->gated.code, 0); /* it runs on the pool's thread, which it holds */
    async_task_init(&f->conn.task, bk_conn_run);
    ASYNC_SPAWN(t, &f->g, &f->conn.task);
    AWAIT_SLEEP(t, 20); /* the lookup is queued behind the gated call */
    f->jobs = async_loop_jobs(async_task_loop(t));
    if (f->how == BK_CANCEL) async_cancel(&f->conn.task);
    if (f->how == BK_CLOSE) async_stream_close(&f->s);
    while (!async_task_done(&f->conn.task)) AWAIT_SLEEP(t, 1);
    bk_gate_set(1); /* the gated call ends; the lookup runs, and its answer is dropped */
    AWAIT_GROUP(t, &f->g);
    while (async_loop_jobs(async_task_loop(t)) > 0) AWAIT_SLEEP(t, 1);
    ASYNC_END(t);
}

/* Runs bk_queued for how; the connect's code. */
static int bk_queued_connect(int how, int64_t ms) {
    async_loop *loop = async_loop_new(0);
    int port, lfd = test_listen_raw(8, &port), rc;
    bk_gate_set(0);
    ASYNC_FRAME_INIT(&bk_queued, bk_queued_run);
    bk_queued.how = how;
    bk_queued.port = port;
    bk_queued.ms = ms;
    rc = async_run(loop, &bk_queued.task);
    bk_gate_set(1); /* whatever happened: the loop's free waits for the gated call */
    async_loop_free(loop);
    ASSERT_EQ(rc, 0);
    ASSERT_EQ(bk_queued.jobs, 2); /* the gated call and the lookup */
    ASSERT_EQ(async_stream_fd(&bk_queued.s), -1); /* no socket was made */
    close(lfd);
    return bk_queued.conn.code;
}

TEST_TAGGED(backend_lookup_queued_behind_other_calls_is_under_the_connects_deadline, TEST_THREADS) {
    ASSERT_EQ(bk_queued_connect(BK_WAIT, 30), ASYNC_ETIMEDOUT);
}

TEST_TAGGED(backend_lookup_cancelled_while_queued, TEST_THREADS) {
    ASSERT_EQ(bk_queued_connect(BK_CANCEL, 5000), ASYNC_ECANCELED);
}

TEST_TAGGED(backend_lookup_whose_stream_closes_while_queued_is_ebadf, TEST_THREADS) {
    ASSERT_EQ(bk_queued_connect(BK_CLOSE, -1), ASYNC_EBADF);
}

/* async_loop_free waits for a lookup in flight, as for any call on the pool, and frees its answer. */
TEST_TAGGED(backend_loop_free_waits_for_a_lookup_in_flight, TEST_THREADS) {
    static struct {
        async_task task;
    } c;
    int port, lfd = test_listen_raw(8, &port);
    async_loop *loop = async_loop_new(0);
    ASSERT(loop != NULL);
    bk_queued.port = port;
    bk_queued.ms = 5000;
    async_task_init(&c.task, bk_conn_run);
    ASSERT_EQ(async_spawn(loop, &c.task), 0);
    async_poll(loop); /* the connect's first step: the lookup is started, handed to the pool at the pass's end */
    ASSERT_EQ(async_loop_jobs(loop), 1);
    async_loop_free(loop); /* returns once the lookup is back; ASan and valgrind see its answer freed */
    memset(&bk_queued.s, 0, sizeof bk_queued.s); /* it waited on the freed loop: never touched again */
    close(lfd);
}

/* The lookup's records come from the loop's allocator: failing, the connect fails with ASYNC_ENOMEM. */
static int bk_alloc_budget;
static void *bk_budget_realloc(void *ctx, void *p, size_t n) {
    (void)ctx;
    if (n == 0) {
        free(p);
        return NULL;
    }
    if (!p && bk_alloc_budget-- <= 0) return NULL;
    return realloc(p, n);
}

TEST_TAGGED(backend_lookup_without_memory_is_enomem, TEST_THREADS) {
    static struct {
        async_task task;
    } c;
    int port, lfd = test_listen_raw(8, &port), budget;
    bk_queued.port = port;
    bk_queued.ms = 2000;
    for (budget = 0; budget < 2; budget++) { /* no thread state; the state but no lookup record */
        async_loop *loop = async_loop_new(0);
        ASSERT(loop != NULL);
        async_loop_set_allocator(loop, bk_budget_realloc, NULL);
        bk_alloc_budget = budget;
        async_task_init(&c.task, bk_conn_run);
        ASSERT_EQ(bk_run(loop, &c.task), 0);
        ASSERT_EQ(bk_queued.conn.code, ASYNC_ENOMEM);
        ASSERT_EQ(async_stream_fd(&bk_queued.s), -1);
    }
    async_task_init(&c.task, bk_conn_run); /* with memory, the same stream connects by name */
    ASSERT_EQ(bk_run(async_loop_new(0), &c.task), 0);
    ASSERT_EQ(bk_queued.conn.code, 0);
    ASSERT(async_stream_fd(&bk_queued.s) >= 0);
    async_stream_close(&bk_queued.s);
    close(lfd);
}

/* ---- what async_loop_free frees, in order ---- */

static int bk_remote_calls;
static void bk_remote_fn(async_loop *loop, void *arg) {
    ASSERT(loop != NULL);
    bk_remote_calls += (int)(intptr_t)arg;
}

/* A remote door left open is freed with its loop, its queued calls run first (no leak: ASan, valgrind). */
TEST_TAGGED(backend_loop_free_frees_a_remote_left_open, TEST_THREADS) {
    async_loop *loop = async_loop_new(0);
    async_remote *r;
    ASSERT(loop != NULL);
    r = async_remote_new(loop);
    ASSERT(r != NULL);
    bk_remote_calls = 0;
    ASSERT_EQ(async_remote_call(r, bk_remote_fn, (void *)(intptr_t)1), 0);
    ASSERT_EQ(async_remote_call(r, bk_remote_fn, (void *)(intptr_t)2), 0);
    async_loop_free(loop);
    ASSERT_EQ(bk_remote_calls, 3);
}

ASYNC_DEF(bk_task, int fail;) {
    if (f->fail) ASYNC_THROW(t, ASYNC_EUSER + 1, "bk failed");
} ASYNC_END_DEF

/* Debug mode's report of tasks never started comes before the errors no one retrieved. */
TEST(backend_loop_free_reports_unstarted_tasks_then_unretrieved_errors) {
    static bk_task_frame failing, never;
    char buf[1024] = {0};
    const char *unstarted, *lost;
    int p[2], saved = dup(2);
    async_loop *loop = async_loop_new(ASYNC_LOOP_VIRTUAL_CLOCK);
    ASSERT(loop != NULL && saved >= 0);
    ASSERT_EQ(pipe(p), 0);
    ASSERT_EQ(async_loop_set_debug(loop, true), 0);
    ASSERT_EQ(async_spawn(loop, ASYNC_CALL(bk_task, &failing, 1)), 0);
    async_poll(loop); /* it fails, and no one retrieves its error */
    ASSERT_EQ(async_spawn(loop, ASYNC_CALL(bk_task, &never, 0)), 0);
    fflush(stderr);
    dup2(p[1], 2);
    async_loop_free(loop);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(p[1]);
    ASSERT(read(p[0], buf, sizeof buf - 1) > 0);
    close(p[0]);
    unstarted = strstr(buf, "was never started");
    lost = strstr(buf, "error never retrieved");
    ASSERT(unstarted != NULL && lost != NULL);
    ASSERT(unstarted < lost);
}

/* ---- the door for other threads ---- */

typedef struct {
    async__cb cb;
    async_loop *loop;
    bool ran, on_thread;
    async_future done;
} bk_post;

static void bk_post_fn(async_loop *loop, async__cb *cb) {
    bk_post *p = (bk_post *)(void *)cb;
    p->ran = true;
    p->on_thread = async__loop_on_thread(loop);
    async_future_set_value(&p->done, 1);
}

static void *bk_poster(void *arg) {
    bk_post *p = (bk_post *)arg;
    p->on_thread = async__loop_on_thread(p->loop); /* false: another thread */
    ASSERT_EQ(async__loop_post(p->loop, &p->cb), 0);
    return NULL;
}

ASYNC_DEF(bk_door, bk_post post; pthread_t th; bool other_thread_saw;) {
    ASSERT(async__loop_on_thread(async_task_loop(t)));
    f->post.cb.fn = bk_post_fn;
    f->post.loop = async_task_loop(t);
    async_future_init(&f->post.done);
    async__loop_hold(async_task_loop(t), +1); /* another thread will wake the loop: not a deadlock */
    ASSERT(pthread_create(&f->th, NULL, bk_poster, &f->post) == 0);
    pthread_join(f->th, NULL);
    f->other_thread_saw = f->post.on_thread;
    AWAIT_FUTURE(t, &f->post.done);
    async__loop_hold(async_task_loop(t), -1);
} ASYNC_END_DEF

TEST_TAGGED(backend_call_posted_from_another_thread_runs_on_the_loops_thread, TEST_THREADS) {
    static bk_door_frame f;
    async_loop *loop = async_loop_new(0);
    static async_loop plain;
    static async__cb cb;
    ASSERT_EQ(bk_run(loop, ASYNC_CALL(bk_door, &f)), 0);
    ASSERT(!f.other_thread_saw);
    ASSERT(f.post.ran);
    ASSERT(f.post.on_thread);
    async_loop_init(&plain); /* no hosted runtime: no door */
    cb.fn = bk_post_fn;
    ASSERT_EQ(async__loop_post(&plain, &cb), ASYNC_EINVAL);
    ASSERT(!async__loop_on_thread(&plain));
}
