/*
 * test_version_name.c - the file-name grammar of track versions
 * (src/store/version_name.c): every documented form, the order of a
 * song's versions, and the names that must not carry a version.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "store/version_name.h"

static struct talas_version_name parse_ok(const char *name)
{
    struct talas_version_name v;

    assert_int_equal(talas_version_name_parse(name, strlen(name), &v), 0);
    return v;
}

static void expect(const char *name, int versioned, const char *key, uint64_t rank, const char *label)
{
    struct talas_version_name v = parse_ok(name);

    assert_int_equal(v.versioned, versioned);
    assert_string_equal(v.key, key);
    assert_int_equal(v.key_len, strlen(key));
    assert_true(v.rank == rank);
    assert_string_equal(v.label, label);
}

static void test_forms(void **state)
{
    (void)state;
    expect("song v1.wav", 1, "song", 2, "v1");
    expect("song_v2.flac", 1, "song", 3, "v2");
    expect("song-v2.flac", 1, "song", 3, "v2");
    expect("song (v3).mp3", 1, "song", 4, "v3");
    expect("song(v3).mp3", 1, "song", 4, "v3");
    expect("song_(v3).mp3", 1, "song", 4, "v3");
    expect("song - final.wav", 1, "song", TALAS_VERSION_RANK_FINAL, "final");
    expect("song FINAL.wav", 1, "song", TALAS_VERSION_RANK_FINAL, "final");
    expect("song (Final).wav", 1, "song", TALAS_VERSION_RANK_FINAL, "final");
    expect("Song V2.mp3", 1, "song", 3, "v2");
    expect("song v10.mp3", 1, "song", 11, "v10");
    expect("song v007.mp3", 1, "song", 8, "v7");
    expect("my song  __ v2.ogg", 1, "my song", 3, "v2");
    expect("song v1", 1, "song", 2, "v1"); /* no extension */
    expect("song.v1.wav", 0, "song.v1", TALAS_VERSION_RANK_ORIGINAL, "");
}

static void test_not_versions(void **state)
{
    struct talas_version_name v;

    (void)state;
    expect("song.wav", 0, "song", TALAS_VERSION_RANK_ORIGINAL, "");
    expect("songbird.wav", 0, "songbird", TALAS_VERSION_RANK_ORIGINAL, "");
    expect("songv2.wav", 0, "songv2", TALAS_VERSION_RANK_ORIGINAL, "");
    expect("v1.wav", 0, "v1", TALAS_VERSION_RANK_ORIGINAL, "");
    expect("song vx.wav", 0, "song vx", TALAS_VERSION_RANK_ORIGINAL, "");
    expect("song v.wav", 0, "song v", TALAS_VERSION_RANK_ORIGINAL, "");
    expect("song v1234567890.wav", 0, "song v1234567890", TALAS_VERSION_RANK_ORIGINAL, "");
    expect("song finale.wav", 0, "song finale", TALAS_VERSION_RANK_ORIGINAL, "");
    expect("song - (v3).wav", 0, "song - (v3)", TALAS_VERSION_RANK_ORIGINAL, "");
    expect(".hidden", 0, ".hidden", TALAS_VERSION_RANK_ORIGINAL, "");
    assert_int_equal(talas_version_name_parse("", 0, &v), -1);
    assert_int_equal(talas_version_name_parse(".wav", 4, &v), 0); /* a leading dot is no extension */
    assert_int_equal(talas_version_name_parse("_v1.wav", 7, &v), 0);
    assert_int_equal(v.versioned, 0);
}

static void test_order(void **state)
{
    static const char *const names[] = {"song.wav", "song v0.wav", "song v1.wav", "song v2.wav",
                                        "song_v2.flac", "song (v3).mp3", "song v10.mp3", "song - final.wav"};
    struct talas_version_name a, b;

    (void)state;
    for (size_t i = 0; i + 1 < sizeof(names) / sizeof(names[0]); i++) {
        a = parse_ok(names[i]);
        b = parse_ok(names[i + 1]);
        assert_string_equal(a.key, b.key);
        assert_true(talas_version_name_cmp(&a, names[i], &b, names[i + 1]) < 0);
        assert_true(talas_version_name_cmp(&b, names[i + 1], &a, names[i]) > 0);
    }
}

static void test_long_base(void **state)
{
    char name[TALAS_VERSION_KEY_MAX + 16];
    struct talas_version_name v;

    (void)state;
    memset(name, 'a', TALAS_VERSION_KEY_MAX);
    strcpy(name + TALAS_VERSION_KEY_MAX, " v1.wav");
    assert_int_equal(talas_version_name_parse(name, strlen(name), &v), 0);
    assert_int_equal(v.versioned, 1);
    assert_int_equal(v.key_len, TALAS_VERSION_KEY_MAX);
    memset(name, 'a', TALAS_VERSION_KEY_MAX + 1);
    strcpy(name + TALAS_VERSION_KEY_MAX + 1, ".wav");
    assert_int_equal(talas_version_name_parse(name, strlen(name), &v), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forms),
        cmocka_unit_test(test_not_versions),
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_long_base),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
