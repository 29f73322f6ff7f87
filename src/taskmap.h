/* Private to src/: a table keyed by task, for the instruments that follow tasks through the loop's
 * hooks (debug mode, the trace, the runner of seeds' census). Open addressing with linear probing;
 * a removed entry leaves a marked slot that probes go past, so that an entry stays where it is until
 * the table grows (only an add moves entries). Entries are `size` bytes each and begin with their
 * async_task * (NULL in a free slot). Memory comes from the loop's allocator (loop NULL: malloc). */
#ifndef ASYNC_TASKMAP_H
#define ASYNC_TASKMAP_H

#include "internal.h"

typedef struct async__taskmap {
    unsigned char *slots;
    size_t size;       /* bytes per entry */
    size_t cap;        /* slots, a power of two */
    size_t used;       /* slots taken, removed ones included */
    size_t live;       /* entries */
    async_loop *loop;  /* whose allocator */
} async__taskmap;

/** Makes an empty table of cap slots (a power of two; 0: none until the first add, which makes 64) for
 *  entries of entry_size bytes (at least an async_task *): 0 or ASYNC_ENOMEM. */
int async__taskmap_init(async__taskmap *m, async_loop *loop, size_t entry_size, size_t cap);
/** Frees the table's memory (harmless on a zeroed or freed one). */
void async__taskmap_free(async__taskmap *m);
/** t's entry, or NULL. */
void *async__taskmap_find(const async__taskmap *m, const async_task *t);
/** t's entry, made (zeroed, its task set) if t has none; *made (may be NULL) says which. NULL only when
 *  the table could not grow (out of memory). */
void *async__taskmap_add(async__taskmap *m, async_task *t, bool *made);
/** Removes an entry that find or add returned. */
void async__taskmap_del(async__taskmap *m, void *entry);
/** The entry in slot i (i < m->cap), or NULL if the slot holds none: for going over every entry. */
void *async__taskmap_at(const async__taskmap *m, size_t i);

#endif
