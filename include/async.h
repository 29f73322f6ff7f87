/* async.h — asyncio's ideas in C: stackless coroutines, tasks, futures, gather, cancellation.
 *
 * The portable core: this file declares it and, in the one file of a program that defines
 * ASYNC_IMPLEMENTATION before including it, implements it. It needs only <stddef.h> <stdint.h>
 * <stdbool.h> <string.h>, never allocates and never includes an OS header: it runs on a Cortex-M as well
 * as on Linux. Hosted programs link libasync.a, which implements the core once and adds the runtime
 * declared in async/runtime.h and async/net.h (loops on libev, threads, files, network; included from
 * here on hosted builds, never on freestanding ones). Firmware drives the loop with async_poll().
 *
 *     ASYNC_DEF(greet, const char *name; int ms;) {            // async def greet(name, ms):
 *         AWAIT_SLEEP(t, f->ms);                               //     await asyncio.sleep(ms / 1000)
 *         printf("Hello, %s!\n", f->name);                     //     print(f"Hello, {name}!")
 *     } ASYNC_END_DEF
 *
 *     ASYNC_MAIN(greet, "Alice", 1000)                         // asyncio.run(greet("Alice", 1000))
 *
 * THE PITFALL OF EVERY STACKLESS COROUTINE: AUTOMATIC LOCALS DO NOT SURVIVE AN AWAIT. Keep whatever must
 * live across an AWAIT in the frame (the fields of ASYNC_DEF). The macros make the mistake a build error
 * at the line that reads the local, with gcc and clang and any flags but -w; two AWAITs on one line, an
 * AWAIT outside a coroutine and a TRY/WITH or a coroutine left open are build errors that name the mistake.
 * An AWAIT inside a switch statement of your own is a build error too ("duplicate case value" at the
 * AWAIT's line), unless that switch is on a 64-bit value: then it fails at run time (ASYNC_EFAULT, with a
 * message that says so).
 * Code above ASYNC_BEGIN runs on every step and also when async_task_where (debug mode, dumps) asks the
 * coroutine for its file and function: keep it to declarations such as the frame cast, with no effects.
 * Every function here runs on the loop's thread, except the three ISR-safe ones (see Interrupts).
 *
 * Layout of this header: configuration, errors, tasks, the coroutine macros, futures, groups (gather,
 * task groups, timeouts, shield), synchronisation (locks, events, conditions, semaphores, queues,
 * generators), the loop, interrupts, static frame pools; then the private helpers the macros expand to,
 * the hosted runtime's headers, and the implementation under ASYNC_IMPLEMENTATION.
 *
 * Configuration (define before including; the same values for every file of a program, and for
 * libasync.a: make CFLAGS="-O2 -DASYNC_CONFIG_...=..."):
 *   ASYNC_CONFIG_TASK_NAMES    1 stores a name pointer per task (+1 word: 56 bytes on x86-64). Default 0:
 *                              the header stays at 48 bytes (24 on 32-bit), and tasks report as "task".
 *   ASYNC_CONFIG_INLINE_TIMERS timer slots inside async_loop before the allocator hook is needed. Default 8.
 *   ASYNC_CONFIG_BATCH_STEPS   coroutine steps async_run runs between two looks at the clock and at I/O.
 *                              Default 256 (1 with ASYNC_CONFIG_MINIMAL: a board's clock is a load).
 *   ASYNC_CONFIG_TIMER_FIFO    1 adds a FIFO lane for sleeps set in deadline order beside the timer heap
 *                              (changes the size of struct async_loop). Default 1 hosted, 0 freestanding.
 *   ASYNC_CONFIG_MINIMAL       1: the smallest core, for a board whose flash is counted in kilobytes: the
 *                              six below default to 0 (and BATCH_STEPS to 1). Default 0. Whatever the
 *                              configuration, a program links only what it uses: interrupt delivery
 *                              once it registers an interrupt, the group code (and async_cancel, which
 *                              it needs) once it starts a gather, group, wait_for or generator, a
 *                              timeout block's expiry once it enters one.
 *   ASYNC_CONFIG_ERROR_MESSAGES 0 drops the core's texts: error records keep their codes, async_strerror
 *                              answers "error" for every code, async_error_message the record's own
 *                              message (ASYNC_THROW's) or "error", and only the codes the core raises
 *                              into tasks have records (ENOMEM, EBUSY, EINVAL, ERANGE, EDEADLK,
 *                              ESHUTDOWN, ETIMEDOUT, ECANCELED, EFAULT, EPERM; async_error_of is NULL
 *                              for the others, so ASYNC_THROW_ERROR(t, async_error_of(ASYNC_EIO))
 *                              raises ASYNC_EINVAL: use ASYNC_THROW for such codes). Default 1.
 *   ASYNC_CONFIG_UNRETRIEVED   0 drops the list of errors no one retrieved: async_run and
 *                              async_loop_report_errors report nothing, the error handler is never
 *                              called. Default 1.
 *   ASYNC_CONFIG_DEADLOCK      0: when nothing can wake main, async_run returns ASYNC_EDEADLK at once
 *                              instead of cancelling main (its finally blocks do not run) and releasing
 *                              tasks that await each other. Default 1.
 *   ASYNC_CONFIG_HOOKS         0: the loop's instrumentation hooks (async_loop_set_hooks: the hosted
 *                              debug mode) and its thread check (async_loop_set_thread_check) are never
 *                              called. Default 1.
 *   ASYNC_CONFIG_TIMER_GROWTH  0: the timer heap never grows beyond its ASYNC_CONFIG_INLINE_TIMERS slots
 *                              (the loop's allocator is not used for it): one sleep too many is
 *                              ASYNC_ENOMEM at its AWAIT. Default 1.
 *   ASYNC_CONFIG_TIMER_HEAP    0: timers in a sorted array instead of a binary heap (setting and removing
 *                              one is O(n), less code: for a few timers). The same order. Default 1.
 *   ASYNC_FREESTANDING         defined: the hosted runtime's headers are left out even on a hosted
 *                              compiler (a firmware build tested on a PC).
 *   ASYNC_ASSERT(cond, msg)    called on API misuse (a NULL or nonsense argument, a busy object, a call
 *                              in the wrong state) in addition to the returned error code. Default:
 *                              nothing.
 *   ASYNC_API                  storage class of the public functions. Default: extern.
 */
#ifndef ASYNC_H_INCLUDED
#define ASYNC_H_INCLUDED

/* For gcc, a build error inside one of this header's macros points at the macro's definition here,
 * with the user's line only in a note. As a system header it points at the user's line instead (clang
 * does so anyway). The file that implements the core keeps the normal rules, so that the compilers
 * still warn about the implementation itself. */
#if defined(__GNUC__) && !defined(ASYNC_IMPLEMENTATION)
#pragma GCC system_header
#endif

#include <stdarg.h>
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
#ifndef ASYNC_CONFIG_MINIMAL
#  define ASYNC_CONFIG_MINIMAL 0
#endif
#ifndef ASYNC_CONFIG_ERROR_MESSAGES
#  define ASYNC_CONFIG_ERROR_MESSAGES (!ASYNC_CONFIG_MINIMAL)
#endif
#ifndef ASYNC_CONFIG_UNRETRIEVED
#  define ASYNC_CONFIG_UNRETRIEVED (!ASYNC_CONFIG_MINIMAL)
#endif
#ifndef ASYNC_CONFIG_DEADLOCK
#  define ASYNC_CONFIG_DEADLOCK (!ASYNC_CONFIG_MINIMAL)
#endif
#ifndef ASYNC_CONFIG_HOOKS
#  define ASYNC_CONFIG_HOOKS (!ASYNC_CONFIG_MINIMAL)
#endif
#ifndef ASYNC_CONFIG_TIMER_GROWTH
#  define ASYNC_CONFIG_TIMER_GROWTH (!ASYNC_CONFIG_MINIMAL)
#endif
#ifndef ASYNC_CONFIG_TIMER_HEAP
#  define ASYNC_CONFIG_TIMER_HEAP (!ASYNC_CONFIG_MINIMAL)
#endif
#ifndef ASYNC_CONFIG_BATCH_STEPS
/* async_run looks at the clock and at I/O again after this many coroutine steps (or when nothing is
 * ready): a system call per few hundred hand-overs instead of one per pass. A board's clock is a memory
 * read: a minimal build looks after every pass. */
#  if ASYNC_CONFIG_MINIMAL
#    define ASYNC_CONFIG_BATCH_STEPS 1
#  else
#    define ASYNC_CONFIG_BATCH_STEPS 256
#  endif
#endif
#ifndef ASYNC_CONFIG_TIMER_FIFO
/* Sleeps whose deadlines come in order (the common case: many tasks sleeping the same time) go to a
 * FIFO instead of the heap: O(1) and sequential in memory. Needs the loop's allocator; off by default on
 * freestanding builds, where the heap alone keeps the code small. */
#  if defined(__STDC_HOSTED__) && __STDC_HOSTED__
#    define ASYNC_CONFIG_TIMER_FIFO 1
#  else
#    define ASYNC_CONFIG_TIMER_FIFO 0
#  endif
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
    X(ASYNC_EPERM, -1, "operation not permitted")                                              \
    X(ASYNC_ENOTDIR, -20, "not a directory")                                                   \
    X(ASYNC_EFBIG, -27, "file too large")                                                      \
    X(ASYNC_EROFS, -30, "read-only file system")                                               \
    X(ASYNC_ENAMETOOLONG, -36, "file name too long")                                           \
    X(ASYNC_ELOOP, -40, "too many levels of symbolic links")                                   \
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
    X(ASYNC_ENXIO, -6, "no such device or address (name not resolved)")                       \
    X(ASYNC_ECERT, -129, "certificate rejected (TLS verification failed)")

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

/** Milliseconds of the loop's clock; comparisons are wrap-safe, so one sleep may last up to 2^31-1 ms. */
typedef uint32_t async_ms;
/** The longest sleep, timeout or deadline, in ms (2^31-1, 24.8 days): longer ones fail with ASYNC_ERANGE. */
#define ASYNC_MS_MAX 2147483647

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
        async_task *next;   /* private: ready-queue or wait-list link; the last one of a wait list is tagged */
        size_t slot;        /* private: index in the timer heap while sleeping */
        async_task *runner; /* private: a coroutine awaited inline: the scheduled task that runs it */
    } q;
    void *owner; /* private: loop, group or running parent task (flags say which); bit 0: r holds the leaf */
    union {
        const async_error *error; /* private: the pending or final error */
        intptr_t value;           /* private: the return value */
        async_task *leaf;         /* private: while it awaits inline (owner tagged): the innermost coroutine */
    } r;
    union {
        async_task *waiters; /* private: tasks awaiting this one (LIFO list, woken in FIFO order) */
        async_task *sibling; /* private: next child of the same group */
        intptr_t saved;      /* private: a task's first inline child: the task's r while r holds the leaf */
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
 *  Returns false (and does nothing) if t is NULL or already finished.
 *  ON THE LOOP'S THREAD ONLY, like every function here but the three ISR-safe ones: from another thread,
 *  async_remote_cancel (the hosted runtime's call_soon_threadsafe) does it. On a hosted loop a call from
 *  another thread is refused (false, and a line on stderr) instead of corrupting the loop. */
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
/** The loop that runs task t (through the coroutines that await it inline), or NULL if t is not
 *  scheduled. Inside a coroutine: asyncio.get_running_loop(). */
ASYNC_API async_loop *async_task_loop(const async_task *t);
/** The coroutine that owns t: the one awaiting it inline, or the parent of its group; NULL for a task
 *  of the loop (spawned) and for NULL. */
ASYNC_API async_task *async_task_parent(const async_task *t);
/** What t is doing, for reports: "new", "ready", "running", "sleeping", "waiting", "awaiting a task",
 *  "awaiting children" or "done". */
ASYNC_API const char *async_task_state(const async_task *t);
/** Where t's coroutine is: its source file, its function and the line it will resume at (the await it
 *  waits in; 0 before its first step). Works for coroutines written with ASYNC_BEGIN/ASYNC_END, at no
 *  cost to them (a finished task tells where it ended). False (outputs untouched) if t is NULL or has
 *  no function. */
ASYNC_API bool async_task_where(async_task *t, const char **file, const char **function, unsigned *line);

/* ------------------------------------------------------------------------------------------------ */
/* The coroutine macros                                                                              */
/* ------------------------------------------------------------------------------------------------ */
/* A coroutine is written in one place: its arguments, the state it keeps across awaits and its results
 * are the fields of its frame, listed with its body; calling it names the frame it runs in and gives the
 * arguments.
 *
 *     ASYNC_DEF(task, const char *name; int seconds; char result[32];) {   // async def task(name, seconds):
 *         printf("Task %s started\n", f->name);                             //     print(f"Task {name} started")
 *         AWAIT_SLEEP(t, f->seconds * 1000);                                 //     await asyncio.sleep(seconds)
 *         snprintf(f->result, sizeof f->result, "Result of %s", f->name);    //     return f"Result of {name}"
 *     } ASYNC_END_DEF
 *
 *     ASYNC_DEF(main, task_frame a, b; async_group all;) {                 // async def main():
 *         AWAIT_GATHER(t, &f->all, ASYNC_CALL(task, &f->a, "A", 3),         //     await asyncio.gather(
 *                      ASYNC_CALL(task, &f->b, "B", 2));                    //         task("A", 3), task("B", 2))
 *         printf("%s, %s\n", f->a.result, f->b.result);
 *     } ASYNC_END_DEF
 *
 *     ASYNC_MAIN(main)                                                       // asyncio.run(main())
 *
 * Inside the body, `t` is the coroutine's task (every AWAIT takes it) and `f` its frame. A child's frame
 * lives in its parent's (`task_frame a, b;` above), so nothing is allocated. Underneath is the three-piece
 * form, still available for frames laid out by hand: a struct whose first member is `async_task task`, a
 * function `async_status name(async_task *t)` whose body runs from ASYNC_BEGIN(t) to ASYNC_END(t), and a
 * constructor that calls ASYNC_FRAME_INIT and fills in the arguments.
 *
 * HOW OFTEN ARGUMENTS ARE EVALUATED. An await has no room of its own between its start and its resume, so:
 * the values an await starts with (milliseconds, children, a coroutine's arguments, a producer) are
 * evaluated once, when it starts; the OBJECT it waits on (the task, future, lock, event, condition,
 * semaphore, queue, group, generator, timeout, stream, call, file: t itself too) is evaluated again each
 * time the task resumes there. Pass objects as addresses of frame fields (&f->lock), never as calls.
 * Two exceptions say so in their own comments: AWAIT's task (use AWAIT_CALL to call a coroutine) and
 * AWAIT_QUEUE_PUT's item (evaluated when the slot is handed over). Every other macro evaluates each
 * argument once. */

/** Defines the coroutine `name`, local to the file: the frame type `name_frame` (an async_task `task`,
 *  then the fields: the arguments first, in the order ASYNC_CALL gives them, then what the coroutine keeps
 *  across awaits and leaves for its caller), and its function, whose body follows in braces and is closed
 *  by ASYNC_END_DEF. In the body, `t` is the task and `f` the frame. ASYNC_DEF(name) has no fields. */
#define ASYNC_DEF(...) ASYNC__CAT(ASYNC__DEF, ASYNC__HAS_COMMA(__VA_ARGS__))(__VA_ARGS__)
/** Closes ASYNC_DEF's body (and ASYNC_BODY's). */
#define ASYNC_END_DEF                                                                                 \
    ASYNC_END(t);                                                                                     \
    }
/** For a coroutine that other files call: ASYNC_FRAME(name, fields) in a header declares its frame type
 *  and its function; ASYNC_BODY(name) { body } ASYNC_END_DEF in one source file defines it. */
#define ASYNC_FRAME(...) ASYNC__CAT(ASYNC__FRAME, ASYNC__HAS_COMMA(__VA_ARGS__))(__VA_ARGS__)
/** The function of a coroutine declared with ASYNC_FRAME; its body follows in braces. */
#define ASYNC_BODY(name) ASYNC__BODY(name, )
/** name(args...): makes `frame` (a name_frame *) ready to run coroutine `name` with the arguments, which
 *  fill the first fields in order (in C also by name: `.seconds = 3`), the other fields zeroed; returns
 *  its task, to AWAIT, gather, spawn or ASYNC_SPAWN. Each argument is evaluated once. A frame whose task
 *  still runs is left as it is (awaiting or spawning it again fails with ASYNC_EBUSY). */
#define ASYNC_CALL(name, ...) ASYNC__CAT(ASYNC__CALL, ASYNC__HAS_COMMA(__VA_ARGS__))(name, __VA_ARGS__)
/** asyncio.run(main()): ASYNC_MAIN(name) or ASYNC_MAIN(name, args...) defines the program's main
 *  function, which runs the coroutine `name` with the arguments on a new loop with async_main and exits
 *  as async_main_exit says: 0 if it ended without an error, 1 otherwise, and by SIGINT if Ctrl-C
 *  interrupted it (as Python does for an unhandled KeyboardInterrupt). */
#define ASYNC_MAIN(...) ASYNC__CAT(ASYNC__MAIN, ASYNC__HAS_COMMA(__VA_ARGS__))(__VA_ARGS__)
#define ASYNC__MAIN0(name) ASYNC__MAIN1(name, )
#define ASYNC__MAIN1(name, ...)                                                                       \
    int main(void) {                                                                                  \
        static name##_frame async__main_frame;                                                        \
        return async_main_exit(async_main(ASYNC_CALL(name, &async__main_frame, __VA_ARGS__)));        \
    }

/* ASYNC_DEF's parts. The frame type and, for ASYNC_CALL, a twin type whose first member is the target
 * frame's address in a union the size of the task header: the arguments then sit at the same offsets as
 * in the frame (the first members have the same size and alignment), and one initializer list gives both
 * the target and the arguments. */
#define ASYNC__TYPES(name, ...)                                                                       \
    typedef struct name##_frame {                                                                     \
        async_task task;                                                                              \
        __VA_ARGS__                                                                                   \
    } name##_frame;                                                                                   \
    typedef struct name##_call {                                                                      \
        union {                                                                                       \
            void *frame;                                                                              \
            async_task header;                                                                        \
        } async__h;                                                                                   \
        __VA_ARGS__                                                                                   \
    } name##_call;                                                                                    \
    typedef char name##_call_matches_its_frame[sizeof(name##_call) == sizeof(name##_frame) ? 1 : -1]
/* Outside any coroutine, or a build error that says which one is still open. */
#define ASYNC__NOT_IN_COROUTINE                                                                       \
    extern char async__coroutine_closed[sizeof(struct ASYNC_ERROR_a_coroutine_above_lacks_its_ASYNC_END)]
#define ASYNC__BODY(name, storage)                                                                    \
    ASYNC__NOT_IN_COROUTINE;                                                                          \
    storage async_status name##_run(async_task *t) {                                                  \
        name##_frame *f = (name##_frame *)(void *)t;                                                  \
        (void)f;                                                                                      \
        ASYNC_BEGIN(t);
/* ASYNC_CALL without and with arguments. The size carries a check, at no cost, that frame is a
 * name_frame * (pointers of other types cannot be subtracted from it). */
#define ASYNC__CALL0(name, frame) ASYNC__CALL1(name, frame, )
#define ASYNC__CALL1(name, frame, ...)                                                                \
    async__call(name##_run, sizeof(name##_frame) + 0 * sizeof((frame) - (name##_frame *)0),          \
                ASYNC__TEMP(name##_call, ASYNC__CALL_HEADER(frame), __VA_ARGS__))
#ifdef __cplusplus
#  define ASYNC__CALL_HEADER(frame) {(frame)}
#else
#  define ASYNC__CALL_HEADER(frame) .async__h = {(frame)} /* designated: no warning for fields left out */
#endif
#define ASYNC__DEF0(name) ASYNC__DEF1(name, )
#define ASYNC__DEF1(name, ...)                                                                        \
    ASYNC__NOT_IN_COROUTINE;                                                                          \
    ASYNC__TYPES(name, __VA_ARGS__);                                                                  \
    static async_status name##_run(async_task *t);                                                    \
    ASYNC__BODY(name, static)
#define ASYNC__FRAME0(name) ASYNC__FRAME1(name, )
#define ASYNC__FRAME1(name, ...)                                                                      \
    ASYNC__NOT_IN_COROUTINE;                                                                          \
    ASYNC__TYPES(name, __VA_ARGS__);                                                                  \
    async_status name##_run(async_task *t)
/* 1 if the arguments contain a comma (up to 63), else 0: ASYNC_DEF(name) against ASYNC_DEF(name, ...),
 * which C99 cannot tell apart otherwise (an empty __VA_ARGS__ needs C23's __VA_OPT__). */
/* The number of arguments (1 to 63). */
#define ASYNC__COUNT(...)                                                                             \
    ASYNC__ARG64(__VA_ARGS__, 63, 62, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, \
                 43, 42, 41, 40, 39, 38, 37, 36, 35, 34, 33, 32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, \
                 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, ~)
#define ASYNC__FIRST(...) ASYNC__FIRST_(__VA_ARGS__, ~)
#define ASYNC__FIRST_(first, ...) first
#define ASYNC__HAS_COMMA(...) \
    ASYNC__ARG64(__VA_ARGS__, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, \
                 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, \
                 1, 1, 1, 1, 1, 1, 0, ~)
#define ASYNC__ARG64(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, _16, _17, _18, _19, \
                     _20, _21, _22, _23, _24, _25, _26, _27, _28, _29, _30, _31, _32, _33, _34, _35, _36, \
                     _37, _38, _39, _40, _41, _42, _43, _44, _45, _46, _47, _48, _49, _50, _51, _52, _53, \
                     _54, _55, _56, _57, _58, _59, _60, _61, _62, _63, _64, ...) \
    _64
/* The address of a temporary of `type` initialised with the list: a compound literal in C, a reference
 * to a materialised temporary in C++ (which has no compound literals). */
#ifdef __cplusplus
#  if defined(__clang__) /* the fields after the arguments are zeroed on purpose */
#    define ASYNC__TEMP(type, ...)                                                                   \
    (_Pragma("clang diagnostic push") _Pragma("clang diagnostic ignored \"-Wmissing-field-initializers\"") \
     &static_cast<const type &>(type{__VA_ARGS__}) _Pragma("clang diagnostic pop"))
#  else
#    define ASYNC__TEMP(type, ...) (&static_cast<const type &>(type{__VA_ARGS__}))
#  endif
#else
#  define ASYNC__TEMP(type, ...) (&(type){__VA_ARGS__})
#endif

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
#define ASYNC__LC_FILE 0x3FFE     /* asks the coroutine for __FILE__ (async_task_where) */
#define ASYNC__LC_FUNCTION 0x3FFF /* and for __func__ */
#define ASYNC__LC_WATCH 0x3F00    /* a wait set's watch node, not a coroutine (its step reads lc only there) */
#define ASYNC__LC_RETURN 0xFFFE
#define ASYNC__LC_RAISE 0xFFFF
#define ASYNC__LINE_OK() ((void)sizeof(char[(__LINE__ < 0x3F00) ? 1 : -1]))
/* A resume point: its case label twice, as p and as p + 2^32. The coroutine's switch is on an unsigned long
 * long, where the two differ (and the second is never taken: lc has 16 bits, so optimisers drop it); a
 * switch of the user's own on anything narrower (int, an enum, char) converts both to one value, and
 * "duplicate case value" stops the build at the AWAIT's line (clang's notes then name the macro below). */
#define ASYNC_ERROR_AWAIT_inside_a_switch_of_your_own 0x100000000ULL
#define ASYNC__RESUME_AT(p) case (p): case (unsigned long long)(p) + ASYNC_ERROR_AWAIT_inside_a_switch_of_your_own
#define ASYNC__CAT2(a, b) a##b
#define ASYNC__CAT(a, b) ASYNC__CAT2(a, b)

/* The stackless pitfalls as build errors whose first line is the user's line and names the mistake:
 * - a local kept across an await: the coroutine's body is compiled with the compilers' uninitialised-use
 *   warnings turned into errors (a local read after a resume was never set on that path), whatever the
 *   flags (but -w, which silences everything).
 * - two AWAITs on one line: each await defines the label ASYNC_ERROR_two_AWAITs_on_line_N.
 * - an await (or RETURN, THROW, END) outside a coroutine: the tag ASYNC_ERROR_AWAIT_outside_a_coroutine
 *   is complete only between ASYNC_BEGIN and ASYNC_END.
 * - ASYNC_TRY (or WITH) left open: ASYNC_END needs ASYNC_ERROR_TRY_or_WITH_block_not_closed_by_its_END, which
 *   an open try hides; CATCH, FINALLY or END_TRY without a TRY need the try's own tag.
 * - a coroutine left open: the next ASYNC_DEF (or ASYNC_BEGIN) needs ASYNC_ERROR_a_coroutine_above_lacks_
 *   its_ASYNC_END, which an open coroutine hides.
 * - an AWAIT (or a TRY's CATCH, FINALLY or END) inside a switch statement of the user's own: every resume
 *   point is two case labels that differ only above 32 bits, so a switch on an int, an enum or a char sees
 *   a "duplicate case value" at the AWAIT's line (clang's notes name ASYNC_ERROR_AWAIT_inside_a_switch_of_
 *   your_own; C++ calls it a narrowing conversion). A switch on a 64-bit value cannot see it: the AWAIT
 *   fails when the coroutine resumes there, with ASYNC_EFAULT and a message that says so. */
struct ASYNC_ERROR_a_coroutine_above_lacks_its_ASYNC_END { char c; };
#if defined(__clang__)
/* clang runs its uninitialised-use analysis on a function only if the warning is on where the function
 * starts: turn it on (as a warning) for the rest of the file, so that it runs on the coroutines. */
#  if !defined(ASYNC_IMPLEMENTATION)
#    pragma clang diagnostic warning "-Wuninitialized"
#    pragma clang diagnostic warning "-Wsometimes-uninitialized"
#  endif
#  define ASYNC__DIAG_PUSH                                                                            \
    _Pragma("clang diagnostic push") _Pragma("clang diagnostic error \"-Wuninitialized\"")            \
    _Pragma("clang diagnostic error \"-Wsometimes-uninitialized\"")
#  define ASYNC__DIAG_POP _Pragma("clang diagnostic pop")
#elif defined(__GNUC__) && !defined(__cplusplus)
#  define ASYNC__DIAG_PUSH                                                                            \
    _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic error \"-Wuninitialized\"")                \
    _Pragma("GCC diagnostic error \"-Wmaybe-uninitialized\"") _Pragma("GCC diagnostic ignored \"-Wjump-misses-init\"")
