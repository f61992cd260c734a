/*
 * conn_limits.c - per-connection limits of a worker (see conn_limits.h).
 *
 * Entry points: talas_conn_limits_init, talas_conn_open, talas_conn_close,
 * talas_conn_count_request, talas_conn_set_parked, talas_conn_parked.
 *
 * Connections are found by their file descriptor (a table as long as
 * RLIMIT_NOFILE), so that a request's disposal, which may outlive nothing
 * but may run while its connection is being torn down, can tell whether the
 * connection it counts against is still the same one (a serial number).
 * Client addresses are counted in a small chained hash table; an address
 * leaves it with its last connection.
 *
 * HTTP/2 "rapid reset" (CVE-2023-44487, not fixed in h2o 2.2.5): a client
 * opens a stream and cancels it at once, again and again; each reaches a
 * handler, which starts work that the cancel does not undo, and the
 * connection's concurrency limit never applies since cancelled streams do
 * not count. Each HTTP/2 connection here counts the requests it opens and
 * those it cancels (disposed of before their response was complete) in the
 * current second (a request disposed of before its response began or before
 * its announced length was sent counts as cancelled: h2o 2.2.5 does
 * not tell more); past either limit the socket is shut down (shutdown(2)):
 * h2o then reads EOF and closes the connection with everything on it.
 *
 * Logs: refused connections (warn, at most every 10 seconds, with a count),
 * connections shut down for churn (warn, once each), a file descriptor
 * limit too low for http.max_connections (warn: the worker then keeps
 * fewer connections, since accept(2) failing with EMFILE would make its
 * loop spin on the listener).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "http/conn_limits.h"
#include "core/log.h"
#include "core/util.h"

#define ADDR_BUCKETS 4096
#define REFUSAL_LOG_INTERVAL_MS 10000
/* descriptors a worker needs besides its connections: listeners, LMDB,
 * logs, open files of responses, the encoders' sources */
#define FD_RESERVE 256

struct addr {
    struct addr *next;
    unsigned char ip[16]; /* IPv4 as IPv4-mapped IPv6 */
    size_t connections;
};

struct talas_conn {
    int fd;
    uint64_t serial;
    struct addr *addr; /* NULL: not an IP connection */
    void *parked;      /* http_stream.c's */
    /* HTTP/2 churn, in the second that began at window_ms */
    uint64_t window_ms;
    unsigned streams, resets;
    int shut; /* shut down for churn */
};

/* What a request's disposal needs to find its connection again. */
struct request_mark {
    int fd;
    uint64_t serial;
    h2o_req_t *req;
};

static struct {
    const struct talas_config *conf;
    struct talas_conn **by_fd;
    size_t fd_max;
    size_t max_connections; /* http.max_connections, or less if fd_max is too low */
    uint64_t serial;
    size_t connections;
    struct addr *addrs[ADDR_BUCKETS];
    uint64_t refusal_logged_ms;
    size_t refused_worker, refused_ip;
} c;

/* Raises the soft RLIMIT_NOFILE to WANT when the hard limit allows; returns
 * the descriptors this process may have. */
static size_t raise_fd_limit(size_t want)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1024;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        rlim_t old = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            rl.rlim_cur = old;
    }
    return rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 1u << 24 ? 1u << 24 : (size_t)rl.rlim_cur;
}

void talas_conn_limits_init(const struct talas_worker_ctx *ctx)
{
    const struct talas_config *conf = ctx->conf;
    size_t want = (size_t)conf->http_max_connections + FD_RESERVE;

    /* A worker sets the module up once; a second call (the unit tests, one
     * per case) starts afresh and releases the tables of the first. The
     * connections those tables held are the caller's, closed or not. */
    for (size_t i = 0; i < ADDR_BUCKETS; i++) {
        while (c.addrs[i] != NULL) {
            struct addr *next = c.addrs[i]->next;
            free(c.addrs[i]);
            c.addrs[i] = next;
        }
    }
    if (c.by_fd != NULL) {
        for (size_t i = 0; i < c.fd_max; i++)
            free(c.by_fd[i]);
        free(c.by_fd);
    }
    memset(&c, 0, sizeof(c));
    c.conf = conf;
    c.fd_max = raise_fd_limit(want);
    c.max_connections = (size_t)conf->http_max_connections;
    /* accept(2) failing with EMFILE would leave the listener readable: the
     * loop would spin on it. Better to refuse cleanly below the limit. */
    if (c.fd_max < want) {
        c.max_connections = c.fd_max > 2 * FD_RESERVE ? c.fd_max - FD_RESERVE : c.fd_max / 2;
        log_warn(
            "the file descriptor limit (%zu) is too low for http.max_connections (%d): this worker keeps "
            "at most %zu connections; raise the limit (ulimit -n, LimitNOFILE=) to %zu",
            c.fd_max, conf->http_max_connections, c.max_connections, want);
    }
    c.by_fd = xcalloc(c.fd_max, sizeof(*c.by_fd));
}

