/*
 * ipc.c - framing, encoding and decoding of the master/worker messages
 * (ipc.h).
 *
 * Entry points: talas_ipc_frame_next, talas_ipc_frame_begin, and the
 * encode/decode pair of each message type. Messages are written and read
 * with the record codec (core/record.h, little-endian): decoders read
 * through its reader, which refuses to move past the end, and check that
 * a payload is used exactly: a frame with trailing bytes is as wrong as a
 * short one. Nothing here logs or does I/O.
 */
#include <string.h>

#include "core/ipc.h"
#include "core/record.h"

/* STATS: fixed part, then per track the id and a u32 */
#define STATS_FIXED (4 + 4 + 8 * 4 + 4 + 4)
#define STATS_TRACK (TALAS_IPC_TRACK_ID_LEN + 4)

int talas_ipc_frame_next(const void *buf, size_t len, struct talas_ipc_frame *f, size_t *used_r)
{
    struct talas_record_reader r;
    uint32_t plen;
    uint16_t type, zero;

    if (len < TALAS_IPC_HEADER_SIZE)
        return 0;
    talas_record_reader_init(&r, buf, TALAS_IPC_HEADER_SIZE);
    plen = talas_record_get_u32(&r);
    type = talas_record_get_u16(&r);
    zero = talas_record_get_u16(&r);
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
    struct talas_record_writer w;

    talas_record_writer_buf(&w, out);
    talas_record_put_u32(&w, (uint32_t)len);
    talas_record_put_u16(&w, (uint16_t)type);
    talas_record_put_u16(&w, 0);
}

/* ---------------------------------------------------------------- EVENT */

/* EVENT payload: u32 origin pid, u32 target, u32 flags, u32 to length,
 * u32 owner length, u32 json length, then the three byte strings. */
#define EVENT_FLAGS_KNOWN TALAS_IPC_EVENT_PRIVATE

static int event_fits(const struct talas_ipc_event *ev)
{
    return ev->to_len <= TALAS_IPC_MAX_TO && ev->owner_len <= TALAS_IPC_MAX_TO &&
           ev->json_len <= TALAS_IPC_MAX_EVENT_JSON && (ev->flags & ~EVENT_FLAGS_KNOWN) == 0 &&
           !((ev->flags & TALAS_IPC_EVENT_PRIVATE) && ev->owner_len == 0);
}

int talas_ipc_event_encode(struct talas_buf *out, const struct talas_ipc_event *ev)
{
    if (!event_fits(ev))
        return -1;
    talas_ipc_frame_begin(out, TALAS_IPC_EVENT, 6 * 4 + ev->to_len + ev->owner_len + ev->json_len);
    return talas_ipc_event_put(out, ev);
}

int talas_ipc_event_put(struct talas_buf *out, const struct talas_ipc_event *ev)
{
    struct talas_record_writer w;

    if (!event_fits(ev))
        return -1;
    talas_record_writer_buf(&w, out);
    talas_record_put_u32(&w, ev->origin_pid);
    talas_record_put_u32(&w, ev->target);
    talas_record_put_u32(&w, ev->flags);
    talas_record_put_u32(&w, (uint32_t)ev->to_len);
    talas_record_put_u32(&w, (uint32_t)ev->owner_len);
    talas_record_put_u32(&w, (uint32_t)ev->json_len);
    talas_record_put_bytes(&w, ev->to, ev->to_len);
    talas_record_put_bytes(&w, ev->owner, ev->owner_len);
    talas_record_put_bytes(&w, ev->json, ev->json_len);
    return 0;
}

