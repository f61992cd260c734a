/*
 * normalize.c - loudness normalization: gain and true-peak limiter (see
 * normalize.h).
 *
 * Entry points: talas_normalizer_open, talas_normalizer_next_input,
 * talas_normalizer_feed, talas_normalizer_read, talas_normalizer_free.
 * Logs nothing: errors go back to the caller.
 *
 * The graph: volume (float precision), aresample to four times the rate,
 * alimiter (no auto level, delay compensated), aresample back, aformat.
 * Limiting the oversampled signal holds its inter-sample peaks too, which
 * is what a true-peak meter (BS.1770's 4x oversampling) reads. Frames
 * carry their position as pts in 1/rate, from 0 at FIRST; the sink's
 * frames come out with the same timestamps (libswresample and alimiter
 * compensate their delays), and are placed by them.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavfilter/avfilter.h>
#include <libavfilter/buffersink.h>
#include <libavfilter/buffersrc.h>
#include <libavutil/channel_layout.h>
#include <libavutil/frame.h>

#include "core/log.h"
#include "core/util.h"
#include "media/normalize.h"

#define OVERSAMPLE 4
/* alimiter's lookahead and release, ms */
#define ATTACK_MS 5
#define RELEASE_MS 80

struct talas_normalizer {
    AVFilterGraph *graph;
    AVFilterContext *src, *sink;
    AVFrame *in, *out;
    unsigned rate, channels;
    int64_t first;   /* position of pts 0 */
    int64_t in_next; /* position of the next input sample */
    /* output, positions [out_pos, out_pos + out_len) at buf[ch] + out_start */
    float *buf[2];
    size_t out_start, out_len, out_cap;
    int64_t out_pos;
};

static char *av_error(const char *what, int err)
{
    char msg[AV_ERROR_MAX_STRING_SIZE];

    av_strerror(err, msg, sizeof(msg));
    return xasprintf("normalize: %s: %s", what, msg);
}

int talas_normalizer_open(unsigned rate, unsigned channels, double gain_db, double ceiling_dbtp,
                          int64_t first, struct talas_normalizer **n_r, char **error_r)
{
    struct talas_normalizer *n = xcalloc(1, sizeof(*n));
    AVFilterInOut *outputs = NULL, *inputs = NULL;
    char args[160], desc[400];
    double limit = pow(10.0, ceiling_dbtp / 20.0);
    int ret;

    if (channels < 1 || channels > 2 || rate == 0 || !isfinite(gain_db) || !(limit >= 0.0625 && limit <= 1)) {
        free(n);
        *error_r = xasprintf("normalize: unsupported stream (%u Hz, %u channels, gain %g dB)", rate, channels,
                             gain_db);
        return -1;
    }
    n->rate = rate;
    n->channels = channels;
    n->first = n->in_next = n->out_pos = first;
    if ((n->graph = avfilter_graph_alloc()) == NULL || (n->in = av_frame_alloc()) == NULL ||
        (n->out = av_frame_alloc()) == NULL)
        fatal("%s: libav allocation failed", __func__);
    n->graph->nb_threads = 1;
    snprintf(args, sizeof(args), "sample_rate=%u:sample_fmt=fltp:channel_layout=%s:time_base=1/%u", rate,
             channels == 1 ? "mono" : "stereo", rate);
    if ((ret = avfilter_graph_create_filter(&n->src, avfilter_get_by_name("abuffer"), "in", args, NULL,
                                            n->graph)) < 0 ||
        (ret = avfilter_graph_create_filter(&n->sink, avfilter_get_by_name("abuffersink"), "out", NULL, NULL,
                                            n->graph)) < 0) {
        *error_r = av_error("cannot create the graph's ends", ret);
        goto fail;
    }
    /* alimiter's own "level" (auto level) would raise the result to the
     * limit: off, the gain is volume's alone */
    snprintf(desc, sizeof(desc),
             "volume=volume=%.4fdB:precision=float,aresample=%u,"
             "alimiter=limit=%.6f:attack=%d:release=%d:level=0:latency=1,"
             "aresample=%u,aformat=sample_fmts=fltp",
             gain_db, rate * OVERSAMPLE, limit, ATTACK_MS, RELEASE_MS, rate);
    outputs = avfilter_inout_alloc();
    inputs = avfilter_inout_alloc();
    if (outputs == NULL || inputs == NULL)
        fatal("%s: avfilter_inout_alloc() failed", __func__);
    outputs->name = av_strdup("in");
    outputs->filter_ctx = n->src;
    inputs->name = av_strdup("out");
    inputs->filter_ctx = n->sink;
    if ((ret = avfilter_graph_parse_ptr(n->graph, desc, &inputs, &outputs, NULL)) < 0) {
        *error_r = av_error("cannot parse the graph", ret);
        goto fail;
    }
    if ((ret = avfilter_graph_config(n->graph, NULL)) < 0) {
        *error_r = av_error("cannot configure the graph", ret);
        goto fail;
    }
    avfilter_inout_free(&inputs);
    avfilter_inout_free(&outputs);
    *n_r = n;
    return 0;
fail:
    avfilter_inout_free(&inputs);
    avfilter_inout_free(&outputs);
    talas_normalizer_free(n);
    return -1;
}

