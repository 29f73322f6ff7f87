/* W7: many concurrent 4 KB reads of a cached file. C tasks (64 by default) share N reads of 4 KB, each at
 * a 4 KB-aligned offset drawn from the task's own LCG, the one every peer of bench/w7 uses:
 *
 *   state(task i) starts at i + 1;  state = state * 1664525 + 1013904223 (mod 2^32);
 *   offset = ((state >> 8) % blocks) * 4096,  blocks = file size / 4096
 *
 * Task i does N / C reads, one more if i < N % C. The checksum adds, for every read, the little-endian
 * 32-bit words at bytes 0 and 4092 of the block: the same for every implementation that read the same
 * blocks whole, whatever the order.
 *
 *   async def reader(i):
 *       for _ in range(count(i)):
 *           buf = await loop.run_in_executor(None, os.pread, fd, 4096, next_offset(i))
 *           sum += word(buf, 0) + word(buf, 4092)
 *   await asyncio.gather(*(reader(i) for i in range(c)))
 *
 * Each task opens the file (AWAIT_FILE_OPEN) and reads with AWAIT_FILE_READ_AT: on libev a pool thread's
 * pread (4 threads, as Node's libuv pool and the asyncio peer's executor), on io_uring the kernel's own
 * read, without the pool.
 *
 *   w7 FILE [N [C]]     N reads (default 100000) by C tasks (default 64)
 *
 * Prints one line in the peers' format: ns_per_read is the wall time over N, reads_per_s its inverse. */
#include "bench.h"

#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { BLOCK = 4096 };

/* The LCG's next state and the offset it names. */
static uint32_t lcg_next(uint32_t s) { return s * 1664525u + 1013904223u; }
static off_t block_offset(uint32_t s, long blocks) { return (off_t)((long)((s >> 8) % (uint32_t)blocks)) * BLOCK; }

/* The two words of a block the checksum adds. */
static unsigned long long block_sum(const unsigned char *b) {
    const unsigned char *e = b + BLOCK - 4;
    return (unsigned long long)((uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24) +
           (unsigned long long)((uint32_t)e[0] | (uint32_t)e[1] << 8 | (uint32_t)e[2] << 16 | (uint32_t)e[3] << 24);
}

typedef struct {
    async_task task;
    long reads; /* left to do */
    uint32_t lcg;
    long blocks;
    unsigned long long sum;
    int failed; /* a short read: the workload did not happen as asked */
    async_thread_call call;
    const char *path;
    async_file *file;
    size_t nread;
    unsigned char buf[BLOCK];
} reader_frame;

static async_status reader_run(async_task *t) {
    reader_frame *f = (reader_frame *)t;
    ASYNC_BEGIN(t);
    AWAIT_FILE_OPEN(t, &f->call, &f->file, f->path, "r");
    for (; f->reads > 0; f->reads--) {
        f->lcg = lcg_next(f->lcg);
        AWAIT_FILE_READ_AT(t, &f->call, f->file, f->buf, BLOCK, block_offset(f->lcg, f->blocks), &f->nread);
        if (f->nread != BLOCK) f->failed = 1;
        f->sum += block_sum(f->buf);
    }
    AWAIT_FILE_CLOSE(t, &f->call, f->file);
    ASYNC_END(t);
}

/* A positive whole number from s, or -1. */
static long parse_count(const char *s) {
    char *end = NULL;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    return errno || end == s || *end != '\0' || v < 1 ? -1 : v;
}

int main(int argc, char **argv) {
    long n = argc > 2 ? parse_count(argv[2]) : 100000, c = argc > 3 ? parse_count(argv[3]) : 64, i, blocks;
    unsigned long long sum = 0;
    reader_frame *readers;
    static bench_gather all; /* zeroed, as a frame must be before its first init */
    async_loop *loop;
    struct stat st;
    char extra[160];
    int fd, rc, failed = 0;
    double wall;
    if (argc < 2 || argc > 4 || n < 1 || c < 1) {
        fprintf(stderr, "usage: %s FILE [N [C]]   (N reads of 4 KB, default 100000, by C tasks, default 64)\n",
                argv[0]);
        return 2;
    }
    if ((fd = open(argv[1], O_RDONLY)) < 0 || fstat(fd, &st) != 0) {
        fprintf(stderr, "%s: %s: %s\n", argv[0], argv[1], strerror(errno));
        return 2;
    }
    if (st.st_size < BLOCK) {
        fprintf(stderr, "%s: %s: under 4 KB\n", argv[0], argv[1]);
        return 2;
    }
    blocks = (long)(st.st_size / BLOCK);
    if (c > n) c = n;
    if (!(readers = (reader_frame *)calloc((size_t)c, sizeof *readers))) {
        fprintf(stderr, "%s: %s\n", argv[0], async_strerror(ASYNC_ENOMEM));
        return 1;
    }
    if (!(loop = async_loop_new(0))) {
        fprintf(stderr, "%s: %s\n", argv[0], async_strerror(ASYNC_ENOMEM));
        free(readers);
        return 1;
    }
    /* 4 threads, as Node's libuv pool and the asyncio peer's executor */
    if ((rc = async_loop_set_threads(loop, 4)) != 0) {
        free(readers);
        return bench_exit(argv[0], loop, rc);
    }
    for (i = 0; i < c; i++) {
        ASYNC_FRAME_INIT(&readers[i], reader_run);
        readers[i].reads = n / c + (i < n % c);
        readers[i].lcg = (uint32_t)(i + 1);
        readers[i].blocks = blocks;
        readers[i].path = argv[1];
    }
    bench_gather_init(&all, &readers[0].task, (size_t)c, sizeof readers[0]);
    rc = bench_run(loop, &all.task, &wall);
    for (i = 0; i < c; i++) {
        sum += readers[i].sum;
        failed |= readers[i].failed;
    }
    snprintf(extra, sizeof extra, "conc=%ld threads=4 api=file_read_at backend=%s reads_per_s=%.0f", c,
             async_loop_backend_name(loop), (double)n / wall);
    if (rc == 0 && failed) fprintf(stderr, "%s: a read came back short of 4 KB\n", argv[0]);
    if (rc == 0 && !failed)
        bench_print(&(bench_result){.workload = "W7", .impl = "async.h", .n = n, .wall_s = wall, .extra = extra,
                                    .figure = "ns_per_read", .value = wall * 1e9 / (double)n,
                                    .checksum = (long long)sum});
    rc = bench_exit(argv[0], loop, rc); /* the loop first: it still knows the readers' frames */
    free(readers);
    close(fd);
    return rc ? rc : failed;
}
