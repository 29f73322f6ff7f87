/* Fault injection over the whole test suite: every test is run again and again in a child process, with
 * one fault placed a little further each time, until the test runs to its end without meeting it.
 *
 *   inject alloc [filter]        the Nth allocation of the test fails (malloc, calloc, realloc return
 *                                NULL), N = 1, 2, ... (SQLite's fault injection)
 *   inject cancel-main [filter]  at the k-th suspension of any task, the loop's main task is cancelled
 *   inject cancel-each [filter]  at the k-th suspension, the task that just suspended is cancelled
 *   inject census [filter]       one clean run of each test, census included (the baseline)
 *
 * A run passes, or fails an assertion of the test because the fault surfaced as an error (both fine),
 * or is a defect: a crash, a sanitizer report (ASan, UBSan, LeakSanitizer: the binary is built with
 * them), a hang, or a census that is not zero. The census is taken on every loop of the test when it is
 * freed, or at exit for loops never freed: every task still live is cancelled and the loop drained;
 * then no task may be left in a ready queue, a timer heap, a group, or any wait queue (lock,
 * semaphore, condition, queue, event, future), which the loop hooks see as a task that started and
 * never finished. Tests that ended early on an assertion are censused too; one whose assertion fired
 * inside a coroutine step is not (its loop is mid-pass).
 *
 * How the faults get in without touching the library: it is linked from a copy of libasync.a whose
 * calls of malloc, calloc and realloc are renamed to this file's __wrap_ functions (objcopy), so the
 * library's allocations are counted and failed, not the tests' own nor libc's; and with -Wl,--wrap for
 * async_loop_init/free, async_run, async_spawn, async_loop_set_debug and async_loop_trace_start, so
 * every loop (the core's and the hosted ones) gets this file's hooks. libev's own allocations are not injected: libev aborts when
 * its allocator fails (ev.c's ev_realloc), whatever the allocator.
 *
 * Options (environment): INJECT_MAX (faults per test, default 120: beyond it, the points are spread
 * evenly over the test's range), INJECT_JOBS (tests run at once, default 2), INJECT_TIMEOUT (s per
 * run, default 20), INJECT_SKIP_TAGS (comma-separated tags of tests to leave out, see test/test.h),
 * INJECT_SKIP (comma-separated name parts of tests to leave out), INJECT_VERBOSE=1 (every run's
 * outcome). A test that skips itself (test_skip) is reported as skipped. Exit status 1 if any defect
 * was found.
 *
 * It links the same test objects as the runner (mk/reliability.mk), with -Wl,--wrap=exit: an exit of
 * the test (test_fail's exit(1), test_skip's) comes here first, so that an assertion that fires while
 * the census drains a loop returns to the census instead of exiting twice. */

#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include "test.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- what a child reports to the driver (shared memory, one slot per concurrent run) ---- */

#define INJECT_SLOTS 8
typedef struct inject_slot {
    unsigned long allocs;      /* allocations the test made (counted from its start) */
    unsigned long suspensions; /* task suspensions the test's loops saw */
    int fired;                 /* the fault was placed */
    uintptr_t site;            /* where the failed allocation was called from (offset in the binary) */
    int census_bad;            /* loops whose census was not zero */
    int census_skipped;        /* loops not censused: an assertion fired inside a step */
    char census_msg[512];
} inject_slot;

enum { MODE_NONE, MODE_ALLOC, MODE_CANCEL_MAIN, MODE_CANCEL_EACH };

static inject_slot *slots;
static inject_slot *me;     /* the child's slot */
static int mode;            /* the child's fault */
static unsigned long target; /* the child's N or k; 0: count only */
static volatile int counting;
static unsigned long alloc_count, susp_count; /* atomics: pool threads allocate too */
extern char __executable_start;

/* ---- allocation failure ---- */

void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);

