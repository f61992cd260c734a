/*
 * catalog.c - the track records in LMDB: ids, the record format, the path
 * index, listing, and the status of the last scan.
 *
 * Entry points: talas_track_id_make(), talas_track_id_valid(),
 * talas_track_encode() / talas_track_decode(), talas_catalog_get() /
 * _resolve() / _put() / _del() / _foreach() / _list() / _list_filtered(),
 * talas_catalog_analysis_put(), the aliases
 * talas_catalog_alias_get() / _put(), the ids marker
 * talas_catalog_ids_migrated() / _ids_mark(), talas_catalog_scan_status_get()
 * / _put() and talas_catalog_mime_for_container().
 *
 * Logs nothing: a damaged record is reported to the caller (-1 from
 * talas_catalog_get, the damaged count of talas_catalog_foreach), never
 * trusted and never fatal.
 *
 * Layout. TALAS_DBI_TRACKS maps the 16-byte id to the record; every record
 * has exactly one entry in TALAS_DBI_TRACK_PATHS, whose key is the path and
 * whose value is the id, so that a cursor over the index lists tracks in
 * path order. LMDB keys are at most mdb_env_get_maxkeysize() bytes (511 in
 * Debian's build) while paths may be longer: such a path is keyed by its
 * first bytes followed by the id, which keeps the order (up to that prefix)
 * and keeps keys unique.
 *
 * TALAS_DBI_TRACK_ALIASES maps an id a track had before (an id of the
 * absolute path, before ids were made from the library's name) to its id
 * now: u8 version (1), str id. META "track_ids" (u8 version, 2) says the
 * store's ids are library-relative: the scanner's migration
 * (scan/migrate_ids.c) writes it once it has moved every record.
 *
 * A track record carries its analysis (store/track_analysis.h) since
 * version 2; talas_catalog_analysis_put() adds it to a record that still
 * describes the measured file.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/record.h"
#include "store/catalog.h"
#include "store/lyrics.h"
#include "store/storage.h"
#include "core/util.h"

/* Version 2 appends the analysis: u32 flags, f64 integrated LUFS, range
 * LU, true peak dBTP, sample peak dBFS, sample peak (linear), bpm, its
 * confidence, and a string (why the analysis failed). A version 1 record
 * reads as one not analysed yet. */
/* Version 3 appends the tags and the cover art source: str album artist,
 * str genre, u32 track number, u32 disc number, u32 year, u8 cover
 * (TALAS_COVER_*), str cover file. Records of versions 1 and 2 read with
 * those empty (record_version tells the scanner to read them). */
#define TRACK_VERSION TALAS_TRACK_TAGS_VERSION
#define TRACK_VERSION_2 2
#define TRACK_VERSION_1 1
#define TRACK_FLAG_FAILED 0x01 /* the error string is meaningful */

/* Version 2 adds u64 to_analyse, analysed; version 1 reads them as 0. */
#define SCAN_STATUS_VERSION 2
#define SCAN_STATUS_LEN_1 (1 + 1 + 4 + 9 * 8)
#define SCAN_STATUS_LEN (SCAN_STATUS_LEN_1 + 2 * 8)

/* Large enough for any LMDB build's key limit we would meet; a larger limit
 * is simply not used in full. */
