/*
 * test_track_analysis.c - the measured part of a track (store/
 * track_analysis.c): what is still to measure, ReplayGain, the JSON (never
 * a non-finite number), the /api/tracks filters.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/json.h"
#include "store/track_analysis.h"

static void test_wanted(void **state)
{
    struct talas_track_analysis a = {0};
    const uint64_t max = 300000;

    (void)state;
    assert_int_equal(talas_track_analysis_wanted(&a, 1, 1000, 1, 1, max),
                     TALAS_ANALYSIS_LOUDNESS | TALAS_ANALYSIS_TEMPO);
    /* tempo only below analysis.tempo_max_duration */
    assert_int_equal(talas_track_analysis_wanted(&a, 1, max, 1, 1, max), TALAS_ANALYSIS_LOUDNESS);
    assert_int_equal(talas_track_analysis_wanted(&a, 1, max - 1, 0, 1, max), TALAS_ANALYSIS_TEMPO);
    assert_int_equal(talas_track_analysis_wanted(&a, 1, 1000, 0, 0, max), 0);
    /* nothing to analyse in a file that failed to probe */
    assert_int_equal(talas_track_analysis_wanted(&a, 0, 1000, 1, 1, max), 0);
    /* done: only what is missing */
    a.flags = TALAS_ANALYSIS_LOUDNESS;
    assert_int_equal(talas_track_analysis_wanted(&a, 1, 1000, 1, 1, max), TALAS_ANALYSIS_TEMPO);
    a.flags = TALAS_ANALYSIS_LOUDNESS | TALAS_ANALYSIS_TEMPO;
    assert_int_equal(talas_track_analysis_wanted(&a, 1, 1000, 1, 1, max), 0);
    /* a failure is not retried until the file changes (a new record) */
    a.flags = TALAS_ANALYSIS_FAILED;
    assert_int_equal(talas_track_analysis_wanted(&a, 1, 1000, 1, 1, max), 0);
}

static void test_gain(void **state)
{
    struct talas_track_analysis a = {0};

    (void)state;
    a.integrated_lufs = -23;
    assert_true(isnan(talas_track_analysis_gain_db(&a))); /* not measured */
    a.flags = TALAS_ANALYSIS_LOUDNESS;
    assert_true(fabs(talas_track_analysis_gain_db(&a) - 5.0) < 1e-9);
    a.integrated_lufs = -9.5;
    assert_true(fabs(talas_track_analysis_gain_db(&a) + 8.5) < 1e-9);
    a.integrated_lufs = -INFINITY;
    assert_false(isfinite(talas_track_analysis_gain_db(&a)));
}

static char *render(const struct talas_track_analysis *a, struct talas_buf *out)
{
    struct talas_json j;

    talas_json_init(&j, out);
    talas_json_object_begin(&j);
    talas_track_analysis_json(&j, a);
    talas_json_object_end(&j);
    talas_buf_append(out, "", 1);
    return out->data;
}

static void test_json(void **state)
{
    struct talas_track_analysis a = {0};
    struct talas_buf out = {0};

    (void)state;
    assert_string_equal(render(&a, &out), "{\"loudness\":null,\"replay_gain\":null,\"tempo\":null}");
    talas_buf_free(&out);

    /* silence: no integrated loudness, no peak in dB; null, never -inf */
    a.flags = TALAS_ANALYSIS_LOUDNESS | TALAS_ANALYSIS_TEMPO;
    a.integrated_lufs = -INFINITY;
    a.true_peak_dbtp = -INFINITY;
    a.sample_peak_dbfs = -INFINITY;
    assert_string_equal(
        render(&a, &out),
        "{\"loudness\":{\"integrated_lufs\":null,\"range_lu\":0,\"true_peak_dbtp\":null,"
        "\"sample_peak_dbfs\":null},\"replay_gain\":{\"track_gain_db\":null,\"track_peak\":0},"
        "\"tempo\":null}");
    talas_buf_free(&out);

    a.integrated_lufs = -23.004;
    a.range_lu = 3.5;
    a.true_peak_dbtp = -1;
    a.sample_peak_dbfs = -1.5;
    a.sample_peak = 0.5;
    a.bpm = 120;
    a.bpm_confidence = 2;
    assert_string_equal(render(&a, &out),
                        "{\"loudness\":{\"integrated_lufs\":-23,\"range_lu\":3.5,\"true_peak_dbtp\":-1,"
                        "\"sample_peak_dbfs\":-1.5},\"replay_gain\":{\"track_gain_db\":5,\"track_peak\":0.5},"
                        "\"tempo\":{\"bpm\":120,\"confidence\":2}}");
    talas_buf_free(&out);
}

static void test_filter(void **state)
{
    struct talas_track_filter f;
    struct talas_track_analysis a = {0}, none = {0};

    (void)state;
    a.flags = TALAS_ANALYSIS_TEMPO;
    a.bpm = 120;
    talas_track_filter_init(&f);
    assert_false(talas_track_filter_active(&f));
    assert_true(talas_track_filter_match(&f, 1000, &none));

    f.bpm_min = 120;
    assert_true(talas_track_filter_active(&f));
    assert_true(talas_track_filter_match(&f, 1000, &a));
    assert_false(talas_track_filter_match(&f, 1000, &none)); /* tempo unknown */
    f.bpm_min = 120.5;
    assert_false(talas_track_filter_match(&f, 1000, &a));
    f.bpm_min = -1;
    f.bpm_max = 119.99;
    assert_false(talas_track_filter_match(&f, 1000, &a));
    f.bpm_max = 120;
    assert_true(talas_track_filter_match(&f, 1000, &a));

    talas_track_filter_init(&f);
    f.max_duration_ms = 1000;
    assert_true(talas_track_filter_match(&f, 1000, &none));
    assert_false(talas_track_filter_match(&f, 1001, &none));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wanted),
        cmocka_unit_test(test_gain),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_filter),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
