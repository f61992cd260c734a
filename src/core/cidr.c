/*
 * cidr.c - address ranges: parsing "ADDR[/BITS]" and matching addresses.
 *
 * Entry points (cidr.h): talas_cidr_parse, talas_cidr_match. Pure: no
 * allocation, no logging.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "core/cidr.h"

int talas_cidr_parse(const char *s, struct talas_cidr *r)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(s, '/');
    size_t len = slash != NULL ? (size_t)(slash - s) : strlen(s);
    unsigned max;

    if (len == 0 || len >= sizeof(host))
        return -1;
    memcpy(host, s, len);
    host[len] = '\0';
    memset(r, 0, sizeof(*r));
    if (inet_pton(AF_INET, host, r->addr) == 1) {
        r->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, host, r->addr) == 1) {
        r->family = AF_INET6;
        max = 128;
    } else {
        return -1;
    }
    r->bits = max;
    if (slash != NULL) {
        char *end;
        unsigned long bits;
        if (slash[1] < '0' || slash[1] > '9')
            return -1;
        errno = 0;
        bits = strtoul(slash + 1, &end, 10);
        if (errno != 0 || *end != '\0' || bits > max)
            return -1;
        r->bits = (unsigned)bits;
    }
    for (unsigned i = r->bits; i < max; i++)
        r->addr[i / 8] &= (unsigned char)~(0x80u >> (i % 8));
    return 0;
}

static int prefix_equal(const unsigned char *a, const unsigned char *b, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;
    unsigned char mask = (unsigned char)(0xffu << (8 - rest));

    if (memcmp(a, b, whole) != 0)
        return 0;
    return rest == 0 || (a[whole] & mask) == (b[whole] & mask);
}

int talas_cidr_match(const struct talas_cidr *c, const struct sockaddr *sa)
{
    static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    const unsigned char *addr;
    int family = sa->sa_family;

    if (family == AF_INET) {
        addr = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
    } else if (family == AF_INET6) {
        addr = (const unsigned char *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (memcmp(addr, v4mapped, sizeof(v4mapped)) == 0) {
            family = AF_INET;
            addr += 12;
        }
    } else {
        return 0;
    }
    return family == c->family && prefix_equal(addr, c->addr, c->bits);
}
