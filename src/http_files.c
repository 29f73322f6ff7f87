/* Files answered by HTTP handlers: AWAIT_HTTP_FILE, AWAIT_HTTP_STATIC and ASYNC_HTTP_STATIC (net.h says
 * what is answered when).
 *
 * One step decides everything: the method, the path's safety, open and fstat, the validators and the
 * conditional and range headers, and the head. Opening and fstat run on the loop's thread: for local
 * files they cost microseconds, where a hop to the thread pool and back would cost more than they do.
 * The body then goes with sendfile(2) from the file to the non-blocking socket, a part at a time, the
 * task waiting for the socket on EAGAIN: nothing of the file passes through memory of ours. The loop has
 * one backend (libev, readiness), so sendfile it is; a completion backend (io_uring) would give the same
 * coroutine an IORING_OP_SPLICE instead. Where sendfile cannot go the body is read a part at a time and
 * written through the stream, the task draining it between parts: a TLS stream (its session must
 * encrypt the bytes) and a stream of the simulated world (no real socket).
 *
 * On a simulated loop (async/sim.h) the files are the world's (sim_fs.h): the same answers from its flat
 * namespace, a directory being where names go on below it, a file's Last-Modified the world's time of
 * day at its last change (net__sim_time_of_day), so that a seed replays the answers byte for byte.
 *
 * Safety under a root: the server has percent-decoded the path already ("%2e%2e" is ".." by now), so the
 * segments are checked as they are; the file is then opened by openat2 with RESOLVE_BENEATH, which the
 * kernel enforces on every component, symlinks included, so no race between a check and the open can
 * lead out. Without openat2 (ENOSYS: Linux before 5.6, or a seccomp filter that does not know it), and
 * for what it refuses as a way out (an absolute symlink may point inside), the file is opened and the
 * path of what was really opened (/proc/self/fd) is compared with the root's real path. */
#include "net.h"
#include "sim_fs.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

/* At most this much per sendfile call, and this much sent without a wait before the task lets the other
 * tasks of the loop run: a fast reader on loopback would otherwise keep the loop for a whole large file. */
#define FILE_CHUNK ((size_t)4 << 20)
#define FILE_BURST (16ULL << 20)
/* What a body copied through the stream (TLS, the simulated world) is read in: a TLS record's worth. */
#define COPY_CHUNK 16384

static const char index_name[] = "index.html";

/* ---- content types ---- */

static const struct {
    const char *ext, *type;
} types[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"map", "application/json"},
    {"webmanifest", "application/manifest+json"},
    {"txt", "text/plain; charset=utf-8"},
    {"csv", "text/csv; charset=utf-8"},
    {"md", "text/markdown; charset=utf-8"},
    {"xml", "application/xml"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"avif", "image/avif"},
    {"ico", "image/x-icon"},
    {"bmp", "image/bmp"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"ttf", "font/ttf"},
    {"otf", "font/otf"},
    {"wasm", "application/wasm"},
    {"pdf", "application/pdf"},
    {"zip", "application/zip"},
    {"gz", "application/gzip"},
    {"tar", "application/x-tar"},
    {"mp4", "video/mp4"},
    {"webm", "video/webm"},
    {"mp3", "audio/mpeg"},
    {"ogg", "audio/ogg"},
    {"wav", "audio/wav"},
};

const char *async_http_content_type(const char *name) {
    const char *slash, *dot;
    size_t i;
    if (!name) return "application/octet-stream";
    slash = strrchr(name, '/');
    dot = strrchr(slash ? slash + 1 : name, '.');
    if (dot)
        for (i = 0; i < sizeof types / sizeof types[0]; i++)
            if (strcasecmp(dot + 1, types[i].ext) == 0) return types[i].type;
    return "application/octet-stream";
}

/* ---- dates (RFC 9110 5.6.7) ---- */

