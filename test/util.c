/* The harness's own functions (test.h) and the helpers the test files share (util.h). */
#include "util.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ================================ the harness (test.h) ================================ */

static const char *test_stderr_restore(void);

void test_fail(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    /* a failure while the test holds stderr shows what it held, then the failure, where the runner reads */
    const char *held = test_stderr_restore();
    if (held && *held) fprintf(stderr, "    (the test's captured stderr:)\n%s%s", held, held[strlen(held) - 1] == '\n' ? "" : "\n");
    fprintf(stderr, "    %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    exit(1);
}

char *test_skip_reason;
size_t test_skip_reason_size;

void test_skip(const char *fmt, ...) {
    char reason[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    if (test_skip_reason && test_skip_reason_size)
        snprintf(test_skip_reason, test_skip_reason_size, "%s", reason);
    else
        fprintf(stderr, "    skipped: %s\n", reason);
    fflush(NULL);
    exit(TEST_EXIT_SKIP);
}

static const struct {
    const char *name;
    unsigned tag;
} tag_names[] = {{"threads", TEST_THREADS}, {"waits", TEST_WAITS}, {"slow", TEST_SLOW}};

unsigned test_tag_mask(const char *names, const char **bad) {
    unsigned mask = 0;
    const char *p = names;
    *bad = NULL;
    while (p && *p) {
        size_t n = strcspn(p, ","), i;
        for (i = 0; i < sizeof tag_names / sizeof tag_names[0]; i++)
            if (strlen(tag_names[i].name) == n && strncmp(tag_names[i].name, p, n) == 0) break;
        if (i == sizeof tag_names / sizeof tag_names[0]) {
            *bad = p;
            return 0;
        }
        mask |= tag_names[i].tag;
        p += n;
        if (*p) p++;
    }
    return mask;
}

/* ================================ time, tools, processes ================================ */

double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void sleep_ms(long ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0) {}
}

uint32_t test_rand(uint32_t *seed) {
    *seed = *seed * 1103515245u + 12345u;
    return *seed >> 8;
}

bool test_under_valgrind(void) { return getenv("ASYNC_TEST_VALGRIND") != NULL; }

bool test_under_asan(void) {
#if defined(__SANITIZE_ADDRESS__)
    return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    return true;
#endif
#endif
    return false;
}

bool test_under_tsan(void) {
#if defined(__SANITIZE_THREAD__)
    return true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
    return true;
#endif
#endif
    return false;
}

/* In a sanitizer build, the runtime's; absent otherwise. */
extern void __sanitizer_set_report_fd(void *fd) __attribute__((weak));

void test_sanitizer_reports_to_stderr(void) {
    /* a copy of the stderr of now: a report made while a test holds stderr (test_capture_stderr) still
     * reaches the runner, instead of the file the test would read and drop */
    if (__sanitizer_set_report_fd) {
        int fd = dup(2);
        if (fd >= 0) __sanitizer_set_report_fd((void *)(intptr_t)fd);
    }
}

void test_default_signals(void) {
    /* a shell that starts a command in the background without job control has it ignore SIGINT and
     * SIGQUIT, and a parent may have set its own; the tests of signals and Ctrl-C expect the defaults */
    static const int sigs[] = {SIGINT, SIGQUIT, SIGTERM, SIGHUP, SIGCHLD, SIGUSR1, SIGUSR2};
    sigset_t none;
    size_t i;
    for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++) signal(sigs[i], SIG_DFL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

void test_need(const char *prog) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", prog);
    if (system(cmd) != 0)
        test_skip("%s is not installed (Debian: %s)", prog, strcmp(prog, "nc") == 0 ? "netcat-openbsd" : prog);
}

void test_server_start(test_server *s, const char *cmd) {
    char line[256];
    size_t len = 0;
    int out[2];
    double end = now_s() + 10;
    const char *colon;
    if (pipe(out)) test_fail(__FILE__, __LINE__, "pipe failed");
    fflush(NULL);
    s->pid = fork();
    if (s->pid < 0) test_fail(__FILE__, __LINE__, "fork failed");
    if (s->pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a server never outlives its test, even one that failed part-way */
        dup2(out[1], 1);
        close(out[0]);
        close(out[1]);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    setpgid(s->pid, s->pid);
    close(out[1]);
    s->out = out[0];
    while (len < sizeof line - 1 && now_s() < end) {
        struct pollfd p;
        ssize_t n;
        p.fd = s->out;
        p.events = POLLIN;
        if (poll(&p, 1, 100) <= 0) continue;
        n = read(s->out, line + len, 1);
        if (n <= 0 || line[len] == '\n') break;
        len++;
    }
    line[len] = '\0';
    colon = strrchr(line, ':');
    s->port = colon ? atoi(colon + 1) : 0;
    if (s->port <= 0) {
        test_server_stop(s);
        test_fail(__FILE__, __LINE__, "%s printed no port: \"%s\"", cmd, line);
    }
}

void test_server_stop(test_server *s) {
    if (s->pid <= 0) return;
    kill(-s->pid, SIGTERM);
    waitpid(s->pid, NULL, 0);
    close(s->out);
    s->pid = 0;
}

/* ================================ files and captured output ================================ */

static char test_dir_path[64];
static pid_t test_dir_owner;

static void remove_test_dir(void) {
    if (getpid() == test_dir_owner) test_rmdir(); /* not in a child forked by the test */
}

const char *test_dir(void) {
    static int registered;
    if (!test_dir_path[0]) {
        strcpy(test_dir_path, "/tmp/async-test-XXXXXX");
        if (!mkdtemp(test_dir_path)) test_fail(__FILE__, __LINE__, "mkdtemp failed: %s", strerror(errno));
        test_dir_owner = getpid();
        if (!registered++) atexit(remove_test_dir);
    }
    return test_dir_path;
}

const char *test_path(const char *name) {
    static char paths[16][128];
    static unsigned next;
    char *p = paths[next++ % 16];
    snprintf(p, 128, "%s/%s", test_dir(), name);
    return p;
}

/* Removes what the test made there (files, empty directories, links), then the directory. */
void test_rmdir(void) {
    DIR *d;
    struct dirent *e;
    if (!test_dir_path[0]) return;
    d = opendir(test_dir_path);
    while (d && (e = readdir(d)) != NULL) {
        char p[512];
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(p, sizeof p, "%s/%s", test_dir_path, e->d_name);
        if (unlink(p) != 0) rmdir(p);
    }
    if (d) closedir(d);
    rmdir(test_dir_path);
    test_dir_path[0] = '\0';
}

void test_write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    ASSERT(f != NULL);
    fputs(text, f);
    fclose(f);
}

char *test_read_file(const char *path) {
    static char buf[256];
    FILE *f = fopen(path, "r");
    size_t n;
    ASSERT(f != NULL);
    n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

FILE *test_capture(void) {
    FILE *f = tmpfile();
    if (!f) test_fail(__FILE__, __LINE__, "tmpfile failed");
    return f;
}

const char *test_captured(FILE *f) {
    static char buf[65536];
    size_t n;
    fflush(f);
    rewind(f);
    n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    return buf;
}

void test_capture_clear(FILE *f) {
    fflush(f);
    rewind(f);
    ASSERT_EQ(ftruncate(fileno(f), 0), 0);
}

static int saved_stderr = -1;
static FILE *stderr_file;

void test_capture_stderr(void) {
    fflush(stderr);
    stderr_file = tmpfile();
    ASSERT(stderr_file != NULL);
    saved_stderr = dup(2);
    ASSERT(saved_stderr >= 0);
    ASSERT(dup2(fileno(stderr_file), 2) == 2);
}

/* Gives stderr back and returns what was written to it meanwhile; NULL if it was not held. */
static const char *test_stderr_restore(void) {
    static char buf[8192];
    size_t n;
    if (saved_stderr < 0) return NULL;
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    saved_stderr = -1;
    rewind(stderr_file);
    n = fread(buf, 1, sizeof buf - 1, stderr_file);
    buf[n] = '\0';
    fclose(stderr_file);
    stderr_file = NULL;
    return buf;
}

const char *test_release_stderr(void) {
    const char *held = test_stderr_restore();
    if (!held) test_fail(__FILE__, __LINE__, "test_release_stderr without test_capture_stderr");
    return held;
}

void test_in_child(void (*fn)(void), int fd, char *out, size_t size, int *status) {
    size_t len = 0;
    ssize_t n;
    int p[2];
    pid_t pid;
    if (pipe(p) != 0) test_fail(__FILE__, __LINE__, "pipe failed");
    fflush(NULL);
    pid = fork();
    if (pid < 0) test_fail(__FILE__, __LINE__, "fork failed");
    if (pid == 0) {
        close(p[0]);
        dup2(p[1], fd);
        close(p[1]);
        fn();
        fflush(NULL);
        exit(0);
    }
    close(p[1]);
    while (len < size - 1 && (n = read(p[0], out + len, size - 1 - len)) > 0) len += (size_t)n;
    out[len] = '\0';
    close(p[0]);
    if (waitpid(pid, status, 0) != pid) test_fail(__FILE__, __LINE__, "waitpid failed");
}

int test_count_fds(void) {
    int fd, n = 0;
    for (fd = 0; fd < 1024; fd++) n += fcntl(fd, F_GETFD) != -1;
    return n;
}

/* ================================ the portable core ================================ */

char trace[4096];

void trace_log(const char *fmt, ...) {
    va_list ap;
    size_t len = strlen(trace);
    va_start(ap, fmt);
    vsnprintf(trace + len, sizeof trace - len, fmt, ap);
    va_end(ap);
}

long loop_allocs, alloc_calls, alloc_fail_at, alloc_left = -1;
int alloc_fail_all;

void *counted_realloc(void *p, size_t n) {
    if (n == 0) {
        if (p) loop_allocs--;
        free(p);
        return NULL;
    }
    alloc_calls++;
    if (alloc_fail_all || alloc_calls == alloc_fail_at || alloc_left == 0) return NULL;
    if (alloc_left > 0) alloc_left--;
    if (!p) loop_allocs++;
    return realloc(p, n);
}

void *counted_loop_realloc(void *ctx, void *p, size_t n) {
    (void)ctx;
    return counted_realloc(p, n);
}

static async_loop loop_storage;

async_loop *the_loop(void) { return &loop_storage; }

async_loop *new_loop(void) {
    async_loop_init(&loop_storage);
    async_loop_set_allocator(&loop_storage, counted_loop_realloc, NULL);
    loop_allocs = alloc_calls = alloc_fail_at = 0;
    alloc_left = -1;
    alloc_fail_all = 0;
    trace[0] = '\0';
    return &loop_storage;
}

void drain(async_loop *loop) {
    int32_t d;
    while ((d = async_poll(loop)) >= 0) loop->now += (async_ms)d;
}

void run_until(async_loop *loop, async_ms until) {
    int32_t d;
    while ((d = async_poll(loop)) >= 0 && (int32_t)(loop->now + (async_ms)d - until) <= 0) {
        if (d == 0 && !async_loop_has_ready(loop)) break;
        loop->now += (async_ms)d;
    }
    loop->now = until;
    async_poll(loop);
}

async_status step_by_hand(async_task *t) {
    async_status st;
    do st = t->fn(t);
    while (st == ASYNC__AGAIN);
    return st;
}

const async_error err_a = {ASYNC_EUSER + 1, "first failure"};
const async_error err_b = {ASYNC_EUSER + 2, "second failure"};
const async_error err_c = {ASYNC_EUSER + 3, "cleanup failure"};

/* ---- the logging worker and the awaiter ---- */

const async_error worker_error = {ASYNC_EUSER + 1, "worker failed"};

ASYNC_BODY(worker) {
    LOG("%s+ ", f->name);
    ASYNC_TRY(t) {
        AWAIT_SLEEP(t, f->ms);
    }
    ASYNC_CATCH(t) {
        LOG("%s!%d ", f->name, async_caught(t)->code);
        if (!f->swallow_cancel) ASYNC_RERAISE(t);
    }
    ASYNC_END_TRY(t);
    if (f->fail) ASYNC_THROW_ERROR(t, &worker_error);
    LOG("%s- ", f->name);
    ASYNC_RETURN(t, f->value);
} ASYNC_END_DEF

async_task *worker(worker_frame *f, const char *name, int ms, int value) {
    return ASYNC_CALL(worker, f, name, ms, value);
}

ASYNC_BODY(awaiter) {
    ASYNC_TRY(t) {
        if (f->fut) {
            AWAIT_FUTURE(t, f->fut);
            f->got = (long)async_future_value(f->fut);
        } else {
            AWAIT(t, f->target);
            f->got = (long)async_task_value(f->target);
        }
        LOG("%s=%ld ", f->name, f->got);
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
        LOG("%s!%d ", f->name, f->code);
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

async_task *awaiter(awaiter_frame *f, const char *name, async_task *target) {
    return ASYNC_CALL(awaiter, f, name, target);
}

async_task *fwait(awaiter_frame *f, const char *name, async_future *fut) {
    return ASYNC_CALL(awaiter, f, name, .fut = fut);
}

/* ---- the quiet worker and the producer ---- */

ASYNC_BODY(sleeper) {
    ASYNC_TRY(t) {
        if (f->gate)
            AWAIT_EVENT(t, f->gate);
        else
            AWAIT_SLEEP(t, f->ms);
    }
    ASYNC_CATCH(t) {
        if (async_caught(t)->code != ASYNC_ECANCELED) ASYNC_RERAISE(t);
        f->cancelled = 1;
        if (f->fail_on_cancel) ASYNC_THROW_ERROR(t, f->fail_on_cancel);
        if (!f->swallow_cancel) ASYNC_RERAISE(t);
    }
    ASYNC_END_TRY(t);
    if (f->cancelled && f->after_cancel_ms) AWAIT_SLEEP(t, f->after_cancel_ms);
    if (f->fail) ASYNC_THROW_ERROR(t, f->fail);
    ASYNC_RETURN(t, f->value);
} ASYNC_END_DEF

async_task *sleeper(sleeper_frame *f, int ms, intptr_t value) {
    return ASYNC_CALL(sleeper, f, ms, value);
}

ASYNC_BODY(producer) {
    ASYNC_TRY(t) {
        for (f->i = 1; f->i <= f->n; f->i++) {
            if (f->ms) AWAIT_SLEEP(t, f->ms);
            AWAIT_YIELD_VALUE(t, f->i);
        }
    }
    ASYNC_FINALLY(t) {
        f->cleaned++;
        if (f->cleanup_ms) AWAIT_SLEEP(t, f->cleanup_ms);
        if (f->yield_in_cleanup) {
            ASYNC_TRY(t) {
                AWAIT_YIELD_VALUE(t, -1);
            }
            ASYNC_CATCH(t) {
                f->cleanup_code = async_caught(t)->code;
                ASYNC_RERAISE(t);
            }
            ASYNC_END_TRY(t);
        }
        if (f->cleanup_error) ASYNC_THROW_ERROR(t, f->cleanup_error);
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

async_task *producer(producer_frame *f, int n, int ms) {
    return ASYNC_CALL(producer, f, n, ms);
}

/* ---- the script ---- */

#define SCRIPT_S (f->s[f->i])

enum { SCRIPT_FIRST_LINE = __LINE__ };
static async_status script_run(async_task *t) {
    script_frame *f = (script_frame *)t;
    ASYNC_BEGIN(t);
    for (f->i = 0; f->i < f->nsteps; f->i++) {
        if (SCRIPT_S.self_cancel) async_cancel(t);
        ASYNC_TRY(t) {
            if (SCRIPT_S.op == OP_SLEEP)
                AWAIT_SLEEP(t, SCRIPT_S.ms);
            else if (SCRIPT_S.op == OP_AWAIT)
                AWAIT(t, (async_task *)SCRIPT_S.a);
            else if (SCRIPT_S.op == OP_FUTURE)
                AWAIT_FUTURE(t, (async_future *)SCRIPT_S.a);
            else if (SCRIPT_S.op == OP_GATHER)
                AWAIT_GATHER(t, (async_group *)SCRIPT_S.a, SCRIPT_S.c0, SCRIPT_S.c1);
            else if (SCRIPT_S.op == OP_GATHER_ARRAY)
                AWAIT_GATHER_ARRAY(t, (async_group *)SCRIPT_S.a, SCRIPT_S.c0, SCRIPT_S.n, SCRIPT_S.stride);
            else if (SCRIPT_S.op == OP_GROUP)
                AWAIT_GROUP(t, (async_group *)SCRIPT_S.a);
            else if (SCRIPT_S.op == OP_SPAWN)
                ASYNC_SPAWN(t, (async_group *)SCRIPT_S.a, SCRIPT_S.c0);
            else if (SCRIPT_S.op == OP_TIMEOUT)
                AWAIT_TIMEOUT(t, (async_timeout *)SCRIPT_S.a, SCRIPT_S.ms, SCRIPT_S.c0);
            else if (SCRIPT_S.op == OP_SHIELD)
                AWAIT_SHIELD(t, (async_group *)SCRIPT_S.a, SCRIPT_S.c0);
            else if (SCRIPT_S.op == OP_LOCK)
                AWAIT_LOCK(t, (async_lock *)SCRIPT_S.a);
            else if (SCRIPT_S.op == OP_UNLOCK)
                f->rc[f->i] = async_lock_release((async_lock *)SCRIPT_S.a);
            else if (SCRIPT_S.op == OP_EVENT)
                AWAIT_EVENT(t, (async_event *)SCRIPT_S.a);
            else if (SCRIPT_S.op == OP_COND)
                AWAIT_CONDITION(t, (async_condition *)SCRIPT_S.a);
            else if (SCRIPT_S.op == OP_SEM)
                AWAIT_SEMAPHORE(t, (async_semaphore *)SCRIPT_S.a);
            else if (SCRIPT_S.op == OP_QPUT)
                AWAIT_QUEUE_PUT(t, (async_queue *)SCRIPT_S.a, SCRIPT_S.item);
            else if (SCRIPT_S.op == OP_QGET)
                AWAIT_QUEUE_GET(t, (async_queue *)SCRIPT_S.a, SCRIPT_S.out);
            else if (SCRIPT_S.op == OP_QJOIN)
                AWAIT_QUEUE_JOIN(t, (async_queue *)SCRIPT_S.a);
            else if (SCRIPT_S.op == OP_NEXT)
                AWAIT_NEXT(t, (async_gen *)SCRIPT_S.a, SCRIPT_S.c0, SCRIPT_S.out);
            else if (SCRIPT_S.op == OP_GEN_THROW)
                AWAIT_GEN_THROW(t, (async_gen *)SCRIPT_S.a, SCRIPT_S.err, SCRIPT_S.out);
            else if (SCRIPT_S.op == OP_GEN_CLOSE)
                AWAIT_GEN_CLOSE(t, (async_gen *)SCRIPT_S.a);
            else if (SCRIPT_S.op == OP_YIELD_VALUE)
                AWAIT_YIELD_VALUE(t, SCRIPT_S.item);
            else if (SCRIPT_S.op == OP_THROW_NULL)
                ASYNC_THROW_ERROR(t, (const async_error *)NULL);
            else if (SCRIPT_S.op == OP_GROUP_SPAWN_API)
                f->rc[f->i] = async_group_spawn(t, (async_group *)SCRIPT_S.a, SCRIPT_S.c0);
            else if (SCRIPT_S.op == OP_NOTIFY)
                f->rc[f->i] = async_condition_notify((async_condition *)SCRIPT_S.a, (int)SCRIPT_S.n);
            f->reached[f->i] = 1;
        }
        ASYNC_CATCH(t) {
            f->code[f->i] = async_caught(t)->code;
        }
        ASYNC_END_TRY(t);
        f->at[f->i] = async_loop_now(async_task_loop(t));
        if (SCRIPT_S.op == OP_COND && SCRIPT_S.a) {
            f->held[f->i] = async_condition_lock((async_condition *)SCRIPT_S.a)->holder == t;
            if (f->held[f->i]) async_lock_release(async_condition_lock((async_condition *)SCRIPT_S.a));
        }
    }
    ASYNC_END(t);
}
enum { SCRIPT_LAST_LINE = __LINE__ };

const unsigned script_first_line = SCRIPT_FIRST_LINE, script_last_line = SCRIPT_LAST_LINE;

async_task *script_init(script_frame *f) {
    ASYNC_FRAME_INIT(f, script_run);
    return &f->task;
}

script_step *script_add(script_frame *f, int op, void *a) {
    script_step *s = &f->s[f->nsteps++];
    s->op = op;
    s->a = a;
    return s;
}

script_step *script_one(script_frame *f, int op, void *a) {
    script_init(f);
    return script_add(f, op, a);
}

/* ================================ hosted loops and the thread pool ================================ */

async_loop *new_hosted_loop(void) {
    async_loop *loop = async_loop_new(ASYNC_LOOP_VIRTUAL_CLOCK);
    ASSERT(loop != NULL);
    return loop;
}

static int run_on(async_task *main, int flags) {
    async_loop *loop = async_loop_new(flags);
    int rc;
    ASSERT(loop != NULL);
    rc = async_run(loop, main);
    async_loop_free(loop);
    return rc;
}

int run_real(async_task *main) { return run_on(main, 0); }
int run_virtual(async_task *main) { return run_on(main, ASYNC_LOOP_VIRTUAL_CLOCK); }

int pool_runs;

int pool_count(void *arg, intptr_t *result) {
    __atomic_add_fetch(&pool_runs, 1, __ATOMIC_SEQ_CST);
    *result = (intptr_t)arg;
    return 0;
}

static async_status pool_op_run(async_task *t) {
    pool_op_frame *f = (pool_op_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_TRY(t) {
        if (f->cancel_first) async_cancel(t);
        if (f->op == POOL_TO_THREAD) {
            AWAIT_TO_THREAD(t, f->callp, f->fn, (void *)f->arg, f->dtor);
        } else if (f->op == POOL_READ_ALL) {
            AWAIT_FILE_READ_ALL(t, f->callp, f->path, f->allp, f->all_lenp);
        } else if (f->op == POOL_WRITE_ALL) {
            AWAIT_FILE_WRITE_ALL(t, f->callp, f->path, f->data, f->len, f->mode);
        } else if (f->op == POOL_OPEN) {
            AWAIT_FILE_OPEN(t, f->callp, f->filep, f->path, f->how);
        } else if (f->op == POOL_READ) {
            AWAIT_FILE_READ(t, f->callp, f->file, f->buf, f->cap, f->nreadp);
        } else if (f->op == POOL_WRITE) {
            AWAIT_FILE_WRITE(t, f->callp, f->file, f->data, f->len);
        } else if (f->op == POOL_CLOSE) {
            AWAIT_FILE_CLOSE(t, f->callp, f->file);
        }
        f->reached = true;
        f->result = async_thread_call_result(f->callp);
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
    ASYNC_END(t);
}

pool_op_frame *pool_op(pool_op_frame *f, int op) {
    ASSERT(ASYNC_FRAME_INIT(f, pool_op_run));
    f->op = op;
    f->callp = &f->call;
    f->filep = &f->file;
    f->allp = &f->all;
    f->all_lenp = &f->all_len;
    f->nreadp = &f->nread;
    f->mode = 0644;
    f->how = "r";
    f->fn = pool_count;
    return f;
}

int pool_go(async_loop *loop, pool_op_frame *f) {
    ASSERT_EQ(async_run(loop, &f->task), 0);
    return f->code;
}

async_file *pool_open(async_loop *loop, const char *path, const char *how) {
    static pool_op_frame f;
    pool_op(&f, POOL_OPEN);
    f.path = path;
    f.how = how;
    ASSERT_EQ(pool_go(loop, &f), 0);
    ASSERT(f.file != NULL);
    return f.file;
}

int pool_close(async_loop *loop, async_file *file) {
    static pool_op_frame f;
    pool_op(&f, POOL_CLOSE);
    f.file = file;
    return pool_go(loop, &f);
}

/* ================================ sockets ================================ */

static struct sockaddr_in loopback(int port) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

/* A TCP socket bound to a free port of 127.0.0.1; *port gets the port. */
static int bound_socket(int *port) {
    struct sockaddr_in a = loopback(0);
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT(fd >= 0);
    ASSERT(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    ASSERT(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    *port = ntohs(a.sin_port);
    return fd;
}

int test_listen_raw(int backlog, int *port) {
    int fd = bound_socket(port);
    ASSERT(listen(fd, backlog) == 0);
    return fd;
}

int test_refused_port(void) {
    static int port;
    if (!port) bound_socket(&port); /* its descriptor stays open until the process ends */
    return port;
}

void test_tcp_pair(int fds[2]) {
    struct sockaddr_in a;
    int port, lfd = test_listen_raw(1, &port);
    a = loopback(port);
    fds[0] = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT(fds[0] >= 0);
    ASSERT(connect(fds[0], (struct sockaddr *)&a, sizeof a) == 0);
    fds[1] = accept(lfd, NULL, NULL);
    ASSERT(fds[1] >= 0);
    close(lfd);
}

int test_connect(int port, int rcvbuf) {
    struct sockaddr_in a = loopback(port);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    if (rcvbuf) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf); /* before connect: sets the window */
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

void test_linger0(int fd) {
    struct linger l;
    l.l_onoff = 1;
    l.l_linger = 0;
    ASSERT(setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l) == 0);
}

bool net_fd_is_open(int fd) { return fcntl(fd, F_GETFD) != -1 || errno != EBADF; }

struct rlimit net_no_more_fds(void) {
    struct rlimit old, lim;
    int next = dup(0);
    ASSERT(next >= 0);
    close(next);
    ASSERT(getrlimit(RLIMIT_NOFILE, &old) == 0);
    lim = old;
    lim.rlim_cur = (rlim_t)next;
    ASSERT(setrlimit(RLIMIT_NOFILE, &lim) == 0);
    ASSERT_EQ(dup(0), -1);
    return old;
}

bool net_cap_address_space(size_t margin, struct rlimit *old) {
    struct rlimit lim;
    unsigned long pages = 0;
    FILE *f;
    if (test_under_asan() || test_under_tsan() || test_under_valgrind()) return false;
    f = fopen("/proc/self/statm", "r");
    if (!f) return false;
    if (fscanf(f, "%lu", &pages) != 1) pages = 0;
    fclose(f);
    if (!pages) return false;
    ASSERT(getrlimit(RLIMIT_AS, old) == 0);
    lim = *old;
    lim.rlim_cur = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + margin;
    return setrlimit(RLIMIT_AS, &lim) == 0;
}

/* ================================ the network layer's awaits ================================ */

ASYNC_BODY(echo) {
    for (;;) {
        AWAIT_STREAM_READ(t, f->s, f->buf, sizeof f->buf, &f->n, 2000);
        if (f->n == 0) break;
        if (f->n >= 5 && memcmp(f->buf, "RESET", 5) == 0) { /* abortive close: the client sees a reset */
            struct linger lg = {1, 0};
            setsockopt(async_stream_fd(f->s), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            break;
        }
        if (f->n >= 4 && memcmp(f->buf, "QUIT", 4) == 0) break;
        if (async_stream_write(f->s, f->buf, f->n)) ASYNC_THROW(t, ASYNC_EIO, "echo write failed");
        AWAIT_STREAM_DRAIN(t, f->s, 2000);
    }
} ASYNC_END_DEF

async_task *echo_new(void *frame, async_stream *s, void *arg) {
    (void)arg;
    return ASYNC_CALL(echo, (echo_frame *)frame, s);
}

static async_status net_op_run(async_task *t) {
    net_op_frame *f = (net_op_frame *)t;
    ASYNC_BEGIN(t);
    if (f->cancel_first) async_cancel(t);
    ASYNC_TRY(t) {
        if (f->op == NET_READ)
            AWAIT_STREAM_READ(t, f->s, f->buf, f->n, f->out, f->ms);
        else if (f->op == NET_EXACTLY)
            AWAIT_STREAM_READEXACTLY(t, f->s, f->buf, f->n, f->ms);
        else if (f->op == NET_LINE)
            AWAIT_STREAM_READLINE(t, f->s, f->line, f->out, f->limit, f->ms);
        else if (f->op == NET_FILL)
            AWAIT_STREAM_FILL(t, f->s, f->limit, f->out, f->ms);
        else if (f->op == NET_DRAIN)
            AWAIT_STREAM_DRAIN(t, f->s, f->ms);
        else if (f->op == NET_CONNECT)
            AWAIT_STREAM_CONNECT(t, f->s, f->host, f->port, f->ms);
        else if (f->op == NET_READABLE)
            AWAIT_READABLE(t, f->io, f->fd, f->ms);
        else if (f->op == NET_WRITABLE)
            AWAIT_WRITABLE(t, f->io, f->fd, f->ms);
        else
            ASYNC__AWAIT(t, async__io_start(t, f->io, f->fd, f->events, f->ms), async__io_check(t, f->io));
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
    ASYNC_END(t);
}

net_op_frame *net_op(net_op_frame *f, int op, async_stream *s) {
    ASYNC_FRAME_INIT(f, net_op_run);
    f->op = op;
    f->s = s;
    f->io = &f->own_io;
    f->buf = f->mem;
    f->n = sizeof f->mem;
    f->limit = sizeof f->mem;
    f->out = &f->got;
    f->line = &f->ln;
    f->ms = TEST_LONG_MS;
    return f;
}

net_op_frame *net_connect_op(net_op_frame *f, async_stream *s, const char *host, int port, int32_t ms) {
    net_op(f, NET_CONNECT, s);
    f->host = host;
    f->port = port;
    f->ms = ms;
    return f;
}

net_op_frame *net_wait_op(net_op_frame *f, int op, async_io *io, int fd, int32_t ms) {
    net_op(f, op, NULL);
    f->io = io;
    f->fd = fd;
    f->ms = ms;
    return f;
}

int net_do(net_op_frame *f) {
    ASSERT_EQ(run_real(&f->task), 0);
    return f->code;
}

static async_status net_duo_run(async_task *t) {
    net_duo *d = (net_duo *)t;
    ASYNC_BEGIN(t);
    ASYNC_SPAWN(t, &d->g, &d->a.task);
    if (d->with_b) ASYNC_SPAWN(t, &d->g, &d->b.task);
    AWAIT_SLEEP(t, d->pause_ms);
    if (d->between) d->between(d);
    AWAIT_GROUP(t, &d->g);
    ASYNC_END(t);
}

net_duo *net_duo_init(net_duo *d, void (*between)(net_duo *d), int32_t pause_ms) {
    ASYNC_FRAME_INIT(d, net_duo_run);
    d->between = between;
    d->pause_ms = pause_ms;
    return d;
}

void net_between_close(net_duo *d) { async_stream_close(d->s); }
void net_between_cancel_a(net_duo *d) { ASSERT(async_cancel(&d->a.task)); }
void net_between_write_fd(net_duo *d) { ASSERT_EQ(write(d->fd, "data\n", 5), 5); }
