/*
 * quota.h - the bounds on what users create, checked inside the store.
 *
 * Every store function that writes a record on a user's behalf (streaming
 * sessions, playlists, user settings, and what later issues add: rooms,
 * comments, share links) checks its limits here, inside its own write
 * transaction, so a limit holds on every path that reaches the store,
 * whichever handler (HTTP, WebSocket, gRPC, talasctl) called it, and on
 * whichever backend the store runs. A refusal says which limit refused, by
 * its configuration key, so the caller can answer 429 or a failed
 * CommandResponse naming it.
 *
 * Two kinds of bound:
 *  - counts (per user, per address, global), which each module keeps in its
 *    own records and compares with talas_quota_refuse();
 *  - the user-data budget: the bytes that user-created databases take in the
 *    shared map (storage.user_data_max), so that a flood of user records
 *    fails only user writes, while scans, the transcode cache and playback
 *    state keep their room.
 */
#ifndef TALAS_QUOTA_H
#define TALAS_QUOTA_H

#include <stdint.h>

#include "store/storage.h"

/*
 * What store functions return when a limit refuses a write; far from
 * LMDB's codes (-30799..-30780) and from errno values (positive).
 */
#define TALAS_QUOTA_EXCEEDED (-40001)

struct talas_quota_refusal {
    const char *limit; /* the configuration key, e.g. "playlists.max_per_user" */
    uint64_t max;      /* its value */
};

/* Fills *R (when not NULL) and returns TALAS_QUOTA_EXCEEDED. */
int talas_quota_refuse(struct talas_quota_refusal *r, const char *limit, uint64_t max);

/*
 * The bytes that the user-created databases take in TXN's view of the map:
 * their branch, leaf and overflow pages times the page size (mdb_stat, no
 * scan). Stores it in *bytes_r and returns 0, or an LMDB error.
 */
int talas_quota_user_data_bytes(struct talas_storage *st, MDB_txn *txn, uint64_t *bytes_r);

/*
 * Refuses a write that would grow user data past BUDGET bytes (0: no
 * budget): returns 0 while the user-created databases take less, else
 * TALAS_QUOTA_EXCEEDED with the limit "storage.user_data_max" in *R, or an
 * LMDB error. Call it in the write transaction, before the put.
 */
int talas_quota_user_data_check(struct talas_storage *st, MDB_txn *txn, uint64_t budget,
                                struct talas_quota_refusal *r);

/* Whether DBI counts as user-created data for the budget above. */
int talas_quota_is_user_data(enum talas_dbi which);

#endif
