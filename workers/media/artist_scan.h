/*
 * artist_scan.h - an artist's tracks, read from the catalog on the
 * worker's pool (the walk reads every record: never on the loop).
 *
 * Used by the continuous HLS of an artist (http_hls_queue.c) and by a
 * listening room's RoomQueueAdd {artist} (ws_rooms.c).
 */
#ifndef TALAS_ARTIST_SCAN_H
#define TALAS_ARTIST_SCAN_H

#include <stddef.h>
#include <stdint.h>

#include "store/catalog.h"
#include "worker/worker_pool.h"

/* Also the tracks whose album artist (not only artist) is the name. */
#define TALAS_ARTIST_SCAN_ALBUM_ARTIST 1u

struct talas_artist_track {
    char id[TALAS_TRACK_ID_LEN + 1];
    char *album, *title, *artist, *path; /* owned by the scan */
    uint32_t disc, number;
    uint64_t duration_ms;
};

struct talas_artist_scan_result {
    int cancelled; /* the pool stopped before the walk ran: nothing else is set */
    int rc;        /* 0, an LMDB error code, or -1 (a damaged record) */
    int too_many;  /* more than the scan's MAX tracks: TRACKS is incomplete */
    /* playable tracks, by album, disc, track number, then path; owned by
     * the scan, valid during the callback only */
    struct talas_artist_track *tracks;
    size_t count;
};

/* Runs on the loop thread once the walk is over. */
typedef void (*talas_artist_scan_done_fn)(void *arg, const struct talas_artist_scan_result *res);

struct talas_artist_scan; /* opaque; owned by itself until DONE returns */

/*
 * Walks the catalog of ST on POOL for the playable tracks whose artist tag
 * is exactly ARTIST (FLAGS: TALAS_ARTIST_SCAN_ALBUM_ARTIST: or the album
 * artist), at most MAX of them, then calls DONE(ARG) on the loop. Never
 * fails; the scan is freed once DONE returns.
 */
struct talas_artist_scan *talas_artist_scan_start(struct talas_pool *pool, struct talas_storage *st,
                                                  const char *artist, unsigned flags, size_t max,
                                                  talas_artist_scan_done_fn done, void *arg);

/* The caller goes away first: DONE will not be called; the scan frees
 * itself when its walk returns. Call from the loop thread, before DONE. */
void talas_artist_scan_detach(struct talas_artist_scan *s);

#endif
