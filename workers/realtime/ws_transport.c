/*
 * ws_transport.c - a WebSocket connection on an upgraded HTTP/1.1 socket
 * (ws_transport.h).
 *
 * Entry points: talas_ws_transport_upgrade, the talas_ws_transport_queue_*
 * functions, talas_ws_transport_flush, talas_ws_transport_close,
 * talas_ws_frame_text.
 *
 * Why not h2o's websocket.c: its wslay send callback writes every piece
 * wslay hands it with a write of its own, and refuses the next piece until
 * that write completes, a turn of the loop later. wslay hands over a
 * frame's header and its payload separately, so every message cost two
 * writes, two TCP segments and two turns of the loop: a broadcast to
 * thousands of connections wrote every 2-byte header first and every
 * payload only on the next turn. Here the send callback only appends to
 * the connection's output buffer, messages are appended to it already
 * framed, and a flush hands the whole buffer to the socket in one write.
 * wslay still parses what the client sends and answers pings and closes.
 *
 * Owner callbacks (messages, the end of the connection) run only from the
 * socket's read and write callbacks, never from a flush or a queueing
 * call, so a fan-out over many connections never re-enters its caller.
 *
 * Logs nothing: the owner decides what is worth a line.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/sha.h>

#include "core/log.h"
#include "realtime/ws_transport.h"

#include <h2o/http1.h> /* after h2o.h, which it needs */

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

struct talas_ws_transport {
    h2o_socket_t *sock; /* NULL until the 101 is written */
    wslay_event_context_ptr ctx;
    struct talas_buf out;      /* queued, not yet handed to the socket */
    struct talas_buf inflight; /* the bytes of the write in progress */
    talas_ws_transport_msg_fn cb;
    void *data;
    unsigned in_recv : 1;    /* inside wslay_event_recv: the owner's callback may run */
    unsigned wslay_busy : 1; /* wslay may have frames to send: it is not asked otherwise */
    unsigned close_sent : 1; /* wslay sent the close frame: nothing may follow it */
    unsigned closed : 1;     /* talas_ws_transport_close came while it could not free */
    unsigned over : 1;       /* the owner was told the connection is over */
};

static void on_read(h2o_socket_t *sock, const char *err);

void talas_ws_frame_text(struct talas_buf *out, const void *payload, size_t len)
{
    unsigned char h[10];
    size_t n = 0;

    h[n++] = 0x81; /* FIN, text */
    if (len < 126) {
        h[n++] = (unsigned char)len;
    } else if (len <= 0xffff) {
        h[n++] = 126;
        h[n++] = (unsigned char)(len >> 8);
        h[n++] = (unsigned char)len;
    } else {
        h[n++] = 127;
        for (int shift = 56; shift >= 0; shift -= 8)
            h[n++] = (unsigned char)((uint64_t)len >> shift);
    }
    talas_buf_reserve(out, n + len);
    talas_buf_append(out, h, n);
    talas_buf_append(out, payload, len);
}

static void destroy(struct talas_ws_transport *t)
{
    if (t->sock != NULL)
        h2o_socket_close(t->sock);
    wslay_event_context_free(t->ctx);
    talas_buf_free(&t->out);
    talas_buf_free(&t->inflight);
    free(t);
}

/* Tells the owner the connection is over; T may be gone on return. */
static void finish(struct talas_ws_transport *t)
{
    if (t->over)
        return;
    t->over = 1;
    t->cb(t, NULL, t->data);
}

/* ------------------------------------------------------------ wslay */

