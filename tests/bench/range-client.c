/*
 * range-client.c - the HTTP/1.1 load generator of scripts/bench-range,
 * scripts/bench-auth and scripts/bench-transcode-http: Range or whole-file
 * GETs on keep-alive connections, every answer checked.
 *
 *   talas-bench-range-client [options] -s SIZE URL
 *     -c CONNS   connections in all (default 64), spread over the processes
 *     -t PROCS   client processes, one epoll loop each (default 1)
 *     -p DEPTH   requests in flight per connection, pipelined (default 1)
 *     -d SECS    how long to run (default 10), or
 *     -n COUNT   how many answers to wait for (then -d is a time limit)
 *     -m MODE    random: 64 KiB ranges at CHUNK-aligned random offsets;
 *                fixed: the same range every time (-o); whole: GET of the
 *                whole file (default random)
 *     -s SIZE    the served file's size in bytes (required)
 *     -k CHUNK   bytes per range (default 65536)
 *     -o OFFSET  where the range of fixed mode starts (default: the middle
 *                chunk)
 *     -f FILE    the served file: the bodies of a sample of the answers are
 *                compared with it byte for byte
 *     -v EVERY   compare one answer in EVERY (default 16 with -f)
 *     -H LINE    one more request header, "Name: value" (repeatable)
 *     -S SEED    seed of the random offsets (default: from the clock)
 *
 * A right answer is a 206 whose Content-Length is CHUNK and whose
 * Content-Range is "bytes A-B/SIZE" for the range asked (random, fixed),
 * or a 200 whose Content-Length is SIZE (whole), with exactly that many
 * body bytes and, when compared, the file's bytes. Anything else is a
 * wrong answer; a connection the server breaks is an error (its requests
 * are sent again on a new connection). A "Connection: close" answer (nginx
 * closes a keep-alive connection after 1000 requests) is followed by a new
 * connection, which is not an error.
 *
 * The client must cost less than the servers it loads: the offsets are
 * drawn once by xorshift64* and their requests written once, up front; a
 * body that is not compared is discarded in the kernel (recv() with
 * MSG_TRUNC copies nothing on TCP); only the response heads are parsed.
 *
 * Prints one JSON object on stdout: requests (answers received in time),
 * ok, wrong, errors, reconnects, verified (bodies compared), bytes (body
 * bytes), seconds, rps, cpu_pct (user+system CPU of every client process
 * over the wall time, in % of one core), cpu_pct_max (the busiest
 * process's), statuses (a count per status) and first_wrong (what the
 * first wrong answer was). Exit status 0 when it ran (whatever the
 * answers), 1 when it could not run, 2 on a usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX 16384
#define HEAD_READ 2048 /* a head is ~250 bytes: read little past it */
#define TABLE_SIZE 16384
#define MAX_STATUS 600
#define MAX_ERRORS 10000

enum mode { MODE_RANDOM, MODE_FIXED, MODE_WHOLE };

/* One request of the precomputed table: what it asks and its bytes. */
struct req {
    uint64_t off, len;
    size_t text_off, text_len;
};

struct conn {
    int fd;
    uint32_t *ring; /* table indices of the requests in flight, oldest first */
    unsigned ring_head, inflight;
    char *out; /* requests not yet written */
    size_t out_len, out_off;
    char head[HEAD_MAX]; /* bytes read and not yet consumed */
    size_t head_len;
    int in_body, verify, wrong, close_after, status;
    uint64_t body_left, body_pos, body_len;
};

/* What one process counted; the parent adds the children's up. */
struct result {
    uint64_t requests, ok, wrong, errors, reconnects, verified, bytes;
    double seconds, cpu;
    uint64_t statuses[MAX_STATUS];
    char first_wrong[256];
};

static struct {
    enum mode mode;
    int conns, procs, depth;
    double duration;
    uint64_t count, size, chunk, offset, seed;
    int offset_set, duration_set, verify_every;
    const char *file, *url;
    char *headers; /* extra header lines, each ending in CRLF */
    size_t headers_len;
    char host[256], port[16], path[4096];
    struct addrinfo *addr;
    const unsigned char *map; /* the file, to compare bodies with */
    struct req *table;
    size_t table_len;
    char *texts;
    size_t max_text;
} opt = {.mode = MODE_RANDOM, .conns = 64, .procs = 1, .depth = 1, .duration = 10, .chunk = 65536};

