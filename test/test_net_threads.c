/* Several loops and the calls between them: remote calls into a loop (async_remote, the thread-safe
 * call-soon) in order, async_run_threads (one loop per thread; the first error in index order; no
 * memory for a thread), and a call from one loop's thread into another's. */
#include "test.h"
#include "util.h"

#include <sys/resource.h>

/* ---- remote calls ---- */

static int net_remote_log[8], net_remote_n;

static void net_remote_fn(async_loop *loop, void *arg);

ASYNC_DEF(net_remote, async_remote *r; async_future done; int code_null;) {
    f->r = async_remote_new(async_task_loop(t));
    ASSERT(f->r != NULL);
    ASSERT_EQ(async_remote_call(f->r, net_remote_fn, (void *)(intptr_t)1), 0);
    ASSERT_EQ(async_remote_call(f->r, net_remote_fn, (void *)(intptr_t)2), 0); /* queued behind the first */
    f->code_null = async_remote_call(f->r, NULL, NULL);
    AWAIT_FUTURE(t, &f->done);
    ASSERT_EQ(async_remote_call(f->r, net_remote_fn, (void *)(intptr_t)3), 0);
    ASSERT_EQ(async_remote_call(f->r, net_remote_fn, (void *)(intptr_t)4), 0);
    async_remote_free(f->r); /* runs what is still queued */
} ASYNC_END_DEF

static net_remote_frame net_remote;

static void net_remote_fn(async_loop *loop, void *arg) {
    ASSERT(loop != NULL);
    net_remote_log[net_remote_n++] = (int)(intptr_t)arg;
    if ((intptr_t)arg == 2) async_future_set_value(&net_remote.done, 2);
}

TEST_TAGGED(net_threads_remote_calls_run_in_order_and_free_runs_the_rest, TEST_THREADS) {
    net_remote_n = 0;
    ASSERT_EQ(run_real(ASYNC_CALL(net_remote, &net_remote)), 0);
    ASSERT_EQ(net_remote.code_null, ASYNC_EINVAL);
    ASSERT_EQ(net_remote_n, 4);
    ASSERT_EQ(net_remote_log[0], 1);
    ASSERT_EQ(net_remote_log[1], 2);
    ASSERT_EQ(net_remote_log[2], 3);
    ASSERT_EQ(net_remote_log[3], 4);
}

/* ---- loops on threads ---- */

ASYNC_DEF(net_thread_main, int code; bool ran;) {
    f->ran = true;
    AWAIT_SLEEP(t, 1);
    if (f->code) ASYNC_THROW_ERROR(t, async_error_of(f->code));
} ASYNC_END_DEF

static net_thread_main_frame net_thread_mains[3];

/* arg: the code each main ends with; 1 means make_main gives no task for that index. */
static async_task *net_make_thread_main(unsigned i, void *arg) {
    const int *codes = (const int *)arg;
    if (codes[i] == 1) return NULL;
    return ASYNC_CALL(net_thread_main, &net_thread_mains[i], codes[i]);
}

TEST_TAGGED(net_threads_run_threads_returns_the_first_error_in_index_order, TEST_THREADS) {
    static const int second_fails[] = {0, ASYNC_EPROTO}, both_fail[] = {ASYNC_EPERM, ASYNC_EPROTO, 0},
                     no_task[] = {0, 1};
    ASSERT_EQ(async_run_threads(2, net_make_thread_main, (void *)second_fails), ASYNC_EPROTO);
    ASSERT(net_thread_mains[0].ran && net_thread_mains[1].ran);
    ASSERT_EQ(async_run_threads(3, net_make_thread_main, (void *)both_fail), ASYNC_EPERM);
    ASSERT(net_thread_mains[2].ran);
    memset(net_thread_mains, 0, sizeof net_thread_mains);
    ASSERT_EQ(async_run_threads(2, net_make_thread_main, (void *)no_task), ASYNC_EINVAL);
    ASSERT(!net_thread_mains[0].ran); /* nothing ran: every main is made first */
}

TEST_TAGGED(net_threads_run_threads_without_memory_for_a_thread, TEST_THREADS) {
    static const int codes[] = {0, 0};
    struct rlimit old;
    memset(net_thread_mains, 0, sizeof net_thread_mains);
    if (!net_cap_address_space(2u << 20, &old)) /* a thread's default stack is 8 MiB */
        test_skip("a sanitizer or valgrind manages memory its own way, or no address space limit can be set");
    ASSERT_EQ(async_run_threads(2, net_make_thread_main, (void *)codes), ASYNC_EAGAIN);
    ASSERT(setrlimit(RLIMIT_AS, &old) == 0);
    ASSERT(net_thread_mains[0].ran);  /* loop 0 runs on the calling thread */
    ASSERT(!net_thread_mains[1].ran); /* loop 1 had no thread */
}

