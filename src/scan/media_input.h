/*
 * media_input.h - opens an audio file for libavformat through its already
 * opened descriptor, and reads oversized FLAC comment blocks itself.
 *
 * libavformat (FFmpeg 5.1) files each Vorbis comment with av_dict_set,
 * which scans the whole dictionary (or appends to one growing value when
 * the key repeats): a FLAC file with 100,000 comments costs minutes of CPU
 * before a single frame is read, and no interrupt callback runs meanwhile.
 * A comment block larger than what a tagger ever writes is shown to
 * libavformat as a PADDING block, which it skips, and is read here in one
 * linear pass instead, keeping only the fields Talas stores.
 *
 * Used by the scanner's probe (src/scan) and by the transcoder (workers).
 */
#ifndef TALAS_MEDIA_INPUT_H
#define TALAS_MEDIA_INPUT_H

#include <stddef.h>
#include <stdint.h>

#include <libavformat/avformat.h>

/* Longest tag value stored in the catalog, in bytes of UTF-8 (the NUL not
 * counted). Longer values are cut at a character boundary. A title is a
 * line on a screen; a megabyte "title" is an attack on every /api/tracks
 * page that lists it. Documented in talas-master(8), LIMITS. */
#define TALAS_TAG_MAX 1024

/* A FLAC comment block is read here rather than by libavformat once it
 * holds more than this many comments or bytes (a tagged album track holds
 * a few dozen comments in a few hundred bytes; up to these sizes
 * libavformat's quadratic cost stays below a millisecond). */
#define TALAS_MEDIA_COMMENTS_MAX 256
#define TALAS_MEDIA_COMMENT_BLOCK_MAX (64 * 1024)

/* Tags read from a comment block hidden from libavformat. */
struct talas_media_tags {
    int hidden; /* 1: the file's comment block was hidden; its tags are below */
    /* First non-empty value of each field, malloc'd, NUL-terminated, cut to
     * TALAS_TAG_MAX bytes at a UTF-8 boundary; NULL when absent. Owned by
     * the struct: free with talas_media_tags_free. */
    char *title;
    char *artist;
    char *album_artist; /* ALBUMARTIST or ALBUM_ARTIST */
    char *album;
    char *genre;
    char *date;  /* DATE or YEAR: the year is its first four digits */
    char *track; /* TRACKNUMBER: "3" or "3/12" */
    char *disc;  /* DISCNUMBER: likewise */
};

/*
 * Opens FD, a regular file, as *FMT_R's input: *FMT_R was allocated by the
 * caller (avformat_alloc_context), who set its interrupt callback, which
 * every read also checks. NAME is the file's name, for the extension
 * hints of format probing (nothing opens it); OPTS as for
 * avformat_open_input. FD is taken over in every case: closed by
 * talas_media_close, or here on failure. When TAGS_R is not NULL, the tags
 * of a hidden comment block are read into it (zeroed otherwise); without
 * it the block is hidden unread.
 * Returns 0, or a negative AVERROR with *FMT_R freed and set to NULL.
 */
int talas_media_open(AVFormatContext **fmt_r, int fd, const char *name, AVDictionary **opts,
                     struct talas_media_tags *tags_r);

/* The descriptor an input opened by talas_media_open reads (its own: a
 * caller may pread it, never close it or move its offset); -1 for any
 * other input. */
int talas_media_fd(const AVFormatContext *fmt);

/* Closes an input opened by talas_media_open (and its descriptor); sets
 * *FMT to NULL. Also closes any other input, like avformat_close_input. */
void talas_media_close(AVFormatContext **fmt);

/*
 * Reads the Vorbis comment block BLOCK (LEN bytes: vendor string, count,
 * then length-prefixed "KEY=value" entries, all lengths 32-bit little
 * endian) into TAGS, in one pass. Lengths that run past the block, counts
 * larger than the data and entries without '=' end the reading or are
 * skipped; nothing outside BLOCK is read. Fields TAGS already holds are
 * kept. Never fails.
 */
void talas_media_tags_parse(const uint8_t *block, size_t len, struct talas_media_tags *tags);
void talas_media_tags_free(struct talas_media_tags *tags);

/* The length of the first LEN bytes of S cut to at most TALAS_TAG_MAX
 * bytes without splitting a UTF-8 sequence. */
size_t talas_media_tag_cut(const char *s, size_t len);

#endif
