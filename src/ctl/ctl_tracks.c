/*
 * ctl_tracks.c - talasctl tracks: list the catalog's playable tracks (or
 * with --errors the files that failed to probe), show one track, remove
 * one from the catalog with its cached transcodes. Reads and writes the
 * storage directly.
 *
 * Entry point (talasctl.h): talasctl_cmd_tracks. Output on stdout (JSON
 * with --json); errors (no such track, damaged records) on stderr.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "ctl/talasctl.h"
#include "store/cache.h"
#include "store/catalog.h"
#include "store/peaks.h"
#include "store/storage.h"

struct tracks_state {
    int errors;
    size_t count;
    struct talas_json json;
};

static void track_json(struct talas_json *j, const struct talas_track *t)
{
    talas_json_object_begin(j);
    talas_json_key(j, "id");
    talas_json_string(j, t->id);
    talas_json_key(j, "path");
    talas_json_string(j, t->path);
    talas_json_key(j, "title");
    talas_json_string(j, t->title);
    talas_json_key(j, "artist");
    talas_json_string(j, t->artist);
    talas_json_key(j, "album");
    talas_json_string(j, t->album);
    talas_json_key(j, "duration_ms");
    talas_json_uint(j, t->duration_ms);
    talas_json_key(j, "codec");
    talas_json_string(j, t->codec);
    talas_json_key(j, "container");
    talas_json_string(j, t->container);
    talas_json_key(j, "mime");
    talas_json_string(j, t->mime);
    talas_json_key(j, "sample_rate");
    talas_json_uint(j, t->sample_rate);
    talas_json_key(j, "channels");
    talas_json_uint(j, t->channels);
    talas_json_key(j, "bit_rate");
    talas_json_uint(j, t->bit_rate);
    talas_json_key(j, "size");
    talas_json_uint(j, t->size);
    talas_json_key(j, "mtime_ns");
    talas_json_int(j, t->mtime_ns);
    talas_json_key(j, "scanned_at");
    talas_json_uint(j, t->scanned_at);
    talas_json_key(j, "error");
    if (t->error != NULL)
        talas_json_string(j, t->error);
    else
        talas_json_null(j);
    talas_track_analysis_json(j, &t->analysis);
    talas_json_key(j, "analysis_error");
    if (t->analysis.flags & TALAS_ANALYSIS_FAILED)
        talas_json_string(j, t->analysis.error);
    else
        talas_json_null(j);
    talas_json_object_end(j);
}

static int print_track(const struct talas_track *t, void *arg)
{
    struct tracks_state *s = arg;

    if ((s->errors != 0) != (t->error != NULL))
        return 0;
    if (talasctl_json)
        track_json(&s->json, t);
    else if (s->errors)
        printf("%s\t%s\t%s\n", t->id, t->path, t->error);
    else
        printf("%s\t%" PRIu64 ":%02" PRIu64 "\t%s\t%s\n", t->id, t->duration_ms / 60000,
               (t->duration_ms / 1000) % 60, t->artist, t->title);
    s->count++;
    return 0;
}

static int cmd_tracks_ls(const struct talas_config *conf, int errors)
{
    struct talas_storage *st = talasctl_open_storage(conf);
    struct tracks_state s = {errors, 0, {0}};
    struct talas_buf out = {0};
    MDB_txn *txn;
    size_t damaged = 0;
    int rc;

    if ((rc = talas_storage_read_begin(st, &txn)) != 0) {
        fprintf(stderr, "talasctl: mdb_txn_begin() failed: %s\n", mdb_strerror(rc));
        return TALASCTL_FAILURE;
    }
    talas_json_init(&s.json, &out);
    talas_json_array_begin(&s.json);
    rc = talas_catalog_foreach(st, txn, print_track, &s, &damaged);
    talas_json_array_end(&s.json);
    mdb_txn_abort(txn);
    talas_storage_close(st);
    if (rc != 0) {
        fprintf(stderr, "talasctl: reading the catalog failed: %s\n", mdb_strerror(rc));
        talas_buf_free(&out);
        return TALASCTL_FAILURE;
    }
    if (talasctl_json)
        printf("%.*s\n", (int)out.len, out.data);
    talas_buf_free(&out);
    if (damaged > 0)
        fprintf(stderr, "talasctl: %zu damaged catalog record(s) skipped; run a scan\n", damaged);
    return TALASCTL_OK;
}

/* Reads track ID into *T in TXN; on failure says why on stderr. */
static int get_track(struct talas_storage *st, MDB_txn *txn, const char *id, struct talas_track *t)
{
    int rc;

    if (!talas_track_id_valid(id, strlen(id))) {
        fprintf(stderr,
                "talasctl: no such track: \"%s\" is not a track id (16 characters of A-Z a-z 0-9 - _)\n", id);
        return -1;
    }
    rc = talas_catalog_get(st, txn, id, t);
    if (rc == MDB_NOTFOUND)
        fprintf(stderr, "talasctl: no such track: %s (talasctl tracks lists them)\n", id);
    else if (rc == -1)
        fprintf(stderr, "talasctl: the catalog record of %s is damaged; run talasctl scan\n", id);
    else if (rc != 0)
        fprintf(stderr, "talasctl: reading the catalog failed: %s\n", mdb_strerror(rc));
    return rc == 0 ? 0 : -1;
}

