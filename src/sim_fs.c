/* Simulated files (the world's file part, sim.h and sim_fs.h): a file system in memory, a path to an array
 * of bytes, and the descriptors open on it. Two chained hash tables hold them (files by the hash of their
 * path, descriptors by number), each doubling its buckets as it fills, so a call costs the same with a
 * thousand files as with one. Faults and the length of a short read or write are drawn from the world's
 * generator at the call, and every call is noted in the run's hash with the bytes it moved: a seed
 * replays what the files saw. */
#define _POSIX_C_SOURCE 200809L
#include "sim_fs.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* An entry of a table: the chain of its bucket, and its key (a path's hash, a descriptor's number). */
typedef struct fs_node {
    struct fs_node *next;
    uint64_t key;
} fs_node;

typedef struct fs_table {
    fs_node **b; /* mask + 1 buckets, NULL until the first entry */
    size_t mask, n;
} fs_table;

/* A file: its name and its bytes. */
typedef struct fs_file {
    fs_node node; /* in fs->files */
    unsigned char *data;
    size_t len, cap;
    async_ms mtime; /* the virtual time of its last change (async__sim_file_mtime) */
    char path[];
} fs_file;

/* An open descriptor of a file. */
typedef struct fs_open {
    fs_node node; /* in fs->fds, by number */
    fs_file *file;
    size_t pos;
    bool readable, writable, append;
} fs_open;

struct async__sim_files {
    async__sim *sim;
    fs_table files, fds;
};

/* What a note in the run's hash is about (the first byte of its head). */
enum { OP_OPEN = 1, OP_READ, OP_WRITE, OP_SIZE, OP_CLOSE, OP_PUT, OP_MTIME, OP_DIR };

/* ---- the tables ---- */

static uint64_t path_hash(const char *p) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *p; p++) {
        h ^= (unsigned char)*p;
        h *= 0x100000001b3ull;
    }
    return h;
}

static fs_node *table_first(const fs_table *t, uint64_t key) {
    fs_node *x = t->b ? t->b[key & t->mask] : NULL;
    while (x && x->key != key) x = x->next;
    return x;
}

static fs_node *table_next(fs_node *x) {
    uint64_t key = x->key;
    for (x = x->next; x && x->key != key; x = x->next) {}
    return x;
}

/* Adds x (its key set): 0, or ASYNC_ENOMEM if the first buckets cannot be had. A table that cannot grow
 * keeps its buckets: longer chains, no failure. */
static int table_add(fs_table *t, fs_node *x) {
    if (!t->b) {
        t->b = (fs_node **)calloc(16, sizeof *t->b);
        if (!t->b) return ASYNC_ENOMEM;
        t->mask = 15;
    } else if (t->n > t->mask && t->mask < SIZE_MAX / 2 / sizeof *t->b) {
        size_t i, mask = t->mask * 2 + 1;
        fs_node **b = (fs_node **)calloc(mask + 1, sizeof *b);
        if (b) {
            for (i = 0; i <= t->mask; i++) {
                fs_node *y, *next;
                for (y = t->b[i]; y; y = next) {
                    next = y->next;
                    y->next = b[y->key & mask];
                    b[y->key & mask] = y;
                }
            }
            free(t->b);
            t->b = b;
            t->mask = mask;
        }
    }
    x->next = t->b[x->key & t->mask];
    t->b[x->key & t->mask] = x;
    t->n++;
    return 0;
}

static void table_remove(fs_table *t, fs_node *x) {
    fs_node **pp = &t->b[x->key & t->mask];
    while (*pp != x) pp = &(*pp)->next;
    *pp = x->next;
    t->n--;
}

/* Frees every entry (each begins with its node: fs_file, fs_open) and the buckets. */
static void table_free(fs_table *t) {
    size_t i;
    for (i = 0; t->b && i <= t->mask; i++) {
        fs_node *x, *next;
        for (x = t->b[i]; x; x = next) {
            next = x->next;
            free(x);
        }
    }
    free(t->b);
    t->b = NULL;
    t->mask = t->n = 0;
}

