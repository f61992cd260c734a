/*
 * lrc.h - a pure parser of LRC lyrics: the text of a sidecar .lrc file or
 * of an embedded lyrics tag, into a struct talas_lyrics (store/lyrics.h).
 *
 * Understood: time tags [mm:ss], [mm:ss.x], [mm:ss.xx], [mm:ss.xxx] (any
 * number of them before a line's text: the line is sung at each time),
 * [offset:+/-ms], [ar:], [ti:], [la:] / [lang:]; other [key:value]
 * metadata lines are ignored. Text where no line has a time tag is
 * unsynced lyrics (its lines as they are, blank lines at either end left
 * out). Line ends LF, CRLF or CR; a UTF-8 byte order mark is skipped.
 * Invalid UTF-8 is read as ISO-8859-1 line by line (as legacy tags are,
 * core/util.h talas_utf8_sanitize), so every value is valid UTF-8.
 *
 * Bounds: input over TALAS_LRC_MAX_BYTES, more than TALAS_LRC_MAX_LINES
 * lines or TALAS_LRC_MAX_TEXT bytes of text out (time tags repeat a line),
 * or a NUL byte (a binary file) make the parse fail: the caller
 * drops the lyrics. A line's text is cut to TALAS_LRC_LINE_MAX bytes at a
 * character boundary. No I/O, no logging.
 */
#ifndef TALAS_LRC_H
#define TALAS_LRC_H

#include <stddef.h>

#include "store/lyrics.h"

#define TALAS_LRC_MAX_BYTES (512 * 1024)
#define TALAS_LRC_MAX_LINES 10000
#define TALAS_LRC_LINE_MAX 1024
/* the bytes of all lines out: time tags repeat a line's text */
#define TALAS_LRC_MAX_TEXT (1024 * 1024)

/*
 * Parses the LEN bytes at DATA into *L_R (zeroed first). Returns 0 (L_R
 * owns what it holds: free with talas_lyrics_free, even when it has no
 * line), or -1 with *ERROR_R a static string saying why (nothing to free).
 */
int talas_lrc_parse(const char *data, size_t len, struct talas_lyrics *l_r, const char **error_r);

#endif
