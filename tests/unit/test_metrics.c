/*
 * test_metrics.c - the node's figures (src/core/metrics.c): the sum over
 * worker slots (counters of dead workers kept, gauges of free slots left
 * out), the histogram's cumulative buckets, label escaping, one HELP and
 * one TYPE line per family, and cidr.c's address ranges (metrics.allow).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "core/cidr.h"
#include "core/metrics.h"
#include "core/util.h"

static struct talas_metrics_header *new_segment(void)
{
    void *mem = calloc(1, talas_metrics_size());

    assert_non_null(mem);
    talas_metrics_init(mem);
    return mem;
}

static uint64_t get(_Atomic uint64_t *f)
{
    return atomic_load(f);
}

/* The text of SUM, NUL-terminated (free it). */
static char *format(const struct talas_metrics_slot *sum, const char *version)
{
    struct talas_buf b = {0};

    talas_metrics_format(sum, version, &b);
    talas_buf_append(&b, "", 1);
    return b.data;
}

/* Whether TEXT holds LINE as a whole line. */
static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);

    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return 1;
    return 0;
}

static size_t count_of(const char *text, const char *needle)
{
    size_t n = 0;

    for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* Two workers count; one dies and its slot is taken by another: the
 * counters of all three add up, the gauges only of the two alive. */
static void test_sum_keeps_counters_of_dead_workers(void **state)
{
    struct talas_metrics_header *hdr = new_segment();
    struct talas_metrics_slot sum, *a, *b, *c;
    int ia = talas_metrics_claim(hdr, 100), ib = talas_metrics_claim(hdr, 101), ic;

    assert_int_equal(ia, 0);
    assert_int_equal(ib, 1);
    a = talas_metrics_slot(hdr, (unsigned)ia);
    b = talas_metrics_slot(hdr, (unsigned)ib);
    talas_metrics_add(&a->count.http_requests[TALAS_ROUTE_STREAM][TALAS_STATUS_2XX], 3);
    talas_metrics_add(&b->count.http_requests[TALAS_ROUTE_STREAM][TALAS_STATUS_2XX], 4);
    talas_metrics_add(&a->count.cache_hits, 5);
    talas_metrics_add(&a->gauge.ws_connections, 7);
    talas_metrics_add(&b->gauge.ws_connections, 1);

    talas_metrics_sum(hdr, &sum);
    assert_int_equal(get(&sum.count.http_requests[TALAS_ROUTE_STREAM][TALAS_STATUS_2XX]), 7);
    assert_int_equal(get(&sum.gauge.ws_connections), 8);
    assert_int_equal(get(&sum.in_use), 2);

    /* a dies (kill -9): the master takes its slot back */
    talas_metrics_release(hdr, ia);
    talas_metrics_sum(hdr, &sum);
    assert_int_equal(get(&sum.count.http_requests[TALAS_ROUTE_STREAM][TALAS_STATUS_2XX]), 7);
    assert_int_equal(get(&sum.count.cache_hits), 5);
    assert_int_equal(get(&sum.gauge.ws_connections), 1);
    assert_int_equal(get(&sum.in_use), 1);

    /* its successor gets the slot: the counters go on, the gauges start at 0 */
    ic = talas_metrics_claim(hdr, 102);
    assert_int_equal(ic, ia);
    c = talas_metrics_slot(hdr, (unsigned)ic);
    assert_int_equal(get(&c->gauge.ws_connections), 0);
    talas_metrics_add(&c->count.http_requests[TALAS_ROUTE_STREAM][TALAS_STATUS_2XX], 1);
    talas_metrics_sum(hdr, &sum);
    assert_int_equal(get(&sum.count.http_requests[TALAS_ROUTE_STREAM][TALAS_STATUS_2XX]), 8);
    assert_int_equal(get(&sum.gauge.ws_connections), 1);
    assert_int_equal(get(&sum.in_use), 2);
    free(hdr);
}

static void test_claim_until_full(void **state)
{
    struct talas_metrics_header *hdr = new_segment();

    for (int i = 0; i < TALAS_METRICS_SLOTS; i++)
        assert_int_equal(talas_metrics_claim(hdr, (uint64_t)i + 1), i);
    assert_int_equal(talas_metrics_claim(hdr, 9999), -1);
    talas_metrics_release(hdr, 17);
    assert_int_equal(talas_metrics_claim(hdr, 9999), 17);
    free(hdr);
}

static void test_buckets(void **state)
{
    assert_int_equal(talas_metrics_bucket(0), 0);
    assert_int_equal(talas_metrics_bucket(1000), 0); /* le is "less or equal" */
    assert_int_equal(talas_metrics_bucket(1001), 1);
    assert_int_equal(talas_metrics_bucket(2500), 1);
    assert_int_equal(talas_metrics_bucket(1000000), 9);
    assert_int_equal(talas_metrics_bucket(2500000), 10);
    assert_int_equal(talas_metrics_bucket(2500001), TALAS_METRICS_BUCKETS);
    assert_int_equal(talas_metrics_bucket(UINT64_MAX), TALAS_METRICS_BUCKETS);
    assert_int_equal(talas_metrics_status_class(101), TALAS_STATUS_1XX);
    assert_int_equal(talas_metrics_status_class(206), TALAS_STATUS_2XX);
    assert_int_equal(talas_metrics_status_class(404), TALAS_STATUS_4XX);
    assert_int_equal(talas_metrics_status_class(599), TALAS_STATUS_5XX);
    assert_int_equal(talas_metrics_status_class(0), -1);
    assert_int_equal(talas_metrics_status_class(600), -1);
}

/* Buckets are written cumulative, the count is the +Inf bucket, the sum
 * is in seconds. */
static void test_histogram_cumulative(void **state)
{
    struct talas_metrics_slot sum;
    _Atomic uint64_t *h = sum.count.http_first_byte[TALAS_ROUTE_HLS];
    char *text;

    memset(&sum, 0, sizeof(sum));
    talas_metrics_add(&h[talas_metrics_bucket(500)], 1);     /* <= 0.001 */
    talas_metrics_add(&h[talas_metrics_bucket(900)], 1);     /* <= 0.001 */
    talas_metrics_add(&h[talas_metrics_bucket(7000)], 1);    /* <= 0.01 */
    talas_metrics_add(&h[talas_metrics_bucket(9000000)], 1); /* +Inf only */
    talas_metrics_add(&sum.count.http_first_byte_us[TALAS_ROUTE_HLS], 500 + 900 + 7000 + 9000000);
    text = format(&sum, "1.2.3");
    assert_true(has_line(text, "talas_http_first_byte_seconds_bucket{route=\"hls\",le=\"0.001\"} 2"));
    assert_true(has_line(text, "talas_http_first_byte_seconds_bucket{route=\"hls\",le=\"0.0025\"} 2"));
    assert_true(has_line(text, "talas_http_first_byte_seconds_bucket{route=\"hls\",le=\"0.005\"} 2"));
    assert_true(has_line(text, "talas_http_first_byte_seconds_bucket{route=\"hls\",le=\"0.01\"} 3"));
    assert_true(has_line(text, "talas_http_first_byte_seconds_bucket{route=\"hls\",le=\"2.5\"} 3"));
    assert_true(has_line(text, "talas_http_first_byte_seconds_bucket{route=\"hls\",le=\"+Inf\"} 4"));
    assert_true(has_line(text, "talas_http_first_byte_seconds_count{route=\"hls\"} 4"));
    assert_true(has_line(text, "talas_http_first_byte_seconds_sum{route=\"hls\"} 9.008400"));
    /* every route is written from the start, at zero */
    assert_true(has_line(text, "talas_http_first_byte_seconds_bucket{route=\"stream\",le=\"+Inf\"} 0"));
    assert_true(has_line(text, "talas_http_first_byte_seconds_count{route=\"ws\"} 0"));
    assert_true(has_line(text, "talas_http_requests_total{route=\"peaks\",status=\"5xx\"} 0"));
    free(text);
}

static void test_families_once(void **state)
{
    static const char *const names[] = {
        "talas_build_info",
        "talas_workers",
        "talas_http_requests_total",
        "talas_http_first_byte_seconds",
        "talas_cache_hits_total",
        "talas_cache_misses_total",
        "talas_encodes_running",
        "talas_encoded_seconds_total",
        "talas_encode_cpu_seconds_total",
        "talas_ws_connections",
        "talas_ws_events_in_total",
        "talas_ws_events_out_total",
        "talas_redis_up",
        "talas_redis_commands_total",
        "talas_redis_errors_total",
        "talas_redis_reconnects_total",
        "talas_redis_round_trip_seconds",
        "talas_postgres_up",
        "talas_postgres_commands_total",
        "talas_postgres_errors_total",
        "talas_postgres_reconnects_total",
        "talas_postgres_round_trip_seconds",
        "talas_listen_sessions_dropped_total",
    };
    struct talas_metrics_slot sum;
    char *text, line[128];

    memset(&sum, 0, sizeof(sum));
    talas_metrics_add(&sum.count.encoded_us, 1500000);
    talas_metrics_add(&sum.count.http_requests[TALAS_ROUTE_API][TALAS_STATUS_4XX], 2);
    text = format(&sum, "0.1.0");
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(line, sizeof(line), "# HELP %s ", names[i]);
        assert_int_equal(count_of(text, line), 1);
        snprintf(line, sizeof(line), "# TYPE %s ", names[i]);
        assert_int_equal(count_of(text, line), 1);
    }
    /* no other family */
    assert_int_equal(count_of(text, "# TYPE "), sizeof(names) / sizeof(names[0]));
    assert_true(has_line(text, "# TYPE talas_http_first_byte_seconds histogram"));
    assert_true(has_line(text, "# TYPE talas_ws_connections gauge"));
    /* up: 0 without connections, 1 when all are ready, 0 when one is not */
    assert_true(has_line(text, "talas_redis_up 0"));
    free(text);
    talas_metrics_add(&sum.gauge.redis.conns, 2);
    text = format(&sum, "0.1.0");
    assert_true(has_line(text, "talas_redis_up 1"));
    assert_true(has_line(text, "talas_postgres_up 0"));
    free(text);
    talas_metrics_add(&sum.gauge.redis.down, 1);
    talas_metrics_round_trip(&sum.count.redis, 3000);
    text = format(&sum, "0.1.0");
    assert_true(has_line(text, "talas_redis_up 0"));
    assert_true(has_line(text, "talas_redis_round_trip_seconds_bucket{le=\"0.005\"} 1"));
    assert_true(has_line(text, "talas_redis_round_trip_seconds_bucket{le=\"0.0025\"} 0"));
    assert_true(has_line(text, "talas_redis_round_trip_seconds_sum 0.003000"));
    assert_true(has_line(text, "# TYPE talas_cache_hits_total counter"));
    assert_true(has_line(text, "talas_build_info{version=\"0.1.0\"} 1"));
    assert_true(has_line(text, "talas_encoded_seconds_total 1.500000"));
    assert_true(has_line(text, "talas_http_requests_total{route=\"api\",status=\"4xx\"} 2"));
    assert_true(has_line(text, "talas_http_requests_total{route=\"api\",status=\"2xx\"} 0"));
    /* the TYPE line of a family comes before its samples */
    assert_true(strstr(text, "# TYPE talas_ws_connections") < strstr(text, "\ntalas_ws_connections "));
    assert_int_equal(text[strlen(text) - 1], '\n');
    free(text);
}

