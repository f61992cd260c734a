/*
 * subsonic_call.c - answering a Subsonic call handed to a module of the
 * API (subsonic_call.h): a document, an error, an empty ok.
 *
 * Entry points: talas_subsonic_send_doc, talas_subsonic_send_verror (also
 * http_subsonic.c's), talas_subsonic_call_error, talas_subsonic_call_empty,
 * talas_subsonic_call_store_failed, talas_subsonic_call_load_library,
 * talas_subsonic_call_songs_exist.
 *
 * Logs: catalog read errors.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "http/http_response.h"
#include "store/catalog.h"
#include "subsonic/subsonic_call.h"

void talas_subsonic_send_doc(h2o_req_t *req, struct talas_subsonic_writer *w)
{
    talas_http_send_body(req, 200, talas_subsonic_content_type(w->format), &w->out);
    talas_buf_free(&w->out);
}

void talas_subsonic_send_verror(h2o_req_t *req, enum talas_subsonic_format format, const char *callback, int code,
                                const char *fmt, va_list ap)
{
    struct talas_subsonic_writer w;
    char message[512];

    vsnprintf(message, sizeof(message), fmt, ap);
    talas_subsonic_write_error(&w, format, callback, code, message);
    talas_subsonic_send_doc(req, &w);
}

void talas_subsonic_call_error(struct talas_subsonic_call *c, int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    talas_subsonic_send_verror(c->req, c->format, c->callback, code, fmt, ap);
    va_end(ap);
}

void talas_subsonic_call_empty(struct talas_subsonic_call *c)
{
    struct talas_subsonic_writer w;

    talas_subsonic_writer_begin(&w, c->format, c->callback, 1);
    talas_subsonic_writer_end(&w);
    talas_subsonic_send_doc(c->req, &w);
}

void talas_subsonic_call_store_failed(struct talas_subsonic_call *c, enum talas_state_outcome outcome,
                                      const char *reason, const struct talas_quota_refusal *refusal,
                                      const char *failed)
{
    switch (outcome) {
    case TALAS_STATE_QUOTA:
        talas_subsonic_call_error(c, TALAS_SUBSONIC_E_GENERIC,
                                  "quota exceeded: limit %s (%" PRIu64 ") reached", refusal->limit,
                                  refusal->max);
        break;
    case TALAS_STATE_REFUSED:
    case TALAS_STATE_UNAVAILABLE:
        talas_subsonic_call_error(c, TALAS_SUBSONIC_E_GENERIC, "%s", reason != NULL ? reason : "refused");
        break;
    default:
        talas_subsonic_call_error(c, TALAS_SUBSONIC_E_GENERIC, "%s", failed);
    }
}

int talas_subsonic_call_load_library(struct talas_subsonic_call *c, MDB_txn **txn_r,
                                     struct talas_subsonic_library *lib)
{
    int rc;

    if ((rc = talas_storage_read_begin(c->ctx->storage, txn_r)) == 0 &&
        (rc = talas_subsonic_library_load(c->ctx->storage, *txn_r, c->ctx->conf, 0, lib)) != 0)
        mdb_txn_abort(*txn_r);
    if (rc != 0) {
        log_error("subsonic: reading the catalog failed: %s", mdb_strerror(rc));
        talas_subsonic_call_error(c, TALAS_SUBSONIC_E_GENERIC, "the catalog could not be read");
        return -1;
    }
    return 0;
}

int talas_subsonic_call_songs_exist(struct talas_subsonic_call *c, const char *const *ids, size_t n)
{
    struct talas_track t;
    MDB_txn *txn;
    int rc = 0;

    if (n == 0)
        return 1;
    if (talas_storage_read_begin(c->ctx->storage, &txn) != 0) {
        talas_subsonic_call_error(c, TALAS_SUBSONIC_E_GENERIC, "the catalog could not be read");
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        rc = talas_track_id_valid(ids[i], strlen(ids[i]))
                 ? talas_catalog_get(c->ctx->storage, txn, ids[i], &t)
                 : MDB_NOTFOUND;
        if (rc == 0 && t.error != NULL)
            rc = MDB_NOTFOUND;
        if (rc != 0) {
            if (rc != MDB_NOTFOUND && rc != -1)
                log_error("subsonic: reading track %s failed: %s", ids[i], mdb_strerror(rc));
            talas_subsonic_call_error(c, TALAS_SUBSONIC_E_NOT_FOUND, "song not found: %.32s", ids[i]);
            break;
        }
    }
    mdb_txn_abort(txn);
    return rc == 0;
}
