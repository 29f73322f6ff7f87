/* The firmware side of the core, on the host: the async_interrupt records that interrupt handlers raise (delivered by
 * async_poll; under the virtual clock, on a simulated board whose wait is WFI, and raised for real from
 * a POSIX signal handler, the host's nearest thing to an interrupt), static frame pools, and the pointers
 * through which a loop reaches group, wait_for and interrupt code once they are used (what keeps them
 * out of a board image that does not use them). The images themselves run in QEMU on picolibc: make
 * test-firmware. */
#include "test.h"

#include <limits.h>
#include <signal.h>
#include <sys/time.h>

static char fw_log[1024];

static void fw_logf(const char *fmt, ...) {
    va_list ap;
    size_t len = strlen(fw_log);
    va_start(ap, fmt);
    vsnprintf(fw_log + len, sizeof fw_log - len, fmt, ap);
    va_end(ap);
}

/* A loop on the virtual clock and an empty log. */
static async_loop *fw_loop(void) {
    static async_loop loop;
    async_loop_init(&loop);
    fw_log[0] = '\0';
    return &loop;
}

/* Polls until nothing is scheduled, jumping the virtual clock to each timer. */
static void fw_drain(async_loop *loop) {
    int32_t d;
    while ((d = async_poll(loop)) >= 0) loop->now += (async_ms)d;
}

/* ---- a task that awaits an interrupt and logs what it got ---- */

ASYNC_DEF(fw_waiter, const char *name; async_interrupt *sig;) {
    ASYNC_TRY(t) {
        AWAIT_FUTURE(t, &f->sig->future);
        fw_logf("%s=%ld ", f->name, (long)async_future_value(&f->sig->future));
    } ASYNC_CATCH(t) {
        fw_logf("%s!%d ", f->name, async_caught(t)->code);
        ASYNC_RERAISE(t);
    } ASYNC_END_TRY(t);
} ASYNC_END_DEF

static const async_error fw_fault = {ASYNC_EUSER + 1, "sensor fault"};

/* ---- interrupts ---- */

TEST(firmware_interrupt_raise_wakes_every_waiter_on_the_next_poll) {
    async_loop *loop = fw_loop();
    static async_interrupt sig;
    static fw_waiter_frame a, b;
    ASSERT_EQ(async_interrupt_init(&sig, loop), 0);
    ASSERT(async_loop_has_interrupts(loop));
    ASSERT_EQ(async_spawn(loop, ASYNC_CALL(fw_waiter, &a, "a", &sig)), 0);
    ASSERT_EQ(async_spawn(loop, ASYNC_CALL(fw_waiter, &b, "b", &sig)), 0);
    ASSERT_EQ(async_poll(loop), -1); /* both wait; nothing else is scheduled */
    ASSERT(!async_loop_interrupted(loop));

    ASSERT_EQ(async_interrupt_raise(&sig, 42), 0); /* what an ISR does: nothing runs yet */
    ASSERT(async_loop_interrupted(loop));
    ASSERT_STR_EQ(fw_log, "");
    ASSERT(!async_future_done(&sig.future));

    ASSERT_EQ(async_poll(loop), -1); /* delivered, and both waiters ran in the same pass, in order */
    ASSERT_STR_EQ(fw_log, "a=42 b=42 ");
    ASSERT(!async_loop_interrupted(loop));
    ASSERT_EQ(async_task_code(&a.task), 0);
    ASSERT_EQ(async_task_code(&b.task), 0);
    ASSERT_EQ(async_future_value(&sig.future), 42);
    ASSERT_EQ(async_interrupt_close(&sig), 0);
    ASSERT(!async_loop_has_interrupts(loop));
}

