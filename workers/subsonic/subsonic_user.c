/*
 * subsonic_user.c - the Subsonic API's calls on a user's own state
 * (subsonic_user.h): stars and ratings.
 *
 * Entry point: talas_subsonic_user_method (http_subsonic.c, once the
 * request is authenticated).
 *
 *   star, unstar     id (songs), albumId, artistId, each repeatable; star
 *                    also publishes TrackLiked on /api/ws for each song;
 *   setRating        id, rating 0 (clears) to 5;
 *   getStarred(2)    the user's starred artists, albums and songs, with
 *                    their starred time and rating; items gone from the
 *                    catalog are left out.
 *
 * Every change and read goes through workers/state/state_stars.h (LMDB, or
 * PostgreSQL in cluster mode): a call that waits for the store keeps its
 * state in the request's pool, and a request that goes away cancels it.
 * Catalog look-ups are LMDB reads on the loop, as the rest of /rest/.
 *
 * Logs: nothing itself: subsonic_call.c logs catalog read errors, the state
 * interface store failures.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/token.h"
#include "http/http_response.h"
#include "subsonic/subsonic_user.h"
#include "realtime/ws_hub.h"
#include "realtime/ws_protocol.h"
#include "state/state_stars.h"
#include "store/catalog.h"

#define IDS_MAX 500 /* ids in one star or unstar */

/* A call's state while the store answers, in the request's pool. */
struct ucall {
    struct talas_subsonic_call *c;
    struct talas_state_stars_op *op;
    const char **items; /* star, unstar: the songs first, then albums and artists */
    size_t count, songs;
    int id3; /* getStarred2 */
};

static void ucall_dispose(void *p)
{
    struct ucall *u = p;

    if (u->op != NULL)
        talas_state_stars_cancel(u->op);
}

static struct ucall *ucall_new(struct talas_subsonic_call *c)
{
    struct ucall *u = h2o_mem_alloc_shared(&c->req->pool, sizeof(*u), ucall_dispose);

    memset(u, 0, sizeof(*u));
    u->c = c;
    return u;
}

/* ------------------------------------------------------------- answers */

/* ISO 8601 of MS since the epoch. */
static void iso_ms(uint64_t ms, char buf[32])
{
    talas_token_format_time((time_t)(ms / 1000), buf);
}

/* The attributes every starred or rated item carries. */
static void mark_attrs(struct talas_subsonic_writer *w, const struct talas_star *s)
{
    char when[32];

    if (s->starred_ms != 0) {
        iso_ms(s->starred_ms, when);
        talas_subsonic_attr_str(w, "starred", when);
    }
    if (s->rating != 0)
        talas_subsonic_attr_int(w, "userRating", s->rating);
}

/* ------------------------------------------------------------- the ids */

/* Whether every album of ALBUMS and artist of ARTISTS is in the library
 * (else answers 70). */
static int others_exist(struct talas_subsonic_call *c, const char *const *albums, size_t na,
                        const char *const *artists, size_t nr)
{
    struct talas_subsonic_library lib;
    MDB_txn *txn;
    int ok = 1;

    if (na + nr == 0)
        return 1;
    if (talas_subsonic_call_load_library(c, &txn, &lib) != 0)
        return 0;
    for (size_t i = 0; i < na && ok; i++)
        if (talas_subsonic_album_find(&lib, albums[i]) == NULL) {
            talas_subsonic_call_error(c, TALAS_SUBSONIC_E_NOT_FOUND, "album not found: %.32s", albums[i]);
            ok = 0;
        }
    for (size_t i = 0; i < nr && ok; i++)
        if (talas_subsonic_artist_find(&lib, artists[i]) == NULL) {
            talas_subsonic_call_error(c, TALAS_SUBSONIC_E_NOT_FOUND, "artist not found: %.32s", artists[i]);
            ok = 0;
        }
    talas_subsonic_library_free(&lib);
    mdb_txn_abort(txn);
    return ok;
}

/* star and unstar: the ids of id, albumId and artistId into U->items
 * (songs first); with CHECK, each must exist. Answers and returns -1 when
 * they do not do. */
