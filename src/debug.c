/* Debug mode: steps that block the loop, a dump of every live task with its await chain (a backtrace
 * for stackless code), tasks never started. Built on the core's loop hooks, so a loop without debug
 * mode pays one branch per step and nothing else. The hooks are shared with the trace (trace.c) through
 * the chain at the end of this file (internal.h: async__hooks_add).
 *
 * Live tasks are kept in a hash table keyed by the task's address: a scheduled task enters at its
 * first step, a coroutine awaited inline when it starts, and each leaves when it finishes (before its
 * frame can be reused). An entry also knows the inline child its task awaits, so the innermost
 * coroutine of a step (where it really resumed) is one walk down the chain. */
#define _POSIX_C_SOURCE 200809L
#include "backend.h"
#include "internal.h"
#include "taskmap.h"

#include <signal.h>
#include <stdlib.h>
#include <time.h>

typedef struct debug_entry {
    async_task *task;  /* first: an entry of the task table (taskmap.h) */
    async_task *child; /* the coroutine it awaits inline, if any */
    uint64_t start_ns; /* a coroutine awaited inline: when it started */
} debug_entry;

typedef struct debug_where {
    const char *file, *function;
    unsigned line;
} debug_where;

typedef struct async__debug {
    async__part part; /* attached to a hosted loop, which frees it (a loop of the core's has none) */
    async__hooks_user user; /* its place in the loop's hooks */
    async_loop *loop;
    FILE *out;
    uint64_t slow_ns; /* the slow-step threshold */
    async__taskmap tasks; /* debug_entry by task: the live ones */
    bool oom_noted;
    /* the step in progress */
    uint64_t step_ns;
    debug_where resumed;
    bool reported; /* a coroutine of this step was already reported as the one that blocked */
    bool in_step;  /* between step_begin and step_end */
    bool off;      /* switched off during a step: the hooks go when it ends (see async_loop_set_debug) */
    async__req sigquit; /* a signal request of the loop's backend */
    bool sigquit_on;
} async__debug;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static async__debug *debug_of(const async_loop *loop);
static void debug_free(async_loop *loop, async__debug *d);

/* ---- the table of live tasks ---- */

static debug_entry *find(async__debug *d, const async_task *t) { return (debug_entry *)async__taskmap_find(&d->tasks, t); }

static debug_entry *add(async__debug *d, async_task *t) {
    debug_entry *e = (debug_entry *)async__taskmap_add(&d->tasks, t, NULL);
    if (!e && !d->oom_noted) {
        fprintf(d->out, "async: debug: out of memory; the task dump will be incomplete\n");
        d->oom_noted = true;
    }
    return e;
}

static void del(async__debug *d, const async_task *t) {
    debug_entry *e = find(d, t);
    if (e) async__taskmap_del(&d->tasks, e);
}

/* ---- describing a task ---- */

static debug_where where_of(async_task *t) {
    debug_where w = {"?", "?", 0};
    async_task_where(t, &w.file, &w.function, &w.line);
    return w;
}

/* The innermost coroutine of the chain that t runs (t itself when it awaits nothing inline). */
static async_task *innermost(async__debug *d, async_task *t) {
    debug_entry *e;
    unsigned depth = 0;
    while ((e = find(d, t)) && e->child && e->child != t && depth++ < 1000) t = e->child;
    return t;
}

/* ---- hooks ---- */

static void step_begin(async_loop *loop, async_task *t) {
    async__debug *d = debug_of(loop);
    add(d, t);
    d->resumed = where_of(innermost(d, t));
    d->reported = false;
    d->in_step = true;
    d->step_ns = now_ns();
}

static void step_end(async_loop *loop, async_task *t) {
    async__debug *d = debug_of(loop);
    uint64_t ns = now_ns() - d->step_ns;
    d->in_step = false;
    if (d->off) { /* the step switched debug mode off: the core is done with the hooks now */
        async__loop_detach(loop, &d->part);
        debug_free(loop, d);
        return;
    }
    if (ns >= d->slow_ns && !d->reported) {
        debug_where s = {"?", "?", 0};
        bool done = async_task_done(t);
        if (!done) s = where_of(innermost(d, t));
        fprintf(d->out, "async: debug: a step of %s (%s) blocked the loop for %lu ms: resumed at %s:%u in %s, %s",
                d->resumed.function, async_task_name(t), (unsigned long)(ns / 1000000u), d->resumed.file,
                d->resumed.line, d->resumed.function, done ? "then finished" : "next suspended at ");
        if (!done) fprintf(d->out, "%s:%u in %s", s.file, s.line, s.function);
        fputc('\n', d->out);
        fflush(d->out);
    }
}

