/*
 * ctl_accounts.c - talasctl users add|rm|passwd|apikey: the accounts that
 * Subsonic apps log in with (store/accounts.h).
 *
 *   users add NAME                     a new account; its password from stdin
 *   users passwd NAME                  a new password, from stdin
 *   users rm NAME                      the account and its API keys
 *   users apikey NAME                  prints a new API key (shown once)
 *   users apikey NAME --revoke KEY     revokes one
 *
 * Entry point (talasctl.h): talasctl_cmd_accounts, called by ctl_users.c
 * for these subcommands. The password is the first line of stdin (without
 * its line end), read with echo off when stdin is a terminal; it is sealed
 * under subsonic.password_key_file. Each change is one short write
 * transaction, so the master and its workers keep serving: a worker sees
 * it at its next request. Errors on stderr, exit 1; usage errors exit 2.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "core/json.h"
#include "ctl/talasctl.h"
#include "store/accounts.h"
#include "store/storage.h"

/* The password, the first line of stdin, into BUF; its length in *len_r.
 * 0, or -1 (said why). */
static int read_password(char *buf, size_t cap, size_t *len_r)
{
    struct termios old, quiet;
    int tty = isatty(STDIN_FILENO), echo_off = 0;
    size_t len;

    if (tty && tcgetattr(STDIN_FILENO, &old) == 0) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        echo_off = tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
        fprintf(stderr, "Password: ");
    }
    if (fgets(buf, (int)cap, stdin) == NULL)
        buf[0] = '\0';
    if (echo_off) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fprintf(stderr, "\n");
    }
    len = strlen(buf);
    if (len > 0 && buf[len - 1] != '\n' && !feof(stdin)) {
        fprintf(stderr, "talasctl: a password is at most %d bytes\n", TALAS_ACCOUNT_PASSWORD_MAX);
        return -1;
    }
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        buf[--len] = '\0';
    if (len == 0) {
        fprintf(stderr, "talasctl: no password on stdin\n");
        return -1;
    }
    *len_r = len;
    return 0;
}

/* {"user": NAME, KEY: true or the string VALUE, "apikeys_removed": N}
 * on stdout (VALUE NULL: true; N < 0: left out) */
static void print_json(const char *name, const char *key, const char *value, long long n)
{
    struct talas_buf out = {0};
    struct talas_json json;

    talas_json_init(&json, &out);
    talas_json_object_begin(&json);
    talas_json_key(&json, "user");
    talas_json_string(&json, name);
    talas_json_key(&json, key);
    if (value != NULL)
        talas_json_string(&json, value);
    else
        talas_json_bool(&json, 1);
    if (n >= 0) {
        talas_json_key(&json, "apikeys_removed");
        talas_json_uint(&json, (uint64_t)n);
    }
    talas_json_object_end(&json);
    printf("%.*s\n", (int)out.len, out.data);
    OPENSSL_cleanse(out.data, out.len);
    talas_buf_free(&out);
}

static int failed(const char *what, const char *name, int rc)
{
    fprintf(stderr, "talasctl: %s \"%s\" failed: %s\n", what, name,
            rc == -1 ? "the password could not be sealed" : mdb_strerror(rc));
    return TALASCTL_FAILURE;
}

