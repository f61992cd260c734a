/*
 * master_ctl.c - the master's end of the control socket (control.h): the
 * commands of talasctl that need the running master.
 *
 * Entry points (declared in master.h): talas_master_ctl_open,
 * talas_master_ctl_count, talas_master_ctl_pollfds,
 * talas_master_ctl_handle, talas_master_ctl_tick,
 * talas_master_ctl_reload_done, talas_master_ctl_close_in_child,
 * talas_master_ctl_close.
 *
 * Everything happens on the master's poll loop: the listening socket and
 * every client are non-blocking, a request is read as it arrives and an
 * answer written as the socket takes it. A client has CLIENT_TIMEOUT_MS to
 * send its request and read its answer; one that does not is dropped, so
 * a stuck talasctl never holds the master. "reload" and "stop" only set
 * the flags the signal handlers set (SIGHUP, SIGTERM): the loop then does
 * exactly what it does for the signals.
 *
 * Logs: the socket's creation and its errors, and each reload and stop
 * asked for through it.
 */
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/control.h"
#include "core/ipc.h"
#include "core/json.h"
#include "core/log.h"
#include "master/master.h"
#include "master/master_sig.h"
#include "core/util.h"

/* Time a client has to send its request, then to read its answer. */
#define CLIENT_TIMEOUT_MS 5000
/* Clients served at once; more wait in the listen queue. */
#define MAX_CLIENTS 32

enum client_state {
    CLIENT_READING, /* the request line is coming */
    CLIENT_RELOAD,  /* waits for a reload to end */
    CLIENT_WRITING, /* the answer is going out; closed once written */
    CLIENT_STOP,    /* answered; kept open until the master exits */
};

struct client {
    int fd;
    enum client_state state;
    struct talas_buf in;
    struct talas_buf out;
    size_t out_off;
    uint64_t deadline;      /* monotonic ms; none while waiting for a reload or the exit */
    unsigned reload_target; /* CLIENT_RELOAD: answered when reloads_done reaches it */
    unsigned reload_from;   /* ... the generation that served when asked */
};

struct talas_master_ctl {
    int fd;
    char *path;
    struct client clients[MAX_CLIENTS];
    size_t count;
};

static int listen_at(const char *path, const char *group, char **error_r)
{
    struct sockaddr_un sun;
    socklen_t len;
    struct group *gr = NULL;
    mode_t old_mask;
    int fd, dirfd, rc, probe;

    if (group != NULL && (gr = getgrnam(group)) == NULL) {
        *error_r = xasprintf("control.group: no group \"%s\" on this system", group);
        return -1;
    }
    /* a socket that answers belongs to a master that runs; one that does
     * not is left by a master that died, and goes */
    if ((probe = talas_control_connect(path)) != -1) {
        close(probe);
        *error_r = xasprintf("control.socket: a master already answers on \"%s\"", path);
        return -1;
    }
    if (errno == ECONNREFUSED && unlink(path) == 0)
        log_warn("removed the stale control socket \"%s\"", path);
    if (talas_control_sockaddr(path, &sun, &len, &dirfd) != 0) {
        *error_r = xasprintf("control.socket: \"%s\": %s", path, strerror(errno));
        return -1;
    }
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1) {
        *error_r = xasprintf("control.socket: socket() failed: %s", strerror(errno));
        goto fail;
    }
    /* created with its final mode: never a moment world-accessible */
    old_mask = umask(0777 & ~TALAS_CONTROL_MODE);
    rc = bind(fd, (struct sockaddr *)&sun, len);
    umask(old_mask);
    if (rc == -1) {
        *error_r = xasprintf("control.socket: bind(\"%s\") failed: %s", path, strerror(errno));
        goto fail;
    }
    if (chmod(path, TALAS_CONTROL_MODE) == -1 || (gr != NULL && chown(path, (uid_t)-1, gr->gr_gid) == -1)) {
        *error_r = xasprintf("control.socket: setting the mode and group of \"%s\" failed: %s", path,
                             strerror(errno));
        unlink(path);
        goto fail;
    }
    if (listen(fd, 16) == -1) {
        *error_r = xasprintf("control.socket: listen() failed: %s", strerror(errno));
        unlink(path);
        goto fail;
    }
    if (dirfd != -1)
        close(dirfd);
    return fd;

