/*
 * http_transcode.c - transcoded streams and previews over HTTP.
 *
 * Entry points: talas_transcode_requested, talas_transcode_serve.
 *
 * A transcode is the grid of chunks of workers/media/transcoder.c: an MP3 stream
 * is an Info frame and chunks whose sizes the layout knows before anything
 * is encoded, so even the first, uncached play has an exact Content-Length
 * and byte ranges, and a range in the middle asks for the chunks it covers
 * (they are encoded there, not after everything before them). An AAC
 * stream's sizes are known only once every chunk is cached: until then it
 * goes out without a length (and without ranges), which is never a guess.
 *
 * The token is checked first, before the catalog is read or anything is
 * opened or encoded. The source is measured once per worker (its exact
 * sample count, and whether it can be transcoded at all: 422 otherwise;
 * off the loop), a ?t= at or past its end refused (416), the layout
 * computed, then the generator
 * sends chunk after chunk as talas_chunk_get delivers them
 * (transcode_jobs.h): a view of LMDB's map, held until h2o asks for more
 * (no copy), or the encoder's buffer when this response waited for the
 * encode. It asks for the next READ_AHEAD chunks to be made as it goes, so
 * a listener never waits on an encode that could have started earlier, and
 * cancels them when it goes away: at once when h2o sees it go, and within
 * PEER_CHECK_MS when it leaves while the response waits on an encode.
 *
 * ?normalize=LUFS (http_normalize.c) gives the profile a gain from the
 * track's measured loudness, and the variant its target.
 *
 * Logs: sources that cannot be measured or laid out (warn), failed chunks
 * (transcode_jobs.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "core/token.h"
#include "store/catalog.h"
#include "http/http_response.h"
#include "http/http_authorize.h"
#include "http/http_shares.h"
#include "http/http_normalize.h"
#include "http/http_source.h"
#include "http/http_transcode.h"
#include "core/log.h"
#include "http/range.h"
#include "media/adts_silence.h"
#include "media/transcode_jobs.h"
#include "media/transcode_limit.h"
#include "worker/worker_ctx.h"

#define READ_AHEAD 2
/* While a response waits on an encode, how often it looks whether its
 * listener is still there (h2o reads an HTTP/1.1 socket only between
 * requests: a listener who left is otherwise seen at the next write,
 * after the chunk, one to two seconds of a core, has been encoded for
 * nobody). */
#define PEER_CHECK_MS 100
/* fades of a preview */
#define PREVIEW_FADE_MS 1000

struct tx_gen {
    h2o_generator_t super; /* first: h2o hands it back */
    h2o_req_t *req;
    struct talas_transcode_source src;
    int exact;                /* chunk offsets are known: length and ranges */
    uint64_t *chunk_offsets;  /* exact: C + 1 absolute offsets (chunk c starts at [c]) */
    uint64_t pos, end;        /* absolute stream offsets left to send; end UINT64_MAX: to the end */
    uint32_t chunk;           /* the chunk being sent (streaming) */
    size_t skip_frames;       /* streaming with t: frames to drop at the start of the first chunk */
    h2o_iovec_t header;       /* the stream's bytes before chunk 0 (MP3 Info frame) */
    uint32_t asked;           /* the chunk talas_chunk_get was asked for */
    struct talas_chunk *held; /* the chunk h2o is writing from */
    struct talas_chunk_waiter waiter;
    struct talas_chunk_waiter ahead[READ_AHEAD];
    h2o_timeout_entry_t peer_check; /* armed while waiting on an encode */
    int counted;
    int done;
    /* estimateContentLength on a stream of unknown length (AAC not yet
     * cached): the length announced, the bytes sent so far; whole frames
     * go out while they fit, the rest is silent frames (adts_silence.h) */
    uint64_t estimate, sent;
    int trimmed;
    uint32_t cached_to;        /* chunks below it were in the cache at the start: no read-ahead claim */
    struct talas_chunk *found; /* the first chunk, as needs_encode found it; NULL once sent */
    uint32_t found_index;
};

/* A request waiting for its source to be measured. */
struct tx_request {
    const struct talas_worker_ctx *ctx;
    h2o_req_t *req;
    struct talas_measure_waiter measure;
    struct talas_chunk_key key; /* the track and its file; no variant yet */
    char *path;
    struct talas_profile profile;
    int preview;
    double t;
    int normalize_dlu; /* ?normalize=, tenths of LUFS; 0: none */
    int estimate;      /* announce an estimated length when the exact one is unknown */
    struct talas_token_claims claims;
};

static void send_next(struct tx_gen *gen);

/* ------------------------------------------------------------ parameters */

