/*
 * main.c - talas-worker: the program talas-master execs in each worker
 * child ($(pkglibexecdir)/talas-worker; beside talas-master in the build
 * tree).
 *
 *   talas-worker --config-fd FD --config-name FILE --slot N --generation G
 *                --listen-fds FD[,FD...] --notify-fd FD --ipc-fd FD
 *                [--metrics-fd FD --metrics-slot N]
 *                [--release-claims-of PID[,PID...]] [--detached]
 *
 * It is not meant to be run by hand: every descriptor named is one the
 * master left open across the exec (master_spawn.c). --config-fd is a
 * sealed memfd holding the exact configuration text the master validated
 * for this generation; it is parsed here under the file's name, so errors
 * still read "talas.yaml:12:5: ...", and an edit of the file after a
 * reload never reaches this worker. --release-claims-of names the workers
 * that died since the master last started one: their encode claims are
 * released before this worker serves (worker.c), since the master itself
 * never writes to LMDB. --detached: the master runs detached, so after
 * parsing (relative paths resolve in the directory the master started in)
 * the worker moves to "/" as the master did. --metrics-fd is the master's
 * metrics memfd and --metrics-slot the slot this worker counts in
 * (core/metrics.h; -1: none free).
 *
 * main() builds struct talas_worker_args and calls talas_worker_main
 * (worker.c), which never returns.
 *
 * Logs: bad arguments and an unreadable or invalid configuration (exit 2,
 * which the master counts as dying young), to stderr until the
 * configuration's error log is open.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"
#include "core/util.h"
#include "worker/worker.h"

/* As the master's (master_conf.c). */
#define CONF_MAX_SIZE (4 * 1024 * 1024)

static _Noreturn void usage(const char *why)
{
    log_error("talas-worker: %s; talas-worker is started by talas-master, not by hand", why);
    exit(2);
}

/* FD must be a descriptor this process inherited; it is close-on-exec
 * again from now on. */
static int parse_fd(const char *opt, const char *s)
{
    char *end;
    long v;
    int flags;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < -1 || v > INT_MAX)
        usage(xasprintf("%s: \"%s\" is not a descriptor number", opt, s));
    if (v == -1)
        return -1;
    if ((flags = fcntl((int)v, F_GETFD)) == -1)
        usage(xasprintf("%s: descriptor %ld is not open: %s", opt, v, strerror(errno)));
    fcntl((int)v, F_SETFD, flags | FD_CLOEXEC);
    return (int)v;
}

static long parse_num(const char *opt, const char *s, long min, long max)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        usage(xasprintf("%s: \"%s\" is not a number in %ld..%ld", opt, s, min, max));
    return v;
}

/* Splits "a,b,c" into its COUNT parts (a malloc'd array of longs). */
static long *parse_list(const char *opt, const char *s, size_t *count_r)
{
    char *copy = xstrdup(s), *save = NULL, *tok;
    long *v = NULL;
    size_t n = 0;

    for (tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        v = xrealloc(v, (n + 1) * sizeof(*v));
        v[n++] = parse_num(opt, tok, 0, INT_MAX);
    }
    free(copy);
    *count_r = n;
    return v;
}

/* The configuration text of the memfd FD (read with pread: the master
 * and every worker of the generation share its file offset). */
