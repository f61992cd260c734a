/*
 * http_api.c - /api/health, /api/stats, /api/profiles, /api/tracks and
 * POST /api/stream-url.
 *
 * Entry points are declared in http_api.h. Every handler holds one LMDB
 * read transaction for the time it takes to build its body (microseconds:
 * LMDB reads come from the memory map), never across loop iterations.
 *
 * The backend key (auth.backend_key_file, "Authorization: Bearer KEY")
 * opens POST /api/stream-url, and makes /api/tracks add a signed
 * stream_url to every track when auth.required is true. Logs: requests
 * refused for a wrong backend key, and URLs that could not be minted.
 */
#include <errno.h>
#include <stddef.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "state/state.h"
#include "cluster/cluster_bus.h"
#include "store/cache.h"
#include "store/catalog.h"
#include "core/config.h"
#include "http/http_api.h"
#include "http/http_versions.h"
#include "http/http_profile.h"
#include "http/http_authorize.h"
#include "http/http_response.h"
#include "core/json.h"
#include "core/json_read.h"
#include "core/log.h"
#include "core/mint_args.h"
#include "store/covers.h"
#include "store/peaks.h"

#define LIST_LIMIT_DEFAULT 100
#define LIST_LIMIT_MAX 1000

static void number_or_null(struct talas_json *json, const char *key, uint32_t v)
{
    talas_json_key(json, key);
    if (v != 0)
        talas_json_uint(json, v);
    else
        talas_json_null(json);
}

/* A track's members, its object left open; STREAM_URL: a signed URL to
 * add, or NULL. */
static void track_json_open(struct talas_json *json, const struct talas_track *t, const char *stream_url)
{
    talas_json_object_begin(json);
    talas_json_key(json, "id");
    talas_json_string(json, t->id);
    talas_json_key(json, "title");
    talas_json_string(json, t->title);
    talas_json_key(json, "artist");
    talas_json_string(json, t->artist);
    talas_json_key(json, "album");
    talas_json_string(json, t->album);
    talas_json_key(json, "album_artist");
    talas_json_string(json, t->album_artist);
    talas_json_key(json, "genre");
    talas_json_string(json, t->genre);
    /* numbers the tags did not give are null */
    number_or_null(json, "disc", t->disc_number);
    number_or_null(json, "track", t->track_number);
    number_or_null(json, "year", t->year);
    talas_json_key(json, "duration_ms");
    talas_json_uint(json, t->duration_ms);
    talas_json_key(json, "codec");
    talas_json_string(json, t->codec);
    talas_json_key(json, "container");
    talas_json_string(json, t->container);
    talas_json_key(json, "sample_rate");
    talas_json_uint(json, t->sample_rate);
    talas_json_key(json, "channels");
    talas_json_uint(json, t->channels);
    talas_json_key(json, "bit_rate");
    talas_json_uint(json, t->bit_rate);
    talas_json_key(json, "size");
    talas_json_uint(json, t->size);
    talas_json_key(json, "mime");
    talas_json_string(json, t->mime);
    /* loudness, replay_gain, tempo: null until the scanner measured them */
    talas_track_analysis_json(json, &t->analysis);
    if (stream_url != NULL) {
        talas_json_key(json, "stream_url");
        talas_json_string(json, stream_url);
    }
}

static void track_json(struct talas_json *json, const struct talas_track *t, const char *stream_url)
{
    track_json_open(json, t, stream_url);
    talas_json_object_end(json);
}

static int begin(const struct talas_worker_ctx *ctx, h2o_req_t *req, MDB_txn **txn_r)
{
    int rc = talas_storage_read_begin(ctx->storage, txn_r);

    if (rc != 0) {
        log_error("%s: mdb_txn_begin() failed: %s", __func__, mdb_strerror(rc));
        talas_http_send_error(req, 500, "storage_error", "the catalog could not be read");
        return -1;
    }
    return 0;
}

