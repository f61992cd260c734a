/*
 * user_data.c - the table of kinds of user records (user_data.h): one row
 * per kind, each pointing at the functions of the module that stores it.
 *
 * Entry points: talas_user_data_kinds, talas_user_data_kind_find. Logs
 * nothing; the rows' functions write in their own short transactions.
 */
#include <string.h>

#include "core/util.h"
#include "store/play_queue.h"
#include "store/playback.h"
#include "store/playlists.h"
#include "store/sessions.h"
#include "store/stars.h"
#include "store/users.h"
#include "store/user_data.h"

static int playlists_purge(struct talas_storage *st, const char *user, uint64_t *removed_r)
{
    return talas_playlist_owner_purge(st, user, 0, removed_r);
}

static int playback_purge(struct talas_storage *st, const char *user, uint64_t *removed_r)
{
    return talas_playback_state_purge(st, user, 0, removed_r);
}

static int listening_purge(struct talas_storage *st, const char *user, uint64_t *removed_r)
{
    return talas_listen_sessions_purge(st, user, 0, removed_r);
}

static int sessions_purge(struct talas_storage *st, const char *user, uint64_t *removed_r)
{
    size_t n = 0;
    int rc = talas_session_purge_owner(st, user, &n);

    *removed_r = n;
    return rc;
}

static int settings_purge(struct talas_storage *st, const char *user, uint64_t *removed_r)
{
    uint64_t count = 0, bytes;
    MDB_txn *txn;
    int rc;

    if ((rc = talas_storage_read_begin(st, &txn)) != 0)
        return rc;
    rc = talas_user_settings_usage(st, txn, user, &count, &bytes);
    mdb_txn_abort(txn);
    if (rc != 0)
        return rc;
    *removed_r = count;
    return count == 0 ? 0 : talas_user_settings_purge(st, user);
}

const struct talas_user_data_kind talas_user_data_kinds[] = {
    {"playlists", "playlists the user owns (not those shared with them)", talas_playlist_owner_usage,
     playlists_purge, talas_playlist_foreach_owner},
    {"playback", "the user's playback state (what they play, where)", talas_playback_state_usage,
     playback_purge, talas_playback_state_foreach_user},
    {"listening", "the user's listening sessions (their history)", talas_listen_sessions_usage,
     listening_purge, talas_listen_sessions_foreach_user},
    {"sessions", "the streaming sessions the user owns (live, or expired and not yet swept)",
     talas_session_owner_usage, sessions_purge, talas_session_foreach_user},
    {"settings", "the user's settings (share_listening); purged, they return to the defaults",
     talas_user_settings_usage, settings_purge, talas_user_settings_foreach_user},
    {"stars", "the songs, albums and artists the user starred or rated (Subsonic apps)", talas_stars_usage,
     talas_stars_purge, talas_stars_foreach_user},
    {"play_queue", "the play queue the user saved (Subsonic apps)", talas_play_queue_usage,
     talas_play_queue_purge, talas_play_queue_foreach_user},
};

const size_t talas_user_data_kind_count = TALAS_ARRAY_SIZE(talas_user_data_kinds);

const struct talas_user_data_kind *talas_user_data_kind_find(const char *name)
{
    for (size_t i = 0; i < talas_user_data_kind_count; i++)
        if (strcmp(talas_user_data_kinds[i].name, name) == 0)
            return &talas_user_data_kinds[i];
    return NULL;
}
