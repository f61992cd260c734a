/*
 * subsonic_library.c - artists, albums and songs from the catalog's tags
 * (subsonic_library.h).
 *
 * Entry points: talas_subsonic_library_load / _free,
 * talas_subsonic_song_find, talas_subsonic_album_find,
 * talas_subsonic_artist_find, talas_subsonic_contains. Logs nothing.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "core/log.h"
#include "core/util.h"
#include "subsonic/subsonic_library.h"

#define UNKNOWN_ARTIST "[Unknown Artist]"
#define UNKNOWN_ALBUM "[Unknown Album]"

/* PREFIX and 16 hex digits of the SHA-256 of A, a newline and B. */
static void make_id(const char *prefix, const char *a, const char *b, char id_r[TALAS_SUBSONIC_ID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();

    if (c == NULL || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1 || EVP_DigestUpdate(c, prefix, 2) != 1 ||
        EVP_DigestUpdate(c, a, strlen(a)) != 1 || EVP_DigestUpdate(c, "\n", 1) != 1 ||
        EVP_DigestUpdate(c, b, strlen(b)) != 1 || EVP_DigestFinal_ex(c, md, &md_len) != 1)
        panic("%s: SHA-256 failed", __func__);
    EVP_MD_CTX_free(c);
    memcpy(id_r, prefix, 2);
    for (size_t i = 0; i < 8; i++) {
        id_r[2 + 2 * i] = hex[md[i] >> 4];
        id_r[3 + 2 * i] = hex[md[i] & 15];
    }
    id_r[TALAS_SUBSONIC_ID_LEN] = '\0';
}

struct load {
    const struct talas_config *conf;
    unsigned folder;
    struct talas_subsonic_library *lib;
    size_t cap;
};

static int add_track(const struct talas_track *t, void *arg)
{
    struct load *l = arg;
    struct talas_subsonic_library *lib = l->lib;
    struct talas_subsonic_song *s;
    unsigned folder = 0;
    const char *rel = t->path;

    for (size_t i = 0; i < l->conf->library_path_count; i++) {
        const char *root = l->conf->library_paths[i].path;
        size_t n = strlen(root);
        if (strncmp(t->path, root, n) == 0 && t->path[n] == '/') {
            folder = (unsigned)i + 1;
            rel = t->path + n + 1;
            break;
        }
    }
    if (folder == 0)
        folder = 1; /* a folder since removed from the configuration: the first */
    if (l->folder != 0 && folder != l->folder)
        return 0;
    if (lib->song_count == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        lib->songs = xrealloc(lib->songs, l->cap * sizeof(*lib->songs));
    }
    s = &lib->songs[lib->song_count];
    memset(s, 0, sizeof(*s));
    s->t = *t;
    s->artist = t->artist[0] != '\0' ? t->artist : UNKNOWN_ARTIST;
    s->album = t->album[0] != '\0' ? t->album : UNKNOWN_ALBUM;
    s->album_artist = t->album_artist[0] != '\0' ? t->album_artist : s->artist;
    s->relpath = rel;
    s->folder = folder;
    s->seq = lib->song_count;
    make_id("ar", s->album_artist, "", s->artist_id);
    make_id("al", s->album_artist, s->album, s->album_id);
    lib->song_count++;
    return 0;
}

static int by_artist_album(const void *a, const void *b)
{
    const struct talas_subsonic_song *x = a, *y = b;
    int c;

    if ((c = strcasecmp(x->album_artist, y->album_artist)) != 0 ||
        (c = strcmp(x->album_artist, y->album_artist)) != 0)
        return c;
    if ((c = strcasecmp(x->album, y->album)) != 0 || (c = strcmp(x->album, y->album)) != 0)
        return c;
    if (x->t.disc_number != y->t.disc_number)
        return x->t.disc_number < y->t.disc_number ? -1 : 1;
    if (x->t.track_number != y->t.track_number)
        return x->t.track_number < y->t.track_number ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int talas_subsonic_library_load(struct talas_storage *st, MDB_txn *txn, const struct talas_config *conf,
                                unsigned folder, struct talas_subsonic_library *lib)
{
    struct load l = {conf, folder, lib, 0};
    size_t walked = 0;
    int rc;

    memset(lib, 0, sizeof(*lib));
    /* playable tracks only: the listing of /api/tracks, whole */
    if ((rc = talas_catalog_list(st, txn, NULL, 0, SIZE_MAX, add_track, &l, &walked)) != 0) {
        talas_subsonic_library_free(lib);
        return rc;
    }
    qsort(lib->songs, lib->song_count, sizeof(*lib->songs), by_artist_album);
    lib->albums = xcalloc(lib->song_count + 1, sizeof(*lib->albums));
    lib->artists = xcalloc(lib->song_count + 1, sizeof(*lib->artists));
    for (size_t i = 0; i < lib->song_count; i++) {
        const struct talas_subsonic_song *s = &lib->songs[i];
        struct talas_subsonic_album *al;
        struct talas_subsonic_artist *ar;

        if (i == 0 || strcmp(s->artist_id, lib->songs[i - 1].artist_id) != 0) {
            ar = &lib->artists[lib->artist_count++];
            memcpy(ar->id, s->artist_id, sizeof(ar->id));
            ar->name = s->album_artist;
            ar->first = lib->album_count;
        }
        ar = &lib->artists[lib->artist_count - 1];
        if (i == 0 || strcmp(s->album_id, lib->songs[i - 1].album_id) != 0) {
            al = &lib->albums[lib->album_count++];
            memcpy(al->id, s->album_id, sizeof(al->id));
            al->name = s->album;
            al->artist = s->album_artist;
            al->genre = "";
            al->artist_id = ar->id;
            al->first = i;
            ar->count++;
        }
        al = &lib->albums[lib->album_count - 1];
        al->count++;
        al->duration_ms += s->t.duration_ms;
        if (s->t.scanned_at > al->created)
            al->created = s->t.scanned_at;
        if (s->t.year > al->year)
            al->year = s->t.year;
        if (al->genre[0] == '\0')
            al->genre = s->t.genre;
        if (al->cover == NULL && s->t.cover != TALAS_COVER_NONE)
            al->cover = s->t.id;
    }
    /* a song without a picture of its own shows its album's */
    for (size_t i = 0; i < lib->album_count; i++)
        for (size_t k = 0; k < lib->albums[i].count; k++) {
            struct talas_subsonic_song *s = &lib->songs[lib->albums[i].first + k];
            s->cover = s->t.cover != TALAS_COVER_NONE ? s->t.id : lib->albums[i].cover;
        }
    return 0;
}

void talas_subsonic_library_free(struct talas_subsonic_library *lib)
{
    free(lib->songs);
    free(lib->albums);
    free(lib->artists);
    memset(lib, 0, sizeof(*lib));
}

const struct talas_subsonic_song *talas_subsonic_song_find(const struct talas_subsonic_library *lib,
                                                           const char *id)
{
    for (size_t i = 0; i < lib->song_count; i++)
        if (strcmp(lib->songs[i].t.id, id) == 0)
            return &lib->songs[i];
    return NULL;
}

const struct talas_subsonic_album *talas_subsonic_album_find(const struct talas_subsonic_library *lib,
                                                             const char *id)
{
    for (size_t i = 0; i < lib->album_count; i++)
        if (strcmp(lib->albums[i].id, id) == 0)
            return &lib->albums[i];
    return NULL;
}

const struct talas_subsonic_artist *talas_subsonic_artist_find(const struct talas_subsonic_library *lib,
                                                               const char *id)
{
    for (size_t i = 0; i < lib->artist_count; i++)
        if (strcmp(lib->artists[i].id, id) == 0)
            return &lib->artists[i];
    return NULL;
}

int talas_subsonic_contains(const char *hay, const char *needle)
{
    size_t n = strlen(needle);

    if (n == 0)
        return 1;
    for (; *hay != '\0'; hay++)
        if (strncasecmp(hay, needle, n) == 0)
            return 1;
    return 0;
}
