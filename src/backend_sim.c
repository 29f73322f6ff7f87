/* The simulated world: a backend (backend.h) whose outside is in the process. Time is the virtual clock;
 * what happens is a heap of events in time order; the network (sim_net.c) and the files (sim_fs.c) are
 * parts of the world that schedule events of their own. Each choice the semantics leave open is a draw
 * from one generator seeded once (xoshiro256**): the order of events due at the same moment (each event
 * takes a draw when it is scheduled, and the heap orders by time, then by that draw), when a call on a
 * simulated thread ends, and the parts' latencies and faults. Nothing else varies: no real time, no
 * thread, no address is read, so a seed replays its run, and the hash of what happened
 * (async_sim_hash) shows that it did.
 *
 * The world's wait: if tasks are ready, it runs the events due now and returns; otherwise it moves the
 * clock to the earlier of the next event and the next timer, and runs the events due then. When the
 * next event and the next timer are due at the same moment, a draw says which goes first (the timers'
 * tasks run before the events, or after them). With neither
 * left, nothing can ever happen again: it says so, and async_run reports the deadlock as on any loop.
 *
 * Requests: TIMER (an event at its deadline), POLL (on the world's descriptors: completes at once, as an
 * event now, when the part that owns the descriptor says it is ready, or at its deadline; while it waits
 * it is in a list the descriptor's object keeps, so that a change costs the waits on that descriptor
 * alone, however many connections the world holds), CALL (a call
 * on a simulated thread: an event after a delay drawn in [0, call_delay_max_ms]). Signals never come in
 * the world: a SIGNAL request is taken and never completes, and does not keep the loop alive. */
#define _POSIX_C_SOURCE 200809L
#include "sim.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* A request's state in its backend bytes. */
typedef struct async__sim_wait {
    async__sim_event done;                /* its completion; a POLL's is at its deadline until it is ready */
    struct async__sim_wait *prev, *next;  /* POLL: in its descriptor's waits (async__sim_waiters) */
    async__sim_waiters *list;             /* POLL: that list while it waits, else NULL */
    int result;                           /* the completion's result */
} sim_req;

typedef char sim_req_fits[sizeof(sim_req) <= ASYNC__REQ_BACKEND_BYTES ? 1 : -1];

struct async__sim {
    async_loop *loop;
    async_sim_options o;
    uint64_t s[4];           /* the generator */
    async__sim_event *root; /* the schedule: a pairing heap by (at, order) */
    size_t n;               /* events in it */
    unsigned polls;          /* POLL requests waiting for readiness (each in its descriptor's list) */
    uint64_t hash, events;
    int posted; /* another thread posted a call (sim_wake): read and written with atomics where we have them */
    int next_fd;
    void *net, *fs;
};

static sim_req *sreq(async__req *r) { return (sim_req *)(void *)r->be.bytes; }
static async__req *req_of(sim_req *x) { return (async__req *)(void *)((char *)x - offsetof(async__req, be)); }
static async__sim *sim_of(const async_loop *loop) { return (async__sim *)async__loop_backend_state(loop); }

async__sim *async__loop_sim(const async_loop *loop) { return async__loop_is_sim(loop) ? sim_of(loop) : NULL; }
async_loop *async__sim_loop(const async__sim *sim) { return sim->loop; }
const async_sim_options *async__sim_options(const async__sim *sim) { return &sim->o; }
void *async__sim_net(const async__sim *sim) { return sim->net; }
void *async__sim_fs(const async__sim *sim) { return sim->fs; }

/* ---- the generator: xoshiro256** (Blackman and Vigna), its state filled by splitmix64 ---- */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t async__sim_rand(async__sim *sim) {
    uint64_t *s = sim->s, result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t async__sim_range(async__sim *sim, uint64_t lo, uint64_t hi) {
    uint64_t span;
    if (hi <= lo) return lo;
    span = hi - lo + 1;
    return span == 0 ? async__sim_rand(sim) : lo + async__sim_rand(sim) % span; /* bias: at most span/2^64 */
}

bool async__sim_chance(async__sim *sim, unsigned pct) {
    if (pct == 0) return false;
    if (pct >= 100) return true;
    return async__sim_rand(sim) % 100 < pct;
}

/* ---- what happened: a hash over every note ----
 * Eight bytes at a time (the bytes that move are hashed too, so this is on the path of every delivery):
 * each word, read little-endian whatever the host, is xored in, multiplied by an odd constant and folded
 * (the multiply-xorshift step of splitmix64/wyhash), so that a run's hash is the same on every host. */

static uint64_t fold(uint64_t h, uint64_t w) {
    h = (h ^ w) * 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 29);
}

