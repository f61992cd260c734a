/*
 * test_token.c - JWT verification and minting of src/core/token.c, with
 * real keys: an HMAC secret, an RSA 2048 and an EC P-256 key pair made with
 * OpenSSL's API into a temporary directory, named by a configuration
 * loaded with talas_config_load_string.
 *
 * Minted URLs verify for their track and kind and nothing else; tokens
 * forged with libjwt (or by hand where libjwt will not make them) check the
 * algorithm pinning (HS256 keyed with the RSA public key's PEM, which
 * libjwt alone accepts, PLATFORM.md), "alg": "none", exp, nbf and leeway,
 * iss, aud, the ip binding, kid selection among several keys; and the
 * backend key's Bearer check. Key files that are wrong are refused by
 * talas_token_create.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "core/config.h"
#include "core/token.h"
#include "core/util.h"
#include "store/catalog.h"
#include "tmpdir.h"

#define SECRET "0123456789abcdef0123456789abcdef-main"
#define SECRET_OLD "fedcba9876543210fedcba9876543210-old"
#define BACKEND_KEY "backend-key-0123456789"

static char *dir;
static char track[TALAS_TRACK_ID_LEN + 1], other_track[TALAS_TRACK_ID_LEN + 1];
/* the PEM files' contents, for forging */
static char *rsa_pub_pem, *rsa_priv_pem, *ec_priv_pem;

/* ------------------------------------------------------------ set-up */

static char *path_of(const char *name)
{
    return xasprintf("%s/%s", dir, name);
}

static void write_file(const char *name, const void *data, size_t len)
{
    char *path = path_of(name);
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    free(path);
}

static char *read_file(const char *name)
{
    char *path = path_of(name), *data;
    FILE *f = fopen(path, "r");
    long n;

    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    data = xmalloc((size_t)n + 1);
    assert_int_equal(fread(data, 1, (size_t)n, f), (size_t)n);
    data[n] = '\0';
    fclose(f);
    free(path);
    return data;
}

