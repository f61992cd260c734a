/*
 * measure.c - one file's loudness and tempo: the audio decoded with
 * libavformat/libavcodec, converted to interleaved float by libswresample
 * (same rate, same channels), fed to libebur128 (integrated loudness,
 * loudness range and sample peak, ITU-R BS.1770-4) and, mixed down to
 * mono, to libaubio's beat tracker.
 *
 * The true peak is BS.1770-4 Annex 2's: the largest magnitude of the
 * signal oversampled 4 times (2 times at 96 kHz and above, not at all from
 * 192 kHz). The oversampling is libswresample's, as in ffmpeg's own
 * ebur128 filter: its SIMD polyphase filter costs a fraction of
 * libebur128's scalar interpolator, which took 60 % of the analysis.
 *
 * Entry point: talas_measure_file(). Logs nothing: a file that cannot be
 * measured comes back with its reason, which the scanner logs and stores.
 *
 * Files are hostile input, as for the probe: only the "file" protocol, the
 * descriptor opened without following a FIFO, and the whole decode
 * abandoned after MEASURE_DEADLINE_MS through the interrupt callback.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <aubio/aubio.h>
#include <ebur128.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/log.h>
#include <libswresample/swresample.h>

#include "core/util.h"
#include "scan/measure.h"
#include "scan/media_input.h"

/* per file: a decode runs at hundreds of times real time, so this is only
 * reached by a file built to never end */
#define MEASURE_DEADLINE_MS (10 * 60 * 1000)
/* A file that decodes to less than this share of the duration its header
 * announces is truncated: its loudness would describe another file. */
#define MIN_DECODED_SHARE 0.97
/* aubio's beat tracker: window and hop at 44.1/48 kHz, scaled with the rate */
#define TEMPO_WINDOW 1024
#define TEMPO_HOP 512
/* Below this mean confidence of aubio's tracker there is no steady beat:
 * noise and sines read 0 to 0.03, drum loops 1.5 and more. */
#define MIN_CONFIDENCE 0.1

struct measure {
    AVFormatContext *fmt;
    AVCodecContext *dec;
    SwrContext *swr;
    SwrContext *upsampler; /* the true peak's; NULL at 192 kHz and above */
    AVFrame *frame;
    AVPacket *pkt;
    int stream;
    uint32_t what;
    /* the format the converter was set up for */
    int rate, channels, in_format;
    AVChannelLayout layout;
    float *buf; /* interleaved float samples of one frame */
    size_t buf_samples;
    float *up;        /* the same, oversampled */
    size_t up_samples;
    float true_peak;  /* the largest magnitude of the oversampled signal */
    ebur128_state *meter;
    aubio_tempo_t *tempo;
    fvec_t *hop_in, *hop_out;
    uint_t hop, hop_fill;
    double *beats; /* the tracker's beats, in seconds */
    size_t beat_count, beat_cap;
    double confidence_sum; /* its confidence at each beat */
    uint64_t decoded;      /* sample frames */
    uint64_t deadline;
    char *error;
};

static int past_deadline(void *opaque)
{
    const uint64_t *deadline = opaque;

    return talas_now_ms() > *deadline;
}

