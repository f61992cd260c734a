/*
 * http_shares.c - private links (http_shares.h): a link to one track or
 * to a song (all its versions), with an expiry, an optional password,
 * permissions (stream, download of the original, comment) and an optional
 * listener limit.
 *
 * Entry points: talas_shares_api (POST, GET /api/shares),
 * talas_shares_api_one (GET, DELETE /api/shares/{id}), talas_shares_page
 * (GET /s/{id}: the share page; POST /s/{id}/unlock: a share token),
 * talas_shares_check and talas_shares_count (the media routes, through
 * http_authorize.c and their handlers).
 *
 * Who may: creating takes the backend key, or a user's token with
 * "owner": true naming the track shared (or, for a song, one of its
 * versions) - the backend says who owns what. Listing, reading and
 * revoking take the backend key (every link) or the token of the link's
 * owner (theirs). Unlocking takes nothing but the link (and its password):
 * it answers a share token (claims share, lid) that the share page sends
 * on every media request, so that each one is checked against the link:
 * a revoked or expired link fails at the next range request or segment.
 *
 * Passwords are stored as PBKDF2-HMAC-SHA256 (random 16-byte salt,
 * PBKDF2_ITERATIONS rounds, about 35 ms of CPU: hashed and checked on the
 * worker's pool threads, never on the loop, worker_pool.h), and compared
 * in constant time. Failed unlocks are limited per client
 * address and link: UNLOCK_MAX_FAILURES in UNLOCK_WINDOW_MS, then 429
 * until the window ends (login_limits.h, a table of its own).
 *
 * Analytics: a play is a media request with a share token from the start
 * of a resource (an HLS master playlist; a /stream request without Range
 * or from byte 0); listening time is the length of each HLS segment
 * served; listeners are the distinct listener ids the link let in.
 *
 * Logs: refusals (warn, with the client address, never a token or a
 * password); storage failures (state_shares.c).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/json.h"
#include "core/json_read.h"
#include "core/log.h"
#include "core/util.h"
#include "http/http_authorize.h"
#include "http/http_parse.h"
#include "http/http_response.h"
#include "http/http_shares.h"
#include "http/login_limits.h"
#include "state/state_shares.h"
#include "store/catalog.h"
#include "store/song_versions.h"
#include "worker/worker_pool.h"

#define PBKDF2_ITERATIONS 20000
#define SALT_LEN 16
#define HASH_LEN 32
#define PASSWORD_MAX 256
#define MAX_BODY 8192
#define LISTENERS_MAX 1000000
#define EXPIRES_MAX_S (366 * 24 * 3600)
#define SHARE_TOKEN_TTL_S 3600
#define UNLOCK_MAX_FAILURES 5
#define UNLOCK_WINDOW_MS (15 * 60 * 1000)
#define PAGE_MAX (256 * 1024)

enum caller { CALLER_BACKEND, CALLER_USER };

static struct talas_login_limits *unlock_limits; /* this worker's */

static int unavailable(h2o_req_t *req, enum talas_state_outcome o)
{
    switch (o) {
    case TALAS_STATE_UNAVAILABLE:
        talas_http_send_error(req, 501, "shares_unavailable", "%s", talas_state_shares_no_cluster);
        return 1;
    case TALAS_STATE_FULL:
        talas_http_send_error(req, 507, "storage_full", "the store is full");
        return 1;
    case TALAS_STATE_FAILED:
        talas_http_send_error(req, 500, "storage_error", "the links could not be stored or read");
        return 1;
    default:
        return 0;
    }
}

/* The backend key, or a user's token (claims in *CLAIMS_R; sub not
 * empty). Returns the caller, or -1 when it answered. */
static int caller(const struct talas_worker_ctx *ctx, h2o_req_t *req, struct talas_token_claims *claims_r)
{
    int rc;

    if ((rc = talas_http_backend_or_token(ctx, req, "the backend key or the owner's token is required",
                                          claims_r)) != 0)
        return rc > 0 ? CALLER_BACKEND : -1;
    if (claims_r->sub[0] == '\0' || strlen(claims_r->sub) > TALAS_SHARE_OWNER_MAX) {
        talas_http_refuse(req, 403, "forbidden", "the token names no user (sub)");
        return -1;
    }
    return CALLER_USER;
}

/* ------------------------------------------------------------ passwords */

static void hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int pbkdf2(const char *password, size_t len, const unsigned char *salt, unsigned iterations,
                  unsigned char out[HASH_LEN])
{
    return PKCS5_PBKDF2_HMAC(password, (int)len, salt, SALT_LEN, (int)iterations, EVP_sha256(), HASH_LEN,
                             out) == 1
               ? 0
               : -1;
}

