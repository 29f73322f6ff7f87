/* async/net.h: the network layer of async.h's hosted runtime: fd readiness, TCP streams, servers with a
 * task per connection, a small HTTP/1.1 server and client, and loops on several threads.
 *
 * PROVIDED BY libasync.a, not by ASYNC_IMPLEMENTATION. HTTP is parsed by libhttp-parser: a program that
 * calls the async_http_* functions also links -lhttp_parser (`pkg-config --libs async-http`); one that
 * does not, does not need it. async.h includes this header on hosted builds. */
#ifndef ASYNC_NET_H_INCLUDED
#define ASYNC_NET_H_INCLUDED

#include "async/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* fd readiness, TCP streams (asyncio's open_connection / start_server), a small HTTP/1.1 server and
 * client, and loops on several threads. These waits need a loop that polls the OS: async_loop_new(0),
 * async_main or async_loop_attach (on the virtual clock an fd wait raises ASYNC_ENOTSUP). Deadlines are
 * milliseconds from the start of the operation, int64_t: a negative deadline means none, and one over
 * ASYNC_MS_MAX (2^31-1 ms, 24.8 days: the most the loop's 32-bit clock can time) raises ASYNC_ERANGE at
 * the await instead of being cut short. Errors are raised as
 * ASYNC_E* codes: ASYNC_ETIMEDOUT (deadline), ASYNC_ECONNREFUSED, ASYNC_ECONNRESET and ASYNC_EPIPE (peer),
 * ASYNC_ENODATA (end of stream mid-message), ASYNC_EOVERFLOW (a line over its limit), ASYNC_EBADF (closed
 * stream), other OS errors as their negated errno when the table above has it, else ASYNC_EIO. */

/** Readiness bits of an fd wait. */
enum { ASYNC_IO_READ = 1, ASYNC_IO_WRITE = 2 };

/** One fd wait with an optional deadline, kept in a frame (one per concurrent wait). Zero-initialise it.
 *  It holds a request of the loop's backend in opaque storage (libev: an ev_io and an ev_timer), started
 *  only while a task waits and stopped when the wait ends by readiness, deadline, cancellation or
 *  error. */
typedef struct async_io {
    async_future ready; /* private: the readiness bits, or the error */
    async_loop *loop;   /* private: the loop whose backend runs the request, while started */
    union {
        void *align_p;
        double align_d;
        unsigned char bytes[112];
    } ev; /* private: the backend's request */
} async_io;

/** Waits until fd is readable (or has hung up), at most ms milliseconds (int64_t: ASYNC_ETIMEDOUT;
 *  negative: no deadline; over ASYNC_MS_MAX: ASYNC_ERANGE); w is the frame's async_io. Cancelling the task stops the watcher and raises ASYNC_ECANCELED. ASYNC_EBADF if fd
 *  is not open; ASYNC_EBUSY (the first wait untouched) if another task waits on w. Waits on the same
 *  fd reuse its epoll registration: after closing an fd, zero its async_io (the number may come back as
 *  another socket, which libev would then never register). */
#define AWAIT_READABLE(t, w, fd, ms) \
    ASYNC__AWAIT(t, async__io_start((t), (w), (fd), ASYNC_IO_READ, (ms)), async__io_check((t), (w)))
/** Waits until fd is writable, at most ms milliseconds. */
#define AWAIT_WRITABLE(t, w, fd, ms) \
    ASYNC__AWAIT(t, async__io_start((t), (w), (fd), ASYNC_IO_WRITE, (ms)), async__io_check((t), (w)))
/** The readiness bits (ASYNC_IO_READ | ASYNC_IO_WRITE) the last completed wait on w reported. */
ASYNC_API unsigned async_io_events(const async_io *w);
/** Stops w's watchers if a wait is pending (for a frame abandoned without being resumed). */
ASYNC_API void async_io_stop(async_io *w);

/** A TCP stream (asyncio's StreamReader and StreamWriter in one): an fd, a read buffer and a write
 *  buffer. Zero-initialise it (or async_stream_open an fd). At most one read await and one write or drain
 *  await at a time (two tasks may read and write concurrently; a second reader or drainer gets ASYNC_EBUSY).
 *  async_stream_close frees its buffers. */
typedef struct async_stream {
    int fd;                      /* private: the socket, -1 once closed (0 in a zeroed stream: see flags) */
    int error;                   /* private: a sticky error (reset, broken pipe) */
    unsigned flags;              /* private */
    async_io rio, wio;           /* private: read and write waits */
    char *rbuf;                  /* private: input is rbuf[rpos, rlen) */
    size_t rpos, rlen, rcap;     /* private */
    char *wbuf;                  /* private: output not yet sent is wbuf[wpos, wlen) */
    size_t wpos, wlen, wcap;     /* private */
    async_ms rdeadline, wdeadline; /* private */
    int32_t rms, wms;            /* private: deadline of the pending read / write, -1 none */
    void *op_buf;                /* private: the pending read's arguments and results */
    size_t op_n, op_limit, *op_out;
    const char **op_line;
    const char *op_host;         /* private: the pending connect */
    int op_port;
    void *tls;                   /* private: the TLS session once a handshake started, else NULL */
    void *world;                 /* private: the simulated world whose socket fd is (async/sim.h), else NULL */
} async_stream;

/** Adopts a connected socket (made non-blocking; SIGPIPE suppressed). 0, ASYNC_EINVAL (NULL), ASYNC_EBADF
 *  (fd < 0 or not an open descriptor). The stream owns fd from now on, also on failure. */
ASYNC_API int async_stream_open(async_stream *s, int fd);
/** Closes the socket at once (unsent output is dropped; AWAIT_STREAM_DRAIN first to keep it; a TLS stream
 *  sends its close_notify first when it can without waiting) and frees the buffers; a task waiting on the stream gets ASYNC_EBADF. Safe on a closed or zeroed stream and NULL.
 *  Close streams before their loop is freed (a stream remembers the loop its wait ran on). */
ASYNC_API void async_stream_close(async_stream *s);
/** The socket, or -1 when closed. */
ASYNC_API int async_stream_fd(const async_stream *s);
/** asyncio.open_connection(host, port): connects s to host:port within ms (ASYNC_ETIMEDOUT). host is an
 *  IPv4 or IPv6 literal or "localhost"; other names are resolved by getaddrinfo as a call on the loop's
 *  thread pool, like to_thread (the deadline covers it; a cancelled lookup finishes there and its answer
 *  is dropped; async_loop_free waits for lookups in flight; ASYNC_EAGAIN if the pool cannot start its
 *  threads). ASYNC_ECONNREFUSED, ASYNC_ENETUNREACH, ASYNC_EHOSTUNREACH, ASYNC_ENXIO (unknown name).
 *  host must outlive the await. */
#define AWAIT_STREAM_CONNECT(t, s, host, port, ms)                                                    \
    ASYNC__AWAIT(t, async__stream_connect_start((t), (s), (host), (port), (ms)),                     \
                 async__stream_connect_check((t), (s)))
/** reader.read(cap): reads 1..cap bytes into buf and stores the count in *n (0 at end of stream). */
#define AWAIT_STREAM_READ(t, s, buf, cap, n, ms)                                                      \
    ASYNC__AWAIT(t, async__stream_read_start((t), (s), 0, (buf), (cap), 0, (n), NULL, (ms)),          \
                 async__stream_read_check((t), (s)))
/** reader.readexactly(n): fills buf with exactly n bytes; ASYNC_ENODATA if the stream ends first. */
#define AWAIT_STREAM_READEXACTLY(t, s, buf, n, ms)                                                    \
    ASYNC__AWAIT(t, async__stream_read_start((t), (s), 1, (buf), (n), 0, NULL, NULL, (ms)),           \
                 async__stream_read_check((t), (s)))
/** reader.readline(): *line points at the next line in the stream's buffer, '\n' included, *len its
 *  length (valid until the next read). At the end of the stream the rest is returned without '\n', and
 *  *len is 0 once nothing is left. ASYNC_EOVERFLOW if no '\n' comes within `limit` bytes. */
#define AWAIT_STREAM_READLINE(t, s, line, len, limit, ms)                                             \
    ASYNC__AWAIT(t, async__stream_read_start((t), (s), 2, NULL, 0, (limit), (len), (line), (ms)),     \
                 async__stream_read_check((t), (s)))
/** Reads more input into the stream's own buffer (up to `limit` bytes buffered in all); *n is the count
 *  read, 0 at end of stream. For parsers that work in place: see async_stream_peek/_consume. */
#define AWAIT_STREAM_FILL(t, s, limit, n, ms)                                                         \
    ASYNC__AWAIT(t, async__stream_read_start((t), (s), 3, NULL, 0, (limit), (n), NULL, (ms)),         \
                 async__stream_read_check((t), (s)))
/** The input buffered and not consumed yet; *len gets its length. */
ASYNC_API const char *async_stream_peek(const async_stream *s, size_t *len);
/** Drops the first n buffered input bytes (at most what is buffered). */
ASYNC_API void async_stream_consume(async_stream *s, size_t n);
/** writer.write(data): sends what the socket takes now and buffers the rest (no await). 0, ASYNC_EINVAL,
 *  ASYNC_ENOMEM, ASYNC_EBADF (closed), or the stream's sticky error (ASYNC_EPIPE, ASYNC_ECONNRESET). */
ASYNC_API int async_stream_write(async_stream *s, const void *data, size_t n);
/** Bytes written and not yet handed to the kernel. */
ASYNC_API size_t async_stream_pending(const async_stream *s);
/** await writer.drain(): waits until every buffered byte is handed to the kernel (asyncio stops at its
 *  low-water mark; this waits for all of it), at most ms. Raises the stream's error, if any. */
#define AWAIT_STREAM_DRAIN(t, s, ms) \
    ASYNC__AWAIT(t, async__stream_drain_start((t), (s), (ms)), async__stream_drain_check((t), (s)))

/* ---- TLS over a stream (OpenSSL's libssl, provided by tls.c: a program that starts TLS links -lssl
 * -lcrypto, which `pkg-config --libs async-http` gives; one that does not, does not need them) ----
 *
 *     async_tls_ctx_new(&ctx, NULL);                            (a client: the system's CAs, verification on)
 *     AWAIT_STREAM_CONNECT(t, &f->s, "example.org", 443, 5000);
 *     AWAIT_STREAM_TLS_CONNECT(t, &f->s, ctx, "example.org", 5000);
 *     async_stream_write(&f->s, ...);  AWAIT_STREAM_READLINE(t, &f->s, ...);   (as on any stream)
 *
 * After the handshake every read, write and drain of the stream goes through TLS, never blocking the loop
 * (TLS reads that must write, and writes that must read, wait for what they need). TLS 1.2 or later. A
 * handshake that fails, times out or is cancelled closes the stream (nothing could be said on it any
 * more). The end of the stream without the peer's close_notify is taken as its end, as HTTP/1.1 clients
 * do (a body framed by the close could then be cut short unnoticed). Certificate errors raise ASYNC_ECERT
 * with what failed ("TLS certificate verify failed: self-signed certificate", "...: host name
 * mismatch"); other handshake failures ASYNC_EPROTO with what the peer or the library said ("TLS
 * handshake failed: the peer is not speaking TLS"), ASYNC_ENODATA when the peer closes mid-handshake,
 * ASYNC_ETIMEDOUT at the deadline. After the handshake a TLS error is the stream's sticky ASYNC_EPROTO. */

/** TLS settings, shared by the streams of one side: a client's (which CAs it trusts, whether it verifies,
 *  the ALPN protocols it offers) or a server's (its certificate and key, the protocols it accepts). Made
 *  by async_tls_ctx_new; it must outlive the handshakes that use it (streams already connected do not
 *  need it). Usable from several threads at once. */
typedef struct async_tls_ctx async_tls_ctx;

/** What async_tls_ctx_new makes. A zeroed one (or NULL) is a client that verifies its peers against the
 *  system's CA store. */
typedef struct async_tls_opts {
    bool server;           /**< a server's context: cert_file and key_file are required */
    bool no_verify;        /**< a client that does not verify the server (its certificate and name): an
                                explicit choice, for tests and private networks */
    const char *ca_file;   /**< PEM file of the CAs a client trusts instead of the system's store (OpenSSL's
                                default paths, which SSL_CERT_FILE and SSL_CERT_DIR override) */
    const char *cert_file; /**< PEM certificate chain of a server (its own first) */
    const char *key_file;  /**< PEM private key of cert_file's certificate */
    const char *alpn;      /**< ALPN protocols, comma-separated ("h2,http/1.1"), or NULL: none. A client
                                offers them; a server picks its first one that the client offers (a
                                client offering none of them goes on without ALPN) */
} async_tls_opts;

/** Makes a TLS context from opts (NULL: a verifying client). 0 with *ctx set; ASYNC_EINVAL (NULL ctx, a
 *  server without cert_file or key_file, a bad ALPN list, a file that is not PEM of the right kind, a key
 *  that does not match the certificate); ASYNC_ENOENT / ASYNC_EACCES (a file that cannot be read);
 *  ASYNC_ENOMEM. */
ASYNC_API int async_tls_ctx_new(async_tls_ctx **ctx, const async_tls_opts *opts);
/** Frees a context (NULL: nothing). Streams connected with it go on. */
ASYNC_API void async_tls_ctx_free(async_tls_ctx *ctx);
/** The client's TLS handshake on connected stream s, within ms (int64_t; negative: none; ASYNC_ETIMEDOUT).
 *  host is sent as SNI (unless it is an IP literal) and is what the server's certificate must name (a DNS
 *  name or an IP address); it may be NULL only with a no_verify context. Raises ASYNC_EINVAL (NULL s or
 *  ctx, a server's ctx, no host), ASYNC_EBADF (s not open), ASYNC_EBUSY (a read or drain awaited, output
 *  not sent yet, or TLS already started), ASYNC_EPROTO (input already buffered: it would precede the
 *  handshake), ASYNC_ERANGE (ms over ASYNC_MS_MAX), then the errors above. host must outlive the await. */
#define AWAIT_STREAM_TLS_CONNECT(t, s, ctx, host, ms)                                                 \
    ASYNC__AWAIT(t, async__stream_tls_start((t), (s), (ctx), (host), false, (ms)),                   \
                 async__stream_tls_check((t), (s)))
/** The server's TLS handshake on accepted stream s with a server's ctx, within ms; errors as for
 *  AWAIT_STREAM_TLS_CONNECT (a client's ctx: ASYNC_EINVAL). */
#define AWAIT_STREAM_TLS_ACCEPT(t, s, ctx, ms)                                                        \
    ASYNC__AWAIT(t, async__stream_tls_start((t), (s), (ctx), NULL, true, (ms)),                      \
                 async__stream_tls_check((t), (s)))
/** The ALPN protocol agreed in s's handshake ("http/1.1"), "" if none, NULL if s does not speak TLS. */
ASYNC_API const char *async_stream_tls_alpn(const async_stream *s);

/** Builds a connection's task: called by the server for each accepted connection with zeroed memory of
 *  the server's frame_size, the connection's stream (owned and closed by the server once the task has
 *  ended) and the server's arg. Returns the task to run (normally frame's header), NULL to refuse. */
typedef async_task *(*async_conn_fn)(void *frame, async_stream *s, void *arg);

/** Flags of async_server_listen. */
enum {
    ASYNC_SERVER_REUSEPORT = 1 /**< SO_REUSEPORT: several loops (threads) listen on one port */
};

/** asyncio.start_server: a listening socket and a task per connection. Zero-initialise it. Connections
 *  live in memory the server allocates (the conn frame plus its stream); a connection that cannot get
 *  memory is closed at once and the server goes on (counted in `refused`). */
typedef struct async_server {
    async_task task;        /* private: the accept loop (async_server_serve) */
    int fd;                 /* private: the listening socket, -1 when closed */
    int port;               /* private */
    async_io accept;        /* private */
    size_t frame_size;      /* private */
    async_conn_fn fn;       /* private */
    void *arg;              /* private */
    void *live, *zombies;   /* private: running connections; ended ones not yet freed */
    void *pool;             /* private: blocks of ended connections kept for new ones */
    size_t npool;           /* private */
    size_t nlive;           /* private */
    int32_t grace_ms;       /* private: -1 none */
    bool closing;           /* private */
    async_future idle;      /* private: completed when the last connection ends after close */
    const async_error *error; /* private: why the accept loop stopped, if not closed */
    async_task waiter;      /* private: awaits `idle` under the grace deadline */
    async_timeout grace;    /* private */
    union {
        void *align_p;
        unsigned char bytes[40];
    } reaper;               /* private: a call deferred to the pass's end that frees ended connections */
    void *tls;              /* private: the TLS context of async_server_tls, or NULL */
    int32_t tls_ms;         /* private: its handshake's deadline */
    int (*tls_start)(async_task *, async_stream *, async_tls_ctx *, const char *, bool, int64_t); /* private */
    int (*tls_check)(async_task *, async_stream *); /* private: tls.c's, so plain servers link no libssl */
    unsigned long accepted; /**< connections accepted so far (read-only) */
    unsigned long refused;  /**< connections closed at once for lack of memory or by fn (read-only) */
    unsigned long tls_failed; /**< connections closed because their TLS handshake failed (read-only) */
    void *world;            /* private: the simulated world whose listener fd is (async/sim.h), else NULL */
} async_server;

/** Binds host:port (IPv4 or IPv6 literal, "localhost", or NULL for every IPv4 address; port 0 picks a
 *  free port) and listens. Each accepted connection gets zeroed memory of frame_size bytes and the task
 *  fn returns is spawned on the loop. 0, ASYNC_EINVAL, ASYNC_EADDRINUSE, ASYNC_EACCES, ASYNC_EMFILE, ... */
ASYNC_API int async_server_listen(async_server *srv, const char *host, int port, unsigned flags,
                                  size_t frame_size, async_conn_fn fn, void *arg);
/** Makes the server speak TLS: each accepted connection's handshake (AWAIT_STREAM_TLS_ACCEPT with ctx, a
 *  server's context, within handshake_ms) runs before its task starts, which then reads and writes its
 *  stream as usual; a connection whose handshake fails (or times out) is closed and counted in
 *  `tls_failed`. Call it after async_server_listen and before serving; ctx must outlive the server.
 *  0, ASYNC_EINVAL (NULL, a client's context, the server already serving), ASYNC_ERANGE (handshake_ms
 *  over ASYNC_MS_MAX; negative: no deadline). Provided by tls.c: a program that calls it links -lssl. */
ASYNC_API int async_server_tls(async_server *srv, async_tls_ctx *ctx, int64_t handshake_ms);
/** The port the server listens on (the one picked when it was asked for port 0). */
ASYNC_API int async_server_port(const async_server *srv);
/** server.serve_forever(): the accept loop, to AWAIT or spawn. It ends after async_server_close once
 *  every connection has ended (connections still running at the grace deadline are cancelled). Cancelling
 *  it is a close with no grace: connections are cancelled, awaited, and ASYNC_ECANCELED is raised. */
ASYNC_API async_task *async_server_serve(async_server *srv);
/** Stops accepting (closes the listening socket) and lets the running connections finish; after grace_ms
 *  (negative, or over ASYNC_MS_MAX, which the loop's clock cannot time: no limit) the remaining ones are
 *  cancelled. Callable from any task of the server's loop, including a connection's own. */
ASYNC_API void async_server_close(async_server *srv, int64_t grace_ms);
/** True once async_server_close was called: connection handlers end at their next message boundary. */
ASYNC_API bool async_server_closing(const async_server *srv);
/** Connections running now. */
ASYNC_API size_t async_server_connections(const async_server *srv);
/** Marks the connection of stream s as idle (between messages) or busy; async_server_close cancels idle
 *  connections at once instead of waiting for them. */
ASYNC_API void async_stream_set_idle(async_stream *s, bool idle);

/* ---- the HTTP/1.1 server: handlers are coroutines ----
 *
 *     ASYNC_HTTP_DEF(hello) {                                  // async def hello(request):
 *         AWAIT_SLEEP(t, 10);                                  //     await asyncio.sleep(0.01)
 *         async_http_response_text(f->res, 200, "hello");      //     return web.Response(text="hello")
 *     } ASYNC_END_DEF
 *
 *     static const async_http_route routes[] = {              // app.router.add_get("/", hello)
 *         ASYNC_HTTP_ROUTE("GET", "/", hello), ASYNC_HTTP_ROUTES_END};
 *     async_http_server_listen(&server, "127.0.0.1", 8080, 0, NULL, routes, NULL);
 *
 * Each connection answers its requests one at a time and in order (pipelined ones wait in its buffer),
 * so a handler that awaits never reorders the answers; other connections run meanwhile. A handler's frame
 * lives in its connection's memory (the server sizes it for the largest route), is zeroed before each
 * request, and is cancelled when the client goes away (end of stream or reset while the handler runs) or
 * when the server closes and its grace runs out; its finally blocks run. Its response is sent when it
 * returns, unless it streamed one (async_http_response_write). An error raised by a handler becomes a 500
 * (or ends a response already under way) and closes the connection. */

/** One request as the HTTP server hands it to its handler; pointers valid until the handler returns. */
typedef struct async_http_request {
    const char *method;  /**< "GET", "POST", ... */
    const char *target;  /**< the request target as sent ("/a%20b?x=1") */
    const char *path;    /**< the target's path, percent-decoded ("/a b") */
    const char *query;   /**< the raw query after '?' ("x=1"), "" if none: see async_http_request_query */
    int version_minor;   /**< 1 for HTTP/1.1, 0 for HTTP/1.0 */
    size_t nheaders;     /**< header fields, in order: names[i]: values[i] */
    const char *const *names;
    const char *const *values;
    const char *body;    /**< the body (chunked bodies de-chunked), body_len bytes, NUL-terminated */
    size_t body_len;
    void *arg;           /**< the server's arg (aiohttp's request.app) */
    void *conn;          /* private: the connection */
} async_http_request;

/** The response a handler fills in. Zeroed before each request; status 0 means 200. */
typedef struct async_http_response {
    int status;               /**< status code (100..999); the reason phrase is the registered one */
    const char *content_type; /**< NULL: "text/plain; charset=utf-8" */
    const void *body;         /**< body_len bytes, sent when the handler returns: must live until then */
    size_t body_len;
    bool close;               /**< close the connection after this response */
    void *conn;               /* private: the connection */
} async_http_response;

/** The frame a handler coroutine begins with (ASYNC_HTTP_DEF puts these fields first). */
typedef struct async_http_frame {
    async_task task;
    async_http_request *req;
    async_http_response *res;
} async_http_frame;

/** Defines a handler coroutine `name`: ASYNC_DEF(name, async_http_request *req; async_http_response
 *  *res; fields...). In its body f->req is the request and f->res the response; the other fields are
 *  zeroed before each request. Give it to the server with ASYNC_HTTP_ROUTE. */
#define ASYNC_HTTP_DEF(...) ASYNC__CAT(ASYNC__HTTP_DEF, ASYNC__HAS_COMMA(__VA_ARGS__))(__VA_ARGS__)
#define ASYNC__HTTP_DEF0(name) ASYNC_DEF(name, async_http_request *req; async_http_response *res;)
#define ASYNC__HTTP_DEF1(name, ...) ASYNC_DEF(name, async_http_request *req; async_http_response *res; __VA_ARGS__)

/** One route: a method and a path pattern, and the handler coroutine for them. */
typedef struct async_http_route {
    const char *method;  /**< "GET", "POST", ...; NULL: any method. A GET route also answers HEAD. */
    const char *pattern; /**< "/users/{id}": literal segments, {name} for one segment, and a last
                              {name...} for the rest of the path (possibly empty); NULL: every path */
    async_fn fn;         /**< the handler's coroutine (ASYNC_HTTP_ROUTE fills fn and frame_size) */
    size_t frame_size;   /**< its frame's size */
    unsigned flags;      /**< ASYNC_HTTP_READ_BODY, or 0 */
} async_http_route;

/** A route's flag: the handler starts as soon as the request's head has arrived and reads the body itself
 *  with AWAIT_HTTP_REQUEST_READ, as it comes (req->body is then empty). Without it the server reads the whole
 *  body first (up to max_body). */
enum { ASYNC_HTTP_READ_BODY = 1 };

/** A route to the handler defined by ASYNC_HTTP_DEF(name): {method, pattern, name's function, its frame
 *  size}. A frame that does not begin as async_http_frame does is a build error. */
#define ASYNC_HTTP_ROUTE(method, pattern, name) ASYNC_HTTP_ROUTE_FLAGS(method, pattern, name, 0)
/** ASYNC_HTTP_ROUTE with flags (ASYNC_HTTP_READ_BODY). */
#define ASYNC_HTTP_ROUTE_FLAGS(method, pattern, name, flags)                                          \
    {(method), (pattern), name##_run,                                                                 \
     sizeof(name##_frame) +                                                                           \
         0 * sizeof(char[offsetof(name##_frame, res) == offsetof(async_http_frame, res) ? 1 : -1]),  \
     (flags)}
/** Ends a route table. */
#define ASYNC_HTTP_ROUTES_END {NULL, NULL, NULL, 0, 0}

/** The value of header `name` (case-insensitive; the first of repeated ones) in req, or NULL. */
ASYNC_API const char *async_http_request_header(const async_http_request *req, const char *name);
/** The value of path parameter `name` of the route that matched ({name} in its pattern), percent-decoded,
 *  or NULL. */
ASYNC_API const char *async_http_request_param(const async_http_request *req, const char *name);
/** The value of query parameter `name` ("?a=1&b=x%20y": "1", "x y"; '+' is a space), decoded, the first
 *  of repeated ones; "" for a name without '='; NULL if absent (or if memory for the decoded query ran
 *  out). */
ASYNC_API const char *async_http_request_query(const async_http_request *req, const char *name);
/** The client's address: "127.0.0.1:54321" or "[::1]:54321" ("" if the socket cannot tell). */
ASYNC_API const char *async_http_request_peer(const async_http_request *req);

/** Reads the next piece of the request's body into buf (cap bytes): *n (a size_t *) gets its length, 0
 *  at the body's end. For a route with ASYNC_HTTP_READ_BODY the bytes come from the connection as they
 *  arrive (chunked bodies de-chunked); for other routes from the body the server already read. The
 *  request's deadline (limits.request_ms) and ms (negative: none) bound each wait. ASYNC_EMSGSIZE past
 *  limits.max_body (the server answers 413 if the handler lets it through before answering), ASYNC_EPROTO
 *  for a malformed body, ASYNC_ENODATA if the client closes first, ASYNC_ETIMEDOUT, ASYNC_EINVAL (NULL,
 *  cap 0), ASYNC_EBUSY (a read already runs). A handler that returns before the end of a streamed body
 *  ends its connection after the answer. */
#define AWAIT_HTTP_REQUEST_READ(t, req, buf, cap, n, ms)                                                 \
    ASYNC__AWAIT(t, async__await_start((t), async__http_body_read((req), (buf), (cap), (n), (ms))),   \
                 async__await_check((t), async__http_body_task(req)))

/** Adds the header line "name: value" to the response. ASYNC_EINVAL: NULL, a name that is not an HTTP
 *  token, a value with CR, LF or NUL (refused, never sent), or a header the server sets itself
 *  (Content-Length, Transfer-Encoding, Connection, Date); ASYNC_EBUSY once the head has been sent
 *  (after async_http_response_write); ASYNC_ENOMEM. "Content-Length: N" set before a streamed response
 *  is the exception: the response is then sent with that length instead of chunked. */
ASYNC_API int async_http_response_header(async_http_response *res, const char *name, const char *value);
/** Sets status, "text/plain; charset=utf-8" and body (text, which must live until the handler returns).
 *  ASYNC_EINVAL for NULL or a status outside 100..999. */
ASYNC_API int async_http_response_text(async_http_response *res, int status, const char *text);
/** Sets status, "application/json" and body (json, which must live until the handler returns). */
ASYNC_API int async_http_response_json(async_http_response *res, int status, const char *json);
/** Streams the response: the first call sends the head (status, content type and headers as set so far;
 *  chunked transfer encoding for HTTP/1.1, a close-delimited body for HTTP/1.0, or the Content-Length the
 *  handler set), then data as one chunk. Data is handed to the kernel at once as far as it takes it;
 *  the rest is buffered: AWAIT_HTTP_DRAIN waits for it (back-pressure). The response ends when the
 *  handler returns. n == 0 only sends the head. 0, ASYNC_EINVAL, ASYNC_EMSGSIZE (more than the
 *  Content-Length set), ASYNC_EBADF (the connection was taken by async_http_response_upgrade),
 *  ASYNC_EPIPE / ASYNC_ECONNRESET (the client went away), ASYNC_ENOMEM. Body bytes of a HEAD request
 *  are dropped. */
ASYNC_API int async_http_response_write(async_http_response *res, const void *data, size_t n);
/** Waits until what async_http_response_write buffered is handed to the kernel, at most ms
 *  (AWAIT_STREAM_DRAIN on the connection). */
#define AWAIT_HTTP_DRAIN(t, res, ms) AWAIT_STREAM_DRAIN(t, async__http_stream(res), ms)
/** Takes the connection over (for an Upgrade: WebSocket): returns its stream, on which the server writes
 *  nothing more (the handler writes the 101 response itself) and which it closes when the handler ends.
 *  Input the client sent after the request is in the stream's buffer. NULL if the head of a response has
 *  already been sent (or res is NULL). */
ASYNC_API async_stream *async_http_response_upgrade(async_http_response *res);

/** Limits of the HTTP server (0 in a field means its default). Over-long request lines get 414, too many
 *  or too large header fields 431, a body over max_body 413, malformed input 400, a version other than
 *  HTTP/1.x 505 (HTTP/0.9: 400); the connection is then closed. A time over ASYNC_MS_MAX makes
 *  async_http_server_listen fail with ASYNC_ERANGE. */
typedef struct async_http_limits {
    size_t max_request_line; /**< method + target + version; default 8 KiB */
    size_t max_header_bytes; /**< all header fields together; default 64 KiB (long Cookie headers fit) */
    size_t max_headers;      /**< number of header fields; default 256 */
    size_t max_body;         /**< default 1 MiB */
    int64_t idle_ms;         /**< keep-alive connection idle before close; default 30 s */
    int64_t request_ms;      /**< a whole request (head and body) must arrive within it; default 10 s */
    int64_t linger_ms;       /**< after a refused request, how long what the client still sends is read and
                                  dropped before the close (so that a reset does not destroy the answer);
                                  default 1 s */
} async_http_limits;

/** An HTTP/1.1 server (keep-alive, pipelining, limits, routes) on an async_server. Zero-initialise it. */
typedef struct async_http_server {
    async_server server;              /* private */
    const async_http_route *routes;   /* private */
    size_t frame_size;                /* private: the largest route frame, rounded up */
    void *arg;                        /* private */
    async_http_limits limits;         /* private */
    bool stream_routes;               /* private: a route has ASYNC_HTTP_READ_BODY */
    long date_sec;                    /* private: the second `date` was made for */
    char date[64];                    /* private: "Date: ...\r\n" */
} async_http_server;

/** Listens on host:port (see async_server_listen) and answers each request with the first route of
 *  `routes` (ended by ASYNC_HTTP_ROUTES_END; the table must outlive the server) whose method and pattern
 *  match: 404 if no pattern matches the path, 405 (with Allow) if none of those takes the method, 501 for
 *  a CONNECT no route names. limits may be NULL (defaults). arg is given to every handler as req->arg.
 *  0, ASYNC_EINVAL (NULL, a route without a function or with a pattern that does not begin with '/'),
 *  ASYNC_ERANGE (a time in limits over ASYNC_MS_MAX), or async_server_listen's errors. */
ASYNC_API int async_http_server_listen(async_http_server *hs, const char *host, int port, unsigned flags,
                                       const async_http_limits *limits, const async_http_route *routes,
                                       void *arg);
/** https: the server's connections speak TLS with ctx (a server's context, with ALPN "http/1.1" if
 *  clients are to be told), the handshake within the limits' request_ms (async_server_tls). */
ASYNC_API int async_http_server_tls(async_http_server *hs, async_tls_ctx *ctx);
/** The accept loop to AWAIT or spawn (async_server_serve). */
ASYNC_API async_task *async_http_server_serve(async_http_server *hs);
/** Graceful shutdown: stop accepting, close idle keep-alive connections, finish the requests in flight
 *  (answered with "Connection: close"), cancel what still runs after grace_ms (negative or over
 *  ASYNC_MS_MAX: no limit, as async_server_close). */
ASYNC_API void async_http_server_close(async_http_server *hs, int64_t grace_ms);
/** The port the server listens on. */
ASYNC_API int async_http_server_port(const async_http_server *hs);

/* ---- files: one file, or a directory of static files, answered by a handler (http_files.c) ----
 *
 *     ASYNC_HTTP_STATIC(assets, "public")                      // app.router.add_static("/static", "public")
 *     static const async_http_route routes[] = {
 *         ASYNC_HTTP_ROUTE("GET", "/static/{path...}", assets), ASYNC_HTTP_ROUTES_END};
 *
 * or, inside a handler of one's own (a field `async_http_file file;` in its frame):
 *
 *     AWAIT_HTTP_FILE(t, &f->file, f->req, f->res, "report.pdf", 30000);
 *
 * The body goes from the file to the socket with sendfile(2): the file is never read into memory, and
 * the loop never blocks on the client (on EAGAIN the task waits for the socket). Over TLS, and in the
 * simulated world (async/sim.h: its files, dated by its clock), it is read 16 KiB at a time and written
 * through the stream instead. Opening and fstat run
 * on the loop's thread: for local files they take microseconds (a network file system that stalls
 * would stall the loop; serve such trees from a thread of their own). What is answered:
 *   - 200 with the whole file; Content-Type from the name's extension (async_http_content_type),
 *     Last-Modified, a strong ETag made of the size and the modification time, Accept-Ranges: bytes,
 *     Content-Length; HEAD gets the same head and no body.
 *   - 304 (no body) when If-None-Match names the ETag (or is *), or, without If-None-Match, when the
 *     file has not changed since If-Modified-Since (the three date forms of RFC 9110 5.6.7).
 *   - 206 with Content-Range for one range of a GET: "bytes=a-b", "a-" or "-n" (If-Range honoured:
 *     a range is served only while the ETag or the date it gives still holds); 416, with a
 *     Content-Range that gives the size, when the range begins past the end. Several ranges, or a
 *     Range that does not parse, get the whole file (200), which RFC 9110 14.2 allows.
 *   - 403 for what is refused (see below), and for a directory without index.html; 404 for a path
 *     that does not exist; 405 (Allow: GET, HEAD) for other methods. A directory is answered with its
 *     index.html; one that the request's own path names without its final '/' (a static route,
 *     not a path the handler chose) is first redirected there (301 with Location: the target with a
 *     '/' before its query), so that the index's relative links resolve inside it. Other errors (the
 *     root missing, EMFILE, ...) are raised: the server answers 500.
 * A body that the client stops reading for `ms` milliseconds (int64_t; negative: no limit) raises
 * ASYNC_ETIMEDOUT; the client going away raises ASYNC_EPIPE / ASYNC_ECONNRESET, or cancels the handler
 * (the server's watchdog): either way the file is closed and the connection with it, so a client never
 * takes a cut body for whole. A file that shrinks while it is sent raises ASYNC_EIO, likewise. A body
 * sent whole keeps the connection for the next request, as answers without one (HEAD, 304, 403, 404,
 * 416, ...) do.
 *
 * No path escapes the root of ASYNC_HTTP_STATIC / AWAIT_HTTP_STATIC: the path (already percent-decoded
 * by the server, so "%2e%2e" arrives as "..") is refused with 403 if a segment is "..", or it holds a
 * backslash or a control character; it is then opened beneath the root with openat2(RESOLVE_BENEATH)
 * (Linux 5.6 and later), which refuses symlinks that lead out of the root (403) and follows those that
 * stay inside it. Where openat2 is missing (ENOSYS), and for an absolute symlink (which openat2 refuses
 * even when it points inside), the file is opened without reading it (O_NONBLOCK, so a FIFO cannot
 * block) and the path it really has (/proc/self/fd) must lie under the root's real path, else 403 (so
 * without /proc only what openat2 allows is served). Dotfiles are served like other files. */

/** The serving of one file, kept in the frame of the handler that awaits it (one per concurrent await).
 *  Zero-initialise it (a handler's frame is). After the await, `status` says what was answered. */
typedef struct async_http_file {
    async_task task;                 /* private: the coroutine that answers */
    async_http_request *req;         /* private */
    async_http_response *res;        /* private */
    const char *root, *path;         /* private */
    int64_t ms;                      /* private: longest wait for the client, -1 none */
    int err;                         /* private: what the first step raises (a bad argument) */
    int fd;                          /* private: the open file, -1 none */
    unsigned long long off, left;    /* private: the part of the file still to send */
    unsigned long long burst;        /* private: bytes sent since the task last let others run */
    async_io io;                     /* private: the wait for the socket */
    int status;                      /**< the status answered (read-only) */
    unsigned long long sent;         /**< body bytes handed to the kernel (read-only) */
} async_http_file;

/** How long the handler ASYNC_HTTP_STATIC defines waits for a client that reads nothing, in ms. */
#define ASYNC_HTTP_FILE_MS 30000

/** Answers the request with the file at `path` (a path of the server's file system, used as it is:
 *  the handler chose it, so symlinks are followed and ".." is not refused), as the section above says;
 *  file is an async_http_file in the handler's frame, req and res the handler's f->req and f->res, ms
 *  the longest wait for the client to take more (int64_t; negative: none; over ASYNC_MS_MAX:
 *  ASYNC_ERANGE). path must outlive the await. ASYNC_EINVAL for NULL arguments; ASYNC_EBUSY if the
 *  response's head was already sent. */
#define AWAIT_HTTP_FILE(t, file, req, res, path, ms)                                                  \
    ASYNC__AWAIT(t, async__await_start((t), async__http_file((file), (req), (res), (path), (ms))),       \
                 async__await_check((t), &(file)->task))
/** Answers the request with the file at `path` beneath the directory `root` (path relative to it; a
 *  leading '/' is allowed; NULL: the route's {path...} parameter, or the request's path when the route
 *  has none); nothing outside root is ever opened or served (see above). Otherwise as AWAIT_HTTP_FILE. */
#define AWAIT_HTTP_STATIC(t, file, req, res, root, path, ms)                                          \
    ASYNC__AWAIT(t, async__await_start((t), async__http_static((file), (req), (res), (root), (path), (ms))), \
                 async__await_check((t), &(file)->task))
/** Defines the handler coroutine `name` that serves the directory `root` (a string, evaluated at each
 *  request: a literal, or a variable set before the server starts): route it with a pattern that ends
 *  in {path...}, such as ASYNC_HTTP_ROUTE("GET", "/static/{path...}", name), or ASYNC_HTTP_ROUTE("GET",
 *  NULL, name) to serve the whole tree at "/". A client that reads nothing for ASYNC_HTTP_FILE_MS is
 *  cut off. */
#define ASYNC_HTTP_STATIC(name, root)                                                                 \
    ASYNC_HTTP_DEF(name, async_http_file file;) {                                                     \
        AWAIT_HTTP_STATIC(t, &f->file, f->req, f->res, (root), NULL, ASYNC_HTTP_FILE_MS);             \
    }                                                                                                 \
    ASYNC_END_DEF

/** The Content-Type for a file name, from its extension (case-insensitive): text types with
 *  "; charset=utf-8" (html, css, js, mjs, json, txt, csv, md, xml, svg), images (png, jpg, jpeg, gif,
 *  webp, avif, ico, bmp), fonts (woff, woff2, ttf, otf), wasm, pdf, zip, gz, tar, mp4, webm, mp3,
 *  ogg, wav, ...; "application/octet-stream" for the others and for NULL. A static string. */
ASYNC_API const char *async_http_content_type(const char *name);

/* private helpers of the file macros */
ASYNC_API async_task *async__http_file(async_http_file *file, async_http_request *req, async_http_response *res,
                                       const char *path, int64_t ms);
ASYNC_API async_task *async__http_static(async_http_file *file, async_http_request *req, async_http_response *res,
                                         const char *root, const char *path, int64_t ms);

/** A small HTTP/1.1 client: GET over a keep-alive connection (reused while the host and port stay the
 *  same), Content-Length, chunked and close-delimited bodies, a deadline per request, redirects not
 *  followed unless asked. Zero-initialise it; async_http_client_close frees what it holds. */
typedef struct async_http_client {
    async_task task;         /* private: the GET coroutine */
    async_stream stream;     /* private: the connection */
    char host[256];          /* private: where the connection goes */
    int port;                /* private */
    const char *url;         /* private: the pending request */
    int32_t ms;              /* private: -1 none */
    async_ms deadline;       /* private */
    int redirects;           /* private: redirects followed in this request */
    size_t n;                /* private */
    void *state;             /* private: parser and response (malloc'ed) */
    int max_redirects;       /**< redirects to follow (0: none, the default) */
    size_t max_body;         /**< largest body accepted (0: 16 MiB); over it: ASYNC_EMSGSIZE */
} async_http_client;

/** await session.get(url): an "http://host[:port]/path" or "https://..." URL (ASYNC_EINVAL for others)
 *  fetched within ms (int64_t; negative: no deadline; over ASYNC_MS_MAX: ASYNC_ERANGE). Raises connection errors, ASYNC_ETIMEDOUT, ASYNC_EPROTO (malformed
 *  response), ASYNC_ENODATA (the connection ended mid-response). Any status is a success: read it with
 *  async_http_client_status. https verifies the server's certificate for the URL's host against the
 *  system's CAs (ASYNC_ECERT; a session can be given a CA file); see AWAIT_STREAM_TLS_CONNECT for TLS's
 *  errors. Interim 1xx responses (100 Continue, 103 Early Hints) are skipped; a 101 is the
 *  answer and its connection is not reused. AWAIT the returned task. url must outlive the await. */
ASYNC_API async_task *async_http_client_get(async_http_client *c, const char *url, int64_t ms);
/** The last response's status code (0 before one). After a GET that failed part-way, what had arrived
 *  (status, headers, body so far) stays readable until the next GET. */
ASYNC_API int async_http_client_status(const async_http_client *c);
/** The last response's body (NUL-terminated), *len its length; "" before one. */
ASYNC_API const char *async_http_client_body(const async_http_client *c, size_t *len);
/** The last response's header or trailer `name` (case-insensitive; the first of repeated ones), or NULL. */
ASYNC_API const char *async_http_client_header(const async_http_client *c, const char *name);
/** Closes the connection and frees the response. The client can be used again. */
ASYNC_API void async_http_client_close(async_http_client *c);

/* ---- Sessions: aiohttp's ClientSession ----
 * A session is shared by the tasks of one loop. It keeps a pool of connections per host:port, at most
 * max_connections open in all and max_per_host to one host: a request that needs one more waits its turn
 * (first come, first served) until another request gives one back; an idle connection to another host is
 * closed to make room. A request is an async_http_call in the caller's frame: fill in its inputs, AWAIT
 * async_http_session_request, read the answer, async_http_call_close. Any method, header fields, a body given
 * whole or written in pieces (chunked), a response read whole or in pieces, a total and a per-read
 * timeout, redirects followed up to a limit (then ASYNC_ELOOP, "too many HTTP redirects"), the final URL,
 * and on request an error for a 4xx or 5xx answer. A connection is reused only after a whole response
 * that left nothing behind it (bytes beyond the body close it), and never after a failed or cancelled
 * request: its state is unknown, so it is closed. http:// and https:// (TLS, the certificate verified for
 * the URL's host; a connection is kept per scheme, host and port). */

/** A session's settings. 0 in a field means its default. */
typedef struct async_http_session_opts {
    unsigned max_connections; /**< connections open at once, in all (default 100) */
    unsigned max_per_host;    /**< connections open at once to one host:port (default: max_connections) */
    int64_t timeout_ms;       /**< a request's total time (waiting for a connection, connecting, sending,
                                   the response head and a whole body; for a streamed body each read ends
                                   by it too), negative or 0: none */
    int64_t read_timeout_ms;  /**< the longest wait for the server's next bytes (aiohttp's sock_read); 0:
                                   none */
    int max_redirects;        /**< redirects followed per request (default 10; negative: none, a 3xx is
                                   then the answer) */
    size_t max_body;          /**< the largest whole body (default 16 MiB): ASYNC_EMSGSIZE over it */
    const char *ca_file;      /**< https: a PEM file of the CAs to trust instead of the system's (read
                                   when the first https connection opens; its errors are raised there) */
    bool tls_no_verify;       /**< https: do not verify servers (their certificates and names): an explicit
                                   choice, for tests and private networks */
} async_http_session_opts;

struct async__http_conn;
struct async_http_call;

/** A session: zero-initialise it (defaults) or async_http_session_init it; async_http_session_close
 *  frees what it holds. All its requests run on one loop. */
typedef struct async_http_session {
    async_http_session_opts opts;     /* private: see async_http_session_init */
    struct async__http_conn *conns;   /* private: every open connection, idle or in use */
    struct async_http_call *waiters;  /* private: requests waiting for a connection, first come first */
    unsigned open;                    /* private: connections in conns */
    unsigned reused;                  /* private: requests sent on a kept connection */
    unsigned long ticks;              /* private: orders the idle connections, oldest first */
    bool closed;                      /* private */
    void *tls;                        /* private: the TLS context of https connections (made on first use) */
} async_http_session;

/** A request header field. Names are HTTP tokens; values may not hold CR, LF or NUL (ASYNC_EINVAL). */
typedef struct async_http_header {
    const char *name;  /**< "Accept" */
    const char *value; /**< "application/json" */
} async_http_header;

/** Flags of an async_http_call. */
enum {
    ASYNC_HTTP_STREAM_BODY = 1,      /**< the body is written in pieces after the head (chunked): AWAIT
                                          async_http_session_request, then AWAIT_HTTP_BODY_WRITE each piece, then
                                          AWAIT_HTTP_BODY_END, which reads the answer. No redirect is followed
                                          and a stale kept connection is not retried (the pieces are gone) */
    ASYNC_HTTP_STREAM_RESPONSE = 2,  /**< the request returns after the response head; the body is read in
                                          pieces with AWAIT_HTTP_BODY_READ (no max_body limit then) */
    ASYNC_HTTP_RAISE_FOR_STATUS = 4  /**< a 4xx or 5xx answer raises ASYNC_EIO whose message names the
                                          status ("HTTP 404 Not Found"); the answer stays readable */
};

/** One request and its response, in the caller's frame. Zero-initialise it, set the inputs, AWAIT
 *  async_http_session_request; after the last read, async_http_call_close (also after a failure). Reusable for the
 *  next request once closed. The inputs are not copied: they must outlive the awaits. */
typedef struct async_http_call {
    async_task task;                   /* private: the coroutine of the pending step */
    const char *method;                /**< "GET" (NULL), "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"
                                            or any other token */
    const char *url;                   /**< "http://host[:port]/path?query" */
    const async_http_header *headers;  /**< nheaders fields sent after Host, User-Agent and Accept (a field
                                            of the same name replaces those); Content-Length and
                                            Transfer-Encoding are the client's own: ASYNC_EINVAL */
    size_t nheaders;
    const void *body;                  /**< a whole body of body_len bytes (Content-Length); NULL: none,
                                            except "Content-Length: 0" for POST, PUT and PATCH */
    size_t body_len;
    unsigned flags;                    /**< ASYNC_HTTP_STREAM_BODY, _STREAM_RESPONSE, _RAISE_FOR_STATUS */
    int64_t timeout_ms;                /**< total time of this request: 0 the session's, negative none */
    int max_redirects;                 /**< 0: the session's; negative: none */
    /* private below */
    async_http_session *session;
    struct async__http_conn *conn;     /* the connection in use */
    struct async_http_call *wnext;     /* in the session's wait list */
    async_event granted;               /* set when a connection (or an error) is handed over */
    int wait_error;
    bool waiting;
    void *state;                       /* parser, response, deadline (malloc'ed) */
} async_http_call;

/** Sets up a session with opts (NULL: the defaults). ASYNC_EINVAL for NULL s, ASYNC_ERANGE for a time
 *  over ASYNC_MS_MAX, ASYNC_EBUSY if s holds connections or waiters (close it first). */
ASYNC_API int async_http_session_init(async_http_session *s, const async_http_session_opts *opts);
/** Closes the idle connections, fails the requests waiting for one with ASYNC_ESHUTDOWN, and refuses new
 *  ones (ASYNC_ESHUTDOWN) until async_http_session_init. Requests running go on to their end; their
 *  connections are closed then. Safe on a zeroed or closed session and NULL. */
ASYNC_API void async_http_session_close(async_http_session *s);
/** Connections open now (in use and idle); *idle (may be NULL) gets how many are idle. */
ASYNC_API unsigned async_http_session_connections(const async_http_session *s, unsigned *idle);
/** Requests sent on a kept-alive connection so far. */
ASYNC_API unsigned async_http_session_reused(const async_http_session *s);

/** await session.request(...): sends c (see async_http_call) through s and returns once the response
 *  head and whole body have come (with ASYNC_HTTP_STREAM_RESPONSE: the head; with ASYNC_HTTP_STREAM_BODY:
 *  once the request head is sent). Raises ASYNC_EINVAL (a bad URL, method or header field),
 *  ASYNC_ECERT and TLS's other handshake errors (https), ASYNC_ESHUTDOWN (the session closed), ASYNC_ETIMEDOUT, ASYNC_ELOOP (too many
 *  redirects), ASYNC_EPROTO (a malformed response), ASYNC_EMSGSIZE, ASYNC_ENODATA (the connection ended
 *  before the whole response: "before answering" if no byte came), connection errors, and ASYNC_EIO for
 *  an error status with ASYNC_HTTP_RAISE_FOR_STATUS. Cancellation closes the connection in use. AWAIT the
 *  returned task (NULL for NULL c). */
ASYNC_API async_task *async_http_session_request(async_http_session *s, async_http_call *c);
/** await session.request(...) as one statement. */
#define AWAIT_HTTP_REQUEST(t, s, c) AWAIT(t, async_http_session_request((s), (c)))
/** The step that writes one piece of a streamed request body (a chunk; len 0 writes nothing). */
ASYNC_API async_task *async_http_body_write(async_http_call *c, const void *data, size_t len);
/** Writes len bytes of data as the next piece of c's streamed body (ASYNC_EINVAL without
 *  ASYNC_HTTP_STREAM_BODY or after the end). */
#define AWAIT_HTTP_BODY_WRITE(t, c, data, len) AWAIT(t, async_http_body_write((c), (data), (len)))
/** The step that ends a streamed request body and reads the response (as async_http_session_request would). */
ASYNC_API async_task *async_http_body_end(async_http_call *c);
/** Ends c's streamed body and waits for the response. */
#define AWAIT_HTTP_BODY_END(t, c) AWAIT(t, async_http_body_end((c)))
/** The step that reads the next piece of a streamed response body. */
ASYNC_API async_task *async_http_body_read(async_http_call *c, void *buf, size_t cap, size_t *n);
/** Reads the next 1..cap bytes of c's streamed response body into buf, *n (size_t *) their count; 0 at
 *  the end of the body, when the connection goes back to the pool (a 101's body is empty: 0 at once).
 *  ASYNC_EINVAL without ASYNC_HTTP_STREAM_RESPONSE or before the head. */
#define AWAIT_HTTP_BODY_READ(t, c, buf, cap, n) AWAIT(t, async_http_body_read((c), (buf), (cap), (n)))
/** The response's status code (0 before one). */
ASYNC_API int async_http_call_status(const async_http_call *c);
/** The response's header or trailer `name` (case-insensitive; the first of repeated ones), or NULL. */
ASYNC_API const char *async_http_call_header(const async_http_call *c, const char *name);
/** The whole response body (NUL-terminated; "" with ASYNC_HTTP_STREAM_RESPONSE), *len its length. */
ASYNC_API const char *async_http_call_body(const async_http_call *c, size_t *len);
/** The URL the response came from: the last redirect's target, else the request's URL ("" before). */
ASYNC_API const char *async_http_call_url(const async_http_call *c);
/** Releases c: frees the response, gives a connection whose response was read to its end back to the
 *  pool and closes one that was not (a body not read, a streamed body not ended). Safe on a zeroed or
 *  closed call and NULL; not while a step of c is awaited. */
ASYNC_API void async_http_call_close(async_http_call *c);

/** A thread-safe door into a loop (call_soon_threadsafe): any thread queues a function that the loop's
 *  thread then runs between passes. Made and freed on the loop's thread; while it exists the loop does
 *  not report a deadlock (another thread may still wake it). One still open when its loop is freed is
 *  freed with it (its queued calls run first): do not free it again then. */
typedef struct async_remote async_remote;
/** A remote for loop (which must poll the OS: async_loop_new(0) or attached). NULL: no memory or bad loop. */
ASYNC_API async_remote *async_remote_new(async_loop *loop);
/** Queues fn(loop, arg) to run on r's loop, from any thread. 0, ASYNC_EINVAL, ASYNC_ENOMEM. */
ASYNC_API int async_remote_call(async_remote *r, void (*fn)(async_loop *loop, void *arg), void *arg);
/** Runs what is still queued, then frees r (on the loop's thread, once no other thread calls it). */
ASYNC_API void async_remote_free(async_remote *r);
/** loop.call_soon_threadsafe(task.cancel), from any thread: t (a task of r's loop) is cancelled on the
 *  loop's thread, as async_cancel would there. The task's frame must stay in place until that has run
 *  (if t has finished by then, nothing happens). 0, ASYNC_EINVAL, ASYNC_ENOMEM. */
ASYNC_API int async_remote_cancel(async_remote *r, async_task *t);
/** Runs n loops on n threads (the calling thread is loop 0), each with its own async_loop_new(0), and
 *  waits for all of them. make_main(index, arg) builds each loop's main task; all are built first, in
 *  index order, on the calling thread (so main 0 may bind a port that the others then share with
 *  ASYNC_SERVER_REUSEPORT). Returns the first non-zero code in index order, ASYNC_EINVAL, ASYNC_ENOMEM.
 *  Under ASYNC_SIM (async/sim.h) one loop runs, a world made before its main so that the main's servers
 *  listen in it; n > 1 there, or a simulated loop of the caller's current on the thread, is ASYNC_ENOTSUP
 *  with a message on stderr, before any main is made. */
ASYNC_API int async_run_threads(unsigned n, async_task *(*make_main)(unsigned index, void *arg), void *arg);

/* ---- WebSocket (RFC 6455), server side, over a stream; provided by http_ws.c, which needs libcrypto
 * (-lcrypto, in `pkg-config --libs async-http`) for SHA-1 ----
 *
 * An HTTP handler accepts the upgrade with async_ws_accept, then speaks WebSocket on its connection:
 *
 *     ASYNC_HTTP_DEF(echo, async_ws ws; async_ws_message msg;) {
 *         if (async_ws_accept(&f->ws, f->req, f->res, NULL)) ASYNC_RETURN(t, 0);  (answered 400 / 426)
 *         ASYNC_TRY(t) {
 *             for (;;) {
 *                 AWAIT_WS_RECV(t, &f->ws, &f->msg, -1);
 *                 if (f->msg.opcode == ASYNC_WS_CLOSE) break;      (the peer closed; its close was answered)
 *                 AWAIT_WS_SEND(t, &f->ws, f->msg.opcode, f->msg.data, f->msg.len, 5000);
 *             }
 *         } ASYNC_FINALLY(t) {
 *             async_ws_free(&f->ws);
 *         } ASYNC_END_TRY(t);
 *     } ASYNC_END_DEF
 *
 * Below it, async_ws_handshake checks a request and builds the answer, and async_ws_open starts an endpoint
 * on any stream whose upgrade was answered.
 *
 * Peer errors end the connection as RFC 6455 7.1.7 says (fail the connection): the endpoint sends a close
 * frame with the status (1002 protocol error, 1007 invalid UTF-8 in a text message or a close reason,
 * 1009 a message over the limit), gives it limits.close_ms to leave, and raises ASYNC_EPROTO (ASYNC_EMSGSIZE
 * for 1009; ASYNC_ENOMEM, after a 1011, when the message buffer cannot grow); nothing more is read or sent
 * on it afterwards. Extensions and subprotocols are not offered. */

/** Message opcodes (RFC 6455 5.2): what async_ws_send sends, and what AWAIT_WS_RECV reports. */
enum {
    ASYNC_WS_TEXT = 1,   /**< a text message: UTF-8, checked both ways */
    ASYNC_WS_BINARY = 2, /**< a binary message */
    ASYNC_WS_CLOSE = 8,  /**< the end: the peer's close (its code and reason), or the connection's loss */
    ASYNC_WS_PING = 9,   /**< a ping (sent only: received pings are answered by the endpoint itself) */
    ASYNC_WS_PONG = 10   /**< a pong (sent only, an unsolicited heartbeat; received pongs are dropped) */
};

/** Close status codes (RFC 6455 7.4.1) the endpoint itself uses or reports. */
enum {
    ASYNC_WS_NORMAL = 1000,        /**< normal closure */
    ASYNC_WS_GOING_AWAY = 1001,    /**< the endpoint goes away (server shutdown) */
    ASYNC_WS_PROTOCOL_ERROR = 1002, /**< the peer broke the protocol */
    ASYNC_WS_NO_STATUS = 1005,     /**< reported when the peer's close had no code (never sent) */
    ASYNC_WS_ABNORMAL = 1006,      /**< reported when the connection ended without a close (never sent) */
    ASYNC_WS_INVALID_DATA = 1007,  /**< invalid UTF-8 in a text message or a close reason */
    ASYNC_WS_TOO_BIG = 1009        /**< a message over the endpoint's limit */
};

/** An endpoint's limits; 0 in a field means its default. */
typedef struct async_ws_limits {
    size_t max_message; /**< largest message, all its fragments together; default 1 MiB */
    size_t max_frame;   /**< largest single frame's payload; default max_message */
    int64_t close_ms;   /**< how long the close frame sent on a peer's error is given to leave; default 1 s */
} async_ws_limits;

/** One received message: the whole message, its fragments joined. data stays valid until the next
 *  receive on the endpoint or async_ws_free. */
typedef struct async_ws_message {
    int opcode;       /**< ASYNC_WS_TEXT, ASYNC_WS_BINARY, or ASYNC_WS_CLOSE at the end */
    const char *data; /**< the payload, NUL-terminated (a close's reason) */
    size_t len;       /**< its length in bytes */
    int code;         /**< for ASYNC_WS_CLOSE: the peer's code, ASYNC_WS_NO_STATUS or ASYNC_WS_ABNORMAL */
} async_ws_message;

/** A WebSocket endpoint, server role (the client's frames must be masked, its own are not), over a stream
 *  it does not own. Zero-initialise it, then async_ws_open. One receive (AWAIT_WS_RECV or AWAIT_WS_CLOSE)
 *  and one send at a time; a receive and a send may run in two tasks at once. async_ws_free releases what
 *  it holds. */
typedef struct async_ws {
    async_task rtask;          /* private: the receive or close coroutine */
    async_task stask;          /* private: the send coroutine */
    async_stream *s;           /* private */
    async_ws_limits lim;       /* private */
    unsigned state;            /* private: WS_* flags (http_ws.c) */
    async_ws_message *out;     /* private: the pending receive's result */
    int32_t rms, sms;          /* private: deadlines of the pending receive and send, -1 none */
    async_ms rdeadline;        /* private */
    const async_error *err;    /* private: what a failed coroutine raises */
    async_ms sdeadline;        /* private */
    unsigned char hdr[14];     /* private: the frame header being read */
    unsigned char mask[4];     /* private */
    int fop;                   /* private: the current frame's opcode, -1 between frames */
    bool ffin;                 /* private */
    uint64_t flen, fgot;       /* private: the current frame's payload length, bytes read */
    int mop;                   /* private: the opcode of the message being assembled, 0 none */
    unsigned utf8;             /* private: the UTF-8 check's state across frames */
    char *buf;                 /* private: the message (malloc'ed) */
    size_t len, cap;           /* private */
    char ctl[128];             /* private: a control frame's payload */
    size_t ctl_len;            /* private */
    int close_code;            /* private: the code of the close frame to send */
    size_t n;                  /* private */
    int serr;                  /* private: what a send that cannot start raises */
    async_event wfree;         /* private: set when the receive's own drain ends */
} async_ws;

/** Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 4.2.2: base64 of the SHA-1 of the key and the
 *  protocol's GUID) into out, NUL-terminated (28 characters). 0, or ASYNC_EINVAL if client_key is not the
 *  base64 of 16 bytes (surrounding spaces allowed) or an argument is NULL. */
ASYNC_API int async_ws_accept_key(const char *client_key, char out[29]);
/** Checks that req asks for a WebSocket upgrade (GET, HTTP/1.1 or later, Host, Upgrade: websocket,
 *  Connection with the token upgrade, Sec-WebSocket-Version: 13, a valid Sec-WebSocket-Key; names and tokens
 *  case-insensitive) and writes the response head to send into head (cap bytes, NUL-terminated, *len its
 *  length without the NUL): "HTTP/1.1 101 Switching Protocols" with Sec-WebSocket-Accept (returns 0); for a
 *  request that is not a valid upgrade a 400 (ASYNC_EPROTO), or a 426 with "Sec-WebSocket-Version: 13"
 *  when only the version is wrong or missing (ASYNC_ENOTSUP); both close the connection. *status (may be
 *  NULL) gets 101, 400 or 426. ASYNC_EINVAL for NULL arguments, ASYNC_EOVERFLOW if cap is too small (256
 *  bytes is always enough). */
ASYNC_API int async_ws_handshake(const async_http_request *req, char *head, size_t cap, size_t *len, int *status);
/** Accepts a WebSocket upgrade in an HTTP handler: checks req as async_ws_handshake does, takes the
 *  connection (async_http_response_upgrade), queues the 101 on it and opens ws on it (lim may be NULL).
 *  0; or, for a request that is not a valid upgrade, ASYNC_EPROTO / ASYNC_ENOTSUP with res set to the 400
 *  / 426 the server then sends (return from the handler); ASYNC_EBUSY if the response was already under
 *  way; ASYNC_EINVAL for NULL. */
ASYNC_API int async_ws_accept(async_ws *ws, const async_http_request *req, async_http_response *res,
                              const async_ws_limits *lim);
/** Starts a WebSocket endpoint (server role) on stream s, the stream of a connection whose upgrade was
 *  answered with 101. lim may be NULL (defaults). 0; ASYNC_EINVAL (NULL, or a limit out of range);
 *  ASYNC_ERANGE for close_ms over ASYNC_MS_MAX; ASYNC_EBUSY if ws has an await running. */
ASYNC_API int async_ws_open(async_ws *ws, async_stream *s, const async_ws_limits *lim);
/** Releases what ws holds (the message buffer); the stream stays open. Call it when no await runs on ws
 *  (after cancelling them). Safe on a zeroed endpoint and NULL; ws can be opened again. */
ASYNC_API void async_ws_free(async_ws *ws);
/** Sends one message (ASYNC_WS_TEXT, ASYNC_WS_BINARY) or control frame (ASYNC_WS_PING, ASYNC_WS_PONG,
 *  at most 125 bytes) as one frame, without awaiting: what the socket does not take now waits in the
 *  stream's buffer (AWAIT_WS_SEND, or AWAIT_STREAM_DRAIN on the stream, waits for it). 0; ASYNC_EINVAL (a
 *  NULL argument, another opcode, a control payload over 125 bytes, text that is not UTF-8);
 *  ASYNC_EPIPE once a close was sent or the connection failed; ASYNC_ENOMEM; the stream's errors. */
ASYNC_API int async_ws_send(async_ws *ws, int opcode, const void *data, size_t len);
/** Receives the next message into *msg (an async_ws_message *) within ms (int64_t; negative: no deadline;
 *  ASYNC_ETIMEDOUT). Pings are answered with pongs, pongs dropped. The peer's close is answered with a
 *  close of the same code and reported as a message ASYNC_WS_CLOSE with the peer's code and reason; the
 *  connection's end without a close as ASYNC_WS_CLOSE with ASYNC_WS_ABNORMAL. A peer's error raises
 *  ASYNC_EPROTO or ASYNC_EMSGSIZE after the close frame was sent (see above); the stream's errors are
 *  raised as they are; a receive after the end raises ASYNC_ENODATA. Cancelling the receive keeps what
 *  was read of the message: the next receive goes on from there. */
#define AWAIT_WS_RECV(t, ws, msg, ms)                                                                 \
    ASYNC__AWAIT(t, async__await_start((t), async__ws_recv((ws), (msg), (ms))),                       \
                 async__await_check((t), &(ws)->rtask))
/** async_ws_send, then waits up to ms until the stream's buffer is handed to the kernel. */
#define AWAIT_WS_SEND(t, ws, opcode, data, len, ms)                                                   \
    ASYNC__AWAIT(t, async__await_start((t), async__ws_send((ws), (opcode), (data), (len), (ms))),     \
                 async__await_check((t), &(ws)->stask))
/** The close handshake: sends a close frame with code (0: none; else 1000-1003, 1007-1014 or 3000-4999)
 *  and reason (NULL or UTF-8 of at most 123 bytes; ASYNC_EINVAL otherwise), then reads and drops messages
 *  until the peer's close comes, within ms (ASYNC_ETIMEDOUT: the close was sent, and a later AWAIT_WS_CLOSE
 *  waits for the answer again). Ends at once if the peer's close was already received and answered, or the
 *  connection had ended. The connection's end meanwhile ends it too. Peer errors are raised as for a
 *  receive. reason is copied before the first wait. */
#define AWAIT_WS_CLOSE(t, ws, code, reason, ms)                                                       \
    ASYNC__AWAIT(t, async__await_start((t), async__ws_close((ws), (code), (reason), (ms))),           \
                 async__await_check((t), &(ws)->rtask))

/* private helpers of the WebSocket macros */
ASYNC_API async_task *async__ws_recv(async_ws *ws, async_ws_message *msg, int64_t ms);
ASYNC_API async_task *async__ws_send(async_ws *ws, int opcode, const void *data, size_t len, int64_t ms);
ASYNC_API async_task *async__ws_close(async_ws *ws, int code, const char *reason, int64_t ms);

/* private helpers of the network macros */
ASYNC_API int async__io_start(async_task *t, async_io *w, int fd, unsigned events, int64_t ms);
ASYNC_API int async__io_check(async_task *t, async_io *w);
ASYNC_API int async__stream_connect_start(async_task *t, async_stream *s, const char *host, int port, int64_t ms);
ASYNC_API int async__stream_connect_check(async_task *t, async_stream *s);
ASYNC_API int async__stream_read_start(async_task *t, async_stream *s, int op, void *buf, size_t n, size_t limit,
                                       size_t *out, const char **line, int64_t ms);
ASYNC_API int async__stream_read_check(async_task *t, async_stream *s);
ASYNC_API int async__stream_drain_start(async_task *t, async_stream *s, int64_t ms);
ASYNC_API int async__stream_drain_check(async_task *t, async_stream *s);
ASYNC_API int async__stream_tls_start(async_task *t, async_stream *s, async_tls_ctx *ctx, const char *host,
                                      bool server, int64_t ms);
ASYNC_API int async__stream_tls_check(async_task *t, async_stream *s);
ASYNC_API async_stream *async__http_stream(async_http_response *res);
/* n bytes of a response whose length was set went out by another way than async_http_response_write
 * (sendfile): counted, so that the connection can go on. ASYNC_EINVAL if more than the length is left. */
ASYNC_API int async__http_response_sent(async_http_response *res, unsigned long long n);
ASYNC_API async_task *async__http_body_read(const async_http_request *req, void *buf, size_t cap, size_t *n, int64_t ms);
ASYNC_API async_task *async__http_body_task(const async_http_request *req);

#ifdef __cplusplus
}
#endif

#endif /* ASYNC_NET_H_INCLUDED */