static void set_error(struct measure *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_error(struct measure *m, const char *fmt, ...)
{
    va_list ap;

    if (m->error != NULL)
        return;
    va_start(ap, fmt);
    if (vasprintf(&m->error, fmt, ap) == -1)
        m->error = NULL;
    va_end(ap);
    if (m->error == NULL)
        m->error = xstrdup("out of memory");
}

static void set_av_error(struct measure *m, const char *call, int err)
{
    char buf[AV_ERROR_MAX_STRING_SIZE];

    if (err == AVERROR_EXIT) {
        set_error(m, "decoding took longer than %d s", MEASURE_DEADLINE_MS / 1000);
        return;
    }
    if (av_strerror(err, buf, sizeof(buf)) < 0)
        snprintf(buf, sizeof(buf), "libav error %d", err);
    set_error(m, "%s: %s", call, buf);
}

/* libebur128's name for the channel libav puts at INDEX of LAYOUT: the
 * weights of BS.1770 (surrounds 1.41, LFE left out) need to know. */
static int meter_channel(const AVChannelLayout *layout, int index)
{
    switch (av_channel_layout_channel_from_index(layout, (unsigned)index)) {
    case AV_CHAN_FRONT_LEFT:
        return EBUR128_LEFT;
    case AV_CHAN_FRONT_RIGHT:
        return EBUR128_RIGHT;
    case AV_CHAN_FRONT_CENTER:
        return EBUR128_CENTER;
    case AV_CHAN_BACK_LEFT:
    case AV_CHAN_SIDE_LEFT:
        return EBUR128_LEFT_SURROUND;
    case AV_CHAN_BACK_RIGHT:
    case AV_CHAN_SIDE_RIGHT:
        return EBUR128_RIGHT_SURROUND;
    case AV_CHAN_LOW_FREQUENCY:
        return EBUR128_UNUSED;
    default:
        /* what BS.1770 gives no weight for counts like a front channel */
        return EBUR128_LEFT;
    }
}

/* Sets up the converter and the meters for the first frame's format. */
static int setup(struct measure *m, const AVFrame *f)
{
    AVChannelLayout in = {0};
    int rc;

    m->rate = f->sample_rate;
    m->channels = f->ch_layout.nb_channels;
    m->in_format = f->format;
    if (m->rate <= 0 || m->channels <= 0 || m->channels > 64) {
        set_error(m, "no usable audio (%d Hz, %d channels)", m->rate, m->channels);
        return -1;
    }
    /* a layout of unknown order converts channel for channel */
    if (f->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC)
        av_channel_layout_default(&in, m->channels);
    else if (av_channel_layout_copy(&in, &f->ch_layout) < 0) {
        set_error(m, "out of memory");
        return -1;
    }
    av_channel_layout_uninit(&m->layout);
    m->layout = in;
    if ((rc = swr_alloc_set_opts2(&m->swr, &m->layout, AV_SAMPLE_FMT_FLT, m->rate, &m->layout,
                                  (enum AVSampleFormat)m->in_format, m->rate, 0, NULL)) < 0 ||
        (rc = swr_init(m->swr)) < 0) {
        set_av_error(m, "swr_init", rc);
        return -1;
    }

    if (m->what & TALAS_ANALYSIS_LOUDNESS) {
        int factor = m->rate < 96000 ? 4 : m->rate < 192000 ? 2 : 1;

        m->meter = ebur128_init((unsigned)m->channels, (unsigned long)m->rate,
                                EBUR128_MODE_I | EBUR128_MODE_LRA | EBUR128_MODE_SAMPLE_PEAK);
        if (m->meter == NULL) {
            set_error(m, "ebur128_init() failed (%d Hz, %d channels)", m->rate, m->channels);
            return -1;
        }
        if (factor > 1 &&
            ((rc = swr_alloc_set_opts2(&m->upsampler, &m->layout, AV_SAMPLE_FMT_FLT, m->rate * factor,
                                       &m->layout, AV_SAMPLE_FMT_FLT, m->rate, 0, NULL)) < 0 ||
             (rc = swr_init(m->upsampler)) < 0)) {
            set_av_error(m, "swr_init", rc);
            return -1;
        }
        if (m->layout.order == AV_CHANNEL_ORDER_NATIVE)
            for (int i = 0; i < m->channels; i++)
                ebur128_set_channel(m->meter, (unsigned)i, meter_channel(&m->layout, i));
    }
    if (m->what & TALAS_ANALYSIS_TEMPO) {
        uint_t scale = m->rate > 120000 ? 4 : m->rate > 60000 ? 2 : 1;

        m->hop = TEMPO_HOP * scale;
        m->tempo = new_aubio_tempo("default", TEMPO_WINDOW * scale, m->hop, (uint_t)m->rate);
        m->hop_in = new_fvec(m->hop);
        m->hop_out = new_fvec(1);
        if (m->tempo == NULL || m->hop_in == NULL || m->hop_out == NULL) {
            set_error(m, "new_aubio_tempo() failed (%d Hz)", m->rate);
            return -1;
        }
    }
    return 0;
}

static void add_beat(struct measure *m)
{
    if (m->beat_count == m->beat_cap) {
        m->beat_cap = m->beat_cap != 0 ? 2 * m->beat_cap : 256;
        m->beats = xrealloc(m->beats, m->beat_cap * sizeof(*m->beats));
    }
    m->beats[m->beat_count++] = aubio_tempo_get_last_s(m->tempo);
    m->confidence_sum += aubio_tempo_get_confidence(m->tempo);
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/*
 * The tempo from the beats: aubio's own running estimate is a period
 * counted in hops (11.6 ms at 44.1 kHz), 1-2 % off at 120 BPM. Each beat
 * is as coarse, but the mean of many intervals is not: the intervals
 * within 10 % of their median (a missed or doubled beat is not one) are
 * averaged. 0 when fewer than MIN_BEATS beats were found.
 */
#define MIN_BEATS 8
static double beats_bpm(struct measure *m)
{
    size_t n = 0, kept = 0;
    double *iv, median, sum = 0;

    if (m->beat_count < MIN_BEATS)
        return 0;
    iv = xcalloc(m->beat_count - 1, sizeof(*iv));
    for (size_t i = 1; i < m->beat_count; i++)
        if (m->beats[i] > m->beats[i - 1])
            iv[n++] = m->beats[i] - m->beats[i - 1];
    if (n + 1 < MIN_BEATS) {
        free(iv);
        return 0;
    }
    qsort(iv, n, sizeof(*iv), compare_double);
    median = iv[n / 2];
    for (size_t i = 0; i < n; i++) {
        if (iv[i] >= 0.9 * median && iv[i] <= 1.1 * median) {
            sum += iv[i];
            kept++;
        }
    }
    free(iv);
    return kept > 0 && sum > 0 ? 60.0 * (double)kept / sum : 0;
}

/*
 * Oversamples N interleaved frames at IN (NULL: what the filter still
 * holds, at the end) and keeps the largest magnitude.
 */
static int oversample(struct measure *m, const uint8_t *in, int n)
{
    size_t want = (size_t)swr_get_out_samples(m->upsampler, n);
    uint8_t *out[1];
    float peak = m->true_peak;
    int got;

    if (want > m->up_samples) {
        m->up_samples = want;
        m->up = xrealloc(m->up, m->up_samples * (size_t)m->channels * sizeof(float));
    }
    out[0] = (uint8_t *)m->up;
    if ((got = swr_convert(m->upsampler, out, (int)m->up_samples, in != NULL ? &in : NULL, n)) < 0) {
        set_av_error(m, "swr_convert", got);
        return -1;
    }
    for (size_t i = 0, count = (size_t)got * (size_t)m->channels; i < count; i++) {
        float v = fabsf(m->up[i]);
        if (v > peak)
            peak = v;
    }
    m->true_peak = peak;
    return 0;
}

/* Measures the samples of frame F. */
static int consume(struct measure *m, const AVFrame *f)
{
    int n;

    if (m->swr == NULL && setup(m, f) == -1)
        return -1;
    if (f->sample_rate != m->rate || f->ch_layout.nb_channels != m->channels || f->format != m->in_format) {
        set_error(m, "the audio format changes midway (%d Hz, %d channels, then %d Hz, %d channels)", m->rate,
                  m->channels, f->sample_rate, f->ch_layout.nb_channels);
        return -1;
    }
    if (f->nb_samples <= 0)
        return 0;
    if ((size_t)f->nb_samples > m->buf_samples) {
        m->buf_samples = (size_t)f->nb_samples;
        m->buf = xrealloc(m->buf, m->buf_samples * (size_t)m->channels * sizeof(float));
    }
    {
        uint8_t *out[1] = {(uint8_t *)m->buf};
        n = swr_convert(m->swr, out, f->nb_samples, (const uint8_t **)f->extended_data, f->nb_samples);
    }
    if (n < 0) {
        set_av_error(m, "swr_convert", n);
        return -1;
    }
    m->decoded += (uint64_t)n;
    if (m->meter != NULL && ebur128_add_frames_float(m->meter, m->buf, (size_t)n) != EBUR128_SUCCESS) {
        set_error(m, "ebur128_add_frames_float() failed");
        return -1;
    }
    if (m->upsampler != NULL && oversample(m, (const uint8_t *)m->buf, n) == -1)
        return -1;
    if (m->tempo != NULL) {
        for (int i = 0; i < n; i++) {
            const float *s = m->buf + (size_t)i * (size_t)m->channels;
            float sum = 0;
            for (int c = 0; c < m->channels; c++)
                sum += s[c];
            m->hop_in->data[m->hop_fill++] = sum / (float)m->channels;
            if (m->hop_fill == m->hop) {
                aubio_tempo_do(m->tempo, m->hop_in, m->hop_out);
                m->hop_fill = 0;
                if (m->hop_out->data[0] != 0)
                    add_beat(m);
            }
        }
    }
    return 0;
}

static int drain(struct measure *m)
{
    int rc;

    while ((rc = avcodec_receive_frame(m->dec, m->frame)) == 0) {
        rc = consume(m, m->frame);
        av_frame_unref(m->frame);
        if (rc == -1)
            return -1;
    }
    if (rc != AVERROR(EAGAIN) && rc != AVERROR_EOF) {
        set_av_error(m, "avcodec_receive_frame", rc);
        return -1;
    }
    return 0;
}

static int open_input(struct measure *m, const char *path)
{
    AVDictionary *opts = NULL;
    const AVCodec *codec;
    struct stat sb;
    int fd, rc;

    if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)) == -1) {
        set_error(m, "open() failed: %s", strerror(errno));
        return -1;
    }
    if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
        set_error(m, "not a regular file");
        close(fd);
        return -1;
    }
    if ((m->fmt = avformat_alloc_context()) == NULL) {
        close(fd);
        set_error(m, "out of memory");
        return -1;
    }
    m->fmt->interrupt_callback.callback = past_deadline;
    m->fmt->interrupt_callback.opaque = &m->deadline;
    av_dict_set(&opts, "protocol_whitelist", "file", 0);
    rc = talas_media_open(&m->fmt, fd, path, &opts, NULL);
    av_dict_free(&opts);
    if (rc < 0) {
        set_av_error(m, "avformat_open_input", rc);
        return -1;
    }
    if ((rc = avformat_find_stream_info(m->fmt, NULL)) < 0) {
        set_av_error(m, "avformat_find_stream_info", rc);
        return -1;
    }
    if ((m->stream = av_find_best_stream(m->fmt, AVMEDIA_TYPE_AUDIO, -1, -1, &codec, 0)) < 0) {
        set_av_error(m, "av_find_best_stream", m->stream);
        return -1;
    }
    for (unsigned i = 0; i < m->fmt->nb_streams; i++)
        if ((int)i != m->stream)
            m->fmt->streams[i]->discard = AVDISCARD_ALL;
    if ((m->dec = avcodec_alloc_context3(codec)) == NULL) {
        set_error(m, "out of memory");
        return -1;
    }
    if ((rc = avcodec_parameters_to_context(m->dec, m->fmt->streams[m->stream]->codecpar)) < 0 ||
        (rc = avcodec_open2(m->dec, codec, NULL)) < 0) {
        set_av_error(m, "avcodec_open2", rc);
        return -1;
    }
    return 0;
}

