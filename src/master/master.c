/*
 * master.c - talas-master: main(), startup, the supervision loop, reload
 * and stop.
 *
 *   talas-master [-c FILE] [-d] [-t] [-T] [-V] [-h]
 *
 * Startup: forbid LMDB writes in this process (storage.h: the master never
 * waits on the writer lock); find the worker program (talas-worker); read
 * the configuration; check the storage read-only; open the listening
 * sockets (before daemonizing, so errors reach the terminal); write the pid
 * file; create the metrics segment (core/metrics.h); start the library
 * scanner and the workers; then poll the
 * self-pipe (signals) and the status pipe (worker readiness).
 *
 * Each generation keeps the exact text of its configuration
 * (master_conf.c): its workers parse that text, not the file.
 *
 * Reload (SIGHUP): a configuration that fails to load, to listen, or the
 * checks the master can make (TLS files, token and backend key files,
 * storage, access log) is logged
 * and the running one keeps serving. A good one becomes a new generation:
 * its workers start on the same sockets, and the old ones get SIGTERM once
 * every new one accepts connections, so no response in flight is dropped.
 * New workers that are not ready within TALAS_READY_TIMEOUT_MS roll the
 * reload back. Every reload also rescans the library.
 *
 * Stop (SIGTERM, SIGINT, SIGQUIT): workers stop accepting and finish their
 * responses; after shutdown_timeout the stragglers are killed.
 *
 * Logs: startup, reloads and their errors, stop, and (master_spawn.c) the
 * life and death of every child.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "core/token.h"
#include "core/daemon.h"
#include "master/file_modes.h"
#include "core/log.h"
#include "master/master.h"
#include "master/master_sig.h"
#include "store/storage.h"
#include "core/util.h"

#define DEFAULT_CONFIG SYSCONFDIR "/talas/talas.yaml"

static void usage(FILE *fp)
{
    fprintf(fp, "usage: talas-master [-c FILE] [-d] [-t] [-T] [-V] [-h]\n"
                "  -c FILE  configuration file (default: " DEFAULT_CONFIG ")\n"
                "  -d       detach and run in the background (also: daemonize: true)\n"
                "  -t       check the configuration and exit (0: good, 1: errors)\n"
                "  -T       check the configuration, print it with defaults, and exit\n"
                "  -V       print the version and exit\n"
                "  -h       print this help and exit\n");
}

/* Checks that the TLS files of every listener load and match. */
static int check_tls(const struct talas_config *conf, char **error_r)
{
    for (size_t i = 0; i < conf->listen_count; i++) {
        const struct talas_config_listen *l = &conf->listen[i];
        SSL_CTX *ctx;
        int ok;

        if (l->tls_certificate == NULL)
            continue;
        ctx = SSL_CTX_new(TLS_server_method());
        if (SSL_CTX_use_certificate_chain_file(ctx, l->tls_certificate) != 1) {
            *error_r = xasprintf("%s: listen %s:%d: tls.certificate: cannot load \"%s\"", conf->file, l->host,
                                 l->port, l->tls_certificate);
            ok = 0;
        } else if (SSL_CTX_use_PrivateKey_file(ctx, l->tls_key, SSL_FILETYPE_PEM) != 1 ||
                   SSL_CTX_check_private_key(ctx) != 1) {
            *error_r = xasprintf("%s: listen %s:%d: tls.key: cannot load \"%s\" or it does not match the "
                                 "certificate",
                                 conf->file, l->host, l->port, l->tls_key);
            ok = 0;
        } else {
            ok = 1;
        }
        SSL_CTX_free(ctx);
        if (!ok)
            return -1;
    }
    return 0;
}

/* Creates the storage directory and opens an existing environment
 * read-only, so that a bad path or map size is reported at startup rather
 * than by every worker. The first worker or the scanner creates the
 * environment: the master never writes to it. */
static int check_storage(const struct talas_config *conf, char **error_r)
{
    return talas_storage_check(conf->storage_path, conf->storage_map_size, error_r);
}

static void apply_logging(const struct talas_config *conf)
{
    talas_log_set_level((enum talas_log_level)conf->log_level);
    if (talas_log_open(conf->log_error) == -1)
        log_error("%s: open(\"%s\") failed: %s", __func__, conf->log_error, strerror(errno));
}

static void start_generation(struct talas_master *m)
{
    m->slots = xcalloc((size_t)m->conf->workers, sizeof(*m->slots));
    for (int i = 0; i < m->conf->workers; i++)
        talas_master_spawn_worker(m, i);
}

/* m->start_dir_fd is the directory talas-master started in: relative
 * paths in the configuration (and a relative -c FILE) keep meaning the
 * same thing on a reload after daemonizing moved the master to "/" (and
 * in the workers, which parse the same text there: master_spawn.c). */
