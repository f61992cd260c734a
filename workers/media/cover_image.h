/*
 * cover_image.h - a cover picture's bytes, and the picture resized to a
 * JPEG. Any thread (the cover jobs run them on the worker's pool); nothing
 * here logs: errors come back as malloc'd messages.
 */
#ifndef TALAS_COVER_IMAGE_H
#define TALAS_COVER_IMAGE_H

#include <stdint.h>

#include "core/util.h"
#include "store/cache.h"

/* The largest size (longest side, pixels) a resize may ask for, and the
 * largest picture read (bytes) or decoded (pixels). */
#define TALAS_COVER_SIZE_MAX 2048
#define TALAS_COVER_BYTES_MAX (32u << 20)
#define TALAS_COVER_PIXELS_MAX (6000u * 6000u) /* ~140 MiB of RGBA at most */

/*
 * Reads the picture of a track: the attached picture of the audio file at
 * PATH when EMBEDDED, else the file named FILE beside it (never through a
 * symbolic link, a regular file only). Appends its bytes to OUT, and the
 * identity of its source (the audio file or the image file) goes to
 * *IDENTITY_R. Returns 0, or -1 with *ERROR_R (malloc'd; errno ENOENT for
 * a source that is gone or has no picture, else EINVAL).
 */
int talas_cover_image_read(const char *path, int embedded, const char *file, struct talas_buf *out,
                           struct talas_cache_source *identity_r, char **error_r);

/* The Content-Type of picture DATA (LEN bytes) from its first bytes:
 * "image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp", else
 * "application/octet-stream". */
const char *talas_cover_image_type(const void *data, size_t len);

/*
 * Decodes picture DATA (LEN bytes; its first frame), scales it so that its
 * longest side is SIZE pixels (1..TALAS_COVER_SIZE_MAX; the other side
 * keeps the aspect ratio, at least 1) and appends it to OUT as a baseline
 * JPEG. Returns 0, or -1 with *ERROR_R (malloc'd) for a picture that does
 * not decode.
 */
int talas_cover_image_resize(const void *data, size_t len, uint32_t size, struct talas_buf *out,
                             char **error_r);

#endif