static int decode(struct measure *m)
{
    int rc;

    for (;;) {
        rc = av_read_frame(m->fmt, m->pkt);
        if (rc == AVERROR_EOF)
            break;
        if (rc < 0) {
            set_av_error(m, "av_read_frame", rc);
            return -1;
        }
        if (m->pkt->stream_index != m->stream) {
            av_packet_unref(m->pkt);
            continue;
        }
        rc = avcodec_send_packet(m->dec, m->pkt);
        av_packet_unref(m->pkt);
        /* a damaged packet: the file is not what its header says */
        if (rc < 0 && rc != AVERROR(EAGAIN)) {
            set_av_error(m, "decoding", rc);
            return -1;
        }
        if (drain(m) == -1)
            return -1;
    }
    if ((rc = avcodec_send_packet(m->dec, NULL)) < 0 && rc != AVERROR_EOF) {
        set_av_error(m, "decoding", rc);
        return -1;
    }
    if (drain(m) == -1)
        return -1;
    /* the oversampling filter's last samples */
    return m->upsampler != NULL ? oversample(m, NULL, 0) : 0;
}

/* 20 log10 of a linear peak: -inf for 0 (digital silence). */
static double to_db(double linear)
{
    return linear > 0 ? 20.0 * log10(linear) : -INFINITY;
}

