/* TLS over a stream, with OpenSSL's libssl: contexts, the handshake, and the session the stream's reads
 * and writes go through afterwards (net.h's net_tls: net_stream.c calls it only through pointers, so a
 * program that never starts TLS does not pull this file, nor libssl, in).
 *
 * libssl talks to the socket through a BIO of our own rather than its socket BIO: that one writes with
 * write(2), which raises SIGPIPE on a connection the peer reset; ours sends with MSG_NOSIGNAL as the
 * stream does, and keeps the errno of a failed call (libssl's error queue does not). The socket is
 * non-blocking: libssl answers "want read" or "want write", and the stream waits for that readiness.
 *
 * The simulated world (async/sim.h) has no TLS: a handshake on a stream of the world, and
 * async_server_tls on a server listening in it, are refused with ASYNC_ENOTSUP (the world's sockets
 * are no descriptors libssl's BIO could send on; a scenario speaks plain TCP or HTTP there). */
#include "net.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

struct async_tls_ctx {
    SSL_CTX *ssl;
    bool server, verify;
    unsigned char alpn[256]; /* the ALPN list in its wire form: length-prefixed names */
    size_t alpn_len;
};

/* A stream's session (s->tls). */
typedef struct tls_state {
    net_tls base; /* first: the stream sees only this */
    SSL *ssl;
    int fd;
    int sys_err; /* errno of the BIO's last failed call, 0 for none or the end of the stream */
    bool eof;    /* the BIO's last read met the end of the stream */
    char alpn[256];
} tls_state;

/* ---- the BIO over the stream's socket ---- */

static BIO_METHOD *bio_method;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;

static int bio_write(BIO *b, const char *data, size_t n, size_t *done) {
    tls_state *st = (tls_state *)BIO_get_data(b);
    ssize_t r;
    BIO_clear_retry_flags(b);
    do r = send(st->fd, data, n, MSG_NOSIGNAL);
    while (r < 0 && errno == EINTR);
    if (r >= 0) {
        *done = (size_t)r;
        return 1;
    }
    if (NET_WOULD_BLOCK(errno)) BIO_set_retry_write(b);
    else st->sys_err = errno;
    return 0;
}

static int bio_read(BIO *b, char *buf, size_t n, size_t *got) {
    tls_state *st = (tls_state *)BIO_get_data(b);
    ssize_t r;
    BIO_clear_retry_flags(b);
    do r = recv(st->fd, buf, n, 0);
    while (r < 0 && errno == EINTR);
    if (r > 0) {
        *got = (size_t)r;
        return 1;
    }
    if (r == 0) st->eof = true; /* libssl asks BIO_CTRL_EOF next */
    else if (NET_WOULD_BLOCK(errno)) BIO_set_retry_read(b);
    else st->sys_err = errno;
    return 0;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr) {
    (void)num;
    (void)ptr;
    if (cmd == BIO_CTRL_EOF) return ((tls_state *)BIO_get_data(b))->eof;
    return cmd == BIO_CTRL_FLUSH; /* writes are not buffered; nothing else is supported */
}

static void bio_init(void) {
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "async.h stream");
    if (m && (!BIO_meth_set_write_ex(m, bio_write) || !BIO_meth_set_read_ex(m, bio_read) ||
              !BIO_meth_set_ctrl(m, bio_ctrl))) {
        BIO_meth_free(m);
        m = NULL;
    }
    bio_method = m; /* kept for the process's life: every session uses it */
}

/* ---- contexts ---- */

/* A file given in the options can be read: 0, or its errno's code (a clearer answer than libssl's). */
static int readable(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return async__errno_code(errno);
    fclose(f);
    return 0;
}

/* "h2,http/1.1" into the wire form (each name after its length). 0 or ASYNC_EINVAL. */
static int alpn_parse(async_tls_ctx *c, const char *list) {
    const char *p = list;
    c->alpn_len = 0;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n == 0 || n > 255 || c->alpn_len + 1 + n > sizeof c->alpn) return ASYNC_EINVAL;
        c->alpn[c->alpn_len++] = (unsigned char)n;
        memcpy(c->alpn + c->alpn_len, p, n);
        c->alpn_len += n;
        p += n;
        if (*p == ',' && !*++p) return ASYNC_EINVAL; /* a trailing comma: an empty name */
    }
    return c->alpn_len ? 0 : ASYNC_EINVAL;
}

