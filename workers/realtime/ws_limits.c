/*
 * ws_limits.c - per-user and per-address connections and command budget
 * of one worker's realtime channel (ws_limits.h).
 *
 * Entry points: talas_ws_limits_init, talas_ws_limits_share,
 * talas_ws_limits_open / _close,
 * talas_ws_limits_command, talas_ws_identity_is_user,
 * talas_ws_limits_sweep, talas_ws_limits_count.
 *
 * Identities live in a chained hash table keyed by a kind byte ('u' user,
 * 'a' address) and the name, so a user called "127.0.0.1" is not the
 * address 127.0.0.1. Once shared (talas_ws_limits_share), connections are
 * also counted in the node's census (core/census.h), and an upgrade is
 * decided on the node's count, every worker's; without it, on this
 * worker's. The command budget is a fixed window per identity,
 * like ws.rate_limit's per connection: it starts with the first command
 * and holds ws.user_rate_limit commands until ws.rate_limit_window has
 * passed.
 *
 * Logs: refused connections (warn, at most every 10 seconds, with a count
 * and the last identity refused).
 */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"
#include "realtime/ws_limits.h"

#define BUCKETS 4096
#define REFUSAL_LOG_INTERVAL_MS 10000

struct talas_ws_identity {
    struct talas_ws_identity *next;
    uint64_t census_key; /* its key in the node's census; 0 without one */
    uint32_t connections;
    uint32_t unshared;        /* of them, those the census had no room for */
    uint32_t used;            /* commands in the current window */
    uint64_t window_start_ms; /* monotonic; 0: no window yet */
    char key[];               /* kind byte, then the name, NUL-terminated */
};

static struct {
    const struct talas_config *conf;
    const struct talas_metrics_header *node; /* the census; NULL: this worker's counts only */
    struct talas_census_table *mine;
    struct talas_ws_identity *buckets[BUCKETS];
    size_t count;
    uint64_t refusal_logged_ms;
    uint64_t refused;
} t;

static void free_all(void)
{
    for (size_t i = 0; i < BUCKETS; i++)
        while (t.buckets[i] != NULL) {
            struct talas_ws_identity *id = t.buckets[i];
            t.buckets[i] = id->next;
            free(id);
        }
    t.count = 0;
}

void talas_ws_limits_init(const struct talas_config *conf)
{
    free_all();
    t.conf = conf;
    t.node = NULL;
    t.mine = NULL;
    t.refusal_logged_ms = 0;
    t.refused = 0;
}

/* FNV-1a */
static size_t bucket_of(const char *key)
{
    uint32_t h = 2166136261u;

    for (const unsigned char *p = (const unsigned char *)key; *p != '\0'; p++)
        h = (h ^ *p) * 16777619u;
    return h % BUCKETS;
}

static struct talas_ws_identity *find_or_add(char kind, const char *name)
{
    size_t n = strlen(name), b;
    char *key = xmalloc(n + 2);
    struct talas_ws_identity *id;

    key[0] = kind;
    memcpy(key + 1, name, n + 1);
    b = bucket_of(key);
    for (id = t.buckets[b]; id != NULL; id = id->next)
        if (strcmp(id->key, key) == 0)
            break;
    if (id == NULL) {
        id = xcalloc(1, sizeof(*id) + n + 2);
        memcpy(id->key, key, n + 2);
        id->next = t.buckets[b];
        t.buckets[b] = id;
        t.count++;
    }
    free(key);
    return id;
}

static void log_refusal(const char *limit, const struct talas_ws_identity *id)
{
    uint64_t now = talas_now_ms();

    t.refused++;
    if (t.refusal_logged_ms != 0 && now - t.refusal_logged_ms < REFUSAL_LOG_INTERVAL_MS)
        return;
    log_warn("ws: %llu upgrade(s) refused (429) over %s since the last report; the last from %s %.128s",
             (unsigned long long)t.refused, limit, id->key[0] == 'u' ? "user" : "address", id->key + 1);
    t.refusal_logged_ms = now;
    t.refused = 0;
}

