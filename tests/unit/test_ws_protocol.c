/*
 * test_ws_protocol.c - commands, events and the publish envelope of /api/ws
 * (workers/realtime/ws_protocol.c): what parses, what is refused and why, and that
 * no input, truncated or mangled, makes the reader misbehave.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "realtime/ws_protocol.h"

static int parse(const char *text, struct talas_ws_command *cmd, char **error)
{
    *error = NULL;
    return talas_ws_command_parse(text, strlen(text), cmd, error);
}

static void test_seed_commands(void **state)
{
    struct talas_ws_command cmd;
    char *error;

    assert_int_equal(parse("{\"command\":\"Play\",\"command_id\":\"cmd_123\",\"track_id\":\"song_456\","
                           "\"start_position_ms\":30000}",
                           &cmd, &error),
                     0);
    assert_int_equal(cmd.type, TALAS_WS_PLAY);
    assert_string_equal(cmd.command_id, "cmd_123");
    assert_string_equal(cmd.track_id, "song_456");
    assert_true(cmd.has_position_ms);
    assert_int_equal(cmd.position_ms, 30000);
    talas_ws_command_free(&cmd);

    /* a browser's currentTime * 1000 is fractional */
    assert_int_equal(
        parse("{\"command\":\"Seek\",\"command_id\":\"p\",\"track_id\":\"t\",\"position_ms\":1234.56}", &cmd,
              &error),
        0);
    assert_int_equal(cmd.position_ms, 1234);
    talas_ws_command_free(&cmd);

    assert_int_equal(
        parse("{\"command\":\"Subscribe\",\"command_id\":\"sub_001\",\"events\":[\"PlaybackStarted\","
              "\"PlaybackProgress\",\"TrackLiked\"],\"filters\":{\"user_id\":\"user_123\","
              "\"track_genre\":\"electronic\"}}",
              &cmd, &error),
        0);
    assert_int_equal(cmd.type, TALAS_WS_SUBSCRIBE);
    assert_int_equal(cmd.event_count, 3);
    assert_string_equal(cmd.events[2], "TrackLiked");
    assert_int_equal(cmd.filter_count, 2);
    assert_string_equal(cmd.filters[0].key, "user_id");
    assert_string_equal(cmd.filters[1].value, "electronic");
    talas_ws_command_free(&cmd);

    assert_int_equal(parse("{\"command\":\"AddToPlaylist\",\"command_id\":\"a\",\"playlist_id\":\"p\","
                           "\"track_id\":\"t\",\"position\":null,\"extra\":[1,{\"x\":2}]}",
                           &cmd, &error),
                     0);
    assert_false(cmd.has_position);
    talas_ws_command_free(&cmd);

    /* the seeds' PlaylistShared event, sent by a playlist's owner */
    assert_int_equal(parse("{\"command\":\"PlaylistShared\",\"command_id\":\"s\",\"playlist_id\":\"p\","
                           "\"from_user\":\"al\",\"to_users\":[\"bob\",\"carol\"]}",
                           &cmd, &error),
                     0);
    assert_int_equal(cmd.type, TALAS_WS_PLAYLIST_SHARED);
    assert_string_equal(cmd.playlist_id, "p");
    assert_string_equal(cmd.from_user, "al");
    assert_int_equal(cmd.to_user_count, 2);
    assert_string_equal(cmd.to_users[1], "carol");
    talas_ws_command_free(&cmd);

    assert_int_equal(parse(" {\"command\":\"Ping\",\"command_id\":\"ping_001\"} ", &cmd, &error), 0);
    assert_int_equal(cmd.type, TALAS_WS_PING);
    talas_ws_command_free(&cmd);
}

