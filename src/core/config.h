/*
 * config.h - talas.yaml: the schema, the parsed configuration and its loader.
 *
 * Every key is a row of the schema table in config.c (key, type, range,
 * default). Unknown keys, wrong types and out-of-range values are errors
 * that read "FILE:LINE:COL: key: reason". Fields start unset; a finalize
 * step fills defaults and runs the cross-field checks.
 *
 * A struct talas_config and everything it points to live in one arena owned
 * by the config: talas_config_free() releases all of it. A reload builds a
 * new config and frees the old one only after the swap (nginx
 * ngx_init_cycle). The config is plain data: the master builds it before
 * fork and each worker reads its inherited copy.
 *
 * Relative paths in the file are resolved against the working directory of
 * the process that loads it, and stored absolute, so that a daemon that
 * chdir()s to / keeps finding its files.
 */
#ifndef TALAS_CONFIG_H
#define TALAS_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum talas_access_log_format { TALAS_ACCESS_LOG_COMBINED, TALAS_ACCESS_LOG_JSON };
enum talas_config_codec { TALAS_CONFIG_CODEC_MP3, TALAS_CONFIG_CODEC_AAC };
enum talas_config_jwt_alg {
    TALAS_JWT_HS256,
    TALAS_JWT_HS384,
    TALAS_JWT_HS512,
    TALAS_JWT_RS256,
    TALAS_JWT_ES256,
};

/* A token key: the main one (auth.*) or one of auth.keys (rotation). Keys
 * are read from files only, never written inline in the configuration. */
struct talas_config_key {
    char *kid;              /* the JWT header "kid" that selects it; NULL for the main key alone */
    int algorithm;          /* an enum talas_config_jwt_alg, the only one accepted with this key */
    char *secret_file;      /* HS*: the shared secret (file contents, trailing newline dropped) */
    char *public_key_file;  /* RS256/ES256: PEM public key, verifies */
    char *private_key_file; /* RS256/ES256: PEM private key, signs (needed to mint URLs) */
};

/* One transcoding profile (transcode.profiles item). */
struct talas_config_profile {
    char *name;      /* [a-z0-9_-], 1..31 chars, unique; required */
    int codec;       /* an enum talas_config_codec: mp3 | aac; required */
    int bitrate;     /* kbit/s, 8..320 (MP3) or 8..512 (AAC); required */
    int sample_rate; /* Hz, one the codec supports; default 44100 */
    int channels;    /* 1..2, default 2 */
    int hls;         /* offered in HLS ladders; default: true for AAC, false for MP3 */
    int bandwidth_estimate; /* kbit/s a client needs to play it (streaming sessions); default: the
                               default ladder's figure for its rungs (config.c), else bitrate * 5/4 */
};

struct talas_config_listen {
    char *host;            /* "127.0.0.1", "::1", "0.0.0.0"; default "0.0.0.0" */
    int port;              /* 1..65535, required */
    char *tls_certificate; /* PEM file, NULL for cleartext */
    char *tls_key;         /* PEM file, set iff tls_certificate is */
};

/* One entry of library.paths: a folder and the name its track ids are
 * made from (store/catalog.h), so that two nodes that mount one library at
 * different places give its tracks the same ids. */
struct talas_config_library {
    char *path; /* path: the folder, made absolute (symlinks resolved when it exists) */
    char *name; /* name: default the base name of path; unique among the entries */
};

struct talas_config {
    char *file; /* the file this was loaded from, absolute */

    struct talas_config_listen *listen; /* listen: (at least one) */
    size_t listen_count;
    int workers;    /* workers: 1..256, default: number of CPUs */
    int daemonize;  /* daemonize: bool, default false */
    char *pid_file; /* pid_file: default NULL (none) */
    char *user;     /* user: drop privileges to this user after binding, default NULL */
    char *group;    /* group: the group to switch to with user, default the user's login group */
    uint64_t shutdown_timeout_ms; /* shutdown_timeout: duration, default 30s */

    struct talas_config_library *library_paths; /* library.paths: (at least one) a PATH or {path, name} */
    size_t library_path_count;
    char **library_extensions; /* library.extensions: file name endings that are scanned,
                                  default the audio formats libavformat reads */
    size_t library_extension_count;