static int gather(struct ucall *u, int check)
{
    static const char *const names[] = {"id", "albumId", "artistId"};
    struct talas_subsonic_call *c = u->c;
    size_t n[3], total = 0;

    u->items = h2o_mem_alloc_pool(&c->req->pool, 3 * IDS_MAX * sizeof(*u->items));
    for (int k = 0; k < 3; k++) {
        n[k] = talas_subsonic_arg_all(c->args, names[k], u->items + total, IDS_MAX);
        if (n[k] > IDS_MAX) {
            talas_subsonic_call_error(c, TALAS_SUBSONIC_E_GENERIC, "%s: at most %d in one request", names[k], IDS_MAX);
            return -1;
        }
        total += n[k];
    }
    if (total == 0) {
        talas_subsonic_call_error(c, TALAS_SUBSONIC_E_MISSING, "required parameter is missing: id, albumId or artistId");
        return -1;
    }
    u->count = total;
    u->songs = n[0];
    if (check && (!talas_subsonic_call_songs_exist(c, u->items, n[0]) ||
                  !others_exist(c, u->items + n[0], n[1], u->items + n[0] + n[1], n[2])))
        return -1;
    return 0;
}

/* ----------------------------------------------------- star, setRating */

static void publish_liked(struct talas_subsonic_call *c, const char *track)
{
    struct talas_buf b = {0};
    struct talas_json json;

    talas_ws_event_begin(&json, &b, "TrackLiked");
    talas_json_key(&json, "track_id");
    talas_json_string(&json, track);
    talas_json_key(&json, "user_id");
    talas_json_string(&json, c->user);
    talas_json_object_end(&json);
    talas_ws_hub_publish(TALAS_WS_TO_ALL, NULL, b.data, b.len);
    talas_buf_free(&b);
}

static void on_starred(void *data, const struct talas_state_stars_result *res)
{
    struct ucall *u = data;

    u->op = NULL;
    if (res->outcome != TALAS_STATE_OK) {
        talas_subsonic_call_store_failed(u->c, res->outcome, res->reason, &res->refusal,
                                         "the change could not be stored");
        return;
    }
    for (size_t i = 0; i < u->songs; i++)
        publish_liked(u->c, u->items[i]);
    talas_subsonic_call_empty(u->c);
}

static void on_changed(void *data, const struct talas_state_stars_result *res)
{
    struct ucall *u = data;

    u->op = NULL;
    if (res->outcome != TALAS_STATE_OK) {
        talas_subsonic_call_store_failed(u->c, res->outcome, res->reason, &res->refusal,
                                         "the change could not be stored");
        return;
    }
    talas_subsonic_call_empty(u->c);
}

static void m_star(struct talas_subsonic_call *c)
{
    struct ucall *u = ucall_new(c);

    if (gather(u, 1) != 0)
        return;
    u->op = talas_state_stars_set(c->ctx, c->user, u->items, u->count, 1, on_starred, u);
}

/* unstar takes ids gone from the catalog too: a star can outlive its song */
static void m_unstar(struct talas_subsonic_call *c)
{
    struct ucall *u = ucall_new(c);

    if (gather(u, 0) != 0)
        return;
    u->op = talas_state_stars_set(c->ctx, c->user, u->items, u->count, 0, on_changed, u);
}

static void m_set_rating(struct talas_subsonic_call *c)
{
    const char *id = talas_subsonic_arg(c->args, "id"), *rating = talas_subsonic_arg(c->args, "rating");
    const char *error;
    struct ucall *u;
    int64_t v;
    int ok;

    if (id == NULL || *id == '\0' || rating == NULL || *rating == '\0') {
        talas_subsonic_call_error(c, TALAS_SUBSONIC_E_MISSING, "required parameter is missing: %s", id == NULL || *id == '\0' ? "id" : "rating");
        return;
    }
    if (talas_subsonic_arg_int(c->args, "rating", 0, TALAS_STARS_RATING_MAX, 0, &v, &error) != 0) {
        talas_subsonic_call_error(c, TALAS_SUBSONIC_E_GENERIC, "rating: must be an integer from 0 to %d (0 removes the rating)",
                   TALAS_STARS_RATING_MAX);
        return;
    }
    if (strncmp(id, "al", 2) == 0 && strlen(id) == TALAS_SUBSONIC_ID_LEN)
        ok = others_exist(c, &id, 1, NULL, 0);
    else if (strncmp(id, "ar", 2) == 0 && strlen(id) == TALAS_SUBSONIC_ID_LEN)
        ok = others_exist(c, NULL, 0, &id, 1);
    else
        ok = talas_subsonic_call_songs_exist(c, &id, 1);
    if (!ok)
        return;
    u = ucall_new(c);
    u->op = talas_state_stars_rate(c->ctx, c->user, id, (unsigned)v, on_changed, u);
}

