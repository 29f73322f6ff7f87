/* Memory for many frames at once (a pool for N tasks), with its pages mapped up front.
 *
 * A program that starts a million tasks touches every page of their frames once. Faulting them in one by
 * one costs a trap per 4 KB (measured on a 2-core VM: 165 ms for 56 MB); one mmap with MAP_POPULATE maps
 * the same memory in 30 ms. Larger pools are also asked for in 2 MiB pages (transparent huge pages where
 * the kernel offers them for madvise): 512 times fewer pages to map and to miss in the TLB while the tasks
 * run. Small pools come from calloc. */
#define _GNU_SOURCE
#include "internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

/* Below this, calloc: the heap is warm and mmap's own cost would dominate. */
#define FRAMES_MMAP_MIN ((size_t)1 << 20)
/* From this size on, a pool starts on a 2 MiB boundary and asks for huge pages. */
#define FRAMES_HUGE ((size_t)2 << 20)

/* The bytes a pool of `bytes` maps: whole pages, and whole huge pages from FRAMES_HUGE on. */
static size_t frames_mapped(size_t bytes) {
    size_t unit = bytes >= FRAMES_HUGE ? FRAMES_HUGE : 4096;
    return (bytes + unit - 1) / unit * unit;
}

#if defined(MADV_HUGEPAGE) && defined(MADV_POPULATE_WRITE)
/* A mapping aligned on 2 MiB (the slack around it unmapped), asked for in huge pages, then populated;
 * NULL if the kernel refuses any step (the caller falls back to MAP_POPULATE). */
static void *frames_map_huge(size_t len) {
    size_t slack = FRAMES_HUGE;
    char *raw = mmap(NULL, len + slack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *p;
    size_t head;
    if (raw == MAP_FAILED) return NULL;
    head = (FRAMES_HUGE - (uintptr_t)raw % FRAMES_HUGE) % FRAMES_HUGE;
    p = raw + head;
    if (head) munmap(raw, head);
    if (slack - head) munmap(p + len, slack - head);
    (void)madvise(p, len, MADV_HUGEPAGE); /* advice: the kernel may keep small pages */
    if (madvise(p, len, MADV_POPULATE_WRITE) != 0) { /* before Linux 5.14 */
        munmap(p, len);
        return NULL;
    }
    return p;
}
#else
static void *frames_map_huge(size_t len) {
    (void)len;
    return NULL;
}
#endif

void *async_frame_array_new(size_t count, size_t size) {
    size_t bytes, len;
    void *p;
    if (count == 0 || size == 0 || count > SIZE_MAX / size) return NULL;
    bytes = count * size;
    if (bytes < FRAMES_MMAP_MIN) return calloc(count, size);
    len = frames_mapped(bytes);
    if (len < bytes) return NULL; /* rounding up overflowed */
    if (len >= FRAMES_HUGE && (p = frames_map_huge(len)) != NULL) return p;
#ifdef MAP_POPULATE
    p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
#else
    p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
#endif
    return p == MAP_FAILED ? NULL : p;
}

void async_frame_array_free(void *frames, size_t count, size_t size) {
    if (!frames) return;
    if (count * size >= FRAMES_MMAP_MIN)
        munmap(frames, frames_mapped(count * size));
    else
        free(frames);
}