static void test_label_escaping(void **state)
{
    struct talas_metrics_slot sum;
    struct talas_buf b = {0};
    char *text;

    talas_metrics_escape_label(&b, "a\"b\\c\nd");
    talas_buf_append(&b, "", 1);
    assert_string_equal(b.data, "a\\\"b\\\\c\\nd");
    talas_buf_free(&b);

    memset(&sum, 0, sizeof(sum));
    text = format(&sum, "1.0\"x\n");
    assert_true(has_line(text, "talas_build_info{version=\"1.0\\\"x\\n\"} 1"));
    free(text);
}

static void test_cidr(void **state)
{
    struct talas_cidr c;
    struct sockaddr_in v4 = {.sin_family = AF_INET};
    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};

    assert_int_equal(talas_cidr_parse("127.0.0.0/8", &c), 0);
    inet_pton(AF_INET, "127.1.2.3", &v4.sin_addr);
    assert_true(talas_cidr_match(&c, (struct sockaddr *)&v4));
    inet_pton(AF_INET, "128.0.0.1", &v4.sin_addr);
    assert_false(talas_cidr_match(&c, (struct sockaddr *)&v4));
    /* an IPv4 client on a dual-stack socket */
    inet_pton(AF_INET6, "::ffff:127.0.0.1", &v6.sin6_addr);
    assert_true(talas_cidr_match(&c, (struct sockaddr *)&v6));

    assert_int_equal(talas_cidr_parse("::1", &c), 0);
    assert_true(talas_cidr_match(&c, (struct sockaddr *)&v6) == 0);
    inet_pton(AF_INET6, "::1", &v6.sin6_addr);
    assert_true(talas_cidr_match(&c, (struct sockaddr *)&v6));

    assert_int_equal(talas_cidr_parse("10.1.2.3/31", &c), 0); /* host bits cleared */
    inet_pton(AF_INET, "10.1.2.2", &v4.sin_addr);
    assert_true(talas_cidr_match(&c, (struct sockaddr *)&v4));
    assert_int_equal(talas_cidr_parse("0.0.0.0/0", &c), 0);
    assert_true(talas_cidr_match(&c, (struct sockaddr *)&v4));

    assert_int_equal(talas_cidr_parse("10.0.0.0/33", &c), -1);
    assert_int_equal(talas_cidr_parse("10.0.0.0/", &c), -1);
    assert_int_equal(talas_cidr_parse("10.0.0.0/-1", &c), -1);
    assert_int_equal(talas_cidr_parse("localhost", &c), -1);
    assert_int_equal(talas_cidr_parse("", &c), -1);
    assert_int_equal(talas_cidr_parse("::1/129", &c), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sum_keeps_counters_of_dead_workers),
        cmocka_unit_test(test_claim_until_full),
        cmocka_unit_test(test_buckets),
        cmocka_unit_test(test_histogram_cumulative),
        cmocka_unit_test(test_families_once),
        cmocka_unit_test(test_label_escaping),
        cmocka_unit_test(test_cidr),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
