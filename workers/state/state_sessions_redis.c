/*
 * state_sessions_redis.c - the cluster backend of state_sessions.h:
 * streaming sessions in Redis, through the worker's commands connection
 * (cluster/cluster_bus.h, redis_loop.h), so that every node reads,
 * changes and ends every session.
 *
 * Entry points (talas__, for state_sessions.c only):
 * talas__state_redis_session_create, _get, _update, _end, _stats; and
 * talas_state_session_cancel.
 *
 * The keys are core/cluster_keys.h's: a session is a hash (its record in
 * store/sessions.h's layout, a version, the key of its owner's set) that
 * expires streaming.session_timeout after its last change; a sorted set of
 * every session and one per owner (a user, an address), scored by the
 * wall-clock ms each session expires, say which are live.
 *
 * Creation is one Lua script (EVAL): it drops the expired members of the
 * sets, counts the owner's live sessions and then everyone's, and stores
 * the session, or refuses, in one step; Redis runs one script at a time,
 * so the bounds hold for the whole cluster and two nodes never both take
 * the last slot. A change reads the session (HMGET), applies the caller's
 * function here, and stores it with a script that checks the version it
 * read (compare and set; read again and retried when another node changed
 * it in between). Ending is one script. The scripts touch the owner's set
 * that the session's hash names: one Redis server, not a Redis Cluster.
 *
 * Scores are the wall clock of the node that wrote them: nodes' clocks
 * should agree to well within streaming.session_timeout.
 *
 * Nothing is resent: a command whose answer was lost (the connection went)
 * completes as unavailable, and may or may not have happened.
 *
 * Logs: error replies from Redis (a script that failed), which should not
 * happen.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster_bus.h"
#include "cluster/redis_loop.h"
#include "core/log.h"
#include "core/util.h"
#include "state/state_sessions.h"

/* Reads again after a lost compare-and-set at most this many times: only
 * a player and its server change a session, a few times a minute. */
#define UPDATE_TRIES 8

enum kind { CREATE, GET, UPDATE_READ, UPDATE_WRITE, END, STATS };

struct talas_state_session_op {
    enum kind kind;
    const struct talas_worker_ctx *ctx;
    talas_state_session_fn *cb; /* NULL: cancelled */
    void *data;
    talas_session_update_fn *apply;
    void *arg;
    char id[TALAS_SESSION_ID_LEN + 1];
    struct talas_session s; /* create: the new one; update: as changed */
    struct talas_session_counters delta;
    int tries;
};

/*
 * KEYS: the session, every session's set, the owner's set, the totals.
 * ARGV: now, timeout, the owner's bound (0: none), the cap, the record,
 * the id, the owner's set ("" for no owner).
 * Returns 0 stored, 1 the owner's bound, 2 the cap, 3 the id exists.
 */
static const char script_create[] =
    "local now = tonumber(ARGV[1])\n"
    "local gone = redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)\n"
    "if gone > 0 then redis.call('HINCRBY', KEYS[4], 'expired', gone) end\n"
    "if ARGV[7] ~= '' then\n"
    "  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)\n"
    "  local per = tonumber(ARGV[3])\n"
    "  if per > 0 and redis.call('ZCARD', KEYS[3]) >= per then return 1 end\n"
    "end\n"
    "if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then return 2 end\n"
    "if redis.call('EXISTS', KEYS[1]) == 1 then return 3 end\n"
    "local exp = now + tonumber(ARGV[2])\n"
    "redis.call('HSET', KEYS[1], 'rec', ARGV[5], 'ver', 1, 'owner', ARGV[7])\n"
    "redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
    "redis.call('ZADD', KEYS[2], exp, ARGV[6])\n"
    "if ARGV[7] ~= '' then\n"
    "  redis.call('ZADD', KEYS[3], exp, ARGV[6])\n"
    "  redis.call('PEXPIRE', KEYS[3], ARGV[2])\n"
    "end\n"
    "redis.call('HINCRBY', KEYS[4], 'created', 1)\n"
    "return 0\n";

/*
 * KEYS: the session, every session's set, the totals.
 * ARGV: the version read, the new record, timeout, the new expiry, the id,
 * quality switches and rebuffers to add to the totals.
 * Returns 1 stored, 0 changed since it was read, -1 gone.
 */
