/*
 * token.c - JWTs on media URLs: loading the keys, verifying tokens, minting
 * signed URLs, checking the backend key.
 *
 * Entry points: talas_token_create/free, talas_token_verify,
 * talas_token_mint_url, talas_token_backend_key_ok (token.h).
 *
 * libjwt 1.10 verifies a token with the algorithm the token names, and
 * accepts "alg": "none" when no key is given (PLATFORM.md). So before libjwt
 * sees a token, its header is decoded here: the kid picks the key, and the
 * header's alg must be the one algorithm pinned for that key; libjwt is then
 * always given that key, and jwt_get_alg() is compared again after it has
 * verified the signature. Every other claim is read and checked here (libjwt
 * checks none).
 *
 * A verified token is remembered (per process, keyed by its exact bytes)
 * with the claims that matter, so the many Range requests of one player cost
 * one signature check; everything that depends on the clock or the request
 * (exp, nbf, track, scope, client address) is checked again on every use.
 *
 * Logs nothing: callers log the reasons it returns.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jwt.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "core/token.h"
#include "store/catalog.h"
#include "core/json_read.h"
#include "core/util.h"

/* Key files are small; anything bigger is a mistake (a wrong path). */
#define KEY_FILE_MAX (64 * 1024)
#define BACKEND_KEY_MIN 16
#define CACHE_SLOTS 256
/* Tokens longer than this are verified every time, not remembered. */
#define CACHE_TOKEN_MAX 1024

struct auth_key {
    const char *kid; /* NULL: none configured */
    jwt_alg_t alg;
    const char *alg_name;
    unsigned char *verify; /* HS*: the secret; else the public key PEM */
    size_t verify_len;
    unsigned char *sign; /* HS*: the secret (same buffer); else the private key PEM or NULL */
    size_t sign_len;
    int main; /* the auth.* key, not one of auth.keys */
};

/* What a verified token grants, minus what is checked per request. */
struct cache_entry {
    char *token; /* malloc'd, NUL-terminated; NULL: empty slot */
    size_t len;
    time_t exp, nbf;                    /* nbf 0: none */
    char track[TALAS_TRACK_ID_LEN + 1]; /* "" when absent */
    int kinds;
    int ip_family; /* AF_UNSPEC: not bound */
    unsigned char ip[16];
    char sub[128];
    char share[TALAS_TRACK_ID_LEN + 1];     /* a share token's share id; "" for others */
    char listener[TALAS_TRACK_ID_LEN + 1];  /* a share token's listener id */
    int owner;                              /* "owner": true, the sub owns the track */
    char room[TALAS_TOKEN_ROOM_ID_LEN + 1]; /* a room invite's room id; "" for others */
};

struct talas_token {
    const struct talas_config *conf;
    struct auth_key *keys;
    size_t key_count;
    struct auth_key *signer; /* the main key, else the first of auth.keys */
    unsigned char *backend_key;
    size_t backend_key_len;
    time_t leeway_s;
    struct cache_entry cache[CACHE_SLOTS];
};

static const struct {
    int conf;
    jwt_alg_t alg;
    const char *name;
    size_t min_secret;
} algorithms[] = {
    {TALAS_JWT_HS256, JWT_ALG_HS256, "HS256", 32}, {TALAS_JWT_HS384, JWT_ALG_HS384, "HS384", 48},
    {TALAS_JWT_HS512, JWT_ALG_HS512, "HS512", 64}, {TALAS_JWT_RS256, JWT_ALG_RS256, "RS256", 0},
    {TALAS_JWT_ES256, JWT_ALG_ES256, "ES256", 0},
};

const char *talas_token_kind_name(enum talas_token_kind kind)
{
    switch (kind) {
    case TALAS_TOKEN_STREAM:
        return "stream";
    case TALAS_TOKEN_PREVIEW:
        return "preview";
    case TALAS_TOKEN_HLS:
        return "hls";
    default:
        return "all";
    }
}

