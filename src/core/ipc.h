/*
 * ipc.h - the messages between the master and its workers on their
 * socketpairs (one per worker, created by the master before fork).
 *
 * A message is a frame: a header {u32 payload length, u16 type, u16 zero}
 * in host byte order (both ends are the same binary on the same host),
 * then the payload. Every size is checked before use (OpenBSD httpd's
 * IMSG_SIZE_CHECK): a decoder given bytes it did not expect returns -1 and
 * touches nothing past LEN. The decoders are pure functions of
 * (const void *, size_t), fuzzed and unit-tested on their own.
 *
 *   TALAS_IPC_EVENT      worker -> master -> every other worker: a realtime
 *                        event (ws_hub.c) with its target
 *   TALAS_IPC_STATS      worker -> master: the worker's realtime figures
 *   TALAS_IPC_STATS_ALL  master -> workers: the figures of every worker
 *
 * It also holds the other plain data that crosses between the master and
 * the talas-worker program, which do not share a header otherwise (src/
 * never includes workers/): the ready message of the status pipe, and the
 * targets of a realtime event.
 */
#ifndef TALAS_IPC_H
#define TALAS_IPC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/util.h"

#define TALAS_IPC_HEADER_SIZE 8
/* The largest payload: an event is at most a few KiB, STATS_ALL at most
 * 256 workers' figures. */
#define TALAS_IPC_MAX_PAYLOAD (1024 * 1024)

enum talas_ipc_type {
    TALAS_IPC_EVENT = 1,
    TALAS_IPC_STATS = 2,
    TALAS_IPC_STATS_ALL = 3,
};

struct talas_ipc_frame {
    enum talas_ipc_type type;
    const void *payload; /* points into the decoded buffer */
    size_t len;
};

/*
 * Looks for a whole frame at the start of BUF (LEN bytes). Returns 1 with
 * it in *F and its total size in *used_r; 0 when more bytes are needed; -1
 * when the bytes cannot be a frame (unknown type, oversized, nonzero
 * reserved field): the channel is then out of sync and must be closed.
 */
int talas_ipc_frame_next(const void *buf, size_t len, struct talas_ipc_frame *f, size_t *used_r);

/* Appends a frame header for a payload of LEN bytes of TYPE. */
void talas_ipc_frame_begin(struct talas_buf *out, enum talas_ipc_type type, size_t len);

/* What a worker writes on the master's status pipe (not a frame: a pipe
 * write of this size is atomic) once it accepts connections. */
struct talas_worker_ready_msg {
    pid_t pid;
    unsigned generation;
};

/* ---------------------------------------------------------------- EVENT */

/* Who receives a realtime event: every WebSocket connection of every
 * worker, the connections of one user, one connection, or every
 * connection joined to one listening room ("to" is the room id; ws_hub.c). */
enum talas_ws_target { TALAS_WS_TO_ALL, TALAS_WS_TO_USER, TALAS_WS_TO_CONNECTION, TALAS_WS_TO_ROOM };

/*
 * An event in flight; "to", "json" and "owner" point into the payload.
 *
 * OWNER is the user whose activity the event reports (the listener of a
 * PlaybackStarted), or nobody (OWNER_LEN 0: a ServerMessage, a backend's
 * TrackLiked). With TALAS_IPC_EVENT_PRIVATE, decided by the publishing
 * worker from the owner's share_listening (store/users.h), every receiving
 * worker hands the event only to the owner's own connections, whatever
 * the target and the subscriptions say.
 */
struct talas_ipc_event {
    uint32_t origin_pid; /* the worker that published it */
    uint8_t target;      /* an enum talas_ws_target */
    const char *to;      /* user, connection or room id, TO_LEN bytes (0 for all) */
    size_t to_len;
    const char *json; /* the event, JSON_LEN bytes */
    size_t json_len;
    const char *owner; /* the user the event is about, OWNER_LEN bytes (0: nobody) */
    size_t owner_len;
    uint8_t flags; /* TALAS_IPC_EVENT_* bits */
};

/* Only the owner's connections may receive the event (it needs an owner). */
#define TALAS_IPC_EVENT_PRIVATE 0x01

#define TALAS_IPC_MAX_TO 128 /* also the longest owner */
/* a listening room's state (rooms.max_members members, rooms.max_queue
 * entries, twice in RoomQueueUpdated) fits, within TALAS_IPC_MAX_PAYLOAD */
#define TALAS_IPC_MAX_EVENT_JSON (768 * 1024)

/* Appends a whole EVENT frame to OUT. Returns 0, or -1 (nothing appended)
 * when a part is over its limit. */
int talas_ipc_event_encode(struct talas_buf *out, const struct talas_ipc_event *ev);
/* Appends only the payload of an EVENT (no frame header), as cluster mode
 * carries it inside its own message (workers/cluster/cluster_msg.h); 0 or
 * -1 as above. */
int talas_ipc_event_put(struct talas_buf *out, const struct talas_ipc_event *ev);
/* Decodes an EVENT payload; 0 or -1. */
int talas_ipc_event_decode(const void *payload, size_t len, struct talas_ipc_event *ev);

/* ---------------------------------------------------------------- STATS */

#define TALAS_IPC_MAX_TRACKS 32
#define TALAS_IPC_TRACK_ID_LEN 16

/* A worker's figures (plain data crossing IPC). */
struct talas_ipc_stats {
    uint32_t pid;
    uint32_t current_connections;
    uint64_t total_connections;
    uint64_t messages_sent;
    uint64_t messages_received;
    uint64_t events_broadcast;
    uint32_t open_streams; /* media responses (/stream, /preview) in progress */
    uint32_t track_count;
    struct {
        char id[TALAS_IPC_TRACK_ID_LEN + 1];
        uint32_t listeners;
    } tracks[TALAS_IPC_MAX_TRACKS]; /* tracks being streamed, most listened first */
};

/* Appends a whole STATS frame to OUT. */
void talas_ipc_stats_encode(struct talas_buf *out, const struct talas_ipc_stats *s);
/* Decodes a STATS payload; 0 or -1. */
int talas_ipc_stats_decode(const void *payload, size_t len, struct talas_ipc_stats *s);

/* Appends a whole STATS_ALL frame holding the COUNT figures of S. */
void talas_ipc_stats_all_encode(struct talas_buf *out, const struct talas_ipc_stats *s, size_t count);
/* Decodes a STATS_ALL payload into S (room for MAX); the count in *count_r.
 * 0 or -1. */
int talas_ipc_stats_all_decode(const void *payload, size_t len, struct talas_ipc_stats *s, size_t max,
                               size_t *count_r);

#endif
