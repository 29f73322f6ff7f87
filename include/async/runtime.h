/* async/runtime.h: the hosted runtime of async.h: loops on libev or io_uring with real time, async_main, frame
 * memory, debug mode, POSIX signals, the thread pool (to_thread) and files.
 *
 * PROVIDED BY libasync.a (make; link with -lasync -lev -luring -lpthread, or `pkg-config --libs async`), not by
 * ASYNC_IMPLEMENTATION: a freestanding build never sees these declarations. async.h includes this header
 * on hosted builds, so a program includes async.h alone. */
#ifndef ASYNC_RUNTIME_H_INCLUDED
#define ASYNC_RUNTIME_H_INCLUDED

#include "async.h"

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ev_loop;

/** Flags of async_loop_new. */
enum {
    ASYNC_LOOP_VIRTUAL_CLOCK = 1, /**< time jumps to the next timer when nothing is ready (tests) */
    ASYNC_LOOP_IO_URING = 2,      /**< the io_uring backend (Linux), whatever ASYNC_BACKEND says */
    ASYNC_LOOP_LIBEV = 4          /**< the libev backend, whatever ASYNC_BACKEND says */
};

/** Creates a loop with the monotonic clock, a growing timer heap, and errors that no one retrieved
 *  printed to stderr. With the environment variable ASYNC_CLOCK=virtual, or the flag
 *  ASYNC_LOOP_VIRTUAL_CLOCK, it uses the virtual clock instead (always on libev). With ASYNC_SIM=seed it
 *  is a simulated loop of that seed (async/sim.h: async_sim_new with async_sim_defaults(seed)).
 *
 *  Its backend: libev by default; io_uring with the flag ASYNC_LOOP_IO_URING or the environment's
 *  ASYNC_BACKEND=io_uring (a flag wins over the environment; ASYNC_BACKEND=libev, or the flag
 *  ASYNC_LOOP_LIBEV, asks for libev). Where the kernel or a sandbox refuses io_uring (too old, seccomp,
 *  kernel.io_uring_disabled), the loop is on libev and one line on stderr says why ("async.h: io_uring
 *  unavailable (Operation not permitted); using libev"); an ASYNC_BACKEND that names no backend is
 *  said so on stderr too, and libev is used. async_loop_backend_name tells which one runs.
 *  NULL if out of memory, or with both ASYNC_LOOP_IO_URING and ASYNC_LOOP_LIBEV. */
ASYNC_API async_loop *async_loop_new(unsigned flags);
/** The name of the backend under a loop of the runtime: "libev", "libev-virtual" (the virtual clock)
 *  or "io_uring"; NULL for a loop that is not the runtime's (async_loop_init'ed by hand) or NULL. */
ASYNC_API const char *async_loop_backend_name(const async_loop *loop);
/** Creates a loop driven by an ev_loop the application already runs (it keeps calling ev_run): ready
 *  tasks run in one ev_prepare callback per iteration and one ev_timer serves every sleeper.
 *  NULL if out of memory or ev is NULL. */
ASYNC_API async_loop *async_loop_attach(struct ev_loop *ev);
/** The libev loop under `loop`, or NULL if loop is not a hosted loop on libev: one async_loop_init'ed
 *  by hand, or one on io_uring (ASYNC_LOOP_IO_URING), which has no libev loop under it. */
ASYNC_API struct ev_loop *async_loop_ev(async_loop *loop);
/** Frees a loop made by async_loop_new or async_loop_attach, in this order: debug mode's report of tasks
 *  never started, the unretrieved errors, then what the runtime attached to the loop (remote doors, which
 *  run their queued calls first; the calls on threads and name lookups in flight, waited for; files
 *  left open, closed), then the backend. The tasks' frames are the caller's; tasks still scheduled are
 *  simply never run again. NULL, and a loop not made by the runtime, are ignored. */
