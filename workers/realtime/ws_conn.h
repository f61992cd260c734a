/*
 * ws_conn.h - GET /api/ws (ws_conn.c).
 */
#ifndef TALAS_WS_CONN_H
#define TALAS_WS_CONN_H

#include <h2o.h>

#include "worker/worker_ctx.h"

/* Answers REQ: upgrades it to a realtime connection, or a JSON error
 * (405, 426 without a WebSocket handshake, 401, 429 quota_exceeded past
 * ws.max_connections_per_user or ws.max_connections_per_address, 503 when
 * the worker is full). */
int talas_ws_serve(const struct talas_worker_ctx *ctx, h2o_req_t *req);

#endif
