/* A producer/consumer pipeline through files, under file faults: the producer writes each record to a
 * file of its own and passes its number through a queue (maxsize 2); the consumer reads the file back,
 * has a call on a thread check it, and counts it. Writes and reads that fail (EIO, ENOSPC) are tried
 * again after a pause. Checks: every record arrives once, in order, with the bytes it was written with,
 * and every try ended. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define RECORDS 20

typedef struct pipe_state {
    int got[RECORDS];
    int next, bad, retries;
} pipe_state;

static void record_text(int n, char *out, size_t cap) {
    snprintf(out, cap, "record %d: %.*s\n", n, 10 + n * 7 % 40, "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMN");
}

/* The check on a thread: the record's bytes against what they must be. */
static int verify(void *arg, intptr_t *result) {
    const char *data = (const char *)arg;
    char want[96];
    int n = atoi(data + 7);
    record_text(n, want, sizeof want);
    *result = strcmp(data, want) == 0 ? n : -1;
    return 0;
}

ASYNC_DEF(producer, async_queue *queue; pipe_state *st; int i; char path[32]; char text[96];
          async_thread_call call; bool done;) {
    for (f->i = 0; f->i < RECORDS; f->i++) {
        snprintf(f->path, sizeof f->path, "rec/%d", f->i);
        record_text(f->i, f->text, sizeof f->text);
        for (f->done = false; !f->done;) {
            ASYNC_TRY(t) {
                AWAIT_FILE_WRITE_ALL(t, &f->call, f->path, f->text, strlen(f->text), 0644);
                f->done = true;
            } ASYNC_CATCH(t) {
                f->st->retries++;
            } ASYNC_END_TRY(t);
            if (!f->done) AWAIT_SLEEP(t, 10);
        }
        AWAIT_QUEUE_PUT(t, f->queue, f->i);
    }
    async_queue_shutdown(f->queue, false);
} ASYNC_END_DEF

ASYNC_DEF(consumer, async_queue *queue; pipe_state *st; intptr_t item; char path[32]; char *data; size_t len;
          async_thread_call read, check; bool done;) {
    ASYNC_TRY(t) {
        for (;;) {
            AWAIT_QUEUE_GET(t, f->queue, &f->item);
            snprintf(f->path, sizeof f->path, "rec/%d", (int)f->item);
            for (f->done = false; !f->done;) {
                ASYNC_TRY(t) {
                    AWAIT_FILE_READ_ALL(t, &f->read, f->path, &f->data, &f->len);
                    f->done = true;
                } ASYNC_CATCH(t) {
                    f->st->retries++;
                } ASYNC_END_TRY(t);
                if (!f->done) AWAIT_SLEEP(t, 10);
            }
            ASYNC_TRY(t) {
                AWAIT_TO_THREAD(t, &f->check, verify, f->data, NULL);
                if (async_thread_call_result(&f->check) != f->item || f->item != f->st->next)
                    f->st->bad++;
                else
                    f->st->got[f->item]++;
                f->st->next++;
            } ASYNC_FINALLY(t) {
                free(f->data);
                f->data = NULL;
            } ASYNC_END_TRY(t);
        }
    } ASYNC_EXCEPT(t, ASYNC_ESHUTDOWN) {
    } ASYNC_END_TRY(t);
} ASYNC_END_DEF

ASYNC_DEF(pipeline, pipe_state *st; async_queue queue; intptr_t slots[2]; producer_frame producer;
          consumer_frame consumer; async_group both;) {
    async_queue_init(&f->queue, ASYNC_QUEUE_FIFO, f->slots, NULL, 2);
    AWAIT_GATHER(t, &f->both, ASYNC_CALL(producer, &f->producer, &f->queue, f->st),
                 ASYNC_CALL(consumer, &f->consumer, &f->queue, f->st));
} ASYNC_END_DEF

static void pipeline_options(async_sim_options *o, uint64_t seed, void *arg) {
    (void)seed;
    (void)arg;
    o->file_short_pct = 20;
    o->file_error_pct = 10;
    o->call_delay_max_ms = 20;
}

static int pipeline_scenario(async_loop *loop, void *arg, const char **why) {
    static pipe_state st;
    static pipeline_frame m;
    int rc, i;
    (void)arg;
    memset(&st, 0, sizeof st);
    memset(&m, 0, sizeof m);
    rc = async_run(loop, ASYNC_CALL(pipeline, &m, &st));
    if (rc) {
        *why = "the pipeline failed";
        return rc;
    }
    for (i = 0; i < RECORDS; i++)
        if (st.got[i] != 1) {
            *why = "a record was lost or came twice";
            return ASYNC_EUSER;
        }
    if (st.bad) {
        *why = "a record came out of order or with other bytes";
        return ASYNC_EUSER;
    }
    async_sim_note(loop, &st.retries, sizeof st.retries);
    return 0;
}

const async_sim_scenario sim_pipeline_scenario = {"pipeline", pipeline_scenario, NULL, pipeline_options};
