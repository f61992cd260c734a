/*
 * state_playlists_pg.c - the cluster backend of state_playlists.h:
 * playlists on PostgreSQL, through the worker's connection (cluster/pg.h).
 *
 * Entry points (talas__, for state_playlists.c only): talas__state_pg_add,
 * _remove, _share, _get, _edit, _delete, _list, _cancel.
 *
 * Each change is one call of the schema's SQL function
 * (store/pg_schema.c), one round trip, quotas checked in its transaction;
 * its row (outcome, detail, value, created) becomes the result, with the
 * reasons of store/playlists.h, so that both stores refuse in the same
 * words. A read is one statement (one snapshot): the owner, the editors in
 * the order they were added, the tracks by position, the details; a list
 * is one statement too, a row per track of each playlist listed.
 *
 * Nothing is resent: a change whose answer was lost (the connection went,
 * or the deadline passed) completes as unavailable, and may or may not
 * have happened; a retry by the client of a share is harmless, of an add
 * adds the track again.
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
#include "state/state_playlists.h"
#include "store/playlists.h"

enum kind { ADD, REMOVE, SHARE, GET, EDIT, DELETE, LIST };

struct talas_state_op {
    enum kind kind;
    char *id; /* GET */
    struct talas_pg_query *query;
    talas_state_playlist_fn *cb;
    void *data;
};


static const char sql_add[] = "SELECT outcome, detail, value, created FROM talas_playlist_add($1, $2, $3, "
                              "$4::bigint, $5::bigint, $6::bigint, $7::bigint)";
static const char sql_remove[] = "SELECT outcome, detail, value, created FROM talas_playlist_remove($1, $2, $3)";
static const char sql_share[] =
    "SELECT outcome, detail, value, created FROM talas_playlist_share($1, $2, $3::json, $4::bigint)";
/* parts: 0 the owner, 1 the editors, 2 the tracks, 3 the details (by i:
 * name, comment, public, created and changed in ms) */
static const char sql_get[] =
    "SELECT 0 AS part, 0::bigint AS i, owner AS v FROM talas_playlists WHERE id = $1 "
    "UNION ALL SELECT 1, seq, editor FROM talas_playlist_editors WHERE playlist = $1 "
    "UNION ALL SELECT 2, position, track FROM talas_playlist_tracks WHERE playlist = $1 "
    "UNION ALL SELECT 3, d.i, d.v FROM talas_playlists p, LATERAL (VALUES (0, p.name), "
    "(1, p.comment), (2, p.public::text), "
    "(3, (extract(epoch FROM p.created) * 1000)::bigint::text), "
    "(4, (extract(epoch FROM p.changed) * 1000)::bigint::text)) AS d(i, v) "
    "WHERE p.id = $1 "
    "ORDER BY 1, 2";
static const char sql_edit[] =
    "SELECT outcome, detail, value, created FROM talas_playlist_edit($1, $2, $3::boolean, "
    "$4, $5, $6::boolean, $7::boolean, $8::json, $9::json, $10::bigint, $11::bigint, "
    "$12::bigint)";
static const char sql_delete[] = "SELECT outcome, detail, value, created FROM talas_playlist_delete($1, $2)";
static const char sql_list[] =
    "SELECT p.id, p.owner, p.name, p.comment, p.public::text, "
    "(extract(epoch FROM p.created) * 1000)::bigint, (extract(epoch FROM p.changed) * 1000)::bigint, t.track "
    "FROM talas_playlists p LEFT JOIN talas_playlist_tracks t ON t.playlist = p.id "
    "WHERE p.owner = $1 OR p.public OR EXISTS (SELECT 1 FROM talas_playlist_editors e "
    "WHERE e.playlist = p.id AND e.editor = $1) "
    "ORDER BY p.id COLLATE \"C\", t.position";

/* The reason of a refusal by its code in the schema's functions. */
static const char *reason_of(const char *outcome, const char *detail)
{
    static const struct {
        const char *outcome, *detail, *reason;
    } reasons[] = {
        {"forbidden", "edit", talas_playlist_forbidden_edit},
        {"forbidden", "share", talas_playlist_forbidden_share},
        {"forbidden", "ownerless", talas_playlist_forbidden_ownerless},
        {"forbidden", "owner", talas_playlist_forbidden_owner},
        {"refused", "exists", talas_playlist_exists},
        {"refused", "index", talas_playlist_bad_index},
        {"refused", "user_id", talas_playlist_bad_user},
        {"refused", "position", talas_playlist_bad_position},
        {"refused", "not_in_playlist", talas_playlist_no_track},
        {"refused", "to_users", talas_playlist_bad_to_users},
    };

    for (size_t i = 0; i < TALAS_ARRAY_SIZE(reasons); i++)
        if (strcmp(outcome, reasons[i].outcome) == 0 && strcmp(detail, reasons[i].detail) == 0)
            return reasons[i].reason;
    return NULL;
}

