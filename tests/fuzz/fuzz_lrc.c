/*
 * fuzz_lrc.c - the LRC lyrics parser (src/scan/lrc.c) and the lyrics
 * record it feeds (src/store/lyrics.c).
 *
 * Input: the bytes of a sidecar .lrc or of an embedded lyrics tag, parsed
 * from an exactly sized copy so that a read past its end is caught.
 * Checks what lrc.h and lyrics.h promise: a parse fails only with an
 * error string; every value is valid UTF-8 with no NUL, CR or LF and at
 * most TALAS_LRC_LINE_MAX bytes; at most TALAS_LRC_MAX_LINES lines;
 * synced lines in order of start; and the record encoded from the result
 * decodes and iterates back to the same lines.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "scan/lrc.h"
#include "store/lyrics.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_value(const char *v, size_t max)
{
    size_t len;

    if (v == NULL)
        abort();
    len = strlen(v);
    if (len > max || !talas_utf8_valid(v, len) || strpbrk(v, "\r\n") != NULL)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size > 0 ? size : 1);
    struct talas_lyrics_sidecar sc = {1, size, 42};
    struct talas_lyrics_record rec;
    struct talas_lyrics_set set;
    struct talas_buf buf = {0};
    struct talas_lyrics l;
    const char *error = NULL, *value;
    int64_t start;

    memcpy(copy, data, size);
    if (talas_lrc_parse(copy, size, &l, &error) != 0) {
        if (error == NULL)
            abort();
        free(copy);
        return 0;
    }
    if (l.count > TALAS_LRC_MAX_LINES)
        abort();
    check_value(l.lang, TALAS_LRC_LINE_MAX);
    check_value(l.artist, TALAS_LRC_LINE_MAX);
    check_value(l.title, TALAS_LRC_LINE_MAX);
    for (size_t i = 0; i < l.count; i++) {
        check_value(l.lines[i].value, TALAS_LRC_LINE_MAX);
        if (l.synced ? (l.lines[i].start_ms < 0 || (i > 0 && l.lines[i].start_ms < l.lines[i - 1].start_ms))
                     : l.lines[i].start_ms != 0)
            abort();
    }

    talas_lyrics_encode(&sc, TALAS_LYRICS_SIDECAR, &l, 1, &buf);
    if (talas_lyrics_decode(buf.data, buf.len, &rec) != 0 || talas_lyrics_next_set(&rec, &set) != 0 ||
        set.count != l.count || set.synced != l.synced || set.offset_ms != l.offset_ms)
        abort();
    for (size_t i = 0; i < l.count; i++)
        if (talas_lyrics_next_line(&set, &start, &value) != 0 || start != l.lines[i].start_ms ||
            strcmp(value, l.lines[i].value) != 0)
            abort();
    /* the record cut short is refused, never overread */
    if (buf.len > 0 && talas_lyrics_decode(buf.data, buf.len - 1, &rec) == 0)
        abort();
    talas_buf_free(&buf);
    talas_lyrics_free(&l);
    free(copy);
    return 0;
}
