/* Locks, events, conditions, semaphores and queues under the virtual clock: results, fair FIFO wake
 * order, error codes, cancellation of waiters (also after they were granted what they waited for),
 * busy re-initialisation, growing queues that cannot grow, shutdown; and NULL or uninitialised
 * primitives given to every call and await. */
#include "test.h"
#include "util.h"

/* ---- locks ---- */

ASYNC_DEF(locker, async_lock *lock; const char *name; int ms;) {
    ASYNC_TRY(t) {
        AWAIT_WITH_LOCK(t, f->lock) {
            LOG("%s@%u ", f->name, NOW());
            AWAIT_SLEEP(t, f->ms);
        }
        ASYNC_END_WITH_LOCK(t, f->lock);
    }
    ASYNC_CATCH(t) {
        LOG("%s!%d ", f->name, async_caught(t)->code);
        ASYNC_RERAISE(t);
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

TEST(sync_lock_is_granted_in_request_order) {
    async_loop *loop = new_loop();
    static async_lock l;
    static locker_frame w[4];
    async_spawn(loop, ASYNC_CALL(locker, &w[0], &l, "a", 10));
    async_spawn(loop, ASYNC_CALL(locker, &w[1], &l, "b", 10));
    async_spawn(loop, ASYNC_CALL(locker, &w[2], &l, "c", 10));
    drain(loop);
    ASSERT_STR_EQ(trace, "a@0 b@10 c@20 ");
    ASSERT(!async_lock_locked(&l));
    ASSERT_EQ(async_task_code(&w[1].task), 0);
}

TEST(sync_lock_newcomer_cannot_barge_past_a_woken_waiter) {
    async_loop *loop = new_loop();
    static async_lock l;
    static locker_frame w[3];
    async_spawn(loop, ASYNC_CALL(locker, &w[0], &l, "a", 10));
    async_spawn(loop, ASYNC_CALL(locker, &w[1], &l, "b", 10));
    async_poll(loop); /* a holds, b waits */
    loop->now += 10;
    async_poll(loop); /* a releases: b is granted the lock, not yet run */
    async_spawn(loop, ASYNC_CALL(locker, &w[2], &l, "c", 0)); /* c arrives before b runs */
    drain(loop);
    ASSERT_STR_EQ(trace, "a@0 b@10 c@20 ");
}

TEST(sync_lock_waiter_cancelled_while_queued_leaves_the_queue) {
    async_loop *loop = new_loop();
    static async_lock l;
    static locker_frame w[3];
    async_spawn(loop, ASYNC_CALL(locker, &w[0], &l, "a", 10));
    async_spawn(loop, ASYNC_CALL(locker, &w[1], &l, "b", 10));
    async_spawn(loop, ASYNC_CALL(locker, &w[2], &l, "c", 10));
    async_poll(loop);
    ASSERT(async_cancel(&w[1].task)); /* b leaves the queue at once */
    drain(loop);
    ASSERT_STR_EQ(trace, "a@0 b!-125 c@10 ");
    ASSERT(async_task_cancelled(&w[1].task));
    ASSERT(!async_lock_locked(&l));
}

TEST(sync_lock_granted_then_cancelled_passes_the_lock_on) {
    async_loop *loop = new_loop();
    static async_lock l;
    static locker_frame w[3];
    async_spawn(loop, ASYNC_CALL(locker, &w[0], &l, "a", 10));
    async_spawn(loop, ASYNC_CALL(locker, &w[1], &l, "b", 10));
    async_spawn(loop, ASYNC_CALL(locker, &w[2], &l, "c", 10));
    async_poll(loop);
    loop->now += 10;
    async_poll(loop);             /* a releases: b granted, ready */
    ASSERT(async_cancel(&w[1].task)); /* before b ever runs */
    drain(loop);
    ASSERT_STR_EQ(trace, "a@0 b!-125 c@10 ");
    ASSERT(!async_lock_locked(&l));
}

TEST(sync_lock_holder_cancelled_releases_in_its_with_block) {
    async_loop *loop = new_loop();
    static async_lock l;
    static locker_frame w[2];
    async_spawn(loop, ASYNC_CALL(locker, &w[0], &l, "a", 100));
    async_spawn(loop, ASYNC_CALL(locker, &w[1], &l, "b", 10));
    async_poll(loop);
    loop->now += 5;
    async_cancel(&w[0].task);
    drain(loop);
    ASSERT_STR_EQ(trace, "a@0 a!-125 b@5 ");
    ASSERT(!async_lock_locked(&l));
}

ASYNC_DEF(relock, async_lock lock; int step;) {
    AWAIT_LOCK(t, &f->lock);
    f->step = 1;
    AWAIT_LOCK(t, &f->lock); /* not re-entrant: a defined error, not a hang */
    f->step = 2;
} ASYNC_END_DEF

TEST(sync_lock_misuse_returns_codes) {
    async_loop *loop = new_loop();
    static async_lock l;
    static relock_frame f;
    ASSERT_EQ(async_lock_release(&l), ASYNC_EPERM);
    ASSERT_EQ(async_lock_release(NULL), ASYNC_EINVAL);
    ASSERT(!async_lock_locked(NULL));
    ASSERT_EQ(async_run(loop, ASYNC_CALL(relock, &f)), ASYNC_EDEADLK);
    ASSERT_EQ(f.step, 1);
    ASSERT(async_lock_locked(&f.lock));
}

/* ---- events ---- */

ASYNC_DEF(event_waiter, async_event *event; const char *name;) {
    AWAIT_EVENT(t, f->event);
    LOG("%s@%u ", f->name, NOW());
} ASYNC_END_DEF

TEST(sync_event_wakes_every_waiter_in_order_and_a_set_event_does_not_block) {
    async_loop *loop = new_loop();
    static async_event e;
    static event_waiter_frame w[4];
    async_spawn(loop, ASYNC_CALL(event_waiter, &w[0], &e, "a"));
    async_spawn(loop, ASYNC_CALL(event_waiter, &w[1], &e, "b"));
    async_spawn(loop, ASYNC_CALL(event_waiter, &w[2], &e, "c"));
    async_poll(loop);
    ASSERT(async_cancel(&w[1].task));
    loop->now = 7;
    ASSERT_EQ(async_event_set(&e), 0);
    async_event_clear(&e); /* woken waiters stay woken (asyncio) */
    ASSERT(!async_event_is_set(&e));
    drain(loop);
    ASSERT_STR_EQ(trace, "a@7 c@7 ");
    ASSERT(async_task_cancelled(&w[1].task));
    async_event_set(&e);
    async_spawn(loop, ASYNC_CALL(event_waiter, &w[3], &e, "d"));
    drain(loop);
    ASSERT_STR_EQ(trace, "a@7 c@7 d@7 ");
    ASSERT_EQ(async_event_set(NULL), ASYNC_EINVAL);
}

/* ---- conditions ---- */

ASYNC_DEF(cond_consumer, async_condition *cond; int *items; const char *name;) {
    AWAIT_LOCK(t, async_condition_lock(f->cond));
    ASYNC_TRY(t) {
        while (*f->items == 0) AWAIT_CONDITION(t, f->cond);
        (*f->items)--;
        LOG("%s@%u ", f->name, NOW());
    }
    ASYNC_CATCH(t) {
        /* even when cancelled, the wait returns holding the lock */
        LOG("%s!%d:%s ", f->name, async_caught(t)->code,
            async_condition_lock(f->cond)->holder == t ? "held" : "free");
    }
    ASYNC_FINALLY(t) {
        async_lock_release(async_condition_lock(f->cond));
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

ASYNC_DEF(cond_producer, async_condition *cond; int *items;) {
    AWAIT_SLEEP(t, 10);
    AWAIT_LOCK(t, async_condition_lock(f->cond));
    *f->items += 1;
    async_condition_notify(f->cond, 1);
    async_lock_release(async_condition_lock(f->cond));
    AWAIT_SLEEP(t, 10);
    AWAIT_LOCK(t, async_condition_lock(f->cond));
    *f->items += 2;
    async_condition_notify_all(f->cond);
    async_lock_release(async_condition_lock(f->cond));
} ASYNC_END_DEF

TEST(sync_condition_notify_wakes_in_order_and_waiters_reacquire) {
    async_loop *loop = new_loop();
    static async_condition c;
    static cond_consumer_frame w[3];
    static cond_producer_frame p;
    static int items;
    ASSERT_EQ(async_condition_init(&c, NULL), 0);
    async_spawn(loop, ASYNC_CALL(cond_consumer, &w[0], &c, &items, "a"));
    async_spawn(loop, ASYNC_CALL(cond_consumer, &w[1], &c, &items, "b"));
    async_spawn(loop, ASYNC_CALL(cond_consumer, &w[2], &c, &items, "c"));
    async_spawn(loop, ASYNC_CALL(cond_producer, &p, &c, &items));
    drain(loop);
    ASSERT_STR_EQ(trace, "a@10 b@20 c@20 ");
    ASSERT_EQ(items, 0);
    ASSERT(!async_lock_locked(async_condition_lock(&c)));
}

TEST(sync_condition_wait_cancelled_returns_holding_the_lock) {
    async_loop *loop = new_loop();
    static async_condition c;
    static async_lock shared;
    static cond_consumer_frame w[2];
    static int items;
    ASSERT_EQ(async_condition_init(&c, &shared), 0);
    async_spawn(loop, ASYNC_CALL(cond_consumer, &w[0], &c, &items, "a"));
    async_spawn(loop, ASYNC_CALL(cond_consumer, &w[1], &c, &items, "b"));
    async_poll(loop); /* both wait on the condition, lock free */
    async_poll(loop);
    ASSERT(!async_lock_locked(&shared));
    async_cancel(&w[0].task);
    drain(loop);
    ASSERT_STR_EQ(trace, "a!-125:held ");
    ASSERT(!async_lock_locked(&shared));
    async_cancel(&w[1].task);
    drain(loop);
    ASSERT_STR_EQ(trace, "a!-125:held b!-125:held ");
}

ASYNC_DEF(cond_unlocked_wait, async_condition *cond;) {
    AWAIT_CONDITION(t, f->cond);
} ASYNC_END_DEF

TEST(sync_condition_misuse_returns_codes) {
    async_loop *loop = new_loop();
    static async_condition c;
    static cond_unlocked_wait_frame f;
    ASSERT_EQ(async_condition_notify(&c, 1), ASYNC_EPERM);
    ASSERT_EQ(async_condition_notify(NULL, 1), ASYNC_EINVAL);
    ASSERT_EQ(async_condition_init(NULL, NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_run(loop, ASYNC_CALL(cond_unlocked_wait, &f, &c)), ASYNC_EPERM);
}

TEST(sync_condition_busy_init_and_a_waiter_cancelled_while_it_reacquires_holds_the_lock) {
    async_loop *loop = new_loop();
    static script_frame w, n;
    static async_condition cv, cv2;
    static async_lock shared;
    async_lock *l;
    ASSERT_EQ(async_condition_init(&cv, NULL), 0);
    l = async_condition_lock(&cv);
    script_one(&w, OP_LOCK, l);
    script_add(&w, OP_COND, &cv);
    script_one(&n, OP_LOCK, l);
    script_add(&n, OP_NOTIFY, &cv)->n = 1;
    script_add(&n, OP_SLEEP, NULL)->ms = 10; /* keeps the lock after notifying */
    script_add(&n, OP_UNLOCK, l);
    ASSERT_EQ(async_spawn(loop, &w.task), 0);
    async_poll(loop);
    ASSERT_STR_EQ(async_task_state(&w.task), "waiting");
    ASSERT_EQ(async_condition_init(&cv, &shared), ASYNC_EBUSY); /* a task waits on it */
    ASSERT(async_condition_lock(&cv) == l);
    ASSERT_EQ(async_spawn(loop, &n.task), 0);
    async_poll(loop); /* n takes the lock, notifies w, sleeps holding it */
    async_poll(loop); /* w, notified, must reacquire the lock first: it waits in the lock's queue */
    ASSERT_EQ(n.rc[1], 1);
    ASSERT(l->holder == &n.task);
    ASSERT_STR_EQ(async_task_state(&w.task), "waiting");
    ASSERT_EQ(async_condition_init(&cv, NULL), ASYNC_EBUSY); /* its lock has a waiter */
    /* cancelled while it waits for the lock: it still returns holding the lock, once n lets go */
    ASSERT(async_cancel(&w.task));
    async_poll(loop);
    ASSERT_STR_EQ(async_task_state(&w.task), "waiting");
    ASSERT(l->holder == &n.task);
    drain(loop);
    ASSERT_EQ(w.code[1], ASYNC_ECANCELED);
    ASSERT(w.held[1]);
    ASSERT_EQ(w.at[1], 10);
    ASSERT(!async_lock_locked(l));
    ASSERT_EQ(n.rc[3], 0);
    /* a condition over a lock that another task waits for is busy too */
    ASSERT_EQ(async_condition_init(&cv2, &shared), 0);
    script_one(&w, OP_LOCK, &shared);
    script_add(&w, OP_SLEEP, NULL)->ms = 10;
    script_add(&w, OP_UNLOCK, &shared);
    script_one(&n, OP_LOCK, &shared);
    script_add(&n, OP_UNLOCK, &shared);
    ASSERT_EQ(async_spawn(loop, &w.task), 0);
    ASSERT_EQ(async_spawn(loop, &n.task), 0);
    async_poll(loop);
    ASSERT_EQ(async_condition_init(&cv2, &shared), ASYNC_EBUSY);
    drain(loop);
    ASSERT_EQ(async_condition_init(&cv2, &shared), 0);
    ASSERT(n.reached[0] && n.rc[1] == 0);
}

/* ---- semaphores ---- */

ASYNC_DEF(sem_user, async_semaphore *sem; const char *name; int ms;) {
    AWAIT_WITH_SEMAPHORE(t, f->sem) {
        LOG("%s@%u ", f->name, NOW());
        AWAIT_SLEEP(t, f->ms);
    }
    ASYNC_END_WITH_SEMAPHORE(t, f->sem);
} ASYNC_END_DEF

TEST(sync_semaphore_limits_concurrency_in_fifo_order) {
    async_loop *loop = new_loop();
    static async_semaphore s;
    static sem_user_frame w[5];
    static const char *names[] = {"a", "b", "c", "d", "e"};
    int i;
    ASSERT_EQ(async_semaphore_init(&s, 2, true), 0);
    for (i = 0; i < 5; i++) async_spawn(loop, ASYNC_CALL(sem_user, &w[i], &s, names[i], 10 * (i + 1)));
    async_poll(loop);
    ASSERT(async_cancel(&w[2].task)); /* c leaves the queue */
    drain(loop);
    ASSERT_STR_EQ(trace, "a@0 b@0 d@10 e@20 ");
    ASSERT_EQ(async_semaphore_value(&s), 2);
    ASSERT_EQ(async_semaphore_release(&s), ASYNC_ERANGE); /* bounded: over-release */
    ASSERT_EQ(async_semaphore_value(&s), 2);
}

TEST(sync_semaphore_granted_then_cancelled_passes_the_permit_on) {
    async_loop *loop = new_loop();
    static async_semaphore s;
    static sem_user_frame w[3];
    async_semaphore_init(&s, 1, false);
    async_spawn(loop, ASYNC_CALL(sem_user, &w[0], &s, "a", 10));
    async_spawn(loop, ASYNC_CALL(sem_user, &w[1], &s, "b", 10));
    async_spawn(loop, ASYNC_CALL(sem_user, &w[2], &s, "c", 10));
    async_poll(loop);
    loop->now += 10;
    async_poll(loop); /* a releases: b granted */
    async_cancel(&w[1].task);
    drain(loop);
    ASSERT_STR_EQ(trace, "a@0 c@10 ");
    ASSERT_EQ(async_semaphore_value(&s), 1);
    ASSERT_EQ(async_semaphore_release(&s), 0); /* unbounded: may grow */
    ASSERT_EQ(async_semaphore_value(&s), 2);
}

TEST(sync_semaphore_try_acquire_and_misuse) {
    static async_semaphore s;
    ASSERT_EQ(async_semaphore_init(&s, -1, false), ASYNC_EINVAL);
    ASSERT_EQ(async_semaphore_init(NULL, 1, false), ASYNC_EINVAL);
    ASSERT_EQ(async_semaphore_init(&s, 1, true), 0);
    ASSERT_EQ(async_semaphore_try_acquire(&s), 0);
    ASSERT_EQ(async_semaphore_try_acquire(&s), ASYNC_EAGAIN);
    ASSERT_EQ(async_semaphore_release(&s), 0);
    ASSERT_EQ(async_semaphore_release(&s), ASYNC_ERANGE);
    ASSERT_EQ(async_semaphore_release(NULL), ASYNC_EINVAL);
}

/* ---- queues ---- */

TEST(sync_queue_orders_fifo_lifo_and_priority_stably) {
    static async_queue q;
    static intptr_t items[8];
    static uint32_t seq[8];
    static const intptr_t in[] = {5, 1, 4, 1, 5, 9, 2, 6};
    static const intptr_t fifo[] = {5, 1, 4, 1, 5, 9, 2, 6}, lifo[] = {6, 2, 9, 5, 1, 4, 1, 5};
    intptr_t v;
    int i, kind;
    for (kind = 0; kind < 2; kind++) {
        ASSERT_EQ(async_queue_init(&q, (async_queue_kind)kind, items, NULL, 8), 0);
        for (i = 0; i < 8; i++) ASSERT_EQ(async_queue_put_nowait(&q, in[i]), 0);
        ASSERT(async_queue_full(&q));
        ASSERT_EQ(async_queue_put_nowait(&q, 1), ASYNC_EAGAIN);
        for (i = 0; i < 8; i++) {
            ASSERT_EQ(async_queue_get_nowait(&q, &v), 0);
            ASSERT_EQ(v, kind ? lifo[i] : fifo[i]);
        }
        ASSERT_EQ(async_queue_get_nowait(&q, &v), ASYNC_EAGAIN);
    }
    /* priority: pointers to (priority, name) pairs ordered by priority; equal ones in put order */
    ASSERT_EQ(async_queue_init(&q, ASYNC_QUEUE_PRIORITY, items, NULL, 8), ASYNC_EINVAL);
    ASSERT_EQ(async_queue_init(&q, ASYNC_QUEUE_PRIORITY, items, seq, 8), 0);
    for (i = 0; i < 8; i++) ASSERT_EQ(async_queue_put_nowait(&q, in[i] * 10 / 10 * 16 + i), 0);
    async_queue_set_compare(&q, NULL);
    {
        /* same priority (value/16) compares equal with this order: put order decides */
        static intptr_t last_prio, last_idx;
        last_prio = -1;
        last_idx = -1;
        for (i = 0; i < 8; i++) {
            ASSERT_EQ(async_queue_get_nowait(&q, &v), 0);
            ASSERT(v / 16 >= last_prio);
            if (v / 16 == last_prio) ASSERT(v % 16 > last_idx);
            last_prio = v / 16;
            last_idx = v % 16;
        }
    }
}

static int by_priority_only(intptr_t a, intptr_t b) { return (int)(a / 16) - (int)(b / 16); }

TEST(sync_queue_priority_equal_items_leave_in_put_order) {
    static async_queue q;
    static intptr_t items[16];
    static uint32_t seq[16];
    intptr_t v;
    int i;
    ASSERT_EQ(async_queue_init(&q, ASYNC_QUEUE_PRIORITY, items, seq, 16), 0);
    async_queue_set_compare(&q, by_priority_only);
    /* priorities 2,1,2,1,... with the put index in the low bits */
    for (i = 0; i < 16; i++) ASSERT_EQ(async_queue_put_nowait(&q, (i % 2 ? 1 : 2) * 16 + i), 0);
    for (i = 0; i < 16; i++) {
        ASSERT_EQ(async_queue_get_nowait(&q, &v), 0);
        ASSERT_EQ(v, i < 8 ? 16 + (2 * i + 1) : 32 + 2 * (i - 8));
    }
}

/* Gets n items (the last one stays in item), logging each. */
ASYNC_DEF(qgetter, async_queue *q; const char *name; int n; intptr_t item; int i;) {
    for (f->i = 0; f->i < f->n; f->i++) {
        ASYNC_TRY(t) {
            AWAIT_QUEUE_GET(t, f->q, &f->item);
            LOG("%s<%d@%u ", f->name, (int)f->item, NOW());
            async_queue_task_done(f->q);
        }
        ASYNC_CATCH(t) {
            LOG("%s!%d ", f->name, async_caught(t)->code);
            ASYNC_RERAISE(t);
        }
        ASYNC_END_TRY(t);
    }
} ASYNC_END_DEF

/* Puts item, item + 1, ... (n of them), 10 ms apart, logging each. */
ASYNC_DEF(qputter, async_queue *q; const char *name; int n; intptr_t item; int i;) {
    for (f->i = 0; f->i < f->n; f->i++) {
        ASYNC_TRY(t) {
            AWAIT_QUEUE_PUT(t, f->q, f->item + f->i);
            LOG("%s>%d@%u ", f->name, (int)(f->item + f->i), NOW());
        }
        ASYNC_CATCH(t) {
            LOG("%s!%d ", f->name, async_caught(t)->code);
            ASYNC_RERAISE(t);
        }
        ASYNC_END_TRY(t);
        AWAIT_SLEEP(t, 10);
    }
} ASYNC_END_DEF

TEST(sync_queue_getters_wake_in_fifo_order_and_cancelled_getter_leaves) {
    async_loop *loop = new_loop();
    static async_queue q;
    static intptr_t items[4];
    static qgetter_frame g[3];
    static qputter_frame p;
    async_queue_init(&q, ASYNC_QUEUE_FIFO, items, NULL, 4);
    async_spawn(loop, ASYNC_CALL(qgetter, &g[0], &q, "a", 1));
    async_spawn(loop, ASYNC_CALL(qgetter, &g[1], &q, "b", 1));
    async_spawn(loop, ASYNC_CALL(qgetter, &g[2], &q, "c", 1));
    async_poll(loop);
    async_cancel(&g[1].task);
    async_spawn(loop, ASYNC_CALL(qputter, &p, &q, "p", 2, 100));
    drain(loop);
    ASSERT_STR_EQ(trace, "b!-125 p>100@0 a<100@0 p>101@10 c<101@10 ");
    ASSERT_EQ(async_queue_size(&q), 0);
    ASSERT_EQ(async_queue_unfinished(&q), 0);
}

TEST(sync_queue_bounded_put_waits_for_room) {
    async_loop *loop = new_loop();
    static async_queue q;
    static intptr_t items[1];
    static qgetter_frame g;
    static qputter_frame p[2];
    async_queue_init(&q, ASYNC_QUEUE_FIFO, items, NULL, 1);
    async_spawn(loop, ASYNC_CALL(qputter, &p[0], &q, "p", 2, 10));
    async_spawn(loop, ASYNC_CALL(qputter, &p[1], &q, "r", 1, 20));
    async_poll(loop); /* p puts 10; r waits for room; at 10 p waits behind r */
    loop->now = 50;
    async_spawn(loop, ASYNC_CALL(qgetter, &g, &q, "g", 3));
    drain(loop);
    ASSERT_STR_EQ(trace, "p>10@0 g<10@50 r>20@50 g<20@50 p>11@50 g<11@50 ");
}

ASYNC_DEF(joiner, async_queue *q;) {
    AWAIT_QUEUE_JOIN(t, f->q);
    LOG("joined@%u ", NOW());
} ASYNC_END_DEF

TEST(sync_queue_join_waits_for_task_done_and_task_done_is_checked) {
    async_loop *loop = new_loop();
    static async_queue q;
    static intptr_t items[4];
    static joiner_frame j;
    intptr_t v;
    async_queue_init(&q, ASYNC_QUEUE_FIFO, items, NULL, 4);
    ASSERT_EQ(async_queue_task_done(&q), ASYNC_ERANGE);
    async_queue_put_nowait(&q, 1);
    async_queue_put_nowait(&q, 2);
    async_spawn(loop, ASYNC_CALL(joiner, &j, &q));
    async_poll(loop);
    ASSERT(!async_task_done(&j.task));
    async_queue_get_nowait(&q, &v);
    async_queue_get_nowait(&q, &v);
    ASSERT_EQ(async_queue_task_done(&q), 0);
    async_poll(loop);
    ASSERT(!async_task_done(&j.task));
    loop->now = 5;
    ASSERT_EQ(async_queue_task_done(&q), 0);
    drain(loop);
    ASSERT_STR_EQ(trace, "joined@5 ");
    ASSERT_EQ(async_queue_task_done(&q), ASYNC_ERANGE);
}

TEST(sync_queue_shutdown_wakes_putters_and_getters_with_eshutdown) {
    async_loop *loop = new_loop();
    static async_queue q;
    static intptr_t items[1];
    static qgetter_frame g[2];
    static qputter_frame p;
    intptr_t v;
    async_queue_init(&q, ASYNC_QUEUE_FIFO, items, NULL, 1);
    async_spawn(loop, ASYNC_CALL(qputter, &p, &q, "p", 3, 1));
    async_poll(loop);
    loop->now = 10;
    async_poll(loop); /* p put 1 and waits to put 2 */
    ASSERT_EQ(async_queue_shutdown(&q, false), 0);
    drain(loop);
    ASSERT_EQ(async_task_code(&p.task), ASYNC_ESHUTDOWN);
    ASSERT_EQ(async_queue_put_nowait(&q, 5), ASYNC_ESHUTDOWN);
    async_spawn(loop, ASYNC_CALL(qgetter, &g[0], &q, "a", 2));
    drain(loop); /* gets what is left, then fails */
    ASSERT_STR_EQ(trace, "p>1@0 p!-108 a<1@10 a!-108 ");
    ASSERT_EQ(async_task_code(&g[0].task), ASYNC_ESHUTDOWN);
    ASSERT_EQ(async_queue_get_nowait(&q, &v), ASYNC_ESHUTDOWN);
}

TEST(sync_queue_immediate_shutdown_drops_items_and_releases_joiners) {
    async_loop *loop = new_loop();
    static async_queue q;
    static intptr_t items[4];
    static joiner_frame j;
    static qgetter_frame g;
    async_queue_init(&q, ASYNC_QUEUE_LIFO, items, NULL, 4);
    async_queue_put_nowait(&q, 1);
    async_queue_put_nowait(&q, 2);
    async_spawn(loop, ASYNC_CALL(joiner, &j, &q));
    async_poll(loop);
    ASSERT_EQ(async_queue_shutdown(&q, true), 0);
    ASSERT_EQ(async_queue_size(&q), 0);
    async_spawn(loop, ASYNC_CALL(qgetter, &g, &q, "g", 1));
    drain(loop);
    ASSERT_STR_EQ(trace, "joined@0 g!-108 ");
}

TEST(sync_queue_immediate_shutdown_keeps_reserved_items_and_counts_unfinished_right) {
    async_loop *loop = new_loop();
    static script_frame g, j, n;
    static async_queue q;
    static intptr_t items[4];
    intptr_t x;
    ASSERT_EQ(async_queue_init(&q, ASYNC_QUEUE_FIFO, items, NULL, 4), 0);
    script_one(&g, OP_QGET, &q)->out = &g.got;
    ASSERT_EQ(async_spawn(loop, &g.task), 0);
    async_poll(loop);
    ASSERT_EQ(async_queue_put_nowait(&q, 5), 0); /* handed to the waiting getter, which has not run */
    ASSERT_EQ(async_queue_put_nowait(&q, 6), 0);
    ASSERT_EQ(async_queue_put_nowait(&q, 7), 0);
    script_one(&j, OP_QJOIN, &q);
    ASSERT_EQ(async_spawn(loop, &j.task), 0);
    ASSERT_EQ(async_queue_shutdown(&q, true), 0); /* drops 6 and 7, keeps the getter's 5 */
    ASSERT_EQ(async_queue_size(&q), 1);
    ASSERT_EQ(async_queue_unfinished(&q), 1);
    drain(loop);
    ASSERT(g.reached[0]);
    ASSERT_EQ(g.got, 5);
    ASSERT_STR_EQ(async_task_state(&j.task), "waiting"); /* 5 is not done yet */
    ASSERT_EQ(async_queue_task_done(&q), 0);
    drain(loop);
    ASSERT(j.reached[0]);
    ASSERT_EQ(async_queue_get_nowait(&q, &x), ASYNC_ESHUTDOWN);
    /* task_done called ahead of the gets: dropping the items cannot make unfinished wrap */
    ASSERT_EQ(async_queue_init(&q, ASYNC_QUEUE_FIFO, items, NULL, 4), 0);
    ASSERT_EQ(async_queue_put_nowait(&q, 1), 0);
    ASSERT_EQ(async_queue_put_nowait(&q, 2), 0);
    ASSERT_EQ(async_queue_task_done(&q), 0);
    ASSERT_EQ(async_queue_task_done(&q), 0);
    ASSERT_EQ(async_queue_shutdown(&q, true), 0);
    ASSERT_EQ(async_queue_unfinished(&q), 0);
    ASSERT_EQ(async_queue_size(&q), 0);
    /* a get that throws the item away */
    ASSERT_EQ(async_queue_init(&q, ASYNC_QUEUE_LIFO, items, NULL, 4), 0);
    ASSERT_EQ(async_queue_put_nowait(&q, 1), 0);
    ASSERT_EQ(async_queue_put_nowait(&q, 2), 0);
    script_one(&n, OP_QGET, &q); /* out NULL */
    ASSERT_EQ(async_run(loop, &n.task), 0);
    ASSERT(n.reached[0]);
    ASSERT_EQ(async_queue_size(&q), 1);
    ASSERT_EQ(async_queue_get_nowait(&q, &x), 0);
    ASSERT_EQ(x, 1);
}

TEST(sync_queue_slot_granted_then_cancelled_or_shut_down_is_not_lost) {
    async_loop *loop = new_loop();
    static script_frame p1, p2, p3, g;
    static async_queue q;
    static intptr_t items[1];
    intptr_t x;
    ASSERT_EQ(async_queue_init(&q, ASYNC_QUEUE_FIFO, items, NULL, 1), 0);
    ASSERT_EQ(async_queue_put_nowait(&q, 1), 0);
    script_one(&p1, OP_QPUT, &q)->item = 2;
    script_one(&p2, OP_QPUT, &q)->item = 3;
    ASSERT_EQ(async_spawn(loop, &p1.task), 0);
    ASSERT_EQ(async_spawn(loop, &p2.task), 0);
    async_poll(loop);
    ASSERT_EQ(async_queue_get_nowait(&q, &x), 0); /* the free slot is handed to p1 */
    ASSERT_EQ(x, 1);
    ASSERT(async_queue_full(&q));                  /* reserved for p1: a newcomer cannot take it */
    ASSERT_EQ(async_queue_put_nowait(&q, 99), ASYNC_EAGAIN);
    ASSERT(async_cancel(&p1.task));                /* before p1 could use it: it passes to p2 */
    drain(loop);
    ASSERT_EQ(p1.code[0], ASYNC_ECANCELED);
    ASSERT(p2.reached[0]);
    ASSERT_EQ(async_queue_get_nowait(&q, &x), 0);
    ASSERT_EQ(x, 3);
    /* a slot granted to a putter that runs only after a shutdown: ESHUTDOWN, the slot is freed */
    ASSERT_EQ(async_queue_put_nowait(&q, 4), 0);
    script_one(&p3, OP_QPUT, &q)->item = 5;
    ASSERT_EQ(async_spawn(loop, &p3.task), 0);
    async_poll(loop);
    ASSERT_EQ(async_queue_get_nowait(&q, &x), 0);
    ASSERT_EQ(x, 4);
    ASSERT_EQ(async_queue_shutdown(&q, false), 0);
    drain(loop);
    ASSERT_EQ(p3.code[0], ASYNC_ESHUTDOWN);
    ASSERT_EQ(async_queue_size(&q), 0);
    ASSERT(!async_queue_full(&q));
    ASSERT_EQ(async_queue_put_nowait(&q, 6), ASYNC_ESHUTDOWN);
    /* a getter woken by the shutdown of an empty queue: ESHUTDOWN, not an item */
    ASSERT_EQ(async_queue_init(&q, ASYNC_QUEUE_FIFO, items, NULL, 1), 0);
    script_one(&g, OP_QGET, &q)->out = &g.got;
    g.got = -1;
    ASSERT_EQ(async_spawn(loop, &g.task), 0);
    async_poll(loop);
    ASSERT_EQ(async_queue_shutdown(&q, false), 0);
    drain(loop);
    ASSERT_EQ(g.code[0], ASYNC_ESHUTDOWN);
    ASSERT_EQ(g.got, -1);
}

TEST(sync_queue_growing_keeps_fifo_order_across_wrap_and_reports_enomem) {
    static async_queue q;
    intptr_t v;
    int i;
    alloc_left = 1000;
    ASSERT_EQ(async_queue_init_growing(&q, ASYNC_QUEUE_FIFO, 0, counted_realloc), 0);
    for (i = 0; i < 6; i++) ASSERT_EQ(async_queue_put_nowait(&q, i), 0);
    for (i = 0; i < 4; i++) ASSERT_EQ(async_queue_get_nowait(&q, &v), 0); /* head moves to 4 of 8 */
    for (i = 6; i < 40; i++) ASSERT_EQ(async_queue_put_nowait(&q, i), 0); /* wraps, then grows */
    for (i = 4; i < 40; i++) {
        ASSERT_EQ(async_queue_get_nowait(&q, &v), 0);
        ASSERT_EQ(v, i);
    }
    async_queue_free_storage(&q);
    alloc_left = 0;
    ASSERT_EQ(async_queue_init_growing(&q, ASYNC_QUEUE_PRIORITY, 2, counted_realloc), 0);
    ASSERT_EQ(async_queue_put_nowait(&q, 1), ASYNC_ENOMEM);
    ASSERT_EQ(async_queue_size(&q), 0);
    alloc_left = 1000;
    ASSERT_EQ(async_queue_put_nowait(&q, 3), 0);
    ASSERT_EQ(async_queue_put_nowait(&q, 2), 0);
    ASSERT_EQ(async_queue_put_nowait(&q, 1), ASYNC_EAGAIN); /* maxsize 2 */
    ASSERT_EQ(async_queue_get_nowait(&q, &v), 0);
    ASSERT_EQ(v, 2);
    async_queue_free_storage(&q);
    ASSERT_EQ(async_queue_init(&q, ASYNC_QUEUE_FIFO, NULL, NULL, 4), ASYNC_EINVAL);
    ASSERT_EQ(async_queue_put_nowait(NULL, 1), ASYNC_EINVAL);
    ASSERT_EQ(async_queue_get_nowait(&q, NULL), ASYNC_EINVAL);
}

TEST(sync_queue_growing_that_cannot_grow_fails_the_put_and_loses_nothing) {
    async_loop *loop = new_loop();
    static script_frame o;
    static async_queue q, pq;
    intptr_t i, x;
    ASSERT_EQ(async_queue_init_growing(&q, ASYNC_QUEUE_FIFO, 10, counted_realloc), 0);
    for (i = 0; i < 8; i++) ASSERT_EQ(async_queue_put_nowait(&q, i), 0); /* 8 slots: below maxsize */
    alloc_fail_all = 1;
    ASSERT_EQ(async_queue_put_nowait(&q, 8), ASYNC_ENOMEM);
    script_one(&o, OP_QPUT, &q)->item = 8; /* a put that may go on at once, then cannot store */
    ASSERT_EQ(async_run(loop, &o.task), 0);
    ASSERT_EQ(o.code[0], ASYNC_ENOMEM);
    ASSERT_EQ(async_queue_size(&q), 8);
    ASSERT_EQ(async_queue_unfinished(&q), 8);
    ASSERT(!async_queue_full(&q)); /* the slot the put had reserved is free again */
    alloc_fail_all = 0;
    ASSERT_EQ(async_queue_put_nowait(&q, 8), 0); /* grows to maxsize, not to 16 */
    ASSERT_EQ(async_queue_put_nowait(&q, 9), 0);
    ASSERT(async_queue_full(&q));
    ASSERT_EQ(async_queue_put_nowait(&q, 10), ASYNC_EAGAIN);
    for (i = 0; i < 10; i++) {
        ASSERT_EQ(async_queue_get_nowait(&q, &x), 0);
        ASSERT_EQ(x, i);
    }
    ASSERT_EQ(async_queue_free_storage(&q), 0);
    /* a priority queue grows two arrays: the second one failing leaves the first harmlessly larger */
    ASSERT_EQ(async_queue_init_growing(&pq, ASYNC_QUEUE_PRIORITY, 0, counted_realloc), 0);
    alloc_calls = 0;
    alloc_fail_at = 2;
    ASSERT_EQ(async_queue_put_nowait(&pq, 5), ASYNC_ENOMEM);
    ASSERT_EQ(async_queue_size(&pq), 0);
    ASSERT_EQ(async_queue_unfinished(&pq), 0);
    ASSERT_EQ(async_queue_put_nowait(&pq, 5), 0);
    ASSERT_EQ(async_queue_put_nowait(&pq, 3), 0);
    ASSERT_EQ(async_queue_put_nowait(&pq, 4), 0);
    ASSERT_EQ(async_queue_get_nowait(&pq, &x), 0);
    ASSERT_EQ(x, 3);
    ASSERT_EQ(async_queue_get_nowait(&pq, &x), 0);
    ASSERT_EQ(x, 4);
    ASSERT_EQ(async_queue_get_nowait(&pq, &x), 0);
    ASSERT_EQ(x, 5);
    ASSERT_EQ(async_queue_free_storage(&pq), 0);
    ASSERT_EQ(loop_allocs, 0);
}

TEST(sync_queue_growing_storage_is_not_freed_under_waiting_or_granted_tasks) {
    async_loop *loop = new_loop();
    static script_frame g, p, j;
    static async_queue q;
    intptr_t x;
    ASSERT_EQ(async_queue_init_growing(&q, ASYNC_QUEUE_FIFO, 1, counted_realloc), 0);
    script_one(&g, OP_QGET, &q)->out = &g.got;
    ASSERT_EQ(async_spawn(loop, &g.task), 0);
    async_poll(loop);
    ASSERT_EQ(async_queue_free_storage(&q), ASYNC_EBUSY); /* a getter waits */
    ASSERT_EQ(async_queue_put_nowait(&q, 5), 0);           /* handed to it; it has not run yet */
    ASSERT_EQ(async_queue_free_storage(&q), ASYNC_EBUSY); /* freeing now would pull its item from NULL */
    drain(loop);
    ASSERT_EQ(g.got, 5);
    ASSERT_EQ(async_queue_put_nowait(&q, 6), 0);
    script_one(&p, OP_QPUT, &q)->item = 7; /* the queue is full: waits */
    script_one(&j, OP_QJOIN, &q);
    ASSERT_EQ(async_spawn(loop, &p.task), 0);
    async_poll(loop);
    ASSERT_EQ(async_queue_free_storage(&q), ASYNC_EBUSY); /* a putter waits */
    ASSERT_EQ(async_queue_get_nowait(&q, &x), 0);          /* its slot is handed over */
    ASSERT_EQ(x, 6);
    ASSERT_EQ(async_queue_free_storage(&q), ASYNC_EBUSY);
    drain(loop);
    ASSERT(p.reached[0]);
    ASSERT_EQ(async_spawn(loop, &j.task), 0);
    async_poll(loop);
    ASSERT_EQ(async_queue_free_storage(&q), ASYNC_EBUSY); /* a joiner waits */
    ASSERT_EQ(async_queue_size(&q), 1);                   /* nothing was dropped meanwhile */
    ASSERT_EQ(async_queue_get_nowait(&q, &x), 0);
    ASSERT_EQ(x, 7);
    ASSERT_EQ(async_queue_task_done(&q), 0);
    ASSERT_EQ(async_queue_task_done(&q), 0);
    ASSERT_EQ(async_queue_task_done(&q), 0);
    drain(loop);
    ASSERT(j.reached[0]);
    ASSERT_EQ(loop_allocs, 1);
    ASSERT_EQ(async_queue_free_storage(&q), 0);
    ASSERT_EQ(loop_allocs, 0);
}

/* ---- every primitive: cancelled waiters, busy re-initialisation, NULL and uninitialised arguments ---- */

TEST(sync_cancelled_waiters_leave_queues_and_pass_on_what_they_were_granted) {
    async_loop *loop = new_loop();
    static script_frame a, b, c, s1, s2, p, g1, g2, j;
    static async_lock lk;
    static async_semaphore sem;
    static async_queue q, q2;
    static intptr_t items[1], items2[1];
    intptr_t x;
    /* the last of three lock waiters leaves */
    script_one(&a, OP_LOCK, &lk);
    script_add(&a, OP_SLEEP, NULL)->ms = 10;
    script_add(&a, OP_UNLOCK, &lk);
    script_one(&b, OP_LOCK, &lk);
    script_add(&b, OP_UNLOCK, &lk);
    script_one(&c, OP_LOCK, &lk);
    async_spawn(loop, &a.task);
    async_spawn(loop, &b.task);
    async_spawn(loop, &c.task);
    async_poll(loop);
    ASSERT(async_cancel(&c.task));
    drain(loop);
    ASSERT_EQ(c.code[0], ASYNC_ECANCELED);
    ASSERT(b.reached[0] && b.at[0] == 10 && b.rc[1] == 0);
    ASSERT(!async_lock_locked(&lk));
    /* a permit granted to a waiter cancelled before it ran goes to the next waiter */
    async_semaphore_init(&sem, 0, false);
    script_one(&s1, OP_SEM, &sem);
    script_one(&s2, OP_SEM, &sem);
    async_spawn(loop, &s1.task);
    async_spawn(loop, &s2.task);
    async_poll(loop);
    ASSERT_EQ(async_semaphore_release(&sem), 0);
    ASSERT(async_cancel(&s1.task));
    drain(loop);
    ASSERT_EQ(s1.code[0], ASYNC_ECANCELED);
    ASSERT(s2.reached[0]);
    ASSERT_EQ(async_semaphore_value(&sem), 0);
    /* ... and back to the count when no one else waits */
    script_one(&s1, OP_SEM, &sem);
    async_spawn(loop, &s1.task);
    async_poll(loop);
    ASSERT_EQ(async_semaphore_release(&sem), 0);
    ASSERT_EQ(async_semaphore_value(&sem), 0); /* granted to s1, not counted */
    ASSERT(async_cancel(&s1.task));
    drain(loop);
    ASSERT_EQ(s1.code[0], ASYNC_ECANCELED);
    ASSERT_EQ(async_semaphore_value(&sem), 1);
    /* a slot granted to the only putter, cancelled before it ran: the slot is free again */
    async_queue_init(&q, ASYNC_QUEUE_FIFO, items, NULL, 1);
    async_queue_put_nowait(&q, 1);
    script_one(&p, OP_QPUT, &q)->item = 2;
    async_spawn(loop, &p.task);
    async_poll(loop);
    ASSERT_EQ(async_queue_get_nowait(&q, &x), 0);
    ASSERT(async_queue_full(&q)); /* reserved */
    ASSERT(async_cancel(&p.task));
    drain(loop);
    ASSERT_EQ(p.code[0], ASYNC_ECANCELED);
    ASSERT(!async_queue_full(&q));
    ASSERT_EQ(async_queue_size(&q), 0);
    ASSERT_EQ(async_queue_put_nowait(&q, 3), 0);
    /* an item granted to a getter cancelled before it ran goes to the next getter */
    async_queue_init(&q2, ASYNC_QUEUE_FIFO, items2, NULL, 1);
    script_one(&g1, OP_QGET, &q2)->out = &g1.got;
    script_one(&g2, OP_QGET, &q2)->out = &g2.got;
    script_one(&j, OP_QJOIN, &q2);
    async_spawn(loop, &g1.task);
    async_spawn(loop, &g2.task);
    async_poll(loop);
    ASSERT_EQ(async_queue_put_nowait(&q2, 8), 0);
    ASSERT(async_cancel(&g1.task));
    async_spawn(loop, &j.task);
    drain(loop);
    ASSERT_EQ(g1.code[0], ASYNC_ECANCELED);
    ASSERT_EQ(g1.got, 0);
    ASSERT(g2.reached[0]);
    ASSERT_EQ(g2.got, 8);
    /* a joiner cancelled while it waits: the count of unfinished items is untouched */
    ASSERT_STR_EQ(async_task_state(&j.task), "waiting");
    ASSERT(async_cancel(&j.task));
    drain(loop);
    ASSERT_EQ(j.code[0], ASYNC_ECANCELED);
    ASSERT_EQ(async_queue_unfinished(&q2), 1);
    ASSERT_EQ(async_queue_task_done(&q2), 0);
}

TEST(sync_semaphore_and_queue_init_while_tasks_wait_is_ebusy) {
    async_loop *loop = new_loop();
    static script_frame s, g, p, j;
    static async_semaphore sem;
    static async_queue q;
    static intptr_t items[1];
    intptr_t x = 0;
    ASSERT_EQ(async_semaphore_init(&sem, 0, true), 0);
    script_one(&s, OP_SEM, &sem);
    ASSERT_EQ(async_spawn(loop, &s.task), 0);
    async_poll(loop);
    ASSERT_EQ(async_semaphore_init(&sem, 3, false), ASYNC_EBUSY);
    ASSERT_EQ(async_semaphore_value(&sem), 0);
    ASSERT_EQ(async_semaphore_release(&sem), 0); /* to the waiter, not to the count */
    drain(loop);
    ASSERT(s.reached[0]);
    ASSERT_EQ(async_semaphore_value(&sem), 0);
    ASSERT_EQ(async_semaphore_init(&sem, 3, false), 0);
    /* a getter, a putter, a joiner: each makes the queue busy */
    ASSERT_EQ(async_queue_init(&q, ASYNC_QUEUE_FIFO, items, NULL, 1), 0);
    script_one(&g, OP_QGET, &q)->out = &g.got;
    ASSERT_EQ(async_spawn(loop, &g.task), 0);
    async_poll(loop);
    ASSERT_EQ(async_queue_init(&q, ASYNC_QUEUE_LIFO, items, NULL, 1), ASYNC_EBUSY);
    ASSERT_EQ(async_queue_init_growing(&q, ASYNC_QUEUE_LIFO, 0, counted_realloc), ASYNC_EBUSY);
    ASSERT_EQ(async_queue_put_nowait(&q, 7), 0);
    drain(loop);
    ASSERT_EQ(g.got, 7);
    ASSERT_EQ(async_queue_put_nowait(&q, 8), 0);
    script_one(&p, OP_QPUT, &q)->item = 9;
    script_one(&j, OP_QJOIN, &q);
    ASSERT_EQ(async_spawn(loop, &p.task), 0);
    ASSERT_EQ(async_spawn(loop, &j.task), 0);
    async_poll(loop);
    ASSERT_EQ(async_queue_init(&q, ASYNC_QUEUE_FIFO, items, NULL, 1), ASYNC_EBUSY);
    ASSERT_EQ(async_queue_init_growing(&q, ASYNC_QUEUE_FIFO, 0, counted_realloc), ASYNC_EBUSY);
    ASSERT_EQ(async_queue_get_nowait(&q, &x), 0);
    ASSERT_EQ(x, 8);
    drain(loop); /* the putter puts 9; the joiner still waits for three task_done */
    ASSERT(p.reached[0]);
    ASSERT_EQ(async_queue_get_nowait(&q, &x), 0);
    ASSERT_EQ(x, 9);
    ASSERT_EQ(async_queue_init(&q, ASYNC_QUEUE_FIFO, items, NULL, 1), ASYNC_EBUSY); /* the joiner */
    ASSERT_EQ(async_queue_init_growing(&q, ASYNC_QUEUE_FIFO, 0, counted_realloc), ASYNC_EBUSY);
    ASSERT_EQ(async_queue_unfinished(&q), 3);
    ASSERT_EQ(async_queue_task_done(&q), 0);
    ASSERT_EQ(async_queue_task_done(&q), 0);
    ASSERT_EQ(async_queue_task_done(&q), 0);
    ASSERT_EQ(async_queue_task_done(&q), ASYNC_ERANGE);
    drain(loop);
    ASSERT(j.reached[0]);
    ASSERT_EQ(async_queue_init(&q, ASYNC_QUEUE_FIFO, items, NULL, 1), 0);
}

TEST(sync_primitive_queries_of_null) {
    static async_event e;
    static async_condition c;
    static async_semaphore s;
    ASSERT_EQ(async_lock_release(NULL), ASYNC_EINVAL);
    ASSERT(!async_lock_locked(NULL));
    ASSERT_EQ(async_event_set(NULL), ASYNC_EINVAL);
    async_event_clear(NULL);
    ASSERT(!async_event_is_set(NULL));
    ASSERT_EQ(async_event_set(&e), 0);
    ASSERT(async_event_is_set(&e));
    async_event_clear(&e);
    ASSERT(!async_event_is_set(&e));
    ASSERT_EQ(async_condition_init(NULL, NULL), ASYNC_EINVAL);
    ASSERT(async_condition_lock(NULL) == NULL);
    ASSERT_EQ(async_condition_notify(NULL, 1), ASYNC_EINVAL);
    ASSERT_EQ(async_condition_notify_all(NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_condition_init(&c, NULL), 0);
    ASSERT_EQ(async_condition_notify(&c, -1), ASYNC_EINVAL);
    ASSERT_EQ(async_condition_notify(&c, 1), ASYNC_EPERM); /* its lock is not held */
    ASSERT_EQ(async_semaphore_init(NULL, 1, false), ASYNC_EINVAL);
    ASSERT_EQ(async_semaphore_init(&s, -1, false), ASYNC_EINVAL);
    ASSERT_EQ(async_semaphore_release(NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_semaphore_try_acquire(NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_semaphore_value(NULL), 0);
    /* an unbounded semaphore at the largest count refuses one more */
    ASSERT_EQ(async_semaphore_init(&s, 0x7FFFFFFF, false), 0);
    ASSERT_EQ(async_semaphore_release(&s), ASYNC_ERANGE);
    ASSERT_EQ(async_semaphore_value(&s), 0x7FFFFFFF);
    ASSERT_EQ(async_semaphore_try_acquire(&s), 0);
    ASSERT_EQ(async_semaphore_release(&s), 0);
    ASSERT_EQ(async_semaphore_value(&s), 0x7FFFFFFF);
    ASSERT_EQ(async_semaphore_init(&s, 0, false), 0);
    ASSERT_EQ(async_semaphore_try_acquire(&s), ASYNC_EAGAIN);
}

TEST(sync_queue_and_generator_queries_of_null_and_bad_arguments) {
    static async_queue q, zero;
    static intptr_t items[4];
    static uint32_t seq[4];
    intptr_t x = 77;
    ASSERT_EQ(async_queue_init(NULL, ASYNC_QUEUE_FIFO, items, NULL, 4), ASYNC_EINVAL);
    ASSERT_EQ(async_queue_init(&q, ASYNC_QUEUE_FIFO, NULL, NULL, 4), ASYNC_EINVAL);
    ASSERT_EQ(async_queue_init(&q, ASYNC_QUEUE_FIFO, items, NULL, 0), ASYNC_EINVAL);
    ASSERT_EQ(async_queue_init(&q, ASYNC_QUEUE_PRIORITY, items, NULL, 4), ASYNC_EINVAL);
    ASSERT_EQ(async_queue_init(&q, (async_queue_kind)7, items, seq, 4), ASYNC_EINVAL);
    ASSERT_EQ(async_queue_init_growing(NULL, ASYNC_QUEUE_FIFO, 0, counted_realloc), ASYNC_EINVAL);
    ASSERT_EQ(async_queue_init_growing(&q, ASYNC_QUEUE_FIFO, 0, NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_queue_init_growing(&q, (async_queue_kind)3, 0, counted_realloc), ASYNC_EINVAL);
    ASSERT_EQ(async_queue_free_storage(NULL), ASYNC_EINVAL);
    async_queue_set_compare(NULL, NULL);
    ASSERT_EQ(async_queue_size(NULL), 0);
    ASSERT_EQ(async_queue_unfinished(NULL), 0);
    ASSERT(!async_queue_full(NULL));
    ASSERT_EQ(async_queue_put_nowait(NULL, 1), ASYNC_EINVAL);
    ASSERT_EQ(async_queue_get_nowait(NULL, &x), ASYNC_EINVAL);
    ASSERT_EQ(async_queue_task_done(NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_queue_shutdown(NULL, false), ASYNC_EINVAL);
    /* a zeroed queue was never initialised: it has no storage and no way to grow */
    ASSERT_EQ(async_queue_put_nowait(&zero, 1), ASYNC_EINVAL);
    ASSERT_EQ(async_queue_get_nowait(&zero, &x), ASYNC_EAGAIN);
    ASSERT_EQ(x, 77);
    ASSERT_EQ(async_queue_size(&zero), 0);
    /* a fixed queue's storage is the caller's: free_storage leaves it alone */
    ASSERT_EQ(async_queue_init(&q, ASYNC_QUEUE_FIFO, items, NULL, 4), 0);
    ASSERT_EQ(async_queue_put_nowait(&q, 11), 0);
    ASSERT_EQ(async_queue_free_storage(&q), 0);
    ASSERT_EQ(async_queue_size(&q), 1);
    ASSERT_EQ(async_queue_get_nowait(&q, &x), 0);
    ASSERT_EQ(x, 11);
    ASSERT_EQ(async_queue_get_nowait(&q, NULL), ASYNC_EINVAL);
    /* a growing queue that never grew has nothing to free */
    ASSERT_EQ(async_queue_init_growing(&q, ASYNC_QUEUE_LIFO, 0, counted_realloc), 0);
    ASSERT_EQ(async_queue_free_storage(&q), 0);
    ASSERT_EQ(loop_allocs, 0);
    ASSERT(!async_gen_done(NULL));
    ASSERT(!async_gen_started(NULL));
}

TEST(sync_await_of_a_null_or_uninitialised_primitive_is_einval) {
    async_loop *loop = new_loop();
    static script_frame o;
    static async_queue zero;
    int i;
    script_init(&o);
    script_add(&o, OP_LOCK, NULL);
    script_add(&o, OP_EVENT, NULL);
    script_add(&o, OP_COND, NULL);
    script_add(&o, OP_SEM, NULL);
    script_add(&o, OP_QPUT, NULL)->item = 1;
    script_add(&o, OP_QPUT, &zero)->item = 1; /* never initialised: no storage, cannot grow */
    script_add(&o, OP_QGET, NULL);
    script_add(&o, OP_QJOIN, NULL);
    script_add(&o, OP_NEXT, NULL);
    script_add(&o, OP_GEN_CLOSE, NULL);
    script_add(&o, OP_GEN_THROW, NULL)->err = &err_a;
    ASSERT_EQ(async_run(loop, &o.task), 0);
    for (i = 0; i < o.nsteps; i++) {
        ASSERT_EQ(o.code[i], ASYNC_EINVAL);
        ASSERT(!o.reached[i]);
    }
    ASSERT_EQ(async_queue_size(&zero), 0);
}

ASYNC_DEF(queue_joiner, async_queue *q;) {
    AWAIT_QUEUE_JOIN(t, f->q);
    LOG("joined ");
} ASYNC_END_DEF

TEST(sync_queue_freeing_the_storage_settles_its_unfinished_count) {
    async_loop *loop = new_loop();
    static async_queue q;
    static queue_joiner_frame j;
    intptr_t item;
    ASSERT_EQ(async_queue_init_growing(&q, ASYNC_QUEUE_FIFO, 0, counted_realloc), 0);
    ASSERT_EQ(async_queue_put_nowait(&q, 1), 0);
    ASSERT_EQ(async_queue_put_nowait(&q, 2), 0);
    ASSERT_EQ(async_queue_put_nowait(&q, 3), 0);
    ASSERT_EQ(async_queue_get_nowait(&q, &item), 0); /* taken: still unfinished until task_done */
    ASSERT_EQ(async_queue_free_storage(&q), 0);
    ASSERT_EQ(async_queue_size(&q), 0);
    ASSERT_EQ(async_queue_unfinished(&q), 1); /* 3 before: the join waited for items that were gone */
    ASSERT_EQ(async_queue_task_done(&q), 0);
    ASSERT_EQ(async_queue_task_done(&q), ASYNC_ERANGE);
    ASSERT_EQ(async_run(loop, ASYNC_CALL(queue_joiner, &j, &q)), 0);
    ASSERT_STR_EQ(trace, "joined ");
    ASSERT_EQ(async_queue_put_nowait(&q, 4), 0); /* the queue works again */
    ASSERT_EQ(async_queue_get_nowait(&q, &item), 0);
    ASSERT_EQ(item, 4);
    ASSERT_EQ(async_queue_free_storage(&q), 0);
}
