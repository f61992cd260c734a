/*
 * subsonic_response.h - the documents of the Subsonic API, written once
 * for three formats: XML (the default), JSON and JSONP (f=, callback=).
 *
 * A handler describes the answer as a tree: elements with attributes,
 * lists of elements, lists of numbers; the writer makes it XML
 * (<subsonic-response xmlns=...><song id=".."/></subsonic-response>) or
 * the API's JSON mapping ({"subsonic-response":{..., "song":[{...}]}}).
 * Every document carries status, version (TALAS_SUBSONIC_API_VERSION),
 * type "talas", serverVersion and openSubsonic true. Pure: no h2o; the
 * writer owns its buffer until talas_subsonic_writer_end hands it over.
 */
#ifndef TALAS_SUBSONIC_RESPONSE_H
#define TALAS_SUBSONIC_RESPONSE_H

#include <stddef.h>
#include <stdint.h>

#include "core/json.h"
#include "core/util.h"
#include "subsonic/subsonic_args.h"

#define TALAS_SUBSONIC_API_VERSION "1.16.1"
#define TALAS_SUBSONIC_DEPTH_MAX 16

struct talas_subsonic_writer {
    enum talas_subsonic_format format;
    const char *callback; /* JSONP */
    struct talas_buf out;
    struct talas_json json;
    int tag_open; /* XML: a start tag still takes attributes */
    struct {
        const char *name;
        int is_list;
    } stack[TALAS_SUBSONIC_DEPTH_MAX];
    int depth;
};

/* Starts a document of FORMAT (CALLBACK for JSONP) with status "ok" (OK 1)
 * or "failed". */
void talas_subsonic_writer_begin(struct talas_subsonic_writer *w, enum talas_subsonic_format format,
                                 const char *callback, int ok);
/* An element NAME; inside a list, NAME is ignored (the list's is used). */
void talas_subsonic_elem_begin(struct talas_subsonic_writer *w, const char *name);
void talas_subsonic_elem_end(struct talas_subsonic_writer *w);
/* A list of elements named NAME (JSON: an array; XML: the elements
 * follow one another). talas_subsonic_item_begin starts one of them. */
void talas_subsonic_list_begin(struct talas_subsonic_writer *w, const char *name);
void talas_subsonic_list_end(struct talas_subsonic_writer *w);
#define talas_subsonic_item_begin(w) talas_subsonic_elem_begin((w), NULL)
/* Attributes of the element just begun (before any child). */
void talas_subsonic_attr_str(struct talas_subsonic_writer *w, const char *key, const char *value);
void talas_subsonic_attr_int(struct talas_subsonic_writer *w, const char *key, int64_t value);
void talas_subsonic_attr_bool(struct talas_subsonic_writer *w, const char *key, int value);
/* Child elements NAME holding numbers (XML: <NAME>1</NAME>...; JSON:
 * "NAME":[1,...]). */
void talas_subsonic_values(struct talas_subsonic_writer *w, const char *name, const int64_t *v, size_t n);
/* The text content of the element just begun, after its attributes and
 * instead of children (XML: <NAME ...>VALUE</NAME>; JSON: the member
 * "value", as OpenSubsonic maps text content). */
void talas_subsonic_text(struct talas_subsonic_writer *w, const char *value);
/* Closes the document; the caller then owns W->out (free it). */
void talas_subsonic_writer_end(struct talas_subsonic_writer *w);

/* A whole error document: <error code=CODE message=MESSAGE/>. */
void talas_subsonic_write_error(struct talas_subsonic_writer *w, enum talas_subsonic_format format,
                                const char *callback, int code, const char *message);

/* The Content-Type of FORMAT. */
const char *talas_subsonic_content_type(enum talas_subsonic_format format);

#endif
