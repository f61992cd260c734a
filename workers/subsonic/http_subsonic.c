/*
 * http_subsonic.c - the Subsonic API (OpenSubsonic), /rest/NAME and
 * /rest/NAME.view, GET or form POST, so that Subsonic apps play from
 * Talas.
 *
 * Entry points: talas_subsonic_setup (before privileges are dropped: the
 * password key file), talas_subsonic_serve (the router, any /rest/ path).
 *
 * A request is parsed (subsonic_args.c), its user authenticated against
 * the accounts that talasctl writes (store/accounts.h: u+p, u+t+s or
 * apiKey; failures counted per address and user, login_limits.c), then
 * answered by its method in XML, JSON or JSONP (subsonic_response.c).
 * Errors are HTTP 200 with status "failed" and the API's codes. Browsing
 * reads the catalog through subsonic_library.c in one read transaction;
 * stream and download hand over to the media routes (http_stream.c,
 * http_transcode.c) without their token check; the calls on a user's own
 * state (stars, ratings) are subsonic_user.c's, the lyrics calls
 * subsonic_lyrics.c's, the play queue and now playing subsonic_queue.c's;
 * scrobble records playback through the state interface
 * (state/state_playback.h) with its events, and
 * playlists go through the state interface (state/state_playlists.h).
 *
 * Logs: failed logins (warn, with the address and user), storage errors.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>

#include "core/log.h"
#include "core/token.h"
#include "http/http_response.h"
#include "http/http_stream.h"
#include "subsonic/http_subsonic.h"
#include "http/http_transcode.h"
#include "http/login_limits.h"
#include "subsonic/subsonic_args.h"
#include "subsonic/subsonic_library.h"
#include "subsonic/subsonic_queue.h"
#include "subsonic/subsonic_response.h"
#include "subsonic/subsonic_lyrics.h"
#include "subsonic/subsonic_user.h"
#include "media/cover_image.h"
#include "media/cover_jobs.h"
#include "realtime/ws_hub.h"
#include "realtime/ws_protocol.h"
#include "state/state_playback.h"
#include "state/state_playlists.h"
#include "store/playlists.h"
#include "store/accounts.h"
#include "store/catalog.h"
#include "store/playback.h"
#include "store/users.h"

#define LIST_MAX 500 /* songs, albums or artists in one answer */
#define IDS_MAX 500  /* ids in one star, scrobble or createPlaylist */

static struct {
    struct talas_account_key key;
    int have_key;
    struct talas_login_limits *limits; /* failed logins (login_limits.h) */
} sub;

int talas_subsonic_setup(const struct talas_config *conf, char **error_r)
{
    if (!conf->subsonic_enabled)
        return 0;
    if (talas_account_key_load(conf->subsonic_password_key_file, &sub.key, error_r) != 0)
        return -1;
    sub.have_key = 1;
    talas_login_limits_free(sub.limits);
    sub.limits = talas_login_limits_new("subsonic", conf->subsonic_max_failed_logins,
                                        conf->subsonic_failed_login_window_ms);
    return 0;
}

/* One request, in its pool; its args are freed with it. */
struct sreq {
    const struct talas_worker_ctx *ctx;
    h2o_req_t *req;
    struct talas_subsonic_args args;
    enum talas_subsonic_format format;
    const char *callback;
    char user[TALAS_ACCOUNT_NAME_MAX + 1];
    /* the playlist calls: the pending store operation, the songs added;
     * scrobble: the plays (and stops), one after the other */
    struct talas_state_op *op;
    struct talas_state_playback_op *pop;
    const char **songs;
    size_t song_count, next;
    char *playlist;
    /* getCoverArt: waiting for its picture */
    struct talas_cover_waiter cover;
    int changed_details, edit_create, answer_playlist;
    int submit, private;
};

static void sreq_dispose(void *p)
{
    struct sreq *r = p;

    if (r->op != NULL)
        talas_state_cancel(r->op);
    talas_cover_jobs_cancel(&r->cover);
    if (r->pop != NULL)
        talas_state_playback_cancel(r->pop);
    talas_subsonic_args_free(&r->args);
}

static void send_doc(struct sreq *r, struct talas_subsonic_writer *w)
{
    talas_subsonic_send_doc(r->req, w);
}

static void send_error(struct sreq *r, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void send_error(struct sreq *r, int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    talas_subsonic_send_verror(r->req, r->format, r->callback, code, fmt, ap);
    va_end(ap);
}

static void begin_ok(struct sreq *r, struct talas_subsonic_writer *w)
{
    talas_subsonic_writer_begin(w, r->format, r->callback, 1);
}

static void finish(struct sreq *r, struct talas_subsonic_writer *w)
{
    talas_subsonic_writer_end(w);
    send_doc(r, w);
}

/* A required parameter; answers error 10 and returns NULL when absent. */
static const char *required(struct sreq *r, const char *name)
{
    const char *v = talas_subsonic_arg(&r->args, name);

    if (v == NULL || *v == '\0') {
        send_error(r, TALAS_SUBSONIC_E_MISSING, "required parameter is missing: %s", name);
        return NULL;
    }
    return v;
}

/* An integer parameter; answers error 0 and returns -1 when malformed. */
static int int_arg(struct sreq *r, const char *name, int64_t min, int64_t max, int64_t def, int64_t *v_r)
{
    const char *error;

    if (talas_subsonic_arg_int(&r->args, name, min, max, def, v_r, &error) == 0)
        return 0;
    send_error(r, TALAS_SUBSONIC_E_GENERIC, "%s: must be an integer from %" PRId64 " to %" PRId64, name, min,
               max);
    return -1;
}

static void iso_time(uint64_t seconds, char buf[32])
{
    talas_token_format_time((time_t)seconds, buf);
}

/* ---------------------------------------------------------------- items */

static const char *suffix_of(const char *path)
{
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');

    return dot != NULL && (slash == NULL || dot > slash) ? dot + 1 : "";
}

static void song_attrs(struct talas_subsonic_writer *w, const struct talas_subsonic_song *s)
{
    char created[32];

    iso_time(s->t.scanned_at, created);
    talas_subsonic_attr_str(w, "id", s->t.id);
    talas_subsonic_attr_str(w, "parent", s->album_id);
    talas_subsonic_attr_bool(w, "isDir", 0);
    talas_subsonic_attr_str(w, "title", s->t.title);
    talas_subsonic_attr_str(w, "album", s->album);
    talas_subsonic_attr_str(w, "artist", s->artist);
    if (s->t.track_number != 0)
        talas_subsonic_attr_int(w, "track", s->t.track_number);
    if (s->t.year != 0)
        talas_subsonic_attr_int(w, "year", s->t.year);
    if (s->t.genre[0] != '\0')
        talas_subsonic_attr_str(w, "genre", s->t.genre);
    if (s->cover != NULL)
        talas_subsonic_attr_str(w, "coverArt", s->cover);
    talas_subsonic_attr_int(w, "size", (int64_t)s->t.size);
    talas_subsonic_attr_str(w, "contentType", s->t.mime);
    talas_subsonic_attr_str(w, "suffix", suffix_of(s->t.path));
    talas_subsonic_attr_int(w, "duration", (int64_t)((s->t.duration_ms + 500) / 1000));
    talas_subsonic_attr_int(w, "bitRate", (int64_t)((s->t.bit_rate + 500) / 1000));
    talas_subsonic_attr_str(w, "path", s->relpath);
    talas_subsonic_attr_bool(w, "isVideo", 0);
    if (s->t.disc_number != 0)
        talas_subsonic_attr_int(w, "discNumber", s->t.disc_number);
    talas_subsonic_attr_str(w, "created", created);
    talas_subsonic_attr_str(w, "albumId", s->album_id);
    talas_subsonic_attr_str(w, "artistId", s->artist_id);
    talas_subsonic_attr_str(w, "type", "music");
    talas_subsonic_attr_str(w, "mediaType", "song");
    talas_subsonic_attr_int(w, "samplingRate", s->t.sample_rate);
    talas_subsonic_attr_int(w, "channelCount", s->t.channels);
}

static void song_item(struct talas_subsonic_writer *w, const struct talas_subsonic_song *s)
{
    talas_subsonic_item_begin(w);
    song_attrs(w, s);
    talas_subsonic_elem_end(w);
}

static void album_tags(struct talas_subsonic_writer *w, const struct talas_subsonic_album *a)
{
    if (a->year != 0)
        talas_subsonic_attr_int(w, "year", a->year);
    if (a->genre[0] != '\0')
        talas_subsonic_attr_str(w, "genre", a->genre);
}

/* An album in the ID3 shape (getAlbum, getArtist, getAlbumList2, search3). */
static void album_id3_attrs(struct talas_subsonic_writer *w, const struct talas_subsonic_album *a)
{
    char created[32];

    iso_time(a->created, created);
    talas_subsonic_attr_str(w, "id", a->id);
    talas_subsonic_attr_str(w, "name", a->name);
    talas_subsonic_attr_str(w, "artist", a->artist);
    talas_subsonic_attr_str(w, "artistId", a->artist_id);
    if (a->cover != NULL)
        talas_subsonic_attr_str(w, "coverArt", a->cover);
    talas_subsonic_attr_int(w, "songCount", (int64_t)a->count);
    talas_subsonic_attr_int(w, "duration", (int64_t)((a->duration_ms + 500) / 1000));
    talas_subsonic_attr_str(w, "created", created);
    album_tags(w, a);
}

/* An album as a directory (getAlbumList, getMusicDirectory, search2). */
static void album_child_attrs(struct talas_subsonic_writer *w, const struct talas_subsonic_album *a)
{
    char created[32];

    iso_time(a->created, created);
    talas_subsonic_attr_str(w, "id", a->id);
    talas_subsonic_attr_str(w, "parent", a->artist_id);
    talas_subsonic_attr_bool(w, "isDir", 1);
    talas_subsonic_attr_str(w, "title", a->name);
    talas_subsonic_attr_str(w, "album", a->name);
    talas_subsonic_attr_str(w, "artist", a->artist);
    album_tags(w, a);
    if (a->cover != NULL)
        talas_subsonic_attr_str(w, "coverArt", a->cover);
    talas_subsonic_attr_int(w, "duration", (int64_t)((a->duration_ms + 500) / 1000));
    talas_subsonic_attr_str(w, "created", created);
    /* the Child type of the XSD has no name or songCount */
    talas_subsonic_attr_str(w, "albumId", a->id);
    talas_subsonic_attr_str(w, "artistId", a->artist_id);
}

static void artist_attrs(struct talas_subsonic_writer *w, const struct talas_subsonic_artist *a, int id3)
{
    talas_subsonic_attr_str(w, "id", a->id);
    talas_subsonic_attr_str(w, "name", a->name);
    if (id3)
        talas_subsonic_attr_int(w, "albumCount", (int64_t)a->count);
}

/* ------------------------------------------------------------ the view */

/* The library of the request's musicFolderId (all without one), in *TXN_R
 * (abort it after use). Answers the error and returns -1 when it cannot. */
static int load_library(struct sreq *r, MDB_txn **txn_r, struct talas_subsonic_library *lib)
{
    int64_t folder;
    int rc;

    if (int_arg(r, "musicFolderId", 0, (int64_t)r->ctx->conf->library_path_count, 0, &folder) != 0)
        return -1;
    if ((rc = talas_storage_read_begin(r->ctx->storage, txn_r)) == 0 &&
        (rc = talas_subsonic_library_load(r->ctx->storage, *txn_r, r->ctx->conf, (unsigned)folder, lib)) != 0)
        mdb_txn_abort(*txn_r);
    if (rc != 0) {
        log_error("subsonic: reading the catalog failed: %s", mdb_strerror(rc));
        send_error(r, TALAS_SUBSONIC_E_GENERIC, "the catalog could not be read");
        return -1;
    }
    return 0;
}

static void done_library(MDB_txn *txn, struct talas_subsonic_library *lib)
{
    talas_subsonic_library_free(lib);
    mdb_txn_abort(txn);
}

/* A lookup by id found nothing: release the catalog and answer error 70. */
static void not_found(struct sreq *r, MDB_txn *txn, struct talas_subsonic_library *lib, const char *message)
{
    done_library(txn, lib);
    send_error(r, TALAS_SUBSONIC_E_NOT_FOUND, message);
}

/* ------------------------------------------------------------- methods */

static void m_ping(struct sreq *r)
{
    struct talas_subsonic_writer w;

    begin_ok(r, &w);
    finish(r, &w);
}

static void m_license(struct sreq *r)
{
    struct talas_subsonic_writer w;

    begin_ok(r, &w);
    talas_subsonic_elem_begin(&w, "license");
    talas_subsonic_attr_bool(&w, "valid", 1);
    talas_subsonic_elem_end(&w);
    finish(r, &w);
}

static void m_extensions(struct sreq *r)
{
    static const char *const names[] = {"apiKeyAuthentication", "formPost", "songLyrics", "transcodeOffset"};
    static const int64_t one = 1;
    struct talas_subsonic_writer w;

    begin_ok(r, &w);
    talas_subsonic_list_begin(&w, "openSubsonicExtensions");
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        talas_subsonic_item_begin(&w);
        talas_subsonic_attr_str(&w, "name", names[i]);
        talas_subsonic_values(&w, "versions", &one, 1);
        talas_subsonic_elem_end(&w);
    }
    talas_subsonic_list_end(&w);
    finish(r, &w);
}