fail:
    if (fd != -1)
        close(fd);
    if (dirfd != -1)
        close(dirfd);
    return -1;
}

int talas_master_ctl_open(struct talas_master *m, char **error_r)
{
    int fd = listen_at(m->conf->control_socket, m->conf->control_group, error_r);

    if (fd == -1)
        return -1;
    m->ctl = xcalloc(1, sizeof(*m->ctl));
    m->ctl->fd = fd;
    m->ctl->path = xasprintf("%s", m->conf->control_socket);
    log_info("control socket \"%s\" ready", m->ctl->path);
    return 0;
}

static void client_close(struct talas_master_ctl *ctl, struct client *c)
{
    close(c->fd);
    talas_buf_free(&c->in);
    talas_buf_free(&c->out);
    *c = ctl->clients[--ctl->count];
}

static void answer(struct client *c, struct talas_buf *json, enum client_state next)
{
    talas_buf_append(&c->out, json->data, json->len);
    talas_buf_append(&c->out, "\n", 1);
    c->state = next;
    c->deadline = next == CLIENT_WRITING ? talas_now_ms() + CLIENT_TIMEOUT_MS : 0;
}

static void answer_error(struct client *c, const char *error)
{
    struct talas_buf b = {0};
    struct talas_json json;

    talas_json_init(&json, &b);
    talas_json_object_begin(&json);
    talas_json_key(&json, "ok");
    talas_json_bool(&json, 0);
    talas_json_key(&json, "error");
    talas_json_string(&json, error);
    talas_json_object_end(&json);
    answer(c, &b, CLIENT_WRITING);
    talas_buf_free(&b);
}

static int is_worker(const struct talas_child *c)
{
    return c->kind == TALAS_CHILD_WORKER;
}

/* "ok" when every worker's connections to a cluster engine are ready,
 * "degraded" when one is not or none holds one (core/metrics.h gauges,
 * which the workers keep: read, never waited for). */
static const char *engine_state(const struct talas_metrics_engine_gauges *g)
{
    uint64_t conns = atomic_load_explicit(&g->conns, memory_order_relaxed);
    uint64_t down = atomic_load_explicit(&g->down, memory_order_relaxed);

    return conns > 0 && down == 0 ? "ok" : "degraded";
}

/* The "cluster" member of status: null outside cluster mode, else the
 * node's name and the state of its engines as the workers count them, the
 * same figures /metrics shows as talas_redis_up and talas_postgres_up. */
static void status_cluster(struct talas_master *m, struct talas_json *json)
{
    struct talas_metrics_slot *sum;
    const char *redis, *postgres;

    talas_json_key(json, "cluster");
    if (!m->conf->cluster_enabled || m->metrics == NULL) {
        talas_json_null(json);
        return;
    }
    sum = xmalloc(sizeof(*sum));
    talas_metrics_sum(m->metrics, sum);
    redis = engine_state(&sum->gauge.redis);
    postgres = engine_state(&sum->gauge.postgres);
    talas_json_object_begin(json);
    talas_json_key(json, "node");
    talas_json_string(json, m->conf->cluster_node_name);
    talas_json_key(json, "status");
    talas_json_string(json, strcmp(redis, "ok") == 0 && strcmp(postgres, "ok") == 0 ? "ok" : "degraded");
    talas_json_key(json, "redis");
    talas_json_string(json, redis);
    talas_json_key(json, "postgres");
    talas_json_string(json, postgres);
    talas_json_object_end(json);
    free(sum);
}

