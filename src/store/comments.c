/*
 * comments.c - timed comments on tracks in LMDB (comments.h): the
 * comment records, their per-track index by time, threads.
 *
 * Entry points: talas_comment_id_make, talas_comment_add/edit/delete,
 * talas_comment_list. Every change is one short write transaction; a
 * listing is a cursor walk of the track's part of the index. Logs
 * nothing: the caller logs storage errors.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "core/record.h"
#include "core/util.h"
#include "store/comments.h"

#define LAYOUT 1
#define INDEX_KEY_LEN(track_len) ((track_len) + 1 + 8 + TALAS_COMMENT_ID_LEN)

const char talas_comment_no_parent[] = "parent_id: no such comment";
const char talas_comment_parent_elsewhere[] = "parent_id: that comment is on another track";
const char talas_comment_forbidden[] = "forbidden: only its author or the backend may change this comment";
const char talas_comment_no_such[] = "no such comment";

void talas_comment_id_make(char id_r[TALAS_COMMENT_ID_LEN + 1])
{
    static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char r[TALAS_COMMENT_ID_LEN];
    size_t got = 0;

    while (got < sizeof(r)) {
        ssize_t n = getrandom(r + got, sizeof(r) - got, 0);
        if (n <= 0)
            abort(); /* only a broken kernel; a guessable id would be worse */
        got += (size_t)n;
    }
    /* 6 random bits a character: 96 bits */
    for (int i = 0; i < TALAS_COMMENT_ID_LEN; i++)
        id_r[i] = b64url[r[i] & 63];
    id_r[TALAS_COMMENT_ID_LEN] = '\0';
}

static void encode(const struct talas_comment *c, struct talas_buf *buf)
{
    struct talas_record_writer w;

    talas_record_writer_buf(&w, buf);
    talas_record_put_u8(&w, LAYOUT);
    talas_record_put_str(&w, c->track);
    talas_record_put_str(&w, c->user);
    talas_record_put_str(&w, c->parent);
    talas_record_put_i64(&w, c->at_ms);
    talas_record_put_u64(&w, c->created_ms);
    talas_record_put_u64(&w, c->edited_ms);
    talas_record_put_blob(&w, c->body, c->body_len);
}

static int decode(const char *id, size_t id_len, const MDB_val *v, struct talas_comment *c)
{
    struct talas_record_reader r;

    memset(c, 0, sizeof(*c));
    if (id_len != TALAS_COMMENT_ID_LEN)
        return TALAS_COMMENT_DAMAGED;
    memcpy(c->id, id, id_len);
    talas_record_reader_init(&r, v->mv_data, v->mv_size);
    if (talas_record_get_u8(&r) != LAYOUT)
        return TALAS_COMMENT_DAMAGED;
    c->track = talas_record_get_str(&r, NULL);
    c->user = talas_record_get_str(&r, NULL);
    c->parent = talas_record_get_str(&r, NULL);
    c->at_ms = talas_record_get_i64(&r);
    c->created_ms = talas_record_get_u64(&r);
    c->edited_ms = talas_record_get_u64(&r);
    c->body = talas_record_get_blob(&r, &c->body_len);
    if (talas_record_reader_end(&r) != 0 || c->track == NULL || c->user == NULL || c->parent == NULL ||
        c->body == NULL)
        return TALAS_COMMENT_DAMAGED;
    return 0;
}

static void index_key(struct talas_buf *k, const char *track, int64_t at_ms, const char *id)
{
    struct talas_record_writer w;

    talas_record_writer_buf(&w, k);
    talas_record_put_bytes(&w, track, strlen(track) + 1);
    talas_record_put_u64be(&w, (uint64_t)at_ms);
    talas_record_put_bytes(&w, id, TALAS_COMMENT_ID_LEN);
}

static int get(struct talas_storage *st, MDB_txn *txn, const char *id, struct talas_comment *c)
{
    MDB_val k = {strlen(id), (void *)id}, v;
    int rc;

    if (k.mv_size != TALAS_COMMENT_ID_LEN)
        return MDB_NOTFOUND;
    if ((rc = mdb_get(txn, talas_storage_dbi(st, TALAS_DBI_COMMENTS), &k, &v)) != 0)
        return rc;
    return decode(id, k.mv_size, &v, c);
}

