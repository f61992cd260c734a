/*
 * ipc.c - framing, encoding and decoding of the master/worker messages
 * (ipc.h).
 *
 * Entry points: talas_ipc_frame_next, talas_ipc_frame_begin, and the
 * encode/decode pair of each message type. Decoders read through a cursor
 * that refuses to move past the end, and check that a payload is used
 * exactly: a frame with trailing bytes is as wrong as a short one. Nothing
 * here logs or does I/O.
 */
#include <string.h>

#include "core/ipc.h"

/* STATS: fixed part, then per track the id and a u32 */
#define STATS_FIXED (4 + 4 + 8 * 4 + 4 + 4)
#define STATS_TRACK (TALAS_IPC_TRACK_ID_LEN + 4)

struct cursor {
    const unsigned char *p, *end;
    int bad;
};

static const void *take(struct cursor *c, size_t n)
{
    const void *at = c->p;

    if (c->bad || (size_t)(c->end - c->p) < n) {
        c->bad = 1;
        return NULL;
    }
    c->p += n;
    return at;
}

static uint32_t get_u32(struct cursor *c)
{
    const void *at = take(c, 4);
    uint32_t v = 0;

    if (at != NULL)
        memcpy(&v, at, 4);
    return v;
}

static uint64_t get_u64(struct cursor *c)
{
    const void *at = take(c, 8);
    uint64_t v = 0;

    if (at != NULL)
        memcpy(&v, at, 8);
    return v;
}

static void put_u32(struct talas_buf *out, uint32_t v)
{
    talas_buf_append(out, &v, 4);
}

static void put_u64(struct talas_buf *out, uint64_t v)
{
    talas_buf_append(out, &v, 8);
}

int talas_ipc_frame_next(const void *buf, size_t len, struct talas_ipc_frame *f, size_t *used_r)
{
    uint32_t plen;
    uint16_t type, zero;

    if (len < TALAS_IPC_HEADER_SIZE)
        return 0;
    memcpy(&plen, buf, 4);
    memcpy(&type, (const char *)buf + 4, 2);
    memcpy(&zero, (const char *)buf + 6, 2);
    if (plen > TALAS_IPC_MAX_PAYLOAD || zero != 0 || type < TALAS_IPC_EVENT || type > TALAS_IPC_STATS_ALL)
        return -1;
    if (len - TALAS_IPC_HEADER_SIZE < plen)
        return 0;
    f->type = (enum talas_ipc_type)type;
    f->payload = (const char *)buf + TALAS_IPC_HEADER_SIZE;
    f->len = plen;
    *used_r = TALAS_IPC_HEADER_SIZE + (size_t)plen;
    return 1;
}

void talas_ipc_frame_begin(struct talas_buf *out, enum talas_ipc_type type, size_t len)
{
    uint32_t plen = (uint32_t)len;
    uint16_t t = (uint16_t)type, zero = 0;

    talas_buf_append(out, &plen, 4);
    talas_buf_append(out, &t, 2);
    talas_buf_append(out, &zero, 2);
}

/* ---------------------------------------------------------------- EVENT */

int talas_ipc_event_encode(struct talas_buf *out, const struct talas_ipc_event *ev)
{
    uint32_t to_len = (uint32_t)ev->to_len, json_len = (uint32_t)ev->json_len;

    if (ev->to_len > TALAS_IPC_MAX_TO || ev->json_len > TALAS_IPC_MAX_EVENT_JSON)
        return -1;
    talas_ipc_frame_begin(out, TALAS_IPC_EVENT, 4 + 4 + 4 + 4 + ev->to_len + ev->json_len);
    put_u32(out, ev->origin_pid);
    put_u32(out, ev->target);
    put_u32(out, to_len);
    put_u32(out, json_len);
    if (ev->to_len > 0)
        talas_buf_append(out, ev->to, ev->to_len);
    talas_buf_append(out, ev->json, ev->json_len);
    return 0;
}