int talas_transcode_requested(h2o_req_t *req)
{
    static const char *const names[] = {"profile", "format", "bitrate", "t"};
    h2o_iovec_t v;

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (talas_http_query_param(req, names[i], &v) != 0)
            return 1;
    return 0;
}

/* t=: seconds as decimal digits with an optional fraction ("7", "7.25",
 * ".5"), as nginx's mp4 module reads start=: no sign, exponent, hex digits,
 * spaces or words, all of which strtod() would take ("+3", " 5", "0x10",
 * "1e2"). At most a week. Returns 0, or -1 for anything else. */
static int parse_seconds(const char *s, size_t len, double *t_r)
{
    size_t i = 0, digits = 0;
    double t;

    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
        digits++;
    if (i < len && s[i] == '.')
        for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++)
            digits++;
    if (i != len || digits == 0)
        return -1;
    t = strtod(s, NULL);
    if (!isfinite(t) || t > 7 * 24 * 3600.0)
        return -1;
    *t_r = t;
    return 0;
}

/* Reads profile= / format=&bitrate= / t=; answers 400 and returns -1 on a
 * bad value. */
static int parse_params(const struct talas_worker_ctx *ctx, h2o_req_t *req, struct talas_profile *p,
                        double *t_r)
{
    const struct talas_config *conf = ctx->conf;
    h2o_iovec_t v;
    int found;

    *t_r = 0;
    if ((found = talas_http_query_param(req, "t", &v)) == 1) {
        if (parse_seconds(v.base, v.len, t_r) != 0) {
            talas_http_send_error(req, 400, "invalid_parameter",
                                  "t: must be a number of seconds, 0 or more, such as 7 or 7.25");
            return -1;
        }
    } else if (found == -1) {
        talas_http_send_error(req, 400, "invalid_parameter", "t: malformed percent-encoding");
        return -1;
    }

    if ((found = talas_http_query_param(req, "profile", &v)) == 1) {
        for (size_t i = 0; i < conf->transcode_profile_count; i++) {
            if (strcmp(conf->transcode_profiles[i].name, v.base) == 0) {
                talas_transcode_profile(conf, &conf->transcode_profiles[i], p);
                return 0;
            }
        }
        talas_http_send_error(req, 400, "unknown_profile", "profile: no profile named \"%.64s\"", v.base);
        return -1;
    }
    if (found == -1) {
        talas_http_send_error(req, 400, "invalid_parameter", "profile: malformed percent-encoding");
        return -1;
    }
    if ((found = talas_http_query_param(req, "format", &v)) == 1) {
        int codec = strcmp(v.base, "mp3") == 0   ? TALAS_CONFIG_CODEC_MP3
                    : strcmp(v.base, "aac") == 0 ? TALAS_CONFIG_CODEC_AAC
                                                 : -1;
        long bitrate = -1;
        h2o_iovec_t b;

        if (codec == -1) {
            talas_http_send_error(req, 400, "invalid_parameter", "format: must be mp3 or aac");
            return -1;
        }
        if ((found = talas_http_query_param(req, "bitrate", &b)) != 0) {
            char *end = NULL;
            if (found == 1)
                bitrate = strtol(b.base, &end, 10);
            if (found == -1 || b.len == 0 || *end != '\0' || bitrate <= 0) {
                talas_http_send_error(req, 400, "invalid_parameter", "bitrate: must be kbit/s, e.g. 192");
                return -1;
            }
        }
        for (size_t i = 0; i < conf->transcode_profile_count; i++) {
            const struct talas_config_profile *cp = &conf->transcode_profiles[i];
            if (cp->codec == codec && (bitrate == -1 || cp->bitrate == bitrate)) {
                talas_transcode_profile(conf, cp, p);
                return 0;
            }
        }
        if (bitrate == -1)
            talas_http_send_error(req, 400, "unknown_profile", "no %s profile: see transcode.profiles",
                                  v.base);
        else
            talas_http_send_error(req, 400, "unknown_profile",
                                  "no %s profile at %ld kbit/s: see transcode.profiles", v.base, bitrate);
        return -1;
    }
    if (found == -1) {
        talas_http_send_error(req, 400, "invalid_parameter", "format: malformed percent-encoding");
        return -1;
    }
    /* t alone: the browsers' progressive format */
    for (size_t i = 0; i < conf->transcode_profile_count; i++) {
        if (strcmp(conf->transcode_profiles[i].name, "mp3") == 0) {
            talas_transcode_profile(conf, &conf->transcode_profiles[i], p);
            return 0;
        }
    }
    talas_profile_builtin("mp3", p);
    return 0;
}

/* ----------------------------------------------------------- generator */

/* Leaves the chunk this response waits for and those it reads ahead:
 * an encode nobody else waits for stops (transcode_jobs.h). */
