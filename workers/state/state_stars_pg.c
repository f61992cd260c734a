/*
 * state_stars_pg.c - the cluster backend of state_stars.h: stars and
 * ratings on PostgreSQL (store/pg_schema.c, version 3), through the
 * worker's connection (cluster/pg.h).
 *
 * Entry points (talas__, for state_stars.c only): talas__state_stars_pg_set,
 * _rate, _list, _cancel.
 *
 * A change is one call of the schema's function (talas_stars_set,
 * talas_stars_rate), one round trip and one transaction; either repeated
 * changes nothing more, so a change whose answer was lost (it completes
 * as unavailable) is safe to retry. A list is one statement.
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
#include "state/state_stars.h"

enum kind { CHANGE, LIST };

struct talas_state_stars_op {
    enum kind kind;
    struct talas_pg_query *query;
    talas_state_stars_fn *cb;
    void *data;
};

static const char bad_id[] = "an id must be 1 to 128 bytes, and a rating 0 to 5";

static const char sql_set[] = "SELECT talas_stars_set($1, $2::json, $3::bigint)";
static const char sql_rate[] = "SELECT talas_stars_rate($1, $2, $3::integer)";
static const char sql_list[] = "SELECT item, coalesce(starred_ms, 0), rating FROM talas_stars "
                               "WHERE user_id = $1 ORDER BY item";

static void on_result(void *data, const PGresult *res, const char *error)
{
    struct talas_state_stars_op *op = data;
    struct talas_state_stars_result r;
    struct talas_star *stars = NULL;

    memset(&r, 0, sizeof(r));
    r.outcome = talas_state_pg_outcome(res, error, op->kind == LIST ? "a stars read" : "a stars change", &r.reason);
    if (r.outcome != TALAS_STATE_OK) {
        /* r says why */
    } else if (op->kind == LIST) {
        int rows = PQntuples(res);
        if (PQnfields(res) != 3) {
            r.outcome = TALAS_STATE_FAILED;
        } else {
            stars = xcalloc((size_t)rows + 1, sizeof(*stars));
            for (int i = 0; i < rows; i++) {
                stars[i].item = PQgetvalue(res, i, 0);
                stars[i].starred_ms = strtoull(PQgetvalue(res, i, 1), NULL, 10);
                stars[i].rating = (unsigned)strtoul(PQgetvalue(res, i, 2), NULL, 10);
            }
            r.stars = stars;
            r.count = (size_t)rows;
        }
    }
    op->query = NULL;
    op->cb(op->data, &r);
    free(stars);
    free(op);
}

static struct talas_state_stars_op *start(const struct talas_worker_ctx *ctx, enum kind kind, const char *sql,
                                          int n, const char *const *params, talas_state_stars_fn *cb,
                                          void *data)
{
    struct talas_state_stars_op *op = xcalloc(1, sizeof(*op));
    struct talas_pg_query *q;

    op->kind = kind;
    op->cb = cb;
    op->data = data;
    if ((q = talas_pg_query(ctx->records, sql, n, params, on_result, op)) == NULL)
        return NULL; /* on_result ran, and freed OP */
    op->query = q;
    return op;
}

/* Refuses at once what store/stars.c refuses (EINVAL). */
static int refuse(int bad, talas_state_stars_fn *cb, void *data)
{
    struct talas_state_stars_result r;

    if (!bad)
        return 0;
    memset(&r, 0, sizeof(r));
    r.outcome = TALAS_STATE_REFUSED;
    r.reason = bad_id;
    cb(data, &r);
    return 1;
}

static int id_bad(const char *id)
{
    size_t len = strlen(id);

    return len == 0 || len > TALAS_STARS_ID_MAX;
}

struct talas_state_stars_op *talas__state_stars_pg_set(const struct talas_worker_ctx *ctx, const char *user,
                                                       const char *const *items, size_t n, int star,
                                                       uint64_t now_ms, talas_state_stars_fn *cb, void *data)
{
    struct talas_buf list = {0};
    struct talas_state_stars_op *op;
    char when[24];
    const char *params[3] = {user, NULL, star ? when : NULL};
    int bad = id_bad(user);

    for (size_t i = 0; i < n; i++)
        bad |= id_bad(items[i]);
    if (refuse(bad, cb, data))
        return NULL;
    talas_state_pg_json_list(&list, items, NULL, n);
    params[1] = list.data;
    snprintf(when, sizeof(when), "%" PRIu64, now_ms > 0 ? now_ms : 1);
    op = start(ctx, CHANGE, sql_set, 3, params, cb, data);
    talas_buf_free(&list);
    return op;
}

struct talas_state_stars_op *talas__state_stars_pg_rate(const struct talas_worker_ctx *ctx, const char *user,
                                                        const char *item, unsigned rating,
                                                        talas_state_stars_fn *cb, void *data)
{
    char value[8];
    const char *params[3] = {user, item, value};

    if (refuse(id_bad(user) || id_bad(item) || rating > TALAS_STARS_RATING_MAX, cb, data))
        return NULL;
    snprintf(value, sizeof(value), "%u", rating);
    return start(ctx, CHANGE, sql_rate, 3, params, cb, data);
}

struct talas_state_stars_op *talas__state_stars_pg_list(const struct talas_worker_ctx *ctx, const char *user,
                                                        talas_state_stars_fn *cb, void *data)
{
    const char *params[1] = {user};

    return start(ctx, LIST, sql_list, 1, params, cb, data);
}

void talas__state_stars_pg_cancel(struct talas_state_stars_op *op)
{
    if (op->query != NULL)
        talas_pg_cancel(op->query);
    free(op);
}