int talas_api_stats(const struct talas_worker_ctx *ctx, h2o_req_t *req)
{
    static const struct {
        const char *name;
        size_t offset;
    } fields[] = {
#define F(x) {#x, offsetof(struct talas_cache_stats, x)}
        F(entries),          F(chunks),         F(bytes),  F(max_size),      F(hits),
        F(misses),           F(transcodes_started),       F(transcodes_completed),
        F(transcodes_cancelled), F(transcodes_failed),    F(bytes_encoded), F(encode_ms),
        F(evictions),        F(map_full_retries),
#undef F
    };
    struct talas_cache_stats stats;
    uint64_t peaks[2], covers[2];
    struct talas_buf body = {0};
    struct talas_json json;
    MDB_txn *txn;
    int rc;

    if (talas_http_reject_unless_get(req))
        return 0;
    if (begin(ctx, req, &txn) != 0)
        return 0;
    rc = talas_cache_stats_get(ctx->storage, txn, &stats);
    if (rc == 0)
        rc = talas_storage_counters_get(ctx->storage, txn, TALAS_PEAKS_COUNTERS, peaks, 2);
    if (rc == 0)
        rc = talas_storage_counters_get(ctx->storage, txn, TALAS_COVERS_COUNTERS, covers, 2);
    mdb_txn_abort(txn);
    if (rc != 0) {
        talas_http_send_error(req, 500, "storage_error", "the cache's figures could not be read");
        return 0;
    }
    talas_json_init(&json, &body);
    talas_json_object_begin(&json);
    talas_json_key(&json, "cache");
    talas_json_object_begin(&json);
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        uint64_t v;
        memcpy(&v, (const char *)&stats + fields[i].offset, sizeof(v));
        talas_json_key(&json, fields[i].name);
        talas_json_uint(&json, v);
    }
    talas_json_object_end(&json);
    /* whole-track decodes for waveforms (http_peaks.c) */
    talas_json_key(&json, "peaks");
    talas_json_object_begin(&json);
    talas_json_key(&json, "computed");
    talas_json_uint(&json, peaks[0]);
    talas_json_key(&json, "failed");
    talas_json_uint(&json, peaks[1]);
    talas_json_object_end(&json);
    /* cover art resizes (Subsonic getCoverArt with a size): a request
     * answered from the covers database counts nothing */
    talas_json_key(&json, "covers");
    talas_json_object_begin(&json);
    talas_json_key(&json, "resized");
    talas_json_uint(&json, covers[0]);
    talas_json_key(&json, "failed");
    talas_json_uint(&json, covers[1]);
    talas_json_object_end(&json);
    talas_json_object_end(&json);
    talas_http_send_json_doc(req, 200, &body);
    return 0;
}

int talas_api_profiles(const struct talas_worker_ctx *ctx, h2o_req_t *req)
{
    const struct talas_config *conf = ctx->conf;
    struct talas_buf body = {0};
    struct talas_json json;

    if (talas_http_reject_unless_get(req))
        return 0;
    talas_json_init(&json, &body);
    talas_json_object_begin(&json);
    talas_json_key(&json, "profiles");
    talas_json_array_begin(&json);
    for (size_t i = 0; i < conf->transcode_profile_count; i++)
        talas_http_profile_json(&json, &conf->transcode_profiles[i]);
    talas_json_array_end(&json);
    talas_json_object_end(&json);
    talas_http_send_json_doc(req, 200, &body);
    return 0;
}

