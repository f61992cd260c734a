/*
 * subsonic_queue.c - the Subsonic API's play queue and now playing
 * (subsonic_queue.h).
 *
 * Entry point: talas_subsonic_queue_method (http_subsonic.c, once the
 * request is authenticated).
 *
 *   savePlayQueue  id (songs, repeatable, in order; none clears the
 *                  queue), current (one of them), position (ms in it);
 *                  the client name "c" is kept as changedBy. At most
 *                  TALAS_PLAY_QUEUE_MAX songs (store/play_queue.h): more
 *                  is error 0, nothing saved;
 *   getPlayQueue   the user's own queue (playQueue, entries in order;
 *                  songs gone from the catalog left out), or an empty
 *                  answer when none was saved;
 *   getNowPlaying  what is playing now, by whom (state_playback.h's
 *                  talas_state_playback_now_playing: a Play on /api/ws, a
 *                  scrobble with submission=false); a user whose
 *                  share_listening is off is shown to himself only.
 *
 * The queue goes through workers/state/state_play_queue.h (LMDB, or
 * PostgreSQL in cluster mode): a call that waits for the store keeps its
 * state in the request's pool, and a request that goes away cancels it.
 * Catalog look-ups are LMDB reads on the loop, as the rest of /rest/.
 *
 * Logs: nothing itself: subsonic_call.c logs catalog read errors, the state
 * interface store failures.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/token.h"
#include "http/http_response.h"
#include "subsonic/subsonic_queue.h"
#include "state/state_play_queue.h"
#include "state/state_playback.h"
#include "store/catalog.h"
#include "store/users.h"

/* A call's state while the store answers, in the request's pool. */
struct qcall {
    struct talas_subsonic_call *c;
    struct talas_state_play_queue_op *op;
    struct talas_state_playback_op *now_op;
};

static void qcall_dispose(void *p)
{
    struct qcall *q = p;

    if (q->op != NULL)
        talas_state_play_queue_cancel(q->op);
    if (q->now_op != NULL)
        talas_state_playback_cancel(q->now_op);
}

static struct qcall *qcall_new(struct talas_subsonic_call *c)
{
    struct qcall *q = h2o_mem_alloc_shared(&c->req->pool, sizeof(*q), qcall_dispose);

    memset(q, 0, sizeof(*q));
    q->c = c;
    return q;
}

static void iso_ms(uint64_t ms, char buf[32])
{
    talas_token_format_time((time_t)(ms / 1000), buf);
}

/* Ends W's list and the element that holds it, releases the catalog
 * (LIB, read in TXN) and sends W's document. */
static void send_list(struct talas_subsonic_call *c, MDB_txn *txn, struct talas_subsonic_library *lib,
                      struct talas_subsonic_writer *w)
{
    talas_subsonic_list_end(w);
    talas_subsonic_elem_end(w);
    talas_subsonic_library_free(lib);
    mdb_txn_abort(txn);
    talas_subsonic_writer_end(w);
    talas_subsonic_send_doc(c->req, w);
}

/* ------------------------------------------------------ the play queue */

static void on_saved(void *data, const struct talas_state_play_queue_result *res)
{
    struct qcall *q = data;

    q->op = NULL;
    if (res->outcome != TALAS_STATE_OK) {
        talas_subsonic_call_store_failed(q->c, res->outcome, res->reason, &res->refusal,
                                         "the play queue could not be stored");
        return;
    }
    talas_subsonic_call_empty(q->c);
}

static void m_save(struct talas_subsonic_call *c)
{
    const char **ids = h2o_mem_alloc_pool(&c->req->pool, TALAS_PLAY_QUEUE_MAX * sizeof(*ids));
    const char *current = talas_subsonic_arg(c->args, "current"), *client = talas_subsonic_arg(c->args, "c");
    struct talas_play_queue pq;
    struct qcall *q;
    const char *error;
    int64_t position;
    size_t n = talas_subsonic_arg_all(c->args, "id", ids, TALAS_PLAY_QUEUE_MAX);
    int in = 0;

    if (n > TALAS_PLAY_QUEUE_MAX) {
        talas_subsonic_call_error(c, TALAS_SUBSONIC_E_GENERIC, "a play queue holds at most %d songs (%zu given)",
                   TALAS_PLAY_QUEUE_MAX, n);
        return;
    }
    if (talas_subsonic_arg_int(c->args, "position", 0, INT64_MAX, 0, &position, &error) != 0) {
        talas_subsonic_call_error(c, TALAS_SUBSONIC_E_GENERIC, "%s", error);
        return;
    }
    if (client != NULL && strlen(client) > TALAS_PLAY_QUEUE_CLIENT_MAX) {
        talas_subsonic_call_error(c, TALAS_SUBSONIC_E_GENERIC, "c: a client name of at most %d bytes",
                   TALAS_PLAY_QUEUE_CLIENT_MAX);
        return;
    }
    if (current != NULL && current[0] == '\0')
        current = NULL;
    for (size_t i = 0; current != NULL && i < n; i++)
        in |= strcmp(ids[i], current) == 0;
    if (current != NULL && !in) {
        talas_subsonic_call_error(c, TALAS_SUBSONIC_E_GENERIC, "current: %.32s is not in the queue", current);
        return;
    }
    if (!talas_subsonic_call_songs_exist(c, ids, n))
        return;
    memset(&pq, 0, sizeof(pq));
    pq.tracks = ids;
    pq.count = n;
    pq.current = current != NULL ? current : "";
    pq.position_ms = current != NULL ? (uint64_t)position : 0;
    pq.changed_by = client != NULL ? client : "";
    q = qcall_new(c);
    q->op = talas_state_play_queue_save(c->ctx, c->user, &pq, on_saved, q);
}

