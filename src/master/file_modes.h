/*
 * file_modes.h - warnings about the modes of the configuration and of the
 * secret files it names.
 */
#ifndef TALAS_FILE_MODES_H
#define TALAS_FILE_MODES_H

#include "core/config.h"

/* Logs a warning for each file of CONF whose mode is looser than it should
 * be: the configuration file writable by others, or a secret (token keys,
 * the backend key, TLS private keys) that the group or others may read or
 * write. Never fails: a missing file is other checks' business. Returns the
 * number of warnings logged. */
int talas_file_modes_check(const struct talas_config *conf);

#endif
