/* Async generators under the virtual clock: a producer yields values to a consumer's loop (AWAIT_FOR,
 * AWAIT_NEXT); errors pass both ways (a producer's failure, a consumer's throw); stopping early runs the
 * producer's cleanup at the close or when the consumer ends; and generators closed, thrown into or
 * shared at odd moments, and values yielded where no consumer waits. */
#include "test.h"
#include "util.h"

/* ---- a producer of 0..n-1, 10 ms apart, that answers a thrown-in error with a value ---- */

static const async_error range_error = {ASYNC_EUSER + 9, "producer failed"};

ASYNC_DEF(range, int n; int fail_at; int i;) {
    ASYNC_TRY(t) {
        for (f->i = 0; f->i < f->n; f->i++) {
            AWAIT_SLEEP(t, 10);
            if (f->i == f->fail_at) ASYNC_THROW_ERROR(t, &range_error);
            ASYNC_TRY(t) {
                AWAIT_YIELD_VALUE(t, f->i);
            }
            ASYNC_CATCH(t) {
                if (async_caught(t)->code != ASYNC_EUSER + 3) ASYNC_RERAISE(t);
                LOG("thrown-in ");
                AWAIT_YIELD_VALUE(t, 100 + f->i); /* answers the consumer's error with a value */
            }
            ASYNC_END_TRY(t);
        }
    }
    ASYNC_FINALLY(t) {
        LOG("cleanup@%u ", NOW());
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

static const async_error thrown_in = {ASYNC_EUSER + 3, "consumer's error"};

ASYNC_DEF(consumer, int stop_at; int throw_at; int fail_at; int close; range_frame range; async_gen gen;
          intptr_t value;) {
    AWAIT_FOR(t, &f->gen, ASYNC_CALL(range, &f->range, 4, f->fail_at), &f->value) {
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
} ASYNC_END_DEF

/* A consumer that stops, throws and fails at no value (-1) until the test sets one. */
static consumer_frame *consumer(consumer_frame *f) {
    ASYNC_CALL(consumer, f, -1, -1, -1);
    return f;
}

TEST(generators_async_for_iterates_a_producer_to_its_end) {
    async_loop *loop = new_loop();
    static consumer_frame f;
    ASSERT_EQ(async_run(loop, &consumer(&f)->task), 0);
    ASSERT_STR_EQ(trace, "v0@10 v1@20 v2@30 v3@40 cleanup@40 loop-end end@1040 ");
    ASSERT(async_gen_done(&f.gen));
}

TEST(generators_async_for_break_then_close_runs_the_producers_cleanup_at_once) {
    async_loop *loop = new_loop();
    static consumer_frame f;
    consumer(&f)->stop_at = 1;
    f.close = 1;
    ASSERT_EQ(async_run(loop, &f.task), 0);
    ASSERT_STR_EQ(trace, "v0@10 v1@20 loop-end cleanup@20 end@1020 ");
}

TEST(generators_async_for_break_without_close_cleans_up_when_the_consumer_ends) {
    async_loop *loop = new_loop();
    static consumer_frame f;
    consumer(&f)->stop_at = 0;
    ASSERT_EQ(async_run(loop, &f.task), 0);
    ASSERT_STR_EQ(trace, "v0@10 loop-end end@1010 cleanup@1010 ");
    ASSERT(async_task_done(&f.range.task));
}

TEST(generators_errors_propagate_both_ways) {
    async_loop *loop = new_loop();
    static consumer_frame f;
    consumer(&f)->throw_at = 1;
    ASSERT_EQ(async_run(loop, &f.task), 0);
    ASSERT_STR_EQ(trace, "v0@10 v1@20 thrown-in v101 v2@30 v3@40 cleanup@40 loop-end end@1040 ");

    loop = new_loop();
    consumer(&f)->fail_at = 2; /* the producer fails: the consumer's loop raises it */
    ASSERT_EQ(async_run(loop, &f.task), range_error.code);
    ASSERT_STR_EQ(trace, "v0@10 v1@20 cleanup@30 ");
}

TEST(generators_cancelling_the_consumer_cancels_the_producer) {
    async_loop *loop = new_loop();
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

ASYNC_DEF(stray_yield) {
    AWAIT_YIELD_VALUE(t, 1);
} ASYNC_END_DEF

TEST(generators_yield_value_outside_a_generator_is_einval) {
    async_loop *loop = new_loop();
    static stray_yield_frame y;
    ASSERT_EQ(async_run(loop, ASYNC_CALL(stray_yield, &y)), ASYNC_EINVAL);
}

/* A gather child that tries to yield: it is not a generator's producer. */
TEST(generators_yield_value_in_a_gather_child_is_einval) {
    async_loop *loop = new_loop();
    static script_frame o, c0, c1;
    script_step *st = script_one(&o, OP_GATHER, NULL);
    static async_group g;
    st->a = &g;
    st->c0 = script_init(&c0);
    st->c1 = script_init(&c1);
    script_add(&c0, OP_YIELD_VALUE, NULL)->item = 1;
    script_add(&c1, OP_SLEEP, NULL)->ms = 1;
    ASSERT_EQ(async_run(loop, &o.task), 0);
    ASSERT(o.reached[0]);
    ASSERT_EQ(c0.code[0], ASYNC_EINVAL);
    ASSERT(c1.reached[0]);
}

/* ---- generators closed, thrown into or shared at odd moments (util.h's producer) ---- */

TEST(generators_thrown_into_or_closed_before_it_starts_never_runs_the_producer) {
    async_loop *loop = new_loop();
    static script_frame o;
    static async_gen g1, g2, g3;
    static producer_frame p1, p2, p3;
    script_step *st;
    script_init(&o);
    st = script_add(&o, OP_NEXT, &g1); /* no producer to start */
    st->out = &o.got;
    st = script_add(&o, OP_GEN_THROW, &g2);
    st->err = &err_a;
    st->out = &o.got;
    st = script_add(&o, OP_NEXT, &g2); /* finished by the throw: returns at once, done */
    st->c0 = producer(&p2, 3, 0);
    st->out = &o.got;
    script_add(&o, OP_GEN_CLOSE, &g3);
    st = script_add(&o, OP_NEXT, &g3);
    st->c0 = producer(&p3, 3, 0);
    st->out = &o.got;
    st = script_add(&o, OP_NEXT, &g1); /* g1 was left untouched: it still works */
    st->c0 = producer(&p1, 2, 0);
    st->out = &o.got;
    o.got = -7;
    ASSERT_EQ(async_run(loop, &o.task), 0);
    ASSERT_EQ(o.code[0], ASYNC_EINVAL);
    ASSERT_EQ(o.code[1], ASYNC_EUSER + 1); /* athrow before anext raises the error right back */
    ASSERT(o.reached[2]);
    ASSERT(async_gen_started(&g2) && async_gen_done(&g2));
    ASSERT_STR_EQ(async_task_state(&p2.task), "new");
    ASSERT(o.reached[3] && o.reached[4]);
    ASSERT(async_gen_started(&g3) && async_gen_done(&g3));
    ASSERT_STR_EQ(async_task_state(&p3.task), "new");
    ASSERT(o.reached[5]);
    ASSERT_EQ(o.got, 1); /* only g1's first value ever arrived */
}

TEST(generators_second_consumer_is_ebusy_and_values_may_be_dropped) {
    async_loop *loop = new_loop();
    static script_frame a, b;
    static async_gen g;
    static producer_frame p;
    script_step *st;
    script_init(&a);
    st = script_add(&a, OP_NEXT, &g);
    st->c0 = producer(&p, 3, 10);
    st->out = &a.got;
    script_add(&a, OP_NEXT, &g); /* value 2, not wanted: out NULL */
    script_add(&a, OP_NEXT, &g)->out = &a.got;
    script_add(&a, OP_GEN_CLOSE, &g);
    script_one(&b, OP_SLEEP, NULL)->ms = 5;
    script_add(&b, OP_NEXT, &g)->out = &b.got; /* a already waits for the next value */
    b.got = -1;
    ASSERT_EQ(async_spawn(loop, &a.task), 0);
    ASSERT_EQ(async_spawn(loop, &b.task), 0);
    drain(loop);
    ASSERT_EQ(b.code[1], ASYNC_EBUSY);
    ASSERT_EQ(b.got, -1);
    ASSERT(a.reached[0] && a.reached[1] && a.reached[2] && a.reached[3]);
    ASSERT_EQ(a.got, 3);
    ASSERT_EQ(p.cleaned, 1);
    ASSERT_EQ(async_task_code(&p.task), ASYNC_ECANCELED);
}

TEST(generators_close_raises_the_cleanups_error_and_stops_a_producer_that_yields_again) {
    async_loop *loop = new_loop();
    static script_frame a, b;
    static async_gen g, h;
    static producer_frame p, q;
    script_step *st;
    script_init(&a);
    st = script_add(&a, OP_NEXT, &g);
    st->c0 = producer(&p, 3, 0);
    st->out = &a.got;
    script_add(&a, OP_GEN_CLOSE, &g);
    p.cleanup_error = &err_c;
    ASSERT_EQ(async_run(loop, &a.task), 0);
    ASSERT_EQ(a.got, 1);
    ASSERT_EQ(a.code[1], ASYNC_EUSER + 3);
    ASSERT(async_gen_done(&g));
    ASSERT_EQ(p.cleaned, 1);
    /* a producer whose cleanup yields once more: the close cancels it again instead of waiting for a
     * consumer that will never ask (asyncio: "async generator ignored GeneratorExit") */
    script_init(&b);
    st = script_add(&b, OP_NEXT, &h);
    st->c0 = producer(&q, 3, 0);
    st->out = &b.got;
    script_add(&b, OP_GEN_CLOSE, &h);
    q.yield_in_cleanup = 1;
    q.cleanup_ms = 5;
    ASSERT_EQ(async_run(loop, &b.task), 0);
    ASSERT_EQ(b.got, 1);
    ASSERT(b.reached[1]);
    ASSERT_EQ(b.code[1], 0);
    ASSERT_EQ(q.cleanup_code, ASYNC_ECANCELED);
    ASSERT_EQ(async_task_code(&q.task), ASYNC_ECANCELED);
    ASSERT(async_gen_done(&h));
    ASSERT_EQ(async_loop_timers(loop), 0);
}

TEST(generators_consumer_cancelled_with_a_value_waiting_or_during_close) {
    async_loop *loop = new_loop();
    static script_frame c, d;
    static async_gen g, h;
    static producer_frame p, q;
    script_step *st = script_one(&c, OP_NEXT, &g);
    st->c0 = producer(&p, 3, 10);
    st->out = &c.got;
    c.got = -1;
    ASSERT_EQ(async_spawn(loop, &c.task), 0);
    async_poll(loop); /* c starts the producer */
    async_poll(loop); /* the producer sleeps 10 */
    loop->now = 10;
    async_poll(loop); /* it yields 1: c is woken with the value */
    ASSERT_STR_EQ(async_task_state(&c.task), "ready");
    ASSERT(async_cancel(&c.task)); /* before c runs */
    drain(loop);
    ASSERT_EQ(c.code[0], ASYNC_ECANCELED);
    ASSERT_EQ(c.got, -1); /* the value was not delivered */
    ASSERT_EQ(p.cleaned, 1); /* the producer was closed when c ended */
    ASSERT_EQ(async_task_code(&p.task), ASYNC_ECANCELED);
    /* cancelled while AWAIT_GEN_CLOSE waits for a slow cleanup: the cleanup is cut short */
    st = script_one(&d, OP_NEXT, &h);
    st->c0 = producer(&q, 3, 0);
    st->out = &d.got;
    script_add(&d, OP_GEN_CLOSE, &h);
    q.cleanup_ms = 20;
    ASSERT_EQ(async_spawn(loop, &d.task), 0);
    run_until(loop, 15);
    ASSERT_EQ(d.got, 1);
    ASSERT_STR_EQ(async_task_state(&d.task), "awaiting children");
    ASSERT(async_cancel(&d.task));
    drain(loop);
    ASSERT_EQ(d.code[1], ASYNC_ECANCELED);
    ASSERT_EQ(d.at[1], 15);
    ASSERT_EQ(q.cleaned, 1);
    ASSERT_EQ(async_task_code(&q.task), ASYNC_ECANCELED);
    ASSERT(async_gen_done(&h));
}
