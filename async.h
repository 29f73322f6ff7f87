/* async.h — asyncio's ideas in C: stackless coroutines, tasks, futures, gather, cancellation.
 *
 * One header. The portable core (this file) needs only <stddef.h> <stdint.h> <stdbool.h> <string.h>,
 * never allocates and never includes an OS header: it runs on a Cortex-M as well as on Linux.
 * Hosted programs link libasync.a (libev backend, see README); firmware defines ASYNC_IMPLEMENTATION
 * in one of its own files before including this header and drives the loop with async_poll().
 *
 *     typedef struct { async_task task; const char *name; int ms; } greet_frame;
 *
 *     static async_status greet_run(async_task *t) {        // async def greet(name, ms):
 *         greet_frame *f = (greet_frame *)t;
 *         ASYNC_BEGIN(t);
 *         AWAIT_SLEEP(t, f->ms);                              //     await asyncio.sleep(ms / 1000)
 *         printf("Hello, %s!\n", f->name);                    //     print(f"Hello, {name}!")
 *         ASYNC_END(t);
 *     }
 *
 * THE PITFALL OF EVERY STACKLESS COROUTINE: AUTOMATIC LOCALS DO NOT SURVIVE AN AWAIT. Keep whatever must
 * live across an AWAIT in the frame struct. Build with -Wjump-misses-init -Wuninitialized (the Makefile
 * does): the compilers then reject most locals that live across an await. Also: no two AWAITs on one source
 * line (a duplicate-case build error says so) and no AWAIT inside a switch statement of your own.
 *
 * Configuration (define before including; the same values for every file of a program):
 *   ASYNC_CONFIG_TASK_NAMES    1 stores a name pointer per task (+1 word: 56 bytes on x86-64). Default 0:
 *                              the header stays at 48 bytes (24 on 32-bit), and tasks report as "task".
 *                              Build libasync.a with the same value (make CFLAGS=-DASYNC_CONFIG_TASK_NAMES=1).
 *   ASYNC_CONFIG_INLINE_TIMERS timer slots inside async_loop before the allocator hook is needed. Default 8.
 *   ASYNC_ASSERT(cond, msg)    called on API misuse in addition to the returned error code. Default: nothing.
 *   ASYNC_API                  storage class of the public functions. Default: extern.
 */
#ifndef ASYNC_H_INCLUDED
#define ASYNC_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#if defined(__STDC_HOSTED__) && __STDC_HOSTED__
#include <string.h>
#else
/* Freestanding (firmware): C99 guarantees no <string.h>; the two functions the core needs are declared
 * here and come from the board's C library or libgcc-style support code. */
