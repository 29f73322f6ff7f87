/* Seed 001, slide 10: "Asynchronous File I/O" (aiofiles).
 *
 *   async def read_file(filename):
 *       async with aiofiles.open(filename, mode='r') as file:
 *           content = await file.read()
 *       return content
 *
 *   async def write_file(filename, content):
 *       async with aiofiles.open(filename, mode='w') as file:
 *           await file.write(content)
 *
 *   async def main():
 *       await write_file('test.txt', 'Hello, Async World!')
 *       content = await read_file('test.txt')
 *       print(f"File content: {content}")
 *
 * Each file call runs on the loop's thread pool; `async with` is a finally block that closes the file.
 * test.txt is written in a fresh temporary directory, removed at the end. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "async.h"

typedef struct {
    async_task task;
    const char *filename;
    async_file *file;
    async_thread_call call;
    char content[256];
    size_t len;
} read_frame;

static async_status read_file_run(async_task *t) {
    read_frame *f = (read_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT_FILE_OPEN(t, &f->call, &f->file, f->filename, "r");
    ASYNC_TRY(t) {
        AWAIT_FILE_READ(t, &f->call, f->file, f->content, sizeof f->content - 1, &f->len);
        f->content[f->len] = '\0';
    }
    ASYNC_FINALLY(t) {
        AWAIT_FILE_CLOSE(t, &f->call, f->file);
    }
    ASYNC_END_TRY(t);
    ASYNC_END(t);
}

/* read_file(filename) */
static async_task *read_file(read_frame *f, const char *filename) {
    if (ASYNC_FRAME_INIT(f, read_file_run)) f->filename = filename;
    return &f->task;
}

typedef struct {
    async_task task;
    const char *filename, *content;
    async_file *file;
    async_thread_call call;
} write_frame;

static async_status write_file_run(async_task *t) {
    write_frame *f = (write_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT_FILE_OPEN(t, &f->call, &f->file, f->filename, "w");
    ASYNC_TRY(t) {
        AWAIT_FILE_WRITE(t, &f->call, f->file, f->content, strlen(f->content));
    }
    ASYNC_FINALLY(t) {
        AWAIT_FILE_CLOSE(t, &f->call, f->file);
    }
    ASYNC_END_TRY(t);
    ASYNC_END(t);
}

/* write_file(filename, content) */
static async_task *write_file(write_frame *f, const char *filename, const char *content) {
    if (ASYNC_FRAME_INIT(f, write_file_run)) {
        f->filename = filename;
        f->content = content;
    }
    return &f->task;
}

typedef struct {
    async_task task;
    const char *filename;
    write_frame writer;
    read_frame reader;
} main_frame;

static async_status main_run(async_task *t) {
    main_frame *f = (main_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT(t, write_file(&f->writer, f->filename, "Hello, Async World!"));
    AWAIT(t, read_file(&f->reader, f->filename));
    printf("File content: %s\n", f->reader.content);
    ASYNC_END(t);
}

int main(void) {
    static main_frame m;
    char dir[] = "/tmp/async-file_io-XXXXXX", path[sizeof dir + 16];
    int rc;
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(path, sizeof path, "%s/test.txt", dir);
    ASYNC_FRAME_INIT(&m, main_run);
    m.filename = path;
    rc = async_main(&m.task);
    unlink(path);
    rmdir(dir);
    return rc ? 1 : 0;
}