void talas_token_format_time(time_t t, char buf[32])
{
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int talas_token_read_key_file(const char *path, const char *what, int strip, unsigned char **data_r,
                              size_t *len_r, char **error_r)
{
    struct stat st;
    unsigned char *data = NULL;
    size_t len = 0;
    int fd;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1) {
        *error_r = xasprintf("%s: open(\"%s\") failed: %s", what, path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
        *error_r = xasprintf("%s: \"%s\" is not a regular file", what, path);
        goto fail;
    }
    if (st.st_size > KEY_FILE_MAX) {
        *error_r = xasprintf("%s: \"%s\" is larger than %d bytes: not a key", what, path, KEY_FILE_MAX);
        goto fail;
    }
    data = xmalloc((size_t)st.st_size + 1);
    while (len < (size_t)st.st_size) {
        ssize_t n = read(fd, data + len, (size_t)st.st_size - len);
        if (n == -1 && errno == EINTR)
            continue;
        if (n <= 0) {
            *error_r = xasprintf("%s: read(\"%s\") failed: %s", what, path,
                                 n == 0 ? "file shrank" : strerror(errno));
            goto fail;
        }
        len += (size_t)n;
    }
    /* "echo KEY > file" leaves a newline that is not part of the key */
    while (strip && len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
        len--;
    data[len] = '\0';
    if (len == 0) {
        *error_r = xasprintf("%s: \"%s\" is empty", what, path);
        goto fail;
    }
    close(fd);
    *data_r = data;
    *len_r = len;
    return 0;

fail:
    if (data != NULL) {
        OPENSSL_cleanse(data, (size_t)st.st_size + 1);
        free(data);
    }
    close(fd);
    return -1;
}

/* NULL when PEM (LEN bytes) holds a key usable with ALG; else the problem. */
static const char *pem_problem(const unsigned char *pem, size_t len, int private, jwt_alg_t alg,
                               EVP_PKEY **pkey_r)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *pkey;
    const char *problem = NULL;

    pkey =
        private ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (pkey == NULL)
        return private ? "not a PEM private key (unencrypted PKCS#8 or traditional format)"
                       : "not a PEM public key (-----BEGIN PUBLIC KEY-----)";
    if (alg == JWT_ALG_RS256) {
        if (EVP_PKEY_base_id(pkey) != EVP_PKEY_RSA)
            problem = "not an RSA key, as RS256 needs";
        else if (EVP_PKEY_bits(pkey) < 2048)
            problem = "an RSA key shorter than 2048 bits";
    } else if (alg == JWT_ALG_ES256) {
        char group[64];
        size_t glen = 0;
        if (EVP_PKEY_base_id(pkey) != EVP_PKEY_EC ||
            EVP_PKEY_get_utf8_string_param(pkey, "group", group, sizeof(group), &glen) != 1 ||
            strcmp(group, "prime256v1") != 0)
            problem = "not an EC P-256 (prime256v1) key, as ES256 needs";
    }
    if (problem != NULL || pkey_r == NULL)
        EVP_PKEY_free(pkey);
    else
        *pkey_r = pkey;
    return problem;
}

static int load_key(const struct talas_config_key *ck, int is_main, struct auth_key *k, char **error_r)
{
    const char *where = is_main ? "auth" : "auth.keys";
    EVP_PKEY *pub = NULL, *priv = NULL;
    const char *problem;
    char *what;
    int rc = -1;

    memset(k, 0, sizeof(*k));
    k->kid = ck->kid;
    k->main = is_main;
    for (size_t i = 0; i < sizeof(algorithms) / sizeof(algorithms[0]); i++)
        if (algorithms[i].conf == ck->algorithm) {
            k->alg = algorithms[i].alg;
            k->alg_name = algorithms[i].name;
            if (algorithms[i].min_secret > 0) {
                what = xasprintf("%s%s%s: secret_file", where, k->kid ? " kid " : "", k->kid ? k->kid : "");
                if (ck->secret_file == NULL) {
                    *error_r = xasprintf("%s is required with %s", what, k->alg_name);
                } else if (talas_token_read_key_file(ck->secret_file, what, 1, &k->verify, &k->verify_len,
                                                     error_r) == 0) {
                    if (k->verify_len < algorithms[i].min_secret)
                        *error_r = xasprintf(
                            "%s: \"%s\" holds %zu bytes; %s needs at least %zu (RFC 7518 3.2)", what,
                            ck->secret_file, k->verify_len, k->alg_name, algorithms[i].min_secret);
                    else
                        rc = 0;
                }
                free(what);
                k->sign = k->verify;
                k->sign_len = k->verify_len;
                return rc;
            }
        }
    if (k->alg_name == NULL) {
        *error_r = xasprintf("%s: unknown algorithm", where);
        return -1;
    }
    what = xasprintf("%s%s%s: public_key_file", where, k->kid ? " kid " : "", k->kid ? k->kid : "");
    if (ck->public_key_file == NULL) {
        *error_r = xasprintf("%s is required with %s", what, k->alg_name);
        goto done;
    }
    if (talas_token_read_key_file(ck->public_key_file, what, 0, &k->verify, &k->verify_len, error_r) != 0)
        goto done;
    if ((problem = pem_problem(k->verify, k->verify_len, 0, k->alg, &pub)) != NULL) {
        *error_r = xasprintf("%s: \"%s\" is %s", what, ck->public_key_file, problem);
        goto done;
    }
    if (ck->private_key_file != NULL) {
        free(what);
        what = xasprintf("%s%s%s: private_key_file", where, k->kid ? " kid " : "", k->kid ? k->kid : "");
        if (talas_token_read_key_file(ck->private_key_file, what, 0, &k->sign, &k->sign_len, error_r) != 0)
            goto done;
        if ((problem = pem_problem(k->sign, k->sign_len, 1, k->alg, &priv)) != NULL) {
            *error_r = xasprintf("%s: \"%s\" is %s", what, ck->private_key_file, problem);
            goto done;
        }
        if (EVP_PKEY_eq(pub, priv) != 1) {
            *error_r = xasprintf("%s: \"%s\" does not match public_key_file \"%s\"", what,
                                 ck->private_key_file, ck->public_key_file);
            goto done;
        }
    }
    rc = 0;

done:
    free(what);
    EVP_PKEY_free(pub);
    EVP_PKEY_free(priv);
    return rc;
}

static void free_key(struct auth_key *k)
{
    if (k->sign != NULL && k->sign != k->verify) {
        OPENSSL_cleanse(k->sign, k->sign_len);
        free(k->sign);
    }
    if (k->verify != NULL) {
        OPENSSL_cleanse(k->verify, k->verify_len);
        free(k->verify);
    }
}

int talas_token_create(const struct talas_config *conf, struct talas_token **auth_r, char **error_r)
{
    struct talas_token *auth = xcalloc(1, sizeof(*auth));
    int have_main = conf->auth_key.secret_file != NULL || conf->auth_key.public_key_file != NULL ||
                    conf->auth_key.private_key_file != NULL;
    char *error = NULL;

    auth->conf = conf;
    auth->leeway_s = (time_t)((conf->auth_leeway_ms + 999) / 1000);
    auth->keys = xcalloc(conf->auth_key_count + 1, sizeof(*auth->keys));
    if (have_main) {
        if (load_key(&conf->auth_key, 1, &auth->keys[0], &error) != 0) {
            free_key(&auth->keys[0]);
            goto fail;
        }
        auth->key_count = 1;
    }
    for (size_t i = 0; i < conf->auth_key_count; i++) {
        if (load_key(&conf->auth_keys[i], 0, &auth->keys[auth->key_count], &error) != 0) {
            free_key(&auth->keys[auth->key_count]);
            goto fail;
        }
        auth->key_count++;
    }
    if (conf->auth_required && auth->key_count == 0) {
        error = xasprintf("auth: required: true needs a key (secret_file, public_key_file or keys)");
        goto fail;
    }
    if (auth->key_count > 0)
        auth->signer = &auth->keys[0];
    if (conf->auth_backend_key_file != NULL) {
        if (talas_token_read_key_file(conf->auth_backend_key_file, "auth.backend_key_file", 1,
                                      &auth->backend_key, &auth->backend_key_len, &error) != 0)
            goto fail;
        if (auth->backend_key_len < BACKEND_KEY_MIN) {
            error =
                xasprintf("auth.backend_key_file: \"%s\" holds %zu bytes; a backend key needs at least %d",
                          conf->auth_backend_key_file, auth->backend_key_len, BACKEND_KEY_MIN);
            goto fail;
        }
    }
    *auth_r = auth;
    return 0;

fail:
    *error_r = xasprintf("%s: %s", conf->file, error);
    free(error);
    talas_token_free(auth);
    return -1;
}

void talas_token_free(struct talas_token *auth)
{
    if (auth == NULL)
        return;
    for (size_t i = 0; i < auth->key_count; i++)
        free_key(&auth->keys[i]);
    free(auth->keys);
    if (auth->backend_key != NULL) {
        OPENSSL_cleanse(auth->backend_key, auth->backend_key_len);
        free(auth->backend_key);
    }
    for (size_t i = 0; i < CACHE_SLOTS; i++)
        free(auth->cache[i].token);
    free(auth);
}

/* ------------------------------------------------------------ verifying */

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/* Decodes unpadded base64url; OUT has room for LEN * 3 / 4 bytes. */
static int b64url_decode(const char *in, size_t len, unsigned char *out, size_t *out_len_r)
{
    size_t n = 0;
    unsigned acc = 0;
    int bits = 0;

    if (len % 4 == 1)
        return -1;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
        }
        acc &= (1u << bits) - 1;
    }
    *out_len_r = n;
    return 0;
}

