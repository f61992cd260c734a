/*
 * test_census.c - the node's census in the shared segment
 * (src/core/census.c): counts summed over the slots in use, a dead
 * worker's slot released by the master no longer counting, a slot's new
 * owner starting empty, keys that tell kinds and names apart and depend on
 * the segment's seed, compaction keeping what is held, and a full table
 * refusing new keys without losing the old.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/census.h"
#include "core/metrics.h"

static struct talas_metrics_header *segment(void)
{
    void *mem = calloc(1, talas_metrics_size());

    assert_non_null(mem);
    talas_metrics_init(mem);
    return mem;
}

static void test_total_over_slots_in_use(void **state)
{
    struct talas_metrics_header *hdr = segment();
    int a = talas_metrics_claim(hdr, 100), b = talas_metrics_claim(hdr, 200);
    struct talas_census_table *ta = talas_census_table(hdr, (unsigned)a),
                              *tb = talas_census_table(hdr, (unsigned)b);
    uint64_t alice = talas_census_key(hdr, 'u', "alice"), bob = talas_census_key(hdr, 'u', "bob");

    (void)state;
    assert_int_equal(talas_census_total(hdr, alice), 0);
    assert_int_equal(talas_census_add(ta, alice, +1), 0);
    assert_int_equal(talas_census_add(ta, alice, +1), 0);
    assert_int_equal(talas_census_add(tb, alice, +1), 0);
    assert_int_equal(talas_census_add(tb, bob, +1), 0);
    assert_int_equal(talas_census_total(hdr, alice), 3);
    assert_int_equal(talas_census_total(hdr, bob), 1);
    assert_int_equal(talas_census_add(ta, alice, -1), 0);
    assert_int_equal(talas_census_total(hdr, alice), 2);
    /* a close of what was never counted changes nothing */
    assert_int_equal(talas_census_add(ta, bob, -1), 0);
    assert_int_equal(talas_census_total(hdr, bob), 1);

    /* worker B dies: the master releases its slot, and what it held
     * stops counting */
    talas_metrics_release(hdr, b);
    assert_int_equal(talas_census_total(hdr, alice), 1);
    assert_int_equal(talas_census_total(hdr, bob), 0);
    /* its replacement takes the slot and starts empty */
    assert_int_equal(talas_metrics_claim(hdr, 300), b);
    assert_int_equal(talas_census_total(hdr, bob), 0);
    free(hdr);
}

static void test_keys(void **state)
{
    struct talas_metrics_header *one = segment(), *two = segment();

    (void)state;
    /* a user called 127.0.0.1 is not the address 127.0.0.1 */
    assert_true(talas_census_key(one, 'u', "127.0.0.1") != talas_census_key(one, 'a', "127.0.0.1"));
    assert_true(talas_census_key(one, 'u', "alice") != talas_census_key(one, 'u', "alicf"));
    assert_true(talas_census_key(one, 'u', "") != 0);
    assert_int_equal(talas_census_key(one, 'u', "alice"), talas_census_key(one, 'u', "alice"));
    /* each segment has its own seed */
    assert_true(talas_census_key(one, 'u', "alice") != talas_census_key(two, 'u', "alice"));
    free(one);
    free(two);
}

static void test_compaction_and_full_table(void **state)
{
    struct talas_metrics_header *hdr = segment();
    int a = talas_metrics_claim(hdr, 100);
    struct talas_census_table *t = talas_census_table(hdr, (unsigned)a);
    char name[32];
    size_t full = TALAS_CENSUS_ENTRIES / 4 * 3, i;
    uint64_t seq;

    (void)state;
    /* many identities come and go: the table never fills, and the one
     * that stays is counted throughout */
    assert_int_equal(talas_census_add(t, talas_census_key(hdr, 'u', "stays"), +1), 0);
    seq = t->seq;
    for (i = 0; i < 3 * TALAS_CENSUS_ENTRIES; i++) {
        uint64_t k;
        snprintf(name, sizeof(name), "passing-%zu", i);
        k = talas_census_key(hdr, 'a', name);
        assert_int_equal(talas_census_add(t, k, +1), 0);
        assert_int_equal(talas_census_total(hdr, k), 1);
        assert_int_equal(talas_census_add(t, k, -1), 0);
    }
    assert_true(t->seq > seq); /* it compacted */
    assert_int_equal(t->seq % 2, 0);
    assert_int_equal(talas_census_total(hdr, talas_census_key(hdr, 'u', "stays")), 1);

    /* identities that all hold a connection: past three quarters, a new
     * one is refused (-1) and the others keep their counts */
    for (i = 1; i < full; i++) {
        snprintf(name, sizeof(name), "holder-%zu", i);
        assert_int_equal(talas_census_add(t, talas_census_key(hdr, 'u', name), +1), 0);
    }
    assert_int_equal(talas_census_add(t, talas_census_key(hdr, 'u', "one-too-many"), +1), -1);
    assert_int_equal(talas_census_total(hdr, talas_census_key(hdr, 'u', "one-too-many")), 0);
    assert_int_equal(talas_census_total(hdr, talas_census_key(hdr, 'u', "holder-1")), 1);
    assert_int_equal(talas_census_total(hdr, talas_census_key(hdr, 'u', "stays")), 1);
    /* one leaves: its place is taken at the next compaction */
    assert_int_equal(talas_census_add(t, talas_census_key(hdr, 'u', "holder-1"), -1), 0);
    assert_int_equal(talas_census_add(t, talas_census_key(hdr, 'u', "one-too-many"), +1), 0);
    assert_int_equal(talas_census_total(hdr, talas_census_key(hdr, 'u', "one-too-many")), 1);
    free(hdr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_total_over_slots_in_use),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_compaction_and_full_table),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
