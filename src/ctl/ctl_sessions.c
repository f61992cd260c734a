/*
 * ctl_sessions.c - talasctl sessions: the streaming sessions
 * (store/sessions.h: /api/streaming/session) and the listening sessions
 * (store/playback.h: users playing or paused on /api/ws), read from the
 * storage, with the streaming sessions' running totals.
 *
 * Entry point (talasctl.h): talasctl_cmd_sessions. Tab-separated lines or
 * one JSON document on stdout.
 */
#include <inttypes.h>
#include <stdio.h>

#include "core/json.h"
#include "ctl/talasctl.h"
#include "store/playback.h"
#include "store/sessions.h"
#include "store/storage.h"

struct sessions_state {
    const struct talas_config *conf;
    uint64_t now_ms;
    struct talas_json json;
    size_t count;
};

static int each_stream_session(const struct talas_session *ss, void *arg)
{
    struct sessions_state *st = arg;
    int expired = talas_session_expired(ss, st->now_ms, st->conf->streaming_session_timeout_ms);
    uint64_t age = st->now_ms > ss->created_at_ms ? st->now_ms - ss->created_at_ms : 0;

    st->count++;
    if (!talasctl_json) {
        printf("%s\t%s\t%s\t%s\t%" PRIu64 " s%s\n", ss->session_id, ss->track_id,
               ss->client_id[0] ? ss->client_id : "-", ss->current_quality, age / 1000,
               expired ? "\texpired" : "");
        return 0;
    }
    talas_json_object_begin(&st->json);
    talas_json_key(&st->json, "session_id");
    talas_json_string(&st->json, ss->session_id);
    talas_json_key(&st->json, "track_id");
    talas_json_string(&st->json, ss->track_id);
    talas_json_key(&st->json, "client_id");
    talas_json_string(&st->json, ss->client_id);
    talas_json_key(&st->json, "quality");
    talas_json_string(&st->json, ss->current_quality);
    talas_json_key(&st->json, "created_at_ms");
    talas_json_uint(&st->json, ss->created_at_ms);
    talas_json_key(&st->json, "last_updated_ms");
    talas_json_uint(&st->json, ss->last_updated_ms);
    talas_json_key(&st->json, "expired");
    talas_json_bool(&st->json, expired);
    talas_json_key(&st->json, "buffer_health_percentage");
    talas_json_double(&st->json, ss->performance_metrics.buffer_health_percentage);
    talas_json_key(&st->json, "rebuffer_count");
    talas_json_uint(&st->json, ss->performance_metrics.rebuffer_count);
    talas_json_key(&st->json, "quality_switches");
    talas_json_uint(&st->json, ss->performance_metrics.quality_switches);
    talas_json_object_end(&st->json);
    return 0;
}

static int each_listener(const char *user, const struct talas_playback_state *ps, void *arg)
{
    static const char *const statuses[] = {"stopped", "playing", "paused"};
    struct sessions_state *st = arg;
    const char *status = ps->status < 3 ? statuses[ps->status] : "unknown";
    uint64_t position = ps->position_ms;

    if (ps->status == TALAS_PLAYBACK_STOPPED)
        return 0;
    if (ps->status == TALAS_PLAYBACK_PLAYING && st->now_ms > ps->updated_ms)
        position += st->now_ms - ps->updated_ms;
    if (ps->duration_ms > 0 && position > ps->duration_ms)
        position = ps->duration_ms;
    st->count++;
    if (!talasctl_json) {
        printf("%s\t%s\t%s\t%" PRIu64 ":%02" PRIu64 "\t%s\t%s\n", user, ps->track_id, status,
               position / 60000, (position / 1000) % 60, ps->quality[0] ? ps->quality : "-",
               ps->platform[0] ? ps->platform : "-");
        return 0;
    }
    talas_json_object_begin(&st->json);
    talas_json_key(&st->json, "user_id");
    talas_json_string(&st->json, user);
    talas_json_key(&st->json, "track_id");
    talas_json_string(&st->json, ps->track_id);
    talas_json_key(&st->json, "status");
    talas_json_string(&st->json, status);
    talas_json_key(&st->json, "position_ms");
    talas_json_uint(&st->json, position);
    talas_json_key(&st->json, "quality");
    talas_json_string(&st->json, ps->quality);
    talas_json_key(&st->json, "platform");
    talas_json_string(&st->json, ps->platform);
    talas_json_key(&st->json, "started_at_ms");
    talas_json_uint(&st->json, ps->session_started_ms);
    talas_json_object_end(&st->json);
    return 0;
}

/* The streaming sessions (sessions.c: /api/streaming/session) and the
 * listening sessions (playback.c: users playing or paused on /api/ws). */
int talasctl_cmd_sessions(const struct talas_config *conf)
{
    struct talas_storage *st = talasctl_open_storage(conf);
    struct sessions_state ss = {conf, talas_wall_ms(), {0}, 0};
    struct talas_session_counters counters = {0};
    struct talas_buf out = {0};
    MDB_txn *txn;
    int rc;

    if ((rc = talas_storage_read_begin(st, &txn)) != 0) {
        fprintf(stderr, "talasctl: mdb_txn_begin() failed: %s\n", mdb_strerror(rc));
        talas_storage_close(st);
        return TALASCTL_FAILURE;
    }
    talas_json_init(&ss.json, &out);
    talas_json_object_begin(&ss.json);
    talas_json_key(&ss.json, "streaming");
    talas_json_array_begin(&ss.json);
    if (!talasctl_json)
        printf("streaming sessions (session, track, client, quality, age):\n");
    if ((rc = talas_session_foreach(st, txn, each_stream_session, &ss)) == 0) {
        talas_json_array_end(&ss.json);
        if (!talasctl_json)
            printf("%zu streaming session(s)\nlistening sessions (user, track, status, position, quality, "
                   "platform):\n",
                   ss.count);
        ss.count = 0;
        talas_json_key(&ss.json, "listening");
        talas_json_array_begin(&ss.json);
        rc = talas_playback_foreach_state(st, txn, each_listener, &ss);
        talas_json_array_end(&ss.json);
    }
    if (rc == 0)
        rc = talas_session_counters_get(st, txn, &counters);
    mdb_txn_abort(txn);
    talas_storage_close(st);
    if (rc != 0) {
        fprintf(stderr, "talasctl: reading the sessions failed: %s\n", mdb_strerror(rc));
        talas_buf_free(&out);
        return TALASCTL_FAILURE;
    }
    if (talasctl_json) {
        talas_json_key(&ss.json, "streaming_totals");
        talas_json_object_begin(&ss.json);
        talas_json_key(&ss.json, "created");
        talas_json_uint(&ss.json, counters.created);
        talas_json_key(&ss.json, "ended");
        talas_json_uint(&ss.json, counters.ended);
        talas_json_key(&ss.json, "expired");
        talas_json_uint(&ss.json, counters.expired);
        talas_json_object_end(&ss.json);
        talas_json_object_end(&ss.json);
        printf("%.*s\n", (int)out.len, out.data);
    } else {
        printf("%zu listening session(s)\n", ss.count);
        printf("streaming sessions since the storage was created: %" PRIu64 " created, %" PRIu64
               " ended, %" PRIu64 " expired\n",
               counters.created, counters.ended, counters.expired);
    }
    talas_buf_free(&out);
    return TALASCTL_OK;
}
