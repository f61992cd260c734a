/*
 * adaptive.h - how a streaming session picks its quality: the initial
 * profile from the client's capabilities, and the quality monitor that
 * reads the player's metrics and recommends a switch.
 *
 * Pure functions over the configuration's profiles (transcode.profiles)
 * and plain session data: no I/O, no clock, no allocation, so that the
 * unit tests can drive them with tables.
 *
 * The ladder. A session may use every profile, ordered by
 * bandwidth_estimate (then bitrate) from the highest; a session with
 * adaptive_enabled keeps to the HLS rungs (profile key hls) when there is
 * at least one, since its player switches rungs inside one HLS master
 * playlist.
 *
 * The initial profile. The budget is the client's estimated bandwidth (when
 * 0: a figure for its connection type), capped by its connection (2G: 100,
 * 3G: 250 kbit/s), taken at 3/4 and capped at 250 kbit/s for smart
 * speakers and car audio (they favour playing on over fidelity), and at
 * 3/4 when its buffer is shorter than 2 s. A known preferred_quality wins;
 * else the highest rung whose bandwidth_estimate fits the budget, or the
 * lowest rung.
 *
 * The monitor (hysteresis: down fast, up slowly). On a report:
 *   - a new rebuffer, or buffer health under 25 %: down now;
 *   - download speed under the current rung's bandwidth_estimate in 2
 *     reports in a row: down;
 *   - 3 reports in a row with buffer health of 75 % or more, packet loss
 *     under 5 % and a download speed of at least 5/4 of the next rung's
 *     bandwidth_estimate: up one rung;
 *   - else no switch. A switch starts both streaks again.
 * A down switch goes to the highest rung the measured speed carries (at
 * least one rung down); an up switch goes one rung up.
 */
#ifndef TALAS_ADAPTIVE_H
#define TALAS_ADAPTIVE_H

#include <stddef.h>

#include "core/config.h"
#include "store/sessions.h"

#define TALAS_ADAPTIVE_LOW_BUFFER 25.0      /* %: down at once below */
#define TALAS_ADAPTIVE_HEALTHY_BUFFER 75.0  /* %: up possible from */
#define TALAS_ADAPTIVE_MAX_LOSS 5.0         /* %: up possible below */
#define TALAS_ADAPTIVE_UP_REPORTS 3         /* healthy reports in a row before going up */
#define TALAS_ADAPTIVE_DOWN_REPORTS 2       /* reports in a row short of bandwidth before going down */
#define TALAS_ADAPTIVE_SHORT_BUFFER_MS 2000 /* a buffer under this makes the initial choice cautious */
#define TALAS_ADAPTIVE_ROBUST_CAP_KBPS 250  /* smart speakers, car audio, 3G */
#define TALAS_ADAPTIVE_2G_CAP_KBPS 100

/* The seed's spellings ("Wifi", "Cellular4G", ...; "SmartSpeaker", ...). */
const char *talas_adaptive_connection_name(enum talas_connection_type t);
const char *talas_adaptive_device_name(enum talas_device_type t);
/* Reads a seed spelling, in any case ("wifi", "cellular4g" too). Returns 0
 * and the value in *T_R, or -1 when S (LEN bytes) is none of them. */
int talas_adaptive_connection_parse(const char *s, size_t len, enum talas_connection_type *t_r);
int talas_adaptive_device_parse(const char *s, size_t len, enum talas_device_type *t_r);

/* The profile named NAME, or NULL. */
const struct talas_config_profile *talas_adaptive_find(const struct talas_config_profile *profiles, size_t n,
                                                       const char *name);

/* "aac" / "mp3": the codec's name and file extension of profile P. */
const char *talas_adaptive_codec_name(const struct talas_config_profile *p);

/*
 * Stores in LADDER_R (room for N indexes into PROFILES) the profiles a
 * session may use, best first (see above), and returns how many.
 */
size_t talas_adaptive_ladder(const struct talas_config_profile *profiles, size_t n, int adaptive,
                             size_t *ladder_r);

/* The initial profile for CAPS: an index into PROFILES (N > 0). */
size_t talas_adaptive_initial(const struct talas_config_profile *profiles, size_t n,
                              const struct talas_client_capabilities *caps);

enum talas_adaptive_switch { TALAS_SWITCH_NONE, TALAS_SWITCH_UP, TALAS_SWITCH_DOWN };

/* "none", "up", "down". */
const char *talas_adaptive_switch_name(enum talas_adaptive_switch sw);

struct talas_adaptive_advice {
    size_t profile;                /* recommended: an index into PROFILES */
    enum talas_adaptive_switch sw; /* how it differs from the current one */
    const char *reason;            /* static: "rebuffering", "low_buffer", "insufficient_bandwidth",
                                      "sustained_headroom", "stable", "adaptive_disabled", ... */
};

/*
 * The monitor. S is the session before the report (current_quality, its
 * capabilities, the previous metrics and monitor state), M the metrics as
 * they are now. Updates *MONITOR (the session's new monitor state) and
 * fills *ADVICE. A session without adaptive_enabled gets no switch.
 */
void talas_adaptive_monitor(const struct talas_config_profile *profiles, size_t n,
                            const struct talas_session *s, const struct talas_performance_metrics *m,
                            struct talas_quality_monitor *monitor, struct talas_adaptive_advice *advice);

#endif
