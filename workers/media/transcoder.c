/*
 * transcoder.c - chunked, deterministic transcodes (see transcoder.h).
 *
 * Entry points: talas_profile_from_config, talas_profile_builtin, talas_source_measure,
 * talas_source_decodes, talas_source_check, talas_layout_compute (and the
 * size helpers), talas_transcode_header, talas_transcode_chunk,
 * talas_source_peaks. Logs nothing: errors go back to the caller.
 *
 * One chunk is a pipeline of three stages, all opened for that chunk alone:
 *
 *   source    demuxer + decoder; yields source samples y[n], n counted from
 *             the first sample a continuous decode returns (its pts is the
 *             "origin"), placed by pts after a seek; y is zero outside
 *             [0, samples) and where the file does not decode.
 *   resampler libswresample from y to x[i] = the signal at
 *             window.start/in_rate + i/out_rate, planar float, output
 *             layout. An instance only ever starts on a source sample that
 *             falls exactly on the output grid, so two instances that
 *             started at different places compute the same x[i] once past
 *             their filter's warm-up (which is fed and dropped).
 *   encoder   fresh libmp3lame / aac context, fed x from
 *             (first_frame - P) * frame_samples; its q-th packet is global
 *             frame first_frame - P + q, the first P are dropped (P: the
 *             layout's pre-roll; for AAC at most first_frame). x is
 *             zero before 0 and from out_samples on, so the encoder is
 *             never flushed: it runs until it has produced the chunk's
 *             frames, exactly as a continuous encode would.
 *
 * A normalized profile (p->normalize_dlu) puts a fourth stage between the
 * resampler and the encoder: media/normalize.c's gain and true-peak
 * limiter, fed from TALAS_NORMALIZE_HISTORY_MS before the encoder's first
 * sample so that its state is the continuous stream's.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/intreadwrite.h>
#include <libavutil/samplefmt.h>
#include <libswresample/swresample.h>

#include "core/config.h"
#include "core/log.h"
#include "media/mp3_length.h"
#include "media/normalize.h"
#include "media/queue_timeline.h"
#include "media/track_file.h"
#include "scan/media_input.h"
#include "media/transcoder.h"
#include "core/util.h"

#define CHUNK_SECONDS 6
/* AAC's short opening chunks: at most RAMP_MAX, none under RAMP_MIN_FRAMES */
#define RAMP_MAX 5
#define RAMP_MIN_FRAMES 8
/* A chunk that takes longer than this is abandoned (stuck I/O). */
#define CHUNK_DEADLINE_MS 120000
/* Decoders need some packets after a seek before their output equals a
 * continuous decode's (MP3 bit reservoir, MDCT overlap, Opus pre-roll). */
#define SEEK_MARGIN_MS 250
/* Seeks landing later than asked are retried this much further back, then
 * the chunk decodes from the start of the file. */
#define SEEK_RETRY_MARGIN_MS 3000
/* Timestamp jitter tolerated before a frame is placed by its pts rather
 * than after the previous one (a gap or overlap: corrupt data, a splice). */
#define PTS_TOLERANCE 2
/* Source samples handed to the resampler per call. */
#define RUN_MAX 4096

void talas_profile_from_config(const struct talas_config_profile *cp, unsigned chunk_ms,
                               struct talas_profile *p_r)
{
    memset(p_r, 0, sizeof(*p_r));
    snprintf(p_r->name, sizeof(p_r->name), "%s", cp->name);
    p_r->codec = cp->codec == TALAS_CONFIG_CODEC_MP3 ? TALAS_CODEC_MP3 : TALAS_CODEC_AAC;
    p_r->bitrate = (unsigned)cp->bitrate * 1000;
    p_r->sample_rate = (unsigned)cp->sample_rate;
    p_r->channels = (unsigned)cp->channels;
    if (p_r->codec == TALAS_CODEC_AAC)
        p_r->chunk_ms = chunk_ms;
}

int talas_profile_builtin(const char *name, struct talas_profile *p_r)
{
    const struct talas_config_profile *cp = talas_config_default_profile(name);

    if (cp == NULL)
        return -1;
    talas_profile_from_config(cp, 0, p_r);
    return 0;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    if (a % b != 0 && (a < 0) != (b < 0))
        q--;
    return q;
}

