/*
 * json.h - a small JSON writer into a talas_buf.
 *
 * The writer tracks nesting so that commas come out right; callers emit
 * keys and values in order. Strings are escaped per RFC 8259; invalid UTF-8
 * in a string is replaced by U+FFFD so the output is always valid JSON.
 */
#ifndef TALAS_JSON_H
#define TALAS_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "core/util.h"

#define TALAS_JSON_MAX_DEPTH 32

struct talas_json {
    struct talas_buf *out;
    int depth;
    /* need_comma[d]: a value was already written at depth d */
    unsigned char need_comma[TALAS_JSON_MAX_DEPTH];
    int after_key;
};

void talas_json_init(struct talas_json *json, struct talas_buf *out);
void talas_json_object_begin(struct talas_json *json);
void talas_json_object_end(struct talas_json *json);
void talas_json_array_begin(struct talas_json *json);
void talas_json_array_end(struct talas_json *json);
void talas_json_key(struct talas_json *json, const char *key);
void talas_json_string(struct talas_json *json, const char *s);
void talas_json_string_n(struct talas_json *json, const char *s, size_t len);
void talas_json_int(struct talas_json *json, int64_t v);
void talas_json_uint(struct talas_json *json, uint64_t v);
void talas_json_double(struct talas_json *json, double v);
/* V with at most DIGITS (0..9) decimals, trailing zeros dropped ("-23.4",
 * "120"): measurements, whose last digits would be noise. Non-finite: null. */
void talas_json_double_digits(struct talas_json *json, double v, int digits);
void talas_json_bool(struct talas_json *json, int v);
void talas_json_null(struct talas_json *json);

/* Appends S as a quoted, escaped JSON string to OUT. */
void talas_json_escape(struct talas_buf *out, const char *s, size_t len);

#endif
