/*
 * ws_conn.c - GET /api/ws: the WebSocket upgrade and the commands of a
 * connection.
 *
 * Entry point: talas_ws_serve (http_router.c).
 *
 * The upgrade (HTTP/1.1 only; h2o 2.2.5 has no WebSocket over HTTP/2)
 * takes the user from ?user_id=, or, when ws.auth_required, from the
 * "sub" of the token (?token= or Authorization: Bearer), never from the
 * query string. Every text frame is one command and gets exactly one
 * CommandResponse carrying its command_id (or "" when the frame had none
 * that could be read), whatever is wrong with it; a binary frame gets a
 * CommandResponse with success false; a frame over ws.max_message_size
 * closes the connection with 1009 (wslay). Commands past ws.rate_limit per
 * ws.rate_limit_window are refused, with a RateLimitWarning; so are those
 * past ws.user_rate_limit for the connection's user (or, without
 * ws.auth_required, its address) across all its connections on this
 * worker. An upgrade past ws.max_connections_per_user (or
 * _per_address) is answered 429 naming the key (ws_limits.c): the
 * identity is known before the upgrade, so no connection is opened only
 * to be closed.
 *
 * Playback commands write their change to LMDB in one short transaction
 * (playback.c); playlist commands go to the playlists' store
 * (state/state_playlists.h: LMDB, or PostgreSQL in cluster mode, whose
 * answer comes later: a later command's answer may overtake it), and
 * each publishes its event through the hub once stored. A playback event is private unless its user shares their
 * listening (share_listening, store/users.h, read at publish time): then
 * only that user's own connections receive it (ws_hub.c). Playlist
 * commands need a user: the store checks that they own or were given the
 * playlist, and its quotas (a refusal names the limit's key: "quota
 * exceeded: limit playlists.max_per_user (200) reached").
 *
 * Logs: refused upgrades (auth), storage errors (a full map once a
 * minute: talas_storage_log_write_error).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <h2o/websocket.h>

#include "store/catalog.h"
#include "http/http_authorize.h"
#include "http/http_response.h"
#include "core/log.h"
#include "store/playback.h"
#include "store/users.h"
#include "state/state_playback.h"
#include "state/state_playlists.h"
#include "realtime/ws_conn.h"
#include "realtime/ws_hub.h"
#include "realtime/ws_rooms.h"

static void respond(struct talas__ws_conn *c, const char *command_id, int success,
                    const struct talas_buf *data, const char *error)
{
    struct talas_buf out = {0};

    talas_ws_command_response(&out, command_id, success, data ? data->data : NULL, data ? data->len : 0,
                              error);
    talas__ws_send(c, out.data, out.len);
    talas_buf_free(&out);
}

static void rate_warning(struct talas__ws_conn *c, uint32_t remaining, uint64_t reset_s)
{
    struct talas_buf b = {0};

    talas_ws_rate_limit_warning(&b, remaining, reset_s);
    talas__ws_send(c, b.data, b.len);
    talas_buf_free(&b);
}

/* Seconds until RESET_MS milliseconds have passed, rounded up. */
static uint64_t seconds_up(uint64_t reset_ms)
{
    return (reset_ms + 999) / 1000;
}

/*
 * Counts a command; 0 when it may run. Two budgets per window of
 * ws.rate_limit_window: the connection's (ws.rate_limit) and its user's or
 * address's across all their connections on this worker
 * (ws.user_rate_limit, ws_limits.c). A command refused by either spends
 * nothing of the other.
 */