#define PATH_KEY_MAX 512

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void talas_track_id_make(const char *name, const char *relpath, char id_r[TALAS_TRACK_ID_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    char *o = id_r;

    /* SHA-256 of a few bytes cannot fail short of a broken libcrypto (or no
     * memory), and an id made of uninitialised bytes would silently corrupt
     * the catalog. "NAME/RELPATH": a name holds no '/', so no two pairs
     * hash the same bytes. */
    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(ctx, name, strlen(name)) != 1 || EVP_DigestUpdate(ctx, "/", 1) != 1 ||
        EVP_DigestUpdate(ctx, relpath, strlen(relpath)) != 1 || EVP_DigestFinal_ex(ctx, md, &md_len) != 1 ||
        md_len < 12)
        abort();
    EVP_MD_CTX_free(ctx);
    /* 12 bytes are 96 bits: 16 base64 characters with no padding. */
    for (int i = 0; i < 12; i += 3) {
        uint32_t v = (uint32_t)md[i] << 16 | (uint32_t)md[i + 1] << 8 | md[i + 2];
        *o++ = b64url[v >> 18 & 63];
        *o++ = b64url[v >> 12 & 63];
        *o++ = b64url[v >> 6 & 63];
        *o++ = b64url[v & 63];
    }
    *o = '\0';
}

int talas_track_id_valid(const char *s, size_t len)
{
    if (s == NULL || len != TALAS_TRACK_ID_LEN)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '_'))
            return 0;
    }
    return 1;
}

/* ------------------------------------------------------------ encoding */

void talas_track_encode(const struct talas_track *t, struct talas_buf *out)
{
    struct talas_record_writer w;

    talas_record_writer_buf(&w, out);
    talas_record_put_u8(&w, TRACK_VERSION);
    talas_record_put_u8(&w, t->error != NULL ? TRACK_FLAG_FAILED : 0);
    talas_record_put_u64(&w, t->duration_ms);
    talas_record_put_u32(&w, t->sample_rate);
    talas_record_put_u32(&w, t->channels);
    talas_record_put_u64(&w, t->bit_rate);
    talas_record_put_u64(&w, t->size);
    talas_record_put_i64(&w, t->mtime_ns);
    talas_record_put_u64(&w, t->scanned_at);
    talas_record_put_str(&w, t->id);
    talas_record_put_str(&w, t->path);
    talas_record_put_str(&w, t->title);
    talas_record_put_str(&w, t->artist);
    talas_record_put_str(&w, t->album);
    talas_record_put_str(&w, t->codec);
    talas_record_put_str(&w, t->container);
    talas_record_put_str(&w, t->mime);
    talas_record_put_str(&w, t->error);
    talas_record_put_u32(&w, t->analysis.flags);
    talas_record_put_f64(&w, t->analysis.integrated_lufs);
    talas_record_put_f64(&w, t->analysis.range_lu);
    talas_record_put_f64(&w, t->analysis.true_peak_dbtp);
    talas_record_put_f64(&w, t->analysis.sample_peak_dbfs);
    talas_record_put_f64(&w, t->analysis.sample_peak);
    talas_record_put_f64(&w, t->analysis.bpm);
    talas_record_put_f64(&w, t->analysis.bpm_confidence);
    talas_record_put_str(&w, (t->analysis.flags & TALAS_ANALYSIS_FAILED) ? t->analysis.error : NULL);
    talas_record_put_str(&w, t->album_artist);
    talas_record_put_str(&w, t->genre);
    talas_record_put_u32(&w, t->track_number);
    talas_record_put_u32(&w, t->disc_number);
    talas_record_put_u32(&w, t->year);
    talas_record_put_u8(&w, t->cover);
    talas_record_put_str(&w, t->cover == TALAS_COVER_FOLDER ? t->cover_file : NULL);
    /* Nothing Talas stores comes near 4 GiB; a string that long would not
     * read back as the same string. */
    if (talas_record_writer_end(&w) != 0)
        abort();
}

