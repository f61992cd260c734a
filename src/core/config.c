/*
 * config.c - reads talas.yaml into a struct talas_config.
 *
 * Entry points: talas_config_load(), talas_config_load_string(),
 * talas_config_free(), talas_config_dump().
 *
 * libyaml parses the whole document into a node tree (yaml_parser_load),
 * which is then walked against the schema table below: one row per key,
 * named by its dotted path ("storage.map_size"), in the manner of Postfix's
 * CONFIG_*_TABLE and nginx's ngx_command_t. A nested section is a row of
 * type CONF_SECTION followed by the rows of its keys, so a new section is
 * a handful of rows and no code. A list of mappings ("listen") points at a
 * table of its own, read the same way for each item.
 *
 * Every field starts unset; finalize() then fills defaults (written in the
 * file's own syntax, parsed by the same code as the file) and runs the
 * cross-field checks, as nginx's create_conf / init_conf do.
 *
 * Nothing is logged: the first problem found comes back to the caller as
 * "FILE:LINE:COL: key: reason", and the caller decides (talas-master -t
 * prints it, a SIGHUP reload logs it and keeps the old config).
 */
/* configure passes -D_GNU_SOURCE (AC_USE_SYSTEM_EXTENSIONS); this keeps a
 * bare "cc -std=c11" seeing realpath(), getcwd() and strcasecmp() too. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "core/cidr.h"
#include "core/config.h"
#include "core/log.h"
#include "core/util.h"

/* A config file larger than this is a mistake (a log, a music file). */
#define CONFIG_MAX_FILE_SIZE (4 * 1024 * 1024)

/* ------------------------------------------------------------------ arena */

/*
 * A chunk allocator: the config and everything it points to come from one
 * arena, so that freeing a config is one walk and an error half-way
 * through loading leaks nothing. Allocations are zeroed and aligned for
 * any type.
 */
#define ARENA_CHUNK_SIZE 4096

struct chunk {
    struct chunk *next;
    size_t size;
    size_t used;
    max_align_t data[]; /* aligns the payload for any type */
};

struct arena {
    struct chunk *chunks;
};

static void *arena_alloc(struct arena *a, size_t size)
{
    const size_t align = alignof(max_align_t);
    struct chunk *c = a->chunks;
    void *p;

    if (size > SIZE_MAX / 2)
        panic("%s: allocation of %zu bytes", __func__, size);
    size = (size + align - 1) & ~(align - 1);
    if (c == NULL || c->size - c->used < size) {
        size_t n = size > ARENA_CHUNK_SIZE ? size : ARENA_CHUNK_SIZE;

        c = xmalloc(offsetof(struct chunk, data) + n);
        c->size = n;
        c->used = 0;
        /* A large block gets a chunk of its own behind the current one, so
         * the room left in the current one is not wasted. */
        if (size > ARENA_CHUNK_SIZE / 2 && a->chunks != NULL) {
            c->next = a->chunks->next;
            a->chunks->next = c;
        } else {
            c->next = a->chunks;
            a->chunks = c;
        }
    }
    p = (char *)c->data + c->used;
    c->used += size;
    memset(p, 0, size);
    return p;
}

