/* The coroutine macros themselves: a coroutine written in one place (ASYNC_DEF, ASYNC_CALL, AWAIT_CALL,
 * ASYNC_MAIN's parts), except E, break and continue out of try/with blocks, how often each macro
 * evaluates its arguments, and the checks that ASYNC_ASSERT sees. */
#include "test.h"
#include "util.h"

/* ---- one place per coroutine ---- */

ASYNC_DEF(greet, const char *name; int ms; char message[32];) {
    AWAIT_SLEEP(t, f->ms);
    snprintf(f->message, sizeof f->message, "Hello, %s!", f->name);
    ASYNC_RETURN(t, (intptr_t)strlen(f->message));
} ASYNC_END_DEF

ASYNC_DEF(greeter, greet_frame a, b; async_group all; long first;) {
    AWAIT_CALL(t, greet, &f->a, "Alice", 10);
    f->first = (long)async_task_value(&f->a.task);
    AWAIT_GATHER(t, &f->all, ASYNC_CALL(greet, &f->a, .name = "Bob", .ms = 30), ASYNC_CALL(greet, &f->b, "Eve", 20));
} ASYNC_END_DEF

TEST(macros_def_call_and_await_call_run_a_coroutine_written_in_one_place) {
    async_loop *loop = new_loop();
    static greeter_frame g;
    ASSERT_EQ(async_run(loop, ASYNC_CALL(greeter, &g)), 0);
    ASSERT_EQ(g.first, 13); /* "Hello, Alice!" */
    ASSERT_STR_EQ(g.a.message, "Hello, Bob!");
    ASSERT_STR_EQ(g.b.message, "Hello, Eve!");
    ASSERT_EQ(async_loop_now(loop), 10 + 30);
}

ASYNC_DEF(no_fields) {
    LOG("ran ");
} ASYNC_END_DEF

TEST(macros_def_without_fields_and_a_call_without_arguments) {
    async_loop *loop = new_loop();
    static no_fields_frame n;
    ASSERT_EQ(sizeof n, sizeof(async_task));
    ASSERT_EQ(async_run(loop, ASYNC_CALL(no_fields, &n)), 0);
    ASSERT_STR_EQ(trace, "ran ");
}

TEST(macros_call_of_a_running_frame_leaves_it_alone_and_the_second_run_is_ebusy) {
    async_loop *loop = new_loop();
    static greet_frame g;
    ASSERT_EQ(async_spawn(loop, ASYNC_CALL(greet, &g, "first", 50)), 0);
    async_poll(loop); /* sleeping now */
    ASSERT(ASYNC_CALL(greet, &g, "second", 1) == &g.task);
    ASSERT_STR_EQ(g.name, "first"); /* untouched */
    ASSERT_EQ(async_spawn(loop, &g.task), ASYNC_EBUSY);
    drain(loop);
    ASSERT_STR_EQ(g.message, "Hello, first!");
    ASSERT(ASYNC_CALL(greet, &g, "again", 1) == &g.task); /* finished: prepared again, other fields zeroed */
    ASSERT_STR_EQ(g.message, "");
    ASSERT_EQ(async_run(loop, &g.task), 0);
    ASSERT_STR_EQ(g.message, "Hello, again!");
}

/* ---- except E ---- */

ASYNC_DEF(raiser, int code;) {
    AWAIT_YIELD(t);
    if (f->code == ASYNC_EUSER + 7) ASYNC_THROW(t, ASYNC_EUSER + 7, "seven");
    if (f->code == ASYNC_ETIMEDOUT) ASYNC_THROW(t, ASYNC_ETIMEDOUT, "late");
    AWAIT_SLEEP(t, 1000);
} ASYNC_END_DEF

