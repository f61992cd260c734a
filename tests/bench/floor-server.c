/*
 * floor-server.c - the kernel floor of scripts/bench-range: the cheapest
 * HTTP/1.1 file server this machine can run, so that the benchmark can
 * show how much of a server's cost is the kernel's (sendfile() over
 * loopback) and how far any server can be from another when that
 * dominates.
 *
 *   talas-bench-floor-server -p PORT -f FILE [-w WORKERS] [-u USER]
 *
 * FILE is opened and measured once, 127.0.0.1:PORT bound, then WORKERS
 * processes (default 1) share the listening socket, one epoll loop each,
 * as nginx's workers do (EPOLLEXCLUSIVE: one worker woken per connection).
 * Every GET or HEAD, whatever its target and Host, is answered with FILE:
 *   206  for "Range: bytes=A-B", "bytes=A-" or "bytes=-N"
 *   200  without Range, or with one RFC 9110 lets a server ignore
 *        (several ranges, a malformed one, B < A)
 *   416  for a range that starts past the end
 *   405  for another method
 *   400  then close, for anything that is not an HTTP/1.x request head
 *        (or a head over 8 KiB), and for a request with a body
 * Requests are read on keep-alive connections, pipelined ones in order.
 * The head of an answer goes in one send() with MSG_MORE and the body
 * follows by sendfile() from the shared descriptor at the answer's own
 * offset; a full socket keeps the answer where it stopped until EPOLLOUT.
 * Beyond the request line and Range, only what frames a request is read
 * (Connection: close, Content-Length, Transfer-Encoding). There is no
 * Date header, no stat() per request, no idle timeout and no logging per
 * request: a floor, not a server to expose.
 *
 * Started as root with -u, the master drops to USER once FILE is open and
 * the port bound, before the workers are forked; -u is ignored otherwise.
 * SIGTERM or SIGINT to the master stops the workers and exits 0; a worker
 * that dies otherwise stops the others, and the master exits 1. Logs one
 * start-up line and its errors on stderr.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define IN_SIZE 8192  /* request heads buffered per connection */
#define HEAD_SIZE 512 /* the longest answer head is ~200 bytes */
#define EVENTS 256
#define MAX_WORKERS 256

/* What conn_send() and conn_read() leave the connection in. */
enum io { IO_DONE, IO_AGAIN, IO_GONE };

/* What take_request() found in the buffer. */
enum req { REQ_MORE, REQ_OK, REQ_BAD };

enum range { RANGE_NONE, RANGE_OK, RANGE_UNSATISFIABLE };

/* One client connection, owned by its worker's loop from accept to close. */
struct conn {
    int fd;
    int close_after; /* the answer in progress is the last one */
    char in[IN_SIZE];
    size_t in_off, in_len; /* unparsed bytes: in[in_off..in_len) */
    char head[HEAD_SIZE];
    size_t head_off, head_len; /* head bytes not yet sent */
    off_t body_off;            /* where the body's next byte is in the file */
    uint64_t body_left;
};

/* The parts of a request head that decide its answer. */
struct request {
    int get, head, close, has_body;
    const char *range;
    size_t range_len;
};

static int file_fd = -1;
static uint64_t file_size;

