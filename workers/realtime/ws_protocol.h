/*
 * ws_protocol.h - the /api/ws protocol of the seeds, as pure functions:
 * commands parsed from text frames, events written as JSON, and the
 * envelope of POST /api/events. Nothing here touches a socket, the loop or
 * LMDB, so it is unit-tested and fuzzed on its own.
 *
 * Commands are JSON objects tagged "command" (Play, Pause, Stop, Seek,
 * AddToPlaylist, RemoveFromPlaylist, Subscribe, Unsubscribe, GetStatus,
 * Ping, and PlaylistShared: the seeds' event, sent by a playlist's owner
 * to share it; the listening rooms' CreateRoom, JoinRoom, LeaveRoom,
 * RoomPlay, RoomPause, RoomSeek, RoomSkip, RoomQueueAdd, RoomQueueRemove,
 * RoomQueueMove, RoomMemberStatus, and TimeSync); events are objects
 * tagged "event". Members a command does not
 * define are ignored (as serde does); members it defines must have the
 * right type. u64 fields take any non-negative JSON number, fractions
 * truncated (a browser sends currentTime * 1000).
 */
#ifndef TALAS_WS_PROTOCOL_H
#define TALAS_WS_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#include "core/ipc.h" /* enum talas_ws_target: the master relays events too */
#include "core/json.h"
#include "core/util.h"

/* Longest id (command_id, track_id, user_id, playlist_id...) accepted. */
#define TALAS_WS_ID_MAX 128
/* Most events a Subscribe names, and filters it gives. */
#define TALAS_WS_MAX_EVENTS 32
#define TALAS_WS_MAX_FILTERS 16
/* Most users one PlaylistShared command names (each gets the event). */
#define TALAS_WS_MAX_SHARE_USERS 64

enum talas_ws_command_type {
    TALAS_WS_PLAY,
    TALAS_WS_PAUSE,
    TALAS_WS_STOP,
    TALAS_WS_SEEK,
    TALAS_WS_ADD_TO_PLAYLIST,
    TALAS_WS_REMOVE_FROM_PLAYLIST,
    TALAS_WS_SUBSCRIBE,
    TALAS_WS_UNSUBSCRIBE,
    TALAS_WS_GET_STATUS,
    TALAS_WS_PING,
    TALAS_WS_PLAYLIST_SHARED,
    /* listening rooms (ws_rooms.c) */
    TALAS_WS_CREATE_ROOM,
    TALAS_WS_JOIN_ROOM,
    TALAS_WS_LEAVE_ROOM,
    TALAS_WS_ROOM_PLAY,
    TALAS_WS_ROOM_PAUSE,
    TALAS_WS_ROOM_SEEK,
    TALAS_WS_ROOM_SKIP,
    TALAS_WS_ROOM_QUEUE_ADD,
    TALAS_WS_ROOM_QUEUE_REMOVE,
    TALAS_WS_ROOM_QUEUE_MOVE,
    TALAS_WS_ROOM_MEMBER_STATUS,
    TALAS_WS_TIME_SYNC,
};

/* A room's name: 1 to this many characters (UTF-8). */
#define TALAS_WS_ROOM_NAME_CHARS 100
/* The longest invite token and artist name a room command takes. */
#define TALAS_WS_INVITE_MAX 4096
#define TALAS_WS_ARTIST_MAX 1024

struct talas_ws_filter {
    char *key, *value;
};

/* A parsed command; every string is malloc'd and owned by the command
 * (talas_ws_command_free). */