#  define ASYNC__DIAG_POP _Pragma("GCC diagnostic pop")
#elif defined(__GNUC__)
#  define ASYNC__DIAG_PUSH                                                                            \
    _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic error \"-Wuninitialized\"")                \
    _Pragma("GCC diagnostic error \"-Wmaybe-uninitialized\"")
#  define ASYNC__DIAG_POP _Pragma("GCC diagnostic pop")
#else
#  define ASYNC__DIAG_PUSH
#  define ASYNC__DIAG_POP
#endif
/* Inside a coroutine body, or a build error that says it is not. */
#define ASYNC__IN_COROUTINE() ((void)sizeof(struct ASYNC_ERROR_AWAIT_outside_a_coroutine))

/* Return codes of the await helpers */
#define ASYNC__GO 0    /* continue after the await */
#define ASYNC__WAIT 1  /* suspended: return PENDING */
#define ASYNC__RAISE 2 /* the error is in t->r.error: jump to the handler */
#define ASYNC__RETURNING 3 /* a return is pending (ASYNC_END_TRY only) */
#define ASYNC__BREAKING 4  /* a break out of the try is pending (ASYNC_END_TRY only) */
#define ASYNC__CONTINUING 5 /* a continue out of the try is pending (ASYNC_END_TRY only) */

/* Jumps to a resume point: store it and return ASYNC__AGAIN; the caller calls the coroutine again at
 * once. Never a backward goto or a fall-through into a resume label: a resume point reachable only
 * through the switch is what lets the compilers report a local used across an await. */
#define ASYNC__GOTO(t, point) return ((t)->lc = (uint16_t)(point), ASYNC__AGAIN)
#define ASYNC__TO_HANDLER(t) ASYNC__GOTO(t, sizeof(struct async__c))

/** Opens a coroutine body; `t` is the coroutine's async_task parameter (the three-piece form under
 *  ASYNC_DEF: a frame struct, a function over it that starts with ASYNC_BEGIN and ends with ASYNC_END,
 *  and a constructor). Code above it runs on every step, and when async_task_where asks the coroutine
 *  where it is: keep it to declarations without effects, such as the frame cast. */
#define ASYNC_BEGIN(t)                                                      \
    (void)sizeof(struct ASYNC_ERROR_a_coroutine_above_lacks_its_ASYNC_END); \
    ASYNC__DIAG_PUSH                                                        \
    struct ASYNC_ERROR_a_coroutine_above_lacks_its_ASYNC_END;               \
    struct ASYNC_ERROR_AWAIT_outside_a_coroutine { char c; };               \
    struct ASYNC_ERROR_TRY_or_WITH_block_not_closed_by_its_END { char c; };       \
    struct async__c { char n[ASYNC__LC_RAISE]; };                          \
    struct async__f { char n[ASYNC__LC_RETURN]; };                         \
    int async__leave = 0; /* how a try block's loop was left: 2 by continue */ \
    (void)async__leave;                                                     \
    switch ((unsigned long long)(t)->lc) {                                  \
    case ASYNC__LC_FILE:                                    \
        (t)->r.value = (intptr_t)__FILE__;                  \
        return ASYNC_PENDING;                               \
    case ASYNC__LC_FUNCTION:                                \
        (t)->r.value = (intptr_t)__func__;                  \
        return ASYNC_PENDING;                               \
    case 0:                                                                 \
        for (; async__leave != 2; async__leave = 2) { /* the body: a stray break or continue ends here */

/** Closes a coroutine body: falling off the end finishes the task with value 0. */
#define ASYNC_END(t)                                                    \
            ASYNC__IN_COROUTINE();                                      \
            (void)sizeof(struct ASYNC_ERROR_TRY_or_WITH_block_not_closed_by_its_END); \
            (t)->r.value = 0;                                           \
            return async__complete((t));                                \
        }                                                               \
        return async__stray_leave((t));                                 \
    case ASYNC__LC_RETURN:                                              \
    case ASYNC__LC_RAISE:                                               \
        return async__complete((t));                                    \
    default:                                                            \
        if (async__redirect((t))) return ASYNC__AGAIN;                  \
        return async__complete((t));                                    \
    }                                                                   \
    ASYNC__DIAG_POP

/* An await: `start` runs once: GO (nothing to wait for: come back at once to the check), WAIT (it
 * suspended: return PENDING) or RAISE. `check` runs on every resume: GO, WAIT or RAISE. */
#define ASYNC__AWAIT(t, start, check)                                   \
    do {                                                                \
        ASYNC__IN_COROUTINE();                                          \
    ASYNC__CAT(ASYNC_ERROR_two_AWAITs_on_line_, __LINE__):              \
        ASYNC__LINE_OK();                                               \
        if (0) goto ASYNC__CAT(ASYNC_ERROR_two_AWAITs_on_line_, __LINE__); \
        (t)->lc = __LINE__;                                             \
        switch (start) {                                                \
        case ASYNC__GO: return ASYNC__AGAIN;                            \
        case ASYNC__WAIT: return ASYNC_PENDING;                         \
        default: ASYNC__TO_HANDLER(t);                                  \
        }                                                               \
    ASYNC__RESUME_AT(__LINE__):                                         \
        switch (check) {                                                \
        case ASYNC__GO: break;                                          \
        case ASYNC__WAIT: return ASYNC_PENDING;                         \
        default: ASYNC__TO_HANDLER(t);                                  \
        }                                                               \
    } while (0)

/** await x: if x was never started, runs it inline as part of this task (a coroutine call, no scheduling
 *  hop); if x is a running task, waits for it to finish. Either way, x's error is raised here, and its
 *  return value is async_task_value(x) (or its frame's fields).
 *  X IS EVALUATED AGAIN EACH TIME THE TASK RESUMES HERE: pass a task's address (&f->child.task); to call
 *  a coroutine, use AWAIT_CALL, which evaluates the call's arguments once. */
#define AWAIT(t, x) ASYNC__AWAIT(t, async__await_start((t), (x)), async__await_check((t), (x)))
/** await name(args...): ASYNC_CALL(name, frame, args...) awaited inline; the arguments are evaluated
 *  once, `frame` (a frame's address, such as &f->child) again on each resume. */
#define AWAIT_CALL(t, name, ...)                                                                      \
    ASYNC__AWAIT(t, async__await_start((t), ASYNC_CALL(name, __VA_ARGS__)),                            \
                 async__await_check((t), &(ASYNC__FIRST(__VA_ARGS__))->task))
/** await asyncio.sleep(ms / 1000.0): suspends for ms milliseconds (ms <= 0 yields once). ms is taken as
 *  int64_t; more than ASYNC_MS_MAX (24.8 days) raises ASYNC_ERANGE instead of sleeping less. */
#define AWAIT_SLEEP(t, ms) ASYNC__AWAIT(t, async__sleep_start((t), (ms)), async__sleep_resume((t)))
/** Lets every other ready task run once, then continues (asyncio.sleep(0)). */
#define AWAIT_YIELD(t) ASYNC__AWAIT(t, async__yield_start((t)), async__sleep_resume((t)))
/** Waits for future f; its error is raised here, its value is async_future_value(f). */
#define AWAIT_FUTURE(t, f) ASYNC__AWAIT(t, async__future_start((t), (f)), async__future_check((t), (f)))

/* The children of a gather: an array and its length. C passes a compound literal (any number of them);
 * C++, which has none, a temporary of a small template (up to 63, ASYNC__COUNT's limit). */