static void test_refused(void **state)
{
    static const struct {
        const char *text, *command_id, *error;
    } cases[] = {
        {"", "", "invalid JSON"},
        {"{", "", "invalid JSON"},
        {"[]", "", "must be a JSON object"},
        {"{\"command\":\"Play\",\"command_id\":\"a\"}", "a", "track_id: required"},
        {"{\"command\":\"Play\",\"command_id\":\"a\",\"track_id\":1}", "a", "track_id: must be a string"},
        {"{\"command\":\"Play\",\"command_id\":\"a\",\"track_id\":\"\"}", "a", "track_id: must be 1 to"},
        {"{\"command\":\"Seek\",\"command_id\":\"a\",\"track_id\":\"t\",\"position_ms\":-1}", "a",
         "position_ms: must be a non-negative integer"},
        {"{\"command\":\"Seek\",\"command_id\":\"a\",\"track_id\":\"t\",\"position_ms\":1e300}", "a",
         "position_ms: must be"},
        {"{\"command\":\"Seek\",\"command_id\":\"a\",\"track_id\":\"t\"}", "a", "position_ms: required"},
        {"{\"command\":\"Ping\"}", "", "command_id: required"},
        {"{\"command\":\"Ping\",\"command_id\":\"\"}", "", "command_id: must be a string"},
        {"{\"command\":5,\"command_id\":\"a\"}", "a", "command: must be a string"},
        {"{\"command\":\"Jump\",\"command_id\":\"a\"}", "a", "unknown command"},
        {"{\"command\":\"Subscribe\",\"command_id\":\"a\"}", "a", "events: required"},
        {"{\"command\":\"Subscribe\",\"command_id\":\"a\",\"events\":[1]}", "a", "array of strings"},
        {"{\"command\":\"Subscribe\",\"command_id\":\"a\",\"events\":[],\"filters\":[]}", "a",
         "filters: must be"},
        {"{\"command\":\"Ping\",\"command_id\":\"a\",\"command\":\"Ping\"}", "", "duplicate"},
        {"{\"a\":[[[[[[1]]]]]]}", "", "nested too deeply"},
        {"{\"command\":\"Ping\",\"command_id\":\"a\"} x", "", "garbage"},
        {"{\"command\":\"Ping\",\"command_id\":\"\\u0000\"}", "", "NUL"},
        {"{\"command\":\"PlaylistShared\",\"command_id\":\"a\",\"playlist_id\":\"p\"}", "a",
         "to_users: required"},
        {"{\"command\":\"PlaylistShared\",\"command_id\":\"a\",\"playlist_id\":\"p\",\"to_users\":[]}", "a",
         "to_users: must be an array of 1 to 64"},
        {"{\"command\":\"PlaylistShared\",\"command_id\":\"a\",\"playlist_id\":\"p\",\"to_users\":[\"\"]}",
         "a", "to_users: user ids"},
        {"{\"command\":\"PlaylistShared\",\"command_id\":\"a\",\"to_users\":[\"b\"]}", "a",
         "playlist_id: required"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct talas_ws_command cmd;
        char *error;
        if (parse(cases[i].text, &cmd, &error) != -1)
            fail_msg("accepted: %s", cases[i].text);
        if (strstr(error, cases[i].error) == NULL)
            fail_msg("%s: error \"%s\" lacks \"%s\"", cases[i].text, error, cases[i].error);
        assert_string_equal(cmd.command_id, cases[i].command_id);
        free(error);
        talas_ws_command_free(&cmd);
    }
}

#define ROOM "\"room_id\":\"0123456789abcdef01234567\""

/* The listening rooms' commands: their members read, their refusals
 * starting with "invalid: ". */
static void test_room_commands(void **state)
{
    static const struct {
        const char *text, *error;
    } refused[] = {
        {"{\"command\":\"CreateRoom\",\"command_id\":\"a\"}", "invalid: name: required"},
        {"{\"command\":\"CreateRoom\",\"command_id\":\"a\",\"name\":\"\"}",
         "invalid: name: must be 1 to 100"},
        {"{\"command\":\"CreateRoom\",\"command_id\":\"a\",\"name\":\"n\",\"mode\":\"solo\"}",
         "invalid: mode: must be"},
        {"{\"command\":\"JoinRoom\",\"command_id\":\"a\"}", "invalid: room_id: required"},
        {"{\"command\":\"JoinRoom\",\"command_id\":\"a\",\"room_id\":\"0123456789ABCDEF01234567\"}",
         "invalid: room_id: must be 24 lowercase"},
        {"{\"command\":\"JoinRoom\",\"command_id\":\"a\",\"room_id\":7}",
         "invalid: room_id: must be a string"},
        {"{\"command\":\"RoomSeek\",\"command_id\":\"a\"," ROOM "}", "invalid: position_ms: required"},
        {"{\"command\":\"RoomPlay\",\"command_id\":\"a\"," ROOM ",\"track_id\":\"t\",\"entry_id\":\"e\"}",
         "invalid: track_id, entry_id: give one"},
        {"{\"command\":\"RoomQueueAdd\",\"command_id\":\"a\"," ROOM "}",
         "invalid: track_id, artist, playlist_id"},
        {"{\"command\":\"RoomQueueAdd\",\"command_id\":\"a\"," ROOM ",\"track_id\":\"t\",\"artist\":\"x\"}",
         "invalid: track_id, artist, playlist_id: give exactly one"},
        {"{\"command\":\"RoomQueueMove\",\"command_id\":\"a\"," ROOM ",\"entry_id\":\"e\"}",
         "invalid: position: required"},
        {"{\"command\":\"RoomQueueRemove\",\"command_id\":\"a\"," ROOM "}", "invalid: entry_id: required"},
        {"{\"command\":\"RoomMemberStatus\",\"command_id\":\"a\"," ROOM ",\"position_ms\":5}",
         "invalid: buffering: required"},
        {"{\"command\":\"RoomMemberStatus\",\"command_id\":\"a\"," ROOM ",\"position_ms\":5,\"buffering\":1}",
         "invalid: buffering: must be true or false"},
        {"{\"command\":\"TimeSync\",\"command_id\":\"a\",\"client_ms\":\"now\"}", "invalid: client_ms"},
        {"{\"command\":\"TimeSync\"}", "invalid: command_id: required"},
    };
    struct talas_ws_command cmd;
    char *error = NULL, name[128];

    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        if (parse(refused[i].text, &cmd, &error) != -1)
            fail_msg("accepted: %s", refused[i].text);
        if (strncmp(error, refused[i].error, strlen(refused[i].error)) != 0)
            fail_msg("%s: error \"%s\" does not start with \"%s\"", refused[i].text, error, refused[i].error);
        free(error);
        talas_ws_command_free(&cmd);
    }
    /* 100 characters of two bytes each: a name; 101: not */
    strcpy(name, "{\"command\":\"CreateRoom\",\"command_id\":\"a\",\"mode\":\"host\",\"name\":\"");
    {
        struct talas_buf b = {0};
        talas_buf_append(&b, name, strlen(name));
        for (int i = 0; i < 100; i++)
            talas_buf_append(&b, "\xc3\xa9", 2);
        talas_buf_append(&b, "\"}", 2);
        assert_int_equal(talas_ws_command_parse(b.data, b.len, &cmd, &error), 0);
        assert_int_equal(cmd.type, TALAS_WS_CREATE_ROOM);
        assert_int_equal(cmd.host_mode, 1);
        assert_int_equal(strlen(cmd.name), 200);
        talas_ws_command_free(&cmd);
        b.len -= 2;
        talas_buf_append(&b, "\xc3\xa9\"}", 4);
        assert_int_equal(talas_ws_command_parse(b.data, b.len, &cmd, &error), -1);
        free(error);
        talas_ws_command_free(&cmd);
        talas_buf_free(&b);
    }
    assert_int_equal(
        parse("{\"command\":\"CreateRoom\",\"command_id\":\"a\",\"name\":\"<b>x</b>\"}", &cmd, &error), 0);
    assert_string_equal(cmd.name, "<b>x</b>");
    assert_int_equal(cmd.host_mode, 0);
    talas_ws_command_free(&cmd);
    assert_int_equal(
        parse("{\"command\":\"JoinRoom\",\"command_id\":\"a\"," ROOM ",\"invite\":\"tok\"}", &cmd, &error),
        0);
    assert_int_equal(cmd.type, TALAS_WS_JOIN_ROOM);
    assert_string_equal(cmd.room_id, "0123456789abcdef01234567");
    assert_string_equal(cmd.invite, "tok");
    talas_ws_command_free(&cmd);
    assert_int_equal(parse("{\"command\":\"RoomPlay\",\"command_id\":\"a\"," ROOM "}", &cmd, &error), 0);
    assert_int_equal(cmd.type, TALAS_WS_ROOM_PLAY);
    assert_null(cmd.track_id);
    assert_null(cmd.entry_id);
    assert_int_equal(cmd.has_position_ms, 0);
    talas_ws_command_free(&cmd);
    assert_int_equal(parse("{\"command\":\"RoomQueueAdd\",\"command_id\":\"a\"," ROOM
                           ",\"artist\":\"Nina\",\"position\":2}",
                           &cmd, &error),
                     0);
    assert_string_equal(cmd.artist, "Nina");
    assert_int_equal(cmd.position, 2);
    assert_int_equal(cmd.has_position, 1);
    talas_ws_command_free(&cmd);
    assert_int_equal(parse("{\"command\":\"RoomMemberStatus\",\"command_id\":\"a\"," ROOM
                           ",\"position_ms\":1500.7,\"buffering\":true}",
                           &cmd, &error),
                     0);
    assert_int_equal(cmd.position_ms, 1500);
    assert_int_equal(cmd.buffering, 1);
    talas_ws_command_free(&cmd);
    assert_int_equal(
        parse("{\"command\":\"TimeSync\",\"command_id\":\"a\",\"client_ms\":12.5}", &cmd, &error), 0);
    assert_int_equal(cmd.type, TALAS_WS_TIME_SYNC);
    assert_int_equal(cmd.has_client_ms, 1);
    assert_true(cmd.client_ms == 12.5);
    assert_true(talas_ws_command_is_room(cmd.type));
    talas_ws_command_free(&cmd);
    assert_int_equal(parse("{\"command\":\"TimeSync\",\"command_id\":\"a\"}", &cmd, &error), 0);
    assert_int_equal(cmd.has_client_ms, 0);
    talas_ws_command_free(&cmd);
    assert_false(talas_ws_command_is_room(TALAS_WS_PLAYLIST_SHARED));
    assert_true(talas_ws_event_name_valid("RoomState"));
    assert_true(talas_ws_event_name_valid("RoomQueueUpdated"));
}

