/*
 * http_hls_queue.c - continuous HLS of a queue: a playlist's, an artist's
 * or a listening room's tracks played as one stream, with no gap and no
 * overlap.
 *
 * Entry point: talas_hls_queue_serve, for every path under /hls/queue/:
 *
 *   /hls/queue/{kind}/{id}/master.m3u8          the ladder (the tracks' rungs)
 *   /hls/queue/{kind}/{id}/{q}/playlist.m3u8    VOD media playlist of rung q
 *   /hls/queue/{kind}/{id}/{q}/init.mp4         its initialization segment
 *   /hls/queue/{kind}/{id}/{q}/{n}.m4s          media segment n
 *
 * KIND is "playlist" (ID a playlist id), "artist" (ID the artist's name,
 * percent-encoded: the tracks whose artist tag is exactly that, by album,
 * disc, track number, then path) or "room" (ID a room id: the room's
 * queue in queue order, as it is when the object is asked for; rooms
 * themselves play entry by entry on the server's clock, ws_rooms.c).
 *
 * The queue is a virtual source (media/queue_timeline.h): the tracks'
 * decoded audio, each resampled to the rung as its own transcode is, end to
 * end. Its chunks are encoded from that timeline (transcoder.c,
 * talas_transcode_queue_chunk) on the grid of a transcode of the queue's
 * total length, with the same pre-roll, and packaged as a track's
 * segments are (media/hls.h): only the queue's first frame of priming is
 * left out, and only the last frame's padding is after its end, so track
 * boundaries are sample-exact. The chunks live in the transcode cache under
 * a key of their own: the "track" is a hash of the ordered list of the
 * tracks and their files (ids, sizes, mtimes), the variant is the rung's
 * prefixed with "q.": the same queue finds its chunks again, a changed one
 * (another order, a track added, a file changed) makes others.
 *
 * Resolution runs on the loop in short steps: the playlist or the room
 * through the state interface (state_playlists.h, state_rooms.h: one
 * short transaction), an artist's tracks in one catalog
 * read transaction on a pool thread (the walk reads every record), each
 * track's file checked as every media route does
 * (http_source.h), then each measured off the loop
 * (talas_transcode_measure, memoised per worker).
 *
 * Access: as the tracks' HLS when auth.required is false (open to all).
 * With auth.required, a valid token of scope "hls" (any track claim: a
 * queue has no track id; share tokens are refused) is needed on every
 * object, and for a playlist that is not public its sub must be the owner
 * or an editor; the token rides on every URL the playlists list. A
 * ?normalize= target is refused (400): each track would need its own gain.
 * A room's queue, whatever auth.required says, plays for its members (the
 * sub of a valid token, of scope hls or none: a user's token does) and for
 * the holders of its invite (?invite= or X-Room-Invite, as GET
 * /api/rooms/{id}), never for anyone else (401 without either, 403); the
 * invite rides on the URLs too. Unknown or expired room: 404; in cluster
 * mode 501 rooms_unavailable, as the rooms' REST routes answer.
 *
 * Logs: chunks that are not what their layout says (error).
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/token.h"
#include "media/artist_scan.h"
#include "media/hls.h"
#include "media/queue_timeline.h"
#include "media/transcode_jobs.h"
#include "media/transcode_limit.h"
#include "state/state_playlists.h"
#include "state/state_rooms.h"
#include "worker/worker_pool.h"
#include "store/catalog.h"
#include "store/playlists.h"
#include "http/http_authorize.h"
#include "http/http_hls_queue.h"
#include "http/http_hls_reply.h"
#include "http/http_parse.h"
#include "http/http_response.h"
#include "http/http_rooms.h"
#include "http/http_source.h"
#include "worker/worker_ctx.h"

#define MAX_RUNGS 16

enum queue_kind { KIND_PLAYLIST, KIND_ARTIST, KIND_ROOM };

struct queue_entry {
    char id[TALAS_TRACK_ID_LEN + 1];
    char *path; /* request pool */
    struct talas_cache_source identity;
    struct talas_source_info info;
};

