/*
 * ctl_users.c - talasctl users: what users have stored, kind by kind
 * (store/user_data.h: playlists, playback state, listening sessions, and
 * whatever kinds later modules add there), and its removal.
 *
 *   users ls                              users who own data, counts per kind
 *   users data ls USER                    USER's records per kind: count, bytes
 *   users data purge USER [--kind KIND]   removes them (every kind, or KIND)
 *
 * users ls also lists the accounts of Subsonic apps (store/accounts.h),
 * with their API keys; the account commands themselves are in
 * ctl_accounts.c.
 *
 * Entry point (talasctl.h): talasctl_cmd_users. Tab-separated lines or one
 * JSON document (--json) on stdout; errors on stderr. A purge runs in short
 * write transactions (the store's), so the master and its workers keep
 * serving meanwhile; what it removed before an error stays removed. In a
 * map so full that even deletes fail, it grows the map by 1/64 (at least
 * 1MiB) once and goes on, and says so: storage compact gives it back.
 *
 * In cluster mode (cluster.postgres), playlists and listening sessions
 * live in the shared PostgreSQL record store, not in this node's LMDB:
 * those kinds are counted, listed and purged there (ctl_db.c, libpq's
 * blocking API), every other kind in the node's storage as before. The
 * playback state lives in Redis then: it is not listed here, and expires
 * a week after its last change (core/cluster_keys.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "core/json.h"
#include "ctl/talasctl.h"
#include "store/accounts.h"
#include "store/storage.h"
#include "store/user_data.h"

/* Longest user id the store keeps (a token's sub, a ?user_id=). */
#define USER_MAX 128

struct user_list {
    char **users;
    size_t count, cap;
};

static int collect_user(const char *user, void *arg)
{
    struct user_list *l = arg;

    if (l->count == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->users = xrealloc(l->users, l->cap * sizeof(*l->users));
    }
    l->users[l->count++] = xstrdup(user);
    return 0;
}

/* the accounts, their API keys in a second list (same order, as text) */
struct account_list {
    struct user_list names;
    uint64_t *apikeys;
};

static int collect_account(const char *name, uint64_t created_ms, uint64_t apikeys, void *arg)
{
    struct account_list *a = arg;

    collect_user(name, &a->names);
    a->apikeys = xrealloc(a->apikeys, a->names.cap * sizeof(*a->apikeys));
    a->apikeys[a->names.count - 1] = apikeys;
    return 0;
}

/* USER's API keys when it has an account, else -1 (names in order). */
static int64_t account_of(const struct account_list *a, const char *user)
{
    for (size_t i = 0; i < a->names.count; i++)
        if (strcmp(a->names.users[i], user) == 0)
            return (int64_t)a->apikeys[i];
    return -1;
}

static int compare_users(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void user_list_free(struct user_list *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->users[i]);
    free(l->users);
}

/* cluster.postgres: the record store, where playlists live (NULL: LMDB) */
static PGconn *records;
/* what a kind's function returns when the record store failed (said) */
#define RECORDS_FAILED (-1)

/* Whether KIND lives in the cluster record store. */
static int in_records(const struct talas_user_data_kind *kind)
{
    return records != NULL && (strcmp(kind->name, "playlists") == 0 || strcmp(kind->name, "listening") == 0);
}

static int is_listening(const struct talas_user_data_kind *kind)
{
    return strcmp(kind->name, "listening") == 0;
}

static int kind_usage(const struct talas_user_data_kind *kind, struct talas_storage *st, MDB_txn *txn,
                      const char *user, uint64_t *count_r, uint64_t *bytes_r)
{
    if (in_records(kind) && is_listening(kind))
        return talasctl_pg_listening_usage(records, user, count_r, bytes_r) == 0 ? 0 : RECORDS_FAILED;
    if (in_records(kind))
        return talasctl_pg_playlists_usage(records, user, count_r, bytes_r) == 0 ? 0 : RECORDS_FAILED;
    return kind->usage(st, txn, user, count_r, bytes_r);
}

