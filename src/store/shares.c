/*
 * shares.c - private links in LMDB (shares.h): the share records, their
 * listeners, their analytics.
 *
 * Entry points: talas_share_id_make, talas_share_encode/decode,
 * talas_share_put/get/delete/admit/count/list, talas_share_permissions_text.
 * Every change is one short write transaction. Logs nothing: the caller
 * logs storage errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "core/record.h"
#include "core/util.h"
#include "store/shares.h"

#define LAYOUT 1

void talas_share_id_make(char id_r[TALAS_SHARE_ID_LEN + 1])
{
    static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char r[TALAS_SHARE_ID_LEN];
    size_t got = 0;

    while (got < sizeof(r)) {
        ssize_t n = getrandom(r + got, sizeof(r) - got, 0);
        if (n <= 0)
            abort(); /* only a broken kernel; a guessable link would be worse */
        got += (size_t)n;
    }
    for (int i = 0; i < TALAS_SHARE_ID_LEN; i++)
        id_r[i] = b64url[r[i] & 63];
    id_r[TALAS_SHARE_ID_LEN] = '\0';
}

void talas_share_encode(const struct talas_share *s, struct talas_buf *out)
{
    struct talas_record_writer w;

    talas_record_writer_buf(&w, out);
    talas_record_put_u8(&w, LAYOUT);
    talas_record_put_str(&w, s->track);
    talas_record_put_str(&w, s->song);
    talas_record_put_str(&w, s->owner);
    talas_record_put_u64(&w, s->created_ms);
    talas_record_put_u64(&w, s->expires_ms);
    talas_record_put_u32(&w, s->permissions);
    talas_record_put_u32(&w, s->max_listeners);
    talas_record_put_str(&w, s->password_hash);
    talas_record_put_u64(&w, s->plays);
    talas_record_put_u64(&w, s->listeners);
    talas_record_put_u64(&w, s->listening_ms);
}

/* Copies the string field F (of at most CAP - 1 bytes) or fails. */
static int field(char *dst, size_t cap, const char *src, size_t len)
{
    if (src == NULL || len >= cap)
        return -1;
    memcpy(dst, src, len + 1);
    return 0;
}

int talas_share_decode(const char *id, size_t id_len, const void *data, size_t len, struct talas_share *s)
{
    struct talas_record_reader r;
    const char *track, *song, *owner, *hash;
    size_t lt = 0, ls = 0, lo = 0, lh = 0;

    memset(s, 0, sizeof(*s));
    if (id_len != TALAS_SHARE_ID_LEN)
        return TALAS_SHARE_DAMAGED;
    memcpy(s->id, id, id_len);
    talas_record_reader_init(&r, data, len);
    if (talas_record_get_u8(&r) != LAYOUT)
        return TALAS_SHARE_DAMAGED;
    track = talas_record_get_str(&r, &lt);
    song = talas_record_get_str(&r, &ls);
    owner = talas_record_get_str(&r, &lo);
    s->created_ms = talas_record_get_u64(&r);
    s->expires_ms = talas_record_get_u64(&r);
    s->permissions = talas_record_get_u32(&r);
    s->max_listeners = talas_record_get_u32(&r);
    hash = talas_record_get_str(&r, &lh);
    s->plays = talas_record_get_u64(&r);
    s->listeners = talas_record_get_u64(&r);
    s->listening_ms = talas_record_get_u64(&r);
    if (talas_record_reader_end(&r) != 0 || field(s->track, sizeof(s->track), track, lt) != 0 ||
        field(s->song, sizeof(s->song), song, ls) != 0 || field(s->owner, sizeof(s->owner), owner, lo) != 0 ||
        field(s->password_hash, sizeof(s->password_hash), hash, lh) != 0 ||
        (s->track[0] == '\0') == (s->song[0] == '\0'))
        return TALAS_SHARE_DAMAGED;
    return 0;
}

static int get(struct talas_storage *st, MDB_txn *txn, const char *id, struct talas_share *s)
{
    MDB_val k = {strlen(id), (void *)id}, v;
    int rc;

    if (k.mv_size != TALAS_SHARE_ID_LEN)
        return MDB_NOTFOUND;
    if ((rc = mdb_get(txn, talas_storage_dbi(st, TALAS_DBI_SHARES), &k, &v)) != 0)
        return rc;
    return talas_share_decode(id, k.mv_size, v.mv_data, v.mv_size, s);
}

static int put(struct talas_storage *st, MDB_txn *txn, const struct talas_share *s)
{
    struct talas_buf buf = {0};
    MDB_val k = {TALAS_SHARE_ID_LEN, (void *)s->id}, v;
    int rc;

    talas_share_encode(s, &buf);
    v.mv_data = buf.data;
    v.mv_size = buf.len;
    rc = mdb_put(txn, talas_storage_dbi(st, TALAS_DBI_SHARES), &k, &v, 0);
    talas_buf_free(&buf);
    return rc;
}

