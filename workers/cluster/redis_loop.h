/*
 * redis_loop.h - one Redis connection of a worker, driven by its h2o event
 * loop through hiredis 0.14's asynchronous API, and kept alive: what
 * hiredis 0.14 does not do (no connect or command timeouts, no automatic
 * reconnection) is done here.
 *
 * A connection connects without blocking (redisAsyncConnect and
 * redisAsyncConnectUnix return at once), sends AUTH with the password
 * when one is given, and is "ready" once Redis answered: a plain
 * connection when it answered its first PING (or AUTH), a subscriber
 * (talas_redis_conn_subscriber) once its SUBSCRIBE is confirmed. A
 * connect that takes longer than REDIS_CONNECT_TIMEOUT_MS, a connection
 * that leaves a ping unanswered for REDIS_PING_TIMEOUT_MS, a refused AUTH
 * or a dropped socket end the connection; a new one is tried after a delay
 * that doubles from 100 ms to 2 s (a Redis back from an outage is in use
 * again within about 2 s), reset by each success. Pings go every second
 * when the connection is idle (a subscriber's is a repeated
 * SUBSCRIBE of its channel: in RESP2 a subscribed connection answers
 * PING with an array that hiredis 0.14 hands to no callback).
 *
 * Ownership: the caller owns the struct talas_redis_conn and frees it with
 * talas_redis_conn_free; the redisAsyncContext inside belongs to hiredis
 * and is never shown. Every callback runs on the loop. Nothing blocks the
 * loop. Logs: connections made and lost, once per change of state.
 */
#ifndef TALAS_REDIS_LOOP_H
#define TALAS_REDIS_LOOP_H

#include <stddef.h>
#include <stdint.h>

#include <h2o.h>
#include <hiredis/hiredis.h>

#include "core/metrics.h"

#define REDIS_CONNECT_TIMEOUT_MS 2000
#define REDIS_PING_INTERVAL_MS 1000
#define REDIS_PING_TIMEOUT_MS 3000
#define REDIS_BACKOFF_MIN_MS 100
#define REDIS_BACKOFF_MAX_MS 2000

struct talas_redis_conn;

/* What failed or was missed, since the connection object was made. */
struct talas_redis_counters {
    uint64_t connects;         /* connections that became ready */
    uint64_t connect_failures; /* attempts that failed (refused, timed out, AUTH refused) */
    uint64_t disconnects;      /* ready connections lost */
    uint64_t ping_timeouts;    /* connections dropped for an unanswered ping */
    uint64_t commands_refused; /* commands asked while not ready: not sent */
    uint64_t error_replies;    /* commands answered with an error */
};

/* Called once the connection is ready (again), and when it is lost (WHY:
 * the reason, also in talas_redis_conn_state). */
typedef void (*talas_redis_ready_fn)(struct talas_redis_conn *conn, void *data);
typedef void (*talas_redis_down_fn)(struct talas_redis_conn *conn, const char *why, void *data);
/* A reply to one command: REPLY is NULL when the connection went away
 * before the answer (the command may or may not have run). */
typedef void (*talas_redis_reply_fn)(struct talas_redis_conn *conn, redisReply *reply, void *data);
/* A message published on the subscriber's channel. */
typedef void (*talas_redis_message_fn)(struct talas_redis_conn *conn, const char *msg, size_t len,
                                       void *data);

/*
 * A connection to ADDRESS ("unix:/path" or "HOST:PORT", as cluster.redis),
 * with AUTH PASSWORD when not NULL (copied), named NAME in the log; it
 * starts connecting at once. READY and DOWN may be NULL.
 */
struct talas_redis_conn *talas_redis_conn_new(h2o_loop_t *loop, const char *address, const char *password,
                                              const char *name, talas_redis_ready_fn ready,
                                              talas_redis_down_fn down, void *data);
/* Makes CONN a subscriber of CHANNEL: SUBSCRIBE on each connection, and
 * ON_MESSAGE for every message. Call it right after _new. */
void talas_redis_conn_subscriber(struct talas_redis_conn *conn, const char *channel,
                                 talas_redis_message_fn on_message);
/* Counts CONN into SLOT from now on (the worker's metrics slot, which
 * outlives CONN): talas_redis_*. Once; NULL counts nothing. */
void talas_redis_conn_count_into(struct talas_redis_conn *conn, struct talas_metrics_slot *slot);
/* Closes and frees CONN (the callbacks of commands in flight get a NULL
 * reply; READY and DOWN are not called). */
void talas_redis_conn_free(struct talas_redis_conn *conn);

/*
 * Sends a command of ARGC arguments (lengths in ARGVLEN). Returns 0 when
 * it was queued (FN, if not NULL, will be called exactly once), -1 when
 * the connection is not ready (counted; FN is not called).
 */
int talas_redis_conn_command(struct talas_redis_conn *conn, talas_redis_reply_fn fn, void *data, int argc,
                             const char **argv, const size_t *argvlen);

/* 1 when ready; else 0 with *why_r (may be NULL) saying why: "connecting",
 * or the last failure. The string lives as long as CONN's state. */
int talas_redis_conn_state(const struct talas_redis_conn *conn, const char **why_r);
const struct talas_redis_counters *talas_redis_conn_counters(const struct talas_redis_conn *conn);

#endif
