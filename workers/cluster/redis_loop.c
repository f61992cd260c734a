/*
 * redis_loop.c - a Redis connection on a worker's h2o event loop, with the
 * timeouts and reconnection that hiredis 0.14 leaves to its user
 * (redis_loop.h).
 *
 * Entry points: talas_redis_conn_new, talas_redis_conn_subscriber,
 * talas_redis_conn_command, talas_redis_conn_state,
 * talas_redis_conn_counters, talas_redis_conn_count_into,
 * talas_redis_conn_free.
 *
 * The adapter. hiredis asks for read and write readiness through the
 * hooks of redisAsyncContext.ev; here the socket is wrapped as an h2o
 * socket that h2o does not read itself (H2O_SOCKET_FLAG_DONT_READ):
 * addRead/delRead start and stop h2o's read notifications, addWrite asks
 * for one write notification (h2o cannot take one back, so delWrite does
 * nothing and a late notification finds nothing to write), and cleanup
 * closes the h2o socket, which closes the descriptor, and tells hiredis so
 * (c.fd = -1). The hooks' data (struct glue) lives exactly as long as the
 * hiredis context, so a context freed late by hiredis (a free asked from
 * one of its callbacks is deferred) never reaches a freed connection.
 *
 * The connection. ac->data points to the connection while the context is
 * the current one, and is cleared when it is given up: every hiredis
 * callback checks it first. A tick every 100 ms drives the rest: the
 * reconnect delay, the connect deadline, the idle ping and its deadline.
 *
 * Metrics (core/metrics.h, once talas_redis_conn_count_into gave a slot):
 * the connections held and those not ready (talas_redis_up), commands sent
 * through talas_redis_conn_command (not the pings), the failed ones (not
 * sent, error answer, no answer), reconnection attempts, round trips.
 *
 * Logs: the first failure after a success (warn), the return of a
 * connection that had failed (info); never one line per retry.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <hiredis/async.h>

#include "cluster/redis_loop.h"
#include "core/log.h"
#include "core/util.h"

#define TICK_MS 100

struct glue {
    redisAsyncContext *ac;
    h2o_socket_t *sock;
    int writing;
};

struct talas_redis_conn {
    h2o_loop_t *loop;
    char *name;
    char *unix_path; /* "unix:" addresses */
    char *host;      /* else a numeric address, resolved once */
    int port;
    char *password;
    char *channel; /* a subscriber's */
    talas_redis_message_fn on_message;
    talas_redis_ready_fn ready;
    talas_redis_down_fn down;
    void *data;

    redisAsyncContext *ac; /* the current context, NULL between attempts */
    int is_ready;
    int failing; /* a failure was logged and no success since */
    char why[256];
    uint32_t backoff_ms;
    uint64_t reconnect_at;
    uint64_t connect_deadline;
    uint64_t last_reply_ms;
    uint64_t ping_sent_ms; /* 0: no ping in flight */
    h2o_timeout_t tick;
    h2o_timeout_entry_t tick_entry;
    struct talas_redis_counters counters;
    struct talas_metrics_slot *metrics; /* NULL: counts nothing there */
    int counted_down;                   /* counted in metrics->gauge.redis.down */
};

struct command {
    struct talas_redis_conn *conn;
    talas_redis_reply_fn fn;
    void *data;
    uint64_t sent_us;
};

/* ---------------------------------------------------------------- adapter */

static void on_sock_read(h2o_socket_t *sock, const char *err)
{
    struct glue *g = sock->data;

    redisAsyncHandleRead(g->ac);
}

static void on_sock_write(h2o_socket_t *sock, const char *err)
{
    struct glue *g = sock->data;

    g->writing = 0;
    redisAsyncHandleWrite(g->ac);
}

static void hook_add_read(void *privdata)
{
    struct glue *g = privdata;

    if (g != NULL && !h2o_socket_is_reading(g->sock))
        h2o_socket_read_start(g->sock, on_sock_read);
}

static void hook_del_read(void *privdata)
{
    struct glue *g = privdata;

    if (g != NULL && h2o_socket_is_reading(g->sock))
        h2o_socket_read_stop(g->sock);
}

