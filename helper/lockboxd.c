/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* lockboxd: the Customer Lockbox helper. Owns the store, the clock and the audit. */

#include <getopt.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "config.h"
#include "daemon.h"
#include "util.h"

static void help(void) {
        printf("Usage: lockboxd [OPTIONS]\n"
               "       lockboxd --check-config [PATH]\n\n"
               "The Customer Lockbox helper: owns the request store, enforces roles and\n"
               "deadlines, and writes the audit to the journal.\n\n"
               "  -c, --config PATH     configuration file (default %s)\n"
               "      --socket PATH     listen here instead of the configured socket\n"
               "      --database PATH   use this store instead of the configured one\n"
               "      --check-config    validate the configuration (PATH, else the -c one) and exit:\n"
               "                        0 if it would be accepted, else 2 and one line naming\n"
               "                        the file, the line and the key\n"
               "  -h, --help            show this help\n"
               "      --version         show the version\n",
               LOCKBOX_CONFIG_PATH);
}

/* The same load lockboxd does at start and reload; nothing is written. */
static int check(const char *path) {
        _cleanup_(config_freep) struct lb_config *c = NULL;
        char err[CONFIG_ERROR_MAX];

        _cleanup_(freep) char *snapshot = NULL;
        int r;

        if (config_load(path, &c, err) < 0) {
                fprintf(stderr, "lockboxd: %s\n", err);
                return 2;
        }
        /* lockboxd also needs a snapshot name for the file (an absolute path, not too long). */
        r = config_snapshot_path(path, &snapshot);
        if (r < 0) {
                fprintf(stderr, "lockboxd: %s: unusable as the configuration path: %s\n", path,
                        r == -EINVAL ? "not an absolute path" : strerror(-r));
                return 2;
        }
        return 0;
}

/* Many clients may be connected at once; take what the hard limit allows. */
static void raise_fd_limit(void) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max > 65536 ? 65536 : rl.rlim_max;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
        }
}

int main(int argc, char *argv[]) {
        enum { ARG_SOCKET = 0x100, ARG_DATABASE, ARG_VERSION, ARG_CHECK_CONFIG };
        static const struct option options[] = {
                { "config",   required_argument, NULL, 'c' },
                { "socket",   required_argument, NULL, ARG_SOCKET },
                { "database", required_argument, NULL, ARG_DATABASE },
                { "check-config", no_argument,   NULL, ARG_CHECK_CONFIG },
                { "help",     no_argument,       NULL, 'h' },
                { "version",  no_argument,       NULL, ARG_VERSION },
                {}
        };
        const char *config_path = LOCKBOX_CONFIG_PATH, *socket_path = NULL, *database_path = NULL;
        struct daemon *d = NULL;
        bool check_config = false;
        int c, r;

        while ((c = getopt_long(argc, argv, "c:h", options, NULL)) >= 0) {
                switch (c) {
                case 'c':
                        config_path = optarg;
                        break;
                case ARG_SOCKET:
                        socket_path = optarg;
                        break;
                case ARG_DATABASE:
                        database_path = optarg;
                        break;
                case ARG_CHECK_CONFIG:
                        check_config = true;
                        break;
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("lockboxd %s\n", PACKAGE_VERSION);
                        return 0;
                default:
                        return 2;
                }
        }
        if (check_config) {
                if (optind < argc)
                        config_path = argv[optind++];
                if (optind < argc) {
                        fprintf(stderr, "lockboxd: unexpected argument '%s'\n", argv[optind]);
                        return 2;
                }
                return check(config_path);
        }
        if (optind < argc) {
                fprintf(stderr, "lockboxd: unexpected argument '%s'\n", argv[optind]);
                return 2;
        }
        if (geteuid() != 0) {
                fprintf(stderr, "lockboxd: must run as root\n");
                return 1;
        }

        umask(0077);
        /* A notifier that exits before reading its input must not take the daemon down. */
        (void) signal(SIGPIPE, SIG_IGN);
        raise_fd_limit();
        r = daemon_new(config_path, socket_path, database_path, &d);
        if (r < 0)
                return 1;
        r = daemon_run(d);
        daemon_free(d);
        if (r < 0) {
                fprintf(stderr, "lockboxd: %s\n", strerror(-r));
                return 1;
        }
        return 0;
}
