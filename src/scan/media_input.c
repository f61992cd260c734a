/*
 * media_input.c - opens an audio file for libavformat through its already
 * opened descriptor, and reads oversized FLAC comment blocks itself.
 *
 * Entry points: talas_media_open(), talas_media_fd(), talas_media_close(), and the comment
 * reader talas_media_tags_parse() with talas_media_tags_free() and
 * talas_media_tag_cut(). Logs nothing: errors go back as AVERROR codes.
 *
 * The input is an AVIOContext over the descriptor (pread at a tracked
 * offset, so nothing can swap the file under it once it is open). Before
 * libavformat sees the file, the FLAC metadata block headers are walked
 * (fixed 4-byte headers, so the walk costs one small read per block); a
 * VORBIS_COMMENT block above TALAS_MEDIA_COMMENTS_MAX comments or
 * TALAS_MEDIA_COMMENT_BLOCK_MAX bytes has its type byte rewritten to
 * PADDING as it passes through the read callback, and libavformat skips
 * it. Smaller blocks are left to libavformat, which keeps its handling of
 * them (repeated keys joined, replay gain, channel masks) unchanged.
 * Every read also runs the caller's interrupt callback, so a deadline
 * holds even for demuxers that never check it themselves.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavutil/mem.h>

#include "core/util.h"
#include "scan/media_input.h"

#define AVIO_BUF_SIZE (64 * 1024)
#define FLAC_BLOCK_PADDING 1
#define FLAC_BLOCK_VORBIS_COMMENT 4
/* The walk gives up on files with more metadata blocks than this (a real
 * file has a handful; the cap bounds the walk over a crafted one). */
#define FLAC_BLOCKS_MAX 1024

struct media_input {
    int fd;
    int64_t pos;
    int64_t size;    /* -1 when unknown */
    int64_t hide_at; /* offset of the hidden block's type byte, or -1 */
    AVIOInterruptCB interrupt;
};

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

size_t talas_media_tag_cut(const char *s, size_t len)
{
    size_t n;

    if (len <= TALAS_TAG_MAX)
        return len;
    /* s[n] is the first byte left out: while it continues a sequence, the
     * sequence began before the cut and must go too (at most 3 bytes back:
     * a longer run is not UTF-8, and any cut is as good) */
    n = TALAS_TAG_MAX;
    for (int k = 0; k < 3 && n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80; k++)
        n--;
    return n;
}

static char **field(struct talas_media_tags *tags, const uint8_t *key, size_t len)
{
    static const struct {
        const char *key;
        size_t offset;
    } fields[] = {
        {"title", offsetof(struct talas_media_tags, title)},
        {"artist", offsetof(struct talas_media_tags, artist)},
        {"albumartist", offsetof(struct talas_media_tags, album_artist)},
        {"album_artist", offsetof(struct talas_media_tags, album_artist)},
        {"album", offsetof(struct talas_media_tags, album)},
        {"genre", offsetof(struct talas_media_tags, genre)},
        {"date", offsetof(struct talas_media_tags, date)},
        {"year", offsetof(struct talas_media_tags, date)},
        {"tracknumber", offsetof(struct talas_media_tags, track)},
        {"discnumber", offsetof(struct talas_media_tags, disc)},
    };

    for (size_t i = 0; i < TALAS_ARRAY_SIZE(fields); i++)
        if (strlen(fields[i].key) == len && strncasecmp(fields[i].key, (const char *)key, len) == 0)
            return (char **)((char *)tags + fields[i].offset);
    return NULL;
}

void talas_media_tags_parse(const uint8_t *block, size_t len, struct talas_media_tags *tags)
{
    const uint8_t *p = block, *end = block + len;
    uint32_t vendor, count;

    if (len < 4)
        return;
    vendor = le32(p);
    p += 4;
    if (vendor > (size_t)(end - p) || (size_t)(end - p) - vendor < 4)
        return;
    p += vendor;
    count = le32(p);
    p += 4;
    /* the count is a claim; the data decides where the list ends */
    for (uint32_t i = 0; i < count && end - p >= 4; i++) {
        uint32_t clen = le32(p);
        const uint8_t *entry, *eq, *value;
        size_t vlen;
        char **slot;

        p += 4;
        if (clen > (size_t)(end - p))
            return;
        entry = p;
        p += clen;
        if ((eq = memchr(entry, '=', clen)) == NULL)
            continue;
        if ((slot = field(tags, entry, (size_t)(eq - entry))) == NULL || *slot != NULL)
            continue;
        value = eq + 1;
        vlen = (size_t)(entry + clen - value);
        if (vlen == 0)
            continue;
        *slot = xstrndup((const char *)value, talas_media_tag_cut((const char *)value, vlen));
        if (tags->title != NULL && tags->artist != NULL && tags->album_artist != NULL &&
            tags->album != NULL && tags->genre != NULL && tags->date != NULL && tags->track != NULL &&
            tags->disc != NULL)
            return;
    }
}

void talas_media_tags_free(struct talas_media_tags *tags)
{
    if (tags == NULL)
        return;
    free(tags->title);
    free(tags->artist);
    free(tags->album_artist);
    free(tags->album);
    free(tags->genre);
    free(tags->date);
    free(tags->track);
    free(tags->disc);
    memset(tags, 0, sizeof(*tags));
}

/* Reads exactly LEN bytes at OFFSET; -1 on a short read or an error. */
static int read_at(int fd, void *buf, size_t len, int64_t offset)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)offset + (off_t)done);
        if (n == -1 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        done += (size_t)n;
    }
    return 0;
}

/* Walks the FLAC metadata blocks (after an ID3v2 tag some taggers put in
 * front) and marks an oversized comment block to hide, reading its tags
 * into TAGS when not NULL. Any surprise ends the walk: libavformat then
 * judges the file as it is. */
