/* Private to the hosted runtime (src/): the hosted loop (loop.c) as its components see it, and what the
 * files share. Users never include it.
 *
 * Each src file owns its structs; the others go through the functions declared here and in the headers
 * of each concern (backend.h, thread_pool.h, net.h). The portable core's private fields are read only
 * by async.h's own implementation. */
#ifndef ASYNC_INTERNAL_H
#define ASYNC_INTERNAL_H

#include "async.h"

/* ---- components attached to a hosted loop ---- */

/* A component (debug mode, the thread pool, an open file, a remote door, ...) keeps its state for a loop
 * in a record that embeds an async__part, attaches it, and says how to free it: async_loop_free frees
 * what is still attached in stage order (the latest attached first within a stage), so the loop never
 * names its components and no component frees another. */
typedef struct async__part async__part;
typedef void (*async__part_free_fn)(async_loop *loop, async__part *part);

/** When a component goes at loop free, in this order. */
enum {
    ASYNC__STAGE_REPORT = 1, /* reports on the loop's tasks (before the unretrieved errors are reported) */
    ASYNC__STAGE_WORK,       /* work in flight, waited for (calls on threads, name lookups): a job may
                              * still call through a door, so the doors go after it */
    ASYNC__STAGE_DOORS,      /* ways in from other threads (their queued calls still run) */
    ASYNC__STAGE_RESOURCES   /* what finished work leaves open (files) */
};

struct async__part {
    async__part *prev, *next;
    const void *kind; /* the component's tag: the address of a static object of its own */
    int stage;
    async__part_free_fn free_fn;
};

/** Attaches part (freed by free_fn at loop free unless detached first). ASYNC_ENOTSUP if loop is not a
 *  hosted loop. */
int async__loop_attach(async_loop *loop, async__part *part, const void *kind, int stage, async__part_free_fn free_fn);
/** Detaches an attached part (its owner frees it). */
void async__loop_detach(async_loop *loop, async__part *part);
/** The part of that kind attached latest, or NULL (also for a loop that is not hosted). */
async__part *async__loop_find(const async_loop *loop, const void *kind);

/** Memory for a component's records from the loop's allocator (async_loop_set_allocator: a test can make
 *  it fail), malloc if none is set; NULL when there is none. */
void *async__loop_alloc(async_loop *loop, size_t size);
/** Gives back what async__loop_alloc returned (NULL is fine). */
void async__loop_release(async_loop *loop, void *p);

/* ---- the loop's hooks, shared by the runtime's instruments (debug.c) ---- */

/* The core calls one table of hooks per loop (async_loop_set_hooks). Debug mode and the trace each add
 * their own table through these instead, and may be on together: the loop then gets one table (this
 * file's chain) whose hooks call every instrument's, in the order they were added. An instrument finds
 * its state with async__hooks_ctx, never with async_loop_hooks_ctx (that is the chain's). Hooks that
 * someone else installed with async_loop_set_hooks (a test's, a fault injector's) are not shared: adding
 * is refused while they are in place. */
typedef struct async__hooks_user async__hooks_user;
struct async__hooks_user {
    const async_loop_hooks *hooks; /* the instrument's table (static) */
    void *ctx;                     /* its state */
    async__hooks_user *next;       /* private: the chain */
};

/** Adds u (its hooks and ctx set; it must stay in place until removed). 0, or ASYNC_EBUSY when the loop
 *  has hooks of someone else's. */
int async__hooks_add(async_loop *loop, async__hooks_user *u);
/** Takes u out (nothing if it is not in): the loop's hooks go when the last one goes. From a hook, only
 *  the running instrument's own u (the chain goes on with the next one). */
void async__hooks_remove(async_loop *loop, async__hooks_user *u);
/** The ctx added with that table of hooks, or NULL. */
void *async__hooks_ctx(const async_loop *loop, const async_loop_hooks *hooks);

/** Starts the trace that the environment's ASYNC_TRACE asks for, if any (trace.c; a line on stderr if it
 *  cannot). */
void async__trace_from_env(async_loop *loop);

/* ---- calls the loop makes later ---- */

/* One node serves both lists below: a call that is queued once however many times it is asked for
 * before it runs (as libev's ev_async coalesces its sends), then may be queued again. Zero it first. */
typedef struct async__cb async__cb;
struct async__cb {
    async__cb *next;
    void (*fn)(async_loop *loop, async__cb *cb);
    bool queued;
};

/** Loop thread: fn runs after the current pass, before the loop waits (libev: in the wait, or after the
 *  pass of an attached loop). For work a pass gathers and hands over at once (the thread pool's jobs),
 *  and memory a task's own last step cannot free (a server's ended connections). */
void async__loop_defer(async_loop *loop, async__cb *cb);
/** Loop thread: takes a deferred call back if it has not run yet. */
void async__loop_undefer(async_loop *loop, async__cb *cb);

/** Any thread (call_soon_threadsafe): fn runs on the loop's thread soon, in the order posted. The loop
 *  must outlive the call: a poster from another thread synchronises with the loop's free (the thread
 *  pool does under its mutex). ASYNC_EINVAL if loop is not a hosted loop. */
int async__loop_post(async_loop *loop, async__cb *cb);
/** Loop thread: takes a posted call back if it has not run yet. */
void async__loop_unpost(async_loop *loop, async__cb *cb);
/** True when called on the loop's thread: the thread that made the loop until one waits in it, then the
 *  last one that waited in it. */
bool async__loop_on_thread(const async_loop *loop);

/** Loop thread: +1 while work outside the backend's requests may still wake the loop (calls on
 *  threads, a remote door), -1 when it is over: while any is held, the loop's wait blocks for it instead
 *  of reporting a deadlock or jumping virtual time past it. */
void async__loop_hold(async_loop *loop, int delta);

/* ---- signals (signals.c) ---- */

/** The runtime's own use of signo on a hosted loop (async_main's Ctrl-C): fn runs at a delivery that
 *  neither a handler nor a waiting task of the loop takes, and does not keep the loop alive; fn NULL
 *  takes it away (the old disposition is back if nothing else listens). 0, ASYNC_EBUSY (one is set, or
 *  another loop watches the signal), ASYNC_EINVAL, ASYNC_ENOTSUP, ASYNC_ENOMEM. */
int async__loop_signal_fallback(async_loop *loop, int signo, async_sighandler fn, void *arg);

/* ---- shared helpers ---- */

/* Storage aligned for any object: the element type of a flexible array member that holds other records
 * (a backend's state after the hosted loop's, a thread call's copy of its arguments after its job). */
typedef union async__max_align {
    void *p;
    long long ll;
    double d;
    long double ld;
} async__max_align;

/** The library's code for an errno value: its own code where it has one for that meaning (by name, so
 *  another OS's numbering does not matter), the nearest one for a few (ENFILE: EMFILE, ENOBUFS: ENOMEM,
 *  EDQUOT: ENOSPC, EWOULDBLOCK: EAGAIN), else ASYNC_EIO. The one translation of the runtime (errors.c). */
int async__errno_code(int err);

/* Raises the library's `code` in task t (its message from the table) and returns the awaits' ASYNC__RAISE:
 * how an await's start or check fails. */
int async__raise_error_code(async_task *t, int code);

#ifndef ASYNC_MS_MAX
/* The longest deadline the loop's 32-bit clock can express (async.h defines it where it has it). */
#define ASYNC_MS_MAX 2147483647
#endif

#endif
