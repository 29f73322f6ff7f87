/* The task timeline: a loop's steps, waits, wake-ups, errors and cancellations written as Chrome
 * trace-event JSON, which Perfetto (ui.perfetto.dev) and chrome://tracing open. Built on the core's loop
 * hooks alone (shared with debug mode through internal.h's chain) and on the loop's clock, so it works
 * the same on every backend, real or virtual.
 *
 * What a trace holds (pid 1 is the loop; a track, "tid", per task, numbered from 1 in order of first
 * sight and named by the task's coroutine function and number, or its name when it has one):
 *   - a complete event ("X", cat "step") per step, named by the coroutine function, with args
 *     resumed (file:line where the step began, in the innermost coroutine the task runs) and suspended
 *     (file:line where it stopped) or finished (its code and message);
 *   - a wait slice (B at the suspension, E at the wake-up, cat "wait") named by the task's state
 *     ("sleep", "await task", "await children", "wait", "yield"), whose end tells what it waited for
 *     (args for: sleep, task, children, future, lock, event, condition, semaphore, queue, generator,
 *     cancel; object; woken_by);
 *   - flow arrows (s on the waker's step, f bound to the woken task's next step): who woke whom, a
 *     spawn or a group's start included;
 *   - instants ("i", thread scope) for each error raised (code, message) and each cancellation asked.
 * Timestamps are µs with ns digits. On a real clock: CLOCK_MONOTONIC from the trace's start. On the
 * virtual clock: the loop's virtual ms, plus one ns per event within the same ms, so that the events of
 * one ms keep their order and slices never overlap (a million events per virtual ms before the count
 * stops growing). Either way every timestamp is later than the one before.
 *
 * Cost: nothing while off beyond the core's hook branches; while on, about 150-200 ns per event (some
 * five per hand-over between tasks): formatted by hand into a 64 KiB buffer, written out with write(2)
 * when full, and a lookup in a table of live tasks. */
#define _POSIX_C_SOURCE 200809L
#include "backend.h"
#include "internal.h"
#include "taskmap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TRACE_BUF 65536u

/* A task that has a track: a scheduled one (a task of the loop or a group's child). */
typedef struct trace_track {
    async_task *task; /* first: an entry of the task table (taskmap.h) */
    async_task *leaf; /* the coroutine it awaits inline now (NULL: none) */
    uint32_t tid;
    uint32_t flow;  /* a wake-up's flow, to end at its next step (0: none) */
    const void *wait_obj;  /* what its coming wait is on (the wait hook), until step_end */
    uint8_t wait_kind;     /* an async_wait_kind */
    bool named;     /* its thread_name is written */
    bool waiting;   /* a wait slice is open */
    bool finished;  /* done: the slot goes at the end of its step */
} trace_track;

typedef struct async__trace {
    async__part part;       /* attached to a hosted loop, which ends it (a loop of the core's has none) */
    async__hooks_user user; /* its place in the loop's hooks */
    async_loop *loop;
    int fd;
    int error;      /* the first error met (a write, memory): async_loop_trace_stop returns it */
    bool first;     /* no event written yet */
    bool in_step;   /* between step_begin and step_end */
    bool virt;      /* the loop's virtual clock */
    uint64_t start_ns, last_ns;
    async_ms last_ms; /* virtual: the loop's time at the last event */
    uint64_t virt_ms; /* virtual: ms since the start */
    bool from_env;    /* started by ASYNC_TRACE */
    uint32_t next_tid, next_flow;
    async__taskmap tracks;  /* trace_track by task */
    /* the step in progress */
    uint64_t step_ns;
    char resumed[160];
    size_t len;
    char buf[TRACE_BUF];
} async__trace;

static const async_loop_hooks trace_hooks;
static async__trace *trace_of(const async_loop *loop) { return (async__trace *)async__hooks_ctx(loop, &trace_hooks); }

static void note_error(async__trace *tr, int code) {
    if (!tr->error) tr->error = code;
}

/* ---- output ---- */

