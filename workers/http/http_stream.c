/*
 * http_stream.c - serves a track's original file, with Range.
 *
 * Entry point: talas_stream_original. The track id is looked up in the
 * catalog (a read transaction held only for the look-up); the file is then
 * opened through h2o's per-context file cache, which the worker clears after
 * every loop iteration, so concurrent requests share one descriptor while a
 * replaced file is noticed on the next iteration (h2o's file handler does
 * the same). Finding the file and evaluating preconditions are shared with
 * the other media routes (http_source.c).
 *
 * The body goes out one of two ways:
 *   - cleartext HTTP/1.x, one range or the whole file: h2o writes the
 *     headers, then the bytes go from the page cache to the socket with
 *     sendfile(2), never through user space (as nginx's "sendfile on").
 *     Copying into the socket was 40% of a worker's time before this;
 *   - HTTP/2, one range or the whole file: h2o pulls the body (its "pull"
 *     output stream, as its own file handler does), and each pread() lands
 *     in the connection's write buffer, right after the DATA frame's
 *     header: one copy, where a buffer of the response's own, then copied
 *     into frames, took two (0.62x h2o's whole-file rate before);
 *   - HTTP/1.x over TLS, and multipart: pread() into one buffer per
 *     response, handed to h2o, which frames (or encrypts) and writes it.
 * Either way the client's pace drives it (backpressure), and one call
 * moves at most SENDFILE_SLICE or one buffer, so a fast client on a big
 * file cannot keep the loop from the other connections.
 *
 * When auth.required is true, the token is checked (talas_http_authorize)
 * before the catalog is read or any file is opened: a refused request
 * learns nothing, not even whether the track exists. The check is made once,
 * when the request arrives: a response that started before its token
 * expired runs to its end; every later request (a player's next Range)
 * needs a token that is still valid. Token-checked answers are
 * "Cache-Control: private".
 *
 * Logs: a warning when a file that the catalog lists cannot be opened, or
 * is shorter than when its response started (replaced or truncated); the
 * refusals of the access check (http_authorize.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/catalog.h"
#include "http/conn_limits.h"
#include "http/http_authorize.h"
#include "http/http_shares.h"
#include "http/http_response.h"
#include "http/http_source.h"
#include "http/http_stream.h"
#include "media/track_file.h"
#include "core/log.h"
#include "http/range.h"

/* Largest read per proceed() call; a response never holds more. */
#define STREAM_BUF_MAX (128 * 1024)
/* Most bytes one sendfile() turn moves before the loop serves others. */
#define SENDFILE_SLICE (1024 * 1024)
#define BOUNDARY_LEN 20

struct stream_gen {
    h2o_generator_t super; /* must stay first: h2o hands it back */
    h2o_req_t *req;
    h2o_filecache_ref_t *ref;
    uint64_t file_size;
    struct talas_range *ranges; /* NULL: the whole file */
    size_t range_count, range_index;
    uint64_t off, remaining; /* position in the current range */
    char *buf;
    size_t buf_size;
    /* multipart only */
    h2o_iovec_t mime;
    char boundary[BOUNDARY_LEN + 1];
    int part_started;
    char part_header[256];
    char trailer[sizeof("\r\n--") + BOUNDARY_LEN + sizeof("--\r\n")];
    /* set when the body goes out with sendfile() on this socket */
    h2o_socket_t *sendfile_sock;
};

static void gen_dispose(void *p)
{
    struct stream_gen *gen = p;

    if (gen->ref != NULL) {
        h2o_filecache_close_file(gen->ref);
        gen->ref = NULL;
    }
}

