/*
 * json_read.c - the flat JSON reader (json_read.h).
 *
 * Entry points: talas_json_read_object, talas_json_read_string_array. A
 * single forward pass over the input with an explicit cursor; strings are
 * decoded into one scratch buffer as long as the input (a decoded string is
 * never longer than its encoding), so the parse makes one allocation. It
 * logs nothing: errors come back as static strings.
 */
#include <stdlib.h>
#include <string.h>

#include "core/json_read.h"
#include "core/util.h"

const char talas_json_error_utf8[] = "invalid UTF-8 in a string";
const char talas_json_error_nul[] = "NUL character in a string";

/* More members than any document Talas reads; bounds the duplicate check. */
#define MAX_MEMBERS 64

struct reader {
    const char *p, *end;
    char *out; /* next free byte of the scratch buffer */
    const char *error;
    int nest; /* levels of nested objects still allowed */
};

static void skip_ws(struct reader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static int fail(struct reader *r, const char *error)
{
    if (r->error == NULL)
        r->error = error;
    return -1;
}

/* The string scanner shared with the /api/ws parser (json_read.h). */
struct scan {
    const char *p, *end;
    char *out;
};

static int hex4(struct scan *c, unsigned *v_r)
{
    unsigned v = 0;

    if (c->end - c->p < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        char ch = *c->p++;
        v <<= 4;
        if (ch >= '0' && ch <= '9')
            v |= (unsigned)(ch - '0');
        else if (ch >= 'a' && ch <= 'f')
            v |= (unsigned)(ch - 'a' + 10);
        else if (ch >= 'A' && ch <= 'F')
            v |= (unsigned)(ch - 'A' + 10);
        else
            return -1;
    }
    *v_r = v;
    return 0;
}

static void put_utf8(struct scan *c, unsigned cp)
{
    if (cp < 0x80) {
        *c->out++ = (char)cp;
    } else if (cp < 0x800) {
        *c->out++ = (char)(0xc0 | (cp >> 6));
        *c->out++ = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        *c->out++ = (char)(0xe0 | (cp >> 12));
        *c->out++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *c->out++ = (char)(0x80 | (cp & 0x3f));
    } else {
        *c->out++ = (char)(0xf0 | (cp >> 18));
        *c->out++ = (char)(0x80 | ((cp >> 12) & 0x3f));
        *c->out++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *c->out++ = (char)(0x80 | (cp & 0x3f));
    }
}

static int scan_string(struct scan *c, const char **error_r)
{
    char *start = c->out;

    c->p++;
    for (;;) {
        unsigned char ch;
        if (c->p >= c->end) {
            *error_r = "unterminated string";
            return -1;
        }
        ch = (unsigned char)*c->p;
        if (ch == '"') {
            c->p++;
            break;
        }
        if (ch < 0x20) {
            *error_r = "control character in a string";
            return -1;
        }
        if (ch != '\\') {
            *c->out++ = (char)ch;
            c->p++;
            continue;
        }
        if (++c->p >= c->end) {
            *error_r = "unterminated string";
            return -1;
        }
        ch = (unsigned char)*c->p++;
        switch (ch) {
        case '"':
        case '\\':
        case '/':
            *c->out++ = (char)ch;
            break;
        case 'b':
            *c->out++ = '\b';
            break;
        case 'f':
            *c->out++ = '\f';
            break;
        case 'n':
            *c->out++ = '\n';
            break;
        case 'r':
            *c->out++ = '\r';
            break;
        case 't':
            *c->out++ = '\t';
            break;
        case 'u': {
            unsigned cp, lo;
            if (c->end - c->p < 4) {
                *error_r = "truncated \\u escape";
                return -1;
            }
            if (hex4(c, &cp) != 0) {
                *error_r = "bad \\u escape";
                return -1;
            }
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (c->end - c->p < 6 || c->p[0] != '\\' || c->p[1] != 'u') {
                    *error_r = "unpaired surrogate";
                    return -1;
                }
                c->p += 2;
                if (hex4(c, &lo) != 0) {
                    *error_r = "bad \\u escape";
                    return -1;
                }
                if (lo < 0xdc00 || lo > 0xdfff) {
                    *error_r = "unpaired surrogate";
                    return -1;
                }
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                *error_r = "unpaired surrogate";
                return -1;
            }
            if (cp == 0) {
                *error_r = talas_json_error_nul;
                return -1;
            }
            put_utf8(c, cp);
            break;
        }
        default:
            *error_r = "bad escape in a string";
            return -1;
        }
    }
    if (!talas_utf8_valid(start, (size_t)(c->out - start))) {
        *error_r = talas_json_error_utf8;
        return -1;
    }
    *c->out++ = '\0';
    return 0;
}

