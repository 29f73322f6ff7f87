/* Private to src/: the world's file system (sim_fs.c), as the file calls (files.c) reach it on a simulated
 * loop. Its calls are those of POSIX that files.c makes (open, read, pread, write, fstat's size, close),
 * with the same results: a descriptor or a count, or an ASYNC_E* code instead of -1 and errno. They run
 * on the loop's thread (a job's fn, when the world's CALL for it completes), and each is one event of the
 * world: noted in the run's hash with the bytes it moved, and open to the faults of the world's options
 * (file_error_pct: the call fails with ASYNC_EIO, or for half the failing writes ASYNC_ENOSPC;
 * file_short_pct: a read or write of 2 bytes or more moves fewer, at least 1, as a real one may).
 *
 * The namespace is flat: a path is a file's name, compared byte for byte, and no directory is needed
 * to make one (a path with slashes is one name). Permissions are not simulated. Files live until the
 * world ends (the file API has no unlink). */
#ifndef ASYNC_SIM_FS_H
#define ASYNC_SIM_FS_H

#include "sim.h"

/** The file part of a world: its files and its open descriptors. */
typedef struct async__sim_files async__sim_files;

/** The file system of loop's world, or NULL if loop is not simulated. */
async__sim_files *async__sim_files_of(const async_loop *loop);

/** open(2) with flags O_RDONLY, O_WRONLY or O_RDWR, and O_CREAT, O_EXCL, O_TRUNC, O_APPEND (other bits are
 *  ignored): a descriptor of the world (async__sim_fd_new's numbering), or ASYNC_ENOENT (no such file,
 *  without O_CREAT; an empty path), ASYNC_EEXIST (O_CREAT | O_EXCL on a file that exists), ASYNC_EIO (a
 *  fault), ASYNC_ENOMEM. */
int async__sim_file_open(async__sim_files *fs, const char *path, int flags);
/** read(2) at the descriptor's position, which it moves on (offset -1), or pread(2) at offset (>= 0):
 *  the bytes copied into buf, 0 at or past the end, maybe fewer than asked (a short read), or ASYNC_EBADF
 *  (no such descriptor, or one open for writing only), ASYNC_EIO (a fault). */
long async__sim_file_read(async__sim_files *fs, int fd, void *buf, size_t len, int64_t offset);
/** write(2) at the descriptor's position (or at the end of the file with O_APPEND), which it moves on:
 *  the bytes taken (maybe fewer than len, at least 1 if len > 0: a short write), or ASYNC_EBADF (no such
 *  descriptor, or one open for reading only), ASYNC_EIO or ASYNC_ENOSPC (a fault), ASYNC_ENOMEM. */
long async__sim_file_write(async__sim_files *fs, int fd, const void *data, size_t len);
/** fstat(2)'s st_size: the length of fd's file, or ASYNC_EBADF. */
int64_t async__sim_file_size(async__sim_files *fs, int fd);
/** fstat(2)'s st_mtime in the world's time: the loop's virtual time (ms) when fd's file was last made,
 *  written, truncated or put (async_sim_file_put); or ASYNC_EBADF. */
int64_t async__sim_file_mtime(async__sim_files *fs, int fd);
/** Whether path names a directory of the world. The namespace is flat, so a directory is where a file's
 *  name goes on below it: some file is named path, a '/' (unless path ends with one) and more; "" is the
 *  top, always a directory. It looks at every file: a call for a lookup that found no file. */
bool async__sim_file_is_dir(async__sim_files *fs, const char *path);
/** close(2): 0, or ASYNC_EBADF (no such descriptor). */
int async__sim_file_close(async__sim_files *fs, int fd);

#endif
