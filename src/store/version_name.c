/*
 * version_name.c - the file-name grammar of track versions
 * (version_name.h): talas_version_name_parse splits a file name into the
 * base its song is keyed by and its version's rank;
 * talas_version_name_cmp orders the versions of one song.
 *
 * Used by the scanner's grouping pass (scan/group_versions.c) and the explicit links (store/song_versions.c). Logs
 * nothing.
 */
#include <stdio.h>
#include <string.h>

#include "store/version_name.h"

static int is_sep(char c)
{
    return c == ' ' || c == '_' || c == '-';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static char fold(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* The version at S (N bytes, exactly): its rank and label; -1 when it is
 * not one. */
static int version_of(const char *s, size_t n, uint64_t *rank_r, char *label, size_t size)
{
    uint64_t v = 0;

    if (n == 5) {
        for (size_t i = 0; i < 5; i++)
            if (fold(s[i]) != "final"[i])
                return -1;
        *rank_r = TALAS_VERSION_RANK_FINAL;
        snprintf(label, size, "final");
        return 0;
    }
    if (n < 2 || n > 10 || (s[0] != 'v' && s[0] != 'V'))
        return -1;
    for (size_t i = 1; i < n; i++) {
        if (!is_digit(s[i]))
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *rank_r = 1 + v;
    snprintf(label, size, "v%llu", (unsigned long long)v);
    return 0;
}

/* Sets V's key from the base S (N bytes); -1 when it cannot be one. */
static int set_key(struct talas_version_name *v, const char *s, size_t n)
{
    if (n == 0 || n > TALAS_VERSION_KEY_MAX || is_sep(s[n - 1]))
        return -1;
    for (size_t i = 0; i < n; i++)
        v->key[i] = fold(s[i]);
    v->key[n] = '\0';
    v->key_len = n;
    return 0;
}

int talas_version_name_parse(const char *name, size_t len, struct talas_version_name *v)
{
    size_t stem = len, end;

    memset(v, 0, sizeof(*v));
    for (size_t i = len; i > 1; i--)
        if (name[i - 1] == '.') {
            stem = i - 1;
            break;
        }
    if (stem == 0)
        return -1;

    /* base [" " | "_"] "(" version ")" */
    if (name[stem - 1] == ')') {
        size_t open = stem - 1;
        while (open > 0 && name[open - 1] != '(')
            open--;
        if (open > 0 && version_of(name + open, stem - 1 - open, &v->rank, v->label, sizeof(v->label)) == 0) {
            end = open - 1;
            if (end > 0 && (name[end - 1] == ' ' || name[end - 1] == '_'))
                end--;
            if (set_key(v, name, end) == 0) {
                v->versioned = 1;
                return 0;
            }
        }
    }

    /* base sep version: the version is the last run of non-separators */
    end = stem;
    while (end > 0 && !is_sep(name[end - 1]))
        end--;
    if (end > 0 && end < stem &&
        version_of(name + end, stem - end, &v->rank, v->label, sizeof(v->label)) == 0) {
        size_t base = end;
        while (base > 0 && is_sep(name[base - 1]))
            base--;
        if (set_key(v, name, base) == 0) {
            v->versioned = 1;
            return 0;
        }
    }

    /* no version: the whole stem is the base of an original */
    memset(v, 0, sizeof(*v));
    v->rank = TALAS_VERSION_RANK_ORIGINAL;
    if (stem > TALAS_VERSION_KEY_MAX || stem == 0)
        return -1;
    for (size_t i = 0; i < stem; i++)
        v->key[i] = fold(name[i]);
    v->key[stem] = '\0';
    v->key_len = stem;
    return 0;
}

int talas_version_name_cmp(const struct talas_version_name *a, const char *a_name,
                           const struct talas_version_name *b, const char *b_name)
{
    if (a->rank != b->rank)
        return a->rank < b->rank ? -1 : 1;
    return strcmp(a_name, b_name);
}
