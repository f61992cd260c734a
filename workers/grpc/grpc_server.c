/*
 * grpc_server.c - talas.v1.StreamService/GetStreamURL over HTTP/2.
 *
 * Entry points: talas_grpc_server_start (the worker, after setting up its
 * HTTP listeners), talas_grpc_server_stop (graceful stop) and
 * talas_grpc_server_connections (how many connections are left).
 *
 * A connection is an h2o socket (cleartext, or TLS through
 * h2o_socket_ssl_handshake with ALPN "h2") and one server nghttp2 session:
 * bytes read go to nghttp2_session_mem_recv, bytes nghttp2 wants to send are
 * gathered from nghttp2_session_mem_send into one buffer and written with
 * h2o_socket_write, one write at a time. Reading pauses while a write is in
 * flight and nghttp2's queue is long, so a peer that does not read cannot
 * grow our memory. Protocol errors are nghttp2's: it answers with GOAWAY and
 * we close once it is sent; bytes that are not HTTP/2 at all close at once.
 *
 * A call is answered when its request ends (END_STREAM), synchronously: a
 * short LMDB read transaction and the signature, no I/O. Header problems
 * (not gRPC, unknown method, wrong key) are answered as soon as the headers
 * are in, without waiting for the body, which is then read and dropped.
 * A request body holds exactly one uncompressed
 * length-prefixed message of at most TALAS_GRPC_MAX_MESSAGE bytes, and a
 * connection buffers at most CONN_MAX_BUFFERED bytes over all its streams.
 * The message is read by grpc_request.c (not by protobuf-c's unpack, whose
 * strings end at the first NUL byte: "adm\0in" became the user "adm"), and
 * its fields are checked by core/mint_args.c, the rules of
 * POST /api/stream-url: a NUL byte, invalid UTF-8 or an over-long value in
 * any string field is INVALID_ARGUMENT naming the field.
 * Answers: HEADERS, DATA (the message) and trailers with grpc-status 0, or
 * a trailers-only response with grpc-status and a percent-encoded
 * grpc-message. grpc-timeout is honoured in the only place time can pass:
 * a call whose request took longer than its deadline to arrive gets
 * DEADLINE_EXCEEDED.
 *
 * Logs: failures of the server's own calls, the catalog and the signer
 * (error); every answer at debug level (what a client got wrong is not an
 * error of the server, and must not let clients flood the log).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <h2o.h>
#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>

#include "talas/v1/stream.pb-c.h"

#include "core/mint_args.h"
#include "core/token.h"
#include "store/catalog.h"
#include "grpc/grpc_request.h"
#include "grpc/grpc_server.h"
#include "core/log.h"
#include "worker/tls.h"
#include "core/util.h"

#define GRPC_PATH "/talas.v1.StreamService/GetStreamURL"

/* Bounds on what one connection may make us hold. */
#define CONN_MAX_BUFFERED (1024 * 1024) /* request bodies, all streams together */
#define WRITE_CHUNK (64 * 1024)         /* bytes gathered from nghttp2 per write */
#define OUTBOUND_QUEUE_MAX 256          /* frames queued before we stop reading */
#define MAX_HEADER_LIST 16384

/* gRPC status codes (grpc/status.h) */
enum grpc_status {
    GRPC_OK = 0,
    GRPC_INVALID_ARGUMENT = 3,
    GRPC_DEADLINE_EXCEEDED = 4,
    GRPC_NOT_FOUND = 5,
    GRPC_RESOURCE_EXHAUSTED = 8,
    GRPC_FAILED_PRECONDITION = 9,
    GRPC_UNIMPLEMENTED = 12,
    GRPC_INTERNAL = 13,
    GRPC_UNAUTHENTICATED = 16,
};

struct listener {
    h2o_socket_t *sock;
    SSL_CTX *ssl_ctx; /* NULL for cleartext */
};

struct conn;

/* One call; freed when nghttp2 closes its stream, or with its connection. */
struct stream {
    h2o_linklist_t link; /* in conn->streams */
    struct conn *conn;
    int32_t id;
    int is_post, is_grpc, answered;
    char path[128];
    size_t path_len; /* the full length, even when longer than path[] holds */
    char authorization[512];
    size_t authorization_len;        /* likewise */
    char encoding[32];               /* grpc-encoding, "" when absent */
    uint64_t started_ms, timeout_ms; /* timeout_ms 0: no grpc-timeout */
    struct talas_buf body;           /* the request message, prefix included */
    size_t extra;                    /* bytes received after the first message */
    struct talas_buf resp;           /* the response message, prefix included */
    size_t resp_sent;
};