static struct result res;
static uint64_t next_req, issued, answers_seen;
static int stopping;
static unsigned char scratch[65536];

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void fail(const char *fmt, ...)
{
    va_list ap;

    fputs("talas-bench-range-client: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static double mono(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_self(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}

static uint64_t xorshift64s(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

/* ------------------------------------------------------------ set-up */

static void parse_url(const char *url)
{
    const char *p, *slash, *colon;
    size_t hl;

    if (strncmp(url, "http://", 7) != 0)
        fail("only http:// URLs: %s", url);
    p = url + 7;
    slash = strchr(p, '/');
    if (slash == NULL)
        slash = p + strlen(p);
    colon = memchr(p, ':', (size_t)(slash - p));
    hl = (size_t)((colon != NULL ? colon : slash) - p);
    if (hl == 0 || hl >= sizeof(opt.host))
        fail("bad host in %s", url);
    memcpy(opt.host, p, hl);
    opt.host[hl] = '\0';
    if (colon != NULL) {
        size_t pl = (size_t)(slash - colon - 1);
        if (pl == 0 || pl >= sizeof(opt.port))
            fail("bad port in %s", url);
        memcpy(opt.port, colon + 1, pl);
        opt.port[pl] = '\0';
    } else {
        strcpy(opt.port, "80");
    }
    snprintf(opt.path, sizeof(opt.path), "%s", *slash != '\0' ? slash : "/");
}

static void resolve(void)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int rc = getaddrinfo(opt.host, opt.port, &hints, &opt.addr);

    if (rc != 0)
        fail("getaddrinfo(%s:%s): %s", opt.host, opt.port, gai_strerror(rc));
}

static void map_file(void)
{
    struct stat sb;
    int fd;

    if (opt.file == NULL)
        return;
    if ((fd = open(opt.file, O_RDONLY)) == -1 || fstat(fd, &sb) != 0)
        fail("open(\"%s\"): %s", opt.file, strerror(errno));
    if ((uint64_t)sb.st_size != opt.size)
        fail("%s has %jd bytes, -s says %" PRIu64, opt.file, (intmax_t)sb.st_size, opt.size);
    opt.map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (opt.map == MAP_FAILED)
        fail("mmap(\"%s\"): %s", opt.file, strerror(errno));
    close(fd);
}

/* The requests, written once: TABLE_SIZE random ranges, or the one fixed
 * range, or the one whole-file GET. */
static void build_table(uint64_t seed)
{
    size_t cap, used = 0;
    uint64_t nchunks = opt.size / opt.chunk, s = seed | 1;

    opt.table_len = opt.mode == MODE_RANDOM ? TABLE_SIZE : 1;
    cap = opt.table_len * (strlen(opt.path) + strlen(opt.host) + opt.headers_len + 128);
    opt.table = calloc(opt.table_len, sizeof(*opt.table));
    opt.texts = malloc(cap);
    if (opt.table == NULL || opt.texts == NULL)
        fail("out of memory");
    for (size_t i = 0; i < opt.table_len; i++) {
        struct req *r = &opt.table[i];
        int n;

        if (opt.mode == MODE_WHOLE) {
            r->off = 0;
            r->len = opt.size;
            n = snprintf(opt.texts + used, cap - used, "GET %s HTTP/1.1\r\nHost: %s:%s\r\n%.*s\r\n", opt.path,
                         opt.host, opt.port, (int)opt.headers_len, opt.headers ? opt.headers : "");
        } else {
            r->off = opt.mode == MODE_FIXED ? opt.offset : (xorshift64s(&s) % nchunks) * opt.chunk;
            r->len = opt.chunk;
            n = snprintf(opt.texts + used, cap - used,
                         "GET %s HTTP/1.1\r\nHost: %s:%s\r\nRange: bytes=%" PRIu64 "-%" PRIu64 "\r\n%.*s\r\n",
                         opt.path, opt.host, opt.port, r->off, r->off + r->len - 1, (int)opt.headers_len,
                         opt.headers ? opt.headers : "");
        }
        if (n < 0 || (size_t)n >= cap - used)
            fail("request table overflow");
        r->text_off = used;
        r->text_len = (size_t)n;
        used += (size_t)n;
        if ((size_t)n > opt.max_text)
            opt.max_text = (size_t)n;
    }
}

/* ------------------------------------------------------- connections */

static int conn_open(struct conn *c, int ep)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};
    int one = 1, fd = socket(opt.addr->ai_family, SOCK_STREAM, 0);

    if (fd == -1)
        fail("socket(): %s", strerror(errno));
    /* blocking: on loopback a connect completes at once */
    if (connect(fd, opt.addr->ai_addr, opt.addr->ai_addrlen) != 0) {
        close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (fcntl(fd, F_SETFL, O_NONBLOCK) != 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
        fail("fcntl/epoll_ctl: %s", strerror(errno));
    c->fd = fd;
    c->head_len = 0;
    c->in_body = 0;
    c->out_len = c->out_off = 0;
    return 0;
}

static void queue(struct conn *c, uint32_t idx)
{
    const struct req *r = &opt.table[idx];

    memcpy(c->out + c->out_len, opt.texts + r->text_off, r->text_len);
    c->out_len += r->text_len;
}

static void flush(struct conn *c)
{
    while (c->fd != -1 && c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n == -1) {
            if (errno == EINTR)
                continue;
            return; /* EAGAIN: EPOLLOUT says when; an error shows on the read side */
        }
        c->out_off += (size_t)n;
    }
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
}

/* Keeps DEPTH requests in flight. */
static void top_up(struct conn *c)
{
    if (c->fd == -1)
        return;
    if (c->out_off > 0) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    while (!stopping && c->inflight < (unsigned)opt.depth && (opt.count == 0 || issued < opt.count)) {
        uint32_t idx = (uint32_t)(next_req++ % opt.table_len);
        c->ring[(c->ring_head + c->inflight) % (unsigned)opt.depth] = idx;
        c->inflight++;
        issued++;
        queue(c, idx);
    }
    flush(c);
}

/* A new connection in place of C's, with C's requests in flight sent again
 * in their order. */
static void reconnect(struct conn *c, int ep)
{
    if (c->fd != -1)
        close(c->fd); /* also leaves the epoll set */
    c->fd = -1;
    if (stopping)
        return;
    res.reconnects++;
    if (conn_open(c, ep) != 0) {
        res.errors++;
        fprintf(stderr, "talas-bench-range-client: connect(%s:%s): %s\n", opt.host, opt.port,
                strerror(errno));
        return;
    }
    for (unsigned i = 0; i < c->inflight; i++)
        queue(c, c->ring[(c->ring_head + i) % (unsigned)opt.depth]);
    flush(c);
}

/* The connection broke: one error, and its requests go again. */
static void broken(struct conn *c, int ep)
{
    if (stopping)
        return;
    res.errors++;
    reconnect(c, ep);
}

/* ------------------------------------------------------ the answers */

static void note_wrong(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void note_wrong(const char *fmt, ...)
{
    va_list ap;

    if (res.first_wrong[0] != '\0')
        return;
    va_start(ap, fmt);
    vsnprintf(res.first_wrong, sizeof(res.first_wrong), fmt, ap);
    va_end(ap);
}

static int header_is(const char *line, size_t len, const char *name, const char **value_r, size_t *vlen_r)
{
    size_t nl = strlen(name);

    if (len <= nl || line[nl] != ':' || strncasecmp(line, name, nl) != 0)
        return 0;
    line += nl + 1;
    len -= nl + 1;
    while (len > 0 && (*line == ' ' || *line == '\t')) {
        line++;
        len--;
    }
    while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
        len--;
    *value_r = line;
    *vlen_r = len;
    return 1;
}

static int parse_u64(const char **p, const char *end, uint64_t *v_r)
{
    const char *s = *p;
    uint64_t v = 0;

    if (s == end || *s < '0' || *s > '9')
        return -1;
    for (; s < end && *s >= '0' && *s <= '9'; s++)
        v = v * 10 + (uint64_t)(*s - '0');
    *p = s;
    *v_r = v;
    return 0;
}

/* The head of the answer to C's oldest request, HLEN bytes ending in an
 * empty line: checks it and sets up the reading of the body. Returns -1
 * when the body cannot be delimited (the connection must go). */
static int take_head(struct conn *c, size_t hlen)
{
    const struct req *r = &opt.table[c->ring[c->ring_head]];
    const char *p = c->head, *end = c->head + hlen, *v;
    uint64_t clen = UINT64_MAX, ra = UINT64_MAX, rb = 0, rt = 0;
    int status = 0, chunked = 0, range_ok = 0;
    unsigned want = opt.mode == MODE_WHOLE ? 200 : 206;
    size_t vlen;

    if (hlen < 12 || strncmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ') {
        note_wrong("not an HTTP/1.x status line: %.40s", p);
        return -1;
    }
    status = atoi(p + 9);
    c->close_after = p[7] == '0'; /* HTTP/1.0: closes unless it says keep-alive */
    p = memchr(p, '\n', (size_t)(end - p)) + 1;
    while (p < end - 2) {
        const char *eol = memchr(p, '\r', (size_t)(end - p));
        size_t len = (size_t)(eol - p);
        if (header_is(p, len, "content-length", &v, &vlen)) {
            const char *q = v;
            if (parse_u64(&q, v + vlen, &clen) != 0 || q != v + vlen)
                clen = UINT64_MAX;
        } else if (header_is(p, len, "content-range", &v, &vlen)) {
            const char *q = v + 6, *ve = v + vlen;
            range_ok = vlen > 6 && strncmp(v, "bytes ", 6) == 0 && parse_u64(&q, ve, &ra) == 0 && q < ve &&
                       *q++ == '-' && parse_u64(&q, ve, &rb) == 0 && q < ve && *q++ == '/' &&
                       parse_u64(&q, ve, &rt) == 0 && q == ve;
        } else if (header_is(p, len, "connection", &v, &vlen)) {
            if (vlen == 5 && strncasecmp(v, "close", 5) == 0)
                c->close_after = 1;
            else if (vlen == 10 && strncasecmp(v, "keep-alive", 10) == 0)
                c->close_after = 0;
        } else if (header_is(p, len, "transfer-encoding", &v, &vlen)) {
            chunked = 1;
        }
        p = eol + 2;
    }
    c->status = status > 0 && status < MAX_STATUS ? status : 0;
    c->wrong = 0;
    if ((unsigned)status != want) {
        c->wrong = 1;
        note_wrong("status %d, want %u (Content-Length %" PRIu64 ")", status, want,
                   clen == UINT64_MAX ? 0 : clen);
    } else if (clen != r->len) {
        c->wrong = 1;
        note_wrong("Content-Length %" PRIu64 ", want %" PRIu64, clen == UINT64_MAX ? 0 : clen, r->len);
    } else if (opt.mode != MODE_WHOLE &&
               (!range_ok || ra != r->off || rb != r->off + r->len - 1 || rt != opt.size)) {
        c->wrong = 1;
        note_wrong("Content-Range %s%" PRIu64 "-%" PRIu64 "/%" PRIu64 ", want bytes %" PRIu64 "-%" PRIu64
                   "/%" PRIu64,
                   range_ok ? "bytes " : "missing or malformed, parsed ", ra == UINT64_MAX ? 0 : ra, rb, rt,
                   r->off, r->off + r->len - 1, opt.size);
    }
    if (clen == UINT64_MAX || chunked) {
        if (!c->wrong)
            note_wrong("no Content-Length (status %d%s)", status, chunked ? ", chunked" : "");
        c->wrong = 1;
        return -1;
    }
    c->in_body = 1;
    c->body_left = c->body_len = clen;
    c->body_pos = 0;
    c->verify = opt.map != NULL && !c->wrong && answers_seen % (uint64_t)opt.verify_every == 0;
    answers_seen++;
    return 0;
}

/* N body bytes of the current answer, at DATA when they were copied. */
static void body_bytes(struct conn *c, const unsigned char *data, size_t n)
{
    if (c->verify && data != NULL && !c->wrong) {
        const struct req *r = &opt.table[c->ring[c->ring_head]];
        if (memcmp(data, opt.map + r->off + c->body_pos, n) != 0) {
            c->wrong = 1;
            note_wrong("body differs from the file in the %" PRIu64 " bytes at %" PRIu64, (uint64_t)n,
                       r->off + c->body_pos);
        }
    }
    c->body_pos += n;
    c->body_left -= n;
}

/* The current answer is complete. Returns -1 when the connection closes. */
static int answer_done(struct conn *c, int ep)
{
    res.requests++;
    res.statuses[c->status]++;
    res.bytes += c->body_len;
    if (c->wrong) {
        res.wrong++;
    } else {
        res.ok++;
        res.verified += (uint64_t)c->verify;
    }
    c->in_body = 0;
    c->ring_head = (c->ring_head + 1) % (unsigned)opt.depth;
    c->inflight--;
    if (opt.count > 0 && res.requests >= opt.count)
        stopping = 1;
    if (c->close_after) {
        reconnect(c, ep);
        return -1;
    }
    return 0;
}

/* Consumes the heads (and the body bytes after them) in C's buffer.
 * Returns -1 when the connection went. */
static int take_buffer(struct conn *c, int ep)
{
    while (!c->in_body && c->head_len > 0) {
        char *e = memmem(c->head, c->head_len, "\r\n\r\n", 4);
        size_t hlen, take;

        if (e == NULL) {
            if (c->head_len == sizeof(c->head)) {
                note_wrong("a response head longer than %zu bytes", sizeof(c->head));
                res.wrong++;
                broken(c, ep);
                return -1;
            }
            return 0;
        }
        if (c->inflight == 0) {
            note_wrong("an answer to no request");
            res.wrong++;
            broken(c, ep);
            return -1;
        }
        hlen = (size_t)(e + 4 - c->head);
        if (take_head(c, hlen) != 0) {
            /* undelimited: the answer counts, the rest of the stream cannot */
            res.requests++;
            res.statuses[c->status]++;
            res.wrong++;
            c->ring_head = (c->ring_head + 1) % (unsigned)opt.depth;
            c->inflight--;
            reconnect(c, ep);
            return -1;
        }
        take = c->head_len - hlen < c->body_left ? c->head_len - hlen : (size_t)c->body_left;
        body_bytes(c, (unsigned char *)c->head + hlen, take);
        memmove(c->head, c->head + hlen + take, c->head_len - hlen - take);
        c->head_len -= hlen + take;
        if (c->body_left == 0 && answer_done(c, ep) != 0)
            return -1;
    }
    return 0;
}

/* Reads C until the socket is empty (the epoll set is edge-triggered). */
static void on_readable(struct conn *c, int ep)
{
    while (c->fd != -1 && !stopping) {
        ssize_t n;

        /* nothing asked, nothing to read: new bytes (or an EOF) would
         * raise another event, so the read that only says EAGAIN is saved */
        if (c->inflight == 0 && !c->in_body && c->head_len == 0)
            return;

        if (c->in_body && !c->verify) {
            /* discarded in the kernel, never copied */
            n = recv(c->fd, NULL, c->body_left, MSG_TRUNC);
        } else if (c->in_body) {
            size_t want = c->body_left < sizeof(scratch) ? (size_t)c->body_left : sizeof(scratch);
            n = recv(c->fd, scratch, want, 0);
        } else {
            size_t room = sizeof(c->head) - c->head_len;
            n = recv(c->fd, c->head + c->head_len, room < HEAD_READ ? room : HEAD_READ, 0);
        }
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            /* closed or reset: between answers with nothing in flight it
             * is only the server ending an idle connection */
            if (c->inflight == 0 && !c->in_body && c->head_len == 0)
                reconnect(c, ep);
            else
                broken(c, ep);
            return;
        }
        if (c->in_body) {
            body_bytes(c, c->verify ? scratch : NULL, (size_t)n);
            if (c->body_left == 0 && answer_done(c, ep) != 0)
                return;
        } else {
            c->head_len += (size_t)n;
        }
        if (take_buffer(c, ep) != 0)
            return;
    }
}

/* ------------------------------------------------------------- a run */

static void run(int conns, uint64_t seed)
{
    struct conn *cs = calloc((size_t)conns, sizeof(*cs));
    struct epoll_event evs[256];
    double start, deadline, cpu0;
    int ep = epoll_create1(0);

    if (cs == NULL || ep == -1)
        fail("setup: %s", strerror(errno));
    build_table(seed);
    next_req = seed % opt.table_len;
    for (int i = 0; i < conns; i++) {
        cs[i].ring = calloc((size_t)opt.depth, sizeof(uint32_t));
        cs[i].out = malloc((size_t)opt.depth * opt.max_text);
        if (cs[i].ring == NULL || cs[i].out == NULL)
            fail("out of memory");
        if (conn_open(&cs[i], ep) != 0)
            fail("connect(%s:%s): %s", opt.host, opt.port, strerror(errno));
    }
    cpu0 = cpu_self();
    start = mono();
    deadline = start + opt.duration;
    for (int i = 0; i < conns; i++)
        top_up(&cs[i]);
    while (!stopping) {
        int n = epoll_wait(ep, evs, 256, 50);
        if (n == -1 && errno != EINTR)
            fail("epoll_wait(): %s", strerror(errno));
        for (int k = 0; k < n && !stopping; k++) {
            struct conn *c = evs[k].data.ptr;
            if (c->fd == -1)
                continue;
            if (evs[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                on_readable(c, ep);
            top_up(c);
        }
        if (mono() >= deadline || res.errors >= MAX_ERRORS)
            stopping = 1;
    }
    res.seconds = mono() - start;
    res.cpu = cpu_self() - cpu0;
    for (int i = 0; i < conns; i++) {
        if (cs[i].fd != -1)
            close(cs[i].fd);
        free(cs[i].ring);
        free(cs[i].out);
    }
    free(cs);
    close(ep);
}

static void print_json(const struct result *r, double cpu_max)
{
    static const char *const modes[] = {"random", "fixed", "whole"};
    int first = 1;

    printf("{\"mode\":\"%s\",\"connections\":%d,\"processes\":%d,\"depth\":%d,\"requests\":%" PRIu64
           ",\"ok\":%" PRIu64 ",\"wrong\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"reconnects\":%" PRIu64
           ",\"verified\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"seconds\":%.3f,\"rps\":%.1f,\"cpu_pct\":%.1f"
           ",\"cpu_pct_max\":%.1f,\"statuses\":{",
           modes[opt.mode], opt.conns, opt.procs, opt.depth, r->requests, r->ok, r->wrong, r->errors,
           r->reconnects, r->verified, r->bytes, r->seconds,
           r->seconds > 0 ? (double)r->requests / r->seconds : 0,
           r->seconds > 0 ? r->cpu / r->seconds * 100 : 0, cpu_max);
    for (int s = 1; s < MAX_STATUS; s++)
        if (r->statuses[s] > 0) {
            printf("%s\"%d\":%" PRIu64, first ? "" : ",", s, r->statuses[s]);
            first = 0;
        }
    printf("},\"first_wrong\":\"");
    for (const char *p = r->first_wrong; *p != '\0'; p++)
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if ((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f)
            putchar(*p);
    printf("\"}\n");
    fflush(stdout);
}

static int by_procs(uint64_t seed)
{
    struct result total = {0};
    double cpu_max = 0;
    pid_t *pids = calloc((size_t)opt.procs, sizeof(pid_t));
    int *fds = calloc((size_t)opt.procs, sizeof(int));

    if (pids == NULL || fds == NULL)
        fail("out of memory");
    if (opt.count > 0)
        opt.count = (opt.count + (uint64_t)opt.procs - 1) / (uint64_t)opt.procs;
    for (int i = 0; i < opt.procs; i++) {
        int p[2], share = opt.conns / opt.procs + (i < opt.conns % opt.procs);
        if (pipe(p) != 0)
            fail("pipe(): %s", strerror(errno));
        if ((pids[i] = fork()) == -1)
            fail("fork(): %s", strerror(errno));
        if (pids[i] == 0) {
            close(p[0]);
            run(share, seed + (uint64_t)i * 0x9E3779B97F4A7C15ULL);
            if (write(p[1], &res, sizeof(res)) != (ssize_t)sizeof(res))
                _exit(1);
            _exit(0);
        }
        close(p[1]);
        fds[i] = p[0];
    }
    for (int i = 0; i < opt.procs; i++) {
        struct result r;
        size_t got = 0;
        int status;
        while (got < sizeof(r)) {
            ssize_t n = read(fds[i], (char *)&r + got, sizeof(r) - got);
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        waitpid(pids[i], &status, 0);
        if (got != sizeof(r) || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            fail("client process %d failed", i);
        total.requests += r.requests;
        total.ok += r.ok;
        total.wrong += r.wrong;
        total.errors += r.errors;
        total.reconnects += r.reconnects;
        total.verified += r.verified;
        total.bytes += r.bytes;
        total.cpu += r.cpu;
        if (r.seconds > total.seconds)
            total.seconds = r.seconds;
        for (int s = 0; s < MAX_STATUS; s++)
            total.statuses[s] += r.statuses[s];
        if (total.first_wrong[0] == '\0')
            memcpy(total.first_wrong, r.first_wrong, sizeof(r.first_wrong));
        if (r.seconds > 0 && r.cpu / r.seconds * 100 > cpu_max)
            cpu_max = r.cpu / r.seconds * 100;
        close(fds[i]);
    }
    print_json(&total, cpu_max);
    free(pids);
    free(fds);
    return 0;
}

static void usage(void)
{
    fputs("usage: talas-bench-range-client [-c CONNS] [-t PROCS] [-p DEPTH] [-d SECS] [-n COUNT]\n"
          "                                [-m random|fixed|whole] -s SIZE [-k CHUNK] [-o OFFSET]\n"
          "                                [-f FILE [-v EVERY]] [-H 'Name: value']... [-S SEED] URL\n",
          stderr);
    exit(2);
}

static uint64_t number(const char *s)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        usage();
    return (uint64_t)v;
}

int main(int argc, char **argv)
{
    struct rlimit rl;
    int c;

    while ((c = getopt(argc, argv, "c:t:p:d:n:m:s:k:o:f:v:H:S:")) != -1) {
        switch (c) {
        case 'c':
            opt.conns = (int)number(optarg);
            break;
        case 't':
            opt.procs = (int)number(optarg);
            break;
        case 'p':
            opt.depth = (int)number(optarg);
            break;
        case 'd':
            opt.duration = strtod(optarg, NULL);
            opt.duration_set = 1;
            break;
        case 'n':
            opt.count = number(optarg);
            break;
        case 's':
            opt.size = number(optarg);
            break;
        case 'k':
            opt.chunk = number(optarg);
            break;
        case 'o':
            opt.offset = number(optarg);
            opt.offset_set = 1;
            break;
        case 'f':
            opt.file = optarg;
            break;
        case 'v':
            opt.verify_every = (int)number(optarg);
            break;
        case 'S':
            opt.seed = number(optarg);
            break;
        case 'm':
            if (strcmp(optarg, "random") == 0)
                opt.mode = MODE_RANDOM;
            else if (strcmp(optarg, "fixed") == 0)
                opt.mode = MODE_FIXED;
            else if (strcmp(optarg, "whole") == 0)
                opt.mode = MODE_WHOLE;
            else
                usage();
            break;
        case 'H': {
            size_t l = strlen(optarg);
            if (strpbrk(optarg, "\r\n") != NULL || strchr(optarg, ':') == NULL)
                usage();
            if ((opt.headers = realloc(opt.headers, opt.headers_len + l + 3)) == NULL)
                fail("out of memory");
            memcpy(opt.headers + opt.headers_len, optarg, l);
            memcpy(opt.headers + opt.headers_len + l, "\r\n", 3);
            opt.headers_len += l + 2;
            break;
        }
        default:
            usage();
        }
    }
    if (optind != argc - 1 || opt.conns < 1 || opt.procs < 1 || opt.depth < 1 || opt.depth > 1024 ||
        opt.duration <= 0 || opt.size == 0 || opt.chunk == 0 || opt.procs > opt.conns)
        usage();
    if (opt.mode != MODE_WHOLE && opt.size < opt.chunk)
        fail("the file (%" PRIu64 " bytes) is smaller than one chunk", opt.size);
    if (!opt.offset_set)
        opt.offset = (opt.size / opt.chunk / 2) * opt.chunk;
    if (opt.mode == MODE_FIXED && opt.offset + opt.chunk > opt.size)
        fail("-o %" PRIu64 ": the range ends past the file", opt.offset);
    if (opt.verify_every == 0)
        opt.verify_every = 16;
    if (opt.count > 0 && !opt.duration_set)
        opt.duration = 3600;
    if (opt.seed == 0)
        opt.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    opt.url = argv[optind];
    parse_url(opt.url);
    resolve();
    map_file();
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (opt.procs == 1) {
        run(opt.conns, opt.seed);
        print_json(&res, res.seconds > 0 ? res.cpu / res.seconds * 100 : 0);
        return 0;
    }
    return by_procs(opt.seed);
}
