/*
 * cluster_bus.c - a worker's realtime plane across the nodes of a cluster,
 * through Redis (cluster_bus.h).
 *
 * Entry points: talas_cluster_bus_create, talas_cluster_bus_start,
 * talas_cluster_bus_publish, talas_cluster_bus_healthy,
 * talas_cluster_bus_totals, talas_cluster_bus_node, talas_cluster_bus_json,
 * talas_cluster_bus_count_into, talas_cluster_bus_commands (the state's
 * Redis backends borrow the commands connection).
 *
 * Events. A worker PUBLISHes each event it publishes itself (never one
 * the master relayed to it) once, on its commands connection: Redis keeps
 * the order of one connection's messages, so each publisher's events
 * arrive in order. Every worker of every node receives every message; one
 * from its own node is dropped (the master's relay brought it already),
 * one from another node goes to the hub's local delivery. A receiver keeps
 * the last sequence number of each publisher and counts the gaps as
 * missed (events published while Redis was away, or sent while this
 * worker's subscriber was down).
 *
 * Presence. Every TALAS_CLUSTER_REFRESH_MS the worker writes its figures
 * and its node's record in one MULTI/EXEC, trims the expired members of
 * both sorted sets, then reads every live worker's figures (ZRANGEBYSCORE,
 * then one HGETALL each, pipelined) and keeps their sums.
 *
 * Logs: refused or malformed messages (debug, counted), nothing per event.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster/cluster_bus.h"
#include "cluster/cluster_msg.h"
#include "cluster/redis_loop.h"
#include "core/log.h"
#include "core/util.h"

/* Publishers remembered for gap counting. */
#define MAX_PUBLISHERS 1024
#define MAX_TRACKS 4096

struct publisher {
    char node[TALAS_CLUSTER_NODE_MAX + 1];
    uint32_t pid;
    uint64_t last_seq;
    uint64_t seen_ms;
};

struct talas_cluster_bus {
    const struct talas_config *conf;
    h2o_loop_t *loop;
    struct talas_cluster_hooks hooks;
    char *node;
    char *member; /* "NODE/PID" */
    char *password;
    struct talas_redis_conn *sub, *cmd;
    struct talas_metrics_slot *metrics; /* given to both connections */
    uint64_t seq;

    h2o_timeout_t refresh;
    h2o_timeout_entry_t refresh_entry;
    int reading; /* a read of the figures is in flight */
    struct talas_cluster_totals totals;
    uint64_t totals_ms; /* monotonic time of the last good read; 0: none */

    struct publisher *publishers;
    size_t publisher_count;

    struct {
        uint64_t published;       /* PUBLISHed */
        uint64_t publish_dropped; /* not sent: Redis unreachable */
        uint64_t publish_failed;  /* sent, but no answer or an error */
        uint64_t received;        /* from other nodes, delivered here */
        uint64_t own;             /* from this node: dropped */
        uint64_t missed;          /* gaps in publishers' sequences */
        uint64_t invalid;         /* messages that did not decode */
        uint64_t refresh_failed;  /* presence writes or reads that failed */
    } count;
};

/* ------------------------------------------------------------------ events */

static void on_published(struct talas_redis_conn *conn, redisReply *r, void *data)
{
    struct talas_cluster_bus *bus = data;

    if (r == NULL || r->type == REDIS_REPLY_ERROR)
        bus->count.publish_failed++;
}

void talas_cluster_bus_publish(struct talas_cluster_bus *bus, const struct talas_ipc_event *ev)
{
    struct talas_cluster_msg m = {
        .node = bus->node,
        .node_len = strlen(bus->node),
        .pid = (uint32_t)getpid(),
        .event = *ev,
    };
    struct talas_buf b = {0};
    const char *argv[3];
    size_t lens[3];

    /* a number per event tried, so that receivers count what never left */
    m.seq = ++bus->seq;
    if (!talas_redis_conn_state(bus->cmd, NULL)) {
        bus->count.publish_dropped++;
        return;
    }
    if (talas_cluster_msg_encode(&b, &m) != 0) {
        bus->count.publish_dropped++;
        return;
    }
    argv[0] = "PUBLISH";
    lens[0] = 7;
    argv[1] = TALAS_CLUSTER_CHANNEL;
    lens[1] = strlen(TALAS_CLUSTER_CHANNEL);
    argv[2] = b.data;
    lens[2] = b.len;
    if (talas_redis_conn_command(bus->cmd, on_published, bus, 3, argv, lens) == 0)
        bus->count.published++;
    else
        bus->count.publish_dropped++;
    talas_buf_free(&b);
}