ASYNC_API void async_loop_free(async_loop *loop);
/** Zeroed memory for `count` frames of `size` bytes (a pool for many tasks: index it as an array), with
 *  its pages mapped up front (one mmap with MAP_POPULATE from 1 MiB on, instead of a page fault per 4 KB
 *  on first touch). NULL if count or size is 0, the product overflows, or memory is short. */
ASYNC_API void *async_frame_array_new(size_t count, size_t size);
/** Frees a pool from async_frame_array_new (the same count and size). NULL is ignored. */
ASYNC_API void async_frame_array_free(void *frames, size_t count, size_t size);
/* ---- Debug mode ---- */

/** Debug mode on or off (async_loop_new turns it on when the environment has ASYNC_DEBUG=1): a step
 *  that blocks the loop longer than the slow-step threshold (100 ms) is reported with the coroutine, the
 *  file:line where it resumed and where it next suspended; async_loop_dump lists every live task; tasks
 *  never started are reported when the loop is freed. Reports go to stderr (async_loop_set_debug_output).
 *  ASYNC_ENOMEM, ASYNC_EINVAL for NULL, ASYNC_EBUSY if other hooks are installed on the loop. */
ASYNC_API int async_loop_set_debug(async_loop *loop, bool on);
/** True while loop is in debug mode. */
ASYNC_API bool async_loop_debug(const async_loop *loop);
/** The slow-step threshold in ms (debug mode only; 0 reports every step, one past any step's length
 *  none). */
ASYNC_API void async_loop_set_slow_step(async_loop *loop, uint64_t ms);
/** Where debug reports go (NULL: stderr). */
ASYNC_API void async_loop_set_debug_output(async_loop *loop, FILE *out);
/** Prints every live task as a tree — spawned tasks, their group children, and the coroutines each
 *  awaits inline — each with its function, file:line and state: the await chain of stackless code.
 *  Debug mode only (otherwise one line says so). out NULL: stderr. */
ASYNC_API void async_loop_dump(async_loop *loop, FILE *out);
/** Debug mode: SIGQUIT (kill -QUIT) prints async_loop_dump to the debug output. ASYNC_EINVAL if debug mode is
 *  off, ASYNC_ENOTSUP on a loop without the hosted runtime, ASYNC_EBUSY if another loop of the process
 *  watches SIGQUIT (a signal goes to one loop). */
ASYNC_API int async_loop_dump_on_sigquit(async_loop *loop);

/* ---- Trace: the task timeline ---- */
/* A loop's timeline as Chrome trace-event JSON, for Perfetto (ui.perfetto.dev: Open trace file) and
 * chrome://tracing: a track per task, named by its coroutine's function and number (or by its name,
 * ASYNC_CONFIG_TASK_NAMES); a slice per step with the file:line it resumed and suspended at; a slice per
 * wait that says what it waited for (sleep, a task, children, a lock/event/condition/semaphore/queue, a
 * future: I/O, thread calls and signals are futures; a yield) and who woke it; arrows from the task
 * whose step woke (or spawned) another to that task's next step; instants for each cancellation asked
 * and each coroutine that ended with an error, with code and message. Times are µs: the monotonic
 * clock from the start of the trace, or on the virtual clock its ms plus 1 ns per event (so that the
 * events of one ms keep their order). Debug mode and a trace may be on together. Writing goes through a
 * 64 KiB buffer: while a trace is on, an event costs about 150-200 ns, some five per hand-over between
 * tasks. */

/** Starts tracing the loop into the file at path (created, or emptied). async_loop_new and async_main
 *  start one when the environment has ASYNC_TRACE=path (one loop of the process at a time: the first
 *  one made while none traces there). The file is complete once async_loop_trace_stop or
 *  async_loop_free ends the trace (a loop of async_loop_init's is never freed by the runtime: stop it).
 *  0; ASYNC_EINVAL (NULL loop or path, or an empty path), ASYNC_EBUSY (a trace runs on the loop already,
 *  or hooks not the runtime's are installed), ASYNC_ENOMEM, or the error of opening the file
 *  (ASYNC_ENOENT, ASYNC_EACCES, ASYNC_EISDIR, ...). */
