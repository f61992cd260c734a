/*
 * test_config.c - talas.yaml loading: values, defaults, relative paths,
 * every kind of error with its exact "FILE:LINE:COL: key: reason", the
 * dump, the sample conf/talas.yaml of the source tree, and the default
 * ladder against talas.yaml(5).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"

/* The smallest valid file: the three required keys. Paths that cannot
 * exist, so that they are resolved lexically and predictably. */
#define BASE                                                                                                 \
    "listen:\n"                                                                                              \
    "  - port: 8082\n"                                                                                       \
    "library:\n"                                                                                             \
    "  paths: [/nonexistent/music]\n"                                                                        \
    "storage:\n"                                                                                             \
    "  path: /nonexistent/talas.lmdb\n"

static int load(const char *text, struct talas_config **conf_r, char **error_r)
{
    *conf_r = NULL;
    *error_r = NULL;
    return talas_config_load_string("t.yaml", text, strlen(text), conf_r, error_r);
}

static struct talas_config *load_ok(const char *text)
{
    struct talas_config *conf;
    char *error;

    if (load(text, &conf, &error) != 0) {
        print_error("unexpected error: %s\n", error);
        free(error);
        fail();
    }
    assert_non_null(conf);
    return conf;
}

static void assert_load_error(const char *text, const char *expected)
{
    struct talas_config *conf;
    char *error;

    assert_int_equal(load(text, &conf, &error), -1);
    assert_null(conf);
    assert_non_null(error);
    assert_string_equal(error, expected);
    free(error);
}

static long ncpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    return n < 1 ? 1 : n > 256 ? 256 : n;
}

static void test_defaults(void **state)
{
    struct talas_config *c = load_ok(BASE);
    char cwd[PATH_MAX], file[PATH_MAX + 16];

    assert_int_equal(c->listen_count, 1);
    assert_string_equal(c->listen[0].host, "0.0.0.0");
    assert_int_equal(c->listen[0].port, 8082);
    assert_null(c->listen[0].tls_certificate);
    assert_null(c->listen[0].tls_key);
    assert_int_equal(c->workers, ncpus());
    assert_int_equal(c->daemonize, 0);
    assert_null(c->pid_file);
    assert_null(c->user);
    assert_int_equal(c->shutdown_timeout_ms, 30000);
    assert_int_equal(c->library_path_count, 1);
    assert_string_equal(c->library_paths[0].path, "/nonexistent/music");
    assert_int_equal(c->library_extension_count, 20);
    assert_string_equal(c->library_extensions[0], "mp3");
    assert_string_equal(c->library_extensions[1], "flac");
    assert_string_equal(c->library_extensions[19], "mpc");
    assert_null(c->library_extensions[20]);
    assert_string_equal(c->storage_path, "/nonexistent/talas.lmdb");
    assert_int_equal(c->storage_map_size, UINT64_C(4) << 30);
    assert_int_equal(c->auth_required, 0);
    assert_string_equal(c->log_error, "stderr");
    assert_null(c->log_access);
    assert_int_equal(c->log_access_format, TALAS_ACCESS_LOG_COMBINED);
    assert_int_equal(c->log_level, TALAS_LOG_INFO);
    assert_int_equal(c->http_request_timeout_ms, 10000);
    assert_int_equal(c->http_max_request_body, 1 << 20);
    assert_null(c->http_www_root);
    assert_int_equal(c->http2_idle_timeout_ms, 10000);
    assert_int_equal(c->http2_max_concurrent_streams, 100);
    assert_int_equal(c->http_max_connections, 4096);
    assert_int_equal(c->http_max_connections_per_ip, 256);
    assert_int_equal(c->http2_max_streams_per_second, 1000);
    assert_int_equal(c->http2_max_resets_per_second, 100);
    assert_int_equal(c->ws_max_connections_per_user, 16);
    assert_int_equal(c->ws_max_connections_per_address, 64);
    assert_int_equal(c->ws_user_rate_limit, 300);
    assert_int_equal(c->transcode_max_concurrent_per_worker, 64);
    assert_int_equal(c->transcode_max_concurrent, 256);

    assert_non_null(getcwd(cwd, sizeof(cwd)));
    snprintf(file, sizeof(file), "%s/t.yaml", strcmp(cwd, "/") == 0 ? "" : cwd);
    assert_string_equal(c->file, file);
    talas_config_free(c);
}

static void test_all_keys(void **state)
{
    struct talas_config *c = load_ok("# every key\n"
                                     "listen:\n"
                                     "  - host: 127.0.0.1\n"
                                     "    port: 8082\n"
                                     "  - host: \"[::1]\"\n"
                                     "    port: 8443\n"
                                     "    tls:\n"
                                     "      certificate: /etc/talas/cert.pem\n"
                                     "      key: /etc/talas/key.pem\n"
                                     "workers: 3\n"
                                     "daemonize: yes\n"
                                     "pid_file: /run/talas.pid\n"
                                     "user: talas\n"
                                     "shutdown_timeout: 500ms\n"
                                     "library:\n"
                                     "  paths:\n"
                                     "    - /nonexistent/a\n"
                                     "    - /nonexistent/b/\n"
                                     "  extensions: [.FLAC, mp3]\n"
                                     "storage:\n"
                                     "  path: /nonexistent/db\n"
                                     "  map_size: 512MiB\n"
                                     "auth:\n"
                                     "  required: on\n"
                                     "  algorithm: HS512\n"
                                     "  kid: k1\n"
                                     "  secret_file: /nonexistent/jwt.secret\n"
                                     "  keys:\n"
                                     "    - kid: old\n"
                                     "      algorithm: RS256\n"
                                     "      public_key_file: /nonexistent/old.pub\n"
                                     "  backend_key_file: /nonexistent/backend.key\n"
                                     "  leeway: 10\n"
                                     "  issuer: talas-backend\n"
                                     "  audience: talas\n"
                                     "  default_ttl: 10m\n"
                                     "  max_ttl: 2h\n"
                                     "grpc:\n"
                                     "  listen:\n"
                                     "    - {host: 127.0.0.1, port: 8083}\n"
                                     "log:\n"
                                     "  error: /nonexistent/log/error.log\n"
                                     "  access: stderr\n"
                                     "  access_format: json\n"
                                     "  level: debug\n"
                                     "http:\n"
                                     "  request_timeout: 1h\n"
                                     "  max_request_body: 64k\n"
                                     "  www_root: /nonexistent/www\n"
                                     "http2:\n"
                                     "  idle_timeout: 45\n"
                                     "  max_concurrent_streams: 1000\n");

    assert_int_equal(c->listen_count, 2);
    assert_string_equal(c->listen[0].host, "127.0.0.1");
    assert_int_equal(c->listen[0].port, 8082);
    assert_null(c->listen[0].tls_certificate);
    assert_string_equal(c->listen[1].host, "::1");
    assert_int_equal(c->listen[1].port, 8443);
    assert_string_equal(c->listen[1].tls_certificate, "/etc/talas/cert.pem");
    assert_string_equal(c->listen[1].tls_key, "/etc/talas/key.pem");
    assert_int_equal(c->workers, 3);
    assert_int_equal(c->daemonize, 1);
    assert_string_equal(c->pid_file, "/run/talas.pid");
    assert_string_equal(c->user, "talas");
    assert_int_equal(c->shutdown_timeout_ms, 500);
    assert_int_equal(c->library_path_count, 2);
    assert_string_equal(c->library_paths[0].path, "/nonexistent/a");
    assert_string_equal(c->library_paths[1].path, "/nonexistent/b");
    assert_int_equal(c->library_extension_count, 2);
    assert_string_equal(c->library_extensions[0], "FLAC");
    assert_string_equal(c->library_extensions[1], "mp3");
    assert_string_equal(c->storage_path, "/nonexistent/db");
    assert_int_equal(c->storage_map_size, 512 << 20);
    assert_int_equal(c->auth_required, 1);
    assert_int_equal(c->auth_key.algorithm, TALAS_JWT_HS512);
    assert_string_equal(c->auth_key.kid, "k1");
    assert_string_equal(c->auth_key.secret_file, "/nonexistent/jwt.secret");
    assert_int_equal(c->auth_key_count, 1);
    assert_string_equal(c->auth_keys[0].kid, "old");
    assert_int_equal(c->auth_keys[0].algorithm, TALAS_JWT_RS256);
    assert_string_equal(c->auth_keys[0].public_key_file, "/nonexistent/old.pub");
    assert_null(c->auth_keys[0].private_key_file);
    assert_string_equal(c->auth_backend_key_file, "/nonexistent/backend.key");
    assert_int_equal(c->auth_leeway_ms, 10000);
    assert_string_equal(c->auth_issuer, "talas-backend");
    assert_string_equal(c->auth_audience, "talas");
    assert_int_equal(c->auth_default_ttl_ms, 600000);
    assert_int_equal(c->auth_max_ttl_ms, 7200000);
    assert_int_equal(c->grpc_listen_count, 1);
    assert_int_equal(c->grpc_listen[0].port, 8083);
    /* the first listen entry, as a URL */
    assert_string_equal(c->http_public_url, "http://127.0.0.1:8082");
    assert_string_equal(c->log_error, "/nonexistent/log/error.log");
    assert_string_equal(c->log_access, "stderr");
    assert_int_equal(c->log_access_format, TALAS_ACCESS_LOG_JSON);
    assert_int_equal(c->log_level, TALAS_LOG_DEBUG);
    assert_int_equal(c->http_request_timeout_ms, 3600000);
    assert_int_equal(c->http_max_request_body, 65536);
    assert_string_equal(c->http_www_root, "/nonexistent/www");
    assert_int_equal(c->http2_idle_timeout_ms, 45000);
    assert_int_equal(c->http2_max_concurrent_streams, 1000);
    talas_config_free(c);
}

