/*
 * talasctl.c - the operator's command line: main(), and the commands that
 * work on the storage directly.
 *
 *   talasctl [-c FILE] [--json] COMMAND [ARGS]     (talasctl(8) has them all)
 *
 * talasctl reads the same configuration file as talas-master. Commands
 * that need the running master (status's process part, reload, stop, ws
 * stats, broadcast) talk to it on its control socket (control.h,
 * talasctl_master.c). The others open the LMDB storage directly (LMDB is
 * made for several processes): they work whether the master runs or not,
 * and a scan they run is serialised with the master's scanner by the scan
 * lock.
 *
 * sign mints a signed media URL with the server's own key files
 * (workers/token.c, linked without h2o): the URL on stdout, its expiry on
 * stderr. It needs read access to the key files, and works whether
 * auth.required is on or not, so URLs can be tried before it is.
 *
 * Exit codes (talasctl.h): 0 ok, 1 failure, 2 usage, 3 the master does not
 * run, 4 the control socket refused this user. Read commands print one
 * JSON document with --json.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/token.h"
#include "store/cache.h"
#include "store/catalog.h"
#include "core/config.h"
#include "core/json.h"
#include "core/log.h"
#include "store/peaks.h"
#include "store/playback.h"
#include "scan/scan.h"
#include "store/sessions.h"
#include "store/storage.h"
#include "ctl/talasctl.h"
#include "core/util.h"

#include <openssl/ssl.h>

#define DEFAULT_CONFIG SYSCONFDIR "/talas/talas.yaml"

static void usage(FILE *fp)
{
    fprintf(fp, "usage: talasctl [-c FILE] [--json] COMMAND [ARGS]\n"
                "  status             the master and its workers, the catalog, the storage, the cache\n"
                "  scan [--full]      scan the library folders now (--full: probe every file again)\n"
                "  tracks [ls] [--errors]\n"
                "                     list the playable tracks, or the files that failed to probe\n"
                "  tracks show ID     everything the catalog knows of a track\n"
                "  tracks rm ID       remove a track from the catalog, and its cached transcodes\n"
                "  sign TRACK_ID [--ttl SECONDS] [--kind stream|preview|hls] [--user USER]\n"
                "                     print a signed URL for the track (expiry on stderr, or\n"
                "                     both in one JSON document with --json);\n"
                "                     --ttl 0 or none: auth.default_ttl; --kind default: stream\n"
                "  cache stats        show the transcode cache: size, hit ratio, encoder counters\n"
                "  cache purge [TRACK_ID]\n"
                "                     remove every cached transcode, or those of one track\n"
                "  cache verify [--fix]\n"
                "                     check every cache record (CRCs included); --fix removes damaged ones\n"
                "  sessions           streaming sessions and listening sessions\n"
                "  ws stats           realtime (/api/ws) figures of every worker\n"
                "  broadcast MESSAGE [--level info|warning|error]\n"
                "                     send a ServerMessage to every realtime (/api/ws) connection\n"
                "  reload             reload the configuration; answers when the new workers serve\n"
                "  stop               stop the master gracefully; answers when it has exited\n"
                "  check-config [--keys]\n"
                "                     check the configuration file (--keys: list every key it may hold)\n"
                "options:\n"
                "  -c FILE            configuration file (default: " DEFAULT_CONFIG ")\n"
                "  --json             print read commands' output as one JSON document\n"
                "  -V                 print the version\n"
                "  -h                 print this help\n"
                "exit codes: 0 ok, 1 failure, 2 usage, 3 master not running, 4 control socket denied\n");
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
    int tty;
    uint64_t last_ms;
    uint64_t expected; /* files the previous scan saw: the bar's 100% */
};

/* On a terminal: a bar (against the previous scan's file count, the best
 * guess before the walk ends) redrawn at most 10 times a second. Else:
 * a plain line at most once a second, and one at the end, for logs. */
static void on_progress(const struct talas_scan_progress *p, void *arg)
{
    struct progress_state *ps = arg;
    uint64_t now = talas_now_ms();

    if (p->current != NULL && now - ps->last_ms < (ps->tty ? 100 : 1000))
        return;
    ps->last_ms = now;
    if (!ps->tty) {
        fprintf(stderr, "scan: %zu files, %zu probed, %zu unchanged, %zu errors%s\n", p->files, p->probed,
                p->unchanged, p->errors, p->current == NULL ? " (walk done)" : "");
        return;
    }
    fprintf(stderr, "\r\033[K%zu files: %zu probed, %zu unchanged, %zu errors", p->files, p->probed,
            p->unchanged, p->errors);
    if (ps->expected > 0) {
        uint64_t pct = p->current == NULL ? 100 : (uint64_t)p->files * 100 / ps->expected;
        int full;
        if (pct > 99 && p->current != NULL)
            pct = 99;
        full = (int)(pct * 30 / 100);
        fprintf(stderr, " [%.*s%*s] %3d%%", full, "##############################", 30 - full, "", (int)pct);
    }
    if (p->current == NULL)
        fputc('\n', stderr);
}

