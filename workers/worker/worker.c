/*
 * worker.c - the life of an HTTP worker process.
 *
 * Entry point: talas_worker_main, called by main() of the talas-worker
 * program (main.c), which the master execs in each child. It builds
 * everything a worker owns (h2o configuration, event loop and context, the
 * LMDB handle, TLS contexts), releases the encode claims of the workers
 * that died before it (the master never writes to LMDB), starts accepting
 * on the listening sockets the master opened, tells the master it is ready,
 * and runs the loop. Signals only set flags and write to a self-pipe that the
 * loop watches (Postfix master_sig.c):
 *
 *   SIGTERM, SIGINT, SIGQUIT  graceful stop: close the listeners, ask HTTP/2 peers to
 *                    go away (GOAWAY), let responses in flight finish, exit
 *                    when no connection is left or shutdown_timeout passes
 *   SIGUSR1          reopen the error and access logs
 *   SIGHUP           ignored (the master reloads by replacing workers)
 *
 * Logs: start and stop, failures to start (exit status 2, which the master
 * counts as dying young), the claims of dead workers it released, and the
 * state of the shutdown.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <h2o.h>
#include <h2o/http1.h>
#include <h2o/http2.h>

#include "worker/access_log.h"
#include "http/conn_limits.h"
#include "subsonic/http_subsonic.h"
#include "core/daemon.h"
#include "grpc/grpc_server.h"
#include "http/http_limits.h"
#include "http/http_metrics.h"
#include "media/cover_jobs.h"
#include "media/peaks_jobs.h"
#include "http/http_router.h"
#include "http/http_session.h"
#include "media/transcode_jobs.h"
#include "media/transcode_limit.h"
#include "worker/worker_pool.h"
#include "core/log.h"
#include "worker/tls.h"
#include "core/util.h"
#include "worker/worker.h"
#include "worker/worker_ctx.h"
#include "realtime/version_events.h"
#include "realtime/ws_hub.h"
#include "store/cache.h"
#include "store/pg_schema.h"
#include "state/state.h"
#include "cluster/cluster_bus.h"

struct listener {
    h2o_accept_ctx_t accept_ctx;
    h2o_socket_t *sock;
};

static struct {
    const struct talas_config *conf;
    int slot;
    unsigned generation;
    struct talas_storage *storage;
    struct talas_token *auth;
    h2o_globalconf_t globalconf;
    h2o_context_t ctx;
    struct listener *listeners;
    size_t listener_count;
    size_t connections;
    int sig_pipe[2];
    h2o_socket_t *sig_sock;
    int stopping;
    uint64_t deadline_ms;
    struct talas_pool *pool;
} w;

/* What handlers and modules borrow (worker_ctx.h): filled once the loop,
 * the store and the pool exist, before the first request. */
static struct talas_worker_ctx wctx;

static volatile sig_atomic_t got_term, got_usr1;

static void on_signal(int signo)
{
    int saved_errno = errno;

    if (signo == SIGUSR1)
        got_usr1 = 1;
    else
        got_term = 1;
    if (write(w.sig_pipe[1], "", 1) == -1) {
        /* the pipe is full: a wake-up is already pending */
    }
    errno = saved_errno;
}

static void setup_signals(void)
{
    struct sigaction sa;
    sigset_t all;

    if (pipe2(w.sig_pipe, O_CLOEXEC | O_NONBLOCK) == -1)
        fatal("%s: pipe2() failed: %s", __func__, strerror(errno));
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGQUIT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGPIPE, &sa, NULL);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGCHLD, &sa, NULL);
    /* the master forks with all signals blocked */
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
}

static void on_conn_close(void *data)
{
    talas_conn_close(data);
    w.connections--;
}

static void on_accept(h2o_socket_t *listen_sock, const char *err)
{
    struct listener *l = listen_sock->data;
    struct talas_conn *conn;
    h2o_socket_t *sock;
    int i;

    if (err != NULL)
        return;
    /* a bounded batch per wake-up keeps accepting fair to the rest */
    for (i = 0; i < 64; i++) {
        if ((sock = h2o_evloop_socket_accept(listen_sock)) == NULL)
            break;
        /* http.max_connections and http.max_connections_per_ip: the
         * client sees the connection closed before any byte is read */
        if ((conn = talas_conn_open(sock)) == NULL) {
            h2o_socket_close(sock);
            continue;
        }
        w.connections++;
        sock->on_close.cb = on_conn_close;
        sock->on_close.data = conn;
        h2o_accept(&l->accept_ctx, sock);
    }
}