/* The quota keys, as static strings (the refusal keeps a pointer). */
static const char *limit_of(const char *detail)
{
    static const char *const keys[] = {"playlists.max_per_user", "playlists.max_total", "playlists.max_tracks",
                                       "playlists.max_editors"};

    for (size_t i = 0; i < TALAS_ARRAY_SIZE(keys); i++)
        if (strcmp(detail, keys[i]) == 0)
            return keys[i];
    return NULL;
}

/* Fills R from a change's row; -1 when the row is not one. */
static int change_result(const PGresult *res, enum kind kind, struct talas_state_playlist_result *r)
{
    const char *outcome, *detail;
    uint64_t value;

    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 || PQnfields(res) != 4)
        return -1;
    outcome = PQgetvalue(res, 0, 0);
    detail = PQgetvalue(res, 0, 1);
    value = PQgetisnull(res, 0, 2) ? 0 : strtoull(PQgetvalue(res, 0, 2), NULL, 10);
    if (strcmp(outcome, "ok") == 0) {
        r->outcome = TALAS_STATE_OK;
        if (kind == SHARE)
            r->editors_added = (size_t)value;
        else
            r->position = value;
        r->created = strcmp(PQgetvalue(res, 0, 3), "t") == 0;
    } else if (strcmp(outcome, "not_found") == 0) {
        r->outcome = TALAS_STATE_NOT_FOUND;
        r->reason = talas_playlist_no_such;
    } else if (strcmp(outcome, "quota") == 0 && limit_of(detail) != NULL) {
        r->outcome = TALAS_STATE_QUOTA;
        talas_quota_refuse(&r->refusal, limit_of(detail), value);
    } else if ((r->reason = reason_of(outcome, detail)) != NULL) {
        r->outcome = strcmp(outcome, "forbidden") == 0 ? TALAS_STATE_FORBIDDEN : TALAS_STATE_REFUSED;
    } else {
        return -1;
    }
    return 0;
}

/* Fills P from a read's rows (strings point into RES); 0, or 1 when there
 * is no such playlist, -1 when the rows are not a read's. */
static int read_result(const PGresult *res, struct talas_state_playlist *p, const char ***editors,
                       const char ***tracks)
{
    int rows = PQntuples(res), have_owner = 0;
    const char *pub = "false", *created = "0", *changed = "0";
    size_t ne = 0, nt = 0;

    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQnfields(res) != 3)
        return -1;
    *editors = xcalloc((size_t)rows + 1, sizeof(**editors));
    *tracks = xcalloc((size_t)rows + 1, sizeof(**tracks));
    memset(p, 0, sizeof(*p));
    for (int i = 0; i < rows; i++) {
        const char *part = PQgetvalue(res, i, 0), *v = PQgetvalue(res, i, 2);
        if (strcmp(part, "0") == 0) {
            p->owner = v;
            have_owner = 1;
        } else if (strcmp(part, "1") == 0) {
            (*editors)[ne++] = v;
        } else if (strcmp(part, "2") == 0) {
            (*tracks)[nt++] = v;
        } else {
            switch (atoi(PQgetvalue(res, i, 1))) {
            case 0:
                p->name = v;
                break;
            case 1:
                p->comment = v;
                break;
            case 2:
                pub = v;
                break;
            case 3:
                created = v;
                break;
            default:
                changed = v;
            }
        }
    }
    if (p->name == NULL)
        p->name = "";
    if (p->comment == NULL)
        p->comment = "";
    p->public_ = strcmp(pub, "true") == 0;
    p->created_ms = strtoull(created, NULL, 10);
    p->changed_ms = strtoull(changed, NULL, 10);
    p->editors = *editors;
    p->editor_count = ne;
    p->tracks = *tracks;
    p->track_count = nt;
    return have_owner ? 0 : 1;
}

/* Fills a list from its rows (a row per track, or one with a NULL track
 * for an empty playlist; strings point into RES): *PS_R and *TRACKS_R
 * are the caller's to free. -1 when the rows are not a list's. */
