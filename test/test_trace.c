/* The task timeline (async_loop_trace_start): the file is read back with a strict JSON parser of this
 * file's own (any syntax error fails the test, nothing is skipped) and its events checked: the gather of
 * three tasks of 3, 2 and 1 s under the virtual clock (tracks named by the coroutine, each task's steps
 * and sleeps, the ends 1 s apart in the order C, B, A, the arrows from the spawner to its children and
 * from the last child to the gather's awaiter), an error and a cancellation, the real clock on each
 * backend, debug mode on at the same time, the environment's ASYNC_TRACE, and the error paths: bad
 * arguments, a path that cannot be written, a second start, a stop without a start, other hooks,
 * allocation failures, a full disk, a stop from inside a step. */
#include "test.h"
#include "util.h"

#include <sys/wait.h>
#include <unistd.h>

/* ---- a strict JSON reader: values into a flat array of nodes ---- */

enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

typedef struct jnode {
    int type;
    double num;
    char *str;      /* J_STR: the decoded text */
    char *key;      /* a member of an object: its name */
    int first, next; /* children of an array or object; the next sibling (-1: none) */
} jnode;

typedef struct jdoc {
    jnode *n;
    int count, cap;
    const char *p, *err;
} jdoc;

static int j_value(jdoc *d);

static void j_ws(jdoc *d) {
    while (*d->p == ' ' || *d->p == '\n' || *d->p == '\t' || *d->p == '\r') d->p++;
}

static int j_new(jdoc *d, int type) {
    if (d->count == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 256;
        d->n = (jnode *)realloc(d->n, (size_t)d->cap * sizeof *d->n);
        ASSERT(d->n);
    }
    memset(&d->n[d->count], 0, sizeof d->n[d->count]);
    d->n[d->count].type = type;
    d->n[d->count].first = d->n[d->count].next = -1;
    return d->count++;
}

static int j_fail(jdoc *d, const char *why) {
    if (!d->err) d->err = why;
    return -1;
}

/* A string at d->p (its quote): decoded, \u escapes of ASCII only (all the trace writes). */
static char *j_string(jdoc *d) {
    size_t len = 0, cap = 32;
    char *s = (char *)malloc(cap);
    ASSERT(s);
    if (*d->p++ != '"') return j_fail(d, "string expected"), free(s), NULL;
    for (;;) {
        char c = *d->p++;
        if (len + 2 > cap) {
            s = (char *)realloc(s, cap *= 2);
            ASSERT(s);
        }
        if (c == '"') break;
        if ((unsigned char)c < 0x20) return j_fail(d, "control character in a string"), free(s), NULL;
        if (c == '\\') {
            c = *d->p++;
            if (c == 'u') {
                unsigned v = 0;
                int i;
                for (i = 0; i < 4; i++) {
                    char h = *d->p++;
                    v = v * 16 + (unsigned)(h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10
                                                                      : h >= 'A' && h <= 'F' ? h - 'A' + 10 : 99);
                }
                if (v > 0x7f) return j_fail(d, "bad \\u escape"), free(s), NULL;
                c = (char)v;
            } else if (c == 'n') {
                c = '\n';
            } else if (c == 't') {
                c = '\t';
            } else if (c != '"' && c != '\\' && c != '/') {
                return j_fail(d, "bad escape"), free(s), NULL;
            }
        }
        s[len++] = c;
    }
    s[len] = '\0';
    return s;
}

static int j_number(jdoc *d) {
    const char *start = d->p;
    char *end;
    int i;
    if (*d->p == '-') d->p++;
    if (*d->p == '0') {
        d->p++;
    } else if (*d->p >= '1' && *d->p <= '9') {
        while (*d->p >= '0' && *d->p <= '9') d->p++;
    } else {
        return j_fail(d, "number expected");
    }
    if (*d->p == '.') {
        d->p++;
        if (!(*d->p >= '0' && *d->p <= '9')) return j_fail(d, "digit expected after the point");
        while (*d->p >= '0' && *d->p <= '9') d->p++;
    }
    i = j_new(d, J_NUM);
    d->n[i].num = strtod(start, &end);
    if (end != d->p) return j_fail(d, "number");
    return i;
}