static int cmd_scan(const struct talas_config *conf, int full)
{
    struct talas_scan_progress result;
    struct talas_scan_status prev;
    struct progress_state ps = {0};
    struct talas_storage *st = open_storage(conf);
    uint64_t started = talas_now_ms();
    double secs;
    MDB_txn *txn;
    char *error;

    ps.tty = isatty(STDERR_FILENO);
    if (talas_storage_read_begin(st, &txn) == 0) {
        if (talas_catalog_scan_status_get(st, txn, &prev) == 0)
            ps.expected = prev.files;
        mdb_txn_abort(txn);
    }
    if ((full ? talas_scan_run_full : talas_scan_run)(conf, st, 1, on_progress, &ps, &result, &error) != 0) {
        fprintf(stderr, "talasctl: scan failed: %s\n", error);
        free(error);
        talas_storage_close(st);
        return TALASCTL_FAILURE;
    }
    secs = (double)(talas_now_ms() - started) / 1000.0;
    if (talasctl_json)
        printf(
            "{\"files\":%zu,\"added\":%zu,\"updated\":%zu,\"removed\":%zu,\"unchanged\":%zu,\"errors\":%zu,"
            "\"probed\":%zu,\"seconds\":%.3f}\n",
            result.files, result.added, result.updated, result.removed, result.unchanged, result.errors,
            result.probed, secs);
    else
        printf(
            "scanned %zu files in %.1f s: %zu added, %zu updated, %zu removed, %zu unchanged, %zu errors\n",
            result.files, secs, result.added, result.updated, result.removed, result.unchanged,
            result.errors);
    talas_storage_close(st);
    return TALASCTL_OK;
}

struct tracks_state {
    int errors;
    size_t count;
    struct talas_json json;
};

static void track_json(struct talas_json *j, const struct talas_track *t)
{
    talas_json_object_begin(j);
    talas_json_key(j, "id");
    talas_json_string(j, t->id);
    talas_json_key(j, "path");
    talas_json_string(j, t->path);
    talas_json_key(j, "title");
    talas_json_string(j, t->title);
    talas_json_key(j, "artist");
    talas_json_string(j, t->artist);
    talas_json_key(j, "album");
    talas_json_string(j, t->album);
    talas_json_key(j, "duration_ms");
    talas_json_uint(j, t->duration_ms);
    talas_json_key(j, "codec");
    talas_json_string(j, t->codec);
    talas_json_key(j, "container");
    talas_json_string(j, t->container);
    talas_json_key(j, "mime");
    talas_json_string(j, t->mime);
    talas_json_key(j, "sample_rate");
    talas_json_uint(j, t->sample_rate);
    talas_json_key(j, "channels");
    talas_json_uint(j, t->channels);
    talas_json_key(j, "bit_rate");
    talas_json_uint(j, t->bit_rate);
    talas_json_key(j, "size");
    talas_json_uint(j, t->size);
    talas_json_key(j, "mtime_ns");
    talas_json_int(j, t->mtime_ns);
    talas_json_key(j, "scanned_at");
    talas_json_uint(j, t->scanned_at);
    talas_json_key(j, "error");
    if (t->error != NULL)
        talas_json_string(j, t->error);
    else
        talas_json_null(j);
    talas_json_object_end(j);
}

static int print_track(const struct talas_track *t, void *arg)
{
    struct tracks_state *s = arg;

    if ((s->errors != 0) != (t->error != NULL))
        return 0;
    if (talasctl_json)
        track_json(&s->json, t);
    else if (s->errors)
        printf("%s\t%s\t%s\n", t->id, t->path, t->error);
    else
        printf("%s\t%" PRIu64 ":%02" PRIu64 "\t%s\t%s\n", t->id, t->duration_ms / 60000,
               (t->duration_ms / 1000) % 60, t->artist, t->title);
    s->count++;
    return 0;
}

static int cmd_tracks_ls(const struct talas_config *conf, int errors)
{
    struct talas_storage *st = open_storage(conf);
    struct tracks_state s = {errors, 0, {0}};
    struct talas_buf out = {0};
    MDB_txn *txn;
    size_t damaged = 0;
    int rc;

    if ((rc = talas_storage_read_begin(st, &txn)) != 0) {
        fprintf(stderr, "talasctl: mdb_txn_begin() failed: %s\n", mdb_strerror(rc));
        return TALASCTL_FAILURE;
    }
    talas_json_init(&s.json, &out);
    talas_json_array_begin(&s.json);
    rc = talas_catalog_foreach(st, txn, print_track, &s, &damaged);
    talas_json_array_end(&s.json);
    mdb_txn_abort(txn);
    talas_storage_close(st);
    if (rc != 0) {
        fprintf(stderr, "talasctl: reading the catalog failed: %s\n", mdb_strerror(rc));
        talas_buf_free(&out);
        return TALASCTL_FAILURE;
    }
    if (talasctl_json)
        printf("%.*s\n", (int)out.len, out.data);
    talas_buf_free(&out);
    if (damaged > 0)
        fprintf(stderr, "talasctl: %zu damaged catalog record(s) skipped; run a scan\n", damaged);
    return TALASCTL_OK;
}

