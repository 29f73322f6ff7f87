/* One runner for every test: `runner [substring]` runs the tests whose names contain the substring,
 * each in its own child process with a 20 s limit, and ends with the line "N passed, N failed". */
#include "test.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_core.c"
#include "test_samples.c"
#include "test_compile_fail.c"
#include "test_ev.c"

static const test_case *const suites[] = {core_tests, samples_tests, compile_fail_tests, ev_tests};

void test_fail(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "    %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    exit(1);
}

/* Reads all of fd into a malloc'ed string. */
static char *read_all(int fd) {
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    ssize_t n;
    if (!buf) return NULL;
    while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
        len += (size_t)n;
        if (cap - len < 2) {
            char *p = realloc(buf, cap * 2);
            if (!p) break;
            buf = p;
            cap *= 2;
        }
    }
    buf[len] = '\0';
    return buf;
}

void test_run_sample(const char *name, int exit_status, const char *expected, long virtual_ms) {
    char path[512], *out, *err;
    const char *vt;
    int outp[2], errp[2], status;
    pid_t pid;
    snprintf(path, sizeof path, "%s/%s", SAMPLES_DIR, name);
    if (access(path, X_OK) != 0) test_fail(__FILE__, __LINE__, "sample %s is not built", path);
    if (pipe(outp) || pipe(errp)) test_fail(__FILE__, __LINE__, "pipe failed");
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        dup2(outp[1], 1);
        dup2(errp[1], 2);
        close(outp[0]);
        close(errp[0]);
        setenv("ASYNC_CLOCK", "virtual", 1);
        execl(path, path, (char *)NULL);
        _exit(127);
    }
    close(outp[1]);
    close(errp[1]);
    out = read_all(outp[0]); /* the sample's output is small: one pipe drained after the other is fine */
    err = read_all(errp[0]);
    close(outp[0]);
    close(errp[0]);
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != exit_status)
        test_fail(__FILE__, __LINE__, "%s exited with status %d, expected %d; stderr:\n%s", name,
                  WIFEXITED(status) ? WEXITSTATUS(status) : -1, exit_status, err);
    ASSERT_STR_EQ(out, expected);
    vt = strstr(err, "async: virtual time ");
    if (!vt) test_fail(__FILE__, __LINE__, "%s printed no virtual time; stderr:\n%s", name, err);
    ASSERT_EQ(strtol(vt + strlen("async: virtual time "), NULL, 10), virtual_ms);
    free(out);
    free(err);
}

static int run_one(const test_case *tc) {
    int status;
    pid_t pid;
    fflush(NULL);
    pid = fork();
    if (pid < 0) return 0;
    if (pid == 0) {
        alarm(getenv("ASYNC_TEST_VALGRIND") ? 120 : 20);
        tc->fn();
        fflush(NULL);
        exit(0);
    }
    if (waitpid(pid, &status, 0) < 0) return 0;
    if (WIFSIGNALED(status)) fprintf(stderr, "    killed by signal %d%s\n", WTERMSIG(status),
                                     WTERMSIG(status) == SIGALRM ? " (time limit)" : "");
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int main(int argc, char **argv) {
    const char *filter = argc > 1 ? argv[1] : NULL;
    unsigned passed = 0, failed = 0;
    size_t s;
    const test_case *tc;
    for (s = 0; s < sizeof suites / sizeof suites[0]; s++) {
        for (tc = suites[s]; tc->name; tc++) {
            if (filter && !strstr(tc->name, filter)) continue;
            if (run_one(tc)) {
                passed++;
                printf("ok   %s\n", tc->name);
            } else {
                failed++;
                printf("FAIL %s\n", tc->name);
            }
            fflush(stdout);
        }
    }
    printf("%u passed, %u failed\n", passed, failed);
    return failed ? 1 : 0;
}
