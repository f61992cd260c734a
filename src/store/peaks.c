/*
 * peaks.c - the stored waveforms (see peaks.h).
 *
 * Entry points: talas_peaks_encode / _decode, talas_peaks_get / _put /
 * _drop / _move, talas_peaks_downsample. Logs nothing: errors go back to the
 * caller.
 *
 * Record (TALAS_DBI_PEAKS, key: the track id), little-endian:
 *   u8 version (1), 3 bytes 0, u32 buckets, u64 source size,
 *   i64 source mtime (ns), u64 duration (ms), then buckets x (i16 min,
 *   i16 max), full scale 32767.
 * 16 KiB for 4096 buckets: small enough to write in one short transaction
 * and to read straight from the map.
 */
#include <string.h>

#include "core/record.h"
#include "store/peaks.h"

#define RECORD_VERSION 1

static int16_t quantize(float v)
{
    if (!(v > -1.0f))
        v = -1.0f; /* NaN too */
    if (v > 1.0f)
        v = 1.0f;
    /* rounded to the nearest step (no libm in every program that links this) */
    return (int16_t)(v * 32767.0f + (v < 0 ? -0.5f : 0.5f));
}

/* The level stored at P, the first of its two bytes (the pair is in
 * bounds: talas_peaks_decode checked the record's length). */
static float level(const unsigned char *p)
{
    struct talas_record_reader r;

    talas_record_reader_init(&r, p, 2);
    return (float)(int16_t)talas_record_get_u16(&r) / 32767.0f;
}

void talas_peaks_encode(const struct talas_cache_source *identity, uint64_t duration_ms, uint32_t buckets,
                        const float *min, const float *max, struct talas_buf *out)
{
    struct talas_record_writer w;

    talas_record_writer_buf(&w, out);
    talas_record_put_u8(&w, RECORD_VERSION);
    talas_record_put_zero(&w, 3);
    talas_record_put_u32(&w, buckets);
    talas_record_put_u64(&w, identity->size);
    talas_record_put_i64(&w, identity->mtime_ns);
    talas_record_put_u64(&w, duration_ms);
    for (uint32_t i = 0; i < buckets; i++) {
        talas_record_put_u16(&w, (uint16_t)quantize(min[i]));
        talas_record_put_u16(&w, (uint16_t)quantize(max[i]));
    }
}

int talas_peaks_decode(const void *data, size_t len, struct talas_peaks *p_r)
{
    struct talas_record_reader r;

    talas_record_reader_init(&r, data, len);
    if (talas_record_get_u8(&r) != RECORD_VERSION)
        return -1;
    talas_record_get_bytes(&r, 3); /* reserved, written as 0 */
    p_r->buckets = talas_record_get_u32(&r);
    p_r->identity.size = talas_record_get_u64(&r);
    p_r->identity.mtime_ns = talas_record_get_i64(&r);
    p_r->duration_ms = talas_record_get_u64(&r);
    if (talas_record_reader_ok(&r) != 0 || p_r->buckets == 0 || p_r->buckets > TALAS_PEAKS_BUCKETS ||
        r.left != (size_t)p_r->buckets * 4)
        return -1;
    p_r->data = talas_record_get_bytes(&r, r.left);
    return 0;
}

int talas_peaks_get(struct talas_storage *st, MDB_txn *txn, const char *track,
                    const struct talas_cache_source *identity, struct talas_peaks *p_r)
{
    MDB_val key = {strlen(track), (void *)track}, val;
    int rc = mdb_get(txn, talas_storage_dbi(st, TALAS_DBI_PEAKS), &key, &val);

    if (rc != 0)
        return rc;
    if (talas_peaks_decode(val.mv_data, val.mv_size, p_r) != 0)
        return -1;
    if (p_r->identity.size != identity->size || p_r->identity.mtime_ns != identity->mtime_ns)
        return MDB_NOTFOUND;
    return 0;
}

int talas_peaks_put(struct talas_storage *st, const char *track, const void *rec, size_t len)
{
    MDB_val key = {strlen(track), (void *)track}, val = {len, (void *)rec};
    MDB_txn *txn;
    int rc;

    if ((rc = talas_storage_write_begin(st, &txn)) != 0)
        return rc;
    if ((rc = mdb_put(txn, talas_storage_dbi(st, TALAS_DBI_PEAKS), &key, &val, 0)) != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    return mdb_txn_commit(txn);
}

int talas_peaks_move(struct talas_storage *st, MDB_txn *txn, const char *from, const char *to)
{
    MDB_dbi dbi = talas_storage_dbi(st, TALAS_DBI_PEAKS);
    MDB_val key = {strlen(from), (void *)from}, nkey = {strlen(to), (void *)to}, val;
    int rc;

    if ((rc = mdb_get(txn, dbi, &key, &val)) != 0)
        return rc == MDB_NOTFOUND ? 0 : rc;
    /* the value points into the map, which the put may change: MDB_RESERVE
     * would not help, so put first (another key) and delete after */
    rc = mdb_put(txn, dbi, &nkey, &val, MDB_NOOVERWRITE);
    if (rc != 0 && rc != MDB_KEYEXIST)
        return rc;
    return mdb_del(txn, dbi, &key, NULL);
}

int talas_peaks_drop(struct talas_storage *st, const char *track, uint64_t *count_r)
{
    MDB_dbi dbi = talas_storage_dbi(st, TALAS_DBI_PEAKS);
    uint64_t count = 0;
    MDB_txn *txn;
    MDB_stat stat;
    int rc;

    if (count_r != NULL)
        *count_r = 0;
    if ((rc = talas_storage_write_begin(st, &txn)) != 0)
        return rc;
    if (track != NULL) {
        MDB_val key = {strlen(track), (void *)track};
        rc = mdb_del(txn, dbi, &key, NULL);
        if (rc == 0)
            count = 1;
        else if (rc == MDB_NOTFOUND)
            rc = 0;
    } else if ((rc = mdb_stat(txn, dbi, &stat)) == 0) {
        /* a few records a track of 16 KiB: emptying them all is short */
        count = stat.ms_entries;
        rc = mdb_drop(txn, dbi, 0);
    }
    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    if ((rc = mdb_txn_commit(txn)) == 0 && count_r != NULL)
        *count_r = count;
    return rc;
}

void talas_peaks_downsample(const struct talas_peaks *p, uint32_t points, float *min_r, float *max_r)
{
    uint64_t b = p->buckets;

    for (uint32_t j = 0; j < points; j++) {
        uint64_t lo = j * b / points, hi = (j + 1) * b / points;
        float mn = 1.0f, mx = -1.0f;

        if (hi <= lo)
            hi = lo + 1;
        for (uint64_t i = lo; i < hi; i++) {
            float a = level(p->data + i * 4), z = level(p->data + i * 4 + 2);
            if (a < mn)
                mn = a;
            if (z > mx)
                mx = z;
        }
        min_r[j] = mn;
        max_r[j] = mx;
    }
}
