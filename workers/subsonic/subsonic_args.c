/*
 * subsonic_args.c - a Subsonic request's parameters and credentials
 * (subsonic_args.h). Pure: no h2o, no LMDB, no logging.
 *
 * Entry points: talas_subsonic_args_parse / _free, talas_subsonic_arg,
 * talas_subsonic_arg_all, talas_subsonic_arg_int, talas_subsonic_method,
 * talas_subsonic_format, talas_subsonic_auth_parse / _free,
 * talas_subsonic_token_ok. Harness: tests/fuzz/fuzz_subsonic.c.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/config.h"
#include "core/util.h"
#include "http/http_parse.h"
#include "subsonic/subsonic_args.h"

#define USER_MAX 128
#define PASSWORD_MAX 256
#define SALT_MAX 256
#define APIKEY_MAX 128
#define CALLBACK_MAX 128

/* Decodes LEN bytes of form encoding into a malloc'd string
 * (http_parse.c's decoder); NULL when malformed or it holds a NUL. */
static char *form_decode(const char *s, size_t len)
{
    char *out = xmalloc(len + 1);
    ssize_t n = talas_http_percent_decode(s, len, out);

    if (n < 0 || memchr(out, '\0', (size_t)n) != NULL) {
        free(out);
        return NULL;
    }
    return out;
}

int talas_subsonic_args_parse(struct talas_subsonic_args *a, const char *text, size_t len)
{
    size_t at = 0;

    while (at < len) {
        const char *field = text + at, *amp = memchr(field, '&', len - at), *eq;
        size_t flen = amp != NULL ? (size_t)(amp - field) : len - at;
        char *name, *value;

        at += flen + 1;
        if (flen == 0)
            continue; /* "a=1&&b=2" */
        eq = memchr(field, '=', flen);
        name = form_decode(field, eq != NULL ? (size_t)(eq - field) : flen);
        value = eq != NULL ? form_decode(eq + 1, flen - (size_t)(eq - field) - 1) : xstrdup("");
        if (name == NULL || value == NULL || a->count == TALAS_SUBSONIC_MAX_PARAMS) {
            free(name);
            free(value);
            return -1;
        }
        if (a->count == a->cap) {
            a->cap = a->cap ? a->cap * 2 : 16;
            a->params = xrealloc(a->params, a->cap * sizeof(*a->params));
        }
        a->params[a->count].name = name;
        a->params[a->count].value = value;
        a->count++;
    }
    return 0;
}

void talas_subsonic_args_free(struct talas_subsonic_args *a)
{
    for (size_t i = 0; i < a->count; i++) {
        free(a->params[i].name);
        /* a password may be among them */
        OPENSSL_cleanse(a->params[i].value, strlen(a->params[i].value));
        free(a->params[i].value);
    }
    free(a->params);
    memset(a, 0, sizeof(*a));
}

const char *talas_subsonic_arg(const struct talas_subsonic_args *a, const char *name)
{
    for (size_t i = 0; i < a->count; i++)
        if (strcmp(a->params[i].name, name) == 0)
            return a->params[i].value;
    return NULL;
}

size_t talas_subsonic_arg_all(const struct talas_subsonic_args *a, const char *name, const char **out,
                              size_t max)
{
    size_t n = 0;

    for (size_t i = 0; i < a->count; i++)
        if (strcmp(a->params[i].name, name) == 0) {
            if (n < max)
                out[n] = a->params[i].value;
            n++;
        }
    return n;
}

int talas_subsonic_arg_int(const struct talas_subsonic_args *a, const char *name, int64_t min, int64_t max,
                           int64_t def, int64_t *v_r, const char **error_r)
{
    const char *s = talas_subsonic_arg(a, name);
    int64_t v = 0;
    int neg = 0;

    if (s == NULL || *s == '\0') {
        *v_r = def;
        return 0;
    }
    if (*s == '-') {
        neg = 1;
        s++;
    }
    if (*s == '\0')
        goto bad;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9' || v > (INT64_MAX - 9) / 10)
            goto bad;
        v = v * 10 + (*s - '0');
    }
    if (neg)
        v = -v;
    if (v < min || v > max)
        goto bad;
    *v_r = v;
    return 0;

bad:
    *error_r = "must be an integer in its range";
    return -1;
}

