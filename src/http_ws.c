/* WebSocket (RFC 6455), server side: the upgrade's handshake, and an endpoint over a stream.
 *
 * The endpoint reads frames in place from the stream's buffer (peek, consume, fill), keeping its position
 * in the frame in the async_ws itself: a receive that is cancelled or times out in the middle of a frame
 * leaves nothing half-done, and the next one goes on from the same byte. Payloads are unmasked and checked
 * (UTF-8 of text messages, as it comes, so a bad byte fails the connection at once, as Autobahn wants) while
 * they are copied into the message buffer. Every rule of RFC 6455 5 a receiver must enforce fails the
 * connection with a close frame (7.1.7). SHA-1 and base64 for the handshake come from libcrypto. */
#include "net.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#define DEFAULT_MAX_MESSAGE ((size_t)1 << 20)
#define DEFAULT_CLOSE_MS 1000
#define FILL_LIMIT 65536 /* input buffered at once: payload is consumed as it comes, headers are 14 bytes */
#define GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* ws->state */
#define WS_OPEN 0x01u       /* async_ws_open was called */
#define WS_CLOSE_SENT 0x02u /* a close frame went out: no more frames after it */
#define WS_ENDED 0x04u      /* nothing more to read: close received, connection lost, or failed */
#define WS_CLOSING 0x08u    /* the receive coroutine runs the close handshake */
#define WS_RDRAIN 0x10u     /* the receive coroutine drains (its pong or close): a sender waits for it */
#define WS_BROKEN 0x20u     /* a frame was cut in the output: nothing may be sent */
#define WS_WANT_DRAIN 0x40u /* the receive coroutine wrote a frame of its own (pong, close) to drain */

/* What ws_parse found */
enum { P_MORE = 1, P_MSG, P_CLOSE, P_FAIL, P_REPLY };

/* ---- the handshake ---- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The value without the spaces and tabs around it: *n its length. */
static const char *trim(const char *v, size_t *n) {
    size_t len;
    while (*v == ' ' || *v == '\t') v++;
    len = strlen(v);
    while (len && (v[len - 1] == ' ' || v[len - 1] == '\t')) len--;
    *n = len;
    return v;
}

int async_ws_accept_key(const char *client_key, char out[29]) {
    unsigned char in[24 + sizeof GUID - 1], md[SHA_DIGEST_LENGTH];
    size_t n, i;
    const char *k;
    if (!client_key || !out) return ASYNC_EINVAL;
    k = trim(client_key, &n);
    /* the base64 of 16 bytes: 22 characters, the last one carrying 2 bits (its 4 low bits zero), "==" */
    if (n != 24 || k[22] != '=' || k[23] != '=') return ASYNC_EINVAL;
    for (i = 0; i < 22; i++)
        if (!k[i] || !strchr(b64, k[i])) return ASYNC_EINVAL;
    if ((strchr(b64, k[21]) - b64) & 15) return ASYNC_EINVAL;
    memcpy(in, k, 24);
    memcpy(in + 24, GUID, sizeof GUID - 1);
    SHA1(in, sizeof in, md);
    EVP_EncodeBlock((unsigned char *)out, md, SHA_DIGEST_LENGTH); /* 28 characters and a NUL */
    return 0;
}

/* The first header `name` of req, or NULL. */
static const char *header(const async_http_request *req, const char *name) {
    size_t i;
    for (i = 0; i < req->nheaders; i++)
        if (req->names[i] && req->values[i] && strcasecmp(req->names[i], name) == 0) return req->values[i];
    return NULL;
}

/* Whether some header `name` of req is a comma-separated list holding `token` (case-insensitive). */
static bool has_token(const async_http_request *req, const char *name, const char *token) {
    size_t i, tl = strlen(token);
    for (i = 0; i < req->nheaders; i++) {
        const char *p;
        if (!req->names[i] || !req->values[i] || strcasecmp(req->names[i], name) != 0) continue;
        for (p = req->values[i]; *p;) {
            const char *next = p + strcspn(p, ","), *e = next;
            while (p < e && (*p == ' ' || *p == '\t')) p++;
            while (e > p && (e[-1] == ' ' || e[-1] == '\t')) e--;
            if ((size_t)(e - p) == tl && strncasecmp(p, token, tl) == 0) return true;
            p = *next ? next + 1 : next;
        }
    }
    return false;
}