static void flush(async__trace *tr) {
    size_t off = 0;
    while (off < tr->len && tr->fd >= 0) {
        ssize_t n = write(tr->fd, tr->buf + off, tr->len - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) { /* the rest is lost; the trace goes on counting, and stop says so */
            note_error(tr, n < 0 ? async__errno_code(errno) : ASYNC_EIO);
            close(tr->fd);
            tr->fd = -1;
            break;
        }
        off += (size_t)n;
    }
    tr->len = 0;
}

static void put(async__trace *tr, const char *s, size_t n) {
    while (n) {
        size_t room = TRACE_BUF - tr->len, k = n < room ? n : room;
        memcpy(tr->buf + tr->len, s, k);
        tr->len += k;
        s += k;
        n -= k;
        if (tr->len == TRACE_BUF) flush(tr);
    }
}

static void puts_(async__trace *tr, const char *s) { put(tr, s, strlen(s)); }

/* Text inside a JSON string: as it is, with what JSON forbids escaped. */
static void put_esc(async__trace *tr, const char *s) {
    static const char hex[] = "0123456789abcdef";
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        put(tr, run, (size_t)(s - run));
        run = s + 1;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            put(tr, e, 2);
        } else {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            put(tr, e, 6);
        }
    }
    put(tr, run, (size_t)(s - run));
}

/* A JSON string, quotes included. */
static void put_str(async__trace *tr, const char *s) {
    put(tr, "\"", 1);
    put_esc(tr, s);
    put(tr, "\"", 1);
}

/* Decimal and hexadecimal numbers, without printf's cost on the paths of every event. */
static void put_u64(async__trace *tr, uint64_t v) {
    char d[20];
    size_t n = sizeof d;
    do d[--n] = (char)('0' + v % 10u);
    while ((v /= 10u) != 0);
    put(tr, d + n, sizeof d - n);
}

static void put_int(async__trace *tr, long v) {
    if (v < 0) put(tr, "-", 1);
    put_u64(tr, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v);
}

/* ns as µs with three decimals */
static void put_us(async__trace *tr, uint64_t ns) {
    char frac[4] = {'.', (char)('0' + ns % 1000u / 100u), (char)('0' + ns % 100u / 10u), (char)('0' + ns % 10u)};
    put_u64(tr, ns / 1000u);
    put(tr, frac, 4);
}

static void put_ptr(async__trace *tr, const void *p) {
    static const char hex[] = "0123456789abcdef";
    char d[2 + 2 * sizeof(uintptr_t)];
    uintptr_t v = (uintptr_t)p;
    size_t n = sizeof d;
    do d[--n] = hex[v & 15u];
    while ((v >>= 4) != 0);
    d[--n] = 'x';
    d[--n] = '0';
    put(tr, "\"", 1);
    put(tr, d + n, sizeof d - n);
    put(tr, "\"", 1);
}

/* ---- time ---- */

static uint64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The timestamp of the next event, in ns from the trace's start: later than the last one (on the
 * virtual clock, until a million events fell in one ms: the rest of that ms stay at its last ns). */
static uint64_t stamp(async__trace *tr) {
    uint64_t ns;
    if (tr->virt) {
        async_ms ms = async_loop_now(tr->loop);
        uint64_t base;
        tr->virt_ms += (uint32_t)(ms - tr->last_ms); /* the 32-bit clock, unwrapped */
        tr->last_ms = ms;
        base = tr->virt_ms * 1000000u;
        ns = base > tr->last_ns ? base : tr->last_ns + 1;
        if (ns - base >= 1000000u) ns = tr->last_ns;
    } else {
        ns = mono_ns() - tr->start_ns;
        if (ns <= tr->last_ns) ns = tr->last_ns + 1;
    }
    tr->last_ns = ns;
    return ns;
}

/* The start of an event: separator, phase, track and time (µs with ns digits). */
static void put_head(async__trace *tr, const char *ph, uint32_t tid, uint64_t ns) {
    if (!tr->first) put(tr, ",\n", 2);
    puts_(tr, "{\"ph\":\"");
    puts_(tr, ph);
    puts_(tr, "\",\"pid\":1,\"tid\":");
    put_u64(tr, tid);
    puts_(tr, ",\"ts\":");
    put_us(tr, ns);
    tr->first = false;
}