/* The members (object) or elements (array) up to `close`. */
static int j_list(jdoc *d, int type, char close) {
    int i = j_new(d, type), last = -1;
    d->p++;
    j_ws(d);
    if (*d->p == close) {
        d->p++;
        return i;
    }
    for (;;) {
        char *key = NULL;
        int v;
        j_ws(d);
        if (type == J_OBJ) {
            if (!(key = j_string(d))) return -1;
            j_ws(d);
            if (*d->p++ != ':') return free(key), j_fail(d, "':' expected");
        }
        if ((v = j_value(d)) < 0) return free(key), -1;
        d->n[v].key = key;
        if (last < 0)
            d->n[i].first = v;
        else
            d->n[last].next = v;
        last = v;
        j_ws(d);
        if (*d->p == ',') {
            d->p++;
            continue;
        }
        if (*d->p++ != close) return j_fail(d, "',' or the end of the list expected");
        return i;
    }
}

static int j_value(jdoc *d) {
    j_ws(d);
    switch (*d->p) {
    case '{': return j_list(d, J_OBJ, '}');
    case '[': return j_list(d, J_ARR, ']');
    case '"': {
        char *s = j_string(d);
        int i;
        if (!s) return -1;
        i = j_new(d, J_STR);
        d->n[i].str = s;
        return i;
    }
    case 't':
    case 'f':
    case 'n': {
        const char *word = *d->p == 't' ? "true" : *d->p == 'f' ? "false" : "null";
        int i;
        if (strncmp(d->p, word, strlen(word)) != 0) return j_fail(d, "unknown word");
        d->p += strlen(word);
        i = j_new(d, *word == 'n' ? J_NULL : J_BOOL);
        d->n[i].num = *word == 't';
        return i;
    }
    default: return j_number(d);
    }
}

/* The member `key` of object o, or -1. */
static int j_get(const jdoc *d, int o, const char *key) {
    int c;
    if (o < 0 || d->n[o].type != J_OBJ) return -1;
    for (c = d->n[o].first; c >= 0; c = d->n[c].next)
        if (strcmp(d->n[c].key, key) == 0) return c;
    return -1;
}

static const char *j_str(const jdoc *d, int o, const char *key) {
    int c = j_get(d, o, key);
    return c >= 0 && d->n[c].type == J_STR ? d->n[c].str : NULL;
}

static double j_num(const jdoc *d, int o, const char *key) {
    int c = j_get(d, o, key);
    ASSERT(c >= 0 && d->n[c].type == J_NUM);
    return d->n[c].num;
}

static void j_free(jdoc *d) {
    int i;
    for (i = 0; i < d->count; i++) {
        free(d->n[i].str);
        free(d->n[i].key);
    }
    free(d->n);
}

/* ---- a trace read back ---- */

typedef struct ev {
    char ph;
    int tid, o; /* o: the event's node */
    double ts, dur;
    const char *name, *cat;
} ev;

typedef struct tl {
    jdoc doc;
    char *text;
    ev *ev;
    int n;
} tl;

static char *read_all(const char *path) {
    FILE *f = fopen(path, "rb");
    char *buf;
    long size;
    ASSERT(f);
    ASSERT(fseek(f, 0, SEEK_END) == 0);
    size = ftell(f);
    ASSERT(size >= 0);
    rewind(f);
    buf = (char *)malloc((size_t)size + 1);
    ASSERT(buf);
    ASSERT(fread(buf, 1, (size_t)size, f) == (size_t)size);
    buf[size] = '\0';
    fclose(f);
    return buf;
}

/* Reads and checks the file's form: one object with traceEvents, each event with ph, pid 1, an integer
 * tid and a ts (and dur for X); on each track, the steps and waits never overlap. */
