/*
 * scan.h - walks the library folders and brings the catalog up to date.
 *
 * Recursive, following symlinks only when they resolve inside a library
 * folder (and never into a loop). Incremental: a file whose size and mtime
 * match its record is not probed again; records of files that disappeared
 * are removed. Files whose name ends in one of library.extensions are
 * candidates; one that fails to probe is recorded with its error. Then
 * the tracks whose loudness or tempo is not known yet are measured
 * (scan/analysis.h); the scan runs until that is done.
 *
 * Writes go in short transactions (a batch of files each), so readers and
 * other writers are never held up for long. Only one scan runs at a time
 * per storage: a lock file in the storage directory serialises them.
 */
#ifndef TALAS_SCAN_H
#define TALAS_SCAN_H

#include <stddef.h>

#include "store/catalog.h"
#include "core/config.h"
#include "store/storage.h"

struct talas_scan_progress {
    size_t dirs;      /* directories walked */
    size_t files;     /* candidate files seen */
    size_t probed;    /* files probed (new or changed) */
    size_t unchanged; /* files skipped as unchanged */
    size_t added, updated, removed;
    size_t errors;           /* candidates that failed to probe */
    const char *current;     /* file being looked at, or NULL */
    /* the analysis pass after the walk (scan/analysis.h) */
    int analysing;           /* 1 while it runs */
    size_t to_analyse;       /* tracks it measures */
    size_t analysed;         /* of them, done */
    size_t analysis_errors;  /* of them, that could not be analysed */
};

/* Called after each candidate file, after each batch of the analysis
 * (analysing 1), and once at the end (current NULL, analysing 0). */
typedef void (*talas_scan_progress_fn)(const struct talas_scan_progress *p, void *arg);

/*
 * Scans the library folders of CONF into ST. WAIT: when another scan holds
 * the lock, wait for it (1) or fail at once (0). Returns 0 and the final
 * figures in *result_r (may be NULL), or -1 with a malloc'd message in
 * *error_r (a library folder missing is logged and skipped, not an error).
 */
int talas_scan_run(const struct talas_config *conf, struct talas_storage *st, int wait,
                   talas_scan_progress_fn progress, void *arg, struct talas_scan_progress *result_r,
                   char **error_r);

/* The same, but every file is probed again, changed or not (talasctl scan
 * --full: after a libav upgrade, or to repair tags read wrong). */
int talas_scan_run_full(const struct talas_config *conf, struct talas_storage *st, int wait,
                        talas_scan_progress_fn progress, void *arg, struct talas_scan_progress *result_r,
                        char **error_r);

#endif