static char *read_config(int fd, size_t *len_r)
{
    struct stat st;
    size_t len = 0;
    char *text;

    if (fstat(fd, &st) == -1)
        usage(xasprintf("--config-fd: fstat() failed: %s", strerror(errno)));
    if (st.st_size < 0 || st.st_size > CONF_MAX_SIZE)
        usage(xasprintf("--config-fd: %lld bytes is no configuration", (long long)st.st_size));
    text = xmalloc((size_t)st.st_size + 1);
    while (len < (size_t)st.st_size) {
        ssize_t n = pread(fd, text + len, (size_t)st.st_size - len, (off_t)len);
        if (n == -1 && errno == EINTR)
            continue;
        if (n <= 0)
            usage(xasprintf("--config-fd: pread() failed: %s", n == 0 ? "short read" : strerror(errno)));
        len += (size_t)n;
    }
    text[len] = '\0';
    *len_r = len;
    return text;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"config-fd", required_argument, NULL, 'c'},  {"config-name", required_argument, NULL, 'n'},
        {"slot", required_argument, NULL, 's'},       {"generation", required_argument, NULL, 'g'},
        {"listen-fds", required_argument, NULL, 'l'}, {"notify-fd", required_argument, NULL, 'N'},
        {"ipc-fd", required_argument, NULL, 'i'},     {"release-claims-of", required_argument, NULL, 'r'},
        {"detached", no_argument, NULL, 'd'},         {"metrics-fd", required_argument, NULL, 'm'},
        {"metrics-slot", required_argument, NULL, 'M'}, {NULL, 0, NULL, 0},
    };
    struct talas_worker_args args;
    struct talas_config *conf;
    const char *name = NULL, *listen_arg = NULL;
    long *list;
    size_t len, count;
    char *text, *error;
    int opt, conf_fd = -1, detached = 0, *fds;

    memset(&args, 0, sizeof(args));
    args.slot = -1;
    args.notify_fd = args.ipc_fd = args.metrics_fd = args.metrics_slot = -1;
    talas_log_set_role("worker");
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            conf_fd = parse_fd("--config-fd", optarg);
            break;
        case 'n':
            name = optarg;
            break;
        case 's':
            args.slot = (int)parse_num("--slot", optarg, 0, INT_MAX);
            break;
        case 'g':
            args.generation = (unsigned)parse_num("--generation", optarg, 0, UINT_MAX);
            break;
        case 'l':
            listen_arg = optarg;
            break;
        case 'N':
            args.notify_fd = parse_fd("--notify-fd", optarg);
            break;
        case 'i':
            args.ipc_fd = parse_fd("--ipc-fd", optarg);
            break;
        case 'r': {
            pid_t *pids;
            list = parse_list("--release-claims-of", optarg, &count);
            pids = xcalloc(count, sizeof(*pids));
            for (size_t i = 0; i < count; i++)
                pids[i] = (pid_t)list[i];
            free(list);
            args.release_pids = pids;
            args.release_count = count;
            break;
        }
        case 'd':
            detached = 1;
            break;
        case 'm':
            args.metrics_fd = parse_fd("--metrics-fd", optarg);
            break;
        case 'M':
            args.metrics_slot = (int)parse_num("--metrics-slot", optarg, -1, INT_MAX);
            break;
        default:
            usage("unknown option");
        }
    }
    if (optind != argc || conf_fd == -1 || name == NULL || args.slot == -1 || listen_arg == NULL)
        usage("--config-fd, --config-name, --slot and --listen-fds are required");

    text = read_config(conf_fd, &len);
    close(conf_fd);
    if (talas_config_load_string(name, text, len, &conf, &error) != 0) {
        log_error("%s", error);
        exit(2);
    }
    free(text);
    if (detached && chdir("/") == -1)
        log_warn("chdir(\"/\") failed: %s", strerror(errno));
    talas_log_set_level((enum talas_log_level)conf->log_level);
    if (talas_log_open(conf->log_error) == -1)
        log_error("log.error: open(\"%s\") failed: %s", conf->log_error, strerror(errno));

    list = parse_list("--listen-fds", listen_arg, &count);
    if (count != conf->listen_count + conf->grpc_listen_count) {
        log_error("talas-worker: %zu listening descriptor(s) for %zu address(es) in %s", count,
                  conf->listen_count + conf->grpc_listen_count, name);
        exit(2);
    }
    fds = xcalloc(count + 1, sizeof(*fds));
    for (size_t i = 0; i < count; i++) {
        char num[24];
        snprintf(num, sizeof(num), "%ld", list[i]);
        fds[i] = parse_fd("--listen-fds", num);
    }
    free(list);
    args.conf = conf;
    args.listen_fds = fds;
    talas_worker_main(&args);
}