static const char script_update[] =
    "local cur = redis.call('HMGET', KEYS[1], 'ver', 'owner')\n"
    "if not cur[1] then return -1 end\n"
    "if cur[1] ~= ARGV[1] then return 0 end\n"
    "redis.call('HSET', KEYS[1], 'rec', ARGV[2])\n"
    "redis.call('HINCRBY', KEYS[1], 'ver', 1)\n"
    "redis.call('PEXPIRE', KEYS[1], ARGV[3])\n"
    "redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])\n"
    "if cur[2] and cur[2] ~= '' then\n"
    "  redis.call('ZADD', cur[2], ARGV[4], ARGV[5])\n"
    "  redis.call('PEXPIRE', cur[2], ARGV[3])\n"
    "end\n"
    "if tonumber(ARGV[6]) > 0 then redis.call('HINCRBY', KEYS[3], 'quality_switches', ARGV[6]) end\n"
    "if tonumber(ARGV[7]) > 0 then redis.call('HINCRBY', KEYS[3], 'rebuffers', ARGV[7]) end\n"
    "return 1\n";

/* KEYS: the session, every session's set, the totals. ARGV: the id.
 * Returns 1 ended, 0 none. */
static const char script_end[] = "local owner = redis.call('HGET', KEYS[1], 'owner')\n"
                                 "if not owner then return 0 end\n"
                                 "redis.call('DEL', KEYS[1])\n"
                                 "redis.call('ZREM', KEYS[2], ARGV[1])\n"
                                 "if owner ~= '' then redis.call('ZREM', owner, ARGV[1]) end\n"
                                 "redis.call('HINCRBY', KEYS[3], 'ended', 1)\n"
                                 "return 1\n";

/*
 * KEYS: every session's set, the totals. ARGV: now, the sessions' prefix.
 * Returns {the totals (created, ended, expired, quality_switches,
 * rebuffers), then each live session's record}.
 */
static const char script_stats[] =
    "local gone = redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])\n"
    "if gone > 0 then redis.call('HINCRBY', KEYS[2], 'expired', gone) end\n"
    "local out = {redis.call('HMGET', KEYS[2], 'created', 'ended', 'expired', 'quality_switches', "
    "'rebuffers')}\n"
    "for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do\n"
    "  local r = redis.call('HGET', ARGV[2] .. id, 'rec')\n"
    "  if r then out[#out + 1] = r end\n"
    "end\n"
    "return out\n";

static struct talas_redis_conn *conn_of(const struct talas_worker_ctx *ctx)
{
    return talas_cluster_bus_commands(ctx->cluster);
}

static struct talas_state_session_op *op_new(enum kind kind, const struct talas_worker_ctx *ctx,
                                             talas_state_session_fn *cb, void *data)
{
    struct talas_state_session_op *op = xcalloc(1, sizeof(*op));

    op->kind = kind;
    op->ctx = ctx;
    op->cb = cb;
    op->data = data;
    return op;
}

static void finish(struct talas_state_session_op *op, struct talas_state_session_result *r)
{
    if (op->cb != NULL)
        op->cb(op->data, r);
    free(op);
}

static void finish_outcome(struct talas_state_session_op *op, enum talas_state_session_outcome outcome)
{
    struct talas_state_session_result r;

    memset(&r, 0, sizeof(r));
    r.outcome = outcome;
    r.wrote = op->kind != GET && op->kind != STATS;
    if (outcome == TALAS_STATE_SESSION_OK && op->kind != END)
        r.session = &op->s;
    finish(op, &r);
}

/* The owner's set of S: "" for a session of no owner. */
static void owner_set(const struct talas_session *s, char *buf, size_t size)
{
    if (s->owner_kind == TALAS_SESSION_OWNER_NONE)
        snprintf(buf, size, "%s", "");
    else
        snprintf(buf, size, "%s%c:%s", TALAS_CLUSTER_SESSION_OWNER_PREFIX, (char)s->owner_kind, s->owner);
}

static void session_key(const char *id, char buf[64])
{
    snprintf(buf, 64, "%s%s", TALAS_CLUSTER_SESSION_PREFIX, id);
}

/* Sends ARGC arguments for OP: strings, or of LENS[i] bytes where LENS is
 * not NULL and LENS[i] not 0 (a record may hold zero bytes). Returns
 * OP, or NULL when the connection is not ready (then OP completed as
 * unavailable). */
static struct talas_state_session_op *send_command(struct talas_state_session_op *op, talas_redis_reply_fn fn,
                                                   int argc, const char **argv, const size_t *lens)
{
    struct talas_redis_conn *conn = conn_of(op->ctx);
    size_t argvlen[16];

    for (int i = 0; i < argc; i++)
        argvlen[i] = lens != NULL && lens[i] != 0 ? lens[i] : strlen(argv[i]);
    if (conn == NULL || talas_redis_conn_command(conn, fn, op, argc, argv, argvlen) != 0) {
        finish_outcome(op, TALAS_STATE_SESSION_UNAVAILABLE);
        return NULL;
    }
    return op;
}

