/*
 * cluster_msg.c - encoding and decoding of the cluster's event message
 * (cluster_msg.h).
 *
 * Entry points: talas_cluster_msg_encode, talas_cluster_msg_decode,
 * talas_cluster_node_name_valid. The event inside is the IPC EVENT
 * payload, written and checked by core/ipc.c, so the two paths of an
 * event (the master's relay and Redis) cannot disagree on its fields.
 * Nothing here logs, allocates (but OUT's growth) or does I/O.
 */
#include <string.h>

#include "cluster/cluster_msg.h"
#include "core/record.h"

int talas_cluster_node_name_valid(const char *s, size_t len)
{
    if (len == 0 || len > TALAS_CLUSTER_NODE_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

int talas_cluster_msg_encode(struct talas_buf *out, const struct talas_cluster_msg *m)
{
    struct talas_buf payload = {0};
    struct talas_record_writer w;

    if (m->node == NULL || !talas_cluster_node_name_valid(m->node, m->node_len))
        return -1;
    if (talas_ipc_event_put(&payload, &m->event) != 0) {
        talas_buf_free(&payload);
        return -1;
    }
    talas_record_writer_buf(&w, out);
    talas_record_put_u32(&w, TALAS_CLUSTER_MSG_MAGIC);
    /* the name's own bytes: put_str would stop at a NUL it cannot hold */
    talas_record_put_u32(&w, (uint32_t)m->node_len);
    talas_record_put_bytes(&w, m->node, m->node_len);
    talas_record_put_u8(&w, 0);
    talas_record_put_u32(&w, m->pid);
    talas_record_put_u64(&w, m->seq);
    talas_record_put_blob(&w, payload.data, payload.len);
    talas_buf_free(&payload);
    return 0;
}

int talas_cluster_msg_decode(const void *data, size_t len, struct talas_cluster_msg *m)
{
    struct talas_record_reader r;
    const void *payload;
    size_t payload_len = 0;

    memset(m, 0, sizeof(*m));
    talas_record_reader_init(&r, data, len);
    if (talas_record_get_u32(&r) != TALAS_CLUSTER_MSG_MAGIC)
        return -1;
    m->node = talas_record_get_str(&r, &m->node_len);
    m->pid = talas_record_get_u32(&r);
    m->seq = talas_record_get_u64(&r);
    payload = talas_record_get_blob(&r, &payload_len);
    if (talas_record_reader_end(&r) != 0 || m->node == NULL || payload == NULL ||
        !talas_cluster_node_name_valid(m->node, m->node_len) || m->seq == 0)
        return -1;
    if (talas_ipc_event_decode(payload, payload_len, &m->event) != 0)
        return -1;
    return 0;
}
