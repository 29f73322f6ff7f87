/* The test runner: runs the tests the build listed (test_list, in file order), each in a child process
 * of its own and its own process group, with a time limit (20 s, 120 s under valgrind: its alarm) and
 * a backstop (30 s later the parent kills it, for a child that cannot take the alarm). With -j N it
 * runs N at once; each test's output is kept until the tests before it have been printed, so the
 * output reads as a run of one test after the other. It ends with "N passed, N failed" (and ", N
 * skipped"), and exits 1 if any failed.
 *
 *   runner [-j N] [--tag t,...] [--skip-tag t,...] [--list] [text]
 *
 * text: only the tests whose names begin with it (a suite: "sync_" is test/test_sync.c), or, if no name
 * begins with it, whose names contain it ("gather"); --tag: only those with one of the tags; --skip-tag:
 * none with one of them; --list: print the names (and tags) instead of running. */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include "test.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

enum { PENDING, RUNNING, PASSED, FAILED, SKIPPED };
enum { REASON_SIZE = 256, SLOW_MS = 2000 };

typedef struct {
    const test_case *tc;
    int state;
    pid_t pid;
    int out;  /* the read end of the pipe its stdout and stderr go to; -1 once closed */
    int slot; /* its place in the shared reasons */
    double start, secs;
    bool killed; /* by the backstop */
    char *buf;   /* its output so far */
    size_t len, cap;
} run;

/* Globals, not locals of main: a test's process is a fork of the runner, and its leak checker must see
 * the runner's blocks as reachable. */
static run *runs;
static size_t nruns;
static bool *slot_busy;
static int wake[2] = {-1, -1}; /* the SIGCHLD handler writes here, so that poll returns */
static volatile sig_atomic_t stop_signal;

static void on_child(int sig) {
    int saved = errno;
    (void)sig;
    if (write(wake[1], "", 1) < 0) {} /* full: a wake-up is already pending */
    errno = saved;
}

static void on_stop(int sig) {
    stop_signal = sig;
    on_child(sig);
}

static void append(run *r, const char *p, size_t n) {
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        char *b;
        while (cap < r->len + n + 1) cap *= 2;
        b = realloc(r->buf, cap);
        if (!b) return; /* the output is lost, not the result */
        r->buf = b;
        r->cap = cap;
    }
    memcpy(r->buf + r->len, p, n);
    r->len += n;
    r->buf[r->len] = '\0';
}

