/*
 * playback.c - playback state, listening sessions and per-track totals in
 * LMDB (playback.h).
 *
 * Entry points: talas_playback_play/pause/seek/stop/get,
 * talas_playback_apply (the rules of a change, shared with the cluster
 * backend, workers/state/state_playback_redis.c),
 * talas_playback_track_plays, talas_playback_track_move, talas_playback_user_sessions,
 * talas_playback_foreach_state, talas_playback_migrate, and what talasctl
 * users counts and purges: talas_playback_state_usage/purge/foreach_user,
 * talas_listen_sessions_usage/purge/foreach_user.
 *
 * Records (the record codec, core/record.h; strings are length-prefixed):
 *   TALAS_DBI_PLAYBACK        user -> u8 version (2), u8 status, str track,
 *     str quality, str platform, u64 duration_ms, u64 position_ms, u64
 *     updated_ms, u64 played_ms, u64 session_started_ms, u32 session_pid
 *   TALAS_DBI_LISTEN_SESSIONS user NUL be64 started_ms be32 pid -> u8
 *     version (2), str track, str quality, str platform, u64 started_ms,
 *     u64 ended_ms, u64 position_ms, u64 total_played_ms
 *   TALAS_DBI_TRACK_PLAYS     track -> u8 version (2), u64 plays, u64
 *     listeners, u64 total_listening_ms
 *   TALAS_DBI_TRACK_LISTENERS track NUL user -> empty
 *   TALAS_DBI_META "playback" u8 version (2): the store is migrated
 * The previous format stored the C structs of this file's "v1" section
 * as they were in memory (a u32 version 1 first; none for the totals). A
 * reader recognises them by size and version and reads them the same;
 * talas_playback_migrate rewrites them, once, in the first writer. A
 * record of any other shape is treated as absent (the state of a user
 * starts over) rather than trusted.
 *
 * Listening time accrues from the wall clock between a Play (or a Resume)
 * and the next Pause, Seek or Stop, so a session left open still counts
 * what was heard up to its last command. Logs nothing.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/record.h"
#include "store/playback.h"
#include "core/util.h"

#define RECORD_VERSION 2

static const char migrated_key[] = "playback";

/* ------------------------------------------------- v1: the previous format */

/* The structs the previous format stored raw, copied from the build that
 * wrote them: only ever read, to recognise and migrate old records. */
#define V1_VERSION 1
struct v1_state {
    uint32_t version;
    uint32_t status;
    char track_id[TALAS_PLAYBACK_ID_MAX + 1];
    char quality[32];
    char platform[32];
    uint64_t duration_ms;
    uint64_t position_ms;
    uint64_t updated_ms;
    uint64_t played_ms;
    uint64_t session_started_ms;
    uint32_t session_pid;
};
struct v1_session {
    uint32_t version;
    char track_id[TALAS_PLAYBACK_ID_MAX + 1];
    char quality[32];
    char platform[32];
    uint64_t started_ms;
    uint64_t ended_ms;
    uint64_t position_ms;
    uint64_t total_played_ms;
};
struct v1_plays {
    uint64_t plays;
    uint64_t listeners;
    uint64_t total_listening_ms;
};

static int v1_state(const MDB_val *v)
{
    uint32_t version;

    if (v->mv_size != sizeof(struct v1_state))
        return 0;
    memcpy(&version, v->mv_data, sizeof(version));
    return version == V1_VERSION;
}

static int v1_session(const MDB_val *v)
{
    uint32_t version;

    if (v->mv_size != sizeof(struct v1_session))
        return 0;
    memcpy(&version, v->mv_data, sizeof(version));
    return version == V1_VERSION;
}

static int v1_plays(const MDB_val *v)
{
    return v->mv_size == sizeof(struct v1_plays);
}

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

/* Copies at most SIZE - 1 bytes of the string S of length LEN. */
static void copy_str(char *dst, size_t size, const char *s, size_t len)
{
    if (len >= size)
        len = size - 1;
    if (len > 0)
        memcpy(dst, s, len);
    dst[len] = '\0';
}

/* A NUL-terminated copy of a fixed char array of the previous format. */
#define COPY_V1(dst, src) copy_str((dst), sizeof(dst), (src), strnlen((src), sizeof(src)))

/* -------------------------------------------------------------- records */