static void cmd_status(struct talas_master *m, struct client *c)
{
    uint64_t now = talas_now_ms();
    pid_t scanner = 0;
    struct talas_buf b = {0};
    struct talas_json json;

    talas_json_init(&json, &b);
    talas_json_object_begin(&json);
    talas_json_key(&json, "ok");
    talas_json_bool(&json, 1);
    talas_json_key(&json, "pid");
    talas_json_int(&json, getpid());
    talas_json_key(&json, "version");
    talas_json_string(&json, PACKAGE_VERSION);
    talas_json_key(&json, "config");
    talas_json_string(&json, m->conf->file);
    talas_json_key(&json, "started_at");
    talas_json_uint(&json, m->started_wall_ms / 1000);
    talas_json_key(&json, "uptime_ms");
    talas_json_uint(&json, now - m->started_ms);
    talas_json_key(&json, "generation");
    talas_json_uint(&json, m->generation);
    talas_json_key(&json, "reloading");
    talas_json_bool(&json, m->prev_conf != NULL);
    talas_json_key(&json, "stopping");
    talas_json_bool(&json, m->stopping);
    talas_json_key(&json, "reloads");
    talas_json_uint(&json, m->reloads_done);
    talas_json_key(&json, "last_reload_error");
    if (m->last_reload_error != NULL)
        talas_json_string(&json, m->last_reload_error);
    else
        talas_json_null(&json);
    talas_json_key(&json, "workers_configured");
    talas_json_int(&json, m->conf->workers);
    talas_json_key(&json, "workers");
    talas_json_array_begin(&json);
    for (size_t i = 0; i < m->child_count; i++) {
        const struct talas_child *ch = &m->children[i];
        const struct talas_ipc_stats *s = talas_master_ipc_stats(ch);

        if (!is_worker(ch))
            continue;
        talas_json_object_begin(&json);
        talas_json_key(&json, "pid");
        talas_json_int(&json, ch->pid);
        talas_json_key(&json, "slot");
        talas_json_int(&json, ch->slot);
        talas_json_key(&json, "generation");
        talas_json_uint(&json, ch->generation);
        talas_json_key(&json, "uptime_ms");
        talas_json_uint(&json, now - ch->started_ms);
        talas_json_key(&json, "ready");
        talas_json_bool(&json, ch->ready);
        talas_json_key(&json, "retiring");
        talas_json_bool(&json, ch->retiring);
        talas_json_key(&json, "ws_connections");
        talas_json_uint(&json, s != NULL ? s->current_connections : 0);
        talas_json_key(&json, "ws_total_connections");
        talas_json_uint(&json, s != NULL ? s->total_connections : 0);
        talas_json_key(&json, "streams");
        talas_json_uint(&json, s != NULL ? s->open_streams : 0);
        talas_json_object_end(&json);
    }
    talas_json_array_end(&json);
    for (size_t i = 0; i < m->child_count; i++)
        if (m->children[i].kind == TALAS_CHILD_SCANNER)
            scanner = m->children[i].pid;
    talas_json_key(&json, "scanner_pid");
    if (scanner != 0)
        talas_json_int(&json, scanner);
    else
        talas_json_null(&json);
    status_cluster(m, &json);
    talas_json_object_end(&json);
    answer(c, &b, CLIENT_WRITING);
    talas_buf_free(&b);
}

static void stats_fields(struct talas_json *json, const struct talas_ipc_stats *s)
{
    talas_json_key(json, "current_connections");
    talas_json_uint(json, s->current_connections);
    talas_json_key(json, "total_connections");
    talas_json_uint(json, s->total_connections);
    talas_json_key(json, "messages_sent");
    talas_json_uint(json, s->messages_sent);
    talas_json_key(json, "messages_received");
    talas_json_uint(json, s->messages_received);
    talas_json_key(json, "events_broadcasted");
    talas_json_uint(json, s->events_broadcast);
    talas_json_key(json, "concurrent_listeners");
    talas_json_uint(json, s->open_streams);
}

static void stats_add(struct talas_ipc_stats *sum, const struct talas_ipc_stats *s)
{
    sum->current_connections += s->current_connections;
    sum->total_connections += s->total_connections;
    sum->messages_sent += s->messages_sent;
    sum->messages_received += s->messages_received;
    sum->events_broadcast += s->events_broadcast;
    sum->open_streams += s->open_streams;
}

/* The figures of every worker as /api/ws/stats shows them, from what the
 * workers last reported (at most STATS_PERIOD_MS of master_ipc.c old). */
