/*
 * lrc.c - the LRC lyrics parser (lrc.h).
 *
 * Entry point: talas_lrc_parse(). Pure: reads only the bytes it is given,
 * allocates what it returns, logs nothing (the scanner logs the lyrics it
 * drops, with the error this returns).
 *
 * Each line is read on its own: a run of time tags at its start (after
 * blanks), then its text; or a whole-line [key:value] metadata tag; or
 * plain text. Synced output is sorted by start time (stably: two lines at
 * one time keep their order in the file), as a line with several time
 * tags puts its text at places far apart.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/util.h"
#include "scan/lrc.h"

#define STAMPS_MAX 64 /* time tags of one line; more are ignored */
#define LANG_MAX 64

_Static_assert(TALAS_LRC_MAX_BYTES == 512 * 1024 && TALAS_LRC_MAX_LINES == 10000 &&
                   TALAS_LRC_MAX_TEXT == 1024 * 1024,
               "the error messages name these bounds");

struct entry {
    int64_t start_ms;
    size_t seq;
    char *value;
};

struct entries {
    struct entry *v;
    size_t count, cap;
};

static void entries_free(struct entries *e)
{
    for (size_t i = 0; i < e->count; i++)
        free(e->v[i].value);
    free(e->v);
    memset(e, 0, sizeof(*e));
}

/* Returns the length of VALUE, which E now owns. */
static size_t entries_add(struct entries *e, int64_t start_ms, char *value)
{
    if (e->count == e->cap) {
        e->cap = e->cap != 0 ? 2 * e->cap : 64;
        e->v = xrealloc(e->v, e->cap * sizeof(*e->v));
    }
    e->v[e->count].start_ms = start_ms;
    e->v[e->count].seq = e->count;
    e->v[e->count].value = value;
    e->count++;
    return strlen(value);
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* The LEN bytes at S as valid UTF-8, cut to MAX bytes at a character
 * boundary. */
static char *text_value(const char *s, size_t len, size_t max)
{
    char *v = talas_utf8_sanitize(s, len);
    size_t n = strlen(v);

    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)v[n] & 0xc0) == 0x80)
            n--;
        v[n] = '\0';
    }
    return v;
}

/* Reads 1..MAXD digits at *P (before END) into *V_R; advances *P. */
static int digits(const char **p, const char *end, int maxd, int64_t *v_r, int *n_r)
{
    int n = 0;
    int64_t v = 0;

    while (*p < end && n < maxd && isdigit((unsigned char)**p)) {
        v = v * 10 + (**p - '0');
        (*p)++;
        n++;
    }
    if (n == 0 || (*p < end && isdigit((unsigned char)**p)))
        return -1;
    *v_r = v;
    if (n_r != NULL)
        *n_r = n;
    return 0;
}

/* A time tag [mm:ss], [mm:ss.x], [mm:ss.xx], [mm:ss.xxx] (also with ':'
 * before the fraction) at P: its time in *MS_R and the byte after it in
 * *AFTER_R. */
static int time_tag(const char *p, const char *end, int64_t *ms_r, const char **after_r)
{
    int64_t min, sec, frac = 0;
    int n = 0;

    if (p >= end || *p++ != '[')
        return -1;
    if (digits(&p, end, 5, &min, NULL) != 0 || p >= end || *p++ != ':')
        return -1;
    if (digits(&p, end, 2, &sec, NULL) != 0 || sec >= 60)
        return -1;
    if (p < end && (*p == '.' || *p == ':')) {
        p++;
        if (digits(&p, end, 3, &frac, &n) != 0)
            return -1;
        frac *= n == 1 ? 100 : n == 2 ? 10 : 1;
    }
    if (p >= end || *p++ != ']')
        return -1;
    *ms_r = min * 60000 + sec * 1000 + frac;
    *after_r = p;
    return 0;
}

/* [offset:+500], [offset:-200], [offset:300]; 0 when unreadable. */
static int64_t offset_value(const char *p, const char *end)
{
    int neg = 0;
    int64_t v;

    while (p < end && is_blank(*p))
        p++;
    if (p < end && (*p == '+' || *p == '-'))
        neg = *p++ == '-';
    if (digits(&p, end, 9, &v, NULL) != 0)
        return 0;
    while (p < end && is_blank(*p))
        p++;
    if (p != end)
        return 0;
    return neg ? -v : v;
}

/* A whole line [key:value] (the line [P, END) trimmed): handles what it
 * knows into L and returns 0; -1 when the line is not a metadata tag. */