/* One request, in its pool. */
struct queue_request {
    const struct talas_worker_ctx *ctx;
    h2o_req_t *req;
    enum talas_hls_object object;
    enum queue_kind kind;
    struct talas_hls_reply reply; /* the answers: segment, source, waiter */
    char *name;                   /* the playlist id or artist name, decoded */
    struct talas_profile profile;
    struct talas_token_claims claims; /* exp: the earliest of token's and invite's */
    int invited;                      /* a room's: a valid invite of that room came with it */
    const char *query;                /* "?token=...", "?token=...&invite=...", "?invite=..." or "" */
    struct talas_state_op *op;
    struct talas_artist_scan *artist; /* while its catalog walk runs */
    struct queue_entry *entries;
    size_t count, measured;
    int in_measure, measure_answered;
    struct talas_measure_waiter measure;
    struct talas_queue *queue;
    struct talas_transcode_source src;
};

/* ---------------------------------------------------------------- paths */

/* Percent-decodes [S, S + LEN) into the request pool (an encoded '/' is
 * a byte of the name, as in "AC%2FDC"; a path's '+' is a '+', not the
 * space talas_http_percent_decode reads in a query). NULL when malformed,
 * empty, with a NUL byte once decoded, or not UTF-8. */
static char *decode_segment(h2o_req_t *req, const char *s, size_t len)
{
    char *out = h2o_mem_alloc_pool(&req->pool, len + 1);
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)s[i];

        if (c == '%') {
            int hi = i + 2 < len ? talas_http_hex_value(s[i + 1]) : -1,
                lo = i + 2 < len ? talas_http_hex_value(s[i + 2]) : -1;

            if (hi < 0 || lo < 0)
                return NULL;
            c = hi << 4 | lo;
            i += 2;
        }
        if (c == 0)
            return NULL;
        out[n++] = (char)c;
    }
    out[n] = '\0';
    if (n == 0 || !talas_utf8_valid(out, n))
        return NULL;
    return out;
}

/* Splits "KIND/ID/master.m3u8" or "KIND/ID/Q/FILE" (the raw path, before
 * any '?'). Returns 0, or -1 for a path that names nothing here. */
static int parse_path(struct queue_request *rq, const char *p, size_t len, h2o_iovec_t *q_r)
{
    const char *end = p + len, *slash;

    if ((slash = memchr(p, '/', len)) == NULL)
        return -1;
    if (slash - p == 8 && memcmp(p, "playlist", 8) == 0)
        rq->kind = KIND_PLAYLIST;
    else if (slash - p == 6 && memcmp(p, "artist", 6) == 0)
        rq->kind = KIND_ARTIST;
    else if (slash - p == 4 && memcmp(p, "room", 4) == 0)
        rq->kind = KIND_ROOM;
    else
        return -1;
    p = slash + 1;
    if ((slash = memchr(p, '/', (size_t)(end - p))) == NULL ||
        (rq->name = decode_segment(rq->req, p, (size_t)(slash - p))) == NULL)
        return -1;
    p = slash + 1;
    return talas_hls_object_parse(p, (size_t)(end - p), &rq->object, q_r, &rq->reply.segment);
}

/* ------------------------------------------------------------ responses */

/* The ladder in the order http_hls.c lists a track's; bandwidths are the
 * estimates. */
static void send_master(struct queue_request *rq)
{
    const struct talas_config *conf = rq->ctx->conf;
    struct talas_profile profiles[MAX_RUNGS];
    struct talas_hls_rung rungs[MAX_RUNGS];
    size_t n = 0;

    for (size_t i = 0; i < conf->transcode_profile_count && n < MAX_RUNGS; i++) {
        const struct talas_config_profile *cp = &conf->transcode_profiles[i];
        if (!cp->hls)
            continue;
        talas_transcode_profile(conf, cp, &profiles[n]);
        rungs[n].name = cp->name;
        rungs[n].profile = &profiles[n];
        talas_hls_bandwidth(&profiles[n], &rungs[n].bandwidth, &rungs[n].avg_bandwidth);
        n++;
    }
    talas_hls_ladder_order(rungs, n);
    /* the token in the URLs makes it differ: the ETag names the body */
    talas_hls_reply_master(&rq->reply, rungs, n, rq->query);
}