static size_t part_header(struct stream_gen *gen, const struct talas_range *r, char *out, size_t size)
{
    int n = snprintf(out, size,
                     "\r\n--%s\r\nContent-Type: %.*s\r\nContent-Range: bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64
                     "\r\n\r\n",
                     gen->boundary, (int)gen->mime.len, gen->mime.base, r->start, r->end - 1, gen->file_size);
    return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

static size_t multipart_trailer_len(const struct stream_gen *gen)
{
    return sizeof("\r\n--") - 1 + BOUNDARY_LEN + sizeof("--\r\n") - 1;
}

static void sendfile_turn(struct stream_gen *gen);

/* TCP_CORK holds the headers h2o writes until the file's first bytes join
 * them: one segment train instead of a lone header packet that costs the
 * client an extra wake-up (nginx's tcp_nopush). */
static void set_cork(h2o_socket_t *sock, int on)
{
    setsockopt(h2o_socket_get_fd(sock), IPPROTO_TCP, TCP_CORK, &on, sizeof(on));
}

/*
 * Called when the socket can take more. While a response waits for the
 * socket, its connection's parking slot (conn_limits.h) points at that
 * response. HTTP/1.1 carries one response at a time, so there is never
 * more than one.
 */
static void on_sendfile_writable(h2o_socket_t *sock, const char *err)
{
    struct stream_gen *gen = talas_conn_parked(sock);

    talas_conn_set_parked(sock, NULL);
    if (err != NULL) {
        h2o_send(gen->req, NULL, 0, H2O_SEND_STATE_ERROR);
        return;
    }
    sendfile_turn(gen);
}

static void sendfile_turn(struct stream_gen *gen)
{
    int sock_fd = h2o_socket_get_fd(gen->sendfile_sock);
    size_t moved = 0;

    while (gen->remaining > 0) {
        off_t off = (off_t)gen->off;
        size_t want = gen->remaining < SENDFILE_SLICE ? (size_t)gen->remaining : SENDFILE_SLICE;
        ssize_t n;

        if (moved >= SENDFILE_SLICE)
            goto wait;
        n = sendfile(sock_fd, gen->ref->fd, &off, want);
        if (n > 0) {
            gen->off += (uint64_t)n;
            gen->remaining -= (uint64_t)n;
            gen->req->bytes_sent += (uint64_t)n;
            moved += (size_t)n;
            /* less than asked: the socket buffer is full, and asking again
             * would only return EAGAIN (nginx does not ask either) */
            if ((size_t)n < want)
                goto wait;
            continue;
        }
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1 && errno == EAGAIN)
            goto wait;
        if (n == 0)
            log_warn("%s: \"%s\" is shorter than when its response started (truncated or replaced)", __func__,
                     gen->ref->_path);
        /* a client gone away (EPIPE, ECONNRESET) is no news: not logged */
        h2o_send(gen->req, NULL, 0, H2O_SEND_STATE_ERROR);
        return;
    }
    set_cork(gen->sendfile_sock, 0);
    h2o_send(gen->req, NULL, 0, H2O_SEND_STATE_FINAL);
    return;

wait:
    talas_conn_set_parked(gen->sendfile_sock, gen);
    h2o_socket_notify_write(gen->sendfile_sock, on_sendfile_writable);
}

static void do_proceed(h2o_generator_t *_gen, h2o_req_t *req)
{
    struct stream_gen *gen = (void *)_gen;

    if (gen->sendfile_sock != NULL) {
        sendfile_turn(gen);
        return;
    }
    h2o_iovec_t vecs[3];
    size_t nvecs = 0, want;
    ssize_t rret;
    int last;

    if (gen->ranges != NULL && gen->range_count > 1 && !gen->part_started) {
        size_t n =
            part_header(gen, &gen->ranges[gen->range_index], gen->part_header, sizeof(gen->part_header));
        vecs[nvecs++] = h2o_iovec_init(gen->part_header, n);
        gen->part_started = 1;
    }

    want = gen->remaining < gen->buf_size ? (size_t)gen->remaining : gen->buf_size;
    do {
        rret = pread(gen->ref->fd, gen->buf, want, (off_t)gen->off);
    } while (rret == -1 && errno == EINTR);
    if (rret <= 0) {
        /* the file shrank (or failed) under us: the promised length cannot
         * be delivered, so the response is aborted, never padded */
        log_warn("%s: pread(\"%s\") at %" PRIu64 " failed: %s", __func__, gen->ref->_path, gen->off,
                 rret == 0 ? "file truncated" : strerror(errno));
        h2o_send(req, NULL, 0, H2O_SEND_STATE_ERROR);
        return;
    }
    vecs[nvecs++] = h2o_iovec_init(gen->buf, (size_t)rret);
    gen->off += (uint64_t)rret;
    gen->remaining -= (uint64_t)rret;

    last = 0;
    if (gen->remaining == 0) {
        if (gen->ranges == NULL || gen->range_index + 1 == gen->range_count) {
            last = 1;
            if (gen->ranges != NULL && gen->range_count > 1) {
                int n = snprintf(gen->trailer, sizeof(gen->trailer), "\r\n--%s--\r\n", gen->boundary);
                vecs[nvecs++] = h2o_iovec_init(gen->trailer, (size_t)n);
            }
        } else {
            gen->range_index++;
            gen->off = gen->ranges[gen->range_index].start;
            gen->remaining = gen->ranges[gen->range_index].end - gen->off;
            gen->part_started = 0;
        }
    }
    h2o_send(req, vecs, nvecs, last ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

/* h2o's pull callback (HTTP/2, one range or the whole file): fills BUF
 * (the room of one DATA frame in the connection's write buffer) from the
 * file, and shortens it to what was read. h2o counts the bytes sent. */
static h2o_send_state_t do_pull(h2o_generator_t *_gen, h2o_req_t *req, h2o_iovec_t *buf)
{
    struct stream_gen *gen = (void *)_gen;
    ssize_t rret;

    if (gen->remaining < buf->len)
        buf->len = (size_t)gen->remaining;
    do {
        rret = pread(gen->ref->fd, buf->base, buf->len, (off_t)gen->off);
    } while (rret == -1 && errno == EINTR);
    if (rret <= 0) {
        log_warn("%s: pread(\"%s\") at %" PRIu64 " failed: %s", __func__, gen->ref->_path, gen->off,
                 rret == 0 ? "file truncated" : strerror(errno));
        buf->len = 0;
        return H2O_SEND_STATE_ERROR;
    }
    buf->len = (size_t)rret;
    gen->off += (uint64_t)rret;
    gen->remaining -= (uint64_t)rret;
    return gen->remaining == 0 ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS;
}

static void do_stop(h2o_generator_t *_gen, h2o_req_t *req)
{
    gen_dispose(_gen);
}

/*
 * Whether this response's body can go out with sendfile(): plain HTTP/1.x
 * on a cleartext socket, one contiguous range, and no h2o filter between
 * the generator and the socket (the final output stream is the only one).
 * Call after h2o_start_response().
 */
static int use_sendfile(h2o_req_t *req, struct stream_gen *gen)
{
    h2o_socket_t *sock;

    if (req->version >= 0x200 || (gen->ranges != NULL && gen->range_count > 1))
        return 0;
    if (req->_ostr_top == NULL || req->_ostr_top->next != NULL)
        return 0;
    if (req->conn->callbacks->get_socket == NULL ||
        (sock = req->conn->callbacks->get_socket(req->conn)) == NULL || sock->ssl != NULL)
        return 0;
    gen->sendfile_sock = sock;
    return 1;
}

/* The headers of every successful or 304 answer (not of errors: a 416 must
 * not be cached as if it were the file). */
static void add_validators(h2o_req_t *req, const char *etag, size_t etag_len, const char *lm,
                           h2o_iovec_t cache_control)
{
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ETAG, NULL,
                   h2o_strdup(&req->pool, etag, etag_len).base, etag_len);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_LAST_MODIFIED, NULL, lm, H2O_TIMESTR_RFC1123_LEN);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, cache_control.base,
                   cache_control.len);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ACCEPT_RANGES, NULL, H2O_STRLIT("bytes"));
}