int talas_api_health(const struct talas_worker_ctx *ctx, h2o_req_t *req)
{
    struct talas_scan_status scan;
    struct talas_buf body = {0};
    struct talas_json json;
    MDB_txn *txn;
    int have_scan, healthy = 1;
    const char *redis = NULL;

    if (talas_http_reject_unless_get(req))
        return 0;
    if (begin(ctx, req, &txn) != 0)
        return 0;
    have_scan = talas_catalog_scan_status_get(ctx->storage, txn, &scan) == 0;
    mdb_txn_abort(txn);
    /* a scanner killed mid-scan cannot clear its flag: a dead pid means the
     * scan is over (interrupted), not running */
    if (have_scan && scan.running && scan.pid > 0 && kill(scan.pid, 0) == -1 && errno == ESRCH)
        scan.running = 0;

    /* cluster mode: without Redis the node serves on its own (degraded) */
    if (ctx->cluster != NULL)
        healthy = talas_cluster_bus_healthy(ctx->cluster, &redis);
    talas_json_init(&json, &body);
    talas_json_object_begin(&json);
    talas_json_key(&json, "status");
    talas_json_string(&json, healthy ? "ok" : "degraded");
    talas_json_key(&json, "version");
    talas_json_string(&json, PACKAGE_VERSION);
    talas_json_key(&json, "pid");
    talas_json_int(&json, getpid());
    talas_json_key(&json, "worker");
    talas_json_int(&json, ctx->slot);
    talas_json_key(&json, "generation");
    talas_json_uint(&json, ctx->generation);
    talas_json_key(&json, "scan");
    if (have_scan) {
        talas_json_object_begin(&json);
        talas_json_key(&json, "running");
        talas_json_bool(&json, scan.running);
        talas_json_key(&json, "started_at");
        talas_json_uint(&json, scan.started_at);
        talas_json_key(&json, "finished_at");
        talas_json_uint(&json, scan.finished_at);
        talas_json_key(&json, "files");
        talas_json_uint(&json, scan.files);
        talas_json_key(&json, "tracks");
        talas_json_uint(&json, scan.tracks);
        talas_json_key(&json, "errors");
        talas_json_uint(&json, scan.errors);
        /* the analysis pass of the scan: tracks measured of those to measure */
        talas_json_key(&json, "to_analyse");
        talas_json_uint(&json, scan.to_analyse);
        talas_json_key(&json, "analysed");
        talas_json_uint(&json, scan.analysed);
        talas_json_object_end(&json);
    } else {
        talas_json_null(&json);
    }
    /* cluster mode: the record store, "degraded" while it cannot serve */
    talas_state_health(ctx, &json);
    if (ctx->cluster != NULL) {
        talas_json_key(&json, "node");
        talas_json_string(&json, talas_cluster_bus_node(ctx->cluster));
        talas_json_key(&json, "redis");
        talas_json_string(&json, redis);
    }
    talas_json_object_end(&json);
    talas_http_send_json_doc(req, 200, &body);
    return 0;
}

/* Reads a non-negative integer parameter; answers 400 and returns -1 when
 * it is malformed or above MAX. */
static int uint_param(h2o_req_t *req, const char *name, size_t def, size_t max, size_t *v_r)
{
    h2o_iovec_t v;
    unsigned long long n;
    char *end;
    int found = talas_http_query_param(req, name, &v);

    *v_r = def;
    if (found == 0)
        return 0;
    errno = 0;
    if (found == 1 && v.len > 0 && v.base[0] >= '0' && v.base[0] <= '9') {
        n = strtoull(v.base, &end, 10);
        if (errno == 0 && *end == '\0' && n <= max) {
            *v_r = (size_t)n;
            return 0;
        }
    }
    talas_http_send_error(req, 400, "invalid_parameter", "%s: must be an integer from 0 to %zu", name, max);
    return -1;
}

/* Reads a non-negative decimal parameter (bpm_min=120, bpm_max=127.5) up
 * to MAX into *V_R, left alone when absent; answers 400 and returns -1
 * when it is malformed or out of range. */
static int decimal_param(h2o_req_t *req, const char *name, double max, double *v_r)
{
    h2o_iovec_t v;
    double d;
    char *end;
    int found = talas_http_query_param(req, name, &v);

    if (found == 0)
        return 0;
    if (found == 1 && v.len > 0 && v.base[0] >= '0' && v.base[0] <= '9') {
        errno = 0;
        d = strtod(v.base, &end);
        /* strtod also reads "1e3", "0x10", "inf": only digits and one point */
        if (errno == 0 && *end == '\0' && strspn(v.base, "0123456789.") == v.len && d <= max) {
            *v_r = d;
            return 0;
        }
    }
    talas_http_send_error(req, 400, "invalid_parameter", "%s: must be a number from 0 to %g", name, max);
    return -1;
}