void *memset(void *s, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
#endif

#ifndef ASYNC_CONFIG_TASK_NAMES
#  define ASYNC_CONFIG_TASK_NAMES 0
#endif
#ifndef ASYNC_CONFIG_INLINE_TIMERS
#  define ASYNC_CONFIG_INLINE_TIMERS 8
#endif
#ifndef ASYNC_ASSERT
#  define ASYNC_ASSERT(cond, msg) ((void)0)
#endif
#ifndef ASYNC_API
#  define ASYNC_API extern
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------------ */
/* Errors                                                                                            */
/* ------------------------------------------------------------------------------------------------ */

/* Every error code of the library: name, value, message. The values are the negated Linux errno
 * numbers where a POSIX meaning matches, so an OS error -errno and ours share one space; they are
 * fixed numbers, so freestanding targets (no <errno.h>) see the same values. */
#define ASYNC_ERRORS(X)                                                                        \
    X(ASYNC_OK, 0, "success")                                                                  \
    X(ASYNC_ENOMEM, -12, "out of memory")                                                      \
    X(ASYNC_EBUSY, -16, "task or object is busy (already running or in use)")                 \
    X(ASYNC_EINVAL, -22, "invalid argument")                                                   \
    X(ASYNC_ERANGE, -34, "value out of range")                                                 \
    X(ASYNC_EDEADLK, -35, "deadlock: the main task waits and nothing can wake it")            \
    X(ASYNC_EAGAIN, -11, "operation would block")                                              \
    X(ASYNC_ESHUTDOWN, -108, "object was shut down")                                           \
    X(ASYNC_ETIMEDOUT, -110, "timed out")                                                      \
    X(ASYNC_EINPROGRESS, -115, "task has not finished")                                        \
    X(ASYNC_ECANCELED, -125, "task was cancelled")                                             \
    X(ASYNC_EFAULT, -14, "corrupt coroutine state (resume point unknown)")                    \
    X(ASYNC_ENOENT, -2, "no such file or directory")                                           \
    X(ASYNC_EIO, -5, "input/output error")                                                     \
    X(ASYNC_EBADF, -9, "bad file descriptor")                                                  \
    X(ASYNC_EACCES, -13, "permission denied")                                                  \
    X(ASYNC_EEXIST, -17, "file exists")                                                        \
    X(ASYNC_EISDIR, -21, "is a directory")                                                     \
    X(ASYNC_EMFILE, -24, "too many open files")                                                \
    X(ASYNC_ENOSPC, -28, "no space left on device")                                            \
    X(ASYNC_EPIPE, -32, "broken pipe")                                                         \
    X(ASYNC_ENODATA, -61, "end of stream before the expected data")                            \
    X(ASYNC_EPROTO, -71, "protocol error (malformed input)")                                   \
    X(ASYNC_EOVERFLOW, -75, "input exceeds its limit")                                         \
    X(ASYNC_EMSGSIZE, -90, "message too long")                                                 \
    X(ASYNC_ENOTSUP, -95, "operation not supported")                                           \
    X(ASYNC_EADDRINUSE, -98, "address already in use")                                         \
    X(ASYNC_ENETUNREACH, -101, "network is unreachable")                                       \
    X(ASYNC_ECONNABORTED, -103, "connection aborted")                                          \
    X(ASYNC_ECONNRESET, -104, "connection reset by peer")                                      \
    X(ASYNC_ENOTCONN, -107, "socket is not connected")                                         \
    X(ASYNC_ECONNREFUSED, -111, "connection refused")                                          \
    X(ASYNC_EHOSTUNREACH, -113, "no route to host")                                            \
    X(ASYNC_ENXIO, -6, "no such device or address (name not resolved)")

/** The library's error codes (negative), ASYNC_OK (0), and ASYNC_EUSER: applications number their own
 *  codes from ASYNC_EUSER (1000) up to 32767. */
typedef enum async_errc {
#define ASYNC__ENUM(name, value, msg) name = value,
    ASYNC_ERRORS(ASYNC__ENUM)
#undef ASYNC__ENUM
    ASYNC_EUSER = 1000
} async_errc;

/** An error as a coroutine raises it: a code and a static message. Errors are passed by pointer to
 *  records with static storage (ASYNC_THROW makes one at the throw site), so raising never allocates. */
typedef struct async_error {
    int code;            /**< an async_errc, a negated errno, or an application code >= ASYNC_EUSER */
    const char *message; /**< static text; NULL means async_strerror(code) */
} async_error;

/** The message for a library error code ("unknown error" for others). */
ASYNC_API const char *async_strerror(int code);
/** The static record for a library error code, or NULL if the code is not one of the library's. */
ASYNC_API const async_error *async_error_of(int code);
/** The message of an error: its own text, else async_strerror of its code. NULL gives "success". */
ASYNC_API const char *async_error_message(const async_error *e);

/* ------------------------------------------------------------------------------------------------ */
/* Tasks                                                                                             */
/* ------------------------------------------------------------------------------------------------ */

typedef struct async_task async_task;
typedef struct async_loop async_loop;
typedef struct async_group async_group;
typedef struct async_future async_future;

/** What a coroutine step returns: suspended at an await, or finished (result stored in the task).
 *  ASYNC__AGAIN is private: "call me again now" (the coroutine moved to another resume point). */
typedef enum async_status { ASYNC_PENDING = 0, ASYNC_DONE = 1, ASYNC__AGAIN = 2 } async_status;

/** A coroutine: a function over its frame. The frame is a struct whose first member is the async_task
 *  header; the function casts the header pointer to the frame. */
typedef async_status (*async_fn)(async_task *t);

/** The task header: the first member of every coroutine frame (name it `task`). All fields are private;
 *  use the functions below. 48 bytes on x86-64 and 24 on 32-bit targets, everything included (a sleeping
 *  task's timer is one 16-byte slot in the loop's heap); 8/4 more with ASYNC_CONFIG_TASK_NAMES. */
struct async_task {
    async_fn fn; /* private: the coroutine */
    union {
        async_task *next; /* private: ready-queue or wait-list link; the last one of a wait list is tagged */
        size_t slot;      /* private: index in the timer heap while sleeping */
    } q;
    void *owner; /* private: loop, group or running parent task (flags say which) */
    union {
        const async_error *error; /* private: the pending or final error */
        intptr_t value;           /* private: the return value */
    } r;
    union {
        async_task *waiters; /* private: tasks awaiting this one (LIFO list, woken in FIFO order) */
        async_task *sibling; /* private: next child of the same group */
    } u;
#if ASYNC_CONFIG_TASK_NAMES
    const char *name; /* private: see async_task_set_name */
#endif
    uint16_t lc;   /* private: resume point */
    uint8_t state; /* private */
    uint8_t flags; /* private */
};

/** Prepares a task header to run `fn`. The first time, the memory must be zeroed (static storage, a
 *  zeroed parent frame, calloc): the old state is read to refuse reusing a frame that still runs. Returns t, or NULL if t is NULL, fn is NULL, or t's previous run
 *  has not finished (the header is then left untouched, so spawning it fails with ASYNC_EBUSY). */
ASYNC_API async_task *async_task_init(async_task *t, async_fn fn);
/** Zeroes a whole frame of `size` bytes and prepares its header (the first member) to run fn. Returns
 *  false and touches nothing while the frame's task has not finished. See ASYNC_FRAME_INIT. */
ASYNC_API bool async_frame_init(async_task *t, size_t size, async_fn fn);
/** ASYNC_FRAME_INIT(f, fn): async_frame_init on the frame pointer f (whose header member is `task`). */
#define ASYNC_FRAME_INIT(f, fn) async_frame_init(&(f)->task, sizeof *(f), (fn))

/** Schedules t as a task of the loop (asyncio.create_task at the top level): it starts on a later pass,
 *  in spawn order. The frame must outlive the task. ASYNC_EINVAL for NULL, ASYNC_EBUSY if t already runs. */
ASYNC_API int async_spawn(async_loop *loop, async_task *t);
/** Requests cancellation: t's pending await fails with ASYNC_ECANCELED (a task not started yet never runs
 *  its body). A task awaiting a task or a gather passes the cancellation on and still waits for it to end.
 *  Returns false (and does nothing) if t is NULL or already finished. */
ASYNC_API bool async_cancel(async_task *t);
/** True once t has finished, with a value or an error. */
ASYNC_API bool async_task_done(const async_task *t);
/** 0 if t finished with a value, its error code if it failed, ASYNC_EINPROGRESS if it has not finished,
 *  ASYNC_EINVAL for NULL. Reading it counts as retrieving the error. */
ASYNC_API int async_task_code(async_task *t);
/** The error t finished with, or NULL (finished with a value, or not finished). Counts as retrieval. */
ASYNC_API const async_error *async_task_error(async_task *t);
/** The value t returned with ASYNC_RETURN (0 if it ended without one, failed, or has not finished). */
ASYNC_API intptr_t async_task_value(const async_task *t);
/** True if t finished cancelled (its error is ASYNC_ECANCELED). */
ASYNC_API bool async_task_cancelled(const async_task *t);
/** Names the task for reports and dumps (a string that outlives the task). Stored only when the program
 *  is built with ASYNC_CONFIG_TASK_NAMES=1; otherwise names cost nothing and are not kept. */
ASYNC_API void async_task_set_name(async_task *t, const char *name);
/** The task's name, or "task" when none was set or names are configured out. */
ASYNC_API const char *async_task_name(const async_task *t);

/* ------------------------------------------------------------------------------------------------ */
/* Futures                                                                                           */
/* ------------------------------------------------------------------------------------------------ */

/** A value or error that arrives later, set by whoever completes it; any number of tasks may await it.
 *  Zero-initialised or async_future_init'ed. */
struct async_future {
    async_task *waiters; /* private */
    union {
        const async_error *error;
        intptr_t value;
    } r;          /* private */
    uint8_t state; /* private: 0 pending, 1 value, 2 error */
};

/** Makes f pending again (ASYNC_EBUSY while tasks await it). */
ASYNC_API int async_future_init(async_future *f);
/** Completes f with a value and wakes its waiters in the order they began waiting. ASYNC_EBUSY if f is
 *  already complete, ASYNC_EINVAL for NULL. */
ASYNC_API int async_future_set_value(async_future *f, intptr_t value);
/** Completes f with an error (a static record; NULL is ASYNC_EINVAL). */
ASYNC_API int async_future_set_error(async_future *f, const async_error *error);
/** True once f is complete. */
ASYNC_API bool async_future_done(const async_future *f);
/** f's value (0 while pending or failed). */
ASYNC_API intptr_t async_future_value(const async_future *f);
/** f's error, or NULL. */
ASYNC_API const async_error *async_future_error(const async_future *f);

/* ------------------------------------------------------------------------------------------------ */
/* Groups: gather, task groups, timeouts, shield                                                     */
/* ------------------------------------------------------------------------------------------------ */

/** How a group treats its children (set by the macro that starts it). */
typedef enum async_group_mode {
    ASYNC_GROUP_TASKS = 0,       /* task group: first error cancels the siblings, join re-raises it */
    ASYNC_GROUP_GATHER,          /* gather: first error is raised at once, the others keep running */
    ASYNC_GROUP_GATHER_SETTLED,  /* gather(return_exceptions=True): wait for all, raise nothing */
    ASYNC_GROUP_TIMEOUT,         /* wait_for: child 0 is the work, child 1 the deadline */
    ASYNC_GROUP_SHIELD           /* shield: the awaiter's cancellation does not reach the child */
} async_group_mode;

/** A set of child tasks owned by the coroutine whose frame holds it. Zero-initialise it (a zeroed frame
 *  does). The owner never finishes while a child runs: at its end, running children are cancelled
 *  (shielded ones are not) and awaited first. */
struct async_group {
    async_task *waiters;    /* private */
    async_task *children;   /* private: sibling list, in start order */
    async_task *last_child; /* private */
    async_loop *loop;       /* private */
    async_task *parent;     /* private */
    async_group *live_next; /* private: the loop's list of groups with running children */
    async_group *live_prev; /* private */
    const async_error *error; /* private: first error */
    uint32_t count;           /* private: children started */
    uint32_t running;         /* private */
    uint8_t mode;             /* private */
    uint8_t flags;            /* private */
};

/** Starts `child` in group g owned by the running coroutine t (TaskGroup.create_task). Returns 0,
 *  ASYNC_EINVAL (NULL), ASYNC_EBUSY (child already running, or g in use by another owner or mode). */
ASYNC_API int async_group_spawn(async_task *t, async_group *g, async_task *child);
/** Number of children of g that have not finished. */
ASYNC_API uint32_t async_group_running(const async_group *g);
/** The first error a child of g finished with, or NULL. */
ASYNC_API const async_error *async_group_error(const async_group *g);

/** The state of a wait_for: a group of the work and a deadline task. Zero-initialise it. */
typedef struct async_timeout {
    async_group group;  /* private */
    async_task timer;   /* private: sleeps, then cancels the work */
    int32_t ms;         /* private */
} async_timeout;

/* ------------------------------------------------------------------------------------------------ */
/* The loop                                                                                          */
/* ------------------------------------------------------------------------------------------------ */

/** Milliseconds of the loop's clock; comparisons are wrap-safe, so one sleep may last up to 2^31-1 ms. */
typedef uint32_t async_ms;

typedef struct async__timer {
    async_ms deadline;
    uint32_t seq; /* set order, so equal deadlines fire in the order they were set */
    async_task *task;
} async__timer;

/** Called with each error that no one retrieved, when the loop reports them (see async_run). */
typedef void (*async_error_handler)(async_loop *loop, async_task *task, const async_error *error, void *ctx);

/** The scheduler: a FIFO ready queue and a timer heap. Initialise with async_loop_init; the hosted
 *  runtime's async_loop_new does it and attaches libev. All fields are private. */
struct async_loop {
    async_task *ready_head, *ready_tail;
    async__timer *timers;
    uint32_t ntimers, timer_cap, timer_seq;
    async_ms now;
    async_group *live_groups;
    async_task *unretrieved;
    uint64_t steps; /* coroutine steps run, for statistics */
    /* backend seam: all optional */
    async_ms (*clock)(async_loop *loop);                 /* NULL: virtual clock (time jumps) */
    bool (*wait)(async_loop *loop, int32_t timeout_ms);  /* block for I/O until timeout (-1: none);
                                                            false: nothing could ever wake the loop */
    void *(*realloc_fn)(void *ctx, void *ptr, size_t size); /* grows the timer heap; NULL: fixed */
    void *alloc_ctx;
    async_error_handler on_error;
    void *on_error_ctx;
    void *backend;
    async__timer inline_timers[ASYNC_CONFIG_INLINE_TIMERS];
};

/** Initialises a loop with the virtual clock (time jumps to the next timer when nothing is ready) and
 *  ASYNC_CONFIG_INLINE_TIMERS timer slots. Returns ASYNC_EINVAL for NULL. */
ASYNC_API int async_loop_init(async_loop *loop);
/** Uses a real clock: `clock` returns milliseconds (any origin; wrap-safe). */
ASYNC_API void async_loop_set_clock(async_loop *loop, async_ms (*clock)(async_loop *loop));
/** Lets the loop grow its timer heap with a realloc-style function (failure is ASYNC_ENOMEM at the await). */
ASYNC_API void async_loop_set_allocator(async_loop *loop, void *(*realloc_fn)(void *, void *, size_t), void *ctx);
/** Receives errors no one retrieved (reported when async_run returns and by async_loop_report_errors). */
ASYNC_API void async_loop_set_error_handler(async_loop *loop, async_error_handler fn, void *ctx);
/** The loop's current time in ms. */
ASYNC_API async_ms async_loop_now(const async_loop *loop);
/** Runs one pass: fires due timers, then runs every task that was ready at the start of the pass.
 *  Returns how long the caller may sleep before calling again: 0 if tasks are ready, the ms to the
 *  next timer, or -1 if nothing is scheduled. The firmware main loop calls this (see README). */
ASYNC_API int32_t async_poll(async_loop *loop);
/** Spawns main on the loop and runs the loop until main finishes; returns main's code (0 or its error),
 *  or ASYNC_EDEADLK if main waits and nothing is left that could wake it. Reports unretrieved errors. */
ASYNC_API int async_run(async_loop *loop, async_task *main);
/** Passes every unretrieved error to the error handler and forgets them. Returns how many there were. */
ASYNC_API unsigned async_loop_report_errors(async_loop *loop);
/** Number of sleeping tasks (timer heap entries). */
ASYNC_API uint32_t async_loop_timers(const async_loop *loop);
/** True if tasks are ready to run. */
ASYNC_API bool async_loop_has_ready(const async_loop *loop);

/* ------------------------------------------------------------------------------------------------ */
/* The coroutine macros                                                                              */
/* ------------------------------------------------------------------------------------------------ */
/* A coroutine is a switch over its resume point. Each await stores a resume point, returns PENDING, and
 * on the next step jumps back to the line after it. Raising stores the error and jumps to the nearest
 * enclosing catch/finally label; the labels are found lexically through struct tags (async__c: where a
 * raise goes, async__f: where a return goes) that ASYNC_TRY redefines in its inner scopes.
 * Resume points: the line for awaits, 0x4000|line of the ASYNC_TRY for its catch, 0x8000|line for its
 * finally, 0xC000|line for its end; lines must be below 0x3F00 (a build error says so). */

#if defined(__has_attribute)
#  if __has_attribute(fallthrough)
#    define ASYNC__FALLTHROUGH __attribute__((fallthrough))
#  endif
#endif
#ifndef ASYNC__FALLTHROUGH
#  define ASYNC__FALLTHROUGH ((void)0)
#endif

#define ASYNC__LC_CATCH(line) (0x4000 | (line))
#define ASYNC__LC_FINALLY(line) (0x8000 | (line))
#define ASYNC__LC_ENDTRY(line) (0xC000 | (line))
#define ASYNC__LC_RETURN 0xFFFE
#define ASYNC__LC_RAISE 0xFFFF
#define ASYNC__LINE_OK() ((void)sizeof(char[(__LINE__ < 0x3F00) ? 1 : -1]))

/* Return codes of the await helpers */
#define ASYNC__GO 0    /* continue after the await */
#define ASYNC__WAIT 1  /* suspended: return PENDING */
#define ASYNC__RAISE 2 /* the error is in t->r.error: jump to the handler */
#define ASYNC__RETURNING 3 /* a return is pending (ASYNC_END_TRY only) */

/* Jumps to a resume point: store it and return ASYNC__AGAIN; the caller calls the coroutine again at
 * once. Never a backward goto or a fall-through into a resume label: a resume point reachable only
 * through the switch is what lets the compilers report a local used across an await. */
#define ASYNC__GOTO(t, point) return ((t)->lc = (uint16_t)(point), ASYNC__AGAIN)
#define ASYNC__TO_HANDLER(t) ASYNC__GOTO(t, sizeof(struct async__c))

/** Opens a coroutine body; `t` is the coroutine's async_task parameter. */
#define ASYNC_BEGIN(t)                                      \
    struct async__c { char n[ASYNC__LC_RAISE]; };          \
    struct async__f { char n[ASYNC__LC_RETURN]; };         \
    switch ((t)->lc) {                                      \
    case 0:

/** Closes a coroutine body: falling off the end finishes the task with value 0. */
#define ASYNC_END(t)                                                    \
    ASYNC__FALLTHROUGH;                                                 \
    case ASYNC__LC_ENDTRY(0):                                           \
        (t)->r.value = 0;                                               \
        return async__complete((t));                                    \
    case ASYNC__LC_RETURN:                                              \
    case ASYNC__LC_RAISE:                                               \
        return async__complete((t));                                    \
    default:                                                            \
        if (async__redirect((t))) return ASYNC__AGAIN;                  \
        return async__complete((t));                                    \
    }

/* An await: `start` runs once: GO (nothing to wait for: come back at once to the check), WAIT (it
 * suspended: return PENDING) or RAISE. `check` runs on every resume: GO, WAIT or RAISE. */
#define ASYNC__AWAIT(t, start, check)                                   \
    do {                                                                \
        ASYNC__LINE_OK();                                               \
        (t)->lc = __LINE__;                                             \
        switch (start) {                                                \
        case ASYNC__GO: return ASYNC__AGAIN;                            \
        case ASYNC__WAIT: return ASYNC_PENDING;                         \
        default: ASYNC__TO_HANDLER(t);                                  \
        }                                                               \
    case __LINE__:                                                      \
        switch (check) {                                                \
        case ASYNC__GO: break;                                          \
        case ASYNC__WAIT: return ASYNC_PENDING;                         \
        default: ASYNC__TO_HANDLER(t);                                  \
        }                                                               \
    } while (0)

/** await x: if x was never started, runs it inline as part of this task (a coroutine call, no scheduling
 *  hop); if x is a running task, waits for it to finish. Either way, x's error is raised here, and its
 *  return value is async_task_value(x) (or its frame's fields). */
#define AWAIT(t, x) ASYNC__AWAIT(t, async__await_start((t), (x)), async__await_check((t), (x)))
/** await asyncio.sleep(ms / 1000.0): suspends for ms milliseconds (ms <= 0 yields once). */
#define AWAIT_SLEEP(t, ms) ASYNC__AWAIT(t, async__sleep_start((t), (ms)), async__sleep_check((t)))
/** Lets every other ready task run once, then continues (asyncio.sleep(0)). */
#define ASYNC_YIELD(t) AWAIT_SLEEP(t, 0)
/** Waits for future f; its error is raised here, its value is async_future_value(f). */
#define AWAIT_FUTURE(t, f) ASYNC__AWAIT(t, async__future_start((t), (f)), async__future_check((t), (f)))

#define ASYNC__NARGS(...) (sizeof((async_task *[]){__VA_ARGS__}) / sizeof(async_task *))
/** results = await asyncio.gather(a, b, ...): starts every child in group g and waits for all; the first
 *  error is raised at once while the others keep running. Results stay in the children's frames. */
#define AWAIT_GATHER(t, g, ...)                                                                       \
    ASYNC__AWAIT(t, async__gather_start((t), (g), ASYNC_GROUP_GATHER, (async_task *[]){__VA_ARGS__}, \
                                        ASYNC__NARGS(__VA_ARGS__)),                                   \
                 async__group_check((t), (g)))
/** gather(..., return_exceptions=True): waits for every child and raises nothing; read each child's
 *  async_task_code / async_task_error. */
#define AWAIT_GATHER_SETTLED(t, g, ...)                                                               \
    ASYNC__AWAIT(t, async__gather_start((t), (g), ASYNC_GROUP_GATHER_SETTLED,                         \
                                        (async_task *[]){__VA_ARGS__}, ASYNC__NARGS(__VA_ARGS__)),    \
                 async__group_check((t), (g)))
/** gather over n frames laid out `stride` bytes apart, the first one's header at `first`. */
#define AWAIT_GATHER_ARRAY(t, g, first, n, stride)                                                    \
    ASYNC__AWAIT(t, async__gather_array_start((t), (g), ASYNC_GROUP_GATHER, (first), (n), (stride)), \
                 async__group_check((t), (g)))
/** asyncio.create_task(child) inside task group g (structured: g's owner cannot finish before child). */
#define ASYNC_SPAWN(t, g, child)                                                                      \
    do {                                                                                              \
        if (async__spawn_or_raise((t), (g), (child)) == ASYNC__RAISE) ASYNC__TO_HANDLER(t);           \
    } while (0)
/** Leaves a task group (async with TaskGroup() exit): waits for every child; the first error cancelled
 *  the others and is raised here once all have ended. */
#define AWAIT_GROUP(t, g) ASYNC__AWAIT(t, async__group_wait((t), (g)), async__group_check((t), (g)))
/** await asyncio.wait_for(child, ms / 1000.0): at the deadline the child is cancelled and, once it has
 *  ended, ASYNC_ETIMEDOUT is raised (even if the child swallowed the cancellation). */
#define AWAIT_TIMEOUT(t, tmo, ms, child) \
    ASYNC__AWAIT(t, async__timeout_start((t), (tmo), (ms), (child)), async__group_check((t), &(tmo)->group))
/** await asyncio.shield(child): cancelling the awaiter raises ASYNC_ECANCELED here at once but does not
 *  reach child, which runs on (its owner still waits for it before finishing). */
#define AWAIT_SHIELD(t, g, child)                                                                     \
    ASYNC__AWAIT(t, async__gather_start((t), (g), ASYNC_GROUP_SHIELD, (async_task *[]){(child)}, 1),  \
                 async__group_check((t), (g)))

/** return value: finishes the coroutine with an integer value, after running enclosing finally blocks. */
#define ASYNC_RETURN(t, value)                              \
    do {                                                    \
        async__set_return((t), (intptr_t)(value));          \
        ASYNC__GOTO(t, sizeof(struct async__f));            \
    } while (0)
/** raise: fails with `code` and a static message, caught by the nearest ASYNC_CATCH (code must be a
 *  constant; for codes computed at run time raise a static async_error with ASYNC_THROW_ERROR). */
#define ASYNC_THROW(t, code, message)                                               \
    do {                                                                            \
        static const async_error async__thrown = {(code), (message)};               \
        async__raise((t), &async__thrown);                                          \
        ASYNC__TO_HANDLER(t);                                                       \
    } while (0)
/** raise an existing error record (e.g. async_error_of(code), or one of your own static ones). */
#define ASYNC_THROW_ERROR(t, error)                         \
    do {                                                    \
        async__raise((t), (error));                         \
        ASYNC__TO_HANDLER(t);                               \
    } while (0)
/** Inside ASYNC_CATCH: raise the caught error again (Python's bare `raise`). */
#define ASYNC_RERAISE(t) ASYNC_THROW_ERROR(t, async_caught(t))

/** try: ... ASYNC_CATCH(t) {...} and/or ASYNC_FINALLY(t) {...}, closed by ASYNC_END_TRY(t). Blocks may
 *  await. A finally block runs on every way out: normal end, error, return and cancellation. */
#define ASYNC_TRY(t)                                                            \
    {                                                                           \
        struct async__up_c { char n[sizeof(struct async__c)]; };               \
        struct async__up_f { char n[sizeof(struct async__f)]; };               \
        struct async__try { char n[__LINE__]; };                               \
        {                                                                       \
            struct async__c { char n[ASYNC__LC_CATCH(__LINE__)]; };            \
            struct async__f { char n[ASYNC__LC_FINALLY(__LINE__)]; };          \
            ASYNC__LINE_OK();

/** except: runs when the try block raised; async_caught(t) is the error (re-raise with ASYNC_RERAISE). */
#define ASYNC_CATCH(t)                                                                      \
            ASYNC__GOTO(t, ASYNC__LC_FINALLY(sizeof(struct async__try)));                   \
        }                                                                                   \
        case ASYNC__LC_CATCH(sizeof(struct async__try)):                                    \
            async__caught_enter((t));                                                        \
        {                                                                                   \
            struct async__c { char n[ASYNC__LC_FINALLY(sizeof(struct async__try))]; };      \
            struct async__f { char n[ASYNC__LC_FINALLY(sizeof(struct async__try))]; };

/** finally: runs on every way out of the try and catch blocks; a pending error or return continues
 *  after it. */
#define ASYNC_FINALLY(t)                                                                    \
        }                                                                                   \
        ASYNC__FALLTHROUGH;                                                                 \
        case ASYNC__LC_FINALLY(sizeof(struct async__try)):                                  \
        {                                                                                   \
            struct async__c { char n[ASYNC__LC_ENDTRY(sizeof(struct async__try))]; };       \
            struct async__f { char n[ASYNC__LC_ENDTRY(sizeof(struct async__try))]; };

/** Closes ASYNC_TRY; continues a pending error or return outwards. */
#define ASYNC_END_TRY(t)                                                                    \
        }                                                                                   \
        ASYNC__FALLTHROUGH;                                                                 \
        case ASYNC__LC_ENDTRY(sizeof(struct async__try)):                                   \
        switch (async__end_try((t))) {                                                      \
        case ASYNC__RAISE: ASYNC__GOTO(t, sizeof(struct async__up_c));                     \
        case ASYNC__RETURNING: ASYNC__GOTO(t, sizeof(struct async__up_f));                 \
        default: break;                                                                     \
        }                                                                                   \
    }

/** The error being handled in an ASYNC_CATCH block (or NULL outside one). */
#define async_caught(t) ((t)->r.error)

/* private helpers used by the macros */
ASYNC_API async_status async__complete(async_task *t);
ASYNC_API bool async__redirect(async_task *t);
ASYNC_API void async__raise(async_task *t, const async_error *e);
ASYNC_API void async__set_return(async_task *t, intptr_t value);
ASYNC_API void async__caught_enter(async_task *t);
ASYNC_API int async__end_try(async_task *t);
ASYNC_API int async__await_start(async_task *t, async_task *x);
ASYNC_API int async__await_check(async_task *t, async_task *x);
ASYNC_API int async__sleep_start(async_task *t, int32_t ms);
ASYNC_API int async__sleep_check(async_task *t);
ASYNC_API int async__future_start(async_task *t, async_future *f);
ASYNC_API int async__future_check(async_task *t, async_future *f);
ASYNC_API int async__gather_start(async_task *t, async_group *g, int mode, async_task *const *children, size_t n);
ASYNC_API int async__gather_array_start(async_task *t, async_group *g, int mode, async_task *first, size_t n,
                                        size_t stride);
ASYNC_API int async__group_check(async_task *t, async_group *g);
ASYNC_API int async__group_wait(async_task *t, async_group *g);
ASYNC_API int async__spawn_or_raise(async_task *t, async_group *g, async_task *child);
ASYNC_API int async__timeout_start(async_task *t, async_timeout *tmo, int32_t ms, async_task *child);

/* ================================================================================================ */
/* The hosted runtime (libasync.a, link with -lasync -lev): a loop on libev, with real time.         */
/* Not available to freestanding builds.                                                              */
/* ================================================================================================ */
#if !defined(ASYNC_FREESTANDING) && defined(__STDC_HOSTED__) && __STDC_HOSTED__
struct ev_loop;

/** Flags of async_loop_new. */
enum {
    ASYNC_LOOP_VIRTUAL_CLOCK = 1 /**< time jumps to the next timer when nothing is ready (tests) */
};

/** Creates a loop on a new libev loop with the monotonic clock, a growing timer heap, and errors that no
 *  one retrieved printed to stderr. With the environment variable ASYNC_CLOCK=virtual, or the flag
 *  ASYNC_LOOP_VIRTUAL_CLOCK, it uses the virtual clock instead. NULL if out of memory. */
ASYNC_API async_loop *async_loop_new(unsigned flags);
/** Creates a loop driven by an ev_loop the application already runs (it keeps calling ev_run): ready
 *  tasks run in one ev_prepare callback per iteration and one ev_timer serves every sleeper.
 *  NULL if out of memory or ev is NULL. */
ASYNC_API async_loop *async_loop_attach(struct ev_loop *ev);
/** The libev loop under `loop`. */
ASYNC_API struct ev_loop *async_loop_ev(async_loop *loop);
/** Frees a loop made by async_loop_new or async_loop_attach (reporting unretrieved errors first). The
 *  tasks' frames are the caller's; tasks still scheduled are simply never run again. */
ASYNC_API void async_loop_free(async_loop *loop);
/** Zeroed memory for `count` frames of `size` bytes (a pool for many tasks: index it as an array), with
 *  its pages mapped up front (one mmap with MAP_POPULATE from 1 MiB on, instead of a page fault per 4 KB
 *  on first touch). NULL if count or size is 0, the product overflows, or memory is short. */
ASYNC_API void *async_frames_new(size_t count, size_t size);
/** Frees a pool from async_frames_new (the same count and size). NULL is ignored. */
ASYNC_API void async_frames_free(void *frames, size_t count, size_t size);
/** asyncio.run(main): a new loop, run main to its end, free the loop. Returns main's code (0 or an error;
 *  an error is also printed to stderr). With ASYNC_CLOCK=virtual the elapsed virtual time is printed to
 *  stderr as "async: virtual time N ms". */
ASYNC_API int async_main(async_task *main);

#endif /* hosted */

#ifdef __cplusplus
}
#endif