static char *arena_strndup(struct arena *a, const char *s, size_t len)
{
    char *p = arena_alloc(a, len + 1);

    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

static char *arena_strdup(struct arena *a, const char *s)
{
    return arena_strndup(a, s, strlen(s));
}

static char *arena_vprintf(struct arena *a, const char *fmt, va_list ap)
{
    va_list aq;
    int n;
    char *p;

    va_copy(aq, ap);
    n = vsnprintf(NULL, 0, fmt, aq);
    va_end(aq);
    if (n < 0)
        panic("%s: vsnprintf() failed", __func__);
    p = arena_alloc(a, (size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    return p;
}

static void arena_free(struct arena *a)
{
    struct chunk *c, *next;

    for (c = a->chunks; c != NULL; c = next) {
        next = c->next;
        free(c);
    }
    a->chunks = NULL;
}

/* The config and its arena, allocated from the arena itself: a config
 * pointer is all talas_config_free() needs. */
struct config_box {
    struct talas_config conf; /* first: a conf pointer is a box pointer */
    struct arena arena;
};

/* ----------------------------------------------------------------- schema */

enum conf_type {
    CONF_SECTION,      /* a mapping of further keys, "key.subkey" rows follow */
    CONF_INT,          /* int, within min..max */
    CONF_BOOL,         /* int 0/1: true/false, yes/no, on/off */
    CONF_STRING,       /* char *, not empty */
    CONF_PATH,         /* char *, made absolute and normalised */
    CONF_SIZE,         /* uint64_t bytes, talas_parse_size, within min..max */
    CONF_DURATION,     /* uint64_t milliseconds, talas_parse_duration_ms */
    CONF_ENUM,         /* int, one of the row's names */
    CONF_PATH_LIST,    /* char **, size_t count; at least min items */
    CONF_STRING_LIST,  /* char **, size_t count; at least min items */
    CONF_MAPPING_LIST, /* array of items read with the row's item table */
};

#define CONF_REQUIRED 0x01 /* the key must be given (and not null) */
#define CONF_STDERR 0x02   /* path: the word "stderr" is kept as is */
#define CONF_OFF 0x04      /* path: the word "off" stores NULL */

struct conf_enum {
    const char *name;
    int value;
};

struct loader;
struct scope;
struct conf_table;

struct conf_key {
    const char *key; /* dotted path below the table's root */
    enum conf_type type;
    size_t offset; /* of the field in the table's struct */
    int64_t min;   /* int, size, duration: range; lists: fewest items */
    int64_t max;
    const char *def; /* default in the file's syntax (lists: words); NULL: none */
    unsigned flags;
    /* Strings, paths, list items: checks and may rewrite the stored value;
     * returns NULL or the reason it is wrong. */
    const char *(*validate)(char **value);
    size_t count_offset;                            /* lists: of the size_t item count */
    const struct conf_enum *enums;                  /* enum: names and values, NULL-ended */
    int (*parse_enum)(const char *s, int *value_r); /* enum: NULL to use names */
    const struct conf_table *items;                 /* mapping list: the table of one item */
    void (*def_fn)(void *field);                    /* a default that must be computed */
};

struct conf_table {
    const struct conf_key *keys;
    size_t nkeys;
    size_t item_size;
    /* A list item given as a bare scalar instead of a mapping; NULL when
     * that is not allowed. */
    int (*scalar)(struct loader *ld, struct scope *sc, yaml_node_t *node);
    /* Cross-field checks, after defaults: ITEMS[INDEX] is the item being
     * finalized, earlier items are final already. */
    int (*check)(struct loader *ld, struct scope *sc, void *items, size_t index);
};

/* What is known about one row while reading one mapping (or list item). */
struct seen {
    yaml_mark_t mark;   /* of the value; for sections, of their mapping */
    unsigned char set;  /* the key was given */
    unsigned char null; /* ... as null, which counts as not given */
};

struct scope {
    const struct conf_table *table;
    char *base;         /* the struct the table's offsets apply to */
    const char *prefix; /* key path of the scope: "" or "listen[0]" */
    struct seen *seen;  /* one per row of the table */
    yaml_mark_t mark;   /* of the node the scope was read from */
};

struct loader {
    const char *name; /* the file, as the caller named it */
    yaml_document_t *doc;
    struct arena *arena; /* the config's */
    struct arena tmp;    /* scratch: key paths, seen arrays */
    char *cwd;
    char *error; /* the first error, malloc'd */
};

static const char *validate_host(char **value);
static const char *validate_extension(char **value);
static const char *validate_cidr(char **value);
static int parse_log_level(const char *s, int *value_r);
static void default_workers(void *field);
static int read_listen_scalar(struct loader *ld, struct scope *sc, yaml_node_t *node);
static int check_listen(struct loader *ld, struct scope *sc, void *items, size_t index);
static const char *validate_profile_name(char **value);
static const char *validate_public_url(char **value);
static const char *validate_node_name(char **value);
static const char *validate_redis_address(char **value);
static int check_profile(struct loader *ld, struct scope *sc, void *items, size_t index);
static int check_config(struct loader *ld, struct scope *sc, void *items, size_t index);
static int check_key(struct loader *ld, struct scope *sc, void *items, size_t index);
static int read_library_scalar(struct loader *ld, struct scope *sc, yaml_node_t *node);
static const char *validate_library_name(char **value);
static int check_library(struct loader *ld, struct scope *sc, void *items, size_t index);

#define MiB (INT64_C(1) << 20)
#define GiB (INT64_C(1) << 30)
#define TiB (INT64_C(1) << 40)
#define SECOND INT64_C(1000)
#define HOUR (3600 * SECOND)

/* Rows are positional, like ngx_command_t; the trailing columns that few
 * rows need are named, and the others are left zero on purpose. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#define L(field) offsetof(struct talas_config_listen, field)

static const struct conf_key listen_keys[] = {
    {"host", CONF_STRING, L(host), 0, 0, "0.0.0.0", 0, validate_host},
    {"port", CONF_INT, L(port), 1, 65535, NULL, CONF_REQUIRED, NULL},
    {"tls", CONF_SECTION, 0, 0, 0, NULL, 0, NULL},
    {"tls.certificate", CONF_PATH, L(tls_certificate), 0, 0, NULL, 0, NULL},
    {"tls.key", CONF_PATH, L(tls_key), 0, 0, NULL, 0, NULL},
};

static const struct conf_table listen_table = {
    .keys = listen_keys,
    .nkeys = TALAS_ARRAY_SIZE(listen_keys),
    .item_size = sizeof(struct talas_config_listen),
    .scalar = read_listen_scalar,
    .check = check_listen,
};

#define LP(field) offsetof(struct talas_config_library, field)

static const struct conf_key library_keys[] = {
    {"path", CONF_PATH, LP(path), 0, 0, NULL, CONF_REQUIRED, NULL},
    /* NULL: not given; check_library takes the folder's base name */
    {"name", CONF_STRING, LP(name), 0, 0, NULL, 0, validate_library_name},
};

static const struct conf_table library_table = {
    .keys = library_keys,
    .nkeys = TALAS_ARRAY_SIZE(library_keys),
    .item_size = sizeof(struct talas_config_library),
    .scalar = read_library_scalar,
    .check = check_library,
};

#define P(field) offsetof(struct talas_config_profile, field)

static const struct conf_enum codecs[] = {
    {"mp3", TALAS_CONFIG_CODEC_MP3},
    {"aac", TALAS_CONFIG_CODEC_AAC},
    {NULL, 0},
};

static const struct conf_key profile_keys[] = {
    {"name", CONF_STRING, P(name), 0, 0, NULL, CONF_REQUIRED, validate_profile_name},
    {"codec", CONF_ENUM, P(codec), 0, 0, NULL, CONF_REQUIRED, NULL, .enums = codecs},
    {"bitrate", CONF_INT, P(bitrate), 8, 512, NULL, CONF_REQUIRED, NULL},
    {"sample_rate", CONF_INT, P(sample_rate), 8000, 96000, "44100", 0, NULL},
    {"channels", CONF_INT, P(channels), 1, 2, "2", 0, NULL},
    /* -1: not given; check_profile derives it from the codec */
    {"hls", CONF_BOOL, P(hls), 0, 0, NULL, 0, NULL},
    /* 0: not given; check_profile derives it */
    {"bandwidth_estimate", CONF_INT, P(bandwidth_estimate), 8, 100000, NULL, 0, NULL},
};

static const struct conf_table profile_table = {
    .keys = profile_keys,
    .nkeys = TALAS_ARRAY_SIZE(profile_keys),
    .item_size = sizeof(struct talas_config_profile),
    .check = check_profile,
};

static const struct conf_enum jwt_algorithms[] = {
    {"HS256", TALAS_JWT_HS256}, {"HS384", TALAS_JWT_HS384}, {"HS512", TALAS_JWT_HS512},
    {"RS256", TALAS_JWT_RS256}, {"ES256", TALAS_JWT_ES256}, {NULL, 0},
};

#define K(field) offsetof(struct talas_config_key, field)

static const struct conf_key key_keys[] = {
    {"kid", CONF_STRING, K(kid), 0, 0, NULL, CONF_REQUIRED, NULL},
    {"algorithm", CONF_ENUM, K(algorithm), 0, 0, "HS256", 0, NULL, .enums = jwt_algorithms},
    {"secret_file", CONF_PATH, K(secret_file), 0, 0, NULL, 0, NULL},
    {"public_key_file", CONF_PATH, K(public_key_file), 0, 0, NULL, 0, NULL},
    {"private_key_file", CONF_PATH, K(private_key_file), 0, 0, NULL, 0, NULL},
};

static const struct conf_table key_table = {
    .keys = key_keys,
    .nkeys = TALAS_ARRAY_SIZE(key_keys),
    .item_size = sizeof(struct talas_config_key),
    .check = check_key,
};

static const struct conf_enum access_formats[] = {
    {"combined", TALAS_ACCESS_LOG_COMBINED},
    {"json", TALAS_ACCESS_LOG_JSON},
    {NULL, 0},
};

static const struct conf_enum log_levels[] = {
    {"debug", TALAS_LOG_DEBUG},
    {"info", TALAS_LOG_INFO},
    {"warn", TALAS_LOG_WARN},
    {"error", TALAS_LOG_ERROR},
    {NULL, 0},
};

/* What libavformat reads that is audio; the scanner compares them without
 * regard to case. */
#define DEFAULT_EXTENSIONS                                                                                   \
    "mp3 flac wav wave ogg oga opus m4a aac mp4 aif aiff wma wv ape mka webm caf alac mpc"

#define C(field) offsetof(struct talas_config, field)

/*
 * The keys of talas.yaml. To add one: a field in struct talas_config named
 * after the key, a row here, a line in man/talas.yaml.5. A new section is a
 * CONF_SECTION row followed by its keys ("grpc", "grpc.port", ...); a list
 * of mappings is a CONF_MAPPING_LIST row with a table of its own, like
 * listen. Sections come before their keys: talas_config_dump() prints the
 * rows in this order.
 */
static const struct conf_key config_keys[] = {
    /* key, type, offset, min, max, default, flags, validator */
    {"listen", CONF_MAPPING_LIST, C(listen), 1, 0, NULL, CONF_REQUIRED, NULL, .count_offset = C(listen_count),
     .items = &listen_table},
    {"workers", CONF_INT, C(workers), 1, 256, NULL, 0, NULL, .def_fn = default_workers},
    {"daemonize", CONF_BOOL, C(daemonize), 0, 0, "false", 0, NULL},
    {"pid_file", CONF_PATH, C(pid_file), 0, 0, NULL, 0, NULL},
    {"user", CONF_STRING, C(user), 0, 0, NULL, 0, NULL},
    {"group", CONF_STRING, C(group), 0, 0, NULL, 0, NULL},
    {"shutdown_timeout", CONF_DURATION, C(shutdown_timeout_ms), 0, HOUR, "30s", 0, NULL},

    {"library", CONF_SECTION, 0, 0, 0, NULL, 0, NULL},
    {"library.paths", CONF_MAPPING_LIST, C(library_paths), 1, 0, NULL, CONF_REQUIRED, NULL,
     .count_offset = C(library_path_count), .items = &library_table},
    {"library.extensions", CONF_STRING_LIST, C(library_extensions), 1, 0, DEFAULT_EXTENSIONS, 0,
     validate_extension, .count_offset = C(library_extension_count)},

    {"storage", CONF_SECTION, 0, 0, 0, NULL, 0, NULL},
    {"storage.path", CONF_PATH, C(storage_path), 0, 0, NULL, CONF_REQUIRED, NULL},
    {"storage.map_size", CONF_SIZE, C(storage_map_size), MiB, TiB, "4GiB", 0, NULL},
    /* 0: not given; check_config derives it from storage.map_size */
    {"storage.user_data_max", CONF_SIZE, C(storage_user_data_max), 64 * 1024, TiB, NULL, 0, NULL},

    {"auth", CONF_SECTION, 0, 0, 0, NULL, 0, NULL},
    {"auth.required", CONF_BOOL, C(auth_required), 0, 0, "false", 0, NULL},
    {"auth.algorithm", CONF_ENUM, C(auth_key.algorithm), 0, 0, "HS256", 0, NULL, .enums = jwt_algorithms},
    {"auth.kid", CONF_STRING, C(auth_key.kid), 0, 0, NULL, 0, NULL},
    {"auth.secret_file", CONF_PATH, C(auth_key.secret_file), 0, 0, NULL, 0, NULL},
    {"auth.public_key_file", CONF_PATH, C(auth_key.public_key_file), 0, 0, NULL, 0, NULL},
    {"auth.private_key_file", CONF_PATH, C(auth_key.private_key_file), 0, 0, NULL, 0, NULL},
    {"auth.keys", CONF_MAPPING_LIST, C(auth_keys), 1, 0, NULL, 0, NULL, .count_offset = C(auth_key_count),
     .items = &key_table},
    {"auth.backend_key_file", CONF_PATH, C(auth_backend_key_file), 0, 0, NULL, 0, NULL},
    {"auth.leeway", CONF_DURATION, C(auth_leeway_ms), 0, 300 * SECOND, "30s", 0, NULL},
    {"auth.issuer", CONF_STRING, C(auth_issuer), 0, 0, NULL, 0, NULL},
    {"auth.audience", CONF_STRING, C(auth_audience), 0, 0, NULL, 0, NULL},
    {"auth.default_ttl", CONF_DURATION, C(auth_default_ttl_ms), SECOND, 24 * HOUR, "5m", 0, NULL},
    {"auth.max_ttl", CONF_DURATION, C(auth_max_ttl_ms), SECOND, 7 * 24 * HOUR, "24h", 0, NULL},

    {"cluster", CONF_SECTION, 0, 0, 0, NULL, 0, NULL},
    /* not given: check_config takes the host name */
    {"cluster.node_name", CONF_STRING, C(cluster_node_name), 0, 0, NULL, 0, validate_node_name},
    {"cluster.redis", CONF_STRING, C(cluster_redis), 0, 0, NULL, 0, validate_redis_address},
    {"cluster.redis_password_file", CONF_PATH, C(cluster_redis_password_file), 0, 0, NULL, 0, NULL},
    {"cluster.postgres", CONF_STRING, C(cluster_postgres), 0, 0, NULL, 0, NULL},
    {"cluster.postgres_password_file", CONF_PATH, C(cluster_postgres_password_file), 0, 0, NULL, 0, NULL},

    {"grpc", CONF_SECTION, 0, 0, 0, NULL, 0, NULL},
    {"grpc.listen", CONF_MAPPING_LIST, C(grpc_listen), 1, 0, NULL, 0, NULL, .count_offset = C(grpc_listen_count),
     .items = &listen_table},

    {"transcode", CONF_SECTION, 0, 0, 0, NULL, 0, NULL},
    {"transcode.profiles", CONF_MAPPING_LIST, C(transcode_profiles), 1, 0, NULL, 0, NULL,
     .count_offset = C(transcode_profile_count), .items = &profile_table},
    {"transcode.threads", CONF_INT, C(transcode_threads), 1, 64, "1", 0, NULL},
    {"transcode.max_concurrent_per_worker", CONF_INT, C(transcode_max_concurrent_per_worker), 1, 100000, "64", 0,
     NULL},
    {"transcode.max_concurrent", CONF_INT, C(transcode_max_concurrent), 0, 1000000, "256", 0, NULL},

    {"hls", CONF_SECTION, 0, 0, 0, NULL, 0, NULL},
    {"hls.segment_duration", CONF_DURATION, C(hls_segment_duration_ms), SECOND, 10 * SECOND, "6s", 0, NULL},

    {"preview", CONF_SECTION, 0, 0, 0, NULL, 0, NULL},
    {"preview.duration", CONF_DURATION, C(preview_duration_ms), SECOND, 600 * SECOND, "30s", 0, NULL},
    {"preview.start", CONF_STRING, C(preview_start), 0, 0, "30%", 0, NULL},

    {"streaming", CONF_SECTION, 0, 0, 0, NULL, 0, NULL},
    {"streaming.session_timeout", CONF_DURATION, C(streaming_session_timeout_ms), SECOND, 24 * HOUR, "10m", 0,
     NULL},
    {"streaming.max_sessions", CONF_INT, C(streaming_max_sessions), 1, 1000000, "10000", 0, NULL},
    {"streaming.max_sessions_per_user", CONF_INT, C(streaming_max_sessions_per_user), 0, 1000000, "20", 0,
     NULL},
    {"streaming.max_sessions_per_address", CONF_INT, C(streaming_max_sessions_per_address), 0, 1000000, "50",
     0, NULL},
    /* not given: check_config takes a tenth of streaming.max_sessions */
    {"streaming.backend_reserved_sessions", CONF_INT, C(streaming_backend_reserved_sessions), 0, 999999, NULL,
     0, NULL},

    {"playlists", CONF_SECTION, 0, 0, 0, NULL, 0, NULL},
    {"playlists.max_per_user", CONF_INT, C(playlists_max_per_user), 1, 1000000, "200", 0, NULL},
    {"playlists.max_tracks", CONF_INT, C(playlists_max_tracks), 1, 100000, "10000", 0, NULL},
    {"playlists.max_total", CONF_INT, C(playlists_max_total), 1, 100000000, "100000", 0, NULL},
    {"playlists.max_editors", CONF_INT, C(playlists_max_editors), 0, 10000, "100", 0, NULL},
    {"comments", CONF_SECTION, 0, 0, 0, NULL, 0, NULL},
    {"comments.max_body", CONF_INT, C(comments_max_body), 1, 16384, "2000", 0, NULL},
    /* no more than a listing reads (TALAS_COMMENT_LIST_MAX) */
    {"comments.max_per_track", CONF_INT, C(comments_max_per_track), 1, 10000, "10000", 0, NULL},
    {"rooms", CONF_SECTION, 0, 0, 0, NULL, 0, NULL},
    {"rooms.idle_timeout", CONF_DURATION, C(rooms_idle_timeout_ms), SECOND, 7 * 24 * HOUR, "600", 0, NULL},
    {"rooms.max_members", CONF_INT, C(rooms_max_members), 1, 100000, "1000", 0, NULL},
    {"rooms.max_queue", CONF_INT, C(rooms_max_queue), 1, 10000, "500", 0, NULL},
    {"rooms.max_per_user", CONF_INT, C(rooms_max_per_user), 1, 1000, "5", 0, NULL},
    {"rooms.invite_ttl", CONF_DURATION, C(rooms_invite_ttl_ms), 60 * SECOND, 365 * 24 * HOUR, "604800", 0,
     NULL},

    {"cache", CONF_SECTION, 0, 0, 0, NULL, 0, NULL},
    /* 0: not given; check_config derives it from storage.map_size */
    {"cache.max_size", CONF_SIZE, C(cache_max_size), 64 * 1024, TiB, NULL, 0, NULL},

    {"log", CONF_SECTION, 0, 0, 0, NULL, 0, NULL},
    {"log.error", CONF_PATH, C(log_error), 0, 0, "stderr", CONF_STDERR, NULL},
    {"log.access", CONF_PATH, C(log_access), 0, 0, NULL, CONF_STDERR | CONF_OFF, NULL},
    {"log.access_format", CONF_ENUM, C(log_access_format), 0, 0, "combined", 0, NULL,
     .enums = access_formats},
    {"log.level", CONF_ENUM, C(log_level), 0, 0, "info", 0, NULL, .enums = log_levels,
     .parse_enum = parse_log_level},

    {"http", CONF_SECTION, 0, 0, 0, NULL, 0, NULL},
    {"http.request_timeout", CONF_DURATION, C(http_request_timeout_ms), 1, HOUR, "10s", 0, NULL},
    {"http.max_request_body", CONF_SIZE, C(http_max_request_body), 0, GiB, "1MiB", 0, NULL},
    {"http.max_header_size", CONF_SIZE, C(http_max_header_size), 1024, 256 * 1024, "32KiB", 0, NULL},
    {"http.www_root", CONF_PATH, C(http_www_root), 0, 0, NULL, 0, NULL},
    {"http.public_url", CONF_STRING, C(http_public_url), 0, 0, NULL, 0, validate_public_url},
    {"http.max_connections", CONF_INT, C(http_max_connections), 1, 1000000, "4096", 0, NULL},
    {"http.max_connections_per_ip", CONF_INT, C(http_max_connections_per_ip), 0, 1000000, "256", 0, NULL},

    {"http2", CONF_SECTION, 0, 0, 0, NULL, 0, NULL},
    {"http2.idle_timeout", CONF_DURATION, C(http2_idle_timeout_ms), 1, HOUR, "10s", 0, NULL},
    {"http2.max_concurrent_streams", CONF_INT, C(http2_max_concurrent_streams), 1, 1000, "100", 0, NULL},
    {"http2.max_streams_per_second", CONF_INT, C(http2_max_streams_per_second), 0, 1000000, "1000", 0, NULL},
    {"http2.max_resets_per_second", CONF_INT, C(http2_max_resets_per_second), 0, 1000000, "100", 0, NULL},

    {"ws", CONF_SECTION, 0, 0, 0, NULL, 0, NULL},
    /* not given: check_config copies auth.required */
    {"ws.auth_required", CONF_BOOL, C(ws_auth_required), 0, 0, NULL, 0, NULL},
    {"ws.max_connections", CONF_INT, C(ws_max_connections), 1, 1000000, "10000", 0, NULL},
    {"ws.max_message_size", CONF_SIZE, C(ws_max_message_size), 1024, 16 * MiB, "64KiB", 0, NULL},
    {"ws.max_send_queue", CONF_SIZE, C(ws_max_send_queue), 16 * 1024, GiB, "1MiB", 0, NULL},
    {"ws.idle_timeout", CONF_DURATION, C(ws_idle_timeout_ms), SECOND, 24 * HOUR, "5m", 0, NULL},
    {"ws.ping_interval", CONF_DURATION, C(ws_ping_interval_ms), SECOND, HOUR, "30s", 0, NULL},
    {"ws.live_stats_interval", CONF_DURATION, C(ws_live_stats_interval_ms), SECOND, HOUR, "10s", 0, NULL},
    {"ws.rate_limit", CONF_INT, C(ws_rate_limit), 1, 1000000, "100", 0, NULL},
    {"ws.rate_limit_window", CONF_DURATION, C(ws_rate_limit_window_ms), SECOND, HOUR, "10s", 0, NULL},
    {"ws.max_connections_per_user", CONF_INT, C(ws_max_connections_per_user), 0, 1000000, "16", 0, NULL},
    {"ws.max_connections_per_address", CONF_INT, C(ws_max_connections_per_address), 0, 1000000, "64", 0, NULL},
    {"ws.user_rate_limit", CONF_INT, C(ws_user_rate_limit), 0, 1000000, "300", 0, NULL},

    {"analysis", CONF_SECTION, 0, 0, 0, NULL, 0, NULL},
    {"analysis.loudness", CONF_BOOL, C(analysis_loudness), 0, 0, "true", 0, NULL},
    {"analysis.tempo", CONF_BOOL, C(analysis_tempo), 0, 0, "true", 0, NULL},
    {"analysis.tempo_max_duration", CONF_DURATION, C(analysis_tempo_max_duration_ms), 0, 24 * HOUR, "300", 0,
     NULL},
    {"subsonic", CONF_SECTION, 0, 0, 0, NULL, 0, NULL},
    {"subsonic.enabled", CONF_BOOL, C(subsonic_enabled), 0, 0, "false", 0, NULL},
    {"subsonic.password_key_file", CONF_PATH, C(subsonic_password_key_file), 0, 0, NULL, 0, NULL},
    {"subsonic.max_failed_logins", CONF_INT, C(subsonic_max_failed_logins), 0, 1000000, "10", 0, NULL},
    {"subsonic.failed_login_window", CONF_DURATION, C(subsonic_failed_login_window_ms), SECOND, 24 * HOUR, "5m",
     0, NULL},

    {"metrics", CONF_SECTION, 0, 0, 0, NULL, 0, NULL},
    {"metrics.enabled", CONF_BOOL, C(metrics_enabled), 0, 0, "true", 0, NULL},
    {"metrics.allow", CONF_STRING_LIST, C(metrics_allow), 1, 0, "127.0.0.0/8 ::1", 0, validate_cidr,
     .count_offset = C(metrics_allow_count)},

    {"control", CONF_SECTION, 0, 0, 0, NULL, 0, NULL},
    /* default: pid_file with ".sock" for ".pid", else in storage.path (check_config) */
    {"control.socket", CONF_PATH, C(control_socket), 0, 0, NULL, 0, NULL},
    {"control.group", CONF_STRING, C(control_group), 0, 0, NULL, 0, NULL},
};

#pragma GCC diagnostic pop

static const struct conf_table config_table = {
    .keys = config_keys,
    .nkeys = TALAS_ARRAY_SIZE(config_keys),
    .item_size = sizeof(struct talas_config),
    .check = check_config,
};

/* Enum fields are read and written as int. */
_Static_assert(sizeof(enum talas_access_log_format) == sizeof(int), "enum is not int-sized");

/* ----------------------------------------------------------------- errors */

static const char *tmp_printf(struct loader *ld, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static const char *tmp_printf(struct loader *ld, const char *fmt, ...)
{
    va_list ap;
    char *s;

    va_start(ap, fmt);
    s = arena_vprintf(&ld->tmp, fmt, ap);
    va_end(ap);
    return s;
}

static int fail(struct loader *ld, const yaml_mark_t *mark, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Records "FILE:LINE:COL: KEY: reason" (the first one only) and returns -1.
 * libyaml counts lines and columns from 0; people count from 1. */
static int fail(struct loader *ld, const yaml_mark_t *mark, const char *key, const char *fmt, ...)
{
    va_list ap;
    const char *reason;

    if (ld->error != NULL)
        return -1;
    va_start(ap, fmt);
    reason = arena_vprintf(&ld->tmp, fmt, ap);
    va_end(ap);
    ld->error = xasprintf("%s:%zu:%zu: %s: %s", ld->name, mark != NULL ? mark->line + 1 : 1,
                          mark != NULL ? mark->column + 1 : 1, key, reason);
    return -1;
}

/* "1MiB", "4GiB", "1000": the largest binary unit that divides SIZE. */
static const char *format_size(char *buf, size_t len, uint64_t size)
{
    static const char *const units[] = {"TiB", "GiB", "MiB", "KiB"};

    for (size_t i = 0; i < TALAS_ARRAY_SIZE(units); i++) {
        uint64_t mult = UINT64_C(1) << (10 * (4 - i));

        if (size != 0 && size % mult == 0) {
            snprintf(buf, len, "%" PRIu64 "%s", size / mult, units[i]);
            return buf;
        }
    }
    snprintf(buf, len, "%" PRIu64, size);
    return buf;
}

/* "1h", "2m", "30s", "500ms". */
static const char *format_duration(char *buf, size_t len, uint64_t ms)
{
    if (ms != 0 && ms % HOUR == 0)
        snprintf(buf, len, "%" PRIu64 "h", ms / HOUR);
    else if (ms != 0 && ms % (60 * SECOND) == 0)
        snprintf(buf, len, "%" PRIu64 "m", ms / (60 * SECOND));
    else if (ms % SECOND == 0)
        snprintf(buf, len, "%" PRIu64 "s", ms / SECOND);
    else
        snprintf(buf, len, "%" PRIu64 "ms", ms);
    return buf;
}

/* ------------------------------------------------------------ yaml nodes */

static yaml_node_t *node_at(struct loader *ld, int index)
{
    return yaml_document_get_node(ld->doc, index);
}

static const char *scalar_of(yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

/* Plain "", "~" and "null" are YAML's null: "pid_file:" with nothing after
 * it means "not set", so the default applies. Quoted, they are strings. */
static int is_null(yaml_node_t *n)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};

    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    for (size_t i = 0; i < TALAS_ARRAY_SIZE(nulls); i++) {
        if (strcmp(scalar_of(n), nulls[i]) == 0)
            return 1;
    }
    return 0;
}

static const char *node_kind(yaml_node_t *n)
{
    if (n->type == YAML_MAPPING_NODE)
        return "a mapping";
    if (n->type == YAML_SEQUENCE_NODE)
        return "a list";
    if (is_null(n))
        return "null";
    return "a scalar";
}

/* What a value of TYPE looks like, for "must be X, not a mapping". */
static const char *type_name(enum conf_type type)
{
    switch (type) {
    case CONF_SECTION:
        return "a mapping";
    case CONF_INT:
        return "an integer";
    case CONF_BOOL:
        return "true or false";
    case CONF_STRING:
    case CONF_ENUM:
        return "a string";
    case CONF_PATH:
        return "a path";
    case CONF_SIZE:
        return "a size";
    case CONF_DURATION:
        return "a duration";
    case CONF_PATH_LIST:
    case CONF_STRING_LIST:
    case CONF_MAPPING_LIST:
        return "a list";
    }
    return "a value";
}

/* ------------------------------------------------------------------ paths */

static const char *get_cwd(struct loader *ld)
{
    size_t size = 256;

    while (ld->cwd == NULL) {
        char *buf = arena_alloc(&ld->tmp, size);

        if (getcwd(buf, size) != NULL)
            ld->cwd = buf;
        else if (errno == ERANGE && size < 65536)
            size *= 2;
        else
            return NULL;
    }
    return ld->cwd;
}

/*
 * Makes PATH absolute: realpath() when it exists, so the stored name is the
 * one the kernel will find; else joined with the working directory and
 * cleaned of ".", ".." and repeated slashes, as the file may be created
 * later (storage.path, pid_file, logs).
 */
static const char *resolve_path(struct loader *ld, const char *path, char **out_r)
{
    char *real, *out, *p;
    const char *cwd = "", *s;
    size_t len;

    real = realpath(path, NULL);
    if (real != NULL) {
        *out_r = arena_strdup(ld->arena, real);
        free(real);
        return NULL;
    }
    if (path[0] != '/') {
        cwd = get_cwd(ld);
        if (cwd == NULL)
            return tmp_printf(ld, "getcwd() failed: %s", strerror(errno));
    }
    len = strlen(cwd) + 1 + strlen(path);
    out = arena_alloc(ld->arena, len + 2);
    p = out;
    for (int pass = 0; pass < 2; pass++) {
        for (s = pass == 0 ? cwd : path; *s != '\0';) {
            size_t n = strcspn(s, "/");
            const char *end = s + n;

            if (n == 0 || (n == 1 && s[0] == '.')) {
                /* nothing */
            } else if (n == 2 && s[0] == '.' && s[1] == '.') {
                while (p > out && *--p != '/')
                    ;
            } else {
                *p++ = '/';
                memcpy(p, s, n);
                p += n;
            }
            s = *end == '/' ? end + 1 : end;
        }
    }
    if (p == out)
        *p++ = '/';
    *p = '\0';
    *out_r = out;
    return NULL;
}

/* ------------------------------------------------------------- converting */

static const char *enum_names(struct loader *ld, const struct conf_enum *e)
{
    const char *s = "";

    for (size_t i = 0; e[i].name != NULL; i++) {
        const char *sep = i == 0 ? "" : e[i + 1].name == NULL ? " or " : ", ";

        s = tmp_printf(ld, "%s%s%s", s, sep, e[i].name);
    }
    return s;
}

static const char *enum_name(const struct conf_enum *e, int value)
{
    for (; e->name != NULL; e++) {
        if (e->value == value)
            return e->name;
    }
    return "?";
}

static const char *convert_int(struct loader *ld, const struct conf_key *row, const char *s, int *field)
{
    const char *p = s;
    char *end;
    long long v;

    if (*p == '-' || *p == '+')
        p++;
    if (*p < '0' || *p > '9')
        return "must be an integer";
    errno = 0;
    v = strtoll(s, &end, 10);
    if (*end != '\0')
        return "must be an integer";
    if (errno != 0 || v < row->min || v > row->max)
        return tmp_printf(ld, "must be %" PRId64 "..%" PRId64, row->min, row->max);
    *field = (int)v;
    return NULL;
}

static const char *convert_bool(const char *s, int *field)
{
    static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};

    for (size_t i = 0; i < TALAS_ARRAY_SIZE(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *field = 1;
            return NULL;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *field = 0;
            return NULL;
        }
    }
    return "must be true or false";
}

static const char *convert_size(struct loader *ld, const struct conf_key *row, const char *s, uint64_t *field)
{
    uint64_t v;
    char min[32], max[32];

    if (talas_parse_size(s, &v) == -1)
        return "must be a size such as 512MiB or 4GiB";
    if (v < (uint64_t)row->min || v > (uint64_t)row->max)
        return tmp_printf(ld, "must be %s..%s", format_size(min, sizeof(min), (uint64_t)row->min),
                          format_size(max, sizeof(max), (uint64_t)row->max));
    *field = v;
    return NULL;
}

static const char *convert_duration(struct loader *ld, const struct conf_key *row, const char *s,
                                    uint64_t *field)
{
    uint64_t v;
    char min[32], max[32];

    if (talas_parse_duration_ms(s, &v) == -1)
        return "must be a duration such as 500ms, 30s, 5m or 1h";
    if (v < (uint64_t)row->min || v > (uint64_t)row->max)
        return tmp_printf(ld, "must be %s..%s", format_duration(min, sizeof(min), (uint64_t)row->min),
                          format_duration(max, sizeof(max), (uint64_t)row->max));
    *field = v;
    return NULL;
}

static const char *convert_enum(struct loader *ld, const struct conf_key *row, const char *s, int *field)
{
    if (row->parse_enum != NULL) {
        if (row->parse_enum(s, field) == 0)
            return NULL;
    } else {
        for (const struct conf_enum *e = row->enums; e->name != NULL; e++) {
            if (strcmp(s, e->name) == 0) {
                *field = e->value;
                return NULL;
            }
        }
    }
    return tmp_printf(ld, "must be %s", enum_names(ld, row->enums));
}

/* Strings and paths, alone or as list items (TYPE says which). */
static const char *convert_string(struct loader *ld, const struct conf_key *row, enum conf_type type,
                                  const char *s, char **field)
{
    const char *reason;
    char *v;

    if (*s == '\0')
        return "must not be empty";
    if (type != CONF_PATH || ((row->flags & CONF_STDERR) && strcmp(s, "stderr") == 0)) {
        v = arena_strdup(ld->arena, s);
    } else if ((row->flags & CONF_OFF) && strcmp(s, "off") == 0) {
        v = NULL;
    } else {
        reason = resolve_path(ld, s, &v);
        if (reason != NULL)
            return reason;
    }
    if (v != NULL && row->validate != NULL) {
        reason = row->validate(&v);
        if (reason != NULL)
            return reason;
    }
    *field = v;
    return NULL;
}

/* Stores the scalar S, read as ROW's type, in FIELD; returns NULL or the
 * reason S does not fit. */
static const char *convert(struct loader *ld, const struct conf_key *row, const char *s, void *field)
{
    switch (row->type) {
    case CONF_INT:
        return convert_int(ld, row, s, field);
    case CONF_BOOL:
        return convert_bool(s, field);
    case CONF_STRING:
    case CONF_PATH:
        return convert_string(ld, row, row->type, s, field);
    case CONF_SIZE:
        return convert_size(ld, row, s, field);
    case CONF_DURATION:
        return convert_duration(ld, row, s, field);
    case CONF_ENUM:
        return convert_enum(ld, row, s, field);
    case CONF_SECTION:
    case CONF_PATH_LIST:
    case CONF_STRING_LIST:
    case CONF_MAPPING_LIST:
        break;
    }
    panic("%s: %s: not a scalar type", __func__, row->key);
}

/* ---------------------------------------------------------------- reading */

static const char *key_path(struct loader *ld, const char *prefix, const char *key)
{
    if (prefix[0] == '\0')
        return key;
    if (key[0] == '\0')
        return prefix;
    return tmp_printf(ld, "%s.%s", prefix, key);
}

static const struct conf_key *find_key(const struct conf_table *t, const char *key)
{
    for (size_t i = 0; i < t->nkeys; i++) {
        if (strcmp(t->keys[i].key, key) == 0)
            return &t->keys[i];
    }
    return NULL;
}

/* The text of scalar node N, or NULL after reporting why it cannot be a
 * value of type TYPE. */
static const char *scalar_value(struct loader *ld, yaml_node_t *n, enum conf_type type, const char *key)
{
    if (n->type != YAML_SCALAR_NODE) {
        fail(ld, &n->start_mark, key, "must be %s, not %s", type_name(type), node_kind(n));
        return NULL;
    }
    /* A "\0" escape in a quoted scalar would silently cut the value. */
    if (strlen(scalar_of(n)) != n->data.scalar.length) {
        fail(ld, &n->start_mark, key, "must not contain NUL characters");
        return NULL;
    }
    return scalar_of(n);
}

static int read_mapping(struct loader *ld, struct scope *sc, const char *section, yaml_node_t *map);
static int finalize(struct loader *ld, struct scope *sc, void *items, size_t index);

/* Stores the N ITEMS of list ROW in the struct at BASE. The field is a
 * char ** or a struct pointer: memcpy() writes it whatever its type. */
static void set_list(char *base, const struct conf_key *row, void *items, size_t n)
{
    memcpy(base + row->offset, &items, sizeof(items));
    memcpy(base + row->count_offset, &n, sizeof(n));
}

static int check_list_length(struct loader *ld, const struct conf_key *row, const char *key, yaml_node_t *seq,
                             size_t n)
{
    if (n >= (size_t)row->min)
        return 0;
    if (row->min == 1)
        return fail(ld, &seq->start_mark, key, "must not be empty");
    return fail(ld, &seq->start_mark, key, "must have at least %" PRId64 " items", row->min);
}

static int read_list(struct loader *ld, const struct conf_key *row, const char *key, yaml_node_t *seq,
                     char *base)
{
    size_t n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    enum conf_type item_type = row->type == CONF_PATH_LIST ? CONF_PATH : CONF_STRING;
    char **items;

    if (check_list_length(ld, row, key, seq, n) == -1)
        return -1;
    items = arena_alloc(ld->arena, (n + 1) * sizeof(*items)); /* NULL-terminated too */
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = node_at(ld, seq->data.sequence.items.start[i]);
        const char *item_key = tmp_printf(ld, "%s[%zu]", key, i);
        const char *s, *reason;

        s = scalar_value(ld, item, item_type, item_key);
        if (s == NULL)
            return -1;
        reason = convert_string(ld, row, item_type, s, &items[i]);
        if (reason != NULL)
            return fail(ld, &item->start_mark, item_key, "%s", reason);
    }
    set_list(base, row, items, n);
    return 0;
}

static int read_mapping_list(struct loader *ld, const struct conf_key *row, const char *key, yaml_node_t *seq,
                             char *base)
{
    const struct conf_table *t = row->items;
    size_t n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    char *items;

    if (check_list_length(ld, row, key, seq, n) == -1)
        return -1;
    items = arena_alloc(ld->arena, n * t->item_size);
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = node_at(ld, seq->data.sequence.items.start[i]);
        struct scope sc = {
            .table = t,
            .base = items + i * t->item_size,
            .prefix = tmp_printf(ld, "%s[%zu]", key, i),
            .seen = arena_alloc(&ld->tmp, t->nkeys * sizeof(struct seen)),
            .mark = item->start_mark,
        };

        if (item->type == YAML_MAPPING_NODE) {
            if (read_mapping(ld, &sc, "", item) == -1)
                return -1;
        } else if (item->type == YAML_SCALAR_NODE && !is_null(item) && t->scalar != NULL) {
            if (t->scalar(ld, &sc, item) == -1)
                return -1;
        } else {
            return fail(ld, &item->start_mark, sc.prefix, "must be a mapping, not %s", node_kind(item));
        }
        if (finalize(ld, &sc, items, i) == -1)
            return -1;
    }
    set_list(base, row, items, n);
    return 0;
}