int talas_subsonic_method(const char *path, size_t len, char name_r[TALAS_SUBSONIC_METHOD_MAX + 1])
{
    static const char prefix[] = "/rest/";
    size_t n;

    if (len <= sizeof(prefix) - 1 || memcmp(path, prefix, sizeof(prefix) - 1) != 0)
        return -1;
    path += sizeof(prefix) - 1;
    len -= sizeof(prefix) - 1;
    if (len > 5 && memcmp(path + len - 5, ".view", 5) == 0)
        len -= 5;
    if (len == 0 || len > TALAS_SUBSONIC_METHOD_MAX)
        return -1;
    for (n = 0; n < len; n++) {
        char c = path[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            return -1;
        name_r[n] = c;
    }
    name_r[n] = '\0';
    return 0;
}

static int callback_ok(const char *s)
{
    size_t len = strlen(s);

    if (len == 0 || len > CALLBACK_MAX || (s[0] >= '0' && s[0] <= '9') || s[0] == '.')
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '$' || c == '.'))
            return 0;
    }
    return 1;
}

int talas_subsonic_format(const struct talas_subsonic_args *a, enum talas_subsonic_format *format_r,
                          const char **callback_r, const char **error_r)
{
    const char *f = talas_subsonic_arg(a, "f"), *cb;

    *callback_r = NULL;
    *format_r = TALAS_SUBSONIC_XML;
    if (f == NULL || strcmp(f, "xml") == 0)
        return 0;
    if (strcmp(f, "json") == 0) {
        *format_r = TALAS_SUBSONIC_JSON;
        return 0;
    }
    if (strcmp(f, "jsonp") != 0) {
        *error_r = "f: must be xml, json or jsonp";
        return -1;
    }
    *format_r = TALAS_SUBSONIC_JSON;
    cb = talas_subsonic_arg(a, "callback");
    if (cb == NULL || !callback_ok(cb)) {
        *error_r = "callback: f=jsonp needs a JavaScript name ([A-Za-z_$][A-Za-z0-9_$.]*, at most 128 bytes)";
        return -1;
    }
    *format_r = TALAS_SUBSONIC_JSONP;
    *callback_r = cb;
    return 0;
}

int talas_subsonic_auth_parse(const struct talas_subsonic_args *a, struct talas_subsonic_auth *auth,
                              const char **error_r)
{
    const char *u = talas_subsonic_arg(a, "u"), *p = talas_subsonic_arg(a, "p"),
               *t = talas_subsonic_arg(a, "t"), *s = talas_subsonic_arg(a, "s"),
               *key = talas_subsonic_arg(a, "apiKey");

    memset(auth, 0, sizeof(*auth));
    if (key != NULL) {
        if (u != NULL || p != NULL || t != NULL) {
            *error_r = "apiKey cannot come with u, p or t";
            return TALAS_SUBSONIC_E_AUTH_CONFLICT;
        }
        if (*key == '\0' || strlen(key) > APIKEY_MAX) {
            *error_r = "invalid API key";
            return TALAS_SUBSONIC_E_APIKEY;
        }
        auth->mode = TALAS_SUBSONIC_AUTH_APIKEY;
        auth->apikey = key;
        return 0;
    }
    if (u == NULL) {
        if (p != NULL || t != NULL || s != NULL) {
            *error_r = "credentials without a user (u) are not an authentication mechanism of this server";
            return TALAS_SUBSONIC_E_AUTH_MECH;
        }
        *error_r = "required parameter is missing: u (with p, or t and s), or apiKey";
        return TALAS_SUBSONIC_E_MISSING;
    }
    if (p != NULL && (t != NULL || s != NULL)) {
        *error_r = "p cannot come with t and s";
        return TALAS_SUBSONIC_E_AUTH_CONFLICT;
    }
    if (*u == '\0' || strlen(u) > USER_MAX) {
        *error_r = "wrong username or password";
        return TALAS_SUBSONIC_E_CREDENTIALS;
    }
    auth->user = u;
    if (p != NULL) {
        size_t len = strlen(p);

        auth->mode = TALAS_SUBSONIC_AUTH_PASSWORD;
        if (strncmp(p, "enc:", 4) == 0) {
            size_t hex = len - 4;
            if (hex % 2 != 0 || hex / 2 > PASSWORD_MAX)
                goto bad_credentials;
            auth->password = xmalloc(hex / 2 + 1);
            for (size_t i = 0; i < hex / 2; i++) {
                int hi = talas_http_hex_value(p[4 + 2 * i]), lo = talas_http_hex_value(p[5 + 2 * i]);
                if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                    talas_subsonic_auth_free(auth);
                    goto bad_credentials;
                }
                auth->password[i] = (char)(hi * 16 + lo);
            }
            auth->password_len = hex / 2;
        } else {
            if (len > PASSWORD_MAX)
                goto bad_credentials;
            auth->password = xmalloc(len + 1);
            memcpy(auth->password, p, len);
            auth->password_len = len;
        }
        auth->password[auth->password_len] = '\0';
        return 0;
    }
    if (t == NULL || s == NULL) {
        *error_r = t == NULL && s == NULL ? "required parameter is missing: p, or t and s"
                   : t == NULL            ? "required parameter is missing: t"
                                          : "required parameter is missing: s";
        return TALAS_SUBSONIC_E_MISSING;
    }
    if (strlen(t) != 32 || strlen(s) > SALT_MAX)
        goto bad_credentials;
    for (size_t i = 0; i < 32; i++)
        if (talas_http_hex_value(t[i]) < 0)
            goto bad_credentials;
    auth->mode = TALAS_SUBSONIC_AUTH_TOKEN;
    auth->token = t;
    auth->salt = s;
    return 0;

