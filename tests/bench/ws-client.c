/*
 * ws-client.c - a client process of scripts/bench-ws on libwslay, and the
 * bare-TCP reference it is compared with.
 *
 *   talas-bench-ws-client PORT USER_PREFIX COUNT EXPECTED
 *
 * Opens COUNT WebSocket connections to 127.0.0.1:PORT/api/ws
 * (user_id=USER_PREFIX_<n>): an HTTP/1.1 upgrade whose 101 and
 * Sec-WebSocket-Accept are checked, then wslay's client API reads the
 * frames. Prints "ready" once all are open and stamps every message on
 * arrival: a ServerMessage whose text holds "t" (the publisher's wall
 * clock, seconds) gives a latency, one holding "burst" counts toward the
 * burst; any other message (not a ServerMessage with either) is bad. On
 * "finish" (a line on stdin) it waits until EXPECTED messages per
 * connection have arrived (at most 60 s) and prints one JSON line, as
 * tests/bench/ws-clients.mjs does:
 * {"lat": [[broadcast, seconds]...], "burst_seen", "burst_last", "got",
 * "expected", "bad", "dup", "conns_wrong", "cpu_ready", "cpu_burst0",
 * "cpu_last"}: "dup" counts messages whose broadcast or burst number had
 * already reached that connection, "conns_wrong" the connections that did
 * not get exactly EXPECTED messages (so with both 0 every connection got
 * each event once, as scripts/bench-cluster checks); the cpu_ figures are
 * the process's user+system CPU seconds once the connections are open,
 * when the first burst message arrived and when the last expected message
 * arrived (or at the end).
 *
 *   talas-bench-ws-client --room PORT USER_PREFIX COUNT USERS ROOM_ID INVITE ROUNDS
 *
 * scripts/bench-rooms's members: COUNT connections as above, connection n
 * being user USER_PREFIX_<n % USERS>, each sending JoinRoom ROOM_ID with
 * INVITE once all are open; "ready" once every JoinRoom was answered
 * (a failure is counted, its error printed on stderr). Then, for each of
 * ROUNDS rounds, one reference ServerMessage as above (its "i" the round)
 * and one RoomState of ROOM_ID whose playback position_ms is
 * TALAS_BENCH_SEEK_BASE + 1000 x round (the host's RoomSeek); its arrival
 * is stamped with the wall clock (the script knows when the seek left).
 * Other events of the room count as "other", anything else (or another
 * room's) as bad. On "finish" it waits for ROUNDS of each per connection
 * (at most 60 s) and prints one JSON line: {"lat", "room": [[round, wall
 * seconds]...], "ref_cpu", "room_cpu" (the process's CPU seconds when the
 * last delivery of each round arrived), "joined", "join_failed", "got",
 * "expected", "room_got", "room_expected", "bad", "dup", "other",
 * "conns_wrong", "cpu_ready", "cpu_last", "state_bytes" (the size of the
 * last seek's RoomState), "reports", "report_failed", "join_s" (from the
 * first JoinRoom sent to the last answered)}. A member silent for
 * 30 s is dropped from a room, so the first connection of each user that
 * has joined sends RoomMemberStatus every 10 s, as a player would, the
 * users spread over those 10 s.
 *
 *   talas-bench-ws-client --bare COUNT ROUNDS
 *
 * The reference: COUNT loopback TCP connections, a reader process that
 * reads them with epoll, and ROUNDS rounds of one 200-byte send() to each.
 * Prints {"send_cpu_us": per send, "round_ms": median wall time of a
 * round}: what the kernel alone costs to hand one message to every
 * connection.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <wslay/wslay.h>

struct conn {
    int fd;
    int drained; /* the last read() came back short: the socket is empty */
    wslay_event_context_ptr ctx;
    uint64_t got;
    /* broadcast and burst numbers seen here, one bit each below EXPECTED */
    uint64_t *seen_t, *seen_burst;
    /* --room: its JoinRoom answered; seek rounds seen here; when it
     * reports next */
    int answered;
    double next_report;
    uint64_t got_room, *seen_room;
};

/* The position of round 0's seek: far from any position a play or a
 * pause of the script gives. */
#define TALAS_BENCH_SEEK_BASE 100007