static int kind_foreach(const struct talas_user_data_kind *kind, struct talas_storage *st, MDB_txn *txn,
                        talas_user_data_user_fn *fn, void *arg)
{
    if (in_records(kind) && is_listening(kind))
        return talasctl_pg_listening_users(records, fn, arg) == 0 ? 0 : RECORDS_FAILED;
    if (in_records(kind))
        return talasctl_pg_playlists_owners(records, fn, arg) == 0 ? 0 : RECORDS_FAILED;
    return kind->foreach_user(st, txn, fn, arg);
}

static int kind_purge(const struct talas_user_data_kind *kind, struct talas_storage *st, const char *user,
                      uint64_t *removed_r)
{
    if (in_records(kind) && is_listening(kind))
        return talasctl_pg_listening_purge(records, user, removed_r) == 0 ? 0 : RECORDS_FAILED;
    if (in_records(kind))
        return talasctl_pg_playlists_purge(records, user, removed_r) == 0 ? 0 : RECORDS_FAILED;
    return kind->purge(st, user, removed_r);
}

static int storage_failed(const char *what, int rc)
{
    if (rc == RECORDS_FAILED)
        return TALASCTL_FAILURE; /* ctl_db.c said why */
    fprintf(stderr, "talasctl: %s failed: %s\n", what, mdb_strerror(rc));
    return TALASCTL_FAILURE;
}

/* The counts (and bytes) of USER's records of every kind into COUNTS and
 * BYTES (talas_user_data_kind_count each). 0 or an LMDB error. */
static int usage(struct talas_storage *st, MDB_txn *txn, const char *user, uint64_t *counts, uint64_t *bytes)
{
    int rc;

    for (size_t k = 0; k < talas_user_data_kind_count; k++)
        if ((rc = kind_usage(&talas_user_data_kinds[k], st, txn, user, &counts[k], &bytes[k])) != 0)
            return rc;
    return 0;
}

/* users ls */
static int cmd_ls(const struct talas_config *conf)
{
    struct talas_storage *st = talasctl_open_storage(conf);
    uint64_t *counts = xcalloc(talas_user_data_kind_count, sizeof(*counts));
    uint64_t *bytes = xcalloc(talas_user_data_kind_count, sizeof(*bytes));
    struct user_list users = {0};
    struct account_list accounts = {0};
    struct talas_buf out = {0};
    struct talas_json json;
    size_t n = 0;
    MDB_txn *txn;
    int rc;

    if ((rc = talas_storage_read_begin(st, &txn)) != 0)
        goto fail;
    for (size_t k = 0; k < talas_user_data_kind_count && rc == 0; k++)
        rc = kind_foreach(&talas_user_data_kinds[k], st, txn, collect_user, &users);
    if (rc == 0)
        rc = talas_account_foreach(st, txn, collect_account, &accounts);
    if (rc != 0)
        goto fail_txn;
    for (size_t i = 0; i < accounts.names.count; i++)
        collect_user(accounts.names.users[i], &users);
    qsort(users.users, users.count, sizeof(*users.users), compare_users);
    talas_json_init(&json, &out);
    talas_json_object_begin(&json);
    talas_json_key(&json, "users");
    talas_json_array_begin(&json);
    if (!talasctl_json) {
        printf("user");
        for (size_t k = 0; k < talas_user_data_kind_count; k++)
            printf("\t%s", talas_user_data_kinds[k].name);
        printf("\tapikeys\n");
    }
    for (size_t i = 0; i < users.count; i++) {
        if (i > 0 && strcmp(users.users[i], users.users[i - 1]) == 0)
            continue; /* a user with records of several kinds */
        int64_t apikeys = account_of(&accounts, users.users[i]);
        if ((rc = usage(st, txn, users.users[i], counts, bytes)) != 0)
            goto fail_txn;
        n++;
        if (!talasctl_json) {
            printf("%s", users.users[i]);
            for (size_t k = 0; k < talas_user_data_kind_count; k++)
                printf("\t%" PRIu64, counts[k]);
            if (apikeys < 0)
                printf("\t-\n"); /* no account */
            else
                printf("\t%" PRId64 "\n", apikeys);
            continue;
        }
        talas_json_object_begin(&json);
        talas_json_key(&json, "user");
        talas_json_string(&json, users.users[i]);
        for (size_t k = 0; k < talas_user_data_kind_count; k++) {
            talas_json_key(&json, talas_user_data_kinds[k].name);
            talas_json_uint(&json, counts[k]);
        }
        talas_json_key(&json, "account");
        talas_json_bool(&json, apikeys >= 0);
        talas_json_key(&json, "apikeys");
        talas_json_uint(&json, apikeys >= 0 ? (uint64_t)apikeys : 0);
        talas_json_object_end(&json);
    }
    mdb_txn_abort(txn);
    talas_json_array_end(&json);
    talas_json_key(&json, "total");
    talas_json_uint(&json, n);
    talas_json_object_end(&json);
    if (talasctl_json)
        printf("%.*s\n", (int)out.len, out.data);
    else
        printf("%zu user(s)\n", n);
    talas_buf_free(&out);
    user_list_free(&users);
    user_list_free(&accounts.names);
    free(accounts.apikeys);
    free(counts);
    free(bytes);
    talas_storage_close(st);
    return TALASCTL_OK;

fail_txn:
    mdb_txn_abort(txn);
fail:
    talas_buf_free(&out);
    user_list_free(&users);
    user_list_free(&accounts.names);
    free(accounts.apikeys);
    free(counts);
    free(bytes);
    talas_storage_close(st);
    return storage_failed("reading the users' data", rc);
}