    char *storage_path;        /* storage.path: the LMDB environment directory (required) */
    uint64_t storage_map_size; /* storage.map_size: bytes, 1MiB..1TiB, default 4GiB */
    uint64_t storage_user_data_max; /* storage.user_data_max: bytes that user-created records may take
                                       (store/quota.h), at most 1/4 of the map, default 1/8 */

    int auth_required; /* auth.required: bool, default false */
    struct talas_config_key auth_key; /* auth.algorithm (default HS256), auth.kid, auth.secret_file,
                                         auth.public_key_file, auth.private_key_file; no file: no main key */
    struct talas_config_key *auth_keys; /* auth.keys: more keys, each with its kid (rotation) */
    size_t auth_key_count;
    char *auth_backend_key_file; /* auth.backend_key_file: the platform backend's API key */
    uint64_t auth_leeway_ms;     /* auth.leeway: clock skew allowed on exp/nbf, 0..5m, default 30s */
    char *auth_issuer;           /* auth.issuer: iss required in tokens and written in minted ones */
    char *auth_audience;         /* auth.audience: aud, likewise */
    uint64_t auth_default_ttl_ms; /* auth.default_ttl: minted URLs' lifetime, 1s..1d, default 5m */
    uint64_t auth_max_ttl_ms;     /* auth.max_ttl: the longest lifetime a caller may ask, default 1d */

    /* cluster: several nodes sharing one realtime plane (Redis) and one
     * record store (PostgreSQL); off when the section is not given */
    int cluster_enabled;           /* cluster.redis or cluster.postgres was given */
    char *cluster_node_name;       /* cluster.node_name: [A-Za-z0-9._-], 1..64; default the host name */
    char *cluster_redis;           /* cluster.redis: "unix:/path/to/redis.sock" or "HOST:PORT" */
    char *cluster_redis_password_file; /* cluster.redis_password_file: Redis AUTH password, first line */
    char *cluster_postgres;        /* cluster.postgres: a libpq connection string */
    char *cluster_postgres_password_file; /* cluster.postgres_password_file: its password, first line */

    /* grpc.listen: where GetStreamURL is served (none by default) */
    struct talas_config_listen *grpc_listen;
    size_t grpc_listen_count;

    /* transcode.profiles: list; default the seeds' ladder plus "mp3": high
     * AAC 320k 44.1 kHz, medium AAC 192k 44.1 kHz, low MP3 128k 22.05 kHz,
     * mobile AAC 96k 22.05 kHz, mp3 MP3 192k 44.1 kHz (all stereo) */
    struct talas_config_profile *transcode_profiles;
    size_t transcode_profile_count;
    int transcode_threads; /* transcode.threads: encoder threads per worker, 1..64, default 1 */
    int transcode_max_concurrent_per_worker; /* transcode.max_concurrent_per_worker: responses of one
                                                worker that encode, 1..100000, default 64 */
    int transcode_max_concurrent; /* transcode.max_concurrent: the same over all workers, 0 (no global
                                     limit)..1000000, default 256 */

    uint64_t hls_segment_duration_ms; /* hls.segment_duration: 1s..10s, default 6s: AAC chunks and HLS segments */

    uint64_t preview_duration_ms; /* preview.duration: 1s..10m, default 30s */
    char *preview_start;          /* preview.start: "45s" (time) or "30%" (of the track); default "30%" */
    uint64_t preview_start_ms;    /* ... parsed: when preview_start_permille is -1 */
    int preview_start_permille;   /* ... parsed: 0..1000, or -1 for a time */

    uint64_t streaming_session_timeout_ms;   /* streaming.session_timeout: idle sessions end, 1s..1d,
                                                default 10m */
    int streaming_max_sessions;              /* streaming.max_sessions: live sessions, 1..1000000,
                                                default 10000 */
    int streaming_max_sessions_per_user;     /* streaming.max_sessions_per_user: live sessions of one
                                                user, 0 (none)..1000000, default 20 */
    int streaming_max_sessions_per_address;  /* streaming.max_sessions_per_address: live sessions of
                                                one address with no user, 0 (none)..1000000,
                                                default 50 */
    int streaming_backend_reserved_sessions; /* streaming.backend_reserved_sessions: of max_sessions,
                                                what only the backend key may take; less than
                                                max_sessions, default max_sessions / 10 */