static void task_done(async_loop *loop, async_task *t) {
    async__debug *d = debug_of(loop);
    async_task *parent = async_task_parent(t);
    debug_entry *pe = parent ? find(d, parent) : NULL, *e = find(d, t);
    if (e && e->start_ns >= d->step_ns && pe && pe->child == t) {
        /* a coroutine that started and ended inside this step: if the step was slow, it is the culprit */
        uint64_t ns = now_ns() - e->start_ns;
        if (ns >= d->slow_ns) {
            debug_where w = where_of(t), p = where_of(parent);
            fprintf(d->out, "async: debug: %s (%s) blocked the loop for %lu ms without awaiting, called from %s:%u in %s\n",
                    w.function, w.file, (unsigned long)(ns / 1000000u), p.file, p.line, p.function);
            fflush(d->out);
            d->reported = true;
        }
    }
    if (pe && pe->child == t) pe->child = NULL;
    del(d, t);
}

static void inline_start(async_loop *loop, async_task *parent, async_task *child) {
    async__debug *d = debug_of(loop);
    debug_entry *pe = add(d, parent), *ce;
    if (pe) pe->child = child;
    ce = add(d, child);
    if (ce) ce->start_ns = now_ns();
}

static const async_loop_hooks debug_hooks = {
    .step_begin = step_begin, .step_end = step_end, .task_done = task_done, .inline_start = inline_start};

static async__debug *debug_of(const async_loop *loop) { return (async__debug *)async__hooks_ctx(loop, &debug_hooks); }

/* ---- the dump ---- */

typedef struct dump_node {
    async_task *parent, *task;
} dump_node;

static int by_parent(const void *a, const void *b) {
    uintptr_t x = (uintptr_t)((const dump_node *)a)->parent, y = (uintptr_t)((const dump_node *)b)->parent;
    return x < y ? -1 : x > y;
}

static int by_parent_then_task(const void *a, const void *b) {
    uintptr_t x = (uintptr_t)((const dump_node *)a)->task, y = (uintptr_t)((const dump_node *)b)->task;
    int c = by_parent(a, b);
    return c ? c : (x < y ? -1 : x > y);
}

/* What t does: a coroutine awaited inline shares its task's state, seen from the task that runs it. */
static const char *state_of(async__debug *d, async_task *t) {
    debug_entry *e = find(d, t), *pe;
    async_task *runner = t, *parent;
    unsigned depth = 0;
    if (e && e->child) return "awaiting inline";
    while ((parent = async_task_parent(runner)) && (pe = find(d, parent)) && pe->child == runner && depth++ < 1000)
        runner = parent;
    return async_task_state(runner);
}

