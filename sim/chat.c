/* The chat server sample (samples/chat_server.c, compiled here unchanged) with 20 clients in the world:
 * they join, talk, stall and vanish, over connections with latency, little bandwidth, partial reads and
 * writes, stalls, and connects that are refused at first. Three clients vanish at a random moment (they
 * close without a word), three stop reading for 3 s (less than the server's stall time, so it must hold
 * their messages back, not cut them off). Checks: every client that stays receives every message of
 * every other client that stays, once and in order; what it receives of those that vanish is in order
 * and never twice; the server's room is empty at the end. */
/* Only the sample's C main() is renamed (a function-like macro: its coroutine `main` is left alone). */
int chat_sample_main(int argc, char **argv);
#define main(argc, argv) chat_sample_main(argc, argv)
#include "../samples/chat_server.c"
#undef main

#include "sim.h"

#define CLIENTS 20
#define MESSAGES 5
#define CHAT_PORT 7000

typedef struct chat_world {
    int vanish[CLIENTS], stall[CLIENTS];
    int got[CLIENTS][CLIENTS];  /* got[b][a]: messages of a that b received */
    int next[CLIENTS][CLIENTS]; /* next[b][a]: the number b expects next from a */
    int disorder, timeouts, failures;
    bool all_in; /* the room held every client once: talking may start (and vanishing with it) */
} chat_world;

static int room_size(void) {
    int n = 0;
    client_frame *c;
    for (c = room; c; c = c->next) n++;
    return n;
}

/* How many messages b must receive from the clients that stay. */
static int expected(const chat_world *w, int b) {
    int a, n = 0;
    for (a = 0; a < CLIENTS; a++)
        if (a != b && !w->vanish[a]) n += MESSAGES;
    return n;
}

static int received(const chat_world *w, int b) {
    int a, n = 0;
    for (a = 0; a < CLIENTS; a++)
        if (a != b && !w->vanish[a]) n += w->got[b][a];
    return n;
}

/* One client's reader: every line; "<cNN> mK" is message K of client NN. */
ASYNC_DEF(chat_reader, chat_world *w; async_stream *s; int me; const char *line; size_t len; int a, k;
          bool stalled;) {
    while (received(f->w, f->me) < expected(f->w, f->me)) {
        if (f->w->stall[f->me] && !f->stalled && received(f->w, f->me) >= MESSAGES) {
            f->stalled = true;
            AWAIT_SLEEP(t, 3000); /* reads nothing for a while: the server must hold back, not drop */
        }
        AWAIT_STREAM_READLINE(t, f->s, &f->line, &f->len, 256, -1);
        if (f->len == 0) ASYNC_THROW(t, ASYNC_ENODATA, "the server closed the connection");
        if (sscanf(f->line, "<c%d> m%d", &f->a, &f->k) != 2) continue; /* joined, left, welcome */
        if (f->a < 0 || f->a >= CLIENTS || f->k != f->w->next[f->me][f->a]) {
            f->w->disorder++;
            continue;
        }
        f->w->next[f->me][f->a]++;
        f->w->got[f->me][f->a]++;
    }
} ASYNC_END_DEF

