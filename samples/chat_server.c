/* Seed 002: "Real-time Chat Applications: utilize async handling for real-time message processing".
 *
 *   async def client(reader, writer):
 *       writer.write(b"Nickname? "); nick = (await reader.readline()).strip()
 *       queue = asyncio.Queue(1024); room.add(queue)
 *       sender = asyncio.create_task(send_all(queue, writer))
 *       async for line in reader: broadcast(f"<{nick}> {line}")     # put_nowait to every other queue;
 *       ...                                                         # a full queue: that client is too
 *   await asyncio.start_server(client, "127.0.0.1", port)           # slow and is disconnected
 *
 *   chat_server [--port N] [--seconds S]        then: nc 127.0.0.1 PORT
 *
 * Each client has a reader (this coroutine) and a writer task that drains its bounded queue. A message
 * is one reference-counted block shared by every queue it sits in. A client whose queue is full is
 * disconnected, so a slow reader never stalls the others. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/socket.h>

#include "async.h"

#define QUEUE_MAX 1024
#define LINE_MAX_BYTES 1024

typedef struct message {
    int refs;
    size_t len;
    char text[];
} message;

typedef struct client client;

/* The writer of one client: sends what its queue holds. */
typedef struct sender {
    async_task task;
    client *c;
    intptr_t item;
} sender;

struct client {
    async_task task;
    async_stream *s;
    client *next, *prev; /* the room */
    char nick[32];
    const char *line;
    size_t len;
    async_queue queue; /* of message pointers */
    intptr_t slots[QUEUE_MAX];
    sender sender;
    async_group g;
    bool joined;
};

static client *room;

static void unref(message *m) {
    if (--m->refs == 0) free(m);
}

/* Sends "text" to every client but `from`; a client whose queue is full is disconnected. */
static void broadcast(client *from, const char *fmt, const char *a, size_t alen, const char *b, size_t blen) {
    client *c, *next;
    int len = snprintf(NULL, 0, fmt, (int)alen, a, (int)blen, b);
    message *m = len < 0 ? NULL : malloc(sizeof *m + (size_t)len + 1);
    if (!m) return; /* out of memory: this message is lost, the chat goes on */
    m->len = (size_t)snprintf(m->text, (size_t)len + 1, fmt, (int)alen, a, (int)blen, b);
    m->refs = 1;
    for (c = room; c; c = next) {
        next = c->next;
        if (c == from) continue;
        m->refs++;
        if (async_queue_put_nowait(&c->queue, (intptr_t)m) != 0) {
            m->refs--;
            async_cancel(&c->task); /* too slow (or leaving): disconnect it */
        }
    }
    unref(m);
}

static async_status send_all_run(async_task *t) {
    client *c = ((sender *)t)->c;
    ASYNC_BEGIN(t);
    for (;;) {
        AWAIT_QUEUE_GET(t, &c->queue, &c->sender.item);
        async_stream_write(c->s, ((message *)c->sender.item)->text, ((message *)c->sender.item)->len);
        unref((message *)c->sender.item);
        AWAIT_STREAM_DRAIN(t, c->s, 5000);
    }
    ASYNC_END(t);
}

static async_status client_run(async_task *t) {
    client *c = (client *)t;
    intptr_t item;
    ASYNC_BEGIN(t);
    ASYNC_TRY(t) {
        async_stream_write(c->s, "Welcome! Your nickname? ", 24);
        AWAIT_STREAM_DRAIN(t, c->s, 5000);
        AWAIT_STREAM_READLINE(t, c->s, &c->line, &c->len, 64, 60000);
        while (c->len && (c->line[c->len - 1] == '\n' || c->line[c->len - 1] == '\r')) c->len--;
        if (c->len == 0) ASYNC_RETURN(t, 0);
        memcpy(c->nick, c->line, c->len < sizeof c->nick - 1 ? c->len : sizeof c->nick - 1);
        async_queue_init(&c->queue, ASYNC_QUEUE_FIFO, c->slots, NULL, QUEUE_MAX);
        c->next = room;
        if (room) room->prev = c;
        room = c;
        c->joined = true;
        broadcast(c, "* %.*s joined%.*s\n", c->nick, strlen(c->nick), "", 0);
        ASYNC_FRAME_INIT(&c->sender, send_all_run);
        c->sender.c = c;
        ASYNC_SPAWN(t, &c->g, &c->sender.task);
        for (;;) {
            AWAIT_STREAM_READLINE(t, c->s, &c->line, &c->len, LINE_MAX_BYTES, -1);
            if (c->len == 0) break; /* the client left */
            broadcast(c, c->line[c->len - 1] == '\n' ? "<%.*s> %.*s" : "<%.*s> %.*s\n", c->nick, strlen(c->nick),
                      c->line, c->len);
            ASYNC_YIELD(t); /* let the writers run: a burst of lines must not fill every queue at once */
        }
    }
    ASYNC_FINALLY(t) {
        if (c->joined) {
            if (c->prev) c->prev->next = c->next; else room = c->next;
            if (c->next) c->next->prev = c->prev;
            c->joined = false;
            async_cancel(&c->sender.task);
            while (async_queue_get_nowait(&c->queue, &item) == 0) unref((message *)item);
            broadcast(c, "* %.*s left%.*s\n", c->nick, strlen(c->nick), "", 0);
        }
    }
    ASYNC_END_TRY(t);
    ASYNC_END(t);
}

static async_task *client_new(void *frame, async_stream *s, void *arg) {
    client *c = frame;
    int sndbuf = 64 * 1024;
    (void)arg;
    ASYNC_FRAME_INIT(c, client_run);
    c->s = s;
    /* bound what the kernel holds for one client (it would grow to megabytes): past it, the queue
     * fills and a slow client is cut off instead of buffered without end */
    setsockopt(async_stream_fd(s), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    return &c->task;
}

typedef struct {
    async_task task;
    async_server server;
    async_group g;
    int port, seconds;
} main_frame;

static async_status main_run(async_task *t) {
    main_frame *f = (main_frame *)t;
    int rc;
    ASYNC_BEGIN(t);
    rc = async_server_listen(&f->server, "127.0.0.1", f->port, 0, sizeof(client), client_new, NULL);
    if (rc) ASYNC_THROW_ERROR(t, async_error_of(rc));
    printf("Chat server on 127.0.0.1:%d\n", async_server_port(&f->server));
    fflush(stdout);
    ASYNC_SPAWN(t, &f->g, async_server_serve(&f->server));
    if (f->seconds > 0) {
        AWAIT_SLEEP(t, f->seconds * 1000);
        async_server_close(&f->server, 0);
    }
    AWAIT_GROUP(t, &f->g);
    ASYNC_END(t);
}

int main(int argc, char **argv) {
    static main_frame m;
    int i;
    ASYNC_FRAME_INIT(&m, main_run);
    for (i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--port") == 0) m.port = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--seconds") == 0) m.seconds = atoi(argv[i + 1]);
        else break;
    }
    if (i < argc) {
        fprintf(stderr, "usage: %s [--port N] [--seconds S]\n", argv[0]);
        return 2;
    }
    return async_main(&m.task) ? 1 : 0;
}