static void hook_add_write(void *privdata)
{
    struct glue *g = privdata;

    /* h2o asserts that one notification is asked at a time */
    if (g != NULL && !g->writing) {
        g->writing = 1;
        h2o_socket_notify_write(g->sock, on_sock_write);
    }
}

static void hook_del_write(void *privdata)
{
}

static void hook_cleanup(void *privdata)
{
    struct glue *g = privdata;

    if (g == NULL)
        return;
    h2o_socket_close(g->sock);
    /* h2o closed the descriptor: hiredis must not close it again (it may
     * already belong to another socket) */
    g->ac->c.fd = -1;
    g->ac->ev.data = NULL;
    g->ac->ev.cleanup = NULL;
    free(g);
}

static void attach(struct talas_redis_conn *conn, redisAsyncContext *ac)
{
    struct glue *g = xcalloc(1, sizeof(*g));

    g->ac = ac;
    g->sock = h2o_evloop_socket_create(conn->loop, ac->c.fd, H2O_SOCKET_FLAG_DONT_READ);
    g->sock->data = g;
    ac->ev.data = g;
    ac->ev.addRead = hook_add_read;
    ac->ev.delRead = hook_del_read;
    ac->ev.addWrite = hook_add_write;
    ac->ev.delWrite = hook_del_write;
    ac->ev.cleanup = hook_cleanup;
}

/* ------------------------------------------------------------------ state */

/* Keeps the node's count of connections not ready (talas_redis_up). */
static void count_down(struct talas_redis_conn *conn, int down)
{
    if (conn->metrics == NULL || conn->counted_down == down)
        return;
    if (down)
        talas_metrics_add(&conn->metrics->gauge.redis.down, 1);
    else
        talas_metrics_sub(&conn->metrics->gauge.redis.down, 1);
    conn->counted_down = down;
}

static void become_ready(struct talas_redis_conn *conn)
{
    conn->is_ready = 1;
    conn->backoff_ms = REDIS_BACKOFF_MIN_MS;
    conn->ping_sent_ms = 0;
    conn->counters.connects++;
    count_down(conn, 0);
    snprintf(conn->why, sizeof(conn->why), "ok");
    if (conn->failing)
        log_info("redis %s: connected again%s", conn->name, conn->channel != NULL ? ", subscribed" : "");
    else
        log_debug("redis %s: connected%s", conn->name, conn->channel != NULL ? ", subscribed" : "");
    conn->failing = 0;
    if (conn->ready != NULL)
        conn->ready(conn, conn->data);
}

/* The current attempt or connection is over (its context already given
 * up): note why, and try again after the backoff. */
static void failed(struct talas_redis_conn *conn, int was_ready, const char *why)
{
    conn->is_ready = 0;
    conn->ping_sent_ms = 0;
    count_down(conn, 1);
    if (was_ready)
        conn->counters.disconnects++;
    else
        conn->counters.connect_failures++;
    snprintf(conn->why, sizeof(conn->why), "%s", why != NULL && *why != '\0' ? why : "connection failed");
    if (!conn->failing) {
        log_warn("redis %s: %s: %s (retrying every %u ms up to %u ms; realtime events stay on this node)",
                 conn->name, was_ready ? "connection lost" : "cannot connect", conn->why,
                 (unsigned)conn->backoff_ms, (unsigned)REDIS_BACKOFF_MAX_MS);
        conn->failing = 1;
    }
    conn->reconnect_at = talas_now_ms() + conn->backoff_ms;
    conn->backoff_ms =
        conn->backoff_ms * 2 > REDIS_BACKOFF_MAX_MS ? REDIS_BACKOFF_MAX_MS : conn->backoff_ms * 2;
    if (conn->down != NULL)
        conn->down(conn, conn->why, conn->data);
}

