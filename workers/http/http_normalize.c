/*
 * http_normalize.c - ?normalize=LUFS: the target read, the gain found.
 *
 * Entry points: talas_http_normalize_param, talas_http_normalize_apply,
 * talas_http_normalize_query.
 *
 * The gain is the target less the integrated loudness the scanner
 * measured (store/track_analysis.h) for the very file the response
 * serves: a track not measured yet, silent, or changed since its
 * measurement answers 409 rather than a stream normalized by a guess, and
 * nothing is cached under a target for it. The transcoder applies the
 * gain and its true-peak limiter (media/normalize.h); the target names
 * the cache variant (talas_transcode_variant).
 *
 * Logs: catalog records that cannot be read (error).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include "core/log.h"
#include "http/http_normalize.h"
#include "http/http_response.h"
#include "media/normalize.h"
#include "store/catalog.h"

int talas_http_normalize_param(h2o_req_t *req, int *dlu_r)
{
    h2o_iovec_t v;
    size_t i = 0, digits = 0, decimals = 0;
    long tenths = 0;
    int found, negative = 0;

    *dlu_r = 0;
    if ((found = talas_http_query_param(req, "normalize", &v)) == 0)
        return 0;
    /* digits only, as t= is read: no exponent, spaces, hex or words */
    if (found == 1 && v.len > 0 && v.len <= 8) {
        if (v.base[0] == '-' || v.base[0] == '+')
            negative = v.base[i++] == '-';
        for (; i < v.len && v.base[i] >= '0' && v.base[i] <= '9'; i++, digits++)
            tenths = tenths * 10 + (v.base[i] - '0');
        tenths *= 10;
        if (i < v.len && v.base[i] == '.')
            for (i++; i < v.len && v.base[i] >= '0' && v.base[i] <= '9'; i++, decimals++)
                if (decimals == 0)
                    tenths += v.base[i] - '0';
        if (negative)
            tenths = -tenths;
        if (i == v.len && digits > 0 && decimals <= 1 && tenths >= (long)(TALAS_NORMALIZE_TARGET_MIN * 10) &&
            tenths <= (long)(TALAS_NORMALIZE_TARGET_MAX * 10)) {
            *dlu_r = (int)tenths;
            return 0;
        }
    }
    talas_http_send_error(req, 400, "invalid_parameter",
                          "normalize: must be a loudness in LUFS from %.0f to %.0f, at most one decimal, "
                          "such as -14 or -23",
                          TALAS_NORMALIZE_TARGET_MIN, TALAS_NORMALIZE_TARGET_MAX);
    return -1;
}

int talas_http_normalize_apply(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *track,
                               const struct talas_cache_source *identity, int dlu, struct talas_profile *p)
{
    struct talas_track t;
    MDB_txn *txn;
    double lufs = NAN;
    int rc, same_file = 0;

    if (dlu == 0)
        return 0;
    if ((rc = talas_storage_read_begin(ctx->storage, &txn)) != 0) {
        log_error("%s: mdb_txn_begin() failed: %s", __func__, mdb_strerror(rc));
        talas_http_send_error(req, 500, "storage_error", "the catalog could not be read");
        return -1;
    }
    if ((rc = talas_catalog_get(ctx->storage, txn, track, &t)) == 0) {
        same_file = t.size == identity->size && t.mtime_ns == identity->mtime_ns;
        if (t.analysis.flags & TALAS_ANALYSIS_LOUDNESS)
            lufs = t.analysis.integrated_lufs;
    } else if (rc != MDB_NOTFOUND) {
        log_error("%s: catalog record of %s unreadable (%d)", __func__, track, rc);
    }
    mdb_txn_abort(txn);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        talas_http_send_error(req, 500, "storage_error", "the catalog could not be read");
        return -1;
    }
    if (!same_file || !isfinite(lufs)) {
        talas_http_send_error(req, 409, "loudness_unknown",
                              !same_file || !(t.analysis.flags & TALAS_ANALYSIS_LOUDNESS)
                                  ? "normalize: the loudness of this track is not measured yet; play it "
                                    "without normalize, or after the scan's analysis"
                                  : "normalize: this track is silent: it has no loudness to normalize");
        return -1;
    }
    p->normalize_dlu = dlu;
    p->gain_db = dlu / 10.0 - lufs;
    return 0;
}

const char *talas_http_normalize_query(h2o_req_t *req, int dlu)
{
    char *q;

    if (dlu == 0)
        return "";
    q = h2o_mem_alloc_pool(&req->pool, 32);
    snprintf(q, 32, "normalize=%s%d.%d", dlu < 0 ? "-" : "", abs(dlu) / 10, abs(dlu) % 10);
    return q;
}
