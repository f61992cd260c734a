/*
 * test_hls.c - the playlists and fMP4 boxes of workers/media/hls.c, read
 * back the way a player reads them.
 *
 * Playlists are parsed line by line (the tags, TARGETDURATION against every
 * EXTINF, the EXTINFs against the layout's grid computed here from the
 * chunk starts, URIs with their query). Segments are walked as a box tree
 * whose sizes must add up exactly: the init segment's
 * ftyp/moov/trak/mdia/minf/stbl/stsd/mp4a/esds down to the
 * AudioSpecificConfig, and each media segment's
 * moof/mfhd/traf/tfhd/tfdt/trun and mdat against the ADTS frames it was
 * made from (built here, with payloads of known bytes). The measured
 * bandwidths are checked against the bit rate of the segments themselves.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/config.h"
#include "core/util.h"
#include "media/hls.h"
#include "media/transcoder.h"

/* ------------------------------------------------------------ helpers */

static void layout_of(const struct talas_profile *p, uint64_t samples, unsigned rate, struct talas_layout *l)
{
    struct talas_source_info src = {.samples = samples, .sample_rate = rate, .channels = 2};
    char *error = NULL;

    if (talas_layout_compute(p, &src, NULL, l, &error) != 0)
        fail_msg("talas_layout_compute: %s", error);
}

/* The default ladder's profile NAME, in a slot of its own per name. */
static const struct talas_profile *builtin(const char *name)
{
    static const char *const names[] = {"high", "medium", "low", "mobile", "mp3"};
    static struct talas_profile slots[TALAS_ARRAY_SIZE(names)];

    for (size_t i = 0; i < TALAS_ARRAY_SIZE(names); i++) {
        if (strcmp(names[i], name) == 0) {
            assert_int_equal(talas_profile_builtin(name, &slots[i]), 0);
            return &slots[i];
        }
    }
    fail_msg("no default profile %s", name);
    return NULL;
}

/* Presentation span of chunk C, from the grid alone: its frames less the
 * priming samples, up to the source's last sample. */
static void span(const struct talas_layout *l, uint32_t c, uint64_t *from_r, uint64_t *to_r)
{
    uint64_t a = talas_layout_chunk_start(l, c) * 1024, b = talas_layout_chunk_start(l, c + 1) * 1024;

    a = a > l->encoder_delay ? a - l->encoder_delay : 0;
    b = b > l->encoder_delay ? b - l->encoder_delay : 0;
    if (b > l->out_samples)
        b = l->out_samples;
    *from_r = a;
    *to_r = b > a ? b : a;
}

/* The next line of TEXT at *POS (without its newline), or NULL at the end;
 * every line must end with a newline. */
static const char *next_line(const char *text, size_t len, size_t *pos, char *line, size_t size)
{
    const char *nl;
    size_t n;

    if (*pos >= len)
        return NULL;
    nl = memchr(text + *pos, '\n', len - *pos);
    assert_non_null(nl);
    n = (size_t)(nl - (text + *pos));
    assert_true(n < size);
    memcpy(line, text + *pos, n);
    line[n] = '\0';
    *pos += n + 1;
    return line;
}

/* ------------------------------------------------------------ playlists */

/* The encoder's default profiles are config.c's ladder, converted: one
 * definition, read by both the config's defaults and the routes that name
 * a profile without a config (previews, tools). */
static void test_builtin_profiles(void **state)
{
    static const char *const names[] = {"high", "medium", "low", "mobile", "mp3"};
    struct talas_profile p;

    (void)state;
    for (size_t i = 0; i < TALAS_ARRAY_SIZE(names); i++) {
        const struct talas_config_profile *cp = talas_config_default_profile(names[i]);

        assert_non_null(cp);
        assert_int_equal(talas_profile_builtin(names[i], &p), 0);
        assert_string_equal(p.name, names[i]);
        assert_int_equal(p.bitrate, (unsigned)cp->bitrate * 1000);
        assert_int_equal(p.sample_rate, (unsigned)cp->sample_rate);
        assert_int_equal(p.channels, (unsigned)cp->channels);
        assert_int_equal(p.codec == TALAS_CODEC_MP3, cp->codec == TALAS_CONFIG_CODEC_MP3);
    }
    /* the seeds' figures for the rungs a listener hears */
    talas_profile_builtin("high", &p);
    assert_true(p.codec == TALAS_CODEC_AAC && p.bitrate == 320000 && p.sample_rate == 44100);
    talas_profile_builtin("low", &p);
    assert_true(p.codec == TALAS_CODEC_MP3 && p.bitrate == 128000 && p.sample_rate == 22050);
    assert_int_equal(talas_profile_builtin("adaptive", &p), -1);
    assert_null(talas_config_default_profile("original"));
}

