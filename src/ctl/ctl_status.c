/*
 * ctl_status.c - talasctl status: the master's own figures from its control
 * socket (ctl_master.c), then what the configuration and the storage say:
 * listen addresses, catalog and scan state, LMDB usage, cache totals.
 *
 * Entry point (talasctl.h): talasctl_cmd_status. Text or one JSON
 * document on stdout; exit 3 (after printing the rest) when the master
 * does not run.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/json.h"
#include "ctl/talasctl.h"
#include "store/cache.h"
#include "store/catalog.h"
#include "store/storage.h"

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
int talasctl_cmd_status(const struct talas_config *conf)
{
    struct talas_storage *st = talasctl_open_storage(conf);
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
        talas_json_key(&j, "to_analyse");
        talas_json_uint(&j, have_scan ? scan.to_analyse : 0);
        talas_json_key(&j, "analysed");
        talas_json_uint(&j, have_scan ? scan.analysed : 0);
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
            /* the scan's analysis pass (loudness, tempo): this run's figures */
            printf("analysis: %" PRIu64 " of %" PRIu64 " tracks analysed\n", scan.analysed, scan.to_analyse);
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
