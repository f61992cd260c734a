/*
 * state_playback_redis.c - the cluster backend of state_playback.h: each
 * user's playback state in Redis, so that every node sees the same one,
 * through the worker's commands connection (cluster/cluster_bus.h).
 *
 * Entry points (talas__, for state_playback.c only):
 * talas__state_playback_redis_change, _get, _cancel.
 *
 * The state is a hash, TALAS_CLUSTER_PLAYBACK_PREFIX + user, with the
 * fields of struct talas_playback_state (status, track, quality, platform,
 * duration, position, updated, played, started, pid) and sid, the id of
 * the listening session going on ("user/node/pid/started_ms", made by the
 * node where it started and kept by every node that changes it). A change
 * is HGETALL, the rules of store/playback.c (talas_playback_apply) in
 * memory, then HSET of every field and PEXPIRE
 * (TALAS_CLUSTER_PLAYBACK_TTL_MS: a state left alone a week goes away),
 * pipelined; once Redis answered, the change is done and answered, and the
 * sessions it touched go to the analytics store
 * (talas_state_analytics_record), which the answer does not wait for.
 * Between the read and the write another node may change the same user:
 * the last write wins.
 *
 * Now playing: each write also puts the user in the sorted set
 * TALAS_CLUSTER_NOW_PLAYING, scored by when their "now playing" expires
 * (the rest of the track plus TALAS_NOW_PLAYING_GRACE_MS after the
 * change), or takes them out of it when the state is not playing. A
 * listing drops the expired members (ZREMRANGEBYSCORE), reads the others
 * (ZRANGEBYSCORE, at most TALAS_NOW_PLAYING_MAX), then their states
 * (HGETALL each, pipelined), and keeps those still playing.
 *
 * Redis unreachable: changes and reads answer unavailable at once (the
 * bus's connection comes back by itself). Logs nothing (redis_loop.c logs
 * the connection's changes).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster/cluster_bus.h"
#include "cluster/redis_loop.h"
#include "core/cluster_keys.h"
#include "core/util.h"
#include "state/state_analytics.h"
#include "state/state_playback.h"

#define SID_MAX (2 * TALAS_PLAYBACK_ID_MAX + 64)

static const char unreachable[] = "the playback store (Redis) cannot be reached";

struct talas_state_playback_op {
    const struct talas_worker_ctx *ctx;
    struct talas_redis_conn *conn;
    int is_change;
    char *key, *user, *track, *quality, *platform;
    struct talas_playback_command cmd;
    talas_state_playback_fn *cb; /* NULL once cancelled */
    void *data;
    struct talas_state_playback_result r;
    struct talas_playback_effects fx;
    char sid[SID_MAX], new_sid[SID_MAX];
    /* a now-playing listing: its answers still to come, the entries */
    talas_state_now_playing_fn *now_cb; /* NULL once cancelled */
    uint64_t now_ms;
    size_t pending, answered, user_count;
    int now_failed;
    char **users; /* the members listed; an answer's user moves to its entry */
    struct talas_state_now_playing *entries;
    size_t count;
};

static void op_free(struct talas_state_playback_op *op)
{
    for (size_t i = 0; i < op->count; i++)
        free((char *)op->entries[i].user);
    free(op->entries);
    /* the users whose answer never came (their command was not sent) */
    for (size_t i = op->answered; i < op->user_count; i++)
        free(op->users[i]);
    free(op->users);
    free(op->key);
    free(op->user);
    free(op->track);
    free(op->quality);
    free(op->platform);
    free(op);
}

static void finish(struct talas_state_playback_op *op)
{
    if (op->cb != NULL)
        op->cb(op->data, &op->r);
    op_free(op);
}

static void fail(struct talas_state_playback_op *op)
{
    op->r.outcome = TALAS_STATE_UNAVAILABLE;
    op->r.reason = unreachable;
    finish(op);
}

/* Reads an HGETALL answer into *S and SID; a missing or odd hash reads as
 * a stopped state. */
