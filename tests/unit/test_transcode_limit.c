/*
 * test_transcode_limit.c - the transcode slots of
 * workers/media/transcode_limit.c, taken by real requests on an h2o
 * server (h2o_harness.h) and counted across processes in a temporary LMDB
 * environment.
 *
 * The worker's limit (transcode.max_concurrent_per_worker) and the
 * server's (transcode.max_concurrent, summed over the live workers'
 * records): a refused request gets 503 with Retry-After and the JSON error
 * transcode_busy; a slot is given back when its request is done; a record
 * left by a dead process, or by a reused pid (another start time), is
 * ignored and deleted; a record of our own pid from an earlier process is
 * cleared at init; stop deletes ours.
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
#include <sys/prctl.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "core/config.h"
#include "media/transcode_limit.h"
#include "store/storage.h"
#include "h2o_harness.h"
#include "tmpdir.h"
#include "worker/worker_ctx.h"

#define MAX_HELD 16

struct fixture {
    char *dir;
    struct talas_config *conf;
    struct talas_storage *st;
    struct talas_worker_ctx ctx; /* what worker.c hands the module: conf and storage */
    struct test_server srv;
    h2o_req_t *held[MAX_HELD]; /* requests holding a slot, unanswered */
    size_t held_count;
};

static int on_req(struct test_server *srv, h2o_req_t *req)
{
    struct fixture *fx = srv->data;

    if (talas_transcode_slot_take(req) != 0)
        return 0; /* answered 503 */
    assert_true(fx->held_count < MAX_HELD);
    fx->held[fx->held_count++] = req;
    return 0;
}

static char *config_text(const char *limits)
{
    return xasprintf("listen:\n  - port: 8082\nlibrary:\n  paths: [/nonexistent/music]\nstorage:\n"
                     "  path: /nonexistent/talas.lmdb\ntranscode:\n%s",
                     limits);
}

/*
 * The one place the module is set up: the configuration's transcode:
 * section LIMITS, the storage in DIR (made when NULL), the module's init,
 * and a server whose requests each take a slot.
 */
static void fx_init(struct fixture *fx, const char *dir, const char *limits)
{
    char *text = config_text(limits), *error = NULL;

    memset(fx, 0, sizeof(*fx));
    fx->dir = dir != NULL ? xstrdup(dir) : test_tmpdir("tlimit");
    assert_non_null(fx->dir);
    if (talas_config_load_string("t.yaml", text, strlen(text), &fx->conf, &error) != 0)
        fail_msg("talas_config_load_string: %s", error);
    free(text);
    if (talas_storage_open(fx->dir, 16 << 20, &fx->st, &error) != 0)
        fail_msg("talas_storage_open: %s", error);
    fx->ctx.conf = fx->conf;
    fx->ctx.storage = fx->st;
    talas_transcode_limit_init(&fx->ctx);
    fx->srv.on_req = on_req;
    fx->srv.data = fx;
    test_server_start(&fx->srv);
}

static void fx_done(struct fixture *fx, int remove)
{
    test_server_stop(&fx->srv);
    talas_transcode_limit_stop();
    talas_config_free(fx->conf);
    talas_storage_close(fx->st);
    if (remove)
        test_rm_rf(fx->dir);
    free(fx->dir);
}

/* Asks for a transcode on a new connection: 1 when it holds a slot (no
 * answer yet), 0 when it was refused with the 503 of a busy server. */
static int ask(struct fixture *fx, int *fd_r)
{
    static const char get[] = "GET /stream/x?format=mp3 HTTP/1.1\r\nHost: localhost\r\n\r\n";
    struct talas_buf in = {0};
    size_t requests = fx->srv.requests;
    int fd = test_client(&fx->srv, NULL), got;

    test_client_send(fd, get, sizeof(get) - 1);
    for (uint64_t end = talas_now_ms() + 2000; fx->srv.requests == requests && talas_now_ms() < end;)
        h2o_evloop_run(fx->srv.loop, 5);
    assert_int_equal(fx->srv.requests, requests + 1);
    /* whatever answer there is has been written by now */
    for (int i = 0; i < 4; i++)
        h2o_evloop_run(fx->srv.loop, 5);
    test_client_read(fd, &in);
    got = in.len == 0;
    if (!got) {
        assert_non_null(memmem(in.data, in.len, "HTTP/1.1 503", 12));
        assert_non_null(memmem(in.data, in.len, "\r\nretry-after: 5\r\n", 18));
        assert_non_null(memmem(in.data, in.len, "\"transcode_busy\"", 16));
    }
    talas_buf_free(&in);
    *fd_r = fd;
    return got;
}

