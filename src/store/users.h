/*
 * users.h - each user's settings in LMDB (TALAS_DBI_USER_SETTINGS): for
 * now one, "share my listening" (share_listening), off by default.
 *
 * The settings are the user's consent: the realtime hub reads
 * share_listening when a playback event is published
 * (workers/realtime/ws_conn.c) and sends the event of a user who does not
 * share only to that user's own connections. A user with no record has
 * the defaults, so the store holds only users who changed something, and
 * withdrawing consent (back to the defaults) deletes the record: it needs
 * no room, and a full user-data budget can never keep a user's listening
 * public.
 *
 * Writes are one short write transaction each (safe on a worker's loop);
 * reads take the caller's read transaction, or their own
 * (talas_user_shares_listening). User ids are 1 to TALAS_USERS_ID_MAX
 * bytes, checked by the caller.
 */
#ifndef TALAS_USERS_H
#define TALAS_USERS_H

#include <stddef.h>
#include <stdint.h>
#include <lmdb.h>

#include "core/util.h"
#include "store/quota.h"
#include "store/storage.h"

#define TALAS_USERS_ID_MAX 128

/* A user's settings (plain data; stored through the record codec, see
 * users.c). */
struct talas_user_settings {
    int share_listening; /* 1: other users receive this user's playback events */
    uint64_t updated_ms; /* wall clock of the last change; 0 when never set */
};

/* The defaults: what a user without a record has. */
void talas_user_settings_default(struct talas_user_settings *s);

/* Appends the record of S to OUT (the caller owns OUT). */
void talas_user_settings_encode(const struct talas_user_settings *s, struct talas_buf *out);
/* Reads record DATA (LEN bytes) into *S. Returns 0, or -1 (S then holds
 * the defaults) when it is damaged or of an unknown version. */
int talas_user_settings_decode(const void *data, size_t len, struct talas_user_settings *s);

/*
 * USER's settings in TXN's view into *S: 0 (the defaults when USER has no
 * record), -1 when the record is damaged (S holds the defaults), or an
 * LMDB error (S holds the defaults).
 */
int talas_user_settings_get(struct talas_storage *st, MDB_txn *txn, const char *user,
                            struct talas_user_settings *s);

/*
 * Whether USER shares their listening, in a read transaction of its own:
 * 1 or 0. Fails closed: 0 for NULL, a damaged record or a storage error,
 * so an event is never made public by accident.
 */
int talas_user_shares_listening(struct talas_storage *st, const char *user);

/*
 * Stores S (updated_ms as given) as USER's settings in one short write
 * transaction. Settings equal to the defaults delete the record instead.
 * A record that does not exist yet must fit in the user-data budget of
 * BUDGET bytes (0: none; storage.user_data_max): else nothing is written
 * and TALAS_QUOTA_EXCEEDED comes back with the limit in *R (may be NULL).
 * Rewriting an existing record or deleting one is never refused: a record
 * keeps its size within a version, and withdrawing consent must always
 * work. Returns 0, TALAS_QUOTA_EXCEEDED or an LMDB error.
 */
int talas_user_settings_put(struct talas_storage *st, const char *user, const struct talas_user_settings *s,
                            uint64_t budget, struct talas_quota_refusal *r);

/* Deletes USER's settings (they return to the defaults), for "talasctl users data
 * purge". Returns 0 (also when there were none) or
 * an LMDB error. */
int talas_user_settings_purge(struct talas_storage *st, const char *user);

/* What USER's settings take, in TXN's view: the number of records (0 or
 * 1) in *count_r and their key and value bytes in *bytes_r, for "talasctl users
 * data". Returns 0 or an LMDB error. */
int talas_user_settings_usage(struct talas_storage *st, MDB_txn *txn, const char *user, uint64_t *count_r,
                              uint64_t *bytes_r);

/* Calls FN once for each user with stored settings; FN returns 0 to go on.
 * Returns 0, FN's value or an LMDB error. */
typedef int talas_user_settings_user_fn(const char *user, void *arg);
int talas_user_settings_foreach_user(struct talas_storage *st, MDB_txn *txn, talas_user_settings_user_fn *fn,
                                     void *arg);

#endif