/* The middle rung by bitrate first (where a player without an estimate
 * starts), then the others from the highest down, whatever the order of
 * the configuration. */
static void test_ladder_order(void **state)
{
    struct talas_profile p[5];
    struct talas_hls_rung r[5];
    static const unsigned rates[5] = {64000, 256000, 32000, 128000, 192000};
    static const unsigned want[5] = {128000, 256000, 192000, 64000, 32000};

    (void)state;
    for (int i = 0; i < 5; i++) {
        memset(&p[i], 0, sizeof(p[i]));
        p[i].bitrate = rates[i];
        r[i].profile = &p[i];
    }
    talas_hls_ladder_order(r, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(r[i].profile->bitrate, want[i]);
    talas_hls_ladder_order(r, 1);
    assert_int_equal(r[0].profile->bitrate, 128000);
    talas_hls_ladder_order(r, 2); /* of 256k and 128k, the second is the middle */
    assert_int_equal(r[0].profile->bitrate, 128000);
    assert_int_equal(r[1].profile->bitrate, 256000);
    talas_hls_ladder_order(r, 0);
}

static void test_master_playlist(void **state)
{
    const struct talas_profile *high = builtin("high"), *mobile = builtin("mobile");
    struct talas_hls_rung rungs[2] = {{"high", high, 0, 0}, {"mobile", mobile, 0, 0}};
    struct talas_buf b = {0};
    char line[512];
    size_t pos = 0;

    for (int i = 0; i < 2; i++) {
        talas_hls_bandwidth(rungs[i].profile, &rungs[i].bandwidth, &rungs[i].avg_bandwidth);
        /* the encoder's bitrate plus the boxes, and a peak above it */
        assert_true(rungs[i].avg_bandwidth > rungs[i].profile->bitrate);
        assert_true(rungs[i].avg_bandwidth < rungs[i].profile->bitrate * 11 / 10);
        assert_true(rungs[i].bandwidth > rungs[i].avg_bandwidth);
    }
    talas_hls_master(&b, rungs, 2, "?token=a.b.c");
    assert_string_equal(next_line(b.data, b.len, &pos, line, sizeof(line)), "#EXTM3U");
    assert_string_equal(next_line(b.data, b.len, &pos, line, sizeof(line)), "#EXT-X-VERSION:7");
    assert_string_equal(next_line(b.data, b.len, &pos, line, sizeof(line)), "#EXT-X-INDEPENDENT-SEGMENTS");
    for (int i = 0; i < 2; i++) {
        unsigned bw = 0, avg = 0;
        char codecs[32] = "", name[32] = "", uri[128];
        int n;

        next_line(b.data, b.len, &pos, line, sizeof(line));
        n = sscanf(
            line, "#EXT-X-STREAM-INF:BANDWIDTH=%u,AVERAGE-BANDWIDTH=%u,CODECS=\"%31[^\"]\",NAME=\"%31[^\"]\"",
            &bw, &avg, codecs, name);
        assert_int_equal(n, 4);
        assert_int_equal(bw, rungs[i].bandwidth);
        assert_int_equal(avg, rungs[i].avg_bandwidth);
        assert_string_equal(codecs, "mp4a.40.2");
        assert_string_equal(name, rungs[i].name);
        snprintf(uri, sizeof(uri), "%s/playlist.m3u8?token=a.b.c", rungs[i].name);
        assert_string_equal(next_line(b.data, b.len, &pos, line, sizeof(line)), uri);
    }
    assert_null(next_line(b.data, b.len, &pos, line, sizeof(line)));
    talas_buf_free(&b);
}

/* Parses a media playlist of layout L and checks it line by line. */
static void check_media_playlist(const struct talas_layout *l, const char *query, unsigned want_target)
{
    struct talas_buf b = {0};
    char line[512], want[512];
    size_t pos = 0;
    unsigned target = 0;
    uint32_t segments = 0;
    double total = 0;

    talas_hls_media_playlist(&b, l, query);
    assert_string_equal(next_line(b.data, b.len, &pos, line, sizeof(line)), "#EXTM3U");
    assert_string_equal(next_line(b.data, b.len, &pos, line, sizeof(line)), "#EXT-X-VERSION:7");
    next_line(b.data, b.len, &pos, line, sizeof(line));
    assert_int_equal(sscanf(line, "#EXT-X-TARGETDURATION:%u", &target), 1);
    assert_int_equal(target, want_target);
    assert_string_equal(next_line(b.data, b.len, &pos, line, sizeof(line)), "#EXT-X-MEDIA-SEQUENCE:0");
    assert_string_equal(next_line(b.data, b.len, &pos, line, sizeof(line)), "#EXT-X-PLAYLIST-TYPE:VOD");
    assert_string_equal(next_line(b.data, b.len, &pos, line, sizeof(line)), "#EXT-X-INDEPENDENT-SEGMENTS");
    snprintf(want, sizeof(want), "#EXT-X-MAP:URI=\"init.mp4%s\"", query);
    assert_string_equal(next_line(b.data, b.len, &pos, line, sizeof(line)), want);

    for (uint32_t c = 0; c < l->chunks; c++) {
        uint64_t from, to;
        double d;

        span(l, c, &from, &to);
        if (to == from)
            continue;
        next_line(b.data, b.len, &pos, line, sizeof(line));
        assert_int_equal(sscanf(line, "#EXTINF:%lf,", &d), 1);
        assert_true(fabs(d - (double)(to - from) / l->out_rate) < 1e-6);
        /* RFC 8216 4.3.3.1: every EXTINF, rounded, within the target */
        assert_true(lround(d) <= (long)target);
        total += d;
        snprintf(want, sizeof(want), "%u.m4s%s", c, query);
        assert_string_equal(next_line(b.data, b.len, &pos, line, sizeof(line)), want);
        segments++;
    }
    assert_string_equal(next_line(b.data, b.len, &pos, line, sizeof(line)), "#EXT-X-ENDLIST");
    assert_null(next_line(b.data, b.len, &pos, line, sizeof(line)));
    assert_true(segments > 1);
    /* the EXTINFs add up to the source, priming excluded */
    assert_true(fabs(total - (double)l->out_samples / l->out_rate) < 1e-4);
    talas_buf_free(&b);
}

static void test_media_playlist(void **state)
{
    const struct talas_profile *high = builtin("high");
    struct talas_profile four = {"four", TALAS_CODEC_AAC, 128000, 48000, 1, 4000, 0, 0.0};
    struct talas_layout l;

    /* 20 s of 48 kHz into 44.1 kHz: the ramp of short chunks, then 6 s ones */
    layout_of(high, 48000 * 20 + 777, 48000, &l);
    assert_true(l.ramp_chunks > 0);
    check_media_playlist(&l, "", 6);
    check_media_playlist(&l, "?token=x.y.z", 6);
    /* segment 0 is the short first chunk without its priming frame */
    {
        uint64_t start, length;
        talas_hls_segment_span(&l, 0, &start, &length);
        assert_int_equal(start, 0);
        assert_int_equal(length, (uint64_t)talas_layout_chunk_frame_count(&l, 0) * 1024 - l.encoder_delay);
    }
    /* chunk_ms 4000: 188 frames of 48 kHz, 4.01 s, target 4 */
    layout_of(&four, 48000 * 30, 48000, &l);
    check_media_playlist(&l, "", 4);
    /* shorter than a full chunk: the target is the longest ramp chunk's
     * (32 frames, 0.74 s) */
    layout_of(high, 44100 * 2, 44100, &l);
    check_media_playlist(&l, "", 1);
}

/* ---------------------------------------------------------------- boxes */

struct found {
    char path[128];
    const uint8_t *box; /* its header */
    size_t size;
};

struct tree {
    struct found items[64];
    size_t n;
};

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint64_t be64(const uint8_t *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}

/* Bytes before a box's children: 0 for plain boxes that hold nothing. */
static size_t children_at(const char *type)
{
    static const char *containers[] = {"moov", "trak", "mdia", "minf", "dinf",
                                       "stbl", "mvex", "moof", "traf"};

    for (size_t i = 0; i < sizeof(containers) / sizeof(containers[0]); i++)
        if (memcmp(type, containers[i], 4) == 0)
            return 8;
    if (memcmp(type, "dref", 4) == 0 || memcmp(type, "stsd", 4) == 0)
        return 16; /* full box, entry_count */
    if (memcmp(type, "mp4a", 4) == 0)
        return 8 + 28; /* AudioSampleEntry */
    return 0;
}

/* Walks the boxes of P (LEN bytes) under PREFIX: their sizes must fill LEN
 * exactly, at every level. */
static void walk(struct tree *t, const char *prefix, const uint8_t *p, size_t len)
{
    size_t off = 0;

    while (off < len) {
        struct found *f;
        uint32_t size;
        size_t at;

        assert_true(len - off >= 8);
        size = be32(p + off);
        assert_true(size >= 8);
        assert_true(size <= len - off);
        assert_true(t->n < sizeof(t->items) / sizeof(t->items[0]));
        f = &t->items[t->n++];
        snprintf(f->path, sizeof(f->path), "%s%s%.4s", prefix, *prefix ? "/" : "", (const char *)p + off + 4);
        f->box = p + off;
        f->size = size;
        if ((at = children_at((const char *)p + off + 4)) != 0) {
            char sub[128];
            assert_true(size >= at);
            snprintf(sub, sizeof(sub), "%s", f->path);
            walk(t, sub, p + off + at, size - at);
        }
        off += size;
    }
    assert_int_equal(off, len);
}

static const struct found *find_box(const struct tree *t, const char *path)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->items[i].path, path) == 0)
            return &t->items[i];
    fail_msg("no box %s", path);
    return NULL;
}