static void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void fatal(const char *fmt, ...)
{
    va_list ap;

    fputs("talas-bench-floor-server: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static void usage(void)
{
    fputs("usage: talas-bench-floor-server -p PORT -f FILE [-w WORKERS] [-u USER]\n", stderr);
    exit(2);
}

static long number(const char *s, long min, long max)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        usage();
    return v;
}

/* ----------------------------------------------------------- parsing */

/* Digits at *P, saturating at UINT64_MAX: a range past any file is still
 * a range, and unsatisfiable, not a syntax error. */
static int parse_u64(const char **p, const char *end, uint64_t *v_r)
{
    const char *s = *p;
    uint64_t v = 0;

    if (s == end || *s < '0' || *s > '9')
        return -1;
    for (; s < end && *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
    }
    *p = s;
    *v_r = v;
    return 0;
}

/* One "bytes=" range of the file, as RFC 9110 section 14.1.2 reads it. */
static enum range parse_range(const char *v, size_t vlen, uint64_t *off_r, uint64_t *len_r)
{
    const char *p = v + 6, *end = v + vlen;
    uint64_t a, b = UINT64_MAX;

    if (vlen < 6 || strncasecmp(v, "bytes=", 6) != 0)
        return RANGE_NONE;
    if (p < end && *p == '-') {
        /* a suffix: the last B bytes */
        p++;
        if (parse_u64(&p, end, &b) != 0 || p != end)
            return RANGE_NONE;
        if (b == 0 || file_size == 0)
            return RANGE_UNSATISFIABLE;
        *len_r = b < file_size ? b : file_size;
        *off_r = file_size - *len_r;
        return RANGE_OK;
    }
    if (parse_u64(&p, end, &a) != 0 || p == end || *p++ != '-')
        return RANGE_NONE;
    if (p != end && (parse_u64(&p, end, &b) != 0 || p != end || b < a))
        return RANGE_NONE;
    if (a >= file_size)
        return RANGE_UNSATISFIABLE;
    if (b >= file_size)
        b = file_size - 1;
    *off_r = a;
    *len_r = b - a + 1;
    return RANGE_OK;
}

static int is_tchar(int ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* "METHOD SP TARGET SP HTTP/1.x", without its CRLF. */
static int parse_request_line(const char *s, const char *e, struct request *r)
{
    const char *m = s, *t;

    while (s < e && is_tchar((unsigned char)*s))
        s++;
    if (s == m || s == e || *s != ' ')
        return -1;
    r->get = s - m == 3 && memcmp(m, "GET", 3) == 0;
    r->head = s - m == 4 && memcmp(m, "HEAD", 4) == 0;
    for (t = ++s; s < e && (unsigned char)*s > ' ' && *s != 0x7f; s++)
        continue;
    if (s == t || e - s != 9 || memcmp(s, " HTTP/1.", 8) != 0)
        return -1;
    if (s[8] == '0')
        r->close = 1; /* no keep-alive for HTTP/1.0 */
    else if (s[8] != '1')
        return -1;
    return 0;
}

/* Whether a comma-separated header value holds TOKEN. */
static int has_token(const char *v, size_t vlen, const char *token)
{
    size_t tl = strlen(token);
    const char *end = v + vlen;

    while (v < end) {
        const char *comma = memchr(v, ',', (size_t)(end - v)), *ie = comma != NULL ? comma : end;
        while (v < ie && (*v == ' ' || *v == '\t'))
            v++;
        while (ie > v && (ie[-1] == ' ' || ie[-1] == '\t'))
            ie--;
        if ((size_t)(ie - v) == tl && strncasecmp(v, token, tl) == 0)
            return 1;
        v = comma != NULL ? comma + 1 : end;
    }
    return 0;
}

/* One "Name: value" line, without its CRLF. */
static int parse_header(const char *s, const char *e, struct request *r)
{
    const char *colon = memchr(s, ':', (size_t)(e - s)), *v;
    size_t nl, vlen;

    if (colon == NULL || colon == s)
        return -1;
    for (v = s; v < colon; v++)
        if (!is_tchar((unsigned char)*v))
            return -1; /* also refuses obs-fold and "Name :" */
    nl = (size_t)(colon - s);
    for (v = colon + 1; v < e && (*v == ' ' || *v == '\t'); v++)
        continue;
    for (vlen = (size_t)(e - v); vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'); vlen--)
        continue;
    for (size_t i = 0; i < vlen; i++)
        if (((unsigned char)v[i] < ' ' && v[i] != '\t') || v[i] == 0x7f)
            return -1; /* a bare CR, a NUL */
    if (nl == 5 && strncasecmp(s, "range", 5) == 0 && r->range == NULL) {
        r->range = v;
        r->range_len = vlen;
    } else if (nl == 10 && strncasecmp(s, "connection", 10) == 0) {
        r->close |= has_token(v, vlen, "close");
    } else if (nl == 14 && strncasecmp(s, "content-length", 14) == 0) {
        /* a body this server would not read would be taken for the next
         * request: only an empty one is let through */
        if (vlen == 0 || strspn(v, "0") != vlen)
            r->has_body = 1;
    } else if (nl == 17 && strncasecmp(s, "transfer-encoding", 17) == 0) {
        r->has_body = 1;
    }
    return 0;
}

/* The head, HLEN bytes ending in CRLF CRLF, into R. */
static int parse_head(const char *p, size_t hlen, struct request *r)
{
    const char *end = p + hlen - 2, *eol = memmem(p, hlen, "\r\n", 2);

    memset(r, 0, sizeof(*r));
    if (parse_request_line(p, eol, r) != 0)
        return -1;
    for (p = eol + 2; p < end; p = eol + 2) {
        eol = memmem(p, (size_t)(end + 2 - p), "\r\n", 2);
        if (parse_header(p, eol, r) != 0)
            return -1;
    }
    return 0;
}

/* ----------------------------------------------------------- answers */

static void set_head(struct conn *c, int n)
{
    if (n < 0 || (size_t)n >= sizeof(c->head))
        fatal("answer head overflow"); /* cannot happen: the formats are bounded */
    c->head_off = 0;
    c->head_len = (size_t)n;
}

/* The answer to a well-formed request R. */
static void answer(struct conn *c, const struct request *r)
{
    const char *conn = r->close ? "Connection: close\r\n" : "";
    uint64_t off = 0, len = file_size;
    enum range rg = RANGE_NONE;

    c->close_after = r->close;
    c->body_left = 0;
    if (!r->get && !r->head) {
        set_head(c, snprintf(c->head, sizeof(c->head),
                             "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\n"
                             "Content-Length: 0\r\n%s\r\n",
                             conn));
        return;
    }
    if (r->range != NULL)
        rg = parse_range(r->range, r->range_len, &off, &len);
    if (rg == RANGE_UNSATISFIABLE) {
        set_head(c, snprintf(c->head, sizeof(c->head),
                             "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */%" PRIu64
                             "\r\nContent-Length: 0\r\n%s\r\n",
                             file_size, conn));
        return;
    }
    if (rg == RANGE_OK)
        set_head(c, snprintf(c->head, sizeof(c->head),
                             "HTTP/1.1 206 Partial Content\r\nContent-Type: application/octet-stream\r\n"
                             "Accept-Ranges: bytes\r\nContent-Range: bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64
                             "\r\nContent-Length: %" PRIu64 "\r\n%s\r\n",
                             off, off + len - 1, file_size, len, conn));
    else
        set_head(c, snprintf(c->head, sizeof(c->head),
                             "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                             "Accept-Ranges: bytes\r\nContent-Length: %" PRIu64 "\r\n%s\r\n",
                             len, conn));
    if (r->get) {
        c->body_off = (off_t)off;
        c->body_left = len;
    }
}

static void answer_bad(struct conn *c)
{
    static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

    memcpy(c->head, bad, sizeof(bad) - 1);
    set_head(c, (int)sizeof(bad) - 1);
    c->body_left = 0;
    c->close_after = 1;
    c->in_off = c->in_len = 0;
}

/* A bare LF ends no line here: waiting for CRLF CRLF behind one would wait
 * for a full buffer. */
static int has_bare_lf(const char *p, size_t len)
{
    const char *lf;

    for (size_t i = 0; (lf = memchr(p + i, '\n', len - i)) != NULL; i = (size_t)(lf - p) + 1)
        if (lf == p || lf[-1] != '\r')
            return 1;
    return 0;
}

/* Takes the next whole request head out of C's buffer and sets up its
 * answer. */
static enum req take_request(struct conn *c)
{
    struct request r;
    const char *p, *e;
    size_t avail, hlen;

    /* RFC 9112 2.2: empty lines before a request line are ignored */
    while (c->in_len - c->in_off >= 2 && memcmp(c->in + c->in_off, "\r\n", 2) == 0)
        c->in_off += 2;
    p = c->in + c->in_off;
    avail = c->in_len - c->in_off;
    if ((e = memmem(p, avail, "\r\n\r\n", 4)) == NULL) {
        if (avail == sizeof(c->in) || has_bare_lf(p, avail))
            return REQ_BAD;
        return REQ_MORE;
    }
    hlen = (size_t)(e + 4 - p);
    if (has_bare_lf(p, hlen) || parse_head(p, hlen, &r) != 0 || r.has_body)
        return REQ_BAD;
    c->in_off += hlen;
    if (c->in_off == c->in_len)
        c->in_off = c->in_len = 0;
    answer(c, &r);
    return REQ_OK;
}

/* ------------------------------------------------------- connections */

static void conn_close(struct conn *c)
{
    close(c->fd); /* also leaves the epoll set */
    free(c);
}

/* The answer that ends the connection has gone. A close with unread
 * bytes would reset the connection, and a reset can destroy that answer
 * in the peer's buffer before it is read: FIN first, and the bytes that
 * are already here are read away. */
static void conn_finish(struct conn *c)
{
    char sink[4096];

    shutdown(c->fd, SHUT_WR);
    for (int i = 0; i < 16 && recv(c->fd, sink, sizeof(sink), 0) > 0; i++)
        continue;
    conn_close(c);
}

/* Sends what is left of the current answer. */
static enum io conn_send(struct conn *c)
{
    while (c->head_off < c->head_len) {
        /* MSG_MORE: the head leaves with the body's first bytes */
        int more = c->body_left > 0 ? MSG_MORE : 0;
        ssize_t n = send(c->fd, c->head + c->head_off, c->head_len - c->head_off, MSG_NOSIGNAL | more);
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1)
            return errno == EAGAIN ? IO_AGAIN : IO_GONE;
        c->head_off += (size_t)n;
    }
    while (c->body_left > 0) {
        size_t want = c->body_left < 0x7ffff000 ? (size_t)c->body_left : 0x7ffff000;
        ssize_t n = sendfile(c->fd, file_fd, &c->body_off, want);
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1)
            return errno == EAGAIN ? IO_AGAIN : IO_GONE;
        if (n == 0)
            return IO_GONE; /* the file shrank: the answer cannot be completed */
        c->body_left -= (uint64_t)n;
    }
    c->head_off = c->head_len = 0;
    return IO_DONE;
}

static enum io conn_read(struct conn *c)
{
    ssize_t n;

    if (c->in_off > 0) {
        memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
        c->in_len -= c->in_off;
        c->in_off = 0;
    }
    do
        n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, 0);
    while (n == -1 && errno == EINTR);
    if (n == -1 && errno == EAGAIN)
        return IO_AGAIN;
    if (n <= 0)
        return IO_GONE;
    c->in_len += (size_t)n;
    return IO_DONE;
}

