/* The hosted runtime's error paths (files, the thread pool, debug mode, the libev backend, frame pools):
 * every file and thread await with NULL or impossible arguments, file errors (EISDIR, EBADF, ESRCH seen
 * as ASYNC_EIO, ELOOP, ENAMETOOLONG), a cancellation pending at the start of each await (the call never
 * starts), a call record swapped during its await, a pool that cannot start its threads, pool sizes from
 * ASYNC_THREADS, pools resized and switched, the capped free list of job records, debug mode's API on
 * loops without it, deep inline chains and big task tables in the dump, the ASYNC_CLOCK and ASYNC_DEBUG
 * values, libev unable to make a loop, and async_main's own errors. Thread work takes no virtual time:
 * these run on the virtual clock except where libev must poll. Tests that wait for a pool call are named
 * thread_... (the allocation-injection driver skips some of those). */
#include <dirent.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "net_util.h"

/* glibc's (GNU) default thread attributes; declared here because the runner is built as POSIX C */
int pthread_getattr_default_np(pthread_attr_t *attr);
int pthread_setattr_default_np(const pthread_attr_t *attr);

/* ---- helpers ---- */

static char he_dir[64];

static void he_rmdir(void);

/* A path in this test's own temporary directory (rotating buffers: a test uses a few at a time). The
 * directory goes when the test ends, also when an assertion ends it (each test is a process). */
static const char *he_path(const char *name) {
    static char paths[16][128];
    static unsigned next;
    static int registered;
    char *p = paths[next++ % 16];
    if (!he_dir[0]) {
        strcpy(he_dir, "/tmp/async-he-XXXXXX");
        if (!mkdtemp(he_dir)) test_fail(__FILE__, __LINE__, "mkdtemp failed");
        if (!registered++) atexit(he_rmdir);
    }
    snprintf(p, 128, "%s/%s", he_dir, name);
    return p;
}

static void he_rmdir(void) {
    DIR *d;
    struct dirent *e;
    if (!he_dir[0]) return;
    d = opendir(he_dir);
    while (d && (e = readdir(d)) != NULL) {
        char p[512];
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(p, sizeof p, "%s/%s", he_dir, e->d_name);
        if (unlink(p) != 0) rmdir(p);
    }
    if (d) closedir(d);
    rmdir(he_dir);
    he_dir[0] = '\0';
}

static void he_write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    ASSERT(f != NULL);
    fputs(text, f);
    fclose(f);
}

