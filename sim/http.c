/* An HTTP key-value store in the world, and four clients making 100 requests through one session, over
 * connections that reset and a server cut off by a partition for two seconds, then healed. Each PUT
 * handler records the write with a call on a (simulated) thread, the store's "backend". Clients retry a
 * request that failed (every request is idempotent). Checks: every request was answered in the end,
 * every key holds the last value written, and the store's version counts every write the handlers made.
 *
 * Built with -DSIM_PLANTED_RACE=1 (make sim-planted) the PUT handler has a planted race on a rare path
 * (a PUT of key 0 while the version is 5 modulo 16): it reads the version before its backend call and
 * writes it back after, so another PUT whose call ends meanwhile loses its increment. About one seed in
 * twenty meets it; the runner must find one and replay it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#ifndef SIM_PLANTED_RACE
#define SIM_PLANTED_RACE 0
#endif

#define KEYS 10
#define CLIENTS 4
#define REQUESTS 25 /* per client: 100 in all */
#define SERVER_HOST "10.0.0.1"
#define SERVER_PORT 8080

typedef struct store {
    char values[KEYS][32];
    long version; /* one per write the handlers made */
    long writes;
    int answered, retries, wrong;
} store;

static int backend_write(void *arg, intptr_t *result) {
    (void)arg;
    *result = 0;
    return 0;
}

ASYNC_HTTP_DEF(put_value, store *st; long v; int key; async_thread_call call;) {
    f->st = (store *)f->req->arg;
    f->key = atoi(async_http_request_param(f->req, "key"));
    if (f->key < 0 || f->key >= KEYS || f->req->body_len >= sizeof f->st->values[0]) {
        async_http_response_text(f->res, 400, "bad key or value");
        ASYNC_RETURN(t, 0);
    }
    memcpy(f->st->values[f->key], f->req->body, f->req->body_len + 1);
    if (SIM_PLANTED_RACE && f->key == 0 && f->st->version % 16 == 5) { /* planted: read, await, write back */
        f->v = f->st->version;
        AWAIT_TO_THREAD(t, &f->call, backend_write, NULL, NULL);
        f->st->version = f->v + 1;
    } else {
        AWAIT_TO_THREAD(t, &f->call, backend_write, NULL, NULL);
        f->st->version++;
    }
    f->st->writes++;
    async_http_response_text(f->res, 200, "ok");
} ASYNC_END_DEF

ASYNC_HTTP_DEF(get_value, store *st; int key;) {
    f->st = (store *)f->req->arg;
    f->key = atoi(async_http_request_param(f->req, "key"));
    if (f->key < 0 || f->key >= KEYS) {
        async_http_response_text(f->res, 404, "no such key");
        ASYNC_RETURN(t, 0);
    }
    async_http_response_text(f->res, 200, f->st->values[f->key]);
} ASYNC_END_DEF

static const async_http_route routes[] = {ASYNC_HTTP_ROUTE("PUT", "/kv/{key}", put_value),
                                          ASYNC_HTTP_ROUTE("GET", "/kv/{key}", get_value), ASYNC_HTTP_ROUTES_END};

/* One client: REQUESTS requests, each PUT of its own keys then a GET that must read it back; a failed
 * request is tried again after a pause. */
ASYNC_DEF(kv_client, store *st; async_http_session *session; int me, i, tries; char url[64], value[32];
          async_http_call call; bool done, put;) {
    for (f->i = 0; f->i < REQUESTS; f->i++) {
        int key = (f->me + CLIENTS * (f->i / 2)) % KEYS;
        f->put = f->i % 2 == 0;
        snprintf(f->url, sizeof f->url, "http://%s:%d/kv/%d", SERVER_HOST, SERVER_PORT, key);
        snprintf(f->value, sizeof f->value, "c%d-r%d", f->me, f->i - (f->put ? 0 : 1));
        for (f->done = false, f->tries = 0; !f->done; f->tries++) {
            if (f->tries == 50) ASYNC_THROW(t, ASYNC_EIO, "a request failed 50 times");
            memset(&f->call, 0, sizeof f->call);
            f->call.method = f->put ? "PUT" : "GET";
            f->call.url = f->url;
            if (f->put) {
                f->call.body = f->value;
                f->call.body_len = strlen(f->value);
            }
            ASYNC_TRY(t) {
                AWAIT_HTTP_REQUEST(t, f->session, &f->call);
                if (async_http_call_status(&f->call) == 200) {
                    f->done = true;
                    if (!f->put) {
                        size_t len;
                        const char *body = async_http_call_body(&f->call, &len);
                        /* keys are shared between clients: the GET reads this client's value or a later one */
                        if (len == 0 || body[0] != 'c') f->st->wrong++;
                    }
                }
            } ASYNC_CATCH(t) {
                f->st->retries++;
            } ASYNC_FINALLY(t) {
                async_http_call_close(&f->call);
            } ASYNC_END_TRY(t);
            if (!f->done) AWAIT_SLEEP(t, 100);
        }
        f->st->answered++;
    }
} ASYNC_END_DEF