int talas_json_scan_string(const char **p_r, const char *end, char **out_r, size_t *len_r,
                           const char **error_r)
{
    struct scan c = {*p_r, end, *out_r};
    char *start = *out_r;

    if (scan_string(&c, error_r) != 0)
        return -1;
    *p_r = c.p;
    *out_r = c.out;
    *len_r = (size_t)(c.out - start) - 1;
    return 0;
}

/* At the opening quote: decodes the string into the scratch buffer. */
static int read_string(struct reader *r, const char **s_r, size_t *len_r)
{
    const char *error;

    *s_r = r->out;
    if (talas_json_scan_string(&r->p, r->end, &r->out, len_r, &error) != 0)
        return fail(r, error);
    return 0;
}

static int read_number(struct reader *r, struct talas_json_value *v)
{
    const char *p = r->p;
    int neg = 0, integer = 1, overflow = 0;
    uint64_t n = 0, limit;

    if (p < r->end && *p == '-') {
        neg = 1;
        p++;
    }
    if (p >= r->end || *p < '0' || *p > '9')
        return fail(r, "bad number");
    if (*p == '0' && p + 1 < r->end && p[1] >= '0' && p[1] <= '9')
        return fail(r, "bad number (leading zero)");
    limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; p < r->end && *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (n > (limit - d) / 10)
            overflow = 1;
        else
            n = n * 10 + d;
    }
    if (p < r->end && *p == '.') {
        integer = 0;
        if (++p >= r->end || *p < '0' || *p > '9')
            return fail(r, "bad number");
        while (p < r->end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < r->end && (*p == 'e' || *p == 'E')) {
        integer = 0;
        if (++p < r->end && (*p == '+' || *p == '-'))
            p++;
        if (p >= r->end || *p < '0' || *p > '9')
            return fail(r, "bad number");
        while (p < r->end && *p >= '0' && *p <= '9')
            p++;
    }
    /* the token is copied into the scratch buffer, which has room for it
     * (what is decoded never outgrows what was read), without keeping it */
    memcpy(r->out, r->p, (size_t)(p - r->p));
    r->out[p - r->p] = '\0';
    v->dbl = strtod(r->out, NULL);
    r->p = p;
    if (!integer || overflow) {
        v->type = TALAS_JSON_NUMBER;
        return 0;
    }
    v->type = TALAS_JSON_INTEGER;
    v->num = neg ? (n == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)n) : (int64_t)n;
    return 0;
}

static int read_literal(struct reader *r, const char *word, enum talas_json_type type,
                        struct talas_json_value *v)
{
    size_t n = strlen(word);

    if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0)
        return fail(r, "unexpected character");
    r->p += n;
    v->type = type;
    return 0;
}

static int read_nested_object(struct reader *r, struct talas_json_value *v);
static int read_nested_array(struct reader *r, struct talas_json_value *v);

static int read_value(struct reader *r, struct talas_json_value *v)
{
    memset(v, 0, sizeof(*v));
    if (r->p >= r->end)
        return fail(r, "value expected");
    switch (*r->p) {
    case '"':
        v->type = TALAS_JSON_STRING;
        return read_string(r, &v->str, &v->len);
    case 't':
        return read_literal(r, "true", TALAS_JSON_TRUE, v);
    case 'f':
        return read_literal(r, "false", TALAS_JSON_FALSE, v);
    case 'n':
        return read_literal(r, "null", TALAS_JSON_NULL, v);
    case '{':
        if (r->nest > 0)
            return read_nested_object(r, v);
        return fail(r, "nested objects and arrays are not accepted");
    case '[':
        if (r->nest > 0)
            return read_nested_array(r, v);
        return fail(r, "nested objects and arrays are not accepted");
    default:
        return read_number(r, v);
    }
}

/* After OPEN: reads the members up to and including CLOSE, calling FN
 * (when not NULL) for each. Returns 0, -1 (r->error says why) or what FN
 * returned. Members have keys when OPEN is '{'. */