TEST(firmware_interrupt_raises_before_a_poll_coalesce_to_the_latest) {
    async_loop *loop = fw_loop();
    static async_interrupt sig;
    static fw_waiter_frame a;
    ASSERT_EQ(async_interrupt_init(&sig, loop), 0);
    async_spawn(loop, ASYNC_CALL(fw_waiter, &a, "a", &sig));
    async_poll(loop);
    ASSERT_EQ(async_interrupt_raise(&sig, 1), 0);
    ASSERT_EQ(async_interrupt_raise(&sig, 2), 0);
    ASSERT_EQ(async_interrupt_raise(&sig, 3), 0);
    async_poll(loop);
    ASSERT_STR_EQ(fw_log, "a=3 ");
    async_poll(loop); /* nothing is delivered twice */
    ASSERT_STR_EQ(fw_log, "a=3 ");
    ASSERT_EQ(async_future_value(&sig.future), 3);
}

TEST(firmware_interrupt_raise_waits_for_reset_while_the_future_holds_an_outcome) {
    async_loop *loop = fw_loop();
    static async_interrupt sig;
    static fw_waiter_frame a, b;
    ASSERT_EQ(async_interrupt_init(&sig, loop), 0);
    ASSERT_EQ(async_interrupt_reset(&sig), 0); /* pending with no waiter: nothing to do */
    async_interrupt_raise(&sig, 1);
    async_poll(loop);
    ASSERT_EQ(async_future_value(&sig.future), 1);

    async_interrupt_raise(&sig, 2); /* the future still holds 1: this raise is kept, not lost */
    ASSERT_EQ(async_poll(loop), -1);
    ASSERT_EQ(async_future_value(&sig.future), 1);
    ASSERT(!async_loop_interrupted(loop));

    ASSERT_EQ(async_interrupt_reset(&sig), 0);
    ASSERT(!async_future_done(&sig.future));
    ASSERT(async_loop_interrupted(loop)); /* the kept raise is due */
    async_spawn(loop, ASYNC_CALL(fw_waiter, &a, "a", &sig));
    async_poll(loop); /* delivered before a's first step: a finds it at once */
    ASSERT_STR_EQ(fw_log, "a=2 ");

    ASSERT_EQ(async_interrupt_reset(&sig), 0);
    async_spawn(loop, ASYNC_CALL(fw_waiter, &b, "b", &sig));
    async_poll(loop);
    ASSERT_EQ(async_interrupt_reset(&sig), ASYNC_EBUSY); /* b awaits it: pending, nothing to re-arm */
    async_interrupt_raise(&sig, 3);
    async_poll(loop);
    ASSERT_STR_EQ(fw_log, "a=2 b=3 ");
}

TEST(firmware_interrupt_error_is_raised_at_the_await) {
    async_loop *loop = fw_loop();
    static async_interrupt sig;
    static fw_waiter_frame a;
    ASSERT_EQ(async_interrupt_init(&sig, loop), 0);
    async_spawn(loop, ASYNC_CALL(fw_waiter, &a, "a", &sig));
    async_poll(loop);
    ASSERT_EQ(async_interrupt_raise_error(&sig, NULL), ASYNC_EINVAL);
    ASSERT(!async_loop_interrupted(loop));
    ASSERT_EQ(async_interrupt_raise_error(&sig, &fw_fault), 0);
    async_poll(loop);
    ASSERT_STR_EQ(fw_log, "a!1001 ");
    ASSERT_EQ(async_task_code(&a.task), ASYNC_EUSER + 1);
    ASSERT(async_future_error(&sig.future) == &fw_fault);
    ASSERT_STR_EQ(async_error_message(async_future_error(&sig.future)), "sensor fault");

    ASSERT_EQ(async_interrupt_reset(&sig), 0); /* a value after an error: the future is clean again */
    async_interrupt_raise(&sig, 9);
    async_poll(loop);
    ASSERT(async_future_error(&sig.future) == NULL);
    ASSERT_EQ(async_future_value(&sig.future), 9);
}

