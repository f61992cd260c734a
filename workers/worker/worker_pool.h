/*
 * worker_pool.h - threads that do a worker's slow work off its event loop.
 *
 * Encoding a transcode chunk takes tens of milliseconds; done on the loop it
 * would stall every other connection of the worker (PLATFORM.md measured
 * trivial requests waiting a second behind 8 transcodes). A worker hands
 * such work to its pool: WORK runs on a pool thread, then DONE runs on the
 * loop's thread, where it may touch h2o objects again. Threads are created
 * after fork, in the worker, and block every signal (the loop's thread
 * handles them).
 */
#ifndef TALAS_WORKER_POOL_H
#define TALAS_WORKER_POOL_H

#include <stddef.h>

#include <h2o.h>

struct talas_pool; /* opaque; owned by the worker that created it */

/* Runs on a pool thread: must not touch h2o objects. */
typedef void (*talas_pool_work_fn)(void *arg);
/* Runs on the loop thread once WORK has returned (also when the pool is
 * destroyed before WORK ran: then CANCELLED is 1 and WORK never ran). */
typedef void (*talas_pool_done_fn)(void *arg, int cancelled);

/* Starts THREADS threads whose completions are delivered on LOOP. Returns
 * NULL with a malloc'd message in *error_r. */
struct talas_pool *talas_pool_create(h2o_loop_t *loop, unsigned threads, char **error_r);

/* Queues WORK(ARG) then DONE(ARG) on the loop. URGENT jobs go before the
 * others (a chunk a listener waits for comes before read-ahead). */
void talas_pool_submit(struct talas_pool *pool, talas_pool_work_fn work, talas_pool_done_fn done, void *arg,
                       int urgent);

/* Jobs queued and not started yet, and jobs running now. */
size_t talas_pool_queued(struct talas_pool *pool);
size_t talas_pool_running(struct talas_pool *pool);

/* Stops the threads once the running jobs return; queued jobs get their
 * DONE with CANCELLED = 1. Call from the loop thread. */
void talas_pool_destroy(struct talas_pool *pool);

#endif
