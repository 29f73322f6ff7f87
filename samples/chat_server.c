/* Seed 002, "Real-time Chat Applications": a chat server for nc clients. Each client gives a nickname,
 * then every line it sends goes to every other client. Each client has a reader (its coroutine) and a
 * writer task that drains its bounded queue; a message is one reference-counted block shared by every
 * queue it sits in. A client whose queue is full is disconnected, so a slow reader never stalls the others.
 *
 *   chat_server [--port N] [--seconds S]        then: nc 127.0.0.1 PORT */
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

static void unref(message *m) {
    if (--m->refs == 0) free(m);
}

/* The writer of one client: sends what its queue holds. */
ASYNC_DEF(send_all, async_queue *queue; async_stream *s; intptr_t item;) {
    for (;;) {
        AWAIT_QUEUE_GET(t, f->queue, &f->item);
        async_stream_write(f->s, ((message *)f->item)->text, ((message *)f->item)->len);
        unref((message *)f->item);
        AWAIT_STREAM_DRAIN(t, f->s, 5000);
    }
} ASYNC_END_DEF

static struct client_frame *room;
static void broadcast(struct client_frame *from, const char *fmt, const char *a, size_t alen, const char *b,
                      size_t blen);

/* One client: its nickname, then its lines, each broadcast; the room is a list of the clients. */
ASYNC_DEF(client, async_stream *s; struct client_frame *next, *prev; char nick[32]; const char *line; size_t len;
          async_queue queue; intptr_t slots[QUEUE_MAX]; send_all_frame sender; async_group g; bool joined;) {
    ASYNC_TRY(t) {
        async_stream_write(f->s, "Welcome! Your nickname? ", 24);
        AWAIT_STREAM_DRAIN(t, f->s, 5000);
        AWAIT_STREAM_READLINE(t, f->s, &f->line, &f->len, 64, 60000);
        while (f->len && (f->line[f->len - 1] == '\n' || f->line[f->len - 1] == '\r')) f->len--;
        if (f->len == 0) ASYNC_RETURN(t, 0);
        memcpy(f->nick, f->line, f->len < sizeof f->nick - 1 ? f->len : sizeof f->nick - 1);
        async_queue_init(&f->queue, ASYNC_QUEUE_FIFO, f->slots, NULL, QUEUE_MAX);
        f->next = room;
        if (room) room->prev = f;
        room = f;
        f->joined = true;
        broadcast(f, "* %.*s joined%.*s\n", f->nick, strlen(f->nick), "", 0);
        ASYNC_SPAWN(t, &f->g, ASYNC_CALL(send_all, &f->sender, &f->queue, f->s));
        for (;;) {
            AWAIT_STREAM_READLINE(t, f->s, &f->line, &f->len, LINE_MAX_BYTES, -1);
            if (f->len == 0) break; /* the client left */
            broadcast(f, f->line[f->len - 1] == '\n' ? "<%.*s> %.*s" : "<%.*s> %.*s\n", f->nick, strlen(f->nick),
                      f->line, f->len);
            AWAIT_YIELD(t); /* let the writers run: a burst of lines must not fill every queue at once */
        }
    } ASYNC_FINALLY(t) {
        if (f->joined) {
            intptr_t item;
            if (f->prev) f->prev->next = f->next; else room = f->next;
            if (f->next) f->next->prev = f->prev;
            f->joined = false;
            async_cancel(&f->sender.task);
            while (async_queue_get_nowait(&f->queue, &item) == 0) unref((message *)item);
            broadcast(f, "* %.*s left%.*s\n", f->nick, strlen(f->nick), "", 0);
        }
    } ASYNC_END_TRY(t);
} ASYNC_END_DEF

/* Sends "text" to every client but `from`; a client whose queue is full is disconnected. */
static void broadcast(client_frame *from, const char *fmt, const char *a, size_t alen, const char *b, size_t blen) {
    client_frame *c, *next;
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

/* The server's frame for a new connection: a client coroutine on the stream. */
static async_task *client_new(void *frame, async_stream *s, void *arg) {
    int sndbuf = 64 * 1024;
    (void)arg;
    /* bound what the kernel holds for one client (it would grow to megabytes): past it, the queue
     * fills and a slow client is cut off instead of buffered without end */
    setsockopt(async_stream_fd(s), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    return ASYNC_CALL(client, (client_frame *)frame, s);
}

ASYNC_DEF(main, int port, seconds; async_server server; async_group g;) {
    int rc = async_server_listen(&f->server, "127.0.0.1", f->port, 0, sizeof(client_frame), client_new, NULL);
    if (rc) ASYNC_THROW_ERROR(t, async_error_of(rc));
    printf("Chat server on 127.0.0.1:%d\n", async_server_port(&f->server));
    fflush(stdout);
    ASYNC_SPAWN(t, &f->g, async_server_serve(&f->server));
    if (f->seconds > 0) {
        AWAIT_SLEEP(t, f->seconds * 1000);
        async_server_close(&f->server, 0);
    }
    AWAIT_GROUP(t, &f->g);
} ASYNC_END_DEF

int main(int argc, char **argv) {
    static main_frame m;
    int i, port = 0, seconds = 0;
    for (i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--port") == 0) port = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--seconds") == 0) seconds = atoi(argv[i + 1]);
        else break;
    }
    if (i < argc) {
        fprintf(stderr, "usage: %s [--port N] [--seconds S]\n", argv[0]);
        return 2;
    }
    return async_main(ASYNC_CALL(main, &m, port, seconds)) ? 1 : 0;
}