/* Runs C until its socket says EAGAIN (the epoll set is edge-triggered):
 * the answer in progress first, then the buffered requests in order, then
 * more bytes. Reading waits while an answer is in progress, so a client
 * that pipelines is held by its own socket. */
static void conn_run(struct conn *c)
{
    for (;;) {
        if (c->head_len > 0) {
            enum io rc = conn_send(c);
            if (rc == IO_AGAIN)
                return;
            if (rc == IO_GONE) {
                conn_close(c);
                return;
            }
            if (c->close_after) {
                conn_finish(c);
                return;
            }
        }
        switch (take_request(c)) {
        case REQ_OK:
            continue;
        case REQ_BAD:
            answer_bad(c);
            continue;
        case REQ_MORE:
            break;
        }
        switch (conn_read(c)) {
        case IO_DONE:
            break;
        case IO_AGAIN:
            return;
        case IO_GONE:
            conn_close(c);
            return;
        }
    }
}

/* One connection per event, as nginx without multi_accept: the listening
 * socket is level-triggered, so the next one wakes a worker again, and a
 * burst of connections is spread over the workers instead of landing on
 * the first one awake. */
static void accept_one(int ep, int lfd)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET};
    struct conn *c;
    int one = 1, fd;

    do
        fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    while (fd == -1 && (errno == EINTR || errno == ECONNABORTED));
    if (fd == -1) {
        if (errno != EAGAIN)
            fprintf(stderr, "talas-bench-floor-server: accept4() failed: %s\n", strerror(errno));
        return;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if ((c = calloc(1, sizeof(*c))) == NULL) {
        close(fd);
        return;
    }
    c->fd = fd;
    ev.data.ptr = c;
    /* a request already here raises the first event at once */
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
        conn_close(c);
}