#endif /* ASYNC_H_INCLUDED */

/* ================================================================================================ */
/* Implementation: define ASYNC_IMPLEMENTATION in exactly one file before including this header.    */
/* ================================================================================================ */
#if defined(ASYNC_IMPLEMENTATION) && !defined(ASYNC_IMPLEMENTATION_DONE)
#define ASYNC_IMPLEMENTATION_DONE

/* A C99 static assertion: a negative array size is a compile error. */
#define ASYNC__STATIC_ASSERT(cond, name) typedef char async__assert_##name[(cond) ? 1 : -1]
/* The header budget: 48 bytes on 64-bit targets, 24 on 32-bit ones (+1 pointer with task names). */
ASYNC__STATIC_ASSERT(sizeof(async_task) <= (6 + ASYNC_CONFIG_TASK_NAMES) * sizeof(void *), task_header_budget);

/* Task states */
enum {
    ASYNC__S_INIT = 0,   /* prepared, never started */
    ASYNC__S_READY,      /* in the ready queue */
    ASYNC__S_RUNNING,    /* being stepped (an inline child: started and not finished) */
    ASYNC__S_SLEEPING,   /* in the timer heap */
    ASYNC__S_WAIT,       /* in a wait list; cancelling detaches it */
    ASYNC__S_WAIT_TASK,  /* in a task's waiters; cancelling passes on to that task */
    ASYNC__S_WAIT_GROUP, /* in a group's waiters; cancelling passes on to the children */
    ASYNC__S_DONE
};
/* Task flags */
#define ASYNC__F_OWNER 0x03u     /* what `owner` points to: */
#define ASYNC__OWN_LOOP 0x01u    /*   a loop (a root task) */
#define ASYNC__OWN_GROUP 0x02u   /*   a group (a child task) */
#define ASYNC__OWN_TASK 0x03u    /*   the coroutine that awaits it inline */
#define ASYNC__F_CANCEL 0x04u    /* cancellation requested, not yet delivered */
#define ASYNC__F_RAISE 0x08u     /* an error is pending (running) or the outcome (done) */
#define ASYNC__F_RETURN 0x10u    /* a return is pending */
#define ASYNC__F_FINISHING 0x20u /* ended; waiting for children in its frame */
#define ASYNC__F_OWNS 0x40u      /* may own groups with running children */
#define ASYNC__F_SEEN 0x80u      /* its error was retrieved or reported */
/* Group flags */
#define ASYNC__G_TIMED_OUT 0x01u
#define ASYNC__G_CHILD_WAITERS 0x02u /* tasks await single children: wake on every child's end */

