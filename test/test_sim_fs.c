/* Calls on threads and files in the simulated world: to_thread on a simulated loop starts no thread (its
 * calls are the world's, and end after delays drawn in [0, call_delay_max_ms] of virtual time, in an
 * order the seed decides), a cancelled awaiter's call still ends at its time and its dtor gets the
 * outcome, a loop freed with calls in flight runs them then; the world's files (write and read back,
 * reads at an offset, append, exclusive creation, missing files, short reads and writes that the whole
 * file calls go on after, EIO and ENOSPC from the faults), async_sim_file_put/get, and a pipeline with
 * faults whose hash follows the seed alone. */
#include "sim_fs.h" /* src/: the world's files as the layer above calls them, for their faults */
#include "test.h"
#include "util.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>

static async_loop *sfs_loop(uint64_t seed, unsigned short_pct, unsigned error_pct, uint32_t delay_max) {
    async_sim_options o = async_sim_defaults(seed);
    async_loop *loop;
    o.file_short_pct = short_pct;
    o.file_error_pct = error_pct;
    o.call_delay_max_ms = delay_max;
    loop = async_sim_new(&o);
    ASSERT(loop != NULL);
    return loop;
}

/* Sets the faults of a running world. */
static void sfs_faults(async_loop *loop, unsigned short_pct, unsigned error_pct) {
    async_sim_options o = async_sim_defaults(0);
    o.file_short_pct = short_pct;
    o.file_error_pct = error_pct;
    ASSERT_EQ(async_sim_set_faults(loop, &o), 0);
}

