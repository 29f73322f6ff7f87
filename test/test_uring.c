/* The io_uring backend (src/backend_uring.c) and the choice of a loop's backend: by async_loop_new's
 * flags and ASYNC_BACKEND (a flag wins), its name, the fallback to libev with one line that says why
 * when the kernel refuses io_uring (a seccomp filter takes io_uring_setup away, as a container's
 * does), an ASYNC_BACKEND that names no backend; and the backend's own requests: deadlines, a wait
 * stopped and its descriptor closed and its number reused, a signal that belongs to one loop whatever
 * its backend, calls from other threads. The network, file and HTTP suites run on it too (make
 * check-uring). Where the machine refuses io_uring, the tests that need it skip. */
#define _GNU_SOURCE /* syscall numbers for the seccomp filter */
#include "test.h"
#include "util.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

/* A loop on io_uring, or a skip where the machine refuses it (the fallback's line is kept quiet). */
static async_loop *uring_loop(void) {
    async_loop *loop;
    test_capture_stderr();
    loop = async_loop_new(ASYNC_LOOP_IO_URING);
    test_release_stderr();
    ASSERT(loop != NULL);
    if (strcmp(async_loop_backend_name(loop), "io_uring") != 0) {
        async_loop_free(loop);
        test_skip("io_uring is refused on this machine");
    }
    return loop;
}

/* memcheck takes the bytes the kernel writes through the ring (native receives and reads) for
 * uninitialised: the tests that read them skip under valgrind. */
static void skip_under_memcheck(void) {
    if (test_under_valgrind()) test_skip("valgrind does not see what the kernel writes through io_uring");
}

/* valgrind (3.19) keeps its lock through io_uring_enter: no other thread runs while the loop waits, so
 * a call on a pool thread (a file's open and close are) never comes back. */
static void skip_threads_under_valgrind(void) {
    if (test_under_valgrind()) test_skip("valgrind runs no other thread while io_uring_enter blocks");
}

static int uring_run(async_task *main) {
    async_loop *loop = uring_loop();
    int rc = async_run(loop, main);
    async_loop_free(loop);
    return rc;
}

/* ---- the choice ---- */

ASYNC_DEF(ur_nap, int ms;) {
    AWAIT_SLEEP(t, f->ms);
} ASYNC_END_DEF


/* async_loop_new(flags) with ASYNC_BACKEND=env (NULL: unset) is on the backend named `name`, and runs;
 * returns what it said on stderr. */
static const char *expect_backend(const char *env, unsigned flags, const char *name) {
    static ur_nap_frame nap;
    async_loop *loop;
    const char *out;
    if (env)
        setenv("ASYNC_BACKEND", env, 1);
    else
        unsetenv("ASYNC_BACKEND");
    test_capture_stderr();
    loop = async_loop_new(flags);
    out = test_release_stderr();
    unsetenv("ASYNC_BACKEND");
    ASSERT(loop != NULL);
    ASSERT_STR_EQ(async_loop_backend_name(loop), name);
    /* a libev loop under it on libev alone */
    ASSERT((async_loop_ev(loop) != NULL) == (strncmp(name, "libev", 5) == 0));
    ASSERT_EQ(async_run(loop, ASYNC_CALL(ur_nap, &nap, 1)), 0);
    async_loop_free(loop);
    return out;
}

TEST(uring_flags_and_environment_choose_the_backend) {
    async_loop_free(uring_loop()); /* or skip */
    expect_backend(NULL, ASYNC_LOOP_IO_URING, "io_uring");
    expect_backend(NULL, 0, "libev"); /* the default */
    expect_backend(NULL, ASYNC_LOOP_LIBEV, "libev");
    /* the environment, and a flag that wins over it */
    expect_backend("io_uring", 0, "io_uring");
    expect_backend("io_uring", ASYNC_LOOP_LIBEV, "libev");
    expect_backend("libev", 0, "libev");
    expect_backend("libev", ASYNC_LOOP_IO_URING, "io_uring");
    /* the virtual clock is libev's whatever the backend asked for */
    expect_backend("io_uring", ASYNC_LOOP_VIRTUAL_CLOCK, "libev-virtual");
    expect_backend(NULL, ASYNC_LOOP_VIRTUAL_CLOCK | ASYNC_LOOP_IO_URING, "libev-virtual");
    /* two backends at once is no loop */
    ASSERT(async_loop_new(ASYNC_LOOP_IO_URING | ASYNC_LOOP_LIBEV) == NULL);
}