/* Counts the events of M's publisher that never came. */
static void note_sequence(struct talas_cluster_bus *bus, const struct talas_cluster_msg *m)
{
    struct publisher *p = NULL;
    uint64_t now = talas_now_ms();

    for (size_t i = 0; i < bus->publisher_count; i++)
        if (bus->publishers[i].pid == m->pid && strcmp(bus->publishers[i].node, m->node) == 0) {
            p = &bus->publishers[i];
            break;
        }
    if (p == NULL) {
        if (bus->publisher_count < MAX_PUBLISHERS) {
            p = &bus->publishers[bus->publisher_count++];
        } else {
            /* the one heard from least recently makes room */
            p = &bus->publishers[0];
            for (size_t i = 1; i < bus->publisher_count; i++)
                if (bus->publishers[i].seen_ms < p->seen_ms)
                    p = &bus->publishers[i];
        }
        memcpy(p->node, m->node, m->node_len + 1);
        p->pid = m->pid;
        p->last_seq = m->seq - 1; /* its earlier events are none of our business */
    }
    if (m->seq > p->last_seq + 1)
        bus->count.missed += m->seq - p->last_seq - 1;
    p->last_seq = m->seq; /* a restarted publisher starts again at 1 */
    p->seen_ms = now;
}

static void on_message(struct talas_redis_conn *conn, const char *msg, size_t len, void *data)
{
    struct talas_cluster_bus *bus = data;
    struct talas_cluster_msg m;

    if (talas_cluster_msg_decode(msg, len, &m) != 0) {
        if (bus->count.invalid++ % 1000 == 0)
            log_debug("cluster: a message on %s that is not an event (%zu bytes): dropped",
                      TALAS_CLUSTER_CHANNEL, len);
        return;
    }
    if (strcmp(m.node, bus->node) == 0) {
        bus->count.own++;
        return;
    }
    note_sequence(bus, &m);
    bus->count.received++;
    bus->hooks.deliver(&m.event);
}

/* ---------------------------------------------------------------- presence */

struct read_round {
    struct talas_cluster_bus *bus;
    size_t pending;
    int failed;
    struct talas_cluster_totals sum;
    char **nodes; /* distinct node names seen */
    size_t node_count;
};

static void add_track(struct talas_cluster_totals *t, const char *id, size_t len, uint64_t n)
{
    size_t i;

    if (len != TALAS_IPC_TRACK_ID_LEN)
        return;
    for (i = 0; i < t->track_count; i++)
        if (memcmp(t->tracks[i].id, id, len) == 0) {
            t->tracks[i].listeners += n;
            return;
        }
    if (t->track_count == MAX_TRACKS)
        return;
    if (t->track_count % 64 == 0)
        t->tracks = xrealloc(t->tracks, (t->track_count + 64) * sizeof(*t->tracks));
    memcpy(t->tracks[i].id, id, len);
    t->tracks[i].id[len] = '\0';
    t->tracks[i].listeners = n;
    t->track_count++;
}

static int by_listeners(const void *a, const void *b)
{
    const struct talas_cluster_track *x = a, *y = b;
    return x->listeners < y->listeners ? 1 : x->listeners > y->listeners ? -1 : strcmp(x->id, y->id);
}

static void round_done(struct read_round *rd)
{
    struct talas_cluster_bus *bus = rd->bus;

    bus->reading = 0;
    if (rd->failed) {
        bus->count.refresh_failed++;
        free(rd->sum.tracks);
    } else {
        if (rd->sum.track_count > 1)
            qsort(rd->sum.tracks, rd->sum.track_count, sizeof(*rd->sum.tracks), by_listeners);
        rd->sum.nodes = (uint32_t)rd->node_count;
        free(bus->totals.tracks);
        bus->totals = rd->sum;
        bus->totals_ms = talas_now_ms();
    }
    for (size_t i = 0; i < rd->node_count; i++)
        free(rd->nodes[i]);
    free(rd->nodes);
    free(rd);
}

