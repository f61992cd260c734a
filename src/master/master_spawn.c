/*
 * master_spawn.c - starting, reaping and respawning the master's children.
 *
 * Entry points (declared in master.h): talas_master_spawn_worker,
 * talas_master_spawn_scanner, talas_master_reap, talas_master_tick,
 * talas_master_read_notify, talas_master_signal_children.
 *
 * A worker is a forked child that sets itself up as the master's child
 * (default signal dispositions, none of the master's descriptors but its
 * own, PR_SET_PDEATHSIG) and then execs the talas-worker program
 * (workers/worker/main.c) with, on its command line, its slot, generation,
 * the numbers of the descriptors it inherits (its listening sockets, the
 * status pipe, its IPC socketpair, the memfd of its generation's
 * configuration text: master_conf.c, the metrics memfd with the slot it
 * counts in: core/metrics.h) and the pids of the workers that died
 * since the last one started. Those descriptors alone lose FD_CLOEXEC, in
 * the child only. If the exec fails the child logs why and exits 2.
 *
 * A worker of the current generation that dies is respawned in its slot at
 * once, or after a delay that doubles with each consecutive early death
 * (nginx ngx_reap_children, Postfix master_spawn.c): a worker that cannot
 * start must not turn the master into a fork loop.
 *
 * The master never writes to LMDB (talas_storage_forbid_writes): the
 * encode claims a dead worker held are released by the next worker
 * started, before it serves (--release-claims-of), or taken over by the
 * next process that wants the chunk (store/cache.h), or expire. After any
 * child dies the master only clears LMDB reader slots left by dead
 * processes (a read-only open: talas_storage_reader_check), so a worker
 * killed inside a read transaction never pins old pages for good.
 *
 * Logs: every spawn (info), a failed exec (error, in the child), every
 * unexpected death (warn) with its status or signal, the respawn delay,
 * and the stale reader slots cleared.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/daemon.h"
#include "core/ipc.h"
#include "core/log.h"
#include "core/util.h"
#include "master/master.h"
#include "master/master_sig.h"
#include "master/respawn.h"
#include "scan/scan.h"
#include "store/storage.h"

static void child_add(struct talas_master *m, pid_t pid, enum talas_child_kind kind, int slot, int metrics_slot)
{
    struct talas_child *c;

    if (m->child_count == m->child_cap) {
        m->child_cap = m->child_cap ? m->child_cap * 2 : 16;
        m->children = xrealloc(m->children, m->child_cap * sizeof(*m->children));
    }
    c = &m->children[m->child_count++];
    memset(c, 0, sizeof(*c));
    c->pid = pid;
    c->kind = kind;
    c->slot = slot;
    c->metrics_slot = metrics_slot;
    c->generation = m->generation;
    c->started_ms = talas_now_ms();
}

static struct talas_child *child_find(struct talas_master *m, pid_t pid)
{
    for (size_t i = 0; i < m->child_count; i++)
        if (m->children[i].pid == pid)
            return &m->children[i];
    return NULL;
}

static void child_remove(struct talas_master *m, struct talas_child *c)
{
    *c = m->children[--m->child_count];
}

static int scanner_running(struct talas_master *m)
{
    for (size_t i = 0; i < m->child_count; i++)
        if (m->children[i].kind == TALAS_CHILD_SCANNER)
            return 1;
    return 0;
}

/* What every child does first: it must not keep the master's descriptors
 * or dispositions, and it stops when the master is gone. */
static void child_setup(struct talas_master *m, pid_t master_pid)
{
    talas_master_sig_child();
    talas_pidfile_close_in_child();
    close(m->notify_fd[0]);
    talas_master_ipc_close_all_in_child(m);
    talas_master_ctl_close_in_child(m);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != master_pid)
        _exit(0); /* the master died before prctl took effect */
}