int async_ws_handshake(const async_http_request *req, char *head, size_t cap, size_t *len, int *status) {
    char accept[29];
    const char *v;
    size_t vn;
    int st = 101, rc = 0, n;
    if (!req || !head || !len || (req->nheaders && (!req->names || !req->values))) return ASYNC_EINVAL;
    v = header(req, "Sec-WebSocket-Version");
    if (v) v = trim(v, &vn);
    if (!req->method || strcmp(req->method, "GET") != 0 || req->version_minor < 1 || !header(req, "Host") ||
        !has_token(req, "Upgrade", "websocket") || !has_token(req, "Connection", "upgrade")) {
        st = 400;
        rc = ASYNC_EPROTO;
    } else if (!v || vn != 2 || strncmp(v, "13", 2) != 0) {
        st = 426; /* RFC 6455 4.2.2: the versions this server speaks, in the answer */
        rc = ASYNC_ENOTSUP;
    } else if (!header(req, "Sec-WebSocket-Key") || async_ws_accept_key(header(req, "Sec-WebSocket-Key"), accept)) {
        st = 400;
        rc = ASYNC_EPROTO;
    }
    if (st == 101)
        n = snprintf(head, cap, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                "Sec-WebSocket-Accept: %s\r\n\r\n", accept);
    else if (st == 426)
        n = snprintf(head, cap, "HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\nUpgrade: websocket\r\n"
                                "Connection: Upgrade, close\r\nContent-Length: 0\r\n\r\n");
    else
        n = snprintf(head, cap, "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    if (n < 0 || (size_t)n >= cap) return ASYNC_EOVERFLOW;
    *len = (size_t)n;
    if (status) *status = st;
    return rc;
}

/* ---- UTF-8, checked a byte at a time across frames ---- */

/* The state: the continuation bytes still expected (bits 0-1) and the range of the next one (lo in bits
 * 8-15, hi in 16-23; RFC 3629's table: no overlong forms, no surrogates, nothing over U+10FFFF). 0 between
 * characters. */
static bool utf8_ok(unsigned *state, const unsigned char *p, size_t n) {
    unsigned st = *state;
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned c = p[i];
        if (st & 3u) {
            if (c < ((st >> 8) & 0xFFu) || c > ((st >> 16) & 0xFFu)) return false;
            st = ((st & 3u) - 1u) | (0x80u << 8) | (0xBFu << 16);
            if (!(st & 3u)) st = 0;
            continue;
        }
        if (c < 0x80) continue;
        if (c >= 0xC2 && c <= 0xDF) st = 1u | (0x80u << 8) | (0xBFu << 16);
        else if (c == 0xE0) st = 2u | (0xA0u << 8) | (0xBFu << 16);
        else if (c == 0xED) st = 2u | (0x80u << 8) | (0x9Fu << 16);
        else if (c >= 0xE1 && c <= 0xEF) st = 2u | (0x80u << 8) | (0xBFu << 16);
        else if (c == 0xF0) st = 3u | (0x90u << 8) | (0xBFu << 16);
        else if (c >= 0xF1 && c <= 0xF3) st = 3u | (0x80u << 8) | (0xBFu << 16);
        else if (c == 0xF4) st = 3u | (0x80u << 8) | (0x8Fu << 16);
        else return false;
    }
    *state = st;
    return true;
}

static bool utf8_valid(const void *p, size_t n) {
    unsigned st = 0;
    return utf8_ok(&st, (const unsigned char *)p, n) && st == 0;
}

/* A close code that may appear on the wire (RFC 6455 7.4: 1000-1003 and 1007-1011 defined, 1012-1014
 * registered since, 3000-4999 for libraries and applications; 1004-1006 and 1015 reserved). */
