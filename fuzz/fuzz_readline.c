/* libFuzzer target: AWAIT_STREAM_READLINE over input split into arbitrary chunks (see fuzz_net.h), with
 * a line limit taken from the first byte. The lines read must be exactly the input's lines, in order,
 * each ending in '\n' but the last, none longer than the limit; ASYNC_EOVERFLOW exactly when the next
 * line is longer than the limit (the lines before it were all returned). */
#include "fuzz_net.h"

typedef struct {
    async_task task;
    async_stream s;
    size_t limit;
    const char *line;
    size_t len;
    char out[8192];
    size_t outlen;
    size_t lines;
    int err;
} reader_frame;

static async_status reader_run(async_task *t) {
    reader_frame *f = (reader_frame *)t;
    ASYNC_BEGIN(t);
    ASYNC_TRY(t) {
        for (;;) {
            AWAIT_STREAM_READLINE(t, &f->s, &f->line, &f->len, f->limit, 5000);
            if (f->len == 0) break;
            FUZZ_CHECK(f->len <= f->limit);
            FUZZ_CHECK(memchr(f->line, '\n', f->len - 1) == NULL);
            FUZZ_CHECK(f->outlen + f->len <= sizeof f->out);
            memcpy(f->out + f->outlen, f->line, f->len);
            f->outlen += f->len;
            f->lines++;
        }
    }
    ASYNC_CATCH(t) {
        f->err = async_caught(t)->code;
    }
    ASYNC_END_TRY(t);
    ASYNC_END(t);
}

typedef struct {
    async_task task;
    reader_frame *reader;
    fuzz_sender *sender;
    async_group g;
} main_frame;

static async_status main_run(async_task *t) {
    main_frame *f = (main_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT_GATHER_SETTLED(t, &f->g, &f->reader->task, &f->sender->task);
    ASYNC_END(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static reader_frame reader;
    static fuzz_sender sender;
    static main_frame m;
    const uint8_t *payload = data + 1, *p, *end;
    size_t len, expect_len = 0, expect_lines = 0;
    int sv[2], overflow = 0;
    if (size < 1 || size > 4096) return 0;
    len = size - 1;
    FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    ASYNC_FRAME_INIT(&reader, reader_run);
    reader.limit = 1 + (size_t)(data[0] >> 1) * 3; /* 1..382 */
    FUZZ_CHECK(async_stream_open(&reader.s, sv[0]) == 0);
    fuzz_sender_new(&sender, sv[1], data, size, 1);
    ASYNC_FRAME_INIT(&m, main_run);
    m.reader = &reader;
    m.sender = &sender;
    FUZZ_CHECK(async_run(fuzz_loop(), &m.task) == 0);
    async_stream_close(&reader.s);
    close(sv[1]);
    /* the model: the input's lines up to the first one over the limit */
    for (p = payload, end = payload + len; p < end;) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
        if (n > reader.limit) {
            overflow = 1;
            break;
        }
        expect_len += n;
        expect_lines++;
        p += n;
    }
    FUZZ_CHECK(reader.err == (overflow ? ASYNC_EOVERFLOW : 0));
    FUZZ_CHECK(reader.lines == expect_lines);
    FUZZ_CHECK(reader.outlen == expect_len && memcmp(reader.out, payload, expect_len) == 0);
    return 0;
}