bad_credentials:
    *error_r = "wrong username or password";
    return TALAS_SUBSONIC_E_CREDENTIALS;
}

void talas_subsonic_auth_free(struct talas_subsonic_auth *auth)
{
    if (auth->password != NULL) {
        OPENSSL_cleanse(auth->password, auth->password_len);
        free(auth->password);
    }
    memset(auth, 0, sizeof(*auth));
}

int talas_subsonic_token_ok(const char *password, size_t len, const char *salt, const char *token)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    char want[32], got[32];
    unsigned int md_len = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int ok;

    if (strlen(token) != 32) {
        EVP_MD_CTX_free(c);
        return 0;
    }
    ok = c != NULL && EVP_DigestInit_ex(c, EVP_md5(), NULL) == 1 && EVP_DigestUpdate(c, password, len) == 1 &&
         EVP_DigestUpdate(c, salt, strlen(salt)) == 1 && EVP_DigestFinal_ex(c, md, &md_len) == 1 &&
         md_len == 16;
    EVP_MD_CTX_free(c);
    if (!ok)
        return 0;
    for (size_t i = 0; i < 16; i++) {
        want[2 * i] = hex[md[i] >> 4];
        want[2 * i + 1] = hex[md[i] & 15];
    }
    for (size_t i = 0; i < 32; i++)
        got[i] = token[i] >= 'A' && token[i] <= 'F' ? (char)(token[i] - 'A' + 'a') : token[i];
    return CRYPTO_memcmp(want, got, 32) == 0;
}

const struct talas_config_profile *talas_subsonic_pick_profile(const struct talas_config *conf,
                                                               const char *format, int64_t max_kbps,
                                                               uint64_t source_bps)
{
    const struct talas_config_profile *best = NULL, *lowest = NULL;
    int want = -1, any_of_want = 0;

    if (format != NULL && strcmp(format, "raw") == 0)
        return NULL;
    if (format != NULL && strcmp(format, "mp3") == 0)
        want = TALAS_CONFIG_CODEC_MP3;
    else if (format != NULL && (strcmp(format, "aac") == 0 || strcmp(format, "m4a") == 0))
        want = TALAS_CONFIG_CODEC_AAC;
    if (want == -1 && (max_kbps <= 0 || (source_bps > 0 && source_bps <= (uint64_t)max_kbps * 1000)))
        return NULL;
    for (size_t i = 0; i < conf->transcode_profile_count; i++)
        any_of_want |= (int)conf->transcode_profiles[i].codec == want;
    for (size_t i = 0; i < conf->transcode_profile_count; i++) {
        const struct talas_config_profile *p = &conf->transcode_profiles[i];
        if (any_of_want && (int)p->codec != want)
            continue;
        if (lowest == NULL || p->bitrate < lowest->bitrate ||
            (p->bitrate == lowest->bitrate && p->codec == TALAS_CONFIG_CODEC_MP3))
            lowest = p;
        if (max_kbps > 0 && p->bitrate > max_kbps)
            continue;
        if (best == NULL || p->bitrate > best->bitrate ||
            (p->bitrate == best->bitrate && p->codec == TALAS_CONFIG_CODEC_MP3))
            best = p;
    }
    return best != NULL ? best : lowest;
}