#ifdef __cplusplus
}
template <size_t N> struct async__children { async_task *v[N]; };
extern "C" {
#  define ASYNC__CHILDREN(...) async__children<ASYNC__COUNT(__VA_ARGS__)>{{__VA_ARGS__}}.v, ASYNC__COUNT(__VA_ARGS__)
#else
#  define ASYNC__CHILDREN(...)                                                                       \
    (async_task *[]){__VA_ARGS__}, (sizeof((async_task *[]){__VA_ARGS__}) / sizeof(async_task *))
#endif
/** results = await asyncio.gather(a, b, ...): starts every child in group g and waits for all; the first
 *  error is raised at once while the others keep running. Results stay in the children's frames. */
#define AWAIT_GATHER(t, g, ...)                                                                       \
    ASYNC__AWAIT(t, async__gather_start((t), (g), ASYNC_GROUP_GATHER, ASYNC__CHILDREN(__VA_ARGS__)),  \
                 async__gather_check((t), (g)))
/** gather(..., return_exceptions=True): waits for every child and raises nothing; read each child's
 *  async_task_code / async_task_error. */
#define AWAIT_GATHER_SETTLED(t, g, ...)                                                               \
    ASYNC__AWAIT(t, async__gather_start((t), (g), ASYNC_GROUP_GATHER_SETTLED,                         \
                                        ASYNC__CHILDREN(__VA_ARGS__)),                                \
                 async__gather_check((t), (g)))
/** gather over n frames laid out `stride` bytes apart, the first one's header at `first`. */
#define AWAIT_GATHER_ARRAY(t, g, first, n, stride)                                                    \
    ASYNC__AWAIT(t, async__gather_array_start((t), (g), ASYNC_GROUP_GATHER, (first), (n), (stride)), \
                 async__gather_check((t), (g)))
/** asyncio.create_task(child) inside task group g (structured: g's owner cannot finish before child). */
#define ASYNC_SPAWN(t, g, child)                                                                      \
    do {                                                                                              \
        ASYNC__IN_COROUTINE();                                                                        \
        if (async__spawn_or_raise((t), (g), (child)) == ASYNC__RAISE) ASYNC__TO_HANDLER(t);           \
    } while (0)
/** Leaves a task group (async with TaskGroup() exit): waits for every child; the first error cancelled
 *  the others and is raised here once all have ended. */
#define AWAIT_GROUP(t, g) ASYNC__AWAIT(t, async__group_wait((t), (g)), async__gather_check((t), (g)))
/** await asyncio.wait_for(child, ms / 1000.0): at the deadline the child is cancelled and, once it has
 *  ended, ASYNC_ETIMEDOUT is raised (even if the child swallowed the cancellation). ms is taken as
 *  int64_t; more than ASYNC_MS_MAX raises ASYNC_ERANGE and the child never starts. If the deadline
 *  cannot be set (the timer heap cannot grow), the child is cancelled and ASYNC_ENOMEM is raised. */
#define AWAIT_TIMEOUT(t, tmo, ms, child) \
    ASYNC__AWAIT(t, async__timeout_start((t), (tmo), (ms), (child)), async__group_check((t), &(tmo)->group))
/** async with asyncio.timeout(ms / 1000.0): ASYNC_TIMEOUT(t, d, ms) { awaits } ASYNC_END_TIMEOUT(t, d);
 *  runs the block inline in this task (no child task); at the deadline the task is cancelled, and the
 *  cancellation that leaves the block becomes ASYNC_ETIMEDOUT at ASYNC_END_TIMEOUT (also when the block
 *  caught it, as AWAIT_TIMEOUT does). Blocks nest: a deadline that was not the one to fire leaves the
 *  cancellation alone, so the outer deadline wins where it is earlier. ms < 0: no deadline (until
 *  async_deadline_reschedule sets one); over ASYNC_MS_MAX: ASYNC_ERANGE, raised before the block.
 *  A cancellation from elsewhere that arrives after the deadline passed is taken as the deadline's. */
#define ASYNC_TIMEOUT(t, d, ms)                                                                       \
    if (async__deadline_start((t), (d), 0, (int64_t)(ms)) == ASYNC__RAISE) ASYNC__TO_HANDLER(t);       \
    ASYNC_TRY(t)
/** asyncio.timeout_at(when): ASYNC_TIMEOUT with a deadline in the loop's clock (async_loop_now). */
#define ASYNC_TIMEOUT_AT(t, d, when)                                                                  \
    if (async__deadline_start((t), (d), 1, (int64_t)(async_ms)(when)) == ASYNC__RAISE) ASYNC__TO_HANDLER(t); \
    ASYNC_TRY(t)
/** Closes ASYNC_TIMEOUT: removes the deadline and raises ASYNC_ETIMEDOUT if it passed (d is evaluated by
 *  both macros). */
#define ASYNC_END_TIMEOUT(t, d)                                                                       \
    ASYNC_FINALLY(t) {                                                                                \
        async__deadline_end((t), (d));                                                                \
    }                                                                                                 \
    ASYNC_END_TRY(t)
/** done, pending = await asyncio.wait(tasks, return_when=how): waits until `how` (ASYNC_ALL_COMPLETED,
 *  ASYNC_FIRST_COMPLETED, ASYNC_FIRST_EXCEPTION) holds for the tasks, which are running or finished tasks
 *  (spawned, or children of a group); none is cancelled, the ones still running go on. Read each one's
 *  async_task_done / async_task_code afterwards (retrieving errors stays the caller's, as in asyncio).
 *  ws is an ASYNC_WAIT_SET(n) with n >= the number of tasks (ASYNC_ERANGE otherwise). A task that is not
 *  started, or runs inline in a coroutine, is ASYNC_EINVAL / ASYNC_EBUSY. */
#define AWAIT_WAIT(t, ws, how, ...)                                                                   \
    ASYNC__AWAIT(t, async__wait_start((t), &(ws)->set, (ws)->slot, ASYNC__LEN((ws)->slot), (how), 0,     \
                                      ASYNC__CHILDREN(__VA_ARGS__)),                                  \
                 async__wait_check((t), &(ws)->set, (async_task **)0))
/** for task in asyncio.as_completed(tasks): the first call starts watching the tasks (evaluated then
 *  only); each call sets *out (async_task **) to the next task to finish, in the order they finish, and to
 *  NULL once all have been handed out. The same ws for every call of one iteration. */
#define AWAIT_AS_COMPLETED(t, ws, out, ...)                                                           \
    ASYNC__AWAIT(t, (ws)->set.started ? async__wait_next((t), &(ws)->set)                             \
                                      : async__wait_start((t), &(ws)->set, (ws)->slot, ASYNC__LEN((ws)->slot), \
                                                          ASYNC_FIRST_COMPLETED, 1, ASYNC__CHILDREN(__VA_ARGS__)), \
                 async__wait_check((t), &(ws)->set, (out)))
/** await asyncio.gather(*tasks) over tasks already running (spawned, or other groups' children): waits
 *  for all; the first error (a cancelled task's ASYNC_ECANCELED included) is raised at once while the
 *  others keep running, as AWAIT_GATHER's. */
#define AWAIT_GATHER_TASKS(t, ws, ...)                                                                \
    ASYNC__AWAIT(t, async__wait_start((t), &(ws)->set, (ws)->slot, ASYNC__LEN((ws)->slot),             \
                                      ASYNC_FIRST_EXCEPTION, 2, ASYNC__CHILDREN(__VA_ARGS__)),        \
                 async__wait_check((t), &(ws)->set, (async_task **)0))
#define ASYNC__LEN(array) (sizeof(array) / sizeof((array)[0]))
/** await asyncio.shield(child): cancelling the awaiter raises ASYNC_ECANCELED here at once but does not
 *  reach child, which runs on (its owner still waits for it before finishing). */
#define AWAIT_SHIELD(t, g, child)                                                                     \
    ASYNC__AWAIT(t, async__gather_start((t), (g), ASYNC_GROUP_SHIELD, ASYNC__CHILDREN(child)),  \
                 async__group_check((t), (g)))

/** await lock.acquire(): waits its turn (FIFO). ASYNC_EDEADLK if this task already holds l. */
#define AWAIT_LOCK(t, l) ASYNC__AWAIT(t, async__lock_start((t), (l)), async__lock_check((t), (l)))
/** await event.wait(): returns at once if e is set. */
#define AWAIT_EVENT(t, e) ASYNC__AWAIT(t, async__event_start((t), (e)), async__event_check((t), (e)))
/** await condition.wait(): releases c's lock (which this task must hold: else ASYNC_EPERM), waits for a
 *  notify, and reacquires the lock before going on — also when it fails with ASYNC_ECANCELED. */
#define AWAIT_CONDITION(t, c) ASYNC__AWAIT(t, async__cond_start((t), (c)), async__cond_check((t), (c)))
/** await semaphore.acquire(). */
#define AWAIT_SEMAPHORE(t, s) ASYNC__AWAIT(t, async__sem_start((t), (s)), async__sem_check((t), (s)))
/** await queue.put(item): waits while the queue is full; ASYNC_ESHUTDOWN once it is shut down.
 *  ITEM IS EVALUATED WHEN THE SLOT IS HANDED OVER, AFTER THE WAIT (a task has no room to keep it meanwhile),
 *  and once more after each spurious wake-up: a constant, a frame field, or an expression of them. */
#define AWAIT_QUEUE_PUT(t, q, item) \
    ASYNC__AWAIT(t, async__qput_start((t), (q)), async__qput_check((t), (q), (intptr_t)(item)))
/** item = await queue.get(): *out receives the item; ASYNC_ESHUTDOWN once shut down and empty. */
#define AWAIT_QUEUE_GET(t, q, out) ASYNC__AWAIT(t, async__qget_start((t), (q)), async__qget_check((t), (q), (out)))
/** await queue.join(): until every item put has been marked with async_queue_task_done. */
#define AWAIT_QUEUE_JOIN(t, q) ASYNC__AWAIT(t, async__qjoin_start((t), (q)), async__qjoin_check((t), (q)))

/** async with: enter (an await that acquires something), then
 *      ASYNC_WITH(t) { body } ASYNC_WITH_EXIT(t) { release, may await } ASYNC_END_WITH(t);
 *  The exit block runs when the body ends, raises, returns or is cancelled; a pending error, return or
 *  cancellation goes on after it. */
#define ASYNC_WITH(t) ASYNC_TRY(t)
/** The release part of ASYNC_WITH. */
#define ASYNC_WITH_EXIT(t) ASYNC_FINALLY(t)
/** Closes ASYNC_WITH. */
#define ASYNC_END_WITH(t) ASYNC_END_TRY(t)
/** async with lock: AWAIT_WITH_LOCK(t, l) { body } ASYNC_END_WITH_LOCK(t, l); the lock is released on
 *  every way out (l is evaluated by both). */
#define AWAIT_WITH_LOCK(t, l) \
    AWAIT_LOCK(t, l);         \
    ASYNC_TRY(t)
/** Closes AWAIT_WITH_LOCK. */
#define ASYNC_END_WITH_LOCK(t, l)       \
    ASYNC_FINALLY(t) {                  \
        (void)async_lock_release(l);    \
    }                                   \
    ASYNC_END_TRY(t)
/** async with semaphore: AWAIT_WITH_SEMAPHORE(t, s) { body } ASYNC_END_WITH_SEMAPHORE(t, s). */
#define AWAIT_WITH_SEMAPHORE(t, s) \
    AWAIT_SEMAPHORE(t, s);         \
    ASYNC_TRY(t)
/** Closes AWAIT_WITH_SEMAPHORE. */
#define ASYNC_END_WITH_SEMAPHORE(t, s)      \
    ASYNC_FINALLY(t) {                      \
        (void)async_semaphore_release(s);   \
    }                                       \
    ASYNC_END_TRY(t)

/** value = await anext(gen): the first call starts `producer` (a prepared coroutine, evaluated only
 *  then) as a child of this task; *out receives the next value. When the producer has finished,
 *  async_gen_done(g) is true and *out is unchanged; an error it raised is raised here. Cancelling this
 *  task cancels the producer too (it runs on the consumer's behalf, as in asyncio). */
#define AWAIT_NEXT(t, g, producer, out)                                                                \
    ASYNC__AWAIT(t, async__gen_next_start((t), (g), async_gen_started(g) ? (async_task *)0 : (producer), \
                                          (const async_error *)0),                                    \
                 async__gen_next_check((t), (g), (out)))
/** gen.athrow(error): raises `error` (a static record) inside the producer at its yield; like
 *  AWAIT_NEXT, *out receives what it yields next. */
#define AWAIT_GEN_THROW(t, g, error, out)                                                       \
    ASYNC__AWAIT(t, async__gen_next_start((t), (g), (async_task *)0, (error)),                  \
                 async__gen_next_check((t), (g), (out)))
/** await gen.aclose(): cancels a producer still running and waits until its cleanup (finally blocks)
 *  has run. Leaving the consumer's frame does the same for a generator not closed explicitly. */
#define AWAIT_GEN_CLOSE(t, g) ASYNC__AWAIT(t, async__gen_close_start((t), (g)), async__gen_close_check((t), (g)))
/** async for value in producer: AWAIT_FOR(t, &f->gen, producer, &f->value) { body } — break and
 *  continue work as in any loop. */
#define AWAIT_FOR(t, g, producer, out)                                  \
    for (;;)                                                            \
        if (1) {                                                        \
            AWAIT_NEXT(t, g, producer, out);                            \
            if (async_gen_done(g)) break;                               \
            goto ASYNC__LABEL(async__for_body_, __LINE__);              \
        } else                                                          \
            ASYNC__LABEL(async__for_body_, __LINE__):
/** yield value, inside a producer coroutine run by AWAIT_NEXT/AWAIT_FOR: hands the value to the
 *  consumer and waits until it asks for the next one. ASYNC_EINVAL if the task is not a producer. */
#define AWAIT_YIELD_VALUE(t, value) \
    ASYNC__AWAIT(t, async__gen_yield_start((t), (intptr_t)(value)), async__gen_yield_check((t)))
#define ASYNC__LABEL(a, b) ASYNC__CAT(a, b)

/** return value: finishes the coroutine with an integer value, after running enclosing finally blocks. */
#define ASYNC_RETURN(t, value)                                                          \
    do {                                                                                \
        ASYNC__IN_COROUTINE();                                                          \
        /* outside any finally block the task ends here, without a jump through END */ \
        if (sizeof(struct async__f) == ASYNC__LC_RETURN) return async__return((t), (intptr_t)(value)); \
        async__set_return((t), (intptr_t)(value));                                      \
        ASYNC__GOTO(t, sizeof(struct async__f));                                        \
    } while (0)
/** raise: fails with `code` and a static message, caught by the nearest ASYNC_CATCH (code must be a
 *  constant; for codes computed at run time raise a static async_error with ASYNC_THROW_ERROR). */
#define ASYNC_THROW(t, code, message)                                               \
    do {                                                                            \
        ASYNC__IN_COROUTINE();                                                      \
        static const async_error async__thrown = {(code), (message)};               \
        async__raise((t), &async__thrown);                                          \
        ASYNC__TO_HANDLER(t);                                                       \
    } while (0)
/** raise an existing error record (e.g. async_error_of(code), or one of your own static ones). */
#define ASYNC_THROW_ERROR(t, error)                         \
    do {                                                    \
        ASYNC__IN_COROUTINE();                              \
        async__raise((t), (error));                         \
        ASYNC__TO_HANDLER(t);                               \
    } while (0)
/** Inside ASYNC_CATCH: raise the caught error again (Python's bare `raise`). */
#define ASYNC_RERAISE(t) ASYNC_THROW_ERROR(t, async_caught(t))

/** try: ... ASYNC_CATCH(t) {...} and/or ASYNC_FINALLY(t) {...}, closed by ASYNC_END_TRY(t). Blocks may
 *  await. A finally block runs on every way out: normal end, error, return, cancellation, and a break or
 *  continue of the loop around the try (which then goes on after the finally block).
 *  How: each block runs inside a do-while of its own, which catches the break or continue; the way out is
 *  kept in the task's result while the finally block runs, and ASYNC_END_TRY repeats it. */
#define ASYNC_TRY(t)                                                            \
    {                                                                           \
        struct async__up_c { char n[sizeof(struct async__c)]; };               \
        struct async__up_f { char n[sizeof(struct async__f)]; };               \
        struct ASYNC_ERROR_CATCH_FINALLY_or_END_without_its_TRY_or_WITH { char n[__LINE__]; }; \
        struct ASYNC_ERROR_TRY_or_WITH_block_not_closed_by_its_END;                  \
        ASYNC__IN_COROUTINE();                                                  \
        ASYNC__LINE_OK();                                                       \
        ASYNC__TRY_BLOCK(t, ASYNC__LC_CATCH(__LINE__), ASYNC__LC_FINALLY(__LINE__))

/* The line of the enclosing ASYNC_TRY. */
#define ASYNC__TRY_LINE sizeof(struct ASYNC_ERROR_CATCH_FINALLY_or_END_without_its_TRY_or_WITH)
/* Opens a block of a try: raises go to `raise_to`, returns to `return_to`; the block is a loop that
 * catches break and continue (see ASYNC__TRY_BLOCK_END). A for, not a do-while: a block left open then
 * ends in a clear error rather than in "expected while". */
#define ASYNC__TRY_BLOCK(t, raise_to, return_to)                                \
        for (; async__leave != 2; async__leave = 2) {                           \
            struct async__c { char n[raise_to]; };                             \
            struct async__f { char n[return_to]; };
/* Closes a block of a try: its normal end goes to `next`; a break or continue ends up after the loop
 * (a continue through its step, which says so) and is noted in the task (`drop`: 8 in the finally block,
 * where it replaces a pending error or return), then `after` runs: the finally block, or for the finally
 * block itself the end of the try. */
#define ASYNC__TRY_BLOCK_END(t, next, after, drop)                              \
            ASYNC__GOTO(t, next);                                               \
        }                                                                       \
        async__leaving((t), async__leave + (drop));                             \
        ASYNC__GOTO(t, after);

/** except E: ASYNC_EXCEPT(t, code, ...) { handler } after the try block runs the handler when the try
 *  block raised one of the listed codes (up to 63); any other error, cancellation included, passes on by
 *  itself (after the finally block, if there is one). One ASYNC_EXCEPT or ASYNC_CATCH per try: to handle
 *  codes differently, list them and look at async_caught(t)->code. */
#define ASYNC_EXCEPT(t, ...)                                                                        \
        ASYNC__TRY_BLOCK_END(t, ASYNC__LC_FINALLY(ASYNC__TRY_LINE), ASYNC__LC_FINALLY(ASYNC__TRY_LINE), 0) \
        ASYNC__RESUME_AT(ASYNC__LC_CATCH(ASYNC__TRY_LINE)):                                                \
            if (!async__except((t), ASYNC__COUNT(__VA_ARGS__), __VA_ARGS__))                    \
                ASYNC__GOTO(t, ASYNC__LC_FINALLY(ASYNC__TRY_LINE)); /* not one of them: it goes on */ \
        ASYNC__TRY_BLOCK(t, ASYNC__LC_FINALLY(ASYNC__TRY_LINE), ASYNC__LC_FINALLY(ASYNC__TRY_LINE))

/** except Exception: ASYNC_EXCEPT_ANY(t) { handler } runs the handler for any error the try block raised
 *  but cancellation, which passes on. */
#define ASYNC_EXCEPT_ANY(t) ASYNC_EXCEPT(t, ASYNC__ANY_BUT_CANCEL)
/* For ASYNC_EXCEPT: matches every code but ASYNC_ECANCELED (no error code has this value: 0 is success). */
#define ASYNC__ANY_BUT_CANCEL 0

/** except: runs when the try block raised anything at all, cancellation included (ASYNC_EXCEPT names the
 *  codes it handles and lets the others pass); async_caught(t) is the error (re-raise with
 *  ASYNC_RERAISE). */
#define ASYNC_CATCH(t)                                                                          \
        ASYNC__TRY_BLOCK_END(t, ASYNC__LC_FINALLY(ASYNC__TRY_LINE), ASYNC__LC_FINALLY(ASYNC__TRY_LINE), 0) \
        ASYNC__RESUME_AT(ASYNC__LC_CATCH(ASYNC__TRY_LINE)):                                                \
            async__caught_enter((t));                                                           \
        ASYNC__TRY_BLOCK(t, ASYNC__LC_FINALLY(ASYNC__TRY_LINE), ASYNC__LC_FINALLY(ASYNC__TRY_LINE))

/** finally: runs on every way out of the try and catch blocks; a pending error, return, break or
 *  continue goes on after it. */
#define ASYNC_FINALLY(t)                                                                        \
        ASYNC__TRY_BLOCK_END(t, ASYNC__LC_FINALLY(ASYNC__TRY_LINE), ASYNC__LC_FINALLY(ASYNC__TRY_LINE), 0) \
        ASYNC__RESUME_AT(ASYNC__LC_FINALLY(ASYNC__TRY_LINE)):                                              \
        ASYNC__TRY_BLOCK(t, ASYNC__LC_ENDTRY(ASYNC__TRY_LINE), ASYNC__LC_ENDTRY(ASYNC__TRY_LINE))

/** Closes ASYNC_TRY; continues a pending error, return, break or continue outwards. A break or continue
 *  in the finally block itself drops what was pending (as in Python). */
#define ASYNC_END_TRY(t)                                                                        \
        ASYNC__TRY_BLOCK_END(t, ASYNC__LC_ENDTRY(ASYNC__TRY_LINE), ASYNC__LC_ENDTRY(ASYNC__TRY_LINE), 8) \
        ASYNC__RESUME_AT(ASYNC__LC_ENDTRY(ASYNC__TRY_LINE)):                                             \
            async__leave = async__end_try((t));                                                 \
            if (async__leave == ASYNC__RAISE) ASYNC__GOTO(t, sizeof(struct async__up_c));      \
            if (async__leave == ASYNC__RETURNING) ASYNC__GOTO(t, sizeof(struct async__up_f));  \
            if (async__leave == ASYNC__BREAKING) break;                                         \
            if (async__leave == ASYNC__CONTINUING) continue;                                    \
    }

/** The error being handled in an ASYNC_CATCH block (or NULL outside one). */
#define async_caught(t) ((t)->r.error)


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
    ASYNC_GROUP_SHIELD,          /* shield: the awaiter's cancellation does not reach the child */
    ASYNC_GROUP_GENERATOR        /* async generator: the producer, run for its consumer */
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
/** Every error the children of g finished with, in the order they were started (asyncio's ExceptionGroup,
 *  for `except*`): stores the first `max` in errors[] and returns how many there are. Cancellations are
 *  left out, as asyncio's TaskGroup leaves out the cancellations its first error caused. Valid until g
 *  is used again. */
ASYNC_API size_t async_group_errors(const async_group *g, const async_error **errors, size_t max);

/** The state of a wait_for: a group of the work and a deadline task. Zero-initialise it. */
typedef struct async_timeout {
    async_group group;  /* private */
    async_task timer;   /* private: sleeps, then cancels the work */
    int32_t ms;         /* private */
} async_timeout;

/** The state of a timeout block (asyncio.timeout / timeout_at): ASYNC_TIMEOUT(t, &f->d, ms) { awaits }
 *  ASYNC_END_TIMEOUT(t, &f->d). Zero it, or reuse it once its block has ended. */
typedef struct async_deadline {
    async_task timer;   /* private: the deadline's entry in the loop's timer heap (never runs as a task) */
    async_task *target; /* private: the task that runs the block */
    async_loop *loop;   /* private */
    async_ms when;      /* private */
    uint8_t state;      /* private: ASYNC__D_* */
} async_deadline;

/** asyncio.wait's return_when. */
typedef enum async_wait_how {
    ASYNC_ALL_COMPLETED = 0, /**< when every task has finished */
    ASYNC_FIRST_COMPLETED,   /**< when any task has finished */
    ASYNC_FIRST_EXCEPTION    /**< when any task has failed (not cancelled), else when all have finished */
} async_wait_how;

/** One task watched by a wait set (private: part of ASYNC_WAIT_SET). Its node sits in the watched task's
 *  list of waiters, as an awaiting task would, and wakes the set when the task ends. */
typedef struct async_watch {
    async_task node;         /* private */
    async_task *target;      /* private */
    struct async_wait *set;  /* private: NULL once detached */
    uint16_t seq;            /* private: the order it finished in (1, 2, ...), 0 while it runs */
} async_watch;

/** The head of a wait set (private: see ASYNC_WAIT_SET). */
typedef struct async_wait {
    async_future ready;      /* private: completed when the set's condition is met */
    async_watch *slots;      /* private */
    uint16_t cap, n;         /* private: slots, and tasks watched */
    uint16_t ndone, nreturned; /* private: finished; handed out by AWAIT_AS_COMPLETED */
    uint8_t how, failed, started, waiting; /* private */
} async_wait;

/** A frame field for AWAIT_WAIT, AWAIT_AS_COMPLETED and AWAIT_GATHER_TASKS over up to n tasks (one slot
 *  of about 72 bytes each on 64-bit). Zero it (a zeroed frame does); reusable once its await returned. */
#define ASYNC_WAIT_SET(n)                                                                             \
    struct {                                                                                          \
        async_wait set;                                                                               \
        async_watch slot[n];                                                                          \
    }

/** timeout.reschedule(): moves the deadline of a block that is running to ms from the loop's time now
 *  (negative: no deadline). 0; ASYNC_EINVAL for NULL or a block that is not running; ASYNC_ERANGE over
 *  ASYNC_MS_MAX; ASYNC_ESHUTDOWN once the deadline has passed. */
ASYNC_API int async_deadline_reschedule(async_deadline *d, int64_t ms);
/** timeout.when(): the deadline in the loop's clock; *when is left alone and false returned when there is
 *  none. */
ASYNC_API bool async_deadline_when(const async_deadline *d, async_ms *when);
/** timeout.expired(): true once the deadline has passed (the block then raises ASYNC_ETIMEDOUT). */
ASYNC_API bool async_deadline_expired(const async_deadline *d);

/* ------------------------------------------------------------------------------------------------ */
/* Synchronisation: locks, events, conditions, semaphores, queues (asyncio's, with fair FIFO wake-ups) */
/* ------------------------------------------------------------------------------------------------ */
/* Every primitive here is a plain struct the caller places (zeroed or initialised by its init function)
 * and never allocates, except a growing queue, which uses the realloc function it is given. Waiters wake
 * in the order they began waiting, and what is released is handed to the first waiter directly: a task
 * arriving later cannot take it first (asyncio lets a newcomer barge in; here a wake-up is a grant).
 * A waiter that is cancelled leaves the wait at once; a grant it had not yet used passes to the next. */

/** A FIFO list of waiting tasks (private; part of every primitive). */
typedef struct async_waitq {
    async_task *head; /* private */
    async_task *tail; /* private */
} async_waitq;

/** asyncio.Lock: not re-entrant; released in the order it was requested. Zero-initialise it. */
typedef struct async_lock {
    async_waitq waiters; /* private */
    async_task *holder;  /* private: the task that holds it */
} async_lock;

/** Releases l, handing it to the first waiter. ASYNC_EPERM if l is not locked, ASYNC_EINVAL for NULL. */
ASYNC_API int async_lock_release(async_lock *l);
/** True while l is held. */
ASYNC_API bool async_lock_locked(const async_lock *l);

/** asyncio.Event: waiters of a set event all wake. Zero-initialise it. */
typedef struct async_event {
    async_waitq waiters; /* private */
    bool is_set;         /* private */
} async_event;

/** Sets e and wakes every waiter (in the order they began waiting). ASYNC_EINVAL for NULL. */
ASYNC_API int async_event_set(async_event *e);
/** Clears e: later waits block until the next set. */
ASYNC_API void async_event_clear(async_event *e);
/** True while e is set. */
ASYNC_API bool async_event_is_set(const async_event *e);

/** asyncio.Condition: a wait list used under a lock. Initialise with async_condition_init. */
typedef struct async_condition {
    async_waitq waiters; /* private */
    async_lock *lock;    /* private */
    async_lock own_lock; /* private: used when no lock is given */
} async_condition;

/** Prepares c over `lock`, or over a lock of its own when lock is NULL. ASYNC_EINVAL for NULL c,
 *  ASYNC_EBUSY while tasks wait on c. */
ASYNC_API int async_condition_init(async_condition *c, async_lock *lock);
/** The lock of c (acquire it with AWAIT_LOCK before waiting or notifying). */
ASYNC_API async_lock *async_condition_lock(async_condition *c);
/** Wakes up to n waiters of c (first come, first woken); each reacquires the lock before it goes on.
 *  Returns how many were woken, or ASYNC_EPERM if c's lock is not held, ASYNC_EINVAL for NULL. */
ASYNC_API int async_condition_notify(async_condition *c, int n);
/** Wakes every waiter of c. Same returns as async_condition_notify. */
ASYNC_API int async_condition_notify_all(async_condition *c);

/** asyncio.Semaphore / BoundedSemaphore. Initialise with async_semaphore_init. */
typedef struct async_semaphore {
    async_waitq waiters; /* private */
    int32_t value;       /* private */
    int32_t bound;       /* private: 0, or the most value a bounded semaphore may reach */
} async_semaphore;

/** Prepares s with `value` permits (>= 0); bounded: releasing beyond the initial value is an error.
 *  ASYNC_EINVAL for NULL or a negative value, ASYNC_EBUSY while tasks wait on s. */
ASYNC_API int async_semaphore_init(async_semaphore *s, int32_t value, bool bounded);
/** Returns a permit: to the first waiter if any, else to the count. ASYNC_ERANGE if a bounded semaphore
 *  would exceed its initial value (BoundedSemaphore's ValueError), ASYNC_EINVAL for NULL. */
ASYNC_API int async_semaphore_release(async_semaphore *s);
/** Takes a permit without waiting: 0, or ASYNC_EAGAIN if none is free (or tasks already wait). */
ASYNC_API int async_semaphore_try_acquire(async_semaphore *s);
/** Free permits. */
ASYNC_API int32_t async_semaphore_value(const async_semaphore *s);

/** Order of a queue's items. */
typedef enum async_queue_kind {
    ASYNC_QUEUE_FIFO = 0, /**< asyncio.Queue */
    ASYNC_QUEUE_LIFO,     /**< asyncio.LifoQueue */
    ASYNC_QUEUE_PRIORITY  /**< asyncio.PriorityQueue: smallest first by the queue's compare function
                               (numeric order of the items by default); equal items leave in the order
                               they were put (asyncio's heap makes no such promise) */
} async_queue_kind;

/** Orders two items of a priority queue: negative, zero or positive, like strcmp. */
typedef int (*async_queue_compare)(intptr_t a, intptr_t b);

/** A queue of intptr_t items (integers or pointers to the caller's objects), like asyncio.Queue.
 *  Initialise with async_queue_init (caller's storage) or async_queue_init_growing. */
typedef struct async_queue {
    async_waitq getters, putters, joiners; /* private */
    intptr_t *items;                       /* private: ring (FIFO), stack (LIFO) or heap (priority) */
    uint32_t *seq;                         /* private: priority queues: put order of each item */
    void *(*realloc_fn)(void *ptr, size_t size); /* private: grows storage; NULL: fixed */
    async_queue_compare compare;           /* private */
    size_t capacity, maxsize, head, count; /* private */
    size_t reserved_items, reserved_slots; /* private: granted to woken getters/putters not yet run */
    size_t unfinished;                     /* private: items put and not yet task_done */
    uint32_t next_seq;                     /* private */
    uint8_t kind, shutdown;                /* private */
} async_queue;

/** Prepares a bounded queue over caller storage: `capacity` items (its maxsize). A priority queue
 *  needs `seq` storage of the same capacity (stable order); FIFO and LIFO pass NULL. ASYNC_EINVAL for
 *  a NULL q or storage, a zero capacity, or a priority queue without seq; ASYNC_EBUSY while tasks wait. */
ASYNC_API int async_queue_init(async_queue *q, async_queue_kind kind, intptr_t *storage, uint32_t *seq,
                               size_t capacity);
/** Prepares a queue whose storage grows with realloc_fn (realloc, or a pool's; realloc_fn(p, 0) must
 *  free p): maxsize items at most, 0 for no bound. Free it with async_queue_free_storage. Growth
 *  failure is ASYNC_ENOMEM at the put. */
ASYNC_API int async_queue_init_growing(async_queue *q, async_queue_kind kind, size_t maxsize,
                                       void *(*realloc_fn)(void *ptr, size_t size));
/** Frees a growing queue's storage (its items are dropped and no longer count as unfinished for join); a
 *  fixed queue's storage is the caller's and is left alone. 0; ASYNC_EINVAL for NULL; ASYNC_EBUSY (nothing freed) while tasks wait on q or were
 *  handed an item or a slot they have not used yet. */
ASYNC_API int async_queue_free_storage(async_queue *q);
/** Sets a priority queue's order (NULL: numeric). */
ASYNC_API void async_queue_set_compare(async_queue *q, async_queue_compare compare);
/** put_nowait: 0; ASYNC_EAGAIN if full (QueueFull), ASYNC_ESHUTDOWN after shutdown, ASYNC_ENOMEM if a
 *  growing queue cannot grow, ASYNC_EINVAL for NULL. */
ASYNC_API int async_queue_put_nowait(async_queue *q, intptr_t item);
/** get_nowait: 0 and the item in *out; ASYNC_EAGAIN if empty (QueueEmpty), ASYNC_ESHUTDOWN if empty
 *  and shut down, ASYNC_EINVAL for NULL. */
ASYNC_API int async_queue_get_nowait(async_queue *q, intptr_t *out);
/** Marks one item taken with get as processed (task_done); ASYNC_ERANGE if called more times than
 *  items were put. Joiners wake when every item is done. */
ASYNC_API int async_queue_task_done(async_queue *q);
/** shutdown(immediate): puts fail with ASYNC_ESHUTDOWN from now on and waiting putters wake with it;
 *  gets drain what is left, then fail with ASYNC_ESHUTDOWN. Immediate drops the items left (counting
 *  them done) so that waiting getters and joiners wake at once. */
ASYNC_API int async_queue_shutdown(async_queue *q, bool immediate);
/** Items in the queue. */
ASYNC_API size_t async_queue_size(const async_queue *q);
/** Items put and not yet marked done. */
ASYNC_API size_t async_queue_unfinished(const async_queue *q);
/** True if a put would have to wait. */
ASYNC_API bool async_queue_full(const async_queue *q);

/** An async generator's channel: the consumer iterates with AWAIT_FOR / AWAIT_NEXT, the producer (a
 *  coroutine run as the consumer's child) hands values over with AWAIT_YIELD_VALUE. Zero-initialise it. */
typedef struct async_gen {
    async_group group;          /* private: the producer is its only child (first member: see below) */
    async_task *producer_wait;  /* private: the producer, suspended at a yield */
    const async_error *thrown;  /* private: an error the consumer throws in */
    intptr_t value;             /* private */
    uint8_t state;              /* private */
} async_gen;

/** True once the producer has finished (the AWAIT_FOR loop is over). */
ASYNC_API bool async_gen_done(const async_gen *g);
/** True once the producer was started by a first AWAIT_NEXT. */
ASYNC_API bool async_gen_started(const async_gen *g);

/* ------------------------------------------------------------------------------------------------ */
/* The loop                                                                                          */
/* ------------------------------------------------------------------------------------------------ */


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
#if ASYNC_CONFIG_TIMER_FIFO
    async__timer *fifo; /* ring of timers set in deadline order (cap a power of two); task NULL: cancelled */
    uint32_t fifo_head, fifo_count, fifo_cap, fifo_live;
#endif
    async_ms now;
    async_group *live_groups;
    async_task *unretrieved;
    uint32_t steps; /* coroutine steps run (wrapping), for async_poll_batch and statistics */
    /* backend seam: all optional */
    async_ms (*clock)(async_loop *loop);                 /* NULL: virtual clock (time jumps) */
    bool (*wait)(async_loop *loop, int32_t timeout_ms);  /* block for I/O until timeout (-1: none);
                                                            false: nothing could ever wake the loop */
    void *(*realloc_fn)(void *ctx, void *ptr, size_t size); /* grows the timer heap; NULL: fixed */
    void *alloc_ctx;
    async_error_handler on_error;
    void *on_error_ctx;
    const struct async_backend *backend; /* the hosted runtime's backend table; NULL: none (firmware) */
    void *backend_data;                  /* the hosted runtime's state of this loop */
    const struct async_loop_hooks *hooks; /* instrumentation (debug mode); NULL: none */
    void *hooks_ctx;
    bool (*thread_check)(const async_loop *loop, const char *what); /* false: not the loop's thread */
    const char *(*strerror)(int code);    /* the application's messages for its own codes */
    async_task *current;                  /* the task a pass is stepping, or NULL */
    async__timer inline_timers[ASYNC_CONFIG_INLINE_TIMERS];
    struct async_interrupt *interrupts; /* what ISRs may raise (see Interrupts) */
    volatile uint32_t interrupted;       /* set by async_interrupt_raise, cleared by async_poll before its scan */
    void (*deliver)(async_loop *loop);   /* the scan, set by async_interrupt_init: a program that registers no
                                            interrupt does not link it */
    const struct async__group_ops *groups; /* the group code, set by the first group begun (likewise) */
};

/** Initialises a loop with the virtual clock (time jumps to the next timer when nothing is ready) and
 *  ASYNC_CONFIG_INLINE_TIMERS timer slots. Returns ASYNC_EINVAL for NULL. */
ASYNC_API int async_loop_init(async_loop *loop);
/** Uses a real clock: `clock` returns milliseconds (any origin; wrap-safe). */
ASYNC_API void async_loop_set_clock(async_loop *loop, async_ms (*clock)(async_loop *loop));
/** Lets the loop grow its timer heap with a realloc-style function (failure is ASYNC_ENOMEM at the await). */
ASYNC_API void async_loop_set_allocator(async_loop *loop, void *(*realloc_fn)(void *, void *, size_t), void *ctx);
/** Receives errors no one retrieved (reported when async_run returns and by async_loop_report_errors);
 *  never called with ASYNC_CONFIG_UNRETRIEVED 0. */
ASYNC_API void async_loop_set_error_handler(async_loop *loop, async_error_handler fn, void *ctx);
/** The loop's time in ms as of the start of the current pass (what timers are measured from). */
ASYNC_API async_ms async_loop_now(const async_loop *loop);
/** asyncio's loop.time(): reads the clock now (after a blocking call it has moved on) and returns it;
 *  with the virtual clock, the virtual time. */
ASYNC_API async_ms async_loop_time(async_loop *loop);
/** Runs one pass: delivers raised interrupts, fires due timers, then runs every task that was ready at
 *  the start of the pass. Returns how long the caller may sleep before calling again: 0 if tasks are
 *  ready (or an interrupt was raised meanwhile), the ms to the next timer, or -1 if nothing is scheduled.
 *  The firmware main loop calls this (see README). */
ASYNC_API int32_t async_poll(async_loop *loop);
/** Like async_poll, but goes on with further passes on the same clock reading while tasks are ready,
 *  until about max_steps coroutine steps have run (whole passes: it may run more): what async_run does
 *  between two looks at the clock and at I/O, so that tasks handing work to each other do not pay a
 *  system call per hand-over. Returns what async_poll returns. */
ASYNC_API int32_t async_poll_batch(async_loop *loop, uint32_t max_steps);
/** Spawns main on the loop and runs the loop until main finishes; returns main's code (0 or its error).
 *  If main waits and nothing is left that could wake it, main is cancelled so that its finally blocks run,
 *  and if the cancellation goes round tasks that await each other (A awaits B, B awaits A, also through a
 *  gather's children) one task of that cycle is released with the cancellation, so that every task of it
 *  unwinds; the return is then ASYNC_EDEADLK (with ASYNC_CONFIG_DEADLOCK 0 at once, nothing cancelled).
 *  Reports unretrieved errors. */
ASYNC_API int async_run(async_loop *loop, async_task *main);
/** Passes every unretrieved error to the error handler and forgets them. Returns how many there were (0
 *  with ASYNC_CONFIG_UNRETRIEVED 0: none are kept). */
ASYNC_API unsigned async_loop_report_errors(async_loop *loop);
/** Number of sleeping tasks. */
ASYNC_API uint32_t async_loop_timers(const async_loop *loop);
/** Frees the timer storage the loop grew with its allocator (which must free when asked for size 0);
 *  sleeping tasks are forgotten. For loops set up with async_loop_init and an allocator; the hosted
 *  async_loop_free does it. */
ASYNC_API void async_loop_free_storage(async_loop *loop);
/** True if tasks are ready to run. */
ASYNC_API bool async_loop_has_ready(const async_loop *loop);
/** The loop's time (async_loop_now) from inside a coroutine: loop.time() in one short call. 0 if t is not
 *  scheduled. */
ASYNC_API async_ms async_time(const async_task *t);
/** asyncio.current_task(): the task the loop is stepping now (the scheduled task, whatever coroutine it
 *  runs inline), or NULL outside a step. */
ASYNC_API async_task *async_loop_current_task(const async_loop *loop);
/** Gives the loop the messages of the application's own error codes (>= ASYNC_EUSER): async_loop_strerror
 *  and the hosted runtime's reports ask fn for them; fn returns NULL for a code it does not know. */
ASYNC_API void async_loop_set_strerror(async_loop *loop, const char *(*fn)(int code));
/** The message for code: the library's, the application's (async_loop_set_strerror), or "unknown error". */
ASYNC_API const char *async_loop_strerror(const async_loop *loop, int code);
/** The message of error e as the loop would report it: its own text, else async_loop_strerror. */
ASYNC_API const char *async_loop_error_message(const async_loop *loop, const async_error *e);
/** A runtime's guard of the loop's thread: async_cancel (and other calls that change a loop's tasks from
 *  outside a step) call check(loop, their name) first and refuse (return false, or ASYNC_EPERM) when it
 *  returns false. The hosted runtime installs one that says so on stderr; a loop of async_loop_init's has
 *  none. Never called with ASYNC_CONFIG_HOOKS 0. */
ASYNC_API void async_loop_set_thread_check(async_loop *loop, bool (*check)(const async_loop *loop, const char *what));

/** A plain callback scheduled on a loop (loop.call_soon / call_later / call_at), cancellable until it has
 *  run. Caller's memory, zeroed or reused after its call ran or was cancelled; it must stay in place until
 *  then. It runs in the loop's pass like a task step, in FIFO order with the tasks that became ready with
 *  it. */
typedef struct async_handle {
    async_task task;          /* private: the call runs as a small task of the loop */
    void (*fn)(void *arg);    /* private */
    void *arg;                /* private */
    async_ms when;            /* private: call_later/call_at: the deadline */
    bool timed;               /* private */
} async_handle;

/** loop.call_soon(fn, arg): fn(arg) runs on the loop's next pass. 0; ASYNC_EINVAL for NULL; ASYNC_EBUSY if
 *  h is still scheduled. */
ASYNC_API int async_loop_call_soon(async_loop *loop, async_handle *h, void (*fn)(void *arg), void *arg);
/** loop.call_later(ms, fn, arg): fn(arg) runs ms milliseconds from the loop's time now (ASYNC_ERANGE over
 *  ASYNC_MS_MAX; ms <= 0 is call_soon). Returns as async_loop_call_soon does. */
ASYNC_API int async_loop_call_later(async_loop *loop, async_handle *h, int64_t ms, void (*fn)(void *arg),
                                    void *arg);
