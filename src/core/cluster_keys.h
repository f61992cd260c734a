/*
 * cluster_keys.h - the names and lifetimes of what cluster mode keeps in
 * Redis, shared by the workers that write them (workers/cluster/
 * cluster_bus.c) and `talasctl cluster status` (src/ctl/ctl_cluster.c),
 * which reads them. Plain constants: nothing to link.
 *
 *   TALAS_CLUSTER_CHANNEL            the events channel (PUBLISH/SUBSCRIBE)
 *   TALAS_CLUSTER_PRESENCE           sorted set of live workers, "NODE/PID",
 *                                    scored by the wall-clock ms they expire
 *   TALAS_CLUSTER_WORKER_PREFIX NODE/PID   a worker's figures (hash)
 *   TALAS_CLUSTER_NODES              sorted set of live nodes, scored the same way
 *   TALAS_CLUSTER_NODE_PREFIX NODE   a node's record (hash): node, listeners,
 *                                    connections, workers, last_seen_ms
 *   TALAS_CLUSTER_SESSION_PREFIX ID  a streaming session (hash): rec (its
 *                                    record, store/sessions.h's layout), ver
 *                                    (bumped by each change), owner (the key
 *                                    of its owner's set, "" for none); it
 *                                    expires streaming.session_timeout after
 *                                    its last change
 *   TALAS_CLUSTER_SESSIONS           sorted set of sessions by id, scored by
 *                                    the wall-clock ms they expire
 *   TALAS_CLUSTER_SESSION_OWNER_PREFIX KIND ":" OWNER  an owner's sessions
 *                                    (KIND u: a user, a: an address), scored
 *                                    the same way
 *   TALAS_CLUSTER_SESSION_TOTALS     the sessions' running totals (hash)
 *   TALAS_CLUSTER_PLAYBACK_PREFIX USER  a user's playback state (hash,
 *                                    workers/state/state_playback_redis.c),
 *                                    living TALAS_CLUSTER_PLAYBACK_TTL_MS
 *                                    after its last change
 *   TALAS_CLUSTER_NOW_PLAYING        sorted set of the users whose state is
 *                                    playing, scored by the wall-clock ms
 *                                    their "now playing" expires (the
 *                                    Subsonic API's getNowPlaying)
 *
 * Figures are written every TALAS_CLUSTER_REFRESH_MS and live
 * TALAS_CLUSTER_TTL_MS: a node that stops refreshing is gone from every
 * sum and list within the TTL.
 */
#ifndef TALAS_CLUSTER_KEYS_H
#define TALAS_CLUSTER_KEYS_H

#define TALAS_CLUSTER_CHANNEL "talas:events"
#define TALAS_CLUSTER_PRESENCE "talas:presence"
#define TALAS_CLUSTER_WORKER_PREFIX "talas:w:"
#define TALAS_CLUSTER_NODES "talas:nodes"
#define TALAS_CLUSTER_NODE_PREFIX "talas:node:"

#define TALAS_CLUSTER_SESSION_PREFIX "talas:session:"
#define TALAS_CLUSTER_SESSIONS "talas:sessions"
#define TALAS_CLUSTER_SESSION_OWNER_PREFIX "talas:sessions:owner:"
#define TALAS_CLUSTER_SESSION_TOTALS "talas:sessions:totals"
#define TALAS_CLUSTER_PLAYBACK_PREFIX "talas:pb:"
#define TALAS_CLUSTER_PLAYBACK_TTL_MS (7 * 24 * 3600 * 1000LL)
#define TALAS_CLUSTER_NOW_PLAYING "talas:nowplaying"

#define TALAS_CLUSTER_REFRESH_MS 2000
#define TALAS_CLUSTER_TTL_MS (3 * TALAS_CLUSTER_REFRESH_MS)

#endif
