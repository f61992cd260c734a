/*
 * master_ipc.c - the master's end of the workers' socketpairs: it relays
 * realtime events between workers and gathers their figures.
 *
 * Entry points (declared in master.h): talas_master_ipc_pair,
 * talas_master_ipc_attach, talas_master_ipc_detach,
 * talas_master_ipc_close_all_in_child, talas_master_ipc_pollfds,
 * talas_master_ipc_handle, talas_master_ipc_tick, talas_master_ipc_stats,
 * talas_master_ipc_retired, talas_master_ipc_send_all.
 *
 * Every worker has one non-blocking SOCK_STREAM socketpair with the master.
 * An EVENT read from one worker is checked (talas_ipc_event_decode) and its
 * frame appended, unchanged, to the outbound queue of every other worker:
 * one reader, one queue per destination, appended in the order read, so
 * the events of one publisher arrive everywhere in the order it sent them.
 *
 * The master must never wait for a worker. A worker that does not read
 * (stopped, or stuck in a long loop pass) sees its queue grow up to
 * QUEUE_MAX; past it the master drops the frames meant for it and logs it
 * (at most every 10 s per worker). Dropping costs that worker's clients
 * some notifications; killing it instead would cost every media stream it
 * serves, and blocking would stall the relay for all the others. A worker
 * that sends bytes that cannot be a frame is out of sync: its channel is
 * closed (logged) and its own clients stop receiving other workers' events
 * until it is replaced.
 *
 * Logs: channels closed on bad input, dropped frames, failed socketpair().
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "master/master.h"
#include "core/util.h"

/* Bytes queued for one worker before frames for it are dropped. */
#define QUEUE_MAX (16 * 1024 * 1024)
/* How often, at most, the figures of all workers go out. */
#define STATS_PERIOD_MS 200

struct talas_ipc_chan {
    int fd;
    pid_t pid;
    struct talas_buf in;
    struct talas_buf out;
    size_t out_off; /* bytes of OUT already written */
    struct talas_ipc_stats stats;
    int have_stats;
    uint64_t dropped;
    uint64_t drop_logged_ms;
};

int talas_master_ipc_pair(int fds[2])
{
    int size = 1024 * 1024;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == -1) {
        log_error("%s: socketpair() failed: %s", __func__, strerror(errno));
        return -1;
    }
    /* room for bursts, so that a busy worker rarely leaves data queued here */
    setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
    setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
    return 0;
}

void talas_master_ipc_attach(struct talas_child *c, int fd)
{
    c->ipc = xcalloc(1, sizeof(*c->ipc));
    c->ipc->fd = fd;
    c->ipc->pid = c->pid;
    c->ipc->stats.pid = (uint32_t)c->pid;
}

void talas_master_ipc_detach(struct talas_master *m, struct talas_child *c)
{
    struct talas_ipc_chan *ch = c->ipc;

    if (ch == NULL)
        return;
    if (ch->have_stats) {
        m->ipc_retired.total_connections += ch->stats.total_connections;
        m->ipc_retired.messages_sent += ch->stats.messages_sent;
        m->ipc_retired.messages_received += ch->stats.messages_received;
        m->ipc_retired.events_broadcast += ch->stats.events_broadcast;
        m->ipc_stats_dirty = 1;
    }
    if (ch->dropped > 0)
        log_warn("ipc: %llu frame(s) for worker pid %d were dropped in all", (unsigned long long)ch->dropped,
                 (int)ch->pid);
    close(ch->fd);
    talas_buf_free(&ch->in);
    talas_buf_free(&ch->out);
    free(ch);
    c->ipc = NULL;
}

void talas_master_ipc_close_all_in_child(struct talas_master *m)
{
    for (size_t i = 0; i < m->child_count; i++)
        if (m->children[i].ipc != NULL)
            close(m->children[i].ipc->fd);
}

/* Writes what the socket takes now; never waits. Returns -1 when the
 * worker's end is gone. */
static int flush(struct talas_ipc_chan *ch)
{
    while (ch->out_off < ch->out.len) {
        ssize_t n = send(ch->fd, ch->out.data + ch->out_off, ch->out.len - ch->out_off, MSG_NOSIGNAL);
        if (n == -1) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return -1;
        }
        ch->out_off += (size_t)n;
    }
    if (ch->out_off == ch->out.len) {
        ch->out.len = ch->out_off = 0;
    } else if (ch->out_off > 64 * 1024 && ch->out_off * 2 > ch->out.len) {
        memmove(ch->out.data, ch->out.data + ch->out_off, ch->out.len - ch->out_off);
        ch->out.len -= ch->out_off;
        ch->out_off = 0;
    }
    return 0;
}

static void enqueue(struct talas_ipc_chan *ch, const void *frame, size_t len)
{
    if (ch->out.len - ch->out_off + len > QUEUE_MAX) {
        uint64_t now = talas_now_ms();
        ch->dropped++;
        if (now - ch->drop_logged_ms >= 10000) {
            ch->drop_logged_ms = now;
            log_warn(
                "ipc: worker pid %d does not read its channel (%zu bytes queued): dropping events for it "
                "(%llu so far)",
                (int)ch->pid, ch->out.len - ch->out_off, (unsigned long long)ch->dropped);
        }
        return;
    }
    talas_buf_append(&ch->out, frame, len);
}

static void relay(struct talas_master *m, struct talas_ipc_chan *from, const void *frame, size_t len)
{
    for (size_t i = 0; i < m->child_count; i++) {
        struct talas_ipc_chan *ch = m->children[i].ipc;
        if (ch == NULL || ch == from)
            continue;
        enqueue(ch, frame, len);
        /* write at once: most of the time the socket takes it all, and the
         * queue stays empty */
        if (flush(ch) != 0)
            ch->out.len = ch->out_off = 0; /* gone: the EOF on read closes it */
    }
}