/* The server's choice: its first protocol that the client offers; none in common goes on without ALPN. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                       unsigned inlen, void *arg) {
    const async_tls_ctx *c = (const async_tls_ctx *)arg;
    unsigned char *sel;
    (void)ssl;
    if (SSL_select_next_proto(&sel, outlen, c->alpn, (unsigned)c->alpn_len, in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static int ctx_setup(async_tls_ctx *c, const async_tls_opts *o) {
    int rc;
    SSL_CTX_set_min_proto_version(c->ssl, TLS1_2_VERSION);
    /* the stream's write buffer moves when it grows, and hands libssl what it has, record by record */
    SSL_CTX_set_mode(c->ssl, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE);
    /* an end without close_notify is the end (see net.h); no renegotiation: a write never has to read */
    SSL_CTX_set_options(c->ssl, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
    if (o->alpn && (rc = alpn_parse(c, o->alpn)) != 0) return rc;
    if (c->server) {
        if ((rc = readable(o->cert_file)) != 0 || (rc = readable(o->key_file)) != 0) return rc;
        if (SSL_CTX_use_certificate_chain_file(c->ssl, o->cert_file) != 1 ||
            SSL_CTX_use_PrivateKey_file(c->ssl, o->key_file, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(c->ssl) != 1)
            return ASYNC_EINVAL;
        if (c->alpn_len) SSL_CTX_set_alpn_select_cb(c->ssl, alpn_select, c);
        return 0;
    }
    c->verify = !o->no_verify;
    SSL_CTX_set_verify(c->ssl, c->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    if (o->ca_file) {
        if ((rc = readable(o->ca_file)) != 0) return rc;
        if (SSL_CTX_load_verify_locations(c->ssl, o->ca_file, NULL) != 1) return ASYNC_EINVAL;
    } else if (c->verify && SSL_CTX_set_default_verify_paths(c->ssl) != 1) {
        return ASYNC_ENOMEM;
    }
    if (c->alpn_len && SSL_CTX_set_alpn_protos(c->ssl, c->alpn, (unsigned)c->alpn_len) != 0) return ASYNC_ENOMEM;
    return 0;
}

int async_tls_ctx_new(async_tls_ctx **ctx, const async_tls_opts *opts) {
    static const async_tls_opts client = {false, false, NULL, NULL, NULL, NULL};
    const async_tls_opts *o = opts ? opts : &client;
    async_tls_ctx *c;
    int rc;
    if (!ctx) return ASYNC_EINVAL;
    *ctx = NULL;
    if (o->server && (!o->cert_file || !o->key_file)) return ASYNC_EINVAL;
    c = (async_tls_ctx *)calloc(1, sizeof *c);
    if (!c) return ASYNC_ENOMEM;
    c->server = o->server;
    ERR_clear_error();
    c->ssl = SSL_CTX_new(c->server ? TLS_server_method() : TLS_client_method());
    rc = c->ssl ? ctx_setup(c, o) : ASYNC_ENOMEM;
    ERR_clear_error(); /* what a failed load left behind is said by rc */
    if (rc) {
        async_tls_ctx_free(c);
        return rc;
    }
    *ctx = c;
    return 0;
}

void async_tls_ctx_free(async_tls_ctx *ctx) {
    if (!ctx) return;
    SSL_CTX_free(ctx->ssl); /* sessions made from it hold a reference of their own */
    free(ctx);
}

/* ---- the session's reads and writes (the stream calls them through net_tls) ---- */

/* A failed call that cannot go on: the stream's sticky error, libssl's queue emptied. */
static long tls_fail(async_stream *s, int e) {
    tls_state *st = (tls_state *)s->tls;
    int code = ASYNC_EPROTO;
    if (e == SSL_ERROR_SYSCALL) code = st->sys_err ? async__errno_code(st->sys_err) : ASYNC_ECONNRESET;
    ERR_clear_error();
    s->error = code;
    return code;
}

/* One SSL_read or SSL_write: the bytes moved, 0 at the end (reads), ASYNC_EAGAIN with the readiness to
 * wait for in *want, or the session's fatal error. */
static long tls_io(async_stream *s, void *buf, size_t n, bool write, unsigned *want) {
    tls_state *st = (tls_state *)s->tls;
    size_t done = 0;
    int r, e;
    ERR_clear_error();
    r = write ? SSL_write_ex(st->ssl, buf, n, &done) : SSL_read_ex(st->ssl, buf, n, &done);
    if (r == 1) return (long)done;
    e = SSL_get_error(st->ssl, r);
    if (e == SSL_ERROR_ZERO_RETURN) return 0; /* close_notify, or the end of the stream (see ctx_setup) */
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        *want = e == SSL_ERROR_WANT_READ ? ASYNC_IO_READ : ASYNC_IO_WRITE;
        return ASYNC_EAGAIN;
    }
    return tls_fail(s, e);
}

static long tls_recv(async_stream *s, void *buf, size_t n) {
    return tls_io(s, buf, n, false, &((tls_state *)s->tls)->base.rwant);
}

static long tls_send(async_stream *s, const void *buf, size_t n) {
    return tls_io(s, (void *)(uintptr_t)buf, n, true, &((tls_state *)s->tls)->base.wwant);
}

static void tls_close(async_stream *s) {
    tls_state *st = (tls_state *)s->tls;
    /* close_notify, once, without waiting; not after an error (libssl forbids it), nor over a record
     * half sent (output still queued), nor in the middle of the handshake */
    if (st->base.ready && !s->error && (s->flags & NS_OPEN) && s->wpos == s->wlen) {
        ERR_clear_error();
        SSL_shutdown(st->ssl);
    }
    ERR_clear_error();
    SSL_free(st->ssl); /* and the BIO with it */
    free(st);
    s->tls = NULL;
}

/* ---- the handshake ---- */

/* Errors of a failed handshake, each a static record that says what failed. */
static const async_error e_timeout = {ASYNC_ETIMEDOUT, "TLS handshake timed out"};
static const async_error e_eof = {ASYNC_ENODATA, "connection closed during the TLS handshake"};
static const async_error e_reset = {ASYNC_ECONNRESET, "connection reset during the TLS handshake"};
static const async_error e_failed = {ASYNC_EPROTO, "TLS handshake failed"};
static const async_error e_verify = {ASYNC_ECERT, "TLS certificate verify failed"};

/* An error record for a libssl number: a verify result, or the reason of the error queue's first entry. */
typedef struct tls_reason {
    long key;
    async_error error;
} tls_reason;

static const tls_reason verify_errors[] = {
    {X509_V_ERR_HOSTNAME_MISMATCH, {ASYNC_ECERT, "TLS certificate verify failed: host name mismatch"}},
    {X509_V_ERR_IP_ADDRESS_MISMATCH, {ASYNC_ECERT, "TLS certificate verify failed: IP address mismatch"}},
    {X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, {ASYNC_ECERT, "TLS certificate verify failed: self-signed certificate"}},
    {X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN,
     {ASYNC_ECERT, "TLS certificate verify failed: self-signed certificate in certificate chain"}},
    {X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
     {ASYNC_ECERT, "TLS certificate verify failed: unable to get local issuer certificate"}},
    {X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT, {ASYNC_ECERT, "TLS certificate verify failed: unable to get issuer certificate"}},
    {X509_V_ERR_CERT_HAS_EXPIRED, {ASYNC_ECERT, "TLS certificate verify failed: certificate has expired"}},
    {X509_V_ERR_CERT_NOT_YET_VALID, {ASYNC_ECERT, "TLS certificate verify failed: certificate is not yet valid"}},
    {X509_V_ERR_CERT_REVOKED, {ASYNC_ECERT, "TLS certificate verify failed: certificate revoked"}},
    {X509_V_ERR_INVALID_PURPOSE, {ASYNC_ECERT, "TLS certificate verify failed: unsuitable certificate purpose"}},
};

static const tls_reason handshake_errors[] = {
    {SSL_R_WRONG_VERSION_NUMBER, {ASYNC_EPROTO, "TLS handshake failed: the peer is not speaking TLS"}},
    {SSL_R_HTTP_REQUEST, {ASYNC_EPROTO, "TLS handshake failed: the peer spoke plain HTTP"}},
    {SSL_R_UNSUPPORTED_PROTOCOL, {ASYNC_EPROTO, "TLS handshake failed: no TLS version in common"}},
    {SSL_R_NO_SHARED_CIPHER, {ASYNC_EPROTO, "TLS handshake failed: no cipher in common"}},
    {SSL_R_NO_APPLICATION_PROTOCOL, {ASYNC_EPROTO, "TLS handshake failed: no ALPN protocol in common"}},
    {SSL_R_TLSV1_ALERT_UNKNOWN_CA, {ASYNC_EPROTO, "TLS handshake failed: the peer does not trust our certificate"}},
    {SSL_R_SSLV3_ALERT_BAD_CERTIFICATE, {ASYNC_EPROTO, "TLS handshake failed: the peer rejected our certificate"}},
    {SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE, {ASYNC_EPROTO, "TLS handshake failed: the peer refused the handshake"}},
    {SSL_R_TLSV1_ALERT_PROTOCOL_VERSION, {ASYNC_EPROTO, "TLS handshake failed: the peer refused our TLS version"}},
    {SSL_R_TLSV1_UNRECOGNIZED_NAME, {ASYNC_EPROTO, "TLS handshake failed: the peer does not serve that host name"}},
    {SSL_R_UNEXPECTED_EOF_WHILE_READING, {ASYNC_ENODATA, "connection closed during the TLS handshake"}},
};

/* table's record for key, else `other`. */
static const async_error *reason_of(const tls_reason *table, size_t n, long key, const async_error *other) {
    size_t i;
    for (i = 0; i < n; i++)
        if (table[i].key == key) return &table[i].error;
    return other;
}

/* What a handshake that ended with SSL_get_error's e raises. */
static const async_error *handshake_error(tls_state *st, int e) {
    if (e == SSL_ERROR_SSL) {
        long v = SSL_get_verify_result(st->ssl);
        if (v != X509_V_OK) return reason_of(verify_errors, sizeof verify_errors / sizeof verify_errors[0], v, &e_verify);
        return reason_of(handshake_errors, sizeof handshake_errors / sizeof handshake_errors[0],
                         ERR_GET_REASON(ERR_peek_error()), st->eof ? &e_eof : &e_failed);
    }
    if (e == SSL_ERROR_SYSCALL && st->sys_err) {
        int code = async__errno_code(st->sys_err);
        return code == ASYNC_ECONNRESET ? &e_reset : async_error_of(code);
    }
    if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN) return &e_eof;
    return &e_failed;
}

