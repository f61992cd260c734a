/*
 * analysis.c - the scan's analysis pass (analysis.h): which tracks need
 * measuring, the measuring one file at a time with no transaction open,
 * and the results written back in short write transactions.
 *
 * Entry point: talas_analysis_run().
 *
 * The list is taken in one read transaction: each playable record whose
 * analysis lacks what analysis.loudness / analysis.tempo ask for (tempo
 * only below analysis.tempo_max_duration). A result is stored only while
 * the record still has the size and mtime of the file measured
 * (talas_catalog_analysis_put). What was measured before is kept: a track
 * analysed for loudness that now also wants its tempo keeps its loudness.
 *
 * Logs: the start and end of the pass (info), files that cannot be
 * analysed, with the reason (info).
 */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"
#include "scan/analysis.h"
#include "scan/measure.h"
#include "store/catalog.h"

#define BATCH_TRACKS 16
#define BATCH_MS 500

struct job {
    char id[TALAS_TRACK_ID_LEN + 1];
    char *path;
    uint64_t size;
    int64_t mtime_ns;
    uint64_t duration_ms;
    uint32_t want;
    struct talas_track_analysis result; /* starts as the stored one */
    char *error;                        /* owned; result.error points at it */
};

struct pass {
    const struct talas_config *conf;
    struct talas_storage *st;
    struct job *jobs;
    size_t count, cap;
};

static int collect(const struct talas_track *t, void *arg)
{
    struct pass *ps = arg;
    const struct talas_config *conf = ps->conf;
    uint32_t want =
        talas_track_analysis_wanted(&t->analysis, t->error == NULL, t->duration_ms, conf->analysis_loudness,
                                    conf->analysis_tempo, conf->analysis_tempo_max_duration_ms);
    struct job *j;

    if (want == 0)
        return 0;
    if (ps->count == ps->cap) {
        ps->cap = ps->cap != 0 ? 2 * ps->cap : 64;
        ps->jobs = xrealloc(ps->jobs, ps->cap * sizeof(*ps->jobs));
    }
    j = &ps->jobs[ps->count++];
    memset(j, 0, sizeof(*j));
    memcpy(j->id, t->id, sizeof(j->id));
    j->path = xstrdup(t->path);
    j->size = t->size;
    j->mtime_ns = t->mtime_ns;
    j->duration_ms = t->duration_ms;
    j->want = want;
    j->result = t->analysis;
    j->result.error = NULL; /* never FAILED here: those are not wanted */
    return 0;
}

static void measure_one(struct job *j)
{
    struct talas_track_analysis m;
    char *error = NULL;

    if (talas_measure_file(j->path, j->duration_ms, j->want, &m, &error) == -1) {
        log_info("%s: not analysed: %s", j->path, error);
        memset(&j->result, 0, sizeof(j->result));
        j->result.flags = TALAS_ANALYSIS_FAILED;
        j->result.error = j->error = error;
        return;
    }
    if (m.flags & TALAS_ANALYSIS_LOUDNESS) {
        j->result.integrated_lufs = m.integrated_lufs;
        j->result.range_lu = m.range_lu;
        j->result.true_peak_dbtp = m.true_peak_dbtp;
        j->result.sample_peak_dbfs = m.sample_peak_dbfs;
        j->result.sample_peak = m.sample_peak;
    }
    if (m.flags & TALAS_ANALYSIS_TEMPO) {
        j->result.bpm = m.bpm;
        j->result.bpm_confidence = m.bpm_confidence;
    }
    j->result.flags |= m.flags;
}

static int store(struct pass *ps, size_t from, size_t to, char **error_r)
{
    MDB_txn *txn;
    int rc;

    if (from == to)
        return 0;
    if ((rc = talas_storage_write_begin(ps->st, &txn)) != 0)
        goto fail;
    for (size_t i = from; i < to; i++) {
        struct job *j = &ps->jobs[i];
        rc = talas_catalog_analysis_put(ps->st, txn, j->id, j->size, j->mtime_ns, &j->result);
        /* gone or changed since the list was taken: the next scan sees it */
        if (rc == MDB_NOTFOUND || rc == -1)
            continue;
        if (rc != 0) {
            mdb_txn_abort(txn);
            goto fail;
        }
    }
    if ((rc = mdb_txn_commit(txn)) != 0)
        goto fail;
    return 0;

fail:
    *error_r = xasprintf("%s: storing analysis results failed: %s%s", talas_storage_path(ps->st),
                         mdb_strerror(rc), rc == MDB_MAP_FULL ? " (raise storage.map_size)" : "");
    return -1;
}

int talas_analysis_run(const struct talas_config *conf, struct talas_storage *st,
                       talas_analysis_progress_fn fn, void *arg, char **error_r)
{
    struct talas_analysis_progress p = {0};
    struct pass ps = {conf, st, NULL, 0, 0};
    uint64_t started = talas_now_ms(), batch_started;
    size_t batch_from = 0;
    MDB_txn *txn;
    int rc;

    if (!conf->analysis_loudness && !conf->analysis_tempo)
        return 0;
    if ((rc = talas_storage_read_begin(st, &txn)) != 0) {
        *error_r = xasprintf("%s: mdb_txn_begin() failed: %s", talas_storage_path(st), mdb_strerror(rc));
        return -1;
    }
    rc = talas_catalog_foreach(st, txn, collect, &ps, NULL);
    mdb_txn_abort(txn);
    if (rc != 0) {
        *error_r = xasprintf("%s: reading the catalog failed: %s", talas_storage_path(st), mdb_strerror(rc));
        goto out;
    }
    p.to_analyse = ps.count;
    if (fn != NULL)
        fn(&p, arg);
    if (ps.count == 0)
        goto out;
    log_info("analysis started: %zu track(s)", ps.count);

    batch_started = talas_now_ms();
    for (size_t i = 0; i < ps.count; i++) {
        measure_one(&ps.jobs[i]);
        if (ps.jobs[i].result.flags & TALAS_ANALYSIS_FAILED)
            p.failed++;
        if (i + 1 - batch_from == BATCH_TRACKS || talas_now_ms() - batch_started >= BATCH_MS ||
            i + 1 == ps.count) {
            if ((rc = store(&ps, batch_from, i + 1, error_r)) != 0)
                goto out;
            /* counted once stored: the figures never run ahead of the catalog */
            p.analysed = i + 1;
            batch_from = i + 1;
            batch_started = talas_now_ms();
            if (fn != NULL)
                fn(&p, arg);
        }
    }
    log_info("analysis finished in %llu ms: %zu track(s), %zu not analysed",
             (unsigned long long)(talas_now_ms() - started), p.analysed, p.failed);

out:
    for (size_t i = 0; i < ps.count; i++) {
        free(ps.jobs[i].path);
        free(ps.jobs[i].error);
    }
    free(ps.jobs);
    return rc == 0 ? 0 : -1;
}