TEST(uring_backend_name_of_loops_that_are_not_the_runtimes) {
    static async_loop plain;
    async_loop_init(&plain);
    ASSERT(async_loop_backend_name(&plain) == NULL);
    ASSERT(async_loop_backend_name(NULL) == NULL);
}

TEST(uring_unknown_backend_is_said_and_libev_runs) {
    ASSERT_STR_EQ(expect_backend("kqueue", 0, "libev"),
                  "async.h: ASYNC_BACKEND=kqueue is no backend (io_uring or libev); using libev\n");
    /* empty is unset (how a shell script unsets a variable for one command): nothing said */
    ASSERT_STR_EQ(expect_backend("", 0, "libev"), "");
    ASSERT_STR_EQ(expect_backend(NULL, 0, "libev"), "");
}

/* Takes io_uring_setup away from this process (the test's own), answering EPERM, as a container's
 * seccomp profile does. */
static void without_io_uring(void) {
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog;
    prog.len = (unsigned short)(sizeof code / sizeof code[0]);
    prog.filter = code;
    ASSERT(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0);
    ASSERT(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0);
    ASSERT(syscall(SYS_io_uring_setup, 1, NULL) == -1 && errno == EPERM);
}

TEST(uring_refused_falls_back_to_libev_with_the_reason) {
    if (test_under_valgrind()) test_skip("valgrind does not run seccomp filters");
    without_io_uring();
    ASSERT_STR_EQ(expect_backend(NULL, ASYNC_LOOP_IO_URING, "libev"),
                  "async.h: io_uring unavailable (Operation not permitted); using libev\n");
    /* the environment's choice falls back the same way */
    ASSERT_STR_EQ(expect_backend("io_uring", 0, "libev"),
                  "async.h: io_uring unavailable (Operation not permitted); using libev\n");
}

/* ---- requests on the ring ---- */

ASYNC_DEF(ur_wait, int fd; int32_t ms; async_io io; unsigned events;) {
    AWAIT_READABLE(t, &f->io, f->fd, f->ms);
    f->events = async_io_events(&f->io);
} ASYNC_END_DEF

TEST(uring_wait_is_ready_or_meets_its_deadline) {
    static ur_wait_frame w;
    static ur_nap_frame nap;
    int sv[2];
    double t0;
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    t0 = now_s();
    ASSERT_EQ(uring_run(ASYNC_CALL(ur_wait, &w, sv[0], 30)), ASYNC_ETIMEDOUT);
    ASSERT(now_s() - t0 >= 0.029);
    ASSERT_EQ(write(sv[1], "x", 1), 1);
    ASSERT_EQ(uring_run(ASYNC_CALL(ur_wait, &w, sv[0], TEST_LONG_MS)), 0);
    ASSERT_EQ(w.events, ASYNC_IO_READ);
    close(sv[1]); /* a hang-up is readable */
    ASSERT_EQ(uring_run(ASYNC_CALL(ur_wait, &w, sv[0], TEST_LONG_MS)), 0);
    ASSERT_EQ(w.events, ASYNC_IO_READ);
    close(sv[0]);
    /* a number that is no descriptor */
    ASSERT_EQ(uring_run(ASYNC_CALL(ur_wait, &w, sv[0], TEST_LONG_MS)), ASYNC_EBADF);
    t0 = now_s();
    ASSERT_EQ(uring_run(ASYNC_CALL(ur_nap, &nap, 20)), 0);
    ASSERT(now_s() - t0 >= 0.019);
}

/* A wait cancelled mid-flight: its request is stopped (the kernel's poll cancelled), the descriptor
 * closed, and a new socket that gets the same number is waited on by the same frame. */
