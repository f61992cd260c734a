/*
 * cache_claims.c - single flight across processes: a claim on a chunk key
 * says which process is encoding that chunk, so that the others wait for
 * its record instead of encoding it too.
 *
 * Entry points: talas_cache_claim() / _release() / _release_pid() /
 * _claims_reap(); talas__cache_claim_decode() for verify.
 *
 * Logs: claims taken over (info), claims that cannot be taken (error).
 *
 * A claim holds the pid, a per-process random token (a recycled pid is not
 * the same claimant) and the time it was taken; it is live while its
 * holder runs and cache.claim_timeout has not passed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "core/log.h"
#include "core/record.h"
#include "core/util.h"
#include "store/cache_internal.h"

/* This process's token, drawn again in a child after fork. */
static pthread_mutex_t token_lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t token_pid;
static uint64_t token_value;

static uint64_t my_token(void)
{
    uint64_t v;

    pthread_mutex_lock(&token_lock);
    if (token_pid != getpid()) {
        if (getrandom(&token_value, sizeof(token_value), 0) != (ssize_t)sizeof(token_value)) {
            /* no entropy source: time and pid still tell processes apart */
            token_value = talas_wall_ms() ^ (uint64_t)getpid() << 40 ^ (uint64_t)(uintptr_t)&v;
        }
        token_pid = getpid();
    }
    v = token_value;
    pthread_mutex_unlock(&token_lock);
    return v;
}

static uint64_t limit_claim_ms(const struct talas_cache_limits *limits)
{
    return limits != NULL && limits->claim_timeout_ms != 0 ? limits->claim_timeout_ms
                                                           : TALAS_CACHE_CLAIM_TIMEOUT_MS;
}

int talas__cache_claim_decode(const MDB_val *val, struct claim *c)
{
    struct talas_record_reader r;
    uint8_t version;
    uint32_t pid;

    talas_record_reader_init(&r, val->mv_data, val->mv_size);
    version = talas_record_get_u8(&r);
    talas_record_get_zero(&r, 3);
    pid = talas_record_get_u32(&r);
    c->token = talas_record_get_u64(&r);
    c->time_ms = talas_record_get_u64(&r);
    if (talas_record_reader_end(&r) != 0 || version != CLAIM_VERSION || pid == 0 || pid > INT32_MAX)
        return -1;
    c->pid = (pid_t)pid;
    return 0;
}

/* 1 when the claim's holder may still be encoding. */
static int claim_live(const struct claim *c, uint64_t timeout_ms, uint64_t now)
{
    uint64_t age = now > c->time_ms ? now - c->time_ms : c->time_ms - now; /* a clock stepped back too */

    if (age > timeout_ms)
        return 0;
    if (c->pid == getpid())
        return c->token == my_token();
    return kill(c->pid, 0) == 0 || errno != ESRCH;
}

/* The outcome from what TXN holds: DONE, BUSY, or OWNED meaning "free to
 * take"; ERROR with *rc_r set on an LMDB failure. *had_r tells whether a
 * (dead) claim is there. */
static enum talas_claim claim_state(struct talas_storage *st, MDB_txn *txn, const MDB_val *ck, uint32_t index,
                                    const struct talas_cache_source *src, uint64_t timeout_ms, int *had_r,
                                    int *rc_r)
{
    struct talas_cache_chunk view; /* asked for so that the frame table is checked too */
    struct claim c;
    MDB_val val;
    int rc;

    *had_r = 0;
    rc = mdb_get(txn, talas_storage_dbi(st, TALAS_DBI_CACHE_CHUNKS), (MDB_val *)ck, &val);
    if (rc == 0 && talas__cache_chunk_check(&val, index, src, 0, &view) == 0)
        return TALAS_CLAIM_DONE;
    if (rc != 0 && rc != MDB_NOTFOUND) {
        *rc_r = rc;
        return TALAS_CLAIM_ERROR;
    }
    rc = mdb_get(txn, talas_storage_dbi(st, TALAS_DBI_CACHE_CLAIMS), (MDB_val *)ck, &val);
    if (rc == MDB_NOTFOUND)
        return TALAS_CLAIM_OWNED;
    if (rc != 0) {
        *rc_r = rc;
        return TALAS_CLAIM_ERROR;
    }
    *had_r = 1;
    if (talas__cache_claim_decode(&val, &c) == 0 && claim_live(&c, timeout_ms, talas_wall_ms()))
        return TALAS_CLAIM_BUSY;
    return TALAS_CLAIM_OWNED;
}

