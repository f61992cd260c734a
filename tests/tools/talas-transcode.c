/*
 * talas-transcode.c - a command line over the chunked transcoder
 * (workers/media/transcoder.[ch]), for the integration tests and the benchmark.
 *
 *   talas-transcode measure FILE [--pass]   (--pass: by the demux pass alone)
 *   talas-transcode layout FILE PROFILE [--window START_S LEN_S FADE_S] [--frames]
 *                          [--normalize LUFS]
 *   talas-transcode encode FILE PROFILE [--order seq|reverse|random] [--seed N]
 *                          [--window START_S LEN_S FADE_S] [-o OUT]
 *   talas-transcode chunk FILE PROFILE C [--window ...] [-o OUT]
 *
 * measure and layout print JSON. encode makes every chunk with its own
 * talas_transcode_chunk call, in the order asked, and writes header + chunks
 * in stream order (to stdout without -o); timing goes to stderr.
 *
 * Exit status: 0; 1 error (message on stderr); 2 usage; 3 the output was
 * written but part of the source did not decode (stderr says which chunks).
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libavutil/log.h>

#include "core/json.h"
#include "media/transcoder.h"
#include "core/util.h"

static const char *usage_text =
    "usage: talas-transcode measure FILE [--pass]\n"
    "       talas-transcode layout FILE PROFILE [--window START_S LEN_S FADE_S] [--frames]\n"
    "                              [--normalize LUFS]\n"
    "       talas-transcode encode FILE PROFILE [--order seq|reverse|random] [--seed N]\n"
    "                              [--window START_S LEN_S FADE_S] [-o OUT]\n"
    "       talas-transcode chunk FILE PROFILE C [--window START_S LEN_S FADE_S] [-o OUT]\n";

static _Noreturn void usage(void)
{
    fputs(usage_text, stderr);
    exit(2);
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double parse_seconds(const char *s)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || v < 0)
        usage();
    return v;
}

static int write_out(const char *path, const void *data, size_t len)
{
    FILE *f = path != NULL ? fopen(path, "wb") : stdout;

    if (f == NULL) {
        fprintf(stderr, "talas-transcode: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (fwrite(data, 1, len, f) != len || (path != NULL ? fclose(f) : fflush(f)) != 0) {
        fprintf(stderr, "talas-transcode: %s: write failed: %s\n", path ? path : "stdout", strerror(errno));
        return -1;
    }
    return 0;
}

static void print_json(struct talas_buf *b)
{
    talas_buf_append(b, "\n", 1);
    fwrite(b->data, 1, b->len, stdout);
    talas_buf_free(b);
}

int main(int argc, char **argv)
{
    const char *cmd, *file, *out_path = NULL, *order = "seq";
    struct talas_profile profile, *p = NULL;
    struct talas_source_info info;
    struct talas_window win, *winp = NULL;
    struct talas_layout l;
    double w_start = 0, w_len = 0, w_fade = 0;
    unsigned long seed = 1;
    long chunk_arg = -1;
    int pass_only = 0, want_frames = 0, verbose = 0, argi;
    char *error = NULL;
    static char resolved[PATH_MAX];

    if (argc < 3)
        usage();
    cmd = argv[1];
    /* the transcoder opens only resolved paths, as the scanner records them */
    file = realpath(argv[2], resolved) != NULL ? resolved : argv[2];
    argi = 3;
    if (strcmp(cmd, "measure") != 0) {
        if (argc < 4)
            usage();
        p = &profile;
        if (talas_profile_builtin(argv[3], p) != 0) {
            fprintf(stderr, "talas-transcode: unknown profile %s\n", argv[3]);
            return 2;
        }
        argi = 4;
        if (strcmp(cmd, "chunk") == 0) {
            char *end;

            if (argc < 5)
                usage();
            chunk_arg = strtol(argv[4], &end, 10);
            if (*end != '\0' || chunk_arg < 0)
                usage();
            argi = 5;
        }
    }
    for (; argi < argc; argi++) {
        if (strcmp(argv[argi], "--window") == 0 && argi + 3 < argc) {
            w_start = parse_seconds(argv[argi + 1]);
            w_len = parse_seconds(argv[argi + 2]);
            w_fade = parse_seconds(argv[argi + 3]);
            winp = &win;
            argi += 3;
        } else if (strcmp(argv[argi], "--order") == 0 && argi + 1 < argc) {
            order = argv[++argi];
            if (strcmp(order, "seq") != 0 && strcmp(order, "reverse") != 0 && strcmp(order, "random") != 0)
                usage();
        } else if (strcmp(argv[argi], "--seed") == 0 && argi + 1 < argc) {
            seed = strtoul(argv[++argi], NULL, 10);
        } else if (strcmp(argv[argi], "-o") == 0 && argi + 1 < argc) {
            out_path = argv[++argi];
        } else if (strcmp(argv[argi], "--normalize") == 0 && argi + 1 < argc) {
            /* the layout of a normalized rendition: its longer pre-roll */
            char *end;
            double lufs = strtod(argv[++argi], &end);

            if (*end != '\0' || lufs >= 0 || lufs < -70)
                usage();
            p->normalize_dlu = (int)(lufs * 10 - 0.5);
        } else if (strcmp(argv[argi], "--pass") == 0 && strcmp(cmd, "measure") == 0) {
            pass_only = 1;
        } else if (strcmp(argv[argi], "--frames") == 0) {
            want_frames = 1;
        } else if (strcmp(argv[argi], "-v") == 0) {
            verbose = 1;
        } else {
            usage();
        }
    }
    /* libav's own messages only with -v: the tool reports errors itself */
    av_log_set_level(verbose ? AV_LOG_WARNING : AV_LOG_QUIET);

    if ((pass_only ? talas_source_measure_pass(file, &info, &error)
                   : talas_source_measure(file, &info, &error)) < 0) {
        fprintf(stderr, "talas-transcode: %s\n", error);
        free(error);
        return 1;
    }
    if (strcmp(cmd, "measure") == 0) {
        struct talas_buf b = {0};
        struct talas_json j;

        talas_json_init(&j, &b);
        talas_json_object_begin(&j);
        talas_json_key(&j, "samples");
        talas_json_uint(&j, info.samples);
        talas_json_key(&j, "sample_rate");
        talas_json_uint(&j, info.sample_rate);
        talas_json_key(&j, "channels");
        talas_json_uint(&j, info.channels);
        talas_json_key(&j, "truncated");
        talas_json_bool(&j, info.truncated);
        talas_json_key(&j, "measured_by");
        talas_json_string(&j, info.measured_by);
        talas_json_object_end(&j);
        print_json(&b);
        return 0;
    }
    if (info.truncated && strcmp(cmd, "layout") != 0)
        fprintf(stderr,
                "talas-transcode: %s: truncated: the file holds %.3f s, less than its header "
                "declares\n",
                file, (double)info.samples / info.sample_rate);
    if (winp != NULL) {
        win.start = (uint64_t)(w_start * info.sample_rate + 0.5);
        win.length = (uint64_t)(w_len * info.sample_rate + 0.5);
        win.fade = (uint64_t)(w_fade * info.sample_rate + 0.5);
    }
    if (talas_layout_compute(p, &info, winp, &l, &error) < 0) {
        fprintf(stderr, "talas-transcode: %s\n", error);
        free(error);
        return 1;
    }

    if (strcmp(cmd, "layout") == 0) {
        struct talas_buf b = {0};
        struct talas_json j;

        talas_json_init(&j, &b);
        talas_json_object_begin(&j);
        talas_json_key(&j, "profile");
        talas_json_string(&j, p->name);
        talas_json_key(&j, "sample_rate");
        talas_json_uint(&j, p->sample_rate);
        talas_json_key(&j, "frame_samples");
        talas_json_uint(&j, l.frame_samples);
        talas_json_key(&j, "chunk_frames");
        talas_json_uint(&j, l.chunk_frames);
        talas_json_key(&j, "ramp_chunks");
        talas_json_uint(&j, l.ramp_chunks);
        talas_json_key(&j, "chunk_starts");
        talas_json_array_begin(&j);
        for (uint32_t c = 0; c < l.chunks; c++)
            talas_json_uint(&j, talas_layout_chunk_start(&l, c));
        talas_json_array_end(&j);
        /* where each chunk's fresh encoder starts: its pre-roll's first
         * frame (MP3's chunk 0: before frame 0, on silence) */
        talas_json_key(&j, "encoder_starts");
        talas_json_array_begin(&j);
        for (uint32_t c = 0; c < l.chunks; c++)
            talas_json_int(&j,
                           (int64_t)talas_layout_chunk_start(&l, c) - talas_layout_chunk_preroll(p, &l, c));
        talas_json_array_end(&j);
        talas_json_key(&j, "out_samples");
        talas_json_uint(&j, l.out_samples);
        talas_json_key(&j, "frames");
        talas_json_uint(&j, l.frames);
        talas_json_key(&j, "chunks");
        talas_json_uint(&j, l.chunks);
        talas_json_key(&j, "encoder_delay");
        talas_json_uint(&j, l.encoder_delay);
        talas_json_key(&j, "exact_size");
        talas_json_bool(&j, l.exact_size);
        talas_json_key(&j, "header_size");
        talas_json_uint(&j, l.header_size);
        talas_json_key(&j, "total_size");
        talas_json_uint(&j, l.total_size);
        if (l.exact_size) {
            talas_json_key(&j, "chunk_sizes");
            talas_json_array_begin(&j);
            for (uint32_t c = 0; c < l.chunks; c++)
                talas_json_uint(&j, talas_layout_chunk_size(&l, c));
            talas_json_array_end(&j);
            talas_json_key(&j, "chunk_offsets");
            talas_json_array_begin(&j);
            for (uint32_t c = 0; c < l.chunks; c++)
                talas_json_uint(&j, talas_layout_frame_offset(&l, talas_layout_chunk_start(&l, c)));
            talas_json_array_end(&j);
            if (want_frames) {
                talas_json_key(&j, "frame_offsets");
                talas_json_array_begin(&j);
                for (uint64_t f = 0; f <= l.frames; f++)
                    talas_json_uint(&j, talas_layout_frame_offset(&l, f));
                talas_json_array_end(&j);
            }
        }
        talas_json_object_end(&j);
        print_json(&b);
        return 0;
    }

    if (strcmp(cmd, "chunk") == 0) {
        struct talas_buf b = {0};
        int ret;

        if ((uint64_t)chunk_arg >= l.chunks) {
            fprintf(stderr, "talas-transcode: chunk %ld out of range (%" PRIu32 " chunks)\n", chunk_arg,
                    l.chunks);
            return 1;
        }
        ret = talas_transcode_chunk(file, p, &l, (uint32_t)chunk_arg, NULL, &b, NULL, &error);
        if (ret == -1) {
            fprintf(stderr, "talas-transcode: %s\n", error);
            return 1;
        }
        if (write_out(out_path, b.data, b.len) < 0)
            return 1;
        if (ret == TALAS_TRANSCODE_INCOMPLETE) {
            fprintf(stderr, "talas-transcode: incomplete: %s\n", error);
            return 3;
        }
        talas_buf_free(&b);
        return info.truncated ? 3 : 0;
    }

    if (strcmp(cmd, "encode") == 0) {
        struct talas_buf *chunks = xcalloc(l.chunks, sizeof(*chunks));
        struct talas_buf all = {0};
        uint32_t *order_v = xmalloc((l.chunks ? l.chunks : 1) * sizeof(*order_v));
        unsigned incomplete = 0;
        double t0, t1;

        for (uint32_t c = 0; c < l.chunks; c++)
            order_v[c] = strcmp(order, "reverse") == 0 ? l.chunks - 1 - c : c;
        if (strcmp(order, "random") == 0) {
            srand((unsigned)seed);
            for (uint32_t c = l.chunks; c > 1; c--) {
                uint32_t k = (uint32_t)rand() % c, t = order_v[c - 1];

                order_v[c - 1] = order_v[k];
                order_v[k] = t;
            }
        }
        t0 = now_s();
        if (talas_transcode_header(p, &l, &all) < 0) {
            fprintf(stderr, "talas-transcode: cannot make the header\n");
            return 1;
        }
        for (uint32_t k = 0; k < l.chunks; k++) {
            uint32_t c = order_v[k];
            int ret = talas_transcode_chunk(file, p, &l, c, NULL, &chunks[c], NULL, &error);

            if (ret == -1) {
                fprintf(stderr, "talas-transcode: %s\n", error);
                return 1;
            }
            if (ret == TALAS_TRANSCODE_INCOMPLETE) {
                fprintf(stderr, "talas-transcode: incomplete: %s\n", error);
                free(error);
                error = NULL;
                incomplete++;
            }
        }
        t1 = now_s();
        for (uint32_t c = 0; c < l.chunks; c++) {
            talas_buf_append(&all, chunks[c].data, chunks[c].len);
            talas_buf_free(&chunks[c]);
        }
        if (l.exact_size && all.len != l.total_size) {
            fprintf(stderr, "talas-transcode: stream is %zu bytes, layout says %" PRIu64 "\n", all.len,
                    l.total_size);
            return 1;
        }
        if (write_out(out_path, all.data, all.len) < 0)
            return 1;
        fprintf(stderr, "talas-transcode: %s %s: %" PRIu32 " chunks, %zu bytes, %.3f s, %.1fx realtime\n",
                file, p->name, l.chunks, all.len, t1 - t0,
                (double)l.out_samples / p->sample_rate / (t1 - t0 > 0 ? t1 - t0 : 1e-9));
        talas_buf_free(&all);
        free(chunks);
        free(order_v);
        if (info.truncated)
            return 3;
        if (incomplete > 0) {
            fprintf(stderr, "talas-transcode: %u of %" PRIu32 " chunks incomplete (source did not decode)\n",
                    incomplete, l.chunks);
            return 3;
        }
        return 0;
    }
    usage();
}
