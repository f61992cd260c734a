/*
 * master_sig.c - signal handling of the master (see master_sig.h).
 *
 * Entry points: talas_master_sig_init, _drain, _block, _restore, _child.
 * Logs nothing: handlers must stay async-signal-safe.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "master/master_sig.h"

volatile sig_atomic_t talas_master_got_hup, talas_master_got_term, talas_master_got_usr1, talas_master_got_chld;

static int sig_pipe[2] = {-1, -1};

static void on_signal(int signo)
{
    int saved_errno = errno;

    switch (signo) {
    case SIGHUP:
        talas_master_got_hup = 1;
        break;
    case SIGUSR1:
        talas_master_got_usr1 = 1;
        break;
    case SIGCHLD:
        talas_master_got_chld = 1;
        break;
    default:
        talas_master_got_term = 1;
        break;
    }
    if (write(sig_pipe[1], "", 1) == -1) {
        /* full: a wake-up is already pending */
    }
    errno = saved_errno;
}

int talas_master_sig_init(void)
{
    static const int handled[] = {SIGHUP, SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGCHLD};
    struct sigaction sa;

    if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) == -1)
        fatal("%s: pipe2() failed: %s", __func__, strerror(errno));
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    for (size_t i = 0; i < sizeof(handled) / sizeof(handled[0]); i++)
        if (sigaction(handled[i], &sa, NULL) == -1)
            fatal("%s: sigaction() failed: %s", __func__, strerror(errno));
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    return sig_pipe[0];
}

void talas_master_sig_drain(void)
{
    char buf[64];

    while (read(sig_pipe[0], buf, sizeof(buf)) > 0)
        ;
}

void talas_master_sig_block(sigset_t *old)
{
    sigset_t all;

    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, old);
}

void talas_master_sig_restore(const sigset_t *old)
{
    sigprocmask(SIG_SETMASK, old, NULL);
}

void talas_master_sig_child(void)
{
    static const int handled[] = {SIGHUP, SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGCHLD, SIGPIPE};
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof(handled) / sizeof(handled[0]); i++)
        sigaction(handled[i], &sa, NULL);
    close(sig_pipe[0]);
    close(sig_pipe[1]);
}
