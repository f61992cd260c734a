/*
 * fuzz_jwt.c - the token path: a token string to a verdict
 * (talas_token_verify in src/core/token.c, with libjwt under it), and minting.
 *
 * Two key sets, built once in LLVMFuzzerInitialize from files in a
 * temporary directory: A, a main HS256 secret (and a backend key); B, three
 * keys chosen by kid: ES256 "ec" and RS256 "rs" (public keys below: test
 * keys, made for this harness and used nowhere else) and HS384 "hs", with
 * auth.issuer and auth.audience set.
 *
 * Input: byte 0 picks the mode and key set, byte 1 the request (kind,
 * track, client address), the rest is
 *   raw     a token, verified as it is (seeds: valid ES256, RS256 and HS
 *           tokens, alg none, algorithm confusion, expired...);
 *   signed  "HEADER\nPAYLOAD" JSON (or just PAYLOAD, with a default
 *           header), which the harness encodes and signs with the set's
 *           HMAC secret, so that the claim checks after the signature are
 *           reached;
 *   mint    a user id: a minted URL's token must verify, with that sub.
 * Checks: the verdict is one of the enum, a refusal has a reason, a second
 * verification (from the cache) agrees with the first, an accepted token
 * grants what was asked. TALAS_FUZZ_VERBOSE=1 prints each verdict.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "core/token.h"
#include "core/config.h"
#include "core/util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char ec_public[] = "-----BEGIN PUBLIC KEY-----\n"
                                "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEh5Tju+1zTKTmRQOjeJDN5bOzuywI\n"
                                "oUFpyx72jJnPPC4W0aHuz3ED1PBcWjbSges5aYwLkz6KRweUMVuLp8S8TQ==\n"
                                "-----END PUBLIC KEY-----\n";
static const char rsa_public[] = "-----BEGIN PUBLIC KEY-----\n"
                                 "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEArgZ5MJuEnD4ZaIFmS3gP\n"
                                 "1oPVhUQP2e/RqTExstCtaCtRjvhsewuZ4qk/AtKuSFHOS0uwgp6wQhuIe9RuLxUZ\n"
                                 "tpUlb4RQydIeoaeltpFGpcY3TSF5DlHdsCo81mAIliGb0PpxlefLVfYEDq2FtP1B\n"
                                 "Qkw3vanNhlEuSx0zn1oS3tEbfhlStoCJpZ6t7VenjgmlLxFXuFvBW5pqu14VNrrt\n"
                                 "6Y0mmpBxkUygrnOIz1749jnNkVqT+46MdbZu5i+01xSN6zFTTKJJXwSZfssyUUz8\n"
                                 "mvgeb+w1d8+N5F0smhSTs0QWRzY7+/wzBHV3Mkxidl1/bxLCzyfo+UcCGhPkTSMq\n"
                                 "qQIDAQAB\n"
                                 "-----END PUBLIC KEY-----\n";
static const char secret_a[] = "fuzz-secret-a-0123456789abcdef-0123456789";
static const char secret_b[] = "fuzz-secret-b-0123456789abcdef-0123456789abcdef-0123";

static struct talas_config conf_a, conf_b;
static struct talas_config_key keys_b[3];
static struct talas_token *auth_a, *auth_b;

static char *write_file(const char *dir, const char *name, const char *text)
{
    char *path = xasprintf("%s/%s", dir, name);
    FILE *fp = fopen(path, "w");

    if (fp == NULL || fputs(text, fp) == EOF || fclose(fp) != 0) {
        perror(path);
        abort();
    }
    return path;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char dir[] = "/tmp/talas-fuzz-jwt-XXXXXX", *error = NULL;

    if (mkdtemp(dir) == NULL)
        abort();
    conf_a.file = "fuzz-a.yaml";
    conf_a.auth_required = 1;
    conf_a.auth_key.algorithm = TALAS_JWT_HS256;
    conf_a.auth_key.secret_file = write_file(dir, "secret-a", secret_a);
    conf_a.auth_backend_key_file = write_file(dir, "backend", "fuzz-backend-key-0123456789");
    conf_a.auth_leeway_ms = 30000;
    conf_a.auth_default_ttl_ms = 300000;
    conf_a.auth_max_ttl_ms = 86400000;
    conf_a.http_public_url = "http://127.0.0.1:8080";

    keys_b[0] = (struct talas_config_key){
        .kid = "ec", .algorithm = TALAS_JWT_ES256, .public_key_file = write_file(dir, "ec.pub", ec_public)};
    keys_b[1] = (struct talas_config_key){
        .kid = "rs", .algorithm = TALAS_JWT_RS256, .public_key_file = write_file(dir, "rsa.pub", rsa_public)};
    keys_b[2] = (struct talas_config_key){
        .kid = "hs", .algorithm = TALAS_JWT_HS384, .secret_file = write_file(dir, "secret-b", secret_b)};
    conf_b = conf_a;
    conf_b.file = "fuzz-b.yaml";
    conf_b.auth_key = (struct talas_config_key){0};
    conf_b.auth_keys = keys_b;
    conf_b.auth_key_count = 3;
    conf_b.auth_backend_key_file = NULL;
    conf_b.auth_issuer = "https://issuer.example";
    conf_b.auth_audience = "talas";

    if (talas_token_create(&conf_a, &auth_a, &error) != 0 ||
        talas_token_create(&conf_b, &auth_b, &error) != 0) {
        fprintf(stderr, "fuzz_jwt: %s\n", error);
        abort();
    }
    return 0;
}

static char *b64url(const unsigned char *in, size_t len)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *out = xmalloc(len * 4 / 3 + 4), *o = out;

    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0) |
                     (i + 2 < len ? in[i + 2] : 0);
        *o++ = abc[v >> 18 & 63];
        *o++ = abc[v >> 12 & 63];
        if (i + 1 < len)
            *o++ = abc[v >> 6 & 63];
        if (i + 2 < len)
            *o++ = abc[v & 63];
    }
    *o = '\0';
    return out;
}

/* HEADER.PAYLOAD, signed with HMAC (SHA-256 for A, SHA-384 for B). */
static char *sign(int set_b, const char *header, size_t hlen, const char *payload, size_t plen)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;
    char *h = b64url((const unsigned char *)header, hlen), *p = b64url((const unsigned char *)payload, plen);
    char *input = xasprintf("%s.%s", h, p), *s, *token;

    HMAC(set_b ? EVP_sha384() : EVP_sha256(), set_b ? secret_b : secret_a,
         (int)strlen(set_b ? secret_b : secret_a), (const unsigned char *)input, strlen(input), mac,
         &mac_len);
    s = b64url(mac, mac_len);
    token = xasprintf("%s.%s", input, s);
    free(h);
    free(p);
    free(input);
    free(s);
    return token;
}

