/*
 * ws_rooms.c - listening rooms on /api/ws: CreateRoom, JoinRoom,
 * LeaveRoom, RoomPlay, RoomPause, RoomSeek, RoomSkip, RoomQueueAdd,
 * RoomQueueRemove, RoomQueueMove, RoomMemberStatus and TimeSync, and the
 * events RoomState, RoomMemberJoined, RoomMemberLeft, RoomQueueUpdated.
 *
 * Entry points: talas__ws_rooms_command, talas__ws_rooms_closed (ws_conn.c),
 * talas_ws_room_state_json, talas_ws_room_invite, talas_ws_room_publish
 * (http_rooms.c too).
 *
 * The server is the clock (store/room_clock.h). Every command is one
 * short transaction of the room store (state/state_rooms.h): the room is
 * read, made current (stale members dropped, the host handed over, the
 * lazy next-entry rule), checked (a member; in a "host" room only the host
 * controls the playback and reorders the queue), changed and written back.
 * The catalog and playlists a RoomQueueAdd or RoomPlay names are read
 * first, in a read transaction of their own; an artist's tracks (a walk
 * of the whole catalog) on the worker's pool (media/artist_scan.h), the
 * command answered when the walk is over. Events go to every
 * connection joined to the room on every worker (TALAS_WS_TO_ROOM, relayed
 * by the master). A connection joins at most TALAS__WS_MAX_ROOMS rooms;
 * closing it counts as its user leaving unless the user has another
 * joined connection (the member counts them).
 *
 * Errors start with their code: "invalid: ", "not_found: room",
 * "forbidden: ", "quota: ", "unavailable: ".
 *
 * Logs: tokens that cannot be minted; the store logs its failures.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/token.h"
#include "core/util.h"
#include "media/artist_scan.h"
#include "realtime/ws_rooms.h"
#include "state/state_rooms.h"
#include "store/catalog.h"
#include "store/playlists.h"

/* ------------------------------------------------------------ the state */

char *talas_ws_room_invite(const struct talas_worker_ctx *ctx, const char *id)
{
    char *token = NULL, *error = NULL;
    time_t exp;

    if (talas_token_mint_room(ctx->token, id, ctx->conf->rooms_invite_ttl_ms / 1000, &token, &exp, &error) !=
        0) {
        log_warn("rooms: no invite for room %s: %s", id, error);
        free(error);
        return NULL;
    }
    return token;
}

static void playback_json(struct talas_json *json, const struct talas_room_playback *pb)
{
    talas_json_object_begin(json);
    talas_json_key(json, "track_id");
    if (pb->track_id[0] != '\0')
        talas_json_string(json, pb->track_id);
    else
        talas_json_null(json);
    talas_json_key(json, "entry_id");
    if (pb->entry_id[0] != '\0')
        talas_json_string(json, pb->entry_id);
    else
        talas_json_null(json);
    talas_json_key(json, "position_ms");
    talas_json_uint(json, pb->position_ms);
    talas_json_key(json, "at_server_ms");
    talas_json_uint(json, pb->at_server_ms);
    talas_json_key(json, "playing");
    talas_json_bool(json, pb->playing);
    talas_json_object_end(json);
}

static void queue_json(struct talas_json *json, const struct talas_room *r)
{
    talas_json_array_begin(json);
    for (size_t i = 0; i < r->queue_count; i++) {
        const struct talas_room_entry *e = &r->queue[i];
        talas_json_object_begin(json);
        talas_json_key(json, "entry_id");
        talas_json_string(json, e->entry_id);
        talas_json_key(json, "track_id");
        talas_json_string(json, e->track_id);
        talas_json_key(json, "title");
        talas_json_string(json, e->title != NULL ? e->title : "");
        talas_json_key(json, "artist");
        talas_json_string(json, e->artist != NULL ? e->artist : "");
        talas_json_key(json, "duration_ms");
        talas_json_uint(json, e->duration_ms);
        talas_json_object_end(json);
    }
    talas_json_array_end(json);
}

/* Member M of room R as the state lists it; behind_ms projected to NOW,
 * ROOM_POS being the room's position then. */