static fs_file *file_find(const async__sim_files *fs, const char *path) {
    fs_node *x;
    for (x = table_first(&fs->files, path_hash(path)); x; x = table_next(x)) {
        fs_file *f = (fs_file *)(void *)x;
        if (strcmp(f->path, path) == 0) return f;
    }
    return NULL;
}

static fs_file *file_new(async__sim_files *fs, const char *path) {
    size_t plen = strlen(path) + 1;
    fs_file *f = (fs_file *)calloc(1, sizeof *f + plen);
    if (!f) return NULL;
    memcpy(f->path, path, plen);
    f->mtime = async_loop_now(async__sim_loop(fs->sim));
    f->node.key = path_hash(path);
    if (table_add(&fs->files, &f->node)) {
        free(f);
        return NULL;
    }
    return f;
}

static fs_open *open_find(const async__sim_files *fs, int fd) {
    return fd < 0 ? NULL : (fs_open *)(void *)table_first(&fs->fds, (uint64_t)fd);
}

/* Makes room for `need` bytes in f: 0 or ASYNC_ENOMEM. */
static int file_reserve(fs_file *f, size_t need) {
    size_t cap = f->cap ? f->cap : 64;
    unsigned char *p;
    if (need <= f->cap) return 0;
    while (cap < need) cap = cap <= SIZE_MAX / 2 ? cap * 2 : need;
    p = (unsigned char *)realloc(f->data, cap);
    if (!p) return ASYNC_ENOMEM;
    f->data = p;
    f->cap = cap;
    return 0;
}

/* ---- the world's part in each call: its note, its faults ---- */

/* Notes a call in the run's hash: a head (what, on which descriptor, at which position, its outcome),
 * then the bytes it moved or the path it named. */
static void note(async__sim_files *fs, unsigned op, int fd, uint64_t at, int64_t rc, const void *bytes, size_t n) {
    unsigned char head[13];
    int i;
    head[0] = (unsigned char)op;
    for (i = 0; i < 4; i++) head[1 + i] = (unsigned char)((unsigned)fd >> (8 * i));
    for (i = 0; i < 8; i++) head[5 + i] = (unsigned char)(at >> (8 * i));
    async__sim_note(fs->sim, ASYNC__SIM_NOTE_FS, rc, head, sizeof head);
    if (bytes && n) async__sim_note(fs->sim, ASYNC__SIM_NOTE_FS, (int64_t)n, bytes, n);
}

/* A failure the world draws for this call (file_error_pct), or 0: ASYNC_EIO, or for half the failing
 * writes ASYNC_ENOSPC. */
static int fault(async__sim_files *fs, bool write) {
    if (!async__sim_chance(fs->sim, async__sim_options(fs->sim)->file_error_pct)) return 0;
    return write && async__sim_chance(fs->sim, 50) ? ASYNC_ENOSPC : ASYNC_EIO;
}

/* n, or (file_short_pct) a length drawn in [1, n - 1]: a short read or write. */
static size_t cut(async__sim_files *fs, size_t n) {
    if (n < 2 || !async__sim_chance(fs->sim, async__sim_options(fs->sim)->file_short_pct)) return n;
    return (size_t)async__sim_range(fs->sim, 1, n - 1);
}

/* ---- the calls (sim_fs.h) ---- */

async__sim_files *async__sim_files_of(const async_loop *loop) {
    async__sim *sim = async__loop_sim(loop);
    return sim ? (async__sim_files *)async__sim_fs(sim) : NULL;
}

