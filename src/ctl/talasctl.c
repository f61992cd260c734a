/*
 * talasctl.c - the operator's command line: main(), its options, the
 * usage message and the dispatch to the command groups, one file each:
 *
 *   talasctl [-c FILE] [--json] COMMAND [ARGS]     (talasctl(8) has them all)
 *
 *   status             ctl_status.c     scan            ctl_scan.c
 *   tracks             ctl_tracks.c     cache           ctl_cache.c
 *   sign               ctl_sign.c       sessions        ctl_sessions.c
 *   shares             ctl_shares.c
 *   check-config       ctl_config.c     users           ctl_users.c
 *   storage compact    ctl_storage.c    db              ctl_db.c
 *   cluster status     ctl_cluster.c
 *   reload, stop, ws stats, broadcast   ctl_master.c
 *
 * talasctl reads the same configuration file as talas-master. Commands
 * that need the running master (status's process part, reload, stop, ws
 * stats, broadcast) talk to it on its control socket (core/control.h,
 * ctl_master.c). The others open the LMDB storage directly (LMDB is made
 * for several processes): they work whether the master runs or not, and a
 * scan they run is serialised with the master's scanner by the scan lock.
 *
 * The command line follows GNU's conventions: --help and -h print the
 * usage on stdout, "help COMMAND" (or "COMMAND --help") the usage of one
 * command, --version and -V "talasctl (talas) VERSION"; all exit 0.
 * Options may follow the command. A bad command line prints the usage on
 * stderr and exits 2.
 *
 * Exit codes (talasctl.h): 0 ok, 1 failure, 2 usage, 3 the master does not
 * run, 4 the control socket refused this user. Read commands print one
 * JSON document with --json.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"
#include "core/token.h"
#include "ctl/talasctl.h"
#include "store/catalog.h"
#include "store/storage.h"

#define DEFAULT_CONFIG SYSCONFDIR "/talas/talas.yaml"

int talasctl_json;

/* What each command accepts; main() refuses the rest with exit 2. */
enum {
    OPT_ERRORS = 1 << 0,
    OPT_FIX = 1 << 1,
    OPT_SIGN = 1 << 2, /* --ttl, --kind, --user */
    OPT_LEVEL = 1 << 3,
    OPT_FULL = 1 << 4,
    OPT_KEYS = 1 << 5,
    OPT_KIND = 1 << 6, /* users data purge --kind */
    OPT_REVOKE = 1 << 7, /* users apikey NAME --revoke KEY */
};

/* The commands, in the order of the usage message; USAGE is the command's
 * part of it, what "talasctl help COMMAND" prints. */
