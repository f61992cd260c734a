/*
 * playback.c - playback state, listening sessions, per-track totals and
 * playlists in LMDB (playback.h).
 *
 * Entry points: talas_playback_play/pause/seek/stop/get,
 * talas_playback_track_plays, talas_playback_user_sessions,
 * talas_playlist_add/remove/get, talas_playback_foreach_state.
 *
 * Records are fixed-size structs with a version word: they are written
 * and read by the same binary, and a record of another size or version is
 * treated as absent (the state of a user starts over) rather than trusted.
 * Listening time accrues from the wall clock between a Play (or a Resume)
 * and the next Pause, Seek or Stop, so a session left open still counts
 * what was heard up to its last command. Logs nothing.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/playback.h"
#include "core/util.h"

#define STATE_VERSION 1
#define SESSION_VERSION 1

static void copy_id(char *dst, size_t size, const char *src)
{
    size_t n = src != NULL ? strlen(src) : 0;

    if (n >= size)
        n = size - 1;
    if (n > 0)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

static MDB_val str_val(const char *s)
{
    MDB_val v = {strlen(s), (void *)s};
    return v;
}

static int state_read(struct talas_storage *st, MDB_txn *txn, const char *user,
                      struct talas_playback_state *s)
{
    MDB_val k = str_val(user), v;
    int rc = mdb_get(txn, talas_storage_dbi(st, TALAS_DBI_PLAYBACK), &k, &v);

    memset(s, 0, sizeof(*s));
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    if (v.mv_size == sizeof(*s)) {
        memcpy(s, v.mv_data, sizeof(*s));
        if (s->version != STATE_VERSION)
            memset(s, 0, sizeof(*s));
    }
    s->track_id[TALAS_PLAYBACK_ID_MAX] = s->quality[31] = s->platform[31] = '\0';
    return 0;
}

static int state_write(struct talas_storage *st, MDB_txn *txn, const char *user,
                       struct talas_playback_state *s)
{
    MDB_val k = str_val(user), v = {sizeof(*s), s};

    s->version = STATE_VERSION;
    return mdb_put(txn, talas_storage_dbi(st, TALAS_DBI_PLAYBACK), &k, &v, 0);
}

/* user + NUL + started (be64) + pid (be32) */
static size_t session_key(char *buf, const char *user, uint64_t started_ms, uint32_t pid)
{
    size_t n = strlen(user);
    uint32_t hi = htonl((uint32_t)(started_ms >> 32)), lo = htonl((uint32_t)started_ms), p = htonl(pid);

    memcpy(buf, user, n);
    buf[n++] = '\0';
    memcpy(buf + n, &hi, 4);
    memcpy(buf + n + 4, &lo, 4);
    memcpy(buf + n + 8, &p, 4);
    return n + 12;
}

/* Writes the session of state S (ENDED_MS 0: still open). */
static int session_write(struct talas_storage *st, MDB_txn *txn, const char *user,
                         const struct talas_playback_state *s, uint64_t ended_ms)
{
    char key[TALAS_PLAYBACK_ID_MAX + 16];
    struct talas_listen_session rec;
    MDB_val k, v = {sizeof(rec), &rec};

    memset(&rec, 0, sizeof(rec));
    rec.version = SESSION_VERSION;
    memcpy(rec.track_id, s->track_id, sizeof(rec.track_id));
    memcpy(rec.quality, s->quality, sizeof(rec.quality));
    memcpy(rec.platform, s->platform, sizeof(rec.platform));
    rec.started_ms = s->session_started_ms;
    rec.ended_ms = ended_ms;
    rec.position_ms = s->position_ms;
    rec.total_played_ms = s->played_ms;
    k.mv_data = key;
    k.mv_size = session_key(key, user, s->session_started_ms, s->session_pid);
    return mdb_put(txn, talas_storage_dbi(st, TALAS_DBI_LISTEN_SESSIONS), &k, &v, 0);
}

