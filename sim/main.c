/* sim: runs the simulated world's scenarios over seeds, and replays one.
 *
 *   sim [SCENARIO ...] [--seeds N] [--first S]   N seeds from S (default 1000 from 1), each scenario
 *   sim SCENARIO --seed S [--trace out.json]      one seed again, with its task timeline if asked
 *                                                  (Chrome trace JSON: Perfetto, chrome://tracing)
 *   sim --list
 *
 * Stops at a scenario's first failing seed and prints the command that replays it (--keep-going goes
 * on); exits 1 if any seed failed. Prints seeds per second and the world's events per second. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

static const async_sim_scenario *const scenarios[] = {
    &sim_chat_scenario,
    &sim_http_scenario,
    &sim_retry_scenario,
    &sim_pipeline_scenario,
};
#define NSCEN (sizeof scenarios / sizeof scenarios[0])

static int usage(void) {
    fprintf(stderr, "usage: sim [SCENARIO ...] [--seeds N] [--first S] [--keep-going]\n"
                    "       sim SCENARIO --seed S [--trace out.json]\n"
                    "       sim --list\n");
    return 2;
}

static const async_sim_scenario *find(const char *name) {
    size_t i;
    for (i = 0; i < NSCEN; i++)
        if (strcmp(scenarios[i]->name, name) == 0) return scenarios[i];
    return NULL;
}

int main(int argc, char **argv) {
    const async_sim_scenario *chosen[16];
    size_t nchosen = 0, i;
    async_sim_run_options o;
    int failed = 0, a;
    memset(&o, 0, sizeof o);
    o.first_seed = 1;
    o.seeds = 1000;
    o.check_determinism = true;
    {   /* the command that replays a seed: this program, as it was started (a printf format: a % in
         * its path is doubled) */
        static char replay[1024];
        size_t k = 0, j;
        replay[k++] = ' ';
        replay[k++] = ' ';
        for (j = 0; argv[0][j] && k < 800; j++) {
            if (argv[0][j] == '%') replay[k++] = '%';
            replay[k++] = argv[0][j];
        }
        snprintf(replay + k, sizeof replay - k, " %%s --seed %%llu");
        o.replay = replay;
    }
    for (a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--list") == 0) {
            for (i = 0; i < NSCEN; i++) printf("%s\n", scenarios[i]->name);
            return 0;
        } else if (strcmp(argv[a], "--seeds") == 0 && a + 1 < argc) {
            o.seeds = strtoull(argv[++a], NULL, 0);
        } else if (strcmp(argv[a], "--first") == 0 && a + 1 < argc) {
            o.first_seed = strtoull(argv[++a], NULL, 0);
        } else if (strcmp(argv[a], "--seed") == 0 && a + 1 < argc) {
            o.first_seed = strtoull(argv[++a], NULL, 0);
            o.seeds = 1;
        } else if (strcmp(argv[a], "--trace") == 0 && a + 1 < argc) {
            o.trace = argv[++a];
        } else if (strcmp(argv[a], "--keep-going") == 0) {
            o.keep_going = true;
        } else if (argv[a][0] == '-') {
            return usage();
        } else {
            const async_sim_scenario *s = find(argv[a]);
            if (!s) {
                fprintf(stderr, "sim: no scenario %s (sim --list)\n", argv[a]);
                return 2;
            }
            if (nchosen == sizeof chosen / sizeof chosen[0]) return usage();
            chosen[nchosen++] = s;
        }
    }
    if (!nchosen)
        for (i = 0; i < NSCEN; i++) chosen[nchosen++] = scenarios[i];
    for (i = 0; i < nchosen; i++) {
        async_sim_result r;
        int rc = async_sim_run(chosen[i], &o, &r);
        if (rc == ASYNC_EINVAL) return 2;
        printf("sim %-10s %llu seed(s) from %llu: %llu failed; %.0f seeds/s, %.0f events/s\n", chosen[i]->name,
               (unsigned long long)r.seeds_run, (unsigned long long)o.first_seed, (unsigned long long)r.failed,
               r.seconds > 0 ? (double)r.seeds_run / r.seconds : 0.0,
               r.seconds > 0 ? (double)r.events / r.seconds : 0.0);
        if (r.seeds_run == 1) printf("sim %-10s seed %llu: hash %016llx\n", chosen[i]->name,
                                     (unsigned long long)o.first_seed, (unsigned long long)r.last_hash);
        if (r.failed) failed = 1;
    }
    return failed;
}