/* bpm_min, bpm_max (beats per minute) and max_duration (seconds) of
 * /api/tracks into F; answers 400 and returns -1 for a bad one. */
static int filter_params(h2o_req_t *req, struct talas_track_filter *f)
{
    double max_duration = -1;

    talas_track_filter_init(f);
    if (decimal_param(req, "bpm_min", 1000, &f->bpm_min) != 0 ||
        decimal_param(req, "bpm_max", 1000, &f->bpm_max) != 0 ||
        decimal_param(req, "max_duration", 1e9, &max_duration) != 0)
        return -1;
    if (max_duration >= 0)
        f->max_duration_ms = (int64_t)(max_duration * 1000 + 0.5);
    if (f->bpm_min >= 0 && f->bpm_max >= 0 && f->bpm_min > f->bpm_max) {
        talas_http_send_error(req, 400, "invalid_parameter", "bpm_min: must not be above bpm_max");
        return -1;
    }
    return 0;
}

struct list_ctx {
    struct talas_token *token;
    struct talas_json *json;
    int sign; /* add a signed stream_url to every track */
    char *sign_error; /* the first minting failure, malloc'd */
};

static int list_one(const struct talas_track *t, void *arg)
{
    struct list_ctx *lc = arg;
    char *url = NULL, *error;
    time_t exp;

    if (lc->sign && lc->sign_error == NULL &&
        talas_token_mint_url(lc->token, t->id, NULL, TALAS_TOKEN_STREAM, 0, &url, &exp, &error) != 0)
        lc->sign_error = error;
    track_json(lc->json, t, url);
    free(url);
    return 0;
}

/*
 * Whether the request carries the backend key: 1 yes, 0 no Authorization
 * header; -1 a wrong one, answered with 401 (and logged).
 */
static int backend_key(const struct talas_worker_ctx *ctx, h2o_req_t *req)
{
    const h2o_iovec_t *h = talas_http_header(req, H2O_TOKEN_AUTHORIZATION);
    char ip[64];

    /* another scheme (a proxy's Basic) is not an attempt at the key */
    if (h == NULL || h->len < 7 || strncasecmp(h->base, "Bearer ", 7) != 0)
        return 0;
    if (talas_token_backend_key_ok(ctx->token, h->base, h->len))
        return 1;
    log_warn("auth: 401 for %.*s %.*s from %s: wrong backend key", (int)req->method.len, req->method.base,
             (int)req->path_normalized.len, req->path_normalized.base, talas_http_client_ip(req, ip));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL,
                   H2O_STRLIT("Bearer realm=\"talas\", error=\"invalid_token\""));
    talas_http_send_error(req, 401, "unauthorized", "a valid backend key is required");
    return -1;
}