static uint64_t gcd_u64(uint64_t a, uint64_t b)
{
    while (b != 0) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static char *av_error(const char *path, const char *what, int err)
{
    char msg[AV_ERROR_MAX_STRING_SIZE];

    av_strerror(err, msg, sizeof(msg));
    return xasprintf("%s: %s: %s", path, what, msg);
}

/* ------------------------------------------------------------- input */

#define WAV_PROBESIZE 16384

struct io_guard {
    uint64_t deadline;
    volatile const int *cancel;
};

static int io_interrupt(void *opaque)
{
    const struct io_guard *g = opaque;

    return (g->cancel != NULL && *g->cancel) || talas_now_ms() > g->deadline;
}

/* Opens PATH, through its descriptor only (media_input.c, which also keeps
 * an oversized FLAC comment block away from libavformat), and finds its
 * audio stream; the other streams are discarded by the demuxer. Close
 * with talas_media_close. */
static int input_open(const char *path, struct io_guard *guard, AVFormatContext **fmt_r, AVStream **st_r,
                      char **error_r)
{
    AVFormatContext *fmt = avformat_alloc_context();
    AVDictionary *opts = NULL;
    int ret, idx, fd;

    if (fmt == NULL)
        fatal("%s: avformat_alloc_context() failed", __func__);
    fmt->interrupt_callback.callback = io_interrupt;
    fmt->interrupt_callback.opaque = guard;
    /* for what a demuxer might open itself (a playlist's entries) */
    av_dict_set(&opts, "protocol_whitelist", "file", 0);
    /* Opened here and checked (no symbolic link on the way since the
     * scan); libavformat reads that very descriptor, whatever happens to
     * PATH meanwhile. */
    if ((fd = talas_track_open(path, NULL)) == -1) {
        *error_r = xasprintf("%s: %s", path,
                             errno == ELOOP    ? "leads through a symbolic link since the last scan: refused"
                             : errno == EINVAL ? "not a regular file"
                                               : strerror(errno));
        av_dict_free(&opts);
        avformat_free_context(fmt);
        return -1;
    }
    ret = talas_media_open(&fmt, fd, path, &opts, NULL);
    av_dict_free(&opts);
    if (ret < 0) {
        *error_r = av_error(path, "cannot open as audio", ret);
        return -1;
    }
    /* A WAV of 16-bit PCM has its first packets probed for a codec in
     * disguise (DTS, MP3) by every raw format's probe, again at each
     * doubling of what was read, up to 32 packets: 7 ms of every open of a
     * WAV of music. 16 KiB still hold dozens of such a codec's frames. */
    if (strcmp(fmt->iformat->name, "wav") == 0)
        fmt->probesize = WAV_PROBESIZE;
    ret = avformat_find_stream_info(fmt, NULL);
    if (ret < 0) {
        *error_r = av_error(path, "avformat_find_stream_info() failed", ret);
        goto fail;
    }
    idx = av_find_best_stream(fmt, AVMEDIA_TYPE_AUDIO, -1, -1, NULL, 0);
    if (idx < 0) {
        *error_r = xasprintf("%s: no audio stream", path);
        goto fail;
    }
    for (unsigned i = 0; i < fmt->nb_streams; i++)
        if ((int)i != idx)
            fmt->streams[i]->discard = AVDISCARD_ALL;
    if (fmt->streams[idx]->codecpar->sample_rate <= 0 ||
        fmt->streams[idx]->codecpar->ch_layout.nb_channels <= 0) {
        *error_r = xasprintf("%s: audio stream without sample rate or channels", path);
        goto fail;
    }
    if (fmt->streams[idx]->codecpar->sample_rate < TALAS_SOURCE_RATE_MIN ||
        fmt->streams[idx]->codecpar->sample_rate > TALAS_SOURCE_RATE_MAX) {
        *error_r =
            xasprintf("%s: sampled at %d Hz, outside %d..%d Hz", path,
                      fmt->streams[idx]->codecpar->sample_rate, TALAS_SOURCE_RATE_MIN, TALAS_SOURCE_RATE_MAX);
        goto fail;
    }
    *fmt_r = fmt;
    *st_r = fmt->streams[idx];
    return 0;
fail:
    talas_media_close(&fmt);
    return -1;
}

static int codec_is_pcm(enum AVCodecID id)
{
    return id >= AV_CODEC_ID_PCM_S16LE && id < AV_CODEC_ID_ADPCM_IMA_QT;
}

/* The resampler of a chunk: from the decoder's frames (LAYOUT, FMT,
 * IN_RATE) to planar float with OUT_CHANNELS at OUT_RATE. Returns 0, or a
 * negative AVERROR (*swr_r then holds nothing to use; swr_free it). */
static int resampler_open(SwrContext **swr_r, const AVChannelLayout *layout, enum AVSampleFormat fmt,
                          unsigned in_rate, unsigned out_channels, unsigned out_rate)
{
    AVChannelLayout in_layout = {0}, out_layout = {0};
    int ret;

    /* FFmpeg 5.1 takes the layouts as non-const */
    if ((ret = av_channel_layout_copy(&in_layout, layout)) < 0)
        return ret;
    av_channel_layout_default(&out_layout, (int)out_channels);
    ret = swr_alloc_set_opts2(swr_r, &out_layout, AV_SAMPLE_FMT_FLTP, (int)out_rate, &in_layout, fmt,
                              (int)in_rate, 0, NULL);
    if (ret >= 0)
        ret = swr_init(*swr_r);
    av_channel_layout_uninit(&in_layout);
    av_channel_layout_uninit(&out_layout);
    return ret;
}

/* Whether the frames of a source, as FRAME is, convert as a chunk
 * converts them (the layout as source_open keeps it: the frame's own),
 * to mono and to stereo (the profiles' channels). 0, or -1 with
 * *error_r. libswresample cannot mix a layout it does not know (9 or
 * more channels without one) down to stereo: that must be known before
 * a response starts, not in its first chunk. */
static int frame_converts(const char *path, const AVFrame *frame, char **error_r)
{
    if (frame->sample_rate < TALAS_SOURCE_RATE_MIN || frame->sample_rate > TALAS_SOURCE_RATE_MAX) {
        *error_r = xasprintf("%s: decodes at %d Hz, outside %d..%d Hz", path, frame->sample_rate,
                             TALAS_SOURCE_RATE_MIN, TALAS_SOURCE_RATE_MAX);
        return -1;
    }
    for (unsigned out = 1; out <= 2; out++) {
        SwrContext *swr = NULL;
        int ret =
            resampler_open(&swr, &frame->ch_layout, frame->format, (unsigned)frame->sample_rate, out, 44100);

        swr_free(&swr);
        if (ret < 0) {
            char layout[64] = "without a layout", msg[AV_ERROR_MAX_STRING_SIZE];

            if (frame->ch_layout.order != AV_CHANNEL_ORDER_UNSPEC &&
                av_channel_layout_describe(&frame->ch_layout, layout, sizeof(layout)) < 0)
                snprintf(layout, sizeof(layout), "of an unknown layout");
            av_strerror(ret, msg, sizeof(msg));
            *error_r = xasprintf("%s: %d channels %s cannot be mixed down to %s: %s", path,
                                 frame->ch_layout.nb_channels, layout, out == 1 ? "mono" : "stereo", msg);
            return -1;
        }
    }
    return 0;
}

int talas_source_decodes(const char *path, char **error_r)
{
    struct io_guard guard = {talas_now_ms() + 10000, NULL};
    const AVCodec *codec;
    AVCodecContext *dec = NULL;
    AVFormatContext *fmt;
    AVStream *st;
    AVPacket *pkt = av_packet_alloc();
    AVFrame *frame = av_frame_alloc();
    int packets = 0, decoded = 0, converts = -1, ret;

    if (input_open(path, &guard, &fmt, &st, error_r) != 0)
        goto done;
    if ((codec = avcodec_find_decoder(st->codecpar->codec_id)) == NULL ||
        (dec = avcodec_alloc_context3(codec)) == NULL ||
        avcodec_parameters_to_context(dec, st->codecpar) < 0 || avcodec_open2(dec, codec, NULL) < 0) {
        *error_r = xasprintf("%s: no decoder for its audio", path);
        goto close;
    }
    /* a few packets are enough: the question is whether anything decodes,
     * not whether everything does (a damaged middle is served as silence);
     * the first frame out says whether chunks can convert it */
    while (decoded == 0 && packets < 64 && (ret = av_read_frame(fmt, pkt)) >= 0) {
        if (pkt->stream_index == st->index) {
            packets++;
            if (avcodec_send_packet(dec, pkt) >= 0)
                while (decoded == 0 && avcodec_receive_frame(dec, frame) >= 0)
                    if ((decoded = frame->nb_samples) > 0)
                        converts = frame_converts(path, frame, error_r);
        }
        av_packet_unref(pkt);
    }
    if (decoded == 0) {
        avcodec_send_packet(dec, NULL);
        while (decoded == 0 && avcodec_receive_frame(dec, frame) >= 0)
            if ((decoded = frame->nb_samples) > 0)
                converts = frame_converts(path, frame, error_r);
    }
    if (decoded == 0)
        *error_r = xasprintf("%s: no audio decodes from its first %d packets", path, packets);
close:
    avcodec_free_context(&dec);
    talas_media_close(&fmt);
done:
    av_packet_free(&pkt);
    av_frame_free(&frame);
    return decoded > 0 && converts == 0 ? 0 : -1;
}

int talas_source_check(const char *path, struct talas_source_info *info_r, char **error_r)
{
    *error_r = NULL;
    if (talas_source_measure(path, info_r, error_r) != 0)
        return -1;
    if (info_r->samples == 0) {
        *error_r = xasprintf("%s: no audio samples", path);
        return -1;
    }
    return talas_source_decodes(path, error_r);
}

/*
 * Whether a FLAC stream holds the TOTAL samples its STREAMINFO declares:
 * its last second is read (a seek by the seek table, or by frame headers,
 * which number their samples) and must end exactly there. A frame-by-frame
 * pass costs 2 ms a megabyte, which a cold first byte cannot afford on a
 * 5-minute track; this one costs the same at any length.
 */
static int flac_tail_matches(AVFormatContext *fmt, AVStream *st, AVPacket *pkt, int64_t total)
{
    int64_t target = total - av_rescale_q(1, (AVRational){1, 1}, st->time_base), end = -1;
    int ret;

    if (target < 0)
        target = 0;
    if (avformat_seek_file(fmt, st->index, INT64_MIN, target, target, 0) < 0)
        return 0;
    while ((ret = av_read_frame(fmt, pkt)) >= 0) {
        if (pkt->stream_index == st->index) {
            if (pkt->pts == AV_NOPTS_VALUE || pkt->duration <= 0 || pkt->pts < end) {
                av_packet_unref(pkt);
                return 0;
            }
            end = pkt->pts + pkt->duration;
        }
        av_packet_unref(pkt);
    }
    return ret == AVERROR_EOF && end == total;
}

/* The MPEG audio decoder's own delay, which libavformat adds to the
 * encoder delay an Info tag's LAME extension states. */
#define MP3_DECODER_DELAY 529

static long fd_pread(void *arg, void *buf, size_t n, uint64_t off)
{
    ssize_t got;

    do
        got = pread(*(const int *)arg, buf, n, (off_t)off);
    while (got == -1 && errno == EINTR);
    return (long)got;
}

/* The first packet of ST that is not discarded: the samples its side data
 * says to skip (from its start, and from its end). -1 when there is none. */
static int64_t first_packet_skip(AVFormatContext *fmt, AVStream *st, AVPacket *pkt)
{
    int64_t skip = -1;
    int ret;

    while ((ret = av_read_frame(fmt, pkt)) >= 0) {
        if (pkt->stream_index == st->index && !(pkt->flags & AV_PKT_FLAG_DISCARD)) {
            size_t size;
            const uint8_t *side = av_packet_get_side_data(pkt, AV_PKT_DATA_SKIP_SAMPLES, &size);

            skip = side != NULL && size >= 8 ? (int64_t)AV_RL32(side) + AV_RL32(side + 4) : 0;
            av_packet_unref(pkt);
            break;
        }
        av_packet_unref(pkt);
    }
    return skip;
}

/*
 * MP3: the Info tag's length, when a walk over the frame headers counts
 * the frames it states (mp3_length.c) and libavformat read the same tag:
 * its duration is those frames, and its first packet skips the encoder
 * delay the tag states plus the decoder's. The last packets then discard
 * the padding less the decoder's delay (none when the padding is
 * shorter), as the pass's packets would say.
 * Returns the samples, or -1 (the pass decides).
 */
static int64_t mp3_tag_samples(AVFormatContext *fmt, AVStream *st, AVPacket *pkt)
{
    int fd = talas_media_fd(fmt);
    int64_t size = avio_size(fmt->pb), total, skip;
    struct talas_mp3_input in = {(uint64_t)size, fd_pread, &fd};
    struct talas_mp3_length m;

    if (fd == -1 || size <= 0)
        return -1;
    if (talas_mp3_length(&in, &m) != 0 || m.rate != (unsigned)st->codecpar->sample_rate)
        return -1;
    total = (int64_t)m.frames * m.spf;
    skip = m.lame ? m.start_pad + MP3_DECODER_DELAY : 0;
    if (st->duration != av_rescale_q(total, (AVRational){1, (int)m.rate}, st->time_base) ||
        first_packet_skip(fmt, st, pkt) != skip)
        return -1;
    total -= skip;
    if (m.lame && m.end_pad > MP3_DECODER_DELAY)
        total -= m.end_pad - MP3_DECODER_DELAY;
    return total > 0 ? total : 0;
}

/*
 * MP4: the sample table's length, when libavformat indexed every sample
 * the table counts (a fragmented file indexes as it reads), every sample
 * lies inside the file (a cut one does not), and the samples an edit list
 * discards come first. A packet lasts until the next one's timestamp, the
 * last one until the stream's duration: the kept packets add up to the
 * duration less the first kept timestamp, less what the first one skips.
 * Returns the samples, or -1 (the pass decides).
 */
static int64_t mp4_table_samples(AVFormatContext *fmt, AVStream *st, AVPacket *pkt)
{
    int n = avformat_index_get_entries_count(st);
    int64_t size = avio_size(fmt->pb), first = AV_NOPTS_VALUE, last = INT64_MIN, skip, total;

    if (n <= 0 || st->nb_frames != n || size <= 0 || st->duration <= 0)
        return -1;
    for (int i = 0; i < n; i++) {
        const AVIndexEntry *e = avformat_index_get_entry(st, i);

        if (e == NULL || e->pos < 0 || e->size < 0 || e->pos + e->size > size || e->timestamp <= last)
            return -1;
        last = e->timestamp;
        if (!(e->flags & AVINDEX_DISCARD_FRAME)) {
            if (first == AV_NOPTS_VALUE)
                first = e->timestamp;
        } else if (first != AV_NOPTS_VALUE) {
            return -1;
        }
    }
    if (first == AV_NOPTS_VALUE || st->duration <= last || (skip = first_packet_skip(fmt, st, pkt)) < 0)
        return -1;
    total =
        av_rescale_q(st->duration - first, st->time_base, (AVRational){1, st->codecpar->sample_rate}) - skip;
    return total > 0 ? total : 0;
}

/* The length the container states, when the file confirms it (see
 * talas_source_measure): the samples, with *HOW_R saying whence; -1 when
 * the pass must decide. FMT may have read packets. */
static int64_t stated_samples(AVFormatContext *fmt, AVStream *st, AVPacket *pkt, const char **how_r)
{
    const char *name = fmt->iformat->name;

    if (strcmp(name, "flac") == 0 && st->duration > 0 && st->start_time <= 0) {
        *how_r = "streaminfo";
        return flac_tail_matches(fmt, st, pkt, st->duration)
                   ? av_rescale_q(st->duration, st->time_base, (AVRational){1, st->codecpar->sample_rate})
                   : -1;
    }
    if (strcmp(name, "mp3") == 0 && st->duration > 0) {
        *how_r = "info tag";
        return mp3_tag_samples(fmt, st, pkt);
    }
    if (strncmp(name, "mov,", 4) == 0) {
        *how_r = "sample table";
        return mp4_table_samples(fmt, st, pkt);
    }
    return -1;
}

static int source_measure(const char *path, int pass_only, struct talas_source_info *info_r, char **error_r)
{
    struct io_guard guard = {talas_now_ms() + CHUNK_DEADLINE_MS, NULL};
    AVFormatContext *fmt = NULL;
    AVStream *st;
    AVPacket *pkt = NULL;
    int64_t duration = 0, trimmed = 0, stated;
    const char *how = NULL;
    unsigned rate;
    int ret;

    if (input_open(path, &guard, &fmt, &st, error_r) < 0)
        return -1;
    rate = st->codecpar->sample_rate;
    info_r->truncated = 0;
    info_r->sample_rate = rate;
    info_r->channels = st->codecpar->ch_layout.nb_channels;

    /* PCM: the header's length is exact, and reading the data would cost
     * a pass over hundreds of megabytes */
    if (codec_is_pcm(st->codecpar->codec_id) && st->duration > 0) {
        info_r->samples = av_rescale_q(st->duration, st->time_base, (AVRational){1, rate});
        info_r->measured_by = "header";
        talas_media_close(&fmt);
        return 0;
    }

    pkt = av_packet_alloc();
    if (pkt == NULL)
        fatal("%s: av_packet_alloc() failed", __func__);
    /* the length the container states, when the file confirms it;
     * otherwise (a cut file, no length stated) the pass below, from a
     * fresh open */
    if (!pass_only && (stated = stated_samples(fmt, st, pkt, &how)) >= 0) {
        info_r->samples = (uint64_t)stated;
        info_r->measured_by = how;
        av_packet_free(&pkt);
        talas_media_close(&fmt);
        return 0;
    }
    if (how != NULL) {
        talas_media_close(&fmt);
        if (input_open(path, &guard, &fmt, &st, error_r) < 0) {
            av_packet_free(&pkt);
            return -1;
        }
    }
    info_r->measured_by = "pass";
    /* Ogg: the demuxer reads the length from the last page's granule
     * (already end-trimmed), while packet durations count packets that
     * decode to nothing (Vorbis's first): length less the pre-skip */
    if (strcmp(fmt->iformat->name, "ogg") == 0 && st->duration > 0) {
        while ((ret = av_read_frame(fmt, pkt)) >= 0 && pkt->stream_index != st->index)
            av_packet_unref(pkt);
        if (ret >= 0) {
            size_t size;
            const uint8_t *skip = av_packet_get_side_data(pkt, AV_PKT_DATA_SKIP_SAMPLES, &size);

            duration = av_rescale_q(st->duration, st->time_base, (AVRational){1, rate});
            if (skip != NULL && size >= 4)
                duration -= AV_RL32(skip);
            info_r->samples = duration > 0 ? (uint64_t)duration : 0;
            info_r->measured_by = "ogg granule";
            av_packet_free(&pkt);
            talas_media_close(&fmt);
            return 0;
        }
        avformat_seek_file(fmt, st->index, INT64_MIN, 0, 0, 0);
    }
    while ((ret = av_read_frame(fmt, pkt)) >= 0) {
        if (pkt->stream_index == st->index && !(pkt->flags & AV_PKT_FLAG_DISCARD)) {
            size_t size;
            const uint8_t *skip = av_packet_get_side_data(pkt, AV_PKT_DATA_SKIP_SAMPLES, &size);

            if (pkt->duration <= 0) {
                *error_r = xasprintf("%s: packets without duration, cannot measure", path);
                goto fail;
            }
            duration += pkt->duration;
            if (skip != NULL && size >= 8)
                trimmed += (int64_t)AV_RL32(skip) + AV_RL32(skip + 4);
        }
        av_packet_unref(pkt);
    }
    if (ret != AVERROR_EOF) {
        *error_r = av_error(path, "av_read_frame() failed", ret);
        goto fail;
    }
    /* a header-declared length (not one guessed from the bitrate) more
     * than 100 ms beyond the packets: the file was cut */
    if (st->duration > 0 && fmt->duration_estimation_method != AVFMT_DURATION_FROM_BITRATE &&
        av_rescale_q(st->duration - duration, st->time_base, (AVRational){1, 10}) >= 1)
        info_r->truncated = 1;
    duration = av_rescale_q(duration, st->time_base, (AVRational){1, rate}) - trimmed;
    info_r->samples = duration > 0 ? (uint64_t)duration : 0;
    av_packet_free(&pkt);
    talas_media_close(&fmt);
    return 0;
fail:
    av_packet_free(&pkt);
    talas_media_close(&fmt);
    return -1;
}

int talas_source_measure(const char *path, struct talas_source_info *info_r, char **error_r)
{
    return source_measure(path, 0, info_r, error_r);
}

int talas_source_measure_pass(const char *path, struct talas_source_info *info_r, char **error_r)
{
    return source_measure(path, 1, info_r, error_r);
}

/* ------------------------------------------------------------ layout */

struct mp3_format {
    int version;        /* 1 MPEG-1, 0 MPEG-2, -1 MPEG-2.5 */
    unsigned rate_idx;  /* sampling frequency index */
    unsigned spf;       /* samples per frame */
    unsigned side_info; /* bytes of side information */
};

static int mp3_format(unsigned rate, unsigned channels, struct mp3_format *f)
{
    static const unsigned rates[3][3] = {{44100, 48000, 32000}, {22050, 24000, 16000}, {11025, 12000, 8000}};

    for (int v = 0; v < 3; v++)
        for (unsigned i = 0; i < 3; i++)
            if (rates[v][i] == rate) {
                f->version = 1 - v;
                f->rate_idx = i;
                f->spf = v == 0 ? 1152 : 576;
                f->side_info = v == 0 ? (channels == 1 ? 17 : 32) : (channels == 1 ? 9 : 17);
                return 0;
            }
    return -1;
}

static int mp3_bitrate_index(const struct mp3_format *f, unsigned kbps)
{
    for (int i = 1; i < 15; i++)
        if (talas_mp3_kbps[f->version == 1][i] == kbps)
            return i;
    return -1;
}

static unsigned mp3_frame_bytes(const struct mp3_format *f, unsigned kbps, unsigned rate)
{
    return (f->version == 1 ? 144000 : 72000) * kbps / rate;
}

/* The Info frame: header, side info, "Info" + flags, frames, bytes, TOC,
 * quality, then the 36-byte LAME extension. */
#define INFO_TAG_BYTES (4 + 4 + 4 + 4 + 100 + 4 + 36)

/* The padded frames among the first M frames of a chunk. */
static unsigned popcount_prefix(const struct talas_layout *l, unsigned m)
{
    unsigned n = l->padding_before[m / 8];

    if (m % 8 != 0)
        n += (unsigned)__builtin_popcount(l->padding[m / 8] & ((1u << (m % 8)) - 1));
    return n;
}

/* the frames before chunk R, where full chunks begin */
static uint64_t ramp_frames(const struct talas_layout *l)
{
    uint64_t n = 0;

    for (unsigned i = 0; i < l->ramp_chunks; i++)
        n += l->chunk_frames >> (l->ramp_chunks - i);
    return n;
}

uint64_t talas_layout_chunk_start(const struct talas_layout *l, uint32_t c)
{
    uint64_t first = 0;

    if (c >= l->chunks)
        return l->frames;
    if (c < l->ramp_chunks) {
        for (unsigned i = 0; i < c; i++)
            first += l->chunk_frames >> (l->ramp_chunks - i);
        return first;
    }
    return ramp_frames(l) + (uint64_t)(c - l->ramp_chunks) * l->chunk_frames;
}

unsigned talas_layout_chunk_preroll(const struct talas_profile *p, const struct talas_layout *l, uint32_t c)
{
    uint64_t first = talas_layout_chunk_start(l, c);

    /* A pre-roll of silence before frame 0 would only pull an AAC
     * encoder's rate control away (lambda climbs on silence). */
    if (p->codec == TALAS_CODEC_AAC && l->preroll_frames > first)
        return (unsigned)first;
    return l->preroll_frames;
}

uint32_t talas_layout_chunk_frame_count(const struct talas_layout *l, uint32_t c)
{
    if (c >= l->chunks)
        return 0;
    return (uint32_t)(talas_layout_chunk_start(l, c + 1) - talas_layout_chunk_start(l, c));
}

uint32_t talas_layout_chunk_of_frame(const struct talas_layout *l, uint64_t j)
{
    uint64_t ramp = ramp_frames(l), first = 0;
    uint32_t c;

    if (j >= l->frames)
        return l->chunks - 1;
    if (j >= ramp)
        return l->ramp_chunks + (uint32_t)((j - ramp) / l->chunk_frames);
    for (c = 0; c + 1 < l->ramp_chunks; c++) {
        first += l->chunk_frames >> (l->ramp_chunks - c);
        if (j < first)
            break;
    }
    return c;
}

static uint32_t chunk_frames_of(const struct talas_layout *l, uint32_t c)
{
    return talas_layout_chunk_frame_count(l, c);
}

uint64_t talas_layout_chunk_size(const struct talas_layout *l, uint32_t c)
{
    uint32_t n;

    if (!l->exact_size || c >= l->chunks)
        return 0;
    n = chunk_frames_of(l, c);
    return (uint64_t)n * l->frame_bytes + popcount_prefix(l, n);
}

uint64_t talas_layout_frame_offset(const struct talas_layout *l, uint64_t j)
{
    uint64_t c, m;

    if (!l->exact_size || j > l->frames)
        return UINT64_MAX;
    c = j / l->chunk_frames;
    m = j % l->chunk_frames;
    return l->header_size + c * l->chunk_bytes + m * l->frame_bytes + popcount_prefix(l, m);
}

uint32_t talas_layout_chunk_at(const struct talas_layout *l, uint64_t off)
{
    uint64_t c;

    if (!l->exact_size || off < l->header_size || off >= l->total_size)
        return UINT32_MAX;
    c = (off - l->header_size) / l->chunk_bytes;
    return c >= l->chunks ? l->chunks - 1 : (uint32_t)c;
}

int talas_layout_compute(const struct talas_profile *p, const struct talas_source_info *src,
                         const struct talas_window *win, struct talas_layout *l_r, char **error_r)
{
    struct talas_layout l;
    uint64_t length, chunk_frames, chunk_ms;

    memset(&l, 0, sizeof(l));
    if (src->sample_rate == 0 || src->channels == 0) {
        *error_r = xasprintf("source has no sample rate or channels");
        return -1;
    }
    if (p->channels < 1 || p->channels > 2 || p->sample_rate < 8000 || p->sample_rate > 48000) {
        *error_r = xasprintf("profile %s: unsupported channels or sample rate", p->name);
        return -1;
    }
    l.source = *src;
    if (win != NULL) {
        if (win->start >= src->samples) {
            *error_r = xasprintf("window starts after the end of the source");
            return -1;
        }
        l.window = *win;
        if (l.window.length > src->samples - win->start)
            l.window.length = src->samples - win->start;
    } else {
        l.window.start = 0;
        l.window.length = src->samples;
        l.window.fade = 0;
    }
    length = l.window.length;
    l.out_rate = p->sample_rate;
    l.out_channels = p->channels;
    l.out_samples = (length * p->sample_rate + src->sample_rate / 2) / src->sample_rate;
    l.fade_out = (l.window.fade * p->sample_rate + src->sample_rate / 2) / src->sample_rate;
    if (l.fade_out * 2 > l.out_samples)
        l.fade_out = l.out_samples / 2;
    {
        uint64_t aac_ms = p->normalize_dlu != 0 ? TALAS_TRANSCODE_PREROLL_AAC_NORMALIZED_MS
                                                : TALAS_TRANSCODE_PREROLL_AAC_MS;

        l.preroll_frames = p->codec == TALAS_CODEC_MP3
                               ? TALAS_TRANSCODE_PREROLL
                               : (unsigned)((aac_ms * p->sample_rate + 1023999) / 1024000);
    }

    if (p->codec == TALAS_CODEC_MP3) {
        struct mp3_format f;
        unsigned kbps = p->bitrate / 1000, slot_lag, frac;
        int info_idx;

        if (mp3_format(p->sample_rate, p->channels, &f) < 0 || p->bitrate % 1000 != 0 ||
            mp3_bitrate_index(&f, kbps) < 0) {
            *error_r = xasprintf("profile %s: %u bit/s at %u Hz is not an MP3 bitrate", p->name, p->bitrate,
                                 p->sample_rate);
            return -1;
        }
        l.frame_samples = f.spf;
        /* libmp3lame's initial_padding: LAME's 576-sample encoder delay
         * plus the 529 samples of decoder delay the LAME tag convention
         * adds (checked against the opened encoder on every chunk) */
        l.encoder_delay = 576 + 529;
        l.frame_bytes = mp3_frame_bytes(&f, kbps, p->sample_rate);
        /* The Info frame: the profile's bitrate unless its frames are too
         * small for the tag (very low bitrates) */
        info_idx = mp3_bitrate_index(&f, kbps);
        while (info_idx < 14 && mp3_frame_bytes(&f, talas_mp3_kbps[f.version == 1][info_idx],
                                                p->sample_rate) < 4 + f.side_info + INFO_TAG_BYTES)
            info_idx++;
        l.header_size = mp3_frame_bytes(&f, talas_mp3_kbps[f.version == 1][info_idx], p->sample_rate);
        l.exact_size = 1;
        chunk_frames = (CHUNK_SECONDS * (uint64_t)p->sample_rate + f.spf / 2) / f.spf;
        if (chunk_frames < 1 || chunk_frames > TALAS_LAYOUT_MAX_CHUNK_FRAMES) {
            *error_r = xasprintf("profile %s: chunk of %" PRIu64 " frames", p->name, chunk_frames);
            return -1;
        }
        /* LAME's CBR padding (ISO 11172-3 2.4.3.1, as lame_encode_mp3_frame
         * does it): slot_lag starts at frac and each frame subtracts frac,
         * padding when it goes negative. A fresh encoder per chunk restarts
         * the sequence, so every chunk has the same pattern after its
         * pre-roll. */
        frac = (unsigned)(((f.version == 1 ? 2 : 1) * 72000ull * kbps) % p->sample_rate);
        slot_lag = frac;
        for (unsigned q = 0; q < l.preroll_frames + chunk_frames; q++) {
            int pad = 0;

            if (frac != 0) {
                if (slot_lag < frac) {
                    slot_lag = slot_lag + p->sample_rate - frac;
                    pad = 1;
                } else {
                    slot_lag -= frac;
                }
            }
            if (pad && q >= l.preroll_frames)
                l.padding[(q - l.preroll_frames) / 8] |= 1u << ((q - l.preroll_frames) % 8);
        }
        for (unsigned i = 0; i < TALAS_LAYOUT_MAX_CHUNK_FRAMES / 8; i++)
            l.padding_before[i + 1] = (uint16_t)(l.padding_before[i] + __builtin_popcount(l.padding[i]));
    } else {
        l.frame_samples = 1024;
        l.encoder_delay = 1024; /* the aac encoder's initial_padding */
        l.exact_size = 0;
        chunk_ms = p->chunk_ms != 0 ? p->chunk_ms : CHUNK_SECONDS * 1000;
        chunk_frames = (chunk_ms * (uint64_t)p->sample_rate + 512000) / 1024000;
        if (chunk_frames < 1 || chunk_frames > TALAS_LAYOUT_MAX_CHUNK_FRAMES) {
            *error_r = xasprintf("profile %s: chunk of %" PRIu64 " frames", p->name, chunk_frames);
            return -1;
        }
        /* the shortest first chunk worth a request: encoded in a few ms */
        while (l.ramp_chunks < RAMP_MAX && (chunk_frames >> (l.ramp_chunks + 1)) >= RAMP_MIN_FRAMES)
            l.ramp_chunks++;
    }
    l.chunk_frames = (unsigned)chunk_frames;
    l.frames = (l.encoder_delay + l.out_samples + l.frame_samples - 1) / l.frame_samples;
    if ((l.frames + l.chunk_frames - 1) / l.chunk_frames > UINT32_MAX - 1 - RAMP_MAX) {
        *error_r = xasprintf("source too long");
        return -1;
    }
    {
        uint64_t ramp = ramp_frames(&l), first = 0;

        if (l.frames > ramp) {
            l.chunks = l.ramp_chunks + (uint32_t)((l.frames - ramp + l.chunk_frames - 1) / l.chunk_frames);
        } else {
            /* a stream shorter than the ramp: its first chunks */
            for (l.chunks = 0; first < l.frames; l.chunks++)
                first += l.chunk_frames >> (l.ramp_chunks - l.chunks);
        }
    }
    if (l.exact_size) {
        l.chunk_bytes = (uint64_t)l.chunk_frames * l.frame_bytes + popcount_prefix(&l, l.chunk_frames);
        l.total_size = talas_layout_frame_offset(&l, l.frames);
    }
    *l_r = l;
    return 0;
}

/* ------------------------------------------------------------ header */

static uint16_t crc16_a001(const uint8_t *p, size_t n)
{
    uint16_t crc = 0;

    while (n-- > 0) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc & 1) ? (crc >> 1) ^ 0xA001 : crc >> 1;
    }
    return crc;
}