/* Parses an HTTP-date in any of its three forms (IMF-fixdate, RFC 850, asctime); false if it is none. */
static bool parse_date(const char *s, long long *out) {
    char mon[4] = "";
    int d = 0, y = 0, h = 0, mi = 0, sec = 0, n = 0;
    const char *m;
    struct tm tm;
    if (sscanf(s, "%*3[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d GMT%n", &d, mon, &y, &h, &mi, &sec, &n) == 6 &&
        n && !s[n]) {
    } else if (n = 0, sscanf(s, "%*[A-Za-z], %2d-%3[A-Za-z]-%2d %2d:%2d:%2d GMT%n", &d, mon, &y, &h, &mi, &sec,
                             &n) == 6 && n && !s[n]) {
        y += y < 70 ? 2000 : 1900; /* RFC 9110: a two-digit year that looks 50 years ahead is in the past */
    } else if (n = 0, sscanf(s, "%*3[A-Za-z] %3[A-Za-z] %2d %2d:%2d:%2d %4d%n", mon, &d, &h, &mi, &sec, &y, &n) ==
                          6 && n && !s[n]) {
    } else {
        return false;
    }
    m = strlen(mon) == 3 ? strstr(net__month_names, mon) : NULL;
    if (!m || (m - net__month_names) % 3 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 || y < 1900)
        return false;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = y - 1900;
    tm.tm_mon = (int)((m - net__month_names) / 3);
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    *out = (long long)timegm(&tm);
    return true;
}

/* ---- validators, conditions and ranges ---- */

/* Whether the If-None-Match list names etag (weak comparison: a W/ prefix is ignored), or is "*". */
static bool etag_listed(const char *list, const char *etag) {
    size_t len = strlen(etag);
    const char *p = list;
    for (;;) {
        const char *end;
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
        if (!*p) return false;
        if (*p == '*') return true;
        if (p[0] == 'W' && p[1] == '/') p += 2;
        if (*p != '"' || !(end = strchr(p + 1, '"'))) return false;
        if ((size_t)(end + 1 - p) == len && memcmp(p, etag, len) == 0) return true;
        p = end + 1;
    }
}

/* A decimal number at *p (saturating at ULLONG_MAX); false if no digit is there. */
static bool parse_number(const char **p, unsigned long long *v) {
    const char *q = *p;
    *v = 0;
    if (*q < '0' || *q > '9') return false;
    for (; *q >= '0' && *q <= '9'; q++)
        *v = *v > (ULLONG_MAX - 9) / 10 ? ULLONG_MAX : *v * 10 + (unsigned long long)(*q - '0');
    *p = q;
    return true;
}

enum { RANGE_WHOLE, RANGE_ONE, RANGE_UNSATISFIABLE };

/* The Range header of a file of `size` bytes: one range [*first, *last], unsatisfiable, or the whole file
 * (no range, several, or one that does not parse: RFC 9110 14.2 lets a server ignore those). */
static int parse_range(const char *v, unsigned long long size, unsigned long long *first, unsigned long long *last) {
    unsigned long long a = 0, b;
    const char *p = v;
    bool suffix;
    if (strncasecmp(p, "bytes=", 6) != 0 || strchr(p, ',')) return RANGE_WHOLE;
    p += 6;
    while (*p == ' ' || *p == '\t') p++;
    suffix = *p == '-';
    if (suffix) { /* the last b bytes */
        p++;
        if (!parse_number(&p, &b)) return RANGE_WHOLE;
    } else {
        if (!parse_number(&p, &a) || *p++ != '-') return RANGE_WHOLE;
        if (!parse_number(&p, &b)) b = ULLONG_MAX;
        if (b < a) return RANGE_WHOLE;
    }
    while (*p == ' ' || *p == '\t') p++;
    if (*p) return RANGE_WHOLE;
    if (suffix) {
        if (b == 0 || size == 0) return RANGE_UNSATISFIABLE;
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return RANGE_ONE;
    }
    if (a >= size) return RANGE_UNSATISFIABLE;
    *first = a;
    *last = b >= size ? size - 1 : b;
    return RANGE_ONE;
}

/* ---- opening, confined or not ---- */

/* A segment of the path is "..", or it holds a backslash or a control character. */
static bool path_refused(const char *path) {
    const char *p;
    for (p = path; *p; p++)
        if (*p == '\\' || (unsigned char)*p < 0x20 || *p == 0x7f) return true;
    for (p = path; *p;) {
        const char *seg = p;
        while (*p && *p != '/') p++;
        if (p - seg == 2 && seg[0] == '.' && seg[1] == '.') return true;
        if (*p) p++;
    }
    return false;
}