int talas_share_put(struct talas_storage *st, const struct talas_share *s)
{
    MDB_txn *txn;
    int rc;

    if ((rc = talas_storage_write_begin(st, &txn)) != 0)
        return rc;
    if ((rc = put(st, txn, s)) != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    return mdb_txn_commit(txn);
}

int talas_share_get(struct talas_storage *st, MDB_txn *txn, const char *id, struct talas_share *s)
{
    MDB_txn *own = NULL;
    int rc;

    if (txn == NULL) {
        if ((rc = talas_storage_read_begin(st, &own)) != 0)
            return rc;
        txn = own;
    }
    rc = get(st, txn, id, s);
    if (own != NULL)
        mdb_txn_abort(own);
    return rc;
}

int talas_share_delete(struct talas_storage *st, const char *id, struct talas_share *s_r)
{
    struct talas_share s;
    MDB_txn *txn;
    MDB_cursor *cur = NULL;
    MDB_val k = {TALAS_SHARE_ID_LEN, (void *)id}, lk, lv;
    int rc;

    if ((rc = talas_storage_write_begin(st, &txn)) != 0)
        return rc;
    if ((rc = get(st, txn, id, &s)) != 0 && rc != TALAS_SHARE_DAMAGED)
        goto fail;
    if ((rc = mdb_del(txn, talas_storage_dbi(st, TALAS_DBI_SHARES), &k, NULL)) != 0)
        goto fail;
    if ((rc = mdb_cursor_open(txn, talas_storage_dbi(st, TALAS_DBI_SHARE_LISTENERS), &cur)) != 0)
        goto fail;
    lk = k;
    for (rc = mdb_cursor_get(cur, &lk, &lv, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &lk, &lv, MDB_NEXT)) {
        if (lk.mv_size < TALAS_SHARE_ID_LEN || memcmp(lk.mv_data, id, TALAS_SHARE_ID_LEN) != 0)
            break;
        if ((rc = mdb_cursor_del(cur, 0)) != 0)
            goto fail;
    }
    if (rc != 0 && rc != MDB_NOTFOUND)
        goto fail;
    mdb_cursor_close(cur);
    if ((rc = mdb_txn_commit(txn)) != 0)
        return rc;
    if (s_r != NULL)
        *s_r = s;
    return 0;
fail:
    if (cur != NULL)
        mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return rc;
}

int talas_share_admit(struct talas_storage *st, const char *id, const char *listener)
{
    char key[2 * TALAS_SHARE_ID_LEN];
    struct talas_share s;
    MDB_val k = {sizeof(key), key}, v, empty = {0, ""};
    MDB_txn *txn;
    int rc;

    if (strlen(id) != TALAS_SHARE_ID_LEN || strlen(listener) != TALAS_SHARE_ID_LEN)
        return MDB_NOTFOUND;
    memcpy(key, id, TALAS_SHARE_ID_LEN);
    memcpy(key + TALAS_SHARE_ID_LEN, listener, TALAS_SHARE_ID_LEN);
    if ((rc = talas_storage_write_begin(st, &txn)) != 0)
        return rc;
    if ((rc = get(st, txn, id, &s)) != 0)
        goto fail;
    rc = mdb_get(txn, talas_storage_dbi(st, TALAS_DBI_SHARE_LISTENERS), &k, &v);
    if (rc == 0) {
        mdb_txn_abort(txn);
        return 0;
    }
    if (rc != MDB_NOTFOUND)
        goto fail;
    if (s.max_listeners != 0 && s.listeners >= s.max_listeners) {
        rc = TALAS_SHARE_FULL;
        goto fail;
    }
    s.listeners++;
    if ((rc = mdb_put(txn, talas_storage_dbi(st, TALAS_DBI_SHARE_LISTENERS), &k, &empty, 0)) != 0 ||
        (rc = put(st, txn, &s)) != 0)
        goto fail;
    return mdb_txn_commit(txn);
fail:
    mdb_txn_abort(txn);
    return rc;
}

int talas_share_count(struct talas_storage *st, const char *id, uint64_t plays, uint64_t listening_ms)
{
    struct talas_share s;
    MDB_txn *txn;
    int rc;

    if ((rc = talas_storage_write_begin(st, &txn)) != 0)
        return rc;
    if ((rc = get(st, txn, id, &s)) != 0)
        goto fail;
    s.plays += plays;
    s.listening_ms += listening_ms;
    if ((rc = put(st, txn, &s)) != 0)
        goto fail;
    return mdb_txn_commit(txn);
fail:
    mdb_txn_abort(txn);
    return rc;
}

int talas_share_list(struct talas_storage *st, MDB_txn *txn, const char *owner, talas_share_fn *fn, void *arg)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;

    if ((rc = mdb_cursor_open(txn, talas_storage_dbi(st, TALAS_DBI_SHARES), &cur)) != 0)
        return rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        struct talas_share s;
        if (talas_share_decode(k.mv_data, k.mv_size, v.mv_data, v.mv_size, &s) != 0)
            continue; /* a damaged record is left out */
        if (owner != NULL && strcmp(owner, s.owner) != 0)
            continue;
        if (fn(&s, arg) != 0)
            break;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND || rc == 0 ? 0 : rc;
}

void talas_share_permissions_text(uint32_t permissions, char buf[32])
{
    snprintf(buf, 32, "%s%s%s%s%s", permissions & TALAS_SHARE_STREAM ? "stream" : "",
             (permissions & TALAS_SHARE_STREAM) &&
                     (permissions & (TALAS_SHARE_DOWNLOAD | TALAS_SHARE_COMMENT))
                 ? " "
                 : "",
             permissions & TALAS_SHARE_DOWNLOAD ? "download" : "",
             (permissions & TALAS_SHARE_DOWNLOAD) && (permissions & TALAS_SHARE_COMMENT) ? " " : "",
             permissions & TALAS_SHARE_COMMENT ? "comment" : "");
}