ASYNC_API int async_loop_trace_start(async_loop *loop, const char *path);
/** Ends the trace (also from inside a step: that step is written as it stands): the JSON is finished
 *  and the file closed. 0; ASYNC_EINVAL (NULL, or no trace runs on the loop); or the first error met
 *  while tracing (a write's: ASYNC_ENOSPC, ASYNC_EIO, ...; ASYNC_ENOMEM when a task could not get a
 *  track: its events are missing); the trace is ended either way. */
ASYNC_API int async_loop_trace_stop(async_loop *loop);
/** True while a trace runs on loop. */
ASYNC_API bool async_loop_tracing(const async_loop *loop);

/* ---- POSIX signals ---- */
/* A signal reaches a hosted loop as asyncio's do: its handler, or the task awaiting it, runs later on
 * the loop's thread, never inside the OS's signal handler, so it may do anything a task or callback
 * may. Deliveries that come before the loop gets to them coalesce (one run for several). A signal
 * belongs to one loop of the process at a time (libev delivers it to one): while a loop watches it,
 * another loop's handler or wait for it fails with ASYNC_EBUSY. The disposition the signal had before
 * (SIG_DFL, SIG_IGN or the application's sigaction) is saved when the loop starts watching it and put
 * back when nothing on the loop listens any more (and when the loop is freed). Not for SIGKILL and
 * SIGSTOP (no one can catch them), nor SIGSEGV, SIGBUS, SIGFPE and SIGILL (a fault must be handled
 * before the faulting instruction runs again, not later): ASYNC_EINVAL. These functions run on the
 * loop's thread. */

/** A signal handler: runs on the loop's thread, once per delivery, with the loop, the signal number and
 *  the arg it was added with. It may remove itself or add other handlers. */
typedef void (*async_sighandler)(async_loop *loop, int signo, void *arg);

/** loop.add_signal_handler(signo, fn, arg): fn runs at each delivery of signo until removed. While it is
 *  set the loop is kept alive (async_run waits for the signal rather than ending a main that waits
 *  with ASYNC_EDEADLK). One handler per signal and loop: a second one is refused with ASYNC_EBUSY
 *  (asyncio replaces the first; remove it first to replace it, so that no part of a program drops
 *  another's handler unknowingly). ASYNC_EINVAL for NULL or a signal that cannot be handled (above),
 *  ASYNC_ENOTSUP on a loop without the hosted runtime, ASYNC_EBUSY also when another loop watches the
 *  signal, ASYNC_ENOMEM. A handler set inside async_main for SIGINT takes Ctrl-C over (see async_main). */
ASYNC_API int async_loop_add_signal_handler(async_loop *loop, int signo, async_sighandler fn, void *arg);
/** loop.remove_signal_handler(signo): 1 if a handler was removed, 0 if none was set (asyncio's True and
 *  False); the signal's old disposition is back at once unless tasks still await it. ASYNC_EINVAL for
 *  NULL or a signal that cannot be handled, ASYNC_ENOTSUP on a loop without the hosted runtime. */
ASYNC_API int async_loop_remove_signal_handler(async_loop *loop, int signo);

/** The state of one AWAIT_SIGNAL, a frame field (zeroed with the frame; reusable for the next wait). */
typedef struct async_sigwait {
    async_future done;                 /* private: completed with the signal number at the delivery */
    struct async_sigwait *next, *prev; /* private: the signal's waiters on the loop, in order */
    void *slot;                        /* private: the loop's record of the signal while listed there */
    async_task *task;                  /* private: the task that waits, until it has resumed */
} async_sigwait;