/* Every prefix of valid commands, and every byte flipped: never a crash,
 * always 0 or -1 with an error (run under ASan by scripts/check). */
static void test_mangled(void **state)
{
    static const char *const docs[] = {
        "{\"command\":\"Subscribe\",\"command_id\":\"s\",\"events\":[\"PlaybackStarted\"],"
        "\"filters\":{\"user_id\":\"u\\u00e9\\ud83d\\ude00\"}}",
        "{\"command\":\"Seek\",\"command_id\":\"s\",\"track_id\":\"t\",\"position_ms\":-0.5e1}",
        "{\"command\":\"PlaylistShared\",\"command_id\":\"s\",\"playlist_id\":\"p\",\"to_users\":[\"a\","
        "\"b\"]}",
    };

    for (size_t d = 0; d < sizeof(docs) / sizeof(docs[0]); d++) {
        size_t len = strlen(docs[d]);
        char *copy = malloc(len);
        for (size_t n = 0; n <= len; n++) {
            struct talas_ws_command cmd;
            char *error = NULL;
            memcpy(copy, docs[d], n);
            if (talas_ws_command_parse(copy, n, &cmd, &error) != 0)
                assert_non_null(error);
            free(error);
            talas_ws_command_free(&cmd);
        }
        for (size_t i = 0; i < len; i++)
            for (int bit = 0; bit < 8; bit++) {
                struct talas_ws_command cmd;
                char *error = NULL;
                memcpy(copy, docs[d], len);
                copy[i] ^= (char)(1 << bit);
                if (talas_ws_command_parse(copy, len, &cmd, &error) != 0)
                    assert_non_null(error);
                free(error);
                talas_ws_command_free(&cmd);
            }
        free(copy);
    }
}

