/*
 * subsonic_lyrics.c - the Subsonic API's lyrics calls (subsonic_lyrics.h).
 *
 * Entry point: talas_subsonic_lyrics_method (http_subsonic.c, once the
 * request is authenticated).
 *
 *   getLyricsBySongId  id: the song's lyrics as OpenSubsonic's lyricsList
 *                      of structuredLyrics (synced ones with each line's
 *                      start in ms); an empty lyricsList when it has none;
 *                      error 70 for an unknown song;
 *   getLyrics          artist, title (either may be left out): the plain
 *                      text of the first song in catalog order that
 *                      matches both (ASCII case ignored) and has lyrics, in
 *                      a lyrics element with its artist and title; an
 *                      empty lyrics element when none does.
 *
 * The lyrics come from TALAS_DBI_LYRICS (store/lyrics.h), written by the
 * scanner from sidecar .lrc files and embedded tags; only LMDB reads here.
 *
 * Logs: catalog read errors.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "http/http_response.h"
#include "subsonic/subsonic_lyrics.h"
#include "store/catalog.h"
#include "store/lyrics.h"

static void read_failed(struct talas_subsonic_call *c, int rc)
{
    log_error("subsonic: reading the lyrics failed: %s", rc == -1 ? "damaged record" : mdb_strerror(rc));
    talas_subsonic_call_error(c, TALAS_SUBSONIC_E_GENERIC, "the lyrics could not be read");
}

/* ------------------------------------------------- getLyricsBySongId */

/* The sets of REC as structuredLyrics; ARTIST and TITLE stand in for a
 * set's own [ar:] and [ti:]. */
static void structured(struct talas_subsonic_writer *w, struct talas_lyrics_record *rec, const char *artist,
                       const char *title)
{
    struct talas_lyrics_set set;

    talas_subsonic_list_begin(w, "structuredLyrics");
    while (talas_lyrics_next_set(rec, &set) == 0) {
        const char *value;
        int64_t start;

        talas_subsonic_item_begin(w);
        talas_subsonic_attr_str(w, "displayArtist", set.artist[0] ? set.artist : artist);
        talas_subsonic_attr_str(w, "displayTitle", set.title[0] ? set.title : title);
        /* OpenSubsonic: "xxx" when the language is not known */
        talas_subsonic_attr_str(w, "lang", set.lang[0] ? set.lang : "xxx");
        talas_subsonic_attr_int(w, "offset", set.offset_ms);
        talas_subsonic_attr_bool(w, "synced", set.synced);
        talas_subsonic_list_begin(w, "line");
        while (talas_lyrics_next_line(&set, &start, &value) == 0) {
            talas_subsonic_item_begin(w);
            if (set.synced)
                talas_subsonic_attr_int(w, "start", start);
            talas_subsonic_text(w, value);
            talas_subsonic_elem_end(w);
        }
        talas_subsonic_list_end(w);
        talas_subsonic_elem_end(w);
    }
    talas_subsonic_list_end(w);
}

static void m_lyrics_by_song(struct talas_subsonic_call *c)
{
    const char *id = talas_subsonic_arg(c->args, "id");
    struct talas_lyrics_record rec;
    struct talas_subsonic_writer w;
    struct talas_track t;
    MDB_txn *txn;
    int rc;

    if (id == NULL || *id == '\0') {
        talas_subsonic_call_error(c, TALAS_SUBSONIC_E_MISSING, "required parameter is missing: id");
        return;
    }
    if ((rc = talas_storage_read_begin(c->ctx->storage, &txn)) != 0) {
        read_failed(c, rc);
        return;
    }
    rc = talas_catalog_get(c->ctx->storage, txn, id, &t);
    if (rc == MDB_NOTFOUND || (rc == 0 && t.error != NULL)) {
        mdb_txn_abort(txn);
        talas_subsonic_call_error(c, TALAS_SUBSONIC_E_NOT_FOUND, "song not found");
        return;
    }
    if (rc == 0 && (rc = talas_lyrics_get(c->ctx->storage, txn, id, &rec)) == MDB_NOTFOUND) {
        rc = 0;
        rec.sets = 0; /* scanned before lyrics were kept: none yet */
    }
    if (rc != 0) {
        mdb_txn_abort(txn);
        read_failed(c, rc);
        return;
    }
    talas_subsonic_writer_begin(&w, c->format, c->callback, 1);
    talas_subsonic_elem_begin(&w, "lyricsList");
    if (rec.sets > 0)
        structured(&w, &rec, t.artist, t.title);
    talas_subsonic_elem_end(&w);
    talas_subsonic_writer_end(&w);
    mdb_txn_abort(txn);
    talas_subsonic_send_doc(c->req, &w);
}

