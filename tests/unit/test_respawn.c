/*
 * test_respawn.c - the master's respawn backoff (src/master/respawn.c):
 * the delays a slot whose worker keeps dying young goes through (100 ms,
 * doubling, capped), the reset after a worker that lived, and the edge of
 * "young".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <limits.h>
#include <cmocka.h>

#include "master/master.h"
#include "master/respawn.h"

/* A worker that dies at once, again and again: 100, 200, 400 ... ms, then
 * TALAS_RESPAWN_MAX_DELAY_MS for good. */
static void test_doubling_then_cap(void **state)
{
    static const uint64_t expected[] = {100,  200,   400,   800,   1600,  3200,
                                        6400, 12800, 25600, 30000, 30000, 30000};
    unsigned young = 0;

    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
        assert_int_equal(talas_respawn_delay(&young, 5), expected[i]);
        assert_int_equal(young, i + 1);
    }
    /* many more: the delay stays at the cap, the shift never overflows */
    for (int i = 0; i < 1000; i++)
        assert_int_equal(talas_respawn_delay(&young, 0), TALAS_RESPAWN_MAX_DELAY_MS);
    assert_int_equal(young, 1012);
}

/* A worker that served for a while is respawned at once, and the next
 * early death starts the sequence again from 100 ms. */
static void test_reset_after_a_long_life(void **state)
{
    unsigned young = 0;

    for (int i = 0; i < 6; i++)
        talas_respawn_delay(&young, 10);
    assert_int_equal(young, 6);
    assert_int_equal(talas_respawn_delay(&young, 60 * 1000), 0);
    assert_int_equal(young, 0);
    assert_int_equal(talas_respawn_delay(&young, 10), 100);
    assert_int_equal(young, 1);
    assert_int_equal(talas_respawn_delay(&young, 10), 200);
}

/* "Young" is strictly less than TALAS_YOUNG_MS. */
static void test_young_edge(void **state)
{
    unsigned young = 3;

    assert_int_equal(talas_respawn_delay(&young, TALAS_YOUNG_MS - 1), 800);
    assert_int_equal(young, 4);
    assert_int_equal(talas_respawn_delay(&young, TALAS_YOUNG_MS), 0);
    assert_int_equal(young, 0);
    assert_int_equal(talas_respawn_delay(&young, 0), 100);
}

/* A count at its largest does not wrap to 0 (a shift by -1). */
static void test_count_saturates(void **state)
{
    unsigned young = UINT_MAX;

    assert_int_equal(talas_respawn_delay(&young, 0), TALAS_RESPAWN_MAX_DELAY_MS);
    assert_int_equal(young, UINT_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_doubling_then_cap),
        cmocka_unit_test(test_reset_after_a_long_life),
        cmocka_unit_test(test_young_edge),
        cmocka_unit_test(test_count_saturates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