static int plays_update(struct talas_storage *st, MDB_txn *txn, const char *track, uint64_t plays,
                        uint64_t listen_ms, const char *new_listener)
{
    MDB_dbi dbi = talas_storage_dbi(st, TALAS_DBI_TRACK_PLAYS);
    struct talas_track_plays p;
    MDB_val k = str_val(track), v;
    int rc;

    memset(&p, 0, sizeof(p));
    rc = mdb_get(txn, dbi, &k, &v);
    if (rc == 0 && v.mv_size == sizeof(p))
        memcpy(&p, v.mv_data, sizeof(p));
    else if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    p.plays += plays;
    p.total_listening_ms += listen_ms;
    if (new_listener != NULL) {
        char key[2 * TALAS_PLAYBACK_ID_MAX + 2];
        size_t tn = strlen(track), un = strlen(new_listener);
        MDB_val lk = {tn + 1 + un, key}, lv = {0, (void *)""};
        memcpy(key, track, tn);
        key[tn] = '\0';
        memcpy(key + tn + 1, new_listener, un);
        rc = mdb_put(txn, talas_storage_dbi(st, TALAS_DBI_TRACK_LISTENERS), &lk, &lv, MDB_NOOVERWRITE);
        if (rc == 0)
            p.listeners++;
        else if (rc != MDB_KEYEXIST)
            return rc;
    }
    v.mv_size = sizeof(p);
    v.mv_data = &p;
    return mdb_put(txn, dbi, &k, &v, 0);
}

/* Brings a playing state up to NOW: position and listening time advance. */
static uint64_t accrue(struct talas_playback_state *s, uint64_t now_ms)
{
    uint64_t d = 0;

    if (s->status == TALAS_PLAYBACK_PLAYING && now_ms > s->updated_ms) {
        d = now_ms - s->updated_ms;
        s->position_ms += d;
        if (s->duration_ms > 0 && s->position_ms > s->duration_ms)
            s->position_ms = s->duration_ms;
        s->played_ms += d;
    }
    s->updated_ms = now_ms;
    return d;
}

struct change {
    struct talas_storage *st;
    MDB_txn *txn;
    struct talas_playback_state s;
};

static int change_begin(struct change *c, struct talas_storage *st, const char *user)
{
    int rc;

    c->st = st;
    if ((rc = talas_storage_write_begin(st, &c->txn)) != 0)
        return rc;
    if ((rc = state_read(st, c->txn, user, &c->s)) != 0)
        mdb_txn_abort(c->txn);
    return rc;
}

static int change_end(struct change *c, const char *user, int rc)
{
    if (rc == 0 && (rc = state_write(c->st, c->txn, user, &c->s)) == 0)
        return mdb_txn_commit(c->txn);
    mdb_txn_abort(c->txn);
    return rc;
}

int talas_playback_play(struct talas_storage *st, const char *user, const char *track, uint64_t duration_ms,
                        int has_start, uint64_t start_ms, const char *quality, const char *platform,
                        uint64_t now_ms, struct talas_playback_result *r, const char **reason_r)
{
    struct change c;
    uint64_t d;
    int rc;

    memset(r, 0, sizeof(*r));
    if (has_start && duration_ms > 0 && start_ms > duration_ms) {
        *reason_r = "start_position_ms: past the end of the track";
        return 1;
    }
    if ((rc = change_begin(&c, st, user)) != 0)
        return rc;
    if (c.s.status == TALAS_PLAYBACK_PAUSED && strcmp(c.s.track_id, track) == 0) {
        accrue(&c.s, now_ms);
        if (has_start)
            c.s.position_ms = start_ms;
        c.s.status = TALAS_PLAYBACK_PLAYING;
        r->resumed = 1;
        r->position_ms = c.s.position_ms;
        rc = session_write(st, c.txn, user, &c.s, 0);
        return change_end(&c, user, rc);
    }
    if (c.s.status != TALAS_PLAYBACK_STOPPED) {
        /* another track (or the same one again): its session ends here */
        d = accrue(&c.s, now_ms);
        r->stopped_previous = 1;
        copy_id(r->previous_track, sizeof(r->previous_track), c.s.track_id);
        r->previous_played_ms = c.s.played_ms;
        if ((rc = plays_update(st, c.txn, c.s.track_id, 0, d, NULL)) != 0 ||
            (rc = session_write(st, c.txn, user, &c.s, now_ms)) != 0)
            return change_end(&c, user, rc);
    }
    memset(&c.s, 0, sizeof(c.s));
    c.s.status = TALAS_PLAYBACK_PLAYING;
    copy_id(c.s.track_id, sizeof(c.s.track_id), track);
    copy_id(c.s.quality, sizeof(c.s.quality), quality);
    copy_id(c.s.platform, sizeof(c.s.platform), platform);
    c.s.duration_ms = duration_ms;
    c.s.position_ms = has_start ? start_ms : 0;
    c.s.updated_ms = c.s.session_started_ms = now_ms;
    c.s.session_pid = (uint32_t)getpid();
    r->position_ms = c.s.position_ms;
    if ((rc = plays_update(st, c.txn, track, 1, 0, user)) == 0)
        rc = session_write(st, c.txn, user, &c.s, 0);
    return change_end(&c, user, rc);
}

