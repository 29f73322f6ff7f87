/* Files without blocking the loop (the thread pool runs the system calls, like aiofiles): whole files
 * and chunks, modes, the errors of the system calls (ENOENT, EISDIR, EACCES, ENOSPC, EBADF, ESRCH seen as
 * ASYNC_EIO, ELOOP, ENAMETOOLONG), every call given NULL or impossible arguments, files of another loop
 * or closed behind the library, reads in flight together, a close that waits for a cancelled read, and
 * files left open when the loop is freed. Each test works in a directory of its own (test_path). */
#include "test.h"
#include "util.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- whole files and chunks ---- */

ASYNC_DEF(fs_write_read, const char *path; async_thread_call call; char *data; size_t len;) {
    AWAIT_FILE_WRITE_ALL(t, &f->call, f->path, "Hello, Async World!", 19, 0600);
    ASSERT_EQ(async_thread_call_result(&f->call), 19);
    AWAIT_FILE_READ_ALL(t, &f->call, f->path, &f->data, &f->len);
    ASSERT_EQ(f->len, 19);
    ASSERT_STR_EQ(f->data, "Hello, Async World!");
    free(f->data);
    f->data = NULL;
    AWAIT_FILE_WRITE_ALL(t, &f->call, f->path, NULL, 0, 0600); /* truncates */
    AWAIT_FILE_READ_ALL(t, &f->call, f->path, &f->data, &f->len);
    ASSERT_EQ(f->len, 0);
    ASSERT_STR_EQ(f->data, "");
    free(f->data);
} ASYNC_END_DEF

TEST_TAGGED(files_write_all_then_read_all, TEST_THREADS) {
    async_loop *loop = new_hosted_loop();
    static fs_write_read_frame m;
    struct stat st;
    ASSERT_EQ(async_run(loop, ASYNC_CALL(fs_write_read, &m, test_path("hello.txt"))), 0);
    ASSERT_EQ(stat(m.path, &st), 0);
    ASSERT_EQ(st.st_mode & 0177, 0); /* created with 0600 (the umask may only remove bits) */
    async_loop_free(loop);
    test_rmdir();
}

/* A read_all of a file bigger than any first guess (a /proc file says size 0) still gets everything. */
ASYNC_DEF(fs_read_proc, async_thread_call call; char *data; size_t len;) {
    AWAIT_FILE_READ_ALL(t, &f->call, "/proc/self/maps", &f->data, &f->len);
    ASSERT(f->len > 0);
    ASSERT_EQ(strlen(f->data), f->len);
    free(f->data);
} ASYNC_END_DEF

TEST_TAGGED(files_read_all_of_a_file_of_unknown_size, TEST_THREADS) {
    async_loop *loop = new_hosted_loop();
    static fs_read_proc_frame m;
    ASSERT_EQ(async_run(loop, ASYNC_CALL(fs_read_proc, &m)), 0);
    async_loop_free(loop);
}

