/*
 * talasctl.c - the operator's command line.
 *
 *   talasctl [-c FILE] scan            scan the library now (progress on a tty)
 *   talasctl [-c FILE] tracks [--errors]
 *   talasctl [-c FILE] status
 *   talasctl [-c FILE] cache stats
 *   talasctl [-c FILE] cache purge [TRACK_ID]
 *   talasctl [-c FILE] cache verify [--fix]
 *   talasctl [-c FILE] sign ID [--ttl SECONDS] [--kind stream|preview|hls] [--user USER]
 *   talasctl [-c FILE] broadcast MESSAGE [--level info|warning|error]
 *
 * talasctl reads the same configuration file as talas-master and opens the
 * LMDB storage directly (LMDB is made for several processes): it works
 * whether the master runs or not, and a scan it runs is serialised with the
 * master's scanner by the scan lock. The master's pid comes from pid_file.
 *
 * sign mints a signed media URL with the server's own key files
 * (workers/auth.c, linked without h2o): the URL on stdout, its expiry on
 * stderr. It needs read access to the key files, and works whether
 * auth.required is on or not, so URLs can be tried before it is.
 *
 * broadcast sends a ServerMessage to every realtime connection: it POSTs
 * to /api/events on the first cleartext listen address, with the backend
 * key read from auth.backend_key_file, so the master must run.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "cache.h"
#include "catalog.h"
#include "config.h"
#include "json.h"
#include "log.h"
#include "scan.h"
#include "storage.h"
#include "util.h"

#define DEFAULT_CONFIG SYSCONFDIR "/talas/talas.yaml"

static void usage(FILE *fp)
{
    fprintf(fp, "usage: talasctl [-c FILE] COMMAND\n"
                "  scan               scan the library folders now and update the catalog\n"
                "  tracks [--errors]  list the playable tracks, or the files that failed to probe\n"
                "  status             show whether the master runs, the catalog and the storage\n"
                "  cache stats        show the transcode cache: size, hit ratio, encoder counters\n"
                "  cache purge [TRACK_ID]\n"
                "                     remove every cached transcode, or those of one track\n"
                "  cache verify [--fix]\n"
                "                     check every cache record (CRCs included); --fix removes damaged ones\n"
                "  sign TRACK_ID [--ttl SECONDS] [--kind stream|preview|hls] [--user USER]\n"
                "                     print a signed URL for the track (expiry on stderr);\n"
                "                     --ttl 0 or none: auth.default_ttl; --kind default: stream\n"
                "  broadcast MESSAGE [--level info|warning|error]\n"
                "                     send a ServerMessage to every realtime (/api/ws) connection\n"
                "options:\n"
                "  -c FILE            configuration file (default: " DEFAULT_CONFIG ")\n"
                "  -V                 print the version\n"
                "  -h                 print this help\n");
}

static struct talas_storage *open_storage(const struct talas_config *conf)
{
    struct talas_storage *st;
    char *error;

    if (talas_storage_open(conf->storage_path, conf->storage_map_size, &st, &error) != 0) {
        fprintf(stderr, "talasctl: %s\n", error);
        exit(1);
    }
    return st;
}

struct progress_state {
    uint64_t last_ms;
};

static void on_progress(const struct talas_scan_progress *p, void *arg)
{
    struct progress_state *ps = arg;
    uint64_t now = talas_now_ms();

    if (p->current != NULL && now - ps->last_ms < 100)
        return;
    ps->last_ms = now;
    fprintf(stderr, "\r\033[K%zu files: %zu probed, %zu unchanged, %zu errors", p->files, p->probed, p->unchanged,
            p->errors);
    if (p->current == NULL)
        fputc('\n', stderr);
}

static int cmd_scan(const struct talas_config *conf)
{
    struct talas_scan_progress result;
    struct progress_state ps = {0};
    struct talas_storage *st = open_storage(conf);
    uint64_t started = talas_now_ms();
    char *error;
    int tty = isatty(STDERR_FILENO);

    if (talas_scan_run(conf, st, 1, tty ? on_progress : NULL, &ps, &result, &error) != 0) {
        fprintf(stderr, "talasctl: scan failed: %s\n", error);
        free(error);
        talas_storage_close(st);
        return 1;
    }
    printf("scanned %zu files in %.1f s: %zu added, %zu updated, %zu removed, %zu unchanged, %zu errors\n",
           result.files, (double)(talas_now_ms() - started) / 1000.0, result.added, result.updated, result.removed,
           result.unchanged, result.errors);
    talas_storage_close(st);
    return 0;
}

struct tracks_state {
    int errors;
    size_t count;
};

static int print_track(const struct talas_track *t, void *arg)
{
    struct tracks_state *s = arg;

    if (s->errors) {
        if (t->error == NULL)
            return 0;
        printf("%s\t%s\t%s\n", t->id, t->path, t->error);
    } else {
        if (t->error != NULL)
            return 0;
        printf("%s\t%" PRIu64 ":%02" PRIu64 "\t%s\t%s\n", t->id, t->duration_ms / 60000,
               (t->duration_ms / 1000) % 60, t->artist, t->title);
    }
    s->count++;
    return 0;
}

static int cmd_tracks(const struct talas_config *conf, int errors)
{
    struct talas_storage *st = open_storage(conf);
    struct tracks_state s = {errors, 0};
    MDB_txn *txn;
    size_t damaged = 0;
    int rc;

    if ((rc = talas_storage_read_begin(st, &txn)) != 0) {
        fprintf(stderr, "talasctl: mdb_txn_begin() failed: %s\n", mdb_strerror(rc));
        return 1;
    }
    rc = talas_catalog_foreach(st, txn, print_track, &s, &damaged);
    mdb_txn_abort(txn);
    talas_storage_close(st);
    if (rc != 0) {
        fprintf(stderr, "talasctl: reading the catalog failed: %s\n", mdb_strerror(rc));
        return 1;
    }
    if (damaged > 0)
        fprintf(stderr, "talasctl: %zu damaged catalog record(s) skipped; run a scan\n", damaged);
    return 0;
}

static pid_t master_pid(const struct talas_config *conf)
{
    FILE *fp;
    int pid = 0;

    if (conf->pid_file == NULL || (fp = fopen(conf->pid_file, "r")) == NULL)
        return 0;
    if (fscanf(fp, "%d", &pid) != 1)
        pid = 0;
    fclose(fp);
    if (pid <= 0 || (kill(pid, 0) == -1 && errno == ESRCH))
        return 0;
    return (pid_t)pid;
}

static void print_time(const char *label, uint64_t t)
{
    char buf[64];
    time_t tt = (time_t)t;
    struct tm tm;

    if (t == 0) {
        printf("%s: never\n", label);
        return;
    }
    localtime_r(&tt, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S %z", &tm);
    printf("%s: %s\n", label, buf);
}

static int cmd_status(const struct talas_config *conf)
{
    struct talas_storage *st = open_storage(conf);
    struct talas_scan_status scan;
    MDB_envinfo info;
    MDB_stat stat;
    MDB_txn *txn;
    pid_t pid = master_pid(conf);
    int rc, have_scan;

    if (pid != 0)
        printf("master: running (pid %d)\n", (int)pid);
    else if (conf->pid_file == NULL)
        printf("master: unknown (no pid_file in %s)\n", conf->file);
    else
        printf("master: not running\n");
    printf("workers: %d\n", conf->workers);
    for (size_t i = 0; i < conf->listen_count; i++)
        printf("listen: %s:%d%s\n", conf->listen[i].host, conf->listen[i].port,
               conf->listen[i].tls_certificate ? " (tls)" : "");

    if ((rc = talas_storage_read_begin(st, &txn)) != 0) {
        fprintf(stderr, "talasctl: mdb_txn_begin() failed: %s\n", mdb_strerror(rc));
        return 1;
    }
    have_scan = talas_catalog_scan_status_get(st, txn, &scan) == 0;
    mdb_txn_abort(txn);
    if (have_scan) {
        printf("tracks: %" PRIu64 "\n", scan.tracks);
        printf("errors: %" PRIu64 "\n", scan.errors);
        /* a scanner killed mid-scan leaves its flag set: ask its pid */
        if (scan.running && scan.pid > 0 && kill(scan.pid, 0) == -1 && errno == ESRCH)
            printf("scan: interrupted (pid %d is gone)\n", (int)scan.pid);
        else
            printf("scan: %s\n", scan.running ? "running" : "idle");
        print_time("last scan", scan.finished_at);
    } else {
        printf("tracks: 0\nscan: never\n");
    }
    mdb_env_info(talas_storage_env(st), &info);
    mdb_env_stat(talas_storage_env(st), &stat);
    printf("storage: %s\n", conf->storage_path);
    printf("storage used: %zu bytes of %zu (map size)\n", (size_t)(info.me_last_pgno + 1) * stat.ms_psize,
           info.me_mapsize);
    printf("storage reader slots: %u used at most, of %u\n", info.me_numreaders, info.me_maxreaders);
    talas_storage_close(st);
    return 0;
}