/* Gives up the current context for WHY (a timeout, a refused AUTH). */
static void drop(struct talas_redis_conn *conn, const char *why)
{
    redisAsyncContext *ac = conn->ac;
    int was_ready = conn->is_ready;
    char reason[256];

    snprintf(reason, sizeof(reason), "%s", why);
    conn->ac = NULL;
    conn->is_ready = 0;
    if (ac != NULL) {
        ac->data = NULL;
        /* commands in flight get a NULL reply; deferred by hiredis when
         * called from one of its callbacks */
        redisAsyncFree(ac);
    }
    failed(conn, was_ready, reason);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct talas_redis_conn *conn = ac->data;

    if (conn == NULL || status == REDIS_OK)
        return;
    /* hiredis frees the context after this */
    conn->ac = NULL;
    failed(conn, 0, ac->errstr);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct talas_redis_conn *conn = ac->data;
    int was_ready;

    if (conn == NULL)
        return;
    was_ready = conn->is_ready;
    conn->ac = NULL;
    failed(conn, was_ready, status == REDIS_OK ? "closed" : ac->errstr);
}

static int error_reply(const redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_ERROR;
}

/* R answers CMD, one of the connection's own commands (AUTH, PING,
 * SUBSCRIBE): the server is alive; an error answer gives the context up.
 * Returns -1 when it did, else 0. */
static int own_reply(struct talas_redis_conn *conn, const redisReply *r, const char *cmd)
{
    char why[200];

    conn->last_reply_ms = talas_now_ms();
    if (!error_reply(r))
        return 0;
    snprintf(why, sizeof(why), "%s refused: %.160s", cmd, r->str);
    drop(conn, why);
    return -1;
}

static void on_auth(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct talas_redis_conn *conn = ac->data;
    redisReply *r = reply;

    if (conn == NULL || r == NULL)
        return;
    own_reply(conn, r, "AUTH");
}

static void on_pong(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct talas_redis_conn *conn = ac->data;
    redisReply *r = reply;

    if (conn == NULL || r == NULL)
        return;
    conn->ping_sent_ms = 0;
    /* NOAUTH: a password is needed, or was refused */
    if (own_reply(conn, r, "PING") != 0)
        return;
    if (!conn->is_ready)
        become_ready(conn);
}

/* Every reply on a subscribed connection: confirmations of SUBSCRIBE
 * (the first one, and each repeat that serves as a ping) and messages. */
static void on_subscribed(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct talas_redis_conn *conn = ac->data;
    redisReply *r = reply, *kind;

    if (conn == NULL || r == NULL)
        return;
    if (own_reply(conn, r, "SUBSCRIBE") != 0)
        return;
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 || r->element[0]->type != REDIS_REPLY_STRING)
        return;
    kind = r->element[0];
    if (strcasecmp(kind->str, "subscribe") == 0) {
        conn->ping_sent_ms = 0;
        if (!conn->is_ready)
            become_ready(conn);
    } else if (strcasecmp(kind->str, "message") == 0 && r->element[2]->type == REDIS_REPLY_STRING) {
        if (conn->on_message != NULL)
            conn->on_message(conn, r->element[2]->str, r->element[2]->len, conn->data);
    }
}

static void send_subscribe(struct talas_redis_conn *conn)
{
    const char *argv[2] = {"SUBSCRIBE", conn->channel};

    redisAsyncCommandArgv(conn->ac, on_subscribed, NULL, 2, argv, NULL);
}

static void send_ping(struct talas_redis_conn *conn)
{
    const char *argv[1] = {"PING"};

    conn->ping_sent_ms = talas_now_ms();
    if (conn->channel != NULL)
        send_subscribe(conn);
    else
        redisAsyncCommandArgv(conn->ac, on_pong, NULL, 1, argv, NULL);
}