/* ---------------------------------------------------------- the queue */

/* The cache key's "track": a hash of the ordered tracks and their files,
 * the same for every rung (ETags name it too). */
static void queue_hash(struct queue_request *rq)
{
    struct talas_buf list = {0};

    for (size_t i = 0; i < rq->count; i++)
        talas_buf_printf(&list, "%s:%" PRIu64 ":%" PRId64 "\n", rq->entries[i].id,
                         rq->entries[i].identity.size, rq->entries[i].identity.mtime_ns);
    talas_buf_append(&list, "", 1);
    talas_track_id_make("queue", list.data, rq->src.key.track);
    talas_buf_free(&list);
}

/* The rest of the cache key at this rung: the rung's variant marked as a
 * queue's, and the queue's length as its identity. */
static void queue_key(struct queue_request *rq)
{
    char variant[TALAS_CACHE_VARIANT_MAX + 1];

    talas_transcode_variant(&rq->profile, &rq->src.layout, variant);
    snprintf(rq->src.key.variant, sizeof(rq->src.key.variant), "q.%.*s", TALAS_CACHE_VARIANT_MAX - 2,
             variant);
    rq->src.key.identity.size = rq->queue->total;
    rq->src.key.identity.mtime_ns = (int64_t)rq->count;
}

/* Every track measured: the timeline, the grid, then the object. */
static void serve_measured(struct queue_request *rq)
{
    struct talas_source_info whole;
    struct talas_queue *q;
    char *error = NULL;

    queue_hash(rq);
    /* the answers: ETags name the queue (its hash) and the object */
    rq->reply.req = rq->req;
    rq->reply.claims = &rq->claims;
    rq->reply.etag_prefix = h2o_mem_alloc_pool(&rq->req->pool, sizeof(rq->src.key.track) + 2);
    snprintf((char *)rq->reply.etag_prefix, sizeof(rq->src.key.track) + 2, "q-%s", rq->src.key.track);
    rq->reply.profile = &rq->profile;
    rq->reply.src = &rq->src;
    if (rq->object == TALAS_HLS_MASTER) {
        send_master(rq);
        return;
    }
    if (rq->object == TALAS_HLS_INIT) {
        talas_hls_reply_init(&rq->reply);
        return;
    }
    q = rq->queue = talas_queue_new(rq->count);
    for (size_t i = 0; i < rq->count; i++) {
        struct talas_queue_track *t = &q->tracks[i];

        memcpy(t->id, rq->entries[i].id, sizeof(t->id));
        t->path = xstrdup(rq->entries[i].path);
        if (talas_layout_compute(&rq->profile, &rq->entries[i].info, NULL, &t->layout, &error) != 0) {
            log_warn("hls queue: track %s (%s): %s", t->id, t->path, error);
            free(error);
            talas_http_send_error(rq->req, 422, "undecodable", "track %s of this queue cannot be transcoded",
                                  t->id);
            return;
        }
    }
    talas_queue_place(q);
    whole = (struct talas_source_info){
        .samples = q->total, .sample_rate = rq->profile.sample_rate, .channels = rq->profile.channels};
    if (q->total == 0 || talas_layout_compute(&rq->profile, &whole, NULL, &rq->src.layout, &error) != 0) {
        free(error);
        talas_http_send_error(rq->req, 422, "undecodable", "this queue has no audio to stream");
        return;
    }
    rq->src.profile = rq->profile;
    rq->src.queue = q;
    snprintf(rq->src.path, sizeof(rq->src.path), "queue");
    queue_key(rq);
    if (rq->object == TALAS_HLS_PLAYLIST)
        talas_hls_reply_playlist(&rq->reply, rq->query);
    else
        talas_hls_reply_segment(&rq->reply);
}

