/*
 * shares.h - private links to a track or a song in LMDB: the local store
 * behind workers/state/state_shares.h, and what talasctl shares reads.
 *
 *   TALAS_DBI_SHARES          share id -> u8 layout (1), str track ("" for
 *                             a song), str song ("" for a track), str
 *                             owner ("" when the backend made it), u64
 *                             created_ms, u64 expires_ms, u32 permissions,
 *                             u32 max_listeners (0: no limit), str
 *                             password hash ("" for none), u64 plays, u64
 *                             listeners, u64 listening_ms
 *   TALAS_DBI_SHARE_LISTENERS share id + listener id -> ""
 *
 * A revoked link is deleted with its listeners: it is then as unknown as
 * one that never was. Logs nothing.
 */
#ifndef TALAS_SHARES_H
#define TALAS_SHARES_H

#include <stddef.h>
#include <stdint.h>
#include <lmdb.h>

#include "store/storage.h"

/* A share id or a listener id: 16 characters of base64url, random. */
#define TALAS_SHARE_ID_LEN 16
#define TALAS_SHARE_OWNER_MAX 127
#define TALAS_SHARE_HASH_MAX 191

/* The permissions. */
#define TALAS_SHARE_STREAM 1u
#define TALAS_SHARE_DOWNLOAD 2u
#define TALAS_SHARE_COMMENT 4u

/* Besides 0 and LMDB errors; far from both. */
#define TALAS_SHARE_DAMAGED (-40301) /* the stored record is of no known shape */
#define TALAS_SHARE_FULL (-40302)    /* admit: max_listeners are in already */

struct talas_share {
    char id[TALAS_SHARE_ID_LEN + 1];
    char track[TALAS_SHARE_ID_LEN + 1]; /* "" when it is a song's */
    char song[TALAS_SHARE_ID_LEN + 1];  /* "" when it is a track's */
    char owner[TALAS_SHARE_OWNER_MAX + 1];
    uint64_t created_ms, expires_ms;
    uint32_t permissions, max_listeners;
    char password_hash[TALAS_SHARE_HASH_MAX + 1]; /* "" for none */
    uint64_t plays, listeners, listening_ms;
};

/* A fresh random id (a share's or a listener's). */
void talas_share_id_make(char id_r[TALAS_SHARE_ID_LEN + 1]);

/* Encodes S (appended to OUT) and decodes a record of share ID into S:
 * 0 or TALAS_SHARE_DAMAGED (the unit test's way into the layout). */
void talas_share_encode(const struct talas_share *s, struct talas_buf *out);
int talas_share_decode(const char *id, size_t id_len, const void *data, size_t len, struct talas_share *s);

/* Stores the new share S (one short write transaction): 0 or an LMDB error. */
int talas_share_put(struct talas_storage *st, const struct talas_share *s);
/* Reads share ID into S: 0, MDB_NOTFOUND, TALAS_SHARE_DAMAGED or an LMDB
 * error. TXN may be NULL (a read transaction of its own). */
int talas_share_get(struct talas_storage *st, MDB_txn *txn, const char *id, struct talas_share *s);
/* Deletes share ID and its listeners; *S_R (may be NULL) gets it as it
 * was. 0, MDB_NOTFOUND or an LMDB error. */
int talas_share_delete(struct talas_storage *st, const char *id, struct talas_share *s_r);
/* Lets LISTENER in: 0 when it was in already or there was room (counted
 * in listeners), TALAS_SHARE_FULL when max_listeners are in, MDB_NOTFOUND,
 * or an LMDB error. */
int talas_share_admit(struct talas_storage *st, const char *id, const char *listener);
/* Adds PLAYS and LISTENING_MS to share ID's analytics: 0, MDB_NOTFOUND or
 * an LMDB error. */
int talas_share_count(struct talas_storage *st, const char *id, uint64_t plays, uint64_t listening_ms);

/* Calls FN for each share (OWNER NULL) or each of OWNER's, by id; FN
 * returns 0 to go on. 0 or an LMDB error. */
typedef int talas_share_fn(const struct talas_share *s, void *arg);
int talas_share_list(struct talas_storage *st, MDB_txn *txn, const char *owner, talas_share_fn *fn,
                     void *arg);

/* "stream download comment" (those set, space-separated) into BUF. */
void talas_share_permissions_text(uint32_t permissions, char buf[32]);

#endif