static int rate_limit(struct talas__ws_conn *c, const char *command_id)
{
    const struct talas_config *conf = c->ctx->conf;
    uint64_t now = talas_now_ms(), reset_ms;
    uint32_t limit = (uint32_t)conf->ws_rate_limit, remaining;
    struct talas_ws_budget budget;
    char msg[192];

    if (now - c->rate_window_ms >= conf->ws_rate_limit_window_ms) {
        c->rate_window_ms = now;
        c->rate_used = 0;
        c->rate_warned = 0;
    }
    reset_ms = c->rate_window_ms + conf->ws_rate_limit_window_ms - now;
    if (c->rate_used >= limit) {
        snprintf(msg, sizeof(msg), "rate limit exceeded: %u commands per %llu s; try again in %llu s", limit,
                 (unsigned long long)(conf->ws_rate_limit_window_ms / 1000),
                 (unsigned long long)seconds_up(reset_ms));
        respond(c, command_id, 0, NULL, msg);
        if (c->rate_used++ == limit)
            rate_warning(c, 0, seconds_up(reset_ms));
        return -1;
    }
    if (c->identity != NULL && talas_ws_limits_command(c->identity, now, &budget) != 0) {
        snprintf(
            msg, sizeof(msg),
            "rate limit exceeded: ws.user_rate_limit (%u commands per %llu s %s on this worker); try again "
            "in %llu s",
            budget.limit, (unsigned long long)(conf->ws_rate_limit_window_ms / 1000),
            talas_ws_identity_is_user(c->identity) ? "of this user" : "from this address",
            (unsigned long long)seconds_up(budget.reset_ms));
        respond(c, command_id, 0, NULL, msg);
        /* each connection of the user learns it once per window */
        if (c->identity_warned_window != budget.window_start_ms) {
            c->identity_warned_window = budget.window_start_ms;
            rate_warning(c, 0, seconds_up(budget.reset_ms));
        }
        return -1;
    }
    remaining = limit - ++c->rate_used;
    /* one warning when a tenth of the window's allowance is left */
    if (!c->rate_warned && remaining <= limit / 10) {
        c->rate_warned = 1;
        rate_warning(c, remaining, seconds_up(reset_ms));
    }
    return 0;
}

/* Looks TRACK up in the catalog; 0 and its duration, or -1 with a reason. */
static int find_track(const struct talas_worker_ctx *ctx, const char *track, uint64_t *duration_r,
                      const char **error_r)
{
    struct talas_track t;
    MDB_txn *txn;
    int rc;

    if (!talas_track_id_valid(track, strlen(track))) {
        *error_r = "track_id: no such track";
        return -1;
    }
    if ((rc = talas_storage_read_begin(ctx->storage, &txn)) != 0) {
        *error_r = "the catalog could not be read";
        return -1;
    }
    rc = talas_catalog_resolve(ctx->storage, txn, track, &t);
    if (rc == 0 && t.error == NULL)
        *duration_r = t.duration_ms;
    mdb_txn_abort(txn);
    if (rc != 0 || t.error != NULL) {
        *error_r = "track_id: no such track";
        return -1;
    }
    return 0;
}

/* Publishes a playback event: NAME with the user and track, then FIELD;
 * other users receive it only when PRIVATE is 0. */
static void playback_event(struct talas__ws_conn *c, int private, const char *name, const char *track,
                           const char *field, uint64_t value, int with_buffer, double buffer)
{
    struct talas_buf b = {0};
    struct talas_json json;

    talas_ws_event_begin(&json, &b, name);
    talas_json_key(&json, "track_id");
    talas_json_string(&json, track);
    talas_json_key(&json, "user_id");
    talas_json_string(&json, c->user);
    talas_json_key(&json, field);
    talas_json_uint(&json, value);
    if (with_buffer) {
        talas_json_key(&json, "buffer_percentage");
        talas_json_double(&json, buffer);
    }
    talas_json_object_end(&json);
    talas_ws_hub_publish_activity(c->user, private, b.data, b.len);
    talas_buf_free(&b);
}

static void data_uint(struct talas_buf *b, const char *key, uint64_t v)
{
    struct talas_json json;

    talas_json_init(&json, b);
    talas_json_object_begin(&json);
    talas_json_key(&json, key);
    talas_json_uint(&json, v);
    talas_json_object_end(&json);
}

/*
 * A playlist command waiting for the store (state_playlists.h): it owns
 * the parsed command, and sits in its connection's list until the answer
 * comes; a connection that closes first detaches it
 * (talas__ws_conn_detach), and the answer then goes nowhere.
 */
struct talas__ws_pending {
    struct talas__ws_conn *c; /* NULL once detached */
    struct talas__ws_pending *next, **pprev;
    struct talas_state_op *op;
    struct talas_state_playback_op *playback_op; /* playback commands (state_playback.h) */
    struct talas_ws_command cmd;
    /* a playback change's: what its events need */
    int private;
    uint64_t now_ms, duration_ms;
    const char *quality; /* the config's or the command's */
};

static struct talas__ws_pending *pending_new(struct talas__ws_conn *c, struct talas_ws_command *cmd)
{
    struct talas__ws_pending *p = xcalloc(1, sizeof(*p));