/* Reads track ID into *T in TXN; on failure says why on stderr. */
static int get_track(struct talas_storage *st, MDB_txn *txn, const char *id, struct talas_track *t)
{
    int rc;

    if (!talas_track_id_valid(id, strlen(id))) {
        fprintf(stderr,
                "talasctl: no such track: \"%s\" is not a track id (16 characters of A-Z a-z 0-9 - _)\n", id);
        return -1;
    }
    rc = talas_catalog_get(st, txn, id, t);
    if (rc == MDB_NOTFOUND)
        fprintf(stderr, "talasctl: no such track: %s (talasctl tracks lists them)\n", id);
    else if (rc == -1)
        fprintf(stderr, "talasctl: the catalog record of %s is damaged; run talasctl scan\n", id);
    else if (rc != 0)
        fprintf(stderr, "talasctl: reading the catalog failed: %s\n", mdb_strerror(rc));
    return rc == 0 ? 0 : -1;
}

static int cmd_tracks_show(const struct talas_config *conf, const char *id)
{
    struct talas_storage *st = open_storage(conf);
    struct talas_track t;
    struct talas_buf out = {0};
    struct talas_json json;
    MDB_txn *txn;
    int rc;

    if ((rc = talas_storage_read_begin(st, &txn)) != 0) {
        fprintf(stderr, "talasctl: mdb_txn_begin() failed: %s\n", mdb_strerror(rc));
        talas_storage_close(st);
        return TALASCTL_FAILURE;
    }
    rc = get_track(st, txn, id, &t);
    if (rc == 0) {
        /* the strings point into the transaction's pages: print before it ends */
        talas_json_init(&json, &out);
        track_json(&json, &t);
        talas_buf_append(&out, "", 1);
        if (talasctl_json)
            printf("%s\n", out.data);
        else
            talasctl_print_text(stdout, out.data, 0);
    }
    mdb_txn_abort(txn);
    talas_storage_close(st);
    talas_buf_free(&out);
    return rc == 0 ? TALASCTL_OK : TALASCTL_FAILURE;
}

/* Removes the catalog record and the cached transcodes of a track. The
 * file stays: a scan adds it back while it is in a library folder. */
static int cmd_tracks_rm(const struct talas_config *conf, const char *id)
{
    struct talas_storage *st = open_storage(conf);
    struct talas_cache_purge_result res = {0};
    struct talas_track t;
    MDB_txn *txn;
    char *path = NULL;
    int rc;

    if ((rc = talas_storage_write_begin(st, &txn)) != 0) {
        fprintf(stderr, "talasctl: mdb_txn_begin() failed: %s\n", mdb_strerror(rc));
        talas_storage_close(st);
        return TALASCTL_FAILURE;
    }
    if (get_track(st, txn, id, &t) != 0) {
        mdb_txn_abort(txn);
        talas_storage_close(st);
        return TALASCTL_FAILURE;
    }
    path = xasprintf("%s", t.path);
    if ((rc = talas_catalog_del(st, txn, id)) != 0 || (rc = mdb_txn_commit(txn)) != 0) {
        if (rc != 0)
            fprintf(stderr, "talasctl: removing %s failed: %s\n", id, mdb_strerror(rc));
        talas_storage_close(st);
        free(path);
        return TALASCTL_FAILURE;
    }
    rc = talas_cache_purge(st, id, NULL, NULL, &res);
    if (rc == 0)
        rc = talas_peaks_drop(st, id, NULL); /* its waveform too */
    talas_storage_close(st);
    if (talasctl_json) {
        struct talas_buf out = {0};
        struct talas_json json;
        talas_json_init(&json, &out);
        talas_json_object_begin(&json);
        talas_json_key(&json, "removed");
        talas_json_string(&json, id);
        talas_json_key(&json, "path");
        talas_json_string(&json, path);
        talas_json_key(&json, "cache_entries");
        talas_json_uint(&json, res.entries);
        talas_json_key(&json, "cache_bytes");
        talas_json_uint(&json, res.bytes);
        talas_json_object_end(&json);
        printf("%.*s\n", (int)out.len, out.data);
        talas_buf_free(&out);
    } else {
        printf("removed %s (%s) and %" PRIu64 " cached transcodes; the file stays, and a scan adds it back "
               "while it is in a library folder\n",
               id, path, res.entries);
    }
    free(path);
    if (rc != 0) {
        fprintf(stderr, "talasctl: purging the cache of %s failed: %s\n", id, mdb_strerror(rc));
        return TALASCTL_FAILURE;
    }
    return TALASCTL_OK;
}