static void check_init_segment(const struct talas_profile *p, int freq_index)
{
    static const char *paths[] = {
        "ftyp",
        "moov",
        "moov/mvhd",
        "moov/trak",
        "moov/trak/tkhd",
        "moov/trak/mdia",
        "moov/trak/mdia/mdhd",
        "moov/trak/mdia/hdlr",
        "moov/trak/mdia/minf",
        "moov/trak/mdia/minf/smhd",
        "moov/trak/mdia/minf/dinf",
        "moov/trak/mdia/minf/dinf/dref",
        "moov/trak/mdia/minf/dinf/dref/url ",
        "moov/trak/mdia/minf/stbl",
        "moov/trak/mdia/minf/stbl/stsd",
        "moov/trak/mdia/minf/stbl/stsd/mp4a",
        "moov/trak/mdia/minf/stbl/stsd/mp4a/esds",
        "moov/trak/mdia/minf/stbl/stts",
        "moov/trak/mdia/minf/stbl/stsc",
        "moov/trak/mdia/minf/stbl/stsz",
        "moov/trak/mdia/minf/stbl/stco",
        "moov/mvex",
        "moov/mvex/trex",
    };
    struct talas_buf b = {0};
    struct tree t = {0};
    const struct found *f;
    const uint8_t *d;

    talas_buf_puts(&b, "prefix"); /* appended: what was there stays */
    assert_int_equal(talas_hls_init_segment(&b, p), 0);
    assert_memory_equal(b.data, "prefix", 6);
    walk(&t, "", (const uint8_t *)b.data + 6, b.len - 6);
    assert_int_equal(t.n, sizeof(paths) / sizeof(paths[0]));
    for (size_t i = 0; i < t.n; i++)
        assert_string_equal(t.items[i].path, paths[i]);

    f = find_box(&t, "ftyp");
    assert_memory_equal(f->box + 8, "iso6", 4);
    f = find_box(&t, "moov/mvhd");
    assert_int_equal(be32(f->box + 20), p->sample_rate); /* timescale */
    f = find_box(&t, "moov/trak/tkhd");
    assert_int_equal(be32(f->box + 20), 1); /* track_ID */
    f = find_box(&t, "moov/trak/mdia/mdhd");
    assert_int_equal(be32(f->box + 20), p->sample_rate);
    f = find_box(&t, "moov/trak/mdia/hdlr");
    assert_memory_equal(f->box + 16, "soun", 4);
    f = find_box(&t, "moov/trak/mdia/minf/stbl/stsd");
    assert_int_equal(be32(f->box + 12), 1);
    f = find_box(&t, "moov/trak/mdia/minf/stbl/stsd/mp4a");
    assert_int_equal(be16(f->box + 14), 1);           /* data_reference_index */
    assert_int_equal(be16(f->box + 24), p->channels); /* channelcount */
    assert_int_equal(be16(f->box + 26), 16);          /* samplesize */
    assert_int_equal(be32(f->box + 32), p->sample_rate << 16);

    /* esds: ES_Descriptor > DecoderConfigDescriptor > DecoderSpecificInfo */
    f = find_box(&t, "moov/trak/mdia/minf/stbl/stsd/mp4a/esds");
    d = f->box + 12;
    assert_int_equal(d[0], 0x03);
    assert_int_equal(12 + 2 + d[1], f->size); /* the descriptor fills the box */
    d += 2 + 3;
    assert_int_equal(d[0], 0x04);
    assert_int_equal(d[1], 13 + 2 + 2); /* its fields and the DecoderSpecificInfo */
    assert_int_equal(d[2], 0x40);       /* MPEG-4 audio */
    assert_int_equal(d[3] >> 2, 0x05);
    assert_int_equal(be32(d + 11), p->bitrate); /* avgBitrate */
    assert_true(be32(d + 7) >= p->bitrate);     /* maxBitrate */
    d += 2 + 13;
    assert_int_equal(d[0], 0x05);
    assert_int_equal(d[1], 2);
    /* AudioSpecificConfig: AAC LC, the rate's index, the channels */
    assert_int_equal(d[2] >> 3, 2);
    assert_int_equal((be16(d + 2) >> 7) & 0x0f, freq_index);
    assert_int_equal((be16(d + 2) >> 3) & 0x0f, p->channels);
    d += 2 + 2;
    assert_int_equal(d[0], 0x06);
    assert_int_equal(d[1], 1);
    assert_int_equal(d[2], 0x02);
    assert_ptr_equal(d + 3, f->box + f->size);

    f = find_box(&t, "moov/mvex/trex");
    assert_int_equal(be32(f->box + 12), 1);    /* track_ID */
    assert_int_equal(be32(f->box + 16), 1);    /* sample description */
    assert_int_equal(be32(f->box + 20), 1024); /* default_sample_duration */
    talas_buf_free(&b);
}