static void cmd_ws_stats(struct talas_master *m, struct client *c)
{
    struct talas_ipc_stats sum = *talas_master_ipc_retired(m);
    struct talas_buf b = {0};
    struct talas_json json;

    /* the retired workers only count in the totals */
    sum.current_connections = 0;
    sum.open_streams = 0;
    for (size_t i = 0; i < m->child_count; i++) {
        const struct talas_ipc_stats *s = talas_master_ipc_stats(&m->children[i]);
        if (s != NULL)
            stats_add(&sum, s);
    }
    talas_json_init(&json, &b);
    talas_json_object_begin(&json);
    talas_json_key(&json, "ok");
    talas_json_bool(&json, 1);
    stats_fields(&json, &sum);
    talas_json_key(&json, "workers");
    talas_json_array_begin(&json);
    for (size_t i = 0; i < m->child_count; i++) {
        const struct talas_child *ch = &m->children[i];
        const struct talas_ipc_stats *s = talas_master_ipc_stats(ch);

        if (!is_worker(ch))
            continue;
        talas_json_object_begin(&json);
        talas_json_key(&json, "pid");
        talas_json_int(&json, ch->pid);
        talas_json_key(&json, "slot");
        talas_json_int(&json, ch->slot);
        if (s != NULL) {
            stats_fields(&json, s);
            talas_json_key(&json, "tracks");
            talas_json_array_begin(&json);
            for (uint32_t t = 0; t < s->track_count && t < TALAS_IPC_MAX_TRACKS; t++) {
                talas_json_object_begin(&json);
                talas_json_key(&json, "track_id");
                talas_json_string(&json, s->tracks[t].id);
                talas_json_key(&json, "listeners");
                talas_json_uint(&json, s->tracks[t].listeners);
                talas_json_object_end(&json);
            }
            talas_json_array_end(&json);
        }
        talas_json_object_end(&json);
    }
    talas_json_array_end(&json);
    talas_json_object_end(&json);
    answer(c, &b, CLIENT_WRITING);
    talas_buf_free(&b);
}

static void cmd_reload(struct talas_master *m, struct client *c)
{
    if (m->stopping) {
        answer_error(c, "the master is stopping");
        return;
    }
    log_info("reload asked for on the control socket");
    /* the reload in progress ends first, then the one asked for */
    c->reload_target = m->reloads_done + (m->prev_conf != NULL ? 2 : 1);
    c->reload_from = m->generation;
    c->state = CLIENT_RELOAD;
    c->deadline = 0;
    talas_master_got_hup = 1;
}

static void cmd_stop(struct talas_master *m, struct client *c)
{
    struct talas_buf b = {0};
    struct talas_json json;

    log_info("stop asked for on the control socket");
    talas_json_init(&json, &b);
    talas_json_object_begin(&json);
    talas_json_key(&json, "ok");
    talas_json_bool(&json, 1);
    talas_json_key(&json, "pid");
    talas_json_int(&json, getpid());
    talas_json_key(&json, "stopping");
    talas_json_bool(&json, 1);
    talas_json_key(&json, "shutdown_timeout_ms");
    talas_json_uint(&json, m->conf->shutdown_timeout_ms);
    talas_json_object_end(&json);
    answer(c, &b, CLIENT_STOP);
    talas_buf_free(&b);
    talas_master_got_term = 1;
}

/* "broadcast LEVEL TEXT": the event goes to every worker as if one of them
 * had published it (ws_hub.c delivers it to its connections). */
static void cmd_broadcast(struct talas_master *m, struct client *c, const char *args)
{
    static const char *const levels[] = {"Info", "Warning", "Error"};
    struct talas_buf event = {0}, frame = {0}, b = {0};
    struct talas_ipc_event ev;
    struct talas_json json;
    const char *level = NULL, *text = strchr(args, ' ');
    size_t workers = 0;

    for (size_t i = 0; i < TALAS_ARRAY_SIZE(levels) && text != NULL; i++)
        if ((size_t)(text - args) == strlen(levels[i]) && strncmp(args, levels[i], strlen(levels[i])) == 0)
            level = levels[i];
    if (level == NULL || text[1] == '\0') {
        answer_error(c, "usage: broadcast Info|Warning|Error TEXT");
        return;
    }
    text++;
    if (!talas_utf8_valid(text, strlen(text))) {
        answer_error(c, "the message is not UTF-8");
        return;
    }
    talas_json_init(&json, &event);
    talas_json_object_begin(&json);
    talas_json_key(&json, "event");
    talas_json_string(&json, "ServerMessage");
    talas_json_key(&json, "message");
    talas_json_string(&json, text);
    talas_json_key(&json, "level");
    talas_json_string(&json, level);
    talas_json_object_end(&json);
    memset(&ev, 0, sizeof(ev));
    ev.origin_pid = (uint32_t)getpid();
    ev.target = TALAS_WS_TO_ALL;
    ev.json = event.data;
    ev.json_len = event.len;
    if (talas_ipc_event_encode(&frame, &ev) != 0) {
        answer_error(c, "the message is too long");
        goto out;
    }
    for (size_t i = 0; i < m->child_count; i++)
        workers += is_worker(&m->children[i]);
    talas_master_ipc_send_all(m, frame.data, frame.len);
    talas_json_init(&json, &b);
    talas_json_object_begin(&json);
    talas_json_key(&json, "ok");
    talas_json_bool(&json, 1);
    talas_json_key(&json, "workers");
    talas_json_uint(&json, workers);
    talas_json_object_end(&json);
    answer(c, &b, CLIENT_WRITING);
out:
    talas_buf_free(&event);
    talas_buf_free(&frame);
    talas_buf_free(&b);
}

