/*
 * http_profile.h - the JSON form of a rung of the transcode ladder
 * (transcode.profiles), as every answer that names one writes it:
 * GET /api/profiles (http_api.c) and the streaming sessions
 * (http_session.c).
 */
#ifndef TALAS_HTTP_PROFILE_H
#define TALAS_HTTP_PROFILE_H

#include "core/config.h"
#include "core/json.h"

/*
 * Writes P as one JSON object: quality_id, bitrate_kbps, sample_rate,
 * channels, codec, file_extension, bandwidth_estimate_kbps, hls. Cannot
 * fail; JSON owns nothing of P.
 */
void talas_http_profile_json(struct talas_json *json, const struct talas_config_profile *p);

#endif