static void test_init_segment(void **state)
{
    struct talas_profile mono48 = {"m", TALAS_CODEC_AAC, 64000, 48000, 1, 0, 0, 0.0};
    struct talas_profile bad = mono48;
    struct talas_buf b = {0};

    check_init_segment(builtin("high"), 4);
    check_init_segment(builtin("mobile"), 7);
    check_init_segment(&mono48, 3);

    /* what fMP4 here cannot describe */
    assert_int_equal(talas_hls_init_segment(&b, builtin("mp3")), -1);
    bad.sample_rate = 44000;
    assert_int_equal(talas_hls_init_segment(&b, &bad), -1);
    bad = mono48;
    bad.channels = 3;
    assert_int_equal(talas_hls_init_segment(&b, &bad), -1);
    talas_buf_free(&b);
}

/* The payload size of ADTS frame I of chunk C, and its bytes. */
static uint32_t payload_size(uint32_t c, uint32_t i)
{
    return 150 + (c * 31 + i * 17) % 300;
}

static uint8_t payload_byte(uint32_t c, uint32_t i, uint32_t k)
{
    return (uint8_t)(c * 7 + i * 13 + k);
}

/* An ADTS header (no CRC, one raw data block) for a frame of LEN bytes. */
static void adts_header(uint8_t h[7], size_t len, int freq_index, unsigned channels)
{
    h[0] = 0xff;
    h[1] = 0xf1;
    h[2] = (uint8_t)(1 << 6 | freq_index << 2 | channels >> 2);
    h[3] = (uint8_t)((channels & 3) << 6 | (len >> 11 & 3));
    h[4] = (uint8_t)(len >> 3);
    h[5] = (uint8_t)((len & 7) << 5 | 0x1f);
    h[6] = 0xfc;
}