int talas_api_tracks(const struct talas_worker_ctx *ctx, h2o_req_t *req)
{
    struct talas_buf body = {0};
    struct talas_json json;
    struct list_ctx lc = {ctx->token, &json, 0, NULL};
    struct talas_track_filter filter;
    size_t limit, offset, total = 0;
    h2o_iovec_t q = {NULL, 0};
    MDB_txn *txn;
    int rc, key;

    if (talas_http_reject_unless_get(req))
        return 0;
    /* with auth off, URLs need no signature and the key is not looked at */
    if (ctx->conf->auth_required && (key = backend_key(ctx, req)) != 0) {
        if (key == -1)
            return 0;
        lc.sign = 1;
    }
    if (uint_param(req, "limit", LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX, &limit) != 0 ||
        uint_param(req, "offset", 0, SIZE_MAX / 2, &offset) != 0)
        return 0;
    if (talas_http_query_param(req, "q", &q) == -1) {
        talas_http_send_error(req, 400, "invalid_parameter", "q: malformed percent-encoding");
        return 0;
    }
    if (filter_params(req, &filter) != 0)
        return 0;
    if (begin(ctx, req, &txn) != 0)
        return 0;
    talas_json_init(&json, &body);
    talas_json_object_begin(&json);
    talas_json_key(&json, "tracks");
    talas_json_array_begin(&json);
    rc = talas_catalog_list_filtered(ctx->storage, txn, q.base, &filter, offset, limit, list_one, &lc, &total);
    mdb_txn_abort(txn);
    if (lc.sign_error != NULL) {
        log_error("%s: signing stream URLs failed: %s", __func__, lc.sign_error);
        free(lc.sign_error);
        talas_buf_free(&body);
        talas_http_send_error(req, 500, "cannot_sign", "stream URLs cannot be signed with this configuration");
        return 0;
    }
    if (rc != 0) {
        log_error("%s: listing the catalog failed: %s", __func__, mdb_strerror(rc));
        talas_buf_free(&body);
        talas_http_send_error(req, 500, "storage_error", "the catalog could not be read");
        return 0;
    }
    talas_json_array_end(&json);
    talas_json_key(&json, "total");
    talas_json_uint(&json, total);
    talas_json_key(&json, "offset");
    talas_json_uint(&json, offset);
    talas_json_key(&json, "limit");
    talas_json_uint(&json, limit);
    talas_json_object_end(&json);
    talas_http_send_json_doc(req, 200, &body);
    return 0;
}

int talas_api_track(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *id, size_t len)
{
    struct talas_buf body = {0};
    struct talas_json json;
    struct talas_track t;
    char id_buf[TALAS_TRACK_ID_LEN + 1];
    MDB_txn *txn;
    int rc;

    if (talas_http_track_request(req, id, len, id_buf) != 0)
        return 0;
    if (begin(ctx, req, &txn) != 0)
        return 0;
    rc = talas_catalog_resolve(ctx->storage, txn, id_buf, &t);
    if (rc == 0 && t.error == NULL) {
        talas_json_init(&json, &body);
        track_json_open(&json, &t, NULL);
        talas_versions_track_members(ctx->storage, txn, t.id, &json); /* song_id, versions */
        talas_json_object_end(&json);
        talas_buf_append(&body, "\n", 1);
        /* a former id (an alias): the track lives at its id now, which a
         * client should store; 308 is followed by every HTTP library, and
         * the body is the track already, for one that does not follow */
        if (strcmp(t.id, id_buf) != 0) {
            h2o_iovec_t location = h2o_concat(&req->pool, h2o_iovec_init(H2O_STRLIT("/api/tracks/")),
                                              h2o_strdup(&req->pool, t.id, TALAS_TRACK_ID_LEN));
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_LOCATION, NULL, location.base, location.len);
            rc = 308;
        }
    }
    mdb_txn_abort(txn);
    if (rc == 308)
        talas_http_send_json(req, 308, &body);
    else if (rc == 0 && t.error == NULL)
        talas_http_send_json(req, 200, &body);
    else if (rc == 0 || rc == MDB_NOTFOUND)
        talas_http_send_error(req, 404, "not_found", "no such track");
    else
        talas_http_send_error(req, 500, "storage_error", "the catalog record of this track is damaged");
    talas_buf_free(&body);
    return 0;
}

struct stream_url_req {
    const struct talas_worker_ctx *ctx;
    h2o_req_t *req;
    struct talas_mint_args args; /* checked by the rules gRPC uses too */
    const char *bad_field, *bad_reason;
};