static void member_json(struct talas_json *json, const struct talas_room *r,
                        const struct talas_room_member *m, uint64_t now, uint64_t room_pos)
{
    talas_json_object_begin(json);
    talas_json_key(json, "user_id");
    talas_json_string(json, m->user_id);
    talas_json_key(json, "joined_at_ms");
    talas_json_uint(json, m->joined_at_ms);
    talas_json_key(json, "position_ms");
    if (m->reported)
        talas_json_uint(json, m->position_ms);
    else
        talas_json_null(json);
    talas_json_key(json, "reported_at_ms");
    if (m->reported)
        talas_json_uint(json, m->reported_at_ms);
    else
        talas_json_null(json);
    talas_json_key(json, "buffering");
    talas_json_bool(json, m->buffering);
    talas_json_key(json, "behind_ms");
    if (m->reported) {
        /* the member's report projected to now: it plays on unless
         * it buffers or the room is paused */
        uint64_t at = m->position_ms;
        if (r->playback.playing && !m->buffering && now > m->reported_at_ms)
            at += now - m->reported_at_ms;
        talas_json_int(json, (int64_t)room_pos - (int64_t)at);
    } else {
        talas_json_null(json);
    }
    talas_json_object_end(json);
}

/* The fields every state of R starts with. */
static void state_head_json(struct talas_json *json, const struct talas_room *r)
{
    talas_json_key(json, "id");
    talas_json_string(json, r->id);
    talas_json_key(json, "name");
    talas_json_string(json, r->name);
    talas_json_key(json, "mode");
    talas_json_string(json, r->mode == TALAS_ROOM_HOST ? "host" : "open");
    talas_json_key(json, "host");
    talas_json_string(json, r->host);
}

void talas_ws_room_state_json(const struct talas_worker_ctx *ctx, struct talas_json *json,
                              const struct talas_room *r, uint64_t now, int with_invite)
{
    uint64_t room_pos = talas_room_clock_position(&r->playback, now);

    talas_json_object_begin(json);
    state_head_json(json, r);
    talas_json_key(json, "members");
    talas_json_array_begin(json);
    for (size_t i = 0; i < r->member_count; i++)
        member_json(json, r, &r->members[i], now, room_pos);
    talas_json_array_end(json);
    talas_json_key(json, "queue");
    queue_json(json, r);
    talas_json_key(json, "playback");
    playback_json(json, &r->playback);
    talas_json_key(json, "server_ms");
    talas_json_uint(json, now);
    if (with_invite) {
        char *token = talas_ws_room_invite(ctx, r->id);
        if (token != NULL) {
            struct talas_buf url = {0};
            talas_buf_printf(&url, "/?room=%s&invite=%s", r->id, token);
            talas_json_key(json, "invite_url");
            talas_json_string_n(json, url.data, url.len);
            talas_buf_free(&url);
            free(token);
        }
    }
    talas_json_object_end(json);
}

void talas_ws_room_lean_json(struct talas_json *json, const struct talas_room *r, uint64_t now)
{
    talas_json_object_begin(json);
    state_head_json(json, r);
    talas_json_key(json, "member_count");
    talas_json_uint(json, r->member_count);
    talas_json_key(json, "queue_length");
    talas_json_uint(json, r->queue_count);
    talas_json_key(json, "playback");
    playback_json(json, &r->playback);
    talas_json_key(json, "server_ms");
    talas_json_uint(json, now);
    talas_json_object_end(json);
}

/*
 * An event goes to every member at once, on every worker: it carries what
 * changed, not the whole room (a room of 1,000 members would send each of
 * them the 1,000 members at every seek), and no invite (a token minted per
 * event). "room" is the lean state (talas_ws_room_lean_json); members
 * fetch the full state with JoinRoom or GET /api/rooms/{id}.
 */
void talas_ws_room_publish(const struct talas_worker_ctx *ctx, const char *event, const struct talas_room *r,
                           const char *user, uint64_t now)
{
    struct talas_buf b = {0};
    struct talas_json json;

    (void)ctx;
    talas_ws_event_begin(&json, &b, event);
    talas_json_key(&json, "room_id");
    talas_json_string(&json, r->id);
    if (user != NULL) {
        const struct talas_room_member *m = NULL;
        for (size_t i = 0; i < r->member_count && m == NULL; i++)
            if (strcmp(r->members[i].user_id, user) == 0)
                m = &r->members[i];
        talas_json_key(&json, "user_id");
        talas_json_string(&json, user);
        /* the member joined, or whose report changed (RoomState) */
        if (m != NULL && strcmp(event, "RoomMemberLeft") != 0) {
            talas_json_key(&json, "member");
            member_json(&json, r, m, now, talas_room_clock_position(&r->playback, now));
        }
    }
    if (strcmp(event, "RoomMemberLeft") == 0) {
        talas_json_key(&json, "host");
        talas_json_string(&json, r->host);
    }
    if (strcmp(event, "RoomQueueUpdated") == 0) {
        talas_json_key(&json, "queue");
        queue_json(&json, r);
    }
    talas_json_key(&json, "room");
    talas_ws_room_lean_json(&json, r, now);
    talas_json_object_end(&json);
    talas_ws_hub_publish(TALAS_WS_TO_ROOM, r->id, b.data, b.len);
    talas_buf_free(&b);
}

