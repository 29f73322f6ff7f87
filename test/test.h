/* The test harness: TEST(name) defines a test, each test file lists its tests in a table, and the runner
 * runs every test in a child process with a time limit. ASSERT_EQ prints both values and file:line. */
#ifndef TEST_H
#define TEST_H

#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "async.h"

typedef struct test_case {
    const char *name;
    void (*fn)(void);
} test_case;

#define TEST(name) static void test_##name(void)
#define TEST_ENTRY(name) {#name, test_##name},

void test_fail(const char *file, int line, const char *fmt, ...);

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

/* Runs samples/NAME (built into SAMPLES_DIR) under the virtual clock; checks its exit status, that its
 * standard output is exactly `expected`, and that it took exactly `virtual_ms` of virtual time. */
void test_run_sample(const char *name, int exit_status, const char *expected, long virtual_ms);
/* Runs samples/NAME with the virtual clock or in real time; *out and *err receive its standard output
 * and error (malloc'ed); returns its exit status (-1 if it did not exit). */
int test_capture_sample(const char *name, int virtual_clock, char **out, char **err);

#endif