int async__sim_file_open(async__sim_files *fs, const char *path, int flags) {
    int acc = flags & O_ACCMODE, rc;
    fs_file *f = *path ? file_find(fs, path) : NULL;
    fs_open *o = NULL;
    if (!*path || (!f && !(flags & O_CREAT)))
        rc = ASYNC_ENOENT;
    else if (f && (flags & O_CREAT) && (flags & O_EXCL))
        rc = ASYNC_EEXIST;
    else
        rc = fault(fs, false);
    if (rc == 0) {
        o = (fs_open *)calloc(1, sizeof *o);
        if (!f && o) f = file_new(fs, path); /* a file made stays, as creat(2)'s does if a later step fails */
        if (!o || !f) rc = ASYNC_ENOMEM;
    }
    if (rc == 0) {
        o->file = f;
        o->readable = acc == O_RDONLY || acc == O_RDWR;
        o->writable = acc == O_WRONLY || acc == O_RDWR;
        o->append = (flags & O_APPEND) != 0;
        o->node.key = (uint64_t)async__sim_fd_new(fs->sim);
        rc = table_add(&fs->fds, &o->node);
    }
    if (rc == 0) {
        if ((flags & O_TRUNC) && o->writable) {
            f->len = 0;
            f->mtime = async_loop_now(async__sim_loop(fs->sim));
        }
        rc = (int)o->node.key;
    } else {
        free(o);
    }
    /* the flags as bits of the world's own, not the host's O_ values: the hash is the same everywhere */
    note(fs, OP_OPEN, rc,
         (uint64_t)((acc == O_RDONLY || acc == O_RDWR) | (acc == O_WRONLY || acc == O_RDWR) << 1 |
                    !!(flags & O_CREAT) << 2 | !!(flags & O_EXCL) << 3 | !!(flags & O_TRUNC) << 4 |
                    !!(flags & O_APPEND) << 5),
         rc, path, strlen(path));
    return rc;
}

long async__sim_file_read(async__sim_files *fs, int fd, void *buf, size_t len, int64_t offset) {
    fs_open *o = open_find(fs, fd);
    uint64_t at = 0;
    size_t n = 0;
    long rc;
    if (!o || !o->readable) {
        rc = ASYNC_EBADF;
    } else {
        at = offset < 0 ? (uint64_t)o->pos : (uint64_t)offset;
        rc = len ? fault(fs, false) : 0;
    }
    if (o && rc == 0) {
        n = at < o->file->len ? o->file->len - (size_t)at : 0;
        if (n > len) n = len;
        if (n > (size_t)LONG_MAX) n = (size_t)LONG_MAX;
        n = cut(fs, n);
        if (n) memcpy(buf, o->file->data + at, n);
        if (offset < 0) o->pos += n;
        rc = (long)n;
    }
    note(fs, OP_READ, fd, at, rc, buf, n);
    return rc;
}

long async__sim_file_write(async__sim_files *fs, int fd, const void *data, size_t len) {
    fs_open *o = open_find(fs, fd);
    fs_file *f = o ? o->file : NULL;
    size_t at = 0, n = 0;
    long rc;
    if (!o || !o->writable) {
        rc = ASYNC_EBADF;
    } else {
        at = o->append ? f->len : o->pos;
        rc = len ? fault(fs, true) : 0;
    }
    if (o && rc == 0 && len) {
        n = cut(fs, len > (size_t)LONG_MAX ? (size_t)LONG_MAX : len);
        if (at > SIZE_MAX - n)
            rc = ASYNC_ENOSPC; /* past any size the memory can hold */
        else
            rc = file_reserve(f, at + n);
        if (rc == 0) {
            if (at > f->len) memset(f->data + f->len, 0, at - f->len); /* a hole reads as zeros */
            memcpy(f->data + at, data, n);
            if (at + n > f->len) f->len = at + n;
            f->mtime = async_loop_now(async__sim_loop(fs->sim));
            o->pos = at + n;
            rc = (long)n;
        } else {
            n = 0;
        }
    }
    note(fs, OP_WRITE, fd, at, rc, data, n);
    return rc;
}

int64_t async__sim_file_size(async__sim_files *fs, int fd) {
    fs_open *o = open_find(fs, fd);
    int64_t rc = o ? (int64_t)o->file->len : ASYNC_EBADF;
    note(fs, OP_SIZE, fd, 0, rc, NULL, 0);
    return rc;
}