static pid_t fork_child(struct talas_master *m, const char *what)
{
    sigset_t old;
    pid_t master_pid = getpid(), pid;

    /* signals stay blocked across fork so that a child never runs the
     * master's handlers; the child unblocks once its own are installed */
    talas_master_sig_block(&old);
    pid = fork();
    if (pid == 0) {
        child_setup(m, master_pid);
        return 0;
    }
    talas_master_sig_restore(&old);
    if (pid == -1)
        log_error("%s: fork() of a %s failed: %s", __func__, what, strerror(errno));
    return pid;
}

/* Adds PID to the dead workers whose claims are to be released. */
static void release_add(struct talas_master *m, const pid_t *pids, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (m->release_count == TALAS_RELEASE_PIDS_MAX) {
            memmove(m->release_pids, m->release_pids + 1, (m->release_count - 1) * sizeof(pid_t));
            m->release_count--;
        }
        m->release_pids = xrealloc(m->release_pids, (m->release_count + 1) * sizeof(pid_t));
        m->release_pids[m->release_count++] = pids[i];
    }
}

static char *join_ints(const int *v, size_t n)
{
    struct talas_buf b = {0};

    for (size_t i = 0; i < n; i++)
        talas_buf_printf(&b, "%s%d", i > 0 ? "," : "", v[i]);
    talas_buf_append(&b, "", 1);
    return b.data;
}

/* The worker's command line (workers/worker/main.c), built before fork:
 * the child allocates nothing. Free with free_argv. */
static char **worker_argv(struct talas_master *m, int slot, const int *fds, size_t nfds, int ipc_fd,
                          int metrics_slot)
{
    char **argv = xcalloc(28, sizeof(*argv));
    size_t n = 0;

    argv[n++] = xstrdup("talas-worker");
    argv[n++] = xstrdup("--config-fd");
    argv[n++] = xasprintf("%d", m->conf_fd);
    argv[n++] = xstrdup("--config-name");
    argv[n++] = xstrdup(m->config_file);
    argv[n++] = xstrdup("--slot");
    argv[n++] = xasprintf("%d", slot);
    argv[n++] = xstrdup("--generation");
    argv[n++] = xasprintf("%u", m->generation);
    argv[n++] = xstrdup("--listen-fds");
    argv[n++] = join_ints(fds, nfds);
    argv[n++] = xstrdup("--notify-fd");
    argv[n++] = xasprintf("%d", m->notify_fd[1]);
    argv[n++] = xstrdup("--ipc-fd");
    argv[n++] = xasprintf("%d", ipc_fd);
    argv[n++] = xstrdup("--metrics-fd");
    argv[n++] = xasprintf("%d", m->metrics_fd);
    argv[n++] = xstrdup("--metrics-slot");
    argv[n++] = xasprintf("%d", metrics_slot);
    if (m->release_count > 0) {
        int *pids = xcalloc(m->release_count, sizeof(int));
        for (size_t i = 0; i < m->release_count; i++)
            pids[i] = (int)m->release_pids[i];
        argv[n++] = xstrdup("--release-claims-of");
        argv[n++] = join_ints(pids, m->release_count);
        free(pids);
    }
    if (m->start_dir_fd != -1)
        argv[n++] = xstrdup("--detached");
    argv[n] = NULL;
    return argv;
}

static void free_argv(char **argv)
{
    for (size_t i = 0; argv[i] != NULL; i++)
        free(argv[i]);
    free(argv);
}

/* In the child: FD survives the exec. */
static void pass_fd(int fd)
{
    int flags;

    if (fd != -1 && (flags = fcntl(fd, F_GETFD)) != -1)
        fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
}

