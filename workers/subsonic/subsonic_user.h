/*
 * subsonic_user.h - the Subsonic API's calls that read and write a user's
 * own state (subsonic_user.c): star, unstar, setRating, getStarred,
 * getStarred2; each backed by the state interface (workers/state/), so
 * that every worker and, in cluster mode, every node sees the same.
 *
 * http_subsonic.c hands these methods to this module as a struct
 * talas_subsonic_call (subsonic_call.h).
 */
#ifndef TALAS_SUBSONIC_USER_H
#define TALAS_SUBSONIC_USER_H

#include "subsonic/subsonic_call.h"

/* The method NAME of this module, or NULL. The method answers C's request,
 * now or later on the loop (when the request goes first, it stops). */
talas_subsonic_call_fn *talas_subsonic_user_method(const char *name);

#endif
