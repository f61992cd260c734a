/*
 * state_comments_pg.c - the cluster backend of state_comments.h: timed
 * comments on PostgreSQL, through the worker's connection (cluster/pg.h).
 *
 * Entry points (talas__, for state_comments.c only):
 * talas__state_comment_pg_add, _change, _list, _cancel.
 *
 * Each change is one call of the schema's SQL function (store/pg_schema.c
 * versions 3, 5 and 8), one round trip, the parent or the author checked in
 * its transaction, and an add counted against comments.max_per_track
 * under a lock on the track (exact across nodes); the refusals carry store/comments.h's reasons, so both
 * stores refuse in the same words. A listing is one statement. Nothing is
 * resent: a change whose answer was lost completes as unavailable.
 *
 * Logs: SQL errors (the server's message).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/pg.h"
#include "core/json.h"
#include "core/log.h"
#include "core/util.h"
#include "state/state_comments.h"

enum kind { ADD, CHANGE, LIST };

struct talas_state_comment_op {
    enum kind kind;
    struct talas_pg_query *query;
    talas_state_comment_fn *cb;
    void *data;
    struct talas_comment c; /* ADD: what was sent (strings in mem) */
    char *mem;
    int deleting;
};


static const char sql_add[] = "SELECT outcome, parent, created_ms FROM talas_comment_add_capped($1, $2, $3, $4, "
                              "$5::bigint, $6::bigint, $7, $8::bigint)";
static const char sql_change[] = "SELECT outcome, track, user_id, parent, at_ms, created_ms, edited_ms, body "
                                 "FROM talas_comment_change($1, $2, $3, $4::bigint)";
static const char sql_list[] = "SELECT id, track, user_id, coalesce(parent, ''), at_ms, created_ms, edited_ms, "
                               "body FROM talas_comments WHERE track = ANY ($1::text[]) ORDER BY at_ms, "
                               "created_ms, id LIMIT 10000";

/* Row I of RES (columns from FIRST: track, user, parent, at, created,
 * edited, body) into C; ID given. */
static void row_comment(const PGresult *res, int i, int first, const char *id, struct talas_comment *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->id, sizeof(c->id), "%s", id);
    c->track = PQgetvalue(res, i, first);
    c->user = PQgetvalue(res, i, first + 1);
    c->parent = PQgetvalue(res, i, first + 2);
    c->at_ms = strtoll(PQgetvalue(res, i, first + 3), NULL, 10);
    c->created_ms = strtoull(PQgetvalue(res, i, first + 4), NULL, 10);
    c->edited_ms = strtoull(PQgetvalue(res, i, first + 5), NULL, 10);
    c->body = PQgetvalue(res, i, first + 6);
    c->body_len = (size_t)PQgetlength(res, i, first + 6);
}

static void on_result(void *data, const PGresult *res, const char *error)
{
    struct talas_state_comment_op *op = data;
    struct talas_state_comment_result r;
    struct talas_comment one, *list = NULL;

    memset(&r, 0, sizeof(r));
    r.outcome =
        talas_state_pg_outcome(res, error, op->kind == LIST ? "a comment listing" : "a comment change", &r.reason);
    if (r.outcome != TALAS_STATE_OK) {
        /* r says why */
    } else if (op->kind == LIST) {
        int rows = PQntuples(res);
        list = xcalloc(rows ? (size_t)rows : 1, sizeof(*list));
        for (int i = 0; i < rows; i++)
            row_comment(res, i, 1, PQgetvalue(res, i, 0), &list[i]);
        r.comments = list;
        r.count = (size_t)rows;
    } else if (PQntuples(res) != 1) {
        r.outcome = TALAS_STATE_FAILED;
    } else {
        const char *outcome = PQgetvalue(res, 0, 0);
        if (strcmp(outcome, "ok") == 0) {
            r.outcome = TALAS_STATE_OK;
            if (op->kind == ADD && PQnfields(res) != 3) {
                log_error("records: a comment add answered %d columns, not 3", PQnfields(res));
                r.outcome = TALAS_STATE_FAILED;
            } else if (op->kind == ADD) {
                one = op->c;
                one.parent = PQgetisnull(res, 0, 1) ? "" : PQgetvalue(res, 0, 1);
                one.created_ms = strtoull(PQgetvalue(res, 0, 2), NULL, 10);
                r.comment = &one;
            } else {
                row_comment(res, 0, 1, op->c.id, &one);
                if (PQgetisnull(res, 0, 3))
                    one.parent = "";
                r.comment = &one;
            }
        } else if (strcmp(outcome, "full") == 0) {
            r.outcome = TALAS_STATE_QUOTA;
        } else if (strcmp(outcome, "no_parent") == 0) {
            r.outcome = TALAS_STATE_REFUSED;
            r.reason = talas_comment_no_parent;
        } else if (strcmp(outcome, "parent_elsewhere") == 0) {
            r.outcome = TALAS_STATE_REFUSED;
            r.reason = talas_comment_parent_elsewhere;
        } else if (strcmp(outcome, "forbidden") == 0) {
            r.outcome = TALAS_STATE_FORBIDDEN;
            r.reason = talas_comment_forbidden;
        } else if (strcmp(outcome, "not_found") == 0) {
            r.outcome = TALAS_STATE_NOT_FOUND;
            r.reason = talas_comment_no_such;
        } else {
            log_error("records: a comment change answered \"%.32s\"", outcome);
            r.outcome = TALAS_STATE_FAILED;
        }
    }
    op->query = NULL;
    op->cb(op->data, &r);
    free(list);
    free(op->mem);
    free(op);
}