void talas_master_spawn_worker(struct talas_master *m, int slot)
{
    size_t nfds = talas_listen_count(m->conf);
    int *fds = xcalloc(nfds, sizeof(int));
    int ipc[2] = {-1, -1};
    char **argv;
    pid_t pid;
    int metrics_slot;

    talas_listen_set_fds(m->listen, m->conf, slot, fds);
    /* its own slot, taken back when it is reaped; without one it counts
     * where no scrape sees it */
    if ((metrics_slot = talas_metrics_claim(m->metrics, 0)) == -1)
        log_warn("worker %d: all %d metrics slots are taken: its figures are left out of /metrics", slot,
                 TALAS_METRICS_SLOTS);
    /* without its channel a worker still serves HTTP; realtime events
     * then stay on that worker */
    talas_master_ipc_pair(ipc);
    argv = worker_argv(m, slot, fds, nfds, ipc[1], metrics_slot);
    if ((pid = fork_child(m, "worker")) == 0) {
        if (ipc[0] != -1)
            close(ipc[0]);
        /* what ps, top and pgrep show from fork on, like nginx's "worker
         * process"; the exec keeps it (the program's name) */
        prctl(PR_SET_NAME, "talas-worker");
        talas_listen_set_close_others(m->listen, fds, nfds);
        for (size_t i = 0; i < nfds; i++)
            pass_fd(fds[i]);
        pass_fd(m->notify_fd[1]);
        pass_fd(ipc[1]);
        pass_fd(m->conf_fd);
        pass_fd(m->metrics_fd);
        /* relative paths in the configuration mean what they meant to the
         * master when it parsed the same text */
        if (m->start_dir_fd != -1 && fchdir(m->start_dir_fd) == -1)
            log_error("%s: fchdir() to the start directory failed: %s", __func__, strerror(errno));
        else
            execv(m->worker_program, argv);
        log_error("%s: worker %d: execv(\"%s\") failed: %s", __func__, slot, m->worker_program,
                  strerror(errno));
        _exit(2);
    }
    free_argv(argv);
    free(fds);
    if (ipc[1] != -1)
        close(ipc[1]);
    if (pid == -1) {
        if (ipc[0] != -1)
            close(ipc[0]);
        talas_metrics_release(m->metrics, metrics_slot);
        m->slots[slot].respawn_at = talas_now_ms() + 1000;
        return;
    }
    if (metrics_slot != -1)
        atomic_store_explicit(&talas_metrics_slot(m->metrics, (unsigned)metrics_slot)->pid, (uint64_t)pid,
                              memory_order_relaxed);
    child_add(m, pid, TALAS_CHILD_WORKER, slot, metrics_slot);
    if (ipc[0] != -1)
        talas_master_ipc_attach(&m->children[m->child_count - 1], ipc[0]);
    /* the new worker releases them; they come back if it dies unready */
    m->children[m->child_count - 1].release_pids = m->release_pids;
    m->children[m->child_count - 1].release_count = m->release_count;
    m->release_pids = NULL;
    m->release_count = 0;
    m->slots[slot].pid = pid;
    log_info("started worker %d (pid %d, generation %u)", slot, (int)pid, m->generation);
}

static _Noreturn void scanner_main(const struct talas_config *conf, int notify_fd)
{
    struct talas_scan_progress result;
    struct talas_storage *st;
    sigset_t none;
    char *error;
    int rc;

    close(notify_fd);
    talas_log_set_role("scanner");
    /* the one child that writes without an exec: the guard the master set
     * came with the fork */
    talas_storage_allow_writes();
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    talas_drop_privileges(conf->user, conf->group);
    if (talas_storage_open(conf->storage_path, conf->storage_map_size, &st, &error) != 0) {
        log_error("%s", error);
        _exit(1);
    }
    /* the scan logs its own summary */
    if ((rc = talas_scan_run(conf, st, 1, NULL, NULL, &result, &error)) != 0)
        log_error("scan failed: %s", error);
    talas_storage_close(st);
    _exit(rc == 0 ? 0 : 1);
}

void talas_master_spawn_scanner(struct talas_master *m)
{
    pid_t pid;

    if ((pid = fork_child(m, "scanner")) == 0) {
        prctl(PR_SET_NAME, "talas-scanner");
        talas_listen_set_close_others(m->listen, NULL, 0);
        scanner_main(m->conf, m->notify_fd[1]);
    }
    if (pid == -1) {
        m->scan_pending = 1;
        return;
    }
    child_add(m, pid, TALAS_CHILD_SCANNER, -1, -1);
    log_info("started library scan (pid %d)", (int)pid);
}