static void test_command_response(void **state)
{
    struct talas_buf out = {0};

    talas_ws_command_response(&out, "cmd_123", 1, "{\"track_duration_ms\":210000,\"quality\":\"high\"}", 45,
                              NULL);
    talas_buf_append(&out, "", 1);
    assert_string_equal(out.data,
                        "{\"event\":\"CommandResponse\",\"command_id\":\"cmd_123\",\"success\":true,"
                        "\"data\":{\"track_duration_ms\":210000,\"quality\":\"high\"},\"error\":null}");
    out.len = 0;
    talas_ws_command_response(&out, "", 0, NULL, 0, "bad \"thing\"");
    talas_buf_append(&out, "", 1);
    assert_string_equal(out.data, "{\"event\":\"CommandResponse\",\"command_id\":\"\",\"success\":false,"
                                  "\"data\":null,\"error\":\"bad \\\"thing\\\"\"}");
    talas_buf_free(&out);
}

static void test_filters(void **state)
{
    const char *ev = "{\"event\":\"PlaybackStarted\",\"track_id\":\"t1\",\"user_id\":\"u1\",\"timestamp\":5}";
    struct talas_ws_filter user = {"user_id", "u1"}, other = {"user_id", "u2"}, genre = {"track_genre", "x"};
    struct talas_ws_event_info info;

    assert_int_equal(talas_ws_event_info_read(ev, strlen(ev), &info), 0);
    assert_string_equal(info.name, "PlaybackStarted");
    assert_int_equal(info.attr_count, 2);
    assert_true(talas_ws_filters_match(&info, NULL, 0));
    assert_true(talas_ws_filters_match(&info, &user, 1));
    assert_false(talas_ws_filters_match(&info, &other, 1));
    /* a member the event does not have never matches */
    assert_false(talas_ws_filters_match(&info, &genre, 1));
    assert_int_equal(talas_ws_event_info_read("{\"x\":1}", 7, &info), -1);
    assert_int_equal(talas_ws_event_info_read("[", 1, &info), -1);
}