struct header {
    char alg[16];
    char kid[128];
    int has_alg, has_kid, bad;
};

static int header_member(const char *key, const struct talas_json_value *v, void *arg)
{
    struct header *h = arg;

    if (strcmp(key, "alg") == 0 || strcmp(key, "kid") == 0) {
        char *dst = key[0] == 'a' ? h->alg : h->kid;
        size_t size = key[0] == 'a' ? sizeof(h->alg) : sizeof(h->kid);
        if (v->type != TALAS_JSON_STRING || v->len >= size) {
            h->bad = 1;
            return 1;
        }
        memcpy(dst, v->str, v->len + 1);
        if (key[0] == 'a')
            h->has_alg = 1;
        else
            h->has_kid = 1;
    } else if (strcmp(key, "crit") == 0) {
        /* RFC 7515 4.1.11: extensions we do not know must be refused */
        h->bad = 1;
        return 1;
    }
    return 0;
}

static struct auth_key *find_key(struct talas_token *auth, const struct header *h)
{
    if (h->has_kid) {
        for (size_t i = 0; i < auth->key_count; i++)
            if (auth->keys[i].kid != NULL && strcmp(auth->keys[i].kid, h->kid) == 0)
                return &auth->keys[i];
        return NULL;
    }
    if (auth->key_count == 1)
        return &auth->keys[0];
    if (auth->key_count > 0 && auth->keys[0].main && auth->keys[0].kid == NULL)
        return &auth->keys[0];
    return NULL;
}