/* ---- a call into another loop's thread ---- */

static void net_deliver(async_loop *loop, void *arg);

/* Loop 1 (receiver NULL) makes a remote and waits for the value; loop 0 sends it through the
 * receiver's remote. */
ASYNC_DEF(net_loop, struct net_loop_frame *receiver; async_future got; async_remote *remote; int value;) {
    if (!f->receiver) {
        __atomic_store_n(&f->remote, async_remote_new(async_task_loop(t)), __ATOMIC_RELEASE);
        ASSERT(f->remote != NULL);
        AWAIT_FUTURE(t, &f->got); /* only another thread can complete it: no deadlock is reported */
        f->value = (int)async_future_value(&f->got);
        async_remote_free(f->remote);
    } else {
        while (!__atomic_load_n(&f->receiver->remote, __ATOMIC_ACQUIRE)) AWAIT_SLEEP(t, 5);
        ASSERT_EQ(async_remote_call(f->receiver->remote, net_deliver, (void *)(intptr_t)42), 0);
        ASSERT_EQ(async_remote_call(NULL, net_deliver, NULL), ASYNC_EINVAL);
    }
} ASYNC_END_DEF

static net_loop_frame net_loops[2];

static void net_deliver(async_loop *loop, void *arg) {
    (void)loop;
    async_future_set_value(&net_loops[1].got, (intptr_t)arg); /* runs on loop 1's thread */
}

static async_task *net_make_loop(unsigned i, void *arg) {
    (void)arg;
    return ASYNC_CALL(net_loop, &net_loops[i], i == 0 ? &net_loops[1] : NULL);
}

TEST_TAGGED(net_threads_call_soon_into_another_loop, TEST_THREADS | TEST_WAITS) {
    ASSERT_EQ(async_run_threads(2, net_make_loop, NULL), 0);
    ASSERT_EQ(net_loops[1].value, 42);
    ASSERT_EQ(async_run_threads(0, net_make_loop, NULL), ASYNC_EINVAL);
    ASSERT(async_remote_new(NULL) == NULL);
}

/* ---- cancelling a task from another thread ---- */

typedef struct {
    async_task *target;
    async_remote *r;
    bool direct_refused;
    int remote_rc;
} cross_cancel;

/* On a pool thread: async_cancel is refused there; async_remote_cancel asks the loop's thread to do it. */
static int cross_cancel_fn(void *arg, intptr_t *result) {
    cross_cancel *c = (cross_cancel *)arg;
    (void)result;
    c->direct_refused = !async_cancel(c->target);
    c->remote_rc = async_remote_cancel(c->r, c->target);
    return 0;
}