static uint64_t le64(const unsigned char *p, size_t n) {
    uint64_t w = 0;
    size_t i;
    for (i = 0; i < n; i++) w |= (uint64_t)p[i] << (8 * i);
    return w;
}

static void mix(async__sim *sim, const void *data, size_t len) {
    const unsigned char *p = (const unsigned char *)data;
    uint64_t h = sim->hash;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) h = fold(h, le64(p + i, 8));
    if (i < len) h = fold(h, le64(p + i, len - i) ^ ((uint64_t)(len - i) << 56));
    sim->hash = h;
}

void async__sim_note(async__sim *sim, unsigned kind, int64_t a, const void *data, size_t len) {
    uint64_t h = sim->hash;
    /* the kind, a, the time and the length, as numbers (not the host's layout of them) */
    h = fold(h, (uint64_t)kind | (uint64_t)sim->loop->now << 32);
    h = fold(h, (uint64_t)a);
    sim->hash = fold(h, (uint64_t)len);
    if (data && len) mix(sim, data, len);
}

/* ---- the schedule: a pairing heap by (at, order), intrusive ---- */

static bool before(const async__sim_event *a, const async__sim_event *b) {
    int32_t d = (int32_t)(a->at - b->at); /* the clock wraps: compare by difference, as the core does */
    return d < 0 || (d == 0 && a->order < b->order);
}

/* Melds two heaps (roots without siblings): the later root becomes the first child of the earlier. */
static async__sim_event *meld(async__sim_event *a, async__sim_event *b) {
    async__sim_event *t;
    if (!a) return b;
    if (!b) return a;
    if (before(b, a)) {
        t = a;
        a = b;
        b = t;
    }
    b->prev = a;
    b->next = a->child;
    if (a->child) a->child->prev = b;
    a->child = b;
    return a;
}

/* The two-pass merge of a list of siblings into one heap: pairs left to right, then the pairs melded
 * right to left (iteratively: no recursion however many events are due). */
static async__sim_event *merge_pairs(async__sim_event *first) {
    async__sim_event *pairs = NULL, *root = NULL;
    while (first) {
        async__sim_event *a = first, *b = a->next;
        first = b ? b->next : NULL;
        a->next = a->prev = NULL;
        if (b) b->next = b->prev = NULL;
        a = meld(a, b);
        a->next = pairs; /* a stack of the melded pairs, the last one on top */
        pairs = a;
    }
    while (pairs) {
        async__sim_event *next = pairs->next;
        pairs->next = NULL;
        root = meld(root, pairs);
        pairs = next;
    }
    if (root) root->prev = NULL;
    return root;
}

void async__sim_cancel(async__sim *sim, async__sim_event *ev) {
    if (!ev->scheduled) return;
    ev->scheduled = false;
    sim->n--;
    if (ev == sim->root) {
        sim->root = merge_pairs(ev->child);
    } else { /* out of its parent's list of children, then its own children back into the heap */
        if (ev->prev->child == ev)
            ev->prev->child = ev->next;
        else
            ev->prev->next = ev->next;
        if (ev->next) ev->next->prev = ev->prev;
        sim->root = meld(sim->root, merge_pairs(ev->child));
    }
    ev->child = ev->next = ev->prev = NULL;
}

void async__sim_at(async__sim *sim, async__sim_event *ev, async_ms at) {
    async_ms now = async_loop_now(sim->loop);
    if ((int32_t)(at - now) < 0) at = now;
    async__sim_cancel(sim, ev);
    ev->at = at;
    ev->order = (uint32_t)(async__sim_rand(sim) >> 32);
    ev->child = ev->next = ev->prev = NULL;
    ev->scheduled = true;
    sim->n++;
    sim->root = meld(sim->root, ev);
}