static void on_worker_figures(struct talas_redis_conn *conn, redisReply *r, void *data)
{
    struct read_round *rd = data;

    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        rd->failed = 1;
    } else if (r->elements > 0) {
        /* an empty answer: the key expired since the ZRANGEBYSCORE */
        rd->sum.workers++;
        for (size_t i = 0; i + 1 < r->elements; i += 2) {
            const redisReply *k = r->element[i], *v = r->element[i + 1];
            uint64_t n;
            if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
                continue;
            n = strtoull(v->str, NULL, 10);
            if (strcmp(k->str, "listeners") == 0)
                rd->sum.listeners += n;
            else if (strcmp(k->str, "connections") == 0)
                rd->sum.connections += n;
            else if (k->len > 2 && memcmp(k->str, "t:", 2) == 0)
                add_track(&rd->sum, k->str + 2, k->len - 2, n);
            else if (strcmp(k->str, "node") == 0) {
                size_t j;
                for (j = 0; j < rd->node_count; j++)
                    if (strcmp(rd->nodes[j], v->str) == 0)
                        break;
                if (j == rd->node_count) {
                    rd->nodes = xrealloc(rd->nodes, (rd->node_count + 1) * sizeof(*rd->nodes));
                    rd->nodes[rd->node_count++] = xstrdup(v->str);
                }
            }
        }
    }
    if (--rd->pending == 0)
        round_done(rd);
}

static void on_live_workers(struct talas_redis_conn *conn, redisReply *r, void *data)
{
    struct read_round *rd = data;

    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        rd->failed = 1;
        round_done(rd);
        return;
    }
    rd->pending = 1; /* held until every HGETALL is asked */
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *m = r->element[i];
        char key[160];
        const char *argv[2] = {"HGETALL", key};
        if (m->type != REDIS_REPLY_STRING || m->len > 100)
            continue;
        snprintf(key, sizeof(key), TALAS_CLUSTER_WORKER_PREFIX "%s", m->str);
        if (talas_redis_conn_command(rd->bus->cmd, on_worker_figures, rd, 2, argv, NULL) == 0)
            rd->pending++;
        else
            rd->failed = 1;
    }
    if (--rd->pending == 0)
        round_done(rd);
}

static void read_figures(struct talas_cluster_bus *bus)
{
    struct read_round *rd;
    char now[32];
    const char *argv[4] = {"ZRANGEBYSCORE", TALAS_CLUSTER_PRESENCE, now, "+inf"};

    if (bus->reading)
        return;
    snprintf(now, sizeof(now), "(%llu", (unsigned long long)talas_wall_ms());
    rd = xcalloc(1, sizeof(*rd));
    rd->bus = bus;
    bus->reading = 1;
    if (talas_redis_conn_command(bus->cmd, on_live_workers, rd, 4, argv, NULL) != 0) {
        rd->failed = 1;
        round_done(rd);
    }
}

static void on_written(struct talas_redis_conn *conn, redisReply *r, void *data)
{
    struct talas_cluster_bus *bus = data;

    /* EXEC's answer: an array of the answers, or nil when aborted */
    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        bus->count.refresh_failed++;
        return;
    }
}

/* One command of the MULTI block; its own answer is only "QUEUED". */
static int queue(struct talas_cluster_bus *bus, struct talas_buf *args, size_t argc)
{
    const char **argv = xcalloc(argc, sizeof(*argv));
    size_t *lens = xcalloc(argc, sizeof(*lens));
    size_t off = 0;
    int rc;

    /* ARGS holds the arguments one after the other, each ending in a NUL */
    for (size_t i = 0; i < argc; i++) {
        argv[i] = args->data + off;
        lens[i] = strlen(argv[i]);
        off += lens[i] + 1;
    }
    rc = talas_redis_conn_command(bus->cmd, NULL, NULL, (int)argc, argv, lens);
    free(argv);
    free(lens);
    args->len = 0;
    return rc;
}

