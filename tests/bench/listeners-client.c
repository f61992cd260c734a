/*
 * listeners-client.c - the paced listeners of scripts/bench-listeners:
 * thousands of players in one epoll process, each taking a track at its
 * real bit rate, as a browser's audio element or hls.js does.
 *
 *   talas-bench-listeners-client [options] BASE_URL SPEC_FILE
 *     -n LISTENERS  how many (default 10000)
 *     -r SECONDS    the ramp: listener i starts at i * SECONDS / LISTENERS
 *                   (default 10)
 *     -s SECONDS    how long each one plays once started (default 40)
 *     -b SECONDS    the buffer: playback starts once this much audio is in,
 *                   and a player keeps this much ahead of the playhead
 *                   (default 5)
 *     -q BYTES      the read quantum: a stream player reads when the
 *                   playback clock allows this many more bytes (default
 *                   16384); also its SO_RCVBUF and its HTTP/2 stream window
 *     -2 URL        the base URL for the HTTP/2 listeners (default BASE_URL;
 *                   nginx serves h2c on a port of its own)
 *     -v EVERY      compare the bytes of one stream listener in EVERY with
 *                   the local file (default 50)
 *
 * SPEC_FILE has one line per kind of listener, the listeners shared among
 * them by weight (round robin over the weights, so that every kind starts
 * all along the ramp):
 *   stream WEIGHT PATH SIZE BYTES_PER_SECOND [FILE]   HTTP/1.1 GET with
 *       "Range: bytes=0-" (as browsers send), read at the playback pace:
 *       the socket's receive buffer is one quantum, and the player reads
 *       only what the clock allows, so TCP holds the server back
 *   h2 WEIGHT PATH SIZE BYTES_PER_SECOND [FILE]       the same over HTTP/2
 *       (h2c by prior knowledge): the pacing is HTTP/2 flow control, the
 *       stream window one quantum, WINDOW_UPDATE only for what the clock
 *       allows
 *   hls WEIGHT PLAYLIST_PATH                          a media playlist, its
 *       init segment, then segment after segment on one keep-alive
 *       connection, each fetched whole when the buffer holds less than
 *       -b seconds ahead of the playhead
 *
 * Checks: a stream answer must be a 206 of SIZE bytes with Content-Range
 * "bytes 0-(SIZE-1)/SIZE"; a playlist, init or segment a 200 with as many
 * body bytes as its Content-Length. A wrong answer ends its listener
 * (counted wrong); a connection that breaks, or a body that ends early,
 * ends it too (counted as an error). An underrun is a playhead that
 * reaches the end of what was received (a stream) or of the last whole
 * segment (HLS) before the track ends: a stall, counted once per stall,
 * with the clock running on (the player would rebuffer; the server is
 * late either way).
 *
 * Prints "steady" on stdout once every listener has started and
 * buffered (ramp + buffer + 2 s), "ending" before the first one stops
 * (at -s seconds), then one JSON object: listeners, by kind, completed,
 * wrong, errors, underrun_listeners, stalls, bytes, ttfb_ms (p50, p99,
 * max from connect to the first body byte, and the same for the second
 * half of the ramp, started under the load of the first), stream_pace
 * (the bytes the stream listeners read over what their clocks allowed:
 * about 1 when the pacing holds), cpu_pct (this
 * process's user+system CPU over the wall time, % of one core), seconds,
 * first_wrong. Exit status 0 when it ran (whatever the answers), 1 when it
 * could not, 2 on a usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX 4096
#define PATH_MAX_LEN 600
#define TICK 0.05

enum kind { K_STREAM, K_H2, K_HLS, K_KINDS };
static const char *const kind_names[K_KINDS] = {"stream", "h2", "hls"};

enum state { S_WAIT, S_RUN, S_DONE };

struct spec {
    enum kind kind;
    int weight;
    char path[PATH_MAX_LEN];
    uint64_t size;
    double bps;
    const unsigned char *map;
    /* hls: the playlist, parsed from the first answer */
    int parsed, nseg;
    char (*seg)[PATH_MAX_LEN];
    double *dur;
};

struct listener {
    struct spec *sp;
    int idx, fd, readable, connected, verify, stalled, has_stalled, h2_end;
    enum state state;
    double t_start, t_first, t_play0;
    uint64_t received;
    /* HTTP/1.1: the response being read */
    char *head;
    size_t head_len;
    int in_body, status;
    uint64_t clen, body_left, body_read;
    char *out;
    size_t out_len, out_off;
    /* hls */
    int phase, next_seg, inflight;
    double buffered_s;
    char *body; /* the playlist */
    /* h2 */
    nghttp2_session *h2;
    int32_t stream_id;
    uint64_t consumed, h2_clen;
    int h2_status, h2_range_ok;
};

