/* The helpers the test files share (test/util.c, compiled once): time and processes, temporary files
 * and captured output, loops of the portable core with an event log, workers and the script of awaits,
 * hosted loops and the thread pool's awaits, sockets, the network layer's awaits, and peer programs. A
 * helper lives here once two test files need it; one file's helpers stay static in that file. */
#ifndef TEST_UTIL_H
#define TEST_UTIL_H

#include "test.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

/* ================================ time, tools, processes ================================ */

/* The monotonic clock, in seconds. */
double now_s(void);

/* Sleeps ms milliseconds of real time (a blocking call, as a careless coroutine would make). */
void sleep_ms(long ms);

/* Whether the test runs under valgrind (make valgrind sets ASYNC_TEST_VALGRIND), AddressSanitizer or
 * ThreadSanitizer. */
bool test_under_valgrind(void);
bool test_under_asan(void);
bool test_under_tsan(void);

/* A fixed pseudo-random sequence (a linear congruential generator): the next 24-bit number after *seed,
 * the same every run for the same seed. */
uint32_t test_rand(uint32_t *seed);

/* Skips the test unless the program `prog` is installed (curl, nc, python3). */
/* Sanitizer reports (a build with them) go to the stderr of now, even while a test holds stderr; the
 * runner and the injection driver call it in each test's process. */
void test_sanitizer_reports_to_stderr(void);
/* Every signal a test may meet back at its default action, none blocked (the runner and the injection
 * driver call it in each test's process, whatever the shell that started them left). */
void test_default_signals(void);
void test_need(const char *prog);

/* A server program run by `sh -c cmd` in a process group of its own, which never outlives the test. */
typedef struct test_server {
    pid_t pid;
    int port; /* read from the first line it prints: the number after its last ':' */
    int out;  /* the read end of its standard output */
} test_server;

/* Starts cmd, which listens on a port it picked and prints it on its first line ("...:PORT..."); fails
 * the test if none comes within 10 s. */
void test_server_start(test_server *s, const char *cmd);

/* Ends the server's process group (SIGTERM) and waits for it. */
void test_server_stop(test_server *s);

/* ================================ files and captured output ================================ */

/* A path in a directory of the test's own (made with mkdtemp on first use, removed with what is in it
 * when the test's process ends); 16 rotating buffers, so a test may hold a few at a time. */
const char *test_path(const char *name);

/* That directory (made if need be). */
const char *test_dir(void);

/* Removes the test's directory now (the next test_path makes a new one). */
void test_rmdir(void);

/* Writes text to path; reads path (up to 255 bytes, into a static buffer). */
void test_write_file(const char *path, const char *text);
char *test_read_file(const char *path);

/* A temporary file to print into, and what was printed into it (64 KiB at most, a static buffer). */
FILE *test_capture(void);
const char *test_captured(FILE *f);
/* Empties a capture. */
void test_capture_clear(FILE *f);

/* Standard error redirected into a temporary file, and back: what was printed (a static buffer). */
void test_capture_stderr(void);
const char *test_release_stderr(void);

/* Runs fn in a child process whose descriptor fd (1 or 2) is a pipe: what it wrote there (up to size - 1
 * bytes, then a '\0') into out, and how it ended into *status (as waitpid gives it). fn returning is exit(0). */
void test_in_child(void (*fn)(void), int fd, char *out, size_t size, int *status);

/* How long a test waits for something that is not what it checks (a peer's answer, a drain, a thread):
 * far longer than a busy machine stalls a process (valgrind on a loaded 2-core machine: tens of ms), and
 * short enough that a run whose fault injection keeps the answer from ever coming still ends, with an
 * error, well inside the injector's 10 s per run (make check-inject-*). */
#define TEST_LONG_MS 3000

/* Open descriptors below 1024: a test that must leak none compares this before and after. */
int test_count_fds(void);

/* ================================ the portable core ================================ */

/* The event log coroutines write to, compared as one string; new_loop empties it. */
extern char trace[4096];
void trace_log(const char *fmt, ...);
#define LOG(...) trace_log(__VA_ARGS__)

