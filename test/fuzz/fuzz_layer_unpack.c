/* libFuzzer entry for layer unpacking (unpack_layer()): the bytes are a layer
 * blob (gzip, zstd or plain tar) written to a file and unpacked into a fresh
 * directory. The layer content is chosen by whoever pushed the image, so the
 * one property that matters is containment: after every input, whatever
 * happened, the work directory must hold exactly the blob, the layer
 * directory and an empty sibling `outside/`, and the canary path hostile
 * seeds aim at (/tmp/cricket-fuzz-escape) must not exist.
 *
 * Work directory: $CRICKET_FUZZ_TMPDIR, else $TMPDIR, else /tmp
 * (cricket-fuzz-unpack-XXXXXX, removed at exit). */
#include "test/fuzz/fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "server/image/store/store-internal.h"

#define ESCAPE_CANARY "/tmp/cricket-fuzz-escape"

static char *work;

static void remove_work(void)
{
    cri_error_t err = CRI_ERROR_INIT;
    if (work && rm_rf(work, &err) < 0)
        fprintf(stderr, "fuzz_layer_unpack: %s\n", err.msg);
    free(work);
    work = NULL;
}

static void setup_work(void)
{
    const char *tmp = getenv("CRICKET_FUZZ_TMPDIR");
    if (!tmp || !*tmp)
        tmp = getenv("TMPDIR");
    char *dir = xasprintf("%s/cricket-fuzz-unpack-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir))
        fuzz_fail("mkdtemp `%s`: %s", dir, strerror(errno));
    work = dir;
    atexit(remove_work);
    cleanup_free char *outside = xasprintf("%s/outside", work);
    if (mkdir(outside, 0755) < 0)
        fuzz_fail("mkdir `%s`: %s", outside, strerror(errno));
}

static void write_blob(const char *path, const uint8_t *data, size_t size)
{
    cleanup_close int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        fuzz_fail("open `%s`: %s", path, strerror(errno));
    for (size_t off = 0; off < size;) {
        ssize_t n = write(fd, data + off, size - off);
        if (n < 0)
            fuzz_fail("write `%s`: %s", path, strerror(errno));
        off += (size_t)n;
    }
}

/* Number of entries of dir other than "." and ".."; -1 when it is not a
 * directory (a symlink, above all). */
static int count_entries(const char *dir)
{
    struct stat st;
    if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
        return -1;
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static void check_contained(const char *blob, const char *layer)
{
    cleanup_free char *outside = xasprintf("%s/outside", work);
    struct stat st;
    if (count_entries(work) != 3 || count_entries(outside) != 0 || count_entries(layer) < 0)
        fuzz_fail("unpack wrote outside its layer directory (see %s)", work);
    if (lstat(blob, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1)
        fuzz_fail("the blob was replaced or linked to");
    if (lstat(ESCAPE_CANARY, &st) == 0)
        fuzz_fail("unpack created %s", ESCAPE_CANARY);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!work)
        setup_work();
    cleanup_free char *blob = xasprintf("%s/blob", work);
    cleanup_free char *layer = xasprintf("%s/layer", work);
    write_blob(blob, data, size);
    if (mkdir(layer, 0755) < 0)
        fuzz_fail("mkdir `%s`: %s", layer, strerror(errno));

    unpack_stats_t stats = {0};
    cri_error_t err = CRI_ERROR_INIT;
    if (unpack_layer(blob, layer, NULL, NULL, &stats, &err) < 0)
        fuzz_check_error(&err, "unpack_layer");
    check_contained(blob, layer);

    if (rm_rf(layer, &err) < 0)
        fuzz_fail("rm_rf `%s`: %s", layer, err.msg);
    return 0;
}