static struct {
    int on;
    const char *id;
    int rounds, users;
    double join_s;
    uint64_t joined, join_failed, room_got, other, reports, report_failed;
    size_t state_bytes;
    struct stamp *arrivals;
    size_t arrival_count, arrival_cap;
    double *ref_cpu, *room_cpu;
} room;

struct stamp {
    int broadcast;
    double latency;
};

static struct {
    uint64_t got, expected, burst_seen, bad, dup;
    uint64_t expected_per_conn;
    double burst_last, cpu_ready, cpu_burst0, cpu_last;
    struct stamp *lat;
    size_t lat_count, lat_cap;
} st;

static void die(const char *what)
{
    fprintf(stderr, "talas-bench-ws-client: %s: %s\n", what, strerror(errno));
    exit(1);
}

static double wall(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double mono(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int connect_loopback(int port)
{
    struct sockaddr_in sin = {
        .sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

    if (fd == -1)
        die("socket()");
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0)
        die("connect()");
    /* a command (--room) leaves in two writes, frame header and payload:
     * under Nagle the second waits for the server's delayed ACK, 40 ms */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

/* ------------------------------------------------------- websocket */

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
    struct conn *c = user;
    ssize_t n;

    /* a short read emptied the socket: asking again would cost a read()
     * that fails with EAGAIN for every message (epoll says when more
     * comes) */
    if (c->drained) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    while ((n = read(c->fd, buf, len)) == -1 && errno == EINTR)
        ;
    if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (n <= 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    c->drained = (size_t)n < len;
    return n;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *user)
{
    struct conn *c = user;
    ssize_t n;

    while ((n = send(c->fd, data, len, MSG_NOSIGNAL)) == -1 && errno == EINTR)
        ;
    if (n == -1) {
        wslay_event_set_error(ctx, errno == EAGAIN ? WSLAY_ERR_WOULDBLOCK : WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return n;
}

static int genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user)
{
    return getrandom(buf, len, 0) == (ssize_t)len ? 0 : -1;
}

/* Counts a duplicate when number N already reached this connection. */
static void mark_seen(uint64_t *seen, long n)
{
    if (n < 0 || (uint64_t)n >= st.expected_per_conn)
        return;
    if (seen[n / 64] & (UINT64_C(1) << (n % 64)))
        st.dup++;
    seen[n / 64] |= UINT64_C(1) << (n % 64);
}

static double cpu_seconds(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}

static const char *find(const uint8_t *msg, size_t len, const char *what)
{
    return memmem(msg, len, what, strlen(what));
}

/* --room: a message that is not a ServerMessage. 1 when it was handled
 * here (counted as a seek, other, or bad). */
static int room_msg(struct conn *c, const struct wslay_event_on_msg_recv_arg *arg, double at)
{
    const uint8_t *msg = arg->msg;
    size_t len = arg->msg_length;
    char want[64];
    const char *p, *end = (const char *)msg + len;

    if (find(msg, len, "\"event\":\"ServerMessage\"") != NULL)
        return 0;
    if (find(msg, len, "\"event\":\"CommandResponse\"") != NULL &&
        find(msg, len, "\"command_id\":\"join\"") != NULL && !c->answered) {
        c->answered = 1;
        if (find(msg, len, "\"success\":true") != NULL) {
            room.joined++;
        } else {
            if (room.join_failed++ == 0)
                fprintf(stderr, "talas-bench-ws-client: JoinRoom failed: %.*s\n", (int)(len > 400 ? 400 : len),
                        (const char *)msg);
        }
        return 1;
    }
    if (find(msg, len, "\"event\":\"CommandResponse\"") != NULL &&
        find(msg, len, "\"command_id\":\"status\"") != NULL) {
        if (find(msg, len, "\"success\":true") == NULL && room.report_failed++ == 0)
            fprintf(stderr, "talas-bench-ws-client: RoomMemberStatus failed: %.*s\n", (int)(len > 400 ? 400 : len),
                    (const char *)msg);
        return 1;
    }
    snprintf(want, sizeof(want), "\"room_id\":\"%s\"", room.id);
    if (find(msg, len, "\"event\":\"Room") == NULL || find(msg, len, want) == NULL) {
        st.bad++;
        return 1;
    }
    if (find(msg, len, "\"event\":\"RoomState\"") != NULL && (p = find(msg, len, "\"playback\":{")) != NULL &&
        (p = memmem(p, (size_t)(end - p), "\"position_ms\":", 14)) != NULL) {
        long long pos = strtoll(p + 14, NULL, 10);
        if (pos >= TALAS_BENCH_SEEK_BASE && (pos - TALAS_BENCH_SEEK_BASE) % 1000 == 0 &&
            (pos - TALAS_BENCH_SEEK_BASE) / 1000 < room.rounds) {
            int k = (int)((pos - TALAS_BENCH_SEEK_BASE) / 1000);
            if (room.arrival_count == room.arrival_cap) {
                room.arrival_cap = room.arrival_cap ? room.arrival_cap * 2 : 65536;
                if ((room.arrivals = realloc(room.arrivals, room.arrival_cap * sizeof(*room.arrivals))) == NULL)
                    die("realloc()");
            }
            room.arrivals[room.arrival_count].broadcast = k;
            room.arrivals[room.arrival_count++].latency = at;
            mark_seen(c->seen_room, k);
            c->got_room++;
            room.room_got++;
            room.state_bytes = len;
            room.room_cpu[k] = cpu_seconds();
            return 1;
        }
    }
    room.other++;
    return 1;
}

/* The ServerMessage's text is itself JSON, escaped inside the event:
 * {"event":"ServerMessage","message":"{\"i\": 3, \"t\": 1763.25}",...} */
static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg, void *user)
{
    static const char t_key[] = "\\\"t\\\": ", i_key[] = "\\\"i\\\": ", burst_key[] = "{\\\"burst\\\":";
    double at = wall();
    struct conn *c = user;
    const char *msg = (const char *)arg->msg, *p;
    char text[512];

    if (arg->opcode != WSLAY_TEXT_FRAME)
        return;
    if (room.on && room_msg(c, arg, at))
        return;
    c->got++;
    if (++st.got == st.expected)
        st.cpu_last = cpu_seconds();
    if (arg->msg_length >= sizeof(text)) {
        st.bad++;
        return;
    }
    memcpy(text, msg, arg->msg_length);
    text[arg->msg_length] = '\0';
    if (strstr(text, "\"event\":\"ServerMessage\"") == NULL) {
        st.bad++;
    } else if ((p = strstr(text, t_key)) != NULL) {
        const char *i = strstr(text, i_key);
        if (st.lat_count == st.lat_cap) {
            st.lat_cap = st.lat_cap ? st.lat_cap * 2 : 65536;
            if ((st.lat = realloc(st.lat, st.lat_cap * sizeof(*st.lat))) == NULL)
                die("realloc()");
        }
        st.lat[st.lat_count].broadcast = i != NULL ? atoi(i + sizeof(i_key) - 1) : -1;
        st.lat[st.lat_count++].latency = at - strtod(p + sizeof(t_key) - 1, NULL);
        mark_seen(c->seen_t, st.lat[st.lat_count - 1].broadcast);
        if (room.on && st.lat[st.lat_count - 1].broadcast >= 0 && st.lat[st.lat_count - 1].broadcast < room.rounds)
            room.ref_cpu[st.lat[st.lat_count - 1].broadcast] = cpu_seconds();
    } else if ((p = strstr(text, burst_key)) != NULL) {
        mark_seen(c->seen_burst, strtol(p + sizeof(burst_key) - 1, NULL, 10));
        if (st.burst_seen++ == 0)
            st.cpu_burst0 = cpu_seconds();
        st.burst_last = at;
    } else {
        st.bad++;
    }
}

static const struct wslay_event_callbacks callbacks = {
    .recv_callback = recv_cb,
    .send_callback = send_cb,
    .genmask_callback = genmask_cb,
    .on_msg_recv_callback = on_msg,
};

/* Opens one WebSocket connection: the upgrade is written and its answer
 * read while the socket blocks, then the socket is made non-blocking. */
static void ws_open(struct conn *c, int port, const char *user)
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    unsigned char nonce[16], sha[SHA_DIGEST_LENGTH], src[24 + sizeof(guid) - 1];
    char key[32], accept[32], want[64], req[512], res[2048], *hdr;
    size_t got = 0;
    int len;

    if (getrandom(nonce, sizeof(nonce), 0) != (ssize_t)sizeof(nonce))
        die("getrandom()");
    EVP_EncodeBlock((unsigned char *)key, nonce, sizeof(nonce));
    memcpy(src, key, 24);
    memcpy(src + 24, guid, sizeof(guid) - 1);
    SHA1(src, sizeof(src), sha);
    EVP_EncodeBlock((unsigned char *)accept, sha, sizeof(sha));
    snprintf(want, sizeof(want), "%s\r\n", accept);

    c->fd = connect_loopback(port);
    len = snprintf(req, sizeof(req),
                   "GET /api/ws?user_id=%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                   user, port, key);
    if (write(c->fd, req, (size_t)len) != len)
        die("write(upgrade)");
    /* the server sends nothing after the 101 until an event comes */
    while (got < 4 || memcmp(res + got - 4, "\r\n\r\n", 4) != 0) {
        ssize_t n = read(c->fd, res + got, 1);
        if (n <= 0 || ++got == sizeof(res) - 1) {
            fprintf(stderr, "talas-bench-ws-client: the upgrade of %s failed\n", user);
            exit(1);
        }
    }
    res[got] = '\0';
    /* header names in any case; the value exactly */
    hdr = strcasestr(res, "\r\nsec-websocket-accept:");
    if (strncmp(res, "HTTP/1.1 101 ", 13) != 0 || hdr == NULL ||
        strncmp(hdr + 23 + strspn(hdr + 23, " "), want, strlen(want)) != 0) {
        fprintf(stderr, "talas-bench-ws-client: no valid 101 for %s:\n%s", user, res);
        exit(1);
    }
    if (fcntl(c->fd, F_SETFL, O_NONBLOCK) != 0)
        die("fcntl()");
    if (wslay_event_context_client_init(&c->ctx, &callbacks, c) != 0)
        die("wslay_event_context_client_init()");
}

static void print_result(const struct conn *conns, int count)
{
    uint64_t wrong = 0;

    for (int i = 0; i < count; i++)
        wrong += conns[i].got != st.expected_per_conn;
    printf("{\"lat\":[");
    for (size_t i = 0; i < st.lat_count; i++)
        printf("%s[%d,%.6f]", i ? "," : "", st.lat[i].broadcast, st.lat[i].latency);
    printf("],\"burst_seen\":%llu,\"burst_last\":%.6f,\"got\":%llu,\"expected\":%llu,\"bad\":%llu,"
           "\"dup\":%llu,\"conns_wrong\":%llu,\"cpu_ready\":%.6f,\"cpu_burst0\":%.6f,\"cpu_last\":%.6f}\n",
           (unsigned long long)st.burst_seen, st.burst_last, (unsigned long long)st.got,
           (unsigned long long)st.expected, (unsigned long long)st.bad, (unsigned long long)st.dup,
           (unsigned long long)wrong, st.cpu_ready, st.cpu_burst0,
           st.cpu_last > 0 ? st.cpu_last : cpu_seconds());
    fflush(stdout);
}

static int run_clients(int port, const char *prefix, int count, int per_conn)
{
    struct conn *conns = calloc((size_t)count, sizeof(*conns));
    struct epoll_event ev, evs[512];
    double deadline = 0;
    int ep = epoll_create1(0), finishing = 0;
    char user[128];

    if (conns == NULL || ep == -1)
        die("setup");
    st.expected = (uint64_t)count * (uint64_t)per_conn;
    st.expected_per_conn = (uint64_t)per_conn;
    for (int i = 0; i < count; i++) {
        size_t words = ((size_t)per_conn + 63) / 64;
        if ((conns[i].seen_t = calloc(words ? words : 1, sizeof(uint64_t))) == NULL ||
            (conns[i].seen_burst = calloc(words ? words : 1, sizeof(uint64_t))) == NULL)
            die("calloc()");
        snprintf(user, sizeof(user), "%s_%d", prefix, i);
        ws_open(&conns[i], port, user);
        ev.events = EPOLLIN;
        ev.data.ptr = &conns[i];
        if (epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev) != 0)
            die("epoll_ctl()");
    }
    ev.events = EPOLLIN;
    ev.data.ptr = NULL; /* stdin */
    if (epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev) != 0)
        die("epoll_ctl(stdin)");
    st.cpu_ready = cpu_seconds();
    printf("ready\n");
    fflush(stdout);

    while (!finishing || (st.got < st.expected && mono() < deadline)) {
        int n = epoll_wait(ep, evs, 512, finishing ? 100 : -1);
        if (n == -1 && errno != EINTR)
            die("epoll_wait()");
        for (int k = 0; k < n; k++) {
            struct conn *c = evs[k].data.ptr;
            if (c == NULL) {
                char line[64];
                ssize_t r = read(0, line, sizeof(line));
                if (r <= 0 || memmem(line, (size_t)r, "finish", 6) != NULL) {
                    finishing = 1;
                    deadline = mono() + 60;
                    epoll_ctl(ep, EPOLL_CTL_DEL, 0, NULL);
                }
                continue;
            }
            c->drained = 0;
            if (wslay_event_recv(c->ctx) != 0) {
                /* the server closed it: it no longer counts */
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                c->fd = -1;
            }
        }
    }
    print_result(conns, count);
    for (int i = 0; i < count; i++) {
        free(conns[i].seen_t);
        free(conns[i].seen_burst);
        wslay_event_context_free(conns[i].ctx);
        if (conns[i].fd != -1)
            close(conns[i].fd);
    }
    free(conns);
    free(st.lat);
    close(ep);
    return 0;
}

/* ------------------------------------------------------------ rooms */

/* Queues TEXT on C and writes what the socket takes; the rest is written
 * when the loop finds it wants writing. */
static void ws_send_text(struct conn *c, const char *text)
{
    struct wslay_event_msg m = {.opcode = WSLAY_TEXT_FRAME, .msg = (const uint8_t *)text, .msg_length = strlen(text)};

    if (wslay_event_queue_msg(c->ctx, &m) != 0)
        die("wslay_event_queue_msg()");
    if (wslay_event_send(c->ctx) != 0)
        die("wslay_event_send()");
}

static void print_room_result(const struct conn *conns, int count)
{
    uint64_t wrong = 0;

    for (int i = 0; i < count; i++)
        wrong += conns[i].got != (uint64_t)room.rounds || conns[i].got_room != (uint64_t)room.rounds;
    printf("{\"lat\":[");
    for (size_t i = 0; i < st.lat_count; i++)
        printf("%s[%d,%.6f]", i ? "," : "", st.lat[i].broadcast, st.lat[i].latency);
    printf("],\"room\":[");
    for (size_t i = 0; i < room.arrival_count; i++)
        printf("%s[%d,%.6f]", i ? "," : "", room.arrivals[i].broadcast, room.arrivals[i].latency);
    printf("],\"ref_cpu\":[");
    for (int k = 0; k < room.rounds; k++)
        printf("%s%.6f", k ? "," : "", room.ref_cpu[k]);
    printf("],\"room_cpu\":[");
    for (int k = 0; k < room.rounds; k++)
        printf("%s%.6f", k ? "," : "", room.room_cpu[k]);
    printf("],\"joined\":%llu,\"join_failed\":%llu,\"got\":%llu,\"expected\":%llu,\"room_got\":%llu,"
           "\"room_expected\":%llu,\"bad\":%llu,\"dup\":%llu,\"other\":%llu,\"conns_wrong\":%llu,"
           "\"cpu_ready\":%.6f,\"cpu_last\":%.6f,\"state_bytes\":%zu,\"reports\":%llu,\"report_failed\":%llu,\"join_s\":%.3f}\n",
           (unsigned long long)room.joined, (unsigned long long)room.join_failed, (unsigned long long)st.got,
           (unsigned long long)st.expected, (unsigned long long)room.room_got,
           (unsigned long long)count * (unsigned long long)room.rounds, (unsigned long long)st.bad,
           (unsigned long long)st.dup, (unsigned long long)room.other, (unsigned long long)wrong, st.cpu_ready,
           cpu_seconds(), room.state_bytes, (unsigned long long)room.reports,
           (unsigned long long)room.report_failed, room.join_s);
    fflush(stdout);
}

/* Reads every connection that has something, and writes what wslay has
 * queued; a connection the server closed no longer counts. */
static void pump(int ep, struct conn *conns, int count, int timeout_ms, int *stdin_line_r)
{
    struct epoll_event evs[512];
    int n = epoll_wait(ep, evs, 512, timeout_ms);

    if (n == -1 && errno != EINTR)
        die("epoll_wait()");
    for (int k = 0; k < n; k++) {
        struct conn *c = evs[k].data.ptr;
        if (c == NULL) {
            char line[64];
            ssize_t r = read(0, line, sizeof(line));
            if (r <= 0 || memmem(line, (size_t)r, "finish", 6) != NULL) {
                *stdin_line_r = 1;
                epoll_ctl(ep, EPOLL_CTL_DEL, 0, NULL);
            }
            continue;
        }
        c->drained = 0;
        if (wslay_event_recv(c->ctx) != 0 || (wslay_event_want_write(c->ctx) && wslay_event_send(c->ctx) != 0)) {
            epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
            close(c->fd);
            c->fd = -1;
        }
    }
    /* each user's first connection reports every 10 s, the users spread
     * over those 10 s as independent players would be */
    for (int i = 0; i < count && i < room.users; i++) {
        static const char status[] = "{\"command\":\"RoomMemberStatus\",\"command_id\":\"status\",\"room_id\":\"%s\","
                                     "\"position_ms\":0,\"buffering\":false}";
        char text[sizeof(status) + 64];
        if (conns[i].fd == -1 || !conns[i].answered)
            continue;
        if (conns[i].next_report == 0)
            conns[i].next_report = mono() + 10.0 * (i + 1) / room.users;
        if (mono() < conns[i].next_report)
            continue;
        snprintf(text, sizeof(text), status, room.id);
        ws_send_text(&conns[i], text);
        conns[i].next_report += 10;
        room.reports++;
    }
    for (int i = 0; i < count; i++)
        if (conns[i].fd != -1 && wslay_event_want_write(conns[i].ctx) && wslay_event_send(conns[i].ctx) != 0) {
            epoll_ctl(ep, EPOLL_CTL_DEL, conns[i].fd, NULL);
            close(conns[i].fd);
            conns[i].fd = -1;
        }
}

static int run_room(int port, const char *prefix, int count, int users, const char *room_id, const char *invite,
                    int rounds)
{
    struct conn *conns = calloc((size_t)count, sizeof(*conns));
    struct epoll_event ev;
    int ep = epoll_create1(0), finishing = 0;
    size_t words = ((size_t)rounds + 63) / 64;
    char user[128], *join;
    double deadline;

    if (conns == NULL || ep == -1 || count < 1 || users < 1 || rounds < 1)
        die("setup");
    room.on = 1;
    room.id = room_id;
    room.rounds = rounds;
    room.users = users;
    if ((room.ref_cpu = calloc((size_t)rounds, sizeof(double))) == NULL ||
        (room.room_cpu = calloc((size_t)rounds, sizeof(double))) == NULL ||
        (join = malloc(strlen(room_id) + strlen(invite) + 128)) == NULL)
        die("calloc()");
    sprintf(join, "{\"command\":\"JoinRoom\",\"command_id\":\"join\",\"room_id\":\"%s\",\"invite\":\"%s\"}", room_id,
            invite);
    st.expected = (uint64_t)count * (uint64_t)rounds;
    st.expected_per_conn = (uint64_t)rounds;
    for (int i = 0; i < count; i++) {
        if ((conns[i].seen_t = calloc(words, sizeof(uint64_t))) == NULL ||
            (conns[i].seen_burst = calloc(words, sizeof(uint64_t))) == NULL ||
            (conns[i].seen_room = calloc(words, sizeof(uint64_t))) == NULL)
            die("calloc()");
        snprintf(user, sizeof(user), "%s_%d", prefix, i % users);
        ws_open(&conns[i], port, user);
        ev.events = EPOLLIN;
        ev.data.ptr = &conns[i];
        if (epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev) != 0)
            die("epoll_ctl()");
    }
    /* one JoinRoom after another: each member hears those after it */
    room.join_s = mono();
    deadline = room.join_s + 600;
    for (int i = 0; i < count; i++) {
        ws_send_text(&conns[i], join);
        while (!conns[i].answered && conns[i].fd != -1 && mono() < deadline)
            pump(ep, conns, count, 100, &finishing);
    }
    room.join_s = mono() - room.join_s;
    ev.events = EPOLLIN;
    ev.data.ptr = NULL; /* stdin */
    if (epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev) != 0)
        die("epoll_ctl(stdin)");
    /* the join events still on their way are not the rounds' */
    for (double quiet = mono() + 0.5; mono() < quiet;)
        pump(ep, conns, count, 100, &finishing);
    st.cpu_ready = cpu_seconds();
    printf("ready\n");
    fflush(stdout);
    while (!finishing)
        pump(ep, conns, count, -1, &finishing);
    deadline = mono() + 60;
    while ((st.got < st.expected || room.room_got < (uint64_t)count * (uint64_t)rounds) && mono() < deadline)
        pump(ep, conns, count, 100, &finishing);
    print_room_result(conns, count);
    for (int i = 0; i < count; i++) {
        free(conns[i].seen_t);
        free(conns[i].seen_burst);
        free(conns[i].seen_room);
        wslay_event_context_free(conns[i].ctx);
        if (conns[i].fd != -1)
            close(conns[i].fd);
    }
    free(conns);
    free(join);
    free(st.lat);
    free(room.arrivals);
    free(room.ref_cpu);
    free(room.room_cpu);
    close(ep);
    return 0;
}