static char *he_read_file(const char *path) {
    static char buf[256];
    FILE *f = fopen(path, "r");
    size_t n;
    ASSERT(f != NULL);
    n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* The process's threads, as the kernel counts them. */
static int he_threads_now(void) {
    char line[256];
    int n = -1;
    FILE *f = fopen("/proc/self/status", "r");
    ASSERT(f != NULL);
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %d", &n) == 1) break;
    fclose(f);
    return n;
}

/* The thread count once it reads `want` (a joined thread leaves the kernel's count a moment after
 * pthread_join returns); the last reading if it does not within 2 s. */
static int he_threads(int want) {
    int i, n = he_threads_now();
    for (i = 0; i < 2000 && n != want; i++) {
        struct timespec ts = {0, 1000000L};
        nanosleep(&ts, NULL);
        n = he_threads_now();
    }
    return n;
}

static void *he_wait_for_eof(void *arg) {
    char c;
    while (read(*(int *)arg, &c, 1) > 0) {}
    return NULL;
}

/* The thread count with no pool running, once any helper thread a sanitizer starts with the first
 * pthread_create (ThreadSanitizer's background thread) exists: a thread is made, counted while it
 * waits, and joined first. */
static int he_threads_base(void) {
    pthread_t th;
    int p[2], n;
    ASSERT_EQ(pipe(p), 0);
    ASSERT_EQ(pthread_create(&th, NULL, he_wait_for_eof, &p[0]), 0);
    n = he_threads_now();
    close(p[1]);
    ASSERT_EQ(pthread_join(th, NULL), 0);
    close(p[0]);
    return he_threads(n - 1);
}

/* Standard error captured into a temporary file while the library prints there. */
static int he_saved_stderr = -1;
static FILE *he_err_file;

static void he_capture_stderr(void) {
    fflush(stderr);
    he_err_file = tmpfile();
    ASSERT(he_err_file != NULL);
    he_saved_stderr = dup(2);
    ASSERT(he_saved_stderr >= 0);
    ASSERT(dup2(fileno(he_err_file), 2) == 2);
}

static const char *he_release_stderr(void) {
    static char buf[8192];
    size_t n;
    fflush(stderr);
    dup2(he_saved_stderr, 2);
    close(he_saved_stderr);
    rewind(he_err_file);
    n = fread(buf, 1, sizeof buf - 1, he_err_file);
    buf[n] = '\0';
    fclose(he_err_file);
    return buf;
}

static FILE *he_capture(void) {
    FILE *f = tmpfile();
    if (!f) test_fail(__FILE__, __LINE__, "tmpfile failed");
    return f;
}

static const char *he_captured(FILE *f) {
    static char buf[65536];
    size_t n;
    fflush(f);
    rewind(f);
    n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    return buf;
}

static void he_copy(char *dst, size_t size, const char *src) {
    size_t n = strlen(src);
    if (n >= size) n = size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void he_clear(FILE *f) {
    fflush(f);
    rewind(f);
    ASSERT_EQ(ftruncate(fileno(f), 0), 0);
}

static async_loop *he_loop(void) {
    async_loop *loop = async_loop_new(ASYNC_LOOP_VIRTUAL_CLOCK);
    ASSERT(loop != NULL);
    return loop;
}

/* ---- calls for the pool ---- */

static int he_runs; /* calls of he_count that ran (atomically: pool threads) */
static int he_count(void *arg, intptr_t *result) {
    __atomic_add_fetch(&he_runs, 1, __ATOMIC_SEQ_CST);
    *result = (intptr_t)arg;
    return 0;
}

static int he_heap(void *arg, intptr_t *result) { /* a result that leaks unless someone frees it */
    char *p = malloc(8);
    if (!p) return ASYNC_ENOMEM;
    snprintf(p, 8, "r%d", (int)(intptr_t)arg);
    *result = (intptr_t)p;
    return 0;
}

static int he_dtors;
static void he_free_dtor(intptr_t result, void *arg) {
    (void)arg;
    he_dtors++;
    free((void *)result);
}

/* ---- one await of any kind, with the error it raised caught ---- */

enum { HE_TO_THREAD = 1, HE_READ_ALL, HE_WRITE_ALL, HE_OPEN, HE_READ, HE_WRITE, HE_CLOSE };

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
} he_op_frame;

static async_status he_op_run(async_task *t) {
    he_op_frame *f = (he_op_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_TRY(t) {
        if (f->cancel_first) async_cancel(t);
        if (f->op == HE_TO_THREAD) {
            AWAIT_TO_THREAD(t, f->callp, f->fn, (void *)f->arg, f->dtor);
        } else if (f->op == HE_READ_ALL) {
            AWAIT_FILE_READ_ALL(t, f->callp, f->path, f->allp, f->all_lenp);
        } else if (f->op == HE_WRITE_ALL) {
            AWAIT_FILE_WRITE_ALL(t, f->callp, f->path, f->data, f->len, f->mode);
        } else if (f->op == HE_OPEN) {
            AWAIT_FILE_OPEN(t, f->callp, f->filep, f->path, f->how);
        } else if (f->op == HE_READ) {
            AWAIT_FILE_READ(t, f->callp, f->file, f->buf, f->cap, f->nreadp);
        } else if (f->op == HE_WRITE) {
            AWAIT_FILE_WRITE(t, f->callp, f->file, f->data, f->len);
        } else if (f->op == HE_CLOSE) {
            AWAIT_FILE_CLOSE(t, f->callp, f->file);
        }
        f->reached = true;
        f->result = async_thread_result(f->callp);
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
    ASYNC_END(t);
}

/* A fresh frame for `op` with every pointer argument aimed at the frame's own fields. */
static he_op_frame *he_op(he_op_frame *f, int op) {
    ASSERT(ASYNC_FRAME_INIT(f, he_op_run));
    f->op = op;
    f->callp = &f->call;
    f->filep = &f->file;
    f->allp = &f->all;
    f->all_lenp = &f->all_len;
    f->nreadp = &f->nread;
    f->mode = 0644;
    f->how = "r";
    f->fn = he_count;
    return f;
}

/* Runs the await as the loop's main task; the code it raised (0: none). */
static int he_go(async_loop *loop, he_op_frame *f) {
    ASSERT_EQ(async_run(loop, &f->task), 0);
    return f->code;
}

/* Opens path with `how` on loop; the file. */
static async_file *he_open(async_loop *loop, const char *path, const char *how) {
    static he_op_frame f;
    he_op(&f, HE_OPEN);
    f.path = path;
    f.how = how;
    ASSERT_EQ(he_go(loop, &f), 0);
    ASSERT(f.file != NULL);
    return f.file;
}

static int he_close(async_loop *loop, async_file *file) {
    static he_op_frame f;
    he_op(&f, HE_CLOSE);
    f.file = file;
    return he_go(loop, &f);
}

/* ---- files: arguments ---- */

TEST(thread_hosted_errors_file_calls_reject_null_and_invalid_arguments) {
    async_loop *loop = he_loop();
    static he_op_frame f;
    static char buf[8];
    const char *path = he_path("args.txt");
    async_file *file;
    he_write_file(path, "abc");
    file = he_open(loop, path, "r+");
    /* read_all: nowhere to put the data */
    he_op(&f, HE_READ_ALL)->path = path;
    f.allp = NULL;
    ASSERT_EQ(he_go(loop, &f), ASYNC_EINVAL);
    ASSERT(!f.reached);
    /* write_all: bytes promised but no data, permission bits that are no mode */
    he_op(&f, HE_WRITE_ALL)->path = path;
    f.len = 3;
    ASSERT_EQ(he_go(loop, &f), ASYNC_EINVAL);
    he_op(&f, HE_WRITE_ALL)->path = path;
    f.data = "xyz";
    f.len = 3;
    f.mode = 010000;
    ASSERT_EQ(he_go(loop, &f), ASYNC_EINVAL);
    ASSERT_STR_EQ(he_read_file(path), "abc"); /* nothing was written */
    /* open: no path; "x" twice is no fopen mode */
    he_op(&f, HE_OPEN)->path = NULL;
    ASSERT_EQ(he_go(loop, &f), ASYNC_EINVAL);
    he_op(&f, HE_OPEN)->path = he_path("never.txt");
    f.how = "wxx";
    ASSERT_EQ(he_go(loop, &f), ASYNC_EINVAL);
    ASSERT(access(he_path("never.txt"), F_OK) != 0);
    /* read: no file; no buffer for a non-zero capacity */
    he_op(&f, HE_READ)->file = NULL;
    f.buf = buf;
    f.cap = sizeof buf;
    ASSERT_EQ(he_go(loop, &f), ASYNC_EINVAL);
    he_op(&f, HE_READ)->file = file;
    f.cap = sizeof buf;
    ASSERT_EQ(he_go(loop, &f), ASYNC_EINVAL);
    /* write: no file; no data for a non-zero length */
    he_op(&f, HE_WRITE)->file = NULL;
    f.data = "x";
    f.len = 1;
    ASSERT_EQ(he_go(loop, &f), ASYNC_EINVAL);
    he_op(&f, HE_WRITE)->file = file;
    f.len = 1;
    ASSERT_EQ(he_go(loop, &f), ASYNC_EINVAL);
    /* the file is untouched by all that: it still reads from the start */
    he_op(&f, HE_READ)->file = file;
    f.buf = buf;
    f.cap = sizeof buf;
    ASSERT_EQ(he_go(loop, &f), 0);
    ASSERT_EQ(f.nread, 3);
    ASSERT(memcmp(buf, "abc", 3) == 0);
    ASSERT_EQ(he_close(loop, file), 0);
    ASSERT_EQ(async_loop_jobs(loop), 0);
    async_loop_free(loop);
    he_rmdir();
}

/* Lengths no memory can hold fail with ASYNC_ENOMEM before anything is allocated or copied: the files'
 * own checks (their argument record would overflow) and the job allocator's (record plus payload). The
 * sizes are chosen to fail those checks, never to reach malloc (ASan aborts on absurd requests). */
TEST(thread_hosted_errors_file_sizes_past_the_address_space_are_enomem) {
    async_loop *loop = he_loop();
    static he_op_frame f;
    static char buf[8];
    const char *path = he_path("huge.txt");
    async_file *file;
    he_write_file(path, "abc");
    file = he_open(loop, path, "r+");
    he_op(&f, HE_WRITE_ALL)->path = path;
    f.data = "x"; /* never read: the length is refused first */
    f.len = SIZE_MAX;
    ASSERT_EQ(he_go(loop, &f), ASYNC_ENOMEM);
    he_op(&f, HE_WRITE_ALL)->path = path;
    f.data = "x";
    f.len = SIZE_MAX - 33 - strlen(path); /* passes the files' check (a 24-byte record), not the job's */
    ASSERT_EQ(he_go(loop, &f), ASYNC_ENOMEM);
    he_op(&f, HE_READ)->file = file;
    f.buf = buf;
    f.cap = SIZE_MAX;
    ASSERT_EQ(he_go(loop, &f), ASYNC_ENOMEM);
    he_op(&f, HE_READ)->file = file;
    f.buf = buf;
    f.cap = SIZE_MAX - 32; /* the same: the job adds its own header to the payload */
    ASSERT_EQ(he_go(loop, &f), ASYNC_ENOMEM);
    he_op(&f, HE_WRITE)->file = file;
    f.data = "x";
    f.len = SIZE_MAX;
    ASSERT_EQ(he_go(loop, &f), ASYNC_ENOMEM);
    ASSERT_STR_EQ(he_read_file(path), "abc");
    ASSERT_EQ(async_loop_jobs(loop), 0);
    ASSERT_EQ(he_close(loop, file), 0);
    async_loop_free(loop);
    he_rmdir();
}

/* An open whose result has nowhere to go: the descriptor it opened is closed again, nothing leaks. */
TEST(thread_hosted_errors_file_open_without_a_place_for_the_file_closes_it) {
    async_loop *loop = he_loop();
    static he_op_frame f;
    const char *path = he_path("nowhere.txt");
    int before;
    he_write_file(path, "abc");
    he_op(&f, HE_TO_THREAD); /* makes the pool and its eventfd first */
    ASSERT_EQ(he_go(loop, &f), 0);
    before = test_count_fds();
    he_op(&f, HE_OPEN)->path = path;
    f.filep = NULL;
    ASSERT_EQ(he_go(loop, &f), ASYNC_EINVAL);
    ASSERT_EQ(test_count_fds(), before);
    ASSERT_EQ(async_loop_jobs(loop), 0);
    async_loop_free(loop);
    he_rmdir();
}

/* ---- files: errors of the system calls ---- */

TEST(thread_hosted_errors_file_read_of_a_directory_is_eisdir) {
    async_loop *loop = he_loop();
    static he_op_frame f;
    static char buf[8];
    const char *dir = he_path("sub");
    async_file *file;
    ASSERT_EQ(mkdir(dir, 0700), 0);
    /* open(O_RDONLY) of a directory works; its read fails */
    he_op(&f, HE_READ_ALL)->path = dir;
    ASSERT_EQ(he_go(loop, &f), ASYNC_EISDIR);
    ASSERT(f.all == NULL);
    file = he_open(loop, dir, "r");
    he_op(&f, HE_READ)->file = file;
    f.buf = buf;
    f.cap = sizeof buf;
    f.nread = 77;
    ASSERT_EQ(he_go(loop, &f), ASYNC_EISDIR);
    ASSERT_EQ(f.nread, 77); /* untouched by the failed read */
    ASSERT_EQ(he_close(loop, file), 0);
    rmdir(dir);
    /* read_all with no length wanted */
    he_write_file(he_path("len.txt"), "four");
    he_op(&f, HE_READ_ALL)->path = he_path("len.txt");
    f.all_lenp = NULL;
    ASSERT_EQ(he_go(loop, &f), 0);
    ASSERT_STR_EQ(f.all, "four");
    free(f.all);
    async_loop_free(loop);
    he_rmdir();
}

/* A file opened for writing cannot be read and one opened for reading cannot be written: EBADF, raised
 * at the await. Zero-length calls and a read without a count still work. */
TEST(thread_hosted_errors_file_wrong_direction_is_ebadf) {
    async_loop *loop = he_loop();
    static he_op_frame f;
    static char buf[8];
    const char *path = he_path("dir.txt");
    async_file *wfile, *rfile;
    he_write_file(path, "hello");
    wfile = he_open(loop, he_path("out.txt"), "w");
    rfile = he_open(loop, path, "r");
    he_op(&f, HE_READ)->file = wfile;
    f.buf = buf;
    f.cap = sizeof buf;
    f.nread = 77;
    ASSERT_EQ(he_go(loop, &f), ASYNC_EBADF);
    ASSERT_EQ(f.nread, 77);
    ASSERT(!f.reached);
    he_op(&f, HE_WRITE)->file = rfile;
    f.data = "x";
    f.len = 1;
    ASSERT_EQ(he_go(loop, &f), ASYNC_EBADF);
    ASSERT_EQ(async_thread_result(&f.call), 0);
    /* zero bytes written: fine, and the file is unchanged */
    he_op(&f, HE_WRITE)->file = wfile;
    ASSERT_EQ(he_go(loop, &f), 0);
    ASSERT_EQ(f.result, 0);
    /* a read without a count, then one without a buffer for zero bytes */
    he_op(&f, HE_READ)->file = rfile;
    f.buf = buf;
    f.cap = 2;
    f.nreadp = NULL;
    ASSERT_EQ(he_go(loop, &f), 0);
    ASSERT(memcmp(buf, "he", 2) == 0);
    he_op(&f, HE_READ)->file = rfile;
    f.nread = 77;
    ASSERT_EQ(he_go(loop, &f), 0);
    ASSERT_EQ(f.nread, 0);
    ASSERT_EQ(he_close(loop, wfile), 0);
    ASSERT_EQ(he_close(loop, rfile), 0);
    ASSERT_STR_EQ(he_read_file(he_path("out.txt")), "");
    async_loop_free(loop);
    he_rmdir();
}

/* A file belongs to the loop that opened it: another loop's calls on it are ASYNC_EINVAL. */
TEST(thread_hosted_errors_file_of_another_loop_is_einval) {
    async_loop *a = he_loop(), *b = he_loop();
    static he_op_frame f;
    static char buf[8];
    const char *path = he_path("mine.txt");
    async_file *file;
    he_write_file(path, "abc");
    file = he_open(a, path, "r+");
    he_op(&f, HE_WRITE)->file = file;
    f.data = "zz";
    f.len = 2;
    ASSERT_EQ(he_go(b, &f), ASYNC_EINVAL);
    he_op(&f, HE_READ)->file = file;
    f.buf = buf;
    f.cap = sizeof buf;
    ASSERT_EQ(he_go(b, &f), ASYNC_EINVAL);
    he_op(&f, HE_CLOSE)->file = file;
    ASSERT_EQ(he_go(b, &f), ASYNC_EINVAL);
    ASSERT_EQ(async_loop_jobs(b), 0);
    /* its own loop still reads it from the start and closes it */
    he_op(&f, HE_READ)->file = file;
    f.buf = buf;
    f.cap = sizeof buf;
    ASSERT_EQ(he_go(a, &f), 0);
    ASSERT_EQ(f.nread, 3);
    ASSERT_EQ(he_close(a, file), 0);
    async_loop_free(b);
    async_loop_free(a);
    he_rmdir();
}

/* The descriptor under a file, found through /proc/self/fd. */
static int he_fd_of(const char *path) {
    int fd;
    for (fd = 0; fd < 1024; fd++) {
        char link[64], target[512];
        ssize_t n;
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        n = readlink(link, target, sizeof target - 1);
        if (n <= 0) continue;
        target[n] = '\0';
        if (strcmp(target, path) == 0) return fd;
    }
    return -1;
}

/* The program closed the descriptor behind the library's back: the close reports EBADF (no error is
 * swallowed) and the file record is freed all the same. */
TEST(thread_hosted_errors_file_closed_behind_the_library_is_ebadf) {
    async_loop *loop = he_loop();
    static he_op_frame f;
    static char buf[8];
    const char *path = he_path("behind.txt");
    async_file *file;
    int fd;
    he_write_file(path, "abc");
    file = he_open(loop, path, "r");
    fd = he_fd_of(path);
    ASSERT(fd >= 0);
    ASSERT_EQ(close(fd), 0);
    he_op(&f, HE_READ)->file = file;
    f.buf = buf;
    f.cap = sizeof buf;
    ASSERT_EQ(he_go(loop, &f), ASYNC_EBADF);
    ASSERT_EQ(he_close(loop, file), ASYNC_EBADF);
    ASSERT_EQ(async_loop_jobs(loop), 0);
    async_loop_free(loop); /* the record went with the close: not closed again, not leaked */
    he_rmdir();
}

/* An errno the library has no code for is ASYNC_EIO: the stat file of a process that was reaped after
 * it was opened fails to read with ESRCH. ELOOP and ENAMETOOLONG have codes of their own. */
TEST(thread_hosted_errors_file_errno_without_a_code_is_eio) {
    async_loop *loop = he_loop();
    static he_op_frame f;
    static char buf[64], stat_path[64], long_name[400];
    async_file *file;
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    ASSERT(pid > 0);
    snprintf(stat_path, sizeof stat_path, "/proc/%d/stat", (int)pid);
    file = he_open(loop, stat_path, "r"); /* running or a zombie: it opens */
    ASSERT_EQ(waitpid(pid, NULL, 0), pid);
    he_op(&f, HE_READ)->file = file;
    f.buf = buf;
    f.cap = sizeof buf;
    ASSERT_EQ(he_go(loop, &f), ASYNC_EIO);
    ASSERT_EQ(he_close(loop, file), 0);
    ASSERT_EQ(symlink(he_path("loop"), he_path("loop")), 0);
    he_op(&f, HE_READ_ALL)->path = he_path("loop");
    ASSERT_EQ(he_go(loop, &f), ASYNC_ELOOP);
    memset(long_name, 'n', sizeof long_name - 1);
    he_op(&f, HE_OPEN)->path = long_name;
    f.how = "w";
    ASSERT_EQ(he_go(loop, &f), ASYNC_ENAMETOOLONG);
    async_loop_free(loop);
    he_rmdir();
}

/* The read's capacity changed while it ran (the arguments are evaluated again at the resume): never more
 * than the smaller capacity reaches the buffer. */
typedef struct {
    async_task task;
    he_op_frame reader;
    async_group g;
    async_file *file;
    char buf[16];
} he_cap_frame;

static async_status he_cap_run(async_task *t) {
    he_cap_frame *f = (he_cap_frame *)t;
    ASYNC_BEGIN(t);
    he_op(&f->reader, HE_READ)->file = f->file;
    f->reader.buf = f->buf;
    f->reader.cap = 8;
    ASYNC_SPAWN(t, &f->g, &f->reader.task);
    ASYNC_YIELD(t); /* the reader has started its read of 8 bytes */
    ASSERT_EQ(async_loop_jobs(async_task_loop(t)), 1);
    f->reader.cap = 3;
    AWAIT_GROUP(t, &f->g);
    ASYNC_END(t);
}

TEST(thread_hosted_errors_file_read_never_copies_more_than_asked) {
    async_loop *loop = he_loop();
    static he_cap_frame m;
    const char *path = he_path("cap.txt");
    he_write_file(path, "0123456789");
    ASYNC_FRAME_INIT(&m, he_cap_run);
    m.file = he_open(loop, path, "r");
    memset(m.buf, 'x', sizeof m.buf);
    ASSERT_EQ(async_run(loop, &m.task), 0);
    ASSERT_EQ(m.reader.code, 0);
    ASSERT_EQ(m.reader.nread, 3);
    ASSERT(memcmp(m.buf, "012xxxxx", 8) == 0);
    ASSERT_EQ(he_close(loop, m.file), 0);
    async_loop_free(loop);
    he_rmdir();
}

/* Two reads of one file in flight together, then the older of two open files closed first. */
typedef struct {
    async_task task;
    he_op_frame r[2];
    async_group g;
    async_file *file;
    char buf[2][4];
} he_two_frame;

static async_status he_two_run(async_task *t) {
    he_two_frame *f = (he_two_frame *)t;
    int i;
    ASYNC_BEGIN(t);
    for (i = 0; i < 2; i++) {
        he_op(&f->r[i], HE_READ)->file = f->file;
        f->r[i].buf = f->buf[i];
        f->r[i].cap = 4;
    }
    AWAIT_GATHER(t, &f->g, &f->r[0].task, &f->r[1].task);
    ASYNC_END(t);
}

TEST(thread_hosted_errors_file_two_reads_in_flight_then_close_in_any_order) {
    async_loop *loop = he_loop();
    static he_two_frame m;
    const char *path = he_path("two.txt");
    async_file *older;
    char got[9];
    he_write_file(path, "abcdefgh");
    older = he_open(loop, path, "r");
    ASYNC_FRAME_INIT(&m, he_two_run);
    m.file = he_open(loop, path, "r");
    ASSERT_EQ(async_run(loop, &m.task), 0);
    ASSERT_EQ(m.r[0].nread + m.r[1].nread, 8); /* one file offset: the reads took turns */
    if (memcmp(m.buf[0], "abcd", 4) == 0) {
        memcpy(got, m.buf[0], 4);
        memcpy(got + 4, m.buf[1], 4);
    } else {
        memcpy(got, m.buf[1], 4);
        memcpy(got + 4, m.buf[0], 4);
    }
    got[8] = '\0';
    ASSERT_STR_EQ(got, "abcdefgh");
    ASSERT_EQ(he_close(loop, older), 0); /* not the newest of the loop's files */
    ASSERT_EQ(he_close(loop, m.file), 0);
    ASSERT_EQ(async_loop_jobs(loop), 0);
    async_loop_free(loop);
    he_rmdir();
}

/* ---- every await: a cancellation pending at its start, a NULL call record ---- */

TEST(thread_hosted_errors_cancel_pending_at_each_await_never_starts_the_call) {
    async_loop *loop = he_loop();
    static he_op_frame f;
    static char buf[8];
    const char *path = he_path("c.txt"), *fresh = he_path("fresh.txt");
    async_file *file;
    he_write_file(path, "abc");
    file = he_open(loop, path, "r+");
    he_runs = 0;
    he_op(&f, HE_TO_THREAD)->cancel_first = true;
    ASSERT_EQ(he_go(loop, &f), ASYNC_ECANCELED);
    ASSERT(!f.reached);
    he_op(&f, HE_READ_ALL)->cancel_first = true;
    f.path = path;
    ASSERT_EQ(he_go(loop, &f), ASYNC_ECANCELED);
    ASSERT(f.all == NULL);
    he_op(&f, HE_WRITE_ALL)->cancel_first = true;
    f.path = fresh;
    f.data = "new";
    f.len = 3;
    ASSERT_EQ(he_go(loop, &f), ASYNC_ECANCELED);
    he_op(&f, HE_OPEN)->cancel_first = true;
    f.path = fresh;
    f.how = "w";
    ASSERT_EQ(he_go(loop, &f), ASYNC_ECANCELED);
    ASSERT(f.file == NULL);
    ASSERT(access(fresh, F_OK) != 0); /* neither the write_all nor the open created it */
    he_op(&f, HE_WRITE)->cancel_first = true;
    f.file = file;
    f.data = "XYZ";
    f.len = 3;
    ASSERT_EQ(he_go(loop, &f), ASYNC_ECANCELED);
    he_op(&f, HE_READ)->cancel_first = true;
    f.file = file;
    f.buf = buf;
    f.cap = sizeof buf;
    ASSERT_EQ(he_go(loop, &f), ASYNC_ECANCELED);
    he_op(&f, HE_CLOSE)->cancel_first = true;
    f.file = file;
    ASSERT_EQ(he_go(loop, &f), ASYNC_ECANCELED);
    ASSERT_EQ(async_loop_jobs(loop), 0);
    /* none of them ran: the function was never called, the file is open, unread and unwritten */
    ASSERT_EQ(__atomic_load_n(&he_runs, __ATOMIC_SEQ_CST), 0);
    he_op(&f, HE_READ)->file = file;
    f.buf = buf;
    f.cap = sizeof buf;
    ASSERT_EQ(he_go(loop, &f), 0);
    ASSERT_EQ(f.nread, 3);
    ASSERT(memcmp(buf, "abc", 3) == 0);
    ASSERT_EQ(he_close(loop, file), 0);
    async_loop_free(loop);
    he_rmdir();
}

TEST(thread_hosted_errors_null_call_is_einval_for_every_await) {
    async_loop *loop = he_loop();
    static he_op_frame f;
    static char buf[8];
    const char *path = he_path("n.txt");
    async_file *file;
    int op;
    he_write_file(path, "abc");
    file = he_open(loop, path, "r+");
    he_runs = 0;
    for (op = HE_TO_THREAD; op <= HE_CLOSE; op++) {
        he_op(&f, op)->callp = NULL;
        f.path = path;
        f.how = "r";
        f.data = "x";
        f.len = 1;
        f.buf = buf;
        f.cap = sizeof buf;
        f.file = file;
        ASSERT_EQ(he_go(loop, &f), ASYNC_EINVAL);
        ASSERT(!f.reached);
    }
    ASSERT_EQ(async_loop_jobs(loop), 0);
    ASSERT_EQ(__atomic_load_n(&he_runs, __ATOMIC_SEQ_CST), 0);
    ASSERT_STR_EQ(he_read_file(path), "abc");
    ASSERT_EQ(he_close(loop, file), 0); /* the NULL close did not close it */
    async_loop_free(loop);
    he_rmdir();
}

/* The await's call record is an argument evaluated again at the resume: one swapped for a record with
 * no call in it is ASYNC_EINVAL there, and the call's result, which no one can receive now, goes to the
 * dtor (when the loop is freed), exactly once. */
typedef struct {
    async_task task;
    he_op_frame w;
    async_thread_call other;
    async_group g;
} he_swap_frame;

static async_status he_swap_run(async_task *t) {
    he_swap_frame *f = (he_swap_frame *)t;
    ASYNC_BEGIN(t);
    he_op(&f->w, HE_TO_THREAD)->fn = he_heap;
    f->w.arg = 5;
    f->w.dtor = he_free_dtor;
    ASYNC_SPAWN(t, &f->g, &f->w.task);
    ASYNC_YIELD(t); /* w waits for its call */
    ASSERT_EQ(async_loop_jobs(async_task_loop(t)), 1);
    f->w.callp = &f->other;
    AWAIT_GROUP(t, &f->g);
    ASYNC_END(t);
}

TEST(thread_hosted_errors_call_swapped_during_the_await_is_einval_and_the_dtor_frees) {
    async_loop *loop = he_loop();
    static he_swap_frame m;
    he_dtors = 0;
    ASYNC_FRAME_INIT(&m, he_swap_run);
    ASSERT_EQ(async_run(loop, &m.task), 0);
    ASSERT_EQ(m.w.code, ASYNC_EINVAL);
    ASSERT(!m.w.reached);
    ASSERT_EQ(async_thread_result(&m.other), 0);
    ASSERT_EQ(async_loop_jobs(loop), 0);
    ASSERT_EQ(he_dtors, 0);
    async_loop_free(loop);
    ASSERT_EQ(he_dtors, 1);
}

/* ---- the thread pool ---- */

/* The default stack size set so large that no thread can be made: the loop's pool fails to start with
 * ASYNC_EAGAIN at the await, async_pool_new gives NULL, and once threads can be made again the same loop
 * makes its pool at the next call. */
TEST(thread_hosted_errors_pool_that_cannot_start_threads_is_eagain) {
    async_loop *loop = he_loop();
    static he_op_frame f;
    pthread_attr_t saved, huge;
    int base = he_threads_base();
    ASSERT_EQ(pthread_getattr_default_np(&saved), 0);
    ASSERT_EQ(pthread_attr_init(&huge), 0);
    ASSERT_EQ(pthread_attr_setstacksize(&huge, (size_t)1 << 50), 0); /* more than the address space */
    ASSERT_EQ(pthread_setattr_default_np(&huge), 0);
    he_runs = 0;
    he_op(&f, HE_TO_THREAD)->arg = 3;
    /* glibc turns the failed mmap of the stack into EAGAIN; under valgrind that mmap fails with EINVAL,
     * which pthread_create passes on: the pool reports ASYNC_EAGAIN either way, as async.h says */
    ASSERT_EQ(he_go(loop, &f), ASYNC_EAGAIN);
    ASSERT(async_pool_new(2) == NULL);
    ASSERT_EQ(pthread_setattr_default_np(&saved), 0);
    pthread_attr_destroy(&huge);
    pthread_attr_destroy(&saved);
    ASSERT_EQ(he_threads(base), base); /* nothing half-made is left running */
    ASSERT_EQ(__atomic_load_n(&he_runs, __ATOMIC_SEQ_CST), 0);
    ASSERT_EQ(async_loop_set_threads(loop, 2), 0);
    he_op(&f, HE_TO_THREAD)->arg = 4;
    ASSERT_EQ(he_go(loop, &f), 0);
    ASSERT_EQ(f.result, 4);
    ASSERT_EQ(he_threads(base + 2), base + 2);
    async_loop_free(loop);
}

/* ASYNC_THREADS values that are no count in 1..ASYNC_POOL_MAX_THREADS give the default pool. */
TEST(thread_hosted_errors_bad_async_threads_values_give_the_default_pool) {
    static const char *const bad[] = {"abc", "", "5x", "0", "-3", "1025"};
    static he_op_frame f;
    int base = he_threads_base();
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        async_loop *loop;
        ASSERT_EQ(setenv("ASYNC_THREADS", bad[i], 1), 0);
        loop = he_loop();
        he_op(&f, HE_TO_THREAD)->arg = (intptr_t)i;
        ASSERT_EQ(he_go(loop, &f), 0);
        ASSERT_EQ(f.result, (intptr_t)i);
        ASSERT_EQ(he_threads(base + (int)ASYNC_POOL_DEFAULT_THREADS), base + (int)ASYNC_POOL_DEFAULT_THREADS);
        async_loop_free(loop);
        ASSERT_EQ(he_threads(base), base);
    }
    unsetenv("ASYNC_THREADS");
}

/* The loop's own pool: a size equal to the current one changes nothing, another size stops it (remade at
 * the next call); a shared pool stops it too; the same shared pool again is no change; NULL goes back to
 * a pool of its own. */
TEST(thread_hosted_errors_pool_resizes_and_switches_stop_idle_threads) {
    async_loop *loop = he_loop();
    static he_op_frame f;
    async_pool *shared;
    int base = he_threads_base();
    ASSERT_EQ(async_loop_set_threads(loop, 2), 0);
    he_op(&f, HE_TO_THREAD);
    ASSERT_EQ(he_go(loop, &f), 0);
    ASSERT_EQ(he_threads(base + 2), base + 2);
    ASSERT_EQ(async_loop_set_threads(loop, 2), 0); /* the same size: the pool stays */
    ASSERT_EQ(he_threads_now(), base + 2);
    ASSERT_EQ(async_loop_set_threads(loop, 3), 0); /* stopped now, made again at the next call */
    ASSERT_EQ(he_threads(base), base);
    he_op(&f, HE_TO_THREAD)->arg = 1;
    ASSERT_EQ(he_go(loop, &f), 0);
    ASSERT_EQ(f.result, 1);
    ASSERT_EQ(he_threads(base + 3), base + 3);
    shared = async_pool_new(1);
    ASSERT(shared != NULL);
    ASSERT_EQ(async_loop_set_pool(loop, shared), 0); /* its own pool would only idle: stopped */
    ASSERT_EQ(he_threads(base + 1), base + 1);
    ASSERT_EQ(async_loop_set_pool(loop, shared), 0); /* again: nothing changes */
    ASSERT_EQ(async_pool_free(shared), ASYNC_EBUSY);
    he_op(&f, HE_TO_THREAD)->arg = 2;
    ASSERT_EQ(he_go(loop, &f), 0);
    ASSERT_EQ(f.result, 2);
    ASSERT_EQ(he_threads_now(), base + 1);
    ASSERT_EQ(async_loop_set_pool(loop, NULL), 0);
    ASSERT_EQ(async_pool_free(shared), 0); /* no loop uses it now */
    ASSERT_EQ(he_threads(base), base);
    he_op(&f, HE_TO_THREAD)->arg = 3;
    ASSERT_EQ(he_go(loop, &f), 0); /* on a new pool of its own, of the size set */
    ASSERT_EQ(f.result, 3);
    ASSERT_EQ(he_threads(base + 3), base + 3);
    async_loop_free(loop);
    ASSERT_EQ(he_threads(base), base);
}

/* More calls in flight than the loop keeps records for reuse: each comes back right, then a second
 * round reuses the kept records; the surplus is freed (ASan and valgrind see no leak). */
enum { HE_MANY = 5000 };

typedef struct {
    async_task task;
    async_thread_call call;
    intptr_t i, result;
} he_small_frame;

static async_status he_small_run(async_task *t) {
    he_small_frame *f = (he_small_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT_TO_THREAD(t, &f->call, he_count, (void *)f->i, NULL);
    f->result = async_thread_result(&f->call);
    ASYNC_END(t);
}

typedef struct {
    async_task task;
    he_small_frame calls[HE_MANY];
    async_group all;
    int round, bad;
} he_many_frame;

static async_status he_many_run(async_task *t) {
    he_many_frame *f = (he_many_frame *)t;
    int i;
    ASYNC_BEGIN(t);
    for (f->round = 0; f->round < 2; f->round++) {
        for (i = 0; i < HE_MANY; i++) {
            ASYNC_FRAME_INIT(&f->calls[i], he_small_run);
            f->calls[i].i = i * 3 + f->round;
        }
        AWAIT_GATHER_ARRAY(t, &f->all, &f->calls[0].task, HE_MANY, sizeof f->calls[0]);
        for (i = 0; i < HE_MANY; i++)
            if (f->calls[i].result != i * 3 + f->round) f->bad++;
    }
    ASYNC_END(t);
}

TEST(thread_hosted_errors_job_records_kept_for_reuse_are_capped) {
    async_loop *loop = he_loop();
    static he_many_frame m;
    he_runs = 0;
    ASYNC_FRAME_INIT(&m, he_many_run);
    ASSERT_EQ(async_run(loop, &m.task), 0);
    ASSERT_EQ(m.bad, 0);
    ASSERT_EQ(__atomic_load_n(&he_runs, __ATOMIC_SEQ_CST), 2 * HE_MANY);
    ASSERT_EQ(async_loop_jobs(loop), 0);
    async_loop_free(loop);
}

/* A hosted loop whose allocator was taken away: job records and the loop's thread state come from
 * malloc, and go back to free. */
TEST(thread_hosted_errors_loop_without_allocator_uses_malloc) {
    async_loop *loop = he_loop();
    static he_op_frame f;
    const char *path = he_path("malloc.txt");
    async_loop_set_allocator(loop, NULL, NULL);
    he_op(&f, HE_TO_THREAD)->arg = 11;
    ASSERT_EQ(he_go(loop, &f), 0);
    ASSERT_EQ(f.result, 11);
    he_op(&f, HE_WRITE_ALL)->path = path; /* a record with a payload */
    f.data = "mem";
    f.len = 3;
    ASSERT_EQ(he_go(loop, &f), 0);
    ASSERT_EQ(f.result, 3);
    ASSERT_STR_EQ(he_read_file(path), "mem");
    async_loop_free(loop);
    he_rmdir();
}

/* ---- frame pools ---- */

TEST(hosted_errors_frames_larger_than_the_address_space_are_null) {
    void *p = async_frames_new((size_t)1 << 50, 1); /* no overflow, but no mapping can be that large */
    ASSERT(p == NULL);
    async_frames_free(p, (size_t)1 << 50, 1);
    p = async_frames_new(1 << 20, 2); /* 2 MiB: mapped */
    ASSERT(p != NULL);
    ASSERT_EQ(((unsigned char *)p)[(2 << 20) - 1], 0);
    async_frames_free(p, 1 << 20, 2);
}

/* ---- debug mode ---- */

typedef struct {
    async_task task;
    int ms;
    unsigned slept_line;
} he_sleeper_frame;

static async_status he_sleeper_run(async_task *t) {
    he_sleeper_frame *f = (he_sleeper_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT_SLEEP(t, f->ms); f->slept_line = __LINE__;
    ASYNC_END(t);
}

static async_task *he_sleeper(he_sleeper_frame *f, int ms) {
    if (ASYNC_FRAME_INIT(f, he_sleeper_run)) f->ms = ms;
    return &f->task;
}

/* The debug calls on a loop that is not in debug mode change nothing, turning it on or off twice is no
 * error, and the dump goes to stderr when given no stream (NULL loop: nothing at all). */
TEST(hosted_errors_debug_api_on_loops_without_debug_mode) {
    async_loop *loop = he_loop();
    static he_sleeper_frame s;
    FILE *out = he_capture();
    const char *err;
    async_debug_set_slow_step(loop, 0);  /* ignored: not in debug mode */
    async_debug_set_output(loop, out);   /* ignored too */
    ASSERT_EQ(async_debug_dump_on_sigquit(loop), ASYNC_EINVAL);
    ASSERT_EQ(async_loop_set_debug(loop, false), 0); /* already off */
    ASSERT(!async_loop_debug(loop));
    ASSERT(!async_loop_debug(NULL));
    ASSERT_EQ(async_loop_set_debug(loop, true), 0);
    ASSERT_EQ(async_loop_set_debug(loop, true), 0); /* already on: the same state, not a second one */
    ASSERT(async_loop_debug(loop));
    ASSERT_EQ(async_debug_dump_on_sigquit(loop), 0);
    ASSERT_EQ(async_debug_dump_on_sigquit(loop), 0); /* already on */
    he_capture_stderr();
    ASSERT_EQ(async_run(loop, he_sleeper(&s, 5)), 0); /* quick steps: the 0 ms threshold was ignored */
    async_debug_set_output(loop, NULL);            /* reports go to stderr */
    async_dump(loop, NULL);                        /* and so does a dump without a stream */
    async_dump(NULL, out);                         /* no loop: nothing */
    err = he_release_stderr();
    ASSERT_STR_EQ(he_captured(out), "");
    ASSERT(strstr(err, "async: 0 live tasks at ") == err);
    ASSERT_EQ(async_loop_set_debug(loop, false), 0);
    ASSERT_EQ(async_loop_set_debug(loop, false), 0);
    ASSERT(!async_loop_debug(loop));
    async_loop_free(loop);
    fclose(out);
}

/* With a threshold of 0 every step is reported: a step that ends the task says "then finished". */
TEST(hosted_errors_debug_slow_step_of_a_step_that_finishes) {
    async_loop *loop = he_loop();
    static he_sleeper_frame s;
    FILE *out = he_capture();
    const char *got, *last;
    char expect[256];
    ASSERT_EQ(async_loop_set_debug(loop, true), 0);
    async_debug_set_output(loop, out);
    async_debug_set_slow_step(loop, 0);
    ASSERT_EQ(async_run(loop, he_sleeper(&s, 5)), 0);
    got = he_captured(out);
    ASSERT(strstr(got, "async: debug: a step of he_sleeper_run (task) blocked the loop for ") == got);
    snprintf(expect, sizeof expect, "next suspended at %s:%u in he_sleeper_run\n", __FILE__, s.slept_line);
    ASSERT(strstr(got, expect));
    last = strstr(got + 1, "async: debug: a step of he_sleeper_run");
    ASSERT(last != NULL);
    snprintf(expect, sizeof expect, "resumed at %s:%u in he_sleeper_run, then finished\n", __FILE__, s.slept_line);
    ASSERT(strstr(last, expect) != NULL);
    async_loop_free(loop);
    fclose(out);
}

/* A coroutine awaited inline that ends at once, under the default threshold: no report. */
typedef struct {
    async_task task;
} he_quick_frame;

static async_status he_quick_run(async_task *t) {
    ASYNC_BEGIN(t);
    ASYNC_RETURN(t, 42);
    ASYNC_END(t);
}

typedef struct {
    async_task task;
    he_quick_frame q[3];
    intptr_t sum;
    int i;
} he_quick_main_frame;

static async_status he_quick_main_run(async_task *t) {
    he_quick_main_frame *f = (he_quick_main_frame *)t;
    ASYNC_BEGIN(t);
    for (f->i = 0; f->i < 3; f->i++) {
        ASYNC_FRAME_INIT(&f->q[f->i], he_quick_run);
        AWAIT(t, &f->q[f->i].task);
        f->sum += async_task_value(&f->q[f->i].task);
    }
    ASYNC_END(t);
}

TEST(hosted_errors_debug_quick_inline_coroutine_is_not_reported) {
    async_loop *loop = he_loop();
    static he_quick_main_frame m;
    FILE *out = he_capture();
    ASSERT_EQ(async_loop_set_debug(loop, true), 0);
    async_debug_set_output(loop, out);
    ASYNC_FRAME_INIT(&m, he_quick_main_run);
    ASSERT_EQ(async_run(loop, &m.task), 0);
    ASSERT_EQ(m.sum, 126);
    ASSERT_STR_EQ(he_captured(out), "");
    async_dump(loop, out);
    ASSERT(strstr(he_captured(out), "async: 0 live tasks at ") != NULL); /* the table let go of them all */
    async_loop_free(loop);
    fclose(out);
}

/* Hundreds of tasks ending in a scrambled order: the table of live tasks grows, and after every wave of
 * endings the dump lists exactly the tasks still alive (an entry lost by a deletion would come back as
 * a duplicate when its task next steps). The frames are a random subset of a larger pool, so that their
 * addresses hash like random keys: sequential frames spread evenly and never form the long runs of
 * slots, wrapping past the table's end, that deletion must shift back. */
enum { HE_CROWD = 760, HE_POOL = 4 * HE_CROWD }; /* 1,024 slots three quarters full */

typedef struct {
    async_task task;
    he_sleeper_frame *s[HE_CROWD];
    async_group g;
    FILE *out;
    int i, alive, bad;
} he_crowd_frame;

static he_sleeper_frame he_crowd_pool[HE_POOL];

/* debug.c's slot for task t in a table of cap slots (its hash, copied: if it changes, only the runs
 * that wrap become a matter of chance) */
static size_t he_debug_slot(const void *t, size_t cap) {
    uintptr_t h = (uintptr_t)t;
    h ^= h >> 17;
    h *= (uintptr_t)0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 7) & (cap - 1);
}

static unsigned he_rand(unsigned *seed) { /* a fixed sequence: the same subset and durations every run */
    *seed = *seed * 1103515245u + 12345u;
    return (*seed >> 8) & 0xFFFFFF;
}

static int he_dump_count(FILE *out, const char *name, int *lines) {
    const char *got = he_captured(out), *p;
    unsigned long n = 0;
    *lines = 0;
    if (sscanf(got, "async: %lu live task", &n) != 1) return -1;
    for (p = got; (p = strstr(p, name)) != NULL; p++) (*lines)++;
    return (int)n;
}

static async_status he_crowd_run(async_task *t) {
    he_crowd_frame *f = (he_crowd_frame *)t;
    int i, lines;
    ASYNC_BEGIN(t);
    for (i = 0; i < HE_CROWD; i++) ASYNC_SPAWN(t, &f->g, &f->s[i]->task);
    for (f->i = 0; f->i < 64; f->i++) {
        AWAIT_SLEEP(t, 1);
        f->alive = 0;
        for (i = 0; i < HE_CROWD; i++)
            if (!async_task_done(&f->s[i]->task)) f->alive++;
        he_clear(f->out);
        async_dump(async_task_loop(t), f->out);
        if (he_dump_count(f->out, "he_sleeper_run ", &lines) != 1 + f->alive || lines != f->alive) f->bad++;
    }
    ASSERT_EQ(f->alive, 0);
    AWAIT_GROUP(t, &f->g);
    ASYNC_END(t);
}

TEST(hosted_errors_debug_table_of_hundreds_of_tasks) {
    async_loop *loop = he_loop();
    static he_crowd_frame m;
    static int taken[HE_POOL];
    FILE *out = he_capture();
    unsigned seed = 2024;
    int i, k, late;
    ASSERT_EQ(async_loop_set_debug(loop, true), 0);
    async_debug_set_output(loop, out);
    async_debug_set_slow_step(loop, 600000); /* the dumps themselves are slow under valgrind */
    ASYNC_FRAME_INIT(&m, he_crowd_run);
    m.out = out;
    /* first a run across the end of the 1,024-slot table: twelve frames whose home is one of its last
     * eight slots (they overflow past the end) and twelve homed in its first eight; then random ones */
    for (i = 0, k = 0, late = 0; k < HE_POOL && i < 24; k++) {
        size_t home = he_debug_slot(&he_crowd_pool[k].task, 1024);
        if ((home >= 1016 && late < 12) || (home < 8 && i - late < 12)) {
            late += home >= 1016;
            taken[k] = 1;
            m.s[i++] = &he_crowd_pool[k];
        }
    }
    for (; i < HE_CROWD; i++) {
        k = (int)(he_rand(&seed) % HE_POOL);
        while (taken[k]) k = (k + 1) % HE_POOL;
        taken[k] = 1;
        m.s[i] = &he_crowd_pool[k];
    }
    for (i = 0; i < HE_CROWD; i++) he_sleeper(m.s[i], 1 + (int)(he_rand(&seed) % 60));
    ASSERT_EQ(async_run(loop, &m.task), 0);
    ASSERT_EQ(m.bad, 0);
    async_loop_free(loop);
    fclose(out);
}

/* A chain of 1,100 coroutines, each awaiting the next inline: the dump prints the tree only 64 levels
 * deep (it would otherwise run away), counts every task, and stepping the chain stays bounded. */
enum { HE_DEPTH = 1100 };

typedef struct {
    async_task task;
    int i;
} he_chain_frame;

static he_chain_frame he_chain[HE_DEPTH];

static async_task *he_link(int i);

static async_status he_chain_run(async_task *t) {
    he_chain_frame *f = (he_chain_frame *)t;
    ASYNC_BEGIN(t);
    if (f->i + 1 < HE_DEPTH) {
        AWAIT(t, he_link(f->i + 1));
    } else {
        AWAIT_SLEEP(t, 10);
    }
    ASYNC_RETURN(t, f->i);
    ASYNC_END(t);
}

static async_task *he_link(int i) {
    if (ASYNC_FRAME_INIT(&he_chain[i], he_chain_run)) he_chain[i].i = i;
    return &he_chain[i].task;
}

typedef struct {
    async_task task;
    async_group g;
    FILE *out;
} he_deep_frame;

static async_status he_deep_run(async_task *t) {
    he_deep_frame *f = (he_deep_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_SPAWN(t, &f->g, he_link(0));
    ASYNC_YIELD(t); /* the whole chain has started: its innermost coroutine sleeps */
    async_dump(async_task_loop(t), f->out);
    async_debug_set_slow_step(async_task_loop(t), 0); /* the resume of the chain is reported */
    AWAIT_GROUP(t, &f->g);
    ASYNC_END(t);
}

TEST(hosted_errors_debug_deep_inline_chain_dump_is_capped) {
    async_loop *loop = he_loop();
    static he_deep_frame m;
    FILE *out = he_capture();
    const char *got, *p, *last = NULL;
    int lines = 0;
    ASSERT_EQ(async_loop_set_debug(loop, true), 0);
    async_debug_set_output(loop, out);
    async_debug_set_slow_step(loop, 600000); /* starting 1,100 coroutines under valgrind is no report */
    ASYNC_FRAME_INIT(&m, he_deep_run);
    m.out = out;
    ASSERT_EQ(async_run(loop, &m.task), 0);
    ASSERT_EQ(async_task_value(&he_chain[0].task), 0);
    ASSERT(async_task_done(&he_chain[HE_DEPTH - 1].task));
    got = he_captured(out);
    ASSERT(strstr(got, "async: 1101 live tasks at ") == got);
    for (p = strchr(got, '\n'); p && p[1] == ' '; p = strchr(p + 1, '\n')) {
        lines++;
        last = p + 1;
    }
    ASSERT_EQ(lines, 65); /* he_deep_run, then the chain down to depth 64 */
    ASSERT(last != NULL);
    ASSERT_EQ(strspn(last, " "), 2 + 2 * 64);
    ASSERT(strstr(last, "he_chain_run " __FILE__ ":"));
    ASSERT(strstr(last, "(awaiting inline)\n"));
    /* the step that resumed the chain was reported, naming a coroutine of the chain */
    ASSERT(strstr(got, "async: debug: a step of he_chain_run (task) blocked the loop for "));
    async_loop_free(loop);
    fclose(out);
}

/* At loop free: a task cancelled before it started ended without running and is forgotten; one that
 * ran and waits in the ready queue is not "never started"; one spawned and never run is reported. */
typedef struct {
    async_task task;
    int steps;
} he_yielder_frame;

static async_status he_yielder_run(async_task *t) {
    he_yielder_frame *f = (he_yielder_frame *)t;
    ASYNC_BEGIN(t);
    for (;;) {
        f->steps++;
        ASYNC_YIELD(t);
    }
    ASYNC_END(t);
}

TEST(hosted_errors_debug_cancelled_and_unstarted_tasks_at_loop_free) {
    async_loop *loop = he_loop();
    static he_sleeper_frame cancelled, never;
    static he_yielder_frame y;
    FILE *out = he_capture();
    ASSERT_EQ(async_loop_set_debug(loop, true), 0);
    async_debug_set_output(loop, out);
    ASSERT_EQ(async_spawn(loop, he_sleeper(&cancelled, 5)), 0);
    ASSERT(async_cancel(&cancelled.task));
    ASYNC_FRAME_INIT(&y, he_yielder_run);
    ASSERT_EQ(async_spawn(loop, &y.task), 0);
    ASSERT_EQ(async_poll(loop), 0);
    ASSERT_EQ(async_task_code(&cancelled.task), ASYNC_ECANCELED);
    ASSERT_EQ(cancelled.slept_line, 0); /* its body never ran */
    ASSERT_EQ(y.steps, 1);
    async_dump(loop, out);
    ASSERT(strstr(he_captured(out), "async: 1 live task at ") == he_captured(out));
    ASSERT(strstr(he_captured(out), "  he_yielder_run " __FILE__ ":"));
    he_clear(out);
    ASSERT_EQ(async_spawn(loop, he_sleeper(&never, 5)), 0);
    async_loop_free(loop);
    ASSERT_STR_EQ(he_captured(out), "async: debug: task he_sleeper_run (task, " __FILE__ ") was never started\n");
    fclose(out);
}

/* Debug mode switched on by a coroutine while other tasks wait: tasks it has not seen step yet are not
 * in its table. A group child seen first is shown as a root (its parent is unknown); an inline coroutine
 * that ends before its task was seen is let go without a trace; no step is misreported. */
typedef struct {
    async_task task;
} he_twice_frame;

static async_status he_twice_run(async_task *t) {
    ASYNC_BEGIN(t);
    AWAIT_SLEEP(t, 10);
    AWAIT_SLEEP(t, 10);
    ASYNC_END(t);
}

typedef struct {
    async_task task;
    he_twice_frame kid;
    he_sleeper_frame inner;
    async_group g;
} he_late_main_frame;

static async_status he_late_main_run(async_task *t) {
    he_late_main_frame *f = (he_late_main_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_FRAME_INIT(&f->kid, he_twice_run);
    ASYNC_SPAWN(t, &f->g, &f->kid.task);
    AWAIT(t, he_sleeper(&f->inner, 15));
    AWAIT_GROUP(t, &f->g);
    ASYNC_END(t);
}

typedef struct {
    async_task task;
    FILE *out;
    char first[1024], second[1024];
} he_observer_frame;

static async_status he_observer_run(async_task *t) {
    he_observer_frame *f = (he_observer_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_YIELD(t);
    ASYNC_YIELD(t); /* main and its child wait now */
    ASSERT_EQ(async_loop_set_debug(async_task_loop(t), true), 0);
    async_debug_set_output(async_task_loop(t), f->out);
    AWAIT_SLEEP(t, 12); /* the child has stepped (at 10), main has not (its inline sleep ends at 15) */
    he_clear(f->out);
    async_dump(async_task_loop(t), f->out);
    he_copy(f->first, sizeof f->first, he_captured(f->out));
    AWAIT_SLEEP(t, 10); /* everything else has ended */
    he_clear(f->out);
    async_dump(async_task_loop(t), f->out);
    he_copy(f->second, sizeof f->second, he_captured(f->out));
    ASYNC_END(t);
}

TEST(hosted_errors_debug_switched_on_while_tasks_wait) {
    async_loop *loop = he_loop();
    static he_late_main_frame m;
    static he_observer_frame o;
    FILE *out = he_capture();
    ASYNC_FRAME_INIT(&m, he_late_main_run);
    ASSERT_EQ(async_spawn(loop, &m.task), 0);
    ASYNC_FRAME_INIT(&o, he_observer_run);
    o.out = out;
    ASSERT_EQ(async_run(loop, &o.task), 0);
    ASSERT_EQ(async_task_code(&m.task), 0);
    ASSERT(strstr(o.first, "async: 2 live tasks at ") == o.first);
    ASSERT(strstr(o.first, "\n  he_twice_run " __FILE__ ":")); /* a root: depth 0 */
    ASSERT(strstr(o.first, " (sleeping)\n"));
    ASSERT(strstr(o.first, "\n  he_observer_run " __FILE__ ":"));
    ASSERT(!strstr(o.first, "he_late_main_run"));
    ASSERT(strstr(o.second, "async: 1 live task at ") == o.second);
    ASSERT(!strstr(he_captured(out), "blocked the loop")); /* every step was quick */
    async_loop_free(loop);
    fclose(out);
}

/* Debug mode switched off by a coroutine in the middle of its step: the step ends normally, the loop runs
 * on without hooks, and a task spawned but not yet started is reported as the mode goes. */
typedef struct {
    async_task task;
    he_sleeper_frame later;
    bool after;
} he_off_frame;

static async_status he_off_run(async_task *t) {
    he_off_frame *f = (he_off_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_YIELD(t);
    ASSERT_EQ(async_spawn(async_task_loop(t), he_sleeper(&f->later, 1)), 0);
    ASSERT_EQ(async_loop_set_debug(async_task_loop(t), false), 0);
    ASSERT(!async_loop_debug(async_task_loop(t)));
    ASSERT_EQ(async_loop_set_debug(async_task_loop(t), false), 0); /* off twice: still off */
    ASSERT(!async_loop_debug(async_task_loop(t)));
    ASSERT_EQ(async_loop_set_debug(async_task_loop(t), true), 0); /* on again within the step: kept */
    ASSERT(async_loop_debug(async_task_loop(t)));
    ASSERT_EQ(async_loop_set_debug(async_task_loop(t), false), 0);
    ASSERT(!async_loop_debug(async_task_loop(t)));
    ASYNC_YIELD(t);
    AWAIT(t, &f->later.task);
    f->after = true;
    ASYNC_END(t);
}

TEST(hosted_errors_debug_switched_off_inside_a_step) {
    async_loop *loop = he_loop();
    static he_off_frame m;
    FILE *out = he_capture();
    ASSERT_EQ(async_loop_set_debug(loop, true), 0);
    async_debug_set_output(loop, out);
    ASYNC_FRAME_INIT(&m, he_off_run);
    ASSERT_EQ(async_run(loop, &m.task), 0);
    ASSERT(m.after);
    ASSERT(!async_loop_debug(loop));
    ASSERT_STR_EQ(he_captured(out), "async: debug: task he_sleeper_run (task, " __FILE__ ") was never started\n");
    async_loop_free(loop);
    fclose(out);
}

/* ASYNC_DEBUG: any value but "0" or the empty string turns debug mode on, with the SIGQUIT dump. */
typedef struct {
    async_task task;
    FILE *out;
    int polls;
} he_quit_frame;

static async_status he_quit_run(async_task *t) {
    he_quit_frame *f = (he_quit_frame *)t;
    ASYNC_BEGIN(t);
    raise(SIGQUIT); /* caught by libev; the dump runs in a later iteration */
    while (ftell(f->out) == 0 && f->polls++ < 100000) ASYNC_YIELD(t);
    ASYNC_END(t);
}

TEST(hosted_errors_debug_environment_values_and_sigquit) {
    async_loop *loop;
    static he_quit_frame q;
    FILE *out = he_capture();
    ASSERT_EQ(setenv("ASYNC_DEBUG", "", 1), 0);
    loop = async_loop_new(0);
    ASSERT(loop != NULL);
    ASSERT(!async_loop_debug(loop)); /* empty: as if unset */
    async_loop_free(loop);
    ASSERT_EQ(setenv("ASYNC_DEBUG", "yes", 1), 0);
    loop = async_loop_new(0);
    ASSERT(loop != NULL);
    ASSERT(async_loop_debug(loop));
    ASSERT_EQ(async_debug_dump_on_sigquit(loop), 0); /* already installed by the environment */
    async_debug_set_output(loop, out);
    ASYNC_FRAME_INIT(&q, he_quit_run);
    q.out = out;
    ASSERT_EQ(async_run(loop, &q.task), 0);
    ASSERT(strstr(he_captured(out), "async: 1 live task at "));
    ASSERT(strstr(he_captured(out), "  he_quit_run " __FILE__ ":"));
    async_loop_free(loop);
    unsetenv("ASYNC_DEBUG");
    fclose(out);
}

/* ---- the libev backend ---- */

static async_ms he_clock_moves(async_loop *loop) {
    async_ms before = async_loop_time(loop);
    struct timespec ts = {0, 5000000L};
    while (nanosleep(&ts, &ts) != 0) {}
    return async_loop_time(loop) - before;
}

/* ASYNC_CLOCK=virtual gives the virtual clock; any other value (or none) the monotonic clock, unless
 * the flag asks for the virtual one. */
TEST(hosted_errors_ev_clock_environment_values) {
    async_loop *loop;
    ASSERT_EQ(setenv("ASYNC_CLOCK", "virtual", 1), 0);
    loop = async_loop_new(0);
    ASSERT(loop != NULL);
    ASSERT_EQ(he_clock_moves(loop), 0);
    async_loop_free(loop);
    ASSERT_EQ(setenv("ASYNC_CLOCK", "real", 1), 0);
    loop = async_loop_new(0);
    ASSERT(loop != NULL);
    ASSERT(he_clock_moves(loop) >= 5);
    async_loop_free(loop);
    loop = async_loop_new(ASYNC_LOOP_VIRTUAL_CLOCK); /* the flag wins */
    ASSERT(loop != NULL);
    ASSERT_EQ(he_clock_moves(loop), 0);
    async_loop_free(loop);
    unsetenv("ASYNC_CLOCK");
}

/* On the real clock, a main waiting for something nothing can bring is a deadlock too, found at once. */
typedef struct {
    async_task task;
    async_future never;
    int code;
} he_never_frame;

static async_status he_never_run(async_task *t) {
    he_never_frame *f = (he_never_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_TRY(t) {
        AWAIT_FUTURE(t, &f->never);
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
        ASYNC_RERAISE(t);
    }
    ASYNC_END_TRY(t);
    ASYNC_END(t);
}

TEST(hosted_errors_ev_real_clock_deadlock_is_edeadlk) {
    async_loop *loop = async_loop_new(0);
    static he_never_frame m;
    ASSERT(loop != NULL);
    ASYNC_FRAME_INIT(&m, he_never_run);
    ASSERT_EQ(async_run(loop, &m.task), ASYNC_EDEADLK);
    ASSERT_EQ(m.code, ASYNC_ECANCELED); /* main was cancelled first, so its handlers ran */
    async_loop_free(loop);
}

/* A one-shot libev timer of the application, on the loop's own ev_loop, completes the future main waits
 * for: the timer was libev's last active watcher and stopped itself, yet the task it woke runs (no false
 * deadlock). */
typedef struct {
    async_task task;
    async_future woken;
} he_woken_frame;

static async_status he_woken_run(async_task *t) {
    he_woken_frame *f = (he_woken_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT_FUTURE(t, &f->woken);
    ASYNC_RETURN(t, async_future_value(&f->woken));
    ASYNC_END(t);
}

static void he_app_timer_cb(struct ev_loop *ev, ev_timer *w, int revents) {
    (void)ev;
    (void)revents;
    async_future_set_value((async_future *)w->data, 17);
}

TEST(hosted_errors_ev_application_watcher_that_stops_itself_wakes_main) {
    async_loop *loop = async_loop_new(0);
    static he_woken_frame m;
    static ev_timer tm;
    ASSERT(loop != NULL);
    ASYNC_FRAME_INIT(&m, he_woken_run);
    ev_timer_init(&tm, he_app_timer_cb, 0., 0.);
    tm.data = &m.woken;
    ev_timer_start(async_loop_ev(loop), &tm);
    ASSERT_EQ(async_run(loop, &m.task), 0);
    ASSERT_EQ(async_task_value(&m.task), 17);
    ASSERT(!ev_is_active(&tm));
    async_loop_free(loop);
}

/* libev cannot make a loop (LIBEV_FLAGS asks for kqueue only, which Linux has not): async_loop_new is
 * NULL and async_main says so and returns ASYNC_ENOMEM; an application's own ev_loop still attaches. */
TEST(hosted_errors_ev_libev_without_a_backend) {
    static he_sleeper_frame s;
    struct ev_loop *ev = ev_loop_new(EVFLAG_AUTO);
    async_loop *attached;
    const char *err;
    int rc;
    ASSERT(ev != NULL);
    ASSERT_EQ(setenv("LIBEV_FLAGS", "8", 1), 0); /* EVBACKEND_KQUEUE */
    ASSERT(async_loop_new(0) == NULL);
    ASSERT(async_loop_new(ASYNC_LOOP_VIRTUAL_CLOCK) == NULL);
    he_capture_stderr();
    rc = async_main(he_sleeper(&s, 1));
    err = he_release_stderr();
    ASSERT_EQ(rc, ASYNC_ENOMEM);
    ASSERT_STR_EQ(err, "async: out of memory\n");
    ASSERT(!async_task_done(&s.task)); /* never ran */
    attached = async_loop_attach(ev);
    ASSERT(attached != NULL);
    ASSERT_EQ(async_spawn(attached, &s.task), 0);
    ev_run(ev, 0);
    ASSERT(async_task_done(&s.task));
    async_loop_free(attached);
    ev_loop_destroy(ev);
    unsetenv("LIBEV_FLAGS");
}

/* async_main of a task that already finished: ASYNC_EINVAL, printed with the code's own message (the task
 * has no error of its own to show). async_main makes and frees its loop inside the library; it runs in a
 * child process here, which the fault injector (test/inject/inject.c, where `exit` is a macro) leaves
 * with _exit: its exit-time census would look at that loop, whose free its wrapper never saw. */
#ifdef exit
#define HE_CHILD_EXIT _exit
#else
#define HE_CHILD_EXIT exit
#endif

TEST(hosted_errors_ev_main_of_a_finished_task_is_einval) {
    char buf[512];
    size_t len = 0;
    ssize_t n;
    int p[2], status;
    pid_t pid;
    ASSERT_EQ(pipe(p), 0);
    fflush(NULL);
    pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        static he_sleeper_frame s;
        int first, second;
        close(p[0]);
        dup2(p[1], 2);
        unsetenv("ASYNC_CLOCK");
        first = async_main(he_sleeper(&s, 1));
        second = async_main(&s.task); /* not re-initialised */
        fprintf(stderr, "rc %d %d\n", first, second);
        HE_CHILD_EXIT(0);
    }
    close(p[1]);
    while (len < sizeof buf - 1 && (n = read(p[0], buf + len, sizeof buf - 1 - len)) > 0) len += (size_t)n;
    buf[len] = '\0';
    close(p[0]);
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ASSERT_STR_EQ(buf, "async: main failed: invalid argument (-22)\nrc 0 -22\n");
}

static const test_case hosted_errors_tests[] = {
    TEST_ENTRY(thread_hosted_errors_file_calls_reject_null_and_invalid_arguments)
    TEST_ENTRY(thread_hosted_errors_file_sizes_past_the_address_space_are_enomem)
    TEST_ENTRY(thread_hosted_errors_file_open_without_a_place_for_the_file_closes_it)
    TEST_ENTRY(thread_hosted_errors_file_read_of_a_directory_is_eisdir)
    TEST_ENTRY(thread_hosted_errors_file_wrong_direction_is_ebadf)
    TEST_ENTRY(thread_hosted_errors_file_of_another_loop_is_einval)
    TEST_ENTRY(thread_hosted_errors_file_closed_behind_the_library_is_ebadf)
    TEST_ENTRY(thread_hosted_errors_file_errno_without_a_code_is_eio)
    TEST_ENTRY(thread_hosted_errors_file_read_never_copies_more_than_asked)
    TEST_ENTRY(thread_hosted_errors_file_two_reads_in_flight_then_close_in_any_order)
    TEST_ENTRY(thread_hosted_errors_cancel_pending_at_each_await_never_starts_the_call)
    TEST_ENTRY(thread_hosted_errors_null_call_is_einval_for_every_await)
    TEST_ENTRY(thread_hosted_errors_call_swapped_during_the_await_is_einval_and_the_dtor_frees)
    TEST_ENTRY(thread_hosted_errors_pool_that_cannot_start_threads_is_eagain)
    TEST_ENTRY(thread_hosted_errors_bad_async_threads_values_give_the_default_pool)
    TEST_ENTRY(thread_hosted_errors_pool_resizes_and_switches_stop_idle_threads)
    TEST_ENTRY(thread_hosted_errors_job_records_kept_for_reuse_are_capped)
    TEST_ENTRY(thread_hosted_errors_loop_without_allocator_uses_malloc)
    TEST_ENTRY(hosted_errors_frames_larger_than_the_address_space_are_null)
    TEST_ENTRY(hosted_errors_debug_api_on_loops_without_debug_mode)
    TEST_ENTRY(hosted_errors_debug_slow_step_of_a_step_that_finishes)
    TEST_ENTRY(hosted_errors_debug_quick_inline_coroutine_is_not_reported)
    TEST_ENTRY(hosted_errors_debug_table_of_hundreds_of_tasks)
    TEST_ENTRY(hosted_errors_debug_deep_inline_chain_dump_is_capped)
    TEST_ENTRY(hosted_errors_debug_cancelled_and_unstarted_tasks_at_loop_free)
    TEST_ENTRY(hosted_errors_debug_switched_on_while_tasks_wait)
    TEST_ENTRY(hosted_errors_debug_switched_off_inside_a_step)
    TEST_ENTRY(hosted_errors_debug_environment_values_and_sigquit)
    TEST_ENTRY(hosted_errors_ev_clock_environment_values)
    TEST_ENTRY(hosted_errors_ev_real_clock_deadlock_is_edeadlk)
    TEST_ENTRY(hosted_errors_ev_application_watcher_that_stops_itself_wakes_main)
    TEST_ENTRY(hosted_errors_ev_libev_without_a_backend)
    TEST_ENTRY(hosted_errors_ev_main_of_a_finished_task_is_einval)
    {NULL, NULL}
};