    p->c = c;
    p->cmd = *cmd;
    memset(cmd, 0, sizeof(*cmd)); /* the pending owns its strings now */
    if ((p->next = c->pending) != NULL)
        p->next->pprev = &p->next;
    p->pprev = &c->pending;
    c->pending = p;
    return p;
}

static void pending_free(struct talas__ws_pending *p)
{
    if (p->pprev != NULL) {
        *p->pprev = p->next;
        if (p->next != NULL)
            p->next->pprev = p->pprev;
    }
    talas_ws_command_free(&p->cmd);
    free(p);
}

/* Starts OP for P: the store's call returns the pending operation, or NULL
 * when it already answered (and P is gone). */
static void pending_started(struct talas__ws_pending *p, struct talas_state_op *op)
{
    if (op != NULL)
        p->op = op;
}

/* The answer to a playback change (state_playback.h), when it comes. */
static void on_playback_done(void *data, const struct talas_state_playback_result *res)
{
    struct talas__ws_pending *p = data;
    struct talas__ws_conn *c = p->c;
    const struct talas_ws_command *cmd = &p->cmd;
    const struct talas_playback_result *r = &res->change;
    struct talas_buf payload = {0};
    char msg[256];
    int private = p->private;

    if (res->outcome == TALAS_STATE_REFUSED) {
        respond(c, cmd->command_id, 0, NULL, res->reason);
    } else if (res->outcome == TALAS_STATE_FULL) {
        respond(c, cmd->command_id, 0, NULL, "storage full: the change could not be stored");
    } else if (res->outcome == TALAS_STATE_UNAVAILABLE) {
        snprintf(msg, sizeof(msg), "playback unavailable: %s", res->reason);
        respond(c, cmd->command_id, 0, NULL, msg);
    } else if (res->outcome != TALAS_STATE_OK) {
        respond(c, cmd->command_id, 0, NULL, "the change could not be stored");
    } else if (cmd->type == TALAS_WS_PLAY) {
        struct talas_json json;
        talas_json_init(&json, &payload);
        talas_json_object_begin(&json);
        talas_json_key(&json, "track_duration_ms");
        talas_json_uint(&json, p->duration_ms);
        talas_json_key(&json, "quality");
        talas_json_string(&json, p->quality);
        talas_json_object_end(&json);
        respond(c, cmd->command_id, 1, &payload, NULL);
        if (r->stopped_previous)
            playback_event(c, private, "PlaybackStopped", r->previous_track, "total_played_ms",
                           r->previous_played_ms, 0, 0);
        if (r->resumed)
            playback_event(c, private, "PlaybackResumed", cmd->track_id, "position_ms", r->position_ms, 0, 0);
        else
            playback_event(c, private, "PlaybackStarted", cmd->track_id, "timestamp", p->now_ms / 1000, 0, 0);
    } else if (cmd->type == TALAS_WS_PAUSE) {
        data_uint(&payload, "position_ms", r->position_ms);
        respond(c, cmd->command_id, 1, &payload, NULL);
        playback_event(c, private, "PlaybackPaused", cmd->track_id, "position_ms", r->position_ms, 0, 0);
    } else if (cmd->type == TALAS_WS_SEEK) {
        data_uint(&payload, "position_ms", r->position_ms);
        respond(c, cmd->command_id, 1, &payload, NULL);
        playback_event(c, private, "PlaybackProgress", cmd->track_id, "position_ms", r->position_ms, 1,
                       cmd->has_buffer_percentage ? cmd->buffer_percentage : 0.0);
    } else {
        data_uint(&payload, "total_played_ms", r->total_played_ms);
        respond(c, cmd->command_id, 1, &payload, NULL);
        playback_event(c, private, "PlaybackStopped", cmd->track_id, "total_played_ms", r->total_played_ms, 0,
                       0);
    }
    talas_buf_free(&payload);
    pending_free(p);
}