/* The events of what making R current changed (NORM, talas_room_normalize):
 * RoomMemberLeft for each member dropped as stale, RoomState for a host
 * handed over without one. */
static void publish_normalized(const struct talas_worker_ctx *ctx, const struct talas_room *r, unsigned norm,
                               uint64_t now)
{
    for (size_t i = 0; i < r->dropped_count; i++)
        talas_ws_room_publish(ctx, "RoomMemberLeft", r, r->dropped[i], now);
    if ((norm & TALAS_ROOM_NORM_HOST) && r->dropped_count == 0)
        talas_ws_room_publish(ctx, "RoomState", r, NULL, now);
}

/* ----------------------------------------------------------- answering */

static void respond(struct talas__ws_conn *c, const char *command_id, const struct talas_buf *data,
                    const char *error)
{
    struct talas_buf out = {0};

    talas_ws_command_response(&out, command_id, error == NULL, data != NULL ? data->data : NULL,
                              data != NULL ? data->len : 0, error);
    talas__ws_send(c, out.data, out.len);
    talas_buf_free(&out);
}

static void respond_state(struct talas__ws_conn *c, const char *command_id, const struct talas_room *r,
                          uint64_t now)
{
    struct talas_buf data = {0};
    struct talas_json json;

    talas_json_init(&json, &data);
    talas_ws_room_state_json(c->ctx, &json, r, now, 1);
    respond(c, command_id, &data, NULL);
    talas_buf_free(&data);
}

/* What one command changes in the room, for its change function. */
struct change {
    const struct talas_ws_command *cmd;
    const struct talas__ws_conn *c;
    struct talas_room_limits lim;
    const char *reason;                 /* refusals: after the code */
    struct talas_quota_refusal refusal; /* quota */
    int invited;                        /* JoinRoom: a valid invite for this room */
    int new_connection;                 /* JoinRoom: this connection had not joined */
    int joined, left, buffering_changed;
    struct talas_room_entry *add; /* RoomQueueAdd, RoomPlay track_id: read from the catalog */
    size_t add_count;
};

static int refuse(struct change *ch, int rc, const char *reason)
{
    ch->reason = reason;
    return rc;
}

static int may_control(struct talas_room *r, struct change *ch)
{
    const char *user = ch->c->user;

    if (talas_room_member_find(r, user) == NULL)
        return refuse(ch, TALAS_ROOM_FORBIDDEN, "not a member of this room");
    if (!talas_room_may_control(r, user))
        return refuse(ch, TALAS_ROOM_FORBIDDEN, "only the host controls this room");
    return 0;
}