static void verify(struct talas_token *auth, const char *token, size_t len, uint8_t req)
{
    static const char *const ips[] = {NULL, "192.0.2.1", "::ffff:192.0.2.1", "2001:db8::1"};
    static const enum talas_token_kind kinds[] = {TALAS_TOKEN_STREAM, TALAS_TOKEN_PREVIEW, TALAS_TOKEN_HLS,
                                                 TALAS_TOKEN_ALL};
    const char *track = req & 0x10 ? NULL : "AAAAAAAAAAAAAAAA", *ip = ips[req >> 2 & 3];
    enum talas_token_kind kind = kinds[req & 3];
    struct talas_token_claims c1, c2;
    const char *r1 = NULL, *r2 = NULL;
    enum talas_token_result v1, v2;

    v1 = talas_token_verify(auth, token, len, track, kind, ip, &c1, &r1);
    v2 = talas_token_verify(auth, token, len, track, kind, ip, &c2, &r2);
    if (getenv("TALAS_FUZZ_VERBOSE") != NULL)
        fprintf(stderr, "fuzz_jwt: verdict %d (%s)\n", (int)v1, r1 != NULL ? r1 : "ok");
    if (v1 > TALAS_TOKEN_FORBIDDEN || (v1 != TALAS_TOKEN_OK && r1 == NULL))
        abort();
    /* the cached verdict is the fresh one (unless the token expired in between) */
    if (v1 != v2 && !(v2 == TALAS_TOKEN_INVALID && strcmp(r2, "expired") == 0))
        abort();
    if (v1 == TALAS_TOKEN_OK) {
        if ((track != NULL && strcmp(c1.track, track) != 0) || (c1.kinds & (int)kind) != (int)kind ||
            memchr(c1.sub, '\0', sizeof(c1.sub)) == NULL)
            abort();
        if (v2 == TALAS_TOKEN_OK && (memcmp(c1.track, c2.track, sizeof(c1.track)) != 0 ||
                                    strcmp(c1.sub, c2.sub) != 0 || c1.exp != c2.exp || c1.kinds != c2.kinds))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct talas_token *auth;
    const char *in, *nl;
    size_t len;
    char *copy;
    int set_b;

    if (size < 2)
        return 0;
    set_b = data[0] & 1;
    auth = set_b ? auth_b : auth_a;
    in = (const char *)data + 2;
    len = size - 2;
    /* exactly LEN bytes, so that ASan sees any read past the end */
    copy = memcpy(xmalloc(len + 1), in, len);

    switch (data[0] >> 1 & 3) {
    case 0:
    case 3: /* raw */
        verify(auth, copy, len, data[1]);
        talas_token_backend_key_ok(auth, copy, len);
        break;
    case 1: { /* signed by the harness */
        char *token;
        if ((nl = memchr(copy, '\n', len)) != NULL)
            token = sign(set_b, copy, (size_t)(nl - copy), nl + 1, len - (size_t)(nl + 1 - copy));
        else if (set_b)
            token = sign(set_b, "{\"alg\":\"HS384\",\"kid\":\"hs\"}", 26, copy, len);
        else
            token = sign(set_b, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", 27, copy, len);
        verify(auth, token, strlen(token), data[1]);
        free(token);
        break;
    }
    case 2: { /* minted: the user id round-trips */
        char *sub = xstrndup(copy, len), *url = NULL, *error = NULL, *token;
        struct talas_token_claims c;
        const char *reason;
        time_t exp;
        if (talas_token_mint_url(auth_a, "AAAAAAAAAAAAAAAA", sub, TALAS_TOKEN_STREAM, data[1], &url, &exp,
                                &error) == 0) {
            if ((token = strstr(url, "?token=")) == NULL)
                abort();
            token += 7;
            if (talas_token_verify(auth_a, token, strlen(token), "AAAAAAAAAAAAAAAA", TALAS_TOKEN_STREAM, NULL,
                                  &c, &reason) != TALAS_TOKEN_OK ||
                strcmp(c.sub, sub) != 0)
                abort();
        }
        free(url);
        free(error);
        free(sub);
        break;
    }
    }
    free(copy);
    return 0;
}