/* Runs the events due now (at <= the clock), in order; those they schedule for now run too. */
static void run_due(async__sim *sim) {
    async_ms now = async_loop_now(sim->loop);
    while (sim->root && (int32_t)(sim->root->at - now) <= 0) {
        async__sim_event *ev = sim->root;
        async__sim_cancel(sim, ev);
        sim->events++;
        ev->fn(sim, ev);
    }
}

static void advance(async__sim *sim, async_ms ms) {
    if (!ms) return;
    async_loop_advance(sim->loop, ms);
    async__sim_note(sim, ASYNC__SIM_NOTE_CLOCK, (int64_t)async_loop_now(sim->loop), NULL, 0);
}

/* ---- requests ---- */

/* A POLL's wait is in the list of its descriptor's object (async__sim_waiters, which the part that owns
 * the descriptor keeps), in the order started: a change of one descriptor looks at its own waits only. */
static void poll_unlink(async__sim *sim, sim_req *x) {
    async__sim_waiters *w = x->list;
    if (!w) return;
    if (x->prev)
        x->prev->next = x->next;
    else
        w->head = x->next;
    if (x->next)
        x->next->prev = x->prev;
    else
        w->tail = x->prev;
    x->prev = x->next = NULL;
    x->list = NULL;
    sim->polls--;
}

static void poll_link(async__sim *sim, sim_req *x, async__sim_waiters *w) {
    x->next = NULL;
    x->prev = w->tail;
    if (w->tail)
        w->tail->next = x;
    else
        w->head = x;
    w->tail = x;
    x->list = w;
    sim->polls++;
}

static void done_fn(async__sim *sim, async__sim_event *ev) {
    sim_req *x = (sim_req *)(void *)((char *)ev - offsetof(sim_req, done));
    async__req *r = req_of(x);
    unsigned char res[4];
    int i;
    poll_unlink(sim, x);
    for (i = 0; i < 4; i++) res[i] = (unsigned char)((unsigned)x->result >> (8 * i));
    async__sim_note(sim, r->kind == ASYNC__REQ_POLL ? ASYNC__SIM_NOTE_POLL
                         : r->kind == ASYNC__REQ_CALL ? ASYNC__SIM_NOTE_CALL : ASYNC__SIM_NOTE_TIMER,
                    r->fd, res, sizeof res);
    r->cb(r, x->result);
}

/* Completes x with result as an event now (never inside the caller: a completion runs on its own turn). */
static void complete_now(async__sim *sim, sim_req *x, int result) {
    poll_unlink(sim, x);
    x->result = result;
    async__sim_at(sim, &x->done, async_loop_now(sim->loop));
}

static int ready_of(async__sim *sim, int fd) { return sim->net ? async__sim_net_ready(sim, sim->net, fd) : ASYNC_EBADF; }
static async__sim_waiters *waiters_of(async__sim *sim, int fd) { return sim->net ? async__sim_net_waiters(sim->net, fd) : NULL; }

int async__sim_fd_new(async__sim *sim) {
    if (sim->next_fd < ASYNC__SIM_FD_BASE) sim->next_fd = ASYNC__SIM_FD_BASE;
    return sim->next_fd++;
}

/* Completing a wait schedules an event and changes no descriptor: the readiness read once holds for
 * every wait of the list. */
void async__sim_fd_changed(async__sim *sim, int fd) {
    async__sim_waiters *w = waiters_of(sim, fd);
    sim_req *x, *next;
    int ready;
    if (!w || !w->head) return;
    ready = ready_of(sim, fd);
    for (x = w->head; x; x = next) {
        unsigned events = req_of(x)->events;
        next = x->next;
        if (ready < 0)
            complete_now(sim, x, ready);
        else if ((unsigned)ready & events)
            complete_now(sim, x, (int)((unsigned)ready & events));
    }
}

void async__sim_fd_closed(async__sim *sim, int fd) {
    async__sim_waiters *w = waiters_of(sim, fd);
    while (w && w->head) complete_now(sim, w->head, ASYNC_EBADF);
}

static void sim_stop(void *state, async__req *r) {
    async__sim *sim = (async__sim *)state;
    sim_req *x = sreq(r);
    if (r->kind == ASYNC__REQ_SIGNAL) return;
    async__sim_cancel(sim, &x->done);
    poll_unlink(sim, x);
}

