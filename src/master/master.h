/*
 * master.h - the state of talas-master, shared by the master_*.c files.
 *
 * The master owns the configuration, the listening sockets and the table of
 * its children (workers of the current and of retiring generations, and
 * the library scanner). Only the master's own files include this header.
 *
 * The master links no worker code and never writes to LMDB
 * (talas_storage_forbid_writes): a worker is the talas-worker program,
 * exec'd in a forked child with its configuration text and descriptors;
 * what the master must tell workers crosses in core/ipc.h types.
 */
#ifndef TALAS_MASTER_H
#define TALAS_MASTER_H

#include <stddef.h>
#include <stdint.h>
#include <poll.h>
#include <sys/types.h>

#include "core/config.h"
#include "core/ipc.h"
#include "core/metrics.h"
#include "master/listen.h"

enum talas_child_kind { TALAS_CHILD_WORKER, TALAS_CHILD_SCANNER };

struct talas_child {
    pid_t pid;
    enum talas_child_kind kind;
    int slot;            /* workers: 0 .. workers-1 */
    unsigned generation; /* workers: the configuration generation they run */
    uint64_t started_ms; /* monotonic */
    int ready;           /* the worker said it accepts connections */
    int retiring;        /* sent SIGTERM after a reload or at stop */
    struct talas_ipc_chan *ipc; /* workers: the master's end of its socketpair (master_ipc.c) */
    pid_t *release_pids;        /* workers: dead workers whose encode claims it was told to
                                   release (malloc'd); given back if it dies before ready */
    size_t release_count;
    int metrics_slot; /* workers: its slot of the metrics segment, -1 for none */
};

/* A worker slot of the current generation. */
struct talas_slot {
    pid_t pid;             /* 0 while no worker runs in it */
    unsigned young_deaths; /* consecutive deaths within TALAS_YOUNG_MS */
    uint64_t respawn_at;   /* monotonic ms; meaningful when pid == 0 */
};

/* A worker that dies sooner than this after its start died young. */
#define TALAS_YOUNG_MS 2000
/* Longest wait before respawning a worker that keeps dying young. */
#define TALAS_RESPAWN_MAX_DELAY_MS 30000
/* Longest wait for a reload's workers to be ready; past it the reload is
 * rolled back and the running generation keeps serving. */
#define TALAS_READY_TIMEOUT_MS 10000
/* Most dead workers whose claims wait for the next worker to release them;
 * past it the oldest are forgotten (their claims are still taken over by
 * the next claimer, or expire: store/cache.h). */
#define TALAS_RELEASE_PIDS_MAX 256

struct talas_master {
    struct talas_config *conf;
    int conf_fd;             /* sealed memfd: the text conf was parsed from (master_conf.c) */
    const char *config_file; /* -c FILE as given: the name workers parse the text under */
    char *worker_program;    /* the talas-worker executable (talas_master_worker_program) */
    int start_dir_fd;        /* detached: the directory relative paths resolve in; else -1 */
    struct talas_listen_set *listen;
    unsigned generation;     /* the generation that serves (and is respawned) */
    unsigned generation_seq; /* the last generation number handed out */

    struct talas_child *children;
    size_t child_count, child_cap;
    struct talas_slot *slots; /* conf->workers entries */

    int notify_fd[2]; /* workers write a talas_worker_ready_msg when ready */

    /* The node's figures (core/metrics.h): created once at start, kept
     * across reloads; each worker gets the fd and a slot of its own. */
    int metrics_fd;
    struct talas_metrics_header *metrics;

    int scan_pending; /* start a scanner as soon as none runs */

    /* Workers that died (not after a clean stop) whose encode claims no
     * worker has released yet: the next worker started is given them
     * (--release-claims-of) and releases them before it serves. */
    pid_t *release_pids;
    size_t release_count;

    /* A reload in progress: the new generation runs beside the previous
     * one, which keeps serving (and is kept here) until every new worker
     * is ready; then the previous one retires. If the new workers are not
     * ready by reload_deadline, the reload is rolled back. */
    struct talas_config *prev_conf; /* NULL when no reload is in progress */
    int prev_conf_fd;
    struct talas_slot *prev_slots;
    unsigned prev_generation;
    uint64_t reload_deadline;
    int reload_queued; /* a SIGHUP arrived during a reload */

    int stopping;
    uint64_t stop_deadline;

    /* master_ipc.c: the realtime figures of workers that have died (their
     * totals keep counting in /api/ws/stats), and when the figures of all
     * workers were last sent to them */
    struct talas_ipc_stats ipc_retired;
    int ipc_stats_dirty;
    uint64_t ipc_stats_sent_ms;

    /* master_ctl.c: the control socket and its clients; what "status"
     * and "reload" answer */
    struct talas_master_ctl *ctl;
    uint64_t started_ms;      /* monotonic */
    uint64_t started_wall_ms; /* wall clock */
    unsigned reloads_done;    /* reload attempts that ended, well or not */
    int last_reload_ok;
    char *last_reload_error; /* malloc'd; NULL when the last reload worked */
};