static void decode(const redisReply *reply, struct talas_playback_state *s, char *sid, size_t sid_size)
{
    memset(s, 0, sizeof(*s));
    sid[0] = '\0';
    if (reply->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        const char *f = reply->element[i]->str, *v = reply->element[i + 1]->str;
        uint64_t n;
        if (f == NULL || v == NULL)
            continue;
        n = strtoull(v, NULL, 10);
        if (strcmp(f, "status") == 0)
            s->status = n <= TALAS_PLAYBACK_PAUSED ? (uint32_t)n : TALAS_PLAYBACK_STOPPED;
        else if (strcmp(f, "track") == 0)
            snprintf(s->track_id, sizeof(s->track_id), "%s", v);
        else if (strcmp(f, "quality") == 0)
            snprintf(s->quality, sizeof(s->quality), "%s", v);
        else if (strcmp(f, "platform") == 0)
            snprintf(s->platform, sizeof(s->platform), "%s", v);
        else if (strcmp(f, "duration") == 0)
            s->duration_ms = n;
        else if (strcmp(f, "position") == 0)
            s->position_ms = n;
        else if (strcmp(f, "updated") == 0)
            s->updated_ms = n;
        else if (strcmp(f, "played") == 0)
            s->played_ms = n;
        else if (strcmp(f, "started") == 0)
            s->session_started_ms = n;
        else if (strcmp(f, "pid") == 0)
            s->session_pid = (uint32_t)n;
        else if (strcmp(f, "sid") == 0)
            snprintf(sid, sid_size, "%s", v);
    }
    if (s->track_id[0] == '\0')
        s->status = TALAS_PLAYBACK_STOPPED;
}

static void on_written(struct talas_redis_conn *conn, redisReply *reply, void *data)
{
    struct talas_state_playback_op *op = data;

    (void)conn;
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        fail(op);
        return;
    }
    /* stored: the sessions it touched go to the analytics store */
    for (size_t i = 0; i < op->fx.count; i++) {
        const struct talas_playback_session_write *w = &op->fx.session[i];
        const char *sid = w->new_play ? op->new_sid : op->sid;
        if (sid[0] != '\0')
            talas_state_analytics_record(op->ctx, op->user, w, sid);
    }
    finish(op);
}

/* HSET of every field of S, then PEXPIRE; -1 when not sent. */
static int write_state(struct talas_state_playback_op *op, const struct talas_playback_state *s,
                       const char *sid)
{
    char num[7][24], ttl[24];
    const char *argv[24];
    int argc = 0;

    snprintf(num[0], sizeof(num[0]), "%" PRIu32, s->status);
    snprintf(num[1], sizeof(num[1]), "%" PRIu64, s->duration_ms);
    snprintf(num[2], sizeof(num[2]), "%" PRIu64, s->position_ms);
    snprintf(num[3], sizeof(num[3]), "%" PRIu64, s->updated_ms);
    snprintf(num[4], sizeof(num[4]), "%" PRIu64, s->played_ms);
    snprintf(num[5], sizeof(num[5]), "%" PRIu64, s->session_started_ms);
    snprintf(num[6], sizeof(num[6]), "%" PRIu32, s->session_pid);
    argv[argc++] = "HSET";
    argv[argc++] = op->key;
    argv[argc++] = "status", argv[argc++] = num[0];
    argv[argc++] = "track", argv[argc++] = s->track_id;
    argv[argc++] = "quality", argv[argc++] = s->quality;
    argv[argc++] = "platform", argv[argc++] = s->platform;
    argv[argc++] = "duration", argv[argc++] = num[1];
    argv[argc++] = "position", argv[argc++] = num[2];
    argv[argc++] = "updated", argv[argc++] = num[3];
    argv[argc++] = "played", argv[argc++] = num[4];
    argv[argc++] = "started", argv[argc++] = num[5];
    argv[argc++] = "pid", argv[argc++] = num[6];
    argv[argc++] = "sid", argv[argc++] = sid;
    if (talas_redis_conn_command(op->conn, NULL, NULL, argc, argv, NULL) != 0)
        return -1;
    if (s->status == TALAS_PLAYBACK_PLAYING) {
        uint64_t until = s->updated_ms + TALAS_NOW_PLAYING_GRACE_MS;
        if (s->duration_ms > s->position_ms)
            until += s->duration_ms - s->position_ms;
        snprintf(ttl, sizeof(ttl), "%" PRIu64, until);
        argv[0] = "ZADD", argv[1] = TALAS_CLUSTER_NOW_PLAYING, argv[2] = ttl, argv[3] = op->user;
        argc = 4;
    } else {
        argv[0] = "ZREM", argv[1] = TALAS_CLUSTER_NOW_PLAYING, argv[2] = op->user;
        argc = 3;
    }
    if (talas_redis_conn_command(op->conn, NULL, NULL, argc, argv, NULL) != 0)
        return -1;
    snprintf(ttl, sizeof(ttl), "%lld", (long long)TALAS_CLUSTER_PLAYBACK_TTL_MS);
    argv[0] = "PEXPIRE";
    argv[1] = op->key;
    argv[2] = ttl;
    /* one connection keeps the order: this answer comes after HSET's */
    return talas_redis_conn_command(op->conn, on_written, op, 3, argv, NULL);
}