int talas_transcode_header(const struct talas_profile *p, const struct talas_layout *l, struct talas_buf *out)
{
    struct mp3_format f;
    uint8_t frame[2048], *x, *lame;
    unsigned kbps, enc_delay, pad;
    int bitrate_idx = -1;
    uint64_t music;

    if (p->codec == TALAS_CODEC_AAC)
        return l->exact_size ? -1 : 0;
    if (!l->exact_size || mp3_format(p->sample_rate, p->channels, &f) < 0 || l->header_size > sizeof(frame) ||
        l->encoder_delay < 529)
        return -1;
    for (int i = 1; i < 15; i++)
        if (mp3_frame_bytes(&f, talas_mp3_kbps[f.version == 1][i], p->sample_rate) == l->header_size)
            bitrate_idx = i;
    if (bitrate_idx < 0)
        return -1;
    kbps = p->bitrate / 1000;
    memset(frame, 0, l->header_size);
    frame[0] = 0xFF;
    frame[1] = f.version == 1 ? 0xFB : f.version == 0 ? 0xF3 : 0xE3; /* layer III, no CRC */
    frame[2] = (uint8_t)(bitrate_idx << 4 | f.rate_idx << 2);
    /* joint stereo (LAME's default) or mono; "original" set, as LAME does */
    frame[3] = (uint8_t)((p->channels == 1 ? 3 : 1) << 6 | 1 << 2);
    x = frame + 4 + f.side_info;
    memcpy(x, "Info", 4);
    AV_WB32(x + 4, 0x0F); /* frames, bytes, TOC, quality */
    AV_WB32(x + 8, (uint32_t)l->frames);
    AV_WB32(x + 12, (uint32_t)l->total_size);
    for (unsigned i = 0; i < 100; i++) {
        uint64_t off = talas_layout_frame_offset(l, (uint64_t)i * l->frames / 100);
        uint64_t v = off * 256 / l->total_size;

        x[16 + i] = (uint8_t)(v > 255 ? 255 : v);
    }
    AV_WB32(x + 116, 0);
    lame = x + 120;
    memcpy(lame, "LAME3.100", 9);
    lame[9] = 0x01;                                /* tag revision 0, CBR */
    lame[20] = (uint8_t)(kbps > 255 ? 255 : kbps); /* bitrate */
    /* the tag's delay excludes the decoder's 529 samples; decoders skip
     * delay + 529 and keep frames * spf - delay - padding samples */
    enc_delay = l->encoder_delay - 529;
    pad = (unsigned)(l->frames * l->frame_samples - l->encoder_delay - l->out_samples) + 529;
    if (enc_delay > 4095 || pad > 4095)
        return -1;
    lame[21] = (uint8_t)(enc_delay >> 4);
    lame[22] = (uint8_t)((enc_delay & 0xF) << 4 | pad >> 8);
    lame[23] = (uint8_t)(pad & 0xFF);
    /* misc: source sample frequency (00 <= 32 kHz, 01 44.1, 10 48) */
    lame[24] = (uint8_t)((p->sample_rate == 44100 ? 1 : p->sample_rate == 48000 ? 2 : 0) << 6);
    music = l->total_size;
    AV_WB32(lame + 28, (uint32_t)music);
    /* lame + 32: CRC of the music, unknown before encoding: 0 */
    AV_WB16(lame + 34, crc16_a001(frame, (size_t)(lame + 34 - frame)));
    talas_buf_append(out, frame, l->header_size);
    return 0;
}

