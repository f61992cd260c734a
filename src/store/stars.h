/*
 * stars.h - what each user starred and how they rated it, in LMDB (DBI
 * stars): the Subsonic API's star, unstar and setRating, read back by
 * getStarred and the songs' starred and userRating attributes.
 *
 * An item is a song (its track id), an album or an artist (the ids of
 * subsonic/subsonic_library.h); this store does not tell them apart nor check
 * that they exist: the caller does. One record per user and item, which
 * holds when it was starred (0: not starred) and its rating (0: none, or
 * 1..5); a record with neither is removed. Every change is one short write
 * transaction, so a worker may call these on its loop; reads take the
 * caller's read transaction. Items and users are at most
 * TALAS_STARS_ID_MAX bytes, checked here.
 */
#ifndef TALAS_STARS_H
#define TALAS_STARS_H

#include <stddef.h>
#include <stdint.h>
#include <lmdb.h>

#include "store/quota.h"
#include "store/storage.h"

#define TALAS_STARS_ID_MAX 128
#define TALAS_STARS_RATING_MAX 5

/* One user's mark on one item, as read: ITEM is valid during the call
 * that hands it over (talas_stars_list's FN). */
struct talas_star {
    const char *item;
    uint64_t starred_ms; /* when it was first starred (wall clock), 0 when not starred */
    unsigned rating;     /* 0 (none) .. TALAS_STARS_RATING_MAX */
};

/* The record of S (its item aside: it is in the key), and its reading;
 * decode returns 0, or -1 for a record of no known shape. */
void talas_star_encode(const struct talas_star *s, struct talas_buf *out);
int talas_star_decode(const void *data, size_t len, struct talas_star *s);

/*
 * Stars (STAR 1) or unstars (0) the N ITEMS for USER, at NOW_MS; an item
 * already starred keeps its first time. A star that adds a record is held
 * to storage.user_data_max (BUDGET, 0: none). Returns 0, EINVAL for an
 * empty or too long user or item, TALAS_QUOTA_EXCEEDED with *R, or an LMDB
 * error (for talas_storage_log_write_error).
 */
int talas_stars_set(struct talas_storage *st, const char *user, const char *const *items, size_t n, int star,
                    uint64_t now_ms, uint64_t budget, struct talas_quota_refusal *r);
/* Sets USER's RATING (0 clears; at most TALAS_STARS_RATING_MAX) of ITEM.
 * Returns as talas_stars_set (EINVAL also for a rating out of range). */
int talas_stars_rate(struct talas_storage *st, const char *user, const char *item, unsigned rating,
                     uint64_t budget, struct talas_quota_refusal *r);

/* Calls FN for each of USER's marks in TXN, by item; FN returns 0 to go
 * on. Returns 0, FN's value or an LMDB error (a damaged record is
 * skipped). */
typedef int talas_star_fn(const struct talas_star *s, void *arg);
int talas_stars_list(struct talas_storage *st, MDB_txn *txn, const char *user, talas_star_fn *fn, void *arg);

/* For talasctl users (store/user_data.h): USER's marks, their number and
 * bytes; their removal; the users who have some. */
int talas_stars_usage(struct talas_storage *st, MDB_txn *txn, const char *user, uint64_t *count_r,
                      uint64_t *bytes_r);
int talas_stars_purge(struct talas_storage *st, const char *user, uint64_t *removed_r);
typedef int talas_stars_user_fn(const char *user, void *arg);
int talas_stars_foreach_user(struct talas_storage *st, MDB_txn *txn, talas_stars_user_fn *fn, void *arg);

#endif
