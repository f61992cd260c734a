/*
 * h2o_harness.h - a real h2o server on a loopback port, inside a unit test,
 * and plain clients for it (HTTP/1.1, and HTTP/2 by prior knowledge with
 * frames written by hand), for the modules that count connections and
 * requests (test_conn_limits.c, test_transcode_limit.c).
 *
 * One thread: the test connects a client (the kernel completes the
 * handshake), writes a request, then turns the server's loop
 * (test_server_run) until what it waits for has happened. The server calls
 * the test's ON_ACCEPT for each new socket (refuse it by returning -1) and
 * ON_REQ for each request.
 */
#ifndef TALAS_TEST_H2O_HARNESS_H
#define TALAS_TEST_H2O_HARNESS_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <h2o.h>

#include "core/log.h"
#include "core/util.h"

struct test_server {
    h2o_globalconf_t globalconf;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_loop_t *loop;
    h2o_socket_t *listener;
    int port;
    /* 0: hand the socket to h2o; -1: it was refused (closed here). What
     * it leaves in sock->on_close.data goes to ON_CLOSE when the socket
     * closes (as worker.c hands its struct talas_conn over). */
    int (*on_accept)(struct test_server *srv, h2o_socket_t *sock);
    void (*on_close)(struct test_server *srv, void *data);
    int (*on_req)(struct test_server *srv, h2o_req_t *req);
    size_t open;        /* accepted sockets not yet closed */
    size_t requests;    /* requests that reached ON_REQ */
    h2o_socket_t *last; /* the last socket accepted */
    struct test_sock_close *socks; /* the accepted sockets not yet closed */
    void *data;         /* the test's */
};

struct test_handler {
    h2o_handler_t super;
    struct test_server *srv;
};

struct test_sock_close {
    struct test_server *srv;
    void *data;
    h2o_socket_t *sock;
    struct test_sock_close *prev, *next;
};

static inline int test_server_on_req(h2o_handler_t *self, h2o_req_t *req)
{
    struct test_server *srv = ((struct test_handler *)self)->srv;

    srv->requests++;
    return srv->on_req(srv, req);
}

static inline void test_server_sock_closed(void *p)
{
    struct test_sock_close *c = p;

    c->srv->open--;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        c->srv->socks = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    if (c->srv->on_close != NULL)
        c->srv->on_close(c->srv, c->data);
    free(c);
}

static inline void test_server_on_accept(h2o_socket_t *listener, const char *err)
{
    struct test_server *srv = listener->data;
    h2o_socket_t *sock;

    if (err != NULL)
        return;
    while ((sock = h2o_evloop_socket_accept(listener)) != NULL) {
        struct test_sock_close *c = xcalloc(1, sizeof(*c));
        c->srv = srv;
        srv->last = sock;
        if (srv->on_accept != NULL && srv->on_accept(srv, sock) != 0) {
            free(c);
            h2o_socket_close(sock);
            continue;
        }
        c->data = sock->on_close.data;
        c->sock = sock;
        c->next = srv->socks;
        if (srv->socks != NULL)
            srv->socks->prev = c;
        srv->socks = c;
        srv->open++;
        sock->on_close.cb = test_server_sock_closed;
        sock->on_close.data = c;
        h2o_accept(&srv->accept_ctx, sock);
    }
}

/* Starts SRV (its callbacks set) on 127.0.0.1, on a port of the kernel's
 * choosing (srv->port). */
static inline void test_server_start(struct test_server *srv)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    h2o_hostconf_t *host;
    h2o_pathconf_t *path;
    struct test_handler *h;
    int fd, on = 1;

    h2o_config_init(&srv->globalconf);
    host = h2o_config_register_host(&srv->globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    path = h2o_config_register_path(host, "/", 0);
    h = (struct test_handler *)h2o_create_handler(path, sizeof(*h));
    h->super.on_req = test_server_on_req;
    h->srv = srv;
    srv->loop = h2o_evloop_create();
    h2o_context_init(&srv->ctx, srv->loop, &srv->globalconf);
    srv->accept_ctx.ctx = &srv->ctx;
    srv->accept_ctx.hosts = srv->globalconf.hosts;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(fd, 64) != 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &len) != 0)
        fatal("test server: socket: %s", strerror(errno));
    srv->port = ntohs(sin.sin_port);
    srv->listener = h2o_evloop_socket_create(srv->loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    srv->listener->data = srv;
    h2o_socket_read_start(srv->listener, test_server_on_accept);
}

/*
 * Stops SRV: closes its listener and disposes of its context and
 * configuration, so a test leaves nothing behind for LeakSanitizer. The
 * loop turns until the connections whose clients hung up are closed (at
 * most 500 ms). h2o 2.2.5 cannot free an event loop (h2o_evloop_destroy
 * came with 2.3), nor close a connection that waits on its handler (a held
 * request): the stopped loop, and the sockets still open on it, stay
 * reachable from the lists below until the process exits.
 */