/* Reads the value V of ROW, given under the key path KEY, into scope SC. */
static int read_value(struct loader *ld, struct scope *sc, const struct conf_key *row, const char *key,
                      yaml_node_t *v)
{
    struct seen *seen = &sc->seen[row - sc->table->keys];
    void *field = sc->base + row->offset;
    const char *s, *reason;

    seen->set = 1;
    seen->mark = v->start_mark;
    if (is_null(v)) {
        seen->null = 1;
        return 0;
    }
    switch (row->type) {
    case CONF_SECTION:
        if (v->type != YAML_MAPPING_NODE)
            return fail(ld, &v->start_mark, key, "must be a mapping, not %s", node_kind(v));
        return read_mapping(ld, sc, row->key, v);
    case CONF_PATH_LIST:
    case CONF_STRING_LIST:
    case CONF_MAPPING_LIST:
        if (v->type != YAML_SEQUENCE_NODE)
            return fail(ld, &v->start_mark, key, "must be a list, not %s", node_kind(v));
        if (row->type == CONF_MAPPING_LIST)
            return read_mapping_list(ld, row, key, v, sc->base);
        return read_list(ld, row, key, v, sc->base);
    default:
        s = scalar_value(ld, v, row->type, key);
        if (s == NULL)
            return -1;
        reason = convert(ld, row, s, field);
        if (reason != NULL)
            return fail(ld, &v->start_mark, key, "%s", reason);
        return 0;
    }
}