static void on_read(struct talas_redis_conn *conn, redisReply *reply, void *data)
{
    struct talas_state_playback_op *op = data;
    struct talas_playback_state s;

    (void)conn;
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        fail(op);
        return;
    }
    decode(reply, &s, op->sid, sizeof(op->sid));
    if (!op->is_change) {
        talas_playback_accrue(&s, talas_wall_ms());
        op->r.state = s;
        finish(op);
        return;
    }
    if (op->cb == NULL) { /* cancelled before anything was written */
        op_free(op);
        return;
    }
    if (talas_playback_apply(&s, &op->cmd, &op->r.change, &op->fx, &op->r.reason) != 0) {
        op->r.outcome = TALAS_STATE_REFUSED;
        finish(op);
        return;
    }
    for (size_t i = 0; i < op->fx.count; i++)
        if (op->fx.session[i].new_play)
            snprintf(op->new_sid, sizeof(op->new_sid), "%s/%s/%" PRIu32 "/%" PRIu64, op->user,
                     talas_cluster_bus_node(op->ctx->cluster), s.session_pid, s.session_started_ms);
    if (write_state(op, &s, op->new_sid[0] != '\0' ? op->new_sid : op->sid) != 0)
        fail(op);
}

static struct talas_state_playback_op *start(const struct talas_worker_ctx *ctx, const char *user,
                                             int is_change, talas_state_playback_fn *cb, void *data)
{
    struct talas_state_playback_op *op = xcalloc(1, sizeof(*op));
    const char *argv[2];

    op->ctx = ctx;
    op->conn = talas_cluster_bus_commands(ctx->cluster);
    op->is_change = is_change;
    op->key = xasprintf("%s%s", TALAS_CLUSTER_PLAYBACK_PREFIX, user);
    op->user = xstrdup(user);
    op->cb = cb;
    op->data = data;
    argv[0] = "HGETALL";
    argv[1] = op->key;
    if (op->conn == NULL || talas_redis_conn_command(op->conn, on_read, op, 2, argv, NULL) != 0) {
        fail(op);
        return NULL;
    }
    return op;
}

struct talas_state_playback_op *talas__state_playback_redis_change(const struct talas_worker_ctx *ctx,
                                                                   const char *user,
                                                                   const struct talas_playback_command *cmd,
                                                                   talas_state_playback_fn *cb, void *data)
{
    struct talas_state_playback_op *op;
    struct talas_playback_command copy = *cmd;
    /* quality and platform matter to a Play only: another change may leave them NULL */
    char *track = xstrdup(cmd->track), *quality = xstrdup(cmd->quality != NULL ? cmd->quality : ""),
         *platform = xstrdup(cmd->platform != NULL ? cmd->platform : "");

    copy.track = track;
    copy.quality = quality;
    copy.platform = platform;
    if ((op = start(ctx, user, 1, cb, data)) == NULL) {
        free(track);
        free(quality);
        free(platform);
        return NULL;
    }
    op->track = track;
    op->quality = quality;
    op->platform = platform;
    op->cmd = copy;
    return op;
}

struct talas_state_playback_op *talas__state_playback_redis_get(const struct talas_worker_ctx *ctx,
                                                                const char *user, talas_state_playback_fn *cb,
                                                                void *data)
{
    return start(ctx, user, 0, cb, data);
}

/* ------------------------------------------------------ now playing */

static int by_recent(const void *a, const void *b)
{
    const struct talas_state_now_playing *x = a, *y = b;

    if (x->changed_ms != y->changed_ms)
        return x->changed_ms < y->changed_ms ? 1 : -1;
    return strcmp(x->user, y->user);
}