/* users add NAME, users passwd NAME */
static int cmd_put(const struct talas_config *conf, const char *name, enum talas_account_put_mode mode)
{
    char password[TALAS_ACCOUNT_PASSWORD_MAX + 3];
    struct talas_account_key key;
    struct talas_storage *st;
    const char *problem;
    char *error;
    size_t len = 0;
    int rc;

    if (conf->subsonic_password_key_file == NULL) {
        fprintf(stderr, "talasctl: subsonic.password_key_file is not set in the configuration: passwords are "
                        "sealed with it\n");
        return TALASCTL_FAILURE;
    }
    if (talas_account_key_load(conf->subsonic_password_key_file, &key, &error) != 0) {
        fprintf(stderr, "talasctl: %s\n", error);
        free(error);
        return TALASCTL_FAILURE;
    }
    rc = read_password(password, sizeof(password), &len);
    if (rc == 0 && (problem = talas_account_password_problem(password, len)) != NULL) {
        fprintf(stderr, "talasctl: %s\n", problem);
        rc = -1;
    }
    if (rc != 0) {
        OPENSSL_cleanse(password, sizeof(password));
        OPENSSL_cleanse(&key, sizeof(key));
        return TALASCTL_FAILURE;
    }
    st = talasctl_open_storage(conf);
    rc = talas_account_put(st, &key, name, password, len, mode);
    talas_storage_close(st);
    OPENSSL_cleanse(password, sizeof(password));
    OPENSSL_cleanse(&key, sizeof(key));
    if (rc == EEXIST) {
        fprintf(stderr, "talasctl: user \"%s\" exists (talasctl users passwd %s changes the password)\n",
                name, name);
        return TALASCTL_FAILURE;
    }
    if (rc == MDB_NOTFOUND) {
        fprintf(stderr, "talasctl: no user \"%s\"\n", name);
        return TALASCTL_FAILURE;
    }
    if (rc != 0)
        return failed(mode == TALAS_ACCOUNT_CREATE ? "adding" : "changing the password of", name, rc);
    if (talasctl_json)
        print_json(name, mode == TALAS_ACCOUNT_CREATE ? "added" : "changed", NULL, -1);
    else
        printf("%s: %s\n", name, mode == TALAS_ACCOUNT_CREATE ? "added" : "password changed");
    return TALASCTL_OK;
}

/* users rm NAME */
static int cmd_rm(const struct talas_config *conf, const char *name)
{
    struct talas_storage *st = talasctl_open_storage(conf);
    uint64_t keys = 0;
    int rc;

    rc = talas_account_del(st, name, &keys);
    talas_storage_close(st);
    if (rc == MDB_NOTFOUND) {
        fprintf(stderr, "talasctl: no user \"%s\"\n", name);
        return TALASCTL_FAILURE;
    }
    if (rc != 0)
        return failed("removing", name, rc);
    if (talasctl_json)
        print_json(name, "removed", NULL, (long long)keys);
    else
        printf("%s: removed, with %llu API key(s)\n", name, (unsigned long long)keys);
    return TALASCTL_OK;
}

/* users apikey NAME [--revoke KEY] */
static int cmd_apikey(const struct talas_config *conf, const char *name, const char *revoke)
{
    struct talas_storage *st = talasctl_open_storage(conf);
    char key[TALAS_APIKEY_TEXT_LEN + 1];
    int rc;

    if (revoke != NULL)
        rc = talas_apikey_revoke(st, name, revoke, strlen(revoke));
    else
        rc = talas_apikey_create(st, name, key);
    talas_storage_close(st);
    if (rc == MDB_NOTFOUND) {
        if (revoke != NULL)
            fprintf(stderr, "talasctl: user \"%s\" has no such API key\n", name);
        else
            fprintf(stderr, "talasctl: no user \"%s\"\n", name);
        return TALASCTL_FAILURE;
    }
    if (rc != 0)
        return failed(revoke != NULL ? "revoking an API key of" : "making an API key for", name, rc);
    if (revoke != NULL && talasctl_json)
        print_json(name, "revoked", NULL, -1);
    else if (revoke != NULL)
        printf("%s: API key revoked\n", name);
    else if (talasctl_json)
        print_json(name, "apikey", key, -1);
    else
        printf("%s\n", key);
    OPENSSL_cleanse(key, sizeof(key));
    return TALASCTL_OK;
}

int talasctl_cmd_accounts(const struct talas_config *conf, char **args, int nargs, const char *revoke)
{
    const char *problem;

    if (nargs != 2 || (revoke != NULL && strcmp(args[0], "apikey") != 0)) {
        talasctl_usage(stderr, "users");
        return TALASCTL_USAGE;
    }
    if ((problem = talas_account_name_problem(args[1])) != NULL) {
        fprintf(stderr, "talasctl: NAME: %s\n", problem);
        return TALASCTL_USAGE;
    }
    if (strcmp(args[0], "add") == 0)
        return cmd_put(conf, args[1], TALAS_ACCOUNT_CREATE);
    if (strcmp(args[0], "passwd") == 0)
        return cmd_put(conf, args[1], TALAS_ACCOUNT_REPLACE);
    if (strcmp(args[0], "rm") == 0)
        return cmd_rm(conf, args[1]);
    return cmd_apikey(conf, args[1], revoke);
}