/* Reads the keys of MAP into SC; SECTION is the dotted path of MAP within
 * the scope's table ("" for the scope itself, "library", "tls"). */
static int read_mapping(struct loader *ld, struct scope *sc, const char *section, yaml_node_t *map)
{
    yaml_node_pair_t *pairs = map->data.mapping.pairs.start;
    size_t n = (size_t)(map->data.mapping.pairs.top - pairs);

    for (size_t i = 0; i < n; i++) {
        yaml_node_t *k = node_at(ld, pairs[i].key), *v = node_at(ld, pairs[i].value);
        const struct conf_key *row = NULL;
        const char *name, *key;

        if (k->type != YAML_SCALAR_NODE) {
            key = key_path(ld, sc->prefix, section);
            return fail(ld, &k->start_mark, key[0] != '\0' ? key : "(document)",
                        "keys must be strings, not %s", node_kind(k));
        }
        name = scalar_of(k);
        key = key_path(ld, sc->prefix, key_path(ld, section, name));
        /* libyaml keeps duplicate keys; a second value silently winning
         * would hide a mistake. */
        for (size_t j = 0; j < i; j++) {
            yaml_node_t *prev = node_at(ld, pairs[j].key);

            if (prev->type == YAML_SCALAR_NODE && strcmp(scalar_of(prev), name) == 0)
                return fail(ld, &k->start_mark, key, "duplicate key (first at %zu:%zu)",
                            prev->start_mark.line + 1, prev->start_mark.column + 1);
        }
        /* A dotted key would reach a row through the back door, past the
         * duplicate check of its section. */
        if (strchr(name, '.') == NULL && strlen(name) == k->data.scalar.length)
            row = find_key(sc->table, key_path(ld, section, name));
        if (row == NULL)
            return fail(ld, &k->start_mark, key, "unknown key");
        if (read_value(ld, sc, row, key, v) == -1)
            return -1;
    }
    return 0;
}