static int alloc_fails(void *site) {
    unsigned long n;
    if (!counting) return 0;
    n = __atomic_add_fetch(&alloc_count, 1, __ATOMIC_RELAXED);
    if (me) me->allocs = n;
    if (mode != MODE_ALLOC || n != target) return 0;
    me->fired = 1;
    me->site = (uintptr_t)site - (uintptr_t)&__executable_start;
    return 1;
}

void *__wrap_malloc(size_t n) { return alloc_fails(__builtin_return_address(0)) ? NULL : malloc(n); }
void *__wrap_calloc(size_t n, size_t size) {
    return alloc_fails(__builtin_return_address(0)) ? NULL : calloc(n, size);
}
void *__wrap_realloc(void *p, size_t n) {
    if (n == 0) return realloc(p, n); /* a free */
    return alloc_fails(__builtin_return_address(0)) ? NULL : realloc(p, n);
}

/* ---- loops: a registry of live tasks per loop, through the loop hooks ---- */

#define TOMB ((async_task *)(uintptr_t)1)
typedef struct inj_loop {
    async_loop *loop;
    pthread_t thread;
    async_task **set; /* open addressing; NULL free, TOMB deleted */
    size_t cap, used, live;
    async_task *run_main, *first_spawn;
    int depth; /* inside a step */
} inj_loop;

#define MAX_LOOPS 256
static inj_loop *loops[MAX_LOOPS];
static pthread_mutex_t loops_mu = PTHREAD_MUTEX_INITIALIZER;

static size_t hash_of(const async_task *t, size_t cap) {
    uintptr_t h = (uintptr_t)t;
    h ^= h >> 15;
    h *= (uintptr_t)0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 11) & (cap - 1);
}

static async_task **set_find(inj_loop *l, const async_task *t) {
    size_t i;
    if (!l->cap) return NULL;
    for (i = hash_of(t, l->cap); l->set[i]; i = (i + 1) & (l->cap - 1))
        if (l->set[i] == t) return &l->set[i];
    return NULL;
}

static void set_add(inj_loop *l, async_task *t) {
    size_t i;
    if (set_find(l, t)) return;
    if ((l->used + 1) * 2 > l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256, k;
        async_task **old = l->set, **set = (async_task **)calloc(cap, sizeof *set);
        if (!set) return; /* the census will miss it: the injector's own memory is not under test */
        for (k = 0; k < l->cap; k++) {
            if (!old[k] || old[k] == TOMB) continue;
            for (i = hash_of(old[k], cap); set[i]; i = (i + 1) & (cap - 1)) {}
            set[i] = old[k];
        }
        free(old);
        l->set = set;
        l->cap = cap;
        l->used = l->live;
    }
    for (i = hash_of(t, l->cap); l->set[i] && l->set[i] != TOMB; i = (i + 1) & (l->cap - 1)) {}
    if (!l->set[i]) l->used++;
    l->set[i] = t;
    l->live++;
}

static void set_del(inj_loop *l, const async_task *t) {
    async_task **p = set_find(l, t);
    if (!p) return;
    *p = TOMB;
    l->live--;
}

static void cancel_target(inj_loop *l, async_task *t) {
    async_task *victim = mode == MODE_CANCEL_EACH ? t : (l->run_main ? l->run_main : l->first_spawn);
    const char *fn = "";
    me->fired = 1;
    /* a wait_for's deadline is the library's own task, out of the user's reach: its awaiter instead */
    if (victim && async_task_where(victim, NULL, &fn, NULL) && strcmp(fn, "async__timeout_run") == 0)
        victim = async_task_parent(victim);
    if (victim) async_cancel(victim);
}

/* For the report of a hang: the last task stepped and how many steps ran. */
static async_task *volatile last_task;
static volatile unsigned long steps;

static void h_step_begin(async_loop *loop, async_task *t) {
    inj_loop *l = (inj_loop *)async_loop_hooks_ctx(loop);
    l->depth++;
    last_task = t;
    steps++;
    if (!async_task_done(t)) set_add(l, t);
}