/* users data ls USER */
static int cmd_data_ls(const struct talas_config *conf, const char *user)
{
    struct talas_storage *st = talasctl_open_storage(conf);
    uint64_t *counts = xcalloc(talas_user_data_kind_count, sizeof(*counts));
    uint64_t *bytes = xcalloc(talas_user_data_kind_count, sizeof(*bytes));
    uint64_t total_count = 0, total_bytes = 0;
    struct talas_buf out = {0};
    struct talas_json json;
    MDB_txn *txn;
    int rc;

    if ((rc = talas_storage_read_begin(st, &txn)) == 0) {
        rc = usage(st, txn, user, counts, bytes);
        mdb_txn_abort(txn);
    }
    talas_storage_close(st);
    if (rc != 0) {
        free(counts);
        free(bytes);
        return storage_failed("reading the user's data", rc);
    }
    talas_json_init(&json, &out);
    talas_json_object_begin(&json);
    talas_json_key(&json, "user");
    talas_json_string(&json, user);
    talas_json_key(&json, "kinds");
    talas_json_object_begin(&json);
    if (!talasctl_json)
        printf("kind\tcount\tbytes\n");
    for (size_t k = 0; k < talas_user_data_kind_count; k++) {
        total_count += counts[k];
        total_bytes += bytes[k];
        if (!talasctl_json) {
            printf("%s\t%" PRIu64 "\t%" PRIu64 "\n", talas_user_data_kinds[k].name, counts[k], bytes[k]);
            continue;
        }
        talas_json_key(&json, talas_user_data_kinds[k].name);
        talas_json_object_begin(&json);
        talas_json_key(&json, "count");
        talas_json_uint(&json, counts[k]);
        talas_json_key(&json, "bytes");
        talas_json_uint(&json, bytes[k]);
        talas_json_object_end(&json);
    }
    talas_json_object_end(&json);
    talas_json_object_end(&json);
    if (talasctl_json)
        printf("%.*s\n", (int)out.len, out.data);
    else
        printf("total\t%" PRIu64 "\t%" PRIu64 "\n", total_count, total_bytes);
    talas_buf_free(&out);
    free(counts);
    free(bytes);
    return TALASCTL_OK;
}