/* The threads of the process (/proc/self/task). */
static int sfs_threads(void) {
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int n = 0;
    ASSERT(d != NULL);
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

/* ---- calls that record when and where they ran ---- */

enum { SFS_MAX = 256, SFS_FAIL = 999 };

static struct {
    async_loop *loop;      /* whose clock the calls read */
    pthread_t main;        /* the loop's thread */
    int order[SFS_MAX], n; /* ids in the order the calls ran */
    async_ms at[SFS_MAX];  /* when each ran */
    bool elsewhere;        /* a call ran on another thread */
    int dtors;             /* outcomes the dtor received */
    char dtor_text[16];    /* the last one's text (sfs_heap's) */
} sfs;

static void sfs_reset(async_loop *loop) {
    memset(&sfs, 0, sizeof sfs);
    sfs.loop = loop;
    sfs.main = pthread_self();
}

static int sfs_record(void *arg, intptr_t *result) {
    int id = (int)(intptr_t)arg;
    if (!pthread_equal(pthread_self(), sfs.main)) sfs.elsewhere = true;
    if (sfs.n < SFS_MAX) sfs.order[sfs.n++] = id;
    if (id >= 0 && id < SFS_MAX) sfs.at[id] = async_loop_now(sfs.loop);
    *result = (intptr_t)id * 10;
    return id == SFS_FAIL ? ASYNC_EUSER + 5 : 0;
}

/* A result that leaks unless the awaiter or the dtor frees it. */
static int sfs_heap(void *arg, intptr_t *result) {
    char *p = (char *)malloc(16);
    if (!p) return ASYNC_ENOMEM;
    snprintf(p, 16, "r%d", (int)(intptr_t)arg);
    sfs_record(arg, result);
    *result = (intptr_t)p;
    return 0;
}

static void sfs_free(intptr_t result, void *arg) {
    (void)arg;
    sfs.dtors++;
    snprintf(sfs.dtor_text, sizeof sfs.dtor_text, "%s", (const char *)result);
    free((void *)result);
}

/* One call awaited: its result or the code it raised, and the times around the await. */
ASYNC_DEF(sfs_call, intptr_t id; async_thread_fn fn; async_thread_dtor dtor; async_thread_call call; intptr_t result;
          int code; async_ms start, end;) {
    f->start = async_loop_now(async_task_loop(t));
    ASYNC_TRY(t) {
        AWAIT_TO_THREAD(t, &f->call, f->fn, (void *)f->id, f->dtor);
        f->result = async_thread_call_result(&f->call);
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
    f->end = async_loop_now(async_task_loop(t));
} ASYNC_END_DEF

/* n calls of sfs_record started together (ids 0..n-1), awaited with a gather. */
ASYNC_DEF(sfs_many, int n; sfs_call_frame c[SFS_MAX]; async_group all;) {
    int i;
    for (i = 0; i < f->n; i++) ASYNC_CALL(sfs_call, &f->c[i], i, sfs_record, NULL);
    AWAIT_GATHER_ARRAY(t, &f->all, &f->c[0].task, (size_t)f->n, sizeof f->c[0]);
} ASYNC_END_DEF

/* Runs n calls together on a new world of seed with delays up to delay_max; the order they ran in goes
 * to order (n ids), and the frame stays for the caller to look at. */
static void sfs_run_many(sfs_many_frame *m, uint64_t seed, uint32_t delay_max, int n, int *order) {
    async_loop *loop = sfs_loop(seed, 0, 0, delay_max);
    sfs_reset(loop);
    ASSERT_EQ(async_run(loop, ASYNC_CALL(sfs_many, m, n)), 0);
    ASSERT_EQ(sfs.n, n);
    memcpy(order, sfs.order, (size_t)n * sizeof *order);
    ASSERT_EQ(async_loop_jobs(loop), 0);
    async_loop_free(loop);
}

/* ---- to_thread in the world ---- */

ASYNC_DEF(sfs_results, sfs_call_frame ok, bad; async_group all;) {
    AWAIT_GATHER(t, &f->all, ASYNC_CALL(sfs_call, &f->ok, 7, sfs_record, NULL),
                 ASYNC_CALL(sfs_call, &f->bad, SFS_FAIL, sfs_record, NULL));
} ASYNC_END_DEF

TEST(sim_fs_to_thread_returns_results_on_the_loop_thread) {
    async_loop *loop = sfs_loop(5, 0, 0, 5);
    static sfs_results_frame m;
    sfs_reset(loop);
    ASSERT_EQ(async_run(loop, ASYNC_CALL(sfs_results, &m)), 0); /* each awaiter caught its own */
    ASSERT_EQ(m.ok.result, 70);
    ASSERT_EQ(m.ok.code, 0);
    ASSERT_EQ(m.bad.code, ASYNC_EUSER + 5);
    ASSERT_EQ(m.bad.result, 0); /* a failed call's result is not delivered */
    ASSERT_EQ(sfs.n, 2);
    ASSERT(!sfs.elsewhere);
    ASSERT_EQ(async_loop_jobs(loop), 0);
    async_loop_free(loop);
}

TEST(sim_fs_calls_started_together_end_in_the_order_of_the_seed) {
    static sfs_many_frame m;
    int a[16], b[16], c[16], i, seed = 2, differs = 0;
    /* no delay: all due at the same moment, so the world's draw alone orders them */
    sfs_run_many(&m, 1, 0, 16, a);
    sfs_run_many(&m, 1, 0, 16, b);
    ASSERT(memcmp(a, b, sizeof a) == 0); /* one seed, one order */
    for (i = 0; i < 16 && a[i] == i; i++) {}
    ASSERT(i < 16); /* not simply the order started */
    for (; seed < 10 && !differs; seed++) {
        sfs_run_many(&m, (uint64_t)seed, 0, 16, c);
        differs = memcmp(a, c, sizeof a) != 0;
    }
    ASSERT(differs);
    for (i = 0; i < 16; i++) ASSERT_EQ(m.c[i].result, i * 10); /* each awaiter got its own result */
}

TEST(sim_fs_call_delays_stay_within_the_bound_in_virtual_time) {
    static sfs_many_frame m;
    int order[SFS_MAX], i, seen[8] = {0};
    sfs_run_many(&m, 11, 5, SFS_MAX, order);
    for (i = 0; i < SFS_MAX; i++) {
        async_ms d = m.c[i].end - m.c[i].start;
        ASSERT_EQ(m.c[i].start, 0);
        ASSERT(d <= 5);
        ASSERT_EQ(sfs.at[i], m.c[i].end); /* the call ran when its awaiter resumed: at its completion */
        seen[d]++;
    }
    for (i = 0; i <= 5; i++) ASSERT(seen[i] > 0); /* every delay of [0, 5], both ends included */
    for (i = 1; i < SFS_MAX; i++) ASSERT(sfs.at[order[i]] >= sfs.at[order[i - 1]]); /* ran in time order */
    sfs_run_many(&m, 11, 0, 8, order);
    for (i = 0; i < 8; i++) ASSERT_EQ(m.c[i].end, 0); /* a bound of 0: no virtual time passes */
}

/* The awaiter of a call is cancelled while the call is in flight; main then sleeps past its end. */
ASYNC_DEF(sfs_cancel, sfs_call_frame w; async_group g; async_ms cancelled_at;) {
    ASYNC_SPAWN(t, &f->g, ASYNC_CALL(sfs_call, &f->w, 1, sfs_heap, sfs_free));
    AWAIT_SLEEP(t, 0); /* the child starts its call */
    ASSERT_EQ(async_loop_jobs(async_task_loop(t)), 1);
    ASSERT_EQ(async_loop_set_threads(async_task_loop(t), 2), ASYNC_EBUSY); /* as on any loop */
    ASSERT(async_cancel(&f->w.task));
    f->cancelled_at = async_loop_now(async_task_loop(t));
    AWAIT_GROUP(t, &f->g);
    ASSERT_EQ(f->w.code, ASYNC_ECANCELED);
    ASSERT_EQ(sfs.n, 0); /* the call has not run yet */
    ASSERT_EQ(sfs.dtors, 0);
    AWAIT_SLEEP(t, 1000);
    ASSERT_EQ(sfs.n, 1); /* it ran at its time */
    ASSERT(sfs.at[1] > f->cancelled_at);
    ASSERT(sfs.at[1] <= 1000);
    ASSERT_EQ(sfs.dtors, 1); /* and its outcome went to the dtor */
    ASSERT_STR_EQ(sfs.dtor_text, "r1");
    ASSERT_EQ(async_loop_jobs(async_task_loop(t)), 0);
} ASYNC_END_DEF

TEST(sim_fs_cancelled_awaiter_call_still_ends_and_its_dtor_gets_the_outcome) {
    async_loop *loop = sfs_loop(3, 0, 0, 1000);
    static sfs_cancel_frame m;
    sfs_reset(loop);
    ASSERT_EQ(async_run(loop, ASYNC_CALL(sfs_cancel, &m)), 0);
    async_loop_free(loop);
    ASSERT_EQ(sfs.dtors, 1); /* exactly once */
}

/* Files in flight at the loop's end: an open (its descriptor goes to the dtor, which closes it), a
 * write_all, a read_all (its buffer goes to the dtor), a read with a close parked behind it (launched
 * when the read is back, during the free), and a file left open. */
ASYNC_DEF(sfs_starter, sfs_call_frame *c; pool_op_frame open, write, read, pread, pclose; async_file *left, *parked;
          async_thread_call call; char buf[4]; int yields;) {
    async_sim_options o;
    int i;
    AWAIT_FILE_OPEN(t, &f->call, &f->left, "left-open", "w"); /* no delay yet: the world's options say 0 */
    AWAIT_FILE_OPEN(t, &f->call, &f->parked, "left-open", "r");
    o = async_sim_defaults(0);
    o.call_delay_max_ms = 1000; /* from now on, calls that take long */
    ASSERT_EQ(async_sim_set_faults(async_task_loop(t), &o), 0);
    for (i = 0; i < 5; i++) async_spawn(async_task_loop(t), ASYNC_CALL(sfs_call, &f->c[i], i, sfs_heap, sfs_free));
    pool_op(&f->open, POOL_OPEN)->path = "opened";
    f->open.how = "w";
    pool_op(&f->write, POOL_WRITE_ALL)->path = "written";
    f->write.data = "abc";
    f->write.len = 3;
    pool_op(&f->read, POOL_READ_ALL)->path = "left-open";
    async_spawn(async_task_loop(t), &f->open.task);
    async_spawn(async_task_loop(t), &f->write.task);
    async_spawn(async_task_loop(t), &f->read.task);
    pool_op(&f->pread, POOL_READ)->file = f->parked; /* a read in flight, and a close parked behind it */
    f->pread.buf = f->buf;
    f->pread.cap = sizeof f->buf;
    pool_op(&f->pclose, POOL_CLOSE)->file = f->parked;
    async_spawn(async_task_loop(t), &f->pread.task);
    async_spawn(async_task_loop(t), &f->pclose.task);
    /* all started (bounded: a call whose start failed, an allocation the injector failed, never comes,
     * and the test's assertion says so instead of a hang) */
    for (f->yields = 0; async_loop_jobs(async_task_loop(t)) < 10 && f->yields < 100; f->yields++) AWAIT_YIELD(t);
} ASYNC_END_DEF

TEST(sim_fs_loop_freed_with_calls_in_flight_runs_them_and_the_dtors_free) {
    async_loop *loop = sfs_loop(4, 0, 0, 0);
    static sfs_call_frame c[5];
    static sfs_starter_frame s;
    int i;
    sfs_reset(loop);
    ASSERT_EQ(async_run(loop, ASYNC_CALL(sfs_starter, &s, c)), 0);
    ASSERT_EQ(async_loop_jobs(loop), 10);
    ASSERT_EQ(sfs.n, 0);
    async_loop_free(loop); /* as a real loop waits for its calls: they run now, their outcomes to the dtors */
    ASSERT_EQ(sfs.n, 5);
    for (i = 0; i < 5; i++) ASSERT_EQ(sfs.order[i], i); /* in the order started */
    ASSERT_EQ(sfs.dtors, 5);
    for (i = 0; i < 5; i++) ASSERT(!c[i].end && !c[i].result); /* no awaiter ran again */
}

/* A file's read whose awaiter is cancelled, then a close: the close waits for the read's call. */
ASYNC_DEF(sfs_close_wait, async_thread_call call; async_file *file; pool_op_frame r; async_group g; char buf[4];
          async_ms closed_at;) {
    AWAIT_FILE_OPEN(t, &f->call, &f->file, "slow", "r");
    pool_op(&f->r, POOL_READ)->file = f->file;
    f->r.buf = f->buf;
    f->r.cap = sizeof f->buf;
    ASYNC_SPAWN(t, &f->g, &f->r.task);
    while (async_loop_jobs(async_task_loop(t)) < 1 && !async_task_done(&f->r.task)) AWAIT_YIELD(t);
    ASSERT(async_cancel(&f->r.task));
    AWAIT_GROUP(t, &f->g);
    ASSERT_EQ(f->r.code, ASYNC_ECANCELED);
    ASSERT_EQ(async_loop_jobs(async_task_loop(t)), 1); /* the read's call still runs */
    AWAIT_FILE_CLOSE(t, &f->call, f->file);
    ASSERT_EQ(async_loop_jobs(async_task_loop(t)), 0);
} ASYNC_END_DEF

TEST(sim_fs_close_waits_for_a_cancelled_read) {
    async_loop *loop = sfs_loop(13, 0, 0, 50);
    static sfs_close_wait_frame m;
    ASSERT_EQ(async_sim_file_put(loop, "slow", "abcd", 4), 0);
    ASSERT_EQ(async_run(loop, ASYNC_CALL(sfs_close_wait, &m)), 0);
    async_loop_free(loop);
}

TEST(sim_fs_no_thread_is_started) {
    int before = sfs_threads();
    async_loop *loop = sfs_loop(6, 0, 0, 5);
    static sfs_many_frame m;
    static pool_op_frame w, r;
    async_thread_pool *pool;
    sfs_reset(loop);
    ASSERT_EQ(async_loop_set_threads(loop, 8), 0);
    ASSERT_EQ(async_loop_set_threads(loop, 0), ASYNC_EINVAL);
    ASSERT_EQ(async_loop_set_thread_pool(loop, NULL), 0);
    ASSERT_EQ(async_run(loop, ASYNC_CALL(sfs_many, &m, 64)), 0);
    pool_op(&w, POOL_WRITE_ALL)->path = "f";
    w.data = "hello";
    w.len = 5;
    ASSERT_EQ(pool_go(loop, &w), 0);
    pool_op(&r, POOL_READ_ALL)->path = "f";
    ASSERT_EQ(pool_go(loop, &r), 0);
    ASSERT_STR_EQ(r.all, "hello");
    free(r.all);
    ASSERT_EQ(sfs_threads(), before);
    ASSERT(!sfs.elsewhere);
    /* a shared pool (its threads the application's) is counted as in use, and not used */
    pool = async_thread_pool_new(1);
    ASSERT(pool != NULL);
    ASSERT_EQ(async_loop_set_thread_pool(loop, pool), 0);
    ASSERT_EQ(async_thread_pool_free(pool), ASYNC_EBUSY);
    ASSERT_EQ(async_run(loop, ASYNC_CALL(sfs_many, &m, 4)), 0);
    ASSERT(!sfs.elsewhere);
    async_loop_free(loop);
    ASSERT_EQ(async_thread_pool_free(pool), 0);
}

/* ---- files in the world ---- */

ASYNC_DEF(sfs_whole, async_thread_call call; char *data; size_t len;) {
    AWAIT_FILE_WRITE_ALL(t, &f->call, "dir/hello.txt", "Hello, World!", 13, 0600);
    ASSERT_EQ(async_thread_call_result(&f->call), 13);
    AWAIT_FILE_READ_ALL(t, &f->call, "dir/hello.txt", &f->data, &f->len);
    ASSERT_EQ(f->len, 13);
    ASSERT_STR_EQ(f->data, "Hello, World!");
    free(f->data);
    AWAIT_FILE_WRITE_ALL(t, &f->call, "dir/hello.txt", "Hi", 2, 0600); /* truncates */
    AWAIT_FILE_READ_ALL(t, &f->call, "dir/hello.txt", &f->data, &f->len);
    ASSERT_EQ(f->len, 2);
    ASSERT_STR_EQ(f->data, "Hi");
    free(f->data);
    AWAIT_FILE_WRITE_ALL(t, &f->call, "empty", NULL, 0, 0600);
    AWAIT_FILE_READ_ALL(t, &f->call, "empty", &f->data, &f->len);
    ASSERT_EQ(f->len, 0);
    ASSERT_STR_EQ(f->data, "");
    free(f->data);
} ASYNC_END_DEF

/* Runs main on loop, checks that the world's file at path then holds the len bytes of want, frees loop. */
static void sfs_run_then_file(async_loop *loop, async_task *main, const char *path, const char *want, long len) {
    char buf[64];
    ASSERT_EQ(async_run(loop, main), 0);
    ASSERT_EQ(async_sim_file_get(loop, path, buf, sizeof buf), len);
    ASSERT(memcmp(buf, want, (size_t)len) == 0);
    async_loop_free(loop);
}

TEST(sim_fs_write_all_then_read_all) {
    static sfs_whole_frame m;
    sfs_run_then_file(sfs_loop(1, 0, 0, 5), ASYNC_CALL(sfs_whole, &m), "dir/hello.txt", "Hi", 2);
}

/* Chunks, a read at an offset, append, read and write on one descriptor, the wrong direction. */
ASYNC_DEF(sfs_chunks, async_thread_call call; async_file *file; char buf[32]; size_t n; int code;) {
    AWAIT_FILE_OPEN(t, &f->call, &f->file, "log", "w");
    AWAIT_FILE_WRITE(t, &f->call, f->file, "0123456789", 10);
    AWAIT_FILE_WRITE(t, &f->call, f->file, "abcdef", 6);
    ASYNC_TRY(t) {
        AWAIT_FILE_READ(t, &f->call, f->file, f->buf, sizeof f->buf, &f->n); /* "w": write only */
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
    ASSERT_EQ(f->code, ASYNC_EBADF);
    AWAIT_FILE_CLOSE(t, &f->call, f->file);

    AWAIT_FILE_OPEN(t, &f->call, &f->file, "log", "r");
    AWAIT_FILE_READ(t, &f->call, f->file, f->buf, 4, &f->n);
    ASSERT_EQ(f->n, 4);
    ASSERT(memcmp(f->buf, "0123", 4) == 0);
    AWAIT_FILE_READ_AT(t, &f->call, f->file, f->buf, 3, (int64_t)10, &f->n);
    ASSERT_EQ(f->n, 3);
    ASSERT(memcmp(f->buf, "abc", 3) == 0);
    AWAIT_FILE_READ_AT(t, &f->call, f->file, f->buf, 8, (int64_t)14, &f->n); /* up to the end */
    ASSERT_EQ(f->n, 2);
    ASSERT(memcmp(f->buf, "ef", 2) == 0);
    AWAIT_FILE_READ_AT(t, &f->call, f->file, f->buf, 8, (int64_t)100, &f->n); /* past it */
    ASSERT_EQ(f->n, 0);
    AWAIT_FILE_READ(t, &f->call, f->file, f->buf, sizeof f->buf, &f->n); /* the position was left at 4 */
    ASSERT_EQ(f->n, 12);
    ASSERT(memcmp(f->buf, "456789abcdef", 12) == 0);
    AWAIT_FILE_READ(t, &f->call, f->file, f->buf, sizeof f->buf, &f->n);
    ASSERT_EQ(f->n, 0); /* the end */
    f->code = 0;
    ASYNC_TRY(t) {
        AWAIT_FILE_WRITE(t, &f->call, f->file, "x", 1); /* "r": read only */
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
    ASSERT_EQ(f->code, ASYNC_EBADF);
    AWAIT_FILE_CLOSE(t, &f->call, f->file);

    AWAIT_FILE_OPEN(t, &f->call, &f->file, "log", "a");
    AWAIT_FILE_WRITE(t, &f->call, f->file, "XY", 2);
    AWAIT_FILE_CLOSE(t, &f->call, f->file);
    AWAIT_FILE_OPEN(t, &f->call, &f->file, "log", "r+");
    AWAIT_FILE_WRITE(t, &f->call, f->file, "__", 2); /* at the start: overwrites */
    AWAIT_FILE_READ(t, &f->call, f->file, f->buf, sizeof f->buf, &f->n); /* the rest, from the position */
    ASSERT_EQ(f->n, 16);
    ASSERT(memcmp(f->buf, "23456789abcdefXY", 16) == 0);
    AWAIT_FILE_CLOSE(t, &f->call, f->file);
    AWAIT_FILE_OPEN(t, &f->call, &f->file, "log", "a+");
    AWAIT_FILE_READ(t, &f->call, f->file, f->buf, 2, &f->n); /* reads from the start */
    ASSERT(memcmp(f->buf, "__", 2) == 0);
    AWAIT_FILE_WRITE(t, &f->call, f->file, "Z", 1); /* writes at the end all the same */
    AWAIT_FILE_CLOSE(t, &f->call, f->file);
} ASYNC_END_DEF

TEST(sim_fs_chunks_reads_at_an_offset_and_append) {
    static sfs_chunks_frame m;
    sfs_run_then_file(sfs_loop(2, 0, 0, 5), ASYNC_CALL(sfs_chunks, &m), "log", "__23456789abcdefXYZ", 19);
}

/* One file call that may fail: the code it raised. */
static int sfs_fails(async_loop *loop, int op, const char *path, const char *how) {
    static pool_op_frame f;
    pool_op(&f, op);
    f.path = path;
    f.how = how;
    f.data = "data";
    f.len = 4;
    if (pool_go(loop, &f) == 0 && op == POOL_OPEN) ASSERT_EQ(pool_close(loop, f.file), 0);
    if (op == POOL_READ_ALL) free(f.all);
    return f.code;
}

TEST(sim_fs_exclusive_creation_and_missing_files) {
    async_loop *loop = sfs_loop(8, 0, 0, 5);
    ASSERT_EQ(sfs_fails(loop, POOL_OPEN, "missing", "r"), ASYNC_ENOENT);
    ASSERT_EQ(sfs_fails(loop, POOL_OPEN, "missing", "r+"), ASYNC_ENOENT);
    ASSERT_EQ(sfs_fails(loop, POOL_READ_ALL, "missing", NULL), ASYNC_ENOENT);
    ASSERT_EQ(sfs_fails(loop, POOL_OPEN, "", "w"), ASYNC_ENOENT);
    ASSERT_EQ(async_sim_file_get(loop, "missing", NULL, 0), ASYNC_ENOENT); /* no failure made it */
    ASSERT_EQ(sfs_fails(loop, POOL_OPEN, "new", "wx"), 0);
    ASSERT_EQ(async_sim_file_get(loop, "new", NULL, 0), 0);
    ASSERT_EQ(sfs_fails(loop, POOL_OPEN, "new", "wx"), ASYNC_EEXIST);
    ASSERT_EQ(sfs_fails(loop, POOL_OPEN, "new", "a+x"), ASYNC_EEXIST);
    ASSERT_EQ(sfs_fails(loop, POOL_OPEN, "new", "w"), 0);
    ASSERT_EQ(sfs_fails(loop, POOL_OPEN, "made by append", "a"), 0);
    ASSERT_EQ(async_sim_file_get(loop, "made by append", NULL, 0), 0);
    ASSERT_EQ(sfs_fails(loop, POOL_OPEN, "new", "q"), ASYNC_EINVAL); /* files.c's check, as on any loop */
    async_loop_free(loop);
}

/* With every read and write cut short (file_short_pct 100), the whole-file calls and a file's write
 * still move every byte; a file's read returns fewer bytes than it could. */
enum { SFS_BIG = 50000 };
static unsigned char sfs_big[SFS_BIG];

ASYNC_DEF(sfs_short, async_thread_call call; async_file *file; char *data; size_t len, n, got; int shorter;
          unsigned char buf[1000];) {
    AWAIT_FILE_WRITE_ALL(t, &f->call, "big", sfs_big, SFS_BIG, 0644);
    ASSERT_EQ(async_thread_call_result(&f->call), SFS_BIG);
    AWAIT_FILE_READ_ALL(t, &f->call, "big", &f->data, &f->len);
    ASSERT_EQ(f->len, SFS_BIG);
    ASSERT(memcmp(f->data, sfs_big, SFS_BIG) == 0);
    free(f->data);
    AWAIT_FILE_OPEN(t, &f->call, &f->file, "big2", "w+");
    AWAIT_FILE_WRITE(t, &f->call, f->file, sfs_big, SFS_BIG);
    ASSERT_EQ(async_thread_call_result(&f->call), SFS_BIG);
    for (f->got = 0;; f->got += f->n) { /* a loop of reads, as a caller of read(2) writes it */
        AWAIT_FILE_READ_AT(t, &f->call, f->file, f->buf, sizeof f->buf, (int64_t)f->got, &f->n);
        if (f->n == 0) break;
        ASSERT(f->n >= 1);
        if (f->n < sizeof f->buf && f->got + f->n < SFS_BIG) f->shorter++;
        ASSERT(memcmp(f->buf, sfs_big + f->got, f->n) == 0);
    }
    ASSERT_EQ(f->got, SFS_BIG);
    ASSERT(f->shorter > 0);
    AWAIT_FILE_CLOSE(t, &f->call, f->file);
} ASYNC_END_DEF

TEST(sim_fs_short_reads_and_writes_still_move_every_byte) {
    async_loop *loop = sfs_loop(9, 100, 0, 5);
    static sfs_short_frame m;
    static unsigned char back[SFS_BIG];
    async__sim_files *fs = async__sim_files_of(loop);
    uint32_t seed = 1;
    int i, fd;
    long n;
    for (i = 0; i < SFS_BIG; i++) sfs_big[i] = (unsigned char)test_rand(&seed);
    ASSERT(fs != NULL);
    ASSERT(async__sim_files_of(NULL) == NULL);
    /* the world's calls themselves: every one of 2 bytes or more is short, and none is empty */
    fd = async__sim_file_open(fs, "raw", O_RDWR | O_CREAT);
    ASSERT(fd >= 3);
    for (i = 0; i < 100; i++) {
        n = async__sim_file_write(fs, fd, "0123456789", 10);
        ASSERT(n >= 1 && n <= 9);
    }
    ASSERT_EQ(async__sim_file_write(fs, fd, "x", 1), 1); /* one byte cannot be cut */
    ASSERT_EQ(async__sim_file_write(fs, fd, "x", 0), 0);
    n = async__sim_file_read(fs, fd, back, 10, 0);
    ASSERT(n >= 1 && n <= 9);
    ASSERT_EQ(async__sim_file_close(fs, fd), 0);
    ASSERT_EQ(async__sim_file_close(fs, fd), ASYNC_EBADF);
    ASSERT_EQ(async__sim_file_read(fs, fd, back, 10, -1), ASYNC_EBADF);
    ASSERT_EQ(async__sim_file_size(fs, fd), ASYNC_EBADF);
    /* and through the API, where the whole-file calls go on with the rest */
    ASSERT_EQ(async_run(loop, ASYNC_CALL(sfs_short, &m)), 0);
    ASSERT_EQ(async_sim_file_get(loop, "big2", back, sizeof back), SFS_BIG);
    ASSERT(memcmp(back, sfs_big, SFS_BIG) == 0);
    async_loop_free(loop);
}

/* Writes and reads on a file while every call fails: the codes raised. */
ASYNC_DEF(sfs_errors, async_thread_call call; async_file *file; char buf[8]; size_t n; int i, eio, enospc, other;
          int rcode;) {
    AWAIT_FILE_OPEN(t, &f->call, &f->file, "disk", "w+");
    sfs_faults(async_task_loop(t), 0, 100);
    for (f->i = 0; f->i < 20; f->i++) {
        ASYNC_TRY(t) {
            AWAIT_FILE_WRITE(t, &f->call, f->file, "data", 4);
            f->other++;
        }
        ASYNC_CATCH(t) {
            int code = async_caught(t)->code;
            if (code == ASYNC_EIO)
                f->eio++;
            else if (code == ASYNC_ENOSPC)
                f->enospc++;
            else
                f->other++;
        }
        ASYNC_END_TRY(t);
    }
    ASYNC_TRY(t) {
        AWAIT_FILE_READ_AT(t, &f->call, f->file, f->buf, sizeof f->buf, (int64_t)0, &f->n);
    }
    ASYNC_CATCH(t) {
        f->rcode = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
    sfs_faults(async_task_loop(t), 0, 0);
    AWAIT_FILE_CLOSE(t, &f->call, f->file);
} ASYNC_END_DEF

TEST(sim_fs_faults_surface_as_eio_and_enospc) {
    async_loop *loop = sfs_loop(10, 0, 0, 5);
    static sfs_errors_frame m;
    ASSERT_EQ(async_run(loop, ASYNC_CALL(sfs_errors, &m)), 0);
    ASSERT_EQ(m.other, 0);
    ASSERT(m.eio > 0 && m.enospc > 0); /* both, drawn from the seed */
    ASSERT_EQ(m.eio + m.enospc, 20);
    ASSERT_EQ(m.rcode, ASYNC_EIO); /* a read never says ENOSPC */
    ASSERT_EQ(async_sim_file_get(loop, "disk", NULL, 0), 0); /* no write took a byte */
    sfs_faults(loop, 0, 100);
    ASSERT_EQ(sfs_fails(loop, POOL_OPEN, "disk", "r"), ASYNC_EIO);
    ASSERT_EQ(sfs_fails(loop, POOL_READ_ALL, "disk", NULL), ASYNC_EIO);
    ASSERT_EQ(sfs_fails(loop, POOL_WRITE_ALL, "disk", NULL), ASYNC_EIO); /* its open fails first */
    ASSERT_EQ(sfs_fails(loop, POOL_OPEN, "missing", "r"), ASYNC_ENOENT); /* the world's answer comes first */
    async_loop_free(loop);
}

TEST(sim_fs_put_and_get) {
    async_loop *loop = sfs_loop(12, 0, 0, 5), *other = new_hosted_loop();
    char buf[8];
    static pool_op_frame r;
    ASSERT_EQ(async_sim_file_put(loop, "p", "hello world", 11), 0);
    memset(buf, 0, sizeof buf);
    ASSERT_EQ(async_sim_file_get(loop, "p", buf, 5), 11); /* the whole length, cap bytes copied */
    ASSERT(memcmp(buf, "hello\0", 6) == 0);
    ASSERT_EQ(async_sim_file_get(loop, "p", NULL, 0), 11);
    pool_op(&r, POOL_READ_ALL)->path = "p";
    ASSERT_EQ(pool_go(loop, &r), 0);
    ASSERT_STR_EQ(r.all, "hello world");
    free(r.all);
    ASSERT_EQ(async_sim_file_put(loop, "p", "bye", 3), 0); /* replaced */
    ASSERT_EQ(async_sim_file_get(loop, "p", buf, sizeof buf), 3);
    ASSERT(memcmp(buf, "bye", 3) == 0);
    ASSERT_EQ(async_sim_file_put(loop, "p", NULL, 0), 0); /* emptied */
    ASSERT_EQ(async_sim_file_get(loop, "p", buf, sizeof buf), 0);
    ASSERT_EQ(async_sim_file_get(loop, "nothing", buf, sizeof buf), ASYNC_ENOENT);
    ASSERT_EQ(async_sim_file_put(NULL, "p", "x", 1), ASYNC_EINVAL);
    ASSERT_EQ(async_sim_file_put(loop, NULL, "x", 1), ASYNC_EINVAL);
    ASSERT_EQ(async_sim_file_put(loop, "", "x", 1), ASYNC_EINVAL);
    ASSERT_EQ(async_sim_file_put(loop, "p", NULL, 1), ASYNC_EINVAL);
    ASSERT_EQ(async_sim_file_put(other, "p", "x", 1), ASYNC_EINVAL);
    ASSERT_EQ(async_sim_file_get(NULL, "p", buf, sizeof buf), ASYNC_EINVAL);
    ASSERT_EQ(async_sim_file_get(loop, NULL, buf, sizeof buf), ASYNC_EINVAL);
    ASSERT_EQ(async_sim_file_get(loop, "p", NULL, 4), ASYNC_EINVAL);
    ASSERT_EQ(async_sim_file_get(other, "p", buf, sizeof buf), ASYNC_EINVAL);
    async_loop_free(other);
    async_loop_free(loop);
}

/* ---- determinism: a pipeline through files, with faults ---- */

/* The writer puts record i in file "rec-i" (whole, with write_all, again until it succeeds), sleeping a
 * time of the world's choosing between records; the reader reads each record's file (again until it
 * is there and whole), and appends what it read to "all". */
enum { SFS_RECORDS = 24 };

static void sfs_record_text(char *out, size_t cap, int i) { snprintf(out, cap, "record %02d: %0*d\n", i, 8 + i % 5, i); }

ASYNC_DEF(sfs_writer, int i; async_thread_call call; char path[16], text[64]; int failures;) {
    for (f->i = 0; f->i < SFS_RECORDS; f->i++) {
        snprintf(f->path, sizeof f->path, "rec-%d", f->i);
        sfs_record_text(f->text, sizeof f->text, f->i);
        for (;;) {
            ASYNC_TRY(t) {
                AWAIT_FILE_WRITE_ALL(t, &f->call, f->path, f->text, strlen(f->text), 0644);
                break;
            }
            ASYNC_CATCH(t) {
                if (async_caught(t)->code == ASYNC_ECANCELED) ASYNC_RERAISE(t); /* a fault is tried again, a cancel is not */
                f->failures++;
            }
            ASYNC_END_TRY(t);
        }
        AWAIT_SLEEP(t, (int32_t)async_sim_random(async_task_loop(t), 20));
    }
} ASYNC_END_DEF

ASYNC_DEF(sfs_reader, int i; async_thread_call call; async_file *out; char path[16], text[64]; char *data;
          size_t len; int retries;) {
    AWAIT_FILE_OPEN(t, &f->call, &f->out, "all", "w");
    for (f->i = 0; f->i < SFS_RECORDS; f->i++) {
        snprintf(f->path, sizeof f->path, "rec-%d", f->i);
        sfs_record_text(f->text, sizeof f->text, f->i);
        for (;;) {
            f->data = NULL;
            ASYNC_TRY(t) {
                AWAIT_FILE_READ_ALL(t, &f->call, f->path, &f->data, &f->len);
            }
            ASYNC_CATCH(t) {
                if (async_caught(t)->code == ASYNC_ECANCELED) ASYNC_RERAISE(t);
                f->data = NULL; /* not there yet, or a fault */
            }
            ASYNC_END_TRY(t);
            if (f->data && strcmp(f->data, f->text) == 0) break;
            if (f->retries > 100000) ASYNC_THROW(t, ASYNC_ETIMEDOUT, "the record never came (its writer ended)");
            free(f->data); /* a record cut by a failed write: wait for the writer's next try */
            f->data = NULL;
            f->retries++;
            AWAIT_SLEEP(t, 3);
        }
        async_sim_note(async_task_loop(t), f->data, f->len);
        free(f->data);
        f->data = NULL;
        for (;;) { /* a failed write of the record may have left part of it: this pipeline keeps going */
            ASYNC_TRY(t) {
                AWAIT_FILE_WRITE(t, &f->call, f->out, f->text, strlen(f->text));
                break;
            }
            ASYNC_CATCH(t) {
                if (async_caught(t)->code == ASYNC_ECANCELED) ASYNC_RERAISE(t);
                f->retries++;
            }
            ASYNC_END_TRY(t);
        }
    }
    AWAIT_FILE_CLOSE(t, &f->call, f->out);
} ASYNC_END_DEF

ASYNC_DEF(sfs_pipeline, sfs_writer_frame w; sfs_reader_frame r; async_group all;) {
    AWAIT_GATHER(t, &f->all, ASYNC_CALL(sfs_writer, &f->w), ASYNC_CALL(sfs_reader, &f->r));
} ASYNC_END_DEF

/* Runs the pipeline on a world of seed with faults; its hash, and how often a fault was met. */
static uint64_t sfs_pipeline_go(uint64_t seed, int *faults_met, async_ms *took) {
    async_loop *loop = sfs_loop(seed, 30, 15, 5);
    static sfs_pipeline_frame m;
    uint64_t hash;
    ASSERT_EQ(async_run(loop, ASYNC_CALL(sfs_pipeline, &m)), 0);
    *faults_met = m.w.failures + m.r.retries;
    *took = async_loop_now(loop);
    hash = async_sim_hash(loop);
    async_loop_free(loop);
    return hash;
}

TEST(sim_fs_pipeline_with_faults_has_the_hash_of_its_seed) {
    uint64_t a, b, c;
    int fa, fb, fc;
    async_ms ta, tb, tc;
    a = sfs_pipeline_go(21, &fa, &ta);
    b = sfs_pipeline_go(21, &fb, &tb);
    c = sfs_pipeline_go(22, &fc, &tc);
    ASSERT(a == b);
    ASSERT_EQ(fa, fb);
    ASSERT_EQ(ta, tb);
    ASSERT(a != c);
    ASSERT(fa > 0 && fc > 0); /* the faults were met, and the records still all came through */
}
