/*
 * state.c - opening the shared state's cluster store in a worker
 * (state.h): the PostgreSQL connection and the judge of its schema; the
 * store's part of /api/health; how a cluster backend tells a finished
 * query's outcome and writes a list parameter, and a local backend tells
 * a store call's outcome.
 *
 * Entry points: talas_state_open (worker.c), talas_state_health
 * (http_api.c), talas_state_pg_outcome and talas_state_pg_json_list (the
 * state_*_pg.c backends), talas_state_local_outcome (state_stars.c,
 * state_play_queue.c).
 * Logs through cluster/pg.c: connected, lost, refused (the schema's
 * reason), once per change; here, a query the server answered with an
 * error, and a local store call that failed.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <lmdb.h>

#include "cluster/pg.h"
#include "core/log.h"
#include "state/state.h"
#include "store/pg_schema.h"
#include "store/quota.h"
#include "store/storage.h"

/* The check of each fresh connection: talas_schema's version. */
static int check_schema(const PGresult *res, char *reason, size_t size)
{
    const char *state;

    if (res == NULL) {
        snprintf(reason, size, "the schema check got no answer");
        return -1;
    }
    if (PQresultStatus(res) == PGRES_TUPLES_OK)
        return talas_pg_schema_judge(PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : NULL, reason, size);
    state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (state != NULL && strcmp(state, "42P01") == 0) /* undefined_table */
        return talas_pg_schema_judge(NULL, reason, size);
    snprintf(reason, size, "the schema check failed: %s", PQresultErrorMessage(res));
    return -1;
}

void talas_state_open(struct talas_worker_ctx *ctx, const char *password)
{
    if (ctx->conf->cluster_postgres == NULL)
        return;
    ctx->records =
        talas_pg_create(ctx->loop, ctx->conf->cluster_postgres, password, talas_pg_schema_check_sql, check_schema);
    talas_pg_count_into(ctx->records, ctx->metrics);
}

void talas_state_health(const struct talas_worker_ctx *ctx, struct talas_json *json)
{
    if (ctx->records == NULL)
        return;
    talas_json_key(json, "postgres");
    talas_json_object_begin(json);
    talas_json_key(json, "status");
    talas_json_string(json, talas_pg_ready(ctx->records) ? "ok" : "degraded");
    if (!talas_pg_ready(ctx->records)) {
        talas_json_key(json, "reason");
        talas_json_string(json, talas_pg_reason(ctx->records));
    }
    talas_json_object_end(json);
}

enum talas_state_outcome talas_state_pg_outcome(const struct pg_result *res, const char *error, const char *what,
                                                const char **reason_r)
{
    if (res == NULL) {
        *reason_r = error != NULL && strncmp(error, "refusing", 8) == 0
                        ? "the record store's schema is not the one this node serves (see its error log)"
                        : "the record store cannot be reached";
        return TALAS_STATE_UNAVAILABLE;
    }
    if (PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK) {
        log_error("records: %s failed: %s", what, PQresultErrorMessage(res));
        return TALAS_STATE_FAILED;
    }
    return TALAS_STATE_OK;
}

enum talas_state_outcome talas_state_local_outcome(int rc, const char *what, const char *refused,
                                                   const char **reason_r)
{
    if (rc == EINVAL) {
        *reason_r = refused;
        return TALAS_STATE_REFUSED;
    }
    if (rc == TALAS_QUOTA_EXCEEDED)
        return TALAS_STATE_QUOTA;
    talas_storage_log_write_error(what, rc);
    return rc == MDB_MAP_FULL ? TALAS_STATE_FULL : TALAS_STATE_FAILED;
}

void talas_state_pg_json_list(struct talas_buf *out, const char *const *ids, const uint64_t *nums, size_t n)
{
    struct talas_json json;

    talas_json_init(&json, out);
    talas_json_array_begin(&json);
    for (size_t i = 0; i < n; i++) {
        if (ids != NULL)
            talas_json_string(&json, ids[i]);
        else
            talas_json_uint(&json, nums[i]);
    }
    talas_json_array_end(&json);
    talas_buf_append(out, "", 1);
}