static const struct command {
    const char *name;
    int min_args, max_args;
    unsigned opts;
    const char *usage;
} commands[] = {
    {"status", 0, 0, 0,
     "  status             the master and its workers, the catalog, the storage, the cache\n"},
    {"scan", 0, 0, OPT_FULL,
     "  scan [--full]      scan the library folders now (--full: probe every file again)\n"},
    {"tracks", 0, 2, OPT_ERRORS,
     "  tracks [ls] [--errors]\n"
     "                     list the playable tracks, or the files that failed to probe\n"
     "  tracks show ID     everything the catalog knows of a track\n"
     "  tracks rm ID       remove a track from the catalog, and its cached transcodes\n"},
    {"sign", 1, 1, OPT_SIGN,
     "  sign TRACK_ID [--ttl SECONDS] [--kind stream|preview|hls] [--user USER]\n"
     "                     print a signed URL for the track (expiry on stderr, or\n"
     "                     both in one JSON document with --json);\n"
     "                     --ttl 0 or none: auth.default_ttl; --kind default: stream\n"},
    {"cache", 1, 2, OPT_FIX,
     "  cache stats        show the transcode cache: size, hit ratio, encoder counters\n"
     "  cache purge [TRACK_ID]\n"
     "                     remove every cached transcode, or those of one track\n"
     "  cache verify [--fix]\n"
     "                     check every cache record (CRCs included); --fix removes damaged ones\n"},
    {"sessions", 0, 0, 0, "  sessions           streaming sessions and listening sessions\n"},
    {"shares", 0, 2, 0,
     "  shares [ls]        the private links: target, owner, expiry, permissions, plays,\n"
     "                     listeners, listening time\n"
     "  shares rm ID       revoke a private link at once\n"},
    {"users", 1, 3, OPT_KIND | OPT_REVOKE,
     "  users ls           the users who have stored data or an account, with their\n"
     "                     counts per kind\n"
     "  users add NAME     an account for Subsonic apps; its password from stdin\n"
     "  users passwd NAME  a new password for it, from stdin\n"
     "  users rm NAME      remove the account and its API keys\n"
     "  users apikey NAME [--revoke KEY]\n"
     "                     print a new API key for the account, or revoke one\n"
     "  users data ls USER\n"
     "                     what USER has stored, per kind (playlists, playback,\n"
     "                     listening): count and bytes\n"
     "  users data purge USER [--kind KIND]\n"
     "                     remove what USER has stored (every kind, or KIND)\n"},
    {"storage", 1, 1, 0,
     "  storage compact    rewrite the storage without its free pages (the master\n"
     "                     must be stopped)\n"},
    {"db", 1, 1, 0,
     "  db migrate         create or upgrade the cluster record store's schema\n"
     "                     (cluster.postgres) to this build's version; print it\n"
     "  db status          the record store's schema version against this build's\n"},
    {"ws", 1, 1, 0, "  ws stats           realtime (/api/ws) figures of every worker\n"},
    {"cluster", 1, 1, 0,
     "  cluster status     the live nodes of the cluster (from Redis): listeners,\n"
     "                     WebSocket connections, workers, when last seen\n"},
    {"broadcast", 1, 1, OPT_LEVEL,
     "  broadcast MESSAGE [--level info|warning|error]\n"
     "                     send a ServerMessage to every realtime (/api/ws) connection\n"},
    {"reload", 0, 0, 0,
     "  reload             reload the configuration; answers when the new workers serve\n"},
    {"stop", 0, 0, 0, "  stop               stop the master gracefully; answers when it has exited\n"},
    {"check-config", 0, 0, OPT_KEYS,
     "  check-config [--keys]\n"
     "                     check the configuration file (--keys: list every key it may hold)\n"},
    {"help", 0, 1, 0, "  help [COMMAND]     print this help, or the usage of one command\n"},
};

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; name != NULL && i < TALAS_ARRAY_SIZE(commands); i++)
        if (strcmp(name, commands[i].name) == 0)
            return &commands[i];
    return NULL;
}

void talasctl_usage(FILE *fp, const char *command)
{
    const struct command *c = find_command(command);

    fprintf(fp, "usage: talasctl [-c FILE] [--json] COMMAND [ARGS]\n");
    for (size_t i = 0; i < TALAS_ARRAY_SIZE(commands); i++)
        if (c == NULL || c == &commands[i])
            fputs(commands[i].usage, fp);
    if (c != NULL) {
        fprintf(fp, "(talasctl --help: the options and the other commands)\n");
        return;
    }
    fprintf(fp, "options:\n"
                "  -c FILE            configuration file (default: " DEFAULT_CONFIG ")\n"
                "  --json             print read commands' output as one JSON document\n"
                "  -h, --help         print this help (help COMMAND: the usage of one command)\n"
                "  -V, --version      print the version\n"
                "exit codes: 0 ok, 1 failure, 2 usage, 3 master not running, 4 control socket denied\n");
}

static int version(void)
{
    printf("talasctl (" PACKAGE_NAME ") " PACKAGE_VERSION "\n");
    return TALASCTL_OK;
}

struct talas_storage *talasctl_open_storage(const struct talas_config *conf)
{
    struct talas_storage *st;
    char *error;

