/*
 * ctl_master.c - talasctl's commands that talk to the running master on
 * its control socket (core/control.h): reload, stop, ws stats, broadcast;
 * and the client of that socket, which status uses for the master's part.
 *
 * Entry points (talasctl.h): talasctl_request, talasctl_cmd_reload,
 * talasctl_cmd_stop, talasctl_cmd_ws_stats, talasctl_cmd_broadcast.
 * Failures (not running, permission denied, no answer, the master's
 * error) go to stderr; answers to stdout, as sent with --json.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/control.h"
#include "ctl/talasctl.h"

/* How long the master may take to answer a request (a reload answers when
 * its workers are ready, within TALAS_READY_TIMEOUT_MS of master.h). */
#define ANSWER_TIMEOUT_MS 30000

/* Reads from FD into B until a newline (LINE) or EOF, for at most
 * TIMEOUT_MS. Returns 1 when the wait ended as asked, 0 on timeout, -1 on
 * error. */
static int read_until(int fd, struct talas_buf *b, int line, unsigned timeout_ms)
{
    uint64_t deadline = talas_now_ms() + timeout_ms;

    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        uint64_t now = talas_now_ms();
        ssize_t n;
        int rc;

        if (line && memchr(b->data != NULL ? b->data : "", '\n', b->len) != NULL)
            return 1;
        if (now >= deadline)
            return 0;
        rc = poll(&p, 1, (int)(deadline - now));
        if (rc == -1 && errno == EINTR)
            continue;
        if (rc <= 0)
            return rc;
        talas_buf_reserve(b, 4096);
        n = read(fd, b->data + b->len, b->cap - b->len);
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1)
            return errno == ECONNRESET && !line ? 1 : -1;
        if (n == 0)
            return line ? -1 : 1;
        if (!line)
            continue; /* nothing more is expected: only the EOF counts */
        b->len += (size_t)n;
    }
}

int talasctl_request(const struct talas_config *conf, const char *request, struct talas_buf *reply,
                     unsigned wait_exit_ms)
{
    const char *path = conf->control_socket;
    struct talas_buf req = {0};
    char *nl;
    int fd, rc;

    if ((fd = talas_control_connect(path)) == -1) {
        if (errno == EACCES || errno == EPERM) {
            fprintf(stderr,
                    "talasctl: connect() to %s failed: %s (the control socket is mode 0660: run talasctl as "
                    "its owner or as a member of control.group)\n",
                    path, strerror(errno));
            return TALASCTL_DENIED;
        }
        fprintf(stderr, "talasctl: the master is not running (connect() to %s failed: %s)\n", path,
                strerror(errno));
        return TALASCTL_NOT_RUNNING;
    }
    talas_buf_printf(&req, "%s\n", request);
    if (write(fd, req.data, req.len) != (ssize_t)req.len) {
        fprintf(stderr, "talasctl: write() to %s failed: %s\n", path, strerror(errno));
        talas_buf_free(&req);
        close(fd);
        return TALASCTL_FAILURE;
    }
    talas_buf_free(&req);
    reply->len = 0;
    rc = read_until(fd, reply, 1, ANSWER_TIMEOUT_MS);
    if (rc != 1) {
        fprintf(stderr, "talasctl: %s from the master on %s\n", rc == 0 ? "no answer" : "no whole answer",
                path);
        close(fd);
        return TALASCTL_FAILURE;
    }
    nl = memchr(reply->data, '\n', reply->len);
    *nl = '\0';
    reply->len = (size_t)(nl - reply->data);
    if (wait_exit_ms > 0 && talasctl_reply_ok(reply->data)) {
        struct talas_buf rest = {0};
        rc = read_until(fd, &rest, 0, wait_exit_ms);
        talas_buf_free(&rest);
        if (rc != 1) {
            fprintf(stderr, "talasctl: the master did not exit within %u ms\n", wait_exit_ms);
            close(fd);
            return TALASCTL_FAILURE;
        }
    }
    close(fd);
    return TALASCTL_OK;
}

/* ------------------------------------------------------------ commands */

/* Prints an answer as asked (--json: as it came) and turns it into an
 * exit code. */
static int finish(const struct talas_buf *reply, int print_ok)
{
    char error[512];

    if (!talasctl_reply_ok(reply->data)) {
        if (talasctl_json)
            printf("%s\n", reply->data);
        fprintf(stderr, "talasctl: %s\n", talasctl_reply_error(reply->data, error, sizeof(error)));
        return TALASCTL_FAILURE;
    }
    if (talasctl_json)
        printf("%s\n", reply->data);
    else if (print_ok)
        talasctl_print_text(stdout, reply->data, 0);
    return TALASCTL_OK;
}

int talasctl_cmd_reload(const struct talas_config *conf)
{
    struct talas_buf reply = {0};
    int rc = talasctl_request(conf, "reload", &reply, 0);

    if (rc == TALASCTL_OK) {
        rc = finish(&reply, 0);
        if (rc == TALASCTL_OK && !talasctl_json) {
            printf("reloaded\n");
            talasctl_print_text(stdout, reply.data, 2);
        }
    }
    talas_buf_free(&reply);
    return rc;
}

int talasctl_cmd_stop(const struct talas_config *conf)
{
    struct talas_buf reply = {0};
    /* the master waits shutdown_timeout for its workers, then kills them */
    unsigned wait = (unsigned)conf->shutdown_timeout_ms + 15000;
    int rc = talasctl_request(conf, "stop", &reply, wait);

    if (rc == TALASCTL_OK) {
        rc = finish(&reply, 0);
        if (rc == TALASCTL_OK && !talasctl_json)
            printf("stopped\n");
    }
    talas_buf_free(&reply);
    return rc;
}

int talasctl_cmd_ws_stats(const struct talas_config *conf)
{
    struct talas_buf reply = {0};
    int rc = talasctl_request(conf, "ws-stats", &reply, 0);

    if (rc == TALASCTL_OK)
        rc = finish(&reply, 1);
    talas_buf_free(&reply);
    return rc;
}

int talasctl_cmd_broadcast(const struct talas_config *conf, const char *message, const char *level)
{
    struct talas_buf req = {0}, reply = {0};
    int rc;

    if (*message == '\0' || strpbrk(message, "\r\n") != NULL ||
        strlen(message) > TALAS_CONTROL_MAX_REQUEST - 64) {
        fprintf(stderr, "talasctl: the message must be one line of at most %d bytes\n",
                TALAS_CONTROL_MAX_REQUEST - 64);
        return TALASCTL_USAGE;
    }
    talas_buf_printf(&req, "broadcast %s %s", level, message);
    talas_buf_append(&req, "", 1);
    rc = talasctl_request(conf, req.data, &reply, 0);
    if (rc == TALASCTL_OK)
        rc = finish(&reply, 0);
    talas_buf_free(&req);
    talas_buf_free(&reply);
    return rc;
}