int talas_track_decode(const void *data, size_t len, struct talas_track *t)
{
    struct talas_record_reader r;
    const char *id;
    size_t id_len = 0, path_len = 0;
    uint8_t version, flags;

    if (data == NULL)
        return -1;
    talas_record_reader_init(&r, data, len);
    version = talas_record_get_u8(&r);
    flags = talas_record_get_u8(&r);
    if (talas_record_reader_ok(&r) != 0 || version < TRACK_VERSION_1 || version > TRACK_VERSION ||
        (flags & ~TRACK_FLAG_FAILED) != 0)
        return -1;
    t->duration_ms = talas_record_get_u64(&r);
    t->sample_rate = talas_record_get_u32(&r);
    t->channels = talas_record_get_u32(&r);
    t->bit_rate = talas_record_get_u64(&r);
    t->size = talas_record_get_u64(&r);
    t->mtime_ns = talas_record_get_i64(&r);
    t->scanned_at = talas_record_get_u64(&r);
    /* A string is its length, its bytes and a NUL; the codec refuses a NUL
     * inside, which would make the C string disagree with the length. */
    id = talas_record_get_str(&r, &id_len);
    if (id == NULL || !talas_track_id_valid(id, id_len))
        return -1;
    memcpy(t->id, id, TALAS_TRACK_ID_LEN + 1);
    t->path = talas_record_get_str(&r, &path_len);
    t->title = talas_record_get_str(&r, NULL);
    t->artist = talas_record_get_str(&r, NULL);
    t->album = talas_record_get_str(&r, NULL);
    t->codec = talas_record_get_str(&r, NULL);
    t->container = talas_record_get_str(&r, NULL);
    t->mime = talas_record_get_str(&r, NULL);
    t->error = talas_record_get_str(&r, NULL);
    memset(&t->analysis, 0, sizeof(t->analysis));
    t->record_version = version;
    t->album_artist = t->genre = t->cover_file = "";
    t->track_number = t->disc_number = t->year = 0;
    t->cover = TALAS_COVER_NONE;
    if (version >= TRACK_VERSION_2) {
        struct talas_track_analysis *a = &t->analysis;
        a->flags = talas_record_get_u32(&r);
        a->integrated_lufs = talas_record_get_f64(&r);
        a->range_lu = talas_record_get_f64(&r);
        a->true_peak_dbtp = talas_record_get_f64(&r);
        a->sample_peak_dbfs = talas_record_get_f64(&r);
        a->sample_peak = talas_record_get_f64(&r);
        a->bpm = talas_record_get_f64(&r);
        a->bpm_confidence = talas_record_get_f64(&r);
        a->error = talas_record_get_str(&r, NULL);
        if ((a->flags & ~TALAS_ANALYSIS_FLAGS) != 0 || a->error == NULL)
            return -1;
        if (!(a->flags & TALAS_ANALYSIS_FAILED)) {
            if (*a->error != '\0')
                return -1;
            a->error = NULL;
        }
    }
    if (version >= TALAS_TRACK_TAGS_VERSION) {
        t->album_artist = talas_record_get_str(&r, NULL);
        t->genre = talas_record_get_str(&r, NULL);
        t->track_number = talas_record_get_u32(&r);
        t->disc_number = talas_record_get_u32(&r);
        t->year = talas_record_get_u32(&r);
        t->cover = talas_record_get_u8(&r);
        t->cover_file = talas_record_get_str(&r, NULL);
        if (t->album_artist == NULL || t->genre == NULL || t->cover_file == NULL ||
            t->cover > TALAS_COVER_FOLDER || (t->cover == TALAS_COVER_FOLDER) != (*t->cover_file != '\0'))
            return -1;
    }
    if (talas_record_reader_end(&r) != 0 || path_len == 0)
        return -1;
    if (!(flags & TRACK_FLAG_FAILED)) {
        if (*t->error != '\0')
            return -1;
        t->error = NULL;
    }
    return 0;
}

/* ---------------------------------------------------------- path index */

/* Fills KEY with the index key of PATH (of track ID); BUF (PATH_KEY_MAX
 * bytes) holds it when the path is too long to be a key by itself. */
