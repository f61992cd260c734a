/*
 * http_profile.c - writes a rung of the transcode ladder as JSON, in the
 * one form that GET /api/profiles and the streaming sessions share, so
 * that a player can match a session's current_profile against the menu
 * it built from /api/profiles.
 *
 * Entry point: talas_http_profile_json. Logs nothing.
 */
#include <stdint.h>

#include "http/http_profile.h"
#include "media/adaptive.h"

void talas_http_profile_json(struct talas_json *json, const struct talas_config_profile *p)
{
    talas_json_object_begin(json);
    talas_json_key(json, "quality_id");
    talas_json_string(json, p->name);
    talas_json_key(json, "bitrate_kbps");
    talas_json_uint(json, (uint64_t)p->bitrate);
    talas_json_key(json, "sample_rate");
    talas_json_uint(json, (uint64_t)p->sample_rate);
    talas_json_key(json, "channels");
    talas_json_uint(json, (uint64_t)p->channels);
    talas_json_key(json, "codec");
    talas_json_string(json, talas_adaptive_codec_name(p));
    /* the codec's name is the extension of its files ("aac", "mp3") */
    talas_json_key(json, "file_extension");
    talas_json_string(json, talas_adaptive_codec_name(p));
    talas_json_key(json, "bandwidth_estimate_kbps");
    talas_json_uint(json, (uint64_t)p->bandwidth_estimate);
    talas_json_key(json, "hls");
    talas_json_bool(json, p->hls);
    talas_json_object_end(json);
}
