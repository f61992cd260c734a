/*
 * fuzz_json.c - the flat JSON reader (src/core/json_read.c) that reads API
 * request bodies (/api/stream-url), JWT headers and "aud" arrays.
 *
 * Input: byte 0 picks object or string array, the rest is the document.
 * Checks what json_read.h promises of every value handed to the callback:
 * a string is NUL-terminated at its length, holds no NUL byte and is valid
 * UTF-8; a key is a string too; a failed parse has an error message. A
 * callback that stops the parse (every 7th member) must stop it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/json_read.h"
#include "core/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct state {
    int calls;
    int array;
};

static void check_string(const char *s, size_t len)
{
    if (s == NULL || s[len] != '\0' || memchr(s, '\0', len) != NULL || !talas_utf8_valid(s, len))
        abort();
}

static int member(const char *key, const struct talas_json_value *v, void *arg)
{
    struct state *st = arg;

    if (st->array ? key != NULL : key == NULL)
        abort();
    if (key != NULL)
        check_string(key, strlen(key));
    switch (v->type) {
    case TALAS_JSON_STRING:
        check_string(v->str, v->len);
        break;
    case TALAS_JSON_INTEGER:
    case TALAS_JSON_NUMBER:
    case TALAS_JSON_TRUE:
    case TALAS_JSON_FALSE:
    case TALAS_JSON_NULL:
        if (st->array)
            abort(); /* arrays hold strings only */
        break;
    default:
        abort();
    }
    return ++st->calls % 7 == 0 ? 42 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct state st = {0};
    const char *error = NULL;
    char *text;
    int rc;

    if (size < 1)
        return 0;
    st.array = data[0] & 1;
    /* exactly the document's bytes, so that ASan sees any read past the end */
    text = memcpy(malloc(size - 1 + 1), data + 1, size - 1);
    if (st.array)
        rc = talas_json_read_string_array(text, size - 1, member, &st, &error);
    else
        rc = talas_json_read_object(text, size - 1, member, &st, &error);
    if (rc == -1 && error == NULL)
        abort();
    if (rc != -1 && rc != 0 && rc != 42)
        abort();
    if (rc == 42 && st.calls % 7 != 0)
        abort();
    free(text);
    return 0;
}
