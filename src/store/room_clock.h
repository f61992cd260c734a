/*
 * room_clock.h - where a listening room is now: the server is the clock
 * (pure, unit-tested; rooms.c applies it inside each room's transaction).
 *
 * A room's playback is {entry, track, position_ms, at_server_ms, playing}:
 * at wall-clock AT_SERVER_MS the room was at POSITION_MS of the queue entry
 * ENTRY; while playing it advances with the clock. The lazy next-entry
 * rule: once that position passes the entry's duration the room is on the
 * next entry of the queue, which started at at_server_ms + (duration -
 * position_ms), and so on across several entries; past the last one the
 * room is stopped at the end of the last track. Whoever reads a room
 * applies the rule and stores the result when it changed, so every reader
 * agrees on one instant for each track change.
 */
#ifndef TALAS_ROOM_CLOCK_H
#define TALAS_ROOM_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* An entry id: 16 lowercase hex characters, random. */
#define TALAS_ROOM_ENTRY_ID_LEN 16
/* A track id of the catalog (store/catalog.h: 16 base64url characters). */
#define TALAS_ROOM_TRACK_ID_LEN 16

/* One entry of a room's queue; TITLE and ARTIST are malloc'd (owned by
 * the room holding the entry, rooms.h). */
struct talas_room_entry {
    char entry_id[TALAS_ROOM_ENTRY_ID_LEN + 1];
    char track_id[TALAS_ROOM_TRACK_ID_LEN + 1];
    char *title, *artist;
    uint64_t duration_ms;
};

struct talas_room_playback {
    char entry_id[TALAS_ROOM_ENTRY_ID_LEN + 1]; /* "": no entry (null) */
    char track_id[TALAS_ROOM_TRACK_ID_LEN + 1]; /* "": no track (null) */
    uint64_t position_ms, at_server_ms;
    int playing;
};

/* The position of PB at wall-clock NOW (ms): position_ms, plus the time
 * since at_server_ms while playing. Not clamped to the track. */
uint64_t talas_room_clock_position(const struct talas_room_playback *pb, uint64_t now);

/* The index of ENTRY_ID in QUEUE (N entries), or -1. */
long talas_room_clock_find(const struct talas_room_entry *queue, size_t n, const char *entry_id);

/*
 * Applies the lazy next-entry rule to *PB at NOW against QUEUE (N
 * entries): moves it to the entry the room is on now (position_ms 0,
 * at_server_ms the instant that entry started) or, past the last, stops
 * it (playing 0, position_ms the last duration, at_server_ms the instant
 * it ended). A playing PB whose entry is not in QUEUE is stopped where it
 * is. Returns 1 when *PB changed, 0 when not.
 */
int talas_room_clock_apply(const struct talas_room_entry *queue, size_t n, struct talas_room_playback *pb,
                           uint64_t now);

#endif
