/*
 * test_adaptive.c - the initial quality of a streaming session and the
 * quality monitor (workers/media/adaptive.c), driven by tables; and the nested
 * JSON reading the session body needs (src/core/json_read.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "media/adaptive.h"
#include "core/json_read.h"
#include "core/util.h"

/* The default ladder of src/core/config.c, as a configuration gives it. */
static struct talas_config_profile ladder[] = {
    {.name = "high",
     .codec = TALAS_CONFIG_CODEC_AAC,
     .bitrate = 320,
     .sample_rate = 44100,
     .channels = 2,
     .hls = 1,
     .bandwidth_estimate = 400},
    {.name = "medium",
     .codec = TALAS_CONFIG_CODEC_AAC,
     .bitrate = 192,
     .sample_rate = 44100,
     .channels = 2,
     .hls = 1,
     .bandwidth_estimate = 250},
    {.name = "low",
     .codec = TALAS_CONFIG_CODEC_MP3,
     .bitrate = 128,
     .sample_rate = 22050,
     .channels = 2,
     .hls = 0,
     .bandwidth_estimate = 160},
    {.name = "mobile",
     .codec = TALAS_CONFIG_CODEC_AAC,
     .bitrate = 96,
     .sample_rate = 22050,
     .channels = 2,
     .hls = 1,
     .bandwidth_estimate = 120},
    {.name = "mp3",
     .codec = TALAS_CONFIG_CODEC_MP3,
     .bitrate = 192,
     .sample_rate = 44100,
     .channels = 2,
     .hls = 0,
     .bandwidth_estimate = 240},
};
#define N TALAS_ARRAY_SIZE(ladder)

enum {
    WIFI = TALAS_CONNECTION_WIFI,
    C4G = TALAS_CONNECTION_CELLULAR_4G,
    C3G = TALAS_CONNECTION_CELLULAR_3G,
    C2G = TALAS_CONNECTION_CELLULAR_2G,
    ETH = TALAS_CONNECTION_ETHERNET,
    CUNK = TALAS_CONNECTION_UNKNOWN
};
enum {
    DESK = TALAS_DEVICE_DESKTOP,
    MOB = TALAS_DEVICE_MOBILE,
    TAB = TALAS_DEVICE_TABLET,
    SPK = TALAS_DEVICE_SMART_SPEAKER,
    CAR = TALAS_DEVICE_CAR_AUDIO,
    DUNK = TALAS_DEVICE_UNKNOWN
};

static void test_ladder(void **state)
{
    size_t idx[N], n;

    n = talas_adaptive_ladder(ladder, N, 1, idx);
    assert_int_equal(n, 3); /* adaptive: the HLS rungs only */
    assert_string_equal(ladder[idx[0]].name, "high");
    assert_string_equal(ladder[idx[1]].name, "medium");
    assert_string_equal(ladder[idx[2]].name, "mobile");
    n = talas_adaptive_ladder(ladder, N, 0, idx);
    assert_int_equal(n, 5); /* by bandwidth_estimate */
    assert_string_equal(ladder[idx[0]].name, "high");
    assert_string_equal(ladder[idx[1]].name, "medium");
    assert_string_equal(ladder[idx[2]].name, "mp3");
    assert_string_equal(ladder[idx[3]].name, "low");
    assert_string_equal(ladder[idx[4]].name, "mobile");
}

