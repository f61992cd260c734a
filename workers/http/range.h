/*
 * range.h - the HTTP Range header (RFC 9110 section 14), as nginx reads it.
 *
 * Talas answers Range requests exactly as nginx's range filter does, so that
 * players and CDNs tuned against nginx see the same bytes: single ranges get
 * a 206, several get multipart/byteranges, a set of ranges larger than the
 * file or with a range starting at 0 that is empty is ignored (200), and an
 * unparsable or wholly unsatisfiable header gets a 416. Pure functions: no
 * I/O, no allocation, safe on any input.
 */
#ifndef TALAS_RANGE_H
#define TALAS_RANGE_H

#include <stddef.h>
#include <stdint.h>

/* At most this many ranges in one request; more and the header is ignored
 * (a full 200), which bounds the cost of a multipart response. */
#define TALAS_RANGE_MAX 64

struct talas_range {
    uint64_t start; /* first byte */
    uint64_t end;   /* one past the last byte */
};

enum talas_range_verdict {
    TALAS_RANGE_IGNORE,        /* no usable Range: send the whole representation (200) */
    TALAS_RANGE_PARTIAL,       /* send the ranges (206) */
    TALAS_RANGE_UNSATISFIABLE, /* 416 with Content-Range: bytes (star)/LENGTH */
};

/*
 * Reads the Range header VALUE (LEN bytes) against a representation of
 * CONTENT_LENGTH bytes. On TALAS_RANGE_PARTIAL, RANGES (room for
 * TALAS_RANGE_MAX) holds *count_r ranges in request order.
 */
enum talas_range_verdict talas_range_parse(const char *value, size_t len, uint64_t content_length,
                                           struct talas_range *ranges, size_t *count_r);

/*
 * Decides whether an If-Range precondition holds: VALUE is either an entity
 * tag (compared strongly, byte for byte, with ETAG) or an HTTP date
 * (compared for equality with LAST_MODIFIED, seconds since the epoch).
 * Returns 1 when the Range header applies, 0 when the full representation
 * must be sent instead.
 */
int talas_range_if_range(const char *value, size_t len, const char *etag, size_t etag_len, int64_t last_modified);

/* Parses an IMF-fixdate / RFC 850 / asctime HTTP date; returns -1 if invalid. */
int64_t talas_http_date_parse(const char *value, size_t len);

#endif