/* ------------------------------------------------------------ source */

struct source {
    const char *path;
    struct io_guard *guard;
    AVFormatContext *fmt;
    AVStream *st;
    AVCodecContext *dec;
    AVPacket *pkt;
    AVFrame *frame;
    int have_frame;    /* frame holds samples not yet consumed */
    int64_t frame_pos; /* position of the frame's first sample */
    int positioned;    /* frame_pos / next_pos are known */
    int64_t next_pos;  /* where the next frame should start */
    int64_t origin;    /* pts of sample 0 */
    int64_t limit;     /* positions >= limit are silence */
    unsigned rate;
    int eof, flushed;
    /* the format every frame must have (the resampler's input) */
    enum AVSampleFormat sample_fmt;
    AVChannelLayout layout;
    int planar, bytes_per_sample;
    /* incomplete-source accounting, over [watch_from, watch_to) */
    int64_t watch_from, watch_to;
    int64_t decoded_to; /* end of the last placed frame */
    unsigned errors;
    uint8_t **zeros; /* silence in the input format, RUN_MAX samples */
    const uint8_t **planes;
};

static void source_close(struct source *s)
{
    av_frame_free(&s->frame);
    av_packet_free(&s->pkt);
    avcodec_free_context(&s->dec);
    talas_media_close(&s->fmt);
}