/* ------------------------------------------------------------ addresses */

static int peer_ip(h2o_socket_t *sock, unsigned char ip[16])
{
    struct sockaddr_storage ss;
    socklen_t len = h2o_socket_getpeername(sock, (struct sockaddr *)&ss);

    if (len == 0)
        return -1;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const void *)&ss;
        memset(ip, 0, 10);
        ip[10] = ip[11] = 0xff;
        memcpy(ip + 12, &sin->sin_addr, 4);
        return 0;
    }
    if (ss.ss_family == AF_INET6) {
        memcpy(ip, &((const struct sockaddr_in6 *)(const void *)&ss)->sin6_addr, 16);
        return 0;
    }
    return -1;
}

static size_t addr_bucket(const unsigned char ip[16])
{
    uint32_t h = 2166136261u;

    for (int i = 0; i < 16; i++)
        h = (h ^ ip[i]) * 16777619u;
    return h % ADDR_BUCKETS;
}

static struct addr *addr_find(const unsigned char ip[16], int create)
{
    struct addr **head = &c.addrs[addr_bucket(ip)], *a;

    for (a = *head; a != NULL; a = a->next)
        if (memcmp(a->ip, ip, 16) == 0)
            return a;
    if (!create)
        return NULL;
    a = xcalloc(1, sizeof(*a));
    memcpy(a->ip, ip, 16);
    a->next = *head;
    *head = a;
    return a;
}

static void addr_release(struct addr *a)
{
    struct addr **p;

    if (--a->connections > 0)
        return;
    for (p = &c.addrs[addr_bucket(a->ip)]; *p != a; p = &(*p)->next)
        ;
    *p = a->next;
    free(a);
}

static const char *ip_string(const unsigned char ip[16], char buf[INET6_ADDRSTRLEN])
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    if (memcmp(ip, mapped, 12) == 0)
        return inet_ntop(AF_INET, ip + 12, buf, INET6_ADDRSTRLEN);
    return inet_ntop(AF_INET6, ip, buf, INET6_ADDRSTRLEN);
}

/* ---------------------------------------------------------- connections */

static void count_refusal(int per_ip)
{
    uint64_t now = talas_now_ms();

    if (per_ip)
        c.refused_ip++;
    else
        c.refused_worker++;
    if (now - c.refusal_logged_ms < REFUSAL_LOG_INTERVAL_MS)
        return;
    log_warn(
        "connections refused: %zu at http.max_connections (%zu), %zu at http.max_connections_per_ip (%d)",
        c.refused_worker, c.max_connections, c.refused_ip, c.conf->http_max_connections_per_ip);
    c.refusal_logged_ms = now;
    c.refused_worker = c.refused_ip = 0;
}

struct talas_conn *talas_conn_open(h2o_socket_t *sock)
{
    int fd = h2o_socket_get_fd(sock);
    unsigned char ip[16];
    struct addr *a = NULL;
    struct talas_conn *conn;

    if (fd < 0 || (size_t)fd >= c.fd_max || c.connections >= c.max_connections) {
        count_refusal(0);
        return NULL;
    }
    if (peer_ip(sock, ip) == 0) {
        a = addr_find(ip, c.conf->http_max_connections_per_ip > 0);
        if (a != NULL && c.conf->http_max_connections_per_ip > 0 &&
            a->connections >= (size_t)c.conf->http_max_connections_per_ip) {
            count_refusal(1);
            return NULL;
        }
        if (a == NULL)
            a = addr_find(ip, 1);
        a->connections++;
    }
    conn = xcalloc(1, sizeof(*conn));
    conn->fd = fd;
    conn->serial = ++c.serial;
    conn->addr = a;
    c.by_fd[fd] = conn;
    c.connections++;
    return conn;
}

