/*
 * cover_image.c - reading a cover picture and resizing it (see
 * cover_image.h).
 *
 * Entry points: talas_cover_image_read, talas_cover_image_type,
 * talas_cover_image_resize. Any thread; logs nothing.
 *
 * A picture is hostile input like any file in the library: its size is
 * bounded before it is read, the decoder is bounded in pixels
 * (max_pixels) and handed one whole packet, and only its first frame is
 * used. Scaling is libswscale (bicubic) to YUVJ420P, the encoder libavcodec's
 * mjpeg at a fixed quality.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>

#include "core/log.h"
#include "media/cover_image.h"
#include "media/track_file.h"
#include "scan/media_input.h"

/* mjpeg's qscale: 2 (best) .. 31; 3 looks like the source at cover sizes */
#define JPEG_QSCALE 3

static char *av_error(const char *what, int err)
{
    char msg[AV_ERROR_MAX_STRING_SIZE];

    av_strerror(err, msg, sizeof(msg));
    return xasprintf("%s: %s", what, msg);
}

static char *open_error(const char *path)
{
    return xasprintf("%s: %s", path,
                     errno == ELOOP    ? "leads through a symbolic link: refused"
                     : errno == EINVAL ? "not a regular file"
                                       : strerror(errno));
}

static int read_embedded(const char *path, struct talas_buf *out, struct talas_cache_source *identity_r,
                         char **error_r)
{
    AVFormatContext *fmt = avformat_alloc_context();
    AVDictionary *opts = NULL;
    struct stat sb;
    int fd, ret;

    if (fmt == NULL)
        fatal("%s: avformat_alloc_context() failed", __func__);
    if ((fd = talas_track_open(path, &sb)) == -1) {
        int e = errno;
        *error_r = open_error(path);
        avformat_free_context(fmt);
        errno = e == ENOENT ? ENOENT : EINVAL;
        return -1;
    }
    identity_r->size = (uint64_t)sb.st_size;
    identity_r->mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
    av_dict_set(&opts, "protocol_whitelist", "file", 0);
    ret = talas_media_open(&fmt, fd, path, &opts, NULL);
    av_dict_free(&opts);
    if (ret < 0) {
        *error_r = av_error(path, ret);
        errno = EINVAL;
        return -1;
    }
    for (unsigned i = 0; i < fmt->nb_streams; i++) {
        const AVStream *st = fmt->streams[i];
        if ((st->disposition & AV_DISPOSITION_ATTACHED_PIC) && st->attached_pic.size > 0 &&
            (size_t)st->attached_pic.size <= TALAS_COVER_BYTES_MAX) {
            talas_buf_append(out, st->attached_pic.data, (size_t)st->attached_pic.size);
            talas_media_close(&fmt);
            return 0;
        }
    }
    talas_media_close(&fmt);
    *error_r = xasprintf("%s: no attached picture", path);
    errno = ENOENT;
    return -1;
}

static int read_file(const char *path, struct talas_buf *out, struct talas_cache_source *identity_r,
                     char **error_r)
{
    struct stat sb;
    size_t done = 0;
    int fd;

    if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) == -1) {
        int e = errno;
        *error_r = open_error(path);
        errno = e == ENOENT ? ENOENT : EINVAL;
        return -1;
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size <= 0 ||
        (uint64_t)sb.st_size > TALAS_COVER_BYTES_MAX) {
        *error_r = xasprintf("%s: not a regular file of 1 byte to %u MiB", path, TALAS_COVER_BYTES_MAX >> 20);
        close(fd);
        errno = EINVAL;
        return -1;
    }
    identity_r->size = (uint64_t)sb.st_size;
    identity_r->mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
    talas_buf_reserve(out, (size_t)sb.st_size);
    while (done < (size_t)sb.st_size) {
        ssize_t n = read(fd, out->data + out->len, (size_t)sb.st_size - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        out->len += (size_t)n;
        done += (size_t)n;
    }
    close(fd);
    if (done == 0) {
        *error_r = xasprintf("%s: could not be read", path);
        errno = EINVAL;
        return -1;
    }
    return 0;
}

