/*
 * track_file.h - opening a track's file for serving, never outside the
 * library.
 */
#ifndef TALAS_TRACK_FILE_H
#define TALAS_TRACK_FILE_H

/* 0 when FD, opened from PATH, is the file at PATH itself, -1 (errno ELOOP)
 * when the open went through a symbolic link or a directory moved since.
 * PATH is a path the scanner recorded: resolved, inside a library folder,
 * so any difference means the file now leads somewhere else. A file
 * deleted or replaced since FD was opened still passes (it was inside). */
int talas_track_fd_check(int fd, const char *path);

/* Opens PATH read-only (O_CLOEXEC) as talas_track_fd_check() allows.
 * Returns the descriptor, owned by the caller, or -1 with errno set
 * (ELOOP: PATH leads through a symbolic link). */
int talas_track_open(const char *path);

#endif