/** loop.call_at(when, fn, arg): fn(arg) runs when the loop's clock reaches `when` (at once if it has). */
ASYNC_API int async_loop_call_at(async_loop *loop, async_handle *h, async_ms when, void (*fn)(void *arg),
                                 void *arg);
/** handle.cancel(): true if the call was still to run and now never will; false if it has run, was
 *  cancelled already, or h is NULL. */
ASYNC_API bool async_handle_cancel(async_handle *h);
/** True if the call was scheduled and has neither run nor been cancelled. */
ASYNC_API bool async_handle_pending(const async_handle *h);

/** What a task that a step left waiting waits for, as the wait hook tells it. */
typedef enum async_wait_kind {
    ASYNC_WAITING_YIELD = 0, /**< nothing: it is ready again (a yield, a sleep of 0 ms); object NULL */
    ASYNC_WAITING_SLEEP,     /**< a sleep's deadline; object NULL */
    ASYNC_WAITING_TASK,      /**< a task to end; object: that task */
    ASYNC_WAITING_CHILDREN,  /**< a group's children (gather, task group, timeout, its frame's end); object:
                                  the async_group */
    ASYNC_WAITING_SYNC,      /**< a lock, event, condition, semaphore or queue; object: its async_waitq */
    ASYNC_WAITING_FUTURE     /**< a future (the hosted runtime's I/O, thread calls and signals are futures), a
                                  generator's hand-over, or a group's child awaited from outside its group;
                                  object: the future, or the list it waits in */
} async_wait_kind;

/** Instrumentation of a loop, all optional (the hosted debug mode and trace are built on it). Hooks run
 *  on the loop's thread, inside the pass; they must not resume tasks. Initialise a table by field name:
 *  fields are appended as the core reports more. A loop without hooks pays one branch per step; the
 *  hooks after inline_start are called from that branch too (and from errors and cancellations), so
 *  they cost nothing on the paths that hand work from task to task. */
typedef struct async_loop_hooks {
    void (*step_begin)(async_loop *loop, async_task *task); /**< before a scheduled task runs a step */
    void (*step_end)(async_loop *loop, async_task *task);   /**< after it (the task may have finished) */
    void (*task_done)(async_loop *loop, async_task *task);  /**< a task finished (inline ones too) */
    void (*inline_start)(async_loop *loop, async_task *parent, async_task *child); /**< AWAIT of a coroutine */
    /** After a step, before step_end: each task the step made ready (woken, spawned, or started as a
     *  group's child), in the order they will run; by is the stepping task. Not told: a task that makes
     *  itself ready (a yield), and tasks made ready outside a step (timers, the hosted runtime's
     *  completions, async_cancel from outside a step): they are ready at the next pass. */
    void (*wake)(async_loop *loop, async_task *task, async_task *by);
    /** After a step that left the task waiting, before step_end: what it waits for. */
    void (*wait)(async_loop *loop, async_task *task, async_wait_kind kind, const void *object);
    /** A coroutine ends with an error (task: a scheduled one or one awaited inline; before task_done):
     *  ASYNC_THROW or a failed await that no CATCH took, a cancellation, an error passed up from an
     *  awaited task. (An error that a CATCH takes is not told: raising stays free of hooks.) */
    void (*error)(async_loop *loop, async_task *task, const async_error *error);
    /** async_cancel asked for task's cancellation (the first request; by: the task whose step asked, or
     *  NULL outside a step). */
    void (*cancel)(async_loop *loop, async_task *task, async_task *by);
} async_loop_hooks;

/** Installs hooks (NULL removes them); ctx is for the hooks (async_loop_hooks_ctx). Never called with
 *  ASYNC_CONFIG_HOOKS 0. */
ASYNC_API void async_loop_set_hooks(async_loop *loop, const async_loop_hooks *hooks, void *ctx);
/** The ctx given with the hooks. */
ASYNC_API void *async_loop_hooks_ctx(const async_loop *loop);
/** The hooks installed, or NULL. */
ASYNC_API const async_loop_hooks *async_loop_get_hooks(const async_loop *loop);
/** A loop's allocator: realloc's contract, and size 0 frees (see async_loop_set_allocator). */
typedef void *(*async_loop_realloc_fn)(void *ctx, void *ptr, size_t size);
/** The allocator set with async_loop_set_allocator (NULL: none), and its ctx in *ctx if ctx is not NULL:
 *  for the hosted runtime's records that come from the loop's memory, like its timers. */
ASYNC_API async_loop_realloc_fn async_loop_get_allocator(const async_loop *loop, void **ctx);

/* What the hosted runtime (libasync.a) plugs into the loop beside the clock, the wait and the hooks: its
 * backend, the one table of functions through which its layers meet the OS (see the README). A loop of
 * async_loop_init's has none; firmware never needs these. */

/** A backend's table of functions: defined by the hosted runtime's sources, opaque here. */
typedef struct async_backend async_backend;
/** Plugs a backend table and the hosted runtime's state for this loop into it (libasync.a's loop
 *  constructors do; NULL takes both out: no state without a table). */
ASYNC_API void async_loop_set_backend(async_loop *loop, const async_backend *backend, void *data);
/** The loop's backend table: NULL for a loop of async_loop_init's that no hosted runtime took over. */
ASYNC_API const async_backend *async_loop_backend(const async_loop *loop);
/** The state given with the backend table (NULL when the loop has none). */
ASYNC_API void *async_loop_backend_data(const async_loop *loop);
/** True if the loop runs on the virtual clock (no clock set: time jumps to the next timer). */
ASYNC_API bool async_loop_virtual(const async_loop *loop);
/** Virtual clock: moves the loop's time ms forward, as async_run does when nothing is ready and the
 *  loop has no wait (a wait of a virtual loop calls it). No effect on a loop with a real clock. */
ASYNC_API void async_loop_advance(async_loop *loop, async_ms ms);
/** Walks the ready queue for inspection (debug mode's report of tasks never started): the task after
 *  prev (NULL: the first one), or NULL at the end. The queue must not change during the walk. */
ASYNC_API async_task *async_loop_ready_next(const async_loop *loop, const async_task *prev);
/** True once t has run a step and stored where it resumes; false for a task that never ran (and NULL). */
ASYNC_API bool async_task_started(const async_task *t);

/* ------------------------------------------------------------------------------------------------ */
/* Interrupts                                                                                        */
/* ------------------------------------------------------------------------------------------------ */
/* An interrupt handler never touches the scheduler: it raises an async_interrupt, and the loop's next
 * async_poll completes the interrupt's future, which wakes the tasks awaiting it (in the same pass).
 * ISR-SAFE: async_interrupt_raise, async_interrupt_raise_error and async_loop_interrupted, nothing else. Every
 * other function of this header runs in the loop's context (the main loop, thread mode). Why those three
 * are safe on one core, with no lock, no interrupt masking and no atomic instruction (a Cortex-M0 does):
 * a raise stores only its own record's volatile fields (value, then a raise count), then sets the loop's
 * volatile flag word, the same store from any ISR; the loop clears that flag *before* it scans its
 * interrupts, so a raise that lands during the scan sets it again for the next pass instead of being lost;
 * and the loop reads an interrupt's value again if the raise count moved while it read (the ISR preempted
 * it). One raising context per interrupt (one ISR, or ISRs that cannot preempt each other). Not for several
 * cores or threads: volatile orders nothing between cores. */

/** An interrupt's way into the loop: a future that an ISR completes by raising it. Tasks await it as
 *  AWAIT_FUTURE(t, &irq->future) and read async_future_value(&irq->future) (or catch the raised
 *  error). Raises that arrive before the loop delivers one coalesce: the latest value wins. A raise that
 *  arrives while the future still holds an earlier outcome waits for async_interrupt_reset. Start zeroed. */
typedef struct async_interrupt async_interrupt;
struct async_interrupt {
    async_future future;               /**< completed by async_poll with the raised value or error */
    async_interrupt *next;             /* private: the loop's list of interrupts */
    async_loop *volatile loop;         /* private: set by async_interrupt_init, NULL once closed */
    volatile intptr_t value;           /* private: the latest raised value (ISR-written) */
    const async_error *volatile error; /* private: or the latest raised error (ISR-written) */
    volatile uint32_t raised;          /* private: raises so far (ISR-written only) */
    uint32_t taken;                    /* private: the raise count the loop delivered last */
};

/** Registers a zeroed (or closed) interrupt record with the loop, its future pending. Call it before enabling the
 *  interrupt that raises it, and close it before the loop is freed or initialised again (the loop keeps
 *  a list of them). ASYNC_EINVAL for NULL, ASYNC_EBUSY if s is registered already. */
ASYNC_API int async_interrupt_init(async_interrupt *s, async_loop *loop);
/** ISR-SAFE. Raises s with a value: the loop's next async_poll completes s's future with it. Returns 0,
 *  ASYNC_EINVAL for NULL, ASYNC_ESHUTDOWN if s is not registered (never initialised, or closed). */
ASYNC_API int async_interrupt_raise(async_interrupt *s, intptr_t value);
/** ISR-SAFE. Raises s with an error (a static record): the awaiters' AWAIT_FUTURE raises it. Returns as
 *  async_interrupt_raise, and ASYNC_EINVAL for a NULL error. */
ASYNC_API int async_interrupt_raise_error(async_interrupt *s, const async_error *error);
/** Re-arms s after its future completed, so the next raise completes it again; a raise that came in
 *  between is delivered by the next async_poll. ASYNC_EINVAL for NULL, ASYNC_ESHUTDOWN if s is not
 *  registered, ASYNC_EBUSY while tasks await the future (it is pending: nothing to re-arm). */
ASYNC_API int async_interrupt_reset(async_interrupt *s);
/** Unregisters s (disable its interrupt first): later raises return ASYNC_ESHUTDOWN and a raise not yet
 *  delivered is dropped. ASYNC_EINVAL for NULL, ASYNC_ESHUTDOWN if s is not registered, ASYNC_EBUSY (s
 *  stays registered) while tasks await its future. */
ASYNC_API int async_interrupt_close(async_interrupt *s);
/** ISR-SAFE. True if a raise waits for the loop's next pass. A board tests it with interrupts masked just
 *  before it sleeps (WFI still wakes on a masked interrupt, whose handler runs once they are unmasked),
 *  so that a raise between async_poll and the sleep is not slept through. */
ASYNC_API bool async_loop_interrupted(const async_loop *loop);
/** True if interrupts are registered: one may still wake a loop that has nothing scheduled. */
ASYNC_API bool async_loop_has_interrupts(const async_loop *loop);
/** How async_run waits between passes on a loop of async_loop_init's: wait(loop, ms) returns after at
 *  most ms milliseconds (0: tasks are ready, return at once; -1: no timer is set), or earlier once a
 *  interrupt was raised, and returns false only if nothing could ever wake the loop (async_run then ends
 *  main with ASYNC_EDEADLK). A board sleeps there with WFI. Hosted loops have theirs: leave those. */
ASYNC_API void async_loop_set_wait(async_loop *loop, bool (*wait)(async_loop *loop, int32_t timeout_ms));

/* ------------------------------------------------------------------------------------------------ */
/* Static frame pools                                                                                */
/* ------------------------------------------------------------------------------------------------ */

/** Frames sized at compile time, for tasks started at run time with no allocator: a frame array and a
 *  bitmap of the frames handed out. Define one with ASYNC_FRAME_POOL. All fields are private. */
typedef struct async_frame_pool {
    void *frames;
    uint32_t *used; /* one bit per frame */
    size_t size;    /* bytes per frame */
    uint32_t count;
} async_frame_pool;

/** Defines `static async_frame_pool name` over n static frames of frame_type, whose first member must be
 *  the async_task `task` (a build error otherwise). Costs n frames plus 4 bytes per 32 frames. */
#define ASYNC_FRAME_POOL(name, frame_type, n)                                                          \
    static frame_type name##_frames_[(n)];                                                             \
    static uint32_t name##_used_[((n) + 31) / 32];                                                     \
    static async_frame_pool name = {                                                                   \
        name##_frames_, name##_used_,                                                                  \
        sizeof(frame_type) + 0 * sizeof(char[offsetof(frame_type, task) == 0 ? 1 : -1]), (n)}

/** A zeroed frame from the pool, ready for ASYNC_FRAME_INIT; NULL if every frame is out (or pool is
 *  NULL): the caller's ASYNC_ENOMEM. */
ASYNC_API void *async_frame_pool_get(async_frame_pool *pool);
/** Returns a frame to its pool. ASYNC_EINVAL for NULL, a pointer that is not one of the pool's frames, or
 *  a frame not handed out; ASYNC_EBUSY (the frame stays out) while its task runs or owns running
 *  children, or holds an error no one retrieved (read it with async_task_code first). */
ASYNC_API int async_frame_pool_put(async_frame_pool *pool, void *frame);
/** Frames of the pool not handed out. */
ASYNC_API uint32_t async_frame_pool_available(const async_frame_pool *pool);

/* ------------------------------------------------------------------------------------------------ */
/* Private: the helpers the macros expand to (not part of the API)                                  */
/* ------------------------------------------------------------------------------------------------ */
ASYNC_API async_status async__complete(async_task *t);
ASYNC_API async_task *async__call(async_fn fn, size_t size, const void *init);
ASYNC_API bool async__redirect(async_task *t);
ASYNC_API void async__raise(async_task *t, const async_error *e);
ASYNC_API void async__set_return(async_task *t, intptr_t value);
ASYNC_API async_status async__return(async_task *t, intptr_t value);
ASYNC_API void async__caught_enter(async_task *t);
ASYNC_API int async__end_try(async_task *t);
ASYNC_API int async__except(async_task *t, int n, ...);
ASYNC_API void async__leaving(async_task *t, int how);
ASYNC_API async_status async__stray_leave(async_task *t);
ASYNC_API int async__await_start(async_task *t, async_task *x);
ASYNC_API int async__await_check(async_task *t, async_task *x);
ASYNC_API int async__sleep_start(async_task *t, int64_t ms);
ASYNC_API int async__sleep_check(async_task *t);
ASYNC_API int async__future_start(async_task *t, async_future *f);
ASYNC_API int async__future_check(async_task *t, async_future *f);
ASYNC_API int async__gather_start(async_task *t, async_group *g, int mode, async_task *const *children, size_t n);
ASYNC_API int async__gather_array_start(async_task *t, async_group *g, int mode, async_task *first, size_t n,
                                        size_t stride);
ASYNC_API int async__group_check(async_task *t, async_group *g);
ASYNC_API int async__gather_check(async_task *t, async_group *g);
ASYNC_API int async__group_wait(async_task *t, async_group *g);
ASYNC_API int async__spawn_or_raise(async_task *t, async_group *g, async_task *child);
ASYNC_API int async__timeout_start(async_task *t, async_timeout *tmo, int64_t ms, async_task *child);
ASYNC_API int async__deadline_start(async_task *t, async_deadline *d, int at, int64_t ms);
ASYNC_API int async__wait_start(async_task *t, async_wait *ws, async_watch *slots, size_t cap, int how, int kind,
                                async_task *const *tasks, size_t n);
ASYNC_API int async__wait_next(async_task *t, async_wait *ws);
ASYNC_API int async__wait_check(async_task *t, async_wait *ws, async_task **out);
ASYNC_API void async__deadline_end(async_task *t, async_deadline *d);
ASYNC_API int async__lock_start(async_task *t, async_lock *l);
ASYNC_API int async__lock_check(async_task *t, async_lock *l);
ASYNC_API int async__event_start(async_task *t, async_event *e);
ASYNC_API int async__event_check(async_task *t, async_event *e);
ASYNC_API int async__cond_start(async_task *t, async_condition *c);
ASYNC_API int async__cond_check(async_task *t, async_condition *c);
ASYNC_API int async__sem_start(async_task *t, async_semaphore *s);
ASYNC_API int async__sem_check(async_task *t, async_semaphore *s);
ASYNC_API int async__qput_start(async_task *t, async_queue *q);
ASYNC_API int async__qput_check(async_task *t, async_queue *q, intptr_t item);
ASYNC_API int async__qget_start(async_task *t, async_queue *q);
ASYNC_API int async__qget_check(async_task *t, async_queue *q, intptr_t *out);
ASYNC_API int async__qjoin_start(async_task *t, async_queue *q);
ASYNC_API int async__qjoin_check(async_task *t, async_queue *q);
ASYNC_API int async__gen_next_start(async_task *t, async_gen *g, async_task *producer, const async_error *thrown);
ASYNC_API int async__gen_next_check(async_task *t, async_gen *g, intptr_t *out);
ASYNC_API int async__gen_close_start(async_task *t, async_gen *g);
ASYNC_API int async__gen_close_check(async_task *t, async_gen *g);
ASYNC_API int async__gen_yield_start(async_task *t, intptr_t value);
ASYNC_API int async__gen_yield_check(async_task *t);

/* ---- private: task states and flags, and the hot awaits' common cases inline ---- */

/* Task states */
enum {
    ASYNC__S_INIT = 0,   /* prepared, never started */
    ASYNC__S_READY,      /* in the ready queue */
    ASYNC__S_RUNNING,    /* being stepped (an inline child: started and not finished) */
    ASYNC__S_SLEEPING,   /* in the timer heap */
    ASYNC__S_WAIT,       /* in a wait list; cancelling detaches it */
    ASYNC__S_WAIT_Q,     /* in a primitive's FIFO wait queue; cancelling detaches it */
    ASYNC__S_WAIT_TASK,  /* in a task's waiters; cancelling passes on to that task */
    ASYNC__S_WAIT_GROUP, /* in a group's waiters; cancelling passes on to the children */
    ASYNC__S_DONE,
    ASYNC__S_DEADLINE,   /* a timeout block's entry in the timer heap (never a real task) */
    ASYNC__S_ENDED       /* an inline child that finished, until its parent's await takes the outcome */
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

#ifndef ASYNC_CONFIG_INLINE_AWAITS
/* AWAIT_YIELD's common cases are inlined into the coroutine (no call into the core) in optimised hosted
 * builds; a build for size, and firmware, keeps one call per await. */
#  if defined(__OPTIMIZE__) && !defined(__OPTIMIZE_SIZE__) && defined(__STDC_HOSTED__) && __STDC_HOSTED__
#    define ASYNC_CONFIG_INLINE_AWAITS 1
#  else
#    define ASYNC_CONFIG_INLINE_AWAITS 0
#  endif
#endif

/* Appends t to the loop's ready queue (FIFO). */
static inline void async__ready_push(async_loop *loop, async_task *t) {
    t->state = ASYNC__S_READY;
    t->q.next = NULL;
    if (loop->ready_tail)
        loop->ready_tail->q.next = t;
    else
        loop->ready_head = t;
    loop->ready_tail = t;
}

/* AWAIT_YIELD's start: a task of the loop with no cancellation pending goes to the back of the ready
 * queue here; anything else (an inline coroutine, a group's child, a pending cancel) asks the core. */
static inline int async__yield_start(async_task *t) {
#if ASYNC_CONFIG_INLINE_AWAITS
    /* a task running a step: its owner carries no leaf tag */
    switch (t->flags & (ASYNC__F_OWNER | ASYNC__F_CANCEL)) {
    case ASYNC__OWN_LOOP: async__ready_push((async_loop *)t->owner, t); return 1; /* ASYNC__WAIT */
    case ASYNC__OWN_GROUP: async__ready_push(((async_group *)t->owner)->loop, t); return 1;
    default: break;
    }
#endif
    return async__sleep_start(t, 0);
}

/* A sleep's or yield's resume: a scheduled task stepped again with no cancellation pending goes on. */
static inline int async__sleep_resume(async_task *t) {
#if ASYNC_CONFIG_INLINE_AWAITS
    unsigned how = t->flags & (ASYNC__F_OWNER | ASYNC__F_CANCEL);
    if ((how == ASYNC__OWN_LOOP || how == ASYNC__OWN_GROUP) && t->state == ASYNC__S_RUNNING) return 0; /* GO */
#endif
    return async__sleep_check(t);
}
/* ================================================================================================ */
/* The hosted runtime (libasync.a): loops on libev, threads, files, network. Declared in include/async/ */
/* and provided by libasync.a, not by ASYNC_IMPLEMENTATION; freestanding builds never see it.        */
/* ================================================================================================ */

#ifdef __cplusplus
}
#endif

#if !defined(ASYNC_FREESTANDING) && defined(__STDC_HOSTED__) && __STDC_HOSTED__
#include "async/runtime.h"
#include "async/net.h"
#include "async/sim.h"
#endif

#endif /* ASYNC_H_INCLUDED */

/* ================================================================================================ */
/* Implementation: define ASYNC_IMPLEMENTATION in exactly one file before including this header.    */
/* ================================================================================================ */
#if defined(ASYNC_IMPLEMENTATION) && !defined(ASYNC_IMPLEMENTATION_DONE)
#define ASYNC_IMPLEMENTATION_DONE

/* A misuse of the API (a NULL or nonsense argument, a busy object, a call in the wrong state): ASYNC_ASSERT
 * sees it with what went wrong, and the caller gets `code`. With the default ASYNC_ASSERT the message
 * costs nothing. */
#define ASYNC__MISUSE(code, what) (ASYNC_ASSERT(0, what), (code))

/* The small functions of the hot paths (a step, a hand-over, a wake) are inlined into the few that the
 * coroutines call, where the compiler allows it and the build is not for size (-Os keeps them calls). */
#if defined(__GNUC__) && !defined(__OPTIMIZE_SIZE__) && defined(__OPTIMIZE__)
#  define ASYNC__HOT static inline __attribute__((always_inline))
#else
#  define ASYNC__HOT static
#endif
/* The step's driver is inlined into its two callers even for size: the pass's copy, the one every
 * program links, is then specialised for a whole task (a smaller function than the general one). */
#if defined(__GNUC__) && defined(__OPTIMIZE__)
#  define ASYNC__DRIVER static inline __attribute__((always_inline))
#else
#  define ASYNC__DRIVER static
#endif

/* A C99 static assertion: a negative array size is a compile error. */
#define ASYNC__STATIC_ASSERT(cond, name) typedef char async__assert_##name[(cond) ? 1 : -1]
/* The header budget: 48 bytes on 64-bit targets, 24 on 32-bit ones (+1 pointer with task names). */
ASYNC__STATIC_ASSERT(sizeof(async_task) <= (6 + ASYNC_CONFIG_TASK_NAMES) * sizeof(void *), task_header_budget);

/* A scheduled task whose coroutine awaits another inline tags its owner pointer (loops, groups and tasks
 * are aligned, so bit 0 is free): its r holds the innermost coroutine of the chain (async__run). */
#define ASYNC__LEAF_TAG ((uintptr_t)1u)
#define ASYNC__HAS_LEAF(r) (((uintptr_t)(r)->owner & ASYNC__LEAF_TAG) != 0)
ASYNC__HOT void *async__owner(const async_task *t) { return (void *)((uintptr_t)t->owner & ~ASYNC__LEAF_TAG); }

/* Group flags */
#define ASYNC__G_TIMED_OUT 0x01u
#define ASYNC__G_CHILD_WAITERS 0x02u /* tasks await single children: wake on every child's end */

#define ASYNC__TAG(headp) ((async_task *)((uintptr_t)(headp) | 1u))
#define ASYNC__IS_TAG(p) (((uintptr_t)(p)&1u) != 0)
#define ASYNC__UNTAG(p) ((async_task **)((uintptr_t)(p) & ~(uintptr_t)1u))
#define ASYNC__OWNER(t) ((t)->flags & ASYNC__F_OWNER)

#if ASYNC_CONFIG_ERROR_MESSAGES
#define ASYNC__MSG(text) text
static const async_error async__errors[] = {
#define ASYNC__REC(name, value, msg) {value, msg},
    ASYNC_ERRORS(ASYNC__REC)
#undef ASYNC__REC
};
#else
/* No texts: a record per code that the core raises into a task (the ones it only returns need none) */
#define ASYNC__MSG(text) NULL
static const async_error async__errors[] = {
    {ASYNC_ENOMEM, NULL}, {ASYNC_EBUSY, NULL},     {ASYNC_EINVAL, NULL},    {ASYNC_ERANGE, NULL},
    {ASYNC_EDEADLK, NULL}, {ASYNC_ESHUTDOWN, NULL}, {ASYNC_ETIMEDOUT, NULL}, {ASYNC_ECANCELED, NULL},
    {ASYNC_EFAULT, NULL},  {ASYNC_EPERM, NULL},
};
#endif
#define ASYNC__NERRORS (sizeof async__errors / sizeof async__errors[0])

ASYNC_API const async_error *async_error_of(int code) {
    size_t i;
    for (i = 0; i < ASYNC__NERRORS; i++)
        if (async__errors[i].code == code) return &async__errors[i];
    return NULL;
}

#if ASYNC_CONFIG_ERROR_MESSAGES
ASYNC_API const char *async_strerror(int code) {
    const async_error *e = async_error_of(code);
    return e ? e->message : "unknown error";
}

ASYNC_API const char *async_error_message(const async_error *e) {
    if (!e) return async_strerror(0);
    return e->message ? e->message : async_strerror(e->code);
}
#else
/* No texts: the code is what tells errors apart (a record's own message, an ASYNC_THROW's, stays). */
ASYNC_API const char *async_strerror(int code) {
    (void)code;
    return "error";
}

ASYNC_API const char *async_error_message(const async_error *e) { return e && e->message ? e->message : "error"; }
#endif

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

ASYNC__HOT async_loop *async__loop_of(const async_task *t) {
    if (ASYNC__OWNER(t) == ASYNC__OWN_TASK) t = t->q.runner;
    if (ASYNC__OWNER(t) == ASYNC__OWN_GROUP) return ((async_group *)async__owner(t))->loop;
    return ASYNC__OWNER(t) == ASYNC__OWN_LOOP ? (async_loop *)async__owner(t) : NULL;
}

