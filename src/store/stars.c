/*
 * stars.c - each user's stars and ratings in LMDB (stars.h).
 *
 * Entry points: talas_stars_set, talas_stars_rate, talas_stars_list,
 * talas_star_encode / _decode, and for talasctl users talas_stars_usage /
 * _purge / _foreach_user. Logs nothing: errors go back to the caller.
 *
 * Key (TALAS_DBI_STARS): user id, NUL, item id; so one user's marks are a
 * range of keys, in item order. Record, through the record codec
 * (core/record.h), little-endian:
 *   u8 version (1), u8 rating (0..5), u16 reserved (0), u64 starred_ms
 * A record whose rating is 0 and starred_ms 0 is never stored.
 */
#include <errno.h>
#include <string.h>

#include "core/record.h"
#include "store/stars.h"

#define RECORD_VERSION 1

static int id_ok(const char *id)
{
    size_t len = strlen(id);

    return len > 0 && len <= TALAS_STARS_ID_MAX;
}

/* USER NUL ITEM into KEY (TALAS_STARS_ID_MAX * 2 + 1 bytes at least). */
static MDB_val key_of(char *key, const char *user, const char *item)
{
    size_t ul = strlen(user), il = strlen(item);
    MDB_val k = {ul + 1 + il, key};

    memcpy(key, user, ul);
    key[ul] = '\0';
    memcpy(key + ul + 1, item, il);
    return k;
}

void talas_star_encode(const struct talas_star *s, struct talas_buf *out)
{
    struct talas_record_writer w;

    talas_record_writer_buf(&w, out);
    talas_record_put_u8(&w, RECORD_VERSION);
    talas_record_put_u8(&w, (uint8_t)s->rating);
    talas_record_put_zero(&w, 2);
    talas_record_put_u64(&w, s->starred_ms);
}

int talas_star_decode(const void *data, size_t len, struct talas_star *s)
{
    struct talas_record_reader r;

    memset(s, 0, sizeof(*s));
    talas_record_reader_init(&r, data, len);
    if (talas_record_get_u8(&r) != RECORD_VERSION)
        return -1;
    s->rating = talas_record_get_u8(&r);
    talas_record_get_zero(&r, 2);
    s->starred_ms = talas_record_get_u64(&r);
    if (talas_record_reader_end(&r) != 0 || s->rating > TALAS_STARS_RATING_MAX ||
        (s->rating == 0 && s->starred_ms == 0)) {
        memset(s, 0, sizeof(*s));
        return -1;
    }
    return 0;
}

/* Changes USER's mark of ITEM in TXN: the star (STAR -1 leaves it) and the
 * rating (RATING -1 leaves it). */
static int change(struct talas_storage *st, MDB_txn *txn, const char *user, const char *item, int star,
                  int rating, uint64_t now_ms, uint64_t budget, struct talas_quota_refusal *r)
{
    MDB_dbi dbi = talas_storage_dbi(st, TALAS_DBI_STARS);
    char key[TALAS_STARS_ID_MAX * 2 + 2];
    MDB_val k = key_of(key, user, item), v;
    struct talas_star s = {0};
    struct talas_buf rec = {0};
    int rc, had;

    rc = mdb_get(txn, dbi, &k, &v);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    had = rc == 0;
    if (had && talas_star_decode(v.mv_data, v.mv_size, &s) != 0)
        memset(&s, 0, sizeof(s)); /* a damaged record is replaced */
    if (star == 1 && s.starred_ms == 0)
        s.starred_ms = now_ms > 0 ? now_ms : 1;
    else if (star == 0)
        s.starred_ms = 0;
    if (rating >= 0)
        s.rating = (unsigned)rating;
    if (s.starred_ms == 0 && s.rating == 0)
        return had ? mdb_del(txn, dbi, &k, NULL) : 0;
    if (!had && (rc = talas_quota_user_data_check(st, txn, budget, r)) != 0)
        return rc;
    talas_star_encode(&s, &rec);
    v.mv_size = rec.len;
    v.mv_data = rec.data;
    rc = mdb_put(txn, dbi, &k, &v, 0);
    talas_buf_free(&rec);
    return rc;
}

static int commit_or_abort(MDB_txn *txn, int rc)
{
    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    return mdb_txn_commit(txn);
}

int talas_stars_set(struct talas_storage *st, const char *user, const char *const *items, size_t n, int star,
                    uint64_t now_ms, uint64_t budget, struct talas_quota_refusal *r)
{
    MDB_txn *txn;
    int rc = 0;

    if (!id_ok(user))
        return EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!id_ok(items[i]))
            return EINVAL;
    if ((rc = talas_storage_write_begin(st, &txn)) != 0)
        return rc;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = change(st, txn, user, items[i], star ? 1 : 0, -1, now_ms, budget, r);
    return commit_or_abort(txn, rc);
}

int talas_stars_rate(struct talas_storage *st, const char *user, const char *item, unsigned rating,
                     uint64_t budget, struct talas_quota_refusal *r)
{
    MDB_txn *txn;
    int rc;

    if (!id_ok(user) || !id_ok(item) || rating > TALAS_STARS_RATING_MAX)
        return EINVAL;
    if ((rc = talas_storage_write_begin(st, &txn)) != 0)
        return rc;
    rc = change(st, txn, user, item, -1, (int)rating, 0, budget, r);
    return commit_or_abort(txn, rc);
}

