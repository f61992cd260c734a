/*
 * adts_silence.c - silent AAC-LC frames of a chosen size (see
 * adts_silence.h).
 *
 * Entry points: talas_adts_silence_min, talas_adts_silence_max,
 * talas_adts_silence. Logs nothing.
 *
 * A frame is an ADTS header (7 bytes, no CRC) and one raw data block: a
 * single channel element (mono) or a channel pair element without a common
 * window (stereo), each channel an individual channel stream with a
 * long window and max_sfb 0 (no bands: silence, whatever the global
 * gain), then a fill element (ID_FIL, an EXT_FILL payload of fill bytes)
 * sized so that the block, once byte-aligned after ID_END, is the length
 * wanted. This is ISO/IEC 14496-3's syntax read from its tables, not
 * anyone's encoder; libavcodec's decoder accepts it (the stream tests
 * decode padded bodies with ffmpeg and want no error).
 */
#include <string.h>

#include "media/adts_silence.h"

#define ADTS_HEADER 7
#define ID_SCE 0
#define ID_CPE 1
#define ID_FIL 6
#define ID_END 7
/* the fill element's count: 4 bits, 15 then an escape byte (15 + esc - 1) */
#define FIL_COUNT_MAX (15 + 255 - 1)

struct bits {
    uint8_t *p;
    size_t bit;
};

static void put(struct bits *b, unsigned n, uint32_t v)
{
    while (n-- > 0) {
        if (v >> n & 1)
            b->p[b->bit >> 3] |= (uint8_t)(0x80 >> (b->bit & 7));
        b->bit++;
    }
}

/* An individual channel stream of silence: 22 bits. */
static void put_ics(struct bits *b)
{
    put(b, 8, 100); /* global_gain: any, there are no bands */
    put(b, 1, 0);   /* ics_reserved_bit */
    put(b, 2, 0);   /* window_sequence: ONLY_LONG_SEQUENCE */
    put(b, 1, 0);   /* window_shape */
    put(b, 6, 0);   /* max_sfb */
    put(b, 1, 0);   /* predictor_data_present */
    put(b, 1, 0);   /* pulse_data_present */
    put(b, 1, 0);   /* tns_data_present */
    put(b, 1, 0);   /* gain_control_data_present */
}

static unsigned element_bits(unsigned channels)
{
    return channels == 1 ? 3 + 4 + 22 : 3 + 4 + 1 + 22 + 22;
}

/* Bits of a fill element of COUNT bytes: a 4-bit count, or 15 and an
 * escape byte (COUNT 14 and up: the count is 15 + escape - 1). */
static size_t fill_bits(unsigned count, int escaped)
{
    return 3 + 4 + (escaped ? 8 : 0) + 8 * (size_t)count;
}

size_t talas_adts_silence_min(unsigned channels)
{
    return ADTS_HEADER + (element_bits(channels) + 3 + 7) / 8;
}

size_t talas_adts_silence_max(unsigned channels)
{
    /* the decoder input buffer of ISO/IEC 14496-3: 6144 bits a channel */
    return ADTS_HEADER + 768 * (size_t)channels;
}

static void adts_header(uint8_t *h, unsigned rate, unsigned channels, size_t len)
{
    static const unsigned rates[] = {96000, 88200, 64000, 48000, 44100, 32000, 24000,
                                     22050, 16000, 12000, 11025, 8000,  7350};
    unsigned idx = 15;

    for (unsigned i = 0; i < sizeof(rates) / sizeof(rates[0]); i++)
        if (rates[i] == rate)
            idx = i;
    h[0] = 0xFF;
    h[1] = 0xF1;                                         /* MPEG-4, layer 0, no CRC */
    h[2] = (uint8_t)(1 << 6 | idx << 2 | channels >> 2); /* AAC LC */
    h[3] = (uint8_t)((channels & 3) << 6 | len >> 11);
    h[4] = (uint8_t)(len >> 3);
    h[5] = (uint8_t)((len & 7) << 5 | 0x1F); /* buffer fullness 0x7FF: VBR */
    h[6] = 0xFC;
}

static void put_fill(struct bits *b, unsigned count, int escaped)
{
    put(b, 3, ID_FIL);
    if (escaped) {
        put(b, 4, 15);
        put(b, 8, count - 14);
    } else {
        put(b, 4, count);
    }
    if (count > 0) {
        put(b, 4, 0); /* extension_type EXT_FILL */
        put(b, 4, 0); /* fill_nibble */
        for (unsigned i = 1; i < count; i++)
            put(b, 8, 0xA5); /* fill_byte */
    }
}

/* One frame of exactly LEN bytes (min..max) at OUT. The fill elements take
 * the bits between the channel elements and ID_END: full ones while more
 * than one is needed, then one whose size leaves less than a byte, which
 * the byte alignment after ID_END takes. */
static void frame(uint8_t *out, size_t len, unsigned rate, unsigned channels)
{
    struct bits b = {out + ADTS_HEADER, 0};
    size_t left = 8 * (len - ADTS_HEADER) - element_bits(channels) - 3;

    memset(out, 0, len);
    adts_header(out, rate, channels, len);
    if (channels == 1) {
        put(&b, 3, ID_SCE);
        put(&b, 4, 0);
        put_ics(&b);
    } else {
        put(&b, 3, ID_CPE);
        put(&b, 4, 0);
        put(&b, 1, 0); /* common_window */
        put_ics(&b);
        put_ics(&b);
    }
    while (left > fill_bits(FIL_COUNT_MAX, 1) + 7) {
        put_fill(&b, FIL_COUNT_MAX, 1);
        left -= fill_bits(FIL_COUNT_MAX, 1);
    }
    /* then one that leaves under 8 bits (the byte alignment after ID_END):
     * plain counts 0..14 take 7..119 bits, escaped ones 14.. take 127.. */
    if (left >= fill_bits(14, 1))
        put_fill(&b, (unsigned)((left - 15) / 8), 1);
    else if (left >= fill_bits(0, 0))
        put_fill(&b, (unsigned)((left - 7) / 8), 0);
    put(&b, 3, ID_END);
}

long talas_adts_silence(uint8_t *out, size_t len, unsigned rate, unsigned channels)
{
    size_t min, max;
    long frames = 0;

    if (channels != 1 && channels != 2)
        return -1;
    min = talas_adts_silence_min(channels);
    max = talas_adts_silence_max(channels);
    if (len != 0 && len < min)
        return -1;
    while (len > 0) {
        size_t n = len;
        if (n > max)
            n = len - max >= min ? max : len - min; /* leave a last frame of min at least */
        frame(out, n, rate, channels);
        out += n;
        len -= n;
        frames++;
    }
    return frames;
}
