/*
 * sessions.h - streaming sessions (the seed's StreamingSession) as LMDB
 * records, so that every worker sees every session.
 *
 * A session is created by POST /api/streaming/session, updated by the
 * player's metrics and quality changes, and ends by DELETE or by being
 * idle (not updated) for streaming.session_timeout. The records live in
 * TALAS_DBI_SESSIONS (id -> record), an index of them by owner in
 * TALAS_DBI_SESSIONS_BY_OWNER, and their running totals (created, ended,
 * expired...) in TALAS_DBI_META "sessions". Every write here is one short
 * write transaction of a few records, fit for a worker's loop; expired
 * sessions are found by a read-only scan and then deleted a few at a time
 * (talas_session_sweep).
 *
 * Creation is bounded here, in its write transaction, whoever calls it
 * (struct talas_session_limits): live sessions per owner (a user, or the
 * address of a client that named none), then the global cap, of which a
 * reserve is left to the platform's backend, so that one client cannot
 * take every slot and lock out everyone else.
 *
 * This module knows nothing of HTTP or of how a quality is chosen
 * (workers/media/adaptive.c): callers change a session inside
 * talas_session_update's transaction through a callback.
 */
#ifndef TALAS_SESSIONS_H
#define TALAS_SESSIONS_H

#include <stddef.h>
#include <stdint.h>

#include "store/quota.h"
#include "store/storage.h"

/* 16 random bytes as base64url without padding. */
#define TALAS_SESSION_ID_LEN 22
/* Profile names are at most 31 bytes (transcode.profiles). */
#define TALAS_SESSION_QUALITY_SIZE 32
#define TALAS_SESSION_CLIENT_ID_SIZE 128
/* A user id (a token's sub, 127 bytes at most) or an address as text. */
#define TALAS_SESSION_OWNER_SIZE 128

/* Whom a session counts against. The values are stored (one byte, also
 * the first of the owner index's keys): never renumber them. */
enum talas_session_owner_kind {
    TALAS_SESSION_OWNER_NONE = 0,      /* the backend for no user: counts only globally */
    TALAS_SESSION_OWNER_USER = 'u',    /* a user: a token's sub, or the user the backend named */
    TALAS_SESSION_OWNER_ADDRESS = 'a', /* a client with no user: its address ("192.0.2.7", "2001:db8::1") */
};

/* The seed's ConnectionType and DeviceType, in the seed's order. */
enum talas_connection_type {
    TALAS_CONNECTION_WIFI,
    TALAS_CONNECTION_CELLULAR_4G,
    TALAS_CONNECTION_CELLULAR_3G,
    TALAS_CONNECTION_CELLULAR_2G,
    TALAS_CONNECTION_ETHERNET,
    TALAS_CONNECTION_UNKNOWN,
};

enum talas_device_type {
    TALAS_DEVICE_DESKTOP,
    TALAS_DEVICE_MOBILE,
    TALAS_DEVICE_TABLET,
    TALAS_DEVICE_SMART_SPEAKER,
    TALAS_DEVICE_CAR_AUDIO,
    TALAS_DEVICE_UNKNOWN,
};

/* The seed's ClientCapabilities. */
struct talas_client_capabilities {
    uint32_t estimated_bandwidth_kbps;                  /* 0: not given */
    uint32_t buffer_duration_ms;                        /* 0: not given */
    uint32_t connection_type;                           /* an enum talas_connection_type */
    uint32_t device_type;                               /* an enum talas_device_type */
    uint32_t adaptive_enabled;                          /* 0 or 1 */
    char preferred_quality[TALAS_SESSION_QUALITY_SIZE]; /* "" when not given */
};

/* The seed's PerformanceMetrics: what the player last reported. Counts
 * (rebuffer_count, rebuffer_duration_ms) are the player's totals since the
 * session began; quality_switches is counted by the server. */
struct talas_performance_metrics {
    double buffer_health_percentage; /* 0..100 */
    double packet_loss_percentage;   /* 0..100 */
    uint32_t download_speed_kbps;    /* 0: not measured */
    uint32_t latency_ms;
    uint32_t rebuffer_count;
    uint32_t rebuffer_duration_ms;
    uint32_t quality_switches;
    uint32_t reports; /* metrics reports received (not a seed field) */
};