static void test_nulls_and_off(void **state)
{
    struct talas_config *c = load_ok(BASE "workers:\n"
                                          "pid_file: ~\n"
                                          "log:\n"
                                          "  error: null\n"
                                          "  access: off\n"
                                          "http:\n");

    assert_int_equal(c->workers, ncpus());
    assert_null(c->pid_file);
    assert_string_equal(c->log_error, "stderr");
    assert_null(c->log_access);
    talas_config_free(c);

    /* Quoted, "~" is a string, not null. */
    c = load_ok(BASE "user: \"~\"\n");
    assert_string_equal(c->user, "~");
    talas_config_free(c);
}

static void test_sizes_and_durations(void **state)
{
    static const struct {
        const char *size;
        uint64_t bytes;
        const char *duration;
        uint64_t ms;
    } cases[] = {
        /* clang-format off */
        {"1MiB", UINT64_C(1) << 20, "1ms", 1},
        {"1TiB", UINT64_C(1) << 40, "1h", 3600000},
        {"4GiB", UINT64_C(4) << 30, "30s", 30000},
        {"4G", UINT64_C(4) << 30, "30", 30000},
        {"2GB", UINT64_C(2000000000), "2m", 120000},
        {"1048576", UINT64_C(1) << 20, "250ms", 250},
        /* clang-format on */
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[512];
        struct talas_config *c;

        snprintf(text, sizeof(text),
                 "listen: [{port: 1}]\n"
                 "library: {paths: [/a]}\n"
                 "storage:\n"
                 "  path: /db\n"
                 "  map_size: %s\n"
                 "http:\n"
                 "  request_timeout: %s\n",
                 cases[i].size, cases[i].duration);
        c = load_ok(text);
        assert_int_equal(c->storage_map_size, cases[i].bytes);
        assert_int_equal(c->http_request_timeout_ms, cases[i].ms);
        talas_config_free(c);
    }
}

static void test_listen_scalars(void **state)
{
    struct talas_config *c = load_ok("listen:\n"
                                     "  - 8082\n"
                                     "  - \"127.0.0.1:8083\"\n"
                                     "  - \"[::1]:8084\"\n"
                                     "library: {paths: [/nonexistent]}\n"
                                     "storage: {path: /nonexistent/db}\n");

    assert_int_equal(c->listen_count, 3);
    assert_string_equal(c->listen[0].host, "0.0.0.0");
    assert_int_equal(c->listen[0].port, 8082);
    assert_string_equal(c->listen[1].host, "127.0.0.1");
    assert_int_equal(c->listen[1].port, 8083);
    assert_string_equal(c->listen[2].host, "::1");
    assert_int_equal(c->listen[2].port, 8084);
    talas_config_free(c);

    assert_load_error("listen:\n  - \"::1:8082\"\n",
                      "t.yaml:2:5: listen[0]: must be PORT, HOST:PORT or [IPV6]:PORT");
    assert_load_error("listen:\n  - 127.0.0.1:0\n", "t.yaml:2:5: listen[0].port: must be 1..65535");
}

/* library.paths: strings or {path, name}; the name defaults to the base
 * name; two entries may not share a name (their ids would collide). */
