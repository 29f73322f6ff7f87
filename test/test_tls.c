/* TLS over streams and https in the HTTP client, against real peers: `openssl s_server` and
 * `openssl s_client`, a python3 `ssl` server and client, and our own server stream. The test CA, a
 * certificate it signs for localhost and 127.0.0.1, and a self-signed one are made with the `openssl`
 * command in the test's own directory. Handshakes and exchanges both ways, verification against the
 * system store (fails) and a CA file (passes), host names and IP addresses that do not match, SNI and
 * ALPN as the peer saw them, a handshake timeout, a peer that closes mid-handshake or speaks no TLS,
 * cancellation mid-handshake, large transfers that make TLS writes wait, and bad arguments. */
#include "test.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- the certificates ---- */

/* Makes ca.pem (the test CA), srv.pem/srv.key (localhost and 127.0.0.1, signed by it) and
 * self.pem/self.key (self-signed, same names) in the test's directory; skips without openssl. */
static void tls_make_certs(void) {
    char cmd[2048];
    test_need("openssl");
    snprintf(cmd, sizeof cmd,
             "cd '%s' && K='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes' && "
             "openssl req -x509 $K -keyout ca.key -out ca.pem -days 2 -subj /CN=async-test-ca && "
             "openssl req $K -keyout srv.key -out srv.csr -subj /CN=localhost && "
             "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > ext.cnf && "
             "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 "
             "-extfile ext.cnf && "
             "openssl req -x509 $K -keyout self.key -out self.pem -days 2 -subj /CN=localhost "
             "-addext subjectAltName=DNS:localhost,IP:127.0.0.1",
             test_dir());
    {
        char full[2200];
        snprintf(full, sizeof full, "(%s) >/dev/null 2>&1", cmd);
        ASSERT_EQ(system(full), 0);
    }
}

/* A file of the test's directory (copied: test_path's buffers rotate). */
static const char *tls_file(const char *name) {
    static char paths[8][512];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, 512, "%s", test_path(name));
    return p;
}

/* ---- peers ---- */

/* A python3 ssl server: argv cert key mode. "echo": each connection is first told "sni=NAME alpn=PROTO"
 * (what the client sent and what was agreed), then its lines are echoed. "https": an HTTP/1.1 server whose
 * GET answers "path=PATH". Prints "port:N" once it listens on 127.0.0.1. */
static const char tls_py_server[] =
    "import socket, ssl, sys, threading\n"
    "cert, key, mode = sys.argv[1:4]\n"
    "ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
    "ctx.load_cert_chain(cert, key)\n"
    "ctx.set_alpn_protocols(['http/1.1'])\n"
    "names = {}\n"
    "def sni(sock, name, c):\n"
    "    names[id(sock)] = name\n"
    "ctx.sni_callback = sni\n"
    "if mode == 'https':\n"
    "    import http.server\n"
    "    class H(http.server.BaseHTTPRequestHandler):\n"
    "        protocol_version = 'HTTP/1.1'\n"
    "        def do_GET(self):\n"
    "            b = ('path=' + self.path).encode()\n"
    "            self.send_response(200)\n"
    "            self.send_header('Content-Length', str(len(b)))\n"
    "            self.end_headers()\n"
    "            self.wfile.write(b)\n"
    "        def log_message(self, *a): pass\n"
    "    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)\n"
    "    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)\n"
    "    print('port:%d' % srv.server_address[1], flush=True)\n"
    "    srv.serve_forever()\n"
    "ls = socket.socket()\n"
    "ls.bind(('127.0.0.1', 0))\n"
    "ls.listen(16)\n"
    "print('port:%d' % ls.getsockname()[1], flush=True)\n"
    "def serve(c):\n"
    "    try:\n"
    "        s = ctx.wrap_socket(c, server_side=True)\n"
    "        s.sendall(('sni=%s alpn=%s\\n' % (names.get(id(s)), s.selected_alpn_protocol())).encode())\n"
    "        for line in s.makefile('rb'):\n"
    "            s.sendall(line)\n"
    "        s.close()\n"
    "    except Exception:\n"
    "        c.close()\n"
    "while True:\n"
    "    c, _ = ls.accept()\n"
    "    threading.Thread(target=serve, args=(c,), daemon=True).start()\n";

/* Starts the python server with cert/key of the test's directory in `mode`. */
static void tls_py_start(test_server *srv, const char *cert, const char *key, const char *mode) {
    char cmd[1200];
    test_need("python3");
    setenv("TLS_PY", tls_py_server, 1);
    snprintf(cmd, sizeof cmd, "exec python3 -c \"$TLS_PY\" '%s' '%s' %s", tls_file(cert), tls_file(key), mode);
    test_server_start(srv, cmd);
}

/* Starts `openssl s_server` with the CA-signed certificate, echoing each line reversed (-rev); extra
 * options after. Its first line on stdout is not its port: the ACCEPT line is picked out. */
static void tls_s_server_start(test_server *srv, const char *extra) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd,
             "openssl s_server -accept 127.0.0.1:0 -cert '%s' -key '%s' -rev %s 2>/dev/null | "
             "grep --line-buffered ACCEPT",
             tls_file("srv.pem"), tls_file("srv.key"), extra);
    test_server_start(srv, cmd);
}

/* ---- our client ---- */

