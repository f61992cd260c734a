/*
 * probe.c - reads one file's audio properties and tags with libavformat.
 *
 * Entry points: talas_probe_file() and talas_probe_result_free().
 *
 * Logs nothing: what went wrong with a file is returned in track.error and
 * recorded in the catalog by the scanner. libav's own log is turned down to
 * fatal messages, or a library of broken files would flood the error log
 * with one demuxer complaint per frame.
 *
 * Files are hostile input. The work libav may do on one is bounded: probing
 * reads at most PROBE_SIZE bytes and PROBE_DURATION of media, the whole
 * probe is abandoned after PROBE_DEADLINE_MS through the interrupt
 * callback (which every read runs: see media_input.c), and only the "file"
 * protocol is allowed, so a playlist disguised as an .mp3 cannot make the
 * scanner fetch URLs. A FLAC comment block too large for libavformat's
 * quadratic tag handling is read by media_input.c instead. Every stored
 * tag is cut to TALAS_TAG_MAX bytes at a UTF-8 character boundary.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>
#include <libavutil/dict.h>
#include <libavutil/log.h>
#include <libavutil/mathematics.h>

#include "store/catalog.h"
#include "scan/media_input.h"
#include "scan/probe.h"
#include "core/util.h"

#define PROBE_SIZE "5000000"     /* bytes */
#define PROBE_DURATION "5000000" /* microseconds */
/* per file; a scan of a library of hostile files still ends */
#define PROBE_DEADLINE_MS 5000

/* Slots of talas_probe_result.owned */
enum {
    OWN_PATH,
    OWN_TITLE,
    OWN_ARTIST,
    OWN_ALBUM,
    OWN_CONTAINER,
    OWN_ERROR,
    OWN_ALBUM_ARTIST,
    OWN_GENRE,
    OWN_COVER_FILE
};

/* Pictures of a folder that stand for the album of each track in it, in
 * the order they are preferred. */
static const char *const folder_covers[] = {"cover.jpg", "folder.jpg", "cover.jpeg", "folder.jpeg",
                                            "cover.png", "folder.png", "Cover.jpg",  "Folder.jpg",
                                            "Cover.png", "Folder.png", "front.jpg",  "Front.jpg"};

static const char *own(struct talas_probe_result *r, int slot, char *s)
{
    free(r->owned[slot]);
    r->owned[slot] = s;
    return s;
}

static void set_error(struct talas_probe_result *r, const char *msg)
{
    r->track.error = own(r, OWN_ERROR, xstrdup(msg));
}

static void set_av_error(struct talas_probe_result *r, int err)
{
    char buf[AV_ERROR_MAX_STRING_SIZE];

    if (err == AVERROR_EXIT) {
        set_error(r, "probing took too long");
        return;
    }
    if (av_strerror(err, buf, sizeof(buf)) < 0)
        snprintf(buf, sizeof(buf), "libavformat error %d", err);
    set_error(r, buf);
}

static int past_deadline(void *opaque)
{
    const uint64_t *deadline = opaque;

    return talas_now_ms() > *deadline;
}

/* The file name without its directory and extension: the title of a file
 * without tags. A leading dot is part of the name, not an extension. */
static char *title_from_path(const char *path)
{
    const char *base = strrchr(path, '/');
    const char *dot;
    size_t len;

    base = base != NULL ? base + 1 : path;
    dot = strrchr(base, '.');
    len = dot != NULL && dot != base ? (size_t)(dot - base) : strlen(base);
    return talas_utf8_sanitize(base, len);
}

/* VALUE trimmed, as UTF-8, cut to TALAS_TAG_MAX bytes at a character
 * boundary (sanitized first: a Latin-1 value grows as it is converted);
 * NULL when nothing is left. */