static int list_result(const PGresult *res, struct talas_state_playlist **ps_r, size_t *count_r,
                       const char ***tracks_r)
{
    int rows = PQntuples(res);
    struct talas_state_playlist *ps;
    const char **tracks;
    size_t n = 0, nt = 0;

    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQnfields(res) != 8)
        return -1;
    ps = xcalloc((size_t)rows + 1, sizeof(*ps));
    tracks = xcalloc((size_t)rows + 1, sizeof(*tracks));
    for (int i = 0; i < rows; i++) {
        const char *id = PQgetvalue(res, i, 0);
        if (n == 0 || strcmp(ps[n - 1].id, id) != 0) {
            struct talas_state_playlist *p = &ps[n++];
            p->id = id;
            p->owner = PQgetvalue(res, i, 1);
            p->name = PQgetvalue(res, i, 2);
            p->comment = PQgetvalue(res, i, 3);
            p->public_ = strcmp(PQgetvalue(res, i, 4), "true") == 0;
            p->created_ms = strtoull(PQgetvalue(res, i, 5), NULL, 10);
            p->changed_ms = strtoull(PQgetvalue(res, i, 6), NULL, 10);
            p->tracks = tracks + nt;
        }
        if (!PQgetisnull(res, i, 7)) {
            tracks[nt++] = PQgetvalue(res, i, 7);
            ps[n - 1].track_count++;
        }
    }
    *ps_r = ps;
    *count_r = n;
    *tracks_r = tracks;
    return 0;
}

static void on_result(void *data, const PGresult *res, const char *error)
{
    struct talas_state_op *op = data;
    struct talas_state_playlist_result r;
    struct talas_state_playlist p, *ps = NULL;
    const char **editors = NULL, **tracks = NULL;

    memset(&r, 0, sizeof(r));
    r.outcome = talas_state_pg_outcome(res, error,
                                       op->kind == GET || op->kind == LIST ? "a playlist read" : "a playlist change",
                                       &r.reason);
    if (r.outcome != TALAS_STATE_OK) {
        /* r says why */
    } else if (op->kind == LIST) {
        if (list_result(res, &ps, &r.playlist_count, &tracks) == 0)
            r.playlists = ps;
        else
            r.outcome = TALAS_STATE_FAILED;
    } else if (op->kind == GET) {
        int rc = read_result(res, &p, &editors, &tracks);
        if (rc == 0) {
            p.id = op->id;
            r.playlist = &p;
        } else if (rc == 1) {
            r.outcome = TALAS_STATE_NOT_FOUND;
            r.reason = talas_playlist_no_such;
        } else {
            r.outcome = TALAS_STATE_FAILED;
        }
    } else if (change_result(res, op->kind, &r) != 0) {
        log_error("records: a playlist change answered a row of no known shape");
        r.outcome = TALAS_STATE_FAILED;
    }
    op->query = NULL;
    op->cb(op->data, &r);
    free(editors);
    free(tracks);
    free(ps);
    free(op->id);
    free(op);
}

/* Sends SQL for a new operation of KIND; see the contract in
 * state_playlists.h. */
static struct talas_state_op *start(const struct talas_worker_ctx *ctx, enum kind kind, const char *sql, int n,
                                    const char *const *params, talas_state_playlist_fn *cb, void *data)
{
    struct talas_state_op *op = xcalloc(1, sizeof(*op));
    struct talas_pg_query *q;

    op->kind = kind;
    op->cb = cb;
    op->data = data;
    if (kind == GET)
        op->id = xstrdup(params[0]);
    if ((q = talas_pg_query(ctx->records, sql, n, params, on_result, op)) == NULL)
        return NULL; /* on_result ran, and freed OP */
    op->query = q;
    return op;
}

/* Refuses at once what store/playlists.c refuses before its transaction. */
static int bad_id(const char *playlist, talas_state_playlist_fn *cb, void *data)
{
    struct talas_state_playlist_result r;
    size_t len = strlen(playlist);

    if (len > 0 && len <= TALAS_PLAYLIST_ID_MAX)
        return 0;
    memset(&r, 0, sizeof(r));
    r.outcome = TALAS_STATE_REFUSED;
    r.reason = talas_playlist_bad_id;
    cb(data, &r);
    return 1;
}

struct talas_state_op *talas__state_pg_add(const struct talas_worker_ctx *ctx,
                                           const struct talas_playlist_limits *lim, const char *user,
                                           const char *playlist, const char *track, int has_position,
                                           uint64_t position, talas_state_playlist_fn *cb, void *data)
{
    char pos[24], per_user[24], total[24], tracks[24];
    const char *params[7] = {user, playlist, track, has_position ? pos : NULL, per_user, total, tracks};

    if (bad_id(playlist, cb, data))
        return NULL;
    snprintf(pos, sizeof(pos), "%" PRIu64, position);
    snprintf(per_user, sizeof(per_user), "%" PRIu64, lim->max_per_user);
    snprintf(total, sizeof(total), "%" PRIu64, lim->max_total);
    snprintf(tracks, sizeof(tracks), "%" PRIu64, lim->max_tracks);
    return start(ctx, ADD, sql_add, 7, params, cb, data);
}

