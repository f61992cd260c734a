/*
 * transcode_limit.h - how many responses may encode at once, in one worker
 * (transcode.max_concurrent_per_worker) and in the whole server
 * (transcode.max_concurrent).
 *
 * A response that will have to encode (a transcode, preview or HLS segment
 * some of whose chunks are not in the cache) takes a slot for its lifetime;
 * one served from the cache takes none, so cached audio is served whatever
 * the load. Past either limit the request gets 503 with Retry-After and a
 * JSON body, and nothing is encoded for it.
 *
 * The global count lives in the LMDB environment: one META record per
 * worker, "transcodes.active.PID", holding its count and the process's start
 * time (a reused pid is not mistaken for the worker). Taking a slot is one
 * short write transaction that sums the records of live workers, checks the
 * limit and writes this worker's new count, so two workers never both take
 * the last slot. A killed worker's record is ignored and then deleted.
 */
#ifndef TALAS_TRANSCODE_LIMIT_H
#define TALAS_TRANSCODE_LIMIT_H

#include <h2o.h>

#include "core/config.h"
#include "store/storage.h"
#include "worker/worker_ctx.h"

/* The seconds a refused client is told to wait (Retry-After). */
#define TALAS_TRANSCODE_RETRY_AFTER 5

/* Starts counting for this worker (in CTX's storage, with CTX's
 * configuration; both are kept); clears a record a previous process with
 * this pid could have left. */
void talas_transcode_limit_init(const struct talas_worker_ctx *ctx);

/*
 * Takes a slot for REQ, given back when REQ is disposed of. Returns 0, or
 * -1 after answering REQ with 503 (Retry-After, JSON error
 * "transcode_busy") when the worker's or the server's limit is reached.
 * When the storage cannot be written, only the worker's limit applies.
 */
int talas_transcode_slot_take(h2o_req_t *req);

/* Slots this worker holds now. */
size_t talas_transcode_slots(void);

/* Deletes this worker's record (when it stops). */
void talas_transcode_limit_stop(void);

#endif