/* Where a missing KEY should have been: the mapping of its innermost
 * section present, else the scope's own node. */
static const yaml_mark_t *missing_mark(struct scope *sc, const char *key)
{
    const struct conf_table *t = sc->table;

    for (size_t len = strlen(key); len > 0; len--) {
        if (key[len] != '.')
            continue;
        for (size_t i = 0; i < t->nkeys; i++) {
            if (strncmp(t->keys[i].key, key, len) == 0 && t->keys[i].key[len] == '\0' && sc->seen[i].set)
                return &sc->seen[i].mark;
        }
    }
    return &sc->mark;
}

/* Stores the default of ROW in the struct at BASE: the row's text, read as
 * if it were in the file (list defaults are words). */
static const char *apply_default(struct loader *ld, const struct conf_key *row, char *base)
{
    enum conf_type item_type = row->type == CONF_PATH_LIST ? CONF_PATH : CONF_STRING;
    const char *s = row->def, *reason;
    size_t n = 0;
    char **items;

    if (row->type != CONF_PATH_LIST && row->type != CONF_STRING_LIST)
        return convert(ld, row, row->def, base + row->offset);
    items = arena_alloc(ld->arena, (strlen(s) / 2 + 2) * sizeof(*items));
    while (*(s += strspn(s, " ")) != '\0') {
        size_t len = strcspn(s, " ");

        reason = convert_string(ld, row, item_type, tmp_printf(ld, "%.*s", (int)len, s), &items[n++]);
        if (reason != NULL)
            return reason;
        s += len;
    }
    set_list(base, row, items, n);
    return NULL;
}

/* Fills in defaults and checks required keys, then the table's
 * cross-field checks (nginx init_conf). */
static int finalize(struct loader *ld, struct scope *sc, void *items, size_t index)
{
    const struct conf_table *t = sc->table;

    for (size_t i = 0; i < t->nkeys; i++) {
        const struct conf_key *row = &t->keys[i];
        struct seen *seen = &sc->seen[i];
        void *field = sc->base + row->offset;
        const char *reason;

        if (row->type == CONF_SECTION || (seen->set && !seen->null))
            continue;
        if (row->flags & CONF_REQUIRED) {
            const char *key = key_path(ld, sc->prefix, row->key);

            if (seen->set)
                return fail(ld, &seen->mark, key, "is required and must not be null");
            return fail(ld, missing_mark(sc, row->key), key, "is required");
        }
        if (row->def_fn != NULL) {
            row->def_fn(field);
        } else if (row->def != NULL) {
            reason = apply_default(ld, row, sc->base);
            if (reason != NULL)
                panic("%s: %s: bad default \"%s\": %s", __func__, row->key, row->def, reason);
        }
    }
    if (t->check != NULL)
        return t->check(ld, sc, items, index);
    return 0;
}

/* ------------------------------------------------------- validators, hooks */

/* "[::1]" is how people write IPv6 next to a port; getaddrinfo() wants
 * the bare address. */
static const char *validate_host(char **value)
{
    char *s = *value;
    size_t len = strlen(s);

    if (s[0] == '[') {
        if (len < 3 || s[len - 1] != ']')
            return "must be a host name or an address such as 127.0.0.1 or ::1";
        memmove(s, s + 1, len - 2);
        s[len - 2] = '\0';
    }
    /* the default http.public_url is made of it: nothing a URL would read
     * as a delimiter ("?", "#", "@", "/") may pass (found by fuzz_config) */
    if (*s == '\0' ||
        strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-_:%") != strlen(s))
        return "must be a host name or an address such as 127.0.0.1 or ::1";
    return NULL;
}

static const char *validate_cidr(char **value)
{
    struct talas_cidr c;

    if (talas_cidr_parse(*value, &c) != 0)
        return "must be an address or a network such as 127.0.0.1, 10.0.0.0/8 or ::1";
    return NULL;
}

/* Extensions are stored without the dot, whether or not it was written. */
static const char *validate_extension(char **value)
{
    if (**value == '.')
        (*value)++;
    if (**value == '\0' || strpbrk(*value, "/ \t") != NULL)
        return "must be a file name extension such as flac";
    return NULL;
}

static int parse_log_level(const char *s, int *value_r)
{
    enum talas_log_level level;

    if (talas_log_level_parse(s, &level) == -1)
        return -1;
    *value_r = (int)level;
    return 0;
}

/* One worker per CPU: workers are single-threaded event loops. */
static void default_workers(void *field)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    *(int *)field = n < 1 ? 1 : n > 256 ? 256 : (int)n;
}

/* Sets KEY of scope SC from the text S found at N, as if it had been
 * written as a mapping. */