static void test_library_names(void **state)
{
    struct talas_config *c;

    (void)state;
    c = load_ok("listen: [8082]\n"
                "library:\n"
                "  paths:\n"
                "    - /nonexistent/srv/music\n"
                "    - {path: /nonexistent/mnt/music, name: nas}\n"
                "    - path: /nonexistent/x/\n"
                "storage: {path: /nonexistent/db}\n");
    assert_int_equal(c->library_path_count, 3);
    assert_string_equal(c->library_paths[0].path, "/nonexistent/srv/music");
    assert_string_equal(c->library_paths[0].name, "music");
    assert_string_equal(c->library_paths[1].path, "/nonexistent/mnt/music");
    assert_string_equal(c->library_paths[1].name, "nas");
    assert_string_equal(c->library_paths[2].name, "x");
    talas_config_free(c);

    assert_load_error("listen: [8082]\n"
                      "library:\n"
                      "  paths:\n"
                      "    - /nonexistent/srv/music\n"
                      "    - /nonexistent/mnt/music\n"
                      "storage: {path: /nonexistent/db}\n",
                      "t.yaml:5:7: library.paths[1].name: \"music\" is already the name of library.paths[0] "
                      "(/nonexistent/srv/music): track ids would collide; give one of them another name");
    assert_load_error("listen: [8082]\n"
                      "library:\n"
                      "  paths:\n"
                      "    - {path: /nonexistent/a, name: same}\n"
                      "    - {path: /nonexistent/b, name: same}\n"
                      "storage: {path: /nonexistent/db}\n",
                      "t.yaml:5:36: library.paths[1].name: \"same\" is already the name of library.paths[0] "
                      "(/nonexistent/a): track ids would collide; give one of them another name");
    assert_load_error("listen: [8082]\n"
                      "library: {paths: [{path: /nonexistent/a, name: a/b}]}\n"
                      "storage: {path: /nonexistent/db}\n",
                      "t.yaml:2:48: library.paths[0].name: must not contain '/' or control characters");
    /* a name taken from the path obeys the same rule (the dump writes it
     * back as name:, found by fuzz_config) */
    assert_load_error("listen: [8082]\n"
                      "library:\n"
                      "  paths:\n"
                      "    - \"/nonexistent/a\\tb\"\n"
                      "storage: {path: /nonexistent/db}\n",
                      "t.yaml:4:7: library.paths[0].path: its last component cannot name the library "
                      "(a name must not contain '/' or control characters); set name:");
    assert_load_error("listen: [8082]\n"
                      "library: {paths: [{path: /}]}\n"
                      "storage: {path: /nonexistent/db}\n",
                      "t.yaml:2:26: library.paths[0].path: its last component cannot name the library "
                      "(a name must be 1 to 255 bytes long); set name:");
    assert_load_error("listen: [8082]\n"
                      "library: {paths: [{name: a}]}\n"
                      "storage: {path: /nonexistent/db}\n",
                      "t.yaml:2:19: library.paths[0].path: is required");
    assert_load_error("listen: [8082]\n"
                      "library: {paths: [{path: /nonexistent/a, nmae: a}]}\n"
                      "storage: {path: /nonexistent/db}\n",
                      "t.yaml:2:42: library.paths[0].nmae: unknown key");
}

/* Relative paths: realpath() when the file exists, else joined with the
 * working directory and cleaned. */
static void test_relative_paths(void **state)
{
    char tmpl[] = "/tmp/talas-test-config-XXXXXX", old[PATH_MAX], dir[PATH_MAX], want[PATH_MAX + 64];
    struct talas_config *c;

    assert_non_null(getcwd(old, sizeof(old)));
    assert_non_null(mkdtemp(tmpl));
    assert_non_null(realpath(tmpl, dir)); /* /tmp may itself be a symlink */
    assert_int_equal(chdir(dir), 0);
    assert_int_equal(mkdir("music", 0755), 0);
    assert_int_equal(symlink("music", "link"), 0);

    c = load_ok("listen: [{port: 8082}]\n"
                "library:\n"
                "  paths: [music, {path: ./link/, name: linked}, var/../other//x/.]\n"
                "storage:\n"
                "  path: ./var/talas.lmdb\n"
                "pid_file: ../../../../../../../../../x.pid\n"
                "log:\n"
                "  access: var/log/access.log\n");
    snprintf(want, sizeof(want), "%s/music", dir);
    assert_string_equal(c->library_paths[0].path, want);
    assert_string_equal(c->library_paths[1].path, want); /* resolved through the symlink */
    assert_string_equal(c->library_paths[0].name, "music");
    assert_string_equal(c->library_paths[1].name, "linked");
    snprintf(want, sizeof(want), "%s/other/x", dir);
    assert_string_equal(c->library_paths[2].path, want);
    snprintf(want, sizeof(want), "%s/var/talas.lmdb", dir);
    assert_string_equal(c->storage_path, want);
    assert_string_equal(c->pid_file, "/x.pid");
    snprintf(want, sizeof(want), "%s/var/log/access.log", dir);
    assert_string_equal(c->log_access, want);
    snprintf(want, sizeof(want), "%s/t.yaml", dir);
    assert_string_equal(c->file, want);
    talas_config_free(c);

    assert_int_equal(unlink("link"), 0);
    assert_int_equal(rmdir("music"), 0);
    assert_int_equal(chdir(old), 0);
    assert_int_equal(rmdir(dir), 0);
}

struct error_case {
    const char *text;
    const char *error;
};