/* Connects to 127.0.0.1:port, handshakes for `host` (within ms) with a context made from opts, writes
 * `send`, then reads up to `lines` lines into got. What it raised: code and msg. */
ASYNC_DEF(tls_cli, int port; const char *host; async_tls_opts opts; const char *send; int lines; int32_t ms;
          async_tls_ctx *ctx; async_stream s; const char *line; size_t len; int i; int rc; char got[512];
          int code; char msg[160]; char alpn[32]; int fd_after;) {
    ASYNC_TRY(t) {
        f->rc = async_tls_ctx_new(&f->ctx, &f->opts);
        if (f->rc) ASYNC_THROW_ERROR(t, async_error_of(f->rc));
        AWAIT_STREAM_CONNECT(t, &f->s, "127.0.0.1", f->port, TEST_LONG_MS);
        AWAIT_STREAM_TLS_CONNECT(t, &f->s, f->ctx, f->host, f->ms ? f->ms : TEST_LONG_MS);
        snprintf(f->alpn, sizeof f->alpn, "%s", async_stream_tls_alpn(&f->s));
        if (f->send) {
            f->rc = async_stream_write(&f->s, f->send, strlen(f->send));
            if (f->rc) ASYNC_THROW_ERROR(t, async_error_of(f->rc));
            AWAIT_STREAM_DRAIN(t, &f->s, TEST_LONG_MS);
        }
        for (f->i = 0; f->i < f->lines; f->i++) {
            AWAIT_STREAM_READLINE(t, &f->s, &f->line, &f->len, 256, TEST_LONG_MS);
            if (!f->len) break;
            if (strlen(f->got) + f->len < sizeof f->got) strncat(f->got, f->line, f->len);
        }
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
        snprintf(f->msg, sizeof f->msg, "%s", async_error_message(async_caught(t)));
    }
    ASYNC_END_TRY(t);
    f->fd_after = async_stream_fd(&f->s);
    async_stream_close(&f->s);
    async_tls_ctx_free(f->ctx);
} ASYNC_END_DEF

/* ---- our client against openssl s_server and python ---- */

TEST(tls_client_exchanges_with_openssl_s_server) {
    static tls_cli_frame f;
    test_server srv;
    tls_make_certs();
    tls_s_server_start(&srv, "");
    ASSERT_EQ(run_real(ASYNC_CALL(tls_cli, &f, .port = srv.port, .host = "localhost",
                                  .opts = {.ca_file = tls_file("ca.pem")}, .send = "hello tls\n", .lines = 1)),
              0);
    test_server_stop(&srv);
    ASSERT_EQ(f.code, 0);
    ASSERT_STR_EQ(f.got, "slt olleh\n"); /* -rev: the line back, reversed */
}

TEST(tls_client_offers_alpn_and_sends_sni_to_python) {
    static tls_cli_frame f, g;
    test_server srv;
    tls_make_certs();
    tls_py_start(&srv, "srv.pem", "srv.key", "echo");
    ASSERT_EQ(run_real(ASYNC_CALL(tls_cli, &f, .port = srv.port, .host = "localhost",
                                  .opts = {.ca_file = tls_file("ca.pem"), .alpn = "h2,http/1.1"},
                                  .send = "ping\n", .lines = 2)),
              0);
    ASSERT_EQ(f.code, 0);
    ASSERT_STR_EQ(f.got, "sni=localhost alpn=http/1.1\nping\n");
    ASSERT_STR_EQ(f.alpn, "http/1.1");
    /* an IP address is verified against the certificate's IP entry, and never sent as SNI */
    ASSERT_EQ(run_real(ASYNC_CALL(tls_cli, &g, .port = srv.port, .host = "127.0.0.1",
                                  .opts = {.ca_file = tls_file("ca.pem")}, .lines = 1)),
              0);
    test_server_stop(&srv);
    ASSERT_EQ(g.code, 0);
    ASSERT_STR_EQ(g.got, "sni=None alpn=None\n");
    ASSERT_STR_EQ(g.alpn, "");
}

/* Runs our client once against 127.0.0.1:port (verifying `host` with opts), reading one line, and checks
 * what it raised (code) and the message of that error, or with no error the line it read (text). A failed
 * handshake leaves the stream closed. */
static void tls_expect(int port, const char *host, async_tls_opts opts, int code, const char *text) {
    static tls_cli_frame f;
    memset(&f, 0, sizeof f);
    ASSERT_EQ(run_real(ASYNC_CALL(tls_cli, &f, .port = port, .host = host, .opts = opts, .lines = 1)), 0);
    ASSERT_EQ(f.code, code);
    ASSERT_STR_EQ(code ? f.msg : f.got, text);
    if (code) ASSERT_EQ(f.fd_after, -1);
}

TEST(tls_system_store_rejects_self_signed_and_unknown_ca) {
    static const async_tls_opts system_store;
    test_server self, signed_by_test_ca;
    tls_make_certs();
    tls_py_start(&self, "self.pem", "self.key", "echo");
    tls_py_start(&signed_by_test_ca, "srv.pem", "srv.key", "echo");
    tls_expect(self.port, "localhost", system_store, ASYNC_ECERT,
               "TLS certificate verify failed: self-signed certificate");
    tls_expect(signed_by_test_ca.port, "localhost", system_store, ASYNC_ECERT,
               "TLS certificate verify failed: unable to get local issuer certificate");
    test_server_stop(&self);
    test_server_stop(&signed_by_test_ca);
}