/** Waits for the next delivery of POSIX signal signo (SIGTERM, SIGHUP, SIGUSR1, ...; not the core's
 *  async_interrupt, which an interrupt raises) on the task's loop; w is the frame's async_sigwait. Every
 *  task waiting for signo is woken by one delivery, in the order they began, together with the
 *  signal's handler if one is set. Keeps the loop alive while it waits. Cancellable (ASYNC_ECANCELED;
 *  the wait is gone at once). Deliveries while no task waits and no handler is set are not kept for
 *  the next wait: a task in a loop around AWAIT_SIGNAL should wait again at once, and for a signal
 *  that must never meet its default action in between, set a handler. Raises ASYNC_EINVAL (NULL w, a
 *  signal that cannot be handled), ASYNC_ENOTSUP (a loop without the hosted runtime), ASYNC_EBUSY
 *  (another task waits on w, or another loop watches the signal), ASYNC_ENOMEM. */
#define AWAIT_SIGNAL(t, w, signo) \
    ASYNC__AWAIT(t, async__sigwait_start((t), (w), (signo)), async__sigwait_check((t), (w)))

/* ---- asyncio.run ---- */

/** asyncio.run(main): a new loop, run main to its end, free the loop: async_main_with(main, NULL). */
ASYNC_API int async_main(async_task *main);

/** A field of async_main_options that is on, off, or left to the environment (0). */
enum {
    ASYNC_OPTION_OFF = -1,
    ASYNC_OPTION_ENV = 0,
    ASYNC_OPTION_ON = 1 /**< true is ASYNC_OPTION_ON too */
};

/** async_main_with's options. Zero-initialise, then set what the program decides itself: a field left
 *  0 takes its environment variable; a field that is set wins over the environment (as asyncio.run's
 *  debug argument wins over PYTHONASYNCIODEBUG). In C: async_main_with(main, &(async_main_options){
 *  .virtual_clock = true, .threads = 8}); in C++ (no designated initializers before C++20):
 *  async_main_options o = {}; o.threads = 8; async_main_with(main, &o). */
typedef struct async_main_options {
    int virtual_clock; /**< ASYNC_OPTION_ON: the virtual clock; _OFF: the real one; 0: ASYNC_CLOCK=virtual decides */
    int debug;         /**< ASYNC_OPTION_ON: debug mode with its SIGQUIT dump; _OFF: none; 0: ASYNC_DEBUG decides */
    unsigned threads;  /**< the loop's own thread pool, 1..ASYNC_THREAD_POOL_MAX; 0: ASYNC_THREADS or 4 */
} async_main_options;

/** asyncio.run(main, debug=...): makes a loop as the options and the environment say, runs main to its
 *  end, frees the loop. Returns main's code: 0, or its error, which is printed to stderr ("async: main
 *  failed: ..."). With the virtual clock the elapsed virtual time is printed to stderr ("async: virtual
 *  time N ms"). opts NULL: every field from the environment. Fails before running main with
 *  ASYNC_EINVAL (a field out of range; printed) or ASYNC_ENOMEM.
 *
 *  Ctrl-C: while main runs, SIGINT cancels main (asyncio.run's way), so its finally blocks run. If main
 *  handles the cancellation and ends normally, async_main returns 0 and reports nothing; if it ends
 *  cancelled, "async: interrupted" is printed (not "main failed") and it returns ASYNC_ECANCELED (see
 *  async_main_exit). A second SIGINT while main still unwinds has SIGINT's default action: the process
 *  ends, as asyncio's second Ctrl-C does. This happens only where SIGINT has its default action when
 *  async_main starts (a program that ignores SIGINT or handles it itself keeps its way) and no other
 *  loop watches it; a handler for SIGINT on main's loop, or a task awaiting SIGINT there, takes Ctrl-C
 *  over while it is set. SIGINT's disposition is restored when async_main returns. */
ASYNC_API int async_main_with(async_task *main, const async_main_options *opts);