/* ---------------------------------------------------------------- cache */

static void print_bytes(const char *label, uint64_t n)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int u = -1;

    while (v >= 1024 && u < 3) {
        v /= 1024;
        u++;
    }
    if (u < 0)
        printf("%s: %" PRIu64 " bytes", label, n);
    else
        printf("%s: %" PRIu64 " bytes (%.1f %s)", label, n, v, units[u]);
}

static int cmd_cache_stats(const struct talas_config *conf)
{
    struct talas_storage *st = open_storage(conf);
    struct talas_cache_stats s;
    MDB_txn *txn;
    uint64_t max;
    int rc;

    if ((rc = talas_storage_read_begin(st, &txn)) != 0) {
        fprintf(stderr, "talasctl: mdb_txn_begin() failed: %s\n", mdb_strerror(rc));
        talas_storage_close(st);
        return 1;
    }
    rc = talas_cache_stats_get(st, txn, &s);
    mdb_txn_abort(txn);
    talas_storage_close(st);
    if (rc != 0) {
        fprintf(stderr, "talasctl: reading the cache statistics failed: %s\n",
                rc == -1 ? "damaged record (run talasctl cache verify --fix)" : mdb_strerror(rc));
        return 1;
    }
    /* the limit the workers enforced last; before any put, the default
     * for this map size (cache.max_size is not configurable yet) */
    max = s.max_size != 0 ? s.max_size : talas_cache_max_size_default(conf->storage_map_size);
    printf("entries: %" PRIu64 "\n", s.entries);
    printf("chunks: %" PRIu64 "\n", s.chunks);
    print_bytes("bytes", s.bytes);
    printf(" of %" PRIu64 " (%.1f%%)\n", max, max > 0 ? 100.0 * (double)s.bytes / (double)max : 0.0);
    printf("hits: %" PRIu64 "\n", s.hits);
    printf("misses: %" PRIu64 "\n", s.misses);
    if (s.hits + s.misses > 0)
        printf("hit ratio: %.1f%%\n", 100.0 * (double)s.hits / (double)(s.hits + s.misses));
    else
        printf("hit ratio: -\n");
    printf("transcodes: %" PRIu64 " started, %" PRIu64 " completed, %" PRIu64 " cancelled, %" PRIu64
           " failed\n",
           s.transcodes_started, s.transcodes_completed, s.transcodes_cancelled, s.transcodes_failed);
    print_bytes("bytes encoded", s.bytes_encoded);
    putchar('\n');
    if (s.encode_ms > 0)
        printf("encode speed: %.1f KiB/s (%.1f s encoding)\n",
               (double)s.bytes_encoded / 1024.0 / ((double)s.encode_ms / 1000.0),
               (double)s.encode_ms / 1000.0);
    else
        printf("encode speed: -\n");
    printf("evictions: %" PRIu64 "\n", s.evictions);
    printf("map full retries: %" PRIu64 "\n", s.map_full_retries);
    return 0;
}