static const struct error_case error_cases[] = {
    /* unknown keys, at the key */
    {BASE "bogus: 1\n", "t.yaml:7:1: bogus: unknown key"},
    {"library:\n  pathz: [x]\n", "t.yaml:2:3: library.pathz: unknown key"},
    {"listen:\n  - port: 80\n    tls: {cert: x}\n", "t.yaml:3:11: listen[0].tls.cert: unknown key"},
    {"library.paths: [x]\n", "t.yaml:1:1: library.paths: unknown key"},
    /* cluster mode: both engines, addresses, names */
    {BASE "cluster:\n  redis: \"127.0.0.1:6379\"\n", "t.yaml:8:3: cluster.postgres: is required in cluster mode (a libpq connection string)"},
    {BASE "cluster:\n  postgres: \"dbname=talas\"\n", "t.yaml:8:3: cluster.redis: is required in cluster mode (unix:/path/to/redis.sock or HOST:PORT)"},
    {BASE "cluster:\n  redis: unix:r.sock\n  postgres: dbname=talas\n",
     "t.yaml:8:10: cluster.redis: a unix socket must be an absolute path: unix:/path/to/redis.sock"},
    {BASE "cluster:\n  redis: \"127.0.0.1:0\"\n  postgres: dbname=talas\n",
     "t.yaml:8:10: cluster.redis: must be unix:/path/to/redis.sock or HOST:PORT (port 1..65535)"},
    {BASE "cluster:\n  redis: localhost\n  postgres: dbname=talas\n",
     "t.yaml:8:10: cluster.redis: must be unix:/path/to/redis.sock or HOST:PORT"},
    {BASE "cluster:\n  node_name: \"a b\"\n  redis: \"h:1\"\n  postgres: dbname=talas\n",
     "t.yaml:8:14: cluster.node_name: must be 1 to 64 characters of A-Z a-z 0-9 . _ -"},
    /* tokens, gRPC, public URL */
    {BASE "auth:\n  required: true\n",
     "t.yaml:8:3: auth: required: true needs a key: secret_file, public_key_file or keys"},
    {BASE "auth:\n  algorithm: RS256\n  secret_file: /s\n",
     "t.yaml:8:3: auth: public_key_file is required with RS256/ES256"},
    {BASE "auth:\n  public_key_file: /p\n",
     "t.yaml:8:3: auth: secret_file is required with an HS* algorithm"},
    {BASE "auth:\n  algorithm: none\n",
     "t.yaml:8:14: auth.algorithm: must be HS256, HS384, HS512, RS256 or ES256"},
    {BASE "auth:\n  keys:\n    - {kid: a, secret_file: /s}\n    - {kid: a, secret_file: /t}\n",
     "t.yaml:10:7: auth.keys[1].kid: \"a\" is already auth.keys[0]"},
    {BASE "auth:\n  keys:\n    - {secret_file: /s}\n", "t.yaml:9:7: auth.keys[0].kid: is required"},
    {BASE "auth:\n  default_ttl: 2h\n  max_ttl: 1h\n",
     "t.yaml:9:12: auth.max_ttl: must not be shorter than auth.default_ttl"},
    {BASE "grpc:\n  listen:\n    - {port: 8082}\n",
     "t.yaml:9:5: grpc.listen: 0.0.0.0:8082 is also in listen"},
    {BASE "http:\n  public_url: ftp://x\n",
     "t.yaml:8:15: http.public_url: must start with http:// or https://"},
    {BASE "auth:\n  secret_file: /s\n  public_key_file: /p\n",
     "t.yaml:8:3: auth: public_key_file and private_key_file go with RS256/ES256, not HS*"},
    /* transcoding, previews, cache */
    {BASE "transcode:\n  profiles:\n    - {name: x, codec: mp3, bitrate: 128, sample_rate: 96000}\n",
     "t.yaml:9:56: transcode.profiles[0].sample_rate: 96000 Hz is not a rate MP3 can encode"},
    {BASE "transcode:\n  profiles:\n    - {name: x, codec: ogg, bitrate: 128}\n",
     "t.yaml:9:24: transcode.profiles[0].codec: must be mp3 or aac"},
    {BASE "transcode:\n  profiles:\n    - {name: x, codec: mp3, bitrate: 400}\n",
     "t.yaml:9:38: transcode.profiles[0].bitrate: must be 8..320 for MP3"},
    {BASE "transcode:\n  profiles:\n    - {name: a, codec: aac, bitrate: 96}\n    - {name: a, codec: aac, "
          "bitrate: 64}\n",
     "t.yaml:10:7: transcode.profiles[1].name: \"a\" is already transcode.profiles[0]"},
    {BASE "transcode:\n  profiles:\n    - {codec: aac, bitrate: 96}\n",
     "t.yaml:9:7: transcode.profiles[0].name: is required"},
    {BASE "transcode:\n  profiles: []\n", "t.yaml:8:13: transcode.profiles: must not be empty"},
    {BASE "preview:\n  start: soon\n",
     "t.yaml:8:10: preview.start: must be a time (45s) or a part of the track (30% or 0.3)"},
    {BASE "preview:\n  start: 150%\n",
     "t.yaml:8:10: preview.start: must be a time (45s) or a part of the track (30% or 0.3)"},
    {BASE "preview:\n  duration: 20m\n", "t.yaml:8:13: preview.duration: must be 1s..10m"},
    {BASE "hls:\n  segment_duration: 20s\n", "t.yaml:8:21: hls.segment_duration: must be 1s..10s"},
    {BASE "playlists:\n  max_per_user: 0\n", "t.yaml:8:17: playlists.max_per_user: must be 1..1000000"},
    {BASE "playlists:\n  max_tracks: 200000\n", "t.yaml:8:15: playlists.max_tracks: must be 1..100000"},
    {BASE "playlists:\n  max_total: -1\n", "t.yaml:8:14: playlists.max_total: must be 1..100000000"},
    {BASE "playlists:\n  max_editors: 10001\n", "t.yaml:8:16: playlists.max_editors: must be 0..10000"},
    {BASE "playlists:\n  max_owners: 3\n", "t.yaml:8:3: playlists.max_owners: unknown key"},
    {BASE "transcode:\n  profiles:\n    - {name: m, codec: mp3, bitrate: 128, hls: true}\n",
     "t.yaml:9:48: transcode.profiles[0].hls: only AAC profiles can be HLS rungs (an MP3 rung stays "
     "progressive)"},
    {"listen: [{port: 1}]\nlibrary: {paths: [/a]}\nstorage: {path: /db, map_size: 64MiB}\ncache:\n  "
     "max_size: 60MiB\n",
     "t.yaml:5:13: cache.max_size: must be at most 3/4 of storage.map_size (50331648 bytes)"},
    {"listen: [{port: 1}]\nlibrary: {paths: [/a]}\nstorage: {path: /db, map_size: 64MiB, user_data_max: 17MiB}\n",
     "t.yaml:3:54: storage.user_data_max: must be at most 1/4 of storage.map_size (16777216 bytes)"},
    {BASE "streaming:\n  max_sessions: 60\n  backend_reserved_sessions: 60\n",
     "t.yaml:9:30: streaming.backend_reserved_sessions: must be less than streaming.max_sessions (60)"},
    {BASE "streaming:\n  max_sessions_per_user: -1\n",
     "t.yaml:8:26: streaming.max_sessions_per_user: must be 0..1000000"},
    /* wrong types, at the value */
    {BASE "workers: {a: 1}\n", "t.yaml:7:10: workers: must be an integer, not a mapping"},
    {BASE "workers: [1]\n", "t.yaml:7:10: workers: must be an integer, not a list"},
    {BASE "workers: two\n", "t.yaml:7:10: workers: must be an integer"},
    {BASE "workers: 2.5\n", "t.yaml:7:10: workers: must be an integer"},
    {BASE "daemonize: maybe\n", "t.yaml:7:12: daemonize: must be true or false"},
    {BASE "user: [a, b]\n", "t.yaml:7:7: user: must be a string, not a list"},
    {BASE "user: \"\"\n", "t.yaml:7:7: user: must not be empty"},
    {BASE "pid_file: {a: b}\n", "t.yaml:7:11: pid_file: must be a path, not a mapping"},
    {"listen: 8082\n", "t.yaml:1:9: listen: must be a list, not a scalar"},
    {"listen:\n  - [8082]\n", "t.yaml:2:5: listen[0]: must be a mapping, not a list"},
    {"library: 3\n", "t.yaml:1:10: library: must be a mapping, not a scalar"},
    {"library:\n  paths: /music\n", "t.yaml:2:10: library.paths: must be a list, not a scalar"},
    {"library:\n  paths: [/a, {b: c}]\n", "t.yaml:2:16: library.paths[1].b: unknown key"},
    {"library:\n  extensions: [mp3, a/b]\n",
     "t.yaml:2:21: library.extensions[1]: must be a file name extension such as flac"},
    {"library:\n  extensions: [\".\"]\n",
     "t.yaml:2:16: library.extensions[0]: must be a file name extension such as flac"},
    {"storage:\n  map_size: lots\n", "t.yaml:2:13: storage.map_size: must be a size such as 512MiB or 4GiB"},
    {"shutdown_timeout: 3 days\n",
     "t.yaml:1:19: shutdown_timeout: must be a duration such as 500ms, 30s, 5m or 1h"},
    {"log:\n  level: verbose\n", "t.yaml:2:10: log.level: must be debug, info, warn or error"},
    {"log:\n  access_format: clf\n", "t.yaml:2:18: log.access_format: must be combined or json"},
    {"[1, 2]\n", "t.yaml:1:1: (document): must be a mapping, not a list"},
    {"? [a]\n: b\n", "t.yaml:1:3: (document): keys must be strings, not a list"},
    {"user: \"a\\0b\"\n", "t.yaml:1:7: user: must not contain NUL characters"},
    /* out of range */
    {BASE "workers: 300\n", "t.yaml:7:10: workers: must be 1..256"},
    {BASE "workers: 0\n", "t.yaml:7:10: workers: must be 1..256"},
    {BASE "workers: 99999999999999999999\n", "t.yaml:7:10: workers: must be 1..256"},
    {"listen:\n  - port: 65536\n", "t.yaml:2:11: listen[0].port: must be 1..65535"},
    {"storage:\n  map_size: 512KiB\n", "t.yaml:2:13: storage.map_size: must be 1MiB..1TiB"},
    {"storage:\n  map_size: 2TiB\n", "t.yaml:2:13: storage.map_size: must be 1MiB..1TiB"},
    {"http:\n  max_request_body: 2GiB\n", "t.yaml:2:21: http.max_request_body: must be 0..1GiB"},
    {"http:\n  request_timeout: 0s\n", "t.yaml:2:20: http.request_timeout: must be 1ms..1h"},
    {"shutdown_timeout: 61m\n", "t.yaml:1:19: shutdown_timeout: must be 0s..1h"},
    {"http2:\n  max_concurrent_streams: 1001\n",
     "t.yaml:2:27: http2.max_concurrent_streams: must be 1..1000"},
    {"library:\n  paths: []\n", "t.yaml:2:10: library.paths: must not be empty"},
    {"listen: []\n", "t.yaml:1:9: listen: must not be empty"},
    /* duplicates */
    {BASE "workers: 1\nworkers: 2\n", "t.yaml:8:1: workers: duplicate key (first at 7:1)"},
    {"library:\n  paths: [a]\n  paths: [b]\n", "t.yaml:3:3: library.paths: duplicate key (first at 2:3)"},
    {"library:\n  paths: [a]\nlibrary:\n  paths: [b]\n", "t.yaml:3:1: library: duplicate key (first at 1:1)"},
    {"listen:\n  - {port: 1, port: 2}\n", "t.yaml:2:15: listen[0].port: duplicate key (first at 2:6)"},
    {"listen:\n"
     "  - host: 127.0.0.1\n"
     "    port: 8082\n"
     "  - port: 8083\n"
     "  - host: 127.0.0.1\n"
     "    port: 8082\n",
     "t.yaml:5:5: listen[2]: 127.0.0.1:8082 is already in listen[0]"},
    {"listen: [8082, \"[::1]:80\", \"[::1]:80\"]\n",
     "t.yaml:1:28: listen[2]: [::1]:80 is already in listen[1]"},
    /* the default http.public_url is built from the host (fuzz_config) */
    {"listen:\n  - {host: \"12?.0.0.1\", port: 80}\n",
     "t.yaml:2:12: listen[0].host: must be a host name or an address such as 127.0.0.1 or ::1"},
    {"listen:\n  - {host: \"a@b\", port: 80}\n",
     "t.yaml:2:12: listen[0].host: must be a host name or an address such as 127.0.0.1 or ::1"},
    /* missing required keys, at the mapping that should hold them */
    {"", "t.yaml:1:1: listen: is required"},
    {"# nothing but a comment\n", "t.yaml:1:1: listen: is required"},
    {"\n\nworkers: 2\n", "t.yaml:3:1: listen: is required"},
    {"listen: [{port: 1}]\nstorage:\n  path: /x\n", "t.yaml:1:1: library.paths: is required"},
    {"listen: [{port: 1}]\nstorage:\n  path: /x\nlibrary:\n  extensions: [mp3]\n",
     "t.yaml:5:3: library.paths: is required"},
    {"listen: [{port: 1}]\nlibrary: {paths: [/a]}\nstorage:\n  map_size: 1GiB\n",
     "t.yaml:4:3: storage.path: is required"},
    {"listen: [{port: 1}]\nlibrary: {paths: [/a]}\nstorage:\n  path: ~\n",
     "t.yaml:4:9: storage.path: is required and must not be null"},
    {"listen:\n  - host: 127.0.0.1\n", "t.yaml:2:5: listen[0].port: is required"},
    {"listen:\n  - host: 127.0.0.1\n    tls:\n      certificate: /c.pem\n",
     "t.yaml:2:5: listen[0].port: is required"},
    /* tls: both or neither */
    {"listen:\n  - port: 443\n    tls:\n      certificate: /c.pem\n",
     "t.yaml:4:7: listen[0].tls.key: is required with tls.certificate"},
    {"listen:\n  - port: 443\n    tls: {key: /k.pem}\n",
     "t.yaml:3:10: listen[0].tls.certificate: is required with tls.key"},
    /* syntax */
    {"workers: [1, 2\n",
     "t.yaml:2:1: syntax error: did not find expected ',' or ']' (while parsing a flow sequence at 1:10)"},
    {"library:\n  paths: [a]\n extensions: [b]\n",
     "t.yaml:3:2: syntax error: did not find expected key (while parsing a block mapping at 1:1)"},
    {"user: \"abc\n",
     "t.yaml:2:1: syntax error: found unexpected end of stream (while scanning a quoted scalar at 1:7)"},
    {"user: *nope\n", "t.yaml:1:7: syntax error: found undefined alias"},
    {"workers: 1\n---\nworkers: 2\n", "t.yaml:2:1: syntax error: only one document is allowed"},
    {"user: ok\nlog: \xff\n", "t.yaml:2:6: syntax error: invalid leading UTF-8 octet (#FF)"},
};