static void appendf(run *r, const char *fmt, ...) {
    char line[256];
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > 0) append(r, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

/* Reads what the test has written so far (its pipe is non-blocking). */
static void pump(run *r) {
    char chunk[4096];
    ssize_t n;
    if (r->out < 0) return;
    while ((n = read(r->out, chunk, sizeof chunk)) > 0) append(r, chunk, (size_t)n);
    if (n == 0) { /* every writer is gone */
        close(r->out);
        r->out = -1;
    }
}

static void start(run *r, int slot, char *reasons, unsigned limit_s) {
    int p[2];
    size_t i;
    r->slot = slot;
    memset(reasons + (size_t)slot * REASON_SIZE, 0, REASON_SIZE);
    if (pipe(p)) {
        perror("runner: pipe");
        exit(2);
    }
    fflush(NULL);
    r->start = now_s();
    r->pid = fork();
    if (r->pid < 0) {
        perror("runner: fork");
        exit(2);
    }
    if (r->pid == 0) {
        setpgid(0, 0); /* a group of its own: what the test leaves running is ended with it */
        test_default_signals();
        close(wake[0]);
        close(wake[1]);
        for (i = 0; i < nruns; i++)
            if (runs[i].state == RUNNING && runs[i].out >= 0) close(runs[i].out);
        close(p[0]);
        dup2(p[1], 1);
        dup2(p[1], 2);
        close(p[1]);
        setvbuf(stdout, NULL, _IOLBF, 0);
        test_sanitizer_reports_to_stderr();
        test_skip_reason = reasons + (size_t)slot * REASON_SIZE;
        test_skip_reason_size = REASON_SIZE;
        alarm(limit_s);
        r->tc->fn();
        fflush(NULL);
        exit(0);
    }
    setpgid(r->pid, r->pid);
    close(p[1]);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    r->out = p[0];
    r->state = RUNNING;
}

/* The test's process has ended with `status`: its result, and the end of what it left running. */
static void finish(run *r, int status, const char *reasons) {
    const char *reason = reasons + (size_t)r->slot * REASON_SIZE;
    r->secs = now_s() - r->start;
    kill(-r->pid, SIGKILL);
    pump(r);
    if (r->out >= 0) close(r->out); /* a helper it started may still hold the pipe */
    r->out = -1;
    r->pid = 0;
    if (r->killed) {
        appendf(r, "    killed: the test outlived its time limit and its alarm\n");
        r->state = FAILED;
    } else if (WIFSIGNALED(status)) {
        appendf(r, "    killed by signal %d%s\n", WTERMSIG(status), WTERMSIG(status) == SIGALRM ? " (time limit)" : "");
        r->state = FAILED;
    } else if (WEXITSTATUS(status) == TEST_EXIT_SKIP) {
        r->state = SKIPPED;
        appendf(r, "skip %s: %s", r->tc->name, reason[0] ? reason : "(no reason given)");
    } else {
        r->state = WEXITSTATUS(status) == 0 ? PASSED : FAILED;
    }
    if (r->state != SKIPPED) appendf(r, "%s %s", r->state == PASSED ? "ok  " : "FAIL", r->tc->name);
    if (r->secs * 1000 > SLOW_MS) appendf(r, " (%.1f s)", r->secs);
    append(r, "\n", 1);
}

static bool wanted(const test_case *tc, const char *filter, bool prefix, unsigned tags, unsigned skip_tags) {
    if (filter && (prefix ? strncmp(tc->name, filter, strlen(filter)) != 0 : !strstr(tc->name, filter))) return false;
    if (tags && !(tc->tags & tags)) return false;
    return !(tc->tags & skip_tags);
}

static unsigned tags_arg(const char *list) {
    const char *bad;
    unsigned mask = test_tag_mask(list, &bad);
    if (bad) {
        fprintf(stderr, "runner: unknown tag in \"%s\" (tags: threads, waits, slow)\n", list);
        exit(2);
    }
    return mask;
}

int main(int argc, char **argv) {
    const char *filter = NULL;
    unsigned tags = 0, skip_tags = 0, limit_s = getenv("ASYNC_TEST_VALGRIND") ? 120 : 20;
    unsigned passed = 0, failed = 0, skipped = 0;
    int jobs = 1, running = 0, i, list = 0;
    bool prefix = false; /* the filter is the beginning of some names: it selects by prefix */
    size_t next = 0, printed = 0, k, n = 0;
    char *reasons;
    struct sigaction sa;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-j") == 0 && i + 1 < argc)
            jobs = atoi(argv[++i]);
        else if (strncmp(argv[i], "-j", 2) == 0 && argv[i][2])
            jobs = atoi(argv[i] + 2);
        else if (strcmp(argv[i], "--tag") == 0 && i + 1 < argc)
            tags = tags_arg(argv[++i]);
        else if (strcmp(argv[i], "--skip-tag") == 0 && i + 1 < argc)
            skip_tags = tags_arg(argv[++i]);
        else if (strcmp(argv[i], "--list") == 0)
            list = 1;
        else if (argv[i][0] == '-' || filter) {
            fprintf(stderr, "usage: %s [-j N] [--tag t,...] [--skip-tag t,...] [--list] [text]\n", argv[0]);
            return 2;
        } else
            filter = argv[i];
    }
    if (jobs < 1) jobs = 1;
    for (n = 0; test_list[n]; n++)
        if (filter && strncmp(test_list[n]->name, filter, strlen(filter)) == 0) prefix = true;
    runs = calloc(n ? n : 1, sizeof *runs);
    slot_busy = calloc((size_t)jobs, sizeof *slot_busy);
    reasons = mmap(NULL, (size_t)jobs * REASON_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (!runs || !slot_busy || reasons == MAP_FAILED) {
        fprintf(stderr, "runner: out of memory\n");
        return 2;
    }
    for (k = 0; k < n; k++) {
        if (!wanted(test_list[k], filter, prefix, tags, skip_tags)) continue;
        if (list) {
            printf("%s%s%s%s\n", test_list[k]->name, test_list[k]->tags & TEST_THREADS ? " threads" : "",
                   test_list[k]->tags & TEST_WAITS ? " waits" : "", test_list[k]->tags & TEST_SLOW ? " slow" : "");
            continue;
        }
        runs[nruns].tc = test_list[k];
        runs[nruns].out = -1;
        nruns++;
    }
    if (list) return 0;
    if (pipe(wake)) {
        perror("runner: pipe");
        return 2;
    }
    fcntl(wake[0], F_SETFL, O_NONBLOCK);
    fcntl(wake[1], F_SETFL, O_NONBLOCK);
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_child;
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, NULL);
    sa.sa_handler = on_stop;
    sa.sa_flags = 0;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);

    while (printed < nruns) {
        struct pollfd *pfd;
        size_t np = 0;
        int timeout_ms = 1000, status;
        pid_t pid;
        char drainbuf[64];
        if (stop_signal) { /* interrupted: end every test that runs, then ourselves */
            for (k = 0; k < nruns; k++)
                if (runs[k].state == RUNNING) kill(-runs[k].pid, SIGKILL);
            signal(stop_signal, SIG_DFL);
            raise(stop_signal);
            return 130;
        }
        while (running < jobs && next < nruns) {
            int slot = 0;
            while (slot_busy[slot]) slot++;
            slot_busy[slot] = true;
            start(&runs[next++], slot, reasons, limit_s);
            running++;
        }
        pfd = calloc((size_t)running + 1, sizeof *pfd);
        if (!pfd) return 2;
        pfd[np].fd = wake[0];
        pfd[np++].events = POLLIN;
        for (k = 0; k < next; k++) {
            double left;
            if (runs[k].state != RUNNING) continue;
            if (runs[k].out >= 0) {
                pfd[np].fd = runs[k].out;
                pfd[np++].events = POLLIN;
            }
            left = runs[k].start + limit_s + 30 - now_s(); /* the backstop */
            if (left <= 0 && !runs[k].killed) {
                runs[k].killed = true;
                kill(-runs[k].pid, SIGKILL);
                kill(runs[k].pid, SIGKILL);
            } else if (left > 0 && left * 1000 < timeout_ms) {
                timeout_ms = (int)(left * 1000) + 1;
            }
        }
        poll(pfd, np, timeout_ms);
        free(pfd);
        while (read(wake[0], drainbuf, sizeof drainbuf) > 0) {}
        for (k = 0; k < next; k++)
            if (runs[k].state == RUNNING) pump(&runs[k]);
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            for (k = 0; k < next; k++) {
                if (runs[k].state != RUNNING || runs[k].pid != pid) continue;
                finish(&runs[k], status, reasons);
                slot_busy[runs[k].slot] = false;
                running--;
                break;
            }
        }
        while (printed < nruns && runs[printed].state > RUNNING) {
            run *r = &runs[printed++];
            fwrite(r->buf, 1, r->len, stdout);
            fflush(stdout);
            if (r->state == PASSED) passed++;
            else if (r->state == FAILED) failed++;
            else skipped++;
            free(r->buf);
            r->buf = NULL;
        }
    }
    if (skipped)
        printf("%u passed, %u failed, %u skipped\n", passed, failed, skipped);
    else
        printf("%u passed, %u failed\n", passed, failed);
    return failed ? 1 : 0;
}