/* Whether `real` (an absolute path without symlinks) is root_real or lies beneath it. */
static bool beneath(const char *real, const char *root_real) {
    size_t n = strlen(root_real);
    if (n == 1) return real[0] == '/'; /* the root is "/" */
    return strncmp(real, root_real, n) == 0 && (real[n] == '/' || real[n] == '\0');
}

#ifdef SYS_openat2
/* struct open_how of <linux/openat2.h>, and its RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS */
typedef struct {
    unsigned long long flags, mode, resolve;
} open_how;
#define BENEATH (0x08 | 0x02)

static pthread_once_t openat2_once = PTHREAD_ONCE_INIT;
static bool openat2_works;

/* Whether this kernel has openat2, asked once per process: a kernel before 5.6 says ENOSYS, a seccomp
 * filter of an older container runtime that does not know the call may say EPERM. */
static void openat2_probe(void) {
    open_how how = {O_RDONLY | O_CLOEXEC | O_DIRECTORY, 0, BENEATH};
    long fd = syscall(SYS_openat2, AT_FDCWD, ".", &how, sizeof how);
    openat2_works = fd >= 0 || (errno != ENOSYS && errno != EPERM);
    if (fd >= 0) close((int)fd);
}
#endif

/* Opens rel beneath the directory rootfd (whose path is root), following symlinks only while they stay
 * beneath it; -1 with errno set otherwise (EXDEV for a way out). */
static int open_beneath(int rootfd, const char *root, const char *rel) {
    const int flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK; /* a FIFO must not block the open */
    char root_real[PATH_MAX], real[PATH_MAX], link[64];
    ssize_t n;
    int fd, err;
#ifdef SYS_openat2
    pthread_once(&openat2_once, openat2_probe);
    if (openat2_works) {
        open_how how;
        long r;
        how.flags = (unsigned long long)flags;
        how.mode = 0;
        how.resolve = BENEATH;
        r = syscall(SYS_openat2, rootfd, rel, &how, sizeof how);
        if (r >= 0) return (int)r;
        /* EXDEV: a way out, or an absolute symlink, which RESOLVE_BENEATH refuses even when it points
         * inside; the check below decides it by where the open really leads */
        if (errno != EXDEV) return -1;
    }
#endif
    fd = openat(rootfd, rel, flags);
    if (fd < 0) return -1;
    if (!realpath(root, root_real)) goto refuse;
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    n = readlink(link, real, sizeof real - 1);
    if (n < 0 || (size_t)n >= sizeof real - 1) goto refuse; /* no /proc: nothing to tell where it led */
    real[n] = '\0';
    if (beneath(real, root_real)) return fd;
    errno = EXDEV;
refuse:
    err = errno;
    close(fd);
    errno = err == ENOENT ? EXDEV : err; /* the link's own file is there: never a 404 for a way out */
    return -1;
}

/* The status for a failed open, or 0 for an error that is the server's own (raised: a 500). */
static int open_status(int err) {
    switch (err) {
    case ENOENT:
    case ENOTDIR:
    case ENAMETOOLONG:
        return 404;
    case EACCES:
    case EPERM:
    case EXDEV:
    case ELOOP:
        return 403;
    default:
        return 0;
    }
}

static const char *status_text(int status) {
    switch (status) {
    case 301: return "Moved Permanently";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    default: return "Range Not Satisfiable";
    }
}

/* Answers with an error status and its text; 0 or the response's error. */
static int refuse(async_http_file *x, int status) {
    x->status = status;
    return async_http_response_text(x->res, status, status_text(status));
}

/* Whether a directory was asked for without its final '/' by the request's own path (a static route,
 * not a path the handler chose): it is then redirected to the form with it, so that the relative links of
 * its index resolve inside it, as they would for a file server's. */
static bool redirect_dir(const async_http_file *x) {
    size_t n = strlen(x->req->path);
    return x->root && !x->path && n && x->req->path[n - 1] != '/';
}

/* What decide needs of the file opened: its size, and its modification time in seconds since the
 * epoch. */
