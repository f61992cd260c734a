/*
 * fuzz_config.c - the YAML configuration loader (src/core/config.c, libyaml
 * under it): talas_config_load on the input written to a memfd (read as
 * /proc/self/fd/N, the way talas-master reads a file), then
 * talas_config_free.
 *
 * Must never crash or leak, whatever the file holds. A config that loads
 * is dumped (talas_config_dump, the effective configuration) and the dump
 * must load again, to the same dump: what Talas writes, it reads back.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *dump(const struct talas_config *conf, size_t *len_r)
{
    char *text = NULL;
    FILE *fp = open_memstream(&text, len_r);

    if (fp == NULL)
        abort();
    talas_config_dump(conf, fp);
    fclose(fp);
    return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct talas_config *conf = NULL, *again = NULL;
    char path[64], *error = NULL, *text, *text2;
    size_t len, len2;
    int fd;

    if ((fd = memfd_create("talas.yaml", MFD_CLOEXEC)) == -1)
        abort();
    if (size > 0 && write(fd, data, size) != (ssize_t)size)
        abort();
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    if (talas_config_load(path, &conf, &error) != 0) {
        if (error == NULL || conf != NULL)
            abort();
        free(error);
        close(fd);
        return 0;
    }
    close(fd);

    text = dump(conf, &len);
    if (talas_config_load_string(conf->file, text, len, &again, &error) != 0) {
        fprintf(stderr, "fuzz_config: the dump does not load: %s\n----\n%s----\n", error, text);
        abort();
    }
    text2 = dump(again, &len2);
    if (len != len2 || memcmp(text, text2, len) != 0) {
        fprintf(stderr, "fuzz_config: the dump changes when loaded again:\n%s----\n%s----\n", text, text2);
        abort();
    }
    free(text);
    free(text2);
    talas_config_free(again);
    talas_config_free(conf);
    return 0;
}