static int cmd_tracks(const struct talas_config *conf, char **args, int nargs, int errors)
{
    if (nargs == 0 || (nargs == 1 && strcmp(args[0], "ls") == 0))
        return cmd_tracks_ls(conf, errors);
    if (nargs == 2 && strcmp(args[0], "show") == 0 && !errors)
        return cmd_tracks_show(conf, args[1]);
    if (nargs == 2 && strcmp(args[0], "rm") == 0 && !errors)
        return cmd_tracks_rm(conf, args[1]);
    usage(stderr);
    return TALASCTL_USAGE;
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

/* status: the master's part from its control socket, then what the
 * storage says; with --json one document {"master":..., "catalog":...,
 * "storage":..., "cache":...}. Exit 3 when the master does not run (the
 * rest is still printed). */
static int cmd_status(const struct talas_config *conf)
{
    struct talas_storage *st = open_storage(conf);
    struct talas_scan_status scan;
    struct talas_cache_stats cs;
    struct talas_buf reply = {0}, out = {0};
    struct talas_json j;
    MDB_envinfo info;
    MDB_stat stat;
    MDB_txn *txn;
    pid_t pid = master_pid(conf);
    int rc, have_scan, have_cache, ctl, interrupted = 0;
    uint64_t used;

    /* a status request answers at once; its errors go to stderr, and the
     * exit code says whether the master runs */
    ctl = talasctl_request(conf, "status", &reply, 0);
    if ((rc = talas_storage_read_begin(st, &txn)) != 0) {
        fprintf(stderr, "talasctl: mdb_txn_begin() failed: %s\n", mdb_strerror(rc));
        talas_storage_close(st);
        talas_buf_free(&reply);
        return TALASCTL_FAILURE;
    }
    have_scan = talas_catalog_scan_status_get(st, txn, &scan) == 0;
    have_cache = talas_cache_stats_get(st, txn, &cs) == 0;
    mdb_txn_abort(txn);
    mdb_env_info(talas_storage_env(st), &info);
    mdb_env_stat(talas_storage_env(st), &stat);
    used = (uint64_t)(info.me_last_pgno + 1) * stat.ms_psize;
    /* a scanner killed mid-scan leaves its flag set: ask its pid */
    if (have_scan && scan.running && scan.pid > 0 && kill(scan.pid, 0) == -1 && errno == ESRCH)
        interrupted = 1;

    if (talasctl_json) {
        talas_json_init(&j, &out);
        talas_json_object_begin(&j);
        talas_json_key(&j, "running");
        talas_json_bool(&j, ctl == TALASCTL_OK);
        talas_json_key(&j, "config");
        talas_json_string(&j, conf->file);
        talas_json_key(&j, "control_socket");
        talas_json_string(&j, conf->control_socket);
        talas_json_key(&j, "master");
        if (ctl == TALASCTL_OK) {
            /* the master's answer, as it came */
            talas_json_null(&j);
            out.len -= 4;
            talas_buf_append(&out, reply.data, reply.len);
        } else {
            talas_json_null(&j);
        }
        talas_json_key(&j, "listen");
        talas_json_array_begin(&j);
        for (size_t i = 0; i < conf->listen_count; i++) {
            char *l = xasprintf("%s:%d%s", conf->listen[i].host, conf->listen[i].port,
                                conf->listen[i].tls_certificate ? " (tls)" : "");
            talas_json_string(&j, l);
            free(l);
        }
        talas_json_array_end(&j);
        talas_json_key(&j, "catalog");
        talas_json_object_begin(&j);
        talas_json_key(&j, "tracks");
        talas_json_uint(&j, have_scan ? scan.tracks : 0);
        talas_json_key(&j, "errors");
        talas_json_uint(&j, have_scan ? scan.errors : 0);
        talas_json_key(&j, "scan");
        talas_json_string(&j, !have_scan     ? "never"
                              : interrupted  ? "interrupted"
                              : scan.running ? "running"
                                             : "idle");
        talas_json_key(&j, "last_scan");
        talas_json_uint(&j, have_scan ? scan.finished_at : 0);
        talas_json_object_end(&j);
        talas_json_key(&j, "storage");
        talas_json_object_begin(&j);
        talas_json_key(&j, "path");
        talas_json_string(&j, conf->storage_path);
        talas_json_key(&j, "used_bytes");
        talas_json_uint(&j, used);
        talas_json_key(&j, "map_size");
        talas_json_uint(&j, info.me_mapsize);
        talas_json_key(&j, "readers");
        talas_json_uint(&j, info.me_numreaders);
        talas_json_key(&j, "max_readers");
        talas_json_uint(&j, info.me_maxreaders);
        talas_json_object_end(&j);
        talas_json_key(&j, "cache");
        if (have_cache) {
            talas_json_object_begin(&j);
            talas_json_key(&j, "entries");
            talas_json_uint(&j, cs.entries);
            talas_json_key(&j, "bytes");
            talas_json_uint(&j, cs.bytes);
            talas_json_key(&j, "max_size");
            talas_json_uint(&j, conf->cache_max_size);
            talas_json_key(&j, "hits");
            talas_json_uint(&j, cs.hits);
            talas_json_key(&j, "misses");
            talas_json_uint(&j, cs.misses);
            talas_json_object_end(&j);
        } else {
            talas_json_null(&j);
        }
        talas_json_object_end(&j);
        printf("%.*s\n", (int)out.len, out.data);
    } else {
        if (ctl == TALASCTL_OK) {
            printf("master: running\n");
            talasctl_print_text(stdout, reply.data, 2);
        } else if (pid != 0) {
            printf("master: running (pid %d) but its control socket does not answer\n", (int)pid);
        } else {
            printf("master: not running\n");
        }
        printf("workers: %d\n", conf->workers);
        for (size_t i = 0; i < conf->listen_count; i++)
            printf("listen: %s:%d%s\n", conf->listen[i].host, conf->listen[i].port,
                   conf->listen[i].tls_certificate ? " (tls)" : "");
        if (have_scan) {
            printf("tracks: %" PRIu64 "\n", scan.tracks);
            printf("errors: %" PRIu64 "\n", scan.errors);
            if (interrupted)
                printf("scan: interrupted (pid %d is gone)\n", (int)scan.pid);
            else
                printf("scan: %s\n", scan.running ? "running" : "idle");
            print_time("last scan", scan.finished_at);
        } else {
            printf("tracks: 0\nscan: never\n");
        }
        printf("storage: %s\n", conf->storage_path);
        printf("storage used: %" PRIu64 " bytes of %zu (map size)\n", used, info.me_mapsize);
        printf("storage reader slots: %u used at most, of %u\n", info.me_numreaders, info.me_maxreaders);
        if (have_cache)
            printf("cache: %" PRIu64 " transcodes, %" PRIu64 " bytes of %" PRIu64 ", %" PRIu64
                   " hits, %" PRIu64 " misses\n",
                   cs.entries, cs.bytes, conf->cache_max_size, cs.hits, cs.misses);
    }
    talas_storage_close(st);
    talas_buf_free(&reply);
    talas_buf_free(&out);
    return ctl;
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
    if (talasctl_json) {
        printf("{\"entries\":%" PRIu64 ",\"chunks\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"max_size\":%" PRIu64
               ",\"hits\":%" PRIu64 ",\"misses\":%" PRIu64 ",\"transcodes_started\":%" PRIu64
               ",\"transcodes_completed\":%" PRIu64 ",\"transcodes_cancelled\":%" PRIu64
               ",\"transcodes_failed\":%" PRIu64 ",\"bytes_encoded\":%" PRIu64 ",\"encode_ms\":%" PRIu64
               ",\"evictions\":%" PRIu64 ",\"map_full_retries\":%" PRIu64 "}\n",
               s.entries, s.chunks, s.bytes, max, s.hits, s.misses, s.transcodes_started,
               s.transcodes_completed, s.transcodes_cancelled, s.transcodes_failed, s.bytes_encoded,
               s.encode_ms, s.evictions, s.map_full_retries);
        return TALASCTL_OK;
    }
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
    uint64_t peaks = 0;
    int rc;

    if (track != NULL && !talas_track_id_valid(track, strlen(track))) {
        fprintf(stderr, "talasctl: \"%s\" is not a track id (16 characters of A-Z a-z 0-9 - _)\n", track);
        return 1;
    }
    st = open_storage(conf);
    rc = talas_cache_purge(st, track, print_purged, NULL, &res);
    /* the waveforms are derived data too: they are computed again on demand */
    if (rc == 0)
        rc = talas_peaks_drop(st, track, &peaks);
    talas_storage_close(st);
    printf("removed %" PRIu64 " transcodes, %" PRIu64 " chunks, %" PRIu64 " bytes\n", res.entries, res.chunks,
           res.bytes);
    printf("removed %" PRIu64 " waveforms\n", peaks);
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
    if (talasctl_json) {
        printf("{\"clean\":%s,\"entries\":%" PRIu64 ",\"chunks\":%" PRIu64 ",\"bytes\":%" PRIu64
               ",\"damaged_entries\":%" PRIu64 ",\"damaged_chunks\":%" PRIu64 ",\"orphan_chunks\":%" PRIu64
               ",\"inconsistent_entries\":%" PRIu64 ",\"lru_errors\":%" PRIu64 ",\"bad_claims\":%" PRIu64
               ",\"totals_mismatch\":%s,\"fixed\":%" PRIu64 "}\n",
               talas_cache_verify_clean(&r) ? "true" : "false", r.entries, r.chunks, r.bytes,
               r.damaged_entries, r.damaged_chunks, r.orphan_chunks, r.inconsistent_entries, r.lru_errors,
               r.bad_claims, r.totals_mismatch ? "true" : "false", r.fixed);
        return talas_cache_verify_clean(&r) ? TALASCTL_OK : TALASCTL_FAILURE;
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
    enum talas_token_kind kind;
    const char *user;
};

/* NULL when the key tokens are signed with can sign; else why not. The
 * choice is talas_token_mint_url's (token.h): the main key, else the first of
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
    struct talas_token *auth;
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
    if (talas_token_create(conf, &auth, &error) != 0) {
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
        talas_token_free(auth);
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
        talas_token_free(auth);
        return 1;
    }

    rc = talas_token_mint_url(auth, track, o->user, o->kind, o->ttl_s, &url, &exp, &error);
    talas_token_free(auth);
    if (rc != 0) {
        fprintf(stderr, "talasctl: cannot sign: %s\n", error);
        free(error);
        return 1;
    }
    talas_token_format_time(exp, when);
    if (talasctl_json) {
        struct talas_buf out = {0};
        struct talas_json json;
        talas_json_init(&json, &out);
        talas_json_object_begin(&json);
        /* the names and formats of POST /api/stream-url's answer */
        talas_json_key(&json, "url_signed");
        talas_json_string(&json, url);
        talas_json_key(&json, "track_id");
        talas_json_string(&json, track);
        talas_json_key(&json, "kind");
        talas_json_string(&json, talas_token_kind_name(o->kind));
        talas_json_key(&json, "user");
        if (o->user != NULL)
            talas_json_string(&json, o->user);
        else
            talas_json_null(&json);
        talas_json_key(&json, "expires_at");
        talas_json_string(&json, when);
        talas_json_object_end(&json);
        printf("%.*s\n", (int)out.len, out.data);
        talas_buf_free(&out);
    } else {
        printf("%s\n", url);
    }
    free(url);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "talasctl: writing to standard output failed: %s\n", strerror(errno));
        return 1;
    }
    if (!talasctl_json)
        fprintf(stderr, "expires: %s\n", when);
    return 0;
}