/* Writes a fresh key pair as NAME.key (PKCS#8) and NAME.pub. */
static void write_key_pair(EVP_PKEY *pkey, const char *name)
{
    char *priv = xasprintf("%s/%s.key", dir, name), *pub = xasprintf("%s/%s.pub", dir, name);
    FILE *f;

    assert_non_null(pkey);
    assert_non_null(f = fopen(priv, "w"));
    assert_int_equal(PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
    assert_non_null(f = fopen(pub, "w"));
    assert_int_equal(PEM_write_PUBKEY(f, pkey), 1);
    fclose(f);
    EVP_PKEY_free(pkey);
    free(priv);
    free(pub);
}

static int group_setup(void **state)
{
    dir = test_tmpdir("token");
    if (dir == NULL)
        return -1;
    /* written as an operator would: echo SECRET > file */
    write_file("main.secret", SECRET "\n", strlen(SECRET) + 1);
    write_file("old.secret", SECRET_OLD, strlen(SECRET_OLD));
    write_file("short.secret", "0123456789abcdef0123456789abcde", 31);
    write_file("backend.key", BACKEND_KEY "\n", strlen(BACKEND_KEY) + 1);
    write_key_pair(EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048), "rsa");
    write_key_pair(EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048), "rsa2");
    write_key_pair(EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024), "rsa1024");
    write_key_pair(EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"), "ec");
    write_key_pair(EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384"), "ec384");
    rsa_pub_pem = read_file("rsa.pub");
    rsa_priv_pem = read_file("rsa.key");
    ec_priv_pem = read_file("ec.key");
    talas_track_id_make("music", "/music/a.flac", track);
    talas_track_id_make("music", "/music/b.flac", other_track);
    return 0;
}

static int group_teardown(void **state)
{
    free(rsa_pub_pem);
    free(rsa_priv_pem);
    free(ec_priv_pem);
    test_rm_rf(dir);
    free(dir);
    return 0;
}

struct fixture {
    struct talas_config *conf;
    struct talas_token *auth;
};

/*
 * The one place a test builds its verifier: a configuration whose auth
 * section is AUTH (YAML, "%s" standing for the key directory), loaded and
 * handed to talas_token_create.
 */
static void fx_init(struct fixture *fx, const char *auth)
{
    char *text, *error = NULL, *section;

    section = xasprintf(auth, dir, dir, dir, dir, dir, dir);
    text = xasprintf("listen:\n  - port: 8082\nlibrary:\n  paths: [/nonexistent/music]\nstorage:\n"
                     "  path: /nonexistent/talas.lmdb\nhttp:\n  public_url: https://media.example\n%s",
                     section);
    if (talas_config_load_string("t.yaml", text, strlen(text), &fx->conf, &error) != 0)
        fail_msg("talas_config_load_string: %s\n%s", error, text);
    if (talas_token_create(fx->conf, &fx->auth, &error) != 0)
        fail_msg("talas_token_create: %s", error);
    free(text);
    free(section);
}

static void fx_done(struct fixture *fx)
{
    talas_token_free(fx->auth);
    talas_config_free(fx->conf);
}

/* talas_token_create's error for AUTH, or NULL. */
static char *create_error(const char *auth)
{
    struct talas_config *conf;
    struct talas_token *tok = NULL;
    char *text, *section, *error = NULL;

    section = xasprintf(auth, dir, dir, dir);
    text = xasprintf("listen:\n  - port: 8082\nlibrary:\n  paths: [/nonexistent/music]\nstorage:\n"
                     "  path: /nonexistent/talas.lmdb\n%s",
                     section);
    if (talas_config_load_string("t.yaml", text, strlen(text), &conf, &error) != 0)
        fail_msg("talas_config_load_string: %s", error);
    if (talas_token_create(conf, &tok, &error) == 0) {
        talas_token_free(tok);
        error = NULL;
    } else {
        assert_non_null(error);
    }
    talas_config_free(conf);
    free(text);
    free(section);
    return error;
}

/* AUTH must be refused with an error that says PART. */
static void assert_create_error(const char *auth, const char *part)
{
    char *e = create_error(auth);

    if (e == NULL)
        fail_msg("no error for %s", auth);
    if (strstr(e, part) == NULL)
        fail_msg("\"%s\" does not say \"%s\"", e, part);
    free(e);
}

#define HS256_MAIN "auth:\n  secret_file: %s/main.secret\n"
#define RS256_MAIN                                                                                           \
    "auth:\n  algorithm: RS256\n  public_key_file: %s/rsa.pub\n  private_key_file: %s/rsa.key\n"
#define ES256_MAIN "auth:\n  algorithm: ES256\n  public_key_file: %s/ec.pub\n  private_key_file: %s/ec.key\n"

/* ------------------------------------------------------------ tokens */

/* The token of a minted URL (malloc'd). */
static char *mint(struct fixture *fx, const char *id, const char *sub, enum talas_token_kind kind,
                  uint64_t ttl, const char *want_prefix)
{
    char *url = NULL, *error = NULL, *prefix = xasprintf("https://media.example%s", want_prefix), *token;
    time_t exp = 0, now = time(NULL);

    if (talas_token_mint_url(fx->auth, id, sub, kind, ttl, &url, &exp, &error) != 0)
        fail_msg("talas_token_mint_url: %s", error);
    assert_true(strncmp(url, prefix, strlen(prefix)) == 0);
    assert_true(exp >= now + (time_t)(ttl ? ttl : 300) && exp <= now + (time_t)(ttl ? ttl : 300) + 2);
    token = xstrdup(url + strlen(prefix));
    free(url);
    free(prefix);
    return token;
}

static enum talas_token_result verify(struct fixture *fx, const char *token, const char *id,
                                      enum talas_token_kind kind, const char *ip, const char **reason_r)
{
    return talas_token_verify(fx->auth, token, strlen(token), id, kind, ip, NULL, reason_r);
}

static void assert_verdict(struct fixture *fx, const char *token, const char *id, enum talas_token_kind kind,
                           const char *ip, enum talas_token_result want, const char *reason_part)
{
    const char *reason = NULL;
    enum talas_token_result got = verify(fx, token, id, kind, ip, &reason);

    if (got != want)
        fail_msg("verdict %d, wanted %d (%s)", got, want, reason ? reason : "no reason");
    if (reason_part != NULL && (reason == NULL || strstr(reason, reason_part) == NULL))
        fail_msg("reason \"%s\" does not say \"%s\"", reason ? reason : "(none)", reason_part);
}

/* A token forged with libjwt: claims as JSON, header kid (may be NULL). */
static char *forge(jwt_alg_t alg, const void *key, size_t key_len, const char *kid, const char *claims)
{
    jwt_t *jwt;
    char *token;

    assert_int_equal(jwt_new(&jwt), 0);
    assert_int_equal(jwt_add_grants_json(jwt, claims), 0);
    if (kid != NULL)
        assert_int_equal(jwt_add_header(jwt, "kid", kid), 0);
    assert_int_equal(jwt_set_alg(jwt, alg, key, (int)key_len), 0);
    assert_non_null(token = jwt_encode_str(jwt));
    jwt_free(jwt);
    return token;
}

/* Claims for TRACK valid from now for TTL seconds, with EXTRA members. */
static char *claims(long exp_from_now, const char *extra)
{
    return xasprintf("{\"exp\":%ld,\"track\":\"%s\"%s%s}", (long)time(NULL) + exp_from_now, track,
                     *extra ? "," : "", extra);
}

static char *forge_hs(const char *secret, const char *kid, long exp_from_now, const char *extra)
{
    char *c = claims(exp_from_now, extra), *t = forge(JWT_ALG_HS256, secret, strlen(secret), kid, c);

    free(c);
    return t;
}

static char *b64url(const char *s)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t n = strlen(s), o = 0;
    char *out = xmalloc(n * 4 / 3 + 4);

    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)(unsigned char)s[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)(unsigned char)s[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)s[i + 2];
        out[o++] = abc[v >> 18 & 63];
        out[o++] = abc[v >> 12 & 63];
        if (i + 1 < n)
            out[o++] = abc[v >> 6 & 63];
        if (i + 2 < n)
            out[o++] = abc[v & 63];
    }
    out[o] = '\0';
    return out;
}

