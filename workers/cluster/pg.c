/*
 * pg.c - the worker's PostgreSQL connection (pg.h): libpq's asynchronous
 * API on the h2o loop, one query at a time with a queue, a deadline per
 * query, the check of each fresh connection, and reconnecting with a
 * backoff.
 *
 * Entry points: talas_pg_create, talas_pg_query, talas_pg_cancel,
 * talas_pg_ready, talas_pg_reason, talas_pg_destroy.
 *
 * The socket: libpq owns its descriptor and closes it in PQfinish, so the
 * loop watches a dup() of it (h2o_evloop_socket_create with
 * H2O_SOCKET_FLAG_DONT_READ: h2o reports readiness and reads nothing);
 * the h2o socket is closed before PQfinish, which takes it out of epoll
 * first. PQconnectPoll may move to another descriptor (another address of
 * the host): the watch follows it.
 *
 * States: CONNECTING -> CHECKING (the check query) -> READY; any failure
 * -> DOWN (or REFUSED when the check said no), and a timer starts the
 * next attempt. While a first attempt after a success is under way,
 * queries wait for it; once an attempt failed, they complete at once
 * (unavailable) until one succeeds, so that nothing waits on a server
 * that is known to be away.
 *
 * Logs: connected, lost or unreachable (libpq's reason), refused by the
 * check (its reason): each once per change of reason, not per attempt.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster/pg.h"
#include "core/log.h"
#include "core/util.h"

enum state { DOWN, CONNECTING, CHECKING, READY, REFUSED };

static const uint64_t backoff_ms[] = {250, 500, 1000, 2000, 4000};
#define BACKOFF_STEPS (sizeof(backoff_ms) / sizeof(backoff_ms[0]))

struct talas_pg_query {
    struct talas_pg *pg;
    h2o_linklist_t link; /* in pg->queue while it waits */
    h2o_timeout_entry_t deadline;
    char *sql;
    int n;
    char **params;
    PGresult *last;
    talas_pg_result_fn *cb; /* NULL once cancelled */
    void *data;
    int is_check;
    uint64_t sent_us; /* 0: never sent */
};

struct talas_pg {
    h2o_loop_t *loop;
    char *conninfo, *password, *check_sql;
    talas_pg_check_fn *check;
    enum state state;
    int failing; /* the last attempt failed: queries do not wait */
    PGconn *conn;
    int fd; /* PQsocket's, watched through sock (a dup) */
    h2o_socket_t *sock;
    int write_pending; /* a notify_write is armed */
    h2o_linklist_t queue;
    struct talas_pg_query *running;
    h2o_timeout_t query_timeout, connect_timeout, retry[BACKOFF_STEPS], zero;
    h2o_timeout_entry_t connect_entry, retry_entry, kick_entry;
    size_t backoff;
    char reason[512];
    char logged[512]; /* the last reason logged */
    struct talas_metrics_slot *metrics; /* NULL: counts nothing there */
    int counted_down;                   /* counted in metrics->gauge.postgres.down */
};

static void start_connect(struct talas_pg *pg);
static void send_next(struct talas_pg *pg);

/* ------------------------------------------------------------ queries */

static void query_free(struct talas_pg_query *q)
{
    if (h2o_timeout_is_linked(&q->deadline))
        h2o_timeout_unlink(&q->deadline);
    if (h2o_linklist_is_linked(&q->link))
        h2o_linklist_unlink(&q->link);
    if (q->last != NULL)
        PQclear(q->last);
    for (int i = 0; i < q->n; i++)
        free(q->params[i]);
    free(q->params);
    free(q->sql);
    free(q);
}

/* Keeps the node's count of connections not ready (talas_postgres_up). */
static void count_down(struct talas_pg *pg, int down)
{
    if (pg->metrics == NULL || pg->counted_down == down)
        return;
    if (down)
        talas_metrics_add(&pg->metrics->gauge.postgres.down, 1);
    else
        talas_metrics_sub(&pg->metrics->gauge.postgres.down, 1);
    pg->counted_down = down;
}