static void arg(struct talas_buf *args, size_t *argc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void arg(struct talas_buf *args, size_t *argc, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;

    /* the longest is a key of a node name (64 bytes) and a pid */
    va_start(ap, fmt);
    if (vsnprintf(tmp, sizeof(tmp), fmt, ap) < 0)
        tmp[0] = '\0';
    va_end(ap);
    talas_buf_append(args, tmp, strlen(tmp) + 1);
    (*argc)++;
}

/* Each of the two records (a worker's, its node's) lives TALAS_CLUSTER_TTL_MS
 * past its last refresh, in a hash and as a member of a sorted set scored by
 * its expiry; the members whose score passed are the dead. */
static void queue_pexpire(struct talas_cluster_bus *bus, struct talas_buf *a, const char *prefix,
                          const char *name)
{
    size_t n = 0;

    arg(a, &n, "PEXPIRE");
    arg(a, &n, "%s%s", prefix, name);
    arg(a, &n, "%d", TALAS_CLUSTER_TTL_MS);
    queue(bus, a, n);
}

static void queue_zadd(struct talas_cluster_bus *bus, struct talas_buf *a, const char *set, uint64_t expires,
                       const char *member)
{
    size_t n = 0;

    arg(a, &n, "ZADD");
    arg(a, &n, "%s", set);
    arg(a, &n, "%llu", (unsigned long long)expires);
    arg(a, &n, "%s", member);
    queue(bus, a, n);
}

static void queue_trim(struct talas_cluster_bus *bus, struct talas_buf *a, const char *set, uint64_t now)
{
    size_t n = 0;

    arg(a, &n, "ZREMRANGEBYSCORE");
    arg(a, &n, "%s", set);
    arg(a, &n, "-inf");
    arg(a, &n, "%llu", (unsigned long long)now);
    queue(bus, a, n);
}

static void write_figures(struct talas_cluster_bus *bus)
{
    struct talas_ipc_stats mine, node;
    struct talas_buf a = {0};
    uint64_t now = talas_wall_ms(), expires = now + TALAS_CLUSTER_TTL_MS;
    uint32_t workers = 1;
    size_t n = 0;
    const char *exec[1] = {"EXEC"};

    memset(&mine, 0, sizeof(mine));
    memset(&node, 0, sizeof(node));
    bus->hooks.figures(&mine, &node, &workers);

    arg(&a, &n, "MULTI");
    if (queue(bus, &a, n) != 0)
        goto fail;
    n = 0;
    arg(&a, &n, "DEL");
    arg(&a, &n, TALAS_CLUSTER_WORKER_PREFIX "%s", bus->member);
    queue(bus, &a, n);
    n = 0;
    arg(&a, &n, "HSET");
    arg(&a, &n, TALAS_CLUSTER_WORKER_PREFIX "%s", bus->member);
    arg(&a, &n, "node");
    arg(&a, &n, "%s", bus->node);
    arg(&a, &n, "pid");
    arg(&a, &n, "%u", (unsigned)getpid());
    arg(&a, &n, "listeners");
    arg(&a, &n, "%u", (unsigned)mine.open_streams);
    arg(&a, &n, "connections");
    arg(&a, &n, "%u", (unsigned)mine.current_connections);
    for (uint32_t i = 0; i < mine.track_count; i++) {
        arg(&a, &n, "t:%s", mine.tracks[i].id);
        arg(&a, &n, "%u", (unsigned)mine.tracks[i].listeners);
    }
    queue(bus, &a, n);
    queue_pexpire(bus, &a, TALAS_CLUSTER_WORKER_PREFIX, bus->member);
    queue_zadd(bus, &a, TALAS_CLUSTER_PRESENCE, expires, bus->member);
    n = 0;
    arg(&a, &n, "HSET");
    arg(&a, &n, TALAS_CLUSTER_NODE_PREFIX "%s", bus->node);
    arg(&a, &n, "node");
    arg(&a, &n, "%s", bus->node);
    arg(&a, &n, "listeners");
    arg(&a, &n, "%u", (unsigned)node.open_streams);
    arg(&a, &n, "connections");
    arg(&a, &n, "%u", (unsigned)node.current_connections);
    arg(&a, &n, "workers");
    arg(&a, &n, "%u", (unsigned)workers);
    arg(&a, &n, "last_seen_ms");
    arg(&a, &n, "%llu", (unsigned long long)now);
    queue(bus, &a, n);
    queue_pexpire(bus, &a, TALAS_CLUSTER_NODE_PREFIX, bus->node);
    queue_zadd(bus, &a, TALAS_CLUSTER_NODES, expires, bus->node);
    /* the dead: members whose figures were not refreshed in time */
    queue_trim(bus, &a, TALAS_CLUSTER_PRESENCE, now);
    queue_trim(bus, &a, TALAS_CLUSTER_NODES, now);
    if (talas_redis_conn_command(bus->cmd, on_written, bus, 1, exec, NULL) != 0)
        goto fail;
    talas_buf_free(&a);
    return;
fail:
    bus->count.refresh_failed++;
    talas_buf_free(&a);
}

static void on_refresh(h2o_timeout_entry_t *entry)
{
    struct talas_cluster_bus *bus = H2O_STRUCT_FROM_MEMBER(struct talas_cluster_bus, refresh_entry, entry);

    if (talas_redis_conn_state(bus->cmd, NULL)) {
        write_figures(bus);
        read_figures(bus);
    }
    h2o_timeout_link(bus->loop, &bus->refresh, &bus->refresh_entry);
}

/* The commands connection is (back) up: figures at once, not in 2 s. */
static void on_cmd_ready(struct talas_redis_conn *conn, void *data)
{
    struct talas_cluster_bus *bus = data;

    write_figures(bus);
    read_figures(bus);
}

/* -------------------------------------------------------------------- API */

static char *read_password(const char *path, char **error_r)
{
    char line[1024];
    FILE *f = fopen(path, "re");
    size_t n;

    if (f == NULL) {
        *error_r = xasprintf("cluster.redis_password_file: cannot open \"%s\": %s", path, strerror(errno));
        return NULL;
    }
    if (fgets(line, sizeof(line), f) == NULL)
        line[0] = '\0';
    fclose(f);
    n = strcspn(line, "\r\n");
    line[n] = '\0';
    if (n == 0) {
        *error_r = xasprintf("cluster.redis_password_file: \"%s\": the first line is empty", path);
        return NULL;
    }
    return xstrdup(line);
}

int talas_cluster_bus_create(const struct talas_config *conf, int slot, struct talas_cluster_bus **bus_r,
                             char **error_r)
{
    struct talas_cluster_bus *bus;
    char *password = NULL;

    *bus_r = NULL;
    if (!conf->cluster_enabled || conf->cluster_redis == NULL)
        return 0;
    if (conf->cluster_redis_password_file != NULL &&
        (password = read_password(conf->cluster_redis_password_file, error_r)) == NULL)
        return -1;
    bus = xcalloc(1, sizeof(*bus));
    bus->conf = conf;
    bus->node = xstrdup(conf->cluster_node_name);
    bus->member = xasprintf("%s/%d", conf->cluster_node_name, (int)getpid());
    bus->password = password;
    bus->publishers = xcalloc(MAX_PUBLISHERS, sizeof(*bus->publishers));
    (void)slot;
    *bus_r = bus;
    return 0;
}

void talas_cluster_bus_start(struct talas_cluster_bus *bus, h2o_loop_t *loop,
                             const struct talas_cluster_hooks *hooks)
{
    bus->loop = loop;
    bus->hooks = *hooks;
    bus->sub = talas_redis_conn_new(loop, bus->conf->cluster_redis, bus->password, "events", NULL, NULL, bus);
    talas_redis_conn_subscriber(bus->sub, TALAS_CLUSTER_CHANNEL, on_message);
    bus->cmd = talas_redis_conn_new(loop, bus->conf->cluster_redis, bus->password, "commands", on_cmd_ready,
                                    NULL, bus);
    talas_redis_conn_count_into(bus->sub, bus->metrics);
    talas_redis_conn_count_into(bus->cmd, bus->metrics);
    h2o_timeout_init(loop, &bus->refresh, TALAS_CLUSTER_REFRESH_MS);
    bus->refresh_entry.cb = on_refresh;
    h2o_timeout_link(loop, &bus->refresh, &bus->refresh_entry);
}

void talas_cluster_bus_count_into(struct talas_cluster_bus *bus, struct talas_metrics_slot *slot)
{
    bus->metrics = slot;
}

struct talas_redis_conn *talas_cluster_bus_commands(const struct talas_cluster_bus *bus)
{
    return bus->cmd;
}

int talas_cluster_bus_healthy(const struct talas_cluster_bus *bus, const char **why_r)
{
    static char why[300];
    const char *w1, *w2;
    int sub_ok = talas_redis_conn_state(bus->sub, &w1), cmd_ok = talas_redis_conn_state(bus->cmd, &w2);

    if (sub_ok && cmd_ok) {
        *why_r = "ok";
        return 1;
    }
    if (!sub_ok)
        snprintf(why, sizeof(why), "events connection: %s", w1);
    else
        snprintf(why, sizeof(why), "commands connection: %s", w2);
    *why_r = why;
    return 0;
}

const struct talas_cluster_totals *talas_cluster_bus_totals(const struct talas_cluster_bus *bus)
{
    if (bus->totals_ms == 0 || talas_now_ms() - bus->totals_ms > TALAS_CLUSTER_TTL_MS)
        return NULL;
    return &bus->totals;
}

const char *talas_cluster_bus_node(const struct talas_cluster_bus *bus)
{
    return bus->node;
}

static void counters_json(struct talas_json *json, const struct talas_redis_counters *c)
{
    talas_json_object_begin(json);
    talas_json_key(json, "connects");
    talas_json_uint(json, c->connects);
    talas_json_key(json, "connect_failures");
    talas_json_uint(json, c->connect_failures);
    talas_json_key(json, "disconnects");
    talas_json_uint(json, c->disconnects);
    talas_json_key(json, "ping_timeouts");
    talas_json_uint(json, c->ping_timeouts);
    talas_json_key(json, "commands_refused");
    talas_json_uint(json, c->commands_refused);
    talas_json_key(json, "error_replies");
    talas_json_uint(json, c->error_replies);
    talas_json_object_end(json);
}

void talas_cluster_bus_json(const struct talas_cluster_bus *bus, struct talas_json *json)
{
    const struct talas_cluster_totals *t = talas_cluster_bus_totals(bus);
    const char *why;

    talas_cluster_bus_healthy(bus, &why);
    talas_json_object_begin(json);
    talas_json_key(json, "node");
    talas_json_string(json, bus->node);
    talas_json_key(json, "redis");
    talas_json_string(json, why);
    talas_json_key(json, "nodes");
    if (t != NULL)
        talas_json_uint(json, t->nodes);
    else
        talas_json_null(json);
    talas_json_key(json, "concurrent_listeners");
    if (t != NULL)
        talas_json_uint(json, t->listeners);
    else
        talas_json_null(json);
    talas_json_key(json, "current_connections");
    if (t != NULL)
        talas_json_uint(json, t->connections);
    else
        talas_json_null(json);
    talas_json_key(json, "worker");
    talas_json_object_begin(json);
    talas_json_key(json, "pid");
    talas_json_uint(json, (uint64_t)getpid());
    talas_json_key(json, "events_published");
    talas_json_uint(json, bus->count.published);
    talas_json_key(json, "events_not_sent");
    talas_json_uint(json, bus->count.publish_dropped);
    talas_json_key(json, "events_failed");
    talas_json_uint(json, bus->count.publish_failed);
    talas_json_key(json, "events_received");
    talas_json_uint(json, bus->count.received);
    talas_json_key(json, "events_own_skipped");
    talas_json_uint(json, bus->count.own);
    talas_json_key(json, "events_missed");
    talas_json_uint(json, bus->count.missed);
    talas_json_key(json, "messages_invalid");
    talas_json_uint(json, bus->count.invalid);
    talas_json_key(json, "figures_failed");
    talas_json_uint(json, bus->count.refresh_failed);
    talas_json_key(json, "events_connection");
    counters_json(json, talas_redis_conn_counters(bus->sub));
    talas_json_key(json, "commands_connection");
    counters_json(json, talas_redis_conn_counters(bus->cmd));
    talas_json_object_end(json);
    talas_json_object_end(json);
}