static int change_room(struct talas_room *r, uint64_t now, void *arg)
{
    struct change *ch = arg;
    const struct talas_ws_command *cmd = ch->cmd;
    const char *user = ch->c->user;
    int rc;

    switch (cmd->type) {
    case TALAS_WS_JOIN_ROOM:
        if (talas_room_member_find(r, user) == NULL && !ch->invited && strcmp(r->host, user) != 0 &&
            ch->new_connection)
            return refuse(ch, TALAS_ROOM_FORBIDDEN,
                          cmd->invite != NULL ? "the invite is not valid for this room"
                                              : "an invite is required to join this room");
        /* a connection still joined to a room whose member was dropped
         * (stale) counts again */
        return talas_room_join(r, &ch->lim, user,
                               ch->new_connection || talas_room_member_find(r, user) == NULL, now,
                               &ch->joined, &ch->refusal);
    case TALAS_WS_LEAVE_ROOM:
        if ((rc = talas_room_leave(r, user, 0, now)) < 0)
            return refuse(ch, rc, "not a member of this room");
        ch->left = 1;
        return 0;
    case TALAS_WS_ROOM_PLAY:
        if ((rc = may_control(r, ch)) != 0)
            return rc;
        if (cmd->track_id != NULL) {
            /* right after the current entry, and played */
            long cur = talas_room_clock_find(r->queue, r->queue_count, r->playback.entry_id);
            size_t at = cur >= 0 ? (size_t)cur + 1 : r->queue_count;
            if ((rc = talas_room_queue_insert(r, &ch->lim, at, ch->add, ch->add_count, &ch->refusal)) != 0)
                return rc;
            return talas_room_play(r, r->queue[at].entry_id, cmd->has_position_ms, cmd->position_ms, now);
        }
        if (cmd->entry_id == NULL && r->queue_count == 0)
            return refuse(ch, TALAS_ROOM_INVALID, "the queue is empty");
        if ((rc = talas_room_play(r, cmd->entry_id, cmd->has_position_ms, cmd->position_ms, now)) != 0)
            return refuse(ch, rc, "entry_id: no such entry in the queue");
        return 0;
    case TALAS_WS_ROOM_PAUSE:
        if ((rc = may_control(r, ch)) != 0)
            return rc;
        talas_room_pause(r, cmd->has_position_ms, cmd->position_ms, now);
        return 0;
    case TALAS_WS_ROOM_SEEK:
        if ((rc = may_control(r, ch)) != 0)
            return rc;
        if ((rc = talas_room_seek(r, cmd->position_ms, now)) != 0)
            return refuse(ch, rc, "nothing is playing: play an entry first");
        return 0;
    case TALAS_WS_ROOM_SKIP:
        if ((rc = may_control(r, ch)) != 0)
            return rc;
        talas_room_skip(r, now);
        return 0;
    case TALAS_WS_ROOM_QUEUE_ADD:
        if (talas_room_member_find(r, user) == NULL)
            return refuse(ch, TALAS_ROOM_FORBIDDEN, "not a member of this room");
        return talas_room_queue_insert(r, &ch->lim, cmd->has_position ? cmd->position : r->queue_count,
                                       ch->add, ch->add_count, &ch->refusal);
    case TALAS_WS_ROOM_QUEUE_REMOVE:
        if ((rc = may_control(r, ch)) != 0)
            return rc;
        if ((rc = talas_room_queue_remove(r, cmd->entry_id, now)) != 0)
            return refuse(ch, rc, "entry_id: no such entry in the queue");
        return 0;
    case TALAS_WS_ROOM_QUEUE_MOVE:
        if ((rc = may_control(r, ch)) != 0)
            return rc;
        if ((rc = talas_room_queue_move(r, cmd->entry_id, cmd->position)) != 0)
            return refuse(ch, rc, "entry_id: no such entry in the queue");
        return 0;
    case TALAS_WS_ROOM_MEMBER_STATUS:
        if ((rc = talas_room_report(r, user, cmd->position_ms, cmd->buffering, now,
                                    &ch->buffering_changed)) != 0)
            return refuse(ch, rc, "not a member of this room");
        return 0;
    default:
        return TALAS_ROOM_UNCHANGED;
    }
}

/* The answer's error for OUTCOME, into BUF; NULL for OK. */
static const char *error_text(enum talas_state_outcome outcome, const struct change *ch, char *buf,
                              size_t size)
{
    switch (outcome) {
    case TALAS_STATE_OK:
        return NULL;
    case TALAS_STATE_NOT_FOUND:
        return "not_found: room";
    case TALAS_STATE_REFUSED:
        snprintf(buf, size, "invalid: %s", ch->reason != NULL ? ch->reason : "refused");
        return buf;
    case TALAS_STATE_FORBIDDEN:
        snprintf(buf, size, "forbidden: %s", ch->reason != NULL ? ch->reason : "not allowed");
        return buf;
    case TALAS_STATE_QUOTA:
        snprintf(buf, size, "quota: %s (%llu)", ch->refusal.limit, (unsigned long long)ch->refusal.max);
        return buf;
    case TALAS_STATE_UNAVAILABLE:
        snprintf(buf, size, "unavailable: %s", talas_state_rooms_no_cluster);
        return buf;
    case TALAS_STATE_FULL:
        return "unavailable: the storage is full";
    default:
        return "unavailable: the room could not be stored";
    }
}

/* ------------------------------------------------- catalog and playlists */

static void entry_from_track(struct talas_room_entry *e, const struct talas_track *t)
{
    memset(e, 0, sizeof(*e));
    snprintf(e->track_id, sizeof(e->track_id), "%s", t->id);
    e->title = xstrdup(t->title != NULL ? t->title : "");
    e->artist = xstrdup(t->artist != NULL ? t->artist : "");
    e->duration_ms = t->duration_ms;
}

static void entries_free(struct change *ch)
{
    for (size_t i = 0; i < ch->add_count; i++) {
        free(ch->add[i].title);
        free(ch->add[i].artist);
    }
    free(ch->add);
    ch->add = NULL;
    ch->add_count = 0;
}

static void entry_push(struct change *ch, const struct talas_track *t)
{
    ch->add = xrealloc(ch->add, (ch->add_count + 1) * sizeof(*ch->add));
    entry_from_track(&ch->add[ch->add_count++], t);
}

struct playlist_walk {
    const char *user;
    int readable;
    char **tracks;
    size_t count, max;
    int over;
};

static void pl_owner(const char *owner, void *arg)
{
    struct playlist_walk *w = arg;
    if (strcmp(owner, w->user) == 0)
        w->readable = 1;
}