static void dump_tree(async__debug *d, FILE *out, dump_node *nodes, size_t n, async_task *parent, unsigned depth) {
    dump_node key, *first;
    size_t lo = 0, hi = n;
    key.parent = parent;
    while (lo < hi) { /* the first node whose parent is `parent` */
        size_t mid = (lo + hi) / 2;
        if (by_parent(&nodes[mid], &key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (first = nodes + lo; first < nodes + n && first->parent == parent; first++) {
        async_task *t = first->task;
        debug_where w = where_of(t);
        fprintf(out, "%*s%s %s:%u (%s)%s%s\n", (int)(2 + 2 * depth), "", w.function, w.file, w.line,
                state_of(d, t), ASYNC_CONFIG_TASK_NAMES ? " " : "",
                ASYNC_CONFIG_TASK_NAMES ? async_task_name(t) : "");
        if (depth < 64) dump_tree(d, out, nodes, n, t, depth + 1);
    }
}

void async_loop_dump(async_loop *loop, FILE *out) {
    async__debug *d = debug_of(loop);
    dump_node *nodes;
    size_t i, n = 0;
    if (!loop) return;
    if (!out) out = stderr;
    if (!d) {
        fprintf(out, "async: dump: debug mode is off (ASYNC_DEBUG=1 or async_loop_set_debug)\n");
        return;
    }
    nodes = (dump_node *)malloc((d->tasks.live ? d->tasks.live : 1) * sizeof *nodes);
    if (!nodes) {
        fprintf(out, "async: dump: out of memory\n");
        return;
    }
    for (i = 0; i < d->tasks.cap; i++) {
        debug_entry *e = (debug_entry *)async__taskmap_at(&d->tasks, i);
        async_task *t = e ? e->task : NULL;
        if (!t || async_task_done(t)) continue;
        nodes[n].task = t;
        nodes[n].parent = async_task_parent(t);
        if (nodes[n].parent && !find(d, nodes[n].parent)) nodes[n].parent = NULL; /* shown as a root */
        n++;
    }
    qsort(nodes, n, sizeof *nodes, by_parent_then_task);
    fprintf(out, "async: %lu live task%s at %lu ms\n", (unsigned long)n, n == 1 ? "" : "s",
            (unsigned long)async_loop_now(loop));
    dump_tree(d, out, nodes, n, NULL, 0);
    fflush(out);
    free(nodes);
}

/* ---- switching it on and off ---- */

static void sigquit_cb(async__req *r, int signum) {
    async__debug *d = (async__debug *)(void *)((char *)r - offsetof(async__debug, sigquit));
    (void)signum;
    async_loop_dump(d->loop, d->out);
}

static const char debug_kind = 0; /* tags its part */

/* At loop free. */
static void free_part(async_loop *loop, async__part *part) {
    debug_free(loop, (async__debug *)(void *)((char *)part - offsetof(async__debug, part)));
}

int async_loop_set_debug(async_loop *loop, bool on) {
    async__debug *d;
    if (!loop) return ASYNC_EINVAL;
    d = debug_of(loop);
    if (d && d->off) { /* switched off earlier in this step: on again keeps it */
        d->off = !on;
        return 0;
    }
    if (on == (d != NULL)) return 0;
    if (!on) {
        /* From inside a task's step the hooks must stay until step_end: the core calls it through the
         * hooks after the step (removing them now made that a NULL dereference). */
        if (d->in_step) {
            d->off = true;
        } else {
            async__loop_detach(loop, &d->part);
            debug_free(loop, d);
        }
        return 0;
    }
    d = (async__debug *)calloc(1, sizeof *d);
    if (!d) return ASYNC_ENOMEM;
    d->loop = loop;
    async__taskmap_init(&d->tasks, NULL, sizeof(debug_entry), 0); /* its memory at the first task */
    d->out = stderr;
    d->slow_ns = 100 * 1000000u;
    d->user.hooks = &debug_hooks;
    d->user.ctx = d;
    if (async__hooks_add(loop, &d->user)) { /* someone else's hooks are installed */
        free(d);
        return ASYNC_EBUSY;
    }
    /* a hosted loop frees it; a loop of the core's has no place for it (freed when switched off) */
    async__loop_attach(loop, &d->part, &debug_kind, ASYNC__STAGE_REPORT, free_part);
    return 0;
}

bool async_loop_debug(const async_loop *loop) {
    const async__debug *d = debug_of(loop);
    return d && !d->off;
}

void async_loop_set_slow_step(async_loop *loop, uint64_t ms) {
    async__debug *d = debug_of(loop);
    /* in ns without wrapping: a threshold past 584 years is never reached, as it should not be */
    if (d) d->slow_ns = ms > UINT64_MAX / 1000000u ? UINT64_MAX : ms * 1000000u;
}

void async_loop_set_debug_output(async_loop *loop, FILE *out) {
    async__debug *d = debug_of(loop);
    if (d) d->out = out ? out : stderr;
}

int async_loop_dump_on_sigquit(async_loop *loop) {
    async__debug *d = debug_of(loop);
    int rc;
    if (!d) return ASYNC_EINVAL;
    if (d->sigquit_on) return 0;
    d->sigquit.cb = sigquit_cb;
    d->sigquit.kind = ASYNC__REQ_SIGNAL;
    d->sigquit.fd = SIGQUIT;
    rc = async__req_start(loop, &d->sigquit, -1); /* ASYNC_ENOTSUP on a loop without a backend */
    if (rc) return rc;
    d->sigquit_on = true;
    return 0;
}

/* At loop free or when switched off (d detached already): tasks that never ran their first step are
 * reported, then d goes. */
static void debug_free(async_loop *loop, async__debug *d) {
    async_task *t;
    for (t = async_loop_ready_next(loop, NULL); t; t = async_loop_ready_next(loop, t)) {
        if (!async_task_started(t) && !async_task_done(t)) {
            debug_where w = where_of(t);
            fprintf(d->out, "async: debug: task %s (%s, %s) was never started\n", w.function, async_task_name(t),
                    w.file);
        }
    }
    if (d->sigquit_on) async__req_stop(loop, &d->sigquit);
    /* (nothing if someone replaced the loop's hooks meanwhile: a test's own, a fault injector's) */
    async__hooks_remove(loop, &d->user);
    async__taskmap_free(&d->tasks);
    free(d);
}

/* ---- the loop's hooks, shared: a chain of the instruments that are on ----
 * The loop's ctx is the first instrument's node; each hook of the chain calls the instruments' in the
 * order they were added. An instrument removed by its own hook (debug mode switched off in a step) is
 * already passed: the walk keeps the next node before each call. */

static const async_loop_hooks chain_hooks;

static async__hooks_user *chain_head(const async_loop *loop) {
    return async_loop_get_hooks(loop) == &chain_hooks ? (async__hooks_user *)async_loop_hooks_ctx(loop) : NULL;
}

#define CHAIN_CALL(loop, hook, ...)                                                                   \
    do {                                                                                              \
        async__hooks_user *u_, *next_;                                                                \
        for (u_ = chain_head(loop); u_; u_ = next_) {                                                 \
            next_ = u_->next;                                                                         \
            if (u_->hooks->hook) u_->hooks->hook(__VA_ARGS__);                                        \
        }                                                                                             \
    } while (0)

static void chain_step_begin(async_loop *loop, async_task *t) { CHAIN_CALL(loop, step_begin, loop, t); }
static void chain_step_end(async_loop *loop, async_task *t) { CHAIN_CALL(loop, step_end, loop, t); }
static void chain_task_done(async_loop *loop, async_task *t) { CHAIN_CALL(loop, task_done, loop, t); }
static void chain_inline_start(async_loop *loop, async_task *parent, async_task *child) {
    CHAIN_CALL(loop, inline_start, loop, parent, child);
}
static void chain_wake(async_loop *loop, async_task *t, async_task *by) { CHAIN_CALL(loop, wake, loop, t, by); }
static void chain_wait(async_loop *loop, async_task *t, async_wait_kind kind, const void *object) {
    CHAIN_CALL(loop, wait, loop, t, kind, object);
}
static void chain_error(async_loop *loop, async_task *t, const async_error *e) { CHAIN_CALL(loop, error, loop, t, e); }
static void chain_cancel(async_loop *loop, async_task *t, async_task *by) { CHAIN_CALL(loop, cancel, loop, t, by); }

static const async_loop_hooks chain_hooks = {.step_begin = chain_step_begin,
                                             .step_end = chain_step_end,
                                             .task_done = chain_task_done,
                                             .inline_start = chain_inline_start,
                                             .wake = chain_wake,
                                             .wait = chain_wait,
                                             .error = chain_error,
                                             .cancel = chain_cancel};

int async__hooks_add(async_loop *loop, async__hooks_user *u) {
    async__hooks_user *head = chain_head(loop), **pp;
    if (!head) {
        if (async_loop_get_hooks(loop)) return ASYNC_EBUSY;
        u->next = NULL;
        async_loop_set_hooks(loop, &chain_hooks, u);
        return 0;
    }
    for (pp = &head->next; *pp; pp = &(*pp)->next) {}
    u->next = NULL;
    *pp = u;
    return 0;
}

void async__hooks_remove(async_loop *loop, async__hooks_user *u) {
    async__hooks_user *head = chain_head(loop), **pp;
    for (pp = &head; *pp; pp = &(*pp)->next) {
        if (*pp != u) continue;
        *pp = u->next; /* u->next stays: a walk of the chain that is at u goes on from it */
        if (head)
            async_loop_set_hooks(loop, &chain_hooks, head);
        else
            async_loop_set_hooks(loop, NULL, NULL);
        return;
    }
}

void *async__hooks_ctx(const async_loop *loop, const async_loop_hooks *hooks) {
    async__hooks_user *u;
    for (u = chain_head(loop); u; u = u->next)
        if (u->hooks == hooks) return u->ctx;
    return NULL;
}
