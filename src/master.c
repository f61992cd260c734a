/*
 * master.c - talas-master: main(), startup, the supervision loop, reload
 * and stop.
 *
 *   talas-master [-c FILE] [-d] [-t] [-T] [-V] [-h]
 *
 * Startup: read the configuration; check that the storage opens; open the
 * listening sockets (before daemonizing, so errors reach the terminal);
 * write the pid file; start the library scanner and the workers; then poll
 * the self-pipe (signals) and the status pipe (worker readiness).
 *
 * Reload (SIGHUP): a configuration that fails to load or to listen is
 * logged and the running one keeps serving. A good one becomes a new
 * generation: its workers start on the same sockets, and the old ones get
 * SIGTERM once the new ones accept connections, so no response in flight
 * is dropped. Every reload also rescans the library.
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
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "daemon.h"
#include "log.h"
#include "master.h"
#include "master_sig.h"
#include "storage.h"
#include "util.h"

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

/* Checks what -t can check without side effects: the TLS files load. */
static int check_tls(const struct talas_config *conf)
{
    int ok = 1;

    for (size_t i = 0; i < conf->listen_count; i++) {
        const struct talas_config_listen *l = &conf->listen[i];
        SSL_CTX *ctx;

        if (l->tls_certificate == NULL)
            continue;
        ctx = SSL_CTX_new(TLS_server_method());
        if (SSL_CTX_use_certificate_chain_file(ctx, l->tls_certificate) != 1) {
            fprintf(stderr, "%s: listen %s:%d: tls.certificate: cannot load \"%s\"\n", conf->file, l->host, l->port,
                    l->tls_certificate);
            ok = 0;
        } else if (SSL_CTX_use_PrivateKey_file(ctx, l->tls_key, SSL_FILETYPE_PEM) != 1 ||
                   SSL_CTX_check_private_key(ctx) != 1) {
            fprintf(stderr, "%s: listen %s:%d: tls.key: cannot load \"%s\" or it does not match the certificate\n",
                    conf->file, l->host, l->port, l->tls_key);
            ok = 0;
        }
        SSL_CTX_free(ctx);
    }
    return ok ? 0 : -1;
}

/* Opens the storage once, creating it, so that a bad path or map size is
 * reported at startup rather than by every worker. */
static int check_storage(const struct talas_config *conf, char **error_r)
{
    struct talas_storage *st;

    if (talas_storage_open(conf->storage_path, conf->storage_map_size, &st, error_r) != 0)
        return -1;
    talas_storage_close(st);
    return 0;
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

/* The directory talas-master started in: relative paths in the
 * configuration (and a relative -c FILE) keep meaning the same thing on a
 * reload after daemonizing moved the master to "/". */
static int start_dir_fd = -1;

static int load_config(const char *file, struct talas_config **conf_r, char **error_r)
{
    int rc;

    if (start_dir_fd != -1 && fchdir(start_dir_fd) == -1) {
        *error_r = xasprintf("fchdir() to the start directory failed: %s", strerror(errno));
        return -1;
    }
    rc = talas_config_load(file, conf_r, error_r);
    if (start_dir_fd != -1 && chdir("/") == -1)
        log_warn("%s: chdir(\"/\") failed: %s", __func__, strerror(errno));
    return rc;
}

static void reload(struct talas_master *m, const char *file)
{
    struct talas_config *conf, *old = m->conf;
    char *error = NULL;

    log_info("reloading \"%s\"", file);
    if (load_config(file, &conf, &error) != 0) {
        log_error("reload failed, keeping the running configuration: %s", error);
        free(error);
        return;
    }
    if (check_storage(conf, &error) != 0 || talas_listen_set_prepare(m->listen, conf, &error) != 0) {
        log_error("reload failed, keeping the running configuration: %s", error);
        free(error);
        talas_config_free(conf);
        return;
    }
    apply_logging(conf);
    m->conf = conf;
    m->generation++;
    free(m->slots);
    start_generation(m);
    m->retire_pending = 1;
    m->retire_deadline = talas_now_ms() + TALAS_READY_TIMEOUT_MS;
    m->scan_pending = 1;
    /* children have their own copy of the old configuration */
    talas_config_free(old);
    log_info("reloaded: generation %u with %d worker(s)", m->generation, m->conf->workers);
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
    struct pollfd pfd[2];

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

    memset(&m, 0, sizeof(m));
    talas_log_set_role("master");
    if (talas_config_load(file, &m.conf, &error) != 0) {
        fprintf(stderr, "%s\n", error);
        if (test)
            fprintf(stderr, "talas-master: configuration file %s test failed\n", file);
        return 1;
    }
    if (test) {
        if (check_tls(m.conf) != 0) {
            fprintf(stderr, "talas-master: configuration file %s test failed\n", file);
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
    if (check_storage(m.conf, &error) != 0) {
        fprintf(stderr, "talas-master: %s\n", error);
        return 1;
    }
    if (talas_log_open(m.conf->log_error) == -1) {
        fprintf(stderr, "talas-master: log.error: open(\"%s\") failed: %s\n", m.conf->log_error, strerror(errno));
        return 1;
    }
    m.listen = talas_listen_set_new();
    if (talas_listen_set_prepare(m.listen, m.conf, &error) != 0) {
        fprintf(stderr, "talas-master: %s\n", error);
        fatal("%s", error);
    }
    if (detach) {
        if ((start_dir_fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
            fatal("open(\".\") failed: %s", strerror(errno));
        if (talas_daemonize() == -1)
            fatal("daemonizing failed: %s", strerror(errno));
    }
    if (m.conf->pid_file != NULL && talas_pidfile_create(m.conf->pid_file, &error) != 0) {
        if (!detach && talas_log_fd() != 2)
            fprintf(stderr, "talas-master: %s\n", error);
        fatal("%s", error);
    }

    sig_fd = talas_master_sig_init();
    if (pipe2(m.notify_fd, O_CLOEXEC | O_NONBLOCK) == -1)
        fatal("pipe2() failed: %s", strerror(errno));
    /* workers write to it with plain blocking writes of a few bytes */
    fcntl(m.notify_fd[1], F_SETFL, 0);

    log_info("talas-master %s starting with %d worker(s), configuration \"%s\"", PACKAGE_VERSION, m.conf->workers,
             m.conf->file);
    talas_master_spawn_scanner(&m);
    start_generation(&m);

    pfd[0].fd = sig_fd;
    pfd[0].events = POLLIN;
    pfd[1].fd = m.notify_fd[0];
    pfd[1].events = POLLIN;
    for (;;) {
        int timeout = talas_master_tick(&m);

        if (m.stopping && m.child_count == 0)
            break;
        if (poll(pfd, 2, timeout) == -1 && errno != EINTR)
            fatal("poll() failed: %s", strerror(errno));
        talas_master_sig_drain();
        if (pfd[1].revents & POLLIN)
            talas_master_read_notify(&m);
        if (talas_master_got_chld) {
            talas_master_got_chld = 0;
            talas_master_reap(&m);
        }
        if (talas_master_got_term) {
            talas_master_got_term = 0;
            begin_stop(&m);
        }
        if (talas_master_got_hup) {
            talas_master_got_hup = 0;
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
    talas_pidfile_remove();
    talas_config_free(m.conf);
    free(m.slots);
    free(m.children);
    return 0;
}
