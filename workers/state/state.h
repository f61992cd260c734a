/*
 * state.h - the shared state's setup in a worker: the cluster record
 * store (cluster.postgres) opened on the loop, with its schema check, and
 * its part of /api/health.
 *
 * In local mode (no cluster section) there is nothing to open: every
 * kind's local backend is the worker's LMDB store.
 */
#ifndef TALAS_STATE_H
#define TALAS_STATE_H

#include "core/json.h"
#include "worker/worker_ctx.h"

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
