/*
 * fuzz_decode.c - the demux/decode path on mutated audio files
 * (workers/media/transcoder.c, libavformat and libavcodec under it), as a
 * transcode request drives it: talas_source_measure, talas_source_decodes,
 * talas_layout_compute, the stream header, then talas_transcode_chunk for
 * chunk 0 and the last chunk.
 *
 * The input is written to one temporary file (in /dev/shm when it exists)
 * under its resolved path: the transcoder opens a track only by the path
 * the scanner recorded, never through a symbolic link. The
 * profile is "low" (MP3 128k, 22.05 kHz) for inputs of even length and
 * "mobile" (AAC 96k, 22.05 kHz) for odd ones: the smallest of each codec.
 * Seeds: tiny MP3, FLAC, WAV, Ogg/Vorbis, Opus and M4A files (< 8 KB).
 * Checks: an MP3 chunk has exactly the size the layout announced, and the
 * layout's byte map (offsets of frames, chunk of an offset) is consistent,
 * for the whole source and for a preview window.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <limits.h>
#include <unistd.h>

#include <libavutil/log.h>

#include "media/transcoder.h"
#include "core/util.h"

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

/* The byte map of an MP3 stream (Range, ?t= seeks) agrees with itself. */
static void check_layout(const struct talas_layout *l)
{
    uint64_t last;

    if (l->chunks == 0 || !l->exact_size)
        return;
    last = (uint64_t)(l->chunks - 1) * l->chunk_frames;
    if (talas_layout_frame_offset(l, 0) != l->header_size ||
        talas_layout_frame_offset(l, l->frames) != l->total_size ||
        talas_layout_chunk_at(l, l->header_size) != 0 ||
        talas_layout_chunk_at(l, l->total_size - 1) != l->chunks - 1 ||
        talas_layout_chunk_at(l, talas_layout_frame_offset(l, last)) != l->chunks - 1 ||
        talas_layout_frame_offset(l, l->frames) - talas_layout_frame_offset(l, last) !=
            talas_layout_chunk_size(l, l->chunks - 1) ||
        (l->chunks > 1 &&
         talas_layout_frame_offset(l, l->chunk_frames) - l->header_size != talas_layout_chunk_size(l, 0))) {
        fprintf(stderr, "fuzz_decode: inconsistent layout: %llu frames, %u chunks of %u\n",
                (unsigned long long)l->frames, l->chunks, l->chunk_frames);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct talas_profile profile, *p = &profile;
    struct talas_source_info info;
    struct talas_layout layout;
    struct talas_buf header = {0};
    static char path[PATH_MAX];
    static int fd = -1;
    char *error = NULL;

    talas_profile_builtin(size % 2 ? "mobile" : "low", &profile);
    if (fd == -1) {
        char tmpl[] = "/dev/shm/talas-fuzz-XXXXXX", tmpl2[] = "/tmp/talas-fuzz-XXXXXX";
        if ((fd = mkstemp(tmpl)) != -1) {
            if (realpath(tmpl, path) == NULL)
                abort();
            unlink(tmpl); /* the open descriptor keeps it; reopened by name below */
        } else if ((fd = mkstemp(tmpl2)) != -1) {
            if (realpath(tmpl2, path) == NULL)
                abort();
            unlink(tmpl2);
        } else {
            abort();
        }
        close(fd);
        fd = 0;
    }
    /* the file exists by name while this input runs */
    {
        int w = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (w == -1 || (size > 0 && write(w, data, size) != (ssize_t)size))
            abort();
        close(w);
    }

    if (talas_source_measure(path, &info, &error) != 0)
        goto done;
    if (talas_source_decodes(path, &error) != 0)
        goto done;
    if (talas_layout_compute(p, &info, NULL, &layout, &error) != 0)
        goto done;
    if (talas_transcode_header(p, &layout, &header) != 0 || header.len != layout.header_size)
        abort();
    check_layout(&layout);
    {
        /* a preview's window: a third of the way in, 2 s, 0.5 s fades */
        struct talas_window win = {info.samples / 3, (uint64_t)info.sample_rate * 2, info.sample_rate / 2};
        struct talas_layout wl;
        char *werror = NULL;
        if (talas_layout_compute(p, &info, &win, &wl, &werror) == 0)
            check_layout(&wl);
        free(werror);
    }
    if (layout.chunks > 0) {
        chunk(path, p, &layout, 0);
        if (layout.chunks > 1)
            chunk(path, p, &layout, layout.chunks - 1);
    }

done:
    free(error);
    talas_buf_free(&header);
    unlink(path);
    return 0;
}