static int serve_original(const struct talas_worker_ctx *ctx, h2o_req_t *req, char *id_buf,
                          const struct talas_token_claims *claims);

int talas_stream_original(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *id, size_t len)
{
    char id_buf[TALAS_TRACK_ID_LEN + 1];
    struct talas_token_claims claims;

    if (talas_http_track_request(req, id, len, id_buf) != 0)
        return 0;
    if (talas_http_authorize(ctx, req, id_buf, TALAS_TOKEN_STREAM | TALAS_TOKEN_ORIGINAL, &claims) != 0)
        return 0;
    talas_shares_count(ctx, &claims, talas_shares_from_start(req), 0);
    return serve_original(ctx, req, id_buf, &claims);
}

int talas_stream_original_authorized(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *id)
{
    char id_buf[TALAS_TRACK_ID_LEN + 1];
    struct talas_token_claims claims;

    memset(&claims, 0, sizeof(claims));
    claims.exp = time(NULL); /* a user's answer: "private" (talas_http_media_cache_control) */
    snprintf(id_buf, sizeof(id_buf), "%s", id);
    return serve_original(ctx, req, id_buf, &claims);
}

static int serve_original(const struct talas_worker_ctx *ctx, h2o_req_t *req, char *id_buf,
                          const struct talas_token_claims *claims)
{
    struct talas_range ranges[TALAS_RANGE_MAX];
    struct stream_gen *gen;
    h2o_filecache_ref_t *ref;
    const h2o_iovec_t *range_hdr, *if_range;
    enum talas_range_verdict verdict = TALAS_RANGE_IGNORE;
    size_t range_count = 0, etag_len;
    uint64_t size, content_length;
    char etag[64], *path, *lm;
    h2o_iovec_t mime, cache_control;
    int64_t mtime;
    int status, rc;

    cache_control = talas_http_media_cache_control(req, claims);
    if ((rc = talas_stream_lookup(ctx, req, id_buf, &path, &mime)) != 0) {
        if (rc == MDB_NOTFOUND)
            talas_http_send_error(req, 404, "not_found", "no such track");
        else
            talas_http_send_error(req, 500, "storage_error", "the catalog could not be read");
        return 0;
    }

    if ((ref = talas_stream_open_cached(req, id_buf, path)) == NULL)
        return 0;

    size = (uint64_t)ref->st.st_size;
    mtime = (int64_t)ref->st.st_mtime;
    /* nginx's entity-tag form, "mtime-size" in hex: a file served by both
     * has the same validator */
    {
        char *p = talas_http_put_etag_start(etag, mtime, size);
        *p++ = '"';
        *p = '\0';
        etag_len = (size_t)(p - etag);
    }
    lm = h2o_mem_alloc_pool(&req->pool, H2O_TIMESTR_RFC1123_LEN + 1);
    h2o_filecache_get_last_modified(ref, lm);

    if ((status = talas_http_preconditions(req, etag, etag_len, mtime)) != 0) {
        h2o_filecache_close_file(ref);
        if (status == 304)
            add_validators(req, etag, etag_len, lm, cache_control);
        talas_http_send_precondition(req, status);
        return 0;
    }

    if ((range_hdr = talas_http_header(req, H2O_TOKEN_RANGE)) != NULL) {
        if_range = talas_http_header(req, H2O_TOKEN_IF_RANGE);
        if (if_range == NULL || talas_range_if_range(if_range->base, if_range->len, etag, etag_len, mtime))
            verdict = talas_range_parse(range_hdr->base, range_hdr->len, size, ranges, &range_count);
    }
    if (verdict == TALAS_RANGE_UNSATISFIABLE) {
        h2o_filecache_close_file(ref);
        talas_http_content_range(req, 0, 0, size);
        talas_http_send_error(req, 416, "range_not_satisfiable", "the requested range is not satisfiable");
        return 0;
    }

    add_validators(req, etag, etag_len, lm, cache_control);
    gen = h2o_mem_alloc_shared(&req->pool, sizeof(*gen), gen_dispose);
    memset(gen, 0, sizeof(*gen));
    gen->super.proceed = do_proceed;
    gen->super.stop = do_stop;
    gen->req = req;
    gen->ref = ref;
    gen->file_size = size;
    gen->mime = mime;

    if (verdict == TALAS_RANGE_PARTIAL) {
        gen->ranges = h2o_mem_alloc_pool(&req->pool, sizeof(ranges[0]) * range_count);
        memcpy(gen->ranges, ranges, sizeof(ranges[0]) * range_count);
        gen->range_count = range_count;
        gen->off = ranges[0].start;
        gen->remaining = ranges[0].end - ranges[0].start;
        req->res.status = 206;
        req->res.reason = "Partial Content";
        if (range_count == 1) {
            talas_http_content_range(req, ranges[0].start, ranges[0].end, size);
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, mime.base, mime.len);
            content_length = gen->remaining;
        } else {
            char hdr[256], *ct;
            uint64_t r = ((uint64_t)h2o_rand() << 32) ^ (uint64_t)h2o_rand();
            snprintf(gen->boundary, sizeof(gen->boundary), "%020" PRIu64,
                     (uint64_t)(r % UINT64_C(10000000000000000000)));
            content_length = multipart_trailer_len(gen);
            for (size_t i = 0; i < range_count; i++)
                content_length +=
                    part_header(gen, &ranges[i], hdr, sizeof(hdr)) + (ranges[i].end - ranges[i].start);
            ct = h2o_mem_alloc_pool(&req->pool, 64);
            int n = snprintf(ct, 64, "multipart/byteranges; boundary=%s", gen->boundary);
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, ct, (size_t)n);
        }
    } else {
        gen->off = 0;
        gen->remaining = size;
        req->res.status = 200;
        req->res.reason = "OK";
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, mime.base, mime.len);
        content_length = size;
    }
    req->res.content_length = content_length;

    talas_worker_ctx_count_stream(ctx, req, id_buf); /* LiveStats listeners */
    h2o_start_response(req, &gen->super);
    if (talas_http_method_is(req, "HEAD") || content_length == 0) {
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
        return 0;
    }
    gen->buf_size = STREAM_BUF_MAX;
    {
        uint64_t biggest = 0;
        if (gen->ranges == NULL)
            biggest = size;
        else
            for (size_t i = 0; i < range_count; i++)
                if (ranges[i].end - ranges[i].start > biggest)
                    biggest = ranges[i].end - ranges[i].start;
        if (biggest < gen->buf_size)
            gen->buf_size = (size_t)biggest;
    }
    if (use_sendfile(req, gen)) {
        /* h2o writes the headers, then calls proceed for the body */
        set_cork(gen->sendfile_sock, 1);
        h2o_send(req, NULL, 0, H2O_SEND_STATE_IN_PROGRESS);
        return 0;
    }
    if (req->_ostr_top->start_pull != NULL && (gen->ranges == NULL || gen->range_count == 1)) {
        /* h2o sends the headers, then pulls the body as the stream's
         * window and the socket allow */
        req->_ostr_top->start_pull(req->_ostr_top, do_pull);
        return 0;
    }
    gen->buf = h2o_mem_alloc_pool(&req->pool, gen->buf_size);
    do_proceed(&gen->super, req);
    return 0;
}
