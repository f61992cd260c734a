/*
 * ws_hub.h - the realtime connections of one worker, their subscriptions,
 * and the fan-out of events to them and, through the master, to the
 * connections of every other worker.
 *
 * The hub is created once per worker after fork (talas_ws_hub_init) and
 * owns every struct talas_ws_conn; ws_conn.c creates them on upgrade and
 * handles their commands. talas__ names are shared by ws_hub.c and
 * ws_conn.c only.
 */
#ifndef TALAS_WS_HUB_H
#define TALAS_WS_HUB_H

#include <stddef.h>
#include <stdint.h>

#include <h2o.h>

#include "core/config.h"
#include "core/ipc.h"
#include "realtime/ws_limits.h"
#include "realtime/ws_protocol.h"
#include "realtime/ws_transport.h"
#include "worker/worker_ctx.h"

/* Starts the hub on CTX's loop, with CTX's configuration and storage (the
 * pointer is kept: CTX must outlive the hub); IPC_FD is the worker's end
 * of its channel with the master (-1: events stay on this worker). */
void talas_ws_hub_init(const struct talas_worker_ctx *ctx, int ipc_fd);
/* Graceful stop: every connection gets a close frame (1001 going away). */
void talas_ws_hub_shutdown(void);

/* Publishes event JSON (LEN bytes) to TARGET (TO: the user or connection
 * id, NULL for all): delivered here at once, and sent to every other
 * worker through the master. The event is nobody's: use
 * talas_ws_hub_publish_activity for one that reports a user's listening. */
void talas_ws_hub_publish(enum talas_ws_target target, const char *to, const char *json, size_t len);

/*
 * Publishes event JSON (LEN bytes) that reports what OWNER (a user id)
 * does as a listener (PlaybackStarted, PlaybackPaused, PlaybackResumed,
 * PlaybackProgress, PlaybackStopped) to the connections subscribed to it,
 * on every worker. When IS_PRIVATE (the caller read OWNER's
 * share_listening, store/users.h, and it is off), only OWNER's own
 * connections may receive it, whatever their subscriptions and filters.
 */
void talas_ws_hub_publish_activity(const char *owner, int is_private, const char *json, size_t len);

/* Delivers EV to this worker's connections only, by the rules of every
 * event (targets, subscriptions and filters, privacy), and relays it
 * nowhere: for events from another node of a cluster, which reach each
 * worker of this node through its own Redis subscription. */
void talas_ws_hub_deliver_local(const struct talas_ipc_event *ev);

/* A media response (/stream, /preview) for TRACK began or ended on this
 * worker: LiveStats counts them as listeners. */
void talas_ws_hub_stream_begin(const char *track);
void talas_ws_hub_stream_end(const char *track);
/* Counts REQ, a media response for TRACK, until its pool is released. The
 * stream_started of the worker's struct talas_stream_counters
 * (worker_ctx.h): media handlers reach it through their context, never by
 * name. DATA is unused. */
void talas_ws_hub_count_stream(void *data, h2o_req_t *req, const char *track);

/* The figures of every worker, this one's fresh, summed into *SUM (pid 0);
 * PER gets one entry per worker (at most MAX), *count_r how many. */
void talas_ws_hub_stats(struct talas_ipc_stats *sum, struct talas_ipc_stats *per, size_t max,
                        size_t *count_r);

/* -------------------------------------------------------- internals */

/* Rooms one connection may join at once, and a room id's length
 * (store/rooms.h: TALAS_ROOM_ID_LEN). */
#define TALAS__WS_MAX_ROOMS 8
#define TALAS__WS_ROOM_ID_LEN 24

struct talas__ws_sub {
    char *event;
    struct talas_ws_filter *filters;
    size_t filter_count;
};

struct talas__ws_conn {
    const struct talas_worker_ctx *ctx; /* the worker's, set by the route (ws_conn.c) */
    struct talas_ws_transport *ws;
    struct talas__ws_conn *prev, *next;
    struct talas__ws_conn *flush_next;
    int flush_pending;
    char id[37];           /* a UUID (version 4) */
    char *user;            /* NULL: anonymous */
    uint64_t connected_ms; /* wall clock */
    uint64_t last_seen_ms; /* monotonic: the last frame from the client */
    uint64_t last_ping_ms; /* monotonic */
    struct talas__ws_sub *subs;
    size_t sub_count;
    uint64_t rate_window_ms; /* monotonic start of the rate-limit window */
    uint32_t rate_used;
    int rate_warned;
    struct talas_ws_identity *identity; /* its user's or address's limits (ws_limits.h) */
    uint64_t identity_warned_window;    /* the identity's window of the last RateLimitWarning */
    int closing;                /* a close frame is queued: nothing else goes out */
    int close_after_drain;      /* the send queue overflowed: close once the warning is out */
    uint64_t close_deadline_ms; /* monotonic: dropped without ceremony past it */
    struct talas__ws_pending *pending; /* playlist commands awaiting the store (ws_conn.c) */
    /* the listening rooms it joined (ws_rooms.c): it receives their events */
    char rooms[TALAS__WS_MAX_ROOMS][TALAS__WS_ROOM_ID_LEN + 1];
    size_t room_count;
    struct talas__ws_room_wait *room_waits; /* RoomQueueAdd {artist} walks (ws_rooms.c) */
};

/* Registers a new connection (ws set, user malloc'd or NULL); NULL when the
 * worker already has ws.max_connections. */
struct talas__ws_conn *talas__ws_conn_new(void);
/* Whether another connection may be accepted. */
int talas__ws_hub_has_room(void);
/* Detaches C's commands that await the store (ws_conn.c): their answers
 * will not reach it. talas__ws_conn_free calls it. */
void talas__ws_conn_detach(struct talas__ws_conn *c);
/* Unregisters and frees C (its websocket is closed by the caller). */
void talas__ws_conn_free(struct talas__ws_conn *c);
/* Queues a text message to C (copied); applies ws.max_send_queue. */
void talas__ws_send(struct talas__ws_conn *c, const char *data, size_t len);
/* Queues a close frame with CODE and REASON; C is dropped if the client
 * does not answer within a few seconds. */
void talas__ws_close(struct talas__ws_conn *c, uint16_t code, const char *reason);
/* Whether C joined room ROOM (LEN bytes). */
int talas__ws_conn_in_room(const struct talas__ws_conn *c, const char *room, size_t len);
/* Another connection of USER, besides C, that joined ROOM on this worker. */
int talas__ws_user_in_room(const struct talas__ws_conn *c, const char *user, const char *room);
/* Takes ROOM out of the joined rooms of every connection of USER here. */
void talas__ws_user_drop_room(const char *user, const char *room);
/* Counts a message received. */
void talas__ws_received(void);
size_t talas__ws_hub_connections(void);

#endif