/* 0 when REPLY is an answer to look at; else OP is finished (cancelled,
 * connection lost, error reply) and -1. */
static int reply_usable(struct talas_state_session_op *op, const redisReply *reply, const char *what)
{
    if (op->cb == NULL) {
        free(op);
        return -1;
    }
    if (reply == NULL) {
        finish_outcome(op, TALAS_STATE_SESSION_UNAVAILABLE);
        return -1;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        log_error("streaming session: %s: Redis answered: %.*s", what, (int)reply->len, reply->str);
        finish_outcome(op, TALAS_STATE_SESSION_FAILED);
        return -1;
    }
    return 0;
}

/* -------------------------------------------------------------- create */

static void on_created(struct talas_redis_conn *conn, redisReply *reply, void *data)
{
    struct talas_state_session_op *op = data;
    const struct talas_config *conf = op->ctx->conf;
    struct talas_state_session_result r;

    (void)conn;
    if (reply_usable(op, reply, "creating") != 0)
        return;
    memset(&r, 0, sizeof(r));
    r.wrote = 1;
    if (reply->type != REDIS_REPLY_INTEGER || reply->integer == 3) {
        log_error("streaming session: creating: an unexpected answer (type %d)", reply->type);
        r.outcome = TALAS_STATE_SESSION_FAILED;
    } else if (reply->integer == 1) {
        r.outcome = TALAS_STATE_SESSION_QUOTA;
        if (op->s.owner_kind == TALAS_SESSION_OWNER_USER)
            talas_quota_refuse(&r.refusal, "streaming.max_sessions_per_user",
                               (uint64_t)conf->streaming_max_sessions_per_user);
        else
            talas_quota_refuse(&r.refusal, "streaming.max_sessions_per_address",
                               (uint64_t)conf->streaming_max_sessions_per_address);
    } else if (reply->integer == 2) {
        r.outcome = TALAS_STATE_SESSION_FULL;
    } else {
        r.session = &op->s;
    }
    finish(op, &r);
}

struct talas_state_session_op *talas__state_redis_session_create(const struct talas_worker_ctx *ctx,
                                                                 const struct talas_session *s,
                                                                 const struct talas_session_limits *lim,
                                                                 int backend, talas_state_session_fn *cb,
                                                                 void *data)
{
    struct talas_state_session_op *op = op_new(CREATE, ctx, cb, data);
    char key[64], owner[256], now[24], timeout[24], per[24], cap[24];
    size_t per_owner = s->owner_kind == TALAS_SESSION_OWNER_USER      ? lim->max_per_user
                       : s->owner_kind == TALAS_SESSION_OWNER_ADDRESS ? lim->max_per_address
                                                                      : 0;
    size_t limit = lim->max_sessions;
    struct talas_buf rec = {0};
    const char *argv[14];
    size_t lens[14] = {0};
    struct talas_state_session_op *ret;

    op->s = *s;
    /* the last ones are the backend's, as in the local store */
    if (!backend)
        limit = lim->backend_reserved < limit ? limit - lim->backend_reserved : 0;
    session_key(s->session_id, key);
    owner_set(s, owner, sizeof(owner));
    snprintf(now, sizeof(now), "%" PRIu64, s->last_updated_ms);
    snprintf(timeout, sizeof(timeout), "%" PRIu64, ctx->conf->streaming_session_timeout_ms);
    snprintf(per, sizeof(per), "%zu", per_owner);
    snprintf(cap, sizeof(cap), "%zu", limit);
    talas_session_encode(s, &rec);
    argv[0] = "EVAL";
    argv[1] = script_create;
    argv[2] = "4";
    argv[3] = key;
    argv[4] = TALAS_CLUSTER_SESSIONS;
    /* a key is needed in its place even for no owner: the script skips it */
    argv[5] = owner[0] != '\0' ? owner : TALAS_CLUSTER_SESSION_OWNER_PREFIX;
    argv[6] = TALAS_CLUSTER_SESSION_TOTALS;
    argv[7] = now;
    argv[8] = timeout;
    argv[9] = per;
    argv[10] = cap;
    argv[11] = (const char *)rec.data;
    lens[11] = rec.len;
    argv[12] = s->session_id;
    argv[13] = owner;
    ret = send_command(op, on_created, 14, argv, lens);
    talas_buf_free(&rec);
    return ret;
}