/* All cases run, so that one failure shows every message that changed. */
static void test_transcode_keys(void **state)
{
    struct talas_config *c;
    char *error;

    assert_int_equal(
        load(BASE
             "transcode:\n  profiles:\n    - {name: hifi, codec: aac, bitrate: 256, sample_rate: 48000}\n"
             "    - {name: tiny, codec: mp3, bitrate: 64, sample_rate: 22050, channels: 1, hls: false}\n"
             "  threads: 3\npreview:\n  start: 45s\n  duration: 20s\ncache:\n  max_size: 100MiB\n",
             &c, &error),
        0);
    assert_int_equal(c->transcode_profile_count, 2);
    assert_string_equal(c->transcode_profiles[0].name, "hifi");
    assert_int_equal(c->transcode_profiles[0].codec, TALAS_CONFIG_CODEC_AAC);
    assert_int_equal(c->transcode_profiles[0].bitrate, 256);
    assert_int_equal(c->transcode_profiles[0].sample_rate, 48000);
    assert_int_equal(c->transcode_profiles[0].channels, 2);
    assert_int_equal(c->transcode_profiles[0].hls, 1); /* AAC: in the ladder by default */
    assert_int_equal(c->transcode_profiles[1].channels, 1);
    assert_int_equal(c->transcode_profiles[1].hls, 0);
    /* not one of the seeds' four: the bitrate and a quarter */
    assert_int_equal(c->transcode_profiles[0].bandwidth_estimate, 320);
    assert_int_equal(c->transcode_profiles[1].bandwidth_estimate, 80);
    assert_int_equal(c->transcode_threads, 3);
    assert_int_equal(c->preview_start_permille, -1);
    assert_int_equal(c->preview_start_ms, 45000);
    assert_int_equal(c->preview_duration_ms, 20000);
    assert_int_equal(c->cache_max_size, 100ULL << 20);
    talas_config_free(c);

    /* the defaults: the seeds' ladder plus mp3, a third into the track */
    assert_int_equal(load(BASE "preview:\n  start: \"0.25\"\n", &c, &error), 0);
    assert_int_equal(c->transcode_profile_count, 5);
    assert_string_equal(c->transcode_profiles[2].name, "low");
    assert_int_equal(c->transcode_profiles[2].codec, TALAS_CONFIG_CODEC_MP3);
    assert_int_equal(c->transcode_profiles[2].sample_rate, 22050);
    assert_int_equal(c->transcode_profiles[2].hls, 0);
    assert_int_equal(c->transcode_profiles[0].bandwidth_estimate, 400); /* the seeds' figures */
    assert_int_equal(c->transcode_profiles[1].bandwidth_estimate, 250);
    assert_int_equal(c->transcode_profiles[2].bandwidth_estimate, 160);
    assert_int_equal(c->transcode_profiles[3].bandwidth_estimate, 120);
    assert_int_equal(c->streaming_session_timeout_ms, 600000);
    assert_int_equal(c->streaming_max_sessions, 10000);
    assert_int_equal(c->streaming_max_sessions_per_user, 20);
    assert_int_equal(c->streaming_max_sessions_per_address, 50);
    assert_int_equal(c->streaming_backend_reserved_sessions, 1000); /* a tenth of max_sessions */
    assert_int_equal(c->playlists_max_per_user, 200);
    assert_int_equal(c->playlists_max_tracks, 10000);
    assert_int_equal(c->playlists_max_total, 100000);
    assert_int_equal(c->playlists_max_editors, 100);
    assert_int_equal(c->preview_start_permille, 250);
    assert_int_equal(c->cache_max_size, 1ULL << 30); /* 4GiB map: 1GiB */
    talas_config_free(c);

    /* the backend's reserve follows max_sessions; 0 is no reserve, and
     * so are the bounds per client */
    c = load_ok(BASE "streaming:\n  max_sessions: 65\n");
    assert_int_equal(c->streaming_backend_reserved_sessions, 6);
    talas_config_free(c);
    c = load_ok(BASE "streaming:\n  max_sessions: 1\n  backend_reserved_sessions: 0\n"
                     "  max_sessions_per_user: 0\n  max_sessions_per_address: 0\n");
    assert_int_equal(c->streaming_backend_reserved_sessions, 0);
    assert_int_equal(c->streaming_max_sessions_per_user, 0);
    assert_int_equal(c->streaming_max_sessions_per_address, 0);
    talas_config_free(c);
}

