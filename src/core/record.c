/*
 * record.c - the record codec (record.h): bounds-checked little-endian
 * (and, for keys, big-endian) integers, strings and blobs.
 *
 * Entry points: talas_record_writer_buf / _mem / _end, talas_record_put_*,
 * talas_record_reader_init / _ok / _end, talas_record_get_*. Logs
 * nothing: a writer remembers an overflow, a reader a short or lying
 * record, and the caller checks once at the end.
 */
#include <string.h>

#include "core/record.h"

/* ------------------------------------------------------------------ writer */

void talas_record_writer_buf(struct talas_record_writer *w, struct talas_buf *buf)
{
    memset(w, 0, sizeof(*w));
    w->buf = buf;
}

void talas_record_writer_mem(struct talas_record_writer *w, void *mem, size_t cap)
{
    memset(w, 0, sizeof(*w));
    w->mem = mem;
    w->cap = cap;
}

int talas_record_writer_end(const struct talas_record_writer *w)
{
    return w->overflow ? -1 : 0;
}

/* Where the next LEN bytes go, or NULL (and overflow) when they do not fit. */
static unsigned char *room(struct talas_record_writer *w, size_t len)
{
    unsigned char *at;

    if (w->overflow)
        return NULL;
    if (w->buf != NULL) {
        talas_buf_reserve(w->buf, len);
        at = (unsigned char *)w->buf->data + w->buf->len;
        w->buf->len += len;
    } else {
        if (w->cap - w->len < len) {
            w->overflow = 1;
            return NULL;
        }
        at = w->mem + w->len;
    }
    w->len += len;
    return at;
}

static void put_le(struct talas_record_writer *w, uint64_t v, int bytes)
{
    unsigned char *p = room(w, (size_t)bytes);

    if (p != NULL)
        for (int i = 0; i < bytes; i++)
            p[i] = (unsigned char)(v >> (8 * i));
}

static void put_be(struct talas_record_writer *w, uint64_t v, int bytes)
{
    unsigned char *p = room(w, (size_t)bytes);

    if (p != NULL)
        for (int i = 0; i < bytes; i++)
            p[i] = (unsigned char)(v >> (8 * (bytes - 1 - i)));
}

void talas_record_put_u8(struct talas_record_writer *w, uint8_t v)
{
    put_le(w, v, 1);
}

void talas_record_put_u16(struct talas_record_writer *w, uint16_t v)
{
    put_le(w, v, 2);
}

void talas_record_put_u32(struct talas_record_writer *w, uint32_t v)
{
    put_le(w, v, 4);
}

void talas_record_put_u64(struct talas_record_writer *w, uint64_t v)
{
    put_le(w, v, 8);
}

void talas_record_put_i64(struct talas_record_writer *w, int64_t v)
{
    put_le(w, (uint64_t)v, 8);
}

void talas_record_put_f64(struct talas_record_writer *w, double v)
{
    uint64_t bits;

    _Static_assert(sizeof(double) == 8, "double is not 64 bits");
    memcpy(&bits, &v, sizeof(bits));
    put_le(w, bits, 8);
}

void talas_record_put_u16be(struct talas_record_writer *w, uint16_t v)
{
    put_be(w, v, 2);
}

void talas_record_put_u32be(struct talas_record_writer *w, uint32_t v)
{
    put_be(w, v, 4);
}

void talas_record_put_u64be(struct talas_record_writer *w, uint64_t v)
{
    put_be(w, v, 8);
}

void talas_record_put_bytes(struct talas_record_writer *w, const void *data, size_t len)
{
    unsigned char *p = room(w, len);

    if (p != NULL && len > 0)
        memcpy(p, data, len);
}

void talas_record_put_zero(struct talas_record_writer *w, size_t len)
{
    unsigned char *p = room(w, len);

    if (p != NULL && len > 0)
        memset(p, 0, len);
}

void talas_record_put_str(struct talas_record_writer *w, const char *s)
{
    size_t len;

    if (s == NULL)
        s = "";
    len = strlen(s);
    /* a length that would not read back as the same string */
    if (len > UINT32_MAX - 1) {
        w->overflow = 1;
        return;
    }
    talas_record_put_u32(w, (uint32_t)len);
    talas_record_put_bytes(w, s, len + 1);
}

