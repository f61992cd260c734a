/*
 * state_play_queue_pg.c - the cluster backend of state_play_queue.h: saved
 * play queues on PostgreSQL (store/pg_schema.c, version 5), through the
 * worker's connection (cluster/pg.h).
 *
 * Entry points (talas__, for state_play_queue.c only):
 * talas__state_play_queue_pg_save, _get, _cancel.
 *
 * A save is one call of the schema's talas_play_queue_save, one round trip
 * and one statement; repeated, it changes nothing more, so a save whose
 * answer was lost (it completes as unavailable) is safe to retry. A read is
 * one statement: a row per entry, in order, each with the queue's fields.
 *
 * Logs: SQL errors (the server's message), which should not happen with
 * the schema this build checked.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/pg.h"
#include "core/json.h"
#include "core/log.h"
#include "core/util.h"
#include "state/state_play_queue.h"

enum kind { SAVE, GET };

struct talas_state_play_queue_op {
    enum kind kind;
    struct talas_pg_query *query;
    talas_state_play_queue_fn *cb;
    void *data;
};

static const char too_big[] = "a play queue holds at most 1000 songs, ids of 1 to 128 bytes, and a client "
                              "name of at most 256 bytes";

static const char sql_save[] = "SELECT talas_play_queue_save($1, $2::json, $3, $4::bigint, $5::bigint, $6)";
static const char sql_get[] = "SELECT q.current, q.position_ms, q.changed_ms, q.changed_by, t.id "
                              "FROM talas_play_queues q CROSS JOIN LATERAL unnest(q.tracks) "
                              "WITH ORDINALITY AS t(id, n) WHERE q.user_id = $1 ORDER BY t.n";

static void on_result(void *data, const PGresult *res, const char *error)
{
    struct talas_state_play_queue_op *op = data;
    struct talas_state_play_queue_result r;
    struct talas_play_queue q;

    memset(&r, 0, sizeof(r));
    memset(&q, 0, sizeof(q));
    r.outcome =
        talas_state_pg_outcome(res, error, op->kind == GET ? "a play queue read" : "a play queue save", &r.reason);
    if (r.outcome != TALAS_STATE_OK) {
        /* r says why */
    } else if (op->kind == GET) {
        int rows = PQntuples(res);
        if (PQnfields(res) != 5) {
            r.outcome = TALAS_STATE_FAILED;
        } else if (rows > 0) {
            q.tracks = xcalloc((size_t)rows, sizeof(*q.tracks));
            q.current = PQgetvalue(res, 0, 0);
            q.position_ms = strtoull(PQgetvalue(res, 0, 1), NULL, 10);
            q.changed_ms = strtoull(PQgetvalue(res, 0, 2), NULL, 10);
            q.changed_by = PQgetvalue(res, 0, 3);
            for (int i = 0; i < rows; i++)
                q.tracks[q.count++] = PQgetvalue(res, i, 4);
            r.queue = &q;
        }
    }
    op->query = NULL;
    op->cb(op->data, &r);
    free(q.tracks);
    free(op);
}

static struct talas_state_play_queue_op *start(const struct talas_worker_ctx *ctx, enum kind kind,
                                               const char *sql, int n, const char *const *params,
                                               talas_state_play_queue_fn *cb, void *data)
{
    struct talas_state_play_queue_op *op = xcalloc(1, sizeof(*op));
    struct talas_pg_query *q;

    op->kind = kind;
    op->cb = cb;
    op->data = data;
    if ((q = talas_pg_query(ctx->records, sql, n, params, on_result, op)) == NULL)
        return NULL; /* on_result ran, and freed OP */
    op->query = q;
    return op;
}

struct talas_state_play_queue_op *talas__state_play_queue_pg_save(const struct talas_worker_ctx *ctx,
                                                                  const char *user,
                                                                  const struct talas_play_queue *q,
                                                                  talas_state_play_queue_fn *cb, void *data)
{
    struct talas_buf list = {0};
    struct talas_state_play_queue_op *op;
    char position[24], changed[24];
    const char *params[6] = {user,     NULL,    q->current != NULL ? q->current : "",
                             position, changed, q->changed_by != NULL ? q->changed_by : ""};

    /* what the local store refuses (EINVAL) */
    if (talas_play_queue_check(user, q) != 0) {
        struct talas_state_play_queue_result r;
        memset(&r, 0, sizeof(r));
        r.outcome = TALAS_STATE_REFUSED;
        r.reason = too_big;
        cb(data, &r);
        return NULL;
    }
    talas_state_pg_json_list(&list, q->tracks, NULL, q->count);
    params[1] = list.data;
    snprintf(position, sizeof(position), "%" PRIu64, q->position_ms);
    snprintf(changed, sizeof(changed), "%" PRIu64, q->changed_ms);
    op = start(ctx, SAVE, sql_save, 6, params, cb, data);
    talas_buf_free(&list);
    return op;
}

struct talas_state_play_queue_op *talas__state_play_queue_pg_get(const struct talas_worker_ctx *ctx,
                                                                 const char *user,
                                                                 talas_state_play_queue_fn *cb, void *data)
{
    const char *params[1] = {user};

    return start(ctx, GET, sql_get, 1, params, cb, data);
}

void talas__state_play_queue_pg_cancel(struct talas_state_play_queue_op *op)
{
    if (op->query != NULL)
        talas_pg_cancel(op->query);
    free(op);
}