static void tl_read(tl *t, const char *path) {
    int root, arr, c, i, j;
    memset(t, 0, sizeof *t);
    t->text = read_all(path);
    t->doc.p = t->text;
    root = j_value(&t->doc);
    j_ws(&t->doc);
    if (root < 0 || *t->doc.p) {
        size_t at = (size_t)(t->doc.p - t->text);
        test_fail(__FILE__, __LINE__, "%s: not JSON at byte %lu (%s): %.60s", path, (unsigned long)at,
                  t->doc.err ? t->doc.err : "text after the value", t->doc.p);
    }
    arr = j_get(&t->doc, root, "traceEvents");
    ASSERT(arr >= 0 && t->doc.n[arr].type == J_ARR);
    for (c = t->doc.n[arr].first; c >= 0; c = t->doc.n[c].next) t->n++;
    t->ev = (ev *)calloc((size_t)t->n + 1, sizeof *t->ev);
    ASSERT(t->ev);
    for (i = 0, c = t->doc.n[arr].first; c >= 0; c = t->doc.n[c].next, i++) {
        ev *e = &t->ev[i];
        const char *ph = j_str(&t->doc, c, "ph");
        ASSERT(ph && strlen(ph) == 1 && strchr("MXBEsfi", ph[0]));
        e->ph = ph[0];
        e->o = c;
        ASSERT_EQ(j_num(&t->doc, c, "pid"), 1);
        e->tid = (int)j_num(&t->doc, c, "tid");
        ASSERT(e->tid == j_num(&t->doc, c, "tid") && e->tid >= 0);
        e->ts = j_num(&t->doc, c, "ts");
        e->dur = e->ph == 'X' ? j_num(&t->doc, c, "dur") : 0;
        ASSERT(e->dur >= 0);
        e->name = j_str(&t->doc, c, "name");
        e->cat = j_str(&t->doc, c, "cat");
        /* every event is named, the ends of B..E pairs too: the format lets an end go without, but
         * Chrome's DevTools (its Performance panel's parser) stops at the first event without one */
        ASSERT(e->name && *e->name);
    }
    /* per track: X slices and B..E pairs in time order, each after the one before */
    for (i = 0; i < t->n; i++) {
        for (j = 0; j < t->n; j++) {
            const ev *a = &t->ev[i], *b = &t->ev[j];
            if (i == j || a->tid != b->tid || a->ph != 'X' || b->ph != 'X') continue;
            ASSERT(a->ts + a->dur <= b->ts || b->ts + b->dur <= a->ts); /* steps never overlap */
        }
    }
}

static void tl_free(tl *t) {
    j_free(&t->doc);
    free(t->ev);
    free(t->text);
}

/* The name of track tid (its thread_name), or NULL. */
static const char *track_name(const tl *t, int tid) {
    int i;
    for (i = 0; i < t->n; i++)
        if (t->ev[i].ph == 'M' && t->ev[i].tid == tid && t->ev[i].name &&
            strcmp(t->ev[i].name, "thread_name") == 0)
            return j_str(&t->doc, j_get(&t->doc, t->ev[i].o, "args"), "name");
    return NULL;
}

static int count(const tl *t, char ph, int tid, const char *name) {
    int i, k = 0;
    for (i = 0; i < t->n; i++)
        if (t->ev[i].ph == ph && (tid < 0 || t->ev[i].tid == tid) &&
            (!name || (t->ev[i].name && strcmp(t->ev[i].name, name) == 0)))
            k++;
    return k;
}

/* The k-th (0-based) event of phase ph on track tid, or NULL. */
static const ev *nth(const tl *t, char ph, int tid, int k) {
    int i;
    for (i = 0; i < t->n; i++)
        if (t->ev[i].ph == ph && t->ev[i].tid == tid && k-- == 0) return &t->ev[i];
    return NULL;
}

static const char *arg(const tl *t, const ev *e, const char *key) {
    return j_str(&t->doc, j_get(&t->doc, e->o, "args"), key);
}

static double arg_num(const tl *t, const ev *e, const char *key) {
    return j_num(&t->doc, j_get(&t->doc, e->o, "args"), key);
}

/* True if an arrow (s on track from, f on track to with the same id) goes from `from` to `to`; the f
 * starts a step of `to` (bound to it: bp "e" at the step's start). */
static bool arrow(const tl *t, int from, int to) {
    int i, j, k;
    for (i = 0; i < t->n; i++) {
        if (t->ev[i].ph != 's' || t->ev[i].tid != from) continue;
        for (j = 0; j < t->n; j++) {
            const ev *f = &t->ev[j];
            if (f->ph != 'f' || f->tid != to || j_num(&t->doc, f->o, "id") != j_num(&t->doc, t->ev[i].o, "id"))
                continue;
            ASSERT_STR_EQ(j_str(&t->doc, f->o, "bp"), "e");
            ASSERT(f->ts >= t->ev[i].ts);
            for (k = 0; k < t->n; k++)
                if (t->ev[k].ph == 'X' && t->ev[k].tid == to && t->ev[k].ts == f->ts) return true;
            test_fail(__FILE__, __LINE__, "flow %d -> %d ends outside a step", from, to);
        }
    }
    return false;
}