void talas_conn_close(struct talas_conn *conn)
{
    if (conn == NULL)
        return;
    if (c.by_fd[conn->fd] == conn)
        c.by_fd[conn->fd] = NULL;
    if (conn->addr != NULL)
        addr_release(conn->addr);
    c.connections--;
    free(conn);
}

static struct talas_conn *conn_of_socket(h2o_socket_t *sock)
{
    int fd;

    if (sock == NULL || (fd = h2o_socket_get_fd(sock)) < 0 || (size_t)fd >= c.fd_max)
        return NULL;
    return c.by_fd[fd];
}

void talas_conn_set_parked(h2o_socket_t *sock, void *p)
{
    struct talas_conn *conn = conn_of_socket(sock);

    if (conn != NULL)
        conn->parked = p;
}

void *talas_conn_parked(h2o_socket_t *sock)
{
    struct talas_conn *conn = conn_of_socket(sock);

    return conn != NULL ? conn->parked : NULL;
}

/* ---------------------------------------------------------------- churn */

static void roll_window(struct talas_conn *conn, uint64_t now)
{
    if (now - conn->window_ms >= 1000) {
        conn->window_ms = now;
        conn->streams = conn->resets = 0;
    }
}

static void shut(struct talas_conn *conn, const char *what, unsigned count, int limit)
{
    char buf[INET6_ADDRSTRLEN];

    if (conn->shut)
        return;
    conn->shut = 1;
    log_warn("HTTP/2 connection from %s closed: %u %s in a second (http2.max_%s_per_second: %d)",
             conn->addr != NULL ? ip_string(conn->addr->ip, buf) : "?", count, what, what, limit);
    /* h2o reads EOF next and closes the connection with its streams */
    if (shutdown(conn->fd, SHUT_RDWR) != 0 && errno != ENOTCONN)
        log_warn("%s: shutdown() failed: %s", __func__, strerror(errno));
}

static void on_request_dispose(void *p)
{
    struct request_mark *mark = p;
    h2o_req_t *req = mark->req;
    struct talas_conn *conn;

    if ((size_t)mark->fd >= c.fd_max || (conn = c.by_fd[mark->fd]) == NULL || conn->serial != mark->serial ||
        conn->shut)
        return;
    /* h2o 2.2.5 does not say why a stream closed; a request disposed of
     * before its response began, or before all of its announced length was
     * sent, was cancelled (RST_STREAM, or the connection went away) */
    if (req->res.status != 0 &&
        (req->res.content_length == SIZE_MAX || req->bytes_sent >= req->res.content_length ||
         h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"))))
        return;
    roll_window(conn, talas_now_ms());
    conn->resets++;
    if (c.conf->http2_max_resets_per_second > 0 &&
        conn->resets > (unsigned)c.conf->http2_max_resets_per_second)
        shut(conn, "resets", conn->resets, c.conf->http2_max_resets_per_second);
}

int talas_conn_count_request(h2o_req_t *req)
{
    struct talas_conn *conn;
    struct request_mark *mark;

    if (req->version < 0x200 || req->conn->callbacks->get_socket == NULL)
        return 0;
    if ((conn = conn_of_socket(req->conn->callbacks->get_socket(req->conn))) == NULL)
        return 0;
    if (conn->shut)
        return -1;
    roll_window(conn, talas_now_ms());
    conn->streams++;
    if (c.conf->http2_max_streams_per_second > 0 &&
        conn->streams > (unsigned)c.conf->http2_max_streams_per_second) {
        shut(conn, "streams", conn->streams, c.conf->http2_max_streams_per_second);
        return -1;
    }
    mark = h2o_mem_alloc_shared(&req->pool, sizeof(*mark), on_request_dispose);
    mark->fd = conn->fd;
    mark->serial = conn->serial;
    mark->req = req;
    return 0;
}
