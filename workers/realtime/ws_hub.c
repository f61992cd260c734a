/*
 * ws_hub.c - the realtime hub of a worker: its connections, the delivery
 * of events to them, the channel to the master, and the housekeeping
 * timers (ws_hub.h).
 *
 * Entry points: talas_ws_hub_init, talas_ws_hub_shutdown,
 * talas_ws_hub_publish, talas_ws_hub_publish_activity,
 * talas_ws_hub_deliver_local, talas_ws_hub_stream_begin/end, talas_ws_hub_stats,
 * and talas_ws_hub_count_stream, which worker.c installs as the counters
 * of its context (worker_ctx.h) for the media routes.
 *
 * Delivery. An event published here is sent to the master, which relays
 * it to every other worker, then delivered to this worker's connections;
 * an event read from the master is delivered the same way.
 * In cluster mode it is also published once to the other nodes
 * (cluster/cluster_bus.h), whose events come back through
 * talas_ws_hub_deliver_local: to this worker's connections only, by the
 * same rules, relayed nowhere. LiveStats then sums every node's figures.
 * A connection receives an event addressed to it (send_to_connection), to
 * its user (send_to_user), to a listening room it joined (TALAS_WS_TO_ROOM,
 * ws_rooms.c), a ServerMessage sent to all, and any other
 * event sent to all that it subscribed to with matching filters. Privacy
 * comes first: an event about a user's listening that the publishing
 * worker marked private (the user's share_listening is off) goes only to
 * that user's own connections, here and on every other worker, so no
 * subscription or filter can follow another user's listening. An event
 * is framed once and the frame appended to each recipient's output buffer
 * (ws_transport.c); the connections are flushed from a zero-delay timer, so
 * that the events read in one turn of the loop leave in one write per
 * connection, and no owner callback runs from inside a fan-out.
 *
 * A client that does not read lets its queue grow to ws.max_send_queue;
 * then it gets a RateLimitWarning and a close frame (1008), nothing else
 * is queued for it, and it is dropped if it has not gone within
 * CLOSE_GRACE_MS. It never holds up the loop or other clients.
 *
 * Every second a sweep pings connections silent for ws.ping_interval,
 * closes those silent for ws.idle_timeout (1001), forgets the users and
 * addresses of ws_limits.c that have no connection and no window left,
 * (worker slot 0, once a minute) deletes the listening rooms left idle,
 * and reports this worker's figures to the master when they changed; every
 * ws.live_stats_interval the LiveStats event goes to the connections
 * subscribed to it.
 *
 * Logs: the master channel closing, send-queue overflows (debug).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "cluster/cluster_bus.h"
#include "store/catalog.h"
#include "core/ipc.h"
#include "core/log.h"
#include "realtime/ws_hub.h"
#include "state/state_rooms.h"

#define CLOSE_GRACE_MS 5000
/* How long a client whose send queue overflowed has to read its backlog
 * and the RateLimitWarning before it is dropped. */
#define SLOW_GRACE_MS 10000
/* Bytes of events queued for the master before they are dropped. */
#define IPC_QUEUE_MAX (16 * 1024 * 1024)
/* Most distinct tracks counted as streaming on one worker. */
#define MAX_STREAM_TRACKS 4096
#define MAX_WORKERS 300
/* How often worker slot 0 deletes idle listening rooms. */
#define ROOMS_SWEEP_MS 60000

struct stream_count {
    char id[TALAS_IPC_TRACK_ID_LEN + 1];
    uint32_t n;
};

static struct {
    const struct talas_worker_ctx *ctx;
    h2o_loop_t *loop;
    const struct talas_config *conf;
    struct talas__ws_conn *head;
    size_t count;
    struct talas__ws_conn *flush_head, *flush_tail;
    h2o_timeout_t zero, second, live;
    h2o_timeout_entry_t flush_entry, sweep_entry, live_entry;

    h2o_socket_t *ipc;
    struct talas_buf ipc_pending, ipc_inflight;
    uint64_t ipc_dropped;
    uint64_t rooms_swept_ms; /* monotonic: the last sweep of idle rooms */

