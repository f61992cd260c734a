/*
 * master_conf.c - the configuration a generation of workers runs, and the
 * program they run.
 *
 * Entry points (declared in master.h): talas_master_conf_load,
 * talas_master_worker_program.
 *
 * The master reads the configuration file's bytes once per (re)load,
 * parses and validates them, and keeps exactly those bytes with the
 * generation in a sealed memfd. Every worker of the generation is handed
 * that fd and parses the same bytes under the same name (talas-worker,
 * workers/worker/main.c): an edit of the file after a reload never reaches
 * a worker of the old generation, and a worker never runs a configuration
 * the master did not check. The seals keep a worker from changing the text
 * its siblings will read.
 *
 * The worker program is looked up once at start: talas-worker beside
 * talas-master (the build tree, where the tests run it), else in
 * $(pkglibexecdir) (the installed tree).
 *
 * Logs nothing itself: errors come back to the caller.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "core/util.h"
#include "master/master.h"


/* A sealed memfd holding TEXT; -1 with *error_r set on failure. */
static int text_fd(const char *text, size_t len, char **error_r)
{
    size_t off = 0;
    int fd;

    if ((fd = memfd_create("talas.yaml", MFD_CLOEXEC | MFD_ALLOW_SEALING)) == -1) {
        *error_r = xasprintf("memfd_create() failed: %s", strerror(errno));
        return -1;
    }
    while (off < len) {
        ssize_t n = write(fd, text + off, len - off);
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1) {
            *error_r = xasprintf("write() to the configuration's memfd failed: %s", strerror(errno));
            goto fail;
        }
        off += (size_t)n;
    }
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) == -1) {
        *error_r = xasprintf("fcntl(F_ADD_SEALS) on the configuration's memfd failed: %s", strerror(errno));
        goto fail;
    }
    return fd;
fail:
    close(fd);
    return -1;
}

int talas_master_conf_load(const char *file, struct talas_config **conf_r, int *fd_r, char **error_r)
{
    struct talas_config *conf;
    char *text;
    size_t len;
    int fd;

    if (talas_config_read_file(file, &text, &len, error_r) != 0)
        return -1;
    if (talas_config_load_string(file, text, len, &conf, error_r) != 0) {
        free(text);
        return -1;
    }
    if (fd_r != NULL) {
        if ((fd = text_fd(text, len, error_r)) == -1) {
            free(text);
            talas_config_free(conf);
            return -1;
        }
        *fd_r = fd;
    }
    free(text);
    *conf_r = conf;
    return 0;
}

static char *executable_in(const char *dir)
{
    char *path = xasprintf("%s/talas-worker", dir);

    if (access(path, X_OK) == 0)
        return path;
    free(path);
    return NULL;
}

char *talas_master_worker_program(char **error_r)
{
    char self[PATH_MAX], *path;
    ssize_t n;

    /* the build tree: the tests run ./talas-master beside ./talas-worker */
    if ((n = readlink("/proc/self/exe", self, sizeof(self) - 1)) > 0) {
        self[n] = '\0';
        if ((path = executable_in(dirname(self))) != NULL)
            return path;
    }
    if ((path = executable_in(PKGLIBEXECDIR)) != NULL)
        return path;
    *error_r = xasprintf("the worker program talas-worker is not an executable file beside talas-master "
                         "nor in " PKGLIBEXECDIR);
    return NULL;
}