/* ----------------------------------------------------------------- get */

/* Decodes a record reply into *S; -1 when it is not one. */
static int decode_reply(const redisReply *reply, struct talas_session *s)
{
    if (reply == NULL || reply->type != REDIS_REPLY_STRING)
        return -1;
    return talas_session_decode(reply->str, reply->len, s);
}

static void on_get(struct talas_redis_conn *conn, redisReply *reply, void *data)
{
    struct talas_state_session_op *op = data;

    (void)conn;
    if (reply_usable(op, reply, "reading") != 0)
        return;
    if (decode_reply(reply, &op->s) != 0 ||
        talas_session_expired(&op->s, talas_wall_ms(), op->ctx->conf->streaming_session_timeout_ms))
        finish_outcome(op, TALAS_STATE_SESSION_NOT_FOUND);
    else
        finish_outcome(op, TALAS_STATE_SESSION_OK);
}

struct talas_state_session_op *talas__state_redis_session_get(const struct talas_worker_ctx *ctx,
                                                              const char *id, talas_state_session_fn *cb,
                                                              void *data)
{
    struct talas_state_session_op *op = op_new(GET, ctx, cb, data);
    char key[64];
    const char *argv[3] = {"HGET", key, "rec"};

    session_key(id, key);
    return send_command(op, on_get, 3, argv, NULL);
}

/* -------------------------------------------------------------- update */

static struct talas_state_session_op *update_read(struct talas_state_session_op *op);

static void on_update_written(struct talas_redis_conn *conn, redisReply *reply, void *data)
{
    struct talas_state_session_op *op = data;

    (void)conn;
    if (reply_usable(op, reply, "changing") != 0)
        return;
    if (reply->type != REDIS_REPLY_INTEGER) {
        finish_outcome(op, TALAS_STATE_SESSION_FAILED);
    } else if (reply->integer == 1) {
        finish_outcome(op, TALAS_STATE_SESSION_OK);
    } else if (reply->integer == -1) {
        finish_outcome(op, TALAS_STATE_SESSION_NOT_FOUND);
    } else if (++op->tries >= UPDATE_TRIES) {
        log_error("streaming session: changing %s: changed elsewhere %d times in a row", op->id, op->tries);
        finish_outcome(op, TALAS_STATE_SESSION_FAILED);
    } else {
        /* another node changed it since our read: from the start */
        update_read(op);
    }
}

static void on_update_read(struct talas_redis_conn *conn, redisReply *reply, void *data)
{
    struct talas_state_session_op *op = data;
    const struct talas_config *conf = op->ctx->conf;
    char key[64], timeout[24], exp[24], switches[24], rebuffers[24];
    struct talas_buf rec = {0};
    const char *argv[13];
    size_t lens[13] = {0};
    uint64_t now = talas_wall_ms();

    (void)conn;
    if (reply_usable(op, reply, "reading for a change") != 0)
        return;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[1]->type != REDIS_REPLY_STRING || decode_reply(reply->element[0], &op->s) != 0 ||
        talas_session_expired(&op->s, now, conf->streaming_session_timeout_ms)) {
        finish_outcome(op, TALAS_STATE_SESSION_NOT_FOUND);
        return;
    }
    memset(&op->delta, 0, sizeof(op->delta));
    if (op->apply(&op->s, &op->delta, op->arg) != 0) {
        finish_outcome(op, TALAS_STATE_SESSION_FAILED);
        return;
    }
    op->s.last_updated_ms = now;
    op->kind = UPDATE_WRITE;
    session_key(op->id, key);
    snprintf(timeout, sizeof(timeout), "%" PRIu64, conf->streaming_session_timeout_ms);
    snprintf(exp, sizeof(exp), "%" PRIu64, now + conf->streaming_session_timeout_ms);
    snprintf(switches, sizeof(switches), "%" PRIu64, op->delta.quality_switches);
    snprintf(rebuffers, sizeof(rebuffers), "%" PRIu64, op->delta.rebuffers);
    talas_session_encode(&op->s, &rec);
    argv[0] = "EVAL";
    argv[1] = script_update;
    argv[2] = "3";
    argv[3] = key;
    argv[4] = TALAS_CLUSTER_SESSIONS;
    argv[5] = TALAS_CLUSTER_SESSION_TOTALS;
    argv[6] = reply->element[1]->str; /* the version read */
    argv[7] = (const char *)rec.data;
    lens[7] = rec.len;
    argv[8] = timeout;
    argv[9] = exp;
    argv[10] = op->id;
    argv[11] = switches;
    argv[12] = rebuffers;
    send_command(op, on_update_written, 13, argv, lens);
    talas_buf_free(&rec);
}