static void path_key(struct talas_storage *st, const char *path, const char *id, char *buf, MDB_val *key)
{
    size_t max = (size_t)mdb_env_get_maxkeysize(talas_storage_env(st));
    size_t len = strlen(path);

    if (max > PATH_KEY_MAX)
        max = PATH_KEY_MAX;
    if (len <= max) {
        key->mv_data = (void *)path;
        key->mv_size = len;
        return;
    }
    memcpy(buf, path, max - TALAS_TRACK_ID_LEN);
    memcpy(buf + max - TALAS_TRACK_ID_LEN, id, TALAS_TRACK_ID_LEN);
    key->mv_data = buf;
    key->mv_size = max;
}

/* Removes PATH's index entry, but only when it still names ID: another
 * record may own that path by now. */
static int del_path_key(struct talas_storage *st, MDB_txn *txn, const char *path, const char *id)
{
    MDB_dbi dbi = talas_storage_dbi(st, TALAS_DBI_TRACK_PATHS);
    char buf[PATH_KEY_MAX];
    MDB_val key, val;
    int rc;

    path_key(st, path, id, buf, &key);
    rc = mdb_get(txn, dbi, &key, &val);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    if (val.mv_size != TALAS_TRACK_ID_LEN || memcmp(val.mv_data, id, TALAS_TRACK_ID_LEN) != 0)
        return 0;
    return mdb_del(txn, dbi, &key, NULL);
}

/* When a record is damaged its path is unknown: find its index entries by
 * value. A full pass, but only ever for damaged records. */
