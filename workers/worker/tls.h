/*
 * tls.h - the TLS context of a listener (OpenSSL), with ALPN "h2".
 */
#ifndef TALAS_TLS_H
#define TALAS_TLS_H

#include <openssl/ssl.h>

/* Builds a server context from a PEM certificate chain and key, offering
 * h2 and http/1.1 by ALPN. Returns NULL with a malloc'd message in *error_r. */
SSL_CTX *talas_tls_context_new(const char *certificate, const char *key, char **error_r);

#endif
