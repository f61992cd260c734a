/*
 * cluster_msg.h - the message that carries a realtime event from one node
 * of a cluster to the others, on the Redis channel of cluster_bus.c.
 *
 * Layout (the record codec, core/record.h, little-endian):
 *
 *   u32 magic "TLB1", the origin node's name as a string (1 to 64 bytes
 *   of A-Z a-z 0-9 . _ -), u32 the publishing worker's pid, u64 its
 *   sequence number, then a blob: the payload of the IPC EVENT message
 *   (core/ipc.h: target, target id, private flag and owner, the JSON).
 *
 * The sequence starts at 1 in each worker and grows by one per event it
 * tried to publish, sent or not, so a receiver that sees a gap from one
 * (node, pid) knows how many it missed. Pure functions, unit-tested and
 * fuzzed (tests/fuzz/fuzz_cluster_msg.c): a decoder given any bytes
 * returns -1 without reading past them.
 */
#ifndef TALAS_CLUSTER_MSG_H
#define TALAS_CLUSTER_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "core/ipc.h"
#include "core/util.h"

#define TALAS_CLUSTER_MSG_MAGIC 0x31424c54u /* "TLB1" */
#define TALAS_CLUSTER_NODE_MAX 64

struct talas_cluster_msg {
    const char *node; /* NUL-terminated, NODE_LEN bytes; points into the message */
    size_t node_len;
    uint32_t pid;
    uint64_t seq;
    struct talas_ipc_event event; /* its pointers point into the message */
};

/* 1 when the LEN bytes at S are a valid node name (cluster.node_name). */
int talas_cluster_node_name_valid(const char *s, size_t len);

/* Appends M to OUT. Returns 0, or -1 (OUT unchanged in length) when the
 * node name or a part of the event is not valid. */
int talas_cluster_msg_encode(struct talas_buf *out, const struct talas_cluster_msg *m);

/* Decodes the LEN bytes at DATA into *M, whose pointers then point into
 * DATA. Returns 0, or -1 when the bytes are not exactly one message. */
int talas_cluster_msg_decode(const void *data, size_t len, struct talas_cluster_msg *m);

#endif