/* What the quality monitor remembers between two reports (adaptive.c). */
struct talas_quality_monitor {
    uint32_t healthy_streak;   /* consecutive reports with room for the rung above */
    uint32_t shortfall_streak; /* consecutive reports below the current rung's need */
};

/* One session: plain data, stored field by field with the record codec. */
struct talas_session {
    char session_id[TALAS_SESSION_ID_LEN + 1];
    char track_id[17];
    char client_id[TALAS_SESSION_CLIENT_ID_SIZE]; /* the token's sub or the body's client_id; may be "" */
    char current_quality[TALAS_SESSION_QUALITY_SIZE];
    struct talas_client_capabilities client_capabilities;
    struct talas_performance_metrics performance_metrics;
    struct talas_quality_monitor monitor;
    uint32_t owner_kind;                  /* an enum talas_session_owner_kind */
    char owner[TALAS_SESSION_OWNER_SIZE]; /* "" with TALAS_SESSION_OWNER_NONE */
    uint64_t created_at_ms;               /* wall clock, ms since the epoch */
    uint64_t last_updated_ms;             /* likewise; the session expires timeout after it */
};

/* Running totals since the storage was created (TALAS_DBI_META "sessions"). */
struct talas_session_counters {
    uint64_t created;
    uint64_t ended;   /* by DELETE */
    uint64_t expired; /* idle for streaming.session_timeout */
    uint64_t quality_switches;
    uint64_t rebuffers; /* rebuffer_count increases reported */
};

/* Fills ID_R with a new random id (getrandom). Returns 0 or -1 (errno). */
int talas_session_new_id(char id_r[TALAS_SESSION_ID_LEN + 1]);
/* 1 when S (LEN bytes) has the form of a session id. */
int talas_session_id_valid(const char *s, size_t len);
/* 1 when S has been idle for TIMEOUT_MS at NOW_MS. */
int talas_session_expired(const struct talas_session *s, uint64_t now_ms, uint64_t timeout_ms);

/* Appends S's record (the record codec's layout, as stored in LMDB and
 * in the cluster's Redis) to OUT. */
void talas_session_encode(const struct talas_session *s, struct talas_buf *out);
/* Decodes a record of LEN bytes into *S_R. Returns 0, or -1 for bytes of
 * another layout (S_R is zeroed). */
int talas_session_decode(const void *data, size_t len, struct talas_session *s_r);

/* Reads session ID in TXN into *S_R. Returns 0, MDB_NOTFOUND (also for a
 * record of another layout: a session of an older version is gone), or an
 * LMDB error. Expiry is the caller's to check. */
int talas_session_get(struct talas_storage *st, MDB_txn *txn, const char *id, struct talas_session *s_r);

/* The bounds of talas_session_create, from the streaming.* keys. */
struct talas_session_limits {
    size_t max_sessions;     /* streaming.max_sessions: live sessions in all */
    size_t max_per_user;     /* streaming.max_sessions_per_user; 0: none */
    size_t max_per_address;  /* streaming.max_sessions_per_address; 0: none */
    size_t backend_reserved; /* streaming.backend_reserved_sessions: the last ones of
                                max_sessions, which only the backend may take; less
                                than max_sessions */
};

/* What talas_session_create returns when the global cap refuses. */
#define TALAS_SESSION_FULL 1

/*
 * Stores new session S, counted against its owner (S->owner_kind,
 * S->owner), unless a bound of LIM refuses it. In one write transaction,
 * in this order:
 *  - the owner's live sessions (read from the owner index; expired ones
 *    are deleted there and then, and counted) must be fewer than
 *    max_per_user or max_per_address: else TALAS_QUOTA_EXCEEDED, with the
 *    key and its value in *REFUSAL_R (may be NULL);
 *  - the sessions stored must be fewer than max_sessions, or, unless
 *    BACKEND (the platform's backend key created it), fewer than
 *    max_sessions - backend_reserved: else TALAS_SESSION_FULL, after
 *    expired sessions were swept and the check made again.
 * "Live" is at NOW_MS with TIMEOUT_MS. Returns 0, TALAS_QUOTA_EXCEEDED,
 * TALAS_SESSION_FULL, or an LMDB error.
 */
