/*
 * ws_protocol.c - commands, events and the publish envelope of /api/ws
 * (ws_protocol.h).
 *
 * Entry points: talas_ws_command_parse, talas_ws_event_begin,
 * talas_ws_command_response, talas_ws_event_info_read,
 * talas_ws_filters_match, talas_ws_publish_parse.
 *
 * Frames are read by a small bounded JSON reader into a tree of nodes held
 * in one array: depth at most MAX_DEPTH (a command nests an array or an
 * object of strings in its top-level object; an event one more level), at
 * most MAX_NODES values, strings decoded into one scratch buffer as long as
 * the input. The reader never recurses deeper than MAX_DEPTH, so a frame of
 * ten thousand "[" costs nothing. It logs nothing.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json_read.h"
#include "realtime/ws_protocol.h"

#define MAX_DEPTH 4
#define MAX_NODES 4096

enum jtype { J_NULL, J_FALSE, J_TRUE, J_NUMBER, J_STRING, J_ARRAY, J_OBJECT };

struct node {
    enum jtype type;
    int next;  /* next sibling, -1 at the end */
    int first; /* arrays and objects: first child, -1 when empty */
    size_t count;
    const char *key; /* members: the key (decoded, NUL-terminated) */
    const char *str; /* strings */
    size_t len;
    double num;   /* numbers */
    int integral; /* numbers: no fraction or exponent */
};

struct doc {
    const char *p, *end;
    char *scratch, *out;
    struct node *nodes;
    int count, cap;
    const char *error;
};

static int fail(struct doc *d, const char *error)
{
    if (d->error == NULL)
        d->error = error;
    return -1;
}

static void skip_ws(struct doc *d)
{
    while (d->p < d->end && (*d->p == ' ' || *d->p == '\t' || *d->p == '\n' || *d->p == '\r'))
        d->p++;
}

static int new_node(struct doc *d, enum jtype type)
{
    if (d->count == MAX_NODES)
        return fail(d, "too many values");
    if (d->count == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 16;
        d->nodes = xrealloc(d->nodes, (size_t)d->cap * sizeof(*d->nodes));
    }
    memset(&d->nodes[d->count], 0, sizeof(d->nodes[0]));
    d->nodes[d->count].type = type;
    d->nodes[d->count].next = d->nodes[d->count].first = -1;
    return d->count++;
}

/* At the opening quote: decodes the string into the scratch buffer (the
 * input length + 1: always room). */
static int read_string(struct doc *d, const char **s_r, size_t *len_r)
{
    const char *error;

    *s_r = d->out;
    if (talas_json_scan_string(&d->p, d->end, &d->out, len_r, &error) != 0)
        return fail(d, error);
    return 0;
}

