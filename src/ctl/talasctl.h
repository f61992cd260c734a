/*
 * talasctl.h - what the files of talasctl share: exit codes, output mode,
 * and the control socket client (talasctl_master.c).
 */
#ifndef TALASCTL_H
#define TALASCTL_H

#include <stddef.h>

#include "core/config.h"
#include "core/util.h"

/* Exit codes, documented in talasctl(8). */
enum {
    TALASCTL_OK = 0,
    TALASCTL_FAILURE = 1,     /* the command failed: unknown id, damaged cache, bad config... */
    TALASCTL_USAGE = 2,       /* bad command line */
    TALASCTL_NOT_RUNNING = 3, /* the master does not run (nobody answers on control.socket) */
    TALASCTL_DENIED = 4,      /* the control socket refuses this user (permissions) */
};

/* --json: read commands print one JSON document on stdout. */
extern int talasctl_json;

/*
 * Sends REQUEST (one line, without its newline) on the control socket of
 * CONF and stores the answer line (a JSON object, NUL-terminated) in
 * *reply. With WAIT_EXIT_MS, then waits up to that long for the master to
 * close the connection (it does when it exits). Returns TALASCTL_OK (the
 * master answered, ok or not), TALASCTL_NOT_RUNNING, TALASCTL_DENIED or
 * TALASCTL_FAILURE, with a message on stderr for the last three.
 */
int talasctl_request(const struct talas_config *conf, const char *request, struct talas_buf *reply,
                     unsigned wait_exit_ms);

/* 1 when the answer JSON says "ok":true. */
int talasctl_reply_ok(const char *json);
/* The "error" string of an answer, copied into BUF (SIZE bytes). */
const char *talasctl_reply_error(const char *json, char *buf, size_t size);

/* Prints JSON (the master's answers: objects, arrays, scalars) as indented
 * "key: value" lines, skipping the top-level "ok". Returns 0 or -1 when it
 * is not JSON. */
int talasctl_print_text(FILE *fp, const char *json, int indent);

/* The control-socket commands: status (the master's part), reload, stop,
 * ws stats, broadcast. Each returns an exit code. */
int talasctl_cmd_reload(const struct talas_config *conf);
int talasctl_cmd_stop(const struct talas_config *conf);
int talasctl_cmd_ws_stats(const struct talas_config *conf);
int talasctl_cmd_broadcast(const struct talas_config *conf, const char *message, const char *level);

#endif
