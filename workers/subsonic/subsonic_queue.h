/*
 * subsonic_queue.h - the Subsonic API's calls on what a user plays
 * (subsonic_queue.c): savePlayQueue, getPlayQueue and getNowPlaying, each
 * backed by the state interface (workers/state/), so that every worker
 * and, in cluster mode, every node sees the same queue.
 *
 * http_subsonic.c parses and authenticates a request, then hands a method
 * of this module a struct talas_subsonic_call (subsonic_user.h).
 */
#ifndef TALAS_SUBSONIC_QUEUE_H
#define TALAS_SUBSONIC_QUEUE_H

#include "subsonic/subsonic_user.h"

/* The method NAME of this module, or NULL. The method answers C's request,
 * now or later on the loop (when the request goes first, it stops). */
talas_subsonic_call_fn *talas_subsonic_queue_method(const char *name);

#endif