static void state_encode(const struct talas_playback_state *s, struct talas_buf *out)
{
    struct talas_record_writer w;

    talas_record_writer_buf(&w, out);
    talas_record_put_u8(&w, RECORD_VERSION);
    talas_record_put_u8(&w, (uint8_t)s->status);
    talas_record_put_strn(&w, s->track_id, sizeof(s->track_id));
    talas_record_put_strn(&w, s->quality, sizeof(s->quality));
    talas_record_put_strn(&w, s->platform, sizeof(s->platform));
    talas_record_put_u64(&w, s->duration_ms);
    talas_record_put_u64(&w, s->position_ms);
    talas_record_put_u64(&w, s->updated_ms);
    talas_record_put_u64(&w, s->played_ms);
    talas_record_put_u64(&w, s->session_started_ms);
    talas_record_put_u32(&w, s->session_pid);
}

/* Decodes a state record of either format into S: 0, or -1 (S zeroed)
 * when it is neither. */
static int state_decode(const MDB_val *v, struct talas_playback_state *s)
{
    struct talas_record_reader r;
    const char *track, *quality, *platform;
    size_t tn = 0, qn = 0, pn = 0;

    memset(s, 0, sizeof(*s));
    if (v1_state(v)) {
        struct v1_state old;
        memcpy(&old, v->mv_data, sizeof(old));
        s->status = old.status;
        COPY_V1(s->track_id, old.track_id);
        COPY_V1(s->quality, old.quality);
        COPY_V1(s->platform, old.platform);
        s->duration_ms = old.duration_ms;
        s->position_ms = old.position_ms;
        s->updated_ms = old.updated_ms;
        s->played_ms = old.played_ms;
        s->session_started_ms = old.session_started_ms;
        s->session_pid = old.session_pid;
        return 0;
    }
    talas_record_reader_init(&r, v->mv_data, v->mv_size);
    if (talas_record_get_u8(&r) != RECORD_VERSION)
        return -1;
    s->status = talas_record_get_u8(&r);
    track = talas_record_get_str(&r, &tn);
    quality = talas_record_get_str(&r, &qn);
    platform = talas_record_get_str(&r, &pn);
    s->duration_ms = talas_record_get_u64(&r);
    s->position_ms = talas_record_get_u64(&r);
    s->updated_ms = talas_record_get_u64(&r);
    s->played_ms = talas_record_get_u64(&r);
    s->session_started_ms = talas_record_get_u64(&r);
    s->session_pid = talas_record_get_u32(&r);
    if (talas_record_reader_end(&r) != 0 || s->status > TALAS_PLAYBACK_PAUSED) {
        memset(s, 0, sizeof(*s));
        return -1;
    }
    copy_str(s->track_id, sizeof(s->track_id), track, tn);
    copy_str(s->quality, sizeof(s->quality), quality, qn);
    copy_str(s->platform, sizeof(s->platform), platform, pn);
    return 0;
}

static void session_encode(const struct talas_listen_session *s, struct talas_buf *out)
{
    struct talas_record_writer w;

    talas_record_writer_buf(&w, out);
    talas_record_put_u8(&w, RECORD_VERSION);
    talas_record_put_strn(&w, s->track_id, sizeof(s->track_id));
    talas_record_put_strn(&w, s->quality, sizeof(s->quality));
    talas_record_put_strn(&w, s->platform, sizeof(s->platform));
    talas_record_put_u64(&w, s->started_ms);
    talas_record_put_u64(&w, s->ended_ms);
    talas_record_put_u64(&w, s->position_ms);
    talas_record_put_u64(&w, s->total_played_ms);
}

static int session_decode(const MDB_val *v, struct talas_listen_session *s)
{
    struct talas_record_reader r;
    const char *track, *quality, *platform;
    size_t tn = 0, qn = 0, pn = 0;

    memset(s, 0, sizeof(*s));
    if (v1_session(v)) {
        struct v1_session old;
        memcpy(&old, v->mv_data, sizeof(old));
        COPY_V1(s->track_id, old.track_id);
        COPY_V1(s->quality, old.quality);
        COPY_V1(s->platform, old.platform);
        s->started_ms = old.started_ms;
        s->ended_ms = old.ended_ms;
        s->position_ms = old.position_ms;
        s->total_played_ms = old.total_played_ms;
        return 0;
    }
    talas_record_reader_init(&r, v->mv_data, v->mv_size);
    if (talas_record_get_u8(&r) != RECORD_VERSION)
        return -1;
    track = talas_record_get_str(&r, &tn);
    quality = talas_record_get_str(&r, &qn);
    platform = talas_record_get_str(&r, &pn);
    s->started_ms = talas_record_get_u64(&r);
    s->ended_ms = talas_record_get_u64(&r);
    s->position_ms = talas_record_get_u64(&r);
    s->total_played_ms = talas_record_get_u64(&r);
    if (talas_record_reader_end(&r) != 0) {
        memset(s, 0, sizeof(*s));
        return -1;
    }
    copy_str(s->track_id, sizeof(s->track_id), track, tn);
    copy_str(s->quality, sizeof(s->quality), quality, qn);
    copy_str(s->platform, sizeof(s->platform), platform, pn);
    return 0;
}

