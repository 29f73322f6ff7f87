/* Locks, events, conditions, semaphores, queues, async with and async generators under the virtual
 * clock: results, wake order, error codes, cancellation. Uses test_core.c's loop, trace and worker. */

/* The loop of the running test, for the coroutines' time stamps. */
static async_loop *sync_loop;
static async_loop *sloop(void) { return sync_loop = new_loop(); }
#define NOW() ((unsigned)async_loop_now(sync_loop))

/* Runs the loop up to virtual time `until`, leaving what is due later. */
static void run_until(async_loop *loop, async_ms until) {
    int32_t d;
    while ((d = async_poll(loop)) >= 0 && loop->now + (async_ms)d <= until) loop->now += (async_ms)d;
    loop->now = until;
}

/* ---- locks ---- */

typedef struct {
    async_task task;
    async_lock *lock;
    const char *name;
    int ms;
} locker_frame;

static async_status locker_run(async_task *t) {
    locker_frame *f = (locker_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_TRY(t) {
        ASYNC_WITH_LOCK(t, f->lock) {
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
    ASYNC_END(t);
}

static async_task *locker(locker_frame *f, async_lock *l, const char *name, int ms) {
    if (ASYNC_FRAME_INIT(f, locker_run)) {
        f->lock = l;
        f->name = name;
        f->ms = ms;
    }
    return &f->task;
}

TEST(lock_is_granted_in_request_order) {
    async_loop *loop = sloop();
    static async_lock l;
    static locker_frame w[4];
    async_spawn(loop, locker(&w[0], &l, "a", 10));
    async_spawn(loop, locker(&w[1], &l, "b", 10));
    async_spawn(loop, locker(&w[2], &l, "c", 10));
    drain(loop);
    ASSERT_STR_EQ(trace, "a@0 b@10 c@20 ");
    ASSERT(!async_lock_locked(&l));
    ASSERT_EQ(async_task_code(&w[1].task), 0);
}

TEST(lock_newcomer_cannot_barge_past_a_woken_waiter) {
    async_loop *loop = sloop();
    static async_lock l;
    static locker_frame w[3];
    async_spawn(loop, locker(&w[0], &l, "a", 10));
    async_spawn(loop, locker(&w[1], &l, "b", 10));
    async_poll(loop); /* a holds, b waits */
    loop->now += 10;
    async_poll(loop); /* a releases: b is granted the lock, not yet run */
    async_spawn(loop, locker(&w[2], &l, "c", 0)); /* c arrives before b runs */
    drain(loop);
    ASSERT_STR_EQ(trace, "a@0 b@10 c@20 ");
}

TEST(lock_waiter_cancelled_while_queued_leaves_the_queue) {
    async_loop *loop = sloop();
    static async_lock l;
    static locker_frame w[3];
    async_spawn(loop, locker(&w[0], &l, "a", 10));
    async_spawn(loop, locker(&w[1], &l, "b", 10));
    async_spawn(loop, locker(&w[2], &l, "c", 10));
    async_poll(loop);
    ASSERT(async_cancel(&w[1].task)); /* b leaves the queue at once */
    drain(loop);
    ASSERT_STR_EQ(trace, "a@0 b!-125 c@10 ");
    ASSERT(async_task_cancelled(&w[1].task));
    ASSERT(!async_lock_locked(&l));
}

TEST(lock_granted_then_cancelled_passes_the_lock_on) {
    async_loop *loop = sloop();
    static async_lock l;
    static locker_frame w[3];
    async_spawn(loop, locker(&w[0], &l, "a", 10));
    async_spawn(loop, locker(&w[1], &l, "b", 10));
    async_spawn(loop, locker(&w[2], &l, "c", 10));
    async_poll(loop);
    loop->now += 10;
    async_poll(loop);             /* a releases: b granted, ready */
    ASSERT(async_cancel(&w[1].task)); /* before b ever runs */
    drain(loop);
    ASSERT_STR_EQ(trace, "a@0 b!-125 c@10 ");
    ASSERT(!async_lock_locked(&l));
}

TEST(lock_holder_cancelled_releases_in_its_with_block) {
    async_loop *loop = sloop();
    static async_lock l;
    static locker_frame w[2];
    async_spawn(loop, locker(&w[0], &l, "a", 100));
    async_spawn(loop, locker(&w[1], &l, "b", 10));
    async_poll(loop);
    loop->now += 5;
    async_cancel(&w[0].task);
    drain(loop);
    ASSERT_STR_EQ(trace, "a@0 a!-125 b@5 ");
    ASSERT(!async_lock_locked(&l));
}

typedef struct {
    async_task task;
    async_lock lock;
    int step;
} relock_frame;

static async_status relock_run(async_task *t) {
    relock_frame *f = (relock_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT_LOCK(t, &f->lock);
    f->step = 1;
    AWAIT_LOCK(t, &f->lock); /* not re-entrant: a defined error, not a hang */
    f->step = 2;
    ASYNC_END(t);
}

TEST(lock_misuse_returns_codes) {
    async_loop *loop = sloop();
    static async_lock l;
    static relock_frame f;
    ASSERT_EQ(async_lock_release(&l), ASYNC_EPERM);
    ASSERT_EQ(async_lock_release(NULL), ASYNC_EINVAL);
    ASSERT(!async_lock_locked(NULL));
    ASYNC_FRAME_INIT(&f, relock_run);
    ASSERT_EQ(async_run(loop, &f.task), ASYNC_EDEADLK);
    ASSERT_EQ(f.step, 1);
    ASSERT(async_lock_locked(&f.lock));
}

/* ---- events ---- */

typedef struct {
    async_task task;
    async_event *event;
    const char *name;
} event_waiter_frame;

static async_status event_waiter_run(async_task *t) {
    event_waiter_frame *f = (event_waiter_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT_EVENT(t, f->event);
    LOG("%s@%u ", f->name, NOW());
    ASYNC_END(t);
}

static async_task *event_waiter(event_waiter_frame *f, async_event *e, const char *name) {
    if (ASYNC_FRAME_INIT(f, event_waiter_run)) {
        f->event = e;
        f->name = name;
    }
    return &f->task;
}

TEST(event_wakes_every_waiter_in_order_and_a_set_event_does_not_block) {
    async_loop *loop = sloop();
    static async_event e;
    static event_waiter_frame w[4];
    async_spawn(loop, event_waiter(&w[0], &e, "a"));
    async_spawn(loop, event_waiter(&w[1], &e, "b"));
    async_spawn(loop, event_waiter(&w[2], &e, "c"));
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
    async_spawn(loop, event_waiter(&w[3], &e, "d"));
    drain(loop);
    ASSERT_STR_EQ(trace, "a@7 c@7 d@7 ");
    ASSERT_EQ(async_event_set(NULL), ASYNC_EINVAL);
}

/* ---- conditions ---- */

typedef struct {
    async_task task;
    async_condition *cond;
    int *items;
    const char *name;
} cond_frame;

static async_status cond_consumer_run(async_task *t) {
    cond_frame *f = (cond_frame *)t;
    ASYNC_BEGIN(t);
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
    ASYNC_END(t);
}

static async_task *cond_consumer(cond_frame *f, async_condition *c, int *items, const char *name) {
    if (ASYNC_FRAME_INIT(f, cond_consumer_run)) {
        f->cond = c;
        f->items = items;
        f->name = name;
    }
    return &f->task;
}

typedef struct {
    async_task task;
    async_condition *cond;
    int *items;
} cond_producer_frame;

static async_status cond_producer_run(async_task *t) {
    cond_producer_frame *f = (cond_producer_frame *)t;
    ASYNC_BEGIN(t);
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
    ASYNC_END(t);
}

TEST(condition_notify_wakes_in_order_and_waiters_reacquire) {
    async_loop *loop = sloop();
    static async_condition c;
    static cond_frame w[3];
    static cond_producer_frame p;
    static int items;
    ASSERT_EQ(async_condition_init(&c, NULL), 0);
    async_spawn(loop, cond_consumer(&w[0], &c, &items, "a"));
    async_spawn(loop, cond_consumer(&w[1], &c, &items, "b"));
    async_spawn(loop, cond_consumer(&w[2], &c, &items, "c"));
    ASYNC_FRAME_INIT(&p, cond_producer_run);
    p.cond = &c;
    p.items = &items;
    async_spawn(loop, &p.task);
    drain(loop);
    ASSERT_STR_EQ(trace, "a@10 b@20 c@20 ");
    ASSERT_EQ(items, 0);
    ASSERT(!async_lock_locked(async_condition_lock(&c)));
}

TEST(condition_wait_cancelled_returns_holding_the_lock) {
    async_loop *loop = sloop();
    static async_condition c;
    static async_lock shared;
    static cond_frame w[2];
    static int items;
    ASSERT_EQ(async_condition_init(&c, &shared), 0);
    async_spawn(loop, cond_consumer(&w[0], &c, &items, "a"));
    async_spawn(loop, cond_consumer(&w[1], &c, &items, "b"));
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

static async_status cond_unlocked_wait_run(async_task *t) {
    cond_frame *f = (cond_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT_CONDITION(t, f->cond);
    ASYNC_END(t);
}

TEST(condition_misuse_returns_codes) {
    async_loop *loop = sloop();
    static async_condition c;
    static cond_frame f;
    ASSERT_EQ(async_condition_notify(&c, 1), ASYNC_EPERM);
    ASSERT_EQ(async_condition_notify(NULL, 1), ASYNC_EINVAL);
    ASSERT_EQ(async_condition_init(NULL, NULL), ASYNC_EINVAL);
    ASYNC_FRAME_INIT(&f, cond_unlocked_wait_run);
    f.cond = &c;
    ASSERT_EQ(async_run(loop, &f.task), ASYNC_EPERM);
}

/* ---- semaphores ---- */

typedef struct {
    async_task task;
    async_semaphore *sem;
    const char *name;
    int ms;
} sem_frame;

static async_status sem_user_run(async_task *t) {
    sem_frame *f = (sem_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_WITH_SEMAPHORE(t, f->sem) {
        LOG("%s@%u ", f->name, NOW());
        AWAIT_SLEEP(t, f->ms);
    }
    ASYNC_END_WITH_SEMAPHORE(t, f->sem);
    ASYNC_END(t);
}

static async_task *sem_user(sem_frame *f, async_semaphore *s, const char *name, int ms) {
    if (ASYNC_FRAME_INIT(f, sem_user_run)) {
        f->sem = s;
        f->name = name;
        f->ms = ms;
    }
    return &f->task;
}

TEST(semaphore_limits_concurrency_in_fifo_order) {
    async_loop *loop = sloop();
    static async_semaphore s;
    static sem_frame w[5];
    static const char *names[] = {"a", "b", "c", "d", "e"};
    int i;
    ASSERT_EQ(async_semaphore_init(&s, 2, true), 0);
    for (i = 0; i < 5; i++) async_spawn(loop, sem_user(&w[i], &s, names[i], 10 * (i + 1)));
    async_poll(loop);
    ASSERT(async_cancel(&w[2].task)); /* c leaves the queue */
    drain(loop);
    ASSERT_STR_EQ(trace, "a@0 b@0 d@10 e@20 ");
    ASSERT_EQ(async_semaphore_value(&s), 2);
    ASSERT_EQ(async_semaphore_release(&s), ASYNC_ERANGE); /* bounded: over-release */
    ASSERT_EQ(async_semaphore_value(&s), 2);
}

TEST(semaphore_granted_then_cancelled_passes_the_permit_on) {
    async_loop *loop = sloop();
    static async_semaphore s;
    static sem_frame w[3];
    async_semaphore_init(&s, 1, false);
    async_spawn(loop, sem_user(&w[0], &s, "a", 10));
    async_spawn(loop, sem_user(&w[1], &s, "b", 10));
    async_spawn(loop, sem_user(&w[2], &s, "c", 10));
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

TEST(semaphore_try_acquire_and_misuse) {
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

TEST(queue_orders_fifo_lifo_and_priority_stably) {
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

TEST(queue_priority_equal_items_leave_in_put_order) {
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

typedef struct {
    async_task task;
    async_queue *q;
    const char *name;
    intptr_t item;
    int n, i;
} qworker_frame;

static async_status qgetter_run(async_task *t) {
    qworker_frame *f = (qworker_frame *)t;
    ASYNC_BEGIN(t);
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
    ASYNC_END(t);
}

static async_status qputter_run(async_task *t) {
    qworker_frame *f = (qworker_frame *)t;
    ASYNC_BEGIN(t);
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
    ASYNC_END(t);
}

static async_task *qworker(qworker_frame *f, async_fn fn, async_queue *q, const char *name, int n, int item) {
    if (ASYNC_FRAME_INIT(f, fn)) {
        f->q = q;
        f->name = name;
        f->n = n;
        f->item = item;
    }
    return &f->task;
}

TEST(queue_getters_wake_in_fifo_order_and_cancelled_getter_leaves) {
    async_loop *loop = sloop();
    static async_queue q;
    static intptr_t items[4];
    static qworker_frame g[3], p;
    async_queue_init(&q, ASYNC_QUEUE_FIFO, items, NULL, 4);
    async_spawn(loop, qworker(&g[0], qgetter_run, &q, "a", 1, 0));
    async_spawn(loop, qworker(&g[1], qgetter_run, &q, "b", 1, 0));
    async_spawn(loop, qworker(&g[2], qgetter_run, &q, "c", 1, 0));
    async_poll(loop);
    async_cancel(&g[1].task);
    async_spawn(loop, qworker(&p, qputter_run, &q, "p", 2, 100));
    drain(loop);
    ASSERT_STR_EQ(trace, "b!-125 p>100@0 a<100@0 p>101@10 c<101@10 ");
    ASSERT_EQ(async_queue_size(&q), 0);
    ASSERT_EQ(async_queue_unfinished(&q), 0);
}

TEST(queue_bounded_put_waits_for_room) {
    async_loop *loop = sloop();
    static async_queue q;
    static intptr_t items[1];
    static qworker_frame g, p[2];
    async_queue_init(&q, ASYNC_QUEUE_FIFO, items, NULL, 1);
    async_spawn(loop, qworker(&p[0], qputter_run, &q, "p", 2, 10));
    async_spawn(loop, qworker(&p[1], qputter_run, &q, "r", 1, 20));
    async_poll(loop); /* p puts 10; r waits for room; at 10 p waits behind r */
    loop->now = 50;
    async_spawn(loop, qworker(&g, qgetter_run, &q, "g", 3, 0));
    drain(loop);
    ASSERT_STR_EQ(trace, "p>10@0 g<10@50 r>20@50 g<20@50 p>11@50 g<11@50 ");
}

typedef struct {
    async_task task;
    async_queue *q;
} joiner_frame;

static async_status joiner_run(async_task *t) {
    joiner_frame *f = (joiner_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT_QUEUE_JOIN(t, f->q);
    LOG("joined@%u ", NOW());
    ASYNC_END(t);
}

TEST(queue_join_waits_for_task_done_and_task_done_is_checked) {
    async_loop *loop = sloop();
    static async_queue q;
    static intptr_t items[4];
    static joiner_frame j;
    intptr_t v;
    async_queue_init(&q, ASYNC_QUEUE_FIFO, items, NULL, 4);
    ASSERT_EQ(async_queue_task_done(&q), ASYNC_ERANGE);
    async_queue_put_nowait(&q, 1);
    async_queue_put_nowait(&q, 2);
    ASYNC_FRAME_INIT(&j, joiner_run);
    j.q = &q;
    async_spawn(loop, &j.task);
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

TEST(queue_shutdown_wakes_putters_and_getters_with_eshutdown) {
    async_loop *loop = sloop();
    static async_queue q;
    static intptr_t items[1];
    static qworker_frame g[2], p;
    intptr_t v;
    async_queue_init(&q, ASYNC_QUEUE_FIFO, items, NULL, 1);
    async_spawn(loop, qworker(&p, qputter_run, &q, "p", 3, 1));
    async_poll(loop);
    loop->now = 10;
    async_poll(loop); /* p put 1 and waits to put 2 */
    ASSERT_EQ(async_queue_shutdown(&q, false), 0);
    drain(loop);
    ASSERT_EQ(async_task_code(&p.task), ASYNC_ESHUTDOWN);
    ASSERT_EQ(async_queue_put_nowait(&q, 5), ASYNC_ESHUTDOWN);
    async_spawn(loop, qworker(&g[0], qgetter_run, &q, "a", 2, 0));
    drain(loop); /* gets what is left, then fails */
    ASSERT_STR_EQ(trace, "p>1@0 p!-108 a<1@10 a!-108 ");
    ASSERT_EQ(async_task_code(&g[0].task), ASYNC_ESHUTDOWN);
    ASSERT_EQ(async_queue_get_nowait(&q, &v), ASYNC_ESHUTDOWN);
}

TEST(queue_immediate_shutdown_drops_items_and_releases_joiners) {
    async_loop *loop = sloop();
    static async_queue q;
    static intptr_t items[4];
    static joiner_frame j;
    static qworker_frame g;
    async_queue_init(&q, ASYNC_QUEUE_LIFO, items, NULL, 4);
    async_queue_put_nowait(&q, 1);
    async_queue_put_nowait(&q, 2);
    ASYNC_FRAME_INIT(&j, joiner_run);
    j.q = &q;
    async_spawn(loop, &j.task);
    async_poll(loop);
    ASSERT_EQ(async_queue_shutdown(&q, true), 0);
    ASSERT_EQ(async_queue_size(&q), 0);
    async_spawn(loop, qworker(&g, qgetter_run, &q, "g", 1, 0));
    drain(loop);
    ASSERT_STR_EQ(trace, "joined@0 g!-108 ");
}

static int queue_fail_after;
static void *queue_failing_realloc(void *p, size_t n) {
    if (n && queue_fail_after-- <= 0) return NULL;
    if (!n) {
        free(p);
        return NULL;
    }
    return realloc(p, n);
}

TEST(queue_growing_keeps_fifo_order_across_wrap_and_reports_enomem) {
    static async_queue q;
    intptr_t v;
    int i;
    queue_fail_after = 1000;
    ASSERT_EQ(async_queue_init_growing(&q, ASYNC_QUEUE_FIFO, 0, queue_failing_realloc), 0);
    for (i = 0; i < 6; i++) ASSERT_EQ(async_queue_put_nowait(&q, i), 0);
    for (i = 0; i < 4; i++) ASSERT_EQ(async_queue_get_nowait(&q, &v), 0); /* head moves to 4 of 8 */
    for (i = 6; i < 40; i++) ASSERT_EQ(async_queue_put_nowait(&q, i), 0); /* wraps, then grows */
    for (i = 4; i < 40; i++) {
        ASSERT_EQ(async_queue_get_nowait(&q, &v), 0);
        ASSERT_EQ(v, i);
    }
    async_queue_free_storage(&q);
    queue_fail_after = 0;
    ASSERT_EQ(async_queue_init_growing(&q, ASYNC_QUEUE_PRIORITY, 2, queue_failing_realloc), 0);
    ASSERT_EQ(async_queue_put_nowait(&q, 1), ASYNC_ENOMEM);
    ASSERT_EQ(async_queue_size(&q), 0);
    queue_fail_after = 1000;
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

/* ---- async with: the exit part runs on every way out, also when it awaits ---- */

typedef struct {
    async_task task;
    int fail;
    int ms;
} with_frame;

static const async_error with_error = {ASYNC_EUSER + 7, "body failed"};

static async_status with_run(async_task *t) {
    with_frame *f = (with_frame *)t;
    ASYNC_BEGIN(t);
    LOG("enter ");
    AWAIT_SLEEP(t, 1);
    ASYNC_WITH(t) {
        LOG("body ");
        AWAIT_SLEEP(t, f->ms);
        if (f->fail) ASYNC_THROW_ERROR(t, &with_error);
        LOG("done ");
    }
    ASYNC_WITH_EXIT(t) {
        AWAIT_SLEEP(t, 100); /* the release itself awaits */
        LOG("exit@%u ", NOW());
    }
    ASYNC_END_WITH(t);
    LOG("after ");
    ASYNC_END(t);
}

TEST(async_with_exit_runs_on_success_error_and_cancellation) {
    async_loop *loop = sloop();
    static with_frame f;
    ASYNC_FRAME_INIT(&f, with_run);
    f.ms = 10;
    ASSERT_EQ(async_run(loop, &f.task), 0);
    ASSERT_STR_EQ(trace, "enter body done exit@111 after ");

    loop = sloop();
    ASYNC_FRAME_INIT(&f, with_run);
    f.ms = 10;
    f.fail = 1;
    ASSERT_EQ(async_run(loop, &f.task), with_error.code);
    ASSERT_STR_EQ(trace, "enter body exit@111 ");

    loop = sloop();
    ASYNC_FRAME_INIT(&f, with_run);
    f.ms = 1000;
    async_spawn(loop, &f.task);
    async_poll(loop);
    loop->now = 1;
    async_poll(loop);
    loop->now = 50;
    async_cancel(&f.task); /* a cancel while the exit awaits does not cut the exit short */
    drain(loop);
    ASSERT_STR_EQ(trace, "enter body exit@150 ");
    ASSERT(async_task_cancelled(&f.task));
}

/* ---- async generators ---- */

typedef struct {
    async_task task;
    int i, n, fail_at;
} range_frame;

static const async_error range_error = {ASYNC_EUSER + 9, "producer failed"};

static async_status range_run(async_task *t) {
    range_frame *f = (range_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_TRY(t) {
        for (f->i = 0; f->i < f->n; f->i++) {
            AWAIT_SLEEP(t, 10);
            if (f->i == f->fail_at) ASYNC_THROW_ERROR(t, &range_error);
            ASYNC_TRY(t) {
                ASYNC_YIELD_VALUE(t, f->i);
            }
            ASYNC_CATCH(t) {
                if (async_caught(t)->code != ASYNC_EUSER + 3) ASYNC_RERAISE(t);
                LOG("thrown-in ");
                ASYNC_YIELD_VALUE(t, 100 + f->i); /* answers the consumer's error with a value */
            }
            ASYNC_END_TRY(t);
        }
    }
    ASYNC_FINALLY(t) {
        LOG("cleanup@%u ", NOW());
    }
    ASYNC_END_TRY(t);
    ASYNC_END(t);
}

static async_task *async_range(range_frame *f, int n, int fail_at) {
    if (ASYNC_FRAME_INIT(f, range_run)) {
        f->n = n;
        f->fail_at = fail_at;
    }
    return &f->task;
}

typedef struct {
    async_task task;
    range_frame range;
    async_gen gen;
    intptr_t value;
    int stop_at;
    int throw_at;
    int fail_at;
    int close;
} consumer_frame;

static const async_error thrown_in = {ASYNC_EUSER + 3, "consumer's error"};

static async_status consumer_run(async_task *t) {
    consumer_frame *f = (consumer_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_FOR(t, &f->gen, async_range(&f->range, 4, f->fail_at), &f->value) {
        LOG("v%d@%u ", (int)f->value, NOW());
        if (f->value == f->stop_at) break;
        if (f->value == f->throw_at) {
            AWAIT_GEN_THROW(t, &f->gen, &thrown_in, &f->value);
            LOG("v%d ", (int)f->value);
        }
    }
    LOG("loop-end ");
    if (f->close) AWAIT_GEN_CLOSE(t, &f->gen);
    AWAIT_SLEEP(t, 1000);
    LOG("end@%u ", NOW());
    ASYNC_END(t);
}

static consumer_frame *consumer(consumer_frame *f) {
    ASYNC_FRAME_INIT(f, consumer_run);
    f->stop_at = f->throw_at = f->fail_at = -1;
    return f;
}

TEST(async_for_iterates_a_producer_to_its_end) {
    async_loop *loop = sloop();
    static consumer_frame f;
    ASSERT_EQ(async_run(loop, &consumer(&f)->task), 0);
    ASSERT_STR_EQ(trace, "v0@10 v1@20 v2@30 v3@40 cleanup@40 loop-end end@1040 ");
    ASSERT(async_gen_done(&f.gen));
}

TEST(async_for_break_then_close_runs_the_producers_cleanup_at_once) {
    async_loop *loop = sloop();
    static consumer_frame f;
    consumer(&f)->stop_at = 1;
    f.close = 1;
    ASSERT_EQ(async_run(loop, &f.task), 0);
    ASSERT_STR_EQ(trace, "v0@10 v1@20 loop-end cleanup@20 end@1020 ");
}

TEST(async_for_break_without_close_cleans_up_when_the_consumer_ends) {
    async_loop *loop = sloop();
    static consumer_frame f;
    consumer(&f)->stop_at = 0;
    ASSERT_EQ(async_run(loop, &f.task), 0);
    ASSERT_STR_EQ(trace, "v0@10 loop-end end@1010 cleanup@1010 ");
    ASSERT(async_task_done(&f.range.task));
}

TEST(async_generator_errors_propagate_both_ways) {
    async_loop *loop = sloop();
    static consumer_frame f;
    consumer(&f)->throw_at = 1;
    ASSERT_EQ(async_run(loop, &f.task), 0);
    ASSERT_STR_EQ(trace, "v0@10 v1@20 thrown-in v101 v2@30 v3@40 cleanup@40 loop-end end@1040 ");

    loop = sloop();
    consumer(&f)->fail_at = 2; /* the producer fails: the consumer's loop raises it */
    ASSERT_EQ(async_run(loop, &f.task), range_error.code);
    ASSERT_STR_EQ(trace, "v0@10 v1@20 cleanup@30 ");
}

TEST(cancelling_the_consumer_cancels_the_producer) {
    async_loop *loop = sloop();
    static consumer_frame f;
    consumer(&f);
    async_spawn(loop, &f.task);
    run_until(loop, 15);
    async_cancel(&f.task); /* the consumer waits for v1; the producer sleeps */
    drain(loop);
    ASSERT_STR_EQ(trace, "v0@10 cleanup@15 ");
    ASSERT(async_task_cancelled(&f.task));
    ASSERT(async_task_cancelled(&f.range.task));
}

static async_status stray_yield_run(async_task *t) {
    ASYNC_BEGIN(t);
    ASYNC_YIELD_VALUE(t, 1);
    ASYNC_END(t);
}

TEST(yield_value_outside_a_generator_is_einval) {
    async_loop *loop = sloop();
    static async_task t;
    async_task_init(&t, stray_yield_run);
    ASSERT_EQ(async_run(loop, &t), ASYNC_EINVAL);
}

static const test_case sync_tests[] = {
    TEST_ENTRY(lock_is_granted_in_request_order)
    TEST_ENTRY(lock_newcomer_cannot_barge_past_a_woken_waiter)
    TEST_ENTRY(lock_waiter_cancelled_while_queued_leaves_the_queue)
    TEST_ENTRY(lock_granted_then_cancelled_passes_the_lock_on)
    TEST_ENTRY(lock_holder_cancelled_releases_in_its_with_block)
    TEST_ENTRY(lock_misuse_returns_codes)
    TEST_ENTRY(event_wakes_every_waiter_in_order_and_a_set_event_does_not_block)
    TEST_ENTRY(condition_notify_wakes_in_order_and_waiters_reacquire)
    TEST_ENTRY(condition_wait_cancelled_returns_holding_the_lock)
    TEST_ENTRY(condition_misuse_returns_codes)
    TEST_ENTRY(semaphore_limits_concurrency_in_fifo_order)
    TEST_ENTRY(semaphore_granted_then_cancelled_passes_the_permit_on)
    TEST_ENTRY(semaphore_try_acquire_and_misuse)
    TEST_ENTRY(queue_orders_fifo_lifo_and_priority_stably)
    TEST_ENTRY(queue_priority_equal_items_leave_in_put_order)
    TEST_ENTRY(queue_getters_wake_in_fifo_order_and_cancelled_getter_leaves)
    TEST_ENTRY(queue_bounded_put_waits_for_room)
    TEST_ENTRY(queue_join_waits_for_task_done_and_task_done_is_checked)
    TEST_ENTRY(queue_shutdown_wakes_putters_and_getters_with_eshutdown)
    TEST_ENTRY(queue_immediate_shutdown_drops_items_and_releases_joiners)
    TEST_ENTRY(queue_growing_keeps_fifo_order_across_wrap_and_reports_enomem)
    TEST_ENTRY(async_with_exit_runs_on_success_error_and_cancellation)
    TEST_ENTRY(async_for_iterates_a_producer_to_its_end)
    TEST_ENTRY(async_for_break_then_close_runs_the_producers_cleanup_at_once)
    TEST_ENTRY(async_for_break_without_close_cleans_up_when_the_consumer_ends)
    TEST_ENTRY(async_generator_errors_propagate_both_ways)
    TEST_ENTRY(cancelling_the_consumer_cancels_the_producer)
    TEST_ENTRY(yield_value_outside_a_generator_is_einval)
    {NULL, NULL}
};
