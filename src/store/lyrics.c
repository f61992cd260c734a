/*
 * lyrics.c - the lyrics records of TALAS_DBI_LYRICS (lyrics.h): encoding
 * through the record codec, checking decode, in-place iteration, and the
 * get / put / del of one track's record.
 *
 * Entry points: talas_lyrics_encode(), talas_lyrics_decode(),
 * talas_lyrics_next_set(), talas_lyrics_next_line(), talas_lyrics_get(),
 * talas_lyrics_put(), talas_lyrics_del(), talas_lyrics_free(). Logs
 * nothing.
 *
 * Layout, version 1: u8 version, u8 source, u8 sidecar present, u64
 * sidecar size, i64 sidecar mtime, u32 sets; per set: u8 synced, i64
 * offset, str lang, str artist, str title, u32 lines; per line: i64 start,
 * str value.
 */
#include <stdlib.h>
#include <string.h>

#include "core/record.h"
#include "store/catalog.h"
#include "store/lyrics.h"

#define LYRICS_VERSION 1
/* A decoder's sanity bound: no encoder writes more lines than the bytes
 * they take (each line is at least 13 bytes). */
#define LINE_BYTES_MIN 13

void talas_lyrics_free(struct talas_lyrics *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->count; i++)
        free(l->lines[i].value);
    free(l->lines);
    free(l->lang);
    free(l->artist);
    free(l->title);
    memset(l, 0, sizeof(*l));
}

void talas_lyrics_encode(const struct talas_lyrics_sidecar *sidecar, enum talas_lyrics_source source,
                         const struct talas_lyrics *sets, size_t count, struct talas_buf *out)
{
    struct talas_record_writer w;

    if (count > TALAS_LYRICS_SETS_MAX)
        count = TALAS_LYRICS_SETS_MAX;
    talas_record_writer_buf(&w, out);
    talas_record_put_u8(&w, LYRICS_VERSION);
    talas_record_put_u8(&w, (uint8_t)source);
    talas_record_put_u8(&w, sidecar->present ? 1 : 0);
    talas_record_put_u64(&w, sidecar->present ? sidecar->size : 0);
    talas_record_put_i64(&w, sidecar->present ? sidecar->mtime_ns : 0);
    talas_record_put_u32(&w, (uint32_t)count);
    for (size_t i = 0; i < count; i++) {
        const struct talas_lyrics *l = &sets[i];
        talas_record_put_u8(&w, l->synced ? 1 : 0);
        talas_record_put_i64(&w, l->offset_ms);
        talas_record_put_str(&w, l->lang);
        talas_record_put_str(&w, l->artist);
        talas_record_put_str(&w, l->title);
        talas_record_put_u32(&w, (uint32_t)l->count);
        for (size_t j = 0; j < l->count; j++) {
            talas_record_put_i64(&w, l->lines[j].start_ms);
            talas_record_put_str(&w, l->lines[j].value);
        }
    }
}

/* Reads one set's header from R into *SET_R; its lines stay in R. */
static void get_set(struct talas_record_reader *r, struct talas_lyrics_set *set_r)
{
    set_r->synced = talas_record_get_u8(r);
    set_r->offset_ms = talas_record_get_i64(r);
    set_r->lang = talas_record_get_str(r, NULL);
    set_r->artist = talas_record_get_str(r, NULL);
    set_r->title = talas_record_get_str(r, NULL);
    set_r->count = talas_record_get_u32(r);
    if (set_r->synced > 1 || set_r->lang == NULL || set_r->artist == NULL || set_r->title == NULL ||
        set_r->count > r->left / LINE_BYTES_MIN)
        r->bad = 1;
}

int talas_lyrics_decode(const void *data, size_t len, struct talas_lyrics_record *rec_r)
{
    struct talas_record_reader r, check;
    uint8_t version, source, present;

    memset(rec_r, 0, sizeof(*rec_r));
    talas_record_reader_init(&r, data, len);
    version = talas_record_get_u8(&r);
    source = talas_record_get_u8(&r);
    present = talas_record_get_u8(&r);
    rec_r->sidecar.size = talas_record_get_u64(&r);
    rec_r->sidecar.mtime_ns = talas_record_get_i64(&r);
    rec_r->sets = talas_record_get_u32(&r);
    if (talas_record_reader_ok(&r) != 0 || version != LYRICS_VERSION || source > TALAS_LYRICS_EMBEDDED ||
        present > 1 || rec_r->sets > TALAS_LYRICS_SETS_MAX)
        return -1;
    rec_r->sidecar.present = present;
    rec_r->source = (enum talas_lyrics_source)source;
    rec_r->next = r;

    /* Walked once here, so that the iteration after cannot fail. */
    check = r;
    for (uint32_t i = 0; i < rec_r->sets && !check.bad; i++) {
        struct talas_lyrics_set set;
        get_set(&check, &set);
        for (uint32_t j = 0; j < set.count && !check.bad; j++) {
            talas_record_get_i64(&check);
            if (talas_record_get_str(&check, NULL) == NULL)
                check.bad = 1;
        }
    }
    return talas_record_reader_end(&check) == 0 ? 0 : -1;
}

int talas_lyrics_next_set(struct talas_lyrics_record *rec, struct talas_lyrics_set *set_r)
{
    if (rec->sets == 0)
        return -1;
    rec->sets--;
    get_set(&rec->next, set_r);
    set_r->next = rec->next;
    /* skip the set's lines in the record's own cursor */
    for (uint32_t j = 0; j < set_r->count; j++) {
        talas_record_get_i64(&rec->next);
        talas_record_get_str(&rec->next, NULL);
    }
    return rec->next.bad ? -1 : 0;
}

int talas_lyrics_next_line(struct talas_lyrics_set *set, int64_t *start_ms_r, const char **value_r)
{
    if (set->count == 0)
        return -1;
    set->count--;
    *start_ms_r = talas_record_get_i64(&set->next);
    *value_r = talas_record_get_str(&set->next, NULL);
    return *value_r != NULL ? 0 : -1;
}

static int make_key(const char *id, MDB_val *key)
{
    if (id == NULL || !talas_track_id_valid(id, strnlen(id, TALAS_TRACK_ID_LEN + 1)))
        return -1;
    key->mv_data = (void *)id;
    key->mv_size = TALAS_TRACK_ID_LEN;
    return 0;
}

int talas_lyrics_get(struct talas_storage *st, MDB_txn *txn, const char *id,
                     struct talas_lyrics_record *rec_r)
{
    MDB_val key, val;
    int rc;

    if (make_key(id, &key) != 0)
        return MDB_NOTFOUND;
    if ((rc = mdb_get(txn, talas_storage_dbi(st, TALAS_DBI_LYRICS), &key, &val)) != 0)
        return rc;
    return talas_lyrics_decode(val.mv_data, val.mv_size, rec_r);
}

int talas_lyrics_put(struct talas_storage *st, MDB_txn *txn, const char *id, const void *rec, size_t len)
{
    MDB_val key, val;

    if (make_key(id, &key) != 0)
        return MDB_NOTFOUND;
    val.mv_data = (void *)rec;
    val.mv_size = len;
    return mdb_put(txn, talas_storage_dbi(st, TALAS_DBI_LYRICS), &key, &val, 0);
}

int talas_lyrics_del(struct talas_storage *st, MDB_txn *txn, const char *id)
{
    MDB_val key;

    if (make_key(id, &key) != 0)
        return MDB_NOTFOUND;
    return mdb_del(txn, talas_storage_dbi(st, TALAS_DBI_LYRICS), &key, NULL);
}