static void do_playback(struct talas__ws_conn *c, struct talas_ws_command *cmd)
{
    const struct talas_config *conf = c->ctx->conf;
    struct talas_playback_command pc;
    struct talas_state_playback_op *op;
    struct talas__ws_pending *p;
    const char *error = NULL, *quality = "";
    uint64_t duration = 0, now = talas_wall_ms();
    int private;

    if (c->user == NULL) {
        respond(c, cmd->command_id, 0, NULL, "playback needs a user: connect with ?user_id= (or a token)");
        return;
    }
    /* the user's consent as it stands now (a read transaction): their
     * events reach other users only while they share their listening */
    private = !talas_user_shares_listening(c->ctx->storage, c->user);
    memset(&pc, 0, sizeof(pc));
    switch (cmd->type) {
    case TALAS_WS_PLAY:
        pc.verb = TALAS_PLAYBACK_DO_PLAY;
        quality = cmd->quality != NULL ? cmd->quality : conf->transcode_profiles[0].name;
        if (cmd->quality != NULL) {
            size_t i;
            for (i = 0; i < conf->transcode_profile_count; i++)
                if (strcmp(conf->transcode_profiles[i].name, cmd->quality) == 0)
                    break;
            if (i == conf->transcode_profile_count) {
                respond(c, cmd->command_id, 0, NULL, "quality: not a transcode profile of this server");
                return;
            }
            quality = conf->transcode_profiles[i].name; /* outlives the command */
        }
        if (find_track(c->ctx, cmd->track_id, &duration, &error) != 0) {
            respond(c, cmd->command_id, 0, NULL, error);
            return;
        }
        pc.has_position = cmd->has_position_ms;
        pc.position_ms = cmd->position_ms;
        break;
    case TALAS_WS_PAUSE:
        pc.verb = TALAS_PLAYBACK_DO_PAUSE;
        break;
    case TALAS_WS_SEEK:
        pc.verb = TALAS_PLAYBACK_DO_SEEK;
        pc.has_position = 1;
        pc.position_ms = cmd->position_ms;
        break;
    case TALAS_WS_STOP:
        pc.verb = TALAS_PLAYBACK_DO_STOP;
        break;
    default:
        return;
    }
    pc.track = cmd->track_id;
    pc.duration_ms = duration;
    pc.quality = quality;
    pc.platform = cmd->platform != NULL ? cmd->platform : "unknown";
    pc.now_ms = now;
    p = pending_new(c, cmd);
    p->private = private;
    p->now_ms = now;
    p->duration_ms = duration;
    p->quality = quality;
    /* pc's strings point into p->cmd, which the store copies */
    pc.track = p->cmd.track_id;
    pc.platform = p->cmd.platform != NULL ? p->cmd.platform : "unknown";
    if ((op = talas_state_playback_change(c->ctx, c->user, &pc, on_playback_done, p)) != NULL)
        p->playback_op = op;
}

void talas__ws_conn_detach(struct talas__ws_conn *c)
{
    while (c->pending != NULL) {
        struct talas__ws_pending *p = c->pending;
        talas_state_cancel(p->op);
        talas_state_playback_cancel(p->playback_op);
        pending_free(p);
    }
    /* closing counts as leaving its rooms (ws_rooms.c) */
    talas__ws_rooms_closed(c);
}

/* The failed CommandResponse of a playlist change that did not happen. */
static void playlist_refused(struct talas__ws_conn *c, const struct talas_ws_command *cmd,
                             const struct talas_state_playlist_result *r)
{
    char msg[256];

    switch (r->outcome) {
    case TALAS_STATE_QUOTA:
        /* the limit by its configuration key, as talas_http_send_refusal */
        snprintf(msg, sizeof(msg), "quota exceeded: limit %s (%llu) reached", r->refusal.limit,
                 (unsigned long long)r->refusal.max);
        respond(c, cmd->command_id, 0, NULL, msg);
        break;
    case TALAS_STATE_REFUSED:
    case TALAS_STATE_FORBIDDEN:
    case TALAS_STATE_NOT_FOUND:
        respond(c, cmd->command_id, 0, NULL, r->reason);
        break;
    case TALAS_STATE_UNAVAILABLE:
        snprintf(msg, sizeof(msg), "playlists unavailable: %s", r->reason);
        respond(c, cmd->command_id, 0, NULL, msg);
        break;
    case TALAS_STATE_FULL:
        respond(c, cmd->command_id, 0, NULL, "storage full: the change could not be stored");
        break;
    default:
        respond(c, cmd->command_id, 0, NULL, "the change could not be stored");
        break;
    }
}

