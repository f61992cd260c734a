/*
 * ctl_storage.c - talasctl storage compact: the storage rewritten without
 * its free pages (store/storage.h, talas_storage_compact), so that the
 * space a purge freed goes back to the file system.
 *
 * Entry point (talasctl.h): talasctl_cmd_storage. Refused (exit 1) while a
 * talas-master runs: its workers hold the map open, and a process that
 * keeps the old file mapped would lose its writes. The master is running
 * when its control socket answers or when its pid file is locked (the
 * lock talas_pidfile_create holds for its life); the store then refuses
 * too if any other process has the environment open. Sizes on stdout (one
 * JSON document with --json); errors on stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "core/control.h"
#include "core/json.h"
#include "ctl/talasctl.h"
#include "store/storage.h"

/* The pid of the running master (or -1 when it runs but its pid is not
 * known), 0 when none runs. */
static long running_master(const struct talas_config *conf)
{
    char buf[32] = "";
    long pid = -1;
    int fd;

    if ((fd = talas_control_connect(conf->control_socket)) != -1) {
        close(fd);
        if (conf->pid_file == NULL || (fd = open(conf->pid_file, O_RDONLY | O_CLOEXEC)) == -1)
            return -1;
    } else if (conf->pid_file == NULL || (fd = open(conf->pid_file, O_RDONLY | O_CLOEXEC)) == -1) {
        return 0;
    } else if (flock(fd, LOCK_SH | LOCK_NB) == 0 || errno != EWOULDBLOCK) {
        /* nobody holds the pid file: a stale one */
        close(fd);
        return 0;
    }
    if (read(fd, buf, sizeof(buf) - 1) > 0)
        pid = strtol(buf, NULL, 10);
    close(fd);
    return pid > 0 ? pid : -1;
}

static int cmd_compact(const struct talas_config *conf)
{
    uint64_t before, after;
    long pid;
    char *error;
    int rc;

    if ((pid = running_master(conf)) != 0) {
        if (pid > 0)
            fprintf(stderr,
                    "talasctl: talas-master (pid %ld) is running on this storage: stop it first "
                    "(its workers hold the map open)\n",
                    pid);
        else
            fprintf(stderr, "talasctl: talas-master is running on this storage: stop it first "
                            "(its workers hold the map open)\n");
        return TALASCTL_FAILURE;
    }
    if ((rc = talas_storage_compact(conf->storage_path, conf->storage_map_size, &before, &after, &error)) !=
        0) {
        fprintf(stderr, "talasctl: %s\n", error);
        free(error);
        return TALASCTL_FAILURE;
    }
    if (talasctl_json) {
        struct talas_buf out = {0};
        struct talas_json json;
        talas_json_init(&json, &out);
        talas_json_object_begin(&json);
        talas_json_key(&json, "storage");
        talas_json_string(&json, conf->storage_path);
        talas_json_key(&json, "bytes_before");
        talas_json_uint(&json, before);
        talas_json_key(&json, "bytes_after");
        talas_json_uint(&json, after);
        talas_json_object_end(&json);
        printf("%.*s\n", (int)out.len, out.data);
        talas_buf_free(&out);
    } else
        printf("%s/data.mdb: %" PRIu64 " bytes before, %" PRIu64 " after\n", conf->storage_path, before,
               after);
    return TALASCTL_OK;
}

int talasctl_cmd_storage(const struct talas_config *conf, char **args, int nargs)
{
    if (nargs != 1 || strcmp(args[0], "compact") != 0) {
        talasctl_usage(stderr, "storage");
        return TALASCTL_USAGE;
    }
    return cmd_compact(conf);
}