/* ---- the gather of seed 001: three tasks of 3, 2 and 1 s ---- */

ASYNC_DEF(task, const char *name; int seconds;) {
    AWAIT_SLEEP(t, f->seconds * 1000);
} ASYNC_END_DEF

ASYNC_DEF(gather_main, task_frame a, b, c; async_group all;) {
    AWAIT_GATHER(t, &f->all, ASYNC_CALL(task, &f->a, "A", 3), ASYNC_CALL(task, &f->b, "B", 2),
                 ASYNC_CALL(task, &f->c, "C", 1));
} ASYNC_END_DEF

TEST(trace_gather_has_a_track_per_task_its_steps_sleeps_ends_and_arrows) {
    async_loop *loop = async_loop_new(ASYNC_LOOP_VIRTUAL_CLOCK);
    const char *path = test_path("gather.json");
    static gather_main_frame f;
    const int main_tid = 1, a = 2, b = 3, c = 4; /* tracks are numbered in order of first sight */
    double end_a, end_b, end_c;
    int tid;
    tl t;
    ASSERT(loop);
    ASSERT(!async_loop_tracing(loop));
    ASSERT_EQ(async_loop_trace_start(loop, path), 0);
    ASSERT(async_loop_tracing(loop));
    ASSERT_EQ(async_run(loop, ASYNC_CALL(gather_main, &f)), 0);
    async_loop_free(loop); /* ends the trace */
    tl_read(&t, path);
    ASSERT_STR_EQ(track_name(&t, main_tid), "gather_main_run #1");
    for (tid = a; tid <= c; tid++) {
        const ev *first, *last, *wait, *woke;
        char expect[32];
        snprintf(expect, sizeof expect, "task_run #%d", tid);
        ASSERT_STR_EQ(track_name(&t, tid), expect);
        /* two steps: up to the sleep, and after it to the end */
        ASSERT_EQ(count(&t, 'X', tid, "task_run"), 2);
        first = nth(&t, 'X', tid, 0);
        last = nth(&t, 'X', tid, 1);
        ASSERT(strstr(arg(&t, first, "resumed"), "test_trace.c:0"));
        ASSERT(strstr(arg(&t, first, "suspended"), "test_trace.c:"));
        ASSERT_STR_EQ(arg(&t, first, "state"), "sleeping");
        ASSERT_STR_EQ(arg(&t, last, "resumed"), arg(&t, first, "suspended"));
        ASSERT_STR_EQ(arg(&t, last, "finished"), "done");
        /* the sleep between them, woken by the loop's timer */
        ASSERT_EQ(count(&t, 'B', tid, NULL), 1);
        ASSERT_EQ(count(&t, 'E', tid, NULL), 1);
        wait = nth(&t, 'B', tid, 0);
        woke = nth(&t, 'E', tid, 0);
        ASSERT_STR_EQ(wait->name, "sleep");
        ASSERT_STR_EQ(arg(&t, wait, "for"), "sleep");
        ASSERT(wait->ts >= first->ts + first->dur && woke->ts <= last->ts);
        ASSERT(strstr(arg(&t, woke, "woken_by"), "the loop"));
        ASSERT((woke->ts - wait->ts) / 1e6 > (double)(5 - tid) - 0.001); /* 3, 2, 1 s */
        /* main's step started it: an arrow from main's first step to its first */
        ASSERT(arrow(&t, main_tid, tid));
    }
    /* the ends: C at 1 s, B at 2 s, A at 3 s, each 1 s (to the µs) after the one before */
    end_a = nth(&t, 'X', a, 1)->ts;
    end_b = nth(&t, 'X', b, 1)->ts;
    end_c = nth(&t, 'X', c, 1)->ts;
    ASSERT(end_c < end_b && end_b < end_a);
    ASSERT(end_c >= 1e6 && end_c < 1e6 + 1);
    ASSERT(end_b - end_c > 1e6 - 1 && end_b - end_c < 1e6 + 1);
    ASSERT(end_a - end_b > 1e6 - 1 && end_a - end_b < 1e6 + 1);
    /* main waited for the children, and the last one's end woke it: an arrow from A to main */
    ASSERT_STR_EQ(nth(&t, 'B', main_tid, 0)->name, "await children");
    ASSERT_STR_EQ(arg(&t, nth(&t, 'B', main_tid, 0), "for"), "children");
    ASSERT_STR_EQ(arg(&t, nth(&t, 'E', main_tid, 0), "woken_by"), "task_run #2");
    ASSERT(arrow(&t, a, main_tid));
    ASSERT(!arrow(&t, b, main_tid) && !arrow(&t, c, main_tid));
    ASSERT_EQ(count(&t, 'X', main_tid, "gather_main_run"), 2);
    ASSERT(nth(&t, 'X', main_tid, 1)->ts > end_a);
    ASSERT_EQ(count(&t, 'i', -1, NULL), 0); /* no error, no cancellation */
    tl_free(&t);
}

