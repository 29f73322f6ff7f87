/* The stackless pitfalls are build errors, with gcc and with clang, whatever flags the user passes, and
 * the first error names the user's file and line and the mistake. Each file in test/compile_fail/ marks
 * the line its first error must point at with the comment ERROR HERE; each is compiled with both
 * compilers under plain flags (cc -std=c99 -c) and under -O2 -Wall -Wextra, and the first line that says
 * "error" must be that file:line and contain the words given here. The control case must build. */
#include "test.h"

#include <unistd.h>

static const char *const flag_sets[] = {"", "-O2 -Wall -Wextra"};

/* Compiles `file` with compiler cc and flags; returns the exit status, the diagnostics in out. */
static int compile(const char *cc, const char *file, const char *flags, char *out, size_t outsize) {
    char cmd[1024];
    FILE *p;
    size_t n;
    snprintf(cmd, sizeof cmd, "LC_ALL=C %s -std=c99 %s -Iinclude -c %s -o /dev/null 2>&1", cc, flags, file);
    p = popen(cmd, "r");
    if (!p) test_fail(__FILE__, __LINE__, "popen failed");
    n = fread(out, 1, outsize - 1, p);
    out[n] = '\0';
    return pclose(p);
}

/* The line of file that carries the marker. */
static int marked_line(const char *file) {
    char buf[512];
    int line = 0;
    FILE *f = fopen(file, "r");
    if (!f) test_fail(__FILE__, __LINE__, "cannot read %s", file);
    while (fgets(buf, sizeof buf, f)) {
        line++;
        if (strstr(buf, "ERROR HERE")) {
            fclose(f);
            return line;
        }
    }
    fclose(f);
    test_fail(__FILE__, __LINE__, "%s marks no line with ERROR HERE", file);
    return 0;
}

static void need_compilers(void) {
    if (system("gcc --version >/dev/null 2>&1") != 0) test_skip("gcc is not installed");
    if (system("clang --version >/dev/null 2>&1") != 0) test_skip("clang is not installed");
}

/* The file must fail with both compilers and every flag set, its first error at the marked line and
 * containing gcc_words or clang_words. */
static void expect_rejected(const char *name, const char *gcc_words, const char *clang_words) {
    static const char *const compilers[] = {"gcc", "clang"};
    char file[256], where[300], out[16384];
    size_t c, i;
    need_compilers();
    snprintf(file, sizeof file, "test/compile_fail/%s", name);
    snprintf(where, sizeof where, "%s:%d:", file, marked_line(file));
    for (c = 0; c < 2; c++)
        for (i = 0; i < sizeof flag_sets / sizeof flag_sets[0]; i++) {
            const char *words = c == 0 ? gcc_words : clang_words, *first;
            char *end;
            if (compile(compilers[c], file, flag_sets[i], out, sizeof out) == 0)
                test_fail(__FILE__, __LINE__, "%s compiled with %s %s but must not", file, compilers[c],
                          flag_sets[i]);
            first = strstr(out, "error");
            if (!first) test_fail(__FILE__, __LINE__, "%s: no error in:\n%s", file, out);
            while (first > out && first[-1] != '\n') first--; /* the start of that line */
            end = strchr(first, '\n');
            if (end) *end = '\0';
            if (strncmp(first, where, strlen(where)) != 0 || !strstr(first, words))
                test_fail(__FILE__, __LINE__, "%s with %s %s: the first error must be at %s and say \"%s\":\n%s",
                          file, compilers[c], flag_sets[i], where, words, first);
        }
}

TEST(compile_fail_local_initialised_before_await) {
    expect_rejected("local_initialised.c", "'count' may be used uninitialized",
                    "variable 'count' is uninitialized when used here");
}

TEST(compile_fail_local_assigned_before_await_in_the_three_piece_form) {
    expect_rejected("local_assigned.c", "'count' may be used uninitialized",
                    "variable 'count' is uninitialized when used here");
}

TEST(compile_fail_two_awaits_on_one_line) {
    expect_rejected("two_awaits_one_line.c", "ASYNC_ERROR_two_AWAITs_on_line_5", "ASYNC_ERROR_two_AWAITs_on_line_5");
}

TEST(compile_fail_try_not_closed_by_its_end) {
    expect_rejected("try_not_closed.c", "ASYNC_ERROR_TRY_or_WITH_block_not_closed_by_its_END",
                    "ASYNC_ERROR_TRY_or_WITH_block_not_closed_by_its_END");
}

TEST(compile_fail_finally_without_a_try) {
    expect_rejected("finally_without_try.c", "ASYNC_ERROR_CATCH_FINALLY_or_END_without_its_TRY_or_WITH",
                    "ASYNC_ERROR_CATCH_FINALLY_or_END_without_its_TRY_or_WITH");
}

TEST(compile_fail_coroutine_not_closed_by_its_end) {
    expect_rejected("coroutine_not_closed.c", "ASYNC_ERROR_a_coroutine_above_lacks_its_ASYNC_END",
                    "ASYNC_ERROR_a_coroutine_above_lacks_its_ASYNC_END");
}

TEST(compile_fail_await_outside_a_coroutine) {
    expect_rejected("await_outside_a_coroutine.c", "ASYNC_ERROR_AWAIT_outside_a_coroutine",
                    "ASYNC_ERROR_AWAIT_outside_a_coroutine");
}

TEST(compile_fail_await_inside_a_switch_of_your_own) {
    expect_rejected("await_in_own_switch.c", "duplicate case value", "duplicate case value");
}

TEST(compile_fail_ok_state_in_the_frame) {
    static const char *const compilers[] = {"gcc", "clang"};
    char out[8192];
    size_t c, i;
    need_compilers();
    for (c = 0; c < 2; c++)
        for (i = 0; i < sizeof flag_sets / sizeof flag_sets[0]; i++)
            if (compile(compilers[c], "test/compile_fail/ok_frame_field.c", flag_sets[i], out, sizeof out) != 0)
                test_fail(__FILE__, __LINE__, "the control case must build with %s %s:\n%s", compilers[c],
                          flag_sets[i], out);
}
