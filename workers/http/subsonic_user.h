/*
 * subsonic_user.h - the Subsonic API's calls that read and write a user's
 * own state (subsonic_user.c): star, unstar, setRating, getStarred,
 * getStarred2; each backed by the state interface (workers/state/), so
 * that every worker and, in cluster mode, every node sees the same.
 *
 * http_subsonic.c parses and authenticates a request, then hands a method
 * it does not answer itself to this module as a struct talas_subsonic_call,
 * with the functions that write its catalog's elements (so that a song
 * looks the same in every answer).
 */
#ifndef TALAS_SUBSONIC_USER_H
#define TALAS_SUBSONIC_USER_H

#include <h2o.h>

#include "http/subsonic_args.h"
#include "http/subsonic_library.h"
#include "http/subsonic_response.h"
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

/* The method NAME of this module, or NULL. The method answers C's request,
 * now or later on the loop (when the request goes first, it stops). */
talas_subsonic_call_fn *talas_subsonic_user_method(const char *name);

#endif
