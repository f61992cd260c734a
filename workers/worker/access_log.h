/*
 * access_log.h - one line per request, in the combined format or as JSON.
 */
#ifndef TALAS_ACCESS_LOG_H
#define TALAS_ACCESS_LOG_H

#include <h2o.h>

#include "core/config.h"

/* Registers the access logger on PATHCONF when log.access is set. Returns 0,
 * or -1 with a malloc'd message in *error_r (the file cannot be opened). */
int talas_access_log_register(h2o_pathconf_t *pathconf, const struct talas_config *conf, char **error_r);

/* Reopens the file at the same descriptor (SIGUSR1, after log rotation). */
void talas_access_log_reopen(void);

#endif
