/*
 * pg.h - one PostgreSQL connection per worker, driven by libpq's
 * asynchronous API on the worker's h2o loop (cluster.postgres).
 *
 * Nothing here blocks the loop: the connection is made with
 * PQconnectStartParams/PQconnectPoll on socket readiness, queries are sent
 * with PQsendQueryParams and read with PQconsumeInput/PQisBusy/
 * PQgetResult, one at a time, the others waiting in a queue. Each query
 * has a deadline (TALAS_PG_QUERY_TIMEOUT_MS from when it was asked); a
 * query that outlives it completes as unavailable and the connection is
 * dropped (its transaction rolls back on the server) and made again.
 *
 * After each connect, the CHECK query given to talas_pg_create runs
 * before anything else, and its judge decides whether the node may use
 * the database (the schema version, store/pg_schema.h); until a judge
 * accepts, and whenever the server cannot be reached, queries complete at
 * once as unavailable, with the reason. The connection is made again with
 * a backoff (0.25 s doubling to 4 s).
 *
 * Ownership: the worker creates one struct talas_pg after its loop and
 * keeps it for its life (worker_ctx.h, records). A query belongs to this
 * module; its caller gets a handle to cancel it, after which its callback
 * is never called. Logs: each change of state (connected, lost, refused),
 * once per change, with libpq's reason.
 */
#ifndef TALAS_PG_H
#define TALAS_PG_H

#include <stddef.h>
#include <stdint.h>

#include <h2o.h>
#include <libpq-fe.h>

#include "core/metrics.h"

/* How long a query may wait and run, in milliseconds. */
#define TALAS_PG_QUERY_TIMEOUT_MS 5000
/* How long a connection attempt may take. */
#define TALAS_PG_CONNECT_TIMEOUT_MS 5000

struct talas_pg;
struct talas_pg_query;

/*
 * A query's completion. RES is its last result (PGRES_TUPLES_OK,
 * PGRES_COMMAND_OK or PGRES_FATAL_ERROR: check it), or NULL when the
 * query never ran or its answer was lost: ERROR then says why ("the
 * record store cannot be reached: ..."). RES is freed after the call.
 */
typedef void talas_pg_result_fn(void *data, const PGresult *res, const char *error);

/*
 * Judges the result of the check query of a fresh connection: 0 to
 * serve, or -1 with a reason (at most SIZE bytes into REASON) to refuse.
 * RES may be an error result (a missing table).
 */
typedef int talas_pg_check_fn(const PGresult *res, char *reason, size_t size);

/*
 * Starts connecting to CONNINFO (a libpq connection string; PASSWORD,
 * which may be NULL, overrides its password) on LOOP. CHECK_SQL and CHECK
 * judge each fresh connection. Never fails: an unreachable server is a
 * state (talas_pg_state) that the module leaves by itself.
 */
struct talas_pg *talas_pg_create(h2o_loop_t *loop, const char *conninfo, const char *password,
                                 const char *check_sql, talas_pg_check_fn *check);

/*
 * Queues SQL with its N text PARAMS (copied; NULL is SQL NULL). Returns
 * the query's handle, its callback CB(DATA, ...) called later on the
 * loop; or NULL after calling CB at once, as unavailable, when the
 * server cannot be reached now or refused (the check).
 */
struct talas_pg_query *talas_pg_query(struct talas_pg *pg, const char *sql, int n, const char *const *params,
                                      talas_pg_result_fn *cb, void *data);

/* Forgets Q's caller: its callback will not be called. Q itself may still
 * run on the server (a change then happens or not: callers that cancel a
 * change say so). */
void talas_pg_cancel(struct talas_pg_query *q);

/* Counts PG into SLOT from now on (the worker's metrics slot, which
 * outlives PG): talas_postgres_* (queries asked, failed, round trips,
 * reconnection attempts, whether the connection is ready). Once. */
void talas_pg_count_into(struct talas_pg *pg, struct talas_metrics_slot *slot);

/* Whether queries may run now ("ok"), or not yet / not at all
 * ("degraded"), with the reason in the latter case (static or owned by
 * PG, valid until the next loop pass). */
int talas_pg_ready(const struct talas_pg *pg);
const char *talas_pg_reason(const struct talas_pg *pg);

/* Closes PG's connection and frees it with every query it holds, calling
 * no callback (a worker's exit; the tests). NULL is accepted. */
void talas_pg_destroy(struct talas_pg *pg);

#endif