static void find_comment_block(struct media_input *in, struct talas_media_tags *tags)
{
    uint8_t h[10];
    int64_t off = 0;

    if (read_at(in->fd, h, 10, 0) == -1)
        return;
    if (memcmp(h, "ID3", 3) == 0) {
        off = 10 + ((int64_t)(h[6] & 0x7f) << 21 | (h[7] & 0x7f) << 14 | (h[8] & 0x7f) << 7 | (h[9] & 0x7f));
        if (h[5] & 0x10)
            off += 10; /* footer */
        if (read_at(in->fd, h, 4, off) == -1)
            return;
    }
    if (memcmp(h, "fLaC", 4) != 0)
        return;
    off += 4;
    for (int i = 0; i < FLAC_BLOCKS_MAX; i++) {
        uint32_t len, vendor, count = 0;
        int last;
        uint8_t *block;

        if (read_at(in->fd, h, 4, off) == -1)
            return;
        last = h[0] & 0x80;
        len = (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
        if ((h[0] & 0x7f) == FLAC_BLOCK_VORBIS_COMMENT) {
            if (len >= 8 && read_at(in->fd, h, 4, off + 4) == 0 && (vendor = le32(h)) <= len - 8 &&
                read_at(in->fd, h, 4, off + 8 + vendor) == 0)
                count = le32(h);
            if (len <= TALAS_MEDIA_COMMENT_BLOCK_MAX && count <= TALAS_MEDIA_COMMENTS_MAX)
                return;
            in->hide_at = off;
            if (tags == NULL)
                return;
            tags->hidden = 1;
            block = xmalloc(len > 0 ? len : 1);
            if (read_at(in->fd, block, len, off + 4) == 0)
                talas_media_tags_parse(block, len, tags);
            free(block);
            return;
        }
        if (last)
            return;
        off += 4 + (int64_t)len;
    }
}

static int media_read(void *opaque, uint8_t *buf, int size)
{
    struct media_input *in = opaque;
    ssize_t n;

    if (in->interrupt.callback != NULL && in->interrupt.callback(in->interrupt.opaque))
        return AVERROR_EXIT;
    do
        n = pread(in->fd, buf, (size_t)size, (off_t)in->pos);
    while (n == -1 && errno == EINTR);
    if (n == -1)
        return AVERROR(errno);
    if (n == 0)
        return AVERROR_EOF;
    if (in->hide_at >= in->pos && in->hide_at < in->pos + n)
        buf[in->hide_at - in->pos] = (uint8_t)((buf[in->hide_at - in->pos] & 0x80) | FLAC_BLOCK_PADDING);
    in->pos += n;
    return (int)n;
}

static int64_t media_seek(void *opaque, int64_t offset, int whence)
{
    struct media_input *in = opaque;
    int64_t pos;

    switch (whence & ~AVSEEK_FORCE) {
    case AVSEEK_SIZE:
        return in->size >= 0 ? in->size : AVERROR(ENOSYS);
    case SEEK_SET:
        pos = offset;
        break;
    case SEEK_CUR:
        pos = in->pos + offset;
        break;
    case SEEK_END:
        if (in->size < 0)
            return AVERROR(ENOSYS);
        pos = in->size + offset;
        break;
    default:
        return AVERROR(EINVAL);
    }
    if (pos < 0)
        return AVERROR(EINVAL);
    in->pos = pos;
    return pos;
}

static void input_free(AVIOContext *pb, struct media_input *in)
{
    if (pb != NULL) {
        av_freep(&pb->buffer);
        avio_context_free(&pb);
    }
    close(in->fd);
    free(in);
}

int talas_media_open(AVFormatContext **fmt_r, int fd, const char *name, AVDictionary **opts,
                     struct talas_media_tags *tags_r)
{
    AVFormatContext *fmt = *fmt_r;
    struct media_input *in = xcalloc(1, sizeof(*in));
    AVIOContext *pb = NULL;
    uint8_t *buf;
    struct stat sb;
    int ret;

    in->fd = fd;
    in->size = fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) ? (int64_t)sb.st_size : -1;
    in->hide_at = -1;
    in->interrupt = fmt->interrupt_callback;
    if (tags_r != NULL)
        memset(tags_r, 0, sizeof(*tags_r));
    find_comment_block(in, tags_r);

    if ((buf = av_malloc(AVIO_BUF_SIZE)) == NULL ||
        (pb = avio_alloc_context(buf, AVIO_BUF_SIZE, 0, in, media_read, NULL, media_seek)) == NULL) {
        av_free(buf);
        avformat_free_context(fmt);
        ret = AVERROR(ENOMEM);
        goto fail;
    }
    fmt->pb = pb;
    /* on failure avformat_open_input frees FMT but leaves a caller's PB */
    if ((ret = avformat_open_input(&fmt, name, NULL, opts)) < 0)
        goto fail;
    *fmt_r = fmt;
    return 0;

fail:
    *fmt_r = NULL;
    input_free(pb, in);
    talas_media_tags_free(tags_r);
    return ret;
}

int talas_media_fd(const AVFormatContext *fmt)
{
    const AVIOContext *pb = fmt->pb;

    if (pb == NULL || pb->read_packet != media_read)
        return -1;
    return ((const struct media_input *)pb->opaque)->fd;
}

void talas_media_close(AVFormatContext **fmt)
{
    AVIOContext *pb;
    struct media_input *in = NULL;

    if (fmt == NULL || *fmt == NULL)
        return;
    pb = (*fmt)->pb;
    if (pb != NULL && pb->read_packet == media_read)
        in = pb->opaque;
    avformat_close_input(fmt);
    if (in != NULL)
        input_free(pb, in);
}
