/*
 * subsonic_library.h - the catalog seen as the Subsonic API sees music:
 * artists, their albums, the albums' songs, in music folders.
 *
 * Talas's catalog keeps tracks (title, artist, album artist, album, disc
 * and track numbers, year, genre, path); this view groups them: an artist
 * is a distinct album artist (the album_artist tag, else the artist tag),
 * an album a distinct (album artist, album) pair, so that a compilation of
 * many artists is one album, its songs in disc, track, then path order; a
 * song a playable track, and a music folder an entry of library.paths (id
 * 1, 2, ... in the configuration's order). Empty tags read as
 * "[Unknown Artist]" / "[Unknown Album]". An album's year is the latest
 * of its songs', its genre the first one given, its cover art the first
 * song's that has one.
 *
 * Ids are stable across rescans and nodes: a song's is its track id (16
 * base64url characters); an artist's "ar" and an album's "al" followed by
 * 16 hex digits of the SHA-256 of its names. Kinds tell apart by form.
 *
 * The view is built from one read transaction (strings point into the
 * map: valid while that transaction is), walking every track: O(tracks)
 * per request, on the worker's loop (LMDB reads only, no waiting).
 */
#ifndef TALAS_SUBSONIC_LIBRARY_H
#define TALAS_SUBSONIC_LIBRARY_H

#include <stddef.h>
#include <stdint.h>
#include <lmdb.h>

#include "core/config.h"
#include "store/catalog.h"
#include "store/storage.h"

#define TALAS_SUBSONIC_ID_LEN 18 /* "ar" or "al" + 16 hex digits */

struct talas_subsonic_song {
    struct talas_track t;
    const char *artist;  /* the tag, or "[Unknown Artist]" */
    const char *album_artist; /* the album_artist tag, else artist: whose album it is */
    const char *album;   /* likewise */
    const char *cover;   /* the coverArt id (a track id: its own, else its album's), NULL: none */
    const char *relpath; /* below its music folder */
    char artist_id[TALAS_SUBSONIC_ID_LEN + 1];
    char album_id[TALAS_SUBSONIC_ID_LEN + 1];
    unsigned folder; /* 1.. */
    size_t seq;      /* catalog (path) order */
};

struct talas_subsonic_album {
    char id[TALAS_SUBSONIC_ID_LEN + 1];
    const char *name, *artist;
    const char *artist_id;
    size_t first, count;  /* its songs: songs[first .. first + count - 1], in path order */
    uint64_t duration_ms; /* all of them */
    uint64_t created;     /* the latest scan of one of them, seconds since the epoch */
    uint32_t year;        /* 0: none known */
    const char *genre;    /* "": none */
    const char *cover;    /* the coverArt id (a song's track id), NULL: none */
};

struct talas_subsonic_artist {
    char id[TALAS_SUBSONIC_ID_LEN + 1];
    const char *name;
    size_t first, count; /* its albums: albums[first .. first + count - 1], by name */
};

struct talas_subsonic_library {
    struct talas_subsonic_song *songs; /* by album artist, album, disc, track, then path */
    size_t song_count;
    struct talas_subsonic_album *albums; /* by artist, then name */
    size_t album_count;
    struct talas_subsonic_artist *artists; /* by name */
    size_t artist_count;
};

/* Builds the view of TXN's catalog, of music folder FOLDER only (0: all).
 * Returns 0, or an LMDB error (LIB is then empty). Free with
 * talas_subsonic_library_free. */
int talas_subsonic_library_load(struct talas_storage *st, MDB_txn *txn, const struct talas_config *conf,
                                unsigned folder, struct talas_subsonic_library *lib);
void talas_subsonic_library_free(struct talas_subsonic_library *lib);

/* Look-ups by id; NULL when LIB has none. */
const struct talas_subsonic_song *talas_subsonic_song_find(const struct talas_subsonic_library *lib,
                                                           const char *id);
const struct talas_subsonic_album *talas_subsonic_album_find(const struct talas_subsonic_library *lib,
                                                             const char *id);
const struct talas_subsonic_artist *talas_subsonic_artist_find(const struct talas_subsonic_library *lib,
                                                               const char *id);

/* 1 when HAY contains NEEDLE, ASCII letters compared without case ("" is
 * in everything). */
int talas_subsonic_contains(const char *hay, const char *needle);

#endif