static int results(struct measure *m, uint64_t duration_ms, struct talas_track_analysis *a)
{
    double decoded_ms = m->rate > 0 ? (double)m->decoded * 1000.0 / m->rate : 0;

    if (m->decoded == 0) {
        set_error(m, "no audio could be decoded");
        return -1;
    }
    if (duration_ms > 0 && decoded_ms < MIN_DECODED_SHARE * (double)duration_ms) {
        set_error(m, "truncated: %.1f s of audio decoded where the header announces %.1f s",
                  decoded_ms / 1000, (double)duration_ms / 1000);
        return -1;
    }
    memset(a, 0, sizeof(*a));
    if (m->meter != NULL) {
        double v, sample = 0, truep;

        if (ebur128_loudness_global(m->meter, &v) != EBUR128_SUCCESS)
            v = -INFINITY;
        /* libebur128 answers -HUGE_VAL when every block is gated out */
        a->integrated_lufs = isfinite(v) ? v : -INFINITY;
        if (ebur128_loudness_range(m->meter, &v) != EBUR128_SUCCESS || !isfinite(v))
            v = 0;
        a->range_lu = v;
        for (int c = 0; c < m->channels; c++) {
            if (ebur128_sample_peak(m->meter, (unsigned)c, &v) == EBUR128_SUCCESS && v > sample)
                sample = v;
        }
        /* the oversampled signal can pass below a sample it goes through */
        truep = m->true_peak > sample ? m->true_peak : sample;
        a->sample_peak = sample;
        a->sample_peak_dbfs = to_db(sample);
        a->true_peak_dbtp = to_db(truep);
        a->flags |= TALAS_ANALYSIS_LOUDNESS;
    }
    if (m->tempo != NULL) {
        double bpm = beats_bpm(m);
        double confidence = m->beat_count > 0 ? m->confidence_sum / (double)m->beat_count : 0;

        /* beats "found" in noise, a sine or silence are no tempo */
        if (!isfinite(bpm) || bpm <= 0 || !(confidence >= MIN_CONFIDENCE))
            bpm = confidence = 0;
        a->bpm = round(bpm * 100) / 100;
        a->bpm_confidence = confidence;
        a->flags |= TALAS_ANALYSIS_TEMPO;
    }
    return 0;
}

