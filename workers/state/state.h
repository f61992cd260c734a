/*
 * state.h - the shared state's setup in a worker: the cluster record
 * store (cluster.postgres) opened on the loop, with its schema check, and
 * its part of /api/health; the outcomes every kind's operations answer,
 * and how its cluster and local backends tell a finished call's; the
 * JSON list parameter of the cluster backends' queries.
 *
 * In local mode (no cluster section) there is nothing to open: every
 * kind's local backend is the worker's LMDB store.
 */
#ifndef TALAS_STATE_H
#define TALAS_STATE_H

#include "core/json.h"
#include "worker/worker_ctx.h"

struct pg_result; /* libpq's PGresult */

enum talas_state_outcome {
    TALAS_STATE_OK = 0,
    TALAS_STATE_REFUSED,     /* the request or the playlist's state: reason */
    TALAS_STATE_FORBIDDEN,   /* the user may not: reason begins "forbidden: " */
    TALAS_STATE_NOT_FOUND,   /* no such playlist: reason */
    TALAS_STATE_QUOTA,       /* refusal names the limit */
    TALAS_STATE_FULL,        /* the local map is full (logged) */
    TALAS_STATE_FAILED,      /* the store failed (logged) */
    TALAS_STATE_UNAVAILABLE, /* the cluster store cannot be reached, or serves another schema: reason */
};

/*
 * For a cluster backend (PostgreSQL): the outcome of a query that ended
 * with RES, or with no result (RES NULL; ERROR says why, pg.c logged it
 * once). TALAS_STATE_OK when RES holds rows to read; TALAS_STATE_FAILED
 * when the server answered an error, logged as "records: WHAT failed:
 * ..."; TALAS_STATE_UNAVAILABLE with *REASON_R set to what the client is
 * told (the store cannot be reached, or serves another schema).
 */
enum talas_state_outcome talas_state_pg_outcome(const struct pg_result *res, const char *error, const char *what,
                                                const char **reason_r);

/* For a cluster backend: a query parameter that is a JSON array of N
 * strings (IDS) or, when IDS is NULL, numbers (NUMS), NUL-terminated in
 * OUT (the caller frees it). */
void talas_state_pg_json_list(struct talas_buf *out, const char *const *ids, const uint64_t *nums, size_t n);

/*
 * For a local backend (LMDB): the outcome of a store call that returned
 * RC, not 0. TALAS_STATE_REFUSED for EINVAL, with *REASON_R set to
 * REFUSED; TALAS_STATE_QUOTA for TALAS_QUOTA_EXCEEDED (the caller copies
 * the refusal); else TALAS_STATE_FULL (MDB_MAP_FULL) or TALAS_STATE_FAILED,
 * logged as a write error of WHAT.
 */
enum talas_state_outcome talas_state_local_outcome(int rc, const char *what, const char *refused,
                                                   const char **reason_r);

/*
 * With cluster.postgres, starts the worker's connection (cluster/pg.h) on
 * CTX's loop and sets ctx->records; PASSWORD (may be NULL) is the content
 * of cluster.postgres_password_file, read before privileges were dropped.
 * A node whose database lacks this build's schema version refuses the
 * records (the kinds answer unavailable, and the reason is logged once)
 * and serves everything else. Never fails.
 */
void talas_state_open(struct talas_worker_ctx *ctx, const char *password);

/* With a record store, writes the "postgres" member of /api/health into
 * JSON (an object being written): {"status": "ok"|"degraded", "reason"}. */
void talas_state_health(const struct talas_worker_ctx *ctx, struct talas_json *json);

#endif
