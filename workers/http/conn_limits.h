/*
 * conn_limits.h - what one worker allows a client connection: how many
 * connections in all and per client address, and how fast one HTTP/2
 * connection may open and cancel requests.
 *
 * h2o 2.2.5 bounds none of these by itself. The worker asks here at
 * accept (talas_conn_open) and when the socket closes (talas_conn_close);
 * the first handler of every request asks talas_conn_count_request. The
 * counts are this worker's: with N workers a client may hold up to N times
 * http.max_connections_per_ip connections.
 */
#ifndef TALAS_CONN_LIMITS_H
#define TALAS_CONN_LIMITS_H

#include <h2o.h>

#include "core/config.h"
#include "worker/worker_ctx.h"

struct talas_conn; /* opaque; owned by this module from open to close */

/* Sizes the tables after CTX's configuration, which it keeps (and raises
 * RLIMIT_NOFILE's soft limit to the hard one when http.max_connections
 * needs it; logs when even that is too low). Call once in the worker,
 * before accepting. */
void talas_conn_limits_init(const struct talas_worker_ctx *ctx);

/*
 * Admits the connection SOCK, just accepted. Returns its state, to be put
 * in SOCK's on_close.data and handed back to talas_conn_close, or NULL when
 * the worker or the client's address is at its limit: the caller then
 * closes SOCK at once (the client sees the connection closed before any
 * response). Refusals are logged at most every 10 seconds, with a count.
 */
struct talas_conn *talas_conn_open(h2o_socket_t *sock);

/* Forgets CONN (from SOCK's on_close callback, after h2o closed it). */
void talas_conn_close(struct talas_conn *conn);

/*
 * Counts REQ against its connection's limits. Returns 0 when it may go on,
 * or -1 when its HTTP/2 connection opened more than
 * http2.max_streams_per_second streams, or cancelled more than
 * http2.max_resets_per_second, in the current second: the connection is
 * then shut down (logged once per connection) and the caller answers REQ
 * with an error nobody will read. HTTP/1.1 requests are always allowed.
 */
int talas_conn_count_request(h2o_req_t *req);

/* A slot of the connection behind SOCK that http_stream.c uses to park the
 * one response waiting for SOCK to become writable (NULL when none). */
void talas_conn_set_parked(h2o_socket_t *sock, void *p);
void *talas_conn_parked(h2o_socket_t *sock);

#endif
