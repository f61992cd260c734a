/*
 * http_limits.h - request limits checked before any handler runs.
 */
#ifndef TALAS_HTTP_LIMITS_H
#define TALAS_HTTP_LIMITS_H

#include <h2o.h>

#include "core/config.h"

/* Installs the limits as the first handler of PATHCONF: a request over
 * http.max_header_size (request line and headers) gets a 431 with a JSON
 * body; others go on to the next handler. */
void talas_limits_register(h2o_pathconf_t *pathconf, const struct talas_config *conf);

#endif