static struct {
    int listeners, verify_every;
    double ramp, seconds, buffer;
    size_t quantum;
    char host[256], port[16], host2[256], port2[16];
    struct addrinfo *addr, *addr2;
} opt = {.listeners = 10000, .ramp = 10, .seconds = 40, .buffer = 5, .quantum = 16384, .verify_every = 50};

static struct {
    uint64_t completed, wrong, errors, underrun_listeners, stalls, bytes, by_kind[K_KINDS];
    double stream_bytes, stream_due; /* what the streams read, what their clocks allowed in all */
    char first_wrong[256];
} st;

static struct spec *specs;
static int nspecs;
static struct listener *ls;
static int epfd;
static double t0;
static unsigned char scratch[65536];

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void fail(const char *fmt, ...)
{
    va_list ap;

    fputs("talas-bench-listeners-client: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 - t0;
}

static double cpu_self(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}

static void note_wrong(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void note_wrong(const char *fmt, ...)
{
    va_list ap;

    if (st.first_wrong[0] != '\0')
        return;
    va_start(ap, fmt);
    vsnprintf(st.first_wrong, sizeof(st.first_wrong), fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------ set-up */

static void parse_base(const char *url, char *host, size_t hsz, char *port, size_t psz,
                       struct addrinfo **ai_r)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    const char *p, *colon, *end;
    int rc;

    if (strncmp(url, "http://", 7) != 0)
        fail("only http:// base URLs: %s", url);
    p = url + 7;
    end = p + strcspn(p, "/");
    colon = memchr(p, ':', (size_t)(end - p));
    if (colon == NULL || (size_t)(colon - p) >= hsz || (size_t)(end - colon - 1) >= psz || end == colon + 1)
        fail("want http://HOST:PORT: %s", url);
    snprintf(host, hsz, "%.*s", (int)(colon - p), p);
    snprintf(port, psz, "%.*s", (int)(end - colon - 1), colon + 1);
    if ((rc = getaddrinfo(host, port, &hints, ai_r)) != 0)
        fail("getaddrinfo(%s:%s): %s", host, port, gai_strerror(rc));
}

static const unsigned char *map_file(const char *file, uint64_t size)
{
    struct stat sb;
    void *m;
    int fd = open(file, O_RDONLY);

    if (fd == -1 || fstat(fd, &sb) != 0)
        fail("open(\"%s\"): %s", file, strerror(errno));
    if ((uint64_t)sb.st_size != size)
        fail("%s has %jd bytes, the spec says %" PRIu64, file, (intmax_t)sb.st_size, size);
    m = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED)
        fail("mmap(\"%s\"): %s", file, strerror(errno));
    close(fd);
    return m;
}

static void read_spec(const char *file)
{
    FILE *f = fopen(file, "r");
    char line[2048];

    if (f == NULL)
        fail("fopen(\"%s\"): %s", file, strerror(errno));
    while (fgets(line, sizeof(line), f) != NULL) {
        char kind[16], path[PATH_MAX_LEN], local[1024] = "";
        struct spec *sp;
        int n;

        if (line[0] == '#' || line[strspn(line, " \t\r\n")] == '\0')
            continue;
        if ((specs = realloc(specs, (size_t)(nspecs + 1) * sizeof(*specs))) == NULL)
            fail("out of memory");
        sp = &specs[nspecs];
        memset(sp, 0, sizeof(*sp));
        if (sscanf(line, "%15s %d %599s", kind, &sp->weight, path) != 3 || sp->weight < 1)
            fail("%s: bad line: %s", file, line);
        snprintf(sp->path, sizeof(sp->path), "%s", path);
        if (strcmp(kind, "hls") == 0) {
            sp->kind = K_HLS;
        } else if (strcmp(kind, "stream") == 0 || strcmp(kind, "h2") == 0) {
            sp->kind = kind[0] == 's' ? K_STREAM : K_H2;
            n = sscanf(line, "%*s %*d %*s %" SCNu64 " %lf %1023s", &sp->size, &sp->bps, local);
            if (n < 2 || sp->size == 0 || sp->bps <= 0)
                fail("%s: bad line: %s", file, line);
            if (n == 3)
                sp->map = map_file(local, sp->size);
        } else {
            fail("%s: unknown kind %s", file, kind);
        }
        nspecs++;
    }
    fclose(f);
    if (nspecs == 0)
        fail("%s: no listener kinds", file);
}

/* --------------------------------------------------------- the pace */

/* Where the playhead is, in bytes (streams) or seconds (HLS); 0 before
 * playback starts. */
static double playhead(const struct listener *l, double t)
{
    if (l->t_play0 == 0 || t < l->t_play0)
        return 0;
    return (t - l->t_play0) * (l->sp->kind == K_HLS ? 1.0 : l->sp->bps);
}

/* How many bytes of a stream the player may hold now: the buffer ahead of
 * the playhead, never more than the file. */
static uint64_t allowed(const struct listener *l, double t)
{
    double a = playhead(l, t) + opt.buffer * l->sp->bps;

    return a >= (double)l->sp->size ? l->sp->size : (uint64_t)a;
}

static void finish(struct listener *l, int outcome)
{
    if (l->state == S_DONE)
        return;
    l->state = S_DONE;
    if (outcome == 0)
        st.completed++;
    else if (outcome == 1)
        st.wrong++;
    else
        st.errors++;
    if (l->fd != -1)
        close(l->fd);
    l->fd = -1;
    if (l->h2 != NULL)
        nghttp2_session_del(l->h2);
    l->h2 = NULL;
    free(l->head);
    free(l->out);
    free(l->body);
    l->head = l->out = l->body = NULL;
}

static void wrong(struct listener *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void wrong(struct listener *l, const char *fmt, ...)
{
    char msg[200];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    note_wrong("%s %s: %s", kind_names[l->sp->kind], l->sp->path, msg);
    finish(l, 1);
}

static void got_body(struct listener *l, const unsigned char *data, size_t n)
{
    if (l->t_first == 0)
        l->t_first = now();
    if (l->verify && data != NULL && l->sp->map != NULL && l->received + n <= l->sp->size &&
        memcmp(data, l->sp->map + l->received, n) != 0) {
        l->verify = 0;
        st.wrong++;
        note_wrong("%s %s: bytes at %" PRIu64 " differ from the file", kind_names[l->sp->kind], l->sp->path,
                   l->received);
    }
    l->received += n;
    st.bytes += n;
    st.stream_bytes += (double)n;
}

/* ---------------------------------------------------- connections */

static int open_conn(struct listener *l)
{
    struct addrinfo *ai = l->sp->kind == K_H2 ? opt.addr2 : opt.addr;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = l};
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;

    if (fd == -1) {
        note_wrong("socket(): %s", strerror(errno));
        return -1;
    }
    if (l->sp->kind == K_STREAM) {
        /* the kernel doubles it; the window follows what is read */
        int rcv = (int)opt.quantum;
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
        note_wrong("connect(): %s", strerror(errno));
        close(fd);
        return -1;
    }
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
        fail("epoll_ctl(): %s", strerror(errno));
    l->fd = fd;
    l->connected = 0;
    l->readable = 0;
    return 0;
}

static void flush_out(struct listener *l)
{
    while (l->connected && l->out != NULL && l->out_off < l->out_len) {
        ssize_t n = send(l->fd, l->out + l->out_off, l->out_len - l->out_off, MSG_NOSIGNAL);
        if (n == -1) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                finish(l, 2);
            return;
        }
        l->out_off += (size_t)n;
    }
}

/* An HTTP/1.1 request of PATH on L's connection (opened when needed). */
static void request(struct listener *l, const char *path, int range)
{
    if (l->fd == -1 && open_conn(l) != 0) {
        finish(l, 2);
        return;
    }
    free(l->out);
    l->out = malloc(PATH_MAX_LEN + 512);
    if (l->out == NULL)
        fail("out of memory");
    l->out_len = (size_t)snprintf(l->out, PATH_MAX_LEN + 512, "GET %s HTTP/1.1\r\nHost: %s:%s\r\n%s\r\n",
                                  path, opt.host, opt.port, range ? "Range: bytes=0-\r\n" : "");
    l->out_off = 0;
    l->in_body = 0;
    l->head_len = 0;
    l->inflight = 1;
    flush_out(l);
}

/* ------------------------------------------------ HTTP/1.1 answers */

static int header_value(const char *head, size_t len, const char *name, const char **v_r, size_t *vlen_r)
{
    size_t nl = strlen(name);

    for (const char *p = memchr(head, '\n', len); p != NULL && p + 1 < head + len;
         p = memchr(p + 1, '\n', (size_t)(head + len - p - 1))) {
        const char *line = p + 1, *eol = memchr(line, '\r', (size_t)(head + len - line));
        if (eol == NULL || eol == line)
            break;
        if ((size_t)(eol - line) > nl && line[nl] == ':' && strncasecmp(line, name, nl) == 0) {
            line += nl + 1;
            while (*line == ' ')
                line++;
            *v_r = line;
            *vlen_r = (size_t)(eol - line);
            return 1;
        }
    }
    return 0;
}

/* The head of the answer (HLEN bytes): checks it. Returns -1 when it is
 * wrong (the listener has ended). */
static int take_head(struct listener *l, size_t hlen)
{
    const char *v;
    size_t vlen;
    char want[96];

    if (hlen < 12 || strncmp(l->head, "HTTP/1.1 ", 9) != 0) {
        wrong(l, "not an HTTP/1.1 answer");
        return -1;
    }
    l->status = atoi(l->head + 9);
    if (!header_value(l->head, hlen, "content-length", &v, &vlen)) {
        wrong(l, "status %d without Content-Length", l->status);
        return -1;
    }
    l->clen = strtoull(v, NULL, 10);
    if (l->sp->kind == K_STREAM) {
        int n = snprintf(want, sizeof(want), "bytes 0-%" PRIu64 "/%" PRIu64, l->sp->size - 1, l->sp->size);
        if (l->status != 206 || l->clen != l->sp->size) {
            wrong(l, "status %d, Content-Length %" PRIu64 ", want 206 and %" PRIu64, l->status, l->clen,
                  l->sp->size);
            return -1;
        }
        if (!header_value(l->head, hlen, "content-range", &v, &vlen) || vlen != (size_t)n ||
            memcmp(v, want, vlen) != 0) {
            wrong(l, "Content-Range is not %s", want);
            return -1;
        }
    } else if (l->status != 200) {
        wrong(l, "status %d for %s", l->status, l->phase == 0 ? "the playlist" : "a segment");
        return -1;
    }
    l->in_body = 1;
    l->body_left = l->clen;
    l->body_read = 0;
    if (l->sp->kind == K_HLS && l->phase == 0) {
        if (l->clen > 1 << 20) {
            wrong(l, "a playlist of %" PRIu64 " bytes", l->clen);
            return -1;
        }
        free(l->body);
        if ((l->body = malloc(l->clen + 1)) == NULL)
            fail("out of memory");
    }
    return 0;
}

static void parse_playlist(struct listener *l)
{
    struct spec *sp = l->sp;
    const char *slash = strrchr(sp->path, '/');
    int dirlen = (int)(slash - sp->path + 1);
    double dur = -1;
    char *save = NULL;

    l->body[l->clen] = '\0';
    if (strncmp(l->body, "#EXTM3U", 7) != 0) {
        wrong(l, "the playlist does not start with #EXTM3U");
        return;
    }
    if (sp->parsed)
        return;
    /* slot 0 is the init segment */
    for (char *line = strtok_r(l->body, "\r\n", &save); line != NULL; line = strtok_r(NULL, "\r\n", &save)) {
        const char *uri = NULL;
        if (strncmp(line, "#EXT-X-MAP:URI=\"", 16) == 0) {
            char *q = strchr(line + 16, '"');
            if (q != NULL)
                *q = '\0';
            uri = line + 16;
            dur = 0;
        } else if (strncmp(line, "#EXTINF:", 8) == 0) {
            dur = strtod(line + 8, NULL);
            continue;
        } else if (line[0] != '#' && dur > 0) {
            uri = line;
        }
        if (uri == NULL)
            continue;
        if (sp->nseg == 0 && dur != 0) {
            wrong(l, "no #EXT-X-MAP before the first segment");
            return;
        }
        sp->seg = realloc(sp->seg, (size_t)(sp->nseg + 1) * sizeof(*sp->seg));
        sp->dur = realloc(sp->dur, (size_t)(sp->nseg + 1) * sizeof(*sp->dur));
        if (sp->seg == NULL || sp->dur == NULL)
            fail("out of memory");
        if (uri[0] == '/')
            snprintf(sp->seg[sp->nseg], PATH_MAX_LEN, "%s", uri);
        else
            snprintf(sp->seg[sp->nseg], PATH_MAX_LEN, "%.*s%s", dirlen, sp->path, uri);
        sp->dur[sp->nseg++] = dur;
        dur = -1;
    }
    if (sp->nseg < 2) {
        wrong(l, "a playlist without an init segment and segments");
        return;
    }
    sp->parsed = 1;
}

/* An HLS answer is complete. */
static void hls_done(struct listener *l)
{
    l->inflight = 0;
    l->in_body = 0;
    if (l->phase == 0) {
        parse_playlist(l);
        free(l->body);
        l->body = NULL;
    } else if (l->phase >= 2) {
        l->buffered_s += l->sp->dur[l->phase - 1];
    }
    if (l->state != S_DONE)
        l->phase++;
}

static void h1_readable(struct listener *l)
{
    double t = now();

    while (l->state == S_RUN && l->fd != -1) {
        ssize_t n;

        if (!l->in_body) {
            size_t room = HEAD_MAX - l->head_len;
            if (l->head == NULL && (l->head = malloc(HEAD_MAX)) == NULL)
                fail("out of memory");
            if (l->sp->kind == K_HLS && !l->inflight) {
                /* nothing asked: an EOF or stray bytes */
                n = recv(l->fd, scratch, sizeof(scratch), 0);
                if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR)) {
                    close(l->fd); /* the server closed an idle keep-alive connection */
                    l->fd = -1;
                } else if (n > 0) {
                    wrong(l, "bytes nobody asked for");
                }
                return;
            }
            n = recv(l->fd, l->head + l->head_len, room, 0);
        } else if (l->sp->kind == K_STREAM) {
            uint64_t a = allowed(l, t), want;
            /* the clock allows too little: TCP holds the server back
             * (the buffer before playback is read whole) */
            if (a <= l->received || (l->t_play0 > 0 && a - l->received < opt.quantum && a < l->sp->size))
                return;
            want = a - l->received;
            if (l->verify && want > sizeof(scratch))
                want = sizeof(scratch);
            n = recv(l->fd, l->verify ? scratch : NULL, want, l->verify ? 0 : MSG_TRUNC);
            if (n > 0 && (uint64_t)n < want)
                l->readable = 0;
        } else {
            size_t want = l->body_left < sizeof(scratch) ? (size_t)l->body_left : sizeof(scratch);
            if (l->phase == 0)
                n = recv(l->fd, l->body + l->body_read, (size_t)l->body_left, 0);
            else
                n = recv(l->fd, NULL, want, MSG_TRUNC);
        }
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            l->readable = 0;
            return;
        }
        if (n <= 0) {
            note_wrong("%s %s: connection closed after %" PRIu64 " bytes", kind_names[l->sp->kind],
                       l->sp->path, l->received);
            finish(l, 2);
            return;
        }
        if (!l->in_body) {
            char *e;
            size_t hlen, rest;
            l->head_len += (size_t)n;
            if ((e = memmem(l->head, l->head_len, "\r\n\r\n", 4)) == NULL) {
                if (l->head_len == HEAD_MAX)
                    wrong(l, "a head longer than %d bytes", HEAD_MAX);
                continue;
            }
            hlen = (size_t)(e + 4 - l->head);
            if (take_head(l, hlen) != 0)
                return;
            rest = l->head_len - hlen;
            if (rest > l->body_left) {
                wrong(l, "bytes past the body");
                return;
            }
            if (l->sp->kind == K_STREAM) {
                got_body(l, (unsigned char *)l->head + hlen, rest);
            } else {
                if (l->phase == 0)
                    memcpy(l->body, l->head + hlen, rest);
                if (l->t_first == 0 && (rest > 0 || l->clen == 0))
                    l->t_first = now();
            }
            l->body_left -= rest;
            l->body_read += rest;
            l->head_len = 0;
            if (l->sp->kind == K_STREAM) {
                free(l->head);
                l->head = NULL;
            }
        } else if (l->sp->kind == K_STREAM) {
            got_body(l, l->verify ? scratch : NULL, (size_t)n);
            l->body_left -= (uint64_t)n;
        } else {
            if (l->t_first == 0)
                l->t_first = now();
            l->body_left -= (uint64_t)n;
            l->body_read += (uint64_t)n;
            st.bytes += (uint64_t)n;
        }
        if (l->sp->kind == K_HLS && l->in_body && l->body_left == 0)
            hls_done(l);
    }
}