    /* playlists: what users may store (store/playlists.h) */
    int playlists_max_per_user; /* playlists.max_per_user: playlists one user owns, 1..1000000,
                                   default 200 */
    int playlists_max_tracks;   /* playlists.max_tracks: tracks in one playlist, 1..100000, default 10000 */
    int playlists_max_total;    /* playlists.max_total: playlists of all users, 1..100000000,
                                   default 100000 */
    int playlists_max_editors;  /* playlists.max_editors: users one playlist is shared with,
                                   0..10000, default 100 */
    int comments_max_body;      /* comments.max_body: bytes of one timed comment, 1..16384, default 2000 */
    int comments_max_per_track; /* comments.max_per_track: comments (replies too) on one track,
                                   1..10000, default 10000 */
    /* listening rooms (store/rooms.h) */
    uint64_t rooms_idle_timeout_ms; /* rooms.idle_timeout: how long a room without members lives,
                                       1s..7d, default 600 s */
    int rooms_max_members;          /* rooms.max_members: members of one room, 1..100000, default 1000 */
    int rooms_max_queue;            /* rooms.max_queue: entries of one room's queue, 1..10000, default 500 */
    int rooms_max_per_user;         /* rooms.max_per_user: rooms one user hosts at once, 1..1000, default 5 */
    uint64_t rooms_invite_ttl_ms;   /* rooms.invite_ttl: lifetime of an invite token, 1m..365d,
                                       default 7 days */

    uint64_t cache_max_size; /* cache.max_size: bytes of transcodes kept, 1MiB.., at most 3/4 of
                                storage.map_size; default 1GiB or 1/2 of map_size if smaller */

    char *log_error;    /* log.error: path, or "stderr" (default) */
    char *log_access;   /* log.access: path, "stderr", or "off"; NULL (off) by default */
    enum talas_access_log_format log_access_format; /* log.access_format: combined|json */
    int log_level;      /* log.level: an enum talas_log_level, default info */

    uint64_t http_request_timeout_ms;    /* http.request_timeout: default 10s; to receive a request's
                                            headers, and the idle time of a keep-alive
                                            HTTP/1.1 connection (one timer in h2o 2.2.5) */
    uint64_t http_max_request_body;      /* http.max_request_body: default 1MiB */
    uint64_t http_max_header_size;       /* http.max_header_size: request line and headers,
                                            1KiB..256KiB, default 32KiB */
    char *http_www_root;                 /* http.www_root: static files at /, default NULL */
    char *http_public_url; /* http.public_url: base of the URLs Talas hands out ("https://host");
                              default http://HOST:PORT of the first listen entry */
    int http_max_connections;        /* http.max_connections: per worker, 1..1000000, default 4096 */
    int http_max_connections_per_ip; /* http.max_connections_per_ip: per worker and client address,
                                        0 (no limit)..1000000, default 256 */
    uint64_t http2_idle_timeout_ms;      /* http2.idle_timeout: default 10s */
    int http2_max_concurrent_streams;    /* http2.max_concurrent_streams: default 100 */
    int http2_max_streams_per_second;    /* http2.max_streams_per_second: requests one connection may
                                            open in a second, 0 (no limit)..1000000, default 1000 */
    int http2_max_resets_per_second;     /* http2.max_resets_per_second: requests one connection may
                                            cancel in a second, 0 (no limit)..1000000, default 100 */

    /* ws: the realtime channel at /api/ws */
    int ws_auth_required;           /* ws.auth_required: bool, default auth.required */
    int ws_max_connections;         /* ws.max_connections: per worker, 1..1000000, default 10000 */
    uint64_t ws_max_message_size;   /* ws.max_message_size: bytes of one client message, default 64KiB */
    uint64_t ws_max_send_queue;     /* ws.max_send_queue: bytes queued to one client, default 1MiB */
    uint64_t ws_idle_timeout_ms;    /* ws.idle_timeout: no frame from the client, default 5m */
    uint64_t ws_ping_interval_ms;   /* ws.ping_interval: keepalive pings, default 30s */
    uint64_t ws_live_stats_interval_ms; /* ws.live_stats_interval: LiveStats period, default 10s */
    int ws_rate_limit;              /* ws.rate_limit: commands per window, default 100 */
    uint64_t ws_rate_limit_window_ms; /* ws.rate_limit_window: default 10s */
    int ws_max_connections_per_user;    /* ws.max_connections_per_user: per worker and user (ws.auth_required),
                                           0 (no limit)..1000000, default 16 */
    int ws_max_connections_per_address; /* ws.max_connections_per_address: per worker and client address
                                           (ws.auth_required false), 0 (no limit)..1000000, default 64 */
    int ws_user_rate_limit;             /* ws.user_rate_limit: commands per ws.rate_limit_window of one user
                                           (or address) on one worker, 0 (no limit)..1000000, default 300 */