static void print_purged(const char *track, const char *variant, uint64_t chunks, uint64_t bytes, void *arg)
{
    printf("removed %s %s: %" PRIu64 " chunks, %" PRIu64 " bytes\n", track, variant, chunks, bytes);
}

static int cmd_cache_purge(const struct talas_config *conf, const char *track)
{
    struct talas_cache_purge_result res;
    struct talas_storage *st;
    int rc;

    if (track != NULL && !talas_track_id_valid(track, strlen(track))) {
        fprintf(stderr, "talasctl: \"%s\" is not a track id (16 characters of A-Z a-z 0-9 - _)\n", track);
        return 1;
    }
    st = open_storage(conf);
    rc = talas_cache_purge(st, track, print_purged, NULL, &res);
    talas_storage_close(st);
    printf("removed %" PRIu64 " transcodes, %" PRIu64 " chunks, %" PRIu64 " bytes\n", res.entries, res.chunks,
           res.bytes);
    if (rc != 0) {
        fprintf(stderr, "talasctl: purging the cache failed: %s\n", mdb_strerror(rc));
        return 1;
    }
    return 0;
}

static int cmd_cache_verify(const struct talas_config *conf, int fix)
{
    struct talas_storage *st = open_storage(conf);
    struct talas_cache_verify_report r;
    int rc = talas_cache_verify(st, fix, &r);

    talas_storage_close(st);
    if (rc != 0) {
        fprintf(stderr, "talasctl: verifying the cache failed: %s\n", mdb_strerror(rc));
        return 1;
    }
    printf("checked: %" PRIu64 " entries, %" PRIu64 " chunks, %" PRIu64 " bytes\n", r.entries, r.chunks,
           r.bytes);
    printf("damaged entries: %" PRIu64 "\n", r.damaged_entries);
    printf("damaged chunks: %" PRIu64 "\n", r.damaged_chunks);
    printf("orphan chunks: %" PRIu64 "\n", r.orphan_chunks);
    printf("inconsistent entries: %" PRIu64 "\n", r.inconsistent_entries);
    printf("lru index errors: %" PRIu64 "\n", r.lru_errors);
    printf("bad claims: %" PRIu64 "\n", r.bad_claims);
    printf("totals: %s\n", r.totals_mismatch ? "wrong" : "ok");
    if (talas_cache_verify_clean(&r)) {
        printf("cache: clean\n");
        return 0;
    }
    if (fix)
        printf("cache: damaged, fixed (%" PRIu64 " records deleted or rewritten)\n", r.fixed);
    else
        printf("cache: damaged (run talasctl cache verify --fix)\n");
    return 1;
}

