/* Seed 003, section 4.1: "Reading and Writing Files Asynchronously". AWAIT_FILE_WRITE_ALL and
 * AWAIT_FILE_READ_ALL open, write or read the whole file, and close it, on the loop's thread pool
 * (file_io.c spells out the `async with`). The file is example-PID.txt in the current directory (one per
 * run), removed at the end. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "async.h"

ASYNC_DEF(read_file, const char *file_path; async_thread_call call; char *contents; size_t len;) {
    AWAIT_FILE_READ_ALL(t, &f->call, f->file_path, &f->contents, &f->len);
    printf("%s\n", f->contents);
    free(f->contents);
} ASYNC_END_DEF

ASYNC_DEF(write_file, const char *file_path, *content; async_thread_call call;) {
    AWAIT_FILE_WRITE_ALL(t, &f->call, f->file_path, f->content, strlen(f->content), 0644);
} ASYNC_END_DEF

ASYNC_DEF(main, char file_path[32]; write_file_frame writer; read_file_frame reader;) {
    snprintf(f->file_path, sizeof f->file_path, "example-%ld.txt", (long)getpid()); /* 'example.txt', one per run */
    ASYNC_TRY(t) {
        AWAIT_CALL(t, write_file, &f->writer, f->file_path, "Hello, asyncio!");
        AWAIT_CALL(t, read_file, &f->reader, f->file_path);
    } ASYNC_FINALLY(t) {
        remove(f->file_path);
    } ASYNC_END_TRY(t);
} ASYNC_END_DEF

ASYNC_MAIN(main)
