/* The backend seam of the hosted runtime: the one errno translation (src/errors.c). */
#include <errno.h>

/* The runtime's errno translation (src/errors.c). */
int async__errno_code(int err);

/* ---- one errno translation: every errno both earlier tables knew, by name ---- */

TEST(backend_errno_translation_is_one_table_for_files_and_sockets) {
    /* what the files' table had */
    ASSERT_EQ(async__errno_code(ENOENT), ASYNC_ENOENT);
    ASSERT_EQ(async__errno_code(EACCES), ASYNC_EACCES);
    ASSERT_EQ(async__errno_code(EPERM), ASYNC_EPERM);
    ASSERT_EQ(async__errno_code(EEXIST), ASYNC_EEXIST);
    ASSERT_EQ(async__errno_code(EISDIR), ASYNC_EISDIR);
    ASSERT_EQ(async__errno_code(ENOTDIR), ASYNC_ENOTDIR);
    ASSERT_EQ(async__errno_code(ENFILE), ASYNC_EMFILE);
    ASSERT_EQ(async__errno_code(ENOSPC), ASYNC_ENOSPC);
#ifdef EDQUOT
    ASSERT_EQ(async__errno_code(EDQUOT), ASYNC_ENOSPC); /* a quota is a full disk */
#endif
    ASSERT_EQ(async__errno_code(EFBIG), ASYNC_EFBIG);
    ASSERT_EQ(async__errno_code(EROFS), ASYNC_EROFS);
    ASSERT_EQ(async__errno_code(ELOOP), ASYNC_ELOOP);
    ASSERT_EQ(async__errno_code(ENAMETOOLONG), ASYNC_ENAMETOOLONG);
    ASSERT_EQ(async__errno_code(EOVERFLOW), ASYNC_EOVERFLOW);
    ASSERT_EQ(async__errno_code(EBUSY), ASYNC_EBUSY);
    ASSERT_EQ(async__errno_code(ENXIO), ASYNC_ENXIO);
    ASSERT_EQ(async__errno_code(EIO), ASYNC_EIO);
    ASSERT_EQ(async__errno_code(EBADF), ASYNC_EBADF);
    ASSERT_EQ(async__errno_code(EINVAL), ASYNC_EINVAL);
    ASSERT_EQ(async__errno_code(ENOMEM), ASYNC_ENOMEM);
    /* what the sockets' rules gave: every code the library has, and the nearest for two */
    ASSERT_EQ(async__errno_code(EAGAIN), ASYNC_EAGAIN);
    ASSERT_EQ(async__errno_code(EWOULDBLOCK), ASYNC_EAGAIN);
    ASSERT_EQ(async__errno_code(ENOBUFS), ASYNC_ENOMEM);
    ASSERT_EQ(async__errno_code(EPIPE), ASYNC_EPIPE);
    ASSERT_EQ(async__errno_code(ECONNRESET), ASYNC_ECONNRESET);
    ASSERT_EQ(async__errno_code(ECONNABORTED), ASYNC_ECONNABORTED);
    ASSERT_EQ(async__errno_code(ECONNREFUSED), ASYNC_ECONNREFUSED);
    ASSERT_EQ(async__errno_code(ENOTCONN), ASYNC_ENOTCONN);
    ASSERT_EQ(async__errno_code(EADDRINUSE), ASYNC_EADDRINUSE);
    ASSERT_EQ(async__errno_code(ENETUNREACH), ASYNC_ENETUNREACH);
    ASSERT_EQ(async__errno_code(EHOSTUNREACH), ASYNC_EHOSTUNREACH);
    ASSERT_EQ(async__errno_code(ETIMEDOUT), ASYNC_ETIMEDOUT);
    ASSERT_EQ(async__errno_code(EMSGSIZE), ASYNC_EMSGSIZE);
    ASSERT_EQ(async__errno_code(EPROTO), ASYNC_EPROTO);
    ASSERT_EQ(async__errno_code(ENOTSUP), ASYNC_ENOTSUP);
    ASSERT_EQ(async__errno_code(EOPNOTSUPP), ASYNC_ENOTSUP);
    ASSERT_EQ(async__errno_code(ESHUTDOWN), ASYNC_ESHUTDOWN);
    ASSERT_EQ(async__errno_code(ECANCELED), ASYNC_ECANCELED);
    ASSERT_EQ(async__errno_code(ERANGE), ASYNC_ERANGE);
    /* neither had these: a generic I/O error */
    ASSERT_EQ(async__errno_code(ENOTSOCK), ASYNC_EIO);
    ASSERT_EQ(async__errno_code(EDOM), ASYNC_EIO);
    ASSERT_EQ(async__errno_code(0), ASYNC_EIO);
}

static const test_case backend_tests[] = {
    TEST_ENTRY(backend_errno_translation_is_one_table_for_files_and_sockets)
    {NULL, NULL}
};
