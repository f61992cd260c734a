/*
 * test_catalog.c - unit tests of storage.c, catalog.c, probe.c and scan.c.
 *
 * Track ids against an independent SHA-256 (Python's hashlib), the record
 * format (round trip, every truncation, corrupted lengths, random damage),
 * the LMDB environment, the path index behind listing, and a scan of a
 * small library that the test writes itself: WAV files made here (so no
 * ffmpeg is needed), broken files, odd file names and symlinks.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/record.h"
#include "store/catalog.h"
#include "core/config.h"
#include "scan/probe.h"
#include "scan/scan.h"
#include "store/storage.h"
#include "core/util.h"
#include "tmpdir.h"

/* ------------------------------------------------------------ helpers */

/* An id for the tests that only need one of the right form. */
static void id_of(const char *s, char id_r[TALAS_TRACK_ID_LEN + 1])
{
    talas_track_id_make("test", s, id_r);
}

static const char probe_id[] = "probeprobeprobe0";

static char *make_tmpdir(void)
{
    char *dir = test_tmpdir("catalog");

    assert_non_null(dir);
    return dir;
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *fp = fopen(path, "wb");

    assert_non_null(fp);
    if (len > 0)
        assert_int_equal(fwrite(data, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

static void le16(struct talas_buf *b, uint16_t v)
{
    unsigned char x[2] = {(unsigned char)v, (unsigned char)(v >> 8)};
    talas_buf_append(b, x, 2);
}

static void le32(struct talas_buf *b, uint32_t v)
{
    unsigned char x[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    talas_buf_append(b, x, 4);
}

static void info_chunk(struct talas_buf *b, const char *id, const char *value)
{
    size_t len = strlen(value) + 1;

    talas_buf_append(b, id, 4);
    le32(b, (uint32_t)len);
    talas_buf_append(b, value, len);
    if (len % 2)
        talas_buf_append(b, "", 1);
}

/* A 16-bit PCM WAV of FRAMES frames; INAM/IART become a LIST INFO chunk
 * (libav reads it as the title and artist tags) when not NULL. */
static void write_wav(const char *path, uint32_t rate, uint16_t channels, uint32_t frames, const char *inam,
                      const char *iart)
{
    struct talas_buf info = {0}, b = {0};
    uint32_t data_len = frames * channels * 2;

    if (inam != NULL || iart != NULL) {
        talas_buf_append(&info, "INFO", 4);
        if (inam != NULL)
            info_chunk(&info, "INAM", inam);
        if (iart != NULL)
            info_chunk(&info, "IART", iart);
    }
    talas_buf_append(&b, "RIFF", 4);
    le32(&b, (uint32_t)(4 + 8 + 16 + (info.len ? 8 + info.len : 0) + 8 + data_len));
    talas_buf_append(&b, "WAVE", 4);
    talas_buf_append(&b, "fmt ", 4);
    le32(&b, 16);
    le16(&b, 1); /* PCM */
    le16(&b, channels);
    le32(&b, rate);
    le32(&b, rate * channels * 2);
    le16(&b, (uint16_t)(channels * 2));
    le16(&b, 16);
    if (info.len) {
        talas_buf_append(&b, "LIST", 4);
        le32(&b, (uint32_t)info.len);
        talas_buf_append(&b, info.data, info.len);
    }
    talas_buf_append(&b, "data", 4);
    le32(&b, data_len);
    for (uint32_t i = 0; i < frames * channels; i++)
        le16(&b, (uint16_t)(int16_t)((i % 64) * 512 - 16384)); /* a sawtooth */
    write_file(path, b.data, b.len);
    talas_buf_free(&info);
    talas_buf_free(&b);
}

static struct talas_storage *open_storage(const char *dir)
{
    struct talas_storage *st = NULL;
    char *error = NULL;

    if (talas_storage_open(dir, 64 << 20, &st, &error) != 0)
        fail_msg("talas_storage_open: %s", error);
    return st;
}

static struct talas_track sample_track(void)
{
    struct talas_track t = {0};

    id_of("/music/Caf\xc3\xa9/01 - Intro.flac", t.id);
    t.path = "/music/Caf\xc3\xa9/01 - Intro.flac";
    t.title = "Intro";
    t.artist = "Artiste";
    t.album = "Album \xc3\xa9t\xc3\xa9";
    t.codec = "flac";
    t.container = "flac";
    t.mime = "audio/flac";
    t.error = NULL;
    t.duration_ms = 183456;
    t.sample_rate = 44100;
    t.channels = 2;
    t.bit_rate = 912345;
    t.size = 20123456789ULL;
    t.mtime_ns = 1700000000123456789LL;
    t.scanned_at = 1700000100;
    return t;
}

static void assert_tracks_equal(const struct talas_track *a, const struct talas_track *b)
{
    assert_string_equal(a->id, b->id);
    assert_string_equal(a->path, b->path);
    assert_string_equal(a->title, b->title);
    assert_string_equal(a->artist, b->artist);
    assert_string_equal(a->album, b->album);
    assert_string_equal(a->codec, b->codec);
    assert_string_equal(a->container, b->container);
    assert_string_equal(a->mime, b->mime);
    if (a->error == NULL || b->error == NULL)
        assert_ptr_equal(a->error, b->error);
    else
        assert_string_equal(a->error, b->error);
    assert_int_equal(a->duration_ms, b->duration_ms);
    assert_int_equal(a->sample_rate, b->sample_rate);
    assert_int_equal(a->channels, b->channels);
    assert_int_equal(a->bit_rate, b->bit_rate);
    assert_int_equal(a->size, b->size);
    assert_true(a->mtime_ns == b->mtime_ns);
    assert_int_equal(a->scanned_at, b->scanned_at);
}

/* ---------------------------------------------------------------- ids */

static void test_track_id(void **state)
{
    char a[TALAS_TRACK_ID_LEN + 1], b[TALAS_TRACK_ID_LEN + 1], c[TALAS_TRACK_ID_LEN + 1];

    (void)state;
    /* Expected values from Python:
     * base64.urlsafe_b64encode(hashlib.sha256(b"NAME/RELPATH").digest()[:12]) */
    talas_track_id_make("music", "a.mp3", a);
    assert_string_equal(a, "eS20vvZ9NC5mRPMO");
    talas_track_id_make("music", "Caf\xc3\xa9/01 - Intro.flac", a);
    assert_string_equal(a, "u0sy2Xg-Leo8h973");

    talas_track_id_make("music", "b.mp3", b);
    talas_track_id_make("music", "b.mp3", c);
    assert_string_equal(b, c);
    assert_string_not_equal(a, b);
    assert_int_equal(strlen(b), TALAS_TRACK_ID_LEN);
    assert_int_equal(strspn(b, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
                     TALAS_TRACK_ID_LEN);
    assert_true(talas_track_id_valid(b, strlen(b)));

    /* Many paths: all ids well-formed and distinct. */
    for (int i = 0; i < 200; i++) {
        char path[64];
        snprintf(path, sizeof(path), "/music/%d.mp3", i);
        id_of(path, a);
        assert_true(talas_track_id_valid(a, strlen(a)));
        id_of(path, c);
        assert_string_equal(a, c);
        if (i > 0)
            assert_string_not_equal(a, b);
        memcpy(b, a, sizeof(a));
    }

    assert_false(talas_track_id_valid("..", 2));
    assert_false(talas_track_id_valid("../etc/passwd", 13));
    assert_false(talas_track_id_valid("../etc/passwd123", 16));
    assert_false(talas_track_id_valid("AAAAAAAAAAAAAAA", 15));
    assert_false(talas_track_id_valid("AAAAAAAAAAAAAAAAA", 17));
    assert_false(talas_track_id_valid("AAAAAAA/AAAAAAAA", 16));
    assert_false(talas_track_id_valid("AAAAAAA%2fAAAAAA", 16));
    assert_false(talas_track_id_valid("AAAAAAA.AAAAAAAA", 16));
    assert_false(talas_track_id_valid("AAAAAAA\0AAAAAAAA", 16));
    assert_false(talas_track_id_valid("", 0));
    assert_false(talas_track_id_valid(NULL, 16));
    assert_true(talas_track_id_valid("AZaz09-_AZaz09-_", 16));
}

/* ------------------------------------------------------------- records */

static void test_encode_decode(void **state)
{
    struct talas_track t = sample_track(), d;
    struct talas_buf b = {0};

    (void)state;
    talas_track_encode(&t, &b);
    assert_int_equal(talas_track_decode(b.data, b.len, &d), 0);
    assert_tracks_equal(&t, &d);
    /* Strings point into the record. */
    assert_true(d.path > b.data && d.path < b.data + b.len);
    talas_buf_free(&b);

    /* A failed record keeps its error; NULL strings read back as "". */
    t.error = "Invalid data found when processing input";
    t.artist = NULL;
    t.album = NULL;
    talas_track_encode(&t, &b);
    assert_int_equal(talas_track_decode(b.data, b.len, &d), 0);
    assert_string_equal(d.error, t.error);
    assert_string_equal(d.artist, "");
    assert_string_equal(d.album, "");
    talas_buf_free(&b);

    /* A negative mtime (before 1970) survives. */
    t = sample_track();
    t.mtime_ns = -5;
    talas_track_encode(&t, &b);
    assert_int_equal(talas_track_decode(b.data, b.len, &d), 0);
    assert_true(d.mtime_ns == -5);
    talas_buf_free(&b);

    assert_int_equal(talas_track_decode(NULL, 0, &d), -1);
}

/* Version 2 carries the analysis; silence's -inf and a failure's reason
 * read back as written. */
static void test_encode_decode_analysis(void **state)
{
    struct talas_track t = sample_track(), d;
    struct talas_buf b = {0};

    (void)state;
    t.analysis.flags = TALAS_ANALYSIS_LOUDNESS | TALAS_ANALYSIS_TEMPO;
    t.analysis.integrated_lufs = -INFINITY;
    t.analysis.range_lu = 4.25;
    t.analysis.true_peak_dbtp = -0.5;
    t.analysis.sample_peak_dbfs = -1.25;
    t.analysis.sample_peak = 0.865;
    t.analysis.bpm = 120.07;
    t.analysis.bpm_confidence = 1.5;
    talas_track_encode(&t, &b);
    assert_int_equal(talas_track_decode(b.data, b.len, &d), 0);
    assert_int_equal(d.analysis.flags, t.analysis.flags);
    assert_true(isinf(d.analysis.integrated_lufs) && d.analysis.integrated_lufs < 0);
    assert_true(d.analysis.range_lu == 4.25 && d.analysis.true_peak_dbtp == -0.5);
    assert_true(d.analysis.sample_peak_dbfs == -1.25 && d.analysis.sample_peak == 0.865);
    assert_true(d.analysis.bpm == 120.07 && d.analysis.bpm_confidence == 1.5);
    assert_null(d.analysis.error);
    talas_buf_free(&b);

    memset(&t.analysis, 0, sizeof(t.analysis));
    t.analysis.flags = TALAS_ANALYSIS_FAILED;
    t.analysis.error = "truncated";
    talas_track_encode(&t, &b);
    assert_int_equal(talas_track_decode(b.data, b.len, &d), 0);
    assert_int_equal(d.analysis.flags, TALAS_ANALYSIS_FAILED);
    assert_string_equal(d.analysis.error, "truncated");
    talas_buf_free(&b);
}

/* A record of version 1 (before the analysis) still reads: as a track not
 * analysed yet, which the next scan measures. Its bytes are version 2's
 * without the analysis block. */
static void test_decode_version_1(void **state)
{
    struct talas_track t = sample_track(), d;
    struct talas_buf b = {0};
    /* flags, 7 doubles, an empty string; then version 3's tags: two empty
     * strings, three u32, a u8, an empty string */
    size_t tail = 4 + 7 * 8 + 4 + 1 + 2 * 5 + 3 * 4 + 1 + 5;

    (void)state;
    talas_track_encode(&t, &b);
    assert_true(b.len > tail);
    b.data[0] = 1;
    assert_int_equal(talas_track_decode(b.data, b.len - tail, &d), 0);
    assert_tracks_equal(&t, &d);
    assert_int_equal(d.analysis.flags, 0);
    /* version 1 with the analysis block is damaged, not version 2 */
    assert_int_equal(talas_track_decode(b.data, b.len, &d), -1);
    b.data[0] = 4;
    assert_int_equal(talas_track_decode(b.data, b.len, &d), -1);
    talas_buf_free(&b);
}

/* A record as version 2 wrote it (before the tags), field by field: it
 * still reads, with its analysis, empty tags and no cover, and says it
 * is version 2 (the scanner reads the file's tags again). */
static void put_version_2(const struct talas_track *t, struct talas_buf *b)
{
    struct talas_record_writer w;

    talas_record_writer_buf(&w, b);
    talas_record_put_u8(&w, 2);
    talas_record_put_u8(&w, 0);
    talas_record_put_u64(&w, t->duration_ms);
    talas_record_put_u32(&w, t->sample_rate);
    talas_record_put_u32(&w, t->channels);
    talas_record_put_u64(&w, t->bit_rate);
    talas_record_put_u64(&w, t->size);
    talas_record_put_i64(&w, t->mtime_ns);
    talas_record_put_u64(&w, t->scanned_at);
    talas_record_put_str(&w, t->id);
    talas_record_put_str(&w, t->path);
    talas_record_put_str(&w, t->title);
    talas_record_put_str(&w, t->artist);
    talas_record_put_str(&w, t->album);
    talas_record_put_str(&w, t->codec);
    talas_record_put_str(&w, t->container);
    talas_record_put_str(&w, t->mime);
    talas_record_put_str(&w, NULL);
    talas_record_put_u32(&w, TALAS_ANALYSIS_LOUDNESS);
    for (int i = 0; i < 7; i++)
        talas_record_put_f64(&w, -14.5);
    talas_record_put_str(&w, NULL);
    assert_int_equal(talas_record_writer_end(&w), 0);
}

static void test_decode_version_2(void **state)
{
    struct talas_track t = sample_track(), d;
    struct talas_buf b = {0};

    (void)state;
    put_version_2(&t, &b);
    assert_int_equal(talas_track_decode(b.data, b.len, &d), 0);
    assert_tracks_equal(&t, &d);
    assert_int_equal(d.record_version, 2);
    assert_int_equal(d.analysis.flags, TALAS_ANALYSIS_LOUDNESS);
    assert_true(d.analysis.integrated_lufs == -14.5);
    assert_string_equal(d.album_artist, "");
    assert_string_equal(d.genre, "");
    assert_int_equal(d.track_number, 0);
    assert_int_equal(d.disc_number, 0);
    assert_int_equal(d.year, 0);
    assert_int_equal(d.cover, TALAS_COVER_NONE);
    talas_buf_free(&b);
}

/* Version 3 keeps the tags and the cover's source. */
static void test_encode_decode_tags(void **state)
{
    struct talas_track t = sample_track(), d;
    struct talas_buf b = {0};

    (void)state;
    t.album_artist = "Various Artists";
    t.genre = "Jazz";
    t.track_number = 7;
    t.disc_number = 2;
    t.year = 1999;
    t.cover = TALAS_COVER_FOLDER;
    t.cover_file = "cover.jpg";
    talas_track_encode(&t, &b);
    assert_int_equal(talas_track_decode(b.data, b.len, &d), 0);
    assert_tracks_equal(&t, &d);
    assert_int_equal(d.record_version, TALAS_TRACK_TAGS_VERSION);
    assert_string_equal(d.album_artist, "Various Artists");
    assert_string_equal(d.genre, "Jazz");
    assert_int_equal(d.track_number, 7);
    assert_int_equal(d.disc_number, 2);
    assert_int_equal(d.year, 1999);
    assert_int_equal(d.cover, TALAS_COVER_FOLDER);
    assert_string_equal(d.cover_file, "cover.jpg");
    talas_buf_free(&b);

    /* an embedded picture names no file; a folder picture must */
    t.cover = TALAS_COVER_EMBEDDED;
    talas_track_encode(&t, &b);
    assert_int_equal(talas_track_decode(b.data, b.len, &d), 0);
    assert_int_equal(d.cover, TALAS_COVER_EMBEDDED);
    assert_string_equal(d.cover_file, "");
    talas_buf_free(&b);
    t.cover = TALAS_COVER_FOLDER;
    t.cover_file = "";
    talas_track_encode(&t, &b);
    assert_int_equal(talas_track_decode(b.data, b.len, &d), -1);
    talas_buf_free(&b);
}

/* Decodes LEN bytes from a heap copy of exactly that size (so that a
 * sanitizer sees any overread) and checks the strings stay inside. */
static int decode_exact(const void *data, size_t len)
{
    char *copy = xmalloc(len);
    struct talas_track d;
    int rc;

    memcpy(copy, data, len);
    rc = talas_track_decode(copy, len, &d);
    if (rc == 0) {
        const char *strs[] = {d.path, d.title, d.artist, d.album, d.codec, d.container, d.mime, d.error};
        for (size_t i = 0; i < TALAS_ARRAY_SIZE(strs); i++) {
            if (strs[i] == NULL)
                continue;
            assert_true(strs[i] >= copy && strs[i] < copy + len);
            assert_true(strs[i] + strlen(strs[i]) < copy + len);
        }
        assert_true(talas_track_id_valid(d.id, strlen(d.id)));
    }
    free(copy);
    return rc;
}

static void test_decode_truncated(void **state)
{
    struct talas_track t = sample_track();
    struct talas_buf b = {0};

    (void)state;
    t.error = "no audio stream";
    talas_track_encode(&t, &b);
    assert_int_equal(decode_exact(b.data, b.len), 0);
    for (size_t len = 0; len < b.len; len++)
        assert_int_equal(decode_exact(b.data, len), -1);

    /* A byte too many is as bad as one too few. */
    talas_buf_append(&b, "", 1);
    assert_int_equal(decode_exact(b.data, b.len), -1);
    talas_buf_free(&b);
}

static void test_decode_corrupted(void **state)
{
    static const unsigned char flips[] = {0x01, 0x02, 0x10, 0x7f, 0x80, 0xff};
    struct talas_track t = sample_track();
    struct talas_buf b = {0};
    size_t fixed = 1 + 1 + 8 + 4 + 4 + 8 + 8 + 8 + 8, pos, nstrings = 0;
    size_t len_at[16], str_len[16], analysis_at = 0, cover_at = 0;
    uint32_t seed = 12345;

    (void)state;
    t.error = "x";

    /* Where the string lengths are: 9 strings, the analysis (u32 flags, 7
     * doubles), its error string, album artist, genre, three u32 and the
     * cover (u8), the cover file. */
    t.album_artist = "Various";
    t.genre = "Pop";
    t.track_number = 3;
    talas_track_encode(&t, &b);
    pos = fixed;
    while (pos < b.len) {
        if (nstrings == 9) {
            analysis_at = pos;
            pos += 4 + 7 * 8;
        }
        if (nstrings == 12) {
            cover_at = pos + 3 * 4;
            pos += 3 * 4 + 1;
        }
        uint32_t l = (uint32_t)(unsigned char)b.data[pos] | (uint32_t)(unsigned char)b.data[pos + 1] << 8 |
                     (uint32_t)(unsigned char)b.data[pos + 2] << 16 |
                     (uint32_t)(unsigned char)b.data[pos + 3] << 24;
        assert_true(nstrings < TALAS_ARRAY_SIZE(len_at));
        len_at[nstrings] = pos;
        str_len[nstrings++] = l;
        pos += 4 + l + 1;
    }
    assert_int_equal(pos, b.len);
    assert_int_equal(nstrings, 13); /* id, 8 strings, the analysis error, 2 tags, the cover file */

    /* Every byte, several flips: never a crash, never a string outside. */
    for (size_t i = 0; i < b.len; i++) {
        for (size_t f = 0; f < sizeof(flips); f++) {
            /* Damage that must be caught: the version, the flags (only
             * one bit is defined, and it must agree with the error
             * string), a length, a terminator, a NUL inside a string. */
            int must_fail = i <= 1;
            /* the analysis flags: 3 bits defined */
            if ((i == analysis_at && (flips[f] & ~TALAS_ANALYSIS_FLAGS) != 0) ||
                (i > analysis_at && i < analysis_at + 4))
                must_fail = 1;
            /* the cover: 0 (none) and 1 (embedded) need no file, 2 does */
            if (i == cover_at && flips[f] >= TALAS_COVER_FOLDER)
                must_fail = 1;
            b.data[i] ^= flips[f];
            for (size_t s = 0; s < nstrings; s++) {
                size_t text = len_at[s] + 4, nul = text + str_len[s];
                if ((i >= len_at[s] && i < text) || i == nul || (i >= text && i < nul && b.data[i] == '\0'))
                    must_fail = 1;
            }
            if (must_fail)
                assert_int_equal(decode_exact(b.data, b.len), -1);
            else
                decode_exact(b.data, b.len);
            b.data[i] ^= flips[f];
        }
    }

    /* Random damage, several bytes at a time. */
    for (int round = 0; round < 20000; round++) {
        struct talas_buf c = {0};
        int n;

        talas_buf_append(&c, b.data, b.len);
        seed = seed * 1103515245 + 12345;
        n = 1 + (int)(seed >> 16) % 4;
        for (int k = 0; k < n; k++) {
            seed = seed * 1103515245 + 12345;
            size_t at = (seed >> 8) % c.len;
            seed = seed * 1103515245 + 12345;
            c.data[at] = (char)(seed >> 16);
        }
        seed = seed * 1103515245 + 12345;
        decode_exact(c.data, c.len - (seed >> 16) % 3);
        talas_buf_free(&c);
    }
    talas_buf_free(&b);
}

/* ------------------------------------------------------------- storage */

static void test_storage_open(void **state)
{
    char *dir = make_tmpdir(), *sub = NULL, *error = NULL, *blocker;
    struct talas_storage *st = NULL;
    struct talas_track t = sample_track(), d;
    struct stat sb;
    MDB_txn *txn;
    int dead = -1;

    (void)state;
    /* The directory is created, parents included, 0750. */
    sub = xasprintf("%s/a/b/db", dir);
    st = open_storage(sub);
    assert_int_equal(stat(sub, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
    assert_int_equal(sb.st_mode & 0777, 0750);
    assert_string_equal(talas_storage_path(st), sub);
    assert_non_null(talas_storage_env(st));
    assert_int_equal(talas_storage_reader_check(sub, &dead, &error), 0);
    assert_int_equal(dead, 0);

    /* Fill the data file past 1 MiB, then reopen it with a 1 MiB map. */
    assert_int_equal(talas_storage_write_begin(st, &txn), 0);
    for (int i = 0; i < 3000; i++) {
        char *path = xasprintf("/music/padding/%05d-%0400d.mp3", i, i);
        id_of(path, t.id);
        t.path = path;
        assert_int_equal(talas_catalog_put(st, txn, &t), 0);
        free(path);
    }
    assert_int_equal(mdb_txn_commit(txn), 0);
    talas_storage_close(st);
    free(error);
    error = NULL;
    assert_int_equal(talas_storage_open(sub, 1 << 20, &st, &error), 0);
    assert_null(error);
    assert_int_equal(talas_storage_read_begin(st, &txn), 0);
    {
        char *path = xasprintf("/music/padding/%05d-%0400d.mp3", 2999, 2999);
        char id[TALAS_TRACK_ID_LEN + 1];
        id_of(path, id);
        assert_int_equal(talas_catalog_get(st, txn, id, &d), 0);
        assert_string_equal(d.path, path);
        free(path);
    }
    mdb_txn_abort(txn);
    talas_storage_close(st);

    /* A file where a directory should be: the message names path and call. */
    blocker = xasprintf("%s/file", dir);
    write_file(blocker, "x", 1);
    free(sub);
    sub = xasprintf("%s/file/db", dir);
    st = NULL;
    assert_int_equal(talas_storage_open(sub, 1 << 20, &st, &error), -1);
    assert_null(st);
    assert_non_null(error);
    assert_non_null(strstr(error, sub));
    assert_non_null(strstr(error, "mkdir"));
    free(error);

    free(blocker);
    free(sub);
    test_rm_rf(dir);
    free(dir);
}

/* ------------------------------------------------------------- catalog */

struct collected {
    char *titles[64];
    char *paths[64];
    size_t n;
    size_t stop_after; /* 0: never */
};

static int collect(const struct talas_track *t, void *arg)
{
    struct collected *c = arg;

    assert_true(c->n < TALAS_ARRAY_SIZE(c->titles));
    c->titles[c->n] = xstrdup(t->title);
    c->paths[c->n] = xstrdup(t->path);
    c->n++;
    return c->stop_after != 0 && c->n >= c->stop_after;
}

static void collected_free(struct collected *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->titles[i]);
        free(c->paths[i]);
    }
    memset(c, 0, sizeof(*c));
}

static void put_track(struct talas_storage *st, MDB_txn *txn, const char *path, const char *title,
                      const char *artist, const char *album, const char *error)
{
    struct talas_track t = sample_track();

    id_of(path, t.id);
    t.path = path;
    t.title = title;
    t.artist = artist;
    t.album = album;
    t.error = error;
    assert_int_equal(talas_catalog_put(st, txn, &t), 0);
}

static void test_catalog_crud_list(void **state)
{
    char *dir = make_tmpdir();
    struct talas_storage *st = open_storage(dir);
    struct collected c = {0};
    struct talas_track t;
    char id[TALAS_TRACK_ID_LEN + 1], long_path[1200];
    size_t total = 99, damaged = 99;
    MDB_txn *txn;

    (void)state;
    assert_int_equal(talas_storage_write_begin(st, &txn), 0);
    /* Inserted out of order: listing follows the paths. */
    put_track(st, txn, "/m/d.mp3", "Delta", "The Beatles", "Abbey Road", NULL);
    put_track(st, txn, "/m/b.mp3", "Bravo", "Nina Simone", "Pastel Blues", NULL);
    put_track(st, txn, "/m/e.mp3", "Echo", "Beyonc\xc3\xa9", "Lemonade", NULL);
    put_track(st, txn, "/m/a.mp3", "Alpha", "Miles Davis", "Kind of Blue", NULL);
    put_track(st, txn, "/m/c.mp3", "Charlie", "", "", "Invalid data found when processing input");
    memset(long_path, 'x', sizeof(long_path) - 1);
    memcpy(long_path, "/m/zz/", 6);
    long_path[sizeof(long_path) - 1] = '\0';
    put_track(st, txn, long_path, "Zulu", "", "", NULL);
    assert_int_equal(mdb_txn_commit(txn), 0);

    assert_int_equal(talas_storage_read_begin(st, &txn), 0);

    /* get */
    id_of("/m/b.mp3", id);
    assert_int_equal(talas_catalog_get(st, txn, id, &t), 0);
    assert_string_equal(t.title, "Bravo");
    assert_string_equal(t.path, "/m/b.mp3");
    assert_null(t.error);
    id_of("/m/c.mp3", id);
    assert_int_equal(talas_catalog_get(st, txn, id, &t), 0);
    assert_string_equal(t.error, "Invalid data found when processing input");
    id_of("/m/nope.mp3", id);
    assert_int_equal(talas_catalog_get(st, txn, id, &t), MDB_NOTFOUND);
    assert_int_equal(talas_catalog_get(st, txn, "../etc/passwd", &t), MDB_NOTFOUND);

    /* foreach sees everything, failed records included, in path order */
    assert_int_equal(talas_catalog_foreach(st, txn, collect, &c, &damaged), 0);
    assert_int_equal(damaged, 0);
    assert_int_equal(c.n, 6);
    assert_string_equal(c.titles[0], "Alpha");
    assert_string_equal(c.titles[2], "Charlie");
    assert_string_equal(c.titles[5], "Zulu");
    assert_string_equal(c.paths[5], long_path);
    collected_free(&c);

    /* list: playable only, paged, with the total of all matches */
    assert_int_equal(talas_catalog_list(st, txn, NULL, 0, 100, collect, &c, &total), 0);
    assert_int_equal(total, 5);
    assert_int_equal(c.n, 5);
    assert_string_equal(c.titles[0], "Alpha");
    assert_string_equal(c.titles[1], "Bravo");
    assert_string_equal(c.titles[2], "Delta");
    assert_string_equal(c.titles[3], "Echo");
    assert_string_equal(c.titles[4], "Zulu");
    collected_free(&c);

    assert_int_equal(talas_catalog_list(st, txn, "", 1, 2, collect, &c, &total), 0);
    assert_int_equal(total, 5);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.titles[0], "Bravo");
    assert_string_equal(c.titles[1], "Delta");
    collected_free(&c);

    assert_int_equal(talas_catalog_list(st, txn, NULL, 4, 10, collect, &c, &total), 0);
    assert_int_equal(total, 5);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.titles[0], "Zulu");
    collected_free(&c);

    assert_int_equal(talas_catalog_list(st, txn, NULL, 10, 10, collect, &c, &total), 0);
    assert_int_equal(total, 5);
    assert_int_equal(c.n, 0);

    assert_int_equal(talas_catalog_list(st, txn, NULL, 0, 0, collect, &c, &total), 0);
    assert_int_equal(total, 5);
    assert_int_equal(c.n, 0);

    /* FN stopping early does not change the total. */
    c.stop_after = 1;
    assert_int_equal(talas_catalog_list(st, txn, NULL, 0, 10, collect, &c, &total), 0);
    assert_int_equal(c.n, 1);
    assert_int_equal(total, 5);
    collected_free(&c);

    /* query: title, artist or album, ASCII case folded */
    assert_int_equal(talas_catalog_list(st, txn, "BLUE", 0, 10, collect, &c, &total), 0);
    assert_int_equal(total, 2);
    assert_string_equal(c.titles[0], "Alpha");
    assert_string_equal(c.titles[1], "Bravo");
    collected_free(&c);
    assert_int_equal(talas_catalog_list(st, txn, "beatles", 0, 10, collect, &c, &total), 0);
    assert_int_equal(total, 1);
    assert_string_equal(c.titles[0], "Delta");
    collected_free(&c);
    assert_int_equal(talas_catalog_list(st, txn, "eCHo", 0, 10, collect, &c, &total), 0);
    assert_int_equal(total, 1);
    collected_free(&c);
    /* non-ASCII bytes compare exactly: é matches, É does not */
    assert_int_equal(talas_catalog_list(st, txn, "onc\xc3\xa9", 0, 10, collect, &c, &total), 0);
    assert_int_equal(total, 1);
    assert_string_equal(c.titles[0], "Echo");
    collected_free(&c);
    assert_int_equal(talas_catalog_list(st, txn, "ONC\xc3\x89", 0, 10, collect, &c, &total), 0);
    assert_int_equal(total, 0);
    /* a failed record never matches */
    assert_int_equal(talas_catalog_list(st, txn, "Charlie", 0, 10, collect, &c, &total), 0);
    assert_int_equal(total, 0);
    assert_int_equal(talas_catalog_list(st, txn, "no such thing", 0, 10, collect, &c, &total), 0);
    assert_int_equal(total, 0);
    assert_int_equal(c.n, 0);
    mdb_txn_abort(txn);

    /* Rewriting an id under another path moves its index entry. */
    assert_int_equal(talas_storage_write_begin(st, &txn), 0);
    id_of("/m/a.mp3", id);
    assert_int_equal(talas_catalog_get(st, txn, id, &t), 0);
    t.path = "/m/y.mp3";
    t.title = "Alpha moved";
    assert_int_equal(talas_catalog_put(st, txn, &t), 0);
    /* and back to a long path, and then the long one is deleted */
    id_of(long_path, id);
    assert_int_equal(talas_catalog_del(st, txn, id), 0);
    assert_int_equal(talas_catalog_del(st, txn, id), MDB_NOTFOUND);
    id_of("/m/d.mp3", id);
    assert_int_equal(talas_catalog_del(st, txn, id), 0);
    assert_int_equal(talas_catalog_get(st, txn, id, &t), MDB_NOTFOUND);
    assert_int_equal(mdb_txn_commit(txn), 0);

    assert_int_equal(talas_storage_read_begin(st, &txn), 0);
    assert_int_equal(talas_catalog_list(st, txn, NULL, 0, 10, collect, &c, &total), 0);
    assert_int_equal(total, 3);
    assert_string_equal(c.titles[0], "Bravo");
    assert_string_equal(c.titles[1], "Echo");
    assert_string_equal(c.titles[2], "Alpha moved");
    assert_string_equal(c.paths[2], "/m/y.mp3");
    collected_free(&c);
    {
        /* the old path's index entry is gone, not merely skipped */
        MDB_val key = {strlen("/m/a.mp3"), "/m/a.mp3"}, val;
        MDB_stat ms;
        assert_int_equal(mdb_get(txn, talas_storage_dbi(st, TALAS_DBI_TRACK_PATHS), &key, &val),
                         MDB_NOTFOUND);
        assert_int_equal(mdb_stat(txn, talas_storage_dbi(st, TALAS_DBI_TRACK_PATHS), &ms), 0);
        assert_int_equal(ms.ms_entries, 4); /* b, c, e, y */
    }
    mdb_txn_abort(txn);

    /* A damaged record: get says so, listing skips and counts it, and it
     * can still be deleted. */
    assert_int_equal(talas_storage_write_begin(st, &txn), 0);
    {
        MDB_val key, val;
        id_of("/m/b.mp3", id);
        key.mv_data = id;
        key.mv_size = TALAS_TRACK_ID_LEN;
        val.mv_data = "\x01garbage";
        val.mv_size = 8;
        assert_int_equal(mdb_put(txn, talas_storage_dbi(st, TALAS_DBI_TRACKS), &key, &val, 0), 0);
    }
    assert_int_equal(talas_catalog_get(st, txn, id, &t), -1);
    assert_int_equal(talas_catalog_foreach(st, txn, collect, &c, &damaged), 0);
    assert_int_equal(damaged, 1);
    assert_int_equal(c.n, 3); /* c (failed), e, y */
    collected_free(&c);
    assert_int_equal(talas_catalog_list(st, txn, NULL, 0, 10, collect, &c, &total), 0);
    assert_int_equal(total, 2);
    collected_free(&c);
    assert_int_equal(talas_catalog_del(st, txn, id), 0);
    {
        /* its path entry went with it */
        MDB_val key = {strlen("/m/b.mp3"), "/m/b.mp3"}, val;
        assert_int_equal(mdb_get(txn, talas_storage_dbi(st, TALAS_DBI_TRACK_PATHS), &key, &val),
                         MDB_NOTFOUND);
    }
    assert_int_equal(mdb_txn_commit(txn), 0);

    talas_storage_close(st);
    test_rm_rf(dir);
    free(dir);
}

static void test_scan_status(void **state)
{
    char *dir = make_tmpdir();
    struct talas_storage *st = open_storage(dir);
    struct talas_scan_status s = {0}, r;
    MDB_txn *txn;

    (void)state;
    assert_int_equal(talas_storage_write_begin(st, &txn), 0);
    assert_int_equal(talas_catalog_scan_status_get(st, txn, &r), MDB_NOTFOUND);
    s.running = 1;
    s.pid = 4242;
    s.started_at = 1700000000;
    s.finished_at = 1700000100;
    s.files = 10;
    s.tracks = 8;
    s.errors = 2;
    s.added = 3;
    s.updated = 4;
    s.removed = 5;
    s.unchanged = 6;
    assert_int_equal(talas_catalog_scan_status_put(st, txn, &s), 0);
    assert_int_equal(talas_catalog_scan_status_get(st, txn, &r), 0);
    assert_memory_equal(&s, &r, sizeof(s));
    {
        MDB_val key = {4, "scan"}, val = {3, "\x01\x00\x00"};
        assert_int_equal(mdb_put(txn, talas_storage_dbi(st, TALAS_DBI_META), &key, &val, 0), 0);
    }
    assert_int_equal(talas_catalog_scan_status_get(st, txn, &r), -1);
    mdb_txn_abort(txn);
    talas_storage_close(st);
    test_rm_rf(dir);
    free(dir);
}

static void test_mime(void **state)
{
    (void)state;
    assert_string_equal(talas_catalog_mime_for_container("mp3"), "audio/mpeg");
    assert_string_equal(talas_catalog_mime_for_container("flac"), "audio/flac");
    assert_string_equal(talas_catalog_mime_for_container("wav"), "audio/wav");
    assert_string_equal(talas_catalog_mime_for_container("ogg"), "audio/ogg");
    assert_string_equal(talas_catalog_mime_for_container("opus"), "audio/ogg");
    assert_string_equal(talas_catalog_mime_for_container("mp4"), "audio/mp4");
    assert_string_equal(talas_catalog_mime_for_container("m4a"), "audio/mp4");
    assert_string_equal(talas_catalog_mime_for_container("aac"), "audio/aac");
    assert_string_equal(talas_catalog_mime_for_container("aiff"), "audio/aiff");
    assert_string_equal(talas_catalog_mime_for_container("webm"), "audio/webm");
    assert_string_equal(talas_catalog_mime_for_container("matroska"), "audio/x-matroska");
    assert_string_equal(talas_catalog_mime_for_container("asf"), "audio/x-ms-wma");
    assert_string_equal(talas_catalog_mime_for_container("MP3"), "audio/mpeg");
    assert_string_equal(talas_catalog_mime_for_container("mp"), "application/octet-stream");
    assert_string_equal(talas_catalog_mime_for_container(""), "application/octet-stream");
    assert_string_equal(talas_catalog_mime_for_container(NULL), "application/octet-stream");
}

/* ---------------------------------------------------------------- probe */

static void test_probe(void **state)
{
    char *dir = make_tmpdir(), *path;
    struct talas_probe_result r;

    (void)state;
    path = xasprintf("%s/Stereo Track.wav", dir);
    write_wav(path, 44100, 2, 44100 * 3 / 2, NULL, NULL);
    assert_int_equal(talas_probe_file(probe_id, path, 1000, 42, &r), 0);
    assert_string_equal(r.track.id, probe_id);
    assert_string_equal(r.track.path, path);
    assert_string_equal(r.track.title, "Stereo Track");
    assert_string_equal(r.track.artist, "");
    assert_string_equal(r.track.codec, "pcm_s16le");
    assert_string_equal(r.track.container, "wav");
    assert_string_equal(r.track.mime, "audio/wav");
    assert_null(r.track.error);
    assert_int_equal(r.track.duration_ms, 1500);
    assert_int_equal(r.track.sample_rate, 44100);
    assert_int_equal(r.track.channels, 2);
    assert_int_equal(r.track.bit_rate, 44100 * 2 * 16);
    assert_int_equal(r.track.size, 1000);
    assert_true(r.track.mtime_ns == 42);
    assert_true(r.track.scanned_at > 1600000000);
    talas_probe_result_free(&r);
    free(path);

    /* Latin-1 tags come out as UTF-8. */
    path = xasprintf("%s/tagged.wav", dir);
    write_wav(path, 8000, 1, 800, "Ch\xe9ri", "Fran\xe7oise");
    assert_int_equal(talas_probe_file(probe_id, path, 1, 0, &r), 0);
    assert_string_equal(r.track.title, "Ch\xc3\xa9ri");
    assert_string_equal(r.track.artist, "Fran\xc3\xa7oise");
    assert_int_equal(r.track.duration_ms, 100);
    talas_probe_result_free(&r);
    free(path);

    path = xasprintf("%s/empty.mp3", dir);
    write_file(path, "", 0);
    assert_int_equal(talas_probe_file(probe_id, path, 0, 0, &r), -1);
    assert_string_equal(r.track.error, "empty file");
    assert_string_equal(r.track.title, "empty");
    talas_probe_result_free(&r);
    free(path);

    path = xasprintf("%s/notes.mp3", dir);
    write_file(path, "these are not notes\n", 20);
    assert_int_equal(talas_probe_file(probe_id, path, 20, 0, &r), -1);
    assert_non_null(r.track.error);
    assert_true(strlen(r.track.error) > 0);
    assert_string_equal(r.track.title, "notes");
    talas_probe_result_free(&r);
    free(path);

    path = xasprintf("%s/missing.mp3", dir);
    assert_int_equal(talas_probe_file(probe_id, path, 20, 0, &r), -1);
    assert_string_equal(r.track.error, strerror(ENOENT));
    talas_probe_result_free(&r);
    free(path);

    test_rm_rf(dir);
    free(dir);
}

/* ----------------------------------------------------------------- scan */

struct progress_count {
    struct talas_storage *st;
    size_t calls, final_calls, running; /* running: status said so */
};

static void on_progress(const struct talas_scan_progress *p, void *arg)
{
    struct progress_count *pc = arg;
    struct talas_scan_status status;
    MDB_txn *txn;

    pc->calls++;
    if (p->current == NULL)
        pc->final_calls++;
    assert_int_equal(talas_storage_read_begin(pc->st, &txn), 0);
    assert_int_equal(talas_catalog_scan_status_get(pc->st, txn, &status), 0);
    if (status.running && status.pid == getpid() && status.finished_at == 0)
        pc->running++;
    mdb_txn_abort(txn);
}

static const char *find_title(struct collected *c, const char *title)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->titles[i], title) == 0)
            return c->paths[i];
    return NULL;
}

