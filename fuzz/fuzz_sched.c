/* libFuzzer target: the scheduler under random programs. The input is a set of small programs, one per
 * top-level task, and a list of outside events; every task interprets its program (sleep, yield, await a
 * future or an event, hold the lock, hold a semaphore permit, put/get on a bounded queue, wait on a
 * condition, notify, wait_for / gather / task group / shield over child tasks running slices of its own
 * program, raise, cancel another task, spawn a new top-level task). The driver interleaves passes of
 * the loop with outside events (time moves, cancellations, futures and events set, queue items) and
 * finally cancels whatever still runs and drains the loop.
 *
 * Invariants, checked after every pass and at the end (a violation aborts, which libFuzzer reports):
 *   - the lock has at most one holder, the semaphore at most its value's worth, and a holder is the
 *     task the primitive names;
 *   - every task that started ran its outer finally block exactly once and has finished;
 *   - nothing is left behind: no timer, no ready task, no live group, no waiter in the lock, semaphore,
 *     condition, event, queue or futures; the lock is free and the semaphore has all its permits.
 * The core alone is under test (no libev): the loop runs on the virtual clock. */
#define ASYNC_IMPLEMENTATION
#include "async.h"

#include <stdio.h>
#include <stdlib.h>

#define POOL 256
#define NFUT 4
#define SEM_VALUE 2
#define QCAP 2
#define MAX_DEPTH 3

enum {
    OP_SLEEP, OP_YIELD, OP_FUTURE, OP_LOCK, OP_SEM, OP_QPUT, OP_QGET, OP_EVENT, OP_COND, OP_NOTIFY,
    OP_TIMEOUT, OP_GATHER, OP_GROUP, OP_SHIELD, OP_THROW, OP_CANCEL, OP_SPAWN, OP_SET, NOPS
};

typedef struct worker worker;
struct worker {
    async_task task;
    int depth, started, finally_runs;
    const uint8_t *prog;
    size_t len, pc;
    uint8_t op, arg;
    intptr_t item;
    async_group group;
    async_timeout tmo;
    worker *kid[2];
};

static struct {
    async_loop loop;
    worker pool[POOL];
    unsigned used;
    async_future futs[NFUT];
    async_lock lock, cond_lock;
    async_condition cond;
    async_semaphore sem;
    async_event event;
    async_queue queue;
    intptr_t qstore[QCAP];
    worker *lock_holder;
    int sem_holders;
} S;

#define CHECK(cond)                                                                            \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "fuzz_sched: invariant broken at line %d: %s\n", __LINE__, #cond); \
            abort();                                                                           \
        }                                                                                      \
    } while (0)

static const async_error boom = {ASYNC_EUSER + 1, "boom"};

static async_status worker_run(async_task *t);

/* A child running the next `n` bytes of w's program (taken from it), or an empty one. */
static worker *kid_new(worker *w, size_t n) {
    worker *k;
    if (S.used == POOL) return NULL;
    k = &S.pool[S.used++];
    ASYNC_FRAME_INIT(k, worker_run);
    k->depth = w ? w->depth + 1 : 0;
    if (w && k->depth < MAX_DEPTH) {
        if (n > w->len - w->pc) n = w->len - w->pc;
        k->prog = w->prog + w->pc;
        k->len = n;
        w->pc += n;
    }
    return k;
}

static async_task *task_of(worker *k) { return k ? &k->task : NULL; }

