/* A main() for the libFuzzer entries when they are built without libFuzzer:
 * it runs every file named on the command line, or every regular file in a
 * directory named there (in name order), through LLVMFuzzerTestOneInput().
 * An entry reports a bug by crashing or aborting; a run that found no input
 * at all fails, so a missing corpus cannot pass unnoticed. ctest runs this
 * over test/fuzz/corpus/<name>/ (label `fuzz`). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/cleanup.h"
#include "common/util.h"

#define REPLAY_MAX_INPUT (16u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
    cri_error_t err = CRI_ERROR_INIT;
    cleanup_free char *data = NULL;
    size_t len = 0;
    if (read_file(path, REPLAY_MAX_INPUT, &data, &len, &err) < 0) {
        fprintf(stderr, "replay: %s\n", err.msg);
        return -1;
    }
    /* A copy of exactly len bytes, so ASan sees reads past the input. */
    cleanup_free uint8_t *copy = xmalloc(len ? len : 1);
    memcpy(copy, data, len);
    fprintf(stderr, "replay: %s (%zu bytes)\n", path, len);
    LLVMFuzzerTestOneInput(copy, len);
    return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* Replays the regular files of dir; returns how many, or -1. */
static int replay_dir(const char *dir)
{
    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, by_name);
    if (n < 0) {
        perror(dir);
        return -1;
    }
    int count = 0, r = 0;
    for (int i = 0; i < n; i++) {
        cleanup_free char *path = xasprintf("%s/%s", dir, names[i]->d_name);
        struct stat st;
        if (r == 0 && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            r = replay_file(path);
            count++;
        }
        free(names[i]);
    }
    free(names);
    return r < 0 ? -1 : count;
}

int main(int argc, char **argv)
{
    int total = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) < 0) {
            perror(argv[i]);
            return 1;
        }
        int n = S_ISDIR(st.st_mode) ? replay_dir(argv[i]) : (replay_file(argv[i]) < 0 ? -1 : 1);
        if (n < 0)
            return 1;
        total += n;
    }
    if (total == 0) {
        fprintf(stderr, "replay: no input\n");
        return 1;
    }
    fprintf(stderr, "replay: %d inputs, no crash\n", total);
    return 0;
}
