/*
 * ctl_scan.c - talasctl scan [--full]: runs a library scan in this process
 * (scan.h), serialised with the master's scanner by the scan lock, with a
 * progress bar on a terminal or progress lines otherwise, on stderr.
 *
 * The analysis pass that follows the walk (loudness, tempo) reports "N of
 * M tracks analysed" the same way.
 *
 * Entry point (talasctl.h): talasctl_cmd_scan. Prints the totals on
 * stdout (one JSON document with --json); scan errors go to stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "ctl/talasctl.h"
#include "scan/scan.h"
#include "store/catalog.h"
#include "store/storage.h"

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
    if (p->analysing) {
        /* the second pass: decoding every track to measure, in batches */
        if (!ps->tty)
            fprintf(stderr, "analysis: %zu of %zu tracks analysed, %zu failed\n", p->analysed, p->to_analyse,
                    p->analysis_errors);
        else
            fprintf(stderr, "\r\033[Kanalysing: %zu of %zu tracks, %zu failed", p->analysed, p->to_analyse,
                    p->analysis_errors);
        return;
    }
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

int talasctl_cmd_scan(const struct talas_config *conf, int full)
{
    struct talas_scan_progress result;
    struct talas_scan_status prev;
    struct progress_state ps = {0};
    struct talas_storage *st = talasctl_open_storage(conf);
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
            "\"probed\":%zu,\"analysed\":%zu,\"analysis_errors\":%zu,\"seconds\":%.3f}\n",
            result.files, result.added, result.updated, result.removed, result.unchanged, result.errors,
            result.probed, result.analysed, result.analysis_errors, secs);
    else
        printf(
            "scanned %zu files in %.1f s: %zu added, %zu updated, %zu removed, %zu unchanged, %zu errors; "
            "%zu analysed, %zu not analysable\n",
            result.files, secs, result.added, result.updated, result.removed, result.unchanged,
            result.errors, result.analysed, result.analysis_errors);
    talas_storage_close(st);
    return TALASCTL_OK;
}