struct conn {
    h2o_linklist_t link; /* in server.conns */
    h2o_socket_t *sock;
    nghttp2_session *session; /* NULL until the TLS handshake is done */
    h2o_linklist_t streams;
    size_t buffered; /* sum of the streams' body lengths */
    struct talas_buf out;
    int writing, read_paused, idle_fired;
    h2o_timeout_entry_t idle;
};

static struct {
    const struct talas_worker_ctx *ctx; /* the worker's, borrowed */
    const struct talas_config *conf;
    h2o_loop_t *loop;
    struct listener *listeners;
    size_t listener_count;
    h2o_linklist_t conns;
    size_t conn_count;
    h2o_timeout_t idle_timeout;
    nghttp2_session_callbacks *callbacks;
    nghttp2_option *option;
    int started, stopping;
} server;

static void on_read(h2o_socket_t *sock, const char *err);
static int flush(struct conn *c);

/* ------------------------------------------------------------ connections */

static void close_conn(struct conn *c)
{
    if (c->session != NULL)
        nghttp2_session_del(c->session);
    /* nghttp2_session_del does not report the streams it drops */
    while (!h2o_linklist_is_empty(&c->streams)) {
        struct stream *s = H2O_STRUCT_FROM_MEMBER(struct stream, link, c->streams.next);
        h2o_linklist_unlink(&s->link);
        talas_buf_free(&s->body);
        talas_buf_free(&s->resp);
        free(s);
    }
    if (h2o_timeout_is_linked(&c->idle))
        h2o_timeout_unlink(&c->idle);
    h2o_linklist_unlink(&c->link);
    server.conn_count--;
    h2o_socket_close(c->sock);
    talas_buf_free(&c->out);
    free(c);
}

static void touch(struct conn *c)
{
    if (h2o_timeout_is_linked(&c->idle))
        h2o_timeout_unlink(&c->idle);
    c->idle_fired = 0;
    h2o_timeout_link(server.loop, &server.idle_timeout, &c->idle);
}

/* Idle for http2.idle_timeout: GOAWAY (a gRPC client reconnects when it
 * needs to); idle again, with the GOAWAY still unsent: close. */
static void on_idle(h2o_timeout_entry_t *entry)
{
    struct conn *c = H2O_STRUCT_FROM_MEMBER(struct conn, idle, entry);

    if (c->session == NULL || c->idle_fired) {
        close_conn(c);
        return;
    }
    c->idle_fired = 1;
    h2o_timeout_link(server.loop, &server.idle_timeout, &c->idle);
    nghttp2_session_terminate_session(c->session, NGHTTP2_NO_ERROR);
    flush(c);
}

static void on_write_complete(h2o_socket_t *sock, const char *err)
{
    struct conn *c = sock->data;

    c->writing = 0;
    if (err != NULL) {
        close_conn(c);
        return;
    }
    if (flush(c) != 0)
        return;
    if (c->read_paused && !c->writing) {
        c->read_paused = 0;
        h2o_socket_read_start(c->sock, on_read);
    }
}

/* Writes what nghttp2 has to send, when no write is in flight; closes the
 * connection when the session is over. Returns -1 when C was closed. Never
 * called from inside an nghttp2 callback. */
static int flush(struct conn *c)
{
    h2o_iovec_t buf;

    if (c->writing)
        return 0;
    c->out.len = 0;
    while (c->out.len < WRITE_CHUNK) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(c->session, &data);
        if (n < 0) {
            log_debug("grpc: nghttp2_session_mem_send() failed: %s", nghttp2_strerror((int)n));
            close_conn(c);
            return -1;
        }
        if (n == 0)
            break;
        talas_buf_append(&c->out, data, (size_t)n);
    }
    if (c->out.len == 0) {
        if (!nghttp2_session_want_read(c->session) && !nghttp2_session_want_write(c->session)) {
            close_conn(c);
            return -1;
        }
        return 0;
    }
    buf = h2o_iovec_init(c->out.data, c->out.len);
    c->writing = 1;
    h2o_socket_write(c->sock, &buf, 1, on_write_complete);
    return 0;
}