static void describe_status(int status, char *buf, size_t size)
{
    if (WIFEXITED(status))
        snprintf(buf, size, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, size, "killed by signal %d (%s)%s", WTERMSIG(status), strsignal(WTERMSIG(status)),
                 WCOREDUMP(status) ? ", core dumped" : "");
    else
        snprintf(buf, size, "ended with status %#x", status);
}

/* Clears the reader slots of dead processes: a read-only open, closed at
 * once, never a handle kept across a fork. */
static void clear_stale_readers(const struct talas_config *conf)
{
    char *error;
    int dead;

    if (talas_storage_reader_check(conf->storage_path, &dead, &error) != 0) {
        log_error("%s: clearing stale LMDB readers failed: %s", __func__, error);
        free(error);
        return;
    }
    if (dead > 0)
        log_warn("cleared %d stale LMDB reader slot(s) left by dead processes", dead);
}

void talas_master_reap(struct talas_master *m)
{
    char how[128];
    int status, reaped = 0;
    pid_t pid;

    /* a worker's ready message is written before it can die serving:
     * read what is in the pipe so that c->ready is up to date */
    talas_master_read_notify(m);
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        struct talas_child *c = child_find(m, pid);
        uint64_t now = talas_now_ms(), lifetime;

        if (c == NULL)
            continue;
        reaped = 1;
        describe_status(status, how, sizeof(how));
        lifetime = now - c->started_ms;
        if (c->kind == TALAS_CHILD_WORKER) {
            /* the pids it was to release, when it died before it did (it
             * releases them before it says it is ready) */
            if (!c->ready)
                release_add(m, c->release_pids, c->release_count);
            free(c->release_pids);
            c->release_pids = NULL;
            /* once it served it may have died holding encode claims:
             * the next worker started releases them (the master does not
             * write); one that never got ready took none */
            if (c->ready && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
                release_add(m, &pid, 1);
        }
        if (c->kind == TALAS_CHILD_SCANNER) {
            if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                log_info("library scan (pid %d) done", (int)pid);
            else
                log_warn("library scan (pid %d) %s", (int)pid, how);
        } else if (c->generation == m->generation && !c->retiring && !m->stopping) {
            struct talas_slot *slot = &m->slots[c->slot];
            uint64_t delay = talas_respawn_delay(&slot->young_deaths, lifetime);

            slot->pid = 0;
            slot->respawn_at = now + delay;
            log_warn("worker %d (pid %d) %s after %" PRIu64 " ms; respawning in %" PRIu64 " ms", c->slot, (int)pid,
                     how, lifetime, delay);
        } else if (m->prev_conf != NULL && c->generation == m->prev_generation && !c->retiring &&
                   !m->stopping) {
            /* it served while a reload waits for its successors: should the
             * reload roll back, its slot is respawned */
            m->prev_slots[c->slot].pid = 0;
            m->prev_slots[c->slot].respawn_at = now;
            log_warn("worker %d (pid %d, generation %u) %s during a reload", c->slot, (int)pid, c->generation, how);
        } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            log_info("worker %d (pid %d, generation %u) stopped", c->slot, (int)pid, c->generation);
        } else {
            log_warn("worker %d (pid %d, generation %u) %s while stopping", c->slot, (int)pid, c->generation, how);
        }
        /* its gauges go with it; its counters stay in the sum */
        if (c->kind == TALAS_CHILD_WORKER)
            talas_metrics_release(m->metrics, c->metrics_slot);
        talas_master_ipc_detach(m, c);
        child_remove(m, c);
    }
    if (reaped)
        clear_stale_readers(m->conf);
}

void talas_master_read_notify(struct talas_master *m)
{
    struct talas_worker_ready_msg msg;

    /* messages are smaller than PIPE_BUF: each read returns whole ones */
    while (read(m->notify_fd[0], &msg, sizeof(msg)) == (ssize_t)sizeof(msg)) {
        struct talas_child *c = child_find(m, msg.pid);
        if (c != NULL) {
            c->ready = 1;
            /* released before it said so (worker.c) */
            free(c->release_pids);
            c->release_pids = NULL;
            c->release_count = 0;
        }
    }
}

