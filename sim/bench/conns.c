/* sim-bench: the simulated world's speed with many connections at once. N clients connect to an echo
 * server of the world together, each sends one line, reads it back and closes; every client's waits are
 * in the world at the same time, so the cost of telling the waits on one descriptor that it changed is
 * what this measures (it must not grow with the number of connections).
 *
 *   sim-bench [N ...]     default: 100 1000 3000
 *
 * Prints, for each N, the world's events, the wall time, the events per second and the run's hash (the
 * same before and after a change that must not change what happens). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "async.h"

ASYNC_DEF(bench_echo, async_stream *s; const char *line; size_t len;) {
    AWAIT_STREAM_READLINE(t, f->s, &f->line, &f->len, 64, -1);
    if (f->len) {
        async_stream_write(f->s, f->line, f->len);
        AWAIT_STREAM_DRAIN(t, f->s, -1);
    }
} ASYNC_END_DEF

static async_task *bench_echo_new(void *frame, async_stream *s, void *arg) {
    (void)arg;
    return ASYNC_CALL(bench_echo, (bench_echo_frame *)frame, s);
}

ASYNC_DEF(bench_client, int port; int *ok; async_stream c; const char *line; size_t len;) {
    AWAIT_STREAM_CONNECT(t, &f->c, "127.0.0.1", f->port, -1);
    async_stream_write(&f->c, "ping\n", 5);
    AWAIT_STREAM_READLINE(t, &f->c, &f->line, &f->len, 64, -1);
    if (f->len == 5) (*f->ok)++;
    async_stream_close(&f->c);
} ASYNC_END_DEF

ASYNC_DEF(bench_main, int n; bench_client_frame *clients; int ok; async_server srv; async_group g, cg; int i;) {
    int rc = async_server_listen(&f->srv, "127.0.0.1", 0, f->n + 16, sizeof(bench_echo_frame), bench_echo_new, NULL);
    if (rc) ASYNC_THROW_ERROR(t, async_error_of(rc));
    ASYNC_SPAWN(t, &f->g, async_server_serve(&f->srv));
    for (f->i = 0; f->i < f->n; f->i++)
        ASYNC_SPAWN(t, &f->cg, ASYNC_CALL(bench_client, &f->clients[f->i], async_server_port(&f->srv), &f->ok));
    AWAIT_GROUP(t, &f->cg);
    async_server_close(&f->srv, 1000);
    AWAIT_GROUP(t, &f->g);
} ASYNC_END_DEF

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int bench(int n) {
    async_sim_options o = async_sim_defaults(1);
    bench_main_frame *m = (bench_main_frame *)calloc(1, sizeof *m);
    bench_client_frame *clients = (bench_client_frame *)calloc((size_t)n, sizeof *clients);
    async_loop *loop = async_sim_new(&o);
    double t0, dt;
    int rc;
    if (!m || !clients || !loop) {
        fprintf(stderr, "sim-bench: out of memory\n");
        free(m);
        free(clients);
        async_loop_free(loop);
        return 1;
    }
    t0 = now_s();
    rc = async_run(loop, ASYNC_CALL(bench_main, m, n, clients));
    dt = now_s() - t0;
    printf("sim-bench %5d connections: %s, %d echoed, %llu events in %.3f s: %.0f events/s (hash %016llx)\n", n,
           rc ? async_strerror(rc) : "ok", m->ok, (unsigned long long)async_sim_events(loop), dt,
           dt > 0 ? (double)async_sim_events(loop) / dt : 0.0, (unsigned long long)async_sim_hash(loop));
    rc = rc || m->ok != n;
    async_loop_free(loop);
    free(clients);
    free(m);
    return rc;
}

int main(int argc, char **argv) {
    static const int sizes[] = {100, 1000, 3000};
    int i, failed = 0;
    if (argc > 1)
        for (i = 1; i < argc; i++) failed |= bench(atoi(argv[i]));
    else
        for (i = 0; i < 3; i++) failed |= bench(sizes[i]);
    return failed;
}