/* ---------------------------------------------------------- getLyrics */

/* The lines of the first set of REC, one a line, into OUT. */
static void plain_text(struct talas_lyrics_record *rec, struct talas_buf *out)
{
    struct talas_lyrics_set set;
    const char *value;
    int64_t start;
    int first = 1;

    if (talas_lyrics_next_set(rec, &set) != 0)
        return;
    while (talas_lyrics_next_line(&set, &start, &value) == 0) {
        if (!first)
            talas_buf_puts(out, "\n");
        talas_buf_puts(out, value);
        first = 0;
    }
}

static void m_lyrics(struct talas_subsonic_call *c)
{
    const char *artist = talas_subsonic_arg(c->args, "artist"), *title = talas_subsonic_arg(c->args, "title");
    const struct talas_subsonic_song *found = NULL;
    struct talas_subsonic_library lib;
    struct talas_lyrics_record rec;
    struct talas_subsonic_writer w;
    struct talas_buf text = {0};
    MDB_txn *txn;
    int rc;

    if ((rc = talas_storage_read_begin(c->ctx->storage, &txn)) != 0) {
        read_failed(c, rc);
        return;
    }
    if ((rc = talas_subsonic_library_load(c->ctx->storage, txn, c->ctx->conf, 0, &lib)) != 0) {
        mdb_txn_abort(txn);
        read_failed(c, rc);
        return;
    }
    /* no artist and no title ask for nothing */
    for (size_t i = 0; ((artist != NULL && *artist) || (title != NULL && *title)) && i < lib.song_count;
         i++) {
        const struct talas_subsonic_song *s = &lib.songs[i];

        if ((artist != NULL && *artist && strcasecmp(s->artist, artist) != 0) ||
            (title != NULL && *title && strcasecmp(s->t.title, title) != 0))
            continue;
        rc = talas_lyrics_get(c->ctx->storage, txn, s->t.id, &rec);
        if (rc == 0 && rec.sets > 0) {
            found = s;
            break;
        }
        if (rc != 0 && rc != MDB_NOTFOUND && rc != -1) {
            talas_subsonic_library_free(&lib);
            mdb_txn_abort(txn);
            read_failed(c, rc);
            return;
        }
    }
    talas_subsonic_writer_begin(&w, c->format, c->callback, 1);
    talas_subsonic_elem_begin(&w, "lyrics");
    if (found != NULL) {
        talas_subsonic_attr_str(&w, "artist", found->artist);
        talas_subsonic_attr_str(&w, "title", found->t.title);
        plain_text(&rec, &text);
        talas_buf_append(&text, "", 1);
        talas_subsonic_text(&w, text.data);
        talas_buf_free(&text);
    }
    talas_subsonic_elem_end(&w);
    talas_subsonic_writer_end(&w);
    talas_subsonic_library_free(&lib);
    mdb_txn_abort(txn);
    talas_subsonic_send_doc(c->req, &w);
}

/* ------------------------------------------------------------- dispatch */

static const struct {
    const char *name;
    talas_subsonic_call_fn *fn;
} methods[] = {
    {"getLyricsBySongId", m_lyrics_by_song},
    {"getLyrics", m_lyrics},
};

talas_subsonic_call_fn *talas_subsonic_lyrics_method(const char *name)
{
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (strcmp(methods[i].name, name) == 0)
            return methods[i].fn;
    return NULL;
}
