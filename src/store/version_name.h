/*
 * version_name.h - the file-name grammar of track versions: which names in
 * one folder are versions of one song ("song v1.wav", "song_v2.flac",
 * "song (v3).mp3", "song - final.wav"), and in what order.
 *
 *   name    = stem [ "." ext ]          (ext: after the last '.', which is
 *                                        not the first byte)
 *   stem    = base sep version
 *           | base [ " " | "_" ] "(" version ")"
 *   sep     = one or more of ' ', '_', '-'
 *   version = ( "v" | "V" ) 1*9 DIGIT   (numbered: v1 < v2 < v10)
 *           | "final"                   (any case; after every number)
 *   base    = one or more bytes, whose last is not a separator
 *
 * A name without a version (base = the whole stem) is the song's original
 * when a versioned name with the same base sits beside it; it comes first.
 * Bases compare with ASCII letters folded to lower case ("Song v1" and
 * "song v2" group); the caller adds the folder, so names in different
 * folders never group.
 *
 * Pure: no allocation, no I/O, no logging. Fuzzed (tests/fuzz/
 * fuzz_versions.c) and unit-tested (tests/unit/test_version_name.c).
 */
#ifndef TALAS_VERSION_NAME_H
#define TALAS_VERSION_NAME_H

#include <stddef.h>
#include <stdint.h>

/* The longest base a key holds; a longer base has no versions. */
#define TALAS_VERSION_KEY_MAX 255

/* Ranks: the original, then v0 .. v999999999 as 1 + N, then final. */
#define TALAS_VERSION_RANK_ORIGINAL 0
#define TALAS_VERSION_RANK_FINAL UINT64_MAX

struct talas_version_name {
    int versioned;  /* 1 when the stem carries a version */
    uint64_t rank;  /* see above; ORIGINAL when not versioned */
    size_t key_len; /* bytes of key */
    char key[TALAS_VERSION_KEY_MAX + 1]; /* the base, folded, NUL-terminated */
    char label[16]; /* "v2", "final", or "" for the original */
};

/*
 * Reads the file name NAME (LEN bytes, no '/'; any bytes, not
 * NUL-terminated). Returns 0 with *V filled, or -1 when the name can join
 * no song: empty stem, a base that is empty or longer than
 * TALAS_VERSION_KEY_MAX.
 */
int talas_version_name_parse(const char *name, size_t len, struct talas_version_name *v);

/* Orders two parsed names of one song: by rank, then by the file names'
 * bytes (A_NAME, B_NAME). <0, 0 or >0. */
int talas_version_name_cmp(const struct talas_version_name *a, const char *a_name,
                           const struct talas_version_name *b, const char *b_name);

#endif