struct by_path {
    const char *path;
    char id[TALAS_TRACK_ID_LEN + 1];
};

static int match_path(const struct talas_track *t, void *arg)
{
    struct by_path *bp = arg;

    if (strcmp(t->path, bp->path) != 0)
        return 0;
    memcpy(bp->id, t->id, sizeof(bp->id));
    return 1;
}

static void get_by_path(struct talas_storage *st, const char *path, struct talas_track *t, MDB_txn *txn)
{
    struct by_path bp = {path, ""};

    assert_int_equal(talas_catalog_foreach(st, txn, match_path, &bp, NULL), 0);
    assert_int_equal(strlen(bp.id), TALAS_TRACK_ID_LEN);
    assert_int_equal(talas_catalog_get(st, txn, bp.id, t), 0);
}

static void test_scan(void **state)
{
    char *dir = make_tmpdir(), *lib, *outside, *db, *p, *error = NULL;
    char *exts[] = {"mp3", ".wav", "flac"};
    struct talas_config_library roots[2];
    struct talas_config conf = {0};
    struct talas_storage *st;
    struct talas_scan_progress res;
    struct talas_scan_status status;
    struct progress_count pc = {0};
    struct collected c = {0};
    struct talas_track t;
    struct timespec times[2];
    size_t total;
    MDB_txn *txn;
    int lock_fd;

    (void)state;
    lib = xasprintf("%s/My Library", dir);
    outside = xasprintf("%s/outside", dir);
    db = xasprintf("%s/db", dir);
    assert_int_equal(mkdir(lib, 0755), 0);
    assert_int_equal(mkdir(outside, 0755), 0);

#define LIB(name) (free(p), p = xasprintf("%s/%s", lib, name))
    p = NULL;
    /* candidates: 4 playable, 2 not */
    write_wav(LIB("a.wav"), 8000, 1, 12345, NULL, NULL); /* 1543.125 ms */
    write_file(LIB("empty.mp3"), "", 0);
    write_file(LIB("notes.mp3"), "shopping list: milk, eggs\n", 26);
    assert_int_equal(mkdir(LIB("dossier \xc3\xa9"), 0755), 0);
    write_wav(LIB("dossier \xc3\xa9/chanson \xc3\xbc.wav"), 22050, 2, 22050, NULL, NULL);
    write_wav(LIB("caf\xe9.wav"), 8000, 1, 8000, NULL, NULL); /* a Latin-1 file name */
    assert_int_equal(mkdir(LIB("sub"), 0755), 0);
    write_wav(LIB("sub/LOUD.WAV"), 8000, 1, 4000, "Loud & Clear", "Someone");
    /* not candidates */
    write_file(LIB("cover.jpg"), "\xff\xd8\xff\xe0", 4);
    write_file(LIB("readme.txt"), "hi", 2);
    write_wav(LIB(".hidden.wav"), 8000, 1, 100, NULL, NULL);
    assert_int_equal(mkdir(LIB(".git"), 0755), 0);
    write_wav(LIB(".git/x.wav"), 8000, 1, 100, NULL, NULL);
    free(p);
    p = xasprintf("%s/secret.wav", outside);
    write_wav(p, 8000, 1, 100, NULL, NULL);
    /* symlinks: outside (not followed), a loop, an alias of a file inside */
    assert_int_equal(symlink(outside, LIB("outside-dir")), 0);
    free(p);
    p = xasprintf("%s/secret.wav", outside);
    {
        char *link = xasprintf("%s/outside.wav", lib);
        assert_int_equal(symlink(p, link), 0);
        free(link);
    }
    assert_int_equal(symlink("..", LIB("sub/loop")), 0);
    assert_int_equal(symlink(".", LIB("sub/self")), 0);
    assert_int_equal(symlink("../a.wav", LIB("sub/alias.wav")), 0);
    assert_int_equal(symlink("nowhere", LIB("dangling.wav")), 0);

    roots[0].path = lib;
    roots[0].name = "lib";
    roots[1].path = xasprintf("%s/not-there", dir);
    roots[1].name = "not-there";
    conf.library_paths = roots;
    conf.library_path_count = 2;
    conf.library_extensions = exts;
    conf.library_extension_count = TALAS_ARRAY_SIZE(exts);
    conf.storage_path = db;
    st = open_storage(db);
    pc.st = st;

    /* first scan */
    if (talas_scan_run(&conf, st, 0, on_progress, &pc, &res, &error) != 0)
        fail_msg("scan: %s", error);
    assert_int_equal(res.files, 6);
    assert_int_equal(res.probed, 6);
    assert_int_equal(res.added, 6);
    assert_int_equal(res.updated, 0);
    assert_int_equal(res.unchanged, 0);
    assert_int_equal(res.removed, 0);
    assert_int_equal(res.errors, 2);
    assert_int_equal(res.dirs, 3); /* lib, sub, dossier */
    assert_null(res.current);
    assert_int_equal(pc.calls, 7);
    assert_int_equal(pc.final_calls, 1);
    assert_int_equal(pc.running, 6); /* every call but the final one, made once the status is written */

    assert_int_equal(talas_storage_read_begin(st, &txn), 0);
    assert_int_equal(talas_catalog_scan_status_get(st, txn, &status), 0);
    assert_int_equal(status.running, 0);
    assert_int_equal(status.pid, getpid());
    assert_int_equal(status.files, 6);
    assert_int_equal(status.tracks, 4);
    assert_int_equal(status.errors, 2);
    assert_int_equal(status.added, 6);
    assert_true(status.finished_at >= status.started_at && status.started_at > 0);

    assert_int_equal(talas_catalog_list(st, txn, NULL, 0, 50, collect, &c, &total), 0);
    assert_int_equal(total, 4);
    /* path order: a.wav, caf\xe9.wav, dossier \xc3\xa9/..., sub/LOUD.WAV */
    assert_string_equal(c.titles[0], "a");
    assert_string_equal(c.titles[1], "caf\xc3\xa9");
    assert_string_equal(c.titles[2], "chanson \xc3\xbc");
    assert_string_equal(c.titles[3], "Loud & Clear");
    assert_null(find_title(&c, "secret"));
    collected_free(&c);

    LIB("a.wav");
    get_by_path(st, p, &t, txn);
    assert_null(t.error);
    assert_int_equal(t.duration_ms, 1543);
    assert_int_equal(t.sample_rate, 8000);
    assert_int_equal(t.channels, 1);
    assert_string_equal(t.mime, "audio/wav");
    LIB("caf\xe9.wav"); /* the path is kept as raw bytes */
    get_by_path(st, p, &t, txn);
    assert_string_equal(t.path, p);
    assert_int_equal(t.duration_ms, 1000);
    LIB("dossier \xc3\xa9/chanson \xc3\xbc.wav");
    get_by_path(st, p, &t, txn);
    assert_int_equal(t.channels, 2);
    assert_int_equal(t.duration_ms, 1000);
    LIB("sub/LOUD.WAV");
    get_by_path(st, p, &t, txn);
    assert_string_equal(t.artist, "Someone");
    assert_int_equal(t.duration_ms, 500);
    LIB("empty.mp3");
    get_by_path(st, p, &t, txn);
    assert_string_equal(t.error, "empty file");
    assert_string_equal(t.title, "empty");
    LIB("notes.mp3");
    get_by_path(st, p, &t, txn);
    assert_non_null(t.error);
    assert_true(strlen(t.error) > 0);
    /* the alias was recorded once, under the resolved path */
    LIB("sub/alias.wav");
    {
        char id[TALAS_TRACK_ID_LEN + 1];
        talas_track_id_make("lib", "sub/alias.wav", id);
        assert_int_equal(talas_catalog_get(st, txn, id, &t), MDB_NOTFOUND);
    }
    mdb_txn_abort(txn);

    /* second scan: nothing to probe */
    memset(&pc, 0, sizeof(pc));
    pc.st = st;
    if (talas_scan_run(&conf, st, 0, on_progress, &pc, &res, &error) != 0)
        fail_msg("scan: %s", error);
    assert_int_equal(res.files, 6);
    assert_int_equal(res.probed, 0);
    assert_int_equal(res.unchanged, 6);
    assert_int_equal(res.added + res.updated + res.removed, 0);
    assert_int_equal(res.errors, 2);

    /* third: a file removed, one touched, one replaced by a valid file */
    assert_int_equal(unlink(LIB("empty.mp3")), 0);
    times[0].tv_sec = 1500000000;
    times[0].tv_nsec = 0;
    times[1].tv_sec = 1500000000;
    times[1].tv_nsec = 123456789;
    assert_int_equal(utimensat(AT_FDCWD, LIB("a.wav"), times, 0), 0);
    write_wav(LIB("notes.mp3"), 8000, 1, 8000, NULL, NULL); /* a WAV named .mp3: libav goes by content */
    if (talas_scan_run(&conf, st, 0, NULL, NULL, &res, &error) != 0)
        fail_msg("scan: %s", error);
    assert_int_equal(res.files, 5);
    assert_int_equal(res.probed, 2);
    assert_int_equal(res.updated, 2);
    assert_int_equal(res.removed, 1);
    assert_int_equal(res.unchanged, 3);
    assert_int_equal(res.errors, 0);

    assert_int_equal(talas_storage_read_begin(st, &txn), 0);
    LIB("a.wav");
    get_by_path(st, p, &t, txn);
    assert_true(t.mtime_ns == 1500000000123456789LL);
    LIB("notes.mp3");
    get_by_path(st, p, &t, txn);
    assert_null(t.error);
    assert_string_equal(t.container, "wav");
    assert_int_equal(talas_catalog_scan_status_get(st, txn, &status), 0);
    assert_int_equal(status.tracks, 5);
    assert_int_equal(status.errors, 0);
    assert_int_equal(status.removed, 1);
    assert_int_equal(talas_catalog_list(st, txn, NULL, 0, 50, collect, &c, &total), 0);
    assert_int_equal(total, 5);
    collected_free(&c);
    mdb_txn_abort(txn);

    /* a scan holding the lock keeps another from starting (wait = 0) */
    free(p);
    p = xasprintf("%s/scan.lock", db);
    lock_fd = open(p, O_RDWR | O_CLOEXEC);
    assert_true(lock_fd >= 0);
    assert_int_equal(flock(lock_fd, LOCK_EX), 0);
    assert_int_equal(talas_scan_run(&conf, st, 0, NULL, NULL, &res, &error), -1);
    assert_non_null(error);
    assert_non_null(strstr(error, "another scan"));
    free(error);
    error = NULL;
    close(lock_fd);

    /* A library folder that went missing keeps its records (an unmounted
     * disk must not empty the catalog); one with files that disappeared
     * loses them. */
    {
        char *moved = xasprintf("%s/moved away", dir);
        conf.library_path_count = 1; /* roots[0], lib, alone */
        assert_int_equal(rename(lib, moved), 0);
        if (talas_scan_run(&conf, st, 1, NULL, NULL, &res, &error) != 0)
            fail_msg("scan: %s", error);
        assert_int_equal(res.files, 0);
        assert_int_equal(res.removed, 0);
        assert_int_equal(rename(moved, lib), 0);
        free(moved);
        assert_int_equal(talas_storage_read_begin(st, &txn), 0);
        assert_int_equal(talas_catalog_list(st, txn, NULL, 0, 50, collect, &c, &total), 0);
        assert_int_equal(total, 5);
        collected_free(&c);
        mdb_txn_abort(txn);

        assert_int_equal(unlink(LIB("sub/LOUD.WAV")), 0);
        if (talas_scan_run(&conf, st, 1, NULL, NULL, &res, &error) != 0)
            fail_msg("scan: %s", error);
        assert_int_equal(res.files, 4);
        assert_int_equal(res.removed, 1);
        assert_int_equal(res.unchanged, 4);
    }
#undef LIB

    talas_storage_close(st);
    free(p);
    free(roots[1].path);
    free(lib);
    free(outside);
    free(db);
    test_rm_rf(dir);
    free(dir);
}