static void m_user(struct sreq *r)
{
    static const char *const roles[] = {"adminRole",    "settingsRole", "uploadRole",
                                        "coverArtRole", "commentRole",  "podcastRole",
                                        "jukeboxRole",  "shareRole",    "videoConversionRole"};
    const char *name = required(r, "username");
    const struct talas_config *conf = r->ctx->conf;
    struct talas_subsonic_writer w;
    int64_t folders[64];
    size_t n = 0;

    if (name == NULL)
        return;
    if (strcmp(name, r->user) != 0) {
        send_error(r, TALAS_SUBSONIC_E_FORBIDDEN, "%s may read only their own user", r->user);
        return;
    }
    for (size_t i = 0; i < conf->library_path_count && n < 64; i++)
        folders[n++] = (int64_t)i + 1;
    begin_ok(r, &w);
    talas_subsonic_elem_begin(&w, "user");
    talas_subsonic_attr_str(&w, "username", r->user);
    talas_subsonic_attr_bool(&w, "scrobblingEnabled", 1);
    talas_subsonic_attr_bool(&w, "streamRole", 1);
    talas_subsonic_attr_bool(&w, "downloadRole", 1);
    talas_subsonic_attr_bool(&w, "playlistRole", 1);
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
        talas_subsonic_attr_bool(&w, roles[i], 0);
    talas_subsonic_values(&w, "folder", folders, n);
    talas_subsonic_elem_end(&w);
    finish(r, &w);
}

static void m_folders(struct sreq *r)
{
    const struct talas_config *conf = r->ctx->conf;
    struct talas_subsonic_writer w;

    begin_ok(r, &w);
    talas_subsonic_elem_begin(&w, "musicFolders");
    talas_subsonic_list_begin(&w, "musicFolder");
    for (size_t i = 0; i < conf->library_path_count; i++) {
        talas_subsonic_item_begin(&w);
        talas_subsonic_attr_int(&w, "id", (int64_t)i + 1);
        talas_subsonic_attr_str(&w, "name", conf->library_paths[i].name);
        talas_subsonic_elem_end(&w);
    }
    finish(r, &w);
}

/* The index letter of NAME: its first ASCII letter upper-cased, else "#". */
static char index_of(const char *name)
{
    char c = name[0];

    if (c >= 'a' && c <= 'z')
        return (char)(c - 'a' + 'A');
    return c >= 'A' && c <= 'Z' ? c : '#';
}

/* getIndexes (ID3 0) and getArtists (ID3 1): artists by index letter. */
static void artists_by_index(struct sreq *r, int id3)
{
    struct talas_subsonic_library lib;
    struct talas_subsonic_writer w;
    MDB_txn *txn;
    char letter = 0;

    if (load_library(r, &txn, &lib) != 0)
        return;
    begin_ok(r, &w);
    talas_subsonic_elem_begin(&w, id3 ? "artists" : "indexes");
    talas_subsonic_attr_str(&w, "ignoredArticles", "");
    if (!id3)
        talas_subsonic_attr_int(&w, "lastModified", (int64_t)talas_wall_ms());
    talas_subsonic_list_begin(&w, "index");
    /* artists come sorted by name without case: "#" ones may interleave */
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < lib.artist_count; i++) {
            char c = index_of(lib.artists[i].name);
            if ((pass == 0) == (c == '#'))
                continue;
            if (c != letter) {
                char name[2] = {c, '\0'};
                if (letter != 0) {
                    talas_subsonic_list_end(&w);
                    talas_subsonic_elem_end(&w);
                }
                talas_subsonic_item_begin(&w);
                talas_subsonic_attr_str(&w, "name", name);
                talas_subsonic_list_begin(&w, "artist");
                letter = c;
            }
            talas_subsonic_item_begin(&w);
            artist_attrs(&w, &lib.artists[i], id3);
            talas_subsonic_elem_end(&w);
        }
    done_library(txn, &lib);
    finish(r, &w);
}

static void m_indexes(struct sreq *r)
{
    artists_by_index(r, 0);
}

static void m_artists(struct sreq *r)
{
    artists_by_index(r, 1);
}

static void m_directory(struct sreq *r)
{
    const char *id = required(r, "id");
    const struct talas_subsonic_artist *ar;
    const struct talas_subsonic_album *al;
    struct talas_subsonic_library lib;
    struct talas_subsonic_writer w;
    MDB_txn *txn;

    if (id == NULL || load_library(r, &txn, &lib) != 0)
        return;
    if ((ar = talas_subsonic_artist_find(&lib, id)) != NULL) {
        begin_ok(r, &w);
        talas_subsonic_elem_begin(&w, "directory");
        talas_subsonic_attr_str(&w, "id", ar->id);
        talas_subsonic_attr_str(&w, "name", ar->name);
        talas_subsonic_list_begin(&w, "child");
        for (size_t i = 0; i < ar->count; i++) {
            talas_subsonic_item_begin(&w);
            album_child_attrs(&w, &lib.albums[ar->first + i]);
            talas_subsonic_elem_end(&w);
        }
    } else if ((al = talas_subsonic_album_find(&lib, id)) != NULL) {
        begin_ok(r, &w);
        talas_subsonic_elem_begin(&w, "directory");
        talas_subsonic_attr_str(&w, "id", al->id);
        talas_subsonic_attr_str(&w, "parent", al->artist_id);
        talas_subsonic_attr_str(&w, "name", al->name);
        talas_subsonic_list_begin(&w, "child");
        for (size_t i = 0; i < al->count; i++)
            song_item(&w, &lib.songs[al->first + i]);
    } else {
        not_found(r, txn, &lib, "directory not found");
        return;
    }
    done_library(txn, &lib);
    finish(r, &w);
}