static int load_config(struct talas_master *m, const char *file, struct talas_config **conf_r, int *fd_r,
                       char **error_r)
{
    int rc;

    if (m->start_dir_fd != -1 && fchdir(m->start_dir_fd) == -1) {
        *error_r = xasprintf("fchdir() to the start directory failed: %s", strerror(errno));
        return -1;
    }
    rc = talas_master_conf_load(file, conf_r, fd_r, error_r);
    if (m->start_dir_fd != -1 && chdir("/") == -1)
        log_warn("%s: chdir(\"/\") failed: %s", __func__, strerror(errno));
    return rc;
}

/* Workers and the scanner run as "user:" when it is set: the files the
 * master creates for them as root must be theirs. */
static void give_to_user(const struct talas_config *conf)
{
    static const char *const storage_files[] = {"", "/data.mdb", "/lock.mdb", "/scan.lock"};
    const char *logs[] = {conf->log_error, conf->log_access};
    struct passwd *pw;
    struct group *gr;
    gid_t gid;

    if (conf->user == NULL || geteuid() != 0 || (pw = getpwnam(conf->user)) == NULL)
        return;
    gid = conf->group != NULL && (gr = getgrnam(conf->group)) != NULL ? gr->gr_gid : pw->pw_gid;
    for (size_t i = 0; i < sizeof(storage_files) / sizeof(storage_files[0]); i++) {
        char *path = xasprintf("%s%s", conf->storage_path, storage_files[i]);
        if (chown(path, pw->pw_uid, gid) == -1 && errno != ENOENT)
            log_warn("%s: chown(\"%s\") failed: %s", __func__, path, strerror(errno));
        free(path);
    }
    for (size_t i = 0; i < sizeof(logs) / sizeof(logs[0]); i++)
        if (logs[i] != NULL && strcmp(logs[i], "stderr") != 0 && chown(logs[i], pw->pw_uid, gid) == -1 &&
            errno != ENOENT)
            log_warn("%s: chown(\"%s\") failed: %s", __func__, logs[i], strerror(errno));
}

/* What a worker needs and the master can check in advance, so that most
 * bad reloads fail here with a clear message instead of as dying workers. */
/* Loads the token keys and the backend key as every worker will, so that a
 * missing, empty or wrong key file fails the start, the reload or -t. */
static int check_auth(const struct talas_config *conf, char **error_r)
{
    struct talas_token *auth;

    if (talas_token_create(conf, &auth, error_r) != 0)
        return -1;
    talas_token_free(auth);
    return 0;
}

/* group: names a group that exists, and only beside user: (a group alone
 * would leave the processes root). */
static int check_group(const struct talas_config *conf, char **error_r)
{
    if (conf->group == NULL)
        return 0;
    if (conf->user == NULL) {
        *error_r = xasprintf("%s: group: needs user:", conf->file);
        return -1;
    }
    if (getgrnam(conf->group) == NULL) {
        *error_r = xasprintf("%s: group: no group \"%s\" on this system", conf->file, conf->group);
        return -1;
    }
    return 0;
}