int talas_ipc_event_decode(const void *payload, size_t len, struct talas_ipc_event *ev)
{
    struct talas_record_reader c;
    uint32_t target, flags, to_len, owner_len, json_len;

    talas_record_reader_init(&c, payload, len);
    ev->origin_pid = talas_record_get_u32(&c);
    target = talas_record_get_u32(&c);
    flags = talas_record_get_u32(&c);
    to_len = talas_record_get_u32(&c);
    owner_len = talas_record_get_u32(&c);
    json_len = talas_record_get_u32(&c);
    if (talas_record_reader_ok(&c) != 0 || target > TALAS_WS_TO_ROOM || to_len > TALAS_IPC_MAX_TO ||
        owner_len > TALAS_IPC_MAX_TO || json_len > TALAS_IPC_MAX_EVENT_JSON ||
        (target == 0) != (to_len == 0) || (flags & ~EVENT_FLAGS_KNOWN) != 0 ||
        ((flags & TALAS_IPC_EVENT_PRIVATE) && owner_len == 0))
        return -1;
    ev->target = (uint8_t)target;
    ev->flags = (uint8_t)flags;
    ev->to_len = to_len;
    ev->to = talas_record_get_bytes(&c, to_len);
    ev->owner_len = owner_len;
    ev->owner = talas_record_get_bytes(&c, owner_len);
    ev->json_len = json_len;
    ev->json = talas_record_get_bytes(&c, json_len);
    if (talas_record_reader_end(&c) != 0 || json_len == 0)
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
    struct talas_record_writer w;

    talas_record_writer_buf(&w, out);
    talas_record_put_u32(&w, s->pid);
    talas_record_put_u32(&w, s->current_connections);
    talas_record_put_u64(&w, s->total_connections);
    talas_record_put_u64(&w, s->messages_sent);
    talas_record_put_u64(&w, s->messages_received);
    talas_record_put_u64(&w, s->events_broadcast);
    talas_record_put_u32(&w, s->open_streams);
    talas_record_put_u32(&w, s->track_count);
    for (uint32_t i = 0; i < s->track_count; i++) {
        talas_record_put_bytes(&w, s->tracks[i].id, TALAS_IPC_TRACK_ID_LEN);
        talas_record_put_u32(&w, s->tracks[i].listeners);
    }
}

static int stats_get(struct talas_record_reader *c, struct talas_ipc_stats *s)
{
    memset(s, 0, sizeof(*s));
    s->pid = talas_record_get_u32(c);
    s->current_connections = talas_record_get_u32(c);
    s->total_connections = talas_record_get_u64(c);
    s->messages_sent = talas_record_get_u64(c);
    s->messages_received = talas_record_get_u64(c);
    s->events_broadcast = talas_record_get_u64(c);
    s->open_streams = talas_record_get_u32(c);
    s->track_count = talas_record_get_u32(c);
    if (talas_record_reader_ok(c) != 0 || s->track_count > TALAS_IPC_MAX_TRACKS)
        return -1;
    for (uint32_t i = 0; i < s->track_count; i++) {
        const char *id = talas_record_get_bytes(c, TALAS_IPC_TRACK_ID_LEN);
        if (id == NULL)
            return -1;
        /* ids are printable ASCII: a NUL inside would shorten it silently */
        for (size_t k = 0; k < TALAS_IPC_TRACK_ID_LEN; k++)
            if (id[k] <= ' ' || id[k] > '~')
                return -1;
        memcpy(s->tracks[i].id, id, TALAS_IPC_TRACK_ID_LEN);
        s->tracks[i].id[TALAS_IPC_TRACK_ID_LEN] = '\0';
        s->tracks[i].listeners = talas_record_get_u32(c);
    }
    return talas_record_reader_ok(c);
}

void talas_ipc_stats_encode(struct talas_buf *out, const struct talas_ipc_stats *s)
{
    talas_ipc_frame_begin(out, TALAS_IPC_STATS, stats_size(s));
    stats_put(out, s);
}

int talas_ipc_stats_decode(const void *payload, size_t len, struct talas_ipc_stats *s)
{
    struct talas_record_reader c;

    talas_record_reader_init(&c, payload, len);
    if (stats_get(&c, s) != 0 || talas_record_reader_end(&c) != 0)
        return -1;
    return 0;
}

void talas_ipc_stats_all_encode(struct talas_buf *out, const struct talas_ipc_stats *s, size_t count)
{
    struct talas_record_writer w;
    size_t len = 4;

    for (size_t i = 0; i < count; i++)
        len += stats_size(&s[i]);
    talas_ipc_frame_begin(out, TALAS_IPC_STATS_ALL, len);
    talas_record_writer_buf(&w, out);
    talas_record_put_u32(&w, (uint32_t)count);
    for (size_t i = 0; i < count; i++)
        stats_put(out, &s[i]);
}

int talas_ipc_stats_all_decode(const void *payload, size_t len, struct talas_ipc_stats *s, size_t max,
                               size_t *count_r)
{
    struct talas_record_reader c;
    uint32_t count;

    talas_record_reader_init(&c, payload, len);
    count = talas_record_get_u32(&c);
    if (talas_record_reader_ok(&c) != 0 || count > max)
        return -1;
    for (uint32_t i = 0; i < count; i++)
        if (stats_get(&c, &s[i]) != 0)
            return -1;
    if (talas_record_reader_end(&c) != 0)
        return -1;
    *count_r = count;
    return 0;
}
