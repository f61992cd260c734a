/*
 * covers.h - resized cover art, one JPEG per (cover id, size) in
 * TALAS_DBI_COVERS, shared by every worker and every restart.
 *
 * A record carries the identity (size, mtime) of the picture's source (the
 * audio file for an embedded picture, the folder image otherwise): a
 * look-up with another identity finds nothing, so a changed picture is
 * resized again. The database is bounded: a put that finds
 * TALAS_COVERS_MAX records first deletes a few (see covers.c).
 */
#ifndef TALAS_COVERS_H
#define TALAS_COVERS_H

#include <stddef.h>
#include <stdint.h>

#include "store/cache.h"
#include "store/storage.h"

/* Records kept at most (each a few KiB: 2048 pixels is the largest size). */
#define TALAS_COVERS_MAX 4096
/* META counters TALAS_COVERS_COUNTERS: {resized, failed}, summed over
 * workers: a picture decoded and resized, and one that did not decode. */
#define TALAS_COVERS_COUNTERS "covers"

/*
 * The JPEG of cover ID at SIZE pixels made from IDENTITY, in TXN's map
 * (*DATA_R valid until TXN ends). Returns 0, MDB_NOTFOUND (none, or made
 * from another source), -1 (damaged) or another LMDB error.
 */
int talas_covers_get(struct talas_storage *st, MDB_txn *txn, const char *id, uint32_t size,
                     const struct talas_cache_source *identity, const void **data_r, size_t *len_r);

/* Stores the JPEG DATA (LEN bytes) of ID at SIZE made from IDENTITY in one
 * short write transaction. Returns 0 or an LMDB error. Not on an event
 * loop: it waits for the writer lock. */
int talas_covers_put(struct talas_storage *st, const char *id, uint32_t size,
                     const struct talas_cache_source *identity, const void *data, size_t len);

#endif