/* Cuts the server off for two seconds at a random moment, then heals it. */
ASYNC_DEF(partitioner, int at;) {
    AWAIT_SLEEP(t, f->at);
    async_sim_partition(async_task_loop(t), SERVER_HOST, true);
    AWAIT_SLEEP(t, 2000);
    async_sim_partition(async_task_loop(t), SERVER_HOST, false);
} ASYNC_END_DEF

ASYNC_DEF(kv_main, store *st; async_http_server http; async_http_session session; async_group serving, clients;
          kv_client_frame c[CLIENTS]; partitioner_frame p; int i;) {
    async_http_session_opts o;
    int rc = async_http_server_listen(&f->http, SERVER_HOST, SERVER_PORT, 0, NULL, routes, f->st);
    if (rc) ASYNC_THROW_ERROR(t, async_error_of(rc));
    memset(&o, 0, sizeof o);
    o.timeout_ms = 1000;
    o.max_per_host = 4;
    rc = async_http_session_init(&f->session, &o);
    if (rc) {
        async_http_server_close(&f->http, 0);
        ASYNC_THROW_ERROR(t, async_error_of(rc));
    }
    ASYNC_SPAWN(t, &f->serving, async_http_server_serve(&f->http));
    ASYNC_TRY(t) {
        ASYNC_SPAWN(t, &f->clients, ASYNC_CALL(partitioner, &f->p, (int)async_sim_random(async_task_loop(t), 3000)));
        for (f->i = 0; f->i < CLIENTS; f->i++)
            ASYNC_SPAWN(t, &f->clients, ASYNC_CALL(kv_client, &f->c[f->i], f->st, &f->session, f->i));
        AWAIT_GROUP(t, &f->clients);
    } ASYNC_FINALLY(t) {
        async_http_session_close(&f->session);
        async_http_server_close(&f->http, 1000);
    } ASYNC_END_TRY(t);
    AWAIT_GROUP(t, &f->serving);
} ASYNC_END_DEF

static void kv_options(async_sim_options *o, uint64_t seed, void *arg) {
    (void)seed;
    (void)arg;
    o->latency_min_ms = 1;
    o->latency_max_ms = 30;
    o->partial_pct = 20;
    o->reset_pct = 3;
    o->call_delay_max_ms = 30;
}

static int kv_scenario(async_loop *loop, void *arg, const char **why) {
    static store st;
    static kv_main_frame m;
    int rc;
    (void)arg;
    memset(&st, 0, sizeof st);
    memset(&m, 0, sizeof m);
    rc = async_run(loop, ASYNC_CALL(kv_main, &m, &st));
    if (rc) {
        *why = "the store's main failed";
        return rc;
    }
    if (st.answered != CLIENTS * REQUESTS) {
        *why = "a request was never answered";
        return ASYNC_EUSER;
    }
    if (st.wrong) {
        *why = "a GET read a value no one wrote";
        return ASYNC_EUSER;
    }
    if (st.version != st.writes) {
        *why = "the store's version lost a write (two PUTs raced)";
        return ASYNC_EUSER;
    }
    async_sim_note(loop, st.values, sizeof st.values);
    return 0;
}

const async_sim_scenario sim_http_scenario = {"http", kv_scenario, NULL, kv_options};
