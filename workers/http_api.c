/*
 * http_api.c - /api/health and /api/tracks.
 *
 * Entry points are declared in http_api.h. Every handler holds one LMDB
 * read transaction for the time it takes to build its body (microseconds:
 * LMDB reads come from the memory map), never across loop iterations.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog.h"
#include "config.h"
#include "http_api.h"
#include "http_response.h"
#include "json.h"
#include "log.h"
#include "worker.h"

#define LIST_LIMIT_DEFAULT 100
#define LIST_LIMIT_MAX 1000

static void track_json(struct talas_json *json, const struct talas_track *t)
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
    talas_json_object_end(json);
}

static int begin(h2o_req_t *req, MDB_txn **txn_r)
{
    int rc = talas_storage_read_begin(talas_worker_storage(), txn_r);

    if (rc != 0) {
        log_error("%s: mdb_txn_begin() failed: %s", __func__, mdb_strerror(rc));
        talas_http_send_error(req, 500, "storage_error", "the catalog could not be read");
        return -1;
    }
    return 0;
}

int talas_api_health(h2o_req_t *req)
{
    struct talas_scan_status scan;
    struct talas_buf body = {0};
    struct talas_json json;
    MDB_txn *txn;
    int have_scan;

    if (talas_http_reject_unless_get(req))
        return 0;
    if (begin(req, &txn) != 0)
        return 0;
    have_scan = talas_catalog_scan_status_get(talas_worker_storage(), txn, &scan) == 0;
    mdb_txn_abort(txn);
    /* a scanner killed mid-scan cannot clear its flag: a dead pid means the
     * scan is over (interrupted), not running */
    if (have_scan && scan.running && scan.pid > 0 && kill(scan.pid, 0) == -1 && errno == ESRCH)
        scan.running = 0;

    talas_json_init(&json, &body);
    talas_json_object_begin(&json);
    talas_json_key(&json, "status");
    talas_json_string(&json, "ok");
    talas_json_key(&json, "version");
    talas_json_string(&json, PACKAGE_VERSION);
    talas_json_key(&json, "pid");
    talas_json_int(&json, getpid());
    talas_json_key(&json, "worker");
    talas_json_int(&json, talas_worker_slot());
    talas_json_key(&json, "generation");
    talas_json_uint(&json, talas_worker_generation());
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
        talas_json_object_end(&json);
    } else {
        talas_json_null(&json);
    }
    talas_json_object_end(&json);
    talas_buf_append(&body, "\n", 1);
    talas_http_send_json(req, 200, &body);
    talas_buf_free(&body);
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

struct list_ctx {
    struct talas_json *json;
};

static int list_one(const struct talas_track *t, void *arg)
{
    struct list_ctx *ctx = arg;

    track_json(ctx->json, t);
    return 0;
}

int talas_api_tracks(h2o_req_t *req)
{
    struct talas_buf body = {0};
    struct talas_json json;
    struct list_ctx ctx = {&json};
    size_t limit, offset, total = 0;
    h2o_iovec_t q = {NULL, 0};
    MDB_txn *txn;
    int rc;

    if (talas_http_reject_unless_get(req))
        return 0;
    if (uint_param(req, "limit", LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX, &limit) != 0 ||
        uint_param(req, "offset", 0, SIZE_MAX / 2, &offset) != 0)
        return 0;
    if (talas_http_query_param(req, "q", &q) == -1) {
        talas_http_send_error(req, 400, "invalid_parameter", "q: malformed percent-encoding");
        return 0;
    }
    if (begin(req, &txn) != 0)
        return 0;
    talas_json_init(&json, &body);
    talas_json_object_begin(&json);
    talas_json_key(&json, "tracks");
    talas_json_array_begin(&json);
    rc = talas_catalog_list(talas_worker_storage(), txn, q.base, offset, limit, list_one, &ctx, &total);
    mdb_txn_abort(txn);
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
    talas_buf_append(&body, "\n", 1);
    talas_http_send_json(req, 200, &body);
    talas_buf_free(&body);
    return 0;
}

int talas_api_track(h2o_req_t *req, const char *id, size_t len)
{
    struct talas_buf body = {0};
    struct talas_json json;
    struct talas_track t;
    char id_buf[TALAS_TRACK_ID_LEN + 1];
    MDB_txn *txn;
    int rc;

    if (talas_http_track_request(req, id, len, id_buf) != 0)
        return 0;
    if (begin(req, &txn) != 0)
        return 0;
    rc = talas_catalog_get(talas_worker_storage(), txn, id_buf, &t);
    if (rc == 0 && t.error == NULL) {
        talas_json_init(&json, &body);
        track_json(&json, &t);
        talas_buf_append(&body, "\n", 1);
    }
    mdb_txn_abort(txn);
    if (rc == 0 && t.error == NULL)
        talas_http_send_json(req, 200, &body);
    else if (rc == 0 || rc == MDB_NOTFOUND)
        talas_http_send_error(req, 404, "not_found", "no such track");
    else
        talas_http_send_error(req, 500, "storage_error", "the catalog record of this track is damaged");
    talas_buf_free(&body);
    return 0;
}
