/* Name resolution for AWAIT_STREAM_CONNECT without blocking the loop: getaddrinfo runs on a short-lived
 * thread of its own, and an ev_async brings the answer back to the loop's thread.
 *
 * The job is shared by two owners, the thread and the waiting stream, and freed by whichever lets go
 * last (a count under the job's mutex). A connect that is cancelled or times out lets go at once: the
 * lookup finishes on its thread and its answer is dropped; nothing ever kills a thread. */
#include "net.h"

#include <ev.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

typedef struct resolve_job {
    pthread_mutex_t mu;
    int refs;       /* the thread and the stream */
    bool abandoned; /* the stream no longer waits */
    int gai;        /* getaddrinfo's result */
    struct addrinfo *res;
    char host[256];
    char port[8];
    struct ev_loop *ev;
    ev_async wake; /* answer ready (sent by the thread) */
    ev_timer timer; /* the connect's deadline */
    async_future *done;
} resolve_job;

static void job_release(resolve_job *j) {
    int refs;
    pthread_mutex_lock(&j->mu);
    refs = --j->refs;
    pthread_mutex_unlock(&j->mu);
    if (refs) return;
    if (j->res) freeaddrinfo(j->res);
    pthread_mutex_destroy(&j->mu);
    free(j);
}

static void *resolve_thread(void *arg) {
    resolve_job *j = (resolve_job *)arg;
    struct addrinfo hints, *res = NULL;
    int gai;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    gai = getaddrinfo(j->host, j->port, &hints, &res);
    pthread_mutex_lock(&j->mu);
    j->gai = gai;
    j->res = res;
    if (!j->abandoned) ev_async_send(j->ev, &j->wake); /* under the lock: the stream cannot let go meanwhile */
    pthread_mutex_unlock(&j->mu);
    job_release(j);
    return NULL;
}

static void stop_job(resolve_job *j) {
    ev_async_stop(j->ev, &j->wake);
    ev_timer_stop(j->ev, &j->timer);
}

static void wake_cb(struct ev_loop *ev, ev_async *w, int revents) {
    resolve_job *j = (resolve_job *)(void *)((char *)w - offsetof(resolve_job, wake));
    (void)revents;
    ev_timer_stop(ev, &j->timer); /* the ev_async stays active until the stream lets go: see net_io.c */
    async_future_set_value(j->done, 1);
}

static void timer_cb(struct ev_loop *ev, ev_timer *w, int revents) {
    resolve_job *j = (resolve_job *)(void *)((char *)w - offsetof(resolve_job, timer));
    (void)ev;
    (void)revents;
    async_future_set_error(j->done, async_error_of(ASYNC_ETIMEDOUT));
}

/* The stream lets go of its job (answer used, cancelled, or timed out). Called only while it has one:
 * NS_RESOLVING and op_buf are set and cleared together. */
void net__resolve_abandon(async_stream *s) {
    resolve_job *j = (resolve_job *)s->op_buf;
    stop_job(j);
    pthread_mutex_lock(&j->mu);
    j->abandoned = true;
    pthread_mutex_unlock(&j->mu);
    s->op_buf = NULL;
    s->flags &= ~NS_RESOLVING;
    job_release(j);
}

int net__resolve_start(async_task *t, async_stream *s) {
    async_loop *loop = async_task_loop(t);
    struct ev_loop *ev = net__ev_of(loop);
    resolve_job *j;
    pthread_t th;
    pthread_attr_t attr;
    int rc;
    if (!ev) return net__raise(t, ASYNC_ENOTSUP);
    if (strlen(s->op_host) >= sizeof j->host) return net__raise(t, ASYNC_EINVAL);
    j = (resolve_job *)calloc(1, sizeof *j);
    if (!j) return net__raise(t, ASYNC_ENOMEM);
    if (pthread_mutex_init(&j->mu, NULL)) {
        free(j);
        return net__raise(t, ASYNC_ENOMEM);
    }
    strcpy(j->host, s->op_host);
    snprintf(j->port, sizeof j->port, "%d", s->op_port);
    j->refs = 2;
    j->ev = ev;
    j->done = &s->wio.ready;
    async_future_init(j->done);
    ev_async_init(&j->wake, wake_cb);
    ev_async_start(ev, &j->wake);
    ev_timer_init(&j->timer, timer_cb, s->wms >= 0 ? s->wms / 1000.0 : 0., 0.);
    if (s->wms >= 0) ev_timer_start(ev, &j->timer);
    s->op_buf = j;
    s->flags |= NS_RESOLVING;
    rc = pthread_attr_init(&attr);
    if (!rc) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 256 * 1024);
        rc = pthread_create(&th, &attr, resolve_thread, j);
        pthread_attr_destroy(&attr);
    }
    if (rc) {
        job_release(j); /* the thread's share */
        net__resolve_abandon(s);
        return net__raise(t, rc == EAGAIN ? ASYNC_EAGAIN : ASYNC_ENOMEM);
    }
    rc = async__future_start(t, j->done);
    if (rc != ASYNC__WAIT) net__resolve_abandon(s);
    return rc;
}

/* After the resolution wait: GO with the socket connecting (NS_CONNECTING) or connected, or a raise. */
int net__resolve_check(async_task *t, async_stream *s) {
    resolve_job *j = (resolve_job *)s->op_buf;
    struct addrinfo *ai;
    int rc = async__future_check(t, j->done), last = ASYNC_ENXIO;
    if (rc == ASYNC__WAIT) return rc;
    if (rc == ASYNC__RAISE) {
        net__resolve_abandon(s);
        return rc;
    }
    pthread_mutex_lock(&j->mu); /* the thread wrote under it */
    pthread_mutex_unlock(&j->mu);
    if (j->gai) {
        static const async_error unknown = {ASYNC_ENXIO, "host name not resolved"};
        net__resolve_abandon(s);
        async__raise(t, &unknown);
        return ASYNC__RAISE;
    }
    for (ai = j->res; ai; ai = ai->ai_next) { /* the first address that does not fail at once */
        last = net__connect_addr(s, ai->ai_addr, (unsigned)ai->ai_addrlen);
        if (last == 0 || last == ASYNC_EINPROGRESS) break;
    }
    net__resolve_abandon(s);
    if (last == 0 || last == ASYNC_EINPROGRESS) return ASYNC__GO;
    return net__raise(t, last);
}
