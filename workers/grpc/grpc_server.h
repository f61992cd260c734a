/*
 * grpc_server.h - GetStreamURL over gRPC (talas.v1.StreamService), served by
 * libnghttp2 on the worker's own h2o event loop.
 *
 * h2o 2.2.5 cannot send response trailers, so gRPC does not go through h2o's
 * HTTP/2: each grpc.listen socket gets its own tiny HTTP/2 server, one
 * nghttp2 session per connection fed from h2o sockets (PLATFORM.md). The
 * gRPC C core is not used: it starts threads and does not mix with fork.
 *
 * Everything here lives in the worker process that called
 * talas_grpc_server_start() (after fork), and is owned by this module.
 */
#ifndef TALAS_GRPC_SERVER_H
#define TALAS_GRPC_SERVER_H

#include <stddef.h>

#include <h2o.h>

#include "core/config.h"
#include "worker/worker_ctx.h"

/* The largest request message accepted, in bytes (larger: RESOURCE_EXHAUSTED). */
#define TALAS_GRPC_MAX_MESSAGE (64 * 1024)

/*
 * Starts accepting on FDS, the worker's listening sockets for
 * conf->grpc_listen (conf->grpc_listen_count of them, in that order), on
 * CTX's loop; calls use CTX's storage and token signer. Builds the TLS
 * contexts of entries with a tls section (ALPN "h2"). CTX is kept and
 * must outlive the server. Returns 0, or -1 with a malloc'd message
 * naming the address in *error_r (nothing is left open then).
 */
int talas_grpc_server_start(const struct talas_worker_ctx *ctx, const int *fds, char **error_r);

/* Graceful stop: closes the listening sockets and sends GOAWAY on every
 * connection; calls already received are answered, then each connection
 * closes. Safe to call more than once, and when nothing was started. */
void talas_grpc_server_stop(void);

/* The number of gRPC connections still open (the worker waits for 0). */
size_t talas_grpc_server_connections(void);

#endif
