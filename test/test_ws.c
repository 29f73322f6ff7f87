/* WebSocket (RFC 6455), server side: the accept key and the upgrade's checks on hand-filled requests; an
 * echo server spoken to by a real client (python3's websockets); and crafted frames over a socket pair,
 * one case per rule a receiver must enforce (the ones the Autobahn suite checks): each asserts the close
 * code the endpoint sends back and what it raises. Then message limits, cancellation and the send side.
 * Real time; every wait has a deadline. */
#include "test.h"
#include "util.h"

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

/* ================================ the accept key and the handshake ================================ */

TEST(ws_accept_key_matches_rfc_6455_example) {
    char out[29];
    ASSERT_EQ(async_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out), 0);
    ASSERT_STR_EQ(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="); /* RFC 6455 1.3 */
    ASSERT_EQ(async_ws_accept_key("  dGhlIHNhbXBsZSBub25jZQ== ", out), 0);
    ASSERT_STR_EQ(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(ws_accept_key_refuses_what_is_not_16_bytes_of_base64) {
    char out[29];
    ASSERT_EQ(async_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ=", out), ASYNC_EINVAL);   /* short */
    ASSERT_EQ(async_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ===", out), ASYNC_EINVAL); /* long */
    ASSERT_EQ(async_ws_accept_key("dGhlIHNhbXBsZSBub25jZ!==", out), ASYNC_EINVAL);  /* not base64 */
    ASSERT_EQ(async_ws_accept_key("dGhlIHNhbXBsZSBub25jZR==", out), ASYNC_EINVAL);  /* bits past 16 bytes */
    ASSERT_EQ(async_ws_accept_key("dGhlIHNhbXBsZSBub25jZQAA", out), ASYNC_EINVAL);  /* no padding */
    ASSERT_EQ(async_ws_accept_key("", out), ASYNC_EINVAL);
    ASSERT_EQ(async_ws_accept_key(NULL, out), ASYNC_EINVAL);
    ASSERT_EQ(async_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", NULL), ASYNC_EINVAL);
}

/* A request of up to 8 header fields, filled by hand as the HTTP server fills one. */
typedef struct {
    async_http_request req;
    const char *names[8], *values[8];
} ws_req;

static const async_http_request *ws_request(ws_req *r, const char *method, int minor, const char *const *fields) {
    size_t i;
    memset(r, 0, sizeof *r);
    for (i = 0; fields[2 * i] && i < 8; i++) {
        r->names[i] = fields[2 * i];
        r->values[i] = fields[2 * i + 1];
    }
    r->req.method = method;
    r->req.target = "/";
    r->req.version_minor = minor;
    r->req.nheaders = i;
    r->req.names = r->names;
    r->req.values = r->values;
    return &r->req;
}

/* The handshake's code, status and head for one request. */
static int ws_shake(const char *method, int minor, const char *const *fields, int *status, char *head, size_t cap) {
    ws_req r;
    size_t len = 0;
    *status = 0;
    return async_ws_handshake(ws_request(&r, method, minor, fields), head, cap, &len, status);
}

TEST(ws_handshake_answers_a_valid_upgrade_with_101) {
    static const char *const ok[] = {"Host", "x", "upgrade", "WebSocket", "connection", "keep-alive, Upgrade",
                                     "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version", "13",
                                     NULL};
    char head[256];
    int status;
    ws_req r;
    size_t len = 0;
    ASSERT_EQ(async_ws_handshake(ws_request(&r, "GET", 1, ok), head, sizeof head, &len, &status), 0);
    ASSERT_EQ(status, 101);
    ASSERT_STR_EQ(head, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n");
    ASSERT_EQ(len, strlen(head));
    /* the token may come in a second Connection field */
    {
        static const char *const two[] = {"Host", "x", "Upgrade", "websocket", "Connection", "keep-alive", "Connection",
                                          "upgrade", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==",
                                          "Sec-WebSocket-Version", "13", NULL};
        ASSERT_EQ(ws_shake("GET", 1, two, &status, head, sizeof head), 0);
        ASSERT_EQ(status, 101);
    }
    /* no silent truncation: a head that does not fit */
    ASSERT_EQ(async_ws_handshake(ws_request(&r, "GET", 1, ok), head, 100, &len, &status), ASYNC_EOVERFLOW);
    ASSERT_EQ(async_ws_handshake(NULL, head, sizeof head, &len, &status), ASYNC_EINVAL);
    ASSERT_EQ(async_ws_handshake(ws_request(&r, "GET", 1, ok), NULL, sizeof head, &len, &status), ASYNC_EINVAL);
}

TEST(ws_handshake_refuses_bad_upgrades_with_400_or_426) {
    static const char *const no_upgrade[] = {"Connection", "Upgrade", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==",
                                             "Sec-WebSocket-Version", "13", NULL};
    static const char *const no_conn[] = {"Upgrade", "websocket", "Connection", "keep-alive, upgraded",
                                          "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version",
                                          "13", NULL};
    static const char *const other_proto[] = {"Upgrade", "h2c", "Connection", "Upgrade", "Sec-WebSocket-Key",
                                              "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version", "13", NULL};
    static const char *const bad_key[] = {"Upgrade", "websocket", "Connection", "Upgrade", "Sec-WebSocket-Key",
                                          "short==", "Sec-WebSocket-Version", "13", NULL};
    static const char *const no_key[] = {"Upgrade", "websocket", "Connection", "Upgrade", "Sec-WebSocket-Version",
                                         "13", NULL};
    static const char *const v8[] = {"Host", "x", "Upgrade", "websocket", "Connection", "Upgrade",
                                      "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version", "8",
                                      NULL};
    static const char *const no_version[] = {"Host", "x", "Upgrade", "websocket", "Connection", "Upgrade",
                                             "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==", NULL};
    static const char *const ok[] = {"Host", "x", "Upgrade", "websocket", "Connection", "Upgrade", "Sec-WebSocket-Key",
                                     "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version", "13", NULL};
    char head[256];
    int status;
    ASSERT_EQ(ws_shake("GET", 1, no_upgrade, &status, head, sizeof head), ASYNC_EPROTO);
    ASSERT_EQ(status, 400);
    ASSERT(strncmp(head, "HTTP/1.1 400 Bad Request\r\n", 26) == 0);
    ASSERT(strstr(head, "Connection: close\r\n"));
    ASSERT_EQ(ws_shake("GET", 1, no_conn, &status, head, sizeof head), ASYNC_EPROTO);
    ASSERT_EQ(status, 400);
    ASSERT_EQ(ws_shake("GET", 1, other_proto, &status, head, sizeof head), ASYNC_EPROTO);
    ASSERT_EQ(ws_shake("GET", 1, bad_key, &status, head, sizeof head), ASYNC_EPROTO);
    ASSERT_EQ(ws_shake("GET", 1, no_key, &status, head, sizeof head), ASYNC_EPROTO);
    ASSERT_EQ(ws_shake("GET", 1, ok + 2, &status, head, sizeof head), ASYNC_EPROTO); /* no Host */
    ASSERT_EQ(status, 400);
    ASSERT_EQ(ws_shake("GET", 1, ok, &status, head, sizeof head), 0);
    ASSERT_EQ(ws_shake("POST", 1, ok, &status, head, sizeof head), ASYNC_EPROTO);
    ASSERT_EQ(status, 400);
    ASSERT_EQ(ws_shake("GET", 0, ok, &status, head, sizeof head), ASYNC_EPROTO); /* HTTP/1.0 */
    ASSERT_EQ(ws_shake("GET", 1, v8, &status, head, sizeof head), ASYNC_ENOTSUP);
    ASSERT_EQ(status, 426);
    ASSERT(strncmp(head, "HTTP/1.1 426 Upgrade Required\r\n", 31) == 0);
    ASSERT(strstr(head, "\r\nSec-WebSocket-Version: 13\r\n"));
    ASSERT_EQ(ws_shake("GET", 1, no_version, &status, head, sizeof head), ASYNC_ENOTSUP);
    ASSERT_EQ(status, 426);
}

/* ================================ crafted frames over a socket pair ================================ */

/* A client frame: first byte b0 (FIN, RSV, opcode), masked unless `unmasked`, the payload. */
static size_t ws_frame(unsigned char *p, unsigned b0, const void *data, size_t len, int unmasked) {
    static const unsigned char key[4] = {0x37, 0xfa, 0x21, 0x3d};
    size_t h = 2, i;
    p[0] = (unsigned char)b0;
    if (len < 126) {
        p[1] = (unsigned char)len;
    } else if (len < 65536) {
        p[1] = 126;
        p[2] = (unsigned char)(len >> 8);
        p[3] = (unsigned char)len;
        h = 4;
    } else {
        p[1] = 127;
        for (i = 0; i < 8; i++) p[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
        h = 10;
    }
    if (unmasked) {
        memcpy(p + h, data, len);
        return h + len;
    }
    p[1] |= 0x80;
    memcpy(p + h, key, 4);
    for (i = 0; i < len; i++) p[h + 4 + i] = (unsigned char)(((const unsigned char *)data)[i] ^ key[i & 3]);
    return h + 4 + len;
}

#define FIN 0x80u

/* A close frame's payload: the code, then the reason. */
static size_t ws_close_payload(unsigned char *p, int code, const char *reason) {
    p[0] = (unsigned char)(code >> 8);
    p[1] = (unsigned char)code;
    memcpy(p + 2, reason, strlen(reason));
    return 2 + strlen(reason);
}

/* The server's side of a case: receives messages (echoing them back if `echo`) until the end or an error,
 * logging "T<len> " / "B<len> " / "C<code> " for each (and the text of a short text message in
 * brackets); then reads the rest to the end of the stream (so its close sends no reset) and closes. */
ASYNC_DEF(ws_srv, int fd; const async_ws_limits *lim; int echo; async_stream s; async_ws ws; async_ws_message msg;
          int code; char log[512]; char buf[256]; size_t n;) {
    ASSERT_EQ(async_stream_open(&f->s, f->fd), 0);
    ASSERT_EQ(async_ws_open(&f->ws, &f->s, f->lim), 0);
    ASYNC_TRY(t) {
        for (;;) {
            AWAIT_WS_RECV(t, &f->ws, &f->msg, TEST_LONG_MS);
            {
                size_t used = strlen(f->log);
                char kind = f->msg.opcode == ASYNC_WS_TEXT ? 'T' : f->msg.opcode == ASYNC_WS_BINARY ? 'B' : 'C';
                if (kind == 'C')
                    snprintf(f->log + used, sizeof f->log - used, "C%d ", f->msg.code);
                else if (kind == 'T' && f->msg.len < 40)
                    snprintf(f->log + used, sizeof f->log - used, "T%zu[%s] ", f->msg.len, f->msg.data);
                else
                    snprintf(f->log + used, sizeof f->log - used, "%c%zu ", kind, f->msg.len);
            }
            if (f->msg.opcode == ASYNC_WS_CLOSE) break;
            if (f->echo) AWAIT_WS_SEND(t, &f->ws, f->msg.opcode, f->msg.data, f->msg.len, TEST_LONG_MS);
        }
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
    async_ws_free(&f->ws);
    do {
        AWAIT_STREAM_READ(t, &f->s, f->buf, sizeof f->buf, &f->n, TEST_LONG_MS);
    } while (f->n);
    async_stream_close(&f->s);
} ASYNC_END_DEF

/* What the server sent, frame by frame: "T<len> ", "B<len> ", "P<len> " (pong), "C<code> " (0: no
 * code), "C<code>[reason] "; "!mask " if a server frame was masked. */
static void ws_answer(int fd, char *log, size_t cap) {
    static unsigned char in[(1 << 20) + 4096];
    size_t n = 0, pos = 0;
    struct timeval tv = {TEST_LONG_MS / 1000, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    for (;;) {
        ssize_t r = read(fd, in + n, sizeof in - n);
        if (r <= 0) break;
        n += (size_t)r;
    }
    log[0] = '\0';
    while (n - pos >= 2) {
        unsigned op = in[pos] & 15u, l7 = in[pos + 1] & 127u;
        size_t h = 2, len = l7, used = strlen(log), i;
        if (in[pos + 1] & 0x80) snprintf(log + used, cap - used, "!mask ");
        if (l7 == 126) {
            len = (size_t)in[pos + 2] << 8 | in[pos + 3];
            h = 4;
        } else if (l7 == 127) {
            for (len = 0, i = 0; i < 8; i++) len = len << 8 | in[pos + 2 + i];
            h = 10;
        }
        if (n - pos < h + len) break;
        used = strlen(log);
        if (op == 8 && len >= 2)
            snprintf(log + used, cap - used, len > 2 ? "C%d[%.*s] " : "C%d ", in[pos + h] << 8 | in[pos + h + 1],
                     (int)(len - 2), (const char *)in + pos + h + 2);
        else if (op == 8)
            snprintf(log + used, cap - used, "C0 ");
        else
            snprintf(log + used, cap - used, "%c%zu ", op == 1 ? 'T' : op == 2 ? 'B' : op == 10 ? 'P' : '?', len);
        pos += h + len;
    }
    if (pos != n) {
        size_t used = strlen(log);
        snprintf(log + used, cap - used, "+%zu", n - pos);
    }
}

/* One case: the client writes `in` and shuts its side, the server runs; what the server raised into
 * *code, its log into srv_log, and what it sent back into answer. */
static void ws_case(const void *in, size_t n, const async_ws_limits *lim, int echo, int *code, char *srv_log,
                    char *answer) {
    static ws_srv_frame f;
    int fds[2];
    test_tcp_pair(fds);
    ASSERT_EQ(write(fds[1], in, n), (ssize_t)n);
    shutdown(fds[1], SHUT_WR);
    memset(&f, 0, sizeof f);
    ASSERT_EQ(run_real(ASYNC_CALL(ws_srv, &f, fds[0], lim, echo)), 0);
    ws_answer(fds[1], answer, 512);
    close(fds[1]);
    *code = f.code;
    strcpy(srv_log, f.log);
}

/* Scratch for building cases. */
static unsigned char ws_in[1 << 18];
static char ws_log[512], ws_ans[512];
static int ws_code;

#define CASE(n, lim, echo) ws_case(ws_in, (n), (lim), (echo), &ws_code, ws_log, ws_ans)

TEST(ws_echoes_text_and_binary_and_answers_a_close) {
    size_t n = 0;
    unsigned char c[32];
    n += ws_frame(ws_in + n, FIN | 1, "hello", 5, 0);
    n += ws_frame(ws_in + n, FIN | 2, "\x00\x01\xff", 3, 0);
    n += ws_frame(ws_in + n, FIN | 8, c, ws_close_payload(c, 1000, "bye"), 0);
    CASE(n, NULL, 1);
    ASSERT_EQ(ws_code, 0);
    ASSERT_STR_EQ(ws_log, "T5[hello] B3 C1000 ");
    ASSERT_STR_EQ(ws_ans, "T5 B3 C1000 "); /* unmasked, and the close's code echoed */
}

TEST(ws_ping_is_answered_and_pong_dropped) {
    size_t n = 0;
    n += ws_frame(ws_in + n, FIN | 9, "abc", 3, 0);
    n += ws_frame(ws_in + n, FIN | 10, "unsolicited", 11, 0);
    n += ws_frame(ws_in + n, FIN | 9, "", 0, 0);
    n += ws_frame(ws_in + n, FIN | 8, "", 0, 0);
    CASE(n, NULL, 0);
    ASSERT_EQ(ws_code, 0);
    ASSERT_STR_EQ(ws_log, "C1005 "); /* a close with no code */
    ASSERT_STR_EQ(ws_ans, "P3 P0 C0 ");
}

TEST(ws_fragments_are_joined_with_control_frames_between_them) {
    size_t n = 0;
    n += ws_frame(ws_in + n, 1, "frag", 4, 0);
    n += ws_frame(ws_in + n, FIN | 9, "x", 1, 0); /* a ping inside the message: answered at once */
    n += ws_frame(ws_in + n, 0, "men", 3, 0);
    n += ws_frame(ws_in + n, FIN | 10, "y", 1, 0);
    n += ws_frame(ws_in + n, 0, "", 0, 0);
    n += ws_frame(ws_in + n, FIN | 0, "ted", 3, 0);
    n += ws_frame(ws_in + n, 2, "\x01", 1, 0);
    n += ws_frame(ws_in + n, FIN | 0, "\x02", 1, 0);
    n += ws_frame(ws_in + n, FIN | 8, "\x03\xe8", 2, 0);
    CASE(n, NULL, 1);
    ASSERT_EQ(ws_code, 0);
    ASSERT_STR_EQ(ws_log, "T10[fragmented] B2 C1000 ");
    ASSERT_STR_EQ(ws_ans, "P1 T10 B2 C1000 ");
}

TEST(ws_end_of_stream_without_close_is_abnormal_1006) {
    size_t n = ws_frame(ws_in, 1, "half a mess", 11, 0);
    CASE(n, NULL, 0);
    ASSERT_EQ(ws_code, 0);
    ASSERT_STR_EQ(ws_log, "C1006 ");
    ASSERT_STR_EQ(ws_ans, ""); /* nothing to answer: the connection is gone */
}

/* A case that must fail the connection: the close code sent, the error raised, and nothing received. */
static void ws_must_fail(size_t n, int close_code, int err) {
    char want[32];
    CASE(n, NULL, 0);
    snprintf(want, sizeof want, "C%d ", close_code);
    ASSERT_STR_EQ(ws_ans, want);
    ASSERT_EQ(ws_code, err);
}

TEST(ws_rsv_bits_without_extension_fail_with_1002) {
    unsigned rsv;
    for (rsv = 0x10; rsv <= 0x40; rsv <<= 1) {
        ws_must_fail(ws_frame(ws_in, FIN | rsv | 1, "x", 1, 0), 1002, ASYNC_EPROTO);
        ASSERT_STR_EQ(ws_log, "");
    }
    ws_must_fail(ws_frame(ws_in, FIN | 0x40 | 9, "", 0, 0), 1002, ASYNC_EPROTO); /* on a control frame too */
}

TEST(ws_unknown_opcodes_fail_with_1002) {
    unsigned ops[] = {3, 4, 5, 6, 7, 11, 12, 13, 14, 15};
    size_t i;
    for (i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        size_t n = ws_frame(ws_in, FIN | 1, "ok", 2, 0);
        n += ws_frame(ws_in + n, FIN | ops[i], "", 0, 0);
        ws_must_fail(n, 1002, ASYNC_EPROTO);
        ASSERT_STR_EQ(ws_log, "T2[ok] "); /* the message before it went through */
    }
}

TEST(ws_control_frame_over_125_bytes_fails_with_1002) {
    static char big[126];
    memset(big, 'p', sizeof big);
    ws_must_fail(ws_frame(ws_in, FIN | 9, big, 126, 0), 1002, ASYNC_EPROTO);
    ws_must_fail(ws_frame(ws_in, FIN | 8, big, 126, 0), 1002, ASYNC_EPROTO);
    /* 125 is allowed */
    {
        size_t n = ws_frame(ws_in, FIN | 9, big, 125, 0);
        n += ws_frame(ws_in + n, FIN | 8, "", 0, 0);
        CASE(n, NULL, 0);
        ASSERT_STR_EQ(ws_ans, "P125 C0 ");
    }
}

TEST(ws_fragmented_control_frame_fails_with_1002) {
    size_t n = ws_frame(ws_in, 9, "a", 1, 0); /* a ping without FIN */
    n += ws_frame(ws_in + n, FIN | 0, "b", 1, 0);
    ws_must_fail(n, 1002, ASYNC_EPROTO);
    ws_must_fail(ws_frame(ws_in, 8, "", 0, 0), 1002, ASYNC_EPROTO);
}

TEST(ws_continuation_without_a_start_fails_with_1002) {
    ws_must_fail(ws_frame(ws_in, FIN | 0, "cont", 4, 0), 1002, ASYNC_EPROTO);
    {   /* also after a whole message */
        size_t n = ws_frame(ws_in, FIN | 1, "done", 4, 0);
        n += ws_frame(ws_in + n, 0, "more", 4, 0);
        ws_must_fail(n, 1002, ASYNC_EPROTO);
        ASSERT_STR_EQ(ws_log, "T4[done] ");
    }
}

TEST(ws_new_data_frame_inside_a_fragmented_message_fails_with_1002) {
    size_t n = ws_frame(ws_in, 1, "part", 4, 0);
    n += ws_frame(ws_in + n, FIN | 1, "new", 3, 0);
    ws_must_fail(n, 1002, ASYNC_EPROTO);
    n = ws_frame(ws_in, 2, "part", 4, 0);
    n += ws_frame(ws_in + n, 2, "new", 3, 0);
    ws_must_fail(n, 1002, ASYNC_EPROTO);
    ASSERT_STR_EQ(ws_log, "");
}

TEST(ws_unmasked_client_frame_fails_with_1002) {
    ws_must_fail(ws_frame(ws_in, FIN | 1, "plain", 5, 1), 1002, ASYNC_EPROTO);
    ws_must_fail(ws_frame(ws_in, FIN | 9, "", 0, 1), 1002, ASYNC_EPROTO);
    ASSERT_STR_EQ(ws_log, "");
}

TEST(ws_frame_length_with_its_top_bit_set_fails_with_1002) {
    unsigned char *p = ws_in;
    p[0] = FIN | 2;
    p[1] = 0x80 | 127;
    p[2] = 0x80;
    memset(p + 3, 0, 7 + 4);
    ws_must_fail(14, 1002, ASYNC_EPROTO);
}

TEST(ws_invalid_utf8_in_text_fails_with_1007) {
    static const char *const bad[] = {
        "\xff", "\xc0\xaf",         /* overlong '/' */
        "\xed\xa0\x80",             /* a surrogate */
        "\xf4\x90\x80\x80",         /* over U+10FFFF */
        "ok\xe2\x82",               /* ends inside a character */
        "\x80",                     /* a lone continuation byte */
        "\xe0\x80\xaf",             /* overlong, 3 bytes */
    };
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ws_must_fail(ws_frame(ws_in, FIN | 1, bad[i], strlen(bad[i]), 0), 1007, ASYNC_EPROTO);
        ASSERT_STR_EQ(ws_log, "");
    }
    /* binary messages are not checked */
    {
        size_t n = ws_frame(ws_in, FIN | 2, "\xff\xfe", 2, 0);
        n += ws_frame(ws_in + n, FIN | 8, "", 0, 0);
        CASE(n, NULL, 0);
        ASSERT_STR_EQ(ws_log, "B2 C1005 ");
    }
}

TEST(ws_utf8_is_checked_across_fragments) {
    size_t n;
    /* "κόσμε" cut inside its characters: valid */
    n = ws_frame(ws_in, 1, "\xce\xba\xe1", 3, 0);
    n += ws_frame(ws_in + n, 0, "\xbd\xb9\xcf", 3, 0);
    n += ws_frame(ws_in + n, FIN | 0, "\x83\xce\xbc\xce\xb5", 5, 0);
    n += ws_frame(ws_in + n, FIN | 8, "", 0, 0);
    CASE(n, NULL, 0);
    ASSERT_EQ(ws_code, 0);
    ASSERT_STR_EQ(ws_log, "T11[\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5] C1005 ");
    /* an overlong form split over two frames */
    n = ws_frame(ws_in, 1, "a\xe0", 2, 0);
    n += ws_frame(ws_in + n, FIN | 0, "\x80\xaf", 2, 0);
    ws_must_fail(n, 1007, ASYNC_EPROTO);
    /* the last fragment ends inside a character */
    n = ws_frame(ws_in, 1, "a", 1, 0);
    n += ws_frame(ws_in + n, FIN | 0, "\xce", 1, 0);
    ws_must_fail(n, 1007, ASYNC_EPROTO);
}

TEST(ws_invalid_utf8_fails_at_once_before_the_message_ends) {
    /* the first fragment is bad and the message never ends (the client keeps its side open): the close
     * must come without waiting for the rest */
    static ws_srv_frame f;
    int fds[2];
    size_t n = ws_frame(ws_in, 1, "ok\xff", 3, 0);
    test_tcp_pair(fds);
    ASSERT_EQ(write(fds[1], ws_in, n), (ssize_t)n);
    memset(&f, 0, sizeof f);
    {   /* the server's final read to the end needs the client's end: it comes once the close was read */
        pid_t pid;
        fflush(NULL);
        pid = fork();
        if (pid == 0) { /* the close frame (4 bytes: 1007), then the client's end */
            unsigned char ans[4];
            size_t got = 0;
            struct timeval tv = {TEST_LONG_MS / 1000, 0};
            setsockopt(fds[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            while (got < 4) {
                ssize_t r = read(fds[1], ans + got, 4 - got);
                if (r <= 0) _exit(2);
                got += (size_t)r;
            }
            _exit(memcmp(ans, "\x88\x02\x03\xef", 4) == 0 ? 0 : 1);
        }
        close(fds[1]);
        ASSERT_EQ(run_real(ASYNC_CALL(ws_srv, &f, fds[0], NULL, 0)), 0);
        {
            int st = 0;
            ASSERT_EQ(waitpid(pid, &st, 0), pid);
            ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        }
    }
    ASSERT_EQ(f.code, ASYNC_EPROTO);
}

TEST(ws_close_codes_invalid_on_the_wire_fail_with_1002) {
    static const int bad[] = {0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535};
    static const int good[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999};
    unsigned char c[8];
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ws_must_fail(ws_frame(ws_in, FIN | 8, c, ws_close_payload(c, bad[i], ""), 0), 1002, ASYNC_EPROTO);
        ASSERT_STR_EQ(ws_log, "");
    }
    for (i = 0; i < sizeof good / sizeof good[0]; i++) {
        char want[32];
        CASE(ws_frame(ws_in, FIN | 8, c, ws_close_payload(c, good[i], ""), 0), NULL, 0);
        ASSERT_EQ(ws_code, 0);
        snprintf(want, sizeof want, "C%d ", good[i]);
        ASSERT_STR_EQ(ws_log, want);
        ASSERT_STR_EQ(ws_ans, want); /* echoed */
    }
}

TEST(ws_close_payload_of_one_byte_fails_with_1002) {
    ws_must_fail(ws_frame(ws_in, FIN | 8, "\x03", 1, 0), 1002, ASYNC_EPROTO);
    ASSERT_STR_EQ(ws_log, "");
}

TEST(ws_close_reason_is_reported_and_checked_for_utf8) {
    unsigned char c[64];
    CASE(ws_frame(ws_in, FIN | 8, c, ws_close_payload(c, 4001, "b\xc3\xbf" "e"), 0), NULL, 0);
    ASSERT_STR_EQ(ws_log, "C4001 ");
    ASSERT_STR_EQ(ws_ans, "C4001 ");
    ws_must_fail(ws_frame(ws_in, FIN | 8, c, ws_close_payload(c, 1000, "b\xff"), 0), 1007, ASYNC_EPROTO);
}

TEST(ws_message_over_the_limit_fails_with_1009) {
    static char big[2048];
    async_ws_limits lim = {1000, 0, 0};
    size_t n;
    memset(big, 'a', sizeof big);
    /* one frame over the limit: refused from its header */
    n = ws_frame(ws_in, FIN | 1, big, 1001, 0);
    CASE(n, &lim, 0);
    ASSERT_STR_EQ(ws_ans, "C1009 ");
    ASSERT_EQ(ws_code, ASYNC_EMSGSIZE);
    /* exactly the limit passes */
    n = ws_frame(ws_in, FIN | 2, big, 1000, 0);
    n += ws_frame(ws_in + n, FIN | 8, "", 0, 0);
    CASE(n, &lim, 0);
    ASSERT_STR_EQ(ws_log, "B1000 C1005 ");
    /* fragments that add up to more */
    n = ws_frame(ws_in, 1, big, 600, 0);
    n += ws_frame(ws_in + n, FIN | 0, big, 401, 0);
    CASE(n, &lim, 0);
    ASSERT_STR_EQ(ws_ans, "C1009 ");
    ASSERT_EQ(ws_code, ASYNC_EMSGSIZE);
    /* a frame over max_frame in a message under max_message */
    lim.max_frame = 100;
    n = ws_frame(ws_in, 1, big, 100, 0);
    n += ws_frame(ws_in + n, FIN | 0, big, 101, 0);
    CASE(n, &lim, 0);
    ASSERT_STR_EQ(ws_ans, "C1009 ");
    ASSERT_EQ(ws_code, ASYNC_EMSGSIZE);
    /* a header that announces 2^40 bytes */
    ws_in[0] = FIN | 2;
    ws_in[1] = 0x80 | 127;
    memset(ws_in + 2, 0, 12);
    ws_in[5] = 1;
    CASE(14, NULL, 0);
    ASSERT_STR_EQ(ws_ans, "C1009 ");
    ASSERT_EQ(ws_code, ASYNC_EMSGSIZE);
}

/* ================================ the endpoint's own awaits ================================ */

/* A receive cancelled in the middle of a message, then the message received whole, then the close
 * handshake started by the server. */
ASYNC_DEF(ws_cancel_recv, async_ws *ws; async_ws_message *msg; int code;) {
    ASYNC_TRY(t) {
        AWAIT_WS_RECV(t, f->ws, f->msg, TEST_LONG_MS);
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

ASYNC_DEF(ws_cancel_main, int fd; int client; async_stream s; async_ws ws; async_ws_message msg; async_group g;
          ws_cancel_recv_frame r; int busy_code; int close_code;) {
    ASSERT_EQ(async_stream_open(&f->s, f->fd), 0);
    ASSERT_EQ(async_ws_open(&f->ws, &f->s, NULL), 0);
    ASYNC_SPAWN(t, &f->g, ASYNC_CALL(ws_cancel_recv, &f->r, &f->ws, &f->msg));
    AWAIT_YIELD(t); /* the receiver has read half the frame and waits for the rest */
    ASYNC_TRY(t) { /* a second receive at the same time */
        AWAIT_WS_RECV(t, &f->ws, &f->msg, TEST_LONG_MS);
    }
    ASYNC_CATCH(t) {
        f->busy_code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
    async_cancel(&f->r.task);
    AWAIT_GROUP(t, &f->g);
    {   /* the rest of the frame, then the client's answer to the close to come */
        unsigned char out[64];
        size_t n = ws_frame(out, FIN | 1, "hello world", 11, 0);
        ASSERT_EQ(write(f->client, out + 10, n - 10), (ssize_t)(n - 10));
        n = ws_frame(out, FIN | 8, "\x03\xe8", 2, 0);
        ASSERT_EQ(write(f->client, out, n), (ssize_t)n);
    }
    AWAIT_WS_RECV(t, &f->ws, &f->msg, TEST_LONG_MS);
    ASSERT_EQ(f->msg.opcode, ASYNC_WS_TEXT);
    ASSERT_STR_EQ(f->msg.data, "hello world");
    AWAIT_WS_CLOSE(t, &f->ws, 4000, "done", TEST_LONG_MS);
    ASYNC_TRY(t) { /* nothing more to read */
        AWAIT_WS_RECV(t, &f->ws, &f->msg, TEST_LONG_MS);
    }
    ASYNC_CATCH(t) {
        f->close_code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
    ASSERT_EQ(async_ws_send(&f->ws, ASYNC_WS_TEXT, "late", 4), ASYNC_EPIPE);
    async_ws_free(&f->ws);
    async_stream_close(&f->s);
} ASYNC_END_DEF

TEST(ws_cancelled_receive_keeps_the_frame_and_the_close_handshake_follows) {
    static ws_cancel_main_frame f;
    int fds[2];
    unsigned char out[64];
    ASSERT_EQ(ws_frame(out, FIN | 1, "hello world", 11, 0), 17);
    test_tcp_pair(fds);
    ASSERT_EQ(write(fds[1], out, 10), 10); /* the header and 4 bytes of the payload */
    ASSERT_EQ(run_real(ASYNC_CALL(ws_cancel_main, &f, fds[0], fds[1])), 0);
    ASSERT_EQ(f.r.code, ASYNC_ECANCELED);
    ASSERT_EQ(f.busy_code, ASYNC_EBUSY);
    ASSERT_EQ(f.close_code, ASYNC_ENODATA);
    ws_answer(fds[1], ws_ans, sizeof ws_ans);
    ASSERT_STR_EQ(ws_ans, "C4000[done] ");
    close(fds[1]);
}

/* A close handshake the peer never answers: ASYNC_ETIMEDOUT after ms. */
ASYNC_DEF(ws_close_timeout, int fd; async_stream s; async_ws ws; int code; async_ms took;) {
    ASSERT_EQ(async_stream_open(&f->s, f->fd), 0);
    ASSERT_EQ(async_ws_open(&f->ws, &f->s, NULL), 0);
    f->took = async_time(t);
    ASYNC_TRY(t) {
        AWAIT_WS_CLOSE(t, &f->ws, 1001, NULL, 50);
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
    f->took = async_time(t) - f->took;
    async_ws_free(&f->ws);
    async_stream_close(&f->s);
} ASYNC_END_DEF

TEST(ws_close_handshake_times_out_when_the_peer_does_not_answer) {
    static ws_close_timeout_frame f;
    int fds[2];
    test_tcp_pair(fds);
    ASSERT_EQ(run_real(ASYNC_CALL(ws_close_timeout, &f, fds[0])), 0);
    ASSERT_EQ(f.code, ASYNC_ETIMEDOUT);
    ASSERT(f.took >= 50);
    ws_answer(fds[1], ws_ans, sizeof ws_ans);
    ASSERT_STR_EQ(ws_ans, "C1001 ");
    close(fds[1]);
}

/* Bad arguments of the awaits, one per turn, each in its own try: the code each raised. */
ASYNC_DEF(ws_bad_args, int fd; async_stream s; async_ws ws; async_ws_message msg; int i; int codes[8];) {
    ASSERT_EQ(async_stream_open(&f->s, f->fd), 0);
    for (f->i = 0; f->i < 7; f->i++) {
        if (f->i == 1) ASSERT_EQ(async_ws_open(&f->ws, &f->s, NULL), 0); /* turn 0: not opened yet */
        ASYNC_TRY(t) {
            if (f->i == 0 || f->i == 1)
                AWAIT_WS_RECV(t, &f->ws, f->i == 0 ? &f->msg : NULL, 10);
            else if (f->i == 2)
                AWAIT_WS_RECV(t, &f->ws, &f->msg, (int64_t)ASYNC_MS_MAX + 1);
            else if (f->i == 3)
                AWAIT_WS_RECV(t, &f->ws, &f->msg, 20); /* nothing comes */
            else if (f->i == 4)
                AWAIT_WS_SEND(t, &f->ws, 3, "x", 1, 10);
            else
                AWAIT_WS_CLOSE(t, &f->ws, f->i == 5 ? 1005 : 1000, f->i == 5 ? NULL : "\xff", 10);
        }
        ASYNC_CATCH(t) {
            f->codes[f->i] = async_caught(t)->code;
        }
        ASYNC_END_TRY(t);
    }
    async_ws_free(&f->ws);
    async_stream_close(&f->s);
} ASYNC_END_DEF

TEST(ws_bad_arguments_are_refused) {
    static ws_bad_args_frame f;
    static char big[126];
    async_ws ws;
    async_stream s;
    async_ws_limits lim = {0, 0, (int64_t)ASYNC_MS_MAX + 1};
    int fds[2];
    memset(&ws, 0, sizeof ws);
    memset(&s, 0, sizeof s);
    ASSERT_EQ(async_ws_open(NULL, &s, NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_ws_open(&ws, NULL, NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_ws_open(&ws, &s, &lim), ASYNC_ERANGE);
    lim.close_ms = -5;
    ASSERT_EQ(async_ws_open(&ws, &s, &lim), ASYNC_EINVAL);
    ASSERT_EQ(async_ws_send(&ws, ASYNC_WS_TEXT, "x", 1), ASYNC_EINVAL); /* not opened */
    ASSERT_EQ(async_ws_open(&ws, &s, NULL), 0);
    ASSERT_EQ(async_ws_send(&ws, 0, "x", 1), ASYNC_EINVAL);
    ASSERT_EQ(async_ws_send(&ws, ASYNC_WS_CLOSE, "", 0), ASYNC_EINVAL); /* AWAIT_WS_CLOSE sends closes */
    ASSERT_EQ(async_ws_send(&ws, ASYNC_WS_PING, big, sizeof big), ASYNC_EINVAL);
    ASSERT_EQ(async_ws_send(&ws, ASYNC_WS_TEXT, "\xc0\xaf", 2), ASYNC_EINVAL);
    ASSERT_EQ(async_ws_send(&ws, ASYNC_WS_BINARY, NULL, 1), ASYNC_EINVAL);
    ASSERT_EQ(async_ws_send(NULL, ASYNC_WS_BINARY, "x", 1), ASYNC_EINVAL);
    ASSERT_EQ(async_ws_send(&ws, ASYNC_WS_BINARY, "x", 1), ASYNC_EBADF); /* the stream is not open */
    async_ws_free(&ws);
    async_ws_free(NULL);
    test_tcp_pair(fds);
    ASSERT_EQ(run_real(ASYNC_CALL(ws_bad_args, &f, fds[0])), 0);
    {   /* not opened, no message, a deadline too far, none met, a bad opcode, a code and a reason not sent */
        static const int want[] = {ASYNC_EINVAL, ASYNC_EINVAL, ASYNC_ERANGE, ASYNC_ETIMEDOUT, ASYNC_EINVAL,
                                   ASYNC_EINVAL, ASYNC_EINVAL};
        size_t i;
        for (i = 0; i < sizeof want / sizeof want[0]; i++) ASSERT_EQ(f.codes[i], want[i]);
    }
    close(fds[1]);
}

/* ================================ a real client: python3's websockets ================================ */

/* The interpreter that has the websockets module, or NULL. */
static const char *ws_python(void) {
    static const char *const cands[] = {"python3", "/usr/bin/python3"};
    size_t i;
    for (i = 0; i < sizeof cands / sizeof cands[0]; i++) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "%s -c 'import websockets' >/dev/null 2>&1", cands[i]);
        if (system(cmd) == 0) return cands[i];
    }
    return NULL;
}

/* An HTTP connection that reads the upgrade's head, answers with async_ws_handshake, then echoes messages
 * until the client closes. */
ASYNC_DEF(ws_conn, async_stream *s; const char *line; size_t len; char head[2048]; size_t used; char *names[16],
          *values[16]; size_t nh; char method[8]; int minor; async_http_request req; char answer[256]; size_t alen;
          int status; async_ws ws; async_ws_message msg;) {
    for (;;) { /* the request line and the header fields, kept in head */
        AWAIT_STREAM_READLINE(t, f->s, &f->line, &f->len, 1024, TEST_LONG_MS);
        if (f->len == 0) ASYNC_THROW(t, ASYNC_ENODATA, "no request");
        while (f->len && (f->line[f->len - 1] == '\n' || f->line[f->len - 1] == '\r')) f->len--;
        if (f->len == 0) break;
        if (f->used + f->len + 1 > sizeof f->head) ASYNC_THROW(t, ASYNC_EOVERFLOW, "head too long");
        memcpy(f->head + f->used, f->line, f->len);
        f->head[f->used + f->len] = '\0';
        if (f->used == 0) { /* "GET /path HTTP/1.1" */
            ASSERT(sscanf(f->head, "%7s %*s HTTP/1.%d", f->method, &f->minor) == 2);
        } else if (f->nh < 16) {
            char *colon = strchr(f->head + f->used, ':');
            ASSERT(colon);
            *colon = '\0';
            f->names[f->nh] = f->head + f->used;
            f->values[f->nh] = colon + 1 + strspn(colon + 1, " \t");
            f->nh++;
        }
        f->used += f->len + 1;
    }
    f->req.method = f->method;
    f->req.target = "/";
    f->req.version_minor = f->minor;
    f->req.nheaders = f->nh;
    f->req.names = (const char *const *)f->names;
    f->req.values = (const char *const *)f->values;
    ASSERT_EQ(async_ws_handshake(&f->req, f->answer, sizeof f->answer, &f->alen, &f->status), 0);
    ASSERT_EQ(async_stream_write(f->s, f->answer, f->alen), 0);
    ASSERT_EQ(async_ws_open(&f->ws, f->s, NULL), 0);
    ASYNC_TRY(t) {
        for (;;) {
            AWAIT_WS_RECV(t, &f->ws, &f->msg, TEST_LONG_MS);
            if (f->msg.opcode == ASYNC_WS_CLOSE) break;
            AWAIT_WS_SEND(t, &f->ws, f->msg.opcode, f->msg.data, f->msg.len, TEST_LONG_MS);
        }
    }
    ASYNC_FINALLY(t) {
        async_ws_free(&f->ws);
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

static async_task *ws_conn_new(void *frame, async_stream *s, void *arg) {
    (void)arg;
    return ASYNC_CALL(ws_conn, (ws_conn_frame *)frame, s);
}

static const char ws_py_client[] =
    "import asyncio, sys, websockets\n"
    "async def main():\n"
    "    async with websockets.connect('ws://127.0.0.1:%s/' % sys.argv[1], compression=None) as ws:\n"
    "        await ws.send('h\\u00e9llo'); r = await ws.recv(); print('text', r == 'h\\u00e9llo')\n"
    "        await ws.send(b'\\x00\\x01\\xff'); r = await ws.recv(); print('binary', r.hex())\n"
    "        await ws.send(['frag', 'men', 'ted']); r = await ws.recv(); print('fragmented', r)\n"
    "        big = bytes(range(256)) * 400; await ws.send(big); r = await ws.recv(); print('big', len(r), r == big)\n"
    "        w = await ws.ping(b'p1'); await asyncio.wait_for(w, 5); print('pong')\n"
    "        await ws.close(code=4001, reason='bye'); print('closed', ws.close_code)\n"
    "asyncio.run(main())\n";

ASYNC_DEF(ws_py, const char *py; async_server srv; async_group g; async_stream out; int fd; pid_t pid; char buf[1024];
          size_t used, n;) {
    int sv[2];
    char port[16];
    ASSERT_EQ(async_server_listen(&f->srv, "127.0.0.1", 0, 0, sizeof(ws_conn_frame), ws_conn_new, NULL), 0);
    ASYNC_SPAWN(t, &f->g, async_server_serve(&f->srv));
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    snprintf(port, sizeof port, "%d", async_server_port(&f->srv));
    fflush(NULL);
    f->pid = fork();
    if (f->pid == 0) {
        close(sv[0]);
        dup2(sv[1], 1);
        dup2(sv[1], 2);
        close(sv[1]);
        execlp(f->py, f->py, "-c", ws_py_client, port, (char *)NULL);
        _exit(127);
    }
    close(sv[1]);
    ASSERT_EQ(async_stream_open(&f->out, sv[0]), 0);
    do { /* the client's report, to its end (python starts in a few hundred ms) */
        AWAIT_STREAM_READ(t, &f->out, f->buf + f->used, sizeof f->buf - 1 - f->used, &f->n, 4 * TEST_LONG_MS);
        f->used += f->n;
        f->buf[f->used] = '\0';
    } while (f->n && f->used < sizeof f->buf - 1);
    async_stream_close(&f->out);
    async_server_close(&f->srv, TEST_LONG_MS);
    AWAIT_GROUP(t, &f->g);
} ASYNC_END_DEF

TEST(ws_python_websockets_client_talks_to_the_endpoint) {
    static ws_py_frame f;
    const char *py = ws_python();
    int st = 0;
    if (!py) test_skip("python3 with the websockets module is not installed (Debian: python3-websockets)");
    f.py = py;
    ASSERT_EQ(run_real(ASYNC_CALL(ws_py, &f, py)), 0);
    ASSERT_EQ(waitpid(f.pid, &st, 0), f.pid);
    ASSERT_STR_EQ(f.buf, "text True\nbinary 0001ff\nfragmented fragmented\nbig 102400 True\npong\nclosed 4001\n");
    ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* ================================ a receive and a send in two tasks ================================ */

ASYNC_DEF(ws_duo_send, async_ws *ws; const char *data; size_t len; int code;) {
    ASYNC_TRY(t) {
        AWAIT_WS_SEND(t, f->ws, ASYNC_WS_BINARY, f->data, f->len, 4 * TEST_LONG_MS);
    }
    ASYNC_CATCH(t) {
        f->code = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

/* recv_first: the large message is queued without a wait, the receive drains it with its pong, and a
 * send of 4 bytes waits for that drain to end; else the large message's send drains, and the receive
 * leaves its pong to it. */
ASYNC_DEF(ws_duo, int fd; const char *data; size_t len; int recv_first; async_stream s; async_ws ws;
          async_ws_message msg; async_group g; ws_duo_send_frame snd; ws_cancel_recv_frame rcv; int close_code;
          char buf[256]; size_t n;) {
    ASSERT_EQ(async_stream_open(&f->s, f->fd), 0);
    ASSERT_EQ(async_ws_open(&f->ws, &f->s, NULL), 0);
    if (f->recv_first) {
        ASSERT_EQ(async_ws_send(&f->ws, ASYNC_WS_BINARY, f->data, f->len), 0);
        ASYNC_SPAWN(t, &f->g, ASYNC_CALL(ws_cancel_recv, &f->rcv, &f->ws, &f->msg));
        ASYNC_SPAWN(t, &f->g, ASYNC_CALL(ws_duo_send, &f->snd, &f->ws, "tail", 4));
    } else {
        ASYNC_SPAWN(t, &f->g, ASYNC_CALL(ws_duo_send, &f->snd, &f->ws, f->data, f->len));
        ASYNC_SPAWN(t, &f->g, ASYNC_CALL(ws_cancel_recv, &f->rcv, &f->ws, &f->msg)); /* the ping's pong queued */
    }
    AWAIT_GROUP(t, &f->g);
    ASSERT_EQ(f->msg.opcode, ASYNC_WS_TEXT);
    ASYNC_SPAWN(t, &f->g, ASYNC_CALL(ws_cancel_recv, &f->rcv, &f->ws, &f->msg)); /* the close, answered */
    AWAIT_GROUP(t, &f->g);
    ASSERT_EQ(f->msg.opcode, ASYNC_WS_CLOSE);
    f->close_code = f->msg.code;
    AWAIT_WS_CLOSE(t, &f->ws, 1000, NULL, TEST_LONG_MS); /* answered already: ends at once */
    AWAIT_STREAM_DRAIN(t, &f->s, 4 * TEST_LONG_MS);
    async_ws_free(&f->ws);
    do {
        AWAIT_STREAM_READ(t, &f->s, f->buf, sizeof f->buf, &f->n, 4 * TEST_LONG_MS);
    } while (f->n);
    async_stream_close(&f->s);
} ASYNC_END_DEF

static void ws_duo_case(int recv_first, const char *want) {
    /* the client reads in a child process; 1 MiB is more than the kernel takes at once (its send buffer
     * made small), so the sender's drain still runs when the receive queues its pong and its close, which
     * must come after the whole message */
    static ws_duo_frame f;
    static char big[1 << 20];
    unsigned char c[4];
    int fds[2], st = 0;
    size_t n = 0;
    pid_t pid;
    memset(big, 'z', sizeof big);
    test_tcp_pair(fds);
    {   /* the kernel takes about 128 KiB at once */
        int sndbuf = 65536;
        ASSERT_EQ(setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf), 0);
    }
    n += ws_frame(ws_in + n, FIN | 9, "!", 1, 0);
    n += ws_frame(ws_in + n, FIN | 1, "after", 5, 0);
    n += ws_frame(ws_in + n, FIN | 8, c, ws_close_payload(c, 1001, ""), 0);
    ASSERT_EQ(write(fds[1], ws_in, n), (ssize_t)n);
    shutdown(fds[1], SHUT_WR);
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        char ans[512];
        close(fds[0]);
        ws_answer(fds[1], ans, sizeof ans);
        _exit(strcmp(ans, want) == 0 ? 0 : 1);
    }
    close(fds[1]);
    ASSERT_EQ(run_real(ASYNC_CALL(ws_duo, &f, fds[0], big, sizeof big, recv_first)), 0);
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    ASSERT_EQ(f.snd.code, 0);
    ASSERT_EQ(f.close_code, 1001);
}

TEST(ws_receive_answers_pings_while_another_task_sends_a_large_message) {
    ws_duo_case(0, "B1048576 P1 C1001 ");
}

TEST(ws_send_waits_for_the_drain_of_a_receive_in_another_task) {
    ws_duo_case(1, "B1048576 P1 B4 C1001 ");
}
