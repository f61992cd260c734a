/*
 * test_router.c - routes driven through h2o with a worker context built by
 * hand: no worker process, no socket.
 *
 * The context (worker_ctx.h) is made of a configuration loaded from a
 * string, a temporary LMDB store and a token verifier keyed by a secret in
 * a temporary file; the router is registered on an h2o host with it, and
 * requests go through h2o_process_request to an output stream that keeps
 * the body. Checks that each route answers from the context it was given:
 * the configured ladder, the worker's slot and generation, its auth
 * settings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "core/config.h"
#include "core/token.h"
#include "core/util.h"
#include "http/http_router.h"
#include "store/storage.h"
#include "worker/worker_ctx.h"
#include "tmpdir.h"

static struct {
    char *dir;
    struct talas_config *conf;
    struct talas_storage *storage;
    struct talas_token *token;
    h2o_globalconf_t globalconf;
    h2o_context_t h2o;
    h2o_loop_t *loop;
    struct talas_worker_ctx ctx;
} t;

/* The answer of the last request. */
static struct {
    int status;
    int done;
    struct talas_buf body;
    char content_type[64];
} res;

static void final_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt,
                       h2o_send_state_t state)
{
    for (size_t i = 0; i < bufcnt; i++)
        talas_buf_append(&res.body, bufs[i].base, bufs[i].len);
    if (!h2o_send_state_is_in_progress(state))
        res.done = 1;
}

static const h2o_conn_callbacks_t conn_callbacks = {NULL};

/* Sends METHOD PATH through h2o to the router; fills res. */
static void request(const char *method, const char *path)
{
    h2o_conn_t conn = {.ctx = &t.h2o, .hosts = t.globalconf.hosts, .id = 1, .callbacks = &conn_callbacks};
    h2o_ostream_t final = {.do_send = final_send};
    h2o_req_t req;
    ssize_t i;

    talas_buf_free(&res.body);
    memset(&res, 0, sizeof(res));
    h2o_init_request(&req, &conn, NULL);
    req.input.method = h2o_iovec_init(method, strlen(method));
    req.input.scheme = &H2O_URL_SCHEME_HTTP;
    req.input.authority = h2o_iovec_init(H2O_STRLIT("localhost"));
    req.input.path = h2o_iovec_init(path, strlen(path));
    req.version = 0x101;
    req._ostr_top = &final;
    h2o_process_request(&req);
    res.status = req.res.status;
    if ((i = h2o_find_header(&req.res.headers, H2O_TOKEN_CONTENT_TYPE, -1)) != -1)
        snprintf(res.content_type, sizeof(res.content_type), "%.*s",
                 (int)req.res.headers.entries[i].value.len, req.res.headers.entries[i].value.base);
    talas_buf_append(&res.body, "", 1); /* NUL-terminated, for strstr */
    h2o_dispose_request(&req);
}

static int setup(void **state)
{
    char *secret, *yaml, *error = NULL;
    FILE *f;

    (void)state;
    memset(&t, 0, sizeof(t));
    assert_non_null(t.dir = test_tmpdir("router"));
    secret = xasprintf("%s/hs256.secret", t.dir);
    assert_non_null(f = fopen(secret, "w"));
    fputs("0123456789abcdef0123456789abcdef0123456789a\n", f);
    fclose(f);
    chmod(secret, 0600);
    /* a ladder of its own, out of bitrate order */
    yaml = xasprintf("listen: [{port: 8082}]\n"
                     "library: {paths: [%s]}\n"
                     "storage: {path: %s/talas.lmdb, map_size: 16MiB}\n"
                     "auth: {required: true, algorithm: HS256, secret_file: %s}\n"
                     "transcode:\n"
                     "  profiles:\n"
                     "    - {name: tiny, codec: mp3, bitrate: 64, channels: 1}\n"
                     "    - {name: studio, codec: aac, bitrate: 256, bandwidth_estimate: 999}\n",
                     t.dir, t.dir, secret);
    if (talas_config_load_string("router.yaml", yaml, strlen(yaml), &t.conf, &error) != 0)
        fail_msg("config: %s", error);
    if (talas_token_create(t.conf, &t.token, &error) != 0)
        fail_msg("token: %s", error);
    if (talas_storage_open(t.conf->storage_path, t.conf->storage_map_size, &t.storage, &error) != 0)
        fail_msg("storage: %s", error);
    free(yaml);
    free(secret);

    h2o_config_init(&t.globalconf);
    talas_router_register(
        h2o_config_register_path(
            h2o_config_register_host(&t.globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535), "/", 0),
        &t.ctx);
    t.loop = h2o_evloop_create();
    h2o_context_init(&t.h2o, t.loop, &t.globalconf);
    /* filled after registering, as worker.c does */
    t.ctx.conf = t.conf;
    t.ctx.storage = t.storage;
    t.ctx.token = t.token;
    t.ctx.loop = t.loop;
    t.ctx.slot = 3;
    t.ctx.generation = 7;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    talas_buf_free(&res.body);
    h2o_context_dispose(&t.h2o);
    h2o_config_dispose(&t.globalconf);
    talas_storage_close(t.storage);
    talas_token_free(t.token);
    talas_config_free(t.conf);
    test_rm_rf(t.dir);
    free(t.dir);
    return 0;
}

/* GET /api/profiles: the context's ladder, in its order, every field. */
static void test_profiles_from_ctx(void **state)
{
    (void)state;
    request("GET", "/api/profiles");
    assert_int_equal(res.status, 200);
    assert_true(res.done);
    assert_string_equal(res.content_type, "application/json; charset=utf-8");
    assert_string_equal(
        res.body.data,
        "{\"profiles\":["
        "{\"quality_id\":\"tiny\",\"bitrate_kbps\":64,\"sample_rate\":44100,\"channels\":1,"
        "\"codec\":\"mp3\",\"file_extension\":\"mp3\",\"bandwidth_estimate_kbps\":80,\"hls\":false},"
        "{\"quality_id\":\"studio\",\"bitrate_kbps\":256,\"sample_rate\":44100,\"channels\":2,"
        "\"codec\":\"aac\",\"file_extension\":\"aac\",\"bandwidth_estimate_kbps\":999,\"hls\":true}"
        "]}\n");

    request("POST", "/api/profiles");
    assert_int_equal(res.status, 405);
}

/* GET /api/health reads the context's store and names its slot and
 * generation. */
static void test_health_from_ctx(void **state)
{
    (void)state;
    request("GET", "/api/health");
    assert_int_equal(res.status, 200);
    assert_non_null(strstr(res.body.data, "\"worker\":3,\"generation\":7,\"scan\":null"));
}

/* A media route checks the context's auth settings before anything else;
 * an unknown path is a JSON 404; the router sees h2o's normalised path. */
static void test_dispatch(void **state)
{
    (void)state;
    request("GET", "/stream/AAAAAAAAAAAAAAAA");
    assert_int_equal(res.status, 401);
    assert_non_null(strstr(res.body.data, "\"code\":\"unauthorized\""));

    request("GET", "/no/such/route");
    assert_int_equal(res.status, 404);
    assert_non_null(strstr(res.body.data, "\"code\":\"not_found\""));

    request("GET", "/stream/../api/profiles");
    assert_int_equal(res.status, 200);
    assert_non_null(strstr(res.body.data, "\"quality_id\":\"tiny\""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_profiles_from_ctx),
        cmocka_unit_test(test_health_from_ctx),
        cmocka_unit_test(test_dispatch),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
