/* A table keyed by task (taskmap.h). */
#include "taskmap.h"

#include <string.h>

static const char removed_mark = 0;
#define REMOVED ((async_task *)(void *)(uintptr_t)&removed_mark)

static async_task **task_at(const async__taskmap *m, size_t i) {
    return (async_task **)(void *)(m->slots + i * m->size);
}

static size_t home(const async__taskmap *m, const async_task *t) {
    uintptr_t h = (uintptr_t)t;
    h = (h >> 4) * (uintptr_t)0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 16) & (m->cap - 1);
}

int async__taskmap_init(async__taskmap *m, async_loop *loop, size_t entry_size, size_t cap) {
    memset(m, 0, sizeof *m);
    m->loop = loop;
    m->size = entry_size;
    if (!cap) return 0; /* made at the first add */
    m->slots = (unsigned char *)async__loop_alloc(loop, cap * entry_size);
    if (!m->slots) return ASYNC_ENOMEM;
    memset(m->slots, 0, cap * entry_size);
    m->cap = cap;
    return 0;
}

void async__taskmap_free(async__taskmap *m) {
    async__loop_release(m->loop, m->slots);
    m->slots = NULL;
    m->cap = m->used = m->live = 0;
}

void *async__taskmap_find(const async__taskmap *m, const async_task *t) {
    size_t i, n;
    if (!m->cap || !t) return NULL;
    for (i = home(m, t), n = 0; n < m->cap && *task_at(m, i); n++, i = (i + 1) & (m->cap - 1))
        if (*task_at(m, i) == t) return task_at(m, i);
    return NULL;
}

/* Rebuilds the table at cap slots, removed ones dropped; false if out of memory. */
static bool rehash(async__taskmap *m, size_t cap) {
    async__taskmap old = *m;
    size_t i;
    m->slots = (unsigned char *)async__loop_alloc(m->loop, cap * m->size);
    if (!m->slots) {
        m->slots = old.slots;
        return false;
    }
    memset(m->slots, 0, cap * m->size);
    m->cap = cap;
    m->used = 0;
    for (i = 0; i < old.cap; i++) {
        async_task *t = *task_at(&old, i);
        size_t k;
        if (!t || t == REMOVED) continue;
        for (k = home(m, t); *task_at(m, k); k = (k + 1) & (cap - 1)) {}
        memcpy(task_at(m, k), task_at(&old, i), m->size);
        m->used++;
    }
    async__loop_release(m->loop, old.slots);
    return true;
}

void *async__taskmap_add(async__taskmap *m, async_task *t, bool *made) {
    async_task **e = (async_task **)async__taskmap_find(m, t);
    size_t i;
    if (made) *made = !e;
    if (e) return e;
    if (!m->cap && !rehash(m, 64)) return NULL;
    /* a table full of removed slots is rebuilt at its size, a full one at twice it */
    if ((m->used + 1) * 4 > m->cap * 3 && !rehash(m, m->live * 2 >= m->cap ? m->cap * 2 : m->cap)) return NULL;
    for (i = home(m, t); *task_at(m, i) && *task_at(m, i) != REMOVED; i = (i + 1) & (m->cap - 1)) {}
    e = task_at(m, i);
    if (!*e) m->used++;
    memset(e, 0, m->size);
    *e = t;
    m->live++;
    return e;
}

void async__taskmap_del(async__taskmap *m, void *entry) {
    *(async_task **)entry = REMOVED; /* still counted in used: a probe goes past it */
    m->live--;
}

void *async__taskmap_at(const async__taskmap *m, size_t i) {
    async_task **e = task_at(m, i);
    return *e && *e != REMOVED ? e : NULL;
}
