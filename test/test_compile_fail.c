/* The classic protothread pitfalls are build errors: a local that lives across an await, and two awaits
 * on one line. Each file in test/compile_fail/ is compiled with the project's warnings; the bad ones must
 * fail with the diagnostic named here, the control case must build. */
#include "test.h"

/* Compiles `file` with `flags`; returns the exit status, the diagnostics in out. */
static int compile(const char *file, const char *flags, char *out, size_t outsize) {
    char cmd[1024];
    FILE *p;
    size_t n;
    snprintf(cmd, sizeof cmd, "%s -std=c99 %s -Wall -Wextra -Wuninitialized -Werror -Iinclude -c %s -o /dev/null 2>&1",
             COMPILE_FAIL_CC, flags, file);
    p = popen(cmd, "r");
    if (!p) test_fail(__FILE__, __LINE__, "popen failed");
    n = fread(out, 1, outsize - 1, p);
    out[n] = '\0';
    return pclose(p);
}

static int cc_is_gcc(void) {
    char out[4096];
    compile("test/compile_fail/ok_frame_field.c", "-Wjump-misses-init", out, sizeof out);
    return strstr(out, "jump-misses-init") == NULL; /* clang: unknown warning option */
}

static void expect_rejected(const char *file, const char *gcc_diag, const char *clang_diag) {
    char out[8192];
    int gcc = cc_is_gcc();
    const char *levels[] = {"-O0", "-O2"};
    size_t i;
    for (i = 0; i < 2; i++) {
        char flags[64];
        snprintf(flags, sizeof flags, "%s%s", levels[i], gcc ? " -Wjump-misses-init" : "");
        if (compile(file, flags, out, sizeof out) == 0)
            test_fail(__FILE__, __LINE__, "%s compiled with %s but must not", file, flags);
        if (!strstr(out, gcc ? gcc_diag : clang_diag))
            test_fail(__FILE__, __LINE__, "%s (%s): expected \"%s\" in:\n%s", file, flags,
                      gcc ? gcc_diag : clang_diag, out);
    }
}

TEST(compile_fail_local_initialised_before_await) {
    expect_rejected("test/compile_fail/local_initialised.c", "may be used uninitialized",
                    "is uninitialized when used here");
}

TEST(compile_fail_local_assigned_before_await) {
    expect_rejected("test/compile_fail/local_assigned.c", "may be used uninitialized",
                    "is uninitialized when used here");
}

TEST(compile_fail_two_awaits_on_one_line) {
    expect_rejected("test/compile_fail/two_awaits_one_line.c", "ASYNC_ERROR_two_AWAITs_on_line_7",
                    "ASYNC_ERROR_two_AWAITs_on_line_7");
}

TEST(compile_fail_ok_state_in_the_frame) {
    char out[8192];
    int rc = compile("test/compile_fail/ok_frame_field.c", cc_is_gcc() ? "-O2 -Wjump-misses-init" : "-O2", out,
                     sizeof out);
    if (rc != 0) test_fail(__FILE__, __LINE__, "the control case must build:\n%s", out);
}