ASYNC_DEF(ur_cancel_reuse, int fd; int peer; int got; ur_wait_frame waiter; async_group g;) {
    ASYNC_SPAWN(t, &f->g, ASYNC_CALL(ur_wait, &f->waiter, f->fd, -1));
    AWAIT_SLEEP(t, 5);
    async_cancel(&f->waiter.task);
    AWAIT_GROUP(t, &f->g);
    close(f->fd);
    close(f->peer);
    {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) ASYNC_THROW(t, ASYNC_EIO, "socketpair");
        f->got = sv[0];
        f->peer = sv[1];
    }
    if (write(f->peer, "y", 1) != 1) ASYNC_THROW(t, ASYNC_EIO, "write");
    memset(&f->waiter.io, 0, sizeof f->waiter.io); /* a new socket: a zeroed async_io */
    AWAIT(t, ASYNC_CALL(ur_wait, &f->waiter, f->got, TEST_LONG_MS));
} ASYNC_END_DEF

TEST(uring_stopped_wait_then_closed_fd_and_its_number_reused) {
    static ur_cancel_reuse_frame m;
    int sv[2];
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    ASSERT_EQ(uring_run(ASYNC_CALL(ur_cancel_reuse, &m, sv[0], sv[1])), 0);
    ASSERT_EQ(m.got, sv[0]); /* the number came back */
    ASSERT_EQ(m.waiter.events, ASYNC_IO_READ);
    close(m.got);
    close(m.peer);
}

static int ur_signals;
static void ur_on_signal(async_loop *loop, int signo, void *arg) {
    (void)loop;
    (void)arg;
    if (signo == SIGUSR2) ur_signals++;
}

ASYNC_DEF(ur_raise, int n; async_sigwait w;) {
    for (f->n = 0; f->n < 3; f->n++) {
        raise(SIGUSR2); /* handed out on the loop's thread once the task waits */
        AWAIT_SIGNAL(t, &f->w, SIGUSR2);
    }
} ASYNC_END_DEF

/* A signal belongs to one loop of the process whatever its backend; on io_uring it is handed out on
 * the loop's thread at each delivery, and the old disposition is back after. */