/* HEADER.CLAIMS.SIGNATURE, the first two base64url-encoded here. */
static char *by_hand(const char *header, const char *claims_json, const char *signature)
{
    char *h = b64url(header), *c = b64url(claims_json), *t = xasprintf("%s.%s.%s", h, c, signature);

    free(h);
    free(c);
    return t;
}

/* --------------------------------------------------------------- tests */

static void test_minted_urls_verify_for_their_track_and_kind(void **state)
{
    struct talas_token_claims cl;
    struct fixture fx;
    const char *reason;
    char *stream, *preview, *hls, *prefix;

    fx_init(&fx, HS256_MAIN);
    prefix = xasprintf("/stream/%s?token=", track);
    stream = mint(&fx, track, "user-7", TALAS_TOKEN_STREAM, 60, prefix);
    free(prefix);
    prefix = xasprintf("/preview/%s?token=", track);
    preview = mint(&fx, track, NULL, TALAS_TOKEN_PREVIEW, 0, prefix);
    free(prefix);
    prefix = xasprintf("/hls/%s/master.m3u8?token=", track);
    hls = mint(&fx, track, NULL, TALAS_TOKEN_HLS, 0, prefix);
    free(prefix);

    memset(&cl, 0, sizeof(cl));
    assert_int_equal(talas_token_verify(fx.auth, stream, strlen(stream), track, TALAS_TOKEN_STREAM,
                                        "10.0.0.1", &cl, &reason),
                     TALAS_TOKEN_OK);
    assert_string_equal(cl.track, track);
    assert_string_equal(cl.sub, "user-7");
    assert_int_equal(cl.kinds, TALAS_TOKEN_STREAM);
    assert_true(cl.exp > time(NULL) + 55 && cl.exp <= time(NULL) + 60);
    /* again, from the cache: the per-request checks still apply */
    assert_verdict(&fx, stream, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_OK, NULL);
    assert_verdict(&fx, stream, other_track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_FORBIDDEN,
                   "another track");
    {
        /* one character apart */
        char near[TALAS_TRACK_ID_LEN + 1];
        memcpy(near, track, sizeof(near));
        near[TALAS_TRACK_ID_LEN - 1] = near[TALAS_TRACK_ID_LEN - 1] == 'a' ? 'b' : 'a';
        assert_verdict(&fx, stream, near, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_FORBIDDEN, "another track");
    }
    assert_verdict(&fx, stream, track, TALAS_TOKEN_PREVIEW, NULL, TALAS_TOKEN_FORBIDDEN, "scope");
    assert_verdict(&fx, stream, track, TALAS_TOKEN_HLS, NULL, TALAS_TOKEN_FORBIDDEN, "scope");
    assert_verdict(&fx, preview, track, TALAS_TOKEN_PREVIEW, NULL, TALAS_TOKEN_OK, NULL);
    assert_verdict(&fx, preview, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_FORBIDDEN, "scope");
    assert_verdict(&fx, preview, other_track, TALAS_TOKEN_PREVIEW, NULL, TALAS_TOKEN_FORBIDDEN,
                   "another track");
    assert_verdict(&fx, hls, track, TALAS_TOKEN_HLS, NULL, TALAS_TOKEN_OK, NULL);
    assert_verdict(&fx, hls, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_FORBIDDEN, "scope");

    /* a byte changed in the signature, the claims or the header */
    stream[strlen(stream) - 2] = stream[strlen(stream) - 2] == 'A' ? 'B' : 'A';
    assert_verdict(&fx, stream, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_INVALID, "signature");
    assert_verdict(&fx, "", track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_MISSING, NULL);
    assert_verdict(&fx, "a.b", track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_INVALID, "three parts");
    assert_verdict(&fx, "a.b.c.d", track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_INVALID, "three parts");
    assert_verdict(&fx, "a b.c.d", track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_INVALID, "base64url");

    /* minting refuses what it cannot sign */
    {
        char *url, *error = NULL;
        time_t exp;
        assert_int_equal(
            talas_token_mint_url(fx.auth, "not-a-track", NULL, TALAS_TOKEN_STREAM, 0, &url, &exp, &error),
            -1);
        free(error);
        assert_int_equal(
            talas_token_mint_url(fx.auth, track, NULL, TALAS_TOKEN_STREAM, 2 * 86400, &url, &exp, &error),
            -1);
        assert_non_null(strstr(error, "max_ttl"));
        free(error);
    }
    free(stream);
    free(preview);
    free(hls);
    fx_done(&fx);
}