static void dispatch(struct talas_master *m, struct client *c, char *line)
{
    char *args = strchr(line, ' ');

    if (args != NULL)
        *args++ = '\0';
    else
        args = "";
    if (strcmp(line, "status") == 0 && *args == '\0')
        cmd_status(m, c);
    else if (strcmp(line, "ws-stats") == 0 && *args == '\0')
        cmd_ws_stats(m, c);
    else if (strcmp(line, "reload") == 0 && *args == '\0')
        cmd_reload(m, c);
    else if (strcmp(line, "stop") == 0 && *args == '\0')
        cmd_stop(m, c);
    else if (strcmp(line, "broadcast") == 0)
        cmd_broadcast(m, c, args);
    else
        answer_error(c, "unknown command (status, ws-stats, reload, stop, broadcast LEVEL TEXT)");
}

/* Reads what the client sent; -1 when it must be dropped. */
static int client_read(struct talas_master *m, struct client *c)
{
    char *nl;

    for (;;) {
        ssize_t n;
        talas_buf_reserve(&c->in, 1024);
        n = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len, 0);
        if (n == 0)
            return -1; /* gone: nobody reads the answer */
        if (n == -1) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        }
        if (c->state != CLIENT_READING) {
            c->in.len = 0; /* nothing more is expected: ignored */
            continue;
        }
        c->in.len += (size_t)n;
        if ((nl = memchr(c->in.data, '\n', c->in.len)) != NULL)
            break;
        if (c->in.len > TALAS_CONTROL_MAX_REQUEST) {
            answer_error(c, "request too long");
            return 0;
        }
    }
    *nl = '\0';
    if (nl > c->in.data && nl[-1] == '\r')
        nl[-1] = '\0';
    if (strlen(c->in.data) != (size_t)(nl - c->in.data) &&
        strlen(c->in.data) + 1 != (size_t)(nl - c->in.data))
        answer_error(c, "NUL byte in the request");
    else
        dispatch(m, c, c->in.data);
    c->in.len = 0;
    return 0;
}

/* Writes what the socket takes; -1 when the client must go (gone, or
 * fully answered and not waiting for the exit). */
static int client_write(struct client *c)
{
    while (c->out_off < c->out.len) {
        ssize_t n = send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);
        if (n == -1) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        }
        c->out_off += (size_t)n;
    }
    return c->state == CLIENT_WRITING && c->out_off == c->out.len ? -1 : 0;
}

size_t talas_master_ctl_count(const struct talas_master *m)
{
    return m->ctl != NULL ? 1 + m->ctl->count : 0;
}

size_t talas_master_ctl_pollfds(struct talas_master *m, struct pollfd *pfd, size_t max)
{
    struct talas_master_ctl *ctl = m->ctl;
    size_t n = 0;

    if (ctl == NULL || max == 0)
        return 0;
    pfd[n].fd = ctl->count < MAX_CLIENTS ? ctl->fd : -1;
    pfd[n].events = POLLIN;
    pfd[n++].revents = 0;
    for (size_t i = 0; i < ctl->count && n < max; i++) {
        struct client *c = &ctl->clients[i];
        pfd[n].fd = c->fd;
        pfd[n].events = POLLIN | (c->out_off < c->out.len ? POLLOUT : 0);
        pfd[n++].revents = 0;
    }
    return n;
}

static void accept_clients(struct talas_master_ctl *ctl)
{
    while (ctl->count < MAX_CLIENTS) {
        int fd = accept4(ctl->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        struct client *c;

        if (fd == -1) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
                log_error("%s: accept4() on the control socket failed: %s", __func__, strerror(errno));
            return;
        }
        c = &ctl->clients[ctl->count++];
        memset(c, 0, sizeof(*c));
        c->fd = fd;
        c->state = CLIENT_READING;
        c->deadline = talas_now_ms() + CLIENT_TIMEOUT_MS;
    }
}

