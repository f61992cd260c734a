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
};

static void op_free(struct talas_state_playback_op *op)
{
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
    char *track = xstrdup(cmd->track), *quality = xstrdup(cmd->quality), *platform = xstrdup(cmd->platform);

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

void talas__state_playback_redis_cancel(struct talas_state_playback_op *op)
{
    /* a command sent cannot be taken back: its answer finds no caller */
    op->cb = NULL;
}
