/*
 * test_media_input.c - the Vorbis comment reader and the FLAC comment
 * block hiding of src/scan/media_input.c.
 *
 * Blocks are copied into buffers of exactly their length, so that a read
 * one byte past the end is caught by the sanitizer build. Malformed blocks
 * (lengths that lie, counts larger than the data, entries cut short or
 * without '=') must keep what was read before the damage and never read
 * outside the block. The hiding is checked on small FLAC files written
 * here: libavformat must not see an oversized comment block's tags, and
 * must see an ordinary one's.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <fcntl.h>
#include <unistd.h>

#include "core/util.h"
#include "scan/media_input.h"
#include "tmpdir.h"

static void put_le32(struct talas_buf *b, uint32_t v)
{
    uint8_t p[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};

    talas_buf_append(b, p, 4);
}

/* A comment block: vendor, COUNT (as claimed), then the N entries. */
static void block_build(struct talas_buf *b, uint32_t count, const char *const *entries, size_t n)
{
    put_le32(b, 6);
    talas_buf_append(b, "vendor", 6);
    put_le32(b, count);
    for (size_t i = 0; i < n; i++) {
        put_le32(b, (uint32_t)strlen(entries[i]));
        talas_buf_append(b, entries[i], strlen(entries[i]));
    }
}

/* Parses the first LEN bytes of DATA from an exactly sized copy. */
static void parse_exact(const void *data, size_t len, struct talas_media_tags *tags)
{
    uint8_t *copy = malloc(len > 0 ? len : 1);

    memcpy(copy, data, len);
    talas_media_tags_parse(copy, len, tags);
    free(copy);
}

static void test_fields_first_value_kept(void **state)
{
    static const char *const entries[] = {
        "TITLE=",            /* empty: no title */
        "title=First title", /* keys are case-insensitive */
        "TITLE=Second title",
        "Artist=The Artist",
        "ALBUMARTIST=Album Artist",
        "ALBUM=The Album",
        "NOEQUALSIGN",
        "=no key",
        "ALBUM ARTIST=not a field",
    };
    struct talas_buf b = {0};
    struct talas_media_tags tags = {0};

    (void)state;
    block_build(&b, TALAS_ARRAY_SIZE(entries), entries, TALAS_ARRAY_SIZE(entries));
    parse_exact(b.data, b.len, &tags);
    assert_string_equal(tags.title, "First title");
    assert_string_equal(tags.artist, "The Artist");
    assert_string_equal(tags.album_artist, "Album Artist");
    assert_string_equal(tags.album, "The Album");
    talas_media_tags_free(&tags);
    assert_null(tags.title);

    memset(&tags, 0, sizeof(tags));
    block_build(&b, 1, (const char *const[]){"ALBUM_ARTIST=Underscored"}, 1);
    talas_media_tags_parse((const uint8_t *)b.data + b.len - 4 - 24 - 14, 14 + 4 + 24, &tags);
    assert_string_equal(tags.album_artist, "Underscored");
    talas_media_tags_free(&tags);
    talas_buf_free(&b);
}

static void test_long_value_cut_at_character(void **state)
{
    struct talas_buf b = {0}, entry = {0};
    struct talas_media_tags tags = {0};
    const char *entries[1];

    (void)state;
    talas_buf_puts(&entry, "TITLE=");
    for (int i = 0; i < 2000; i++)
        talas_buf_puts(&entry, "\xe2\x82\xac"); /* U+20AC, 3 bytes: 1024 is inside one */
    entries[0] = entry.data;
    block_build(&b, 1, entries, 1);
    parse_exact(b.data, b.len, &tags);
    assert_non_null(tags.title);
    assert_int_equal(strlen(tags.title), 1023);
    assert_memory_equal(tags.title, entry.data + 6, 1023);
    talas_media_tags_free(&tags);

    /* 4-byte characters: 1024 bytes end exactly on a boundary */
    assert_int_equal(talas_media_tag_cut("\xf0\x9f\x8e\xb5\xf0\x9f\x8e\xb5", 8), 8);
    {
        char s[2000];
        for (size_t i = 0; i < sizeof(s); i += 4)
            memcpy(s + i, "\xf0\x9f\x8e\xb5", 4);
        assert_int_equal(talas_media_tag_cut(s, sizeof(s)), 1024);
        assert_int_equal(talas_media_tag_cut(s + 1, sizeof(s) - 1), 1023); /* starts mid-character */
        memset(s, 0x80, sizeof(s));                                        /* not UTF-8: any cut */
        assert_int_equal(talas_media_tag_cut(s, sizeof(s)), 1021);
        assert_int_equal(talas_media_tag_cut(s, TALAS_TAG_MAX), TALAS_TAG_MAX);
    }
    talas_buf_free(&entry);
    talas_buf_free(&b);
}