static void on_read(h2o_socket_t *sock, const char *err)
{
    struct conn *c = sock->data;
    ssize_t n;

    if (err != NULL) {
        close_conn(c);
        return;
    }
    touch(c);
    n = nghttp2_session_mem_recv(c->session, (const uint8_t *)sock->input->bytes, sock->input->size);
    if (n < 0) {
        /* not HTTP/2 at all (bad preface), or a flood nghttp2 gave up on */
        log_debug("grpc: nghttp2_session_mem_recv() failed: %s", nghttp2_strerror((int)n));
        close_conn(c);
        return;
    }
    h2o_buffer_consume(&sock->input, (size_t)n);
    if (flush(c) != 0)
        return;
    if (c->writing && !c->read_paused &&
        nghttp2_session_get_outbound_queue_size(c->session) > OUTBOUND_QUEUE_MAX) {
        c->read_paused = 1;
        h2o_socket_read_stop(c->sock);
    }
}

static int start_session(struct conn *c)
{
    nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, (uint32_t)server.conf->http2_max_concurrent_streams},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, MAX_HEADER_LIST},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
    };
    int rv;

    if ((rv = nghttp2_session_server_new2(&c->session, server.callbacks, c, server.option)) != 0) {
        log_error("%s: nghttp2_session_server_new2() failed: %s", __func__, nghttp2_strerror(rv));
        return -1;
    }
    rv = nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, settings, TALAS_ARRAY_SIZE(settings));
    if (rv != 0) {
        log_error("%s: nghttp2_submit_settings() failed: %s", __func__, nghttp2_strerror(rv));
        return -1;
    }
    return 0;
}

static void on_handshake(h2o_socket_t *sock, const char *err)
{
    struct conn *c = sock->data;

    if (err != NULL) {
        log_debug("grpc: TLS handshake failed: %s", err);
        close_conn(c);
        return;
    }
    if (start_session(c) != 0) {
        close_conn(c);
        return;
    }
    h2o_socket_read_start(sock, on_read);
    /* the client preface may have come with the end of the handshake */
    if (sock->input->size != 0)
        on_read(sock, NULL);
    else
        flush(c);
}

static void on_accept(h2o_socket_t *listen_sock, const char *err)
{
    struct listener *l = listen_sock->data;
    h2o_socket_t *sock;
    int i;

    if (err != NULL)
        return;
    for (i = 0; i < 64; i++) {
        struct conn *c;

        if ((sock = h2o_evloop_socket_accept(listen_sock)) == NULL)
            break;
        c = xcalloc(1, sizeof(*c));
        c->sock = sock;
        sock->data = c;
        h2o_linklist_init_anchor(&c->streams);
        c->idle.cb = on_idle;
        h2o_linklist_insert(&server.conns, &c->link);
        server.conn_count++;
        touch(c);
        if (l->ssl_ctx != NULL) {
            h2o_socket_ssl_handshake(sock, l->ssl_ctx, NULL, on_handshake);
            continue;
        }
        if (start_session(c) != 0) {
            close_conn(c);
            continue;
        }
        h2o_socket_read_start(sock, on_read);
        flush(c);
    }
}

/* gRPC needs HTTP/2: offer nothing else. A client that names no protocol
 * gets no ALPN answer and may still speak HTTP/2 (prior knowledge). */