/* Parses ADDR (text) into 4 or 16 bytes; IPv4-mapped IPv6 becomes IPv4. */
static int parse_ip(const char *addr, int *family_r, unsigned char out[16])
{
    struct in6_addr a6;

    if (inet_pton(AF_INET, addr, out) == 1) {
        *family_r = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, addr, &a6) != 1)
        return -1;
    if (IN6_IS_ADDR_V4MAPPED(&a6)) {
        memcpy(out, &a6.s6_addr[12], 4);
        *family_r = AF_INET;
    } else {
        memcpy(out, &a6, 16);
        *family_r = AF_INET6;
    }
    return 0;
}

/* The kinds a scope claim grants; 0 when it names none of them. */
static int parse_scope(const char *s)
{
    int kinds = 0;

    while (*s) {
        size_t n;
        while (*s == ' ')
            s++;
        n = strcspn(s, " ");
        if (n == 6 && memcmp(s, "stream", 6) == 0)
            kinds |= TALAS_TOKEN_STREAM;
        else if (n == 7 && memcmp(s, "preview", 7) == 0)
            kinds |= TALAS_TOKEN_PREVIEW;
        else if (n == 3 && memcmp(s, "hls", 3) == 0)
            kinds |= TALAS_TOKEN_HLS;
        else if (n == 3 && memcmp(s, "all", 3) == 0)
            kinds |= TALAS_TOKEN_ALL;
        /* other words are other services' scopes: they grant nothing here */
        s += n;
    }
    return kinds;
}

static int aud_member(const char *key, const struct talas_json_value *v, void *arg)
{
    return strcmp(v->str, arg) == 0 ? 1 : 0;
}

/* 1 when the token's aud (a string or an array of strings) holds WANT. */
static int aud_matches(jwt_t *jwt, const char *want)
{
    const char *s, *error;
    char *json;
    int rc;

    if ((s = jwt_get_grant(jwt, "aud")) != NULL)
        return strcmp(s, want) == 0;
    if ((json = jwt_get_grants_json(jwt, "aud")) == NULL)
        return 0;
    rc = talas_json_read_string_array(json, strlen(json), aud_member, (void *)want, &error);
    free(json);
    return rc == 1;
}

/*
 * Reads integer claim NAME: 1 present, 0 absent, -1 present but not an
 * integer. jwt_get_grant_int() returns 0 without an error for a string, a
 * real or a boolean, so the claim's JSON text is checked first.
 */
