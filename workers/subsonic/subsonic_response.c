/*
 * subsonic_response.c - Subsonic API documents in XML, JSON and JSONP
 * (subsonic_response.h).
 *
 * Entry points: talas_subsonic_writer_begin / _end, talas_subsonic_elem_*,
 * talas_subsonic_list_*, talas_subsonic_attr_*, talas_subsonic_values,
 * talas_subsonic_write_error, talas_subsonic_content_type. Pure; logs
 * nothing. JSON goes through core/json.c (invalid UTF-8 replaced); XML
 * attribute values are escaped here, and the control characters XML 1.0
 * cannot carry are dropped.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "subsonic/subsonic_response.h"

const char *talas_subsonic_content_type(enum talas_subsonic_format format)
{
    switch (format) {
    case TALAS_SUBSONIC_JSON:
        return "application/json; charset=utf-8";
    case TALAS_SUBSONIC_JSONP:
        return "application/javascript; charset=utf-8";
    default:
        return "text/xml; charset=utf-8";
    }
}

static int is_xml(const struct talas_subsonic_writer *w)
{
    return w->format == TALAS_SUBSONIC_XML;
}

/* XML: ends the start tag, so that children may follow. */
static void close_tag(struct talas_subsonic_writer *w)
{
    if (w->tag_open) {
        talas_buf_puts(&w->out, ">");
        w->tag_open = 0;
    }
}

static void xml_escape(struct talas_buf *out, const char *s)
{
    char *clean = talas_utf8_sanitize(s, strlen(s));

    for (const unsigned char *p = (const unsigned char *)clean; *p != '\0'; p++) {
        switch (*p) {
        case '&':
            talas_buf_puts(out, "&amp;");
            break;
        case '<':
            talas_buf_puts(out, "&lt;");
            break;
        case '>':
            talas_buf_puts(out, "&gt;");
            break;
        case '"':
            talas_buf_puts(out, "&quot;");
            break;
        case '\t':
            talas_buf_puts(out, "&#9;");
            break;
        case '\n':
            talas_buf_puts(out, "&#10;");
            break;
        case '\r':
            talas_buf_puts(out, "&#13;");
            break;
        default:
            if (*p >= 0x20)
                talas_buf_append(out, p, 1);
        }
    }
    free(clean);
}

static void push(struct talas_subsonic_writer *w, const char *name, int is_list)
{
    if (w->depth == TALAS_SUBSONIC_DEPTH_MAX)
        panic("%s: documents nest at most %d deep", __func__, TALAS_SUBSONIC_DEPTH_MAX);
    w->stack[w->depth].name = name;
    w->stack[w->depth].is_list = is_list;
    w->depth++;
}