int talas_cover_image_read(const char *path, int embedded, const char *file, struct talas_buf *out,
                           struct talas_cache_source *identity_r, char **error_r)
{
    const char *slash;
    char *image;
    int rc, e;

    if (embedded)
        return read_embedded(path, out, identity_r, error_r);
    /* a plain name the scanner found in the track's folder, nothing else */
    if ((slash = strrchr(path, '/')) == NULL || file[0] == '\0' || strchr(file, '/') != NULL ||
        strcmp(file, "..") == 0 || strcmp(file, ".") == 0) {
        *error_r = xasprintf("%s: no folder picture", path);
        errno = ENOENT;
        return -1;
    }
    image = xasprintf("%.*s/%s", (int)(slash - path), path, file);
    rc = read_file(image, out, identity_r, error_r);
    e = errno;
    free(image);
    errno = e;
    return rc;
}

const char *talas_cover_image_type(const void *data, size_t len)
{
    const unsigned char *p = data;

    if (len >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff)
        return "image/jpeg";
    if (len >= 8 && memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0)
        return "image/png";
    if (len >= 6 && (memcmp(p, "GIF87a", 6) == 0 || memcmp(p, "GIF89a", 6) == 0))
        return "image/gif";
    if (len >= 12 && memcmp(p, "RIFF", 4) == 0 && memcmp(p + 8, "WEBP", 4) == 0)
        return "image/webp";
    if (len >= 2 && p[0] == 'B' && p[1] == 'M')
        return "image/bmp";
    return "application/octet-stream";
}

static enum AVCodecID codec_of(const char *type)
{
    return strcmp(type, "image/jpeg") == 0   ? AV_CODEC_ID_MJPEG
           : strcmp(type, "image/png") == 0  ? AV_CODEC_ID_PNG
           : strcmp(type, "image/gif") == 0  ? AV_CODEC_ID_GIF
           : strcmp(type, "image/webp") == 0 ? AV_CODEC_ID_WEBP
           : strcmp(type, "image/bmp") == 0  ? AV_CODEC_ID_BMP
                                             : AV_CODEC_ID_NONE;
}

/* Decodes the first frame of DATA into FRAME. */
static int decode(const void *data, size_t len, AVFrame *frame, char **error_r)
{
    enum AVCodecID id = codec_of(talas_cover_image_type(data, len));
    const AVCodec *codec = id != AV_CODEC_ID_NONE ? avcodec_find_decoder(id) : NULL;
    AVCodecContext *dec = NULL;
    AVPacket *pkt = NULL;
    int ret;

    if (codec == NULL || len > TALAS_COVER_BYTES_MAX) {
        *error_r = xasprintf("not a picture of a known format");
        return -1;
    }
    if ((dec = avcodec_alloc_context3(codec)) == NULL || (pkt = av_packet_alloc()) == NULL)
        fatal("%s: out of memory", __func__);
    dec->max_pixels = TALAS_COVER_PIXELS_MAX;
    dec->thread_count = 1;
    if ((ret = avcodec_open2(dec, codec, NULL)) < 0) {
        *error_r = av_error("avcodec_open2()", ret);
        goto fail;
    }
    /* a padded copy: decoders may read past the end of a packet */
    if ((ret = av_new_packet(pkt, (int)len)) < 0) {
        *error_r = av_error("av_new_packet()", ret);
        goto fail;
    }
    memcpy(pkt->data, data, len);
    pkt->flags |= AV_PKT_FLAG_KEY;
    if ((ret = avcodec_send_packet(dec, pkt)) < 0) {
        *error_r = av_error("the picture does not decode", ret);
        goto fail;
    }
    avcodec_send_packet(dec, NULL);
    if ((ret = avcodec_receive_frame(dec, frame)) < 0) {
        *error_r = av_error("the picture does not decode", ret);
        goto fail;
    }
    if (frame->width <= 0 || frame->height <= 0 || frame->format < 0) {
        *error_r = xasprintf("the picture has no size");
        goto fail;
    }
    av_packet_free(&pkt);
    avcodec_free_context(&dec);
    return 0;
fail:
    av_packet_free(&pkt);
    avcodec_free_context(&dec);
    return -1;
}

