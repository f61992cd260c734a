/*
 * sessions.c - streaming session records in LMDB (sessions.h).
 *
 * Entry points: talas_session_new_id, talas_session_get,
 * talas_session_create, talas_session_update, talas_session_end,
 * talas_session_sweep, talas_session_foreach, talas_session_counters_get,
 * talas_session_count_by_owner, talas_session_purge_owner.
 *
 * Records:
 *   TALAS_DBI_SESSIONS  id -> u8 version (3), str session_id, str
 *                       track_id, str client_id, str current_quality; the
 *                       capabilities: 5 u32 (bandwidth, buffer, connection,
 *                       device, adaptive), str preferred_quality; the
 *                       metrics: 2 f64 (buffer health, packet loss), 6 u32
 *                       (speed, latency, rebuffers, rebuffer ms, switches,
 *                       reports); the monitor: 2 u32; u64 created_at_ms,
 *                       u64 last_updated_ms; u8 owner kind, str owner (the
 *                       record codec, core/record.h). Version 2 is the
 *                       same without the owner, and reads as a session of
 *                       no owner (it counts only against the global cap).
 *                       A record of another version (the raw structs of
 *                       version 1) reads as no session: a session lives
 *                       minutes, and the sweep removes it.
 *   TALAS_DBI_SESSIONS_BY_OWNER  u8 owner kind, the owner, NUL, the
 *                       session id -> empty: one key per session that has
 *                       an owner, written and deleted in the transactions
 *                       that write and delete the session, so that the
 *                       sessions of one owner are a short cursor range.
 *   TALAS_DBI_META "sessions"  u8 version, 7 bytes 0, then 5 u64 (little
 *                       endian): created, ended, expired, quality_switches,
 *                       rebuffers
 *
 * Every write transaction touches a session, its index key and the
 * counters, nothing more (the sweep: at most its MAX sessions; a creation:
 * also its owner's keys, up to the owner's bound of live ones, deleting
 * those of expired sessions on the way), so a worker's loop never waits
 * long for LMDB's one writer. Logs nothing: errors are returned.
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

#define SESSION_VERSION 3
#define SESSION_VERSION_UNOWNED 2
/* The owner index's keys: kind, owner, NUL, session id. */
#define OWNER_KEY_MAX (1 + TALAS_SESSION_OWNER_SIZE + TALAS_SESSION_ID_LEN)
/* A creation that finds the table full sweeps this many expired sessions
 * at a time, at most this many times, before it says full. */
#define CREATE_SWEEP_BATCH 256
#define CREATE_SWEEP_ROUNDS 4
/* Sessions deleted per write transaction by talas_session_purge_owner. */
#define PURGE_BATCH 256
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

/* Whether OWNER (may be NULL) may go with owner kind KIND: a known kind,
 * and an owner exactly when the kind has one. */
static int owner_valid(uint32_t kind, const char *owner)
{
    if (owner == NULL)
        return 0;
    if (kind == TALAS_SESSION_OWNER_NONE)
        return owner[0] == '\0';
    return (kind == TALAS_SESSION_OWNER_USER || kind == TALAS_SESSION_OWNER_ADDRESS) && owner[0] != '\0';
}