void talas_subsonic_writer_begin(struct talas_subsonic_writer *w, enum talas_subsonic_format format,
                                 const char *callback, int ok)
{
    memset(w, 0, sizeof(*w));
    w->format = format;
    w->callback = callback;
    if (is_xml(w)) {
        talas_buf_puts(&w->out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        talas_buf_puts(&w->out, "<subsonic-response xmlns=\"http://subsonic.org/restapi\"");
        w->tag_open = 1;
        push(w, "subsonic-response", 0);
    } else {
        if (format == TALAS_SUBSONIC_JSONP) {
            talas_buf_puts(&w->out, callback);
            talas_buf_puts(&w->out, "(");
        }
        talas_json_init(&w->json, &w->out);
        talas_json_object_begin(&w->json);
        talas_json_key(&w->json, "subsonic-response");
        talas_json_object_begin(&w->json);
        push(w, "subsonic-response", 0);
    }
    talas_subsonic_attr_str(w, "status", ok ? "ok" : "failed");
    talas_subsonic_attr_str(w, "version", TALAS_SUBSONIC_API_VERSION);
    talas_subsonic_attr_str(w, "type", "talas");
    talas_subsonic_attr_str(w, "serverVersion", PACKAGE_VERSION);
    talas_subsonic_attr_bool(w, "openSubsonic", 1);
}

void talas_subsonic_elem_begin(struct talas_subsonic_writer *w, const char *name)
{
    int in_list = w->depth > 0 && w->stack[w->depth - 1].is_list;

    if (in_list)
        name = w->stack[w->depth - 1].name;
    if (is_xml(w)) {
        close_tag(w);
        talas_buf_printf(&w->out, "<%s", name);
        w->tag_open = 1;
    } else {
        if (!in_list)
            talas_json_key(&w->json, name);
        talas_json_object_begin(&w->json);
    }
    push(w, name, 0);
}

void talas_subsonic_elem_end(struct talas_subsonic_writer *w)
{
    const char *name = w->stack[--w->depth].name;

    if (!is_xml(w)) {
        talas_json_object_end(&w->json);
        return;
    }
    if (w->tag_open) {
        talas_buf_puts(&w->out, "/>");
        w->tag_open = 0;
    } else {
        talas_buf_printf(&w->out, "</%s>", name);
    }
}

void talas_subsonic_list_begin(struct talas_subsonic_writer *w, const char *name)
{
    if (is_xml(w)) {
        close_tag(w);
    } else {
        talas_json_key(&w->json, name);
        talas_json_array_begin(&w->json);
    }
    push(w, name, 1);
}

void talas_subsonic_list_end(struct talas_subsonic_writer *w)
{
    w->depth--;
    if (!is_xml(w))
        talas_json_array_end(&w->json);
}

void talas_subsonic_attr_str(struct talas_subsonic_writer *w, const char *key, const char *value)
{
    if (!is_xml(w)) {
        talas_json_key(&w->json, key);
        talas_json_string(&w->json, value);
        return;
    }
    talas_buf_printf(&w->out, " %s=\"", key);
    xml_escape(&w->out, value);
    talas_buf_puts(&w->out, "\"");
}

void talas_subsonic_attr_int(struct talas_subsonic_writer *w, const char *key, int64_t value)
{
    if (!is_xml(w)) {
        talas_json_key(&w->json, key);
        talas_json_int(&w->json, value);
        return;
    }
    talas_buf_printf(&w->out, " %s=\"%" PRId64 "\"", key, value);
}

void talas_subsonic_attr_bool(struct talas_subsonic_writer *w, const char *key, int value)
{
    if (!is_xml(w)) {
        talas_json_key(&w->json, key);
        talas_json_bool(&w->json, value);
        return;
    }
    talas_buf_printf(&w->out, " %s=\"%s\"", key, value ? "true" : "false");
}

void talas_subsonic_values(struct talas_subsonic_writer *w, const char *name, const int64_t *v, size_t n)
{
    if (!is_xml(w)) {
        talas_json_key(&w->json, name);
        talas_json_array_begin(&w->json);
        for (size_t i = 0; i < n; i++)
            talas_json_int(&w->json, v[i]);
        talas_json_array_end(&w->json);
        return;
    }
    close_tag(w);
    for (size_t i = 0; i < n; i++)
        talas_buf_printf(&w->out, "<%s>%" PRId64 "</%s>", name, v[i], name);
}

void talas_subsonic_text(struct talas_subsonic_writer *w, const char *value)
{
    if (!is_xml(w)) {
        talas_json_key(&w->json, "value");
        talas_json_string(&w->json, value);
        return;
    }
    close_tag(w);
    xml_escape(&w->out, value);
}

void talas_subsonic_writer_end(struct talas_subsonic_writer *w)
{
    while (w->depth > 1) {
        if (w->stack[w->depth - 1].is_list)
            talas_subsonic_list_end(w);
        else
            talas_subsonic_elem_end(w);
    }
    w->depth = 0;
    if (is_xml(w)) {
        talas_buf_puts(&w->out, w->tag_open ? "/>\n" : "</subsonic-response>\n");
        w->tag_open = 0;
        return;
    }
    talas_json_object_end(&w->json);
    talas_json_object_end(&w->json);
    if (w->format == TALAS_SUBSONIC_JSONP)
        talas_buf_puts(&w->out, ");");
}

void talas_subsonic_write_error(struct talas_subsonic_writer *w, enum talas_subsonic_format format,
                                const char *callback, int code, const char *message)
{
    talas_subsonic_writer_begin(w, format, callback, 0);
    talas_subsonic_elem_begin(w, "error");
    talas_subsonic_attr_int(w, "code", code);
    talas_subsonic_attr_str(w, "message", message);
    talas_subsonic_elem_end(w);
    talas_subsonic_writer_end(w);
}
