/*
 * json.c - the JSON writer used by the API and by talasctl.
 *
 * Entry points are declared in json.h. Output is always valid JSON: control
 * characters are escaped and invalid UTF-8 becomes U+FFFD, so a tag read from
 * a hostile file can never break a response.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/json.h"

void talas_json_init(struct talas_json *json, struct talas_buf *out)
{
    memset(json, 0, sizeof(*json));
    json->out = out;
}

/* Emits the comma that separates this value from the previous one. */
static void before_value(struct talas_json *json)
{
    if (json->after_key) {
        json->after_key = 0;
        return;
    }
    if (json->need_comma[json->depth])
        talas_buf_append(json->out, ",", 1);
    json->need_comma[json->depth] = 1;
}

static void open_container(struct talas_json *json, char c)
{
    before_value(json);
    talas_buf_append(json->out, &c, 1);
    if (json->depth < TALAS_JSON_MAX_DEPTH - 1)
        json->depth++;
    json->need_comma[json->depth] = 0;
}

static void close_container(struct talas_json *json, char c)
{
    if (json->depth > 0)
        json->depth--;
    talas_buf_append(json->out, &c, 1);
}

void talas_json_object_begin(struct talas_json *json)
{
    open_container(json, '{');
}

void talas_json_object_end(struct talas_json *json)
{
    close_container(json, '}');
}

void talas_json_array_begin(struct talas_json *json)
{
    open_container(json, '[');
}

void talas_json_array_end(struct talas_json *json)
{
    close_container(json, ']');
}

void talas_json_key(struct talas_json *json, const char *key)
{
    before_value(json);
    talas_json_escape(json->out, key, strlen(key));
    talas_buf_append(json->out, ":", 1);
    json->after_key = 1;
}

void talas_json_string(struct talas_json *json, const char *s)
{
    if (s == NULL) {
        talas_json_null(json);
        return;
    }
    talas_json_string_n(json, s, strlen(s));
}

void talas_json_string_n(struct talas_json *json, const char *s, size_t len)
{
    before_value(json);
    talas_json_escape(json->out, s, len);
}

void talas_json_int(struct talas_json *json, int64_t v)
{
    before_value(json);
    talas_buf_printf(json->out, "%lld", (long long)v);
}

void talas_json_uint(struct talas_json *json, uint64_t v)
{
    before_value(json);
    talas_buf_printf(json->out, "%llu", (unsigned long long)v);
}

void talas_json_double(struct talas_json *json, double v)
{
    before_value(json);
    if (!isfinite(v))
        talas_buf_puts(json->out, "null");
    else
        talas_buf_printf(json->out, "%.17g", v);
}

void talas_json_double_digits(struct talas_json *json, double v, int digits)
{
    char buf[64];
    int len;

    before_value(json);
    if (!isfinite(v) || fabs(v) >= 1e15) {
        if (isfinite(v))
            talas_buf_printf(json->out, "%.17g", v);
        else
            talas_buf_puts(json->out, "null");
        return;
    }
    if (digits < 0)
        digits = 0;
    if (digits > 9)
        digits = 9;
    len = snprintf(buf, sizeof(buf), "%.*f", digits, v);
    if (digits > 0) {
        while (buf[len - 1] == '0')
            len--;
        if (buf[len - 1] == '.')
            len--;
    }
    buf[len] = '\0';
    /* "-0" is valid JSON, but reads as a sign where there is none */
    talas_buf_puts(json->out, strcmp(buf, "-0") == 0 ? "0" : buf);
}

void talas_json_bool(struct talas_json *json, int v)
{
    before_value(json);
    talas_buf_puts(json->out, v ? "true" : "false");
}

void talas_json_null(struct talas_json *json)
{
    before_value(json);
    talas_buf_puts(json->out, "null");
}

void talas_json_escape(struct talas_buf *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    talas_buf_reserve(out, len + 2);
    talas_buf_append(out, "\"", 1);
    while (i < len) {
        unsigned char c = p[i];
        if (c >= 0x80) {
            size_t n = 0;
            /* copy one well-formed sequence, or replace one bad byte */
            for (size_t k = 2; k <= 4 && i + k <= len; k++) {
                if (talas_utf8_valid((const char *)p + i, k)) {
                    n = k;
                    break;
                }
            }
            if (n == 0) {
                talas_buf_append(out, "\xef\xbf\xbd", 3);
                i++;
            } else {
                talas_buf_append(out, p + i, n);
                i += n;
            }
            continue;
        }
        switch (c) {
        case '"':
            talas_buf_append(out, "\\\"", 2);
            break;
        case '\\':
            talas_buf_append(out, "\\\\", 2);
            break;
        case '\n':
            talas_buf_append(out, "\\n", 2);
            break;
        case '\r':
            talas_buf_append(out, "\\r", 2);
            break;
        case '\t':
            talas_buf_append(out, "\\t", 2);
            break;
        default:
            if (c < 0x20 || c == 0x7f) {
                char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                talas_buf_append(out, esc, 6);
            } else {
                talas_buf_append(out, &c, 1);
            }
        }
        i++;
    }
    talas_buf_append(out, "\"", 1);
}