ASYNC_API async_loop *async_task_loop(const async_task *t) { return t ? async__loop_of(t) : NULL; }

ASYNC_API async_task *async_task_parent(const async_task *t) {
    if (!t) return NULL;
    switch (ASYNC__OWNER(t)) {
    case ASYNC__OWN_GROUP: return ((async_group *)async__owner(t))->parent;
    case ASYNC__OWN_TASK: return (async_task *)async__owner(t);
    default: return NULL;
    }
}

ASYNC_API const char *async_task_state(const async_task *t) {
    static const char *const names[] = {"new", "ready", "running", "sleeping", "waiting", "waiting",
                                        "awaiting a task", "awaiting children", "done", "deadline", "running"};
    if (!t || t->state >= sizeof names / sizeof names[0]) return "invalid";
    return names[t->state];
}

ASYNC_API bool async_task_where(async_task *t, const char **file, const char **function, unsigned *line) {
    uint16_t lc;
    intptr_t r;
    if (!t || !t->fn) return false;
    /* the coroutine answers two special resume points at the top of its switch and changes nothing */
    lc = t->lc;
    r = t->r.value;
    t->lc = ASYNC__LC_FILE;
    t->fn(t);
    if (file) *file = (const char *)t->r.value;
    t->lc = ASYNC__LC_FUNCTION;
    t->fn(t);
    if (function) *function = (const char *)t->r.value;
    t->lc = lc;
    t->r.value = r;
    if (line) *line = lc < 0x3F00u ? lc : (lc >= 0x4000u && lc < 0xFFFEu ? (lc & 0x3FFFu) : 0u);
    return true;
}

/* The scheduled task that runs t (t itself unless t is awaited inline): one load, whatever the depth. */
ASYNC__HOT async_task *async__runner(async_task *t) {
    return ASYNC__OWNER(t) == ASYNC__OWN_TASK ? t->q.runner : t;
}

ASYNC__HOT void async__push_ready(async_loop *loop, async_task *t) { async__ready_push(loop, t); }

ASYNC__HOT void async__wake(async_task *t) { async__push_ready(async__loop_of(t), t); }

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

#if ASYNC_CONFIG_TIMER_HEAP || ASYNC_CONFIG_TIMER_FIFO
static bool async__timer_before(const async__timer *a, const async__timer *b) {
    int32_t d = (int32_t)(a->deadline - b->deadline);
    return d < 0 || (d == 0 && (int32_t)(a->seq - b->seq) < 0);
}
#endif

#if ASYNC_CONFIG_TIMER_HEAP
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
#else
/* The timers in deadline order (the earliest first, where the heap has its top): a set moves its entry up
 * from the end, past the later deadlines only, so that equal ones stay in the order they were set (no
 * sequence number needed); a removal closes the gap. O(n) each, and less code than the heap, for a
 * handful of timers. */
static void async__timer_sift(async_loop *loop, uint32_t i) {
    async__timer *a = loop->timers, tm = a[i];
    for (; i > 0 && (int32_t)(tm.deadline - a[i - 1].deadline) < 0; i--) {
        a[i] = a[i - 1];
        a[i].task->q.slot = i;
    }
    a[i] = tm;
    tm.task->q.slot = i;
}
#endif

#if ASYNC_CONFIG_TIMER_FIFO
/* The FIFO lane: a slot with this bit is a position in loop->fifo, not in the heap. */
#define ASYNC__FIFO_SLOT ((size_t)1 << (sizeof(size_t) * 8 - 1))

static async__timer *async__fifo_at(const async_loop *loop, uint32_t k) {
    return &loop->fifo[(loop->fifo_head + k) & (loop->fifo_cap - 1)];
}

/* Drops cancelled entries at the head, so that the head is a live timer or the lane is empty. */
static void async__fifo_trim(async_loop *loop) {
    while (loop->fifo_count && !loop->fifo[loop->fifo_head].task) {
        loop->fifo_head = (loop->fifo_head + 1) & (loop->fifo_cap - 1);
        loop->fifo_count--;
    }
}

/* Appends a timer whose deadline is not before the lane's last; false if it does not fit (heap then). */
static bool async__fifo_add(async_loop *loop, async__timer tm) {
    uint32_t i;
    if (loop->fifo_count) {
        const async__timer *last = async__fifo_at(loop, loop->fifo_count - 1);
        if ((int32_t)(tm.deadline - last->deadline) < 0) return false;
    }
    if (loop->fifo_count == loop->fifo_cap) {
        uint32_t cap = loop->fifo_cap ? loop->fifo_cap * 2 : 64, k;
        async__timer *p;
        if (!loop->realloc_fn || cap < loop->fifo_cap) return false;
        p = (async__timer *)loop->realloc_fn(loop->alloc_ctx, loop->fifo, cap * sizeof *p);
        if (!p) return false;
        /* unwrap the ring into the new space: the part before the head moves after the old end */
        for (k = 0; k < loop->fifo_head; k++) p[loop->fifo_cap + k] = p[k];
        loop->fifo = p;
        loop->fifo_cap = cap;
        for (k = 0; k < loop->fifo_count; k++) {
            async__timer *e = &p[loop->fifo_head + k];
            if (e->task) e->task->q.slot = ASYNC__FIFO_SLOT | (loop->fifo_head + k);
        }
    }
    i = (loop->fifo_head + loop->fifo_count) & (loop->fifo_cap - 1);
    loop->fifo[i] = tm;
    tm.task->q.slot = ASYNC__FIFO_SLOT | i;
    loop->fifo_count++;
    loop->fifo_live++;
    return true;
}
#endif