static int set_scalar(struct loader *ld, struct scope *sc, const char *key, const char *s, yaml_node_t *n)
{
    const struct conf_key *row = find_key(sc->table, key);
    struct seen *seen = &sc->seen[row - sc->table->keys];
    const char *reason;

    reason = convert(ld, row, s, sc->base + row->offset);
    if (reason != NULL)
        return fail(ld, &n->start_mark, key_path(ld, sc->prefix, key), "%s", reason);
    seen->set = 1;
    seen->mark = n->start_mark;
    return 0;
}

/* "- 8082", "- 127.0.0.1:8082", "- [::1]:8082". */
static int read_listen_scalar(struct loader *ld, struct scope *sc, yaml_node_t *node)
{
    const char *s = scalar_of(node), *colon = strrchr(s, ':'), *host = NULL, *port = s;

    if (s[0] == '[') {
        const char *end = strchr(s, ']');

        if (end == NULL || end[1] != ':')
            goto bad;
        host = tmp_printf(ld, "%.*s", (int)(end - s + 1), s);
        port = end + 2;
    } else if (colon != NULL) {
        if (strchr(s, ':') != colon)
            goto bad; /* a bare IPv6 address: which part is the port? */
        host = tmp_printf(ld, "%.*s", (int)(colon - s), s);
        port = colon + 1;
    }
    if (host != NULL && set_scalar(ld, sc, "host", host, node) == -1)
        return -1;
    return set_scalar(ld, sc, "port", port, node);

bad:
    return fail(ld, &node->start_mark, sc->prefix, "must be PORT, HOST:PORT or [IPV6]:PORT");
}

static int check_listen(struct loader *ld, struct scope *sc, void *items, size_t index)
{
    struct talas_config_listen *l = items, *cur = &l[index];
    const struct conf_key *tls = find_key(sc->table, "tls");
    const yaml_mark_t *mark = &sc->mark;

    if (sc->seen[tls - sc->table->keys].set)
        mark = &sc->seen[tls - sc->table->keys].mark;
    if (cur->tls_certificate != NULL && cur->tls_key == NULL)
        return fail(ld, mark, key_path(ld, sc->prefix, "tls.key"), "is required with tls.certificate");
    if (cur->tls_key != NULL && cur->tls_certificate == NULL)
        return fail(ld, mark, key_path(ld, sc->prefix, "tls.certificate"), "is required with tls.key");
    for (size_t i = 0; i < index; i++) {
        if (l[i].port == cur->port && strcmp(l[i].host, cur->host) == 0)
            return fail(ld, &sc->mark, sc->prefix, "%s%s%s:%d is already in listen[%zu]",
                        strchr(cur->host, ':') ? "[" : "", cur->host, strchr(cur->host, ':') ? "]" : "",
                        cur->port, i);
    }
    return 0;
}

/* A bare string in library.paths is the folder's path. */
static int read_library_scalar(struct loader *ld, struct scope *sc, yaml_node_t *node)
{
    return set_scalar(ld, sc, "path", scalar_of(node), node);
}

/* A library's name is half of every track id under it (store/catalog.h):
 * one path component, printable. */
static const char *validate_library_name(char **value)
{
    size_t n = strlen(*value);

    if (n == 0 || n > 255)
        return "must be 1 to 255 bytes long";
    if (strcmp(*value, ".") == 0 || strcmp(*value, "..") == 0)
        return "must not be . or ..";
    for (const unsigned char *p = (const unsigned char *)*value; *p; p++)
        if (*p == '/' || *p < 0x20 || *p == 0x7f)
            return "must not contain '/' or control characters";
    return NULL;
}

static int check_library(struct loader *ld, struct scope *sc, void *items, size_t index)
{
    struct talas_config_library *l = items, *cur = &l[index];
    const struct conf_key *name = find_key(sc->table, "name");
    const struct seen *seen = &sc->seen[name - sc->table->keys];

    if (cur->name == NULL) {
        /* the path is absolute and normalised: its last component, which
         * must make a name as an explicit one would (the dump writes it
         * back as name:); the root itself has none */
        const char *slash = strrchr(cur->path, '/');
        const struct conf_key *path = find_key(sc->table, "path");
        const struct seen *pseen = &sc->seen[path - sc->table->keys];
        char *derived = arena_strdup(ld->arena, slash + 1);
        const char *why = validate_library_name(&derived);

        if (why != NULL)
            return fail(ld, &pseen->mark, key_path(ld, sc->prefix, "path"),
                        "its last component cannot name the library (a name %s); set name:", why);
        cur->name = derived;
    }
    for (size_t i = 0; i < index; i++)
        if (strcmp(l[i].name, cur->name) == 0)
            return fail(ld, seen->set && !seen->null ? &seen->mark : &sc->mark, key_path(ld, sc->prefix, "name"),
                        "\"%s\" is already the name of library.paths[%zu] (%s): track ids would collide; "
                        "give one of them another name",
                        cur->name, i, l[i].path);
    return 0;
}

static const char *validate_public_url(char **value)
{
    size_t n;

    if (strncmp(*value, "http://", 7) != 0 && strncmp(*value, "https://", 8) != 0)
        return "must start with http:// or https://";
    if (strpbrk(*value, "?# \t") != NULL)
        return "must be a base URL: no query, fragment or spaces";
    /* minted URLs append "/stream/ID": no trailing slash */
    n = strlen(*value);
    while (n > 8 && (*value)[n - 1] == '/')
        (*value)[--n] = '\0';
    return NULL;
}

/* What a key needs for its algorithm: a secret for HMAC, a public key to
 * verify RSA/EC tokens (a private key only to mint them). */
static const char *key_problem(const struct talas_config_key *k)
{
    int hmac = k->algorithm <= TALAS_JWT_HS512;

    if (hmac && k->secret_file == NULL)
        return "secret_file is required with an HS* algorithm";
    if (hmac && (k->public_key_file != NULL || k->private_key_file != NULL))
        return "public_key_file and private_key_file go with RS256/ES256, not HS*";
    if (!hmac && k->public_key_file == NULL)
        return "public_key_file is required with RS256/ES256";
    if (!hmac && k->secret_file != NULL)
        return "secret_file goes with HS*, not RS256/ES256";
    return NULL;
}