static void on_playlist_done(void *data, const struct talas_state_playlist_result *r)
{
    struct talas__ws_pending *p = data;
    struct talas__ws_conn *c = p->c;
    const struct talas_ws_command *cmd = &p->cmd;
    struct talas_buf payload = {0}, ev = {0};
    struct talas_json json;
    int add = cmd->type == TALAS_WS_ADD_TO_PLAYLIST;

    if (r->outcome != TALAS_STATE_OK) {
        playlist_refused(c, cmd, r);
        pending_free(p);
        return;
    }
    data_uint(&payload, "position", r->position);
    respond(c, cmd->command_id, 1, &payload, NULL);
    talas_ws_event_begin(&json, &ev, "PlaylistUpdated");
    talas_json_key(&json, "playlist_id");
    talas_json_string(&json, cmd->playlist_id);
    talas_json_key(&json, "action");
    talas_json_string(&json, add ? "Added" : "Removed");
    talas_json_key(&json, "track_id");
    talas_json_string(&json, cmd->track_id);
    talas_json_key(&json, "position");
    talas_json_uint(&json, r->position);
    talas_json_object_end(&json);
    talas_ws_hub_publish(TALAS_WS_TO_ALL, NULL, ev.data, ev.len);
    talas_buf_free(&ev);
    talas_buf_free(&payload);
    pending_free(p);
}

static void do_playlist(struct talas__ws_conn *c, struct talas_ws_command *cmd)
{
    struct talas__ws_pending *p;
    const char *error = NULL;
    uint64_t duration;

    if (c->user == NULL) {
        respond(c, cmd->command_id, 0, NULL, "playlists need a user: connect with ?user_id= (or a token)");
        return;
    }
    if (cmd->type == TALAS_WS_ADD_TO_PLAYLIST && find_track(c->ctx, cmd->track_id, &duration, &error) != 0) {
        respond(c, cmd->command_id, 0, NULL, error);
        return;
    }
    p = pending_new(c, cmd);
    if (p->cmd.type == TALAS_WS_ADD_TO_PLAYLIST)
        pending_started(p, talas_state_playlist_add(c->ctx, c->user, p->cmd.playlist_id, p->cmd.track_id,
                                                    p->cmd.has_position, p->cmd.position, on_playlist_done, p));
    else
        pending_started(p, talas_state_playlist_remove(c->ctx, c->user, p->cmd.playlist_id, p->cmd.track_id,
                                                       on_playlist_done, p));
}

static void on_share_done(void *data, const struct talas_state_playlist_result *r)
{
    struct talas__ws_pending *p = data;
    struct talas__ws_conn *c = p->c;
    const struct talas_ws_command *cmd = &p->cmd;
    struct talas_buf payload = {0}, ev = {0};
    struct talas_json json;

    if (r->outcome != TALAS_STATE_OK) {
        playlist_refused(c, cmd, r);
        pending_free(p);
        return;
    }
    data_uint(&payload, "editors_added", r->editors_added);
    respond(c, cmd->command_id, 1, &payload, NULL);
    talas_ws_event_begin(&json, &ev, "PlaylistShared");
    talas_json_key(&json, "playlist_id");
    talas_json_string(&json, cmd->playlist_id);
    talas_json_key(&json, "from_user");
    talas_json_string(&json, c->user);
    talas_json_key(&json, "to_users");
    talas_json_array_begin(&json);
    for (size_t i = 0; i < cmd->to_user_count; i++)
        talas_json_string(&json, cmd->to_users[i]);
    talas_json_array_end(&json);
    talas_json_object_end(&json);
    for (size_t i = 0; i < cmd->to_user_count; i++)
        talas_ws_hub_publish(TALAS_WS_TO_USER, cmd->to_users[i], ev.data, ev.len);
    talas_buf_free(&ev);
    talas_buf_free(&payload);
    pending_free(p);
}

/* PlaylistShared from a client: its owner makes to_users editors; each of
 * them gets the event, as from the backend with send_to_user. */
static void do_share(struct talas__ws_conn *c, struct talas_ws_command *cmd)
{
    struct talas__ws_pending *p;

    if (c->user == NULL) {
        respond(c, cmd->command_id, 0, NULL, "playlists need a user: connect with ?user_id= (or a token)");
        return;
    }
    if (cmd->from_user != NULL && strcmp(cmd->from_user, c->user) != 0) {
        respond(c, cmd->command_id, 0, NULL, "forbidden: from_user must be the user of this connection");
        return;
    }
    p = pending_new(c, cmd);
    pending_started(p, talas_state_playlist_share(c->ctx, c->user, p->cmd.playlist_id,
                                                  (const char *const *)p->cmd.to_users, p->cmd.to_user_count,
                                                  on_share_done, p));
}

