/* Seed 002, "Using Async Libraries" (asynchronous database operations with a web framework): a small
 * JSON API of items over SQLite, and a page that uses it. Each query runs on the loop's thread pool
 * (asyncio.to_thread), so a slow disk stalls no other request; SQLite reads and writes the JSON itself
 * (json_valid, json_extract, json_object: escapes and all), so the C code parses no JSON by hand.
 *
 *   GET    /                  the page
 *   GET    /api/items         [{"id":1,"title":"milk","done":false}, ...]
 *   POST   /api/items         {"title": "milk"} (and "done": true or false) -> 201, the item, Location
 *   GET    /api/items/{id}    the item
 *   PUT    /api/items/{id}    {"title": ..., "done": ...}, either or both -> the item
 *   DELETE /api/items/{id}    204
 *
 * Errors are {"error":"..."}: 400 for a body that is not the JSON asked for, 404 for an id that names
 * no item, 500 for a database error. The server answers an unknown path (404), another method (405,
 * with Allow) and a body over 64 KiB (413) itself, in plain text.
 *
 *   json_api [--db FILE] [--port N] [--seconds S]     prints the port (0, the default: a free one); the
 *   database is FILE (made if need be) or, by default, in memory; stops on SIGTERM, Ctrl-C or after S s */
#define _POSIX_C_SOURCE 200809L /* strdup */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "async.h"

/* One connection, used by one pool thread at a time: a query is several calls (prepare, bind, step,
 * errmsg, last_insert_rowid) that must see no other query's work in between, so each query holds
 * db_lock from its first call to its last. SQLite's own per-call mutex would add nothing: the
 * connection is opened with SQLITE_OPEN_NOMUTEX. */
static sqlite3 *db;
static pthread_mutex_t db_lock = PTHREAD_MUTEX_INITIALIZER;

enum { LIST, CREATE, READ, UPDATE, DELETE };

#define ITEM_AS_JSON "json_object('id', id, 'title', title, 'done', json(iif(done, 'true', 'false')))"

static const char *const sql[] = {
    "SELECT json_group_array(" ITEM_AS_JSON ") FROM (SELECT * FROM items ORDER BY id)",
    "INSERT INTO items (title, done) VALUES (json_extract(?2, '$.title'), coalesce(json_extract(?2, '$.done'), 0))"
    " RETURNING " ITEM_AS_JSON,
    "SELECT " ITEM_AS_JSON " FROM items WHERE id = ?1",
    "UPDATE items SET title = coalesce(json_extract(?2, '$.title'), title),"
    " done = coalesce(json_extract(?2, '$.done'), done) WHERE id = ?1 RETURNING " ITEM_AS_JSON,
    "DELETE FROM items WHERE id = ?1 RETURNING id",
};

/* What is wrong with a body (?2) for POST (?3 = 1: a title is required) or PUT, or NULL. */
static const char check_sql[] =
    "SELECT CASE WHEN NOT json_valid(?2) THEN 'the body is not JSON'"
    " WHEN json_type(?2) <> 'object' THEN 'the body is not a JSON object'"
    " WHEN json_type(?2, '$.title') IS NOT 'text' AND (?3 OR json_type(?2, '$.title') IS NOT NULL)"
    "  THEN 'title must be a string'"
    " WHEN json_type(?2, '$.done') NOT IN ('true', 'false') THEN 'done must be true or false' END";

/* One request's query: what the pool thread needs, copied out of the request (the handler may be
 * cancelled, its request gone, while the thread still runs), and the answer it leaves. */
typedef struct query {
    int op;
    sqlite3_int64 id;
    char *body;    /* POST and PUT: the request's body, NUL-terminated */
    int status;    /* the answer: its status (0 until decided), */
    char *json;    /* its body (NULL: none), */
    char location[48]; /* and for 201 the new item's path */
} query;

static void query_free(query *q) {
    if (!q) return;
    free(q->body);
    free(q->json);
    free(q);
}

/* The to_thread dtor: a query whose handler was cancelled (the client went away) ends here. */
static void query_drop(intptr_t result, void *arg) {
    (void)result;
    query_free(arg);
}