int talas_ipc_event_decode(const void *payload, size_t len, struct talas_ipc_event *ev)
{
    struct cursor c = {payload, (const unsigned char *)payload + len, 0};
    uint32_t target, to_len, json_len;

    ev->origin_pid = get_u32(&c);
    target = get_u32(&c);
    to_len = get_u32(&c);
    json_len = get_u32(&c);
    if (c.bad || target > 2 || to_len > TALAS_IPC_MAX_TO || json_len > TALAS_IPC_MAX_EVENT_JSON ||
        (target == 0) != (to_len == 0))
        return -1;
    ev->target = (uint8_t)target;
    ev->to_len = to_len;
    ev->to = take(&c, to_len);
    ev->json_len = json_len;
    ev->json = take(&c, json_len);
    if (c.bad || c.p != c.end || json_len == 0)
        return -1;
    return 0;
}

/* ---------------------------------------------------------------- STATS */

static size_t stats_size(const struct talas_ipc_stats *s)
{
    return STATS_FIXED + (size_t)s->track_count * STATS_TRACK;
}

static void stats_put(struct talas_buf *out, const struct talas_ipc_stats *s)
{
    put_u32(out, s->pid);
    put_u32(out, s->current_connections);
    put_u64(out, s->total_connections);
    put_u64(out, s->messages_sent);
    put_u64(out, s->messages_received);
    put_u64(out, s->events_broadcast);
    put_u32(out, s->open_streams);
    put_u32(out, s->track_count);
    for (uint32_t i = 0; i < s->track_count; i++) {
        talas_buf_append(out, s->tracks[i].id, TALAS_IPC_TRACK_ID_LEN);
        put_u32(out, s->tracks[i].listeners);
    }
}

static int stats_get(struct cursor *c, struct talas_ipc_stats *s)
{
    memset(s, 0, sizeof(*s));
    s->pid = get_u32(c);
    s->current_connections = get_u32(c);
    s->total_connections = get_u64(c);
    s->messages_sent = get_u64(c);
    s->messages_received = get_u64(c);
    s->events_broadcast = get_u64(c);
    s->open_streams = get_u32(c);
    s->track_count = get_u32(c);
    if (c->bad || s->track_count > TALAS_IPC_MAX_TRACKS)
        return -1;
    for (uint32_t i = 0; i < s->track_count; i++) {
        const char *id = take(c, TALAS_IPC_TRACK_ID_LEN);
        if (id == NULL)
            return -1;
        /* ids are printable ASCII: a NUL inside would shorten it silently */
        for (size_t k = 0; k < TALAS_IPC_TRACK_ID_LEN; k++)
            if (id[k] <= ' ' || id[k] > '~')
                return -1;
        memcpy(s->tracks[i].id, id, TALAS_IPC_TRACK_ID_LEN);
        s->tracks[i].id[TALAS_IPC_TRACK_ID_LEN] = '\0';
        s->tracks[i].listeners = get_u32(c);
    }
    return c->bad ? -1 : 0;
}

void talas_ipc_stats_encode(struct talas_buf *out, const struct talas_ipc_stats *s)
{
    talas_ipc_frame_begin(out, TALAS_IPC_STATS, stats_size(s));
    stats_put(out, s);
}

int talas_ipc_stats_decode(const void *payload, size_t len, struct talas_ipc_stats *s)
{
    struct cursor c = {payload, (const unsigned char *)payload + len, 0};

    if (stats_get(&c, s) != 0 || c.p != c.end)
        return -1;
    return 0;
}

void talas_ipc_stats_all_encode(struct talas_buf *out, const struct talas_ipc_stats *s, size_t count)
{
    size_t len = 4;

    for (size_t i = 0; i < count; i++)
        len += stats_size(&s[i]);
    talas_ipc_frame_begin(out, TALAS_IPC_STATS_ALL, len);
    put_u32(out, (uint32_t)count);
    for (size_t i = 0; i < count; i++)
        stats_put(out, &s[i]);
}

int talas_ipc_stats_all_decode(const void *payload, size_t len, struct talas_ipc_stats *s, size_t max,
                               size_t *count_r)
{
    struct cursor c = {payload, (const unsigned char *)payload + len, 0};
    uint32_t count = get_u32(&c);

    if (c.bad || count > max)
        return -1;
    for (uint32_t i = 0; i < count; i++)
        if (stats_get(&c, &s[i]) != 0)
            return -1;
    if (c.p != c.end)
        return -1;
    *count_r = count;
    return 0;
}