typedef struct file_meta {
    unsigned long long size;
    long long mtime;
} file_meta;

/* The path the request asks for: the handler's, the route's {path...} or the request's; for a root,
 * NULL if it is refused (403), else without its leading '/' ("." for none). */
static const char *target_path(const async_http_file *x) {
    const char *path = x->path;
    if (!path && x->root) path = async_http_request_param(x->req, "path");
    if (!path) path = x->req->path;
    if (x->root) {
        if (path_refused(path)) return NULL;
        while (*path == '/') path++;
        if (!*path) path = ".";
    }
    return path;
}

/* Opens the file to serve into x->fd, and its name into name (for its type): 0, a status to answer
 * with (301, 403, 404), or an error to raise. A directory is its index.html. */
static int open_target(async_http_file *x, char name[PATH_MAX], file_meta *meta) {
    const char *path = target_path(x);
    struct stat st_, *st = &st_;
    size_t len;
    int rootfd = -1, status = 0, pass;
    if (!path) return 403;
    len = strlen(path);
    if (len + sizeof index_name + 1 > PATH_MAX) return 404;
    memcpy(name, path, len + 1);
    if (x->root) {
        rootfd = open(x->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0) return async__errno_code(errno); /* the server's root is missing: a 500 */
    }
    for (pass = 0; pass < 2 && !status; pass++) {
        x->fd = x->root ? open_beneath(rootfd, x->root, name) : open(name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (x->fd < 0) {
            status = open_status(errno);
            if (!status) status = async__errno_code(errno);
            else if (pass == 1 && status == 404) status = 403; /* a directory without an index */
        } else if (fstat(x->fd, st) < 0) {
            status = async__errno_code(errno);
        } else if (S_ISDIR(st->st_mode) && pass == 0) {
            close(x->fd);
            x->fd = -1;
            if (redirect_dir(x)) {
                status = 301;
                break;
            }
            if (len && name[len - 1] != '/') name[len++] = '/';
            memcpy(name + len, index_name, sizeof index_name);
            continue;
        } else if (!S_ISREG(st->st_mode)) {
            status = 403; /* a device, FIFO or socket, or an index.html that is a directory */
        }
        break;
    }
    if (status && x->fd >= 0) {
        close(x->fd);
        x->fd = -1;
    }
    if (rootfd >= 0) close(rootfd);
    if (!status) {
        meta->size = (unsigned long long)st->st_size;
        meta->mtime = (long long)st->st_mtime;
    }
    return status;
}

/* ---- the simulated world's files (async/sim.h) ---- */

/* Appends the segments of path to out (len bytes long) as the kernel resolves them where no symlink is:
 * empty and "." segments dropped, ".." taking back the segment before it ("/.." is "/"; at the top of a
 * relative path it stays, a name of the world). false if out would pass PATH_MAX. */
static bool world_join(char out[PATH_MAX], size_t *len, const char *path) {
    while (*path) {
        const char *seg = path;
        size_t n, last;
        while (*path && *path != '/') path++;
        n = (size_t)(path - seg);
        if (*path) path++;
        if (n == 0 || (n == 1 && seg[0] == '.')) continue;
        for (last = *len; last && out[last - 1] != '/'; last--) {
        } /* out's last segment begins at last */
        if (n == 2 && seg[0] == '.' && seg[1] == '.') {
            if (*len == 1 && out[0] == '/') continue;
            if (last < *len && strcmp(out + last, "..") != 0) {
                *len = last > 1 ? last - 1 : last; /* "a/b" is "a", "/a" is "/", "a" is "" */
                out[*len] = '\0';
                continue;
            }
        }
        if (*len + 1 + n + 1 > PATH_MAX) return false;
        if (*len && out[*len - 1] != '/') out[(*len)++] = '/';
        memcpy(out + *len, seg, n);
        *len += n;
        out[*len] = '\0';
    }
    return true;
}

/* open_target in the world: the same answers from its flat namespace (sim_fs.h), where a directory is
 * where names go on below it, and which has no symlink, permission, device or FIFO. The root and the
 * path are joined and resolved by their names ("a/./b" is "a/b"); a root that is no directory of the
 * world is ASYNC_ENOENT (raised: a 500, as a missing root on a real loop). Last-Modified is the world's
 * time of day at the file's last change (net__sim_time_of_day): no real clock is read. */
static int open_target_world(async_http_file *x, async__sim_files *fs, char name[PATH_MAX], file_meta *meta) {
    const char *path = target_path(x);
    size_t len = 0, plen;
    int64_t size, mtime;
    bool dir;
    int pass;
    if (!path) return 403;
    if (!x->root && !*path) return 404; /* open("") */
    name[0] = '\0';
    if (x->root) {
        if (!*x->root) return ASYNC_ENOENT;
        if (x->root[0] == '/') name[len++] = '/', name[len] = '\0';
        if (!world_join(name, &len, x->root)) return 404;
        if (!async__sim_file_is_dir(fs, name)) return ASYNC_ENOENT;
    } else if (path[0] == '/') {
        name[len++] = '/';
        name[len] = '\0';
    }
    if (!world_join(name, &len, path) || len + sizeof index_name + 1 > PATH_MAX) return 404;
    plen = strlen(path);
    dir = !len || (len == 1 && name[0] == '/') || (plen && path[plen - 1] == '/') || strcmp(path, ".") == 0;
    for (pass = 0; pass < 2; pass++) {
        int fd = dir ? ASYNC_ENOENT : async__sim_file_open(fs, name, O_RDONLY);
        if (fd >= 0) {
            x->fd = fd;
            break;
        }
        if (fd != ASYNC_ENOENT) return fd; /* a fault of the world: EIO */
        if (pass == 1 || !async__sim_file_is_dir(fs, name)) return pass == 1 ? 403 : 404;
        if (redirect_dir(x)) return 301;
        if (len && name[len - 1] != '/') name[len++] = '/';
        memcpy(name + len, index_name, sizeof index_name);
        dir = false;
    }
    if ((size = async__sim_file_size(fs, x->fd)) < 0 || (mtime = async__sim_file_mtime(fs, x->fd)) < 0) {
        async__sim_file_close(fs, x->fd);
        x->fd = -1;
        return size < 0 ? (int)size : (int)mtime;
    }
    meta->size = (unsigned long long)size;
    meta->mtime = net__sim_time_of_day((async_ms)mtime);
    return 0;
}

/* ---- the answer ---- */

/* Decides the answer and sets the response's head: 1 if a body is to be sent from x->fd (x->off,
 * x->left), 0 if the answer is complete, or an error to raise. */
static int decide(async_http_file *x) {
    async_http_request *req = x->req;
    async_http_response *res = x->res;
    async__sim_files *fs = async__sim_files_of(async_task_loop(&x->task));
    char name[PATH_MAX], etag[48], date[32], value[96];
    const char *inm, *ims, *range, *if_range;
    unsigned long long size, first = 0, last = 0;
    long long since;
    file_meta st = {0, 0};
    int rc, kind = RANGE_WHOLE;
    bool head = strcmp(req->method, "HEAD") == 0;
    if (!head && strcmp(req->method, "GET") != 0) {
        if ((rc = async_http_response_header(res, "Allow", "GET, HEAD")) != 0) return rc;
        return refuse(x, 405);
    }
    rc = fs ? open_target_world(x, fs, name, &st) : open_target(x, name, &st);
    if (rc == 301) { /* Location: the target as sent up to its query, a '/', the query */
        size_t n = strcspn(req->target, "?#");
        char *loc = (char *)malloc(n + strlen(req->query) + 3);
        if (!loc) return ASYNC_ENOMEM;
        snprintf(loc, n + strlen(req->query) + 3, "%.*s/%s%s", (int)n, req->target, *req->query ? "?" : "",
                 req->query);
        rc = async_http_response_header(res, "Location", loc);
        free(loc);
        return rc ? rc : refuse(x, 301);
    }
    if (rc > 0) return refuse(x, rc);
    if (rc < 0) return rc;
    size = st.size;
    snprintf(etag, sizeof etag, "\"%llx-%llx\"", (unsigned long long)st.mtime, size);
    net__http_date((long long)st.mtime, date);
    if ((rc = async_http_response_header(res, "Last-Modified", date)) != 0 ||
        (rc = async_http_response_header(res, "ETag", etag)) != 0)
        return rc;
    /* RFC 9110 13.2.2: If-None-Match, when present, decides alone */
    inm = async_http_request_header(req, "If-None-Match");
    ims = async_http_request_header(req, "If-Modified-Since");
    if (inm ? etag_listed(inm, etag) : ims && parse_date(ims, &since) && (long long)st.mtime <= since) {
        x->status = res->status = 304;
        return 0;
    }
    if ((rc = async_http_response_header(res, "Accept-Ranges", "bytes")) != 0) return rc;
    range = head ? NULL : async_http_request_header(req, "Range");
    if_range = async_http_request_header(req, "If-Range");
    if (range && if_range &&
        (if_range[0] == '"' ? strcmp(if_range, etag) != 0
                            : !parse_date(if_range, &since) || since != (long long)st.mtime))
        range = NULL; /* the client's copy is not this one: the whole file */
    if (range) kind = parse_range(range, size, &first, &last);
    if (kind == RANGE_UNSATISFIABLE) {
        snprintf(value, sizeof value, "bytes */%llu", size);
        if ((rc = async_http_response_header(res, "Content-Range", value)) != 0) return rc;
        return refuse(x, 416);
    }
    if (kind == RANGE_ONE) {
        snprintf(value, sizeof value, "bytes %llu-%llu/%llu", first, last, size);
        if ((rc = async_http_response_header(res, "Content-Range", value)) != 0) return rc;
        x->status = res->status = 206;
        x->off = first;
        x->left = last - first + 1;
    } else {
        x->status = res->status = 200;
        x->off = 0;
        x->left = size;
    }
    snprintf(value, sizeof value, "%llu", x->left);
    if ((rc = async_http_response_header(res, "Content-Length", value)) != 0) return rc;
    res->content_type = async_http_content_type(name);
    if (head) x->left = 0;
    return 1;
}

/* One sendfile of the rest: > 0 bytes sent, 0 would block, or an error code. sendfile cannot take
 * MSG_NOSIGNAL, so SIGPIPE is blocked in this thread around it and, when the call raised one, taken back
 * before it is unblocked (unless one was pending already): a client that went away is ASYNC_EPIPE, never
 * the end of the process. */
static long send_part(async_http_file *x, int sock) {
    sigset_t pipe_set, old, pending;
    struct timespec zero = {0, 0};
    off_t off = (off_t)x->off;
    size_t n = x->left < FILE_CHUNK ? (size_t)x->left : FILE_CHUNK;
    bool was_pending;
    ssize_t r;
    int err;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    do r = sendfile(sock, x->fd, &off, n);
    while (r < 0 && errno == EINTR);
    err = errno;
    if (r < 0 && err == EPIPE && !was_pending)
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR) {
        }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r > 0) {
        x->off += (unsigned long long)r;
        x->left -= (unsigned long long)r;
        x->sent += (unsigned long long)r;
        x->burst += (unsigned long long)r;
        return (long)r;
    }
    if (r == 0) return ASYNC_EIO; /* the file is shorter than it was: the body cannot be completed */
    return NET_WOULD_BLOCK(err) ? 0 : async__errno_code(err);
}