/* {"error":"msg"} with msg escaped for JSON (quote, backslash and control characters). */
static char *json_error(const char *msg) {
    size_t i, k, n = strlen(msg);
    char *out = malloc(n * 6 + 16);
    if (!out) return NULL;
    k = (size_t)sprintf(out, "{\"error\":\"");
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)msg[i];
        if (c == '"' || c == '\\') out[k++] = '\\';
        if (c < 0x20) k += (size_t)sprintf(out + k, "\\u%04x", c);
        else out[k++] = (char)c;
    }
    strcpy(out + k, "\"}");
    return out;
}

static void answer(query *q, int status, char *json) {
    q->status = status;
    q->json = json;
}

/* Runs one prepared statement with the query's id (?1), body (?2) and whether a title is required (?3);
 * the text of its first row's first column (malloc'ed) into *out, NULL if no row or a NULL there. */
static int run_sql(query *q, const char *text, char **out) {
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, text, -1, &st, NULL), n;
    *out = NULL;
    if (rc != SQLITE_OK) return rc;
    n = sqlite3_bind_parameter_count(st);
    if (n >= 1) sqlite3_bind_int64(st, 1, q->id);
    if (n >= 2) sqlite3_bind_text(st, 2, q->body, -1, SQLITE_STATIC);
    if (n >= 3) sqlite3_bind_int(st, 3, q->op == CREATE);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) { /* to the end: that is when a write commits */
        const char *v = (const char *)sqlite3_column_text(st, 0);
        if (!*out && v && !(*out = strdup(v))) break;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? SQLITE_NOMEM : rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* The pool thread's work: checks the body, runs the query, fills in the answer. */
static int run_query(void *arg, intptr_t *result) {
    query *q = arg;
    char *row = NULL, *problem = NULL, what[48];
    int rc = SQLITE_OK;
    (void)result;
    pthread_mutex_lock(&db_lock);
    if (q->body) rc = run_sql(q, check_sql, &problem);
    if (rc == SQLITE_OK && !problem) rc = run_sql(q, sql[q->op], &row);
    snprintf(what, sizeof what, "no item %lld", (long long)q->id);
    if (rc != SQLITE_OK) {
        answer(q, 500, json_error(sqlite3_errmsg(db)));
    } else if (problem) {
        answer(q, 400, json_error(problem));
    } else if (!row) {
        answer(q, 404, json_error(what));
    } else if (q->op == DELETE) {
        answer(q, 204, NULL);
    } else {
        answer(q, q->op == CREATE ? 201 : 200, row);
        row = NULL;
        if (q->op == CREATE)
            snprintf(q->location, sizeof q->location, "/api/items/%lld", (long long)sqlite3_last_insert_rowid(db));
    }
    pthread_mutex_unlock(&db_lock);
    free(problem);
    free(row);
    return q->status != 204 && !q->json ? ASYNC_ENOMEM : 0; /* raised at the await: the server answers 500 */
}

/* Whether text is a item's id (a positive decimal number), into *id. */
static bool parse_id(const char *text, sqlite3_int64 *id) {
    char *end;
    errno = 0;
    *id = strtoll(text, &end, 10);
    return *text >= '0' && *text <= '9' && !*end && !errno && *id > 0;
}

/* A query for the request, with its answer already there when the id or the body cannot be one (the
 * thread is not needed then); NULL if out of memory. */
static query *query_new(int op, const async_http_request *req) {
    const char *id = async_http_request_param(req, "id");
    bool with_body = op == CREATE || op == UPDATE;
    char *msg;
    query *q = calloc(1, sizeof *q);
    if (!q) return NULL;
    q->op = op;
    if (id && !parse_id(id, &q->id)) { /* no item has it; the message says which */
        if ((msg = malloc(strlen(id) + 16)) != NULL) sprintf(msg, "no item %s", id);
        answer(q, 404, msg ? json_error(msg) : NULL);
        free(msg);
    } else if (with_body && memchr(req->body, '\0', req->body_len)) {
        answer(q, 400, json_error("the body is not JSON"));
    } else if (with_body && !(q->body = strdup(req->body))) {
        answer(q, 500, NULL);
    }
    if (q->status && !q->json) { /* out of memory */
        query_free(q);
        return NULL;
    }
    return q;
}

/* Sends an answer: a Content-Length and the bytes, copied into the connection's buffer (so the query
 * can be freed as the handler ends). */
static int send_answer(async_http_response *res, const query *q) {
    char length[24];
    int rc;
    res->status = q->status;
    if (!q->json) return 0;
    res->content_type = "application/json";
    snprintf(length, sizeof length, "%lu", (unsigned long)strlen(q->json));
    rc = async_http_response_header(res, "Content-Length", length);
    if (!rc && q->location[0]) rc = async_http_response_header(res, "Location", q->location);
    return rc ? rc : async_http_response_write(res, q->json, strlen(q->json));
}

/* await item(request, op): the request's query on the pool thread, then its answer. */
ASYNC_DEF(item, async_http_request *req; async_http_response *res; int op; query *q; async_thread_call call;) {
    ASYNC_TRY(t) {
        f->q = query_new(f->op, f->req);
        if (!f->q) ASYNC_THROW_ERROR(t, async_error_of(ASYNC_ENOMEM));
        if (!f->q->status) {
            ASYNC_TRY(t) {
                AWAIT_TO_THREAD(t, &f->call, run_query, f->q, query_drop);
            } ASYNC_EXCEPT(t, ASYNC_ECANCELED) {
                /* this is the handler's first await: a cancellation reaches it only once the call is on
                 * the pool, which then owns the query and frees it with query_drop */
                f->q = NULL;
                ASYNC_RERAISE(t);
            } ASYNC_END_TRY(t);
        }
        if (send_answer(f->res, f->q)) ASYNC_THROW_ERROR(t, async_error_of(ASYNC_ENOMEM));
    } ASYNC_FINALLY(t) {
        query_free(f->q);
    } ASYNC_END_TRY(t);
} ASYNC_END_DEF

ASYNC_HTTP_DEF(list_items, item_frame q;) { AWAIT_CALL(t, item, &f->q, f->req, f->res, LIST); } ASYNC_END_DEF
ASYNC_HTTP_DEF(create_item, item_frame q;) { AWAIT_CALL(t, item, &f->q, f->req, f->res, CREATE); } ASYNC_END_DEF
ASYNC_HTTP_DEF(read_item, item_frame q;) { AWAIT_CALL(t, item, &f->q, f->req, f->res, READ); } ASYNC_END_DEF
ASYNC_HTTP_DEF(update_item, item_frame q;) { AWAIT_CALL(t, item, &f->q, f->req, f->res, UPDATE); } ASYNC_END_DEF
ASYNC_HTTP_DEF(delete_item, item_frame q;) { AWAIT_CALL(t, item, &f->q, f->req, f->res, DELETE); } ASYNC_END_DEF

static const char page_html[] =
    "<!doctype html>\n<meta charset=utf-8>\n<title>items</title>\n"
    "<style>body{font:16px sans-serif;max-width:30em;margin:2em auto} li{list-style:none;margin:.3em 0}"
    " .done span{text-decoration:line-through;color:#888} button{margin-left:.5em}</style>\n"
    "<h1>items</h1>\n<form id=add><input id=title placeholder='what to do' autofocus> <button>add</button></form>\n"
    "<ul id=list></ul>\n<p id=error></p>\n"
    "<script>\n"
    "const $ = id => document.getElementById(id);\n"
    "async function api(method, path, body) {\n"
    "  const r = await fetch(path, {method, body: body && JSON.stringify(body)});\n"
    "  const data = r.status === 204 ? null : await r.json();\n"
    "  $('error').textContent = r.ok ? '' : data.error;\n"
    "  return data;\n"
    "}\n"
    "async function show() {\n"
    "  $('list').replaceChildren(...(await api('GET', '/api/items')).map(item => {\n"
    "    const li = document.createElement('li'), box = document.createElement('input');\n"
    "    const text = document.createElement('span'), del = document.createElement('button');\n"
    "    box.type = 'checkbox'; box.checked = item.done; li.className = item.done ? 'done' : '';\n"
    "    box.onchange = () => api('PUT', '/api/items/' + item.id, {done: box.checked}).then(show);\n"
    "    text.textContent = item.title; del.textContent = 'delete';\n"
    "    del.onclick = () => api('DELETE', '/api/items/' + item.id).then(show);\n"
    "    li.append(box, text, del);\n"
    "    return li;\n"
    "  }));\n"
    "}\n"
    "$('add').onsubmit = async e => {\n"
    "  e.preventDefault();\n"
    "  if (await api('POST', '/api/items', {title: $('title').value})) $('title').value = '';\n"
    "  show();\n"
    "};\n"
    "show();\n"
    "</script>\n";

ASYNC_HTTP_DEF(page) {
    f->res->content_type = "text/html; charset=utf-8";
    f->res->body = page_html;
    f->res->body_len = sizeof page_html - 1;
} ASYNC_END_DEF

static const async_http_route routes[] = {
    ASYNC_HTTP_ROUTE("GET", "/", page),
    ASYNC_HTTP_ROUTE("GET", "/api/items", list_items),
    ASYNC_HTTP_ROUTE("POST", "/api/items", create_item),
    ASYNC_HTTP_ROUTE("GET", "/api/items/{id}", read_item),
    ASYNC_HTTP_ROUTE("PUT", "/api/items/{id}", update_item),
    ASYNC_HTTP_ROUTE("DELETE", "/api/items/{id}", delete_item),
    ASYNC_HTTP_ROUTES_END};

/* Serves until SIGTERM (a service manager's stop) or for `seconds`, then lets the requests in flight end. */
ASYNC_DEF(serve, int port, seconds; const char *path; async_http_server http; async_group g; async_deadline limit;
          async_sigwait term;) {
    async_http_limits limits = {0};
    int rc;
    limits.max_body = 64 * 1024;
    rc = async_http_server_listen(&f->http, "127.0.0.1", f->port, 0, &limits, routes, NULL);
    if (rc) ASYNC_THROW_ERROR(t, async_error_of(rc));
    printf("Items in %s, on http://127.0.0.1:%d/\n", f->path, async_http_server_port(&f->http));
    fflush(stdout);
    ASYNC_SPAWN(t, &f->g, async_http_server_serve(&f->http));
    ASYNC_TRY(t) {
        ASYNC_TIMEOUT(t, &f->limit, f->seconds > 0 ? f->seconds * 1000 : -1) {
            AWAIT_SIGNAL(t, &f->term, SIGTERM);
        } ASYNC_END_TIMEOUT(t, &f->limit);
    } ASYNC_EXCEPT(t, ASYNC_ETIMEDOUT) {
    } ASYNC_END_TRY(t);
    async_http_server_close(&f->http, 1000);
    AWAIT_GROUP(t, &f->g);
} ASYNC_END_DEF

int main(int argc, char **argv) {
    static serve_frame m;
    const char *path = ":memory:";
    int i, port = 0, seconds = 0, rc;
    for (i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--db") == 0) path = argv[i + 1];
        else if (strcmp(argv[i], "--port") == 0) port = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--seconds") == 0) seconds = atoi(argv[i + 1]);
        else break;
    }
    if (i < argc || port < 0 || port > 65535 || seconds < 0 || seconds > 86400 * 365) {
        fprintf(stderr, "usage: %s [--db FILE] [--port N] [--seconds S]\n", argv[0]);
        return 2;
    }
    /* opened before the loop starts: nothing else would run meanwhile. AUTOINCREMENT: an id is never
     * given again, so a client holding a deleted item's id cannot reach a newer one */
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
        sqlite3_exec(db, "CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT NOT NULL,"
                         " done INTEGER NOT NULL DEFAULT 0)", NULL, NULL, NULL) != SQLITE_OK) {
        fprintf(stderr, "json_api: %s: %s\n", path, db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return 1;
    }
    rc = async_main(ASYNC_CALL(serve, &m, port, seconds, path));
    sqlite3_close(db);
    return async_main_exit(rc);
}