static ssize_t recv_callback(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
    struct talas_ws_transport *t = user;

    if (t->closed || t->sock->input->size == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (len > t->sock->input->size)
        len = t->sock->input->size;
    memcpy(buf, t->sock->input->bytes, len);
    h2o_buffer_consume(&t->sock->input, len);
    return (ssize_t)len;
}

static ssize_t send_callback(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                             void *user)
{
    struct talas_ws_transport *t = user;

    talas_buf_append(&t->out, data, len);
    return (ssize_t)len;
}

static void msg_callback(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                         void *user)
{
    struct talas_ws_transport *t = user;

    if (!t->closed && !t->over)
        t->cb(t, arg, t->data);
}

static const struct wslay_event_callbacks callbacks = {
    .recv_callback = recv_callback,
    .send_callback = send_callback,
    .on_msg_recv_callback = msg_callback,
};

/* Moves what wslay has queued (control frames, and messages queued
 * through it) to the output buffer, so that what is appended next comes
 * after it. */
static void drain_wslay(struct talas_ws_transport *t)
{
    /* a fan-out queues to thousands of connections: it leaves their wslay
     * contexts alone (and out of the cache) unless they have work */
    if (!t->wslay_busy)
        return;
    if (wslay_event_want_write(t->ctx))
        (void)wslay_event_send(t->ctx); /* the send callback cannot fail */
    t->close_sent = wslay_event_get_close_sent(t->ctx) != 0;
    t->wslay_busy = wslay_event_want_write(t->ctx) != 0;
}

/* ----------------------------------------------------------- socket */

/* Reads on while wslay wants to; once it does not (the close handshake),
 * the connection is over when the last bytes are out, and the owner is
 * told: T may be gone on return. */
static void settle(struct talas_ws_transport *t)
{
    if (wslay_event_want_read(t->ctx)) {
        if (!h2o_socket_is_reading(t->sock))
            h2o_socket_read_start(t->sock, on_read);
        return;
    }
    if (h2o_socket_is_reading(t->sock))
        h2o_socket_read_stop(t->sock);
    if (!h2o_socket_is_writing(t->sock) && t->out.len == 0 && !wslay_event_want_write(t->ctx))
        finish(t);
}

static void on_write(h2o_socket_t *sock, const char *err)
{
    struct talas_ws_transport *t = sock->data;

    /* freed rather than kept: an idle connection holds no buffer */
    talas_buf_free(&t->inflight);
    if (err != NULL) {
        finish(t);
        return;
    }
    talas_ws_transport_flush(t);
    settle(t);
}

static void on_read(h2o_socket_t *sock, const char *err)
{
    struct talas_ws_transport *t = sock->data;
    int rc;

    if (err != NULL) {
        finish(t);
        return;
    }
    t->in_recv = 1;
    rc = wslay_event_recv(t->ctx);
    t->in_recv = 0;
    t->wslay_busy = 1; /* pongs, a close reply */
    if (t->closed) {
        destroy(t);
        return;
    }
    if (rc != 0) {
        finish(t);
        return;
    }
    /* answers queued by the owner and by wslay (pong, close) */
    talas_ws_transport_flush(t);
    settle(t);
}

static void on_upgraded(void *user, h2o_socket_t *sock, size_t reqsize)
{
    struct talas_ws_transport *t = user;

    if (t->closed) {
        if (sock != NULL)
            h2o_socket_close(sock);
        destroy(t);
        return;
    }
    if (sock == NULL) {
        finish(t);
        return;
    }
    t->sock = sock;
    sock->data = t;
    h2o_buffer_consume(&sock->input, reqsize);
    if (sock->input->size != 0) {
        /* frames that came in with the request */
        on_read(sock, NULL);
        return;
    }
    talas_ws_transport_flush(t);
    settle(t);
}

struct talas_ws_transport *talas_ws_transport_upgrade(h2o_req_t *req, const char *client_key,
                                                      size_t max_message, talas_ws_transport_msg_fn cb,
                                                      void *data)
{
    struct talas_ws_transport *t = xcalloc(1, sizeof(*t));
    unsigned char src[24 + sizeof(WS_GUID) - 1], sha[SHA_DIGEST_LENGTH];
    char *accept = h2o_mem_alloc_pool(&req->pool, 32);

    t->cb = cb;
    t->data = data;
    if (wslay_event_context_server_init(&t->ctx, &callbacks, t) != 0)
        fatal("%s: wslay_event_context_server_init() failed: out of memory", __func__);
    wslay_event_config_set_max_recv_msg_length(t->ctx, max_message);

    /* h2o_is_websocket_handshake checked that the key is 24 bytes */
    memcpy(src, client_key, 24);
    memcpy(src + 24, WS_GUID, sizeof(WS_GUID) - 1);
    SHA1(src, sizeof(src), sha);
    h2o_base64_encode(accept, sha, sizeof(sha), 0);

    req->res.status = 101;
    req->res.reason = "Switching Protocols";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_UPGRADE, NULL, H2O_STRLIT("websocket"));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("sec-websocket-accept"), 0, NULL, accept,
                          strlen(accept));
    h2o_http1_upgrade(req, NULL, 0, on_upgraded, t);
    return t;
}

