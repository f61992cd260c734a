/*
 * peaks.c - the stored waveforms (see peaks.h).
 *
 * Entry points: talas_peaks_encode / _decode, talas_peaks_get / _put /
 * _drop, talas_peaks_downsample. Logs nothing: errors go back to the
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

#include "store/peaks.h"

#define RECORD_VERSION 1
#define HEADER_SIZE 32

static void put_le(unsigned char *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, int bytes)
{
    uint64_t v = 0;

    for (int i = bytes - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static int16_t quantize(float v)
{
    if (!(v > -1.0f))
        v = -1.0f; /* NaN too */
    if (v > 1.0f)
        v = 1.0f;
    /* rounded to the nearest step (no libm in every program that links this) */
    return (int16_t)(v * 32767.0f + (v < 0 ? -0.5f : 0.5f));
}

static float level(const unsigned char *p)
{
    return (float)(int16_t)(uint16_t)get_le(p, 2) / 32767.0f;
}

void talas_peaks_encode(const struct talas_cache_source *identity, uint64_t duration_ms, uint32_t buckets,
                        const float *min, const float *max, struct talas_buf *out)
{
    unsigned char h[HEADER_SIZE] = {RECORD_VERSION};

    put_le(h + 4, buckets, 4);
    put_le(h + 8, identity->size, 8);
    put_le(h + 16, (uint64_t)identity->mtime_ns, 8);
    put_le(h + 24, duration_ms, 8);
    talas_buf_append(out, h, sizeof(h));
    for (uint32_t i = 0; i < buckets; i++) {
        unsigned char pair[4];
        put_le(pair, (uint16_t)quantize(min[i]), 2);
        put_le(pair + 2, (uint16_t)quantize(max[i]), 2);
        talas_buf_append(out, pair, sizeof(pair));
    }
}

int talas_peaks_decode(const void *data, size_t len, struct talas_peaks *p_r)
{
    const unsigned char *p = data;

    if (len < HEADER_SIZE || p[0] != RECORD_VERSION)
        return -1;
    p_r->buckets = (uint32_t)get_le(p + 4, 4);
    if (p_r->buckets == 0 || p_r->buckets > TALAS_PEAKS_BUCKETS ||
        len != HEADER_SIZE + (size_t)p_r->buckets * 4)
        return -1;
    p_r->identity.size = get_le(p + 8, 8);
    p_r->identity.mtime_ns = (int64_t)get_le(p + 16, 8);
    p_r->duration_ms = get_le(p + 24, 8);
    p_r->data = p + HEADER_SIZE;
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