static void measure_next(struct queue_request *rq);

static void on_measured(struct talas_measure_waiter *w, int status, const struct talas_source_info *info)
{
    struct queue_request *rq = w->data;

    if (status != 0) {
        /* measured stays put: measure_next stops */
        talas_http_send_error(rq->req, 422, "undecodable", "track %s of this queue cannot be decoded",
                              rq->entries[rq->measured].id);
        return;
    }
    rq->entries[rq->measured++].info = *info;
    if (rq->in_measure)
        rq->measure_answered = 1; /* measure_next's loop goes on */
    else
        measure_next(rq);
}

/* Measures the tracks one after the other: a memoised measure answers at
 * once (a loop, not a recursion), the others from the pool. */
static void measure_next(struct queue_request *rq)
{
    while (rq->measured < rq->count) {
        struct talas_chunk_key key;
        struct queue_entry *e = &rq->entries[rq->measured];
        size_t before = rq->measured;

        memset(&key, 0, sizeof(key));
        memcpy(key.track, e->id, sizeof(key.track));
        key.identity = e->identity;
        rq->measure.cb = on_measured;
        rq->measure.data = rq;
        rq->in_measure = 1;
        rq->measure_answered = 0;
        talas_transcode_measure(&key, e->path, &rq->measure);
        rq->in_measure = 0;
        if (!rq->measure_answered || rq->measured == before)
            return; /* later, from the loop; or it failed and answered */
    }
    serve_measured(rq);
}

/* The tracks are known (ids in rq->entries): checks each file as every
 * media route does, then measures them. */
static void tracks_known(struct queue_request *rq)
{
    if (rq->count == 0) {
        talas_http_send_error(rq->req, 404, "empty_queue", "this queue has no playable track");
        return;
    }
    for (size_t i = 0; i < rq->count; i++)
        if (talas_stream_source(rq->ctx, rq->req, rq->entries[i].id, &rq->entries[i].path,
                                &rq->entries[i].identity) != 0)
            return; /* answered: unknown track, file gone, outside the library */
    measure_next(rq);
}

static void on_playlist(void *data, const struct talas_state_playlist_result *r)
{
    struct queue_request *rq = data;
    const struct talas_state_playlist *p = r->playlist;
    size_t n = 0;

    rq->op = NULL;
    switch (r->outcome) {
    case TALAS_STATE_OK:
        break;
    case TALAS_STATE_NOT_FOUND:
        talas_http_send_error(rq->req, 404, "not_found", "no such playlist");
        return;
    case TALAS_STATE_UNAVAILABLE:
        talas_http_send_error(rq->req, 503, "unavailable", "%s",
                              r->reason != NULL ? r->reason : "store down");
        return;
    default:
        talas_http_send_error(rq->req, 500, "store_failed", "the playlist could not be read");
        return;
    }
    /* with tokens, a private playlist is its owner's and editors' */
    if (rq->ctx->conf->auth_required && !p->public_) {
        int may = strcmp(p->owner, rq->claims.sub) == 0;

        for (size_t i = 0; i < p->editor_count && !may; i++)
            may = strcmp(p->editors[i], rq->claims.sub) == 0;
        if (!may) {
            talas_http_refuse(rq->req, 403, "forbidden",
                              "the playlist is not the token's user's, nor public");
            return;
        }
    }
    if (p->track_count > TALAS_HLS_QUEUE_MAX) {
        talas_http_send_error(rq->req, 413, "queue_too_long", "a queue plays at most %d tracks",
                              TALAS_HLS_QUEUE_MAX);
        return;
    }
    rq->entries = h2o_mem_alloc_pool(&rq->req->pool, sizeof(*rq->entries) * (p->track_count + 1));
    memset(rq->entries, 0, sizeof(*rq->entries) * (p->track_count + 1));
    for (size_t i = 0; i < p->track_count; i++)
        if (talas_track_id_valid(p->tracks[i], strlen(p->tracks[i])))
            memcpy(rq->entries[n++].id, p->tracks[i], TALAS_TRACK_ID_LEN + 1);
    rq->count = n;
    tracks_known(rq);
}

