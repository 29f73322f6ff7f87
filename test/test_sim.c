/* The simulated world's core: a simulated loop runs timers as the virtual clock does, its generator and
 * its hash follow the seed alone, its options are checked, and a program on it ends or reports its
 * deadlock as on any loop. The network, files and calls on threads in the world have tests of their
 * own (test_sim_net.c, test_sim_fs.c). */
#include "test.h"
#include "util.h"

static async_loop *sim_loop(uint64_t seed) {
    async_sim_options o = async_sim_defaults(seed);
    async_loop *loop = async_sim_new(&o);
    ASSERT(loop != NULL);
    return loop;
}

TEST(sim_loop_runs_sleepers_in_virtual_time) {
    async_loop *loop = sim_loop(7);
    static worker_frame w[3];
    trace[0] = '\0';
    ASSERT_STR_EQ(async_loop_backend_name(loop), "sim");
    ASSERT(async_loop_simulated(loop));
    ASSERT(async_loop_virtual(loop));
    ASSERT_EQ(async_sim_seed(loop), 7);
    async_spawn(loop, worker(&w[0], "a", 3000, 1));
    async_spawn(loop, worker(&w[1], "b", 2000, 2));
    ASSERT_EQ(async_run(loop, worker(&w[2], "c", 1000, 3)), 0);
    ASSERT_EQ(async_loop_now(loop), 1000);
    drain(loop);
    ASSERT_STR_EQ(trace, "a+ b+ c+ c- b- a- ");
    async_loop_free(loop);
}

TEST(sim_random_follows_the_seed_alone) {
    async_loop *a = sim_loop(42), *b = sim_loop(42), *c = sim_loop(43);
    uint64_t x[8], y[8];
    int i, same_c = 0;
    for (i = 0; i < 8; i++) {
        x[i] = async_sim_random(a, 0);
        y[i] = async_sim_random(b, 0);
        if (async_sim_random(c, 0) == x[i]) same_c++;
    }
    for (i = 0; i < 8; i++) ASSERT(x[i] == y[i]);
    ASSERT_EQ(same_c, 0);
    for (i = 0; i < 1000; i++) ASSERT(async_sim_random(a, 6) < 6);
    ASSERT(async_sim_random(NULL, 6) == 0);
    async_loop_free(a);
    async_loop_free(b);
    async_loop_free(c);
}

TEST(sim_hash_follows_what_happened) {
    async_loop *a = sim_loop(1), *b = sim_loop(1);
    static worker_frame wa, wb;
    ASSERT(async_sim_hash(a) == async_sim_hash(b));
    ASSERT_EQ(async_run(a, worker(&wa, "a", 10, 0)), 0);
    ASSERT_EQ(async_run(b, worker(&wb, "b", 10, 0)), 0);
    ASSERT(async_sim_hash(a) == async_sim_hash(b)); /* the same times: the same hash */
    async_sim_note(a, "x", 1);
    ASSERT(async_sim_hash(a) != async_sim_hash(b));
    async_sim_note(b, "x", 1);
    ASSERT(async_sim_hash(a) == async_sim_hash(b));
    ASSERT(async_sim_hash(NULL) == 0);
    async_loop_free(a);
    async_loop_free(b);
}

