/* The test harness: TEST defines a test, ASSERT_EQ prints both values and file:line, and one runner
 * (test/runner.c) runs every test in a child process of its own, several at once.
 *
 * Adding a test = writing it, in the file of its subject, named after that file:
 *
 *     TEST(sync_lock_is_granted_in_request_order) {        in test/test_sync.c
 *         ...
 *         ASSERT_EQ(async_task_code(&w.task), 0);
 *     }
 *
 * Nothing else lists it: the build (mk/test.mk) reads the TEST lines of every test/test_*.c, in file
 * order, into the runner's list, and stops with an error on a name that does not begin with its file's
 * suite and an underscore (test/test_sync.c holds sync_* only, so `make test T=sync_` runs that file). A
 * TEST or TEST_TAGGED line starts at the left margin and names its test on that line. A new subject is a
 * new file test/test_SUBJECT.c; it includes "test.h", "util.h" if it uses the shared helpers (loops,
 * workers, the script of awaits, sockets, peers, temporary files), and no other file of the tests; each
 * file compiles alone. A helper two files need goes to util.h/util.c, never into both files.
 *
 * Tags say what a special stage does with a test, next to the test:
 *
 *     TEST_TAGGED(thread_loop_free_waits_for_calls_in_flight, TEST_THREADS | TEST_WAITS) {
 *
 * A test that cannot run somewhere (a tool, a missing program, no IPv6) calls test_skip with the reason
 * and is reported as "skip NAME: reason", never as passed.
 *
 * Every test runs in a process of its own, so its globals, environment variables, resource limits and
 * signal handlers are its own, but tests run at the same time as others: a test uses no fixed port
 * (listen on port 0), no fixed path (test_path() gives a directory of its own) and no other resource
 * that a second test could take. A test has 20 s (120 s under valgrind); the runner kills what it
 * leaves running when it ends.
 *
 *   make test [T=text] [TAG=tags] [SKIP_TAG=tags] [TEST_JOBS=n]    runner [-j n] [--tag t,..]
 *                                                                  [--skip-tag t,..] [--list] [text]
 * T=sync_ runs the tests whose names begin with sync_ (one file); a text no name begins with selects the
 * names that contain it (T=gather). */
#ifndef TEST_H
#define TEST_H

#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "async.h"

/* ---- tags: what the special stages run or leave out; the runner's names for them in quotes ---- */

enum {
    /* "threads": runs threads (the pool behind to_thread and the files, name resolution, remote calls,
     * run_threads, threads of its own, a sample that starts them). The ThreadSanitizer stage runs the
     * tests with this tag (make check-thread). */
    TEST_THREADS = 1u << 0,
    /* "waits": waits, by design, for work another thread does (a pool call, a loop on a thread) and
     * polls for it without a deadline; when an injected fault keeps that work from happening, it waits
     * until its time limit. The bounded injection run leaves these out (make check-inject). */
    TEST_WAITS = 1u << 1,
    /* "slow": soak-sized, hundreds of thousands of tasks; under fault injection every fault point is
     * another whole run, minutes per test. The bounded injection run leaves these out. */
    TEST_SLOW = 1u << 2
};

/* The mask of a comma-separated list of tag names ("threads,waits"); 0 and *bad set to the first
 * unknown name (NULL if none) when a name is not a tag. */
unsigned test_tag_mask(const char *names, const char **bad);

/* ---- defining tests ---- */

typedef struct test_case {
    const char *name;
    void (*fn)(void);
    unsigned tags; /* TEST_* */
} test_case;

/* Defines the test `name` with `tags` (0: none). The list the build generates points at test_case_NAME. */
#define TEST_TAGGED(name, tags)                                                        \
    static void test_##name(void);                                                     \
    extern const test_case test_case_##name;                                           \
    const test_case test_case_##name = {#name, test_##name, (tags)};                   \
    static void test_##name(void)

/* Defines the test `name`, untagged. */
#define TEST(name) TEST_TAGGED(name, 0)

/* Every test, in the order of the files and of the TEST lines in them; NULL at the end (generated). */
extern const test_case *const test_list[];

/* ---- ending a test ---- */

/* Prints "    file:line: " and the message, and ends the test as failed. */
void test_fail(const char *file, int line, const char *fmt, ...);

/* Ends the test as skipped: the runner reports "skip NAME: reason". */
void test_skip(const char *fmt, ...);

/* The exit status of a skipped test's process (automake's). */
#define TEST_EXIT_SKIP 77

/* Where test_skip puts its reason: the runner points it at memory it shares with the child (NULL: the
 * reason goes to standard error). */
extern char *test_skip_reason;
extern size_t test_skip_reason_size;

#define ASSERT(cond)                                                                   \
    do {                                                                               \
        if (!(cond)) test_fail(__FILE__, __LINE__, "assertion failed: %s", #cond);      \
    } while (0)
#define ASSERT_EQ(a, b)                                                                \
    do {                                                                               \
        long long test_a_ = (long long)(a), test_b_ = (long long)(b);                  \
        if (test_a_ != test_b_)                                                        \
            test_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, test_a_, test_b_); \
    } while (0)
#define ASSERT_STR_EQ(a, b)                                                            \
    do {                                                                               \
        const char *test_a_ = (a), *test_b_ = (b);                                     \
        if (!test_a_ || !test_b_ || strcmp(test_a_, test_b_) != 0)                     \
            test_fail(__FILE__, __LINE__, "%s == %s:\n--- got:\n%s\n--- expected:\n%s", #a, #b, \
                      test_a_ ? test_a_ : "(null)", test_b_ ? test_b_ : "(null)");     \
    } while (0)

#endif
