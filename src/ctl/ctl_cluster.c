/*
 * ctl_cluster.c - `talasctl cluster status`: the live nodes of the
 * cluster, with their listeners and WebSocket connections, as their
 * workers last wrote them to Redis (core/cluster_keys.h).
 *
 * Entry point: talasctl_cmd_cluster. talasctl is not a worker: it uses
 * hiredis's blocking API, with a 2 s timeout on the connection and on each
 * command. A node is live while its record has not expired (it is
 * refreshed every TALAS_CLUSTER_REFRESH_MS and lives TALAS_CLUSTER_TTL_MS).
 * Exit 1 when cluster mode is off or Redis cannot be reached or refuses.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "core/cluster_keys.h"
#include "core/json.h"
#include "ctl/talasctl.h"

#define TIMEOUT_S 2

struct node {
    char *name;
    unsigned long long listeners, connections, workers, last_seen_ms;
};

static redisContext *connect_redis(const char *address)
{
    struct timeval tv = {TIMEOUT_S, 0};
    const char *colon;
    char *host;
    redisContext *c;

    if (strncmp(address, "unix:", 5) == 0)
        return redisConnectUnixWithTimeout(address + 5, tv);
    colon = strrchr(address, ':');
    if (address[0] == '[')
        host = xstrndup(address + 1, (size_t)(colon - address - 2));
    else
        host = xstrndup(address, (size_t)(colon - address));
    c = redisConnectWithTimeout(host, atoi(colon + 1), tv);
    free(host);
    return c;
}

static int read_password(const char *path, char *out, size_t size)
{
    FILE *f = fopen(path, "re");

    if (f == NULL)
        return -1;
    if (fgets(out, (int)size, f) == NULL)
        out[0] = '\0';
    fclose(f);
    out[strcspn(out, "\r\n")] = '\0';
    return out[0] != '\0' ? 0 : -1;
}

/* The reply of a command, or NULL with the reason printed. */
static redisReply *command(redisContext *c, const char *address, int argc, const char **argv)
{
    redisReply *r = redisCommandArgv(c, argc, argv, NULL);

    if (r == NULL) {
        fprintf(stderr, "talasctl: Redis at %s: %s: %s\n", address, argv[0], c->errstr);
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "talasctl: Redis at %s refused %s: %s\n", address, argv[0], r->str);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct node *)a)->name, ((const struct node *)b)->name);
}

static void print(const struct talas_config *conf, const struct node *nodes, size_t count, uint64_t now)
{
    if (talasctl_json) {
        struct talas_buf b = {0};
        struct talas_json j;

        talas_json_init(&j, &b);
        talas_json_object_begin(&j);
        talas_json_key(&j, "redis");
        talas_json_string(&j, conf->cluster_redis);
        talas_json_key(&j, "node");
        talas_json_string(&j, conf->cluster_node_name);
        talas_json_key(&j, "nodes");
        talas_json_array_begin(&j);
        for (size_t i = 0; i < count; i++) {
            talas_json_object_begin(&j);
            talas_json_key(&j, "node");
            talas_json_string(&j, nodes[i].name);
            talas_json_key(&j, "listeners");
            talas_json_uint(&j, nodes[i].listeners);
            talas_json_key(&j, "connections");
            talas_json_uint(&j, nodes[i].connections);
            talas_json_key(&j, "workers");
            talas_json_uint(&j, nodes[i].workers);
            talas_json_key(&j, "last_seen_ms");
            talas_json_uint(&j, nodes[i].last_seen_ms);
            talas_json_object_end(&j);
        }
        talas_json_array_end(&j);
        talas_json_object_end(&j);
        printf("%.*s\n", (int)b.len, b.data);
        talas_buf_free(&b);
        return;
    }
    printf("redis: %s\n", conf->cluster_redis);
    printf("nodes: %zu live (figures refreshed every %d s, gone %d s after the last)\n", count,
           TALAS_CLUSTER_REFRESH_MS / 1000, TALAS_CLUSTER_TTL_MS / 1000);
    printf("%-24s %10s %12s %8s %10s\n", "NODE", "LISTENERS", "CONNECTIONS", "WORKERS", "SEEN");
    for (size_t i = 0; i < count; i++) {
        double ago = now > nodes[i].last_seen_ms ? (double)(now - nodes[i].last_seen_ms) / 1000 : 0;
        printf("%-24s %10llu %12llu %8llu %8.1fs%s\n", nodes[i].name, nodes[i].listeners,
               nodes[i].connections, nodes[i].workers, ago,
               strcmp(nodes[i].name, conf->cluster_node_name) == 0 ? "  (this node)" : "");
    }
}