/* ----------------------------------------------------------- HTTP/2 */

static ssize_t h2_send_cb(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *user)
{
    struct listener *l = user;
    ssize_t n;

    if (!l->connected)
        return NGHTTP2_ERR_WOULDBLOCK;
    while ((n = send(l->fd, data, len, MSG_NOSIGNAL)) == -1 && errno == EINTR)
        ;
    if (n == -1)
        return errno == EAGAIN ? NGHTTP2_ERR_WOULDBLOCK : NGHTTP2_ERR_CALLBACK_FAILURE;
    return n;
}

static int h2_header_cb(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
                        const uint8_t *value, size_t valuelen, uint8_t flags, void *user)
{
    struct listener *l = user;
    char want[96];
    int n;

    if (frame->hd.type != NGHTTP2_HEADERS || frame->hd.stream_id != l->stream_id)
        return 0;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        l->h2_status = atoi((const char *)value);
    } else if (namelen == 14 && memcmp(name, "content-length", 14) == 0) {
        l->h2_clen = strtoull((const char *)value, NULL, 10);
    } else if (namelen == 13 && memcmp(name, "content-range", 13) == 0) {
        n = snprintf(want, sizeof(want), "bytes 0-%" PRIu64 "/%" PRIu64, l->sp->size - 1, l->sp->size);
        l->h2_range_ok = valuelen == (size_t)n && memcmp(value, want, valuelen) == 0;
    }
    return 0;
}