static int purge_path_entries(struct talas_storage *st, MDB_txn *txn, const char *id)
{
    MDB_cursor *cur;
    MDB_val key, val;
    int rc;

    if ((rc = mdb_cursor_open(txn, talas_storage_dbi(st, TALAS_DBI_TRACK_PATHS), &cur)) != 0)
        return rc;
    rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
    while (rc == 0) {
        if (val.mv_size == TALAS_TRACK_ID_LEN && memcmp(val.mv_data, id, TALAS_TRACK_ID_LEN) == 0 &&
            (rc = mdb_cursor_del(cur, 0)) != 0)
            break;
        rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Removes the index entries of the record stored under ID, whatever state
 * it is in. */
static int unlink_path(struct talas_storage *st, MDB_txn *txn, const char *id, const MDB_val *stored,
                       const char *new_path)
{
    struct talas_track old;
    char *old_path;
    int rc;

    if (talas_track_decode(stored->mv_data, stored->mv_size, &old) == -1)
        return purge_path_entries(st, txn, id);
    if (new_path != NULL && strcmp(old.path, new_path) == 0)
        return 0;
    /* The stored record lives in a page that the deletion below may
     * rewrite: work on a copy of its path. */
    old_path = xstrdup(old.path);
    rc = del_path_key(st, txn, old_path, id);
    free(old_path);
    return rc;
}

/* --------------------------------------------------------- get/put/del */

int talas_catalog_get(struct talas_storage *st, MDB_txn *txn, const char *id, struct talas_track *t)
{
    MDB_val key, val;
    int rc;

    if (id == NULL || !talas_track_id_valid(id, strnlen(id, TALAS_TRACK_ID_LEN + 1)))
        return MDB_NOTFOUND;
    key.mv_data = (void *)id;
    key.mv_size = TALAS_TRACK_ID_LEN;
    if ((rc = mdb_get(txn, talas_storage_dbi(st, TALAS_DBI_TRACKS), &key, &val)) != 0)
        return rc;
    if (talas_track_decode(val.mv_data, val.mv_size, t) == -1 || memcmp(t->id, id, TALAS_TRACK_ID_LEN) != 0)
        return -1;
    return 0;
}

int talas_catalog_put(struct talas_storage *st, MDB_txn *txn, const struct talas_track *t)
{
    MDB_dbi tracks = talas_storage_dbi(st, TALAS_DBI_TRACKS);
    struct talas_buf rec = {0};
    char buf[PATH_KEY_MAX];
    MDB_val key, val, pkey;
    int rc;

    if (!talas_track_id_valid(t->id, strnlen(t->id, TALAS_TRACK_ID_LEN + 1)) || t->path == NULL ||
        t->path[0] == '\0')
        return EINVAL;

    key.mv_data = (void *)t->id;
    key.mv_size = TALAS_TRACK_ID_LEN;
    rc = mdb_get(txn, tracks, &key, &val);
    if (rc == 0)
        rc = unlink_path(st, txn, t->id, &val, t->path);
    else if (rc == MDB_NOTFOUND)
        rc = 0;
    if (rc != 0)
        return rc;

    talas_track_encode(t, &rec);
    val.mv_data = rec.data;
    val.mv_size = rec.len;
    rc = mdb_put(txn, tracks, &key, &val, 0);
    talas_buf_free(&rec);
    if (rc != 0)
        return rc;

    path_key(st, t->path, t->id, buf, &pkey);
    val.mv_data = (void *)t->id;
    val.mv_size = TALAS_TRACK_ID_LEN;
    return mdb_put(txn, talas_storage_dbi(st, TALAS_DBI_TRACK_PATHS), &pkey, &val, 0);
}

int talas_catalog_del(struct talas_storage *st, MDB_txn *txn, const char *id)
{
    MDB_dbi tracks = talas_storage_dbi(st, TALAS_DBI_TRACKS);
    MDB_val key, val;
    int rc;

    if (id == NULL || !talas_track_id_valid(id, strnlen(id, TALAS_TRACK_ID_LEN + 1)))
        return MDB_NOTFOUND;
    key.mv_data = (void *)id;
    key.mv_size = TALAS_TRACK_ID_LEN;
    if ((rc = mdb_get(txn, tracks, &key, &val)) != 0)
        return rc;
    if ((rc = unlink_path(st, txn, id, &val, NULL)) != 0)
        return rc;
    if ((rc = mdb_del(txn, tracks, &key, NULL)) != 0)
        return rc;
    /* the track's lyrics go with it (lyrics.h) */
    rc = talas_lyrics_del(st, txn, id);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int talas_catalog_analysis_put(struct talas_storage *st, MDB_txn *txn, const char *id, uint64_t size,
                               int64_t mtime_ns, const struct talas_track_analysis *a)
{
    struct talas_track t;
    int rc;

    if ((rc = talas_catalog_get(st, txn, id, &t)) != 0)
        return rc;
    if (t.size != size || t.mtime_ns != mtime_ns || t.error != NULL)
        return MDB_NOTFOUND;
    /* T's strings point into the stored record; talas_catalog_put encodes
     * them before its mdb_put can touch that page, and the path (same as
     * stored) needs no index change. */
    t.analysis = *a;
    return talas_catalog_put(st, txn, &t);
}

/* ------------------------------------------------------------- listing */

int talas_catalog_foreach(struct talas_storage *st, MDB_txn *txn, talas_catalog_each_fn fn, void *arg,
                          size_t *damaged_r)
{
    MDB_cursor *cur;
    MDB_val key, val;
    size_t damaged = 0;
    int rc;

    if ((rc = mdb_cursor_open(txn, talas_storage_dbi(st, TALAS_DBI_TRACK_PATHS), &cur)) != 0)
        return rc;
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        char id[TALAS_TRACK_ID_LEN + 1], buf[PATH_KEY_MAX];
        struct talas_track t;
        MDB_val own;
        int grc;

        if (val.mv_size != TALAS_TRACK_ID_LEN)
            continue;
        memcpy(id, val.mv_data, TALAS_TRACK_ID_LEN);
        id[TALAS_TRACK_ID_LEN] = '\0';
        grc = talas_catalog_get(st, txn, id, &t);
        if (grc == -1) {
            damaged++;
            continue;
        }
        if (grc == MDB_NOTFOUND)
            continue;
        if (grc != 0) {
            rc = grc;
            break;
        }
        /* An entry left behind by an interrupted rename would list the
         * track twice: only the entry its record agrees with counts. */
        path_key(st, t.path, t.id, buf, &own);
        if (own.mv_size != key.mv_size || memcmp(own.mv_data, key.mv_data, key.mv_size) != 0)
            continue;
        if (fn(&t, arg) != 0) {
            rc = MDB_NOTFOUND;
            break;
        }
    }
    mdb_cursor_close(cur);
    if (damaged_r != NULL)
        *damaged_r = damaged;
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* ASCII-only case folding: the locale of a daemon is whatever it was
 * started with, and a search must not change with it. */
static unsigned char fold(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

static int contains(const char *hay, const char *needle, size_t needle_len)
{
    size_t hay_len = strlen(hay);

    if (needle_len > hay_len)
        return 0;
    for (size_t i = 0; i + needle_len <= hay_len; i++) {
        size_t j = 0;
        while (j < needle_len && fold((unsigned char)hay[i + j]) == fold((unsigned char)needle[j]))
            j++;
        if (j == needle_len)
            return 1;
    }
    return 0;
}

struct list_state {
    const struct talas_track_filter *filter;
    const char *query;
    size_t query_len;
    size_t offset, limit;
    size_t total;
    int stopped;
    talas_catalog_each_fn fn;
    void *arg;
};

static int list_one(const struct talas_track *t, void *arg)
{
    struct list_state *ls = arg;
    size_t index;

    if (t->error != NULL)
        return 0;
    if (ls->query_len != 0 && !contains(t->title, ls->query, ls->query_len) &&
        !contains(t->artist, ls->query, ls->query_len) && !contains(t->album, ls->query, ls->query_len))
        return 0;
    if (ls->filter != NULL && !talas_track_filter_match(ls->filter, t->duration_ms, &t->analysis))
        return 0;
    index = ls->total++;
    /* The walk goes on after the page is full, or after FN asked to stop:
     * the total counts every match. */
    if (!ls->stopped && index >= ls->offset && index - ls->offset < ls->limit && ls->fn(t, ls->arg) != 0)
        ls->stopped = 1;
    return 0;
}

int talas_catalog_list(struct talas_storage *st, MDB_txn *txn, const char *query, size_t offset, size_t limit,
                       talas_catalog_each_fn fn, void *arg, size_t *total_r)
{
    return talas_catalog_list_filtered(st, txn, query, NULL, offset, limit, fn, arg, total_r);
}

int talas_catalog_list_filtered(struct talas_storage *st, MDB_txn *txn, const char *query,
                                const struct talas_track_filter *filter, size_t offset, size_t limit,
                                talas_catalog_each_fn fn, void *arg, size_t *total_r)
{
    struct list_state ls = {0};
    int rc;

    ls.filter = filter;
    ls.query = query != NULL ? query : "";
    ls.query_len = strlen(ls.query);
    ls.offset = offset;
    ls.limit = limit;
    ls.fn = fn;
    ls.arg = arg;
    rc = talas_catalog_foreach(st, txn, list_one, &ls, NULL);
    if (total_r != NULL)
        *total_r = ls.total;
    return rc;
}

/* ------------------------------------------------------------- aliases */

#define ALIAS_VERSION 1
#define IDS_VERSION 2

static const char ids_key[] = "track_ids";

int talas_catalog_alias_get(struct talas_storage *st, MDB_txn *txn, const char *id,
                            char new_id_r[TALAS_TRACK_ID_LEN + 1])
{
    struct talas_record_reader r;
    MDB_val key, val;
    const char *to;
    size_t to_len = 0;
    int rc;

    if (id == NULL || !talas_track_id_valid(id, strnlen(id, TALAS_TRACK_ID_LEN + 1)))
        return MDB_NOTFOUND;
    key.mv_data = (void *)id;
    key.mv_size = TALAS_TRACK_ID_LEN;
    if ((rc = mdb_get(txn, talas_storage_dbi(st, TALAS_DBI_TRACK_ALIASES), &key, &val)) != 0)
        return rc;
    talas_record_reader_init(&r, val.mv_data, val.mv_size);
    if (talas_record_get_u8(&r) != ALIAS_VERSION)
        return -1;
    to = talas_record_get_str(&r, &to_len);
    if (talas_record_reader_end(&r) != 0 || to == NULL || !talas_track_id_valid(to, to_len))
        return -1;
    memcpy(new_id_r, to, TALAS_TRACK_ID_LEN + 1);
    return 0;
}

int talas_catalog_alias_put(struct talas_storage *st, MDB_txn *txn, const char *old_id, const char *new_id)
{
    struct talas_buf rec = {0};
    struct talas_record_writer w;
    MDB_val key, val;
    int rc;

    if (!talas_track_id_valid(old_id, strnlen(old_id, TALAS_TRACK_ID_LEN + 1)) ||
        !talas_track_id_valid(new_id, strnlen(new_id, TALAS_TRACK_ID_LEN + 1)))
        return EINVAL;
    talas_record_writer_buf(&w, &rec);
    talas_record_put_u8(&w, ALIAS_VERSION);
    talas_record_put_str(&w, new_id);
    if (talas_record_writer_end(&w) != 0)
        abort();
    key.mv_data = (void *)old_id;
    key.mv_size = TALAS_TRACK_ID_LEN;
    val.mv_data = rec.data;
    val.mv_size = rec.len;
    rc = mdb_put(txn, talas_storage_dbi(st, TALAS_DBI_TRACK_ALIASES), &key, &val, 0);
    talas_buf_free(&rec);
    return rc;
}

int talas_catalog_resolve(struct talas_storage *st, MDB_txn *txn, const char *id, struct talas_track *t)
{
    char to[TALAS_TRACK_ID_LEN + 1];
    int rc = talas_catalog_get(st, txn, id, t);

    if (rc != MDB_NOTFOUND)
        return rc;
    /* One step only: the migration points every alias at a current id. */
    if ((rc = talas_catalog_alias_get(st, txn, id, to)) != 0)
        return rc;
    return talas_catalog_get(st, txn, to, t);
}

int talas_catalog_ids_migrated(struct talas_storage *st, MDB_txn *txn)
{
    MDB_val key = {sizeof(ids_key) - 1, (void *)ids_key}, val;
    struct talas_record_reader r;
    int rc;

    if ((rc = mdb_get(txn, talas_storage_dbi(st, TALAS_DBI_META), &key, &val)) != 0)
        return rc == MDB_NOTFOUND ? 0 : -1;
    talas_record_reader_init(&r, val.mv_data, val.mv_size);
    return talas_record_get_u8(&r) >= IDS_VERSION && talas_record_reader_ok(&r) == 0;
}

int talas_catalog_ids_mark(struct talas_storage *st, MDB_txn *txn)
{
    MDB_val key = {sizeof(ids_key) - 1, (void *)ids_key}, val;
    unsigned char rec[1];
    struct talas_record_writer w;

    talas_record_writer_mem(&w, rec, sizeof(rec));
    talas_record_put_u8(&w, IDS_VERSION);
    val.mv_data = rec;
    val.mv_size = w.len;
    return mdb_put(txn, talas_storage_dbi(st, TALAS_DBI_META), &key, &val, 0);
}

/* --------------------------------------------------------- scan status */

static const char scan_key[] = "scan";

int talas_catalog_scan_status_get(struct talas_storage *st, MDB_txn *txn, struct talas_scan_status *s)
{
    MDB_val key = {sizeof(scan_key) - 1, (void *)scan_key}, val;
    struct talas_record_reader r;
    uint8_t version, running;
    uint32_t pid;
    int rc;

    if ((rc = mdb_get(txn, talas_storage_dbi(st, TALAS_DBI_META), &key, &val)) != 0)
        return rc;
    talas_record_reader_init(&r, val.mv_data, val.mv_size);
    version = talas_record_get_u8(&r);
    running = talas_record_get_u8(&r);
    pid = talas_record_get_u32(&r);
    s->started_at = talas_record_get_u64(&r);
    s->finished_at = talas_record_get_u64(&r);
    s->files = talas_record_get_u64(&r);
    s->tracks = talas_record_get_u64(&r);
    s->errors = talas_record_get_u64(&r);
    s->added = talas_record_get_u64(&r);
    s->updated = talas_record_get_u64(&r);
    s->removed = talas_record_get_u64(&r);
    s->unchanged = talas_record_get_u64(&r);
    s->to_analyse = s->analysed = 0;
    if (version >= 2) {
        s->to_analyse = talas_record_get_u64(&r);
        s->analysed = talas_record_get_u64(&r);
    }
    if (val.mv_size != (version >= 2 ? SCAN_STATUS_LEN : SCAN_STATUS_LEN_1) || talas_record_reader_end(&r) != 0 ||
        (version != SCAN_STATUS_VERSION && version != 1) || running > 1)
        return -1;
    s->running = running;
    s->pid = (int32_t)pid;
    return 0;
}

int talas_catalog_scan_status_put(struct talas_storage *st, MDB_txn *txn, const struct talas_scan_status *s)
{
    MDB_val key = {sizeof(scan_key) - 1, (void *)scan_key}, val;
    unsigned char rec[SCAN_STATUS_LEN];
    struct talas_record_writer w;

    talas_record_writer_mem(&w, rec, sizeof(rec));
    talas_record_put_u8(&w, SCAN_STATUS_VERSION);
    talas_record_put_u8(&w, s->running ? 1 : 0);
    talas_record_put_u32(&w, (uint32_t)s->pid);
    talas_record_put_u64(&w, s->started_at);
    talas_record_put_u64(&w, s->finished_at);
    talas_record_put_u64(&w, s->files);
    talas_record_put_u64(&w, s->tracks);
    talas_record_put_u64(&w, s->errors);
    talas_record_put_u64(&w, s->added);
    talas_record_put_u64(&w, s->updated);
    talas_record_put_u64(&w, s->removed);
    talas_record_put_u64(&w, s->unchanged);
    talas_record_put_u64(&w, s->to_analyse);
    talas_record_put_u64(&w, s->analysed);
    val.mv_data = rec;
    val.mv_size = w.len;
    return mdb_put(txn, talas_storage_dbi(st, TALAS_DBI_META), &key, &val, 0);
}

/* ----------------------------------------------------------------- mime */

static const struct {
    const char *container;
    const char *mime;
} mime_types[] = {
    {"mp3", "audio/mpeg"},     {"flac", "audio/flac"},
    {"wav", "audio/wav"},      {"ogg", "audio/ogg"},
    {"oga", "audio/ogg"},      {"opus", "audio/ogg"},
    {"mp4", "audio/mp4"},      {"m4a", "audio/mp4"},
    {"mov", "audio/mp4"},      {"aac", "audio/aac"},
    {"adts", "audio/aac"},     {"aiff", "audio/aiff"},
    {"webm", "audio/webm"},    {"matroska", "audio/x-matroska"},
    {"asf", "audio/x-ms-wma"}, {"wma", "audio/x-ms-wma"},
};

static int same_name(const char *a, const char *b)
{
    while (*a != '\0' && fold((unsigned char)*a) == fold((unsigned char)*b)) {
        a++;
        b++;
    }
    return *a == '\0' && *b == '\0';
}

const char *talas_catalog_mime_for_container(const char *container)
{
    if (container != NULL) {
        for (size_t i = 0; i < TALAS_ARRAY_SIZE(mime_types); i++)
            if (same_name(container, mime_types[i].container))
                return mime_types[i].mime;
    }
    return "application/octet-stream";
}
