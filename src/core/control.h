/*
 * control.h - the master's control socket, as both ends see it: where it
 * is and how a request and its answer look.
 *
 * The socket is a UNIX stream socket at control.socket (config.h), mode
 * 0660, owned by the master's user and by control.group when set: who may
 * connect may reload and stop the server, so filesystem permissions are
 * the access control (like Postfix's public/ and Dovecot's admin sockets).
 *
 * Protocol: the client sends one request line, "COMMAND[ ARG...]\n", at
 * most TALAS_CONTROL_MAX_REQUEST bytes; the master answers with one JSON
 * object on one line, {"ok":true,...} or {"ok":false,"error":"..."}, then
 * closes the connection. Two answers come late: "reload" answers when the
 * new generation serves or the reload failed, and "stop" answers at once
 * but the connection stays open until the master exits, so that a client
 * that reads to EOF knows the master is gone. Commands (master_ctl.c):
 *
 *   status                 the master, its workers and the scanner
 *   ws-stats               realtime figures of every worker
 *   reload                 SIGHUP semantics, answered when done
 *   stop                   graceful stop (SIGTERM semantics)
 *   broadcast LEVEL TEXT   a ServerMessage to every /api/ws connection
 */
#ifndef TALAS_CONTROL_H
#define TALAS_CONTROL_H

#include <sys/socket.h>
#include <sys/un.h>

#define TALAS_CONTROL_MAX_REQUEST 4096
/* Mode of the socket file: never world-accessible. */
#define TALAS_CONTROL_MODE 0660

/*
 * Fills *SUN for PATH. A path longer than sun_path is reached through its
 * directory: *dirfd_r gets an O_PATH descriptor of it (close it after
 * bind() or connect()), otherwise -1. Returns 0, or -1 with errno set.
 */
int talas_control_sockaddr(const char *path, struct sockaddr_un *sun, socklen_t *len_r, int *dirfd_r);

/* Connects to the control socket at PATH (blocking, CLOEXEC). Returns the
 * descriptor, or -1 with errno set (ENOENT, ECONNREFUSED: no master). */
int talas_control_connect(const char *path);

#endif