static void h_step_end(async_loop *loop, async_task *t) {
    inj_loop *l = (inj_loop *)async_loop_hooks_ctx(loop);
    l->depth--;
    if (!counting || async_task_done(t)) return;
    {
        unsigned long k = __atomic_add_fetch(&susp_count, 1, __ATOMIC_RELAXED);
        if (me) me->suspensions = k;
        if ((mode == MODE_CANCEL_MAIN || mode == MODE_CANCEL_EACH) && k == target) cancel_target(l, t);
    }
}

static void h_task_done(async_loop *loop, async_task *t) { set_del((inj_loop *)async_loop_hooks_ctx(loop), t); }

static void h_inline_start(async_loop *loop, async_task *parent, async_task *child) {
    (void)parent;
    set_add((inj_loop *)async_loop_hooks_ctx(loop), child);
}

static const async_loop_hooks inj_hooks = {
    .step_begin = h_step_begin, .step_end = h_step_end, .task_done = h_task_done, .inline_start = h_inline_start};

static inj_loop *inj_of(async_loop *loop) {
    return loop && loop->hooks == &inj_hooks ? (inj_loop *)async_loop_hooks_ctx(loop) : NULL;
}

static int table_slot(async_loop *loop) {
    int i;
    for (i = 0; i < MAX_LOOPS; i++)
        if (loops[i] && loops[i]->loop == loop) return i;
    return -1;
}

static void forget(int i) {
    free(loops[i]->set);
    free(loops[i]);
    loops[i] = NULL;
}

/* ---- the census ---- */

static jmp_buf census_jmp;
static int in_census;

void __real_exit(int code);
void __wrap_exit(int code);

void __wrap_exit(int code) {
    if (in_census) longjmp(census_jmp, 1);
    __real_exit(code);
}

static void census_note(const char *fmt, ...) {
    size_t len = strlen(me->census_msg);
    va_list ap;
    if (len + 2 >= sizeof me->census_msg) return;
    va_start(ap, fmt);
    vsnprintf(me->census_msg + len, sizeof me->census_msg - len, fmt, ap);
    va_end(ap);
}

/* Runs the loop until nothing is ready or sleeping (virtual time jumps; real time waits, 3 s at most). */
static void inj_drain(async_loop *loop) {
    double end = now_s() + 3.0;
    unsigned passes = 0;
    int32_t d;
    while ((d = async_poll(loop)) >= 0 && passes++ < 100000 && now_s() < end) {
        if (d == 0) continue;
        if (loop->wait && loop->clock) {
            loop->wait(loop, d > 10 ? 10 : d);
        } else if (loop->wait) {
            if (!loop->wait(loop, d)) break;
        } else if (!loop->clock) {
            loop->now += (async_ms)d;
        } else {
            sleep_ms(1);
        }
    }
}

/* Cancels what is still live and drains, a few rounds (a task may catch one cancellation); then every
 * count must be zero. */
static void inj_census(inj_loop *l, const char *when) {
    async_loop *loop = l->loop;
    int round;
    if (!me || inj_of(loop) != l) return; /* the test replaced the hooks (debug mode, its own) */
    if (l->depth > 0) {
        me->census_skipped++;
        return;
    }
    in_census = 1;
    if (setjmp(census_jmp)) { /* an assertion of a coroutine fired while it was cancelled: its loop is mid-pass */
        in_census = 0;
        me->census_skipped++;
        return;
    }
    for (round = 0; round < 8; round++) {
        size_t i;
        bool any = false;
        for (i = 0; i < l->cap; i++) {
            async_task *t = l->set[i];
            if (t && t != TOMB && !async_task_done(t)) {
                async_cancel(t);
                any = true;
            }
        }
        if (!any && !async_loop_has_ready(loop) && !async_loop_timers(loop)) break;
        inj_drain(loop);
    }
    in_census = 0;
    if (l->live || async_loop_timers(loop) || async_loop_has_ready(loop) || loop->live_groups) {
        size_t i, shown = 0;
        me->census_bad++;
        census_note("census at %s: %lu live task(s), %u timer(s), %s, %s", when, (unsigned long)l->live,
                    (unsigned)async_loop_timers(loop), async_loop_has_ready(loop) ? "ready tasks" : "none ready",
                    loop->live_groups ? "live groups" : "no live group");
        for (i = 0; i < l->cap && shown < 3; i++) {
            async_task *t = l->set[i];
            const char *file = "?", *fn = "?";
            unsigned line = 0;
            if (!t || t == TOMB) continue;
            async_task_where(t, &file, &fn, &line);
            census_note("; %s %s:%u (%s)", fn, file, line, async_task_state(t));
            shown++;
        }
        census_note("\n");
    }
}

