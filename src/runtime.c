/* The hosted runtime's front door: async_loop_new picks the backend (libev on the real or the virtual
 * clock, or io_uring on the real one) and switches debug mode on when the environment asks; async_main is asyncio.run, with
 * its options from code or from the environment and its Ctrl-C. Above the loop, the backend and debug
 * mode alike, so none of them needs to know the others. */
#define _POSIX_C_SOURCE 200809L
#include "backend.h"
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An environment variable that is set to something other than "0" or the empty string (as asyncio
 * reads PYTHONASYNCIODEBUG: set and non-empty; an empty value is how a shell script unsets a variable
 * for one command). */
static bool env_on(const char *name) {
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

/* The real clock's backend: the flag's, else ASYNC_BACKEND's, else libev. io_uring where the kernel
 * gives it, else libev with a line that says why. */
static async_loop *real_loop_new(unsigned flags) {
    const char *env = getenv("ASYNC_BACKEND");
    bool uring = false;
    async_loop *loop;
    int why = 0;
    if (flags & ASYNC_LOOP_IO_URING)
        uring = true;
    else if (!(flags & ASYNC_LOOP_LIBEV) && env && *env) {
        if (strcmp(env, "io_uring") == 0)
            uring = true;
        else if (strcmp(env, "libev") != 0)
            fprintf(stderr, "async.h: ASYNC_BACKEND=%s is no backend (io_uring or libev); using libev\n", env);
    }
    if (!uring) return async__hosted_new(&async__backend_ev, NULL);
    loop = async__hosted_new(&async__backend_uring, &why);
    if (loop || !why || why == ENOMEM) return loop;
    fprintf(stderr, "async.h: io_uring unavailable (%s); using libev\n", strerror(why));
    return async__hosted_new(&async__backend_ev, NULL);
}

/* A loop as the options say; a field left to the environment (0) reads it. */
static async_loop *loop_new(int virtual_clock, int debug, unsigned flags) {
    const char *clock = getenv("ASYNC_CLOCK"), *sim = getenv("ASYNC_SIM");
    bool virt = virtual_clock ? virtual_clock > 0 : clock && strcmp(clock, "virtual") == 0;
    async_loop *loop;
    if (sim && *sim) { /* the program, unchanged, in the simulated world of that seed */
        async_sim_options o = async_sim_defaults(strtoull(sim, NULL, 0));
        loop = async_sim_new(&o);
    } else {
        loop = virt ? async__hosted_new(&async__backend_ev_virtual, NULL) : real_loop_new(flags);
    }
    if (!loop) return NULL;
    if ((debug ? debug > 0 : env_on("ASYNC_DEBUG")) && async_loop_set_debug(loop, true) == 0)
        async_loop_dump_on_sigquit(loop);
    async__trace_from_env(loop); /* ASYNC_TRACE=path */
    return loop;
}

async_loop *async_loop_new(unsigned flags) {
    if ((flags & ASYNC_LOOP_IO_URING) && (flags & ASYNC_LOOP_LIBEV)) return NULL; /* two backends at once */
    return loop_new(flags & ASYNC_LOOP_VIRTUAL_CLOCK ? ASYNC_OPTION_ON : ASYNC_OPTION_ENV, ASYNC_OPTION_ENV, flags);
}

const char *async_loop_backend_name(const async_loop *loop) {
    const async__hosted_head *hh = loop ? async__head_of(loop) : NULL;
    return hh ? hh->be->name : NULL;
}

/* ---- Ctrl-C ---- */

/* Whether the last async_main of the process ended because of Ctrl-C, for async_main_exit (a lock:
 * async_main may run on several threads). */
static pthread_mutex_t interrupted_mu = PTHREAD_MUTEX_INITIALIZER;
static bool interrupted_last;

static void set_interrupted(bool on) {
    pthread_mutex_lock(&interrupted_mu);
    interrupted_last = on;
    pthread_mutex_unlock(&interrupted_mu);
}

typedef struct main_run {
    async_task *main;
    bool interrupted; /* SIGINT cancelled main */
} main_run;

/* The first SIGINT that no handler or task of the loop takes: the default action is back for the next
 * one, and main is cancelled. */
static void on_sigint(async_loop *loop, int signo, void *arg) {
    main_run *m = (main_run *)arg;
    async__loop_signal_fallback(loop, signo, NULL, NULL);
    if (async_task_done(m->main)) return;
    m->interrupted = true;
    async_cancel(m->main);
}

/* Ctrl-C cancels main only where SIGINT has its default action (asyncio.run does the same with
 * Python's default handler): a program that ignores it, or handles it itself, keeps its way, and so
 * does another loop of the process that watches SIGINT. *caught says whether it is set up; the error is
 * ASYNC_ENOMEM. */
static int catch_sigint(async_loop *loop, main_run *m, bool *caught) {
    struct sigaction sa;
    int rc;
    *caught = false;
    if (sigaction(SIGINT, NULL, &sa) != 0 || (sa.sa_flags & SA_SIGINFO) || sa.sa_handler != SIG_DFL) return 0;
    rc = async__loop_signal_fallback(loop, SIGINT, on_sigint, m);
    *caught = rc == 0;
    return rc == ASYNC_ENOMEM ? rc : 0;
}

/* ---- asyncio.run ---- */

static bool option_ok(int v) { return v >= ASYNC_OPTION_OFF && v <= ASYNC_OPTION_ON; }

int async_main_with(async_task *main, const async_main_options *opts) {
    static const async_main_options from_env;
    main_run m;
    async_loop *loop;
    async_ms start;
    bool caught;
    int rc;
    set_interrupted(false);
    if (!opts) opts = &from_env;
    if (!option_ok(opts->virtual_clock) || !option_ok(opts->debug) || opts->threads > ASYNC_THREAD_POOL_MAX) {
        fprintf(stderr, "async: bad options: virtual_clock %d, debug %d (each -1, 0 or 1), threads %u (0..%u)\n",
                opts->virtual_clock, opts->debug, opts->threads, ASYNC_THREAD_POOL_MAX);
        return ASYNC_EINVAL;
    }
    loop = loop_new(opts->virtual_clock, opts->debug, 0);
    if (!loop) {
        fprintf(stderr, "async: %s\n", async_strerror(ASYNC_ENOMEM));
        return ASYNC_ENOMEM;
    }
    m.main = main;
    m.interrupted = false;
    caught = false;
    rc = opts->threads ? async_loop_set_threads(loop, opts->threads) : 0;
    if (!rc && main) rc = catch_sigint(loop, &m, &caught);
    if (rc) {
        fprintf(stderr, "async: %s\n", async_strerror(rc));
        async_loop_free(loop);
        return rc;
    }
    start = async_loop_now(loop);
    rc = async_run(loop, main);
    if (caught) async__loop_signal_fallback(loop, SIGINT, NULL, NULL); /* SIGINT's disposition is back */
    if (rc == ASYNC_ECANCELED && m.interrupted) {
        fprintf(stderr, "async: interrupted\n");
        set_interrupted(true);
    } else if (rc) {
        const async_error *e = async_task_error(main);
        fprintf(stderr, "async: main failed: %s (%d)\n",
                e ? async_loop_error_message(loop, e) : async_loop_strerror(loop, rc), rc);
    }
    if (async_loop_virtual(loop))
        fprintf(stderr, "async: virtual time %lu ms\n", (unsigned long)(async_ms)(async_loop_now(loop) - start));
    async_loop_free(loop);
    return rc;
}

int async_main(async_task *main) { return async_main_with(main, NULL); }

int async_main_exit(int rc) {
    bool interrupted;
    pthread_mutex_lock(&interrupted_mu);
    interrupted = interrupted_last;
    pthread_mutex_unlock(&interrupted_mu);
    if (rc == 0) return 0;
    if (rc != ASYNC_ECANCELED || !interrupted) return 1;
    /* end the way an interrupted program ends, so that the shell (or make, or a script's loop) knows:
     * stdio first, since no exit handler runs */
    fflush(NULL);
    signal(SIGINT, SIG_DFL);
    raise(SIGINT);
    return 128 + SIGINT; /* SIGINT is blocked: the status a shell gives an interrupted program */
}
