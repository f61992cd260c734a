/*
 * test_grpc_request.c - the protobuf wire reader of gRPC requests
 * (workers/grpc/grpc_request.c) and the field rules it feeds
 * (src/core/mint_args.c): exact bytes of strings with NUL inside, unknown
 * fields, last-wins duplicates, and every way a message can lie about its
 * own length. Every message is copied into a buffer of exactly its size,
 * so a read past the end is caught by the sanitizers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/mint_args.h"
#include "grpc/grpc_request.h"

#define TRACK "AbCdEfGh_-012345"

/* Decodes the LEN bytes at MSG from an exact-size copy. *ERROR_R is set to
 * the error (NULL on success); string pointers are rebased onto MSG so
 * the caller may compare them after the copy is gone. */
static int decode(const void *msg, size_t len, struct talas_grpc_stream_url_request *req,
                  const char **error_r)
{
    uint8_t *copy = malloc(len ? len : 1);
    struct talas_grpc_string *strs[] = {&req->audio_id, &req->user_id, &req->kind};
    int rc;

    memcpy(copy, msg, len);
    *error_r = NULL;
    rc = talas_grpc_request_stream_url(copy, len, req, error_r);
    assert_true(rc == 0 || rc == -1);
    if (rc == 0) {
        for (size_t i = 0; i < 3; i++) {
            if (strs[i]->len == 0)
                continue;
            assert_true((const uint8_t *)strs[i]->data >= copy);
            assert_true((const uint8_t *)strs[i]->data + strs[i]->len <= copy + len);
            strs[i]->data = (const char *)msg + ((const uint8_t *)strs[i]->data - copy);
        }
    } else {
        assert_non_null(*error_r);
    }
    free(copy);
    return rc;
}

#define DECODE_OK(lit, req)                                                                                  \
    do {                                                                                                     \
        const char *e_;                                                                                      \
        int rc_ = decode(lit, sizeof(lit) - 1, req, &e_);                                                    \
        if (rc_ != 0)                                                                                        \
            fail_msg("decode failed: %s", e_);                                                               \
    } while (0)

/* The error of decoding LIT, which must fail. */
static const char *decode_error(const void *msg, size_t len)
{
    struct talas_grpc_stream_url_request req;
    const char *error;

    assert_int_equal(decode(msg, len, &req, &error), -1);
    return error;
}
#define DECODE_ERROR(lit) decode_error(lit, sizeof(lit) - 1)

static void assert_string(const struct talas_grpc_string *s, const char *want, size_t len)
{
    assert_int_equal(s->len, len);
    assert_memory_equal(s->data, want, len);
}

/* ------------------------------------------------------------ the reader */

static void test_fields(void **state)
{
    struct talas_grpc_stream_url_request req;
    const char *error;

    /* what grpcio writes for {audio_id, user_id "user-42", kind "hls", ttl 120} */
    DECODE_OK("\x0a\x10" TRACK "\x12\x07user-42\x1a\x03hls\x20\x78", &req);
    assert_string(&req.audio_id, TRACK, 16);
    assert_string(&req.user_id, "user-42", 7);
    assert_string(&req.kind, "hls", 3);
    assert_int_equal(req.ttl_seconds, 120);

    /* the empty message: every field absent */
    DECODE_OK("", &req);
    assert_null(req.audio_id.data);
    assert_int_equal(req.audio_id.len + req.user_id.len + req.kind.len, 0);
    assert_int_equal(req.ttl_seconds, 0);

    /* no buffer at all */
    assert_int_equal(talas_grpc_request_stream_url(NULL, 0, &req, &error), 0);
    assert_int_equal(req.ttl_seconds + req.audio_id.len, 0);

    /* fields in any order; an empty string is a zero length */
    DECODE_OK("\x20\x01\x12\x00\x0a\x01x", &req);
    assert_string(&req.audio_id, "x", 1);
    assert_int_equal(req.user_id.len, 0);
    assert_int_equal(req.ttl_seconds, 1);
}

static void test_nul_inside_strings(void **state)
{
    struct talas_grpc_stream_url_request req;

    DECODE_OK("\x0a\x13" TRACK "\0zz\x12\x06"
              "adm\0in\x1a\x07stream\0",
              &req);
    assert_string(&req.audio_id, TRACK "\0zz", 19);
    assert_string(&req.user_id, "adm\0in", 6);
    assert_string(&req.kind, "stream\0", 7);
    /* invalid UTF-8 passes through too: refusing it is the checker's job */
    DECODE_OK("\x12\x02\xff\xfe", &req);
    assert_string(&req.user_id, "\xff\xfe", 2);
}

