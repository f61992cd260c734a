/*
 * ctl_shares.c - talasctl shares: the private links (store/shares.h),
 * read from the storage, and their revocation.
 *
 * Entry point (talasctl.h): talasctl_cmd_shares. "ls" prints one
 * tab-separated line a link (id, track or song, owner, expiry,
 * permissions, plays, listeners, listening seconds) or, with --json, one
 * JSON document; "rm ID" deletes the link (one short write transaction):
 * the workers refuse its next request, since every media request with a
 * share token reads the link again.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/json.h"
#include "ctl/talasctl.h"
#include "store/shares.h"
#include "store/storage.h"

struct ls_state {
    struct talas_json json;
    uint64_t now_ms;
};

static int each_share(const struct talas_share *s, void *arg)
{
    struct ls_state *st = arg;
    char perms[32], expires[32];

    talas_share_permissions_text(s->permissions, perms);
    talas_token_format_time((time_t)(s->expires_ms / 1000), expires);
    if (!talasctl_json) {
        printf("%s\t%s %s\t%s\t%s%s\t%s\t%" PRIu64 " plays\t%" PRIu64 " listeners\t%" PRIu64 " s\n", s->id,
               s->track[0] ? "track" : "song", s->track[0] ? s->track : s->song, s->owner[0] ? s->owner : "-",
               expires, st->now_ms >= s->expires_ms ? " (expired)" : "", perms, s->plays, s->listeners,
               s->listening_ms / 1000);
        return 0;
    }
    talas_json_object_begin(&st->json);
    talas_json_key(&st->json, "id");
    talas_json_string(&st->json, s->id);
    talas_json_key(&st->json, "track_id");
    talas_json_string(&st->json, s->track[0] ? s->track : NULL);
    talas_json_key(&st->json, "song_id");
    talas_json_string(&st->json, s->song[0] ? s->song : NULL);
    talas_json_key(&st->json, "owner");
    talas_json_string(&st->json, s->owner[0] ? s->owner : NULL);
    talas_json_key(&st->json, "expires_at");
    talas_json_uint(&st->json, s->expires_ms / 1000);
    talas_json_key(&st->json, "expired");
    talas_json_bool(&st->json, st->now_ms >= s->expires_ms);
    talas_json_key(&st->json, "permissions");
    talas_json_string(&st->json, perms);
    talas_json_key(&st->json, "password");
    talas_json_bool(&st->json, s->password_hash[0] != '\0');
    talas_json_key(&st->json, "max_listeners");
    talas_json_uint(&st->json, s->max_listeners);
    talas_json_key(&st->json, "plays");
    talas_json_uint(&st->json, s->plays);
    talas_json_key(&st->json, "listeners");
    talas_json_uint(&st->json, s->listeners);
    talas_json_key(&st->json, "listening_ms");
    talas_json_uint(&st->json, s->listening_ms);
    talas_json_object_end(&st->json);
    return 0;
}

static int ls(const struct talas_config *conf)
{
    struct talas_storage *st = talasctl_open_storage(conf);
    struct talas_buf out = {0};
    struct ls_state ls = {.now_ms = talas_wall_ms()};
    MDB_txn *txn;
    int rc;

    if ((rc = talas_storage_read_begin(st, &txn)) != 0) {
        fprintf(stderr, "talasctl: shares: mdb_txn_begin() failed: %s\n", mdb_strerror(rc));
        talas_storage_close(st);
        return TALASCTL_FAILURE;
    }
    talas_json_init(&ls.json, &out);
    talas_json_object_begin(&ls.json);
    talas_json_key(&ls.json, "shares");
    talas_json_array_begin(&ls.json);
    rc = talas_share_list(st, txn, NULL, each_share, &ls);
    talas_json_array_end(&ls.json);
    talas_json_object_end(&ls.json);
    mdb_txn_abort(txn);
    talas_storage_close(st);
    if (rc != 0) {
        fprintf(stderr, "talasctl: shares: listing failed: %s\n", mdb_strerror(rc));
        talas_buf_free(&out);
        return TALASCTL_FAILURE;
    }
    if (talasctl_json)
        printf("%.*s\n", (int)out.len, out.data);
    talas_buf_free(&out);
    return TALASCTL_OK;
}

static int rm(const struct talas_config *conf, const char *id)
{
    struct talas_storage *st = talasctl_open_storage(conf);
    int rc = talas_share_delete(st, id, NULL);

    talas_storage_close(st);
    if (rc == MDB_NOTFOUND) {
        fprintf(stderr, "talasctl: shares rm: no such link: %s\n", id);
        return TALASCTL_FAILURE;
    }
    if (rc != 0) {
        fprintf(stderr, "talasctl: shares rm: %s\n", mdb_strerror(rc));
        return TALASCTL_FAILURE;
    }
    if (talasctl_json)
        printf("{\"id\":\"%s\",\"revoked\":true}\n", id);
    else
        printf("revoked %s\n", id);
    return TALASCTL_OK;
}

int talasctl_cmd_shares(const struct talas_config *conf, char **args, int nargs)
{
    if (nargs == 0 || (nargs == 1 && strcmp(args[0], "ls") == 0))
        return ls(conf);
    if (nargs == 2 && strcmp(args[0], "rm") == 0)
        return rm(conf, args[1]);
    talasctl_usage(stderr, "shares");
    return TALASCTL_USAGE;
}
