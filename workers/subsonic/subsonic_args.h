/*
 * subsonic_args.h - the parameters of a Subsonic API request (/rest/NAME,
 * /rest/NAME.view), read from the query string and a form body, and its
 * credentials: pure code (no h2o, no LMDB), unit-tested and fuzzed.
 *
 * Subsonic clients send everything as form fields: the credentials (u with
 * p, or t and s; or apiKey), the answer's format (f, callback), and the
 * method's own arguments, some repeated (id, songId). Each request's
 * parameters are decoded once into a struct talas_subsonic_args, which
 * owns copies of every name and value (freed by talas_subsonic_args_free).
 *
 * The error codes are the Subsonic API's: TALAS_SUBSONIC_E_*.
 */
#ifndef TALAS_SUBSONIC_ARGS_H
#define TALAS_SUBSONIC_ARGS_H

#include <stddef.h>
#include <stdint.h>

/* The API's error codes. */
enum {
    TALAS_SUBSONIC_E_GENERIC = 0,        /* also "not implemented" */
    TALAS_SUBSONIC_E_MISSING = 10,       /* a required parameter is missing */
    TALAS_SUBSONIC_E_CREDENTIALS = 40,   /* wrong username or password */
    TALAS_SUBSONIC_E_AUTH_MECH = 42,     /* this authentication mechanism is not supported */
    TALAS_SUBSONIC_E_AUTH_CONFLICT = 43, /* several conflicting mechanisms in one request */
    TALAS_SUBSONIC_E_APIKEY = 44,        /* invalid API key */
    TALAS_SUBSONIC_E_FORBIDDEN = 50,     /* the user is not authorized */
    TALAS_SUBSONIC_E_NOT_FOUND = 70,     /* the data was not found */
};

#define TALAS_SUBSONIC_MAX_PARAMS 1024 /* a request with more is refused */
#define TALAS_SUBSONIC_METHOD_MAX 63   /* bytes of a method name */

struct talas_subsonic_param {
    char *name;  /* decoded, NUL-terminated */
    char *value; /* decoded, NUL-terminated (a NUL inside is refused) */
};

struct talas_subsonic_args {
    struct talas_subsonic_param *params; /* in the order sent: query first, then the body */
    size_t count, cap;
};

/*
 * Decodes the LEN bytes of an application/x-www-form-urlencoded text
 * (a query string without its "?", or a form body) and appends its
 * fields to A (A zeroed before the first call). "+" is a space; a field
 * without "=" has the value "". Returns 0, or -1 when a percent escape is
 * malformed, a name or value decodes to a NUL byte, or the fields would
 * pass TALAS_SUBSONIC_MAX_PARAMS (A then keeps what came before).
 */
int talas_subsonic_args_parse(struct talas_subsonic_args *a, const char *text, size_t len);
void talas_subsonic_args_free(struct talas_subsonic_args *a);

/* The first value of NAME, or NULL. */
const char *talas_subsonic_arg(const struct talas_subsonic_args *a, const char *name);
/* Every value of NAME in order, up to MAX into OUT; returns how many there
 * are (may be more than MAX). */
size_t talas_subsonic_arg_all(const struct talas_subsonic_args *a, const char *name, const char **out,
                              size_t max);

/*
 * Reads integer parameter NAME into *v_r: DEF when absent (or given
 * empty), else a decimal in MIN..MAX. Returns 0, or -1 with a static
 * message in *error_r ("size: must be an integer from 0 to 500").
 */
int talas_subsonic_arg_int(const struct talas_subsonic_args *a, const char *name, int64_t min, int64_t max,
                           int64_t def, int64_t *v_r, const char **error_r);

/* The method of PATH (LEN bytes, h2o's normalised path): "/rest/ping" and
 * "/rest/ping.view" both give "ping" in NAME_R. Returns 0, or -1 when PATH
 * is not under /rest/ or the name is empty, too long or not [A-Za-z0-9]. */
int talas_subsonic_method(const char *path, size_t len, char name_r[TALAS_SUBSONIC_METHOD_MAX + 1]);

enum talas_subsonic_format {
    TALAS_SUBSONIC_XML,
    TALAS_SUBSONIC_JSON,
    TALAS_SUBSONIC_JSONP,
};

/* The answer's format from f (absent: xml) and, for jsonp, callback (a
 * JavaScript name: [A-Za-z_$][A-Za-z0-9_$.]*, at most 128 bytes). Returns
 * 0; or -1 with a static message when f is unknown (FORMAT_R is then XML,
 * which the error should be written in) or jsonp lacks a good callback
 * (FORMAT_R is then JSON). */
int talas_subsonic_format(const struct talas_subsonic_args *a, enum talas_subsonic_format *format_r,
                          const char **callback_r, const char **error_r);

enum talas_subsonic_auth_mode {
    TALAS_SUBSONIC_AUTH_PASSWORD, /* u and p (clear, or enc:HEX) */
    TALAS_SUBSONIC_AUTH_TOKEN,    /* u, t = md5(password + s), s */
    TALAS_SUBSONIC_AUTH_APIKEY,   /* apiKey (OpenSubsonic) */
};

struct talas_subsonic_auth {
    enum talas_subsonic_auth_mode mode;
    const char *user; /* u (PASSWORD, TOKEN); points into the args */
    char *password;   /* PASSWORD: the clear password (enc: decoded), malloc'd; NULL otherwise */
    size_t password_len;
    const char *token;  /* TOKEN: 32 hex digits */
    const char *salt;   /* TOKEN */
    const char *apikey; /* APIKEY */
};

/*
 * Which credentials A carries. Returns 0 with AUTH filled (free it with
 * talas_subsonic_auth_free); else an error code with a static message in
 * *error_r: TALAS_SUBSONIC_E_AUTH_CONFLICT (apiKey together with u, or p
 * together with t), TALAS_SUBSONIC_E_MISSING (no credentials, u without
 * p or t and s, t without s), TALAS_SUBSONIC_E_CREDENTIALS (a malformed
 * one: an enc: password that is not hex or decodes to a NUL, a token that
 * is not 32 hex digits, a user name, password, salt or key too long).
 */
int talas_subsonic_auth_parse(const struct talas_subsonic_args *a, struct talas_subsonic_auth *auth,
                              const char **error_r);
void talas_subsonic_auth_free(struct talas_subsonic_auth *auth);

/* 1 when TOKEN (hex, either case) is md5(PASSWORD (LEN bytes) + SALT),
 * compared in constant time; else 0. */
int talas_subsonic_token_ok(const char *password, size_t len, const char *salt, const char *token);

/*
 * What /rest/stream sends for format FORMAT (NULL when absent) and
 * maxBitRate MAX_KBPS (0: no limit) of a source of SOURCE_BPS bits per
 * second (0: unknown): NULL for the original file (format "raw"; no
 * format and no limit; no format and a source within the limit), else
 * the transcode profile of CONF to use: of the codec FORMAT names (mp3;
 * aac or m4a) when CONF has one, the highest bit rate within MAX_KBPS
 * (MP3 first among equals: every Subsonic app plays it), or the lowest
 * when none is within it.
 */
struct talas_config;
struct talas_config_profile;
const struct talas_config_profile *talas_subsonic_pick_profile(const struct talas_config *conf,
                                                               const char *format, int64_t max_kbps,
                                                               uint64_t source_bps);

#endif
