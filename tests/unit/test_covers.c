/*
 * test_covers.c - cover art and AAC padding, below the HTTP layer:
 * src/store/covers.c (a stored JPEG found again by id and size, not for
 * another source identity, the database bounded at TALAS_COVERS_MAX),
 * workers/media/cover_image.c (types from the first bytes; a resize has
 * its longest side exactly the size asked for, in proportion; junk and
 * truncated pictures refused, never a crash) and
 * workers/media/adts_silence.c (every length from the smallest frame up
 * is whole ADTS frames that libavcodec's AAC decoder reads as silence,
 * without an error).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <libavcodec/avcodec.h>
#include <libavutil/frame.h>

#include "core/util.h"
#include "media/adts_silence.h"
#include "media/cover_image.h"
#include "store/covers.h"
#include "store/storage.h"
#include "tmpdir.h"

static const struct talas_cache_source source = {1234, 1700000000123456789LL};

/* ------------------------------------------------------------ store */

static void test_store(void **state)
{
    struct talas_cache_source other = source;
    struct talas_storage *st;
    char *dir = test_tmpdir("covers"), *error = NULL, id[17];
    const void *data;
    size_t len;
    MDB_txn *txn;
    MDB_stat stat;

    assert_non_null(dir);
    if (talas_storage_open(dir, 64 << 20, &st, &error) != 0)
        fail_msg("talas_storage_open: %s", error);
    assert_int_equal(talas_covers_put(st, "aaaaaaaaaaaaaaaa", 64, &source, "jpeg-64", 7), 0);
    assert_int_equal(talas_covers_put(st, "aaaaaaaaaaaaaaaa", 640, &source, "jpeg-640", 8), 0);
    other.mtime_ns++;
    assert_int_equal(talas_storage_read_begin(st, &txn), 0);
    assert_int_equal(talas_covers_get(st, txn, "aaaaaaaaaaaaaaaa", 64, &source, &data, &len), 0);
    assert_int_equal(len, 7);
    assert_memory_equal(data, "jpeg-64", 7);
    assert_int_equal(talas_covers_get(st, txn, "aaaaaaaaaaaaaaaa", 640, &source, &data, &len), 0);
    assert_memory_equal(data, "jpeg-640", 8);
    assert_int_equal(talas_covers_get(st, txn, "aaaaaaaaaaaaaaaa", 65, &source, &data, &len), MDB_NOTFOUND);
    assert_int_equal(talas_covers_get(st, txn, "bbbbbbbbbbbbbbbb", 64, &source, &data, &len), MDB_NOTFOUND);
    /* a changed picture is not served from its old resize */
    assert_int_equal(talas_covers_get(st, txn, "aaaaaaaaaaaaaaaa", 64, &other, &data, &len), MDB_NOTFOUND);
    mdb_txn_abort(txn);

    /* bounded: never more than TALAS_COVERS_MAX records */
    for (int i = 0; i < TALAS_COVERS_MAX + 100; i++) {
        snprintf(id, sizeof(id), "%016x", i);
        assert_int_equal(talas_covers_put(st, id, 32, &source, "x", 1), 0);
    }
    assert_int_equal(talas_storage_read_begin(st, &txn), 0);
    assert_int_equal(mdb_stat(txn, talas_storage_dbi(st, TALAS_DBI_COVERS), &stat), 0);
    assert_true(stat.ms_entries <= TALAS_COVERS_MAX);
    assert_true(stat.ms_entries >= TALAS_COVERS_MAX - 64);
    mdb_txn_abort(txn);
    talas_storage_close(st);
    test_rm_rf(dir);
    free(dir);
}

/* ------------------------------------------------------------ images */

