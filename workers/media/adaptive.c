/*
 * adaptive.c - initial quality and quality monitor of streaming sessions.
 *
 * Entry points are declared in adaptive.h, which also states the rules;
 * this file is their arithmetic. Logs nothing.
 */
#include <string.h>
#include <strings.h>

#include "media/adaptive.h"

static const char *const connection_names[] = {
    [TALAS_CONNECTION_WIFI] = "Wifi",
    [TALAS_CONNECTION_CELLULAR_4G] = "Cellular4G",
    [TALAS_CONNECTION_CELLULAR_3G] = "Cellular3G",
    [TALAS_CONNECTION_CELLULAR_2G] = "Cellular2G",
    [TALAS_CONNECTION_ETHERNET] = "Ethernet",
    [TALAS_CONNECTION_UNKNOWN] = "Unknown",
};

static const char *const device_names[] = {
    [TALAS_DEVICE_DESKTOP] = "Desktop",    [TALAS_DEVICE_MOBILE] = "Mobile",
    [TALAS_DEVICE_TABLET] = "Tablet",      [TALAS_DEVICE_SMART_SPEAKER] = "SmartSpeaker",
    [TALAS_DEVICE_CAR_AUDIO] = "CarAudio", [TALAS_DEVICE_UNKNOWN] = "Unknown",
};

/* What a client that gave no estimate is assumed to have, by connection. */
static const unsigned default_budget_kbps[] = {
    [TALAS_CONNECTION_WIFI] = 1000,       [TALAS_CONNECTION_CELLULAR_4G] = 500,
    [TALAS_CONNECTION_CELLULAR_3G] = 250, [TALAS_CONNECTION_CELLULAR_2G] = 100,
    [TALAS_CONNECTION_ETHERNET] = 2000,   [TALAS_CONNECTION_UNKNOWN] = 250,
};

const char *talas_adaptive_connection_name(enum talas_connection_type t)
{
    return (size_t)t < sizeof(connection_names) / sizeof(connection_names[0]) ? connection_names[t]
                                                                              : "Unknown";
}

const char *talas_adaptive_device_name(enum talas_device_type t)
{
    return (size_t)t < sizeof(device_names) / sizeof(device_names[0]) ? device_names[t] : "Unknown";
}

static int parse_name(const char *const *names, size_t count, const char *s, size_t len)
{
    for (size_t i = 0; i < count; i++)
        if (strlen(names[i]) == len && strncasecmp(names[i], s, len) == 0)
            return (int)i;
    return -1;
}

int talas_adaptive_connection_parse(const char *s, size_t len, enum talas_connection_type *t_r)
{
    int i = parse_name(connection_names, sizeof(connection_names) / sizeof(connection_names[0]), s, len);

    if (i < 0)
        return -1;
    *t_r = (enum talas_connection_type)i;
    return 0;
}

int talas_adaptive_device_parse(const char *s, size_t len, enum talas_device_type *t_r)
{
    int i = parse_name(device_names, sizeof(device_names) / sizeof(device_names[0]), s, len);

    if (i < 0)
        return -1;
    *t_r = (enum talas_device_type)i;
    return 0;
}

const struct talas_config_profile *talas_adaptive_find(const struct talas_config_profile *profiles, size_t n,
                                                       const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(profiles[i].name, name) == 0)
            return &profiles[i];
    return NULL;
}

const char *talas_adaptive_codec_name(const struct talas_config_profile *p)
{
    return p->codec == TALAS_CONFIG_CODEC_MP3 ? "mp3" : "aac";
}

const char *talas_adaptive_switch_name(enum talas_adaptive_switch sw)
{
    return sw == TALAS_SWITCH_UP ? "up" : sw == TALAS_SWITCH_DOWN ? "down" : "none";
}

/* A before B in a ladder: more bandwidth, then more bitrate, then the
 * configuration's order. */
static int better(const struct talas_config_profile *profiles, size_t a, size_t b)
{
    if (profiles[a].bandwidth_estimate != profiles[b].bandwidth_estimate)
        return profiles[a].bandwidth_estimate > profiles[b].bandwidth_estimate;
    if (profiles[a].bitrate != profiles[b].bitrate)
        return profiles[a].bitrate > profiles[b].bitrate;
    return a < b;
}

size_t talas_adaptive_ladder(const struct talas_config_profile *profiles, size_t n, int adaptive,
                             size_t *ladder_r)
{
    size_t count = 0, hls = 0;

    for (size_t i = 0; i < n; i++)
        hls += profiles[i].hls != 0;
    for (size_t i = 0; i < n; i++) {
        size_t j;
        if (adaptive && hls > 0 && !profiles[i].hls)
            continue;
        /* insertion: a ladder has a handful of rungs */
        for (j = count; j > 0 && better(profiles, i, ladder_r[j - 1]); j--)
            ladder_r[j] = ladder_r[j - 1];
        ladder_r[j] = i;
        count++;
    }
    return count;
}