/* ---- the tracks, by task ---- */

static trace_track *lookup(async__trace *tr, const async_task *t) {
    return (trace_track *)async__taskmap_find(&tr->tracks, t);
}

/* t's track, made if it has none (NULL only when out of memory: the event is left out and stop
 * reports ASYNC_ENOMEM). */
static trace_track *track(async__trace *tr, async_task *t) {
    bool made;
    trace_track *e = (trace_track *)async__taskmap_add(&tr->tracks, t, &made);
    if (!e) {
        note_error(tr, ASYNC_ENOMEM);
        return NULL;
    }
    if (made) e->tid = ++tr->next_tid;
    return e;
}

static void forget(async__trace *tr, trace_track *e) { async__taskmap_del(&tr->tracks, e); }

/* ---- describing ---- */

/* "file:line" of coroutine c (where it resumes next, or where it ended). */
static void where(async_task *c, char *out, size_t size) {
    const char *file = "?", *fn = "?";
    unsigned line = 0;
    size_t n, k = 0;
    char d[12];
    async_task_where(c, &file, &fn, &line);
    n = strlen(file);
    if (n > size - sizeof d - 1) n = size - sizeof d - 1;
    memcpy(out, file, n);
    out[n++] = ':';
    do d[k++] = (char)('0' + line % 10u);
    while ((line /= 10u) != 0);
    while (k) out[n++] = d[--k];
    out[n] = '\0';
}

static const char *function_of(async_task *t) {
    const char *fn = "?";
    async_task_where(t, NULL, &fn, NULL);
    return fn;
}

static void name_track(async__trace *tr, trace_track *e) {
    const char *name = async_task_name(e->task);
    put_head(tr, "M", e->tid, 0);
    puts_(tr, ",\"name\":\"thread_name\",\"args\":{\"name\":");
    if (strcmp(name, "task") != 0) {
        put_str(tr, name);
    } else {
        char label[160];
        snprintf(label, sizeof label, "%s #%lu", function_of(e->task), (unsigned long)e->tid);
        put_str(tr, label);
    }
    puts_(tr, "}}");
    put_head(tr, "M", e->tid, 0);
    puts_(tr, ",\"name\":\"thread_sort_index\",\"args\":{\"sort_index\":");
    put_u64(tr, e->tid);
    puts_(tr, "}}");
    e->named = true;
}

/* By async_wait_kind: the wait slice's name, and its "for". */
static const char *const wait_names[] = {"yield", "sleep", "await task", "await children", "wait (sync)",
                                         "wait (future)"};
static const char *const wait_fors[] = {"yield", "sleep", "task", "children",
                                        "lock, event, condition, semaphore or queue",
                                        "future: I/O, a thread call, a signal, a generator, ..."};

/* A wait slice's category and name, on its end as on its begin: the format lets an end go without its
 * name, but Chrome's DevTools (its Performance panel's parser) reads every event's name. */
static void put_wait_name(async__trace *tr, const trace_track *e) {
    puts_(tr, ",\"cat\":\"wait\",\"name\":");
    put_str(tr, wait_names[e->wait_kind]);
}

/* "key":"label" of the task a hook names as the cause (by): its function and track number. */
static void put_by(async__trace *tr, const char *key, async_task *by) {
    trace_track *b = by ? lookup(tr, by) : NULL;
    put(tr, "\"", 1);
    puts_(tr, key);
    put(tr, "\":\"", 3);
    if (!by) {
        puts_(tr, "the loop (a timer, a completion, itself)\"");
        return;
    }
    put_esc(tr, function_of(by));
    put(tr, " #", 2);
    put_u64(tr, b ? b->tid : 0);
    put(tr, "\"", 1);
}

/* Ends e's open wait at ns: woken by task `by`, or (NULL) outside a step: a timer, a completion. */
static void end_wait(async__trace *tr, trace_track *e, uint64_t ns, async_task *by) {
    put_head(tr, "E", e->tid, ns);
    put_wait_name(tr, e);
    puts_(tr, ",\"args\":{");
    put_by(tr, "woken_by", by);
    puts_(tr, "}}");
    e->waiting = false;
}