static char *tag_value(const char *value)
{
    const char *v = value, *end;
    char *s;

    if (v == NULL)
        return NULL;
    /* ID3v1 pads with spaces; a tag of spaces is no tag. */
    while (*v == ' ' || *v == '\t')
        v++;
    end = v + strlen(v);
    while (end > v && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
        end--;
    if (end == v)
        return NULL;
    s = talas_utf8_sanitize(v, (size_t)(end - v));
    s[talas_media_tag_cut(s, strlen(s))] = '\0';
    return s;
}

/* The first non-empty value of KEY: in the comment block media_input.c read
 * (HIDDEN, NULL when libavformat read the tags), then in the container's
 * tags, then in the stream's (Ogg and Opus keep their Vorbis comments on
 * the stream). libav matches keys case-insensitively by default. */
static char *tag(const AVFormatContext *fmt, const AVStream *st, const char *hidden, const char *key)
{
    const AVDictionary *dicts[2] = {fmt->metadata, st != NULL ? st->metadata : NULL};
    char *s;

    if ((s = tag_value(hidden)) != NULL)
        return s;
    for (size_t i = 0; i < TALAS_ARRAY_SIZE(dicts); i++) {
        const AVDictionaryEntry *e = av_dict_get(dicts[i], key, NULL, 0);

        if (e != NULL && (s = tag_value(e->value)) != NULL)
            return s;
    }
    return NULL;
}

/* Whether KEY names a lyrics tag; its language (a three-letter suffix,
 * as libavformat makes "lyrics-eng" of an ID3 USLT frame) into LANG. */
static int lyrics_key(const char *key, char lang[8])
{
    const char *dash;

    lang[0] = '\0';
    if (strcasecmp(key, "lyrics") == 0 || strcasecmp(key, "unsyncedlyrics") == 0 ||
        strcasecmp(key, "unsynced lyrics") == 0)
        return 1;
    if (strncasecmp(key, "lyrics-", 7) != 0)
        return 0;
    dash = strrchr(key, '-');
    if (strlen(dash + 1) == 3 && isalpha((unsigned char)dash[1]) && isalpha((unsigned char)dash[2]) &&
        isalpha((unsigned char)dash[3]) && strcasecmp(dash + 1, "xxx") != 0)
        snprintf(lang, 8, "%s", dash + 1);
    return 1;
}

/* The embedded lyrics tags of the container and of the audio stream (Ogg
 * and Opus keep them there), raw: the scanner parses them (scan/lrc.h). */
static void find_lyrics(struct talas_probe_result *r, const AVFormatContext *fmt, const AVStream *st)
{
    const AVDictionary *dicts[2] = {fmt->metadata, st != NULL ? st->metadata : NULL};

    for (size_t i = 0; i < TALAS_ARRAY_SIZE(dicts); i++) {
        const AVDictionaryEntry *e = NULL;

        while ((e = av_dict_get(dicts[i], "", e, AV_DICT_IGNORE_SUFFIX)) != NULL) {
            char lang[8];
            size_t j;

            if (!lyrics_key(e->key, lang) || e->value[0] == '\0')
                continue;
            for (j = 0; j < r->lyrics_count && strcmp(r->lyrics[j], e->value) != 0; j++)
                ;
            if (j < r->lyrics_count || r->lyrics_count == TALAS_LYRICS_SETS_MAX)
                continue;
            memcpy(r->lyrics_lang[r->lyrics_count], lang, sizeof(lang));
            r->lyrics[r->lyrics_count++] = xstrdup(e->value);
        }
    }
}

/* The leading number of a tag ("3", "3/12", "2019-05-01"), at most MAX;
 * 0 when it starts with no digit or the number is larger. */
static uint32_t tag_number(const char *s, uint32_t max)
{
    uint64_t v = 0;

    if (s == NULL || *s < '0' || *s > '9')
        return 0;
    for (; *s >= '0' && *s <= '9'; s++)
        if ((v = v * 10 + (uint64_t)(*s - '0')) > max)
            return 0;
    return (uint32_t)v;
}

/* A number tag: KEY's value (or HIDDEN's) read as by tag_number. */
static uint32_t number_tag(const AVFormatContext *fmt, const AVStream *st, const char *hidden, const char *key,
                           uint32_t max)
{
    char *s = tag(fmt, st, hidden, key);
    uint32_t v = tag_number(s, max);

    free(s);
    return v;
}

/* The year of a date tag: "2019", "2019-05-01", "2019-05-01T10:00". */
static uint32_t year_tag(const AVFormatContext *fmt, const AVStream *st, const char *hidden)
{
    char *s = tag(fmt, st, hidden, "date");
    uint32_t v;

    if (s == NULL)
        s = tag(fmt, st, NULL, "year");
    v = s != NULL && strlen(s) >= 4 ? tag_number(s, 9999) : 0;
    free(s);
    return v;
}

/* Where the track's picture is: an attached picture of the file (JPEG or
 * PNG, what getCoverArt can scale), else a picture file beside it. */
static void find_cover(struct talas_probe_result *r, const AVFormatContext *fmt, const char *path)
{
    struct talas_track *t = &r->track;
    const char *slash = strrchr(path, '/');
    char *dir;
    int dfd;

    for (unsigned i = 0; i < fmt->nb_streams; i++) {
        const AVStream *st = fmt->streams[i];
        if ((st->disposition & AV_DISPOSITION_ATTACHED_PIC) && st->attached_pic.size > 0 &&
            (st->codecpar->codec_id == AV_CODEC_ID_MJPEG || st->codecpar->codec_id == AV_CODEC_ID_PNG)) {
            t->cover = TALAS_COVER_EMBEDDED;
            return;
        }
    }
    if (slash == NULL)
        return;
    dir = xstrndup(path, slash == path ? 1 : (size_t)(slash - path));
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (dfd == -1)
        return;
    for (size_t i = 0; i < TALAS_ARRAY_SIZE(folder_covers); i++) {
        struct stat sb;
        /* a regular file, never through a symbolic link (as the tracks) */
        if (fstatat(dfd, folder_covers[i], &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(sb.st_mode) &&
            sb.st_size > 0) {
            t->cover = TALAS_COVER_FOLDER;
            t->cover_file = own(r, OWN_COVER_FILE, xstrdup(folder_covers[i]));
            break;
        }
    }
    close(dfd);
}

static int has_extension(const char *path, const char *ext)
{
    size_t plen = strlen(path), elen = strlen(ext);

    return plen > elen && path[plen - elen - 1] == '.' && strcasecmp(path + plen - elen, ext) == 0;
}

/* libav names a demuxer after all the formats it reads ("mov,mp4,m4a,3gp,
 * 3g2,mj2"); Talas wants one short name per container. */
static const char *container_name(struct talas_probe_result *r, const char *iformat, const char *path)
{
    static const struct {
        const char *iformat, *container;
    } names[] = {
        {"mp3", "mp3"}, {"flac", "flac"}, {"wav", "wav"}, {"ogg", "ogg"},
        {"aac", "aac"}, {"aiff", "aiff"}, {"asf", "asf"}, {"mov,mp4,m4a,3gp,3g2,mj2", "mp4"},
    };
    size_t len;

    for (size_t i = 0; i < TALAS_ARRAY_SIZE(names); i++)
        if (strcmp(iformat, names[i].iformat) == 0)
            return names[i].container;
    if (strcmp(iformat, "matroska,webm") == 0)
        return has_extension(path, "webm") ? "webm" : "matroska";
    len = strcspn(iformat, ",");
    return own(r, OWN_CONTAINER, xstrndup(iformat, len));
}

static uint64_t duration_ms(const AVFormatContext *fmt, const AVStream *st)
{
    /* The stream's own duration is exact (a sample count for PCM); the
     * container's is rounded to microseconds and covers all streams. */
    if (st->duration != AV_NOPTS_VALUE && st->duration > 0 && st->time_base.num > 0 && st->time_base.den > 0)
        return (uint64_t)av_rescale_q_rnd(st->duration, st->time_base, (AVRational){1, 1000},
                                          AV_ROUND_NEAR_INF);
    if (fmt->duration != AV_NOPTS_VALUE && fmt->duration > 0)
        return (uint64_t)av_rescale(fmt->duration, 1000, AV_TIME_BASE);
    return 0;
}

/* Opens PATH for libav, which reads this descriptor and nothing else: a
 * FIFO that replaced the file since the scanner's stat cannot block it
 * (the open does not block, and a FIFO is refused), and an unreadable file
 * is a plain "Permission denied". Returns the descriptor or -1. */
static int open_regular(const char *path, struct talas_probe_result *r)
{
    struct stat sb;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);

    if (fd == -1) {
        set_error(r, strerror(errno));
        return -1;
    }
    if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
        set_error(r, "not a regular file");
        close(fd);
        return -1;
    }
    return fd;
}