static int cmd_cache(const struct talas_config *conf, char **args, int nargs, int fix)
{
    if (nargs >= 1 && strcmp(args[0], "stats") == 0 && nargs == 1 && !fix)
        return cmd_cache_stats(conf);
    if (nargs >= 1 && strcmp(args[0], "purge") == 0 && nargs <= 2 && !fix)
        return cmd_cache_purge(conf, nargs == 2 ? args[1] : NULL);
    if (nargs >= 1 && strcmp(args[0], "verify") == 0 && nargs == 1)
        return cmd_cache_verify(conf, fix);
    usage(stderr);
    return 2;
}

/* ----------------------------------------------------------------- sign */

/* Options of sign, collected by main() wherever they appear. */
struct sign_opts {
    int given; /* any of the three was given */
    uint64_t ttl_s;
    enum talas_auth_kind kind;
    const char *user;
};

/* NULL when the key tokens are signed with can sign; else why not. The
 * choice is talas_auth_mint_url's (auth.h): the main key, else the first of
 * auth.keys. Checked before the key files are read, so that a verify-only
 * setup says so plainly. */
static char *signer_problem(const struct talas_config *conf)
{
    const struct talas_config_key *k = &conf->auth_key;
    const char *where = "auth";

    if (k->secret_file == NULL && k->public_key_file == NULL && k->private_key_file == NULL) {
        if (conf->auth_key_count == 0)
            return xasprintf("no key is configured: set auth.secret_file (HS256, HS384, HS512), or "
                             "auth.public_key_file and auth.private_key_file (RS256, ES256)");
        k = &conf->auth_keys[0];
        where = "auth.keys[0]";
    }
    if (k->algorithm >= TALAS_JWT_RS256 && k->private_key_file == NULL)
        return xasprintf("the signing key (%s%s%s, %s) has no private_key_file: it can verify tokens "
                         "but not sign them; set %s.private_key_file",
                         where, k->kid ? ", kid " : "", k->kid ? k->kid : "",
                         k->algorithm == TALAS_JWT_RS256 ? "RS256" : "ES256", where);
    if (k->algorithm <= TALAS_JWT_HS512 && k->secret_file == NULL)
        return xasprintf("the signing key (%s) has no secret_file", where);
    return NULL;
}

