/* Private to the thread pool and the files built on it (src/thread_pool.c, src/files.c). */
#ifndef ASYNC_THREAD_POOL_H
#define ASYNC_THREAD_POOL_H

#include "internal.h"

/* Room after a job record for the call's own copy of its arguments (file paths, buffers). */
typedef union async__align {
    void *p;
    long long ll;
    double d;
    long double ld;
} async__align;

/* One call, from its start on the loop thread to its delivery or discard. The fields above `state` are
 * written by the loop thread before the job is queued, then read (fn, arg, home) and written (result,
 * rc, next) by one pool thread, then read by the loop thread again after it took the job back under its
 * home's mutex. The others belong to the loop thread alone. */
struct async__job {
    async__job *next;     /* the pool's queue, then the home's list of finished jobs */
    async__threads *home; /* the loop the job returns to */
    async_thread_fn fn;
    void *arg;
    intptr_t result;
    int rc;
    /* loop thread only */
    uint8_t state;          /* JOB_* below */
    uint8_t detached;       /* the awaiter is gone: discard the outcome when it comes */
    uint8_t closes;         /* a file close: frees `file` when done */
    uint8_t recycle;        /* no payload: goes back to the home's free list */
    async_thread_dtor dtor; /* for an outcome no one receives */
    async_future done;      /* the awaiter waits here */
    async__job *live_prev, *live_next; /* the home's finished, undelivered jobs */
    async_file *file;                  /* the file the job works on, or NULL */
    async__align payload[];            /* the call's copy of its arguments (files) */
};

enum { JOB_NEW = 0, JOB_PARKED, JOB_QUEUED, JOB_DONE };

/* An open file. Only the loop thread touches it: pool threads get a copy of fd in their job. */
struct async_file {
    int fd;
    unsigned busy;          /* reads and writes on it in flight */
    bool closing;           /* a close was requested: no new calls */
    async__job *close_job;  /* the close, parked until busy drops to 0 */
    async__threads *home;
    async_file *prev, *next; /* the home's open files */
};

/* A new job of the loop that runs t, with `extra` bytes of payload, or NULL with *err set
 * (ASYNC_ENOTSUP: not a hosted loop; ASYNC_ENOMEM; a pool's start-up error). */
async__job *async__job_new(async_task *t, size_t extra, int *err);
/* Frees a job (not NULL) that was never started. */
void async__job_drop(async__job *j);
/* The start of the await: the awaiter waits on j and j goes to the pool (or waits for j->file's calls
 * to end if it closes it). ASYNC__WAIT, or ASYNC__RAISE (cancellation pending; j is freed). */
int async__job_start(async_task *t, async_thread_call *call, async__job *j);
/* The check of the await: ASYNC__WAIT, ASYNC__RAISE (cancelled: the job is detached or discarded), or
 * ASYNC__GO with *out the finished job, which the caller reads and passes to async__job_end. */
int async__job_wait(async_task *t, async_thread_call *call, async__job **out);
/* Delivers a finished job: stores its result in call, frees it, and raises its error if it failed.
 * ASYNC__GO or ASYNC__RAISE. */
int async__job_end(async_task *t, async_thread_call *call, async__job *j);
/* Raises `code` in t: its static record if the library has one, else call's own record. */
int async__thread_raise(async_task *t, async_thread_call *call, int code);
/* Links a newly opened file into its home's list (closed at loop free if the program does not). */
void async__file_link(async__threads *home, async_file *file);

#endif