static int int_claim(jwt_t *jwt, const char *name, time_t *v_r)
{
    char *json = jwt_get_grants_json(jwt, name);
    const char *p;
    long v;

    if (json == NULL)
        return 0;
    p = json + (json[0] == '-');
    if (*p == '\0' || strspn(p, "0123456789") != strlen(p) || strlen(p) > 18) {
        free(json);
        return -1;
    }
    free(json);
    errno = 0;
    v = jwt_get_grant_int(jwt, name);
    if (errno != 0)
        return errno == ENOENT ? 0 : -1;
    *v_r = (time_t)v;
    return 1;
}

static int has_claim(jwt_t *jwt, const char *name)
{
    char *json = jwt_get_grants_json(jwt, name);

    free(json);
    return json != NULL;
}

/* Present and a string: 1; absent: 0; present but another type: -1. */
static int str_claim(jwt_t *jwt, const char *name, const char **v_r)
{
    char *json;

    if ((*v_r = jwt_get_grant(jwt, name)) != NULL)
        return 1;
    if ((json = jwt_get_grants_json(jwt, name)) == NULL)
        return 0;
    free(json);
    return -1;
}

#define INVALID(why)                                                                                         \
    do {                                                                                                     \
        *reason_r = (why);                                                                                   \
        result = TALAS_TOKEN_INVALID;                                                                        \
        goto done;                                                                                           \
    } while (0)

/* 24 lowercase hex characters (store/rooms.h's room ids). */
static int room_id_valid(const char *s)
{
    size_t i;

    for (i = 0; s[i] != '\0'; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return i == TALAS_TOKEN_ROOM_ID_LEN;
}

/* Verifies the signature and the static claims; fills E (token not set). */
static enum talas_token_result decode(struct talas_token *auth, const char *token, size_t len,
                                      struct cache_entry *e, const char **reason_r)
{
    const struct talas_config *conf = auth->conf;
    enum talas_token_result result = TALAS_TOKEN_INVALID;
    unsigned char hbuf[TALAS_TOKEN_MAX];
    char tbuf[TALAS_TOKEN_MAX + 1];
    const char *dot1, *dot2, *s, *error;
    struct header h = {0};
    struct auth_key *key;
    size_t hlen;
    jwt_t *jwt = NULL;
    int rc;

    for (size_t i = 0; i < len; i++)
        if (b64url_value((unsigned char)token[i]) < 0 && token[i] != '.')
            INVALID("malformed token (characters outside base64url)");
    if ((dot1 = memchr(token, '.', len)) == NULL ||
        (dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token))) == NULL ||
        memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) != NULL)
        INVALID("malformed token (not three parts)");
    if (dot2 + 1 == token + len)
        INVALID("unsigned token");
    if (b64url_decode(token, (size_t)(dot1 - token), hbuf, &hlen) != 0)
        INVALID("malformed token header");
    if (talas_json_read_object((const char *)hbuf, hlen, header_member, &h, &error) != 0 || h.bad ||
        !h.has_alg)
        INVALID("malformed token header");
    if ((key = find_key(auth, &h)) == NULL)
        INVALID(h.has_kid ? "unknown kid" : "no kid, and several keys are configured");
    if (strcmp(h.alg, key->alg_name) != 0)
        INVALID("algorithm is not the one pinned for this key");

    memcpy(tbuf, token, len);
    tbuf[len] = '\0';
    /* never with a NULL key: libjwt would accept "alg": "none" */
    if (jwt_decode(&jwt, tbuf, key->verify, (int)key->verify_len) != 0 || jwt == NULL) {
        jwt = NULL;
        INVALID("bad signature or malformed token");
    }
    if (jwt_get_alg(jwt) != key->alg)
        INVALID("algorithm is not the one pinned for this key");

    if ((rc = int_claim(jwt, "exp", &e->exp)) != 1)
        INVALID(rc == 0 ? "no exp claim" : "exp is not an integer");
    e->nbf = 0;
    if ((rc = int_claim(jwt, "nbf", &e->nbf)) == -1)
        INVALID("nbf is not an integer");
    if (conf->auth_issuer != NULL && (str_claim(jwt, "iss", &s) != 1 || strcmp(s, conf->auth_issuer) != 0))
        INVALID("wrong or missing iss");
    if (conf->auth_audience != NULL && !aud_matches(jwt, conf->auth_audience))
        INVALID("wrong or missing aud");
    if (conf->auth_audience == NULL && has_claim(jwt, "aud"))
        INVALID("aud present but auth.audience is not set");

    e->track[0] = '\0';
    if ((rc = str_claim(jwt, "track", &s)) == -1)
        INVALID("track is not a string");
    if (rc == 1) {
        if (strlen(s) > TALAS_TRACK_ID_LEN)
            INVALID("track is not a track id");
        strcpy(e->track, s);
    }
    e->kinds = TALAS_TOKEN_ALL;
    if ((rc = str_claim(jwt, "scope", &s)) == -1)
        INVALID("scope is not a string");
    if (rc == 1)
        e->kinds = parse_scope(s);
    e->ip_family = AF_UNSPEC;
    if ((rc = str_claim(jwt, "ip", &s)) == -1 || (rc == 1 && parse_ip(s, &e->ip_family, e->ip) != 0))
        INVALID("ip is not an IP address");
    e->sub[0] = '\0';
    if ((rc = str_claim(jwt, "sub", &s)) == -1)
        INVALID("sub is not a string");
    if (rc == 1)
        snprintf(e->sub, sizeof(e->sub), "%s", s);
    e->share[0] = e->listener[0] = '\0';
    if ((rc = str_claim(jwt, "share", &s)) == -1 || (rc == 1 && !talas_track_id_valid(s, strlen(s))))
        INVALID("share is not a share id");
    if (rc == 1) {
        strcpy(e->share, s);
        if (str_claim(jwt, "lid", &s) != 1 || !talas_track_id_valid(s, strlen(s)))
            INVALID("a share token without a listener id (lid)");
        strcpy(e->listener, s);
        if (e->track[0] != '\0' || e->sub[0] != '\0')
            INVALID("a share token names no track and no user");
    }
    e->room[0] = '\0';
    if ((rc = str_claim(jwt, "room", &s)) == -1 || (rc == 1 && !room_id_valid(s)))
        INVALID("room is not a room id");
    if (rc == 1) {
        strcpy(e->room, s);
        if (e->track[0] != '\0' || e->sub[0] != '\0' || e->share[0] != '\0')
            INVALID("a room invite names no track, user or share");
    }
    e->owner = 0;
    if (has_claim(jwt, "owner")) {
        char *json = jwt_get_grants_json(jwt, "owner");
        int yes = json != NULL && strcmp(json, "true") == 0;
        free(json);
        if (!yes)
            INVALID("owner must be true when present");
        e->owner = 1;
    }
    result = TALAS_TOKEN_OK;

