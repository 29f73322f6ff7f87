/* async/sim.h: the simulated world of the hosted runtime. A simulated loop runs the same code as a real
 * one (streams, servers, the HTTP client and server, files, to_thread) against counterparts in the
 * process, under the virtual clock: no real socket, file or thread. The network has per-connection
 * latency and bandwidth, partial reads and writes, refused connections, resets, stalls and partitions;
 * files have short reads and writes, EIO and ENOSPC; calls on threads end after delays and in an order
 * of the world's choosing. Every such choice, and the order of events due at the same moment, comes
 * from one generator seeded once: the same seed gives the same run, byte for byte, and a failure found
 * with a seed is replayed from it.
 *
 * PROVIDED BY libasync.a, as async/runtime.h; async.h includes it on hosted builds. */
#ifndef ASYNC_SIM_H_INCLUDED
#define ASYNC_SIM_H_INCLUDED

#include "async/runtime.h"

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/** How a simulated world behaves. Start from async_sim_defaults (or zero it: no latency, unlimited
 *  bandwidth, no faults). Percentages are 0..100; a field out of range makes async_sim_new fail. */
typedef struct async_sim_options {
    uint64_t seed;              /**< decides every choice of the run: the same seed, the same run */
    uint32_t latency_min_ms;    /**< one-way latency of a connection, drawn per connection in [min, max] */
    uint32_t latency_max_ms;
    uint32_t bandwidth;         /**< bytes per ms each way on a connection; 0: unlimited */
    uint32_t window;            /**< bytes a direction holds (in flight and unread) before a send would
                                 *   block; 0: 65,536 */
    unsigned partial_pct;       /**< sends and receives cut short at a length drawn at random */
    unsigned refuse_pct;        /**< connects refused (ASYNC_ECONNREFUSED) though a server listens */
    unsigned reset_pct;         /**< sends after which the connection is reset (ASYNC_ECONNRESET on both
                                 *   ends; what was in flight is lost) */
    unsigned stall_pct;         /**< deliveries held back by a stall of up to stall_max_ms */
    uint32_t stall_max_ms;
    unsigned file_short_pct;    /**< file reads and writes cut short (the layer above goes on) */
    unsigned file_error_pct;    /**< file calls that fail: EIO, and ENOSPC for half the writes */
    uint32_t call_delay_max_ms; /**< a call on a simulated thread ends after a delay in [0, max] ms */
} async_sim_options;

/** Lively but fault-free options for seed: latency 1..20 ms, 10,000 bytes per ms, a 64 KiB window,
 *  calls on threads ending within 5 ms, no faults. */
ASYNC_API async_sim_options async_sim_defaults(uint64_t seed);

/** A new simulated loop (async_loop_free frees it; async_loop_backend_name says "sim"). o NULL: the
 *  defaults with the seed of the environment's ASYNC_SIM_SEED, else 1. NULL if out of memory or an
 *  option is out of range. async_loop_new and async_main make one too when the environment has
 *  ASYNC_SIM=seed, so that a program runs in the simulated world unchanged. Addresses in the world are
 *  IP literals and "localhost" (a name the world does not know is ASYNC_ENXIO); a server listens on
 *  host:port of the world, and a connect reaches it there. Signals never come. */
ASYNC_API async_loop *async_sim_new(const async_sim_options *o);
/** True if loop is simulated. */
ASYNC_API bool async_loop_simulated(const async_loop *loop);
/** The seed of a simulated loop (0 for another loop). */
ASYNC_API uint64_t async_sim_seed(const async_loop *loop);
/** A hash of everything that happened in the world so far: each event, its time, and the bytes that
 *  moved. Two runs of one program with one seed have the same hash; 0 for a loop that is not simulated. */
ASYNC_API uint64_t async_sim_hash(const async_loop *loop);
/** How many events the world has run. */
ASYNC_API uint64_t async_sim_events(const async_loop *loop);
/** A draw in [0, n) from the world's generator (n 0: any 64-bit value), for a scenario's own choices,
 *  so that they too follow the seed. 0 for a loop that is not simulated. */
