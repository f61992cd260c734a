/*
 * accounts.h - the accounts of Subsonic apps (DBI accounts) and their API
 * keys (DBI api_keys): what `talasctl users add|rm|passwd|apikey` writes
 * and what a worker's /rest/ routes read.
 *
 * Subsonic's token authentication (t = md5(password + salt)) needs the
 * clear password on the server, so a password is stored sealed, not
 * hashed: AES-256-GCM under a key derived from the key file of
 * subsonic.password_key_file, with the account's name as associated data
 * (a sealed password moved to another account does not open). Whoever
 * holds both the storage and the key file has the passwords: keep the key
 * file readable by root only, as the JWT key files. API keys are random
 * (32 bytes, shown once as 64 hex digits) and stored as their SHA-256:
 * the storage alone gives none back.
 *
 * Writes are talasctl's, one short write transaction each; workers only
 * read (talas_account_password, talas_apikey_user) in the caller's read
 * transaction. Nothing here logs: errors come back to the caller.
 */
#ifndef TALAS_ACCOUNTS_H
#define TALAS_ACCOUNTS_H

#include <stddef.h>
#include <stdint.h>
#include <lmdb.h>

#include "store/storage.h"

#define TALAS_ACCOUNT_NAME_MAX 128     /* bytes, like every user id */
#define TALAS_ACCOUNT_PASSWORD_MAX 256 /* bytes */
#define TALAS_APIKEY_TEXT_LEN 64       /* hex digits of an API key */

/* The sealing key, derived from the key file. */
struct talas_account_key {
    unsigned char k[32];
};

/*
 * Reads subsonic.password_key_file at PATH (line ends stripped; at least
 * 32 bytes, such as `openssl rand -hex 32`) and derives the AES-256 key
 * from it (SHA-256 of its content). Returns 0, or -1 with a malloc'd
 * message naming the key and the file.
 */
int talas_account_key_load(const char *path, struct talas_account_key *key, char **error_r);

/* NULL when NAME may name an account (1 to TALAS_ACCOUNT_NAME_MAX bytes
 * of UTF-8 without control characters), else why not (static). */
const char *talas_account_name_problem(const char *name);
/* The same for a password of LEN bytes (1 to TALAS_ACCOUNT_PASSWORD_MAX,
 * no NUL). */
const char *talas_account_password_problem(const char *password, size_t len);

enum talas_account_put_mode {
    TALAS_ACCOUNT_CREATE,  /* EEXIST when NAME exists */
    TALAS_ACCOUNT_REPLACE, /* MDB_NOTFOUND when it does not */
};

/* Seals PASSWORD (LEN bytes) under KEY as NAME's, in one write
 * transaction. Returns 0, EEXIST, MDB_NOTFOUND (see MODE), -1 when
 * sealing failed, or an LMDB error. */
int talas_account_put(struct talas_storage *st, const struct talas_account_key *key, const char *name,
                      const char *password, size_t len, enum talas_account_put_mode mode);

/*
 * NAME's clear password, in TXN's view, into OUT (CAP bytes, at least
 * TALAS_ACCOUNT_PASSWORD_MAX + 1; NUL-terminated, its length in *len_r).
 * KEY may be NULL to ask only whether NAME exists. Returns 0,
 * MDB_NOTFOUND, -1 when the record is damaged or does not open under KEY
 * (another key file), or an LMDB error. The caller cleanses OUT.
 */
int talas_account_password(struct talas_storage *st, MDB_txn *txn, const struct talas_account_key *key,
                           const char *name, char *out, size_t cap, size_t *len_r);

/* Removes NAME and every API key of NAME, in one write transaction; the
 * number of keys removed in *keys_r (may be NULL). Returns 0,
 * MDB_NOTFOUND or an LMDB error. */
int talas_account_del(struct talas_storage *st, const char *name, uint64_t *keys_r);

/* Calls FN for each account in name order, with its creation time and its
 * number of API keys; FN returns 0 to go on. Returns 0, FN's value, -1
 * for a damaged record, or an LMDB error. */
typedef int talas_account_fn(const char *name, uint64_t created_ms, uint64_t apikeys, void *arg);
int talas_account_foreach(struct talas_storage *st, MDB_txn *txn, talas_account_fn *fn, void *arg);

/* Makes a new API key for NAME and stores its hash; its text (shown once)
 * in KEY_R. Returns 0, MDB_NOTFOUND (no such account), -1 when no random
 * bytes could be had, or an LMDB error. */
int talas_apikey_create(struct talas_storage *st, const char *name, char key_r[TALAS_APIKEY_TEXT_LEN + 1]);

/* Revokes API key KEY (its text, LEN bytes) of NAME. Returns 0, or
 * MDB_NOTFOUND when NAME has no such key (a key of another account is not
 * touched), or an LMDB error. */
int talas_apikey_revoke(struct talas_storage *st, const char *name, const char *key, size_t len);

/* The account whose API key is KEY (LEN bytes of text), in TXN's view,
 * into USER_R. Returns 0, MDB_NOTFOUND (unknown or malformed key), -1 for
 * a damaged record, or an LMDB error. */
int talas_apikey_user(struct talas_storage *st, MDB_txn *txn, const char *key, size_t len,
                      char user_r[TALAS_ACCOUNT_NAME_MAX + 1]);

#endif
