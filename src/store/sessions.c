/*
 * sessions.c - streaming session records in LMDB (sessions.h).
 *
 * Entry points: talas_session_new_id, talas_session_get,
 * talas_session_create, talas_session_update, talas_session_end,
 * talas_session_sweep, talas_session_foreach, talas_session_counters_get.
 *
 * Records:
 *   TALAS_DBI_SESSIONS  id -> u8 version (2), str session_id, str
 *                       track_id, str client_id, str current_quality; the
 *                       capabilities: 5 u32 (bandwidth, buffer, connection,
 *                       device, adaptive), str preferred_quality; the
 *                       metrics: 2 f64 (buffer health, packet loss), 6 u32
 *                       (speed, latency, rebuffers, rebuffer ms, switches,
 *                       reports); the monitor: 2 u32; u64 created_at_ms,
 *                       u64 last_updated_ms (the record codec,
 *                       core/record.h). A record of another version (the
 *                       raw structs of version 1) reads as no session: a
 *                       session lives minutes, and the sweep removes it.
 *   TALAS_DBI_META "sessions"  u8 version, 7 bytes 0, then 5 u64 (little
 *                       endian): created, ended, expired, quality_switches,
 *                       rebuffers
 *
 * Every write transaction touches a session and the counters, nothing
 * more (the sweep: at most its MAX sessions), so a worker's loop never
 * waits long for LMDB's one writer. Logs nothing: errors are returned.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "core/record.h"
#include "store/sessions.h"
#include "core/util.h"

#define SESSION_VERSION 2
#define COUNTERS_VERSION 1
#define COUNTERS_FIELDS 5
#define COUNTERS_LEN (8 + 8 * COUNTERS_FIELDS)

static const char counters_key[] = "sessions";

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int talas_session_new_id(char id_r[TALAS_SESSION_ID_LEN + 1])
{
    unsigned char r[16];
    size_t got = 0, o = 0;

    while (got < sizeof(r)) {
        ssize_t n = getrandom(r + got, sizeof(r) - got, 0);
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1)
            return -1;
        got += (size_t)n;
    }
    /* 128 bits: five groups of 3 bytes (20 characters), then one byte (2) */
    for (size_t i = 0; i < 15; i += 3) {
        uint32_t v = (uint32_t)r[i] << 16 | (uint32_t)r[i + 1] << 8 | r[i + 2];
        id_r[o++] = b64url[v >> 18];
        id_r[o++] = b64url[(v >> 12) & 63];
        id_r[o++] = b64url[(v >> 6) & 63];
        id_r[o++] = b64url[v & 63];
    }
    id_r[o++] = b64url[r[15] >> 2];
    id_r[o++] = b64url[(r[15] & 3) << 4];
    id_r[o] = '\0';
    return 0;
}

int talas_session_id_valid(const char *s, size_t len)
{
    if (len != TALAS_SESSION_ID_LEN)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] == '\0' || strchr(b64url, s[i]) == NULL)
            return 0;
    return 1;
}

int talas_session_expired(const struct talas_session *s, uint64_t now_ms, uint64_t timeout_ms)
{
    return now_ms >= s->last_updated_ms && now_ms - s->last_updated_ms >= timeout_ms;
}

/* ------------------------------------------------------------- records */

static MDB_val id_key(const char *id)
{
    MDB_val key = {strlen(id), (void *)id};
    return key;
}

/* Copies string S (LEN bytes) into DST of SIZE bytes; -1 when it does not fit. */
static int get_field(char *dst, size_t size, const char *s, size_t len)
{
    if (s == NULL || len >= size)
        return -1;
    memcpy(dst, s, len + 1);
    return 0;
}