static void m_artist(struct sreq *r)
{
    const char *id = required(r, "id");
    const struct talas_subsonic_artist *ar;
    struct talas_subsonic_library lib;
    struct talas_subsonic_writer w;
    MDB_txn *txn;

    if (id == NULL || load_library(r, &txn, &lib) != 0)
        return;
    if ((ar = talas_subsonic_artist_find(&lib, id)) == NULL) {
        not_found(r, txn, &lib, "artist not found");
        return;
    }
    begin_ok(r, &w);
    talas_subsonic_elem_begin(&w, "artist");
    artist_attrs(&w, ar, 1);
    talas_subsonic_list_begin(&w, "album");
    for (size_t i = 0; i < ar->count; i++) {
        talas_subsonic_item_begin(&w);
        album_id3_attrs(&w, &lib.albums[ar->first + i]);
        talas_subsonic_elem_end(&w);
    }
    done_library(txn, &lib);
    finish(r, &w);
}

static void m_album(struct sreq *r)
{
    const char *id = required(r, "id");
    const struct talas_subsonic_album *al;
    struct talas_subsonic_library lib;
    struct talas_subsonic_writer w;
    MDB_txn *txn;

    if (id == NULL || load_library(r, &txn, &lib) != 0)
        return;
    if ((al = talas_subsonic_album_find(&lib, id)) == NULL) {
        not_found(r, txn, &lib, "album not found");
        return;
    }
    begin_ok(r, &w);
    talas_subsonic_elem_begin(&w, "album");
    album_id3_attrs(&w, al);
    talas_subsonic_list_begin(&w, "song");
    for (size_t i = 0; i < al->count; i++)
        song_item(&w, &lib.songs[al->first + i]);
    done_library(txn, &lib);
    finish(r, &w);
}

static void m_song(struct sreq *r)
{
    const char *id = required(r, "id");
    const struct talas_subsonic_song *s;
    struct talas_subsonic_library lib;
    struct talas_subsonic_writer w;
    MDB_txn *txn;

    if (id == NULL || load_library(r, &txn, &lib) != 0)
        return;
    if ((s = talas_subsonic_song_find(&lib, id)) == NULL) {
        not_found(r, txn, &lib, "song not found");
        return;
    }
    begin_ok(r, &w);
    talas_subsonic_elem_begin(&w, "song");
    song_attrs(&w, s);
    talas_subsonic_elem_end(&w);
    done_library(txn, &lib);
    finish(r, &w);
}

/* A random permutation of 0..N-1 into ORDER (malloc'd). */
static size_t *shuffled(size_t n)
{
    size_t *order = xcalloc(n + 1, sizeof(*order));

    for (size_t i = 0; i < n; i++)
        order[i] = i;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)random() % i, t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
    return order;
}

static const struct talas_subsonic_album *sort_albums;

static int by_name(const void *a, const void *b)
{
    const struct talas_subsonic_album *x = &sort_albums[*(const size_t *)a],
                                      *y = &sort_albums[*(const size_t *)b];
    int c = strcasecmp(x->name, y->name);

    return c != 0 ? c : strcmp(x->id, y->id);
}

static int by_newest(const void *a, const void *b)
{
    const struct talas_subsonic_album *x = &sort_albums[*(const size_t *)a],
                                      *y = &sort_albums[*(const size_t *)b];

    if (x->created != y->created)
        return x->created > y->created ? -1 : 1;
    return strcmp(x->id, y->id);
}

static int by_artist_name(const void *a, const void *b)
{
    const struct talas_subsonic_album *x = &sort_albums[*(const size_t *)a],
                                      *y = &sort_albums[*(const size_t *)b];
    int c = strcasecmp(x->artist, y->artist);

    return c != 0 ? c : by_name(a, b);
}

static int by_year_up(const void *a, const void *b)
{
    const struct talas_subsonic_album *x = &sort_albums[*(const size_t *)a],
                                      *y = &sort_albums[*(const size_t *)b];

    if (x->year != y->year)
        return x->year < y->year ? -1 : 1;
    return by_name(a, b);
}

static int by_year_down(const void *a, const void *b)
{
    return by_year_up(b, a);
}

/* getAlbumList (ID3 0) and getAlbumList2 (ID3 1). */
static void album_list(struct sreq *r, int id3)
{
    const char *type = required(r, "type"), *genre = NULL;
    struct talas_subsonic_library lib;
    struct talas_subsonic_writer w;
    int64_t size, offset, from = 0, to = 0;
    size_t *order = NULL, n = 0;
    MDB_txn *txn;

    if (type == NULL || int_arg(r, "size", 0, LIST_MAX, 10, &size) != 0 ||
        int_arg(r, "offset", 0, INT32_MAX, 0, &offset) != 0)
        return;
    if (strcmp(type, "random") != 0 && strcmp(type, "newest") != 0 &&
        strcmp(type, "alphabeticalByName") != 0 && strcmp(type, "alphabeticalByArtist") != 0 &&
        strcmp(type, "frequent") != 0 && strcmp(type, "recent") != 0 && strcmp(type, "highest") != 0 &&
        strcmp(type, "starred") != 0 && strcmp(type, "byYear") != 0 && strcmp(type, "byGenre") != 0) {
        send_error(r, TALAS_SUBSONIC_E_GENERIC, "type: unknown list type \"%.64s\"", type);
        return;
    }
    if (strcmp(type, "byYear") == 0) {
        if (required(r, "fromYear") == NULL || required(r, "toYear") == NULL ||
            int_arg(r, "fromYear", 0, 9999, 0, &from) != 0 || int_arg(r, "toYear", 0, 9999, 0, &to) != 0)
            return;
    } else if (strcmp(type, "byGenre") == 0 && (genre = required(r, "genre")) == NULL) {
        return;
    }
    if (load_library(r, &txn, &lib) != 0)
        return;
    /* no ratings or stars in the catalog: those lists are empty; frequent
     * and recent are not counted per album yet */
    if (strcmp(type, "highest") != 0 && strcmp(type, "starred") != 0 && strcmp(type, "frequent") != 0 &&
        strcmp(type, "recent") != 0) {
        order = xcalloc(lib.album_count + 1, sizeof(*order));
        for (size_t i = 0; i < lib.album_count; i++) {
            const struct talas_subsonic_album *a = &lib.albums[i];
            /* byYear: fromYear > toYear lists the range newest first */
            if (genre != NULL && strcasecmp(a->genre, genre) != 0)
                continue;
            if (from != 0 || to != 0) {
                if (a->year < (from < to ? from : to) || a->year > (from < to ? to : from))
                    continue;
            }
            order[n++] = i;
        }
        sort_albums = lib.albums;
        if (strcmp(type, "random") == 0) {
            size_t *perm = shuffled(n), *o = xcalloc(n + 1, sizeof(*o));
            for (size_t i = 0; i < n; i++)
                o[i] = order[perm[i]];
            free(perm);
            free(order);
            order = o;
        } else if (strcmp(type, "alphabeticalByName") == 0 || strcmp(type, "byGenre") == 0) {
            qsort(order, n, sizeof(*order), by_name);
        } else if (strcmp(type, "alphabeticalByArtist") == 0) {
            qsort(order, n, sizeof(*order), by_artist_name);
        } else if (strcmp(type, "newest") == 0) {
            qsort(order, n, sizeof(*order), by_newest);
        } else if (strcmp(type, "byYear") == 0) {
            qsort(order, n, sizeof(*order), from <= to ? by_year_up : by_year_down);
        }
    }
    begin_ok(r, &w);
    talas_subsonic_elem_begin(&w, id3 ? "albumList2" : "albumList");
    talas_subsonic_list_begin(&w, "album");
    for (size_t i = (size_t)offset; i < n && i < (size_t)offset + (size_t)size; i++) {
        talas_subsonic_item_begin(&w);
        if (id3)
            album_id3_attrs(&w, &lib.albums[order[i]]);
        else
            album_child_attrs(&w, &lib.albums[order[i]]);
        talas_subsonic_elem_end(&w);
    }
    free(order);
    done_library(txn, &lib);
    finish(r, &w);
}

static void m_album_list(struct sreq *r)
{
    album_list(r, 0);
}

static void m_album_list2(struct sreq *r)
{
    album_list(r, 1);
}