    struct talas_ipc_stats mine; /* this worker's counters */
    int mine_dirty;
    struct talas_ipc_stats *all; /* the last figures from the master */
    size_t all_count;

    struct stream_count *streams;
    size_t stream_count;
    int stopping;

    /* the last fan-out, for the debug log (scripts/bench-ws reads it) */
    uint64_t fanout_start_us;
    size_t fanout_count;
    char fanout_name[32];
} hub;

size_t talas__ws_hub_connections(void)
{
    return hub.count;
}

void talas__ws_received(void)
{
    hub.mine.messages_received++;
    hub.mine_dirty = 1;
    talas_metrics_add(&talas_worker_ctx_metrics(hub.ctx)->count.ws_events_in, 1);
}

/* ------------------------------------------------------------ connections */

static void make_uuid(char out[37])
{
    unsigned char b[16];
    static const char hex[] = "0123456789abcdef";
    char *p = out;

    if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
        /* no entropy: uniqueness is all an id needs */
        static uint64_t seq;
        uint64_t t = talas_now_ms() ^ ((uint64_t)getpid() << 40), s = ++seq;
        memcpy(b, &t, 8);
        memcpy(b + 8, &s, 8);
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hex[b[i] >> 4];
        *p++ = hex[b[i] & 15];
    }
    *p = '\0';
}

int talas__ws_hub_has_room(void)
{
    return !hub.stopping && hub.count < (size_t)hub.conf->ws_max_connections;
}

struct talas__ws_conn *talas__ws_conn_new(void)
{
    struct talas__ws_conn *c;

    if (!talas__ws_hub_has_room())
        return NULL;
    c = xcalloc(1, sizeof(*c));
    make_uuid(c->id);
    c->last_seen_ms = c->last_ping_ms = c->rate_window_ms = talas_now_ms();
    c->next = hub.head;
    if (hub.head != NULL)
        hub.head->prev = c;
    hub.head = c;
    hub.count++;
    talas_metrics_add(&talas_worker_ctx_metrics(hub.ctx)->gauge.ws_connections, 1);
    hub.mine.total_connections++;
    hub.mine.current_connections = (uint32_t)hub.count;
    hub.mine_dirty = 1;
    return c;
}

void talas__ws_conn_free(struct talas__ws_conn *c)
{
    talas__ws_conn_detach(c);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        hub.head = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    if (c->flush_pending) {
        struct talas__ws_conn **pp = &hub.flush_head, *last = NULL;
        while (*pp != NULL && *pp != c) {
            last = *pp;
            pp = &(*pp)->flush_next;
        }
        if (*pp == c) {
            *pp = c->flush_next;
            if (hub.flush_tail == c)
                hub.flush_tail = last;
        }
    }
    hub.count--;
    talas_metrics_sub(&talas_worker_ctx_metrics(hub.ctx)->gauge.ws_connections, 1);
    hub.mine.current_connections = (uint32_t)hub.count;
    hub.mine_dirty = 1;
    if (c->identity != NULL)
        talas_ws_limits_close(c->identity);
    for (size_t i = 0; i < c->sub_count; i++) {
        free(c->subs[i].event);
        for (size_t j = 0; j < c->subs[i].filter_count; j++) {
            free(c->subs[i].filters[j].key);
            free(c->subs[i].filters[j].value);
        }
        free(c->subs[i].filters);
    }
    free(c->subs);
    free(c->user);
    free(c);
}

static void schedule_flush(struct talas__ws_conn *c)
{
    if (c->flush_pending)
        return;
    c->flush_pending = 1;
    c->flush_next = NULL;
    if (hub.flush_tail != NULL)
        hub.flush_tail->flush_next = c;
    else
        hub.flush_head = c;
    hub.flush_tail = c;
    if (!h2o_timeout_is_linked(&hub.flush_entry))
        h2o_timeout_link(hub.loop, &hub.zero, &hub.flush_entry);
}

