/* POSIX signals on hosted loops: loop.add_signal_handler and remove_signal_handler, AWAIT_SIGNAL, and
 * Ctrl-C in async_main (asyncio.run's: main cancelled, its finally blocks run, a second Ctrl-C ends the
 * process). Every signal is raised by the test's own process (raise, or an interval timer of its own),
 * and every test changes dispositions in the process the runner gives it alone. A signal whose default
 * action would end the test is raised only once the test has seen that something catches it
 * (raise_caught), so that a fault injected into the runtime fails an assertion instead. */
#include "test.h"
#include "util.h"

#include <pthread.h>
#include <signal.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

typedef void (*sig_fn)(int);

/* The application's own handler, for the dispositions a loop must put back: counts deliveries. */
static volatile sig_atomic_t app_caught[65];

static void app_handler(int signo) {
    if (signo > 0 && signo < 65) app_caught[signo]++;
}

static void app_catch(int signo) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = app_handler;
    sigemptyset(&sa.sa_mask);
    ASSERT_EQ(sigaction(signo, &sa, NULL), 0);
}

static sig_fn disposition(int signo) {
    struct sigaction sa;
    ASSERT_EQ(sigaction(signo, NULL, &sa), 0);
    return sa.sa_handler;
}

/* Raises signo, which must be caught or ignored by now (else the assertion fails, rather than the test's
 * process ending by the signal). */
static void raise_caught(int signo) {
    ASSERT(disposition(signo) != SIG_DFL);
    ASSERT_EQ(raise(signo), 0);
}

/* One SIGALRM in ms milliseconds (0: none any more). */
static void alarm_in(long ms) {
    struct itimerval it;
    memset(&it, 0, sizeof it);
    it.it_value.tv_sec = ms / 1000;
    it.it_value.tv_usec = (ms % 1000) * 1000;
    ASSERT_EQ(setitimer(ITIMER_REAL, &it, NULL), 0);
}

/* What a loop's handler saw. */
typedef struct {
    int calls, signo;
    bool in_os_handler; /* the signal was blocked while it ran: it ran inside the OS's handler */
    async_loop *loop;
    async_ms at;
    async_future *wake; /* completed by the call that finds it pending */
} sig_rec;

static void rec_handler(async_loop *loop, int signo, void *arg) {
    sig_rec *r = (sig_rec *)arg;
    sigset_t now;
    r->calls++;
    r->signo = signo;
    r->loop = loop;
    r->at = async_loop_now(loop);
    ASSERT_EQ(pthread_sigmask(SIG_BLOCK, NULL, &now), 0);
    if (sigismember(&now, signo)) r->in_os_handler = true;
    if (r->wake && !async_future_done(r->wake)) async_future_set_value(r->wake, signo);
}

/* Raises signo `rounds` times, each time waiting until the handler has seen it. */
ASYNC_DEF(sg_raiser, sig_rec *rec; int signo; int rounds; async_future fut; int i;) {
    for (f->i = 0; f->i < f->rounds; f->i++) {
        async_future_init(&f->fut);
        f->rec->wake = &f->fut;
        raise_caught(f->signo);
        AWAIT_FUTURE(t, &f->fut);
    }
} ASYNC_END_DEF

/* Waits for signo, logging "NAME " when it comes or "NAME!CODE " for what it raised; its finally block
 * counts. */