/* More files than a batch, in both directions; and a second scan waits
 * for the first (wait = 1) instead of failing. */
static void test_scan_batches_and_lock(void **state)
{
    char *dir = make_tmpdir(), *lib = xasprintf("%s/lib", dir), *db = xasprintf("%s/db", dir), *p;
    char *exts[] = {"wav"}, *error = NULL;
    struct talas_config_library roots[] = {{lib, "lib"}};
    struct talas_config conf = {0};
    struct talas_scan_progress res;
    struct talas_storage *st;
    int ready[2], status;
    uint64_t t0;
    pid_t pid;

    (void)state;
    assert_int_equal(mkdir(lib, 0755), 0);
    for (int i = 0; i < 150; i++) {
        p = xasprintf("%s/%03d.wav", lib, i);
        write_wav(p, 8000, 1, 80, NULL, NULL);
        free(p);
    }
    conf.library_paths = roots;
    conf.library_path_count = 1;
    conf.library_extensions = exts;
    conf.library_extension_count = 1;
    st = open_storage(db);
    if (talas_scan_run(&conf, st, 0, NULL, NULL, &res, &error) != 0)
        fail_msg("scan: %s", error);
    assert_int_equal(res.added, 150);
    assert_int_equal(res.errors, 0);

    for (int i = 0; i < 150; i++) {
        p = xasprintf("%s/%03d.wav", lib, i);
        assert_int_equal(unlink(p), 0);
        free(p);
    }

    /* A child holds the lock for a while. */
    assert_int_equal(pipe(ready), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char *lock = xasprintf("%s/scan.lock", db);
        int fd = open(lock, O_RDWR | O_CLOEXEC);
        if (fd == -1 || flock(fd, LOCK_EX) == -1 || write(ready[1], "x", 1) != 1)
            _exit(1);
        usleep(300 * 1000);
        _exit(0);
    }
    close(ready[1]);
    {
        char x;
        assert_int_equal(read(ready[0], &x, 1), 1);
    }
    close(ready[0]);
    assert_int_equal(talas_scan_run(&conf, st, 0, NULL, NULL, &res, &error), -1);
    free(error);
    error = NULL;
    t0 = talas_now_ms();
    if (talas_scan_run(&conf, st, 1, NULL, NULL, &res, &error) != 0)
        fail_msg("scan: %s", error);
    assert_true(talas_now_ms() - t0 >= 200);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(res.removed, 150);
    assert_int_equal(res.files, 0);

    talas_storage_close(st);
    test_rm_rf(dir);
    free(lib);
    free(db);
    free(dir);
}