static int h2_frame_cb(nghttp2_session *s, const nghttp2_frame *frame, void *user)
{
    struct listener *l = user;

    if (frame->hd.type == NGHTTP2_HEADERS && frame->hd.stream_id == l->stream_id &&
        frame->headers.cat == NGHTTP2_HCAT_RESPONSE) {
        if (l->h2_status != 206 || l->h2_clen != l->sp->size || !l->h2_range_ok) {
            note_wrong("h2 %s: status %d, content-length %" PRIu64 "%s", l->sp->path, l->h2_status,
                       l->h2_clen, l->h2_range_ok ? "" : ", content-range wrong or missing");
            l->h2_end = 1; /* ended by the caller, outside nghttp2's callbacks */
        }
    }
    return 0;
}

static int h2_data_cb(nghttp2_session *s, uint8_t flags, int32_t stream_id, const uint8_t *data, size_t len,
                      void *user)
{
    struct listener *l = user;

    if (stream_id == l->stream_id)
        got_body(l, data, len);
    return 0;
}

static int h2_close_cb(nghttp2_session *s, int32_t stream_id, uint32_t error_code, void *user)
{
    struct listener *l = user;

    if (stream_id == l->stream_id && l->received < l->sp->size && l->state == S_RUN) {
        note_wrong("h2 %s: stream closed (error %u) after %" PRIu64 " bytes", l->sp->path, error_code,
                   l->received);
        l->h2_end = 2;
    }
    return 0;
}

