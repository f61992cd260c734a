/*
 * tmpdir.h - temporary directories for the unit tests: made with mkdtemp,
 * removed with everything in them.
 */
#ifndef TALAS_TEST_TMPDIR_H
#define TALAS_TEST_TMPDIR_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/util.h"

static inline int test_rm_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    if (type == FTW_DP)
        return rmdir(path);
    return unlink(path);
}

/* Removes PATH and everything below it, not following symbolic links. */
static inline void test_rm_rf(const char *path)
{
    nftw(path, test_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A new empty directory /tmp/talas-test-NAME.XXXXXX (the caller frees the
 * string); NULL when mkdtemp fails. */
static inline char *test_tmpdir(const char *name)
{
    char *dir = xasprintf("/tmp/talas-test-%s.XXXXXX", name);

    if (mkdtemp(dir) == NULL) {
        free(dir);
        return NULL;
    }
    return dir;
}

#endif
