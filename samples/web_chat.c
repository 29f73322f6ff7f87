/* Seed 002, "Real-time Chat Applications", in the browser: a page (GET /) with a message list and an
 * input box, and a WebSocket endpoint (GET /ws?name=NAME) where each message a page sends goes to every
 * page in the room, its sender's included (the echo tells the sender the room has it). Each page has a
 * reader and a writer task; the writer sends what the page's queue holds. A page that falls 64 messages
 * behind, takes nothing for 5 s or breaks the protocol is dropped, and the room goes on. The room is
 * logged on stdout: "* ann joined", "ann: hello", "* ann left".
 *
 *   web_chat [--port N] [--seconds S]    prints the port; stops on SIGTERM, Ctrl-C or after S seconds
 *
 * The page takes ?name=NAME (else "guest"), and for tests ?send=TEXT (sends TEXT once connected) and
 * ?ack=1 (answers each message of another page with "got TEXT from NAME"): with them two headless
 * browsers hold a conversation that the log shows. */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "async.h"

#define BEHIND_MAX 64 /* messages queued for one page: past it the page is dropped */

/* A page in the room: its name and its queue of messages to send (malloc'ed strings). */
typedef struct member {
    struct member *next, *prev;
    char name[24];
    async_queue queue;
    intptr_t slots[BEHIND_MAX];
    bool dropped;
} member;

static member *room;

/* Takes what m's queue still holds. */
static void empty_queue(member *m) {
    intptr_t item;
    while (async_queue_get_nowait(&m->queue, &item) == 0) free((char *)item);
}

/* Logs the line fmt makes of a and b, and queues it for every page. A page whose queue is full is
 * dropped: its writer's next get raises ASYNC_ESHUTDOWN, which ends the page. */
static void broadcast(const char *fmt, const char *a, const char *b) {
    int len = snprintf(NULL, 0, fmt, a, b);
    member *m;
    printf(fmt, a, b);
    printf("\n");
    fflush(stdout);
    for (m = room; m; m = m->next) {
        char *line = m->dropped || len < 0 ? NULL : malloc((size_t)len + 1);
        if (line) snprintf(line, (size_t)len + 1, fmt, a, b);
        if (!m->dropped && (!line || async_queue_put_nowait(&m->queue, (intptr_t)line) != 0)) {
            free(line);
            m->dropped = true;
            empty_queue(m);
            async_queue_shutdown(&m->queue, false);
        }
    }
}

/* A page's name from ?name=: letters, digits, '_', '-' and '.', at most 20 of them; else "guest". */
static void name_of(const async_http_request *req, char name[24]) {
    const char *q = async_http_request_query(req, "name");
    size_t n = 0;
    for (; q && *q && n < 20; q++)
        if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.", *q)) name[n++] = *q;
    name[n] = '\0';
    if (n == 0) strcpy(name, "guest");
}

/* The page's reader: broadcasts each text message; when the page leaves, ends the writer too. */
ASYNC_DEF(reader, async_ws *ws; const char *name; async_task *writer; async_ws_message msg;) {
    for (;;) {
        AWAIT_WS_RECV(t, f->ws, &f->msg, -1);
        if (f->msg.opcode == ASYNC_WS_CLOSE) break; /* its close, or the connection's end */
        if (f->msg.opcode == ASYNC_WS_TEXT) broadcast("%s: %s", f->name, f->msg.data);
    }
    async_cancel(f->writer);
} ASYNC_END_DEF

/* The page's writer: sends its queue's messages in order, each within 5 s. */
ASYNC_DEF(writer, async_ws *ws; async_queue *queue; intptr_t line;) {
    ASYNC_TRY(t) {
        for (;;) {
            AWAIT_QUEUE_GET(t, f->queue, &f->line);
            AWAIT_WS_SEND(t, f->ws, ASYNC_WS_TEXT, (char *)f->line, strlen((char *)f->line), 5000);
            free((char *)f->line);
            f->line = 0;
        }
    } ASYNC_FINALLY(t) {
        free((char *)f->line);
    } ASYNC_END_TRY(t);
} ASYNC_END_DEF

/* One page: joins the room, reads and writes in two tasks of a group (the first error ends both),
 * then leaves and says why. */
ASYNC_HTTP_DEF(chat, async_ws ws; member me; reader_frame reader; writer_frame writer; async_group g;
               char why[96];) {
    static const async_ws_limits limits = {4096, 0, 0}; /* the largest message */
    if (async_ws_accept(&f->ws, f->req, f->res, &limits)) ASYNC_RETURN(t, 0); /* answered 400 or 426 */
    name_of(f->req, f->me.name);
    async_queue_init(&f->me.queue, ASYNC_QUEUE_FIFO, f->me.slots, NULL, BEHIND_MAX);
    f->me.next = room;
    if (room) room->prev = &f->me;
    room = &f->me;
    ASYNC_TRY(t) {
        broadcast("* %s joined%s", f->me.name, "");
        ASYNC_SPAWN(t, &f->g, ASYNC_CALL(reader, &f->reader, &f->ws, f->me.name, &f->writer.task));
        ASYNC_SPAWN(t, &f->g, ASYNC_CALL(writer, &f->writer, &f->ws, &f->me.queue));
        AWAIT_GROUP(t, &f->g);
    } ASYNC_EXCEPT_ANY(t) {
        snprintf(f->why, sizeof f->why, " (%s)", f->me.dropped ? "too far behind" : async_caught(t)->message);
    } ASYNC_FINALLY(t) {
        if (f->me.prev) f->me.prev->next = f->me.next; else room = f->me.next;
        if (f->me.next) f->me.next->prev = f->me.prev;
        broadcast("* %s left%s", f->me.name, f->why);
        empty_queue(&f->me);
        ASYNC_TRY(t) { /* says goodbye if the page still listens (the server stops, or dropped it) */
            AWAIT_WS_CLOSE(t, &f->ws, ASYNC_WS_GOING_AWAY, NULL, 1000);
        } ASYNC_CATCH(t) {
        } ASYNC_FINALLY(t) {
            /* here, not after this block: a cancellation being passed on goes on at its end */
            async_ws_free(&f->ws);
        } ASYNC_END_TRY(t);
    } ASYNC_END_TRY(t);
} ASYNC_END_DEF