/* master_conf.c */
/* Reads FILE once, parses it (talas_config_load_string under the name
 * FILE) and, when FD_R is not NULL, stores a sealed memfd holding exactly
 * the bytes parsed in *fd_r (close-on-exec; the caller owns it). Returns 0,
 * or -1 with a malloc'd message in *error_r ("FILE:LINE:COL: ..."). */
int talas_master_conf_load(const char *file, struct talas_config **conf_r, int *fd_r, char **error_r);
/* The path of the talas-worker executable, malloc'd: beside talas-master
 * (/proc/self/exe) when there is one, else in PKGLIBEXECDIR. NULL with a
 * malloc'd message in *error_r when neither is executable. */
char *talas_master_worker_program(char **error_r);

/* master_spawn.c */
void talas_master_spawn_worker(struct talas_master *m, int slot);
void talas_master_spawn_scanner(struct talas_master *m);
/* Reaps exited children, logs how they ended, schedules respawns. */
void talas_master_reap(struct talas_master *m);
/* Starts what is due (respawns, pending scan, retirement); returns how long
 * poll() may sleep, in ms. */
int talas_master_tick(struct talas_master *m);
/* Reads ready notifications from the status pipe. */
void talas_master_read_notify(struct talas_master *m);
/* Sends SIG to every child (KIND -1: all kinds). */
void talas_master_signal_children(struct talas_master *m, int sig, int kind);
/* Ends a reload in progress: commit once the new workers are ready,
 * rollback past the deadline; returns how long poll() may sleep. */
int talas_master_tick_reload(struct talas_master *m, uint64_t now);

/* master_ipc.c: the workers' socketpairs. The master relays each event a
 * worker publishes to every other worker, in the order received, and sends
 * every worker the figures of all (TALAS_IPC_STATS_ALL). It never blocks on
 * a worker: each channel has a bounded outbound queue; what does not fit is
 * dropped and logged. */
/* Creates a worker's socketpair: fds[0] the master's end, fds[1] the
 * worker's. Returns 0 or -1 (logged). */
int talas_master_ipc_pair(int fds[2]);
/* Takes the master's end FD for child C (a worker). */
void talas_master_ipc_attach(struct talas_child *c, int fd);
/* Closes C's channel, if any, keeping its totals. */
void talas_master_ipc_detach(struct talas_master *m, struct talas_child *c);
/* In a newly forked child: closes the master's ends of every channel. */
void talas_master_ipc_close_all_in_child(struct talas_master *m);
/* Fills PFD with the channels to poll (at most MAX); returns how many. */
size_t talas_master_ipc_pollfds(struct talas_master *m, struct pollfd *pfd, size_t max);
/* Handles the poll results of the N entries filled by the call above. */
void talas_master_ipc_handle(struct talas_master *m, const struct pollfd *pfd, size_t n);
/* Sends the figures of all workers when they changed; returns how long
 * poll() may sleep, in ms. */
int talas_master_ipc_tick(struct talas_master *m, uint64_t now);
/* The figures worker C last sent, or NULL when it has sent none. */
const struct talas_ipc_stats *talas_master_ipc_stats(const struct talas_child *c);
/* The figures of the workers that are gone (pid 0). */
const struct talas_ipc_stats *talas_master_ipc_retired(const struct talas_master *m);
/* Queues the IPC frame FRAME (LEN bytes) to every worker. */
void talas_master_ipc_send_all(struct talas_master *m, const void *frame, size_t len);

/* master_ctl.c: the control socket (control.h). The master answers its
 * clients from the poll loop and never waits for one: a client that does
 * not send its request within a few seconds, or does not read its answer,
 * is dropped. */
/* Creates the socket at conf->control_socket. Returns 0, or -1 with a
 * malloc'd message in *error_r (another master answers there, bind()
 * failed...). */
int talas_master_ctl_open(struct talas_master *m, char **error_r);
/* How many pollfd entries the control socket and its clients need. */
size_t talas_master_ctl_count(const struct talas_master *m);
/* Fills PFD (at most MAX); returns how many. */
size_t talas_master_ctl_pollfds(struct talas_master *m, struct pollfd *pfd, size_t max);
/* Handles the poll results of the N entries filled by the call above. */
void talas_master_ctl_handle(struct talas_master *m, const struct pollfd *pfd, size_t n);
/* Answers reloads that ended, drops clients past their deadline; returns
 * how long poll() may sleep, in ms. */
int talas_master_ctl_tick(struct talas_master *m, uint64_t now);
/* Records how a reload attempt ended (ERROR NULL: it worked). */
void talas_master_ctl_reload_done(struct talas_master *m, const char *error);
/* In a newly forked child: closes the socket and the clients' fds. */
void talas_master_ctl_close_in_child(struct talas_master *m);
/* At exit: closes everything and removes the socket file. */
void talas_master_ctl_close(struct talas_master *m);

#endif