TEST(tls_ca_file_or_no_verify_accept_what_the_system_store_does_not) {
    async_tls_opts own_ca = {.ca_file = NULL}, off = {.no_verify = true};
    test_server srv;
    tls_make_certs();
    own_ca.ca_file = tls_file("self.pem"); /* the self-signed certificate is its own CA */
    tls_py_start(&srv, "self.pem", "self.key", "echo");
    tls_expect(srv.port, "localhost", own_ca, 0, "sni=localhost alpn=None\n");
    tls_expect(srv.port, NULL, off, 0, "sni=None alpn=None\n");
    test_server_stop(&srv);
}

TEST(tls_host_name_or_address_mismatch_is_refused) {
    async_tls_opts test_ca = {.ca_file = NULL};
    test_server srv;
    tls_make_certs();
    test_ca.ca_file = tls_file("ca.pem");
    tls_py_start(&srv, "srv.pem", "srv.key", "echo");
    tls_expect(srv.port, "wrong.example", test_ca, ASYNC_ECERT, "TLS certificate verify failed: host name mismatch");
    tls_expect(srv.port, "10.0.0.1", test_ca, ASYNC_ECERT, "TLS certificate verify failed: IP address mismatch");
    test_server_stop(&srv);
}

/* ---- handshakes that do not end well ---- */

TEST(tls_handshake_times_out_against_a_silent_listener) {
    static tls_cli_frame f;
    int port, lfd = test_listen_raw(4, &port); /* the kernel accepts; nobody answers */
    double t0 = now_s();
    ASSERT_EQ(run_real(ASYNC_CALL(tls_cli, &f, .port = port, .opts = {.no_verify = true}, .ms = 100)), 0);
    close(lfd);
    ASSERT_EQ(f.code, ASYNC_ETIMEDOUT);
    ASSERT_STR_EQ(f.msg, "TLS handshake timed out");
    ASSERT_EQ(f.fd_after, -1);
    /* the deadline, not something sooner, ended it (an upper bound on the wall clock would also count the
     * context's loading of the system's CAs, seconds under valgrind on a busy machine) */
    ASSERT(now_s() - t0 >= 0.1);
}

#define TLS_BIG ((size_t)1 << 20) /* bytes each way: far more than the sockets' buffers hold */
#define TLS_BIG_MS (4 * TEST_LONG_MS) /* their time, encrypted, under valgrind on a busy machine */

/* Small socket buffers, so that TLS_BIG cannot fit in them and TLS writes have to wait. */
static void tls_small_buffers(int fd) {
    int n = 32 * 1024;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &n, sizeof n);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &n, sizeof n);
}

/* What the connections of a server of ours do: `what` 0 read what comes and close, 1 read and answer in
 * plain HTTP, 2 the TLS handshake with ctx, then echo one line, 3 the handshake, then TLS_BIG bytes
 * read and sent back; close_after: the server closes after the
 * first connection. */
typedef struct {
    async_tls_ctx *ctx;
    int what;
    async_server *srv;
    bool close_after;
} tls_peer_arg;

ASYNC_DEF(tls_peer, async_stream *s; tls_peer_arg *arg; size_t n; const char *line; size_t len; char *big;) {
    /* no grace limit: every await of the connection has its own deadline */
    if (f->arg->close_after) async_server_close(f->arg->srv, -1);
    if (f->arg->what == 3) {
        f->big = (char *)malloc(TLS_BIG);
        ASSERT(f->big != NULL);
        tls_small_buffers(async_stream_fd(f->s));
        ASYNC_TRY(t) {
            AWAIT_STREAM_TLS_ACCEPT(t, f->s, f->arg->ctx, TEST_LONG_MS);
            AWAIT_STREAM_READEXACTLY(t, f->s, f->big, TLS_BIG, TLS_BIG_MS);
            ASSERT_EQ(async_stream_write(f->s, f->big, TLS_BIG), 0);
            AWAIT_STREAM_DRAIN(t, f->s, TLS_BIG_MS);
        }
        ASYNC_FINALLY(t) {
            free(f->big);
        }
        ASYNC_END_TRY(t);
    } else if (f->arg->what == 2) {
        AWAIT_STREAM_TLS_ACCEPT(t, f->s, f->arg->ctx, TEST_LONG_MS);
        AWAIT_STREAM_READLINE(t, f->s, &f->line, &f->len, 256, TEST_LONG_MS);
        async_stream_write(f->s, f->line, f->len);
        AWAIT_STREAM_DRAIN(t, f->s, TEST_LONG_MS);
    } else {
        AWAIT_STREAM_FILL(t, f->s, 65536, &f->n, TEST_LONG_MS); /* the ClientHello */
        if (f->arg->what == 1) {
            async_stream_write(f->s, "HTTP/1.1 400 Bad Request\r\n\r\n", 28);
            AWAIT_STREAM_DRAIN(t, f->s, TEST_LONG_MS);
        }
    }
} ASYNC_END_DEF

static async_task *tls_peer_new(void *frame, async_stream *s, void *arg) {
    return ASYNC_CALL(tls_peer, (tls_peer_frame *)frame, s, (tls_peer_arg *)arg);
}

