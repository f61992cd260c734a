/*
 * track_file.h - opening a track's file for serving, never outside the
 * library.
 */
#ifndef TALAS_TRACK_FILE_H
#define TALAS_TRACK_FILE_H

#include <sys/stat.h>

/* 0 when FD, opened from PATH, is the file at PATH itself, -1 (errno ELOOP)
 * when the open went through a symbolic link or a directory moved since.
 * PATH is a path the scanner recorded: resolved, inside a library folder,
 * so any difference means the file now leads somewhere else. A file
 * deleted or replaced since FD was opened still passes (it was inside). */
int talas_track_fd_check(int fd, const char *path);

/* Opens PATH read-only (O_CLOEXEC) as talas_track_fd_check() allows, and
 * only a regular file: the open itself never waits (O_NONBLOCK, cleared
 * once the file is known to be regular), so a FIFO or a device put in the
 * library cannot stall the caller. The file's fstat(2) goes to *SB_R
 * (may be NULL). Returns the descriptor, owned by the caller, or -1 with
 * errno set: ELOOP (PATH leads through a symbolic link since the scan),
 * EINVAL (not a regular file), or open(2)'s (ENOENT...). */
int talas_track_open(const char *path, struct stat *sb_r);

#endif
