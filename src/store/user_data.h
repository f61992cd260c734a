/*
 * user_data.h - what the store holds on behalf of one user, kind by kind,
 * for the operator's cleanup commands (talasctl users, ctl_users.c).
 *
 * Each kind of user record is one row of a table: its name (what
 * "talasctl users data ... --kind NAME" takes), how to count and size one
 * user's records, how to remove them, and how to list the users who have
 * some. A module that stores a new kind of user record (streaming
 * sessions, user settings, rooms) adds one row in user_data.c; talasctl
 * needs no change.
 */
#ifndef TALAS_USER_DATA_H
#define TALAS_USER_DATA_H

#include <stddef.h>
#include <stdint.h>
#include <lmdb.h>

#include "store/storage.h"

/* Called once for each user of a kind; returns 0 to go on. */
typedef int talas_user_data_user_fn(const char *user, void *arg);

struct talas_user_data_kind {
    const char *name;        /* "playlists" */
    const char *description; /* "playlists the user owns" */
    /* USER's records of this kind in TXN: their number and bytes (keys and
     * records, index entries included). 0 or an LMDB error. */
    int (*usage)(struct talas_storage *st, MDB_txn *txn, const char *user, uint64_t *count_r,
                 uint64_t *bytes_r);
    /* Removes USER's records of this kind, in short write transactions;
     * *removed_r gets how many went. 0 or an LMDB error. */
    int (*purge)(struct talas_storage *st, const char *user, uint64_t *removed_r);
    /* Calls FN for each user with records of this kind, each once. 0, FN's
     * value or an LMDB error. */
    int (*foreach_user)(struct talas_storage *st, MDB_txn *txn, talas_user_data_user_fn *fn, void *arg);
};

/* The kinds, in the order talasctl prints them. */
extern const struct talas_user_data_kind talas_user_data_kinds[];
extern const size_t talas_user_data_kind_count;

/* The kind called NAME, or NULL. */
const struct talas_user_data_kind *talas_user_data_kind_find(const char *name);

#endif