static void test_cluster_keys(void **state)
{
    struct talas_config *c = load_ok(BASE);
    char host[256];

    (void)state;
    assert_false(c->cluster_enabled);
    assert_null(c->cluster_redis);
    talas_config_free(c);
    c = load_ok(BASE "cluster:\n  node_name: node-a.1\n  redis: \"[::1]:6379\"\n"
                     "  postgres: host=/run/postgresql dbname=talas\n  postgres_password_file: /etc/pg.pw\n");
    assert_true(c->cluster_enabled);
    assert_string_equal(c->cluster_node_name, "node-a.1");
    assert_string_equal(c->cluster_redis, "[::1]:6379");
    assert_string_equal(c->cluster_postgres, "host=/run/postgresql dbname=talas");
    assert_string_equal(c->cluster_postgres_password_file, "/etc/pg.pw");
    assert_null(c->cluster_redis_password_file);
    talas_config_free(c);
    /* the node's name defaults to the host's */
    c = load_ok(BASE "cluster:\n  redis: unix:/run/redis/r.sock\n  postgres: dbname=talas\n");
    assert_int_equal(gethostname(host, sizeof(host)), 0);
    host[64] = '\0';
    assert_true(strspn(host, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != strlen(host) ||
                strcmp(c->cluster_node_name, host) == 0);
    assert_true(strlen(c->cluster_node_name) >= 1 && strlen(c->cluster_node_name) <= 64);
    talas_config_free(c);
}

static void test_errors(void **state)
{
    size_t failed = 0;

    for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++) {
        struct talas_config *conf;
        char *error;

        if (load(error_cases[i].text, &conf, &error) != -1) {
            print_error("case %zu loaded, expected \"%s\"\n", i, error_cases[i].error);
            talas_config_free(conf);
            failed++;
            continue;
        }
        if (conf != NULL || strcmp(error, error_cases[i].error) != 0) {
            print_error("case %zu:\n  got      \"%s\"\n  expected \"%s\"\n", i, error, error_cases[i].error);
            failed++;
        }
        free(error);
    }
    assert_int_equal(failed, 0);
}

static void test_load_file_errors(void **state)
{
    struct talas_config *conf = NULL;
    char *error = NULL;

    assert_int_equal(talas_config_load("/nonexistent/talas.yaml", &conf, &error), -1);
    assert_null(conf);
    assert_string_equal(error, "/nonexistent/talas.yaml: open() failed: No such file or directory");
    free(error);

    assert_int_equal(talas_config_load("/", &conf, &error), -1);
    assert_null(conf);
    assert_string_equal(error, "/: not a regular file");
    free(error);
}

/* The file name in messages is the one the caller gave. */
static void test_load_file(void **state)
{
    char tmpl[] = "/tmp/talas-test-config-XXXXXX", path[PATH_MAX], real[PATH_MAX];
    struct talas_config *conf = NULL;
    char *error = NULL;
    FILE *fp;

    assert_non_null(mkdtemp(tmpl));
    snprintf(path, sizeof(path), "%s/a.yaml", tmpl);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(BASE "workers: 0\n", fp);
    fclose(fp);
    assert_int_equal(talas_config_load(path, &conf, &error), -1);
    assert_true(strncmp(error, path, strlen(path)) == 0);
    assert_string_equal(error + strlen(path), ":7:10: workers: must be 1..256");
    free(error);

    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(BASE "workers: 7\n", fp);
    fclose(fp);
    assert_int_equal(talas_config_load(path, &conf, &error), 0);
    assert_int_equal(conf->workers, 7);
    assert_non_null(realpath(path, real));
    assert_string_equal(conf->file, real);
    talas_config_free(conf);

    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(tmpl), 0);
}

static char *dump(const struct talas_config *c)
{
    char *text = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&text, &len);

    assert_non_null(fp);
    talas_config_dump(c, fp);
    assert_int_equal(fclose(fp), 0);
    return text;
}