/* The loop allocator new_loop installs: realloc with counts, and failures on request. */
extern long loop_allocs;   /* blocks it holds */
extern long alloc_calls;   /* allocations asked for (frees not counted) */
extern long alloc_fail_at; /* the call number (1-based) that fails; 0: none */
extern int alloc_fail_all; /* every allocation fails */
extern long alloc_left;    /* allocations that may still succeed, then every one fails; negative: no limit */
void *counted_realloc(void *p, size_t n);                      /* n == 0 frees; for growing queues */
void *counted_loop_realloc(void *ctx, void *p, size_t n);      /* the same, as a loop allocator */

/* A virtual-clock loop (one static loop, initialised again) whose timer storage grows through
 * counted_realloc, with the counts reset and the trace emptied. */
async_loop *new_loop(void);

/* The loop new_loop hands out, and its time in ms (for the coroutines' time stamps). */
async_loop *the_loop(void);
#define NOW() ((unsigned)async_loop_now(the_loop()))

/* Runs the loop until nothing is scheduled, jumping the virtual clock to each next timer. */
void drain(async_loop *loop);

/* Runs passes and timers up to virtual time `until`, then one pass at `until`. */
void run_until(async_loop *loop, async_ms until);

/* Steps a coroutine by hand, as the loop would (a spurious resume when the task waits). */
async_status step_by_hand(async_task *t);

/* Three errors to raise. */
extern const async_error err_a, err_b, err_c;

/* The coroutines below are declared here with ASYNC_FRAME and defined in util.c with ASYNC_BODY; the
 * functions after each call it with ASYNC_CALL (worker(f, ...) is ASYNC_CALL(worker, f, ...)). */

/* A worker that logs "NAME+ " when it starts, sleeps ms (logging "NAME!CODE " if the sleep raises,
 * which it raises on unless swallow_cancel), raises worker_error if `fail`, logs "NAME- " and returns
 * value. */
ASYNC_FRAME(worker, const char *name; int ms; int value;
            int fail;           /* raise worker_error after the sleep */
            int swallow_cancel; /* catch ECANCELED and finish normally */);

extern const async_error worker_error; /* ASYNC_EUSER + 1, "worker failed" */
async_task *worker(worker_frame *f, const char *name, int ms, int value);

/* Awaits a task (awaiter) or a future (fwait), then logs "NAME=VALUE " or "NAME!CODE ". */
ASYNC_FRAME(awaiter, const char *name; async_task *target; async_future *fut; long got; int code;);

async_task *awaiter(awaiter_frame *f, const char *name, async_task *target);
async_task *fwait(awaiter_frame *f, const char *name, async_future *fut);

/* A worker that logs nothing: sleeps ms (or waits for `gate`), then raises `fail` or returns value. */
ASYNC_FRAME(sleeper, int ms; intptr_t value;
            async_event *gate;                 /* wait for this event instead of sleeping */
            const async_error *fail;
            int swallow_cancel;                /* catch ECANCELED and finish normally */
            int after_cancel_ms;               /* when swallowing: sleep this long afterwards */
            const async_error *fail_on_cancel; /* when cancelled: raise this instead */
            int cancelled;                     /* saw ECANCELED */);

async_task *sleeper(sleeper_frame *f, int ms, intptr_t value);

/* A generator's producer: yields 1..n, ms apart (0: no sleep); its cleanup (a finally block) may sleep,
 * yield once more or fail. */
ASYNC_FRAME(producer, int n, ms; int i;
            int cleanup_ms;                   /* the finally block sleeps this long */
            int yield_in_cleanup;             /* the finally block yields once more (ignores the close) */
            const async_error *cleanup_error; /* the finally block raises this */
            int cleaned;                      /* times the finally block ran */
            int cleanup_code;                 /* what the yield in the finally block raised */);

async_task *producer(producer_frame *f, int n, int ms);

/* ---- the script: one coroutine for every kind of await, a list of steps, each in its own try ---- */