    /* analysis: loudness and tempo measured by the scanner (scan/analysis.c) */
    int analysis_loudness;                   /* analysis.loudness: EBU R128, default true */
    int analysis_tempo;                      /* analysis.tempo: BPM, default true */
    uint64_t analysis_tempo_max_duration_ms; /* analysis.tempo_max_duration: tempo only for tracks
                                                shorter than this, 0..24h, default 300s */
    /* subsonic: the Subsonic API at /rest/ (workers/subsonic/http_subsonic.c) */
    int subsonic_enabled;              /* subsonic.enabled: bool, default false (a 404 like any unknown path) */
    char *subsonic_password_key_file;  /* subsonic.password_key_file: seals the accounts' passwords
                                          (store/accounts.h); required when enabled */
    int subsonic_max_failed_logins;    /* subsonic.max_failed_logins: per worker, client address and user
                                          name in one window, 0 (no limit)..1000000, default 10 */
    uint64_t subsonic_failed_login_window_ms; /* subsonic.failed_login_window: 1s..1d, default 5m */

    /* metrics: GET /metrics (workers/http/http_metrics.c) */
    int metrics_enabled;       /* metrics.enabled: default true; false: a 404 like any unknown path */
    char **metrics_allow;      /* metrics.allow: addresses or networks (core/cidr.h) that may scrape,
                                  default 127.0.0.0/8 and ::1; others get 403 */
    size_t metrics_allow_count;

    /* control: the master's control socket (talasctl; master_ctl.c) */
    char *control_socket; /* control.socket: default pid_file with .sock for .pid, else
                             storage.path/talas.sock; never NULL once loaded */
    char *control_group;  /* control.group: group of the socket (mode 0660), default the master's */
};

/*
 * Reads and validates FILE. On success returns 0 and stores a new config in
 * *conf_r (free it with talas_config_free). On failure returns -1 and stores
 * in *error_r a malloc'd message "FILE:LINE:COL: key: reason" (the caller
 * frees it); nothing else is allocated.
 */
int talas_config_load(const char *file, struct talas_config **conf_r, char **error_r);
/* Reads FILE whole (a regular file of at most the configuration's size
 * limit, unchanged while read) into a new buffer *text_r of *len_r bytes,
 * owned by the caller; 0, or -1 with *error_r set. talas-master keeps the
 * text it validated for its workers. */
int talas_config_read_file(const char *file, char **text_r, size_t *len_r, char **error_r);

/* Same as talas_config_load, on an in-memory document; NAME stands for the
 * file name in messages and relative paths resolve against the cwd. */
int talas_config_load_string(const char *name, const char *text, size_t len, struct talas_config **conf_r,
                             char **error_r);

void talas_config_free(struct talas_config *conf);

/* The default ladder's profile NAME ("high", "medium", "low", "mobile",
 * "mp3"), or NULL: the one definition of the ladder, which
 * transcode.profiles is when the file gives none. Static data. */
const struct talas_config_profile *talas_config_default_profile(const char *name);

/* Writes the effective configuration, defaults included, as YAML to FP
 * (for "talas-master -T"-style dumps and for tests). */
void talas_config_dump(const struct talas_config *conf, FILE *fp);

/* Writes every key of the schema, one a line: "KEY<TAB>TYPE<TAB>DEFAULT"
 * ("-" when none); keys inside list items read "listen[].host". For
 * "talasctl check-config --keys" and the test that holds talas.yaml(5) to
 * the schema. */
void talas_config_schema_print(FILE *fp);

#endif