static void m_random_songs(struct sreq *r)
{
    struct talas_subsonic_library lib;
    struct talas_subsonic_writer w;
    int64_t size;
    size_t *order;
    MDB_txn *txn;

    if (int_arg(r, "size", 0, LIST_MAX, 10, &size) != 0 || load_library(r, &txn, &lib) != 0)
        return;
    order = shuffled(lib.song_count);
    begin_ok(r, &w);
    talas_subsonic_elem_begin(&w, "randomSongs");
    talas_subsonic_list_begin(&w, "song");
    for (size_t i = 0; i < lib.song_count && i < (size_t)size; i++)
        song_item(&w, &lib.songs[order[i]]);
    free(order);
    done_library(txn, &lib);
    finish(r, &w);
}

static int by_genre(const void *a, const void *b)
{
    const struct talas_subsonic_song *x = *(const struct talas_subsonic_song *const *)a,
                                     *y = *(const struct talas_subsonic_song *const *)b;
    int c = strcasecmp(x->t.genre, y->t.genre);

    if (c == 0 && (c = strcmp(x->t.genre, y->t.genre)) == 0)
        c = strcmp(x->album_id, y->album_id);
    return c;
}

/* getGenres: each genre tag (as written: "Rock" and "rock" are two), how
 * many songs and albums carry it (an album counts in each of its songs'
 * genres). */
static void m_genres(struct sreq *r)
{
    struct talas_subsonic_library lib;
    struct talas_subsonic_writer w;
    const struct talas_subsonic_song **byg;
    size_t n = 0;
    MDB_txn *txn;

    if (load_library(r, &txn, &lib) != 0)
        return;
    byg = xcalloc(lib.song_count + 1, sizeof(*byg));
    for (size_t i = 0; i < lib.song_count; i++)
        if (lib.songs[i].t.genre[0] != '\0')
            byg[n++] = &lib.songs[i];
    qsort(byg, n, sizeof(*byg), by_genre);
    begin_ok(r, &w);
    talas_subsonic_elem_begin(&w, "genres");
    talas_subsonic_list_begin(&w, "genre");
    for (size_t i = 0, j; i < n; i = j) {
        size_t albums = 0;
        /* sorted by genre, then album: each album of the genre starts a run */
        for (j = i; j < n && strcmp(byg[j]->t.genre, byg[i]->t.genre) == 0; j++)
            albums += j == i || strcmp(byg[j]->album_id, byg[j - 1]->album_id) != 0;
        talas_subsonic_item_begin(&w);
        talas_subsonic_attr_str(&w, "value", byg[i]->t.genre);
        talas_subsonic_attr_int(&w, "songCount", (int64_t)(j - i));
        talas_subsonic_attr_int(&w, "albumCount", (int64_t)albums);
        talas_subsonic_elem_end(&w);
    }
    free(byg);
    done_library(txn, &lib);
    finish(r, &w);
}

/* getSongsByGenre: the songs of one genre tag, in album order, paged. */
static void m_songs_by_genre(struct sreq *r)
{
    const char *genre = required(r, "genre");
    struct talas_subsonic_library lib;
    struct talas_subsonic_writer w;
    int64_t count, offset;
    size_t matched = 0;
    MDB_txn *txn;

    if (genre == NULL || int_arg(r, "count", 0, LIST_MAX, 10, &count) != 0 ||
        int_arg(r, "offset", 0, INT32_MAX, 0, &offset) != 0 || load_library(r, &txn, &lib) != 0)
        return;
    begin_ok(r, &w);
    talas_subsonic_elem_begin(&w, "songsByGenre");
    talas_subsonic_list_begin(&w, "song");
    for (size_t i = 0; i < lib.song_count; i++) {
        if (strcmp(lib.songs[i].t.genre, genre) != 0 || matched++ < (size_t)offset)
            continue;
        if (matched > (size_t)(offset + count))
            break;
        song_item(&w, &lib.songs[i]);
    }
    done_library(txn, &lib);
    finish(r, &w);
}

/* search2 (ID3 0) and search3 (ID3 1): artists, albums and songs whose
 * names contain query, each list paged; an empty query (or "") matches
 * everything, which is how apps sync a whole library. */
static void search(struct sreq *r, int id3)
{
    const char *query = talas_subsonic_arg(&r->args, "query");
    int64_t counts[3], offsets[3];
    static const char *const count_names[] = {"artistCount", "albumCount", "songCount"};
    static const char *const offset_names[] = {"artistOffset", "albumOffset", "songOffset"};
    struct talas_subsonic_library lib;
    struct talas_subsonic_writer w;
    char q[256];
    size_t matched;
    MDB_txn *txn;

    if (query == NULL && !id3) {
        send_error(r, TALAS_SUBSONIC_E_MISSING, "required parameter is missing: query");
        return;
    }
    snprintf(q, sizeof(q), "%s", query != NULL ? query : "");
    if (strcmp(q, "\"\"") == 0 || strcmp(q, "*") == 0)
        q[0] = '\0';
    for (int k = 0; k < 3; k++)
        if (int_arg(r, count_names[k], 0, LIST_MAX, 20, &counts[k]) != 0 ||
            int_arg(r, offset_names[k], 0, INT32_MAX, 0, &offsets[k]) != 0)
            return;
    if (load_library(r, &txn, &lib) != 0)
        return;
    begin_ok(r, &w);
    talas_subsonic_elem_begin(&w, id3 ? "searchResult3" : "searchResult2");
    talas_subsonic_list_begin(&w, "artist");
    matched = 0;
    for (size_t i = 0; i < lib.artist_count; i++) {
        if (!talas_subsonic_contains(lib.artists[i].name, q) || matched++ < (size_t)offsets[0])
            continue;
        if (matched > (size_t)(offsets[0] + counts[0]))
            break;
        talas_subsonic_item_begin(&w);
        artist_attrs(&w, &lib.artists[i], id3);
        talas_subsonic_elem_end(&w);
    }
    talas_subsonic_list_end(&w);
    talas_subsonic_list_begin(&w, "album");
    matched = 0;
    for (size_t i = 0; i < lib.album_count; i++) {
        if ((!talas_subsonic_contains(lib.albums[i].name, q) &&
             !talas_subsonic_contains(lib.albums[i].artist, q)) ||
            matched++ < (size_t)offsets[1])
            continue;
        if (matched > (size_t)(offsets[1] + counts[1]))
            break;
        talas_subsonic_item_begin(&w);
        if (id3)
            album_id3_attrs(&w, &lib.albums[i]);
        else
            album_child_attrs(&w, &lib.albums[i]);
        talas_subsonic_elem_end(&w);
    }
    talas_subsonic_list_end(&w);
    talas_subsonic_list_begin(&w, "song");
    matched = 0;
    for (size_t i = 0; i < lib.song_count; i++) {
        const struct talas_subsonic_song *s = &lib.songs[i];
        if ((!talas_subsonic_contains(s->t.title, q) && !talas_subsonic_contains(s->artist, q) &&
             !talas_subsonic_contains(s->album, q)) ||
            matched++ < (size_t)offsets[2])
            continue;
        if (matched > (size_t)(offsets[2] + counts[2]))
            break;
        song_item(&w, s);
    }
    done_library(txn, &lib);
    finish(r, &w);
}

static void m_search2(struct sreq *r)
{
    search(r, 0);
}

static void m_search3(struct sreq *r)
{
    search(r, 1);
}

/* The playable track ID into *T (strings valid while TXN is): 0, or -1
 * when it answered error 70 (or 0 for a storage error). */
static int find_track(struct sreq *r, MDB_txn *txn, const char *id, struct talas_track *t)
{
    int rc = MDB_NOTFOUND;

    if (talas_track_id_valid(id, strlen(id)))
        rc = talas_catalog_get(r->ctx->storage, txn, id, t);
    if (rc == 0 && t->error == NULL)
        return 0;
    if (rc != 0 && rc != MDB_NOTFOUND && rc != -1) {
        log_error("subsonic: reading track %s failed: %s", id, mdb_strerror(rc));
        send_error(r, TALAS_SUBSONIC_E_GENERIC, "the catalog could not be read");
    } else {
        send_error(r, TALAS_SUBSONIC_E_NOT_FOUND, "song not found: %.32s", id);
    }
    return -1;
}

/* A playback event of USER, as /api/ws publishes it. */
static void publish_playback(const char *user, int private, const char *name, const char *track,
                             const char *field, uint64_t value)
{
    struct talas_buf b = {0};
    struct talas_json json;

    talas_ws_event_begin(&json, &b, name);
    talas_json_key(&json, "track_id");
    talas_json_string(&json, track);
    talas_json_key(&json, "user_id");
    talas_json_string(&json, user);
    talas_json_key(&json, field);
    talas_json_uint(&json, value);
    talas_json_object_end(&json);
    talas_ws_hub_publish_activity(user, private, b.data, b.len);
    talas_buf_free(&b);
}

/* A playback event of the request's user. */
static void playback_event(struct sreq *r, int private, const char *name, const char *track,
                           const char *field, uint64_t value)
{
    publish_playback(r->user, private, name, track, field, value);
}

/*
 * A stream from its start is "now playing": the user's playback state
 * goes to the track (a Play, with its events), unless it is already
 * playing it, so that the range requests of one listening and the
 * scrobble that ends it make one session. The response does not wait for
 * it: the change lives in its own memory until its callback, whether or
 * not the request is still there.
 */
