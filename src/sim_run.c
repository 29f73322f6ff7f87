/* The runner of seeds: a scenario runs on a fresh simulated loop per seed, then the runner checks what
 * every run must leave behind (the census: every task that ran has ended, nothing ready, no timer, no
 * event of the world still to come, no task waiting on a descriptor, no socket or file of the world left
 * open, every block the loop's allocator gave back), and the scenario's own checks. A failing seed is
 * printed with the command that replays it. The scenario may also be run twice with the first seed, to
 * see that the seed alone decides the run (the same hash). */
#define _POSIX_C_SOURCE 200809L
#include "sim.h"
#include "internal.h"
#include "taskmap.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- the census of tasks: every task that ran a step, until it ends (the loop's hooks) ---- */

typedef struct run_state {
    async__taskmap live; /* tasks that ran a step and have not ended (entries: the task alone) */
    long blocks;         /* blocks the loop's allocator holds */
    bool oom;            /* the table could not grow: the census of tasks is incomplete */
} run_state;

static const async_loop_hooks run_hooks;

static void hook_step(async_loop *loop, async_task *t) {
    run_state *st = (run_state *)async__hooks_ctx(loop, &run_hooks);
    if (!async_task_done(t) && !async__taskmap_add(&st->live, t, NULL)) st->oom = true;
}

static void hook_done(async_loop *loop, async_task *t) {
    run_state *st = (run_state *)async__hooks_ctx(loop, &run_hooks);
    void *e = async__taskmap_find(&st->live, t);
    if (e) async__taskmap_del(&st->live, e);
}

static void hook_inline(async_loop *loop, async_task *parent, async_task *child) {
    (void)parent;
    hook_step(loop, child);
}

static const async_loop_hooks run_hooks = {hook_step, NULL, hook_done, hook_inline, NULL, NULL, NULL, NULL};

/* The loop's allocator, counted: what a run leaves allocated is a leak. */
static void *counted(void *ctx, void *p, size_t n) {
    run_state *st = (run_state *)ctx;
    void *q;
    if (n == 0) {
        if (p) st->blocks--;
        free(p);
        return NULL;
    }
    q = realloc(p, n);
    if (q && !p) st->blocks++;
    return q;
}

/* ---- one seed ---- */

/* Appends to the failure's text. */
static void say(char *buf, size_t cap, const char *fmt, ...) {
    size_t len = strlen(buf);
    va_list ap;
    if (len + 1 >= cap) return;
    va_start(ap, fmt);
    vsnprintf(buf + len, cap - len, fmt, ap);
    va_end(ap);
}

/* Runs what is left until nothing can happen (bounded: a run that never settles is a failure too). The
 * loop's own wait (the hosted one: deferred calls, then the world's). */
static bool settle(async_loop *loop) {
    unsigned passes;
    for (passes = 0; passes < 1000000; passes++) {
        int32_t d = async_poll(loop);
        if (!loop->wait(loop, d) && d < 0) return true;
    }
    return false;
}

/* The tasks that never ended, as the failure shows them: the first three by their text (not by the
 * set's order, which is their addresses': a replay of the seed prints the same ones). */
static void show_live(const run_state *st, char *why, size_t cap) {
    char first[3][160], one[160];
    size_t i, n = 0, k;
    for (i = 0; i < st->live.cap; i++) {
        async_task **e = (async_task **)async__taskmap_at(&st->live, i), *t;
        const char *file = "?", *fn = "?";
        unsigned line = 0;
        if (!e) continue;
        t = *e;
        async_task_where(t, &file, &fn, &line);
        snprintf(one, sizeof one, " %s (%s:%u, %s)", fn ? fn : "?", file ? file : "?", line, async_task_state(t));
        for (k = n < 3 ? n : 3; k > 0 && strcmp(one, first[k - 1]) < 0; k--)
            if (k < 3) memcpy(first[k], first[k - 1], sizeof one);
        if (k < 3) memcpy(first[k], one, sizeof one);
        if (n < 3) n++;
    }
    for (k = 0; k < n; k++) say(why, cap, "%s", first[k]);
}