static nghttp2_session_callbacks *h2_callbacks;
static nghttp2_option *h2_option;

static void h2_start(struct listener *l)
{
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, (uint32_t)opt.quantum},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
    };
    char authority[300];
    nghttp2_nv nva[5];
    const char *names[] = {":method", ":scheme", ":authority", ":path", "range"};
    const char *values[5];

    if (open_conn(l) != 0) {
        finish(l, 2);
        return;
    }
    if (nghttp2_session_client_new2(&l->h2, h2_callbacks, l, h2_option) != 0)
        fail("nghttp2_session_client_new2() failed");
    nghttp2_submit_settings(l->h2, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0]));
    snprintf(authority, sizeof(authority), "%s:%s", opt.host2, opt.port2);
    values[0] = "GET";
    values[1] = "http";
    values[2] = authority;
    values[3] = l->sp->path;
    values[4] = "bytes=0-";
    for (int i = 0; i < 5; i++)
        nva[i] = (nghttp2_nv){(uint8_t *)names[i], (uint8_t *)values[i], strlen(names[i]), strlen(values[i]),
                              NGHTTP2_NV_FLAG_NONE};
    l->stream_id = nghttp2_submit_request(l->h2, NULL, nva, 5, NULL, l);
    if (l->stream_id < 0)
        fail("nghttp2_submit_request() failed");
}