static void test_malformed_blocks(void **state)
{
    static const char *const entries[] = {"TITLE=Kept", "ARTIST=Also kept", "ALBUM=Last"};
    struct talas_buf b = {0};
    struct talas_media_tags tags = {0};
    uint8_t *p;

    (void)state;
    /* every truncation of a good block: never a read past its end, and
     * what was whole before the cut is read */
    block_build(&b, 3, entries, 3);
    for (size_t len = 0; len <= b.len; len++) {
        memset(&tags, 0, sizeof(tags));
        parse_exact(b.data, len, &tags);
        if (len == b.len)
            assert_string_equal(tags.album, "Last");
        else
            assert_null(tags.album);
        if (len >= 4 + 6 + 4 + 4 + 10)
            assert_string_equal(tags.title, "Kept");
        talas_media_tags_free(&tags);
    }

    /* a count far larger than the data */
    b.len = 0;
    block_build(&b, 0xffffffffu, entries, 3);
    memset(&tags, 0, sizeof(tags));
    parse_exact(b.data, b.len, &tags);
    assert_string_equal(tags.album, "Last");
    talas_media_tags_free(&tags);

    /* an entry length that runs past the block: the reading stops there */
    p = (uint8_t *)b.data + 4 + 6 + 4 + 4 + 10; /* ARTIST's length */
    p[0] = 0xff, p[1] = 0xff, p[2] = 0xff, p[3] = 0x7f;
    memset(&tags, 0, sizeof(tags));
    parse_exact(b.data, b.len, &tags);
    assert_string_equal(tags.title, "Kept");
    assert_null(tags.artist);
    assert_null(tags.album);
    talas_media_tags_free(&tags);
    p[0] = 0xff, p[1] = 0xff, p[2] = 0xff, p[3] = 0xff;
    memset(&tags, 0, sizeof(tags));
    parse_exact(b.data, b.len, &tags);
    assert_null(tags.artist);
    talas_media_tags_free(&tags);

    /* a vendor length that lies (just past the end, and huge) */
    b.data[0] = (char)(b.len - 3);
    memset(&tags, 0, sizeof(tags));
    parse_exact(b.data, b.len, &tags);
    assert_null(tags.title);
    b.data[0] = b.data[1] = b.data[2] = b.data[3] = (char)0xff;
    parse_exact(b.data, b.len, &tags);
    assert_null(tags.title);
    talas_buf_free(&b);
}

/* A FLAC file with a STREAMINFO block (44.1 kHz stereo, 16 bits, no
 * frames) and COMMENTS entries "TITLE=Hidden title", "Kn=v"... */
