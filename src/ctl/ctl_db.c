/*
 * ctl_db.c - talasctl db: the cluster record store's schema on PostgreSQL
 * (cluster.postgres), and the reach of other commands into it.
 *
 *   db migrate   creates the schema, or upgrades it, to this build's
 *                version (store/pg_schema.h), in one transaction; prints
 *                the version
 *   db status    the database's version against this build's
 *
 * Entry points (talasctl.h): talasctl_cmd_db; talasctl_pg_connect and the
 * playlists' and listening sessions' usage, purge and users for talasctl
 * users in cluster mode (ctl_users.c). talasctl is no worker: it uses libpq's blocking API.
 *
 * A migration locks talas_schema for its whole transaction, so that two
 * operators (or two nodes' deploy scripts) migrating at once run one after
 * the other, the second finding the work done. A database whose version is
 * newer than this build's is left alone (exit 1). Errors name the call and
 * carry the server's message, on stderr.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "core/json.h"
#include "ctl/talasctl.h"
#include "store/pg_schema.h"

PGconn *talasctl_pg_connect(const struct talas_config *conf)
{
    const char *keys[] = {"dbname", "password", NULL};
    const char *values[] = {conf->cluster_postgres, NULL, NULL};
    char *password = NULL, *error;
    PGconn *conn;

    if (conf->cluster_postgres == NULL) {
        fprintf(stderr, "talasctl: cluster.postgres is not set in %s: there is no record store to reach\n",
                conf->file != NULL ? conf->file : "the configuration");
        return NULL;
    }
    if (conf->cluster_postgres_password_file != NULL) {
        if (talas_pg_password_read(conf->cluster_postgres_password_file, &password, &error) != 0) {
            fprintf(stderr, "talasctl: %s\n", error);
            free(error);
            return NULL;
        }
        values[1] = password;
    } else {
        keys[1] = NULL;
    }
    conn = PQconnectdbParams(keys, values, 1);
    free(password);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "talasctl: connecting to PostgreSQL (cluster.postgres) failed: %s",
                PQerrorMessage(conn));
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

/* Runs SQL with N PARAMS; the result, or NULL after saying why (WHAT). */
static PGresult *exec(PGconn *conn, const char *what, const char *sql, int n, const char *const *params)
{
    /* without parameters, the simple protocol: a migration is several statements */
    PGresult *res = n == 0 ? PQexec(conn, sql) : PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);

    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return res;
    fprintf(stderr, "talasctl: %s failed: %s", what, PQresultErrorMessage(res));
    PQclear(res);
    return NULL;
}

static int exec_ok(PGconn *conn, const char *what, const char *sql)
{
    PGresult *res = exec(conn, what, sql, 0, NULL);

    PQclear(res);
    return res != NULL ? 0 : -1;
}

