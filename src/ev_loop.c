/* The libev backend: the loop's clock, its blocking wait, and embedding in an application's ev_loop.
 *
 * Two ways to drive the scheduler:
 *  - async_run (async_loop_new): the core calls async_poll for a pass, then wait() blocks in
 *    ev_run(EVRUN_ONCE) until the next timer is due or I/O arrives.
 *  - async_loop_attach: the application calls ev_run; an ev_prepare callback runs each pass (the whole
 *    batch of ready tasks in one callback), one ev_timer stands for every sleeper, and an ev_idle keeps
 *    libev from blocking while tasks are ready. */
#define _POSIX_C_SOURCE 200809L
#include "internal.h"

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct async__hosted {
    async_loop loop; /* first: the loop pointer is the block pointer */
    struct ev_loop *ev;
    bool owns_ev;
    ev_timer timer;     /* the next timer deadline */
    ev_prepare prepare; /* attach mode: one pass per libev iteration */
    ev_idle idle;       /* attach mode: do not block while tasks are ready */
    async__threads *threads; /* to_thread and files (thread_pool.c), made on first use */
} async__hosted;

async_ms async__monotonic_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (async_ms)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}

static async_ms hosted_clock(async_loop *loop) {
    (void)loop;
    return async__monotonic_ms();
}

static void *hosted_realloc(void *ctx, void *ptr, size_t size) {
    (void)ctx;
    if (size == 0) { /* the core's way of freeing */
        free(ptr);
        return NULL;
    }
    return realloc(ptr, size);
}

static void hosted_report(async_loop *loop, async_task *task, const async_error *error, void *ctx) {
    (void)loop;
    (void)ctx;
    /* error is never NULL: only a task that raised is reported, and async__raise stores EINVAL's record
     * for a NULL error */
    fprintf(stderr, "async: error never retrieved in %s: %s (%d)\n", async_task_name(task),
            async_error_message(error), error->code);
}

static void timer_cb(struct ev_loop *ev, ev_timer *w, int revents) {
    (void)ev;
    (void)w;
    (void)revents; /* waking up is all it is for: the next pass fires the due sleepers */
}

static void idle_cb(struct ev_loop *ev, ev_idle *w, int revents) {
    (void)ev;
    (void)w;
    (void)revents;
}

/* Arms the single ev_timer for `timeout_ms` (stopped if negative; never 0: both callers handle "tasks
 * are ready" without the timer, so an armed interval is at least 1 ms). It repeats, so that once it has
 * fired it still holds the application's ev_run open until the next prepare callback runs the sleepers
 * it woke and re-arms it (or stops it when nothing is left). */
static void arm_timer(async__hosted *h, int32_t timeout_ms) {
    ev_timer_stop(h->ev, &h->timer);
    if (timeout_ms > 0) {
        double s = timeout_ms / 1000.0;
        ev_timer_set(&h->timer, s, s);
        ev_timer_start(h->ev, &h->timer);
    }
}

static bool hosted_wait(async_loop *loop, int32_t timeout_ms) {
    async__hosted *h = (async__hosted *)(void *)loop;
    int active;
    if (timeout_ms == 0) { /* tasks are ready: look at I/O without blocking */
        ev_run(h->ev, EVRUN_NOWAIT);
        return true;
    }
    arm_timer(h, timeout_ms);
    active = ev_run(h->ev, EVRUN_ONCE);
    ev_timer_stop(h->ev, &h->timer);
    /* a callback that woke a task may have stopped the last active watcher: that is no deadlock */
    return active != 0 || async_loop_has_ready(loop);
}

/* The virtual clock: time jumps to the next timer (as async_run does without a wait hook), except while
 * calls run on threads: their completions may wake tasks before that timer, so block for them first. */
static bool virtual_wait(async_loop *loop, int32_t timeout_ms) {
    async__hosted *h = (async__hosted *)(void *)loop;
    if (async__threads_busy(loop)) {
        ev_run(h->ev, timeout_ms == 0 ? EVRUN_NOWAIT : EVRUN_ONCE);
        return true;
    }
    if (timeout_ms < 0) return false;
    loop->now += (async_ms)timeout_ms;
    return true;
}