static int metadata(const char *p, const char *end, struct talas_lyrics *l)
{
    const char *key = p + 1, *colon, *v, *ve;
    size_t klen;

    if (end - p < 3 || *p != '[' || end[-1] != ']')
        return -1;
    for (colon = key; colon < end - 1 && isalpha((unsigned char)*colon); colon++)
        ;
    klen = (size_t)(colon - key);
    if (klen == 0 || klen > 16 || *colon != ':')
        return -1;
    v = colon + 1;
    ve = end - 1;
    while (v < ve && is_blank(*v))
        v++;
    while (ve > v && is_blank(ve[-1]))
        ve--;
    if (klen == 2 && strncasecmp(key, "ar", 2) == 0) {
        free(l->artist);
        l->artist = text_value(v, (size_t)(ve - v), TALAS_LRC_LINE_MAX);
    } else if (klen == 2 && strncasecmp(key, "ti", 2) == 0) {
        free(l->title);
        l->title = text_value(v, (size_t)(ve - v), TALAS_LRC_LINE_MAX);
    } else if ((klen == 2 && strncasecmp(key, "la", 2) == 0) ||
               (klen == 4 && strncasecmp(key, "lang", 4) == 0)) {
        free(l->lang);
        l->lang = text_value(v, (size_t)(ve - v), LANG_MAX);
    } else if (klen == 6 && strncasecmp(key, "offset", 6) == 0) {
        l->offset_ms = offset_value(v, ve);
    }
    return 0;
}

static int by_start(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;

    if (x->start_ms != y->start_ms)
        return x->start_ms < y->start_ms ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int talas_lrc_parse(const char *data, size_t len, struct talas_lyrics *l_r, const char **error_r)
{
    struct entries synced = {0}, plain = {0};
    const char *p = data, *end = data + len;
    size_t first, last, text = 0;

    memset(l_r, 0, sizeof(*l_r));
    if (len > TALAS_LRC_MAX_BYTES) {
        *error_r = "larger than the most lyrics read (512 KiB)";
        return -1;
    }
    if (len > 0 && memchr(data, '\0', len) != NULL) {
        *error_r = "a NUL byte: not text";
        return -1;
    }
    if (len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
        p += 3;

    while (p < end) {
        const char *ls = p, *le, *q, *after;
        int64_t stamps[STAMPS_MAX], ms;
        size_t nstamps = 0;

        while (p < end && *p != '\n' && *p != '\r')
            p++;
        le = p;
        if (p < end && *p == '\r') {
            if (++p < end && *p == '\n')
                p++;
        } else if (p < end) {
            p++; /* the LF */
        }
        while (ls < le && is_blank(*ls))
            ls++;
        while (le > ls && is_blank(le[-1]))
            le--;

        for (q = ls; q < le && time_tag(q, le, &ms, &after) == 0;) {
            if (nstamps < STAMPS_MAX)
                stamps[nstamps++] = ms;
            for (q = after; q < le && is_blank(*q); q++)
                ;
        }
        if (nstamps > 0) {
            if (synced.count + nstamps > TALAS_LRC_MAX_LINES)
                goto too_many;
            for (size_t i = 0; i < nstamps; i++)
                text += entries_add(&synced, stamps[i], text_value(q, (size_t)(le - q), TALAS_LRC_LINE_MAX));
            if (text > TALAS_LRC_MAX_TEXT)
                goto too_much;
            continue;
        }
        if (metadata(ls, le, l_r) == 0)
            continue;
        if (plain.count + 1 > TALAS_LRC_MAX_LINES)
            goto too_many;
        text += entries_add(&plain, 0, text_value(ls, (size_t)(le - ls), TALAS_LRC_LINE_MAX));
        if (text > TALAS_LRC_MAX_TEXT)
            goto too_much;
    }

    if (l_r->lang == NULL)
        l_r->lang = xstrdup("");
    if (l_r->artist == NULL)
        l_r->artist = xstrdup("");
    if (l_r->title == NULL)
        l_r->title = xstrdup("");
    if (synced.count > 0) {
        /* the file's plain lines (section names, notes) are not sung */
        entries_free(&plain);
        qsort(synced.v, synced.count, sizeof(*synced.v), by_start);
        l_r->synced = 1;
        l_r->lines = xcalloc(synced.count, sizeof(*l_r->lines));
        for (size_t i = 0; i < synced.count; i++)
            l_r->lines[i] = (struct talas_lyrics_line){synced.v[i].start_ms, synced.v[i].value};
        l_r->count = synced.count;
        free(synced.v);
        return 0;
    }
    for (first = 0; first < plain.count && plain.v[first].value[0] == '\0'; first++)
        ;
    for (last = plain.count; last > first && plain.v[last - 1].value[0] == '\0'; last--)
        ;
    l_r->lines = xcalloc(last - first + 1, sizeof(*l_r->lines));
    for (size_t i = 0; i < plain.count; i++) {
        if (i >= first && i < last)
            l_r->lines[l_r->count++] = (struct talas_lyrics_line){0, plain.v[i].value};
        else
            free(plain.v[i].value);
    }
    free(plain.v);
    return 0;

too_many:
    *error_r = "more lines than the most lyrics read (10000)";
    goto fail;
too_much:
    *error_r = "more text than the most lyrics kept (1 MiB, time tags repeating lines included)";
fail:
    entries_free(&synced);
    entries_free(&plain);
    talas_lyrics_free(l_r);
    return -1;
}