/* ---- an error and a cancellation ---- */

enum { TRACE_EBOOM = ASYNC_EUSER + 7 };

ASYNC_DEF(thrower) {
    AWAIT_SLEEP(t, 10);
    ASYNC_THROW(t, TRACE_EBOOM, "boom \"quoted\"");
} ASYNC_END_DEF

ASYNC_DEF(errcancel_main, task_frame sleeper; thrower_frame thrower; async_group g; int caught;) {
    ASYNC_SPAWN(t, &f->g, ASYNC_CALL(task, &f->sleeper, "S", 100));
    ASYNC_SPAWN(t, &f->g, ASYNC_CALL(thrower, &f->thrower));
    AWAIT_SLEEP(t, 5);
    async_cancel(&f->sleeper.task);
    ASYNC_TRY(t) {
        AWAIT(t, &f->thrower.task);
    } ASYNC_EXCEPT(t, TRACE_EBOOM) {
        f->caught = 1;
    } ASYNC_END_TRY(t);
    ASYNC_TRY(t) {
        AWAIT(t, &f->sleeper.task);
    } ASYNC_EXCEPT(t, ASYNC_ECANCELED) {
        f->caught++;
    } ASYNC_END_TRY(t);
} ASYNC_END_DEF

TEST(trace_has_instants_for_an_error_and_a_cancellation) {
    async_loop *loop = async_loop_new(ASYNC_LOOP_VIRTUAL_CLOCK);
    const char *path = test_path("err.json");
    static errcancel_main_frame f;
    const int main_tid = 1, sleeper = 2, thrower_tid = 3;
    const ev *cancel, *err, *woke;
    tl t;
    ASSERT_EQ(async_loop_trace_start(loop, path), 0);
    ASSERT_EQ(async_run(loop, ASYNC_CALL(errcancel_main, &f)), 0);
    ASSERT_EQ(f.caught, 2);
    ASSERT_EQ(async_loop_trace_stop(loop), 0);
    ASSERT(!async_loop_tracing(loop));
    async_loop_free(loop);
    tl_read(&t, path);
    ASSERT_STR_EQ(track_name(&t, sleeper), "task_run #2");
    ASSERT_STR_EQ(track_name(&t, thrower_tid), "thrower_run #3");
    /* the cancellation: asked by main, on the sleeper's track, while it slept */
    ASSERT_EQ(count(&t, 'i', -1, "cancel"), 1);
    cancel = nth(&t, 'i', sleeper, 0);
    ASSERT(cancel);
    ASSERT_STR_EQ(cancel->name, "cancel");
    ASSERT_STR_EQ(j_str(&t.doc, cancel->o, "s"), "t");
    ASSERT_EQ(arg_num(&t, cancel, "code"), ASYNC_ECANCELED);
    ASSERT_STR_EQ(arg(&t, cancel, "message"), async_strerror(ASYNC_ECANCELED));
    ASSERT_STR_EQ(arg(&t, cancel, "by"), "errcancel_main_run #1");
    ASSERT(cancel->ts >= 5000 && cancel->ts < 5001);
    /* its sleep ended then, main woke it (an arrow), and it ended cancelled: an error instant too */
    woke = nth(&t, 'E', sleeper, 0);
    ASSERT_STR_EQ(arg(&t, woke, "woken_by"), "errcancel_main_run #1");
    ASSERT(arrow(&t, main_tid, sleeper));
    ASSERT_STR_EQ(arg(&t, nth(&t, 'X', sleeper, 1), "finished"), "cancelled");
    err = nth(&t, 'i', sleeper, 1);
    ASSERT(err && strcmp(err->name, "error") == 0);
    ASSERT_EQ(arg_num(&t, err, "code"), ASYNC_ECANCELED);
    /* the error: the thrower's, with its code and its message (quotes escaped in the file) */
    err = nth(&t, 'i', thrower_tid, 0);
    ASSERT(err);
    ASSERT_STR_EQ(err->name, "error");
    ASSERT_EQ(arg_num(&t, err, "code"), TRACE_EBOOM);
    ASSERT_STR_EQ(arg(&t, err, "message"), "boom \"quoted\"");
    ASSERT_STR_EQ(arg(&t, err, "coroutine"), "thrower_run");
    ASSERT(err->ts >= 10000 && err->ts < 10001);
    ASSERT(strstr(t.text, "boom \\\"quoted\\\""));
    /* main caught both: the error passed up is not its end, so no instant on main's track */
    ASSERT_EQ(count(&t, 'i', main_tid, NULL), 0);
    tl_free(&t);
}

