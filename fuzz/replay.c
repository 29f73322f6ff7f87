/* Runs a fuzz target over files instead of under libFuzzer: each argument is a file or a directory of
 * files, each file is one input. `make coverage` links every target with this driver and gcc's gcov so
 * that the corpus in fuzz/corpus counts toward the coverage figure; it is also the way to replay one
 * crash reproducer under gdb or valgrind without clang. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path) {
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long n;
    if (!f) {
        perror(path);
        return 1;
    }
    if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
        perror(path);
        fclose(f);
        return 1;
    }
    buf = (uint8_t *)malloc((size_t)n + 1); /* +1: a zero-byte input still gets a valid pointer */
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "%s: cannot read\n", path);
        free(buf);
        fclose(f);
        return 1;
    }
    fclose(f);
    LLVMFuzzerTestOneInput(buf, (size_t)n);
    free(buf);
    return 0;
}

static int replay_path(const char *path, unsigned long *count) {
    struct stat st;
    DIR *d;
    struct dirent *e;
    int bad = 0;
    if (stat(path, &st)) {
        perror(path);
        return 1;
    }
    if (!S_ISDIR(st.st_mode)) {
        ++*count;
        return replay_file(path);
    }
    if (!(d = opendir(path))) {
        perror(path);
        return 1;
    }
    while ((e = readdir(d))) {
        char sub[4096];
        if (e->d_name[0] == '.') continue;
        if ((size_t)snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) >= sizeof sub) {
            fprintf(stderr, "%s/%s: path too long\n", path, e->d_name);
            bad = 1;
            continue;
        }
        bad |= replay_path(sub, count);
    }
    closedir(d);
    return bad;
}

int main(int argc, char **argv) {
    unsigned long count = 0;
    int i, bad = 0;
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
        return 2;
    }
    for (i = 1; i < argc; i++) bad |= replay_path(argv[i], &count);
    printf("%s: %lu input%s replayed\n", argv[0], count, count == 1 ? "" : "s");
    return bad;
}