TEST(uring_signal_belongs_to_one_loop_across_backends) {
    static ur_raise_frame m;
    async_loop *u = uring_loop(), *ev = async_loop_new(ASYNC_LOOP_LIBEV);
    struct sigaction sa;
    signal(SIGUSR2, SIG_IGN);
    ASSERT_EQ(async_loop_add_signal_handler(ev, SIGUSR2, ur_on_signal, NULL), 0);
    ASSERT_EQ(async_loop_add_signal_handler(u, SIGUSR2, ur_on_signal, NULL), ASYNC_EBUSY);
    ASSERT_EQ(async_loop_remove_signal_handler(ev, SIGUSR2), 1);
    ASSERT_EQ(async_loop_add_signal_handler(u, SIGUSR2, ur_on_signal, NULL), 0);
    ASSERT_EQ(async_loop_add_signal_handler(ev, SIGUSR2, ur_on_signal, NULL), ASYNC_EBUSY);
    ur_signals = 0;
    ASSERT_EQ(async_run(u, ASYNC_CALL(ur_raise, &m)), 0);
    ASSERT_EQ(ur_signals, 3);
    ASSERT_EQ(async_loop_remove_signal_handler(u, SIGUSR2), 1);
    ASSERT(sigaction(SIGUSR2, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN);
    async_loop_free(u);
    async_loop_free(ev);
}

static int ur_double(void *arg, intptr_t *result) {
    *result = 2 * *(const int *)arg;
    return 0;
}

ASYNC_DEF(ur_threads, intptr_t sum; int i; async_thread_call call;) {
    for (f->i = 1; f->i <= 20; f->i++) {
        AWAIT_TO_THREAD(t, &f->call, ur_double, &f->i, NULL);
        f->sum += async_thread_call_result(&f->call);
    }
} ASYNC_END_DEF

/* Calls on threads wake the ring from other threads (its eventfd). */
TEST(uring_calls_on_threads_wake_the_ring) {
    static ur_threads_frame m;
    skip_threads_under_valgrind();
    ASSERT_EQ(uring_run(ASYNC_CALL(ur_threads, &m)), 0);
    ASSERT_EQ(m.sum, 420);
}

ASYNC_DEF(ur_stuck, async_future fut;) {
    async_future_init(&f->fut);
    AWAIT_FUTURE(t, &f->fut);
} ASYNC_END_DEF

/* Nothing can wake a task that awaits a future no one sets: the loop says so instead of blocking. */
TEST(uring_nothing_to_wait_for_is_a_deadlock_not_a_hang) {
    static ur_stuck_frame m;
    ASSERT_EQ(uring_run(ASYNC_CALL(ur_stuck, &m)), ASYNC_EDEADLK);
}

/* ---- native receives: a stream on io_uring receives into its buffer in the kernel ---- */

/* A TCP connection on 127.0.0.1: *s reads fds[0], fds[1] is the peer. */
static void stream_pair(async_stream *s, int fds[2]) {
    test_tcp_pair(fds);
    ASSERT_EQ(async_stream_open(s, fds[0]), 0);
}

ASYNC_DEF(ur_read, async_stream *s; int32_t ms; char buf[64]; size_t n; int code;) {
    ASYNC_TRY(t) {
        AWAIT_STREAM_READ(t, f->s, f->buf, sizeof f->buf, &f->n, f->ms);
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

/* A receive cancelled in every state it can be in: queued and not yet submitted, waiting in the kernel,
 * or finished by the kernel with its completion not yet handed out. Whichever, the bytes the peer sent
 * are read by the next read, none lost and none twice. */
ASYNC_DEF(ur_cancel_each, async_stream s; int peer; int round; size_t got; char expect[8];
          ur_read_frame r; async_group g; ur_read_frame after;) {
    for (f->round = 0; f->round < 60; f->round++) {
        memset(&f->r, 0, sizeof f->r);
        f->r.code = 0;
        ASYNC_SPAWN(t, &f->g, ASYNC_CALL(ur_read, &f->r, &f->s, TEST_LONG_MS));
        /* round % 4: 0 the receive waits in the kernel and is cancelled before the bytes come; 1 it
         * is cancelled queued, before it was submitted; 2 the bytes come, then the cancel (the kernel
         * may have received them: its completion is handed out by the stop); 3 the loop has handed the
         * completion out when the cancel comes. A sleep lets the loop wait, which submits; a yield runs
         * in the same batch of passes. */
        snprintf(f->expect, sizeof f->expect, "m%03d", f->round);
        if (f->round % 4 == 1)
            AWAIT_YIELD(t);
        else
            AWAIT_SLEEP(t, 1);
        if (f->round % 4 >= 2 && write(f->peer, f->expect, 4) != 4) ASYNC_THROW(t, ASYNC_EIO, "write");
        if (f->round % 4 == 3) AWAIT_SLEEP(t, 1);
        async_cancel(&f->r.task);
        AWAIT_GROUP(t, &f->g);
        if (f->round % 4 < 2 && write(f->peer, f->expect, 4) != 4) ASYNC_THROW(t, ASYNC_EIO, "write");
        f->got = f->r.code == 0 ? f->r.n : 0; /* the read may have ended before the cancel */
        while (f->got < 4) {
            AWAIT(t, ASYNC_CALL(ur_read, &f->after, &f->s, TEST_LONG_MS));
            if (f->after.code) ASYNC_THROW(t, ASYNC_EPROTO, "read after the cancel failed");
            if (f->got == 0) memcpy(f->r.buf, f->after.buf, f->after.n);
            else memcpy(f->r.buf + f->got, f->after.buf, f->after.n);
            f->got += f->after.n;
        }
        if (f->got != 4 || memcmp(f->r.buf, f->expect, 4) != 0) ASYNC_THROW(t, ASYNC_EPROTO, "bytes lost or doubled");
    }
} ASYNC_END_DEF

TEST(uring_cancelled_receive_loses_no_byte) {
    static ur_cancel_each_frame m;
    int fds[2];
    skip_under_memcheck();
    stream_pair(&m.s, fds);
    ASSERT_EQ(uring_run(ASYNC_CALL(ur_cancel_each, &m, m.s, fds[1])), 0);
    async_stream_close(&m.s);
    close(fds[1]);
}

/* A receive past its deadline is ASYNC_ETIMEDOUT; what comes after is read; the end of the stream is 0,
 * and a reset is ASYNC_ECONNRESET. */
ASYNC_DEF(ur_deadline_eof, async_stream *s; int peer; ur_read_frame r;) {
    AWAIT(t, ASYNC_CALL(ur_read, &f->r, f->s, 20));
    if (f->r.code != ASYNC_ETIMEDOUT) ASYNC_THROW(t, ASYNC_EPROTO, "no deadline");
    if (write(f->peer, "late", 4) != 4) ASYNC_THROW(t, ASYNC_EIO, "write");
    memset(&f->r, 0, sizeof f->r);
    AWAIT(t, ASYNC_CALL(ur_read, &f->r, f->s, TEST_LONG_MS));
    if (f->r.code || f->r.n != 4 || memcmp(f->r.buf, "late", 4) != 0) ASYNC_THROW(t, ASYNC_EPROTO, "late bytes");
    shutdown(f->peer, SHUT_WR);
    memset(&f->r, 0, sizeof f->r);
    AWAIT(t, ASYNC_CALL(ur_read, &f->r, f->s, TEST_LONG_MS));
    if (f->r.code || f->r.n != 0) ASYNC_THROW(t, ASYNC_EPROTO, "no end of stream");
} ASYNC_END_DEF

ASYNC_DEF(ur_reset, async_stream *s; int peer; ur_read_frame r; async_group g;) {
    {
        struct linger lg;
        lg.l_onoff = 1;
        lg.l_linger = 0;
        setsockopt(f->peer, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    ASYNC_SPAWN(t, &f->g, ASYNC_CALL(ur_read, &f->r, f->s, TEST_LONG_MS));
    AWAIT_SLEEP(t, 1); /* the receive waits in the kernel */
    close(f->peer); /* an RST */
    AWAIT_GROUP(t, &f->g);
} ASYNC_END_DEF

TEST(uring_receive_deadline_data_end_of_stream_and_reset) {
    static ur_deadline_eof_frame m;
    static ur_reset_frame reset;
    static async_stream s, s2;
    int fds[2];
    skip_under_memcheck();
    stream_pair(&s, fds);
    ASSERT_EQ(uring_run(ASYNC_CALL(ur_deadline_eof, &m, &s, fds[1])), 0);
    async_stream_close(&s);
    close(fds[1]);
    stream_pair(&s2, fds); /* the peer's reset is ASYNC_ECONNRESET, and sticky */
    ASSERT_EQ(uring_run(ASYNC_CALL(ur_reset, &reset, &s2, fds[1])), 0);
    ASSERT_EQ(reset.r.code, ASYNC_ECONNRESET);
    ASSERT_EQ(async_stream_write(&s2, "x", 1), ASYNC_ECONNRESET);
    async_stream_close(&s2);
}

/* ---- files: reads and writes done by the kernel, not a pool thread ---- */

#define UR_BIG (200 * 1024)

ASYNC_DEF(ur_files, const char *path; char *big; async_thread_call call; async_file *file; char buf[4096];
          size_t n; size_t total; int code; int bad;) {
    AWAIT_FILE_OPEN(t, &f->call, &f->file, f->path, "w+");
    AWAIT_FILE_WRITE(t, &f->call, f->file, "hello world", 11);
    AWAIT_FILE_WRITE(t, &f->call, f->file, f->big, UR_BIG); /* more than one write of the kernel's, maybe */
    AWAIT_FILE_CLOSE(t, &f->call, f->file);
    AWAIT_FILE_OPEN(t, &f->call, &f->file, f->path, "r");
    AWAIT_FILE_READ(t, &f->call, f->file, f->buf, 5, &f->n);
    if (f->n != 5 || memcmp(f->buf, "hello", 5) != 0) f->bad = 1;
    AWAIT_FILE_READ(t, &f->call, f->file, f->buf, 6, &f->n); /* from the file's position */
    if (f->n != 6 || memcmp(f->buf, " world", 6) != 0) f->bad = 2;
    for (f->total = 0;;) {
        AWAIT_FILE_READ(t, &f->call, f->file, f->buf, sizeof f->buf, &f->n);
        if (f->n == 0) break; /* the end of the file */
        if (memcmp(f->buf, f->big + f->total, f->n) != 0) f->bad = 3;
        f->total += f->n;
    }
    ASYNC_TRY(t) { /* opened for reading: the kernel's write fails */
        AWAIT_FILE_WRITE(t, &f->call, f->file, "x", 1);
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
    AWAIT_FILE_CLOSE(t, &f->call, f->file);
} ASYNC_END_DEF

TEST(uring_file_reads_and_writes_keep_position_end_and_errors) {
    static ur_files_frame m;
    static char big[UR_BIG];
    async_task *task;
    size_t i;
    skip_under_memcheck();
    for (i = 0; i < sizeof big; i++) big[i] = (char)('a' + i % 23);
    task = ASYNC_CALL(ur_files, &m, test_path("native.txt"), big);
    ASSERT_EQ(uring_run(task), 0);
    ASSERT_EQ(m.bad, 0);
    ASSERT_EQ(m.total, (size_t)UR_BIG);
    ASSERT_EQ(m.code, ASYNC_EBADF);
    test_rmdir();
}

/* A read of cap bytes of file into buf, as a task of its own. */
static async_task *file_read(pool_op_frame *r, async_file *file, char *buf, size_t cap) {
    pool_op(r, POOL_READ)->file = file;
    r->buf = buf;
    r->cap = cap;
    return &r->task;
}

/* A file of ten bytes for a test that needs pool threads (a file's open and close). */
static const char *ten_bytes(const char *name) {
    const char *path = test_path(name);
    skip_threads_under_valgrind();
    test_write_file(path, "0123456789");
    return path;
}

/* Reads cancelled while the kernel has them: the awaiter goes, the reads finish and are dropped, the
 * close waits for them; nothing leaks. Then a loop freed with a read in flight. */
ASYNC_DEF(ur_file_cancel, const char *path; async_thread_call call; async_file *file; pool_op_frame r[3];
          async_group g; char buf[3][64]; int i;) {
    AWAIT_FILE_OPEN(t, &f->call, &f->file, f->path, "r");
    for (f->i = 0; f->i < 3; f->i++) ASYNC_SPAWN(t, &f->g, file_read(&f->r[f->i], f->file, f->buf[f->i], 64));
    AWAIT_YIELD(t); /* the reads are queued for the kernel */
    async_cancel(&f->r[0].task);
    async_cancel(&f->r[2].task);
    AWAIT_GROUP(t, &f->g);
    AWAIT_FILE_CLOSE(t, &f->call, f->file);
} ASYNC_END_DEF

TEST(uring_file_reads_cancelled_in_the_kernel_leak_nothing) {
    static ur_file_cancel_frame m;
    ASSERT_EQ(uring_run(ASYNC_CALL(ur_file_cancel, &m, ten_bytes("cancel.txt"))), 0);
    ASSERT_EQ(m.r[0].code, ASYNC_ECANCELED);
    ASSERT_EQ(m.r[1].code, 0);
    ASSERT_EQ(m.r[2].code, ASYNC_ECANCELED);
    test_rmdir();
}

ASYNC_DEF(ur_file_left, const char *path; async_thread_call call; async_file *file; pool_op_frame r; async_group g;
          char buf[64];) {
    AWAIT_FILE_OPEN(t, &f->call, &f->file, f->path, "r");
    ASYNC_SPAWN(t, &f->g, file_read(&f->r, f->file, f->buf, sizeof f->buf));
    AWAIT_YIELD(t); /* the read is queued for the kernel; main ends without it, and the loop goes */
} ASYNC_END_DEF

/* A loop freed with a file's read in the kernel's hands: the read is stopped, the file closed. */
TEST(uring_loop_freed_with_a_file_read_in_flight) {
    static ur_file_left_frame m;
    ASSERT_EQ(uring_run(ASYNC_CALL(ur_file_left, &m, ten_bytes("left.txt"))), 0);
    test_rmdir();
}

/* ---- native sends: a drain's output goes to the kernel from the stream's buffer ---- */

#define UR_SENT (12u * 1024u * 1024u)

static unsigned char ur_bytes[UR_SENT];

/* Reads `want` bytes from the peer's stream and checks each against the pattern. */
ASYNC_DEF(ur_sink, async_stream *s; size_t want; size_t got; size_t n; int bad; unsigned char buf[65536];) {
    while (f->got < f->want) {
        AWAIT_STREAM_READ(t, f->s, f->buf, sizeof f->buf, &f->n, TEST_LONG_MS);
        if (f->n == 0) break;
        if (memcmp(f->buf, ur_bytes + f->got, f->n) != 0) f->bad = 1;
        f->got += f->n;
    }
} ASYNC_END_DEF

ASYNC_DEF(ur_drain, async_stream *s; int32_t ms; int code;) {
    ASYNC_TRY(t) {
        AWAIT_STREAM_DRAIN(t, f->s, f->ms);
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

/* A drain waits while the kernel sends the queue; a write that grows the buffer under the send stops it
 * and the drain sends the rest; the drain cancelled mid-send keeps what is left, and the next one sends
 * it: the peer gets every byte once, in order. */
ASYNC_DEF(ur_send, async_stream *s; async_stream *peer; ur_sink_frame sink; ur_drain_frame d1, d2; async_group g,
          gs;) {
    if (async_stream_write(f->s, ur_bytes, UR_SENT / 3 * 2) != 0) ASYNC_THROW(t, ASYNC_EIO, "write");
    ASYNC_SPAWN(t, &f->g, ASYNC_CALL(ur_drain, &f->d1, f->s, TEST_LONG_MS));
    AWAIT_SLEEP(t, 5); /* the send is in the kernel, which waits for room: the peer does not read yet */
    if (async_stream_write(f->s, ur_bytes + UR_SENT / 3 * 2, UR_SENT - UR_SENT / 3 * 2) != 0)
        ASYNC_THROW(t, ASYNC_EIO, "write"); /* grows the buffer: the send is stopped, the drain goes on */
    AWAIT_SLEEP(t, 5);
    async_cancel(&f->d1.task); /* the send in the kernel again: stopped, what it took counts */
    AWAIT_GROUP(t, &f->g);
    ASYNC_SPAWN(t, &f->gs, ASYNC_CALL(ur_sink, &f->sink, f->peer, (size_t)UR_SENT));
    AWAIT(t, ASYNC_CALL(ur_drain, &f->d2, f->s, TEST_LONG_MS));
    AWAIT_GROUP(t, &f->gs);
} ASYNC_END_DEF

TEST(uring_drain_sends_from_the_buffer_and_keeps_order_under_writes_and_cancel) {
    static ur_send_frame m;
    static async_stream s, peer;
    int fds[2];
    size_t i;
    skip_under_memcheck();
    for (i = 0; i < UR_SENT; i++) ur_bytes[i] = (unsigned char)(i % 251u);
    stream_pair(&s, fds);
    ASSERT_EQ(async_stream_open(&peer, fds[1]), 0);
    ASSERT_EQ(uring_run(ASYNC_CALL(ur_send, &m, &s, &peer)), 0);
    ASSERT(m.d1.code == 0 || m.d1.code == ASYNC_ECANCELED);
    ASSERT_EQ(m.d2.code, 0);
    ASSERT_EQ(m.sink.got, (size_t)UR_SENT);
    ASSERT_EQ(m.sink.bad, 0);
    ASSERT_EQ(async_stream_pending(&s), 0);
    async_stream_close(&s);
    async_stream_close(&peer);
}

/* ---- native accepts ---- */

/* Reads one byte from s, then cancels victim. */
ASYNC_DEF(ur_read_then_cancel, async_stream *s; async_task *victim; char buf[8]; size_t n;) {
    AWAIT_STREAM_READ(t, f->s, f->buf, sizeof f->buf, &f->n, TEST_LONG_MS);
    async_cancel(f->victim);
} ASYNC_END_DEF

/* The reader's receive goes to the kernel before the server's accept, and both are ready at once: the
 * reader wakes first and cancels the server, whose accept has already brought a connection. */
ASYNC_DEF(ur_accept_cancel, async_server *srv; async_stream *s; int peer; int client; async_group g;
          ur_read_then_cancel_frame c; int code; async_deadline d;) {
    ASYNC_SPAWN(t, &f->g, ASYNC_CALL(ur_read_then_cancel, &f->c, f->s, &f->srv->task));
    ASYNC_SPAWN(t, &f->g, async_server_serve(f->srv));
    AWAIT_YIELD(t); /* both wait: the receive is queued first, then the accept */
    /* before the loop submits them: the byte, and a connection in the listener's backlog */
    if (write(f->peer, "x", 1) != 1) ASYNC_THROW(t, ASYNC_EIO, "write");
    f->client = test_connect(async_server_port(f->srv), 0);
    if (f->client < 0) ASYNC_THROW(t, ASYNC_EIO, "connect");
    ASYNC_TRY(t) {
        /* bounded: if the reader is cancelled from outside (the cancellation injector does), no one
         * cancels the server, and the deadline ends the group instead */
        ASYNC_TIMEOUT(t, &f->d, TEST_LONG_MS) {
            AWAIT_GROUP(t, &f->g);
        }
        ASYNC_END_TIMEOUT(t, &f->d);
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

/* A connection the kernel accepted for a server cancelled before it saw it is closed, not leaked: the
 * client sees the end of the stream (or a reset), never a connection that stays open. */
TEST(uring_accept_finished_then_server_cancelled_leaks_no_connection) {
    static ur_accept_cancel_frame m;
    static async_server srv;
    static async_stream s;
    int fds[2], client, before;
    char c;
    ssize_t n;
    skip_under_memcheck();
    stream_pair(&s, fds);
    ASSERT_EQ(async_server_listen(&srv, "127.0.0.1", 0, 0, sizeof(echo_frame), echo_new, NULL), 0);
    before = test_count_fds();
    m.client = -1;
    ASSERT_EQ(uring_run(ASYNC_CALL(ur_accept_cancel, &m, &srv, &s, fds[1])), 0);
    client = m.client;
    ASSERT(client >= 0);
    ASSERT_EQ(m.c.n, 1);
    ASSERT(m.code == 0 || m.code == ASYNC_ECANCELED); /* a cancelled child is no error of the group */
    ASSERT_EQ(test_count_fds(), before); /* the listener went, the client came: nothing else stayed open */
    n = recv(client, &c, 1, MSG_DONTWAIT);
    ASSERT(n == 0 || (n < 0 && errno == ECONNRESET));
    close(client);
    async_stream_close(&s);
    close(fds[1]);
}

/* A stream closed by another task while its receive is in the kernel, the peer's bytes just sent (the
 * kernel may have received them: the close's stop hands them out): the reader is told ASYNC_EBADF, or,
 * if it had its bytes, gets them; nothing is left allocated or open in the closed stream. */
ASYNC_DEF(ur_close_under_recv, async_stream *s; int peer; int round; ur_read_frame r; async_group g;) {
    for (f->round = 0; f->round < 20; f->round++) {
        memset(&f->r, 0, sizeof f->r);
        ASYNC_SPAWN(t, &f->g, ASYNC_CALL(ur_read, &f->r, f->s, TEST_LONG_MS));
        AWAIT_SLEEP(t, 1); /* the receive waits in the kernel */
        if (write(f->peer, "abcd", 4) != 4) ASYNC_THROW(t, ASYNC_EIO, "write");
        async_stream_close(f->s);
        AWAIT_GROUP(t, &f->g);
        if (f->r.code != ASYNC_EBADF && !(f->r.code == 0 && f->r.n == 4)) ASYNC_THROW(t, ASYNC_EPROTO, "outcome");
        if (async_stream_fd(f->s) != -1 || async_stream_pending(f->s) != 0) ASYNC_THROW(t, ASYNC_EPROTO, "reopened");
        {
            int fds[2];
            test_tcp_pair(fds);
            close(f->peer);
            f->peer = fds[1];
            if (async_stream_open(f->s, fds[0]) != 0) ASYNC_THROW(t, ASYNC_EIO, "open");
        }
    }
} ASYNC_END_DEF

TEST(uring_stream_closed_while_its_receive_is_in_the_kernel) {
    static ur_close_under_recv_frame m;
    static async_stream s;
    int fds[2];
    skip_under_memcheck();
    stream_pair(&s, fds);
    ASSERT_EQ(uring_run(ASYNC_CALL(ur_close_under_recv, &m, &s, fds[1])), 0);
    async_stream_close(&s);
    close(m.peer);
}