/* ---- the wrapped loop functions ---- */

int __real_async_loop_init(async_loop *loop);
int __wrap_async_loop_init(async_loop *loop);
void __real_async_loop_free(async_loop *loop);
void __wrap_async_loop_free(async_loop *loop);
int __real_async_run(async_loop *loop, async_task *main_task);
int __wrap_async_run(async_loop *loop, async_task *main_task);
int __real_async_spawn(async_loop *loop, async_task *t);
int __wrap_async_spawn(async_loop *loop, async_task *t);
int __real_async_loop_set_debug(async_loop *loop, bool on);
int __wrap_async_loop_set_debug(async_loop *loop, bool on);

int __wrap_async_loop_init(async_loop *loop) {
    int rc, i;
    inj_loop *l;
    pthread_mutex_lock(&loops_mu);
    i = table_slot(loop);
    if (i >= 0) forget(i); /* a static loop initialised again: its old state is abandoned */
    pthread_mutex_unlock(&loops_mu);
    rc = __real_async_loop_init(loop);
    if (rc || !me) return rc;
    l = (inj_loop *)calloc(1, sizeof *l);
    if (!l) return rc;
    l->loop = loop;
    l->thread = pthread_self();
    pthread_mutex_lock(&loops_mu);
    for (i = 0; i < MAX_LOOPS && loops[i]; i++) {}
    if (i < MAX_LOOPS) {
        loops[i] = l;
        async_loop_set_hooks(loop, &inj_hooks, l);
    } else {
        free(l);
    }
    pthread_mutex_unlock(&loops_mu);
    return rc;
}

void __wrap_async_loop_free(async_loop *loop) {
    int i;
    pthread_mutex_lock(&loops_mu);
    i = loop ? table_slot(loop) : -1;
    pthread_mutex_unlock(&loops_mu);
    if (i >= 0) {
        inj_census(loops[i], "async_loop_free");
        if (inj_of(loop) == loops[i]) async_loop_set_hooks(loop, NULL, NULL);
        pthread_mutex_lock(&loops_mu);
        forget(i);
        pthread_mutex_unlock(&loops_mu);
    }
    __real_async_loop_free(loop);
}

int __wrap_async_run(async_loop *loop, async_task *main_task) {
    inj_loop *l = inj_of(loop);
    if (l) l->run_main = main_task;
    return __real_async_run(loop, main_task);
}

int __wrap_async_spawn(async_loop *loop, async_task *t) {
    inj_loop *l = inj_of(loop);
    int rc = __real_async_spawn(loop, t);
    if (l && rc == 0 && !l->first_spawn) l->first_spawn = t;
    return rc;
}

/* Debug mode needs the hooks: the loop leaves the census (tests of debug mode itself). */
int __wrap_async_loop_set_debug(async_loop *loop, bool on) {
    if (on && inj_of(loop)) async_loop_set_hooks(loop, NULL, NULL);
    return __real_async_loop_set_debug(loop, on);
}

/* So does the trace (tests of the trace itself). */
int __real_async_loop_trace_start(async_loop *loop, const char *path);
int __wrap_async_loop_trace_start(async_loop *loop, const char *path);
int __wrap_async_loop_trace_start(async_loop *loop, const char *path) {
    if (inj_of(loop)) async_loop_set_hooks(loop, NULL, NULL);
    return __real_async_loop_trace_start(loop, path);
}