/* A string that lives as long as the configuration. */
static char *conf_printf(struct loader *ld, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static char *conf_printf(struct loader *ld, const char *fmt, ...)
{
    va_list ap;
    char *s;

    va_start(ap, fmt);
    s = arena_vprintf(ld->arena, fmt, ap);
    va_end(ap);
    return s;
}

static int check_key(struct loader *ld, struct scope *sc, void *items, size_t index)
{
    struct talas_config_key *k = items, *cur = &k[index];
    const char *problem = key_problem(cur);

    if (problem != NULL)
        return fail(ld, &sc->mark, sc->prefix, "%s", problem);
    for (size_t i = 0; i < index; i++)
        if (strcmp(k[i].kid, cur->kid) == 0)
            return fail(ld, &sc->mark, key_path(ld, sc->prefix, "kid"), "\"%s\" is already auth.keys[%zu]", cur->kid,
                        i);
    return 0;
}

static const char *validate_profile_name(char **value)
{
    size_t n = strlen(*value);

    if (n > 31)
        return "must be at most 31 characters";
    for (const char *p = *value; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
            return "must be made of a-z, 0-9, '_' and '-'";
    return NULL;
}

/* The rates each encoder takes (libmp3lame: MPEG-1/2/2.5; aac: the
 * sampling frequency index of ADTS, limited to 8..96 kHz). */
static int rate_supported(int codec, int rate)
{
    static const int mp3[] = {8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000};
    static const int aac[] = {8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000};
    const int *r = codec == TALAS_CONFIG_CODEC_MP3 ? mp3 : aac;
    size_t n = codec == TALAS_CONFIG_CODEC_MP3 ? TALAS_ARRAY_SIZE(mp3) : TALAS_ARRAY_SIZE(aac);

    for (size_t i = 0; i < n; i++)
        if (r[i] == rate)
            return 1;
    return 0;
}

/* The default ladder, the one definition of it: the seeds' four
 * AdaptiveProfile rungs with their bandwidth estimates, and "mp3" for
 * browsers' progressive playback (its estimate is the rule below's). It is
 * transcode.profiles when the file has none; a configured profile that is
 * one of its rungs gets the rung's estimate. talas.yaml(5) documents it. */
static struct talas_config_profile default_profiles[] = {
    {"high", TALAS_CONFIG_CODEC_AAC, 320, 44100, 2, 1, 400},
    {"medium", TALAS_CONFIG_CODEC_AAC, 192, 44100, 2, 1, 250},
    {"low", TALAS_CONFIG_CODEC_MP3, 128, 22050, 2, 0, 160},
    {"mobile", TALAS_CONFIG_CODEC_AAC, 96, 22050, 2, 1, 120},
    {"mp3", TALAS_CONFIG_CODEC_MP3, 192, 44100, 2, 0, 240},
};

const struct talas_config_profile *talas_config_default_profile(const char *name)
{
    for (size_t i = 0; i < TALAS_ARRAY_SIZE(default_profiles); i++)
        if (strcmp(name, default_profiles[i].name) == 0)
            return &default_profiles[i];
    return NULL;
}

/* A profile of the default ladder as it defines it (name, codec, bitrate):
 * the ladder's figure; any other profile: its bitrate and a quarter for the
 * network's variations (the margin of three of the seeds' four). */
static int default_bandwidth_estimate(const struct talas_config_profile *p)
{
    for (size_t i = 0; i < TALAS_ARRAY_SIZE(default_profiles); i++)
        if (strcmp(p->name, default_profiles[i].name) == 0 && p->codec == default_profiles[i].codec &&
            p->bitrate == default_profiles[i].bitrate)
            return default_profiles[i].bandwidth_estimate;
    return (p->bitrate * 5 + 3) / 4;
}

static int check_profile(struct loader *ld, struct scope *sc, void *items, size_t index)
{
    struct talas_config_profile *p = items, *cur = &p[index];
    const struct conf_key *hls = find_key(sc->table, "hls");
    const struct conf_key *rate = find_key(sc->table, "sample_rate");
    const struct conf_key *br = find_key(sc->table, "bitrate");
    const yaml_mark_t *rate_mark = sc->seen[rate - sc->table->keys].set ? &sc->seen[rate - sc->table->keys].mark
                                                                         : &sc->mark;

    if (!sc->seen[hls - sc->table->keys].set || sc->seen[hls - sc->table->keys].null)
        cur->hls = cur->codec == TALAS_CONFIG_CODEC_AAC;
    else if (cur->hls && cur->codec != TALAS_CONFIG_CODEC_AAC)
        return fail(ld, &sc->seen[hls - sc->table->keys].mark, key_path(ld, sc->prefix, "hls"),
                    "only AAC profiles can be HLS rungs (an MP3 rung stays progressive)");
    if (cur->bandwidth_estimate == 0)
        cur->bandwidth_estimate = default_bandwidth_estimate(cur);
    if (!rate_supported(cur->codec, cur->sample_rate))
        return fail(ld, rate_mark, key_path(ld, sc->prefix, "sample_rate"), "%d Hz is not a rate %s can encode",
                    cur->sample_rate, cur->codec == TALAS_CONFIG_CODEC_MP3 ? "MP3" : "AAC");
    if (cur->codec == TALAS_CONFIG_CODEC_MP3 && cur->bitrate > 320)
        return fail(ld, &sc->seen[br - sc->table->keys].mark, key_path(ld, sc->prefix, "bitrate"),
                    "must be 8..320 for MP3");
    for (size_t i = 0; i < index; i++)
        if (strcmp(p[i].name, cur->name) == 0)
            return fail(ld, &sc->mark, key_path(ld, sc->prefix, "name"), "\"%s\" is already transcode.profiles[%zu]",
                        cur->name, i);
    return 0;
}

/* Node names go into Redis keys and metrics labels: a plain word. */
static const char *validate_node_name(char **value)
{
    size_t n = strlen(*value);

    if (n == 0 || n > 64 || strspn(*value, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != n)
        return "must be 1 to 64 characters of A-Z a-z 0-9 . _ -";
    return NULL;
}

/* "unix:/absolute/path" or "HOST:PORT" ("[::1]:6379" for IPv6). */
static const char *validate_redis_address(char **value)
{
    const char *s = *value, *colon;
    char *end;
    long port;

    if (strncmp(s, "unix:", 5) == 0)
        return s[5] == '/' ? NULL : "a unix socket must be an absolute path: unix:/path/to/redis.sock";
    colon = strrchr(s, ':');
    if (colon == NULL || colon == s || (s[0] == '[' && colon[-1] != ']'))
        return "must be unix:/path/to/redis.sock or HOST:PORT";
    errno = 0;
    port = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || errno != 0 || port < 1 || port > 65535)
        return "must be unix:/path/to/redis.sock or HOST:PORT (port 1..65535)";
    return NULL;
}

/* "45s", "1m30s"-free forms: a duration, or a percentage "30%", or a
 * fraction "0.3" of the track. */
static int parse_preview_start(const char *s, uint64_t *ms_r, int *permille_r)
{
    size_t n = strlen(s);
    char *end;
    double f;

    if (n > 1 && s[n - 1] == '%') {
        f = strtod(s, &end);
        if (end != s + n - 1 || f < 0 || f > 100)
            return -1;
        *permille_r = (int)(f * 10 + 0.5);
        return 0;
    }
    if (strchr(s, '.') != NULL) {
        f = strtod(s, &end);
        if (*end != '\0' || f < 0 || f > 1)
            return -1;
        *permille_r = (int)(f * 1000 + 0.5);
        return 0;
    }
    *permille_r = -1;
    return talas_parse_duration_ms(s, ms_r);
}

/* Where section KEY was written, or the top of the file. */
static const yaml_mark_t *section_mark(struct scope *sc, const char *key)
{
    const struct conf_key *row = find_key(sc->table, key);
    const struct seen *seen = &sc->seen[row - sc->table->keys];

    return seen->set ? &seen->mark : &sc->mark;
}

static int check_config(struct loader *ld, struct scope *sc, void *items, size_t index)
{
    struct talas_config *c = items;
    const struct conf_key *row;

    if (c->transcode_profile_count == 0) {
        /* not in the arena, never freed: the defaults are static */
        c->transcode_profiles = default_profiles;
        c->transcode_profile_count = TALAS_ARRAY_SIZE(default_profiles);
    }
    row = find_key(sc->table, "preview.start");
    if (parse_preview_start(c->preview_start, &c->preview_start_ms, &c->preview_start_permille) != 0)
        return fail(ld, sc->seen[row - sc->table->keys].set ? &sc->seen[row - sc->table->keys].mark : &sc->mark,
                    "preview.start", "must be a time (45s) or a part of the track (30%% or 0.3)");
    /* the main key exists when one of its files is given */
    if (c->auth_key.secret_file != NULL || c->auth_key.public_key_file != NULL ||
        c->auth_key.private_key_file != NULL) {
        const char *problem = key_problem(&c->auth_key);
        if (problem != NULL)
            return fail(ld, section_mark(sc, "auth"), "auth", "%s", problem);
        for (size_t i = 0; i < c->auth_key_count; i++)
            if (c->auth_key.kid != NULL && strcmp(c->auth_keys[i].kid, c->auth_key.kid) == 0)
                return fail(ld, section_mark(sc, "auth.keys"), "auth.keys", "kid \"%s\" is also auth.kid",
                            c->auth_key.kid);
    }
    if (c->auth_required && c->auth_key.secret_file == NULL && c->auth_key.public_key_file == NULL &&
        c->auth_key_count == 0)
        return fail(ld, section_mark(sc, "auth"), "auth", "required: true needs a key: secret_file, public_key_file or keys");
    if (c->auth_max_ttl_ms < c->auth_default_ttl_ms)
        return fail(ld, section_mark(sc, "auth.max_ttl"), "auth.max_ttl", "must not be shorter than auth.default_ttl");
    /* an engine named turns it on (a dump's section of nulls does not) */
    c->cluster_enabled = c->cluster_redis != NULL || c->cluster_postgres != NULL;
    if (c->cluster_enabled) {
        /* both engines or neither: the realtime plane and the records */
        if (c->cluster_redis == NULL)
            return fail(ld, section_mark(sc, "cluster"), "cluster.redis",
                        "is required in cluster mode (unix:/path/to/redis.sock or HOST:PORT)");
        if (c->cluster_postgres == NULL)
            return fail(ld, section_mark(sc, "cluster"), "cluster.postgres",
                        "is required in cluster mode (a libpq connection string)");
        if (c->cluster_node_name == NULL) {
            char host[256];
            char *name;

            if (gethostname(host, sizeof(host)) != 0)
                snprintf(host, sizeof(host), "talas");
            host[sizeof(host) - 1] = '\0';
            name = conf_printf(ld, "%.64s", host);
            /* a host name with other characters: only what is allowed */
            for (char *p = name; *p != '\0'; p++)
                if (strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-", *p) == NULL)
                    *p = '-';
            c->cluster_node_name = name;
        }
    }
    for (size_t i = 0; i < c->grpc_listen_count; i++)
        for (size_t j = 0; j < c->listen_count; j++)
            if (c->grpc_listen[i].port == c->listen[j].port && strcmp(c->grpc_listen[i].host, c->listen[j].host) == 0)
                return fail(ld, section_mark(sc, "grpc.listen"), "grpc.listen", "%s:%d is also in listen", c->listen[j].host,
                            c->listen[j].port);
    if (c->http_public_url == NULL) {
        const struct talas_config_listen *l = &c->listen[0];
        const char *host = strcmp(l->host, "0.0.0.0") == 0 ? "127.0.0.1" : strcmp(l->host, "::") == 0 ? "::1" : l->host;
        c->http_public_url = conf_printf(ld, "%s://%s%s%s:%d", l->tls_certificate ? "https" : "http",
                                              strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "",
                                              l->port);
    }
    if (c->subsonic_enabled && c->subsonic_password_key_file == NULL)
        return fail(ld, section_mark(sc, "subsonic"), "subsonic.password_key_file",
                    "is required with subsonic.enabled (openssl rand -hex 32 > FILE)");
    row = find_key(sc->table, "ws.auth_required");
    if (!sc->seen[row - sc->table->keys].set || sc->seen[row - sc->table->keys].null)
        c->ws_auth_required = c->auth_required;
    row = find_key(sc->table, "streaming.backend_reserved_sessions");
    if (!sc->seen[row - sc->table->keys].set || sc->seen[row - sc->table->keys].null)
        c->streaming_backend_reserved_sessions = c->streaming_max_sessions / 10;
    else if (c->streaming_backend_reserved_sessions >= c->streaming_max_sessions)
        /* listeners would get no session at all */
        return fail(ld, &sc->seen[row - sc->table->keys].mark, "streaming.backend_reserved_sessions",
                    "must be less than streaming.max_sessions (%d)", c->streaming_max_sessions);
    row = find_key(sc->table, "cache.max_size");
    if (c->cache_max_size == 0) {
        c->cache_max_size = UINT64_C(1) << 30;
        if (c->cache_max_size > c->storage_map_size / 2)
            c->cache_max_size = c->storage_map_size / 2;
    } else if (c->cache_max_size > c->storage_map_size / 4 * 3) {
        /* LMDB writes copy-on-write: it needs free pages beside the data */
        return fail(ld, &sc->seen[row - sc->table->keys].mark, "cache.max_size",
                    "must be at most 3/4 of storage.map_size (%llu bytes)",
                    (unsigned long long)(c->storage_map_size / 4 * 3));
    }
    row = find_key(sc->table, "storage.user_data_max");
    if (c->storage_user_data_max == 0) {
        c->storage_user_data_max = c->storage_map_size / 8;
    } else if (c->storage_user_data_max > c->storage_map_size / 4) {
        /* the catalog, the cache and playback state keep the rest */
        return fail(ld, &sc->seen[row - sc->table->keys].mark, "storage.user_data_max",
                    "must be at most 1/4 of storage.map_size (%llu bytes)",
                    (unsigned long long)(c->storage_map_size / 4));
    }
    if (c->control_socket == NULL) {
        size_t n = c->pid_file != NULL ? strlen(c->pid_file) : 0;
        if (n > 4 && strcmp(c->pid_file + n - 4, ".pid") == 0)
            c->control_socket = conf_printf(ld, "%.*s.sock", (int)(n - 4), c->pid_file);
        else if (n > 0)
            c->control_socket = conf_printf(ld, "%s.sock", c->pid_file);
        else
            c->control_socket = conf_printf(ld, "%s/talas.sock", c->storage_path);
    }
    return 0;
}

/* ---------------------------------------------------------------- loading */

static int syntax_error(struct loader *ld, yaml_parser_t *parser, const char *text, size_t len)
{
    yaml_mark_t mark = parser->problem_mark;
    const char *problem = parser->problem != NULL ? parser->problem : "cannot parse";

    switch (parser->error) {
    case YAML_MEMORY_ERROR:
        return fail(ld, NULL, "syntax error", "out of memory");
    case YAML_READER_ERROR:
        /* Reader errors (bad UTF-8, control characters) carry a byte
         * offset only. */
        mark.line = mark.column = 0;
        for (size_t i = 0; i < parser->problem_offset && i < len; i++) {
            if (text[i] == '\n') {
                mark.line++;
                mark.column = 0;
            } else {
                mark.column++;
            }
        }
        if (parser->problem_value != -1)
            return fail(ld, &mark, "syntax error", "%s (#%X)", problem, (unsigned)parser->problem_value);
        return fail(ld, &mark, "syntax error", "%s", problem);
    default:
        if (parser->context != NULL)
            return fail(ld, &mark, "syntax error", "%s (%s at %zu:%zu)", problem, parser->context,
                        parser->context_mark.line + 1, parser->context_mark.column + 1);
        return fail(ld, &mark, "syntax error", "%s", problem);
    }
}

static int load(struct loader *ld, const char *text, size_t len, struct talas_config *conf)
{
    yaml_parser_t parser;
    yaml_document_t doc, extra;
    yaml_node_t *root;
    struct scope sc = {
        .table = &config_table,
        .base = (char *)conf,
        .prefix = "",
        .seen = arena_alloc(&ld->tmp, config_table.nkeys * sizeof(struct seen)),
    };
    int rc = -1;

    if (!yaml_parser_initialize(&parser))
        return fail(ld, NULL, "syntax error", "yaml_parser_initialize() failed");
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        syntax_error(ld, &parser, text, len);
        yaml_parser_delete(&parser);
        return -1;
    }
    ld->doc = &doc;

    /* A second document would be silently ignored: say so instead. */
    if (!yaml_parser_load(&parser, &extra)) {
        syntax_error(ld, &parser, text, len);
        goto fail;
    }
    if (yaml_document_get_root_node(&extra) != NULL) {
        fail(ld, &extra.start_mark, "syntax error", "only one document is allowed");
        yaml_document_delete(&extra);
        goto fail;
    }
    yaml_document_delete(&extra);

    root = yaml_document_get_root_node(&doc);
    if (root != NULL && !is_null(root)) {
        sc.mark = root->start_mark;
        if (root->type != YAML_MAPPING_NODE) {
            fail(ld, &root->start_mark, "(document)", "must be a mapping, not %s", node_kind(root));
            goto fail;
        }
        if (read_mapping(ld, &sc, "", root) == -1)
            goto fail;
    }
    if (finalize(ld, &sc, conf, 0) == -1)
        goto fail;
    rc = 0;

fail:
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    ld->doc = NULL;
    return rc;
}

int talas_config_load_string(const char *name, const char *text, size_t len, struct talas_config **conf_r,
                             char **error_r)
{
    struct arena arena = {NULL};
    struct config_box *box;
    struct loader ld = {.name = name};
    const char *reason;

    box = arena_alloc(&arena, sizeof(*box));
    box->arena = arena;
    ld.arena = &box->arena;

    reason = resolve_path(&ld, name, &box->conf.file);
    if (reason != NULL)
        fail(&ld, NULL, name, "%s", reason);
    else
        load(&ld, text, len, &box->conf);
    arena_free(&ld.tmp);
    if (ld.error != NULL) {
        arena = box->arena;
        arena_free(&arena);
        *error_r = ld.error;
        return -1;
    }
    *conf_r = &box->conf;
    return 0;
}

int talas_config_read_file(const char *file, char **text_r, size_t *len_r, char **error_r)
{
    struct stat st;
    char *text = NULL;
    size_t len = 0;
    ssize_t n;
    int fd;

    fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        *error_r = xasprintf("%s: open() failed: %s", file, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) == -1) {
        *error_r = xasprintf("%s: fstat() failed: %s", file, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        *error_r = xasprintf("%s: not a regular file", file);
        goto fail;
    }
    if (st.st_size > CONFIG_MAX_FILE_SIZE) {
        *error_r = xasprintf("%s: larger than %d bytes", file, CONFIG_MAX_FILE_SIZE);
        goto fail;
    }
    /* One byte more than the size, to see the end even if the file grew. */
    text = xmalloc((size_t)st.st_size + 1);
    while (len < (size_t)st.st_size + 1) {
        n = read(fd, text + len, (size_t)st.st_size + 1 - len);
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1) {
            *error_r = xasprintf("%s: read() failed: %s", file, strerror(errno));
            goto fail;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len > (size_t)st.st_size) {
        *error_r = xasprintf("%s: file changed while being read", file);
        goto fail;
    }
    close(fd);
    *text_r = text;
    *len_r = len;
    return 0;

fail:
    free(text);
    close(fd);
    return -1;
}

int talas_config_load(const char *file, struct talas_config **conf_r, char **error_r)
{
    char *text;
    size_t len;
    int rc;

    if (talas_config_read_file(file, &text, &len, error_r) != 0)
        return -1;
    rc = talas_config_load_string(file, text, len, conf_r, error_r);
    free(text);
    return rc;
}

void talas_config_free(struct talas_config *conf)
{
    struct arena arena;

    if (conf == NULL)
        return;
    /* The box lives in its own arena: copy the arena out before freeing. */
    arena = ((struct config_box *)conf)->arena;
    arena_free(&arena);
}

/* ---------------------------------------------------------------- dumping */

/* A double-quoted YAML scalar, so that any string reads back the same. */
static void dump_string(FILE *fp, const char *s)
{
    if (s == NULL) {
        fputs("~", fp);
        return;
    }
    fputc('"', fp);
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\')
            fprintf(fp, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            fprintf(fp, "\\x%02x", c);
        else
            fputc(c, fp);
    }
    fputc('"', fp);
}

static void dump_table(FILE *fp, const struct conf_table *t, const char *base, int indent, int item);

static void dump_value(FILE *fp, const struct conf_key *row, const char *base, int indent)
{
    const void *field = base + row->offset;
    size_t count = 0;
    char buf[32];

    if (row->type == CONF_PATH_LIST || row->type == CONF_STRING_LIST || row->type == CONF_MAPPING_LIST)
        count = *(const size_t *)(base + row->count_offset);
    switch (row->type) {
    case CONF_SECTION:
        fputc('\n', fp);
        break;
    case CONF_INT:
        fprintf(fp, " %d\n", *(const int *)field);
        break;
    case CONF_BOOL:
        fprintf(fp, " %s\n", *(const int *)field ? "true" : "false");
        break;
    case CONF_STRING:
    case CONF_PATH:
        fputc(' ', fp);
        if (*(char *const *)field == NULL && (row->flags & CONF_OFF))
            fputs("off", fp);
        else
            dump_string(fp, *(char *const *)field);
        fputc('\n', fp);
        break;
    case CONF_SIZE:
        fprintf(fp, " %s\n", format_size(buf, sizeof(buf), *(const uint64_t *)field));
        break;
    case CONF_DURATION:
        fprintf(fp, " %s\n", format_duration(buf, sizeof(buf), *(const uint64_t *)field));
        break;
    case CONF_ENUM:
        fprintf(fp, " %s\n", enum_name(row->enums, *(const int *)field));
        break;
    case CONF_STRING_LIST:
        fputs(" [", fp);
        for (size_t i = 0; i < count; i++) {
            fputs(i == 0 ? "" : ", ", fp);
            dump_string(fp, (*(char **const *)field)[i]);
        }
        fputs("]\n", fp);
        break;
    case CONF_PATH_LIST:
        fputs(count == 0 ? " []\n" : "\n", fp);
        for (size_t i = 0; i < count; i++) {
            fprintf(fp, "%*s  - ", indent, "");
            dump_string(fp, (*(char **const *)field)[i]);
            fputc('\n', fp);
        }
        break;
    case CONF_MAPPING_LIST:
        /* an optional list that is empty was not given: "~" reads back as
         * that, where "[]" would be refused (a given list has items) */
        fputs(count == 0 ? " ~\n" : "\n", fp);
        for (size_t i = 0; i < count; i++) {
            const char *items;

            memcpy(&items, field, sizeof(items)); /* a struct pointer */
            dump_table(fp, row->items, items + i * row->items->item_size, indent + 4, 1);
        }
        break;
    }
}

/* Prints the rows of T for the struct at BASE; ITEM: as a list item, whose
 * first line starts with "- ". */
static void dump_table(FILE *fp, const struct conf_table *t, const char *base, int indent, int item)
{
    for (size_t i = 0; i < t->nkeys; i++) {
        const struct conf_key *row = &t->keys[i];
        const char *name = strrchr(row->key, '.');
        int depth = 0;

        for (const char *p = row->key; *p != '\0'; p++)
            depth += *p == '.';
        if (item && i == 0)
            fprintf(fp, "%*s- ", indent - 2, "");
        else
            fprintf(fp, "%*s", indent + 2 * depth, "");
        fprintf(fp, "%s:", name != NULL ? name + 1 : row->key);
        dump_value(fp, row, base, indent + 2 * depth);
    }
}

void talas_config_dump(const struct talas_config *conf, FILE *fp)
{
    fputs("# effective configuration of ", fp);
    fputs(conf->file, fp);
    fputc('\n', fp);
    dump_table(fp, &config_table, (const char *)conf, 0, 0);
}

/* Prints one schema row per line: "KEY\tTYPE\tDEFAULT"; keys of list
 * items read "listen[].host". */
static void schema_table(FILE *fp, const struct conf_table *t, const char *prefix)
{
    static const char *const types[] = {
        [CONF_SECTION] = "section",
        [CONF_INT] = "integer",
        [CONF_BOOL] = "bool",
        [CONF_STRING] = "string",
        [CONF_PATH] = "path",
        [CONF_SIZE] = "size",
        [CONF_DURATION] = "duration",
        [CONF_ENUM] = "enum",
        [CONF_PATH_LIST] = "path-list",
        [CONF_STRING_LIST] = "string-list",
        [CONF_MAPPING_LIST] = "mapping-list",
    };

    for (size_t i = 0; i < t->nkeys; i++) {
        const struct conf_key *row = &t->keys[i];

        fprintf(fp, "%s%s\t%s\t%s\n", prefix, row->key, types[row->type], row->def != NULL ? row->def : "-");
        if (row->type == CONF_MAPPING_LIST) {
            char *sub = xasprintf("%s%s[].", prefix, row->key);
            schema_table(fp, row->items, sub);
            free(sub);
        }
    }
}

void talas_config_schema_print(FILE *fp)
{
    schema_table(fp, &config_table, "");
}
