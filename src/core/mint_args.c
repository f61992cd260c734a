/*
 * mint_args.c - the rules for the fields of a signed-URL request, shared by
 * POST /api/stream-url and gRPC GetStreamURL so that the two can never
 * disagree on who a token is for.
 *
 * Entry points: talas_mint_args_init and one setter per field
 * (mint_args.h). Logs nothing: callers answer with the reasons.
 */
#include <string.h>

#include "core/mint_args.h"
#include "core/util.h"

#define STR_(x) #x
#define STR(x) STR_(x)

/* What every text field must be before its own syntax counts: no NUL, valid
 * UTF-8, 1 to MAX bytes. EMPTY and LONG are the field's own words for the
 * length. */
static int text_ok(const char *s, size_t len, size_t max, const char *empty, const char *too_long,
                   const char **reason_r)
{
    if (len == 0) {
        *reason_r = empty;
        return 0;
    }
    if (memchr(s, '\0', len) != NULL) {
        *reason_r = "contains a NUL byte";
        return 0;
    }
    if (!talas_utf8_valid(s, len)) {
        *reason_r = "is not valid UTF-8";
        return 0;
    }
    if (len > max) {
        *reason_r = too_long;
        return 0;
    }
    return 1;
}

void talas_mint_args_init(struct talas_mint_args *a)
{
    memset(a, 0, sizeof(*a));
    a->kind = TALAS_TOKEN_STREAM;
}

int talas_mint_args_set_track(struct talas_mint_args *a, const char *s, size_t len, const char **reason_r)
{
    static const char not_id[] =
        "must be a track id (" STR(TALAS_TRACK_ID_LEN) " characters of A-Z a-z 0-9 - _)";

    if (!text_ok(s, len, TALAS_TRACK_ID_LEN, not_id,
                 "is longer than a track id (" STR(TALAS_TRACK_ID_LEN) " bytes)", reason_r))
        return -1;
    if (!talas_track_id_valid(s, len)) {
        *reason_r = not_id;
        return -1;
    }
    memcpy(a->track, s, len);
    a->track[len] = '\0';
    return 0;
}

int talas_mint_args_set_user(struct talas_mint_args *a, const char *s, size_t len, const char **reason_r)
{
    if (!text_ok(s, len, TALAS_MINT_USER_MAX, "must be 1 to " STR(TALAS_MINT_USER_MAX) " bytes",
                 "is longer than " STR(TALAS_MINT_USER_MAX) " bytes", reason_r))
        return -1;
    memcpy(a->user, s, len);
    a->user[len] = '\0';
    return 0;
}

int talas_mint_args_set_kind(struct talas_mint_args *a, const char *s, size_t len, const char **reason_r)
{
    static const char *const names[] = {"stream", "preview", "hls"};
    static const enum talas_token_kind kinds[] = {TALAS_TOKEN_STREAM, TALAS_TOKEN_PREVIEW, TALAS_TOKEN_HLS};
    static const char one_of[] = "must be \"stream\", \"preview\" or \"hls\"";

    if (!text_ok(s, len, sizeof("preview") - 1, one_of, one_of, reason_r))
        return -1;
    for (size_t i = 0; i < TALAS_ARRAY_SIZE(names); i++) {
        if (len == strlen(names[i]) && memcmp(s, names[i], len) == 0) {
            a->kind = kinds[i];
            return 0;
        }
    }
    *reason_r = one_of;
    return -1;
}

int talas_mint_args_set_ttl(struct talas_mint_args *a, int64_t seconds, uint64_t max_s, const char **reason_r)
{
    if (seconds < 1 || (uint64_t)seconds > max_s) {
        *reason_r = "must be an integer from 1 to auth.max_ttl (leave it out for auth.default_ttl)";
        return -1;
    }
    a->ttl_s = (uint64_t)seconds;
    return 0;
}
