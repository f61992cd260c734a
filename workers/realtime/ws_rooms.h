/*
 * ws_rooms.h - listening rooms on /api/ws (ws_rooms.c): the room commands
 * of a connection, its leaving when it closes, and the room state JSON
 * that the WebSocket answers and events and GET /api/rooms/{id} share.
 */
#ifndef TALAS_WS_ROOMS_H
#define TALAS_WS_ROOMS_H

#include <stdint.h>

#include "core/json.h"
#include "realtime/ws_hub.h"
#include "store/rooms.h"
#include "worker/worker_ctx.h"

/* Runs room command CMD (talas_ws_command_is_room) of connection C and
 * answers it with one CommandResponse, now or (RoomQueueAdd {artist},
 * walked on the pool) later; publishes the room's events. It may take
 * CMD's strings (CMD is then zeroed: free it anyway). */
void talas__ws_rooms_command(struct talas__ws_conn *c, struct talas_ws_command *cmd);
/* C closes: its artist walks are dropped; for each room it joined, one
 * connection of its user leaves (the member with its last one), and the
 * room hears of it. */
void talas__ws_rooms_closed(struct talas__ws_conn *c);

/*
 * Writes room R's state at NOW as a JSON object into JSON (see the
 * protocol in README.md): with "invite_url" when WITH_INVITE (minted with
 * CTX's token signer; omitted when it cannot sign). Members' behind_ms is
 * projected to NOW.
 */
void talas_ws_room_state_json(const struct talas_worker_ctx *ctx, struct talas_json *json,
                              const struct talas_room *r, uint64_t now, int with_invite);

/*
 * Writes room R's lean state at NOW into JSON, the "room" of the events:
 * id, name, mode, host, member_count, queue_length, playback, server_ms;
 * no members, queue or invite.
 */
void talas_ws_room_lean_json(struct talas_json *json, const struct talas_room *r, uint64_t now);

/* A fresh invite token for room ID (malloc'd, free()), or NULL (logged). */
char *talas_ws_room_invite(const struct talas_worker_ctx *ctx, const char *id);

/* Publishes EVENT (RoomState, RoomMemberJoined with USER, RoomMemberLeft
 * with USER, RoomQueueUpdated) about R to every connection joined to it,
 * on every worker. The event carries R's lean state and what changed: the
 * joined member ("member"), the host after a leave, the queue; RoomState
 * with USER (a member's buffering changed) carries that "member" too. */
void talas_ws_room_publish(const struct talas_worker_ctx *ctx, const char *event, const struct talas_room *r,
                           const char *user, uint64_t now);

#endif