static void begin_stop(void)
{
    if (w.stopping)
        return;
    w.stopping = 1;
    w.deadline_ms = talas_now_ms() + w.conf->shutdown_timeout_ms;
    for (size_t i = 0; i < w.listener_count; i++) {
        if (w.listeners[i].sock != NULL) {
            h2o_socket_read_stop(w.listeners[i].sock);
            h2o_socket_close(w.listeners[i].sock);
            w.listeners[i].sock = NULL;
        }
    }
    h2o_context_request_shutdown(&w.ctx);
    talas_ws_hub_shutdown();
    talas_grpc_server_stop();
    /* Encodes go on: the responses in flight (and the HLS segments asked
     * on connections still open) need their next chunks. They are
     * cancelled when the loop ends, at the deadline at the latest. */
    log_info("graceful stop: %zu connection(s) left", w.connections);
}

static void on_signal_pipe(h2o_socket_t *sock, const char *err)
{
    h2o_buffer_consume(&sock->input, sock->input->size);
    if (got_usr1) {
        got_usr1 = 0;
        if (talas_log_open(w.conf->log_error) == -1)
            log_error("reopening \"%s\" failed: %s", w.conf->log_error, strerror(errno));
        talas_access_log_reopen();
    }
    if (got_term)
        begin_stop();
}

static void add_access_log(h2o_pathconf_t *pathconf)
{
    char *error;

    if (talas_access_log_register(pathconf, w.conf, &error) != 0) {
        log_error("access log: %s", error);
        exit(2);
    }
}

static void register_path(h2o_hostconf_t *hostconf, const char *path)
{
    h2o_pathconf_t *pathconf = h2o_config_register_path(hostconf, path, 0);

    talas_limits_register(pathconf, w.conf);
    /* the context is filled in later, before the first request */
    talas_router_register(pathconf, &wctx);
    add_access_log(pathconf);
    talas_metrics_http_register(pathconf, &wctx);
}