static void subs_json(struct talas_json *json, const struct talas__ws_conn *c, int with_filters)
{
    talas_json_array_begin(json);
    for (size_t i = 0; i < c->sub_count; i++) {
        if (!with_filters) {
            talas_json_string(json, c->subs[i].event);
            continue;
        }
        talas_json_object_begin(json);
        talas_json_key(json, "event");
        talas_json_string(json, c->subs[i].event);
        talas_json_key(json, "filters");
        talas_json_object_begin(json);
        for (size_t j = 0; j < c->subs[i].filter_count; j++) {
            talas_json_key(json, c->subs[i].filters[j].key);
            talas_json_string(json, c->subs[i].filters[j].value);
        }
        talas_json_object_end(json);
        talas_json_object_end(json);
    }
    talas_json_array_end(json);
}

static void drop_sub(struct talas__ws_conn *c, size_t i)
{
    free(c->subs[i].event);
    for (size_t j = 0; j < c->subs[i].filter_count; j++) {
        free(c->subs[i].filters[j].key);
        free(c->subs[i].filters[j].value);
    }
    free(c->subs[i].filters);
    c->subs[i] = c->subs[--c->sub_count];
}

static void do_subscribe(struct talas__ws_conn *c, struct talas_ws_command *cmd)
{
    struct talas_buf data = {0};
    struct talas_json json;

    for (size_t e = 0; e < cmd->event_count; e++) {
        for (size_t i = 0; i < c->sub_count; i++)
            if (strcmp(c->subs[i].event, cmd->events[e]) == 0) {
                drop_sub(c, i);
                break;
            }
        if (cmd->type == TALAS_WS_UNSUBSCRIBE)
            continue;
        /* at most one entry per event name, so the list stays bounded */
        c->subs = xrealloc(c->subs, (c->sub_count + 1) * sizeof(*c->subs));
        c->subs[c->sub_count].event = xstrdup(cmd->events[e]);
        c->subs[c->sub_count].filter_count = cmd->filter_count;
        c->subs[c->sub_count].filters =
            xcalloc(cmd->filter_count ? cmd->filter_count : 1, sizeof(struct talas_ws_filter));
        for (size_t j = 0; j < cmd->filter_count; j++) {
            c->subs[c->sub_count].filters[j].key = xstrdup(cmd->filters[j].key);
            c->subs[c->sub_count].filters[j].value = xstrdup(cmd->filters[j].value);
        }
        c->sub_count++;
    }
    talas_json_init(&json, &data);
    talas_json_object_begin(&json);
    talas_json_key(&json, "subscribed");
    subs_json(&json, c, 0);
    talas_json_object_end(&json);
    respond(c, cmd->command_id, 1, &data, NULL);
    talas_buf_free(&data);
}