/* Calls Q's callback (unless cancelled) and frees Q. */
static void complete(struct talas_pg_query *q, const PGresult *res, const char *error)
{
    talas_pg_result_fn *cb = q->cb;
    void *data = q->data;
    struct talas_metrics_slot *m = q->pg->metrics;

    if (m != NULL) {
        if (res == NULL || PQresultStatus(res) == PGRES_FATAL_ERROR || q->sent_us == 0)
            talas_metrics_add(&m->count.postgres.errors, 1);
        else
            talas_metrics_round_trip(&m->count.postgres, talas_now_us() - q->sent_us);
    }
    q->cb = NULL;
    if (cb != NULL)
        cb(data, res, error);
    query_free(q);
}

static const char *unavailable(const struct talas_pg *pg)
{
    return pg->reason[0] != '\0' ? pg->reason : "the record store cannot be reached";
}

/* ---------------------------------------------------------- the socket */

static void unwatch(struct talas_pg *pg)
{
    if (pg->sock != NULL) {
        h2o_socket_close(pg->sock); /* the dup: epoll forgets it, libpq keeps its own */
        pg->sock = NULL;
    }
    pg->fd = -1;
    pg->write_pending = 0;
}

/* Watches PQsocket's descriptor; -1 when there is none. */
static int watch(struct talas_pg *pg)
{
    int fd = PQsocket(pg->conn), copy;

    if (fd == pg->fd && pg->sock != NULL)
        return 0;
    unwatch(pg);
    if (fd < 0 || (copy = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0)
        return -1;
    pg->fd = fd;
    pg->sock = h2o_evloop_socket_create(pg->loop, copy, H2O_SOCKET_FLAG_DONT_READ);
    pg->sock->data = pg;
    return 0;
}

/* Sets the reason (libpq's messages end with a newline: not kept). */
static void set_reason(struct talas_pg *pg, const char *prefix, const char *why)
{
    size_t len;

    snprintf(pg->reason, sizeof(pg->reason), "%s%s", prefix, why != NULL ? why : "");
    len = strlen(pg->reason);
    while (len > 0 && (pg->reason[len - 1] == '\n' || pg->reason[len - 1] == ' '))
        pg->reason[--len] = '\0';
    for (char *p = pg->reason; *p != '\0'; p++)
        if (*p == '\n' || *p == '\t')
            *p = ' ';
}

static void log_change(struct talas_pg *pg, int warn)
{
    if (strcmp(pg->logged, pg->reason) == 0)
        return;
    memcpy(pg->logged, pg->reason, sizeof(pg->logged));
    if (warn)
        log_warn("records: %s", pg->reason);
    else
        log_info("records: %s", pg->reason);
}

/*
 * Ends the connection: the running query and every waiting one complete
 * as unavailable, and the next attempt is scheduled. The state is set
 * before any callback runs, so that a callback asking again is answered
 * at once.
 */
static void drop(struct talas_pg *pg, enum state to)
{
    struct talas_pg_query *running = pg->running;
    h2o_linklist_t waiting;

    log_change(pg, 1);
    unwatch(pg);
    if (pg->conn != NULL) {
        PQfinish(pg->conn);
        pg->conn = NULL;
    }
    if (h2o_timeout_is_linked(&pg->connect_entry))
        h2o_timeout_unlink(&pg->connect_entry);
    pg->state = to;
    pg->failing = 1;
    pg->running = NULL;
    count_down(pg, 1);
    h2o_timeout_link(pg->loop, &pg->retry[pg->backoff], &pg->retry_entry);
    if (pg->backoff + 1 < BACKOFF_STEPS)
        pg->backoff++;
    h2o_linklist_init_anchor(&waiting);
    h2o_linklist_insert_list(&waiting, &pg->queue);
    if (running != NULL)
        complete(running, NULL, unavailable(pg));
    while (!h2o_linklist_is_empty(&waiting)) {
        struct talas_pg_query *q = H2O_STRUCT_FROM_MEMBER(struct talas_pg_query, link, waiting.next);
        h2o_linklist_unlink(&q->link);
        complete(q, NULL, unavailable(pg));
    }
}

static void lost(struct talas_pg *pg, const char *prefix)
{
    set_reason(pg, prefix, pg->conn != NULL ? PQerrorMessage(pg->conn) : NULL);
    drop(pg, DOWN);
}

/* ------------------------------------------------------- running queries */

static void on_writable(h2o_socket_t *sock, const char *err);

/* Flushes what libpq buffered; -1 when the connection failed. */
static int flush(struct talas_pg *pg)
{
    int rc = PQflush(pg->conn);

    if (rc < 0)
        return -1;
    if (rc == 1 && !pg->write_pending) {
        pg->write_pending = 1;
        h2o_socket_notify_write(pg->sock, on_writable);
    }
    return 0;
}

static void read_results(struct talas_pg *pg)
{
    while (pg->running != NULL && !PQisBusy(pg->conn)) {
        struct talas_pg_query *q = pg->running;
        PGresult *res = PQgetResult(pg->conn);

        if (res != NULL) {
            if (q->last != NULL)
                PQclear(q->last);
            q->last = res;
            continue;
        }
        /* the query is over */
        pg->running = NULL;
        if (q->is_check) {
            char why[256] = "";
            int ok = pg->check(q->last, why, sizeof(why)) == 0;
            query_free(q);
            if (!ok) {
                set_reason(pg, "refusing the record store: ", why);
                drop(pg, REFUSED);
                return;
            }
            pg->state = READY;
            count_down(pg, 0);
            pg->failing = 0;
            pg->backoff = 0;
            set_reason(pg, "connected to PostgreSQL, schema checked", NULL);
            log_change(pg, 0);
            pg->reason[0] = '\0';
        } else {
            complete(q, q->last, NULL);
        }
        if (pg->state != READY)
            return; /* a callback's query failed the connection */
    }
    if (pg->running == NULL && pg->state == READY)
        send_next(pg);
}

static void on_readable(h2o_socket_t *sock, const char *err)
{
    struct talas_pg *pg = sock->data;

    if (err != NULL || !PQconsumeInput(pg->conn)) {
        lost(pg, "connection to PostgreSQL lost: ");
        return;
    }
    if (pg->write_pending == 0 && flush(pg) != 0) {
        lost(pg, "connection to PostgreSQL lost: ");
        return;
    }
    read_results(pg);
    if (pg->state == READY && pg->conn != NULL && PQstatus(pg->conn) == CONNECTION_BAD)
        lost(pg, "connection to PostgreSQL lost: ");
}

static void on_writable(h2o_socket_t *sock, const char *err)
{
    struct talas_pg *pg = sock->data;

    pg->write_pending = 0;
    if (err != NULL || flush(pg) != 0)
        lost(pg, "connection to PostgreSQL lost: ");
}

static void run(struct talas_pg *pg, struct talas_pg_query *q)
{
    pg->running = q;
    if (!q->is_check) {
        q->sent_us = talas_now_us();
        if (pg->metrics != NULL)
            talas_metrics_add(&pg->metrics->count.postgres.commands, 1);
    }
    if (!PQsendQueryParams(pg->conn, q->sql, q->n, NULL, (const char *const *)q->params, NULL, NULL, 0) ||
        flush(pg) != 0)
        lost(pg, "sending a query to PostgreSQL failed: ");
}

static void send_next(struct talas_pg *pg)
{
    struct talas_pg_query *q;

    if (pg->running != NULL || pg->state != READY || h2o_linklist_is_empty(&pg->queue))
        return;
    q = H2O_STRUCT_FROM_MEMBER(struct talas_pg_query, link, pg->queue.next);
    h2o_linklist_unlink(&q->link);
    run(pg, q);
}

static void on_deadline(h2o_timeout_entry_t *entry)
{
    struct talas_pg_query *q = H2O_STRUCT_FROM_MEMBER(struct talas_pg_query, deadline, entry);
    struct talas_pg *pg = q->pg;

    if (pg->running == q) {
        /* its answer may never come: the connection goes, and with it the
         * transaction, which the server rolls back */
        set_reason(pg, "a query to PostgreSQL timed out", NULL);
        drop(pg, DOWN);
        return;
    }
    h2o_linklist_unlink(&q->link);
    complete(q, NULL, "the record store did not answer in time");
}

/* ---------------------------------------------------------- connecting */

static void on_connect_io(h2o_socket_t *sock, const char *err);

static void connected(struct talas_pg *pg)
{
    struct talas_pg_query *q;

    if (h2o_timeout_is_linked(&pg->connect_entry))
        h2o_timeout_unlink(&pg->connect_entry);
    PQsetnonblocking(pg->conn, 1);
    h2o_socket_read_start(pg->sock, on_readable);
    pg->state = CHECKING;
    q = xcalloc(1, sizeof(*q));
    q->pg = pg;
    q->sql = xstrdup(pg->check_sql);
    q->is_check = 1;
    q->deadline.cb = on_deadline;
    h2o_timeout_link(pg->loop, &pg->query_timeout, &q->deadline);
    run(pg, q);
}

static void connect_step(struct talas_pg *pg)
{
    PostgresPollingStatusType st = PQconnectPoll(pg->conn);

    if (st != PGRES_POLLING_FAILED && watch(pg) != 0) {
        lost(pg, "cannot reach PostgreSQL: ");
        return;
    }
    switch (st) {
    case PGRES_POLLING_READING:
        if (!h2o_socket_is_reading(pg->sock))
            h2o_socket_read_start(pg->sock, on_connect_io);
        break;
    case PGRES_POLLING_WRITING:
        if (h2o_socket_is_reading(pg->sock))
            h2o_socket_read_stop(pg->sock);
        pg->write_pending = 1;
        h2o_socket_notify_write(pg->sock, on_connect_io);
        break;
    case PGRES_POLLING_OK:
        if (h2o_socket_is_reading(pg->sock))
            h2o_socket_read_stop(pg->sock);
        connected(pg);
        break;
    default:
        lost(pg, "cannot reach PostgreSQL: ");
        break;
    }
}

static void on_connect_io(h2o_socket_t *sock, const char *err)
{
    struct talas_pg *pg = sock->data;

    pg->write_pending = 0;
    if (err != NULL) {
        lost(pg, "cannot reach PostgreSQL: ");
        return;
    }
    connect_step(pg);
}

static void on_connect_timeout(h2o_timeout_entry_t *entry)
{
    struct talas_pg *pg = H2O_STRUCT_FROM_MEMBER(struct talas_pg, connect_entry, entry);

    set_reason(pg, "cannot reach PostgreSQL: the connection was not made in time", NULL);
    drop(pg, DOWN);
}

static void ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static void start_connect(struct talas_pg *pg)
{
    const char *keys[] = {"dbname", "password", NULL};
    const char *values[] = {pg->conninfo, pg->password, NULL};

    if (pg->password == NULL)
        keys[1] = NULL;
    if (pg->failing && pg->metrics != NULL)
        talas_metrics_add(&pg->metrics->count.postgres.reconnects, 1);
    pg->state = CONNECTING;
    pg->conn = PQconnectStartParams(keys, values, 1);
    if (pg->conn == NULL) {
        set_reason(pg, "cannot reach PostgreSQL: out of memory", NULL);
        drop(pg, DOWN);
        return;
    }
    PQsetNoticeProcessor(pg->conn, ignore_notice, NULL);
    if (PQstatus(pg->conn) == CONNECTION_BAD || watch(pg) != 0) {
        lost(pg, "cannot reach PostgreSQL: ");
        return;
    }
    h2o_timeout_link(pg->loop, &pg->connect_timeout, &pg->connect_entry);
    /* as if PQconnectPoll had said PGRES_POLLING_WRITING */
    pg->write_pending = 1;
    h2o_socket_notify_write(pg->sock, on_connect_io);
}

static void on_kick(h2o_timeout_entry_t *entry)
{
    send_next(H2O_STRUCT_FROM_MEMBER(struct talas_pg, kick_entry, entry));
}

static void on_retry(h2o_timeout_entry_t *entry)
{
    struct talas_pg *pg = H2O_STRUCT_FROM_MEMBER(struct talas_pg, retry_entry, entry);

    start_connect(pg);
}

/* ------------------------------------------------------------------ API */

struct talas_pg *talas_pg_create(h2o_loop_t *loop, const char *conninfo, const char *password,
                                 const char *check_sql, talas_pg_check_fn *check)
{
    struct talas_pg *pg = xcalloc(1, sizeof(*pg));

    pg->loop = loop;
    pg->conninfo = xstrdup(conninfo);
    pg->password = password != NULL ? xstrdup(password) : NULL;
    pg->check_sql = xstrdup(check_sql);
    pg->check = check;
    pg->fd = -1;
    h2o_linklist_init_anchor(&pg->queue);
    h2o_timeout_init(loop, &pg->query_timeout, TALAS_PG_QUERY_TIMEOUT_MS);
    h2o_timeout_init(loop, &pg->connect_timeout, TALAS_PG_CONNECT_TIMEOUT_MS);
    for (size_t i = 0; i < BACKOFF_STEPS; i++)
        h2o_timeout_init(loop, &pg->retry[i], backoff_ms[i]);
    pg->connect_entry.cb = on_connect_timeout;
    pg->retry_entry.cb = on_retry;
    pg->kick_entry.cb = on_kick;
    h2o_timeout_init(loop, &pg->zero, 0);
    set_reason(pg, "connecting to PostgreSQL", NULL);
    start_connect(pg);
    return pg;
}

struct talas_pg_query *talas_pg_query(struct talas_pg *pg, const char *sql, int n, const char *const *params,
                                      talas_pg_result_fn *cb, void *data)
{
    struct talas_pg_query *q;

    if (pg->state == DOWN || pg->state == REFUSED || (pg->state != READY && pg->failing)) {
        if (pg->metrics != NULL)
            talas_metrics_add(&pg->metrics->count.postgres.errors, 1);
        cb(data, NULL, unavailable(pg));
        return NULL;
    }
    q = xcalloc(1, sizeof(*q));
    q->pg = pg;
    q->sql = xstrdup(sql);
    q->n = n;
    q->params = xcalloc(n > 0 ? (size_t)n : 1, sizeof(*q->params));
    for (int i = 0; i < n; i++)
        q->params[i] = params[i] != NULL ? xstrdup(params[i]) : NULL;
    q->cb = cb;
    q->data = data;
    q->deadline.cb = on_deadline;
    h2o_timeout_link(pg->loop, &pg->query_timeout, &q->deadline);
    h2o_linklist_insert(&pg->queue, &q->link);
    /* sent from the loop, never from here: a failure then completes it
     * after the caller has its handle */
    if (!h2o_timeout_is_linked(&pg->kick_entry))
        h2o_timeout_link(pg->loop, &pg->zero, &pg->kick_entry);
    return q;
}

void talas_pg_cancel(struct talas_pg_query *q)
{
    if (q->pg->running == q) {
        q->cb = NULL; /* its answer is read, and dropped */
        return;
    }
    query_free(q);
}

void talas_pg_count_into(struct talas_pg *pg, struct talas_metrics_slot *slot)
{
    if (pg->metrics != NULL || slot == NULL)
        return;
    pg->metrics = slot;
    talas_metrics_add(&slot->gauge.postgres.conns, 1);
    count_down(pg, pg->state != READY);
}

int talas_pg_ready(const struct talas_pg *pg)
{
    return pg->state == READY;
}

const char *talas_pg_reason(const struct talas_pg *pg)
{
    if (pg->state == READY)
        return "";
    return unavailable(pg);
}

void talas_pg_destroy(struct talas_pg *pg)
{
    if (pg == NULL)
        return;
    unwatch(pg);
    if (pg->conn != NULL)
        PQfinish(pg->conn);
    if (pg->running != NULL)
        query_free(pg->running);
    while (!h2o_linklist_is_empty(&pg->queue))
        query_free(H2O_STRUCT_FROM_MEMBER(struct talas_pg_query, link, pg->queue.next));
    if (h2o_timeout_is_linked(&pg->connect_entry))
        h2o_timeout_unlink(&pg->connect_entry);
    if (h2o_timeout_is_linked(&pg->retry_entry))
        h2o_timeout_unlink(&pg->retry_entry);
    if (h2o_timeout_is_linked(&pg->kick_entry))
        h2o_timeout_unlink(&pg->kick_entry);
    h2o_timeout_dispose(pg->loop, &pg->query_timeout);
    h2o_timeout_dispose(pg->loop, &pg->connect_timeout);
    for (size_t i = 0; i < BACKOFF_STEPS; i++)
        h2o_timeout_dispose(pg->loop, &pg->retry[i]);
    h2o_timeout_dispose(pg->loop, &pg->zero);
    free(pg->conninfo);
    free(pg->password);
    free(pg->check_sql);
    free(pg);
}
