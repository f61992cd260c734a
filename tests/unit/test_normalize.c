/*
 * test_normalize.c - the loudness stage of workers/media/normalize.c: its
 * output lies on its input's positions (no delay), it holds the ceiling on
 * the 4x oversampled signal, and a stage started TALAS_NORMALIZE_HISTORY_MS
 * before a chunk gives that chunk the very samples of a stage run from the
 * start of the track (the limiter does not restart at chunk boundaries).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "media/normalize.h"

#define RATE 44100
#define BLOCK 1152

/* A signal the limiter works on: a tone with loud bursts, deterministic. */
static float signal_at(int64_t i, int ch)
{
    double t = (double)i / RATE;
    double v = 0.3 * sin(2 * M_PI * 220 * t + ch);

    if (i >= 0 && (i / 9000) % 3 == 1)
        v += 0.6 * sin(2 * M_PI * 3100 * t);
    return i < 0 ? 0.0f : (float)v;
}

/* Runs a stage from FIRST and returns samples [FROM, FROM + N) of both
 * channels (malloc'd, interleaved per channel: [ch * n + k]). */
static float *run(double gain_db, double ceiling, int64_t first, int64_t from, size_t n)
{
    struct talas_normalizer *st;
    char *error = NULL;
    float in0[BLOCK], in1[BLOCK], *in[2] = {in0, in1};
    float *out = calloc(2 * n, sizeof(float));
    float *dst[2] = {out, out + n};

    assert_int_equal(talas_normalizer_open(RATE, 2, gain_db, ceiling, first, &st, &error), 0);
    for (;;) {
        int r = talas_normalizer_read(st, from, (unsigned)n, dst);

        assert_true(r >= 0);
        if (r == 1)
            break;
        int64_t at = talas_normalizer_next_input(st);
        for (int k = 0; k < BLOCK; k++) {
            in0[k] = signal_at(at + k, 0);
            in1[k] = signal_at(at + k, 1);
        }
        assert_int_equal(talas_normalizer_feed(st, (const float *const *)in, BLOCK, &error), 0);
    }
    talas_normalizer_free(st);
    return out;
}

static void test_no_delay_and_gain(void **state)
{
    (void)state;
    /* -6 dB on a tone the limiter leaves alone: the input, halved, in place */
    size_t n = 4000;
    float *out = run(-6.0206, -1.0, 0, 2000, n);
    double worst = 0;

    for (size_t k = 0; k < n; k++) {
        if (((2000 + (int64_t)k) / 9000) % 3 == 1)
            continue;
        worst = fmax(worst, fabs(out[k] - 0.5 * signal_at(2000 + (int64_t)k, 0)));
    }
    assert_true(worst < 1e-3);
    free(out);
}

static void test_ceiling_on_true_peak(void **state)
{
    (void)state;
    /* +12 dB: the bursts go far past full scale */
    size_t n = 3 * 27000;
    float *out = run(12, -3, 0, 0, n);
    double ceiling = pow(10, -3.0 / 20), peak = 0;

    for (size_t k = 0; k + 1 < 2 * n; k++) {
        /* between two samples too (a linear look: a lower bound of the true peak) */
        peak = fmax(peak, fabs(out[k]));
        peak = fmax(peak, fabs(0.5 * (out[k] + out[k + 1])));
    }
    assert_true(peak <= ceiling * 1.02);
    assert_true(peak > ceiling * 0.8); /* and it did have to limit */
    free(out);
}

static void test_history_gives_the_continuous_samples(void **state)
{
    (void)state;
    int64_t history = (int64_t)TALAS_NORMALIZE_HISTORY_MS * RATE / 1000;
    size_t n = 20000;
    /* chunks starting in a burst, while the limiter releases after one
     * (its gain still down), and in quiet */
    static const int64_t starts[] = {9000 * 4 + 500,  9000 * 5 + 40,   9000 * 5 + 1500,
                                     9000 * 5 + 3000, 9000 * 6 + 3000, 123457};

    for (size_t s = 0; s < sizeof(starts) / sizeof(starts[0]); s++) {
        float *whole = run(12, -3, -history, starts[s], n);
        float *chunk = run(12, -3, starts[s] - history, starts[s], n);
        double worst = 0;

        for (size_t k = 0; k < 2 * n; k++)
            worst = fmax(worst, fabs(whole[k] - chunk[k]));
        assert_true(worst < 1e-5);
        free(whole);
        free(chunk);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_delay_and_gain),
        cmocka_unit_test(test_ceiling_on_true_peak),
        cmocka_unit_test(test_history_gives_the_continuous_samples),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