#define ASYNC__TAG(headp) ((async_task *)((uintptr_t)(headp) | 1u))
#define ASYNC__IS_TAG(p) (((uintptr_t)(p)&1u) != 0)
#define ASYNC__UNTAG(p) ((async_task **)((uintptr_t)(p) & ~(uintptr_t)1u))
#define ASYNC__OWNER(t) ((t)->flags & ASYNC__F_OWNER)

static const async_error async__errors[] = {
#define ASYNC__REC(name, value, msg) {value, msg},
    ASYNC_ERRORS(ASYNC__REC)
#undef ASYNC__REC
};
#define ASYNC__NERRORS (sizeof async__errors / sizeof async__errors[0])

ASYNC_API const async_error *async_error_of(int code) {
    size_t i;
    for (i = 0; i < ASYNC__NERRORS; i++)
        if (async__errors[i].code == code) return &async__errors[i];
    return NULL;
}

ASYNC_API const char *async_strerror(int code) {
    const async_error *e = async_error_of(code);
    return e ? e->message : "unknown error";
}

ASYNC_API const char *async_error_message(const async_error *e) {
    if (!e) return async_strerror(0);
    return e->message ? e->message : async_strerror(e->code);
}

static const async_error *async__err(int code) { return async_error_of(code); }

/* ---- wait lists: LIFO singly linked through q.next, the last link tagged with the head's address so
 * that a waiter can find (and leave) its list without a back pointer. Woken in FIFO order. ---- */