/* The id of a scanned file is its library's name and its path below the
 * library's folder, nothing else: the same tree at two places (two nodes'
 * mounts) gives the same ids, another name other ids, and a name given in
 * the configuration overrides the folder's own. */
struct ids_seen {
    char ids[4][TALAS_TRACK_ID_LEN + 1];
    size_t n;
};

static int collect_id(const struct talas_track *t, void *arg)
{
    struct ids_seen *seen = arg;

    if (seen->n < 4)
        memcpy(seen->ids[seen->n++], t->id, TALAS_TRACK_ID_LEN + 1);
    return 0;
}

static void scan_ids(const char *dir, const char *root, const char *name, const char *db, struct ids_seen *seen)
{
    char *exts[] = {"wav"}, *error = NULL, *path = xasprintf("%s/%s", dir, root), *dbp = xasprintf("%s/%s", dir, db);
    struct talas_config_library lib = {path, (char *)name};
    struct talas_config conf = {0};
    struct talas_scan_progress res;
    struct talas_storage *st;
    MDB_txn *txn;

    conf.library_paths = &lib;
    conf.library_path_count = 1;
    conf.library_extensions = exts;
    conf.library_extension_count = 1;
    st = open_storage(dbp);
    if (talas_scan_run(&conf, st, 0, NULL, NULL, &res, &error) != 0)
        fail_msg("scan: %s", error);
    assert_int_equal(res.added, 2);
    memset(seen, 0, sizeof(*seen));
    assert_int_equal(talas_storage_read_begin(st, &txn), 0);
    assert_int_equal(talas_catalog_foreach(st, txn, collect_id, seen, NULL), 0);
    mdb_txn_abort(txn);
    assert_int_equal(seen->n, 2);
    talas_storage_close(st);
    free(path);
    free(dbp);
}

