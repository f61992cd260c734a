/*
 * test_pg_schema.c - the cluster record store's schema, the pure parts
 * (src/store/pg_schema.c): the judge of a database's version (missing,
 * older, this build's, newer, garbage), the migrations table, and the
 * password file (first line, line ends dropped, empty and missing files
 * refused with their path).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "store/pg_schema.h"
#include "tmpdir.h"

static void test_judge(void **state)
{
    char reason[256], v[16];

    (void)state;
    snprintf(v, sizeof(v), "%d", TALAS_PG_SCHEMA_VERSION);
    assert_int_equal(talas_pg_schema_judge(v, reason, sizeof(reason)), 0);

    assert_int_equal(talas_pg_schema_judge(NULL, reason, sizeof(reason)), -1);
    assert_non_null(strstr(reason, "talasctl db migrate"));

    snprintf(v, sizeof(v), "%d", TALAS_PG_SCHEMA_VERSION + 1);
    assert_int_equal(talas_pg_schema_judge(v, reason, sizeof(reason)), -1);
    assert_non_null(strstr(reason, "newer than this build"));

    assert_int_equal(talas_pg_schema_judge("0", reason, sizeof(reason)), -1);
    assert_non_null(strstr(reason, "older"));
    assert_non_null(strstr(reason, "talasctl db migrate"));

    assert_int_equal(talas_pg_schema_judge("1x", reason, sizeof(reason)), -1);
    assert_int_equal(talas_pg_schema_judge("", reason, sizeof(reason)), -1);
    assert_int_equal(talas_pg_schema_judge("-1", reason, sizeof(reason)), -1);
}

static void test_migrations(void **state)
{
    (void)state;
    for (int v = 0; v < TALAS_PG_SCHEMA_VERSION; v++) {
        assert_non_null(talas_pg_migrations[v]);
        assert_true(strlen(talas_pg_migrations[v]) > 0);
    }
    /* version 1 makes what the workers call */
    assert_non_null(strstr(talas_pg_migrations[0], "FUNCTION talas_playlist_add("));
    assert_non_null(strstr(talas_pg_migrations[0], "FUNCTION talas_playlist_remove("));
    assert_non_null(strstr(talas_pg_migrations[0], "FUNCTION talas_playlist_share("));
}

static void test_password_file(void **state)
{
    char *dir = test_tmpdir("pgpw"), *path, *pw, *error;
    FILE *fp;

    (void)state;
    assert_non_null(dir);
    path = xasprintf("%s/pw", dir);
    fp = fopen(path, "w");
    fputs("s3cret word\r\nsecond line\n", fp);
    fclose(fp);
    assert_int_equal(talas_pg_password_read(path, &pw, &error), 0);
    assert_string_equal(pw, "s3cret word");
    free(pw);

    fp = fopen(path, "w");
    fputs("\n", fp);
    fclose(fp);
    assert_int_equal(talas_pg_password_read(path, &pw, &error), -1);
    assert_null(pw);
    assert_non_null(strstr(error, path));
    assert_non_null(strstr(error, "empty"));
    free(error);

    unlink(path);
    assert_int_equal(talas_pg_password_read(path, &pw, &error), -1);
    assert_non_null(strstr(error, path));
    free(error);
    free(path);
    test_rm_rf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_judge),
        cmocka_unit_test(test_migrations),
        cmocka_unit_test(test_password_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