/* Walks USER's keys in TXN: FN(key item, record) for each. */
static int walk(struct talas_storage *st, MDB_txn *txn, const char *user,
                int (*fn)(const MDB_val *k, const MDB_val *v, const char *item, void *arg), void *arg)
{
    size_t ul = strlen(user);
    char item[TALAS_STARS_ID_MAX + 1];
    MDB_cursor *cur;
    MDB_val k = {ul + 1, (void *)user}, v;
    char prefix[TALAS_STARS_ID_MAX + 1];
    int rc;

    if (!id_ok(user))
        return 0;
    memcpy(prefix, user, ul + 1);
    k.mv_data = prefix;
    if ((rc = mdb_cursor_open(txn, talas_storage_dbi(st, TALAS_DBI_STARS), &cur)) != 0)
        return rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        size_t il;
        if (k.mv_size <= ul + 1 || memcmp(k.mv_data, prefix, ul + 1) != 0)
            break;
        il = k.mv_size - ul - 1;
        if (il > TALAS_STARS_ID_MAX || memchr((const char *)k.mv_data + ul + 1, '\0', il) != NULL)
            continue;
        memcpy(item, (const char *)k.mv_data + ul + 1, il);
        item[il] = '\0';
        if ((rc = fn(&k, &v, item, arg)) != 0)
            break;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

struct listing {
    talas_star_fn *fn;
    void *arg;
};

static int list_one(const MDB_val *k, const MDB_val *v, const char *item, void *arg)
{
    struct listing *l = arg;
    struct talas_star s;

    (void)k;
    if (talas_star_decode(v->mv_data, v->mv_size, &s) != 0)
        return 0;
    s.item = item;
    return l->fn(&s, l->arg);
}

int talas_stars_list(struct talas_storage *st, MDB_txn *txn, const char *user, talas_star_fn *fn, void *arg)
{
    struct listing l = {fn, arg};

    return walk(st, txn, user, list_one, &l);
}

struct usage {
    uint64_t count, bytes;
};

static int count_one(const MDB_val *k, const MDB_val *v, const char *item, void *arg)
{
    struct usage *u = arg;

    (void)item;
    u->count++;
    u->bytes += k->mv_size + v->mv_size;
    return 0;
}

int talas_stars_usage(struct talas_storage *st, MDB_txn *txn, const char *user, uint64_t *count_r,
                      uint64_t *bytes_r)
{
    struct usage u = {0, 0};
    int rc = walk(st, txn, user, count_one, &u);

    *count_r = u.count;
    *bytes_r = u.bytes;
    return rc;
}

int talas_stars_purge(struct talas_storage *st, const char *user, uint64_t *removed_r)
{
    size_t ul = strlen(user);
    MDB_cursor *cur;
    MDB_txn *txn;
    MDB_val k, v;
    char prefix[TALAS_STARS_ID_MAX + 1];
    int rc;

    *removed_r = 0;
    if (!id_ok(user))
        return 0;
    memcpy(prefix, user, ul + 1);
    /* one transaction: a user's marks are small records */
    if ((rc = talas_storage_write_begin(st, &txn)) != 0)
        return rc;
    if ((rc = mdb_cursor_open(txn, talas_storage_dbi(st, TALAS_DBI_STARS), &cur)) != 0)
        return commit_or_abort(txn, rc);
    k.mv_size = ul + 1;
    k.mv_data = prefix;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < ul + 1 || memcmp(k.mv_data, prefix, ul + 1) != 0)
            break;
        if ((rc = mdb_cursor_del(cur, 0)) != 0)
            break;
        (*removed_r)++;
    }
    mdb_cursor_close(cur);
    return commit_or_abort(txn, rc == MDB_NOTFOUND ? 0 : rc);
}

int talas_stars_foreach_user(struct talas_storage *st, MDB_txn *txn, talas_stars_user_fn *fn, void *arg)
{
    char user[TALAS_STARS_ID_MAX + 1];
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;

    if ((rc = mdb_cursor_open(txn, talas_storage_dbi(st, TALAS_DBI_STARS), &cur)) != 0)
        return rc;
    rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (rc == 0) {
        const char *nul = memchr(k.mv_data, '\0', k.mv_size);
        size_t ul = nul != NULL ? (size_t)(nul - (const char *)k.mv_data) : 0;
        MDB_val next;
        char after[TALAS_STARS_ID_MAX + 2];
        if (nul == NULL || ul == 0 || ul > TALAS_STARS_ID_MAX) {
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
            continue;
        }
        memcpy(user, k.mv_data, ul);
        user[ul] = '\0';
        if ((rc = fn(user, arg)) != 0)
            break;
        /* the next user: the first key past USER NUL 0xff... is past
         * USER "\x01" */
        memcpy(after, user, ul);
        after[ul] = '\x01';
        next.mv_size = ul + 1;
        next.mv_data = after;
        k = next;
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}