static void test_negative_and_wide_ints(void **state)
{
    struct talas_grpc_stream_url_request req;

    /* int32 -1 as protobuf writes it: sign-extended to 10 bytes */
    DECODE_OK("\x20\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", &req);
    assert_int_equal(req.ttl_seconds, -1);
    /* and as a 5-byte uint32 */
    DECODE_OK("\x20\xff\xff\xff\xff\x0f", &req);
    assert_int_equal(req.ttl_seconds, -1);
    /* INT32_MIN; then a value above 32 bits keeps its low 32 (int32 rule) */
    DECODE_OK("\x20\x80\x80\x80\x80\xf8\xff\xff\xff\xff\x01", &req);
    assert_int_equal(req.ttl_seconds, INT32_MIN);
    DECODE_OK("\x20\x85\x80\x80\x80\x10", &req); /* 2^32 + 5 */
    assert_int_equal(req.ttl_seconds, 5);
    /* padded varints are still varints */
    DECODE_OK("\x20\x83\x80\x80\x00", &req);
    assert_int_equal(req.ttl_seconds, 3);
}

static void test_unknown_fields_skipped(void **state)
{
    struct talas_grpc_stream_url_request req;

    DECODE_OK("\x28\x96\x01"                         /* 5: varint 150 */
              "\x32\x03\x0a\x01z"                    /* 6: bytes that look like a field 1 */
              "\x39\x01\x02\x03\x04\x05\x06\x07\x08" /* 7: fixed64 */
              "\x45\x01\x02\x03\x04"                 /* 8: fixed32 */
              "\xc2\x3e\x02hi"                       /* 1000: a two-byte tag */
              "\xfa\xff\xff\xff\x0f\x00"             /* 2^29 - 1: the largest number */
              "\x0a\x10" TRACK,
              &req);
    assert_string(&req.audio_id, TRACK, 16);
    assert_int_equal(req.user_id.len, 0);
}

static void test_last_duplicate_wins(void **state)
{
    struct talas_grpc_stream_url_request req;

    DECODE_OK("\x12\x05"
              "admin\x0a\x01x\x20\x05\x12\x03"
              "bob\x0a\x10" TRACK "\x20\x07",
              &req);
    assert_string(&req.user_id, "bob", 3);
    assert_string(&req.audio_id, TRACK, 16);
    assert_int_equal(req.ttl_seconds, 7);
    /* an empty last value wins over a longer first one */
    DECODE_OK("\x12\x05"
              "admin\x12\x00",
              &req);
    assert_int_equal(req.user_id.len, 0);
}

static void test_malformed(void **state)
{
    /* truncated varints: in a tag, in a value, in a length */
    assert_string_equal(DECODE_ERROR("\x80"), "truncated varint");
    assert_string_equal(DECODE_ERROR("\x20"), "truncated varint");
    assert_string_equal(DECODE_ERROR("\x20\x80\x80"), "truncated varint");
    assert_string_equal(DECODE_ERROR("\x0a"), "truncated varint");
    assert_string_equal(DECODE_ERROR("\x0a\x10" TRACK "\x12\xff"), "truncated varint");
    /* varints over 64 bits: an 11th byte, or a 10th above 1 */
    assert_string_equal(DECODE_ERROR("\x20\xff\xff\xff\xff\xff\xff\xff\xff\xff\x81\x00"),
                        "varint above 64 bits");
    assert_string_equal(DECODE_ERROR("\x20\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02"), "varint above 64 bits");
    assert_string_equal(DECODE_ERROR("\x20\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01"),
                        "varint above 64 bits");
    /* lengths past the end, up to 2^64 - 1 */
    assert_string_equal(DECODE_ERROR("\x0a\x05"
                                     "abc"),
                        "length past the end of the message");
    assert_string_equal(DECODE_ERROR("\x12\x01"), "length past the end of the message");
    assert_string_equal(DECODE_ERROR("\x12\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"
                                     "abc"),
                        "length past the end of the message");
    assert_string_equal(DECODE_ERROR("\x12\x80\x80\x80\x80\x10"
                                     "abc"),
                        "length past the end of the message");
    /* fixed-width fields cut short */
    assert_string_equal(DECODE_ERROR("\x39\x01\x02\x03\x04\x05\x06\x07"), "truncated fixed-width field");
    assert_string_equal(DECODE_ERROR("\x45\x01\x02\x03"), "truncated fixed-width field");
    /* wire types: groups (3, 4) and the undefined 6 and 7 */
    assert_non_null(strstr(DECODE_ERROR("\x2b\x2c"), "group"));
    assert_non_null(strstr(DECODE_ERROR("\x2c"), "group"));
    assert_string_equal(DECODE_ERROR("\x2e\x00"), "unknown wire type");
    assert_string_equal(DECODE_ERROR("\x2f\x00"), "unknown wire type");
    /* field number 0, and a tag over 32 bits */
    assert_string_equal(DECODE_ERROR("\x02\x00"), "field number 0");
    assert_string_equal(DECODE_ERROR("\x00\x00"), "field number 0");
    assert_string_equal(DECODE_ERROR("\x82\x80\x80\x80\x10\x00"), "field tag above 32 bits");
    /* a known field with another wire type: named */
    assert_string_equal(DECODE_ERROR("\x08\x01"), "audio_id: wrong wire type (not a string)");
    assert_string_equal(DECODE_ERROR("\x15\x01\x02\x03\x04"), "user_id: wrong wire type (not a string)");
    assert_string_equal(DECODE_ERROR("\x19\x01\x02\x03\x04\x05\x06\x07\x08"),
                        "kind: wrong wire type (not a string)");
    assert_string_equal(DECODE_ERROR("\x22\x01\x05"), "ttl_seconds: wrong wire type (not a varint)");
    /* an error after good fields still fails the whole message */
    assert_string_equal(DECODE_ERROR("\x0a\x10" TRACK "\x12\x07user-42\x1a\x09hls"),
                        "length past the end of the message");
}