/* Every kind of key signs what verifies, and refuses what another key
 * signed. */
static void test_rs256_and_es256(void **state)
{
    struct fixture rs, es;
    char *prefix = xasprintf("/stream/%s?token=", track), *t_rs, *t_es, *c;
    char *rsa2 = read_file("rsa2.key");

    fx_init(&rs, RS256_MAIN);
    fx_init(&es, ES256_MAIN);
    t_rs = mint(&rs, track, NULL, TALAS_TOKEN_STREAM, 0, prefix);
    t_es = mint(&es, track, NULL, TALAS_TOKEN_STREAM, 0, prefix);
    assert_verdict(&rs, t_rs, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_OK, NULL);
    assert_verdict(&es, t_es, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_OK, NULL);
    /* the other's token names the other algorithm */
    assert_verdict(&rs, t_es, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_INVALID, "algorithm");
    assert_verdict(&es, t_rs, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_INVALID, "algorithm");
    free(t_rs);
    /* RS256 with another RSA key */
    c = claims(300, "");
    t_rs = forge(JWT_ALG_RS256, rsa2, strlen(rsa2), NULL, c);
    assert_verdict(&rs, t_rs, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_INVALID, "signature");
    free(t_rs);
    free(t_es);
    free(c);
    free(rsa2);
    free(prefix);
    fx_done(&rs);
    fx_done(&es);
}

/* Algorithm confusion: an HS256 token keyed with the RSA public key's PEM.
 * libjwt alone accepts it (the premise, checked here); Talas must not. */
static void test_algorithm_pinning(void **state)
{
    struct fixture fx;
    char *c = claims(300, ""), *t = forge(JWT_ALG_HS256, rsa_pub_pem, strlen(rsa_pub_pem), NULL, c), *t384;
    jwt_t *jwt = NULL;

    assert_int_equal(jwt_decode(&jwt, t, (const unsigned char *)rsa_pub_pem, (int)strlen(rsa_pub_pem)), 0);
    assert_int_equal(jwt_get_alg(jwt), JWT_ALG_HS256);
    jwt_free(jwt);

    fx_init(&fx, RS256_MAIN);
    assert_verdict(&fx, t, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_INVALID, "algorithm");
    fx_done(&fx);

    /* an HS384 token with the right secret, for an HS256 key */
    t384 = forge(JWT_ALG_HS384, SECRET, strlen(SECRET), NULL, c);
    fx_init(&fx, HS256_MAIN);
    assert_verdict(&fx, t384, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_INVALID, "algorithm");
    fx_done(&fx);
    free(t);
    free(t384);
    free(c);
}

static void test_alg_none(void **state)
{
    struct fixture fx;
    char *c = claims(300, ""), *unsigned_none, *signed_none, *none_lower;

    unsigned_none = by_hand("{\"alg\":\"none\",\"typ\":\"JWT\"}", c, "");
    signed_none = by_hand("{\"alg\":\"none\",\"typ\":\"JWT\"}", c, "c2lnbmF0dXJl");
    none_lower = by_hand("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", c, "");
    fx_init(&fx, HS256_MAIN);
    assert_verdict(&fx, unsigned_none, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_INVALID, "unsigned");
    assert_verdict(&fx, signed_none, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_INVALID, "algorithm");
    assert_verdict(&fx, none_lower, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_INVALID, "unsigned");
    fx_done(&fx);
    fx_init(&fx, RS256_MAIN);
    assert_verdict(&fx, unsigned_none, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_INVALID, "unsigned");
    assert_verdict(&fx, signed_none, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_INVALID, "algorithm");
    fx_done(&fx);
    free(unsigned_none);
    free(signed_none);
    free(none_lower);
    free(c);
}