/* The ADTS bytes of chunk C: its frame count's frames. */
static void chunk_adts(const struct talas_layout *l, uint32_t c, struct talas_buf *out)
{
    uint32_t count = talas_layout_chunk_frame_count(l, c);

    out->len = 0;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t n = payload_size(c, i);
        uint8_t h[7];
        adts_header(h, n + 7, 4, 2);
        talas_buf_append(out, h, 7);
        for (uint32_t k = 0; k < n; k++) {
            uint8_t v = payload_byte(c, i, k);
            talas_buf_append(out, &v, 1);
        }
    }
}

/* Walks media segment C (at DATA, LEN bytes) and checks it against the
 * frames it was made from; returns the samples it holds. */
static uint64_t check_media_segment(const struct talas_layout *l, uint32_t c, const uint8_t *data, size_t len)
{
    static const char *paths[] = {"moof",           "moof/mfhd",      "moof/traf", "moof/traf/tfhd",
                                  "moof/traf/tfdt", "moof/traf/trun", "mdat"};
    uint32_t count = talas_layout_chunk_frame_count(l, c), skip = 0, samples, mdat_payload = 0;
    const struct found *moof, *f, *mdat;
    struct tree t = {0};
    uint64_t from, to;
    const uint8_t *m;

    walk(&t, "", data, len);
    assert_int_equal(t.n, sizeof(paths) / sizeof(paths[0]));
    for (size_t i = 0; i < t.n; i++)
        assert_string_equal(t.items[i].path, paths[i]);
    moof = find_box(&t, "moof");
    mdat = find_box(&t, "mdat");

    /* the priming frame is left out of the first segment only */
    if (talas_layout_chunk_start(l, c) == 0)
        skip = l->encoder_delay / 1024;
    samples = count - skip;

    f = find_box(&t, "moof/mfhd");
    assert_int_equal(be32(f->box + 12), c + 1); /* sequence_number */
    f = find_box(&t, "moof/traf/tfhd");
    assert_int_equal(be32(f->box + 8) & 0xffffff, 0x020008); /* default-base-is-moof, default duration */
    assert_int_equal(be32(f->box + 12), 1);
    assert_int_equal(be32(f->box + 16), 1024);
    /* base media decode time: the segment's start on the playlist's clock */
    f = find_box(&t, "moof/traf/tfdt");
    assert_int_equal(f->box[8], 1);
    span(l, c, &from, &to);
    assert_int_equal(be64(f->box + 12), from);
    assert_int_equal(from + (uint64_t)samples * 1024 >= to, 1);
    assert_true(from + (uint64_t)samples * 1024 < to + 1024 || c + 1 == l->chunks);

    f = find_box(&t, "moof/traf/trun");
    assert_int_equal(be32(f->box + 8) & 0xffffff, 0x000201); /* data offset, sample sizes */
    assert_int_equal(be32(f->box + 12), samples);
    assert_int_equal(f->size, 20 + 4 * (size_t)samples);
    /* the data offset (from the moof) is the mdat's first payload byte */
    assert_ptr_equal(moof->box + be32(f->box + 16), mdat->box + 8);
    m = mdat->box + 8;
    for (uint32_t i = 0; i < samples; i++) {
        uint32_t n = payload_size(c, skip + i);
        assert_int_equal(be32(f->box + 20 + 4 * i), n);
        for (uint32_t k = 0; k < n; k++)
            if (m[k] != payload_byte(c, skip + i, k))
                fail_msg("segment %u frame %u byte %u differs", c, skip + i, k);
        m += n;
        mdat_payload += n;
    }
    /* the mdat is the frames without their ADTS headers, nothing more */
    assert_int_equal(mdat->size, 8 + (size_t)mdat_payload);
    return (uint64_t)samples * 1024;
}