static void on_flush(h2o_timeout_entry_t *entry)
{
    /* what proceed queues (answers to frames it reads) joins the list and
     * is flushed in this same pass */
    while (hub.flush_head != NULL) {
        struct talas__ws_conn *c = hub.flush_head;
        hub.flush_head = c->flush_next;
        if (hub.flush_head == NULL)
            hub.flush_tail = NULL;
        c->flush_pending = 0;
        talas_ws_transport_flush(c->ws);
    }
    if (hub.fanout_count > 0) {
        log_debug("ws: %s delivered to %zu connection(s) of this worker in %.2f ms", hub.fanout_name,
                  hub.fanout_count, (double)(talas_now_us() - hub.fanout_start_us) / 1000);
        hub.fanout_count = 0;
    }
}

static void count_sent(void)
{
    hub.mine.messages_sent++;
    hub.mine_dirty = 1;
    talas_metrics_add(&talas_worker_ctx_metrics(hub.ctx)->count.ws_events_out, 1);
}

void talas__ws_close(struct talas__ws_conn *c, uint16_t code, const char *reason)
{
    if (c->closing)
        return;
    c->closing = 1;
    c->close_deadline_ms = talas_now_ms() + CLOSE_GRACE_MS;
    talas_ws_transport_queue_close(c->ws, code, reason);
    schedule_flush(c);
}

/* Whether LEN more bytes may be queued to C. When its send queue would
 * overflow, C gets a RateLimitWarning and is closed once it is out. */
static int may_queue(struct talas__ws_conn *c, size_t len)
{
    if (c->closing)
        return 0;
    if (talas_ws_transport_backlog(c->ws) + len > hub.conf->ws_max_send_queue) {
        struct talas_buf b = {0};
        talas_ws_rate_limit_warning(&b, 0, 0);
        talas_ws_transport_queue_text(c->ws, b.data, b.len);
        count_sent();
        talas_buf_free(&b);
        log_debug("ws: connection %s reads too slowly (send queue over %llu bytes): closing it", c->id,
                  (unsigned long long)hub.conf->ws_max_send_queue);
        /* wslay sends control frames before data: the close frame waits
         * (on_sweep) until the warning is out, so that a client that
         * reads again sees why it is dropped */
        c->closing = 1;
        c->close_after_drain = 1;
        c->close_deadline_ms = talas_now_ms() + SLOW_GRACE_MS;
        schedule_flush(c);
        return 0;
    }
    return 1;
}

void talas__ws_send(struct talas__ws_conn *c, const char *data, size_t len)
{
    if (!may_queue(c, len))
        return;
    talas_ws_transport_queue_text(c->ws, data, len);
    count_sent();
    schedule_flush(c);
}

/* Queues FRAME, made by talas_ws_frame_text, to C. */
static void send_frame(struct talas__ws_conn *c, const struct talas_buf *frame)
{
    if (!may_queue(c, frame->len))
        return;
    talas_ws_transport_queue_frame(c->ws, frame->data, frame->len);
    count_sent();
    schedule_flush(c);
}

/* --------------------------------------------------------------- delivery */

static int subscribed(const struct talas__ws_conn *c, const struct talas_ws_event_info *info)
{
    for (size_t i = 0; i < c->sub_count; i++)
        if (strcmp(c->subs[i].event, info->name) == 0)
            return talas_ws_filters_match(info, c->subs[i].filters, c->subs[i].filter_count);
    return 0;
}

/* Whether C is a connection of the user that EV is about. */
static int owned_by(const struct talas__ws_conn *c, const struct talas_ipc_event *ev)
{
    return c->user != NULL && strlen(c->user) == ev->owner_len &&
           memcmp(c->user, ev->owner, ev->owner_len) == 0;
}

int talas__ws_conn_in_room(const struct talas__ws_conn *c, const char *room, size_t len)
{
    for (size_t i = 0; i < c->room_count; i++)
        if (strlen(c->rooms[i]) == len && memcmp(c->rooms[i], room, len) == 0)
            return 1;
    return 0;
}