static void setup_h2o(void)
{
    h2o_hostconf_t *hostconf;
    h2o_pathconf_t *pathconf;

    h2o_config_init(&w.globalconf);
    w.globalconf.server_name = h2o_iovec_init(H2O_STRLIT("talas/" PACKAGE_VERSION));
    w.globalconf.max_request_entity_size = w.conf->http_max_request_body;
    w.globalconf.http1.req_timeout = w.conf->http_request_timeout_ms;
    w.globalconf.http2.idle_timeout = w.conf->http2_idle_timeout_ms;
    w.globalconf.http2.graceful_shutdown_timeout = w.conf->shutdown_timeout_ms;
    w.globalconf.http2.max_concurrent_requests_per_connection = (size_t)w.conf->http2_max_concurrent_streams;
    w.globalconf.filecache.capacity = 256;

    hostconf = h2o_config_register_host(&w.globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    if (w.conf->http_www_root != NULL) {
        /* the application's routes go to the router; everything else is a
         * static file of the web player */
        static const char *index_files[] = {"index.html", NULL};
        static const char *const routed[] = {"/api", "/stream", "/preview", "/hls", "/metrics", "/s"};
        for (size_t i = 0; i < sizeof(routed) / sizeof(routed[0]); i++)
            register_path(hostconf, routed[i]);
        pathconf = h2o_config_register_path(hostconf, "/", 0);
        talas_limits_register(pathconf, w.conf);
        h2o_file_register(pathconf, w.conf->http_www_root, index_files, NULL, 0);
        add_access_log(pathconf);
        talas_metrics_http_register(pathconf, &wctx);
    } else {
        register_path(hostconf, "/");
    }
}

static void setup_listeners(const int *fds)
{
    w.listener_count = w.conf->listen_count;
    w.listeners = xcalloc(w.listener_count, sizeof(*w.listeners));
    for (size_t i = 0; i < w.listener_count; i++) {
        const struct talas_config_listen *lc = &w.conf->listen[i];
        struct listener *l = &w.listeners[i];
        char *error;

        l->accept_ctx.ctx = &w.ctx;
        l->accept_ctx.hosts = w.globalconf.hosts;
        if (lc->tls_certificate != NULL) {
            l->accept_ctx.ssl_ctx = talas_tls_context_new(lc->tls_certificate, lc->tls_key, &error);
            if (l->accept_ctx.ssl_ctx == NULL) {
                log_error("listen %s:%d: %s", lc->host, lc->port, error);
                exit(2);
            }
        }
        l->sock = h2o_evloop_socket_create(w.ctx.loop, fds[i], H2O_SOCKET_FLAG_DONT_READ);
        l->sock->data = l;
        h2o_socket_read_start(l->sock, on_accept);
    }
}

static void notify_ready(int fd)
{
    struct talas_worker_ready_msg msg = {getpid(), w.generation};

    if (fd == -1)
        return;
    if (write(fd, &msg, sizeof(msg)) != (ssize_t)sizeof(msg))
        log_warn("%s: write() to the master failed: %s", __func__, strerror(errno));
    close(fd);
}

/* The encode claims of dead workers would make single flight wait on
 * chunks nobody encodes: the master only tells us their pids (it does
 * not write to LMDB), and we release them before serving. Claims of other
 * dead processes are reaped too; a claimer also takes over a claim whose
 * holder is gone (cache.c), so this is prompt cleanup, not the only way. */
static void release_dead_claims(const struct talas_worker_args *args)
{
    size_t n;

    for (size_t i = 0; i < args->release_count; i++) {
        n = 0;
        if (talas_cache_release_pid(w.storage, args->release_pids[i], &n) != 0)
            log_error("%s: releasing the encode claims of dead worker %d failed", __func__,
                      (int)args->release_pids[i]);
        else
            log_info("released %zu encode claim(s) of dead worker %d", n, (int)args->release_pids[i]);
    }
    n = 0;
    if (talas_cache_claims_reap(w.storage, NULL, &n) == 0 && n > 0)
        log_info("released %zu stale encode claim(s) of dead processes", n);
}

/* The slot this worker counts in: its own of the master's segment, else
 * memory of its own that no scrape sees (logged). */
static void map_metrics(const struct talas_worker_args *args)
{
    struct talas_metrics_header *hdr = NULL;
    char *error;

    if (args->metrics_fd != -1) {
        if (talas_metrics_map(args->metrics_fd, &hdr, &error) != 0) {
            log_error("metrics: %s; /metrics answers 503", error);
            free(error);
            hdr = NULL;
        }
        close(args->metrics_fd);
    }
    wctx.metrics_node = hdr;
    if (hdr != NULL && args->metrics_slot >= 0 && (unsigned)args->metrics_slot < hdr->slot_count) {
        wctx.metrics = talas_metrics_slot(hdr, (unsigned)args->metrics_slot);
        /* the master zeroed them when it gave the slot; a gauge of a
         * previous owner must never show as ours */
        talas_metrics_reset_gauges(wctx.metrics);
        /* so is the census table: a previous owner's counts are not ours */
        wctx.census = talas_census_table(hdr, (unsigned)args->metrics_slot);
        talas_census_clear(wctx.census);
    } else {
        if (hdr != NULL)
            log_warn("metrics: no slot of the node's figures is free: this worker's are left out of /metrics");
        wctx.metrics = xcalloc(1, sizeof(*wctx.metrics));
    }
}

/* How long an open file descriptor is reused before the file is reopened. */
#define FILECACHE_VALID_MS 1000

void talas_worker_main(const struct talas_worker_args *args)
{
    uint64_t filecache_cleared_at = 0;
    h2o_evloop_t *loop;
    char *error, *pg_password = NULL;

    w.conf = args->conf;
    w.slot = args->slot;
    w.generation = args->generation;
    talas_log_set_role("worker");
    setup_signals();
    /* before dropping privileges: key files may be readable by root only */
    if (talas_token_create(w.conf, &w.auth, &error) != 0) {
        log_error("%s", error);
        exit(2);
    }
    if (w.conf->cluster_postgres_password_file != NULL &&
        talas_pg_password_read(w.conf->cluster_postgres_password_file, &pg_password, &error) != 0) {
        log_error("%s", error);
        exit(2);
    }
    /* the Redis password file, too (cluster mode; NULL otherwise) */
    if (talas_cluster_bus_create(w.conf, args->slot, &wctx.cluster, &error) != 0) {
        log_error("%s", error);
        exit(2);
    }
    /* subsonic.password_key_file, likewise */
    if (talas_subsonic_setup(w.conf, &error) != 0) {
        log_error("%s", error);
        exit(2);
    }
    talas_drop_privileges(w.conf->user, w.conf->group);

    if (talas_storage_open(w.conf->storage_path, w.conf->storage_map_size, &w.storage, &error) != 0) {
        log_error("%s", error);
        exit(2);
    }
    setup_h2o();
    loop = h2o_evloop_create();
    h2o_context_init(&w.ctx, loop, &w.globalconf);
    /* encoding runs on these threads, never on the loop (transcode_jobs.c) */
    if ((w.pool = talas_pool_create(loop, (unsigned)w.conf->transcode_threads, &error)) == NULL) {
        log_error("%s", error);
        exit(2);
    }
    wctx.conf = w.conf;
    wctx.storage = w.storage;
    wctx.token = w.auth;
    wctx.pool = w.pool;
    wctx.loop = loop;
    wctx.slot = w.slot;
    wctx.generation = w.generation;
    map_metrics(args);
    if (wctx.cluster != NULL)
        talas_cluster_bus_count_into(wctx.cluster, wctx.metrics);
    /* LiveStats: the hub counts the listeners that media responses report */
    wctx.counters.stream_started = talas_ws_hub_count_stream;
    wctx.counters.data = NULL;
    /* cluster.postgres: the record store's connection, made on the loop */
    talas_state_open(&wctx, pg_password);
    free(pg_password);
    talas_conn_limits_init(&wctx);
    talas_transcode_jobs_init(&wctx);
    release_dead_claims(args);
    talas_peaks_jobs_init(&wctx);
    talas_cover_jobs_init(&wctx);
    talas_transcode_limit_init(&wctx);
    talas_ws_hub_init(&wctx, args->ipc_fd);
    talas_version_events_init(&wctx); /* slot 0: the scanner's TrackVersionAdded */
    setup_listeners(args->listen_fds);
    /* the gRPC sockets follow the HTTP ones (listen.h) */
    if (talas_grpc_server_start(&wctx, args->listen_fds + w.conf->listen_count, &error) != 0) {
        log_error("%s", error);
        exit(2);
    }
    w.sig_sock = h2o_evloop_socket_create(loop, w.sig_pipe[0], 0);
    h2o_socket_read_start(w.sig_sock, on_signal_pipe);
    notify_ready(args->notify_fd);
    log_info("worker %d (generation %u) serving", w.slot, w.generation);

    /* a stop requested before the pipe joined the loop */
    if (got_term)
        begin_stop();
    for (;;) {
        uint64_t now;

        h2o_evloop_run(loop, 1000);
        /* Open files are shared by the requests of a whole second, then
         * opened and stat()ed afresh: a replaced file is seen within a
         * second (nginx's open_file_cache valid=), and a truncated one ends
         * the responses that outrun it (http_stream.c) instead of being
         * padded. h2o's own server clears on every iteration, which costs
         * an open/fstat/close per iteration for the same file. */
        if ((now = talas_now_ms()) - filecache_cleared_at >= FILECACHE_VALID_MS) {
            h2o_filecache_clear(w.ctx.filecache);
            filecache_cleared_at = now;
        }
        talas_session_api_tick(&wctx);
        if (w.stopping) {
            if (w.connections == 0 && talas_grpc_server_connections() == 0)
                break;
            if (talas_now_ms() >= w.deadline_ms) {
                log_warn("graceful stop: shutdown_timeout reached with %zu connection(s) left",
                         w.connections);
                break;
            }
        }
    }
    log_info("worker %d (generation %u) stopped", w.slot, w.generation);
    /* the encoders were told to stop (talas_transcode_jobs_stop): they
     * return within a frame, and no cache write is cut in half */
    talas_transcode_jobs_stop();
    talas_peaks_jobs_stop();
    talas_cover_jobs_stop();
    talas_pool_destroy(w.pool);
    talas_transcode_limit_stop();
    talas_storage_close(w.storage);
    talas_token_free(w.auth);
    exit(0);
}