static void h2_settle(struct listener *l)
{
    /* a callback ended the listener: finish it here, outside nghttp2 */
    if (l->h2_end != 0)
        finish(l, l->h2_end);
}

static void h2_pump(struct listener *l, double t)
{
    uint64_t a;

    if (l->h2 == NULL)
        return;
    a = allowed(l, t);
    /* a window update only for what the playback clock allows */
    if (l->received > l->consumed && a > l->consumed &&
        (a - l->consumed >= opt.quantum || a == l->sp->size)) {
        uint64_t n =
            l->received - l->consumed < a - l->consumed ? l->received - l->consumed : a - l->consumed;
        nghttp2_session_consume(l->h2, l->stream_id, (size_t)n);
        l->consumed += n;
    }
    if (nghttp2_session_send(l->h2) != 0)
        finish(l, 2);
    else
        h2_settle(l);
}

static void h2_readable(struct listener *l)
{
    while (l->state == S_RUN && l->h2 != NULL && l->h2_end == 0) {
        ssize_t n = recv(l->fd, scratch, sizeof(scratch), 0);
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            note_wrong("h2 %s: connection closed after %" PRIu64 " bytes", l->sp->path, l->received);
            finish(l, 2);
            return;
        }
        if (nghttp2_session_mem_recv(l->h2, scratch, (size_t)n) < 0) {
            note_wrong("h2 %s: HTTP/2 protocol error", l->sp->path);
            finish(l, 2);
            return;
        }
        h2_settle(l);
    }
    if (l->state == S_RUN)
        h2_pump(l, now());
}

/* ------------------------------------------------------------- loop */

static void start(struct listener *l)
{
    l->state = S_RUN;
    l->t_start = now();
    l->verify = l->sp->map != NULL && l->idx % opt.verify_every == 0;
    st.by_kind[l->sp->kind]++;
    if (l->sp->kind != K_HLS) {
        double due = (opt.seconds + opt.buffer) * l->sp->bps;
        st.stream_due += due < (double)l->sp->size ? due : (double)l->sp->size;
    }
    if (l->sp->kind == K_H2)
        h2_start(l);
    else if (l->sp->kind == K_STREAM)
        request(l, l->sp->path, 1);
    else
        request(l, l->sp->path, 0);
}

static void on_event(struct listener *l, uint32_t events)
{
    if (l->state != S_RUN || l->fd == -1)
        return;
    if (!l->connected && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(l->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
            note_wrong("connect(): %s", strerror(err));
            finish(l, 2);
            return;
        }
        l->connected = 1;
    }
    if (events & EPOLLOUT) {
        if (l->h2 != NULL)
            h2_pump(l, now());
        else
            flush_out(l);
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        l->readable = 1;
        if (l->sp->kind == K_H2)
            h2_readable(l);
        else
            h1_readable(l);
    }
}