done:
    /* libjwt's free does not clear the claims (a sub is personal data) */
    if (jwt != NULL)
        jwt_free(jwt);
    return result;
}

static size_t cache_slot(const char *token, size_t len)
{
    /* the signature ends the token and is as random as a hash; a forged
     * token that lands in a slot still has to equal the stored one byte
     * for byte */
    uint32_t h = 2166136261u;
    size_t from = len > 32 ? len - 32 : 0;

    for (size_t i = from; i < len; i++)
        h = (h ^ (unsigned char)token[i]) * 16777619u;
    h ^= (uint32_t)len;
    return h % CACHE_SLOTS;
}

enum talas_token_result talas_token_verify(struct talas_token *auth, const char *token, size_t len,
                                           const char *track, enum talas_token_kind kind,
                                           const char *client_ip, struct talas_token_claims *claims_r,
                                           const char **reason_r)
{
    struct cache_entry fresh, *e;
    enum talas_token_result result;
    time_t now = time(NULL);
    size_t slot = 0;

    *reason_r = NULL;
    if (len == 0) {
        *reason_r = "no token";
        return TALAS_TOKEN_MISSING;
    }
    if (len > TALAS_TOKEN_MAX) {
        *reason_r = "token too long";
        return TALAS_TOKEN_INVALID;
    }
    if (auth->key_count == 0) {
        *reason_r = "no key is configured";
        return TALAS_TOKEN_INVALID;
    }
    e = NULL;
    if (len <= CACHE_TOKEN_MAX) {
        slot = cache_slot(token, len);
        if (auth->cache[slot].token != NULL && auth->cache[slot].len == len &&
            memcmp(auth->cache[slot].token, token, len) == 0)
            e = &auth->cache[slot];
    }
    if (e == NULL) {
        memset(&fresh, 0, sizeof(fresh));
        if ((result = decode(auth, token, len, &fresh, reason_r)) != TALAS_TOKEN_OK)
            return result;
        e = &fresh;
        if (len <= CACHE_TOKEN_MAX && now <= fresh.exp + auth->leeway_s) {
            struct cache_entry *c = &auth->cache[slot];
            free(c->token);
            *c = fresh;
            c->token = xstrndup(token, len);
            c->len = len;
            e = c;
        }
    }

    if (now > e->exp + auth->leeway_s) {
        *reason_r = "expired";
        return TALAS_TOKEN_INVALID;
    }
    if (e->nbf != 0 && now + auth->leeway_s < e->nbf) {
        *reason_r = "not yet valid (nbf)";
        return TALAS_TOKEN_INVALID;
    }
    if (e->share[0] != '\0' && !(kind & TALAS_TOKEN_SHARE)) {
        *reason_r = "a share token is good only for its share's media";
        return TALAS_TOKEN_FORBIDDEN;
    }
    if ((e->room[0] != '\0') != ((kind & TALAS_TOKEN_ROOM) != 0)) {
        *reason_r =
            e->room[0] != '\0' ? "a room invite is good only for joining its room" : "not a room invite";
        return TALAS_TOKEN_FORBIDDEN;
    }
    kind &= TALAS_TOKEN_ALL;
    if (track != NULL && e->track[0] == '\0' && e->share[0] == '\0') {
        *reason_r = "the token names no track";
        return TALAS_TOKEN_FORBIDDEN;
    }
    if (track != NULL && e->share[0] == '\0' && strcmp(e->track, track) != 0) {
        *reason_r = "the token is for another track";
        return TALAS_TOKEN_FORBIDDEN;
    }
    if ((e->kinds & (int)kind) != (int)kind) {
        *reason_r = "the token's scope does not cover this kind of request";
        return TALAS_TOKEN_FORBIDDEN;
    }
    if (e->ip_family != AF_UNSPEC) {
        unsigned char ip[16];
        int family;
        if (client_ip == NULL || parse_ip(client_ip, &family, ip) != 0 || family != e->ip_family ||
            memcmp(ip, e->ip, family == AF_INET ? 4 : 16) != 0) {
            *reason_r = "the token is bound to another client address";
            return TALAS_TOKEN_FORBIDDEN;
        }
    }
    if (claims_r != NULL) {
        memcpy(claims_r->track, e->track, sizeof(claims_r->track));
        memcpy(claims_r->sub, e->sub, sizeof(claims_r->sub));
        claims_r->kinds = e->kinds;
        claims_r->exp = e->exp;
        memcpy(claims_r->share, e->share, sizeof(claims_r->share));
        memcpy(claims_r->listener, e->listener, sizeof(claims_r->listener));
        claims_r->owner = e->owner;
        memcpy(claims_r->room, e->room, sizeof(claims_r->room));
    }
    return TALAS_TOKEN_OK;
}