/* The state must be on TRACK (and playing, when PLAYING_ONLY). */
static int check_track(struct change *c, const char *track, int playing_only, const char **reason_r)
{
    if (c->s.status == TALAS_PLAYBACK_STOPPED || strcmp(c->s.track_id, track) != 0) {
        *reason_r = "this track is not playing: send Play first";
        return 1;
    }
    if (playing_only && c->s.status != TALAS_PLAYBACK_PLAYING) {
        *reason_r = "this track is already paused";
        return 1;
    }
    return 0;
}

int talas_playback_pause(struct talas_storage *st, const char *user, const char *track, uint64_t now_ms,
                         struct talas_playback_result *r, const char **reason_r)
{
    struct change c;
    uint64_t d;
    int rc;

    memset(r, 0, sizeof(*r));
    if ((rc = change_begin(&c, st, user)) != 0)
        return rc;
    if ((rc = check_track(&c, track, 1, reason_r)) != 0)
        return change_end(&c, user, rc);
    d = accrue(&c.s, now_ms);
    c.s.status = TALAS_PLAYBACK_PAUSED;
    r->position_ms = c.s.position_ms;
    if ((rc = plays_update(st, c.txn, track, 0, d, NULL)) == 0)
        rc = session_write(st, c.txn, user, &c.s, 0);
    return change_end(&c, user, rc);
}

int talas_playback_seek(struct talas_storage *st, const char *user, const char *track, uint64_t position_ms,
                        uint64_t now_ms, struct talas_playback_result *r, const char **reason_r)
{
    struct change c;
    uint64_t d;
    int rc;

    memset(r, 0, sizeof(*r));
    if ((rc = change_begin(&c, st, user)) != 0)
        return rc;
    if ((rc = check_track(&c, track, 0, reason_r)) != 0)
        return change_end(&c, user, rc);
    if (c.s.duration_ms > 0 && position_ms > c.s.duration_ms) {
        *reason_r = "position_ms: past the end of the track";
        return change_end(&c, user, 1);
    }
    d = accrue(&c.s, now_ms);
    c.s.position_ms = position_ms;
    r->position_ms = position_ms;
    if ((rc = plays_update(st, c.txn, track, 0, d, NULL)) == 0)
        rc = session_write(st, c.txn, user, &c.s, 0);
    return change_end(&c, user, rc);
}

int talas_playback_stop(struct talas_storage *st, const char *user, const char *track, uint64_t now_ms,
                        struct talas_playback_result *r, const char **reason_r)
{
    struct change c;
    uint64_t d;
    int rc;

    memset(r, 0, sizeof(*r));
    if ((rc = change_begin(&c, st, user)) != 0)
        return rc;
    if ((rc = check_track(&c, track, 0, reason_r)) != 0)
        return change_end(&c, user, rc);
    d = accrue(&c.s, now_ms);
    r->position_ms = c.s.position_ms;
    r->total_played_ms = c.s.played_ms;
    if ((rc = plays_update(st, c.txn, track, 0, d, NULL)) == 0)
        rc = session_write(st, c.txn, user, &c.s, now_ms);
    c.s.status = TALAS_PLAYBACK_STOPPED;
    return change_end(&c, user, rc);
}