static int select_h2(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                     unsigned int inlen, void *arg)
{
    unsigned int i = 0;

    while (i < inlen) {
        unsigned int len = in[i];
        if (i + 1 + len > inlen)
            break;
        if (len == 2 && memcmp(in + i + 1, "h2", 2) == 0) {
            *out = in + i + 1;
            *outlen = 2;
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + len;
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/* ---------------------------------------------------------------- answers */

/* grpc-message is percent-encoded: printable ASCII but '%' passes as is. */
static void percent_encode(const char *msg, struct talas_buf *out)
{
    static const char hex[] = "0123456789ABCDEF";

    for (const unsigned char *p = (const unsigned char *)msg; *p != '\0'; p++) {
        if (*p >= 0x20 && *p <= 0x7e && *p != '%') {
            talas_buf_append(out, p, 1);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            talas_buf_append(out, e, 3);
        }
    }
}

#define NV(n, v, vlen)                                                                                       \
    {                                                                                                        \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (vlen), NGHTTP2_NV_FLAG_NONE                          \
    }

static void submit(struct stream *s, const nghttp2_nv *nva, size_t n, const nghttp2_data_provider *prd)
{
    struct conn *c = s->conn;
    int rv;

    s->answered = 1;
    if ((rv = nghttp2_submit_response(c->session, s->id, nva, n, prd)) != 0) {
        log_debug("grpc: nghttp2_submit_response() failed: %s", nghttp2_strerror(rv));
        return;
    }
    /* Answered before the request ended, the rest of the request is read
     * and dropped. No RST_STREAM(NO_ERROR) as RFC 9113 8.1 allows: grpcio
     * reports it as INTERNAL when it overtakes the trailers, and a gRPC
     * client stops sending (and resets) once it has the trailers. */
    /* what the request held is no longer needed */
    c->buffered -= s->body.len;
    talas_buf_free(&s->body);
}

/* A trailers-only response: the call failed with STATUS. */
static void answer_error(struct stream *s, enum grpc_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void answer_error(struct stream *s, enum grpc_status status, const char *fmt, ...)
{
    struct talas_buf enc = {0};
    char msg[512], code[12];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    percent_encode(msg, &enc);
    snprintf(code, sizeof(code), "%d", (int)status);
    {
        nghttp2_nv nva[] = {
            NV(":status", "200", 3),
            NV("content-type", "application/grpc", 16),
            NV("grpc-accept-encoding", "identity", 8),
            NV("grpc-status", code, strlen(code)),
            NV("grpc-message", enc.data != NULL ? enc.data : "", enc.len),
        };
        submit(s, nva, TALAS_ARRAY_SIZE(nva), NULL);
    }
    /* what the client got wrong is its business; our own failures are
     * logged where they happen */
    log_debug("grpc: stream %d: status %d: %s", s->id, (int)status, msg);
    talas_buf_free(&enc);
}

/* Not a gRPC request at all: a plain HTTP status (gRPC over HTTP/2 spec). */
static void answer_http(struct stream *s, const char *status)
{
    nghttp2_nv nva[] = {
        NV(":status", status, 3),
        NV("allow", "POST", 4),
    };

    submit(s, nva, strcmp(status, "405") == 0 ? 2 : 1, NULL);
    log_debug("grpc: stream %d: HTTP %s", s->id, status);
}

static ssize_t read_response(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                             uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
    struct stream *s = source->ptr;
    size_t n = s->resp.len - s->resp_sent;
    static const nghttp2_nv trailers[] = {NV("grpc-status", "0", 1)};

    if (n > length)
        n = length;
    memcpy(buf, s->resp.data + s->resp_sent, n);
    s->resp_sent += n;
    if (s->resp_sent == s->resp.len) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
        if (nghttp2_submit_trailer(session, stream_id, trailers, TALAS_ARRAY_SIZE(trailers)) != 0)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    return (ssize_t)n;
}

static void answer_ok(struct stream *s, const char *url, const char *expires_at)
{
    Talas__V1__GetStreamURLResponse resp = TALAS__V1__GET_STREAM_URLRESPONSE__INIT;
    nghttp2_nv nva[] = {
        NV(":status", "200", 3),
        NV("content-type", "application/grpc", 16),
        NV("grpc-accept-encoding", "identity", 8),
    };
    nghttp2_data_provider prd;
    size_t len;

    resp.url_signed = (char *)url;
    resp.expires_at = (char *)expires_at;
    len = talas__v1__get_stream_urlresponse__get_packed_size(&resp);
    talas_buf_reserve(&s->resp, 5 + len);
    s->resp.data[0] = 0;
    s->resp.data[1] = (char)(len >> 24);
    s->resp.data[2] = (char)(len >> 16);
    s->resp.data[3] = (char)(len >> 8);
    s->resp.data[4] = (char)len;
    talas__v1__get_stream_urlresponse__pack(&resp, (uint8_t *)s->resp.data + 5);
    s->resp.len = 5 + len;
    s->resp_sent = 0;
    prd.source.ptr = s;
    prd.read_callback = read_response;
    submit(s, nva, TALAS_ARRAY_SIZE(nva), &prd);
    log_debug("grpc: stream %d: OK, expires %s", s->id, expires_at);
}

/* ------------------------------------------------------------------ calls */

/* Header checks, as soon as the request headers are in. Returns 0 when the
 * call may go on to its body. */
static int check_headers(struct stream *s)
{
    struct talas_token *auth = server.ctx->token;

    if (!s->is_post) {
        answer_http(s, "405");
        return -1;
    }
    if (!s->is_grpc) {
        answer_http(s, "415");
        return -1;
    }
    if (s->path_len != strlen(GRPC_PATH) || memcmp(s->path, GRPC_PATH, s->path_len) != 0) {
        answer_error(s, GRPC_UNIMPLEMENTED, "unknown method %.*s%s", (int)strnlen(s->path, sizeof(s->path)),
                     s->path, s->path_len >= sizeof(s->path) ? "..." : "");
        return -1;
    }
    if (server.conf->auth_backend_key_file == NULL) {
        answer_error(s, GRPC_UNAUTHENTICATED,
                     "no backend key is configured on this server (auth.backend_key_file)");
        return -1;
    }
    if (s->authorization_len == 0) {
        answer_error(s, GRPC_UNAUTHENTICATED, "missing authorization metadata (Bearer backend key)");
        return -1;
    }
    if (auth == NULL || s->authorization_len >= sizeof(s->authorization) ||
        !talas_token_backend_key_ok(auth, s->authorization, s->authorization_len)) {
        answer_error(s, GRPC_UNAUTHENTICATED, "invalid backend key");
        return -1;
    }
    return 0;
}

/* The key token.c signs with (the main one, else the first of auth.keys)
 * and whether it can sign at all. */
static int can_sign(const struct talas_config *conf)
{
    const struct talas_config_key *k = NULL;

    if (conf->auth_key.secret_file != NULL || conf->auth_key.public_key_file != NULL ||
        conf->auth_key.private_key_file != NULL)
        k = &conf->auth_key;
    else if (conf->auth_key_count > 0)
        k = &conf->auth_keys[0];
    return k != NULL && (k->secret_file != NULL || k->private_key_file != NULL);
}

/* Looks ID up: GRPC_OK, GRPC_NOT_FOUND, or GRPC_INTERNAL with *error_r. */
static enum grpc_status find_track(const char *id, const char **error_r)
{
    struct talas_storage *st = server.ctx->storage;
    struct talas_track t;
    enum grpc_status status;
    MDB_txn *txn;
    int rc;

    if ((rc = talas_storage_read_begin(st, &txn)) != 0) {
        *error_r = mdb_strerror(rc);
        return GRPC_INTERNAL;
    }
    rc = talas_catalog_resolve(st, txn, id, &t); /* a former id mints for itself: it resolves on every route */
    if (rc == 0)
        status = t.error == NULL ? GRPC_OK : GRPC_NOT_FOUND; /* a file that failed to probe is not playable */
    else if (rc == MDB_NOTFOUND)
        status = GRPC_NOT_FOUND;
    else {
        *error_r = rc == -1 ? "damaged catalog record" : mdb_strerror(rc);
        status = GRPC_INTERNAL;
    }
    mdb_txn_abort(txn);
    return status;
}

/* Checks the fields of REQ with the rules POST /api/stream-url uses
 * (core/mint_args.h) into *ARGS. Returns 0, or -1 with the call answered
 * INVALID_ARGUMENT naming the field. In proto3 an empty string or 0 is a
 * field left out: it gets the default, or "required" for audio_id. */
static int check_args(struct stream *s, const struct talas_grpc_stream_url_request *req,
                      struct talas_mint_args *args)
{
    const char *field, *reason;

    talas_mint_args_init(args);
    if (req->audio_id.len == 0) {
        answer_error(s, GRPC_INVALID_ARGUMENT, "audio_id: required");
        return -1;
    }
    if (talas_mint_args_set_track(args, req->audio_id.data, req->audio_id.len, &reason) != 0) {
        field = "audio_id";
        goto bad;
    }
    if (req->user_id.len != 0 &&
        talas_mint_args_set_user(args, req->user_id.data, req->user_id.len, &reason) != 0) {
        field = "user_id";
        goto bad;
    }
    if (req->kind.len != 0 && talas_mint_args_set_kind(args, req->kind.data, req->kind.len, &reason) != 0) {
        field = "kind";
        goto bad;
    }
    if (req->ttl_seconds != 0 &&
        talas_mint_args_set_ttl(args, req->ttl_seconds, server.conf->auth_max_ttl_ms / 1000, &reason) != 0) {
        field = "ttl_seconds";
        goto bad;
    }
    return 0;

bad:
    answer_error(s, GRPC_INVALID_ARGUMENT, "%s: %s", field, reason);
    return -1;
}

static void handle_call(struct stream *s)
{
    const struct talas_config *conf = server.conf;
    const unsigned char *b = (const unsigned char *)s->body.data;
    struct talas_grpc_stream_url_request req;
    struct talas_mint_args args;
    enum grpc_status status;
    const char *error;
    char *url = NULL, *mint_error = NULL, expires_at[32];
    size_t len;
    time_t exp;

    if (s->timeout_ms != 0 && talas_now_ms() - s->started_ms > s->timeout_ms) {
        answer_error(s, GRPC_DEADLINE_EXCEEDED, "the request took longer than its grpc-timeout to arrive");
        return;
    }
    /* a unary call has exactly one request message; the gRPC status
     * code for another number is UNIMPLEMENTED (cardinality violation) */
    if (s->body.len == 0) {
        answer_error(s, GRPC_UNIMPLEMENTED, "no request message in a unary call");
        return;
    }
    if (s->body.len < 5) {
        answer_error(s, GRPC_INTERNAL, "truncated message prefix");
        return;
    }
    if (b[0] != 0) {
        if (s->encoding[0] != '\0' && strcmp(s->encoding, "identity") != 0)
            answer_error(s, GRPC_UNIMPLEMENTED, "compression \"%s\" is not supported (identity only)",
                         s->encoding);
        else
            answer_error(s, GRPC_INTERNAL, "compressed message without grpc-encoding");
        return;
    }
    len = (size_t)b[1] << 24 | (size_t)b[2] << 16 | (size_t)b[3] << 8 | b[4];
    if (s->body.len - 5 < len) {
        answer_error(s, GRPC_INTERNAL, "truncated request message (%zu of %zu bytes)", s->body.len - 5, len);
        return;
    }
    if (s->body.len - 5 > len || s->extra != 0) {
        answer_error(s, GRPC_UNIMPLEMENTED, "more than one request message in a unary call");
        return;
    }
    /* not protobuf-c's unpack: its strings end at the first NUL byte */
    if (talas_grpc_request_stream_url(b + 5, len, &req, &error) != 0) {
        answer_error(s, GRPC_INTERNAL, "cannot decode GetStreamURLRequest: %s", error);
        return;
    }
    if (check_args(s, &req, &args) != 0)
        return;
    if (!can_sign(conf)) {
        answer_error(s, GRPC_FAILED_PRECONDITION,
                     "no key able to sign is configured (auth.secret_file, or auth.private_key_file)");
        return;
    }
    if ((status = find_track(args.track, &error)) == GRPC_NOT_FOUND) {
        answer_error(s, GRPC_NOT_FOUND, "no playable track %s", args.track);
        return;
    } else if (status != GRPC_OK) {
        log_error("grpc: catalog look-up of %s failed: %s", args.track, error);
        answer_error(s, GRPC_INTERNAL, "catalog look-up of %s failed: %s", args.track, error);
        return;
    }
    if (talas_token_mint_url(server.ctx->token, args.track, args.user[0] != '\0' ? args.user : NULL,
                             args.kind, args.ttl_s, &url, &exp, &mint_error) != 0) {
        log_error("grpc: signing a URL for %s failed: %s", args.track, mint_error);
        answer_error(s, GRPC_INTERNAL, "cannot sign: %s", mint_error);
        free(mint_error);
        return;
    }
    talas_token_format_time(exp, expires_at);
    answer_ok(s, url, expires_at);
    free(url);
}

/* grpc-timeout: 1 to 8 digits and a unit (H M S m u n). 0 when invalid,
 * which is then ignored. */
static uint64_t parse_timeout(const uint8_t *v, size_t len)
{
    uint64_t n = 0;

    if (len < 2 || len > 9)
        return 0;
    for (size_t i = 0; i < len - 1; i++) {
        if (v[i] < '0' || v[i] > '9')
            return 0;
        n = n * 10 + (v[i] - '0');
    }
    switch (v[len - 1]) {
    case 'H':
        return n * 3600000;
    case 'M':
        return n * 60000;
    case 'S':
        return n * 1000;
    case 'm':
        return n;
    case 'u':
        return n / 1000 + 1;
    case 'n':
        return n / 1000000 + 1;
    }
    return 0;
}

/* -------------------------------------------------------- nghttp2 callbacks */

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct conn *c = user_data;
    struct stream *s;

    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    s = xcalloc(1, sizeof(*s));
    s->conn = c;
    s->id = frame->hd.stream_id;
    s->started_ms = talas_now_ms();
    h2o_linklist_insert(&c->streams, &s->link);
    nghttp2_session_set_stream_user_data(session, s->id, s);
    return 0;
}

static void copy_header(char *dst, size_t size, size_t *len_r, const uint8_t *value, size_t len)
{
    *len_r = len;
    if (len < size) {
        memcpy(dst, value, len);
        dst[len] = '\0';
    } else {
        memcpy(dst, value, size - 1);
        dst[size - 1] = '\0';
    }
}

#define IS(lit) (namelen == sizeof(lit) - 1 && memcmp(name, lit, namelen) == 0)

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *user_data)
{
    struct stream *s;
    size_t ignored;

    /* trailers from the client carry nothing we use */
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    if ((s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id)) == NULL)
        return 0;
    if (IS(":method"))
        s->is_post = valuelen == 4 && memcmp(value, "POST", 4) == 0;
    else if (IS(":path"))
        copy_header(s->path, sizeof(s->path), &s->path_len, value, valuelen);
    else if (IS("content-type"))
        /* application/grpc, application/grpc+proto, application/grpc;... */
        s->is_grpc = valuelen >= 16 && memcmp(value, "application/grpc", 16) == 0 &&
                     (valuelen == 16 || value[16] == '+' || value[16] == ';');
    else if (IS("authorization"))
        copy_header(s->authorization, sizeof(s->authorization), &s->authorization_len, value, valuelen);
    else if (IS("grpc-encoding"))
        copy_header(s->encoding, sizeof(s->encoding), &ignored, value, valuelen);
    else if (IS("grpc-timeout"))
        s->timeout_ms = parse_timeout(value, valuelen);
    return 0;
}

static int on_data_chunk_recv(nghttp2_session *session, uint8_t flags, int32_t stream_id, const uint8_t *data,
                              size_t len, void *user_data)
{
    struct conn *c = user_data;
    struct stream *s = nghttp2_session_get_stream_user_data(session, stream_id);
    size_t want;

    if (s == NULL || s->answered)
        return 0;
    /* the prefix first, then up to the length it announces; beyond that
     * only count, so that a stream buffers at most one message */
    while (len > 0) {
        if (s->body.len < 5) {
            want = 5 - s->body.len;
        } else {
            const unsigned char *b = (const unsigned char *)s->body.data;
            size_t msg = (size_t)b[1] << 24 | (size_t)b[2] << 16 | (size_t)b[3] << 8 | b[4];
            if (msg > TALAS_GRPC_MAX_MESSAGE) {
                answer_error(s, GRPC_RESOURCE_EXHAUSTED, "request message of %zu bytes, more than %d", msg,
                             TALAS_GRPC_MAX_MESSAGE);
                return 0;
            }
            want = 5 + msg - s->body.len;
            if (want == 0) {
                s->extra += len;
                return 0;
            }
        }
        if (want > len)
            want = len;
        if (c->buffered + want > CONN_MAX_BUFFERED) {
            answer_error(s, GRPC_RESOURCE_EXHAUSTED, "too many request bytes in flight on this connection");
            return 0;
        }
        talas_buf_append(&s->body, data, want);
        c->buffered += want;
        data += want;
        len -= want;
    }
    /* a prefix that just completed is checked at once */
    if (s->body.len == 5) {
        const unsigned char *b = (const unsigned char *)s->body.data;
        size_t msg = (size_t)b[1] << 24 | (size_t)b[2] << 16 | (size_t)b[3] << 8 | b[4];
        if (msg > TALAS_GRPC_MAX_MESSAGE)
            answer_error(s, GRPC_RESOURCE_EXHAUSTED, "request message of %zu bytes, more than %d", msg,
                         TALAS_GRPC_MAX_MESSAGE);
    }
    return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct stream *s;

    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
        return 0;
    if ((s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id)) == NULL || s->answered)
        return 0;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST &&
        check_headers(s) != 0)
        return 0;
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
        handle_call(s);
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code, void *user_data)
{
    struct conn *c = user_data;
    struct stream *s = nghttp2_session_get_stream_user_data(session, stream_id);

    if (s == NULL)
        return 0;
    c->buffered -= s->body.len;
    h2o_linklist_unlink(&s->link);
    talas_buf_free(&s->body);
    talas_buf_free(&s->resp);
    free(s);
    nghttp2_session_set_stream_user_data(session, stream_id, NULL);
    return 0;
}