/* A W x H picture encoded with CODEC (MJPEG or PNG) into OUT. */
static void make_picture(enum AVCodecID codec_id, int w, int h, struct talas_buf *out)
{
    const AVCodec *codec = avcodec_find_encoder(codec_id);
    AVCodecContext *enc = avcodec_alloc_context3(codec);
    AVFrame *f = av_frame_alloc();
    AVPacket *pkt = av_packet_alloc();

    enc->width = w;
    enc->height = h;
    enc->pix_fmt = codec_id == AV_CODEC_ID_PNG ? AV_PIX_FMT_RGB24 : AV_PIX_FMT_YUVJ420P;
    enc->time_base = (AVRational){1, 1};
    assert_int_equal(avcodec_open2(enc, codec, NULL), 0);
    f->width = w;
    f->height = h;
    f->format = enc->pix_fmt;
    assert_int_equal(av_frame_get_buffer(f, 0), 0);
    for (int p = 0; p < 3 && f->data[p] != NULL; p++)
        for (int y = 0; y < (p == 0 || codec_id == AV_CODEC_ID_PNG ? h : (h + 1) / 2); y++)
            memset(f->data[p] + y * f->linesize[p], (y * 7 + p * 40) & 0xff, (size_t)f->linesize[p]);
    assert_int_equal(avcodec_send_frame(enc, f), 0);
    assert_int_equal(avcodec_send_frame(enc, NULL), 0);
    assert_int_equal(avcodec_receive_packet(enc, pkt), 0);
    talas_buf_append(out, pkt->data, (size_t)pkt->size);
    av_packet_free(&pkt);
    av_frame_free(&f);
    avcodec_free_context(&enc);
}

/* The size of JPEG DATA, decoded. */
static void jpeg_size(const struct talas_buf *jpeg, int *w_r, int *h_r)
{
    const AVCodec *codec = avcodec_find_decoder(AV_CODEC_ID_MJPEG);
    AVCodecContext *dec = avcodec_alloc_context3(codec);
    AVPacket *pkt = av_packet_alloc();
    AVFrame *f = av_frame_alloc();

    assert_int_equal(avcodec_open2(dec, codec, NULL), 0);
    assert_int_equal(av_new_packet(pkt, (int)jpeg->len), 0);
    memcpy(pkt->data, jpeg->data, jpeg->len);
    assert_int_equal(avcodec_send_packet(dec, pkt), 0);
    assert_int_equal(avcodec_receive_frame(dec, f), 0);
    *w_r = f->width;
    *h_r = f->height;
    av_frame_free(&f);
    av_packet_free(&pkt);
    avcodec_free_context(&dec);
}

static void test_types(void **state)
{
    assert_string_equal(talas_cover_image_type("\xff\xd8\xff\xe0", 4), "image/jpeg");
    assert_string_equal(talas_cover_image_type("\x89PNG\r\n\x1a\n", 8), "image/png");
    assert_string_equal(talas_cover_image_type("GIF89a", 6), "image/gif");
    assert_string_equal(talas_cover_image_type("RIFF\0\0\0\0WEBP", 12), "image/webp");
    assert_string_equal(talas_cover_image_type("BM", 2), "image/bmp");
    assert_string_equal(talas_cover_image_type("<html>", 6), "application/octet-stream");
    assert_string_equal(talas_cover_image_type("\xff", 1), "application/octet-stream");
    assert_string_equal(talas_cover_image_type("", 0), "application/octet-stream");
}

static void test_resize(void **state)
{
    static const struct {
        enum AVCodecID codec;
        int w, h;
        uint32_t size;
        int want_w, want_h;
    } cases[] = {
        {AV_CODEC_ID_PNG, 200, 100, 64, 64, 32},      {AV_CODEC_ID_MJPEG, 100, 300, 64, 21, 64},
        {AV_CODEC_ID_MJPEG, 320, 240, 500, 500, 375}, {AV_CODEC_ID_PNG, 7, 7, 1, 1, 1},
        {AV_CODEC_ID_PNG, 1000, 3, 100, 100, 1},      {AV_CODEC_ID_MJPEG, 64, 64, 2048, 2048, 2048},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct talas_buf pic = {0}, out = {0};
        char *error = NULL;
        int w, h;

        make_picture(cases[i].codec, cases[i].w, cases[i].h, &pic);
        if (talas_cover_image_resize(pic.data, pic.len, cases[i].size, &out, &error) != 0)
            fail_msg("case %zu: %s", i, error);
        assert_string_equal(talas_cover_image_type(out.data, out.len), "image/jpeg");
        jpeg_size(&out, &w, &h);
        assert_int_equal(w, cases[i].want_w);
        assert_int_equal(h, cases[i].want_h);
        talas_buf_free(&pic);
        talas_buf_free(&out);
    }
}