static void on_status(void *data, const struct talas_state_playback_result *res)
{
    struct talas__ws_pending *p = data;
    struct talas__ws_conn *c = p->c;
    const struct talas_ws_command *cmd = &p->cmd;
    const struct talas_playback_state *st = &res->state;
    struct talas_ipc_stats sum, per[1];
    struct talas_buf data_buf = {0}, *dbuf = &data_buf;
    struct talas_json json;
    size_t n;
    int have = res->outcome == TALAS_STATE_OK;

    talas_ws_hub_stats(&sum, per, 0, &n);
    talas_json_init(&json, dbuf);
    talas_json_object_begin(&json);
    talas_json_key(&json, "connection_id");
    talas_json_string(&json, c->id);
    talas_json_key(&json, "user_id");
    talas_json_string(&json, c->user);
    talas_json_key(&json, "worker_pid");
    talas_json_int(&json, getpid());
    talas_json_key(&json, "worker");
    talas_json_int(&json, c->ctx->slot);
    talas_json_key(&json, "connected_at");
    talas_json_uint(&json, c->connected_ms / 1000);
    talas_json_key(&json, "subscriptions");
    subs_json(&json, c, 1);
    talas_json_key(&json, "playback");
    if (have && st->status != TALAS_PLAYBACK_STOPPED) {
        talas_json_object_begin(&json);
        talas_json_key(&json, "state");
        talas_json_string(&json, st->status == TALAS_PLAYBACK_PLAYING ? "playing" : "paused");
        talas_json_key(&json, "track_id");
        talas_json_string(&json, st->track_id);
        talas_json_key(&json, "position_ms");
        talas_json_uint(&json, st->position_ms);
        talas_json_key(&json, "quality");
        talas_json_string(&json, st->quality);
        talas_json_object_end(&json);
    } else {
        talas_json_null(&json);
    }
    talas_json_key(&json, "server");
    talas_json_object_begin(&json);
    talas_json_key(&json, "version");
    talas_json_string(&json, PACKAGE_VERSION);
    talas_json_key(&json, "time_ms");
    talas_json_uint(&json, talas_wall_ms());
    talas_json_key(&json, "worker_connections");
    talas_json_uint(&json, talas__ws_hub_connections());
    talas_json_key(&json, "current_connections");
    talas_json_uint(&json, sum.current_connections);
    talas_json_key(&json, "concurrent_listeners");
    talas_json_uint(&json, sum.open_streams);
    talas_json_object_end(&json);
    talas_json_object_end(&json);
    respond(c, cmd->command_id, 1, dbuf, NULL);
    talas_buf_free(dbuf);
    pending_free(p);
}

static void do_status(struct talas__ws_conn *c, struct talas_ws_command *cmd)
{
    struct talas_state_playback_result none;
    struct talas__ws_pending *p = pending_new(c, cmd);
    struct talas_state_playback_op *op;

    if (c->user == NULL) {
        memset(&none, 0, sizeof(none));
        on_status(p, &none);
        return;
    }
    if ((op = talas_state_playback_get(c->ctx, c->user, on_status, p)) != NULL)
        p->playback_op = op;
}

static void do_ping(struct talas__ws_conn *c, const struct talas_ws_command *cmd)
{
    struct talas_buf data = {0};
    struct talas_json json;
    uint64_t now = talas_wall_ms();

    talas_json_init(&json, &data);
    talas_json_object_begin(&json);
    talas_json_key(&json, "pong");
    talas_json_bool(&json, 1);
    talas_json_key(&json, "server_time_ms");
    talas_json_uint(&json, now);
    talas_json_key(&json, "timestamp");
    talas_json_uint(&json, now / 1000);
    talas_json_object_end(&json);
    respond(c, cmd->command_id, 1, &data, NULL);
    talas_buf_free(&data);
}

static void on_text(struct talas__ws_conn *c, const char *text, size_t len)
{
    struct talas_ws_command cmd;
    char *error = NULL;

    if (talas_ws_command_parse(text, len, &cmd, &error) != 0) {
        if (rate_limit(c, cmd.command_id) == 0)
            respond(c, cmd.command_id, 0, NULL, error);
        free(error);
        talas_ws_command_free(&cmd);
        return;
    }
    if (rate_limit(c, cmd.command_id) != 0) {
        talas_ws_command_free(&cmd);
        return;
    }
    switch (cmd.type) {
    case TALAS_WS_PLAY:
    case TALAS_WS_PAUSE:
    case TALAS_WS_STOP:
    case TALAS_WS_SEEK:
        do_playback(c, &cmd);
        break;
    case TALAS_WS_ADD_TO_PLAYLIST:
    case TALAS_WS_REMOVE_FROM_PLAYLIST:
        do_playlist(c, &cmd);
        break;
    case TALAS_WS_SUBSCRIBE:
    case TALAS_WS_UNSUBSCRIBE:
        do_subscribe(c, &cmd);
        break;
    case TALAS_WS_GET_STATUS:
        do_status(c, &cmd);
        break;
    case TALAS_WS_PING:
        do_ping(c, &cmd);
        break;
    case TALAS_WS_PLAYLIST_SHARED:
        do_share(c, &cmd);
        break;
    default:
        talas__ws_rooms_command(c, &cmd);
        break;
    }
    talas_ws_command_free(&cmd);
}