int talas__ws_user_in_room(const struct talas__ws_conn *c, const char *user, const char *room)
{
    for (const struct talas__ws_conn *o = hub.head; o != NULL; o = o->next)
        if (o != c && o->user != NULL && strcmp(o->user, user) == 0 &&
            talas__ws_conn_in_room(o, room, strlen(room)))
            return 1;
    return 0;
}

void talas__ws_user_drop_room(const char *user, const char *room)
{
    for (struct talas__ws_conn *o = hub.head; o != NULL; o = o->next) {
        if (o->user == NULL || strcmp(o->user, user) != 0)
            continue;
        for (size_t i = 0; i < o->room_count; i++)
            if (strcmp(o->rooms[i], room) == 0) {
                memmove(&o->rooms[i], &o->rooms[i + 1], (o->room_count - i - 1) * sizeof(o->rooms[0]));
                o->room_count--;
                break;
            }
    }
}

static void deliver(const struct talas_ipc_event *ev)
{
    struct talas_ws_event_info info;
    struct talas__ws_conn *c, *next;
    struct talas_buf frame = {0};
    uint64_t start = talas_now_us();
    size_t count = 0, to_len = ev->to_len;
    const char *to = ev->to;
    int server_message, private = (ev->flags & TALAS_IPC_EVENT_PRIVATE) != 0;

    if (ev->target == TALAS_WS_TO_ROOM) {
        /* a room's event goes by its room alone, and a large room's state
         * has more values than the routing read takes: not read */
        memset(&info, 0, sizeof(info));
        snprintf(info.name, sizeof(info.name), "%s", "Room");
    } else if (talas_ws_event_info_read(ev->json, ev->json_len, &info) != 0) {
        return;
    }
    server_message = strcmp(info.name, "ServerMessage") == 0;
    talas_ws_frame_text(&frame, ev->json, ev->json_len);
    for (c = hub.head; c != NULL; c = next) {
        next = c->next;
        /* a user who does not share their listening: their own connections
         * only, whatever the target, subscriptions and filters say */
        if (private && !owned_by(c, ev))
            continue;
        switch ((enum talas_ws_target)ev->target) {
        case TALAS_WS_TO_CONNECTION:
            if (strlen(c->id) == to_len && memcmp(c->id, to, to_len) == 0)
                send_frame(c, &frame);
            break;
        case TALAS_WS_TO_USER:
            if (c->user != NULL && strlen(c->user) == to_len && memcmp(c->user, to, to_len) == 0)
                send_frame(c, &frame);
            break;
        case TALAS_WS_TO_ROOM:
            if (talas__ws_conn_in_room(c, to, to_len))
                send_frame(c, &frame);
            break;
        case TALAS_WS_TO_ALL:
            if (server_message || subscribed(c, &info)) {
                send_frame(c, &frame);
                count++;
            }
            break;
        }
    }
    talas_buf_free(&frame);
    if (count >= 100 && hub.fanout_count == 0) {
        hub.fanout_start_us = start;
        hub.fanout_count = count;
        memcpy(hub.fanout_name, info.name, sizeof(hub.fanout_name));
    }
}

static void ipc_flush(void);

static void on_ipc_write(h2o_socket_t *sock, const char *err)
{
    hub.ipc_inflight.len = 0;
    if (err != NULL) {
        log_error("ws: the channel to the master failed: %s", err);
        return;
    }
    ipc_flush();
}

static void ipc_flush(void)
{
    struct talas_buf t;
    h2o_iovec_t iov;

    if (hub.ipc == NULL || hub.ipc_inflight.len != 0 || hub.ipc_pending.len == 0)
        return;
    t = hub.ipc_inflight;
    hub.ipc_inflight = hub.ipc_pending;
    hub.ipc_pending = t;
    hub.ipc_pending.len = 0;
    iov = h2o_iovec_init(hub.ipc_inflight.data, hub.ipc_inflight.len);
    h2o_socket_write(hub.ipc, &iov, 1, on_ipc_write);
}