/* -------------------------------------------------------------- minting */

/* 0 when the server has a key that signs, else -1 with the reason. */
static int signer_ready(const struct auth_key *k, char **error_r)
{
    if (k != NULL && k->sign != NULL)
        return 0;
    *error_r = k == NULL
                   ? xasprintf("no key is configured (auth.secret_file or auth.keys)")
                   : xasprintf("the signing key (%s%s) has no private_key_file: %s tokens cannot be minted",
                               k->kid ? "kid " : "auth", k->kid ? k->kid : "", k->alg_name);
    return -1;
}

/*
 * A token of N string claims (NAMES[i]: VALUES[i]; a NULL or empty value
 * is left out), valid from NOW to EXP, signed with the server's key (ready:
 * signer_ready): exp, iat, iss and aud added, and the key's kid. Returns
 * a malloc'd token, or NULL with the reason in *error_r.
 */
static char *sign_claims(struct talas_token *auth, const char *const *names, const char *const *values,
                         size_t n, time_t now, time_t exp, char **error_r)
{
    const struct talas_config *conf = auth->conf;
    const struct auth_key *k = auth->signer;
    jwt_t *jwt = NULL;
    char *token = NULL;
    int bad = 0;

    if (jwt_new(&jwt) != 0) {
        *error_r = xasprintf("jwt_new() failed: %s", strerror(errno));
        return NULL;
    }
    for (size_t i = 0; i < n && !bad; i++)
        bad = values[i] != NULL && *values[i] != '\0' && jwt_add_grant(jwt, names[i], values[i]) != 0;
    if (bad || jwt_add_grant_int(jwt, "exp", (long)exp) != 0 ||
        jwt_add_grant_int(jwt, "iat", (long)now) != 0 ||
        (conf->auth_issuer != NULL && jwt_add_grant(jwt, "iss", conf->auth_issuer) != 0) ||
        (conf->auth_audience != NULL && jwt_add_grant(jwt, "aud", conf->auth_audience) != 0) ||
        (k->kid != NULL && jwt_add_header(jwt, "kid", k->kid) != 0) ||
        jwt_set_alg(jwt, k->alg, k->sign, (int)k->sign_len) != 0 || (token = jwt_encode_str(jwt)) == NULL)
        *error_r = xasprintf("building the token failed: %s", strerror(errno ? errno : EINVAL));
    jwt_free(jwt);
    return token;
}