void talas_record_put_strn(struct talas_record_writer *w, const char *s, size_t size)
{
    size_t len = size > 0 ? strnlen(s, size - 1) : 0;

    if (len > UINT32_MAX - 1) {
        w->overflow = 1;
        return;
    }
    talas_record_put_u32(w, (uint32_t)len);
    talas_record_put_bytes(w, s, len);
    talas_record_put_u8(w, 0);
}

void talas_record_put_blob(struct talas_record_writer *w, const void *data, size_t len)
{
    if (len > UINT32_MAX) {
        w->overflow = 1;
        return;
    }
    talas_record_put_u32(w, (uint32_t)len);
    talas_record_put_bytes(w, data, len);
}

/* ------------------------------------------------------------------ reader */

void talas_record_reader_init(struct talas_record_reader *r, const void *data, size_t len)
{
    r->p = data;
    r->left = data != NULL ? len : 0;
    r->bad = 0;
}

int talas_record_reader_ok(const struct talas_record_reader *r)
{
    return r->bad ? -1 : 0;
}

int talas_record_reader_end(const struct talas_record_reader *r)
{
    return r->bad || r->left != 0 ? -1 : 0;
}

/* The next LEN bytes, or NULL (and bad) when fewer are left. */
static const unsigned char *take(struct talas_record_reader *r, size_t len)
{
    const unsigned char *at = r->p;

    if (r->bad || r->left < len) {
        r->bad = 1;
        return NULL;
    }
    if (at == NULL)
        at = (const unsigned char *)""; /* an empty take of an empty record */
    else
        r->p += len;
    r->left -= len;
    return at;
}

static uint64_t get_le(struct talas_record_reader *r, int bytes)
{
    const unsigned char *p = take(r, (size_t)bytes);
    uint64_t v = 0;

    if (p != NULL)
        for (int i = bytes - 1; i >= 0; i--)
            v = v << 8 | p[i];
    return v;
}

static uint64_t get_be(struct talas_record_reader *r, int bytes)
{
    const unsigned char *p = take(r, (size_t)bytes);
    uint64_t v = 0;

    if (p != NULL)
        for (int i = 0; i < bytes; i++)
            v = v << 8 | p[i];
    return v;
}

uint8_t talas_record_get_u8(struct talas_record_reader *r)
{
    return (uint8_t)get_le(r, 1);
}

uint16_t talas_record_get_u16(struct talas_record_reader *r)
{
    return (uint16_t)get_le(r, 2);
}

uint32_t talas_record_get_u32(struct talas_record_reader *r)
{
    return (uint32_t)get_le(r, 4);
}

uint64_t talas_record_get_u64(struct talas_record_reader *r)
{
    return get_le(r, 8);
}

int64_t talas_record_get_i64(struct talas_record_reader *r)
{
    return (int64_t)get_le(r, 8);
}

double talas_record_get_f64(struct talas_record_reader *r)
{
    uint64_t bits = get_le(r, 8);
    double v;

    memcpy(&v, &bits, sizeof(v));
    return v;
}

uint32_t talas_record_get_u32be(struct talas_record_reader *r)
{
    return (uint32_t)get_be(r, 4);
}

uint64_t talas_record_get_u64be(struct talas_record_reader *r)
{
    return get_be(r, 8);
}

const void *talas_record_get_bytes(struct talas_record_reader *r, size_t len)
{
    return take(r, len);
}

void talas_record_get_zero(struct talas_record_reader *r, size_t len)
{
    const unsigned char *p = take(r, len);

    for (size_t i = 0; p != NULL && i < len; i++)
        if (p[i] != 0) {
            r->bad = 1;
            return;
        }
}

const char *talas_record_get_str(struct talas_record_reader *r, size_t *len_r)
{
    uint32_t len = talas_record_get_u32(r);
    const char *s;

    /* check the length against what is left before taking anything, so
     * that a lying length cannot make the + 1 wrap */
    if (r->bad || r->left < 1 || len > r->left - 1) {
        r->bad = 1;
        return NULL;
    }
    s = (const char *)r->p;
    if (s[len] != '\0' || memchr(s, '\0', len) != NULL) {
        r->bad = 1;
        return NULL;
    }
    take(r, (size_t)len + 1);
    if (len_r != NULL)
        *len_r = len;
    return s;
}

const void *talas_record_get_blob(struct talas_record_reader *r, size_t *len_r)
{
    uint32_t len = talas_record_get_u32(r);
    const void *p = take(r, len);

    if (p != NULL && len_r != NULL)
        *len_r = len;
    return p;
}
