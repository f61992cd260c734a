/*
 * test_ws_transport.c - the frames the WebSocket transport writes
 * (workers/realtime/ws_transport.c): talas_ws_frame_text, read back by wslay's own
 * client-side parser at every boundary of the three length encodings.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "realtime/ws_transport.h"

struct reader {
    const struct talas_buf *in;
    size_t off;
    size_t chunk; /* bytes handed to wslay per read: frames split anywhere */
    int messages;
    uint8_t opcode;
    char *msg;
    size_t msg_len;
};

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
    struct reader *r = user;
    size_t n = r->in->len - r->off;

    if (n == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (n > len)
        n = len;
    if (n > r->chunk)
        n = r->chunk;
    memcpy(buf, r->in->data + r->off, n);
    r->off += n;
    return (ssize_t)n;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *user)
{
    return (ssize_t)len;
}

static int genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user)
{
    memset(buf, 0x5a, len);
    return 0;
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg, void *user)
{
    struct reader *r = user;

    r->messages++;
    r->opcode = arg->opcode;
    free(r->msg);
    r->msg = malloc(arg->msg_length + 1);
    if (arg->msg_length > 0) /* an empty message may come with msg NULL */
        memcpy(r->msg, arg->msg, arg->msg_length);
    r->msg_len = arg->msg_length;
}

static void read_back(const struct talas_buf *frames, size_t chunk, struct reader *r)
{
    static const struct wslay_event_callbacks cbs = {.recv_callback = recv_cb,
                                                     .send_callback = send_cb,
                                                     .genmask_callback = genmask_cb,
                                                     .on_msg_recv_callback = on_msg};
    wslay_event_context_ptr ctx;

    memset(r, 0, sizeof(*r));
    r->in = frames;
    r->chunk = chunk;
    assert_int_equal(wslay_event_context_client_init(&ctx, &cbs, r), 0);
    wslay_event_config_set_max_recv_msg_length(ctx, 1 << 20);
    while (r->off < frames->len)
        assert_int_equal(wslay_event_recv(ctx), 0);
    /* a protocol error would have queued a close frame */
    assert_int_equal(wslay_event_get_close_sent(ctx), 0);
    assert_int_equal(wslay_event_get_queued_msg_count(ctx), 0);
    wslay_event_context_free(ctx);
}

static void test_lengths(void **state)
{
    /* 7-bit, 16-bit and 64-bit payload lengths, and their edges */
    static const size_t lengths[] = {0, 1, 125, 126, 127, 65535, 65536, 70000};

    for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
        struct talas_buf b = {0};
        struct reader r;
        char *payload = malloc(lengths[i] + 1);
        size_t head = lengths[i] < 126 ? 2 : lengths[i] <= 0xffff ? 4 : 10;

        for (size_t j = 0; j < lengths[i]; j++)
            payload[j] = (char)('a' + j % 26);
        talas_ws_frame_text(&b, payload, lengths[i]);
        assert_int_equal(b.len, head + lengths[i]);
        assert_int_equal((unsigned char)b.data[0], 0x81);     /* FIN, text */
        assert_int_equal((unsigned char)b.data[1] & 0x80, 0); /* a server never masks */
        read_back(&b, 1 << 20, &r);
        assert_int_equal(r.messages, 1);
        assert_int_equal(r.opcode, WSLAY_TEXT_FRAME);
        assert_int_equal(r.msg_len, lengths[i]);
        assert_memory_equal(r.msg, payload, lengths[i]);
        free(r.msg);
        free(payload);
        talas_buf_free(&b);
    }
}

static void test_frames_back_to_back(void **state)
{
    /* frames appended to one buffer read back as separate messages, even
     * when a read splits them anywhere (here: 3 bytes at a time) */
    struct talas_buf b = {0};
    struct reader r;

    talas_ws_frame_text(&b, "{\"event\":\"A\"}", 13);
    talas_ws_frame_text(&b, "", 0);
    talas_ws_frame_text(&b, "{\"event\":\"C\"}", 13);
    read_back(&b, 3, &r);
    assert_int_equal(r.messages, 3);
    assert_int_equal(r.msg_len, 13);
    assert_memory_equal(r.msg, "{\"event\":\"C\"}", 13);
    free(r.msg);
    talas_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_frames_back_to_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