static int decode(const MDB_val *val, struct talas_session *s_r)
{
    struct talas_client_capabilities *c = &s_r->client_capabilities;
    struct talas_performance_metrics *m = &s_r->performance_metrics;
    const char *id, *track, *client, *quality, *preferred;
    size_t id_n = 0, track_n = 0, client_n = 0, quality_n = 0, preferred_n = 0;
    struct talas_record_reader r;

    memset(s_r, 0, sizeof(*s_r));
    talas_record_reader_init(&r, val->mv_data, val->mv_size);
    if (talas_record_get_u8(&r) != SESSION_VERSION)
        return MDB_NOTFOUND;
    id = talas_record_get_str(&r, &id_n);
    track = talas_record_get_str(&r, &track_n);
    client = talas_record_get_str(&r, &client_n);
    quality = talas_record_get_str(&r, &quality_n);
    c->estimated_bandwidth_kbps = talas_record_get_u32(&r);
    c->buffer_duration_ms = talas_record_get_u32(&r);
    c->connection_type = talas_record_get_u32(&r);
    c->device_type = talas_record_get_u32(&r);
    c->adaptive_enabled = talas_record_get_u32(&r);
    preferred = talas_record_get_str(&r, &preferred_n);
    m->buffer_health_percentage = talas_record_get_f64(&r);
    m->packet_loss_percentage = talas_record_get_f64(&r);
    m->download_speed_kbps = talas_record_get_u32(&r);
    m->latency_ms = talas_record_get_u32(&r);
    m->rebuffer_count = talas_record_get_u32(&r);
    m->rebuffer_duration_ms = talas_record_get_u32(&r);
    m->quality_switches = talas_record_get_u32(&r);
    m->reports = talas_record_get_u32(&r);
    s_r->monitor.healthy_streak = talas_record_get_u32(&r);
    s_r->monitor.shortfall_streak = talas_record_get_u32(&r);
    s_r->created_at_ms = talas_record_get_u64(&r);
    s_r->last_updated_ms = talas_record_get_u64(&r);
    if (talas_record_reader_end(&r) != 0 ||
        get_field(s_r->session_id, sizeof(s_r->session_id), id, id_n) != 0 ||
        get_field(s_r->track_id, sizeof(s_r->track_id), track, track_n) != 0 ||
        get_field(s_r->client_id, sizeof(s_r->client_id), client, client_n) != 0 ||
        get_field(s_r->current_quality, sizeof(s_r->current_quality), quality, quality_n) != 0 ||
        get_field(c->preferred_quality, sizeof(c->preferred_quality), preferred, preferred_n) != 0) {
        memset(s_r, 0, sizeof(*s_r));
        return MDB_NOTFOUND;
    }
    return 0;
}

static int put(struct talas_storage *st, MDB_txn *txn, const struct talas_session *s, unsigned flags)
{
    const struct talas_client_capabilities *c = &s->client_capabilities;
    const struct talas_performance_metrics *m = &s->performance_metrics;
    MDB_val key = id_key(s->session_id), val;
    struct talas_record_writer w;
    struct talas_buf out = {0};
    int rc;

    talas_record_writer_buf(&w, &out);
    talas_record_put_u8(&w, SESSION_VERSION);
    talas_record_put_strn(&w, s->session_id, sizeof(s->session_id));
    talas_record_put_strn(&w, s->track_id, sizeof(s->track_id));
    talas_record_put_strn(&w, s->client_id, sizeof(s->client_id));
    talas_record_put_strn(&w, s->current_quality, sizeof(s->current_quality));
    talas_record_put_u32(&w, c->estimated_bandwidth_kbps);
    talas_record_put_u32(&w, c->buffer_duration_ms);
    talas_record_put_u32(&w, c->connection_type);
    talas_record_put_u32(&w, c->device_type);
    talas_record_put_u32(&w, c->adaptive_enabled);
    talas_record_put_strn(&w, c->preferred_quality, sizeof(c->preferred_quality));
    talas_record_put_f64(&w, m->buffer_health_percentage);
    talas_record_put_f64(&w, m->packet_loss_percentage);
    talas_record_put_u32(&w, m->download_speed_kbps);
    talas_record_put_u32(&w, m->latency_ms);
    talas_record_put_u32(&w, m->rebuffer_count);
    talas_record_put_u32(&w, m->rebuffer_duration_ms);
    talas_record_put_u32(&w, m->quality_switches);
    talas_record_put_u32(&w, m->reports);
    talas_record_put_u32(&w, s->monitor.healthy_streak);
    talas_record_put_u32(&w, s->monitor.shortfall_streak);
    talas_record_put_u64(&w, s->created_at_ms);
    talas_record_put_u64(&w, s->last_updated_ms);
    val.mv_data = out.data;
    val.mv_size = out.len;
    rc = mdb_put(txn, talas_storage_dbi(st, TALAS_DBI_SESSIONS), &key, &val, flags);
    talas_buf_free(&out);
    return rc;
}

int talas_session_get(struct talas_storage *st, MDB_txn *txn, const char *id, struct talas_session *s_r)
{
    MDB_val key = id_key(id), val;
    int rc;

    if ((rc = mdb_get(txn, talas_storage_dbi(st, TALAS_DBI_SESSIONS), &key, &val)) != 0)
        return rc;
    return decode(&val, s_r);
}

/* ------------------------------------------------------------ counters */

