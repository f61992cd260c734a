/*
 * hls.c - HLS playlists and fMP4 segments (see hls.h).
 *
 * Entry points: talas_hls_bandwidth, talas_hls_ladder_order, talas_hls_master,
 * talas_hls_media_playlist, talas_hls_segment_span, talas_hls_init_segment,
 * talas_hls_media_segment.
 *
 * The boxes are those of ISO/IEC 14496-12 a fragmented audio track needs,
 * written big-endian by hand: ftyp, moov (mvhd, trak with an mp4a sample
 * entry and its esds, mvex/trex) and, per segment, moof (mfhd, traf with
 * tfhd, tfdt, trun) and mdat. Sample durations are the AAC frame (1024)
 * in a timescale of the output sample rate, so every time is exact.
 */
#include <inttypes.h>
#include <string.h>

#include "core/record.h"
#include "media/hls.h"

#define AAC_FRAME 1024

/* ---------------------------------------------------------------- bands */

void talas_hls_bandwidth(const struct talas_profile *p, unsigned *peak_r, unsigned *average_r)
{
    /* per frame: 4 bytes of trun; per segment: about 120 bytes of boxes */
    uint64_t overhead = (uint64_t)p->sample_rate * 32 / AAC_FRAME + 1000;
    uint64_t average = p->bitrate + overhead;

    /* FFmpeg's encoder holds its average over seconds, but spends up to a
     * quarter more on the first frames of a stream: the short first
     * segment is the peak */
    *average_r = (unsigned)average;
    *peak_r = (unsigned)(average * 13 / 10);
}

/* bytes of a segment's boxes besides its frames: moof (mfhd, traf: tfhd,
 * tfdt, trun) and the mdat header; then 4 per frame in trun */
#define SEGMENT_BOXES (8 + 16 + 8 + 20 + 20 + 20 + 8)
#define ADTS_HEADER 7

void talas_hls_measured_bandwidth(uint32_t n, const uint32_t *frames,
                                  uint32_t (*frame_size)(void *, uint32_t, uint32_t), void *arg,
                                  unsigned rate, unsigned encoder_delay, unsigned *peak_r,
                                  unsigned *average_r)
{
    uint64_t total_bytes = 0, total_samples = 0, skip = encoder_delay / AAC_FRAME;
    double peak = 0;

    for (uint32_t c = 0; c < n; c++) {
        uint64_t bytes = SEGMENT_BOXES, kept = 0;
        for (uint32_t i = 0; i < frames[c]; i++) {
            if (skip > 0) {
                skip--;
                continue;
            }
            bytes += frame_size(arg, c, i) - ADTS_HEADER + 4;
            kept++;
        }
        if (kept > 0 && bytes * 8.0 * rate / (double)(kept * AAC_FRAME) > peak)
            peak = bytes * 8.0 * rate / (double)(kept * AAC_FRAME);
        total_bytes += bytes;
        total_samples += kept * AAC_FRAME;
    }
    *peak_r = (unsigned)peak + 1;
    *average_r = total_samples > 0 ? (unsigned)(total_bytes * 8 * rate / total_samples) + 1 : 0;
}

/* ------------------------------------------------------------ playlists */

void talas_hls_ladder_order(struct talas_hls_rung *rungs, size_t n)
{
    struct talas_hls_rung middle;

    if (n == 0)
        return;
    /* highest bitrate first */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && rungs[j].profile->bitrate > rungs[j - 1].profile->bitrate; j--) {
            struct talas_hls_rung t = rungs[j];
            rungs[j] = rungs[j - 1];
            rungs[j - 1] = t;
        }
    middle = rungs[n / 2];
    memmove(rungs + 1, rungs, n / 2 * sizeof(*rungs));
    rungs[0] = middle;
}

