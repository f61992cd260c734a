/*
 * comments.h - timed comments on tracks in LMDB: the local backend of
 * workers/state/state_comments.h (the cluster one is PostgreSQL).
 *
 *   TALAS_DBI_COMMENTS        comment id -> u8 layout (1), str track,
 *                             str user, str parent ("" for a thread's
 *                             first comment), i64 at_ms, u64 created_ms,
 *                             u64 edited_ms (0: never), blob body
 *   TALAS_DBI_TRACK_COMMENTS  track id, NUL, u64be at_ms, comment id -> ""
 *
 * Threads are one level deep: a reply to a reply is stored as a reply to
 * its thread's first comment, and deleting a comment deletes its replies.
 * The body is stored byte for byte as given (the caller checked it: valid
 * UTF-8, no NUL, within comments.max_body). Logs nothing.
 */
#ifndef TALAS_COMMENTS_H
#define TALAS_COMMENTS_H

#include <stddef.h>
#include <stdint.h>
#include <lmdb.h>

#include "store/storage.h"

/* A comment id: 16 characters of base64url, random. */
#define TALAS_COMMENT_ID_LEN 16
/* Most comments a track's listing reads (each version's). */
#define TALAS_COMMENT_LIST_MAX 10000

/* Besides 0 and LMDB errors; far from both LMDB's codes and errno values. */
#define TALAS_COMMENT_NO_PARENT (-40201)        /* add: parent_id names no comment */
#define TALAS_COMMENT_PARENT_ELSEWHERE (-40202) /* add: the parent is on another track */
#define TALAS_COMMENT_FORBIDDEN (-40203)        /* edit, delete: another user's comment */
#define TALAS_COMMENT_DAMAGED (-40204)          /* the stored record is of no known shape */
#define TALAS_COMMENT_TRACK_FULL (-40205)       /* add: the track has comments.max_per_track */

/* The reasons, the same from both stores. */
extern const char talas_comment_no_parent[];
extern const char talas_comment_parent_elsewhere[];
extern const char talas_comment_forbidden[];
extern const char talas_comment_no_such[];

struct talas_comment {
    char id[TALAS_COMMENT_ID_LEN + 1];
    const char *track, *user, *parent; /* parent: "" for none */
    int64_t at_ms;
    uint64_t created_ms, edited_ms;
    const char *body;
    size_t body_len;
};

/* A fresh random comment id. */
void talas_comment_id_make(char id_r[TALAS_COMMENT_ID_LEN + 1]);

/* Adds C (its parent replaced by the thread's first comment when it is a
 * reply) unless its track already holds MAX comments (replies count);
 * PARENT_R (TALAS_COMMENT_ID_LEN + 1, may be NULL) gets the parent stored.
 * Its creation time is C's, or just after the latest of the track's other
 * comments when that is not earlier (comments stamped in one millisecond
 * by two workers keep the order they were stored in); *CREATED_R (may be
 * NULL) gets the time stored.
 * 0, TALAS_COMMENT_NO_PARENT, _PARENT_ELSEWHERE, _TRACK_FULL or an LMDB
 * error; one short write transaction, in which the count is taken (LMDB
 * has one writer: the cap holds exactly, across workers). */
int talas_comment_add(struct talas_storage *st, const struct talas_comment *c, size_t max, char *parent_r,
                      uint64_t *created_r);

/* Changes the body of comment ID, as USER (NULL: the backend, anyone's).
 * On 0, *OUT (strings in a malloc'd block *mem_r, the caller frees) is the
 * comment as stored now. MDB_NOTFOUND, TALAS_COMMENT_FORBIDDEN,
 * _DAMAGED or an LMDB error. Delete does the same and removes it with its
 * replies; *OUT is the comment as it was. */
int talas_comment_edit(struct talas_storage *st, const char *id, const char *user, const char *body,
                       size_t body_len, uint64_t now_ms, struct talas_comment *out, void **mem_r);
int talas_comment_delete(struct talas_storage *st, const char *id, const char *user, struct talas_comment *out,
                         void **mem_r);

/* Calls FN for each comment on TRACK by at_ms (strings point into the
 * map: valid during the call). Stops after MAX. 0 or an LMDB error. */
typedef void talas_comment_fn(const struct talas_comment *c, void *arg);
int talas_comment_list(struct talas_storage *st, MDB_txn *txn, const char *track, size_t max,
                       talas_comment_fn *fn, void *arg);

#endif
