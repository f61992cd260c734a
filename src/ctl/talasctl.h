/*
 * talasctl.h - what the files of talasctl share: exit codes, output mode,
 * the usage message, the storage opener, the control socket client
 * (ctl_master.c), the JSON printer (ctl_json_text.c), and one entry point
 * per command group (ctl_<group>.c), which main() (talasctl.c) calls once
 * the command line is checked and the configuration loaded.
 */
#ifndef TALASCTL_H
#define TALASCTL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/config.h"
#include "core/token.h"
#include "core/util.h"

struct talas_storage;
struct pg_conn; /* libpq's PGconn */

/* Exit codes, documented in talasctl(8). */
enum {
    TALASCTL_OK = 0,
    TALASCTL_FAILURE = 1,     /* the command failed: unknown id, damaged cache, bad config... */
    TALASCTL_USAGE = 2,       /* bad command line */
    TALASCTL_NOT_RUNNING = 3, /* the master does not run (nobody answers on control.socket) */
    TALASCTL_DENIED = 4,      /* the control socket refuses this user (permissions) */
};

/* --json: read commands print one JSON document on stdout (talasctl.c). */
extern int talasctl_json;

/* talasctl.c: prints the usage of COMMAND (NULL or unknown: of them all,
 * with the options and exit codes) on FP. Commands call it on stderr when
 * their arguments are wrong, then return TALASCTL_USAGE. */
void talasctl_usage(FILE *fp, const char *command);

/* talasctl.c: opens the storage of CONF (created if missing); the caller
 * closes it with talas_storage_close. On failure says why on stderr and
 * exits 1: a command cannot do anything without it. */
struct talas_storage *talasctl_open_storage(const struct talas_config *conf);

/* ---------------------------------------- ctl_master.c: control socket */

/*
 * Sends REQUEST (one line, without its newline) on the control socket of
 * CONF and stores the answer line (a JSON object, NUL-terminated) in
 * *reply. With WAIT_EXIT_MS, then waits up to that long for the master to
 * close the connection (it does when it exits). Returns TALASCTL_OK (the
 * master answered, ok or not), TALASCTL_NOT_RUNNING, TALASCTL_DENIED or
 * TALASCTL_FAILURE, with a message on stderr for the last three.
 */
int talasctl_request(const struct talas_config *conf, const char *request, struct talas_buf *reply,
                     unsigned wait_exit_ms);

/* The control-socket commands: reload, stop, ws stats, broadcast. Each
 * returns an exit code. */
int talasctl_cmd_reload(const struct talas_config *conf);
int talasctl_cmd_stop(const struct talas_config *conf);
int talasctl_cmd_ws_stats(const struct talas_config *conf);
int talasctl_cmd_broadcast(const struct talas_config *conf, const char *message, const char *level);

/* --------------------------------------- ctl_json_text.c: JSON as text */

/* 1 when the answer JSON says "ok":true. */
int talasctl_reply_ok(const char *json);
/* The "error" string of an answer, copied into BUF (SIZE bytes). */
const char *talasctl_reply_error(const char *json, char *buf, size_t size);

/* Prints JSON (the master's answers: objects, arrays, scalars) as indented
 * "key: value" lines, skipping the top-level "ok". Returns 0 or -1 when it
 * is not JSON. */
int talasctl_print_text(FILE *fp, const char *json, int indent);

/* ------------------------------------------- the storage's command groups */

/* ctl_shares.c: shares [ls], shares rm ID (the private links). */
int talasctl_cmd_shares(const struct talas_config *conf, char **args, int nargs);

/* ctl_status.c: status, the master's part (control socket) and the
 * storage's. Returns TALASCTL_NOT_RUNNING when the master does not run,
 * after printing the rest. */
int talasctl_cmd_status(const struct talas_config *conf);

/* ctl_scan.c: scan [--full]. */
int talasctl_cmd_scan(const struct talas_config *conf, int full);