static const struct {
    unsigned bandwidth, buffer_ms;
    int connection, device, adaptive;
    const char *preferred;
    const char *expect;
} initial_cases[] = {
    /* bandwidth_kbps, buffer_ms, connection, device, adaptive, preferred: expected */
    {1000, 5000, WIFI, DESK, 1, NULL, "high"},
    {400, 5000, WIFI, DESK, 1, NULL, "high"}, /* exactly the estimate fits */
    {399, 5000, WIFI, DESK, 1, NULL, "medium"},
    {300, 5000, ETH, TAB, 1, NULL, "medium"},
    {150, 5000, C3G, MOB, 1, NULL, "mobile"},  /* the seed's example */
    {50, 5000, WIFI, DESK, 1, NULL, "mobile"}, /* nothing fits: the lowest rung */
    {5000, 5000, C2G, MOB, 1, NULL, "mobile"}, /* 2G caps whatever is claimed */
    {5000, 5000, C3G, MOB, 1, NULL, "medium"}, /* 3G: 250 at most */
    {5000, 5000, C4G, MOB, 1, NULL, "high"},
    {1000, 5000, WIFI, SPK, 1, NULL, "medium"}, /* robust devices: 250 at most */
    {1000, 5000, C4G, CAR, 1, NULL, "medium"},
    {300, 5000, WIFI, CAR, 1, NULL, "mobile"}, /* 3/4 of 300 */
    {300, 5000, WIFI, CAR, 0, NULL, "low"},    /* the same without HLS: the MP3 rung fits */
    {200, 5000, WIFI, DESK, 0, NULL, "low"},
    {245, 5000, WIFI, DESK, 0, NULL, "mp3"},
    {450, 1000, WIFI, DESK, 1, NULL, "medium"}, /* a short buffer: 3/4 of 450 */
    {600, 1000, WIFI, DESK, 1, NULL, "high"},
    {0, 0, CUNK, DUNK, 1, NULL, "medium"}, /* nothing known: 250 */
    {0, 0, ETH, DESK, 1, NULL, "high"},
    {0, 0, C2G, DUNK, 1, NULL, "mobile"},
    {1000, 5000, WIFI, DESK, 1, "low", "low"},     /* a known preference wins */
    {100, 5000, C2G, MOB, 1, "high", "high"},      /* even against the link */
    {1000, 5000, WIFI, DESK, 1, "studio", "high"}, /* an unknown one is ignored */
};

static void test_initial_profile(void **state)
{
    size_t failed = 0;

    for (size_t i = 0; i < TALAS_ARRAY_SIZE(initial_cases); i++) {
        struct talas_client_capabilities c = {0};
        const char *got;

        c.estimated_bandwidth_kbps = initial_cases[i].bandwidth;
        c.buffer_duration_ms = initial_cases[i].buffer_ms;
        c.connection_type = (uint32_t)initial_cases[i].connection;
        c.device_type = (uint32_t)initial_cases[i].device;
        c.adaptive_enabled = (uint32_t)initial_cases[i].adaptive;
        if (initial_cases[i].preferred != NULL)
            snprintf(c.preferred_quality, sizeof(c.preferred_quality), "%s", initial_cases[i].preferred);
        got = ladder[talas_adaptive_initial(ladder, N, &c)].name;
        if (strcmp(got, initial_cases[i].expect) != 0) {
            print_error("case %zu: %u kbps, %u ms, %s, %s: got %s, expected %s\n", i,
                        c.estimated_bandwidth_kbps, c.buffer_duration_ms,
                        talas_adaptive_connection_name(c.connection_type),
                        talas_adaptive_device_name(c.device_type), got, initial_cases[i].expect);
            failed++;
        }
    }
    assert_int_equal(failed, 0);
}

static void test_enum_names(void **state)
{
    enum talas_connection_type c;
    enum talas_device_type d;

    assert_int_equal(talas_adaptive_connection_parse("Cellular4G", 10, &c), 0);
    assert_int_equal(c, TALAS_CONNECTION_CELLULAR_4G);
    assert_int_equal(talas_adaptive_connection_parse("wifi", 4, &c), 0);
    assert_int_equal(c, TALAS_CONNECTION_WIFI);
    assert_int_equal(talas_adaptive_connection_parse("cellular2g", 10, &c), 0);
    assert_int_equal(c, TALAS_CONNECTION_CELLULAR_2G);
    assert_int_equal(talas_adaptive_connection_parse("5G", 2, &c), -1);
    assert_int_equal(talas_adaptive_connection_parse("Wifi ", 5, &c), -1);
    assert_int_equal(talas_adaptive_device_parse("smartspeaker", 12, &d), 0);
    assert_int_equal(d, TALAS_DEVICE_SMART_SPEAKER);
    assert_int_equal(talas_adaptive_device_parse("CarAudio", 8, &d), 0);
    assert_int_equal(d, TALAS_DEVICE_CAR_AUDIO);
    assert_int_equal(talas_adaptive_device_parse("Car Audio", 9, &d), -1);
    assert_string_equal(talas_adaptive_connection_name(TALAS_CONNECTION_CELLULAR_3G), "Cellular3G");
    assert_string_equal(talas_adaptive_device_name(TALAS_DEVICE_SMART_SPEAKER), "SmartSpeaker");
}