/* A room's queue, in queue order: one short read of the room (the REST
 * GET's), for a member or the holder of its invite. */
static void resolve_room(struct queue_request *rq)
{
    struct talas_room r;
    size_t n = 0;
    int member;

    switch (talas_state_room_update(rq->ctx, rq->name, NULL, talas_wall_ms(), NULL, NULL, &r, NULL, NULL)) {
    case TALAS_STATE_OK:
        break;
    case TALAS_STATE_NOT_FOUND:
        talas_room_free(&r);
        talas_http_send_error(rq->req, 404, "not_found", "no such room");
        return;
    case TALAS_STATE_UNAVAILABLE:
        talas_room_free(&r);
        talas_http_send_error(rq->req, 501, "rooms_unavailable", "%s", talas_state_rooms_no_cluster);
        return;
    default:
        talas_room_free(&r);
        talas_http_send_error(rq->req, 500, "store_failed", "the room could not be read");
        return;
    }
    /* the host too, as GET /api/rooms/{id}: a creator not connected yet
     * may have been dropped as a silent member */
    member = rq->claims.sub[0] != '\0' &&
             (talas_room_member_find(&r, rq->claims.sub) != NULL || strcmp(r.host, rq->claims.sub) == 0);
    if (!member && !rq->invited) {
        talas_room_free(&r);
        talas_http_refuse(rq->req, 403, "forbidden",
                          "only the room's members, or the holders of its invite, may play its queue");
        return;
    }
    if (r.queue_count > TALAS_HLS_QUEUE_MAX) {
        talas_room_free(&r);
        talas_http_send_error(rq->req, 413, "queue_too_long", "a queue plays at most %d tracks",
                              TALAS_HLS_QUEUE_MAX);
        return;
    }
    rq->entries = h2o_mem_alloc_pool(&rq->req->pool, sizeof(*rq->entries) * (r.queue_count + 1));
    memset(rq->entries, 0, sizeof(*rq->entries) * (r.queue_count + 1));
    for (size_t i = 0; i < r.queue_count; i++)
        if (talas_track_id_valid(r.queue[i].track_id, strlen(r.queue[i].track_id)))
            memcpy(rq->entries[n++].id, r.queue[i].track_id, TALAS_TRACK_ID_LEN + 1);
    talas_room_free(&r);
    rq->count = n;
    tracks_known(rq);
}

/* An artist's tracks, walked on the pool (media/artist_scan.h): the
 * request goes on with them, unless it went away first (it detached). */
static void artist_done(void *arg, const struct talas_artist_scan_result *a)
{
    struct queue_request *rq = arg;

    rq->artist = NULL;
    if (a->cancelled) {
        talas_http_send_error(rq->req, 503, "unavailable", "the worker is stopping; try again");
    } else if (a->rc != 0) {
        log_error("hls queue: reading the catalog failed: %s", a->rc > 0 ? mdb_strerror(a->rc) : "damaged");
        talas_http_send_error(rq->req, 500, "store_failed", "the catalog could not be read");
    } else if (a->too_many) {
        talas_http_send_error(rq->req, 413, "queue_too_long", "a queue plays at most %d tracks",
                              TALAS_HLS_QUEUE_MAX);
    } else if (a->count == 0) {
        talas_http_send_error(rq->req, 404, "not_found", "no track of this artist");
    } else {
        rq->entries = h2o_mem_alloc_pool(&rq->req->pool, sizeof(*rq->entries) * a->count);
        memset(rq->entries, 0, sizeof(*rq->entries) * a->count);
        for (size_t i = 0; i < a->count; i++)
            memcpy(rq->entries[i].id, a->tracks[i].id, TALAS_TRACK_ID_LEN + 1);
        rq->count = a->count;
        tracks_known(rq);
    }
}