/* --------------------------------------------------------------- lifecycle */

int talas_grpc_server_start(const struct talas_worker_ctx *ctx, const int *fds, char **error_r)
{
    const struct talas_config *conf = ctx->conf;
    h2o_loop_t *loop = ctx->loop;
    nghttp2_session_callbacks *cbs;

    server.ctx = ctx;
    server.conf = conf;
    server.loop = loop;
    h2o_linklist_init_anchor(&server.conns);
    if (conf->grpc_listen_count == 0)
        return 0;
    if (nghttp2_session_callbacks_new(&cbs) != 0 || nghttp2_option_new(&server.option) != 0) {
        *error_r = xstrdup("grpc: nghttp2_session_callbacks_new() failed");
        return -1;
    }
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk_recv);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    server.callbacks = cbs;
    /* closed streams are not kept for priority bookkeeping: churn costs nothing */
    nghttp2_option_set_no_closed_streams(server.option, 1);

    server.listeners = xcalloc(conf->grpc_listen_count, sizeof(*server.listeners));
    for (size_t i = 0; i < conf->grpc_listen_count; i++) {
        const struct talas_config_listen *lc = &conf->grpc_listen[i];
        struct listener *l = &server.listeners[i];
        char *error;

        if (lc->tls_certificate != NULL) {
            if ((l->ssl_ctx = talas_tls_context_new(lc->tls_certificate, lc->tls_key, &error)) == NULL) {
                *error_r = xasprintf("grpc.listen %s:%d: %s", lc->host, lc->port, error);
                free(error);
                goto fail;
            }
            SSL_CTX_set_alpn_select_cb(l->ssl_ctx, select_h2, NULL);
        }
    }
    for (size_t i = 0; i < conf->grpc_listen_count; i++) {
        struct listener *l = &server.listeners[i];
        l->sock = h2o_evloop_socket_create(loop, fds[i], H2O_SOCKET_FLAG_DONT_READ);
        l->sock->data = l;
        h2o_socket_read_start(l->sock, on_accept);
    }
    server.listener_count = conf->grpc_listen_count;
    h2o_timeout_init(loop, &server.idle_timeout, conf->http2_idle_timeout_ms);
    server.started = 1;
    return 0;