/* Ends the held request I: it is answered (its transcode done), and its
 * slot is given back. */
static void finish(struct fixture *fx, size_t i)
{
    h2o_req_t *req = fx->held[i];
    size_t slots = talas_transcode_slots();

    fx->held[i] = fx->held[--fx->held_count];
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_send_inline(req, H2O_STRLIT("done\n"));
    for (uint64_t end = talas_now_ms() + 2000; talas_transcode_slots() == slots && talas_now_ms() < end;)
        h2o_evloop_run(fx->srv.loop, 5);
    assert_int_equal(talas_transcode_slots(), slots - 1);
}

/* The record of PID: 1 with its slots in *SLOTS_R, 0 when there is none. */
static int record(struct fixture *fx, pid_t pid, uint64_t *slots_r)
{
    char key[64];
    MDB_val k, v;
    MDB_txn *txn;
    int rc;

    snprintf(key, sizeof(key), "transcodes.active.%ld", (long)pid);
    k.mv_data = key;
    k.mv_size = strlen(key);
    assert_int_equal(talas_storage_read_begin(fx->st, &txn), 0);
    rc = mdb_get(txn, talas_storage_dbi(fx->st, TALAS_DBI_META), &k, &v);
    if (rc == 0) {
        const unsigned char *p = v.mv_data;
        assert_int_equal(v.mv_size, 16);
        *slots_r = 0;
        for (int i = 7; i >= 0; i--)
            *slots_r = *slots_r << 8 | p[i];
    }
    mdb_txn_abort(txn);
    return rc == 0;
}