ASYNC_DEF(excepter, raiser_frame r; int code; int handled; int finally_ran;) {
    ASYNC_TRY(t) {
        AWAIT_CALL(t, raiser, &f->r, f->code);
    }
    ASYNC_EXCEPT(t, ASYNC_ETIMEDOUT, ASYNC_EUSER + 7) {
        f->handled = async_caught(t)->code;
    }
    ASYNC_FINALLY(t) {
        f->finally_ran++;
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

TEST(macros_except_handles_the_codes_it_names_and_passes_on_the_others) {
    async_loop *loop = new_loop();
    static excepter_frame e;
    ASSERT_EQ(async_run(loop, ASYNC_CALL(excepter, &e, .code = ASYNC_EUSER + 7)), 0);
    ASSERT_EQ(e.handled, ASYNC_EUSER + 7);
    ASSERT_EQ(e.finally_ran, 1);
    ASSERT_EQ(async_run(loop, ASYNC_CALL(excepter, &e, .code = ASYNC_ETIMEDOUT)), 0);
    ASSERT_EQ(e.handled, ASYNC_ETIMEDOUT);
}

TEST(macros_except_lets_cancellation_pass_after_the_finally_block) {
    async_loop *loop = new_loop();
    static excepter_frame e;
    ASSERT_EQ(async_spawn(loop, ASYNC_CALL(excepter, &e, .code = 0)), 0);
    async_poll(loop);
    async_poll(loop); /* the raiser sleeps */
    ASSERT(async_cancel(&e.task));
    drain(loop);
    ASSERT(async_task_cancelled(&e.task));
    ASSERT_EQ(e.handled, 0);
    ASSERT_EQ(e.finally_ran, 1);
}

/* ---- break and continue out of try, with, lock, semaphore and async for ---- */

ASYNC_DEF(leaver, int mode; int i; int cleanups; async_lock lock; async_semaphore sem; async_gen gen;
          producer_frame p; intptr_t v; int after;) {
    for (f->i = 0; f->i < 3; f->i++) {
        if (f->mode == 0) { /* try/finally */
            ASYNC_TRY(t) {
                AWAIT_YIELD(t);
                if (f->i == 0) continue;
                if (f->i == 1) break;
            }
            ASYNC_FINALLY(t) {
                f->cleanups++;
                AWAIT_YIELD(t); /* the cleanup may await */
            }
            ASYNC_END_TRY(t);
        } else if (f->mode == 1) { /* lock */
            AWAIT_WITH_LOCK(t, &f->lock) {
                if (f->i == 0) continue;
                if (f->i == 1) break;
            }
            ASYNC_END_WITH_LOCK(t, &f->lock);
        } else if (f->mode == 2) { /* semaphore */
            AWAIT_WITH_SEMAPHORE(t, &f->sem) {
                if (f->i == 0) continue;
                if (f->i == 1) break;
            }
            ASYNC_END_WITH_SEMAPHORE(t, &f->sem);
        } else { /* async for over a producer, left by a break inside a try */
            AWAIT_FOR(t, &f->gen, producer(&f->p, 5, 0), &f->v) {
                ASYNC_TRY(t) {
                    if (f->v == 2) break;
                }
                ASYNC_FINALLY(t) {
                    f->cleanups++;
                }
                ASYNC_END_TRY(t);
            }
            f->after = (int)f->v;
            AWAIT_GEN_CLOSE(t, &f->gen);
            break;
        }
        LOG("never ");
    }
} ASYNC_END_DEF

TEST(macros_break_and_continue_out_of_try_and_with_blocks_run_their_cleanup) {
    async_loop *loop = new_loop();
    static leaver_frame l;
    ASSERT_EQ(async_run(loop, ASYNC_CALL(leaver, &l, .mode = 0)), 0);
    ASSERT_EQ(l.cleanups, 2); /* the continue's, then the break's */
    ASSERT_EQ(l.i, 1);
    ASYNC_CALL(leaver, &l, .mode = 1);
    ASSERT_EQ(async_run(loop, &l.task), 0);
    ASSERT(!async_lock_locked(&l.lock));
    ASYNC_CALL(leaver, &l, .mode = 2);
    ASSERT_EQ(async_semaphore_init(&l.sem, 2, true), 0);
    ASSERT_EQ(async_run(loop, &l.task), 0);
    ASSERT_EQ(async_semaphore_value(&l.sem), 2); /* every permit back */
    ASSERT_EQ(async_run(loop, ASYNC_CALL(leaver, &l, .mode = 3)), 0);
    ASSERT_EQ(l.cleanups, 2); /* values 1 and 2, then the break */
    ASSERT_EQ(l.after, 2);
    ASSERT_EQ(l.p.cleaned, 1); /* the producer's cleanup ran at the close */
    ASSERT_STR_EQ(trace, ""); /* no iteration ran past its block */
}

ASYNC_DEF(stray, int cont;) {
    ASYNC_TRY(t) {
        AWAIT_YIELD(t);
        if (f->cont) continue; /* no loop around: the coroutine's body is left */
        break;
    }
    ASYNC_FINALLY(t) {
        LOG("cleanup ");
    }
    ASYNC_END_TRY(t);
    LOG("never ");
} ASYNC_END_DEF

TEST(macros_break_or_continue_in_no_loop_is_einval_after_the_cleanup) {
    async_loop *loop = new_loop();
    static stray_frame s;
    ASSERT_EQ(async_run(loop, ASYNC_CALL(stray, &s)), ASYNC_EINVAL);
    ASSERT_STR_EQ(trace, "cleanup ");
    ASSERT_EQ(async_run(loop, ASYNC_CALL(stray, &s, 1)), ASYNC_EINVAL);
}

ASYNC_DEF(finally_break, int i; int code;) {
    for (f->i = 0; f->i < 2; f->i++) {
        ASYNC_TRY(t) {
            ASYNC_THROW(t, ASYNC_EUSER + 1, "dropped");
        }
        ASYNC_FINALLY(t) {
            break; /* as in Python: leaves the loop and drops the error */
        }
        ASYNC_END_TRY(t);
    }
    f->code = 1;
} ASYNC_END_DEF

TEST(macros_break_in_a_finally_block_drops_the_pending_error_as_python_does) {
    async_loop *loop = new_loop();
    static finally_break_frame b;
    ASSERT_EQ(async_run(loop, ASYNC_CALL(finally_break, &b)), 0);
    ASSERT_EQ(b.i, 0);
    ASSERT_EQ(b.code, 1);
}

/* ---- an AWAIT inside a switch of the user's own fails when the coroutine resumes there ---- */

/* A switch on a 64-bit value: one on anything narrower is a build error (test/compile_fail). */
ASYNC_DEF(switcher, long long k;) {
    switch (f->k) {
    case 1:
        AWAIT_YIELD(t); /* its resume point belongs to this switch, not the coroutine's */
        break;
    default: break;
    }
} ASYNC_END_DEF

TEST(macros_await_inside_a_users_64_bit_switch_fails_at_resume_with_a_clear_message) {
    async_loop *loop = new_loop();
    static switcher_frame s;
    ASSERT_EQ(async_run(loop, ASYNC_CALL(switcher, &s, 1)), ASYNC_EFAULT);
    ASSERT(strstr(async_error_message(async_task_error(&s.task)), "switch statement of your own") != NULL);
}

/* ---- how often each macro evaluates its arguments ---- */

static int evals, obj_evals;
static int counted(int v) {
    evals++;
    return v;
}
#define ONCE(x) (counted(0) + (x))         /* a value: evaluated once */
#define OBJ(p) (obj_evals++, (p))          /* an object: again at each resume */

ASYNC_DEF(setter, async_future *fut;) {
    AWAIT_SLEEP(t, 10);
    async_future_set_value(f->fut, 5);
} ASYNC_END_DEF

ASYNC_DEF(counter, async_lock lock; async_semaphore sem; async_queue q; intptr_t items[4];
          async_future fut; async_group g, g2; async_timeout tmo; sleeper_frame s, s2; greet_frame gr;
          async_deadline d; setter_frame set; int n[16], o[16];) {
    evals = obj_evals = 0;
    AWAIT_SLEEP(t, ONCE(1));
    f->n[0] = evals;
    evals = 0;
    AWAIT_CALL(t, greet, &f->gr, "x", ONCE(1));
    f->n[1] = evals;
    evals = 0;
    AWAIT_TIMEOUT(t, OBJ(&f->tmo), ONCE(100), sleeper(&f->s, ONCE(5), 0));
    f->n[2] = evals;
    f->o[2] = obj_evals;
    evals = obj_evals = 0;
    AWAIT_GATHER(t, OBJ(&f->g), sleeper(&f->s, ONCE(5), 0), sleeper(&f->s2, ONCE(5), 0));
    f->n[3] = evals;
    f->o[3] = obj_evals;
    async_queue_init(&f->q, ASYNC_QUEUE_FIFO, f->items, NULL, 1);
    async_queue_put_nowait(&f->q, 1); /* full: the put below waits */
    evals = 0;
    AWAIT_QUEUE_PUT(t, &f->q, ONCE(7)); /* the getter below frees the slot */
    f->n[4] = evals;
    evals = 0;
    AWAIT_SEMAPHORE(t, &f->sem);
    ASYNC_TIMEOUT(t, &f->d, ONCE(100)) {
        AWAIT_SLEEP(t, 1);
    }
    ASYNC_END_TIMEOUT(t, &f->d);
    f->n[5] = evals;
    /* objects of awaits that wait once: evaluated at the start and at the resume */
    async_spawn(async_task_loop(t), ASYNC_CALL(setter, &f->set, &f->fut));
    obj_evals = 0;
    AWAIT_FUTURE(t, OBJ(&f->fut));
    f->o[6] = obj_evals;
    obj_evals = 0;
    AWAIT_LOCK(t, OBJ(&f->lock)); /* free: taken at once */
    f->o[7] = obj_evals;
    async_lock_release(&f->lock);
    evals = 0;
    ASYNC_SPAWN(t, &f->g2, sleeper(&f->s, ONCE(1), 0));
    AWAIT_GROUP(t, &f->g2);
    f->n[9] = evals;
    ASYNC_RETURN(t, ONCE(3));
} ASYNC_END_DEF

ASYNC_DEF(taker, async_queue *q; async_semaphore *sem; intptr_t got;) {
    AWAIT_SLEEP(t, 50);
    AWAIT_QUEUE_GET(t, f->q, &f->got);
    async_semaphore_release(f->sem);
} ASYNC_END_DEF

TEST(macros_arguments_are_evaluated_once_except_where_the_doc_comment_says) {
    async_loop *loop = new_loop();
    static counter_frame c;
    static taker_frame k;
    ASYNC_CALL(counter, &c);
    async_semaphore_init(&c.sem, 0, false);
    ASSERT_EQ(async_spawn(loop, ASYNC_CALL(taker, &k, &c.q, &c.sem)), 0);
    ASSERT_EQ(async_run(loop, &c.task), 0);
    ASSERT_EQ(c.n[0], 1); /* AWAIT_SLEEP's ms */
    ASSERT_EQ(c.n[1], 1); /* AWAIT_CALL's arguments */
    ASSERT_EQ(c.n[2], 2); /* AWAIT_TIMEOUT's ms and child, once each */
    ASSERT_EQ(c.o[2], 2); /* its timeout object: at the start and at the one resume */
    ASSERT_EQ(c.n[3], 2); /* AWAIT_GATHER's children, once each */
    ASSERT_EQ(c.o[3], 2); /* its group: start and resume */
    ASSERT_EQ(c.n[4], 1); /* AWAIT_QUEUE_PUT's item: once, after the wait, as its doc comment says */
    ASSERT_EQ(c.n[5], 1); /* ASYNC_TIMEOUT's ms */
    ASSERT_EQ(c.o[6], 2); /* AWAIT_FUTURE's future: start and resume */
    ASSERT_EQ(c.o[7], 2); /* AWAIT_LOCK of a free lock: start, then its check at once */
    ASSERT_EQ(c.n[9], 1); /* ASYNC_SPAWN's child */
    ASSERT_EQ(async_task_value(&c.task), 3);
}