/* ------------------------------------------------------------- sessions */

struct sessions_state {
    const struct talas_config *conf;
    uint64_t now_ms;
    struct talas_json json;
    size_t count;
};

static int each_stream_session(const struct talas_session *ss, void *arg)
{
    struct sessions_state *st = arg;
    int expired = talas_session_expired(ss, st->now_ms, st->conf->streaming_session_timeout_ms);
    uint64_t age = st->now_ms > ss->created_at_ms ? st->now_ms - ss->created_at_ms : 0;

    st->count++;
    if (!talasctl_json) {
        printf("%s\t%s\t%s\t%s\t%" PRIu64 " s%s\n", ss->session_id, ss->track_id,
               ss->client_id[0] ? ss->client_id : "-", ss->current_quality, age / 1000,
               expired ? "\texpired" : "");
        return 0;
    }
    talas_json_object_begin(&st->json);
    talas_json_key(&st->json, "session_id");
    talas_json_string(&st->json, ss->session_id);
    talas_json_key(&st->json, "track_id");
    talas_json_string(&st->json, ss->track_id);
    talas_json_key(&st->json, "client_id");
    talas_json_string(&st->json, ss->client_id);
    talas_json_key(&st->json, "quality");
    talas_json_string(&st->json, ss->current_quality);
    talas_json_key(&st->json, "created_at_ms");
    talas_json_uint(&st->json, ss->created_at_ms);
    talas_json_key(&st->json, "last_updated_ms");
    talas_json_uint(&st->json, ss->last_updated_ms);
    talas_json_key(&st->json, "expired");
    talas_json_bool(&st->json, expired);
    talas_json_key(&st->json, "buffer_health_percentage");
    talas_json_double(&st->json, ss->performance_metrics.buffer_health_percentage);
    talas_json_key(&st->json, "rebuffer_count");
    talas_json_uint(&st->json, ss->performance_metrics.rebuffer_count);
    talas_json_key(&st->json, "quality_switches");
    talas_json_uint(&st->json, ss->performance_metrics.quality_switches);
    talas_json_object_end(&st->json);
    return 0;
}

