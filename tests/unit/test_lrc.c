/*
 * test_lrc.c - the LRC lyrics parser (src/scan/lrc.c) and the lyrics
 * record it feeds (src/store/lyrics.c): time tags of every documented
 * form, several on one line, offset and metadata, unsynced text, CRLF and
 * a BOM, invalid UTF-8, the size and line bounds, and a record that reads
 * back what was encoded (and refuses a damaged one).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/util.h"
#include "scan/lrc.h"
#include "store/lyrics.h"

static struct talas_lyrics parse_ok(const char *text, size_t len)
{
    struct talas_lyrics l;
    const char *error = NULL;

    assert_int_equal(talas_lrc_parse(text, len, &l, &error), 0);
    return l;
}

static void expect_line(const struct talas_lyrics *l, size_t i, int64_t start, const char *value)
{
    assert_true(i < l->count);
    assert_int_equal(l->lines[i].start_ms, start);
    assert_string_equal(l->lines[i].value, value);
}

static void test_synced(void **state)
{
    static const char text[] = "\xef\xbb\xbf[ar:Some Artist]\r\n"
                               "[ti: A & <Title> ]\r\n"
                               "[la:deu]\r\n"
                               "[offset:-250]\r\n"
                               "[by:someone]\r\n"
                               "[00:01.5]one\r\n"
                               "[00:02.25] two \r\n"
                               "[00:03]three\r\n"
                               "[01:00.123][00:04.00]chorus\r\n"
                               "[Intro]\r\n"
                               "[00:05.000]\r\n";
    struct talas_lyrics l = parse_ok(text, sizeof(text) - 1);

    (void)state;
    assert_int_equal(l.synced, 1);
    assert_int_equal(l.offset_ms, -250);
    assert_string_equal(l.artist, "Some Artist");
    assert_string_equal(l.title, "A & <Title>");
    assert_string_equal(l.lang, "deu");
    assert_int_equal(l.count, 6);
    expect_line(&l, 0, 1500, "one");
    expect_line(&l, 1, 2250, "two");
    expect_line(&l, 2, 3000, "three");
    expect_line(&l, 3, 4000, "chorus");
    expect_line(&l, 4, 5000, "");
    expect_line(&l, 5, 60123, "chorus");
    talas_lyrics_free(&l);
}

static void test_offset_and_lang_forms(void **state)
{
    static const char text[] = "[offset:+500]\n[lang:eng]\n[00:00.10]a\n[00:00.10]b\n[99:59.99]end";
    struct talas_lyrics l = parse_ok(text, sizeof(text) - 1);

    (void)state;
    assert_int_equal(l.offset_ms, 500);
    assert_string_equal(l.lang, "eng");
    assert_string_equal(l.artist, "");
    assert_int_equal(l.count, 3);
    /* two lines at one time keep their order */
    expect_line(&l, 0, 100, "a");
    expect_line(&l, 1, 100, "b");
    expect_line(&l, 2, 99 * 60000 + 59990, "end");
    talas_lyrics_free(&l);
}

static void test_unsynced(void **state)
{
    static const char text[] = "\n\nFirst line\r\n[not a tag\r\n\r\n[ti:Name]\rLast line\n\n";
    struct talas_lyrics l = parse_ok(text, sizeof(text) - 1);

    (void)state;
    assert_int_equal(l.synced, 0);
    assert_string_equal(l.title, "Name");
    assert_int_equal(l.count, 4);
    expect_line(&l, 0, 0, "First line");
    expect_line(&l, 1, 0, "[not a tag");
    expect_line(&l, 2, 0, "");
    expect_line(&l, 3, 0, "Last line");
    talas_lyrics_free(&l);

    l = parse_ok("", 0);
    assert_int_equal(l.count, 0);
    talas_lyrics_free(&l);
}

static void test_bad_time_tags_are_text(void **state)
{
    static const char text[] = "[00:60.00]sixty\n[0a:01]x\n[00:01.0000]four";
    struct talas_lyrics l = parse_ok(text, sizeof(text) - 1);

    (void)state;
    assert_int_equal(l.synced, 0);
    assert_int_equal(l.count, 3);
    expect_line(&l, 0, 0, "[00:60.00]sixty");
    talas_lyrics_free(&l);
}