static void resolve_artist(struct queue_request *rq)
{
    rq->artist = talas_artist_scan_start(rq->ctx->pool, rq->ctx->storage, rq->name, 0, TALAS_HLS_QUEUE_MAX,
                                         artist_done, rq);
}

/* ------------------------------------------------------------ requests */

static void request_dispose(void *p)
{
    struct queue_request *rq = p;

    if (rq->op != NULL)
        talas_state_cancel(rq->op);
    if (rq->artist != NULL)
        talas_artist_scan_detach(rq->artist); /* its job frees it */
    talas_transcode_measure_cancel(&rq->measure);
    talas_chunk_cancel(&rq->reply.waiter);
    talas_queue_unref(rq->queue);
}

/* A room's invite (?invite= or X-Room-Invite), when the request holds
 * one: it must be valid and this room's; it then rides on the URLs the
 * playlists list. Without one, the token's sub must be there (a member's,
 * checked once the room is read). Returns 0, or -1 once it answered. */
static int authorize_invite(struct queue_request *rq)
{
    h2o_req_t *req = rq->req;
    h2o_iovec_t invite = talas_rooms_invite_of(req);
    struct talas_token_claims ic;
    const char *reason = "no invite";
    size_t len;
    char *q;

    if (invite.base == NULL || invite.len == 0) {
        if (rq->claims.sub[0] == '\0') {
            talas_http_refuse(req, 401, "unauthorized",
                              "a room member's token, or the room's invite (?invite=), is required");
            return -1;
        }
        return 0;
    }
    switch (talas_token_verify(rq->ctx->token, invite.base, invite.len, NULL, TALAS_TOKEN_ROOM, NULL, &ic,
                               &reason)) {
    case TALAS_TOKEN_OK:
        break;
    case TALAS_TOKEN_FORBIDDEN:
        talas_http_refuse(req, 403, "forbidden", reason);
        return -1;
    default:
        talas_http_refuse(req, 401, "invalid_token", reason);
        return -1;
    }
    if (strcmp(ic.room, rq->name) != 0) {
        talas_http_refuse(req, 403, "forbidden", "the invite is another room's");
        return -1;
    }
    /* a verified JWT is base64url and dots: nothing to encode in a URL */
    for (size_t i = 0; i < invite.len; i++)
        if (!(isalnum((unsigned char)invite.base[i]) || strchr("-_.", invite.base[i]) != NULL)) {
            talas_http_refuse(req, 401, "invalid_token", "malformed invite");
            return -1;
        }
    rq->invited = 1;
    if (rq->claims.exp == 0 || ic.exp < rq->claims.exp)
        rq->claims.exp = ic.exp; /* the responses are private, for that long */
    len = strlen(rq->query) + 8 + invite.len + 1;
    q = h2o_mem_alloc_pool(&req->pool, len);
    snprintf(q, len, "%s%cinvite=%.*s", rq->query, rq->query[0] != '\0' ? '&' : '?', (int)invite.len,
             invite.base);
    rq->query = q;
    return 0;
}

/* With auth.required: a valid token of scope hls, not a share's. A room
 * needs more (authorize_invite), and reads a token that is there even
 * without auth.required: its sub may be a member. Returns 0, or -1 once
 * it answered 401 / 403. */
