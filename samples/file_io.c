/* Seed 001, slide 10: "Asynchronous File I/O" (aiofiles). Each file call runs on the loop's thread pool;
 * `async with` closes the file however its body ends. The file is test-PID.txt in the current directory
 * (one per run), removed at the end. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "async.h"

/* content is read into a zeroed frame, at most all but its last byte: it ends with a NUL */
ASYNC_DEF(read_file, const char *filename; async_file *file; async_thread_call call; char content[256]; size_t len;) {
    AWAIT_FILE_OPEN(t, &f->call, &f->file, f->filename, "r");
    ASYNC_WITH(t) {
        AWAIT_FILE_READ(t, &f->call, f->file, f->content, sizeof f->content - 1, &f->len);
    } ASYNC_WITH_EXIT(t) {
        AWAIT_FILE_CLOSE(t, &f->call, f->file);
    } ASYNC_END_WITH(t);
} ASYNC_END_DEF

ASYNC_DEF(write_file, const char *filename, *content; async_file *file; async_thread_call call;) {
    AWAIT_FILE_OPEN(t, &f->call, &f->file, f->filename, "w");
    ASYNC_WITH(t) {
        AWAIT_FILE_WRITE(t, &f->call, f->file, f->content, strlen(f->content));
    } ASYNC_WITH_EXIT(t) {
        AWAIT_FILE_CLOSE(t, &f->call, f->file);
    } ASYNC_END_WITH(t);
} ASYNC_END_DEF

ASYNC_DEF(main, char filename[32]; write_file_frame writer; read_file_frame reader;) {
    snprintf(f->filename, sizeof f->filename, "test-%ld.txt", (long)getpid()); /* 'test.txt', one per run */
    ASYNC_TRY(t) {
        AWAIT_CALL(t, write_file, &f->writer, f->filename, "Hello, Async World!");
        AWAIT_CALL(t, read_file, &f->reader, f->filename);
        printf("File content: %s\n", f->reader.content);
    } ASYNC_FINALLY(t) {
        remove(f->filename);
    } ASYNC_END_TRY(t);
} ASYNC_END_DEF

ASYNC_MAIN(main)
