/*
 * version_events.h - TrackVersionAdded on /api/ws for the versions the
 * library scanner adds to songs.
 *
 * The scanner runs in the master's process tree and never publishes; it
 * leaves each version it adds in the store (store/song_versions.h,
 * TALAS_DBI_VERSION_EVENTS). Worker slot 0 reads what is new once a
 * second (one short read transaction) and publishes it to every worker.
 */
#ifndef TALAS_VERSION_EVENTS_H
#define TALAS_VERSION_EVENTS_H

#include "worker/worker_ctx.h"

/* Starts the watch on CTX's loop when CTX is slot 0; events already in the
 * store are not published. After talas_ws_hub_init. */
void talas_version_events_init(const struct talas_worker_ctx *ctx);

#endif
