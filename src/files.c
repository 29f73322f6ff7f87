/* Files without blocking the loop (aiofiles): each call is a job on the loop's thread pool; on a loop
 * whose backend does native operations (io_uring), an open file's reads and writes are jobs the kernel
 * does instead (async__job_set_native), at the file's position, with the same outcome.
 *
 * A job carries its own copy of what the system call needs (the path, the bytes to write, a buffer to
 * read into), so the pool thread never touches the awaiting frame: a cancelled awaiter's frame may go
 * away while the call still runs. A read is copied into the caller's buffer on the loop thread, when
 * the await resumes. Errors are the failing call's errno as the library's code (async__errno_code).
 *
 * An open file is attached to its loop (stage RESOURCES: after the calls in flight are back, the loop
 * closes the files left open). Its calls count while in flight; a close waits, parked, until the last
 * one is back, and frees the file when it is done.
 *
 * On a simulated loop the same job functions reach the world's file system (sim_fs.h) instead of the
 * OS's: a job has no loop, so its payload begins with the world's file system (file_head; NULL on any
 * other loop), and the calls below go one way or the other by it. The world's calls may be short
 * (file_short_pct): the loops that must move every byte (write_all, read_all) go on with the rest, as
 * they do for a real short write. */
#define _POSIX_C_SOURCE 200809L
#include "backend.h"
#include "sim_fs.h"
#include "thread_pool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* An open file. Only the loop thread touches it: pool threads get a copy of fd in their job. */
struct async_file {
    async__part part;      /* attached to its loop */
    async_loop *loop;
    async__sim_files *fs;     /* the world's file system fd belongs to, or NULL: the OS's */
    int fd;
    unsigned busy;         /* reads and writes on it in flight */
    bool closing;          /* a close was requested: no new calls */
    async__job *close_job; /* the close, parked until busy drops to 0 */
};

/* ---- the calls, on a pool thread (or the loop's thread in the world) ---- */

/* What every job's payload begins with: the file system its calls go to. */
typedef struct {
    async__sim_files *fs; /* the world's, or NULL: the OS's */
} file_head;

static int file_error(void) { return async__errno_code(errno); }

/* The system calls the jobs make, on the OS's files or (fs) the world's, with one shape of result: a
 * descriptor or a count, or an error code. An interrupted call is made again. */

static int fs_open(async__sim_files *fs, const char *path, int flags, mode_t mode) {
    int fd;
    if (fs) return async__sim_file_open(fs, path, flags);
    do fd = open(path, flags | O_CLOEXEC, mode);
    while (fd < 0 && errno == EINTR);
    return fd < 0 ? file_error() : fd;
}

/* read(2) at the position (offset -1) or pread(2). */
static long fs_read(async__sim_files *fs, int fd, void *buf, size_t len, int64_t offset) {
    ssize_t n;
    if (fs) return async__sim_file_read(fs, fd, buf, len, offset);
    do n = offset < 0 ? read(fd, buf, len) : pread(fd, buf, len, (off_t)offset);
    while (n < 0 && errno == EINTR);
    return n < 0 ? file_error() : (long)n;
}

static long fs_write(async__sim_files *fs, int fd, const void *data, size_t len) {
    ssize_t n;
    if (fs) return async__sim_file_write(fs, fd, data, len);
    do n = write(fd, data, len);
    while (n < 0 && errno == EINTR);
    return n < 0 ? file_error() : (long)n;
}

/* close(2): on Linux the fd is gone even when it reports EINTR, so that is no error. */
static int fs_close(async__sim_files *fs, int fd) {
    if (fs) return async__sim_file_close(fs, fd);
    return close(fd) == 0 || errno == EINTR ? 0 : file_error();
}

/* A regular file's size (a first guess for read_all), or -1 if it has none (a pipe, a /proc file). */
static int64_t fs_size(async__sim_files *fs, int fd) {
    struct stat st;
    if (fs) return async__sim_file_size(fs, fd);
    return fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? (int64_t)st.st_size : -1;
}