static const char page_html[] =
    "<!doctype html>\n<meta charset=utf-8>\n<title>web chat</title>\n"
    "<style>body{font:16px sans-serif;max-width:40em;margin:2em auto} #log{list-style:none;padding:0}"
    " .me{color:#06c} .note{color:#888}</style>\n"
    "<ul id=log></ul>\n"
    "<form id=say><input id=text autocomplete=off autofocus size=50> <button>send</button></form>\n"
    "<script>\n"
    "const q = new URLSearchParams(location.search), name = q.get('name') || 'guest';\n"
    "const log = document.getElementById('log'), text = document.getElementById('text');\n"
    "const ws = new WebSocket('ws://' + location.host + '/ws?name=' + encodeURIComponent(name));\n"
    "function show(line, how) {\n"
    "  const li = document.createElement('li');\n"
    "  li.textContent = line;\n"
    "  li.className = how;\n"
    "  log.append(li);\n"
    "}\n"
    "ws.onopen = () => { if (q.get('send')) ws.send(q.get('send')); };\n"
    "ws.onmessage = e => {\n"
    "  const m = /^([^:]*): (.*)$/s.exec(e.data), from = m && m[1];\n"
    "  show(e.data, !m ? 'note' : from === name ? 'me' : '');\n"
    "  if (q.get('ack') && m && from !== name && !m[2].startsWith('got '))\n"
    "    ws.send('got ' + m[2] + ' from ' + from);\n"
    "};\n"
    "ws.onclose = e => show('* disconnected (' + e.code + ')', 'note');\n"
    "document.getElementById('say').onsubmit = e => {\n"
    "  e.preventDefault();\n"
    "  if (text.value) ws.send(text.value);\n"
    "  text.value = '';\n"
    "};\n"
    "</script>\n";

ASYNC_HTTP_DEF(page) {
    async_http_response_text(f->res, 200, page_html);
    f->res->content_type = "text/html; charset=utf-8";
} ASYNC_END_DEF

static const async_http_route routes[] = {
    ASYNC_HTTP_ROUTE("GET", "/", page), ASYNC_HTTP_ROUTE("GET", "/ws", chat), ASYNC_HTTP_ROUTES_END};

/* server.close(): requests in flight get a second to end; a page never ends by itself, so it is then
 * cancelled, and its handler tells it the server goes away. */
static void close_server(void *server) {
    async_http_server_close(server, 1000);
}

static void on_sigterm(async_loop *loop, int signo, void *server) {
    (void)loop;
    (void)signo;
    close_server(server);
}

/* Serves until the server is closed: loop.add_signal_handler(SIGTERM, close), and with --seconds
 * loop.call_later(seconds, close). */
ASYNC_DEF(serve, int port, seconds; async_http_server http; async_handle timer; async_group g;) {
    async_loop *loop = async_task_loop(t);
    int rc = async_http_server_listen(&f->http, "127.0.0.1", f->port, 0, NULL, routes, NULL);
    if (!rc) rc = async_loop_add_signal_handler(loop, SIGTERM, on_sigterm, &f->http);
    if (!rc && f->seconds > 0) rc = async_loop_call_later(loop, &f->timer, f->seconds * 1000, close_server, &f->http);
    if (rc) ASYNC_THROW_ERROR(t, async_error_of(rc)); /* the process ends: what was opened goes with it */
    printf("Chat on http://127.0.0.1:%d/\n", async_http_server_port(&f->http));
    fflush(stdout);
    ASYNC_TRY(t) {
        ASYNC_SPAWN(t, &f->g, async_http_server_serve(&f->http));
        AWAIT_GROUP(t, &f->g);
    } ASYNC_FINALLY(t) {
        async_handle_cancel(&f->timer);
        async_loop_remove_signal_handler(async_task_loop(t), SIGTERM);
    } ASYNC_END_TRY(t);
} ASYNC_END_DEF

int main(int argc, char **argv) {
    static serve_frame m;
    int i, port = 0, seconds = 0;
    for (i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--port") == 0) port = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--seconds") == 0) seconds = atoi(argv[i + 1]);
        else break;
    }
    if (i < argc || port < 0 || port > 65535 || seconds < 0 || seconds > 86400 * 365) {
        fprintf(stderr, "usage: %s [--port N] [--seconds S]\n", argv[0]);
        return 2;
    }
    return async_main_exit(async_main(ASYNC_CALL(serve, &m, port, seconds)));
}