ASYNC_API uint64_t async_sim_random(async_loop *loop, uint64_t n);
/** Mixes a scenario's own observation into the run's hash. */
ASYNC_API void async_sim_note(async_loop *loop, const void *data, size_t len);
/** Changes the latency, bandwidth and faults from now on (o's seed is ignored): a scenario's calm and
 *  storm. The faults and the window apply at once; a connection keeps the latency and bandwidth it drew
 *  when it was made (the new ones are for connections made after). 0, ASYNC_EINVAL (NULL, not
 *  simulated, out of range). */
ASYNC_API int async_sim_set_faults(async_loop *loop, const async_sim_options *o);
/** Cuts host (an IP literal or "localhost") off the world's network (cut true) or heals it: while cut,
 *  nothing is delivered to or from it (bytes wait, as TCP retransmits them) and connects to it get no
 *  answer. 0, ASYNC_EINVAL. */
ASYNC_API int async_sim_partition(async_loop *loop, const char *host, bool cut);
/** Puts a file of len bytes at path in the world's file system (made, or replaced). 0, ASYNC_EINVAL,
 *  ASYNC_ENOMEM. */
ASYNC_API int async_sim_file_put(async_loop *loop, const char *path, const void *data, size_t len);
/** Copies up to cap bytes of the world's file at path into buf: its whole length (which may exceed cap),
 *  or ASYNC_ENOENT, ASYNC_EINVAL. */
ASYNC_API long async_sim_file_get(async_loop *loop, const char *path, void *buf, size_t cap);

/** What a simulated loop still holds: the runner's census after a run (all 0 when everything ended). */
typedef struct async_sim_census {
    unsigned ready;   /**< 1 if tasks are ready to run */
    unsigned timers;  /**< timers set (sleepers, deadlines) */
    unsigned events;  /**< events of the world still to come (deliveries, calls on threads, ...) */
    unsigned polls;   /**< tasks' waits on the world's descriptors */
    unsigned sockets; /**< sockets and listeners of the world still open */
    unsigned files;   /**< files of the world still open */
} async_sim_census;

/** Fills *out with what loop holds now. 0, ASYNC_EINVAL (NULL, or loop not simulated). */
ASYNC_API int async_sim_census_of(async_loop *loop, async_sim_census *out);

/** A scenario for the runner of seeds: run builds its program on the simulated loop it is given (made
 *  with options(seed), or async_sim_defaults), runs it, and returns 0 when its own checks hold, else a
 *  code (an ASYNC_E* or its own) with a message in *why (static, or alive until the next run). */
typedef struct async_sim_scenario {
    const char *name;
    int (*run)(async_loop *loop, void *arg, const char **why);
    void *arg;
    void (*options)(async_sim_options *o, uint64_t seed, void *arg); /**< NULL: the defaults */
} async_sim_scenario;

/** How async_sim_run goes over seeds. Zero-initialise. */
typedef struct async_sim_run_options {
    uint64_t first_seed;     /**< the first seed */
    uint64_t seeds;          /**< how many seeds, from first_seed on (0: 1) */
    bool keep_going;         /**< go on after a failing seed (by default the run stops at the first) */
    bool check_determinism;  /**< run the first seed twice and fail if the hashes differ */
    const char *replay;      /**< printf format of the command that replays a failure, given the
                              *   scenario's name (%s) and the seed (%llu); NULL: none printed */
    FILE *out;               /**< where failures are printed (NULL: stderr) */
    const char *trace;       /**< a path: each seed's run writes its task timeline there (Chrome trace
                              *   JSON, async_loop_trace_start), the last seed's stays: for a replay */
} async_sim_run_options;

/** What async_sim_run saw. */
typedef struct async_sim_result {
    uint64_t seeds_run, failed, first_failed_seed;
    uint64_t events;         /**< the world's events, all seeds together */
    uint64_t last_hash;      /**< async_sim_hash at the end of the last seed run */
    double seconds;          /**< wall time */
} async_sim_result;

/** Runs scenario s over seeds: for each, a new simulated loop, s->run, then what is left run until
 *  nothing can happen, and the census: every task that ran has ended, nothing ready, no timer, no event
 *  to come, no wait on a descriptor, no socket or file of the world open, no block of the loop's
 *  allocator kept. Each failing seed is printed with why, and with the replay command. 0 if every seed
 *  passed, ASYNC_EIO if one failed, ASYNC_EINVAL (s, its name or its run NULL). */
ASYNC_API int async_sim_run(const async_sim_scenario *s, const async_sim_run_options *o, async_sim_result *res);

#ifdef __cplusplus
}
#endif

#endif