static void prepare_cb(struct ev_loop *ev, ev_prepare *w, int revents) {
    async__hosted *h = (async__hosted *)(void *)((char *)w - offsetof(async__hosted, prepare));
    int32_t timeout = async_poll(&h->loop);
    (void)revents;
    if (timeout == 0) {
        if (!ev_is_active(&h->idle)) ev_idle_start(ev, &h->idle);
    } else if (ev_is_active(&h->idle)) {
        ev_idle_stop(ev, &h->idle);
    }
    arm_timer(h, timeout > 0 ? timeout : -1);
}

static async__hosted *hosted_new(struct ev_loop *ev, bool owns_ev) {
    async__hosted *h = (async__hosted *)calloc(1, sizeof *h);
    if (!h) return NULL;
    async_loop_init(&h->loop);
    async_loop_set_allocator(&h->loop, hosted_realloc, NULL);
    async_loop_set_error_handler(&h->loop, hosted_report, NULL);
    async_loop_set_clock(&h->loop, hosted_clock);
    h->loop.backend = h;
    h->ev = ev;
    h->owns_ev = owns_ev;
    ev_timer_init(&h->timer, timer_cb, 0., 0.);
    ev_prepare_init(&h->prepare, prepare_cb);
    ev_idle_init(&h->idle, idle_cb);
    return h;
}

async_loop *async_loop_new(unsigned flags) {
    const char *clock = getenv("ASYNC_CLOCK"), *debug;
    struct ev_loop *ev = ev_loop_new(EVFLAG_AUTO);
    async__hosted *h;
    if (!ev) return NULL;
    h = hosted_new(ev, true);
    if (!h) {
        ev_loop_destroy(ev);
        return NULL;
    }
    if ((flags & ASYNC_LOOP_VIRTUAL_CLOCK) || (clock && strcmp(clock, "virtual") == 0)) {
        async_loop_set_clock(&h->loop, NULL);
        h->loop.wait = virtual_wait;
    } else {
        h->loop.wait = hosted_wait;
    }
    debug = getenv("ASYNC_DEBUG");
    /* "0" and the empty string are off (as asyncio reads PYTHONASYNCIODEBUG: set and non-empty): an
     * empty value is how a shell script unsets a variable for one command */
    if (debug && *debug && strcmp(debug, "0") != 0 && async_loop_set_debug(&h->loop, true) == 0)
        async_debug_dump_on_sigquit(&h->loop);
    return &h->loop;
}

async_loop *async_loop_attach(struct ev_loop *ev) {
    async__hosted *h;
    if (!ev) return NULL;
    h = hosted_new(ev, false);
    if (!h) return NULL;
    ev_prepare_start(ev, &h->prepare);
    ev_unref(ev); /* the prepare watcher alone does not keep the application's ev_run going */
    return &h->loop;
}

async__threads **async__loop_threads(async_loop *loop) {
    return loop && loop->backend == (void *)loop ? &((async__hosted *)(void *)loop)->threads : NULL;
}

struct ev_loop *async_loop_ev(async_loop *loop) {
    /* only a hosted loop has one: its backend is itself (the loop is the first member) */
    return loop && loop->backend == (void *)loop ? ((async__hosted *)(void *)loop)->ev : NULL;
}

void async_loop_free(async_loop *loop) {
    async__hosted *h = (async__hosted *)(void *)loop;
    if (!h) return;
    async__debug_free(loop); /* reports tasks never started */
    async_loop_report_errors(loop);
    async__threads_free(loop); /* waits for calls still on threads */
    ev_timer_stop(h->ev, &h->timer);
    ev_idle_stop(h->ev, &h->idle);
    if (ev_is_active(&h->prepare)) {
        ev_ref(h->ev);
        ev_prepare_stop(h->ev, &h->prepare);
    }
    async_loop_free_storage(loop); /* the timer heap and lane */
    if (h->owns_ev) ev_loop_destroy(h->ev);
    free(h);
}

int async_main(async_task *main) {
    async_loop *loop = async_loop_new(0);
    async_ms start;
    int rc;
    if (!loop) {
        fprintf(stderr, "async: %s\n", async_strerror(ASYNC_ENOMEM));
        return ASYNC_ENOMEM;
    }
    start = async_loop_now(loop);
    rc = async_run(loop, main);
    if (rc) {
        const async_error *e = async_task_error(main);
        fprintf(stderr, "async: main failed: %s (%d)\n", e ? async_error_message(e) : async_strerror(rc), rc);
    }
    if (!loop->clock)
        fprintf(stderr, "async: virtual time %lu ms\n", (unsigned long)(async_ms)(async_loop_now(loop) - start));
    async_loop_free(loop);
    return rc;
}
