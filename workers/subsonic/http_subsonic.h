/*
 * http_subsonic.h - the Subsonic API (OpenSubsonic) at /rest/: see
 * http_subsonic.c for the methods and how each maps onto Talas.
 */
#ifndef TALAS_HTTP_SUBSONIC_H
#define TALAS_HTTP_SUBSONIC_H

#include <h2o.h>

#include "core/config.h"
#include "worker/worker_ctx.h"

/* With subsonic.enabled, reads subsonic.password_key_file (call it before
 * dropping privileges: the file may be readable by root only) and starts
 * the failed-login table. Returns 0, or -1 with a malloc'd message. */
int talas_subsonic_setup(const struct talas_config *conf, char **error_r);

/* Answers any /rest/ request (404 JSON when subsonic.enabled is off);
 * returns 0. */
int talas_subsonic_serve(const struct talas_worker_ctx *ctx, h2o_req_t *req);

#endif