/* Writes a record for PID as another process would: SLOTS, START_TIME. */
static void put_record(struct talas_storage *st, pid_t pid, uint64_t slots, uint64_t start_time)
{
    char key[64];
    unsigned char rec[16];
    MDB_val k, v = {sizeof(rec), rec};
    MDB_txn *txn;

    snprintf(key, sizeof(key), "transcodes.active.%ld", (long)pid);
    k.mv_data = key;
    k.mv_size = strlen(key);
    for (int i = 0; i < 8; i++) {
        rec[i] = (unsigned char)(slots >> (8 * i));
        rec[8 + i] = (unsigned char)(start_time >> (8 * i));
    }
    assert_int_equal(talas_storage_write_begin(st, &txn), 0);
    assert_int_equal(mdb_put(txn, talas_storage_dbi(st, TALAS_DBI_META), &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
}

static void test_worker_limit(void **state)
{
    struct fixture fx;
    uint64_t n;
    int fds[4];

    fx_init(&fx, NULL, "  max_concurrent_per_worker: 2\n  max_concurrent: 0\n");
    assert_int_equal(talas_transcode_slots(), 0);
    assert_true(ask(&fx, &fds[0]));
    assert_true(ask(&fx, &fds[1]));
    assert_int_equal(talas_transcode_slots(), 2);
    assert_false(ask(&fx, &fds[2]));
    assert_int_equal(talas_transcode_slots(), 2);
    /* no server-wide limit: nothing is written */
    assert_false(record(&fx, getpid(), &n));
    /* a finished transcode gives its slot back */
    finish(&fx, 0);
    assert_int_equal(talas_transcode_slots(), 1);
    assert_true(ask(&fx, &fds[3]));
    assert_int_equal(talas_transcode_slots(), 2);
    finish(&fx, 0);
    finish(&fx, 0);
    assert_int_equal(talas_transcode_slots(), 0);
    for (int i = 0; i < 4; i++)
        close(fds[i]);
    fx_done(&fx, 1);
}

/* The server-wide count is this worker's record in the storage. */
static void test_own_record(void **state)
{
    struct fixture fx;
    char *dir = test_tmpdir("tlimit");
    int fds[3];
    uint64_t n = 0;

    /* a record of our pid left by an earlier process is cleared at init */
    {
        struct talas_storage *st;
        char *error = NULL;
        assert_int_equal(talas_storage_open(dir, 16 << 20, &st, &error), 0);
        put_record(st, getpid(), 50, 1);
        talas_storage_close(st);
    }
    fx_init(&fx, dir, "  max_concurrent_per_worker: 8\n  max_concurrent: 3\n");
    assert_false(record(&fx, getpid(), &n));
    assert_true(ask(&fx, &fds[0]));
    assert_true(record(&fx, getpid(), &n));
    assert_int_equal(n, 1);
    assert_true(ask(&fx, &fds[1]));
    assert_true(ask(&fx, &fds[2]));
    assert_true(record(&fx, getpid(), &n));
    assert_int_equal(n, 3);
    finish(&fx, 0);
    assert_true(record(&fx, getpid(), &n));
    assert_int_equal(n, 2);
    finish(&fx, 0);
    finish(&fx, 0);
    assert_false(record(&fx, getpid(), &n));
    for (int i = 0; i < 3; i++)
        close(fds[i]);
    fx_done(&fx, 1);
    free(dir);
}

/* Records of processes that are not what they claim count for nothing,
 * and are deleted: a dead pid, and a live pid with another start time. */
static void test_stale_records(void **state)
{
    struct fixture fx;
    pid_t dead;
    uint64_t n;
    int fds[3];

    dead = fork();
    assert_true(dead >= 0);
    if (dead == 0)
        _exit(0);
    assert_int_equal(waitpid(dead, NULL, 0), dead);

    fx_init(&fx, NULL, "  max_concurrent_per_worker: 8\n  max_concurrent: 2\n");
    put_record(fx.st, dead, 100, 1);
    put_record(fx.st, getppid(), 100, 1); /* alive, but started long after tick 1 */
    assert_true(ask(&fx, &fds[0]));
    assert_true(ask(&fx, &fds[1]));
    assert_false(ask(&fx, &fds[2]));
    assert_false(record(&fx, dead, &n));
    assert_false(record(&fx, getppid(), &n));
    finish(&fx, 0);
    finish(&fx, 0);
    for (int i = 0; i < 3; i++)
        close(fds[i]);
    fx_done(&fx, 1);
}

/* Another worker, a real process on the same storage, holds slots: they
 * count against transcode.max_concurrent until it dies. */
static void test_other_worker(void **state)
{
    static const char limits[] = "  max_concurrent_per_worker: 2\n  max_concurrent: 3\n";
    char *dir = test_tmpdir("tlimit");
    struct fixture fx, *other;
    int pipefd[2], port, fds[4], ofds[2];
    uint64_t n;
    pid_t pid;

    assert_non_null(dir);
    assert_int_equal(pipe(pipefd), 0);
    if ((pid = fork()) == 0) {
        /* the other worker: its own storage handle, module and server */
        other = xcalloc(1, sizeof(*other));
        /* it goes with this test, whatever way the test ends */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() == 1)
            _exit(1);
        close(pipefd[0]);
        fx_init(other, dir, limits);
        if (write(pipefd[1], &other->srv.port, sizeof(int)) != sizeof(int))
            _exit(1);
        for (;;)
            h2o_evloop_run(other->srv.loop, INT32_MAX);
    }
    assert_true(pid > 0);
    close(pipefd[1]);
    assert_int_equal(read(pipefd[0], &port, sizeof(port)), sizeof(port));
    close(pipefd[0]);

    fx_init(&fx, dir, limits);
    /* two transcodes on the other worker: its requests are answered by its
     * loop, so ask it with plain clients */
    for (int i = 0; i < 2; i++) {
        struct test_server to_other = {.port = port};
        static const char get[] = "GET /stream/x?format=mp3 HTTP/1.1\r\nHost: localhost\r\n\r\n";
        ofds[i] = test_client(&to_other, NULL);
        test_client_send(ofds[i], get, sizeof(get) - 1);
        for (uint64_t end = talas_now_ms() + 2000; !(record(&fx, pid, &n) && n == (uint64_t)i + 1);) {
            assert_true(talas_now_ms() < end);
            usleep(5000);
        }
    }
    /* 2 there + 1 here = 3: then the server is full */
    assert_true(ask(&fx, &fds[0]));
    assert_false(ask(&fx, &fds[1]));
    assert_int_equal(talas_transcode_slots(), 1);
    assert_true(record(&fx, getpid(), &n));
    assert_int_equal(n, 1);

    /* the other worker dies with its slots: they are free again, up to
     * this worker's own limit, and its record goes */
    kill(pid, SIGKILL);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    assert_true(ask(&fx, &fds[2]));
    assert_false(record(&fx, pid, &n));
    assert_false(ask(&fx, &fds[3]));
    assert_int_equal(talas_transcode_slots(), 2);

    /* stop deletes ours */
    finish(&fx, 0);
    assert_true(record(&fx, getpid(), &n));
    talas_transcode_limit_stop();
    assert_false(record(&fx, getpid(), &n));
    for (int i = 0; i < 4; i++)
        close(fds[i]);
    close(ofds[0]);
    close(ofds[1]);
    fx_done(&fx, 1);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worker_limit),
        cmocka_unit_test(test_own_record),
        cmocka_unit_test(test_stale_records),
        cmocka_unit_test(test_other_worker),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
