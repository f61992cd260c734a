/*
 * listen.c - opening and keeping the listening sockets (see listen.h).
 *
 * Entry points: talas_listen_set_new, _prepare, _fds, _prune. Logs the
 * addresses it starts listening on.
 *
 * The sockets are close-on-exec: a worker's child clears the flag on its
 * own sockets only, before it execs talas-worker (master_spawn.c).
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "master/listen.h"
#include "core/log.h"
#include "core/util.h"

struct entry {
    char *host;
    int port;
    int *fds;
    size_t fd_count;
};

struct talas_listen_set {
    struct entry *entries;
    size_t count;
};

struct talas_listen_set *talas_listen_set_new(void)
{
    return xcalloc(1, sizeof(struct talas_listen_set));
}

static struct entry *find(struct talas_listen_set *set, const char *host, int port)
{
    for (size_t i = 0; i < set->count; i++)
        if (set->entries[i].port == port && strcmp(set->entries[i].host, host) == 0)
            return &set->entries[i];
    return NULL;
}

static int open_socket(const char *host, int port, char **error_r)
{
    struct addrinfo hints, *res = NULL;
    char service[16];
    int fd = -1, on = 1, rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(service, sizeof(service), "%d", port);
    if ((rc = getaddrinfo(host, service, &hints, &res)) != 0) {
        *error_r = xasprintf("listen %s:%d: getaddrinfo() failed: %s", host, port, gai_strerror(rc));
        return -1;
    }
    if ((fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1) {
        *error_r = xasprintf("listen %s:%d: socket() failed: %s", host, port, strerror(errno));
        goto fail;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) == -1 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) == -1) {
        *error_r = xasprintf("listen %s:%d: setsockopt() failed: %s", host, port, strerror(errno));
        goto fail;
    }
    if (res->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
    if (bind(fd, res->ai_addr, res->ai_addrlen) == -1) {
        *error_r = xasprintf("listen %s:%d: bind() failed: %s", host, port, strerror(errno));
        goto fail;
    }
    if (listen(fd, SOMAXCONN) == -1) {
        *error_r = xasprintf("listen %s:%d: listen() failed: %s", host, port, strerror(errno));
        goto fail;
    }
    freeaddrinfo(res);
    return fd;

fail:
    if (fd != -1)
        close(fd);
    freeaddrinfo(res);
    return -1;
}

/* The I-th address of CONF: its listen entries, then its grpc.listen ones. */
static const struct talas_config_listen *address(const struct talas_config *conf, size_t i)
{
    return i < conf->listen_count ? &conf->listen[i] : &conf->grpc_listen[i - conf->listen_count];
}

size_t talas_listen_count(const struct talas_config *conf)
{
    return conf->listen_count + conf->grpc_listen_count;
}

int talas_listen_set_prepare(struct talas_listen_set *set, const struct talas_config *conf, char **error_r)
{
    for (size_t i = 0; i < talas_listen_count(conf); i++) {
        const struct talas_config_listen *l = address(conf, i);
        struct entry *e = find(set, l->host, l->port);
        size_t want = (size_t)conf->workers;

        if (e == NULL) {
            set->entries = xrealloc(set->entries, (set->count + 1) * sizeof(*set->entries));
            e = &set->entries[set->count++];
            memset(e, 0, sizeof(*e));
            e->host = xstrdup(l->host);
            e->port = l->port;
        }
        if (e->fd_count >= want)
            continue;
        e->fds = xrealloc(e->fds, want * sizeof(int));
        while (e->fd_count < want) {
            int fd = open_socket(l->host, l->port, error_r);
            if (fd == -1)
                return -1; /* opened ones stay: prune closes what no config uses */
            e->fds[e->fd_count++] = fd;
        }
        log_info("listening on %s:%d (%zu sockets)", l->host, l->port, e->fd_count);
    }
    return 0;
}

void talas_listen_set_fds(struct talas_listen_set *set, const struct talas_config *conf, int slot, int *fds)
{
    for (size_t i = 0; i < talas_listen_count(conf); i++) {
        const struct talas_config_listen *l = address(conf, i);
        struct entry *e = find(set, l->host, l->port);
        if (e == NULL || (size_t)slot >= e->fd_count)
            panic("%s: no socket for %s:%d slot %d", __func__, l->host, l->port, slot);
        fds[i] = e->fds[slot];
    }
}

void talas_listen_set_close_others(struct talas_listen_set *set, const int *keep, size_t count)
{
    for (size_t i = 0; i < set->count; i++) {
        for (size_t k = 0; k < set->entries[i].fd_count; k++) {
            int fd = set->entries[i].fds[k], kept = 0;
            for (size_t j = 0; j < count; j++)
                kept |= keep[j] == fd;
            if (!kept)
                close(fd);
        }
    }
}

void talas_listen_set_free(struct talas_listen_set *set)
{
    talas_listen_set_prune(set, NULL);
    free(set->entries);
    free(set);
}

void talas_listen_set_prune(struct talas_listen_set *set, const struct talas_config *conf)
{
    size_t kept = 0;

    for (size_t i = 0; i < set->count; i++) {
        struct entry *e = &set->entries[i];
        size_t want = 0;

        for (size_t j = 0; conf != NULL && j < talas_listen_count(conf); j++)
            if (address(conf, j)->port == e->port && strcmp(address(conf, j)->host, e->host) == 0)
                want = (size_t)conf->workers;
        while (e->fd_count > want)
            close(e->fds[--e->fd_count]);
        if (want == 0) {
            log_info("stopped listening on %s:%d", e->host, e->port);
            free(e->host);
            free(e->fds);
            continue;
        }
        set->entries[kept++] = *e;
    }
    set->count = kept;
}