/* exp is required and checked with auth.leeway; nbf likewise. */
static void test_expiry(void **state)
{
    struct fixture strict, lenient;
    char *t;

    fx_init(&strict, HS256_MAIN "  leeway: 0s\n");
    fx_init(&lenient, HS256_MAIN "  leeway: 30s\n");

    t = forge_hs(SECRET, NULL, -5, "");
    assert_verdict(&strict, t, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_INVALID, "expired");
    assert_verdict(&lenient, t, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_OK, NULL);
    free(t);
    t = forge_hs(SECRET, NULL, -60, "");
    assert_verdict(&lenient, t, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_INVALID, "expired");
    /* once more: an expired token is not remembered as good */
    assert_verdict(&lenient, t, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_INVALID, "expired");
    free(t);
    t = forge_hs(SECRET, NULL, 5, "");
    assert_verdict(&strict, t, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_OK, NULL);
    free(t);

    /* no exp, or one that is not an integer */
    {
        char *c = xasprintf("{\"track\":\"%s\"}", track);
        t = forge(JWT_ALG_HS256, SECRET, strlen(SECRET), NULL, c);
        assert_verdict(&strict, t, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_INVALID, "no exp");
        free(t);
        free(c);
        c = xasprintf("{\"exp\":\"%ld\",\"track\":\"%s\"}", (long)time(NULL) + 300, track);
        t = forge(JWT_ALG_HS256, SECRET, strlen(SECRET), NULL, c);
        assert_verdict(&strict, t, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_INVALID, "exp");
        free(t);
        free(c);
    }
    /* not yet valid */
    {
        char *extra = xasprintf("\"nbf\":%ld", (long)time(NULL) + 20);
        t = forge_hs(SECRET, NULL, 300, extra);
        assert_verdict(&strict, t, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_INVALID, "nbf");
        assert_verdict(&lenient, t, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_OK, NULL);
        free(t);
        free(extra);
    }
    fx_done(&strict);
    fx_done(&lenient);
}

/* track and scope claims against the request; ip binding. */
static void test_claims(void **state)
{
    struct fixture fx;
    char *t, *c;

    fx_init(&fx, HS256_MAIN);
    t = forge_hs(SECRET, NULL, 300, "\"scope\":\"stream hls other\"");
    assert_verdict(&fx, t, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_OK, NULL);
    assert_verdict(&fx, t, track, TALAS_TOKEN_HLS, NULL, TALAS_TOKEN_OK, NULL);
    assert_verdict(&fx, t, track, TALAS_TOKEN_PREVIEW, NULL, TALAS_TOKEN_FORBIDDEN, "scope");
    free(t);
    t = forge_hs(SECRET, NULL, 300, "\"scope\":\"streaming\"");
    assert_verdict(&fx, t, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_FORBIDDEN, "scope");
    free(t);
    /* no scope: everything */
    t = forge_hs(SECRET, NULL, 300, "");
    assert_verdict(&fx, t, track, TALAS_TOKEN_PREVIEW, NULL, TALAS_TOKEN_OK, NULL);
    free(t);
    /* no track claim: no media */
    c = xasprintf("{\"exp\":%ld}", (long)time(NULL) + 300);
    t = forge(JWT_ALG_HS256, SECRET, strlen(SECRET), NULL, c);
    assert_verdict(&fx, t, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_FORBIDDEN, "no track");
    assert_verdict(&fx, t, NULL, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_OK, NULL);
    free(t);
    free(c);
    /* bound to an address */
    t = forge_hs(SECRET, NULL, 300, "\"ip\":\"192.0.2.1\"");
    assert_verdict(&fx, t, track, TALAS_TOKEN_STREAM, "192.0.2.1", TALAS_TOKEN_OK, NULL);
    assert_verdict(&fx, t, track, TALAS_TOKEN_STREAM, "::ffff:192.0.2.1", TALAS_TOKEN_OK, NULL);
    assert_verdict(&fx, t, track, TALAS_TOKEN_STREAM, "192.0.2.2", TALAS_TOKEN_FORBIDDEN, "address");
    assert_verdict(&fx, t, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_FORBIDDEN, "address");
    free(t);
    t = forge_hs(SECRET, NULL, 300, "\"ip\":\"2001:db8::1\"");
    assert_verdict(&fx, t, track, TALAS_TOKEN_STREAM, "2001:db8::1", TALAS_TOKEN_OK, NULL);
    assert_verdict(&fx, t, track, TALAS_TOKEN_STREAM, "2001:db8::2", TALAS_TOKEN_FORBIDDEN, "address");
    free(t);
    t = forge_hs(SECRET, NULL, 300, "\"ip\":\"not an address\"");
    assert_verdict(&fx, t, track, TALAS_TOKEN_STREAM, "192.0.2.1", TALAS_TOKEN_INVALID, "ip");
    free(t);
    fx_done(&fx);
}

/* Share tokens (claims share, lid): minted here, good only where the
 * caller accepts them (TALAS_TOKEN_SHARE), for any track (the caller
 * checks the link); a share token naming a track or a user, or without
 * lid, is refused; owner must be true when present. */