int talas_session_counters_get(struct talas_storage *st, MDB_txn *txn, struct talas_session_counters *c_r)
{
    MDB_val key = {sizeof(counters_key) - 1, (void *)counters_key}, val;
    struct talas_record_reader r;
    uint64_t v[COUNTERS_FIELDS];
    uint8_t version;
    int rc;

    memset(c_r, 0, sizeof(*c_r));
    rc = mdb_get(txn, talas_storage_dbi(st, TALAS_DBI_META), &key, &val);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    talas_record_reader_init(&r, val.mv_data, val.mv_size);
    version = talas_record_get_u8(&r);
    talas_record_get_bytes(&r, 7);
    for (int i = 0; i < COUNTERS_FIELDS; i++)
        v[i] = talas_record_get_u64(&r);
    /* damaged totals start again from zero rather than fail every write */
    if (talas_record_reader_end(&r) != 0 || version != COUNTERS_VERSION)
        return 0;
    c_r->created = v[0];
    c_r->ended = v[1];
    c_r->expired = v[2];
    c_r->quality_switches = v[3];
    c_r->rebuffers = v[4];
    return 0;
}

static int counters_add(struct talas_storage *st, MDB_txn *txn, const struct talas_session_counters *d)
{
    MDB_val key = {sizeof(counters_key) - 1, (void *)counters_key}, val;
    unsigned char rec[COUNTERS_LEN];
    struct talas_record_writer w;
    struct talas_session_counters c;
    int rc;

    if (d->created == 0 && d->ended == 0 && d->expired == 0 && d->quality_switches == 0 && d->rebuffers == 0)
        return 0;
    if ((rc = talas_session_counters_get(st, txn, &c)) != 0)
        return rc;
    talas_record_writer_mem(&w, rec, sizeof(rec));
    talas_record_put_u8(&w, COUNTERS_VERSION);
    talas_record_put_zero(&w, 7);
    talas_record_put_u64(&w, c.created + d->created);
    talas_record_put_u64(&w, c.ended + d->ended);
    talas_record_put_u64(&w, c.expired + d->expired);
    talas_record_put_u64(&w, c.quality_switches + d->quality_switches);
    talas_record_put_u64(&w, c.rebuffers + d->rebuffers);
    val.mv_data = rec;
    val.mv_size = w.len;
    return mdb_put(txn, talas_storage_dbi(st, TALAS_DBI_META), &key, &val, 0);
}

/* ---------------------------------------------------------- operations */

static int commit(MDB_txn *txn, int rc)
{
    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    return mdb_txn_commit(txn);
}

/* Deletes session ID when it has expired, or when its record is of
 * another layout (it would hold a place forever): 1 deleted, 0 not, or an
 * LMDB error. */
static int delete_if_expired(struct talas_storage *st, MDB_txn *txn, const char *id, uint64_t now_ms,
                             uint64_t timeout_ms)
{
    struct talas_session s;
    MDB_val key = id_key(id), val;
    int rc = mdb_get(txn, talas_storage_dbi(st, TALAS_DBI_SESSIONS), &key, &val);

    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    if (decode(&val, &s) == 0 && !talas_session_expired(&s, now_ms, timeout_ms))
        return 0;
    if ((rc = mdb_del(txn, talas_storage_dbi(st, TALAS_DBI_SESSIONS), &key, NULL)) != 0)
        return rc;
    return 1;
}

static int try_create(struct talas_storage *st, const struct talas_session *s, size_t max_sessions)
{
    struct talas_session_counters d = {.created = 1};
    MDB_txn *txn;
    MDB_stat ms;
    int rc;

    if ((rc = talas_storage_write_begin(st, &txn)) != 0)
        return rc;
    if ((rc = mdb_stat(txn, talas_storage_dbi(st, TALAS_DBI_SESSIONS), &ms)) != 0)
        return commit(txn, rc);
    if (ms.ms_entries >= max_sessions) {
        mdb_txn_abort(txn);
        return 1;
    }
    /* a collision of 128 random bits would be a broken generator: fail */
    if ((rc = put(st, txn, s, MDB_NOOVERWRITE)) == 0)
        rc = counters_add(st, txn, &d);
    return commit(txn, rc);
}

int talas_session_create(struct talas_storage *st, const struct talas_session *s, size_t max_sessions,
                         uint64_t now_ms, uint64_t timeout_ms)
{
    int rc = try_create(st, s, max_sessions);

    if (rc != 1)
        return rc;
    /* full: perhaps of sessions nobody swept yet */
    if ((rc = talas_session_sweep(st, now_ms, timeout_ms, 64, NULL)) != 0)
        return rc;
    return try_create(st, s, max_sessions);
}