/* "pbkdf2-sha256$ITERATIONS$SALT$HASH" (hex) into OUT. */
static int hash_password(const char *password, size_t len, char out[TALAS_SHARE_HASH_MAX + 1])
{
    unsigned char salt[SALT_LEN], h[HASH_LEN];
    char salt_hex[2 * SALT_LEN + 1], h_hex[2 * HASH_LEN + 1];

    if (getrandom(salt, sizeof(salt), 0) != (ssize_t)sizeof(salt) ||
        pbkdf2(password, len, salt, PBKDF2_ITERATIONS, h) != 0)
        return -1;
    hex(salt, SALT_LEN, salt_hex);
    hex(h, HASH_LEN, h_hex);
    snprintf(out, TALAS_SHARE_HASH_MAX + 1, "pbkdf2-sha256$%u$%s$%s", PBKDF2_ITERATIONS, salt_hex, h_hex);
    OPENSSL_cleanse(h, sizeof(h));
    return 0;
}

static int unhex(const char *s, size_t n, unsigned char *out)
{
    for (size_t i = 0; i < n; i++) {
        int hi = talas_http_hex_value(s[2 * i]), lo = talas_http_hex_value(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

/* 1 when PASSWORD matches STORED; 0 otherwise (a damaged hash too). */
static int password_ok(const char *stored, const char *password, size_t len)
{
    unsigned char salt[SALT_LEN], want[HASH_LEN], got[HASH_LEN];
    const char *p = stored + strlen("pbkdf2-sha256$");
    unsigned long iterations;
    char *end;
    int ok;

    if (strncmp(stored, "pbkdf2-sha256$", 14) != 0)
        return 0;
    iterations = strtoul(p, &end, 10);
    /* never more work than this build would do: a damaged record is no DoS */
    if (end == p || *end != '$' || iterations == 0 || iterations > PBKDF2_ITERATIONS ||
        strlen(end + 1) != 2 * SALT_LEN + 1 + 2 * HASH_LEN || end[1 + 2 * SALT_LEN] != '$' ||
        unhex(end + 1, SALT_LEN, salt) != 0 || unhex(end + 2 + 2 * SALT_LEN, HASH_LEN, want) != 0)
        return 0;
    if (pbkdf2(password, len, salt, (unsigned)iterations, got) != 0)
        return 0;
    ok = CRYPTO_memcmp(got, want, HASH_LEN) == 0;
    OPENSSL_cleanse(got, sizeof(got));
    return ok;
}

/* A password hashed or checked on a pool thread (PBKDF2 costs tens of
 * milliseconds: never on the loop). The job is malloc'd and outlives the
 * request if it must; the request's pool holds a link that detaches it
 * when the client goes away first. */
struct pw_link;

struct pw_job {
    h2o_req_t *req;        /* NULL once the request is gone */
    struct pw_link *link;  /* in req's pool: valid while req is not NULL */
    const struct talas_worker_ctx *ctx;
    struct talas_share share;
    char *password; /* malloc'd, cleansed */
    size_t password_len;
    char listener[TALAS_SHARE_ID_LEN + 1];
    int unlocking; /* 0: hash for a new link; 1: check for an unlock */
    int ok;        /* the result: hashed, or matched */
    char ip[64];
};

struct pw_link {
    struct pw_job *job;
};

static void pw_link_dispose(void *p)
{
    struct pw_link *l = p;

    if (l->job != NULL)
        l->job->req = NULL;
}

static void pw_work(void *arg)
{
    struct pw_job *j = arg;

    if (j->unlocking)
        j->ok = password_ok(j->share.password_hash, j->password, j->password_len);
    else
        j->ok = hash_password(j->password, j->password_len, j->share.password_hash) == 0;
}

static void created(const struct talas_worker_ctx *ctx, h2o_req_t *req, struct talas_share *s, int hashed);
static void unlocked(const struct talas_worker_ctx *ctx, h2o_req_t *req, struct talas_share *s,
                     const char *listener, const char *ip, int matched);

static void pw_done(void *arg, int cancelled)
{
    struct pw_job *j = arg;

    if (j->req != NULL) {
        /* the request outlives the job: its link must not reach back */
        j->link->job = NULL;
        if (cancelled)
            talas_http_send_error(j->req, 503, "shutting_down", "the worker is stopping");
        else if (j->unlocking)
            unlocked(j->ctx, j->req, &j->share, j->listener, j->ip, j->ok);
        else
            created(j->ctx, j->req, &j->share, j->ok);
    }
    OPENSSL_cleanse(j->password, j->password_len);
    free(j->password);
    free(j);
}

/* Hashes (UNLOCKING 0) or checks (1) PASSWORD for S off the loop, then
 * goes on in created() or unlocked(). */
static void pw_submit(const struct talas_worker_ctx *ctx, h2o_req_t *req, const struct talas_share *s,
                      const char *password, size_t len, int unlocking, const char *listener, const char *ip)
{
    struct pw_job *j = xcalloc(1, sizeof(*j));
    struct pw_link *l = h2o_mem_alloc_shared(&req->pool, sizeof(*l), pw_link_dispose);

    j->req = req;
    j->ctx = ctx;
    j->share = *s;
    j->password = xmalloc(len + 1);
    memcpy(j->password, password, len + 1);
    j->password_len = len;
    j->unlocking = unlocking;
    if (listener != NULL)
        memcpy(j->listener, listener, sizeof(j->listener));
    snprintf(j->ip, sizeof(j->ip), "%s", ip != NULL ? ip : "");
    l->job = j;
    j->link = l;
    if (ctx->pool == NULL) { /* a context without threads (tests): here */
        pw_work(j);
        pw_done(j, 0);
        return;
    }
    talas_pool_submit(ctx->pool, pw_work, pw_done, j, 1);
}

/* ----------------------------------------------------------- share JSON */

static void share_json(const struct talas_worker_ctx *ctx, struct talas_json *json,
                       const struct talas_share *s, int analytics)
{
    char perms[32];
    const char *names[] = {"stream", "download", "comment"};
    uint32_t bits[] = {TALAS_SHARE_STREAM, TALAS_SHARE_DOWNLOAD, TALAS_SHARE_COMMENT};
    struct talas_buf url = {0};

    talas_share_permissions_text(s->permissions, perms);
    talas_buf_printf(&url, "%s/s/%s", ctx->conf->http_public_url != NULL ? ctx->conf->http_public_url : "",
                     s->id);
    talas_buf_append(&url, "", 1);
    talas_json_object_begin(json);
    talas_json_key(json, "id");
    talas_json_string(json, s->id);
    talas_json_key(json, "url");
    talas_json_string(json, url.data);
    talas_json_key(json, "track_id");
    talas_json_string(json, s->track[0] ? s->track : NULL);
    talas_json_key(json, "song_id");
    talas_json_string(json, s->song[0] ? s->song : NULL);
    talas_json_key(json, "owner");
    talas_json_string(json, s->owner[0] ? s->owner : NULL);
    talas_json_key(json, "created_ms");
    talas_json_uint(json, s->created_ms);
    talas_json_key(json, "expires_at");
    talas_json_uint(json, s->expires_ms / 1000);
    talas_json_key(json, "expired");
    talas_json_bool(json, talas_wall_ms() >= s->expires_ms);
    talas_json_key(json, "permissions");
    talas_json_array_begin(json);
    for (size_t i = 0; i < 3; i++)
        if (s->permissions & bits[i])
            talas_json_string(json, names[i]);
    talas_json_array_end(json);
    talas_json_key(json, "password");
    talas_json_bool(json, s->password_hash[0] != '\0');
    talas_json_key(json, "max_listeners");
    if (s->max_listeners != 0)
        talas_json_uint(json, s->max_listeners);
    else
        talas_json_null(json);
    if (analytics) {
        talas_json_key(json, "analytics");
        talas_json_object_begin(json);
        talas_json_key(json, "plays");
        talas_json_uint(json, s->plays);
        talas_json_key(json, "listeners");
        talas_json_uint(json, s->listeners);
        talas_json_key(json, "listening_ms");
        talas_json_uint(json, s->listening_ms);
        talas_json_object_end(json);
    }
    talas_json_object_end(json);
    talas_buf_free(&url);
}

static void send_share(const struct talas_worker_ctx *ctx, h2o_req_t *req, int status,
                       const struct talas_share *s)
{
    struct talas_buf body = {0};
    struct talas_json json;

    talas_json_init(&json, &body);
    share_json(ctx, &json, s, 1);
    talas_http_send_json_doc(req, status, &body);
}

/* ------------------------------------------------------------ creating */

/* Reads the body (talas_http_read_json_body) and answers a member that FN
 * refused (*FIELD: *REASON): 1 when it answered, 0 when every member was
 * taken. */
static int body_refused(h2o_req_t *req, int flags, talas_json_member_fn *fn, void *arg, const char *const *field,
                        const char *const *reason)
{
    if (talas_http_read_json_body(req, MAX_BODY, flags, fn, arg) != 0)
        return 1;
    if (*field != NULL) {
        talas_http_send_error(req, 400, "invalid_parameter", "%s: %s", *field, *reason);
        return 1;
    }
    return 0;
}

struct create_body {
    char track[TALAS_TRACK_ID_LEN + 1], song[TALAS_SONG_ID_LEN + 1];
    int has_expires_in, has_expires_at, has_permissions;
    int64_t expires_in, expires_at, max_listeners;
    char *password;
    size_t password_len;
    uint32_t permissions;
    const char *bad_field, *bad_reason;
    char field[72];
    h2o_mem_pool_t *pool;
};

#define BAD(f, why)                                                                                          \
    do {                                                                                                     \
        b->bad_field = (f);                                                                                  \
        b->bad_reason = (why);                                                                               \
        return 1;                                                                                            \
    } while (0)

static int permission_member(const char *key, const struct talas_json_value *v, void *arg)
{
    struct create_body *b = arg;

    (void)key;
    if (strcmp(v->str, "stream") == 0)
        b->permissions |= TALAS_SHARE_STREAM;
    else if (strcmp(v->str, "download") == 0)
        b->permissions |= TALAS_SHARE_DOWNLOAD;
    else if (strcmp(v->str, "comment") == 0)
        b->permissions |= TALAS_SHARE_COMMENT;
    else
        BAD("permissions", "each must be \"stream\", \"download\" or \"comment\"");
    return 0;
}

static int create_member(const char *key, const struct talas_json_value *v, void *arg)
{
    struct create_body *b = arg;
    const char *error;

    if (strcmp(key, "track_id") == 0 || strcmp(key, "song_id") == 0) {
        int track = key[0] == 't';
        if (v->type != TALAS_JSON_STRING || !talas_track_id_valid(v->str, v->len))
            BAD(track ? "track_id" : "song_id", track ? "must be a track id" : "must be a song id");
        memcpy(track ? b->track : b->song, v->str, v->len + 1);
        return 0;
    }
    if (strcmp(key, "expires_in") == 0) {
        if (v->type != TALAS_JSON_INTEGER || v->num < 1 || v->num > EXPIRES_MAX_S)
            BAD("expires_in", "must be an integer of seconds, 1 .. 31622400");
        b->expires_in = v->num;
        b->has_expires_in = 1;
        return 0;
    }
    if (strcmp(key, "expires_at") == 0) {
        if (v->type != TALAS_JSON_INTEGER || v->num < 1)
            BAD("expires_at", "must be an integer (seconds since the epoch)");
        b->expires_at = v->num;
        b->has_expires_at = 1;
        return 0;
    }
    if (strcmp(key, "password") == 0) {
        if (v->type == TALAS_JSON_NULL)
            return 0;
        if (v->type != TALAS_JSON_STRING || v->len == 0 || v->len > PASSWORD_MAX)
            BAD("password", "must be a string of 1 .. 256 bytes, or null");
        b->password = h2o_mem_alloc_pool(b->pool, v->len + 1);
        memcpy(b->password, v->str, v->len + 1);
        b->password_len = v->len;
        return 0;
    }
    if (strcmp(key, "permissions") == 0) {
        if (v->type != TALAS_JSON_ARRAY)
            BAD("permissions", "must be an array of \"stream\", \"download\", \"comment\"");
        b->has_permissions = 1;
        if (talas_json_read_string_array(v->str, v->len, permission_member, b, &error) != 0) {
            if (b->bad_field == NULL)
                BAD("permissions", "must be an array of strings");
            return 1;
        }
        return 0;
    }
    if (strcmp(key, "max_listeners") == 0) {
        if (v->type == TALAS_JSON_NULL)
            return 0;
        if (v->type != TALAS_JSON_INTEGER || v->num < 1 || v->num > LISTENERS_MAX)
            BAD("max_listeners", "must be an integer, 1 .. 1000000, or null");
        b->max_listeners = v->num;
        return 0;
    }
    snprintf(b->field, sizeof(b->field), "%.64s", key);
    BAD(b->field,
        "not a member (track_id, song_id, expires_in, expires_at, password, permissions, max_listeners)");
}

/* Whether TRACK is SONG's version (or is TRACK itself when SONG is ""):
 * 1, 0, or -1 on a storage error. */
static int covers(const struct talas_worker_ctx *ctx, const char *share_track, const char *share_song,
                  const char *track)
{
    char song[TALAS_SONG_ID_LEN + 1];
    MDB_txn *txn;
    int rc;

    if (share_track[0] != '\0')
        return strcmp(share_track, track) == 0;
    if (talas_storage_read_begin(ctx->storage, &txn) != 0)
        return -1;
    rc = talas_track_song_get(ctx->storage, txn, track, song);
    mdb_txn_abort(txn);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return -1;
    return strcmp(song, share_song) == 0;
}

/* The target exists: 1, 0, -1 (storage). */
static int target_exists(const struct talas_worker_ctx *ctx, const char *track, const char *song)
{
    struct talas_track t;
    struct talas_song s;
    MDB_txn *txn;
    int rc;

    if (talas_storage_read_begin(ctx->storage, &txn) != 0)
        return -1;
    if (track[0] != '\0') {
        rc = talas_catalog_get(ctx->storage, txn, track, &t);
    } else {
        memset(&s, 0, sizeof(s));
        rc = talas_song_get(ctx->storage, txn, song, &s);
        if (rc == 0)
            talas_song_free(&s);
    }
    mdb_txn_abort(txn);
    return rc == 0 ? 1 : rc == MDB_NOTFOUND ? 0 : -1;
}

static int create(const struct talas_worker_ctx *ctx, h2o_req_t *req)
{
    struct talas_token_claims claims;
    struct create_body b;
    struct talas_share s;
    uint64_t now = talas_wall_ms();
    int who, rc;

    if ((who = caller(ctx, req, &claims)) < 0)
        return 0;
    memset(&b, 0, sizeof(b));
    b.pool = &req->pool;
    if (body_refused(req, TALAS_HTTP_BODY_NESTED, create_member, &b, &b.bad_field, &b.bad_reason))
        return 0;
    if ((b.track[0] != '\0') == (b.song[0] != '\0')) {
        talas_http_send_error(req, 400, "invalid_parameter", "track_id or song_id: exactly one is required");
        return 0;
    }
    if (b.has_expires_in == b.has_expires_at) {
        talas_http_send_error(req, 400, "invalid_parameter",
                              "expires_in or expires_at: exactly one is required");
        return 0;
    }
    if (b.has_expires_at &&
        (b.expires_at <= (int64_t)(now / 1000) || b.expires_at > (int64_t)(now / 1000) + EXPIRES_MAX_S)) {
        talas_http_send_error(req, 400, "invalid_parameter",
                              "expires_at: must be in the future, within a year");
        return 0;
    }
    if (!b.has_permissions || b.permissions == 0) {
        talas_http_send_error(req, 400, "invalid_parameter",
                              "permissions: required, one or more of \"stream\", \"download\", \"comment\"");
        return 0;
    }
    if (ctx->records != NULL) {
        unavailable(req, TALAS_STATE_UNAVAILABLE);
        return 0;
    }
    if ((rc = target_exists(ctx, b.track, b.song)) <= 0) {
        if (rc < 0)
            talas_http_send_error(req, 500, "storage_error", "the catalog could not be read");
        else
            talas_http_send_error(req, 404, "not_found", "%s", b.track[0] ? "no such track" : "no such song");
        return 0;
    }
    if (who == CALLER_USER) {
        /* the backend names the owner: "owner": true with the track */
        if (!claims.owner || claims.track[0] == '\0' ||
            (rc = covers(ctx, b.track, b.song, claims.track)) == 0) {
            talas_http_refuse(req, 403, "not_owner",
                              "only the backend key, or a token with \"owner\": true for this track (or one of this "
                              "song's versions), may share it");
            return 0;
        }
        if (rc < 0) {
            talas_http_send_error(req, 500, "storage_error", "the catalog could not be read");
            return 0;
        }
    }
    memset(&s, 0, sizeof(s));
    talas_share_id_make(s.id);
    strcpy(s.track, b.track);
    strcpy(s.song, b.song);
    if (who == CALLER_USER)
        strcpy(s.owner, claims.sub);
    s.created_ms = now;
    s.expires_ms = b.has_expires_in ? now + (uint64_t)b.expires_in * 1000 : (uint64_t)b.expires_at * 1000;
    s.permissions = b.permissions;
    s.max_listeners = (uint32_t)b.max_listeners;
    if (b.password != NULL) {
        pw_submit(ctx, req, &s, b.password, b.password_len, 0, NULL, NULL);
        OPENSSL_cleanse(b.password, b.password_len);
        return 0;
    }
    created(ctx, req, &s, 1);
    return 0;
}

/* The end of a creation, on the loop: S with its password hashed (HASHED). */
static void created(const struct talas_worker_ctx *ctx, h2o_req_t *req, struct talas_share *s, int hashed)
{
    if (!hashed) {
        talas_http_send_error(req, 500, "internal_error", "the password could not be hashed");
        return;
    }
    if (unavailable(req, talas_state_share_create(ctx, s)))
        return;
    send_share(ctx, req, 201, s);
}

/* ------------------------------------------------------------ listing */

static int list_one(const struct talas_share *s, void *arg)
{
    void **a = arg;

    share_json(a[0], a[1], s, 1);
    return 0;
}

static int list(const struct talas_worker_ctx *ctx, h2o_req_t *req)
{
    struct talas_token_claims claims;
    struct talas_buf body = {0};
    struct talas_json json;
    void *a[2] = {(void *)ctx, &json};
    enum talas_state_outcome o;
    int who;

    if ((who = caller(ctx, req, &claims)) < 0)
        return 0;
    talas_json_init(&json, &body);
    talas_json_object_begin(&json);
    talas_json_key(&json, "shares");
    talas_json_array_begin(&json);
    o = talas_state_share_list(ctx, who == CALLER_BACKEND ? NULL : claims.sub, list_one, a);
    if (unavailable(req, o)) {
        talas_buf_free(&body);
        return 0;
    }
    talas_json_array_end(&json);
    talas_json_object_end(&json);
    talas_http_send_json_doc(req, 200, &body);
    return 0;
}

int talas_shares_api(const struct talas_worker_ctx *ctx, h2o_req_t *req)
{
    if (talas_http_method_is(req, "POST"))
        return create(ctx, req);
    if (talas_http_method_is(req, "GET") || talas_http_method_is(req, "HEAD"))
        return list(ctx, req);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("GET, HEAD, POST"));
    talas_http_send_error(req, 405, "method_not_allowed", "use GET or POST");
    return 0;
}

int talas_shares_api_one(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *id, size_t len)
{
    struct talas_token_claims claims;
    struct talas_share s;
    char sid[TALAS_SHARE_ID_LEN + 1];
    enum talas_state_outcome o;
    int del = talas_http_method_is(req, "DELETE"), who;

    if (!del && talas_http_reject_unless_get(req)) {
        return 0;
    }
    if ((who = caller(ctx, req, &claims)) < 0)
        return 0;
    if (len != TALAS_SHARE_ID_LEN || !talas_track_id_valid(id, len)) {
        talas_http_send_error(req, 404, "share_not_found", "no such link (revoked or unknown)");
        return 0;
    }
    memcpy(sid, id, len);
    sid[len] = '\0';
    o = talas_state_share_get(ctx, sid, &s);
    if (unavailable(req, o))
        return 0;
    /* another user's link is as unknown as one that never was */
    if (o == TALAS_STATE_NOT_FOUND || (who == CALLER_USER && strcmp(s.owner, claims.sub) != 0)) {
        talas_http_send_error(req, 404, "share_not_found", "no such link (revoked or unknown)");
        return 0;
    }
    if (!del) {
        send_share(ctx, req, 200, &s);
        return 0;
    }
    o = talas_state_share_revoke(ctx, sid, &s);
    if (unavailable(req, o))
        return 0;
    if (o == TALAS_STATE_NOT_FOUND) {
        talas_http_send_error(req, 404, "share_not_found", "no such link (revoked or unknown)");
        return 0;
    }
    log_info("shares: link %s revoked", sid);
    req->res.status = 204;
    req->res.reason = "No Content";
    h2o_send_inline(req, NULL, 0);
    return 0;
}

/* ------------------------------------------------------- the share page */

/* Reads the share page (http.www_root/share.html) into the request's
 * pool: a small file, like the static files h2o serves on the loop. */
static int page(const struct talas_worker_ctx *ctx, h2o_req_t *req)
{
    struct talas_buf body = {0};
    char path[4096], buf[16384];
    struct stat sb;
    ssize_t n;
    int fd;

    if (ctx->conf->http_www_root == NULL ||
        (size_t)snprintf(path, sizeof(path), "%s/share.html", ctx->conf->http_www_root) >= sizeof(path) ||
        (fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
        talas_http_send_error(req, 404, "no_share_page",
                              "the share page is not installed (http.www_root/share.html)");
        return 0;
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size > PAGE_MAX) {
        close(fd);
        talas_http_send_error(req, 500, "internal_error", "the share page could not be read");
        return 0;
    }
    while ((n = read(fd, buf, sizeof(buf))) > 0 && body.len <= PAGE_MAX)
        talas_buf_append(&body, buf, (size_t)n);
    close(fd);
    if (n < 0) {
        talas_buf_free(&body);
        talas_http_send_error(req, 500, "internal_error", "the share page could not be read");
        return 0;
    }
    /* the link is in the address: no Referer carries it elsewhere */
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-frame-options"), 0, NULL,
                          H2O_STRLIT("DENY"));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("referrer-policy"), 0, NULL,
                          H2O_STRLIT("no-referrer"));
    talas_http_send_body(req, 200, "text/html; charset=utf-8", &body);
    talas_buf_free(&body);
    return 0;
}

/* Answers 404 or 410 unless S (outcome O) is a live link; -1 when it
 * answered. */
static int live(h2o_req_t *req, enum talas_state_outcome o, const struct talas_share *s)
{
    if (unavailable(req, o))
        return -1;
    if (o == TALAS_STATE_NOT_FOUND) {
        talas_http_refuse(req, 404, "share_not_found", "no such link (revoked or unknown)");
        return -1;
    }
    if (talas_wall_ms() >= s->expires_ms) {
        talas_http_refuse(req, 410, "share_expired", "this link has expired");
        return -1;
    }
    return 0;
}

struct unlock_body {
    char *password;
    size_t password_len;
    char listener[TALAS_SHARE_ID_LEN + 1];
    const char *bad_field, *bad_reason;
    char field[72];
    h2o_mem_pool_t *pool;
};

static int unlock_member(const char *key, const struct talas_json_value *v, void *arg)
{
    struct unlock_body *b = arg;

    if (strcmp(key, "password") == 0) {
        if (v->type == TALAS_JSON_NULL)
            return 0;
        if (v->type != TALAS_JSON_STRING || v->len > PASSWORD_MAX)
            BAD("password", "must be a string of at most 256 bytes");
        b->password = h2o_mem_alloc_pool(b->pool, v->len + 1);
        memcpy(b->password, v->str, v->len + 1);
        b->password_len = v->len;
        return 0;
    }
    if (strcmp(key, "listener") == 0) {
        if (v->type == TALAS_JSON_NULL)
            return 0;
        if (v->type != TALAS_JSON_STRING || v->len != TALAS_SHARE_ID_LEN ||
            !talas_track_id_valid(v->str, v->len))
            BAD("listener", "must be the listener id of an earlier unlock");
        memcpy(b->listener, v->str, v->len + 1);
        return 0;
    }
    snprintf(b->field, sizeof(b->field), "%.64s", key);
    BAD(b->field, "not a member (password, listener)");
}

/* The tracks of S, for the page: the track, or the song's versions. */
static void tracks_json(const struct talas_worker_ctx *ctx, struct talas_json *json,
                        const struct talas_share *s)
{
    struct talas_song song;
    MDB_txn *txn;

    talas_json_key(json, "tracks");
    talas_json_array_begin(json);
    if (talas_storage_read_begin(ctx->storage, &txn) != 0) {
        talas_json_array_end(json);
        return;
    }
    memset(&song, 0, sizeof(song));
    if (s->track[0] != '\0') {
        song.count = 1;
        song.members = xcalloc(1, sizeof(*song.members));
        strcpy(song.members[0].track, s->track);
        song.members[0].label = "";
    } else if (talas_song_get(ctx->storage, txn, s->song, &song) != 0) {
        memset(&song, 0, sizeof(song));
    }
    for (size_t i = 0; i < song.count; i++) {
        struct talas_track t;
        if (talas_catalog_get(ctx->storage, txn, song.members[i].track, &t) != 0)
            continue;
        talas_json_object_begin(json);
        talas_json_key(json, "id");
        talas_json_string(json, t.id);
        talas_json_key(json, "title");
        talas_json_string(json, t.title);
        talas_json_key(json, "artist");
        talas_json_string(json, t.artist);
        talas_json_key(json, "album");
        talas_json_string(json, t.album);
        talas_json_key(json, "version");
        talas_json_string(
            json, song.members[i].label != NULL && song.members[i].label[0] ? song.members[i].label : NULL);
        talas_json_key(json, "duration_ms");
        talas_json_uint(json, t.duration_ms);
        talas_json_object_end(json);
    }
    talas_song_free(&song);
    mdb_txn_abort(txn);
    talas_json_array_end(json);
}

static int unlock(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *sid)
{
    struct unlock_body b;
    struct talas_share s;
    enum talas_state_outcome o;
    char ip[64], key[TALAS_SHARE_ID_LEN + 8];
    uint64_t now = talas_now_ms(), retry_ms = 0;

    memset(&b, 0, sizeof(b));
    b.pool = &req->pool;
    if (req->entity.len > 0 && body_refused(req, 0, unlock_member, &b, &b.bad_field, &b.bad_reason))
        return 0;
    o = talas_state_share_get(ctx, sid, &s);
    if (live(req, o, &s) != 0)
        return 0;
    talas_http_client_ip(req, ip);
    snprintf(key, sizeof(key), "share:%s", sid);
    if (s.password_hash[0] != '\0') {
        if (unlock_limits == NULL)
            unlock_limits = talas_login_limits_new("shares", UNLOCK_MAX_FAILURES, UNLOCK_WINDOW_MS);
        if (talas_login_limits_blocked(unlock_limits, ip, key, now, &retry_ms)) {
            char retry[24];
            snprintf(retry, sizeof(retry), "%llu", (unsigned long long)(retry_ms + 999) / 1000);
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL,
                           h2o_strdup(&req->pool, retry, SIZE_MAX).base, strlen(retry));
            talas_http_refuse(req, 429, "too_many_attempts", "too many wrong passwords for this link: try again later");
            return 0;
        }
        if (b.password == NULL) {
            talas_http_refuse(req, 401, "password_required", "this link needs its password");
            return 0;
        }
        pw_submit(ctx, req, &s, b.password, b.password_len, 1, b.listener, ip);
        OPENSSL_cleanse(b.password, b.password_len);
        return 0;
    }
    unlocked(ctx, req, &s, b.listener, ip, 1);
    return 0;
}