static int sim_start(void *state, async__req *r, int64_t ms) {
    async__sim *sim = (async__sim *)state;
    sim_req *x = sreq(r);
    async_ms now = async_loop_now(sim->loop);
    int ready;
    if (r->kind == ASYNC__REQ_SIGNAL) return 0; /* no signal comes to the world */
    sim_stop(state, r); /* a request started again: what it was doing is over */
    x->done.fn = done_fn;
    switch (r->kind) {
    case ASYNC__REQ_TIMER:
        x->result = 0;
        if (ms >= 0) async__sim_at(sim, &x->done, now + (async_ms)ms);
        return 0;
    case ASYNC__REQ_CALL:
        x->result = 0;
        async__sim_at(sim, &x->done, now + (async_ms)async__sim_range(sim, 0, sim->o.call_delay_max_ms));
        return 0;
    case ASYNC__REQ_POLL:
        ready = ready_of(sim, r->fd);
        if (ready < 0) return ready;
        if ((unsigned)ready & r->events) {
            complete_now(sim, x, (int)((unsigned)ready & r->events));
            return 0;
        }
        poll_link(sim, x, waiters_of(sim, r->fd)); /* a descriptor that is ready_of's has its list */
        x->result = ASYNC_ETIMEDOUT; /* unless it is ready first */
        if (ms >= 0) async__sim_at(sim, &x->done, now + (async_ms)ms);
        return 0;
    default:
        return ASYNC_ENOTSUP;
    }
}

/* ---- the wait ---- */

/* True if calls were posted since the last look (the look costs a lock: not on every wait). */
static bool posted_take(async__sim *sim) {
#if defined(__GNUC__) || defined(__clang__)
    return __atomic_exchange_n(&sim->posted, 0, __ATOMIC_ACQUIRE) != 0;
#else
    (void)sim;
    return true;
#endif
}

static bool sim_wait(async_loop *loop, int32_t timeout_ms) {
    async__sim *sim = sim_of(loop);
    async_ms now;
    if (posted_take(sim)) async__loop_run_posts(loop); /* calls posted from other threads: rare in a closed world */
    if (timeout_ms != 0) {
        now = async_loop_now(loop);
        if (!sim->root) {
            if (timeout_ms < 0) return async_loop_has_ready(loop); /* nothing can ever happen again */
            advance(sim, (async_ms)timeout_ms);
            return true;
        }
        /* a timer is first; or due with the next event, and first by a draw: a sleep and an arrival of
         * the same ms come in either order, as on a real machine */
        if (timeout_ms > 0 && ((int32_t)(sim->root->at - now) > timeout_ms ||
                               ((int32_t)(sim->root->at - now) == timeout_ms && async__sim_chance(sim, 50)))) {
            advance(sim, (async_ms)timeout_ms); /* the events due then run at the next wait */
            return true;
        }
        if ((int32_t)(sim->root->at - now) > 0) advance(sim, sim->root->at - now);
    }
    run_due(sim);
    return true;
}

static void sim_wake(async_loop *loop) {
#if defined(__GNUC__) || defined(__clang__)
    __atomic_store_n(&sim_of(loop)->posted, 1, __ATOMIC_RELEASE);
#else
    (void)loop; /* without atomics every wait looks at the posted calls (posted_take) */
#endif
}
static void sim_hold(async_loop *loop, bool on) {
    (void)loop;
    (void)on; /* calls on threads are the world's events: they keep the loop alive by being scheduled */
}

/* ---- making and freeing ---- */

static int options_ok(const async_sim_options *o) {
    return o->latency_min_ms <= o->latency_max_ms && o->latency_max_ms <= ASYNC_MS_MAX / 4 &&
           o->partial_pct <= 100 && o->refuse_pct <= 100 && o->reset_pct <= 100 && o->stall_pct <= 100 &&
           o->stall_max_ms <= ASYNC_MS_MAX / 4 && o->file_short_pct <= 100 && o->file_error_pct <= 100 &&
           o->call_delay_max_ms <= ASYNC_MS_MAX / 4;
}

