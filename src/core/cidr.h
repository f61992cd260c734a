/*
 * cidr.h - address ranges ("127.0.0.0/8", "::1", "10.1.2.3"): parsing and
 * matching a client's address against them (pure).
 *
 * Used by the configuration's checks (metrics.allow) and by the routes that
 * admit only some clients (workers/http/http_metrics.c).
 */
#ifndef TALAS_CIDR_H
#define TALAS_CIDR_H

#include <sys/socket.h>

struct talas_cidr {
    int family;             /* AF_INET or AF_INET6 */
    unsigned char addr[16]; /* network byte order; 4 bytes for AF_INET */
    unsigned bits;          /* prefix length */
};

/* Parses S, an address with an optional "/BITS" (without it: the address
 * alone). Host bits past the prefix are cleared. Returns 0, or -1 when S
 * is not one. */
int talas_cidr_parse(const char *s, struct talas_cidr *r);

/* Whether SA (AF_INET or AF_INET6; an IPv4-mapped IPv6 address counts as
 * its IPv4 address) lies in C. */
int talas_cidr_match(const struct talas_cidr *c, const struct sockaddr *sa);

#endif