/* A handshake that cannot go on: the stream is closed (its session freed with it), the error raised. */
static int handshake_fail(async_task *t, async_stream *s, const async_error *e) {
    ERR_clear_error();
    async_stream_close(s);
    async__raise(t, e);
    return ASYNC__RAISE;
}

/* One step of the handshake: GO once it is done, WAIT for the readiness it needs, or a raise. */
static int handshake_step(async_task *t, async_stream *s) {
    tls_state *st = (tls_state *)s->tls;
    int r, e, rc;
    ERR_clear_error();
    r = SSL_do_handshake(st->ssl);
    if (r == 1) {
        const unsigned char *p = NULL;
        unsigned n = 0;
        SSL_get0_alpn_selected(st->ssl, &p, &n);
        if (p && n < sizeof st->alpn) memcpy(st->alpn, p, n);
        st->alpn[p && n < sizeof st->alpn ? n : 0] = '\0';
        st->base.ready = true;
        s->flags |= NS_WDONE;
        return ASYNC__GO;
    }
    e = SSL_get_error(st->ssl, r);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) return handshake_fail(t, s, handshake_error(st, e));
    rc = async__io_start(t, &s->wio, s->fd, e == SSL_ERROR_WANT_READ ? ASYNC_IO_READ : ASYNC_IO_WRITE,
                         net__remaining(async_task_loop(t), s->wdeadline, s->wms));
    if (rc == ASYNC__RAISE) handshake_fail(t, s, t->r.error); /* a cancellation already pending */
    return rc;
}

