/*
 * talas-analyse.c - the scanner's loudness and tempo measurement
 * (src/scan/measure.[ch]) on the command line, for scripts/bench-analysis.
 *
 *   talas-analyse [--loudness-only] FILE...
 *
 * Probes each FILE (for its duration, as the scanner does), measures it
 * and prints one JSON object per line: file, duration_ms, cpu_ms (this
 * process's user+system time spent measuring it), and the measurement as
 * /api/tracks shows it, or "error".
 *
 * Exit status: 0; 1 when a file could not be measured; 2 usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "core/json.h"
#include "core/util.h"
#include "scan/measure.h"
#include "scan/probe.h"

static double cpu_ms(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000.0 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000.0;
}

int main(int argc, char **argv)
{
    uint32_t what = TALAS_ANALYSIS_LOUDNESS | TALAS_ANALYSIS_TEMPO;
    int first = 1, status = 0;

    if (argc > 1 && strcmp(argv[1], "--loudness-only") == 0) {
        what = TALAS_ANALYSIS_LOUDNESS;
        first = 2;
    }
    if (first >= argc) {
        fputs("usage: talas-analyse [--loudness-only] FILE...\n", stderr);
        return 2;
    }
    for (int i = first; i < argc; i++) {
        struct talas_probe_result pr;
        struct talas_track_analysis a = {0};
        struct talas_buf out = {0};
        struct talas_json j;
        char *error = NULL;
        double t0;
        int rc;

        talas_probe_file("AAAAAAAAAAAAAAAA", argv[i], 1, 0, &pr);
        t0 = cpu_ms();
        rc = talas_measure_file(argv[i], pr.track.duration_ms, what, &a, &error);
        talas_json_init(&j, &out);
        talas_json_object_begin(&j);
        talas_json_key(&j, "file");
        talas_json_string(&j, argv[i]);
        talas_json_key(&j, "duration_ms");
        talas_json_uint(&j, pr.track.duration_ms);
        talas_json_key(&j, "cpu_ms");
        talas_json_double_digits(&j, cpu_ms() - t0, 3);
        if (rc == 0) {
            talas_track_analysis_json(&j, &a);
        } else {
            talas_json_key(&j, "error");
            talas_json_string(&j, error);
            status = 1;
        }
        talas_json_object_end(&j);
        printf("%.*s\n", (int)out.len, out.data);
        talas_buf_free(&out);
        talas_probe_result_free(&pr);
        free(error);
    }
    return status;
}
