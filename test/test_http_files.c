/* Files served by HTTP handlers (ASYNC_HTTP_STATIC, AWAIT_HTTP_STATIC, AWAIT_HTTP_FILE) from a directory
 * the test makes: a large file to a slow reader compared byte for byte, content types, Last-Modified and
 * ETag with the 304s they allow, each form of Range (206) and the unsatisfiable ones (416), HEAD, 404,
 * 405, directories and their index, paths that try to leave the root (".." raw and percent-encoded,
 * backslashes, symlinks out of the root) and symlinks that stay inside, the same without openat2 (a
 * seccomp filter takes it away), clients that go away or reset mid-body and one that stops reading, bad
 * arguments, and curl as a real peer (https too: the body through the TLS session). In the simulated
 * world: the same requests answered as on a real loop, the world's dates, a seed's replay, short reads
 * and EIO. Clients are raw streams of the loop that runs the server. */
#define _GNU_SOURCE /* syscall(), to see that the seccomp filter has taken openat2 away */
#include "test.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ---- the tree served ---- */

#define HF_BIG (6u << 20) /* more than the kernel's largest send buffer on loopback: sendfile must wait */
#define HF_MTIME 784111777L /* Sun, 06 Nov 1994 08:49:37 GMT */
#define HF_ETAG_100 "\"2ebc98a1-64\"" /* of hundred.txt: its mtime and size in hex */

static char hf_root[PATH_MAX];    /* www: what is served */
static char hf_hundred[PATH_MAX]; /* www/hundred.txt, for AWAIT_HTTP_FILE */
static char hf_missing[PATH_MAX]; /* a root that does not exist */
static int hf_port;

static unsigned char hf_byte(size_t i) { return (unsigned char)(i * 7 + i / 251); }

/* The n bytes at p are those of the large file from its byte `from` on. */
static void hf_check_bytes(const char *p, size_t n, size_t from) {
    size_t i;
    for (i = 0; i < n; i++)
        if ((unsigned char)p[i] != hf_byte(from + i)) test_fail(__FILE__, __LINE__, "byte %zu differs", from + i);
}

static void hf_file(const char *rel, const char *text) { test_write_file(test_path(rel), text); }

#define HF_MID 300001u /* many windows of the world's connections, and an odd size */

/* Writes mid.bin into the real tree: the first HF_MID bytes of the large file's pattern. */
static void hf_make_mid(void) {
    FILE *out = fopen(test_path("www/mid.bin"), "wb");
    size_t i;
    ASSERT(out != NULL);
    for (i = 0; i < HF_MID; i++) ASSERT(fputc(hf_byte(i), out) != EOF);
    ASSERT(fclose(out) == 0);
}

/* The tree: www/ with files of every type, a subdirectory with an index, one without, symlinks in and
 * out; secret.txt and outside/ beside it, which must never be served. */
static void hf_make_tree(void) {
    static const char *const names[] = {"www/b.CSS", "www/c.js", "www/d.json", "www/e.png", "www/f.unknown",
                                        "www/g",     "www/h.mjs", "www/i.wasm", "www/j.svg", "www/k.woff2"};
    struct timespec times[2];
    char target[PATH_MAX + 16];
    static unsigned char block[65536]; /* HF_BIG is a multiple of it */
    size_t i;
    FILE *big;
    ASSERT(mkdir(test_path("www"), 0755) == 0);
    ASSERT(mkdir(test_path("www/sub"), 0755) == 0);
    ASSERT(mkdir(test_path("www/noindex"), 0755) == 0);
    ASSERT(mkdir(test_path("outside"), 0755) == 0);
    hf_file("www/a.html", "<h1>a</h1>");
    hf_file("www/hundred.txt", "0123456789012345678901234567890123456789012345678901234567890123456789"
                               "012345678901234567890123456789");
    hf_file("www/empty.txt", "");
    hf_file("www/index.html", "root index");
    hf_file("www/sub/index.html", "sub index");
    hf_file("www/noindex/x.txt", "x");
    hf_file("secret.txt", "top secret");
    hf_file("outside/x.txt", "outside");
    for (i = 0; i < sizeof names / sizeof names[0]; i++) hf_file(names[i], "t");
    big = fopen(test_path("www/big.bin"), "wb");
    ASSERT(big != NULL);
    for (i = 0; i < HF_BIG; i += sizeof block) {
        size_t k;
        for (k = 0; k < sizeof block; k++) block[k] = hf_byte(i + k);
        ASSERT(fwrite(block, 1, sizeof block, big) == sizeof block);
    }
    ASSERT(fclose(big) == 0);
    hf_make_mid();
    ASSERT(symlink("../secret.txt", test_path("www/out.txt")) == 0);
    ASSERT(symlink("../outside", test_path("www/outdir")) == 0);
    ASSERT(symlink("a.html", test_path("www/in.html")) == 0);
    ASSERT(symlink("sub", test_path("www/insub")) == 0);
    ASSERT(symlink("sub/../a.html", test_path("www/via.html")) == 0);
    snprintf(target, sizeof target, "%s/a.html", test_path("www"));
    ASSERT(symlink(target, test_path("www/abs.html")) == 0);
    snprintf(target, sizeof target, "%s", test_path("secret.txt"));
    ASSERT(symlink(target, test_path("www/abs-out.txt")) == 0);
    times[0].tv_sec = times[1].tv_sec = HF_MTIME;
    times[0].tv_nsec = times[1].tv_nsec = 0;
    ASSERT(utimensat(AT_FDCWD, test_path("www/hundred.txt"), times, 0) == 0);
    snprintf(hf_root, sizeof hf_root, "%s", test_path("www"));
    snprintf(hf_hundred, sizeof hf_hundred, "%s", test_path("www/hundred.txt"));
    snprintf(hf_missing, sizeof hf_missing, "%s", test_path("missing"));
}

/* ---- the handlers ---- */

ASYNC_HTTP_STATIC(hf_static, hf_root)
ASYNC_HTTP_STATIC(hf_no_root, hf_missing)

static int hf_code;       /* what hf_tracked's await raised (0: nothing, 1: it has not ended) */
static int hf_cleaned;    /* hf_tracked's finally blocks that ran */
static int hf_sock;       /* hf_tracked's connection socket */
static int64_t hf_ms;     /* hf_tracked's limit for the client */
static int hf_status;     /* what hf_tracked answered */
static int hf_bad[4];     /* what hf_bad_args's awaits raised */
static async_tls_ctx *hf_tls; /* the server speaks https with it, if set */