/* ----------------------------------------------------------- getStarred */

static void on_listed(void *data, const struct talas_state_stars_result *res)
{
    struct ucall *u = data;
    struct talas_subsonic_call *c = u->c;
    struct talas_subsonic_library lib;
    struct talas_subsonic_writer w;
    MDB_txn *txn;

    u->op = NULL;
    if (res->outcome != TALAS_STATE_OK) {
        talas_subsonic_call_store_failed(c, res->outcome, res->reason, &res->refusal,
                                         "the change could not be stored");
        return;
    }
    if (talas_subsonic_call_load_library(c, &txn, &lib) != 0)
        return;
    talas_subsonic_writer_begin(&w, c->format, c->callback, 1);
    talas_subsonic_elem_begin(&w, u->id3 ? "starred2" : "starred");
    /* a rated item that is not starred is not in the list */
    talas_subsonic_list_begin(&w, "artist");
    for (size_t i = 0; i < res->count; i++) {
        const struct talas_subsonic_artist *a = talas_subsonic_artist_find(&lib, res->stars[i].item);
        if (a == NULL || res->stars[i].starred_ms == 0)
            continue;
        talas_subsonic_item_begin(&w);
        c->artist_attrs(&w, a, u->id3);
        mark_attrs(&w, &res->stars[i]);
        talas_subsonic_elem_end(&w);
    }
    talas_subsonic_list_end(&w);
    talas_subsonic_list_begin(&w, "album");
    for (size_t i = 0; i < res->count; i++) {
        const struct talas_subsonic_album *a = talas_subsonic_album_find(&lib, res->stars[i].item);
        if (a == NULL || res->stars[i].starred_ms == 0)
            continue;
        talas_subsonic_item_begin(&w);
        (u->id3 ? c->album_id3_attrs : c->album_child_attrs)(&w, a);
        mark_attrs(&w, &res->stars[i]);
        talas_subsonic_elem_end(&w);
    }
    talas_subsonic_list_end(&w);
    talas_subsonic_list_begin(&w, "song");
    for (size_t i = 0; i < res->count; i++) {
        const struct talas_subsonic_song *s = talas_subsonic_song_find(&lib, res->stars[i].item);
        if (s == NULL || res->stars[i].starred_ms == 0)
            continue;
        talas_subsonic_item_begin(&w);
        c->song_attrs(&w, s);
        mark_attrs(&w, &res->stars[i]);
        talas_subsonic_elem_end(&w);
    }
    talas_subsonic_list_end(&w);
    talas_subsonic_library_free(&lib);
    mdb_txn_abort(txn);
    talas_subsonic_writer_end(&w);
    talas_subsonic_send_doc(c->req, &w);
}

static void starred(struct talas_subsonic_call *c, int id3)
{
    struct ucall *u = ucall_new(c);

    u->id3 = id3;
    u->op = talas_state_stars_list(c->ctx, c->user, on_listed, u);
}

static void m_starred(struct talas_subsonic_call *c)
{
    starred(c, 0);
}

static void m_starred2(struct talas_subsonic_call *c)
{
    starred(c, 1);
}

/* ------------------------------------------------------------- dispatch */

static const struct {
    const char *name;
    talas_subsonic_call_fn *fn;
} methods[] = {
    {"star", m_star},
    {"unstar", m_unstar},
    {"setRating", m_set_rating},
    {"getStarred", m_starred},
    {"getStarred2", m_starred2},
};

talas_subsonic_call_fn *talas_subsonic_user_method(const char *name)
{
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (strcmp(methods[i].name, name) == 0)
            return methods[i].fn;
    return NULL;
}