/* ---- the real clock, on each backend ---- */

ASYNC_DEF(short_main, task_frame a; async_group g;) {
    AWAIT_GATHER(t, &f->g, ASYNC_CALL(task, &f->a, "A", 0));
    AWAIT_SLEEP(t, 2);
} ASYNC_END_DEF

static void real_clock_trace(unsigned flags) {
    async_loop *loop = async_loop_new(flags);
    const char *path = test_path("real.json");
    static short_main_frame f;
    const ev *w;
    tl t;
    ASSERT(loop);
    memset(&f, 0, sizeof f);
    ASSERT_EQ(async_loop_trace_start(loop, path), 0);
    ASSERT_EQ(async_run(loop, ASYNC_CALL(short_main, &f)), 0);
    async_loop_free(loop);
    tl_read(&t, path);
    ASSERT_EQ(count(&t, 'X', 1, "short_main_run"), 3);
    ASSERT(arrow(&t, 1, 2) && arrow(&t, 2, 1));
    /* its 2 ms sleep lasted 2 ms or more of the monotonic clock */
    w = nth(&t, 'B', 1, 1);
    ASSERT_STR_EQ(w->name, "sleep");
    ASSERT(nth(&t, 'E', 1, 1)->ts - w->ts >= 1000);
    tl_free(&t);
}

TEST(trace_real_clock_libev) { real_clock_trace(ASYNC_LOOP_LIBEV); }

TEST(trace_real_clock_io_uring) {
    real_clock_trace(ASYNC_LOOP_IO_URING); /* (libev where the kernel refuses io_uring) */
}

/* ---- debug mode at the same time ---- */

TEST(trace_and_debug_mode_are_on_together) {
    async_loop *loop = async_loop_new(ASYNC_LOOP_VIRTUAL_CLOCK);
    const char *path = test_path("debug.json");
    static gather_main_frame f;
    FILE *out = test_capture();
    tl t;
    ASSERT_EQ(async_loop_set_debug(loop, true), 0);
    async_loop_set_debug_output(loop, out);
    ASSERT_EQ(async_loop_trace_start(loop, path), 0);
    ASSERT(async_loop_debug(loop) && async_loop_tracing(loop));
    async_spawn(loop, ASYNC_CALL(gather_main, &f));
    run_until(loop, 1500);
    async_loop_dump(loop, out); /* debug mode still sees every task */
    ASSERT(strstr(test_captured(out), "async: 3 live tasks"));
    /* debug mode off in the middle: the trace goes on; then on again */
    ASSERT_EQ(async_loop_set_debug(loop, false), 0);
    run_until(loop, 2500);
    ASSERT_EQ(async_loop_set_debug(loop, true), 0);
    drain(loop);
    ASSERT(async_task_done(&f.task));
    ASSERT_EQ(async_loop_trace_stop(loop), 0);
    ASSERT(async_loop_debug(loop));
    async_loop_free(loop);
    fclose(out);
    tl_read(&t, path);
    ASSERT_EQ(count(&t, 'X', -1, "task_run"), 6);
    ASSERT_EQ(count(&t, 'X', -1, "gather_main_run"), 2);
    tl_free(&t);
}