/* Writes all len bytes, going on after short writes; 0 or an error code. */
static int write_all(async__sim_files *fs, int fd, const unsigned char *p, size_t len) {
    while (len > 0) {
        long n = fs_write(fs, fd, p, len);
        if (n < 0) return (int)n;
        if (n == 0) return ASYNC_EIO; /* nothing taken and no error: it would loop forever */
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

typedef struct {
    file_head h;
    size_t len;  /* out: bytes read */
    char path[]; /* in */
} read_all_args;

static int read_all_fn(void *arg, intptr_t *result) {
    read_all_args *a = (read_all_args *)arg;
    async__sim_files *fs = a->h.fs;
    size_t cap = 4096, len = 0;
    int64_t size;
    char *buf;
    int fd = fs_open(fs, a->path, O_RDONLY, 0), rc = 0;
    if (fd < 0) return fd;
    /* a regular file's size is a good first guess; a pipe or /proc file grows the buffer as it goes */
    size = fs_size(fs, fd);
    if (size > 0 && (uint64_t)size < SIZE_MAX - 1) cap = (size_t)size + 1;
    buf = (char *)malloc(cap);
    if (!buf) {
        fs_close(fs, fd);
        return ASYNC_ENOMEM;
    }
    for (;;) {
        long n;
        if (cap - len < 2) {
            char *p = cap <= SIZE_MAX / 2 ? (char *)realloc(buf, cap * 2) : NULL;
            if (!p) {
                rc = ASYNC_ENOMEM;
                break;
            }
            buf = p;
            cap *= 2;
        }
        n = fs_read(fs, fd, buf + len, cap - len - 1, -1);
        if (n < 0) {
            rc = (int)n;
            break;
        }
        if (n == 0) break;
        len += (size_t)n;
    }
    fs_close(fs, fd); /* read-only: nothing for close to report */
    if (rc) {
        free(buf);
        return rc;
    }
    buf[len] = '\0';
    a->len = len;
    *result = (intptr_t)buf;
    return 0;
}

static void free_result(intptr_t result, void *arg) {
    (void)arg;
    free((void *)result);
}

typedef struct {
    file_head h;
    size_t len;
    unsigned mode;
    const char *path; /* into data[], after the bytes */
    unsigned char data[];
} write_all_args;

static int write_all_fn(void *arg, intptr_t *result) {
    write_all_args *a = (write_all_args *)arg;
    async__sim_files *fs = a->h.fs;
    int rc, fd = fs_open(fs, a->path, O_WRONLY | O_CREAT | O_TRUNC, (mode_t)a->mode);
    if (fd < 0) return fd;
    rc = write_all(fs, fd, a->data, a->len);
    if (rc) {
        fs_close(fs, fd);
        return rc;
    }
    rc = fs_close(fs, fd); /* some file systems report a failed write only here */
    if (rc) return rc;
    *result = (intptr_t)a->len;
    return 0;
}

typedef struct {
    file_head h;
    int flags;
    char path[];
} open_args;

static int open_fn(void *arg, intptr_t *result) {
    open_args *a = (open_args *)arg;
    int fd = fs_open(a->h.fs, a->path, a->flags, 0666);
    *result = fd;
    return fd < 0 ? fd : 0;
}

static void close_result(intptr_t result, void *arg) {
    if (result >= 0) fs_close(((open_args *)arg)->h.fs, (int)result);
}

typedef struct {
    file_head h;
    int fd;
    size_t len;
    int64_t offset;        /* a read at an offset (pread), or -1: at the file's position */
    unsigned char bytes[]; /* read: the buffer; write: the data */
} rw_args;

static int read_fn(void *arg, intptr_t *result) {
    rw_args *a = (rw_args *)arg;
    long n = fs_read(a->h.fs, a->fd, a->bytes, a->len, a->offset);
    if (n < 0) return (int)n;
    *result = (intptr_t)n;
    return 0;
}

static int write_fn(void *arg, intptr_t *result) {
    rw_args *a = (rw_args *)arg;
    int rc = write_all(a->h.fs, a->fd, a->bytes, a->len);
    if (!rc) *result = (intptr_t)a->len;
    return rc;
}

static int close_fn(void *arg, intptr_t *result) {
    rw_args *a = (rw_args *)arg;
    (void)result;
    return fs_close(a->h.fs, a->fd);
}

/* ---- open files ---- */

static const char file_kind = 0; /* tags files among the loop's parts */

/* At loop free, a file the program left open. */
static void file_part_free(async_loop *loop, async__part *part) {
    async_file *f = (async_file *)(void *)((char *)part - offsetof(async_file, part));
    (void)loop;
    fs_close(f->fs, f->fd);
    free(f);
}

/* A read or write is back: the last one lets a parked close go. */
static void rw_back(async__job *j, void *ctx) {
    async_file *f = (async_file *)ctx;
    (void)j;
    if (--f->busy == 0 && f->close_job) {
        async__job *c = f->close_job;
        f->close_job = NULL;
        async__job_launch(c);
    }
}

/* The close is back: the file goes, whatever close said. */
static void close_back(async__job *j, void *ctx) {
    async_file *f = (async_file *)ctx;
    (void)j;
    async__loop_detach(f->loop, &f->part);
    free(f);
}

/* ---- the awaits, on the loop thread ---- */


/* A job with `extra` bytes of payload for fn, or NULL after raising. */
static async__job *new_job(async_task *t, async_thread_call *call, size_t extra, async_thread_fn fn,
                           async_thread_dtor dtor, int *status) {
    int err = 0;
    async__job *j = async__job_new(async_task_loop(t), extra, &err);
    if (!j) {
        *status = async__call_fail(t, call, err);
        return NULL;
    }
    async__job_set_fn(j, fn, async__job_payload(j), dtor);
    ((file_head *)async__job_payload(j))->fs = async__sim_files_of(async_task_loop(t));
    return j;
}

int async__file_read_all_start(async_task *t, async_thread_call *call, const char *path, char **data) {
    size_t plen;
    async__job *j;
    int status = ASYNC__RAISE;
    if (!call) return async__raise_error_code(t, ASYNC_EINVAL);
    if (!path || !data) return async__call_fail(t, call, ASYNC_EINVAL);
    plen = strlen(path) + 1;
    j = new_job(t, call, sizeof(read_all_args) + plen, read_all_fn, free_result, &status);
    if (!j) return status;
    memcpy(((read_all_args *)async__job_payload(j))->path, path, plen);
    return async__job_start(t, call, j, false);
}

int async__file_read_all_check(async_task *t, async_thread_call *call, char **data, size_t *len) {
    async__job *j = NULL;
    int rc = async__job_wait(t, call, &j);
    if (rc != ASYNC__GO) return rc;
    if (async__job_rc(j) == 0) {
        *data = (char *)async__job_result(j);
        if (len) *len = ((read_all_args *)async__job_payload(j))->len;
    }
    return async__job_end(t, call, j, async__job_rc(j));
}

int async__file_write_all_start(async_task *t, async_thread_call *call, const char *path, const void *data,
                                size_t len, unsigned mode) {
    size_t plen;
    async__job *j;
    write_all_args *a;
    int status = ASYNC__RAISE;
    if (!call) return async__raise_error_code(t, ASYNC_EINVAL);
    if (!path || (!data && len) || mode > 07777) return async__call_fail(t, call, ASYNC_EINVAL);
    plen = strlen(path) + 1;
    if (len > SIZE_MAX - sizeof *a - plen) return async__call_fail(t, call, ASYNC_ENOMEM);
    j = new_job(t, call, sizeof *a + len + plen, write_all_fn, NULL, &status);
    if (!j) return status;
    a = (write_all_args *)async__job_payload(j);
    a->len = len;
    a->mode = mode;
    if (len) memcpy(a->data, data, len);
    memcpy(a->data + len, path, plen);
    a->path = (const char *)a->data + len;
    return async__job_start(t, call, j, false);
}

/* fopen's modes as open(2) flags; -1 for anything else. */
static int open_flags(const char *how) {
    int flags, plus = 0, excl = 0;
    const char *p;
    switch (how[0]) {
    case 'r': flags = 0; break;
    case 'w': flags = O_CREAT | O_TRUNC; break;
    case 'a': flags = O_CREAT | O_APPEND; break;
    default: return -1;
    }
    for (p = how + 1; *p; p++) {
        if (*p == '+' && !plus)
            plus = 1;
        else if (*p == 'x' && !excl && how[0] != 'r')
            excl = 1;
        else if (*p != 'b')
            return -1;
    }
    if (excl) flags |= O_EXCL;
    return flags | (plus ? O_RDWR : how[0] == 'r' ? O_RDONLY : O_WRONLY);
}

int async__file_open_start(async_task *t, async_thread_call *call, const char *path, const char *how) {
    size_t plen;
    async__job *j;
    open_args *a;
    int flags, status = ASYNC__RAISE;
    if (!call) return async__raise_error_code(t, ASYNC_EINVAL);
    if (!path || !how || (flags = open_flags(how)) < 0) return async__call_fail(t, call, ASYNC_EINVAL);
    plen = strlen(path) + 1;
    j = new_job(t, call, sizeof(open_args) + plen, open_fn, close_result, &status);
    if (!j) return status;
    a = (open_args *)async__job_payload(j);
    a->flags = flags;
    memcpy(a->path, path, plen);
    return async__job_start(t, call, j, false);
}

int async__file_open_check(async_task *t, async_thread_call *call, async_file **file) {
    async__job *j = NULL;
    async_file *f;
    int rc = async__job_wait(t, call, &j);
    if (rc != ASYNC__GO) return rc;
    if (async__job_rc(j)) return async__job_end(t, call, j, async__job_rc(j));
    f = file ? (async_file *)calloc(1, sizeof *f) : NULL;
    if (!f) { /* nowhere to keep it: the fd is closed, nothing leaks */
        fs_close(((open_args *)async__job_payload(j))->h.fs, (int)async__job_result(j));
        return async__job_end(t, call, j, file ? ASYNC_ENOMEM : ASYNC_EINVAL);
    }
    f->fd = (int)async__job_result(j);
    f->fs = ((open_args *)async__job_payload(j))->h.fs;
    f->loop = async__job_loop(j);
    async__loop_attach(f->loop, &f->part, &file_kind, ASYNC__STAGE_RESOURCES, file_part_free); /* hosted */
    *file = f;
    return async__job_end(t, call, j, 0);
}

/* A read, write or close job on file with a payload of len bytes, or NULL after raising: the file must be
 * open, not being closed, and of this loop. */
static async__job *rw_job(async_task *t, async_thread_call *call, async_file *file, size_t len, async_thread_fn fn,
                          int *status) {
    async__job *j;
    rw_args *a;
    if (len > SIZE_MAX - sizeof(rw_args)) {
        *status = async__call_fail(t, call, ASYNC_ENOMEM);
        return NULL;
    }
    j = new_job(t, call, sizeof(rw_args) + len, fn, NULL, status);
    if (!j) return NULL;
    if (file->closing || file->loop != async__job_loop(j)) {
        async__job_drop(j);
        *status = async__call_fail(t, call, file->closing ? ASYNC_EBADF : ASYNC_EINVAL);
        return NULL;
    }
    a = (rw_args *)async__job_payload(j);
    a->fd = file->fd;
    a->len = len;
    a->offset = -1;
    return j;
}

/* Starts a read or write on file: it counts as in flight on the file from now until it is back. */
static int rw_start(async_task *t, async_thread_call *call, async_file *file, async__job *j) {
    int rc;
    async__job_on_back(j, rw_back, file);
    rc = async__job_start(t, call, j, false);
    if (rc == ASYNC__WAIT) file->busy++;
    return rc;
}

/* A read at offset, or at the file's position (offset -1), which it then moves on. */
static int read_start(async_task *t, async_thread_call *call, async_file *file, void *buf, size_t cap,
                      int64_t offset) {
    async__job *j;
    int status = ASYNC__RAISE;
    rw_args *a;
    if (!call) return async__raise_error_code(t, ASYNC_EINVAL);
    if (!file || (!buf && cap) || offset < -1) return async__call_fail(t, call, ASYNC_EINVAL);
    if (offset > (int64_t)INT64_MAX - (int64_t)(cap > (size_t)INT64_MAX ? INT64_MAX : cap))
        return async__call_fail(t, call, ASYNC_EOVERFLOW); /* the last byte asked would be past any file */
    j = rw_job(t, call, file, cap, read_fn, &status);
    if (!j) return status;
    a = (rw_args *)async__job_payload(j);
    a->offset = offset;
    async__job_set_native(j, ASYNC__REQ_READ, file->fd, a->bytes, cap, offset);
    return rw_start(t, call, file, j);
}

int async__file_read_start(async_task *t, async_thread_call *call, async_file *file, void *buf, size_t cap) {
    return read_start(t, call, file, buf, cap, -1);
}

int async__file_read_at_start(async_task *t, async_thread_call *call, async_file *file, void *buf, size_t cap,
                              int64_t offset) {
    return read_start(t, call, file, buf, cap, offset < 0 ? -2 : offset); /* -2: ASYNC_EINVAL */
}

int async__file_read_check(async_task *t, async_thread_call *call, void *buf, size_t cap, size_t *nread) {
    async__job *j = NULL;
    int rc = async__job_wait(t, call, &j);
    if (rc != ASYNC__GO) return rc;
    if (async__job_rc(j) == 0) {
        size_t n = (size_t)async__job_result(j);
        if (n > cap) n = cap; /* cap is the same expression as at the start; never more than asked */
        if (n) memcpy(buf, ((rw_args *)async__job_payload(j))->bytes, n);
        if (nread) *nread = n;
    }
    return async__job_end(t, call, j, async__job_rc(j));
}

int async__file_write_start(async_task *t, async_thread_call *call, async_file *file, const void *data,
                            size_t len) {
    async__job *j;
    int status = ASYNC__RAISE;
    if (!call) return async__raise_error_code(t, ASYNC_EINVAL);
    if (!file || (!data && len)) return async__call_fail(t, call, ASYNC_EINVAL);
    j = rw_job(t, call, file, len, write_fn, &status);
    if (!j) return status;
    if (len) memcpy(((rw_args *)async__job_payload(j))->bytes, data, len);
    async__job_set_native(j, ASYNC__REQ_WRITE, file->fd, ((rw_args *)async__job_payload(j))->bytes, len, -1);
    return rw_start(t, call, file, j);
}

int async__file_close_start(async_task *t, async_thread_call *call, async_file *file) {
    async__job *j;
    bool parked;
    int rc, status = ASYNC__RAISE;
    if (!call) return async__raise_error_code(t, ASYNC_EINVAL);
    if (!file) return async__call_fail(t, call, ASYNC_EINVAL);
    j = rw_job(t, call, file, 0, close_fn, &status);
    if (!j) return status;
    async__job_on_back(j, close_back, file);
    parked = file->busy > 0; /* calls on the file still run (cancelled ones): close after them */
    rc = async__job_start(t, call, j, parked);
    if (rc == ASYNC__WAIT) {
        file->closing = true;
        if (parked) file->close_job = j;
    }
    return rc;
}