static struct talas_state_session_op *update_read(struct talas_state_session_op *op)
{
    char key[64];
    const char *argv[4] = {"HMGET", key, "rec", "ver"};

    op->kind = UPDATE_READ;
    session_key(op->id, key);
    return send_command(op, on_update_read, 4, argv, NULL);
}

struct talas_state_session_op *talas__state_redis_session_update(const struct talas_worker_ctx *ctx,
                                                                 const char *id,
                                                                 talas_session_update_fn *apply, void *arg,
                                                                 talas_state_session_fn *cb, void *data)
{
    struct talas_state_session_op *op = op_new(UPDATE_READ, ctx, cb, data);

    op->apply = apply;
    op->arg = arg;
    snprintf(op->id, sizeof(op->id), "%s", id);
    return update_read(op);
}

/* ----------------------------------------------------------------- end */

static void on_ended(struct talas_redis_conn *conn, redisReply *reply, void *data)
{
    struct talas_state_session_op *op = data;

    (void)conn;
    if (reply_usable(op, reply, "ending") != 0)
        return;
    if (reply->type != REDIS_REPLY_INTEGER)
        finish_outcome(op, TALAS_STATE_SESSION_FAILED);
    else
        finish_outcome(op, reply->integer == 1 ? TALAS_STATE_SESSION_OK : TALAS_STATE_SESSION_NOT_FOUND);
}

struct talas_state_session_op *talas__state_redis_session_end(const struct talas_worker_ctx *ctx,
                                                              const char *id, talas_state_session_fn *cb,
                                                              void *data)
{
    struct talas_state_session_op *op = op_new(END, ctx, cb, data);
    char key[64];
    const char *argv[] = {"EVAL", script_end, "3", key, TALAS_CLUSTER_SESSIONS, TALAS_CLUSTER_SESSION_TOTALS,
                          id};

    session_key(id, key);
    return send_command(op, on_ended, 7, argv, NULL);
}

/* --------------------------------------------------------------- stats */

static uint64_t total_of(const redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_STRING ? strtoull(r->str, NULL, 10) : 0;
}

static void on_stats(struct talas_redis_conn *conn, redisReply *reply, void *data)
{
    struct talas_state_session_op *op = data;
    uint64_t now = talas_wall_ms(), timeout = op->ctx->conf->streaming_session_timeout_ms;
    struct talas_state_session_result r;
    struct talas_session_counters c;
    struct talas_session *v;
    const redisReply *t;
    size_t n = 0;

    (void)conn;
    if (reply_usable(op, reply, "reading the statistics") != 0)
        return;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
        reply->element[0]->type != REDIS_REPLY_ARRAY || reply->element[0]->elements != 5) {
        finish_outcome(op, TALAS_STATE_SESSION_FAILED);
        return;
    }
    t = reply->element[0];
    c.created = total_of(t->element[0]);
    c.ended = total_of(t->element[1]);
    c.expired = total_of(t->element[2]);
    c.quality_switches = total_of(t->element[3]);
    c.rebuffers = total_of(t->element[4]);
    v = xcalloc(reply->elements, sizeof(*v));
    for (size_t i = 1; i < reply->elements; i++)
        if (decode_reply(reply->element[i], &v[n]) == 0 && !talas_session_expired(&v[n], now, timeout))
            n++;
    memset(&r, 0, sizeof(r));
    r.totals = &c;
    r.sessions = v;
    r.count = n;
    finish(op, &r);
    free(v);
}

struct talas_state_session_op *talas__state_redis_session_stats(const struct talas_worker_ctx *ctx,
                                                                talas_state_session_fn *cb, void *data)
{
    struct talas_state_session_op *op = op_new(STATS, ctx, cb, data);
    char now[24];
    const char *argv[] = {"EVAL",
                          script_stats,
                          "2",
                          TALAS_CLUSTER_SESSIONS,
                          TALAS_CLUSTER_SESSION_TOTALS,
                          now,
                          TALAS_CLUSTER_SESSION_PREFIX};

    snprintf(now, sizeof(now), "%" PRIu64, talas_wall_ms());
    return send_command(op, on_stats, 7, argv, NULL);
}

void talas_state_session_cancel(struct talas_state_session_op *op)
{
    /* the reply still comes and frees it; the local backend never leaves
     * one pending */
    if (op != NULL) {
        op->cb = NULL;
        op->apply = NULL;
    }
}