static void on_queue(void *data, const struct talas_state_play_queue_result *res)
{
    struct qcall *q = data;
    struct talas_subsonic_call *c = q->c;
    const struct talas_play_queue *pq = res->queue;
    struct talas_subsonic_library lib;
    struct talas_subsonic_writer w;
    char when[32];
    MDB_txn *txn;

    q->op = NULL;
    if (res->outcome != TALAS_STATE_OK) {
        talas_subsonic_call_store_failed(c, res->outcome, res->reason, &res->refusal,
                                         "the play queue could not be stored");
        return;
    }
    if (pq == NULL) {
        talas_subsonic_call_empty(c);
        return;
    }
    if (talas_subsonic_call_load_library(c, &txn, &lib) != 0)
        return;
    talas_subsonic_writer_begin(&w, c->format, c->callback, 1);
    talas_subsonic_elem_begin(&w, "playQueue");
    if (pq->current[0] != '\0' && talas_subsonic_song_find(&lib, pq->current) != NULL) {
        talas_subsonic_attr_str(&w, "current", pq->current);
        talas_subsonic_attr_int(&w, "position", (int64_t)pq->position_ms);
    }
    talas_subsonic_attr_str(&w, "username", c->user);
    iso_ms(pq->changed_ms, when);
    talas_subsonic_attr_str(&w, "changed", when);
    talas_subsonic_attr_str(&w, "changedBy", pq->changed_by);
    talas_subsonic_list_begin(&w, "entry");
    for (size_t i = 0; i < pq->count; i++) {
        const struct talas_subsonic_song *s = talas_subsonic_song_find(&lib, pq->tracks[i]);
        if (s == NULL)
            continue;
        talas_subsonic_item_begin(&w);
        c->song_attrs(&w, s);
        talas_subsonic_elem_end(&w);
    }
    send_list(c, txn, &lib, &w);
}

static void m_get(struct talas_subsonic_call *c)
{
    struct qcall *q = qcall_new(c);

    q->op = talas_state_play_queue_get(c->ctx, c->user, on_queue, q);
}

/* --------------------------------------------------------- now playing */

static void on_now(void *data, const struct talas_state_now_playing_result *res)
{
    struct qcall *q = data;
    struct talas_subsonic_call *c = q->c;
    struct talas_subsonic_library lib;
    struct talas_subsonic_writer w;
    uint64_t now = talas_wall_ms();
    MDB_txn *txn;

    q->now_op = NULL;
    if (res->outcome != TALAS_STATE_OK) {
        talas_subsonic_call_error(c, TALAS_SUBSONIC_E_GENERIC, "the playback states could not be read");
        return;
    }
    if (talas_subsonic_call_load_library(c, &txn, &lib) != 0)
        return;
    talas_subsonic_writer_begin(&w, c->format, c->callback, 1);
    talas_subsonic_elem_begin(&w, "nowPlaying");
    talas_subsonic_list_begin(&w, "entry");
    for (size_t i = 0; i < res->count; i++) {
        const struct talas_state_now_playing *e = &res->entries[i];
        const struct talas_subsonic_song *s = talas_subsonic_song_find(&lib, e->state.track_id);
        if (s == NULL)
            continue;
        /* the privacy of /api/ws: listening not shared is the user's own */
        if (strcmp(e->user, c->user) != 0 && !talas_user_shares_listening(c->ctx->storage, e->user))
            continue;
        talas_subsonic_item_begin(&w);
        c->song_attrs(&w, s);
        talas_subsonic_attr_str(&w, "username", e->user);
        talas_subsonic_attr_int(&w, "minutesAgo",
                                (int64_t)((now > e->changed_ms ? now - e->changed_ms : 0) / 60000));
        talas_subsonic_attr_int(&w, "playerId", (int64_t)e->state.session_pid);
        talas_subsonic_attr_str(&w, "playerName", e->state.platform);
        talas_subsonic_elem_end(&w);
    }
    send_list(c, txn, &lib, &w);
}

static void m_now_playing(struct talas_subsonic_call *c)
{
    struct qcall *q = qcall_new(c);

    q->now_op = talas_state_playback_now_playing(c->ctx, talas_wall_ms(), on_now, q);
}

/* ------------------------------------------------------------- dispatch */

static const struct {
    const char *name;
    talas_subsonic_call_fn *fn;
} methods[] = {
    {"savePlayQueue", m_save},
    {"getPlayQueue", m_get},
    {"getNowPlaying", m_now_playing},
};

talas_subsonic_call_fn *talas_subsonic_queue_method(const char *name)
{
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (strcmp(methods[i].name, name) == 0)
            return methods[i].fn;
    return NULL;
}