static void cancel_encodes(struct tx_gen *gen)
{
    talas_chunk_cancel(&gen->waiter);
    for (int i = 0; i < READ_AHEAD; i++)
        talas_chunk_cancel(&gen->ahead[i]);
}

static void gen_dispose(void *p)
{
    struct tx_gen *gen = p;

    if (h2o_timeout_is_linked(&gen->peer_check))
        h2o_timeout_unlink(&gen->peer_check);
    cancel_encodes(gen);
    talas_chunk_release(gen->held);
    gen->held = NULL;
    talas_chunk_release(gen->found);
    gen->found = NULL;
}

static void read_ahead(struct tx_gen *gen, uint32_t c)
{
    /* only makes sure the chunks get encoded (and cached) */
    for (int i = 0; i < READ_AHEAD; i++)
        if (c + 1 + (uint32_t)i >= gen->cached_to)
            talas_chunk_prefetch(&gen->src, c + 1 + (uint32_t)i, &gen->ahead[i]);
}

static uint32_t chunk_of(struct tx_gen *gen, uint64_t pos)
{
    uint32_t lo = 0, hi = gen->src.layout.chunks;

    /* the last chunk whose start is <= pos */
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (gen->chunk_offsets[mid] <= pos)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

static void fail(struct tx_gen *gen, const char *why)
{
    log_warn("transcode %s/%s: %s: response aborted", gen->src.key.track, gen->src.key.variant, why);
    gen->done = 1;
    h2o_send(gen->req, NULL, 0, H2O_SEND_STATE_ERROR);
}

/* estimateContentLength: the end (in CHUNK) of the whole frames from
 * frame FIRST (at byte FROM) that fit in the estimate, leaving nothing or
 * room for one silent frame at least; counts them as sent. A frame that
 * does not fit ends the stream (gen->trimmed). */
static uint64_t fit_frames(struct tx_gen *gen, struct talas_chunk *chunk, size_t first, uint64_t from)
{
    uint64_t to = from, left = gen->estimate - gen->sent;
    size_t min = talas_adts_silence_min(gen->src.profile.channels);

    for (size_t i = first; i < chunk->frame_count; i++) {
        uint64_t size = talas_chunk_frame_size(chunk, i);
        if (size > left || (left - size != 0 && left - size < min) || to + size > chunk->len) {
            gen->trimmed = 1;
            break;
        }
        to += size;
        left -= size;
    }
    gen->sent += to - from;
    return to;
}

/* estimateContentLength, at the end of the stream: silent frames for the
 * bytes the estimate still owes, into *VEC (the request's pool). Returns
 * 0, or -1 when nothing is owed. */
static int pad_to_estimate(struct tx_gen *gen, h2o_iovec_t *vec)
{
    size_t left = (size_t)(gen->estimate - gen->sent);
    uint8_t *pad;

    if (left == 0)
        return -1;
    pad = h2o_mem_alloc_pool(&gen->req->pool, left);
    if (talas_adts_silence(pad, left, gen->src.profile.sample_rate, gen->src.profile.channels) < 0) {
        /* cannot happen: fit_frames leaves 0 or a fillable length */
        log_error("transcode %s/%s: %zu bytes of padding cannot be made", gen->src.key.track,
                  gen->src.key.variant, left);
        memset(pad, 0, left);
    }
    gen->sent += left;
    *vec = h2o_iovec_init(pad, left);
    return 0;
}

/* Sends from CHUNK, chunk C of the stream (a reference the generator now
 * holds until h2o asks for more). */
static void send_chunk(struct tx_gen *gen, uint32_t c, struct talas_chunk *chunk)
{
    h2o_iovec_t vec[2];
    size_t first_frame = 0, nvec = 1;
    uint64_t from, to;

    gen->held = chunk;
    if (gen->exact) {
        uint64_t base = gen->chunk_offsets[c];
        if (chunk->len != gen->chunk_offsets[c + 1] - base) {
            fail(gen, "a chunk does not have its announced size");
            return;
        }
        from = gen->pos - base;
        to = chunk->len;
        if (gen->end - base < to)
            to = gen->end - base;
        gen->pos = base + to;
    } else {
        from = 0;
        if (gen->skip_frames > 0) {
            for (size_t i = 0; i < gen->skip_frames && i < chunk->frame_count; i++)
                from += talas_chunk_frame_size(chunk, i);
            first_frame = gen->skip_frames;
            gen->skip_frames = 0;
            if (from > chunk->len)
                from = chunk->len;
        }
        to = chunk->len;
        gen->chunk = c + 1;
        if (gen->estimate > 0)
            to = fit_frames(gen, chunk, first_frame, from);
    }
    if (!gen->trimmed)
        read_ahead(gen, c);
    vec[0] = h2o_iovec_init(chunk->data + from, (size_t)(to - from));
    if (gen->exact ? gen->pos >= gen->end : gen->chunk >= gen->src.layout.chunks || gen->trimmed) {
        gen->done = 1;
        if (gen->estimate > 0 && pad_to_estimate(gen, &vec[1]) == 0)
            nvec = 2;
        h2o_send(gen->req, vec, nvec, H2O_SEND_STATE_FINAL);
    } else {
        h2o_send(gen->req, vec, 1, H2O_SEND_STATE_IN_PROGRESS);
    }
}

/* The stream's first bytes (the MP3 Info frame), from its layout alone:
 * made only for a response that starts there, not for every range. */
static int make_header(struct tx_gen *gen)
{
    struct talas_buf header = {0};
    int rc = talas_transcode_header(&gen->src.profile, &gen->src.layout, &header);

    if (rc == 0 && header.len == gen->header.len)
        gen->header = h2o_strdup(&gen->req->pool, header.data, header.len);
    else
        rc = -1;
    talas_buf_free(&header);
    return rc;
}

/* Whether the HTTP/1.1 listener of REQ has closed its connection (a FIN or
 * a reset, as nginx tells a client that went away while its upstream
 * works): what it may still send, a pipelined request, stays unread. An
 * HTTP/2 stream's end is h2o's to see. */
static int peer_gone(h2o_req_t *req)
{
    h2o_socket_t *sock;
    char byte;
    ssize_t n;

    if (req->version >= 0x200 || req->conn->callbacks->get_socket == NULL ||
        (sock = req->conn->callbacks->get_socket(req->conn)) == NULL)
        return 0;
    do
        n = recv(h2o_socket_get_fd(sock), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    while (n == -1 && errno == EINTR);
    return n == 0 || (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK);
}

static h2o_timeout_t *peer_timeout(h2o_loop_t *loop)
{
    static h2o_timeout_t t;
    static h2o_loop_t *initialized;

    if (initialized != loop) {
        h2o_timeout_init(loop, &t, PEER_CHECK_MS);
        initialized = loop;
    }
    return &t;
}

static void on_peer_check(h2o_timeout_entry_t *entry)
{
    struct tx_gen *gen = H2O_STRUCT_FROM_MEMBER(struct tx_gen, peer_check, entry);

    if (gen->waiter.supply == NULL)
        return;
    if (!peer_gone(gen->req)) {
        h2o_timeout_link(gen->req->conn->ctx->loop, peer_timeout(gen->req->conn->ctx->loop),
                         &gen->peer_check);
        return;
    }
    /* nobody to send to: stop the encodes for this response now */
    cancel_encodes(gen);
    gen->done = 1;
    h2o_send(gen->req, NULL, 0, H2O_SEND_STATE_ERROR);
}

static void on_chunk(struct talas_chunk_waiter *w, enum talas_chunk_status status, struct talas_chunk *chunk)
{
    struct tx_gen *gen = w->data;

    if (h2o_timeout_is_linked(&gen->peer_check))
        h2o_timeout_unlink(&gen->peer_check);

    if (status != TALAS_CHUNK_OK) {
        fail(gen, status == TALAS_CHUNK_RETRY ? "the chunk is not available now"
                                              : "the chunk could not be encoded");
        return;
    }
    send_chunk(gen, gen->asked, chunk);
}

static void send_next(struct tx_gen *gen)
{
    unsigned flags;

    talas_chunk_release(gen->held);
    gen->held = NULL;
    if (gen->exact && gen->pos >= gen->end) {
        gen->done = 1;
        h2o_send(gen->req, NULL, 0, H2O_SEND_STATE_FINAL);
        return;
    }
    if (gen->exact && gen->pos < gen->header.len) {
        if (gen->header.base == NULL && make_header(gen) != 0) {
            fail(gen, "no stream header for this layout");
            return;
        }
        uint64_t to = gen->header.len < gen->end ? gen->header.len : gen->end;
        h2o_iovec_t vec = h2o_iovec_init(gen->header.base + gen->pos, (size_t)(to - gen->pos));
        gen->pos = to;
        if (gen->pos >= gen->end)
            gen->done = 1;
        h2o_send(gen->req, &vec, 1, gen->done ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
        return;
    }
    /* the response's first chunk is its cache hit or miss */
    flags = TALAS_CHUNK_URGENT | (gen->counted ? 0 : TALAS_CHUNK_COUNT);
    gen->counted = 1;
    gen->asked = gen->exact ? chunk_of(gen, gen->pos) : gen->chunk;
    if (gen->found != NULL) {
        struct talas_chunk *found = gen->found;
        gen->found = NULL;
        if (gen->found_index == gen->asked) {
            if (flags & TALAS_CHUNK_COUNT)
                talas_chunk_count_hit(&gen->src);
            send_chunk(gen, gen->asked, found);
            return;
        }
        talas_chunk_release(found);
    }
    gen->waiter.cb = on_chunk;
    gen->waiter.data = gen;
    talas_chunk_get(&gen->src, gen->asked, flags, &gen->waiter); /* on_chunk goes on */
    if (gen->waiter.supply != NULL && !h2o_timeout_is_linked(&gen->peer_check)) {
        gen->peer_check.cb = on_peer_check;
        h2o_timeout_link(gen->req->conn->ctx->loop, peer_timeout(gen->req->conn->ctx->loop),
                         &gen->peer_check);
    }
}

static void do_proceed(h2o_generator_t *_gen, h2o_req_t *req)
{
    struct tx_gen *gen = (void *)_gen;

    if (!gen->done)
        send_next(gen);
}

static void do_stop(h2o_generator_t *_gen, h2o_req_t *req)
{
    gen_dispose(_gen);
}

/* ------------------------------------------------------------- response */

/* Whether some chunk the response covers is missing from the cache: then it
 * encodes, and needs a transcode slot (transcode_limit.h). The same look-up
 * takes the chunks it would read ahead: found too, they are not claimed
 * (a cached transcode's range then costs one read of the cache before its
 * chunk's, not three). */
static int needs_encode(struct tx_gen *gen)
{
    uint32_t first, last, ahead;

    if (gen->exact) {
        uint64_t from = gen->pos < gen->header.len ? gen->header.len : gen->pos;
        if (from >= gen->end)
            return 0;
        first = chunk_of(gen, from);
        last = chunk_of(gen, gen->end - 1);
    } else {
        first = gen->chunk;
        last = gen->src.layout.chunks - 1;
    }
    ahead = last + READ_AHEAD < gen->src.layout.chunks ? last + READ_AHEAD : gen->src.layout.chunks - 1;
    if (talas_chunk_cached(&gen->src.key, first, ahead, &gen->found)) {
        gen->cached_to = ahead + 1;
    } else if (ahead == last || !talas_chunk_cached(&gen->src.key, first, last, &gen->found)) {
        return 1;
    }
    gen->found_index = first;
    return 0;
}

struct offsets_scan {
    h2o_req_t *req;
    uint64_t *offsets;
};

static void add_offset(void *arg, uint32_t index, uint32_t count, const struct talas_chunk *chunk)
{
    struct offsets_scan *scan = arg;

    if (index == 0) {
        scan->offsets = h2o_mem_alloc_pool(&scan->req->pool, sizeof(uint64_t) * (count + 1));
        scan->offsets[0] = 0;
    }
    scan->offsets[index + 1] = scan->offsets[index] + chunk->len;
}

/* The absolute offsets of every chunk of a fully cached transcode whose
 * sizes are only known from its records; -1 when a chunk is missing. */
static int cached_offsets(h2o_req_t *req, struct tx_gen *gen)
{
    struct offsets_scan scan = {req, NULL};
    uint32_t n = gen->src.layout.chunks;

    if (talas_chunk_scan(&gen->src.key, n, add_offset, &scan) != n)
        return -1;
    gen->chunk_offsets = scan.offsets;
    return 0;
}

/*
 * The grids this worker laid out last: for each (profile, source, window),
 * the layout, the cache variant and, when the sizes are exact, every
 * chunk's offset. A busy transcode's ranges then compute none of them
 * again (the layout walks a chunk's padding pattern, the offsets every
 * chunk, the variant is formatted). Keyed by every input of the three; the
 * track is not one, two files alike having one grid. Loop thread only.
 */
#define GRIDS 8

struct grid {
    uint64_t used; /* 0: empty */
    struct talas_profile profile;
    struct talas_source_info info;
    struct talas_window window;
    int windowed, preview;
    struct talas_layout layout;
    char variant[TALAS_CACHE_VARIANT_MAX + 1];
    uint64_t *offsets; /* exact sizes: layout.chunks + 1, else NULL */
};

static struct grid grids[GRIDS];
static uint64_t grids_clock;

static int same_grid(const struct grid *g, const struct talas_profile *p,
                     const struct talas_source_info *info, const struct talas_window *win, int preview)
{
    const struct talas_profile *q = &g->profile;

    return g->used != 0 && q->codec == p->codec && q->bitrate == p->bitrate &&
           q->sample_rate == p->sample_rate && q->channels == p->channels && q->chunk_ms == p->chunk_ms &&
           q->normalize_dlu == p->normalize_dlu && strcmp(q->name, p->name) == 0 &&
           g->info.samples == info->samples && g->info.sample_rate == info->sample_rate &&
           g->info.channels == info->channels && g->info.truncated == info->truncated &&
           g->info.measured_by == info->measured_by && g->preview == preview &&
           g->windowed == (win != NULL) &&
           (win == NULL || (g->window.start == win->start && g->window.length == win->length &&
                            g->window.fade == win->fade));
}

/* The grid of (P, INFO, WIN) for a preview or not: remembered or laid out
 * now. NULL with *ERROR_R (malloc'd) when the source cannot have one. */
static const struct grid *grid_of(const struct talas_profile *p, const struct talas_source_info *info,
                                  const struct talas_window *win, int preview, char **error_r)
{
    struct grid *g = &grids[0];
    struct talas_layout *l;

    for (int i = 0; i < GRIDS; i++) {
        if (same_grid(&grids[i], p, info, win, preview)) {
            grids[i].used = ++grids_clock;
            return &grids[i];
        }
        if (grids[i].used < g->used)
            g = &grids[i];
    }
    free(g->offsets);
    memset(g, 0, sizeof(*g));
    l = &g->layout;
    if (talas_layout_compute(p, info, win, l, error_r) != 0)
        return NULL;
    g->profile = *p;
    g->info = *info;
    if (win != NULL)
        g->window = *win;
    g->windowed = win != NULL;
    g->preview = preview;
    /* the settings are in the name: a profile changed in the configuration
     * is another variant, never a stale one */
    if (preview) {
        snprintf(g->variant, sizeof(g->variant), "pv.%" PRIu64 ".%" PRIu64 ".%u", l->window.start,
                 l->window.length, p->bitrate / 1000);
        talas_transcode_variant_normalized(p, g->variant);
    } else {
        talas_transcode_variant(p, l, g->variant);
    }
    if (l->exact_size) {
        g->offsets = xmalloc(sizeof(uint64_t) * (l->chunks + 1));
        for (uint32_t c = 0; c < l->chunks; c++)
            g->offsets[c] = talas_layout_frame_offset(l, talas_layout_chunk_start(l, c));
        g->offsets[l->chunks] = l->total_size;
    }
    g->used = ++grids_clock;
    return g;
}

static void start_response(struct tx_request *rq, const struct talas_source_info *info)
{
    const struct talas_worker_ctx *ctx = rq->ctx;
    const struct talas_config *conf = ctx->conf;
    h2o_req_t *req = rq->req;
    struct talas_range ranges[TALAS_RANGE_MAX];
    struct talas_window window, *win = NULL;
    const struct grid *grid;
    const struct talas_layout *layout;
    struct tx_gen *gen;
    const h2o_iovec_t *range_hdr, *if_range;
    enum talas_range_verdict verdict = TALAS_RANGE_IGNORE;
    size_t range_count = 0, etag_len;
    uint64_t total = 0, rep_start = 0;
    char etag[96], *lm, *error = NULL;
    struct tm tm;
    time_t mtime = (time_t)(rq->key.identity.mtime_ns / 1000000000);
    int status;

    /* a start at or past the end has nothing to play: no 200 of a lone
     * frame, no guess; the answer says how long the track is */
    if (rq->t > 0 && rq->t * info->sample_rate >= (double)info->samples) {
        talas_http_send_error(req, 416, "start_past_end",
                              "t=%.3f is at or past the end: the track lasts %.3f s", rq->t,
                              (double)info->samples / info->sample_rate);
        return;
    }
    if (rq->preview) {
        uint64_t rate = info->sample_rate, start;
        if (conf->preview_start_permille >= 0)
            start = info->samples * (uint64_t)conf->preview_start_permille / 1000;
        else
            start = conf->preview_start_ms * rate / 1000;
        window.length = conf->preview_duration_ms * rate / 1000;
        /* a track shorter than a preview: the whole of it; a start too late
         * for a whole preview: the last preview.duration of the track */
        if (window.length >= info->samples)
            start = 0;
        else if (start + window.length > info->samples)
            start = info->samples - window.length;
        window.start = start;
        window.fade = PREVIEW_FADE_MS * rate / 1000;
        win = &window;
    }
    if ((grid = grid_of(&rq->profile, info, win, rq->preview, &error)) == NULL) {
        log_warn("transcode of %s (%s): %s", rq->key.track, rq->path, error);
        free(error);
        talas_http_send_error(req, 422, "undecodable", "this track cannot be transcoded");
        return;
    }
    layout = &grid->layout;

    gen = h2o_mem_alloc_shared(&req->pool, sizeof(*gen), gen_dispose);
    memset(gen, 0, sizeof(*gen));
    gen->super.proceed = do_proceed;
    gen->super.stop = do_stop;
    gen->req = req;
    gen->src.key = rq->key;
    snprintf(gen->src.path, sizeof(gen->src.path), "%s", rq->path);
    gen->src.profile = rq->profile;
    gen->src.layout = *layout;
    layout = &gen->src.layout; /* the grid's slot may go to another before the response ends */
    memcpy(gen->src.key.variant, grid->variant, sizeof(grid->variant));

    if (layout->exact_size) {
        gen->exact = 1;
        gen->chunk_offsets = h2o_mem_alloc_pool(&req->pool, sizeof(uint64_t) * (layout->chunks + 1));
        memcpy(gen->chunk_offsets, grid->offsets, sizeof(uint64_t) * (layout->chunks + 1));
        gen->header = h2o_iovec_init(NULL, layout->header_size); /* made when a range reaches it */
        total = layout->total_size;
    } else if (cached_offsets(req, gen) == 0) {
        gen->exact = 1;
        total = gen->chunk_offsets[layout->chunks];
    }

    /* t (before the end, checked above): from the frame where that time is
     * heard */
    if (rq->t > 0) {
        uint64_t sample = (uint64_t)(rq->t * layout->out_rate) + layout->encoder_delay;
        uint64_t frame = sample / layout->frame_samples;
        if (frame >= layout->frames)
            frame = layout->frames - 1;
        if (gen->exact && layout->exact_size) {
            rep_start = talas_layout_frame_offset(layout, frame);
        } else if (gen->exact) {
            /* fully cached AAC: the frame's offset from the records */
            struct talas_chunk *chunk;
            uint32_t c = talas_layout_chunk_of_frame(layout, frame);
            rep_start = gen->chunk_offsets[c];
            if (talas_chunk_lookup(&gen->src.key, c, &chunk) == 0) {
                for (size_t i = 0; i < frame - talas_layout_chunk_start(layout, c) && i < chunk->frame_count;
                     i++)
                    rep_start += talas_chunk_frame_size(chunk, i);
                talas_chunk_release(chunk);
            }
        } else {
            gen->chunk = talas_layout_chunk_of_frame(layout, frame);
            gen->skip_frames = (size_t)(frame - talas_layout_chunk_start(layout, gen->chunk));
        }
    }

    /* estimateContentLength, when the length is not known: the frames
     * left at the profile's rate plus their ADTS headers; never less than
     * one silent frame (the body is then padded or cut to it) */
    if (!gen->exact && rq->estimate && rq->profile.codec == TALAS_CODEC_AAC &&
        (rq->profile.channels == 1 || rq->profile.channels == 2)) {
        uint64_t first =
            (uint64_t)gen->chunk < layout->chunks ? talas_layout_chunk_start(layout, gen->chunk) : 0;
        uint64_t frames = layout->frames - first - gen->skip_frames;
        double per_frame = (double)rq->profile.bitrate * layout->frame_samples / 8.0 / layout->out_rate + 7.0;
        size_t min = talas_adts_silence_min(rq->profile.channels);
        gen->estimate = (uint64_t)(frames * per_frame + 0.5);
        if (gen->estimate < min)
            gen->estimate = min;
    }

    {
        size_t vlen = strnlen(gen->src.key.variant, sizeof(gen->src.key.variant));
        char *p = talas_http_put_etag_start(etag, mtime, rq->key.identity.size);
        *p++ = '-';
        memcpy(p, gen->src.key.variant, vlen);
        p += vlen;
        *p++ = '-';
        p = talas_http_put_u64(p, rep_start, 16);
        *p++ = '"';
        *p = '\0';
        etag_len = (size_t)(p - etag);
    }
    lm = h2o_mem_alloc_pool(&req->pool, H2O_TIMESTR_RFC1123_LEN + 1);
    gmtime_r(&mtime, &tm);
    h2o_time2str_rfc1123(lm, &tm);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ETAG, NULL,
                   h2o_strdup(&req->pool, etag, etag_len).base, etag_len);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_LAST_MODIFIED, NULL, lm, H2O_TIMESTR_RFC1123_LEN);
    {
        h2o_iovec_t cc = talas_http_media_cache_control(req, &rq->claims);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, cc.base, cc.len);
    }
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ACCEPT_RANGES, NULL,
                   gen->exact ? "bytes" : "none", gen->exact ? 5 : 4);
    if ((status = talas_http_preconditions(req, etag, etag_len, (int64_t)mtime)) != 0) {
        talas_http_send_precondition(req, status);
        return;
    }

    gen->pos = rep_start;
    gen->end = gen->exact ? total : UINT64_MAX;
    req->res.status = 200;
    req->res.reason = "OK";
    if (gen->exact && (range_hdr = talas_http_header(req, H2O_TOKEN_RANGE)) != NULL) {
        if_range = talas_http_header(req, H2O_TOKEN_IF_RANGE);
        if (if_range == NULL ||
            talas_range_if_range(if_range->base, if_range->len, etag, etag_len, (int64_t)mtime))
            verdict =
                talas_range_parse(range_hdr->base, range_hdr->len, total - rep_start, ranges, &range_count);
        if (verdict == TALAS_RANGE_UNSATISFIABLE) {
            talas_http_content_range(req, 0, 0, total - rep_start);
            talas_http_send_error(req, 416, "range_not_satisfiable",
                                  "the requested range is not satisfiable");
            return;
        }
        /* one range; several get the whole representation */
        if (verdict == TALAS_RANGE_PARTIAL && range_count == 1) {
            talas_http_content_range(req, ranges[0].start, ranges[0].end, total - rep_start);
            gen->pos = rep_start + ranges[0].start;
            gen->end = rep_start + ranges[0].end;
            req->res.status = 206;
            req->res.reason = "Partial Content";
        }
    }
    /* transcode.max_concurrent*: a response that encodes needs a slot, one
     * served from the cache none */
    if (!talas_http_method_is(req, "HEAD") && needs_encode(gen) && talas_transcode_slot_take(req) != 0)
        return;
    if (gen->exact)
        req->res.content_length = gen->end - gen->pos;
    else if (gen->estimate > 0)
        req->res.content_length = gen->estimate;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   rq->profile.codec == TALAS_CODEC_MP3 ? "audio/mpeg" : "audio/aac",
                   rq->profile.codec == TALAS_CODEC_MP3 ? 10 : 9);
    talas_worker_ctx_count_stream(ctx, req, rq->key.track); /* LiveStats listeners */
    h2o_start_response(req, &gen->super);
    if (talas_http_method_is(req, "HEAD") || (gen->exact && gen->pos >= gen->end)) {
        gen->done = 1;
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
        return;
    }
    send_next(gen);
}

