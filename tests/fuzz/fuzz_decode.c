/*
 * fuzz_decode.c - the demux/decode path on mutated audio files
 * (workers/transcoder.c, libavformat and libavcodec under it), as a
 * transcode request drives it: talas_source_measure, talas_source_decodes,
 * talas_layout_compute, the stream header, then talas_transcode_chunk for
 * chunk 0 and the last chunk.
 *
 * The input is written to a memfd and opened as /proc/self/fd/N. The
 * profile is "low" (MP3 128k, 22.05 kHz) for inputs of even length and
 * "mobile" (AAC 96k, 22.05 kHz) for odd ones: the smallest of each codec.
 * Seeds: tiny MP3, FLAC, WAV, Ogg/Vorbis, Opus and M4A files (< 8 KB).
 * Checks: an MP3 chunk has exactly the size the layout announced.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <libavutil/log.h>

#include "transcoder.h"
#include "util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    av_log_set_level(AV_LOG_QUIET);
    return 0;
}

static void chunk(const char *path, const struct talas_profile *p, const struct talas_layout *l, uint32_t c)
{
    struct talas_buf out = {0};
    uint32_t *sizes = NULL;
    char *error = NULL;
    int rc = talas_transcode_chunk(path, p, l, c, NULL, &out, &sizes, &error);

    if (rc == 0 || rc == TALAS_TRANSCODE_INCOMPLETE) {
        if (l->exact_size && out.len != talas_layout_chunk_size(l, c)) {
            fprintf(stderr, "fuzz_decode: chunk %u is %zu bytes, the layout says %llu\n", c, out.len,
                    (unsigned long long)talas_layout_chunk_size(l, c));
            abort();
        }
    } else if (rc != -1) {
        abort();
    }
    free(sizes);
    free(error);
    talas_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct talas_profile *p = talas_profile_builtin(size % 2 ? "mobile" : "low");
    struct talas_source_info info;
    struct talas_layout layout;
    struct talas_buf header = {0};
    char path[64], *error = NULL;
    int fd;

    if ((fd = memfd_create("track", MFD_CLOEXEC)) == -1)
        abort();
    if (size > 0 && write(fd, data, size) != (ssize_t)size)
        abort();
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);

    if (talas_source_measure(path, &info, &error) != 0)
        goto done;
    if (talas_source_decodes(path, &error) != 0)
        goto done;
    if (talas_layout_compute(p, &info, NULL, &layout, &error) != 0)
        goto done;
    if (talas_transcode_header(p, &layout, &header) != 0 || header.len != layout.header_size)
        abort();
    if (layout.chunks > 0) {
        chunk(path, p, &layout, 0);
        if (layout.chunks > 1)
            chunk(path, p, &layout, layout.chunks - 1);
    }

done:
    free(error);
    talas_buf_free(&header);
    close(fd);
    return 0;
}