static void plays_encode(const struct talas_track_plays *p, struct talas_buf *out)
{
    struct talas_record_writer w;

    talas_record_writer_buf(&w, out);
    talas_record_put_u8(&w, RECORD_VERSION);
    talas_record_put_u64(&w, p->plays);
    talas_record_put_u64(&w, p->listeners);
    talas_record_put_u64(&w, p->total_listening_ms);
}

static int plays_decode(const MDB_val *v, struct talas_track_plays *p)
{
    struct talas_record_reader r;

    memset(p, 0, sizeof(*p));
    if (v1_plays(v)) {
        struct v1_plays old;
        memcpy(&old, v->mv_data, sizeof(old));
        p->plays = old.plays;
        p->listeners = old.listeners;
        p->total_listening_ms = old.total_listening_ms;
        return 0;
    }
    talas_record_reader_init(&r, v->mv_data, v->mv_size);
    if (talas_record_get_u8(&r) != RECORD_VERSION)
        return -1;
    p->plays = talas_record_get_u64(&r);
    p->listeners = talas_record_get_u64(&r);
    p->total_listening_ms = talas_record_get_u64(&r);
    if (talas_record_reader_end(&r) != 0) {
        memset(p, 0, sizeof(*p));
        return -1;
    }
    return 0;
}

/* Puts the bytes of OUT under K. */
static int put_buf(MDB_txn *txn, MDB_dbi dbi, MDB_val *k, const struct talas_buf *out)
{
    MDB_val v = {out->len, out->data};

    return mdb_put(txn, dbi, k, &v, 0);
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
    state_decode(&v, s); /* another shape reads as no state */
    return 0;
}

static int state_write(struct talas_storage *st, MDB_txn *txn, const char *user,
                       struct talas_playback_state *s)
{
    MDB_val k = str_val(user);
    struct talas_buf out = {0};
    int rc;

    state_encode(s, &out);
    rc = put_buf(txn, talas_storage_dbi(st, TALAS_DBI_PLAYBACK), &k, &out);
    talas_buf_free(&out);
    return rc;
}

/* user + NUL + started (be64) + pid (be32), in BUF of SIZE bytes (room
 * for the longest id). */
static size_t session_key(char *buf, size_t size, const char *user, uint64_t started_ms, uint32_t pid)
{
    struct talas_record_writer w;

    talas_record_writer_mem(&w, buf, size);
    talas_record_put_bytes(&w, user, strlen(user) + 1);
    talas_record_put_u64be(&w, started_ms);
    talas_record_put_u32be(&w, pid);
    return w.len;
}

/* Writes the session of state S (ENDED_MS 0: still open). */
static int session_write(struct talas_storage *st, MDB_txn *txn, const char *user,
                         const struct talas_playback_state *s, uint64_t ended_ms)
{
    char key[TALAS_PLAYBACK_ID_MAX + 16];
    struct talas_listen_session rec;
    struct talas_buf out = {0};
    MDB_val k;
    int rc;

    memset(&rec, 0, sizeof(rec));
    memcpy(rec.track_id, s->track_id, sizeof(rec.track_id));
    memcpy(rec.quality, s->quality, sizeof(rec.quality));
    memcpy(rec.platform, s->platform, sizeof(rec.platform));
    rec.started_ms = s->session_started_ms;
    rec.ended_ms = ended_ms;
    rec.position_ms = s->position_ms;
    rec.total_played_ms = s->played_ms;
    k.mv_data = key;
    k.mv_size = session_key(key, sizeof(key), user, s->session_started_ms, s->session_pid);
    session_encode(&rec, &out);
    rc = put_buf(txn, talas_storage_dbi(st, TALAS_DBI_LISTEN_SESSIONS), &k, &out);
    talas_buf_free(&out);
    return rc;
}

