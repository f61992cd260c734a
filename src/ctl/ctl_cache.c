/*
 * ctl_cache.c - talasctl cache: stats (size, hit ratio, encoder counters),
 * purge (every transcode and waveform, or one track's) and verify [--fix]
 * (every record read, CRCs checked) of the transcode cache in the storage.
 *
 * Entry point (talasctl.h): talasctl_cmd_cache. Output on stdout (JSON for
 * stats and verify with --json); errors on stderr.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ctl/talasctl.h"
#include "store/cache.h"
#include "store/catalog.h"
#include "store/peaks.h"
#include "store/storage.h"

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
    struct talas_storage *st = talasctl_open_storage(conf);
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
    st = talasctl_open_storage(conf);
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
    struct talas_storage *st = talasctl_open_storage(conf);
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

int talasctl_cmd_cache(const struct talas_config *conf, char **args, int nargs, int fix)
{
    if (nargs >= 1 && strcmp(args[0], "stats") == 0 && nargs == 1 && !fix)
        return cmd_cache_stats(conf);
    if (nargs >= 1 && strcmp(args[0], "purge") == 0 && nargs <= 2 && !fix)
        return cmd_cache_purge(conf, nargs == 2 ? args[1] : NULL);
    if (nargs >= 1 && strcmp(args[0], "verify") == 0 && nargs == 1)
        return cmd_cache_verify(conf, fix);
    talasctl_usage(stderr, "cache");
    return 2;
}