/* ---- the environment ---- */

static void env_child(void) {
    static gather_main_frame f;
    const char *path = test_path("env.json");
    async_loop *loop;
    tl t;
    setenv("ASYNC_TRACE", path, 1);
    loop = async_loop_new(ASYNC_LOOP_VIRTUAL_CLOCK);
    ASSERT(async_loop_tracing(loop));
    ASSERT_EQ(async_run(loop, ASYNC_CALL(gather_main, &f)), 0);
    async_loop_free(loop);
    tl_read(&t, path);
    ASSERT_EQ(count(&t, 'X', -1, "task_run"), 6);
    tl_free(&t);
    /* freed: the next loop may take the variable again */
    loop = async_loop_new(ASYNC_LOOP_VIRTUAL_CLOCK);
    ASSERT(async_loop_tracing(loop));
    async_loop_free(loop);
    /* a path that cannot be written: a line says so, the loop runs without */
    setenv("ASYNC_TRACE", test_path("no/such/dir.json"), 1);
    loop = async_loop_new(ASYNC_LOOP_VIRTUAL_CLOCK);
    ASSERT(loop && !async_loop_tracing(loop));
    async_loop_free(loop);
    fprintf(stdout, "env ok\n");
}

TEST(trace_environment_variable_starts_one) {
    char out[512];
    int status;
    test_in_child(env_child, 2, out, sizeof out, &status);
    ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ASSERT(strstr(out, "ASYNC_TRACE="));
    ASSERT(strstr(out, "no such file or directory; no trace"));
}

/* ---- error paths ---- */