struct stream_play {
    const struct talas_worker_ctx *ctx;
    char user[TALAS_ACCOUNT_NAME_MAX + 1];
    char track[TALAS_TRACK_ID_LEN + 1];
    uint64_t duration_ms;
    int private;
};

static void on_stream_played(void *data, const struct talas_state_playback_result *res)
{
    struct stream_play *p = data;

    if (res->outcome == TALAS_STATE_OK) {
        if (res->change.stopped_previous)
            publish_playback(p->user, p->private, "PlaybackStopped", res->change.previous_track,
                             "total_played_ms", res->change.previous_played_ms);
        publish_playback(p->user, p->private, "PlaybackStarted", p->track, "timestamp",
                         talas_wall_ms() / 1000);
    }
    free(p);
}

static void on_stream_state(void *data, const struct talas_state_playback_result *res)
{
    struct stream_play *p = data;
    struct talas_playback_command cmd;

    if (res->outcome != TALAS_STATE_OK ||
        (res->state.status == TALAS_PLAYBACK_PLAYING && strcmp(res->state.track_id, p->track) == 0)) {
        free(p);
        return;
    }
    memset(&cmd, 0, sizeof(cmd));
    cmd.verb = TALAS_PLAYBACK_DO_PLAY;
    cmd.track = p->track;
    cmd.duration_ms = p->duration_ms;
    cmd.quality = p->ctx->conf->transcode_profiles[0].name;
    cmd.platform = "subsonic";
    cmd.now_ms = talas_wall_ms();
    talas_state_playback_change(p->ctx, p->user, &cmd, on_stream_played, p);
}

static void stream_now_playing(struct sreq *r, const char *track, uint64_t duration_ms)
{
    struct stream_play *p = xcalloc(1, sizeof(*p));

    p->ctx = r->ctx;
    snprintf(p->user, sizeof(p->user), "%s", r->user);
    snprintf(p->track, sizeof(p->track), "%s", track);
    p->duration_ms = duration_ms;
    p->private = !talas_user_shares_listening(r->ctx->storage, r->user);
    talas_state_playback_get(r->ctx, r->user, on_stream_state, p);
}

/* stream (DOWNLOAD 0) and download (1): the original file, or a transcode
 * chosen from format and maxBitRate (talas_subsonic_pick_profile), from
 * timeOffset seconds in; estimateContentLength=true gives a transcode of
 * unknown length (AAC not yet cached) an estimated Content-Length that its
 * body then has exactly (http_transcode.h). */
static void media(struct sreq *r, int download)
{
    const char *id = required(r, "id"), *format = talas_subsonic_arg(&r->args, "format");
    const char *estimate = talas_subsonic_arg(&r->args, "estimateContentLength");
    const struct talas_config_profile *cp = NULL;
    struct talas_track t;
    int64_t max_kbps = 0, offset = 0;
    uint64_t source_bps;
    char track[TALAS_TRACK_ID_LEN + 1];
    MDB_txn *txn;
    int rc;

    if (id == NULL)
        return;
    if (!download && (int_arg(r, "maxBitRate", 0, 100000, 0, &max_kbps) != 0 ||
                      int_arg(r, "timeOffset", 0, INT32_MAX, 0, &offset) != 0))
        return;
    if ((rc = talas_storage_read_begin(r->ctx->storage, &txn)) != 0) {
        send_error(r, TALAS_SUBSONIC_E_GENERIC, "the catalog could not be read");
        return;
    }
    if (find_track(r, txn, id, &t) != 0) {
        mdb_txn_abort(txn);
        return;
    }
    snprintf(track, sizeof(track), "%s", t.id);
    source_bps = t.bit_rate;
    mdb_txn_abort(txn);
    if (!download && offset == 0 && talas_http_method_is(r->req, "GET"))
        stream_now_playing(r, track, t.duration_ms);
    if (format != NULL && *format == '\0')
        format = NULL;
    if (!download)
        cp = talas_subsonic_pick_profile(r->ctx->conf, format, max_kbps, source_bps);
    /* the original from an offset: only a transcode can start there */
    if (!download && cp == NULL && offset > 0 && (format == NULL || strcmp(format, "raw") != 0))
        cp = talas_subsonic_pick_profile(r->ctx->conf, "mp3", max_kbps > 0 ? max_kbps : 100000, 0);
    if (cp == NULL)
        talas_stream_original_authorized(r->ctx, r->req, track);
    else
        talas_transcode_serve_authorized(r->ctx, r->req, track, cp, (double)offset,
                                         estimate != NULL && strcasecmp(estimate, "true") == 0);
}

static void m_stream(struct sreq *r)
{
    media(r, 0);
}

static void m_download(struct sreq *r)
{
    media(r, 1);
}

/* getCoverArt's answer, once its job is done. */
static void on_cover(struct talas_cover_waiter *w, enum talas_cover_status status, const void *data,
                     size_t len, const char *type)
{
    struct sreq *r = w->data;
    struct talas_buf body = {(char *)data, len, len};

    switch (status) {
    case TALAS_COVER_OK:
        talas_http_send_body(r->req, 200, type, &body); /* a copy: DATA goes */
        return;
    case TALAS_COVER_MISSING:
        send_error(r, TALAS_SUBSONIC_E_NOT_FOUND, "cover art not found");
        return;
    case TALAS_COVER_UNDECODABLE:
        send_error(r, TALAS_SUBSONIC_E_NOT_FOUND, "the cover art cannot be read or decoded");
        return;
    case TALAS_COVER_BUSY:
        send_error(r, TALAS_SUBSONIC_E_GENERIC, "too many pictures are being resized; retry shortly");
        return;
    case TALAS_COVER_STOPPING:
    default:
        send_error(r, TALAS_SUBSONIC_E_GENERIC, "the server is stopping");
        return;
    }
}

/* getCoverArt: the picture of the coverArt id the library calls give (a
 * track id whose track has a picture), as it is, or with size the longest
 * side resized to that many pixels (JPEG). Reading and resizing run on the
 * pool (media/cover_jobs.h), which answers. */
static void m_cover_art(struct sreq *r)
{
    const char *id = required(r, "id");
    struct talas_cover_source src;
    struct talas_track t;
    int64_t size = 0;
    MDB_txn *txn;
    int rc = MDB_NOTFOUND;

    if (id == NULL || int_arg(r, "size", 1, TALAS_COVER_SIZE_MAX, 0, &size) != 0)
        return;
    if ((rc = talas_storage_read_begin(r->ctx->storage, &txn)) != 0) {
        send_error(r, TALAS_SUBSONIC_E_GENERIC, "the catalog could not be read");
        return;
    }
    rc = MDB_NOTFOUND;
    if (talas_track_id_valid(id, strlen(id)))
        rc = talas_catalog_get(r->ctx->storage, txn, id, &t);
    if (rc != 0 && rc != MDB_NOTFOUND && rc != -1) {
        mdb_txn_abort(txn);
        log_error("subsonic: reading track %s failed: %s", id, mdb_strerror(rc));
        send_error(r, TALAS_SUBSONIC_E_GENERIC, "the catalog could not be read");
        return;
    }
    if (rc != 0 || t.cover == TALAS_COVER_NONE) {
        mdb_txn_abort(txn);
        send_error(r, TALAS_SUBSONIC_E_NOT_FOUND, "cover art not found: %.32s", id);
        return;
    }
    src.id = t.id;
    src.path = t.path;
    src.embedded = t.cover == TALAS_COVER_EMBEDDED;
    src.file = t.cover_file;
    r->cover.cb = on_cover;
    r->cover.data = r;
    talas_cover_jobs_get(&src, (uint32_t)size, &r->cover); /* copies SRC's strings */
    mdb_txn_abort(txn);
}

/* The song ids of "id" (star, scrobble), each a playable track: their
 * count, or -1 when it answered. IDS has room for IDS_MAX. */