static void source_free(struct source *s)
{
    source_close(s);
    if (s->zeros != NULL) {
        av_freep(&s->zeros[0]);
        av_freep(&s->zeros);
    }
    free(s->planes);
    s->planes = NULL;
    av_channel_layout_uninit(&s->layout);
}

static int64_t pts_to_pos(const struct source *s, int64_t pts)
{
    return av_rescale_q_rnd(pts - s->origin, s->st->time_base, (AVRational){1, s->rate},
                            AV_ROUND_NEAR_INF | AV_ROUND_PASS_MINMAX);
}

/* Decodes the next frame into s->frame and places it. Returns 1, 0 at the
 * end of the stream, or -1 (interrupted, or a fatal decoder error). */
static int source_next_frame(struct source *s, char **error_r)
{
    int ret;

    for (;;) {
        ret = avcodec_receive_frame(s->dec, s->frame);
        if (ret == 0) {
            int64_t pts = s->frame->pts != AV_NOPTS_VALUE ? s->frame->pts : s->frame->best_effort_timestamp;

            if (s->frame->nb_samples <= 0) {
                av_frame_unref(s->frame);
                continue;
            }
            if (s->frame->format != s->sample_fmt ||
                av_channel_layout_compare(&s->frame->ch_layout, &s->layout) != 0 ||
                s->frame->sample_rate != (int)s->rate) {
                /* a mid-stream format change: left as a gap of silence */
                if (s->positioned)
                    s->next_pos += s->frame->nb_samples;
                s->errors++;
                av_frame_unref(s->frame);
                continue;
            }
            if (!s->positioned) {
                if (pts == AV_NOPTS_VALUE) {
                    av_frame_unref(s->frame);
                    continue;
                }
                s->frame_pos = pts_to_pos(s, pts);
                s->positioned = 1;
            } else {
                s->frame_pos = s->next_pos;
                if (pts != AV_NOPTS_VALUE) {
                    int64_t p = pts_to_pos(s, pts);

                    if (p > s->next_pos + PTS_TOLERANCE || p < s->next_pos - PTS_TOLERANCE)
                        s->frame_pos = p;
                }
            }
            s->next_pos = s->frame_pos + s->frame->nb_samples;
            if (s->next_pos > s->decoded_to)
                s->decoded_to = s->next_pos;
            s->have_frame = 1;
            return 1;
        }
        if (ret == AVERROR_EOF)
            return 0;
        if (ret != AVERROR(EAGAIN)) {
            /* a packet that does not decode: skipped, counted */
            if (s->next_pos >= s->watch_from && s->next_pos < s->watch_to)
                s->errors++;
            continue;
        }
        if (s->eof) {
            if (s->flushed)
                return 0;
            s->flushed = 1;
            avcodec_send_packet(s->dec, NULL);
            continue;
        }
        ret = av_read_frame(s->fmt, s->pkt);
        if (ret < 0) {
            if (io_interrupt(s->guard)) {
                *error_r = xasprintf("%s: interrupted", s->path);
                return -1;
            }
            if (ret != AVERROR_EOF && s->next_pos < s->watch_to)
                s->errors++;
            s->eof = 1;
            continue;
        }
        if (s->pkt->stream_index == s->st->index) {
            ret = avcodec_send_packet(s->dec, s->pkt);
            if (ret < 0 && ret != AVERROR(EAGAIN)) {
                int64_t p = s->pkt->pts != AV_NOPTS_VALUE ? pts_to_pos(s, s->pkt->pts) : s->next_pos;

                if (p >= s->watch_from && p < s->watch_to)
                    s->errors++;
            }
        }
        av_packet_unref(s->pkt);
    }
}

/* Opens the file and its decoder, and decodes the first frame: its pts is
 * the origin of sample positions, as in a decode from the start. */
static int source_open(struct source *s, char **error_r)
{
    const AVCodec *codec;
    int ret;

    s->have_frame = s->positioned = s->eof = s->flushed = 0;
    s->next_pos = s->frame_pos = 0;
    if (input_open(s->path, s->guard, &s->fmt, &s->st, error_r) < 0)
        return -1;
    codec = avcodec_find_decoder(s->st->codecpar->codec_id);
    if (codec == NULL) {
        *error_r = xasprintf("%s: no decoder for %s", s->path, avcodec_get_name(s->st->codecpar->codec_id));
        goto fail;
    }
    s->dec = avcodec_alloc_context3(codec);
    s->pkt = av_packet_alloc();
    s->frame = av_frame_alloc();
    if (s->dec == NULL || s->pkt == NULL || s->frame == NULL)
        fatal("%s: libav allocation failed", __func__);
    ret = avcodec_parameters_to_context(s->dec, s->st->codecpar);
    if (ret < 0) {
        *error_r = av_error(s->path, "avcodec_parameters_to_context() failed", ret);
        goto fail;
    }
    s->dec->pkt_timebase = s->st->time_base;
    s->dec->thread_count = 1;
    ret = avcodec_open2(s->dec, codec, NULL);
    if (ret < 0) {
        *error_r = av_error(s->path, "cannot open the decoder", ret);
        goto fail;
    }
    /* the format is only known for sure once a frame is out */
    for (;;) {
        ret = avcodec_receive_frame(s->dec, s->frame);
        if (ret == 0 && s->frame->nb_samples > 0)
            break;
        if (ret == 0) {
            av_frame_unref(s->frame);
            continue;
        }
        if (ret == AVERROR_EOF) {
            *error_r = xasprintf("%s: no audio decodes", s->path);
            goto fail;
        }
        if (ret != AVERROR(EAGAIN)) {
            s->errors++;
            continue;
        }
        if (s->eof) {
            if (s->flushed) {
                *error_r = xasprintf("%s: no audio decodes", s->path);
                goto fail;
            }
            s->flushed = 1;
            avcodec_send_packet(s->dec, NULL);
            continue;
        }
        ret = av_read_frame(s->fmt, s->pkt);
        if (ret < 0) {
            if (io_interrupt(s->guard)) {
                *error_r = xasprintf("%s: interrupted", s->path);
                goto fail;
            }
            s->eof = 1;
            continue;
        }
        if (s->pkt->stream_index == s->st->index)
            avcodec_send_packet(s->dec, s->pkt);
        av_packet_unref(s->pkt);
    }
    if (s->sample_fmt == AV_SAMPLE_FMT_NONE) {
        s->sample_fmt = s->frame->format;
        s->rate = s->frame->sample_rate;
        if (s->frame->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC)
            av_channel_layout_default(&s->layout, s->frame->ch_layout.nb_channels);
        else
            av_channel_layout_copy(&s->layout, &s->frame->ch_layout);
        s->planar = av_sample_fmt_is_planar(s->sample_fmt);
        s->bytes_per_sample = av_get_bytes_per_sample(s->sample_fmt);
    } else if (s->frame->format != s->sample_fmt || s->frame->sample_rate != (int)s->rate) {
        *error_r = xasprintf("%s: decoded format differs from the first open", s->path);
        goto fail;
    }
    if (s->frame->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC) {
        /* frames carry what the decoder says: compare against that */
        av_channel_layout_uninit(&s->layout);
        av_channel_layout_copy(&s->layout, &s->frame->ch_layout);
    }
    {
        int64_t pts = s->frame->pts != AV_NOPTS_VALUE ? s->frame->pts : s->frame->best_effort_timestamp;

        s->origin = pts != AV_NOPTS_VALUE ? pts : 0;
    }
    s->frame_pos = 0;
    s->next_pos = s->frame->nb_samples;
    s->decoded_to = s->next_pos;
    s->have_frame = 1;
    return 0;
fail:
    source_close(s);
    return -1;
}

/* Positions the source so that the next samples returned start at or
 * before position N: a seek a margin before N, a retry further back, else
 * a decode from the start. */