struct talas_ws_command {
    enum talas_ws_command_type type;
    char *command_id;     /* never NULL after a parse that got this far; "" when absent */
    char *track_id;       /* Play, Pause, Stop, Seek, AddToPlaylist, RemoveFromPlaylist */
    char *playlist_id;    /* AddToPlaylist, RemoveFromPlaylist, PlaylistShared */
    char *quality;        /* Play: optional extension, NULL when absent */
    char *platform;       /* Play: optional extension, NULL when absent */
    uint64_t position_ms; /* Play start_position_ms, Seek position_ms */
    int has_position_ms;
    uint64_t position; /* AddToPlaylist */
    int has_position;
    double buffer_percentage; /* Seek: optional extension */
    int has_buffer_percentage;
    char **events; /* Subscribe, Unsubscribe */
    size_t event_count;
    struct talas_ws_filter *filters; /* Subscribe */
    size_t filter_count;
    char **to_users; /* PlaylistShared: 1 to TALAS_WS_MAX_SHARE_USERS user ids */
    size_t to_user_count;
    char *from_user; /* PlaylistShared: optional, NULL when absent */
    /* room commands; strings NULL when absent. Their parse errors start
     * with "invalid: " */
    char *room_id;    /* every room command but CreateRoom: 24 lowercase hex */
    char *name;       /* CreateRoom: 1 to TALAS_WS_ROOM_NAME_CHARS characters, no NUL */
    int host_mode;    /* CreateRoom: mode "host" (1) or "open" (0, the default) */
    char *invite;     /* JoinRoom: optional */
    char *entry_id;   /* RoomPlay (optional), RoomQueueRemove, RoomQueueMove */
    char *artist;     /* RoomQueueAdd: one of track_id, artist, playlist_id */
    int buffering;    /* RoomMemberStatus */
    double client_ms; /* TimeSync: optional, echoed */
    int has_client_ms;
    /* position_ms: RoomPlay, RoomPause (optional), RoomSeek, RoomMemberStatus;
     * position: RoomQueueAdd (optional), RoomQueueMove */
};

/* 1 when TYPE is a room command (or TimeSync). */
int talas_ws_command_is_room(enum talas_ws_command_type type);

/*
 * Parses one text frame (TEXT, LEN bytes). Returns 0 and fills *CMD; or -1
 * with a malloc'd, human-readable reason in *error_r, and CMD->command_id
 * set to the frame's command_id when it could be read ("" otherwise), so
 * that the answer still carries it. Free CMD with talas_ws_command_free
 * either way.
 */
int talas_ws_command_parse(const char *text, size_t len, struct talas_ws_command *cmd, char **error_r);
void talas_ws_command_free(struct talas_ws_command *cmd);
/* "Play", "Seek"... */
const char *talas_ws_command_name(enum talas_ws_command_type type);

/* 1 when NAME is an event of the protocol. */
int talas_ws_event_name_valid(const char *name);

/* Starts an event object {"event":NAME into OUT; add members with the
 * json writer, then close with talas_json_object_end. */
void talas_ws_event_begin(struct talas_json *json, struct talas_buf *out, const char *name);

/* {"event":"CommandResponse","command_id":..,"success":..,"data":DATA,
 * "error":..}; DATA is raw JSON (NULL: null), ERROR NULL: null. */
void talas_ws_command_response(struct talas_buf *out, const char *command_id, int success, const char *data,
                               size_t data_len, const char *error);

/* {"event":"RateLimitWarning","remaining_requests":REMAINING,
 * "reset_time_seconds":RESET_S} into OUT. */
void talas_ws_rate_limit_warning(struct talas_buf *out, uint32_t remaining, uint64_t reset_s);

/* What a receiver needs to route an event without parsing it per
 * connection: its name and its top-level string members. */
#define TALAS_WS_MAX_ATTRS 8
struct talas_ws_event_info {
    char name[32];
    size_t attr_count;
    struct {
        char key[32];
        char value[TALAS_WS_ID_MAX + 1];
    } attrs[TALAS_WS_MAX_ATTRS];
};

/* Reads the name and the short top-level string members of event JSON.
 * Returns 0, or -1 when it is not an event object. */
int talas_ws_event_info_read(const char *json, size_t len, struct talas_ws_event_info *info);

/* 1 when every filter (KEY = VALUE, string equality) names a member of the
 * event with that value. An event without the member does not match. */
int talas_ws_filters_match(const struct talas_ws_event_info *info, const struct talas_ws_filter *filters,
                           size_t count);

/* POST /api/events: {"event":{...}, "send_to_user":U | "send_to_connection":C}. */
struct talas_ws_publish {
    enum talas_ws_target target;
    char *to;              /* user or connection id; NULL for all */
    struct talas_buf json; /* the event, re-written canonically */
    /* PlaylistShared: what the store records (the users become editors);
     * NULL and 0 for the other events */
    char *playlist_id;
    char **to_users;
    size_t to_user_count;
};

/*
 * Parses and checks a publish request: the event must be one a backend may
 * inject (TrackLiked, TrackShared, UserFollowed, PlaylistShared,
 * ServerMessage) with the seed's fields and types. Returns 0, or -1 with a
 * malloc'd reason in *error_r. Free with talas_ws_publish_free.
 */
int talas_ws_publish_parse(const char *text, size_t len, struct talas_ws_publish *p, char **error_r);
void talas_ws_publish_free(struct talas_ws_publish *p);

#endif
