/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* lockboxd's core: its lifetime (set-up, the event loop, signals, reload, stop), the
 * store and the socket it owns, and the clock. The operations live in requests.c and
 * access.c. */

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <systemd/sd-daemon.h>

#include "audit.h"
#include "bus.h"
#include "daemon.h"
#include "execaudit.h"
#include "notify.h"
#include "requests.h"
#include "sessions.h"
#include "store-postgresql.h"
#include "trusted-file.h"
#include "util.h"
#include "warnings.h"

int64_t daemon_now(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec;
}

/* ---- setup ---------------------------------------------------------------------------- */

/* The store's directory and file must be root's alone: anyone else who could write them
 * could grant themselves access. A missing directory is made; a missing file is left to
 * store_open(), which makes it. */
static int check_store_path(const char *path, bool is_dir, char *err, size_t errlen) {
        int r = trusted_path(path, is_dir ? S_IFDIR : S_IFREG, 0, err, errlen);

        if (r == -ENOENT && is_dir) {
                if (mkdir(path, 0700) < 0) {
                        r = negative_errno();
                        snprintf(err, errlen, "%s: cannot create: %s", path, strerror(-r));
                        return r;
                }
                r = trusted_path(path, S_IFDIR, 0, err, errlen);
        }
        return r == -ENOENT ? 0 : r;
}

static int open_store(struct daemon *d) {
        _cleanup_(freep) char *dir = strdup(d->database_path);
        char err[512] = "";
        char *slash;
        int r;

        if (!dir)
                return -ENOMEM;
        slash = strrchr(dir, '/');
        if (slash && slash != dir)
                *slash = '\0';
        else if (slash)
                slash[1] = '\0';
        r = check_store_path(dir, true, err, sizeof(err));
        if (r < 0) {
                fprintf(stderr, "lockboxd: database directory %s\n", err);
                return r;
        }
        r = check_store_path(d->database_path, false, err, sizeof(err));
        if (r < 0) {
                fprintf(stderr, "lockboxd: database %s\n", err);
                return r;
        }
        r = store_open(d->database_path, &d->store, err, sizeof(err));
        if (r < 0) {
                fprintf(stderr, "lockboxd: %s: %s\n", d->database_path, err);
                return r;
        }
        return 0;
}

static int mkdir_parents(const char *path, mode_t mode) {
        _cleanup_(freep) char *p = strdup(path);

        if (!p)
                return -ENOMEM;
        for (char *s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
                *s = '\0';
                if (mkdir(p, mode) >= 0) {
                        /* mkdir() honours our umask 077; clients must reach the socket. */
                        if (chmod(p, mode) < 0)
                                return -errno;
                } else if (errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        return 0;
}

static int open_socket(struct daemon *d) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct stat st;
        int n, fd, r;

        n = sd_listen_fds(true);
        if (n < 0)
                return n;
        if (n > 1) {
                fprintf(stderr, "lockboxd: expected one socket from the service manager, got %d\n", n);
                return -EINVAL;
        }
        if (n == 1) {
                fd = SD_LISTEN_FDS_START;
                r = sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0);
                if (r <= 0) {
                        fprintf(stderr, "lockboxd: the passed socket is not a listening Unix stream socket\n");
                        return r < 0 ? r : -EINVAL;
                }
                (void) fcntl(fd, F_SETFD, FD_CLOEXEC);
                d->listen_fd = fd;
                return 0;
        }

        if (strlen(d->socket_path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, d->socket_path);
        r = mkdir_parents(d->socket_path, 0755);
        if (r < 0) {
                fprintf(stderr, "lockboxd: cannot create the directory of %s: %s\n", d->socket_path, strerror(-r));
                return r;
        }
        /* Replace a stale socket, never any other kind of file. */
        if (lstat(d->socket_path, &st) == 0) {
                if (!S_ISSOCK(st.st_mode)) {
                        fprintf(stderr, "lockboxd: %s exists and is not a socket\n", d->socket_path);
                        return -EEXIST;
                }
                (void) unlink(d->socket_path);
        }
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 ||
            chmod(d->socket_path, 0666) < 0 ||
            listen(fd, SOMAXCONN) < 0) {
                r = -errno;
                fprintf(stderr, "lockboxd: cannot listen on %s: %s\n", d->socket_path, strerror(-r));
                close(fd);
                return r;
        }
        d->listen_fd = fd;
        d->socket_bound_here = true;
        return 0;
}