/* The end of an unlock, on the loop: the password MATCHED (or there is
 * none); LISTENER "" for a new one. */
static void unlocked(const struct talas_worker_ctx *ctx, h2o_req_t *req, struct talas_share *s,
                     const char *listener_in, const char *ip, int matched)
{
    struct talas_buf body = {0};
    struct talas_json json;
    enum talas_state_outcome o;
    char key[TALAS_SHARE_ID_LEN + 8], *token = NULL, *error = NULL, expires[32];
    char listener[TALAS_SHARE_ID_LEN + 1];
    const char *sid = s->id;
    uint64_t ttl;
    time_t exp;

    snprintf(key, sizeof(key), "share:%s", sid);
    if (s->password_hash[0] != '\0') {
        if (!matched) {
            talas_login_limits_failed(unlock_limits, ip, key, talas_now_ms());
            talas_http_refuse(req, 403, "wrong_password", "wrong password for this link");
            return;
        }
        talas_login_limits_succeeded(unlock_limits, ip, key);
    }
    snprintf(listener, sizeof(listener), "%s", listener_in);
    if (listener[0] == '\0')
        talas_share_id_make(listener);
    o = talas_state_share_admit(ctx, sid, listener);
    if (o == TALAS_STATE_REFUSED) {
        talas_http_refuse(req, 403, "listener_limit_reached", "this link has all the listeners it may have");
        return;
    }
    if (live(req, o, s) != 0)
        return;
    ttl = (s->expires_ms - talas_wall_ms() + 999) / 1000;
    if (ttl > SHARE_TOKEN_TTL_S)
        ttl = SHARE_TOKEN_TTL_S;
    if (talas_token_mint_share(ctx->token, sid, listener, ttl, &token, &exp, &error) != 0) {
        log_error("shares: minting a share token failed: %s", error);
        free(error);
        talas_http_send_error(req, 500, "internal_error", "no share token could be made");
        return;
    }
    talas_token_format_time(exp, expires);
    talas_json_init(&json, &body);
    talas_json_object_begin(&json);
    talas_json_key(&json, "token");
    talas_json_string(&json, token);
    talas_json_key(&json, "expires_at");
    talas_json_string(&json, expires);
    talas_json_key(&json, "listener");
    talas_json_string(&json, listener);
    talas_json_key(&json, "share");
    talas_json_object_begin(&json);
    talas_json_key(&json, "id");
    talas_json_string(&json, s->id);
    talas_json_key(&json, "kind");
    talas_json_string(&json, s->track[0] ? "track" : "song");
    talas_json_key(&json, "permissions");
    talas_json_array_begin(&json);
    if (s->permissions & TALAS_SHARE_STREAM)
        talas_json_string(&json, "stream");
    if (s->permissions & TALAS_SHARE_DOWNLOAD)
        talas_json_string(&json, "download");
    if (s->permissions & TALAS_SHARE_COMMENT)
        talas_json_string(&json, "comment");
    talas_json_array_end(&json);
    talas_json_key(&json, "expires_at");
    talas_json_uint(&json, s->expires_ms / 1000);
    tracks_json(ctx, &json, s);
    talas_json_object_end(&json);
    talas_json_object_end(&json);
    talas_http_send_json_doc(req, 200, &body);
    free(token);
}