static int source_prepare(struct source *s, int64_t n, char **error_r)
{
    static const int margins_ms[] = {SEEK_MARGIN_MS, SEEK_RETRY_MARGIN_MS};
    int64_t origin = s->origin;
    int seeked = 0;

    for (size_t attempt = 0; attempt < TALAS_ARRAY_SIZE(margins_ms); attempt++) {
        int64_t target = n - (int64_t)s->rate * margins_ms[attempt] / 1000;
        int ret;

        if (target <= 0)
            break;
        ret = av_seek_frame(s->fmt, s->st->index,
                            origin + av_rescale_q(target, (AVRational){1, s->rate}, s->st->time_base),
                            AVSEEK_FLAG_BACKWARD);
        if (ret < 0)
            break;
        seeked = 1;
        avcodec_flush_buffers(s->dec);
        av_frame_unref(s->frame);
        s->have_frame = s->positioned = s->eof = s->flushed = 0;
        ret = source_next_frame(s, error_r);
        if (ret < 0)
            return -1;
        /* nothing decodes from there on: the source ends before N */
        if (ret == 0 || s->frame_pos <= n)
            return 0;
    }
    if (!seeked)
        return 0; /* still at the start, where source_open left it */
    /* decode from the start: reopen, so the decoder state is a fresh one */
    source_close(s);
    if (source_open(s, error_r) < 0)
        return -1;
    s->origin = origin;
    return 0;
}