static int sim_open(async_loop *loop, void *state, void *arg) {
    async__sim *sim = (async__sim *)state;
    const async_sim_options *o = (const async_sim_options *)arg;
    uint64_t x;
    int err = 0;
    if (!o || !options_ok(o)) return ASYNC_EINVAL;
    sim->loop = loop;
    sim->o = *o;
    if (!sim->o.window) sim->o.window = 65536;
    x = o->seed;
    sim->s[0] = splitmix64(&x);
    sim->s[1] = splitmix64(&x);
    sim->s[2] = splitmix64(&x);
    sim->s[3] = splitmix64(&x);
    sim->hash = 0xcbf29ce484222325ull;
    sim->net = async__sim_net_open(sim, &err);
    if (!sim->net) goto fail;
    sim->fs = async__sim_fs_open(sim, &err);
    if (!sim->fs) goto fail;
    return 0;
fail:
    if (sim->net) async__sim_net_close(sim, sim->net);
    return err ? err : ASYNC_ENOMEM;
}

static void sim_close(async_loop *loop) {
    async__sim *sim = sim_of(loop);
    async__sim_fs_close(sim, sim->fs);
    async__sim_net_close(sim, sim->net);
    sim->fs = sim->net = NULL;
}

const async_backend async__backend_sim = {
    "sim", ASYNC__BACKEND_SIM, sizeof(async__sim), sim_open, sim_close, NULL, sim_wait,
    sim_start, sim_stop, sim_wake, sim_hold,
};

/* ---- the public API ---- */

async_sim_options async_sim_defaults(uint64_t seed) {
    async_sim_options o;
    memset(&o, 0, sizeof o);
    o.seed = seed;
    o.latency_min_ms = 1;
    o.latency_max_ms = 20;
    o.bandwidth = 10000;
    o.window = 65536;
    o.call_delay_max_ms = 5;
    return o;
}

async_loop *async_sim_new(const async_sim_options *o) {
    async_sim_options d;
    if (!o) {
        const char *env = getenv("ASYNC_SIM_SEED");
        d = async_sim_defaults(env && *env ? strtoull(env, NULL, 0) : 1);
        o = &d;
    }
    if (!options_ok(o)) return NULL;
    return async__hosted_new(&async__backend_sim, (void *)o);
}

bool async_loop_simulated(const async_loop *loop) { return loop && async__loop_is_sim(loop); }

uint64_t async_sim_seed(const async_loop *loop) {
    async__sim *sim = loop ? async__loop_sim(loop) : NULL;
    return sim ? sim->o.seed : 0;
}

uint64_t async_sim_hash(const async_loop *loop) {
    async__sim *sim = loop ? async__loop_sim(loop) : NULL;
    return sim ? sim->hash : 0;
}

uint64_t async_sim_events(const async_loop *loop) {
    async__sim *sim = loop ? async__loop_sim(loop) : NULL;
    return sim ? sim->events : 0;
}

uint64_t async_sim_random(async_loop *loop, uint64_t n) {
    async__sim *sim = loop ? async__loop_sim(loop) : NULL;
    if (!sim) return 0;
    return n ? async__sim_rand(sim) % n : async__sim_rand(sim);
}

void async_sim_note(async_loop *loop, const void *data, size_t len) {
    async__sim *sim = loop ? async__loop_sim(loop) : NULL;
    if (sim) async__sim_note(sim, ASYNC__SIM_NOTE_USER, (int64_t)len, data, len);
}

int async_sim_census_of(async_loop *loop, async_sim_census *out) {
    async__sim *sim = loop ? async__loop_sim(loop) : NULL;
    if (!sim || !out) return ASYNC_EINVAL;
    memset(out, 0, sizeof *out);
    out->ready = async_loop_has_ready(loop) ? 1u : 0u;
    out->polls = sim->polls;
    out->timers = async_loop_timers(loop);
    out->events = (unsigned)sim->n;
    out->sockets = async__sim_net_count(sim->net);
    out->files = async__sim_fs_count(sim->fs);
    return 0;
}

int async_sim_set_faults(async_loop *loop, const async_sim_options *o) {
    async__sim *sim = loop ? async__loop_sim(loop) : NULL;
    uint64_t seed;
    if (!sim || !o || !options_ok(o)) return ASYNC_EINVAL;
    seed = sim->o.seed;
    sim->o = *o;
    sim->o.seed = seed;
    if (!sim->o.window) sim->o.window = 65536;
    return 0;
}