/* The dump shows every key, defaults included, and reads back the same. */
static void test_dump(void **state)
{
    struct talas_config *c = load_ok("listen:\n"
                                     "  - host: 127.0.0.1\n"
                                     "    port: 8082\n"
                                     "  - port: 8443\n"
                                     "    tls: {certificate: /c.pem, key: /k.pem}\n"
                                     "workers: 2\n"
                                     "user: \"we\\\"ird\\\\\"\n"
                                     "library:\n"
                                     "  paths: [/nonexistent/a, /nonexistent/b]\n"
                                     "storage:\n"
                                     "  path: /nonexistent/db\n"
                                     "  map_size: 1048577\n"
                                     "http:\n"
                                     "  request_timeout: 1500ms\n");
    struct talas_config *again;
    char *text, *text2, *error;

    text = dump(c);
    assert_non_null(strstr(text, "\nlisten:\n"
                                 "  - host: \"127.0.0.1\"\n"
                                 "    port: 8082\n"
                                 "    tls:\n"
                                 "      certificate: ~\n"
                                 "      key: ~\n"
                                 "  - host: \"0.0.0.0\"\n"
                                 "    port: 8443\n"
                                 "    tls:\n"
                                 "      certificate: \"/c.pem\"\n"
                                 "      key: \"/k.pem\"\n"
                                 "workers: 2\n"
                                 "daemonize: false\n"
                                 "pid_file: ~\n"
                                 "user: \"we\\\"ird\\\\\"\n"
                                 "group: ~\n"
                                 "shutdown_timeout: 30s\n"
                                 "library:\n"
                                 "  paths:\n"
                                 "    - path: \"/nonexistent/a\"\n"
                                 "      name: \"a\"\n"
                                 "    - path: \"/nonexistent/b\"\n"
                                 "      name: \"b\"\n"
                                 "  extensions: [\"mp3\", \"flac\", "));
    assert_non_null(strstr(text, "\"mpc\"]\n"
                                 "storage:\n"
                                 "  path: \"/nonexistent/db\"\n"
                                 "  map_size: 1048577\n"
                                 "  user_data_max: 128KiB\n"
                                 "auth:\n"
                                 "  required: false\n"
                                 "  algorithm: HS256\n"
                                 "  kid: ~\n"
                                 "  secret_file: ~\n"
                                 "  public_key_file: ~\n"
                                 "  private_key_file: ~\n"
                                 "  keys: ~\n"
                                 "  backend_key_file: ~\n"
                                 "  leeway: 30s\n"
                                 "  issuer: ~\n"
                                 "  audience: ~\n"
                                 "  default_ttl: 5m\n"
                                 "  max_ttl: 24h\n"
                                 "cluster:\n"
                                 "  node_name: ~\n"
                                 "  redis: ~\n"
                                 "  redis_password_file: ~\n"
                                 "  postgres: ~\n"
                                 "  postgres_password_file: ~\n"
                                 "grpc:\n"
                                 "  listen: ~\n"
                                 "transcode:\n"
                                 "  profiles:\n"
                                 "    - name: \"high\"\n"
                                 "      codec: aac\n"
                                 "      bitrate: 320\n"
                                 "      sample_rate: 44100\n"
                                 "      channels: 2\n"
                                 "      hls: true\n"
                                 "      bandwidth_estimate: 400\n"
                                 "    - name: \"medium\"\n"
                                 "      codec: aac\n"
                                 "      bitrate: 192\n"
                                 "      sample_rate: 44100\n"
                                 "      channels: 2\n"
                                 "      hls: true\n"
                                 "      bandwidth_estimate: 250\n"
                                 "    - name: \"low\"\n"
                                 "      codec: mp3\n"
                                 "      bitrate: 128\n"
                                 "      sample_rate: 22050\n"
                                 "      channels: 2\n"
                                 "      hls: false\n"
                                 "      bandwidth_estimate: 160\n"
                                 "    - name: \"mobile\"\n"
                                 "      codec: aac\n"
                                 "      bitrate: 96\n"
                                 "      sample_rate: 22050\n"
                                 "      channels: 2\n"
                                 "      hls: true\n"
                                 "      bandwidth_estimate: 120\n"
                                 "    - name: \"mp3\"\n"
                                 "      codec: mp3\n"
                                 "      bitrate: 192\n"
                                 "      sample_rate: 44100\n"
                                 "      channels: 2\n"
                                 "      hls: false\n"
                                 "      bandwidth_estimate: 240\n"
                                 "  threads: 1\n"
                                 "  max_concurrent_per_worker: 64\n"
                                 "  max_concurrent: 256\n"
                                 "hls:\n"
                                 "  segment_duration: 6s\n"
                                 "preview:\n"
                                 "  duration: 30s\n"
                                 "  start: \"30%\"\n"
                                 "streaming:\n"
                                 "  session_timeout: 10m\n"
                                 "  max_sessions: 10000\n"
                                 "  max_sessions_per_user: 20\n"
                                 "  max_sessions_per_address: 50\n"
                                 "  backend_reserved_sessions: 1000\n"
                                 "playlists:\n"
                                 "  max_per_user: 200\n"
                                 "  max_tracks: 10000\n"
                                 "  max_total: 100000\n"
                                 "  max_editors: 100\n"
                                 "comments:\n"
                                 "  max_body: 2000\n"
                                 "  max_per_track: 10000\n"
                                 "rooms:\n"
                                 "  idle_timeout: 10m\n"
                                 "  max_members: 1000\n"
                                 "  max_queue: 500\n"
                                 "  max_per_user: 5\n"
                                 "  invite_ttl: 168h\n"
                                 "cache:\n"
                                 "  max_size: 512KiB\n"
                                 "log:\n"
                                 "  error: \"stderr\"\n"
                                 "  access: off\n"
                                 "  access_format: combined\n"
                                 "  level: info\n"
                                 "http:\n"
                                 "  request_timeout: 1500ms\n"
                                 "  max_request_body: 1MiB\n"
                                 "  max_header_size: 32KiB\n"
                                 "  www_root: ~\n"
                                 "  public_url: \"http://127.0.0.1:8082\"\n"
                                 "  max_connections: 4096\n"
                                 "  max_connections_per_ip: 256\n"
                                 "http2:\n"
                                 "  idle_timeout: 10s\n"
                                 "  max_concurrent_streams: 100\n"
                                 "  max_streams_per_second: 1000\n"
                                 "  max_resets_per_second: 100\n"));

    assert_int_equal(load(text, &again, &error), 0);
    text2 = dump(again);
    assert_string_equal(text, text2);
    assert_string_equal(again->user, "we\"ird\\");
    assert_int_equal(again->storage_map_size, 1048577);
    free(text);
    free(text2);
    talas_config_free(again);
    talas_config_free(c);
}

/* The lines of the source tree's FILE, NULL-terminated; they point into
 * *TEXT_R. The caller frees both. */
static char **read_lines(const char *file, char **text_r)
{
    const char *srcdir = getenv("TALAS_SRCDIR");
    char path[PATH_MAX], *text, **lines;
    size_t n = 0, size = 0, cap = 64;
    FILE *fp;
    int c;

    snprintf(path, sizeof(path), "%s/%s", srcdir != NULL && *srcdir != '\0' ? srcdir : ".", file);
    fp = fopen(path, "r");
    assert_non_null(fp);
    text = malloc(1 << 20);
    assert_non_null(text);
    while ((c = fgetc(fp)) != EOF && size < (1 << 20) - 1)
        text[size++] = (char)c;
    text[size] = '\0';
    fclose(fp);
    lines = malloc(cap * sizeof(*lines));
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
        if (n + 1 == cap)
            lines = realloc(lines, (cap *= 2) * sizeof(*lines));
        lines[n++] = l;
    }
    lines[n] = NULL;
    *text_r = text;
    return lines;
}

/* The word of a ".B word" or ".BR word ," line, or NULL. */
static const char *bold_word(const char *line, char *buf, size_t size)
{
    if (strncmp(line, ".B ", 3) != 0 && strncmp(line, ".BR ", 4) != 0)
        return NULL;
    line = strchr(line, ' ') + 1;
    snprintf(buf, size, "%.*s", (int)strcspn(line, " "), line);
    return buf;
}

/* The default ladder is what talas.yaml(5) says it is: the profiles its
 * "Without the key the profiles are:" lists (name, codec, bitrate, rate,
 * stereo); the bandwidth estimates of "default 400, 250, 160 and 120 for
 * the seeds' high, medium, low and mobile profiles as defined below, else
 * the bitrate and a quarter"; and a configured profile written as one of
 * those rungs gets the rung's estimate, while one that differs does not. */