static int check_runtime(const struct talas_config *conf, char **error_r)
{
    if (check_auth(conf, error_r) != 0)
        return -1;
    if (conf->user != NULL && getpwnam(conf->user) == NULL) {
        *error_r = xasprintf("%s: user: no user \"%s\" on this system", conf->file, conf->user);
        return -1;
    }
    if (check_group(conf, error_r) != 0)
        return -1;
    if (check_tls(conf, error_r) != 0 || check_storage(conf, error_r) != 0)
        return -1;
    if (conf->log_access != NULL && strcmp(conf->log_access, "stderr") != 0) {
        int fd = open(conf->log_access, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (fd == -1) {
            *error_r = xasprintf("log.access: open(\"%s\") failed: %s", conf->log_access, strerror(errno));
            return -1;
        }
        close(fd);
    }
    /* after the logs exist: workers running as user: reopen them (SIGUSR1) */
    if (conf->user != NULL && conf->log_error != NULL && strcmp(conf->log_error, "stderr") != 0) {
        int fd = open(conf->log_error, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (fd != -1)
            close(fd);
    }
    give_to_user(conf);
    return 0;
}

static void reload(struct talas_master *m, const char *file)
{
    struct talas_config *conf;
    char *error = NULL;
    int conf_fd;

    if (m->prev_conf != NULL) {
        /* one reload at a time: this one starts when the current ends */
        m->reload_queued = 1;
        return;
    }
    log_info("reloading \"%s\"", file);
    if (load_config(m, file, &conf, &conf_fd, &error) != 0) {
        log_error("reload failed, keeping the running configuration: %s", error);
        talas_master_ctl_reload_done(m, error);
        free(error);
        return;
    }
    if (check_runtime(conf, &error) != 0 || talas_listen_set_prepare(m->listen, conf, &error) != 0) {
        log_error("reload failed, keeping the running configuration: %s", error);
        talas_master_ctl_reload_done(m, error);
        free(error);
        talas_config_free(conf);
        close(conf_fd);
        /* sockets opened for the failed configuration must not stay in
         * the SO_REUSEPORT group with nobody accepting on them */
        talas_listen_set_prune(m->listen, m->conf);
        return;
    }
    apply_logging(conf);
    talas_file_modes_check(conf);
    m->prev_conf = m->conf;
    m->prev_conf_fd = m->conf_fd;
    m->prev_slots = m->slots;
    m->prev_generation = m->generation;
    m->conf = conf;
    m->conf_fd = conf_fd;
    m->generation = ++m->generation_seq;
    m->reload_deadline = talas_now_ms() + TALAS_READY_TIMEOUT_MS;
    start_generation(m);
    m->scan_pending = 1;
    log_info("reloading: generation %u starting with %d worker(s)", m->generation, m->conf->workers);
}

static void begin_stop(struct talas_master *m)
{
    if (m->stopping)
        return;
    m->stopping = 1;
    m->stop_deadline = talas_now_ms() + m->conf->shutdown_timeout_ms + 1000;
    log_info("stopping: waiting for %zu child(ren) to finish", m->child_count);
    talas_master_signal_children(m, SIGTERM, -1);
    /* the master's copies go too, so that new connections are refused as
     * soon as the workers close theirs */
    talas_listen_set_prune(m->listen, NULL);
}

int main(int argc, char **argv)
{
    struct talas_master m;
    const char *file = DEFAULT_CONFIG;
    int opt, test = 0, dump = 0, detach = 0, sig_fd;
    char *error = NULL;
    struct pollfd *pfd = NULL;
    size_t pfd_cap = 0;

    while ((opt = getopt(argc, argv, "c:dtTVh")) != -1) {
        switch (opt) {
        case 'c':
            file = optarg;
            break;
        case 'd':
            detach = 1;
            break;
        case 't':
            test = 1;
            break;
        case 'T':
            test = dump = 1;
            break;
        case 'V':
            printf("talas-master %s\n", PACKAGE_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 1;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 1;
    }

    /* before anything can open the storage: a write here aborts */
    talas_storage_forbid_writes();
    memset(&m, 0, sizeof(m));
    m.conf_fd = m.prev_conf_fd = m.start_dir_fd = m.metrics_fd = -1;
    m.config_file = file;
    talas_log_set_role("master");
    if (load_config(&m, file, &m.conf, test ? NULL : &m.conf_fd, &error) != 0) {
        fprintf(stderr, "%s\n", error);
        if (test)
            fprintf(stderr, "talas-master: configuration file %s test failed\n", file);
        free(error);
        return 1;
    }
    /* a master that cannot start workers must not start at all */
    if ((m.worker_program = talas_master_worker_program(&error)) == NULL) {
        fprintf(stderr, "talas-master: %s\n", error);
        if (test)
            fprintf(stderr, "talas-master: configuration file %s test failed\n", file);
        free(error);
        talas_config_free(m.conf);
        return 1;
    }
    if (test) {
        free(m.worker_program);
        talas_file_modes_check(m.conf);
        if (check_tls(m.conf, &error) != 0 || check_auth(m.conf, &error) != 0 ||
            check_group(m.conf, &error) != 0) {
            fprintf(stderr, "%s\ntalas-master: configuration file %s test failed\n", error, file);
            free(error);
            talas_config_free(m.conf);
            return 1;
        }
        if (dump)
            talas_config_dump(m.conf, stdout);
        fprintf(stderr, "talas-master: configuration file %s test is successful\n", file);
        talas_config_free(m.conf);
        return 0;
    }
    detach = detach || m.conf->daemonize;

    talas_log_set_level((enum talas_log_level)m.conf->log_level);
    if (check_runtime(m.conf, &error) != 0) {
        fprintf(stderr, "talas-master: %s\n", error);
        free(error);
        free(m.worker_program);
        talas_config_free(m.conf);
        return 1;
    }
    if (detach && strcmp(m.conf->log_error, "stderr") == 0)
        fprintf(stderr, "talas-master: warning: log.error is stderr, which is /dev/null once detached: "
                        "set log.error to a file to see what happens\n");
    if (talas_log_open(m.conf->log_error) == -1) {
        fprintf(stderr, "talas-master: log.error: open(\"%s\") failed: %s\n", m.conf->log_error,
                strerror(errno));
        free(m.worker_program);
        talas_config_free(m.conf);
        return 1;
    }
    talas_file_modes_check(m.conf);
    m.listen = talas_listen_set_new();
    if (talas_listen_set_prepare(m.listen, m.conf, &error) != 0) {
        fprintf(stderr, "talas-master: %s\n", error);
        fatal("%s", error);
    }
    if (detach) {
        if ((m.start_dir_fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
            fatal("open(\".\") failed: %s", strerror(errno));
        if (talas_daemonize() == -1)
            fatal("daemonizing failed: %s", strerror(errno));
    }
    if (m.conf->pid_file != NULL && talas_pidfile_create(m.conf->pid_file, &error) != 0) {
        if (!detach && talas_log_fd() != 2)
            fprintf(stderr, "talas-master: %s\n", error);
        fatal("%s", error);
    }

    m.started_ms = talas_now_ms();
    m.started_wall_ms = talas_wall_ms();
    if (talas_master_ctl_open(&m, &error) != 0) {
        if (!detach && talas_log_fd() != 2)
            fprintf(stderr, "talas-master: %s\n", error);
        talas_pidfile_remove();
        fatal("%s", error);
    }
    sig_fd = talas_master_sig_init();
    if (pipe2(m.notify_fd, O_CLOEXEC | O_NONBLOCK) == -1)
        fatal("pipe2() failed: %s", strerror(errno));
    /* workers write to it with plain blocking writes of a few bytes */
    fcntl(m.notify_fd[1], F_SETFL, 0);
    /* before the first worker, for as long as the master lives: counters
     * must not go back on a respawn or a reload */
    if (talas_metrics_create(&m.metrics_fd, &m.metrics, &error) != 0)
        fatal("metrics: %s", error);

    log_info("talas-master %s starting with %d worker(s), configuration \"%s\", worker program \"%s\"",
             PACKAGE_VERSION, m.conf->workers, m.conf->file, m.worker_program);
    talas_master_spawn_scanner(&m);
    start_generation(&m);

    for (;;) {
        int timeout = talas_master_tick(&m), ipc_timeout = talas_master_ipc_tick(&m, talas_now_ms());
        int ctl_timeout = talas_master_ctl_tick(&m, talas_now_ms());
        size_t nipc, nctl;

        if (m.stopping && m.child_count == 0)
            break;
        if (ipc_timeout < timeout)
            timeout = ipc_timeout;
        if (ctl_timeout < timeout)
            timeout = ctl_timeout;
        /* the self-pipe, the status pipe, then one channel per worker */
        if (pfd_cap < 2 + m.child_count + talas_master_ctl_count(&m)) {
            pfd_cap = 2 + m.child_count + talas_master_ctl_count(&m) + 16;
            pfd = xrealloc(pfd, pfd_cap * sizeof(*pfd));
        }
        pfd[0].fd = sig_fd;
        pfd[0].events = POLLIN;
        pfd[1].fd = m.notify_fd[0];
        pfd[1].events = POLLIN;
        pfd[0].revents = pfd[1].revents = 0;
        nipc = talas_master_ipc_pollfds(&m, pfd + 2, pfd_cap - 2);
        nctl = talas_master_ctl_pollfds(&m, pfd + 2 + nipc, pfd_cap - 2 - nipc);
        if (poll(pfd, 2 + nipc + nctl, timeout) == -1 && errno != EINTR)
            fatal("poll() failed: %s", strerror(errno));
        talas_master_sig_drain();
        if (pfd[1].revents & POLLIN)
            talas_master_read_notify(&m);
        talas_master_ipc_handle(&m, pfd + 2, nipc);
        talas_master_ctl_handle(&m, pfd + 2 + nipc, nctl);
        if (talas_master_got_chld) {
            talas_master_got_chld = 0;
            talas_master_reap(&m);
        }
        if (talas_master_got_term) {
            talas_master_got_term = 0;
            begin_stop(&m);
        }
        if (talas_master_got_hup || (m.reload_queued && m.prev_conf == NULL)) {
            talas_master_got_hup = 0;
            m.reload_queued = 0;
            if (!m.stopping)
                reload(&m, file);
        }
        if (talas_master_got_usr1) {
            talas_master_got_usr1 = 0;
            if (talas_log_open(m.conf->log_error) == -1)
                log_error("reopening \"%s\" failed: %s", m.conf->log_error, strerror(errno));
            talas_master_signal_children(&m, SIGUSR1, TALAS_CHILD_WORKER);
            log_info("logs reopened");
        }
    }
    log_info("stopped");
    talas_master_ctl_close(&m);
    talas_pidfile_remove();
    talas_listen_set_free(m.listen);
    talas_config_free(m.prev_conf);
    free(m.prev_slots);
    talas_config_free(m.conf);
    if (m.prev_conf_fd != -1)
        close(m.prev_conf_fd);
    close(m.conf_fd);
    free(m.slots);
    free(m.children);
    free(m.release_pids);
    free(m.worker_program);
    free(pfd);
    return 0;
}