int talas_measure_file(const char *path, uint64_t duration_ms, uint32_t what,
                       struct talas_track_analysis *a_r, char **error_r)
{
    struct measure m = {0};
    int rc = -1;

    /* libav's own complaints about a broken file would flood the log */
    if (av_log_get_level() > AV_LOG_FATAL)
        av_log_set_level(AV_LOG_FATAL);
    m.what = what & (TALAS_ANALYSIS_LOUDNESS | TALAS_ANALYSIS_TEMPO);
    m.deadline = talas_now_ms() + MEASURE_DEADLINE_MS;
    if ((m.frame = av_frame_alloc()) == NULL || (m.pkt = av_packet_alloc()) == NULL) {
        set_error(&m, "out of memory");
        goto out;
    }
    if (open_input(&m, path) == -1 || decode(&m) == -1 || results(&m, duration_ms, a_r) == -1)
        goto out;
    rc = 0;

out:
    if (rc != 0)
        *error_r = m.error != NULL ? m.error : xstrdup("analysis failed");
    else
        free(m.error);
    if (m.tempo != NULL)
        del_aubio_tempo(m.tempo);
    if (m.hop_in != NULL)
        del_fvec(m.hop_in);
    if (m.hop_out != NULL)
        del_fvec(m.hop_out);
    if (m.meter != NULL)
        ebur128_destroy(&m.meter);
    swr_free(&m.swr);
    swr_free(&m.upsampler);
    av_channel_layout_uninit(&m.layout);
    free(m.buf);
    free(m.up);
    free(m.beats);
    av_packet_free(&m.pkt);
    av_frame_free(&m.frame);
    avcodec_free_context(&m.dec);
    if (m.fmt != NULL)
        talas_media_close(&m.fmt);
    return rc;
}