/* ---- hooks ---- */

static void h_step_begin(async_loop *loop, async_task *t) {
    async__trace *tr = trace_of(loop);
    trace_track *e = track(tr, t);
    uint64_t ns = stamp(tr);
    tr->in_step = true;
    tr->step_ns = ns;
    if (!e) return;
    if (!e->named) name_track(tr, e);
    /* made ready outside a step (a timer, a completion), or by itself (a yield) */
    if (e->waiting) end_wait(tr, e, ns, NULL);
    if (e->flow) {
        put_head(tr, "f", e->tid, ns);
        puts_(tr, ",\"bp\":\"e\",\"cat\":\"wake\",\"name\":\"wake\",\"id\":");
        put_u64(tr, e->flow);
        put(tr, "}", 1);
        e->flow = 0;
    }
    where(e->leaf ? e->leaf : t, tr->resumed, sizeof tr->resumed);
}

/* Writes the step of e that began at tr->step_ns as a complete event ending now. */
static void put_step(async__trace *tr, trace_track *e, uint64_t end) {
    async_task *t = e->task;
    put_head(tr, "X", e->tid, tr->step_ns);
    puts_(tr, ",\"dur\":");
    put_us(tr, end - tr->step_ns);
    puts_(tr, ",\"cat\":\"step\",\"name\":");
    put_str(tr, function_of(t));
    puts_(tr, ",\"args\":{\"resumed\":");
    put_str(tr, tr->resumed);
    if (async_task_done(t)) {
        /* (not its code: reading that would count as retrieving its error; the error instants tell) */
        puts_(tr, async_task_cancelled(t) ? ",\"finished\":\"cancelled\"" : ",\"finished\":\"done\"");
    } else {
        char s[160];
        where(e->leaf ? e->leaf : t, s, sizeof s);
        puts_(tr, ",\"suspended\":");
        put_str(tr, s);
        puts_(tr, ",\"state\":");
        put_str(tr, async_task_state(t));
    }
    puts_(tr, "}}");
}

static void h_step_end(async_loop *loop, async_task *t) {
    async__trace *tr = trace_of(loop);
    trace_track *e = lookup(tr, t);
    uint64_t ns = stamp(tr);
    tr->in_step = false;
    if (!e) return;
    put_step(tr, e, ns);
    if (e->finished || async_task_done(t)) {
        forget(tr, e);
        return;
    }
    /* it waits now: a slice until its wake-up, saying for what */
    put_head(tr, "B", e->tid, stamp(tr));
    put_wait_name(tr, e);
    puts_(tr, ",\"args\":{\"for\":");
    put_str(tr, wait_fors[e->wait_kind]);
    if (e->wait_obj) {
        puts_(tr, ",\"object\":");
        put_ptr(tr, e->wait_obj);
    }
    puts_(tr, "}}");
    e->waiting = true;
}

static void h_task_done(async_loop *loop, async_task *t) {
    async__trace *tr = trace_of(loop);
    async_task *cur = async_loop_current_task(loop);
    trace_track *e = lookup(tr, t), *c;
    if (e) {
        if (t == cur && tr->in_step) {
            e->finished = true; /* its step's end writes the step and lets the slot go */
        } else {                /* ended outside its own step (a task cancelled before it ran) */
            if (e->waiting) end_wait(tr, e, stamp(tr), NULL);
            forget(tr, e);
        }
        return;
    }
    /* an inline coroutine: the one that awaits it is the innermost now */
    c = cur ? lookup(tr, cur) : NULL;
    if (c && c->leaf == t) {
        async_task *parent = async_task_parent(t);
        c->leaf = parent == cur ? NULL : parent;
    }
}

static void h_inline_start(async_loop *loop, async_task *parent, async_task *child) {
    async__trace *tr = trace_of(loop);
    async_task *cur = async_loop_current_task(loop);
    trace_track *c = cur ? lookup(tr, cur) : NULL;
    (void)parent;
    if (c) c->leaf = child;
}

