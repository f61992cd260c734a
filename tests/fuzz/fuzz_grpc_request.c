/*
 * fuzz_grpc_request.c - gRPC request messages as a backend (or anyone with
 * its key) sends them: the protobuf wire reader and the GetStreamURLRequest
 * decoder (workers/grpc/grpc_request.c), then the field rules the server
 * applies to what they yield (src/core/mint_args.c).
 *
 * Input: the message bytes (after gRPC's 5-byte prefix). Checks what
 * grpc_request.h and mint_args.h promise: the decoder fails exactly when
 * the field-by-field walk fails or a known field has another wire type;
 * a decoded string lies inside the message and is the last occurrence of
 * its field; ttl_seconds is the low 32 bits of the last field 4; the walk
 * moves forward and ends at the last byte; a request re-encoded and
 * decoded again gives the same bytes; and a value the rules accept holds
 * no NUL byte, is valid UTF-8 and within its limit, and is kept whole.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/mint_args.h"
#include "core/util.h"
#include "grpc/grpc_request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int inside(const struct talas_grpc_string *s, const uint8_t *base, size_t len)
{
    return s->len == 0 ||
           ((const uint8_t *)s->data >= base && (const uint8_t *)s->data + s->len <= base + len);
}

static int same(const struct talas_grpc_string *a, const struct talas_grpc_string *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

/* The harness's own encoder, to re-encode a decoded request. */
static void put_varint(struct talas_buf *b, uint64_t v)
{
    do {
        uint8_t c = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v != 0)
            c |= 0x80;
        talas_buf_append(b, &c, 1);
    } while (v != 0);
}

static void put_string(struct talas_buf *b, unsigned number, const struct talas_grpc_string *s)
{
    if (s->len == 0)
        return;
    put_varint(b, number << 3 | 2);
    put_varint(b, s->len);
    talas_buf_append(b, s->data, s->len);
}

/* An accepted value: no NUL, valid UTF-8, 1 to MAX bytes, and KEPT (a
 * NUL-terminated copy) is the value whole. */
static void check_kept(const struct talas_grpc_string *s, const char *kept, size_t max)
{
    if (s->len == 0 || s->len > max || memchr(s->data, '\0', s->len) != NULL ||
        !talas_utf8_valid(s->data, s->len) || strlen(kept) != s->len || memcmp(kept, s->data, s->len) != 0)
        abort();
}