static void on_ws_message(struct talas_ws_transport *ws, const struct wslay_event_on_msg_recv_arg *arg,
                          void *data)
{
    struct talas__ws_conn *c = data;

    if (arg == NULL) {
        talas__ws_conn_free(c);
        talas_ws_transport_close(ws);
        return;
    }
    c->last_seen_ms = talas_now_ms();
    if (c->closing)
        return;
    switch (arg->opcode) {
    case WSLAY_TEXT_FRAME:
        talas__ws_received();
        on_text(c, (const char *)arg->msg, arg->msg_length);
        break;
    case WSLAY_BINARY_FRAME:
        talas__ws_received();
        if (rate_limit(c, "") == 0)
            respond(c, "", 0, NULL,
                    "binary frames are not supported: send each command as a JSON text frame");
        break;
    default:
        /* ping, pong, close: wslay answers them itself */
        break;
    }
}

/* The user of the connection: 0 with *user_r (malloc'd or NULL), or -1
 * when the request was answered (401). */
static int connection_user(const struct talas_worker_ctx *ctx, h2o_req_t *req, char **user_r)
{
    struct talas_token_claims claims;
    h2o_iovec_t v, token;
    const char *reason;
    char ip[64];
    int rc;

    *user_r = NULL;
    if (!ctx->conf->ws_auth_required) {
        rc = talas_http_query_param(req, "user_id", &v);
        if (rc == -1 ||
            (rc == 1 && (v.len == 0 || v.len > TALAS_WS_ID_MAX || !talas_utf8_valid(v.base, v.len)))) {
            talas_http_send_error(req, 400, "invalid_parameter", "user_id: must be 1 to %d bytes of UTF-8",
                                  TALAS_WS_ID_MAX);
            return -1;
        }
        if (rc == 1)
            *user_r = xstrndup(v.base, v.len);
        return 0;
    }
    rc = talas_http_token(req, &token, &reason);
    if (rc == 1 && talas_token_verify(ctx->token, token.base, token.len, NULL, 0,
                                      talas_http_client_ip(req, ip), &claims, &reason) == TALAS_TOKEN_OK) {
        if (claims.sub[0] != '\0') {
            *user_r = xstrdup(claims.sub);
            return 0;
        }
        reason = "the token names no user (sub)";
    } else if (rc == 0) {
        reason = "no token";
    }
    log_warn("ws: 401 for /api/ws from %s: %s", talas_http_client_ip(req, ip), reason);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL,
                   H2O_STRLIT("Bearer realm=\"talas\""));
    talas_http_send_error(req, 401, "unauthorized", "a valid token whose sub names the user is required");
    return -1;
}

int talas_ws_serve(const struct talas_worker_ctx *ctx, h2o_req_t *req)
{
    struct talas_ws_identity *identity;
    struct talas_quota_refusal refusal;
    struct talas__ws_conn *c;
    const char *key;
    char *user, ip[64];

    if (!talas_http_method_is(req, "GET")) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("GET"));
        talas_http_send_error(req, 405, "method_not_allowed", "%.*s is not allowed here",
                              (int)req->method.len, req->method.base);
        return 0;
    }
    if (req->version >= 0x200 || h2o_is_websocket_handshake(req, &key) != 0 || key == NULL) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_UPGRADE, NULL, H2O_STRLIT("websocket"));
        talas_http_send_error(req, 426, "upgrade_required",
                              "/api/ws is a WebSocket endpoint: send an HTTP/1.1 Upgrade: websocket request");
        return 0;
    }
    if (connection_user(ctx, req, &user) != 0)
        return 0;
    /* whose limits: the token's user; without ws.auth_required a user_id
     * is only a claim, so the client's address */
    identity = talas_ws_limits_open(ctx->conf->ws_auth_required ? user : NULL, talas_http_client_ip(req, ip),
                                    &refusal);
    if (identity == NULL) {
        free(user);
        talas_http_send_refusal(req, 429, &refusal);
        return 0;
    }
    if ((c = talas__ws_conn_new()) == NULL) {
        talas_ws_limits_close(identity);
        free(user);
        talas_http_send_error(req, 503, "too_many_connections",
                              "this worker has ws.max_connections connections");
        return 0;
    }
    c->ctx = ctx;
    c->user = user;
    c->identity = identity;
    c->connected_ms = talas_wall_ms();
    c->ws = talas_ws_transport_upgrade(req, key, ctx->conf->ws_max_message_size, on_ws_message, c);
    return 0;
}