fail:
    for (size_t i = 0; i < conf->grpc_listen_count; i++)
        if (server.listeners[i].ssl_ctx != NULL)
            SSL_CTX_free(server.listeners[i].ssl_ctx);
    free(server.listeners);
    server.listeners = NULL;
    nghttp2_session_callbacks_del(server.callbacks);
    nghttp2_option_del(server.option);
    server.callbacks = NULL;
    server.option = NULL;
    return -1;
}

void talas_grpc_server_stop(void)
{
    h2o_linklist_t *node, *next;

    if (!server.started || server.stopping)
        return;
    server.stopping = 1;
    for (size_t i = 0; i < server.listener_count; i++) {
        if (server.listeners[i].sock != NULL) {
            h2o_socket_read_stop(server.listeners[i].sock);
            h2o_socket_close(server.listeners[i].sock);
            server.listeners[i].sock = NULL;
        }
    }
    for (node = server.conns.next; node != &server.conns; node = next) {
        struct conn *c = H2O_STRUCT_FROM_MEMBER(struct conn, link, node);
        next = node->next;
        if (c->session == NULL) {
            close_conn(c); /* still in its TLS handshake */
            continue;
        }
        /* calls already received are answered; the client retries later
         * ones elsewhere */
        nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE,
                              nghttp2_session_get_last_proc_stream_id(c->session), NGHTTP2_NO_ERROR, NULL, 0);
        flush(c);
    }
    if (server.conn_count != 0)
        log_info("graceful stop: %zu gRPC connection(s) left", server.conn_count);
}

size_t talas_grpc_server_connections(void)
{
    return server.conn_count;
}
