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
} async_stream;

/** Adopts a connected socket (made non-blocking; SIGPIPE suppressed). 0, ASYNC_EINVAL (NULL), ASYNC_EBADF
 *  (fd < 0 or not an open descriptor). The stream owns fd from now on, also on failure. */
ASYNC_API int async_stream_open(async_stream *s, int fd);
/** Closes the socket at once (unsent output is dropped; AWAIT_STREAM_DRAIN first to keep it) and frees the
 *  buffers; a task waiting on the stream gets ASYNC_EBADF. Safe on a closed or zeroed stream and NULL.
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
    unsigned long accepted; /**< connections accepted so far (read-only) */
    unsigned long refused;  /**< connections closed at once for lack of memory or by fn (read-only) */
} async_server;

/** Binds host:port (IPv4 or IPv6 literal, "localhost", or NULL for every IPv4 address; port 0 picks a
 *  free port) and listens. Each accepted connection gets zeroed memory of frame_size bytes and the task
 *  fn returns is spawned on the loop. 0, ASYNC_EINVAL, ASYNC_EADDRINUSE, ASYNC_EACCES, ASYNC_EMFILE, ... */
ASYNC_API int async_server_listen(async_server *srv, const char *host, int port, unsigned flags,
                                  size_t frame_size, async_conn_fn fn, void *arg);
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

/** One request as the HTTP server hands it to its handler; pointers valid during the call. */
typedef struct async_http_request {
    const char *method;  /**< "GET", "POST", ... */
    const char *target;  /**< the request target as sent ("/path?query") */
    int version_minor;   /**< 1 for HTTP/1.1, 0 for HTTP/1.0 */
    size_t nheaders;     /**< header fields, in order: names[i]: values[i] */
    const char *const *names;
    const char *const *values;
    const char *body;    /**< the body (chunked bodies de-chunked), body_len bytes */
    size_t body_len;
} async_http_request;

/** The response a handler fills in. Zeroed before each call; status 0 means 200. */
typedef struct async_http_response {
    int status;               /**< status code; the reason phrase is the standard one */
    const char *content_type; /**< NULL: "text/plain" */
    const char *headers;      /**< extra header lines, each ending in "\r\n", or NULL */
    const void *body;         /**< body_len bytes, copied before the handler's next call */
    size_t body_len;
    bool close;               /**< close the connection after this response */
} async_http_response;

/** A request handler: fills res from req. Runs on the loop; returns 0, or an error code that becomes a
 *  500 response. */
typedef int (*async_http_handler)(const async_http_request *req, async_http_response *res, void *arg);

/** Limits of the HTTP server (0 in a field means its default). Over-long request lines get 414, too many
 *  or too large header fields 431, a body over max_body 413, malformed input 400; the connection is
 *  then closed. A time over ASYNC_MS_MAX makes async_http_server_listen fail with ASYNC_ERANGE. */
typedef struct async_http_limits {
    size_t max_request_line; /**< method + target + version; default 8 KiB */
    size_t max_header_bytes; /**< all header fields together; default 16 KiB */
    size_t max_headers;      /**< number of header fields; default 64 */
    size_t max_body;         /**< default 1 MiB */
    int64_t idle_ms;         /**< keep-alive connection idle before close; default 30 s */
    int64_t request_ms;      /**< a whole request (head and body) must arrive within it; default 10 s */
    int64_t linger_ms;       /**< after a refused request, how long what the client still sends is read and
                                  dropped before the close (so that a reset does not destroy the answer);
                                  default 1 s */
} async_http_limits;

/** An HTTP/1.1 server (keep-alive, pipelining, limits) on an async_server. Zero-initialise it. */
typedef struct async_http_server {
    async_server server;      /* private */
    async_http_handler handler; /* private */
    void *arg;                /* private */
    async_http_limits limits; /* private */
} async_http_server;

/** Listens on host:port (see async_server_listen) and answers each request with handler(req, res, arg).
 *  limits may be NULL (defaults); ASYNC_ERANGE for a time in them over ASYNC_MS_MAX. */
ASYNC_API int async_http_server_listen(async_http_server *hs, const char *host, int port, unsigned flags,
                                       const async_http_limits *limits, async_http_handler handler, void *arg);
/** The accept loop to AWAIT or spawn (async_server_serve). */
ASYNC_API async_task *async_http_server_serve(async_http_server *hs);
/** Graceful shutdown: stop accepting, close idle keep-alive connections, finish the requests in flight
 *  (answered with "Connection: close"), cancel what still runs after grace_ms (negative or over
 *  ASYNC_MS_MAX: no limit, as async_server_close). */
ASYNC_API void async_http_server_close(async_http_server *hs, int64_t grace_ms);
/** The port the server listens on. */
ASYNC_API int async_http_server_port(const async_http_server *hs);
/** The value of header `name` (case-insensitive) in req, or NULL. */
ASYNC_API const char *async_http_request_header(const async_http_request *req, const char *name);

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

/** await session.get(url): an "http://host[:port]/path" URL (ASYNC_EINVAL for others, ASYNC_ENOTSUP
 *  for https) fetched within ms (int64_t; negative: no deadline; over ASYNC_MS_MAX: ASYNC_ERANGE). Raises connection errors, ASYNC_ETIMEDOUT, ASYNC_EPROTO (malformed
 *  response), ASYNC_ENODATA (the connection ended mid-response). Any status is a success: read it with
 *  async_http_client_status. Interim 1xx responses (100 Continue, 103 Early Hints) are skipped; a 101 is the
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
 *  ASYNC_SERVER_REUSEPORT). Returns the first non-zero code in index order, ASYNC_EINVAL, ASYNC_ENOMEM. */
ASYNC_API int async_run_threads(unsigned n, async_task *(*make_main)(unsigned index, void *arg), void *arg);

/* ---- WebSocket (RFC 6455), server side, over a stream; provided by http_ws.c, which needs libcrypto
 * (-lcrypto, in `pkg-config --libs async-http`) for SHA-1 ----
 *
 * A handler that takes over its connection after an HTTP request checks the request and builds the answer
 * with async_ws_handshake, writes it, then speaks WebSocket on the stream with an async_ws:
 *
 *     rc = async_ws_handshake(req, f->head, sizeof f->head, &f->n, NULL);
 *     async_stream_write(s, f->head, f->n);                   (the 101, or the 400 / 426 when rc != 0)
 *     if (rc) return;
 *     async_ws_open(&f->ws, s, NULL);
 *     for (;;) {
 *         AWAIT_WS_RECV(t, &f->ws, &f->msg, -1);
 *         if (f->msg.opcode == ASYNC_WS_CLOSE) break;          (the peer closed; its close was answered)
 *         AWAIT_WS_SEND(t, &f->ws, f->msg.opcode, f->msg.data, f->msg.len, 5000);
 *     }
 *     async_ws_free(&f->ws);
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

#ifdef __cplusplus
}
#endif

#endif /* ASYNC_NET_H_INCLUDED */