static void async__wl_push(async_task **headp, async_task *w) {
    w->q.next = *headp ? *headp : ASYNC__TAG(headp);
    *headp = w;
}

static async_task **async__wl_of(const async_task *w) {
    async_task *p = w->q.next;
    while (!ASYNC__IS_TAG(p)) p = p->q.next;
    return ASYNC__UNTAG(p);
}

static void async__wl_remove(async_task *w) {
    async_task **headp = async__wl_of(w), **pp = headp;
    while (*pp != w) pp = &(*pp)->q.next;
    *pp = (pp == headp && ASYNC__IS_TAG(w->q.next)) ? NULL : w->q.next;
    w->q.next = NULL;
}

/* ---- ownership and the ready queue ---- */

static async_loop *async__loop_of(const async_task *t) {
    for (;;) {
        switch (ASYNC__OWNER(t)) {
        case ASYNC__OWN_LOOP: return (async_loop *)t->owner;
        case ASYNC__OWN_GROUP: return ((async_group *)t->owner)->loop;
        case ASYNC__OWN_TASK: t = (const async_task *)t->owner; break;
        default: return NULL;
        }
    }
}

/* The scheduled task that runs t (t itself unless t is awaited inline). */
static async_task *async__runner(async_task *t) {
    while (ASYNC__OWNER(t) == ASYNC__OWN_TASK) t = (async_task *)t->owner;
    return t;
}

static void async__push_ready(async_loop *loop, async_task *t) {
    t->state = ASYNC__S_READY;
    t->q.next = NULL;
    if (loop->ready_tail)
        loop->ready_tail->q.next = t;
    else
        loop->ready_head = t;
    loop->ready_tail = t;
}

static void async__wake(async_task *t) { async__push_ready(async__loop_of(t), t); }

static void async__wl_wake_all(async_task **headp) {
    async_task *p = *headp, *fifo = NULL;
    *headp = NULL;
    while (p) { /* reverse: the list is LIFO */
        async_task *n = p->q.next;
        p->q.next = fifo;
        fifo = p;
        p = ASYNC__IS_TAG(n) ? NULL : n;
    }
    while (fifo) {
        async_task *n = fifo->q.next;
        async__wake(fifo);
        fifo = n;
    }
}

/* ---- the timer heap: a binary min-heap of (deadline, seq, task) in loop storage ---- */

static bool async__timer_before(const async__timer *a, const async__timer *b) {
    int32_t d = (int32_t)(a->deadline - b->deadline);
    return d < 0 || (d == 0 && (int32_t)(a->seq - b->seq) < 0);
}

static void async__timer_place(async_loop *loop, uint32_t i, async__timer tm) {
    loop->timers[i] = tm;
    tm.task->q.slot = i;
}

static void async__timer_sift(async_loop *loop, uint32_t i) {
    async__timer tm = loop->timers[i];
    while (i > 0) { /* up */
        uint32_t parent = (i - 1) / 2;
        if (!async__timer_before(&tm, &loop->timers[parent])) break;
        async__timer_place(loop, i, loop->timers[parent]);
        i = parent;
    }
    for (;;) { /* down */
        uint32_t c = 2 * i + 1;
        if (c >= loop->ntimers) break;
        if (c + 1 < loop->ntimers && async__timer_before(&loop->timers[c + 1], &loop->timers[c])) c++;
        if (!async__timer_before(&loop->timers[c], &tm)) break;
        async__timer_place(loop, i, loop->timers[c]);
        i = c;
    }
    async__timer_place(loop, i, tm);
}

static int async__timer_add(async_loop *loop, async_task *t, async_ms deadline) {
    async__timer tm;
    if (loop->ntimers == loop->timer_cap) {
        uint32_t cap = loop->timer_cap * 2;
        async__timer *p;
        if (!loop->realloc_fn || cap < loop->timer_cap || (size_t)cap * sizeof *p / sizeof *p != cap) return ASYNC_ENOMEM;
        if (loop->timers == loop->inline_timers) {
            p = (async__timer *)loop->realloc_fn(loop->alloc_ctx, NULL, cap * sizeof *p);
            if (p) memcpy(p, loop->inline_timers, loop->ntimers * sizeof *p);
        } else {
            p = (async__timer *)loop->realloc_fn(loop->alloc_ctx, loop->timers, cap * sizeof *p);
        }
        if (!p) return ASYNC_ENOMEM;
        loop->timers = p;
        loop->timer_cap = cap;
    }
    tm.deadline = deadline;
    tm.seq = loop->timer_seq++;
    tm.task = t;
    loop->timers[loop->ntimers++] = tm;
    async__timer_sift(loop, loop->ntimers - 1);
    return 0;
}

static void async__timer_remove(async_loop *loop, uint32_t i) {
    loop->ntimers--;
    if (i != loop->ntimers) {
        loop->timers[i] = loop->timers[loop->ntimers];
        async__timer_sift(loop, i);
    }
}

/* ---- tasks ---- */

static void async__unretrieved_remove(async_loop *loop, async_task *t) {
    async_task **pp = &loop->unretrieved;
    while (*pp && *pp != t) pp = &(*pp)->q.next;
    if (*pp) *pp = t->q.next;
    t->q.next = NULL;
}

/* Marks t's error as retrieved (it may sit in the loop's unretrieved list). */
static void async__retrieve(async_task *t) {
    if ((t->flags & (ASYNC__F_RAISE | ASYNC__F_SEEN)) == ASYNC__F_RAISE) {
        if (ASYNC__OWNER(t) == ASYNC__OWN_LOOP && t->state == ASYNC__S_DONE)
            async__unretrieved_remove((async_loop *)t->owner, t);
        t->flags |= ASYNC__F_SEEN;
    }
}

static bool async__live(const async_task *t) {
    if (t->state != ASYNC__S_INIT && t->state != ASYNC__S_DONE) return true;
    /* a finished child stays linked in its group until the group is idle */
    return t->state == ASYNC__S_DONE && ASYNC__OWNER(t) == ASYNC__OWN_GROUP &&
           ((const async_group *)t->owner)->running > 0;
}

ASYNC_API async_task *async_task_init(async_task *t, async_fn fn) {
    if (!t || !fn) return NULL;
    if (async__live(t)) {
        ASYNC_ASSERT(0, "async_task_init: the task is still running; its frame cannot be reused yet");
        return NULL;
    }
    if (t->state == ASYNC__S_DONE && ASYNC__OWNER(t) == ASYNC__OWN_LOOP &&
        (t->flags & (ASYNC__F_RAISE | ASYNC__F_SEEN)) == ASYNC__F_RAISE)
        async__unretrieved_remove((async_loop *)t->owner, t); /* reused: its error is dropped */
    t->fn = fn;
    t->q.next = NULL;
    t->owner = NULL;
    t->r.value = 0;
    t->u.waiters = NULL;
#if ASYNC_CONFIG_TASK_NAMES
    t->name = NULL;
#endif
    t->lc = 0;
    t->state = ASYNC__S_INIT;
    t->flags = 0;
    return t;
}

ASYNC_API bool async_frame_init(async_task *t, size_t size, async_fn fn) {
    if (!t || !fn || size < sizeof *t || async__live(t)) {
        ASYNC_ASSERT(!t || !async__live(t), "async_frame_init: the frame's task is still running");
        return false;
    }
    async_task_init(t, fn); /* unlinks it from the loop's lists first */
    memset((char *)t + sizeof *t, 0, size - sizeof *t);
    return true;
}

ASYNC_API bool async_task_done(const async_task *t) { return t && t->state == ASYNC__S_DONE; }

ASYNC_API int async_task_code(async_task *t) {
    if (!t) return ASYNC_EINVAL;
    if (t->state != ASYNC__S_DONE) return ASYNC_EINPROGRESS;
    if (!(t->flags & ASYNC__F_RAISE)) return 0;
    async__retrieve(t);
    return t->r.error->code;
}