static int each_listener(const char *user, const struct talas_playback_state *ps, void *arg)
{
    static const char *const statuses[] = {"stopped", "playing", "paused"};
    struct sessions_state *st = arg;
    const char *status = ps->status < 3 ? statuses[ps->status] : "unknown";
    uint64_t position = ps->position_ms;

    if (ps->status == TALAS_PLAYBACK_STOPPED)
        return 0;
    if (ps->status == TALAS_PLAYBACK_PLAYING && st->now_ms > ps->updated_ms)
        position += st->now_ms - ps->updated_ms;
    if (ps->duration_ms > 0 && position > ps->duration_ms)
        position = ps->duration_ms;
    st->count++;
    if (!talasctl_json) {
        printf("%s\t%s\t%s\t%" PRIu64 ":%02" PRIu64 "\t%s\t%s\n", user, ps->track_id, status,
               position / 60000, (position / 1000) % 60, ps->quality[0] ? ps->quality : "-",
               ps->platform[0] ? ps->platform : "-");
        return 0;
    }
    talas_json_object_begin(&st->json);
    talas_json_key(&st->json, "user_id");
    talas_json_string(&st->json, user);
    talas_json_key(&st->json, "track_id");
    talas_json_string(&st->json, ps->track_id);
    talas_json_key(&st->json, "status");
    talas_json_string(&st->json, status);
    talas_json_key(&st->json, "position_ms");
    talas_json_uint(&st->json, position);
    talas_json_key(&st->json, "quality");
    talas_json_string(&st->json, ps->quality);
    talas_json_key(&st->json, "platform");
    talas_json_string(&st->json, ps->platform);
    talas_json_key(&st->json, "started_at_ms");
    talas_json_uint(&st->json, ps->session_started_ms);
    talas_json_object_end(&st->json);
    return 0;
}

/* The streaming sessions (sessions.c: /api/streaming/session) and the
 * listening sessions (playback.c: users playing or paused on /api/ws). */
static int cmd_sessions(const struct talas_config *conf)
{
    struct talas_storage *st = open_storage(conf);
    struct sessions_state ss = {conf, talas_session_now_ms(), {0}, 0};
    struct talas_session_counters counters = {0};
    struct talas_buf out = {0};
    MDB_txn *txn;
    int rc;

    if ((rc = talas_storage_read_begin(st, &txn)) != 0) {
        fprintf(stderr, "talasctl: mdb_txn_begin() failed: %s\n", mdb_strerror(rc));
        talas_storage_close(st);
        return TALASCTL_FAILURE;
    }
    talas_json_init(&ss.json, &out);
    talas_json_object_begin(&ss.json);
    talas_json_key(&ss.json, "streaming");
    talas_json_array_begin(&ss.json);
    if (!talasctl_json)
        printf("streaming sessions (session, track, client, quality, age):\n");
    if ((rc = talas_session_foreach(st, txn, each_stream_session, &ss)) == 0) {
        talas_json_array_end(&ss.json);
        if (!talasctl_json)
            printf("%zu streaming session(s)\nlistening sessions (user, track, status, position, quality, "
                   "platform):\n",
                   ss.count);
        ss.count = 0;
        talas_json_key(&ss.json, "listening");
        talas_json_array_begin(&ss.json);
        rc = talas_playback_foreach_state(st, txn, each_listener, &ss);
        talas_json_array_end(&ss.json);
    }
    if (rc == 0)
        rc = talas_session_counters_get(st, txn, &counters);
    mdb_txn_abort(txn);
    talas_storage_close(st);
    if (rc != 0) {
        fprintf(stderr, "talasctl: reading the sessions failed: %s\n", mdb_strerror(rc));
        talas_buf_free(&out);
        return TALASCTL_FAILURE;
    }
    if (talasctl_json) {
        talas_json_key(&ss.json, "streaming_totals");
        talas_json_object_begin(&ss.json);
        talas_json_key(&ss.json, "created");
        talas_json_uint(&ss.json, counters.created);
        talas_json_key(&ss.json, "ended");
        talas_json_uint(&ss.json, counters.ended);
        talas_json_key(&ss.json, "expired");
        talas_json_uint(&ss.json, counters.expired);
        talas_json_object_end(&ss.json);
        talas_json_object_end(&ss.json);
        printf("%.*s\n", (int)out.len, out.data);
    } else {
        printf("%zu listening session(s)\n", ss.count);
        printf("streaming sessions since the storage was created: %" PRIu64 " created, %" PRIu64
               " ended, %" PRIu64 " expired\n",
               counters.created, counters.ended, counters.expired);
    }
    talas_buf_free(&out);
    return TALASCTL_OK;
}

