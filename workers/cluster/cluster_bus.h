/*
 * cluster_bus.h - a worker's part of the cluster's realtime plane: its
 * realtime events published to the other nodes and theirs received, and
 * its figures shared for LiveStats and `talasctl cluster status`, through
 * Redis (cluster.redis).
 *
 * Each worker holds two connections (redis_loop.h): a subscriber of the
 * events channel (a subscribed RESP2 connection takes nothing but
 * SUBSCRIBE, UNSUBSCRIBE and PING) and one for commands (PUBLISH, the
 * presence writes and reads). The keys are core/cluster_keys.h's; a
 * worker's figures hold listeners, connections and "t:TRACK" = its
 * listeners of TRACK (those of its 32 most listened tracks).
 *
 * Every worker writes its figures and its node's record every
 * TALAS_CLUSTER_REFRESH_MS with an expiry of TALAS_CLUSTER_TTL_MS (Redis
 * 7.0 has no per-field expiry: the sorted sets say who is alive, and the
 * keys expire on their own), then reads the figures of every live worker
 * and sums them: LiveStats uses the sums of the last read. A node that
 * dies leaves the sums within the TTL.
 *
 * Created by worker.c before it drops privileges (the password file may be
 * root's), started by the realtime hub on the loop; both live as long as
 * the worker. Everything runs on the worker's loop and never waits for
 * Redis: when Redis cannot be reached, events stay on this node, the
 * figures are this node's, /api/health says "degraded", and both
 * connections come back by themselves.
 */
#ifndef TALAS_CLUSTER_BUS_H
#define TALAS_CLUSTER_BUS_H

#include <stddef.h>
#include <stdint.h>

#include <h2o.h>

#include "core/cluster_keys.h"
#include "core/config.h"
#include "core/ipc.h"
#include "core/json.h"
#include "core/metrics.h"

struct talas_redis_conn;

struct talas_cluster_bus;

/* What the realtime hub lends the bus (ws_hub.c). */
struct talas_cluster_hooks {
    /* An event from another node: to this worker's connections only (the
     * same event reaches the node's other workers through their own
     * subscriptions, not through the master). */
    void (*deliver)(const struct talas_ipc_event *ev);
    /* This worker's figures into *MINE; its node's (every worker's, as the
     * master relays them) into *NODE, with the count of workers. */
    void (*figures)(struct talas_ipc_stats *mine, struct talas_ipc_stats *node, uint32_t *node_workers);
};

/* The cluster's figures, summed over the live workers of every node at
 * the last read. */
struct talas_cluster_totals {
    uint32_t nodes;
    uint32_t workers;
    uint64_t listeners;
    uint64_t connections;
    size_t track_count; /* tracks being streamed, most listened first */
    struct talas_cluster_track {
        char id[TALAS_IPC_TRACK_ID_LEN + 1];
        uint64_t listeners;
    } * tracks;
};

/*
 * In cluster mode, makes the bus of worker SLOT of CONF (reading
 * cluster.redis_password_file) into *bus_r; outside it, *bus_r is NULL.
 * Returns 0, or -1 with *error_r (malloc'd) when the password file cannot
 * be read.
 */
int talas_cluster_bus_create(const struct talas_config *conf, int slot, struct talas_cluster_bus **bus_r,
                             char **error_r);
/* Connects BUS on LOOP (HOOKS is kept). */
void talas_cluster_bus_start(struct talas_cluster_bus *bus, h2o_loop_t *loop,
                             const struct talas_cluster_hooks *hooks);

/* Counts BUS's Redis connections into SLOT (core/metrics.h: talas_redis_*);
 * before talas_cluster_bus_start. */
void talas_cluster_bus_count_into(struct talas_cluster_bus *bus, struct talas_metrics_slot *slot);
/* The commands connection (NULL before talas_cluster_bus_start), lent to
 * the shared state's Redis backends (state_sessions_redis.c,
 * state_playback_redis.c); owned by BUS. */
struct talas_redis_conn;
struct talas_redis_conn *talas_cluster_bus_commands(const struct talas_cluster_bus *bus);

/* Publishes EV, which this worker has already delivered here and sent to
 * the master, to the other nodes. Not sent (and counted) while Redis is
 * unreachable. */
void talas_cluster_bus_publish(struct talas_cluster_bus *bus, const struct talas_ipc_event *ev);

/* 1 when both connections are up; else 0 and *why_r says what is wrong. */
int talas_cluster_bus_healthy(const struct talas_cluster_bus *bus, const char **why_r);
/* The sums of the last read, or NULL when there is none younger than the
 * TTL (Redis unreachable: the caller uses its node's own figures). */
const struct talas_cluster_totals *talas_cluster_bus_totals(const struct talas_cluster_bus *bus);
/* This node's name. */
const char *talas_cluster_bus_node(const struct talas_cluster_bus *bus);
/* Writes the bus's state as a JSON object (the "cluster" member of
 * /api/ws/stats): node, redis, the cluster's sums, this worker's counters. */
void talas_cluster_bus_json(const struct talas_cluster_bus *bus, struct talas_json *json);

#endif
