/*
 * ws_limits.h - what one user, or one client address, may do on the
 * realtime channel: how many WebSocket connections it holds on the node
 * (ws.max_connections_per_user, ws.max_connections_per_address) and how
 * many commands it sends per window across all of them
 * (ws.user_rate_limit per ws.rate_limit_window), beside the limits of each
 * connection (ws.rate_limit) and of the worker (ws.max_connections).
 *
 * Whose: with ws.auth_required, the user the token names (its sub); else
 * the client's address, since a ?user_id= is then only a claim that costs
 * nothing to change. Connections are counted for the whole node, through
 * the census of the node's shared segment (core/census.h): the limit holds
 * whichever workers the connections land on (two workers deciding the same
 * identity's upgrade at the same instant may exceed it by one each). The
 * command budget is this worker's: with N workers a user may send up to N
 * times ws.user_rate_limit.
 *
 * The table is the worker's own (one per process, on its loop; nothing here
 * is thread-safe); an identity lives while it has connections or its
 * current window runs, so closing every connection and opening new ones
 * does not reset the command budget.
 */
#ifndef TALAS_WS_LIMITS_H
#define TALAS_WS_LIMITS_H

#include <stddef.h>
#include <stdint.h>

#include "core/census.h"
#include "core/config.h"
#include "core/metrics.h"
#include "store/quota.h"

struct talas_ws_identity; /* opaque; owned by this module */

/* Starts an empty table with CONF's limits (CONF is kept: it must outlive
 * the table). Forgets any previous table (tests), and the census. */
void talas_ws_limits_init(const struct talas_config *conf);

/* From now on, connections count in the census of NODE, this worker's in
 * its table MINE (both must outlive the table). */
void talas_ws_limits_share(const struct talas_metrics_header *node, struct talas_census_table *mine);

/*
 * Counts a new connection of USER (authenticated, non-NULL) or, when USER
 * is NULL, of the client address ADDRESS (text form). Returns its
 * identity, to hand to talas_ws_limits_close when the connection ends;
 * or NULL when the identity already holds ws.max_connections_per_user (or
 * _per_address) connections (on the node once shared), with that key and its value
 * in *R (the node's count, once shared). Refusals are logged, at most every 10 seconds with a count.
 */
struct talas_ws_identity *talas_ws_limits_open(const char *user, const char *address,
                                               struct talas_quota_refusal *r);

/* A connection of ID ended. */
void talas_ws_limits_close(struct talas_ws_identity *id);

/* Where an identity stands in its window of ws.rate_limit_window. */
struct talas_ws_budget {
    uint32_t limit;           /* ws.user_rate_limit */
    uint32_t remaining;       /* commands left in the window */
    uint64_t reset_ms;        /* until the window ends */
    uint64_t window_start_ms; /* monotonic: tells one window from the next */
};

/*
 * Counts one command of ID at NOW_MS (monotonic) against ws.user_rate_limit
 * per ws.rate_limit_window. Returns 0 when it may run, -1 when the
 * identity's budget for this window is spent (nothing counted); *B_R (may
 * be NULL) says where the budget stands. Always 0 when the limit is 0.
 */
int talas_ws_limits_command(struct talas_ws_identity *id, uint64_t now_ms, struct talas_ws_budget *b_r);

/* 1 when ID is a user, 0 when it is a client address. */
int talas_ws_identity_is_user(const struct talas_ws_identity *id);

/* Forgets the identities that hold no connection and whose window has
 * ended at NOW_MS; the hub calls it every second. */
void talas_ws_limits_sweep(uint64_t now_ms);

/* The identities in the table (tests, debugging). */
size_t talas_ws_limits_count(void);

#endif
