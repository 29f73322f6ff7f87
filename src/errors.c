/* The one translation of errno values into the library's codes, for every file of the runtime (sockets,
 * files, name lookups, the thread pool's callers).
 *
 * By name, not by number: the library's codes are Linux's numbers negated, another OS's errno may not be.
 * Every errno the library has a code of its own for maps to it; a few without one map to the nearest
 * (the system's file table full is the process's, a socket's buffers are memory, a quota is a full
 * disk); anything else is a generic ASYNC_EIO. */
#define _POSIX_C_SOURCE 200809L
#include "internal.h"

#include <errno.h>

static const struct {
    int err, code;
} errno_codes[] = {
    {EPERM, ASYNC_EPERM},
    {ENOENT, ASYNC_ENOENT},
    {EIO, ASYNC_EIO},
    {ENXIO, ASYNC_ENXIO},
    {EBADF, ASYNC_EBADF},
    {EAGAIN, ASYNC_EAGAIN},
    {ENOMEM, ASYNC_ENOMEM},
    {EACCES, ASYNC_EACCES},
    {EFAULT, ASYNC_EFAULT},
    {EBUSY, ASYNC_EBUSY},
    {EEXIST, ASYNC_EEXIST},
    {ENOTDIR, ASYNC_ENOTDIR},
    {EISDIR, ASYNC_EISDIR},
    {EINVAL, ASYNC_EINVAL},
    {EMFILE, ASYNC_EMFILE},
    {EFBIG, ASYNC_EFBIG},
    {ENOSPC, ASYNC_ENOSPC},
    {EROFS, ASYNC_EROFS},
    {EPIPE, ASYNC_EPIPE},
    {ERANGE, ASYNC_ERANGE},
    {EDEADLK, ASYNC_EDEADLK},
    {ENAMETOOLONG, ASYNC_ENAMETOOLONG},
    {ELOOP, ASYNC_ELOOP},
    {ENODATA, ASYNC_ENODATA},
    {EPROTO, ASYNC_EPROTO},
    {EOVERFLOW, ASYNC_EOVERFLOW},
    {EMSGSIZE, ASYNC_EMSGSIZE},
    {ENOTSUP, ASYNC_ENOTSUP},
    {EADDRINUSE, ASYNC_EADDRINUSE},
    {ENETUNREACH, ASYNC_ENETUNREACH},
    {ECONNABORTED, ASYNC_ECONNABORTED},
    {ECONNRESET, ASYNC_ECONNRESET},
    {ENOTCONN, ASYNC_ENOTCONN},
    {ESHUTDOWN, ASYNC_ESHUTDOWN},
    {ETIMEDOUT, ASYNC_ETIMEDOUT},
    {ECONNREFUSED, ASYNC_ECONNREFUSED},
    {EHOSTUNREACH, ASYNC_EHOSTUNREACH},
    {EINPROGRESS, ASYNC_EINPROGRESS},
    {ECANCELED, ASYNC_ECANCELED},
    /* no code of their own: the nearest */
    {ENFILE, ASYNC_EMFILE},
    {ENOBUFS, ASYNC_ENOMEM},
#if EWOULDBLOCK != EAGAIN
    {EWOULDBLOCK, ASYNC_EAGAIN},
#endif
#if defined(EOPNOTSUPP) && EOPNOTSUPP != ENOTSUP
    {EOPNOTSUPP, ASYNC_ENOTSUP},
#endif
#ifdef EDQUOT
    {EDQUOT, ASYNC_ENOSPC},
#endif
};

int async__errno_code(int err) {
    size_t i;
    for (i = 0; i < sizeof errno_codes / sizeof errno_codes[0]; i++)
        if (errno_codes[i].err == err) return errno_codes[i].code;
    return ASYNC_EIO;
}

int async__raise_error_code(async_task *t, int code) {
    async__raise(t, async_error_of(code)); /* every caller's code is in the table (async__errno_code's are) */
    return ASYNC__RAISE;
}