static void ipc_send_frame(const struct talas_buf *frame)
{
    if (hub.ipc == NULL)
        return;
    if (hub.ipc_pending.len + frame->len > IPC_QUEUE_MAX) {
        if (hub.ipc_dropped++ % 1000 == 0)
            log_warn("ws: the master does not read this worker's events: %llu dropped",
                     (unsigned long long)hub.ipc_dropped);
        return;
    }
    talas_buf_append(&hub.ipc_pending, frame->data, frame->len);
    ipc_flush();
}

static void publish(const struct talas_ipc_event *ev)
{
    struct talas_buf frame = {0};

    hub.mine.events_broadcast++;
    hub.mine_dirty = 1;
    /* to the master first: the other workers' members then wait for no
     * local fan-out */
    if (talas_ipc_event_encode(&frame, ev) == 0)
        ipc_send_frame(&frame);
    talas_buf_free(&frame);
    deliver(ev);
    /* the other nodes: once, from the worker where the event was made */
    if (hub.ctx->cluster != NULL)
        talas_cluster_bus_publish(hub.ctx->cluster, ev);
}

void talas_ws_hub_deliver_local(const struct talas_ipc_event *ev)
{
    deliver(ev);
}

void talas_ws_hub_publish(enum talas_ws_target target, const char *to, const char *json, size_t len)
{
    struct talas_ipc_event ev = {
        .origin_pid = (uint32_t)getpid(),
        .target = (uint8_t)target,
        .to = to,
        .to_len = to != NULL ? strlen(to) : 0,
        .json = json,
        .json_len = len,
    };

    publish(&ev);
}

void talas_ws_hub_publish_activity(const char *owner, int is_private, const char *json, size_t len)
{
    struct talas_ipc_event ev = {
        .origin_pid = (uint32_t)getpid(),
        .target = TALAS_WS_TO_ALL,
        .json = json,
        .json_len = len,
        .owner = owner,
        .owner_len = strlen(owner),
        .flags = is_private ? TALAS_IPC_EVENT_PRIVATE : 0,
    };

    publish(&ev);
}

static void on_ipc_read(h2o_socket_t *sock, const char *err)
{
    size_t off = 0;

    if (err != NULL) {
        if (!hub.stopping)
            log_error("ws: the channel to the master closed (%s): events stay on this worker", err);
        h2o_socket_close(sock);
        hub.ipc = NULL;
        return;
    }
    for (;;) {
        struct talas_ipc_frame f;
        struct talas_ipc_event ev;
        size_t used, count;
        int rc = talas_ipc_frame_next(sock->input->bytes + off, sock->input->size - off, &f, &used);
        if (rc == 0)
            break;
        if (rc == -1) {
            log_error("ws: the master sent bytes that are not a frame: closing the channel");
            h2o_socket_close(sock);
            hub.ipc = NULL;
            return;
        }
        if (f.type == TALAS_IPC_EVENT && talas_ipc_event_decode(f.payload, f.len, &ev) == 0) {
            deliver(&ev);
        } else if (f.type == TALAS_IPC_STATS_ALL) {
            struct talas_ipc_stats *all = xcalloc(MAX_WORKERS, sizeof(*all));
            if (talas_ipc_stats_all_decode(f.payload, f.len, all, MAX_WORKERS, &count) == 0) {
                free(hub.all);
                hub.all = all;
                hub.all_count = count;
            } else {
                free(all);
            }
        }
        off += used;
    }
    h2o_buffer_consume(&sock->input, off);
}

/* ---------------------------------------------------------------- streams */

void talas_ws_hub_stream_begin(const char *track)
{
    for (size_t i = 0; i < hub.stream_count; i++)
        if (strcmp(hub.streams[i].id, track) == 0) {
            hub.streams[i].n++;
            goto out;
        }
    if (hub.stream_count == MAX_STREAM_TRACKS || strlen(track) != TALAS_IPC_TRACK_ID_LEN)
        goto out;
    if (hub.stream_count % 64 == 0)
        hub.streams = xrealloc(hub.streams, (hub.stream_count + 64) * sizeof(*hub.streams));
    memcpy(hub.streams[hub.stream_count].id, track, TALAS_IPC_TRACK_ID_LEN + 1);
    hub.streams[hub.stream_count++].n = 1;
out:
    hub.mine.open_streams++;
    hub.mine_dirty = 1;
}