TEST(firmware_interrupt_cancelled_waiter_is_released_and_the_record_stays_usable) {
    async_loop *loop = fw_loop();
    static async_interrupt sig;
    static fw_waiter_frame a;
    ASSERT_EQ(async_interrupt_init(&sig, loop), 0);
    async_spawn(loop, ASYNC_CALL(fw_waiter, &a, "a", &sig));
    async_poll(loop);
    ASSERT(async_cancel(&a.task));
    async_poll(loop);
    ASSERT_STR_EQ(fw_log, "a!-125 ");
    ASSERT(async_task_cancelled(&a.task));
    async_task_code(&a.task);
    ASSERT_EQ(async_interrupt_raise(&sig, 5), 0); /* no waiter left: the future keeps the value */
    async_poll(loop);
    ASSERT_EQ(async_future_value(&sig.future), 5);
    ASSERT_EQ(async_interrupt_close(&sig), 0);
}

ASYNC_DEF(fw_wait_for, async_interrupt *sig; async_loop *loop; fw_waiter_frame waiter; async_timeout timeout;
          async_ms at;) {
    ASYNC_TRY(t) {
        AWAIT_TIMEOUT(t, &f->timeout, 50, ASYNC_CALL(fw_waiter, &f->waiter, "w", f->sig));
    } ASYNC_CATCH(t) {
        fw_logf("main!%d ", async_caught(t)->code);
        f->at = async_loop_now(f->loop);
    } ASYNC_END_TRY(t);
} ASYNC_END_DEF

TEST(firmware_interrupt_wait_for_times_out_under_the_virtual_clock) {
    async_loop *loop = fw_loop();
    static async_interrupt sig;
    static fw_wait_for_frame m;
    ASSERT_EQ(async_interrupt_init(&sig, loop), 0);
    async_spawn(loop, ASYNC_CALL(fw_wait_for, &m, &sig, loop));
    fw_drain(loop);
    ASSERT_STR_EQ(fw_log, "w!-125 main!-110 ");
    ASSERT_EQ(m.at, 50);
    ASSERT_EQ(async_task_code(&m.task), 0);
    async_interrupt_raise(&sig, 1); /* too late: the future takes it, no one waits */
    async_poll(loop);
    ASSERT_EQ(async_future_value(&sig.future), 1);
}

