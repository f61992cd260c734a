/*
 * tls.c - server TLS contexts for listeners with a tls: section.
 *
 * Entry point: talas_tls_context_new, called in each worker after fork (an
 * OpenSSL context is per process state, like everything in workers/).
 */
#include <openssl/err.h>
#include <h2o.h>
#include <h2o/http2.h>

#include "worker/tls.h"
#include "core/util.h"

static char *ssl_error(const char *what, const char *file)
{
    char buf[256];

    ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
    return xasprintf("%s(\"%s\") failed: %s", what, file, buf);
}

SSL_CTX *talas_tls_context_new(const char *certificate, const char *key, char **error_r)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    if (ctx == NULL) {
        *error_r = xstrdup("SSL_CTX_new() failed");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_use_certificate_chain_file(ctx, certificate) != 1) {
        *error_r = ssl_error("SSL_CTX_use_certificate_chain_file", certificate);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        *error_r = ssl_error("SSL_CTX_use_PrivateKey_file", key);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        *error_r = ssl_error("SSL_CTX_check_private_key", key);
        goto fail;
    }
    h2o_ssl_register_alpn_protocols(ctx, h2o_http2_alpn_protocols);
    return ctx;

fail:
    SSL_CTX_free(ctx);
    return NULL;
}