/* An IPv4 or IPv6 literal (also "[::1]"), which a certificate names as an IP address and SNI never
 * carries; copied into ip without its brackets. */
static bool ip_literal(const char *host, char ip[64]) {
    unsigned char bin[16];
    size_t n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        host++;
        n -= 2;
    }
    if (n >= 64) return false;
    memcpy(ip, host, n);
    ip[n] = '\0';
    return inet_pton(AF_INET, ip, bin) == 1 || inet_pton(AF_INET6, ip, bin) == 1;
}

/* Makes s's session for ctx: 0 or an error code (nothing is left behind on failure). */
static int session_new(async_stream *s, const async_tls_ctx *ctx, const char *host) {
    tls_state *st;
    BIO *bio;
    char ip[64];
    pthread_once(&bio_once, bio_init);
    if (!bio_method) return ASYNC_ENOMEM;
    st = (tls_state *)calloc(1, sizeof *st);
    if (!st) return ASYNC_ENOMEM;
    ERR_clear_error();
    st->ssl = SSL_new(ctx->ssl);
    bio = st->ssl ? BIO_new(bio_method) : NULL;
    if (!bio) {
        SSL_free(st->ssl);
        free(st);
        ERR_clear_error();
        return ASYNC_ENOMEM;
    }
    st->fd = s->fd;
    BIO_set_data(bio, st);
    BIO_set_init(bio, 1);
    SSL_set_bio(st->ssl, bio, bio); /* the session owns the BIO now */
    st->base.recv = tls_recv;
    st->base.send = tls_send;
    st->base.close = tls_close;
    st->base.rwant = ASYNC_IO_READ;
    st->base.wwant = ASYNC_IO_WRITE;
    s->tls = st;
    if (ctx->server) {
        SSL_set_accept_state(st->ssl);
        return 0;
    }
    SSL_set_connect_state(st->ssl);
    if (!host) return 0;
    if (ip_literal(host, ip)) {
        if (ctx->verify && X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(st->ssl), ip) != 1) return ASYNC_EINVAL;
        return 0;
    }
    if (SSL_set_tlsext_host_name(st->ssl, host) != 1) return ASYNC_EINVAL; /* SNI: a name of 1..255 bytes */
    if (ctx->verify && SSL_set1_host(st->ssl, host) != 1) return ASYNC_EINVAL;
    return 0;
}

