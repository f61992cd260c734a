/*
 * quota.c - the bounds on what users create: refusals that name their
 * limit, and the user-data budget measured from LMDB's own page counts.
 *
 * The budget is read with mdb_stat() on each user-created database inside
 * the caller's write transaction: LMDB keeps the page counts in the
 * database record, so the check costs no scan, and it sees the
 * transaction's own growth. Free pages are not counted: the budget bounds
 * what users hold, not what LMDB may reuse.
 */
#include "core/util.h"
#include "store/quota.h"

/* The databases that hold what users create. Modules that add a kind of
 * user record (rooms, comments, shares) add its database here. */
static const enum talas_dbi user_dbis[] = {
    TALAS_DBI_PLAYLISTS,
    TALAS_DBI_USER_SETTINGS,
    TALAS_DBI_PLAYLISTS_BY_OWNER,
    TALAS_DBI_STARS,
    TALAS_DBI_PLAY_QUEUES,
    TALAS_DBI_ROOMS,
};

int talas_quota_refuse(struct talas_quota_refusal *r, const char *limit, uint64_t max)
{
    if (r != NULL) {
        r->limit = limit;
        r->max = max;
    }
    return TALAS_QUOTA_EXCEEDED;
}

int talas_quota_is_user_data(enum talas_dbi which)
{
    for (size_t i = 0; i < TALAS_ARRAY_SIZE(user_dbis); i++)
        if (user_dbis[i] == which)
            return 1;
    return 0;
}

int talas_quota_user_data_bytes(struct talas_storage *st, MDB_txn *txn, uint64_t *bytes_r)
{
    uint64_t bytes = 0;
    MDB_stat ms;
    int rc;

    for (size_t i = 0; i < TALAS_ARRAY_SIZE(user_dbis); i++) {
        if ((rc = mdb_stat(txn, talas_storage_dbi(st, user_dbis[i]), &ms)) != 0)
            return rc;
        bytes += (uint64_t)(ms.ms_branch_pages + ms.ms_leaf_pages + ms.ms_overflow_pages) * ms.ms_psize;
    }
    *bytes_r = bytes;
    return 0;
}

int talas_quota_user_data_check(struct talas_storage *st, MDB_txn *txn, uint64_t budget,
                                struct talas_quota_refusal *r)
{
    uint64_t bytes;
    int rc;

    if (budget == 0)
        return 0;
    if ((rc = talas_quota_user_data_bytes(st, txn, &bytes)) != 0)
        return rc;
    if (bytes >= budget)
        return talas_quota_refuse(r, "storage.user_data_max", budget);
    return 0;
}
