/*
 * worker.h - an HTTP worker: one process, one h2o event loop.
 *
 * The master forks a worker per slot and calls talas_worker_main() in the
 * child; nothing it creates (loop, h2o context, LMDB handle, TLS context)
 * exists before fork. The worker serves until SIGTERM/SIGINT, then stops
 * accepting and finishes its responses up to shutdown_timeout.
 *
 * What its handlers and modules may use of the worker is handed to them in
 * a struct talas_worker_ctx (worker_ctx.h); nothing here is for them.
 */
#ifndef TALAS_WORKER_H
#define TALAS_WORKER_H

#include <stddef.h>
#include <sys/types.h>

#include "core/token.h"
#include "core/config.h"
#include "store/storage.h"

struct talas_worker_args {
    const struct talas_config *conf; /* inherited from the master, read-only */
    int slot;                        /* 0 .. workers-1 */
    unsigned generation;             /* bumped by each reload */
    const int *listen_fds;           /* one per conf->listen entry, then one per
                                        conf->grpc_listen entry (talas_listen_count) */
    int notify_fd;                   /* write end of the master's status pipe */
    int ipc_fd;                      /* the worker's end of its socketpair with the master
                                        (ipc.h), -1 when there is none */
};

/* Runs the worker; exits the process (0 after a graceful stop, 2 when it
 * could not start). */
_Noreturn void talas_worker_main(const struct talas_worker_args *args);

/* What a worker writes on the status pipe when it accepts connections. */
struct talas_worker_ready_msg {
    pid_t pid;
    unsigned generation;
};

#endif