/* --------------------------------------------------------- processes */

static void worker_run(int lfd)
{
    struct epoll_event evs[EVENTS], lev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = NULL};
    int ep = epoll_create1(EPOLL_CLOEXEC);

    if (ep == -1 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) != 0)
        fatal("worker %d: epoll: %s", (int)getpid(), strerror(errno));
    for (;;) {
        int n = epoll_wait(ep, evs, EVENTS, -1);
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1)
            fatal("worker %d: epoll_wait() failed: %s", (int)getpid(), strerror(errno));
        for (int k = 0; k < n; k++) {
            if (evs[k].data.ptr == NULL)
                accept_one(ep, lfd);
            else
                conn_run(evs[k].data.ptr);
        }
    }
}

static pid_t worker_spawn(int lfd, pid_t master)
{
    sigset_t none;
    pid_t pid = fork();

    if (pid != 0)
        return pid;
    /* the master's signals were blocked for sigwaitinfo(): a worker takes
     * SIGTERM's default action, and goes with a master killed outright */
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_IGN); /* sendfile() has no MSG_NOSIGNAL */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != master)
        _exit(1);
    worker_run(lfd);
    _exit(1);
}

/* Stops the workers still running and waits for them. */
static void workers_stop(pid_t *pids, int n)
{
    for (int i = 0; i < n; i++)
        if (pids[i] > 0)
            kill(pids[i], SIGTERM);
    for (int i = 0; i < n; i++)
        if (pids[i] > 0)
            while (waitpid(pids[i], NULL, 0) == -1 && errno == EINTR)
                continue;
}