/* Whether the body must be copied through the stream rather than sent by sendfile: a TLS session must
 * encrypt it, and a stream of the simulated world has no real socket (its file has no real descriptor
 * either). */
static bool copied(async_http_file *x) {
    const async_stream *s = async__http_stream(x->res);
    return s->tls || s->world;
}

/* Reads the next part of the body (at most COPY_CHUNK bytes, at x->off) and writes it to the response:
 * > 0 bytes written (the stream sends what it can and buffers the rest), or an error code. */
static long copy_part(async_http_file *x) {
    async__sim_files *fs = async__sim_files_of(async_task_loop(&x->task));
    char buf[COPY_CHUNK];
    size_t n = x->left < sizeof buf ? (size_t)x->left : sizeof buf;
    long r;
    int rc;
    if (fs) {
        r = async__sim_file_read(fs, x->fd, buf, n, (int64_t)x->off);
    } else {
        do r = (long)pread(x->fd, buf, n, (off_t)x->off);
        while (r < 0 && errno == EINTR);
        if (r < 0) r = async__errno_code(errno);
    }
    if (r == 0) return ASYNC_EIO; /* the file is shorter than it was: the body cannot be completed */
    if (r < 0) return r;
    if ((rc = async_http_response_write(x->res, buf, (size_t)r)) != 0) return rc; /* counts it */
    x->off += (unsigned long long)r;
    x->left -= (unsigned long long)r;
    x->sent += (unsigned long long)r;
    x->burst += (unsigned long long)r;
    return r;
}

