/* Awaits that can never end (a task awaiting itself, its owner, or tasks awaiting each other), values
 * out of range for the loop's clock, and a queue whose storage is freed with items in it. */

static char cy_trace[512];
static void cy_log(const char *s) { strncat(cy_trace, s, sizeof cy_trace - strlen(cy_trace) - 1); }

static void *cy_realloc(void *ctx, void *p, size_t n) {
    (void)ctx;
    if (n == 0) {
        free(p);
        return NULL;
    }
    return realloc(p, n);
}

static async_loop *cy_loop(void) {
    static async_loop loop;
    async_loop_init(&loop);
    async_loop_set_allocator(&loop, cy_realloc, NULL);
    cy_trace[0] = '\0';
    return &loop;
}

/* ---- an inline child that awaits the task it runs in ---- */

typedef struct {
    async_task task;
    async_task *target; /* the task to await */
    int code;           /* what the await raised */
} cy_awaiter_frame;

static async_status cy_awaiter_run(async_task *t) {
    cy_awaiter_frame *f = (cy_awaiter_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_TRY(t) {
        AWAIT(t, f->target);
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
    ASYNC_END(t);
}

typedef struct {
    async_task task;
    cy_awaiter_frame child;
    async_group g;
    int depth; /* 0: the child awaits this task inline; 1: the child is gathered */
} cy_outer_frame;

static async_status cy_outer_run(async_task *t) {
    cy_outer_frame *f = (cy_outer_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_FRAME_INIT(&f->child, cy_awaiter_run);
    f->child.target = t;
    if (f->depth == 0)
        AWAIT(t, &f->child.task);
    else
        AWAIT_GATHER(t, &f->g, &f->child.task);
    ASYNC_END(t);
}

TEST(cycles_inline_child_awaiting_the_task_it_runs_in_is_einval) {
    async_loop *loop = cy_loop();
    static cy_outer_frame f;
    ASYNC_FRAME_INIT(&f, cy_outer_run);
    ASSERT_EQ(async_run(loop, &f.task), 0);
    ASSERT_EQ(f.child.code, ASYNC_EINVAL);
}

TEST(cycles_gathered_child_awaiting_its_parent_is_einval) {
    async_loop *loop = cy_loop();
    static cy_outer_frame f;
    ASYNC_FRAME_INIT(&f, cy_outer_run);
    f.depth = 1;
    ASSERT_EQ(async_run(loop, &f.task), 0);
    ASSERT_EQ(f.child.code, ASYNC_EINVAL);
}

TEST(cycles_awaiting_a_finished_or_unrelated_task_still_works) {
    async_loop *loop = cy_loop();
    static cy_awaiter_frame a, b;
    static cy_awaiter_frame none;
    ASYNC_FRAME_INIT(&none, cy_awaiter_run); /* awaits NULL: EINVAL, then ends */
    ASYNC_FRAME_INIT(&a, cy_awaiter_run);
    a.target = &none.task;
    ASSERT_EQ(async_spawn(loop, &none.task), 0);
    ASSERT_EQ(async_run(loop, &a.task), 0); /* a waits for the running, unrelated `none` */
    ASSERT_EQ(none.code, ASYNC_EINVAL);
    ASSERT_EQ(a.code, 0);
    ASYNC_FRAME_INIT(&b, cy_awaiter_run);
    b.target = &none.task; /* finished: returns at once */
    ASSERT_EQ(async_run(loop, &b.task), 0);
    ASSERT_EQ(b.code, 0);
}

/* ---- two tasks awaiting each other: async_run unwinds them ---- */

typedef struct {
    async_task task;
    const char *name;
    async_task *target;
} cy_peer_frame;

static async_status cy_peer_run(async_task *t) {
    cy_peer_frame *f = (cy_peer_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_YIELD(t); /* both are running before either awaits */
    ASYNC_TRY(t) {
        AWAIT(t, f->target);
        cy_log("never ");
    }
    ASYNC_FINALLY(t) {
        cy_log(f->name);
        cy_log("-finally ");
    }
    ASYNC_END_TRY(t);
    ASYNC_END(t);
}

typedef struct {
    async_task task;
    cy_peer_frame a, b;
} cy_main_frame;

static async_status cy_main_run(async_task *t) {
    cy_main_frame *f = (cy_main_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_FRAME_INIT(&f->a, cy_peer_run);
    ASYNC_FRAME_INIT(&f->b, cy_peer_run);
    f->a.name = "a";
    f->b.name = "b";
    f->a.target = &f->b.task;
    f->b.target = &f->a.task;
    async_spawn(async_task_loop(t), &f->a.task);
    async_spawn(async_task_loop(t), &f->b.task);
    ASYNC_TRY(t) {
        AWAIT(t, &f->a.task);
    }
    ASYNC_FINALLY(t) {
        cy_log("main-finally ");
    }
    ASYNC_END_TRY(t);
    ASYNC_END(t);
}

TEST(cycles_two_tasks_awaiting_each_other_are_unwound_and_their_finally_blocks_run) {
    async_loop *loop = cy_loop();
    static cy_main_frame m;
    ASYNC_FRAME_INIT(&m, cy_main_run);
    ASSERT_EQ(async_run(loop, &m.task), ASYNC_EDEADLK);
    ASSERT(async_task_done(&m.a.task));
    ASSERT(async_task_done(&m.b.task));
    ASSERT(async_task_cancelled(&m.a.task));
    ASSERT(async_task_cancelled(&m.b.task));
    /* a, where main's chain enters the cycle a -> b -> a, is released first; its end wakes main and b */
    ASSERT_STR_EQ(cy_trace, "a-finally main-finally b-finally ");
    ASSERT_EQ(async_loop_has_ready(loop), false);
}

/* main awaits a; a gathers c; c awaits b; b awaits a: the cycle a -> c -> b -> a passes a group */
typedef struct {
    async_task task;
    cy_peer_frame c;
    async_group g;
    async_task *b;
} cy_gatherer_frame;

static async_status cy_gatherer_run(async_task *t) {
    cy_gatherer_frame *f = (cy_gatherer_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_FRAME_INIT(&f->c, cy_peer_run);
    f->c.name = "c";
    f->c.target = f->b;
    ASYNC_TRY(t) {
        AWAIT_GATHER(t, &f->g, &f->c.task);
    }
    ASYNC_FINALLY(t) {
        cy_log("a-finally ");
    }
    ASYNC_END_TRY(t);
    ASYNC_END(t);
}

typedef struct {
    async_task task;
    cy_gatherer_frame a;
    cy_peer_frame b;
} cy_main2_frame;

static async_status cy_main2_run(async_task *t) {
    cy_main2_frame *f = (cy_main2_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_FRAME_INIT(&f->a, cy_gatherer_run);
    ASYNC_FRAME_INIT(&f->b, cy_peer_run);
    f->a.b = &f->b.task;
    f->b.name = "b";
    f->b.target = &f->a.task;
    async_spawn(async_task_loop(t), &f->a.task);
    async_spawn(async_task_loop(t), &f->b.task);
    ASYNC_TRY(t) {
        AWAIT(t, &f->a.task);
    }
    ASYNC_FINALLY(t) {
        cy_log("main-finally ");
    }
    ASYNC_END_TRY(t);
    ASYNC_END(t);
}

TEST(cycles_through_a_gathered_child_are_unwound_too) {
    async_loop *loop = cy_loop();
    static cy_main2_frame m;
    ASYNC_FRAME_INIT(&m, cy_main2_run);
    ASSERT_EQ(async_run(loop, &m.task), ASYNC_EDEADLK);
    ASSERT(async_task_done(&m.a.task) && async_task_done(&m.b.task) && async_task_done(&m.a.c.task));
    /* c, the first task of the cycle that awaits a task, is released: a's gather ends, a ends (cancelled
     * by main's cancellation), and that wakes main and b */
    ASSERT_STR_EQ(cy_trace, "c-finally a-finally main-finally b-finally ");
}

/* ---- milliseconds beyond the 32-bit clock: refused, never cut short ---- */

typedef struct {
    async_task task;
    int64_t ms;
    int code;
    async_timeout tmo;
    cy_peer_frame child;
    int use_timeout;
} cy_sleeper_frame;

static async_status cy_sleeper_run(async_task *t) {
    cy_sleeper_frame *f = (cy_sleeper_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_TRY(t) {
        if (f->use_timeout) {
            ASYNC_FRAME_INIT(&f->child, cy_peer_run);
            f->child.name = "child";
            AWAIT_TIMEOUT(t, &f->tmo, f->ms, &f->child.task);
        } else {
            AWAIT_SLEEP(t, f->ms);
        }
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
    ASYNC_END(t);
}

TEST(cycles_sleep_beyond_the_clock_range_is_erange_not_truncated) {
    async_loop *loop = cy_loop();
    static cy_sleeper_frame f;
    ASYNC_FRAME_INIT(&f, cy_sleeper_run);
    f.ms = (int64_t)1 << 32; /* cut to 32 bits this would be 0: a yield */
    ASSERT_EQ(async_run(loop, &f.task), 0);
    ASSERT_EQ(f.code, ASYNC_ERANGE);
    ASSERT_EQ(async_loop_now(loop), 0);
    ASYNC_FRAME_INIT(&f, cy_sleeper_run);
    f.ms = (int64_t)ASYNC_MS_MAX + 1; /* cut to 32 bits this would be negative */
    ASSERT_EQ(async_run(loop, &f.task), 0);
    ASSERT_EQ(f.code, ASYNC_ERANGE);
    ASYNC_FRAME_INIT(&f, cy_sleeper_run);
    f.ms = ASYNC_MS_MAX; /* the longest sleep there is */
    ASSERT_EQ(async_run(loop, &f.task), 0);
    ASSERT_EQ(f.code, 0);
    ASSERT_EQ(async_loop_now(loop), ASYNC_MS_MAX);
}

TEST(cycles_timeout_beyond_the_clock_range_is_erange_and_the_child_never_starts) {
    async_loop *loop = cy_loop();
    static cy_sleeper_frame f;
    ASYNC_FRAME_INIT(&f, cy_sleeper_run);
    f.use_timeout = 1;
    f.ms = (int64_t)3000000000;
    ASSERT_EQ(async_run(loop, &f.task), 0);
    ASSERT_EQ(f.code, ASYNC_ERANGE);
    ASSERT_EQ(async_task_state(&f.child.task)[0], 'n'); /* "new": never started */
    ASSERT_STR_EQ(cy_trace, "");
}

/* ---- a growing queue's storage freed with items in it ---- */

typedef struct {
    async_task task;
    async_queue *q;
} cy_joiner_frame;

static async_status cy_joiner_run(async_task *t) {
    cy_joiner_frame *f = (cy_joiner_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT_QUEUE_JOIN(t, f->q);
    cy_log("joined ");
    ASYNC_END(t);
}

static void *cy_plain_realloc(void *p, size_t n) {
    if (n == 0) {
        free(p);
        return NULL;
    }
    return realloc(p, n);
}

TEST(cycles_freeing_a_queues_storage_settles_its_unfinished_count) {
    async_loop *loop = cy_loop();
    static async_queue q;
    static cy_joiner_frame j;
    intptr_t item;
    ASSERT_EQ(async_queue_init_growing(&q, ASYNC_QUEUE_FIFO, 0, cy_plain_realloc), 0);
    ASSERT_EQ(async_queue_put_nowait(&q, 1), 0);
    ASSERT_EQ(async_queue_put_nowait(&q, 2), 0);
    ASSERT_EQ(async_queue_put_nowait(&q, 3), 0);
    ASSERT_EQ(async_queue_get_nowait(&q, &item), 0); /* taken: still unfinished until task_done */
    ASSERT_EQ(async_queue_free_storage(&q), 0);
    ASSERT_EQ(async_queue_size(&q), 0);
    ASSERT_EQ(async_queue_unfinished(&q), 1);
    ASSERT_EQ(async_queue_task_done(&q), 0);
    ASSERT_EQ(async_queue_unfinished(&q), 0);
    ASSERT_EQ(async_queue_task_done(&q), ASYNC_ERANGE);
    ASYNC_FRAME_INIT(&j, cy_joiner_run);
    j.q = &q;
    ASSERT_EQ(async_run(loop, &j.task), 0); /* nothing left to wait for */
    ASSERT_STR_EQ(cy_trace, "joined ");
    /* the queue works again after its storage was freed */
    ASSERT_EQ(async_queue_put_nowait(&q, 4), 0);
    ASSERT_EQ(async_queue_get_nowait(&q, &item), 0);
    ASSERT_EQ(item, 4);
    ASSERT_EQ(async_queue_free_storage(&q), 0);
}

static const test_case cycles_tests[] = {
    TEST_ENTRY(cycles_inline_child_awaiting_the_task_it_runs_in_is_einval)
    TEST_ENTRY(cycles_gathered_child_awaiting_its_parent_is_einval)
    TEST_ENTRY(cycles_awaiting_a_finished_or_unrelated_task_still_works)
    TEST_ENTRY(cycles_two_tasks_awaiting_each_other_are_unwound_and_their_finally_blocks_run)
    TEST_ENTRY(cycles_through_a_gathered_child_are_unwound_too)
    TEST_ENTRY(cycles_sleep_beyond_the_clock_range_is_erange_not_truncated)
    TEST_ENTRY(cycles_timeout_beyond_the_clock_range_is_erange_and_the_child_never_starts)
    TEST_ENTRY(cycles_freeing_a_queues_storage_settles_its_unfinished_count)
    {NULL, NULL}};