size_t talas_adaptive_initial(const struct talas_config_profile *profiles, size_t n,
                              const struct talas_client_capabilities *caps)
{
    size_t ladder[n], count;
    enum talas_connection_type conn =
        caps->connection_type <= TALAS_CONNECTION_UNKNOWN ? caps->connection_type : TALAS_CONNECTION_UNKNOWN;
    uint64_t budget = caps->estimated_bandwidth_kbps;

    if (caps->preferred_quality[0] != '\0') {
        const struct talas_config_profile *p = talas_adaptive_find(profiles, n, caps->preferred_quality);
        if (p != NULL)
            return (size_t)(p - profiles);
    }
    if (budget == 0)
        budget = default_budget_kbps[conn];
    if (conn == TALAS_CONNECTION_CELLULAR_2G && budget > TALAS_ADAPTIVE_2G_CAP_KBPS)
        budget = TALAS_ADAPTIVE_2G_CAP_KBPS;
    if (conn == TALAS_CONNECTION_CELLULAR_3G && budget > TALAS_ADAPTIVE_ROBUST_CAP_KBPS)
        budget = TALAS_ADAPTIVE_ROBUST_CAP_KBPS;
    if (caps->device_type == TALAS_DEVICE_SMART_SPEAKER || caps->device_type == TALAS_DEVICE_CAR_AUDIO) {
        budget = budget * 3 / 4;
        if (budget > TALAS_ADAPTIVE_ROBUST_CAP_KBPS)
            budget = TALAS_ADAPTIVE_ROBUST_CAP_KBPS;
    }
    if (caps->buffer_duration_ms > 0 && caps->buffer_duration_ms < TALAS_ADAPTIVE_SHORT_BUFFER_MS)
        budget = budget * 3 / 4;
    count = talas_adaptive_ladder(profiles, n, caps->adaptive_enabled, ladder);
    for (size_t i = 0; i < count; i++)
        if ((uint64_t)profiles[ladder[i]].bandwidth_estimate <= budget)
            return ladder[i];
    return ladder[count - 1];
}

static void advise(struct talas_adaptive_advice *a, size_t profile, enum talas_adaptive_switch sw,
                   const char *reason)
{
    a->profile = profile;
    a->sw = sw;
    a->reason = reason;
}

void talas_adaptive_monitor(const struct talas_config_profile *profiles, size_t n,
                            const struct talas_session *s, const struct talas_performance_metrics *m,
                            struct talas_quality_monitor *monitor, struct talas_adaptive_advice *advice)
{
    const struct talas_config_profile *cur = talas_adaptive_find(profiles, n, s->current_quality);
    size_t ladder[n], count, up = n, down = n, fit = n, lowest = n;
    uint32_t speed = m->download_speed_kbps;
    int rebuffered = m->rebuffer_count > s->performance_metrics.rebuffer_count;
    int below, healthy;

    *monitor = s->monitor;
    if (cur == NULL) {
        /* the profile left the configuration: start again from the capabilities */
        *monitor = (struct talas_quality_monitor){0};
        advise(advice, talas_adaptive_initial(profiles, n, &s->client_capabilities), TALAS_SWITCH_DOWN,
               "quality_no_longer_configured");
        return;
    }
    advise(advice, (size_t)(cur - profiles), TALAS_SWITCH_NONE, "stable");
    if (!s->client_capabilities.adaptive_enabled) {
        *monitor = (struct talas_quality_monitor){0};
        advice->reason = "adaptive_disabled";
        return;
    }

    /* the rungs around the current one, which need not be in the ladder
     * (a preferred or chosen MP3 profile beside an HLS ladder) */
    count = talas_adaptive_ladder(profiles, n, 1, ladder);
    for (size_t i = 0; i < count; i++) {
        const struct talas_config_profile *p = &profiles[ladder[i]];
        if (p->bandwidth_estimate > cur->bandwidth_estimate)
            up = ladder[i]; /* the last one above: the next rung up */
        else if (p->bandwidth_estimate < cur->bandwidth_estimate) {
            if (down == n)
                down = ladder[i];
            lowest = ladder[i];
            if (fit == n && speed > 0 && (uint32_t)p->bandwidth_estimate <= speed)
                fit = ladder[i];
        }
    }

    below = speed > 0 && speed < (uint32_t)cur->bandwidth_estimate;
    healthy = !rebuffered && m->buffer_health_percentage >= TALAS_ADAPTIVE_HEALTHY_BUFFER &&
              m->packet_loss_percentage < TALAS_ADAPTIVE_MAX_LOSS && up != n &&
              (uint64_t)speed * 4 >= (uint64_t)profiles[up].bandwidth_estimate * 5;
    monitor->shortfall_streak = below ? monitor->shortfall_streak + 1 : 0;
    monitor->healthy_streak = healthy ? monitor->healthy_streak + 1 : 0;

    if (rebuffered || m->buffer_health_percentage < TALAS_ADAPTIVE_LOW_BUFFER ||
        monitor->shortfall_streak >= TALAS_ADAPTIVE_DOWN_REPORTS) {
        const char *why = rebuffered ? "rebuffering"
                          : m->buffer_health_percentage < TALAS_ADAPTIVE_LOW_BUFFER
                              ? "low_buffer"
                              : "insufficient_bandwidth";
        if (down == n) {
            advice->reason = "lowest_quality";
            monitor->shortfall_streak = 0;
            return;
        }
        *monitor = (struct talas_quality_monitor){0};
        /* the measured speed says how far down; without one, one rung */
        advise(advice, speed == 0 ? down : fit != n ? fit : lowest, TALAS_SWITCH_DOWN, why);
        return;
    }
    if (below) {
        advice->reason = "bandwidth_dip";
        return;
    }
    if (monitor->healthy_streak >= TALAS_ADAPTIVE_UP_REPORTS) {
        *monitor = (struct talas_quality_monitor){0};
        advise(advice, up, TALAS_SWITCH_UP, "sustained_headroom");
        return;
    }
    if (healthy)
        advice->reason = "headroom_observed";
}
