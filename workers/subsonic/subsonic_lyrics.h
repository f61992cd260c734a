/*
 * subsonic_lyrics.h - the Subsonic API's lyrics calls (subsonic_lyrics.c):
 * getLyricsBySongId (OpenSubsonic extension songLyrics) and the classic
 * getLyrics, over the lyrics records the scanner stores (store/lyrics.h).
 *
 * http_subsonic.c hands an authenticated request for a method it does not
 * answer itself to this module as a struct talas_subsonic_call
 * (subsonic_user.h).
 */
#ifndef TALAS_SUBSONIC_LYRICS_H
#define TALAS_SUBSONIC_LYRICS_H

#include "subsonic/subsonic_user.h"

/* The method NAME of this module, or NULL. It answers at once (LMDB reads
 * on the loop, as the rest of /rest/). */
talas_subsonic_call_fn *talas_subsonic_lyrics_method(const char *name);

#endif
