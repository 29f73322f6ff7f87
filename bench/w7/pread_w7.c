/* W7's floor: the same reads as bench/w7.c (the same blocks of the same file, by the same LCG, the same
 * checksum), done by plain pread(2) calls one after another on one thread, with no loop, no pool and no
 * concurrency: what a read of a cached 4 KB block costs by itself. Task i's reads, then task i + 1's
 * (conc= in its line is C, the tasks whose reads it does, so that its checksum is comparable).
 *
 *   pread_w7 FILE N C */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { BLOCK = 4096 };

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint32_t word(const unsigned char *b) {
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

int main(int argc, char **argv) {
    static unsigned char buf[BLOCK];
    unsigned long long sum = 0;
    long n, c, i, k, blocks;
    struct rusage ru;
    struct stat st;
    double t0, wall;
    int fd;
    if (argc != 4 || (n = atol(argv[2])) < 1 || (c = atol(argv[3])) < 1) {
        fprintf(stderr, "usage: pread_w7 FILE N C\n");
        return 2;
    }
    if ((fd = open(argv[1], O_RDONLY)) < 0 || fstat(fd, &st) != 0 || st.st_size < BLOCK) {
        fprintf(stderr, "pread_w7: %s: %s\n", argv[1], fd < 0 ? strerror(errno) : "unreadable or under 4 KB");
        return 2;
    }
    blocks = (long)(st.st_size / BLOCK);
    if (c > n) c = n;
    t0 = now_s();
    for (i = 0; i < c; i++) {
        uint32_t s = (uint32_t)(i + 1);
        for (k = n / c + (i < n % c); k > 0; k--) {
            s = s * 1664525u + 1013904223u;
            if (pread(fd, buf, BLOCK, (off_t)((s >> 8) % (uint32_t)blocks) * BLOCK) != BLOCK) {
                fprintf(stderr, "pread_w7: a read came back short of 4 KB\n");
                return 1;
            }
            sum += (unsigned long long)word(buf) + word(buf + BLOCK - 4);
        }
    }
    wall = now_s() - t0;
    getrusage(RUSAGE_SELF, &ru);
    printf("workload=W7 impl=c-pread n=%ld wall_s=%.4f rss_kb=%ld conc=%ld threads=1 reads_per_s=%.0f "
           "ns_per_read=%.1f checksum=%llu\n",
           n, wall, ru.ru_maxrss, c, (double)n / wall, wall * 1e9 / (double)n, sum);
    close(fd);
    return 0;
}
