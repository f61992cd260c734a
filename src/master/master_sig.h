/*
 * master_sig.h - the master's signals: flags and a self-pipe.
 *
 * Handlers only set these flags and write a byte to the self-pipe; the
 * master's poll() loop wakes up and does the work (Postfix master_sig.c).
 */
#ifndef TALAS_MASTER_SIG_H
#define TALAS_MASTER_SIG_H

#include <signal.h>

extern volatile sig_atomic_t talas_master_got_hup;  /* SIGHUP: reload */
extern volatile sig_atomic_t talas_master_got_term; /* SIGTERM, SIGINT, SIGQUIT: stop */
extern volatile sig_atomic_t talas_master_got_usr1; /* SIGUSR1: reopen logs */
extern volatile sig_atomic_t talas_master_got_chld; /* SIGCHLD: reap */

/* Installs the handlers; returns the read end of the self-pipe (to poll). */
int talas_master_sig_init(void);
/* Empties the self-pipe after a wake-up. */
void talas_master_sig_drain(void);
/* Blocks every signal (around fork), saving the old mask in *old. */
void talas_master_sig_block(sigset_t *old);
void talas_master_sig_restore(const sigset_t *old);
/* In a freshly forked child: default dispositions, close the self-pipe. */
void talas_master_sig_child(void);

#endif
