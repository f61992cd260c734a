/*
 * test_cluster_msg.c - the cluster's event message (workers/cluster/
 * cluster_msg.c): round trips, with every field of the event as the IPC
 * carries it, and decoders that refuse every short, long or mangled
 * message without reading past it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cluster/cluster_msg.h"
#include "core/record.h"

static const struct talas_ipc_event private_play = {
    .origin_pid = 77,
    .target = TALAS_WS_TO_ALL,
    .json = "{\"event\":\"PlaybackStarted\"}",
    .json_len = 27,
    .owner = "alice",
    .owner_len = 5,
    .flags = TALAS_IPC_EVENT_PRIVATE,
};

/* MSG: a message from node-a (pid 1, sequence 1) around PAYLOAD, an event
 * as talas_ipc_event_put writes it, written field by field so that the
 * event inside can be one the encoder would refuse. */
static void wrap(struct talas_buf *msg, const struct talas_buf *payload)
{
    struct talas_record_writer w;

    msg->len = 0;
    talas_record_writer_buf(&w, msg);
    talas_record_put_u32(&w, TALAS_CLUSTER_MSG_MAGIC);
    talas_record_put_str(&w, "node-a");
    talas_record_put_u32(&w, 1);
    talas_record_put_u64(&w, 1);
    talas_record_put_blob(&w, payload->data, payload->len);
}

static void test_round_trip(void **state)
{
    struct talas_cluster_msg m = {.node = "node-a",
                                  .node_len = 6,
                                  .pid = 4242,
                                  .seq = 9,
                                  .event = private_play},
                             got;
    struct talas_buf out = {0};

    assert_int_equal(talas_cluster_msg_encode(&out, &m), 0);
    assert_int_equal(talas_cluster_msg_decode(out.data, out.len, &got), 0);
    assert_int_equal(got.node_len, 6);
    assert_string_equal(got.node, "node-a");
    assert_int_equal(got.pid, 4242);
    assert_int_equal(got.seq, 9);
    /* the event as the master's relay carries it: target, owner, privacy */
    assert_int_equal(got.event.target, TALAS_WS_TO_ALL);
    assert_int_equal(got.event.flags, TALAS_IPC_EVENT_PRIVATE);
    assert_int_equal(got.event.owner_len, 5);
    assert_memory_equal(got.event.owner, "alice", 5);
    assert_int_equal(got.event.json_len, 27);
    assert_memory_equal(got.event.json, private_play.json, 27);
    assert_int_equal(got.event.to_len, 0);
    /* any other length of the same bytes is refused (exact copies: ASan
     * sees any overread) */
    for (size_t n = 0; n < out.len; n++) {
        void *copy = malloc(n ? n : 1);
        memcpy(copy, out.data, n);
        assert_int_equal(talas_cluster_msg_decode(copy, n, &got), -1);
        free(copy);
    }
    talas_buf_append(&out, "", 1);
    assert_int_equal(talas_cluster_msg_decode(out.data, out.len, &got), -1);
    talas_buf_free(&out);

    /* send_to_user and send_to_connection keep their target */
    m.event = (struct talas_ipc_event){.target = TALAS_WS_TO_CONNECTION,
                                       .to = "0b9c7a86-0000-4000-8000-000000000001",
                                       .to_len = 36,
                                       .json = "{\"event\":\"UserFollowed\"}",
                                       .json_len = 24};
    assert_int_equal(talas_cluster_msg_encode(&out, &m), 0);
    assert_int_equal(talas_cluster_msg_decode(out.data, out.len, &got), 0);
    assert_int_equal(got.event.target, TALAS_WS_TO_CONNECTION);
    assert_int_equal(got.event.to_len, 36);
    assert_memory_equal(got.event.to, m.event.to, 36);
    talas_buf_free(&out);
}

static void test_refused(void **state)
{
    struct talas_cluster_msg m = {.node = "node-a", .node_len = 6, .pid = 1, .seq = 1, .event = private_play},
                             got;
    struct talas_buf out = {0};
    unsigned char *p;

    /* encoding: a node name that cluster.node_name would refuse, a private
     * event without its owner */
    m.node = "bad name";
    m.node_len = 8;
    assert_int_equal(talas_cluster_msg_encode(&out, &m), -1);
    m.node = "";
    m.node_len = 0;
    assert_int_equal(talas_cluster_msg_encode(&out, &m), -1);
    m.node = "node-a";
    m.node_len = 6;
    m.event.owner_len = 0;
    assert_int_equal(talas_cluster_msg_encode(&out, &m), -1);
    assert_int_equal(out.len, 0);
    m.event.owner_len = 5;

    assert_int_equal(talas_cluster_msg_encode(&out, &m), 0);
    p = (unsigned char *)out.data;
    /* the magic */
    p[0] ^= 1;
    assert_int_equal(talas_cluster_msg_decode(out.data, out.len, &got), -1);
    p[0] ^= 1;
    /* a node name with a character the configuration refuses */
    p[4 + 4] = '/';
    assert_int_equal(talas_cluster_msg_decode(out.data, out.len, &got), -1);
    p[4 + 4] = 'n';
    /* sequence 0 is never sent */
    memset(p + 4 + 4 + 7 + 4, 0, 8);
    assert_int_equal(talas_cluster_msg_decode(out.data, out.len, &got), -1);
    talas_buf_free(&out);

    /* the event inside is checked as the IPC checks it: private, no owner */
    {
        struct talas_buf payload = {0}, msg = {0};
        struct talas_ipc_event ev = private_play;

        ev.flags = 0;
        assert_int_equal(talas_ipc_event_put(&payload, &ev), 0);
        /* flags at offset 8 of the payload, owner length at 16: make it
         * private and ownerless by hand */
        ((unsigned char *)payload.data)[8] = TALAS_IPC_EVENT_PRIVATE;
        wrap(&msg, &payload);
        assert_int_equal(talas_cluster_msg_decode(msg.data, msg.len, &got), 0);
        memset(payload.data + 16, 0, 4);
        /* now the owner's 5 bytes are trailing: refused either way */
        wrap(&msg, &payload);
        assert_int_equal(talas_cluster_msg_decode(msg.data, msg.len, &got), -1);
        talas_buf_free(&payload);
        talas_buf_free(&msg);
    }
}

static void test_node_names(void **state)
{
    char long_name[66];

    assert_true(talas_cluster_node_name_valid("node-a.eu_1", 11));
    assert_false(talas_cluster_node_name_valid("", 0));
    assert_false(talas_cluster_node_name_valid("a b", 3));
    assert_false(talas_cluster_node_name_valid("a\0b", 3));
    memset(long_name, 'x', sizeof(long_name));
    assert_true(talas_cluster_node_name_valid(long_name, 64));
    assert_false(talas_cluster_node_name_valid(long_name, 65));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_node_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
