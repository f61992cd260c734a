/*
 * file_modes.c - warns about loose file modes, as sshd does about private
 * keys and Postfix's postfix-script about its files.
 *
 * Entry point: talas_file_modes_check(), called by talas-master at start,
 * on every reload and by -t.
 *
 * Logs (warn): a configuration file, or its directory, writable by others
 * (whoever can write it runs code as the master's user at the next reload:
 * library paths, user:), and each secret file (auth.secret_file,
 * auth.private_key_file and those of auth.keys, auth.backend_key_file, the
 * listen and grpc.listen tls.key files) that its group or others can read
 * or write. Warnings, not errors: a deployment may have reasons (a key
 * shared with the group that runs the workers), and refusing to start over
 * a mode would turn a routine chmod into an outage.
 */

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "master/file_modes.h"
#include "core/log.h"
#include "core/util.h"

static int check_secret(const char *what, const char *path)
{
    struct stat sb;

    if (path == NULL || stat(path, &sb) == -1 || !S_ISREG(sb.st_mode))
        return 0;
    if ((sb.st_mode & (S_IRWXG | S_IRWXO)) == 0)
        return 0;
    log_warn("%s \"%s\" is %s by %s (mode %04o): it holds a secret, chmod 600 it", what, path,
             (sb.st_mode & (S_IWGRP | S_IWOTH)) != 0 ? "readable or writable" : "readable",
             (sb.st_mode & S_IRWXO) != 0 ? "others" : "its group", (unsigned)(sb.st_mode & 07777));
    return 1;
}

static int check_config(const char *path)
{
    struct stat sb;
    char *dir, *slash;
    int n = 0;

    if (path == NULL || stat(path, &sb) == -1)
        return 0;
    if ((sb.st_mode & S_IWOTH) != 0) {
        log_warn("configuration file \"%s\" is writable by others (mode %04o): chmod o-w it", path,
                 (unsigned)(sb.st_mode & 07777));
        n++;
    }
    dir = xstrdup(path);
    if ((slash = strrchr(dir, '/')) != NULL) {
        *(slash == dir ? slash + 1 : slash) = '\0';
        /* a sticky directory (/tmp) does not let others replace the file */
        if (stat(dir, &sb) == 0 && (sb.st_mode & S_IWOTH) != 0 && (sb.st_mode & S_ISVTX) == 0) {
            log_warn("directory \"%s\" of the configuration file is writable by others (mode %04o): "
                     "anyone can replace the file",
                     dir, (unsigned)(sb.st_mode & 07777));
            n++;
        }
    }
    free(dir);
    return n;
}

static int check_key(const struct talas_config_key *k)
{
    return check_secret("auth: secret_file", k->secret_file) +
           check_secret("auth: private_key_file", k->private_key_file);
}

int talas_file_modes_check(const struct talas_config *conf)
{
    int n = check_config(conf->file);

    n += check_key(&conf->auth_key);
    for (size_t i = 0; i < conf->auth_key_count; i++)
        n += check_key(&conf->auth_keys[i]);
    n += check_secret("auth.backend_key_file", conf->auth_backend_key_file);
    for (size_t i = 0; i < conf->listen_count; i++)
        n += check_secret("listen: tls.key", conf->listen[i].tls_key);
    for (size_t i = 0; i < conf->grpc_listen_count; i++)
        n += check_secret("grpc.listen: tls.key", conf->grpc_listen[i].tls_key);
    return n;
}