static int status(const struct talas_config *conf)
{
    redisContext *c;
    redisReply *r = NULL;
    struct node *nodes = NULL;
    size_t count = 0;
    uint64_t now = talas_wall_ms();
    char since[32], password[1024];
    int rc = TALASCTL_FAILURE;

    c = connect_redis(conf->cluster_redis);
    if (c == NULL || c->err) {
        fprintf(stderr, "talasctl: cannot reach Redis at %s: %s\n", conf->cluster_redis,
                c != NULL ? c->errstr : "out of memory");
        goto out;
    }
    {
        struct timeval tv = {TIMEOUT_S, 0};
        redisSetTimeout(c, tv);
    }
    if (conf->cluster_redis_password_file != NULL) {
        const char *argv[2] = {"AUTH", password};
        if (read_password(conf->cluster_redis_password_file, password, sizeof(password)) != 0) {
            fprintf(stderr, "talasctl: cluster.redis_password_file: cannot read \"%s\"\n",
                    conf->cluster_redis_password_file);
            goto out;
        }
        r = command(c, conf->cluster_redis, 2, argv);
        explicit_bzero(password, sizeof(password));
        if (r == NULL)
            goto out;
        freeReplyObject(r);
    }
    snprintf(since, sizeof(since), "(%llu", (unsigned long long)now);
    {
        const char *argv[4] = {"ZRANGEBYSCORE", TALAS_CLUSTER_NODES, since, "+inf"};
        if ((r = command(c, conf->cluster_redis, 4, argv)) == NULL)
            goto out;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements > 0)
        nodes = xcalloc(r->elements, sizeof(*nodes));
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        char key[160];
        const char *argv[2] = {"HGETALL", key};
        redisReply *h;
        struct node *n;

        if (r->element[i]->type != REDIS_REPLY_STRING || r->element[i]->len > 100)
            continue;
        snprintf(key, sizeof(key), TALAS_CLUSTER_NODE_PREFIX "%s", r->element[i]->str);
        if ((h = command(c, conf->cluster_redis, 2, argv)) == NULL)
            goto out;
        if (h->type != REDIS_REPLY_ARRAY || h->elements == 0) {
            /* expired between the two commands */
            freeReplyObject(h);
            continue;
        }
        n = &nodes[count++];
        n->name = xstrdup(r->element[i]->str);
        for (size_t k = 0; k + 1 < h->elements; k += 2) {
            const char *f = h->element[k]->str, *v = h->element[k + 1]->str;
            if (f == NULL || v == NULL)
                continue;
            if (strcmp(f, "listeners") == 0)
                n->listeners = strtoull(v, NULL, 10);
            else if (strcmp(f, "connections") == 0)
                n->connections = strtoull(v, NULL, 10);
            else if (strcmp(f, "workers") == 0)
                n->workers = strtoull(v, NULL, 10);
            else if (strcmp(f, "last_seen_ms") == 0)
                n->last_seen_ms = strtoull(v, NULL, 10);
        }
        freeReplyObject(h);
    }
    if (count > 1)
        qsort(nodes, count, sizeof(*nodes), by_name);
    print(conf, nodes, count, now);
    rc = TALASCTL_OK;
out:
    if (r != NULL)
        freeReplyObject(r);
    for (size_t i = 0; i < count; i++)
        free(nodes[i].name);
    free(nodes);
    if (c != NULL)
        redisFree(c);
    return rc;
}

int talasctl_cmd_cluster(const struct talas_config *conf, char **args, int nargs)
{
    if (!conf->cluster_enabled) {
        fprintf(stderr, "talasctl: cluster mode is off (the configuration names no cluster.redis)\n");
        return TALASCTL_FAILURE;
    }
    return status(conf);
}
