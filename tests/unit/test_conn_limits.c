/*
 * test_conn_limits.c - the per-connection limits of
 * workers/http/conn_limits.c, on a real h2o server (h2o_harness.h) with
 * real client sockets from several loopback addresses.
 *
 * Connections: the worker's http.max_connections and
 * http.max_connections_per_ip (a refused client sees its connection closed
 * before any answer), released when a connection closes, a parked pointer
 * per connection. HTTP/2 churn (CVE-2023-44487): streams opened, and
 * streams cancelled with RST_STREAM, per connection and second, past which
 * the connection is shut down; completed requests are not cancellations;
 * HTTP/1.1 is never counted; the counts start again the next second.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/config.h"
#include "core/log.h"
#include "http/conn_limits.h"
#include "h2o_harness.h"
#include "worker/worker_ctx.h"

/* what the server's handler does with a request */
enum mode {
    ANSWER, /* counts it, then answers 200 at once */
    HOLD,   /* counts it and leaves it waiting (to be cancelled) */
};

struct fixture {
    struct talas_config *conf;
    struct talas_worker_ctx ctx; /* what worker.c hands the module: here only conf */
    struct test_server srv;
    enum mode mode;
    int refused_requests; /* talas_conn_count_request said -1 */
};

static int on_accept(struct test_server *srv, h2o_socket_t *sock)
{
    struct talas_conn *conn = talas_conn_open(sock);

    if (conn == NULL)
        return -1;
    sock->on_close.data = conn;
    return 0;
}

static void on_close(struct test_server *srv, void *data)
{
    talas_conn_close(data);
}

static int on_req(struct test_server *srv, h2o_req_t *req)
{
    struct fixture *fx = srv->data;

    if (talas_conn_count_request(req) != 0) {
        fx->refused_requests++;
        h2o_send_error_503(req, "Service Unavailable", "churn", 0);
        return 0;
    }
    if (fx->mode == HOLD)
        return 0;
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_send_inline(req, H2O_STRLIT("ok\n"));
    return 0;
}

/*
 * The one place the module is set up: a configuration with the limits in
 * YAML (the http: and http2: sections), talas_conn_limits_init, and a
 * server whose accepts and requests go through the module as worker.c's
 * do.
 */
static void fx_init(struct fixture *fx, const char *limits)
{
    char *text, *error = NULL;

    memset(fx, 0, sizeof(*fx));
    text = xasprintf("listen:\n  - port: 8082\nlibrary:\n  paths: [/nonexistent/music]\nstorage:\n"
                     "  path: /nonexistent/talas.lmdb\n%s",
                     limits);
    if (talas_config_load_string("t.yaml", text, strlen(text), &fx->conf, &error) != 0)
        fail_msg("talas_config_load_string: %s", error);
    free(text);
    fx->ctx.conf = fx->conf;
    talas_conn_limits_init(&fx->ctx);
    fx->srv.on_accept = on_accept;
    fx->srv.on_close = on_close;
    fx->srv.on_req = on_req;
    fx->srv.data = fx;
    test_server_start(&fx->srv);
}

/* Stops the server and releases the configuration: a case leaves nothing
 * behind (the sanitizer build checks for leaks). */
static void fx_done(struct fixture *fx)
{
    test_server_stop(&fx->srv);
    talas_config_free(fx->conf);
}

/* A client from FROM: 1 when the server kept it (it answers a request),
 * 0 when it closed it at once. The kept connection's socket is *FD_R. */
