/*
 * play_queue.h - each user's saved play queue in LMDB (DBI play_queues):
 * the Subsonic API's savePlayQueue, read back by getPlayQueue, so that an
 * app on another device resumes where the user left off.
 *
 * One record per user: the queue's track ids in order, the track playing
 * (current, "" none), the position in it, when the queue was saved and by
 * which client (the Subsonic "c" parameter, stored as sent). Saving an
 * empty queue removes the record. The store checks lengths only (a track
 * id of 1..TALAS_PLAY_QUEUE_ID_MAX bytes, at most TALAS_PLAY_QUEUE_MAX
 * entries, a client name of at most TALAS_PLAY_QUEUE_CLIENT_MAX bytes);
 * that the tracks exist is the caller's. Every save is one short write
 * transaction, so a worker may call it on its loop; reads take the
 * caller's read transaction.
 */
#ifndef TALAS_PLAY_QUEUE_H
#define TALAS_PLAY_QUEUE_H

#include <stddef.h>
#include <stdint.h>
#include <lmdb.h>

#include "store/quota.h"
#include "store/storage.h"

#define TALAS_PLAY_QUEUE_MAX 1000       /* entries of one queue */
#define TALAS_PLAY_QUEUE_ID_MAX 128     /* bytes of a user or track id */
#define TALAS_PLAY_QUEUE_CLIENT_MAX 256 /* bytes of the client's name */

/* A queue, as saved or read. Every pointer is borrowed: from the caller
 * (a save) or from the record (a read: valid while its transaction is,
 * TRACKS itself being talas_play_queue_decode's, freed by
 * talas_play_queue_release). */
struct talas_play_queue {
    const char **tracks;
    size_t count;
    const char *current; /* "" when none */
    uint64_t position_ms;
    uint64_t changed_ms; /* wall clock */
    const char *changed_by;
};

/* The record of Q (the user aside: it is the key), and its reading; decode
 * returns 0, or -1 for a record of no known shape (Q is then empty). */
void talas_play_queue_encode(const struct talas_play_queue *q, struct talas_buf *out);
int talas_play_queue_decode(const void *data, size_t len, struct talas_play_queue *q);
/* Frees the track array a decode allocated. */
void talas_play_queue_release(struct talas_play_queue *q);

/* Whether Q is within the limits above (then 0, else EINVAL). */
int talas_play_queue_check(const char *user, const struct talas_play_queue *q);

/*
 * Saves Q as USER's queue (Q->count 0: removes it). A save that adds a
 * record is held to storage.user_data_max (BUDGET, 0: none). Returns 0,
 * EINVAL (talas_play_queue_check), TALAS_QUOTA_EXCEEDED with *R, or an
 * LMDB error (for talas_storage_log_write_error).
 */
int talas_play_queue_save(struct talas_storage *st, const char *user, const struct talas_play_queue *q,
                          uint64_t budget, struct talas_quota_refusal *r);
/* Reads USER's queue in TXN into *Q (release it after). Returns 0,
 * MDB_NOTFOUND (none, or a damaged record), or an LMDB error. */
int talas_play_queue_get(struct talas_storage *st, MDB_txn *txn, const char *user,
                         struct talas_play_queue *q);

/* For talasctl users (store/user_data.h): USER's queue (one record or
 * none), its removal, the users who have one. */
int talas_play_queue_usage(struct talas_storage *st, MDB_txn *txn, const char *user, uint64_t *count_r,
                           uint64_t *bytes_r);
int talas_play_queue_purge(struct talas_storage *st, const char *user, uint64_t *removed_r);
typedef int talas_play_queue_user_fn(const char *user, void *arg);
int talas_play_queue_foreach_user(struct talas_storage *st, MDB_txn *txn, talas_play_queue_user_fn *fn,
                                  void *arg);

#endif