int talas_session_decode(const void *data, size_t len, struct talas_session *s_r)
{
    struct talas_client_capabilities *c = &s_r->client_capabilities;
    struct talas_performance_metrics *m = &s_r->performance_metrics;
    const char *id, *track, *client, *quality, *preferred, *owner = "";
    size_t id_n = 0, track_n = 0, client_n = 0, quality_n = 0, preferred_n = 0, owner_n = 0;
    struct talas_record_reader r;
    uint8_t version;

    memset(s_r, 0, sizeof(*s_r));
    talas_record_reader_init(&r, data, len);
    version = talas_record_get_u8(&r);
    if (version != SESSION_VERSION && version != SESSION_VERSION_UNOWNED)
        return -1;
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
    if (version == SESSION_VERSION) {
        s_r->owner_kind = talas_record_get_u8(&r);
        owner = talas_record_get_str(&r, &owner_n);
    }
    if (talas_record_reader_end(&r) != 0 || !owner_valid(s_r->owner_kind, owner) ||
        get_field(s_r->owner, sizeof(s_r->owner), owner, owner_n) != 0 ||
        get_field(s_r->session_id, sizeof(s_r->session_id), id, id_n) != 0 ||
        get_field(s_r->track_id, sizeof(s_r->track_id), track, track_n) != 0 ||
        get_field(s_r->client_id, sizeof(s_r->client_id), client, client_n) != 0 ||
        get_field(s_r->current_quality, sizeof(s_r->current_quality), quality, quality_n) != 0 ||
        get_field(c->preferred_quality, sizeof(c->preferred_quality), preferred, preferred_n) != 0) {
        memset(s_r, 0, sizeof(*s_r));
        return -1;
    }
    return 0;
}

static int decode(const MDB_val *val, struct talas_session *s_r)
{
    return talas_session_decode(val->mv_data, val->mv_size, s_r) == 0 ? 0 : MDB_NOTFOUND;
}

void talas_session_encode(const struct talas_session *s, struct talas_buf *out)
{
    const struct talas_client_capabilities *c = &s->client_capabilities;
    const struct talas_performance_metrics *m = &s->performance_metrics;
    struct talas_record_writer w;

    talas_record_writer_buf(&w, out);
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
    talas_record_put_u8(&w, (uint8_t)s->owner_kind);
    talas_record_put_strn(&w, s->owner, sizeof(s->owner));
}