/* --------------------------------------------------------- check-config */

/* What talas-master -t checks: the file (already loaded by main), the
 * token and backend keys, the TLS files; and whether the storage and the
 * control socket's directory exist. */
static int cmd_check_config(const struct talas_config *conf)
{
    struct talas_token *auth;
    char *error, *dir;
    int ok = 1;

    if (talas_token_create(conf, &auth, &error) == 0) {
        talas_token_free(auth);
    } else {
        fprintf(stderr, "%s\n", error);
        free(error);
        ok = 0;
    }
    for (size_t i = 0; i < conf->listen_count; i++) {
        const struct talas_config_listen *l = &conf->listen[i];
        SSL_CTX *ctx;

        if (l->tls_certificate == NULL)
            continue;
        ctx = SSL_CTX_new(TLS_server_method());
        if (SSL_CTX_use_certificate_chain_file(ctx, l->tls_certificate) != 1 ||
            SSL_CTX_use_PrivateKey_file(ctx, l->tls_key, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1) {
            fprintf(stderr, "%s: listen %s:%d: tls: cannot load \"%s\" and \"%s\", or they do not match\n",
                    conf->file, l->host, l->port, l->tls_certificate, l->tls_key);
            ok = 0;
        }
        SSL_CTX_free(ctx);
    }
    dir = xasprintf("%s", conf->control_socket);
    if (strrchr(dir, '/') != NULL)
        *strrchr(dir, '/') = '\0';
    if (*dir != '\0' && access(dir, F_OK) != 0) {
        fprintf(stderr, "%s: control.socket: the directory \"%s\" does not exist\n", conf->file, dir);
        ok = 0;
    }
    free(dir);
    if (talasctl_json) {
        struct talas_buf out = {0};
        struct talas_json j;
        talas_json_init(&j, &out);
        talas_json_object_begin(&j);
        talas_json_key(&j, "ok");
        talas_json_bool(&j, ok);
        talas_json_key(&j, "config");
        talas_json_string(&j, conf->file);
        talas_json_object_end(&j);
        printf("%.*s\n", (int)out.len, out.data);
        talas_buf_free(&out);
    } else
        printf("%s: configuration %s\n", conf->file, ok ? "ok" : "has errors");
    return ok ? TALASCTL_OK : TALASCTL_FAILURE;
}

/* SECONDS: decimal digits, at most 9 of them (auth.max_ttl is at most a
 * day: talas_token_mint_url refuses more, with the limit in its message). */
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

static int parse_kind(const char *s, enum talas_token_kind *kind_r)
{
    if (strcmp(s, "stream") == 0)
        *kind_r = TALAS_TOKEN_STREAM;
    else if (strcmp(s, "preview") == 0)
        *kind_r = TALAS_TOKEN_PREVIEW;
    else if (strcmp(s, "hls") == 0)
        *kind_r = TALAS_TOKEN_HLS;
    else
        return -1;
    return 0;
}

/* What each command accepts; main() refuses the rest with exit 2. */
enum {
    OPT_ERRORS = 1 << 0,
    OPT_FIX = 1 << 1,
    OPT_SIGN = 1 << 2, /* --ttl, --kind, --user */
    OPT_LEVEL = 1 << 3,
    OPT_FULL = 1 << 4,
    OPT_KEYS = 1 << 5,
};

static const struct command {
    const char *name;
    int min_args, max_args;
    unsigned opts;
} commands[] = {
    {"status", 0, 0, 0},      {"scan", 0, 0, OPT_FULL},         {"tracks", 0, 2, OPT_ERRORS},
    {"sign", 1, 1, OPT_SIGN}, {"cache", 1, 2, OPT_FIX},         {"sessions", 0, 0, 0},
    {"ws", 1, 1, 0},          {"broadcast", 1, 1, OPT_LEVEL},   {"reload", 0, 0, 0},
    {"stop", 0, 0, 0},        {"check-config", 0, 0, OPT_KEYS},
};

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"errors", no_argument, NULL, 'e'},     {"fix", no_argument, NULL, 'f'},
        {"ttl", required_argument, NULL, 't'},  {"kind", required_argument, NULL, 'k'},
        {"user", required_argument, NULL, 'u'}, {"level", required_argument, NULL, 'l'},
        {"json", no_argument, NULL, 'j'},       {"full", no_argument, NULL, 'F'},
        {"keys", no_argument, NULL, 'K'},       {NULL, 0, NULL, 0}};
    const char *level = NULL;
    struct sign_opts so = {0, 0, TALAS_TOKEN_STREAM, NULL};
    const struct command *command = NULL;
    struct talas_config *conf;
    const char *file = DEFAULT_CONFIG, *cmd;
    char *error;
    char **args;
    unsigned given = 0;
    int opt, nargs = 0, rc;

    talas_log_set_role("talasctl");
    while ((opt = getopt_long(argc, argv, "+c:Vh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            file = optarg;
            break;
        case 'j':
            talasctl_json = 1;
            break;
        case 'V':
            printf("talasctl %s\n", PACKAGE_VERSION);
            return TALASCTL_OK;
        case 'h':
            usage(stdout);
            return TALASCTL_OK;
        default:
            usage(stderr);
            return TALASCTL_USAGE;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return TALASCTL_USAGE;
    }
    cmd = argv[optind++];
    for (size_t i = 0; i < TALAS_ARRAY_SIZE(commands); i++)
        if (strcmp(cmd, commands[i].name) == 0)
            command = &commands[i];
    if (command == NULL) {
        fprintf(stderr, "talasctl: unknown command \"%s\"\n", cmd);
        usage(stderr);
        return TALASCTL_USAGE;
    }
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
            given |= OPT_ERRORS;
        else if (opt == 'f')
            given |= OPT_FIX;
        else if (opt == 'F')
            given |= OPT_FULL;
        else if (opt == 'K')
            given |= OPT_KEYS;
        else if (opt == 'j')
            talasctl_json = 1;
        else if (opt == 'c')
            file = optarg;
        else if (opt == 't' && parse_ttl(optarg, &so.ttl_s) == 0)
            given |= OPT_SIGN;
        else if (opt == 'k' && parse_kind(optarg, &so.kind) == 0)
            given |= OPT_SIGN;
        else if (opt == 'u') {
            so.user = optarg;
            given |= OPT_SIGN;
        } else if (opt == 'l' && (strcmp(optarg, "info") == 0 || strcmp(optarg, "warning") == 0 ||
                                  strcmp(optarg, "error") == 0)) {
            level = strcmp(optarg, "info") == 0      ? "Info"
                    : strcmp(optarg, "warning") == 0 ? "Warning"
                                                     : "Error";
            given |= OPT_LEVEL;
        } else {
            if (opt == 't')
                fprintf(stderr, "talasctl: --ttl takes a number of seconds, not \"%s\"\n", optarg);
            else if (opt == 'k')
                fprintf(stderr, "talasctl: --kind is stream, preview or hls, not \"%s\"\n", optarg);
            else if (opt == 'l')
                fprintf(stderr, "talasctl: --level is info, warning or error, not \"%s\"\n", optarg);
            usage(stderr);
            free(args);
            return TALASCTL_USAGE;
        }
    }
    if (nargs < command->min_args || nargs > command->max_args || (given & ~command->opts) != 0 ||
        (strcmp(cmd, "ws") == 0 && strcmp(args[0], "stats") != 0)) {
        usage(stderr);
        free(args);
        return TALASCTL_USAGE;
    }
    if (strcmp(cmd, "check-config") == 0 && (given & OPT_KEYS)) {
        talas_config_schema_print(stdout);
        free(args);
        return TALASCTL_OK;
    }
    if (talas_config_load(file, &conf, &error) != 0) {
        fprintf(stderr, "%s\n", error);
        if (strcmp(cmd, "check-config") == 0 && talasctl_json)
            printf("{\"ok\":false}\n");
        free(error);
        free(args);
        return TALASCTL_FAILURE;
    }
    /* libav and the scanner log through the error log: keep it on stderr */
    talas_log_set_level(TALAS_LOG_WARN);
    if (strcmp(cmd, "scan") == 0)
        rc = cmd_scan(conf, (given & OPT_FULL) != 0);
    else if (strcmp(cmd, "tracks") == 0)
        rc = cmd_tracks(conf, args, nargs, (given & OPT_ERRORS) != 0);
    else if (strcmp(cmd, "status") == 0)
        rc = cmd_status(conf);
    else if (strcmp(cmd, "cache") == 0)
        rc = cmd_cache(conf, args, nargs, (given & OPT_FIX) != 0);
    else if (strcmp(cmd, "sign") == 0)
        rc = cmd_sign(conf, args[0], &so);
    else if (strcmp(cmd, "sessions") == 0)
        rc = cmd_sessions(conf);
    else if (strcmp(cmd, "ws") == 0)
        rc = talasctl_cmd_ws_stats(conf);
    else if (strcmp(cmd, "broadcast") == 0)
        rc = talasctl_cmd_broadcast(conf, args[0], level != NULL ? level : "Info");
    else if (strcmp(cmd, "reload") == 0)
        rc = talasctl_cmd_reload(conf);
    else if (strcmp(cmd, "stop") == 0)
        rc = talasctl_cmd_stop(conf);
    else
        rc = cmd_check_config(conf);
    talas_config_free(conf);
    free(args);
    return rc;
}
