/*
 * transcode_limit.c - slots for responses that encode (see
 * transcode_limit.h).
 *
 * Entry points: talas_transcode_limit_init, talas_transcode_slot_take,
 * talas_transcode_slots, talas_transcode_limit_stop.
 *
 * Record: TALAS_DBI_META "transcodes.active.PID" (PID in decimal) -> u64
 * slots held, u64 the process's start time (field 22 of /proc/PID/stat),
 * both little-endian. The write transactions are as short as the claims of
 * transcode_jobs.c: a cursor over a handful of records and one put.
 *
 * Logs: refusals (warn, at most every 10 seconds, with a count), a storage
 * that cannot be written (warn, at most every 10 seconds; meanwhile only
 * the worker's limit applies).
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http/http_response.h"
#include "core/log.h"
#include "core/record.h"
#include "media/transcode_limit.h"
#include "core/util.h"

#define RECORD_PREFIX "transcodes.active."
#define REFUSAL_LOG_INTERVAL_MS 10000

static struct {
    struct talas_storage *st;
    const struct talas_config *conf;
    size_t slots;
    pid_t pid;
    uint64_t start_time;
    char key[sizeof(RECORD_PREFIX) + 24];
    uint64_t refusal_logged_ms, error_logged_ms;
    size_t refused;
} t;

/* The start time of process PID in clock ticks since boot, 0 when it is
 * gone (or /proc cannot tell). */
static uint64_t process_start_time(pid_t pid)
{
    char path[64], buf[1024], *p;
    unsigned long long v = 0;
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    if ((f = fopen(path, "re")) == NULL)
        return 0;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* the command name may hold spaces and parentheses: count from the last ')' */
    if ((p = strrchr(buf, ')')) == NULL)
        return 0;
    /* fields 3.. follow, one space before each: the 20th space is field
     * 22's (field 21, itrealvalue, is always 0) */
    for (int field = 3; field <= 22 && p != NULL; field++)
        p = strchr(p + 1, ' ');
    if (p == NULL || sscanf(p + 1, "%llu", &v) != 1)
        return 0;
    return v;
}

/* Whether the record KEY/VAL belongs to a live process other than us; sets
 * *slots_r to its count. */
static int live_other(const MDB_val *key, const MDB_val *val, uint64_t *slots_r)
{
    char digits[24];
    size_t n = key->mv_size - (sizeof(RECORD_PREFIX) - 1);
    struct talas_record_reader r;
    uint64_t slots, start_time;
    char *end;
    long pid;

    *slots_r = 0;
    talas_record_reader_init(&r, val->mv_data, val->mv_size);
    slots = talas_record_get_u64(&r);
    start_time = talas_record_get_u64(&r);
    if (n == 0 || n >= sizeof(digits) || talas_record_reader_ok(&r) != 0)
        return 0;
    memcpy(digits, (const char *)key->mv_data + sizeof(RECORD_PREFIX) - 1, n);
    digits[n] = '\0';
    pid = strtol(digits, &end, 10);
    if (*end != '\0' || pid <= 0 || pid == (long)t.pid)
        return 0;
    if (process_start_time((pid_t)pid) != start_time)
        return 0;
    *slots_r = slots;
    return 1;
}

static void warn_unenforced(int rc)
{
    uint64_t now = talas_now_ms();

    if (now - t.error_logged_ms < REFUSAL_LOG_INTERVAL_MS)
        return;
    log_warn("the transcode count in the storage cannot be updated (%s): transcode.max_concurrent is not "
             "enforced meanwhile",
             mdb_strerror(rc));
    t.error_logged_ms = now;
}

/*
 * In one write transaction: sums the slots of the other live workers
 * (deleting the records of dead ones), and when CHECK, returns 1 without
 * writing if one more slot would pass transcode.max_concurrent; otherwise
 * writes SLOTS as this worker's count and returns 0. -1 on an LMDB error.
 */