static void test_share_tokens(void **state)
{
    static const char share[] = "ShAreIdShAreId12", lid[] = "LiStEnErLiStEn34";
    struct talas_token_claims cl;
    struct fixture fx;
    const char *reason;
    char *t, *c, *error = NULL;
    time_t exp;

    (void)state;
    fx_init(&fx, HS256_MAIN);
    assert_int_equal(talas_token_mint_share(fx.auth, share, lid, 60, &t, &exp, &error), 0);
    assert_true(exp > time(NULL) + 55 && exp <= time(NULL) + 60);
    assert_verdict(&fx, t, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_FORBIDDEN, "share token");
    assert_verdict(&fx, t, NULL, 0, NULL, TALAS_TOKEN_FORBIDDEN, "share token");
    memset(&cl, 0, sizeof(cl));
    assert_int_equal(talas_token_verify(fx.auth, t, strlen(t), other_track,
                                        TALAS_TOKEN_HLS | TALAS_TOKEN_SHARE | TALAS_TOKEN_ORIGINAL, NULL, &cl,
                                        &reason),
                     TALAS_TOKEN_OK);
    assert_string_equal(cl.share, share);
    assert_string_equal(cl.listener, lid);
    assert_string_equal(cl.track, "");
    assert_string_equal(cl.sub, "");
    free(t);
    /* forged shapes */
    c = xasprintf("{\"exp\":%ld,\"share\":\"%s\"}", (long)time(NULL) + 300, share);
    t = forge(JWT_ALG_HS256, SECRET, strlen(SECRET), NULL, c);
    assert_verdict(&fx, t, NULL, TALAS_TOKEN_SHARE, NULL, TALAS_TOKEN_INVALID, "lid");
    free(t);
    free(c);
    t = forge_hs(SECRET, NULL, 300, "\"share\":\"ShAreIdShAreId12\",\"lid\":\"LiStEnErLiStEn34\"");
    assert_verdict(&fx, t, track, TALAS_TOKEN_STREAM | TALAS_TOKEN_SHARE, NULL, TALAS_TOKEN_INVALID, "no track");
    free(t);
    t = forge_hs(SECRET, NULL, 300, "\"share\":\"x\"");
    assert_verdict(&fx, t, track, TALAS_TOKEN_STREAM | TALAS_TOKEN_SHARE, NULL, TALAS_TOKEN_INVALID, "share id");
    free(t);
    /* owner */
    t = forge_hs(SECRET, NULL, 300, "\"sub\":\"alice\",\"owner\":true");
    assert_int_equal(talas_token_verify(fx.auth, t, strlen(t), track, TALAS_TOKEN_STREAM, NULL, &cl, &reason),
                     TALAS_TOKEN_OK);
    assert_int_equal(cl.owner, 1);
    free(t);
    t = forge_hs(SECRET, NULL, 300, "\"sub\":\"alice\",\"owner\":\"yes\"");
    assert_verdict(&fx, t, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_INVALID, "owner");
    free(t);
    t = forge_hs(SECRET, NULL, 300, "\"sub\":\"alice\"");
    assert_int_equal(talas_token_verify(fx.auth, t, strlen(t), track, TALAS_TOKEN_STREAM, NULL, &cl, &reason),
                     TALAS_TOKEN_OK);
    assert_int_equal(cl.owner, 0);
    free(t);
    fx_done(&fx);
}

/* Room invites (claims room, scope "room"): minted here, good only where
 * the caller asks for one (TALAS_TOKEN_ROOM), and nothing else is good
 * there; an invite naming a user, or a room id of the wrong shape, is
 * refused. */
static void test_room_invites(void **state)
{
    static const char room[] = "0123456789abcdef01234567";
    struct talas_token_claims cl;
    struct fixture fx;
    const char *reason;
    char *t, *error = NULL;
    time_t exp;

    (void)state;
    fx_init(&fx, HS256_MAIN);
    assert_int_equal(talas_token_mint_room(fx.auth, room, 3600, &t, &exp, &error), 0);
    assert_true(exp > time(NULL) + 3595 && exp <= time(NULL) + 3600);
    memset(&cl, 0, sizeof(cl));
    assert_int_equal(talas_token_verify(fx.auth, t, strlen(t), NULL, TALAS_TOKEN_ROOM, NULL, &cl, &reason),
                     TALAS_TOKEN_OK);
    assert_string_equal(cl.room, room);
    assert_string_equal(cl.sub, "");
    /* not a user's token, nor a media token */
    assert_verdict(&fx, t, NULL, 0, NULL, TALAS_TOKEN_FORBIDDEN, "room invite");
    assert_verdict(&fx, t, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_FORBIDDEN, "room invite");
    free(t);
    /* a user's token is no invite */
    t = forge_hs(SECRET, NULL, 300, "\"sub\":\"alice\"");
    assert_verdict(&fx, t, NULL, TALAS_TOKEN_ROOM, NULL, TALAS_TOKEN_FORBIDDEN, "not a room invite");
    free(t);
    t = forge_hs(SECRET, NULL, 300, "\"room\":\"0123456789abcdef01234567\",\"sub\":\"alice\"");
    assert_verdict(&fx, t, NULL, TALAS_TOKEN_ROOM, NULL, TALAS_TOKEN_INVALID, "names no track, user");
    free(t);
    t = forge_hs(SECRET, NULL, 300, "\"room\":\"../etc\"");
    assert_verdict(&fx, t, NULL, TALAS_TOKEN_ROOM, NULL, TALAS_TOKEN_INVALID, "room id");
    free(t);
    {
        /* the shape of a minted invite, but expired */
        char *c = xasprintf("{\"exp\":%ld,\"room\":\"%s\",\"scope\":\"room\"}", (long)time(NULL) - 3600, room);
        t = forge(JWT_ALG_HS256, SECRET, strlen(SECRET), NULL, c);
        assert_verdict(&fx, t, NULL, TALAS_TOKEN_ROOM, NULL, TALAS_TOKEN_INVALID, "expired");
        free(t);
        free(c);
    }
    assert_int_equal(talas_token_mint_room(fx.auth, "nope", 60, &t, &exp, &error), -1);
    free(error);
    fx_done(&fx);
}