/** The exit status for a program's main() after async_main returned rc (return async_main_exit(
 *  async_main(task));): 0 for 0, 1 for an error; and when the last async_main of the process ended
 *  because of Ctrl-C (it printed "async: interrupted"), it ends the process by SIGINT with its default
 *  action instead, after flushing stdio, so that the shell (or make, or a script's loop) sees an
 *  interrupted program (status 130), as Python does for an unhandled KeyboardInterrupt; if SIGINT is
 *  blocked, it returns 130. */
ASYNC_API int async_main_exit(int rc);

/* ---- Threads and files ---- */
/* asyncio.to_thread and aiofiles: a plain C function runs on a pthread pool while the loop goes on; its
 * completion comes back to the loop thread through one wake-up of the loop (libev: an ev_async).
 * Awaiting it is like any await: an error is raised at the await (ASYNC_CATCH sees it), and cancelling
 * or timing out the awaiter never stops the thread: the call runs to its end and its result goes to the
 * call's dtor. Every job record is allocated by the runtime (through the loop's allocator: failure is
 * ASYNC_ENOMEM at the await), never in the awaiting frame, so a cancelled awaiter's frame may go away
 * while the thread still runs. The calls a pass of the loop starts reach the pool together, when the
 * pass is over. Under the virtual clock, thread work takes no virtual time: while a call is in flight
 * the loop blocks for its completion instead of jumping to the next timer (so a timeout around a call
 * does not fire there). async_loop_free waits for the loop's calls still in flight (a call that never
 * returns blocks it) and passes the results no one received to their dtors. Pool threads block every
 * signal. */

/** A pool of threads that run blocking calls. Many loops may share one (async_loop_set_thread_pool); a loop
 *  with none set makes its own on first use (see async_loop_set_threads). */
typedef struct async_thread_pool async_thread_pool;
/** The most threads a pool may have. */
#define ASYNC_THREAD_POOL_MAX 1024u
/** Threads of a loop's own pool when neither async_loop_set_threads nor the environment variable
 *  ASYNC_THREADS (1..ASYNC_THREAD_POOL_MAX) says otherwise. */
#define ASYNC_THREAD_POOL_DEFAULT 4u

/** Runs on a pool thread: does the blocking work on arg, stores its result, and returns 0 or an error
 *  code (a negated errno such as ASYNC_EIO, or an application code >= ASYNC_EUSER). *result starts 0. */
typedef int (*async_thread_fn)(void *arg, intptr_t *result);
/** Called on the loop thread, exactly once, for a call whose outcome no one receives (its awaiter was
 *  cancelled or timed out, or the loop was freed first), whatever fn returned: frees the result (and arg,
 *  if it was allocated for the call). May be NULL when there is nothing to free. */
typedef void (*async_thread_dtor)(intptr_t result, void *arg);

typedef struct async__job async__job;

/** The state of one awaited call, a frame field (zeroed with the frame; reusable for the next call). */
typedef struct async_thread_call {
    async__job *job;   /* private: the runtime's record while the call is awaited */
    intptr_t result;   /* private: see async_thread_call_result */
    async_error error; /* private: the record raised for a code the library does not know */
} async_thread_call;

/** A pool of `threads` threads (1..ASYNC_THREAD_POOL_MAX), all started now; calls run in FIFO order.
 *  NULL if threads is out of range or memory or threads are short. */
ASYNC_API async_thread_pool *async_thread_pool_new(unsigned threads);
/** Stops and joins the pool's threads and frees it. ASYNC_EBUSY (nothing done) while a loop still uses
 *  it: free those loops, or give them another pool, first. NULL is ignored (0). */
ASYNC_API int async_thread_pool_free(async_thread_pool *pool);
/** Makes the loop run its calls on `pool`, shared with other loops (on other threads too); NULL: on a
 *  pool of its own again. The loop's own pool, if it had one, is stopped. ASYNC_EBUSY while the loop has
 *  calls in flight, ASYNC_EINVAL for a NULL or non-hosted loop, ASYNC_ENOMEM if the loop's thread state
 *  cannot be allocated. */
