/*
 * state_versions.h - the explicit links of track versions (PUT
 * /api/tracks/{id}/version-of), behind the state interface.
 *
 * One backend: the node's LMDB store (store/song_versions.h), written in
 * one short write transaction that records the link and moves the track's
 * song records with it; the callback runs before the call returns. Songs
 * are computed by each node's scanner from its own library, so in cluster
 * mode a link is the node's own (set it on every node, or from the
 * backend through each).
 */
#ifndef TALAS_STATE_VERSIONS_H
#define TALAS_STATE_VERSIONS_H

#include "state/state_playlists.h"
#include "store/song_versions.h"
#include "worker/worker_ctx.h"

struct talas_state_version_result {
    enum talas_state_outcome outcome; /* OK, NOT_FOUND, REFUSED (reason), FULL, FAILED */
    const char *reason;
    const char *song;  /* OK: the song the track is a version of now */
    const char *label; /* OK: its version label ("v2", "final", "") */
};

typedef void talas_state_version_fn(void *data, const struct talas_state_version_result *r);

/* Makes TRACK a version of SONG (a song id), or of the song of TO_TRACK
 * (one formed around TO_TRACK when it has none): exactly one of SONG and
 * TO_TRACK is given. */
void talas_state_version_link(const struct talas_worker_ctx *ctx, const char *track, const char *song,
                              const char *to_track, talas_state_version_fn *cb, void *data);

#endif