static void test_media_segments(void **state)
{
    struct talas_buf adts = {0}, seg = {0};
    struct talas_layout l;
    uint64_t decoded = 0;
    const char *error;

    layout_of(builtin("high"), 48000 * 20 + 777, 48000, &l);
    assert_int_equal(l.encoder_delay, 1024);
    for (uint32_t c = 0; c < l.chunks; c++) {
        chunk_adts(&l, c, &adts);
        seg.len = 0;
        talas_buf_puts(&seg, "junk before");
        error = NULL;
        assert_int_equal(talas_hls_media_segment(&seg, &l, c, (const uint8_t *)adts.data, adts.len, &error),
                         0);
        assert_memory_equal(seg.data, "junk before", 11);
        decoded += check_media_segment(&l, c, (const uint8_t *)seg.data + 11, seg.len - 11);
    }
    /* all segments together: the stream less its priming frame */
    assert_int_equal(decoded, l.frames * 1024 - l.encoder_delay);
    talas_buf_free(&adts);
    talas_buf_free(&seg);
}

static void test_media_segment_refuses_other_bytes(void **state)
{
    struct talas_buf adts = {0}, seg = {0};
    struct talas_layout l, mp3;
    const char *error;
    uint8_t *p;

    layout_of(builtin("high"), 44100 * 20, 44100, &l);
    chunk_adts(&l, 6, &adts);
    talas_buf_puts(&seg, "kept");
    /* one frame short, one byte over, a frame of another chunk's count */
    error = NULL;
    assert_int_equal(talas_hls_media_segment(&seg, &l, 6, (const uint8_t *)adts.data, adts.len - 157, &error),
                     -1);
    assert_non_null(error);
    assert_int_equal(seg.len, 4);
    talas_buf_append(&adts, "x", 1);
    error = NULL;
    assert_int_equal(talas_hls_media_segment(&seg, &l, 6, (const uint8_t *)adts.data, adts.len, &error), -1);
    assert_non_null(error);
    assert_int_equal(seg.len, 4);
    adts.len--;
    assert_int_equal(talas_hls_media_segment(&seg, &l, 7, (const uint8_t *)adts.data, adts.len, &error), -1);
    assert_int_equal(seg.len, 4);
    /* a broken sync word, a frame length past the end */
    p = (uint8_t *)adts.data;
    p[0] = 0xfe;
    assert_int_equal(talas_hls_media_segment(&seg, &l, 6, p, adts.len, &error), -1);
    p[0] = 0xff;
    p[4] = 0xff;
    assert_int_equal(talas_hls_media_segment(&seg, &l, 6, p, adts.len, &error), -1);
    assert_int_equal(seg.len, 4);
    /* no such segment; not an AAC layout */
    chunk_adts(&l, 6, &adts);
    assert_int_equal(
        talas_hls_media_segment(&seg, &l, l.chunks, (const uint8_t *)adts.data, adts.len, &error), -1);
    layout_of(builtin("mp3"), 44100 * 20, 44100, &mp3);
    error = NULL;
    assert_int_equal(talas_hls_media_segment(&seg, &mp3, 6, (const uint8_t *)adts.data, adts.len, &error),
                     -1);
    assert_non_null(error);
    assert_int_equal(seg.len, 4);
    /* and the right bytes still make the segment */
    assert_int_equal(talas_hls_media_segment(&seg, &l, 6, (const uint8_t *)adts.data, adts.len, &error), 0);
    talas_buf_free(&adts);
    talas_buf_free(&seg);
}