/* Reads and handles what CH sent; -1 when the channel must close. */
static int read_chan(struct talas_master *m, struct talas_ipc_chan *ch)
{
    for (;;) {
        ssize_t n;
        talas_buf_reserve(&ch->in, 64 * 1024);
        n = recv(ch->fd, ch->in.data + ch->in.len, ch->in.cap - ch->in.len, 0);
        if (n == 0)
            return -1;
        if (n == -1) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return -1;
        }
        ch->in.len += (size_t)n;
        /* a bounded amount per wake-up: the other channels get their turn */
        if (ch->in.len >= 4 * 1024 * 1024)
            break;
    }
    size_t off = 0;
    for (;;) {
        struct talas_ipc_frame f;
        struct talas_ipc_event ev;
        size_t used;
        int rc = talas_ipc_frame_next(ch->in.data + off, ch->in.len - off, &f, &used);
        if (rc == 0)
            break;
        if (rc == -1) {
            log_error("ipc: worker pid %d sent bytes that are not a frame: closing its channel",
                      (int)ch->pid);
            return -1;
        }
        switch (f.type) {
        case TALAS_IPC_EVENT:
            if (talas_ipc_event_decode(f.payload, f.len, &ev) != 0) {
                log_error("ipc: worker pid %d sent a malformed event: closing its channel", (int)ch->pid);
                return -1;
            }
            relay(m, ch, ch->in.data + off, used);
            break;
        case TALAS_IPC_STATS:
            if (talas_ipc_stats_decode(f.payload, f.len, &ch->stats) != 0) {
                log_error("ipc: worker pid %d sent malformed figures: closing its channel", (int)ch->pid);
                return -1;
            }
            ch->stats.pid = (uint32_t)ch->pid;
            ch->have_stats = 1;
            m->ipc_stats_dirty = 1;
            break;
        default:
            log_error("ipc: worker pid %d sent a message of type %d: closing its channel", (int)ch->pid,
                      (int)f.type);
            return -1;
        }
        off += used;
    }
    memmove(ch->in.data, ch->in.data + off, ch->in.len - off);
    ch->in.len -= off;
    return 0;
}

size_t talas_master_ipc_pollfds(struct talas_master *m, struct pollfd *pfd, size_t max)
{
    size_t n = 0;

    for (size_t i = 0; i < m->child_count && n < max; i++) {
        struct talas_ipc_chan *ch = m->children[i].ipc;
        if (ch == NULL)
            continue;
        pfd[n].fd = ch->fd;
        pfd[n].events = POLLIN | (ch->out.len > ch->out_off ? POLLOUT : 0);
        pfd[n].revents = 0;
        n++;
    }
    return n;
}

void talas_master_ipc_handle(struct talas_master *m, const struct pollfd *pfd, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        if (pfd[k].revents == 0)
            continue;
        for (size_t i = 0; i < m->child_count; i++) {
            struct talas_child *c = &m->children[i];
            if (c->ipc == NULL || c->ipc->fd != pfd[k].fd)
                continue;
            if ((pfd[k].revents & POLLOUT) && flush(c->ipc) != 0) {
                talas_master_ipc_detach(m, c);
                break;
            }
            if ((pfd[k].revents & (POLLIN | POLLHUP | POLLERR)) && read_chan(m, c->ipc) != 0)
                talas_master_ipc_detach(m, c);
            break;
        }
    }
}

int talas_master_ipc_tick(struct talas_master *m, uint64_t now)
{
    struct talas_ipc_stats *all;
    struct talas_buf frame = {0};
    size_t count = 0;

    if (!m->ipc_stats_dirty)
        return 1000;
    if (now - m->ipc_stats_sent_ms < STATS_PERIOD_MS)
        return (int)(STATS_PERIOD_MS - (now - m->ipc_stats_sent_ms));
    all = xcalloc(m->child_count + 1, sizeof(*all));
    /* every live worker is a row, the ones that have not reported yet with
     * zeros: a node's worker count (cluster status) is the rows' count */
    for (size_t i = 0; i < m->child_count; i++) {
        if (m->children[i].ipc == NULL)
            continue;
        if (m->children[i].ipc->have_stats)
            all[count] = m->children[i].ipc->stats;
        else
            all[count].pid = (uint32_t)m->children[i].pid;
        count++;
    }
    all[count++] = m->ipc_retired; /* pid 0: the workers that are gone */
    talas_ipc_stats_all_encode(&frame, all, count);
    for (size_t i = 0; i < m->child_count; i++) {
        struct talas_ipc_chan *ch = m->children[i].ipc;
        if (ch == NULL)
            continue;
        enqueue(ch, frame.data, frame.len);
        if (flush(ch) != 0)
            ch->out.len = ch->out_off = 0;
    }
    talas_buf_free(&frame);
    free(all);
    m->ipc_stats_dirty = 0;
    m->ipc_stats_sent_ms = now;
    return 1000;
}

const struct talas_ipc_stats *talas_master_ipc_stats(const struct talas_child *c)
{
    return c->ipc != NULL && c->ipc->have_stats ? &c->ipc->stats : NULL;
}

const struct talas_ipc_stats *talas_master_ipc_retired(const struct talas_master *m)
{
    return &m->ipc_retired;
}

void talas_master_ipc_send_all(struct talas_master *m, const void *frame, size_t len)
{
    relay(m, NULL, frame, len);
}
