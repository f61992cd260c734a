/*
 * grpc_request.c - a strict reader of the protobuf wire format, and the
 * decoder of GetStreamURLRequest built on it (grpc_request.h).
 *
 * Entry points: talas_grpc_reader_init, talas_grpc_reader_next,
 * talas_grpc_request_stream_url. Pure: no allocation, no logs; every read
 * is checked against the end of the message before it is made.
 *
 * Wire format (protobuf's encoding guide): a message is a list of fields;
 * each starts with a varint tag, number << 3 | wire type, and then holds a
 * varint (0), 8 bytes (1), a varint length and that many bytes (2), or 4
 * bytes (5). A varint is 7 bits a byte, least significant first, the high
 * bit set on every byte but the last: at most 10 bytes for 64 bits.
 */
#include <string.h>

#include "grpc/grpc_request.h"

/* Reads a varint at *P (before END) into *V_R. Returns 0, or -1 with
 * *error_r; *P moves past it only on success. */
static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v_r, const char **error_r)
{
    const uint8_t *q = *p;
    uint64_t v = 0;

    for (unsigned i = 0; i < 10; i++) {
        if (q == end) {
            *error_r = "truncated varint";
            return -1;
        }
        uint8_t b = *q++;
        /* the tenth byte holds bit 63 only */
        if (i == 9 && b > 1) {
            *error_r = "varint above 64 bits";
            return -1;
        }
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if ((b & 0x80) == 0) {
            *v_r = v;
            *p = q;
            return 0;
        }
    }
    /* unreachable: the tenth byte was 0 or 1, without its high bit */
    *error_r = "varint above 64 bits";
    return -1;
}

void talas_grpc_reader_init(struct talas_grpc_reader *r, const void *msg, size_t len)
{
    r->p = msg;
    /* MSG may be NULL when LEN is 0, and NULL + 0 is undefined in C */
    r->end = len != 0 ? r->p + len : r->p;
}

int talas_grpc_reader_next(struct talas_grpc_reader *r, struct talas_grpc_field *f, const char **error_r)
{
    const uint8_t *p = r->p;
    uint64_t tag, n;

    if (p == r->end)
        return 0;
    if (read_varint(&p, r->end, &tag, error_r) != 0)
        return -1;
    if (tag > UINT32_MAX) {
        *error_r = "field tag above 32 bits";
        return -1;
    }
    if ((tag >> 3) == 0) {
        *error_r = "field number 0";
        return -1;
    }
    memset(f, 0, sizeof(*f));
    f->number = (uint32_t)(tag >> 3);
    switch (tag & 7) {
    case TALAS_GRPC_WIRE_VARINT:
        if (read_varint(&p, r->end, &f->varint, error_r) != 0)
            return -1;
        break;
    case TALAS_GRPC_WIRE_I64:
    case TALAS_GRPC_WIRE_I32:
        n = (tag & 7) == TALAS_GRPC_WIRE_I64 ? 8 : 4;
        if ((uint64_t)(r->end - p) < n) {
            *error_r = "truncated fixed-width field";
            return -1;
        }
        f->data = p;
        f->len = (size_t)n;
        p += n;
        break;
    case TALAS_GRPC_WIRE_LEN:
        if (read_varint(&p, r->end, &n, error_r) != 0)
            return -1;
        if (n > (uint64_t)(r->end - p)) {
            *error_r = "length past the end of the message";
            return -1;
        }
        f->data = p;
        f->len = (size_t)n;
        p += n;
        break;
    case 3:
    case 4:
        *error_r = "group fields are not supported (proto3 has none)";
        return -1;
    default:
        *error_r = "unknown wire type";
        return -1;
    }
    f->wire_type = (enum talas_grpc_wire_type)(tag & 7);
    r->p = p;
    return 1;
}

/* Two's complement, without the implementation-defined conversion. */
static int32_t to_int32(uint32_t u)
{
    return u <= INT32_MAX ? (int32_t)u : -(int32_t)(UINT32_MAX - u) - 1;
}

/* A string field: wire type LEN. */
static int take_string(const struct talas_grpc_field *f, struct talas_grpc_string *s, const char *wrong,
                       const char **error_r)
{
    if (f->wire_type != TALAS_GRPC_WIRE_LEN) {
        *error_r = wrong;
        return -1;
    }
    s->data = (const char *)f->data;
    s->len = f->len;
    return 0;
}

int talas_grpc_request_stream_url(const void *msg, size_t len, struct talas_grpc_stream_url_request *req,
                                  const char **error_r)
{
    struct talas_grpc_reader r;
    struct talas_grpc_field f;
    int rc;

    memset(req, 0, sizeof(*req));
    talas_grpc_reader_init(&r, msg, len);
    while ((rc = talas_grpc_reader_next(&r, &f, error_r)) == 1) {
        switch (f.number) {
        case 1:
            if (take_string(&f, &req->audio_id, "audio_id: wrong wire type (not a string)", error_r) != 0)
                return -1;
            break;
        case 2:
            if (take_string(&f, &req->user_id, "user_id: wrong wire type (not a string)", error_r) != 0)
                return -1;
            break;
        case 3:
            if (take_string(&f, &req->kind, "kind: wrong wire type (not a string)", error_r) != 0)
                return -1;
            break;
        case 4:
            if (f.wire_type != TALAS_GRPC_WIRE_VARINT) {
                *error_r = "ttl_seconds: wrong wire type (not a varint)";
                return -1;
            }
            /* int32: the low 32 bits, negative values sign-extended on the
             * wire to 10 bytes (protobuf's rule for int32) */
            req->ttl_seconds = to_int32((uint32_t)f.varint);
            break;
        default:
            break; /* unknown: skipped, as protobuf does */
        }
    }
    return rc;
}