static void on_measured(struct talas_measure_waiter *w, int status, const struct talas_source_info *info)
{
    struct tx_request *rq = w->data;

    if (status != 0) {
        talas_http_send_error(rq->req, 422, "undecodable", "this track cannot be decoded");
        return;
    }
    start_response(rq, info);
}

static void request_dispose(void *p)
{
    struct tx_request *rq = p;

    talas_transcode_measure_cancel(&rq->measure);
}

static int start(const struct talas_worker_ctx *ctx, h2o_req_t *req, struct tx_request *rq, int preview);

int talas_transcode_serve(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *id, size_t len,
                          int preview)
{
    struct tx_request *rq;

    rq = h2o_mem_alloc_shared(&req->pool, sizeof(*rq), request_dispose);
    memset(rq, 0, sizeof(*rq));
    if (talas_http_track_request(req, id, len, rq->key.track) != 0)
        return 0;
    /* the token first: nothing is read, opened or encoded for a refused request */
    if (talas_http_authorize(ctx, req, rq->key.track, preview ? TALAS_TOKEN_PREVIEW : TALAS_TOKEN_STREAM,
                             &rq->claims) != 0)
        return 0;
    if (preview) {
        talas_profile_builtin("mp3", &rq->profile);
    } else if (parse_params(ctx, req, &rq->profile, &rq->t) != 0) {
        return 0;
    }
    if (talas_http_normalize_param(req, &rq->normalize_dlu) != 0)
        return 0;
    if (!preview)
        talas_shares_count(ctx, &rq->claims, talas_shares_from_start(req), 0);
    return start(ctx, req, rq, preview);
}

