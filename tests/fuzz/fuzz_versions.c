/*
 * fuzz_versions.c - file names as the scanner meets them
 * (talas_version_name_parse, store/version_name.c): any bytes.
 *
 * Checks: the key is the base folded, NUL-terminated, at most
 * TALAS_VERSION_KEY_MAX bytes, a prefix (folded) of the name; a versioned
 * name has a rank above the original's and a label; parsing is
 * deterministic; a name orders equal to itself.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/version_name.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fold(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* exactly SIZE bytes, so that ASan sees any read past the end */
    char *name = memcpy(malloc(size ? size : 1), data, size);
    struct talas_version_name a, b;
    int rc = talas_version_name_parse(name, size, &a);

    if (talas_version_name_parse(name, size, &b) != rc || (rc == 0 && memcmp(&a, &b, sizeof(a)) != 0))
        abort();
    if (rc == 0) {
        if (a.key_len == 0 || a.key_len > TALAS_VERSION_KEY_MAX || a.key_len > size || a.key[a.key_len] != '\0')
            abort();
        for (size_t i = 0; i < a.key_len; i++)
            if (a.key[i] != fold(name[i]))
                abort();
        if (a.versioned != (a.rank != TALAS_VERSION_RANK_ORIGINAL) || a.versioned != (a.label[0] != '\0'))
            abort();
        if (memchr(a.label, '\0', sizeof(a.label)) == NULL)
            abort();
    }
    free(name);
    return 0;
}