static async_status worker_run(async_task *t) {
    worker *w = (worker *)t;
    ASYNC_BEGIN(t);
    w->started = 1;
    ASYNC_TRY(t) {
        while (w->pc < w->len) {
            w->op = (uint8_t)(w->prog[w->pc++] % NOPS);
            w->arg = w->pc < w->len ? w->prog[w->pc++] : 0;
            if (w->op == OP_SLEEP) {
                AWAIT_SLEEP(t, w->arg % 40);
            } else if (w->op == OP_YIELD) {
                AWAIT_YIELD(t);
            } else if (w->op == OP_FUTURE) {
                AWAIT_FUTURE(t, &S.futs[w->arg % NFUT]);
            } else if (w->op == OP_LOCK) {
                AWAIT_LOCK(t, &S.lock);
                ASYNC_TRY(t) {
                    CHECK(S.lock_holder == NULL && S.lock.holder == t);
                    S.lock_holder = w;
                    AWAIT_SLEEP(t, w->arg % 8);
                }
                ASYNC_FINALLY(t) {
                    CHECK(S.lock_holder == w);
                    S.lock_holder = NULL;
                    CHECK(async_lock_release(&S.lock) == 0);
                }
                ASYNC_END_TRY(t);
            } else if (w->op == OP_SEM) {
                AWAIT_SEMAPHORE(t, &S.sem);
                ASYNC_TRY(t) {
                    CHECK(++S.sem_holders <= SEM_VALUE);
                    AWAIT_SLEEP(t, w->arg % 8);
                }
                ASYNC_FINALLY(t) {
                    S.sem_holders--;
                    CHECK(async_semaphore_release(&S.sem) == 0);
                }
                ASYNC_END_TRY(t);
            } else if (w->op == OP_QPUT) {
                AWAIT_QUEUE_PUT(t, &S.queue, w->arg);
            } else if (w->op == OP_QGET) {
                AWAIT_QUEUE_GET(t, &S.queue, &w->item);
                CHECK(w->item >= 0 && w->item < 256);
            } else if (w->op == OP_EVENT) {
                AWAIT_EVENT(t, &S.event);
            } else if (w->op == OP_COND) {
                AWAIT_LOCK(t, &S.cond_lock);
                ASYNC_TRY(t) {
                    AWAIT_CONDITION(t, &S.cond);
                    CHECK(S.cond_lock.holder == t);
                }
                ASYNC_FINALLY(t) {
                    CHECK(S.cond_lock.holder == t); /* held again on every way out */
                    CHECK(async_lock_release(&S.cond_lock) == 0);
                }
                ASYNC_END_TRY(t);
            } else if (w->op == OP_NOTIFY) {
                AWAIT_LOCK(t, &S.cond_lock);
                CHECK(async_condition_notify(&S.cond, w->arg % 3) >= 0);
                CHECK(async_lock_release(&S.cond_lock) == 0);
            } else if (w->op == OP_TIMEOUT) {
                w->kid[0] = kid_new(w, w->arg % 12);
                ASYNC_TRY(t) {
                    AWAIT_TIMEOUT(t, &w->tmo, w->arg % 30, task_of(w->kid[0]));
                }
                ASYNC_CATCH(t) {
                    if (async_caught(t)->code != ASYNC_ETIMEDOUT) ASYNC_RERAISE(t);
                }
                ASYNC_END_TRY(t);
            } else if (w->op == OP_GATHER) {
                w->kid[0] = kid_new(w, w->arg % 10);
                w->kid[1] = kid_new(w, w->arg % 7);
                AWAIT_GATHER(t, &w->group, task_of(w->kid[0]), task_of(w->kid[1]));
            } else if (w->op == OP_GROUP) {
                w->kid[0] = kid_new(w, w->arg % 10);
                w->kid[1] = kid_new(w, w->arg % 7);
                ASYNC_SPAWN(t, &w->group, task_of(w->kid[0]));
                ASYNC_SPAWN(t, &w->group, task_of(w->kid[1]));
                AWAIT_GROUP(t, &w->group);
            } else if (w->op == OP_SHIELD) {
                w->kid[0] = kid_new(w, w->arg % 10);
                AWAIT_SHIELD(t, &w->group, task_of(w->kid[0]));
            } else if (w->op == OP_THROW) {
                if (w->arg & 1) ASYNC_THROW_ERROR(t, &boom);
            } else if (w->op == OP_CANCEL) {
                if (S.used) async_cancel(&S.pool[w->arg % S.used].task);
            } else if (w->op == OP_SPAWN) {
                w->kid[0] = kid_new(w, w->arg % 16);
                if (w->kid[0]) CHECK(async_spawn(&S.loop, &w->kid[0]->task) == 0);
            } else if (w->op == OP_SET) {
                async_future *f = &S.futs[w->arg % NFUT];
                if (async_future_done(f))
                    async_future_init(f);
                else if (w->arg & 4)
                    async_future_set_error(f, &boom);
                else
                    async_future_set_value(f, w->arg);
            }
        }
    }
    ASYNC_FINALLY(t) {
        CHECK(++w->finally_runs == 1);
    }
    ASYNC_END_TRY(t);
    ASYNC_END(t);
}

/* The loop's allocator: realloc, keeping what it holds so that each input frees it (the loop has no
 * free function of its own: the hosted async_loop_free does this). */
static void *held[16];

static void *fuzz_realloc(void *ctx, void *p, size_t n) {
    void *q;
    size_t i;
    (void)ctx;
    for (i = 0; p && i < 16 && held[i] != p; i++) {}
    if (!n) {
        free(p);
        if (p && i < 16) held[i] = NULL;
        return NULL;
    }
    q = realloc(p, n);
    if (!q) return NULL;
    if (!p)
        for (i = 0; i < 16 && held[i]; i++) {}
    CHECK(i < 16);
    held[i] = q;
    return q;
}