    if (talas_storage_open(conf->storage_path, conf->storage_map_size, &st, &error) != 0) {
        fprintf(stderr, "talasctl: %s\n", error);
        exit(1);
    }
    return st;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"errors", no_argument, NULL, 'e'},     {"fix", no_argument, NULL, 'f'},
        {"ttl", required_argument, NULL, 't'},  {"kind", required_argument, NULL, 'k'},
        {"user", required_argument, NULL, 'u'}, {"level", required_argument, NULL, 'l'},
        {"json", no_argument, NULL, 'j'},       {"full", no_argument, NULL, 'F'},
        {"keys", no_argument, NULL, 'K'},       {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},    {"revoke", required_argument, NULL, 'r'},
        {NULL, 0, NULL, 0}};
    const char *level = NULL, *kind = NULL, *revoke = NULL;
    struct talasctl_sign_opts so = {0, 0, TALAS_TOKEN_STREAM, NULL};
    const struct command *command = NULL;
    struct talas_config *conf;
    const char *file = DEFAULT_CONFIG, *cmd;
    char *error;
    char **args;
    unsigned given = 0;
    int opt, nargs = 0, rc;

    talas_log_set_role("talasctl");
    while ((opt = getopt_long(argc, argv, "+c:Vh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            file = optarg;
            break;
        case 'j':
            talasctl_json = 1;
            break;
        case 'V':
            return version();
        case 'h':
            talasctl_usage(stdout, NULL);
            return TALASCTL_OK;
        default:
            talasctl_usage(stderr, NULL);
            return TALASCTL_USAGE;
        }
    }
    if (optind >= argc) {
        talasctl_usage(stderr, NULL);
        return TALASCTL_USAGE;
    }
    cmd = argv[optind++];
    if ((command = find_command(cmd)) == NULL) {
        fprintf(stderr, "talasctl: unknown command \"%s\"\n", cmd);
        talasctl_usage(stderr, NULL);
        return TALASCTL_USAGE;
    }
    /* Options may also follow the command ("talasctl tracks --errors") and
     * sit among its arguments ("cache verify --fix"). The "+" above makes
     * getopt stop at each argument: collect it and go on; after "--"
     * everything is an argument (a track id may begin with "-"). */
    args = xcalloc((size_t)argc, sizeof(*args));
    while (optind < argc) {
        /* a track id is 16 characters of base64url, and one in 64 begins
         * with "-": getopt would read it as options. No option of talasctl
         * has that form (long ones are shorter, "--opt=v" has a "="), so such
         * an argument is an id, as it was copied from "talasctl tracks". */
        if (argv[optind][0] != '-' || talas_track_id_valid(argv[optind], strlen(argv[optind]))) {
            args[nargs++] = argv[optind++];
            continue;
        }
        if ((opt = getopt_long(argc, argv, "+c:hV", longopts, NULL)) == -1) {
            /* "--": everything after it is an argument */
            while (optind < argc)
                args[nargs++] = argv[optind++];
            break;
        }
        if (opt == 'h' || opt == 'V') {
            /* "talasctl tracks --help": the usage of that command */
            free(args);
            if (opt == 'V')
                return version();
            talasctl_usage(stdout, command->name);
            return TALASCTL_OK;
        } else if (opt == 'e')
            given |= OPT_ERRORS;
        else if (opt == 'f')
            given |= OPT_FIX;
        else if (opt == 'F')
            given |= OPT_FULL;
        else if (opt == 'K')
            given |= OPT_KEYS;
        else if (opt == 'j')
            talasctl_json = 1;
        else if (opt == 'c')
            file = optarg;
        else if (opt == 't' && talasctl_sign_parse_ttl(optarg, &so.ttl_s) == 0)
            given |= OPT_SIGN;
        else if (opt == 'k' && strcmp(command->name, "users") == 0) {
            /* the kinds of user data: checked by ctl_users.c */
            kind = optarg;
            given |= OPT_KIND;
        } else if (opt == 'r' && strcmp(command->name, "users") == 0) {
            revoke = optarg;
            given |= OPT_REVOKE;
        } else if (opt == 'k' && talasctl_sign_parse_kind(optarg, &so.kind) == 0)
            given |= OPT_SIGN;
        else if (opt == 'u') {
            so.user = optarg;
            given |= OPT_SIGN;
        } else if (opt == 'l' && (strcmp(optarg, "info") == 0 || strcmp(optarg, "warning") == 0 ||
                                  strcmp(optarg, "error") == 0)) {
            level = strcmp(optarg, "info") == 0      ? "Info"
                    : strcmp(optarg, "warning") == 0 ? "Warning"
                                                     : "Error";
            given |= OPT_LEVEL;
        } else {
            if (opt == 't')
                fprintf(stderr, "talasctl: --ttl takes a number of seconds, not \"%s\"\n", optarg);
            else if (opt == 'k')
                fprintf(stderr, "talasctl: --kind is stream, preview or hls, not \"%s\"\n", optarg);
            else if (opt == 'l')
                fprintf(stderr, "talasctl: --level is info, warning or error, not \"%s\"\n", optarg);
            talasctl_usage(stderr, command->name);
            free(args);
            return TALASCTL_USAGE;
        }
    }
    if (nargs < command->min_args || nargs > command->max_args || (given & ~command->opts) != 0 ||
        (strcmp(cmd, "ws") == 0 && strcmp(args[0], "stats") != 0) ||
        (strcmp(cmd, "cluster") == 0 && strcmp(args[0], "status") != 0)) {
        talasctl_usage(stderr, command->name);
        free(args);
        return TALASCTL_USAGE;
    }
    if (strcmp(cmd, "help") == 0) {
        if (nargs == 1 && find_command(args[0]) == NULL) {
            fprintf(stderr, "talasctl: unknown command \"%s\"\n", args[0]);
            talasctl_usage(stderr, NULL);
            free(args);
            return TALASCTL_USAGE;
        }
        talasctl_usage(stdout, nargs == 1 ? args[0] : NULL);
        free(args);
        return TALASCTL_OK;
    }
    if (strcmp(cmd, "check-config") == 0 && (given & OPT_KEYS)) {
        talas_config_schema_print(stdout);
        free(args);
        return TALASCTL_OK;
    }
    if (talas_config_load(file, &conf, &error) != 0) {
        fprintf(stderr, "%s\n", error);
        if (strcmp(cmd, "check-config") == 0 && talasctl_json)
            printf("{\"ok\":false}\n");
        free(error);
        free(args);
        return TALASCTL_FAILURE;
    }
    /* libav and the scanner log through the error log: keep it on stderr */
    talas_log_set_level(TALAS_LOG_WARN);
    if (strcmp(cmd, "scan") == 0)
        rc = talasctl_cmd_scan(conf, (given & OPT_FULL) != 0);
    else if (strcmp(cmd, "tracks") == 0)
        rc = talasctl_cmd_tracks(conf, args, nargs, (given & OPT_ERRORS) != 0);
    else if (strcmp(cmd, "status") == 0)
        rc = talasctl_cmd_status(conf);
    else if (strcmp(cmd, "cache") == 0)
        rc = talasctl_cmd_cache(conf, args, nargs, (given & OPT_FIX) != 0);
    else if (strcmp(cmd, "sign") == 0)
        rc = talasctl_cmd_sign(conf, args[0], &so);
    else if (strcmp(cmd, "sessions") == 0)
        rc = talasctl_cmd_sessions(conf);
    else if (strcmp(cmd, "shares") == 0)
        rc = talasctl_cmd_shares(conf, args, nargs);
    else if (strcmp(cmd, "users") == 0)
        rc = talasctl_cmd_users(conf, args, nargs, kind, revoke);
    else if (strcmp(cmd, "storage") == 0)
        rc = talasctl_cmd_storage(conf, args, nargs);
    else if (strcmp(cmd, "db") == 0)
        rc = talasctl_cmd_db(conf, args, nargs);
    else if (strcmp(cmd, "ws") == 0)
        rc = talasctl_cmd_ws_stats(conf);
    else if (strcmp(cmd, "cluster") == 0)
        rc = talasctl_cmd_cluster(conf, args, nargs);
    else if (strcmp(cmd, "broadcast") == 0)
        rc = talasctl_cmd_broadcast(conf, args[0], level != NULL ? level : "Info");
    else if (strcmp(cmd, "reload") == 0)
        rc = talasctl_cmd_reload(conf);
    else if (strcmp(cmd, "stop") == 0)
        rc = talasctl_cmd_stop(conf);
    else
        rc = talasctl_cmd_check_config(conf);
    talas_config_free(conf);
    free(args);
    return rc;
}