static int put(struct talas_storage *st, MDB_txn *txn, const struct talas_comment *c, int indexed)
{
    struct talas_buf buf = {0}, key = {0};
    MDB_val k = {TALAS_COMMENT_ID_LEN, (void *)c->id}, v, ik, empty = {0, ""};
    int rc;

    encode(c, &buf);
    v.mv_data = buf.data;
    v.mv_size = buf.len;
    rc = mdb_put(txn, talas_storage_dbi(st, TALAS_DBI_COMMENTS), &k, &v, 0);
    if (rc == 0 && !indexed) {
        index_key(&key, c->track, c->at_ms, c->id);
        ik.mv_data = key.data;
        ik.mv_size = key.len;
        rc = mdb_put(txn, talas_storage_dbi(st, TALAS_DBI_TRACK_COMMENTS), &ik, &empty, 0);
    }
    talas_buf_free(&buf);
    talas_buf_free(&key);
    return rc;
}

/* How many comments TRACK has, counting no further than MAX, and the
 * latest creation time among those counted (0: none). */
static int count_upto(struct talas_storage *st, MDB_txn *txn, const char *track, size_t max, size_t *n_r,
                      uint64_t *latest_r)
{
    size_t len = strlen(track) + 1, n = 0;
    MDB_val k = {len, (void *)track}, v;
    MDB_cursor *cur;
    uint64_t latest = 0;
    int rc;

    if ((rc = mdb_cursor_open(txn, talas_storage_dbi(st, TALAS_DBI_TRACK_COMMENTS), &cur)) != 0)
        return rc;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && n < max && k.mv_size > len && memcmp(k.mv_data, track, len) == 0) {
        struct talas_comment c;
        char id[TALAS_COMMENT_ID_LEN + 1];
        if (k.mv_size == INDEX_KEY_LEN(len - 1)) {
            memcpy(id, (const char *)k.mv_data + len + 8, TALAS_COMMENT_ID_LEN);
            id[TALAS_COMMENT_ID_LEN] = '\0';
            if (get(st, txn, id, &c) == 0 && c.created_ms > latest)
                latest = c.created_ms;
        }
        n++;
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    *n_r = n;
    *latest_r = latest;
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int talas_comment_add(struct talas_storage *st, const struct talas_comment *c, size_t max, char *parent_r,
                      uint64_t *created_r)
{
    size_t n;
    struct talas_comment p, stored = *c;
    uint64_t latest;
    char root[TALAS_COMMENT_ID_LEN + 1] = "";
    MDB_txn *txn;
    int rc;

    if ((rc = talas_storage_write_begin(st, &txn)) != 0)
        return rc;
    if ((rc = count_upto(st, txn, c->track, max, &n, &latest)) != 0)
        goto fail;
    if (n >= max) {
        rc = TALAS_COMMENT_TRACK_FULL;
        goto fail;
    }
    if (c->parent[0] != '\0') {
        rc = get(st, txn, c->parent, &p);
        if (rc == MDB_NOTFOUND || rc == TALAS_COMMENT_DAMAGED) {
            rc = TALAS_COMMENT_NO_PARENT;
            goto fail;
        }
        if (rc != 0)
            goto fail;
        if (strcmp(p.track, c->track) != 0) {
            rc = TALAS_COMMENT_PARENT_ELSEWHERE;
            goto fail;
        }
        memcpy(root, p.parent[0] != '\0' ? p.parent : p.id, TALAS_COMMENT_ID_LEN);
        root[TALAS_COMMENT_ID_LEN] = '\0';
    }
    stored.parent = root;
    if (stored.created_ms <= latest)
        stored.created_ms = latest + 1;
    if ((rc = put(st, txn, &stored, 0)) != 0)
        goto fail;
    if ((rc = mdb_txn_commit(txn)) != 0)
        return rc;
    if (parent_r != NULL)
        memcpy(parent_r, root, sizeof(root));
    if (created_r != NULL)
        *created_r = stored.created_ms;
    return 0;
fail:
    mdb_txn_abort(txn);
    return rc;
}

/* Copies C's strings into one malloc'd block (*MEM_R) so that *OUT
 * outlives the transaction. */
static void copy_out(const struct talas_comment *c, struct talas_comment *out, void **mem_r)
{
    size_t lt = strlen(c->track) + 1, lu = strlen(c->user) + 1, lp = strlen(c->parent) + 1;
    char *m = xmalloc(lt + lu + lp + c->body_len + 1);

    *out = *c;
    out->track = memcpy(m, c->track, lt);
    out->user = memcpy(m + lt, c->user, lu);
    out->parent = memcpy(m + lt + lu, c->parent, lp);
    out->body = memcpy(m + lt + lu + lp, c->body, c->body_len);
    m[lt + lu + lp + c->body_len] = '\0';
    *mem_r = m;
}

/* Removes comment C (its record and index entry). */
static int remove_one(struct talas_storage *st, MDB_txn *txn, const struct talas_comment *c)
{
    struct talas_buf key = {0};
    MDB_val k = {TALAS_COMMENT_ID_LEN, (void *)c->id}, ik;
    int rc;

    index_key(&key, c->track, c->at_ms, c->id);
    ik.mv_data = key.data;
    ik.mv_size = key.len;
    rc = mdb_del(txn, talas_storage_dbi(st, TALAS_DBI_TRACK_COMMENTS), &ik, NULL);
    if (rc == 0 || rc == MDB_NOTFOUND)
        rc = mdb_del(txn, talas_storage_dbi(st, TALAS_DBI_COMMENTS), &k, NULL);
    talas_buf_free(&key);
    return rc;
}

struct replies {
    const char *parent;
    char (*ids)[TALAS_COMMENT_ID_LEN + 1];
    size_t n;
};

static void on_reply(const struct talas_comment *c, void *arg)
{
    struct replies *r = arg;

    if (strcmp(c->parent, r->parent) != 0)
        return;
    r->ids = xrealloc(r->ids, (r->n + 1) * sizeof(*r->ids));
    memcpy(r->ids[r->n++], c->id, TALAS_COMMENT_ID_LEN + 1);
}

static int change(struct talas_storage *st, const char *id, const char *user, const char *body,
                  size_t body_len, uint64_t now_ms, int del, struct talas_comment *out, void **mem_r)
{
    struct talas_comment c;
    MDB_txn *txn;
    int rc;

    *mem_r = NULL;
    if ((rc = talas_storage_write_begin(st, &txn)) != 0)
        return rc;
    if ((rc = get(st, txn, id, &c)) != 0)
        goto fail;
    if (user != NULL && strcmp(user, c.user) != 0) {
        rc = TALAS_COMMENT_FORBIDDEN;
        goto fail;
    }
    if (del) {
        struct replies r = {c.id, NULL, 0};
        copy_out(&c, out, mem_r);
        if (c.parent[0] == '\0' &&
            (rc = talas_comment_list(st, txn, out->track, TALAS_COMMENT_LIST_MAX, on_reply, &r)) != 0)
            goto fail;
        for (size_t i = 0; i < r.n && rc == 0; i++) {
            struct talas_comment reply;
            if ((rc = get(st, txn, r.ids[i], &reply)) == 0)
                rc = remove_one(st, txn, &reply);
        }
        free(r.ids);
        if (rc == 0)
            rc = remove_one(st, txn, out);
    } else {
        c.body = body;
        c.body_len = body_len;
        c.edited_ms = now_ms;
        copy_out(&c, out, mem_r);
        rc = put(st, txn, out, 1);
    }
    if (rc != 0)
        goto fail;
    if ((rc = mdb_txn_commit(txn)) != 0)
        goto out_free;
    return 0;
fail:
    mdb_txn_abort(txn);
out_free:
    free(*mem_r);
    *mem_r = NULL;
    return rc;
}

int talas_comment_edit(struct talas_storage *st, const char *id, const char *user, const char *body,
                       size_t body_len, uint64_t now_ms, struct talas_comment *out, void **mem_r)
{
    return change(st, id, user, body, body_len, now_ms, 0, out, mem_r);
}

int talas_comment_delete(struct talas_storage *st, const char *id, const char *user, struct talas_comment *out,
                         void **mem_r)
{
    return change(st, id, user, NULL, 0, 0, 1, out, mem_r);
}

int talas_comment_list(struct talas_storage *st, MDB_txn *txn, const char *track, size_t max,
                       talas_comment_fn *fn, void *arg)
{
    size_t tlen = strlen(track), n = 0;
    MDB_cursor *cur;
    MDB_val k = {tlen + 1, (void *)track}, v;
    int rc;

    if ((rc = mdb_cursor_open(txn, talas_storage_dbi(st, TALAS_DBI_TRACK_COMMENTS), &cur)) != 0)
        return rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0 && n < max;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        struct talas_comment c;
        char id[TALAS_COMMENT_ID_LEN + 1];
        if (k.mv_size != INDEX_KEY_LEN(tlen) || memcmp(k.mv_data, track, tlen + 1) != 0)
            break;
        memcpy(id, (const char *)k.mv_data + tlen + 1 + 8, TALAS_COMMENT_ID_LEN);
        id[TALAS_COMMENT_ID_LEN] = '\0';
        if (get(st, txn, id, &c) != 0)
            continue; /* a damaged record is left out */
        fn(&c, arg);
        n++;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND || rc == 0 ? 0 : rc;
}
