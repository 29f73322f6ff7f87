/* Seed 002, "Real-time Chat Applications": a chat server for nc clients. Each client gives a nickname,
 * then every line it sends goes to every other client. Each client has a reader (its coroutine) and a
 * writer task that drains its queue; a message is one reference-counted block shared by every queue it
 * sits in. Back-pressure instead of cut-offs: while a client's queue is above HIGH_WATER, the senders
 * read no more lines until it is down to LOW_WATER, so a paste of thousands of lines reaches every reader
 * whole. A client is cut off only when it takes nothing for the stall time (then the room goes on) or
 * sends a line over LINE_MAX_BYTES, and is told why first if it still reads.
 *
 *   chat_server [--port N] [--seconds S] [--stall-seconds N]        then: nc 127.0.0.1 PORT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/socket.h>

#include "async.h"

#define HIGH_WATER 256 /* messages queued for one client, past which the senders wait */
#define LOW_WATER 64
#define LINE_MAX_BYTES 1024

typedef struct message {
    int refs;
    size_t len;
    char text[];
} message;

static void unref(message *m) {
    if (--m->refs == 0) free(m);
}

static int stall_seconds = 10;
static int over_high;         /* clients whose queue is above HIGH_WATER: while any, senders wait */
static async_event room_open; /* set when over_high is back to 0 */

/* Marks a client's queue as above HIGH_WATER, or as down to LOW_WATER again. */
static void set_full(bool *full, bool now) {
    if (*full == now) return;
    *full = now;
    over_high += now ? 1 : -1;
    if (now) async_event_clear(&room_open);
    else if (over_high == 0) async_event_set(&room_open);
}

/* The writer of one client: sends what its queue holds. If the kernel takes no message (a line, 1 KB at
 * most) for the stall time, or the socket fails, it cancels the client's reader, whose finally leaves. */
ASYNC_DEF(send_all, async_queue *queue; async_stream *s; intptr_t item; bool full, stalled;) {
    ASYNC_TRY(t) {
        for (;;) {
            AWAIT_QUEUE_GET(t, f->queue, &f->item);
            async_stream_write(f->s, ((message *)f->item)->text, ((message *)f->item)->len);
            unref((message *)f->item);
            if (async_queue_size(f->queue) <= LOW_WATER) set_full(&f->full, false);
            AWAIT_STREAM_DRAIN(t, f->s, stall_seconds * 1000);
        }
    } ASYNC_EXCEPT_ANY(t) {
        f->stalled = async_caught(t)->code == ASYNC_ETIMEDOUT;
        async_cancel(async_task_parent(t));
    } ASYNC_END_TRY(t);
} ASYNC_END_DEF

static struct client_frame *room;
static void broadcast(struct client_frame *from, const char *fmt, const char *a, size_t alen, const char *b,
                      size_t blen);