void talas_ws_hub_stream_end(const char *track)
{
    for (size_t i = 0; i < hub.stream_count; i++)
        if (strcmp(hub.streams[i].id, track) == 0) {
            if (--hub.streams[i].n == 0)
                hub.streams[i] = hub.streams[--hub.stream_count];
            break;
        }
    if (hub.mine.open_streams > 0)
        hub.mine.open_streams--;
    hub.mine_dirty = 1;
}

struct counted {
    char track[TALAS_IPC_TRACK_ID_LEN + 1];
};

static void counted_dispose(void *p)
{
    talas_ws_hub_stream_end(((struct counted *)p)->track);
}

void talas_ws_hub_count_stream(void *data, h2o_req_t *req, const char *track)
{
    struct counted *c;

    if (strlen(track) != TALAS_IPC_TRACK_ID_LEN)
        return;
    c = h2o_mem_alloc_shared(&req->pool, sizeof(*c), counted_dispose);
    memcpy(c->track, track, sizeof(c->track));
    talas_ws_hub_stream_begin(track);
}

static int by_listeners(const void *a, const void *b)
{
    const struct stream_count *x = a, *y = b;
    return x->n < y->n ? 1 : x->n > y->n ? -1 : strcmp(x->id, y->id);
}

/* This worker's figures, the most listened tracks first. */
static void fill_mine(void)
{
    struct stream_count *sorted = xcalloc(hub.stream_count + 1, sizeof(*sorted));

    if (hub.stream_count > 0)
        memcpy(sorted, hub.streams, hub.stream_count * sizeof(*sorted));
    qsort(sorted, hub.stream_count, sizeof(*sorted), by_listeners);
    hub.mine.pid = (uint32_t)getpid();
    hub.mine.track_count = 0;
    for (size_t i = 0; i < hub.stream_count && i < TALAS_IPC_MAX_TRACKS; i++) {
        memcpy(hub.mine.tracks[i].id, sorted[i].id, sizeof(hub.mine.tracks[i].id));
        hub.mine.tracks[i].listeners = sorted[i].n;
        hub.mine.track_count++;
    }
    free(sorted);
}

void talas_ws_hub_stats(struct talas_ipc_stats *sum, struct talas_ipc_stats *per, size_t max, size_t *count_r)
{
    size_t n = 0;

    fill_mine();
    memset(sum, 0, sizeof(*sum));
    /* the master's copy of this worker's figures is older than these */
    for (size_t i = 0; i <= hub.all_count; i++) {
        const struct talas_ipc_stats *s = i < hub.all_count ? &hub.all[i] : &hub.mine;
        if (i < hub.all_count && s->pid == hub.mine.pid)
            continue;
        sum->total_connections += s->total_connections;
        sum->current_connections += s->current_connections;
        sum->messages_sent += s->messages_sent;
        sum->messages_received += s->messages_received;
        sum->events_broadcast += s->events_broadcast;
        sum->open_streams += s->open_streams;
        if (s->pid != 0 && n < max)
            per[n++] = *s;
    }
    *count_r = n;
}

/* ----------------------------------------------------------------- timers */