enum talas_claim talas_cache_claim(struct talas_storage *st, const struct talas_cache_limits *limits,
                                   const char *track, const char *variant, uint32_t index,
                                   const struct talas_cache_source *src)
{
    unsigned char ekey[ENTRY_KEY_MAX], ck[CHUNK_KEY_MAX], rec[CLAIM_LEN];
    struct talas_record_writer w;
    size_t eklen = talas__cache_entry_key(track, variant, ekey);
    uint64_t timeout_ms = limit_claim_ms(limits);
    enum talas_claim state;
    MDB_val key, val;
    MDB_txn *txn;
    int rc = 0, had;

    if (eklen == 0 || src == NULL) {
        log_error("%s: invalid track id or variant", __func__);
        return TALAS_CLAIM_ERROR;
    }
    key.mv_data = ck;
    key.mv_size = talas__cache_chunk_key(ekey, eklen, index, ck);

    /* Pollers and late comers mostly find DONE or BUSY: a read transaction
     * answers them without waiting for the writer lock. */
    if ((rc = talas_storage_read_begin(st, &txn)) != 0)
        goto fail;
    state = claim_state(st, txn, &key, index, src, timeout_ms, &had, &rc);
    mdb_txn_abort(txn);
    if (state != TALAS_CLAIM_OWNED)
        goto done;

    for (int round = 0; round < 2; round++) {
        if ((rc = talas_storage_write_begin(st, &txn)) != 0)
            goto fail;
        state = claim_state(st, txn, &key, index, src, timeout_ms, &had, &rc);
        if (state != TALAS_CLAIM_OWNED) {
            mdb_txn_abort(txn);
            goto done;
        }
        talas_record_writer_mem(&w, rec, sizeof(rec));
        talas_record_put_u8(&w, CLAIM_VERSION);
        talas_record_put_zero(&w, 3);
        talas_record_put_u32(&w, (uint32_t)getpid());
        talas_record_put_u64(&w, my_token());
        talas_record_put_u64(&w, talas_wall_ms());
        val.mv_data = rec;
        val.mv_size = w.len;
        if ((rc = mdb_put(txn, talas_storage_dbi(st, TALAS_DBI_CACHE_CLAIMS), &key, &val, 0)) == 0)
            rc = mdb_txn_commit(txn);
        else
            mdb_txn_abort(txn);
        if (rc == 0) {
            if (had)
                log_info("cache: took over the stale claim on chunk %" PRIu32 " of %s/%s", index, track,
                         variant);
            return TALAS_CLAIM_OWNED;
        }
        /* a full map must not reach the listener: make room once */
        if (rc != MDB_MAP_FULL || talas__cache_evict_for_map_full(st, NULL, 0, 0) != 0)
            break;
    }
fail:
    log_error("%s: chunk %" PRIu32 " of %s/%s: %s", __func__, index, track, variant,
              rc == -1 ? "damaged record" : mdb_strerror(rc));
    return TALAS_CLAIM_ERROR;
done:
    if (state == TALAS_CLAIM_ERROR)
        goto fail;
    return state;
}

int talas_cache_release(struct talas_storage *st, const char *track, const char *variant, uint32_t index)
{
    MDB_dbi claims = talas_storage_dbi(st, TALAS_DBI_CACHE_CLAIMS);
    unsigned char ekey[ENTRY_KEY_MAX], ck[CHUNK_KEY_MAX];
    size_t eklen = talas__cache_entry_key(track, variant, ekey);
    struct claim c;
    MDB_val key, val;
    MDB_txn *txn;
    int rc;

    if (eklen == 0)
        return MDB_NOTFOUND;
    key.mv_data = ck;
    key.mv_size = talas__cache_chunk_key(ekey, eklen, index, ck);
    if ((rc = talas_storage_write_begin(st, &txn)) != 0)
        return rc;
    rc = mdb_get(txn, claims, &key, &val);
    if (rc == 0) {
        if (talas__cache_claim_decode(&val, &c) == 0 && c.pid == getpid() && c.token == my_token())
            rc = mdb_del(txn, claims, &key, NULL);
        else
            rc = MDB_NOTFOUND;
    }
    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    return mdb_txn_commit(txn);
}

/* Deletes the claims SELECT picks, in one write transaction. */
static int claims_sweep(struct talas_storage *st, int (*select)(const MDB_val *val, void *arg), void *arg,
                        size_t *count_r)
{
    MDB_cursor *cur;
    MDB_val key, val;
    MDB_txn *txn;
    size_t count = 0;
    int rc;

    if (count_r != NULL)
        *count_r = 0;
    if ((rc = talas_storage_write_begin(st, &txn)) != 0)
        return rc;
    if ((rc = mdb_cursor_open(txn, talas_storage_dbi(st, TALAS_DBI_CACHE_CLAIMS), &cur)) != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
    while (rc == 0) {
        if (select(&val, arg)) {
            if ((rc = mdb_cursor_del(cur, 0)) != 0)
                break;
            count++;
        }
        rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        return rc;
    }
    if ((rc = mdb_txn_commit(txn)) != 0)
        return rc;
    if (count_r != NULL)
        *count_r = count;
    return 0;
}

static int select_pid(const MDB_val *val, void *arg)
{
    struct claim c;

    return talas__cache_claim_decode(val, &c) == 0 && c.pid == *(pid_t *)arg;
}

int talas_cache_release_pid(struct talas_storage *st, pid_t pid, size_t *count_r)
{
    return claims_sweep(st, select_pid, &pid, count_r);
}

static int select_stale(const MDB_val *val, void *arg)
{
    struct claim c;

    return talas__cache_claim_decode(val, &c) == -1 || !claim_live(&c, *(uint64_t *)arg, talas_wall_ms());
}

int talas_cache_claims_reap(struct talas_storage *st, const struct talas_cache_limits *limits,
                            size_t *count_r)
{
    uint64_t timeout_ms = limit_claim_ms(limits);

    return claims_sweep(st, select_stale, &timeout_ms, count_r);
}