static void census(async_loop *loop, run_state *st, char *why, size_t cap) {
    async_sim_census c;
    async_sim_census_of(loop, &c);
    if (st->live.live) {
        say(why, cap, "%lu task(s) never ended:", (unsigned long)st->live.live);
        show_live(st, why, cap);
        say(why, cap, "; ");
    }
    if (c.ready) say(why, cap, "tasks still ready; ");
    if (c.timers) say(why, cap, "%u timer(s) still set; ", c.timers);
    if (c.polls) say(why, cap, "%u wait(s) on descriptors; ", c.polls);
    if (c.sockets) say(why, cap, "%u socket(s) of the world still open; ", c.sockets);
    if (c.files) say(why, cap, "%u file(s) of the world still open; ", c.files);
    if (c.events) say(why, cap, "%u event(s) of the world still to come; ", c.events);
}

/* Runs s with seed: 0 and its hash in *hash, or the failure's text in why. */
static int run_one(const async_sim_scenario *s, uint64_t seed, const char *trace, uint64_t *hash,
                   uint64_t *events, char *why, size_t cap) {
    async_sim_options o = async_sim_defaults(seed);
    run_state st;
    async__hooks_user census_hooks;
    async_loop *loop;
    const char *own = NULL;
    int rc;
    memset(&st, 0, sizeof st);
    why[0] = '\0';
    if (s->options) s->options(&o, seed, s->arg);
    o.seed = seed;
    loop = async_sim_new(&o);
    if (!loop) {
        say(why, cap, "no simulated loop (out of memory, or the scenario's options are out of range)");
        return ASYNC_ENOMEM;
    }
    async_loop_set_allocator(loop, counted, &st);
    /* malloc's memory, not the loop's: the census outlives the loop, whose allocator counts leaks */
    if (async__taskmap_init(&st.live, NULL, sizeof(async_task *), 256)) st.oom = true;
    census_hooks.hooks = &run_hooks;
    census_hooks.ctx = &st;
    if (async__hooks_add(loop, &census_hooks)) say(why, cap, "(the census of tasks is off: the loop has hooks of its own) ");
    if (trace && (rc = async_loop_trace_start(loop, trace)) != 0)
        say(why, cap, "the trace could not be written to %s (%s); ", trace, async_strerror(rc));
    rc = s->run(loop, s->arg, &own);
    if (rc) say(why, cap, "%s (%d); ", own ? own : async_strerror(rc), rc);
    if (!settle(loop)) say(why, cap, "the world never settled; ");
    census(loop, &st, why, cap);
    if (trace) async_loop_trace_stop(loop);
    *hash = async_sim_hash(loop);
    *events = async_sim_events(loop);
    async__hooks_remove(loop, &census_hooks);
    async_loop_free(loop);
    if (st.blocks) say(why, cap, "%ld block(s) of the loop's memory never freed; ", st.blocks);
    if (st.oom) say(why, cap, "(the census of tasks ran out of memory) ");
    async__taskmap_free(&st.live);
    return why[0] ? (rc ? rc : ASYNC_EIO) : 0;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int async_sim_run(const async_sim_scenario *s, const async_sim_run_options *o, async_sim_result *res) {
    static const async_sim_run_options none;
    FILE *out;
    async_sim_result r;
    char why[1024];
    uint64_t i, count, hash, events, hash2, events2;
    double t0 = now_s();
    if (!s || !s->run || !s->name) return ASYNC_EINVAL;
    if (!o) o = &none;
    out = o->out ? o->out : stderr;
    count = o->seeds ? o->seeds : 1;
    memset(&r, 0, sizeof r);
    for (i = 0; i < count; i++) {
        uint64_t seed = o->first_seed + i;
        int rc = run_one(s, seed, o->trace, &hash, &events, why, sizeof why);
        r.seeds_run++;
        r.events += events;
        r.last_hash = hash;
        if (!rc && o->check_determinism && i == 0) { /* the seed alone decides: a second run, the same hash */
            rc = run_one(s, seed, o->trace, &hash2, &events2, why, sizeof why);
            if (!rc && (hash2 != hash || events2 != events)) {
                snprintf(why, sizeof why, "not deterministic: hash %016llx then %016llx", (unsigned long long)hash,
                         (unsigned long long)hash2);
                rc = ASYNC_EIO;
            }
        }
        if (!rc) continue;
        if (!r.failed) r.first_failed_seed = seed;
        r.failed++;
        fprintf(out, "sim %s: seed %llu FAILED: %s\n", s->name, (unsigned long long)seed, why);
        if (o->replay) {
            fprintf(out, "  replay: ");
            fprintf(out, o->replay, s->name, (unsigned long long)seed);
            fputc('\n', out);
        }
        if (!o->keep_going) break;
    }
    r.seconds = now_s() - t0;
    if (res) *res = r;
    return r.failed ? ASYNC_EIO : 0;
}
