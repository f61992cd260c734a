/*
 * mint_args.h - the arguments of a request for a signed media URL, checked
 * by one set of rules whichever way they came: POST /api/stream-url (JSON,
 * workers/http/http_api.c) and GetStreamURL (protobuf over gRPC,
 * workers/grpc/grpc_server.c) hand each field's raw bytes to the setter of
 * that field, and mint with what the setters kept.
 *
 * A setter takes a pointer and a length, never a C string: a NUL byte
 * inside a value must be seen, not cut at (a user "adm\0in" is not "adm").
 * Every text field is refused when it holds a NUL byte, is not valid UTF-8
 * or is longer than its maximum, before its own syntax is looked at. The
 * reasons are static strings written to follow "FIELD: " in an error
 * message ("user_id: contains a NUL byte").
 *
 * What is absent is the caller's to decide (JSON: a missing member or null
 * user_id; protobuf: a field that is not sent, which proto3 cannot tell
 * from an empty string or 0): a setter is called only for a value that is
 * there, and refuses an empty one. Nothing here allocates, logs or reads
 * the store.
 */
#ifndef TALAS_MINT_ARGS_H
#define TALAS_MINT_ARGS_H

#include <stddef.h>
#include <stdint.h>

#include "core/token.h"
#include "store/catalog.h"

/* The longest user id (the token's sub), in bytes. */
#define TALAS_MINT_USER_MAX 127

struct talas_mint_args {
    char track[TALAS_TRACK_ID_LEN + 1]; /* "" until set */
    char user[TALAS_MINT_USER_MAX + 1]; /* "" when there is none */
    enum talas_token_kind kind;         /* TALAS_TOKEN_STREAM unless set */
    uint64_t ttl_s;                     /* 0 (auth.default_ttl) unless set */
};

/* No track, no user, kind stream, the default lifetime. */
void talas_mint_args_init(struct talas_mint_args *a);

/* The track id (track_id, audio_id): 16 characters of base64url. Returns 0,
 * or -1 with *reason_r (A is then unchanged). */
int talas_mint_args_set_track(struct talas_mint_args *a, const char *s, size_t len, const char **reason_r);

/* The user the URL is for (user_id, the token's sub): 1 to
 * TALAS_MINT_USER_MAX bytes of UTF-8 without NUL. Returns 0 or -1 with
 * *reason_r. */
int talas_mint_args_set_user(struct talas_mint_args *a, const char *s, size_t len, const char **reason_r);

/* The kind: "stream", "preview" or "hls". Returns 0 or -1 with *reason_r. */
int talas_mint_args_set_kind(struct talas_mint_args *a, const char *s, size_t len, const char **reason_r);

/* The lifetime: 1 to MAX_S seconds (auth.max_ttl). Returns 0 or -1 with
 * *reason_r. */
int talas_mint_args_set_ttl(struct talas_mint_args *a, int64_t seconds, uint64_t max_s,
                            const char **reason_r);

#endif