/* Once every state has answered: the listing to its caller. */
static void now_done(struct talas_state_playback_op *op)
{
    struct talas_state_now_playing_result r;

    memset(&r, 0, sizeof(r));
    if (op->now_failed) {
        r.outcome = TALAS_STATE_UNAVAILABLE;
    } else {
        if (op->count > 0)
            qsort(op->entries, op->count, sizeof(*op->entries), by_recent);
        r.entries = op->entries;
        r.count = op->count;
    }
    if (op->now_cb != NULL)
        op->now_cb(op->data, &r);
    op_free(op);
}

static void on_now_state(struct talas_redis_conn *conn, redisReply *reply, void *data)
{
    struct talas_state_playback_op *op = data;
    struct talas_playback_state s;
    char sid[SID_MAX];
    uint64_t age, window = TALAS_NOW_PLAYING_GRACE_MS;
    /* the answers come back in the order of the commands */
    char *user = op->users[op->answered++];

    (void)conn;
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        op->now_failed = 1;
    } else {
        decode(reply, &s, sid, sizeof(sid));
        age = op->now_ms > s.updated_ms ? op->now_ms - s.updated_ms : 0;
        if (s.duration_ms > s.position_ms)
            window += s.duration_ms - s.position_ms;
        if (s.status == TALAS_PLAYBACK_PLAYING && age < window) {
            struct talas_state_now_playing *e = &op->entries[op->count++];
            e->user = user;
            e->changed_ms = s.updated_ms;
            e->state = s;
            talas_playback_accrue(&e->state, op->now_ms);
            user = NULL;
        }
    }
    free(user);
    if (--op->pending == 0)
        now_done(op);
}

static void on_now_users(struct talas_redis_conn *conn, redisReply *reply, void *data)
{
    struct talas_state_playback_op *op = data;
    const char *argv[2];
    size_t n;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        op->now_failed = 1;
        now_done(op);
        return;
    }
    n = reply->elements;
    op->users = xcalloc(n + 1, sizeof(*op->users));
    op->entries = xcalloc(n + 1, sizeof(*op->entries));
    for (size_t i = 0; i < n; i++)
        op->users[i] = reply->element[i]->str != NULL
                           ? xstrndup(reply->element[i]->str, reply->element[i]->len)
                           : xstrdup("");
    op->user_count = n;
    op->pending = 1; /* released below: no answer ends the listing before every command is sent */
    for (size_t i = 0; i < n; i++) {
        char *key = xasprintf("%s%s", TALAS_CLUSTER_PLAYBACK_PREFIX, op->users[i]);
        int rc;
        argv[0] = "HGETALL";
        argv[1] = key;
        rc = talas_redis_conn_command(conn, on_now_state, op, 2, argv, NULL);
        free(key);
        if (rc != 0) { /* the connection went: the rest is not sent */
            op->now_failed = 1;
            break;
        }
        op->pending++;
    }
    if (--op->pending == 0)
        now_done(op);
}

struct talas_state_playback_op *talas__state_playback_redis_now_playing(const struct talas_worker_ctx *ctx,
                                                                        uint64_t now_ms,
                                                                        talas_state_now_playing_fn *cb,
                                                                        void *data)
{
    struct talas_state_playback_op *op = xcalloc(1, sizeof(*op));
    char now[24], max[24];
    const char *drop[4] = {"ZREMRANGEBYSCORE", TALAS_CLUSTER_NOW_PLAYING, "-inf", now};
    const char *list[7] = {"ZRANGEBYSCORE", TALAS_CLUSTER_NOW_PLAYING, now, "+inf", "LIMIT", "0", max};

    op->ctx = ctx;
    op->conn = talas_cluster_bus_commands(ctx->cluster);
    op->now_cb = cb;
    op->data = data;
    op->now_ms = now_ms;
    snprintf(now, sizeof(now), "%" PRIu64, now_ms);
    snprintf(max, sizeof(max), "%d", TALAS_NOW_PLAYING_MAX);
    if (op->conn == NULL || talas_redis_conn_command(op->conn, NULL, NULL, 4, drop, NULL) != 0 ||
        talas_redis_conn_command(op->conn, on_now_users, op, 7, list, NULL) != 0) {
        op->now_failed = 1;
        now_done(op);
        return NULL;
    }
    return op;
}

void talas__state_playback_redis_cancel(struct talas_state_playback_op *op)
{
    /* a command sent cannot be taken back: its answer finds no caller */
    op->cb = NULL;
    op->now_cb = NULL;
}