/* A server context with the CA-signed certificate, accepting http/1.1. */
static async_tls_ctx *tls_server_ctx(void) {
    async_tls_opts so = {.server = true, .alpn = "http/1.1"};
    async_tls_ctx *ctx = NULL;
    so.cert_file = tls_file("srv.pem");
    so.key_file = tls_file("srv.key");
    ASSERT_EQ(async_tls_ctx_new(&ctx, &so), 0);
    return ctx;
}

/* Runs our client against a server of ours that does `what`, on one loop. */
ASYNC_DEF(tls_duel, int what; tls_cli_frame *cli; const char *host; async_tls_opts opts; async_server srv;
          async_group g; tls_peer_arg arg;) {
    f->arg.what = f->what;
    if (f->what == 2) f->arg.ctx = tls_server_ctx();
    ASSERT_EQ(async_server_listen(&f->srv, "127.0.0.1", 0, 0, sizeof(tls_peer_frame), tls_peer_new, &f->arg), 0);
    ASYNC_SPAWN(t, &f->g, async_server_serve(&f->srv));
    AWAIT(t, ASYNC_CALL(tls_cli, f->cli, .port = async_server_port(&f->srv), .host = f->host, .opts = f->opts,
                        .send = "over tls\n", .lines = 1));
    async_server_close(&f->srv, TEST_LONG_MS);
    AWAIT_GROUP(t, &f->g);
    async_tls_ctx_free(f->arg.ctx);
} ASYNC_END_DEF

TEST(tls_peer_closing_or_speaking_plain_text_mid_handshake) {
    static tls_duel_frame d, e;
    static tls_cli_frame f, g;
    ASSERT_EQ(run_real(ASYNC_CALL(tls_duel, &d, 0, &f, "localhost", {.no_verify = true})), 0);
    ASSERT_EQ(f.code, ASYNC_ENODATA);
    ASSERT_STR_EQ(f.msg, "connection closed during the TLS handshake");
    ASSERT_EQ(f.fd_after, -1);
    ASSERT_EQ(run_real(ASYNC_CALL(tls_duel, &e, 1, &g, "localhost", {.no_verify = true})), 0);
    ASSERT_EQ(g.code, ASYNC_EPROTO);
    ASSERT_STR_EQ(g.msg, "TLS handshake failed: the peer is not speaking TLS");
}

TEST(tls_our_client_and_our_server_stream) {
    static tls_duel_frame d;
    static tls_cli_frame f;
    tls_make_certs();
    ASSERT_EQ(run_real(ASYNC_CALL(tls_duel, &d, 2, &f, "localhost",
                                  {.ca_file = tls_file("ca.pem"), .alpn = "http/1.1"})),
              0);
    ASSERT_EQ(f.code, 0);
    ASSERT_STR_EQ(f.got, "over tls\n");
    ASSERT_STR_EQ(f.alpn, "http/1.1");
}

/* The handshake alone, without a deadline. */
ASYNC_DEF(tls_hs, async_stream *s; async_tls_ctx *ctx;) {
    AWAIT_STREAM_TLS_CONNECT(t, f->s, f->ctx, "localhost", -1);
} ASYNC_END_DEF

/* Cancels a handshake once it waits for the server's answer, which never comes. */
ASYNC_DEF(tls_cancel, int port; async_tls_ctx *ctx; async_stream s; async_group g; tls_hs_frame hs; int code;
          int fd_after;) {
    ASSERT_EQ(async_tls_ctx_new(&f->ctx, NULL), 0);
    AWAIT_STREAM_CONNECT(t, &f->s, "127.0.0.1", f->port, TEST_LONG_MS);
    ASYNC_SPAWN(t, &f->g, ASYNC_CALL(tls_hs, &f->hs, &f->s, f->ctx));
    AWAIT_SLEEP(t, 0); /* its first step sent the ClientHello and waits */
    ASSERT_EQ(async_task_code(&f->hs.task), ASYNC_EINPROGRESS);
    async_cancel(&f->hs.task);
    ASYNC_TRY(t) {
        AWAIT_GROUP(t, &f->g);
    }
    ASYNC_CATCH(t) {}
    ASYNC_END_TRY(t);
    f->code = async_task_code(&f->hs.task);
    f->fd_after = async_stream_fd(&f->s);
    async_stream_close(&f->s);
    async_tls_ctx_free(f->ctx);
} ASYNC_END_DEF

TEST(tls_cancelled_handshake_closes_the_stream) {
    static tls_cancel_frame f;
    int port, lfd = test_listen_raw(4, &port);
    ASSERT_EQ(run_real(ASYNC_CALL(tls_cancel, &f, port)), 0);
    close(lfd);
    ASSERT_EQ(f.code, ASYNC_ECANCELED);
    ASSERT_EQ(f.fd_after, -1);
}

/* ---- our server stream, other clients ---- */

/* Listens with a server of ours that handshakes and echoes one line, runs the shell command `client` with
 * its port (%d) once, and serves that one connection; the client's output into out. */