TEST(firmware_interrupt_misuse_returns_codes) {
    async_loop *loop = fw_loop();
    static async_loop other;
    static async_interrupt sig, zero;
    static fw_waiter_frame a;
    async_loop_init(&other);
    ASSERT_EQ(async_interrupt_init(NULL, loop), ASYNC_EINVAL);
    ASSERT_EQ(async_interrupt_init(&sig, NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_interrupt_raise(NULL, 1), ASYNC_EINVAL);
    ASSERT_EQ(async_interrupt_raise_error(NULL, &fw_fault), ASYNC_EINVAL);
    ASSERT_EQ(async_interrupt_reset(NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_interrupt_close(NULL), ASYNC_EINVAL);
    /* never initialised */
    ASSERT_EQ(async_interrupt_raise(&zero, 1), ASYNC_ESHUTDOWN);
    ASSERT_EQ(async_interrupt_raise_error(&zero, &fw_fault), ASYNC_ESHUTDOWN);
    ASSERT_EQ(async_interrupt_reset(&zero), ASYNC_ESHUTDOWN);
    ASSERT_EQ(async_interrupt_close(&zero), ASYNC_ESHUTDOWN);
    ASSERT(!async_loop_interrupted(NULL));
    ASSERT(!async_loop_has_interrupts(NULL));
    async_loop_set_wait(NULL, NULL);

    ASSERT_EQ(async_interrupt_init(&sig, loop), 0);
    ASSERT_EQ(async_interrupt_init(&sig, loop), ASYNC_EBUSY);
    ASSERT_EQ(async_interrupt_init(&sig, &other), ASYNC_EBUSY);
    ASSERT(!async_loop_has_interrupts(&other));

    async_spawn(loop, ASYNC_CALL(fw_waiter, &a, "a", &sig));
    async_poll(loop);
    ASSERT_EQ(async_interrupt_close(&sig), ASYNC_EBUSY); /* a task awaits it: it stays registered */
    ASSERT_EQ(async_interrupt_raise(&sig, 4), 0);
    async_poll(loop);
    ASSERT_STR_EQ(fw_log, "a=4 ");

    ASSERT_EQ(async_interrupt_close(&sig), 0);
    ASSERT(!async_loop_has_interrupts(loop));
    ASSERT_EQ(async_interrupt_raise(&sig, 5), ASYNC_ESHUTDOWN);
    ASSERT_EQ(async_interrupt_reset(&sig), ASYNC_ESHUTDOWN);
    ASSERT_EQ(async_interrupt_close(&sig), ASYNC_ESHUTDOWN);
    ASSERT(!async_loop_interrupted(loop));

    ASSERT_EQ(async_interrupt_init(&sig, &other), 0); /* closed: it may join a loop again, pending */
    ASSERT(!async_future_done(&sig.future));
    ASSERT_EQ(async_interrupt_raise(&sig, 6), 0);
    ASSERT(async_loop_interrupted(&other));
    ASSERT(!async_loop_interrupted(loop));
    async_poll(&other);
    ASSERT_EQ(async_future_value(&sig.future), 6);
}

TEST(firmware_interrupt_close_unlinks_it_and_drops_its_undelivered_raise) {
    async_loop *loop = fw_loop();
    static async_interrupt s[3];
    int i;
    for (i = 0; i < 3; i++) ASSERT_EQ(async_interrupt_init(&s[i], loop), 0);
    ASSERT_EQ(async_interrupt_close(&s[1]), 0); /* the middle of the loop's list */
    async_interrupt_raise(&s[0], 10);
    async_interrupt_raise(&s[2], 12);
    ASSERT_EQ(async_interrupt_raise(&s[1], 11), ASYNC_ESHUTDOWN);
    async_poll(loop);
    ASSERT_EQ(async_future_value(&s[0].future), 10);
    ASSERT_EQ(async_future_value(&s[2].future), 12);
    ASSERT(!async_future_done(&s[1].future));

    async_interrupt_reset(&s[2]);
    async_interrupt_raise(&s[2], 13);
    ASSERT_EQ(async_interrupt_close(&s[2]), 0); /* raised, not yet delivered: dropped with it */
    async_poll(loop);
    ASSERT(!async_future_done(&s[2].future));
    ASSERT(async_loop_has_interrupts(loop));
    ASSERT_EQ(async_interrupt_close(&s[0]), 0);
    ASSERT(!async_loop_has_interrupts(loop));
}

/* raises its own interrupt in the middle of a pass, as an interrupt during the pass would, then awaits it */
ASYNC_DEF(fw_self, async_interrupt *sig;) {
    async_interrupt_raise(f->sig, 77);
    AWAIT_FUTURE(t, &f->sig->future);
    ASYNC_RETURN(t, async_future_value(&f->sig->future));
} ASYNC_END_DEF

TEST(firmware_interrupt_raised_during_a_pass_is_delivered_on_the_next) {
    async_loop *loop = fw_loop();
    static async_interrupt sig;
    static fw_self_frame f;
    ASSERT_EQ(async_interrupt_init(&sig, loop), 0);
    async_spawn(loop, ASYNC_CALL(fw_self, &f, &sig));
    ASSERT_EQ(async_poll(loop), 0); /* nothing ready or timed, but a raise is due: come back at once */
    ASSERT(async_loop_interrupted(loop));
    ASSERT(!async_task_done(&f.task));
    ASSERT_EQ(async_poll(loop), -1);
    ASSERT_EQ(async_task_value(&f.task), 77);

    /* async_run on the virtual clock takes the 0 as "go on", not as a deadlock */
    ASSERT_EQ(async_interrupt_reset(&sig), 0);
    ASSERT_EQ(async_run(loop, ASYNC_CALL(fw_self, &f, &sig)), 0);
    ASSERT_EQ(async_task_value(&f.task), 77);
}

/* ---- a simulated board: a millisecond counter, and a wait that "sleeps" by moving it on ---- */

static async_ms fw_board_ms;
static async_interrupt fw_irq;
static int fw_sleeps;

static async_ms fw_board_clock(async_loop *loop) {
    (void)loop;
    return fw_board_ms;
}

/* WFI: until the deadline, or, with no timer set, until the next interrupt (7 ms later, raising fw_irq
 * with the time) if an interrupt is registered at all. */
static bool fw_board_wait(async_loop *loop, int32_t ms) {
    if (ms == 0) return true;
    fw_sleeps++;
    if (ms < 0) {
        if (!async_loop_has_interrupts(loop)) return false;
        fw_board_ms += 7;
        async_interrupt_raise(&fw_irq, (intptr_t)fw_board_ms);
        return true;
    }
    fw_board_ms += (async_ms)ms;
    return true;
}

ASYNC_DEF(fw_board_main) {
    AWAIT_SLEEP(t, 100);
    AWAIT_FUTURE(t, &fw_irq.future);
    ASYNC_RETURN(t, async_future_value(&fw_irq.future));
} ASYNC_END_DEF

ASYNC_DEF(fw_board_stuck, async_future never;) {
    AWAIT_FUTURE(t, &f->never);
} ASYNC_END_DEF

TEST(firmware_async_run_sleeps_in_the_boards_wait_until_an_interrupt) {
    async_loop *loop = fw_loop();
    static fw_board_main_frame m;
    static fw_board_stuck_frame s;
    fw_board_ms = 1000;
    fw_sleeps = 0;
    async_loop_set_clock(loop, fw_board_clock);
    async_loop_set_wait(loop, fw_board_wait);
    ASSERT_EQ(async_interrupt_init(&fw_irq, loop), 0);
    ASSERT_EQ(async_run(loop, ASYNC_CALL(fw_board_main, &m)), 0);
    ASSERT_EQ(async_task_value(&m.task), 1107); /* slept 100 ms, then until the interrupt 7 ms later */
    ASSERT_EQ(async_loop_now(loop), 1107);
    ASSERT_EQ(fw_sleeps, 2);

    /* with no interrupt registered, a wait with no timer cannot end: the board's wait says so, and
     * async_run ends main with ASYNC_EDEADLK instead of sleeping for ever */
    ASSERT_EQ(async_interrupt_close(&fw_irq), 0);
    ASSERT_EQ(async_run(loop, ASYNC_CALL(fw_board_stuck, &s)), ASYNC_EDEADLK);
    ASSERT(async_task_cancelled(&s.task));
}

/* ---- raised for real from a POSIX signal handler, which interrupts the loop as an ISR would ---- */

#define FW_RAISES 300
static async_interrupt fw_alarm;
static volatile sig_atomic_t fw_alarms;

static void fw_on_alarm(int signo) {
    (void)signo;
    if (fw_alarms < FW_RAISES) {
        fw_alarms = fw_alarms + 1;
        async_interrupt_raise(&fw_alarm, (intptr_t)fw_alarms);
    }
}

ASYNC_DEF(fw_consumer, intptr_t last; int deliveries, out_of_order;) {
    while (f->last < FW_RAISES) {
        AWAIT_FUTURE(t, &fw_alarm.future);
        if (async_future_value(&fw_alarm.future) <= f->last) f->out_of_order++;
        f->last = async_future_value(&fw_alarm.future);
        f->deliveries++;
        async_interrupt_reset(&fw_alarm);
    }
} ASYNC_END_DEF

TEST(firmware_interrupt_raised_from_a_posix_signal_handler_is_never_lost_or_stale) {
    async_loop *loop = fw_loop();
    static fw_consumer_frame c;
    struct sigaction sa, old_sa;
    struct itimerval every = {{0, 200}, {0, 200}}, off = {{0, 0}, {0, 0}};
    sigset_t alrm, old_mask;
    ASSERT_EQ(async_interrupt_init(&fw_alarm, loop), 0);
    async_spawn(loop, ASYNC_CALL(fw_consumer, &c));
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fw_on_alarm;
    sigemptyset(&sa.sa_mask);
    ASSERT_EQ(sigaction(SIGALRM, &sa, &old_sa), 0);
    sigemptyset(&alrm);
    sigaddset(&alrm, SIGALRM);
    ASSERT_EQ(setitimer(ITIMER_REAL, &every, NULL), 0);
    while (!async_task_done(&c.task)) {
        async_poll(loop);
        if (async_task_done(&c.task)) break;
        /* the board's sleep: masked, test, then wait with the signal unmasked (WFI's sigsuspend) */
        sigprocmask(SIG_BLOCK, &alrm, &old_mask);
        if (!async_loop_interrupted(loop)) sigsuspend(&old_mask);
        sigprocmask(SIG_SETMASK, &old_mask, NULL);
    }
    setitimer(ITIMER_REAL, &off, NULL);
    sigaction(SIGALRM, &old_sa, NULL);
    ASSERT_EQ(c.last, FW_RAISES);         /* the last raise arrived */
    ASSERT_EQ(c.out_of_order, 0);         /* never an old value, never one twice */
    ASSERT(c.deliveries >= 1 && c.deliveries <= FW_RAISES);
    ASSERT_EQ(async_task_code(&c.task), 0);
    ASSERT_EQ(async_interrupt_close(&fw_alarm), 0);
}

/* ---- static frame pools ---- */

/* odd: a frame size that is not a multiple of 8 */
ASYNC_DEF(fw_job, int n; char odd[13];) {
    AWAIT_SLEEP(t, 10);
    if (f->n < 0) ASYNC_THROW(t, ASYNC_EUSER + 5, "job failed");
    ASYNC_RETURN(t, f->n);
} ASYNC_END_DEF

ASYNC_FRAME_POOL(fw_jobs, fw_job_frame, 40); /* more than one bitmap word */

TEST(firmware_frame_pool_hands_out_zeroed_frames_until_it_is_empty) {
    static fw_job_frame *got[40];
    fw_job_frame *again;
    int i, j;
    ASSERT_EQ(async_frame_pool_available(&fw_jobs), 40);
    for (i = 0; i < 40; i++) {
        got[i] = async_frame_pool_get(&fw_jobs);
        ASSERT(got[i] != NULL);
        ASSERT_EQ(got[i]->n, 0);
        ASSERT(got[i]->task.fn == NULL);
        for (j = 0; j < i; j++) ASSERT(got[i] != got[j]);
        memset(got[i], 0xA5, sizeof *got[i]); /* dirty it: the next hand-out must be clean */
    }
    ASSERT(async_frame_pool_get(&fw_jobs) == NULL);
    ASSERT_EQ(async_frame_pool_available(&fw_jobs), 0);

    memset(got[35], 0, sizeof *got[35]); /* a frame goes back with a header that never ran */
    ASSERT_EQ(async_frame_pool_put(&fw_jobs, got[35]), 0);
    ASSERT_EQ(async_frame_pool_available(&fw_jobs), 1);
    again = async_frame_pool_get(&fw_jobs);
    ASSERT(again == got[35]); /* found past a full bitmap word */
    ASSERT_EQ(again->n, 0);
    for (i = 0; i < 40; i++) {
        memset(got[i], 0, sizeof *got[i]);
        ASSERT_EQ(async_frame_pool_put(&fw_jobs, got[i]), 0);
    }
    ASSERT_EQ(async_frame_pool_available(&fw_jobs), 40);
}

TEST(firmware_frame_pool_put_refuses_what_it_cannot_take_back) {
    static fw_job_frame outside;
    fw_job_frame *f = async_frame_pool_get(&fw_jobs);
    ASSERT(f != NULL);
    ASSERT(async_frame_pool_get(NULL) == NULL);
    ASSERT_EQ(async_frame_pool_available(NULL), 0);
    ASSERT_EQ(async_frame_pool_put(NULL, f), ASYNC_EINVAL);
    ASSERT_EQ(async_frame_pool_put(&fw_jobs, NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_frame_pool_put(&fw_jobs, &outside), ASYNC_EINVAL);
    ASSERT_EQ(async_frame_pool_put(&fw_jobs, (char *)f + 1), ASYNC_EINVAL); /* inside a frame */
    ASSERT_EQ(async_frame_pool_put(&fw_jobs, (char *)fw_jobs_frames_ + 40 * sizeof(fw_job_frame)),
              ASYNC_EINVAL); /* one past the end */
    ASSERT_EQ(async_frame_pool_put(&fw_jobs, f + 1), ASYNC_EINVAL); /* not handed out */
    ASSERT_EQ(async_frame_pool_put(&fw_jobs, f), 0);
    ASSERT_EQ(async_frame_pool_put(&fw_jobs, f), ASYNC_EINVAL); /* twice */
    ASSERT_EQ(async_frame_pool_available(&fw_jobs), 40);
}

TEST(firmware_frame_pool_keeps_frames_of_running_tasks_and_of_unread_errors) {
    async_loop *loop = fw_loop();
    fw_job_frame *ok = async_frame_pool_get(&fw_jobs), *bad = async_frame_pool_get(&fw_jobs);
    ASSERT(ok && bad);
    ASSERT(ASYNC_FRAME_INIT(ok, fw_job_run));
    ASSERT(ASYNC_FRAME_INIT(bad, fw_job_run));
    ok->n = 3;
    bad->n = -1;
    ASSERT_EQ(async_spawn(loop, &ok->task), 0);
    ASSERT_EQ(async_spawn(loop, &bad->task), 0);
    async_poll(loop);
    ASSERT_EQ(async_frame_pool_put(&fw_jobs, ok), ASYNC_EBUSY); /* sleeping */
    ASSERT_EQ(async_frame_pool_put(&fw_jobs, bad), ASYNC_EBUSY);
    fw_drain(loop);
    ASSERT_EQ(async_task_value(&ok->task), 3);
    ASSERT_EQ(async_frame_pool_put(&fw_jobs, ok), 0);
    ASSERT_EQ(async_frame_pool_put(&fw_jobs, bad), ASYNC_EBUSY); /* its error was never read */
    ASSERT_EQ(async_task_code(&bad->task), ASYNC_EUSER + 5);
    ASSERT_EQ(async_frame_pool_put(&fw_jobs, bad), 0);
    ASSERT_EQ(async_loop_report_errors(loop), 0); /* nothing was lost on the way */
    ASSERT_EQ(async_frame_pool_available(&fw_jobs), 40);
}

/* a dispatcher that starts a job per request from a pool of its own (defined in the function), and
 * reports ASYNC_ENOMEM when the pool is out */
ASYNC_DEF(fw_dispatch, async_group jobs; int i, started, refused;) {
    ASYNC_FRAME_POOL(pool, fw_job_frame, 3);
    for (f->i = 0; f->i < 5; f->i++) {
        fw_job_frame *job = async_frame_pool_get(&pool);
        if (!job) {
            fw_logf("%d:%s ", f->i, async_strerror(ASYNC_ENOMEM));
            f->refused++;
            continue;
        }
        ASYNC_SPAWN(t, &f->jobs, ASYNC_CALL(fw_job, job, f->i));
        f->started++;
    }
    AWAIT_GROUP(t, &f->jobs);
    fw_logf("free %u", (unsigned)async_frame_pool_available(&pool));
} ASYNC_END_DEF

TEST(firmware_frame_pool_in_a_function_runs_out_with_a_clear_code) {
    async_loop *loop = fw_loop();
    static fw_dispatch_frame d;
    async_spawn(loop, ASYNC_CALL(fw_dispatch, &d));
    fw_drain(loop);
    ASSERT_EQ(async_task_code(&d.task), 0);
    ASSERT_EQ(d.started, 3);
    ASSERT_EQ(d.refused, 2);
    ASSERT_STR_EQ(fw_log, "3:out of memory 4:out of memory free 0");
}

/* ---- what a program links: the loop reaches group, wait_for and interrupt code through pointers that
 * their first use sets, so that a board image without them does not carry them ---- */

ASYNC_DEF(fw_groups, fw_job_frame a, b, slow; async_group g; async_timeout tmo;
          const struct async__group_ops *after_gather, *after_wait_for;) {
    AWAIT_GATHER(t, &f->g, ASYNC_CALL(fw_job, &f->a, 1), ASYNC_CALL(fw_job, &f->b, 2));
    fw_logf("gather %ld+%ld ", (long)async_task_value(&f->a.task), (long)async_task_value(&f->b.task));
    f->after_gather = async_task_loop(t)->groups;
    ASYNC_TRY(t) { /* the job sleeps 10 ms: the 5 ms deadline ends it */
        AWAIT_TIMEOUT(t, &f->tmo, 5, ASYNC_CALL(fw_job, &f->slow, 3));
        fw_logf("in time? ");
    } ASYNC_EXCEPT(t, ASYNC_ETIMEDOUT) {
        fw_logf("wait_for %d, job %d ", async_caught(t)->code, async_task_code(&f->slow.task));
    } ASYNC_END_TRY(t);
    f->after_wait_for = async_task_loop(t)->groups;
    ASYNC_TRY(t) { /* a gather after a wait_for: its first error is raised as before */
        AWAIT_GATHER(t, &f->g, ASYNC_CALL(fw_job, &f->a, 4), ASYNC_CALL(fw_job, &f->b, -1));
        fw_logf("no error? ");
    } ASYNC_CATCH(t) {
        fw_logf("gather %d ", async_caught(t)->code);
    } ASYNC_END_TRY(t);
    ASYNC_TRY(t) { /* the first job still runs; the group keeps the error it raised */
        AWAIT_GROUP(t, &f->g);
    } ASYNC_EXCEPT(t, ASYNC_EUSER + 5) {
        fw_logf("job %ld", (long)async_task_value(&f->a.task));
    } ASYNC_END_TRY(t);
} ASYNC_END_DEF

TEST(firmware_loop_links_groups_then_wait_for_on_first_use_and_keeps_both) {
    async_loop *loop = fw_loop();
    static fw_groups_frame m;
    ASSERT(loop->groups == NULL); /* no group begun yet */
    ASSERT_EQ(async_spawn(loop, ASYNC_CALL(fw_groups, &m)), 0);
    fw_drain(loop);
    ASSERT_EQ(async_task_code(&m.task), 0);
    ASSERT_STR_EQ(fw_log, "gather 1+2 wait_for -110, job -125 gather 1005 job 4");
    ASSERT(m.after_gather != NULL);
    ASSERT(m.after_wait_for != NULL && m.after_wait_for != m.after_gather); /* a wait_for's code added */
    ASSERT(loop->groups == m.after_wait_for);                              /* and kept by the gather after */
}

TEST(firmware_loop_links_interrupt_delivery_once_one_is_registered) {
    async_loop *loop = fw_loop();
    static async_interrupt sig;
    ASSERT(loop->deliver == NULL);
    ASSERT_EQ(async_poll(loop), -1);
    ASSERT_EQ(async_interrupt_init(&sig, loop), 0);
    ASSERT(loop->deliver != NULL);
    ASSERT_EQ(async_interrupt_raise(&sig, 5), 0);
    ASSERT_EQ(async_poll(loop), -1); /* delivered by the scan: the future holds the raise */
    ASSERT_EQ(async_future_value(&sig.future), 5);
    ASSERT_EQ(async_interrupt_close(&sig), 0);
}