static int update(size_t slots, int check)
{
    MDB_dbi dbi = talas_storage_dbi(t.st, TALAS_DBI_META);
    MDB_val key = {sizeof(RECORD_PREFIX) - 1, RECORD_PREFIX}, val;
    unsigned char rec[16];
    uint64_t others = 0, n;
    MDB_cursor *cur;
    MDB_txn *txn;
    int rc;

    if ((rc = talas_storage_write_begin(t.st, &txn)) != 0) {
        warn_unenforced(rc);
        return -1;
    }
    if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0)
        goto fail;
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        if (key.mv_size < sizeof(RECORD_PREFIX) - 1 ||
            memcmp(key.mv_data, RECORD_PREFIX, sizeof(RECORD_PREFIX) - 1) != 0)
            break;
        if (key.mv_size == strlen(t.key) && memcmp(key.mv_data, t.key, key.mv_size) == 0)
            continue;
        if (live_other(&key, &val, &n))
            others += n;
        else if ((rc = mdb_cursor_del(cur, 0)) != 0)
            break;
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND)
        goto fail;
    if (check && t.conf->transcode_max_concurrent > 0 &&
        others + slots > (uint64_t)t.conf->transcode_max_concurrent) {
        mdb_txn_abort(txn);
        return 1;
    }
    key.mv_data = t.key;
    key.mv_size = strlen(t.key);
    if (slots == 0) {
        rc = mdb_del(txn, dbi, &key, NULL);
        if (rc == MDB_NOTFOUND)
            rc = 0;
    } else {
        struct talas_record_writer w;

        talas_record_writer_mem(&w, rec, sizeof(rec));
        talas_record_put_u64(&w, slots);
        talas_record_put_u64(&w, t.start_time);
        val.mv_data = rec;
        val.mv_size = w.len;
        rc = mdb_put(txn, dbi, &key, &val, 0);
    }
    if (rc != 0)
        goto fail;
    return mdb_txn_commit(txn) == 0 ? 0 : -1;
fail:
    mdb_txn_abort(txn);
    warn_unenforced(rc);
    return -1;
}

void talas_transcode_limit_init(const struct talas_worker_ctx *ctx)
{
    memset(&t, 0, sizeof(t));
    t.st = ctx->storage;
    t.conf = ctx->conf;
    t.pid = getpid();
    t.start_time = process_start_time(t.pid);
    snprintf(t.key, sizeof(t.key), RECORD_PREFIX "%ld", (long)t.pid);
    update(0, 0);
}

void talas_transcode_limit_stop(void)
{
    if (t.st != NULL)
        update(0, 0);
}

size_t talas_transcode_slots(void)
{
    return t.slots;
}

static void on_slot_dispose(void *p)
{
    t.slots--;
    if (t.conf->transcode_max_concurrent > 0)
        update(t.slots, 0);
}

static void refuse(h2o_req_t *req, const char *key, int limit)
{
    uint64_t now = talas_now_ms();
    char retry[16];
    int n;

    t.refused++;
    if (now - t.refusal_logged_ms >= REFUSAL_LOG_INTERVAL_MS) {
        log_warn("transcodes refused: %zu at %s (%d)", t.refused, key, limit);
        t.refusal_logged_ms = now;
        t.refused = 0;
    }
    /* whatever the handler prepared (ETag, media Cache-Control) is not this
     * response's */
    memset(&req->res.headers, 0, sizeof(req->res.headers));
    n = snprintf(retry, sizeof(retry), "%d", TALAS_TRANSCODE_RETRY_AFTER);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL,
                   h2o_strdup(&req->pool, retry, (size_t)n).base, (size_t)n);
    talas_http_send_error(req, 503, "transcode_busy",
                          "too many transcodes in progress (%s: %d); cached audio is still served, "
                          "retry in %d s",
                          key, limit, TALAS_TRANSCODE_RETRY_AFTER);
}

int talas_transcode_slot_take(h2o_req_t *req)
{
    if (t.slots >= (size_t)t.conf->transcode_max_concurrent_per_worker) {
        refuse(req, "transcode.max_concurrent_per_worker", t.conf->transcode_max_concurrent_per_worker);
        return -1;
    }
    if (t.conf->transcode_max_concurrent > 0 && update(t.slots + 1, 1) == 1) {
        refuse(req, "transcode.max_concurrent", t.conf->transcode_max_concurrent);
        return -1;
    }
    t.slots++;
    h2o_mem_alloc_shared(&req->pool, 1, on_slot_dispose);
    return 0;
}