ASYNC_DEF(sg_waiter, const char *name; int signo; async_sigwait *wp; async_sigwait w; int code; int finally_ran;) {
    ASYNC_TRY(t) {
        AWAIT_SIGNAL(t, f->wp ? f->wp : &f->w, f->signo);
        LOG("%s ", f->name);
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
        LOG("%s!%d ", f->name, f->code);
    }
    ASYNC_FINALLY(t) {
        f->finally_ran++;
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

/* ---- loop.add_signal_handler ---- */

TEST(signals_handler_runs_on_the_loops_thread_at_each_delivery) {
    static sig_rec rec;
    static sg_raiser_frame m;
    async_loop *loop = async_loop_new(0);
    ASSERT(loop != NULL);
    app_catch(SIGUSR1);
    ASSERT_EQ(async_loop_add_signal_handler(loop, SIGUSR1, rec_handler, &rec), 0);
    ASSERT(disposition(SIGUSR1) != app_handler); /* the loop's, while the handler is set */
    ASSERT_EQ(async_run(loop, ASYNC_CALL(sg_raiser, &m, &rec, SIGUSR1, 2)), 0);
    ASSERT_EQ(rec.calls, 2);
    ASSERT_EQ(rec.signo, SIGUSR1);
    ASSERT(rec.loop == loop);
    ASSERT(!rec.in_os_handler);
    ASSERT_EQ(app_caught[SIGUSR1], 0);
    ASSERT_EQ(async_loop_remove_signal_handler(loop, SIGUSR1), 1);
    ASSERT_EQ(async_loop_remove_signal_handler(loop, SIGUSR1), 0); /* none left: asyncio's False */
    ASSERT(disposition(SIGUSR1) == app_handler);
    async_loop_free(loop);
}

/* The virtual clock delivers a signal that came before time moves on: at 0 ms, although a sleeper's
 * timer would have let time jump 10 s. */
TEST(signals_virtual_clock_delivers_before_time_jumps) {
    static sig_rec rec;
    static sg_raiser_frame m;
    static sleeper_frame s;
    async_loop *loop = new_hosted_loop();
    app_catch(SIGUSR1);
    ASSERT_EQ(async_loop_add_signal_handler(loop, SIGUSR1, rec_handler, &rec), 0);
    ASSERT_EQ(async_spawn(loop, sleeper(&s, 10000, 0)), 0);
    ASSERT_EQ(async_run(loop, ASYNC_CALL(sg_raiser, &m, &rec, SIGUSR1, 1)), 0);
    ASSERT_EQ(rec.calls, 1);
    ASSERT_EQ(rec.at, 0);
    ASSERT_EQ(async_loop_now(loop), 0);
    async_loop_free(loop);
}

/* Waits for a future that only the handler completes. */
ASYNC_DEF(sg_wait_handler, sig_rec *rec; async_future fut;) {
    f->rec->wake = &f->fut;
    AWAIT_FUTURE(t, &f->fut);
} ASYNC_END_DEF

/* A handler keeps the loop alive: main waits for what only a signal can bring (SIGALRM 20 ms later)
 * instead of ending with ASYNC_EDEADLK, on the real clock and on the virtual one. */
TEST(signals_handler_keeps_the_loop_alive) {
    static sig_rec rec;
    static sg_wait_handler_frame m;
    unsigned flags[2] = {0, ASYNC_LOOP_VIRTUAL_CLOCK};
    size_t i;
    app_catch(SIGALRM); /* an alarm that comes late is harmless */
    for (i = 0; i < 2; i++) {
        async_loop *loop = async_loop_new(flags[i]);
        ASSERT(loop != NULL);
        memset(&rec, 0, sizeof rec);
        ASSERT_EQ(async_loop_add_signal_handler(loop, SIGALRM, rec_handler, &rec), 0);
        alarm_in(20);
        ASSERT_EQ(async_run(loop, ASYNC_CALL(sg_wait_handler, &m, &rec)), 0);
        ASSERT_EQ(rec.calls, 1);
        async_loop_free(loop);
    }
    alarm_in(0);
    ASSERT_EQ(app_caught[SIGALRM], 0);
}

/* Removing puts back what was there before: the application's handler (with its flags), SIG_IGN,
 * SIG_DFL; a signal raised then goes to it, never to the loop's handler. */
TEST(signals_remove_puts_the_old_disposition_back) {
    static sig_rec rec;
    static sleeper_frame s;
    async_loop *loop = new_hosted_loop();
    struct sigaction before, after;
    app_catch(SIGUSR1);
    ASSERT(signal(SIGUSR2, SIG_IGN) != SIG_ERR);
    ASSERT(signal(SIGHUP, SIG_DFL) != SIG_ERR);
    ASSERT_EQ(sigaction(SIGUSR1, NULL, &before), 0);
    ASSERT_EQ(async_loop_add_signal_handler(loop, SIGUSR1, rec_handler, &rec), 0);
    ASSERT_EQ(async_loop_add_signal_handler(loop, SIGUSR2, rec_handler, &rec), 0);
    ASSERT_EQ(async_loop_add_signal_handler(loop, SIGHUP, rec_handler, &rec), 0);
    ASSERT(disposition(SIGUSR1) != app_handler);
    ASSERT(disposition(SIGUSR2) != SIG_IGN);
    ASSERT(disposition(SIGHUP) != SIG_DFL);
    ASSERT_EQ(async_loop_remove_signal_handler(loop, SIGUSR1), 1);
    ASSERT_EQ(async_loop_remove_signal_handler(loop, SIGUSR2), 1);
    ASSERT_EQ(async_loop_remove_signal_handler(loop, SIGHUP), 1);
    ASSERT_EQ(sigaction(SIGUSR1, NULL, &after), 0);
    ASSERT(after.sa_handler == app_handler);
    ASSERT_EQ(after.sa_flags, before.sa_flags);
    ASSERT(disposition(SIGUSR2) == SIG_IGN);
    ASSERT(disposition(SIGHUP) == SIG_DFL);
    raise_caught(SIGUSR1);
    ASSERT_EQ(app_caught[SIGUSR1], 1);
    ASSERT_EQ(async_run(loop, sleeper(&s, 5, 0)), 0);
    ASSERT_EQ(rec.calls, 0);
    async_loop_free(loop);
}

/* A signal the loop caught but had not handed out yet when its handler was removed is dropped: the
 * handler never runs. */
TEST(signals_handler_removed_before_the_signal_was_handed_out_never_runs) {
    static sig_rec rec;
    static sleeper_frame s;
    async_loop *loop = async_loop_new(0);
    ASSERT(loop != NULL);
    app_catch(SIGUSR1);
    ASSERT_EQ(async_loop_add_signal_handler(loop, SIGUSR1, rec_handler, &rec), 0);
    raise_caught(SIGUSR1); /* libev's OS handler notes it; the loop has not run since */
    ASSERT_EQ(async_loop_remove_signal_handler(loop, SIGUSR1), 1);
    ASSERT_EQ(async_run(loop, sleeper(&s, 5, 0)), 0);
    ASSERT_EQ(rec.calls, 0);
    ASSERT_EQ(app_caught[SIGUSR1], 0);
    async_loop_free(loop);
}

TEST(signals_handler_arguments_are_checked) {
    static sig_rec rec;
    static const int bad[] = {0, -1, 65, 1000, SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGFPE, SIGILL};
    async_loop *loop = new_hosted_loop(), *core;
    size_t i;
    app_catch(SIGUSR1);
    ASSERT_EQ(async_loop_add_signal_handler(NULL, SIGUSR1, rec_handler, &rec), ASYNC_EINVAL);
    ASSERT_EQ(async_loop_add_signal_handler(loop, SIGUSR1, NULL, &rec), ASYNC_EINVAL);
    ASSERT_EQ(async_loop_remove_signal_handler(NULL, SIGUSR1), ASYNC_EINVAL);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ASSERT_EQ(async_loop_add_signal_handler(loop, bad[i], rec_handler, &rec), ASYNC_EINVAL);
        ASSERT_EQ(async_loop_remove_signal_handler(loop, bad[i]), ASYNC_EINVAL);
    }
    /* a loop of the core alone has no way to the OS's signals */
    core = new_loop();
    ASSERT_EQ(async_loop_add_signal_handler(core, SIGUSR1, rec_handler, &rec), ASYNC_ENOTSUP);
    ASSERT_EQ(async_loop_remove_signal_handler(core, SIGUSR1), ASYNC_ENOTSUP);
    /* one handler per signal and loop: the second is refused and the first stays */
    ASSERT_EQ(async_loop_add_signal_handler(loop, SIGUSR1, rec_handler, &rec), 0);
    ASSERT_EQ(async_loop_add_signal_handler(loop, SIGUSR1, rec_handler, NULL), ASYNC_EBUSY);
    ASSERT_EQ(async_loop_remove_signal_handler(loop, SIGUSR1), 1);
    ASSERT(disposition(SIGUSR1) == app_handler);
    async_loop_free(loop);
}

/* libev gives a signal to one loop of the process (a second one aborted in its assertion): the second
 * loop is told ASYNC_EBUSY, by a handler, a wait and debug mode's SIGQUIT dump alike, until the first
 * lets go. */
TEST(signals_one_loop_of_the_process_has_a_signal) {
    static sig_rec ra, rb;
    static sg_waiter_frame w;
    async_loop *a = new_hosted_loop(), *b = new_hosted_loop();
    app_catch(SIGUSR1);
    app_catch(SIGQUIT);
    ASSERT_EQ(async_loop_add_signal_handler(a, SIGUSR1, rec_handler, &ra), 0);
    ASSERT_EQ(async_loop_add_signal_handler(b, SIGUSR1, rec_handler, &rb), ASYNC_EBUSY);
    trace[0] = '\0';
    ASSERT_EQ(async_run(b, ASYNC_CALL(sg_waiter, &w, "w", SIGUSR1)), 0);
    ASSERT_EQ(w.code, ASYNC_EBUSY);
    ASSERT_EQ(async_loop_remove_signal_handler(a, SIGUSR1), 1);
    ASSERT_EQ(async_loop_add_signal_handler(b, SIGUSR1, rec_handler, &rb), 0);
    ASSERT_EQ(async_loop_set_debug(a, true), 0);
    ASSERT_EQ(async_loop_set_debug(b, true), 0);
    ASSERT_EQ(async_loop_dump_on_sigquit(a), 0);
    ASSERT_EQ(async_loop_dump_on_sigquit(b), ASYNC_EBUSY);
    async_loop_free(a);
    async_loop_free(b);
    ASSERT(disposition(SIGUSR1) == app_handler);
    ASSERT(disposition(SIGQUIT) == app_handler);
}

/* A loop allocator that lets `mem_budget` more allocations succeed. */
static int mem_budget;

static void *budget_realloc(void *ctx, void *p, size_t n) {
    (void)ctx;
    if (n == 0) {
        free(p);
        return NULL;
    }
    if (!p && mem_budget-- <= 0) return NULL;
    return realloc(p, n);
}

/* Out of memory: the loop's signal table, then the signal's record: ASYNC_ENOMEM, nothing installed. */
TEST(signals_without_memory_is_enomem) {
    static sig_rec rec;
    static sg_waiter_frame w;
    int budget;
    app_catch(SIGUSR1);
    for (budget = 0; budget < 2; budget++) {
        async_loop *loop = new_hosted_loop(), *waits = new_hosted_loop();
        async_loop_set_allocator(loop, budget_realloc, NULL);
        async_loop_set_allocator(waits, budget_realloc, NULL);
        mem_budget = budget;
        ASSERT_EQ(async_loop_add_signal_handler(loop, SIGUSR1, rec_handler, &rec), ASYNC_ENOMEM);
        ASSERT(disposition(SIGUSR1) == app_handler);
        mem_budget = budget;
        ASSERT_EQ(async_run(waits, ASYNC_CALL(sg_waiter, &w, "w", SIGUSR1)), 0);
        ASSERT_EQ(w.code, ASYNC_ENOMEM);
        ASSERT(disposition(SIGUSR1) == app_handler);
        mem_budget = 1000; /* with memory, the same loop takes the handler */
        ASSERT_EQ(async_loop_add_signal_handler(loop, SIGUSR1, rec_handler, &rec), 0);
        async_loop_free(loop);
        async_loop_free(waits);
        ASSERT(disposition(SIGUSR1) == app_handler);
    }
}

/* A loop freed with a handler set and a task still waiting for a signal puts both dispositions back and
 * frees what it kept (ASan, valgrind). */
TEST(signals_are_freed_with_the_loop) {
    static sig_rec rec;
    static sg_waiter_frame w;
    static sleeper_frame s;
    async_loop *loop = async_loop_new(0);
    ASSERT(loop != NULL);
    app_catch(SIGUSR1);
    ASSERT(signal(SIGUSR2, SIG_IGN) != SIG_ERR);
    ASSERT_EQ(async_loop_add_signal_handler(loop, SIGUSR1, rec_handler, &rec), 0);
    ASSERT_EQ(async_spawn(loop, ASYNC_CALL(sg_waiter, &w, "w", SIGUSR2)), 0);
    ASSERT_EQ(async_run(loop, sleeper(&s, 1, 0)), 0);
    ASSERT(!async_task_done(&w.task)); /* still waiting */
    ASSERT(disposition(SIGUSR2) != SIG_IGN);
    async_loop_free(loop);
    ASSERT(disposition(SIGUSR1) == app_handler);
    ASSERT(disposition(SIGUSR2) == SIG_IGN);
}

/* ---- AWAIT_SIGNAL ---- */

/* Spawns waiters a and b, lets them wait, raises SIGUSR1 once, and awaits both; then, after a pass with
 * no one listening, notes SIGUSR1's disposition. */
ASYNC_DEF(sg_two_waiters, async_group g; sg_waiter_frame a; sg_waiter_frame b; sig_fn after;) {
    ASYNC_SPAWN(t, &f->g, ASYNC_CALL(sg_waiter, &f->a, "a", SIGUSR1));
    ASYNC_SPAWN(t, &f->g, ASYNC_CALL(sg_waiter, &f->b, "b", SIGUSR1));
    AWAIT_YIELD(t);
    LOG("raise ");
    raise_caught(SIGUSR1);
    AWAIT_GROUP(t, &f->g);
    AWAIT_SLEEP(t, 1);
    f->after = disposition(SIGUSR1);
} ASYNC_END_DEF

/* One delivery wakes every task waiting, in the order they began; once none waits, the signal's old
 * disposition is back. */
TEST(signals_await_wakes_every_waiter_in_order) {
    static sg_two_waiters_frame m;
    async_loop *loop = new_hosted_loop();
    app_catch(SIGUSR1);
    trace[0] = '\0';
    ASSERT_EQ(async_run(loop, ASYNC_CALL(sg_two_waiters, &m)), 0);
    ASSERT_STR_EQ(trace, "raise a b ");
    ASSERT_EQ(m.a.code, 0);
    ASSERT_EQ(m.b.code, 0);
    ASSERT(m.after == app_handler);
    ASSERT_EQ(app_caught[SIGUSR1], 0);
    async_loop_free(loop);
}

/* A handler and a waiting task share a delivery. */
TEST(signals_handler_and_waiter_share_a_delivery) {
    static sig_rec rec;
    static sg_two_waiters_frame m;
    async_loop *loop = new_hosted_loop();
    app_catch(SIGUSR1);
    ASSERT_EQ(async_loop_add_signal_handler(loop, SIGUSR1, rec_handler, &rec), 0);
    trace[0] = '\0';
    ASSERT_EQ(async_run(loop, ASYNC_CALL(sg_two_waiters, &m)), 0);
    ASSERT_STR_EQ(trace, "raise a b ");
    ASSERT_EQ(rec.calls, 1);
    ASSERT(m.after != app_handler); /* the handler still holds it */
    ASSERT_EQ(async_loop_remove_signal_handler(loop, SIGUSR1), 1);
    ASSERT(disposition(SIGUSR1) == app_handler);
    async_loop_free(loop);
}

/* Cancels a task waiting for SIGUSR2 and awaits it; then, after a pass, notes the disposition and
 * raises SIGUSR2, which must reach the application's handler. */
ASYNC_DEF(sg_cancel_waiter, async_group g; sg_waiter_frame w; sig_fn after;) {
    ASYNC_SPAWN(t, &f->g, ASYNC_CALL(sg_waiter, &f->w, "w", SIGUSR2));
    AWAIT_YIELD(t);
    ASSERT(async_cancel(&f->w.task));
    AWAIT_GROUP(t, &f->g);
    AWAIT_SLEEP(t, 1);
    f->after = disposition(SIGUSR2);
    raise_caught(SIGUSR2);
} ASYNC_END_DEF

TEST(signals_await_is_cancellable) {
    static sg_cancel_waiter_frame m;
    async_loop *loop = async_loop_new(0);
    ASSERT(loop != NULL);
    app_catch(SIGUSR2);
    trace[0] = '\0';
    ASSERT_EQ(async_run(loop, ASYNC_CALL(sg_cancel_waiter, &m)), 0);
    ASSERT_EQ(m.w.code, ASYNC_ECANCELED);
    ASSERT_EQ(m.w.finally_ran, 1);
    ASSERT(m.after == app_handler);
    ASSERT_EQ(app_caught[SIGUSR2], 1);
    async_loop_free(loop);
}

/* A wait whose task is cancelled before it starts never listens. */
ASYNC_DEF(sg_cancelled_first, async_sigwait w; int code; sig_fn during;) {
    async_cancel(t);
    ASYNC_TRY(t) {
        AWAIT_SIGNAL(t, &f->w, SIGUSR1);
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
        f->during = disposition(SIGUSR1);
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

TEST(signals_await_with_a_cancellation_pending_never_listens) {
    static sg_cancelled_first_frame m;
    async_loop *loop = new_hosted_loop();
    app_catch(SIGUSR1);
    ASSERT_EQ(async_run(loop, ASYNC_CALL(sg_cancelled_first, &m)), 0);
    ASSERT_EQ(m.code, ASYNC_ECANCELED);
    ASSERT(m.during == app_handler);
    async_loop_free(loop);
}

TEST(signals_await_arguments_are_checked) {
    static sg_waiter_frame w, busy_a, busy_b;
    static sleeper_frame s;
    static const int bad[] = {0, -1, 1000, SIGKILL, SIGSTOP, SIGSEGV};
    async_loop *loop;
    size_t i;
    app_catch(SIGUSR1);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ASSERT_EQ(run_virtual(ASYNC_CALL(sg_waiter, &w, "w", bad[i])), 0);
        ASSERT_EQ(w.code, ASYNC_EINVAL);
    }
    ASSERT_EQ(async_run(new_loop(), ASYNC_CALL(sg_waiter, &w, "w", SIGUSR1)), 0); /* the core alone */
    ASSERT_EQ(w.code, ASYNC_ENOTSUP);
    /* two tasks on one async_sigwait: the second is refused, the first waits on */
    loop = new_hosted_loop();
    ASSERT_EQ(async_spawn(loop, ASYNC_CALL(sg_waiter, &busy_a, "a", SIGUSR1)), 0);
    ASSERT_EQ(async_spawn(loop, ASYNC_CALL(sg_waiter, &busy_b, "b", SIGUSR1, &busy_a.w)), 0);
    ASSERT_EQ(async_run(loop, sleeper(&s, 1, 0)), 0);
    ASSERT_EQ(busy_b.code, ASYNC_EBUSY);
    ASSERT(!async_task_done(&busy_a.task));
    ASSERT(async_cancel(&busy_a.task));
    ASSERT_EQ(async_run(loop, sleeper(&s, 1, 0)), 0);
    ASSERT_EQ(busy_a.code, ASYNC_ECANCELED);
    async_loop_free(loop);
}

/* Woken by a delivery, tries to wait on the async_sigwait of a task that the same delivery woke and that
 * has not resumed yet (unless that task has ended: a fault injected into the test may end it first,
 * and the wait would then be this task's, with no second delivery to come). */
ASYNC_DEF(sg_borrower, async_sigwait *other; async_task *owner; async_sigwait w; int code;) {
    AWAIT_SIGNAL(t, &f->w, SIGUSR1);
    if (async_task_done(f->owner)) ASYNC_RETURN(t, 0);
    ASYNC_TRY(t) {
        AWAIT_SIGNAL(t, f->other, SIGUSR1);
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

ASYNC_DEF(sg_borrow_main, async_group g; sg_borrower_frame x; sg_waiter_frame a;) {
    ASYNC_SPAWN(t, &f->g, ASYNC_CALL(sg_borrower, &f->x, &f->a.w, &f->a.task));
    ASYNC_SPAWN(t, &f->g, ASYNC_CALL(sg_waiter, &f->a, "a", SIGUSR1));
    AWAIT_YIELD(t);
    raise_caught(SIGUSR1);
    AWAIT_GROUP(t, &f->g);
} ASYNC_END_DEF

/* The wait stays the woken task's until it has resumed: another task's wait on it is ASYNC_EBUSY, and
 * the woken task still sees its delivery. */
TEST(signals_await_on_a_wait_whose_task_has_not_resumed_is_ebusy) {
    static sg_borrow_main_frame m;
    async_loop *loop = new_hosted_loop();
    app_catch(SIGUSR1);
    trace[0] = '\0';
    ASSERT_EQ(async_run(loop, ASYNC_CALL(sg_borrow_main, &m)), 0);
    ASSERT_EQ(m.x.code, ASYNC_EBUSY);
    ASSERT_EQ(m.a.code, 0);
    ASSERT_STR_EQ(trace, "a ");
    async_loop_free(loop);
}

/* A task that waits for a signal in a loop: woken, it raises the signal again at once, before waiting
 * again. SIGUSR1's default action (ending the process) is what it had before: the signal is still the
 * loop's until the end of the pass, and the next wait takes that delivery. */
ASYNC_DEF(sg_looper, async_sigwait w; int rounds;) {
    AWAIT_SIGNAL(t, &f->w, SIGUSR1);
    for (f->rounds = 1; f->rounds < 3; f->rounds++) {
        raise_caught(SIGUSR1);
        AWAIT_SIGNAL(t, &f->w, SIGUSR1);
    }
} ASYNC_END_DEF

ASYNC_DEF(sg_loop_main, async_group g; sg_looper_frame l;) {
    ASYNC_SPAWN(t, &f->g, ASYNC_CALL(sg_looper, &f->l));
    AWAIT_YIELD(t);
    raise_caught(SIGUSR1);
    AWAIT_GROUP(t, &f->g);
} ASYNC_END_DEF

TEST(signals_await_in_a_loop_never_meets_the_default_action) {
    static sg_loop_main_frame m;
    async_loop *loop = async_loop_new(0);
    ASSERT(loop != NULL);
    ASSERT(signal(SIGUSR1, SIG_DFL) != SIG_ERR);
    ASSERT_EQ(async_run(loop, ASYNC_CALL(sg_loop_main, &m)), 0);
    ASSERT_EQ(m.l.rounds, 3);
    async_loop_free(loop);
    ASSERT(disposition(SIGUSR1) == SIG_DFL);
}

/* A task that waits for a signal keeps the loop alive, on both clocks. */
TEST(signals_await_keeps_the_loop_alive) {
    static sg_waiter_frame w;
    unsigned flags[2] = {0, ASYNC_LOOP_VIRTUAL_CLOCK};
    size_t i;
    app_catch(SIGALRM);
    for (i = 0; i < 2; i++) {
        async_loop *loop = async_loop_new(flags[i]);
        ASSERT(loop != NULL);
        trace[0] = '\0';
        alarm_in(20);
        ASSERT_EQ(async_run(loop, ASYNC_CALL(sg_waiter, &w, "w", SIGALRM)), 0);
        ASSERT_STR_EQ(trace, "w ");
        async_loop_free(loop);
    }
    alarm_in(0);
}

/* ---- Ctrl-C in async_main ---- */

/* Raises SIGINT and sleeps; `handle`: catches the cancellation and ends normally. */
ASYNC_DEF(sg_ctrl_c, int handle; int64_t sleep_ms; int caught; int finally_ran;) {
    ASYNC_TRY(t) {
        raise_caught(SIGINT);
        AWAIT_SLEEP(t, f->sleep_ms);
    }
    ASYNC_CATCH(t) {
        f->caught = async_caught(t)->code;
        if (!f->handle) ASYNC_RERAISE(t);
    }
    ASYNC_FINALLY(t) {
        f->finally_ran++;
    }
    ASYNC_END_TRY(t);
    ASYNC_RETURN(t, 7);
} ASYNC_END_DEF

static void real_clock_main(void) {
    unsetenv("ASYNC_CLOCK");
    unsetenv("ASYNC_DEBUG");
}

TEST(signals_ctrl_c_cancels_main_which_reports_interrupted) {
    static sg_ctrl_c_frame m;
    const char *err;
    int rc;
    real_clock_main();
    ASSERT(disposition(SIGINT) == SIG_DFL);
    test_capture_stderr();
    rc = async_main(ASYNC_CALL(sg_ctrl_c, &m, 0, 10000));
    err = test_release_stderr();
    ASSERT_EQ(rc, ASYNC_ECANCELED);
    ASSERT_STR_EQ(err, "async: interrupted\n");
    ASSERT_EQ(m.caught, ASYNC_ECANCELED);
    ASSERT_EQ(m.finally_ran, 1);
    ASSERT(disposition(SIGINT) == SIG_DFL); /* restored */
}

TEST(signals_ctrl_c_handled_by_main_is_not_reported) {
    static sg_ctrl_c_frame m;
    const char *err;
    int rc;
    real_clock_main();
    test_capture_stderr();
    rc = async_main(ASYNC_CALL(sg_ctrl_c, &m, 1, 10000));
    err = test_release_stderr();
    ASSERT_EQ(rc, 0);
    ASSERT_STR_EQ(err, "");
    ASSERT_EQ(m.caught, ASYNC_ECANCELED);
    ASSERT_EQ(m.finally_ran, 1);
    ASSERT_EQ(async_task_value(&m.task), 7);
    ASSERT(disposition(SIGINT) == SIG_DFL);
}

/* Main catches the Ctrl-C and, while it unwinds, Ctrl-C comes again. */
ASYNC_DEF(sg_ctrl_c_twice) {
    ASYNC_TRY(t) {
        raise_caught(SIGINT);
        AWAIT_SLEEP(t, 10000);
    }
    ASYNC_CATCH(t) {
        printf("unwinding\n");
        fflush(stdout);
        raise(SIGINT); /* the default action now */
        printf("survived\n");
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

static void ctrl_c_twice(void) {
    static sg_ctrl_c_twice_frame m;
    real_clock_main();
    async_main(ASYNC_CALL(sg_ctrl_c_twice, &m));
}

TEST(signals_second_ctrl_c_while_main_unwinds_ends_the_process) {
    char out[256];
    int status;
    test_in_child(ctrl_c_twice, 1, out, sizeof out, &status);
    ASSERT_STR_EQ(out, "unwinding\n");
    ASSERT(WIFSIGNALED(status));
    ASSERT_EQ(WTERMSIG(status), SIGINT);
}

/* async_main_exit: 0 and 1, and after an interrupted main the process ends by SIGINT (stdio flushed). */
static void interrupted_then_exit(void) {
    static sg_ctrl_c_frame m;
    int rc;
    real_clock_main();
    printf("before\n"); /* a pipe: buffered until the exit flushes it */
    test_capture_stderr();
    rc = async_main(ASYNC_CALL(sg_ctrl_c, &m, 0, 10000));
    test_release_stderr();
    printf("rc %d\n", rc);
    exit(async_main_exit(rc));
}

TEST(signals_main_exit_ends_an_interrupted_program_by_sigint) {
    static sg_ctrl_c_frame m;
    char out[256];
    int status;
    ASSERT_EQ(async_main_exit(0), 0);
    ASSERT_EQ(async_main_exit(ASYNC_EINVAL), 1);
    ASSERT_EQ(async_main_exit(ASYNC_ECANCELED), 1); /* no async_main was interrupted */
    test_in_child(interrupted_then_exit, 1, out, sizeof out, &status);
    ASSERT(WIFSIGNALED(status));
    ASSERT_EQ(WTERMSIG(status), SIGINT);
    ASSERT_STR_EQ(out, "before\nrc -125\n");
    /* a main that handles the Ctrl-C: nothing to end the process for */
    real_clock_main();
    test_capture_stderr();
    ASSERT_EQ(async_main(ASYNC_CALL(sg_ctrl_c, &m, 1, 10000)), 0);
    test_release_stderr();
    ASSERT_EQ(async_main_exit(ASYNC_ECANCELED), 1);
}

/* Ctrl-C from a timer of the loop, on the virtual clock (async_main_with's option): main, sleeping two
 * hours, is cancelled at the hour. */
static void raise_sigint_cb(void *arg) {
    (void)arg;
    raise_caught(SIGINT);
}

ASYNC_DEF(sg_ctrl_c_timer, async_handle h; int finally_ran;) {
    ASYNC_TRY(t) {
        ASSERT_EQ(async_loop_call_later(async_task_loop(t), &f->h, 3600000, raise_sigint_cb, NULL), 0);
        AWAIT_SLEEP(t, 7200000);
    }
    ASYNC_FINALLY(t) {
        f->finally_ran++;
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

TEST(signals_ctrl_c_from_a_timer_on_the_virtual_clock) {
    static sg_ctrl_c_timer_frame m;
    async_main_options opts;
    const char *err;
    int rc;
    real_clock_main();
    memset(&opts, 0, sizeof opts);
    opts.virtual_clock = ASYNC_OPTION_ON;
    test_capture_stderr();
    rc = async_main_with(ASYNC_CALL(sg_ctrl_c_timer, &m), &opts);
    err = test_release_stderr();
    ASSERT_EQ(rc, ASYNC_ECANCELED);
    ASSERT_STR_EQ(err, "async: interrupted\nasync: virtual time 3600000 ms\n");
    ASSERT_EQ(m.finally_ran, 1);
}

/* SIGINT ignored, or handled by the application itself: async_main leaves it so, and main runs on. */
TEST(signals_ctrl_c_leaves_an_ignored_or_handled_sigint_alone) {
    static sg_ctrl_c_frame m;
    const char *err;
    real_clock_main();
    ASSERT(signal(SIGINT, SIG_IGN) != SIG_ERR);
    test_capture_stderr();
    ASSERT_EQ(async_main(ASYNC_CALL(sg_ctrl_c, &m, 0, 5)), 0);
    err = test_release_stderr();
    ASSERT_STR_EQ(err, "");
    ASSERT_EQ(m.caught, 0);
    ASSERT(disposition(SIGINT) == SIG_IGN);
    app_catch(SIGINT);
    test_capture_stderr();
    ASSERT_EQ(async_main(ASYNC_CALL(sg_ctrl_c, &m, 0, 5)), 0);
    test_release_stderr();
    ASSERT_EQ(m.caught, 0);
    ASSERT_EQ(app_caught[SIGINT], 1);
    ASSERT(disposition(SIGINT) == app_handler);
}

/* A handler for SIGINT on main's loop takes Ctrl-C over while it is set. */
ASYNC_DEF(sg_takeover, sig_rec rec; async_future fut; int added; int removed; int finally_ran;) {
    ASYNC_TRY(t) {
        f->added = async_loop_add_signal_handler(async_task_loop(t), SIGINT, rec_handler, &f->rec);
        f->rec.wake = &f->fut;
        raise_caught(SIGINT);
        AWAIT_FUTURE(t, &f->fut); /* the handler had it: main is not cancelled */
        f->removed = async_loop_remove_signal_handler(async_task_loop(t), SIGINT);
        raise_caught(SIGINT); /* Ctrl-C is async_main's again */
        AWAIT_SLEEP(t, 10000);
    }
    ASYNC_FINALLY(t) {
        f->finally_ran++;
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

TEST(signals_ctrl_c_taken_over_by_a_handler_on_mains_loop) {
    static sg_takeover_frame m;
    const char *err;
    int rc;
    real_clock_main();
    test_capture_stderr();
    rc = async_main(ASYNC_CALL(sg_takeover, &m));
    err = test_release_stderr();
    ASSERT_EQ(m.added, 0);
    ASSERT_EQ(m.rec.calls, 1);
    ASSERT_EQ(m.removed, 1);
    ASSERT_EQ(rc, ASYNC_ECANCELED);
    ASSERT_STR_EQ(err, "async: interrupted\n");
    ASSERT_EQ(m.finally_ran, 1);
    ASSERT(disposition(SIGINT) == SIG_DFL);
}

/* A task awaiting SIGINT takes the Ctrl-C instead of main's cancellation. */
ASYNC_DEF(sg_await_sigint, async_sigwait w;) {
    raise_caught(SIGINT);
    AWAIT_SIGNAL(t, &f->w, SIGINT);
    ASYNC_RETURN(t, 5);
} ASYNC_END_DEF

TEST(signals_ctrl_c_taken_over_by_a_task_awaiting_sigint) {
    static sg_await_sigint_frame m;
    const char *err;
    real_clock_main();
    test_capture_stderr();
    ASSERT_EQ(async_main(ASYNC_CALL(sg_await_sigint, &m)), 0);
    err = test_release_stderr();
    ASSERT_STR_EQ(err, "");
    ASSERT_EQ(async_task_value(&m.task), 5);
    ASSERT(disposition(SIGINT) == SIG_DFL);
}

/* Another loop of the process has SIGINT: async_main leaves it to that loop. */
TEST(signals_ctrl_c_left_to_another_loop_that_has_sigint) {
    static sig_rec rec;
    static sg_ctrl_c_frame m;
    async_loop *other = new_hosted_loop();
    real_clock_main();
    ASSERT_EQ(async_loop_add_signal_handler(other, SIGINT, rec_handler, &rec), 0);
    test_capture_stderr();
    ASSERT_EQ(async_main(ASYNC_CALL(sg_ctrl_c, &m, 0, 5)), 0);
    test_release_stderr();
    ASSERT_EQ(m.caught, 0);
    async_loop_free(other); /* never ran: the signal it caught is dropped */
    ASSERT_EQ(rec.calls, 0);
    ASSERT(disposition(SIGINT) == SIG_DFL);
}