ASYNC_DEF(cross_canceller, sleeper_frame target; cross_cancel c; async_thread_call call; async_deadline d;
          bool call_returned, ended_by_cancel; double took;) {
    f->took = now_s();
    async_spawn(async_task_loop(t), sleeper(&f->target, 60000, 0)); /* a minute, unless cancelled */
    AWAIT_YIELD(t); /* it sleeps now */
    f->c.target = &f->target.task;
    f->c.r = async_remote_new(async_task_loop(t));
    ASYNC_TRY(t) {
        if (!f->c.r) ASYNC_THROW(t, ASYNC_ENOMEM, "async_remote_new failed");
        AWAIT_TO_THREAD(t, &f->call, cross_cancel_fn, &f->c, NULL);
        f->call_returned = true;
        if (f->c.remote_rc) ASYNC_THROW_ERROR(t, async_error_of(f->c.remote_rc));
        /* bounded: whatever a fault stops must not leave the test a minute to wait */
        ASYNC_TIMEOUT(t, &f->d, 5000) {
            ASYNC_TRY(t) {
                AWAIT(t, &f->target.task);
            }
            ASYNC_EXCEPT(t, ASYNC_ECANCELED) {
                f->took = now_s() - f->took;
                f->ended_by_cancel = true; /* the remote's cancel, before this thread's own in the finally */
            }
            ASYNC_END_TRY(t);
        }
        ASYNC_END_TIMEOUT(t, &f->d);
    }
    ASYNC_FINALLY(t) {
        async_cancel(&f->target.task); /* on this thread: done already, unless a fault came first */
        /* a thread call cancelled while it runs may still use the remote: the loop's free frees it then,
         * after waiting for the thread */
        if (f->c.r && f->call_returned) async_remote_free(f->c.r);
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

TEST_TAGGED(net_threads_cancel_from_another_thread_is_refused_and_remote_cancel_does_it, TEST_THREADS) {
    static cross_canceller_frame f;
    const char *err;
    test_capture_stderr();
    ASSERT_EQ(run_real(ASYNC_CALL(cross_canceller, &f)), 0);
    err = test_release_stderr();
    ASSERT(f.c.direct_refused);
    ASSERT_EQ(f.c.remote_rc, 0);
    ASSERT(f.ended_by_cancel);
    ASSERT(async_task_cancelled(&f.target.task));
    ASSERT(f.target.cancelled);
    ASSERT(f.took > 0 && f.took < 30.0); /* cancelled, not slept out */
    ASSERT(strstr(err, "async: async_cancel called from a thread that does not run the task's loop: refused") !=
           NULL);
    ASSERT_EQ(async_remote_cancel(NULL, &f.target.task), ASYNC_EINVAL);
    ASSERT_EQ(async_remote_cancel((async_remote *)1, NULL), ASYNC_EINVAL); /* t is checked first */
}

/* ---- the simulated world: one loop on one thread ---- */

ASYNC_HTTP_DEF(net_sim_hello) {
    async_http_response_text(f->res, 200, "hello");
} ASYNC_END_DEF

static const async_http_route net_sim_routes[] = {ASYNC_HTTP_ROUTE("GET", NULL, net_sim_hello),
                                                  ASYNC_HTTP_ROUTES_END};

/* A server made with the main (as hello_server makes it), a client of the same loop that gets its
 * answer, then the server closed. */
ASYNC_DEF(net_sim_main, async_http_server *http; bool simulated; async_group g; async_http_client c; int status;
          char body[16];) {
    f->simulated = async_loop_simulated(async_task_loop(t));
    ASYNC_SPAWN(t, &f->g, async_http_server_serve(f->http));
    {
        static char url[64];
        snprintf(url, sizeof url, "http://127.0.0.1:%d/", async_http_server_port(f->http));
        AWAIT(t, async_http_client_get(&f->c, url, TEST_LONG_MS));
    }
    f->status = async_http_client_status(&f->c);
    snprintf(f->body, sizeof f->body, "%s", async_http_client_body(&f->c, NULL));
    async_http_client_close(&f->c);
    async_http_server_close(f->http, 0);
    AWAIT_GROUP(t, &f->g);
} ASYNC_END_DEF

static struct {
    async_http_server http;
    net_sim_main_frame main;
    unsigned made; /* make_main calls */
    int listen_rc;
} net_sim;

static async_task *net_make_sim_main(unsigned i, void *arg) {
    (void)i;
    (void)arg;
    net_sim.made++;
    net_sim.listen_rc = async_http_server_listen(&net_sim.http, "127.0.0.1", 0, 0, NULL, net_sim_routes, NULL);
    if (net_sim.listen_rc) return NULL;
    return ASYNC_CALL(net_sim_main, &net_sim.main, &net_sim.http);
}

TEST(net_threads_one_loop_runs_in_the_simulated_world_and_more_are_refused) {
    memset(&net_sim, 0, sizeof net_sim);
    ASSERT_EQ(setenv("ASYNC_SIM", "3", 1), 0); /* this test's process alone */
    ASSERT_EQ(async_run_threads(2, net_make_sim_main, NULL), ASYNC_ENOTSUP);
    ASSERT_EQ(net_sim.made, 0); /* refused before any main is made: no port taken */
    ASSERT_EQ(async_run_threads(1, net_make_sim_main, NULL), 0);
    ASSERT_EQ(net_sim.made, 1);
    ASSERT_EQ(net_sim.listen_rc, 0);
    ASSERT(net_sim.main.simulated);
    ASSERT_EQ(net_sim.main.status, 200);
    ASSERT_STR_EQ(net_sim.main.body, "hello");
    ASSERT_EQ(unsetenv("ASYNC_SIM"), 0);
}

TEST(net_threads_a_world_current_on_the_thread_is_refused) {
    async_loop *world = async_sim_new(NULL);
    ASSERT(world != NULL);
    memset(&net_sim, 0, sizeof net_sim);
    ASSERT_EQ(async_run_threads(1, net_make_sim_main, NULL), ASYNC_ENOTSUP); /* its servers are its own */
    ASSERT_EQ(async_run_threads(2, net_make_sim_main, NULL), ASYNC_ENOTSUP);
    ASSERT_EQ(net_sim.made, 0);
    ASSERT(async_remote_new(world) == NULL); /* no thread can reach into a world */
    async_loop_free(world);
    ASSERT_EQ(async_run_threads(1, net_make_sim_main, NULL), 0); /* a real loop again */
    ASSERT(!net_sim.main.simulated);
    ASSERT_EQ(net_sim.main.status, 200);
}