static async_status file_run(async_task *t) {
    async_http_file *x = (async_http_file *)t;
    long rc;
    ASYNC_BEGIN(t);
    if (x->err) ASYNC_THROW_ERROR(t, async_error_of(x->err));
    ASYNC_TRY(t) {
        rc = decide(x);
        if (rc < 0) ASYNC_THROW_ERROR(t, async_error_of((int)rc));
        if (rc > 0) {
            rc = async_http_response_write(x->res, NULL, 0); /* the head, with its Content-Length */
            if (rc) ASYNC_THROW_ERROR(t, async_error_of((int)rc));
            while (x->left && copied(x)) { /* the next part waits until the stream has taken this one */
                rc = copy_part(x);
                if (rc < 0) ASYNC_THROW_ERROR(t, async_error_of((int)rc));
                if (async_stream_pending(async__http_stream(x->res))) {
                    x->burst = 0;
                    AWAIT_STREAM_DRAIN(t, async__http_stream(x->res), x->ms);
                } else if (x->burst >= FILE_BURST) {
                    x->burst = 0;
                    AWAIT_YIELD(t);
                }
            }
            if (x->left) AWAIT_STREAM_DRAIN(t, async__http_stream(x->res), x->ms);
            while (x->left) {
                rc = send_part(x, async_stream_fd(async__http_stream(x->res)));
                if (rc < 0) ASYNC_THROW_ERROR(t, async_error_of((int)rc));
                if (rc > 0) async__http_response_sent(x->res, (unsigned long long)rc); /* the server counts it */
                if (rc == 0) {
                    x->burst = 0;
                    AWAIT_WRITABLE(t, &x->io, async_stream_fd(async__http_stream(x->res)), x->ms);
                } else if (x->burst >= FILE_BURST) {
                    x->burst = 0;
                    AWAIT_YIELD(t);
                }
            }
        }
    }
    ASYNC_FINALLY(t) {
        if (x->fd >= 0) {
            async__sim_files *fs = async__sim_files_of(async_task_loop(t));
            if (fs)
                async__sim_file_close(fs, x->fd);
            else
                close(x->fd);
        }
        x->fd = -1;
    }
    ASYNC_END_TRY(t);
    ASYNC_END(t);
}