ASYNC_API int async_loop_set_thread_pool(async_loop *loop, async_thread_pool *pool);
/** The size of the loop's own pool (made on its first call; ASYNC_THREADS or 4 by default; an existing
 *  one of another size is stopped and made again). ASYNC_EINVAL for 0, more than ASYNC_THREAD_POOL_MAX,
 *  or a NULL or non-hosted loop; ASYNC_EBUSY while calls are in flight. */
ASYNC_API int async_loop_set_threads(async_loop *loop, unsigned threads);
/** The loop's calls in flight: started and not yet back on the loop thread (0 for NULL). */
ASYNC_API unsigned async_loop_jobs(async_loop *loop);

/** result = await asyncio.to_thread(fn, arg): runs fn(arg, &result) on the loop's pool and waits for it.
 *  fn's error is raised here (a code the library does not list is raised as a record inside `call`,
 *  valid while the frame is); its result is then async_thread_call_result(call). `call` is a frame field
 *  (async_thread_call *); arg is passed as is, so what it points to must stay valid until fn returns,
 *  even if the awaiter is cancelled: not in the awaiting frame unless that frame outlives the call.
 *  dtor receives results no one awaits any more. Fails with ASYNC_EINVAL (NULL fn or call),
 *  ASYNC_ENOMEM, ASYNC_ENOTSUP (a loop without the hosted runtime), ASYNC_EAGAIN (the loop's own pool
 *  could not start its threads). A cancellation pending at the start never runs fn. */
#define AWAIT_TO_THREAD(t, call, fn, arg, dtor) \
    ASYNC__AWAIT(t, async__thread_start((t), (call), (fn), (arg), (dtor)), async__thread_check((t), (call)))
/** The result the call's function stored (0 before it succeeded). */
ASYNC_API intptr_t async_thread_call_result(const async_thread_call *call);

/** An open file (aiofiles' file object), from AWAIT_FILE_OPEN, closed by AWAIT_FILE_CLOSE. It belongs to
 *  the loop that opened it; files left open are closed when that loop is freed. */
typedef struct async_file async_file;

/* File calls run on the loop's pool like to_thread. Errors are the failing system call's errno as the
 * library's code (ASYNC_ENOENT, ASYNC_EACCES, ASYNC_EISDIR, ASYNC_ENOSPC, ...; ASYNC_EIO for an errno
 * the table does not have), raised at the await; they fail like to_thread too. Buffers are
 * copied through memory of the call's own, so the pool never touches the awaiting frame: a cancelled
 * read or write may still happen, but not into or from memory that may be gone. The arguments are
 * evaluated again when the await resumes: use frame fields (as for every await). */

/** content = await read(path): the whole file into a malloc'd buffer, NUL-terminated for convenience,
 *  that the caller frees: *data (char **) and *len (size_t *, bytes without the NUL). */
#define AWAIT_FILE_READ_ALL(t, call, path, data, len)                                             \
    ASYNC__AWAIT(t, async__file_read_all_start((t), (call), (path), (data)),                       \
                 async__file_read_all_check((t), (call), (data), (len)))
/** await write(path, data): creates or truncates path (permission bits `mode`, e.g. 0644, less the
 *  umask) and writes len bytes of data (copied at the start). */
#define AWAIT_FILE_WRITE_ALL(t, call, path, data, len, mode)                                      \
    ASYNC__AWAIT(t, async__file_write_all_start((t), (call), (path), (data), (len), (mode)),       \
                 async__thread_check((t), (call)))
/** file = await aiofiles.open(path, how): how is fopen's mode, "r", "w", "a", "r+", "w+", "a+", with
 *  an optional "x" (fail if it exists) and "b" (ignored); created files get permissions 0666 less the
 *  umask. *file (async_file **) is set on success. ASYNC_EINVAL for another mode. */
#define AWAIT_FILE_OPEN(t, call, file, path, how)                                                 \
    ASYNC__AWAIT(t, async__file_open_start((t), (call), (path), (how)),                            \
                 async__file_open_check((t), (call), (file)))