static int plays_update(struct talas_storage *st, MDB_txn *txn, const char *track, uint64_t plays,
                        uint64_t listen_ms, const char *new_listener)
{
    MDB_dbi dbi = talas_storage_dbi(st, TALAS_DBI_TRACK_PLAYS);
    struct talas_track_plays p;
    struct talas_buf out = {0};
    MDB_val k = str_val(track), v;
    int rc;

    memset(&p, 0, sizeof(p));
    rc = mdb_get(txn, dbi, &k, &v);
    if (rc == 0)
        plays_decode(&v, &p); /* another shape starts again from zero */
    else if (rc != MDB_NOTFOUND)
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
    plays_encode(&p, &out);
    rc = put_buf(txn, dbi, &k, &out);
    talas_buf_free(&out);
    return rc;
}

int talas_playback_track_move(struct talas_storage *st, MDB_txn *txn, const char *from, const char *to)
{
    MDB_dbi plays = talas_storage_dbi(st, TALAS_DBI_TRACK_PLAYS);
    MDB_dbi listeners = talas_storage_dbi(st, TALAS_DBI_TRACK_LISTENERS);
    size_t fn = strlen(from), tn = strlen(to);
    struct talas_track_plays p;
    struct talas_buf keys = {0};
    struct talas_record_reader r;
    MDB_val k = str_val(from), v;
    char prefix[TALAS_PLAYBACK_ID_MAX + 2];
    size_t n = 0;
    int rc;

    if (fn > TALAS_PLAYBACK_ID_MAX || tn > TALAS_PLAYBACK_ID_MAX)
        return EINVAL;
    memset(&p, 0, sizeof(p));
    rc = mdb_get(txn, plays, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    plays_decode(&v, &p); /* another shape moves as zeros */
    if ((rc = mdb_del(txn, plays, &k, NULL)) != 0)
        return rc;
    /* the listeners: FROM NUL USER becomes TO NUL USER; plays_update
     * counts the ones TO did not have */
    memcpy(prefix, from, fn);
    prefix[fn] = '\0';
    if ((rc = talas_storage_prefix_keys(txn, listeners, prefix, fn + 1, SIZE_MAX, &keys, &n)) != 0)
        goto out;
    talas_record_reader_init(&r, keys.data, keys.len);
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        const char *key = talas_record_get_blob(&r, &len);
        char user[TALAS_PLAYBACK_ID_MAX + 1];
        MDB_val lk = {len, (void *)key};

        if (key == NULL || len <= fn + 1 || len - fn - 1 > TALAS_PLAYBACK_ID_MAX)
            continue;
        memcpy(user, key + fn + 1, len - fn - 1);
        user[len - fn - 1] = '\0';
        if ((rc = mdb_del(txn, listeners, &lk, NULL)) != 0 ||
            (rc = plays_update(st, txn, to, 0, 0, user)) != 0)
            goto out;
    }
    rc = plays_update(st, txn, to, p.plays, p.total_listening_ms, NULL);
    /* listeners recorded before there was a listener index still count */
    if (rc == 0 && p.listeners > n) {
        struct talas_track_plays q;
        struct talas_buf out = {0};
        MDB_val tk = str_val(to);
        if ((rc = mdb_get(txn, plays, &tk, &v)) == 0) {
            plays_decode(&v, &q);
            q.listeners += p.listeners - n;
            plays_encode(&q, &out);
            rc = put_buf(txn, plays, &tk, &out);
            talas_buf_free(&out);
        }
    }
out:
    talas_buf_free(&keys);
    return rc;
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

int talas_playback_apply(struct talas_playback_state *s, const struct talas_playback_command *cmd,
                         struct talas_playback_result *r, struct talas_playback_effects *fx,
                         const char **reason_r)
{
    uint64_t now = cmd->now_ms, d;

    memset(r, 0, sizeof(*r));
    memset(fx, 0, sizeof(*fx));
    if (cmd->verb == TALAS_PLAYBACK_DO_PLAY) {
        if (cmd->has_position && cmd->duration_ms > 0 && cmd->position_ms > cmd->duration_ms) {
            *reason_r = "start_position_ms: past the end of the track";
            return 1;
        }
        if (s->status == TALAS_PLAYBACK_PAUSED && strcmp(s->track_id, cmd->track) == 0) {
            accrue(s, now);
            if (cmd->has_position)
                s->position_ms = cmd->position_ms;
            s->status = TALAS_PLAYBACK_PLAYING;
            r->resumed = 1;
            r->position_ms = s->position_ms;
            fx->session[fx->count++].state = *s;
            return 0;
        }
        if (s->status != TALAS_PLAYBACK_STOPPED) {
            /* another track (or the same one again): its session ends here */
            d = accrue(s, now);
            r->stopped_previous = 1;
            copy_id(r->previous_track, sizeof(r->previous_track), s->track_id);
            r->previous_played_ms = s->played_ms;
            fx->session[fx->count].state = *s;
            fx->session[fx->count].ended_ms = now;
            fx->session[fx->count++].listened_ms = d;
        }
        memset(s, 0, sizeof(*s));
        s->status = TALAS_PLAYBACK_PLAYING;
        copy_id(s->track_id, sizeof(s->track_id), cmd->track);
        copy_id(s->quality, sizeof(s->quality), cmd->quality);
        copy_id(s->platform, sizeof(s->platform), cmd->platform);
        s->duration_ms = cmd->duration_ms;
        s->position_ms = cmd->has_position ? cmd->position_ms : 0;
        s->updated_ms = s->session_started_ms = now;
        s->session_pid = (uint32_t)getpid();
        r->position_ms = s->position_ms;
        fx->session[fx->count].state = *s;
        fx->session[fx->count++].new_play = 1;
        return 0;
    }
    /* Pause, Seek, Stop: the state must be on the track (and playing, to
     * pause) */
    if (s->status == TALAS_PLAYBACK_STOPPED || strcmp(s->track_id, cmd->track) != 0) {
        *reason_r = "this track is not playing: send Play first";
        return 1;
    }
    if (cmd->verb == TALAS_PLAYBACK_DO_PAUSE && s->status != TALAS_PLAYBACK_PLAYING) {
        *reason_r = "this track is already paused";
        return 1;
    }
    if (cmd->verb == TALAS_PLAYBACK_DO_SEEK && s->duration_ms > 0 && cmd->position_ms > s->duration_ms) {
        *reason_r = "position_ms: past the end of the track";
        return 1;
    }
    d = accrue(s, now);
    if (cmd->verb == TALAS_PLAYBACK_DO_PAUSE)
        s->status = TALAS_PLAYBACK_PAUSED;
    else if (cmd->verb == TALAS_PLAYBACK_DO_SEEK)
        s->position_ms = cmd->position_ms;
    r->position_ms = s->position_ms;
    r->total_played_ms = cmd->verb == TALAS_PLAYBACK_DO_STOP ? s->played_ms : 0;
    fx->session[fx->count].state = *s;
    fx->session[fx->count].ended_ms = cmd->verb == TALAS_PLAYBACK_DO_STOP ? now : 0;
    fx->session[fx->count++].listened_ms = d;
    if (cmd->verb == TALAS_PLAYBACK_DO_STOP)
        s->status = TALAS_PLAYBACK_STOPPED;
    return 0;
}

/* One change in one write transaction: the state read, CMD applied, the
 * sessions and totals it touched written, the state written. */
static int change(struct talas_storage *st, const char *user, const struct talas_playback_command *cmd,
                  struct talas_playback_result *r, const char **reason_r)
{
    struct talas_playback_effects fx;
    struct talas_playback_state s;
    MDB_txn *txn;
    int rc;

    memset(r, 0, sizeof(*r));
    /* refused before any transaction, as before */
    if (cmd->verb == TALAS_PLAYBACK_DO_PLAY && cmd->has_position && cmd->duration_ms > 0 &&
        cmd->position_ms > cmd->duration_ms) {
        *reason_r = "start_position_ms: past the end of the track";
        return 1;
    }
    /* the first change of a process migrates an old store (once) */
    if ((rc = talas_playback_migrate(st, NULL)) != 0)
        return rc;
    if ((rc = talas_storage_write_begin(st, &txn)) != 0)
        return rc;
    if ((rc = state_read(st, txn, user, &s)) != 0 ||
        (rc = talas_playback_apply(&s, cmd, r, &fx, reason_r)) != 0)
        goto fail;
    for (size_t i = 0; i < fx.count; i++) {
        const struct talas_playback_session_write *w = &fx.session[i];
        if ((w->listened_ms > 0 || w->new_play) &&
            (rc = plays_update(st, txn, w->state.track_id, (uint64_t)w->new_play, w->listened_ms,
                               w->new_play ? user : NULL)) != 0)
            goto fail;
        if ((rc = session_write(st, txn, user, &w->state, w->ended_ms)) != 0)
            goto fail;
    }
    if ((rc = state_write(st, txn, user, &s)) != 0)
        goto fail;
    return mdb_txn_commit(txn);
fail:
    mdb_txn_abort(txn);
    return rc;
}

int talas_playback_play(struct talas_storage *st, const char *user, const char *track, uint64_t duration_ms,
                        int has_start, uint64_t start_ms, const char *quality, const char *platform,
                        uint64_t now_ms, struct talas_playback_result *r, const char **reason_r)
{
    struct talas_playback_command cmd = {TALAS_PLAYBACK_DO_PLAY, track,    duration_ms, has_start,
                                         start_ms,               quality,  platform,    now_ms};

    return change(st, user, &cmd, r, reason_r);
}

int talas_playback_pause(struct talas_storage *st, const char *user, const char *track, uint64_t now_ms,
                         struct talas_playback_result *r, const char **reason_r)
{
    struct talas_playback_command cmd = {TALAS_PLAYBACK_DO_PAUSE, track, 0, 0, 0, "", "", now_ms};

    return change(st, user, &cmd, r, reason_r);
}

int talas_playback_seek(struct talas_storage *st, const char *user, const char *track, uint64_t position_ms,
                        uint64_t now_ms, struct talas_playback_result *r, const char **reason_r)
{
    struct talas_playback_command cmd = {TALAS_PLAYBACK_DO_SEEK, track, 0, 1, position_ms, "", "", now_ms};

    return change(st, user, &cmd, r, reason_r);
}

int talas_playback_stop(struct talas_storage *st, const char *user, const char *track, uint64_t now_ms,
                        struct talas_playback_result *r, const char **reason_r)
{
    struct talas_playback_command cmd = {TALAS_PLAYBACK_DO_STOP, track, 0, 0, 0, "", "", now_ms};

    return change(st, user, &cmd, r, reason_r);
}

void talas_playback_accrue(struct talas_playback_state *s, uint64_t now_ms)
{
    accrue(s, now_ms);
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
    if (rc == 0)
        plays_decode(&v, p);
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
        if (session_decode(&v, &s) != 0)
            continue;
        if (count++ < limit)
            fn(&s, arg);
    }
    mdb_cursor_close(cur);
    *total_r = count;
    return rc == MDB_NOTFOUND || rc == 0 ? 0 : rc;
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
        /* records of another shape are skipped, as state_read treats
         * them as absent */
        if (k.mv_size > TALAS_PLAYBACK_ID_MAX || state_decode(&v, &s) != 0)
            continue;
        memcpy(user, k.mv_data, k.mv_size);
        user[k.mv_size] = '\0';
        if ((rc = fn(user, &s, arg)) != 0)
            break;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* ------------------------------------------------- one user's records */

/* A user's records in the database WHICH: the key USER itself (EXACT, the
 * playback state) or every key that begins with USER NUL (the listening
 * sessions). */
static int user_usage(struct talas_storage *st, MDB_txn *txn, enum talas_dbi which, int exact,
                      const char *user, uint64_t *count_r, uint64_t *bytes_r)
{
    size_t plen = strlen(user) + (exact ? 0 : 1);
    MDB_cursor *cur;
    MDB_val k = {plen, (void *)user}, v;
    int rc;

    *count_r = *bytes_r = 0;
    if (exact) {
        rc = mdb_get(txn, talas_storage_dbi(st, which), &k, &v);
        if (rc == 0) {
            *count_r = 1;
            *bytes_r = k.mv_size + v.mv_size;
        }
        return rc == MDB_NOTFOUND ? 0 : rc;
    }
    if ((rc = mdb_cursor_open(txn, talas_storage_dbi(st, which), &cur)) != 0)
        return rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < plen || memcmp(k.mv_data, user, plen) != 0)
            break;
        (*count_r)++;
        *bytes_r += k.mv_size + v.mv_size;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Removes up to BATCH of those records in one write transaction; *done_r
 * when none is left. */
static int user_purge_batch(struct talas_storage *st, enum talas_dbi which, int exact, const char *user,
                            size_t batch, uint64_t *removed, int *done_r)
{
    MDB_dbi dbi = talas_storage_dbi(st, which);
    size_t plen = strlen(user) + (exact ? 0 : 1), n = 0;
    uint64_t gone = 0; /* counted once committed */
    struct talas_record_reader r;
    struct talas_buf keys = {0};
    MDB_val k = {plen, (void *)user};
    MDB_txn *txn;
    int rc;

    *done_r = 1;
    if ((rc = talas_storage_write_begin(st, &txn)) != 0)
        return rc;
    if (exact) {
        rc = mdb_del(txn, dbi, &k, NULL);
        if (rc == MDB_NOTFOUND) {
            mdb_txn_abort(txn);
            return 0;
        }
        if (rc != 0) {
            mdb_txn_abort(txn);
            return rc;
        }
        if ((rc = mdb_txn_commit(txn)) == 0)
            (*removed)++;
        return rc;
    }
    /* the keys first: no delete under an open cursor */
    if ((rc = talas_storage_prefix_keys(txn, dbi, user, plen, batch, &keys, &n)) != 0)
        goto fail;
    talas_record_reader_init(&r, keys.data, keys.len);
    while (r.left > 0) {
        k.mv_data = (void *)talas_record_get_blob(&r, &k.mv_size);
        if (talas_record_reader_ok(&r) != 0) {
            rc = EINVAL; /* our own list: cannot happen */
            goto fail;
        }
        if ((rc = mdb_del(txn, dbi, &k, NULL)) != 0)
            goto fail;
        gone++;
    }
    talas_buf_free(&keys);
    if ((rc = mdb_txn_commit(txn)) != 0)
        return rc;
    *removed += gone;
    *done_r = n < batch;
    return 0;
fail:
    talas_buf_free(&keys);
    mdb_txn_abort(txn);
    return rc;
}

static int user_purge(struct talas_storage *st, enum talas_dbi which, int exact, const char *user,
                      size_t batch, uint64_t *removed_r)
{
    uint64_t removed = 0;
    int rc = 0, done = 0;

    while (!done &&
           (rc = user_purge_batch(st, which, exact, user, batch ? batch : 256, &removed, &done)) == 0)
        ;
    if (removed_r != NULL)
        *removed_r = removed;
    return rc;
}

/* Calls FN once per user of WHICH: each key (EXACT), or each distinct part
 * before the NUL. */
static int user_foreach(struct talas_storage *st, MDB_txn *txn, enum talas_dbi which, int exact,
                        talas_playback_user_fn *fn, void *arg)
{
    char user[TALAS_PLAYBACK_ID_MAX + 2];
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;

    if ((rc = mdb_cursor_open(txn, talas_storage_dbi(st, which), &cur)) != 0)
        return rc;
    rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (rc == 0) {
        const char *nul = exact ? NULL : memchr(k.mv_data, '\0', k.mv_size);
        size_t un = nul != NULL ? (size_t)(nul - (const char *)k.mv_data) : k.mv_size;

        if (un == 0 || un > TALAS_PLAYBACK_ID_MAX || (!exact && nul == NULL)) {
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT); /* not a user's key */
            continue;
        }
        memcpy(user, k.mv_data, un);
        user[un] = '\0';
        if ((rc = fn(user, arg)) != 0)
            break;
        if (exact) {
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
            continue;
        }
        /* past this user's keys: USER \x01 sorts after USER \0 ... */
        user[un] = '\x01';
        k.mv_size = un + 1;
        k.mv_data = user;
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int talas_playback_state_usage(struct talas_storage *st, MDB_txn *txn, const char *user, uint64_t *count_r,
                               uint64_t *bytes_r)
{
    return user_usage(st, txn, TALAS_DBI_PLAYBACK, 1, user, count_r, bytes_r);
}

int talas_playback_state_purge(struct talas_storage *st, const char *user, size_t batch, uint64_t *removed_r)
{
    return user_purge(st, TALAS_DBI_PLAYBACK, 1, user, batch, removed_r);
}

int talas_playback_state_foreach_user(struct talas_storage *st, MDB_txn *txn, talas_playback_user_fn *fn,
                                      void *arg)
{
    return user_foreach(st, txn, TALAS_DBI_PLAYBACK, 1, fn, arg);
}

int talas_listen_sessions_usage(struct talas_storage *st, MDB_txn *txn, const char *user, uint64_t *count_r,
                                uint64_t *bytes_r)
{
    return user_usage(st, txn, TALAS_DBI_LISTEN_SESSIONS, 0, user, count_r, bytes_r);
}

int talas_listen_sessions_purge(struct talas_storage *st, const char *user, size_t batch, uint64_t *removed_r)
{
    return user_purge(st, TALAS_DBI_LISTEN_SESSIONS, 0, user, batch, removed_r);
}

int talas_listen_sessions_foreach_user(struct talas_storage *st, MDB_txn *txn, talas_playback_user_fn *fn,
                                       void *arg)
{
    return user_foreach(st, txn, TALAS_DBI_LISTEN_SESSIONS, 0, fn, arg);
}

/* ------------------------------------------------------------- migration */

/* Appends to LIST, for each record of DBI (which is WHICH) in the previous
 * format, its key and its new encoding, each as a blob. */
static int migrate_collect(MDB_txn *txn, MDB_dbi dbi, enum talas_dbi which, struct talas_buf *list,
                           size_t *count)
{
    struct talas_record_writer w;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;

    talas_record_writer_buf(&w, list);
    if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0)
        return rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        struct talas_buf rec = {0};

        if (which == TALAS_DBI_PLAYBACK && v1_state(&v)) {
            struct talas_playback_state s;
            state_decode(&v, &s);
            state_encode(&s, &rec);
        } else if (which == TALAS_DBI_LISTEN_SESSIONS && v1_session(&v)) {
            struct talas_listen_session s;
            session_decode(&v, &s);
            session_encode(&s, &rec);
        } else if (which == TALAS_DBI_TRACK_PLAYS && v1_plays(&v)) {
            struct talas_track_plays p;
            plays_decode(&v, &p);
            plays_encode(&p, &rec);
        } else {
            continue;
        }
        talas_record_put_blob(&w, k.mv_data, k.mv_size);
        talas_record_put_blob(&w, rec.data, rec.len);
        talas_buf_free(&rec);
        (*count)++;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Puts the key/record pairs of LIST (the cursor is closed by then: no
 * put under an open cursor). */
static int migrate_put(MDB_txn *txn, MDB_dbi dbi, const struct talas_buf *list)
{
    struct talas_record_reader r;
    int rc;

    talas_record_reader_init(&r, list->data, list->len);
    while (r.left > 0) {
        MDB_val k, v;
        k.mv_data = (void *)talas_record_get_blob(&r, &k.mv_size);
        v.mv_data = (void *)talas_record_get_blob(&r, &v.mv_size);
        if (talas_record_reader_ok(&r) != 0)
            return EINVAL; /* our own list: cannot happen */
        if ((rc = mdb_put(txn, dbi, &k, &v, 0)) != 0)
            return rc;
    }
    return 0;
}

/* 1 when the META marker says the store is in the current format. */
static int migrated(struct talas_storage *st, MDB_txn *txn)
{
    MDB_val k = {sizeof(migrated_key) - 1, (void *)migrated_key}, v;
    struct talas_record_reader r;
    uint8_t version;

    if (mdb_get(txn, talas_storage_dbi(st, TALAS_DBI_META), &k, &v) != 0)
        return 0;
    talas_record_reader_init(&r, v.mv_data, v.mv_size);
    version = talas_record_get_u8(&r);
    return talas_record_reader_ok(&r) == 0 && version >= RECORD_VERSION;
}

int talas_playback_migrate(struct talas_storage *st, size_t *migrated_r)
{
    static const enum talas_dbi dbis[] = {TALAS_DBI_PLAYBACK, TALAS_DBI_LISTEN_SESSIONS,
                                          TALAS_DBI_TRACK_PLAYS};
    MDB_val k = {sizeof(migrated_key) - 1, (void *)migrated_key}, v;
    unsigned char marker = RECORD_VERSION;
    size_t count = 0;
    MDB_txn *txn;
    int rc, done;

    if (migrated_r != NULL)
        *migrated_r = 0;
    /* the common case, a store already migrated: one look-up in a read
     * transaction, without the writer lock (no per-process flag: a
     * process may open another store, and tests do) */
    if ((rc = talas_storage_read_begin(st, &txn)) != 0)
        return rc;
    done = migrated(st, txn);
    mdb_txn_abort(txn);
    if (done)
        return 0;

    /* the records are small and few (a state per user, a session per
     * listen): one transaction, once per store */
    if ((rc = talas_storage_write_begin(st, &txn)) != 0)
        return rc;
    if (!migrated(st, txn)) {
        for (size_t i = 0; i < TALAS_ARRAY_SIZE(dbis); i++) {
            MDB_dbi dbi = talas_storage_dbi(st, dbis[i]);
            struct talas_buf list = {0};
            rc = migrate_collect(txn, dbi, dbis[i], &list, &count);
            if (rc == 0)
                rc = migrate_put(txn, dbi, &list);
            talas_buf_free(&list);
            if (rc != 0)
                goto fail;
        }
        v.mv_size = 1;
        v.mv_data = &marker;
        if ((rc = mdb_put(txn, talas_storage_dbi(st, TALAS_DBI_META), &k, &v, 0)) != 0)
            goto fail;
    }
    if ((rc = mdb_txn_commit(txn)) != 0)
        return rc;
    if (migrated_r != NULL)
        *migrated_r = count;
    return 0;

fail:
    mdb_txn_abort(txn);
    return rc;
}