static int async__timer_add(async_loop *loop, async_task *t, async_ms deadline) {
    async__timer tm;
    tm.deadline = deadline;
#if ASYNC_CONFIG_TIMER_HEAP
    tm.seq = loop->timer_seq++;
#else
    tm.seq = 0; /* the array keeps the order of equal deadlines by itself */
#endif
    tm.task = t;
#if ASYNC_CONFIG_TIMER_FIFO
    /* the lane from the moment the inline slots are not enough: small loops never allocate */
    if ((loop->fifo_count || loop->ntimers >= ASYNC_CONFIG_INLINE_TIMERS) && async__fifo_add(loop, tm)) return 0;
#endif
    if (loop->ntimers == loop->timer_cap) {
        uint32_t cap = loop->timer_cap * 2;
        async__timer *p;
        if (!ASYNC_CONFIG_TIMER_GROWTH || !loop->realloc_fn || cap < loop->timer_cap ||
            (size_t)cap * sizeof *p / sizeof *p != cap)
            return ASYNC_ENOMEM;
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
    loop->timers[loop->ntimers++] = tm;
    async__timer_sift(loop, loop->ntimers - 1);
    return 0;
}

static void async__timer_remove(async_loop *loop, uint32_t i) {
    loop->ntimers--;
#if ASYNC_CONFIG_TIMER_HEAP
    if (i != loop->ntimers) {
        loop->timers[i] = loop->timers[loop->ntimers];
        async__timer_sift(loop, i);
    }
#else
    for (; i < loop->ntimers; i++) {
        loop->timers[i] = loop->timers[i + 1];
        loop->timers[i].task->q.slot = i;
    }
#endif
}

/* The earliest timer (heap top or lane head), or NULL. */
ASYNC__HOT const async__timer *async__timer_first(const async_loop *loop) {
    const async__timer *h = loop->ntimers ? &loop->timers[0] : NULL;
#if ASYNC_CONFIG_TIMER_FIFO
    if (loop->fifo_count) {
        const async__timer *f = &loop->fifo[loop->fifo_head];
        if (!h || async__timer_before(f, h)) return f;
    }
#endif
    return h;
}

/* Removes a sleeping task's timer (cancellation, or firing). */
static void async__timer_cancel(async_loop *loop, async_task *t) {
#if ASYNC_CONFIG_TIMER_FIFO
    if (t->q.slot & ASYNC__FIFO_SLOT) {
        loop->fifo[t->q.slot & ~ASYNC__FIFO_SLOT].task = NULL;
        loop->fifo_live--;
        async__fifo_trim(loop);
        return;
    }
#endif
    async__timer_remove(loop, (uint32_t)t->q.slot);
}

/* ---- tasks ---- */

static void async__unretrieved_remove(async_loop *loop, async_task *t) {
#if ASYNC_CONFIG_UNRETRIEVED
    async_task **pp = &loop->unretrieved;
    while (*pp && *pp != t) pp = &(*pp)->q.next;
    if (*pp) *pp = t->q.next;
    t->q.next = NULL;
#else
    (void)loop;
    (void)t; /* no list: nothing to leave */
#endif
}

/* Marks t's error as retrieved (it may sit in the loop's unretrieved list). */
static void async__retrieve(async_task *t) {
    if ((t->flags & (ASYNC__F_RAISE | ASYNC__F_SEEN)) == ASYNC__F_RAISE) {
        if (ASYNC__OWNER(t) == ASYNC__OWN_LOOP && t->state == ASYNC__S_DONE)
            async__unretrieved_remove((async_loop *)async__owner(t), t);
        t->flags |= ASYNC__F_SEEN;
    }
}

static bool async__live(const async_task *t) {
    if (t->state != ASYNC__S_INIT && t->state != ASYNC__S_DONE) return true;
    /* a finished child stays linked in its group until the group is idle */
    return t->state == ASYNC__S_DONE && ASYNC__OWNER(t) == ASYNC__OWN_GROUP && /* done: no leaf tag */
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
        async__unretrieved_remove((async_loop *)async__owner(t), t); /* reused: its error is dropped */
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

ASYNC_API async_task *async__call(async_fn fn, size_t size, const void *init) {
    /* init: the target frame's address in a union the size of the header, then the fields */
    async_task *t = (async_task *)*(void *const *)init;
    if (!t) return NULL;
    if (!async_task_init(t, fn)) return t; /* still running: left alone; its await or spawn says EBUSY */
    memcpy((char *)t + sizeof *t, (const char *)init + sizeof *t, size - sizeof *t);
    return t;
}

ASYNC_API bool async_task_done(const async_task *t) { return t && t->state == ASYNC__S_DONE; }

ASYNC_API int async_task_code(async_task *t) {
    if (!t) return ASYNC__MISUSE(ASYNC_EINVAL, "async_task_code: !t");
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
    if (!loop || !t || !t->fn) return ASYNC__MISUSE(ASYNC_EINVAL, "async_spawn: !loop || !t || !t->fn");
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

static void async__group_cancel_all(async_group *g, const async_task *except) {
    async_task *c;
    for (c = g->children; c; c = c->u.sibling)
        if (c != except && c->state != ASYNC__S_DONE) async_cancel(c);
}

static void async__group_cancel_all(async_group *g, const async_task *except);
static void async__group_child_end(async_group *g, async_task *child);
static void async__group_child_end_timed(async_group *g, async_task *child);

/* What the loop's completion of a task calls in the group code. The loop reaches it through the pointer
 * that async__group_begin sets, so that a program that never starts a group does not link the group code
 * nor the cancellation it uses. */
struct async__group_ops {
    void (*cancel)(async_group *g, const async_task *except);
    void (*child_end)(async_group *g, async_task *child);
};
static const struct async__group_ops async__group_code = {async__group_cancel_all, async__group_child_end};
static const struct async__group_ops async__group_code_timed = {async__group_cancel_all, async__group_child_end_timed};

/* Prepares g for a new set of children owned by t. */
static int async__group_begin(async_task *t, async_group *g, int mode) {
    if (g->running) return ASYNC__MISUSE(ASYNC_EBUSY, "AWAIT_GATHER/ASYNC_SPAWN: g->running");
    g->waiters = NULL;
    g->children = g->last_child = NULL;
    g->loop = async__loop_of(t);
    if (g->loop && !g->loop->groups) g->loop->groups = &async__group_code;
    g->parent = t;
    g->error = NULL;
    g->count = 0;
    g->mode = (uint8_t)mode;
    g->flags = 0;
    return g->loop ? 0 : ASYNC_EINVAL;
}

ASYNC__HOT int async__group_add(async_group *g, async_task *child) {
    if (!child || !child->fn) return ASYNC__MISUSE(ASYNC_EINVAL, "AWAIT_GATHER/ASYNC_SPAWN: !child || !child->fn");
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

/* A child has ended and was counted out: the group's waiters wake if asked to, or once it is idle. */
static void async__group_child_left(async_group *g, bool wake) {
    if (g->running == 0) {
        async__group_unlink(g);
        wake = true;
    }
    if (wake) async__wl_wake_all(&g->waiters);
}

static void async__group_child_end(async_group *g, async_task *child) {
    bool wake = (g->flags & ASYNC__G_CHILD_WAITERS) != 0;
    g->running--;
    /* the first error is kept: a task group's and a generator's not a cancellation (gather's is); a
     * settled gather and a shield keep none */
    if ((child->flags & ASYNC__F_RAISE) && !g->error && g->mode != ASYNC_GROUP_GATHER_SETTLED &&
        g->mode != ASYNC_GROUP_SHIELD && (g->mode == ASYNC_GROUP_GATHER || child->r.error->code != ASYNC_ECANCELED)) {
        g->error = child->r.error;
        if (g->mode == ASYNC_GROUP_GATHER) wake = true; /* it propagates at once */
        if (g->mode == ASYNC_GROUP_TASKS) async__group_cancel_all(g, child);
    }
    async__group_child_left(g, wake);
}

/* async__group_child_end for loops that have run a wait_for (async__timeout_start sets it): a timeout
 * group's work and deadline end each other. */
static void async__group_child_end_timed(async_group *g, async_task *child) {
    async_task *timer = &((async_timeout *)(void *)g)->timer;
    if (g->mode != ASYNC_GROUP_TIMEOUT) {
        async__group_child_end(g, child);
        return;
    }
    g->running--;
    if (child == timer) {
        if (!(child->flags & ASYNC__F_RAISE)) {
            g->flags |= ASYNC__G_TIMED_OUT;
            async__group_cancel_all(g, timer);
        } else if (child->r.error->code != ASYNC_ECANCELED) {
            /* the deadline could not be set (its sleep failed: ASYNC_ENOMEM): rather than let the work run
             * unbounded and lose the error, cancel the work and raise the error */
            g->error = child->r.error;
            async__group_cancel_all(g, timer);
        }
    } else if (timer->state != ASYNC__S_DONE) {
        async_cancel(timer);
    }
    async__group_child_left(g, (g->flags & ASYNC__G_CHILD_WAITERS) != 0);
}

static void async__group_cancel_children(async_group *g, const async_task *except) {
    g->loop->groups->cancel(g, except);
}

static void async__group_child_done(async_group *g, async_task *child) { g->loop->groups->child_end(g, child); }

ASYNC_API int async_group_spawn(async_task *t, async_group *g, async_task *child) {
    int rc;
    if (!t || !g || !child) return ASYNC__MISUSE(ASYNC_EINVAL, "async_group_spawn: !t || !g || !child");
    if (!g->running) {
        if (!child->fn) return ASYNC__MISUSE(ASYNC_EINVAL, "async_group_spawn: !child->fn");
        if (child->state != ASYNC__S_INIT) return child->state == ASYNC__S_DONE ? ASYNC_EINVAL : ASYNC_EBUSY;
        rc = async__group_begin(t, g, ASYNC_GROUP_TASKS);
        if (rc) return rc;
    } else if (g->parent != t || g->mode != ASYNC_GROUP_TASKS) {
        return ASYNC__MISUSE(ASYNC_EBUSY, "async_group_spawn: ASYNC_EBUSY");
    }
    return async__group_add(g, child);
}

ASYNC_API uint32_t async_group_running(const async_group *g) { return g ? g->running : 0; }
ASYNC_API const async_error *async_group_error(const async_group *g) { return g ? g->error : NULL; }

ASYNC_API size_t async_group_errors(const async_group *g, const async_error **errors, size_t max) {
    const async_task *c;
    size_t n = 0;
    if (!g) return 0;
    for (c = g->children; c; c = c->u.sibling)
        if (c->state == ASYNC__S_DONE && (c->flags & ASYNC__F_RAISE) && c->r.error->code != ASYNC_ECANCELED) {
            if (errors && n < max) errors[n] = c->r.error;
            n++;
        }
    return n;
}

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
            t->lc = ASYNC__LC_RETURN; /* its next step ends it again (ASYNC_END's case): no check elsewhere */
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
    t->state = ASYNC__S_DONE; /* an inline coroutine's is ENDED until its parent reads it (async__run) */
    {
        async_loop *loop = async__loop_of(t);
        if (ASYNC_CONFIG_HOOKS && loop && loop->hooks) {
            if ((t->flags & ASYNC__F_RAISE) && loop->hooks->error) loop->hooks->error(loop, t, t->r.error);
            if (loop->hooks && loop->hooks->task_done) loop->hooks->task_done(loop, t);
        }
    }
    switch (ASYNC__OWNER(t)) {
    case ASYNC__OWN_GROUP:
        t->flags |= ASYNC__F_SEEN; /* the group retrieves its children's errors */
        async__group_child_done((async_group *)t->owner, t); /* ending: no leaf tag */
        break;
    case ASYNC__OWN_LOOP:
        if (t->u.waiters) {
            t->flags |= ASYNC__F_SEEN;
            async__wl_wake_all(&t->u.waiters);
        } else if (ASYNC_CONFIG_UNRETRIEVED && (t->flags & ASYNC__F_RAISE) && t->r.error->code != ASYNC_ECANCELED) {
            /* a cancelled task is not an error anyone missed: asyncio does not log it either */
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
    static const async_error in_switch = {ASYNC_EFAULT, ASYNC__MSG("the coroutine cannot resume at its AWAIT: an "
                                          "AWAIT inside a switch statement of your own (use if/else there)")};
    /* a jump to a catch or finally label that the try does not have goes on to the next part */
    if (t->lc >= 0x4000 && t->lc < 0xC000 && (t->lc & 0x3FFF) != 0) {
        t->lc = (uint16_t)(t->lc + 0x4000);
        return true;
    }
    /* a line of the coroutine that its switch does not reach: the AWAIT's case label belongs to a switch
     * of the user's (a resume point the core never sets otherwise) */
    /* (without messages the two records say the same) */
    async__raise(t, (ASYNC_CONFIG_ERROR_MESSAGES && t->lc > 0 && t->lc < 0x3F00) ? &in_switch
                                                                                 : async__err(ASYNC_EFAULT));
    return false;
}

ASYNC_API void async__raise(async_task *t, const async_error *e) {
    t->r.error = e ? e : async__err(ASYNC_EINVAL);
    t->flags = (uint8_t)((t->flags | ASYNC__F_RAISE) & ~ASYNC__F_RETURN);
}

static int async__raise_code(async_task *t, int code) {
    async__raise(t, async__err(code));
    return ASYNC__RAISE;
}

ASYNC_API void async__set_return(async_task *t, intptr_t value) {
    t->r.value = value;
    t->flags = (uint8_t)((t->flags | ASYNC__F_RETURN) & ~ASYNC__F_RAISE);
}

ASYNC_API async_status async__return(async_task *t, intptr_t value) {
    async__set_return(t, value);
    return async__complete(t);
}

ASYNC_API void async__caught_enter(async_task *t) { t->flags &= (uint8_t)~ASYNC__F_RAISE; }

ASYNC_API int async__except(async_task *t, int n, ...) {
    va_list codes;
    int i, match = 0;
    va_start(codes, n);
    for (i = 0; i < n; i++) {
        int code = va_arg(codes, int);
        if (code == t->r.error->code || (code == ASYNC__ANY_BUT_CANCEL && t->r.error->code != ASYNC_ECANCELED))
            match = 1;
    }
    va_end(codes);
    if (match) async__caught_enter(t);
    return match;
}

/* A break or continue out of a try's block is kept in r while the finally block runs: r holds no pending
 * error or return then (neither flag is set), and these two values are never an error record's address
 * (records are aligned). A break or continue in the finally block itself (how + 8) drops what was
 * pending, as Python's does. */
#define ASYNC__R_BREAK ((intptr_t)1)
#define ASYNC__R_CONTINUE ((intptr_t)2)

ASYNC_API void async__leaving(async_task *t, int how) {
    if (how & 8) t->flags &= (uint8_t) ~(ASYNC__F_RAISE | ASYNC__F_RETURN);
    t->r.value = (how & 2) ? ASYNC__R_CONTINUE : ASYNC__R_BREAK;
}

ASYNC_API async_status async__stray_leave(async_task *t) {
    static const async_error stray = {ASYNC_EINVAL, ASYNC__MSG("break or continue in a coroutine, outside any loop")};
    async__raise(t, &stray);
    return async__complete(t);
}

ASYNC_API int async__end_try(async_task *t) {
    if (t->flags & ASYNC__F_RAISE) return ASYNC__RAISE;
    if (t->flags & ASYNC__F_RETURN) return ASYNC__RETURNING;
    if (t->r.value == ASYNC__R_BREAK || t->r.value == ASYNC__R_CONTINUE) {
        int how = t->r.value == ASYNC__R_BREAK ? ASYNC__BREAKING : ASYNC__CONTINUING;
        t->r.value = 0;
        return how;
    }
    return ASYNC__GO;
}

/* Delivers a requested cancellation to the coroutine t run by `runner`. */
static int async__deliver_cancel(async_task *t, async_task *runner) {
    runner->flags &= (uint8_t)~ASYNC__F_CANCEL;
    async__raise(t, async__err(ASYNC_ECANCELED));
    return ASYNC__RAISE;
}

/* A scheduled task r whose coroutine awaits another inline (directly or through others) keeps the
 * innermost one, the leaf, in r->r (its own r waits in its first inline child's u.saved meanwhile: no one
 * reads a task's r while it awaits inline), and each inline coroutine knows r (q.runner). So a step goes
 * straight to the leaf, and a coroutine that finishes hands the step back to its parent, which reads the
 * outcome at its await: O(1) per step and per level, and no C recursion, however deep the chain (the
 * stackless form of symmetric transfer). */
static void async__leaf_push(async_task *r, async_task *parent, async_task *x) {
    if (parent == r) {
        x->u.saved = r->r.value;
        r->owner = (void *)((uintptr_t)r->owner | ASYNC__LEAF_TAG);
    }
    r->r.leaf = x;
}

/* x, r's leaf, has finished: its parent becomes the leaf (or r runs its own coroutine again). */
static void async__leaf_pop(async_task *r, async_task *x) {
    async_task *parent = (async_task *)async__owner(x);
    x->state = ASYNC__S_ENDED; /* live until its parent's await takes the outcome (async__await_check) */
    if (parent == r) {
        r->r.value = x->u.saved;
        r->owner = async__owner(r);
    } else {
        r->r.leaf = parent;
    }
}

/* Steps the scheduled task r until it suspends, or until `top` (r, or a coroutine r runs inline)
 * finishes: the leaf first, then each parent as its inline children finish (ASYNC__AGAIN: the coroutine
 * moved to another resume point or started an inline one, which is the leaf now). An inline coroutine
 * that finishes stays live (ASYNC__S_ENDED) until its parent's await takes the outcome: the await's
 * operand, evaluated again there, may be the call that made it (AWAIT(t, child(&f->c, ...))), which
 * leaves a live frame alone but would start a finished one again. */
ASYNC__DRIVER async_status async__run(async_task *r, async_task *top) {
    for (;;) {
        async_task *t = ASYNC__HAS_LEAF(r) ? r->r.leaf : r;
        async_status st = t->fn(t);
        if (st == ASYNC__AGAIN) continue;
        if (st == ASYNC_PENDING || t == r) return st;
        async__leaf_pop(r, t); /* its parent is the leaf now (or r's own coroutine runs again) */
        if (t == top) return ASYNC_DONE;
    }
}

ASYNC__HOT bool async__waiting(const async_task *runner) {
    return runner->state >= ASYNC__S_SLEEPING && runner->state <= ASYNC__S_WAIT_GROUP;
}

/* The outcome of a finished task x, raised into t if it failed. */
static int async__outcome(async_task *t, async_task *x) {
    if (!(x->flags & ASYNC__F_RAISE)) return ASYNC__GO;
    async__retrieve(x);
    async__raise(t, x->r.error);
    return ASYNC__RAISE;
}

/* True if x is t, or t runs inside x: x awaits t inline, directly or through other coroutines, or owns
 * (through a group) a coroutine that does. Awaiting such an x would wait for itself: x cannot end while t
 * runs in it or in its frame. */
static bool async__runs_inside(const async_task *t, const async_task *x) {
    for (;;) {
        if (t == x) return true;
        switch (ASYNC__OWNER(t)) {
        case ASYNC__OWN_TASK: t = (const async_task *)async__owner(t); break;
        case ASYNC__OWN_GROUP: t = ((const async_group *)async__owner(t))->parent; break;
        default: return false;
        }
    }
}

ASYNC_API int async__await_start(async_task *t, async_task *x) {
    async_task *runner = async__runner(t);
    if (!x || !x->fn || (x->state != ASYNC__S_INIT && x->state != ASYNC__S_DONE && async__runs_inside(t, x))) {
        /* NULL, no coroutine, or the task itself (or one it runs in) */
        async__raise(t, async__err(ASYNC__MISUSE(ASYNC_EINVAL, "AWAIT: x is NULL, has no coroutine, or is this task")));
        return ASYNC__RAISE;
    }
    if (x->state == ASYNC__S_INIT) { /* a coroutine call: x runs inline, as part of this task */
        async_loop *loop = async__loop_of(runner);
        x->owner = t;
        x->q.runner = runner;
        x->flags = (uint8_t)((x->flags & ~ASYNC__F_OWNER) | ASYNC__OWN_TASK);
        if (ASYNC_CONFIG_HOOKS && loop && loop->hooks && loop->hooks->inline_start) loop->hooks->inline_start(loop, t, x);
        x->state = ASYNC__S_RUNNING;
        async__leaf_push(runner, t, x); /* the next step of this task is x's */
        return ASYNC__GO;
    }
    if (x->state == ASYNC__S_DONE) return ASYNC__GO;
    if (ASYNC__OWNER(x) == ASYNC__OWN_TASK) { /* x already runs inline in some coroutine */
        async__raise(t, async__err(ASYNC_EBUSY));
        return ASYNC__RAISE;
    }
    if (runner->flags & ASYNC__F_CANCEL) return async__deliver_cancel(t, runner);
    if (ASYNC__OWNER(x) == ASYNC__OWN_GROUP) { /* children of a group share its wait list */
        async_group *g = (async_group *)async__owner(x);
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
    if (ASYNC__OWNER(x) == ASYNC__OWN_TASK && async__owner(x) == t && x->state != ASYNC__S_DONE) {
        /* x runs inline in t. A step of the task goes to x and comes back here once x has ended; a
         * coroutine stepped by hand (its function called directly, without a loop) comes here first */
        if (x->state != ASYNC__S_ENDED && async__run(runner, x) == ASYNC_PENDING) return ASYNC__WAIT;
        x->state = ASYNC__S_DONE;
        return async__outcome(t, x);
    }
    if (async__waiting(runner)) return ASYNC__WAIT;
    if (x->state == ASYNC__S_DONE) {
        if (runner->flags & ASYNC__F_CANCEL) return async__deliver_cancel(t, runner);
        return async__outcome(t, x);
    }
    if (runner->flags & ASYNC__F_CANCEL) {
        if (ASYNC__OWNER(x) != ASYNC__OWN_GROUP) return async__deliver_cancel(t, runner);
        /* a group's child awaited from outside its group: as for any awaited task (asyncio), the
         * cancellation passes on to x and the awaiter waits for x to end (woken at each sibling's end
         * meanwhile, it asks again only if x has taken the last request) */
        if (!(x->flags & ASYNC__F_CANCEL)) async_cancel(x);
        runner->state = ASYNC__S_WAIT;
        async__wl_push(&((async_group *)async__owner(x))->waiters, runner);
        return ASYNC__WAIT;
    }
    return async__await_start(t, x); /* woken for a sibling's end: wait again */
}

ASYNC_API int async__sleep_start(async_task *t, int64_t ms) {
    async_task *runner = async__runner(t);
    async_loop *loop = async__loop_of(runner);
    int rc;
    if (!loop) return async__raise_code(t, ASYNC__MISUSE(ASYNC_EINVAL, "AWAIT_SLEEP: ASYNC_EINVAL"));
    /* the 32-bit clock cannot hold a later deadline: refuse, never cut it short */
    if (ms > ASYNC_MS_MAX)
        return async__raise_code(t, ASYNC__MISUSE(ASYNC_ERANGE, "AWAIT_SLEEP: more than ASYNC_MS_MAX ms"));
    if (runner->flags & ASYNC__F_CANCEL) return async__deliver_cancel(t, runner);
    if (ms <= 0) {
        async__push_ready(loop, runner);
        return ASYNC__WAIT;
    }
    rc = async__timer_add(loop, runner, loop->now + (async_ms)ms);
    if (rc) return async__raise_code(t, rc);
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
    if (!f) return ASYNC__MISUSE(ASYNC_EINVAL, "async_future_init: !f");
    if (f->waiters) return ASYNC__MISUSE(ASYNC_EBUSY, "async_future_init: f->waiters");
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
    if (!f) return ASYNC__MISUSE(ASYNC_EINVAL, "async_future_set_value: !f");
    if (f->state) return ASYNC__MISUSE(ASYNC_EBUSY, "async_future_set_value: f->state");
    f->r.value = value;
    return async__future_complete(f, 1);
}

ASYNC_API int async_future_set_error(async_future *f, const async_error *error) {
    if (!f || !error) return ASYNC__MISUSE(ASYNC_EINVAL, "async_future_set_error: !f || !error");
    if (f->state) return ASYNC__MISUSE(ASYNC_EBUSY, "async_future_set_error: f->state");
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
        async__raise(t, async__err(ASYNC__MISUSE(ASYNC_EINVAL, "AWAIT_FUTURE: ASYNC_EINVAL")));
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

static int async__group_start_checked(async_task *t, async_group *g, int mode) {
    async_task *runner = async__runner(t);
    int rc;
    if (!g) return ASYNC__MISUSE(ASYNC_EINVAL, "AWAIT_GATHER: !g");
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
            async__group_cancel_all(g, NULL);
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
    if (n && (!first || stride < sizeof *first))
        return async__raise_code(t,
            ASYNC__MISUSE(ASYNC_EINVAL, "AWAIT_GATHER_ARRAY: n && (!first || stride < sizeof *first)"));
    for (i = 0; i < n; i++) {
        rc = async__group_add(g, (async_task *)(void *)((char *)first + i * stride));
        if (rc) {
            async__group_cancel_all(g, NULL);
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
    if (!g) return async__raise_code(t, ASYNC__MISUSE(ASYNC_EINVAL, "AWAIT_GROUP: !g"));
    if (async__group_settled(g)) return ASYNC__GO;
    if (runner->flags & ASYNC__F_CANCEL) {
        if (g->mode == ASYNC_GROUP_SHIELD) return async__deliver_cancel(t, runner);
        async__group_cancel_all(g, NULL); /* cancelled before waiting: pass it on, then wait */
    }
    runner->state = ASYNC__S_WAIT_GROUP;
    async__wl_push(&g->waiters, runner);
    return ASYNC__WAIT;
}

/* The check of gathers and task groups: their first error, if they kept one (a settled gather keeps
 * none). async__group_check's cases for the other modes, kept apart so that a program with no wait_for
 * and no shield does not link them. */
ASYNC_API int async__gather_check(async_task *t, async_group *g) {
    async_task *runner = async__runner(t);
    if (!g) return async__raise_code(t, ASYNC__MISUSE(ASYNC_EINVAL, "AWAIT_GATHER/AWAIT_GROUP: !g"));
    if (async__waiting(runner)) return ASYNC__WAIT;
    if (!async__group_settled(g)) {
        runner->state = ASYNC__S_WAIT_GROUP;
        async__wl_push(&g->waiters, runner);
        return ASYNC__WAIT;
    }
    if (runner->flags & ASYNC__F_CANCEL) return async__deliver_cancel(t, runner);
    if (g->error) {
        async__raise(t, g->error);
        return ASYNC__RAISE;
    }
    return ASYNC__GO;
}

ASYNC_API int async__group_check(async_task *t, async_group *g) {
    async_task *runner = async__runner(t);
    if (!g) return async__raise_code(t, ASYNC__MISUSE(ASYNC_EINVAL, "AWAIT_GATHER/AWAIT_GROUP: !g"));
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
            if (g->error) { /* the deadline's own failure (see async__group_child_done) */
                async__raise(t, g->error);
                return ASYNC__RAISE;
            }
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

ASYNC_API int async__timeout_start(async_task *t, async_timeout *tmo, int64_t ms, async_task *child) {
    int rc;
    if (!tmo) return async__raise_code(t, ASYNC__MISUSE(ASYNC_EINVAL, "AWAIT_TIMEOUT: !tmo"));
    if (ms > ASYNC_MS_MAX) {
        /* the child never starts */
        return async__raise_code(t, ASYNC__MISUSE(ASYNC_ERANGE, "AWAIT_TIMEOUT: more than ASYNC_MS_MAX ms"));
    }
    rc = async__group_start_checked(t, &tmo->group, ASYNC_GROUP_TIMEOUT);
    if (rc == ASYNC_ECANCELED) return async__deliver_cancel(t, async__runner(t));
    if (rc) return async__raise_code(t, rc);
    tmo->group.loop->groups = &async__group_code_timed; /* its children end each other */
    if (!async_task_init(&tmo->timer, async__timeout_run))
        return async__raise_code(t,
            ASYNC__MISUSE(ASYNC_EBUSY, "AWAIT_TIMEOUT: !async_task_init(&tmo->timer, async__timeout_run)"));
    tmo->ms = (int32_t)(ms < 0 ? 0 : ms);
    rc = async__group_add(&tmo->group, child);
    if (rc) return async__raise_code(t, rc);
    rc = async__group_add(&tmo->group, &tmo->timer);
    if (rc) {
        async__group_cancel_all(&tmo->group, NULL);
        return async__raise_code(t, rc);
    }
    return async__group_wait(t, &tmo->group);
}

/* ---- timeout blocks: the deadline is an entry of the timer heap whose firing cancels the task ---- */

#define ASYNC__D_RUNNING 0x01u /* the block runs */
#define ASYNC__D_ARMED 0x02u   /* the timer entry is in the heap */
#define ASYNC__D_EXPIRED 0x04u /* the deadline passed */
#define ASYNC__D_FIRED 0x08u   /* this deadline cancelled the task (none was pending then) */

static async_deadline *async__deadline_of(async_task *timer) {
    return (async_deadline *)(void *)((char *)timer - offsetof(async_deadline, timer));
}

/* The deadline passed: its entry's fn (set by async__deadline_start, so that a program with no timeout
 * block does not link it or the cancellation it calls). */
static async_status async__deadline_expire(async_task *timer) {
    async_deadline *d = async__deadline_of(timer);
    d->state = (uint8_t)((d->state & ~ASYNC__D_ARMED) | ASYNC__D_EXPIRED);
    if (!(d->target->flags & ASYNC__F_CANCEL)) { /* an earlier, outer deadline's cancel is left to it */
        d->state |= ASYNC__D_FIRED;
        async_cancel(d->target);
    }
    return ASYNC_DONE;
}

static void async__deadline_fire(async_task *timer) { (void)timer->fn(timer); }

/* Puts the deadline's entry in the heap for d->when; a deadline already due fires at once. */
static int async__deadline_arm(async_deadline *d) {
    int rc;
    if ((int32_t)(d->when - d->loop->now) <= 0) {
        async__deadline_fire(&d->timer);
        return 0;
    }
    rc = async__timer_add(d->loop, &d->timer, d->when);
    if (!rc) d->state |= ASYNC__D_ARMED;
    return rc;
}

ASYNC_API int async__deadline_start(async_task *t, async_deadline *d, int at, int64_t ms) {
    async_task *runner = async__runner(t);
    async_loop *loop = async__loop_of(runner);
    int rc;
    if (!d || !loop) return async__raise_code(t, ASYNC__MISUSE(ASYNC_EINVAL, "ASYNC_TIMEOUT: NULL deadline"));
    if (d->state & ASYNC__D_RUNNING)
        return async__raise_code(t, ASYNC__MISUSE(ASYNC_EBUSY, "ASYNC_TIMEOUT: the deadline's block runs"));
    if (!at && ms > ASYNC_MS_MAX)
        return async__raise_code(t, ASYNC__MISUSE(ASYNC_ERANGE, "ASYNC_TIMEOUT: more than ASYNC_MS_MAX ms"));
    memset(d, 0, sizeof *d);
    d->timer.state = ASYNC__S_DEADLINE;
    d->timer.fn = async__deadline_expire;
    d->timer.owner = loop;
    d->timer.flags = ASYNC__OWN_LOOP;
    d->target = runner;
    d->loop = loop;
    d->state = ASYNC__D_RUNNING;
    if (!at && ms < 0) return ASYNC__GO; /* no deadline for now */
    d->when = at ? (async_ms)ms : loop->now + (async_ms)ms;
    rc = async__deadline_arm(d);
    if (rc) {
        d->state = 0;
        return async__raise_code(t, rc);
    }
    return ASYNC__GO;
}

ASYNC_API void async__deadline_end(async_task *t, async_deadline *d) {
    async_task *runner = async__runner(t);
    if (!d || !(d->state & ASYNC__D_RUNNING)) return;
    if (d->state & ASYNC__D_ARMED) async__timer_cancel(d->loop, &d->timer);
    if (d->state & ASYNC__D_FIRED) {
        /* the deadline's cancellation becomes the timeout: delivered and on its way out, or still pending
         * (the block ended without awaiting again), or swallowed by the block (the deadline wins) */
        if (!(t->flags & ASYNC__F_RAISE) || t->r.error->code == ASYNC_ECANCELED) {
            runner->flags &= (uint8_t)~ASYNC__F_CANCEL;
            async__raise(t, async__err(ASYNC_ETIMEDOUT));
        }
    }
    d->state = (uint8_t)(d->state & ASYNC__D_EXPIRED); /* not running; expired stays readable */
}

ASYNC_API int async_deadline_reschedule(async_deadline *d, int64_t ms) {
    if (!d || !(d->state & ASYNC__D_RUNNING))
        return ASYNC__MISUSE(ASYNC_EINVAL, "async_deadline_reschedule: the block does not run");
    if (ms > ASYNC_MS_MAX) return ASYNC__MISUSE(ASYNC_ERANGE, "async_deadline_reschedule: more than ASYNC_MS_MAX ms");
    if (d->state & ASYNC__D_EXPIRED) return ASYNC_ESHUTDOWN;
    if (d->state & ASYNC__D_ARMED) {
        async__timer_cancel(d->loop, &d->timer);
        d->state &= (uint8_t)~ASYNC__D_ARMED;
    }
    if (ms < 0) return 0;
    d->when = d->loop->now + (async_ms)ms;
    return async__deadline_arm(d);
}

ASYNC_API bool async_deadline_when(const async_deadline *d, async_ms *when) {
    if (!d || !(d->state & (ASYNC__D_ARMED | ASYNC__D_EXPIRED))) return false;
    if (when) *when = d->when;
    return true;
}

ASYNC_API bool async_deadline_expired(const async_deadline *d) { return d && (d->state & ASYNC__D_EXPIRED); }

/* ---- wait sets: asyncio.wait, as_completed and gather over running tasks ----
 * A watch's node waits in the watched task's list of waiters (or its group's, for a group's child) as
 * an awaiting task would; when the task ends the node is woken and stepped like a task, and its step
 * tells the set, which completes its future for the waiting task once its condition holds. When the
 * await returns, watches still waiting leave their lists at once, so nothing is left behind. */

#define ASYNC__WAIT_KIND_AS_COMPLETED 1
#define ASYNC__WAIT_KIND_GATHER 2

static async_watch *async__watch_of(async_task *node) {
    return (async_watch *)(void *)((char *)node - offsetof(async_watch, node));
}

/* A watch's node ends: as a task's end, the loop's hooks hear of it (debug mode and the injection
 * census track every task that ran a step). */
static void async__watch_node_done(async_task *node) {
    async_loop *loop = (async_loop *)async__owner(node);
    node->state = ASYNC__S_DONE;
    if (ASYNC_CONFIG_HOOKS && loop && loop->hooks && loop->hooks->task_done) loop->hooks->task_done(loop, node);
}

static bool async__wait_met(const async_wait *ws) {
    if (ws->how == ASYNC__WAIT_KIND_AS_COMPLETED + 0x10) return ws->ndone > ws->nreturned;
    if (ws->ndone == ws->n) return true;
    if (ws->how == ASYNC_FIRST_COMPLETED) return ws->ndone > 0;
    return ws->how == ASYNC_FIRST_EXCEPTION && ws->failed;
}

/* Whether finished task x counts as a failure for ws: an error; for gather a cancellation too (it raises
 * ASYNC_ECANCELED, as asyncio's gather raises CancelledError), for wait's FIRST_EXCEPTION not. */
static bool async__watch_failed(const async_wait *ws, const async_task *x) {
    return (x->flags & ASYNC__F_RAISE) && (ws->waiting == 2 || x->r.error->code != ASYNC_ECANCELED);
}

static void async__watch_done(async_watch *w) {
    async_wait *ws = w->set;
    w->seq = ++ws->ndone;
    if (async__watch_failed(ws, w->target)) ws->failed = 1;
    if (async__wait_met(ws) && !ws->ready.state) async_future_set_value(&ws->ready, 1);
}

/* Puts the watch's node in the list that wakes it when its task ends: the task's own waiters, or its
 * group's (woken at each child's end: the node looks again). */
static void async__watch_arm(async_watch *w) {
    async_task *x = w->target;
    w->node.state = ASYNC__S_WAIT;
    if (ASYNC__OWNER(x) == ASYNC__OWN_GROUP) {
        async_group *g = (async_group *)async__owner(x);
        g->flags |= ASYNC__G_CHILD_WAITERS;
        async__wl_push(&g->waiters, &w->node);
    } else {
        async__wl_push(&x->u.waiters, &w->node);
    }
}

/* The node's step: its task has ended (or, for a group's child, some child has). It also answers
 * async_task_where's two questions, as ASYNC_BEGIN does. */
static async_status async__watch_step(async_task *node) {
    async_watch *w = async__watch_of(node);
    if (node->lc == ASYNC__LC_FILE || node->lc == ASYNC__LC_FUNCTION) {
        node->r.value = node->lc == ASYNC__LC_FILE ? (intptr_t)"async.h" : (intptr_t)"async_wait (a watch)";
        return ASYNC_PENDING;
    }
    if (!w->set) { /* detached while it waited in the ready queue */
        async__watch_node_done(node);
        return ASYNC_DONE;
    }
    if (w->target->state != ASYNC__S_DONE) {
        async__watch_arm(w);
        return ASYNC_PENDING;
    }
    async__watch_node_done(node);
    async__watch_done(w);
    return ASYNC_DONE;
}

/* Takes every watch out of the lists it waits in (its task still running); one already woken and not yet
 * stepped is told to do nothing. */
static void async__wait_detach(async_wait *ws) {
    uint16_t i;
    for (i = 0; i < ws->n; i++) {
        async_watch *w = &ws->slots[i];
        if (w->node.state == ASYNC__S_WAIT) {
            async__wl_remove(&w->node);
            async__watch_node_done(&w->node);
        }
        w->set = NULL;
    }
}

ASYNC_API int async__wait_start(async_task *t, async_wait *ws, async_watch *slots, size_t cap, int how, int kind,
                                async_task *const *tasks, size_t n) {
    async_task *runner = async__runner(t);
    async_loop *loop = async__loop_of(runner);
    size_t i;
    if (!ws || !loop || (unsigned)how > ASYNC_FIRST_EXCEPTION)
        return async__raise_code(t, ASYNC__MISUSE(ASYNC_EINVAL, "AWAIT_WAIT: NULL set or bad return_when"));
    if (ws->started) return async__raise_code(t, ASYNC__MISUSE(ASYNC_EBUSY, "AWAIT_WAIT: the set is in use"));
    if (n > cap || n > 0xFFFFu) return async__raise_code(t, ASYNC__MISUSE(ASYNC_ERANGE, "AWAIT_WAIT: more tasks than slots"));
    for (i = 0; i < n; i++) {
        async_task *x = tasks[i];
        if (!x || !x->fn || x->state == ASYNC__S_INIT || async__runs_inside(t, x))
            return async__raise_code(t, ASYNC__MISUSE(ASYNC_EINVAL, "AWAIT_WAIT: a task is NULL, not started or this one"));
        if (x->state != ASYNC__S_DONE && ASYNC__OWNER(x) == ASYNC__OWN_TASK)
            return async__raise_code(t, ASYNC__MISUSE(ASYNC_EBUSY, "AWAIT_WAIT: a task runs inline in a coroutine"));
    }
    if (runner->flags & ASYNC__F_CANCEL) return async__deliver_cancel(t, runner);
    memset(ws, 0, sizeof *ws);
    ws->slots = slots;
    ws->cap = (uint16_t)cap;
    ws->n = (uint16_t)n;
    ws->how = (uint8_t)(kind == ASYNC__WAIT_KIND_AS_COMPLETED ? ASYNC__WAIT_KIND_AS_COMPLETED + 0x10 : how);
    ws->started = 1;
    if (kind == ASYNC__WAIT_KIND_GATHER) ws->waiting = 2; /* raise the first failure */
    for (i = 0; i < n; i++) {
        async_watch *w = &slots[i];
        memset(w, 0, sizeof *w);
        w->target = tasks[i];
        w->set = ws;
        w->node.fn = async__watch_step;
        w->node.lc = ASYNC__LC_WATCH; /* what async_cancel knows it by, without pulling the wait sets in */
        w->node.owner = loop;
        w->node.flags = ASYNC__OWN_LOOP | ASYNC__F_SEEN; /* never reported */
        if (tasks[i]->state == ASYNC__S_DONE)
            async__watch_done(w); /* in argument order */
        else
            async__watch_arm(w);
    }
    if (async__wait_met(ws) && !ws->ready.state) async_future_set_value(&ws->ready, 1); /* no task at all */
    return async__future_start(t, &ws->ready);
}

ASYNC_API int async__wait_next(async_task *t, async_wait *ws) {
    if (!ws || !ws->started) return async__raise_code(t, ASYNC__MISUSE(ASYNC_EINVAL, "AWAIT_AS_COMPLETED: the set is not started"));
    async_future_init(&ws->ready);
    if (async__wait_met(ws) || ws->nreturned == ws->n) async_future_set_value(&ws->ready, 1);
    return async__future_start(t, &ws->ready);
}

ASYNC_API int async__wait_check(async_task *t, async_wait *ws, async_task **out) {
    int rc = async__future_check(t, &ws->ready);
    uint16_t i;
    if (rc == ASYNC__WAIT) return rc;
    if (rc == ASYNC__RAISE) { /* cancelled: the watched tasks go on, the watches go */
        async__wait_detach(ws);
        ws->started = 0;
        return rc;
    }
    if (ws->how == ASYNC__WAIT_KIND_AS_COMPLETED + 0x10) {
        async_task *next = NULL;
        if (ws->nreturned < ws->ndone) {
            for (i = 0; i < ws->n; i++)
                if (ws->slots[i].seq == ws->nreturned + 1) next = ws->slots[i].target;
            ws->nreturned++;
            if (ws->nreturned == ws->n) async__wait_detach(ws); /* the next call says the end */
        } else {
            ws->started = 0; /* all handed out: this call says so, and the set may start again */
        }
        if (out) *out = next;
        return ASYNC__GO;
    }
    async__wait_detach(ws);
    ws->started = 0;
    if (ws->waiting == 2 && ws->failed) { /* gather: the first failure, in the order they finished */
        const async_task *first = NULL;
        uint16_t best = 0;
        for (i = 0; i < ws->n; i++) {
            const async_watch *w = &ws->slots[i];
            if (w->seq && (!best || w->seq < best) && async__watch_failed(ws, w->target)) {
                first = w->target;
                best = w->seq;
            }
        }
        if (first) return async__outcome(t, (async_task *)first);
    }
    return ASYNC__GO;
}

/* ---- synchronisation: FIFO wait queues with grants ----
 * A waiter sits in an async_waitq linked through q.next, its last link tagged with the queue's address
 * (so a cancelled waiter finds its queue and leaves it). Releasing hands the resource to the first
 * waiter: it is popped, marked GRANTED and made ready; its check then takes the grant, or passes it on
 * if the task was cancelled meanwhile. */

/* While a task waits (never once it is done), the SEEN bit means "granted". */
#define ASYNC__F_GRANTED ASYNC__F_SEEN

ASYNC__HOT void async__wq_push(async_waitq *wq, async_task *w) {
    w->q.next = ASYNC__TAG(&wq->head);
    if (wq->tail)
        wq->tail->q.next = w;
    else
        wq->head = w;
    wq->tail = w;
    w->state = ASYNC__S_WAIT_Q;
}

ASYNC__HOT async_task *async__wq_pop(async_waitq *wq) {
    async_task *w = wq->head;
    if (!w) return NULL;
    if (ASYNC__IS_TAG(w->q.next))
        wq->head = wq->tail = NULL;
    else
        wq->head = w->q.next;
    w->q.next = NULL;
    return w;
}

static void async__wq_remove(async_task *w) {
    async_waitq *wq = (async_waitq *)(void *)async__wl_of(w);
    async_task *prev = NULL, *p = wq->head;
    while (p != w) {
        prev = p;
        p = p->q.next;
    }
    if (ASYNC__IS_TAG(w->q.next)) {
        wq->tail = prev;
        if (prev)
            prev->q.next = w->q.next;
        else
            wq->head = NULL;
    } else if (prev) {
        prev->q.next = w->q.next;
    } else {
        wq->head = w->q.next;
    }
    w->q.next = NULL;
}

ASYNC__HOT void async__grant(async_task *w) {
    w->flags |= ASYNC__F_GRANTED;
    async__wake(w);
}

/* Wakes the first waiter of wq with a grant; false if none waits. */
ASYNC__HOT bool async__grant_first(async_waitq *wq) {
    async_task *w = async__wq_pop(wq);
    if (!w) return false;
    async__grant(w);
    return true;
}

/* Wakes every waiter, with a grant or (granted false) just to look again. */
static void async__wake_queue(async_waitq *wq, bool granted) {
    async_task *w;
    while ((w = async__wq_pop(wq)) != NULL) {
        if (granted)
            async__grant(w);
        else
            async__wake(w);
    }
}

/* Takes the runner's grant: true if it had one. */
ASYNC__HOT bool async__take_grant(async_task *runner) {
    bool granted = (runner->flags & ASYNC__F_GRANTED) != 0;
    runner->flags &= (uint8_t)~ASYNC__F_GRANTED;
    return granted;
}

/* The start of a primitive's wait: GO with a grant if `available`, else queue (WAIT), or raise the
 * cancellation already requested. */
ASYNC__HOT int async__wait_or_take(async_task *t, async_waitq *wq, bool available) {
    async_task *runner = async__runner(t);
    if (runner->flags & ASYNC__F_CANCEL) return async__deliver_cancel(t, runner);
    if (available) {
        runner->flags |= ASYNC__F_GRANTED;
        return ASYNC__GO;
    }
    async__wq_push(wq, runner);
    return ASYNC__WAIT;
}

/* locks */

ASYNC_API int async__lock_start(async_task *t, async_lock *l) {
    async_task *runner = async__runner(t);
    int rc;
    if (!l) return async__raise_code(t, ASYNC__MISUSE(ASYNC_EINVAL, "AWAIT_LOCK: !l"));
    if (l->holder == runner)
        return async__raise_code(t, ASYNC__MISUSE(ASYNC_EDEADLK, "AWAIT_LOCK: l->holder == runner"));
    rc = async__wait_or_take(t, &l->waiters, l->holder == NULL);
    if (rc == ASYNC__GO) l->holder = runner;
    return rc;
}

ASYNC_API int async_lock_release(async_lock *l) {
    async_task *w;
    if (!l) return ASYNC__MISUSE(ASYNC_EINVAL, "async_lock_release: !l");
    if (!l->holder) return ASYNC__MISUSE(ASYNC_EPERM, "async_lock_release: !l->holder");
    w = async__wq_pop(&l->waiters);
    l->holder = w;
    if (w) async__grant(w);
    return 0;
}

ASYNC_API int async__lock_check(async_task *t, async_lock *l) {
    async_task *runner = async__runner(t);
    if (async__waiting(runner)) return ASYNC__WAIT;
    if (async__take_grant(runner)) {
        if (!(runner->flags & ASYNC__F_CANCEL)) return ASYNC__GO;
        async_lock_release(l); /* cancelled before it could use the lock: the next one gets it */
    }
    if (runner->flags & ASYNC__F_CANCEL) return async__deliver_cancel(t, runner);
    return async__lock_start(t, l);
}

ASYNC_API bool async_lock_locked(const async_lock *l) { return l && l->holder; }

/* events */

ASYNC_API int async_event_set(async_event *e) {
    if (!e) return ASYNC__MISUSE(ASYNC_EINVAL, "async_event_set: !e");
    e->is_set = true;
    async__wake_queue(&e->waiters, true);
    return 0;
}

ASYNC_API void async_event_clear(async_event *e) {
    if (e) e->is_set = false;
}

ASYNC_API bool async_event_is_set(const async_event *e) { return e && e->is_set; }

ASYNC_API int async__event_start(async_task *t, async_event *e) {
    if (!e) return async__raise_code(t, ASYNC__MISUSE(ASYNC_EINVAL, "AWAIT_EVENT: !e"));
    return async__wait_or_take(t, &e->waiters, e->is_set);
}

/* The resume of a wait that releases all its waiters at once (an event set, a queue joined): ASYNC__WAIT,
 * the cancel, ASYNC__GO when released, or -1 when woken without a release (the caller starts again). */
static int async__released(async_task *t) {
    async_task *runner = async__runner(t);
    if (async__waiting(runner)) return ASYNC__WAIT;
    if (runner->flags & ASYNC__F_CANCEL) {
        async__take_grant(runner);
        return async__deliver_cancel(t, runner);
    }
    return async__take_grant(runner) ? ASYNC__GO : -1;
}

ASYNC_API int async__event_check(async_task *t, async_event *e) {
    int rc = async__released(t);
    return rc == -1 ? async__event_start(t, e) : rc;
}

/* conditions */

ASYNC_API int async_condition_init(async_condition *c, async_lock *lock) {
    if (!c) return ASYNC__MISUSE(ASYNC_EINVAL, "async_condition_init: !c");
    if (c->waiters.head || (c->lock && c->lock->waiters.head))
        return
            ASYNC__MISUSE(ASYNC_EBUSY, "async_condition_init: c->waiters.head || (c->lock && c->lock->waiters.head)");
    memset(c, 0, sizeof *c);
    c->lock = lock ? lock : &c->own_lock;
    return 0;
}

ASYNC_API async_lock *async_condition_lock(async_condition *c) {
    if (!c) return NULL;
    if (!c->lock) c->lock = &c->own_lock; /* a zeroed condition uses its own lock */
    return c->lock;
}

ASYNC_API int async_condition_notify(async_condition *c, int n) {
    int woken = 0;
    if (!c || n < 0) return ASYNC__MISUSE(ASYNC_EINVAL, "async_condition_notify: !c || n < 0");
    if (!async_lock_locked(async_condition_lock(c)))
        return ASYNC__MISUSE(ASYNC_EPERM, "async_condition_notify: !async_lock_locked(async_condition_lock(c))");
    while (woken < n && async__grant_first(&c->waiters)) woken++;
    return woken;
}

ASYNC_API int async_condition_notify_all(async_condition *c) { return async_condition_notify(c, 0x7FFFFFFF); }

ASYNC_API int async__cond_start(async_task *t, async_condition *c) {
    async_task *runner = async__runner(t);
    async_lock *l;
    if (!c) return async__raise_code(t, ASYNC__MISUSE(ASYNC_EINVAL, "AWAIT_CONDITION: !c"));
    l = async_condition_lock(c);
    if (l->holder != runner)
        return async__raise_code(t, ASYNC__MISUSE(ASYNC_EPERM, "AWAIT_CONDITION: l->holder != runner"));
    if (runner->flags & ASYNC__F_CANCEL) return async__deliver_cancel(t, runner);
    async_lock_release(l);
    async__wq_push(&c->waiters, runner);
    return ASYNC__WAIT;
}

ASYNC_API int async__cond_check(async_task *t, async_condition *c) {
    async_task *runner = async__runner(t);
    async_lock *l = c->lock;
    if (async__waiting(runner)) return ASYNC__WAIT;
    async__take_grant(runner); /* notified, or the lock handed over: either way, on to the lock */
    if (l->holder == NULL) l->holder = runner;
    if (l->holder != runner) { /* reacquire first, whatever happened (asyncio does the same) */
        async__wq_push(&l->waiters, runner);
        return ASYNC__WAIT;
    }
    if (runner->flags & ASYNC__F_CANCEL) return async__deliver_cancel(t, runner);
    return ASYNC__GO;
}

/* semaphores */

ASYNC_API int async_semaphore_init(async_semaphore *s, int32_t value, bool bounded) {
    if (!s || value < 0) return ASYNC__MISUSE(ASYNC_EINVAL, "async_semaphore_init: !s || value < 0");
    if (s->waiters.head) return ASYNC__MISUSE(ASYNC_EBUSY, "async_semaphore_init: s->waiters.head");
    s->value = value;
    s->bound = bounded ? value : 0;
    return 0;
}

ASYNC_API int async_semaphore_release(async_semaphore *s) {
    if (!s) return ASYNC__MISUSE(ASYNC_EINVAL, "async_semaphore_release: !s");
    if (async__grant_first(&s->waiters)) return 0;
    if (s->bound && s->value >= s->bound)
        return ASYNC__MISUSE(ASYNC_ERANGE, "async_semaphore_release: s->bound && s->value >= s->bound");
    if (s->value == 0x7FFFFFFF) return ASYNC__MISUSE(ASYNC_ERANGE, "async_semaphore_release: s->value == 0x7FFFFFFF");
    s->value++;
    return 0;
}

ASYNC_API int async_semaphore_try_acquire(async_semaphore *s) {
    if (!s) return ASYNC__MISUSE(ASYNC_EINVAL, "async_semaphore_try_acquire: !s");
    if (s->value <= 0 || s->waiters.head) return ASYNC_EAGAIN;
    s->value--;
    return 0;
}

ASYNC_API int32_t async_semaphore_value(const async_semaphore *s) { return s ? s->value : 0; }

ASYNC_API int async__sem_start(async_task *t, async_semaphore *s) {
    int rc;
    if (!s) return async__raise_code(t, ASYNC__MISUSE(ASYNC_EINVAL, "AWAIT_SEMAPHORE: !s"));
    rc = async__wait_or_take(t, &s->waiters, s->value > 0 && !s->waiters.head);
    if (rc == ASYNC__GO) s->value--;
    return rc;
}

ASYNC_API int async__sem_check(async_task *t, async_semaphore *s) {
    async_task *runner = async__runner(t);
    if (async__waiting(runner)) return ASYNC__WAIT;
    if (async__take_grant(runner)) {
        if (!(runner->flags & ASYNC__F_CANCEL)) return ASYNC__GO;
        if (!async__grant_first(&s->waiters)) s->value++; /* give the permit back */
    }
    if (runner->flags & ASYNC__F_CANCEL) return async__deliver_cancel(t, runner);
    return async__sem_start(t, s);
}

/* queues */

ASYNC_API int async_queue_init(async_queue *q, async_queue_kind kind, intptr_t *storage, uint32_t *seq,
                               size_t capacity) {
    if (!q || !storage || capacity == 0 || (kind == ASYNC_QUEUE_PRIORITY && !seq) || (unsigned)kind > 2u)
        return ASYNC__MISUSE(ASYNC_EINVAL, "async_queue_init: ASYNC_EINVAL");
    if (q->getters.head || q->putters.head || q->joiners.head)
        return ASYNC__MISUSE(ASYNC_EBUSY, "async_queue_init: tasks wait on the queue");
    memset(q, 0, sizeof *q);
    q->kind = (uint8_t)kind;
    q->items = storage;
    q->seq = seq;
    q->capacity = q->maxsize = capacity;
    return 0;
}

ASYNC_API int async_queue_init_growing(async_queue *q, async_queue_kind kind, size_t maxsize,
                                       void *(*realloc_fn)(void *ptr, size_t size)) {
    if (!q || !realloc_fn || (unsigned)kind > 2u)
        return ASYNC__MISUSE(ASYNC_EINVAL, "async_queue_init_growing: !q || !realloc_fn || (unsigned)kind > 2u");
    if (q->getters.head || q->putters.head || q->joiners.head)
        return ASYNC__MISUSE(ASYNC_EBUSY, "async_queue_init_growing: tasks wait on the queue");
    memset(q, 0, sizeof *q);
    q->kind = (uint8_t)kind;
    q->maxsize = maxsize;
    q->realloc_fn = realloc_fn;
    return 0;
}

ASYNC_API int async_queue_free_storage(async_queue *q) {
    if (!q) return ASYNC__MISUSE(ASYNC_EINVAL, "async_queue_free_storage: !q");
    /* a task woken with a grant would take its item from the freed storage (a NULL dereference), and
     * waiting ones would wait on a queue that no longer holds what they wait for: refuse, as init does */
    if (q->getters.head || q->putters.head || q->joiners.head || q->reserved_items || q->reserved_slots)
        return ASYNC__MISUSE(ASYNC_EBUSY, "async_queue_free_storage: ASYNC_EBUSY");
    if (!q->realloc_fn) return 0;
    if (q->items) q->realloc_fn(q->items, 0);
    if (q->seq) q->realloc_fn(q->seq, 0);
    /* the dropped items will never be marked done: they no longer count as unfinished (items taken by a
     * get and not yet done still do), so a later join does not wait for them */
    q->unfinished = q->unfinished > q->count ? q->unfinished - q->count : 0;
    q->items = NULL;
    q->seq = NULL;
    q->capacity = q->count = q->head = 0;
    return 0;
}

ASYNC_API void async_queue_set_compare(async_queue *q, async_queue_compare compare) {
    if (q) q->compare = compare;
}

ASYNC_API size_t async_queue_size(const async_queue *q) { return q ? q->count : 0; }
ASYNC_API size_t async_queue_unfinished(const async_queue *q) { return q ? q->unfinished : 0; }
ASYNC_API bool async_queue_full(const async_queue *q) {
    return q && q->maxsize && q->count + q->reserved_slots >= q->maxsize;
}

/* Priority order: the compare function (or numbers), then put order. */
static bool async__q_before(const async_queue *q, size_t a, size_t b) {
    intptr_t x = q->items[a], y = q->items[b];
    int c = q->compare ? q->compare(x, y) : (x < y ? -1 : x > y);
    return c < 0 || (c == 0 && (int32_t)(q->seq[a] - q->seq[b]) < 0);
}

static void async__q_swap(async_queue *q, size_t a, size_t b) {
    intptr_t v = q->items[a];
    uint32_t s = q->seq[a];
    q->items[a] = q->items[b];
    q->seq[a] = q->seq[b];
    q->items[b] = v;
    q->seq[b] = s;
}

static int async__q_grow(async_queue *q) {
    size_t cap = q->capacity ? q->capacity * 2 : 8;
    intptr_t *items;
    if (!q->realloc_fn || cap < q->capacity || cap > (size_t)-1 / sizeof(intptr_t)) return ASYNC_ENOMEM;
    if (q->maxsize && cap > q->maxsize) cap = q->maxsize;
    items = (intptr_t *)q->realloc_fn(q->items, cap * sizeof *items);
    if (!items) return ASYNC_ENOMEM;
    q->items = items;
    if (q->kind == ASYNC_QUEUE_PRIORITY) {
        uint32_t *seq = (uint32_t *)q->realloc_fn(q->seq, cap * sizeof *seq);
        if (!seq) return ASYNC_ENOMEM; /* items grew alone: harmless, capacity stays */
        q->seq = seq;
    }
    if (q->kind == ASYNC_QUEUE_FIFO && q->head) {
        /* the ring is full and wrapped: move its oldest part (head to the old end) to the new end,
         * last item first, as the two ranges may overlap */
        size_t n = q->capacity - q->head, i;
        for (i = n; i-- > 0;) items[cap - n + i] = items[q->head + i];
        q->head = cap - n;
    }
    q->capacity = cap;
    return 0;
}

/* The ring's next free slot of a FIFO queue, without a division. */
ASYNC__HOT void async__q_ring_put(async_queue *q, intptr_t item) {
    size_t i = q->head + q->count;
    q->items[i >= q->capacity ? i - q->capacity : i] = item;
}

/* After a store: count it, and reserve the item for the first waiting getter, who is handed it. */
ASYNC__HOT void async__q_stored(async_queue *q) {
    q->count++;
    q->unfinished++;
    if (q->count > q->reserved_items && async__grant_first(&q->getters)) q->reserved_items++;
}

/* After a take: a free slot goes to the first waiting putter. */
ASYNC__HOT void async__q_taken(async_queue *q) {
    if (--q->count == 0) q->head = 0;
    if ((!q->maxsize || q->count + q->reserved_slots < q->maxsize) && async__grant_first(&q->putters))
        q->reserved_slots++;
}

/* Stores an item; there is room for it (a free or reserved slot): growing the storage, LIFO and priority
 * queues (the FIFO ring with room is async__q_store's inline case). */
static int async__q_store_any(async_queue *q, intptr_t item) {
    size_t i;
    if (q->count == q->capacity) {
        int rc = async__q_grow(q);
        if (rc) return rc;
    }
    switch (q->kind) {
    case ASYNC_QUEUE_FIFO: async__q_ring_put(q, item); break;
    case ASYNC_QUEUE_LIFO: q->items[q->count] = item; break;
    default:
        i = q->count;
        q->items[i] = item;
        q->seq[i] = q->next_seq++;
        while (i > 0 && async__q_before(q, i, (i - 1) / 2)) {
            async__q_swap(q, i, (i - 1) / 2);
            i = (i - 1) / 2;
        }
        break;
    }
    async__q_stored(q);
    return 0;
}

/* Takes the next item of a LIFO or priority queue (the FIFO ring is async__q_take's inline case). */
static intptr_t async__q_take_any(async_queue *q) {
    intptr_t item;
    size_t i = 0, c;
    if (q->kind == ASYNC_QUEUE_LIFO) {
        item = q->items[q->count - 1];
    } else {
        item = q->items[0];
        q->items[0] = q->items[q->count - 1];
        q->seq[0] = q->seq[q->count - 1];
        for (;;) {
            c = 2 * i + 1;
            if (c >= q->count - 1) break;
            if (c + 1 < q->count - 1 && async__q_before(q, c + 1, c)) c++;
            if (!async__q_before(q, c, i)) break;
            async__q_swap(q, i, c);
            i = c;
        }
    }
    async__q_taken(q);
    return item;
}

/* Stores an item where there is room (a free or reserved slot); the hand-over's common case inline. */
ASYNC__HOT int async__q_store(async_queue *q, intptr_t item) {
    if (q->kind != ASYNC_QUEUE_FIFO || q->count == q->capacity) return async__q_store_any(q, item);
    async__q_ring_put(q, item);
    async__q_stored(q);
    return 0;
}

/* Takes the next item (there is one). */
ASYNC__HOT intptr_t async__q_take(async_queue *q) {
    intptr_t item;
    if (q->kind != ASYNC_QUEUE_FIFO) return async__q_take_any(q);
    item = q->items[q->head];
    if (++q->head == q->capacity) q->head = 0;
    async__q_taken(q);
    return item;
}

ASYNC_API int async_queue_put_nowait(async_queue *q, intptr_t item) {
    if (!q || (!q->items && !q->realloc_fn))
        return ASYNC__MISUSE(ASYNC_EINVAL, "async_queue_put_nowait: !q || (!q->items && !q->realloc_fn)");
    if (q->shutdown) return ASYNC_ESHUTDOWN;
    if (async_queue_full(q)) return ASYNC_EAGAIN;
    return async__q_store(q, item);
}

ASYNC_API int async_queue_get_nowait(async_queue *q, intptr_t *out) {
    if (!q || !out) return ASYNC__MISUSE(ASYNC_EINVAL, "async_queue_get_nowait: !q || !out");
    if (q->count <= q->reserved_items) return q->shutdown ? ASYNC_ESHUTDOWN : ASYNC_EAGAIN;
    *out = async__q_take(q);
    return 0;
}

ASYNC_API int async_queue_task_done(async_queue *q) {
    if (!q) return ASYNC__MISUSE(ASYNC_EINVAL, "async_queue_task_done: !q");
    if (q->unfinished == 0) return ASYNC__MISUSE(ASYNC_ERANGE, "async_queue_task_done: q->unfinished == 0");
    if (--q->unfinished == 0) async__wake_queue(&q->joiners, true);
    return 0;
}

ASYNC_API int async_queue_shutdown(async_queue *q, bool immediate) {
    if (!q) return ASYNC__MISUSE(ASYNC_EINVAL, "async_queue_shutdown: !q");
    q->shutdown = 1;
    if (immediate) {
        size_t dropped = q->count - q->reserved_items;
        q->count = q->reserved_items; /* reserved items still go to the getters woken for them */
        if (q->count == 0) q->head = 0;
        q->unfinished = q->unfinished > dropped ? q->unfinished - dropped : 0;
        if (q->unfinished == 0) async__wake_queue(&q->joiners, true);
    }
    async__wake_queue(&q->putters, false);
    if (q->count <= q->reserved_items) async__wake_queue(&q->getters, false);
    return 0;
}

ASYNC_API int async__qput_start(async_task *t, async_queue *q) {
    int rc;
    if (!q || (!q->items && !q->realloc_fn))
        return async__raise_code(t,
            ASYNC__MISUSE(ASYNC_EINVAL, "AWAIT_QUEUE_PUT: !q || (!q->items && !q->realloc_fn)"));
    if (q->shutdown) return async__raise_code(t, ASYNC_ESHUTDOWN);
    rc = async__wait_or_take(t, &q->putters, !async_queue_full(q) && !q->putters.head);
    if (rc == ASYNC__GO) q->reserved_slots++;
    return rc;
}

ASYNC_API int async__qput_check(async_task *t, async_queue *q, intptr_t item) {
    async_task *runner = async__runner(t);
    int rc;
    if (async__waiting(runner)) return ASYNC__WAIT;
    if (async__take_grant(runner)) {
        q->reserved_slots--;
        if (!(runner->flags & ASYNC__F_CANCEL)) {
            if (q->shutdown) return async__raise_code(t, ASYNC_ESHUTDOWN);
            rc = async__q_store(q, item);
            return rc ? async__raise_code(t, rc) : ASYNC__GO;
        }
        if (async__grant_first(&q->putters)) q->reserved_slots++; /* the slot goes to the next putter */
    }
    if (runner->flags & ASYNC__F_CANCEL) return async__deliver_cancel(t, runner);
    return async__qput_start(t, q);
}

ASYNC_API int async__qget_start(async_task *t, async_queue *q) {
    int rc;
    if (!q) return async__raise_code(t, ASYNC__MISUSE(ASYNC_EINVAL, "AWAIT_QUEUE_GET: !q"));
    if (q->count <= q->reserved_items && q->shutdown) return async__raise_code(t, ASYNC_ESHUTDOWN);
    rc = async__wait_or_take(t, &q->getters, q->count > q->reserved_items && !q->getters.head);
    if (rc == ASYNC__GO) q->reserved_items++;
    return rc;
}

ASYNC_API int async__qget_check(async_task *t, async_queue *q, intptr_t *out) {
    async_task *runner = async__runner(t);
    if (async__waiting(runner)) return ASYNC__WAIT;
    if (async__take_grant(runner)) {
        q->reserved_items--;
        if (!(runner->flags & ASYNC__F_CANCEL)) {
            intptr_t item = async__q_take(q);
            if (out) *out = item;
            return ASYNC__GO;
        }
        if (async__grant_first(&q->getters)) q->reserved_items++; /* the item goes to the next getter */
    }
    if (runner->flags & ASYNC__F_CANCEL) return async__deliver_cancel(t, runner);
    return async__qget_start(t, q);
}

ASYNC_API int async__qjoin_start(async_task *t, async_queue *q) {
    if (!q) return async__raise_code(t, ASYNC__MISUSE(ASYNC_EINVAL, "AWAIT_QUEUE_JOIN: !q"));
    return async__wait_or_take(t, &q->joiners, q->unfinished == 0);
}

ASYNC_API int async__qjoin_check(async_task *t, async_queue *q) {
    int rc = async__released(t);
    return rc == -1 ? async__qjoin_start(t, q) : rc;
}

/* ---- async generators: the producer runs as the only child of the generator's group, owned by the
 * consumer; the consumer waits in the group's list, the producer in producer_wait. ---- */

#define ASYNC__GEN_VALUE 0x01u /* a yielded value waits for the consumer */
#define ASYNC__GEN_WANT 0x02u  /* the consumer asked for the next value */
#define ASYNC__GEN_DONE 0x04u  /* the producer finished */

ASYNC_API bool async_gen_done(const async_gen *g) { return g && (g->state & ASYNC__GEN_DONE); }
ASYNC_API bool async_gen_started(const async_gen *g) { return g && (g->group.count || (g->state & ASYNC__GEN_DONE)); }

ASYNC_API int async__gen_next_start(async_task *t, async_gen *g, async_task *producer, const async_error *thrown) {
    async_task *runner = async__runner(t);
    int rc;
    if (!g) return async__raise_code(t, ASYNC__MISUSE(ASYNC_EINVAL, "AWAIT_NEXT: !g"));
    if (runner->flags & ASYNC__F_CANCEL) return async__deliver_cancel(t, runner);
    if (g->state & ASYNC__GEN_DONE) return ASYNC__GO;
    if (!g->group.count) {
        if (thrown) { /* athrow before the first anext: the producer never starts */
            g->state |= ASYNC__GEN_DONE;
            async__raise(t, thrown);
            return ASYNC__RAISE;
        }
        rc = async__group_begin(t, &g->group, ASYNC_GROUP_GENERATOR);
        if (!rc) rc = async__group_add(&g->group, producer);
        if (rc) return async__raise_code(t, rc);
    } else if (g->group.waiters) {
        /* another consumer is already waiting */
        return async__raise_code(t,
            ASYNC__MISUSE(ASYNC_EBUSY, "AWAIT_NEXT: ASYNC_EBUSY"));
    }
    g->thrown = thrown;
    g->state |= ASYNC__GEN_WANT;
    async__wl_wake_all(&g->producer_wait);
    return async__group_wait(t, &g->group);
}

ASYNC_API int async__gen_next_check(async_task *t, async_gen *g, intptr_t *out) {
    async_task *runner = async__runner(t);
    if (async__waiting(runner)) return ASYNC__WAIT;
    if (g->state & ASYNC__GEN_VALUE) {
        g->state &= (uint8_t)~ASYNC__GEN_VALUE;
        if (runner->flags & ASYNC__F_CANCEL) return async__deliver_cancel(t, runner);
        if (out) *out = g->value;
        return ASYNC__GO;
    }
    if (g->group.running == 0) { /* the producer has finished */
        g->state |= ASYNC__GEN_DONE;
        if (runner->flags & ASYNC__F_CANCEL) return async__deliver_cancel(t, runner);
        if (g->group.error) {
            const async_error *e = g->group.error;
            g->group.error = NULL; /* raised once */
            async__raise(t, e);
            return ASYNC__RAISE;
        }
        return ASYNC__GO;
    }
    runner->state = ASYNC__S_WAIT_GROUP; /* woken early (a cancel passed on): wait for the producer */
    async__wl_push(&g->group.waiters, runner);
    return ASYNC__WAIT;
}

ASYNC_API int async__gen_close_start(async_task *t, async_gen *g) {
    if (!g) return async__raise_code(t, ASYNC__MISUSE(ASYNC_EINVAL, "AWAIT_GEN_CLOSE: !g"));
    g->state |= ASYNC__GEN_DONE;
    if (!g->group.running) return ASYNC__GO;
    async__group_cancel_all(&g->group, NULL);
    return async__group_wait(t, &g->group);
}

ASYNC_API int async__gen_close_check(async_task *t, async_gen *g) {
    async_task *runner = async__runner(t);
    if (async__waiting(runner)) return ASYNC__WAIT;
    if (g->group.running) {
        /* woken while the producer runs: only a yield in its cleanup does that. No one will ask for
         * that value, so waiting would never end: cancel the producer again at that yield (as the
         * consumer's frame end does) */
        g->state &= (uint8_t)~ASYNC__GEN_VALUE;
        async__group_cancel_all(&g->group, NULL);
        runner->state = ASYNC__S_WAIT_GROUP;
        async__wl_push(&g->group.waiters, runner);
        return ASYNC__WAIT;
    }
    g->state &= (uint8_t)~ASYNC__GEN_VALUE;
    if (runner->flags & ASYNC__F_CANCEL) return async__deliver_cancel(t, runner);
    if (g->group.error) { /* an error raised by the cleanup itself */
        const async_error *e = g->group.error;
        g->group.error = NULL;
        async__raise(t, e);
        return ASYNC__RAISE;
    }
    return ASYNC__GO;
}

/* The generator whose producer `runner` is, or NULL. */
static async_gen *async__gen_of(async_task *runner) {
    async_group *g;
    if (ASYNC__OWNER(runner) != ASYNC__OWN_GROUP) return NULL;
    g = (async_group *)async__owner(runner);
    return g->mode == ASYNC_GROUP_GENERATOR ? (async_gen *)(void *)g : NULL;
}

ASYNC_API int async__gen_yield_start(async_task *t, intptr_t value) {
    async_task *runner = async__runner(t);
    async_gen *g = async__gen_of(runner);
    if (!g) return async__raise_code(t, ASYNC__MISUSE(ASYNC_EINVAL, "AWAIT_YIELD_VALUE: !g"));
    if (runner->flags & ASYNC__F_CANCEL) return async__deliver_cancel(t, runner);
    g->value = value;
    g->state = (uint8_t)((g->state | ASYNC__GEN_VALUE) & ~ASYNC__GEN_WANT);
    async__wl_wake_all(&g->group.waiters);
    runner->state = ASYNC__S_WAIT;
    async__wl_push(&g->producer_wait, runner);
    return ASYNC__WAIT;
}

ASYNC_API int async__gen_yield_check(async_task *t) {
    async_task *runner = async__runner(t);
    async_gen *g = async__gen_of(runner);
    if (async__waiting(runner)) return ASYNC__WAIT;
    if (runner->flags & ASYNC__F_CANCEL) return async__deliver_cancel(t, runner);
    if (g->state & ASYNC__GEN_WANT) {
        if (g->thrown) {
            const async_error *e = g->thrown;
            g->thrown = NULL;
            async__raise(t, e);
            return ASYNC__RAISE;
        }
        return ASYNC__GO;
    }
    runner->state = ASYNC__S_WAIT;
    async__wl_push(&g->producer_wait, runner);
    return ASYNC__WAIT;
}

/* ---- cancellation ---- */

static void async__finish_unstarted(async_task *t) {
    async__deliver_cancel(t, t); /* raised, as at an await, and taken off the task */
    async__complete(t);
}

ASYNC_API bool async_cancel(async_task *t) {
    async_loop *loop;
    if (!t || t->state == ASYNC__S_DONE) return false;
    /* the library's own nodes (a wait set's watches, a timeout block's deadline) are not tasks to cancel */
    if (t->lc == ASYNC__LC_WATCH || t->state == ASYNC__S_DEADLINE) return false;
    loop = async__loop_of(t);
    if (ASYNC_CONFIG_HOOKS && loop && loop->thread_check && !loop->thread_check(loop, "async_cancel"))
        return ASYNC__MISUSE(false, "async_cancel: called from a thread that does not run the task's loop");
    if (t->state == ASYNC__S_INIT) { /* never started: it ends cancelled without running */
        async__raise(t, async__err(ASYNC_ECANCELED));
        t->flags |= ASYNC__F_SEEN;
        t->state = ASYNC__S_DONE;
        return true;
    }
    if (ASYNC__OWNER(t) == ASYNC__OWN_TASK) return async_cancel(async__runner(t)); /* part of its runner */
    if (t->flags & ASYNC__F_CANCEL) return true;
    t->flags |= ASYNC__F_CANCEL;
    if (ASYNC_CONFIG_HOOKS && loop && loop->hooks && loop->hooks->cancel) loop->hooks->cancel(loop, t, loop->current);
    switch (t->state) {
    case ASYNC__S_SLEEPING:
        async__timer_cancel(async__loop_of(t), t);
        async__wake(t);
        break;
    case ASYNC__S_WAIT:
        async__wl_remove(t);
        async__wake(t);
        break;
    case ASYNC__S_WAIT_Q:
        async__wq_remove(t);
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
            async__group_cancel_all(g, NULL);
        }
        break;
    }
    default: break; /* ready or running: delivered at its next await */
    }
    return true;
}

/* ---- interrupts: what an ISR raises (the contract is in the header's Interrupts section) ---- */

static void async__interrupts_scan(async_loop *loop);

/* From async_poll when the flag is set (only ever by an interrupt that async_interrupt_init registered,
 * which set the scan). */
static void async__interrupts_deliver(async_loop *loop) {
    if (loop->deliver)
        loop->deliver(loop);
    else
        loop->interrupted = 0;
}

ASYNC_API int async_interrupt_init(async_interrupt *s, async_loop *loop) {
    if (!s || !loop) return ASYNC__MISUSE(ASYNC_EINVAL, "async_interrupt_init: !s || !loop");
    if (s->loop) return ASYNC__MISUSE(ASYNC_EBUSY, "async_interrupt_init: s->loop");
    s->future.waiters = NULL;
    s->future.r.value = 0;
    s->future.state = 0;
    s->value = 0;
    s->error = NULL;
    s->taken = s->raised;
    s->next = loop->interrupts;
    loop->interrupts = s;
    loop->deliver = async__interrupts_scan;
    s->loop = loop; /* last: raises reach the loop from here on */
    return 0;
}

/* The ISR side: volatile stores only, in this order (value, count, loop flag); see async__interrupts_deliver. */
static int async__interrupt_post(async_interrupt *s, intptr_t value, const async_error *error) {
    async_loop *loop;
    if (!s) return ASYNC_EINVAL;
    loop = s->loop;
    if (!loop) return ASYNC_ESHUTDOWN;
    s->value = value;
    s->error = error;
    s->raised = s->raised + 1; /* the one writer of the count: no atomic needed */
    loop->interrupted = 1;
    return 0;
}

ASYNC_API int async_interrupt_raise(async_interrupt *s, intptr_t value) {
    return async__interrupt_post(s, value, NULL);
}

ASYNC_API int async_interrupt_raise_error(async_interrupt *s, const async_error *error) {
    if (!error) return ASYNC_EINVAL;
    return async__interrupt_post(s, 0, error);
}

/* The loop side, from async_poll when the flag is set. The flag is cleared before the scan, so a raise
 * during the scan is seen on the next pass; an interrupt's count is read before and after its value, so a
 * value that an ISR replaced halfway is read again. */
static void async__interrupts_scan(async_loop *loop) {
    async_interrupt *s;
    loop->interrupted = 0;
    for (s = loop->interrupts; s; s = s->next) {
        uint32_t n;
        intptr_t value;
        const async_error *error;
        if (s->raised == s->taken || s->future.state) continue; /* nothing new, or not re-armed yet */
        do {
            n = s->raised;
            value = s->value;
            error = s->error;
        } while (n != s->raised);
        s->taken = n;
        if (error)
            async_future_set_error(&s->future, error);
        else
            async_future_set_value(&s->future, value);
    }
}

ASYNC_API int async_interrupt_reset(async_interrupt *s) {
    async_loop *loop;
    int rc;
    if (!s) return ASYNC__MISUSE(ASYNC_EINVAL, "async_interrupt_reset: !s");
    loop = s->loop;
    if (!loop) return ASYNC_ESHUTDOWN;
    if (!s->future.state) return s->future.waiters ? ASYNC_EBUSY : 0;
    rc = async_future_init(&s->future);
    if (rc) return rc;
    if (s->raised != s->taken) loop->interrupted = 1; /* raised while the future held its outcome */
    return 0;
}

ASYNC_API int async_interrupt_close(async_interrupt *s) {
    async_loop *loop;
    async_interrupt **pp;
    if (!s) return ASYNC__MISUSE(ASYNC_EINVAL, "async_interrupt_close: !s");
    loop = s->loop;
    if (!loop) return ASYNC_ESHUTDOWN;
    if (s->future.waiters) return ASYNC__MISUSE(ASYNC_EBUSY, "async_interrupt_close: s->future.waiters");
    s->loop = NULL; /* first: raises fail from here on */
    for (pp = &loop->interrupts; *pp && *pp != s; pp = &(*pp)->next) {}
    if (*pp) *pp = s->next;
    s->next = NULL;
    return 0;
}

ASYNC_API bool async_loop_interrupted(const async_loop *loop) { return loop && loop->interrupted; }
ASYNC_API bool async_loop_has_interrupts(const async_loop *loop) { return loop && loop->interrupts; }

ASYNC_API void async_loop_set_wait(async_loop *loop, bool (*wait)(async_loop *, int32_t)) {
    if (loop) loop->wait = wait;
}

/* ---- static frame pools ---- */

ASYNC_API void *async_frame_pool_get(async_frame_pool *pool) {
    uint32_t i;
    if (!pool || !pool->frames || !pool->used) return NULL;
    for (i = 0; i < pool->count; i++) {
        uint32_t bit = 1u << (i % 32);
        if (pool->used[i / 32] == UINT32_MAX) { /* a full word: skip its 32 frames */
            i |= 31;
            continue;
        }
        if (!(pool->used[i / 32] & bit)) {
            void *frame = (char *)pool->frames + (size_t)i * pool->size;
            pool->used[i / 32] |= bit;
            memset(frame, 0, pool->size);
            return frame;
        }
    }
    return NULL;
}

ASYNC_API int async_frame_pool_put(async_frame_pool *pool, void *frame) {
    uintptr_t base, p;
    size_t i;
    async_task *t = (async_task *)frame;
    if (!pool || !frame || !pool->frames || !pool->size)
        return ASYNC__MISUSE(ASYNC_EINVAL, "async_frame_pool_put: !pool || !frame || !pool->frames || !pool->size");
    base = (uintptr_t)pool->frames;
    p = (uintptr_t)frame;
    if (p < base || (p - base) % pool->size || (p - base) / pool->size >= pool->count)
        return ASYNC__MISUSE(ASYNC_EINVAL, "async_frame_pool_put: not a frame of this pool");
    i = (p - base) / pool->size;
    if (!(pool->used[i / 32] & (1u << (i % 32)))) /* not handed out */
        return ASYNC__MISUSE(ASYNC_EINVAL, "async_frame_pool_put: frame not handed out");
    if (async__live(t)) return ASYNC__MISUSE(ASYNC_EBUSY, "async_frame_pool_put: async__live(t)");
    if (t->state == ASYNC__S_DONE && (t->flags & (ASYNC__F_RAISE | ASYNC__F_SEEN)) == ASYNC__F_RAISE)
        /* its error was never retrieved: reusing the frame would lose it */
        return
            ASYNC__MISUSE(ASYNC_EBUSY, "async_frame_pool_put: ASYNC_EBUSY");
    pool->used[i / 32] &= ~(1u << (i % 32));
    return 0;
}

ASYNC_API uint32_t async_frame_pool_available(const async_frame_pool *pool) {
    uint32_t i, n = 0;
    if (!pool || !pool->used) return 0;
    for (i = 0; i < pool->count; i++)
        if (!(pool->used[i / 32] & (1u << (i % 32)))) n++;
    return n;
}

/* ---- the loop ---- */

ASYNC_API int async_loop_init(async_loop *loop) {
    if (!loop) return ASYNC__MISUSE(ASYNC_EINVAL, "async_loop_init: !loop");
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
ASYNC_API async_ms async_loop_time(async_loop *loop) {
    if (!loop) return 0;
    if (loop->clock) loop->now = loop->clock(loop);
    return loop->now;
}
ASYNC_API uint32_t async_loop_timers(const async_loop *loop) {
    if (!loop) return 0;
#if ASYNC_CONFIG_TIMER_FIFO
    return loop->ntimers + loop->fifo_live;
#else
    return loop->ntimers;
#endif
}

ASYNC_API void async_loop_free_storage(async_loop *loop) {
    if (!loop) return;
    if (loop->timers != loop->inline_timers && loop->realloc_fn) loop->realloc_fn(loop->alloc_ctx, loop->timers, 0);
    loop->timers = loop->inline_timers;
    loop->timer_cap = ASYNC_CONFIG_INLINE_TIMERS;
    loop->ntimers = 0;
#if ASYNC_CONFIG_TIMER_FIFO
    if (loop->fifo && loop->realloc_fn) loop->realloc_fn(loop->alloc_ctx, loop->fifo, 0);
    loop->fifo = NULL;
    loop->fifo_head = loop->fifo_count = loop->fifo_cap = loop->fifo_live = 0;
#endif
}
ASYNC_API bool async_loop_has_ready(const async_loop *loop) { return loop && loop->ready_head; }

ASYNC_API async_task *async_loop_current_task(const async_loop *loop) { return loop ? loop->current : NULL; }

ASYNC_API void async_loop_set_strerror(async_loop *loop, const char *(*fn)(int code)) {
    if (loop) loop->strerror = fn;
}

ASYNC_API const char *async_loop_strerror(const async_loop *loop, int code) {
    const char *s;
    if (!async_error_of(code) && loop && loop->strerror && (s = loop->strerror(code)) != NULL) return s;
    return async_strerror(code);
}

ASYNC_API const char *async_loop_error_message(const async_loop *loop, const async_error *e) {
    if (e && !e->message) return async_loop_strerror(loop, e->code);
    return async_error_message(e);
}

ASYNC_API void async_loop_set_thread_check(async_loop *loop, bool (*check)(const async_loop *, const char *)) {
    if (loop) loop->thread_check = check;
}

ASYNC_API async_ms async_time(const async_task *t) {
    async_loop *loop = t ? async__loop_of(t) : NULL;
    return loop ? loop->now : 0;
}

/* ---- callbacks: a handle's call runs as a small task, so the ready queue and the timers order it ---- */

static async_status async__handle_run(async_task *t) {
    async_handle *h = (async_handle *)(void *)t;
    ASYNC_BEGIN(t);
    if (h->timed) AWAIT_SLEEP(t, (int32_t)(h->when - async_time(t)));
    h->fn(h->arg);
    ASYNC_END(t);
}

static int async__handle_schedule(async_loop *loop, async_handle *h, void (*fn)(void *), void *arg, bool timed,
                                  async_ms when) {
    if (!loop || !h || !fn) return ASYNC__MISUSE(ASYNC_EINVAL, "async_loop_call_*: NULL loop, handle or function");
    if (!async_task_init(&h->task, async__handle_run)) return ASYNC_EBUSY;
    h->fn = fn;
    h->arg = arg;
    h->timed = timed;
    h->when = when;
    return async_spawn(loop, &h->task);
}

ASYNC_API int async_loop_call_soon(async_loop *loop, async_handle *h, void (*fn)(void *arg), void *arg) {
    return async__handle_schedule(loop, h, fn, arg, false, 0);
}

ASYNC_API int async_loop_call_later(async_loop *loop, async_handle *h, int64_t ms, void (*fn)(void *arg),
                                    void *arg) {
    if (ms > ASYNC_MS_MAX) return ASYNC__MISUSE(ASYNC_ERANGE, "async_loop_call_later: more than ASYNC_MS_MAX ms");
    if (!loop) return ASYNC__MISUSE(ASYNC_EINVAL, "async_loop_call_later: NULL loop");
    return async__handle_schedule(loop, h, fn, arg, ms > 0, loop->now + (async_ms)(ms > 0 ? ms : 0));
}

ASYNC_API int async_loop_call_at(async_loop *loop, async_handle *h, async_ms when, void (*fn)(void *arg),
                                 void *arg) {
    return async__handle_schedule(loop, h, fn, arg, true, when);
}

ASYNC_API bool async_handle_pending(const async_handle *h) {
    return h && h->task.fn && h->task.state != ASYNC__S_INIT && h->task.state != ASYNC__S_DONE &&
           !(h->task.flags & ASYNC__F_CANCEL);
}

ASYNC_API bool async_handle_cancel(async_handle *h) { return async_handle_pending(h) && async_cancel(&h->task); }

ASYNC__HOT void async__step_unhooked(async_task *t) {
    t->state = ASYNC__S_RUNNING;
    if ((t->flags & ASYNC__F_CANCEL) && t->lc == 0)
        async__finish_unstarted(t); /* cancelled before its first step: the body never runs */
    else
        async__run(t, t);
}

/* What the scheduled task r waits for, after a step (the wait hook). */
static void async__hook_wait(async_loop *loop, async_task *r) {
    async_wait_kind kind;
    const void *object = NULL;
    switch (r->state) {
    case ASYNC__S_READY: kind = ASYNC_WAITING_YIELD; break;
    case ASYNC__S_SLEEPING: kind = ASYNC_WAITING_SLEEP; break;
    case ASYNC__S_WAIT_TASK:
        kind = ASYNC_WAITING_TASK;
        object = (char *)async__wl_of(r) - offsetof(async_task, u);
        break;
    case ASYNC__S_WAIT_GROUP: kind = ASYNC_WAITING_CHILDREN; object = async__wl_of(r); break;
    case ASYNC__S_WAIT_Q: kind = ASYNC_WAITING_SYNC; object = async__wl_of(r); break;
    case ASYNC__S_WAIT: kind = ASYNC_WAITING_FUTURE; object = async__wl_of(r); break;
    default: return; /* done */
    }
    loop->hooks->wait(loop, r, kind, object);
}

/* A step with the hooks: the tasks that the step made ready are those the ready queue has after its
 * tail of before the step (a pass only appends to it), so telling them costs the unhooked paths nothing. */
static void async__step_hooked(async_loop *loop, async_task *t) {
    async_task *tail, *w;
    if (loop->hooks->step_begin) loop->hooks->step_begin(loop, t);
    tail = loop->ready_tail;
    async__step_unhooked(t);
    /* read again after each hook: the step, or a hook, may have taken the hooks away */
    for (w = tail ? tail->q.next : loop->ready_head; w && loop->hooks && loop->hooks->wake; w = w->q.next)
        if (w != t) loop->hooks->wake(loop, w, t);
    if (loop->hooks && loop->hooks->wait) async__hook_wait(loop, t);
    if (loop->hooks && loop->hooks->step_end) loop->hooks->step_end(loop, t);
}

ASYNC_API void async_loop_set_hooks(async_loop *loop, const async_loop_hooks *hooks, void *ctx) {
    if (!loop) return;
    loop->hooks = hooks;
    loop->hooks_ctx = ctx;
}

ASYNC_API void *async_loop_hooks_ctx(const async_loop *loop) { return loop ? loop->hooks_ctx : NULL; }
ASYNC_API const async_loop_hooks *async_loop_get_hooks(const async_loop *loop) { return loop ? loop->hooks : NULL; }
ASYNC_API async_loop_realloc_fn async_loop_get_allocator(const async_loop *loop, void **ctx) {
    if (ctx) *ctx = loop ? loop->alloc_ctx : NULL;
    return loop ? loop->realloc_fn : NULL;
}

/* ---- the backend seam ---- */

ASYNC_API void async_loop_set_backend(async_loop *loop, const async_backend *backend, void *data) {
    if (!loop) return;
    loop->backend = backend;
    loop->backend_data = backend ? data : NULL;
}
ASYNC_API const async_backend *async_loop_backend(const async_loop *loop) { return loop ? loop->backend : NULL; }
ASYNC_API void *async_loop_backend_data(const async_loop *loop) { return loop ? loop->backend_data : NULL; }
ASYNC_API bool async_loop_virtual(const async_loop *loop) { return loop && !loop->clock; }
ASYNC_API void async_loop_advance(async_loop *loop, async_ms ms) {
    if (loop && !loop->clock) loop->now += ms;
}
ASYNC_API async_task *async_loop_ready_next(const async_loop *loop, const async_task *prev) {
    if (!loop) return NULL;
    return prev ? prev->q.next : loop->ready_head;
}
ASYNC_API bool async_task_started(const async_task *t) { return t && t->lc != 0; }

static void async__fire_timers(async_loop *loop) {
    const async__timer *first;
    while ((first = async__timer_first(loop)) != NULL && (int32_t)(first->deadline - loop->now) <= 0) {
        async_task *t = first->task;
        async__timer_cancel(loop, t);
        if (t->state == ASYNC__S_DEADLINE)
            async__deadline_fire(t);
        else
            async__push_ready(loop, t);
    }
}

static int32_t async__next_timeout(const async_loop *loop) {
    const async__timer *first;
    int32_t d;
    if (loop->ready_head) return 0;
    first = async__timer_first(loop);
    if (!first) return -1;
    d = (int32_t)(first->deadline - loop->now);
    return d > 0 ? d : 0;
}

/* One pass on the current clock reading: what ISRs raised, due timers, then every task ready now. */
ASYNC__HOT int32_t async__pass(async_loop *loop) {
    async_task *t;
    if (loop->interrupted) async__interrupts_deliver(loop); /* what ISRs raised: its waiters run this pass */
    async__fire_timers(loop);
    /* one pass over what is ready now; what it makes ready runs on the next pass (asyncio's order) */
    t = loop->ready_head;
    loop->ready_head = loop->ready_tail = NULL;
    while (t) {
        async_task *next = t->q.next;
        loop->current = t;
        loop->steps++;
        if (ASYNC_CONFIG_HOOKS && loop->hooks)
            async__step_hooked(loop, t);
        else
            async__step_unhooked(t);
        t = next;
    }
    loop->current = NULL;
    return loop->interrupted ? 0 : async__next_timeout(loop); /* raised meanwhile: deliver it now */
}

ASYNC_API int32_t async_poll(async_loop *loop) {
    if (!loop) return -1;
    if (ASYNC_CONFIG_HOOKS && loop->thread_check) loop->thread_check(loop, NULL); /* this thread runs the loop */
    if (loop->clock) loop->now = loop->clock(loop);
    return async__pass(loop);
}

ASYNC_API int32_t async_poll_batch(async_loop *loop, uint32_t max_steps) {
    uint32_t end;
    int32_t timeout;
    if (!loop) return -1;
    if (max_steps > (uint32_t)INT32_MAX) max_steps = (uint32_t)INT32_MAX; /* compared modulo 2^32 */
    end = loop->steps + max_steps;
    timeout = async_poll(loop);
    while (timeout == 0 && (int32_t)(loop->steps - end) < 0) timeout = async__pass(loop);
    return timeout;
}

ASYNC_API unsigned async_loop_report_errors(async_loop *loop) {
    unsigned n = 0;
    if (!loop || !ASYNC_CONFIG_UNRETRIEVED) return 0;
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

/* ---- deadlock: tasks that await each other ----
 * A task that awaits a task, a gather or a task group passes its cancellation on and waits for them to end.
 * When the awaits form a cycle (A awaits B, B awaits A; or through a group's child), cancelling passes
 * round the cycle and nothing ever ends. async_run finds such a cycle on main's await chain once it knows
 * that nothing else can happen, and releases one task of it: its await raises the cancellation at once, so
 * the task unwinds (its finally blocks run), ends, and its end wakes the rest of the cycle in turn. */

/* The task that the scheduled task r is stuck behind: the task it awaits, or the first unfinished child
 * of the group it waits for; NULL if it waits for something else. */
static async_task *async__blocker(async_task *r) {
    if (!r) return NULL;
    if (r->state == ASYNC__S_WAIT_TASK)
        return (async_task *)(void *)((char *)async__wl_of(r) - offsetof(async_task, u));
    if (r->state == ASYNC__S_WAIT_GROUP) {
        async_task *c;
        for (c = ((async_group *)(void *)async__wl_of(r))->children; c; c = c->u.sibling)
            if (c->state != ASYNC__S_DONE) return c;
    }
    return NULL;
}

/* Finds a cycle on main's chain of blockers (Floyd's, no memory) and releases a task of it that awaits a
 * task (every cycle has one: a group's children lie below it, only awaiting a task leads back up). True if
 * one was released. */
static bool async__break_cycle(async_task *main) {
    async_task *slow = main, *fast = main, *c;
    do {
        slow = async__blocker(slow);
        fast = async__blocker(async__blocker(fast));
        if (!slow || !fast) return false;
    } while (slow != fast);
    for (slow = main; slow != fast; slow = async__blocker(slow), fast = async__blocker(fast)) {}
    c = slow; /* the cycle's first task on the chain: go round it to a task that awaits a task */
    while (c->state != ASYNC__S_WAIT_TASK) {
        c = async__blocker(c);
        if (c == slow) return false;
    }
    async__wl_remove(c);
    c->flags |= ASYNC__F_CANCEL;
    async__wake(c);
    return true;
}

ASYNC_API int async_run(async_loop *loop, async_task *main) {
    int rc;
    bool deadlocked = false;
    if (!loop || !main) return ASYNC__MISUSE(ASYNC_EINVAL, "async_run: !loop || !main");
    rc = async_spawn(loop, main);
    if (rc) return rc;
    while (main->state != ASYNC__S_DONE) {
        int32_t timeout = ASYNC_CONFIG_BATCH_STEPS > 1 ? async_poll_batch(loop, ASYNC_CONFIG_BATCH_STEPS)
                                                       : async_poll(loop);
        if (main->state == ASYNC__S_DONE) break;
        if (loop->wait) { /* hosted: poll I/O (without blocking while tasks are ready) */
            if (loop->wait(loop, timeout) || timeout >= 0) continue;
        } else if (timeout >= 0) {
            if (!loop->clock) loop->now += (async_ms)timeout; /* virtual clock: jump to the next timer */
            continue;                                          /* a real clock without wait: poll again */
        }
        /* nothing can wake main: cancel it so its finally blocks run, then report the deadlock; if the
         * cancellation goes round a cycle of tasks awaiting each other, release the cycle */
        if (!ASYNC_CONFIG_DEADLOCK) break;
        if (!deadlocked) {
            deadlocked = true;
            async_cancel(main);
        } else if (!async__break_cycle(main)) {
            break;
        }
    }
    if (main->state != ASYNC__S_DONE) {
        async_loop_report_errors(loop);
        return ASYNC_EDEADLK;
    }
    /* retrieved: the cancellation of a deadlocked main is not "lost" (async_task_code, inline) */
    rc = (main->flags & ASYNC__F_RAISE) ? main->r.error->code : 0;
    async__retrieve(main);
    if (deadlocked) rc = ASYNC_EDEADLK;
    async_loop_report_errors(loop);
    return rc;
}

#endif /* ASYNC_IMPLEMENTATION */