static long checked_ids(struct sreq *r, const char *name, const char **ids, int need_one)
{
    size_t n = talas_subsonic_arg_all(&r->args, name, ids, IDS_MAX);
    struct talas_track t;
    MDB_txn *txn;

    if (n == 0 && need_one) {
        send_error(r, TALAS_SUBSONIC_E_MISSING, "required parameter is missing: %s", name);
        return -1;
    }
    if (n > IDS_MAX) {
        send_error(r, TALAS_SUBSONIC_E_GENERIC, "%s: at most %d in one request", name, IDS_MAX);
        return -1;
    }
    if (n == 0)
        return 0;
    if (talas_storage_read_begin(r->ctx->storage, &txn) != 0) {
        send_error(r, TALAS_SUBSONIC_E_GENERIC, "the catalog could not be read");
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (find_track(r, txn, ids[i], &t) != 0) {
            mdb_txn_abort(txn);
            return -1;
        }
    mdb_txn_abort(txn);
    return (long)n;
}

/* A playback change of scrobble that did not go through. */
static void scrobble_failed(struct sreq *r, const struct talas_state_playback_result *res)
{
    send_error(r, TALAS_SUBSONIC_E_GENERIC, "the scrobble could not be recorded%s%s",
               res->reason != NULL ? ": " : "", res->reason != NULL ? res->reason : "");
}

static void scrobble_next(struct sreq *r);
static void scrobble_stop(struct sreq *r);

static void on_scrobble_stopped(void *data, const struct talas_state_playback_result *res)
{
    struct sreq *r = data;

    r->pop = NULL;
    if (res->outcome != TALAS_STATE_OK) {
        scrobble_failed(r, res);
        return;
    }
    playback_event(r, r->private, "PlaybackStopped", r->songs[r->next], "total_played_ms",
                   res->change.total_played_ms);
    r->next++;
    scrobble_next(r);
}

static void on_scrobble_played(void *data, const struct talas_state_playback_result *res)
{
    struct sreq *r = data;

    r->pop = NULL;
    if (res->outcome != TALAS_STATE_OK) {
        scrobble_failed(r, res);
        return;
    }
    if (res->change.stopped_previous)
        playback_event(r, r->private, "PlaybackStopped", res->change.previous_track, "total_played_ms",
                       res->change.previous_played_ms);
    playback_event(r, r->private, "PlaybackStarted", r->songs[r->next], "timestamp", talas_wall_ms() / 1000);
    if (!r->submit) {
        r->next++;
        scrobble_next(r);
        return;
    }
    scrobble_stop(r);
}

static void scrobble_stop(struct sreq *r)
{
    struct talas_playback_command cmd;

    memset(&cmd, 0, sizeof(cmd));
    cmd.verb = TALAS_PLAYBACK_DO_STOP;
    cmd.track = r->songs[r->next];
    cmd.now_ms = talas_wall_ms();
    r->pop = talas_state_playback_change(r->ctx, r->user, &cmd, on_scrobble_stopped, r);
}

/* The user's state, read before each song: a song already playing (a
 * stream from its start, a scrobble with submission=false) is not played
 * again, so that its listening is one session and one play. */
static void on_scrobble_state(void *data, const struct talas_state_playback_result *res)
{
    struct sreq *r = data;
    struct talas_playback_command cmd;
    struct talas_track t;
    MDB_txn *txn;

    r->pop = NULL;
    if (res->outcome != TALAS_STATE_OK) {
        scrobble_failed(r, res);
        return;
    }
    if (res->state.status == TALAS_PLAYBACK_PLAYING && strcmp(res->state.track_id, r->songs[r->next]) == 0) {
        if (r->submit) {
            scrobble_stop(r);
        } else {
            r->next++;
            scrobble_next(r);
        }
        return;
    }
    memset(&cmd, 0, sizeof(cmd));
    cmd.verb = TALAS_PLAYBACK_DO_PLAY;
    cmd.track = r->songs[r->next];
    if (talas_storage_read_begin(r->ctx->storage, &txn) == 0) {
        if (talas_catalog_get(r->ctx->storage, txn, cmd.track, &t) == 0)
            cmd.duration_ms = t.duration_ms;
        mdb_txn_abort(txn);
    }
    cmd.quality = r->ctx->conf->transcode_profiles[0].name;
    cmd.platform = "subsonic";
    cmd.now_ms = talas_wall_ms();
    r->pop = talas_state_playback_change(r->ctx, r->user, &cmd, on_scrobble_played, r);
}

/* The next song of scrobble, or the answer once all are in. */
static void scrobble_next(struct sreq *r)
{
    struct talas_subsonic_writer w;

    if (r->next == r->song_count) {
        begin_ok(r, &w);
        finish(r, &w);
        return;
    }
    r->pop = talas_state_playback_get(r->ctx, r->user, on_scrobble_state, r);
}

/* scrobble: submission=false is "now playing" (a Play: PlaybackStarted);
 * true (the default) a play that happened: a Play and its Stop, so that it
 * counts in the track's plays and the user's listening history; a song
 * already playing is only stopped (on_scrobble_state). Each goes
 * through the playback state interface (state/state_playback.h): LMDB, or
 * in cluster mode Redis and the analytics store, as a Play on /api/ws. */
static void m_scrobble(struct sreq *r)
{
    const char *submission = talas_subsonic_arg(&r->args, "submission");
    long n;

    r->songs = h2o_mem_alloc_pool(&r->req->pool, IDS_MAX * sizeof(*r->songs));
    if ((n = checked_ids(r, "id", r->songs, 1)) < 0)
        return;
    r->song_count = (size_t)n;
    r->submit = submission == NULL || strcmp(submission, "false") != 0;
    r->private = !talas_user_shares_listening(r->ctx->storage, r->user);
    scrobble_next(r);
}

/* ------------------------------------------------------------ playlists */

/* The answer of a playlist store outcome that is not OK. */
static void playlist_failed(struct sreq *r, const struct talas_state_playlist_result *res)
{
    switch (res->outcome) {
    case TALAS_STATE_FORBIDDEN:
        send_error(r, TALAS_SUBSONIC_E_FORBIDDEN, "%s", res->reason);
        break;
    case TALAS_STATE_NOT_FOUND:
        send_error(r, TALAS_SUBSONIC_E_NOT_FOUND, "playlist not found");
        break;
    case TALAS_STATE_QUOTA:
        send_error(r, TALAS_SUBSONIC_E_GENERIC, "quota exceeded: limit %s (%" PRIu64 ") reached",
                   res->refusal.limit, res->refusal.max);
        break;
    case TALAS_STATE_REFUSED:
    case TALAS_STATE_UNAVAILABLE:
        send_error(r, TALAS_SUBSONIC_E_GENERIC, "%s", res->reason != NULL ? res->reason : "refused");
        break;
    default:
        send_error(r, TALAS_SUBSONIC_E_GENERIC, "the playlist could not be stored");
    }
}

/* Whether R's user may read P: its owner, an editor, or anyone when it is
 * public. */
static int may_read_playlist(const struct sreq *r, const struct talas_state_playlist *p)
{
    if (p->public_ || p->owner[0] == '\0' || strcmp(p->owner, r->user) == 0)
        return 1;
    for (size_t i = 0; i < p->editor_count; i++)
        if (strcmp(p->editors[i], r->user) == 0)
            return 1;
    return 0;
}

/* Begins a <playlist> element of P with its attributes; songs gone from
 * the catalog count for nothing. */
static void playlist_begin(struct talas_subsonic_writer *w, const struct talas_subsonic_library *lib,
                           const struct talas_state_playlist *p)
{
    char created[32], changed[32];
    uint64_t duration = 0;
    size_t count = 0;

    for (size_t i = 0; i < p->track_count; i++) {
        const struct talas_subsonic_song *s = talas_subsonic_song_find(lib, p->tracks[i]);
        if (s != NULL) {
            count++;
            duration += s->t.duration_ms;
        }
    }
    iso_time(p->created_ms / 1000, created);
    iso_time(p->changed_ms / 1000, changed);
    talas_subsonic_attr_str(w, "id", p->id);
    /* a playlist from before names is named by its id */
    talas_subsonic_attr_str(w, "name", p->name[0] != '\0' ? p->name : p->id);
    if (p->comment[0] != '\0')
        talas_subsonic_attr_str(w, "comment", p->comment);
    talas_subsonic_attr_str(w, "owner", p->owner);
    talas_subsonic_attr_bool(w, "public", p->public_);
    talas_subsonic_attr_int(w, "songCount", (int64_t)count);
    talas_subsonic_attr_int(w, "duration", (int64_t)((duration + 500) / 1000));
    talas_subsonic_attr_str(w, "created", created);
    talas_subsonic_attr_str(w, "changed", changed);
}

/* Writes playlist P with its entries. */
static void playlist_answer(struct sreq *r, const struct talas_state_playlist *p)
{
    struct talas_subsonic_library lib;
    struct talas_subsonic_writer w;
    MDB_txn *txn;

    if (load_library(r, &txn, &lib) != 0)
        return;
    begin_ok(r, &w);
    talas_subsonic_elem_begin(&w, "playlist");
    playlist_begin(&w, &lib, p);
    talas_subsonic_list_begin(&w, "entry");
    for (size_t i = 0; i < p->track_count; i++) {
        const struct talas_subsonic_song *s = talas_subsonic_song_find(&lib, p->tracks[i]);
        if (s != NULL)
            song_item(&w, s);
    }
    done_library(txn, &lib);
    finish(r, &w);
}

static void on_playlist_read(void *data, const struct talas_state_playlist_result *res)
{
    struct sreq *r = data;

    r->op = NULL;
    if (res->outcome != TALAS_STATE_OK) {
        playlist_failed(r, res);
        return;
    }
    /* a private playlist is its owner's and its editors' only */
    if (!may_read_playlist(r, res->playlist)) {
        send_error(r, TALAS_SUBSONIC_E_FORBIDDEN, "the playlist is not shared with %s", r->user);
        return;
    }
    playlist_answer(r, res->playlist);
}

/* Copies S into the request's pool. */
static char *pool_strdup(struct sreq *r, const char *s)
{
    size_t n = strlen(s) + 1;
    char *copy = h2o_mem_alloc_pool(&r->req->pool, n);

    memcpy(copy, s, n);
    return copy;
}

/* A playlist id parameter NAME: NULL when it answered (missing: 10; an id
 * no playlist can have: 70). */
static const char *playlist_id(struct sreq *r, const char *name)
{
    const char *id = required(r, name);

    if (id != NULL && strlen(id) > TALAS_PLAYLIST_ID_MAX) {
        send_error(r, TALAS_SUBSONIC_E_NOT_FOUND, "playlist not found");
        return NULL;
    }
    return id;
}

static void m_playlist(struct sreq *r)
{
    const char *id = playlist_id(r, "id");

    if (id == NULL)
        return;
    r->playlist = pool_strdup(r, id);
    r->op = talas_state_playlist_get(r->ctx, r->playlist, on_playlist_read, r);
}

static void on_listed(void *data, const struct talas_state_playlist_result *res)
{
    struct sreq *r = data;
    struct talas_subsonic_library lib;
    struct talas_subsonic_writer w;
    MDB_txn *txn;

    r->op = NULL;
    if (res->outcome != TALAS_STATE_OK) {
        playlist_failed(r, res);
        return;
    }
    if (load_library(r, &txn, &lib) != 0)
        return;
    begin_ok(r, &w);
    talas_subsonic_elem_begin(&w, "playlists");
    talas_subsonic_list_begin(&w, "playlist");
    for (size_t i = 0; i < res->playlist_count; i++) {
        talas_subsonic_item_begin(&w);
        playlist_begin(&w, &lib, &res->playlists[i]);
        talas_subsonic_elem_end(&w);
    }
    done_library(txn, &lib);
    finish(r, &w);
}

/* getPlaylists: the user's own, those shared with them, and the public
 * ones. Another user's (username) is for an admin, and Subsonic accounts
 * here are none. */
static void m_playlists(struct sreq *r)
{
    const char *who = talas_subsonic_arg(&r->args, "username");

    if (who != NULL && strcmp(who, r->user) != 0) {
        send_error(r, TALAS_SUBSONIC_E_FORBIDDEN, "only an admin may list the playlists of another user");
        return;
    }
    r->op = talas_state_playlist_list(r->ctx, r->user, on_listed, r);
}

/* A PlaylistUpdated event of R's playlist: ACTION "Added" (TRACK at
 * POSITION), "Changed" (its details or tracks otherwise) or "Deleted". */
static void playlist_event(struct sreq *r, const char *action, const char *track, uint64_t position)
{
    struct talas_buf ev = {0};
    struct talas_json json;

    talas_ws_event_begin(&json, &ev, "PlaylistUpdated");
    talas_json_key(&json, "playlist_id");
    talas_json_string(&json, r->playlist);
    talas_json_key(&json, "action");
    talas_json_string(&json, action);
    if (track != NULL) {
        talas_json_key(&json, "track_id");
        talas_json_string(&json, track);
        talas_json_key(&json, "position");
        talas_json_uint(&json, position);
    }
    if (strcmp(action, "Deleted") == 0) {
        talas_json_key(&json, "deleted");
        talas_json_bool(&json, 1);
    }
    talas_json_key(&json, "user_id");
    talas_json_string(&json, r->user);
    talas_json_object_end(&json);
    talas_ws_hub_publish(TALAS_WS_TO_ALL, NULL, ev.data, ev.len);
    talas_buf_free(&ev);
}

/* The events of an edit done: one Changed for the details and removals,
 * one Added per song appended (the track count after is COUNT). */
static void edit_events(struct sreq *r, uint64_t count)
{
    if (r->changed_details || (r->song_count == 0 && r->edit_create))
        playlist_event(r, "Changed", NULL, 0);
    for (size_t i = 0; i < r->song_count; i++)
        playlist_event(r, "Added", r->songs[i], count - r->song_count + i);
}

static void on_edited(void *data, const struct talas_state_playlist_result *res)
{
    struct sreq *r = data;
    struct talas_subsonic_writer w;

    r->op = NULL;
    if (res->outcome != TALAS_STATE_OK) {
        playlist_failed(r, res);
        return;
    }
    edit_events(r, res->position);
    if (r->answer_playlist) {
        r->op = talas_state_playlist_get(r->ctx, r->playlist, on_playlist_read, r);
        return;
    }
    begin_ok(r, &w);
    finish(r, &w);
}

/* createPlaylist: a new playlist of the user named NAME (its id made
 * here), or (playlistId) an existing one whose songs become those of
 * songId, in order; answers the playlist. */
static void m_create_playlist(struct sreq *r)
{
    const char *id = talas_subsonic_arg(&r->args, "playlistId");
    const char *name = talas_subsonic_arg(&r->args, "name");
    struct talas_playlist_edit e;
    char made[TALAS_PLAYLIST_NEW_ID_LEN + 1];
    long n;

    if ((id == NULL || *id == '\0') && (name = required(r, "name")) == NULL)
        return;
    r->songs = h2o_mem_alloc_pool(&r->req->pool, (IDS_MAX + 1) * sizeof(*r->songs));
    if ((n = checked_ids(r, "songId", r->songs, 0)) < 0)
        return;
    r->song_count = (size_t)n;
    memset(&e, 0, sizeof(e));
    e.public_ = -1;
    e.name = name;
    e.adds = r->songs;
    e.add_count = r->song_count;
    if (id != NULL && *id != '\0') {
        if (strlen(id) > TALAS_PLAYLIST_ID_MAX) {
            send_error(r, TALAS_SUBSONIC_E_NOT_FOUND, "playlist not found");
            return;
        }
        e.replace = 1;
        r->playlist = pool_strdup(r, id);
        r->changed_details = 1;
    } else {
        e.create = 1;
        talas_playlist_id_make(made);
        r->playlist = pool_strdup(r, made);
        r->edit_create = 1;
    }
    r->answer_playlist = 1;
    r->op = talas_state_playlist_edit(r->ctx, r->user, r->playlist, &e, on_edited, r);
}

/* The value of a boolean parameter NAME: -1 when absent, -2 (answered)
 * when malformed. */
static int bool_arg(struct sreq *r, const char *name)
{
    const char *v = talas_subsonic_arg(&r->args, name);

    if (v == NULL)
        return -1;
    if (strcmp(v, "true") == 0)
        return 1;
    if (strcmp(v, "false") == 0)
        return 0;
    send_error(r, TALAS_SUBSONIC_E_GENERIC, "%s: must be true or false", name);
    return -2;
}

/* updatePlaylist: the details (name, comment, public: the owner only),
 * songIndexToRemove (indexes into the playlist as it was) then
 * songIdToAdd, in one change. */
static void m_update_playlist(struct sreq *r)
{
    const char *id = playlist_id(r, "playlistId");
    const char **raw;
    uint64_t *indexes;
    struct talas_playlist_edit e;
    size_t n;
    long songs;

    if (id == NULL)
        return;
    memset(&e, 0, sizeof(e));
    if ((e.public_ = bool_arg(r, "public")) == -2)
        return;
    e.name = talas_subsonic_arg(&r->args, "name");
    e.comment = talas_subsonic_arg(&r->args, "comment");
    raw = h2o_mem_alloc_pool(&r->req->pool, (IDS_MAX + 1) * sizeof(*raw));
    n = talas_subsonic_arg_all(&r->args, "songIndexToRemove", raw, IDS_MAX);
    if (n > IDS_MAX) {
        send_error(r, TALAS_SUBSONIC_E_GENERIC, "songIndexToRemove: at most %d in one request", IDS_MAX);
        return;
    }
    indexes = h2o_mem_alloc_pool(&r->req->pool, (n + 1) * sizeof(*indexes));
    for (size_t i = 0; i < n; i++) {
        char *end;
        if (raw[i][0] < '0' || raw[i][0] > '9' ||
            (errno = 0, indexes[i] = strtoull(raw[i], &end, 10), errno != 0 || *end != '\0')) {
            send_error(r, TALAS_SUBSONIC_E_GENERIC, "songIndexToRemove: must be an index from 0");
            return;
        }
    }
    r->songs = h2o_mem_alloc_pool(&r->req->pool, (IDS_MAX + 1) * sizeof(*r->songs));
    if ((songs = checked_ids(r, "songIdToAdd", r->songs, 0)) < 0)
        return;
    r->song_count = (size_t)songs;
    e.adds = r->songs;
    e.add_count = r->song_count;
    e.removes = indexes;
    e.remove_count = n;
    r->changed_details = e.name != NULL || e.comment != NULL || e.public_ >= 0 || n > 0;
    r->playlist = pool_strdup(r, id);
    r->op = talas_state_playlist_edit(r->ctx, r->user, r->playlist, &e, on_edited, r);
}

static void on_deleted(void *data, const struct talas_state_playlist_result *res)
{
    struct sreq *r = data;
    struct talas_subsonic_writer w;

    r->op = NULL;
    if (res->outcome != TALAS_STATE_OK) {
        playlist_failed(r, res);
        return;
    }
    playlist_event(r, "Deleted", NULL, 0);
    begin_ok(r, &w);
    finish(r, &w);
}

/* deletePlaylist: the owner's only. */
static void m_delete_playlist(struct sreq *r)
{
    const char *id = playlist_id(r, "id");

    if (id == NULL)
        return;
    r->playlist = pool_strdup(r, id);
    r->op = talas_state_playlist_delete(r->ctx, r->user, r->playlist, on_deleted, r);
}

/* ------------------------------------------------------------- dispatch */

static const struct method {
    const char *name;
    int open; /* answered without credentials */
    void (*fn)(struct sreq *r);
} methods[] = {
    {"ping", 0, m_ping},
    {"getLicense", 0, m_license},
    {"getOpenSubsonicExtensions", 1, m_extensions},
    {"getUser", 0, m_user},
    {"getMusicFolders", 0, m_folders},
    {"getIndexes", 0, m_indexes},
    {"getMusicDirectory", 0, m_directory},
    {"getArtists", 0, m_artists},
    {"getArtist", 0, m_artist},
    {"getAlbum", 0, m_album},
    {"getSong", 0, m_song},
    {"getAlbumList", 0, m_album_list},
    {"getAlbumList2", 0, m_album_list2},
    {"getRandomSongs", 0, m_random_songs},
    {"getGenres", 0, m_genres},
    {"getSongsByGenre", 0, m_songs_by_genre},
    {"search2", 0, m_search2},
    {"search3", 0, m_search3},
    {"stream", 0, m_stream},
    {"download", 0, m_download},
    {"getCoverArt", 0, m_cover_art},
    {"getPlaylists", 0, m_playlists},
    {"getPlaylist", 0, m_playlist},
    {"createPlaylist", 0, m_create_playlist},
    {"updatePlaylist", 0, m_update_playlist},
    {"deletePlaylist", 0, m_delete_playlist},
    {"scrobble", 0, m_scrobble},
};

/* Checks the request's credentials; R->user is then the account. Answers
 * and returns -1 when they fail. */
static int authenticate(struct sreq *r)
{
    char address[64], password[TALAS_ACCOUNT_PASSWORD_MAX + 1];
    struct talas_subsonic_auth auth;
    const char *error, *who;
    uint64_t now = talas_now_ms(), retry_ms;
    size_t len = 0;
    MDB_txn *txn;
    int code, rc, ok = 0;

    if ((code = talas_subsonic_auth_parse(&r->args, &auth, &error)) != 0) {
        send_error(r, code, "%s", error);
        return -1;
    }
    talas_http_client_ip(r->req, address);
    who = auth.mode == TALAS_SUBSONIC_AUTH_APIKEY ? "" : auth.user;
    if (talas_login_limits_blocked(sub.limits, address, who, now, &retry_ms)) {
        code =
            auth.mode == TALAS_SUBSONIC_AUTH_APIKEY ? TALAS_SUBSONIC_E_APIKEY : TALAS_SUBSONIC_E_CREDENTIALS;
        talas_subsonic_auth_free(&auth);
        send_error(r, code,
                   "too many failed logins from this address: subsonic.max_failed_logins (%d) reached, retry "
                   "in %" PRIu64 " s",
                   r->ctx->conf->subsonic_max_failed_logins, (retry_ms + 999) / 1000);
        return -1;
    }
    if ((rc = talas_storage_read_begin(r->ctx->storage, &txn)) != 0) {
        talas_subsonic_auth_free(&auth);
        send_error(r, TALAS_SUBSONIC_E_GENERIC, "the accounts could not be read");
        return -1;
    }
    if (auth.mode == TALAS_SUBSONIC_AUTH_APIKEY) {
        rc = talas_apikey_user(r->ctx->storage, txn, auth.apikey, strlen(auth.apikey), r->user);
        ok = rc == 0;
    } else {
        rc = talas_account_password(r->ctx->storage, txn, sub.have_key ? &sub.key : NULL, auth.user, password,
                                    sizeof(password), &len);
        if (rc == 0 && auth.mode == TALAS_SUBSONIC_AUTH_PASSWORD)
            ok = len == auth.password_len && CRYPTO_memcmp(password, auth.password, len) == 0;
        else if (rc == 0)
            ok = talas_subsonic_token_ok(password, len, auth.salt, auth.token);
        if (rc == -1)
            log_error("subsonic: the password of \"%s\" does not open with subsonic.password_key_file "
                      "(another key, or a damaged record)",
                      auth.user);
        if (ok)
            snprintf(r->user, sizeof(r->user), "%s", auth.user);
        OPENSSL_cleanse(password, sizeof(password));
    }
    mdb_txn_abort(txn);
    if (rc != 0 && rc != MDB_NOTFOUND && rc != -1) {
        log_error("subsonic: reading the accounts failed: %s", mdb_strerror(rc));
        talas_subsonic_auth_free(&auth);
        send_error(r, TALAS_SUBSONIC_E_GENERIC, "the accounts could not be read");
        return -1;
    }
    if (!ok) {
        talas_login_limits_failed(sub.limits, address, who, now);
        log_warn("subsonic: failed login of \"%.128s\" from %s (%s)", who[0] ? who : "(API key)", address,
                 auth.mode == TALAS_SUBSONIC_AUTH_APIKEY  ? "API key"
                 : auth.mode == TALAS_SUBSONIC_AUTH_TOKEN ? "token"
                                                          : "password");
        if (auth.mode == TALAS_SUBSONIC_AUTH_APIKEY)
            send_error(r, TALAS_SUBSONIC_E_APIKEY, "invalid API key");
        else
            send_error(r, TALAS_SUBSONIC_E_CREDENTIALS, "wrong username or password");
        talas_subsonic_auth_free(&auth);
        return -1;
    }
    talas_login_limits_succeeded(sub.limits, address, who);
    talas_subsonic_auth_free(&auth);
    return 0;
}

/* Hands R to a method of subsonic_user.c, with this file's elements. */
static void user_call(struct sreq *r, talas_subsonic_call_fn *fn)
{
    struct talas_subsonic_call *c = h2o_mem_alloc_pool(&r->req->pool, sizeof(*c));

    *c = (struct talas_subsonic_call){r->ctx,           r->req,      &r->args,         r->format,
                                      r->callback,      r->user,     song_attrs,       album_id3_attrs,
                                      album_child_attrs, artist_attrs};
    fn(c);
}

/* Whether a POST's body is a form (no Content-Type counts as one). */
static int body_is_form(h2o_req_t *req)
{
    const h2o_iovec_t *type = talas_http_header(req, H2O_TOKEN_CONTENT_TYPE);
    static const char form[] = "application/x-www-form-urlencoded";

    return type == NULL ||
           (type->len >= sizeof(form) - 1 && strncasecmp(type->base, form, sizeof(form) - 1) == 0);
}

int talas_subsonic_serve(const struct talas_worker_ctx *ctx, h2o_req_t *req)
{
    char name[TALAS_SUBSONIC_METHOD_MAX + 1];
    const char *error;
    struct sreq *r;
    size_t i;

    if (!ctx->conf->subsonic_enabled) {
        talas_http_send_error(req, 404, "not_found", "no such resource (subsonic.enabled is off)");
        return 0;
    }
    r = h2o_mem_alloc_shared(&req->pool, sizeof(*r), sreq_dispose);
    memset(r, 0, sizeof(*r));
    r->ctx = ctx;
    r->req = req;
    r->format = TALAS_SUBSONIC_XML;
    if (!talas_http_method_is(req, "GET") && !talas_http_method_is(req, "HEAD") &&
        !talas_http_method_is(req, "POST")) {
        req->res.status = 405;
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("GET, HEAD, POST"));
        talas_http_send_error(req, 405, "method_not_allowed", "the Subsonic API takes GET and form POST");
        return 0;
    }
    if ((req->query_at != SIZE_MAX && talas_subsonic_args_parse(&r->args, req->path.base + req->query_at + 1,
                                                                req->path.len - req->query_at - 1) != 0) ||
        (talas_http_method_is(req, "POST") && body_is_form(req) &&
         talas_subsonic_args_parse(&r->args, req->entity.base, req->entity.len) != 0)) {
        /* the format may be what failed to parse: XML */
        send_error(r, TALAS_SUBSONIC_E_GENERIC,
                   "malformed parameters (percent-encoding, a NUL byte, or more than %d)",
                   TALAS_SUBSONIC_MAX_PARAMS);
        return 0;
    }
    if (talas_subsonic_format(&r->args, &r->format, &r->callback, &error) != 0) {
        send_error(r, TALAS_SUBSONIC_E_GENERIC, "%s", error);
        return 0;
    }
    if (talas_http_method_is(req, "POST") && !body_is_form(req)) {
        send_error(r, TALAS_SUBSONIC_E_GENERIC, "a POST's body must be application/x-www-form-urlencoded");
        return 0;
    }
    if (talas_subsonic_method(req->path_normalized.base, req->path_normalized.len, name) != 0)
        name[0] = '\0';
    for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (strcmp(methods[i].name, name) == 0)
            break;
    if (i < sizeof(methods) / sizeof(methods[0]) && methods[i].open) {
        methods[i].fn(r);
        return 0;
    }
    /* credentials first: an unknown method tells nothing to a stranger */
    if (authenticate(r) != 0)
        return 0;
    if (i == sizeof(methods) / sizeof(methods[0])) {
        talas_subsonic_call_fn *fn = talas_subsonic_user_method(name);
        if (fn == NULL)
            fn = talas_subsonic_lyrics_method(name);
        if (fn == NULL)
            fn = talas_subsonic_queue_method(name);
        if (fn != NULL) {
            user_call(r, fn);
            return 0;
        }
        send_error(r, TALAS_SUBSONIC_E_GENERIC, "not implemented: %s", name[0] ? name : "(no method)");
        return 0;
    }
    methods[i].fn(r);
    return 0;
}