static void pl_editor(const char *user, size_t index, void *arg)
{
    struct playlist_walk *w = arg;
    (void)index;
    if (strcmp(user, w->user) == 0)
        w->readable = 1;
}

static void pl_meta(const struct talas_playlist_meta *m, void *arg)
{
    struct playlist_walk *w = arg;
    if (m->public_)
        w->readable = 1;
}

static void pl_track(const char *track, size_t index, void *arg)
{
    struct playlist_walk *w = arg;
    (void)index;
    if (w->count == w->max) {
        w->over = 1;
        return;
    }
    w->tracks[w->count++] = xstrdup(track);
}

/*
 * Reads what CMD adds (a track, a playlist's tracks) into CH->add. Returns
 * NULL, or the error to answer. (An artist's tracks are walked on the
 * pool: artist_added.)
 */
static const char *read_entries(const struct talas__ws_conn *c, const struct talas_ws_command *cmd,
                                struct change *ch, char *buf, size_t size)
{
    struct talas_storage *st = c->ctx->storage;
    const char *error = NULL;
    struct talas_track t;
    MDB_txn *txn;
    size_t max = ch->lim.max_queue;

    if (talas_storage_read_begin(st, &txn) != 0)
        return "unavailable: the catalog could not be read";
    if (cmd->track_id != NULL) {
        if (!talas_track_id_valid(cmd->track_id, strlen(cmd->track_id)) ||
            talas_catalog_resolve(st, txn, cmd->track_id, &t) != 0 || t.error != NULL)
            error = "invalid: track_id: no such track";
        else
            entry_push(ch, &t);
    } else {
        struct playlist_walk w = {.user = c->user, .max = max};
        struct talas_playlist_reader rd = {pl_owner, pl_editor, pl_track, pl_meta};
        int rc;
        w.tracks = xcalloc(max + 1, sizeof(char *));
        rc = talas_playlist_get(st, txn, cmd->playlist_id, &rd, &w);
        if (rc == MDB_NOTFOUND) {
            error = "invalid: playlist_id: no such playlist";
        } else if (rc != 0) {
            error = "unavailable: the playlist could not be read";
        } else if (!w.readable) {
            error = "forbidden: this playlist is not yours, shared with you, or public";
        } else if (w.over) {
            snprintf(buf, size, "quota: rooms.max_queue (%zu)", max);
            error = buf;
        } else {
            for (size_t i = 0; i < w.count; i++)
                if (talas_catalog_resolve(st, txn, w.tracks[i], &t) == 0 && t.error == NULL)
                    entry_push(ch, &t);
            if (ch->add_count == 0)
                error = "invalid: playlist_id: no playable track in this playlist";
        }
        for (size_t i = 0; i < w.count; i++)
            free(w.tracks[i]);
        free(w.tracks);
    }
    mdb_txn_abort(txn);
    return error;
}

/* -------------------------------------------------------------- commands */

static void conn_add_room(struct talas__ws_conn *c, const char *id)
{
    if (talas__ws_conn_in_room(c, id, strlen(id)) || c->room_count == TALAS__WS_MAX_ROOMS)
        return;
    snprintf(c->rooms[c->room_count++], sizeof(c->rooms[0]), "%s", id);
}

static void conn_drop_room(struct talas__ws_conn *c, const char *id)
{
    for (size_t i = 0; i < c->room_count; i++)
        if (strcmp(c->rooms[i], id) == 0) {
            memmove(&c->rooms[i], &c->rooms[i + 1], (c->room_count - i - 1) * sizeof(c->rooms[0]));
            c->room_count--;
            return;
        }
}