/* ctl_tracks.c: tracks [ls] [--errors], tracks show ID, tracks rm ID;
 * ARGS are the words after "tracks". */
int talasctl_cmd_tracks(const struct talas_config *conf, char **args, int nargs, int errors);

/* ctl_cache.c: cache stats, cache purge [ID], cache verify [--fix]; ARGS
 * are the words after "cache". */
int talasctl_cmd_cache(const struct talas_config *conf, char **args, int nargs, int fix);

/* ctl_sessions.c: sessions, streaming and listening. */
int talasctl_cmd_sessions(const struct talas_config *conf);

/* ctl_users.c: users ls, users data ls USER, users data purge USER
 * [--kind KIND] (KIND NULL: every kind); ARGS are the words after
 * "users". The account subcommands (add, passwd, rm, apikey [--revoke
 * REVOKE]) go to ctl_accounts.c. */
int talasctl_cmd_users(const struct talas_config *conf, char **args, int nargs, const char *kind,
                       const char *revoke);
/* ctl_accounts.c: users add|passwd|rm|apikey NAME [--revoke KEY]; ARGS
 * are the words after "users". */
int talasctl_cmd_accounts(const struct talas_config *conf, char **args, int nargs, const char *revoke);

/* ctl_db.c: db migrate, db status (cluster.postgres's schema). */
int talasctl_cmd_db(const struct talas_config *conf, char **args, int nargs);

/* ctl_db.c: a blocking connection to cluster.postgres (with its password
 * file), or NULL after saying why on stderr. The caller PQfinish()es it. */
struct pg_conn *talasctl_pg_connect(const struct talas_config *conf);
/* ctl_db.c: the cluster store's playlists, for talasctl users: each
 * returns 0, FN's value (owners), or -1 after saying why on stderr. */
int talasctl_pg_playlists_usage(struct pg_conn *conn, const char *user, uint64_t *count_r, uint64_t *bytes_r);
int talasctl_pg_playlists_purge(struct pg_conn *conn, const char *user, uint64_t *removed_r);
int talasctl_pg_playlists_owners(struct pg_conn *conn, int (*fn)(const char *owner, void *arg), void *arg);
/* ctl_db.c: the cluster store's listening sessions (the "listening" kind),
 * the same way. A purge leaves the per-track totals, as in LMDB. */
int talasctl_pg_listening_usage(struct pg_conn *conn, const char *user, uint64_t *count_r, uint64_t *bytes_r);
int talasctl_pg_listening_purge(struct pg_conn *conn, const char *user, uint64_t *removed_r);
int talasctl_pg_listening_users(struct pg_conn *conn, int (*fn)(const char *user, void *arg), void *arg);

/* ctl_storage.c: storage compact, refused while the master runs. */
int talasctl_cmd_storage(const struct talas_config *conf, char **args, int nargs);

/* ctl_cluster.c: cluster status, the live nodes from Redis (cluster mode). */
int talasctl_cmd_cluster(const struct talas_config *conf, char **args, int nargs);

/* ctl_config.c: check-config (--keys is main's: it needs no file). */
int talasctl_cmd_check_config(const struct talas_config *conf);

/* ----------------------------------------------------- ctl_sign.c: sign */

/* Options of sign, collected by main() wherever they appear. */
struct talasctl_sign_opts {
    int given; /* any of the three was given */
    uint64_t ttl_s;
    enum talas_token_kind kind;
    const char *user;
};

/* --ttl SECONDS: 0 and *V_R set, or -1 when S is not a number of seconds. */
int talasctl_sign_parse_ttl(const char *s, uint64_t *v_r);
/* --kind stream|preview|hls: 0 and *KIND_R set, or -1. */
int talasctl_sign_parse_kind(const char *s, enum talas_token_kind *kind_r);

/* sign TRACK_ID: the URL on stdout, its expiry on stderr. */
int talasctl_cmd_sign(const struct talas_config *conf, const char *track, const struct talasctl_sign_opts *o);

#endif