int64_t talas_normalizer_next_input(const struct talas_normalizer *n)
{
    return n->in_next;
}

/* Appends the frames the sink has to the output buffer. */
static int drain(struct talas_normalizer *n, char **error_r)
{
    int ret;

    while ((ret = av_buffersink_get_frame(n->sink, n->out)) >= 0) {
        int64_t pos = n->first + n->out->pts;
        size_t count = (size_t)n->out->nb_samples;

        if (n->out->pts == AV_NOPTS_VALUE || pos != n->out_pos + (int64_t)n->out_len ||
            n->out->ch_layout.nb_channels != (int)n->channels) {
            av_frame_unref(n->out);
            *error_r = xasprintf("normalize: the graph's output is not continuous");
            return -1;
        }
        if (n->out_start + n->out_len + count > n->out_cap) {
            if (n->out_len > 0 && n->out_start > 0)
                for (unsigned ch = 0; ch < n->channels; ch++)
                    memmove(n->buf[ch], n->buf[ch] + n->out_start, n->out_len * sizeof(float));
            n->out_start = 0;
            if (n->out_len + count > n->out_cap) {
                n->out_cap = 2 * (n->out_len + count) + 4096;
                for (unsigned ch = 0; ch < n->channels; ch++)
                    n->buf[ch] = xrealloc(n->buf[ch], n->out_cap * sizeof(float));
            }
        }
        for (unsigned ch = 0; ch < n->channels && count > 0; ch++)
            memcpy(n->buf[ch] + n->out_start + n->out_len, n->out->extended_data[ch], count * sizeof(float));
        n->out_len += count;
        av_frame_unref(n->out);
    }
    if (ret != AVERROR(EAGAIN) && ret != AVERROR_EOF) {
        *error_r = av_error("av_buffersink_get_frame() failed", ret);
        return -1;
    }
    return 0;
}

int talas_normalizer_feed(struct talas_normalizer *n, const float *const *planes, unsigned count,
                          char **error_r)
{
    int ret;

    av_frame_unref(n->in);
    n->in->nb_samples = (int)count;
    n->in->format = AV_SAMPLE_FMT_FLTP;
    n->in->sample_rate = (int)n->rate;
    av_channel_layout_default(&n->in->ch_layout, (int)n->channels);
    if (av_frame_get_buffer(n->in, 0) < 0)
        fatal("%s: av_frame_get_buffer() failed", __func__);
    for (unsigned ch = 0; ch < n->channels; ch++)
        memcpy(n->in->extended_data[ch], planes[ch], count * sizeof(float));
    n->in->pts = n->in_next - n->first;
    if ((ret = av_buffersrc_add_frame_flags(n->src, n->in, 0)) < 0) {
        *error_r = av_error("av_buffersrc_add_frame_flags() failed", ret);
        return -1;
    }
    n->in_next += count;
    return drain(n, error_r);
}

int talas_normalizer_read(struct talas_normalizer *n, int64_t at, unsigned count, float *const *planes)
{
    size_t skip;

    if (at < n->out_pos)
        return -1;
    if (at + (int64_t)count > n->out_pos + (int64_t)n->out_len)
        return 0;
    skip = (size_t)(at - n->out_pos);
    for (unsigned ch = 0; ch < n->channels && count > 0; ch++)
        memcpy(planes[ch], n->buf[ch] + n->out_start + skip, count * sizeof(float));
    /* what comes before AT is never asked for again */
    n->out_start += skip;
    n->out_len -= skip;
    n->out_pos = at;
    return 1;
}

void talas_normalizer_free(struct talas_normalizer *n)
{
    if (n == NULL)
        return;
    avfilter_graph_free(&n->graph);
    av_frame_free(&n->in);
    av_frame_free(&n->out);
    free(n->buf[0]);
    free(n->buf[1]);
    free(n);
}