static uint32_t frame_size(void *arg, uint32_t c, uint32_t i)
{
    return payload_size(c, i) + 7;
}

/* The measured bandwidths are those of the real segments: BANDWIDTH the
 * bit rate of the densest one (RFC 8216 4.3.4.2), AVERAGE-BANDWIDTH the
 * whole rung's. */
static void test_measured_bandwidth(void **state)
{
    struct talas_buf adts = {0}, seg = {0};
    uint32_t frames[64];
    struct talas_layout l;
    double peak = 0, bytes = 0, seconds = 0;
    unsigned m_peak, m_avg;
    const char *error;

    layout_of(builtin("high"), 48000 * 30, 48000, &l);
    assert_true(l.chunks <= 64);
    for (uint32_t c = 0; c < l.chunks; c++) {
        double s;
        frames[c] = talas_layout_chunk_frame_count(&l, c);
        chunk_adts(&l, c, &adts);
        seg.len = 0;
        assert_int_equal(talas_hls_media_segment(&seg, &l, c, (const uint8_t *)adts.data, adts.len, &error),
                         0);
        s = (double)check_media_segment(&l, c, (const uint8_t *)seg.data, seg.len) / l.out_rate;
        if (seg.len * 8 / s > peak)
            peak = seg.len * 8 / s;
        bytes += seg.len;
        seconds += s;
    }
    talas_hls_measured_bandwidth(l.chunks, frames, frame_size, NULL, l.out_rate, l.encoder_delay, &m_peak,
                                 &m_avg);
    assert_true(m_peak >= peak);
    assert_true(m_peak <= peak + 2);
    assert_true(m_avg >= bytes * 8 / seconds);
    assert_true(m_avg <= bytes * 8 / seconds + 2);
    talas_buf_free(&adts);
    talas_buf_free(&seg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtin_profiles),
        cmocka_unit_test(test_ladder_order),
        cmocka_unit_test(test_master_playlist),
        cmocka_unit_test(test_media_playlist),
        cmocka_unit_test(test_init_segment),
        cmocka_unit_test(test_media_segments),
        cmocka_unit_test(test_media_segment_refuses_other_bytes),
        cmocka_unit_test(test_measured_bandwidth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