int talas_playback_get(struct talas_storage *st, MDB_txn *txn, const char *user,
                       struct talas_playback_state *s)
{
    int rc = state_read(st, txn, user, s);

    /* what a reader sees is the position now, not at the last command */
    if (rc == 0)
        accrue(s, talas_wall_ms());
    return rc;
}

int talas_playback_track_plays(struct talas_storage *st, MDB_txn *txn, const char *track,
                               struct talas_track_plays *p)
{
    MDB_val k = str_val(track), v;
    int rc = mdb_get(txn, talas_storage_dbi(st, TALAS_DBI_TRACK_PLAYS), &k, &v);

    memset(p, 0, sizeof(*p));
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc == 0 && v.mv_size == sizeof(*p))
        memcpy(p, v.mv_data, sizeof(*p));
    return rc;
}

int talas_playback_user_sessions(struct talas_storage *st, MDB_txn *txn, const char *user, size_t limit,
                                 talas_listen_session_fn *fn, void *arg, size_t *total_r)
{
    char prefix[TALAS_PLAYBACK_ID_MAX + 2];
    size_t plen = strlen(user) + 1, count = 0;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;

    memcpy(prefix, user, plen);
    *total_r = 0;
    if ((rc = mdb_cursor_open(txn, talas_storage_dbi(st, TALAS_DBI_LISTEN_SESSIONS), &cur)) != 0)
        return rc;
    /* the last key of the prefix: the prefix with its NUL made \x01 */
    prefix[plen - 1] = '\x01';
    k.mv_size = plen;
    k.mv_data = prefix;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    rc = rc == 0 ? mdb_cursor_get(cur, &k, &v, MDB_PREV) : mdb_cursor_get(cur, &k, &v, MDB_LAST);
    prefix[plen - 1] = '\0';
    for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_PREV)) {
        struct talas_listen_session s;
        if (k.mv_size != plen + 12 || memcmp(k.mv_data, prefix, plen) != 0)
            break;
        if (v.mv_size != sizeof(s))
            continue;
        memcpy(&s, v.mv_data, sizeof(s));
        if (s.version != SESSION_VERSION)
            continue;
        s.track_id[TALAS_PLAYBACK_ID_MAX] = s.quality[31] = s.platform[31] = '\0';
        if (count++ < limit)
            fn(&s, arg);
    }
    mdb_cursor_close(cur);
    *total_r = count;
    return rc == MDB_NOTFOUND || rc == 0 ? 0 : rc;
}

/* ---------------------------------------------------------------- playlists */

int talas_playlist_add(struct talas_storage *st, const char *playlist, const char *track, int has_position,
                       uint64_t position, uint64_t *position_r, const char **reason_r)
{
    MDB_dbi dbi = talas_storage_dbi(st, TALAS_DBI_PLAYLISTS);
    MDB_val k = str_val(playlist), v;
    struct talas_buf out = {0};
    size_t count = 0, at, tlen = strlen(track) + 1;
    MDB_txn *txn;
    int rc;

    if ((rc = talas_storage_write_begin(st, &txn)) != 0)
        return rc;
    rc = mdb_get(txn, dbi, &k, &v);
    if (rc == MDB_NOTFOUND) {
        v.mv_size = 0;
        v.mv_data = (void *)"";
        rc = 0;
    }
    if (rc != 0)
        goto out;
    for (size_t i = 0; i < v.mv_size; i++)
        if (((const char *)v.mv_data)[i] == '\0')
            count++;
    if (count >= TALAS_PLAYLIST_MAX) {
        *reason_r = "the playlist is full";
        rc = 1;
        goto out;
    }
    if (has_position && position > count) {
        *reason_r = "position: past the end of the playlist";
        rc = 1;
        goto out;
    }
    at = has_position ? (size_t)position : count;
    /* the bytes before entry AT, the new entry, the rest */
    size_t off = 0;
    for (size_t i = 0; i < at; i++)
        off += strlen((const char *)v.mv_data + off) + 1;
    talas_buf_append(&out, v.mv_data, off);
    talas_buf_append(&out, track, tlen);
    talas_buf_append(&out, (const char *)v.mv_data + off, v.mv_size - off);
    v.mv_size = out.len;
    v.mv_data = out.data;
    if ((rc = mdb_put(txn, dbi, &k, &v, 0)) == 0) {
        *position_r = at;
        rc = mdb_txn_commit(txn);
        talas_buf_free(&out);
        return rc;
    }
out:
    mdb_txn_abort(txn);
    talas_buf_free(&out);
    return rc;
}