static int stream_url_member(const char *key, const struct talas_json_value *v, void *arg)
{
    struct stream_url_req *r = arg;
    const char *reason;

#define BAD(field, why)                                                                                      \
    do {                                                                                                     \
        /* KEY lives in the reader's buffer only during this call */                                         \
        r->bad_field = h2o_strdup(&r->req->pool, (field), SIZE_MAX).base;                                    \
        r->bad_reason = (why);                                                                               \
        return 1;                                                                                            \
    } while (0)
    if (strcmp(key, "track_id") == 0 || strcmp(key, "audio_id") == 0) {
        if (r->args.track[0] != '\0')
            BAD(key, "give track_id or audio_id, not both");
        if (v->type != TALAS_JSON_STRING)
            BAD(key, "must be a string");
        if (talas_mint_args_set_track(&r->args, v->str, v->len, &reason) != 0)
            BAD(key, reason);
    } else if (strcmp(key, "user_id") == 0) {
        if (v->type == TALAS_JSON_NULL)
            return 0;
        if (v->type != TALAS_JSON_STRING)
            BAD(key, "must be a string");
        if (talas_mint_args_set_user(&r->args, v->str, v->len, &reason) != 0)
            BAD(key, reason);
    } else if (strcmp(key, "kind") == 0) {
        if (v->type != TALAS_JSON_STRING)
            BAD(key, "must be a string");
        if (talas_mint_args_set_kind(&r->args, v->str, v->len, &reason) != 0)
            BAD(key, reason);
    } else if (strcmp(key, "ttl_seconds") == 0) {
        if (v->type != TALAS_JSON_INTEGER)
            BAD(key, "must be an integer");
        if (talas_mint_args_set_ttl(&r->args, v->num, r->ctx->conf->auth_max_ttl_ms / 1000, &reason) != 0)
            BAD(key, reason);
    } else {
        BAD(key, "unknown field");
    }
    return 0;
#undef BAD
}

int talas_api_stream_url(const struct talas_worker_ctx *ctx, h2o_req_t *req)
{
    struct stream_url_req r = {.ctx = ctx, .req = req};
    struct talas_buf body = {0};
    struct talas_json json;
    struct talas_track t;
    char *url, *mint_error, expires[32];
    time_t exp;
    MDB_txn *txn;
    int rc;

    if (!talas_http_method_is(req, "POST")) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("POST"));
        talas_http_send_error(req, 405, "method_not_allowed", "%.*s is not allowed here", (int)req->method.len,
                              req->method.base);
        return 0;
    }
    /* the key first: without it, nothing about the body or the catalog */
    if (backend_key(ctx, req) != 1) {
        if (req->res.status == 0) {
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL,
                           H2O_STRLIT("Bearer realm=\"talas\""));
            talas_http_send_error(req, 401, "unauthorized", "a valid backend key is required");
        }
        return 0;
    }
    talas_mint_args_init(&r.args);
    if (talas_http_read_json_body(req, 64 * 1024, 0, stream_url_member, &r) != 0)
        return 0;
    if (r.bad_field != NULL) {
        talas_http_send_error(req, 400, "invalid_parameter", "%.64s: %s", r.bad_field, r.bad_reason);
        return 0;
    }
    if (r.args.track[0] == '\0') {
        talas_http_send_error(req, 400, "invalid_parameter", "track_id: required");
        return 0;
    }
    if (begin(ctx, req, &txn) != 0)
        return 0;
    rc = talas_catalog_resolve(ctx->storage, txn, r.args.track, &t);
    if (rc == 0 && t.error != NULL)
        rc = MDB_NOTFOUND;
    mdb_txn_abort(txn);
    if (rc != 0) {
        if (rc == MDB_NOTFOUND)
            talas_http_send_error(req, 404, "not_found", "no such track");
        else
            talas_http_send_error(req, 500, "storage_error", "the catalog could not be read");
        return 0;
    }
    if (talas_token_mint_url(ctx->token, r.args.track, r.args.user[0] != '\0' ? r.args.user : NULL,
                             r.args.kind, r.args.ttl_s, &url, &exp, &mint_error) != 0) {
        log_error("%s: minting a URL for %s failed: %s", __func__, r.args.track, mint_error);
        talas_http_send_error(req, 500, "cannot_sign", "%s", mint_error);
        free(mint_error);
        return 0;
    }
    talas_token_format_time(exp, expires);
    talas_json_init(&json, &body);
    talas_json_object_begin(&json);
    talas_json_key(&json, "url_signed");
    talas_json_string(&json, url);
    talas_json_key(&json, "expires_at");
    talas_json_string(&json, expires);
    talas_json_object_end(&json);
    talas_http_send_json_doc(req, 200, &body);
    free(url);
    return 0;
}
