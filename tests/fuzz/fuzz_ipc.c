/*
 * fuzz_ipc.c - the master/worker channel's decoder (src/core/ipc.c), as the
 * master reads a worker's socketpair and a worker reads the master's: a
 * byte stream cut into frames (talas_ipc_frame_next), each payload decoded
 * by its type.
 *
 * Input: the bytes of the stream. Checks what ipc.h promises: a frame lies
 * inside the bytes it was read from and is consumed whole; a decoded
 * event's parts (recipient, owner, JSON) lie inside its payload and keep their
 * limits, and a private event names its owner; decoded
 * stats hold at most TALAS_IPC_MAX_TRACKS tracks; and an event or stats
 * re-encoded and decoded again gives the same values.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/ipc.h"
#include "core/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int inside(const void *p, size_t n, const void *base, size_t len)
{
    return n == 0 || ((const char *)p >= (const char *)base && (const char *)p + n <= (const char *)base + len);
}

static void event(const struct talas_ipc_frame *f)
{
    struct talas_ipc_event ev, again;
    struct talas_ipc_frame f2;
    struct talas_buf b = {0};
    size_t used;

    if (talas_ipc_event_decode(f->payload, f->len, &ev) != 0)
        return;
    if (!inside(ev.to, ev.to_len, f->payload, f->len) || !inside(ev.json, ev.json_len, f->payload, f->len) ||
        !inside(ev.owner, ev.owner_len, f->payload, f->len) || ev.to_len > TALAS_IPC_MAX_TO ||
        ev.owner_len > TALAS_IPC_MAX_TO || ev.json_len > TALAS_IPC_MAX_EVENT_JSON)
        abort();
    /* a private event always names the one user who may receive it */
    if ((ev.flags & TALAS_IPC_EVENT_PRIVATE) && ev.owner_len == 0)
        abort();
    if (talas_ipc_event_encode(&b, &ev) != 0)
        abort();
    if (talas_ipc_frame_next(b.data, b.len, &f2, &used) != 1 || used != b.len || f2.type != TALAS_IPC_EVENT ||
        talas_ipc_event_decode(f2.payload, f2.len, &again) != 0 || again.origin_pid != ev.origin_pid ||
        again.target != ev.target || again.to_len != ev.to_len || again.json_len != ev.json_len ||
        again.flags != ev.flags || again.owner_len != ev.owner_len ||
        (ev.to_len > 0 && memcmp(again.to, ev.to, ev.to_len) != 0) ||
        (ev.owner_len > 0 && memcmp(again.owner, ev.owner, ev.owner_len) != 0) ||
        (ev.json_len > 0 && memcmp(again.json, ev.json, ev.json_len) != 0))
        abort();
    talas_buf_free(&b);
}

static void stats(const struct talas_ipc_frame *f)
{
    struct talas_ipc_stats s, again;
    struct talas_ipc_frame f2;
    struct talas_buf b = {0};
    size_t used;

    if (talas_ipc_stats_decode(f->payload, f->len, &s) != 0)
        return;
    if (s.track_count > TALAS_IPC_MAX_TRACKS)
        abort();
    for (uint32_t i = 0; i < s.track_count; i++)
        if (memchr(s.tracks[i].id, '\0', sizeof(s.tracks[i].id)) == NULL)
            abort();
    talas_ipc_stats_encode(&b, &s);
    if (talas_ipc_frame_next(b.data, b.len, &f2, &used) != 1 || used != b.len ||
        talas_ipc_stats_decode(f2.payload, f2.len, &again) != 0 || again.pid != s.pid ||
        again.track_count != s.track_count || again.open_streams != s.open_streams ||
        again.messages_sent != s.messages_sent)
        abort();
    talas_buf_free(&b);
}

static void stats_all(const struct talas_ipc_frame *f)
{
    struct talas_ipc_stats *s = malloc(8 * sizeof(*s));
    size_t count = 0;

    if (s == NULL)
        abort();
    if (talas_ipc_stats_all_decode(f->payload, f->len, s, 8, &count) == 0) {
        if (count > 8)
            abort();
        for (size_t i = 0; i < count; i++)
            if (s[i].track_count > TALAS_IPC_MAX_TRACKS)
                abort();
    }
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a copy of exactly the bytes read: no slack after them */
    uint8_t *buf = malloc(size > 0 ? size : 1);
    size_t at = 0;

    if (buf == NULL)
        abort();
    memcpy(buf, data, size);
    while (at < size) {
        struct talas_ipc_frame f;
        size_t used = 0;
        int rc = talas_ipc_frame_next(buf + at, size - at, &f, &used);

        if (rc != 1)
            break; /* more bytes needed, or out of sync: the channel closes */
        if (used == 0 || used > size - at || !inside(f.payload, f.len, buf + at, used))
            abort();
        switch (f.type) {
        case TALAS_IPC_EVENT:
            event(&f);
            break;
        case TALAS_IPC_STATS:
            stats(&f);
            break;
        case TALAS_IPC_STATS_ALL:
            stats_all(&f);
            break;
        default:
            abort(); /* talas_ipc_frame_next accepts known types only */
        }
        at += used;
    }
    free(buf);
    return 0;
}