static void do_create(struct talas__ws_conn *c, const struct talas_ws_command *cmd)
{
    struct talas_quota_refusal refusal = {0};
    struct talas_buf data = {0};
    struct talas_json json;
    struct talas_room r;
    uint64_t now = talas_wall_ms();
    char msg[192], *token;
    int joined;

    if (c->room_count == TALAS__WS_MAX_ROOMS) {
        snprintf(msg, sizeof(msg), "quota: a connection joins at most %d rooms", TALAS__WS_MAX_ROOMS);
        respond(c, cmd->command_id, NULL, msg);
        return;
    }
    memset(&r, 0, sizeof(r));
    talas_room_id_make(r.id);
    snprintf(r.name, sizeof(r.name), "%s", cmd->name);
    r.mode = cmd->host_mode ? TALAS_ROOM_HOST : TALAS_ROOM_OPEN;
    snprintf(r.host, sizeof(r.host), "%s", c->user);
    r.created_ms = now;
    {
        struct talas_room_limits lim;
        talas_state_rooms_limits(c->ctx, &lim);
        talas_room_join(&r, &lim, c->user, 1, now, &joined, NULL);
    }
    switch (talas_state_room_create(c->ctx, &r, now, &refusal)) {
    case TALAS_STATE_OK:
        break;
    case TALAS_STATE_QUOTA:
        snprintf(msg, sizeof(msg), "quota: %s (%llu)", refusal.limit, (unsigned long long)refusal.max);
        respond(c, cmd->command_id, NULL, msg);
        talas_room_free(&r);
        return;
    case TALAS_STATE_UNAVAILABLE:
        snprintf(msg, sizeof(msg), "unavailable: %s", talas_state_rooms_no_cluster);
        respond(c, cmd->command_id, NULL, msg);
        talas_room_free(&r);
        return;
    default:
        respond(c, cmd->command_id, NULL, "unavailable: the room could not be stored");
        talas_room_free(&r);
        return;
    }
    conn_add_room(c, r.id);
    token = talas_ws_room_invite(c->ctx, r.id);
    talas_json_init(&json, &data);
    talas_json_object_begin(&json);
    talas_json_key(&json, "id");
    talas_json_string(&json, r.id);
    if (token != NULL) {
        struct talas_buf url = {0};
        talas_buf_printf(&url, "/?room=%s&invite=%s", r.id, token);
        talas_json_key(&json, "invite_url");
        talas_json_string_n(&json, url.data, url.len);
        talas_json_key(&json, "invite_token");
        talas_json_string(&json, token);
        talas_buf_free(&url);
        free(token);
    }
    talas_json_key(&json, "room");
    talas_ws_room_state_json(c->ctx, &json, &r, now, 1);
    talas_json_object_end(&json);
    respond(c, cmd->command_id, &data, NULL);
    talas_buf_free(&data);
    talas_room_free(&r);
}

/* Whether INVITE is a valid invite to ROOM. */
static int invite_ok(const struct talas__ws_conn *c, const char *invite, const char *room)
{
    struct talas_token_claims claims;
    const char *reason;

    if (invite == NULL)
        return 0;
    if (talas_token_verify(c->ctx->token, invite, strlen(invite), NULL, TALAS_TOKEN_ROOM, NULL, &claims,
                           &reason) != TALAS_TOKEN_OK)
        return 0;
    return strcmp(claims.room, room) == 0;
}

static void do_time_sync(struct talas__ws_conn *c, const struct talas_ws_command *cmd)
{
    struct talas_buf data = {0};
    struct talas_json json;

    talas_json_init(&json, &data);
    talas_json_object_begin(&json);
    talas_json_key(&json, "server_ms");
    talas_json_uint(&json, talas_wall_ms());
    talas_json_key(&json, "client_ms");
    if (!cmd->has_client_ms)
        talas_json_null(&json);
    else if (cmd->client_ms == (double)(uint64_t)cmd->client_ms)
        talas_json_uint(&json, (uint64_t)cmd->client_ms);
    else
        talas_json_double(&json, cmd->client_ms);
    talas_json_object_end(&json);
    respond(c, cmd->command_id, &data, NULL);
    talas_buf_free(&data);
}

static void run_change(struct talas__ws_conn *c, const struct talas_ws_command *cmd, struct change *ch);

/*
 * A RoomQueueAdd {artist} whose walk of the catalog runs on the pool
 * (media/artist_scan.h): it owns the parsed command and sits in its
 * connection's list; a connection that closes first detaches it
 * (talas__ws_rooms_closed) and the add is dropped (its user left).
 */
struct talas__ws_room_wait {
    struct talas__ws_conn *c;
    struct talas__ws_room_wait *next, **pprev;
    struct talas_artist_scan *scan;
    struct talas_ws_command cmd;
};

static void wait_free(struct talas__ws_room_wait *w)
{
    *w->pprev = w->next;
    if (w->next != NULL)
        w->next->pprev = w->pprev;
    talas_ws_command_free(&w->cmd);
    free(w);
}