ASYNC_DEF(tls_serve_one, const char *client; char *out; size_t cap; async_server srv; async_group g;
          tls_peer_arg arg; FILE *p; async_deadline d;) {
    char cmd[1024];
    f->arg.what = 2;
    f->arg.ctx = tls_server_ctx();
    f->arg.srv = &f->srv;
    f->arg.close_after = true;
    ASSERT_EQ(async_server_listen(&f->srv, "127.0.0.1", 0, 0, sizeof(tls_peer_frame), tls_peer_new, &f->arg), 0);
    snprintf(cmd, sizeof cmd, f->client, async_server_port(&f->srv), tls_file("ca.pem"));
    f->p = popen(cmd, "r");
    ASSERT(f->p != NULL);
    ASYNC_SPAWN(t, &f->g, async_server_serve(&f->srv));
    ASYNC_TIMEOUT(t, &f->d, 2 * TEST_LONG_MS) { /* bounded: a connection refused for want of memory never ends it */
        AWAIT_GROUP(t, &f->g);
    }
    ASYNC_END_TIMEOUT(t, &f->d);
    f->out[fread(f->out, 1, f->cap - 1, f->p)] = '\0';
    ASSERT_EQ(pclose(f->p), 0);
    async_tls_ctx_free(f->arg.ctx);
} ASYNC_END_DEF

TEST(tls_server_stream_with_openssl_s_client) {
    static tls_serve_one_frame f;
    static char out[256];
    tls_make_certs();
    ASSERT_EQ(run_real(ASYNC_CALL(tls_serve_one, &f,
                                  "printf 'from s_client\\n' | openssl s_client -connect 127.0.0.1:%d -CAfile '%s' "
                                  "-servername localhost -verify_hostname localhost -verify_return_error -quiet "
                                  "2>/dev/null",
                                  out, sizeof out)),
              0);
    ASSERT_STR_EQ(out, "from s_client\n");
}

TEST(tls_server_stream_with_python_client_agrees_on_alpn) {
    static tls_serve_one_frame f;
    static char out[256];
    tls_make_certs();
    test_need("python3");
    setenv("TLS_PY_CLIENT",
           "import socket, ssl, sys\n"
           "ctx = ssl.create_default_context(cafile=sys.argv[2])\n"
           "ctx.set_alpn_protocols(['h2', 'http/1.1'])\n"
           "s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', int(sys.argv[1]))), server_hostname='localhost')\n"
           "s.sendall(b'from python\\n')\n"
           "print(s.selected_alpn_protocol(), s.makefile('rb').readline().decode(), end='')\n",
           1);
    ASSERT_EQ(run_real(ASYNC_CALL(tls_serve_one, &f, "python3 -c \"$TLS_PY_CLIENT\" %d '%s'", out, sizeof out)), 0);
    ASSERT_STR_EQ(out, "http/1.1 from python\n");
}

/* ---- https in the HTTP client ---- */

/* Two GETs of https://localhost:port/a?b=1 through a session with opts; what the last one raised. */
ASYNC_DEF(tls_https, int port; async_http_session_opts opts; async_http_session s; async_http_call c;
          char url[128]; int i; int code; char msg[160]; int status; char body[64]; unsigned reused;) {
    ASSERT_EQ(async_http_session_init(&f->s, &f->opts), 0);
    snprintf(f->url, sizeof f->url, "https://localhost:%d/a?b=1", f->port);
    for (f->i = 0; f->i < 2 && !f->code; f->i++) {
        memset(&f->c, 0, sizeof f->c);
        f->c.url = f->url;
        ASYNC_TRY(t) {
            AWAIT_HTTP_REQUEST(t, &f->s, &f->c);
            f->status = async_http_call_status(&f->c);
            snprintf(f->body, sizeof f->body, "%s", async_http_call_body(&f->c, NULL));
        }
        ASYNC_CATCH(t) {
            f->code = async_caught(t)->code;
            snprintf(f->msg, sizeof f->msg, "%s", async_error_message(async_caught(t)));
        }
        ASYNC_END_TRY(t);
        async_http_call_close(&f->c);
    }
    f->reused = async_http_session_reused(&f->s);
    async_http_session_close(&f->s);
} ASYNC_END_DEF

/* The simple client's GET of url: what it raised. */
ASYNC_DEF(tls_get, const char *url; async_http_client c; int code; char msg[160];) {
    ASYNC_TRY(t) {
        AWAIT(t, async_http_client_get(&f->c, f->url, TEST_LONG_MS));
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
        snprintf(f->msg, sizeof f->msg, "%s", async_error_message(async_caught(t)));
    }
    ASYNC_END_TRY(t);
    async_http_client_close(&f->c);
} ASYNC_END_DEF

TEST(tls_https_get_through_a_session_against_python) {
    static tls_https_frame f, g, h;
    static tls_get_frame k;
    static char url[64];
    async_http_session_opts test_ca = {0}, off = {0};
    test_server srv;
    tls_make_certs();
    tls_py_start(&srv, "srv.pem", "srv.key", "https");
    test_ca.ca_file = tls_file("ca.pem");
    off.tls_no_verify = true;
    ASSERT_EQ(run_real(ASYNC_CALL(tls_https, &f, srv.port, test_ca)), 0);
    ASSERT_EQ(run_real(ASYNC_CALL(tls_https, &g, srv.port)), 0); /* the system's store */
    ASSERT_EQ(run_real(ASYNC_CALL(tls_https, &h, srv.port, off)), 0);
    snprintf(url, sizeof url, "https://127.0.0.1:%d/", srv.port);
    ASSERT_EQ(run_real(ASYNC_CALL(tls_get, &k, url)), 0);
    test_server_stop(&srv);
    ASSERT_EQ(f.code, 0);
    ASSERT_EQ(f.status, 200);
    ASSERT_STR_EQ(f.body, "path=/a?b=1");
    ASSERT_EQ(f.reused, 1); /* the second GET went over the kept TLS connection */
    ASSERT_EQ(g.code, ASYNC_ECERT);
    ASSERT_STR_EQ(g.msg, "TLS certificate verify failed: unable to get local issuer certificate");
    ASSERT_EQ(h.code, 0);
    ASSERT_STR_EQ(h.body, "path=/a?b=1");
    ASSERT_EQ(k.code, ASYNC_ECERT);
}