int64_t async__sim_file_mtime(async__sim_files *fs, int fd) {
    fs_open *o = open_find(fs, fd);
    int64_t rc = o ? (int64_t)o->file->mtime : ASYNC_EBADF;
    note(fs, OP_MTIME, fd, 0, rc, NULL, 0);
    return rc;
}

bool async__sim_file_is_dir(async__sim_files *fs, const char *path) {
    size_t n = strlen(path), i;
    bool dir = n == 0;
    for (i = 0; !dir && fs->files.b && i <= fs->files.mask; i++) {
        fs_node *x;
        for (x = fs->files.b[i]; x && !dir; x = x->next) {
            const char *name = ((fs_file *)(void *)x)->path;
            dir = strncmp(name, path, n) == 0 && (path[n - 1] == '/' ? name[n] : name[n] == '/' && name[n + 1]);
        }
    }
    note(fs, OP_DIR, -1, 0, dir, path, n);
    return dir;
}

int async__sim_file_close(async__sim_files *fs, int fd) {
    fs_open *o = open_find(fs, fd);
    int rc = o ? 0 : ASYNC_EBADF;
    if (o) {
        table_remove(&fs->fds, &o->node);
        free(o);
    }
    note(fs, OP_CLOSE, fd, 0, rc, NULL, 0);
    return rc;
}

/* ---- the world's hooks (sim.h) ---- */

void *async__sim_fs_open(async__sim *sim, int *err) {
    async__sim_files *fs = (async__sim_files *)calloc(1, sizeof *fs);
    if (!fs) {
        *err = ASYNC_ENOMEM;
        return NULL;
    }
    fs->sim = sim;
    return fs;
}

void async__sim_fs_close(async__sim *sim, void *state) {
    async__sim_files *fs = (async__sim_files *)state;
    size_t i;
    (void)sim;
    if (!fs) return;
    for (i = 0; fs->files.b && i <= fs->files.mask; i++) {
        fs_node *x;
        for (x = fs->files.b[i]; x; x = x->next) free(((fs_file *)(void *)x)->data);
    }
    table_free(&fs->files);
    table_free(&fs->fds);
    free(fs);
}

unsigned async__sim_fs_count(const void *fs) { return (unsigned)((const async__sim_files *)fs)->fds.n; }

/* ---- the public API (async/sim.h) ---- */

int async_sim_file_put(async_loop *loop, const char *path, const void *data, size_t len) {
    async__sim_files *fs = loop ? async__sim_files_of(loop) : NULL;
    fs_file *f;
    unsigned char *p = NULL;
    if (!fs || !path || !*path || (!data && len)) return ASYNC_EINVAL;
    if (len) {
        p = (unsigned char *)malloc(len);
        if (!p) return ASYNC_ENOMEM;
        memcpy(p, data, len);
    }
    f = file_find(fs, path);
    if (!f) f = file_new(fs, path);
    if (!f) {
        free(p);
        return ASYNC_ENOMEM;
    }
    free(f->data); /* replaced in place: descriptors open on it see the new bytes */
    f->data = p;
    f->len = f->cap = len;
    f->mtime = async_loop_now(loop);
    note(fs, OP_PUT, -1, 0, (int64_t)len, p, len);
    return 0;
}

long async_sim_file_get(async_loop *loop, const char *path, void *buf, size_t cap) {
    async__sim_files *fs = loop ? async__sim_files_of(loop) : NULL;
    fs_file *f;
    if (!fs || !path || (!buf && cap)) return ASYNC_EINVAL;
    f = file_find(fs, path);
    if (!f) return ASYNC_ENOENT;
    if (cap > f->len) cap = f->len;
    if (cap) memcpy(buf, f->data, cap);
    return f->len > (size_t)LONG_MAX ? LONG_MAX : (long)f->len; /* an observation: not noted */
}