static int source_zeros(struct source *s, int64_t len)
{
    for (int ch = 0; ch < (s->planar ? s->layout.nb_channels : 1); ch++)
        s->planes[ch] = s->zeros[ch];
    return (int)len;
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* Points s->planes at a run of samples starting at position N (the next
 * one wanted), at most MAX long; returns its length (> 0) or -1. */
static int source_take(struct source *s, int64_t n, int max, char **error_r)
{
    int channels = s->layout.nb_channels;

    for (;;) {
        int64_t frame_end, off;

        if (n < 0)
            return source_zeros(s, min64(max, -n));
        if (n >= s->limit)
            return source_zeros(s, max);
        if (!s->have_frame) {
            int ret = source_next_frame(s, error_r);

            if (ret < 0)
                return -1;
            if (ret == 0)
                return source_zeros(s, min64(max, s->limit - n));
            continue;
        }
        frame_end = s->frame_pos + s->frame->nb_samples;
        if (n >= frame_end) {
            av_frame_unref(s->frame);
            s->have_frame = 0;
            continue;
        }
        if (n < s->frame_pos)
            return source_zeros(s, min64(min64(max, s->frame_pos - n), s->limit - n));
        off = n - s->frame_pos;
        for (int ch = 0; ch < (s->planar ? channels : 1); ch++)
            s->planes[ch] =
                s->frame->extended_data[ch] + off * s->bytes_per_sample * (s->planar ? 1 : channels);
        return (int)(min64(min64(frame_end, n + max), s->limit) - n);
    }
}

/* ------------------------------------------------------------ chunk */

struct chunk_job {
    const struct talas_profile *p;
    const struct talas_layout *l;
    struct source src;
    SwrContext *swr;
    /* resampled, planar float, positions [buf_pos, buf_pos + buf_len) */
    float *buf[2];
    int buf_start, buf_len, buf_cap;
    int64_t buf_pos;
    int64_t in_next; /* next source position to feed */
    AVCodecContext *enc;
    AVFrame *eframe;
    AVPacket *epkt;
    /* the loudness stage (p->normalize_dlu), fed from its own frame */
    struct talas_normalizer *norm;
    float *norm_in[2];
    /* a queue (talas_transcode_queue_chunk): one reader per track, each a
     * job of its own over the track's layout, opened when the encoder
     * first needs that track and closed once it is past it */
    const struct talas_queue *queue;
    struct chunk_job *parts;
    struct io_guard *guard;
    unsigned part_errors;
};

static int encoder_open(const struct talas_profile *p, const struct talas_layout *l, AVCodecContext **enc_r,
                        char **error_r)
{
    const AVCodec *codec = avcodec_find_encoder_by_name(p->codec == TALAS_CODEC_MP3 ? "libmp3lame" : "aac");
    AVCodecContext *enc;
    AVDictionary *opts = NULL;
    int ret;

    if (codec == NULL) {
        *error_r = xasprintf("encoder %s not available", p->codec == TALAS_CODEC_MP3 ? "libmp3lame" : "aac");
        return -1;
    }
    enc = avcodec_alloc_context3(codec);
    if (enc == NULL)
        fatal("%s: avcodec_alloc_context3() failed", __func__);
    enc->bit_rate = p->bitrate;
    enc->sample_rate = (int)p->sample_rate;
    av_channel_layout_default(&enc->ch_layout, (int)p->channels);
    enc->sample_fmt = AV_SAMPLE_FMT_FLTP;
    enc->time_base = (AVRational){1, (int)p->sample_rate};
    enc->thread_count = 1;
    if (p->codec == TALAS_CODEC_MP3)
        /* every frame's main data inside the frame: chunks concatenate */
        av_dict_set(&opts, "reservoir", "0", 0);
    else
        enc->profile = FF_PROFILE_AAC_LOW;
    ret = avcodec_open2(enc, codec, &opts);
    av_dict_free(&opts);
    if (ret < 0) {
        char msg[AV_ERROR_MAX_STRING_SIZE];

        av_strerror(ret, msg, sizeof(msg));
        *error_r = xasprintf("profile %s: cannot open the encoder: %s", p->name, msg);
        avcodec_free_context(&enc);
        return -1;
    }
    if (enc->initial_padding != (int)l->encoder_delay || (enc->frame_size != (int)l->frame_samples)) {
        *error_r = xasprintf("profile %s: encoder delay %d / frame %d, layout says %u / %u", p->name,
                             enc->initial_padding, enc->frame_size, l->encoder_delay, l->frame_samples);
        avcodec_free_context(&enc);
        return -1;
    }
    *enc_r = enc;
    return 0;
}

/* Drops the resampled samples before position I. */
static void resample_drop(struct chunk_job *job, int64_t i)
{
    if (i > job->buf_pos) {
        int drop = i - job->buf_pos > job->buf_len ? job->buf_len : (int)(i - job->buf_pos);

        job->buf_start += drop;
        job->buf_len -= drop;
        job->buf_pos += drop;
    }
}

/* Makes the resampled output hold positions [I, I + N). */
static int resample_fill(struct chunk_job *job, int64_t i, int n, char **error_r)
{
    int channels = (int)job->l->out_channels;

    resample_drop(job, i);
    while (job->buf_pos + job->buf_len < i + n) {
        int len = source_take(&job->src, job->in_next, RUN_MAX, error_r);
        int need, got;
        uint8_t *outp[2];

        if (len < 0)
            return -1;
        need = swr_get_out_samples(job->swr, len);
        if (job->buf_start + job->buf_len + need > job->buf_cap) {
            /* compact only when out of room: a memmove per frame showed in
             * profiles */
            if (job->buf_len > 0 && job->buf_start > 0)
                for (int ch = 0; ch < channels; ch++)
                    memmove(job->buf[ch], job->buf[ch] + job->buf_start,
                            (size_t)job->buf_len * sizeof(float));
            job->buf_start = 0;
            if (job->buf_len + need > job->buf_cap) {
                job->buf_cap = 2 * (job->buf_len + need) + 4096;
                for (int ch = 0; ch < channels; ch++)
                    job->buf[ch] = xrealloc(job->buf[ch], (size_t)job->buf_cap * sizeof(float));
            }
        }
        for (int ch = 0; ch < channels; ch++)
            outp[ch] = (uint8_t *)(job->buf[ch] + job->buf_start + job->buf_len);
        got = swr_convert(job->swr, outp, job->buf_cap - job->buf_start - job->buf_len, job->src.planes, len);
        if (got < 0) {
            *error_r = av_error(job->src.path, "swr_convert() failed", got);
            return -1;
        }
        job->in_next += len;
        job->buf_len += got;
        /* the instance's first outputs (before I) are warm-up */
        resample_drop(job, i);
    }
    return 0;
}

static void adts_header(uint8_t h[7], const struct talas_profile *p, size_t payload)
{
    static const unsigned rates[] = {96000, 88200, 64000, 48000, 44100, 32000, 24000,
                                     22050, 16000, 12000, 11025, 8000,  7350};
    unsigned idx = 15, len = (unsigned)payload + 7;

    for (unsigned i = 0; i < TALAS_ARRAY_SIZE(rates); i++)
        if (rates[i] == p->sample_rate)
            idx = i;
    h[0] = 0xFF;
    h[1] = 0xF1;                                            /* MPEG-4, layer 0, no CRC */
    h[2] = (uint8_t)(1 << 6 | idx << 2 | p->channels >> 2); /* AAC LC */
    h[3] = (uint8_t)((p->channels & 3) << 6 | len >> 11);
    h[4] = (uint8_t)(len >> 3);
    h[5] = (uint8_t)((len & 7) << 5 | 0x1F); /* buffer fullness 0x7FF: VBR */
    h[6] = 0xFC;
}

static void chunk_job_free(struct chunk_job *job)
{
    source_free(&job->src);
    swr_free(&job->swr);
    free(job->buf[0]);
    free(job->buf[1]);
    av_frame_free(&job->eframe);
    av_packet_free(&job->epkt);
    avcodec_free_context(&job->enc);
    talas_normalizer_free(job->norm);
    free(job->norm_in[0]);
    free(job->norm_in[1]);
    if (job->parts != NULL) {
        for (size_t t = 0; t < job->queue->count; t++)
            chunk_job_free(&job->parts[t]);
        free(job->parts);
        job->parts = NULL;
    }
}

/* The encoder's input before normalization, positions [I0, I0 + N) into
 * DST: resampled source, zero outside [0, out_samples), with the window's
 * fades. */
static int signal_frame(struct chunk_job *job, int64_t i0, unsigned n, float *const *dst, char **error_r)
{
    const struct talas_layout *l = job->l;
    int64_t x_end = (int64_t)l->out_samples;

    if (i0 + (int64_t)n <= 0 || i0 >= x_end) {
        for (unsigned ch = 0; ch < l->out_channels; ch++)
            memset(dst[ch], 0, n * sizeof(float));
        return 0;
    }
    if (resample_fill(job, i0, (int)n, error_r) < 0)
        return -1;
    for (unsigned ch = 0; ch < l->out_channels; ch++) {
        const float *src = job->buf[ch] + job->buf_start + (i0 - job->buf_pos);

        if (l->fade_out == 0 && i0 >= 0 && i0 + (int64_t)n <= x_end) {
            memcpy(dst[ch], src, n * sizeof(float));
            continue;
        }
        for (unsigned k = 0; k < n; k++) {
            int64_t i = i0 + k;
            float v = (i < 0 || i >= x_end) ? 0.0f : src[k];

            if (l->fade_out > 0 && i >= 0 && i < x_end) {
                if (i < (int64_t)l->fade_out)
                    v *= (float)((double)(i + 0.5) / (double)l->fade_out);
                if (x_end - i <= (int64_t)l->fade_out)
                    v *= (float)((double)(x_end - i - 0.5) / (double)l->fade_out);
            }
            dst[ch][k] = v;
        }
    }
    return 0;
}

/* Opens JOB's reader of PATH (JOB->l is its layout, JOB->p the profile):
 * the demuxer and decoder positioned before output sample S_IN, and the
 * resampler, which starts on the block grid where source and output
 * samples coincide, warm-up output samples early (so that any two readers
 * compute the same samples past their warm-up). Decode errors in source
 * samples [WATCH_FROM, WATCH_TO) are counted in job->src.errors. Returns 0,
 * or -1 with *error_r malloc'd. */
static int reader_open(struct chunk_job *job, const char *path, int64_t s_in, struct io_guard *guard,
                       int64_t watch_from, int64_t watch_to, char **error_r)
{
    const struct talas_layout *l = job->l;
    uint64_t in_rate = l->source.sample_rate, out_rate = l->out_rate, g = gcd_u64(in_rate, out_rate);
    int64_t istep = (int64_t)(in_rate / g), ostep = (int64_t)(out_rate / g),
            warm = 64 + 32 * (int64_t)((out_rate + in_rate - 1) / in_rate), b0;
    int ret;

    b0 = floor_div(s_in - warm, ostep);
    job->buf_pos = b0 * ostep;
    job->in_next = (int64_t)l->window.start + b0 * istep;
    job->src.path = path;
    job->src.guard = guard;
    job->src.sample_fmt = AV_SAMPLE_FMT_NONE;
    job->src.limit = (int64_t)l->source.samples;
    job->src.watch_from = watch_from;
    job->src.watch_to = watch_to;
    if (source_open(&job->src, error_r) < 0)
        return -1;
    if (job->src.rate != in_rate || job->src.layout.nb_channels != (int)l->source.channels) {
        *error_r = xasprintf("%s: decodes as %u Hz %d ch, measured %u Hz %u ch", path, job->src.rate,
                             job->src.layout.nb_channels, l->source.sample_rate, l->source.channels);
        return -1;
    }
    {
        int channels = job->src.layout.nb_channels;

        if (av_samples_alloc_array_and_samples(&job->src.zeros, NULL, channels, RUN_MAX, job->src.sample_fmt,
                                               0) < 0)
            fatal("%s: av_samples_alloc failed", __func__);
        av_samples_set_silence(job->src.zeros, 0, RUN_MAX, channels, job->src.sample_fmt);
        job->src.planes = xcalloc((size_t)channels, sizeof(*job->src.planes));
    }
    job->src.errors = 0;
    if (job->in_next > 0 && source_prepare(&job->src, job->in_next, error_r) < 0)
        return -1;
    /* as frame_converts checked before the response began */
    ret = resampler_open(&job->swr, &job->src.layout, job->src.sample_fmt, (unsigned)in_rate, l->out_channels,
                         (unsigned)out_rate);
    if (ret < 0) {
        *error_r = av_error(path, "cannot set up the resampler", ret);
        return -1;
    }
    return 0;
}

/* The queue's signal, timeline positions [I0, I0 + N) into DST: each
 * track's own signal (signal_frame over its layout) where it plays, one
 * after the other with nothing between them, zero outside the timeline. */
static int queue_signal(struct chunk_job *job, int64_t i0, unsigned n, float *const *dst, char **error_r)
{
    const struct talas_queue *q = job->queue;
    int64_t end = i0 + (int64_t)n, at = i0 < 0 ? 0 : i0;
    unsigned channels = job->l->out_channels;

    for (unsigned ch = 0; ch < channels; ch++)
        memset(dst[ch], 0, n * sizeof(float));
    while (at < end && (uint64_t)at < q->total) {
        size_t t = talas_queue_track_at(q, (uint64_t)at);
        const struct talas_queue_track *tr = &q->tracks[t];
        struct chunk_job *part = &job->parts[t];
        int64_t local = at - (int64_t)tr->start, left = (int64_t)tr->layout.out_samples - local;
        int64_t len = left < end - at ? left : end - at;
        float *sub[2];

        if (len <= 0) {
            /* never with talas_queue_place's timeline, which has no holes */
            *error_r = xasprintf("queue: no track at sample %" PRId64, at);
            return -1;
        }
        /* the tracks before are done with: one file open at a time, mostly */
        for (size_t k = 0; k < t; k++)
            if (job->parts[k].l != NULL) {
                job->part_errors += job->parts[k].src.errors;
                chunk_job_free(&job->parts[k]);
                memset(&job->parts[k], 0, sizeof(job->parts[k]));
                job->parts[k].l = NULL;
            }
        if (part->l == NULL) {
            part->p = job->p;
            part->l = &tr->layout;
            int64_t samples = (int64_t)tr->layout.source.samples;

            if (reader_open(part, tr->path, local, job->guard, 0, samples, error_r) < 0)
                return -1;
        }
        for (unsigned ch = 0; ch < channels; ch++)
            sub[ch] = dst[ch] + (at - i0);
        if (signal_frame(part, local, (unsigned)len, sub, error_r) < 0)
            return -1;
        at += len;
    }
    return 0;
}

/* The encoder's input, positions [I0, I0 + N) into DST: the signal, or
 * with normalization the loudness stage's output, fed as far as needed. */
static int encoder_input(struct chunk_job *job, int64_t i0, unsigned n, float *const *dst, char **error_r)
{
    int ret;

    if (job->queue != NULL)
        return queue_signal(job, i0, n, dst, error_r);
    if (job->norm == NULL)
        return signal_frame(job, i0, n, dst, error_r);
    while ((ret = talas_normalizer_read(job->norm, i0, n, dst)) == 0) {
        int64_t at = talas_normalizer_next_input(job->norm);

        if (signal_frame(job, at, n, job->norm_in, error_r) < 0 ||
            talas_normalizer_feed(job->norm, (const float *const *)job->norm_in, n, error_r) < 0)
            return -1;
    }
    if (ret < 0) {
        *error_r = xasprintf("normalize: samples at %" PRId64 " asked for after later ones", i0);
        return -1;
    }
    return 0;
}

/* Chunk C of the stream L describes, from the file at PATH or, with QUEUE,
 * from the queue's timeline (PATH then only names it in messages). */
static int chunk_encode(const char *path, const struct talas_queue *queue, const struct talas_profile *p,
                        const struct talas_layout *l, uint32_t c, volatile const int *cancel,
                        struct talas_buf *out, uint32_t **frame_sizes_r, char **error_r)
{
    struct io_guard guard = {talas_now_ms() + CHUNK_DEADLINE_MS, cancel};
    struct chunk_job job;
    AVChannelLayout out_layout = {0};
    uint32_t *sizes = NULL;
    uint64_t first, in_rate = l->source.sample_rate, out_rate = l->out_rate;
    int64_t s_out, s_in, need_lo = 0, need_hi = 0;
    uint32_t count, kept = 0, packets = 0, fed = 0;
    const unsigned N = l->frame_samples;
    unsigned P;
    size_t chunk_start = out->len;
    char *err = NULL;
    int ret, result = -1;

    memset(&job, 0, sizeof(job));
    job.p = p;
    job.l = l;
    if (c >= l->chunks || l->out_rate != p->sample_rate || l->out_channels != p->channels ||
        l->source.sample_rate == 0) {
        *error_r = xasprintf("%s: chunk %" PRIu32 " does not belong to this layout/profile", path, c);
        return -1;
    }
    first = talas_layout_chunk_start(l, c);
    count = chunk_frames_of(l, c);
    P = talas_layout_chunk_preroll(p, l, c);
    s_out = ((int64_t)first - P) * N;

    /* the loudness stage starts earlier than the encoder: its limiter must
     * have the continuous stream's state by the encoder's first sample */
    s_in = s_out;
    if (p->normalize_dlu != 0)
        s_in -= (int64_t)(TALAS_NORMALIZE_HISTORY_MS * l->out_rate / 1000);
    if (queue != NULL) {
        job.queue = queue;
        job.guard = &guard;
        job.parts = xcalloc(queue->count > 0 ? queue->count : 1, sizeof(*job.parts));
    } else {
        /* the source span this chunk's frames carry (for INCOMPLETE) */
        need_lo = (int64_t)l->window.start +
                  floor_div(((int64_t)first * N - l->encoder_delay) * (int64_t)in_rate, (int64_t)out_rate);
        need_hi =
            (int64_t)l->window.start +
            floor_div(((int64_t)(first + count) * N - l->encoder_delay) * (int64_t)in_rate + out_rate - 1,
                      (int64_t)out_rate);
        if (need_lo < (int64_t)l->window.start)
            need_lo = (int64_t)l->window.start;
        if (need_hi > (int64_t)(l->window.start + l->window.length))
            need_hi = (int64_t)(l->window.start + l->window.length);
        if (reader_open(&job, path, s_in, &guard, need_lo, need_hi, &err) < 0)
            goto done;
    }
    av_channel_layout_default(&out_layout, (int)p->channels);
    if (encoder_open(p, l, &job.enc, &err) < 0)
        goto done;
    job.eframe = av_frame_alloc();
    job.epkt = av_packet_alloc();
    if (job.eframe == NULL || job.epkt == NULL)
        fatal("%s: libav allocation failed", __func__);
    job.eframe->nb_samples = (int)N;
    job.eframe->format = AV_SAMPLE_FMT_FLTP;
    job.eframe->sample_rate = (int)out_rate;
    av_channel_layout_copy(&job.eframe->ch_layout, &out_layout);
    if (av_frame_get_buffer(job.eframe, 0) < 0)
        fatal("%s: av_frame_get_buffer failed", __func__);
    if (frame_sizes_r != NULL)
        sizes = xmalloc((count ? count : 1) * sizeof(*sizes));
    if (p->normalize_dlu != 0) {
        double margin =
            p->codec == TALAS_CODEC_MP3 ? TALAS_NORMALIZE_MARGIN_MP3_DB : TALAS_NORMALIZE_MARGIN_AAC_DB;
        double ceiling = TALAS_NORMALIZE_PEAK_DBTP - margin;

        if (talas_normalizer_open((unsigned)out_rate, p->channels, p->gain_db, ceiling, s_in, &job.norm,
                                  &err) < 0)
            goto done;
        for (unsigned ch = 0; ch < p->channels; ch++)
            job.norm_in[ch] = xmalloc(N * sizeof(float));
    }
    while (kept < count) {
        int64_t i0 = s_out + (int64_t)fed * N;

        if (cancel != NULL && *cancel) {
            result = TALAS_TRANSCODE_CANCELLED;
            goto done;
        }
        /* the encoder's lookahead is a few frames; more means it is stuck */
        if (fed > P + count + 16) {
            err = xasprintf("%s: encoder produced %" PRIu32 " packets for %" PRIu32 " frames", path, packets,
                            fed);
            goto done;
        }
        if (av_frame_make_writable(job.eframe) < 0)
            fatal("%s: av_frame_make_writable failed", __func__);
        if (encoder_input(&job, i0, N, (float *const *)job.eframe->extended_data, &err) < 0)
            goto done;
        job.eframe->pts = i0;
        ret = avcodec_send_frame(job.enc, job.eframe);
        fed++;
        if (ret < 0) {
            err = av_error(path, "avcodec_send_frame() failed", ret);
            goto done;
        }
        while (kept < count && (ret = avcodec_receive_packet(job.enc, job.epkt)) == 0) {
            if (packets++ >= P) {
                if (p->codec == TALAS_CODEC_MP3) {
                    unsigned want = l->frame_bytes + ((l->padding[kept / 8] >> (kept % 8)) & 1);

                    if ((unsigned)job.epkt->size != want) {
                        err = xasprintf("%s: chunk %" PRIu32 " frame %" PRIu32 ": %d bytes, layout "
                                        "says %u",
                                        path, c, kept, job.epkt->size, want);
                        goto done;
                    }
                    talas_buf_append(out, job.epkt->data, (size_t)job.epkt->size);
                } else {
                    uint8_t h[7];

                    adts_header(h, p, (size_t)job.epkt->size);
                    talas_buf_append(out, h, sizeof(h));
                    talas_buf_append(out, job.epkt->data, (size_t)job.epkt->size);
                }
                if (sizes != NULL)
                    sizes[kept] = (uint32_t)job.epkt->size + (p->codec == TALAS_CODEC_AAC ? 7 : 0);
                kept++;
            }
            av_packet_unref(job.epkt);
        }
        if (ret < 0 && ret != AVERROR(EAGAIN)) {
            err = av_error(path, "avcodec_receive_packet() failed", ret);
            goto done;
        }
    }
    if (l->exact_size && out->len - chunk_start != talas_layout_chunk_size(l, c)) {
        err = xasprintf("%s: chunk %" PRIu32 " is %zu bytes, layout says %" PRIu64, path, c,
                        out->len - chunk_start, talas_layout_chunk_size(l, c));
        goto done;
    }
    result = 0;
    if (queue != NULL) {
        for (size_t t = 0; t < queue->count; t++)
            job.part_errors += job.parts[t].src.errors;
        if (job.part_errors > 0) {
            result = TALAS_TRANSCODE_INCOMPLETE;
            err = xasprintf("%s: chunk %" PRIu32 ": %u decode errors in its tracks (silence there)", path, c,
                            job.part_errors);
        }
    } else if (job.src.errors > 0 || (job.src.eof && job.src.decoded_to < need_hi &&
                                      need_hi <= job.src.limit && job.in_next >= need_hi)) {
        result = TALAS_TRANSCODE_INCOMPLETE;
        if (job.src.errors > 0)
            err =
                xasprintf("%s: chunk %" PRIu32 ": %u decode errors (silence there)", path, c, job.src.errors);
        else
            err = xasprintf("%s: chunk %" PRIu32 ": source ends at %.3f s, before %.3f s (silence "
                            "after)",
                            path, c, (double)job.src.decoded_to / in_rate, (double)need_hi / in_rate);
    }
done:
    if (result == -1 && cancel != NULL && *cancel)
        result = TALAS_TRANSCODE_CANCELLED; /* the interrupted I/O said why */
    if (result == 0 || result == TALAS_TRANSCODE_INCOMPLETE) {
        if (frame_sizes_r != NULL)
            *frame_sizes_r = sizes;
        else
            free(sizes);
    } else {
        free(sizes);
    }
    if (result == -1 || result == TALAS_TRANSCODE_INCOMPLETE)
        *error_r = err != NULL ? err : xasprintf("%s: chunk %" PRIu32 " failed", path, c);
    else
        free(err);
    av_channel_layout_uninit(&out_layout);
    chunk_job_free(&job);
    return result;
}

int talas_transcode_chunk(const char *path, const struct talas_profile *p, const struct talas_layout *l,
                          uint32_t c, volatile const int *cancel, struct talas_buf *out,
                          uint32_t **frame_sizes_r, char **error_r)
{
    return chunk_encode(path, NULL, p, l, c, cancel, out, frame_sizes_r, error_r);
}

int talas_transcode_queue_chunk(const struct talas_queue *q, const struct talas_profile *p,
                                const struct talas_layout *l, uint32_t c, volatile const int *cancel,
                                struct talas_buf *out, uint32_t **frame_sizes_r, char **error_r)
{
    if (p->normalize_dlu != 0 || l->out_samples != q->total) {
        *error_r = xasprintf("queue: chunk %" PRIu32 ": the layout is not the queue's", c);
        return -1;
    }
    return chunk_encode("queue", q, p, l, c, cancel, out, frame_sizes_r, error_r);
}

/* ------------------------------------------------------------- peaks */

/* Sample I of channel CH of FRAME (format FMT) as a float, full scale 1. */
static float sample_at(const AVFrame *frame, enum AVSampleFormat fmt, int channels, int ch, int i)
{
    int planar = av_sample_fmt_is_planar(fmt);
    const uint8_t *p = planar ? frame->extended_data[ch] : frame->extended_data[0];
    size_t at = planar ? (size_t)i : (size_t)i * (size_t)channels + (size_t)ch;

    switch (av_get_packed_sample_fmt(fmt)) {
    case AV_SAMPLE_FMT_U8:
        return ((float)p[at] - 128.0f) / 128.0f;
    case AV_SAMPLE_FMT_S16:
        return (float)((const int16_t *)(const void *)p)[at] / 32768.0f;
    case AV_SAMPLE_FMT_S32:
        return (float)((double)((const int32_t *)(const void *)p)[at] / 2147483648.0);
    case AV_SAMPLE_FMT_S64:
        return (float)((double)((const int64_t *)(const void *)p)[at] / 9223372036854775808.0);
    case AV_SAMPLE_FMT_FLT:
        return ((const float *)(const void *)p)[at];
    case AV_SAMPLE_FMT_DBL:
        return (float)((const double *)(const void *)p)[at];
    default:
        return 0.0f;
    }
}

int talas_source_peaks(const char *path, uint64_t samples, uint32_t buckets, volatile const int *cancel,
                       float *min_r, float *max_r, char **error_r)
{
    struct io_guard guard = {talas_now_ms() + CHUNK_DEADLINE_MS * 4, cancel};
    struct source s;
    int channels, ret = 0;

    if (samples == 0 || buckets == 0) {
        *error_r = xasprintf("%s: no audio samples", path);
        return -1;
    }
    for (uint32_t b = 0; b < buckets; b++) {
        min_r[b] = 1.0f;
        max_r[b] = -1.0f;
    }
    memset(&s, 0, sizeof(s));
    s.path = path;
    s.guard = &guard;
    s.sample_fmt = AV_SAMPLE_FMT_NONE;
    s.limit = (int64_t)samples;
    if (source_open(&s, error_r) < 0) {
        source_free(&s);
        return -1;
    }
    channels = s.layout.nb_channels;
    /* frames are placed by their timestamps, as for a transcode: sample n
     * belongs to bucket n * BUCKETS / SAMPLES; what lies outside
     * [0, samples) (priming, padding) is not the track's */
    do {
        for (int i = 0; i < s.frame->nb_samples; i++) {
            int64_t n = s.frame_pos + i;
            uint32_t b;
            float v = 0.0f;

            if (n < 0 || n >= (int64_t)samples)
                continue;
            for (int ch = 0; ch < channels; ch++)
                v += sample_at(s.frame, s.sample_fmt, channels, ch, i);
            v /= (float)channels;
            b = (uint32_t)((uint64_t)n * buckets / samples);
            if (v < min_r[b])
                min_r[b] = v;
            if (v > max_r[b])
                max_r[b] = v;
        }
        av_frame_unref(s.frame);
    } while ((ret = source_next_frame(&s, error_r)) == 1);
    source_free(&s);
    if (ret < 0)
        return -1;
    /* a bucket nothing decoded into is silence */
    for (uint32_t b = 0; b < buckets; b++)
        if (min_r[b] > max_r[b])
            min_r[b] = max_r[b] = 0.0f;
    return 0;
}
