/*
 * record.h - the one record codec: every LMDB record and every IPC message
 * is written and read through it, so that a layout is a list of put/get
 * calls and no file needs its own byte-order helpers.
 *
 * Integers are little-endian unless the name ends in "be" (big-endian:
 * for LMDB keys, which must sort in numeric order). A string is a u32
 * length, its bytes and a NUL (so a reader can hand out a C string that
 * points into the map); a blob is a u32 length and its bytes.
 *
 * A writer appends to a growable struct talas_buf (it never overflows) or
 * fills a caller's fixed buffer (it stops at the end and remembers that it
 * overflowed). A reader is a cursor over LEN bytes: a get that would pass
 * the end reads nothing, returns 0 (NULL for pointers) and marks the
 * reader bad, so a decoder makes its gets in a row and checks once.
 * Nothing here allocates (except a growing talas_buf), logs or fails
 * otherwise.
 */
#ifndef TALAS_RECORD_H
#define TALAS_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "core/util.h"

struct talas_record_writer {
    struct talas_buf *buf; /* growable target, or NULL for a fixed one */
    unsigned char *mem;    /* fixed target */
    size_t cap;            /* its size */
    size_t len;            /* bytes this writer has put */
    int overflow;          /* a put did not fit in the fixed target */
};

/* A writer that appends to BUF (which the caller owns and frees). */
void talas_record_writer_buf(struct talas_record_writer *w, struct talas_buf *buf);
/* A writer over the CAP bytes at MEM (the caller's). */
void talas_record_writer_mem(struct talas_record_writer *w, void *mem, size_t cap);
/* 0 when every put fitted, -1 after an overflow (the bytes are then
 * incomplete and must not be stored). */
int talas_record_writer_end(const struct talas_record_writer *w);

void talas_record_put_u8(struct talas_record_writer *w, uint8_t v);
void talas_record_put_u16(struct talas_record_writer *w, uint16_t v);
void talas_record_put_u32(struct talas_record_writer *w, uint32_t v);
void talas_record_put_u64(struct talas_record_writer *w, uint64_t v);
void talas_record_put_i64(struct talas_record_writer *w, int64_t v);
/* A double as the u64 of its IEEE 754 bits. */
void talas_record_put_f64(struct talas_record_writer *w, double v);
void talas_record_put_u16be(struct talas_record_writer *w, uint16_t v);
void talas_record_put_u32be(struct talas_record_writer *w, uint32_t v);
void talas_record_put_u64be(struct talas_record_writer *w, uint64_t v);
/* LEN raw bytes (no length before them). */
void talas_record_put_bytes(struct talas_record_writer *w, const void *data, size_t len);
/* LEN zero bytes: reserved fields and padding. */
void talas_record_put_zero(struct talas_record_writer *w, size_t len);
/* S as a string (NULL is written as ""). A length above UINT32_MAX - 1
 * marks the writer overflowed: it would not read back the same. */
void talas_record_put_str(struct talas_record_writer *w, const char *s);
/* The string in the char array S of SIZE bytes: up to its NUL, at most
 * SIZE - 1 bytes (an array whose NUL went missing cannot be overread). */
void talas_record_put_strn(struct talas_record_writer *w, const char *s, size_t size);
/* LEN bytes at DATA as a blob. */
void talas_record_put_blob(struct talas_record_writer *w, const void *data, size_t len);

struct talas_record_reader {
    const unsigned char *p; /* the next byte */
    size_t left;            /* bytes from p to the end */
    int bad;                /* a get failed: everything after reads 0 */
};

/* A reader over the LEN bytes at DATA, which must outlive it. */
void talas_record_reader_init(struct talas_record_reader *r, const void *data, size_t len);
/* 0 when no get failed, else -1; _end also wants every byte used (a
 * record with trailing bytes is as wrong as a short one). */
int talas_record_reader_ok(const struct talas_record_reader *r);
int talas_record_reader_end(const struct talas_record_reader *r);

uint8_t talas_record_get_u8(struct talas_record_reader *r);
uint16_t talas_record_get_u16(struct talas_record_reader *r);
uint32_t talas_record_get_u32(struct talas_record_reader *r);
uint64_t talas_record_get_u64(struct talas_record_reader *r);
int64_t talas_record_get_i64(struct talas_record_reader *r);
double talas_record_get_f64(struct talas_record_reader *r);
uint32_t talas_record_get_u32be(struct talas_record_reader *r);
uint64_t talas_record_get_u64be(struct talas_record_reader *r);
/* The next LEN bytes, pointing into the record; NULL when short. */
const void *talas_record_get_bytes(struct talas_record_reader *r, size_t len);
/* Takes LEN bytes that must all be zero (else the reader goes bad). */
void talas_record_get_zero(struct talas_record_reader *r, size_t len);
/* A string, pointing into the record, its length in *len_r (may be NULL).
 * NULL when short, when the length lies, when the NUL is missing or when
 * a NUL is inside (the C string would disagree with the length). */
const char *talas_record_get_str(struct talas_record_reader *r, size_t *len_r);
/* A blob, pointing into the record; NULL when short or the length lies
 * (a good empty blob is not NULL). */
const void *talas_record_get_blob(struct talas_record_reader *r, size_t *len_r);

#endif