static void stall_check(struct listener *l, int behind)
{
    if (behind && !l->stalled) {
        st.stalls++;
        if (!l->has_stalled) {
            l->has_stalled = 1;
            st.underrun_listeners++;
        }
    }
    l->stalled = behind;
}

/* Once per tick: the playback clocks, the stalls, the reads the clock now
 * allows, the HLS requests, the ends. */
static void tick(struct listener *l, double t)
{
    double head = playhead(l, t);

    if (l->state != S_RUN)
        return;
    if (l->sp->kind == K_HLS) {
        struct spec *sp = l->sp;
        /* phase 0: the playlist, 1: the init segment (seg[0]), k: seg[k-1] */
        if (l->phase >= 1 && !sp->parsed)
            return;
        if (l->t_play0 == 0 && l->phase >= 2 && (l->buffered_s >= opt.buffer || l->phase > sp->nseg)) {
            l->t_play0 = t;
            head = 0;
        }
        if (l->t_play0 > 0) {
            if (t >= l->t_play0 + opt.seconds || (l->phase > sp->nseg && head >= l->buffered_s)) {
                finish(l, 0);
                return;
            }
            stall_check(l, head > l->buffered_s);
        }
        if (!l->inflight && l->phase >= 1 && l->phase <= sp->nseg &&
            (l->phase == 1 || l->buffered_s < head + opt.buffer))
            request(l, sp->seg[l->phase - 1], 0);
        return;
    }
    /* streams */
    if (l->t_play0 == 0 && l->received >= allowed(l, t))
        l->t_play0 = t;
    if (l->t_play0 > 0) {
        stall_check(l, (double)l->received < head && l->received < l->sp->size);
        if (t >= l->t_play0 + opt.seconds || (l->received == l->sp->size && head >= (double)l->sp->size)) {
            finish(l, 0);
            return;
        }
    }
    if (l->sp->kind == K_H2)
        h2_pump(l, t);
    else if (l->readable && l->in_body)
        h1_readable(l);
}

static int by_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void percentiles(int from, int to, double *p50, double *p99, double *max)
{
    double *v = malloc(sizeof(double) * (size_t)(to - from + 1));
    int n = 0;

    if (v == NULL)
        fail("out of memory");
    for (int i = from; i < to; i++)
        if (ls[i].t_first > 0)
            v[n++] = (ls[i].t_first - ls[i].t_start) * 1000;
    *p50 = *p99 = *max = 0;
    if (n > 0) {
        qsort(v, (size_t)n, sizeof(double), by_double);
        *p50 = v[n / 2];
        *p99 = v[(size_t)((double)n * 0.99) < (size_t)n ? (size_t)((double)n * 0.99) : (size_t)n - 1];
        *max = v[n - 1];
    }
    free(v);
}

static void usage(void)
{
    fputs(
        "usage: talas-bench-listeners-client [-n LISTENERS] [-r RAMP] [-s SECONDS] [-b BUFFER] [-q QUANTUM]\n"
        "                                    [-2 H2_BASE_URL] [-v EVERY] BASE_URL SPEC_FILE\n",
        stderr);
    exit(2);
}