static void artist_added(void *arg, const struct talas_artist_scan_result *a)
{
    struct talas__ws_room_wait *w = arg;
    struct talas__ws_conn *c = w->c;
    const struct talas_ws_command *cmd = &w->cmd;
    struct change ch;
    char msg[128];

    memset(&ch, 0, sizeof(ch));
    ch.cmd = cmd;
    ch.c = c;
    talas_state_rooms_limits(c->ctx, &ch.lim);
    if (a->cancelled) {
        respond(c, cmd->command_id, NULL, "unavailable: the worker is stopping; try again");
    } else if (a->rc != 0) {
        log_error("rooms: reading the catalog failed: %s", a->rc > 0 ? mdb_strerror(a->rc) : "damaged");
        respond(c, cmd->command_id, NULL, "unavailable: the catalog could not be read");
    } else if (a->too_many) {
        snprintf(msg, sizeof(msg), "quota: rooms.max_queue (%zu)", (size_t)ch.lim.max_queue);
        respond(c, cmd->command_id, NULL, msg);
    } else if (a->count == 0) {
        respond(c, cmd->command_id, NULL, "invalid: artist: no tracks of this artist");
    } else {
        ch.add = xcalloc(a->count, sizeof(*ch.add));
        for (size_t i = 0; i < a->count; i++) {
            struct talas_room_entry *e = &ch.add[ch.add_count++];
            memcpy(e->track_id, a->tracks[i].id, sizeof(e->track_id));
            e->title = xstrdup(a->tracks[i].title);
            e->artist = xstrdup(a->tracks[i].artist);
            e->duration_ms = a->tracks[i].duration_ms;
        }
        run_change(c, cmd, &ch);
    }
    wait_free(w);
}

/* RoomQueueAdd {artist}: the walk reads every record of the catalog, on
 * the pool; the command (moved out of CMD) goes on in artist_added. */
static void walk_artist(struct talas__ws_conn *c, struct talas_ws_command *cmd)
{
    struct talas__ws_room_wait *w = xcalloc(1, sizeof(*w));
    struct talas_room_limits lim;

    w->c = c;
    w->cmd = *cmd;
    memset(cmd, 0, sizeof(*cmd)); /* the wait owns its strings now */
    if ((w->next = c->room_waits) != NULL)
        w->next->pprev = &w->next;
    w->pprev = &c->room_waits;
    c->room_waits = w;
    talas_state_rooms_limits(c->ctx, &lim);
    w->scan = talas_artist_scan_start(c->ctx->pool, c->ctx->storage, w->cmd.artist,
                                      TALAS_ARTIST_SCAN_ALBUM_ARTIST, lim.max_queue, artist_added, w);
}

void talas__ws_rooms_command(struct talas__ws_conn *c, struct talas_ws_command *cmd)
{
    struct change ch;
    const char *error;
    char msg[256];

    if (cmd->type == TALAS_WS_TIME_SYNC) {
        do_time_sync(c, cmd);
        return;
    }
    if (c->user == NULL) {
        respond(c, cmd->command_id, NULL,
                "forbidden: rooms need a user: connect with a token (or ?user_id=)");
        return;
    }
    if (cmd->type == TALAS_WS_CREATE_ROOM) {
        do_create(c, cmd);
        return;
    }
    memset(&ch, 0, sizeof(ch));
    ch.cmd = cmd;
    ch.c = c;
    talas_state_rooms_limits(c->ctx, &ch.lim);
    if (cmd->type == TALAS_WS_JOIN_ROOM) {
        ch.new_connection = !talas__ws_conn_in_room(c, cmd->room_id, strlen(cmd->room_id));
        if (ch.new_connection && c->room_count == TALAS__WS_MAX_ROOMS) {
            snprintf(msg, sizeof(msg), "quota: a connection joins at most %d rooms", TALAS__WS_MAX_ROOMS);
            respond(c, cmd->command_id, NULL, msg);
            return;
        }
        ch.invited = invite_ok(c, cmd->invite, cmd->room_id);
    }
    if (cmd->type == TALAS_WS_ROOM_QUEUE_ADD && cmd->artist != NULL) {
        walk_artist(c, cmd);
        return;
    }
    if (cmd->type == TALAS_WS_ROOM_QUEUE_ADD || (cmd->type == TALAS_WS_ROOM_PLAY && cmd->track_id != NULL)) {
        if ((error = read_entries(c, cmd, &ch, msg, sizeof(msg))) != NULL) {
            respond(c, cmd->command_id, NULL, error);
            entries_free(&ch);
            return;
        }
    }
    run_change(c, cmd, &ch);
}

/* Runs CH, the change of command CMD of C (what it adds read), in the
 * room store; answers and publishes. Frees CH's entries. */