/* One client: its nickname, then its lines, each broadcast; the room is a list of the clients. */
ASYNC_DEF(client, async_stream *s; struct client_frame *next, *prev; char nick[32]; const char *line; size_t len;
          async_queue queue; send_all_frame sender; async_group g; bool joined; char why[80];) {
    ASYNC_TRY(t) {
        async_stream_write(f->s, "Welcome! Your nickname? ", 24);
        AWAIT_STREAM_DRAIN(t, f->s, 5000);
        AWAIT_STREAM_READLINE(t, f->s, &f->line, &f->len, 64, 60000);
        while (f->len && (f->line[f->len - 1] == '\n' || f->line[f->len - 1] == '\r')) f->len--;
        if (f->len == 0) ASYNC_RETURN(t, 0);
        memcpy(f->nick, f->line, f->len < sizeof f->nick - 1 ? f->len : sizeof f->nick - 1);
        async_queue_init_growing(&f->queue, ASYNC_QUEUE_FIFO, 0, realloc);
        f->next = room;
        if (room) room->prev = f;
        room = f;
        f->joined = true;
        broadcast(f, "* %.*s joined%.*s\n", f->nick, strlen(f->nick), "", 0);
        ASYNC_SPAWN(t, &f->g, ASYNC_CALL(send_all, &f->sender, &f->queue, f->s));
        for (;;) {
            AWAIT_STREAM_READLINE(t, f->s, &f->line, &f->len, LINE_MAX_BYTES, -1);
            if (f->len == 0) break; /* the client left */
            while (over_high > 0) AWAIT_EVENT(t, &room_open); /* someone is behind: read no more for now */
            broadcast(f, f->line[f->len - 1] == '\n' ? "<%.*s> %.*s" : "<%.*s> %.*s\n", f->nick, strlen(f->nick),
                      f->line, f->len);
        }
    } ASYNC_EXCEPT(t, ASYNC_EOVERFLOW) {
        snprintf(f->why, sizeof f->why, "* disconnected: line too long (over %d bytes)\n",
                 f->joined ? LINE_MAX_BYTES : 64);
    } ASYNC_FINALLY(t) {
        if (f->joined) {
            if (f->prev) f->prev->next = f->next; else room = f->next;
            if (f->next) f->next->prev = f->prev;
            f->joined = false;
            set_full(&f->sender.full, false);
            async_cancel(&f->sender.task);
            broadcast(f, "* %.*s left%.*s\n", f->nick, strlen(f->nick), "", 0);
        }
        if (f->sender.stalled)
            snprintf(f->why, sizeof f->why, "* disconnected: too slow (no progress for %d s)\n", stall_seconds);
        ASYNC_TRY(t) {
            AWAIT_GROUP(t, &f->g); /* the writer has ended: the queue and the stream are this task's alone */
            if (f->why[0]) { /* best effort: a client that reads nothing is closed all the same */
                async_stream_write(f->s, f->why, strlen(f->why));
                AWAIT_STREAM_DRAIN(t, f->s, 2000);
            }
        } ASYNC_FINALLY(t) {
            intptr_t item;
            while (async_queue_get_nowait(&f->queue, &item) == 0) unref((message *)item);
            async_queue_free_storage(&f->queue);
        } ASYNC_END_TRY(t);
    } ASYNC_END_TRY(t);
} ASYNC_END_DEF

/* Sends "text" to every client but `from`. A queue past HIGH_WATER holds the senders back; no one is cut
 * off for the length of its queue (only when it cannot have one: out of memory). */
static void broadcast(client_frame *from, const char *fmt, const char *a, size_t alen, const char *b, size_t blen) {
    client_frame *c;
    int len = snprintf(NULL, 0, fmt, (int)alen, a, (int)blen, b);
    message *m = len < 0 ? NULL : malloc(sizeof *m + (size_t)len + 1);
    if (!m) return; /* out of memory: this message is lost, the chat goes on */
    m->len = (size_t)snprintf(m->text, (size_t)len + 1, fmt, (int)alen, a, (int)blen, b);
    m->refs = 1;
    for (c = room; c; c = c->next) {
        if (c == from) continue;
        m->refs++;
        if (async_queue_put_nowait(&c->queue, (intptr_t)m) != 0) {
            m->refs--;
            async_cancel(&c->task); /* no memory for its queue: it cannot follow the room */
        } else if (async_queue_size(&c->queue) > HIGH_WATER) {
            set_full(&c->sender.full, true);
        }
    }
    unref(m);
}

/* The server's frame for a new connection: a client coroutine on the stream. */
static async_task *client_new(void *frame, async_stream *s, void *arg) {
    int sndbuf = 64 * 1024;
    (void)arg;
    /* bound what the kernel holds for one client (it would grow to megabytes): past it, the queue grows
     * and the senders wait, rather than megabytes buffered for one slow reader */
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
        else if (strcmp(argv[i], "--stall-seconds") == 0) stall_seconds = atoi(argv[i + 1]);
        else break;
    }
    if (i < argc || stall_seconds < 1 || stall_seconds > 86400) {
        fprintf(stderr, "usage: %s [--port N] [--seconds S] [--stall-seconds N (1 to 86400)]\n", argv[0]);
        return 2;
    }
    return async_main(ASYNC_CALL(main, &m, port, seconds)) ? 1 : 0;
}
