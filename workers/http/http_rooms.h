/*
 * http_rooms.h - POST /api/rooms and GET /api/rooms/{id}: listening rooms
 * over REST (http_rooms.c).
 */
#ifndef TALAS_HTTP_ROOMS_H
#define TALAS_HTTP_ROOMS_H

#include <stddef.h>

#include <h2o.h>

#include "worker/worker_ctx.h"

/* /api/rooms: POST creates a room (201), other methods 405. */
int talas_rooms_api(const struct talas_worker_ctx *ctx, h2o_req_t *req);
/* /api/rooms/{id}: GET, for a member or the holder of its invite. */
int talas_rooms_api_one(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *id, size_t len);

/* The room invite REQ holds (?invite=, else an X-Room-Invite header), in
 * the request; {NULL, 0} when none. Not verified. */
h2o_iovec_t talas_rooms_invite_of(h2o_req_t *req);

#endif
