/*
 * rooms.c - listening rooms in LMDB (rooms.h): the room record, its pure
 * changes (members, host hand-over, queue, playback), and the one
 * read-change-write transaction every command goes through.
 *
 * Entry points: talas_room_encode/decode, talas_room_normalize and the
 * change functions, talas_room_create/update/sweep. Logs nothing: the
 * caller (workers/state/state_rooms.c) logs storage errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "core/record.h"
#include "core/util.h"
#include "store/rooms.h"

#define LAYOUT 1
#define MEMBER_REPORTED 1u
#define MEMBER_BUFFERING 2u

static void random_hex(char *out, size_t bytes)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char r[32];
    size_t got = 0;

    while (got < bytes) {
        ssize_t n = getrandom(r + got, bytes - got, 0);
        if (n <= 0)
            abort(); /* only a broken kernel; a guessable id would be worse */
        got += (size_t)n;
    }
    for (size_t i = 0; i < bytes; i++) {
        out[2 * i] = hex[r[i] >> 4];
        out[2 * i + 1] = hex[r[i] & 15];
    }
    out[2 * bytes] = '\0';
}

void talas_room_id_make(char id_r[TALAS_ROOM_ID_LEN + 1])
{
    random_hex(id_r, TALAS_ROOM_ID_LEN / 2);
}

void talas_room_entry_id_make(char id_r[TALAS_ROOM_ENTRY_ID_LEN + 1])
{
    random_hex(id_r, TALAS_ROOM_ENTRY_ID_LEN / 2);
}