enum {
    OP_SLEEP = 1, OP_AWAIT, OP_FUTURE, OP_GATHER, OP_GATHER_ARRAY, OP_GROUP, OP_SPAWN, OP_TIMEOUT, OP_SHIELD,
    OP_LOCK, OP_UNLOCK, OP_EVENT, OP_COND, OP_SEM, OP_QPUT, OP_QGET, OP_QJOIN, OP_NEXT, OP_GEN_THROW,
    OP_GEN_CLOSE, OP_YIELD_VALUE, OP_THROW_NULL, OP_GROUP_SPAWN_API, OP_NOTIFY
};

#define SCRIPT_STEPS 16

typedef struct {
    int op;
    int self_cancel;     /* async_cancel(t) just before the await: a cancellation already pending */
    void *a;             /* the object awaited: task, future, group, timeout, lock, ..., generator */
    async_task *c0, *c1; /* children (gather, spawn, timeout, shield, producer) */
    size_t n, stride;    /* gather over an array; OP_NOTIFY: how many */
    int32_t ms;
    intptr_t item;       /* put; yield */
    intptr_t *out;       /* get; next */
    const async_error *err;
} script_step;

typedef struct {
    async_task task;
    script_step s[SCRIPT_STEPS];
    int nsteps, i;
    int code[SCRIPT_STEPS];    /* 0 or the error the step raised */
    int reached[SCRIPT_STEPS]; /* the step's await returned normally */
    int held[SCRIPT_STEPS];    /* OP_COND: the condition's lock was held by this task right after the await */
    int rc[SCRIPT_STEPS];      /* the return of a plain call (OP_UNLOCK, OP_NOTIFY, OP_GROUP_SPAWN_API) */
    async_ms at[SCRIPT_STEPS]; /* the loop's time when the step ended */
    intptr_t got;              /* a default place for values */
} script_frame;

/* The lines of util.c between which script_run's awaits are (for async_task_where). */
extern const unsigned script_first_line, script_last_line;

/* Prepares a script with no steps; script_add adds one; script_one prepares a script of one step. */
async_task *script_init(script_frame *f);
script_step *script_add(script_frame *f, int op, void *a);
script_step *script_one(script_frame *f, int op, void *a);

/* ================================ hosted loops and the thread pool ================================ */

/* A hosted loop (libev) on the virtual clock. */
async_loop *new_hosted_loop(void);

/* Runs main on a new hosted loop with the real clock (run_real) or the virtual one (run_virtual), frees
 * the loop, and returns async_run's result. */
int run_real(async_task *main);
int run_virtual(async_task *main);

/* ---- one await of the thread pool (to_thread or a file call), with the error it raised caught ---- */

enum { POOL_TO_THREAD = 1, POOL_READ_ALL, POOL_WRITE_ALL, POOL_OPEN, POOL_READ, POOL_WRITE, POOL_CLOSE };

typedef struct {
    async_task task;
    int op;
    bool cancel_first; /* cancels itself just before the await: a cancellation pending at its start */
    async_thread_call call, *callp;
    /* to_thread */
    async_thread_fn fn;
    intptr_t arg;
    async_thread_dtor dtor;
    /* files */
    const char *path, *how;
    const void *data; /* write_all, write */
    size_t len;
    unsigned mode;
    void *buf; /* read */
    size_t cap, nread, *nreadp;
    async_file *file, **filep; /* read, write, close: the file; open: where the new one goes */
    char *all, **allp;         /* read_all */
    size_t all_len, *all_lenp;
    /* outcome */
    bool reached; /* the line after the await ran */
    intptr_t result;
    int code;
} pool_op_frame;

/* Calls of pool_count that ran (atomically: pool threads run them); pool_count returns its argument. */
extern int pool_runs;
int pool_count(void *arg, intptr_t *result);

/* A fresh frame for `op` with every pointer argument aimed at the frame's own fields (to_thread calls
 * pool_count). */
pool_op_frame *pool_op(pool_op_frame *f, int op);

/* Runs the await as the loop's main task; the code it raised (0: none). */
int pool_go(async_loop *loop, pool_op_frame *f);