static void test_default_ladder_is_documented(void **state)
{
    struct {
        char name[32];
        int codec, bitrate, sample_rate, estimate;
    } doc[8];
    size_t ndoc = 0, i, j;
    char *text, **lines = read_lines("man/talas.yaml.5", &text);
    char seeds[4][32], yaml[2048];
    int est[4], nseeds = 0, len;
    struct talas_config *c;

    /* the estimates and the profiles they are for */
    for (i = 0; lines[i] != NULL && strstr(lines[i], "for the seeds'") == NULL; i++)
        ;
    assert_non_null(lines[i]);
    assert_int_equal(sscanf(lines[i], "default %d, %d, %d and %d", &est[0], &est[1], &est[2], &est[3]), 4);
    for (j = i + 1; lines[j] != NULL && strstr(lines[j], "profiles as defined below") == NULL; j++)
        if (bold_word(lines[j], seeds[nseeds], sizeof(seeds[0])) != NULL && ++nseeds == 4)
            break;
    assert_int_equal(nseeds, 4);

    /* the ladder */
    for (i = 0; lines[i] != NULL && strcmp(lines[i], "Without the key the profiles are:") != 0; i++)
        ;
    assert_non_null(lines[i]);
    for (i++; lines[i] != NULL && lines[i + 1] != NULL && ndoc < 8; i += 2) {
        char codec[8];
        double khz;
        assert_non_null(bold_word(lines[i], doc[ndoc].name, sizeof(doc[0].name)));
        assert_int_equal(sscanf(lines[i + 1], "(%7s %d kbit/s, %lf kHz)", codec, &doc[ndoc].bitrate, &khz),
                         3);
        assert_true(strcmp(codec, "AAC") == 0 || strcmp(codec, "MP3") == 0);
        doc[ndoc].codec = strcmp(codec, "AAC") == 0 ? TALAS_CONFIG_CODEC_AAC : TALAS_CONFIG_CODEC_MP3;
        doc[ndoc].sample_rate = (int)(khz * 1000 + 0.5);
        doc[ndoc].estimate = doc[ndoc].bitrate + doc[ndoc].bitrate / 4;
        for (int s = 0; s < 4; s++)
            if (strcmp(seeds[s], doc[ndoc].name) == 0)
                doc[ndoc].estimate = est[s];
        if (strstr(lines[i + 1], "all stereo") != NULL) {
            ndoc++;
            break;
        }
        ndoc++;
    }
    assert_true(strstr(lines[i + 1], "all stereo") != NULL);
    free(text);
    free(lines);

    c = load_ok(BASE);
    assert_int_equal(c->transcode_profile_count, ndoc);
    for (i = 0; i < ndoc; i++) {
        const struct talas_config_profile *p = &c->transcode_profiles[i];
        assert_string_equal(p->name, doc[i].name);
        assert_int_equal(p->codec, doc[i].codec);
        assert_int_equal(p->bitrate, doc[i].bitrate);
        assert_int_equal(p->sample_rate, doc[i].sample_rate);
        assert_int_equal(p->channels, 2);
        if (p->bandwidth_estimate != doc[i].estimate)
            print_error("%s: bandwidth_estimate %d, talas.yaml(5) says %d\n", p->name, p->bandwidth_estimate,
                        doc[i].estimate);
        assert_int_equal(p->bandwidth_estimate, doc[i].estimate);
    }
    talas_config_free(c);

    /* the same rungs written in the file, without their estimates */
    len = snprintf(yaml, sizeof(yaml), BASE "transcode:\n  profiles:\n");
    for (i = 0; i < ndoc; i++)
        len += snprintf(yaml + len, sizeof(yaml) - (size_t)len,
                        "    - {name: %s, codec: %s, bitrate: %d, sample_rate: %d}\n", doc[i].name,
                        doc[i].codec == TALAS_CONFIG_CODEC_AAC ? "aac" : "mp3", doc[i].bitrate,
                        doc[i].sample_rate);
    c = load_ok(yaml);
    for (i = 0; i < ndoc; i++)
        assert_int_equal(c->transcode_profiles[i].bandwidth_estimate, doc[i].estimate);
    talas_config_free(c);

    /* a rung's name with another bitrate is another profile */
    snprintf(yaml, sizeof(yaml), BASE "transcode:\n  profiles:\n    - {name: %s, codec: %s, bitrate: %d}\n",
             doc[0].name, doc[0].codec == TALAS_CONFIG_CODEC_AAC ? "aac" : "mp3", doc[0].bitrate / 2);
    c = load_ok(yaml);
    assert_int_equal(c->transcode_profiles[0].bandwidth_estimate, doc[0].bitrate / 2 + doc[0].bitrate / 8);
    talas_config_free(c);
}

/* The sample of the source tree, as scripts/quickstart uses it. */
static void test_sample_config(void **state)
{
    const char *srcdir = getenv("TALAS_SRCDIR");
    struct talas_config *c = NULL;
    char path[PATH_MAX], *error = NULL;

    snprintf(path, sizeof(path), "%s/conf/talas.yaml", srcdir != NULL && *srcdir != '\0' ? srcdir : ".");
    if (talas_config_load(path, &c, &error) != 0) {
        print_error("%s\n", error);
        free(error);
        fail();
    }
    assert_int_equal(c->listen_count, 1);
    assert_string_equal(c->listen[0].host, "127.0.0.1");
    assert_int_equal(c->listen[0].port, 8082);
    assert_null(c->listen[0].tls_certificate);
    assert_int_equal(c->workers, 2);
    assert_int_equal(c->library_path_count, 1);
    {
        /* relative to the cwd; where scripts/quickstart made var/library a
         * symlink, the loader resolves it (realpath) */
        char resolved[PATH_MAX];
        if (realpath("var/library", resolved) != NULL)
            assert_string_equal(c->library_paths[0].path, resolved);
        else
            assert_non_null(strstr(c->library_paths[0].path, "/var/library"));
    }
    assert_non_null(strstr(c->storage_path, "/var/talas.lmdb"));
    assert_true(c->storage_path[0] == '/');
    assert_non_null(strstr(c->pid_file, "/var/talas.pid"));
    assert_int_equal(c->storage_map_size, UINT64_C(4) << 30);
    assert_int_equal(c->auth_required, 0);
    assert_string_equal(c->log_error, "stderr");
    assert_non_null(c->log_access);
    assert_non_null(strstr(c->log_access, "/var/log/access.log"));
    talas_config_free(c);
}

int main(void)
{
    /* clang-format off */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_all_keys),
        cmocka_unit_test(test_nulls_and_off),
        cmocka_unit_test(test_sizes_and_durations),
        cmocka_unit_test(test_listen_scalars),
        cmocka_unit_test(test_relative_paths),
        cmocka_unit_test(test_library_names),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_transcode_keys),
        cmocka_unit_test(test_cluster_keys),
        cmocka_unit_test(test_load_file_errors),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_dump),
        cmocka_unit_test(test_sample_config),
        cmocka_unit_test(test_default_ladder_is_documented),
    };
    /* clang-format on */

    return cmocka_run_group_tests(tests, NULL, NULL);
}