/* Every prefix of a good message is decoded within its bounds: either as
 * the fields it holds whole, or as an error. */
static void test_every_prefix(void **state)
{
    static const char msg[] =
        "\x0a\x10" TRACK "\x12\x06"
        "adm\0in\x1a\x03hls"
        "\x20\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01\x39\x01\x02\x03\x04\x05\x06\x07\x08";
    static const size_t ends[] = {0, 18, 26, 31, 42, 51}; /* where a field ends */
    struct talas_grpc_stream_url_request req;
    const char *error;

    for (size_t n = 0; n < sizeof(msg); n++) {
        int whole = 0;
        for (size_t i = 0; i < TALAS_ARRAY_SIZE(ends); i++)
            whole |= ends[i] == n;
        assert_int_equal(decode(msg, n, &req, &error), whole ? 0 : -1);
    }
    assert_int_equal(sizeof(msg) - 1, 51);
}

static void test_reader_stays_at_an_error(void **state)
{
    static const uint8_t msg[] = {0x20, 0x01, 0x2e, 0x00};
    struct talas_grpc_reader r;
    struct talas_grpc_field f;
    const char *error;

    talas_grpc_reader_init(&r, msg, sizeof(msg));
    assert_int_equal(talas_grpc_reader_next(&r, &f, &error), 1);
    assert_int_equal(f.number, 4);
    assert_int_equal(f.wire_type, TALAS_GRPC_WIRE_VARINT);
    assert_true(f.varint == 1);
    assert_int_equal(talas_grpc_reader_next(&r, &f, &error), -1);
    assert_int_equal(talas_grpc_reader_next(&r, &f, &error), -1);
    assert_string_equal(error, "unknown wire type");
}

/* ------------------------------------------------------ the field rules */

static const char *track_error(const char *s, size_t len)
{
    struct talas_mint_args a;
    const char *reason = NULL;

    talas_mint_args_init(&a);
    if (talas_mint_args_set_track(&a, s, len, &reason) == 0)
        return NULL;
    assert_string_equal(a.track, ""); /* unchanged */
    return reason;
}

static void test_rule_track(void **state)
{
    struct talas_mint_args a;
    const char *reason;

    talas_mint_args_init(&a);
    assert_int_equal(talas_mint_args_set_track(&a, TRACK, 16, &reason), 0);
    assert_string_equal(a.track, TRACK);
    assert_string_equal(track_error(TRACK "\0zz", 19), "contains a NUL byte");
    assert_string_equal(track_error("AbCdEfGh\0-012345", 16), "contains a NUL byte");
    assert_string_equal(track_error(TRACK "\xff", 17), "is not valid UTF-8");
    assert_non_null(strstr(track_error(TRACK "A", 17), "longer"));
    assert_non_null(strstr(track_error(TRACK, 15), "must be a track id"));
    assert_non_null(strstr(track_error("../../etc/passwd", 16), "must be a track id"));
    assert_non_null(strstr(track_error("AbCdEfGh_-01234\xc3\xa9", 17), "longer"));
    assert_non_null(strstr(track_error("", 0), "must be a track id"));
}