/* ---- large transfers: TLS writes that wait, reads of many records ---- */

/* Sends TLS_BIG patterned bytes to a server of ours over TLS, reads them back, then the server's end. */
ASYNC_DEF(tls_big, async_server srv; async_group g; tls_peer_arg arg; async_tls_ctx *ctx; async_stream s;
          char *out, *in; size_t n; int same;) {
    async_tls_opts co = {.ca_file = NULL};
    size_t i;
    co.ca_file = tls_file("ca.pem");
    f->arg.what = 3;
    f->arg.ctx = tls_server_ctx();
    f->arg.srv = &f->srv;
    f->arg.close_after = true;
    ASSERT_EQ(async_tls_ctx_new(&f->ctx, &co), 0);
    ASSERT_EQ(async_server_listen(&f->srv, "127.0.0.1", 0, 0, sizeof(tls_peer_frame), tls_peer_new, &f->arg), 0);
    ASYNC_SPAWN(t, &f->g, async_server_serve(&f->srv));
    f->out = (char *)malloc(TLS_BIG);
    f->in = (char *)malloc(TLS_BIG);
    ASSERT(f->out && f->in);
    for (i = 0; i < TLS_BIG; i++) f->out[i] = (char)(i * 7 + i / 4093);
    AWAIT_STREAM_CONNECT(t, &f->s, "127.0.0.1", async_server_port(&f->srv), TEST_LONG_MS);
    tls_small_buffers(async_stream_fd(&f->s));
    AWAIT_STREAM_TLS_CONNECT(t, &f->s, f->ctx, "localhost", TEST_LONG_MS);
    ASSERT_EQ(async_stream_write(&f->s, f->out, TLS_BIG), 0);
    ASSERT(async_stream_pending(&f->s) > 0); /* the socket could not take it all: drain waits */
    AWAIT_STREAM_DRAIN(t, &f->s, TLS_BIG_MS);
    AWAIT_STREAM_READEXACTLY(t, &f->s, f->in, TLS_BIG, TLS_BIG_MS);
    f->same = memcmp(f->in, f->out, TLS_BIG) == 0;
    AWAIT_STREAM_READ(t, &f->s, f->in, 16, &f->n, TEST_LONG_MS); /* the server's close_notify: the end */
    AWAIT_GROUP(t, &f->g);
    free(f->out);
    free(f->in);
    async_stream_close(&f->s);
    async_tls_ctx_free(f->ctx);
    async_tls_ctx_free(f->arg.ctx);
} ASYNC_END_DEF

TEST(tls_large_transfer_both_ways_with_our_server) {
    static tls_big_frame f;
    tls_make_certs();
    ASSERT_EQ(run_real(ASYNC_CALL(tls_big, &f)), 0);
    ASSERT(f.same);
    ASSERT_EQ(f.n, 0);
}

/* ---- bad arguments and misuse ---- */

TEST(tls_ctx_new_rejects_bad_arguments) {
    async_tls_ctx *ctx = (async_tls_ctx *)&ctx;
    async_tls_opts o;
    tls_make_certs();
    ASSERT_EQ(async_tls_ctx_new(NULL, NULL), ASYNC_EINVAL);
    memset(&o, 0, sizeof o);
    o.server = true;
    ASSERT_EQ(async_tls_ctx_new(&ctx, &o), ASYNC_EINVAL); /* a server without its certificate */
    ASSERT(ctx == NULL);
    o.cert_file = tls_file("srv.pem");
    o.key_file = tls_file("self.key");
    ASSERT_EQ(async_tls_ctx_new(&ctx, &o), ASYNC_EINVAL); /* the key of another certificate */
    o.key_file = tls_file("nothing.key");
    ASSERT_EQ(async_tls_ctx_new(&ctx, &o), ASYNC_ENOENT);
    memset(&o, 0, sizeof o);
    o.ca_file = tls_file("ext.cnf");
    ASSERT_EQ(async_tls_ctx_new(&ctx, &o), ASYNC_EINVAL); /* not PEM */
    o.ca_file = tls_file("nothing.pem");
    ASSERT_EQ(async_tls_ctx_new(&ctx, &o), ASYNC_ENOENT);
    o.ca_file = NULL;
    o.alpn = "";
    ASSERT_EQ(async_tls_ctx_new(&ctx, &o), ASYNC_EINVAL);
    o.alpn = "http/1.1,";
    ASSERT_EQ(async_tls_ctx_new(&ctx, &o), ASYNC_EINVAL);
    o.alpn = ",h2";
    ASSERT_EQ(async_tls_ctx_new(&ctx, &o), ASYNC_EINVAL);
    o.alpn = "h2,http/1.1";
    ASSERT_EQ(async_tls_ctx_new(&ctx, &o), 0);
    async_tls_ctx_free(ctx);
    async_tls_ctx_free(NULL);
    ASSERT(async_stream_tls_alpn(NULL) == NULL);
}