int async__stream_tls_start(async_task *t, async_stream *s, async_tls_ctx *ctx, const char *host, bool server,
                            int64_t ms) {
    static const async_error buffered = {ASYNC_EPROTO, "input buffered before the TLS handshake"};
    size_t have;
    int rc;
    if (!s || !ctx || ctx->server != server || (!server && !host && ctx->verify))
        return async__raise_error_code(t, ASYNC_EINVAL);
    if (ms > ASYNC_MS_MAX) return async__raise_error_code(t, ASYNC_ERANGE);
    if (!(s->flags & NS_OPEN)) return async__raise_error_code(t, ASYNC_EBADF);
    if (s->world) {
        static const async_error no_tls = {ASYNC_ENOTSUP, "no TLS in the simulated world"};
        async__raise(t, &no_tls);
        return ASYNC__RAISE;
    }
    if (s->error) return async__raise_error_code(t, s->error);
    if (s->tls || net__io_waiting(&s->rio) || net__io_waiting(&s->wio) || async_stream_pending(s))
        return async__raise_error_code(t, ASYNC_EBUSY);
    async_stream_peek(s, &have);
    if (have) {
        async__raise(t, &buffered);
        return ASYNC__RAISE;
    }
    s->flags &= ~(NS_WDONE | NS_DRAINED);
    s->wms = ms < 0 ? -1 : (int32_t)ms;
    if (ms >= 0) s->wdeadline = async_loop_now(async_task_loop(t)) + (async_ms)ms;
    rc = session_new(s, ctx, server ? NULL : host);
    if (rc) {
        if (s->tls) tls_close(s); /* not yet ready: no close_notify */
        ERR_clear_error();
        return async__raise_error_code(t, rc);
    }
    return handshake_step(t, s);
}

int async__stream_tls_check(async_task *t, async_stream *s) {
    int rc;
    if (s->flags & NS_WDONE) {
        s->flags &= ~NS_WDONE;
        return ASYNC__GO;
    }
    rc = async__io_check(t, &s->wio);
    if (rc == ASYNC__WAIT) return rc;
    if (rc == ASYNC__RAISE) { /* deadline, cancellation, or the stream closed under the handshake */
        const async_error *e = t->r.error;
        if (s->tls) return handshake_fail(t, s, e && e->code == ASYNC_ETIMEDOUT ? &e_timeout : e);
        return rc;
    }
    rc = handshake_step(t, s);
    if (rc == ASYNC__GO) s->flags &= ~NS_WDONE;
    return rc;
}

const char *async_stream_tls_alpn(const async_stream *s) {
    return s && s->tls ? ((const tls_state *)s->tls)->alpn : NULL;
}

int async_server_tls(async_server *srv, async_tls_ctx *ctx, int64_t handshake_ms) {
    if (!srv || !ctx || !ctx->server || !srv->fn || srv->task.fn) return ASYNC_EINVAL;
    if (handshake_ms > ASYNC_MS_MAX) return ASYNC_ERANGE;
    if (srv->world) return ASYNC_ENOTSUP; /* no TLS in the simulated world */
    srv->tls = ctx;
    srv->tls_ms = handshake_ms < 0 ? -1 : (int32_t)handshake_ms;
    srv->tls_start = async__stream_tls_start;
    srv->tls_check = async__stream_tls_check;
    return 0;
}
