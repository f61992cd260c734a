/*
 * ws_transport.h - a WebSocket connection on an upgraded HTTP/1.1 socket:
 * the handshake, wslay for reading frames and for control frames, and one
 * write per flush for everything queued (ws_transport.c).
 *
 * A transport is owned by whoever upgraded (ws_conn.c); it is freed only
 * by talas_ws_transport_close.
 */
#ifndef TALAS_WS_TRANSPORT_H
#define TALAS_WS_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include <h2o.h>
#include <wslay/wslay.h>

#include "core/util.h"

struct talas_ws_transport;

/* Called with each message the client sends (ARG: wslay's, text, binary
 * and control frames alike), and once with ARG NULL when the connection is
 * over (the client closed, an error, or the close handshake finished): the
 * owner then calls talas_ws_transport_close. Never called from inside
 * talas_ws_transport_flush or the queueing functions. */
typedef void (*talas_ws_transport_msg_fn)(struct talas_ws_transport *t,
                                          const struct wslay_event_on_msg_recv_arg *arg, void *data);

/* Upgrades REQ (a WebSocket handshake with CLIENT_KEY, from
 * h2o_is_websocket_handshake) and answers it with 101. Messages over
 * MAX_MESSAGE bytes close the connection with 1009. Never fails: an error
 * writing the 101 is reported to CB with ARG NULL. */
struct talas_ws_transport *talas_ws_transport_upgrade(h2o_req_t *req, const char *client_key,
                                                      size_t max_message, talas_ws_transport_msg_fn cb,
                                                      void *data);

/* Appends to OUT the frame of a text message PAYLOAD (LEN bytes) as a
 * server sends it (unmasked, unfragmented). A message sent to many
 * connections is framed once with this and queued with
 * talas_ws_transport_queue_frame. */
void talas_ws_frame_text(struct talas_buf *out, const void *payload, size_t len);

/* Queue bytes for the client; they go out at the next flush, in the order
 * queued. talas_ws_transport_queue_text frames PAYLOAD itself;
 * talas_ws_transport_queue_frame takes a frame made by
 * talas_ws_frame_text. Both copy. */
void talas_ws_transport_queue_text(struct talas_ws_transport *t, const void *payload, size_t len);
void talas_ws_transport_queue_frame(struct talas_ws_transport *t, const void *frame, size_t len);
/* Queues a ping, or a close frame with CODE and REASON (nothing queued
 * after a close frame is sent). */
void talas_ws_transport_queue_ping(struct talas_ws_transport *t);
void talas_ws_transport_queue_close(struct talas_ws_transport *t, uint16_t code, const char *reason);

/* Bytes queued and not yet written to the socket, framing included. */
size_t talas_ws_transport_backlog(const struct talas_ws_transport *t);

/* Writes what is queued with one write (or queues it behind the write in
 * progress). Before the 101 is out, what is queued waits for it. */
void talas_ws_transport_flush(struct talas_ws_transport *t);

/* Closes the socket at once and frees T. Safe from inside T's callback. */
void talas_ws_transport_close(struct talas_ws_transport *t);

#endif
