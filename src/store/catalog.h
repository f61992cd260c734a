/*
 * catalog.h - tracks in LMDB: ids, the record format, look-ups and listing.
 *
 * A track id is 16 characters of base64url (A-Z a-z 0-9 - _) taken from the
 * SHA-256 of the file's absolute path: stable across rescans, opaque, and
 * never a path, so an id cannot name anything outside the catalog.
 *
 * Records are a versioned binary layout (fixed little-endian fields, then
 * NUL-terminated strings, each with a length). talas_track_decode() checks
 * every length and terminator, so a damaged record reads as an error, never
 * as an out-of-bounds access. Decoded strings point into the record: they
 * are valid as long as the buffer (for LMDB: the transaction) is.
 */
#ifndef TALAS_CATALOG_H
#define TALAS_CATALOG_H

#include <stddef.h>
#include <stdint.h>
#include <lmdb.h>

#include "store/storage.h"
#include "core/util.h"

#define TALAS_TRACK_ID_LEN 16

struct talas_track {
    char id[TALAS_TRACK_ID_LEN + 1];
    const char *path;      /* absolute path of the file */
    const char *title;     /* from the tags, else the file name without its extension */
    const char *artist;    /* "" when unknown */
    const char *album;     /* "" when unknown */
    const char *codec;     /* libavcodec name: "mp3", "flac", "pcm_s16le", "vorbis", "aac" ... */
    const char *container; /* short container name: "mp3", "flac", "wav", "ogg", "mp4" ... */
    const char *mime;      /* Content-Type of the original file */
    const char *error;     /* NULL for a playable track, else why probing failed */
    uint64_t duration_ms;
    uint32_t sample_rate;
    uint32_t channels;
    uint64_t bit_rate; /* bits per second, 0 when unknown */
    uint64_t size;     /* file size in bytes when scanned */
    int64_t mtime_ns;  /* file modification time when scanned, ns since the epoch */
    uint64_t scanned_at; /* seconds since the epoch */
};

/* Computes the id of the file at absolute PATH. */
void talas_track_id_for_path(const char *path, char id_r[TALAS_TRACK_ID_LEN + 1]);
/* 1 when the LEN bytes at S have the form of a track id, else 0. */
int talas_track_id_valid(const char *s, size_t len);

/* Appends the encoded record of T to OUT. NULL strings are stored as "". */
void talas_track_encode(const struct talas_track *t, struct talas_buf *out);
/* Decodes a record; string fields point into DATA. Returns 0, or -1 when the
 * record is malformed (T is then unspecified). */
int talas_track_decode(const void *data, size_t len, struct talas_track *t);

/* Looks up ID. Returns 0 when found, MDB_NOTFOUND when not, -1 when the
 * stored record is damaged, or another LMDB error code. */
int talas_catalog_get(struct talas_storage *st, MDB_txn *txn, const char *id, struct talas_track *t);
/* Inserts or replaces T (and its path index entry). Returns 0 or an LMDB error. */
int talas_catalog_put(struct talas_storage *st, MDB_txn *txn, const struct talas_track *t);
/* Removes track ID and its path index entry. Returns 0, MDB_NOTFOUND or an LMDB error. */
int talas_catalog_del(struct talas_storage *st, MDB_txn *txn, const char *id);

/* Called for each track in path order; return non-zero to stop. */
typedef int (*talas_catalog_each_fn)(const struct talas_track *t, void *arg);
/* Walks all records (playable and failed) in path order. Damaged records
 * are skipped and counted in *damaged_r when it is not NULL. Returns 0 or
 * an LMDB error code. */
int talas_catalog_foreach(struct talas_storage *st, MDB_txn *txn, talas_catalog_each_fn fn, void *arg,
                          size_t *damaged_r);

/*
 * Lists playable tracks in path order, skipping OFFSET matches and passing
 * at most LIMIT of them to FN. QUERY, when not NULL or "", keeps only tracks
 * whose title, artist or album contains it (case-insensitive for ASCII,
 * exact bytes otherwise). Stores the number of all matches in *total_r.
 */
int talas_catalog_list(struct talas_storage *st, MDB_txn *txn, const char *query, size_t offset, size_t limit,
                       talas_catalog_each_fn fn, void *arg, size_t *total_r);

/* The last scan, kept in the META database under "scan". */
struct talas_scan_status {
    int running;             /* 1 while a scan is in progress */
    int32_t pid;             /* process that ran (or runs) it */
    uint64_t started_at;     /* seconds since the epoch */
    uint64_t finished_at;    /* 0 while running */
    uint64_t files;          /* candidate files seen */
    uint64_t tracks;         /* playable tracks in the catalog */
    uint64_t errors;         /* files recorded with a probe error */
    uint64_t added, updated, removed, unchanged;
};
int talas_catalog_scan_status_get(struct talas_storage *st, MDB_txn *txn, struct talas_scan_status *s);
int talas_catalog_scan_status_put(struct talas_storage *st, MDB_txn *txn, const struct talas_scan_status *s);

/* The Content-Type Talas sends for a container short name (e.g. "mp3" ->
 * "audio/mpeg"); "application/octet-stream" when unknown. */
const char *talas_catalog_mime_for_container(const char *container);

#endif