static void start_connect(struct talas_redis_conn *conn)
{
    redisAsyncContext *ac;
    char why[200];

    if (conn->failing && conn->metrics != NULL)
        talas_metrics_add(&conn->metrics->count.redis.reconnects, 1);
    if (conn->unix_path != NULL)
        ac = redisAsyncConnectUnix(conn->unix_path);
    else if (conn->host != NULL)
        ac = redisAsyncConnect(conn->host, conn->port);
    else {
        failed(conn, 0, conn->why); /* the name did not resolve at start */
        return;
    }
    if (ac == NULL) {
        failed(conn, 0, "redisAsyncConnect() failed: out of memory");
        return;
    }
    if (ac->err != 0) {
        /* refused at once (no such socket, nobody listening) */
        snprintf(why, sizeof(why), "%.190s", ac->errstr);
        redisAsyncFree(ac);
        failed(conn, 0, why);
        return;
    }
    attach(conn, ac);
    ac->data = conn;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    conn->ac = ac;
    conn->connect_deadline = talas_now_ms() + REDIS_CONNECT_TIMEOUT_MS;
    /* while retrying, the last failure stays the reason given */
    if (!conn->failing)
        snprintf(conn->why, sizeof(conn->why), "connecting");
    /* queued now, written once connected; the reply to the last one makes
     * the connection ready */
    if (conn->password != NULL) {
        const char *argv[2] = {"AUTH", conn->password};
        redisAsyncCommandArgv(ac, on_auth, NULL, 2, argv, NULL);
    }
    if (conn->channel != NULL)
        send_subscribe(conn);
    else
        send_ping(conn);
    conn->ping_sent_ms = 0;
}

static void on_tick(h2o_timeout_entry_t *entry)
{
    struct talas_redis_conn *conn = H2O_STRUCT_FROM_MEMBER(struct talas_redis_conn, tick_entry, entry);
    uint64_t now = talas_now_ms();

    if (conn->ac == NULL) {
        if (now >= conn->reconnect_at)
            start_connect(conn);
    } else if (!conn->is_ready) {
        if (now >= conn->connect_deadline)
            drop(conn, "no answer within the connect timeout (2 s)");
    } else if (conn->ping_sent_ms != 0) {
        if (now - conn->ping_sent_ms >= REDIS_PING_TIMEOUT_MS) {
            conn->counters.ping_timeouts++;
            drop(conn, "no answer to a ping within 3 s");
        }
    } else if (now - conn->last_reply_ms >= REDIS_PING_INTERVAL_MS) {
        send_ping(conn);
    }
    h2o_timeout_link(conn->loop, &conn->tick, &conn->tick_entry);
}

/* ---------------------------------------------------------------- the API */

static void set_address(struct talas_redis_conn *conn, const char *address)
{
    const char *colon;
    char *host;
    struct addrinfo hints, *res = NULL;
    int rc;

    if (strncmp(address, "unix:", 5) == 0) {
        conn->unix_path = xstrdup(address + 5);
        return;
    }
    /* HOST:PORT or [V6]:PORT, checked by the configuration */
    colon = strrchr(address, ':');
    if (address[0] == '[')
        host = xstrndup(address + 1, (size_t)(colon - address - 2));
    else
        host = xstrndup(address, (size_t)(colon - address));
    conn->port = atoi(colon + 1);
    /* hiredis would resolve a name with getaddrinfo() on every attempt,
     * on the loop: it is resolved here, once, as the worker starts */
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    if ((rc = getaddrinfo(host, NULL, &hints, &res)) == 0 && res != NULL) {
        char num[INET6_ADDRSTRLEN];
        if (getnameinfo(res->ai_addr, res->ai_addrlen, num, sizeof(num), NULL, 0, NI_NUMERICHOST) == 0)
            conn->host = xstrdup(num);
    }
    if (conn->host == NULL)
        snprintf(conn->why, sizeof(conn->why),
                 "cannot resolve \"%s\": %s (resolved once, as the worker starts)", host,
                 rc != 0 ? gai_strerror(rc) : "no address");
    if (res != NULL)
        freeaddrinfo(res);
    free(host);
}

struct talas_redis_conn *talas_redis_conn_new(h2o_loop_t *loop, const char *address, const char *password,
                                              const char *name, talas_redis_ready_fn ready,
                                              talas_redis_down_fn down, void *data)
{
    struct talas_redis_conn *conn = xcalloc(1, sizeof(*conn));

    conn->loop = loop;
    conn->name = xstrdup(name);
    conn->password = password != NULL ? xstrdup(password) : NULL;
    conn->ready = ready;
    conn->down = down;
    conn->data = data;
    conn->backoff_ms = REDIS_BACKOFF_MIN_MS;
    snprintf(conn->why, sizeof(conn->why), "connecting");
    set_address(conn, address);
    h2o_timeout_init(loop, &conn->tick, TICK_MS);
    conn->tick_entry.cb = on_tick;
    /* the first attempt on the first tick, once the caller set everything */
    conn->reconnect_at = 0;
    h2o_timeout_link(loop, &conn->tick, &conn->tick_entry);
    return conn;
}

