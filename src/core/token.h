/*
 * token.h - short-lived JWTs on media URLs: verifying them (every media
 * route) and minting them (GetStreamURL over gRPC, POST /api/stream-url,
 * talasctl sign).
 *
 * Keys are read from files at worker start (auth.secret_file,
 * auth.public_key_file, auth.private_key_file, auth.keys[]); each key pins
 * the one algorithm it accepts, so a token naming another algorithm
 * (algorithm confusion, "alg": "none") is refused whatever libjwt would do
 * (PLATFORM.md: libjwt 1.10 verifies with the token's own algorithm and
 * does not check exp).
 *
 * Claims: exp (required), owner (true: the sub owns the track and may
 * share it, POST /api/shares), share and lid (a share token), track (the track id, required for media), scope
 * ("stream", "preview", "hls", "all", or a space-separated list of them;
 * absent means all), sub (user), ip (optional binding), nbf, iss, aud
 * (checked when configured; a token with an aud when auth.audience is not
 * set is refused, as RFC 7519 4.1.3 asks); header kid selects the key when
 * several are configured (a token without kid is verified with the main
 * key when that key has no auth.kid, or with the only key there is).
 *
 * Nothing here depends on h2o or LMDB: talas-master links it to check the
 * keys (talas-master -t, reloads), talasctl can link it to mint URLs, and
 * the gRPC server calls talas_token_mint_url and talas_token_backend_key_ok.
 * A struct talas_token is not thread-safe (verification caches results);
 * each worker process builds its own after fork.
 */
#ifndef TALAS_TOKEN_H
#define TALAS_TOKEN_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "core/config.h"

/* What a token may be used for (the scope claim); a bit set. */
enum talas_token_kind {
    TALAS_TOKEN_STREAM = 1,  /* /stream/{id} (original and transcodes) */
    TALAS_TOKEN_PREVIEW = 2, /* /preview/{id} */
    TALAS_TOKEN_HLS = 4,     /* /hls/{id}/... playlists and segments */
    TALAS_TOKEN_ALL = 7,
    /* Not a scope: a caller's flag. Without it a share token (claims
     * "share" and "lid", minted by POST /s/{id}/unlock) is refused
     * (FORBIDDEN); with it, it passes whatever the track, and the caller
     * checks the share (http_shares.h). */
    TALAS_TOKEN_SHARE = 8,
    /* Not a scope either: the request is for the original file (a
     * download, for a share's permissions); checked as STREAM. */
    TALAS_TOKEN_ORIGINAL = 16,
    /* Not a scope: the caller checks a room invite (claim "room", scope
     * "room", minted by talas_token_mint_room), and only then is one
     * accepted; the caller compares claims.room with the room. */
    TALAS_TOKEN_ROOM = 32,
};

/* A room id's length (store/rooms.h). */
#define TALAS_TOKEN_ROOM_ID_LEN 24

enum talas_token_result {
    TALAS_TOKEN_OK,
    TALAS_TOKEN_MISSING,   /* no token where one is required: 401 */
    TALAS_TOKEN_INVALID,   /* malformed, bad signature, wrong algorithm or key, expired, not yet valid,
                             wrong iss/aud: 401 with WWW-Authenticate: Bearer error="invalid_token" */
    TALAS_TOKEN_FORBIDDEN, /* a valid token, but for another track, scope or client address: 403 */
};

struct talas_token_claims {
    char track[17]; /* the track id the token is for */
    char sub[128];  /* the user, "" when absent */
    int kinds;      /* enum talas_token_kind bits */
    time_t exp;
    char share[17];    /* a share token's share id; "" for any other token */
    char listener[17]; /* a share token's listener id (claim "lid") */
    int owner;         /* claim "owner": true: sub owns track (may share it) */
    char room[TALAS_TOKEN_ROOM_ID_LEN + 1]; /* a room invite's room; "" for any other token */
};

struct talas_token; /* opaque; one per worker process, built after fork */

/* Longer tokens are refused without being decoded. */
#define TALAS_TOKEN_MAX 4096