int main(int argc, char **argv)
{
    struct epoll_event evs[512];
    const char *h2base = NULL;
    int *order, total = 0, c, said_steady = 0, said_ending = 0;
    double cpu0, end_by, p50, p99, max, lp50, lp99, lmax, last_tick = 0, elapsed;
    struct rlimit rl;

    while ((c = getopt(argc, argv, "n:r:s:b:q:2:v:")) != -1) {
        switch (c) {
        case 'n':
            opt.listeners = atoi(optarg);
            break;
        case 'r':
            opt.ramp = strtod(optarg, NULL);
            break;
        case 's':
            opt.seconds = strtod(optarg, NULL);
            break;
        case 'b':
            opt.buffer = strtod(optarg, NULL);
            break;
        case 'q':
            opt.quantum = (size_t)atol(optarg);
            break;
        case '2':
            h2base = optarg;
            break;
        case 'v':
            opt.verify_every = atoi(optarg);
            break;
        default:
            usage();
        }
    }
    if (argc - optind != 2 || opt.listeners < 1 || opt.ramp < 0 || opt.seconds <= 0 || opt.buffer <= 0 ||
        opt.quantum < 1024 || opt.verify_every < 1)
        usage();
    parse_base(argv[optind], opt.host, sizeof(opt.host), opt.port, sizeof(opt.port), &opt.addr);
    parse_base(h2base != NULL ? h2base : argv[optind], opt.host2, sizeof(opt.host2), opt.port2,
               sizeof(opt.port2), &opt.addr2);
    read_spec(argv[optind + 1]);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur < (rlim_t)opt.listeners + 64)
            fail("RLIMIT_NOFILE %ju is below %d listeners", (uintmax_t)rl.rlim_cur, opt.listeners);
    }
    nghttp2_session_callbacks_new(&h2_callbacks);
    nghttp2_session_callbacks_set_send_callback(h2_callbacks, h2_send_cb);
    nghttp2_session_callbacks_set_on_header_callback(h2_callbacks, h2_header_cb);
    nghttp2_session_callbacks_set_on_frame_recv_callback(h2_callbacks, h2_frame_cb);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(h2_callbacks, h2_data_cb);
    nghttp2_session_callbacks_set_on_stream_close_callback(h2_callbacks, h2_close_cb);
    nghttp2_option_new(&h2_option);
    nghttp2_option_set_no_auto_window_update(h2_option, 1);

    /* weighted round robin: kind k takes weight_k of every sum(weights) */
    for (int i = 0; i < nspecs; i++)
        total += specs[i].weight;
    if ((order = malloc(sizeof(int) * (size_t)total)) == NULL)
        fail("out of memory");
    for (int i = 0, k = 0; i < nspecs; i++)
        for (int w = 0; w < specs[i].weight; w++)
            order[k++] = i;
    if ((ls = calloc((size_t)opt.listeners, sizeof(*ls))) == NULL || (epfd = epoll_create1(0)) == -1)
        fail("setup: %s", strerror(errno));
    t0 = 0;
    t0 = now();
    for (int i = 0; i < opt.listeners; i++) {
        ls[i].idx = i;
        ls[i].fd = -1;
        /* 7919 is prime: each kind spread along the ramp, in its share */
        ls[i].sp = &specs[order[(int)(((int64_t)i * 7919) % total)]];
        ls[i].t_start = opt.ramp * i / opt.listeners;
    }
    cpu0 = cpu_self();
    end_by = opt.ramp + opt.buffer + opt.seconds + 60;
    for (int next = 0, running = opt.listeners;;) {
        double t = now();
        int n;

        while (next < opt.listeners && ls[next].t_start <= t)
            start(&ls[next++]);
        if (!said_steady && t >= opt.ramp + opt.buffer + 2) {
            printf("steady\n");
            fflush(stdout);
            said_steady = 1;
        }
        if (!said_ending && t >= opt.seconds) {
            printf("ending\n");
            fflush(stdout);
            said_ending = 1;
        }
        if (t - last_tick >= TICK) {
            last_tick = t;
            running = 0;
            for (int i = 0; i < next; i++) {
                tick(&ls[i], t);
                running += ls[i].state != S_DONE;
            }
            if (next == opt.listeners && running == 0)
                break;
        }
        if (t > end_by) {
            for (int i = 0; i < opt.listeners; i++)
                if (ls[i].state != S_DONE) {
                    note_wrong("%s %s: still playing at the end", kind_names[ls[i].sp->kind], ls[i].sp->path);
                    finish(&ls[i], 2);
                }
            break;
        }
        n = epoll_wait(epfd, evs, 512, 10);
        if (n == -1 && errno != EINTR)
            fail("epoll_wait(): %s", strerror(errno));
        for (int k = 0; k < n; k++)
            on_event(evs[k].data.ptr, evs[k].events);
    }
    elapsed = now();
    if (!said_ending) {
        printf("ending\n");
        fflush(stdout);
    }
    percentiles(0, opt.listeners, &p50, &p99, &max);
    percentiles(opt.listeners / 2, opt.listeners, &lp50, &lp99, &lmax);
    printf("{\"listeners\":%d,\"by_kind\":{\"stream\":%" PRIu64 ",\"h2\":%" PRIu64 ",\"hls\":%" PRIu64
           "},\"completed\":%" PRIu64 ",\"wrong\":%" PRIu64 ",\"errors\":%" PRIu64
           ",\"underrun_listeners\":%" PRIu64 ",\"stalls\":%" PRIu64 ",\"bytes\":%" PRIu64
           ",\"ttfb_ms\":{\"p50\":%.2f,\"p99\":%.2f,\"max\":%.2f},"
           "\"ttfb_late_ms\":{\"p50\":%.2f,\"p99\":%.2f,\"max\":%.2f},\"stream_pace\":%.3f,\"cpu_pct\":%.1f,"
           "\"seconds\":%.2f,"
           "\"first_wrong\":\"",
           opt.listeners, st.by_kind[K_STREAM], st.by_kind[K_H2], st.by_kind[K_HLS], st.completed, st.wrong,
           st.errors, st.underrun_listeners, st.stalls, st.bytes, p50, p99, max, lp50, lp99, lmax,
           st.stream_due > 0 ? st.stream_bytes / st.stream_due : 0, (cpu_self() - cpu0) / elapsed * 100,
           elapsed);
    for (const char *p = st.first_wrong; *p != '\0'; p++)
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if ((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f)
            putchar(*p);
    printf("\"}\n");
    return 0;
}