ASYNC_API const async_error *async_task_error(async_task *t) {
    if (!t || t->state != ASYNC__S_DONE || !(t->flags & ASYNC__F_RAISE)) return NULL;
    async__retrieve(t);
    return t->r.error;
}

ASYNC_API intptr_t async_task_value(const async_task *t) {
    if (!t || t->state != ASYNC__S_DONE || (t->flags & ASYNC__F_RAISE)) return 0;
    return t->r.value;
}

ASYNC_API bool async_task_cancelled(const async_task *t) {
    return t && t->state == ASYNC__S_DONE && (t->flags & ASYNC__F_RAISE) && t->r.error->code == ASYNC_ECANCELED;
}

ASYNC_API void async_task_set_name(async_task *t, const char *name) {
#if ASYNC_CONFIG_TASK_NAMES
    if (t) t->name = name;
#else
    (void)t;
    (void)name;
#endif
}

ASYNC_API const char *async_task_name(const async_task *t) {
#if ASYNC_CONFIG_TASK_NAMES
    if (t && t->name) return t->name;
#else
    (void)t;
#endif
    return "task";
}

ASYNC_API int async_spawn(async_loop *loop, async_task *t) {
    if (!loop || !t || !t->fn) return ASYNC_EINVAL;
    if (t->state != ASYNC__S_INIT) {
        ASYNC_ASSERT(t->state == ASYNC__S_DONE, "async_spawn: the task is already running");
        return t->state == ASYNC__S_DONE ? ASYNC_EINVAL : ASYNC_EBUSY;
    }
    t->owner = loop;
    t->flags = (uint8_t)((t->flags & ~ASYNC__F_OWNER) | ASYNC__OWN_LOOP);
    t->u.waiters = NULL;
    async__push_ready(loop, t);
    return 0;
}

/* ---- groups ---- */

static void async__group_link(async_group *g) {
    async_loop *loop = g->loop;
    g->live_prev = NULL;
    g->live_next = loop->live_groups;
    if (loop->live_groups) loop->live_groups->live_prev = g;
    loop->live_groups = g;
}

static void async__group_unlink(async_group *g) {
    if (g->live_prev)
        g->live_prev->live_next = g->live_next;
    else
        g->loop->live_groups = g->live_next;
    if (g->live_next) g->live_next->live_prev = g->live_prev;
    g->live_next = g->live_prev = NULL;
}

static void async__group_cancel_children(async_group *g, const async_task *except) {
    async_task *c;
    for (c = g->children; c; c = c->u.sibling)
        if (c != except && c->state != ASYNC__S_DONE) async_cancel(c);
}

/* Prepares g for a new set of children owned by t. */
static int async__group_begin(async_task *t, async_group *g, int mode) {
    if (g->running) return ASYNC_EBUSY;
    g->waiters = NULL;
    g->children = g->last_child = NULL;
    g->loop = async__loop_of(t);
    g->parent = t;
    g->error = NULL;
    g->count = 0;
    g->mode = (uint8_t)mode;
    g->flags = 0;
    return g->loop ? 0 : ASYNC_EINVAL;
}

static int async__group_add(async_group *g, async_task *child) {
    if (!child || !child->fn) return ASYNC_EINVAL;
    if (child->state != ASYNC__S_INIT) return child->state == ASYNC__S_DONE ? ASYNC_EINVAL : ASYNC_EBUSY;
    child->owner = g;
    child->flags = (uint8_t)((child->flags & ~ASYNC__F_OWNER) | ASYNC__OWN_GROUP);
    child->u.sibling = NULL;
    if (g->last_child)
        g->last_child->u.sibling = child;
    else
        g->children = child;
    g->last_child = child;
    g->count++;
    if (g->running++ == 0) async__group_link(g);
    g->parent->flags |= ASYNC__F_OWNS;
    async__push_ready(g->loop, child);
    return 0;
}

static void async__group_child_done(async_group *g, async_task *child) {
    bool failed = (child->flags & ASYNC__F_RAISE) != 0;
    bool wake = (g->flags & ASYNC__G_CHILD_WAITERS) != 0;
    g->running--;
    switch (g->mode) {
    case ASYNC_GROUP_TASKS:
        if (failed && child->r.error->code != ASYNC_ECANCELED && !g->error) {
            g->error = child->r.error;
            async__group_cancel_children(g, child);
        }
        break;
    case ASYNC_GROUP_GATHER:
        if (failed && !g->error) {
            g->error = child->r.error;
            wake = true; /* the first error propagates at once */
        }
        break;
    case ASYNC_GROUP_TIMEOUT: {
        async_task *timer = &((async_timeout *)(void *)g)->timer;
        if (child == timer) {
            if (!failed) {
                g->flags |= ASYNC__G_TIMED_OUT;
                async__group_cancel_children(g, timer);
            }
        } else if (timer->state != ASYNC__S_DONE) {
            async_cancel(timer);
        }
        break;
    }
    default: break;
    }
    if (g->running == 0) {
        async__group_unlink(g);
        wake = true;
    }
    if (wake) async__wl_wake_all(&g->waiters);
}

ASYNC_API int async_group_spawn(async_task *t, async_group *g, async_task *child) {
    int rc;
    if (!t || !g || !child) return ASYNC_EINVAL;
    if (!g->running) {
        if (!child->fn) return ASYNC_EINVAL;
        if (child->state != ASYNC__S_INIT) return child->state == ASYNC__S_DONE ? ASYNC_EINVAL : ASYNC_EBUSY;
        rc = async__group_begin(t, g, ASYNC_GROUP_TASKS);
        if (rc) return rc;
    } else if (g->parent != t || g->mode != ASYNC_GROUP_TASKS) {
        return ASYNC_EBUSY;
    }
    return async__group_add(g, child);
}

ASYNC_API uint32_t async_group_running(const async_group *g) { return g ? g->running : 0; }
ASYNC_API const async_error *async_group_error(const async_group *g) { return g ? g->error : NULL; }

/* The first group owned by t that still has running children. */
static async_group *async__owned_live_group(async_task *t) {
    async_loop *loop = async__loop_of(t);
    async_group *g;
    for (g = loop ? loop->live_groups : NULL; g; g = g->live_next)
        if (g->parent == t) return g;
    return NULL;
}

/* ---- completion ---- */

ASYNC_API async_status async__complete(async_task *t) {
    async_task *runner;
    if (t->flags & ASYNC__F_OWNS) {
        async_group *g = async__owned_live_group(t);
        if (g) { /* a frame never ends while a child inside it runs: cancel them, wait for them */
            async_group *h;
            t->flags |= ASYNC__F_FINISHING;
            for (h = g; h; h = h->live_next)
                if (h->parent == t && h->mode != ASYNC_GROUP_SHIELD) async__group_cancel_children(h, NULL);
            runner = async__runner(t);
            runner->state = ASYNC__S_WAIT_GROUP;
            async__wl_push(&g->waiters, runner);
            return ASYNC_PENDING;
        }
        t->flags &= (uint8_t)~ASYNC__F_OWNS;
    }
    t->flags &= (uint8_t) ~(ASYNC__F_FINISHING | ASYNC__F_RETURN | ASYNC__F_CANCEL);
    t->state = ASYNC__S_DONE;
    switch (ASYNC__OWNER(t)) {
    case ASYNC__OWN_GROUP:
        t->flags |= ASYNC__F_SEEN; /* the group retrieves its children's errors */
        async__group_child_done((async_group *)t->owner, t);
        break;
    case ASYNC__OWN_LOOP:
        if (t->u.waiters) {
            t->flags |= ASYNC__F_SEEN;
            async__wl_wake_all(&t->u.waiters);
        } else if (t->flags & ASYNC__F_RAISE) {
            async_loop *loop = (async_loop *)t->owner;
            t->q.next = loop->unretrieved;
            loop->unretrieved = t;
        }
        break;
    default: break; /* inline: the awaiting coroutine reads the outcome */
    }
    return ASYNC_DONE;
}

ASYNC_API bool async__redirect(async_task *t) {
    /* a jump to a catch or finally label that the try does not have goes on to the next part */
    if (t->lc >= 0x4000 && t->lc < 0xC000 && (t->lc & 0x3FFF) != 0) {
        t->lc = (uint16_t)(t->lc + 0x4000);
        return true;
    }
    async__raise(t, async__err(ASYNC_EFAULT));
    return false;
}

ASYNC_API void async__raise(async_task *t, const async_error *e) {
    t->r.error = e ? e : async__err(ASYNC_EINVAL);
    t->flags = (uint8_t)((t->flags | ASYNC__F_RAISE) & ~ASYNC__F_RETURN);
}

ASYNC_API void async__set_return(async_task *t, intptr_t value) {
    t->r.value = value;
    t->flags = (uint8_t)((t->flags | ASYNC__F_RETURN) & ~ASYNC__F_RAISE);
}

ASYNC_API void async__caught_enter(async_task *t) { t->flags &= (uint8_t)~ASYNC__F_RAISE; }

ASYNC_API int async__end_try(async_task *t) {
    if (t->flags & ASYNC__F_RAISE) return ASYNC__RAISE;
    if (t->flags & ASYNC__F_RETURN) return ASYNC__RETURNING;
    return ASYNC__GO;
}