static int connect_from(struct fixture *fx, const char *from, int *fd_r)
{
    static const char get[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    struct talas_buf in = {0};
    int fd = test_client(&fx->srv, from), kept;
    uint64_t end = talas_now_ms() + 2000;

    test_client_send(fd, get, sizeof(get) - 1);
    while (!test_client_read(fd, &in) && memmem(in.data ? in.data : "", in.len, "ok\n", 3) == NULL &&
           talas_now_ms() < end)
        h2o_evloop_run(fx->srv.loop, 5);
    kept = in.len > 0 && memmem(in.data, in.len, "HTTP/1.1 200", 12) != NULL;
    talas_buf_free(&in);
    if (!kept) {
        close(fd);
        fd = -1;
    }
    *fd_r = fd;
    return kept;
}

/* Closes the client FD and turns the loop until the server has closed its
 * side (and the module has released the connection). */
static void hang_up(struct fixture *fx, int fd)
{
    size_t open = fx->srv.open;

    close(fd);
    for (uint64_t end = talas_now_ms() + 2000; fx->srv.open == open && talas_now_ms() < end;)
        h2o_evloop_run(fx->srv.loop, 5);
    assert_int_equal(fx->srv.open, open - 1);
}

static void test_connections_per_ip_and_per_worker(void **state)
{
    struct fixture fx;
    int a1, a2, a3, b1, c1;

    fx_init(&fx, "http:\n  max_connections: 3\n  max_connections_per_ip: 2\n");
    assert_true(connect_from(&fx, "127.0.0.1", &a1));
    assert_true(connect_from(&fx, "127.0.0.1", &a2));
    /* a third from the same address */
    assert_false(connect_from(&fx, "127.0.0.1", &a3));
    /* another address still gets in, up to the worker's limit */
    assert_true(connect_from(&fx, "127.0.0.2", &b1));
    assert_false(connect_from(&fx, "127.0.0.3", &c1));
    assert_int_equal(fx.srv.open, 3);

    /* a connection that closes gives its place back, to its address and
     * to the worker */
    hang_up(&fx, a1);
    assert_true(connect_from(&fx, "127.0.0.1", &a1));
    assert_false(connect_from(&fx, "127.0.0.3", &c1));
    hang_up(&fx, b1);
    assert_true(connect_from(&fx, "127.0.0.3", &c1));
    assert_false(connect_from(&fx, "127.0.0.1", &a3));
    hang_up(&fx, a1);
    hang_up(&fx, a2);
    /* the address left the table: both places are free again */
    assert_true(connect_from(&fx, "127.0.0.1", &a1));
    assert_true(connect_from(&fx, "127.0.0.1", &a2));
    assert_false(connect_from(&fx, "127.0.0.1", &a3));
    hang_up(&fx, a1);
    hang_up(&fx, a2);
    hang_up(&fx, c1);
    fx_done(&fx);
}

/* max_connections_per_ip: 0 is no limit per address. */
static void test_no_per_ip_limit(void **state)
{
    struct fixture fx;
    int fds[5], extra;

    fx_init(&fx, "http:\n  max_connections: 5\n  max_connections_per_ip: 0\n");
    for (int i = 0; i < 5; i++)
        assert_true(connect_from(&fx, "127.0.0.1", &fds[i]));
    assert_false(connect_from(&fx, "127.0.0.1", &extra));
    for (int i = 0; i < 5; i++)
        hang_up(&fx, fds[i]);
    fx_done(&fx);
}

/* The parked pointer belongs to the connection, and goes with it. */
static void test_parked(void **state)
{
    struct fixture fx;
    h2o_socket_t *sock;
    int fd, marker;

    fx_init(&fx, "");
    assert_true(connect_from(&fx, "127.0.0.1", &fd));
    sock = fx.srv.last;
    assert_null(talas_conn_parked(sock));
    talas_conn_set_parked(sock, &marker);
    assert_ptr_equal(talas_conn_parked(sock), &marker);
    talas_conn_set_parked(sock, NULL);
    assert_null(talas_conn_parked(sock));
    talas_conn_set_parked(sock, &marker);
    hang_up(&fx, fd);
    assert_null(talas_conn_parked(NULL));
    fx_done(&fx);
}

/* Turns the loop until N requests in all have reached the handler. */
static void wait_requests(struct fixture *fx, size_t n)
{
    for (uint64_t end = talas_now_ms() + 2000; fx->srv.requests < n && talas_now_ms() < end;)
        h2o_evloop_run(fx->srv.loop, 5);
    assert_int_equal(fx->srv.requests, n);
}

/* More streams in a second than http2.max_streams_per_second: the one
 * past the limit is refused and the connection shut down. */
static void test_h2_stream_rate(void **state)
{
    struct fixture fx;
    int fd;

    fx_init(&fx, "http2:\n  max_streams_per_second: 5\n  max_resets_per_second: 100\n");
    fx.mode = ANSWER;
    fd = test_client(&fx.srv, NULL);
    test_h2_start(fd);
    for (uint32_t i = 0; i < 5; i++)
        test_h2_get(fd, 1 + 2 * i);
    wait_requests(&fx, 5);
    assert_int_equal(fx.refused_requests, 0);
    assert_false(test_client_closed(&fx.srv, fd, NULL, 100));
    test_h2_get(fd, 11);
    wait_requests(&fx, 6);
    assert_int_equal(fx.refused_requests, 1);
    assert_true(test_client_closed(&fx.srv, fd, NULL, 2000));
    close(fd);
    test_server_run(&fx.srv, NULL, 50);
    fx_done(&fx);
}

/* The counts are per second: the same number of streams spread over two
 * seconds passes. */
static void test_h2_stream_rate_window(void **state)
{
    struct fixture fx;
    int fd;

    fx_init(&fx, "http2:\n  max_streams_per_second: 4\n");
    fx.mode = ANSWER;
    fd = test_client(&fx.srv, NULL);
    test_h2_start(fd);
    for (uint32_t i = 0; i < 4; i++)
        test_h2_get(fd, 1 + 2 * i);
    wait_requests(&fx, 4);
    test_server_run(&fx.srv, NULL, 1100);
    for (uint32_t i = 4; i < 8; i++)
        test_h2_get(fd, 1 + 2 * i);
    wait_requests(&fx, 8);
    assert_int_equal(fx.refused_requests, 0);
    assert_false(test_client_closed(&fx.srv, fd, NULL, 100));
    close(fd);
    test_server_run(&fx.srv, NULL, 50);
    fx_done(&fx);
}

/* Rapid reset: streams opened and cancelled at once. Past
 * http2.max_resets_per_second cancellations the connection is shut down;
 * requests that were answered in full are not cancellations. */
static void test_h2_rapid_reset(void **state)
{
    struct fixture fx;
    int fd;

    fx_init(&fx, "http2:\n  max_streams_per_second: 1000\n  max_resets_per_second: 3\n");
    /* answered requests first: however many, no reset is counted */
    fx.mode = ANSWER;
    fd = test_client(&fx.srv, NULL);
    test_h2_start(fd);
    for (uint32_t i = 0; i < 8; i++)
        test_h2_get(fd, 1 + 2 * i);
    wait_requests(&fx, 8);
    assert_false(test_client_closed(&fx.srv, fd, NULL, 100));

    fx.mode = HOLD;
    for (uint32_t i = 8; i < 11; i++) {
        test_h2_get(fd, 1 + 2 * i);
        wait_requests(&fx, i + 1);
        test_h2_cancel(fd, 1 + 2 * i);
    }
    /* three cancellations: at the limit, not past it */
    assert_false(test_client_closed(&fx.srv, fd, NULL, 200));
    test_h2_get(fd, 23);
    wait_requests(&fx, 12);
    test_h2_cancel(fd, 23);
    assert_true(test_client_closed(&fx.srv, fd, NULL, 2000));
    close(fd);
    test_server_run(&fx.srv, NULL, 50);
    fx_done(&fx);
}

/* HTTP/1.1 requests are never counted against the HTTP/2 limits. */
static void test_http1_not_counted(void **state)
{
    static const char get[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    struct talas_buf in = {0};
    struct fixture fx;
    int fd;

    fx_init(&fx, "http2:\n  max_streams_per_second: 2\n");
    fx.mode = ANSWER;
    fd = test_client(&fx.srv, NULL);
    for (int i = 0; i < 6; i++) {
        test_client_send(fd, get, sizeof(get) - 1);
        wait_requests(&fx, (size_t)i + 1);
    }
    assert_false(test_client_closed(&fx.srv, fd, &in, 100));
    assert_int_equal(fx.refused_requests, 0);
    talas_buf_free(&in);
    close(fd);
    test_server_run(&fx.srv, NULL, 50);
    fx_done(&fx);
}

int main(void)
{
    /* as in a worker: a write to a connection shut down is EPIPE, not death */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connections_per_ip_and_per_worker),
        cmocka_unit_test(test_no_per_ip_limit),
        cmocka_unit_test(test_parked),
        cmocka_unit_test(test_h2_stream_rate),
        cmocka_unit_test(test_h2_stream_rate_window),
        cmocka_unit_test(test_h2_rapid_reset),
        cmocka_unit_test(test_http1_not_counted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