int talas_probe_file(const char *id, const char *path, uint64_t size, int64_t mtime_ns, struct talas_probe_result *r)
{
    static int av_log_quiet;
    struct talas_track *t = &r->track;
    AVFormatContext *fmt = NULL;
    AVDictionary *opts = NULL;
    const AVStream *st;
    const AVCodecParameters *par;
    struct talas_media_tags hidden;
    uint64_t deadline;
    int rc, idx, fd;
    char *s;

    if (!av_log_quiet) {
        if (av_log_get_level() > AV_LOG_FATAL)
            av_log_set_level(AV_LOG_FATAL);
        av_log_quiet = 1;
    }

    memset(r, 0, sizeof(*r));
    memcpy(t->id, id, TALAS_TRACK_ID_LEN + 1);
    t->path = own(r, OWN_PATH, xstrdup(path));
    t->title = own(r, OWN_TITLE, title_from_path(path));
    t->artist = "";
    t->album = "";
    t->album_artist = "";
    t->genre = "";
    t->cover_file = "";
    t->record_version = TALAS_TRACK_TAGS_VERSION;
    t->codec = "";
    t->container = "";
    t->mime = talas_catalog_mime_for_container(NULL);
    t->size = size;
    t->mtime_ns = mtime_ns;
    t->scanned_at = (uint64_t)time(NULL);

    if (size == 0) {
        set_error(r, "empty file");
        return -1;
    }
    if ((fd = open_regular(path, r)) == -1)
        return -1;

    if ((fmt = avformat_alloc_context()) == NULL) {
        close(fd);
        set_av_error(r, AVERROR(ENOMEM));
        return -1;
    }
    deadline = talas_now_ms() + PROBE_DEADLINE_MS;
    fmt->interrupt_callback.callback = past_deadline;
    fmt->interrupt_callback.opaque = &deadline;
    av_dict_set(&opts, "probesize", PROBE_SIZE, 0);
    av_dict_set(&opts, "analyzeduration", PROBE_DURATION, 0);
    av_dict_set(&opts, "protocol_whitelist", "file", 0);
    rc = talas_media_open(&fmt, fd, path, &opts, &hidden);
    av_dict_free(&opts);
    if (rc < 0) {
        /* talas_media_open freed the context and closed FD */
        set_av_error(r, rc);
        return -1;
    }
    if ((rc = avformat_find_stream_info(fmt, NULL)) < 0) {
        set_av_error(r, rc);
        goto fail;
    }

    t->container = container_name(r, fmt->iformat->name, path);
    t->mime = talas_catalog_mime_for_container(t->container);

    /* Cover art comes as a video stream (an attached picture): the best
     * audio stream is what counts, whatever else the file holds. */
    idx = av_find_best_stream(fmt, AVMEDIA_TYPE_AUDIO, -1, -1, NULL, 0);
    st = idx >= 0 ? fmt->streams[idx] : NULL;

    if ((s = tag(fmt, st, hidden.title, "title")) != NULL)
        t->title = own(r, OWN_TITLE, s);
    if ((s = tag(fmt, st, hidden.artist, "artist")) != NULL ||
        (s = tag(fmt, st, hidden.album_artist, "album_artist")) != NULL)
        t->artist = own(r, OWN_ARTIST, s);
    if ((s = tag(fmt, st, hidden.album, "album")) != NULL)
        t->album = own(r, OWN_ALBUM, s);
    if ((s = tag(fmt, st, hidden.album_artist, "album_artist")) != NULL)
        t->album_artist = own(r, OWN_ALBUM_ARTIST, s);
    if ((s = tag(fmt, st, hidden.genre, "genre")) != NULL)
        t->genre = own(r, OWN_GENRE, s);
    t->track_number = number_tag(fmt, st, hidden.track, "track", 99999);
    t->disc_number = number_tag(fmt, st, hidden.disc, "disc", 9999);
    t->year = year_tag(fmt, st, hidden.date);
    find_cover(r, fmt, path);
    find_lyrics(r, fmt, st);
    talas_media_tags_free(&hidden);

    if (st == NULL) {
        set_error(r, "no audio stream");
        goto fail;
    }
    par = st->codecpar;
    t->codec = avcodec_get_name(par->codec_id);
    t->duration_ms = duration_ms(fmt, st);
    t->sample_rate = par->sample_rate > 0 ? (uint32_t)par->sample_rate : 0;
    t->channels = par->ch_layout.nb_channels > 0 ? (uint32_t)par->ch_layout.nb_channels : 0;
    if (par->bit_rate > 0)
        t->bit_rate = (uint64_t)par->bit_rate;
    else if (fmt->bit_rate > 0)
        t->bit_rate = (uint64_t)fmt->bit_rate;

    /* A demuxer chosen on the file name alone (a text file called .mp3)
     * yields a stream that no decoder could play. */
    if (par->codec_id == AV_CODEC_ID_NONE || t->sample_rate == 0 || t->channels == 0) {
        set_error(r, "no playable audio stream");
        goto fail;
    }

    talas_media_close(&fmt);
    return 0;

fail:
    talas_media_tags_free(&hidden);
    talas_media_close(&fmt);
    return -1;
}

void talas_probe_result_free(struct talas_probe_result *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < TALAS_ARRAY_SIZE(r->owned); i++) {
        free(r->owned[i]);
        r->owned[i] = NULL;
    }
    for (size_t i = 0; i < r->lyrics_count; i++) {
        free(r->lyrics[i]);
        r->lyrics[i] = NULL;
    }
    r->lyrics_count = 0;
    talas_buf_free(&r->lyrics_record);
}
