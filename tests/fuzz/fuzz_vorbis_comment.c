/*
 * fuzz_vorbis_comment.c - the Vorbis comment reader of oversized FLAC
 * comment blocks (src/scan/media_input.c).
 *
 * Input: a comment block as it sits in a FLAC file (vendor length and
 * string, count, length-prefixed "KEY=value" entries, little endian),
 * parsed from an exactly sized copy so that a read past its end is caught.
 * Checks what media_input.h promises: every field is at most TALAS_TAG_MAX
 * bytes, a field cut from valid UTF-8 is still valid UTF-8 (no sequence
 * split), and talas_media_tag_cut never grows a string.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "scan/media_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const char *field)
{
    size_t len;

    if (field == NULL)
        return;
    len = strlen(field);
    if (len > TALAS_TAG_MAX)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size > 0 ? size : 1);
    struct talas_media_tags tags = {0};
    size_t cut;

    memcpy(copy, data, size);
    talas_media_tags_parse(copy, size, &tags);
    check(tags.title);
    check(tags.artist);
    check(tags.album_artist);
    check(tags.album);
    talas_media_tags_free(&tags);

    cut = talas_media_tag_cut((const char *)copy, size);
    if (cut > size || cut > TALAS_TAG_MAX || (size <= TALAS_TAG_MAX && cut != size))
        abort();
    if (talas_utf8_valid((const char *)copy, size) && !talas_utf8_valid((const char *)copy, cut))
        abort();
    free(copy);
    return 0;
}