/* Delivers a requested cancellation to the coroutine t run by `runner`. */
static int async__deliver_cancel(async_task *t, async_task *runner) {
    runner->flags &= (uint8_t)~ASYNC__F_CANCEL;
    async__raise(t, async__err(ASYNC_ECANCELED));
    return ASYNC__RAISE;
}

/* Steps coroutine t until it suspends or finishes (ASYNC__AGAIN: it moved to another resume point). */
static async_status async__resume(async_task *t) {
    async_status st;
    do st = t->fn(t);
    while (st == ASYNC__AGAIN);
    return st;
}

static bool async__waiting(const async_task *runner) {
    return runner->state >= ASYNC__S_SLEEPING && runner->state <= ASYNC__S_WAIT_GROUP;
}

/* The outcome of a finished task x, raised into t if it failed. */
static int async__outcome(async_task *t, async_task *x) {
    if (!(x->flags & ASYNC__F_RAISE)) return ASYNC__GO;
    async__retrieve(x);
    async__raise(t, x->r.error);
    return ASYNC__RAISE;
}

ASYNC_API int async__await_start(async_task *t, async_task *x) {
    async_task *runner = async__runner(t);
    if (!x || x == t || !x->fn) {
        async__raise(t, async__err(ASYNC_EINVAL));
        return ASYNC__RAISE;
    }
    if (x->state == ASYNC__S_INIT) { /* a coroutine call: x runs inline, as part of this task */
        x->owner = t;
        x->flags = (uint8_t)((x->flags & ~ASYNC__F_OWNER) | ASYNC__OWN_TASK);
        x->state = ASYNC__S_RUNNING;
        return ASYNC__GO;
    }
    if (x->state == ASYNC__S_DONE) return ASYNC__GO;
    if (ASYNC__OWNER(x) == ASYNC__OWN_TASK) { /* x already runs inline in some coroutine */
        async__raise(t, async__err(ASYNC_EBUSY));
        return ASYNC__RAISE;
    }
    if (runner->flags & ASYNC__F_CANCEL) return async__deliver_cancel(t, runner);
    if (ASYNC__OWNER(x) == ASYNC__OWN_GROUP) { /* children of a group share its wait list */
        async_group *g = (async_group *)x->owner;
        g->flags |= ASYNC__G_CHILD_WAITERS;
        runner->state = ASYNC__S_WAIT;
        async__wl_push(&g->waiters, runner);
    } else {
        runner->state = ASYNC__S_WAIT_TASK;
        async__wl_push(&x->u.waiters, runner);
    }
    return ASYNC__WAIT;
}

ASYNC_API int async__await_check(async_task *t, async_task *x) {
    async_task *runner = async__runner(t);
    if (ASYNC__OWNER(x) == ASYNC__OWN_TASK && x->owner == t && x->state != ASYNC__S_DONE) {
        async_status st = (x->flags & ASYNC__F_FINISHING) ? async__complete(x) : async__resume(x);
        if (st == ASYNC_PENDING) return ASYNC__WAIT;
        return async__outcome(t, x);
    }
    if (async__waiting(runner)) return ASYNC__WAIT;
    if (x->state == ASYNC__S_DONE) {
        if (runner->flags & ASYNC__F_CANCEL) return async__deliver_cancel(t, runner);
        return async__outcome(t, x);
    }
    if (runner->flags & ASYNC__F_CANCEL) return async__deliver_cancel(t, runner);
    return async__await_start(t, x); /* woken for a sibling's end: wait again */
}

ASYNC_API int async__sleep_start(async_task *t, int32_t ms) {
    async_task *runner = async__runner(t);
    async_loop *loop = async__loop_of(runner);
    int rc;
    if (!loop) {
        async__raise(t, async__err(ASYNC_EINVAL));
        return ASYNC__RAISE;
    }
    if (runner->flags & ASYNC__F_CANCEL) return async__deliver_cancel(t, runner);
    if (ms <= 0) {
        async__push_ready(loop, runner);
        return ASYNC__WAIT;
    }
    rc = async__timer_add(loop, runner, loop->now + (async_ms)ms);
    if (rc) {
        async__raise(t, async__err(rc));
        return ASYNC__RAISE;
    }
    runner->state = ASYNC__S_SLEEPING;
    return ASYNC__WAIT;
}

ASYNC_API int async__sleep_check(async_task *t) {
    async_task *runner = async__runner(t);
    if (runner->state == ASYNC__S_READY || runner->state == ASYNC__S_SLEEPING) return ASYNC__WAIT;
    if (runner->flags & ASYNC__F_CANCEL) return async__deliver_cancel(t, runner);
    return ASYNC__GO;
}

/* ---- futures ---- */

ASYNC_API int async_future_init(async_future *f) {
    if (!f) return ASYNC_EINVAL;
    if (f->waiters) return ASYNC_EBUSY;
    f->r.value = 0;
    f->state = 0;
    return 0;
}

static int async__future_complete(async_future *f, uint8_t state) {
    f->state = state;
    async__wl_wake_all(&f->waiters);
    return 0;
}

ASYNC_API int async_future_set_value(async_future *f, intptr_t value) {
    if (!f) return ASYNC_EINVAL;
    if (f->state) return ASYNC_EBUSY;
    f->r.value = value;
    return async__future_complete(f, 1);
}

ASYNC_API int async_future_set_error(async_future *f, const async_error *error) {
    if (!f || !error) return ASYNC_EINVAL;
    if (f->state) return ASYNC_EBUSY;
    f->r.error = error;
    return async__future_complete(f, 2);
}

ASYNC_API bool async_future_done(const async_future *f) { return f && f->state != 0; }
ASYNC_API intptr_t async_future_value(const async_future *f) { return f && f->state == 1 ? f->r.value : 0; }
ASYNC_API const async_error *async_future_error(const async_future *f) {
    return f && f->state == 2 ? f->r.error : NULL;
}

ASYNC_API int async__future_start(async_task *t, async_future *f) {
    async_task *runner = async__runner(t);
    if (!f) {
        async__raise(t, async__err(ASYNC_EINVAL));
        return ASYNC__RAISE;
    }
    if (f->state) return ASYNC__GO;
    if (runner->flags & ASYNC__F_CANCEL) return async__deliver_cancel(t, runner);
    runner->state = ASYNC__S_WAIT;
    async__wl_push(&f->waiters, runner);
    return ASYNC__WAIT;
}

ASYNC_API int async__future_check(async_task *t, async_future *f) {
    async_task *runner = async__runner(t);
    if (async__waiting(runner)) return ASYNC__WAIT;
    if (runner->flags & ASYNC__F_CANCEL) return async__deliver_cancel(t, runner);
    if (f->state == 2) {
        async__raise(t, f->r.error);
        return ASYNC__RAISE;
    }
    if (f->state == 1) return ASYNC__GO;
    return async__future_start(t, f); /* woken without a result: wait again */
}

/* ---- gather, task groups, timeout, shield ---- */

static int async__raise_code(async_task *t, int code) {
    async__raise(t, async__err(code));
    return ASYNC__RAISE;
}

static int async__group_start_checked(async_task *t, async_group *g, int mode) {
    async_task *runner = async__runner(t);
    int rc;
    if (!g) return ASYNC_EINVAL;
    if (runner->flags & ASYNC__F_CANCEL) return ASYNC_ECANCELED;
    rc = async__group_begin(t, g, mode);
    return rc;
}

ASYNC_API int async__gather_start(async_task *t, async_group *g, int mode, async_task *const *children, size_t n) {
    size_t i;
    int rc = async__group_start_checked(t, g, mode);
    if (rc == ASYNC_ECANCELED) return async__deliver_cancel(t, async__runner(t));
    if (rc) return async__raise_code(t, rc);
    for (i = 0; i < n; i++) {
        rc = async__group_add(g, children[i]);
        if (rc) { /* nothing half-started is left behind: the started ones are cancelled */
            async__group_cancel_children(g, NULL);
            return async__raise_code(t, rc);
        }
    }
    return async__group_wait(t, g);
}

ASYNC_API int async__gather_array_start(async_task *t, async_group *g, int mode, async_task *first, size_t n,
                                        size_t stride) {
    size_t i;
    int rc = async__group_start_checked(t, g, mode);
    if (rc == ASYNC_ECANCELED) return async__deliver_cancel(t, async__runner(t));
    if (rc) return async__raise_code(t, rc);
    if (n && (!first || stride < sizeof *first)) return async__raise_code(t, ASYNC_EINVAL);
    for (i = 0; i < n; i++) {
        rc = async__group_add(g, (async_task *)(void *)((char *)first + i * stride));
        if (rc) {
            async__group_cancel_children(g, NULL);
            return async__raise_code(t, rc);
        }
    }
    return async__group_wait(t, g);
}

ASYNC_API int async__spawn_or_raise(async_task *t, async_group *g, async_task *child) {
    int rc = async_group_spawn(t, g, child);
    return rc ? async__raise_code(t, rc) : ASYNC__GO;
}

static bool async__group_settled(const async_group *g) {
    return g->running == 0 || (g->mode == ASYNC_GROUP_GATHER && g->error);
}

/* The start of an await on a group: nothing to wait for (GO), or wait in its list (WAIT). */
ASYNC_API int async__group_wait(async_task *t, async_group *g) {
    async_task *runner = async__runner(t);
    if (!g) return async__raise_code(t, ASYNC_EINVAL);
    if (async__group_settled(g)) return ASYNC__GO;
    if (runner->flags & ASYNC__F_CANCEL) {
        if (g->mode == ASYNC_GROUP_SHIELD) return async__deliver_cancel(t, runner);
        async__group_cancel_children(g, NULL); /* cancelled before waiting: pass it on, then wait */
    }
    runner->state = ASYNC__S_WAIT_GROUP;
    async__wl_push(&g->waiters, runner);
    return ASYNC__WAIT;
}