/* One handshake in a task of its own with what it raised kept: server side or not, host. */
ASYNC_DEF(tls_try, async_stream *s; async_tls_ctx *ctx; bool server; const char *host; int64_t ms; int code;) {
    ASYNC_TRY(t) {
        if (f->server) AWAIT_STREAM_TLS_ACCEPT(t, f->s, f->ctx, f->ms);
        else AWAIT_STREAM_TLS_CONNECT(t, f->s, f->ctx, f->host, f->ms);
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

/* Misuse of the handshake on one end of a socket pair whose other end says nothing. */
ASYNC_DEF(tls_misuse, int fds[2]; async_tls_ctx *cli, *srv; async_stream s; tls_try_frame a; async_group g;
          char buf[8]; size_t n; int read_code;) {
    async_stream_open(&f->s, f->fds[0]);
    ASSERT(async_stream_tls_alpn(&f->s) == NULL); /* plain TCP */
    AWAIT_CALL(t, tls_try, &f->a, &f->s, f->srv, false, "localhost", 100);
    ASSERT_EQ(f->a.code, ASYNC_EINVAL); /* a server's context to connect */
    AWAIT_CALL(t, tls_try, &f->a, &f->s, f->cli, true, NULL, 100);
    ASSERT_EQ(f->a.code, ASYNC_EINVAL); /* a client's to accept */
    AWAIT_CALL(t, tls_try, &f->a, &f->s, f->cli, false, NULL, 100);
    ASSERT_EQ(f->a.code, ASYNC_EINVAL); /* verification without a host name */
    AWAIT_CALL(t, tls_try, &f->a, &f->s, f->cli, false, "localhost", (int64_t)ASYNC_MS_MAX + 1);
    ASSERT_EQ(f->a.code, ASYNC_ERANGE);
    ASSERT(write(f->fds[1], "x", 1) == 1); /* input that would precede the handshake */
    AWAIT_STREAM_FILL(t, &f->s, 16, &f->n, TEST_LONG_MS);
    AWAIT_CALL(t, tls_try, &f->a, &f->s, f->cli, false, "localhost", 100);
    ASSERT_EQ(f->a.code, ASYNC_EPROTO);
    async_stream_consume(&f->s, f->n);
    /* while a handshake waits, reads, writes and a second handshake are refused */
    ASYNC_SPAWN(t, &f->g, ASYNC_CALL(tls_try, &f->a, &f->s, f->cli, false, "localhost", -1));
    AWAIT_SLEEP(t, 0);
    ASSERT_EQ(async_stream_write(&f->s, "x", 1), ASYNC_EBUSY);
    ASYNC_TRY(t) {
        AWAIT_STREAM_READ(t, &f->s, f->buf, sizeof f->buf, &f->n, 100);
    }
    ASYNC_CATCH(t) {
        f->read_code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
    ASSERT_EQ(f->read_code, ASYNC_EBUSY);
    /* closing the stream under the handshake ends it with ASYNC_EBADF */
    async_stream_close(&f->s);
    AWAIT_GROUP(t, &f->g);
    ASSERT_EQ(f->a.code, ASYNC_EBADF);
    AWAIT_CALL(t, tls_try, &f->a, &f->s, f->cli, false, "localhost", 100);
    ASSERT_EQ(f->a.code, ASYNC_EBADF); /* a closed stream */
    close(f->fds[1]);
} ASYNC_END_DEF

TEST(tls_handshake_misuse_raises_clear_codes) {
    static tls_misuse_frame f;
    async_tls_ctx *cli, *srv;
    int fds[2];
    tls_make_certs();
    test_tcp_pair(fds);
    srv = tls_server_ctx();
    ASSERT_EQ(async_tls_ctx_new(&cli, NULL), 0);
    ASSERT_EQ(run_real(ASYNC_CALL(tls_misuse, &f, .fds = {fds[0], fds[1]}, .cli = cli, .srv = srv)), 0);
    async_tls_ctx_free(cli);
    async_tls_ctx_free(srv);
}

/* ---- the samples ---- */

TEST(tls_samples_fetch_https_urls) {
    test_server srv;
    char cmd[1024], out[512];
    FILE *p;
    size_t n;
    tls_make_certs();
    tls_py_start(&srv, "srv.pem", "srv.key", "https");
    setenv("SSL_CERT_FILE", tls_file("ca.pem"), 1); /* the system's store, as OpenSSL lets it be named */
    snprintf(cmd, sizeof cmd, SAMPLES_DIR "/web_scraping https://localhost:%d/a https://127.0.0.1:%d/bc && "
             SAMPLES_DIR "/fetch_json https://localhost:%d/j.json", srv.port, srv.port, srv.port);
    p = popen(cmd, "r");
    ASSERT(p != NULL);
    n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    ASSERT_EQ(pclose(p), 0);
    test_server_stop(&srv);
    snprintf(cmd, sizeof cmd,
             "Fetched 7 bytes from https://localhost:%d/a\nFetched 8 bytes from https://127.0.0.1:%d/bc\n"
             "path=/j.json\n",
             srv.port, srv.port);
    ASSERT_STR_EQ(out, cmd);
}

/* ---- https: the HTTP server over TLS ---- */

/* Answers "path=/a?b=1" after an await, as the python server does. */
ASYNC_HTTP_DEF(tls_path, char out[96];) {
    AWAIT_YIELD(t);
    snprintf(f->out, sizeof f->out, "path=%s%s%s", f->req->path, *f->req->query ? "?" : "", f->req->query);
    async_http_response_text(f->res, 200, f->out);
} ASYNC_END_DEF

static const async_http_route tls_routes[] = {ASYNC_HTTP_ROUTE("GET", "/a", tls_path), ASYNC_HTTP_ROUTES_END};

/* curl, as a real client, run on the loop's pool so that the server goes on meanwhile. */
static char tls_curl_out[512];
static int tls_curl(void *arg, intptr_t *result) {
    FILE *p = popen((const char *)arg, "r");
    size_t n;
    if (!p) return ASYNC_EIO;
    n = fread(tls_curl_out, 1, sizeof tls_curl_out - 1, p);
    tls_curl_out[n] = '\0';
    *result = pclose(p);
    return 0;
}

ASYNC_DEF(tls_https_server, async_http_server hs; async_tls_ctx *ctx, *client_ctx; async_group g; tls_https_frame ours;
          async_http_session_opts opts; async_thread_call call; char cmd[512]; int curl_status; unsigned long failed;
          async_stream plain; char buf[64]; size_t n;) {
    f->ctx = tls_server_ctx();
    ASSERT_EQ(async_http_server_listen(&f->hs, "127.0.0.1", 0, 0, NULL, tls_routes, NULL), 0);
    ASSERT_EQ(async_http_server_tls(&f->hs, f->ctx), 0);
    ASSERT_EQ(async_server_tls(&f->hs.server, NULL, 10), ASYNC_EINVAL);
    ASSERT_EQ(async_tls_ctx_new(&f->client_ctx, NULL), 0);
    ASSERT_EQ(async_server_tls(&f->hs.server, f->client_ctx, 10), ASYNC_EINVAL); /* a client's context */
    async_tls_ctx_free(f->client_ctx);
    ASSERT_EQ(async_server_tls(&f->hs.server, f->ctx, (int64_t)ASYNC_MS_MAX + 1), ASYNC_ERANGE);
    ASSERT_EQ(async_server_tls(NULL, f->ctx, 10), ASYNC_EINVAL);
    ASSERT_EQ(async_http_server_tls(NULL, f->ctx), ASYNC_EINVAL);
    ASYNC_SPAWN(t, &f->g, async_http_server_serve(&f->hs));
    ASSERT_EQ(async_http_server_tls(&f->hs, f->ctx), ASYNC_EINVAL); /* already serving */
    /* our session, verifying with the test CA, twice over one kept connection */
    f->opts.ca_file = tls_file("ca.pem");
    AWAIT_CALL(t, tls_https, &f->ours, async_http_server_port(&f->hs), f->opts);
    ASSERT_EQ(f->ours.code, 0);
    ASSERT_STR_EQ(f->ours.body, "path=/a?b=1");
    ASSERT_EQ(f->ours.reused, 1);
    /* curl: ALPN http/1.1 agreed, the certificate verified for localhost */
    snprintf(f->cmd, sizeof f->cmd,
             "curl -sS --max-time 5 --cacert %s -w ' %%{http_version} %%{response_code}' https://localhost:%d/a?b=1 2>&1",
             tls_file("ca.pem"), async_http_server_port(&f->hs));
    AWAIT_TO_THREAD(t, &f->call, tls_curl, f->cmd, NULL);
    f->curl_status = (int)async_thread_call_result(&f->call);
    ASSERT_EQ(f->curl_status, 0);
    ASSERT_STR_EQ(tls_curl_out, "path=/a?b=1 1.1 200");
    /* a client that speaks plain HTTP to it: its handshake fails, the connection is closed */
    f->failed = f->hs.server.tls_failed;
    AWAIT_STREAM_CONNECT(t, &f->plain, "127.0.0.1", async_http_server_port(&f->hs), TEST_LONG_MS);
    ASSERT_EQ(async_stream_write(&f->plain, "GET /a HTTP/1.1\r\nHost: t\r\n\r\n", 29), 0);
    ASYNC_TRY(t) {
        do { /* TLS's alert, then the end (or a reset: our request was never read) */
            AWAIT_STREAM_READ(t, &f->plain, f->buf, sizeof f->buf, &f->n, TEST_LONG_MS);
        } while (f->n);
    }
    ASYNC_CATCH(t) {
        ASSERT_EQ(async_caught(t)->code, ASYNC_ECONNRESET);
    }
    ASYNC_END_TRY(t);
    async_stream_close(&f->plain);
    ASSERT_EQ(f->hs.server.tls_failed, f->failed + 1);
    async_http_server_close(&f->hs, TEST_LONG_MS);
    AWAIT_GROUP(t, &f->g);
    async_tls_ctx_free(f->ctx);
} ASYNC_END_DEF

TEST(tls_https_server_answers_curl_and_our_session) {
    static tls_https_server_frame f;
    test_need("curl");
    tls_make_certs();
    ASSERT_EQ(run_real(ASYNC_CALL(tls_https_server, &f)), 0);
}