/** await file.read(cap): reads up to cap bytes into buf; *nread (size_t *) is how many, 0 at the end
 *  of the file. On an io_uring loop an open file's reads and writes are done by the kernel (io_uring)
 *  instead of a pool thread, with the same semantics (the file's position; a cancelled read still
 *  happens, and its bytes are dropped). */
#define AWAIT_FILE_READ(t, call, file, buf, cap, nread)                                           \
    ASYNC__AWAIT(t, async__file_read_start((t), (call), (file), (buf), (cap)),                     \
                 async__file_read_check((t), (call), (buf), (cap), (nread)))
/** os.pread(fd, cap, offset): reads up to cap bytes at `offset` (int64_t, from the file's start) into buf,
 *  without moving the file's position (reads at different offsets may be in flight together); *nread is
 *  how many, 0 at or past the end. A negative offset is ASYNC_EINVAL, one whose range would pass the
 *  largest file offset ASYNC_EOVERFLOW. On io_uring the kernel reads it natively, elsewhere a pool
 *  thread calls pread. */
#define AWAIT_FILE_READ_AT(t, call, file, buf, cap, offset, nread)                                \
    ASYNC__AWAIT(t, async__file_read_at_start((t), (call), (file), (buf), (cap), (offset)),        \
                 async__file_read_check((t), (call), (buf), (cap), (nread)))
/** await file.write(data): writes all len bytes of data (copied at the start). */
#define AWAIT_FILE_WRITE(t, call, file, data, len)                                                \
    ASYNC__AWAIT(t, async__file_write_start((t), (call), (file), (data), (len)),                   \
                 async__thread_check((t), (call)))
/** await file.close(): closes and frees the file once the calls on it in flight have ended (the file
 *  is unusable from the start of the await on, even if the awaiter is cancelled); raises close's error.
 *  NULL is ASYNC_EINVAL; a file already being closed is ASYNC_EBADF. */
#define AWAIT_FILE_CLOSE(t, call, file) \
    ASYNC__AWAIT(t, async__file_close_start((t), (call), (file)), async__thread_check((t), (call)))

/* private helpers used by the macros */
ASYNC_API int async__sigwait_start(async_task *t, async_sigwait *w, int signo);
ASYNC_API int async__sigwait_check(async_task *t, async_sigwait *w);
ASYNC_API int async__thread_start(async_task *t, async_thread_call *call, async_thread_fn fn, void *arg,
                                  async_thread_dtor dtor);
ASYNC_API int async__thread_check(async_task *t, async_thread_call *call);
ASYNC_API int async__file_read_all_start(async_task *t, async_thread_call *call, const char *path, char **data);
ASYNC_API int async__file_read_all_check(async_task *t, async_thread_call *call, char **data, size_t *len);
ASYNC_API int async__file_write_all_start(async_task *t, async_thread_call *call, const char *path,
                                          const void *data, size_t len, unsigned mode);
ASYNC_API int async__file_open_start(async_task *t, async_thread_call *call, const char *path, const char *how);
ASYNC_API int async__file_open_check(async_task *t, async_thread_call *call, async_file **file);
ASYNC_API int async__file_read_start(async_task *t, async_thread_call *call, async_file *file, void *buf,
                                     size_t cap);
ASYNC_API int async__file_read_check(async_task *t, async_thread_call *call, void *buf, size_t cap,
                                     size_t *nread);
ASYNC_API int async__file_read_at_start(async_task *t, async_thread_call *call, async_file *file, void *buf,
                                        size_t cap, int64_t offset);
ASYNC_API int async__file_write_start(async_task *t, async_thread_call *call, async_file *file,
                                      const void *data, size_t len);
ASYNC_API int async__file_close_start(async_task *t, async_thread_call *call, async_file *file);

#ifdef __cplusplus
}
#endif

#endif /* ASYNC_RUNTIME_H_INCLUDED */
