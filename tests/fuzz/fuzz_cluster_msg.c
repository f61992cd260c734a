/*
 * fuzz_cluster_msg.c - the decoder of the cluster's event message
 * (workers/cluster/cluster_msg.c), as every worker of every node reads
 * what arrives on the Redis channel: bytes that anyone able to PUBLISH on
 * that Redis may have written.
 *
 * Input: one message. Checks what cluster_msg.h promises: a decoded
 * message's node name and the event's parts (recipient, owner, JSON) lie
 * inside the input and keep their limits, the node name is one the
 * configuration accepts, a private event names its owner, and a message
 * re-encoded and decoded again gives the same values.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster_msg.h"
#include "core/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int inside(const void *p, size_t n, const void *base, size_t len)
{
    return n == 0 ||
           ((const char *)p >= (const char *)base && (const char *)p + n <= (const char *)base + len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a copy of exactly the bytes read: no slack after them */
    uint8_t *buf = malloc(size > 0 ? size : 1);
    struct talas_cluster_msg m, again;
    struct talas_buf b = {0};

    if (buf == NULL)
        abort();
    memcpy(buf, data, size);
    if (talas_cluster_msg_decode(buf, size, &m) == 0) {
        const struct talas_ipc_event *ev = &m.event;
        if (!inside(m.node, m.node_len + 1, buf, size) || m.node[m.node_len] != '\0' ||
            !talas_cluster_node_name_valid(m.node, m.node_len) || m.seq == 0)
            abort();
        if (!inside(ev->to, ev->to_len, buf, size) || !inside(ev->json, ev->json_len, buf, size) ||
            !inside(ev->owner, ev->owner_len, buf, size) || ev->to_len > TALAS_IPC_MAX_TO ||
            ev->owner_len > TALAS_IPC_MAX_TO || ev->json_len > TALAS_IPC_MAX_EVENT_JSON || ev->json_len == 0)
            abort();
        if ((ev->flags & TALAS_IPC_EVENT_PRIVATE) && ev->owner_len == 0)
            abort();
        if (talas_cluster_msg_encode(&b, &m) != 0 || b.len != size || memcmp(b.data, buf, size) != 0)
            abort();
        if (talas_cluster_msg_decode(b.data, b.len, &again) != 0 || again.pid != m.pid ||
            again.seq != m.seq || again.event.target != ev->target || again.event.flags != ev->flags)
            abort();
        talas_buf_free(&b);
    }
    free(buf);
    return 0;
}