void talas_master_signal_children(struct talas_master *m, int sig, int kind)
{
    for (size_t i = 0; i < m->child_count; i++)
        if (kind == -1 || m->children[i].kind == (enum talas_child_kind)kind)
            kill(m->children[i].pid, sig);
}

static void retire_others(struct talas_master *m, int sig)
{
    for (size_t i = 0; i < m->child_count; i++) {
        struct talas_child *c = &m->children[i];
        if (c->kind == TALAS_CHILD_WORKER && c->generation != m->generation && !c->retiring) {
            kill(c->pid, sig);
            c->retiring = 1;
        }
    }
}

int talas_master_tick_reload(struct talas_master *m, uint64_t now)
{
    size_t ready = 0;

    for (size_t i = 0; i < m->child_count; i++) {
        struct talas_child *c = &m->children[i];
        if (c->kind == TALAS_CHILD_WORKER && c->generation == m->generation && !c->retiring && c->ready)
            ready++;
    }
    if (ready == (size_t)m->conf->workers) {
        /* the sockets are shared: what the old workers stop accepting
         * waits in the queue for the new ones, nothing is refused */
        retire_others(m, SIGTERM);
        talas_config_free(m->prev_conf);
        close(m->prev_conf_fd);
        free(m->prev_slots);
        m->prev_conf = NULL;
        m->prev_conf_fd = -1;
        m->prev_slots = NULL;
        talas_listen_set_prune(m->listen, m->conf);
        log_info("reload complete: generation %u serves with %d worker(s)", m->generation, m->conf->workers);
        talas_master_ctl_reload_done(m, NULL);
        return 1000;
    }
    if (now < m->reload_deadline)
        return (int)(m->reload_deadline - now);

    log_error("reload rolled back: %zu of %d new worker(s) ready after %d ms (see their errors above); "
              "generation %u keeps serving",
              ready, m->conf->workers, TALAS_READY_TIMEOUT_MS, m->prev_generation);
    {
        char *why = xasprintf("rolled back: %zu of %d new worker(s) ready after %d ms (see the error log); "
                              "generation %u keeps serving",
                              ready, m->conf->workers, TALAS_READY_TIMEOUT_MS, m->prev_generation);
        talas_master_ctl_reload_done(m, why);
        free(why);
    }
    talas_config_free(m->conf);
    close(m->conf_fd);
    free(m->slots);
    m->conf = m->prev_conf;
    m->conf_fd = m->prev_conf_fd;
    m->slots = m->prev_slots;
    m->prev_conf_fd = -1;
    m->generation = m->prev_generation;
    m->prev_conf = NULL;
    m->prev_slots = NULL;
    retire_others(m, SIGTERM);
    talas_listen_set_prune(m->listen, m->conf);
    return 1000;
}

int talas_master_tick(struct talas_master *m)
{
    uint64_t now = talas_now_ms();
    int timeout = 1000;

    if (m->stopping) {
        if (now >= m->stop_deadline) {
            for (size_t i = 0; i < m->child_count; i++) {
                log_warn("stop: killing %s pid %d, still running after shutdown_timeout",
                         m->children[i].kind == TALAS_CHILD_WORKER ? "worker" : "scanner",
                         (int)m->children[i].pid);
                kill(m->children[i].pid, SIGKILL);
            }
            m->stop_deadline = now + 1000;
        }
        return (int)(m->stop_deadline - now);
    }
    for (int i = 0; i < m->conf->workers; i++) {
        struct talas_slot *slot = &m->slots[i];
        if (slot->pid != 0)
            continue;
        if (now >= slot->respawn_at)
            talas_master_spawn_worker(m, i);
        else if ((int)(slot->respawn_at - now) < timeout)
            timeout = (int)(slot->respawn_at - now);
    }
    if (m->scan_pending && !scanner_running(m)) {
        m->scan_pending = 0;
        talas_master_spawn_scanner(m);
    }
    if (m->prev_conf != NULL) {
        int t = talas_master_tick_reload(m, now);
        if (t < timeout)
            timeout = t;
    }
    return timeout < 1 ? 1 : timeout;
}