int talas_room_id_valid(const char *s)
{
    size_t i;

    for (i = 0; s[i] != '\0'; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return i == TALAS_ROOM_ID_LEN;
}

static void entry_free(struct talas_room_entry *e)
{
    free(e->title);
    free(e->artist);
    e->title = e->artist = NULL;
}

void talas_room_free(struct talas_room *r)
{
    for (size_t i = 0; i < r->queue_count; i++)
        entry_free(&r->queue[i]);
    free(r->queue);
    free(r->members);
    free(r->dropped);
    r->queue = NULL;
    r->members = NULL;
    r->dropped = NULL;
    r->queue_count = r->member_count = r->dropped_count = 0;
}

/* ------------------------------------------------------------- the record */

void talas_room_encode(const struct talas_room *r, struct talas_buf *out)
{
    struct talas_record_writer w;

    talas_record_writer_buf(&w, out);
    talas_record_put_u8(&w, LAYOUT);
    talas_record_put_str(&w, r->name);
    talas_record_put_u8(&w, (uint8_t)r->mode);
    talas_record_put_str(&w, r->host);
    talas_record_put_u64(&w, r->created_ms);
    talas_record_put_u64(&w, r->empty_since_ms);
    talas_record_put_str(&w, r->playback.entry_id);
    talas_record_put_str(&w, r->playback.track_id);
    talas_record_put_u64(&w, r->playback.position_ms);
    talas_record_put_u64(&w, r->playback.at_server_ms);
    talas_record_put_u8(&w, r->playback.playing ? 1 : 0);
    talas_record_put_u32(&w, (uint32_t)r->member_count);
    for (size_t i = 0; i < r->member_count; i++) {
        const struct talas_room_member *m = &r->members[i];
        talas_record_put_str(&w, m->user_id);
        talas_record_put_u64(&w, m->joined_at_ms);
        talas_record_put_u64(&w, m->active_ms);
        talas_record_put_u32(&w, m->connections);
        talas_record_put_u8(&w, (m->reported ? MEMBER_REPORTED : 0) | (m->buffering ? MEMBER_BUFFERING : 0));
        talas_record_put_u64(&w, m->position_ms);
        talas_record_put_u64(&w, m->reported_at_ms);
    }
    talas_record_put_u32(&w, (uint32_t)r->queue_count);
    for (size_t i = 0; i < r->queue_count; i++) {
        const struct talas_room_entry *e = &r->queue[i];
        talas_record_put_str(&w, e->entry_id);
        talas_record_put_str(&w, e->track_id);
        talas_record_put_str(&w, e->title != NULL ? e->title : "");
        talas_record_put_str(&w, e->artist != NULL ? e->artist : "");
        talas_record_put_u64(&w, e->duration_ms);
    }
}

/* Copies the string just read (LEN bytes) into DST of CAP bytes, or fails;
 * EXACT: it must be empty or exactly CAP - 1 bytes. */
static int field(char *dst, size_t cap, const char *src, size_t len, int exact)
{
    if (src == NULL || len >= cap || (exact && len != 0 && len != cap - 1))
        return -1;
    memcpy(dst, src, len + 1);
    return 0;
}

int talas_room_decode(const char *id, size_t id_len, const void *data, size_t len, struct talas_room *r)
{
    struct talas_record_reader rd;
    const char *s;
    size_t n;
    uint32_t count;

    memset(r, 0, sizeof(*r));
    if (id_len != TALAS_ROOM_ID_LEN)
        return TALAS_ROOM_DAMAGED;
    memcpy(r->id, id, id_len);
    talas_record_reader_init(&rd, data, len);
    if (talas_record_get_u8(&rd) != LAYOUT)
        return TALAS_ROOM_DAMAGED;
    s = talas_record_get_str(&rd, &n);
    if (field(r->name, sizeof(r->name), s, n, 0) != 0)
        return TALAS_ROOM_DAMAGED;
    r->mode = talas_record_get_u8(&rd) ? TALAS_ROOM_HOST : TALAS_ROOM_OPEN;
    s = talas_record_get_str(&rd, &n);
    if (field(r->host, sizeof(r->host), s, n, 0) != 0)
        return TALAS_ROOM_DAMAGED;
    r->created_ms = talas_record_get_u64(&rd);
    r->empty_since_ms = talas_record_get_u64(&rd);
    s = talas_record_get_str(&rd, &n);
    if (field(r->playback.entry_id, sizeof(r->playback.entry_id), s, n, 1) != 0)
        return TALAS_ROOM_DAMAGED;
    s = talas_record_get_str(&rd, &n);
    if (field(r->playback.track_id, sizeof(r->playback.track_id), s, n, 0) != 0)
        return TALAS_ROOM_DAMAGED;
    r->playback.position_ms = talas_record_get_u64(&rd);
    r->playback.at_server_ms = talas_record_get_u64(&rd);
    r->playback.playing = talas_record_get_u8(&rd) != 0;
    count = talas_record_get_u32(&rd);
    /* every member takes at least 41 bytes: a count beyond the record is damage */
    if (talas_record_reader_ok(&rd) != 0 || count > len / 41)
        return TALAS_ROOM_DAMAGED;
    r->members = xcalloc(count ? count : 1, sizeof(*r->members));
    for (uint32_t i = 0; i < count; i++) {
        struct talas_room_member *m = &r->members[i];
        uint8_t flags;
        s = talas_record_get_str(&rd, &n);
        if (field(m->user_id, sizeof(m->user_id), s, n, 0) != 0 || n == 0)
            return TALAS_ROOM_DAMAGED;
        m->joined_at_ms = talas_record_get_u64(&rd);
        m->active_ms = talas_record_get_u64(&rd);
        m->connections = talas_record_get_u32(&rd);
        flags = talas_record_get_u8(&rd);
        m->reported = (flags & MEMBER_REPORTED) != 0;
        m->buffering = (flags & MEMBER_BUFFERING) != 0;
        m->position_ms = talas_record_get_u64(&rd);
        m->reported_at_ms = talas_record_get_u64(&rd);
        r->member_count++;
    }
    count = talas_record_get_u32(&rd);
    if (talas_record_reader_ok(&rd) != 0 || count > len / 24)
        return TALAS_ROOM_DAMAGED;
    r->queue = xcalloc(count ? count : 1, sizeof(*r->queue));
    for (uint32_t i = 0; i < count; i++) {
        struct talas_room_entry *e = &r->queue[i];
        size_t lt, la;
        const char *title, *artist;
        s = talas_record_get_str(&rd, &n);
        if (field(e->entry_id, sizeof(e->entry_id), s, n, 1) != 0 || n == 0)
            return TALAS_ROOM_DAMAGED;
        s = talas_record_get_str(&rd, &n);
        if (field(e->track_id, sizeof(e->track_id), s, n, 0) != 0)
            return TALAS_ROOM_DAMAGED;
        title = talas_record_get_str(&rd, &lt);
        artist = talas_record_get_str(&rd, &la);
        e->duration_ms = talas_record_get_u64(&rd);
        if (title == NULL || artist == NULL)
            return TALAS_ROOM_DAMAGED;
        e->title = xstrndup(title, lt);
        e->artist = xstrndup(artist, la);
        r->queue_count++;
    }
    if (talas_record_reader_end(&rd) != 0)
        return TALAS_ROOM_DAMAGED;
    return 0;
}

/* ---------------------------------------------------------- pure changes */

struct talas_room_member *talas_room_member_find(struct talas_room *r, const char *user)
{
    for (size_t i = 0; i < r->member_count; i++)
        if (strcmp(r->members[i].user_id, user) == 0)
            return &r->members[i];
    return NULL;
}

int talas_room_may_control(const struct talas_room *r, const char *user)
{
    if (talas_room_member_find((struct talas_room *)r, user) == NULL)
        return 0;
    return r->mode == TALAS_ROOM_OPEN || strcmp(r->host, user) == 0;
}

static void drop_member(struct talas_room *r, size_t i, uint64_t empty_since)
{
    memmove(&r->members[i], &r->members[i + 1], (r->member_count - i - 1) * sizeof(*r->members));
    if (--r->member_count == 0)
        r->empty_since_ms = empty_since ? empty_since : 1;
}

/* The host, when no member, passes to the longest-present member (the
 * members are in join order). 1 when it changed. */
static int hand_over(struct talas_room *r)
{
    if (r->member_count == 0 || talas_room_member_find(r, r->host) != NULL)
        return 0;
    memcpy(r->host, r->members[0].user_id, sizeof(r->host));
    return 1;
}

unsigned talas_room_normalize(struct talas_room *r, const char *actor, uint64_t now)
{
    struct talas_room_member *m;
    unsigned changed = 0;

    if (actor != NULL && (m = talas_room_member_find(r, actor)) != NULL && m->active_ms != now) {
        m->active_ms = now;
        changed |= TALAS_ROOM_NORM_ACTIVE;
    }
    for (size_t i = 0; i < r->member_count;) {
        m = &r->members[i];
        if (now >= m->active_ms && now - m->active_ms >= TALAS_ROOM_STALE_MS) {
            r->dropped = xrealloc(r->dropped, (r->dropped_count + 1) * sizeof(*r->dropped));
            memcpy(r->dropped[r->dropped_count++], m->user_id, sizeof(*r->dropped));
            drop_member(r, i, m->active_ms + TALAS_ROOM_STALE_MS);
            changed |= TALAS_ROOM_NORM_MEMBERS;
        } else {
            i++;
        }
    }
    if (hand_over(r))
        changed |= TALAS_ROOM_NORM_HOST;
    if (talas_room_clock_apply(r->queue, r->queue_count, &r->playback, now))
        changed |= TALAS_ROOM_NORM_CLOCK;
    return changed;
}

int talas_room_expired(const struct talas_room *r, const struct talas_room_limits *lim, uint64_t now)
{
    return r->member_count == 0 && r->empty_since_ms != 0 && now >= r->empty_since_ms &&
           now - r->empty_since_ms >= lim->idle_timeout_ms;
}

int talas_room_join(struct talas_room *r, const struct talas_room_limits *lim, const char *user,
                    int connection, uint64_t now, int *joined_r, struct talas_quota_refusal *refusal)
{
    struct talas_room_member *m = talas_room_member_find(r, user);

    *joined_r = 0;
    if (m == NULL) {
        if (r->member_count >= lim->max_members)
            return talas_quota_refuse(refusal, "rooms.max_members", lim->max_members);
        r->members = xrealloc(r->members, (r->member_count + 1) * sizeof(*r->members));
        m = &r->members[r->member_count++];
        memset(m, 0, sizeof(*m));
        snprintf(m->user_id, sizeof(m->user_id), "%s", user);
        m->joined_at_ms = now;
        r->empty_since_ms = 0;
        *joined_r = 1;
        hand_over(r);
    }
    m->active_ms = now;
    if (connection)
        m->connections++;
    return 0;
}

int talas_room_leave(struct talas_room *r, const char *user, int connection_only, uint64_t now)
{
    for (size_t i = 0; i < r->member_count; i++) {
        struct talas_room_member *m = &r->members[i];
        if (strcmp(m->user_id, user) != 0)
            continue;
        if (connection_only && m->connections > 1) {
            m->connections--;
            return 0;
        }
        drop_member(r, i, now);
        hand_over(r);
        return 1;
    }
    return TALAS_ROOM_FORBIDDEN;
}

int talas_room_report(struct talas_room *r, const char *user, uint64_t position_ms, int buffering,
                      uint64_t now, int *buffering_changed_r)
{
    struct talas_room_member *m = talas_room_member_find(r, user);

    if (m == NULL)
        return TALAS_ROOM_FORBIDDEN;
    *buffering_changed_r = !m->buffering != !buffering;
    m->reported = 1;
    m->position_ms = position_ms;
    m->reported_at_ms = now;
    m->buffering = buffering != 0;
    m->active_ms = now;
    return 0;
}

int talas_room_queue_insert(struct talas_room *r, const struct talas_room_limits *lim, size_t position,
                            struct talas_room_entry *add, size_t n, struct talas_quota_refusal *refusal)
{
    if (n > lim->max_queue || r->queue_count > lim->max_queue - n)
        return talas_quota_refuse(refusal, "rooms.max_queue", lim->max_queue);
    if (position > r->queue_count)
        position = r->queue_count;
    r->queue = xrealloc(r->queue, (r->queue_count + n + 1) * sizeof(*r->queue));
    memmove(&r->queue[position + n], &r->queue[position], (r->queue_count - position) * sizeof(*r->queue));
    for (size_t i = 0; i < n; i++) {
        r->queue[position + i] = add[i];
        talas_room_entry_id_make(r->queue[position + i].entry_id);
        add[i].title = add[i].artist = NULL;
    }
    r->queue_count += n;
    return 0;
}

int talas_room_queue_remove(struct talas_room *r, const char *entry, uint64_t now)
{
    long i = talas_room_clock_find(r->queue, r->queue_count, entry);
    struct talas_room_playback *pb = &r->playback;

    if (i < 0)
        return TALAS_ROOM_INVALID;
    if (strcmp(pb->entry_id, entry) == 0) {
        if ((size_t)i + 1 < r->queue_count) {
            memcpy(pb->entry_id, r->queue[i + 1].entry_id, sizeof(pb->entry_id));
            memcpy(pb->track_id, r->queue[i + 1].track_id, sizeof(pb->track_id));
        } else {
            pb->entry_id[0] = pb->track_id[0] = '\0';
            pb->playing = 0;
        }
        pb->position_ms = 0;
        pb->at_server_ms = now;
    }
    entry_free(&r->queue[i]);
    memmove(&r->queue[i], &r->queue[i + 1], (r->queue_count - (size_t)i - 1) * sizeof(*r->queue));
    r->queue_count--;
    return 0;
}

int talas_room_queue_move(struct talas_room *r, const char *entry, size_t position)
{
    long i = talas_room_clock_find(r->queue, r->queue_count, entry);
    struct talas_room_entry e;

    if (i < 0)
        return TALAS_ROOM_INVALID;
    if (position >= r->queue_count)
        position = r->queue_count - 1;
    e = r->queue[i];
    memmove(&r->queue[i], &r->queue[i + 1], (r->queue_count - (size_t)i - 1) * sizeof(*r->queue));
    memmove(&r->queue[position + 1], &r->queue[position],
            (r->queue_count - 1 - position) * sizeof(*r->queue));
    r->queue[position] = e;
    return 0;
}

int talas_room_play(struct talas_room *r, const char *entry, int has_position, uint64_t position_ms,
                    uint64_t now)
{
    struct talas_room_playback *pb = &r->playback;
    long i;

    if (entry == NULL) {
        i = talas_room_clock_find(r->queue, r->queue_count, pb->entry_id);
        if (i < 0 && r->queue_count == 0)
            return TALAS_ROOM_INVALID;
        if (i < 0) {
            i = 0;
            pb->position_ms = 0;
        } else if (!has_position && pb->position_ms >= r->queue[i].duration_ms) {
            /* resuming a room stopped at the end of a track: from its start */
            pb->position_ms = 0;
        }
        if (!has_position)
            position_ms = pb->playing ? talas_room_clock_position(pb, now) : pb->position_ms;
    } else if ((i = talas_room_clock_find(r->queue, r->queue_count, entry)) < 0) {
        return TALAS_ROOM_INVALID;
    } else if (!has_position) {
        position_ms = 0;
    }
    memcpy(pb->entry_id, r->queue[i].entry_id, sizeof(pb->entry_id));
    memcpy(pb->track_id, r->queue[i].track_id, sizeof(pb->track_id));
    pb->position_ms = position_ms;
    pb->at_server_ms = now;
    pb->playing = 1;
    talas_room_clock_apply(r->queue, r->queue_count, pb, now);
    return 0;
}

void talas_room_pause(struct talas_room *r, int has_position, uint64_t position_ms, uint64_t now)
{
    struct talas_room_playback *pb = &r->playback;

    pb->position_ms = has_position ? position_ms : talas_room_clock_position(pb, now);
    pb->at_server_ms = now;
    pb->playing = 0;
}

int talas_room_seek(struct talas_room *r, uint64_t position_ms, uint64_t now)
{
    struct talas_room_playback *pb = &r->playback;

    if (talas_room_clock_find(r->queue, r->queue_count, pb->entry_id) < 0)
        return TALAS_ROOM_INVALID;
    pb->position_ms = position_ms;
    pb->at_server_ms = now;
    talas_room_clock_apply(r->queue, r->queue_count, pb, now);
    return 0;
}

void talas_room_skip(struct talas_room *r, uint64_t now)
{
    struct talas_room_playback *pb = &r->playback;
    long i = talas_room_clock_find(r->queue, r->queue_count, pb->entry_id);

    if (i >= 0 && (size_t)i + 1 < r->queue_count) {
        memcpy(pb->entry_id, r->queue[i + 1].entry_id, sizeof(pb->entry_id));
        memcpy(pb->track_id, r->queue[i + 1].track_id, sizeof(pb->track_id));
        pb->position_ms = 0;
    } else {
        /* past the last (or nothing playing): stopped at the end of the last */
        if (r->queue_count > 0) {
            const struct talas_room_entry *last = &r->queue[r->queue_count - 1];
            memcpy(pb->entry_id, last->entry_id, sizeof(pb->entry_id));
            memcpy(pb->track_id, last->track_id, sizeof(pb->track_id));
            pb->position_ms = last->duration_ms;
        } else {
            pb->entry_id[0] = pb->track_id[0] = '\0';
            pb->position_ms = 0;
        }
        pb->playing = 0;
    }
    pb->at_server_ms = now;
}

/* ----------------------------------------------------------------- LMDB */

static int get(struct talas_storage *st, MDB_txn *txn, const char *id, struct talas_room *r)
{
    MDB_val k = {strlen(id), (void *)id}, v;
    int rc;

    memset(r, 0, sizeof(*r));
    if (!talas_room_id_valid(id))
        return MDB_NOTFOUND;
    if ((rc = mdb_get(txn, talas_storage_dbi(st, TALAS_DBI_ROOMS), &k, &v)) != 0)
        return rc;
    return talas_room_decode(id, k.mv_size, v.mv_data, v.mv_size, r);
}

/* Stores R. When it GROWS (a new room, a member or queue entries added)
 * it counts against the user-data budget (quota.h), as every user record
 * does: refused with "storage.user_data_max" in *REFUSAL once the users'
 * databases reach it. Other changes (the playback, a member leaving) are
 * always stored, so a full budget never stops a room playing. */
static int put(struct talas_storage *st, MDB_txn *txn, const struct talas_room *r, int grows,
               const struct talas_room_limits *lim, struct talas_quota_refusal *refusal)
{
    struct talas_buf buf = {0};
    MDB_val k = {TALAS_ROOM_ID_LEN, (void *)r->id}, v;
    int rc;

    if (grows && (rc = talas_quota_user_data_check(st, txn, lim->user_data_max, refusal)) != 0)
        return rc;
    talas_room_encode(r, &buf);
    v.mv_data = buf.data;
    v.mv_size = buf.len;
    rc = mdb_put(txn, talas_storage_dbi(st, TALAS_DBI_ROOMS), &k, &v, 0);
    talas_buf_free(&buf);
    return rc;
}

/* How many live rooms USER hosts, in TXN (a scan: rooms are few). */
static int hosted(struct talas_storage *st, MDB_txn *txn, const struct talas_room_limits *lim,
                  const char *user, uint64_t now, uint32_t *count_r)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;

    *count_r = 0;
    if ((rc = mdb_cursor_open(txn, talas_storage_dbi(st, TALAS_DBI_ROOMS), &cur)) != 0)
        return rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        struct talas_room r;
        if (talas_room_decode(k.mv_data, k.mv_size, v.mv_data, v.mv_size, &r) == 0 &&
            strcmp(r.host, user) == 0) {
            talas_room_normalize(&r, NULL, now);
            if (!talas_room_expired(&r, lim, now))
                (*count_r)++;
        }
        talas_room_free(&r);
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int talas_room_create(struct talas_storage *st, const struct talas_room_limits *lim,
                      const struct talas_room *r, uint64_t now, struct talas_quota_refusal *refusal)
{
    MDB_txn *txn;
    uint32_t count;
    int rc;

    if ((rc = talas_storage_write_begin(st, &txn)) != 0)
        return rc;
    if ((rc = hosted(st, txn, lim, r->host, now, &count)) != 0)
        goto fail;
    if (count >= lim->max_per_user) {
        rc = talas_quota_refuse(refusal, "rooms.max_per_user", lim->max_per_user);
        goto fail;
    }
    if ((rc = put(st, txn, r, 1, lim, refusal)) != 0)
        goto fail;
    return mdb_txn_commit(txn);
fail:
    mdb_txn_abort(txn);
    return rc;
}

int talas_room_update(struct talas_storage *st, const struct talas_room_limits *lim, const char *id,
                      const char *actor, uint64_t now, talas_room_change_fn *fn, void *arg,
                      struct talas_room *room_r, unsigned *norm_r, struct talas_quota_refusal *refusal_r)
{
    MDB_txn *txn;
    size_t members, entries;
    unsigned norm;
    int rc, frc = TALAS_ROOM_UNCHANGED, write = fn != NULL;

    if (norm_r != NULL)
        *norm_r = 0;
    for (;;) {
        rc = write ? talas_storage_write_begin(st, &txn) : talas_storage_read_begin(st, &txn);
        if (rc != 0) {
            memset(room_r, 0, sizeof(*room_r));
            return rc;
        }
        if ((rc = get(st, txn, id, room_r)) != 0)
            goto fail;
        norm = talas_room_normalize(room_r, actor, now);
        if (talas_room_expired(room_r, lim, now)) {
            if (!write) {
                /* deleted in a write transaction of its own */
                mdb_txn_abort(txn);
                talas_room_free(room_r);
                write = 1;
                continue;
            }
            rc = mdb_del(txn, talas_storage_dbi(st, TALAS_DBI_ROOMS),
                         &(MDB_val){TALAS_ROOM_ID_LEN, room_r->id}, NULL);
            talas_room_free(room_r);
            if (rc != 0 || (rc = mdb_txn_commit(txn)) != 0)
                return rc;
            return MDB_NOTFOUND;
        }
        if (!write && norm != 0) {
            mdb_txn_abort(txn);
            talas_room_free(room_r);
            write = 1;
            continue;
        }
        break;
    }
    if (norm_r != NULL)
        *norm_r = norm;
    members = room_r->member_count;
    entries = room_r->queue_count;
    if (fn != NULL)
        frc = fn(room_r, now, arg);
    if (frc < 0 && norm == 0) {
        rc = frc;
        goto fail;
    }
    if (frc < 0) {
        /* the change is refused, but the room made current is stored:
         * read again, normalized again, without the refused change */
        mdb_txn_abort(txn);
        talas_room_free(room_r);
        rc = talas_room_update(st, lim, id, actor, now, NULL, NULL, room_r, NULL, NULL);
        return rc != 0 ? rc : frc;
    }
    if (!write) {
        mdb_txn_abort(txn);
        return 0;
    }
    if (frc == TALAS_ROOM_UNCHANGED && norm == 0) {
        mdb_txn_abort(txn);
        return 0;
    }
    if ((rc = put(st, txn, room_r, room_r->member_count > members || room_r->queue_count > entries, lim,
                  refusal_r)) != 0) {
        if (rc == TALAS_QUOTA_EXCEEDED && norm != 0) {
            /* as a refused change: the room made current is stored */
            mdb_txn_abort(txn);
            talas_room_free(room_r);
            frc = talas_room_update(st, lim, id, actor, now, NULL, NULL, room_r, NULL, NULL);
            return frc != 0 ? frc : rc;
        }
        goto fail;
    }
    return mdb_txn_commit(txn);
fail:
    mdb_txn_abort(txn);
    return rc;
}

int talas_room_sweep(struct talas_storage *st, const struct talas_room_limits *lim, uint64_t now, size_t max,
                     size_t *deleted_r)
{
    MDB_cursor *cur;
    MDB_txn *txn;
    MDB_val k, v;
    int rc;

    *deleted_r = 0;
    if ((rc = talas_storage_write_begin(st, &txn)) != 0)
        return rc;
    if ((rc = mdb_cursor_open(txn, talas_storage_dbi(st, TALAS_DBI_ROOMS), &cur)) != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && *deleted_r < max;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        struct talas_room r;
        int expired = 0;
        if (talas_room_decode(k.mv_data, k.mv_size, v.mv_data, v.mv_size, &r) == 0) {
            talas_room_normalize(&r, NULL, now);
            expired = talas_room_expired(&r, lim, now);
        }
        talas_room_free(&r);
        if (expired) {
            if ((rc = mdb_cursor_del(cur, 0)) != 0)
                break;
            (*deleted_r)++;
        }
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        return rc;
    }
    if (*deleted_r == 0) {
        mdb_txn_abort(txn);
        return 0;
    }
    return mdb_txn_commit(txn);
}
