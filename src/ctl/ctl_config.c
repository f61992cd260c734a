/*
 * ctl_config.c - talasctl check-config: what talas-master -t checks beyond
 * the file itself (loaded by main): the token and backend keys, the TLS
 * certificates and keys, the control socket's directory.
 *
 * Entry point (talasctl.h): talasctl_cmd_check_config. Errors on stderr,
 * one verdict line (or JSON document) on stdout. check-config --keys is
 * main's: it prints the schema without reading a file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "core/json.h"
#include "core/token.h"
#include "ctl/talasctl.h"

/* What talas-master -t checks: the file (already loaded by main), the
 * token and backend keys, the TLS files; and whether the storage and the
 * control socket's directory exist. */
int talasctl_cmd_check_config(const struct talas_config *conf)
{
    struct talas_token *auth;
    char *error, *dir;
    int ok = 1;

    if (talas_token_create(conf, &auth, &error) == 0) {
        talas_token_free(auth);
    } else {
        fprintf(stderr, "%s\n", error);
        free(error);
        ok = 0;
    }
    for (size_t i = 0; i < conf->listen_count; i++) {
        const struct talas_config_listen *l = &conf->listen[i];
        SSL_CTX *ctx;

        if (l->tls_certificate == NULL)
            continue;
        ctx = SSL_CTX_new(TLS_server_method());
        if (SSL_CTX_use_certificate_chain_file(ctx, l->tls_certificate) != 1 ||
            SSL_CTX_use_PrivateKey_file(ctx, l->tls_key, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1) {
            fprintf(stderr, "%s: listen %s:%d: tls: cannot load \"%s\" and \"%s\", or they do not match\n",
                    conf->file, l->host, l->port, l->tls_certificate, l->tls_key);
            ok = 0;
        }
        SSL_CTX_free(ctx);
    }
    dir = xasprintf("%s", conf->control_socket);
    if (strrchr(dir, '/') != NULL)
        *strrchr(dir, '/') = '\0';
    if (*dir != '\0' && access(dir, F_OK) != 0) {
        fprintf(stderr, "%s: control.socket: the directory \"%s\" does not exist\n", conf->file, dir);
        ok = 0;
    }
    free(dir);
    if (talasctl_json) {
        struct talas_buf out = {0};
        struct talas_json j;
        talas_json_init(&j, &out);
        talas_json_object_begin(&j);
        talas_json_key(&j, "ok");
        talas_json_bool(&j, ok);
        talas_json_key(&j, "config");
        talas_json_string(&j, conf->file);
        talas_json_object_end(&j);
        printf("%.*s\n", (int)out.len, out.data);
        talas_buf_free(&out);
    } else
        printf("%s: configuration %s\n", conf->file, ok ? "ok" : "has errors");
    return ok ? TALASCTL_OK : TALASCTL_FAILURE;
}
