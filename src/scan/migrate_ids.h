/*
 * migrate_ids.h - the library folders as the scanner resolved them, which
 * folder a file belongs to, and the one-time move of a catalog to
 * library-relative track ids (store/catalog.h).
 */
#ifndef TALAS_MIGRATE_IDS_H
#define TALAS_MIGRATE_IDS_H

#include <stddef.h>

#include "store/storage.h"

/* One entry of library.paths, resolved: the scanner owns the strings. */
struct talas_scan_library {
    const char *configured; /* library.paths[].path */
    char *root;             /* its realpath() when it is a directory now, else NULL */
    const char *name;       /* library.paths[].name: half of every id under it */
};

/* The index in LIBS (N entries) of the deepest existing folder that holds
 * the resolved absolute PATH, or -1. */
int talas_scan_library_of(const struct talas_scan_library *libs, size_t n, const char *path);
/* PATH relative to ROOT (PATH is under it): a pointer into PATH. */
const char *talas_scan_relative(const char *root, const char *path);

/*
 * Moves the track records of ST still keyed by ids of the first format to
 * their library-relative ids, with what hangs on them, leaving aliases
 * (see migrate_ids.c), and marks the store migrated; once: on a migrated
 * store it costs one read. In short write transactions; for a writer only
 * (the scanner). Returns 0, or -1 with a malloc'd message in *error_r
 * (what was moved stays moved; the next run goes on).
 */
int talas_scan_migrate_ids(struct talas_storage *st, const struct talas_scan_library *libs, size_t n,
                           char **error_r);

#endif