/* users data purge USER [--kind KIND] */
static int cmd_data_purge(const struct talas_config *conf, const char *user,
                          const struct talas_user_data_kind *only)
{
    struct talas_storage *st = talasctl_open_storage(conf);
    struct talas_buf out = {0};
    struct talas_json json;
    int rc = 0;

    talas_json_init(&json, &out);
    talas_json_object_begin(&json);
    talas_json_key(&json, "user");
    talas_json_string(&json, user);
    talas_json_key(&json, "removed");
    talas_json_object_begin(&json);
    for (size_t k = 0; k < talas_user_data_kind_count; k++) {
        const struct talas_user_data_kind *kind = &talas_user_data_kinds[k];
        uint64_t removed = 0;

        if (only != NULL && only != kind)
            continue;
        rc = kind_purge(kind, st, user, &removed);
        if (rc == MDB_MAP_FULL) {
            /* not a page left, even to delete: a little more map, once */
            uint64_t more = 0, size, extra = conf->storage_map_size / 64;
            if (extra < 1024 * 1024)
                extra = 1024 * 1024;
            if ((rc = talas_storage_grow(st, extra, &size)) == 0) {
                fprintf(stderr,
                        "talasctl: the storage is full: its map grew to %" PRIu64 " bytes for the purge "
                        "(talasctl storage compact, with the master stopped, gives the room back)\n",
                        size);
                rc = kind_purge(kind, st, user, &more);
                removed += more;
            }
        }
        if (!talasctl_json)
            printf("%s: %" PRIu64 " removed\n", kind->name, removed);
        talas_json_key(&json, kind->name);
        talas_json_uint(&json, removed);
        if (rc != 0) {
            if (rc != RECORDS_FAILED)
                fprintf(stderr, "talasctl: purging %s of \"%s\" failed: %s\n", kind->name, user,
                        mdb_strerror(rc));
            break;
        }
    }
    talas_json_object_end(&json);
    talas_json_object_end(&json);
    talas_storage_close(st);
    if (talasctl_json)
        printf("%.*s\n", (int)out.len, out.data);
    talas_buf_free(&out);
    return rc == 0 ? TALASCTL_OK : TALASCTL_FAILURE;
}

static int dispatch(const struct talas_config *conf, char **args, int nargs, const char *kind);

int talasctl_cmd_users(const struct talas_config *conf, char **args, int nargs, const char *kind,
                       const char *revoke)
{
    int rc;

    if (nargs >= 1 && (strcmp(args[0], "add") == 0 || strcmp(args[0], "rm") == 0 ||
                       strcmp(args[0], "passwd") == 0 || strcmp(args[0], "apikey") == 0)) {
        if (kind != NULL) {
            talasctl_usage(stderr, "users");
            return TALASCTL_USAGE;
        }
        return talasctl_cmd_accounts(conf, args, nargs, revoke);
    }
    if (revoke != NULL) {
        talasctl_usage(stderr, "users");
        return TALASCTL_USAGE;
    }
    if (conf->cluster_postgres != NULL && (records = talasctl_pg_connect(conf)) == NULL)
        return TALASCTL_FAILURE;
    rc = dispatch(conf, args, nargs, kind);
    if (records != NULL)
        PQfinish(records);
    records = NULL;
    return rc;
}

static int dispatch(const struct talas_config *conf, char **args, int nargs, const char *kind)
{
    const struct talas_user_data_kind *only = NULL;
    size_t len;

    if (nargs == 1 && strcmp(args[0], "ls") == 0 && kind == NULL)
        return cmd_ls(conf);
    if (nargs != 3 || strcmp(args[0], "data") != 0 ||
        (strcmp(args[1], "ls") != 0 && strcmp(args[1], "purge") != 0) ||
        (kind != NULL && strcmp(args[1], "purge") != 0)) {
        talasctl_usage(stderr, "users");
        return TALASCTL_USAGE;
    }
    len = strlen(args[2]);
    if (len == 0 || len > USER_MAX) {
        fprintf(stderr, "talasctl: USER: must be 1 to %d bytes\n", USER_MAX);
        return TALASCTL_USAGE;
    }
    if (kind != NULL && (only = talas_user_data_kind_find(kind)) == NULL) {
        fprintf(stderr, "talasctl: --kind is");
        for (size_t k = 0; k < talas_user_data_kind_count; k++)
            fprintf(stderr, "%s %s",
                    k == 0                                ? ""
                    : k + 1 == talas_user_data_kind_count ? " or"
                                                          : ",",
                    talas_user_data_kinds[k].name);
        fprintf(stderr, ", not \"%s\"\n", kind);
        return TALASCTL_USAGE;
    }
    if (strcmp(args[1], "ls") == 0)
        return cmd_data_ls(conf, args[2]);
    return cmd_data_purge(conf, args[2], only);
}
