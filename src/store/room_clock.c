/*
 * room_clock.c - the position rule of listening rooms (room_clock.h):
 * pure arithmetic on a playback state and its queue.
 *
 * Entry points: talas_room_clock_position, talas_room_clock_find,
 * talas_room_clock_apply. Logs nothing.
 */
#include <string.h>

#include "store/room_clock.h"

uint64_t talas_room_clock_position(const struct talas_room_playback *pb, uint64_t now)
{
    if (!pb->playing || now <= pb->at_server_ms)
        return pb->position_ms;
    return pb->position_ms + (now - pb->at_server_ms);
}

long talas_room_clock_find(const struct talas_room_entry *queue, size_t n, const char *entry_id)
{
    if (entry_id[0] == '\0')
        return -1;
    for (size_t i = 0; i < n; i++)
        if (strcmp(queue[i].entry_id, entry_id) == 0)
            return (long)i;
    return -1;
}

int talas_room_clock_apply(const struct talas_room_entry *queue, size_t n, struct talas_room_playback *pb,
                           uint64_t now)
{
    int changed = 0;

    while (pb->playing) {
        long i = talas_room_clock_find(queue, n, pb->entry_id);
        uint64_t duration, ended_at;

        if (i < 0) {
            /* the entry left the queue under it: stop where it is */
            pb->position_ms = talas_room_clock_position(pb, now);
            pb->at_server_ms = now;
            pb->playing = 0;
            return 1;
        }
        duration = queue[i].duration_ms;
        if (talas_room_clock_position(pb, now) < duration)
            break;
        /* the instant the entry ended; a position already past the end
         * (a seek beyond it) ended at the seek */
        ended_at = pb->at_server_ms + (pb->position_ms < duration ? duration - pb->position_ms : 0);
        changed = 1;
        if ((size_t)i + 1 < n) {
            memcpy(pb->entry_id, queue[i + 1].entry_id, sizeof(pb->entry_id));
            memcpy(pb->track_id, queue[i + 1].track_id, sizeof(pb->track_id));
            pb->position_ms = 0;
            pb->at_server_ms = ended_at;
        } else {
            pb->position_ms = duration;
            pb->at_server_ms = ended_at;
            pb->playing = 0;
        }
    }
    return changed;
}