int talas_playlist_remove(struct talas_storage *st, const char *playlist, const char *track,
                          uint64_t *position_r, const char **reason_r)
{
    MDB_dbi dbi = talas_storage_dbi(st, TALAS_DBI_PLAYLISTS);
    MDB_val k = str_val(playlist), v;
    struct talas_buf out = {0};
    size_t off = 0, index = 0;
    MDB_txn *txn;
    int rc;

    if ((rc = talas_storage_write_begin(st, &txn)) != 0)
        return rc;
    if ((rc = mdb_get(txn, dbi, &k, &v)) == MDB_NOTFOUND) {
        *reason_r = "no such playlist";
        rc = 1;
        goto out;
    }
    if (rc != 0)
        goto out;
    while (off < v.mv_size) {
        const char *e = (const char *)v.mv_data + off;
        size_t n = strnlen(e, v.mv_size - off);
        if (strcmp(e, track) == 0 && n == strlen(track)) {
            talas_buf_append(&out, v.mv_data, off);
            if (off + n + 1 < v.mv_size)
                talas_buf_append(&out, e + n + 1, v.mv_size - off - n - 1);
            v.mv_size = out.len;
            v.mv_data = out.data != NULL ? out.data : (void *)"";
            if ((rc = mdb_put(txn, dbi, &k, &v, 0)) != 0)
                goto out;
            *position_r = index;
            talas_buf_free(&out);
            return mdb_txn_commit(txn);
        }
        off += n + 1;
        index++;
    }
    *reason_r = "this track is not in the playlist";
    rc = 1;
out:
    mdb_txn_abort(txn);
    talas_buf_free(&out);
    return rc;
}

int talas_playlist_get(struct talas_storage *st, MDB_txn *txn, const char *playlist,
                       talas_playlist_track_fn *fn, void *arg)
{
    MDB_val k = str_val(playlist), v;
    size_t off = 0, index = 0;
    int rc = mdb_get(txn, talas_storage_dbi(st, TALAS_DBI_PLAYLISTS), &k, &v);

    if (rc != 0)
        return rc;
    while (off < v.mv_size) {
        const char *e = (const char *)v.mv_data + off;
        size_t n = strnlen(e, v.mv_size - off);
        if (off + n == v.mv_size)
            break; /* not NUL-terminated: damaged */
        fn(e, index++, arg);
        off += n + 1;
    }
    return 0;
}

int talas_playback_foreach_state(struct talas_storage *st, MDB_txn *txn, talas_playback_state_fn *fn,
                                 void *arg)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc, op = MDB_FIRST;

    if ((rc = mdb_cursor_open(txn, talas_storage_dbi(st, TALAS_DBI_PLAYBACK), &cur)) != 0)
        return rc;
    while ((rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
        struct talas_playback_state s;
        char user[TALAS_PLAYBACK_ID_MAX + 1];

        op = MDB_NEXT;
        /* records of another size or version are skipped, as state_read
         * treats them as absent */
        if (v.mv_size != sizeof(s) || k.mv_size > TALAS_PLAYBACK_ID_MAX)
            continue;
        memcpy(&s, v.mv_data, sizeof(s));
        if (s.version != STATE_VERSION)
            continue;
        s.track_id[TALAS_PLAYBACK_ID_MAX] = s.quality[31] = s.platform[31] = '\0';
        memcpy(user, k.mv_data, k.mv_size);
        user[k.mv_size] = '\0';
        if ((rc = fn(user, &s, arg)) != 0)
            break;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}
