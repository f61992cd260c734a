/*
 * fuzz_track_id.c - track ids as clients send them (talas_track_id_valid,
 * the check of talas_http_track_request and of every /{route}/{id}) and
 * catalog records (talas_track_decode, which must read a damaged record as
 * an error, never out of bounds).
 *
 * Checks: a valid id is exactly 16 base64url characters; a record that
 * decodes has its strings inside the record, and encodes back to a record
 * that decodes to the same track.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/catalog.h"
#include "core/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int inside(const char *s, const void *data, size_t size)
{
    return s >= (const char *)data && s + strlen(s) < (const char *)data + size;
}

#define SAME_STR(f) (strcmp(a->f, b->f) == 0)
static int same(const struct talas_track *a, const struct talas_track *b)
{
    return strcmp(a->id, b->id) == 0 && SAME_STR(path) && SAME_STR(title) && SAME_STR(artist) &&
           SAME_STR(album) && SAME_STR(codec) && SAME_STR(container) && SAME_STR(mime) &&
           ((a->error == NULL && b->error == NULL) ||
            (a->error != NULL && b->error != NULL && SAME_STR(error))) &&
           a->duration_ms == b->duration_ms && a->sample_rate == b->sample_rate &&
           a->channels == b->channels && a->bit_rate == b->bit_rate && a->size == b->size &&
           a->mtime_ns == b->mtime_ns && a->scanned_at == b->scanned_at;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* exactly SIZE bytes, so that ASan sees any read past the end */
    char *copy = memcpy(malloc(size + 1), data, size);
    struct talas_track t, t2;
    struct talas_buf buf = {0};

    if (talas_track_id_valid(copy, size)) {
        if (size != TALAS_TRACK_ID_LEN ||
            strspn(copy, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") < size)
            abort();
    }
    if (talas_track_decode(copy, size, &t) == 0) {
        if (!inside(t.path, copy, size) || !inside(t.title, copy, size) || !inside(t.artist, copy, size) ||
            !inside(t.album, copy, size) || !inside(t.codec, copy, size) ||
            !inside(t.container, copy, size) || !inside(t.mime, copy, size) ||
            (t.error != NULL && !inside(t.error, copy, size)) || memchr(t.id, '\0', sizeof(t.id)) == NULL)
            abort();
        talas_track_encode(&t, &buf);
        if (talas_track_decode(buf.data, buf.len, &t2) != 0 || !same(&t, &t2))
            abort();
        talas_buf_free(&buf);
    }
    free(copy);
    return 0;
}