int talas_session_create(struct talas_storage *st, const struct talas_session *s,
                         const struct talas_session_limits *lim, int backend, uint64_t now_ms,
                         uint64_t timeout_ms, struct talas_quota_refusal *refusal_r);

/* Changes a session inside a write transaction: FN gets the stored session
 * and a zeroed counters delta to fill; it returns 0 to store the session
 * (last_updated_ms becomes NOW_MS) and the delta, or another value to
 * abort, which talas_session_update then returns. */
typedef int talas_session_update_fn(struct talas_session *s, struct talas_session_counters *delta, void *arg);

/*
 * Applies FN to session ID. Returns 0 with the stored result in *S_R (may
 * be NULL); MDB_NOTFOUND when there is no such session, or when it had
 * expired (it is deleted then, and counted); FN's own value; or an LMDB
 * error.
 */
int talas_session_update(struct talas_storage *st, const char *id, uint64_t now_ms, uint64_t timeout_ms,
                         talas_session_update_fn *fn, void *arg, struct talas_session *s_r);

/* Ends session ID (counted as ended). Returns 0, MDB_NOTFOUND (none, or
 * expired: then counted as expired), or an LMDB error. */
int talas_session_end(struct talas_storage *st, const char *id, uint64_t now_ms, uint64_t timeout_ms);

/*
 * Deletes up to MAX sessions that have expired at NOW_MS, counting them;
 * finds them with a read-only scan, so nothing is written when none has.
 * Stores the number deleted in *EXPIRED_R (may be NULL). Returns 0 or an
 * LMDB error.
 */
int talas_session_sweep(struct talas_storage *st, uint64_t now_ms, uint64_t timeout_ms, size_t max,
                        size_t *expired_r);

/* Calls FN for every stored session in TXN (expired ones included: the
 * caller decides); FN returns 0 to go on. Returns 0, FN's value, or an
 * LMDB error. */
int talas_session_foreach(struct talas_storage *st, MDB_txn *txn,
                          int (*fn)(const struct talas_session *s, void *arg), void *arg);

/*
 * The sessions stored for USER (owner kind TALAS_SESSION_OWNER_USER) in
 * TXN, from the owner index: a short cursor range, no scan. An expired
 * session counts until it is swept. Stores the count in *N_R; returns 0 or
 * an LMDB error.
 */
int talas_session_count_by_owner(struct talas_storage *st, MDB_txn *txn, const char *user, size_t *n_r);

/*
 * Deletes every session of USER (owner kind TALAS_SESSION_OWNER_USER),
 * live or expired, counted as ended: for talasctl's purge of a user's data.
 * Works in write transactions of a few hundred sessions each. Stores the
 * number deleted in *PURGED_R (may be NULL; set also on failure, to what
 * was deleted before it). Returns 0 or an LMDB error.
 */
int talas_session_purge_owner(struct talas_storage *st, const char *user, size_t *purged_r);

/*
 * USER's sessions in TXN (owner kind TALAS_SESSION_OWNER_USER): their
 * number and the bytes of their records and index keys, for "talasctl users
 * data ls". Returns 0 or an LMDB error.
 */
int talas_session_owner_usage(struct talas_storage *st, MDB_txn *txn, const char *user, uint64_t *count_r,
                              uint64_t *bytes_r);

/* Calls FN once for each user who owns sessions (from the owner index, in
 * its order); FN returns 0 to go on. Returns 0, FN's value or an LMDB
 * error. */
typedef int talas_session_user_fn(const char *user, void *arg);
int talas_session_foreach_user(struct talas_storage *st, MDB_txn *txn, talas_session_user_fn *fn, void *arg);

/* Reads the running totals (all zero before the first session). Returns 0
 * or an LMDB error. */
int talas_session_counters_get(struct talas_storage *st, MDB_txn *txn, struct talas_session_counters *c_r);

#endif
