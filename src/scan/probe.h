/*
 * probe.h - reads one file's audio properties and tags with libavformat.
 *
 * Runs in the scanner (a child of the master, or talasctl), never on a
 * worker's event loop: probing reads the file and can take milliseconds.
 */
#ifndef TALAS_PROBE_H
#define TALAS_PROBE_H

#include "store/catalog.h"
#include "store/lyrics.h"

/* What talas_probe_file fills in; the strings are owned by the result. */
struct talas_probe_result {
    struct talas_track track; /* string fields point at the owned copies below */
    char *owned[10];
    /* The values of the embedded lyrics tags (lyrics, lyrics-LANG as
     * libavformat names ID3 USLT frames, UNSYNCEDLYRICS), raw and owned,
     * each with the language its key names ("" when none); at most
     * TALAS_LYRICS_SETS_MAX, identical texts once. */
    char *lyrics[TALAS_LYRICS_SETS_MAX];
    char lyrics_lang[TALAS_LYRICS_SETS_MAX][8];
    size_t lyrics_count;
    /* The encoded lyrics record (store/lyrics.h) the scanner stores with
     * the track; len 0: none. Filled by the scanner, freed here. */
    struct talas_buf lyrics_record;
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