static void rules(const struct talas_grpc_stream_url_request *req)
{
    struct talas_mint_args a;
    const char *reason;

    talas_mint_args_init(&a);
    if (talas_mint_args_set_track(&a, req->audio_id.data, req->audio_id.len, &reason) == 0) {
        check_kept(&req->audio_id, a.track, TALAS_TRACK_ID_LEN);
        if (!talas_track_id_valid(a.track, strlen(a.track)))
            abort();
    } else if (reason == NULL || a.track[0] != '\0') {
        abort();
    }
    if (talas_mint_args_set_user(&a, req->user_id.data, req->user_id.len, &reason) == 0)
        check_kept(&req->user_id, a.user, TALAS_MINT_USER_MAX);
    else if (reason == NULL || a.user[0] != '\0')
        abort();
    if (talas_mint_args_set_kind(&a, req->kind.data, req->kind.len, &reason) == 0) {
        const char *name = a.kind == TALAS_TOKEN_STREAM    ? "stream"
                           : a.kind == TALAS_TOKEN_PREVIEW ? "preview"
                           : a.kind == TALAS_TOKEN_HLS     ? "hls"
                                                           : NULL;
        if (name == NULL || req->kind.len != strlen(name) || memcmp(req->kind.data, name, req->kind.len) != 0)
            abort();
    } else if (reason == NULL || a.kind != TALAS_TOKEN_STREAM) {
        abort();
    }
    if (talas_mint_args_set_ttl(&a, req->ttl_seconds, 86400, &reason) == 0) {
        if (req->ttl_seconds < 1 || req->ttl_seconds > 86400 || a.ttl_s != (uint64_t)req->ttl_seconds)
            abort();
    } else if (req->ttl_seconds >= 1 && req->ttl_seconds <= 86400) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* exactly SIZE bytes, so that ASan sees any read past the end */
    uint8_t *msg = memcpy(malloc(size ? size : 1), data, size);
    struct talas_grpc_stream_url_request req, again;
    struct talas_grpc_string last[4] = {{0}};
    struct talas_grpc_reader r;
    struct talas_grpc_field f;
    const uint8_t *prev = msg;
    const char *error = NULL, *walk_error = NULL;
    uint32_t last_ttl = 0;
    int rc, walk, wrong_type = 0;
    struct talas_buf b = {0};

    /* the walk on its own */
    talas_grpc_reader_init(&r, msg, size);
    while ((walk = talas_grpc_reader_next(&r, &f, &walk_error)) == 1) {
        if (r.p <= prev || r.p > msg + size || f.number == 0 || f.number >= 1u << 29)
            abort();
        if ((f.wire_type == TALAS_GRPC_WIRE_LEN || f.wire_type == TALAS_GRPC_WIRE_I64 ||
             f.wire_type == TALAS_GRPC_WIRE_I32) &&
            (f.data < prev || f.data + f.len != r.p))
            abort();
        if ((f.wire_type == TALAS_GRPC_WIRE_I64 && f.len != 8) ||
            (f.wire_type == TALAS_GRPC_WIRE_I32 && f.len != 4))
            abort();
        prev = r.p;
        if (f.number >= 1 && f.number <= 3) {
            if (f.wire_type != TALAS_GRPC_WIRE_LEN)
                wrong_type = 1;
            last[f.number].data = (const char *)f.data;
            last[f.number].len = f.len;
        } else if (f.number == 4) {
            if (f.wire_type != TALAS_GRPC_WIRE_VARINT)
                wrong_type = 1;
            last_ttl = (uint32_t)f.varint;
        }
    }
    if (walk == 0 && r.p != msg + size)
        abort();
    if (walk == -1 && (walk_error == NULL || *walk_error == '\0' ||
                       talas_grpc_reader_next(&r, &f, &walk_error) != -1)) /* stays at the error */
        abort();

    /* the decoder agrees with it */
    rc = talas_grpc_request_stream_url(msg, size, &req, &error);
    if (rc != 0 && rc != -1)
        abort();
    if (rc == -1) {
        if (error == NULL || *error == '\0' || (walk == 0 && !wrong_type))
            abort();
        goto done;
    }
    if (walk != 0 || wrong_type)
        abort();
    if (!inside(&req.audio_id, msg, size) || !inside(&req.user_id, msg, size) ||
        !inside(&req.kind, msg, size))
        abort();
    if (!same(&req.audio_id, &last[1]) || !same(&req.user_id, &last[2]) || !same(&req.kind, &last[3]) ||
        (uint32_t)req.ttl_seconds != last_ttl)
        abort();

    /* re-encoded canonically, it decodes to the same request */
    put_string(&b, 1, &req.audio_id);
    put_string(&b, 2, &req.user_id);
    put_string(&b, 3, &req.kind);
    if (req.ttl_seconds != 0) {
        put_varint(&b, 4 << 3);
        put_varint(&b, (uint64_t)(int64_t)req.ttl_seconds); /* int32: sign-extended */
    }
    if (talas_grpc_request_stream_url(b.data, b.len, &again, &error) != 0 ||
        !same(&req.audio_id, &again.audio_id) || !same(&req.user_id, &again.user_id) ||
        !same(&req.kind, &again.kind) || req.ttl_seconds != again.ttl_seconds)
        abort();
    talas_buf_free(&b);

    rules(&req);
done:
    free(msg);
    return 0;
}