static void h_wake(async_loop *loop, async_task *t, async_task *by) {
    async__trace *tr = trace_of(loop);
    trace_track *e = track(tr, t), *b;
    uint64_t ns = stamp(tr);
    if (!e) return;
    if (e->waiting) end_wait(tr, e, ns, by);
    if (!(b = lookup(tr, by))) return;
    /* an arrow from the waker's step to the woken task's next step */
    e->flow = ++tr->next_flow;
    put_head(tr, "s", b->tid, ns);
    puts_(tr, ",\"cat\":\"wake\",\"name\":\"wake\",\"id\":");
    put_u64(tr, e->flow);
    put(tr, "}", 1);
}

/* An instant on the track of the task it concerns (an inline coroutine's: its task's). */
static trace_track *instant(async__trace *tr, async_task *t, const char *name) {
    async_task *cur = async_loop_current_task(tr->loop);
    trace_track *e = lookup(tr, t);
    if (!e && cur) e = lookup(tr, cur);
    if (!e) e = track(tr, t);
    if (!e) return NULL;
    put_head(tr, "i", e->tid, stamp(tr));
    puts_(tr, ",\"s\":\"t\",\"cat\":");
    put_str(tr, name);
    puts_(tr, ",\"name\":");
    put_str(tr, name);
    return e;
}

static void h_wait(async_loop *loop, async_task *t, async_wait_kind kind, const void *object) {
    trace_track *e = lookup(trace_of(loop), t);
    if (!e) return;
    e->wait_kind = (unsigned)kind < sizeof wait_names / sizeof wait_names[0] ? (uint8_t)kind : 0;
    e->wait_obj = object;
}

static void h_error(async_loop *loop, async_task *t, const async_error *err) {
    async__trace *tr = trace_of(loop);
    char at[160];
    if (!instant(tr, t, "error")) return;
    where(t, at, sizeof at);
    puts_(tr, ",\"args\":{\"code\":");
    put_int(tr, err->code);
    puts_(tr, ",\"message\":");
    put_str(tr, async_loop_error_message(loop, err));
    puts_(tr, ",\"coroutine\":");
    put_str(tr, function_of(t));
    puts_(tr, ",\"at\":");
    put_str(tr, at);
    puts_(tr, "}}");
}

static void h_cancel(async_loop *loop, async_task *t, async_task *by) {
    async__trace *tr = trace_of(loop);
    if (!instant(tr, t, "cancel")) return;
    puts_(tr, ",\"args\":{\"code\":");
    put_int(tr, ASYNC_ECANCELED);
    puts_(tr, ",\"message\":");
    put_str(tr, async_strerror(ASYNC_ECANCELED));
    puts_(tr, ",");
    put_by(tr, "by", by);
    puts_(tr, "}}");
}

static const async_loop_hooks trace_hooks = {.step_begin = h_step_begin,
                                             .step_end = h_step_end,
                                             .task_done = h_task_done,
                                             .inline_start = h_inline_start,
                                             .wake = h_wake,
                                             .wait = h_wait,
                                             .error = h_error,
                                             .cancel = h_cancel};

/* ---- starting and stopping ---- */

/* ASYNC_TRACE=path: one loop of the process at a time writes there (the next one made after it was
 * freed writes the file anew). An atomic: loops are made on any thread. */
static int env_trace_taken;

static const char trace_kind = 0; /* tags its part */

/* Finishes the JSON, closes the file, frees tr (taken out of the hooks and the loop already); the first
 * error met. */