/* Loads the keys named by CONF (secret, public and private key files, the
 * backend key) and checks them: files readable and not empty, HMAC secrets
 * at least as long as their hash (RFC 7518 3.2), PEM keys of the right type
 * (RSA; EC P-256), a private key matching its public key. CONF must outlive
 * the result. Returns 0, or -1 with a malloc'd message naming the file and
 * what is wrong with it. Reads files; no h2o, no LMDB. */
int talas_token_create(const struct talas_config *conf, struct talas_token **auth_r, char **error_r);
void talas_token_free(struct talas_token *auth);

/*
 * Verifies TOKEN (LEN bytes, not NUL-terminated) for a request of KIND on
 * TRACK from CLIENT_IP (text form). On TALAS_TOKEN_OK fills *claims_r (may be
 * NULL). Otherwise *reason_r is a static string for the log ("expired",
 * "algorithm HS256 is not the one pinned for this key", ...). Never
 * allocates on failure; never touches the file system.
 */
enum talas_token_result talas_token_verify(struct talas_token *auth, const char *token, size_t len,
                                         const char *track, enum talas_token_kind kind, const char *client_ip,
                                         struct talas_token_claims *claims_r, const char **reason_r);

/*
 * Mints a signed URL for TRACK: PUBLIC_URL + "/stream/ID?token=..." (KIND
 * STREAM), "/preview/ID?token=..." (PREVIEW) or "/hls/ID/master.m3u8?token="
 * (HLS); the token's scope is KIND, its sub SUB (may be NULL), and it
 * expires after TTL_S seconds (0: auth.default_ttl; more than auth.max_ttl
 * is an error). Signs with the main key (or the first of auth.keys), which
 * must be able to sign (HS* secret, or RS256/ES256 private key). Returns 0
 * with a malloc'd *url_r and the expiry time in *exp_r, or -1 with a
 * malloc'd message.
 */
int talas_token_mint_url(struct talas_token *auth, const char *track, const char *sub,
                        enum talas_token_kind kind, uint64_t ttl_s, char **url_r, time_t *exp_r,
                        char **error_r);

/* Mints a share token: claims share (SHARE), lid (LISTENER), exp (now +
 * TTL_S), no track, no sub. 0 with a malloc'd *token_r (libjwt's: free())
 * and its expiry in *exp_r, or -1 with a malloc'd message. */
int talas_token_mint_share(struct talas_token *auth, const char *share, const char *listener, uint64_t ttl_s,
                           char **token_r, time_t *exp_r, char **error_r);

/* Mints a room invite: claims room (ROOM), scope "room", exp (now +
 * TTL_S), no track, no sub; it lets a logged-in user join that room only
 * (TALAS_TOKEN_ROOM). 0 with a malloc'd *token_r (libjwt's: free()) and
 * its expiry in *exp_r, or -1 with a malloc'd message. */
int talas_token_mint_room(struct talas_token *auth, const char *room, uint64_t ttl_s, char **token_r,
                          time_t *exp_r, char **error_r);

/*
 * Reads the key file PATH whole into a malloc'd, NUL-terminated buffer
 * (*data_r, *len_r; the caller cleanses and frees it): a regular file, not
 * empty, at most 64 KiB; with STRIP, the line ends after the key are not
 * part of it. Returns 0, or -1 with a malloc'd message that starts with
 * WHAT (the configuration key) and names the file.
 */
int talas_token_read_key_file(const char *path, const char *what, int strip, unsigned char **data_r,
                              size_t *len_r, char **error_r);

/* "stream", "preview", "hls" for one kind; "all" for TALAS_TOKEN_ALL. */
const char *talas_token_kind_name(enum talas_token_kind kind);

/* Writes T as RFC 3339 UTC ("2024-06-07T12:00:00Z") into BUF. */
void talas_token_format_time(time_t t, char buf[32]);

/* 1 when AUTHORIZATION (a header value, LEN bytes) is "Bearer " followed by
 * the backend key of auth.backend_key_file, compared in constant time;
 * else 0 (also when no backend key is configured). */
int talas_token_backend_key_ok(struct talas_token *auth, const char *authorization, size_t len);

#endif
