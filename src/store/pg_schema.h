/*
 * pg_schema.h - the schema of the cluster record store on PostgreSQL
 * (cluster.postgres): the SQL of each version, in one place, and what the
 * workers and talasctl both need to reach it.
 *
 * The database holds a table talas_schema with one row, its version.
 * "talasctl db migrate" (ctl_db.c) applies talas_pg_migrations[V] to go
 * from version V to V + 1, up to TALAS_PG_SCHEMA_VERSION, in one
 * transaction; a worker checks the version on each connection
 * (talas_pg_schema_judge) and serves the records only when it is this
 * build's. Plain data and pure functions: no libpq here, so talas-master,
 * which never connects, links none.
 */
#ifndef TALAS_PG_SCHEMA_H
#define TALAS_PG_SCHEMA_H

#include <stddef.h>

/* The version this build reads and writes. */
#define TALAS_PG_SCHEMA_VERSION 8

/* talas_pg_migrations[V]: the SQL from version V to V + 1 (V from 0). */
extern const char *const talas_pg_migrations[TALAS_PG_SCHEMA_VERSION];

/* What a worker runs first on each connection: one row, the version. */
extern const char talas_pg_schema_check_sql[];

/*
 * Judges a database whose talas_schema says VERSION (NULL: no such table,
 * or no row). 0 when this build may use it; -1 with the reason and what
 * to do (SIZE bytes into REASON) when the schema is missing, older (run
 * talasctl db migrate) or newer than this build knows (upgrade Talas).
 */
int talas_pg_schema_judge(const char *version, char *reason, size_t size);

/*
 * Reads the password in PATH (cluster.postgres_password_file): its first
 * line, without the line end. 0 and *password_r (malloc'd), or -1 with
 * *error_r (malloc'd) naming the file and the failure.
 */
int talas_pg_password_read(const char *path, char **password_r, char **error_r);

#endif