static int cmd_sign(const struct talas_config *conf, const char *track, const struct sign_opts *o)
{
    struct talas_auth *auth;
    struct talas_storage *st;
    struct talas_track t;
    MDB_txn *txn;
    char *error, *url, when[32];
    time_t exp;
    int rc;

    if (!talas_track_id_valid(track, strlen(track))) {
        fprintf(stderr,
                "talasctl: no such track: \"%s\" is not a track id (16 characters of A-Z a-z 0-9 - _)\n",
                track);
        return 1;
    }
    if ((error = signer_problem(conf)) != NULL) {
        fprintf(stderr, "talasctl: cannot sign: %s: %s\n", conf->file, error);
        free(error);
        return 1;
    }
    if (talas_auth_create(conf, &auth, &error) != 0) {
        fprintf(stderr, "talasctl: cannot sign: %s\n", error);
        if (strstr(error, strerror(EACCES)) != NULL)
            fprintf(stderr, "talasctl: sign reads the key files: run it as a user that may read them\n");
        free(error);
        return 1;
    }

    st = open_storage(conf);
    if ((rc = talas_storage_read_begin(st, &txn)) != 0) {
        fprintf(stderr, "talasctl: mdb_txn_begin() failed: %s\n", mdb_strerror(rc));
        talas_storage_close(st);
        talas_auth_free(auth);
        return 1;
    }
    rc = talas_catalog_get(st, txn, track, &t);
    if (rc == MDB_NOTFOUND)
        fprintf(stderr, "talasctl: no such track: %s (talasctl tracks lists them)\n", track);
    else if (rc == -1)
        fprintf(stderr, "talasctl: the catalog record of %s is damaged; run talasctl scan\n", track);
    else if (rc != 0)
        fprintf(stderr, "talasctl: reading the catalog failed: %s\n", mdb_strerror(rc));
    else if (t.error != NULL)
        fprintf(stderr, "talasctl: no such track: %s is a file that cannot be played (%s: %s)\n", track,
                t.path, t.error);
    mdb_txn_abort(txn);
    talas_storage_close(st);
    if (rc != 0 || t.error != NULL) {
        talas_auth_free(auth);
        return 1;
    }

    rc = talas_auth_mint_url(auth, track, o->user, o->kind, o->ttl_s, &url, &exp, &error);
    talas_auth_free(auth);
    if (rc != 0) {
        fprintf(stderr, "talasctl: cannot sign: %s\n", error);
        free(error);
        return 1;
    }
    printf("%s\n", url);
    free(url);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "talasctl: writing to standard output failed: %s\n", strerror(errno));
        return 1;
    }
    talas_auth_format_time(exp, when);
    fprintf(stderr, "expires: %s\n", when);
    return 0;
}

/* The backend key: the file's contents without the trailing newline. */
static char *read_backend_key(const struct talas_config *conf)
{
    struct talas_buf b = {0};
    char chunk[4096];
    size_t n;
    FILE *fp;

    if (conf->auth_backend_key_file == NULL) {
        fprintf(stderr, "talasctl: broadcast needs auth.backend_key_file in %s\n", conf->file);
        return NULL;
    }
    if ((fp = fopen(conf->auth_backend_key_file, "r")) == NULL) {
        fprintf(stderr, "talasctl: fopen(\"%s\") failed: %s\n", conf->auth_backend_key_file, strerror(errno));
        return NULL;
    }
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0 && b.len < 65536)
        talas_buf_append(&b, chunk, n);
    fclose(fp);
    while (b.len > 0 && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r'))
        b.len--;
    talas_buf_append(&b, "", 1);
    return b.data;
}