static void test_scan_ids_relative(void **state)
{
    const char *trees[] = {"a/music", "b/deeper/music", "c/other"};
    char *dir = make_tmpdir(), want[TALAS_TRACK_ID_LEN + 1];
    struct ids_seen a, b, c, named;

    (void)state;
    for (size_t i = 0; i < TALAS_ARRAY_SIZE(trees); i++) {
        char *p = xasprintf("%s/%s/sub", dir, trees[i]);
        char *cmd = xasprintf("mkdir -p '%s'", p);
        assert_int_equal(system(cmd), 0);
        free(cmd);
        free(p);
        p = xasprintf("%s/%s/x.wav", dir, trees[i]);
        write_wav(p, 8000, 1, 80, NULL, NULL);
        free(p);
        p = xasprintf("%s/%s/sub/y.wav", dir, trees[i]);
        write_wav(p, 8000, 1, 80, NULL, NULL);
        free(p);
    }
    scan_ids(dir, "a/music", "music", "db-a", &a);
    scan_ids(dir, "b/deeper/music", "music", "db-b", &b);
    scan_ids(dir, "c/other", "other", "db-c", &c);
    scan_ids(dir, "c/other", "music", "db-named", &named);
    for (size_t i = 0; i < 2; i++) {
        assert_string_equal(a.ids[i], b.ids[i]);
        assert_string_equal(a.ids[i], named.ids[i]);
        assert_string_not_equal(a.ids[i], c.ids[i]);
    }
    /* path order: sub/y.wav sorts after x.wav? "/sub" < "/x.wav" */
    talas_track_id_make("music", "sub/y.wav", want);
    assert_string_equal(a.ids[0], want);
    talas_track_id_make("music", "x.wav", want);
    assert_string_equal(a.ids[1], want);
    talas_track_id_make("other", "x.wav", want);
    assert_string_equal(c.ids[1], want);
    test_rm_rf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_track_id),
        cmocka_unit_test(test_encode_decode),
        cmocka_unit_test(test_decode_truncated),
        cmocka_unit_test(test_decode_corrupted),
        cmocka_unit_test(test_encode_decode_analysis),
        cmocka_unit_test(test_decode_version_1),
        cmocka_unit_test(test_decode_version_2),
        cmocka_unit_test(test_encode_decode_tags),
        cmocka_unit_test(test_storage_open),
        cmocka_unit_test(test_catalog_crud_list),
        cmocka_unit_test(test_scan_status),
        cmocka_unit_test(test_mime),
        cmocka_unit_test(test_probe),
        cmocka_unit_test(test_scan),
        cmocka_unit_test(test_scan_batches_and_lock),
        cmocka_unit_test(test_scan_ids_relative),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