/* The time limit: says whether tasks kept running (a test that polls for something the fault
 * prevented) or the loop was blocked, and where the last task stepped was; then dies of SIGALRM. */
static void on_alarm(int sig) {
    char msg[512];
    const char *file = "?", *fn = "?";
    unsigned line = 0;
    unsigned long before = steps;
    int n;
    sleep(1);
    if (last_task) async_task_where(last_task, &file, &fn, &line);
    n = snprintf(msg, sizeof msg, "hang: %lu task steps in the last second; last task stepped: %s %s:%u (%s)\n",
                 steps - before, fn, file, line, last_task ? async_task_state(last_task) : "none");
    if (n > 0) (void)!write(2, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
    signal(sig, SIG_DFL);
    raise(sig);
}

static pid_t me_pid; /* the child's process */

/* At the child's exit (the test's end, or test_fail's exit(1)): the loops never freed. Not in a process
 * the test forked (one that runs async_main, whose loop the wrappers never saw freed). */
static void census_at_exit(void) {
    int i;
    if (getpid() != me_pid) return;
    counting = 0;
    for (i = 0; i < MAX_LOOPS; i++)
        if (loops[i] && pthread_equal(loops[i]->thread, pthread_self())) inj_census(loops[i], "exit");
    if (me && me->census_bad) _exit(3); /* before LeakSanitizer: its report would only add noise */
}

/* Sanitizer reports get an exit status of their own. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "exitcode=86:abort_on_error=0:detect_leaks=1"; }
const char *__ubsan_default_options(void);
const char *__ubsan_default_options(void) { return "exitcode=86:print_stacktrace=1"; }

/* ---- the driver ---- */

typedef struct run_result {
    int status; /* waitpid status */
    inject_slot slot;
    char err[4096]; /* the start of the child's stderr */
} run_result;

enum { R_PASS, R_FAILED, R_SKIPPED, R_CENSUS, R_SANITIZER, R_CRASH, R_HANG, R_OTHER, R_COUNT };
static const char *const outcome_names[R_COUNT] = {"passed", "failed an assertion", "skipped itself",
                                                    "census not zero", "sanitizer report", "crash", "hang",
                                                    "other exit"};

static int classify(const run_result *r) {
    if (WIFSIGNALED(r->status)) return WTERMSIG(r->status) == SIGALRM ? R_HANG : R_CRASH;
    switch (WEXITSTATUS(r->status)) {
    case 0: return R_PASS;
    case 1: return R_FAILED;
    case TEST_EXIT_SKIP: return R_SKIPPED;
    case 3: return R_CENSUS;
    case 86: return R_SANITIZER;
    default: return R_OTHER;
    }
}

static unsigned timeout_s = 20;

typedef struct job {
    const test_case *tc;
    pid_t pid;
    int errfd;
    unsigned long n;
    int slot;
    size_t errlen;
    char err[1 << 14];
} job;

static void start_run(job *j, const test_case *tc, int m, unsigned long n, int slot) {
    int errp[2];
    memset(&slots[slot], 0, sizeof slots[slot]);
    j->tc = tc;
    j->n = n;
    j->slot = slot;
    j->errlen = 0;
    if (pipe(errp)) {
        perror("inject: pipe");
        exit(2);
    }
    fflush(NULL);
    j->pid = fork();
    if (j->pid < 0) {
        perror("inject: fork");
        exit(2);
    }
    if (j->pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        setpgid(0, 0); /* a group of its own: helpers the test starts are ended with it */
        close(errp[0]);
        dup2(errp[1], 2);
        if (devnull >= 0) dup2(devnull, 1);
        test_sanitizer_reports_to_stderr();
        test_default_signals();
        me = &slots[slot];
        me_pid = getpid();
        mode = m;
        target = n;
        signal(SIGALRM, on_alarm);
        alarm(timeout_s);
        atexit(census_at_exit);
        alloc_count = susp_count = 0;
        counting = 1;
        tc->fn();
        counting = 0;
        exit(0);
    }
    setpgid(j->pid, j->pid);
    close(errp[1]);
    fcntl(errp[0], F_SETFL, O_NONBLOCK);
    j->errfd = errp[0];
}

/* Reads what job j's child wrote to stderr so far (keeping the start: the first report). */
static void pump(job *j) {
    char buf[4096];
    ssize_t got;
    while ((got = read(j->errfd, buf, sizeof buf)) > 0) {
        size_t n = (size_t)got;
        if (j->errlen + n > sizeof j->err - 1) n = sizeof j->err - 1 - j->errlen;
        memcpy(j->err + j->errlen, buf, n);
        j->errlen += n;
    }
}

/* Collects the run of job j, whose child has exited with `status`; ends what the test left running in
 * its process group (a helper server, a sample). */
static void finish_run(job *j, int status, run_result *r) {
    kill(-j->pid, SIGKILL);
    pump(j);
    j->err[j->errlen] = '\0';
    close(j->errfd);
    r->status = status;
    r->slot = slots[j->slot];
    memcpy(r->err, j->err, j->errlen < sizeof r->err ? j->errlen + 1 : sizeof r->err);
    r->err[sizeof r->err - 1] = '\0';
}

/* The points of a range 1..count to place faults at: all of them, or max spread evenly. */
static unsigned long nth_point(unsigned long i, unsigned long count, unsigned long max) {
    if (count <= max) return i + 1;
    if (i < max / 2) return i + 1; /* the first ones densely: setup paths */
    return max / 2 + 1 + (i - max / 2) * (count - max / 2 - 1) / (max - max / 2 - 1 ? max - max / 2 - 1 : 1);
}

typedef struct test_state {
    const test_case *tc;
    int phase; /* 0 baseline, 1 sweeping, 2 done */
    unsigned long count, i, points;
    unsigned runs, outcomes[R_COUNT];
    bool baseline_failed;
} test_state;

#define MAX_SITES 512
static uintptr_t sites[MAX_SITES];
static unsigned nsites;
static unsigned long total_runs, total_faults, total_defects, outcome_total[R_COUNT];
static bool verbose;

static void note_site(uintptr_t s) {
    unsigned i;
    for (i = 0; i < nsites; i++)
        if (sites[i] == s) return;
    if (nsites < MAX_SITES) sites[nsites++] = s;
}

static const char *mode_name(int m) {
    return m == MODE_ALLOC ? "alloc" : m == MODE_CANCEL_MAIN ? "cancel-main" : m == MODE_CANCEL_EACH ? "cancel-each"
                                                                                                    : "census";
}

/* Records a finished run of test s; returns true if s has more runs to make. */
static void record(test_state *s, int m, const job *j, const run_result *r, unsigned long max) {
    int o = classify(r);
    total_runs++;
    if (s->phase == 0) { /* the baseline: counts the test's allocations and suspensions */
        s->count = m == MODE_ALLOC ? r->slot.allocs : r->slot.suspensions;
        if (o != R_PASS) {
            s->baseline_failed = true;
            outcome_total[o]++;
            if (o >= R_CENSUS) {
                total_defects++;
                printf("DEFECT %s (baseline, no fault): %s\n%s%s", s->tc->name, outcome_names[o], r->slot.census_msg,
                       r->err);
            } else if (o == R_SKIPPED) { /* its reason: test_skip's "    skipped: REASON" line */
                const char *why = strstr(r->err, "skipped: ");
                printf("skip   %s: %.*s\n", s->tc->name, why ? (int)strcspn(why + 9, "\n") : 0, why ? why + 9 : "");
            } else {
                printf("skip   %s: fails without a fault (%s)\n", s->tc->name, outcome_names[o]);
            }
            s->phase = 2;
            return;
        }
        s->points = m == MODE_NONE ? 0 : (s->count < max ? s->count : max);
        s->phase = s->points ? 1 : 2;
        if (verbose) printf("base   %s: %lu %s\n", s->tc->name, s->count, m == MODE_ALLOC ? "allocations" : "suspensions");
        return;
    }
    s->runs++;
    s->outcomes[o]++;
    outcome_total[o]++;
    if (r->slot.fired) total_faults++;
    if (m == MODE_ALLOC && r->slot.fired) note_site(r->slot.site);
    if (o >= R_CENSUS) {
        total_defects++;
        printf("DEFECT %s (%s at %lu): %s\n%s%s\n", s->tc->name, mode_name(m), j->n, outcome_names[o],
               r->slot.census_msg, r->err);
    } else if (verbose) {
        printf("       %s %s=%lu: %s%s\n", s->tc->name, mode_name(m), j->n, outcome_names[o],
               r->slot.fired ? "" : " (not reached)");
    }
    if (++s->i >= s->points || (!r->slot.fired && s->count <= max)) s->phase = 2;
}

/* True if the test carries one of INJECT_SKIP_TAGS's tags, or its name contains one of INJECT_SKIP's
 * comma-separated parts. */
static bool skipped(const test_case *tc) {
    const char *name = tc->name, *tags = getenv("INJECT_SKIP_TAGS"), *bad;
    const char *p = getenv("INJECT_SKIP");
    if (tags && (tc->tags & test_tag_mask(tags, &bad))) return true;
    while (p && *p) {
        size_t n = strcspn(p, ",");
        const char *q;
        for (q = name; n && *q; q++)
            if (strncmp(q, p, n) == 0) return true;
        p += n;
        if (*p) p++;
    }
    return false;
}

static test_state *states; /* globals: a child's LeakSanitizer must see them */
static job *js;

static void print_sites(const char *self) {
    char cmd[8192];
    unsigned i;
    size_t len;
    FILE *p;
    if (!nsites) return;
    len = (size_t)snprintf(cmd, sizeof cmd, "addr2line -f -s -e %s", self);
    for (i = 0; i < nsites && len + 24 < sizeof cmd; i++)
        len += (size_t)snprintf(cmd + len, sizeof cmd - len, " 0x%lx", (unsigned long)(sites[i] - 1));
    p = popen(cmd, "r");
    if (!p) return;
    printf("allocation sites failed (%u):\n", nsites);
    while (fgets(cmd, sizeof cmd, p)) {
        char loc[1024];
        cmd[strcspn(cmd, "\n")] = '\0';
        if (!fgets(loc, sizeof loc, p)) break;
        loc[strcspn(loc, "\n")] = '\0';
        printf("  %-40s %s\n", cmd, loc);
    }
    pclose(p);
}

int main(int argc, char **argv) {
    const char *filter = argc > 2 ? argv[2] : NULL, *env, *bad;
    unsigned long max = 120;
    unsigned jobs = 2, nstates = 0, next = 0, running = 0, k;
    int m;
    size_t s;
    bool prefix = false;
    const test_case *tc;
    double t0 = now_s();
    if (argc < 2) {
        fprintf(stderr, "usage: %s alloc|cancel-main|cancel-each|census [filter]\n", argv[0]);
        return 2;
    }
    m = !strcmp(argv[1], "alloc") ? MODE_ALLOC : !strcmp(argv[1], "cancel-main") ? MODE_CANCEL_MAIN
        : !strcmp(argv[1], "cancel-each") ? MODE_CANCEL_EACH : !strcmp(argv[1], "census") ? MODE_NONE : -1;
    if (m < 0) {
        fprintf(stderr, "inject: unknown mode %s\n", argv[1]);
        return 2;
    }
    if ((env = getenv("INJECT_MAX")) && atol(env) > 1) max = (unsigned long)atol(env);
    if ((env = getenv("INJECT_JOBS")) && atoi(env) > 0) jobs = (unsigned)atoi(env);
    if (jobs > INJECT_SLOTS) jobs = INJECT_SLOTS;
    if ((env = getenv("INJECT_TIMEOUT")) && atoi(env) > 0) timeout_s = (unsigned)atoi(env);
    verbose = (env = getenv("INJECT_VERBOSE")) && *env == '1';
    slots = (inject_slot *)mmap(NULL, INJECT_SLOTS * sizeof *slots, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                                -1, 0);
    states = (test_state *)calloc(1024, sizeof *states);
    js = (job *)calloc(INJECT_SLOTS, sizeof *js);
    if (slots == MAP_FAILED || !states || !js) {
        fprintf(stderr, "inject: out of memory\n");
        return 2;
    }
    if ((env = getenv("INJECT_SKIP_TAGS")) && (test_tag_mask(env, &bad), bad)) {
        fprintf(stderr, "inject: unknown tag in INJECT_SKIP_TAGS=%s\n", env);
        return 2;
    }
    /* the filter as the runner takes it: the names that begin with it, or else those that contain it */
    for (s = 0; filter && test_list[s]; s++)
        if (strncmp(test_list[s]->name, filter, strlen(filter)) == 0) prefix = true;
    /* the compile_fail suite runs the compiler, not the library: there is nothing to inject */
    for (s = 0; (tc = test_list[s]) != NULL && nstates < 1024; s++)
        if ((!filter || (prefix ? strncmp(tc->name, filter, strlen(filter)) == 0 : strstr(tc->name, filter) != NULL)) &&
            strncmp(tc->name, "compile_fail_", 13) != 0 && !skipped(tc))
            states[nstates++].tc = tc;
    for (k = 0; k < jobs; k++) js[k].pid = 0;
    /* up to `jobs` tests at once; one test's runs one after the other (the next point depends on the last) */
    for (;;) {
        unsigned free_slot;
        run_result r;
        while (running < jobs && next < nstates) {
            test_state *st = &states[next];
            for (free_slot = 0; js[free_slot].pid; free_slot++) {}
            start_run(&js[free_slot], st->tc, MODE_NONE, 0, (int)free_slot); /* the baseline first */
            js[free_slot].tc = st->tc;
            running++;
            next++;
        }
        if (!running) break;
        {
            struct pollfd pfd[INJECT_SLOTS];
            unsigned n = 0, done = jobs;
            int status = 0;
            for (k = 0; k < jobs; k++)
                if (js[k].pid) {
                    pfd[n].fd = js[k].errfd;
                    pfd[n++].events = POLLIN;
                }
            poll(pfd, n, 20);
            for (k = 0; k < jobs; k++) {
                if (!js[k].pid) continue;
                pump(&js[k]);
                if (done == jobs && waitpid(js[k].pid, &status, WNOHANG) == js[k].pid) done = k;
            }
            if (done == jobs) continue;
            k = done;
            finish_run(&js[k], status, &r);
        }
        {
            test_state *st;
            js[k].pid = 0;
            running--;
            for (st = states; st->tc != js[k].tc; st++) {}
            record(st, m, &js[k], &r, max);
            if (st->phase == 1) { /* its next point, in the same slot */
                start_run(&js[k], st->tc, m, nth_point(st->i, st->count, max), (int)k);
                running++;
            } else {
                printf("%-4s %s: %u run%s", st->baseline_failed ? "--" : "ok", st->tc->name, st->runs,
                       st->runs == 1 ? "" : "s");
                if (st->runs)
                    printf(" (%lu %s, %u passed, %u failed cleanly)", st->count,
                           m == MODE_ALLOC ? "allocations" : "suspensions", st->outcomes[R_PASS], st->outcomes[R_FAILED]);
                printf("\n");
            }
            fflush(stdout);
        }
    }
    printf("inject %s: %u tests, %lu runs, %lu faults placed, %.1f s\n", mode_name(m), nstates, total_runs,
           total_faults, now_s() - t0);
    for (k = 0; k < R_COUNT; k++)
        if (outcome_total[k]) printf("  %-22s %lu\n", outcome_names[k], outcome_total[k]);
    if (m == MODE_ALLOC) print_sites(argv[0]);
    printf("%lu defect%s\n", total_defects, total_defects == 1 ? "" : "s");
    return total_defects ? 1 : 0;
}