static int cmd_tracks_show(const struct talas_config *conf, const char *id)
{
    struct talas_storage *st = talasctl_open_storage(conf);
    struct talas_track t;
    struct talas_buf out = {0};
    struct talas_json json;
    MDB_txn *txn;
    int rc;

    if ((rc = talas_storage_read_begin(st, &txn)) != 0) {
        fprintf(stderr, "talasctl: mdb_txn_begin() failed: %s\n", mdb_strerror(rc));
        talas_storage_close(st);
        return TALASCTL_FAILURE;
    }
    rc = get_track(st, txn, id, &t);
    if (rc == 0) {
        /* the strings point into the transaction's pages: print before it ends */
        talas_json_init(&json, &out);
        track_json(&json, &t);
        talas_buf_append(&out, "", 1);
        if (talasctl_json)
            printf("%s\n", out.data);
        else
            talasctl_print_text(stdout, out.data, 0);
    }
    mdb_txn_abort(txn);
    talas_storage_close(st);
    talas_buf_free(&out);
    return rc == 0 ? TALASCTL_OK : TALASCTL_FAILURE;
}

/* Removes the catalog record and the cached transcodes of a track. The
 * file stays: a scan adds it back while it is in a library folder. */
static int cmd_tracks_rm(const struct talas_config *conf, const char *id)
{
    struct talas_storage *st = talasctl_open_storage(conf);
    struct talas_cache_purge_result res = {0};
    struct talas_track t;
    MDB_txn *txn;
    char *path = NULL;
    int rc;

    if ((rc = talas_storage_write_begin(st, &txn)) != 0) {
        fprintf(stderr, "talasctl: mdb_txn_begin() failed: %s\n", mdb_strerror(rc));
        talas_storage_close(st);
        return TALASCTL_FAILURE;
    }
    if (get_track(st, txn, id, &t) != 0) {
        mdb_txn_abort(txn);
        talas_storage_close(st);
        return TALASCTL_FAILURE;
    }
    path = xasprintf("%s", t.path);
    if ((rc = talas_catalog_del(st, txn, id)) != 0 || (rc = mdb_txn_commit(txn)) != 0) {
        if (rc != 0)
            fprintf(stderr, "talasctl: removing %s failed: %s\n", id, mdb_strerror(rc));
        talas_storage_close(st);
        free(path);
        return TALASCTL_FAILURE;
    }
    rc = talas_cache_purge(st, id, NULL, NULL, &res);
    if (rc == 0)
        rc = talas_peaks_drop(st, id, NULL); /* its waveform too */
    talas_storage_close(st);
    if (talasctl_json) {
        struct talas_buf out = {0};
        struct talas_json json;
        talas_json_init(&json, &out);
        talas_json_object_begin(&json);
        talas_json_key(&json, "removed");
        talas_json_string(&json, id);
        talas_json_key(&json, "path");
        talas_json_string(&json, path);
        talas_json_key(&json, "cache_entries");
        talas_json_uint(&json, res.entries);
        talas_json_key(&json, "cache_bytes");
        talas_json_uint(&json, res.bytes);
        talas_json_object_end(&json);
        printf("%.*s\n", (int)out.len, out.data);
        talas_buf_free(&out);
    } else {
        printf("removed %s (%s) and %" PRIu64 " cached transcodes; the file stays, and a scan adds it back "
               "while it is in a library folder\n",
               id, path, res.entries);
    }
    free(path);
    if (rc != 0) {
        fprintf(stderr, "talasctl: purging the cache of %s failed: %s\n", id, mdb_strerror(rc));
        return TALASCTL_FAILURE;
    }
    return TALASCTL_OK;
}

int talasctl_cmd_tracks(const struct talas_config *conf, char **args, int nargs, int errors)
{
    if (nargs == 0 || (nargs == 1 && strcmp(args[0], "ls") == 0))
        return cmd_tracks_ls(conf, errors);
    if (nargs == 2 && strcmp(args[0], "show") == 0 && !errors)
        return cmd_tracks_show(conf, args[1]);
    if (nargs == 2 && strcmp(args[0], "rm") == 0 && !errors)
        return cmd_tracks_rm(conf, args[1]);
    talasctl_usage(stderr, "tracks");
    return TALASCTL_USAGE;
}
