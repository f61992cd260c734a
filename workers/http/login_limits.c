/*
 * login_limits.c - failed logins per client address and name on one
 * worker (login_limits.h): Subsonic's users, private links' passwords.
 *
 * Entry points: talas_login_limits_new, _free, _blocked, _failed, _succeeded,
 * _count-> A chained hash table of pairs; logs (a warning, at most once a
 * minute) when it is full and a pair goes uncounted.
 */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"
#include "http/login_limits.h"

#define BUCKETS 4096

struct pair {
    struct pair *next;
    uint64_t window_start_ms;
    uint32_t failures;
    char key[]; /* address NUL user NUL */
};

struct talas_login_limits {
    const char *what; /* for the log: "subsonic", "shares" */
    int max_failures;
    uint64_t window_ms;
    struct pair *buckets[BUCKETS];
    size_t count;
    uint64_t full_logged_ms;
};

static size_t key_len(const char *address, const char *user)
{
    return strlen(address) + 1 + strlen(user) + 1;
}

static uint32_t hash(const char *address, const char *user)
{
    uint32_t h = 2166136261u;

    for (const char *p = address; *p != '\0'; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    h = (h ^ 0xff) * 16777619u;
    for (const char *p = user; *p != '\0'; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return h;
}

static int same(const struct pair *p, const char *address, const char *user)
{
    size_t alen = strlen(address);

    return memcmp(p->key, address, alen + 1) == 0 && strcmp(p->key + alen + 1, user) == 0;
}

/* The slot that points at the pair of ADDRESS and USER (its *slot NULL when
 * there is none). */
static struct pair **find(struct talas_login_limits *t, const char *address, const char *user)
{
    struct pair **slot = &t->buckets[hash(address, user) % BUCKETS];

    while (*slot != NULL && !same(*slot, address, user))
        slot = &(*slot)->next;
    return slot;
}

static void unlink_pair(struct talas_login_limits *t, struct pair **slot)
{
    struct pair *p = *slot;

    *slot = p->next;
    free(p);
    t->count--;
}

static void sweep(struct talas_login_limits *t, uint64_t now_ms)
{
    for (size_t b = 0; b < BUCKETS; b++)
        for (struct pair **slot = &t->buckets[b]; *slot != NULL;) {
            if (now_ms - (*slot)->window_start_ms >= t->window_ms)
                unlink_pair(t, slot);
            else
                slot = &(*slot)->next;
        }
}

struct talas_login_limits *talas_login_limits_new(const char *what, int max_failures, uint64_t window_ms)
{
    struct talas_login_limits *t = xcalloc(1, sizeof(*t));

    t->what = what;
    t->max_failures = max_failures;
    t->window_ms = window_ms;
    return t;
}

void talas_login_limits_free(struct talas_login_limits *t)
{
    if (t == NULL)
        return;
    for (size_t b = 0; b < BUCKETS; b++)
        while (t->buckets[b] != NULL)
            unlink_pair(t, &t->buckets[b]);
    free(t);
}

int talas_login_limits_blocked(struct talas_login_limits *t, const char *address, const char *user,
                               uint64_t now_ms, uint64_t *retry_ms_r)
{
    struct pair **slot;
    uint64_t window;

    if (t == NULL)
        return 0;
    window = t->window_ms;
    if (t->max_failures == 0 || *(slot = find(t, address, user)) == NULL)
        return 0;
    if (now_ms - (*slot)->window_start_ms >= window) {
        unlink_pair(t, slot);
        return 0;
    }
    if ((*slot)->failures < (uint32_t)t->max_failures)
        return 0;
    *retry_ms_r = window - (now_ms - (*slot)->window_start_ms);
    return 1;
}

void talas_login_limits_failed(struct talas_login_limits *t, const char *address, const char *user,
                               uint64_t now_ms)
{
    struct pair **slot, *p;
    size_t n;

    if (t == NULL || t->max_failures == 0)
        return;
    slot = find(t, address, user);
    if (*slot != NULL && now_ms - (*slot)->window_start_ms >= t->window_ms) {
        (*slot)->window_start_ms = now_ms;
        (*slot)->failures = 0;
    }
    if (*slot == NULL) {
        if (t->count >= TALAS_LOGIN_LIMITS_MAX) {
            sweep(t, now_ms);
            slot = find(t, address, user);
        }
        if (t->count >= TALAS_LOGIN_LIMITS_MAX) {
            if (t->full_logged_ms == 0 || now_ms - t->full_logged_ms >= 60000) {
                log_warn("%s: %d (address, user) pairs with failed logins in the window: further pairs "
                         "go uncounted until windows end",
                         t->what, TALAS_LOGIN_LIMITS_MAX);
                t->full_logged_ms = now_ms;
            }
            return;
        }
        n = key_len(address, user);
        p = xcalloc(1, sizeof(*p) + n);
        strcpy(p->key, address);
        strcpy(p->key + strlen(address) + 1, user);
        p->window_start_ms = now_ms;
        *slot = p;
        t->count++;
    }
    (*slot)->failures++;
}

void talas_login_limits_succeeded(struct talas_login_limits *t, const char *address, const char *user)
{
    struct pair **slot;

    if (t != NULL && *(slot = find(t, address, user)) != NULL)
        unlink_pair(t, slot);
}

size_t talas_login_limits_count(const struct talas_login_limits *t)
{
    return t->count;
}