/* The master's life: until SIGTERM or SIGINT (exit 0), or until a worker
 * dies (exit 1: the benchmark must not go on with fewer workers). */
static int master_wait(const sigset_t *set, pid_t *pids, int n)
{
    for (;;) {
        int sig = sigwaitinfo(set, NULL), status;
        pid_t pid;

        if (sig == -1)
            continue;
        if (sig != SIGCHLD) {
            workers_stop(pids, n);
            return 0;
        }
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            for (int i = 0; i < n; i++)
                if (pids[i] == pid)
                    pids[i] = 0;
            fprintf(stderr, "talas-bench-floor-server: worker %d %s %d: stopping\n", (int)pid,
                    WIFSIGNALED(status) ? "killed by signal" : "exited with status",
                    WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
            workers_stop(pids, n);
            return 1;
        }
    }
}

/* ------------------------------------------------------------ set-up */

static int listen_on(int port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd == -1)
        fatal("socket() failed: %s", strerror(errno));
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(fd, 4096) != 0)
        fatal("bind()/listen() on 127.0.0.1:%d failed: %s", port, strerror(errno));
    return fd;
}

static void open_file(const char *path)
{
    struct stat sb;

    if ((file_fd = open(path, O_RDONLY | O_CLOEXEC)) == -1 || fstat(file_fd, &sb) != 0)
        fatal("open(\"%s\") failed: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        fatal("%s is not a regular file", path);
    file_size = (uint64_t)sb.st_size;
}

/* As OpenBSD's daemons do: groups, then group, then user. */
static void drop_privileges(const char *user)
{
    struct passwd *pw = getpwnam(user);

    if (pw == NULL)
        fatal("unknown user %s", user);
    if (setgroups(1, &pw->pw_gid) != 0 || setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) != 0 ||
        setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) != 0)
        fatal("cannot drop privileges to %s: %s", user, strerror(errno));
}

int main(int argc, char **argv)
{
    pid_t pids[MAX_WORKERS];
    const char *path = NULL, *user = NULL;
    int c, port = 0, workers = 1, lfd;
    struct rlimit rl;
    sigset_t set;

    while ((c = getopt(argc, argv, "p:f:w:u:")) != -1) {
        switch (c) {
        case 'p':
            port = (int)number(optarg, 1, 65535);
            break;
        case 'f':
            path = optarg;
            break;
        case 'w':
            workers = (int)number(optarg, 1, MAX_WORKERS);
            break;
        case 'u':
            user = optarg;
            break;
        default:
            usage();
        }
    }
    if (optind != argc || port == 0 || path == NULL)
        usage();
    /* one descriptor per connection, however many the client opens */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    open_file(path);
    lfd = listen_on(port);
    if (user != NULL && geteuid() == 0)
        drop_privileges(user);
    /* blocked before the first fork, so that no SIGCHLD or SIGTERM is lost */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);
    for (int i = 0; i < workers; i++)
        if ((pids[i] = worker_spawn(lfd, getpid())) == -1) {
            fprintf(stderr, "talas-bench-floor-server: fork() failed: %s\n", strerror(errno));
            workers_stop(pids, i);
            return 1;
        }
    fprintf(stderr, "talas-bench-floor-server: %d worker(s) on 127.0.0.1:%d serving %s (%" PRIu64 " bytes)\n",
            workers, port, path, file_size);
    return master_wait(&set, pids, workers);
}
