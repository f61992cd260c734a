/*
 * respawn.h - how long the master waits before respawning a worker that
 * died: nothing after a worker that lived, a delay that doubles with each
 * consecutive early death otherwise (nginx ngx_reap_children, Postfix
 * master_spawn.c), so that a worker that cannot start never turns the
 * master into a fork loop.
 *
 * A pure function over a slot's count of young deaths; master_spawn.c calls
 * it from talas_master_reap, tests/unit/test_respawn.c checks the sequence.
 */
#ifndef TALAS_RESPAWN_H
#define TALAS_RESPAWN_H

#include <stdint.h>

/*
 * A worker died after LIFETIME_MS. When that is less than TALAS_YOUNG_MS
 * (master.h), counts one more young death in *YOUNG_DEATHS and returns the
 * delay before its respawn: 100 ms after the first, doubling with each
 * following one, at most TALAS_RESPAWN_MAX_DELAY_MS. A worker that lived
 * longer resets *YOUNG_DEATHS to 0 and is respawned at once (returns 0).
 */
uint64_t talas_respawn_delay(unsigned *young_deaths, uint64_t lifetime_ms);

#endif