static int read_members(struct reader *r, char open, char close, talas_json_member_fn *fn, void *arg)
{
    const char *keys[MAX_MEMBERS];
    size_t nkeys = 0;
    int rc;

    skip_ws(r);
    if (r->p < r->end && *r->p == close) {
        r->p++;
        return 0;
    }
    for (;;) {
        struct talas_json_value v;
        const char *key = NULL;
        size_t key_len;

        if (open == '{') {
            if (r->p >= r->end || *r->p != '"')
                return fail(r, "a member name is expected");
            if (read_string(r, &key, &key_len) != 0)
                return -1;
            if (nkeys == MAX_MEMBERS)
                return fail(r, "too many members");
            for (size_t i = 0; i < nkeys; i++)
                if (strcmp(keys[i], key) == 0)
                    return fail(r, "duplicate member name");
            keys[nkeys++] = key;
            skip_ws(r);
            if (r->p >= r->end || *r->p != ':')
                return fail(r, "':' expected");
            r->p++;
            skip_ws(r);
        }
        if (read_value(r, &v) != 0)
            return -1;
        if (open == '[' && v.type != TALAS_JSON_STRING)
            return fail(r, "an array of strings is expected");
        if (fn != NULL && (rc = fn(key, &v, arg)) != 0)
            return rc;
        skip_ws(r);
        if (r->p < r->end && *r->p == ',') {
            r->p++;
            skip_ws(r);
            continue;
        }
        if (r->p < r->end && *r->p == close) {
            r->p++;
            return 0;
        }
        return fail(r, open == '{' ? "',' or '}' expected" : "',' or ']' expected");
    }
}

/* At '{' of a member's value, when one more level of nesting is allowed:
 * checks the object and hands its raw text to the caller. */
static int read_nested_object(struct reader *r, struct talas_json_value *v)
{
    const char *start = r->p;
    int rc;

    r->p++;
    r->nest--;
    rc = read_members(r, '{', '}', NULL, NULL);
    r->nest++;
    if (rc != 0)
        return -1;
    v->type = TALAS_JSON_OBJECT;
    v->str = start;
    v->len = (size_t)(r->p - start);
    return 0;
}

/* At '[' of a member's value, when one more level of nesting is allowed:
 * checks that it is an array of strings and hands its raw text over. */
static int read_nested_array(struct reader *r, struct talas_json_value *v)
{
    const char *start = r->p;
    int rc;

    r->p++;
    r->nest--;
    rc = read_members(r, '[', ']', NULL, NULL);
    r->nest++;
    if (rc != 0)
        return -1;
    v->type = TALAS_JSON_ARRAY;
    v->str = start;
    v->len = (size_t)(r->p - start);
    return 0;
}

/* Reads "{...}" or "[...]" (OPEN, CLOSE), objects nested NEST levels deep
 * at most. */
static int read_container(const char *text, size_t len, char open, char close, int nest,
                          talas_json_member_fn *fn, void *arg, const char **error_r)
{
    struct reader r = {text, text + len, NULL, NULL, nest};
    char *scratch = xmalloc(len + 1);
    int rc = -1;

    r.out = scratch;
    skip_ws(&r);
    if (r.p >= r.end || *r.p != open) {
        fail(&r, open == '{' ? "a JSON object is expected" : "a JSON array is expected");
        goto done;
    }
    r.p++;
    if ((rc = read_members(&r, open, close, fn, arg)) != 0)
        goto done;
    rc = -1;
    skip_ws(&r);
    if (r.p != r.end) {
        fail(&r, "trailing characters after the value");
        goto done;
    }
    rc = 0;

done:
    if (rc == -1)
        *error_r = r.error;
    free(scratch);
    return rc;
}

int talas_json_read_object(const char *text, size_t len, talas_json_member_fn *fn, void *arg,
                           const char **error_r)
{
    return read_container(text, len, '{', '}', 0, fn, arg, error_r);
}

int talas_json_read_object_nested(const char *text, size_t len, talas_json_member_fn *fn, void *arg,
                                  const char **error_r)
{
    return read_container(text, len, '{', '}', 1, fn, arg, error_r);
}

int talas_json_read_string_array(const char *text, size_t len, talas_json_member_fn *fn, void *arg,
                                 const char **error_r)
{
    return read_container(text, len, '[', ']', 0, fn, arg, error_r);
}