static void on_sweep(h2o_timeout_entry_t *entry)
{
    uint64_t now = talas_now_ms();
    struct talas__ws_conn *c, *next;

    for (c = hub.head; c != NULL; c = next) {
        next = c->next;
        if (c->closing) {
            if (c->close_after_drain && talas_ws_transport_backlog(c->ws) == 0) {
                c->close_after_drain = 0;
                c->close_deadline_ms = now + CLOSE_GRACE_MS;
                talas_ws_transport_queue_close(c->ws, 1008, "send queue full: the client reads too slowly");
                schedule_flush(c);
            } else if (now >= c->close_deadline_ms) {
                /* the client ignores the close: drop it */
                struct talas_ws_transport *ws = c->ws;
                talas__ws_conn_free(c);
                talas_ws_transport_close(ws);
            }
            continue;
        }
        if (now - c->last_seen_ms >= hub.conf->ws_idle_timeout_ms) {
            talas__ws_close(c, 1001, "idle timeout");
        } else if (now - c->last_ping_ms >= hub.conf->ws_ping_interval_ms &&
                   now - c->last_seen_ms >= hub.conf->ws_ping_interval_ms) {
            c->last_ping_ms = now;
            talas_ws_transport_queue_ping(c->ws);
            schedule_flush(c);
        }
    }
    talas_ws_limits_sweep(now);
    /* listening rooms idle past rooms.idle_timeout that nobody reads: one
     * worker deletes them, a few a minute (a read deletes one at once) */
    if (hub.ctx->slot == 0 && now - hub.rooms_swept_ms >= ROOMS_SWEEP_MS) {
        hub.rooms_swept_ms = now;
        talas_state_rooms_sweep(hub.ctx, talas_wall_ms());
    }
    if (hub.mine_dirty && hub.ipc != NULL) {
        struct talas_buf frame = {0};
        fill_mine();
        talas_ipc_stats_encode(&frame, &hub.mine);
        ipc_send_frame(&frame);
        talas_buf_free(&frame);
        hub.mine_dirty = 0;
    }
    h2o_timeout_link(hub.loop, &hub.second, &hub.sweep_entry);
}

struct top {
    char id[TALAS_IPC_TRACK_ID_LEN + 1];
    uint64_t n;
};

static int by_top(const void *a, const void *b)
{
    const struct top *x = a, *y = b;
    return x->n < y->n ? 1 : x->n > y->n ? -1 : strcmp(x->id, y->id);
}

static void on_live(h2o_timeout_entry_t *entry)
{
    struct talas_ws_event_info info;
    struct talas_ipc_stats sum, *per;
    struct talas__ws_conn *c, *next;
    struct talas_buf b = {0};
    struct talas_json json;
    struct top *tops = NULL;
    const struct talas_cluster_totals *totals;
    uint64_t listeners;
    size_t nper, ntop = 0;
    double load[1] = {0};
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int any = 0;
    MDB_txn *txn;

    h2o_timeout_link(hub.loop, &hub.live, &hub.live_entry);
    for (c = hub.head; c != NULL && !any; c = c->next)
        for (size_t i = 0; i < c->sub_count; i++)
            if (strcmp(c->subs[i].event, "LiveStats") == 0)
                any = 1;
    if (!any)
        return;
    per = xcalloc(MAX_WORKERS, sizeof(*per));
    talas_ws_hub_stats(&sum, per, MAX_WORKERS, &nper);
    for (size_t w = 0; w < nper; w++)
        for (uint32_t t = 0; t < per[w].track_count; t++) {
            size_t k;
            for (k = 0; k < ntop; k++)
                if (strcmp(tops[k].id, per[w].tracks[t].id) == 0)
                    break;
            if (k == ntop) {
                tops = xrealloc(tops, (ntop + 1) * sizeof(*tops));
                memcpy(tops[k].id, per[w].tracks[t].id, sizeof(tops[k].id));
                tops[k].n = 0;
                ntop++;
            }
            tops[k].n += per[w].tracks[t].listeners;
        }
    listeners = sum.open_streams;
    /* in a cluster, every node's figures as of the last read (this node's
     * alone while Redis cannot be reached) */
    if (hub.ctx->cluster != NULL && (totals = talas_cluster_bus_totals(hub.ctx->cluster)) != NULL) {
        listeners = totals->listeners;
        ntop = totals->track_count < 10 ? totals->track_count : 10;
        tops = xrealloc(tops, (ntop + 1) * sizeof(*tops));
        for (size_t k = 0; k < ntop; k++) {
            memcpy(tops[k].id, totals->tracks[k].id, sizeof(tops[k].id));
            tops[k].n = totals->tracks[k].listeners;
        }
    }
    if (ntop > 1)
        qsort(tops, ntop, sizeof(*tops), by_top);
    getloadavg(load, 1);

    talas_ws_event_begin(&json, &b, "LiveStats");
    talas_json_key(&json, "concurrent_listeners");
    talas_json_uint(&json, listeners);
    talas_json_key(&json, "top_tracks");
    talas_json_array_begin(&json);
    if (talas_storage_read_begin(hub.ctx->storage, &txn) == 0) {
        for (size_t i = 0; i < ntop && i < 10; i++) {
            struct talas_track t;
            int found = talas_catalog_get(hub.ctx->storage, txn, tops[i].id, &t) == 0;
            talas_json_object_begin(&json);
            talas_json_key(&json, "track_id");
            talas_json_string(&json, tops[i].id);
            talas_json_key(&json, "title");
            talas_json_string(&json, found && t.title ? t.title : "");
            talas_json_key(&json, "artist");
            talas_json_string(&json, found && t.artist ? t.artist : "");
            talas_json_key(&json, "current_listeners");
            talas_json_uint(&json, tops[i].n);
            talas_json_object_end(&json);
        }
        mdb_txn_abort(txn);
    }
    talas_json_array_end(&json);
    talas_json_key(&json, "server_load");
    talas_json_double(&json, cpus > 0 ? load[0] / (double)cpus : load[0]);
    talas_json_object_end(&json);
    if (talas_ws_event_info_read(b.data, b.len, &info) == 0)
        for (c = hub.head; c != NULL; c = next) {
            next = c->next;
            if (subscribed(c, &info))
                talas__ws_send(c, b.data, b.len);
        }
    talas_buf_free(&b);
    free(tops);
    free(per);
}