int talas_transcode_serve_authorized(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *id,
                                     const struct talas_config_profile *cp, double t, int estimate)
{
    struct tx_request *rq;

    rq = h2o_mem_alloc_shared(&req->pool, sizeof(*rq), request_dispose);
    memset(rq, 0, sizeof(*rq));
    snprintf(rq->key.track, sizeof(rq->key.track), "%s", id);
    rq->claims.exp = time(NULL); /* a user's answer: "private" (talas_http_media_cache_control) */
    talas_transcode_profile(ctx->conf, cp, &rq->profile);
    rq->t = t;
    rq->estimate = estimate;
    return start(ctx, req, rq, 0);
}

/* Measures the source of RQ, whose parameters are set; on_measured goes on. */
static int start(const struct talas_worker_ctx *ctx, h2o_req_t *req, struct tx_request *rq, int preview)
{
    char *path;

    if (talas_stream_source_cached(ctx, req, rq->key.track, &path, &rq->key.identity) != 0)
        return 0;
    if (talas_http_normalize_apply(ctx, req, rq->key.track, &rq->key.identity, rq->normalize_dlu,
                                   &rq->profile) != 0)
        return 0;
    rq->ctx = ctx;
    rq->req = req;
    rq->path = path;
    rq->preview = preview;
    rq->measure.cb = on_measured;
    rq->measure.data = rq;
    talas_transcode_measure(&rq->key, rq->path, &rq->measure); /* on_measured goes on */
    return 0;
}
