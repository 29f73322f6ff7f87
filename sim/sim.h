/* The scenarios that `make sim` runs over many seeds in the simulated world (async/sim.h), one file
 * each; sim/main.c is the command that runs them and replays a failing seed. */
#ifndef SIM_SCENARIOS_H
#define SIM_SCENARIOS_H

#include "async.h"

/** Every scenario, in the order `make sim` runs them. */
extern const async_sim_scenario sim_chat_scenario;
extern const async_sim_scenario sim_http_scenario;
extern const async_sim_scenario sim_retry_scenario;
extern const async_sim_scenario sim_pipeline_scenario;

#endif
