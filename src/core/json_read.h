/*
 * json_read.h - a small, bounded JSON reader for flat documents: an object
 * whose members are strings, integers, booleans or null (request bodies,
 * JWT headers), or an array of strings (a JWT "aud").
 *
 * Nothing nests: an array or object inside the top-level value is an error
 * (talas_json_read_object_nested allows one level of objects), so recursion
 * depth and memory stay bounded by the input length. Strings
 * are decoded (escapes, surrogate pairs) into valid UTF-8 without NUL
 * bytes; duplicate keys are an error (two parsers must never disagree on
 * which one counts). The reader allocates one buffer of the input's length
 * for the whole parse and frees it before returning.
 */
#ifndef TALAS_JSON_READ_H
#define TALAS_JSON_READ_H

#include <stddef.h>
#include <stdint.h>

enum talas_json_type {
    TALAS_JSON_STRING,
    TALAS_JSON_INTEGER, /* fits in int64_t, no fraction or exponent */
    TALAS_JSON_NUMBER,  /* any other number: the caller decides whether it is an error */
    TALAS_JSON_TRUE,
    TALAS_JSON_FALSE,
    TALAS_JSON_NULL,
    TALAS_JSON_OBJECT, /* talas_json_read_object_nested only: see there */
    TALAS_JSON_ARRAY,  /* talas_json_read_object_nested only: an array of strings, its raw text */
};

struct talas_json_value {
    enum talas_json_type type;
    const char *str; /* STRING: decoded, NUL-terminated, valid only during the callback */
    size_t len;      /* STRING: its length in bytes */
    int64_t num;     /* INTEGER */
    double dbl;      /* INTEGER and NUMBER: the value as strtod reads it */
};

/* Two of the errors a reader gives in *error_r, for a caller to name apart
 * (compare the pointers): a string that is not valid UTF-8, or that holds
 * U+0000. */
extern const char talas_json_error_utf8[];
extern const char talas_json_error_nul[];

/* Called once per member (object) or element (array, KEY NULL). Returns 0
 * to go on; any other value stops the parse and becomes its result. */
typedef int talas_json_member_fn(const char *key, const struct talas_json_value *v, void *arg);

/*
 * Parses TEXT (LEN bytes, not NUL-terminated) as a flat object and calls FN
 * for each member in order. Returns 0; -1 when TEXT is not such an object,
 * with a static description in *error_r; or what FN returned.
 */
int talas_json_read_object(const char *text, size_t len, talas_json_member_fn *fn, void *arg,
                           const char **error_r);

/*
 * The same, but a member may also be an object (one level: nothing nests in
 * it). FN gets it as TALAS_JSON_OBJECT with STR/LEN the object's raw text
 * from '{' to '}' (not NUL-terminated, in TEXT), checked already, to read
 * with talas_json_read_object. An array of strings comes the same way as
 * TALAS_JSON_ARRAY (read it with talas_json_read_string_array).
 */
int talas_json_read_object_nested(const char *text, size_t len, talas_json_member_fn *fn, void *arg,
                                  const char **error_r);

/* The same for an array of strings (other element types are an error). */
int talas_json_read_string_array(const char *text, size_t len, talas_json_member_fn *fn, void *arg,
                                 const char **error_r);

/*
 * At the opening quote of a JSON string in [*P_R, END): decodes it into
 * *OUT_R (room for the encoded length + 1: a decoded string is never
 * longer), NUL-terminated; *LEN_R gets its length without the NUL, *P_R
 * and *OUT_R move past it. The string must be valid UTF-8 without NUL.
 * Returns 0, or -1 with *error_r a static message. Shared by this reader
 * and the /api/ws command parser.
 */
int talas_json_scan_string(const char **p_r, const char *end, char **out_r, size_t *len_r, const char **error_r);

#endif
