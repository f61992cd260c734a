/*
 * analysis.h - the scan's second pass: every playable track whose loudness
 * or tempo is still unknown (new, changed since, or analysed under other
 * analysis.* settings) is decoded and measured (scan/measure.c), and the
 * results are stored in its catalog record.
 *
 * Runs in the scanner, under the scan lock, after the walk: the catalog
 * already lists every track while this pass works through them.
 */
#ifndef TALAS_ANALYSIS_H
#define TALAS_ANALYSIS_H

#include "core/config.h"
#include "store/storage.h"

struct talas_analysis_progress {
    size_t to_analyse; /* tracks this pass measures */
    size_t analysed;   /* of them, done (measured or failed) */
    size_t failed;     /* of them, that could not be analysed */
};

/* Called after each track and once when the list is known. */
typedef void (*talas_analysis_progress_fn)(const struct talas_analysis_progress *p, void *arg);

/*
 * Measures what CONF's analysis.* keys ask for in every track of ST that
 * lacks it. No transaction is open while a file is decoded; results go in
 * short write transactions, and a record whose file changed meanwhile is
 * left for the next scan. A file that cannot be analysed is logged (info)
 * and marked, and not tried again until it changes. Returns 0, or -1 with
 * a malloc'd message in *error_r for a storage failure.
 */
int talas_analysis_run(const struct talas_config *conf, struct talas_storage *st,
                       talas_analysis_progress_fn fn, void *arg, char **error_r);

#endif