/* One report of a sequence: the metrics sent, and what must come back. */
struct report {
    double buffer;
    unsigned speed;
    unsigned rebuffers; /* the player's running total */
    double loss;
    const char *expect_quality; /* current quality after the report */
    const char *expect_switch;
};

/* Plays REPORTS against a session that starts at START, applying every
 * switch as the server does. Returns the number of reports that did not
 * give what they expected (each printed). */
static size_t play(const char *name, const char *start, int adaptive, const struct report *reports, size_t n)
{
    struct talas_session s;
    size_t failed = 0;

    memset(&s, 0, sizeof(s));
    snprintf(s.current_quality, sizeof(s.current_quality), "%s", start);
    s.client_capabilities.adaptive_enabled = (uint32_t)adaptive;
    s.performance_metrics.buffer_health_percentage = 100;
    for (size_t i = 0; i < n; i++) {
        struct talas_performance_metrics m = s.performance_metrics;
        struct talas_quality_monitor mon;
        struct talas_adaptive_advice a;
        const char *sw;

        m.buffer_health_percentage = reports[i].buffer;
        m.download_speed_kbps = reports[i].speed;
        m.rebuffer_count = reports[i].rebuffers;
        m.packet_loss_percentage = reports[i].loss;
        talas_adaptive_monitor(ladder, N, &s, &m, &mon, &a);
        sw = talas_adaptive_switch_name(a.sw);
        if (a.sw != TALAS_SWITCH_NONE)
            snprintf(s.current_quality, sizeof(s.current_quality), "%s", ladder[a.profile].name);
        else
            assert_string_equal(ladder[a.profile].name, s.current_quality);
        s.performance_metrics = m;
        s.monitor = mon;
        if (strcmp(s.current_quality, reports[i].expect_quality) != 0 ||
            strcmp(sw, reports[i].expect_switch) != 0) {
            print_error("%s, report %zu: got %s (%s, %s), expected %s (%s)\n", name, i, s.current_quality, sw,
                        a.reason, reports[i].expect_quality, reports[i].expect_switch);
            failed++;
        }
    }
    return failed;
}