/* Opens path with `how` on loop (the test fails if it cannot); closes a file: the code it raised. */
async_file *pool_open(async_loop *loop, const char *path, const char *how);
int pool_close(async_loop *loop, async_file *file);

/* ================================ sockets ================================ */

/* A listening socket on a free port of 127.0.0.1 that never accepts unless the test does. */
int test_listen_raw(int backlog, int *port);

/* A port of 127.0.0.1 that refuses connections: bound and never listening, held until the process
 * ends, so that no other test can take it meanwhile. */
int test_refused_port(void);

/* Two connected TCP sockets on 127.0.0.1 (blocking; a stream made from one turns it non-blocking). */
void test_tcp_pair(int fds[2]);

/* A blocking TCP connection to 127.0.0.1:port with a receive buffer of rcvbuf bytes (0: the default),
 * or -1. */
int test_connect(int port, int rcvbuf);

/* Makes the next close() of fd send a reset instead of a FIN. */
void test_linger0(int fd);

/* Whether fd is an open descriptor. */
bool net_fd_is_open(int fd);

/* Lowers the soft limit of descriptors so that the next one cannot be had; returns the old limit. */
struct rlimit net_no_more_fds(void);

/* Caps the address space `margin` bytes above what the process maps now: small allocations still fit,
 * a thread's stack does not. False (nothing changed) under sanitizers and valgrind, which manage memory
 * their own way, or if the limit cannot be set; *old gets the old limit. */
bool net_cap_address_space(size_t margin, struct rlimit *old);

/* ================================ the network layer's awaits ================================ */

/* An echo server's connection: echoes what it reads until the end of the stream; "RESET" makes it close
 * with a reset, "QUIT" makes it close. For async_server_listen: sizeof(echo_frame), echo_new. */
ASYNC_FRAME(echo, async_stream *s; char buf[256]; size_t n;);

async_task *echo_new(void *frame, async_stream *s, void *arg);

/* ---- one operation in a task of its own: what it raised is recorded, never passed on ---- */

enum { NET_READ, NET_EXACTLY, NET_LINE, NET_FILL, NET_DRAIN, NET_CONNECT, NET_READABLE, NET_WRITABLE, NET_IO_RAW };

typedef struct {
    async_task task;
    int op;
    async_stream *s;
    async_io *io;      /* fd waits */
    async_io own_io;   /* the default io */
    int fd;
    unsigned events;   /* NET_IO_RAW: async__io_start's events argument as given */
    const char *host;  /* NET_CONNECT */
    int port;
    void *buf;
    size_t n, limit;
    size_t *out;
    const char **line;
    int32_t ms;
    bool cancel_first; /* the task cancels itself first: the cancellation meets the operation's start */
    int code;          /* what the operation raised, 0 if it succeeded */
    size_t got;        /* the default *out */
    const char *ln;    /* the default *line */
    char mem[64];      /* the default buf */
} net_op_frame;

/* Prepares f to run `op` on s with roomy defaults (its own buffer, out and line, a 1 s deadline). */
net_op_frame *net_op(net_op_frame *f, int op, async_stream *s);
net_op_frame *net_connect_op(net_op_frame *f, async_stream *s, const char *host, int port, int32_t ms);
net_op_frame *net_wait_op(net_op_frame *f, int op, async_io *io, int fd, int32_t ms);

/* Runs f on a new real-clock loop of its own; the code the operation raised (0: it succeeded). */
int net_do(net_op_frame *f);

/* Two operations at once: a starts, then b (if with_b), then `between` runs once both have had their
 * first step (after pause_ms; 0: one yield), and the group waits for both. */
typedef struct net_duo net_duo;
struct net_duo {
    async_task task;
    async_group g;
    net_op_frame a, b;
    bool with_b;
    int32_t pause_ms;
    void (*between)(net_duo *d);
    async_stream *s;
    int fd;
};

net_duo *net_duo_init(net_duo *d, void (*between)(net_duo *d), int32_t pause_ms);
void net_between_close(net_duo *d);    /* closes d->s */
void net_between_cancel_a(net_duo *d); /* cancels a */
void net_between_write_fd(net_duo *d); /* writes "data\n" to d->fd */

#endif