int talas_token_mint_url(struct talas_token *auth, const char *track, const char *sub,
                         enum talas_token_kind kind, uint64_t ttl_s, char **url_r, time_t *exp_r,
                         char **error_r)
{
    const struct talas_config *conf = auth->conf;
    uint64_t max_s = conf->auth_max_ttl_ms / 1000;
    time_t now = time(NULL), exp;
    const char *names[] = {"track", "scope", "sub"}, *values[3];
    char *token;

    if (track == NULL || !talas_track_id_valid(track, strlen(track))) {
        *error_r = xasprintf("not a track id");
        return -1;
    }
    if (signer_ready(auth->signer, error_r) != 0)
        return -1;
    if (ttl_s == 0)
        ttl_s = conf->auth_default_ttl_ms / 1000;
    if (ttl_s > max_s) {
        *error_r = xasprintf("the lifetime asked for (%llu s) is longer than auth.max_ttl (%llu s)",
                             (unsigned long long)ttl_s, (unsigned long long)max_s);
        return -1;
    }
    if (sub != NULL && (strlen(sub) >= sizeof(((struct talas_token_claims *)0)->sub) ||
                        !talas_utf8_valid(sub, strlen(sub)))) {
        *error_r = xasprintf("the user id must be UTF-8 and shorter than %zu bytes",
                             sizeof(((struct talas_token_claims *)0)->sub));
        return -1;
    }
    exp = now + (time_t)ttl_s;
    values[0] = track;
    values[1] = kind != TALAS_TOKEN_ALL ? talas_token_kind_name(kind) : NULL;
    values[2] = sub;
    if ((token = sign_claims(auth, names, values, 3, now, exp, error_r)) == NULL)
        return -1;
    switch (kind) {
    case TALAS_TOKEN_PREVIEW:
        *url_r = xasprintf("%s/preview/%s?token=%s", conf->http_public_url, track, token);
        break;
    case TALAS_TOKEN_HLS:
        *url_r = xasprintf("%s/hls/%s/master.m3u8?token=%s", conf->http_public_url, track, token);
        break;
    default:
        *url_r = xasprintf("%s/stream/%s?token=%s", conf->http_public_url, track, token);
        break;
    }
    *exp_r = exp;
    free(token);
    return 0;
}

int talas_token_mint_share(struct talas_token *auth, const char *share, const char *listener, uint64_t ttl_s,
                           char **token_r, time_t *exp_r, char **error_r)
{
    time_t now = time(NULL), exp = now + (time_t)ttl_s;
    const char *names[] = {"share", "lid"}, *values[] = {share, listener};

    *token_r = NULL;
    if (signer_ready(auth->signer, error_r) != 0)
        return -1;
    if ((*token_r = sign_claims(auth, names, values, sizeof(names) / sizeof(*names), now, exp, error_r)) ==
        NULL)
        return -1;
    *exp_r = exp;
    return 0;
}

int talas_token_mint_room(struct talas_token *auth, const char *room, uint64_t ttl_s, char **token_r,
                          time_t *exp_r, char **error_r)
{
    time_t now = time(NULL), exp = now + (time_t)ttl_s;
    const char *names[] = {"room", "scope"}, *values[] = {room, "room"};

    *token_r = NULL;
    if (signer_ready(auth->signer, error_r) != 0)
        return -1;
    if (!room_id_valid(room)) {
        *error_r = xasprintf("not a room id");
        return -1;
    }
    if ((*token_r = sign_claims(auth, names, values, sizeof(names) / sizeof(*names), now, exp, error_r)) ==
        NULL)
        return -1;
    *exp_r = exp;
    return 0;
}

int talas_token_backend_key_ok(struct talas_token *auth, const char *authorization, size_t len)
{
    if (auth == NULL || auth->backend_key == NULL || authorization == NULL || len < 7 ||
        strncasecmp(authorization, "Bearer ", 7) != 0)
        return 0;
    authorization += 7;
    len -= 7;
    while (len > 0 && authorization[0] == ' ') {
        authorization++;
        len--;
    }
    /* the length is not secret; the bytes are compared in constant time */
    return len == auth->backend_key_len && CRYPTO_memcmp(authorization, auth->backend_key, len) == 0;
}
