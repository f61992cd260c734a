/*
 * group_versions.h - the scanner's pass that groups the catalog's tracks
 * into songs (store/song_versions.h) after each walk.
 */
#ifndef TALAS_GROUP_VERSIONS_H
#define TALAS_GROUP_VERSIONS_H

#include "store/storage.h"

/*
 * Recomputes every song: the versions the file names make in each folder
 * (store/version_name.h), then the explicit links (which win), and
 * rewrites the records that changed in short write transactions. A track
 * that joins a song it was not in is logged as a version event (workers
 * publish them as TrackVersionAdded), except the first version of a song
 * that is new. Stores the number of songs in *songs_r and of events in
 * *added_r. Returns 0, or -1 with a malloc'd message in *error_r.
 */
int talas_group_versions(struct talas_storage *st, size_t *songs_r, size_t *added_r, char **error_r);

#endif