static void log_census_full(void)
{
    static uint64_t logged_ms;
    uint64_t now = talas_now_ms();

    if (logged_ms != 0 && now - logged_ms < REFUSAL_LOG_INTERVAL_MS)
        return;
    log_warn("ws: this worker's census table is full (%d identities with connections): the connections "
             "that do not fit count on this worker only",
             TALAS_CENSUS_ENTRIES * 3 / 4);
    logged_ms = now;
}

struct talas_ws_identity *talas_ws_limits_open(const char *user, const char *address,
                                               struct talas_quota_refusal *r)
{
    struct talas_ws_identity *id = find_or_add(user != NULL ? 'u' : 'a', user != NULL ? user : address);
    const char *limit = user != NULL ? "ws.max_connections_per_user" : "ws.max_connections_per_address";
    int max = user != NULL ? t.conf->ws_max_connections_per_user : t.conf->ws_max_connections_per_address;

    uint64_t held = id->connections;

    if (t.node != NULL) {
        if (id->census_key == 0)
            id->census_key = talas_census_key(t.node, id->key[0], id->key + 1);
        /* the node's count: every worker's, ours among them, and what
         * ours holds that the census had no room for */
        held = talas_census_total(t.node, id->census_key) + id->unshared;
    }
    if (max > 0 && held >= (uint64_t)max) {
        log_refusal(limit, id);
        talas_quota_refuse(r, limit, (uint64_t)max);
        return NULL;
    }
    if (t.node != NULL && talas_census_add(t.mine, id->census_key, +1) != 0) {
        id->unshared++;
        log_census_full();
    }
    id->connections++;
    return id;
}

void talas_ws_limits_close(struct talas_ws_identity *id)
{
    if (id->connections == 0)
        return;
    id->connections--;
    if (id->unshared > 0)
        id->unshared--;
    else if (t.node != NULL)
        talas_census_add(t.mine, id->census_key, -1);
}

int talas_ws_identity_is_user(const struct talas_ws_identity *id)
{
    return id->key[0] == 'u';
}

int talas_ws_limits_command(struct talas_ws_identity *id, uint64_t now_ms, struct talas_ws_budget *b_r)
{
    uint64_t window = t.conf->ws_rate_limit_window_ms;
    uint32_t limit = (uint32_t)t.conf->ws_user_rate_limit;
    int rc = 0;

    if (id->window_start_ms == 0 || now_ms - id->window_start_ms >= window) {
        id->window_start_ms = now_ms;
        id->used = 0;
    }
    if (limit == 0)
        id->used = 0;
    else if (id->used >= limit)
        rc = -1;
    else
        id->used++;
    if (b_r != NULL) {
        b_r->limit = limit;
        b_r->remaining = limit > id->used ? limit - id->used : 0;
        b_r->reset_ms = id->window_start_ms + window - now_ms;
        b_r->window_start_ms = id->window_start_ms;
    }
    return rc;
}

void talas_ws_limits_sweep(uint64_t now_ms)
{
    uint64_t window = t.conf != NULL ? t.conf->ws_rate_limit_window_ms : 0;

    for (size_t i = 0; i < BUCKETS; i++) {
        struct talas_ws_identity **pp = &t.buckets[i];
        while (*pp != NULL) {
            struct talas_ws_identity *id = *pp;
            if (id->connections == 0 &&
                (id->window_start_ms == 0 || now_ms - id->window_start_ms >= window)) {
                *pp = id->next;
                free(id);
                t.count--;
            } else {
                pp = &id->next;
            }
        }
    }
}

void talas_ws_limits_share(const struct talas_metrics_header *node, struct talas_census_table *mine)
{
    t.node = node;
    t.mine = mine;
}

size_t talas_ws_limits_count(void)
{
    return t.count;
}