/* Serves like ASYNC_HTTP_STATIC and records how it ended. */
ASYNC_HTTP_DEF(hf_tracked, async_http_file file;) {
    hf_sock = async_stream_fd(async__http_stream(f->res));
    hf_code = 1;
    ASYNC_TRY(t) {
        AWAIT_HTTP_STATIC(t, &f->file, f->req, f->res, hf_root, NULL, hf_ms);
        hf_code = 0;
        hf_status = f->file.status;
    }
    ASYNC_CATCH(t) {
        hf_code = async_caught(t)->code;
        ASYNC_RERAISE(t);
    }
    ASYNC_FINALLY(t) {
        hf_cleaned++;
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

/* One file named by the handler. */
ASYNC_HTTP_DEF(hf_one, async_http_file file;) {
    AWAIT_HTTP_FILE(t, &f->file, f->req, f->res, hf_hundred, TEST_LONG_MS);
} ASYNC_END_DEF

/* The path of the query's `p` beneath the root, rather than the route's parameter. */
ASYNC_HTTP_DEF(hf_query, async_http_file file;) {
    AWAIT_HTTP_STATIC(t, &f->file, f->req, f->res, hf_root, async_http_request_query(f->req, "p"), TEST_LONG_MS);
} ASYNC_END_DEF

/* Bad arguments: each await raises at once, and the response is still free to answer. */
ASYNC_HTTP_DEF(hf_bad_args, async_http_file file; int i;) {
    for (f->i = 0; f->i < 4; f->i++) {
        ASYNC_TRY(t) {
            if (f->i == 0) AWAIT_HTTP_FILE(t, &f->file, f->req, f->res, NULL, 10);
            if (f->i == 1) AWAIT_HTTP_FILE(t, &f->file, f->req, f->res, hf_hundred, (int64_t)ASYNC_MS_MAX + 1);
            if (f->i == 2) AWAIT_HTTP_STATIC(t, &f->file, f->req, f->res, NULL, "a.html", 10);
            if (f->i == 3) AWAIT_HTTP_FILE(t, &f->file, NULL, f->res, hf_hundred, 10);
            hf_bad[f->i] = 0;
        }
        ASYNC_CATCH(t) {
            hf_bad[f->i] = async_caught(t)->code;
        }
        ASYNC_END_TRY(t);
    }
    async_http_response_text(f->res, 200, "checked");
} ASYNC_END_DEF

static const async_http_route hf_routes[] = {
    ASYNC_HTTP_ROUTE(NULL, "/s/{path...}", hf_static),
    ASYNC_HTTP_ROUTE("GET", "/t/{path...}", hf_tracked),
    ASYNC_HTTP_ROUTE("GET", "/one", hf_one),
    ASYNC_HTTP_ROUTE("GET", "/q", hf_query),
    ASYNC_HTTP_ROUTE("GET", "/bad", hf_bad_args),
    ASYNC_HTTP_ROUTE("GET", "/nowhere/{path...}", hf_no_root),
    ASYNC_HTTP_ROUTES_END,
};

/* ---- a raw client ---- */

/* Sends req on a new connection (with a receive buffer of rcvbuf bytes, 0: the default) and reads the
 * answer piece by piece (at most `piece` bytes a read, 0: 64 KiB) until the server closes or `stop`
 * bytes came (0: no stop); then closes, with a reset if `reset`. got is malloc'ed: hf_client_free. */
ASYNC_DEF(hf_client, const char *req; int rcvbuf; size_t piece, stop; bool reset; async_stream s; char *got;
          size_t len, cap, n; int code;) {
    f->code = 1;
    f->cap = HF_BIG + 65536;
    f->got = (char *)malloc(f->cap + 1);
    ASSERT(f->got != NULL);
    ASYNC_TRY(t) {
        if (f->rcvbuf) {
            ASSERT_EQ(async_stream_open(&f->s, test_connect(hf_port, f->rcvbuf)), 0);
        } else {
            AWAIT_STREAM_CONNECT(t, &f->s, "127.0.0.1", hf_port, TEST_LONG_MS);
        }
        ASSERT_EQ(async_stream_write(&f->s, f->req, strlen(f->req)), 0);
        AWAIT_STREAM_DRAIN(t, &f->s, TEST_LONG_MS);
        do {
            size_t want = f->cap - f->len;
            if (f->piece && want > f->piece) want = f->piece;
            if (f->stop && want > f->stop - f->len) want = f->stop - f->len;
            AWAIT_STREAM_READ(t, &f->s, f->got + f->len, want, &f->n, TEST_LONG_MS);
            f->len += f->n;
        } while (f->n && f->len < f->cap && (!f->stop || f->len < f->stop));
        f->code = 0;
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
    }
    ASYNC_FINALLY(t) {
        f->got[f->len] = '\0';
        if (f->reset && async_stream_fd(&f->s) >= 0) test_linger0(async_stream_fd(&f->s));
        async_stream_close(&f->s);
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

static void hf_client_free(hf_client_frame *c) {
    free(c->got);
    c->got = NULL;
}

/* One response of a buffer: its status, head (up to the blank line) and body (Content-Length bytes, 0
 * without one). */
typedef struct hf_resp {
    int status;
    const char *head, *body;
    size_t head_len, body_len;
} hf_resp;

/* Parses the response at *p (end: the buffer's end); false if none is there whole. *p moves past it. */
static bool hf_next(const char **p, const char *end, hf_resp *r) {
    const char *blank = strstr(*p, "\r\n\r\n"), *cl;
    memset(r, 0, sizeof *r);
    if (!blank || blank >= end || sscanf(*p, "HTTP/1.1 %d", &r->status) != 1) return false;
    r->head = *p;
    r->head_len = (size_t)(blank + 2 - *p);
    r->body = blank + 4;
    cl = strstr(*p, "\r\nContent-Length: ");
    if (cl && cl < blank) r->body_len = strtoul(cl + 18, NULL, 10);
    if (r->body_len > (size_t)(end - r->body)) r->body_len = (size_t)(end - r->body); /* cut short */
    *p = r->body + r->body_len;
    return true;
}

/* The value of header `name` in r's head ("" if absent), in a static buffer. */
static const char *hf_header(const hf_resp *r, const char *name) {
    static char value[256];
    const char *p = r->head, *end = r->head + r->head_len;
    size_t n = strlen(name);
    value[0] = '\0';
    while ((p = strstr(p, "\r\n")) != NULL && p < end) {
        p += 2;
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 2, *e = strstr(v, "\r\n");
            snprintf(value, sizeof value, "%.*s", (int)(e - v), v);
            break;
        }
    }
    return value;
}

/* The body of r equals text. */
static bool hf_body_is(const hf_resp *r, const char *text) {
    return r->body_len == strlen(text) && memcmp(r->body, text, r->body_len) == 0;
}

/* ---- the server and the scenarios ---- */

ASYNC_DEF(hf_main, async_task *scenario; async_http_server http; async_group g;) {
    ASSERT_EQ(async_http_server_listen(&f->http, "127.0.0.1", 0, 0, NULL, hf_routes, NULL), 0);
    if (hf_tls) ASSERT_EQ(async_http_server_tls(&f->http, hf_tls), 0);
    hf_port = async_http_server_port(&f->http);
    ASYNC_SPAWN(t, &f->g, async_http_server_serve(&f->http));
    ASYNC_TRY(t) {
        AWAIT(t, f->scenario);
    }
    ASYNC_FINALLY(t) {
        /* with a grace: a connection that has just answered ends by itself, and one that idles is
         * closed at once */
        async_http_server_close(&f->http, TEST_LONG_MS);
    }
    ASYNC_END_TRY(t);
    AWAIT_GROUP(t, &f->g);
} ASYNC_END_DEF

/* Makes the tree, runs the scenario against a server on a new loop, and checks that no connection and no
 * descriptor is left behind. */
static void hf_run(async_task *scenario) {
    static hf_main_frame m;
    async_loop *loop;
    int fds;
    hf_make_tree();
    hf_ms = TEST_LONG_MS;
    hf_cleaned = 0;
    hf_code = 1;
    fds = test_count_fds();
    loop = async_loop_new(0);
    ASSERT(loop != NULL);
    memset(&m, 0, sizeof m);
    ASSERT_EQ(async_run(loop, ASYNC_CALL(hf_main, &m, scenario)), 0);
    ASSERT_EQ(async_server_connections(&m.http.server), 0);
    async_loop_free(loop);
    ASSERT_EQ(test_count_fds(), fds);
}

/* Runs the scenario `name` (a coroutine without arguments) with hf_run. */
#define HF_RUN(name)                                                                                  \
    do {                                                                                              \
        static name##_frame scenario_;                                                                \
        hf_run(ASYNC_CALL(name, &scenario_));                                                         \
    } while (0)

#define HF_GET(path) "GET " path " HTTP/1.1\r\nHost: t\r\n\r\n"
#define HF_GET_CLOSE(path) "GET " path " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
#define HF_GET_KEEP(path, lines) "GET " path " HTTP/1.1\r\nHost: t\r\n" lines "\r\n"
#define HF_GET_WITH(path, lines) HF_GET_KEEP(path, lines "Connection: close\r\n")

/* One request on a connection of its own, answered as `status` with `body` (NULL: not compared). */
typedef struct hf_case {
    const char *request;
    int status;
    const char *body;
    const char *header, *value; /* a header the answer must have, or NULL */
} hf_case;

/* Runs cases[0..n) one by one; each is answered as it says. */
ASYNC_DEF(hf_cases, const hf_case *cases; size_t n; size_t i; hf_client_frame c;) {
    for (f->i = 0; f->i < f->n; f->i++) {
        const hf_case *k;
        AWAIT_CALL(t, hf_client, &f->c, f->cases[f->i].request);
        k = &f->cases[f->i];
        {
            hf_resp r;
            const char *p = f->c.got;
            bool ok = f->c.code == 0 && hf_next(&p, f->c.got + f->c.len, &r) && r.status == k->status &&
                      (!k->body || hf_body_is(&r, k->body)) &&
                      (!k->header || strcmp(hf_header(&r, k->header), k->value) == 0);
            if (!ok)
                test_fail(__FILE__, __LINE__, "case %zu: %s\ngot (code %d):\n%s\nexpected %d %s %s: %s", f->i,
                          k->request, f->c.code, f->c.got, k->status, k->body ? k->body : "-",
                          k->header ? k->header : "", k->value ? k->value : "");
        }
        hf_client_free(&f->c);
    }
} ASYNC_END_DEF

static void hf_run_cases(const hf_case *cases, size_t n) {
    static hf_cases_frame c;
    memset(&c, 0, sizeof c);
    hf_run(ASYNC_CALL(hf_cases, &c, cases, n));
}

#define HF_RUN_CASES(cases) hf_run_cases((cases), sizeof(cases) / sizeof((cases)[0]))

/* ---- whole files ---- */

/* A file larger than what the socket buffers hold, to a client with a small receive buffer that reads a
 * little at a time: sendfile sends it in parts, waiting for the socket between them. */
ASYNC_DEF(hf_big_scenario, hf_client_frame c;) {
    AWAIT_CALL(t, hf_client, &f->c, HF_GET_CLOSE("/s/big.bin"), 4096, 16384);
    ASSERT_EQ(f->c.code, 0);
    {
        hf_resp r;
        const char *p = f->c.got;
        ASSERT(hf_next(&p, f->c.got + f->c.len, &r));
        ASSERT_EQ(r.status, 200);
        ASSERT_EQ(r.body_len, HF_BIG);
        ASSERT_EQ(f->c.len, r.head_len + 2 + HF_BIG);
        hf_check_bytes(r.body, HF_BIG, 0);
        ASSERT_STR_EQ(hf_header(&r, "Content-Type"), "application/octet-stream");
        ASSERT_STR_EQ(hf_header(&r, "Accept-Ranges"), "bytes");
        ASSERT(strlen(hf_header(&r, "Last-Modified")) == 29);
        ASSERT(hf_header(&r, "ETag")[0] == '"');
    }
    hf_client_free(&f->c);
} ASYNC_END_DEF

TEST(http_files_a_large_file_reaches_a_slow_reader_whole) { HF_RUN(hf_big_scenario); }

static const hf_case hf_type_cases[] = {
    {HF_GET_CLOSE("/s/a.html"), 200, "<h1>a</h1>", "Content-Type", "text/html; charset=utf-8"},
    {HF_GET_CLOSE("/s/b.CSS"), 200, "t", "Content-Type", "text/css; charset=utf-8"},
    {HF_GET_CLOSE("/s/c.js"), 200, "t", "Content-Type", "text/javascript; charset=utf-8"},
    {HF_GET_CLOSE("/s/h.mjs"), 200, "t", "Content-Type", "text/javascript; charset=utf-8"},
    {HF_GET_CLOSE("/s/d.json"), 200, "t", "Content-Type", "application/json"},
    {HF_GET_CLOSE("/s/e.png"), 200, "t", "Content-Type", "image/png"},
    {HF_GET_CLOSE("/s/i.wasm"), 200, "t", "Content-Type", "application/wasm"},
    {HF_GET_CLOSE("/s/j.svg"), 200, "t", "Content-Type", "image/svg+xml"},
    {HF_GET_CLOSE("/s/k.woff2"), 200, "t", "Content-Type", "font/woff2"},
    {HF_GET_CLOSE("/s/f.unknown"), 200, "t", "Content-Type", "application/octet-stream"},
    {HF_GET_CLOSE("/s/g"), 200, "t", "Content-Type", "application/octet-stream"},
    {HF_GET_CLOSE("/s/hundred.txt"), 200, NULL, "Content-Type", "text/plain; charset=utf-8"},
    {HF_GET_CLOSE("/s/empty.txt"), 200, "", "Content-Length", "0"},
    {HF_GET_CLOSE("/s/sub/"), 200, "sub index", "Content-Type", "text/html; charset=utf-8"},
    {HF_GET_CLOSE("/s/sub"), 301, NULL, "Location", "/s/sub/"}, /* so that the index's links resolve in it */
    {HF_GET_CLOSE("/s/sub?a=1#f"), 301, NULL, "Location", "/s/sub/?a=1"},
    {HF_GET_CLOSE("/s/insub"), 301, NULL, "Location", "/s/insub/"},
    {HF_GET_CLOSE("/q?p=sub"), 200, "sub index", NULL, NULL}, /* a path the handler chose: no redirect */
    {HF_GET_CLOSE("/s/"), 200, "root index", NULL, NULL},
    {HF_GET_CLOSE("/s/sub/index.html"), 200, "sub index", NULL, NULL},
    {HF_GET_CLOSE("/one"), 200, NULL, "Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT"},
    {HF_GET_CLOSE("/q?p=/sub/index.html"), 200, "sub index", NULL, NULL},
};

TEST(http_files_content_types_indexes_and_one_file) {
    HF_RUN_CASES(hf_type_cases);
    ASSERT_STR_EQ(async_http_content_type(NULL), "application/octet-stream");
    ASSERT_STR_EQ(async_http_content_type("a.tar.gz"), "application/gzip");
    ASSERT_STR_EQ(async_http_content_type("dir.html/file"), "application/octet-stream");
    ASSERT_STR_EQ(async_http_content_type("x/PHOTO.JPEG"), "image/jpeg");
    ASSERT_STR_EQ(async_http_content_type("x.jpg"), "image/jpeg");
    ASSERT_STR_EQ(async_http_content_type(".css"), "text/css; charset=utf-8");
    ASSERT_STR_EQ(async_http_content_type("noext"), "application/octet-stream");
}

/* ---- validators and conditions ---- */

static const hf_case hf_condition_cases[] = {
    {HF_GET_CLOSE("/s/hundred.txt"), 200, NULL, "ETag", HF_ETAG_100},
    {HF_GET_CLOSE("/s/hundred.txt"), 200, NULL, "Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT"},
    /* the same date in its three forms, and a later one: not modified since */
    {HF_GET_WITH("/s/hundred.txt", "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n"), 304, "", "ETag",
     HF_ETAG_100},
    {HF_GET_WITH("/s/hundred.txt", "If-Modified-Since: Sunday, 06-Nov-94 08:49:37 GMT\r\n"), 304, "", NULL, NULL},
    {HF_GET_WITH("/s/hundred.txt", "If-Modified-Since: Sun Nov  6 08:49:37 1994\r\n"), 304, "", NULL, NULL},
    {HF_GET_WITH("/s/hundred.txt", "If-Modified-Since: Tue, 01 Jan 2030 00:00:00 GMT\r\n"), 304, "", NULL, NULL},
    /* earlier, or not a date: the file */
    {HF_GET_WITH("/s/hundred.txt", "If-Modified-Since: Sun, 06 Nov 1994 08:49:36 GMT\r\n"), 200, NULL, NULL, NULL},
    {HF_GET_WITH("/s/hundred.txt", "If-Modified-Since: yesterday\r\n"), 200, NULL, NULL, NULL},
    {HF_GET_WITH("/s/hundred.txt", "If-Modified-Since: Sun, 06 Foo 1994 08:49:37 GMT\r\n"), 200, NULL, NULL, NULL},
    /* If-None-Match decides alone */
    {HF_GET_WITH("/s/hundred.txt", "If-None-Match: " HF_ETAG_100 "\r\n"), 304, "", NULL, NULL},
    {HF_GET_WITH("/s/hundred.txt", "If-None-Match: \"x\", W/" HF_ETAG_100 "\r\n"), 304, "", NULL, NULL},
    {HF_GET_WITH("/s/hundred.txt", "If-None-Match: *\r\n"), 304, "", NULL, NULL},
    {HF_GET_WITH("/s/hundred.txt", "If-None-Match: \"other\"\r\nIf-Modified-Since: Tue, 01 Jan 2030 00:00:00 GMT\r\n"),
     200, NULL, NULL, NULL},
};

TEST(http_files_last_modified_and_etag_give_304) { HF_RUN_CASES(hf_condition_cases); }

/* ---- ranges ---- */

static const hf_case hf_range_cases[] = {
    {HF_GET_WITH("/s/hundred.txt", "Range: bytes=0-9\r\n"), 206, "0123456789", "Content-Range", "bytes 0-9/100"},
    {HF_GET_WITH("/s/hundred.txt", "Range: bytes=13-15\r\n"), 206, "345", "Content-Range", "bytes 13-15/100"},
    {HF_GET_WITH("/s/hundred.txt", "Range: bytes=95-\r\n"), 206, "56789", "Content-Range", "bytes 95-99/100"},
    {HF_GET_WITH("/s/hundred.txt", "Range: bytes=-3\r\n"), 206, "789", "Content-Range", "bytes 97-99/100"},
    {HF_GET_WITH("/s/hundred.txt", "Range: bytes=98-1000\r\n"), 206, "89", "Content-Range", "bytes 98-99/100"},
    {HF_GET_WITH("/s/hundred.txt", "Range: bytes=-500\r\n"), 206, NULL, "Content-Range", "bytes 0-99/100"},
    {HF_GET_WITH("/s/hundred.txt", "Range: bytes=99-99\r\n"), 206, "9", "Content-Length", "1"},
    /* unsatisfiable */
    {HF_GET_WITH("/s/hundred.txt", "Range: bytes=100-\r\n"), 416, NULL, "Content-Range", "bytes */100"},
    {HF_GET_WITH("/s/hundred.txt", "Range: bytes=100-200\r\n"), 416, NULL, "Content-Range", "bytes */100"},
    {HF_GET_WITH("/s/hundred.txt", "Range: bytes=-0\r\n"), 416, NULL, "Content-Range", "bytes */100"},
    {HF_GET_WITH("/s/empty.txt", "Range: bytes=0-\r\n"), 416, NULL, "Content-Range", "bytes */0"},
    {HF_GET_WITH("/s/hundred.txt", "Range: bytes=99999999999999999999999-\r\n"), 416, NULL, NULL, NULL},
    /* several ranges, a Range that does not parse, another unit: the whole file */
    {HF_GET_WITH("/s/hundred.txt", "Range: bytes=0-1,5-6\r\n"), 200, NULL, "Content-Length", "100"},
    {HF_GET_WITH("/s/hundred.txt", "Range: bytes=5-2\r\n"), 200, NULL, "Content-Length", "100"},
    {HF_GET_WITH("/s/hundred.txt", "Range: bytes=x-\r\n"), 200, NULL, "Content-Length", "100"},
    {HF_GET_WITH("/s/hundred.txt", "Range: items=0-1\r\n"), 200, NULL, "Content-Length", "100"},
    /* If-Range: the range while the validator holds, the whole file otherwise */
    {HF_GET_WITH("/s/hundred.txt", "Range: bytes=0-1\r\nIf-Range: " HF_ETAG_100 "\r\n"), 206, "01", NULL, NULL},
    {HF_GET_WITH("/s/hundred.txt", "Range: bytes=0-1\r\nIf-Range: Sun, 06 Nov 1994 08:49:37 GMT\r\n"), 206, "01",
     NULL, NULL},
    {HF_GET_WITH("/s/hundred.txt", "Range: bytes=0-1\r\nIf-Range: \"old\"\r\n"), 200, NULL, "Content-Length", "100"},
    {HF_GET_WITH("/s/hundred.txt", "Range: bytes=0-1\r\nIf-Range: Mon, 07 Nov 1994 08:49:37 GMT\r\n"), 200, NULL,
     "Content-Length", "100"},
    /* a range of the large file, far from its start */
    {HF_GET_WITH("/s/big.bin", "Range: bytes=5000000-5000003\r\n"), 206, NULL, "Content-Length", "4"},
};

TEST(http_files_ranges_give_206_or_416) {
    HF_RUN_CASES(hf_range_cases);
}

/* The bytes of a range of the large file are the file's. */
ASYNC_DEF(hf_big_range_scenario, hf_client_frame c;) {
    AWAIT_CALL(t, hf_client, &f->c, HF_GET_WITH("/s/big.bin", "Range: bytes=3000001-\r\n"));
    ASSERT_EQ(f->c.code, 0);
    {
        hf_resp r;
        const char *p = f->c.got;
        ASSERT(hf_next(&p, f->c.got + f->c.len, &r));
        ASSERT_EQ(r.status, 206);
        ASSERT_EQ(r.body_len, HF_BIG - 3000001);
        hf_check_bytes(r.body, r.body_len, 3000001);
    }
    hf_client_free(&f->c);
} ASYNC_END_DEF

TEST(http_files_a_range_of_a_large_file_is_its_bytes) { HF_RUN(hf_big_range_scenario); }

/* ---- HEAD, errors, and the connection going on ---- */

static const hf_case hf_status_cases[] = {
    {"HEAD /s/hundred.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 200, NULL, "Content-Length", "100"},
    {"HEAD /s/hundred.txt HTTP/1.1\r\nHost: t\r\nRange: bytes=0-1\r\nConnection: close\r\n\r\n", 200, NULL,
     "Content-Length", "100"},
    {HF_GET_CLOSE("/s/nothing.txt"), 404, "Not Found", NULL, NULL},
    {HF_GET_CLOSE("/s/nothing/deeper.txt"), 404, "Not Found", NULL, NULL},
    {HF_GET_CLOSE("/s/a.html/x"), 404, "Not Found", NULL, NULL},
    {HF_GET_CLOSE("/s/noindex/"), 403, "Forbidden", NULL, NULL},
    {HF_GET_CLOSE("/s/noindex/x.txt"), 200, "x", NULL, NULL},
    {"POST /s/a.html HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 405,
     "Method Not Allowed", "Allow", "GET, HEAD"},
    {"DELETE /s/a.html HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 405, NULL, "Allow", "GET, HEAD"},
    {HF_GET_CLOSE("/nowhere/a.html"), 500, NULL, NULL, NULL},
    {HF_GET_CLOSE("/bad"), 200, "checked", NULL, NULL},
};

TEST(http_files_head_404_403_405_and_bad_arguments) {
    HF_RUN_CASES(hf_status_cases);
    ASSERT_EQ(hf_bad[0], ASYNC_EINVAL);
    ASSERT_EQ(hf_bad[1], ASYNC_ERANGE);
    ASSERT_EQ(hf_bad[2], ASYNC_EINVAL);
    ASSERT_EQ(hf_bad[3], ASYNC_EINVAL);
}

/* Every answer keeps the connection: HEAD, 304, 404, 416, a file's body, a range of one, one after the
 * other on it. */
ASYNC_DEF(hf_keep_scenario, hf_client_frame c;) {
    AWAIT_CALL(t, hf_client, &f->c,
               "HEAD /s/a.html HTTP/1.1\r\nHost: t\r\n\r\n" HF_GET_KEEP("/s/hundred.txt", "If-None-Match: *\r\n")
                   HF_GET("/s/nothing") HF_GET_KEEP("/s/hundred.txt", "Range: bytes=200-\r\n") HF_GET("/s/a.html")
                       HF_GET_KEEP("/s/a.html", "Range: bytes=1-2\r\n") HF_GET_CLOSE("/s/a.html"));
    ASSERT_EQ(f->c.code, 0);
    {
        hf_resp r;
        const char *p = f->c.got, *end = f->c.got + f->c.len;
        ASSERT(hf_next(&p, end, &r) && r.status == 200);
        ASSERT_STR_EQ(hf_header(&r, "Content-Length"), "10");
        p = r.body; /* HEAD: no body follows its length */
        ASSERT(hf_next(&p, end, &r) && r.status == 304);
        p = r.body;
        ASSERT(hf_next(&p, end, &r) && r.status == 404);
        ASSERT(hf_next(&p, end, &r) && r.status == 416);
        ASSERT(hf_next(&p, end, &r) && r.status == 200 && hf_body_is(&r, "<h1>a</h1>"));
        ASSERT(hf_next(&p, end, &r) && r.status == 206 && hf_body_is(&r, "h1"));
        ASSERT(hf_next(&p, end, &r) && r.status == 200 && hf_body_is(&r, "<h1>a</h1>"));
        ASSERT(p == end);
    }
    hf_client_free(&f->c);
} ASYNC_END_DEF

TEST(http_files_every_answer_keeps_the_connection) { HF_RUN(hf_keep_scenario); }

/* ---- no way out of the root ---- */

static const hf_case hf_escape_cases[] = {
    {HF_GET_CLOSE("/s/../secret.txt"), 403, "Forbidden", NULL, NULL},
    {HF_GET_CLOSE("/s/%2e%2e/secret.txt"), 403, "Forbidden", NULL, NULL},
    {HF_GET_CLOSE("/s/%2E%2E/secret.txt"), 403, "Forbidden", NULL, NULL},
    {HF_GET_CLOSE("/s/.%2e/secret.txt"), 403, "Forbidden", NULL, NULL},
    {HF_GET_CLOSE("/s/..%2fsecret.txt"), 403, "Forbidden", NULL, NULL},
    {HF_GET_CLOSE("/s/sub/..%2F..%2Fsecret.txt"), 403, "Forbidden", NULL, NULL},
    {HF_GET_CLOSE("/s/sub/../../secret.txt"), 403, "Forbidden", NULL, NULL},
    {HF_GET_CLOSE("/s/.."), 403, "Forbidden", NULL, NULL},
    {HF_GET_CLOSE("/s/sub/../a.html"), 403, "Forbidden", NULL, NULL}, /* ".." is refused even inside */
    {HF_GET_CLOSE("/s/..%5csecret.txt"), 403, "Forbidden", NULL, NULL},
    {HF_GET_CLOSE("/s/a%5cb"), 403, "Forbidden", NULL, NULL},
    {HF_GET_CLOSE("/s/a%0ab"), 403, "Forbidden", NULL, NULL},
    {HF_GET_CLOSE("/q?p=../secret.txt"), 403, "Forbidden", NULL, NULL},
    {HF_GET_CLOSE("/q?p=%2e%2e/secret.txt"), 403, "Forbidden", NULL, NULL},
    /* symlinks that lead out: refused (403), whether relative or absolute, to a file or a directory */
    {HF_GET_CLOSE("/s/out.txt"), 403, "Forbidden", NULL, NULL},
    {HF_GET_CLOSE("/s/abs-out.txt"), 403, "Forbidden", NULL, NULL},
    {HF_GET_CLOSE("/s/outdir/x.txt"), 403, "Forbidden", NULL, NULL},
    {HF_GET_CLOSE("/s/outdir/"), 403, "Forbidden", NULL, NULL},
    /* symlinks that stay inside: followed */
    {HF_GET_CLOSE("/s/in.html"), 200, "<h1>a</h1>", "Content-Type", "text/html; charset=utf-8"},
    {HF_GET_CLOSE("/s/via.html"), 200, "<h1>a</h1>", NULL, NULL},
    {HF_GET_CLOSE("/s/abs.html"), 200, "<h1>a</h1>", NULL, NULL},
    {HF_GET_CLOSE("/s/insub/"), 200, "sub index", NULL, NULL},
    {HF_GET_CLOSE("/s/insub/index.html"), 200, "sub index", NULL, NULL},
    /* what stays inside in other spellings */
    {HF_GET_CLOSE("/s/./a.html"), 200, "<h1>a</h1>", NULL, NULL},
    {HF_GET_CLOSE("/s//a.html"), 200, "<h1>a</h1>", NULL, NULL},
    {HF_GET_CLOSE("/s/%2e/a.html"), 200, "<h1>a</h1>", NULL, NULL},
    {HF_GET_CLOSE("/s/..a.html"), 404, NULL, NULL, NULL},
};

TEST(http_files_no_path_leaves_the_root) { HF_RUN_CASES(hf_escape_cases); }

/* Takes openat2 away from this process (the test's own) as a seccomp filter of an older container
 * runtime would: the call fails with ENOSYS. */
static void hf_without_openat2(void) {
    struct sock_filter code[4];
    struct sock_fprog prog;
    memset(code, 0, sizeof code);
    code[0].code = BPF_LD | BPF_W | BPF_ABS; /* the call's number */
    code[0].k = offsetof(struct seccomp_data, nr);
    code[1].code = BPF_JMP | BPF_JEQ | BPF_K; /* openat2: the next one, else the one after */
    code[1].k = SYS_openat2;
    code[1].jf = 1;
    code[2].code = BPF_RET | BPF_K;
    code[2].k = SECCOMP_RET_ERRNO | ENOSYS;
    code[3].code = BPF_RET | BPF_K;
    code[3].k = SECCOMP_RET_ALLOW;
    prog.len = 4;
    prog.filter = code;
    ASSERT(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0);
    ASSERT(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0);
    ASSERT(syscall(SYS_openat2, AT_FDCWD, ".", NULL, 0) == -1 && errno == ENOSYS);
}

TEST(http_files_no_path_leaves_the_root_without_openat2) {
    if (test_under_valgrind()) test_skip("valgrind does not run seccomp filters");
    hf_without_openat2();
    HF_RUN_CASES(hf_escape_cases);
}

/* ---- clients that go away ---- */

/* Waits until `cond` holds, a millisecond at a time, within TEST_LONG_MS. */
#define HF_WAIT_FOR(t, f, cond)                                                                        \
    for ((f)->t0 = async_loop_now(async_task_loop(t)); !(cond);) {                                     \
        ASSERT(async_loop_now(async_task_loop(t)) - (f)->t0 < TEST_LONG_MS);                           \
        AWAIT_SLEEP(t, 1);                                                                             \
    }

/* Sends req on *s, a new connection with a 4 KiB receive buffer, and reads at least `want` bytes of the
 * answer; the connection stays open. */
ASYNC_DEF(hf_partial, async_stream *s; const char *req; size_t want; size_t got, n; char buf[4096];) {
    ASSERT_EQ(async_stream_open(f->s, test_connect(hf_port, 4096)), 0);
    ASSERT_EQ(async_stream_write(f->s, f->req, strlen(f->req)), 0);
    AWAIT_STREAM_DRAIN(t, f->s, TEST_LONG_MS);
    while (f->got < f->want) {
        AWAIT_STREAM_READ(t, f->s, f->buf, sizeof f->buf, &f->n, TEST_LONG_MS);
        ASSERT(f->n > 0);
        if (f->got == 0) ASSERT(strncmp(f->buf, "HTTP/1.1 200 OK\r\n", 17) == 0);
        f->got += f->n;
    }
} ASYNC_END_DEF

/* The client reads the head and a little of a large file, then goes: first with a FIN (it stays to see
 * the handler end: the server's watchdog cancels it), then with a reset (the watchdog's cancellation, or
 * the socket's error, whichever comes first). Either way the handler's file is closed (hf_run counts the
 * descriptors). */
ASYNC_DEF(hf_gone_scenario, async_stream s; hf_partial_frame p; hf_client_frame c; async_ms t0;) {
    AWAIT_CALL(t, hf_partial, &f->p, &f->s, HF_GET("/t/big.bin"), 20000);
    shutdown(async_stream_fd(&f->s), SHUT_WR);
    HF_WAIT_FOR(t, f, hf_cleaned == 1);
    ASSERT_EQ(hf_code, ASYNC_ECANCELED);
    async_stream_close(&f->s);
    AWAIT_CALL(t, hf_client, &f->c, HF_GET("/t/big.bin"), 4096, 0, 20000, true);
    ASSERT_EQ(f->c.code, 0);
    ASSERT_EQ(f->c.len, 20000);
    hf_client_free(&f->c);
    HF_WAIT_FOR(t, f, hf_cleaned == 2);
    if (hf_code != ASYNC_ECANCELED && hf_code != ASYNC_EPIPE && hf_code != ASYNC_ECONNRESET)
        test_fail(__FILE__, __LINE__, "the handler ended with %d", hf_code);
} ASYNC_END_DEF

TEST(http_files_a_client_gone_mid_file_ends_the_handler) { HF_RUN(hf_gone_scenario); }

/* The socket breaks under sendfile itself (here the test shuts its sending side while the client, still
 * there, reads nothing): sendfile fails with EPIPE, which raises SIGPIPE, at its default action here
 * (killing the process), unless it is kept from the process. The handler raises ASYNC_EPIPE instead. */
ASYNC_DEF(hf_epipe_scenario, async_stream s; hf_partial_frame p; async_ms t0;) {
    AWAIT_CALL(t, hf_partial, &f->p, &f->s, HF_GET("/t/big.bin"), 20000);
    ASSERT(shutdown(hf_sock, SHUT_WR) == 0);
    HF_WAIT_FOR(t, f, hf_cleaned == 1);
    ASSERT_EQ(hf_code, ASYNC_EPIPE);
    {
        sigset_t pending;
        ASSERT(sigpending(&pending) == 0 && !sigismember(&pending, SIGPIPE));
    }
    async_stream_close(&f->s);
} ASYNC_END_DEF

TEST(http_files_a_socket_broken_mid_body_is_epipe_never_sigpipe) { HF_RUN(hf_epipe_scenario); }

/* A client that stops reading: after hf_ms without progress the handler raises ASYNC_ETIMEDOUT and the
 * connection closes, short of the length its head announced. */
ASYNC_DEF(hf_stall_scenario, async_stream s; hf_partial_frame p; async_ms t0; char buf[4096]; size_t n, got;) {
    hf_ms = 100;
    AWAIT_CALL(t, hf_partial, &f->p, &f->s, HF_GET("/t/big.bin"), 1);
    HF_WAIT_FOR(t, f, hf_cleaned == 1); /* reads nothing meanwhile */
    ASSERT_EQ(hf_code, ASYNC_ETIMEDOUT);
    f->got = f->p.got;
    do { /* then the connection ends, short of the body */
        AWAIT_STREAM_READ(t, &f->s, f->buf, sizeof f->buf, &f->n, TEST_LONG_MS);
        f->got += f->n;
    } while (f->n);
    ASSERT(f->got < HF_BIG);
    async_stream_close(&f->s);
} ASYNC_END_DEF

TEST(http_files_a_client_that_stops_reading_times_out) { HF_RUN(hf_stall_scenario); }

/* ---- curl ---- */

/* Runs a shell command on the loop's thread pool; its exit status. */
static int hf_system(void *arg, intptr_t *result) {
    *result = system((const char *)arg);
    return 0;
}

/* Reads a whole file (the test's own, at most HF_BIG + 1 bytes; none: empty) into a malloc'ed buffer. */
static char *hf_slurp(const char *path, size_t *len) {
    FILE *in = fopen(path, "rb");
    char *buf = (char *)malloc(HF_BIG + 2);
    ASSERT(buf != NULL);
    *len = in ? fread(buf, 1, HF_BIG + 1, in) : 0; /* curl makes no file for an answer without a body */
    buf[*len] = '\0';
    if (in) fclose(in);
    return buf;
}

ASYNC_DEF(hf_curl_scenario, async_thread_call call; char cmd[4 * PATH_MAX]; int i;) {
    static const char *const args[] = {
        "-r 10-19 URL/s/hundred.txt",                          /* a range */
        "-r -4 URL/s/hundred.txt",                             /* the last bytes */
        "-r 200- URL/s/hundred.txt",                           /* past the end */
        "-z 'Sun, 06 Nov 1994 08:49:37 GMT' URL/s/hundred.txt", /* not modified since */
        "-z 'Sat, 05 Nov 1994 08:49:37 GMT' URL/s/hundred.txt", /* modified since */
        "URL/s/big.bin",                                       /* all of it */
        "-I URL/s/a.html",                                     /* HEAD */
        "URL/s/%2e%2e/secret.txt",                             /* a way out */
    };
    for (f->i = 0; f->i < (int)(sizeof args / sizeof args[0]); f->i++) {
        {
            const char *url = strstr(args[f->i], "URL");
            snprintf(f->cmd, sizeof f->cmd, "curl -s -g --max-time 10 -o '%s' -D '%s' %.*shttp://127.0.0.1:%d%s",
                     test_path("curl.body"), test_path("curl.head"), (int)(url - args[f->i]), args[f->i], hf_port,
                     url + 3);
        }
        AWAIT_TO_THREAD(t, &f->call, hf_system, f->cmd, NULL);
        ASSERT_EQ(async_thread_call_result(&f->call), 0);
        {
            size_t hlen, blen;
            char *head = hf_slurp(test_path("curl.head"), &hlen), *body = hf_slurp(test_path("curl.body"), &blen);
            static const char *const status[] = {"206", "206", "416", "304", "200", "200", "200", "403"};
            char line[32];
            snprintf(line, sizeof line, "HTTP/1.1 %s ", status[f->i]);
            if (strncmp(head, line, strlen(line)) != 0)
                test_fail(__FILE__, __LINE__, "curl %s: got\n%s", args[f->i], head);
            if (f->i == 0) ASSERT(blen == 10 && memcmp(body, "0123456789", 10) == 0);
            if (f->i == 1) ASSERT(blen == 4 && memcmp(body, "6789", 4) == 0);
            if (f->i == 2) ASSERT(strstr(head, "Content-Range: bytes */100\r\n") != NULL);
            if (f->i == 3) ASSERT_EQ(blen, 0);
            if (f->i == 4) ASSERT_EQ(blen, 100);
            if (f->i == 5) {
                ASSERT_EQ(blen, HF_BIG);
                hf_check_bytes(body, blen, 0);
            }
            if (f->i == 6) ASSERT(strstr(head, "Content-Length: 10\r\n") != NULL);
            free(head);
            free(body);
        }
        unlink(test_path("curl.body"));
    }
} ASYNC_END_DEF

TEST_TAGGED(http_files_curl_gets_ranges_304_and_whole_files, TEST_THREADS | TEST_WAITS) {
    test_need("curl");
    HF_RUN(hf_curl_scenario);
}

/* ---- the simulated world: the same answers from its files ---- */

/* The names hf_make_tree writes as files (its symlinks are left out: the world has none), and mid.bin. */
static const char *const hf_world_names[] = {
    "www/a.html",  "www/hundred.txt", "www/empty.txt", "www/index.html", "www/sub/index.html", "www/noindex/x.txt",
    "secret.txt",  "outside/x.txt",   "www/b.CSS",     "www/c.js",       "www/d.json",         "www/e.png",
    "www/f.unknown", "www/g",         "www/h.mjs",     "www/i.wasm",     "www/j.svg",          "www/k.woff2",
    "www/mid.bin",
};

/* Copies the real tree's files into the world's file system under the same names. */
static void hf_mirror(async_loop *loop) {
    static char buf[HF_MID + 1];
    size_t i, n;
    for (i = 0; i < sizeof hf_world_names / sizeof hf_world_names[0]; i++) {
        FILE *in = fopen(test_path(hf_world_names[i]), "rb");
        ASSERT(in != NULL);
        n = fread(buf, 1, sizeof buf, in);
        fclose(in);
        ASSERT_EQ(async_sim_file_put(loop, hf_world_names[i], buf, n), 0);
    }
}

/* The world's options for seed: partial sends and receives, a window smaller than most bodies, a
 * bandwidth that makes a large one take many deliveries. */
static async_sim_options hf_world_options(uint64_t seed) {
    async_sim_options o = async_sim_defaults(seed);
    o.partial_pct = 40;
    o.window = 1500;
    o.bandwidth = 3000;
    return o;
}

/* Runs scenario against a server in a new world of options o whose files are the real tree's (made
 * before: hf_make_tree, hf_make_mid), served from the world's names; then checks that the world holds no
 * socket and no open file. Returns the run's hash. */
static uint64_t hf_run_world(async_task *scenario, const async_sim_options *o) {
    static hf_main_frame m;
    async_sim_census c;
    async_loop *loop = async_sim_new(o);
    uint64_t hash;
    ASSERT(loop != NULL);
    hf_mirror(loop);
    snprintf(hf_root, sizeof hf_root, "www"); /* the handlers' names, of the world from now on */
    snprintf(hf_hundred, sizeof hf_hundred, "www/hundred.txt");
    snprintf(hf_missing, sizeof hf_missing, "missing");
    hf_ms = TEST_LONG_MS;
    memset(&m, 0, sizeof m);
    ASSERT_EQ(async_run(loop, ASYNC_CALL(hf_main, &m, scenario)), 0);
    ASSERT_EQ(async_server_connections(&m.http.server), 0);
    ASSERT_EQ(async_sim_census_of(loop, &c), 0);
    ASSERT_EQ(c.sockets, 0);
    ASSERT_EQ(c.files, 0);
    hash = async_sim_hash(loop);
    async_loop_free(loop);
    return hash;
}

/* What hf_collect got for each request: the whole answer, malloc'ed. */
typedef struct hf_got {
    char *text;
    size_t len;
} hf_got;

/* Sends each request of cases[0..n) on a connection of its own, reading its answer a piece of `piece`
 * bytes at a time, and keeps the answers in got[]. */
ASYNC_DEF(hf_collect, const hf_case *cases; size_t n; hf_got *got; size_t piece; size_t i; hf_client_frame c;) {
    for (f->i = 0; f->i < f->n; f->i++) {
        memset(&f->c, 0, sizeof f->c);
        AWAIT_CALL(t, hf_client, &f->c, f->cases[f->i].request, 0, f->piece);
        ASSERT_EQ(f->c.code, 0);
        f->got[f->i].text = f->c.got; /* hf_client's buffer, kept */
        f->got[f->i].len = f->c.len;
    }
} ASYNC_END_DEF

/* The answer a is as case k expects, and the same as b (status, body, the headers that do not depend
 * on the file's time; Last-Modified and ETag there in both or in neither). */
static void hf_same(const hf_case *k, const hf_got *a, const hf_got *b) {
    static const char *const names[] = {"Content-Type", "Content-Length", "Content-Range", "Location", "Allow",
                                        "Accept-Ranges"};
    hf_resp ra, rb;
    const char *pa = a->text, *pb = b->text;
    char va[256];
    size_t i;
    bool ok = hf_next(&pa, a->text + a->len, &ra) && hf_next(&pb, b->text + b->len, &rb) && ra.status == k->status &&
              rb.status == k->status && ra.body_len == rb.body_len && memcmp(ra.body, rb.body, ra.body_len) == 0 &&
              (!k->body || hf_body_is(&ra, k->body)) && (!k->header || strcmp(hf_header(&ra, k->header), k->value) == 0);
    for (i = 0; ok && i < sizeof names / sizeof names[0]; i++) {
        snprintf(va, sizeof va, "%s", hf_header(&ra, names[i]));
        ok = strcmp(va, hf_header(&rb, names[i])) == 0;
    }
    for (i = 0; ok && i < 2; i++) {
        const char *name = i ? "ETag" : "Last-Modified";
        ok = (hf_header(&ra, name)[0] != '\0') == (hf_header(&rb, name)[0] != '\0');
    }
    if (!ok)
        test_fail(__FILE__, __LINE__, "%s\nexpected %d %s\nreal loop:\n%.*s\nworld:\n%.*s", k->request, k->status,
                  k->body ? k->body : "-", (int)a->len, a->text, (int)b->len, b->text);
}

/* The requests answered alike on a real loop and in the world: every status http_files gives, bodies
 * whole and in ranges, HEAD, conditions that do not depend on the file's time. */
static const hf_case hf_world_cases[] = {
    {HF_GET_CLOSE("/s/a.html"), 200, "<h1>a</h1>", "Content-Type", "text/html; charset=utf-8"},
    {HF_GET_CLOSE("/s/b.CSS"), 200, "t", "Content-Type", "text/css; charset=utf-8"},
    {HF_GET_CLOSE("/s/g"), 200, "t", "Content-Type", "application/octet-stream"},
    {HF_GET_CLOSE("/s/hundred.txt"), 200, NULL, "Content-Length", "100"},
    {HF_GET_CLOSE("/s/empty.txt"), 200, "", "Content-Length", "0"},
    {HF_GET_CLOSE("/s/mid.bin"), 200, NULL, "Content-Length", "300001"},
    {HF_GET_WITH("/s/mid.bin", "Range: bytes=123456-\r\n"), 206, NULL, "Content-Range", "bytes 123456-300000/300001"},
    {HF_GET_CLOSE("/s/"), 200, "root index", NULL, NULL},
    {HF_GET_CLOSE("/s/sub/"), 200, "sub index", NULL, NULL},
    {HF_GET_CLOSE("/s/sub/index.html"), 200, "sub index", NULL, NULL},
    {HF_GET_CLOSE("/s/sub"), 301, NULL, "Location", "/s/sub/"},
    {HF_GET_CLOSE("/s/sub?a=1#f"), 301, NULL, "Location", "/s/sub/?a=1"},
    {HF_GET_CLOSE("/s/noindex"), 301, NULL, "Location", "/s/noindex/"},
    {HF_GET_CLOSE("/s/noindex/"), 403, "Forbidden", NULL, NULL},
    {HF_GET_CLOSE("/s/noindex/x.txt"), 200, "x", NULL, NULL},
    {HF_GET_CLOSE("/s/./a.html"), 200, "<h1>a</h1>", NULL, NULL},
    {HF_GET_CLOSE("/s//a.html"), 200, "<h1>a</h1>", NULL, NULL},
    {HF_GET_CLOSE("/s/sub/./index.html"), 200, "sub index", NULL, NULL},
    {HF_GET_CLOSE("/s/nothing.txt"), 404, "Not Found", NULL, NULL},
    {HF_GET_CLOSE("/s/nothing/deeper.txt"), 404, "Not Found", NULL, NULL},
    {HF_GET_CLOSE("/s/a.html/x"), 404, "Not Found", NULL, NULL},
    {HF_GET_CLOSE("/s/a.html/"), 404, "Not Found", NULL, NULL},
    {HF_GET_CLOSE("/s/..a.html"), 404, "Not Found", NULL, NULL},
    {HF_GET_CLOSE("/s/../secret.txt"), 403, "Forbidden", NULL, NULL},
    {HF_GET_CLOSE("/s/%2e%2e/secret.txt"), 403, "Forbidden", NULL, NULL},
    {HF_GET_CLOSE("/s/sub/../a.html"), 403, "Forbidden", NULL, NULL},
    {HF_GET_CLOSE("/s/a%5cb"), 403, "Forbidden", NULL, NULL},
    {HF_GET_CLOSE("/q?p=../secret.txt"), 403, "Forbidden", NULL, NULL},
    {HF_GET_CLOSE("/q?p=sub"), 200, "sub index", NULL, NULL},
    {HF_GET_CLOSE("/q?p=/sub/index.html"), 200, "sub index", NULL, NULL},
    {HF_GET_CLOSE("/one"), 200, NULL, "Content-Type", "text/plain; charset=utf-8"},
    {"POST /s/a.html HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 405,
     "Method Not Allowed", "Allow", "GET, HEAD"},
    {"HEAD /s/hundred.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 200, NULL, "Content-Length", "100"},
    {"HEAD /s/hundred.txt HTTP/1.1\r\nHost: t\r\nRange: bytes=0-1\r\nConnection: close\r\n\r\n", 200, NULL,
     "Content-Length", "100"},
    {HF_GET_WITH("/s/hundred.txt", "Range: bytes=0-9\r\n"), 206, "0123456789", "Content-Range", "bytes 0-9/100"},
    {HF_GET_WITH("/s/hundred.txt", "Range: bytes=-3\r\n"), 206, "789", "Content-Range", "bytes 97-99/100"},
    {HF_GET_WITH("/s/hundred.txt", "Range: bytes=95-\r\n"), 206, "56789", NULL, NULL},
    {HF_GET_WITH("/s/hundred.txt", "Range: bytes=100-\r\n"), 416, NULL, "Content-Range", "bytes */100"},
    {HF_GET_WITH("/s/empty.txt", "Range: bytes=0-\r\n"), 416, NULL, "Content-Range", "bytes */0"},
    {HF_GET_WITH("/s/hundred.txt", "Range: bytes=0-1,5-6\r\n"), 200, NULL, "Content-Length", "100"},
    {HF_GET_WITH("/s/hundred.txt", "Range: bytes=0-1\r\nIf-Range: \"old\"\r\n"), 200, NULL, "Content-Length", "100"},
    {HF_GET_WITH("/s/hundred.txt", "If-Modified-Since: Tue, 01 Jan 2030 00:00:00 GMT\r\n"), 304, "", NULL, NULL},
    {HF_GET_WITH("/s/hundred.txt", "If-Modified-Since: Sun, 06 Nov 1994 08:49:36 GMT\r\n"), 200, NULL, NULL, NULL},
    {HF_GET_WITH("/s/hundred.txt", "If-None-Match: *\r\n"), 304, "", NULL, NULL},
    {HF_GET_WITH("/s/hundred.txt", "If-None-Match: \"other\"\r\n"), 200, NULL, NULL, NULL},
    {HF_GET_CLOSE("/nowhere/a.html"), 500, NULL, NULL, NULL},
};

#define HF_WORLD_N (sizeof hf_world_cases / sizeof hf_world_cases[0])

static void hf_got_free(hf_got *got, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) free(got[i].text);
    memset(got, 0, n * sizeof *got);
}

TEST(http_files_the_world_answers_as_a_real_loop) {
    static hf_got real[HF_WORLD_N], world[HF_WORLD_N];
    static hf_collect_frame c;
    static const size_t pieces[] = {0, 777, 1};
    uint64_t seed;
    size_t i;
    memset(&c, 0, sizeof c);
    hf_run(ASYNC_CALL(hf_collect, &c, hf_world_cases, HF_WORLD_N, real, (size_t)0));
    for (seed = 1; seed <= 3; seed++) { /* partial sends, a small window, readers of all sizes */
        async_sim_options o = hf_world_options(seed);
        memset(&c, 0, sizeof c);
        hf_run_world(ASYNC_CALL(hf_collect, &c, hf_world_cases, HF_WORLD_N, world, pieces[seed - 1]), &o);
        for (i = 0; i < HF_WORLD_N; i++) hf_same(&hf_world_cases[i], &real[i], &world[i]);
        {
            hf_resp r;
            const char *p = world[5].text;
            ASSERT(hf_next(&p, world[5].text + world[5].len, &r) && r.body_len == HF_MID);
            hf_check_bytes(r.body, r.body_len, 0);
        }
        hf_got_free(world, HF_WORLD_N);
    }
    hf_got_free(real, HF_WORLD_N);
}

/* The answer of c (one response) as hf_resp, checked to be there. */
static hf_resp hf_only(const hf_client_frame *c) {
    hf_resp r;
    const char *p = c->got;
    ASSERT_EQ(c->code, 0);
    ASSERT(hf_next(&p, c->got + c->len, &r));
    return r;
}

/* A file's dates in the world are the world's time of day (2000-01-01 plus the virtual clock) at its
 * last change: the validators of a file put at the start, the 304s and the range they allow, and new
 * ones once the file is put again later. */
ASYNC_DEF(hf_world_dates_scenario, hf_client_frame c; int i; char last[64];) {
    static const char *const asks[] = {
        HF_GET_CLOSE("/s/hundred.txt"),
        HF_GET_WITH("/s/hundred.txt", "If-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT\r\n"),
        HF_GET_WITH("/s/hundred.txt", "If-None-Match: \"386d4380-64\"\r\n"),
        HF_GET_WITH("/s/hundred.txt", "Range: bytes=0-1\r\nIf-Range: Sat, 01 Jan 2000 00:00:00 GMT\r\n"),
        HF_GET_WITH("/s/hundred.txt", "Range: bytes=0-1\r\nIf-Range: \"386d4380-64\"\r\n"),
    };
    static const int status[] = {200, 304, 304, 206, 206};
    for (f->i = 0; f->i < 5; f->i++) {
        memset(&f->c, 0, sizeof f->c);
        AWAIT_CALL(t, hf_client, &f->c, asks[f->i]);
        {
            hf_resp r = hf_only(&f->c);
            ASSERT_EQ(r.status, status[f->i]);
            ASSERT_STR_EQ(hf_header(&r, "Last-Modified"), "Sat, 01 Jan 2000 00:00:00 GMT");
            ASSERT_STR_EQ(hf_header(&r, "ETag"), "\"386d4380-64\"");
        }
        hf_client_free(&f->c);
    }
    AWAIT_SLEEP(t, 61000); /* a minute on, the file changes */
    ASSERT_EQ(async_sim_file_put(async_task_loop(t), "www/hundred.txt", "changed", 7), 0);
    memset(&f->c, 0, sizeof f->c);
    AWAIT_CALL(t, hf_client, &f->c, HF_GET_WITH("/s/hundred.txt", "If-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT\r\n"));
    {
        hf_resp r = hf_only(&f->c);
        ASSERT_EQ(r.status, 200);
        ASSERT(hf_body_is(&r, "changed"));
        snprintf(f->last, sizeof f->last, "%s", hf_header(&r, "Last-Modified"));
        ASSERT(strncmp(f->last, "Sat, 01 Jan 2000 00:01:", 23) == 0);
    }
    hf_client_free(&f->c);
} ASYNC_END_DEF

TEST(http_files_the_world_dates_its_files_by_its_clock) {
    static hf_world_dates_scenario_frame s;
    async_sim_options o = hf_world_options(5);
    hf_make_tree();
    memset(&s, 0, sizeof s);
    hf_run_world(ASYNC_CALL(hf_world_dates_scenario, &s), &o);
}

/* The large-ish file whole, through short reads of the world's files, with the answer read back. */
ASYNC_DEF(hf_world_short_scenario, bool fail; hf_client_frame c;) {
    AWAIT_CALL(t, hf_client, &f->c, f->fail ? HF_GET_CLOSE("/s/a.html") : HF_GET_CLOSE("/s/mid.bin"), 0, 4000);
    {
        hf_resp r = hf_only(&f->c);
        if (f->fail) {
            ASSERT_EQ(r.status, 500); /* the open failed (EIO): the server's own error */
        } else {
            ASSERT_EQ(r.status, 200);
            ASSERT_EQ(r.body_len, HF_MID);
            hf_check_bytes(r.body, r.body_len, 0);
        }
    }
    hf_client_free(&f->c);
} ASYNC_END_DEF

TEST(http_files_the_world_replays_a_seed_and_its_file_faults) {
    static hf_collect_frame c;
    static hf_got got[HF_WORLD_N];
    static hf_world_short_scenario_frame s;
    async_sim_options o = hf_world_options(7);
    uint64_t first, second;
    hf_make_tree();
    memset(&c, 0, sizeof c);
    first = hf_run_world(ASYNC_CALL(hf_collect, &c, hf_world_cases, HF_WORLD_N, got, (size_t)1000), &o);
    hf_got_free(got, HF_WORLD_N);
    memset(&c, 0, sizeof c);
    second = hf_run_world(ASYNC_CALL(hf_collect, &c, hf_world_cases, HF_WORLD_N, got, (size_t)1000), &o);
    hf_got_free(got, HF_WORLD_N);
    ASSERT_EQ(first, second);
    o.file_short_pct = 60;
    memset(&s, 0, sizeof s);
    hf_run_world(ASYNC_CALL(hf_world_short_scenario, &s, false), &o);
    o.file_short_pct = 0;
    o.file_error_pct = 100;
    memset(&s, 0, sizeof s);
    hf_run_world(ASYNC_CALL(hf_world_short_scenario, &s, true), &o);
}

/* ---- https: the body copied through the TLS session ---- */

/* curl over https: the large file whole and a range of it, which sendfile would have sent past the
 * session as plain text. */
ASYNC_DEF(hf_https_scenario, async_thread_call call; char cmd[4 * PATH_MAX]; int i;) {
    for (f->i = 0; f->i < 2; f->i++) {
        snprintf(f->cmd, sizeof f->cmd, "curl -s -k --max-time 20 %s -o '%s' https://127.0.0.1:%d/s/big.bin",
                 f->i ? "-r 5000000-" : "", test_path("curl.body"), hf_port);
        AWAIT_TO_THREAD(t, &f->call, hf_system, f->cmd, NULL);
        ASSERT_EQ(async_thread_call_result(&f->call), 0);
        {
            size_t blen;
            char *body = hf_slurp(test_path("curl.body"), &blen);
            ASSERT_EQ(blen, f->i ? HF_BIG - 5000000 : HF_BIG);
            hf_check_bytes(body, blen, f->i ? 5000000 : 0);
            free(body);
        }
        unlink(test_path("curl.body"));
    }
} ASYNC_END_DEF

TEST_TAGGED(http_files_https_copies_the_body_through_the_session, TEST_THREADS | TEST_WAITS) {
    async_tls_opts o = {true, false, NULL, NULL, NULL, "http/1.1"};
    char cmd[2 * PATH_MAX + 256], cert[PATH_MAX], key[PATH_MAX];
    test_need("curl");
    test_need("openssl");
    snprintf(cert, sizeof cert, "%s", test_path("self.pem"));
    snprintf(key, sizeof key, "%s", test_path("self.key"));
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout '%s' -out '%s' "
             "-days 2 -subj /CN=localhost >/dev/null 2>&1",
             key, cert);
    ASSERT_EQ(system(cmd), 0);
    o.cert_file = cert;
    o.key_file = key;
    ASSERT_EQ(async_tls_ctx_new(&hf_tls, &o), 0);
    HF_RUN(hf_https_scenario);
    async_tls_ctx_free(hf_tls);
    hf_tls = NULL;
}