void talas_master_ctl_handle(struct talas_master *m, const struct pollfd *pfd, size_t n)
{
    struct talas_master_ctl *ctl = m->ctl;

    if (ctl == NULL || n == 0)
        return;
    /* clients first: accepting may move them in the table */
    for (size_t k = 1; k < n; k++) {
        if (pfd[k].revents == 0)
            continue;
        for (size_t i = 0; i < ctl->count; i++) {
            struct client *c = &ctl->clients[i];
            if (c->fd != pfd[k].fd)
                continue;
            if (((pfd[k].revents & (POLLIN | POLLHUP | POLLERR)) && client_read(m, c) != 0) ||
                client_write(c) != 0)
                client_close(ctl, c);
            break;
        }
    }
    if (pfd[0].revents & POLLIN)
        accept_clients(ctl);
}

void talas_master_ctl_reload_done(struct talas_master *m, const char *error)
{
    m->reloads_done++;
    m->last_reload_ok = error == NULL;
    free(m->last_reload_error);
    m->last_reload_error = error != NULL ? xasprintf("%s", error) : NULL;
}

static void answer_reload(struct talas_master *m, struct client *c)
{
    struct talas_buf b = {0};
    struct talas_json json;

    talas_json_init(&json, &b);
    talas_json_object_begin(&json);
    talas_json_key(&json, "ok");
    talas_json_bool(&json, m->last_reload_ok);
    if (!m->last_reload_ok) {
        talas_json_key(&json, "error");
        talas_json_string(&json, m->last_reload_error != NULL ? m->last_reload_error : "reload failed");
    }
    talas_json_key(&json, "previous_generation");
    talas_json_uint(&json, c->reload_from);
    talas_json_key(&json, "generation");
    talas_json_uint(&json, m->generation);
    talas_json_key(&json, "workers");
    talas_json_array_begin(&json);
    for (size_t i = 0; i < m->child_count; i++)
        if (is_worker(&m->children[i]) && m->children[i].generation == m->generation)
            talas_json_int(&json, m->children[i].pid);
    talas_json_array_end(&json);
    talas_json_object_end(&json);
    answer(c, &b, CLIENT_WRITING);
    talas_buf_free(&b);
}

int talas_master_ctl_tick(struct talas_master *m, uint64_t now)
{
    struct talas_master_ctl *ctl = m->ctl;
    int timeout = 1000;

    if (ctl == NULL)
        return timeout;
    for (size_t i = 0; i < ctl->count;) {
        struct client *c = &ctl->clients[i];
        if (c->state == CLIENT_RELOAD && m->stopping) {
            answer_error(c, "the master is stopping");
        } else if (c->state == CLIENT_RELOAD && (int)(m->reloads_done - c->reload_target) >= 0) {
            answer_reload(m, c);
        }
        if (c->out_off < c->out.len && client_write(c) != 0) {
            client_close(ctl, c);
            continue;
        }
        if (c->deadline != 0 && now >= c->deadline) {
            client_close(ctl, c);
            continue;
        }
        if (c->deadline != 0 && (int)(c->deadline - now) < timeout)
            timeout = (int)(c->deadline - now);
        i++;
    }
    return timeout < 1 ? 1 : timeout;
}

void talas_master_ctl_close_in_child(struct talas_master *m)
{
    if (m->ctl == NULL)
        return;
    close(m->ctl->fd);
    for (size_t i = 0; i < m->ctl->count; i++)
        close(m->ctl->clients[i].fd);
}

void talas_master_ctl_close(struct talas_master *m)
{
    struct talas_master_ctl *ctl = m->ctl;

    if (ctl == NULL)
        return;
    while (ctl->count > 0)
        client_close(ctl, &ctl->clients[0]);
    close(ctl->fd);
    if (unlink(ctl->path) == -1 && errno != ENOENT)
        log_warn("%s: unlink(\"%s\") failed: %s", __func__, ctl->path, strerror(errno));
    free(ctl->path);
    free(ctl);
    m->ctl = NULL;
    free(m->last_reload_error);
    m->last_reload_error = NULL;
}
