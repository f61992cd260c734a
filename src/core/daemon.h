/*
 * daemon.h - detaching from the terminal, and the pid file.
 */
#ifndef TALAS_DAEMON_H
#define TALAS_DAEMON_H

/* Forks into the background (new session, cwd "/", stdio on /dev/null).
 * The parent exits 0 once the child runs. Returns 0 in the daemon, -1
 * with errno set on failure. */
int talas_daemonize(void);

/*
 * Creates PATH with our pid and holds an exclusive lock on it for the life
 * of the process, so a second master refuses to start. Returns 0, or -1
 * with a malloc'd message in *error_r (naming the running pid when there
 * is one).
 */
int talas_pidfile_create(const char *path, char **error_r);
/* Removes the pid file (master exit). */
void talas_pidfile_remove(void);
/* Closes the pid file's descriptor in a child, which must not hold the lock. */
void talas_pidfile_close_in_child(void);

/* Switches to USER (its uid, gid and groups) when running as root and USER
 * is not NULL; exits with status 2 when that fails. For children only: the
 * master keeps root to bind new addresses on reload. */
void talas_drop_privileges(const char *user, const char *group);

#endif