#define PLAY(start, adaptive, ...)                                                                           \
    do {                                                                                                     \
        static const struct report r[] = {__VA_ARGS__};                                                      \
        failed += play(#__VA_ARGS__, start, adaptive, r, TALAS_ARRAY_SIZE(r));                               \
    } while (0)

static void test_monitor_hysteresis(void **state)
{
    size_t failed = 0;

    /* up only after three healthy reports in a row with room for the rung above (400 * 5/4 = 500) */
    PLAY("medium", 1, {90, 800, 0, 0, "medium", "none"}, {90, 800, 0, 0, "medium", "none"},
         {90, 800, 0, 0, "high", "up"}, {90, 800, 0, 0, "high", "none"});
    /* a single good report among bad ones never climbs */
    PLAY("mobile", 1, {90, 800, 0, 0, "mobile", "none"}, {60, 800, 0, 0, "mobile", "none"},
         {90, 800, 0, 0, "mobile", "none"}, {90, 800, 0, 0, "mobile", "none"},
         {90, 800, 0, 0, "medium", "up"});
    /* not enough headroom (450 < 500), lossy links, a rung at the top: no up */
    PLAY("medium", 1, {95, 450, 0, 0, "medium", "none"}, {95, 450, 0, 0, "medium", "none"},
         {95, 450, 0, 0, "medium", "none"}, {95, 450, 0, 0, "medium", "none"});
    PLAY("medium", 1, {95, 900, 0, 8, "medium", "none"}, {95, 900, 0, 8, "medium", "none"},
         {95, 900, 0, 8, "medium", "none"});
    PLAY("high", 1, {100, 5000, 0, 0, "high", "none"}, {100, 5000, 0, 0, "high", "none"},
         {100, 5000, 0, 0, "high", "none"}, {100, 5000, 0, 0, "high", "none"});
    /* a rebuffer goes down at once, as far as the measured speed says */
    PLAY("high", 1, {80, 300, 1, 0, "medium", "down"}, {80, 300, 1, 0, "medium", "none"});
    PLAY("high", 1, {80, 130, 1, 0, "mobile", "down"});
    /* so does a low buffer, one rung when the speed is unknown */
    PLAY("high", 1, {20, 0, 0, 0, "medium", "down"}, {20, 0, 0, 0, "mobile", "down"},
         {10, 0, 0, 0, "mobile", "none"});
    /* a single dip below the rung's need is not enough; two in a row are */
    PLAY("high", 1, {70, 300, 0, 0, "high", "none"}, {70, 500, 0, 0, "high", "none"},
         {70, 300, 0, 0, "high", "none"}, {70, 300, 0, 0, "medium", "down"});
    /* after going down, the way back up takes three healthy reports again */
    PLAY("high", 1, {20, 300, 0, 0, "medium", "down"}, {90, 900, 0, 0, "medium", "none"},
         {90, 900, 0, 0, "medium", "none"}, {90, 900, 0, 0, "high", "up"});
    /* a rebuffer in the middle of a healthy streak starts it again */
    PLAY("medium", 1, {90, 800, 0, 0, "medium", "none"}, {90, 800, 0, 0, "medium", "none"},
         {90, 800, 1, 0, "mobile", "down"}, {90, 800, 1, 0, "mobile", "none"},
         {90, 800, 1, 0, "mobile", "none"}, {90, 800, 1, 0, "medium", "up"});
    /* a profile beside the ladder (MP3 low, 160): its neighbours are HLS rungs */
    PLAY("low", 1, {90, 400, 0, 0, "low", "none"}, {90, 400, 0, 0, "low", "none"},
         {90, 400, 0, 0, "medium", "up"});
    PLAY("low", 1, {10, 0, 0, 0, "mobile", "down"});
    /* without adaptive_enabled the quality stays what it is */
    PLAY("high", 0, {5, 50, 3, 0, "high", "none"}, {100, 9000, 3, 0, "high", "none"});
    assert_int_equal(failed, 0);
}

/* ------------------------------------------------------------- nested JSON */

struct seen {
    char caps[256];
    int64_t n;
    double d;
};

static int outer(const char *key, const struct talas_json_value *v, void *arg)
{
    struct seen *s = arg;

    if (strcmp(key, "caps") == 0) {
        assert_int_equal(v->type, TALAS_JSON_OBJECT);
        assert_true(v->len < sizeof(s->caps));
        memcpy(s->caps, v->str, v->len);
        s->caps[v->len] = '\0';
    } else if (strcmp(key, "n") == 0) {
        assert_int_equal(v->type, TALAS_JSON_INTEGER);
        s->n = v->num;
        assert_true(v->dbl == 42.0);
    } else if (strcmp(key, "d") == 0) {
        assert_int_equal(v->type, TALAS_JSON_NUMBER);
        s->d = v->dbl;
    }
    return 0;
}

static int inner(const char *key, const struct talas_json_value *v, void *arg)
{
    return 0;
}

static void test_nested_json(void **state)
{
    static const char doc[] = "{\"n\": 42, \"caps\": {\"a\": \"}\", \"b\": [1]}, \"d\": 1.5e1}";
    static const char ok[] = "{\"n\": 42, \"caps\": {\"a\": \"}\", \"b\": true}, \"d\": 1.5e1}";
    struct seen s = {{0}, 0, 0};
    const char *error = NULL;

    /* arrays stay refused, even inside */
    assert_int_equal(talas_json_read_object_nested(doc, strlen(doc), outer, &s, &error), -1);
    assert_non_null(error);
    assert_int_equal(talas_json_read_object_nested(ok, strlen(ok), outer, &s, &error), 0);
    assert_string_equal(s.caps, "{\"a\": \"}\", \"b\": true}");
    assert_int_equal(s.n, 42);
    assert_true(s.d == 15.0);
    assert_int_equal(talas_json_read_object(s.caps, strlen(s.caps), inner, NULL, &error), 0);
    /* one level only; and the flat reader still refuses objects */
    assert_int_equal(talas_json_read_object_nested("{\"a\": {\"b\": {}}}", 16, outer, &s, &error), -1);
    assert_int_equal(talas_json_read_object(ok, strlen(ok), outer, &s, &error), -1);
    assert_int_equal(talas_json_read_object_nested("{\"caps\": {\"a\": 1,}}", 19, outer, &s, &error), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ladder),      cmocka_unit_test(test_initial_profile),
        cmocka_unit_test(test_enum_names),  cmocka_unit_test(test_monitor_hysteresis),
        cmocka_unit_test(test_nested_json),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