static int authorize(struct queue_request *rq)
{
    const struct talas_worker_ctx *ctx = rq->ctx;
    h2o_req_t *req = rq->req;
    const char *reason = "no token";
    h2o_iovec_t token = {NULL, 0};
    char ip[64];
    int found;

    memset(&rq->claims, 0, sizeof(rq->claims));
    rq->query = "";
    if (!ctx->conf->auth_required && rq->kind != KIND_ROOM)
        return 0;
    if ((found = talas_http_token(req, &token, &reason)) == -1) {
        talas_http_refuse(req, 401, "invalid_token", reason);
        return -1;
    }
    if (found == 0 && !ctx->conf->auth_required)
        return authorize_invite(rq);
    switch (talas_token_verify(ctx->token, token.base, found ? token.len : 0, NULL, TALAS_TOKEN_HLS,
                               talas_http_client_ip(req, ip), &rq->claims, &reason)) {
    case TALAS_TOKEN_OK:
        break;
    case TALAS_TOKEN_FORBIDDEN:
        talas_http_refuse(req, 403, "forbidden", reason);
        return -1;
    default:
        talas_http_refuse(req, 401, found ? "invalid_token" : "unauthorized", reason);
        return -1;
    }
    if (rq->claims.share[0] != '\0') {
        talas_http_refuse(req, 403, "forbidden", "a share's token plays its own track only");
        return -1;
    }
    {
        size_t len = 7 + token.len + 1;
        char *q = h2o_mem_alloc_pool(&req->pool, len);

        snprintf(q, len, "?token=%.*s", (int)token.len, token.base);
        rq->query = q;
    }
    return rq->kind == KIND_ROOM ? authorize_invite(rq) : 0;
}

int talas_hls_queue_serve(const struct talas_worker_ctx *ctx, h2o_req_t *req)
{
    struct queue_request *rq;
    size_t raw_len = req->query_at != SIZE_MAX ? req->query_at : req->path.len,
           prefix = strlen("/hls/queue/");
    h2o_iovec_t q = {NULL, 0}, value;
    struct talas_state_op *op;

    if (talas_http_reject_unless_get(req))
        return 0;
    rq = h2o_mem_alloc_shared(&req->pool, sizeof(*rq), request_dispose);
    memset(rq, 0, sizeof(*rq));
    rq->ctx = ctx;
    rq->req = req;
    if (raw_len <= prefix || memcmp(req->path.base, "/hls/queue/", prefix) != 0 ||
        parse_path(rq, req->path.base + prefix, raw_len - prefix, &q) != 0) {
        talas_http_send_error(req, 404, "not_found", "no such HLS queue resource");
        return 0;
    }
    if (rq->kind == KIND_ROOM) {
        /* nothing to hide: a malformed id is no room, a cluster has none yet */
        if (!talas_room_id_valid(rq->name)) {
            talas_http_send_error(req, 404, "not_found", "no such room");
            return 0;
        }
        if (ctx->records != NULL || ctx->conf->cluster_enabled) {
            talas_http_send_error(req, 501, "rooms_unavailable", "%s", talas_state_rooms_no_cluster);
            return 0;
        }
    }
    /* the token first: nothing is read or encoded for a refused request */
    if (authorize(rq) != 0)
        return 0;
    if (rq->object != TALAS_HLS_MASTER) {
        const struct talas_config_profile *cp = talas_hls_find_rung(ctx->conf, q);

        if (cp == NULL) {
            talas_http_send_error(req, 404, "unknown_quality", "no HLS rung named \"%.*s\"", (int)q.len,
                                  q.base);
            return 0;
        }
        talas_transcode_profile(ctx->conf, cp, &rq->profile);
    }
    if (talas_http_query_param(req, "normalize", &value) != 0) {
        talas_http_send_error(req, 400, "invalid_parameter",
                              "normalize is not available on a queue (each track would need its own gain)");
        return 0;
    }
    switch (rq->kind) {
    case KIND_ROOM:
        resolve_room(rq);
        return 0;
    case KIND_ARTIST:
        resolve_artist(rq);
        return 0;
    case KIND_PLAYLIST:
    default:
        if (strlen(rq->name) > TALAS_PLAYLIST_ID_MAX) {
            talas_http_send_error(req, 404, "not_found", "no such playlist");
            return 0;
        }
        /* on_playlist goes on, now (LMDB) or later (the cluster store) */
        if ((op = talas_state_playlist_get(ctx, rq->name, on_playlist, rq)) != NULL)
            rq->op = op;
        return 0;
    }
}