void talas_hls_master(struct talas_buf *out, const struct talas_hls_rung *rungs, size_t n, const char *query)
{
    talas_buf_puts(out, "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for (size_t i = 0; i < n; i++)
        talas_buf_printf(out,
                         "#EXT-X-STREAM-INF:BANDWIDTH=%u,AVERAGE-BANDWIDTH=%u,CODECS=\"mp4a.40.2\","
                         "NAME=\"%s\"\n%s/playlist.m3u8%s\n",
                         rungs[i].bandwidth, rungs[i].avg_bandwidth, rungs[i].name, rungs[i].name, query);
}

void talas_hls_segment_span(const struct talas_layout *l, uint32_t n, uint64_t *start_r, uint64_t *length_r)
{
    uint64_t from = talas_layout_chunk_start(l, n) * l->frame_samples;
    uint64_t to = talas_layout_chunk_start(l, n + 1) * l->frame_samples;

    /* presentation time: the stream less its priming, up to the last
     * sample of the source (the last frame's padding is not listed) */
    from = from > l->encoder_delay ? from - l->encoder_delay : 0;
    to = to > l->encoder_delay ? to - l->encoder_delay : 0;
    if (to > l->out_samples)
        to = l->out_samples;
    if (from > to)
        from = to;
    *start_r = from;
    *length_r = to - from;
}

void talas_hls_media_playlist(struct talas_buf *out, const struct talas_layout *l, const char *query)
{
    uint64_t start, length, longest = 0, target;

    for (uint32_t n = 0; n < l->chunks; n++) {
        talas_hls_segment_span(l, n, &start, &length);
        if (length > longest)
            longest = length;
    }
    /* EXTINFs rounded to the nearest second must not exceed it */
    target = (longest + l->out_rate / 2) / l->out_rate;
    if (target == 0)
        target = 1;
    talas_buf_printf(out,
                     "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:%" PRIu64
                     "\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n"
                     "#EXT-X-MAP:URI=\"init.mp4%s\"\n",
                     target, query);
    for (uint32_t n = 0; n < l->chunks; n++) {
        talas_hls_segment_span(l, n, &start, &length);
        if (length == 0)
            continue; /* a last chunk of padding only: nothing to hear */
        talas_buf_printf(out, "#EXTINF:%.6f,\n%" PRIu32 ".m4s%s\n", (double)length / l->out_rate, n, query);
    }
    talas_buf_puts(out, "#EXT-X-ENDLIST\n");
}

/* ---------------------------------------------------------------- boxes */

/* ISO BMFF is big-endian: the record codec's big-endian puts, appended
 * to B. */
static void put8(struct talas_buf *b, unsigned v)
{
    struct talas_record_writer w;

    talas_record_writer_buf(&w, b);
    talas_record_put_u8(&w, (uint8_t)v);
}

static void put16(struct talas_buf *b, unsigned v)
{
    struct talas_record_writer w;

    talas_record_writer_buf(&w, b);
    talas_record_put_u16be(&w, (uint16_t)v);
}

static void put32(struct talas_buf *b, uint32_t v)
{
    struct talas_record_writer w;

    talas_record_writer_buf(&w, b);
    talas_record_put_u32be(&w, v);
}

static void put64(struct talas_buf *b, uint64_t v)
{
    struct talas_record_writer w;

    talas_record_writer_buf(&w, b);
    talas_record_put_u64be(&w, v);
}

static void putn(struct talas_buf *b, int v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        put8(b, (unsigned)v);
}

/* Patches the u32 at AT, inside B: the size a box() left room for. */
static void set32(struct talas_buf *b, size_t at, uint32_t v)
{
    struct talas_record_writer w;

    talas_record_writer_mem(&w, b->data + at, b->len - at);
    talas_record_put_u32be(&w, v);
}

/* Opens a box: returns where its size goes, for box_end. */
static size_t box(struct talas_buf *b, const char type[4])
{
    size_t at = b->len;
    put32(b, 0);
    talas_buf_append(b, type, 4);
    return at;
}

static size_t full_box(struct talas_buf *b, const char type[4], unsigned version, uint32_t flags)
{
    size_t at = box(b, type);
    put32(b, (uint32_t)version << 24 | (flags & 0xffffff));
    return at;
}

static void box_end(struct talas_buf *b, size_t at)
{
    set32(b, at, (uint32_t)(b->len - at));
}

static void put_matrix(struct talas_buf *b)
{
    static const uint32_t unity[9] = {0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000};
    for (int i = 0; i < 9; i++)
        put32(b, unity[i]);
}

static int frequency_index(unsigned rate)
{
    static const unsigned rates[] = {96000, 88200, 64000, 48000, 44100, 32000, 24000,
                                     22050, 16000, 12000, 11025, 8000,  7350};
    for (int i = 0; i < (int)(sizeof(rates) / sizeof(rates[0])); i++)
        if (rates[i] == rate)
            return i;
    return -1;
}

/* ISO/IEC 14496-1 descriptors of one byte of length: ours are short */
static void descriptor(struct talas_buf *b, unsigned tag, size_t len)
{
    put8(b, tag);
    put8(b, (unsigned)len);
}

static void put_esds(struct talas_buf *b, const struct talas_profile *p, int freq)
{
    size_t at = full_box(b, "esds", 0, 0);
    /* AudioSpecificConfig: AAC LC (2), frequency index, channels */
    unsigned asc = 2u << 11 | (unsigned)freq << 7 | p->channels << 3;

    /* its fields, then DecoderConfig (with DecoderSpecificInfo) and
     * SLConfig, each with its 2 bytes of tag and length */
    descriptor(b, 0x03, 3 + (2 + 13 + 2 + 2) + (2 + 1));
    put16(b, 0); /* ES_ID */
    put8(b, 0);  /* no dependency, URL or OCR */
    descriptor(b, 0x04, 13 + 2 + 2);
    put8(b, 0x40);          /* Audio ISO/IEC 14496-3 */
    put8(b, 0x05 << 2 | 1); /* audio stream */
    put8(b, 0);             /* bufferSizeDB, 24 bits */
    put16(b, 6144 / 8 * p->channels);
    put32(b, p->bitrate * 115 / 100); /* maxBitrate */
    put32(b, p->bitrate);             /* avgBitrate */
    descriptor(b, 0x05, 2);
    put16(b, asc);
    descriptor(b, 0x06, 1);
    put8(b, 0x02); /* SLConfig: predefined MP4 */
    box_end(b, at);
}

int talas_hls_init_segment(struct talas_buf *b, const struct talas_profile *p)
{
    int freq = frequency_index(p->sample_rate);
    size_t moov, trak, mdia, minf, dinf, dref, stbl, stsd, mp4a, mvex, at;

    if (p->codec != TALAS_CODEC_AAC || freq < 0 || p->channels < 1 || p->channels > 2)
        return -1;

    at = box(b, "ftyp");
    talas_buf_append(b, "iso6", 4);
    put32(b, 0);
    talas_buf_append(b, "iso6mp41", 8);
    box_end(b, at);

    moov = box(b, "moov");
    at = full_box(b, "mvhd", 0, 0);
    put32(b, 0); /* creation and modification times */
    put32(b, 0);
    put32(b, p->sample_rate);
    put32(b, 0); /* duration: in the fragments */
    put32(b, 0x10000);
    put16(b, 0x100);
    putn(b, 0, 10);
    put_matrix(b);
    putn(b, 0, 24);
    put32(b, 2); /* next_track_ID */
    box_end(b, at);

    trak = box(b, "trak");
    at = full_box(b, "tkhd", 0, 3); /* enabled, in movie */
    put32(b, 0);
    put32(b, 0);
    put32(b, 1); /* track_ID */
    put32(b, 0);
    put32(b, 0); /* duration */
    putn(b, 0, 8);
    put16(b, 0);     /* layer */
    put16(b, 0);     /* alternate_group */
    put16(b, 0x100); /* volume */
    put16(b, 0);
    put_matrix(b);
    put32(b, 0); /* width, height */
    put32(b, 0);
    box_end(b, at);

    mdia = box(b, "mdia");
    at = full_box(b, "mdhd", 0, 0);
    put32(b, 0);
    put32(b, 0);
    put32(b, p->sample_rate);
    put32(b, 0);
    put16(b, ('u' - 0x60) << 10 | ('n' - 0x60) << 5 | ('d' - 0x60));
    put16(b, 0);
    box_end(b, at);
    at = full_box(b, "hdlr", 0, 0);
    put32(b, 0);
    talas_buf_append(b, "soun", 4);
    putn(b, 0, 12);
    talas_buf_append(b, "Talas\0", 6);
    box_end(b, at);

    minf = box(b, "minf");
    at = full_box(b, "smhd", 0, 0);
    put32(b, 0);
    box_end(b, at);
    dinf = box(b, "dinf");
    dref = full_box(b, "dref", 0, 0);
    put32(b, 1);
    at = full_box(b, "url ", 0, 1); /* the data is in this file */
    box_end(b, at);
    box_end(b, dref);
    box_end(b, dinf);

    stbl = box(b, "stbl");
    stsd = full_box(b, "stsd", 0, 0);
    put32(b, 1);
    mp4a = box(b, "mp4a");
    putn(b, 0, 6);
    put16(b, 1); /* data_reference_index */
    putn(b, 0, 8);
    put16(b, p->channels);
    put16(b, 16);
    put32(b, 0);
    put32(b, p->sample_rate << 16);
    put_esds(b, p, freq);
    box_end(b, mp4a);
    box_end(b, stsd);
    at = full_box(b, "stts", 0, 0);
    put32(b, 0);
    box_end(b, at);
    at = full_box(b, "stsc", 0, 0);
    put32(b, 0);
    box_end(b, at);
    at = full_box(b, "stsz", 0, 0);
    put32(b, 0);
    put32(b, 0);
    box_end(b, at);
    at = full_box(b, "stco", 0, 0);
    put32(b, 0);
    box_end(b, at);
    box_end(b, stbl);
    box_end(b, minf);
    box_end(b, mdia);
    box_end(b, trak);

    mvex = box(b, "mvex");
    at = full_box(b, "trex", 0, 0);
    put32(b, 1);         /* track_ID */
    put32(b, 1);         /* default_sample_description_index */
    put32(b, AAC_FRAME); /* default_sample_duration */
    put32(b, 0);         /* default_sample_size */
    put32(b, 0);         /* default_sample_flags: every frame is a sync sample */
    box_end(b, at);
    box_end(b, mvex);
    box_end(b, moov);
    return 0;
}

/* The ADTS frames of a chunk: header length and frame length of frame at P
 * (N bytes left), or -1. */
static int adts_frame(const uint8_t *p, size_t n, size_t *header_r, size_t *frame_r)
{
    size_t header, frame;

    if (n < 7 || p[0] != 0xff || (p[1] & 0xf6) != 0xf0)
        return -1;
    header = (p[1] & 0x01) ? 7 : 9; /* protection_absent */
    frame = (size_t)(p[3] & 0x03) << 11 | (size_t)p[4] << 3 | p[5] >> 5;
    if ((p[6] & 0x03) != 0 || frame <= header || frame > n)
        return -1; /* one raw data block per frame, as the encoder writes */
    *header_r = header;
    *frame_r = frame;
    return 0;
}

int talas_hls_media_segment(struct talas_buf *b, const struct talas_layout *l, uint32_t n,
                            const uint8_t *adts, size_t len, const char **error_r)
{
    uint32_t count = talas_layout_chunk_frame_count(l, n), skip = 0, samples;
    uint64_t first = talas_layout_chunk_start(l, n), decode_time;
    size_t moof, traf, trun, at, data_offset_at, mdat, pos, header, frame, start = b->len;

    if (l->frame_samples != AAC_FRAME || n >= l->chunks || l->encoder_delay % AAC_FRAME != 0) {
        *error_r = "not an AAC layout";
        return -1;
    }
    /* segment 0 goes without the priming frames */
    if (first * AAC_FRAME < l->encoder_delay)
        skip = (uint32_t)(l->encoder_delay / AAC_FRAME - first);
    if (skip > count)
        skip = count;
    samples = count - skip;
    decode_time = (first + skip) * AAC_FRAME - l->encoder_delay;

    moof = box(b, "moof");
    at = full_box(b, "mfhd", 0, 0);
    put32(b, n + 1);
    box_end(b, at);
    traf = box(b, "traf");
    at = full_box(b, "tfhd", 0, 0x020000 | 0x000008); /* default-base-is-moof, default duration */
    put32(b, 1);
    put32(b, AAC_FRAME);
    box_end(b, at);
    at = full_box(b, "tfdt", 1, 0);
    put64(b, decode_time);
    box_end(b, at);
    trun = full_box(b, "trun", 0, 0x000001 | 0x000200); /* data offset, sample sizes */
    put32(b, samples);
    data_offset_at = b->len;
    put32(b, 0);
    pos = 0;
    for (uint32_t i = 0; i < count; i++) {
        if (adts_frame(adts + pos, len - pos, &header, &frame) != 0)
            goto bad;
        if (i >= skip)
            put32(b, (uint32_t)(frame - header));
        pos += frame;
    }
    if (pos != len)
        goto bad;
    box_end(b, trun);
    box_end(b, traf);
    box_end(b, moof);
    set32(b, data_offset_at, (uint32_t)(b->len - moof + 8));

    mdat = box(b, "mdat");
    pos = 0;
    for (uint32_t i = 0; i < count; i++) {
        adts_frame(adts + pos, len - pos, &header, &frame);
        if (i >= skip)
            talas_buf_append(b, adts + pos + header, frame - header);
        pos += frame;
    }
    box_end(b, mdat);
    return 0;

bad:
    b->len = start;
    *error_r = "the chunk's ADTS frames do not match its layout";
    return -1;
}