TEST(sim_options_out_of_range_are_refused) {
    async_sim_options o = async_sim_defaults(1);
    async_loop *loop;
    o.partial_pct = 101;
    ASSERT(async_sim_new(&o) == NULL);
    o = async_sim_defaults(1);
    o.latency_min_ms = 30;
    o.latency_max_ms = 20;
    ASSERT(async_sim_new(&o) == NULL);
    loop = sim_loop(1);
    o = async_sim_defaults(1);
    o.reset_pct = 200;
    ASSERT_EQ(async_sim_set_faults(loop, &o), ASYNC_EINVAL);
    ASSERT_EQ(async_sim_set_faults(loop, NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_sim_set_faults(NULL, &o), ASYNC_EINVAL);
    o.reset_pct = 5;
    ASSERT_EQ(async_sim_set_faults(loop, &o), 0);
    async_loop_free(loop);
    /* another loop is no world */
    loop = new_hosted_loop();
    ASSERT(!async_loop_simulated(loop));
    ASSERT(async_sim_seed(loop) == 0 && async_sim_hash(loop) == 0 && async_sim_random(loop, 0) == 0);
    ASSERT_EQ(async_sim_set_faults(loop, &o), ASYNC_EINVAL);
    async_loop_free(loop);
    ASSERT(!async_loop_simulated(NULL));
}

ASYNC_DEF(sim_waits_forever, async_future never;) {
    async_future_init(&f->never);
    AWAIT_FUTURE(t, &f->never);
} ASYNC_END_DEF

TEST(sim_loop_with_nothing_to_happen_reports_the_deadlock) {
    async_loop *loop = sim_loop(3);
    static sim_waits_forever_frame w;
    ASSERT_EQ(async_run(loop, ASYNC_CALL(sim_waits_forever, &w)), ASYNC_EDEADLK);
    async_loop_free(loop);
}

TEST(sim_environment_makes_async_loop_new_simulated) {
    async_loop *loop;
    ASSERT_EQ(setenv("ASYNC_SIM", "99", 1), 0);
    loop = async_loop_new(0);
    unsetenv("ASYNC_SIM");
    ASSERT(loop != NULL);
    ASSERT(async_loop_simulated(loop));
    ASSERT_EQ(async_sim_seed(loop), 99);
    async_loop_free(loop);
}

/* ---- the runner of seeds ---- */

ASYNC_DEF(sim_run_stuck_alpha, async_future never;) {
    async_future_init(&f->never);
    AWAIT_FUTURE(t, &f->never);
} ASYNC_END_DEF

ASYNC_DEF(sim_run_stuck_zeta, async_future never;) {
    async_future_init(&f->never);
    AWAIT_FUTURE(t, &f->never);
} ASYNC_END_DEF

/* A scenario whose odd seeds leave tasks that never end (six of the later kind by name, spawned first,
 * and two of the earlier), and whose even seeds end cleanly. */
static int sim_run_scenario(async_loop *loop, void *arg, const char **why) {
    static sim_run_stuck_zeta_frame z[6];
    static sim_run_stuck_alpha_frame a[2];
    static worker_frame w;
    int i;
    (void)arg;
    (void)why;
    if (async_sim_seed(loop) % 2) {
        memset(z, 0, sizeof z);
        memset(a, 0, sizeof a);
        for (i = 0; i < 6; i++) async_spawn(loop, ASYNC_CALL(sim_run_stuck_zeta, &z[i]));
        for (i = 0; i < 2; i++) async_spawn(loop, ASYNC_CALL(sim_run_stuck_alpha, &a[i]));
    }
    memset(&w, 0, sizeof w);
    trace[0] = '\0';
    return async_run(loop, worker(&w, "w", 10, 0));
}

/* What async_sim_run printed for scenario s over seeds from first. */
static int sim_run_text(const async_sim_scenario *s, uint64_t first, uint64_t seeds, bool keep_going, char *out,
                        size_t cap, async_sim_result *r) {
    async_sim_run_options o;
    FILE *f = tmpfile();
    size_t n;
    int rc;
    ASSERT(f != NULL);
    memset(&o, 0, sizeof o);
    o.first_seed = first;
    o.seeds = seeds;
    o.keep_going = keep_going;
    o.check_determinism = true;
    o.replay = "replay %s %llu";
    o.out = f;
    rc = async_sim_run(s, &o, r);
    rewind(f);
    n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    fclose(f);
    return rc;
}

TEST(sim_run_reports_tasks_that_never_ended_the_same_way_each_time) {
    static const async_sim_scenario s = {"stuck", sim_run_scenario, NULL, NULL};
    static char text[2048], again[2048];
    async_sim_result r;
    ASSERT_EQ(sim_run_text(&s, 2, 1, false, text, sizeof text, &r), 0); /* an even seed: clean */
    ASSERT_EQ(r.seeds_run, 1);
    ASSERT_EQ(r.failed, 0);
    ASSERT_STR_EQ(text, "");
    ASSERT_EQ(sim_run_text(&s, 1, 4, true, text, sizeof text, &r), ASYNC_EIO);
    ASSERT_EQ(r.seeds_run, 4);
    ASSERT_EQ(r.failed, 2);
    ASSERT_EQ(r.first_failed_seed, 1);
    ASSERT(strstr(text, "sim stuck: seed 1 FAILED: 8 task(s) never ended:") != NULL);
    ASSERT(strstr(text, "replay stuck 1\n") != NULL && strstr(text, "replay stuck 3\n") != NULL);
    ASSERT(strstr(text, "seed 2") == NULL);
    /* the three shown are the first by their text: the two alpha tasks, then a zeta, whatever their
     * addresses (the set of tasks is ordered by them) */
    ASSERT(strstr(text, "never ended: sim_run_stuck_alpha_run (") != NULL);
    ASSERT(strstr(strstr(text, "sim_run_stuck_alpha_run (") + 1, "sim_run_stuck_alpha_run (") != NULL);
    ASSERT(strstr(text, "sim_run_stuck_zeta_run (") != NULL);
    ASSERT_EQ(sim_run_text(&s, 1, 4, true, again, sizeof again, &r), ASYNC_EIO);
    ASSERT_STR_EQ(again, text);
    ASSERT_EQ(async_sim_run(NULL, NULL, NULL), ASYNC_EINVAL);
}

/* Options a scenario asks for that are out of range: each seed fails with that said, nothing runs. */
static void sim_bad_options(async_sim_options *o, uint64_t seed, void *arg) {
    (void)seed;
    (void)arg;
    o->partial_pct = 101;
}

static int sim_never_run(async_loop *loop, void *arg, const char **why) {
    (void)loop;
    (void)why;
    *(int *)arg = 1;
    return 0;
}

TEST(sim_run_and_census_refuse_what_is_not_theirs) {
    static int ran;
    const async_sim_scenario bad = {"bad", sim_never_run, &ran, sim_bad_options};
    const async_sim_scenario unnamed = {NULL, sim_never_run, &ran, NULL};
    async_sim_run_options o;
    async_sim_result r;
    async_sim_census c;
    async_loop *loop;
    FILE *out = tmpfile();
    ASSERT(out != NULL);
    memset(&o, 0, sizeof o);
    o.out = out;
    o.seeds = 3;
    ran = 0;
    ASSERT_EQ(async_sim_run(&bad, &o, &r), ASYNC_EIO);
    ASSERT_EQ(ran, 0);
    ASSERT_EQ(r.failed, 1); /* it stops at the first failing seed */
    ASSERT_EQ(async_sim_run(&unnamed, &o, &r), ASYNC_EINVAL);
    fclose(out);
    /* the census: only of a simulated loop, into somewhere */
    ASSERT_EQ(async_sim_census_of(NULL, &c), ASYNC_EINVAL);
    loop = new_hosted_loop();
    ASSERT_EQ(async_sim_census_of(loop, &c), ASYNC_EINVAL);
    ASSERT(async_sim_events(loop) == 0);
    async_sim_note(loop, "x", 1); /* nothing to note into: ignored */
    async_loop_free(loop);
    loop = async_sim_new(NULL);
    ASSERT(loop != NULL);
    ASSERT_EQ(async_sim_census_of(loop, NULL), ASYNC_EINVAL);
    ASSERT_EQ(async_sim_census_of(loop, &c), 0);
    ASSERT(c.ready == 0 && c.timers == 0 && c.events == 0 && c.polls == 0 && c.sockets == 0 && c.files == 0);
    async_loop_free(loop);
}
