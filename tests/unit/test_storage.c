/*
 * test_storage.c - unit tests of storage.c's guard and read-only checks.
 *
 * The guard the master relies on: after talas_storage_forbid_writes(),
 * talas_storage_open() and talas_storage_write_begin() abort the process
 * (SIGABRT, seen from the parent of a forked child), before touching the
 * file system; reads still work, and talas_storage_allow_writes() lifts
 * the guard (the master's scanner child). talas_storage_reader_check()
 * clears the reader slot of a process that died inside a read transaction,
 * under the guard, and talas_storage_check() creates the directory but not
 * the environment. quota.c's user-data budget grows with the user-created
 * databases only and refuses at its bound, naming it; a full map is logged
 * once per interval, not once per failed write.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/util.h"
#include "core/log.h"
#include "store/quota.h"
#include "store/storage.h"
#include "tmpdir.h"

#define MAP_SIZE (16u << 20)

/* Runs FN(ARG) in a child; returns its wait status. The child exits 0
 * when FN returns, and dumps no core when it aborts. */
static int in_child(void (*fn)(const char *), const char *arg)
{
    struct rlimit none = {0, 0};
    int status;
    pid_t pid = fork();

    assert_true(pid != -1);
    if (pid == 0) {
        setrlimit(RLIMIT_CORE, &none);
        fn(arg);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

static int aborted(int status)
{
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

static void create_env(const char *path)
{
    struct talas_storage *st;
    char *error = NULL;

    if (talas_storage_open(path, MAP_SIZE, &st, &error) != 0)
        fail_msg("talas_storage_open: %s", error);
    talas_storage_close(st);
}

/* ------------------------------------------------------------ the guard */

static void open_forbidden(const char *path)
{
    struct talas_storage *st;
    char *error = NULL;

    talas_storage_forbid_writes();
    if (talas_storage_open(path, MAP_SIZE, &st, &error) == 0)
        _exit(10); /* opened: the guard let a write through */
    _exit(11);     /* failed, but did not abort */
}

static void test_open_aborts_when_forbidden(void **state)
{
    char *dir = test_tmpdir("storage"), *sub = xasprintf("%s/db", dir);
    struct stat sb;
    int status;

    (void)state;
    status = in_child(open_forbidden, sub);
    assert_true(aborted(status));
    /* it aborted before creating anything */
    assert_int_equal(stat(sub, &sb), -1);
    assert_int_equal(errno, ENOENT);

    /* control: without the guard the same call works */
    status = in_child(create_env, sub);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    test_rm_rf(dir);
    free(sub);
    free(dir);
}

static void write_forbidden(const char *path)
{
    struct talas_storage *st;
    char *error = NULL;
    MDB_txn *txn;

    if (talas_storage_open(path, MAP_SIZE, &st, &error) != 0)
        _exit(12);
    talas_storage_forbid_writes();
    /* reads are still allowed */
    if (talas_storage_read_begin(st, &txn) != 0)
        _exit(13);
    mdb_txn_abort(txn);
    talas_storage_write_begin(st, &txn);
    _exit(10);
}

static void counters_forbidden(const char *path)
{
    struct talas_storage *st;
    char *error = NULL;
    uint64_t one = 1;

    if (talas_storage_open(path, MAP_SIZE, &st, &error) != 0)
        _exit(12);
    talas_storage_forbid_writes();
    talas_storage_counters_add(st, "test", &one, 1);
    _exit(10);
}

static void open_allowed_again(const char *path)
{
    talas_storage_forbid_writes();
    talas_storage_allow_writes();
    create_env(path);
}

static void test_write_begin_aborts_when_forbidden(void **state)
{
    char *dir = test_tmpdir("storage");
    int status;

    (void)state;
    status = in_child(write_forbidden, dir);
    assert_true(aborted(status));
    status = in_child(counters_forbidden, dir);
    assert_true(aborted(status));
    status = in_child(open_allowed_again, dir);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    test_rm_rf(dir);
    free(dir);
}

/* ------------------------------------------------- read-only checks */

static void die_in_read_txn(const char *path)
{
    struct talas_storage *st;
    char *error = NULL;
    MDB_txn *txn;

    if (talas_storage_open(path, MAP_SIZE, &st, &error) != 0)
        _exit(12);
    if (talas_storage_read_begin(st, &txn) != 0)
        _exit(13);
    _exit(0); /* neither the transaction nor the environment is closed */
}

/* Exits with the number of dead readers cleared, 100 + n on failure. */
static void reader_check_forbidden(const char *path)
{
    char *error = NULL;
    int dead = -1;

    talas_storage_forbid_writes();
    if (talas_storage_reader_check(path, &dead, &error) != 0)
        _exit(100);
    _exit(dead);
}

/* A process that keeps the environment open, as running workers do: the
 * first process to open an environment nobody else has open resets its
 * reader table, which would clear the dead slot before the check. */
static pid_t start_holder(const char *path)
{
    int p[2];
    char c;
    pid_t pid;

    assert_int_equal(pipe(p), 0);
    assert_true((pid = fork()) != -1);
    if (pid == 0) {
        struct talas_storage *st;
        char *error = NULL;

        close(p[0]);
        if (talas_storage_open(path, MAP_SIZE, &st, &error) != 0)
            _exit(12);
        if (write(p[1], "", 1) != 1)
            _exit(13);
        for (;;)
            pause();
    }
    close(p[1]);
    assert_int_equal(read(p[0], &c, 1), 1);
    close(p[0]);
    return pid;
}

static void test_reader_check_clears_dead_reader(void **state)
{
    char *dir = test_tmpdir("storage"), *missing = xasprintf("%s/none", dir);
    int status;
    pid_t holder;

    (void)state;
    create_env(dir);
    holder = start_holder(dir);
    status = in_child(die_in_read_txn, dir);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* the dead child's slot, once, by a process that may not write */
    status = in_child(reader_check_forbidden, dir);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
    status = in_child(reader_check_forbidden, dir);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    kill(holder, SIGKILL);
    waitpid(holder, NULL, 0);
    /* no environment yet: nothing to clear, no error */
    status = in_child(reader_check_forbidden, missing);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    test_rm_rf(dir);
    free(missing);
    free(dir);
}

/* Exits 0 when talas_storage_check passes under the guard. */
static void check_forbidden(const char *path)
{
    char *error = NULL;

    talas_storage_forbid_writes();
    _exit(talas_storage_check(path, MAP_SIZE, &error) == 0 ? 0 : 1);
}

static void test_check_creates_directory_only(void **state)
{
    char *dir = test_tmpdir("storage"), *sub = xasprintf("%s/a/db", dir), *data;
    struct stat sb;
    int status;

    (void)state;
    status = in_child(check_forbidden, sub);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(stat(sub, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
    data = xasprintf("%s/data.mdb", sub);
    assert_int_equal(stat(data, &sb), -1);
    /* an existing environment is opened read-only */
    create_env(sub);
    status = in_child(check_forbidden, sub);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    test_rm_rf(dir);
    free(data);
    free(sub);
    free(dir);
}

static void put_many(struct talas_storage *st, enum talas_dbi which, int n)
{
    char key[32], value[512];
    MDB_txn *txn;

    memset(value, 'v', sizeof(value));
    assert_int_equal(talas_storage_write_begin(st, &txn), 0);
    for (int i = 0; i < n; i++) {
        MDB_val k = {(size_t)snprintf(key, sizeof(key), "k%06d", i), key}, v = {sizeof(value), value};
        assert_int_equal(mdb_put(txn, talas_storage_dbi(st, which), &k, &v, 0), 0);
    }
    assert_int_equal(mdb_txn_commit(txn), 0);
}

static void test_user_data_budget(void **state)
{
    char *dir = test_tmpdir("quota"), *error = NULL;
    struct talas_quota_refusal r = {0};
    struct talas_storage *st;
    uint64_t empty, catalog_only, full;
    MDB_txn *txn;

    (void)state;
    assert_int_equal(talas_storage_open(dir, MAP_SIZE, &st, &error), 0);
    assert_true(talas_quota_is_user_data(TALAS_DBI_PLAYLISTS));
    assert_false(talas_quota_is_user_data(TALAS_DBI_TRACKS));
    assert_false(talas_quota_is_user_data(TALAS_DBI_CACHE_CHUNKS));

    assert_int_equal(talas_storage_read_begin(st, &txn), 0);
    assert_int_equal(talas_quota_user_data_bytes(st, txn, &empty), 0);
    mdb_txn_abort(txn);
    assert_int_equal(empty, 0);

    /* the catalog is not user data */
    put_many(st, TALAS_DBI_TRACKS, 200);
    assert_int_equal(talas_storage_read_begin(st, &txn), 0);
    assert_int_equal(talas_quota_user_data_bytes(st, txn, &catalog_only), 0);
    mdb_txn_abort(txn);
    assert_int_equal(catalog_only, 0);

    /* 200 records of 512 bytes: at least 100 KiB of pages */
    put_many(st, TALAS_DBI_PLAYLISTS, 200);
    assert_int_equal(talas_storage_write_begin(st, &txn), 0);
    assert_int_equal(talas_quota_user_data_bytes(st, txn, &full), 0);
    assert_true(full >= 200 * 512);
    assert_true(full < 4 * 200 * 512);
    assert_int_equal(talas_quota_user_data_check(st, txn, 0, &r), 0);
    assert_int_equal(talas_quota_user_data_check(st, txn, full + 4096, &r), 0);
    assert_int_equal(talas_quota_user_data_check(st, txn, full, &r), TALAS_QUOTA_EXCEEDED);
    assert_string_equal(r.limit, "storage.user_data_max");
    assert_int_equal(r.max, full);
    mdb_txn_abort(txn);
    talas_storage_close(st);
    test_rm_rf(dir);
    free(dir);
}

/* Logs 1000 MDB_MAP_FULL failures and one other error to the file PATH. */
static void log_many_full(const char *path)
{
    talas_log_open(path);
    for (int i = 0; i < 1000; i++)
        talas_storage_log_write_error("flood", MDB_MAP_FULL);
    talas_storage_log_write_error("other", MDB_CORRUPTED);
}

static void test_map_full_logged_once_per_interval(void **state)
{
    char *dir = test_tmpdir("maplog"), *path = xasprintf("%s/error.log", dir), line[1024];
    int status, full = 0, other = 0;
    FILE *f;

    (void)state;
    status = in_child(log_many_full, path);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_non_null(f = fopen(path, "r"));
    while (fgets(line, sizeof(line), f) != NULL) {
        full += strstr(line, "flood: ") != NULL;
        other += strstr(line, "other: ") != NULL;
    }
    fclose(f);
    assert_int_equal(full, 1);
    assert_int_equal(other, 1);
    test_rm_rf(dir);
    free(path);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_aborts_when_forbidden),
        cmocka_unit_test(test_write_begin_aborts_when_forbidden),
        cmocka_unit_test(test_reader_check_clears_dead_reader),
        cmocka_unit_test(test_check_creates_directory_only),
        cmocka_unit_test(test_user_data_budget),
        cmocka_unit_test(test_map_full_logged_once_per_interval),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