static int finish(async__trace *tr) {
    int rc;
    size_t i;
    uint64_t ns = stamp(tr);
    /* a stop from inside a step: that step so far; then the waits still open */
    if (tr->in_step) {
        trace_track *e = lookup(tr, async_loop_current_task(tr->loop));
        if (e) put_step(tr, e, ns);
    }
    for (i = 0; i < tr->tracks.cap; i++) {
        trace_track *e = (trace_track *)async__taskmap_at(&tr->tracks, i);
        if (e && e->waiting) {
            put_head(tr, "E", e->tid, ns);
            put_wait_name(tr, e);
            puts_(tr, ",\"args\":{\"for\":\"(trace stopped)\"}}");
        }
    }
    puts_(tr, "\n]}\n");
    flush(tr);
    if (tr->fd >= 0 && close(tr->fd) != 0) note_error(tr, async__errno_code(errno));
    rc = tr->error;
    if (tr->from_env) __atomic_store_n(&env_trace_taken, 0, __ATOMIC_RELEASE);
    async__taskmap_free(&tr->tracks);
    async__loop_release(tr->loop, tr);
    return rc;
}

/* At loop free. */
static void free_part(async_loop *loop, async__part *part) {
    async__trace *tr = (async__trace *)(void *)((char *)part - offsetof(async__trace, part));
    int rc;
    async__hooks_remove(loop, &tr->user);
    rc = finish(tr);
    if (rc) fprintf(stderr, "async: trace: the file is incomplete: %s\n", async_strerror(rc));
}

int async_loop_trace_start(async_loop *loop, const char *path) {
    async__trace *tr;
    int rc;
    if (!loop || !path || !*path) return ASYNC_EINVAL;
    if (trace_of(loop)) return ASYNC_EBUSY;
    tr = (async__trace *)async__loop_alloc(loop, sizeof *tr);
    if (!tr) return ASYNC_ENOMEM;
    memset(tr, 0, offsetof(async__trace, buf));
    tr->loop = loop;
    tr->first = true;
    if (async__taskmap_init(&tr->tracks, loop, sizeof(trace_track), 64)) {
        async__loop_release(loop, tr);
        return ASYNC_ENOMEM;
    }
    tr->user.hooks = &trace_hooks;
    tr->user.ctx = tr;
    rc = async__hooks_add(loop, &tr->user);
    if (!rc) {
        tr->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (tr->fd < 0) {
            rc = async__errno_code(errno);
            async__hooks_remove(loop, &tr->user);
        }
    }
    if (rc) {
        async__taskmap_free(&tr->tracks);
        async__loop_release(loop, tr);
        return rc;
    }
    tr->virt = async_loop_virtual(loop);
    tr->last_ms = async_loop_now(loop);
    tr->start_ns = mono_ns();
    puts_(tr, "{\"displayTimeUnit\":\"ms\",\"otherData\":{\"clock\":");
    put_str(tr, tr->virt ? "virtual ms + 1 ns per event" : "monotonic");
    puts_(tr, ",\"backend\":");
    put_str(tr, async_loop_backend_name(loop) ? async_loop_backend_name(loop) : "core");
    puts_(tr, "},\"traceEvents\":[\n");
    put_head(tr, "M", 0, 0);
    puts_(tr, ",\"name\":\"process_name\",\"args\":{\"name\":\"async loop\"}}");
    /* a hosted loop ends the trace at its free; a loop of the core's only at async_loop_trace_stop */
    async__loop_attach(loop, &tr->part, &trace_kind, ASYNC__STAGE_REPORT, free_part);
    return 0;
}

int async_loop_trace_stop(async_loop *loop) {
    async__trace *tr = loop ? trace_of(loop) : NULL;
    if (!tr) return ASYNC_EINVAL;
    async__loop_detach(loop, &tr->part);
    async__hooks_remove(loop, &tr->user);
    return finish(tr);
}

bool async_loop_tracing(const async_loop *loop) { return loop && trace_of(loop); }

void async__trace_from_env(async_loop *loop) {
    const char *path = getenv("ASYNC_TRACE");
    int rc;
    if (!path || !*path || __atomic_exchange_n(&env_trace_taken, 1, __ATOMIC_ACQ_REL)) return;
    rc = async_loop_trace_start(loop, path);
    if (rc) {
        fprintf(stderr, "async.h: ASYNC_TRACE=%s: %s; no trace\n", path, async_strerror(rc));
        __atomic_store_n(&env_trace_taken, 0, __ATOMIC_RELEASE);
    } else {
        trace_of(loop)->from_env = true;
    }
}