static void check_holders(void) {
    CHECK(!S.lock_holder || S.lock.holder == &S.lock_holder->task);
    CHECK(S.sem_holders >= 0 && S.sem_holders <= SEM_VALUE);
    CHECK(async_semaphore_value(&S.sem) + S.sem_holders <= SEM_VALUE);
}

/* Runs the loop until nothing is ready or sleeping (the virtual clock jumps), at most `passes`. */
static void settle(unsigned passes) {
    int32_t d;
    while (passes-- && (d = async_poll(&S.loop)) >= 0) {
        check_holders();
        S.loop.now += (async_ms)d;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t pos = 0, i, ntop;
    unsigned round;
    memset(&S, 0, sizeof S);
    async_loop_init(&S.loop);
    async_loop_set_allocator(&S.loop, fuzz_realloc, NULL);
    async_condition_init(&S.cond, &S.cond_lock);
    async_semaphore_init(&S.sem, SEM_VALUE, false);
    async_queue_init(&S.queue, ASYNC_QUEUE_FIFO, S.qstore, NULL, QCAP);
    if (size < 2) return 0;
    /* the top-level tasks: a count, then a length and a program each */
    ntop = 1 + data[pos++] % 6;
    for (i = 0; i < ntop && pos < size; i++) {
        worker *w = kid_new(NULL, 0);
        size_t n = data[pos++] % 48;
        if (n > size - pos) n = size - pos;
        w->prog = data + pos;
        w->len = n;
        pos += n;
        CHECK(async_spawn(&S.loop, &w->task) == 0);
    }
    /* the outside world: a pass, then an event, until the input ends */
    while (pos < size) {
        uint8_t op = data[pos++], arg = pos < size ? data[pos++] : 0;
        int32_t d = async_poll(&S.loop);
        check_holders();
        switch (op % 8) {
        case 0: if (d > 0) S.loop.now += (async_ms)(arg % (d + 1)); break;
        case 1: if (S.used) async_cancel(&S.pool[arg % S.used].task); break;
        case 2: async_future_set_value(&S.futs[arg % NFUT], arg); break;
        case 3: if (arg & 1) async_event_set(&S.event); else async_event_clear(&S.event); break;
        case 4: async_queue_put_nowait(&S.queue, arg); break;
        case 5: { intptr_t v; if (async_queue_get_nowait(&S.queue, &v) == 0) CHECK(v >= 0 && v < 256); } break;
        case 6: S.loop.now += arg; break;
        default: break;
        }
    }
    settle(10000);
    /* cancel what still waits, a few rounds (a task cancelled in a finally block's await goes on) */
    for (round = 0; round < 16; round++) {
        bool live = false;
        for (i = 0; i < S.used; i++)
            if (S.pool[i].task.state != 0 && !async_task_done(&S.pool[i].task)) {
                async_cancel(&S.pool[i].task);
                live = true;
            }
        if (!live && !async_loop_has_ready(&S.loop)) break;
        settle(10000);
    }
    for (i = 0; i < S.used; i++) {
        worker *w = &S.pool[i];
        CHECK(w->task.state == 0 || async_task_done(&w->task));
        CHECK(!w->started || w->finally_runs == 1);
        (void)async_task_code(&w->task); /* retrieved */
    }
    CHECK(async_loop_timers(&S.loop) == 0);
    CHECK(!async_loop_has_ready(&S.loop));
    CHECK(S.loop.live_groups == NULL);
    CHECK(!async_lock_locked(&S.lock) && !S.lock.waiters.head && !S.lock_holder);
    CHECK(!async_lock_locked(&S.cond_lock) && !S.cond_lock.waiters.head && !S.cond.waiters.head);
    CHECK(async_semaphore_value(&S.sem) == SEM_VALUE && !S.sem.waiters.head && S.sem_holders == 0);
    CHECK(!S.event.waiters.head);
    CHECK(!S.queue.getters.head && !S.queue.putters.head && !S.queue.joiners.head);
    CHECK(S.queue.reserved_items == 0 && S.queue.reserved_slots == 0);
    for (i = 0; i < NFUT; i++) CHECK(!S.futs[i].waiters);
    async_loop_report_errors(&S.loop);
    for (i = 0; i < 16; i++) {
        free(held[i]);
        held[i] = NULL;
    }
    return 0;
}