static bool close_code_ok(int code) {
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

/* ---- the endpoint ---- */

int async_ws_open(async_ws *ws, async_stream *s, const async_ws_limits *lim) {
    async_ws_limits l;
    if (!ws || !s) return ASYNC_EINVAL;
    if (ws->rtask.fn && !async_task_init(&ws->rtask, ws->rtask.fn)) return ASYNC_EBUSY;
    if (ws->stask.fn && !async_task_init(&ws->stask, ws->stask.fn)) return ASYNC_EBUSY;
    memset(&l, 0, sizeof l);
    if (lim) l = *lim;
    if (!l.max_message) l.max_message = DEFAULT_MAX_MESSAGE;
    if (!l.max_frame) l.max_frame = l.max_message;
    if (!l.close_ms) l.close_ms = DEFAULT_CLOSE_MS;
    if (l.close_ms < 0 || l.max_message >= SIZE_MAX / 2) return ASYNC_EINVAL;
    if (l.close_ms > ASYNC_MS_MAX) return ASYNC_ERANGE;
    async_ws_free(ws);
    ws->s = s;
    ws->lim = l;
    ws->state = WS_OPEN;
    ws->fop = -1;
    return 0;
}

void async_ws_free(async_ws *ws) {
    if (!ws) return;
    free(ws->buf);
    ws->buf = NULL;
    ws->len = ws->cap = 0;
    ws->state = 0;
    ws->mop = 0;
    ws->fop = -1;
    ws->utf8 = 0;
}

/* Writes one frame, FIN set, unmasked (a server's frames are never masked). */
static int write_frame(async_ws *ws, int op, const void *data, size_t len) {
    unsigned char h[10 + 125];
    size_t hl = 2;
    int rc;
    h[0] = (unsigned char)(0x80 | op);
    if (len < 126) {
        h[1] = (unsigned char)len;
    } else if (len < 65536) {
        h[1] = 126;
        h[2] = (unsigned char)(len >> 8);
        h[3] = (unsigned char)len;
        hl = 4;
    } else {
        int i;
        h[1] = 127;
        for (i = 0; i < 8; i++) h[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
        hl = 10;
    }
    if (len <= 125) { /* a control frame (or a small message) goes in one write: never cut */
        if (len) memcpy(h + hl, data, len);
        return async_stream_write(ws->s, h, hl + len);
    }
    rc = async_stream_write(ws->s, h, hl);
    if (rc) return rc;
    rc = async_stream_write(ws->s, data, len);
    if (rc) ws->state |= WS_BROKEN; /* the header went without its payload: the stream is out of step */
    return rc;
}

/* A close frame with code (0: none) and reason. */
static int write_close(async_ws *ws, int code, const char *reason) {
    char p[125];
    size_t n = 0;
    ws->state |= WS_CLOSE_SENT;
    if (code) {
        p[0] = (char)(code >> 8);
        p[1] = (char)code;
        n = 2;
        if (reason) {
            memcpy(p + 2, reason, strlen(reason));
            n += strlen(reason);
        }
    }
    return write_frame(ws, ASYNC_WS_CLOSE, p, n);
}

int async_ws_send(async_ws *ws, int opcode, const void *data, size_t len) {
    if (!ws || (len && !data) || !(ws->state & WS_OPEN)) return ASYNC_EINVAL;
    if (opcode != ASYNC_WS_TEXT && opcode != ASYNC_WS_BINARY && opcode != ASYNC_WS_PING && opcode != ASYNC_WS_PONG)
        return ASYNC_EINVAL;
    if (opcode >= 8 && len > 125) return ASYNC_EINVAL;
    if (opcode == ASYNC_WS_TEXT && !utf8_valid(data, len)) return ASYNC_EINVAL;
    if (ws->state & (WS_CLOSE_SENT | WS_BROKEN)) return ASYNC_EPIPE;
    return write_frame(ws, opcode, data, len);
}

static const async_error e_rsv = {ASYNC_EPROTO, "WebSocket: RSV bits set with no extension agreed"};
static const async_error e_opcode = {ASYNC_EPROTO, "WebSocket: unknown opcode"};
static const async_error e_ctl_frag = {ASYNC_EPROTO, "WebSocket: fragmented control frame"};
static const async_error e_ctl_len = {ASYNC_EPROTO, "WebSocket: control frame over 125 bytes"};
static const async_error e_cont = {ASYNC_EPROTO, "WebSocket: continuation frame with no message to continue"};
static const async_error e_new = {ASYNC_EPROTO, "WebSocket: new data frame inside a fragmented message"};
static const async_error e_unmasked = {ASYNC_EPROTO, "WebSocket: unmasked frame from a client"};
static const async_error e_len64 = {ASYNC_EPROTO, "WebSocket: frame length with its top bit set"};
static const async_error e_too_big = {ASYNC_EMSGSIZE, "WebSocket: message over the endpoint's limit"};
static const async_error e_utf8 = {ASYNC_EPROTO, "WebSocket: invalid UTF-8 in a text message"};
static const async_error e_close_len = {ASYNC_EPROTO, "WebSocket: close frame with a 1-byte payload"};
static const async_error e_close_code = {ASYNC_EPROTO, "WebSocket: close code not allowed on the wire"};
static const async_error e_close_utf8 = {ASYNC_EPROTO, "WebSocket: invalid UTF-8 in a close reason"};
static const async_error e_nomem = {ASYNC_ENOMEM, "WebSocket: no memory for the message"};

/* Fails the connection: the close frame to send (code) and what to raise. */
static int fail(async_ws *ws, int code, const async_error *err) {
    ws->close_code = code;
    ws->err = err;
    return P_FAIL;
}

/* Reads what the stream holds: P_MORE (needs more input), P_MSG (a message in *ws->out), P_CLOSE (the
 * peer's close: ws->close_code the code to answer with), P_REPLY (a pong was written), P_FAIL, or a
 * stream error. In the close handshake, messages are dropped and pings left unanswered. */
static int ws_parse(async_ws *ws) {
    bool closing = (ws->state & WS_CLOSING) != 0;
    for (;;) {
        size_t avail, take, i;
        const unsigned char *p = (const unsigned char *)async_stream_peek(ws->s, &avail);
        if (ws->fop < 0) { /* a frame header */
            unsigned b0, b1, op;
            size_t hl = 2, l7;
            uint64_t len = 0;
            if (avail < 2) return P_MORE;
            b0 = p[0];
            b1 = p[1];
            op = b0 & 0x0Fu;
            l7 = b1 & 0x7Fu;
            /* the first two bytes say everything the rules look at: fail before the rest comes */
            if (b0 & 0x70u) return fail(ws, ASYNC_WS_PROTOCOL_ERROR, &e_rsv);
            if (op != 0 && op != 1 && op != 2 && op != 8 && op != 9 && op != 10)
                return fail(ws, ASYNC_WS_PROTOCOL_ERROR, &e_opcode);
            if (op >= 8 && !(b0 & 0x80u)) return fail(ws, ASYNC_WS_PROTOCOL_ERROR, &e_ctl_frag);
            if (op >= 8 && l7 > 125) return fail(ws, ASYNC_WS_PROTOCOL_ERROR, &e_ctl_len);
            if (op == 0 && !ws->mop) return fail(ws, ASYNC_WS_PROTOCOL_ERROR, &e_cont);
            if ((op == 1 || op == 2) && ws->mop) return fail(ws, ASYNC_WS_PROTOCOL_ERROR, &e_new);
            if (!(b1 & 0x80u)) return fail(ws, ASYNC_WS_PROTOCOL_ERROR, &e_unmasked);
            hl += l7 == 126 ? 2 : l7 == 127 ? 8 : 0;
            if (avail < hl + 4) return P_MORE;
            if (l7 < 126) {
                len = l7;
            } else {
                for (i = 2; i < hl; i++) len = (len << 8) | p[i];
                if (len >> 63) return fail(ws, ASYNC_WS_PROTOCOL_ERROR, &e_len64);
            }
            if (op < 8) {
                size_t have = op == 0 ? ws->len : 0;
                if (len > ws->lim.max_frame || len > ws->lim.max_message - have)
                    return fail(ws, ASYNC_WS_TOO_BIG, &e_too_big);
                if (have + (size_t)len + 1 > ws->cap) { /* the whole frame's room at once */
                    size_t cap = have + (size_t)len + 1;
                    char *b = (char *)realloc(ws->buf, cap < 256 ? 256 : cap);
                    if (!b) return fail(ws, 1011, &e_nomem);
                    ws->buf = b;
                    ws->cap = cap < 256 ? 256 : cap;
                }
                if (op != 0) {
                    ws->mop = (int)op;
                    ws->len = 0;
                    ws->utf8 = 0;
                }
            }
            memcpy(ws->mask, p + hl, 4);
            async_stream_consume(ws->s, hl + 4);
            ws->fop = (int)op;
            ws->ffin = (b0 & 0x80u) != 0;
            ws->flen = len;
            ws->fgot = 0;
            ws->ctl_len = 0;
            continue;
        }
        /* the payload, unmasked as it is copied */
        take = ws->flen - ws->fgot < avail ? (size_t)(ws->flen - ws->fgot) : avail;
        if (take) {
            unsigned char *dst = (unsigned char *)(ws->fop >= 8 ? ws->ctl + ws->ctl_len : ws->buf + ws->len);
            for (i = 0; i < take; i++) dst[i] = (unsigned char)(p[i] ^ ws->mask[(ws->fgot + i) & 3]);
            async_stream_consume(ws->s, take);
            ws->fgot += take;
            if (ws->fop >= 8) {
                ws->ctl_len += take;
            } else {
                ws->len += take;
                if (ws->mop == ASYNC_WS_TEXT && !utf8_ok(&ws->utf8, dst, take))
                    return fail(ws, ASYNC_WS_INVALID_DATA, &e_utf8);
            }
        }
        if (ws->fgot < ws->flen) return P_MORE;
        { /* the frame is whole */
            int op = ws->fop;
            ws->fop = -1;
            if (op < 8) {
                if (!ws->ffin) continue;
                if (ws->mop == ASYNC_WS_TEXT && ws->utf8) return fail(ws, ASYNC_WS_INVALID_DATA, &e_utf8);
                ws->buf[ws->len] = '\0';
                op = ws->mop;
                ws->mop = 0;
                if (closing) continue;
                ws->out->opcode = op;
                ws->out->data = ws->buf;
                ws->out->len = ws->len;
                ws->out->code = 0;
                return P_MSG;
            }
            if (op == ASYNC_WS_PING) {
                int rc;
                if (closing || (ws->state & (WS_CLOSE_SENT | WS_BROKEN))) continue;
                rc = write_frame(ws, ASYNC_WS_PONG, ws->ctl, ws->ctl_len);
                return rc ? rc : P_REPLY;
            }
            if (op == ASYNC_WS_PONG) continue;
            /* close */
            ws->ctl[ws->ctl_len] = '\0';
            if (ws->ctl_len == 1) return fail(ws, ASYNC_WS_PROTOCOL_ERROR, &e_close_len);
            if (ws->ctl_len >= 2) {
                int code = ((unsigned char)ws->ctl[0] << 8) | (unsigned char)ws->ctl[1];
                if (!close_code_ok(code)) return fail(ws, ASYNC_WS_PROTOCOL_ERROR, &e_close_code);
                if (!utf8_valid(ws->ctl + 2, ws->ctl_len - 2)) return fail(ws, ASYNC_WS_INVALID_DATA, &e_close_utf8);
                ws->close_code = code;
            } else {
                ws->close_code = 0;
            }
            if (ws->out) {
                ws->out->opcode = ASYNC_WS_CLOSE;
                ws->out->code = ws->ctl_len >= 2 ? ws->close_code : ASYNC_WS_NO_STATUS;
                ws->out->data = ws->ctl_len >= 2 ? ws->ctl + 2 : ws->ctl;
                ws->out->len = ws->ctl_len >= 2 ? ws->ctl_len - 2 : 0;
            }
            return P_CLOSE;
        }
    }
}

/* Milliseconds left of the receive's deadline (-1: none). */
static int32_t left(async_task *t, async_ms deadline, int32_t ms) {
    int32_t d;
    if (ms < 0) return -1;
    d = (int32_t)(deadline - async_loop_now(async_task_loop(t)));
    return d > 0 ? d : 0;
}

/* The receive coroutine drains its own frame (pong, close) unless a drain runs already (a sender's, which
 * hands the new bytes to the kernel too). */
static bool may_drain(const async_ws *ws) {
    return async_stream_pending(ws->s) > 0 && !net__io_waiting(&ws->s->wio);
}

/* The receive and the close handshake: frames are read until a message (receive), or the peer's close. */
static async_status ws_recv_run(async_task *t) {
    async_ws *ws = (async_ws *)(void *)t;
    int rc;
    ASYNC_BEGIN(t);
    if (ws->rms >= 0) ws->rdeadline = async_loop_now(async_task_loop(t)) + (async_ms)ws->rms;
    if ((ws->state & WS_CLOSING) && (ws->state & WS_ENDED)) ASYNC_RETURN(t, 0); /* answered already */
    for (;;) {
        if ((ws->state & WS_WANT_DRAIN) && may_drain(ws)) { /* our pong, or the close frame we started with */
            ws->state |= WS_RDRAIN;
            async_event_clear(&ws->wfree);
            ASYNC_TRY(t) {
                AWAIT_STREAM_DRAIN(t, ws->s, left(t, ws->rdeadline, ws->rms));
            }
            ASYNC_FINALLY(t) {
                ws->state &= ~WS_RDRAIN;
                async_event_set(&ws->wfree);
            }
            ASYNC_END_TRY(t);
        }
        ws->state &= ~WS_WANT_DRAIN;
        rc = ws_parse(ws);
        if (rc == P_MSG) break;
        if (rc == P_REPLY) {
            ws->state |= WS_WANT_DRAIN;
            continue;
        }
        if (rc == P_CLOSE || rc == P_FAIL) {
            ws->state |= WS_ENDED;
            if (ws->state & (WS_CLOSE_SENT | WS_BROKEN)) {
                if (rc == P_FAIL) ASYNC_THROW_ERROR(t, ws->err);
                break; /* the answer to our close */
            }
            /* the answer to the peer's close (its code echoed, RFC 6455 5.5.1), or the failure's close */
            rc = write_close(ws, ws->close_code, NULL);
            if (rc == 0 && may_drain(ws)) {
                ws->state |= WS_RDRAIN;
                async_event_clear(&ws->wfree);
                ASYNC_TRY(t) {
                    AWAIT_STREAM_DRAIN(t, ws->s, ws->lim.close_ms);
                }
                ASYNC_EXCEPT_ANY(t) {
                    /* the peer is gone or does not read: the close is not delivered, the end stands */
                }
                ASYNC_FINALLY(t) {
                    ws->state &= ~WS_RDRAIN;
                    async_event_set(&ws->wfree);
                }
                ASYNC_END_TRY(t);
            }
            if (ws->err) ASYNC_THROW_ERROR(t, ws->err);
            break;
        }
        if (rc < 0) {
            ws->state |= WS_ENDED | WS_BROKEN;
            ASYNC_THROW_ERROR(t, async_error_of(rc));
        }
        /* P_MORE */
        AWAIT_STREAM_FILL(t, ws->s, FILL_LIMIT, &ws->n, left(t, ws->rdeadline, ws->rms));
        if (ws->n == 0) { /* the connection ended without a close frame (RFC 6455 7.1.5: 1006) */
            ws->state |= WS_ENDED;
            if (ws->out) {
                ws->out->opcode = ASYNC_WS_CLOSE;
                ws->out->code = ASYNC_WS_ABNORMAL;
                ws->out->data = "";
                ws->out->len = 0;
            }
            break;
        }
    }
    ASYNC_END(t);
}

/* Stands in for an await that cannot start: raises ws->err. */
static async_status ws_fail_run(async_task *t) {
    async_ws *ws = (async_ws *)(void *)t;
    ASYNC_BEGIN(t);
    ASYNC_THROW_ERROR(t, ws->err);
    ASYNC_END(t);
}

static async_status ws_sfail_run(async_task *t) {
    async_ws *ws = (async_ws *)(void *)((char *)t - offsetof(async_ws, stask));
    ASYNC_BEGIN(t);
    ASYNC_THROW_ERROR(t, async_error_of(ws->serr));
    ASYNC_END(t);
}

/* The send's wait: until the receive's own drain (if any) ends, then for the stream's buffer. */
static async_status ws_send_run(async_task *t) {
    async_ws *ws = (async_ws *)(void *)((char *)t - offsetof(async_ws, stask));
    ASYNC_BEGIN(t);
    if (ws->sms >= 0) ws->sdeadline = async_loop_now(async_task_loop(t)) + (async_ms)ws->sms;
    while (ws->state & WS_RDRAIN) AWAIT_EVENT(t, &ws->wfree);
    if (async_stream_pending(ws->s) > 0)
        AWAIT_STREAM_DRAIN(t, ws->s, left(t, ws->sdeadline, ws->sms));
    ASYNC_END(t);
}

/* The receive task set to raise code. */
static async_task *rfail(async_ws *ws, int code) {
    ws->err = async_error_of(code);
    async_task_init(&ws->rtask, ws_fail_run);
    return &ws->rtask;
}

async_task *async__ws_recv(async_ws *ws, async_ws_message *msg, int64_t ms) {
    if (!ws) return NULL; /* AWAIT raises ASYNC_EINVAL */
    if (!async_task_init(&ws->rtask, ws_recv_run)) return &ws->rtask; /* another receive runs: ASYNC_EBUSY */
    if (!msg || !(ws->state & WS_OPEN)) return rfail(ws, ASYNC_EINVAL);
    if (ms > ASYNC_MS_MAX) return rfail(ws, ASYNC_ERANGE);
    if (ws->state & WS_ENDED) return rfail(ws, ASYNC_ENODATA);
    ws->state &= ~WS_CLOSING;
    ws->out = msg;
    ws->err = NULL;
    ws->rms = ms < 0 ? -1 : (int32_t)ms;
    return &ws->rtask;
}

async_task *async__ws_close(async_ws *ws, int code, const char *reason, int64_t ms) {
    int rc;
    if (!ws) return NULL;
    if (!async_task_init(&ws->rtask, ws_recv_run)) return &ws->rtask;
    if (!(ws->state & WS_OPEN) || (code && !close_code_ok(code)) || (!code && reason && *reason) ||
        (reason && (strlen(reason) > 123 || !utf8_valid(reason, strlen(reason)))))
        return rfail(ws, ASYNC_EINVAL);
    if (ms > ASYNC_MS_MAX) return rfail(ws, ASYNC_ERANGE);
    ws->state |= WS_CLOSING;
    ws->out = NULL;
    ws->err = NULL;
    ws->rms = ms < 0 ? -1 : (int32_t)ms;
    if (!(ws->state & (WS_ENDED | WS_CLOSE_SENT | WS_BROKEN))) {
        rc = write_close(ws, code, reason);
        if (rc) return rfail(ws, rc);
        ws->state |= WS_WANT_DRAIN;
    }
    return &ws->rtask;
}

async_task *async__ws_send(async_ws *ws, int opcode, const void *data, size_t len, int64_t ms) {
    int rc;
    if (!ws) return NULL;
    if (!async_task_init(&ws->stask, ws_send_run)) return &ws->stask; /* another send runs: ASYNC_EBUSY */
    rc = ms > ASYNC_MS_MAX ? ASYNC_ERANGE : async_ws_send(ws, opcode, data, len);
    if (rc) {
        ws->serr = rc;
        async_task_init(&ws->stask, ws_sfail_run);
        return &ws->stask;
    }
    ws->sms = ms < 0 ? -1 : (int32_t)ms;
    return &ws->stask;
}