ASYNC_DEF(chat_client, chat_world *w; int me; async_stream s; char buf[32]; int tries, k; chat_reader_frame r;
          async_group g; async_deadline d;) {
    for (f->tries = 0;; f->tries++) { /* connects may be refused: try again, as a user's client would */
        ASYNC_TRY(t) {
            AWAIT_STREAM_CONNECT(t, &f->s, "127.0.0.1", CHAT_PORT, 5000);
        } ASYNC_CATCH(t) {
            if (f->tries == 20) ASYNC_RERAISE(t);
        } ASYNC_END_TRY(t);
        if (async_stream_fd(&f->s) >= 0) break;
        AWAIT_SLEEP(t, 50);
    }
    ASYNC_TRY(t) {
        ASYNC_TIMEOUT(t, &f->d, 120000) {
            AWAIT_STREAM_READEXACTLY(t, &f->s, f->buf, 24, 10000); /* "Welcome! Your nickname? " */
            snprintf(f->buf, sizeof f->buf, "c%02d\n", f->me);
            async_stream_write(&f->s, f->buf, strlen(f->buf));
            AWAIT_STREAM_DRAIN(t, &f->s, 10000);
            /* everyone is in the room: now talk. A latch, not the room's size: once the first client
             * talks, one that vanishes makes the room smaller again */
            while (!f->w->all_in && room_size() < CLIENTS) AWAIT_SLEEP(t, 10);
            f->w->all_in = true;
            ASYNC_SPAWN(t, &f->g, ASYNC_CALL(chat_reader, &f->r, f->w, &f->s, f->me));
            for (f->k = 0; f->k < MESSAGES; f->k++) {
                AWAIT_SLEEP(t, (int)async_sim_random(async_task_loop(t), 200));
                if (f->w->vanish[f->me] && f->k == f->w->vanish[f->me] - 1) {
                    async_stream_close(&f->s); /* gone without a word */
                    async_cancel(&f->r.task);
                    break;
                }
                snprintf(f->buf, sizeof f->buf, "m%d\n", f->k);
                async_stream_write(&f->s, f->buf, strlen(f->buf));
                AWAIT_STREAM_DRAIN(t, &f->s, 30000);
            }
            AWAIT_GROUP(t, &f->g); /* the reader has everything it must have */
        }
        ASYNC_END_TIMEOUT(t, &f->d);
    } ASYNC_CATCH(t) {
        if (!f->w->vanish[f->me]) {
            if (async_caught(t)->code == ASYNC_ETIMEDOUT)
                f->w->timeouts++;
            else
                f->w->failures++;
        }
    } ASYNC_FINALLY(t) {
        async_stream_close(&f->s);
    } ASYNC_END_TRY(t);
} ASYNC_END_DEF

ASYNC_DEF(chat_main, chat_world *w; async_server server; async_group serving, clients; chat_client_frame c[CLIENTS];
          int i;) {
    int rc = async_server_listen(&f->server, "127.0.0.1", CHAT_PORT, 0, sizeof(client_frame), client_new, NULL);
    if (rc) ASYNC_THROW_ERROR(t, async_error_of(rc));
    ASYNC_SPAWN(t, &f->serving, async_server_serve(&f->server));
    for (f->i = 0; f->i < CLIENTS; f->i++) ASYNC_SPAWN(t, &f->clients, ASYNC_CALL(chat_client, &f->c[f->i], f->w, f->i));
    AWAIT_GROUP(t, &f->clients);
    async_server_close(&f->server, 1000);
    AWAIT_GROUP(t, &f->serving);
} ASYNC_END_DEF

static void chat_options(async_sim_options *o, uint64_t seed, void *arg) {
    (void)seed;
    (void)arg;
    o->latency_min_ms = 1;
    o->latency_max_ms = 50;
    o->bandwidth = 1000;
    o->partial_pct = 30;
    o->refuse_pct = 10;
    o->stall_pct = 5;
    o->stall_max_ms = 500;
}

static int chat_scenario(async_loop *loop, void *arg, const char **why) {
    static chat_world w;
    static chat_main_frame m;
    int i, b, a, rc;
    (void)arg;
    memset(&w, 0, sizeof w);
    memset(&m, 0, sizeof m);
    /* the sample's globals: a seed that failed (the runner goes on with --keep-going) may have left them
     * pointing into the frames of its freed loop */
    room = NULL;
    over_high = 0;
    memset(&room_open, 0, sizeof room_open);
    for (i = 0; i < 3; i++) { /* three vanish, three stall (maybe the same ones) */
        w.vanish[async_sim_random(loop, CLIENTS)] = 1 + (int)async_sim_random(loop, MESSAGES);
        w.stall[async_sim_random(loop, CLIENTS)] = 1;
    }
    rc = async_run(loop, ASYNC_CALL(chat_main, &m, &w));
    if (rc) {
        *why = "the chat's main failed";
        return rc;
    }
    if (w.timeouts || w.failures) {
        *why = w.timeouts ? "a client that stayed timed out: a message was lost" : "a client that stayed failed";
        return ASYNC_EUSER;
    }
    if (w.disorder) {
        *why = "a message came twice or out of order";
        return ASYNC_EUSER;
    }
    for (b = 0; b < CLIENTS; b++)
        for (a = 0; a < CLIENTS; a++)
            if (a != b && !w.vanish[a] && !w.vanish[b] && w.got[b][a] != MESSAGES) {
                *why = "a client that stayed missed a message";
                return ASYNC_EUSER;
            }
    if (room || over_high) {
        *why = "the server's room is not empty at the end";
        return ASYNC_EUSER;
    }
    async_sim_note(loop, w.got, sizeof w.got);
    return 0;
}

const async_sim_scenario sim_chat_scenario = {"chat", chat_scenario, NULL, chat_options};