static void test_resize_refuses_junk(void **state)
{
    struct talas_buf pic = {0}, out = {0};
    char *error = NULL;
    unsigned char junk[4096];

    /* out of range sizes */
    make_picture(AV_CODEC_ID_PNG, 16, 16, &pic);
    assert_int_equal(talas_cover_image_resize(pic.data, pic.len, 0, &out, &error), -1);
    free(error);
    error = NULL;
    assert_int_equal(talas_cover_image_resize(pic.data, pic.len, TALAS_COVER_SIZE_MAX + 1, &out, &error), -1);
    free(error);
    error = NULL;
    /* every truncation of a PNG and a JPEG: refused or decoded, never a crash */
    for (int k = 0; k < 2; k++) {
        pic.len = 0;
        make_picture(k == 0 ? AV_CODEC_ID_PNG : AV_CODEC_ID_MJPEG, 40, 30, &pic);
        for (size_t n = 0; n < pic.len; n += 3) {
            out.len = 0;
            if (talas_cover_image_resize(pic.data, n, 16, &out, &error) != 0) {
                assert_non_null(error);
                free(error);
                error = NULL;
            }
        }
    }
    /* a JPEG header then junk; text */
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (unsigned char)(i * 131 + 7);
    memcpy(junk, "\xff\xd8\xff\xe0", 4);
    out.len = 0;
    assert_int_equal(talas_cover_image_resize(junk, sizeof(junk), 64, &out, &error), -1);
    free(error);
    error = NULL;
    assert_int_equal(talas_cover_image_resize("not a picture", 13, 64, &out, &error), -1);
    assert_non_null(error);
    free(error);
    talas_buf_free(&pic);
    talas_buf_free(&out);
}

/* ------------------------------------------------------------ silence */

/* Decodes LEN bytes of ADTS at P frame by frame: the frame count, -1 on a
 * decoder error or a sample that is not silence. */
static long decode_silence(const uint8_t *p, size_t len, unsigned channels)
{
    const AVCodec *codec = avcodec_find_decoder(AV_CODEC_ID_AAC);
    AVCodecContext *dec = avcodec_alloc_context3(codec);
    AVPacket *pkt = av_packet_alloc();
    AVFrame *f = av_frame_alloc();
    long frames = 0;
    size_t pos = 0;

    assert_int_equal(avcodec_open2(dec, codec, NULL), 0);
    while (pos < len) {
        size_t flen;
        if (len - pos < 7 || p[pos] != 0xFF || (p[pos + 1] & 0xF6) != 0xF0)
            return -1;
        flen = (size_t)((p[pos + 3] & 3) << 11 | p[pos + 4] << 3 | p[pos + 5] >> 5);
        if (flen < 7 || flen > len - pos || (p[pos + 3] >> 6 | (p[pos + 2] & 1) << 2) != channels)
            return -1;
        assert_int_equal(av_new_packet(pkt, (int)flen), 0);
        memcpy(pkt->data, p + pos, flen);
        if (avcodec_send_packet(dec, pkt) < 0 || avcodec_receive_frame(dec, f) < 0)
            return -1;
        if (f->nb_samples != 1024 || f->ch_layout.nb_channels != (int)channels)
            return -1;
        for (int c = 0; c < f->ch_layout.nb_channels; c++)
            for (int i = 0; i < f->nb_samples; i++)
                if (((const float *)f->extended_data[c])[i] != 0.0f)
                    return -1;
        av_packet_unref(pkt);
        pos += flen;
        frames++;
    }
    av_frame_free(&f);
    av_packet_free(&pkt);
    avcodec_free_context(&dec);
    return frames;
}

static void test_silence(void **state)
{
    for (unsigned channels = 1; channels <= 2; channels++) {
        size_t min = talas_adts_silence_min(channels), max = talas_adts_silence_max(channels);
        uint8_t *buf = xmalloc(3 * max + min);

        assert_true(min >= 7 && min < 16);
        assert_int_equal(max, 7 + 768 * channels);
        assert_int_equal(talas_adts_silence(buf, 0, 44100, channels), 0);
        assert_int_equal(talas_adts_silence(buf, min - 1, 44100, channels), -1);
        for (size_t len = min; len <= 3 * max + min; len++) {
            long frames = talas_adts_silence(buf, len, len % 2 ? 44100 : 22050, channels);
            assert_true(frames >= 1);
            if (decode_silence(buf, len, channels) != frames)
                fail_msg("%u channel(s), %zu bytes: not %ld silent frames", channels, len, frames);
        }
        free(buf);
    }
    assert_int_equal(talas_adts_silence((uint8_t[64]){0}, 20, 44100, 3), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store),   cmocka_unit_test(test_types),
        cmocka_unit_test(test_resize),  cmocka_unit_test(test_resize_refuses_junk),
        cmocka_unit_test(test_silence),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
