/* Private to src/: jobs on a loop's thread pool (thread_pool.c), for the files (files.c), name lookups
 * (net_resolve.c) and to_thread. A job is made on the loop thread, run by a pool thread, and comes back
 * to the loop thread, where it is either delivered (to the task awaiting it, or to a completion
 * callback) or, if no one wants it any more, its outcome goes to its dtor. On a simulated loop no thread
 * is started: a job is a call of the world (ASYNC__REQ_CALL), whose completion runs fn on the loop's
 * thread at the time the world draws, and the job comes back the same way. */
#ifndef ASYNC_THREAD_POOL_H
#define ASYNC_THREAD_POOL_H

#include "internal.h"

/** A new job of loop with `extra` bytes of payload (async__job_payload), or NULL with *err set
 *  (ASYNC_ENOTSUP: not a hosted loop; ASYNC_ENOMEM; a pool's start-up error, ASYNC_EAGAIN). */
async__job *async__job_new(async_loop *loop, size_t extra, int *err);
/** What the pool thread runs: fn(arg, &result); dtor receives an outcome no one takes. */
void async__job_set_fn(async__job *j, async_thread_fn fn, void *arg, async_thread_dtor dtor);
/** Makes j a native operation where the loop's backend does them (io_uring): kind ASYNC__REQ_READ or
 *  ASYNC__REQ_WRITE of len bytes of buf (memory of the job's payload) at fd's file position, done by
 *  the kernel instead of fn on a pool thread, with the rc and result fn would give (bytes read; a write
 *  goes on until all len bytes are written, and its result is len). Elsewhere it does nothing. A job
 *  whose operation the backend refuses at its start runs fn on the pool after all. */
void async__job_set_native(async__job *j, int kind, int fd, void *buf, size_t len, int64_t offset);
/** The job's payload: `extra` bytes, aligned for any type. */
void *async__job_payload(async__job *j);
/** Bookkeeping when the job comes back to the loop thread, before its delivery or discard, whether or
 *  not anyone still waits for it (a file's calls in flight). */
void async__job_on_back(async__job *j, void (*back)(async__job *j, void *ctx), void *ctx);
/** Frees a job that was never started, or whose outcome was taken. */
void async__job_drop(async__job *j);
/** fn's code (0 or an error) and result, once the job is back. */
int async__job_rc(const async__job *j);
intptr_t async__job_result(const async__job *j);
/** The loop the job belongs to. */
async_loop *async__job_loop(const async__job *j);

/* ---- a job a task awaits (to_thread, files) ---- */

/** The start of the await: the awaiter waits on j, and j goes to the pool (or, parked, waits for
 *  async__job_launch: a file's close waits for the calls on the file). ASYNC__WAIT, or ASYNC__RAISE
 *  (cancellation pending; j is freed). */
int async__job_start(async_task *t, async_thread_call *call, async__job *j, bool parked);
/** Hands a parked job to the pool. */
void async__job_launch(async__job *j);
/** The check of the await: ASYNC__WAIT, ASYNC__RAISE (cancelled: the job is detached or discarded), or
 *  ASYNC__GO with *out the finished job, which the caller reads and passes to async__job_end. */
int async__job_wait(async_task *t, async_thread_call *call, async__job **out);
/** Delivers a finished job: stores its result in call, frees it, and raises rc if it is not 0 (fn's code,
 *  or the caller's own verdict on the outcome). ASYNC__GO or ASYNC__RAISE. */
int async__job_end(async_task *t, async_thread_call *call, async__job *j, int rc);
/** Raises `code` in t: its static record if the library has one, else call's own record. */
int async__thread_raise(async_task *t, async_thread_call *call, int code);
/** Fails an await that never started a job: call is reset and code raised. */
int async__call_fail(async_task *t, async_thread_call *call, int code);

/* ---- a job whose completion is a callback (name lookups) ---- */

/** Sends j to the pool; done(j, ctx) runs on the loop thread when it is back, unless abandoned first.
 *  After done, the caller takes the outcome (async__job_rc, _result, _payload) and drops the job, or
 *  abandons it. */
void async__job_submit(async__job *j, void (*done)(async__job *j, void *ctx), void *ctx);
/** No one wants the outcome: the dtor gets it, now if it is back, else when it comes. */
void async__job_abandon(async__job *j);

#endif
