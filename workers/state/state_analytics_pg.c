/*
 * state_analytics_pg.c - the cluster backend of state_analytics.h:
 * listening sessions and track totals on PostgreSQL (schema version 2,
 * store/pg_schema.c), through the worker's connection (cluster/pg.h).
 *
 * Entry points: talas_state_analytics_record (the writes, from
 * state_playback_redis.c), and for state_analytics.c only
 * talas__state_analytics_pg_track, _sessions, _cancel.
 *
 * A write is one call of talas_listen_session_put, answered to nobody: its
 * caller has long answered its client. A read is one statement. Nothing is
 * resent here; the function makes a repeat harmless for whoever does.
 *
 * Logs: the first write dropped after one that went through (warn), and
 * SQL errors (which should not happen with the schema this build checked).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/pg.h"
#include "core/log.h"
#include "core/util.h"
#include "state/state_analytics.h"

enum kind { TRACK, SESSIONS };

struct talas_state_analytics_op {
    enum kind kind;
    struct talas_pg_query *query;
    talas_state_analytics_fn *cb;
    void *data;
};

static const char sql_put[] = "SELECT talas_listen_session_put($1, $2, $3, $4, $5, $6::bigint, $7::bigint, "
                              "$8::bigint, $9::bigint)";
static const char sql_track[] =
    "SELECT plays, listeners, listening_ms FROM talas_track_totals WHERE track = $1";
static const char sql_sessions[] =
    "SELECT track, quality, platform, started_ms, coalesce(ended_ms, 0), position_ms, played_ms, "
    "(SELECT count(*) FROM talas_listen_sessions WHERE user_id = $1) FROM talas_listen_sessions "
    "WHERE user_id = $1 ORDER BY started_ms DESC, id DESC LIMIT $2::bigint";

/* Whether the last write was dropped: the next drop is not logged. */
static int dropping;

static void on_put(void *data, const PGresult *res, const char *error)
{
    struct talas_metrics_slot *metrics = data;

    if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK) {
        if (dropping)
            log_info("records: listening sessions are written again");
        dropping = 0;
        return;
    }
    if (metrics != NULL)
        talas_metrics_add(&metrics->count.listen_sessions_dropped, 1);
    if (!dropping)
        log_warn("records: a listening session could not be written, dropped (and the next ones until "
                 "PostgreSQL takes them; see talas_listen_sessions_dropped_total): %s",
                 res != NULL ? PQresultErrorMessage(res) : error);
    dropping = 1;
}

void talas_state_analytics_record(const struct talas_worker_ctx *ctx, const char *user,
                                  const struct talas_playback_session_write *w, const char *sid)
{
    char started[24], ended[24], position[24], played[24];
    const char *params[9] = {
        sid, user, w->state.track_id, w->state.quality, w->state.platform, started, NULL, position, played};

    if (ctx->records == NULL)
        return;
    snprintf(started, sizeof(started), "%" PRIu64, w->state.session_started_ms);
    snprintf(ended, sizeof(ended), "%" PRIu64, w->ended_ms);
    snprintf(position, sizeof(position), "%" PRIu64, w->state.position_ms);
    snprintf(played, sizeof(played), "%" PRIu64, w->state.played_ms);
    if (w->ended_ms != 0)
        params[6] = ended;
    /* the query outlives this call; its completion needs only the slot */
    talas_pg_query(ctx->records, sql_put, 9, params, on_put, ctx->metrics);
}

static void on_result(void *data, const PGresult *res, const char *error)
{
    struct talas_state_analytics_op *op = data;
    struct talas_state_analytics_result r;
    struct talas_listen_session *sessions = NULL;

    memset(&r, 0, sizeof(r));
    r.outcome = talas_state_pg_outcome(res, error, "an analytics read", &r.reason);
    if (r.outcome != TALAS_STATE_OK) {
        /* r says why */
    } else if (op->kind == TRACK) {
        if (PQntuples(res) == 1) {
            r.plays.plays = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
            r.plays.listeners = strtoull(PQgetvalue(res, 0, 1), NULL, 10);
            r.plays.total_listening_ms = strtoull(PQgetvalue(res, 0, 2), NULL, 10);
        }
    } else {
        int n = PQntuples(res);
        sessions = xcalloc(n > 0 ? (size_t)n : 1, sizeof(*sessions));
        for (int i = 0; i < n; i++) {
            struct talas_listen_session *s = &sessions[i];
            snprintf(s->track_id, sizeof(s->track_id), "%s", PQgetvalue(res, i, 0));
            snprintf(s->quality, sizeof(s->quality), "%s", PQgetvalue(res, i, 1));
            snprintf(s->platform, sizeof(s->platform), "%s", PQgetvalue(res, i, 2));
            s->started_ms = strtoull(PQgetvalue(res, i, 3), NULL, 10);
            s->ended_ms = strtoull(PQgetvalue(res, i, 4), NULL, 10);
            s->position_ms = strtoull(PQgetvalue(res, i, 5), NULL, 10);
            s->total_played_ms = strtoull(PQgetvalue(res, i, 6), NULL, 10);
            r.total = (size_t)strtoull(PQgetvalue(res, i, 7), NULL, 10);
        }
        r.sessions = sessions;
        r.count = (size_t)n;
    }
    op->query = NULL;
    op->cb(op->data, &r);
    free(sessions);
    free(op);
}

static struct talas_state_analytics_op *start(const struct talas_worker_ctx *ctx, enum kind kind,
                                              const char *sql, int n, const char *const *params,
                                              talas_state_analytics_fn *cb, void *data)
{
    struct talas_state_analytics_op *op = xcalloc(1, sizeof(*op));
    struct talas_pg_query *q;

    op->kind = kind;
    op->cb = cb;
    op->data = data;
    if ((q = talas_pg_query(ctx->records, sql, n, params, on_result, op)) == NULL)
        return NULL; /* on_result ran, and freed OP */
    op->query = q;
    return op;
}

struct talas_state_analytics_op *talas__state_analytics_pg_track(const struct talas_worker_ctx *ctx,
                                                                 const char *track,
                                                                 talas_state_analytics_fn *cb, void *data)
{
    const char *params[1] = {track};

    return start(ctx, TRACK, sql_track, 1, params, cb, data);
}

struct talas_state_analytics_op *talas__state_analytics_pg_sessions(const struct talas_worker_ctx *ctx,
                                                                    const char *user, size_t limit,
                                                                    talas_state_analytics_fn *cb, void *data)
{
    char n[24];
    const char *params[2] = {user, n};

    snprintf(n, sizeof(n), "%zu", limit);
    return start(ctx, SESSIONS, sql_sessions, 2, params, cb, data);
}

void talas__state_analytics_pg_cancel(struct talas_state_analytics_op *op)
{
    if (op->query != NULL)
        talas_pg_cancel(op->query);
    free(op);
}