static struct talas_state_comment_op *start(const struct talas_worker_ctx *ctx,
                                            struct talas_state_comment_op *op, const char *sql, int n,
                                            const char *const *params)
{
    struct talas_pg_query *q;

    if ((q = talas_pg_query(ctx->records, sql, n, params, on_result, op)) == NULL)
        return NULL; /* on_result ran, and freed OP */
    op->query = q;
    return op;
}

struct talas_state_comment_op *talas__state_comment_pg_add(const struct talas_worker_ctx *ctx,
                                                           const struct talas_comment *c,
                                                           talas_state_comment_fn *cb, void *data)
{
    struct talas_state_comment_op *op = xcalloc(1, sizeof(*op));
    size_t lt = strlen(c->track) + 1, lu = strlen(c->user) + 1;
    char at[24], now[24], max[24];
    const char *params[8];

    op->kind = ADD;
    op->cb = cb;
    op->data = data;
    op->c = *c;
    /* the result outlives the caller's strings */
    op->mem = xmalloc(lt + lu + c->body_len + 1);
    op->c.track = memcpy(op->mem, c->track, lt);
    op->c.user = memcpy(op->mem + lt, c->user, lu);
    op->c.body = memcpy(op->mem + lt + lu, c->body, c->body_len);
    op->mem[lt + lu + c->body_len] = '\0';
    snprintf(at, sizeof(at), "%" PRId64, c->at_ms);
    snprintf(now, sizeof(now), "%" PRIu64, c->created_ms);
    snprintf(max, sizeof(max), "%d", ctx->conf->comments_max_per_track);
    params[0] = c->id;
    params[1] = op->c.track;
    params[2] = op->c.user;
    params[3] = c->parent[0] != '\0' ? c->parent : NULL;
    params[4] = at;
    params[5] = now;
    params[6] = op->c.body;
    params[7] = max;
    return start(ctx, op, sql_add, 8, params);
}

struct talas_state_comment_op *talas__state_comment_pg_change(const struct talas_worker_ctx *ctx,
                                                              const char *id, const char *user,
                                                              const char *body, size_t body_len,
                                                              uint64_t now_ms, talas_state_comment_fn *cb,
                                                              void *data)
{
    struct talas_state_comment_op *op = xcalloc(1, sizeof(*op));
    char now[24], *b = NULL;
    const char *params[4];
    struct talas_state_comment_op *res;

    op->kind = CHANGE;
    op->cb = cb;
    op->data = data;
    snprintf(op->c.id, sizeof(op->c.id), "%s", id);
    snprintf(now, sizeof(now), "%" PRIu64, now_ms);
    if (body != NULL)
        b = xstrndup(body, body_len);
    params[0] = id;
    params[1] = user;
    params[2] = b;
    params[3] = now;
    res = start(ctx, op, sql_change, 4, params);
    free(b);
    return res;
}

struct talas_state_comment_op *talas__state_comment_pg_list(const struct talas_worker_ctx *ctx,
                                                            const char *const *tracks, size_t n,
                                                            talas_state_comment_fn *cb, void *data)
{
    struct talas_state_comment_op *op = xcalloc(1, sizeof(*op));
    struct talas_buf arr = {0};
    struct talas_state_comment_op *res;
    const char *params[1];

    op->kind = LIST;
    op->cb = cb;
    op->data = data;
    /* track ids are base64url: an array literal needs no quoting */
    talas_buf_puts(&arr, "{");
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            talas_buf_puts(&arr, ",");
        talas_buf_puts(&arr, tracks[i]);
    }
    talas_buf_append(&arr, "}", 2);
    params[0] = arr.data;
    res = start(ctx, op, sql_list, 1, params);
    talas_buf_free(&arr);
    return res;
}

void talas__state_comment_pg_cancel(struct talas_state_comment_op *op)
{
    if (op->query != NULL)
        talas_pg_cancel(op->query);
    free(op->mem);
    free(op);
}
