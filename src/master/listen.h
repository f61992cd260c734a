/*
 * listen.h - the listening sockets, opened by the master.
 *
 * Each listen: entry gets one SO_REUSEPORT socket per worker slot, so the
 * kernel spreads connections evenly over the workers (a single shared
 * socket gives a thundering herd and an uneven split on epoll). The master
 * keeps every socket open for its lifetime: connections queued on the
 * socket of a worker that died wait for its successor instead of being
 * reset. A reload reuses the sockets of addresses that stay.
 */
#ifndef TALAS_LISTEN_H
#define TALAS_LISTEN_H

#include "core/config.h"

struct talas_listen_set; /* opaque, owned by the master */

struct talas_listen_set *talas_listen_set_new(void);

/* The addresses of CONF: its listen entries (HTTP), then its grpc.listen
 * entries (gRPC), in that order everywhere below. */
size_t talas_listen_count(const struct talas_config *conf);

/* Opens whatever CONF needs that is not open yet (conf->workers sockets for
 * each address). Returns 0, or -1 with a malloc'd message naming the
 * address and the failing call; sockets opened by a failed call are closed. */
int talas_listen_set_prepare(struct talas_listen_set *set, const struct talas_config *conf, char **error_r);

/* Stores in FDS (talas_listen_count(conf) entries) the sockets of worker
 * SLOT: HTTP ones first, then gRPC ones. */
void talas_listen_set_fds(struct talas_listen_set *set, const struct talas_config *conf, int slot, int *fds);

/* Closes the sockets CONF does not use (after a reload), or all with NULL. */
void talas_listen_set_prune(struct talas_listen_set *set, const struct talas_config *conf);

/* In a child: closes every socket of SET except the COUNT in KEEP. A worker
 * must hold only its own sockets: one it kept from another slot would
 * still take connections after that slot's worker stopped accepting. */
void talas_listen_set_close_others(struct talas_listen_set *set, const int *keep, size_t count);

/* Closes every socket and frees SET. */
void talas_listen_set_free(struct talas_listen_set *set);

#endif