/* The figures cluster_bus.c writes to Redis: this worker's, and its
 * node's as the master last relayed them. */
static void cluster_figures(struct talas_ipc_stats *mine, struct talas_ipc_stats *node,
                            uint32_t *node_workers)
{
    struct talas_ipc_stats *per = xcalloc(MAX_WORKERS, sizeof(*per));
    size_t n;

    talas_ws_hub_stats(node, per, MAX_WORKERS, &n);
    *mine = hub.mine;
    *node_workers = (uint32_t)n;
    free(per);
}

void talas_ws_hub_init(const struct talas_worker_ctx *ctx, int ipc_fd)
{
    static const struct talas_cluster_hooks hooks = {
        .deliver = talas_ws_hub_deliver_local,
        .figures = cluster_figures,
    };

    h2o_loop_t *loop = ctx->loop;
    const struct talas_config *conf = ctx->conf;

    hub.ctx = ctx;
    hub.loop = loop;
    hub.conf = conf;
    hub.mine.pid = (uint32_t)getpid();
    talas_ws_limits_init(conf);
    if (ctx->metrics_node != NULL && ctx->census != NULL)
        talas_ws_limits_share(ctx->metrics_node, ctx->census);
    h2o_timeout_init(loop, &hub.zero, 0);
    h2o_timeout_init(loop, &hub.second, 1000);
    h2o_timeout_init(loop, &hub.live, conf->ws_live_stats_interval_ms);
    hub.flush_entry.cb = on_flush;
    hub.sweep_entry.cb = on_sweep;
    hub.live_entry.cb = on_live;
    h2o_timeout_link(loop, &hub.second, &hub.sweep_entry);
    h2o_timeout_link(loop, &hub.live, &hub.live_entry);
    if (ipc_fd != -1) {
        hub.ipc = h2o_evloop_socket_create(loop, ipc_fd, 0);
        h2o_socket_read_start(hub.ipc, on_ipc_read);
    }
    if (ctx->cluster != NULL)
        talas_cluster_bus_start(ctx->cluster, loop, &hooks);
}

void talas_ws_hub_shutdown(void)
{
    hub.stopping = 1;
    for (struct talas__ws_conn *c = hub.head; c != NULL; c = c->next)
        talas__ws_close(c, 1001, "server shutting down");
    if (h2o_timeout_is_linked(&hub.live_entry))
        h2o_timeout_unlink(&hub.live_entry);
}