static void test_publish(void **state)
{
    struct talas_ws_publish p;
    char *error = NULL;
    const char *ok = "{\"send_to_user\":\"u1\",\"event\":{\"total_likes\":127,\"event\":\"TrackLiked\","
                     "\"user_id\":\"u2\",\"track_id\":\"t\"}}";

    assert_int_equal(talas_ws_publish_parse(ok, strlen(ok), &p, &error), 0);
    assert_int_equal(p.target, TALAS_WS_TO_USER);
    assert_string_equal(p.to, "u1");
    talas_buf_append(&p.json, "", 1);
    /* rewritten in the seed's field order */
    assert_string_equal(
        p.json.data, "{\"event\":\"TrackLiked\",\"track_id\":\"t\",\"user_id\":\"u2\",\"total_likes\":127}");
    assert_null(p.playlist_id);
    talas_ws_publish_free(&p);

    /* a PlaylistShared also says what the store records */
    ok = "{\"send_to_user\":\"bob\",\"event\":{\"event\":\"PlaylistShared\",\"playlist_id\":\"p\","
         "\"from_user\":\"al\",\"to_users\":[\"bob\",\"carol\"]}}";
    assert_int_equal(talas_ws_publish_parse(ok, strlen(ok), &p, &error), 0);
    assert_string_equal(p.playlist_id, "p");
    assert_int_equal(p.to_user_count, 2);
    assert_string_equal(p.to_users[0], "bob");
    assert_string_equal(p.to_users[1], "carol");
    talas_ws_publish_free(&p);

    static const struct {
        const char *text, *error;
    } bad[] = {
        {"{}", "event: required"},
        {"{\"event\":{\"event\":\"CommandResponse\"}}", "cannot be published"},
        {"{\"event\":{\"event\":\"ServerMessage\",\"message\":\"m\"}}", "event.level: required"},
        {"{\"event\":{\"event\":\"ServerMessage\",\"message\":\"m\",\"level\":\"info\"}}", "event.level"},
        {"{\"event\":{\"event\":\"TrackShared\",\"track_id\":\"t\",\"from_user\":\"f\",\"to_users\":[1]}}",
         "to_users"},
        {"{\"event\":{\"event\":\"UserFollowed\",\"follower_id\":\"a\",\"followed_id\":\"b\",\"x\":1}}",
         "not a field"},
        {"{\"event\":{\"event\":\"UserFollowed\",\"follower_id\":\"a\",\"followed_id\":\"b\"},"
         "\"send_to_user\":\"u\",\"send_to_connection\":\"c\"}",
         "not both"},
        {"{\"event\":{},\"to\":1}", "unknown member"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        error = NULL;
        if (talas_ws_publish_parse(bad[i].text, strlen(bad[i].text), &p, &error) != -1)
            fail_msg("accepted: %s", bad[i].text);
        if (strstr(error, bad[i].error) == NULL)
            fail_msg("%s: error \"%s\" lacks \"%s\"", bad[i].text, error, bad[i].error);
        free(error);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_commands), cmocka_unit_test(test_refused),
        cmocka_unit_test(test_mangled),       cmocka_unit_test(test_command_response),
        cmocka_unit_test(test_filters),       cmocka_unit_test(test_publish),
        cmocka_unit_test(test_room_commands),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