/* ------------------------------------------------------ the reference */

static int by_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int run_bare(int count, int rounds)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    int *cl = calloc((size_t)count, sizeof(int)), *sv = calloc((size_t)count, sizeof(int));
    double *round_s = calloc((size_t)rounds, sizeof(double)), cpu0;
    int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1, ready[2];
    char msg[200];
    pid_t reader;

    if (cl == NULL || sv == NULL || round_s == NULL || ls == -1)
        die("setup");
    if (bind(ls, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(ls, 4096) != 0 ||
        getsockname(ls, (struct sockaddr *)&sin, &len) != 0)
        die("listen()");
    for (int i = 0; i < count; i++) {
        cl[i] = connect_loopback(ntohs(sin.sin_port));
        if ((sv[i] = accept(ls, NULL, NULL)) == -1)
            die("accept()");
        setsockopt(sv[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    if (pipe(ready) != 0)
        die("pipe()");
    if ((reader = fork()) == 0) {
        struct epoll_event ev, evs[512];
        int ep = epoll_create1(0);
        char buf[4096];
        for (int i = 0; i < count; i++) {
            ev.events = EPOLLIN;
            ev.data.fd = cl[i];
            epoll_ctl(ep, EPOLL_CTL_ADD, cl[i], &ev);
        }
        for (long got = 0; got < (long)count * rounds;) {
            int n = epoll_wait(ep, evs, 512, -1);
            for (int k = 0; k < n; k++)
                if (read(evs[k].data.fd, buf, sizeof(buf)) > 0)
                    got++;
        }
        _exit(0);
    }
    memset(msg, 'x', sizeof(msg));
    cpu0 = cpu_seconds();
    for (int r = 0; r < rounds; r++) {
        double t;
        usleep(300000);
        t = mono();
        for (int i = 0; i < count; i++)
            if (send(sv[i], msg, sizeof(msg), MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)sizeof(msg))
                die("send()");
        round_s[r] = mono() - t;
    }
    cpu0 = cpu_seconds() - cpu0;
    waitpid(reader, NULL, 0);
    qsort(round_s, (size_t)rounds, sizeof(double), by_double);
    printf("{\"send_cpu_us\":%.3f,\"round_ms\":%.3f}\n", cpu0 / ((double)count * rounds) * 1e6,
           round_s[rounds / 2] * 1e3);
    for (int i = 0; i < count; i++) {
        close(cl[i]);
        close(sv[i]);
    }
    close(ls);
    free(cl);
    free(sv);
    free(round_s);
    return 0;
}

int main(int argc, char **argv)
{
    raise_nofile();
    if (argc == 4 && strcmp(argv[1], "--bare") == 0)
        return run_bare(atoi(argv[2]), atoi(argv[3]));
    if (argc == 5)
        return run_clients(atoi(argv[1]), argv[2], atoi(argv[3]), atoi(argv[4]));
    if (argc == 9 && strcmp(argv[1], "--room") == 0)
        return run_room(atoi(argv[2]), argv[3], atoi(argv[4]), atoi(argv[5]), argv[6], argv[7], atoi(argv[8]));
    fprintf(stderr, "usage: talas-bench-ws-client PORT USER_PREFIX COUNT EXPECTED\n"
                    "       talas-bench-ws-client --room PORT USER_PREFIX COUNT USERS ROOM_ID INVITE ROUNDS\n"
                    "       talas-bench-ws-client --bare COUNT ROUNDS\n");
    return 2;
}
