/* Private to src/: the simulated world (backend_sim.c) as its parts see it. A simulated loop's backend is
 * a world in the process under the virtual clock: no real socket, file or thread. What happens in it is
 * a sequence of events in virtual time; every choice the semantics leave open (the order of events due
 * at the same moment, latencies, faults, when a call on a "thread" ends) is drawn from one generator
 * seeded once, so that a seed replays a run bit for bit.
 *
 *   backend_sim.c   the world: its generator, its events in time order, the clock, the requests (TIMER,
 *                   POLL on its descriptors, CALL), the hash of what happened
 *   sim_net.c       simulated TCP: listeners and connections between addresses, latency, bandwidth,
 *                   partial reads and writes, refusals, resets, stalls, partitions (async__sim_net)
 *   sim_fs.c        simulated files: a file system in memory with short reads and writes, EIO, ENOSPC
 *
 * The layers above reach the world's sockets and files through the calls of sim_net.h and sim_fs.h
 * when their loop is simulated (async__loop_sim), and the OS's otherwise. */
#ifndef ASYNC_SIM_H
#define ASYNC_SIM_H

#include "backend.h"

typedef struct async__sim async__sim;
typedef struct async__sim_event async__sim_event;

/** An event in the world's time: fn(sim, ev) runs when the clock reaches `at`. Events due at the same
 *  moment run in an order drawn from the generator when they were scheduled. Storage is the scheduler's
 *  (a field of the object the event is about): the schedule is intrusive (a pairing heap), so
 *  scheduling never allocates and never fails. Zero it first. */
struct async__sim_event {
    async_ms at;
    uint32_t order; /* the draw that orders events due together */
    async__sim_event *child, *next, *prev; /* the heap's links */
    void (*fn)(async__sim *sim, async__sim_event *ev);
    bool scheduled;
};

/** The world of a simulated loop, or NULL if loop is not simulated. */
async__sim *async__loop_sim(const async_loop *loop);
/** The loop a world belongs to. */
async_loop *async__sim_loop(const async__sim *sim);
/** The world's options (what async_sim_new was given, with defaults filled in; faults as set now). */
const async_sim_options *async__sim_options(const async__sim *sim);

/** The next draw of the world's generator (xoshiro256**, seeded by splitmix64 from the seed). */
uint64_t async__sim_rand(async__sim *sim);
/** A draw in [lo, hi] (lo if hi <= lo). */
uint64_t async__sim_range(async__sim *sim, uint64_t lo, uint64_t hi);
/** True with probability pct/100 (pct 0: never, without a draw; 100: always). */
bool async__sim_chance(async__sim *sim, unsigned pct);

/** Schedules ev (its fn set) at time `at` (not before now), or moves it if it is scheduled. */
void async__sim_at(async__sim *sim, async__sim_event *ev, async_ms at);
/** Takes ev out of the schedule (harmless if it is not in it). */
void async__sim_cancel(async__sim *sim, async__sim_event *ev);
/** True if ev is scheduled. */
static inline bool async__sim_scheduled(const async__sim_event *ev) { return ev->scheduled; }

/** Mixes what happened into the run's hash (async_sim_hash): a kind, a descriptor or number, and the
 *  bytes involved (data may be NULL). Every part calls it for each thing that happens in the world. */
void async__sim_note(async__sim *sim, unsigned kind, int64_t a, const void *data, size_t len);

/* ---- descriptors: the world's sockets (and other objects a POLL request can wait on) ---- */

/** A descriptor's readiness, asked by POLL requests: the ASYNC_IO_* bits ready now, or a negative code
 *  (ASYNC_EBADF: no such descriptor). */
typedef int (*async__sim_ready_fn)(async__sim *sim, int fd);

/** The POLL requests waiting on one descriptor, in the order they started (the backend's, opaque to the
 *  parts): a field of the part's object for the descriptor, zeroed with it, which the world links and
 *  unlinks. It lets a change of one descriptor cost what waits on that descriptor, not every wait of the
 *  world. The part keeps the object (and the field) until async__sim_fd_closed has emptied it. */
typedef struct async__sim_waiters {
    struct async__sim_wait *head, *tail;
} async__sim_waiters;

/** A new descriptor number of the world (its parts share one numbering, from 2^24 up, never reused:
 *  a stale number never reaches another object, and none is a real descriptor of the process). */
int async__sim_fd_new(async__sim *sim);
/** The first number async__sim_fd_new gives (2^24: Linux caps RLIMIT_NOFILE at fs.nr_open, 1,048,576 by
 *  default, so that a program that hands one to a real system call, a setsockopt of its own, gets EBADF
 *  instead of touching a real file). A part indexes its descriptors by fd - ASYNC__SIM_FD_BASE. */
#define ASYNC__SIM_FD_BASE (1 << 24)

/** Tells the world that fd's readiness may have changed: POLL requests on it whose bits are ready now
 *  complete, each as an event now. They are looked at in the order they started (so that the draws that
 *  order their completions among the events due now are taken in that order: the same every run); the
 *  order in which they then complete is the draws'. A part calls it whenever data arrives, room frees
 *  up, a connection completes, resets or closes. Its cost is the number of requests waiting on fd. */
void async__sim_fd_changed(async__sim *sim, int fd);
/** Fails every POLL request on fd with ASYNC_EBADF (the descriptor is being closed under them), in the
 *  same way. A part calls it while fd still finds its object (async__sim_net_waiters), then frees it. */
void async__sim_fd_closed(async__sim *sim, int fd);

/** The network part (sim_net.c): its state for a world, made at the world's start, freed at its end. */
void *async__sim_net_open(async__sim *sim, int *err);
void async__sim_net_close(async__sim *sim, void *net);
/** The network part's readiness of fd (see async__sim_ready_fn). */
int async__sim_net_ready(async__sim *sim, void *net, int fd);
/** The waits on fd, a descriptor of the network part, or NULL if it has no such descriptor. */
async__sim_waiters *async__sim_net_waiters(void *net, int fd);
/** The network part's sockets and listeners open now (the runner's census). */
unsigned async__sim_net_count(const void *net);
/** The network part's state of a world. */
void *async__sim_net(const async__sim *sim);

/** The file part (sim_fs.c): its state for a world, made at the world's start, freed at its end. */
void *async__sim_fs_open(async__sim *sim, int *err);
void async__sim_fs_close(async__sim *sim, void *fs);
/** The file part's files open now (the runner's census). */
unsigned async__sim_fs_count(const void *fs);
/** The file part's state of a world. */
void *async__sim_fs(const async__sim *sim);

/* ---- what happened, for the hash (async__sim_note's kind) ---- */
enum {
    ASYNC__SIM_NOTE_CLOCK = 1, /* time moved: a = the new time */
    ASYNC__SIM_NOTE_POLL,      /* a POLL request completed: a = fd, data = the result */
    ASYNC__SIM_NOTE_TIMER,     /* a TIMER request completed */
    ASYNC__SIM_NOTE_CALL,      /* a call on a simulated thread ran: a = its rc */
    ASYNC__SIM_NOTE_NET,       /* the network: its own kinds in the data */
    ASYNC__SIM_NOTE_FS,        /* the files: their own kinds in the data */
    ASYNC__SIM_NOTE_USER       /* async_sim_note */
};

#endif