/* --------------------------------------------------------- queueing */

void talas_ws_transport_queue_text(struct talas_ws_transport *t, const void *payload, size_t len)
{
    drain_wslay(t);
    if (t->close_sent)
        return;
    talas_ws_frame_text(&t->out, payload, len);
}

void talas_ws_transport_queue_frame(struct talas_ws_transport *t, const void *frame, size_t len)
{
    drain_wslay(t);
    if (t->close_sent)
        return;
    talas_buf_append(&t->out, frame, len);
}

void talas_ws_transport_queue_ping(struct talas_ws_transport *t)
{
    struct wslay_event_msg ping = {WSLAY_PING, (const uint8_t *)"", 0};

    (void)wslay_event_queue_msg(t->ctx, &ping);
    t->wslay_busy = 1;
}

void talas_ws_transport_queue_close(struct talas_ws_transport *t, uint16_t code, const char *reason)
{
    (void)wslay_event_queue_close(t->ctx, code, (const uint8_t *)reason, strlen(reason));
    t->wslay_busy = 1;
}

size_t talas_ws_transport_backlog(const struct talas_ws_transport *t)
{
    return t->out.len + t->inflight.len + (t->wslay_busy ? wslay_event_get_queued_msg_length(t->ctx) : 0);
}

void talas_ws_transport_flush(struct talas_ws_transport *t)
{
    struct talas_buf swap;
    h2o_iovec_t iov;

    if (t->closed || t->over)
        return;
    drain_wslay(t);
    if (t->sock == NULL || h2o_socket_is_writing(t->sock) || t->out.len == 0)
        return;
    if (t->sock->ssl == NULL) {
        /* Most flushes fit the socket buffer: written here, they need
         * neither h2o's write request nor its completion callback a turn
         * of the loop later. h2o writes what is left, and reports errors. */
        ssize_t n;
        while ((n = send(h2o_socket_get_fd(t->sock), t->out.data, t->out.len, MSG_DONTWAIT | MSG_NOSIGNAL)) ==
                   -1 &&
               errno == EINTR)
            ;
        if (n == (ssize_t)t->out.len) {
            /* freed rather than kept: an idle connection holds no buffer */
            talas_buf_free(&t->out);
            return;
        }
        if (n > 0) {
            memmove(t->out.data, t->out.data + n, t->out.len - (size_t)n);
            t->out.len -= (size_t)n;
        }
    }
    swap = t->inflight;
    t->inflight = t->out;
    t->out = swap;
    t->out.len = 0;
    iov = h2o_iovec_init(t->inflight.data, t->inflight.len);
    h2o_socket_write(t->sock, &iov, 1, on_write);
}

void talas_ws_transport_close(struct talas_ws_transport *t)
{
    /* inside wslay_event_recv, or waiting for the 101: freed when that
     * returns */
    if (t->in_recv || (t->sock == NULL && !t->over)) {
        t->closed = 1;
        return;
    }
    destroy(t);
}