int talas_shares_page(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *rest, size_t len)
{
    struct talas_share s;
    char sid[TALAS_SHARE_ID_LEN + 1];
    int is_unlock = len == TALAS_SHARE_ID_LEN + 7 && memcmp(rest + TALAS_SHARE_ID_LEN, "/unlock", 7) == 0;

    if (!(len == TALAS_SHARE_ID_LEN || is_unlock) || !talas_track_id_valid(rest, TALAS_SHARE_ID_LEN)) {
        talas_http_send_error(req, 404, "share_not_found", "no such link (revoked or unknown)");
        return 0;
    }
    memcpy(sid, rest, TALAS_SHARE_ID_LEN);
    sid[TALAS_SHARE_ID_LEN] = '\0';
    if (is_unlock) {
        if (!talas_http_method_is(req, "POST")) {
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("POST"));
            talas_http_send_error(req, 405, "method_not_allowed", "use POST");
            return 0;
        }
        return unlock(ctx, req, sid);
    }
    if (talas_http_reject_unless_get(req))
        return 0;
    if (live(req, talas_state_share_get(ctx, sid, &s), &s) != 0)
        return 0;
    return page(ctx, req);
}

/* ---------------------------------------------------- the media routes */

int talas_shares_check(const struct talas_worker_ctx *ctx, h2o_req_t *req,
                       const struct talas_token_claims *claims, const char *track, enum talas_share_use use)
{
    static const uint32_t need[] = {TALAS_SHARE_STREAM, TALAS_SHARE_DOWNLOAD, TALAS_SHARE_COMMENT};
    static const char *const code[] = {"stream_not_granted", "download_not_granted", "comment_not_granted"};
    static const char *const what[] = {"this link does not grant streaming",
                                       "this link does not grant downloading the original file",
                                       "this link does not grant comments"};
    struct talas_share s;
    int rc;

    if (live(req, talas_state_share_get(ctx, claims->share, &s), &s) != 0)
        return -1;
    if (track != NULL && (rc = covers(ctx, s.track, s.song, track)) != 1) {
        if (rc < 0)
            talas_http_send_error(req, 500, "storage_error", "the catalog could not be read");
        else
            talas_http_refuse(req, 403, "forbidden", "this link is for another track");
        return -1;
    }
    if (!(s.permissions & need[use])) {
        talas_http_refuse(req, 403, code[use], what[use]);
        return -1;
    }
    return 0;
}

void talas_shares_count(const struct talas_worker_ctx *ctx, const struct talas_token_claims *claims,
                        uint64_t plays, uint64_t listening_ms)
{
    if (claims->share[0] == '\0' || (plays == 0 && listening_ms == 0))
        return;
    talas_state_share_count(ctx, claims->share, plays, listening_ms);
}

int talas_shares_from_start(h2o_req_t *req)
{
    const h2o_iovec_t *range = talas_http_header(req, H2O_TOKEN_RANGE);
    size_t i = 0;

    if (range == NULL)
        return 1;
    /* "bytes=0-..." (white space allowed around the unit's "=") */
    while (i < range->len && range->base[i] != '=')
        i++;
    i++;
    while (i < range->len && range->base[i] == ' ')
        i++;
    return i + 1 < range->len && range->base[i] == '0' && range->base[i + 1] == '-';
}