static int read_number(struct doc *d, struct node *n)
{
    const char *start = d->p, *p = d->p;
    char tmp[64];

    n->integral = 1;
    if (p < d->end && *p == '-')
        p++;
    if (p >= d->end || *p < '0' || *p > '9')
        return fail(d, "bad number");
    if (*p == '0' && p + 1 < d->end && p[1] >= '0' && p[1] <= '9')
        return fail(d, "bad number (leading zero)");
    while (p < d->end && *p >= '0' && *p <= '9')
        p++;
    if (p < d->end && *p == '.') {
        n->integral = 0;
        if (++p >= d->end || *p < '0' || *p > '9')
            return fail(d, "bad number");
        while (p < d->end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < d->end && (*p == 'e' || *p == 'E')) {
        n->integral = 0;
        if (++p < d->end && (*p == '+' || *p == '-'))
            p++;
        if (p >= d->end || *p < '0' || *p > '9')
            return fail(d, "bad number");
        while (p < d->end && *p >= '0' && *p <= '9')
            p++;
    }
    if ((size_t)(p - start) >= sizeof(tmp))
        return fail(d, "number too long");
    memcpy(tmp, start, (size_t)(p - start));
    tmp[p - start] = '\0';
    n->num = strtod(tmp, NULL);
    d->p = p;
    return 0;
}

static int read_literal(struct doc *d, const char *word)
{
    size_t n = strlen(word);

    if ((size_t)(d->end - d->p) < n || memcmp(d->p, word, n) != 0)
        return fail(d, "unexpected character");
    d->p += n;
    return 0;
}

/* Reads one value; returns its node index or -1. */
static int read_value(struct doc *d, int depth)
{
    int idx, last = -1;

    skip_ws(d);
    if (d->p >= d->end)
        return fail(d, "unexpected end of input");
    switch (*d->p) {
    case '{':
    case '[': {
        int object = *d->p == '{';
        char close = object ? '}' : ']';
        if (depth >= MAX_DEPTH)
            return fail(d, "nested too deeply");
        if ((idx = new_node(d, object ? J_OBJECT : J_ARRAY)) < 0)
            return -1;
        d->p++;
        skip_ws(d);
        if (d->p < d->end && *d->p == close) {
            d->p++;
            return idx;
        }
        for (;;) {
            const char *key = NULL;
            size_t klen;
            int child;
            skip_ws(d);
            if (object) {
                if (d->p >= d->end || *d->p != '"')
                    return fail(d, "expected a member name");
                if (read_string(d, &key, &klen) != 0)
                    return -1;
                for (int c = d->nodes[idx].first; c != -1; c = d->nodes[c].next)
                    if (strcmp(d->nodes[c].key, key) == 0)
                        return fail(d, "duplicate member name");
                skip_ws(d);
                if (d->p >= d->end || *d->p != ':')
                    return fail(d, "expected ':'");
                d->p++;
            }
            if ((child = read_value(d, depth + 1)) < 0)
                return -1;
            d->nodes[child].key = key;
            if (last == -1)
                d->nodes[idx].first = child;
            else
                d->nodes[last].next = child;
            last = child;
            d->nodes[idx].count++;
            skip_ws(d);
            if (d->p < d->end && *d->p == ',') {
                d->p++;
                continue;
            }
            if (d->p < d->end && *d->p == close) {
                d->p++;
                return idx;
            }
            return fail(d, object ? "expected ',' or '}'" : "expected ',' or ']'");
        }
    }
    case '"': {
        const char *s;
        size_t len;
        if (read_string(d, &s, &len) != 0)
            return -1;
        if ((idx = new_node(d, J_STRING)) < 0)
            return -1;
        d->nodes[idx].str = s;
        d->nodes[idx].len = len;
        return idx;
    }
    case 't':
        return read_literal(d, "true") == 0 ? new_node(d, J_TRUE) : -1;
    case 'f':
        return read_literal(d, "false") == 0 ? new_node(d, J_FALSE) : -1;
    case 'n':
        return read_literal(d, "null") == 0 ? new_node(d, J_NULL) : -1;
    default:
        if ((idx = new_node(d, J_NUMBER)) < 0)
            return -1;
        return read_number(d, &d->nodes[idx]) == 0 ? idx : -1;
    }
}

/* Parses TEXT into D; the root is node 0. Returns 0 or -1 (d->error). */
static int doc_parse(struct doc *d, const char *text, size_t len)
{
    memset(d, 0, sizeof(*d));
    d->p = text;
    d->end = text + len;
    d->scratch = d->out = xmalloc(len + 1);
    if (read_value(d, 0) < 0)
        return -1;
    skip_ws(d);
    if (d->p != d->end)
        return fail(d, "garbage after the JSON value");
    return 0;
}

static void doc_free(struct doc *d)
{
    free(d->scratch);
    free(d->nodes);
}

static const struct node *member(const struct doc *d, int obj, const char *key)
{
    for (int c = d->nodes[obj].first; c != -1; c = d->nodes[c].next)
        if (strcmp(d->nodes[c].key, key) == 0)
            return &d->nodes[c];
    return NULL;
}

/* ---------------------------------------------------------------- commands */

static const char *const command_names[] = {
    [TALAS_WS_PLAY] = "Play",
    [TALAS_WS_PAUSE] = "Pause",
    [TALAS_WS_STOP] = "Stop",
    [TALAS_WS_SEEK] = "Seek",
    [TALAS_WS_ADD_TO_PLAYLIST] = "AddToPlaylist",
    [TALAS_WS_REMOVE_FROM_PLAYLIST] = "RemoveFromPlaylist",
    [TALAS_WS_SUBSCRIBE] = "Subscribe",
    [TALAS_WS_UNSUBSCRIBE] = "Unsubscribe",
    [TALAS_WS_GET_STATUS] = "GetStatus",
    [TALAS_WS_PING] = "Ping",
    [TALAS_WS_PLAYLIST_SHARED] = "PlaylistShared",
    [TALAS_WS_CREATE_ROOM] = "CreateRoom",
    [TALAS_WS_JOIN_ROOM] = "JoinRoom",
    [TALAS_WS_LEAVE_ROOM] = "LeaveRoom",
    [TALAS_WS_ROOM_PLAY] = "RoomPlay",
    [TALAS_WS_ROOM_PAUSE] = "RoomPause",
    [TALAS_WS_ROOM_SEEK] = "RoomSeek",
    [TALAS_WS_ROOM_SKIP] = "RoomSkip",
    [TALAS_WS_ROOM_QUEUE_ADD] = "RoomQueueAdd",
    [TALAS_WS_ROOM_QUEUE_REMOVE] = "RoomQueueRemove",
    [TALAS_WS_ROOM_QUEUE_MOVE] = "RoomQueueMove",
    [TALAS_WS_ROOM_MEMBER_STATUS] = "RoomMemberStatus",
    [TALAS_WS_TIME_SYNC] = "TimeSync",
};

int talas_ws_command_is_room(enum talas_ws_command_type type)
{
    return type >= TALAS_WS_CREATE_ROOM && type <= TALAS_WS_TIME_SYNC;
}

static const char *const event_names[] = {
    "PlaybackStarted", "PlaybackPaused",   "PlaybackResumed", "PlaybackStopped", "PlaybackProgress",
    "PlaylistUpdated", "PlaylistShared",   "TrackLiked",      "TrackShared",     "UserFollowed",
    "ServerMessage",   "RateLimitWarning", "CommandResponse", "LiveStats",       "TrackCommented",
    "TrackVersionAdded", "RoomState",      "RoomMemberJoined", "RoomMemberLeft",  "RoomQueueUpdated",
};

const char *talas_ws_command_name(enum talas_ws_command_type type)
{
    return command_names[type];
}

int talas_ws_event_name_valid(const char *name)
{
    for (size_t i = 0; i < TALAS_ARRAY_SIZE(event_names); i++)
        if (strcmp(name, event_names[i]) == 0)
            return 1;
    return 0;
}

static char *errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *errorf(const char *fmt, ...)
{
    va_list ap;
    char buf[512];

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return xstrdup(buf);
}

static const char *type_name(enum jtype t)
{
    switch (t) {
    case J_NULL:
        return "null";
    case J_FALSE:
    case J_TRUE:
        return "a boolean";
    case J_NUMBER:
        return "a number";
    case J_STRING:
        return "a string";
    case J_ARRAY:
        return "an array";
    default:
        return "an object";
    }
}

/* A required or optional id-like string member. Returns 0 (found or
 * absent-and-optional), -1 with *error_r. */
static int get_id(const struct doc *d, const char *key, int required, char **v_r, char **error_r)
{
    const struct node *n = member(d, 0, key);

    *v_r = NULL;
    if (n == NULL || (n->type == J_NULL && !required)) {
        if (!required)
            return 0;
        *error_r = errorf("%s: required", key);
        return -1;
    }
    if (n->type != J_STRING) {
        *error_r = errorf("%s: must be a string, not %s", key, type_name(n->type));
        return -1;
    }
    if (n->len == 0 || n->len > TALAS_WS_ID_MAX) {
        *error_r = errorf("%s: must be 1 to %d bytes long", key, TALAS_WS_ID_MAX);
        return -1;
    }
    *v_r = xstrndup(n->str, n->len);
    return 0;
}

static int get_u64(const struct doc *d, const char *key, int required, uint64_t *v_r, int *has_r,
                   char **error_r)
{
    const struct node *n = member(d, 0, key);

    *has_r = 0;
    if (n == NULL || (n->type == J_NULL && !required)) {
        if (!required)
            return 0;
        *error_r = errorf("%s: required", key);
        return -1;
    }
    /* 2^53: past it a double is no longer an exact integer */
    if (n->type != J_NUMBER || !(n->num >= 0) || n->num > 9007199254740992.0) {
        *error_r = errorf("%s: must be a non-negative integer, not %s", key,
                          n->type == J_NUMBER ? "this number" : type_name(n->type));
        return -1;
    }
    *v_r = (uint64_t)n->num;
    *has_r = 1;
    return 0;
}

static int get_string_array(const struct doc *d, const char *key, struct talas_ws_command *cmd,
                            char **error_r)
{
    const struct node *n = member(d, 0, key);

    if (n == NULL) {
        *error_r = errorf("%s: required", key);
        return -1;
    }
    if (n->type != J_ARRAY) {
        *error_r = errorf("%s: must be an array of event names, not %s", key, type_name(n->type));
        return -1;
    }
    if (n->count > TALAS_WS_MAX_EVENTS) {
        *error_r = errorf("%s: at most %d events", key, TALAS_WS_MAX_EVENTS);
        return -1;
    }
    cmd->events = xcalloc(n->count ? n->count : 1, sizeof(char *));
    for (int c = n->first; c != -1; c = d->nodes[c].next) {
        const struct node *e = &d->nodes[c];
        if (e->type != J_STRING) {
            *error_r = errorf("%s: must be an array of strings", key);
            return -1;
        }
        if (!talas_ws_event_name_valid(e->str)) {
            *error_r = errorf("%s: unknown event \"%.64s\"", key, e->str);
            return -1;
        }
        cmd->events[cmd->event_count++] = xstrndup(e->str, e->len);
    }
    return 0;
}

/* A string member of 1 to MAX bytes without NUL (MAX_CHARS characters
 * of UTF-8 at most, when not 0). */
static int get_text(const struct doc *d, const char *key, int required, size_t max, size_t max_chars,
                    char **v_r, char **error_r)
{
    const struct node *n = member(d, 0, key);
    size_t chars = 0;

    *v_r = NULL;
    if (n == NULL || (n->type == J_NULL && !required)) {
        if (!required)
            return 0;
        *error_r = errorf("%s: required", key);
        return -1;
    }
    if (n->type != J_STRING) {
        *error_r = errorf("%s: must be a string, not %s", key, type_name(n->type));
        return -1;
    }
    for (size_t i = 0; i < n->len; i++)
        chars += ((unsigned char)n->str[i] & 0xc0) != 0x80;
    if (n->len == 0 || n->len > max || (max_chars != 0 && chars > max_chars) || memchr(n->str, 0, n->len)) {
        if (max_chars != 0)
            *error_r = errorf("%s: must be 1 to %zu characters", key, max_chars);
        else
            *error_r = errorf("%s: must be 1 to %zu bytes, without NUL", key, max);
        return -1;
    }
    *v_r = xstrndup(n->str, n->len);
    return 0;
}

static int get_room_id(const struct doc *d, struct talas_ws_command *cmd, char **error_r)
{
    const struct node *n = member(d, 0, "room_id");
    size_t i;

    if (n == NULL || n->type == J_NULL) {
        *error_r = errorf("room_id: required");
        return -1;
    }
    if (n->type != J_STRING) {
        *error_r = errorf("room_id: must be a string, not %s", type_name(n->type));
        return -1;
    }
    for (i = 0; i < n->len; i++)
        if (!((n->str[i] >= '0' && n->str[i] <= '9') || (n->str[i] >= 'a' && n->str[i] <= 'f')))
            break;
    if (n->len != 24 || i != n->len) {
        *error_r = errorf("room_id: must be 24 lowercase hexadecimal characters");
        return -1;
    }
    cmd->room_id = xstrndup(n->str, n->len);
    return 0;
}

static int get_bool(const struct doc *d, const char *key, int *v_r, char **error_r)
{
    const struct node *n = member(d, 0, key);

    if (n == NULL) {
        *error_r = errorf("%s: required", key);
        return -1;
    }
    if (n->type != J_TRUE && n->type != J_FALSE) {
        *error_r = errorf("%s: must be true or false, not %s", key, type_name(n->type));
        return -1;
    }
    *v_r = n->type == J_TRUE;
    return 0;
}

static int parse_room(const struct doc *d, struct talas_ws_command *cmd, char **error_r)
{
    const struct node *n;
    char *mode = NULL;
    int sources;

    if (cmd->type != TALAS_WS_CREATE_ROOM && cmd->type != TALAS_WS_TIME_SYNC && get_room_id(d, cmd, error_r) != 0)
        return -1;
    switch (cmd->type) {
    case TALAS_WS_CREATE_ROOM:
        if (get_text(d, "name", 1, 4 * TALAS_WS_ROOM_NAME_CHARS, TALAS_WS_ROOM_NAME_CHARS, &cmd->name, error_r) !=
                0 ||
            get_text(d, "mode", 0, 16, 0, &mode, error_r) != 0)
            return -1;
        if (mode != NULL && strcmp(mode, "host") != 0 && strcmp(mode, "open") != 0) {
            free(mode);
            *error_r = errorf("mode: must be \"host\" or \"open\"");
            return -1;
        }
        cmd->host_mode = mode != NULL && strcmp(mode, "host") == 0;
        free(mode);
        return 0;
    case TALAS_WS_JOIN_ROOM:
        return get_text(d, "invite", 0, TALAS_WS_INVITE_MAX, 0, &cmd->invite, error_r);
    case TALAS_WS_LEAVE_ROOM:
    case TALAS_WS_ROOM_SKIP:
        return 0;
    case TALAS_WS_ROOM_PLAY:
        if (get_id(d, "track_id", 0, &cmd->track_id, error_r) != 0 ||
            get_id(d, "entry_id", 0, &cmd->entry_id, error_r) != 0 ||
            get_u64(d, "position_ms", 0, &cmd->position_ms, &cmd->has_position_ms, error_r) != 0)
            return -1;
        if (cmd->track_id != NULL && cmd->entry_id != NULL) {
            *error_r = errorf("track_id, entry_id: give one, not both");
            return -1;
        }
        return 0;
    case TALAS_WS_ROOM_PAUSE:
        return get_u64(d, "position_ms", 0, &cmd->position_ms, &cmd->has_position_ms, error_r);
    case TALAS_WS_ROOM_SEEK:
        return get_u64(d, "position_ms", 1, &cmd->position_ms, &cmd->has_position_ms, error_r);
    case TALAS_WS_ROOM_QUEUE_ADD:
        if (get_id(d, "track_id", 0, &cmd->track_id, error_r) != 0 ||
            get_text(d, "artist", 0, TALAS_WS_ARTIST_MAX, 0, &cmd->artist, error_r) != 0 ||
            get_id(d, "playlist_id", 0, &cmd->playlist_id, error_r) != 0 ||
            get_u64(d, "position", 0, &cmd->position, &cmd->has_position, error_r) != 0)
            return -1;
        sources = (cmd->track_id != NULL) + (cmd->artist != NULL) + (cmd->playlist_id != NULL);
        if (sources != 1) {
            *error_r = errorf("track_id, artist, playlist_id: give exactly one");
            return -1;
        }
        return 0;
    case TALAS_WS_ROOM_QUEUE_REMOVE:
        return get_id(d, "entry_id", 1, &cmd->entry_id, error_r);
    case TALAS_WS_ROOM_QUEUE_MOVE:
        return get_id(d, "entry_id", 1, &cmd->entry_id, error_r) != 0 ||
                       get_u64(d, "position", 1, &cmd->position, &cmd->has_position, error_r) != 0
                   ? -1
                   : 0;
    case TALAS_WS_ROOM_MEMBER_STATUS:
        return get_u64(d, "position_ms", 1, &cmd->position_ms, &cmd->has_position_ms, error_r) != 0 ||
                       get_bool(d, "buffering", &cmd->buffering, error_r) != 0
                   ? -1
                   : 0;
    case TALAS_WS_TIME_SYNC:
        n = member(d, 0, "client_ms");
        if (n == NULL || n->type == J_NULL)
            return 0;
        if (n->type != J_NUMBER || !(n->num >= 0) || n->num > 9007199254740992.0) {
            *error_r = errorf("client_ms: must be a non-negative number");
            return -1;
        }
        cmd->client_ms = n->num;
        cmd->has_client_ms = 1;
        return 0;
    default:
        return 0;
    }
}

/* PlaylistShared's to_users: 1 to TALAS_WS_MAX_SHARE_USERS user ids. */
static int get_users(const struct doc *d, struct talas_ws_command *cmd, char **error_r)
{
    const struct node *n = member(d, 0, "to_users");

    if (n == NULL || n->type == J_NULL) {
        *error_r = errorf("to_users: required");
        return -1;
    }
    if (n->type != J_ARRAY || n->count == 0 || n->count > TALAS_WS_MAX_SHARE_USERS) {
        *error_r = errorf("to_users: must be an array of 1 to %d user ids", TALAS_WS_MAX_SHARE_USERS);
        return -1;
    }
    cmd->to_users = xcalloc((size_t)n->count, sizeof(char *));
    for (int c = n->first; c != -1; c = d->nodes[c].next) {
        const struct node *e = &d->nodes[c];
        if (e->type != J_STRING || e->len == 0 || e->len > TALAS_WS_ID_MAX || memchr(e->str, '\0', e->len)) {
            *error_r = errorf("to_users: user ids are strings of 1 to %d bytes", TALAS_WS_ID_MAX);
            return -1;
        }
        cmd->to_users[cmd->to_user_count++] = xstrndup(e->str, e->len);
    }
    return 0;
}

static int get_filters(const struct doc *d, struct talas_ws_command *cmd, char **error_r)
{
    const struct node *n = member(d, 0, "filters");

    if (n == NULL || n->type == J_NULL)
        return 0;
    if (n->type != J_OBJECT) {
        *error_r = errorf("filters: must be an object of strings, not %s", type_name(n->type));
        return -1;
    }
    if (n->count > TALAS_WS_MAX_FILTERS) {
        *error_r = errorf("filters: at most %d filters", TALAS_WS_MAX_FILTERS);
        return -1;
    }
    cmd->filters = xcalloc(n->count ? n->count : 1, sizeof(*cmd->filters));
    for (int c = n->first; c != -1; c = d->nodes[c].next) {
        const struct node *f = &d->nodes[c];
        if (f->type != J_STRING) {
            *error_r = errorf("filters.%.64s: must be a string, not %s", f->key, type_name(f->type));
            return -1;
        }
        if (strlen(f->key) == 0 || strlen(f->key) > 31 || f->len > TALAS_WS_ID_MAX) {
            *error_r = errorf("filters: names are 1 to 31 bytes, values at most %d", TALAS_WS_ID_MAX);
            return -1;
        }
        cmd->filters[cmd->filter_count].key = xstrdup(f->key);
        cmd->filters[cmd->filter_count].value = xstrndup(f->str, f->len);
        cmd->filter_count++;
    }
    return 0;
}

int talas_ws_command_parse(const char *text, size_t len, struct talas_ws_command *cmd, char **error_r)
{
    const struct node *name, *idn;
    struct doc d;
    int rc = -1, found = -1, has;

    memset(cmd, 0, sizeof(*cmd));
    if (doc_parse(&d, text, len) != 0) {
        cmd->command_id = xstrdup("");
        *error_r = errorf("invalid JSON: %s", d.error);
        goto out;
    }
    if (d.nodes[0].type != J_OBJECT) {
        cmd->command_id = xstrdup("");
        *error_r = errorf("a command must be a JSON object, not %s", type_name(d.nodes[0].type));
        goto out;
    }
    idn = member(&d, 0, "command_id");
    if (idn != NULL && idn->type == J_STRING && idn->len <= TALAS_WS_ID_MAX)
        cmd->command_id = xstrndup(idn->str, idn->len);
    else
        cmd->command_id = xstrdup("");
    if ((name = member(&d, 0, "command")) == NULL) {
        *error_r = errorf("command: required");
        goto out;
    }
    if (name->type != J_STRING) {
        *error_r = errorf("command: must be a string, not %s", type_name(name->type));
        goto out;
    }
    for (size_t i = 0; i < TALAS_ARRAY_SIZE(command_names); i++)
        if (strcmp(name->str, command_names[i]) == 0)
            found = (int)i;
    if (found == -1) {
        *error_r = errorf("unknown command \"%.64s\"", name->str);
        goto out;
    }
    cmd->type = (enum talas_ws_command_type)found;
    if (idn == NULL || idn->type != J_STRING || idn->len == 0 || idn->len > TALAS_WS_ID_MAX) {
        *error_r = idn == NULL || idn->type == J_NULL
                       ? errorf("command_id: required")
                       : errorf("command_id: must be a string of 1 to %d bytes", TALAS_WS_ID_MAX);
        goto out;
    }
    switch (cmd->type) {
    case TALAS_WS_PLAY:
        if (get_id(&d, "track_id", 1, &cmd->track_id, error_r) != 0 ||
            get_u64(&d, "start_position_ms", 0, &cmd->position_ms, &cmd->has_position_ms, error_r) != 0 ||
            get_id(&d, "quality", 0, &cmd->quality, error_r) != 0 ||
            get_id(&d, "platform", 0, &cmd->platform, error_r) != 0)
            goto out;
        break;
    case TALAS_WS_PAUSE:
    case TALAS_WS_STOP:
        if (get_id(&d, "track_id", 1, &cmd->track_id, error_r) != 0)
            goto out;
        break;
    case TALAS_WS_SEEK: {
        const struct node *b;
        if (get_id(&d, "track_id", 1, &cmd->track_id, error_r) != 0 ||
            get_u64(&d, "position_ms", 1, &cmd->position_ms, &cmd->has_position_ms, error_r) != 0)
            goto out;
        if ((b = member(&d, 0, "buffer_percentage")) != NULL && b->type != J_NULL) {
            if (b->type != J_NUMBER || !(b->num >= 0 && b->num <= 100)) {
                *error_r = errorf("buffer_percentage: must be a number from 0 to 100");
                goto out;
            }
            cmd->buffer_percentage = b->num;
            cmd->has_buffer_percentage = 1;
        }
        break;
    }
    case TALAS_WS_ADD_TO_PLAYLIST:
        if (get_id(&d, "playlist_id", 1, &cmd->playlist_id, error_r) != 0 ||
            get_id(&d, "track_id", 1, &cmd->track_id, error_r) != 0 ||
            get_u64(&d, "position", 0, &cmd->position, &cmd->has_position, error_r) != 0)
            goto out;
        break;
    case TALAS_WS_REMOVE_FROM_PLAYLIST:
        if (get_id(&d, "playlist_id", 1, &cmd->playlist_id, error_r) != 0 ||
            get_id(&d, "track_id", 1, &cmd->track_id, error_r) != 0)
            goto out;
        break;
    case TALAS_WS_SUBSCRIBE:
        if (get_string_array(&d, "events", cmd, error_r) != 0 || get_filters(&d, cmd, error_r) != 0)
            goto out;
        break;
    case TALAS_WS_UNSUBSCRIBE:
        if (get_string_array(&d, "events", cmd, error_r) != 0)
            goto out;
        break;
    case TALAS_WS_PLAYLIST_SHARED:
        if (get_id(&d, "playlist_id", 1, &cmd->playlist_id, error_r) != 0 ||
            get_users(&d, cmd, error_r) != 0 || get_id(&d, "from_user", 0, &cmd->from_user, error_r) != 0)
            goto out;
        break;
    case TALAS_WS_GET_STATUS:
    case TALAS_WS_PING:
        break;
    default:
        if (parse_room(&d, cmd, error_r) != 0)
            goto out;
        break;
    }
    (void)has;
    rc = 0;
out:
    if (rc != 0 && found != -1 && talas_ws_command_is_room((enum talas_ws_command_type)found)) {
        /* the rooms' errors start with their code */
        char *why = *error_r;
        *error_r = errorf("invalid: %s", why);
        free(why);
    }
    doc_free(&d);
    return rc;
}

void talas_ws_command_free(struct talas_ws_command *cmd)
{
    free(cmd->command_id);
    free(cmd->track_id);
    free(cmd->playlist_id);
    free(cmd->quality);
    free(cmd->platform);
    for (size_t i = 0; i < cmd->event_count; i++)
        free(cmd->events[i]);
    free(cmd->events);
    for (size_t i = 0; i < cmd->filter_count; i++) {
        free(cmd->filters[i].key);
        free(cmd->filters[i].value);
    }
    free(cmd->filters);
    for (size_t i = 0; i < cmd->to_user_count; i++)
        free(cmd->to_users[i]);
    free(cmd->to_users);
    free(cmd->from_user);
    free(cmd->room_id);
    free(cmd->name);
    free(cmd->invite);
    free(cmd->entry_id);
    free(cmd->artist);
    memset(cmd, 0, sizeof(*cmd));
}

/* ------------------------------------------------------------------ events */

void talas_ws_event_begin(struct talas_json *json, struct talas_buf *out, const char *name)
{
    talas_json_init(json, out);
    talas_json_object_begin(json);
    talas_json_key(json, "event");
    talas_json_string(json, name);
}

void talas_ws_rate_limit_warning(struct talas_buf *out, uint32_t remaining, uint64_t reset_s)
{
    struct talas_json json;

    talas_ws_event_begin(&json, out, "RateLimitWarning");
    talas_json_key(&json, "remaining_requests");
    talas_json_uint(&json, remaining);
    talas_json_key(&json, "reset_time_seconds");
    talas_json_uint(&json, reset_s);
    talas_json_object_end(&json);
}

void talas_ws_command_response(struct talas_buf *out, const char *command_id, int success, const char *data,
                               size_t data_len, const char *error)
{
    struct talas_json json;

    talas_ws_event_begin(&json, out, "CommandResponse");
    talas_json_key(&json, "command_id");
    talas_json_string(&json, command_id);
    talas_json_key(&json, "success");
    talas_json_bool(&json, success);
    /* "data" and "error" are raw: the writer is told a value went out */
    talas_json_key(&json, "data");
    if (data != NULL)
        talas_buf_append(out, data, data_len);
    else
        talas_buf_puts(out, "null");
    json.after_key = 0;
    json.need_comma[json.depth] = 1;
    talas_json_key(&json, "error");
    if (error != NULL)
        talas_json_string(&json, error);
    else
        talas_json_null(&json);
    talas_json_object_end(&json);
}

int talas_ws_event_info_read(const char *text, size_t len, struct talas_ws_event_info *info)
{
    const struct node *name;
    struct doc d;
    int rc = -1;

    memset(info, 0, sizeof(*info));
    if (doc_parse(&d, text, len) != 0 || d.nodes[0].type != J_OBJECT)
        goto out;
    name = member(&d, 0, "event");
    if (name == NULL || name->type != J_STRING || name->len >= sizeof(info->name))
        goto out;
    memcpy(info->name, name->str, name->len + 1);
    for (int c = d.nodes[0].first; c != -1 && info->attr_count < TALAS_WS_MAX_ATTRS; c = d.nodes[c].next) {
        const struct node *n = &d.nodes[c];
        if (n->type != J_STRING || strcmp(n->key, "event") == 0 ||
            strlen(n->key) >= sizeof(info->attrs[0].key) || n->len > TALAS_WS_ID_MAX)
            continue;
        strcpy(info->attrs[info->attr_count].key, n->key);
        memcpy(info->attrs[info->attr_count].value, n->str, n->len + 1);
        info->attr_count++;
    }
    rc = 0;
out:
    doc_free(&d);
    return rc;
}

int talas_ws_filters_match(const struct talas_ws_event_info *info, const struct talas_ws_filter *filters,
                           size_t count)
{
    for (size_t i = 0; i < count; i++) {
        size_t j;
        for (j = 0; j < info->attr_count; j++)
            if (strcmp(info->attrs[j].key, filters[i].key) == 0)
                break;
        if (j == info->attr_count || strcmp(info->attrs[j].value, filters[i].value) != 0)
            return 0;
    }
    return 1;
}

/* ----------------------------------------------------------------- publish */

enum ftype { F_ID, F_STRING, F_U64, F_STRINGS, F_LEVEL };

struct field {
    const char *name;
    enum ftype type;
    int optional;
};

static const struct {
    const char *name;
    struct field fields[5];
} injectable[] = {
    {"TrackLiked", {{"track_id", F_ID, 0}, {"user_id", F_ID, 0}, {"total_likes", F_U64, 0}}},
    {"TrackShared",
     {{"track_id", F_ID, 0}, {"from_user", F_ID, 0}, {"to_users", F_STRINGS, 0}, {"message", F_STRING, 1}}},
    {"UserFollowed", {{"follower_id", F_ID, 0}, {"followed_id", F_ID, 0}}},
    {"PlaylistShared", {{"playlist_id", F_ID, 0}, {"from_user", F_ID, 0}, {"to_users", F_STRINGS, 0}}},
    {"ServerMessage", {{"message", F_STRING, 0}, {"level", F_LEVEL, 0}}},
};

/* Most recipients a TrackShared or PlaylistShared names. */
#define MAX_TO_USERS 1000
/* Longest ServerMessage or TrackShared message. */
#define MAX_MESSAGE 4096

static int write_field(const struct doc *d, const struct node *n, const struct field *f,
                       struct talas_json *json, char **error_r)
{
    talas_json_key(json, f->name);
    if (n == NULL || n->type == J_NULL) {
        if (!f->optional) {
            *error_r = errorf("event.%s: required", f->name);
            return -1;
        }
        talas_json_null(json);
        return 0;
    }
    switch (f->type) {
    case F_ID:
        if (n->type != J_STRING || n->len == 0 || n->len > TALAS_WS_ID_MAX) {
            *error_r = errorf("event.%s: must be a string of 1 to %d bytes", f->name, TALAS_WS_ID_MAX);
            return -1;
        }
        talas_json_string_n(json, n->str, n->len);
        return 0;
    case F_STRING:
        if (n->type != J_STRING || n->len > MAX_MESSAGE) {
            *error_r = errorf("event.%s: must be a string of at most %d bytes", f->name, MAX_MESSAGE);
            return -1;
        }
        talas_json_string_n(json, n->str, n->len);
        return 0;
    case F_U64:
        if (n->type != J_NUMBER || !n->integral || !(n->num >= 0) || n->num > 9007199254740992.0) {
            *error_r = errorf("event.%s: must be a non-negative integer", f->name);
            return -1;
        }
        talas_json_uint(json, (uint64_t)n->num);
        return 0;
    case F_STRINGS:
        if (n->type != J_ARRAY || n->count > MAX_TO_USERS) {
            *error_r = errorf("event.%s: must be an array of at most %d user ids", f->name, MAX_TO_USERS);
            return -1;
        }
        talas_json_array_begin(json);
        for (int c = n->first; c != -1; c = d->nodes[c].next) {
            const struct node *e = &d->nodes[c];
            if (e->type != J_STRING || e->len == 0 || e->len > TALAS_WS_ID_MAX) {
                *error_r = errorf("event.%s: must be an array of user ids", f->name);
                return -1;
            }
            talas_json_string_n(json, e->str, e->len);
        }
        talas_json_array_end(json);
        return 0;
    case F_LEVEL:
        if (n->type != J_STRING ||
            (strcmp(n->str, "Info") != 0 && strcmp(n->str, "Warning") != 0 && strcmp(n->str, "Error") != 0)) {
            *error_r = errorf("event.%s: must be \"Info\", \"Warning\" or \"Error\"", f->name);
            return -1;
        }
        talas_json_string(json, n->str);
        return 0;
    }
    return -1;
}

int talas_ws_publish_parse(const char *text, size_t len, struct talas_ws_publish *p, char **error_r)
{
    const struct node *ev, *name, *to_user, *to_conn;
    struct talas_json json;
    struct doc d;
    int rc = -1, evi;
    size_t k;

    memset(p, 0, sizeof(*p));
    if (doc_parse(&d, text, len) != 0) {
        *error_r = errorf("invalid JSON: %s", d.error);
        goto out;
    }
    if (d.nodes[0].type != J_OBJECT) {
        *error_r = errorf("the body must be a JSON object");
        goto out;
    }
    for (int c = d.nodes[0].first; c != -1; c = d.nodes[c].next)
        if (strcmp(d.nodes[c].key, "event") != 0 && strcmp(d.nodes[c].key, "send_to_user") != 0 &&
            strcmp(d.nodes[c].key, "send_to_connection") != 0) {
            *error_r =
                errorf("%.64s: unknown member (event, send_to_user, send_to_connection)", d.nodes[c].key);
            goto out;
        }
    to_user = member(&d, 0, "send_to_user");
    to_conn = member(&d, 0, "send_to_connection");
    if (to_user != NULL && to_user->type == J_NULL)
        to_user = NULL;
    if (to_conn != NULL && to_conn->type == J_NULL)
        to_conn = NULL;
    if (to_user != NULL && to_conn != NULL) {
        *error_r = errorf("give send_to_user or send_to_connection, not both");
        goto out;
    }
    if (to_user != NULL || to_conn != NULL) {
        const struct node *t = to_user != NULL ? to_user : to_conn;
        if (t->type != J_STRING || t->len == 0 || t->len > TALAS_WS_ID_MAX) {
            *error_r = errorf("%s: must be a string of 1 to %d bytes", t->key, TALAS_WS_ID_MAX);
            goto out;
        }
        p->target = to_user != NULL ? TALAS_WS_TO_USER : TALAS_WS_TO_CONNECTION;
        p->to = xstrndup(t->str, t->len);
    }
    if ((ev = member(&d, 0, "event")) == NULL || ev->type != J_OBJECT) {
        *error_r = errorf("event: required, an object such as {\"event\":\"ServerMessage\",...}");
        goto out;
    }
    evi = (int)(ev - d.nodes);
    name = member(&d, evi, "event");
    if (name == NULL || name->type != J_STRING) {
        *error_r = errorf("event.event: required, the name of the event");
        goto out;
    }
    for (k = 0; k < TALAS_ARRAY_SIZE(injectable); k++)
        if (strcmp(name->str, injectable[k].name) == 0)
            break;
    if (k == TALAS_ARRAY_SIZE(injectable)) {
        *error_r =
            errorf("event.event: \"%.64s\" cannot be published (TrackLiked, TrackShared, UserFollowed, "
                   "PlaylistShared, ServerMessage)",
                   name->str);
        goto out;
    }
    for (int c = ev->first; c != -1; c = d.nodes[c].next) {
        size_t f;
        if (strcmp(d.nodes[c].key, "event") == 0)
            continue;
        for (f = 0; f < TALAS_ARRAY_SIZE(injectable[k].fields) && injectable[k].fields[f].name != NULL; f++)
            if (strcmp(d.nodes[c].key, injectable[k].fields[f].name) == 0)
                break;
        if (f == TALAS_ARRAY_SIZE(injectable[k].fields) || injectable[k].fields[f].name == NULL) {
            *error_r = errorf("event.%.64s: not a field of %s", d.nodes[c].key, injectable[k].name);
            goto out;
        }
    }
    talas_ws_event_begin(&json, &p->json, injectable[k].name);
    for (size_t f = 0; f < TALAS_ARRAY_SIZE(injectable[k].fields) && injectable[k].fields[f].name != NULL;
         f++)
        if (write_field(&d, member(&d, evi, injectable[k].fields[f].name), &injectable[k].fields[f], &json,
                        error_r) != 0)
            goto out;
    talas_json_object_end(&json);
    if (strcmp(injectable[k].name, "PlaylistShared") == 0) {
        /* the fields were checked by write_field above */
        const struct node *id = member(&d, evi, "playlist_id"), *to = member(&d, evi, "to_users");
        p->playlist_id = xstrndup(id->str, id->len);
        p->to_users = xcalloc(to->count ? (size_t)to->count : 1, sizeof(char *));
        for (int c = to->first; c != -1; c = d.nodes[c].next)
            p->to_users[p->to_user_count++] = xstrndup(d.nodes[c].str, d.nodes[c].len);
    }
    rc = 0;
out:
    doc_free(&d);
    if (rc != 0)
        talas_ws_publish_free(p);
    return rc;
}

void talas_ws_publish_free(struct talas_ws_publish *p)
{
    for (size_t i = 0; i < p->to_user_count; i++)
        free(p->to_users[i]);
    free(p->to_users);
    free(p->playlist_id);
    free(p->to);
    talas_buf_free(&p->json);
    memset(p, 0, sizeof(*p));
}
