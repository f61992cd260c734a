/*
 * ctl_sign.c - talasctl sign: mints a signed media URL with the server's
 * own key files (core/token.h): the URL on stdout, its expiry on stderr
 * (both in one JSON document with --json). It needs read access to the key
 * files, and works whether auth.required is on or not, so URLs can be
 * tried before it is; the track is looked up in the storage, so the master
 * need not run.
 *
 * Entry points (talasctl.h): talasctl_cmd_sign, and the parsers of its
 * options, talasctl_sign_parse_ttl and talasctl_sign_parse_kind.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/json.h"
#include "ctl/talasctl.h"
#include "store/catalog.h"
#include "store/storage.h"

/* NULL when the key tokens are signed with can sign; else why not. The
 * choice is talas_token_mint_url's (token.h): the main key, else the first of
 * auth.keys. Checked before the key files are read, so that a verify-only
 * setup says so plainly. */
static char *signer_problem(const struct talas_config *conf)
{
    const struct talas_config_key *k = &conf->auth_key;
    const char *where = "auth";

    if (k->secret_file == NULL && k->public_key_file == NULL && k->private_key_file == NULL) {
        if (conf->auth_key_count == 0)
            return xasprintf("no key is configured: set auth.secret_file (HS256, HS384, HS512), or "
                             "auth.public_key_file and auth.private_key_file (RS256, ES256)");
        k = &conf->auth_keys[0];
        where = "auth.keys[0]";
    }
    if (k->algorithm >= TALAS_JWT_RS256 && k->private_key_file == NULL)
        return xasprintf("the signing key (%s%s%s, %s) has no private_key_file: it can verify tokens "
                         "but not sign them; set %s.private_key_file",
                         where, k->kid ? ", kid " : "", k->kid ? k->kid : "",
                         k->algorithm == TALAS_JWT_RS256 ? "RS256" : "ES256", where);
    if (k->algorithm <= TALAS_JWT_HS512 && k->secret_file == NULL)
        return xasprintf("the signing key (%s) has no secret_file", where);
    return NULL;
}

int talasctl_cmd_sign(const struct talas_config *conf, const char *track, const struct talasctl_sign_opts *o)
{
    struct talas_token *auth;
    struct talas_storage *st;
    struct talas_track t;
    MDB_txn *txn;
    char *error, *url, when[32];
    time_t exp;
    int rc;

    if (!talas_track_id_valid(track, strlen(track))) {
        fprintf(stderr,
                "talasctl: no such track: \"%s\" is not a track id (16 characters of A-Z a-z 0-9 - _)\n",
                track);
        return 1;
    }
    if ((error = signer_problem(conf)) != NULL) {
        fprintf(stderr, "talasctl: cannot sign: %s: %s\n", conf->file, error);
        free(error);
        return 1;
    }
    if (talas_token_create(conf, &auth, &error) != 0) {
        fprintf(stderr, "talasctl: cannot sign: %s\n", error);
        if (strstr(error, strerror(EACCES)) != NULL)
            fprintf(stderr, "talasctl: sign reads the key files: run it as a user that may read them\n");
        free(error);
        return 1;
    }

    st = talasctl_open_storage(conf);
    if ((rc = talas_storage_read_begin(st, &txn)) != 0) {
        fprintf(stderr, "talasctl: mdb_txn_begin() failed: %s\n", mdb_strerror(rc));
        talas_storage_close(st);
        talas_token_free(auth);
        return 1;
    }
    rc = talas_catalog_resolve(st, txn, track, &t);
    if (rc == MDB_NOTFOUND)
        fprintf(stderr, "talasctl: no such track: %s (talasctl tracks lists them)\n", track);
    else if (rc == -1)
        fprintf(stderr, "talasctl: the catalog record of %s is damaged; run talasctl scan\n", track);
    else if (rc != 0)
        fprintf(stderr, "talasctl: reading the catalog failed: %s\n", mdb_strerror(rc));
    else if (t.error != NULL)
        fprintf(stderr, "talasctl: no such track: %s is a file that cannot be played (%s: %s)\n", track,
                t.path, t.error);
    mdb_txn_abort(txn);
    talas_storage_close(st);
    if (rc != 0 || t.error != NULL) {
        talas_token_free(auth);
        return 1;
    }

    rc = talas_token_mint_url(auth, track, o->user, o->kind, o->ttl_s, &url, &exp, &error);
    talas_token_free(auth);
    if (rc != 0) {
        fprintf(stderr, "talasctl: cannot sign: %s\n", error);
        free(error);
        return 1;
    }
    talas_token_format_time(exp, when);
    if (talasctl_json) {
        struct talas_buf out = {0};
        struct talas_json json;
        talas_json_init(&json, &out);
        talas_json_object_begin(&json);
        /* the names and formats of POST /api/stream-url's answer */
        talas_json_key(&json, "url_signed");
        talas_json_string(&json, url);
        talas_json_key(&json, "track_id");
        talas_json_string(&json, track);
        talas_json_key(&json, "kind");
        talas_json_string(&json, talas_token_kind_name(o->kind));
        talas_json_key(&json, "user");
        if (o->user != NULL)
            talas_json_string(&json, o->user);
        else
            talas_json_null(&json);
        talas_json_key(&json, "expires_at");
        talas_json_string(&json, when);
        talas_json_object_end(&json);
        printf("%.*s\n", (int)out.len, out.data);
        talas_buf_free(&out);
    } else {
        printf("%s\n", url);
    }
    free(url);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "talasctl: writing to standard output failed: %s\n", strerror(errno));
        return 1;
    }
    if (!talasctl_json)
        fprintf(stderr, "expires: %s\n", when);
    return 0;
}

/* SECONDS: decimal digits, at most 9 of them (auth.max_ttl is at most a
 * day: talas_token_mint_url refuses more, with the limit in its message). */
int talasctl_sign_parse_ttl(const char *s, uint64_t *v_r)
{
    uint64_t v = 0;

    if (*s == '\0' || strspn(s, "0123456789") != strlen(s) || strlen(s) > 9)
        return -1;
    for (; *s; s++)
        v = v * 10 + (uint64_t)(*s - '0');
    *v_r = v;
    return 0;
}

int talasctl_sign_parse_kind(const char *s, enum talas_token_kind *kind_r)
{
    if (strcmp(s, "stream") == 0)
        *kind_r = TALAS_TOKEN_STREAM;
    else if (strcmp(s, "preview") == 0)
        *kind_r = TALAS_TOKEN_PREVIEW;
    else if (strcmp(s, "hls") == 0)
        *kind_r = TALAS_TOKEN_HLS;
    else
        return -1;
    return 0;
}
