/*
 * rooms.h - listening rooms in LMDB: the local store behind
 * workers/state/state_rooms.h.
 *
 *   TALAS_DBI_ROOMS  room id -> u8 layout (1), str name, u8 mode, str host,
 *                    u64 created_ms, u64 empty_since_ms, the playback
 *                    (str entry, str track, u64 position_ms, u64
 *                    at_server_ms, u8 playing), u32 member count and each
 *                    member (str user, u64 joined_at_ms, u64 active_ms,
 *                    u32 connections, u8 flags, u64 position_ms, u64
 *                    reported_at_ms), u32 entry count and each entry (str
 *                    entry, str track, str title, str artist, u64
 *                    duration_ms)
 *
 * A room is one record, changed in one short write transaction
 * (talas_room_update): read, made current (talas_room_normalize: the
 * acting member marked active, members silent for TALAS_ROOM_STALE_MS
 * dropped, the host handed over, the clock rule of room_clock.h), changed
 * by the caller's function, written back. Any worker serves any member,
 * and a worker killed mid-way loses nothing but its uncommitted change.
 * A room without members for rooms.idle_timeout is deleted when next read
 * or by talas_room_sweep. The change functions (join, leave, queue, play)
 * are pure on struct talas_room: unit-tested without LMDB. Logs nothing.
 */
#ifndef TALAS_ROOMS_H
#define TALAS_ROOMS_H

#include <stddef.h>
#include <stdint.h>
#include <lmdb.h>

#include "store/quota.h"
#include "store/room_clock.h"
#include "store/storage.h"

/* A room id: 24 lowercase hex characters, random. */
#define TALAS_ROOM_ID_LEN 24
#define TALAS_ROOM_USER_MAX 128
/* A name: 1 to 100 characters of UTF-8, so at most 400 bytes. */
#define TALAS_ROOM_NAME_CHARS 100
#define TALAS_ROOM_NAME_MAX 400
/* A member who neither commands nor reports for this long is dropped. */
#define TALAS_ROOM_STALE_MS 30000

/* Besides 0, MDB_NOTFOUND, TALAS_QUOTA_EXCEEDED and LMDB errors. */
#define TALAS_ROOM_DAMAGED (-40401)   /* the stored record is of no known shape */
#define TALAS_ROOM_INVALID (-40402)   /* a bad value or an unknown entry */
#define TALAS_ROOM_FORBIDDEN (-40403) /* not a member, or not the host of a host room */
#define TALAS_ROOM_UNCHANGED 1        /* a change function's: nothing to write */

enum talas_room_mode { TALAS_ROOM_OPEN = 0, TALAS_ROOM_HOST = 1 };

struct talas_room_member {
    char user_id[TALAS_ROOM_USER_MAX + 1];
    uint64_t joined_at_ms;
    uint64_t active_ms;   /* its last command or report */
    uint32_t connections; /* its joined WebSocket connections (0: joined by REST) */
    int reported, buffering;
    uint64_t position_ms, reported_at_ms; /* its last report, when REPORTED */
};

/* A room as read; free with talas_room_free. */
struct talas_room {
    char id[TALAS_ROOM_ID_LEN + 1];
    char name[TALAS_ROOM_NAME_MAX + 1];
    enum talas_room_mode mode;
    char host[TALAS_ROOM_USER_MAX + 1];
    uint64_t created_ms;
    uint64_t empty_since_ms; /* when the last member left; 0 while it has members */
    struct talas_room_playback playback;
    struct talas_room_member *members; /* in join order */
    size_t member_count;
    struct talas_room_entry *queue;
    size_t queue_count;
    /* not stored: the members talas_room_normalize dropped as stale, for
     * the caller's events (malloc'd, freed with the room) */
    char (*dropped)[TALAS_ROOM_USER_MAX + 1];
    size_t dropped_count;
};

/* The configuration's rooms.* limits. */
struct talas_room_limits {
    uint64_t idle_timeout_ms;
    uint32_t max_members, max_queue, max_per_user;
    uint64_t user_data_max; /* storage.user_data_max; 0: no budget */
};

void talas_room_free(struct talas_room *r);
void talas_room_id_make(char id_r[TALAS_ROOM_ID_LEN + 1]);
void talas_room_entry_id_make(char id_r[TALAS_ROOM_ENTRY_ID_LEN + 1]);
/* 1 when S has the form of a room id. */
int talas_room_id_valid(const char *s);

/* Encodes R (appended to OUT); decodes a record of room ID into R (free
 * it with talas_room_free either way): 0 or TALAS_ROOM_DAMAGED. */
void talas_room_encode(const struct talas_room *r, struct talas_buf *out);
int talas_room_decode(const char *id, size_t id_len, const void *data, size_t len, struct talas_room *r);

/* ------------------------------------------------ pure changes of a room */

/* What talas_room_normalize changed (bits). */
#define TALAS_ROOM_NORM_CLOCK 1u   /* the lazy rule moved the playback */
#define TALAS_ROOM_NORM_MEMBERS 2u /* stale members were dropped */
#define TALAS_ROOM_NORM_HOST 4u    /* the host was handed over */
#define TALAS_ROOM_NORM_ACTIVE 8u  /* ACTOR was marked active */

/* Makes R current at NOW: ACTOR (may be NULL), when a member, marked
 * active; members silent for TALAS_ROOM_STALE_MS dropped; a host who is
 * no member replaced by the longest-present member (R->dropped lists the
 * members dropped); the clock rule. The bits of what changed. */
