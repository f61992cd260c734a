/*
 * fuzz_ws.c - the /api/ws protocol parsers (workers/realtime/ws_protocol.c): a
 * client's text frame (talas_ws_command_parse), a backend's POST
 * /api/events body (talas_ws_publish_parse), and the routing read of an
 * event (talas_ws_event_info_read, talas_ws_filters_match).
 *
 * Input: byte 0 picks the parser, the rest is the text.
 * Checks what ws_protocol.h promises: a failed command parse has a reason
 * and still a command_id ("" at least); a published event is re-written
 * canonically, so it parses again as an event with the same name and
 * routes with the filters a subscriber could give; a command's strings are
 * NUL-terminated.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "realtime/ws_protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void command(const char *text, size_t len)
{
    struct talas_ws_command cmd;
    char *error = NULL;
    int rc;

    memset(&cmd, 0, sizeof(cmd));
    rc = talas_ws_command_parse(text, len, &cmd, &error);
    if (rc != 0 && (error == NULL || cmd.command_id == NULL))
        abort();
    if (rc == 0) {
        if (cmd.command_id == NULL || talas_ws_command_name(cmd.type) == NULL)
            abort();
        for (size_t i = 0; i < cmd.event_count; i++)
            if (cmd.events[i] == NULL || !talas_ws_event_name_valid(cmd.events[i]))
                abort();
        for (size_t i = 0; i < cmd.filter_count; i++)
            if (cmd.filters[i].key == NULL || cmd.filters[i].value == NULL)
                abort();
    }
    free(error);
    talas_ws_command_free(&cmd);
}

static void publish(const char *text, size_t len)
{
    struct talas_ws_publish p;
    struct talas_ws_event_info info;
    char *error = NULL;

    memset(&p, 0, sizeof(p));
    if (talas_ws_publish_parse(text, len, &p, &error) == 0) {
        /* what the hub routes must read back as an event */
        if (talas_ws_event_info_read(p.json.data, p.json.len, &info) != 0 || !talas_ws_event_name_valid(info.name))
            abort();
        if (p.target != TALAS_WS_TO_ALL && p.to == NULL)
            abort();
        for (size_t i = 0; i < info.attr_count; i++) {
            struct talas_ws_filter f = {info.attrs[i].key, info.attrs[i].value};
            if (!talas_ws_filters_match(&info, &f, 1))
                abort();
        }
    } else if (error == NULL) {
        abort();
    }
    free(error);
    talas_ws_publish_free(&p);
}

static void route(const char *text, size_t len)
{
    struct talas_ws_event_info info;

    if (talas_ws_event_info_read(text, len, &info) == 0) {
        if (memchr(info.name, '\0', sizeof(info.name)) == NULL || info.attr_count > TALAS_WS_MAX_ATTRS)
            abort();
        for (size_t i = 0; i < info.attr_count; i++) {
            struct talas_ws_filter f = {info.attrs[i].key, info.attrs[i].value};
            if (!talas_ws_filters_match(&info, &f, 1))
                abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text;

    if (size < 1)
        return 0;
    /* a copy of exactly the frame's bytes: no terminator to lean on */
    text = malloc(size - 1 > 0 ? size - 1 : 1);
    if (text == NULL)
        abort();
    memcpy(text, data + 1, size - 1);
    switch (data[0] % 3) {
    case 0:
        command(text, size - 1);
        break;
    case 1:
        publish(text, size - 1);
        break;
    default:
        route(text, size - 1);
        break;
    }
    free(text);
    return 0;
}