static struct {
    h2o_loop_t *loop;
    struct test_sock_close *socks;
} test_server_retired[64];
static size_t test_server_nretired;

static inline void test_server_stop(struct test_server *srv)
{
    uint64_t end = talas_now_ms() + 500;

    h2o_socket_close(srv->listener);
    srv->listener = NULL;
    h2o_evloop_run(srv->loop, 0);
    while (srv->open > 0 && talas_now_ms() < end)
        h2o_evloop_run(srv->loop, 5);
    h2o_context_dispose(&srv->ctx);
    h2o_config_dispose(&srv->globalconf);
    if (test_server_nretired < TALAS_ARRAY_SIZE(test_server_retired)) {
        test_server_retired[test_server_nretired].loop = srv->loop;
        test_server_retired[test_server_nretired++].socks = srv->socks;
    }
    srv->loop = NULL;
    srv->socks = NULL;
}

/* Turns the loop for about MS milliseconds, or until *DONE (may be NULL)
 * is non-zero. Returns *DONE (1 when DONE is NULL). */
static inline int test_server_run(struct test_server *srv, volatile int *done, uint64_t ms)
{
    uint64_t end = talas_now_ms() + ms;

    while ((done == NULL || !*done) && talas_now_ms() < end)
        h2o_evloop_run(srv->loop, 5);
    return done == NULL ? 1 : *done;
}

/* A blocking client connected to SRV from the loopback address FROM
 * ("127.0.0.2"...; NULL: any). */
static inline int test_client(struct test_server *srv, const char *from)
{
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons((uint16_t)srv->port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {2, 0};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), on = 1;

    if (fd < 0)
        fatal("test client: socket: %s", strerror(errno));
    if (from != NULL) {
        struct sockaddr_in src = {.sin_family = AF_INET};
        inet_pton(AF_INET, from, &src.sin_addr);
        if (bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0)
            fatal("test client: bind %s: %s", from, strerror(errno));
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0)
        fatal("test client: connect: %s", strerror(errno));
    return fd;
}

static inline void test_client_send(int fd, const void *data, size_t len)
{
    if (write(fd, data, len) != (ssize_t)len)
        fatal("test client: write: %s", strerror(errno));
}

/* What the client has received so far, appended to OUT: 1 when the server
 * closed the connection (EOF or reset), else 0. Never blocks. */
static inline int test_client_read(int fd, struct talas_buf *out)
{
    char buf[4096];

    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0) {
            talas_buf_append(out, buf, (size_t)n);
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            return 1;
        return 0;
    }
}

/* Turns SRV's loop until the client FD was closed by the server (1), or
 * MS have passed (0); what it received goes to OUT (may be NULL). */
static inline int test_client_closed(struct test_server *srv, int fd, struct talas_buf *out, uint64_t ms)
{
    struct talas_buf scratch = {0};
    uint64_t end = talas_now_ms() + ms;
    int closed = 0;

    do {
        h2o_evloop_run(srv->loop, 5);
        closed = test_client_read(fd, out != NULL ? out : &scratch);
    } while (!closed && talas_now_ms() < end);
    talas_buf_free(&scratch);
    return closed;
}

/* -------------------------------------------------- HTTP/2, by hand */

#define TEST_H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

static inline void test_h2_frame(int fd, unsigned type, unsigned flags, uint32_t stream, const void *payload,
                                 size_t len)
{
    uint8_t h[9] = {(uint8_t)(len >> 16),    (uint8_t)(len >> 8),    (uint8_t)len,
                    (uint8_t)type,           (uint8_t)flags,         (uint8_t)(stream >> 24 & 0x7f),
                    (uint8_t)(stream >> 16), (uint8_t)(stream >> 8), (uint8_t)stream};

    test_client_send(fd, h, sizeof(h));
    if (len > 0)
        test_client_send(fd, payload, len);
}

/* The connection preface and an empty SETTINGS frame. */
static inline void test_h2_start(int fd)
{
    test_client_send(fd, TEST_H2_PREFACE, sizeof(TEST_H2_PREFACE) - 1);
    test_h2_frame(fd, 4, 0, 0, NULL, 0);
}

/* HEADERS (END_STREAM | END_HEADERS) of GET / on STREAM: the static
 * table's :method GET, :scheme http, :path /, and :authority as a literal
 * without indexing. */
static inline void test_h2_get(int fd, uint32_t stream)
{
    static const uint8_t block[] = {0x82, 0x86, 0x84, 0x01, 9, 'l', 'o', 'c', 'a', 'l', 'h', 'o', 's', 't'};

    test_h2_frame(fd, 1, 0x05, stream, block, sizeof(block));
}

/* RST_STREAM (CANCEL) of STREAM. */
static inline void test_h2_cancel(int fd, uint32_t stream)
{
    static const uint8_t cancel[4] = {0, 0, 0, 8};

    test_h2_frame(fd, 3, 0, stream, cancel, sizeof(cancel));
}

#endif