static char *write_flac(const char *dir, const char *name, uint32_t comments)
{
    static const uint8_t streaminfo[34] = {0x10, 0x00, 0x10, 0x00, 0,    0, 0, 0, 0,
                                           0,    0x0a, 0xc4, 0x42, 0xf0, 0, 0, 0, 0};
    struct talas_buf b = {0}, vc = {0};
    char *path = xasprintf("%s/%s", dir, name);
    uint8_t hdr[4];
    FILE *f;

    put_le32(&vc, 4);
    talas_buf_append(&vc, "test", 4);
    put_le32(&vc, comments);
    for (uint32_t i = 0; i < comments; i++) {
        char e[32];
        int n = i == 0 ? snprintf(e, sizeof(e), "TITLE=Hidden title") : snprintf(e, sizeof(e), "K%u=v", i);
        put_le32(&vc, (uint32_t)n);
        talas_buf_append(&vc, e, (size_t)n);
    }
    talas_buf_append(&b, "fLaC", 4);
    hdr[0] = 0, hdr[1] = 0, hdr[2] = 0, hdr[3] = sizeof(streaminfo);
    talas_buf_append(&b, hdr, 4);
    talas_buf_append(&b, streaminfo, sizeof(streaminfo));
    hdr[0] = 0x80 | 4, hdr[1] = (uint8_t)(vc.len >> 16), hdr[2] = (uint8_t)(vc.len >> 8),
    hdr[3] = (uint8_t)vc.len;
    talas_buf_append(&b, hdr, 4);
    talas_buf_append(&b, vc.data, vc.len);
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b.data, 1, b.len, f), b.len);
    fclose(f);
    talas_buf_free(&b);
    talas_buf_free(&vc);
    return path;
}

static void open_flac(const char *path, struct talas_media_tags *tags, const char **libav_title_r,
                      int *codec_r)
{
    AVFormatContext *fmt = avformat_alloc_context();
    const AVDictionaryEntry *e;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    assert_true(fd >= 0);
    assert_int_equal(talas_media_open(&fmt, fd, path, NULL, tags), 0);
    assert_string_equal(fmt->iformat->name, "flac");
    e = av_dict_get(fmt->metadata, "title", NULL, 0);
    *libav_title_r = e != NULL ? "Hidden title" : NULL;
    if (e != NULL)
        assert_string_equal(e->value, "Hidden title");
    *codec_r = fmt->nb_streams > 0 ? (int)fmt->streams[0]->codecpar->codec_id : 0;
    talas_media_close(&fmt);
    assert_null(fmt);
}

static void test_flac_comment_block_hidden(void **state)
{
    char *dir = test_tmpdir("media_input");
    char *small, *big;
    struct talas_media_tags tags;
    const char *libav_title;
    int codec;

    (void)state;
    assert_non_null(dir);
    av_log_set_level(AV_LOG_QUIET);

    /* an ordinary block is libavformat's */
    small = write_flac(dir, "small.flac", 20);
    open_flac(small, &tags, &libav_title, &codec);
    assert_int_equal(tags.hidden, 0);
    assert_null(tags.title);
    assert_non_null(libav_title);
    assert_int_equal(codec, AV_CODEC_ID_FLAC);

    /* one comment too many: hidden from libavformat, read here */
    big = write_flac(dir, "big.flac", TALAS_MEDIA_COMMENTS_MAX + 1);
    open_flac(big, &tags, &libav_title, &codec);
    assert_int_equal(tags.hidden, 1);
    assert_string_equal(tags.title, "Hidden title");
    assert_null(libav_title);
    assert_int_equal(codec, AV_CODEC_ID_FLAC);
    talas_media_tags_free(&tags);

    /* without TAGS_R the block is hidden all the same */
    {
        AVFormatContext *fmt = avformat_alloc_context();
        int fd = open(big, O_RDONLY | O_CLOEXEC);

        assert_int_equal(talas_media_open(&fmt, fd, big, NULL, NULL), 0);
        assert_null(av_dict_get(fmt->metadata, "title", NULL, 0));
        talas_media_close(&fmt);
    }
    /* not audio: an error, FD closed, the context freed */
    {
        AVFormatContext *fmt = avformat_alloc_context();
        char *junk = xasprintf("%s/junk.flac", dir);
        FILE *f = fopen(junk, "wb");
        int fd;

        fputs("fLaC, or not", f);
        fclose(f);
        fd = open(junk, O_RDONLY | O_CLOEXEC);
        assert_true(talas_media_open(&fmt, fd, junk, NULL, &tags) < 0);
        assert_null(fmt);
        assert_int_equal(fcntl(fd, F_GETFD), -1);
        free(junk);
    }
    free(small);
    free(big);
    test_rm_rf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields_first_value_kept),
        cmocka_unit_test(test_long_value_cut_at_character),
        cmocka_unit_test(test_malformed_blocks),
        cmocka_unit_test(test_flac_comment_block_hidden),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
