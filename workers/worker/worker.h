/*
 * worker.h - an HTTP worker: one process, one h2o event loop.
 *
 * The master forks a child per slot and execs the talas-worker program in
 * it; that program's main() (main.c) reads its command line and the
 * configuration the master validated, fills struct talas_worker_args and
 * calls talas_worker_main(). Nothing the worker uses (loop, h2o context,
 * LMDB handle, TLS context) was created by the master. The worker serves
 * until SIGTERM/SIGINT, then stops accepting and finishes its responses up
 * to shutdown_timeout.
 *
 * What its handlers and modules may use of the worker is handed to them in
 * a struct talas_worker_ctx (worker_ctx.h); nothing here is for them.
 */
#ifndef TALAS_WORKER_H
#define TALAS_WORKER_H

#include <stddef.h>
#include <sys/types.h>

#include "core/config.h"
#include "core/ipc.h" /* struct talas_worker_ready_msg */
#include "core/token.h"
#include "store/storage.h"

struct talas_worker_args {
    const struct talas_config *conf; /* parsed by main.c from the text the master
                                        validated; read-only, lives as long as the process */
    int slot;                        /* 0 .. workers-1 */
    unsigned generation;             /* bumped by each reload */
    const int *listen_fds;           /* one per conf->listen entry, then one per
                                        conf->grpc_listen entry (talas_listen_count) */
    int notify_fd;                   /* write end of the master's status pipe */
    int ipc_fd;                      /* the worker's end of its socketpair with the master
                                        (ipc.h), -1 when there is none */
    const pid_t *release_pids;       /* workers that died since the master last started
                                        one: their encode claims are released before
                                        this worker serves */
    size_t release_count;
    int metrics_fd;                  /* the master's metrics memfd (core/metrics.h), -1: none */
    int metrics_slot;                /* the slot of it this worker counts in, -1: none */
};

/* Runs the worker; exits the process (0 after a graceful stop, 2 when it
 * could not start). */
_Noreturn void talas_worker_main(const struct talas_worker_args *args);


#endif
