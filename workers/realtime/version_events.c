/*
 * version_events.c - publishes the scanner's version events as
 * TrackVersionAdded (version_events.h).
 *
 * Entry point: talas_version_events_init (worker.c). A one-second timer
 * on the loop of worker slot 0 reads the events after the last one it
 * saw (store/song_versions.h) in one read transaction and publishes each
 * to all (ws_hub.h): {"event":"TrackVersionAdded","song_id","track_id",
 * "version","explicit":false}. A worker that restarts starts after the
 * newest event: what the scanner added while no slot 0 ran is not sent.
 *
 * Logs: a storage error reading the events (once per change of error).
 */
#include <string.h>

#include "core/json.h"
#include "core/log.h"
#include "realtime/version_events.h"
#include "realtime/ws_hub.h"
#include "realtime/ws_protocol.h"
#include "store/song_versions.h"

static struct {
    const struct talas_worker_ctx *ctx;
    h2o_timeout_t second;
    h2o_timeout_entry_t entry;
    uint64_t last;
    int last_rc;
} watch;

static void publish(uint64_t seq, const char *song, const char *track, const char *label, void *arg)
{
    struct talas_buf ev = {0};
    struct talas_json json;

    (void)seq;
    (void)arg;
    talas_ws_event_begin(&json, &ev, "TrackVersionAdded");
    talas_json_key(&json, "song_id");
    talas_json_string(&json, song);
    talas_json_key(&json, "track_id");
    talas_json_string(&json, track);
    talas_json_key(&json, "version");
    talas_json_string(&json, label[0] != '\0' ? label : NULL);
    talas_json_key(&json, "explicit");
    talas_json_bool(&json, 0);
    talas_json_object_end(&json);
    talas_ws_hub_publish(TALAS_WS_TO_ALL, NULL, ev.data, ev.len);
    talas_buf_free(&ev);
}

/* Reads the events after watch.last; PUBLISH 0 only moves past them. */
static void poll_events(int do_publish)
{
    MDB_txn *txn;
    int rc;

    if ((rc = talas_storage_read_begin(watch.ctx->storage, &txn)) == 0) {
        rc = talas_version_events_after(watch.ctx->storage, txn, watch.last, do_publish ? publish : NULL, NULL,
                                        &watch.last);
        mdb_txn_abort(txn);
    }
    if (rc != 0 && rc != watch.last_rc)
        log_error("versions: reading the version events failed: %s", mdb_strerror(rc));
    watch.last_rc = rc;
}

static void on_tick(h2o_timeout_entry_t *entry)
{
    poll_events(1);
    h2o_timeout_link(watch.ctx->loop, &watch.second, entry);
}

void talas_version_events_init(const struct talas_worker_ctx *ctx)
{
    if (ctx->slot != 0)
        return;
    watch.ctx = ctx;
    poll_events(0);
    h2o_timeout_init(ctx->loop, &watch.second, 1000);
    watch.entry.cb = on_tick;
    h2o_timeout_link(ctx->loop, &watch.second, &watch.entry);
}