unsigned talas_room_normalize(struct talas_room *r, const char *actor, uint64_t now);
/* 1 when R has had no member for LIM's idle timeout at NOW. */
int talas_room_expired(const struct talas_room *r, const struct talas_room_limits *lim, uint64_t now);

/* USER's member, or NULL. */
struct talas_room_member *talas_room_member_find(struct talas_room *r, const char *user);
/* Whether USER may command the playback and reorder the queue. */
int talas_room_may_control(const struct talas_room *r, const char *user);

/* USER joins (CONNECTION: by a WebSocket connection, counted): 0 with
 * *joined_r 1 when USER was not a member yet, or TALAS_QUOTA_EXCEEDED
 * (rooms.max_members) in *REFUSAL. */
int talas_room_join(struct talas_room *r, const struct talas_room_limits *lim, const char *user,
                    int connection, uint64_t now, int *joined_r, struct talas_quota_refusal *refusal);
/* USER leaves: wholly, or (CONNECTION_ONLY) one of its connections, the
 * member leaving with its last one. 1 when USER left, 0 when it stays,
 * TALAS_ROOM_FORBIDDEN when not a member. The host passes to the
 * longest-present member. */
int talas_room_leave(struct talas_room *r, const char *user, int connection_only, uint64_t now);
/* Records USER's report. 0 (*buffering_changed_r set) or TALAS_ROOM_FORBIDDEN. */
int talas_room_report(struct talas_room *r, const char *user, uint64_t position_ms, int buffering,
                      uint64_t now, int *buffering_changed_r);

/* Inserts the N entries of ADD (their strings move to R; ADD's entries
 * are then cleared) at POSITION (clamped to the end), each with a fresh
 * entry id: 0, or TALAS_QUOTA_EXCEEDED (rooms.max_queue; nothing added). */
int talas_room_queue_insert(struct talas_room *r, const struct talas_room_limits *lim, size_t position,
                            struct talas_room_entry *add, size_t n, struct talas_quota_refusal *refusal);
/* Removes ENTRY: the playback on it moves to the entry after it (or
 * stops). 0 or TALAS_ROOM_INVALID. */
int talas_room_queue_remove(struct talas_room *r, const char *entry, uint64_t now);
/* Moves ENTRY to POSITION (clamped): 0 or TALAS_ROOM_INVALID. */
int talas_room_queue_move(struct talas_room *r, const char *entry, size_t position);

/* Plays ENTRY (NULL: resumes the current one, or the first of the queue)
 * from POSITION_MS (when HAS_POSITION; else 0, or the paused position
 * when resuming): 0 or TALAS_ROOM_INVALID (no such entry, empty queue). */
int talas_room_play(struct talas_room *r, const char *entry, int has_position, uint64_t position_ms,
                    uint64_t now);
/* Pauses at POSITION_MS (when HAS_POSITION; else where it is now). */
void talas_room_pause(struct talas_room *r, int has_position, uint64_t position_ms, uint64_t now);
/* Moves to POSITION_MS, playing or not: 0 or TALAS_ROOM_INVALID (no entry). */
int talas_room_seek(struct talas_room *r, uint64_t position_ms, uint64_t now);
/* The next entry at 0, still playing or paused; past the last: stopped. */
void talas_room_skip(struct talas_room *r, uint64_t now);

/* ----------------------------------------------------------------- LMDB */

/* Stores the new room R (its creator R->host is its first member): 0, or
 * TALAS_QUOTA_EXCEEDED when R->host already hosts LIM's max_per_user
 * live rooms (rooms.max_per_user, in *REFUSAL) or the users' databases
 * reached LIM's user_data_max (storage.user_data_max), or an LMDB error. */
int talas_room_create(struct talas_storage *st, const struct talas_room_limits *lim,
                      const struct talas_room *r, uint64_t now, struct talas_quota_refusal *refusal);

/*
 * A change function: changes R (made current at NOW) for ARG; returns 0
 * when it changed R, TALAS_ROOM_UNCHANGED, or an error of this header
 * (nothing of its change is written).
 */
typedef int talas_room_change_fn(struct talas_room *r, uint64_t now, void *arg);

/*
 * Reads room ID, makes it current (talas_room_normalize, ACTOR may be
 * NULL), applies FN (may be NULL: a read), and writes it back when
 * anything changed, in one write transaction (a read transaction when FN
 * is NULL and nothing changed). *ROOM_R gets the room as it is now (free
 * it with talas_room_free, whatever the result), *NORM_R (may be NULL)
 * the normalize bits. A change that adds members or queue entries
 * counts against LIM's user_data_max (quota.h): past it,
 * TALAS_QUOTA_EXCEEDED with the limit in *REFUSAL_R (may be NULL), and
 * the room stored only made current. Returns 0, FN's error, MDB_NOTFOUND for an unknown or
 * idle-expired room (deleted then), TALAS_ROOM_DAMAGED or an LMDB error.
 */
int talas_room_update(struct talas_storage *st, const struct talas_room_limits *lim, const char *id,
                      const char *actor, uint64_t now, talas_room_change_fn *fn, void *arg,
                      struct talas_room *room_r, unsigned *norm_r, struct talas_quota_refusal *refusal_r);

/* Deletes up to MAX rooms idle past LIM's timeout at NOW, in one short
 * write transaction: 0 (how many in *deleted_r) or an LMDB error. */
int talas_room_sweep(struct talas_storage *st, const struct talas_room_limits *lim, uint64_t now, size_t max,
                     size_t *deleted_r);

#endif