/* iss and aud when configured; an aud nobody asked for is refused. */
static void test_issuer_and_audience(void **state)
{
    struct fixture with, without;
    char *t, *prefix = xasprintf("/stream/%s?token=", track);

    fx_init(&with, HS256_MAIN "  issuer: https://platform.example\n  audience: talas\n");
    fx_init(&without, HS256_MAIN);

    /* minted tokens carry both */
    t = mint(&with, track, NULL, TALAS_TOKEN_STREAM, 0, prefix);
    assert_verdict(&with, t, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_OK, NULL);
    assert_verdict(&without, t, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_INVALID, "aud");
    free(t);

    t = forge_hs(SECRET, NULL, 300, "\"iss\":\"https://platform.example\",\"aud\":[\"other\",\"talas\"]");
    assert_verdict(&with, t, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_OK, NULL);
    free(t);
    t = forge_hs(SECRET, NULL, 300, "\"iss\":\"https://platform.example\",\"aud\":\"other\"");
    assert_verdict(&with, t, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_INVALID, "aud");
    free(t);
    t = forge_hs(SECRET, NULL, 300, "\"iss\":\"https://platform.example\",\"aud\":[\"other\"]");
    assert_verdict(&with, t, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_INVALID, "aud");
    free(t);
    t = forge_hs(SECRET, NULL, 300, "\"iss\":\"https://platform.example\"");
    assert_verdict(&with, t, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_INVALID, "aud");
    assert_verdict(&without, t, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_OK, NULL);
    free(t);
    t = forge_hs(SECRET, NULL, 300, "\"iss\":\"https://evil.example\",\"aud\":\"talas\"");
    assert_verdict(&with, t, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_INVALID, "iss");
    free(t);
    t = forge_hs(SECRET, NULL, 300, "\"aud\":\"talas\"");
    assert_verdict(&with, t, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_INVALID, "iss");
    free(t);
    free(prefix);
    fx_done(&with);
    fx_done(&without);
}

/* The header's kid picks the key; without kid, the main key when it has
 * none, or the only key. */
static void test_kid_selection(void **state)
{
    struct fixture fx, one;
    char *t, *c = claims(300, ""), *prefix = xasprintf("/stream/%s?token=", track);

    fx_init(&fx, "auth:\n  kid: new\n  secret_file: %s/main.secret\n  keys:\n"
                 "    - kid: old\n      secret_file: %s/old.secret\n"
                 "    - kid: ec\n      algorithm: ES256\n      public_key_file: %s/ec.pub\n");
    t = forge_hs(SECRET, "new", 300, "");
    assert_verdict(&fx, t, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_OK, NULL);
    free(t);
    t = forge_hs(SECRET_OLD, "old", 300, "");
    assert_verdict(&fx, t, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_OK, NULL);
    free(t);
    /* a kid with the other key's secret */
    t = forge_hs(SECRET_OLD, "new", 300, "");
    assert_verdict(&fx, t, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_INVALID, "signature");
    free(t);
    t = forge_hs(SECRET, "old", 300, "");
    assert_verdict(&fx, t, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_INVALID, "signature");
    free(t);
    t = forge(JWT_ALG_ES256, ec_priv_pem, strlen(ec_priv_pem), "ec", c);
    assert_verdict(&fx, t, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_OK, NULL);
    free(t);
    /* the EC key's kid on an HMAC token */
    t = forge_hs(SECRET, "ec", 300, "");
    assert_verdict(&fx, t, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_INVALID, "algorithm");
    free(t);
    t = forge_hs(SECRET, "gone", 300, "");
    assert_verdict(&fx, t, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_INVALID, "unknown kid");
    free(t);
    /* no kid: the main key has one, and there are several */
    t = forge_hs(SECRET, NULL, 300, "");
    assert_verdict(&fx, t, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_INVALID, "no kid");
    free(t);
    /* minted with the main key, under its kid */
    t = mint(&fx, track, NULL, TALAS_TOKEN_STREAM, 0, prefix);
    assert_verdict(&fx, t, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_OK, NULL);
    free(t);
    fx_done(&fx);

    /* a main key without kid takes the tokens without kid */
    fx_init(&fx, HS256_MAIN "  keys:\n    - kid: old\n      secret_file: %s/old.secret\n");
    t = forge_hs(SECRET, NULL, 300, "");
    assert_verdict(&fx, t, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_OK, NULL);
    free(t);
    t = forge_hs(SECRET_OLD, NULL, 300, "");
    assert_verdict(&fx, t, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_INVALID, "signature");
    free(t);
    fx_done(&fx);

    /* the only key, kid or not, takes the tokens without kid */
    fx_init(&one, "auth:\n  keys:\n    - kid: old\n      secret_file: %s/old.secret\n");
    t = forge_hs(SECRET_OLD, NULL, 300, "");
    assert_verdict(&one, t, track, TALAS_TOKEN_STREAM, NULL, TALAS_TOKEN_OK, NULL);
    free(t);
    fx_done(&one);
    free(c);
    free(prefix);
}