struct talas_state_op *talas__state_pg_remove(const struct talas_worker_ctx *ctx, const char *user,
                                              const char *playlist, const char *track,
                                              talas_state_playlist_fn *cb, void *data)
{
    const char *params[3] = {user, playlist, track};

    if (bad_id(playlist, cb, data))
        return NULL;
    return start(ctx, REMOVE, sql_remove, 3, params, cb, data);
}

struct talas_state_op *talas__state_pg_share(const struct talas_worker_ctx *ctx,
                                             const struct talas_playlist_limits *lim, const char *user,
                                             const char *playlist, const char *const *to_users, size_t n,
                                             talas_state_playlist_fn *cb, void *data)
{
    struct talas_buf to = {0};
    struct talas_state_op *op;
    char max[24];
    const char *params[4] = {user, playlist, NULL, max};

    if (bad_id(playlist, cb, data))
        return NULL;
    talas_state_pg_json_list(&to, to_users, NULL, n);
    params[2] = to.data;
    snprintf(max, sizeof(max), "%" PRIu64, lim->max_editors);
    op = start(ctx, SHARE, sql_share, 4, params, cb, data);
    talas_buf_free(&to);
    return op;
}

struct talas_state_op *talas__state_pg_get(const struct talas_worker_ctx *ctx, const char *playlist,
                                           talas_state_playlist_fn *cb, void *data)
{
    const char *params[1] = {playlist};

    return start(ctx, GET, sql_get, 1, params, cb, data);
}

struct talas_state_op *talas__state_pg_edit(const struct talas_worker_ctx *ctx,
                                            const struct talas_playlist_limits *lim, const char *user,
                                            const char *playlist, const struct talas_playlist_edit *e,
                                            talas_state_playlist_fn *cb, void *data)
{
    struct talas_buf adds = {0}, removes = {0};
    struct talas_state_op *op;
    char per_user[24], total[24], tracks[24];
    const char *reason;
    const char *pub = NULL;
    const char *params[12] = {user, playlist, e->create ? "true" : "false", e->name, e->comment, pub,
                              e->replace ? "true" : "false", NULL, NULL, per_user, total, tracks};

    if (bad_id(playlist, cb, data))
        return NULL;
    if (e->public_ >= 0)
        pub = e->public_ ? "true" : "false";
    params[5] = pub;
    reason = talas_playlist_edit_check(e);
    /* the store's positions are integers: an index beyond is past any end */
    for (size_t i = 0; reason == NULL && !e->replace && i < e->remove_count; i++)
        if (e->removes[i] > INT32_MAX)
            reason = talas_playlist_bad_index;
    if (reason != NULL) {
        struct talas_state_playlist_result r;
        memset(&r, 0, sizeof(r));
        r.outcome = TALAS_STATE_REFUSED;
        r.reason = reason;
        cb(data, &r);
        return NULL;
    }
    talas_state_pg_json_list(&adds, e->adds, NULL, e->add_count);
    talas_state_pg_json_list(&removes, NULL, e->removes, e->replace ? 0 : e->remove_count);
    params[7] = adds.data;
    params[8] = removes.data;
    snprintf(per_user, sizeof(per_user), "%" PRIu64, lim->max_per_user);
    snprintf(total, sizeof(total), "%" PRIu64, lim->max_total);
    snprintf(tracks, sizeof(tracks), "%" PRIu64, lim->max_tracks);
    op = start(ctx, EDIT, sql_edit, 12, params, cb, data);
    talas_buf_free(&adds);
    talas_buf_free(&removes);
    return op;
}

struct talas_state_op *talas__state_pg_delete(const struct talas_worker_ctx *ctx, const char *user,
                                              const char *playlist, talas_state_playlist_fn *cb, void *data)
{
    const char *params[2] = {user, playlist};

    if (bad_id(playlist, cb, data))
        return NULL;
    return start(ctx, DELETE, sql_delete, 2, params, cb, data);
}

struct talas_state_op *talas__state_pg_list(const struct talas_worker_ctx *ctx, const char *user,
                                            talas_state_playlist_fn *cb, void *data)
{
    const char *params[1] = {user};

    return start(ctx, LIST, sql_list, 1, params, cb, data);
}

void talas__state_pg_cancel(struct talas_state_op *op)
{
    if (op->query != NULL)
        talas_pg_cancel(op->query);
    free(op->id);
    free(op);
}
