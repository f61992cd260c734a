/*
 * subsonic_call.h - one Subsonic API call handed by http_subsonic.c to a
 * module of the API (subsonic_user.c, subsonic_queue.c,
 * subsonic_lyrics.c), and how a module answers it: a document, an error,
 * an empty ok.
 *
 * http_subsonic.c parses and authenticates a request, then hands a method
 * it does not answer itself to the module whose table names it, as a
 * struct talas_subsonic_call, with the functions that write its catalog's
 * elements (so that a song looks the same in every answer). The modules
 * share here what they all need: the catalog read, the check of song ids,
 * the answer of a store outcome that is not OK.
 */
#ifndef TALAS_SUBSONIC_CALL_H
#define TALAS_SUBSONIC_CALL_H

#include <stdarg.h>

#include <h2o.h>

#include <lmdb.h>

#include "state/state.h"
#include "store/quota.h"
#include "subsonic/subsonic_args.h"
#include "subsonic/subsonic_library.h"
#include "subsonic/subsonic_response.h"
#include "worker/worker_ctx.h"

/* One authenticated request, in its pool (which owns every pointer). */
struct talas_subsonic_call {
    const struct talas_worker_ctx *ctx;
    h2o_req_t *req;
    const struct talas_subsonic_args *args;
    enum talas_subsonic_format format;
    const char *callback; /* JSONP */
    const char *user;     /* the account */
    /* The attributes of an element just begun, as http_subsonic.c writes
     * them everywhere. */
    void (*song_attrs)(struct talas_subsonic_writer *w, const struct talas_subsonic_song *s);
    void (*album_id3_attrs)(struct talas_subsonic_writer *w, const struct talas_subsonic_album *a);
    void (*album_child_attrs)(struct talas_subsonic_writer *w, const struct talas_subsonic_album *a);
    void (*artist_attrs)(struct talas_subsonic_writer *w, const struct talas_subsonic_artist *a, int id3);
};

typedef void talas_subsonic_call_fn(struct talas_subsonic_call *c);

/* Sends W's document on REQ: 200 with its format's Content-Type (a
 * Subsonic error is a 200 too); W's buffer is freed. */
void talas_subsonic_send_doc(h2o_req_t *req, struct talas_subsonic_writer *w);

/* Sends the failed answer with error CODE and the message FMT, AP. */
void talas_subsonic_send_verror(h2o_req_t *req, enum talas_subsonic_format format, const char *callback, int code,
                                const char *fmt, va_list ap);

/* Answers C with error CODE and a message. */
void talas_subsonic_call_error(struct talas_subsonic_call *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Answers C with an ok document and nothing in it. */
void talas_subsonic_call_empty(struct talas_subsonic_call *c);

/* Answers C with error 0 for a store OUTCOME that is not OK: the quota
 * REFUSAL's limit, REASON (REFUSED, UNAVAILABLE), else FAILED. */
void talas_subsonic_call_store_failed(struct talas_subsonic_call *c, enum talas_state_outcome outcome,
                                      const char *reason, const struct talas_quota_refusal *refusal,
                                      const char *failed);

/* Loads the whole library (every folder) in *TXN_R, a read the caller
 * aborts after use; returns 0, or answers C, logs and returns -1 when the
 * catalog cannot be read. */
int talas_subsonic_call_load_library(struct talas_subsonic_call *c, MDB_txn **txn_r,
                                     struct talas_subsonic_library *lib);

/* Whether every one of the N songs IDS is a playable track: 1, or 0 once
 * C is answered (70 for the first that is not, 0 when the catalog cannot
 * be read). */
int talas_subsonic_call_songs_exist(struct talas_subsonic_call *c, const char *const *ids, size_t n);

#endif