/* The database's version: 0 and *version_r (-1: no schema), or -1. */
static int read_version(PGconn *conn, long *version_r)
{
    PGresult *res = PQexec(conn, talas_pg_schema_check_sql);
    const char *state;

    *version_r = -1;
    if (PQresultStatus(res) == PGRES_TUPLES_OK) {
        if (PQntuples(res) > 0)
            *version_r = strtol(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
        return 0;
    }
    state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (state != NULL && strcmp(state, "42P01") == 0) { /* no talas_schema */
        PQclear(res);
        return 0;
    }
    fprintf(stderr, "talasctl: reading the schema version failed: %s", PQresultErrorMessage(res));
    PQclear(res);
    return -1;
}

static int migrate(PGconn *conn)
{
    long from;
    char sql[128];

    if (exec_ok(conn, "BEGIN", "BEGIN") != 0)
        return TALASCTL_FAILURE;
    if (exec_ok(conn, "creating talas_schema",
                "CREATE TABLE IF NOT EXISTS talas_schema (version integer NOT NULL, "
                "migrated_at timestamptz NOT NULL DEFAULT now())") != 0 ||
        exec_ok(conn, "locking talas_schema", "LOCK TABLE talas_schema IN ACCESS EXCLUSIVE MODE") != 0 ||
        read_version(conn, &from) != 0)
        goto fail;
    if (from < 0)
        from = 0;
    if (from > TALAS_PG_SCHEMA_VERSION) {
        fprintf(stderr,
                "talasctl: the schema is at version %ld, newer than this build knows (%d): nothing done; "
                "upgrade talasctl\n",
                from, TALAS_PG_SCHEMA_VERSION);
        goto fail;
    }
    for (long v = from; v < TALAS_PG_SCHEMA_VERSION; v++) {
        char what[64];
        snprintf(what, sizeof(what), "the migration to version %ld", v + 1);
        if (exec_ok(conn, what, talas_pg_migrations[v]) != 0)
            goto fail;
    }
    snprintf(sql, sizeof(sql), "DELETE FROM talas_schema; INSERT INTO talas_schema (version) VALUES (%d)",
             TALAS_PG_SCHEMA_VERSION);
    if (exec_ok(conn, "recording the version", sql) != 0 || exec_ok(conn, "COMMIT", "COMMIT") != 0)
        goto fail;
    if (talasctl_json)
        printf("{\"version\":%d,\"previous\":%ld}\n", TALAS_PG_SCHEMA_VERSION, from);
    else if (from == TALAS_PG_SCHEMA_VERSION)
        printf("schema version %d (already current)\n", TALAS_PG_SCHEMA_VERSION);
    else
        printf("schema version %d (was %ld)\n", TALAS_PG_SCHEMA_VERSION, from);
    return TALASCTL_OK;
fail:
    PQclear(PQexec(conn, "ROLLBACK"));
    return TALASCTL_FAILURE;
}

static int status(PGconn *conn)
{
    char reason[256];
    char version[24];
    long v;
    int ok;

    if (read_version(conn, &v) != 0)
        return TALASCTL_FAILURE;
    snprintf(version, sizeof(version), "%ld", v);
    ok = talas_pg_schema_judge(v >= 0 ? version : NULL, reason, sizeof(reason)) == 0;
    if (talasctl_json) {
        struct talas_buf out = {0};
        struct talas_json json;
        talas_json_init(&json, &out);
        talas_json_object_begin(&json);
        talas_json_key(&json, "version");
        if (v >= 0)
            talas_json_int(&json, v);
        else
            talas_json_null(&json);
        talas_json_key(&json, "build");
        talas_json_int(&json, TALAS_PG_SCHEMA_VERSION);
        talas_json_key(&json, "current");
        talas_json_bool(&json, ok);
        if (!ok) {
            talas_json_key(&json, "reason");
            talas_json_string(&json, reason);
        }
        talas_json_object_end(&json);
        printf("%.*s\n", (int)out.len, out.data);
        talas_buf_free(&out);
    } else {
        if (v >= 0)
            printf("schema version: %ld\n", v);
        else
            printf("schema version: none\n");
        printf("this build: %d\n", TALAS_PG_SCHEMA_VERSION);
        printf("%s\n", ok ? "current" : reason);
    }
    return ok ? TALASCTL_OK : TALASCTL_FAILURE;
}

int talasctl_cmd_db(const struct talas_config *conf, char **args, int nargs)
{
    PGconn *conn;
    int rc;

    if (nargs != 1 || (strcmp(args[0], "migrate") != 0 && strcmp(args[0], "status") != 0)) {
        talasctl_usage(stderr, "db");
        return TALASCTL_USAGE;
    }
    if ((conn = talasctl_pg_connect(conf)) == NULL)
        return TALASCTL_FAILURE;
    rc = strcmp(args[0], "migrate") == 0 ? migrate(conn) : status(conn);
    PQfinish(conn);
    return rc;
}

/* ------------------------------------------ a user's rows, for talasctl users */

/* SQL takes the user as $1 and yields one row: a count and a byte size. */
static int user_usage(PGconn *conn, const char *what, const char *sql, const char *user, uint64_t *count_r,
                      uint64_t *bytes_r)
{
    const char *params[1] = {user};
    PGresult *res = exec(conn, what, sql, 1, params);

    if (res == NULL)
        return -1;
    *count_r = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    *bytes_r = strtoull(PQgetvalue(res, 0, 1), NULL, 10);
    PQclear(res);
    return 0;
}

/* SQL deletes the user's ($1) rows; *removed_r is how many went. */
static int user_purge(PGconn *conn, const char *what, const char *sql, const char *user, uint64_t *removed_r)
{
    const char *params[1] = {user};
    PGresult *res = exec(conn, what, sql, 1, params);

    *removed_r = 0;
    if (res == NULL)
        return -1;
    *removed_r = strtoull(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return 0;
}

/* FN on the first column of each row of SQL, until it returns non-zero. */
static int each_name(PGconn *conn, const char *what, const char *sql, int (*fn)(const char *name, void *arg),
                     void *arg)
{
    PGresult *res = exec(conn, what, sql, 0, NULL);
    int rc = 0;

    if (res == NULL)
        return -1;
    for (int i = 0; i < PQntuples(res) && rc == 0; i++)
        rc = fn(PQgetvalue(res, i, 0), arg);
    PQclear(res);
    return rc;
}

/* ------------------------------------------ playlists, for talasctl users */

int talasctl_pg_playlists_usage(struct pg_conn *conn, const char *user, uint64_t *count_r, uint64_t *bytes_r)
{
    /* bytes: what the rows hold (ids, owner, name, comment, editors, tracks) */
    static const char sql[] = "SELECT count(*), coalesce(sum(octet_length(p.id) + octet_length(p.owner)"
                              " + octet_length(p.name) + octet_length(p.comment)"
                              " + coalesce((SELECT sum(octet_length(track) + 4) FROM talas_playlist_tracks"
                              " WHERE playlist = p.id), 0)"
                              " + coalesce((SELECT sum(octet_length(editor)) FROM talas_playlist_editors"
                              " WHERE playlist = p.id), 0)"
                              "), 0) FROM talas_playlists p WHERE owner = $1";

    return user_usage(conn, "counting the user's playlists", sql, user, count_r, bytes_r);
}

int talasctl_pg_playlists_purge(struct pg_conn *conn, const char *user, uint64_t *removed_r)
{
    return user_purge(conn, "removing the user's playlists", "DELETE FROM talas_playlists WHERE owner = $1",
                      user, removed_r);
}

int talasctl_pg_playlists_owners(struct pg_conn *conn, int (*fn)(const char *owner, void *arg), void *arg)
{
    return each_name(conn, "listing the playlists' owners",
                     "SELECT DISTINCT owner FROM talas_playlists WHERE owner <> '' ORDER BY 1", fn, arg);
}

int talasctl_pg_listening_usage(struct pg_conn *conn, const char *user, uint64_t *count_r, uint64_t *bytes_r)
{
    /* bytes: what the rows hold (strings, and four 8-byte figures) */
    static const char sql[] =
        "SELECT count(*), coalesce(sum(octet_length(id) + octet_length(user_id) + "
        "octet_length(track) + octet_length(quality) + octet_length(platform) + 32), 0) "
        "FROM talas_listen_sessions WHERE user_id = $1";

    return user_usage(conn, "counting the user's listening sessions", sql, user, count_r, bytes_r);
}

int talasctl_pg_listening_purge(struct pg_conn *conn, const char *user, uint64_t *removed_r)
{
    return user_purge(conn, "removing the user's listening sessions",
                      "DELETE FROM talas_listen_sessions WHERE user_id = $1", user, removed_r);
}

int talasctl_pg_listening_users(struct pg_conn *conn, int (*fn)(const char *user, void *arg), void *arg)
{
    return each_name(conn, "listing the listeners",
                     "SELECT DISTINCT user_id FROM talas_listen_sessions ORDER BY 1", fn, arg);
}
