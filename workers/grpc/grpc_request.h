/*
 * grpc_request.h - gRPC request messages read from the protobuf wire format
 * by hand, strictly, so that a string field comes back as every byte the
 * client sent: protobuf-c's generated strings are C strings, and a value
 * with a NUL byte inside ("adm\0in") reached the rest of the server cut
 * short ("adm"). The server then checks the (pointer, length) pairs with
 * core/mint_args.h, as POST /api/stream-url does.
 *
 * The reader walks a message field by field with bounds checks: a varint
 * longer than 10 bytes or above 2^64, a tag above 2^32, field number 0, a
 * length past the end of the message, and wire types 3, 4 (groups: proto3
 * has none), 6 and 7 are errors. Unknown fields of the other wire types are
 * skipped. A field that appears twice counts once, with its last value
 * (what protobuf does for scalars and strings); a known field with another
 * wire type than its own is an error.
 *
 * Nothing here allocates, logs or copies: what comes back points into the
 * caller's message and lives as long as it does.
 */
#ifndef TALAS_GRPC_REQUEST_H
#define TALAS_GRPC_REQUEST_H

#include <stddef.h>
#include <stdint.h>

enum talas_grpc_wire_type {
    TALAS_GRPC_WIRE_VARINT = 0,
    TALAS_GRPC_WIRE_I64 = 1,
    TALAS_GRPC_WIRE_LEN = 2,
    TALAS_GRPC_WIRE_I32 = 5,
};

/* One field as it is on the wire. */
struct talas_grpc_field {
    uint32_t number; /* 1 to 2^29 - 1 */
    enum talas_grpc_wire_type wire_type;
    uint64_t varint;     /* VARINT: the value, as sent */
    const uint8_t *data; /* LEN, I64, I32: the bytes, inside the message */
    size_t len;          /* their number (8 for I64, 4 for I32) */
};

/* A cursor over one message; see talas_grpc_reader_next. */
struct talas_grpc_reader {
    const uint8_t *p, *end;
};

/* A reader over the LEN bytes at MSG (the caller's, not copied; NULL when
 * LEN is 0). */
void talas_grpc_reader_init(struct talas_grpc_reader *r, const void *msg, size_t len);

/*
 * Reads the next field into *field_r. Returns 1, 0 at the end of the
 * message, or -1 with a static description in *error_r (the reader is then
 * stuck at the bad field: every later call fails the same way).
 */
int talas_grpc_reader_next(struct talas_grpc_reader *r, struct talas_grpc_field *field_r,
                           const char **error_r);

/* A string field's bytes: DATA NULL and LEN 0 when the field is absent. Not
 * NUL-terminated; may hold NUL bytes and invalid UTF-8, which is for the
 * caller to refuse. */
struct talas_grpc_string {
    const char *data;
    size_t len;
};

/* talas.v1.GetStreamURLRequest (proto/talas/v1/stream.proto). */
struct talas_grpc_stream_url_request {
    struct talas_grpc_string audio_id; /* 1 */
    struct talas_grpc_string user_id;  /* 2 */
    struct talas_grpc_string kind;     /* 3 */
    int32_t ttl_seconds;               /* 4; 0 when absent */
};

/*
 * Decodes the LEN bytes at MSG as a GetStreamURLRequest into *req_r, whose
 * strings point into MSG. Returns 0, or -1 with a static description in
 * *error_r naming the field when a known field is at fault ("user_id: wrong
 * wire type"). Nothing about the values is checked here.
 */
int talas_grpc_request_stream_url(const void *msg, size_t len, struct talas_grpc_stream_url_request *req_r,
                                  const char **error_r);

#endif
