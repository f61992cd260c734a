/*
 * store_fixture.h - a temporary LMDB environment for the unit tests of the
 * store's record modules (src/store/): cmocka's setup opens one in a new
 * directory, teardown closes it and removes the directory;
 * store_fixture_count_user counts the users a foreach_user names. Include after
 * cmocka.h; define STORE_FIXTURE_NAME (the directory's name) first.
 */
#ifndef TALAS_TEST_STORE_FIXTURE_H
#define TALAS_TEST_STORE_FIXTURE_H

#include <stdlib.h>

#include "core/util.h"
#include "store/storage.h"
#include "tmpdir.h"

#define STORE_FIXTURE_MAP_SIZE (64ull * 1024 * 1024)

struct store_fixture {
    char *dir;
    struct talas_storage *st;
};

static int setup(void **state)
{
    struct store_fixture *f = xcalloc(1, sizeof(*f));
    char *error = NULL;

    f->dir = test_tmpdir(STORE_FIXTURE_NAME);
    assert_non_null(f->dir);
    assert_int_equal(talas_storage_open(f->dir, STORE_FIXTURE_MAP_SIZE, &f->st, &error), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct store_fixture *f = *state;

    talas_storage_close(f->st);
    test_rm_rf(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* A callback of the modules' foreach_user: counts the users in *(int *)ARG. */
static inline int store_fixture_count_user(const char *user, void *arg)
{
    (void)user;
    (*(int *)arg)++;
    return 0;
}

#endif