static const char *user_error(const char *s, size_t len)
{
    struct talas_mint_args a;
    const char *reason = NULL;

    talas_mint_args_init(&a);
    if (talas_mint_args_set_user(&a, s, len, &reason) == 0) {
        assert_int_equal(strlen(a.user), len);
        assert_memory_equal(a.user, s, len);
        return NULL;
    }
    assert_string_equal(a.user, "");
    return reason;
}

static void test_rule_user(void **state)
{
    char big[TALAS_MINT_USER_MAX + 2];

    assert_null(user_error("user-42", 7));
    assert_null(user_error("j\xc3\xb6rg \xf0\x9f\x8e\xb5", 10));
    assert_string_equal(user_error("adm\0in", 6), "contains a NUL byte");
    assert_string_equal(user_error("admin\0", 6), "contains a NUL byte");
    assert_string_equal(user_error("\0", 1), "contains a NUL byte");
    assert_string_equal(user_error("adm\xffin", 6), "is not valid UTF-8");
    assert_string_equal(user_error("\xc0\x80", 2), "is not valid UTF-8");     /* an overlong NUL */
    assert_string_equal(user_error("\xed\xa0\x80", 3), "is not valid UTF-8"); /* a surrogate */
    assert_string_equal(user_error("caf\xc3", 4), "is not valid UTF-8");      /* cut in a character */
    memset(big, 'u', sizeof(big));
    assert_null(user_error(big, TALAS_MINT_USER_MAX));
    assert_string_equal(user_error(big, TALAS_MINT_USER_MAX + 1), "is longer than 127 bytes");
    assert_string_equal(user_error("", 0), "must be 1 to 127 bytes");
}

static void test_rule_kind(void **state)
{
    static const struct {
        const char *s;
        size_t len;
        int kind; /* 0: refused */
    } cases[] = {
        {"stream", 6, TALAS_TOKEN_STREAM},
        {"preview", 7, TALAS_TOKEN_PREVIEW},
        {"hls", 3, TALAS_TOKEN_HLS},
        {"stream\0", 7, 0},
        {"hls\0zz", 6, 0},
        {"STREAM", 6, 0},
        {"strea", 5, 0},
        {"previews", 8, 0},
        {"", 0, 0},
        {"hl\xff", 3, 0},
    };

    for (size_t i = 0; i < TALAS_ARRAY_SIZE(cases); i++) {
        struct talas_mint_args a;
        const char *reason;

        talas_mint_args_init(&a);
        a.kind = TALAS_TOKEN_ALL; /* to see that a refusal leaves it */
        int rc = talas_mint_args_set_kind(&a, cases[i].s, cases[i].len, &reason);
        assert_int_equal(rc, cases[i].kind ? 0 : -1);
        assert_int_equal(a.kind, cases[i].kind ? cases[i].kind : TALAS_TOKEN_ALL);
    }
}

static void test_rule_ttl(void **state)
{
    struct talas_mint_args a;
    const char *reason;

    talas_mint_args_init(&a);
    assert_true(a.ttl_s == 0 && a.kind == TALAS_TOKEN_STREAM);
    assert_int_equal(talas_mint_args_set_ttl(&a, 0, 86400, &reason), -1);
    assert_int_equal(talas_mint_args_set_ttl(&a, -1, 86400, &reason), -1);
    assert_int_equal(talas_mint_args_set_ttl(&a, INT64_MIN, 86400, &reason), -1);
    assert_int_equal(talas_mint_args_set_ttl(&a, 86401, 86400, &reason), -1);
    assert_true(a.ttl_s == 0);
    assert_int_equal(talas_mint_args_set_ttl(&a, 86400, 86400, &reason), 0);
    assert_true(a.ttl_s == 86400);
    assert_int_equal(talas_mint_args_set_ttl(&a, 1, 86400, &reason), 0);
    assert_true(a.ttl_s == 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_nul_inside_strings),
        cmocka_unit_test(test_negative_and_wide_ints),
        cmocka_unit_test(test_unknown_fields_skipped),
        cmocka_unit_test(test_last_duplicate_wins),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_every_prefix),
        cmocka_unit_test(test_reader_stays_at_an_error),
        cmocka_unit_test(test_rule_track),
        cmocka_unit_test(test_rule_user),
        cmocka_unit_test(test_rule_kind),
        cmocka_unit_test(test_rule_ttl),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
