/*
 * probe.h - reads one file's audio properties and tags with libavformat.
 *
 * Runs in the scanner (a child of the master, or talasctl), never on a
 * worker's event loop: probing reads the file and can take milliseconds.
 */
#ifndef TALAS_PROBE_H
#define TALAS_PROBE_H

#include "store/catalog.h"

/* What talas_probe_file fills in; the strings are owned by the result. */
struct talas_probe_result {
    struct talas_track track; /* string fields point at the owned copies below */
    char *owned[10];
};

/*
 * Probes the file at absolute PATH (whose stat gave SIZE and MTIME_NS), the
 * track ID (store/catalog.h: the scanner makes it), and fills R: id, path,
 * tags (UTF-8, Latin-1 tags converted, each cut to TALAS_TAG_MAX bytes at a
 * character boundary), audio
 * properties, container, mime. Returns 0 for a playable audio file, or -1
 * with R->track.error saying why ("no audio stream", "Invalid data found
 * when processing input", "empty file", ...); the other fields are still
 * filled where known (title from the file name). Never crashes on a broken
 * file. Free R with talas_probe_result_free.
 */
int talas_probe_file(const char *id, const char *path, uint64_t size, int64_t mtime_ns, struct talas_probe_result *r);
void talas_probe_result_free(struct talas_probe_result *r);

#endif