static void test_backend_key(void **state)
{
    struct fixture with, without;
    const char *ok = "Bearer " BACKEND_KEY;

    fx_init(&with, HS256_MAIN "  backend_key_file: %s/backend.key\n");
    fx_init(&without, HS256_MAIN);
    assert_int_equal(talas_token_backend_key_ok(with.auth, ok, strlen(ok)), 1);
    assert_int_equal(talas_token_backend_key_ok(with.auth, "bearer   " BACKEND_KEY, strlen(ok) + 2), 1);
    /* the trailing newline of the file is not part of the key */
    assert_int_equal(talas_token_backend_key_ok(with.auth, "Bearer " BACKEND_KEY "\n", strlen(ok) + 1), 0);
    assert_int_equal(talas_token_backend_key_ok(with.auth, ok, strlen(ok) - 1), 0);
    assert_int_equal(talas_token_backend_key_ok(with.auth, "Bearer backend-key-0123456780", strlen(ok)), 0);
    assert_int_equal(talas_token_backend_key_ok(with.auth, "Basic " BACKEND_KEY, strlen(ok) - 1), 0);
    assert_int_equal(talas_token_backend_key_ok(with.auth, "Bearer ", 7), 0);
    assert_int_equal(talas_token_backend_key_ok(with.auth, NULL, 0), 0);
    assert_int_equal(talas_token_backend_key_ok(without.auth, ok, strlen(ok)), 0);
    assert_int_equal(talas_token_backend_key_ok(NULL, ok, strlen(ok)), 0);
    fx_done(&with);
    fx_done(&without);
}

/* Keys that are wrong for their algorithm are refused at load, with the
 * file named. */
static void test_bad_keys(void **state)
{
    assert_null(create_error(HS256_MAIN));
    assert_create_error("auth:\n  secret_file: %s/short.secret\n", "short.secret\" holds 31 bytes");
    assert_create_error("auth:\n  secret_file: %s/short.secret\n", "at least 32");
    assert_create_error("auth:\n  algorithm: RS256\n  public_key_file: %s/rsa1024.pub\n",
                        "shorter than 2048");
    assert_create_error("auth:\n  algorithm: RS256\n  public_key_file: %s/ec.pub\n", "not an RSA key");
    assert_create_error("auth:\n  algorithm: ES256\n  public_key_file: %s/ec384.pub\n", "P-256");
    assert_create_error("auth:\n  algorithm: ES256\n  public_key_file: %s/rsa.pub\n", "P-256");
    assert_create_error(
        "auth:\n  algorithm: RS256\n  public_key_file: %s/rsa.pub\n  private_key_file: %s/rsa2.key\n",
        "does not match");
    assert_create_error("auth:\n  algorithm: RS256\n  public_key_file: %s/main.secret\n",
                        "not a PEM public key");
    assert_create_error("auth:\n  secret_file: %s/missing.secret\n", "missing.secret");
    assert_create_error("auth:\n  backend_key_file: %s/missing.key\n", "missing.key");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minted_urls_verify_for_their_track_and_kind),
        cmocka_unit_test(test_rs256_and_es256),
        cmocka_unit_test(test_algorithm_pinning),
        cmocka_unit_test(test_alg_none),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_claims),
        cmocka_unit_test(test_issuer_and_audience),
        cmocka_unit_test(test_kid_selection),
        cmocka_unit_test(test_backend_key),
        cmocka_unit_test(test_share_tokens),
        cmocka_unit_test(test_room_invites),
        cmocka_unit_test(test_bad_keys),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