static int cmd_broadcast(const struct talas_config *conf, const char *message, const char *level)
{
    const struct talas_config_listen *l = NULL;
    struct addrinfo hints, *res = NULL;
    struct talas_buf body = {0}, req = {0};
    struct talas_json json;
    struct timeval tv = {10, 0};
    char port[16], reply[512], *key;
    const char *host;
    int fd = -1, rc = 1, status = 0;
    ssize_t n;

    for (size_t i = 0; i < conf->listen_count && l == NULL; i++)
        if (conf->listen[i].tls_certificate == NULL)
            l = &conf->listen[i];
    if (l == NULL) {
        fprintf(stderr, "talasctl: broadcast needs a cleartext listen address in %s\n", conf->file);
        return 1;
    }
    if ((key = read_backend_key(conf)) == NULL)
        return 1;
    host = strcmp(l->host, "0.0.0.0") == 0 ? "127.0.0.1" : strcmp(l->host, "::") == 0 ? "::1" : l->host;
    snprintf(port, sizeof(port), "%d", l->port);
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &res) != 0 || res == NULL) {
        fprintf(stderr, "talasctl: cannot resolve %s\n", host);
        goto out;
    }
    if ((fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1 ||
        connect(fd, res->ai_addr, res->ai_addrlen) == -1) {
        fprintf(stderr, "talasctl: connect() to %s:%s failed: %s (is talas-master running?)\n", host, port,
                strerror(errno));
        goto out;
    }
    talas_json_init(&json, &body);
    talas_json_object_begin(&json);
    talas_json_key(&json, "event");
    talas_json_object_begin(&json);
    talas_json_key(&json, "event");
    talas_json_string(&json, "ServerMessage");
    talas_json_key(&json, "message");
    talas_json_string(&json, message);
    talas_json_key(&json, "level");
    talas_json_string(&json, level);
    talas_json_object_end(&json);
    talas_json_object_end(&json);
    talas_buf_printf(&req,
                     "POST /api/events HTTP/1.1\r\nHost: %s:%s\r\nAuthorization: Bearer %s\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                     host, port, key, body.len);
    talas_buf_append(&req, body.data, body.len);
    if (write(fd, req.data, req.len) != (ssize_t)req.len) {
        fprintf(stderr, "talasctl: write() failed: %s\n", strerror(errno));
        goto out;
    }
    if ((n = read(fd, reply, sizeof(reply) - 1)) <= 0) {
        fprintf(stderr, "talasctl: no answer from %s:%s\n", host, port);
        goto out;
    }
    reply[n] = '\0';
    if (sscanf(reply, "HTTP/1.%*d %d", &status) != 1 || status != 200) {
        char *b = strstr(reply, "\r\n\r\n");
        fprintf(stderr, "talasctl: the server answered %d%s%s\n", status, b ? ": " : "", b ? b + 4 : "");
        goto out;
    }
    rc = 0;
out:
    if (fd != -1)
        close(fd);
    if (res != NULL)
        freeaddrinfo(res);
    talas_buf_free(&body);
    talas_buf_free(&req);
    free(key);
    return rc;
}

/* SECONDS: decimal digits, at most 9 of them (auth.max_ttl is at most a
 * day: talas_auth_mint_url refuses more, with the limit in its message). */
static int parse_ttl(const char *s, uint64_t *v_r)
{
    uint64_t v = 0;

    if (*s == '\0' || strspn(s, "0123456789") != strlen(s) || strlen(s) > 9)
        return -1;
    for (; *s; s++)
        v = v * 10 + (uint64_t)(*s - '0');
    *v_r = v;
    return 0;
}

static int parse_kind(const char *s, enum talas_auth_kind *kind_r)
{
    if (strcmp(s, "stream") == 0)
        *kind_r = TALAS_AUTH_STREAM;
    else if (strcmp(s, "preview") == 0)
        *kind_r = TALAS_AUTH_PREVIEW;
    else if (strcmp(s, "hls") == 0)
        *kind_r = TALAS_AUTH_HLS;
    else
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"errors", no_argument, NULL, 'e'},
                                             {"fix", no_argument, NULL, 'f'},
                                             {"ttl", required_argument, NULL, 't'},
                                             {"kind", required_argument, NULL, 'k'},
                                             {"user", required_argument, NULL, 'u'},
                                             {"level", required_argument, NULL, 'l'},
                                             {NULL, 0, NULL, 0}};
    const char *level = NULL;
    struct sign_opts so = {0, 0, TALAS_AUTH_STREAM, NULL};
    struct talas_config *conf;
    const char *file = DEFAULT_CONFIG, *cmd;
    char *error;
    char **args;
    int opt, errors = 0, fix = 0, nargs = 0, rc;

    talas_log_set_role("talasctl");
    while ((opt = getopt_long(argc, argv, "+c:Vh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            file = optarg;
            break;
        case 'V':
            printf("talasctl %s\n", PACKAGE_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    cmd = argv[optind++];
    /* Options may also follow the command ("talasctl tracks --errors") and
     * sit among its arguments ("cache verify --fix"). The "+" above makes
     * getopt stop at each argument: collect it and go on; after "--"
     * everything is an argument (a track id may begin with "-"). */
    args = xcalloc((size_t)argc, sizeof(*args));
    while (optind < argc) {
        /* a track id is 16 characters of base64url, and one in 64 begins
         * with "-": getopt would read it as options. No option of talasctl
         * has that form (long ones are shorter, "--opt=v" has a "="), so such
         * an argument is an id, as it was copied from "talasctl tracks". */
        if (argv[optind][0] != '-' || talas_track_id_valid(argv[optind], strlen(argv[optind]))) {
            args[nargs++] = argv[optind++];
            continue;
        }
        if ((opt = getopt_long(argc, argv, "+c:", longopts, NULL)) == -1) {
            /* "--": everything after it is an argument */
            while (optind < argc)
                args[nargs++] = argv[optind++];
            break;
        }
        if (opt == 'e')
            errors = 1;
        else if (opt == 'f')
            fix = 1;
        else if (opt == 'c')
            file = optarg;
        else if (opt == 't' && parse_ttl(optarg, &so.ttl_s) == 0)
            so.given = 1;
        else if (opt == 'k' && parse_kind(optarg, &so.kind) == 0)
            so.given = 1;
        else if (opt == 'u') {
            so.user = optarg;
            so.given = 1;
        } else if (opt == 'l' && (strcmp(optarg, "info") == 0 || strcmp(optarg, "warning") == 0 ||
                                  strcmp(optarg, "error") == 0)) {
            level = strcmp(optarg, "info") == 0      ? "Info"
                    : strcmp(optarg, "warning") == 0 ? "Warning"
                                                     : "Error";
        } else {
            if (opt == 't')
                fprintf(stderr, "talasctl: --ttl takes a number of seconds, not \"%s\"\n", optarg);
            else if (opt == 'k')
                fprintf(stderr, "talasctl: --kind is stream, preview or hls, not \"%s\"\n", optarg);
            else if (opt == 'l')
                fprintf(stderr, "talasctl: --level is info, warning or error, not \"%s\"\n", optarg);
            usage(stderr);
            free(args);
            return 2;
        }
    }
    if (strcmp(cmd, "broadcast") == 0
            ? nargs != 1 || fix || errors || so.given
            : (level != NULL) || (strcmp(cmd, "sign") == 0
                                      ? nargs != 1 || fix || errors
                                      : (strcmp(cmd, "cache") != 0 && (nargs != 0 || fix)) || so.given)) {
        usage(stderr);
        free(args);
        return 2;
    }
    if (talas_config_load(file, &conf, &error) != 0) {
        fprintf(stderr, "%s\n", error);
        free(error);
        free(args);
        return 1;
    }
    /* libav and the scanner log through the error log: keep it on stderr */
    talas_log_set_level(TALAS_LOG_WARN);
    if (strcmp(cmd, "scan") == 0)
        rc = cmd_scan(conf);
    else if (strcmp(cmd, "tracks") == 0)
        rc = cmd_tracks(conf, errors);
    else if (strcmp(cmd, "status") == 0)
        rc = cmd_status(conf);
    else if (strcmp(cmd, "cache") == 0)
        rc = cmd_cache(conf, args, nargs, fix);
    else if (strcmp(cmd, "sign") == 0)
        rc = cmd_sign(conf, args[0], &so);
    else if (strcmp(cmd, "broadcast") == 0)
        rc = cmd_broadcast(conf, args[0], level != NULL ? level : "Info");
    else {
        fprintf(stderr, "talasctl: unknown command \"%s\"\n", cmd);
        usage(stderr);
        rc = 2;
    }
    talas_config_free(conf);
    free(args);
    return rc;
}