TEST(trace_bad_calls_get_clear_codes) {
    async_loop *loop = async_loop_new(ASYNC_LOOP_VIRTUAL_CLOCK);
    static const async_loop_hooks mine = {.step_begin = NULL};
    ASSERT_EQ(async_loop_trace_start(NULL, test_path("x.json")), ASYNC_EINVAL);
    ASSERT_EQ(async_loop_trace_start(loop, NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_loop_trace_start(loop, ""), ASYNC_EINVAL);
    ASSERT_EQ(async_loop_trace_stop(NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_loop_trace_stop(loop), ASYNC_EINVAL); /* none runs */
    ASSERT(!async_loop_tracing(NULL));
    /* paths that cannot be written */
    ASSERT_EQ(async_loop_trace_start(loop, test_path("no/such/dir.json")), ASYNC_ENOENT);
    ASSERT_EQ(async_loop_trace_start(loop, test_dir()), ASYNC_EISDIR);
    ASSERT(!async_loop_tracing(loop));
    ASSERT(async_loop_get_hooks(loop) == NULL); /* nothing left behind */
    /* twice */
    ASSERT_EQ(async_loop_trace_start(loop, test_path("x.json")), 0);
    ASSERT_EQ(async_loop_trace_start(loop, test_path("y.json")), ASYNC_EBUSY);
    ASSERT_EQ(async_loop_trace_stop(loop), 0);
    ASSERT_EQ(async_loop_trace_stop(loop), ASYNC_EINVAL);
    ASSERT(async_loop_get_hooks(loop) == NULL);
    /* someone else's hooks */
    async_loop_set_hooks(loop, &mine, NULL);
    ASSERT_EQ(async_loop_trace_start(loop, test_path("x.json")), ASYNC_EBUSY);
    ASSERT(async_loop_get_hooks(loop) == &mine);
    async_loop_set_hooks(loop, NULL, NULL);
    async_loop_free(loop);
}

TEST(trace_write_error_is_returned_at_stop) {
    async_loop *loop = async_loop_new(ASYNC_LOOP_VIRTUAL_CLOCK);
    static gather_main_frame f;
    if (access("/dev/full", W_OK) != 0) test_skip("no /dev/full");
    ASSERT_EQ(async_loop_trace_start(loop, "/dev/full"), 0);
    ASSERT_EQ(async_run(loop, ASYNC_CALL(gather_main, &f)), 0);
    ASSERT_EQ(async_loop_trace_stop(loop), ASYNC_ENOSPC);
    async_loop_free(loop);
}

/* A loop of the core's (new_loop: the virtual clock, the counting allocator): a trace's memory comes
 * from the loop's allocator, and every failure is ASYNC_ENOMEM with nothing left behind. */
TEST(trace_allocation_failures_are_enomem_and_leak_nothing) {
    const char *path = test_path("oom.json");
    static task_frame tasks[100];
    async_loop *loop = new_loop();
    long n;
    int i, rc;
    tl t;
    for (n = 1; n <= 2; n++) { /* the trace's record, its table */
        loop = new_loop();
        alloc_fail_at = alloc_calls + n;
        ASSERT_EQ(async_loop_trace_start(loop, path), ASYNC_ENOMEM);
        ASSERT(!async_loop_tracing(loop) && async_loop_get_hooks(loop) == NULL);
        ASSERT_EQ(loop_allocs, 0);
        alloc_fail_at = 0;
    }
    /* the table cannot grow past its first 64 slots: the tasks beyond are left out, stop says so, and
     * the file is whole */
    loop = new_loop();
    ASSERT_EQ(async_loop_trace_start(loop, path), 0);
    memset(tasks, 0, sizeof tasks);
    for (i = 0; i < 100; i++) ASSERT_EQ(async_spawn(loop, ASYNC_CALL(task, &tasks[i], "T", 0)), 0);
    alloc_fail_all = 1;
    async_poll(loop);
    alloc_fail_all = 0;
    drain(loop);
    rc = async_loop_trace_stop(loop);
    ASSERT_EQ(rc, ASYNC_ENOMEM);
    async_loop_free_storage(loop);
    ASSERT_EQ(loop_allocs, 0);
    tl_read(&t, path);
    ASSERT(count(&t, 'X', -1, "task_run") >= 2 * 48 && count(&t, 'X', -1, "task_run") < 200);
    tl_free(&t);
    /* with memory, the same run has every task */
    loop = new_loop();
    ASSERT_EQ(async_loop_trace_start(loop, path), 0);
    memset(tasks, 0, sizeof tasks);
    for (i = 0; i < 100; i++) ASSERT_EQ(async_spawn(loop, ASYNC_CALL(task, &tasks[i], "T", 0)), 0);
    drain(loop);
    ASSERT_EQ(async_loop_trace_stop(loop), 0);
    async_loop_free_storage(loop);
    ASSERT_EQ(loop_allocs, 0);
    tl_read(&t, path);
    ASSERT_EQ(count(&t, 'X', -1, "task_run"), 200);
    ASSERT_STR_EQ(track_name(&t, 100), "task_run #100");
    tl_free(&t);
}

/* A stop from inside a step: that step is written as it stands, the open waits are closed, and the
 * loop runs on without hooks. */
ASYNC_DEF(stopper, task_frame a; async_group g; int rc;) {
    ASYNC_SPAWN(t, &f->g, ASYNC_CALL(task, &f->a, "A", 1));
    AWAIT_SLEEP(t, 1);
    f->rc = async_loop_trace_stop(async_task_loop(t));
    AWAIT_SLEEP(t, 1);
} ASYNC_END_DEF

TEST(trace_stop_inside_a_step_writes_a_whole_file) {
    const char *path = test_path("stop.json");
    static stopper_frame f;
    async_loop *loop = new_loop();
    tl t;
    ASSERT_EQ(async_loop_trace_start(loop, path), 0);
    ASSERT_EQ(async_run(loop, ASYNC_CALL(stopper, &f)), 0);
    ASSERT_EQ(f.rc, 0);
    ASSERT(async_loop_get_hooks(loop) == NULL);
    async_loop_free_storage(loop);
    ASSERT_EQ(loop_allocs, 0);
    tl_read(&t, path);
    ASSERT_EQ(count(&t, 'X', 1, "stopper_run"), 2); /* the first step and the one that stopped */
    ASSERT_EQ(count(&t, 'B', -1, NULL), count(&t, 'E', -1, NULL));
    tl_free(&t);
}
