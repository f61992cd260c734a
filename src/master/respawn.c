/*
 * respawn.c - the master's respawn backoff (see respawn.h).
 *
 * Entry point: talas_respawn_delay. Logs nothing: talas_master_reap logs
 * the delay with the death it follows.
 */
#include <limits.h>

#include "master/master.h"
#include "master/respawn.h"

/* 100 ms << 9 = 51.2 s already passes the cap: the shift stops there, so
 * that a slot dying young for hours never shifts past 63 bits. */
#define FIRST_DELAY_MS 100ULL
#define MAX_SHIFT 9

uint64_t talas_respawn_delay(unsigned *young_deaths, uint64_t lifetime_ms)
{
    uint64_t delay;

    if (lifetime_ms >= TALAS_YOUNG_MS) {
        *young_deaths = 0;
        return 0;
    }
    if (*young_deaths < UINT_MAX)
        (*young_deaths)++;
    delay = FIRST_DELAY_MS << (*young_deaths <= MAX_SHIFT ? *young_deaths - 1 : MAX_SHIFT);
    return delay > TALAS_RESPAWN_MAX_DELAY_MS ? TALAS_RESPAWN_MAX_DELAY_MS : delay;
}