#define SWEEP_USEC (30ULL * 1000000ULL)

/* Every so often: forget sessions whose processes are gone, and re-check the clock. */
static int on_sweep(sd_event_source *s, uint64_t usec, void *userdata) {
        struct daemon *d = userdata;

        (void) daemon_settle(d);
        (void) sessions_enforce(d);
        (void) sd_event_source_set_time(s, usec + SWEEP_USEC);
        return 0;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        struct daemon *d = userdata;

        if (si->ssi_signo == SIGHUP) {
                (void) daemon_reload(d);
                return 0;
        }
        (void) sd_notify(false, "STOPPING=1");
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

int daemon_reload(struct daemon *d) {
        _cleanup_(config_freep) struct lb_config *c = NULL;
        _cleanup_(config_source_done) struct config_source source = {};
        _cleanup_(freep) char *message = NULL;
        char err[CONFIG_ERROR_MAX];
        bool was_enabled = d->config->enabled;
        int r;

        (void) sd_notify(false, "RELOADING=1");
        r = config_load_source(d->config_path, &c, &source, err);
        /* The module would dial a new socket at once while this daemon still listens on the
         * old one: such a change needs a restart, and the reload keeps the running rules. */
        if (r >= 0 && (!streq(c->socket, d->config->socket) || !streq(c->database, d->config->database) ||
                       c->store_backend != d->config->store_backend ||
                       !streq(c->store_conninfo, d->config->store_conninfo))) {
                snprintf(err, sizeof(err), "%s: socket, database and store can change only at a restart", d->config_path);
                r = -EINVAL;
        }
        /* The module follows the snapshot: the daemon takes the new file only if the module
         * can take it too, so both keep the same rules whatever happens. */
        if (r >= 0)
                r = config_snapshot_write(d->config_path, &source, err);
        if (r < 0) {
                fprintf(stderr, "lockboxd: reload failed, keeping the running configuration: %s\n", err);
                (void) sd_notify(false, "READY=1");
                return r;
        }
        config_free(d->config);
        d->config = c;
        c = NULL;

        if (asprintf(&message, "Configuration %s reloaded: lockbox %s for tenant %s", d->config_path,
                     d->config->enabled ? "enabled" : "disabled", d->config->tenant) < 0)
                message = NULL;
        r = audit_write(&(struct audit_entry) {
                .event = "config-reloaded",
                .priority = LOG_NOTICE,
                .tenant = d->config->tenant,
                .message = message,
        });
        if (r < 0)
                fprintf(stderr, "lockboxd: cannot audit the reload: %s\n", strerror(-r));
        if (was_enabled != d->config->enabled) {
                r = audit_write(&(struct audit_entry) {
                        .event = d->config->enabled ? "lockbox-enabled" : "lockbox-disabled",
                        .priority = LOG_WARNING,
                        .tenant = d->config->tenant,
                        .message = d->config->enabled ? "Customer Lockbox enabled: operators need an approved request"
                                                      : "Customer Lockbox disabled: operators are admitted without approval",
                });
                if (r < 0)
                        fprintf(stderr, "lockboxd: cannot audit the change of enabled: %s\n", strerror(-r));
        }
        (void) daemon_settle(d);
        /* Enabling the lockbox ends sessions that were admitted without a grant. */
        (void) sessions_enforce(d);
        (void) sd_notify(false, "READY=1");
        return 0;
}

int daemon_new(const char *config_path, const char *socket_override, const char *database_override,
               struct daemon **ret) {
        _cleanup_(config_source_done) struct config_source source = {};
        struct daemon *d;
        char err[CONFIG_ERROR_MAX];
        sigset_t mask;
        int r;

        d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        d->listen_fd = -1;
        d->config_path = strdup(config_path);
        if (!d->config_path) {
                r = -ENOMEM;
                goto fail;
        }
        r = config_load_source(config_path, &d->config, &source, err);
        if (r < 0) {
                fprintf(stderr, "lockboxd: %s\n", err);
                goto fail;
        }
        d->socket_path = strdup(socket_override ?: d->config->socket);
        d->database_path = strdup(database_override ?: d->config->database);
        if (!d->socket_path || !d->database_path) {
                r = -ENOMEM;
                goto fail;
        }
        if (d->database_path[0] != '/' || d->socket_path[0] != '/') {
                fprintf(stderr, "lockboxd: socket and database paths must be absolute\n");
                r = -EINVAL;
                goto fail;
        }

        r = open_store(d);
        if (r < 0)
                goto fail;
        /* From the moment the socket exists a stop must be clean: a SIGTERM that comes
         * before the event loop watches for it waits, blocked, instead of killing us. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGCHLD);      /* notifiers are watched through sd-event */
        sigprocmask(SIG_BLOCK, &mask, NULL);
        r = open_socket(d);
        if (r < 0) {
                fprintf(stderr, "lockboxd: cannot set up the socket: %s\n", strerror(-r));
                goto fail;
        }

        /* Only once the socket is ours: a second lockboxd that fails to start must not replace
         * the snapshot of the running one. */
        r = config_snapshot_write(d->config_path, &source, err);
        if (r < 0) {
                fprintf(stderr, "lockboxd: cannot keep the accepted configuration for the module: %s\n", err);
                goto fail;
        }

        r = sd_event_default(&d->event);
        if (r < 0)
                goto fail;
        r = sd_event_add_signal(d->event, NULL, SIGTERM, on_signal, d);
        if (r >= 0)
                r = sd_event_add_signal(d->event, NULL, SIGINT, on_signal, d);
        if (r >= 0)
                r = sd_event_add_signal(d->event, NULL, SIGHUP, on_signal, d);
        if (r >= 0)
                r = daemon_deadline_timer_add(d);
        if (r >= 0)
                r = sd_event_add_time_relative(d->event, &d->sweep_timer, CLOCK_MONOTONIC, SWEEP_USEC,
                                               1000000, on_sweep, d);
        if (r >= 0)
                r = sd_event_source_set_enabled(d->sweep_timer, SD_EVENT_ON);
        if (r >= 0)
                r = sessions_new(d, &d->sessions);
        if (r >= 0)
                r = warnings_new(d, &d->warnings);
        /* Off: the kernel audit is not touched at all (turned on by a reload, operators are
         * refused until lockboxd restarts). */
        if (r >= 0 && d->config->record_commands)
                r = execaudit_new(d, &d->execaudit);
        if (r >= 0 && d->config->store_backend == STORE_BACKEND_POSTGRESQL) {
                r = store_view_reset(d->store);
                if (r < 0)
                        fprintf(stderr, "lockboxd: cannot reset this host's view of the shared store: %s\n", strerror(-r));
                else
                        r = pgstore_new(d, &d->shared);
        }
        if (r >= 0)
                r = bus_listen(d);
        if (r < 0)
                goto fail;
        *ret = d;
        return 0;
fail:
        daemon_free(d);
        return r;
}

void daemon_free(struct daemon *d) {
        if (!d)
                return;
        bus_shutdown(d);
        notify_shutdown(d);
        execaudit_free(d->execaudit);
        sessions_free(d->sessions);
        warnings_free(d->warnings);
        pgstore_free(d->shared);
        sd_event_source_unref(d->deadline_timer);
        sd_event_source_unref(d->sweep_timer);
        sd_event_source_unref(d->listen_source);
        if (d->listen_fd >= 0)
                close(d->listen_fd);
        if (d->socket_bound_here)
                (void) unlink(d->socket_path);
        store_close(d->store);
        sd_event_unref(d->event);
        config_free(d->config);
        free(d->config_path);
        free(d->socket_path);
        free(d->database_path);
        free(d);
}

int daemon_run(struct daemon *d) {
        int r;

        /* Settle what ran out while we were down before taking any call, and end the
         * sessions of grants that ended meanwhile. */
        (void) daemon_settle(d);
        (void) sessions_enforce(d);
        (void) sd_notifyf(false, "READY=1\nSTATUS=Serving tenant %s on %s", d->config->tenant, d->socket_path);
        r = sd_event_loop(d->event);
        /* No enforcer, no access: what lockboxd holds does not outlive it. */
        sessions_stop(d);
        return r;
}
