/* Soak: many tasks, in waves, with the resident memory measured; many sleepers cancelled at random.
 * `make test` runs them small (a few hundred thousand tasks); `make soak` runs them at full size with
 * ASYNC_SOAK=full: 10 million tasks, 100,000 concurrent sleepers. Tagged "slow": the bounded injection
 * run leaves them out (each fault point would be another run of hundreds of thousands of tasks). */
#include "test.h"
#include "util.h"

#include <unistd.h>

static int soak_full(void) {
    const char *e = getenv("ASYNC_SOAK");
    return e && strcmp(e, "full") == 0;
}

/* Resident set size in KiB. */
static long soak_rss_kib(void) {
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static uint32_t soak_rng = 12345;

/* ---- 10 million tasks in waves ---- */

static unsigned long soak_finally;

/* A task of the wave: sleeps 0..2 ms of virtual time (0: a yield), sometimes inside a try whose finally
 * counts, and returns its index. */
ASYNC_DEF(soak_task, uint32_t i;) {
    if (f->i % 4 == 0) {
        ASYNC_TRY(t) {
            AWAIT_SLEEP(t, (int32_t)(f->i % 3));
        }
        ASYNC_FINALLY(t) {
            soak_finally++;
        }
        ASYNC_END_TRY(t);
    } else {
        AWAIT_SLEEP(t, (int32_t)(f->i % 3));
    }
    ASYNC_RETURN(t, f->i);
} ASYNC_END_DEF

ASYNC_DEF(soak_waves, uint32_t wave_size, waves; soak_task_frame *frames; uint32_t wave, i; unsigned long sum;
          long rss_first, rss_last; async_group g;) {
    for (f->wave = 0; f->wave < f->waves; f->wave++) {
        /* fresh frames each wave, from the heap: what a server that starts tasks per request does */
        f->frames = calloc(f->wave_size, sizeof *f->frames);
        ASSERT(f->frames != NULL);
        for (f->i = 0; f->i < f->wave_size; f->i++) ASYNC_CALL(soak_task, &f->frames[f->i], f->i);
        AWAIT_GATHER_ARRAY(t, &f->g, &f->frames[0].task, f->wave_size, sizeof *f->frames);
        for (f->i = 0; f->i < f->wave_size; f->i++) f->sum += (unsigned long)async_task_value(&f->frames[f->i].task);
        free(f->frames);
        /* the baseline is taken after the second wave: the first one's frames are mmap'ed and given
         * back, which makes glibc raise its mmap threshold, so from the second wave on they come from
         * the heap and stay resident (measured: 2.9 MiB after wave 1, then 8.7 MiB from wave 2 to 100) */
        if (f->wave == 1) f->rss_first = soak_rss_kib();
        f->rss_last = soak_rss_kib();
    }
} ASYNC_END_DEF

TEST_TAGGED(soak_ten_million_tasks_in_waves_keep_rss_flat, TEST_SLOW) {
    async_loop *loop = async_loop_new(ASYNC_LOOP_VIRTUAL_CLOCK);
    static soak_waves_frame m;
    unsigned long total, expect;
    ASYNC_CALL(soak_waves, &m, 100000, soak_full() ? 100 : (getenv("ASYNC_TEST_VALGRIND") ? 3 : 5));
    total = (unsigned long)m.wave_size * m.waves;
    ASSERT(loop != NULL);
    ASSERT_EQ(async_run(loop, &m.task), 0);
    expect = (unsigned long)m.waves * ((unsigned long)m.wave_size * (m.wave_size - 1) / 2);
    ASSERT_EQ(m.sum, expect);
    ASSERT_EQ(soak_finally, total / 4);
    ASSERT_EQ(async_loop_timers(loop), 0);
    fprintf(stderr, "    soak: %lu tasks in %u waves, RSS %ld KiB after the second wave, %ld KiB after the last\n",
            total, m.waves, m.rss_first, m.rss_last);
    /* flat within 5%; not under ASan (its quarantine holds freed memory) nor valgrind */
#if !defined(__SANITIZE_ADDRESS__)
    if (!getenv("ASYNC_TEST_VALGRIND")) ASSERT(m.rss_last <= m.rss_first + m.rss_first / 20);
#endif
    async_loop_free(loop);
}

/* ---- 100,000 sleepers cancelled at random ---- */

static unsigned long soak_cleanups;

ASYNC_DEF(soak_sleeper, int32_t ms; int cleaned;) {
    ASYNC_TRY(t) {
        AWAIT_SLEEP(t, f->ms);
    }
    ASYNC_FINALLY(t) {
        f->cleaned++;
        soak_cleanups++;
    }
    ASYNC_END_TRY(t);
} ASYNC_END_DEF

ASYNC_DEF(soak_cancel, uint32_t n; soak_sleeper_frame *s; uint32_t *order; uint32_t i, cancelled, round;
          async_group g;) {
    uint32_t j, k, tmp;
    for (f->i = 0; f->i < f->n; f->i++) /* up to 100 s of virtual time */
        ASYNC_SPAWN(t, &f->g, ASYNC_CALL(soak_sleeper, &f->s[f->i], (int32_t)(1 + test_rand(&soak_rng) % 100000)));
    AWAIT_YIELD(t); /* all of them asleep now */
    ASSERT_EQ(async_loop_timers(async_task_loop(t)), f->n);
    for (j = f->n; j > 1; j--) { /* a random order to cancel them in */
        k = test_rand(&soak_rng) % j;
        tmp = f->order[j - 1];
        f->order[j - 1] = f->order[k];
        f->order[k] = tmp;
    }
    /* half of them cancelled in 100 rounds, while time goes on and others wake */
    for (f->round = 0; f->round < 100; f->round++) {
        for (f->i = f->round * (f->n / 200); f->i < (f->round + 1) * (f->n / 200); f->i++)
            if (async_cancel(&f->s[f->order[f->i]].task)) f->cancelled++;
        AWAIT_SLEEP(t, 500);
    }
    AWAIT_GROUP(t, &f->g);
} ASYNC_END_DEF

TEST_TAGGED(soak_a_hundred_thousand_sleepers_cancelled_at_random, TEST_SLOW) {
    async_loop *loop = async_loop_new(ASYNC_LOOP_VIRTUAL_CLOCK);
    static soak_cancel_frame m;
    uint32_t i, cancelled = 0, n = soak_full() ? 100000 : 10000;
    ASYNC_CALL(soak_cancel, &m, n, calloc(n, sizeof *m.s), calloc(n, sizeof *m.order));
    ASSERT(loop != NULL && m.s != NULL && m.order != NULL);
    for (i = 0; i < m.n; i++) m.order[i] = i;
    ASSERT_EQ(async_run(loop, &m.task), 0);
    for (i = 0; i < m.n; i++) {
        ASSERT(async_task_done(&m.s[i].task));
        ASSERT_EQ(m.s[i].cleaned, 1); /* every finally ran, exactly once */
        if (async_task_cancelled(&m.s[i].task)) cancelled++;
    }
    ASSERT_EQ(cancelled, m.cancelled);
    ASSERT(cancelled > m.n / 4); /* those not yet awake when their turn came */
    ASSERT_EQ(soak_cleanups, m.n);
    ASSERT_EQ(async_loop_timers(loop), 0);
    ASSERT(!async_loop_has_ready(loop));
    fprintf(stderr, "    soak: %u sleepers, %u cancelled, %u woke\n", m.n, cancelled, m.n - cancelled);
    free(m.s);
    free(m.order);
    async_loop_free(loop);
}
