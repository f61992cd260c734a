/*
 * users.c - each user's settings in LMDB (users.h).
 *
 * Entry points: talas_user_settings_default / _encode / _decode / _get /
 * _put / _purge / _usage, talas_user_shares_listening. Logs nothing:
 * errors go back to the caller.
 *
 * Record (TALAS_DBI_USER_SETTINGS, key: the user id), through the record
 * codec (core/record.h), little-endian:
 *   u8 version (1), u8 flags (bit 0: share_listening; the others 0),
 *   u16 reserved (0), u64 updated_ms
 * A later setting is a new version that appends its fields; its decoder
 * keeps reading version 1 records (the new fields at their defaults), so
 * no migration pass is needed. A record of an unknown version or shape
 * reads as the defaults, and for share_listening that is "private": a
 * damaged record never makes a user's listening public.
 */
#include <string.h>

#include "core/record.h"
#include "store/users.h"

#define RECORD_VERSION 1
#define FLAG_SHARE_LISTENING 0x01
#define FLAGS_KNOWN FLAG_SHARE_LISTENING

static MDB_val key_of(const char *user)
{
    MDB_val k = {strlen(user), (void *)user};
    return k;
}

void talas_user_settings_default(struct talas_user_settings *s)
{
    memset(s, 0, sizeof(*s));
}

static int is_default(const struct talas_user_settings *s)
{
    return !s->share_listening;
}

void talas_user_settings_encode(const struct talas_user_settings *s, struct talas_buf *out)
{
    struct talas_record_writer w;

    talas_record_writer_buf(&w, out);
    talas_record_put_u8(&w, RECORD_VERSION);
    talas_record_put_u8(&w, s->share_listening ? FLAG_SHARE_LISTENING : 0);
    talas_record_put_zero(&w, 2);
    talas_record_put_u64(&w, s->updated_ms);
}

int talas_user_settings_decode(const void *data, size_t len, struct talas_user_settings *s)
{
    struct talas_record_reader r;
    uint8_t flags;

    talas_user_settings_default(s);
    talas_record_reader_init(&r, data, len);
    if (talas_record_get_u8(&r) != RECORD_VERSION)
        return -1;
    flags = talas_record_get_u8(&r);
    talas_record_get_zero(&r, 2);
    s->updated_ms = talas_record_get_u64(&r);
    if (talas_record_reader_end(&r) != 0 || (flags & ~FLAGS_KNOWN) != 0) {
        talas_user_settings_default(s);
        return -1;
    }
    s->share_listening = (flags & FLAG_SHARE_LISTENING) != 0;
    return 0;
}

int talas_user_settings_get(struct talas_storage *st, MDB_txn *txn, const char *user,
                            struct talas_user_settings *s)
{
    MDB_val k = key_of(user), v;
    int rc;

    talas_user_settings_default(s);
    rc = mdb_get(txn, talas_storage_dbi(st, TALAS_DBI_USER_SETTINGS), &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    return talas_user_settings_decode(v.mv_data, v.mv_size, s);
}

int talas_user_shares_listening(struct talas_storage *st, const char *user)
{
    struct talas_user_settings s;
    MDB_txn *txn;
    int rc;

    if (user == NULL || user[0] == '\0')
        return 0;
    if (talas_storage_read_begin(st, &txn) != 0)
        return 0;
    rc = talas_user_settings_get(st, txn, user, &s);
    mdb_txn_abort(txn);
    return rc == 0 && s.share_listening;
}

int talas_user_settings_put(struct talas_storage *st, const char *user, const struct talas_user_settings *s,
                            uint64_t budget, struct talas_quota_refusal *r)
{
    MDB_dbi dbi = talas_storage_dbi(st, TALAS_DBI_USER_SETTINGS);
    MDB_val k = key_of(user), v;
    struct talas_buf rec = {0};
    MDB_txn *txn;
    int rc;

    if ((rc = talas_storage_write_begin(st, &txn)) != 0)
        return rc;
    if (is_default(s)) {
        rc = mdb_del(txn, dbi, &k, NULL);
        if (rc == MDB_NOTFOUND)
            rc = 0;
        goto out;
    }
    rc = mdb_get(txn, dbi, &k, &v);
    if (rc == MDB_NOTFOUND)
        rc = talas_quota_user_data_check(st, txn, budget, r);
    if (rc != 0)
        goto out;
    talas_user_settings_encode(s, &rec);
    v.mv_size = rec.len;
    v.mv_data = rec.data;
    rc = mdb_put(txn, dbi, &k, &v, 0);
out:
    talas_buf_free(&rec);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    return mdb_txn_commit(txn);
}

int talas_user_settings_purge(struct talas_storage *st, const char *user)
{
    struct talas_user_settings none;

    talas_user_settings_default(&none);
    return talas_user_settings_put(st, user, &none, 0, NULL);
}

int talas_user_settings_usage(struct talas_storage *st, MDB_txn *txn, const char *user, uint64_t *count_r,
                              uint64_t *bytes_r)
{
    MDB_val k = key_of(user), v;
    int rc = mdb_get(txn, talas_storage_dbi(st, TALAS_DBI_USER_SETTINGS), &k, &v);

    *count_r = *bytes_r = 0;
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    *count_r = 1;
    *bytes_r = k.mv_size + v.mv_size;
    return 0;
}

int talas_user_settings_foreach_user(struct talas_storage *st, MDB_txn *txn, talas_user_settings_user_fn *fn,
                                     void *arg)
{
    char user[TALAS_USERS_ID_MAX + 1];
    MDB_cursor *cur;
    MDB_val key, val;
    int rc;

    if ((rc = mdb_cursor_open(txn, talas_storage_dbi(st, TALAS_DBI_USER_SETTINGS), &cur)) != 0)
        return rc;
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        if (key.mv_size == 0 || key.mv_size > TALAS_USERS_ID_MAX || memchr(key.mv_data, '\0', key.mv_size) != NULL)
            continue;
        memcpy(user, key.mv_data, key.mv_size);
        user[key.mv_size] = '\0';
        if ((rc = fn(user, arg)) != 0)
            break;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}