int talas_session_update(struct talas_storage *st, const char *id, uint64_t now_ms, uint64_t timeout_ms,
                         talas_session_update_fn *fn, void *arg, struct talas_session *s_r)
{
    struct talas_session_counters d;
    struct talas_session s;
    MDB_txn *txn;
    int rc;

    if ((rc = talas_storage_write_begin(st, &txn)) != 0)
        return rc;
    if ((rc = talas_session_get(st, txn, id, &s)) != 0)
        return commit(txn, rc);
    if (talas_session_expired(&s, now_ms, timeout_ms)) {
        struct talas_session_counters e = {.expired = 1};
        MDB_val key = id_key(id);
        if ((rc = mdb_del(txn, talas_storage_dbi(st, TALAS_DBI_SESSIONS), &key, NULL)) == 0)
            rc = counters_add(st, txn, &e);
        rc = commit(txn, rc);
        return rc != 0 ? rc : MDB_NOTFOUND;
    }
    memset(&d, 0, sizeof(d));
    if ((rc = fn(&s, &d, arg)) != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    s.last_updated_ms = now_ms;
    if ((rc = put(st, txn, &s, 0)) == 0)
        rc = counters_add(st, txn, &d);
    if ((rc = commit(txn, rc)) == 0 && s_r != NULL)
        *s_r = s;
    return rc;
}

int talas_session_end(struct talas_storage *st, const char *id, uint64_t now_ms, uint64_t timeout_ms)
{
    struct talas_session_counters d = {0};
    struct talas_session s;
    MDB_val key = id_key(id);
    MDB_txn *txn;
    int rc, expired;

    if ((rc = talas_storage_write_begin(st, &txn)) != 0)
        return rc;
    if ((rc = talas_session_get(st, txn, id, &s)) != 0)
        return commit(txn, rc);
    expired = talas_session_expired(&s, now_ms, timeout_ms);
    if (expired)
        d.expired = 1;
    else
        d.ended = 1;
    if ((rc = mdb_del(txn, talas_storage_dbi(st, TALAS_DBI_SESSIONS), &key, NULL)) == 0)
        rc = counters_add(st, txn, &d);
    rc = commit(txn, rc);
    return rc == 0 && expired ? MDB_NOTFOUND : rc;
}

/* Collects up to MAX ids of expired (or undecodable) records in IDS;
 * returns how many, or -1 with an LMDB error in *RC_R. */
static size_t sweep_scan(struct talas_storage *st, uint64_t now_ms, uint64_t timeout_ms, size_t max,
                         char (*ids)[TALAS_SESSION_ID_LEN + 1], int *rc_r)
{
    struct talas_session s;
    MDB_cursor *cur;
    MDB_txn *txn;
    MDB_val key, val;
    size_t n = 0;
    int rc;

    if ((rc = talas_storage_read_begin(st, &txn)) != 0)
        goto done;
    if ((rc = mdb_cursor_open(txn, talas_storage_dbi(st, TALAS_DBI_SESSIONS), &cur)) != 0) {
        mdb_txn_abort(txn);
        goto done;
    }
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0 && n < max;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        if (key.mv_size != TALAS_SESSION_ID_LEN)
            continue;
        if (decode(&val, &s) == 0 && !talas_session_expired(&s, now_ms, timeout_ms))
            continue;
        memcpy(ids[n], key.mv_data, TALAS_SESSION_ID_LEN);
        ids[n++][TALAS_SESSION_ID_LEN] = '\0';
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    if (rc == MDB_NOTFOUND)
        rc = 0;
done:
    *rc_r = rc;
    return n;
}

int talas_session_sweep(struct talas_storage *st, uint64_t now_ms, uint64_t timeout_ms, size_t max,
                        size_t *expired_r)
{
    struct talas_session_counters d = {0};
    char(*ids)[TALAS_SESSION_ID_LEN + 1];
    MDB_txn *txn;
    size_t n;
    int rc;

    if (expired_r != NULL)
        *expired_r = 0;
    if (max == 0)
        return 0;
    ids = xcalloc(max, sizeof(*ids));
    n = sweep_scan(st, now_ms, timeout_ms, max, ids, &rc);
    if (rc != 0 || n == 0)
        goto done;
    /* each one again under the write lock: a report may have come since */
    if ((rc = talas_storage_write_begin(st, &txn)) != 0)
        goto done;
    for (size_t i = 0; i < n && rc == 0; i++) {
        int del = delete_if_expired(st, txn, ids[i], now_ms, timeout_ms);
        if (del == 1)
            d.expired++;
        else
            rc = del;
    }
    if (rc == 0)
        rc = counters_add(st, txn, &d);
    rc = commit(txn, rc);
    if (rc == 0 && expired_r != NULL)
        *expired_r = (size_t)d.expired;

done:
    free(ids);
    return rc;
}

int talas_session_foreach(struct talas_storage *st, MDB_txn *txn,
                          int (*fn)(const struct talas_session *s, void *arg), void *arg)
{
    struct talas_session s;
    MDB_cursor *cur;
    MDB_val key, val;
    int rc;

    if ((rc = mdb_cursor_open(txn, talas_storage_dbi(st, TALAS_DBI_SESSIONS), &cur)) != 0)
        return rc;
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        int r;
        if (decode(&val, &s) != 0)
            continue;
        if ((r = fn(&s, arg)) != 0) {
            mdb_cursor_close(cur);
            return r;
        }
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}