static int put(struct talas_storage *st, MDB_txn *txn, const struct talas_session *s, unsigned flags)
{
    MDB_val key = id_key(s->session_id), val;
    struct talas_buf out = {0};
    int rc;

    talas_session_encode(s, &out);
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

/* --------------------------------------------------------- owner index */

/* Whether S counts against an owner (and so has a key in the index). */
static int owned(const struct talas_session *s)
{
    return s->owner_kind != TALAS_SESSION_OWNER_NONE;
}

/* Fills BUF with the index key of session ID of owner KIND OWNER; with ID
 * "", the prefix of all that owner's keys. Returns its length, or 0 when
 * OWNER is empty or too long to be anyone's. */
static size_t owner_key(unsigned char buf[OWNER_KEY_MAX], uint32_t kind, const char *owner, const char *id)
{
    size_t owner_n = strlen(owner), id_n = strlen(id);

    if (owner_n == 0 || owner_n >= TALAS_SESSION_OWNER_SIZE || id_n > TALAS_SESSION_ID_LEN)
        return 0;
    buf[0] = (unsigned char)kind;
    memcpy(buf + 1, owner, owner_n + 1); /* the NUL ends the owner: no owner is a prefix of another */
    memcpy(buf + 2 + owner_n, id, id_n);
    return 2 + owner_n + id_n;
}

static int index_put(struct talas_storage *st, MDB_txn *txn, const struct talas_session *s)
{
    unsigned char buf[OWNER_KEY_MAX];
    MDB_val key = {0, buf}, val = {0, NULL};

    if (!owned(s))
        return 0;
    if ((key.mv_size = owner_key(buf, s->owner_kind, s->owner, s->session_id)) == 0)
        return EINVAL;
    return mdb_put(txn, talas_storage_dbi(st, TALAS_DBI_SESSIONS_BY_OWNER), &key, &val, 0);
}

/* Deletes session S (decoded from its record) and its index key. */
static int delete_session(struct talas_storage *st, MDB_txn *txn, const struct talas_session *s)
{
    unsigned char buf[OWNER_KEY_MAX];
    MDB_val key = id_key(s->session_id);
    int rc;

    if ((rc = mdb_del(txn, talas_storage_dbi(st, TALAS_DBI_SESSIONS), &key, NULL)) != 0)
        return rc;
    if (!owned(s) || (key.mv_size = owner_key(buf, s->owner_kind, s->owner, s->session_id)) == 0)
        return 0;
    key.mv_data = buf;
    rc = mdb_del(txn, talas_storage_dbi(st, TALAS_DBI_SESSIONS_BY_OWNER), &key, NULL);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/*
 * Walks the index keys of owner KIND OWNER in TXN: FN gets each key's
 * session id and the cursor (on that key); it returns 0 to go on,
 * WALK_STOP to stop, or an error. Returns 0 or an error.
 */
#define WALK_STOP (-1) /* neither an LMDB code nor an errno value */
typedef int owner_walk_fn(MDB_cursor *cur, const char *id, void *arg);

static int owner_walk(struct talas_storage *st, MDB_txn *txn, uint32_t kind, const char *owner,
                      owner_walk_fn *fn, void *arg)
{
    unsigned char prefix[OWNER_KEY_MAX];
    char id[TALAS_SESSION_ID_LEN + 1];
    MDB_cursor *cur;
    MDB_val key, val;
    size_t n = owner_key(prefix, kind, owner, "");
    int rc;

    if (n == 0)
        return 0;
    if ((rc = mdb_cursor_open(txn, talas_storage_dbi(st, TALAS_DBI_SESSIONS_BY_OWNER), &cur)) != 0)
        return rc;
    key.mv_size = n;
    key.mv_data = prefix;
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        if (key.mv_size < n || memcmp(key.mv_data, prefix, n) != 0)
            break;
        if (key.mv_size != n + TALAS_SESSION_ID_LEN)
            continue;
        memcpy(id, (const char *)key.mv_data + n, TALAS_SESSION_ID_LEN);
        id[TALAS_SESSION_ID_LEN] = '\0';
        if ((rc = fn(cur, id, arg)) != 0)
            break;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND || rc == WALK_STOP ? 0 : rc;
}

/* Counts index keys. */
static int count_one(MDB_cursor *cur, const char *id, void *arg)
{
    (void)cur;
    (void)id;
    ++*(size_t *)arg;
    return 0;
}

int talas_session_count_by_owner(struct talas_storage *st, MDB_txn *txn, const char *user, size_t *n_r)
{
    *n_r = 0;
    return owner_walk(st, txn, TALAS_SESSION_OWNER_USER, user, count_one, n_r);
}

/* Adds up an owner's sessions and the bytes of their records and index
 * keys. */
struct usage {
    struct talas_storage *st;
    MDB_txn *txn;
    uint64_t count, bytes;
};

static int usage_one(MDB_cursor *cur, const char *id, void *arg)
{
    struct usage *u = arg;
    MDB_val key = id_key(id), val, ikey, ival;

    if (mdb_cursor_get(cur, &ikey, &ival, MDB_GET_CURRENT) == 0)
        u->bytes += ikey.mv_size;
    u->count++;
    if (mdb_get(u->txn, talas_storage_dbi(u->st, TALAS_DBI_SESSIONS), &key, &val) == 0)
        u->bytes += key.mv_size + val.mv_size;
    return 0;
}

int talas_session_owner_usage(struct talas_storage *st, MDB_txn *txn, const char *user, uint64_t *count_r,
                              uint64_t *bytes_r)
{
    struct usage u = {st, txn, 0, 0};
    int rc = owner_walk(st, txn, TALAS_SESSION_OWNER_USER, user, usage_one, &u);

    *count_r = u.count;
    *bytes_r = u.bytes;
    return rc;
}

int talas_session_foreach_user(struct talas_storage *st, MDB_txn *txn, talas_session_user_fn *fn, void *arg)
{
    char last[TALAS_SESSION_OWNER_SIZE] = "", user[TALAS_SESSION_OWNER_SIZE];
    unsigned char first = TALAS_SESSION_OWNER_USER;
    MDB_cursor *cur;
    MDB_val key = {1, &first}, val;
    int rc;

    if ((rc = mdb_cursor_open(txn, talas_storage_dbi(st, TALAS_DBI_SESSIONS_BY_OWNER), &cur)) != 0)
        return rc;
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        const unsigned char *k = key.mv_data;
        const unsigned char *nul;
        size_t n;

        if (key.mv_size < 2 || k[0] != TALAS_SESSION_OWNER_USER)
            break;
        if ((nul = memchr(k + 1, '\0', key.mv_size - 1)) == NULL ||
            (n = (size_t)(nul - (k + 1))) == 0 || n >= sizeof(user))
            continue;
        memcpy(user, k + 1, n);
        user[n] = '\0';
        if (strcmp(user, last) == 0)
            continue;
        memcpy(last, user, n + 1);
        if ((rc = fn(user, arg)) != 0)
            break;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* What counting an owner's live sessions in a write transaction finds. */
struct live_count {
    struct talas_storage *st;
    MDB_txn *txn;
    uint64_t now_ms, timeout_ms;
    size_t bound; /* the walk stops at this many live ones */
    size_t live;
    uint64_t expired; /* deleted here */
};

/* A live session counts; an expired one is deleted with its key, and a key
 * whose session is gone (or unreadable) is dropped. Past the bound there
 * is nothing more to learn: the walk stops (expired ones after it are the
 * sweep's). */
static int count_live_one(MDB_cursor *cur, const char *id, void *arg)
{
    struct live_count *lc = arg;
    struct talas_session s;
    MDB_val key = id_key(id);
    int rc = talas_session_get(lc->st, lc->txn, id, &s);

    if (rc == 0 && !talas_session_expired(&s, lc->now_ms, lc->timeout_ms))
        return ++lc->live >= lc->bound ? WALK_STOP : 0;
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    if (rc == 0)
        lc->expired++;
    rc = mdb_del(lc->txn, talas_storage_dbi(lc->st, TALAS_DBI_SESSIONS), &key, NULL);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    /* the cursor then stands on the next key, which MDB_NEXT returns */
    return mdb_cursor_del(cur, 0);
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
    if (decode(&val, &s) == 0) {
        if (!talas_session_expired(&s, now_ms, timeout_ms))
            return 0;
        rc = delete_session(st, txn, &s);
    } else {
        /* unreadable: it has no key in the owner index that could be found */
        rc = mdb_del(txn, talas_storage_dbi(st, TALAS_DBI_SESSIONS), &key, NULL);
    }
    return rc != 0 ? rc : 1;
}

/* One attempt at creating S, in one write transaction: see
 * talas_session_create. Expired sessions of S's owner found on the way
 * are deleted (and counted) even when the creation is refused. */
static int try_create(struct talas_storage *st, const struct talas_session *s,
                      const struct talas_session_limits *lim, int backend, uint64_t now_ms,
                      uint64_t timeout_ms, struct talas_quota_refusal *refusal_r)
{
    struct talas_session_counters d = {.created = 1};
    size_t per_owner = s->owner_kind == TALAS_SESSION_OWNER_USER      ? lim->max_per_user
                       : s->owner_kind == TALAS_SESSION_OWNER_ADDRESS ? lim->max_per_address
                                                                      : 0;
    struct live_count lc = {st, NULL, now_ms, timeout_ms, per_owner, 0, 0};
    size_t cap = lim->max_sessions;
    int rc, refused = 0;
    MDB_txn *txn;
    MDB_stat ms;

    /* the last ones are the backend's: it can always start a session for
     * its users, whatever listeners hold */
    if (!backend)
        cap = lim->backend_reserved < cap ? cap - lim->backend_reserved : 0;
    if ((rc = talas_storage_write_begin(st, &txn)) != 0)
        return rc;
    lc.txn = txn;
    /* per client first: one client at its bound is refused as such, even
     * when the server is full too */
    if (per_owner > 0) {
        if ((rc = owner_walk(st, txn, s->owner_kind, s->owner, count_live_one, &lc)) != 0)
            return commit(txn, rc);
        if (lc.live >= per_owner)
            refused = talas_quota_refuse(refusal_r,
                                         s->owner_kind == TALAS_SESSION_OWNER_USER
                                             ? "streaming.max_sessions_per_user"
                                             : "streaming.max_sessions_per_address",
                                         per_owner);
    }
    if (refused == 0) {
        if ((rc = mdb_stat(txn, talas_storage_dbi(st, TALAS_DBI_SESSIONS), &ms)) != 0)
            return commit(txn, rc);
        if (ms.ms_entries >= cap)
            refused = TALAS_SESSION_FULL;
    }
    if (refused != 0) {
        /* keep what the count swept */
        struct talas_session_counters e = {.expired = lc.expired};
        rc = commit(txn, counters_add(st, txn, &e));
        return rc != 0 ? rc : refused;
    }
    d.expired = lc.expired;
    /* a collision of 128 random bits would be a broken generator: fail */
    if ((rc = put(st, txn, s, MDB_NOOVERWRITE)) == 0 && (rc = index_put(st, txn, s)) == 0)
        rc = counters_add(st, txn, &d);
    return commit(txn, rc);
}

int talas_session_create(struct talas_storage *st, const struct talas_session *s,
                         const struct talas_session_limits *lim, int backend, uint64_t now_ms,
                         uint64_t timeout_ms, struct talas_quota_refusal *refusal_r)
{
    size_t swept = CREATE_SWEEP_BATCH;
    int rc;

    if (!owner_valid(s->owner_kind, s->owner) || strlen(s->owner) >= TALAS_SESSION_OWNER_SIZE)
        return EINVAL;
    for (int round = 0;; round++) {
        rc = try_create(st, s, lim, backend, now_ms, timeout_ms, refusal_r);
        /* a sweep of less than a batch left nothing expired behind */
        if (rc != TALAS_SESSION_FULL || swept < CREATE_SWEEP_BATCH || round == CREATE_SWEEP_ROUNDS)
            return rc;
        /* full: perhaps of sessions nobody swept yet */
        if ((rc = talas_session_sweep(st, now_ms, timeout_ms, CREATE_SWEEP_BATCH, &swept)) != 0)
            return rc;
        if (swept == 0)
            return TALAS_SESSION_FULL;
    }
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
        if ((rc = delete_session(st, txn, &s)) == 0)
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
    if ((rc = delete_session(st, txn, &s)) == 0)
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

/* Deletes a session of the owner being purged, and its key. */
struct purge {
    struct talas_storage *st;
    MDB_txn *txn;
    size_t n;
};

static int purge_one(MDB_cursor *cur, const char *id, void *arg)
{
    struct purge *p = arg;
    MDB_val key = id_key(id);
    int rc = mdb_del(p->txn, talas_storage_dbi(p->st, TALAS_DBI_SESSIONS), &key, NULL);

    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    if ((rc = mdb_cursor_del(cur, 0)) != 0)
        return rc;
    return ++p->n == PURGE_BATCH ? WALK_STOP : 0;
}

int talas_session_purge_owner(struct talas_storage *st, const char *user, size_t *purged_r)
{
    size_t total = 0;
    int rc = 0;

    for (;;) {
        struct purge p = {st, NULL, 0};
        struct talas_session_counters d = {0};

        if ((rc = talas_storage_write_begin(st, &p.txn)) != 0)
            break;
        rc = owner_walk(st, p.txn, TALAS_SESSION_OWNER_USER, user, purge_one, &p);
        d.ended = p.n;
        if (rc == 0)
            rc = counters_add(st, p.txn, &d);
        if ((rc = commit(p.txn, rc)) != 0)
            break;
        total += p.n;
        if (p.n < PURGE_BATCH)
            break;
    }
    if (purged_r != NULL)
        *purged_r = total;
    return rc;
}