/* Encodes FRAME (YUVJ420P) as one JPEG appended to OUT. */
static int encode(AVFrame *frame, struct talas_buf *out, char **error_r)
{
    const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_MJPEG);
    AVCodecContext *enc = NULL;
    AVPacket *pkt = NULL;
    int ret;

    if (codec == NULL) {
        *error_r = xasprintf("no JPEG encoder");
        return -1;
    }
    if ((enc = avcodec_alloc_context3(codec)) == NULL || (pkt = av_packet_alloc()) == NULL)
        fatal("%s: out of memory", __func__);
    enc->width = frame->width;
    enc->height = frame->height;
    enc->pix_fmt = AV_PIX_FMT_YUVJ420P;
    enc->color_range = AVCOL_RANGE_JPEG;
    enc->time_base = (AVRational){1, 1};
    enc->flags |= AV_CODEC_FLAG_QSCALE;
    enc->global_quality = FF_QP2LAMBDA * JPEG_QSCALE;
    enc->thread_count = 1;
    frame->quality = enc->global_quality;
    frame->pts = 0;
    if ((ret = avcodec_open2(enc, codec, NULL)) < 0) {
        *error_r = av_error("avcodec_open2(mjpeg)", ret);
        goto fail;
    }
    if ((ret = avcodec_send_frame(enc, frame)) < 0 || (ret = avcodec_send_frame(enc, NULL)) < 0 ||
        (ret = avcodec_receive_packet(enc, pkt)) < 0) {
        *error_r = av_error("the JPEG encoder failed", ret);
        goto fail;
    }
    talas_buf_append(out, pkt->data, (size_t)pkt->size);
    av_packet_free(&pkt);
    avcodec_free_context(&enc);
    return 0;
fail:
    av_packet_free(&pkt);
    avcodec_free_context(&enc);
    return -1;
}

int talas_cover_image_resize(const void *data, size_t len, uint32_t size, struct talas_buf *out,
                             char **error_r)
{
    AVFrame *src = av_frame_alloc(), *dst = av_frame_alloc();
    struct SwsContext *sws = NULL;
    int w, h, ret, result = -1;

    if (src == NULL || dst == NULL)
        fatal("%s: out of memory", __func__);
    if (size == 0 || size > TALAS_COVER_SIZE_MAX) {
        *error_r = xasprintf("size must be 1 to %d", TALAS_COVER_SIZE_MAX);
        goto done;
    }
    if (decode(data, len, src, error_r) != 0)
        goto done;
    /* the longest side exactly SIZE, the other rounded, at least 1 */
    if (src->width >= src->height) {
        w = (int)size;
        h = (int)(((int64_t)src->height * size + src->width / 2) / src->width);
    } else {
        h = (int)size;
        w = (int)(((int64_t)src->width * size + src->height / 2) / src->height);
    }
    if (w < 1)
        w = 1;
    if (h < 1)
        h = 1;
    sws = sws_getContext(src->width, src->height, src->format, w, h, AV_PIX_FMT_YUVJ420P, SWS_BICUBIC, NULL,
                         NULL, NULL);
    if (sws == NULL) {
        *error_r = xasprintf("the picture's pixel format cannot be scaled");
        goto done;
    }
    dst->width = w;
    dst->height = h;
    dst->format = AV_PIX_FMT_YUVJ420P;
    if ((ret = av_frame_get_buffer(dst, 0)) < 0) {
        *error_r = av_error("av_frame_get_buffer()", ret);
        goto done;
    }
    if ((ret = sws_scale(sws, (const uint8_t *const *)src->data, src->linesize, 0, src->height, dst->data,
                         dst->linesize)) <= 0) {
        *error_r = av_error("sws_scale()", ret);
        goto done;
    }
    result = encode(dst, out, error_r);
done:
    sws_freeContext(sws);
    av_frame_free(&src);
    av_frame_free(&dst);
    return result;
}
