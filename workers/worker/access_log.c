/*
 * access_log.c - the access log of a worker.
 *
 * Entry points: talas_access_log_register (at worker start), and
 * talas_access_log_reopen (SIGUSR1). Lines are formatted by h2o's logconf
 * (the same engine as h2o's own access-log) and written with one write(2)
 * on an O_APPEND descriptor, so lines from all workers stay whole. Reopening
 * dup2()s the new file onto the old descriptor: a line being written goes
 * either to the old file or to the new one, never nowhere.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "worker/access_log.h"
#include "core/log.h"
#include "core/util.h"

/* The query string is left out of both formats: media URLs carry their
 * token there (?token=), and a log line must not be a working URL for
 * whoever can read the logs. */
#define FORMAT_COMBINED "%h %l %u %t \"%m %U %H\" %s %b \"%{referer}i\" \"%{user-agent}i\""
#define FORMAT_JSON                                                                                                    \
    "{\"time\":\"%{%Y-%m-%dT%H:%M:%S%z}t\",\"remote\":\"%h\",\"method\":\"%m\",\"uri\":\"%U\","                  \
    "\"protocol\":\"%H\",\"status\":%s,\"bytes\":%b,\"range\":\"%{range}i\",\"referer\":\"%{referer}i\","          \
    "\"user_agent\":\"%{user-agent}i\",\"duration\":%{duration}x}"

struct access_logger {
    h2o_logger_t super;
    h2o_logconf_t *logconf;
};

static int log_fd = -1;
static const char *log_path;
static h2o_logconf_t *shared_logconf;

static void log_access(h2o_logger_t *_self, h2o_req_t *req)
{
    struct access_logger *self = (void *)_self;
    char stack_buf[4096], *line;
    size_t len = sizeof(stack_buf);

    line = h2o_log_request(self->logconf, req, &len, stack_buf);
    if (write(log_fd, line, len) == -1) {
        /* a full disk must not take the worker down; the error log says it */
    }
    if (line != stack_buf)
        free(line);
}

static int open_log(const char *path)
{
    if (strcmp(path, "stderr") == 0)
        return dup(STDERR_FILENO);
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

int talas_access_log_register(h2o_pathconf_t *pathconf, const struct talas_config *conf, char **error_r)
{
    struct access_logger *self;
    h2o_logconf_t *logconf;
    char errbuf[256];
    int json = conf->log_access_format == TALAS_ACCESS_LOG_JSON;

    if (conf->log_access == NULL)
        return 0;
    if (log_fd != -1) {
        /* another path of the same worker: share the descriptor */
        self = (void *)h2o_create_logger(pathconf, sizeof(*self));
        self->super.log_access = log_access;
        self->logconf = shared_logconf;
        return 0;
    }
    logconf = h2o_logconf_compile(json ? FORMAT_JSON : FORMAT_COMBINED,
                                  json ? H2O_LOGCONF_ESCAPE_JSON : H2O_LOGCONF_ESCAPE_APACHE, errbuf);
    if (logconf == NULL) {
        *error_r = xasprintf("h2o_logconf_compile() failed: %s", errbuf);
        return -1;
    }
    if ((log_fd = open_log(conf->log_access)) == -1) {
        *error_r = xasprintf("open(\"%s\") failed: %s", conf->log_access, strerror(errno));
        h2o_logconf_dispose(logconf);
        return -1;
    }
    log_path = conf->log_access;
    shared_logconf = logconf;
    self = (void *)h2o_create_logger(pathconf, sizeof(*self));
    self->super.log_access = log_access;
    self->logconf = logconf;
    return 0;
}

void talas_access_log_reopen(void)
{
    int fd;

    if (log_fd == -1 || log_path == NULL || strcmp(log_path, "stderr") == 0)
        return;
    if ((fd = open_log(log_path)) == -1) {
        log_error("%s: open(\"%s\") failed: %s", __func__, log_path, strerror(errno));
        return;
    }
    if (dup2(fd, log_fd) == -1)
        log_error("%s: dup2() failed: %s", __func__, strerror(errno));
    close(fd);
}