void talas_redis_conn_subscriber(struct talas_redis_conn *conn, const char *channel,
                                 talas_redis_message_fn on_message)
{
    free(conn->channel);
    conn->channel = xstrdup(channel);
    conn->on_message = on_message;
}

void talas_redis_conn_count_into(struct talas_redis_conn *conn, struct talas_metrics_slot *slot)
{
    if (conn->metrics != NULL || slot == NULL)
        return;
    conn->metrics = slot;
    talas_metrics_add(&slot->gauge.redis.conns, 1);
    count_down(conn, !conn->is_ready);
}

void talas_redis_conn_free(struct talas_redis_conn *conn)
{
    if (conn == NULL)
        return;
    if (conn->metrics != NULL) {
        count_down(conn, 0);
        talas_metrics_sub(&conn->metrics->gauge.redis.conns, 1);
    }
    if (h2o_timeout_is_linked(&conn->tick_entry))
        h2o_timeout_unlink(&conn->tick_entry);
    h2o_timeout_dispose(conn->loop, &conn->tick);
    if (conn->ac != NULL) {
        redisAsyncContext *ac = conn->ac;
        conn->ac = NULL;
        ac->data = NULL;
        redisAsyncFree(ac);
    }
    free(conn->name);
    free(conn->unix_path);
    free(conn->host);
    if (conn->password != NULL) {
        explicit_bzero(conn->password, strlen(conn->password));
        free(conn->password);
    }
    free(conn->channel);
    free(conn);
}

static void on_command_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct command *cmd = privdata;
    struct talas_redis_conn *conn = cmd->conn;
    redisReply *r = reply;

    /* a reply from a context given up still reaches its caller */
    if (r != NULL && ac->data == conn) {
        conn->last_reply_ms = talas_now_ms();
        if (error_reply(r))
            conn->counters.error_replies++;
    }
    if (conn->metrics != NULL) {
        if (r == NULL || error_reply(r))
            talas_metrics_add(&conn->metrics->count.redis.errors, 1);
        else
            talas_metrics_round_trip(&conn->metrics->count.redis, talas_now_us() - cmd->sent_us);
    }
    if (cmd->fn != NULL)
        cmd->fn(conn, r, cmd->data);
    free(cmd);
}

int talas_redis_conn_command(struct talas_redis_conn *conn, talas_redis_reply_fn fn, void *data, int argc,
                             const char **argv, const size_t *argvlen)
{
    struct command *cmd;

    if (!conn->is_ready || conn->ac == NULL || conn->channel != NULL) {
        conn->counters.commands_refused++;
        if (conn->metrics != NULL)
            talas_metrics_add(&conn->metrics->count.redis.errors, 1);
        return -1;
    }
    cmd = xmalloc(sizeof(*cmd));
    cmd->conn = conn;
    cmd->fn = fn;
    cmd->data = data;
    cmd->sent_us = talas_now_us();
    if (redisAsyncCommandArgv(conn->ac, on_command_reply, cmd, argc, argv, argvlen) != REDIS_OK) {
        /* the context is going away */
        free(cmd);
        conn->counters.commands_refused++;
        if (conn->metrics != NULL)
            talas_metrics_add(&conn->metrics->count.redis.errors, 1);
        return -1;
    }
    if (conn->metrics != NULL)
        talas_metrics_add(&conn->metrics->count.redis.commands, 1);
    return 0;
}

int talas_redis_conn_state(const struct talas_redis_conn *conn, const char **why_r)
{
    if (why_r != NULL)
        *why_r = conn->why;
    return conn->is_ready;
}

const struct talas_redis_counters *talas_redis_conn_counters(const struct talas_redis_conn *conn)
{
    return &conn->counters;
}