ASYNC_DEF(fs_chunks, const char *path; async_thread_call call; async_file *file; size_t len, n; char buf[64];
          char all[256]; int code;) {
    AWAIT_FILE_OPEN(t, &f->call, &f->file, f->path, "w");
    AWAIT_FILE_WRITE(t, &f->call, f->file, "one ", 4);
    AWAIT_FILE_WRITE(t, &f->call, f->file, "two ", 4);
    AWAIT_FILE_CLOSE(t, &f->call, f->file);
    AWAIT_FILE_OPEN(t, &f->call, &f->file, f->path, "a");
    AWAIT_FILE_WRITE(t, &f->call, f->file, "three", 5);
    AWAIT_FILE_CLOSE(t, &f->call, f->file);
    /* read back in chunks of 3 bytes until the end */
    AWAIT_FILE_OPEN(t, &f->call, &f->file, f->path, "rb");
    f->len = 0;
    do {
        AWAIT_FILE_READ(t, &f->call, f->file, f->buf, 3, &f->n);
        ASSERT(f->n <= 3);
        memcpy(f->all + f->len, f->buf, f->n);
        f->len += f->n;
    } while (f->n > 0);
    f->all[f->len] = '\0';
    ASSERT_STR_EQ(f->all, "one two three");
    AWAIT_FILE_READ(t, &f->call, f->file, f->buf, 0, &f->n); /* zero bytes asked, zero read */
    ASSERT_EQ(f->n, 0);
    AWAIT_FILE_CLOSE(t, &f->call, f->file);
    /* "x" refuses an existing file, "r+" reads and writes */
    ASYNC_TRY(t) {
        AWAIT_FILE_OPEN(t, &f->call, &f->file, f->path, "wx");
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
    ASSERT_EQ(f->code, ASYNC_EEXIST);
    AWAIT_FILE_OPEN(t, &f->call, &f->file, f->path, "r+");
    AWAIT_FILE_WRITE(t, &f->call, f->file, "ONE", 3);
    AWAIT_FILE_READ(t, &f->call, f->file, f->buf, sizeof f->buf, &f->n);
    ASSERT_EQ(f->n, 10);
    ASSERT(memcmp(f->buf, " two three", 10) == 0);
    AWAIT_FILE_CLOSE(t, &f->call, f->file);
} ASYNC_END_DEF

TEST_TAGGED(files_chunked_reads_and_writes, TEST_THREADS) {
    async_loop *loop = new_hosted_loop();
    static fs_chunks_frame m;
    ASSERT_EQ(async_run(loop, ASYNC_CALL(fs_chunks, &m, test_path("chunks.txt"))), 0);
    async_loop_free(loop);
    test_rmdir();
}

/* Reads at an offset (pread): where they read, that the file's position stays, the end of the file, and
 * offsets that cannot be read. */
ASYNC_DEF(fs_read_at, const char *path; async_thread_call call; async_file *file; size_t n; char buf[16];
          int code;) {
    AWAIT_FILE_WRITE_ALL(t, &f->call, f->path, "0123456789abcdef", 16, 0600);
    AWAIT_FILE_OPEN(t, &f->call, &f->file, f->path, "r");
    AWAIT_FILE_READ_AT(t, &f->call, f->file, f->buf, 4, 10, &f->n);
    ASSERT_EQ(f->n, 4);
    ASSERT(memcmp(f->buf, "abcd", 4) == 0);
    AWAIT_FILE_READ(t, &f->call, f->file, f->buf, 3, &f->n); /* the position did not move */
    ASSERT_EQ(f->n, 3);
    ASSERT(memcmp(f->buf, "012", 3) == 0);
    AWAIT_FILE_READ_AT(t, &f->call, f->file, f->buf, 8, 12, &f->n); /* what is left before the end */
    ASSERT_EQ(f->n, 4);
    ASSERT(memcmp(f->buf, "cdef", 4) == 0);
    AWAIT_FILE_READ_AT(t, &f->call, f->file, f->buf, 8, 1000, &f->n); /* past the end */
    ASSERT_EQ(f->n, 0);
    AWAIT_FILE_READ(t, &f->call, f->file, f->buf, 2, &f->n); /* still where the plain read left it */
    ASSERT(f->n == 2 && memcmp(f->buf, "34", 2) == 0);
    ASYNC_TRY(t) {
        AWAIT_FILE_READ_AT(t, &f->call, f->file, f->buf, 8, -1, &f->n);
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
    ASSERT_EQ(f->code, ASYNC_EINVAL);
    ASYNC_TRY(t) {
        AWAIT_FILE_READ_AT(t, &f->call, f->file, f->buf, 8, INT64_MAX - 4, &f->n);
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
    ASSERT_EQ(f->code, ASYNC_EOVERFLOW);
    AWAIT_FILE_CLOSE(t, &f->call, f->file);
} ASYNC_END_DEF

TEST_TAGGED(files_read_at_an_offset_leaves_the_position, TEST_THREADS) {
    async_loop *loop = new_hosted_loop();
    static fs_read_at_frame m;
    ASSERT_EQ(async_run(loop, ASYNC_CALL(fs_read_at, &m, test_path("at.txt"))), 0);
    async_loop_free(loop);
    test_rmdir();
}

/* Sixteen tasks read 4 KiB each at their own offsets of one file at once, as a database's readers would. */
enum { FS_BLOCKS = 16, FS_BLOCK = 4096 };
ASYNC_DEF(fs_block_reader, async_file *file; int k; async_thread_call call; size_t n; unsigned char buf[FS_BLOCK];) {
    AWAIT_FILE_READ_AT(t, &f->call, f->file, f->buf, FS_BLOCK, (int64_t)f->k * FS_BLOCK, &f->n);
} ASYNC_END_DEF

ASYNC_DEF(fs_blocks, const char *path; async_thread_call call; async_file *file; fs_block_reader_frame r[FS_BLOCKS];
          async_group g; int k;) {
    AWAIT_FILE_OPEN(t, &f->call, &f->file, f->path, "r");
    for (f->k = 0; f->k < FS_BLOCKS; f->k++) /* in reverse order of their blocks */
        ASYNC_SPAWN(t, &f->g, ASYNC_CALL(fs_block_reader, &f->r[f->k], f->file, FS_BLOCKS - 1 - f->k));
    AWAIT_GROUP(t, &f->g);
    AWAIT_FILE_CLOSE(t, &f->call, f->file);
} ASYNC_END_DEF

TEST_TAGGED(files_reads_at_offsets_in_flight_together, TEST_THREADS) {
    async_loop *loop = new_hosted_loop();
    static fs_blocks_frame m;
    static unsigned char data[FS_BLOCKS * FS_BLOCK];
    size_t i;
    int k;
    FILE *out;
    for (i = 0; i < sizeof data; i++) data[i] = (unsigned char)(i * 7 + i / FS_BLOCK);
    out = fopen(test_path("blocks.bin"), "wb");
    ASSERT(out != NULL);
    ASSERT_EQ(fwrite(data, 1, sizeof data, out), sizeof data);
    ASSERT_EQ(fclose(out), 0);
    ASSERT_EQ(async_run(loop, ASYNC_CALL(fs_blocks, &m, test_path("blocks.bin"))), 0);
    for (k = 0; k < FS_BLOCKS; k++) {
        ASSERT_EQ(m.r[k].n, FS_BLOCK);
        ASSERT(memcmp(m.r[k].buf, data + (size_t)(FS_BLOCKS - 1 - k) * FS_BLOCK, FS_BLOCK) == 0);
    }
    async_loop_free(loop);
    test_rmdir();
}

/* The read's capacity changed while it ran (the arguments are evaluated again at the resume): never more
 * than the smaller capacity reaches the buffer. */
ASYNC_DEF(fs_cap, async_file *file; pool_op_frame reader; async_group g; char buf[16];) {
    pool_op(&f->reader, POOL_READ)->file = f->file;
    f->reader.buf = f->buf;
    f->reader.cap = 8;
    ASYNC_SPAWN(t, &f->g, &f->reader.task);
    AWAIT_YIELD(t); /* the reader has started its read of 8 bytes */
    ASSERT_EQ(async_loop_jobs(async_task_loop(t)), 1);
    f->reader.cap = 3;
    AWAIT_GROUP(t, &f->g);
} ASYNC_END_DEF

TEST_TAGGED(files_read_never_copies_more_than_asked, TEST_THREADS) {
    async_loop *loop = new_hosted_loop();
    static fs_cap_frame m;
    const char *path = test_path("cap.txt");
    test_write_file(path, "0123456789");
    ASYNC_CALL(fs_cap, &m, pool_open(loop, path, "r"));
    memset(m.buf, 'x', sizeof m.buf);
    ASSERT_EQ(async_run(loop, &m.task), 0);
    ASSERT_EQ(m.reader.code, 0);
    ASSERT_EQ(m.reader.nread, 3);
    ASSERT(memcmp(m.buf, "012xxxxx", 8) == 0);
    ASSERT_EQ(pool_close(loop, m.file), 0);
    async_loop_free(loop);
    test_rmdir();
}

/* Two reads of one file in flight together, then the older of two open files closed first. */
ASYNC_DEF(fs_two, async_file *file; pool_op_frame r[2]; async_group g; char buf[2][4];) {
    int i;
    for (i = 0; i < 2; i++) {
        pool_op(&f->r[i], POOL_READ)->file = f->file;
        f->r[i].buf = f->buf[i];
        f->r[i].cap = 4;
    }
    AWAIT_GATHER(t, &f->g, &f->r[0].task, &f->r[1].task);
} ASYNC_END_DEF

TEST_TAGGED(files_two_reads_in_flight_then_close_in_any_order, TEST_THREADS) {
    async_loop *loop = new_hosted_loop();
    static fs_two_frame m;
    const char *path = test_path("two.txt");
    async_file *older;
    char got[9];
    test_write_file(path, "abcdefgh");
    older = pool_open(loop, path, "r");
    ASSERT_EQ(async_run(loop, ASYNC_CALL(fs_two, &m, pool_open(loop, path, "r"))), 0);
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
    ASSERT_EQ(pool_close(loop, older), 0); /* not the newest of the loop's files */
    ASSERT_EQ(pool_close(loop, m.file), 0);
    ASSERT_EQ(async_loop_jobs(loop), 0);
    async_loop_free(loop);
    test_rmdir();
}

/* ---- errors of the system calls ---- */

/* One failing file call: which one is `op`; the code it raised goes to f->code. */
enum { FS_READ_ALL, FS_WRITE_ALL, FS_OPEN_R, FS_OPEN_W, FS_OPEN_BAD, FS_WRITE_CHUNK, FS_NULLS };

ASYNC_DEF(fs_file_fail, int op; const char *path, *how; async_thread_call call; async_file *file; char *data;
          size_t len; int code;) {
    ASYNC_TRY(t) {
        if (f->op == FS_READ_ALL) {
            AWAIT_FILE_READ_ALL(t, &f->call, f->path, &f->data, &f->len);
            free(f->data); /* not reached when it fails */
        } else if (f->op == FS_WRITE_ALL) {
            AWAIT_FILE_WRITE_ALL(t, &f->call, f->path, "x", 1, 0644);
        } else if (f->op == FS_OPEN_R || f->op == FS_OPEN_W || f->op == FS_OPEN_BAD) {
            AWAIT_FILE_OPEN(t, &f->call, &f->file, f->path, f->how);
            AWAIT_FILE_CLOSE(t, &f->call, f->file); /* not reached when it fails */
        } else if (f->op == FS_WRITE_CHUNK) {
            AWAIT_FILE_OPEN(t, &f->call, &f->file, f->path, "w");
            ASYNC_TRY(t) {
                AWAIT_FILE_WRITE(t, &f->call, f->file, "hello", 5);
            }
            ASYNC_FINALLY(t) {
                AWAIT_FILE_CLOSE(t, &f->call, f->file);
            }
            ASYNC_END_TRY(t);
        } else {
            AWAIT_FILE_CLOSE(t, &f->call, NULL);
        }
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

static int fs_file_fails(int op, const char *path, const char *how) {
    async_loop *loop = new_hosted_loop();
    static fs_file_fail_frame m;
    ASSERT_STR_EQ(async_task_state(ASYNC_CALL(fs_file_fail, &m, op, path, how)), "new"); /* prepared afresh */
    ASSERT_EQ(async_run(loop, &m.task), 0);
    async_loop_free(loop);
    return m.code;
}

TEST_TAGGED(files_missing_is_enoent, TEST_THREADS) {
    ASSERT_EQ(fs_file_fails(FS_READ_ALL, test_path("missing"), NULL), ASYNC_ENOENT);
    ASSERT_EQ(fs_file_fails(FS_OPEN_R, test_path("missing"), "r"), ASYNC_ENOENT);
    ASSERT_EQ(fs_file_fails(FS_WRITE_ALL, test_path("no/such/dir"), NULL), ASYNC_ENOENT);
    test_rmdir();
}

/* As root, mode 000 denies nothing: this test's own process becomes nobody first (each test runs in a
 * process of its own), before it makes its files and threads. */
TEST_TAGGED(files_directories_and_permissions, TEST_THREADS) {
    const char *locked;
    int fd, dropped = geteuid() != 0 || (setgid(65534) == 0 && setuid(65534) == 0);
    locked = test_path("locked");
    fd = open(locked, O_WRONLY | O_CREAT, 0600);
    ASSERT(fd >= 0);
    close(fd);
    ASSERT_EQ(chmod(locked, 0), 0);
    ASSERT_EQ(fs_file_fails(FS_OPEN_W, test_dir(), "w"), ASYNC_EISDIR);
    ASSERT_EQ(fs_file_fails(FS_WRITE_ALL, test_dir(), NULL), ASYNC_EISDIR);
    ASSERT_EQ(fs_file_fails(FS_READ_ALL, test_dir(), NULL), ASYNC_EISDIR);
    ASSERT_EQ(fs_file_fails(FS_READ_ALL, "/dev/null/x", NULL), ASYNC_ENOTDIR);
    if (dropped) {
        ASSERT_EQ(fs_file_fails(FS_READ_ALL, locked, NULL), ASYNC_EACCES);
        ASSERT_EQ(fs_file_fails(FS_OPEN_W, locked, "w"), ASYNC_EACCES);
        ASSERT_EQ(fs_file_fails(FS_WRITE_ALL, locked, NULL), ASYNC_EACCES);
    }
    test_rmdir();
    if (!dropped) test_skip("root could not become nobody: EISDIR and ENOTDIR were checked, EACCES was not");
}

TEST_TAGGED(files_full_disk_is_enospc, TEST_THREADS) {
    ASSERT_EQ(fs_file_fails(FS_WRITE_ALL, "/dev/full", NULL), ASYNC_ENOSPC);
    ASSERT_EQ(fs_file_fails(FS_WRITE_CHUNK, "/dev/full", NULL), ASYNC_ENOSPC);
}

TEST_TAGGED(files_read_of_a_directory_is_eisdir, TEST_THREADS) {
    async_loop *loop = new_hosted_loop();
    static pool_op_frame f;
    static char buf[8];
    const char *dir = test_path("sub");
    async_file *file;
    ASSERT_EQ(mkdir(dir, 0700), 0);
    /* open(O_RDONLY) of a directory works; its read fails */
    pool_op(&f, POOL_READ_ALL)->path = dir;
    ASSERT_EQ(pool_go(loop, &f), ASYNC_EISDIR);
    ASSERT(f.all == NULL);
    file = pool_open(loop, dir, "r");
    pool_op(&f, POOL_READ)->file = file;
    f.buf = buf;
    f.cap = sizeof buf;
    f.nread = 77;
    ASSERT_EQ(pool_go(loop, &f), ASYNC_EISDIR);
    ASSERT_EQ(f.nread, 77); /* untouched by the failed read */
    ASSERT_EQ(pool_close(loop, file), 0);
    rmdir(dir);
    /* read_all with no length wanted */
    test_write_file(test_path("len.txt"), "four");
    pool_op(&f, POOL_READ_ALL)->path = test_path("len.txt");
    f.all_lenp = NULL;
    ASSERT_EQ(pool_go(loop, &f), 0);
    ASSERT_STR_EQ(f.all, "four");
    free(f.all);
    async_loop_free(loop);
    test_rmdir();
}

/* A file opened for writing cannot be read and one opened for reading cannot be written: EBADF, raised
 * at the await. Zero-length calls and a read without a count still work. */
TEST_TAGGED(files_wrong_direction_is_ebadf, TEST_THREADS) {
    async_loop *loop = new_hosted_loop();
    static pool_op_frame f;
    static char buf[8];
    const char *path = test_path("dir.txt");
    async_file *wfile, *rfile;
    test_write_file(path, "hello");
    wfile = pool_open(loop, test_path("out.txt"), "w");
    rfile = pool_open(loop, path, "r");
    pool_op(&f, POOL_READ)->file = wfile;
    f.buf = buf;
    f.cap = sizeof buf;
    f.nread = 77;
    ASSERT_EQ(pool_go(loop, &f), ASYNC_EBADF);
    ASSERT_EQ(f.nread, 77);
    ASSERT(!f.reached);
    pool_op(&f, POOL_WRITE)->file = rfile;
    f.data = "x";
    f.len = 1;
    ASSERT_EQ(pool_go(loop, &f), ASYNC_EBADF);
    ASSERT_EQ(async_thread_call_result(&f.call), 0);
    /* zero bytes written: fine, and the file is unchanged */
    pool_op(&f, POOL_WRITE)->file = wfile;
    ASSERT_EQ(pool_go(loop, &f), 0);
    ASSERT_EQ(f.result, 0);
    /* a read without a count, then one without a buffer for zero bytes */
    pool_op(&f, POOL_READ)->file = rfile;
    f.buf = buf;
    f.cap = 2;
    f.nreadp = NULL;
    ASSERT_EQ(pool_go(loop, &f), 0);
    ASSERT(memcmp(buf, "he", 2) == 0);
    pool_op(&f, POOL_READ)->file = rfile;
    f.nread = 77;
    ASSERT_EQ(pool_go(loop, &f), 0);
    ASSERT_EQ(f.nread, 0);
    ASSERT_EQ(pool_close(loop, wfile), 0);
    ASSERT_EQ(pool_close(loop, rfile), 0);
    ASSERT_STR_EQ(test_read_file(test_path("out.txt")), "");
    async_loop_free(loop);
    test_rmdir();
}

/* The descriptor under a file, found through /proc/self/fd. */
static int fs_fd_of(const char *path) {
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
TEST_TAGGED(files_closed_behind_the_library_is_ebadf, TEST_THREADS) {
    async_loop *loop = new_hosted_loop();
    static pool_op_frame f;
    static char buf[8];
    const char *path = test_path("behind.txt");
    async_file *file;
    int fd;
    test_write_file(path, "abc");
    file = pool_open(loop, path, "r");
    fd = fs_fd_of(path);
    ASSERT(fd >= 0);
    ASSERT_EQ(close(fd), 0);
    pool_op(&f, POOL_READ)->file = file;
    f.buf = buf;
    f.cap = sizeof buf;
    ASSERT_EQ(pool_go(loop, &f), ASYNC_EBADF);
    ASSERT_EQ(pool_close(loop, file), ASYNC_EBADF);
    ASSERT_EQ(async_loop_jobs(loop), 0);
    async_loop_free(loop); /* the record went with the close: not closed again, not leaked */
    test_rmdir();
}

/* An errno the library has no code for is ASYNC_EIO: the stat file of a process that was reaped after
 * it was opened fails to read with ESRCH. ELOOP and ENAMETOOLONG have codes of their own. */
TEST_TAGGED(files_errno_without_a_code_is_eio, TEST_THREADS) {
    async_loop *loop = new_hosted_loop();
    static pool_op_frame f;
    static char buf[64], stat_path[64], long_name[400];
    async_file *file;
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    ASSERT(pid > 0);
    snprintf(stat_path, sizeof stat_path, "/proc/%d/stat", (int)pid);
    file = pool_open(loop, stat_path, "r"); /* running or a zombie: it opens */
    ASSERT_EQ(waitpid(pid, NULL, 0), pid);
    pool_op(&f, POOL_READ)->file = file;
    f.buf = buf;
    f.cap = sizeof buf;
    ASSERT_EQ(pool_go(loop, &f), ASYNC_EIO);
    ASSERT_EQ(pool_close(loop, file), 0);
    ASSERT_EQ(symlink(test_path("loop"), test_path("loop")), 0);
    pool_op(&f, POOL_READ_ALL)->path = test_path("loop");
    ASSERT_EQ(pool_go(loop, &f), ASYNC_ELOOP);
    memset(long_name, 'n', sizeof long_name - 1);
    pool_op(&f, POOL_OPEN)->path = long_name;
    f.how = "w";
    ASSERT_EQ(pool_go(loop, &f), ASYNC_ENAMETOOLONG);
    async_loop_free(loop);
    test_rmdir();
}

/* ---- bad arguments ---- */

TEST_TAGGED(files_bad_arguments_are_einval, TEST_THREADS) {
    ASSERT_EQ(fs_file_fails(FS_READ_ALL, NULL, NULL), ASYNC_EINVAL);
    ASSERT_EQ(fs_file_fails(FS_WRITE_ALL, NULL, NULL), ASYNC_EINVAL);
    ASSERT_EQ(fs_file_fails(FS_OPEN_BAD, test_path("f"), "q"), ASYNC_EINVAL);
    ASSERT_EQ(fs_file_fails(FS_OPEN_BAD, test_path("f"), "rx"), ASYNC_EINVAL);
    ASSERT_EQ(fs_file_fails(FS_OPEN_BAD, test_path("f"), "w++"), ASYNC_EINVAL);
    ASSERT_EQ(fs_file_fails(FS_OPEN_BAD, test_path("f"), NULL), ASYNC_EINVAL);
    ASSERT_EQ(fs_file_fails(FS_NULLS, NULL, NULL), ASYNC_EINVAL);
    test_rmdir();
}

TEST_TAGGED(files_calls_reject_null_and_invalid_arguments, TEST_THREADS) {
    async_loop *loop = new_hosted_loop();
    static pool_op_frame f;
    static char buf[8];
    const char *path = test_path("args.txt");
    async_file *file;
    test_write_file(path, "abc");
    file = pool_open(loop, path, "r+");
    /* read_all: nowhere to put the data */
    pool_op(&f, POOL_READ_ALL)->path = path;
    f.allp = NULL;
    ASSERT_EQ(pool_go(loop, &f), ASYNC_EINVAL);
    ASSERT(!f.reached);
    /* write_all: bytes promised but no data, permission bits that are no mode */
    pool_op(&f, POOL_WRITE_ALL)->path = path;
    f.len = 3;
    ASSERT_EQ(pool_go(loop, &f), ASYNC_EINVAL);
    pool_op(&f, POOL_WRITE_ALL)->path = path;
    f.data = "xyz";
    f.len = 3;
    f.mode = 010000;
    ASSERT_EQ(pool_go(loop, &f), ASYNC_EINVAL);
    ASSERT_STR_EQ(test_read_file(path), "abc"); /* nothing was written */
    /* open: no path; "x" twice is no fopen mode */
    pool_op(&f, POOL_OPEN)->path = NULL;
    ASSERT_EQ(pool_go(loop, &f), ASYNC_EINVAL);
    pool_op(&f, POOL_OPEN)->path = test_path("never.txt");
    f.how = "wxx";
    ASSERT_EQ(pool_go(loop, &f), ASYNC_EINVAL);
    ASSERT(access(test_path("never.txt"), F_OK) != 0);
    /* read: no file; no buffer for a non-zero capacity */
    pool_op(&f, POOL_READ)->file = NULL;
    f.buf = buf;
    f.cap = sizeof buf;
    ASSERT_EQ(pool_go(loop, &f), ASYNC_EINVAL);
    pool_op(&f, POOL_READ)->file = file;
    f.cap = sizeof buf;
    ASSERT_EQ(pool_go(loop, &f), ASYNC_EINVAL);
    /* write: no file; no data for a non-zero length */
    pool_op(&f, POOL_WRITE)->file = NULL;
    f.data = "x";
    f.len = 1;
    ASSERT_EQ(pool_go(loop, &f), ASYNC_EINVAL);
    pool_op(&f, POOL_WRITE)->file = file;
    f.len = 1;
    ASSERT_EQ(pool_go(loop, &f), ASYNC_EINVAL);
    /* the file is untouched by all that: it still reads from the start */
    pool_op(&f, POOL_READ)->file = file;
    f.buf = buf;
    f.cap = sizeof buf;
    ASSERT_EQ(pool_go(loop, &f), 0);
    ASSERT_EQ(f.nread, 3);
    ASSERT(memcmp(buf, "abc", 3) == 0);
    ASSERT_EQ(pool_close(loop, file), 0);
    ASSERT_EQ(async_loop_jobs(loop), 0);
    async_loop_free(loop);
    test_rmdir();
}

/* Lengths no memory can hold fail with ASYNC_ENOMEM before anything is allocated or copied: the files'
 * own checks (their argument record would overflow) and the job allocator's (record plus payload). The
 * sizes are chosen to fail those checks, never to reach malloc (ASan aborts on absurd requests). */
TEST_TAGGED(files_sizes_past_the_address_space_are_enomem, TEST_THREADS) {
    async_loop *loop = new_hosted_loop();
    static pool_op_frame f;
    static char buf[8];
    const char *path = test_path("huge.txt");
    async_file *file;
    test_write_file(path, "abc");
    file = pool_open(loop, path, "r+");
    pool_op(&f, POOL_WRITE_ALL)->path = path;
    f.data = "x"; /* never read: the length is refused first */
    f.len = SIZE_MAX;
    ASSERT_EQ(pool_go(loop, &f), ASYNC_ENOMEM);
    pool_op(&f, POOL_WRITE_ALL)->path = path;
    f.data = "x";
    f.len = SIZE_MAX - 33 - strlen(path); /* passes the files' check (a 24-byte record), not the job's */
    ASSERT_EQ(pool_go(loop, &f), ASYNC_ENOMEM);
    pool_op(&f, POOL_READ)->file = file;
    f.buf = buf;
    f.cap = SIZE_MAX;
    ASSERT_EQ(pool_go(loop, &f), ASYNC_ENOMEM);
    pool_op(&f, POOL_READ)->file = file;
    f.buf = buf;
    f.cap = SIZE_MAX - 32; /* the same: the job adds its own header to the payload */
    ASSERT_EQ(pool_go(loop, &f), ASYNC_ENOMEM);
    pool_op(&f, POOL_WRITE)->file = file;
    f.data = "x";
    f.len = SIZE_MAX;
    ASSERT_EQ(pool_go(loop, &f), ASYNC_ENOMEM);
    ASSERT_STR_EQ(test_read_file(path), "abc");
    ASSERT_EQ(async_loop_jobs(loop), 0);
    ASSERT_EQ(pool_close(loop, file), 0);
    async_loop_free(loop);
    test_rmdir();
}

/* An open whose result has nowhere to go: the descriptor it opened is closed again, nothing leaks. */
TEST_TAGGED(files_open_without_a_place_for_the_file_closes_it, TEST_THREADS) {
    async_loop *loop = new_hosted_loop();
    static pool_op_frame f;
    const char *path = test_path("nowhere.txt");
    int before;
    test_write_file(path, "abc");
    pool_op(&f, POOL_TO_THREAD); /* makes the pool and its eventfd first */
    ASSERT_EQ(pool_go(loop, &f), 0);
    before = test_count_fds();
    pool_op(&f, POOL_OPEN)->path = path;
    f.filep = NULL;
    ASSERT_EQ(pool_go(loop, &f), ASYNC_EINVAL);
    ASSERT_EQ(test_count_fds(), before);
    ASSERT_EQ(async_loop_jobs(loop), 0);
    async_loop_free(loop);
    test_rmdir();
}

/* A file belongs to the loop that opened it: another loop's calls on it are ASYNC_EINVAL. */
TEST_TAGGED(files_of_another_loop_is_einval, TEST_THREADS) {
    async_loop *a = new_hosted_loop(), *b = new_hosted_loop();
    static pool_op_frame f;
    static char buf[8];
    const char *path = test_path("mine.txt");
    async_file *file;
    test_write_file(path, "abc");
    file = pool_open(a, path, "r+");
    pool_op(&f, POOL_WRITE)->file = file;
    f.data = "zz";
    f.len = 2;
    ASSERT_EQ(pool_go(b, &f), ASYNC_EINVAL);
    pool_op(&f, POOL_READ)->file = file;
    f.buf = buf;
    f.cap = sizeof buf;
    ASSERT_EQ(pool_go(b, &f), ASYNC_EINVAL);
    pool_op(&f, POOL_CLOSE)->file = file;
    ASSERT_EQ(pool_go(b, &f), ASYNC_EINVAL);
    ASSERT_EQ(async_loop_jobs(b), 0);
    /* its own loop still reads it from the start and closes it */
    pool_op(&f, POOL_READ)->file = file;
    f.buf = buf;
    f.cap = sizeof buf;
    ASSERT_EQ(pool_go(a, &f), 0);
    ASSERT_EQ(f.nread, 3);
    ASSERT_EQ(pool_close(a, file), 0);
    async_loop_free(b);
    async_loop_free(a);
    test_rmdir();
}

/* ---- cancelled reads, closes and loops freed with files open ---- */

/* A read blocked on a FIFO: cancelled, then the file closed while the read still runs (the close waits
 * for it, and calls on the closing file fail with EBADF), then data arrives and everything ends. */
ASYNC_DEF(fs_reader, async_file *file; async_thread_call call; char buf[8]; size_t n;) {
    AWAIT_FILE_READ(t, &f->call, f->file, f->buf, sizeof f->buf, &f->n);
} ASYNC_END_DEF

ASYNC_DEF(fs_closer, async_file *file; async_thread_call call;) {
    AWAIT_FILE_CLOSE(t, &f->call, f->file);
} ASYNC_END_DEF

ASYNC_DEF(fs_fifo, const char *path; int wfd; async_thread_call call, call2; async_file *file; fs_reader_frame reader;
          fs_closer_frame closer; async_group g; int code;) {
    AWAIT_FILE_OPEN(t, &f->call, &f->file, f->path, "r+"); /* O_RDWR: a FIFO opens without a writer */
    ASYNC_SPAWN(t, &f->g, ASYNC_CALL(fs_reader, &f->reader, f->file));
    while (async_loop_jobs(async_task_loop(t)) == 0) AWAIT_YIELD(t);
    async_cancel(&f->reader.task); /* its read is blocked in a pool thread */
    ASYNC_SPAWN(t, &f->g, ASYNC_CALL(fs_closer, &f->closer, f->file));
    AWAIT_YIELD(t);
    AWAIT_YIELD(t); /* the closer has started its close, parked behind the read */
    ASSERT(!async_task_done(&f->closer.task));
    ASYNC_TRY(t) {
        AWAIT_FILE_WRITE(t, &f->call2, f->file, "no", 2);
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
    ASSERT_EQ(f->code, ASYNC_EBADF);
    ASSERT_EQ(write(f->wfd, "data", 4), 4); /* the blocked read returns; then the close runs */
    AWAIT_GROUP(t, &f->g);
    ASSERT(async_task_cancelled(&f->reader.task));
    ASSERT_EQ(async_task_code(&f->closer.task), 0);
    ASSERT_EQ(async_loop_jobs(async_task_loop(t)), 0);
} ASYNC_END_DEF

TEST_TAGGED(files_close_waits_for_a_cancelled_read, TEST_THREADS | TEST_WAITS) {
    async_loop *loop = new_hosted_loop();
    static fs_fifo_frame m;
    const char *fifo = test_path("fifo");
    ASSERT_EQ(mkfifo(fifo, 0600), 0);
    ASYNC_CALL(fs_fifo, &m, fifo, open(fifo, O_RDWR | O_NONBLOCK));
    ASSERT(m.wfd >= 0);
    ASSERT_EQ(async_run(loop, &m.task), 0);
    close(m.wfd);
    async_loop_free(loop);
    test_rmdir();
}

/* A read_all cancelled while it blocks in open() on a FIFO: its buffer is freed when it comes back. */
static void *fs_feed_fifo(void *arg) {
    int fd = open((const char *)arg, O_WRONLY); /* blocks until the reader has opened */
    if (fd >= 0) {
        if (write(fd, "fifo data", 9) != 9) perror("write");
        close(fd);
    }
    return NULL;
}

ASYNC_DEF(fs_fifo_all, const char *path; fs_file_fail_frame reader; async_group g;) {
    ASYNC_SPAWN(t, &f->g, ASYNC_CALL(fs_file_fail, &f->reader, FS_READ_ALL, f->path));
    while (async_loop_jobs(async_task_loop(t)) == 0) AWAIT_YIELD(t);
    async_cancel(&f->reader.task);
    AWAIT_GROUP(t, &f->g);
    ASSERT_EQ(f->reader.code, ASYNC_ECANCELED);
} ASYNC_END_DEF

TEST_TAGGED(files_cancelled_read_all_frees_its_buffer, TEST_THREADS | TEST_WAITS) {
    async_loop *loop = new_hosted_loop();
    static fs_fifo_all_frame m;
    pthread_t feeder;
    const char *fifo = test_path("fifo2");
    ASSERT_EQ(mkfifo(fifo, 0600), 0);
    ASSERT_EQ(async_run(loop, ASYNC_CALL(fs_fifo_all, &m, fifo)), 0);
    ASSERT_EQ(pthread_create(&feeder, NULL, fs_feed_fifo, (void *)fifo), 0);
    async_loop_free(loop); /* waits for the read_all; its buffer goes (ASan and valgrind check) */
    pthread_join(feeder, NULL);
    test_rmdir();
}

/* Files left open are closed when the loop is freed. */
ASYNC_DEF(fs_leave_open, const char *path; async_thread_call call; async_file *file;) {
    AWAIT_FILE_OPEN(t, &f->call, &f->file, f->path, "w");
    AWAIT_FILE_OPEN(t, &f->call, &f->file, f->path, "r");
} ASYNC_END_DEF

TEST_TAGGED(files_loop_free_closes_files_left_open, TEST_THREADS) {
    static fs_leave_open_frame m;
    async_loop *loop = new_hosted_loop();
    int before;
    /* makes the loop's pool and its eventfd */
    ASSERT_EQ(async_run(loop, ASYNC_CALL(fs_leave_open, &m, test_path("open.txt"))), 0);
    before = test_count_fds();
    async_loop_free(loop);
    ASSERT(test_count_fds() <= before - 2);
    test_rmdir();
}