static void test_invalid_utf8_and_bounds(void **state)
{
    static const char latin1[] = "[00:01.00]caf\xe9";
    struct talas_lyrics l = parse_ok(latin1, sizeof(latin1) - 1);
    const char *error = NULL;
    char *big;
    size_t n;

    (void)state;
    expect_line(&l, 0, 1000, "caf\xc3\xa9");
    talas_lyrics_free(&l);

    assert_int_equal(talas_lrc_parse("a\0b", 3, &l, &error), -1);
    assert_non_null(error);

    big = xmalloc(TALAS_LRC_MAX_BYTES + 2);
    memset(big, 'x', TALAS_LRC_MAX_BYTES + 1);
    assert_int_equal(talas_lrc_parse(big, TALAS_LRC_MAX_BYTES + 1, &l, &error), -1);
    /* a long line is cut at a character boundary */
    for (n = 0; n + 2 <= 3000; n += 2)
        memcpy(big + n, "\xc3\xa9", 2);
    l = parse_ok(big, n);
    assert_true(strlen(l.lines[0].value) <= TALAS_LRC_LINE_MAX);
    assert_int_equal(strlen(l.lines[0].value) % 2, 0);
    talas_lyrics_free(&l);
    /* too many lines */
    for (n = 0; n + 2 <= 2 * (TALAS_LRC_MAX_LINES + 1); n += 2)
        memcpy(big + n, "a\n", 2);
    assert_int_equal(talas_lrc_parse(big, n, &l, &error), -1);
    /* 64 time tags repeat a long line: the text out is bounded too */
    for (n = 0; n + 2000 <= TALAS_LRC_MAX_BYTES;) {
        for (int i = 0; i < 64; i++)
            n += (size_t)sprintf(big + n, "[00:%02d]", i % 60);
        memset(big + n, 'y', 1000);
        n += 1000;
        big[n++] = '\n';
    }
    assert_int_equal(talas_lrc_parse(big, n, &l, &error), -1);
    assert_non_null(strstr(error, "more text"));
    free(big);
}

static void test_record_round_trip(void **state)
{
    static const char text[] = "[ar:X]\n[00:01.00]one\n[00:02.00]two";
    struct talas_lyrics sets[2];
    struct talas_lyrics_sidecar sc = {1, 1234, 5678};
    struct talas_lyrics_record rec;
    struct talas_lyrics_set set;
    struct talas_buf buf = {0};
    const char *value;
    int64_t start;

    (void)state;
    sets[0] = parse_ok(text, sizeof(text) - 1);
    sets[1] = parse_ok("plain", 5);
    talas_lyrics_encode(&sc, TALAS_LYRICS_SIDECAR, sets, 2, &buf);
    assert_int_equal(talas_lyrics_decode(buf.data, buf.len, &rec), 0);
    assert_int_equal(rec.sidecar.present, 1);
    assert_int_equal(rec.sidecar.size, 1234);
    assert_int_equal(rec.sidecar.mtime_ns, 5678);
    assert_int_equal(rec.source, TALAS_LYRICS_SIDECAR);
    assert_int_equal(rec.sets, 2);
    assert_int_equal(talas_lyrics_next_set(&rec, &set), 0);
    assert_int_equal(set.synced, 1);
    assert_int_equal(set.count, 2);
    assert_int_equal(talas_lyrics_next_line(&set, &start, &value), 0);
    assert_int_equal(start, 1000);
    assert_string_equal(value, "one");
    assert_int_equal(talas_lyrics_next_set(&rec, &set), 0);
    assert_int_equal(set.synced, 0);
    assert_int_equal(talas_lyrics_next_line(&set, &start, &value), 0);
    assert_string_equal(value, "plain");
    assert_int_equal(talas_lyrics_next_line(&set, &start, &value), -1);
    assert_int_equal(talas_lyrics_next_set(&rec, &set), -1);

    /* every shortened record is refused */
    for (size_t len = 0; len < buf.len; len++)
        assert_int_equal(talas_lyrics_decode(buf.data, len, &rec), -1);
    talas_buf_free(&buf);
    talas_lyrics_free(&sets[0]);
    talas_lyrics_free(&sets[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_synced),
        cmocka_unit_test(test_offset_and_lang_forms),
        cmocka_unit_test(test_unsynced),
        cmocka_unit_test(test_bad_time_tags_are_text),
        cmocka_unit_test(test_invalid_utf8_and_bounds),
        cmocka_unit_test(test_record_round_trip),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