ASYNC_API int async__group_check(async_task *t, async_group *g) {
    async_task *runner = async__runner(t);
    if (!g) return async__raise_code(t, ASYNC_EINVAL);
    if (async__waiting(runner)) return ASYNC__WAIT;
    if (async__group_settled(g)) {
        if (runner->flags & ASYNC__F_CANCEL) return async__deliver_cancel(t, runner);
        switch (g->mode) {
        case ASYNC_GROUP_GATHER:
        case ASYNC_GROUP_TASKS:
            if (g->error) {
                async__raise(t, g->error);
                return ASYNC__RAISE;
            }
            return ASYNC__GO;
        case ASYNC_GROUP_TIMEOUT: {
            if (g->flags & ASYNC__G_TIMED_OUT) return async__raise_code(t, ASYNC_ETIMEDOUT);
            return g->children ? async__outcome(t, g->children) : ASYNC__GO; /* the work is first */
        }
        case ASYNC_GROUP_SHIELD: return g->children ? async__outcome(t, g->children) : ASYNC__GO;
        default: return ASYNC__GO;
        }
    }
    if ((runner->flags & ASYNC__F_CANCEL) && g->mode == ASYNC_GROUP_SHIELD)
        return async__deliver_cancel(t, runner);
    runner->state = ASYNC__S_WAIT_GROUP;
    async__wl_push(&g->waiters, runner);
    return ASYNC__WAIT;
}

static async_status async__timeout_run(async_task *t) {
    async_timeout *tmo = (async_timeout *)(void *)((char *)t - offsetof(async_timeout, timer));
    ASYNC_BEGIN(t);
    AWAIT_SLEEP(t, tmo->ms);
    ASYNC_END(t);
}

ASYNC_API int async__timeout_start(async_task *t, async_timeout *tmo, int32_t ms, async_task *child) {
    int rc;
    if (!tmo) return async__raise_code(t, ASYNC_EINVAL);
    rc = async__group_start_checked(t, &tmo->group, ASYNC_GROUP_TIMEOUT);
    if (rc == ASYNC_ECANCELED) return async__deliver_cancel(t, async__runner(t));
    if (rc) return async__raise_code(t, rc);
    if (!async_task_init(&tmo->timer, async__timeout_run)) return async__raise_code(t, ASYNC_EBUSY);
    tmo->ms = ms;
    rc = async__group_add(&tmo->group, child);
    if (rc) return async__raise_code(t, rc);
    rc = async__group_add(&tmo->group, &tmo->timer);
    if (rc) {
        async__group_cancel_children(&tmo->group, NULL);
        return async__raise_code(t, rc);
    }
    return async__group_wait(t, &tmo->group);
}

/* ---- cancellation ---- */

static void async__finish_unstarted(async_task *t) {
    async__raise(t, async__err(ASYNC_ECANCELED));
    t->flags &= (uint8_t)~ASYNC__F_CANCEL;
    async__complete(t);
}

ASYNC_API bool async_cancel(async_task *t) {
    if (!t || t->state == ASYNC__S_DONE) return false;
    if (t->state == ASYNC__S_INIT) { /* never started: it ends cancelled without running */
        async__raise(t, async__err(ASYNC_ECANCELED));
        t->flags |= ASYNC__F_SEEN;
        t->state = ASYNC__S_DONE;
        return true;
    }
    if (ASYNC__OWNER(t) == ASYNC__OWN_TASK) return async_cancel(async__runner(t)); /* part of its runner */
    if (t->flags & ASYNC__F_CANCEL) return true;
    t->flags |= ASYNC__F_CANCEL;
    switch (t->state) {
    case ASYNC__S_SLEEPING:
        async__timer_remove(async__loop_of(t), (uint32_t)t->q.slot);
        async__wake(t);
        break;
    case ASYNC__S_WAIT:
        async__wl_remove(t);
        async__wake(t);
        break;
    case ASYNC__S_WAIT_TASK: { /* asyncio: cancelling the awaiter cancels the awaited task */
        async_task **headp = async__wl_of(t);
        async_cancel((async_task *)(void *)((char *)headp - offsetof(async_task, u)));
        break;
    }
    case ASYNC__S_WAIT_GROUP: {
        async_group *g = (async_group *)(void *)async__wl_of(t);
        if (g->mode == ASYNC_GROUP_SHIELD && !(t->flags & ASYNC__F_FINISHING)) {
            async__wl_remove(t);
            async__wake(t);
        } else {
            async__group_cancel_children(g, NULL);
        }
        break;
    }
    default: break; /* ready or running: delivered at its next await */
    }
    return true;
}

/* ---- the loop ---- */

ASYNC_API int async_loop_init(async_loop *loop) {
    if (!loop) return ASYNC_EINVAL;
    memset(loop, 0, sizeof *loop);
    loop->timers = loop->inline_timers;
    loop->timer_cap = ASYNC_CONFIG_INLINE_TIMERS;
    return 0;
}

ASYNC_API void async_loop_set_clock(async_loop *loop, async_ms (*clock)(async_loop *)) {
    if (!loop) return;
    loop->clock = clock;
    if (clock) loop->now = clock(loop);
}

ASYNC_API void async_loop_set_allocator(async_loop *loop, void *(*realloc_fn)(void *, void *, size_t), void *ctx) {
    if (!loop) return;
    loop->realloc_fn = realloc_fn;
    loop->alloc_ctx = ctx;
}

ASYNC_API void async_loop_set_error_handler(async_loop *loop, async_error_handler fn, void *ctx) {
    if (!loop) return;
    loop->on_error = fn;
    loop->on_error_ctx = ctx;
}

ASYNC_API async_ms async_loop_now(const async_loop *loop) { return loop ? loop->now : 0; }
ASYNC_API uint32_t async_loop_timers(const async_loop *loop) { return loop ? loop->ntimers : 0; }
ASYNC_API bool async_loop_has_ready(const async_loop *loop) { return loop && loop->ready_head; }

static void async__step(async_loop *loop, async_task *t) {
    loop->steps++;
    t->state = ASYNC__S_RUNNING;
    if (t->flags & ASYNC__F_FINISHING)
        async__complete(t);
    else if (t->lc == 0 && (t->flags & ASYNC__F_CANCEL))
        async__finish_unstarted(t); /* cancelled before its first step: the body never runs */
    else
        async__resume(t);
}

static void async__fire_timers(async_loop *loop) {
    while (loop->ntimers && (int32_t)(loop->timers[0].deadline - loop->now) <= 0) {
        async_task *t = loop->timers[0].task;
        async__timer_remove(loop, 0);
        async__push_ready(loop, t);
    }
}

static int32_t async__next_timeout(const async_loop *loop) {
    int32_t d;
    if (loop->ready_head) return 0;
    if (!loop->ntimers) return -1;
    d = (int32_t)(loop->timers[0].deadline - loop->now);
    return d > 0 ? d : 0;
}

ASYNC_API int32_t async_poll(async_loop *loop) {
    async_task *t;
    if (!loop) return -1;
    if (loop->clock) loop->now = loop->clock(loop);
    async__fire_timers(loop);
    /* one pass over what is ready now; what it makes ready runs on the next pass (asyncio's order) */
    t = loop->ready_head;
    loop->ready_head = loop->ready_tail = NULL;
    while (t) {
        async_task *next = t->q.next;
        async__step(loop, t);
        t = next;
    }
    return async__next_timeout(loop);
}

ASYNC_API unsigned async_loop_report_errors(async_loop *loop) {
    unsigned n = 0;
    if (!loop) return 0;
    while (loop->unretrieved) {
        async_task *t = loop->unretrieved;
        loop->unretrieved = t->q.next;
        t->q.next = NULL;
        t->flags |= ASYNC__F_SEEN;
        if (loop->on_error) loop->on_error(loop, t, t->r.error, loop->on_error_ctx);
        n++;
    }
    return n;
}

ASYNC_API int async_run(async_loop *loop, async_task *main) {
    int rc;
    bool deadlocked = false;
    if (!loop || !main) return ASYNC_EINVAL;
    rc = async_spawn(loop, main);
    if (rc) return rc;
    while (main->state != ASYNC__S_DONE) {
        int32_t timeout = async_poll(loop);
        if (main->state == ASYNC__S_DONE) break;
        if (loop->wait) { /* hosted: poll I/O (without blocking while tasks are ready) */
            if (loop->wait(loop, timeout) || timeout >= 0) continue;
        } else if (timeout >= 0) {
            if (!loop->clock) loop->now += (async_ms)timeout; /* virtual clock: jump to the next timer */
            continue;                                          /* a real clock without wait: poll again */
        }
        /* nothing can wake main: cancel it so its finally blocks run, then report the deadlock */
        if (deadlocked) break;
        deadlocked = true;
        async_cancel(main);
    }
    if (main->state != ASYNC__S_DONE) {
        async_loop_report_errors(loop);
        return ASYNC_EDEADLK;
    }
    rc = deadlocked ? ASYNC_EDEADLK : async_task_code(main);
    async_loop_report_errors(loop);
    return rc;
}

#endif /* ASYNC_IMPLEMENTATION */