/* Prepares x; a bad argument is raised by its first step. */
static async_task *file_start(async_http_file *x, async_http_request *req, async_http_response *res,
                              const char *root, const char *path, int64_t ms, bool confined) {
    if (!x) return NULL; /* AWAIT raises ASYNC_EINVAL */
    if (!async_task_init(&x->task, file_run)) return &x->task; /* it runs: ASYNC_EBUSY */
    x->req = req;
    x->res = res;
    x->root = root;
    x->path = path;
    x->ms = ms < 0 ? -1 : ms;
    x->fd = -1;
    x->off = x->left = x->burst = x->sent = 0;
    x->status = 0;
    x->err = !req || !res || !req->method || !req->path || (confined ? !root : !path) ? ASYNC_EINVAL
             : ms > ASYNC_MS_MAX                                                     ? ASYNC_ERANGE
             : !async__http_stream(res)                                               ? ASYNC_EBADF
                                                                                      : 0;
    memset(&x->io, 0, sizeof x->io);
    return &x->task;
}

async_task *async__http_file(async_http_file *file, async_http_request *req, async_http_response *res,
                             const char *path, int64_t ms) {
    return file_start(file, req, res, NULL, path, ms, false);
}

async_task *async__http_static(async_http_file *file, async_http_request *req, async_http_response *res,
                               const char *root, const char *path, int64_t ms) {
    return file_start(file, req, res, root, path, ms, true);
}