static void run_change(struct talas__ws_conn *c, const struct talas_ws_command *cmd, struct change *ch)
{
    struct talas_room r;
    enum talas_state_outcome outcome;
    const char *error;
    uint64_t now;
    unsigned norm = 0;
    char msg[256];

    now = talas_wall_ms();
    outcome =
        talas_state_room_update(c->ctx, cmd->room_id, c->user, now, change_room, ch, &r, &norm, &ch->refusal);
    entries_free(ch);
    if ((error = error_text(outcome, ch, msg, sizeof(msg))) != NULL) {
        respond(c, cmd->command_id, NULL, error);
        if (outcome == TALAS_STATE_NOT_FOUND)
            conn_drop_room(c, cmd->room_id);
        else if (outcome != TALAS_STATE_UNAVAILABLE)
            publish_normalized(c->ctx, &r, norm, now);
        talas_room_free(&r);
        return;
    }
    publish_normalized(c->ctx, &r, norm, now);
    switch (cmd->type) {
    case TALAS_WS_JOIN_ROOM:
        conn_add_room(c, r.id);
        respond_state(c, cmd->command_id, &r, now);
        if (ch->joined)
            talas_ws_room_publish(c->ctx, "RoomMemberJoined", &r, c->user, now);
        break;
    case TALAS_WS_LEAVE_ROOM: {
        struct talas_buf data = {0};
        struct talas_json json;
        /* the user's other connections here are no longer members either */
        conn_drop_room(c, r.id);
        talas__ws_user_drop_room(c->user, r.id);
        talas_json_init(&json, &data);
        talas_ws_room_state_json(c->ctx, &json, &r, now, 0);
        respond(c, cmd->command_id, &data, NULL);
        talas_buf_free(&data);
        talas_ws_room_publish(c->ctx, "RoomMemberLeft", &r, c->user, now);
        break;
    }
    case TALAS_WS_ROOM_QUEUE_ADD:
    case TALAS_WS_ROOM_QUEUE_REMOVE:
    case TALAS_WS_ROOM_QUEUE_MOVE:
        respond_state(c, cmd->command_id, &r, now);
        talas_ws_room_publish(c->ctx, "RoomQueueUpdated", &r, NULL, now);
        break;
    case TALAS_WS_ROOM_PLAY:
        respond_state(c, cmd->command_id, &r, now);
        if (cmd->track_id != NULL)
            talas_ws_room_publish(c->ctx, "RoomQueueUpdated", &r, NULL, now);
        talas_ws_room_publish(c->ctx, "RoomState", &r, NULL, now);
        break;
    case TALAS_WS_ROOM_MEMBER_STATUS: {
        struct talas_buf data = {0};
        struct talas_json json;
        talas_json_init(&json, &data);
        talas_json_object_begin(&json);
        talas_json_key(&json, "room_id");
        talas_json_string(&json, r.id);
        talas_json_key(&json, "server_ms");
        talas_json_uint(&json, now);
        talas_json_key(&json, "position_ms");
        talas_json_uint(&json, talas_room_clock_position(&r.playback, now));
        talas_json_key(&json, "playback");
        playback_json(&json, &r.playback);
        talas_json_object_end(&json);
        respond(c, cmd->command_id, &data, NULL);
        talas_buf_free(&data);
        if (ch->buffering_changed)
            talas_ws_room_publish(c->ctx, "RoomState", &r, c->user, now);
        break;
    }
    default: /* RoomPause, RoomSeek, RoomSkip */
        respond_state(c, cmd->command_id, &r, now);
        talas_ws_room_publish(c->ctx, "RoomState", &r, NULL, now);
        break;
    }
    talas_room_free(&r);
}

struct close_arg {
    const char *user;
    int left;
};

static int close_change(struct talas_room *r, uint64_t now, void *arg)
{
    struct close_arg *a = arg;
    int rc = talas_room_leave(r, a->user, 1, now);

    if (rc < 0)
        return TALAS_ROOM_UNCHANGED;
    a->left = rc;
    return 0;
}

void talas__ws_rooms_closed(struct talas__ws_conn *c)
{
    char rooms[TALAS__WS_MAX_ROOMS][TALAS__WS_ROOM_ID_LEN + 1];
    size_t n = c->room_count;

    /* its artist walks: their adds are dropped */
    while (c->room_waits != NULL) {
        talas_artist_scan_detach(c->room_waits->scan);
        wait_free(c->room_waits);
    }
    if (c->user == NULL || n == 0)
        return;
    /* out of its rooms first: the events below are not for it */
    memcpy(rooms, c->rooms, sizeof(rooms));
    c->room_count = 0;
    for (size_t i = 0; i < n; i++) {
        struct close_arg a = {.user = c->user};
        struct talas_room r;
        uint64_t now = talas_wall_ms();
        unsigned norm = 0;
        if (talas_state_room_update(c->ctx, rooms[i], NULL, now, close_change, &a, &r, &norm, NULL) ==
            TALAS_STATE_OK) {
            publish_normalized(c->ctx, &r, norm, now);
            if (a.left)
                talas_ws_room_publish(c->ctx, "RoomMemberLeft", &r, c->user, now);
        }
        talas_room_free(&r);
    }
}
