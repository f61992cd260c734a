/*
 * fuzz_mp3_length.c - the Info tag and frame header walk that measures an
 * MP3 without a demuxer pass (workers/media/mp3_length.c).
 *
 * Input: a whole file, read through the walk's callback from an exactly
 * sized copy, so that a read past its end is caught; reads come short
 * for inputs of 15 bytes modulo 16 (a file that shrank meanwhile).
 * Checks what mp3_length.h promises: every read stays inside the file and
 * inside the buffer asked for, and an accepted file states a frame count
 * the bytes can hold (every frame has a 4-byte header) at a Layer III
 * sample rate and frame size.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "media/mp3_length.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct file {
    const uint8_t *data;
    size_t size;
    int short_reads;
};

static long file_read(void *arg, void *buf, size_t n, uint64_t off)
{
    const struct file *f = arg;

    if (off > f->size || n > f->size - off)
        abort(); /* the walk asked past the end of the file */
    if (f->short_reads && n > 1)
        n -= n / 3;
    memcpy(buf, f->data + off, n);
    return (long)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size > 0 ? size : 1);
    struct file f = {copy, size, size % 16 == 15};
    struct talas_mp3_input in = {size, file_read, &f};
    struct talas_mp3_length m;

    memcpy(copy, data, size);
    if (talas_mp3_length(&in, &m) == 0) {
        static const unsigned rates[] = {44100, 48000, 32000, 22050, 24000, 16000, 11025, 12000, 8000};
        int known = 0;

        for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++)
            known |= m.rate == rates[i];
        if (!known || (m.spf != 1152 && m.spf != 576) || m.frames == 0 || m.frames > size / 4 ||
            m.start_pad > 4095 || m.end_pad > 4095)
            abort();
    }
    free(copy);
    return 0;
}
