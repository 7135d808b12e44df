/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Holding and ending operator sessions through the kernel: every session is held by a
 * cgroup on the cgroup2 hierarchy from the moment it opens, and ended by killing that
 * cgroup as a whole (cgroup.kill, Linux >= 5.14), which reaches every thread of every
 * process in it, whatever it did to its process tree (setsid, double forks, a thread-group
 * leader that exited alone, a process that keeps changing its pid), and stops new forks
 * racing the kill. A session is forgotten only once the kernel says its cgroup is empty.
 *
 * Which cgroup:
 *  - logind's session scope, where pam_systemd ran before us and put the PAM caller in a
 *    session of the operator's own: the scope already holds the whole session, and moving
 *    the caller out of it would break logind's tracking (the scope would empty and stop).
 *    logind is told too (TerminateSession, then KillSession all SIGKILL), asynchronously on
 *    one long-lived system bus; the kill itself does not depend on that bus.
 *  - otherwise a cgroup of lockboxd's own, into which the PAM caller is moved before
 *    SessionOpen is answered, so every later child is born inside: under systemd
 *    <lockbox-sessions.service's cgroup>/session-<uuid> (that unit has Delegate=yes and no
 *    limits; below lockboxd.service, its sandbox and MemoryMax= would confine the sessions
 *    and let them starve lockboxd), without systemd <lockboxd's cgroup>/lockbox/session-<uuid>.
 *    A logind session of another user (su from root's login) is not the operator's to end:
 *    then the caller moves into a cgroup of ours, out of that scope.
 * pam_lockbox must therefore come after pam_systemd in the session stack: a module after
 * it that moved the caller elsewhere would take the session out of our cgroup.
 * With neither (no cgroup2 hierarchy, no cgroup.kill, a cgroup we cannot make or move
 * into) the session is refused at open. The operator cannot leave the cgroup: moving a
 * process needs write access to root-owned cgroup.procs files. */

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-login.h>

#include "access.h"
#include "audit.h"
#include "daemon.h"
#include "id.h"
#include "execaudit.h"
#include "sessions.h"
#include "util.h"

#define POLL_FAST_USEC (10 * 1000)              /* until the cgroup is empty, at first */
#define POLL_SLOW_USEC (250 * 1000)             /* after FAST_FOR_USEC: something sits in D state */
#define FAST_FOR_USEC (2 * 1000 * 1000)
#define STOP_WAIT_USEC (1000 * 1000)            /* at SIGTERM, for the cgroups to empty */
#define CGROUP_PATH_MAX 1024

/* A session being ended: its cgroup was killed; polled from a timer until it is empty. */
struct termination {
        struct sessions *owner;
        struct lb_session session;
        sd_event_source *timer;
        uint64_t started;
        bool reported;
        struct termination *next;
};

struct sessions {
        struct daemon *daemon;
        char *root;                     /* the cgroup2 mount point, NULL if none */
        int root_fd;                    /* O_PATH of root */
        char *base;                     /* where our session cgroups go, a path under root ("/lockbox") */
        bool base_is_unit;              /* base is lockbox-sessions.service's cgroup (systemd made it) */
        const char *unusable;           /* why sessions cannot be held (static), or NULL */
        sd_bus *bus;                    /* the system bus, for logind; opened on first need */
        struct termination *terminations;
};

/* ---- small file I/O under the cgroup2 root ------------------------------------------------------ */

static int read_small_file_at(int dirfd, const char *path, char *buf, size_t size) {
        _cleanup_(closep) int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
        ssize_t n;

        buf[0] = '\0';
        if (fd < 0)
                return negative_errno();
        n = read(fd, buf, size - 1);
        if (n < 0)
                return negative_errno();
        buf[n] = '\0';
        return (int) n;
}

static int write_file_at(int dirfd, const char *path, const char *text) {
        _cleanup_(closep) int fd = openat(dirfd, path, O_WRONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
        size_t len = strlen(text);

        if (fd < 0)
                return -errno;
        if (write(fd, text, len) != (ssize_t) len)
                return errno ? -errno : -EIO;
        return 0;
}

/* A cgroup path as we store it: absolute under the root, no "." or ".." parts, no "//". */
static bool cgroup_path_valid(const char *cg) {
        if (!cg || cg[0] != '/' || strlen(cg) >= CGROUP_PATH_MAX || strstr(cg, "//") || strstr(cg, "/./") ||
            strstr(cg, "/../"))
                return false;
        return !(strlen(cg) >= 2 && (streq(cg + strlen(cg) - 2, "/.") || (strlen(cg) >= 3 &&
                                                                          streq(cg + strlen(cg) - 3, "/.."))));
}

/* path/file of cgroup cg, relative to the root fd. */
static int cgroup_file(const char *cg, const char *file, char buf[static CGROUP_PATH_MAX + 32]) {
        if (!cgroup_path_valid(cg) || streq(cg, "/"))
                return -EINVAL;
        snprintf(buf, CGROUP_PATH_MAX + 32, "%s/%s", cg + 1, file);
        return 0;
}

/* 1 when the kernel says cgroup cg has no process left (or it is gone), 0 when it has,
 * -errno when it cannot tell. */
static int cgroup_empty(const struct sessions *m, const char *cg) {
        char path[CGROUP_PATH_MAX + 32], buf[256];
        const char *p;
        int r;

        if (m->root_fd < 0)
                return -ENODEV;
        r = cgroup_file(cg, "cgroup.events", path);
        if (r < 0)
                return r;
        r = read_small_file_at(m->root_fd, path, buf, sizeof(buf));
        if (r == -ENOENT)
                return 1;
        if (r < 0)
                return r;
        p = strstr(buf, "populated ");
        if (!p || (p != buf && p[-1] != '\n') || (p[10] != '0' && p[10] != '1'))
                return -EIO;
        return p[10] == '0';
}

/* SIGKILL to the process of every thread listed in cg's cgroup.threads. */
static void cgroup_kill_threads(const struct sessions *m, const char *cg) {
        char path[CGROUP_PATH_MAX + 32];
        _cleanup_(fclosep) FILE *f = NULL;
        _cleanup_(freep) char *line = NULL;
        size_t size = 0;
        int fd;

        if (cgroup_file(cg, "cgroup.threads", path) < 0)
                return;
        fd = openat(m->root_fd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
        if (fd < 0)
                return;
        f = fdopen(fd, "re");
        if (!f) {
                close(fd);
                return;
        }
        while (getline(&line, &size, f) > 0) {
                char *end;
                long tid;

                errno = 0;
                tid = strtol(line, &end, 10);
                if (errno == 0 && end != line && tid > 1 && tid <= INT32_MAX && tid != getpid())
                        (void) kill((pid_t) tid, SIGKILL);
        }
}

/* Kills everything in cg. cgroup.kill alone misses a process whose thread-group leader
 * exited while other threads run on (the kernel lists no process for it in cgroup.procs,
 * and cgroup.kill walks processes), so every thread listed in cgroup.threads gets its
 * process killed too. The cgroup is frozen first: a frozen thread can neither fork nor
 * exit by itself, so the ids read are not reused before the signal lands (SIGKILL still
 * ends frozen tasks). */
static int cgroup_kill(const struct sessions *m, const char *cg) {
        char path[CGROUP_PATH_MAX + 32];
        int r;

        if (m->root_fd < 0)
                return -ENODEV;
        if (cgroup_file(cg, "cgroup.freeze", path) >= 0)
                (void) write_file_at(m->root_fd, path, "1");
        r = cgroup_file(cg, "cgroup.kill", path);
        if (r < 0)
                return r;
        r = write_file_at(m->root_fd, path, "1");
        if (r == -ENOENT)
                return 0;       /* gone: nothing left to kill */
        cgroup_kill_threads(m, cg);
        return r;
}

/* The number of processes in cg, for the audit message (0 when unknown). */
static unsigned cgroup_count(const struct sessions *m, const char *cg) {
        char path[CGROUP_PATH_MAX + 32], buf[4096];
        unsigned n = 0;

        if (m->root_fd < 0 || cgroup_file(cg, "cgroup.procs", path) < 0 ||
            read_small_file_at(m->root_fd, path, buf, sizeof(buf)) < 0)
                return 0;
        for (const char *p = buf; *p; p++)
                n += *p == '\n';
        return n;
}

/* The controlling terminal of pid (tty_nr of /proc/PID/stat), 0 if none. */
static dev_t pid_terminal(pid_t pid) {
        char path[64], buf[1024];
        const char *p;
        int tty = 0;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        if (read_small_file_at(AT_FDCWD, path, buf, sizeof(buf)) < 0)
                return 0;
        /* "PID (COMM) STATE PPID PGRP SESSION TTY_NR ...": COMM may hold anything but ends at the last ')'. */
        p = strrchr(buf, ')');
        if (!p || sscanf(p + 1, " %*c %*d %*d %*d %d", &tty) != 1 || tty <= 0)
                return 0;
        return (dev_t) tty;
}

int session_terminals(struct daemon *d, const struct lb_session *s, dev_t ret[], size_t max, size_t *ret_n) {
        const struct sessions *m = d->sessions;
        char path[CGROUP_PATH_MAX + 32], buf[16384];
        size_t n = 0;
        char *line, *end;

        *ret_n = 0;
        if (isempty(s->cgroup) || m->root_fd < 0)
                return -ENODEV;
        if (cgroup_file(s->cgroup, "cgroup.procs", path) < 0 || read_small_file_at(m->root_fd, path, buf, sizeof(buf)) < 0)
                return -ESRCH;
        for (line = buf; line && *line && n < max; line = end ? end + 1 : NULL) {
                long pid;
                dev_t tty;
                bool seen = false;

                end = strchr(line, '\n');
                if (end)
                        *end = '\0';
                errno = 0;
                pid = strtol(line, NULL, 10);
                if (errno != 0 || pid <= 1 || pid > INT32_MAX)
                        continue;
                tty = pid_terminal((pid_t) pid);
                for (size_t i = 0; i < n && !seen; i++)
                        seen = ret[i] == tty;
                if (tty != 0 && !seen)
                        ret[n++] = tty;
        }
        *ret_n = n;
        return 0;
}

static int cgroup_move(const struct sessions *m, const char *cg, pid_t pid) {
        char path[CGROUP_PATH_MAX + 32], text[32];
        int r = cgroup_file(cg, "cgroup.procs", path);

        if (r < 0)
                return r;
        snprintf(text, sizeof(text), "%d", (int) pid);
        return write_file_at(m->root_fd, path, text);
}

/* The cgroup2 path of pid ("0::/path" in /proc/PID/cgroup). */
static int pid_cgroup(pid_t pid, char **ret) {
        char path[64], buf[8192], *line, *end;

        snprintf(path, sizeof(path), "/proc/%d/cgroup", (int) pid);
        if (read_small_file_at(AT_FDCWD, path, buf, sizeof(buf)) < 0)
                return -ESRCH;
        for (line = buf; line && *line; line = end ? end + 1 : NULL) {
                end = strchr(line, '\n');
                if (end)
                        *end = '\0';
                if (strncmp(line, "0::", 3) == 0) {
                        if (!cgroup_path_valid(line + 3))
                                return -EUCLEAN;
                        *ret = strdup(line + 3);
                        return *ret ? 0 : -ENOMEM;
                }
        }
        return -ENOMEDIUM;
}

/* The first cgroup2 mount of the whole hierarchy in /proc/self/mountinfo: "ID PARENT
 * MAJ:MIN ROOT MOUNTPOINT OPTIONS... - FSTYPE SOURCE SUPER". */
static int find_cgroup2(char **ret) {
        _cleanup_(fclosep) FILE *f = fopen("/proc/self/mountinfo", "re");
        _cleanup_(freep) char *line = NULL;
        size_t size = 0;

        if (!f)
                return negative_errno();
        while (getline(&line, &size, f) > 0) {
                char root[PATH_MAX], mountpoint[PATH_MAX], fstype[64];
                const char *dash = strstr(line, " - ");

                if (!dash || sscanf(line, "%*s %*s %*s %4095s %4095s", root, mountpoint) != 2 ||
                    sscanf(dash + 3, "%63s", fstype) != 1)
                        continue;
                /* Escaped characters (\040) in the mount point are not worth decoding. */
                if (!streq(fstype, "cgroup2") || !streq(root, "/") || strchr(mountpoint, '\\'))
                        continue;
                *ret = strdup(mountpoint);
                return *ret ? 0 : -ENOMEM;
        }
        return -ENOENT;
}

/* Where lockboxd makes the cgroups of the sessions it holds itself. Under systemd, not below
 * lockboxd.service: a unit's limits (memory, tasks, devices, IP filters) apply to its whole
 * subtree, so sessions there would be confined by lockboxd's sandbox and could starve or
 * OOM-kill lockboxd itself. They go into the sibling unit lockbox-sessions.service
 * (Delegate=yes, no limits, PartOf=lockboxd.service: stopping lockboxd kills them all),
 * which must exist. Without systemd (tests), below lockboxd's own cgroup. */
static int sessions_base(struct sessions *m, const char *own) {
        static const char unit[] = "/lockboxd.service", sibling[] = "lockbox-sessions.service";
        size_t n = strlen(own), k = strlen(unit);
        struct stat st;

        if (n >= k && streq(own + n - k, unit)) {
                if (asprintf(&m->base, "%.*s/%s", (int) (n - k), own, sibling) < 0) {
                        m->base = NULL;
                        return -ENOMEM;
                }
                if (fstatat(m->root_fd, m->base + 1, &st, 0) < 0 || !S_ISDIR(st.st_mode))
                        return -ENOENT;
                m->base_is_unit = true;
                return 0;
        }
        if (asprintf(&m->base, "%s/lockbox", streq(own, "/") ? "" : own) < 0) {
                m->base = NULL;
                return -ENOMEM;
        }
        return 0;
}

/* Removes the empty session cgroups under our subtree that a lockboxd that was killed left
 * behind (the kernel refuses to remove one that holds anything). One made in the last
 * seconds may be on its way to receiving a session (another lockboxd: tests), so it stays. */
static void remove_leftovers(struct sessions *m) {
        _cleanup_(closep) int fd = openat(m->root_fd, m->base + 1, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        time_t before = time(NULL) - 10;
        struct dirent *de;
        DIR *dir;

        if (fd < 0)
                return;
        dir = fdopendir(fd);
        if (!dir)
                return;
        fd = -1;
        while ((de = readdir(dir))) {
                struct stat st;

                if (strncmp(de->d_name, "session-", 8) != 0 ||
                    fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode) ||
                    st.st_mtime > before)
                        continue;
                (void) unlinkat(dirfd(dir), de->d_name, AT_REMOVEDIR);
        }
        closedir(dir);
}

int sessions_new(struct daemon *d, struct sessions **ret) {
        _cleanup_(freep) char *own = NULL;
        struct sessions *m;
        int r;

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->daemon = d;
        m->root_fd = -1;
        r = find_cgroup2(&m->root);
        if (r == -ENOMEM)
                goto fail;
        if (r < 0 || !m->root) {
                m->unusable = "this host has no cgroup2 hierarchy to hold the session";
                goto done;
        }
        m->root_fd = open(m->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (m->root_fd < 0) {
                m->unusable = "the cgroup2 hierarchy cannot be opened";
                goto done;
        }
        r = pid_cgroup(getpid(), &own);
        if (r == -ENOMEM)
                goto fail;
        if (r < 0) {
                m->unusable = "lockboxd's own cgroup is unknown";
                goto done;
        }
        r = sessions_base(m, own);
        if (r == -ENOMEM)
                goto fail;
        if (r < 0) {
                m->unusable = "lockbox-sessions.service, whose cgroup holds operator sessions, is not running";
                goto done;
        }
        remove_leftovers(m);
done:
        if (m->unusable)
                fprintf(stderr, "lockboxd: operator sessions cannot be held, operators are refused at the session stage: %s\n",
                        m->unusable);
        *ret = m;
        return 0;
fail:
        sessions_free(m);
        return r;
}

/* ---- logind: one long-lived system bus, asynchronous calls only -------------------------------- */

static int on_logind_reply(sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        const sd_bus_error *e = sd_bus_message_get_error(reply);

        (void) userdata;
        (void) error;
        if (e)
                fprintf(stderr, "lockboxd: logind: %s\n", e->message ?: e->name);
        return 0;
}

static sd_bus *logind_bus(struct sessions *m) {
        int r;

        if (m->bus && sd_bus_is_open(m->bus) > 0)
                return m->bus;
        m->bus = sd_bus_flush_close_unref(m->bus);
        /* Connecting and authenticating go on in the event loop; calls queue meanwhile. */
        r = sd_bus_open_system(&m->bus);
        if (r >= 0)
                r = sd_bus_attach_event(m->bus, m->daemon->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0) {
                fprintf(stderr, "lockboxd: no system bus for logind (%s); killing through the cgroup alone\n",
                        strerror(-r));
                m->bus = sd_bus_flush_close_unref(m->bus);
        }
        return m->bus;
}

/* Tells logind to end the session and kill all of it; the cgroup is killed anyway. */
static void logind_end(struct sessions *m, const char *logind_session) {
        sd_bus *bus;
        int r;

        if (isempty(logind_session) || !(bus = logind_bus(m)))
                return;
        r = sd_bus_call_method_async(bus, NULL, "org.freedesktop.login1", "/org/freedesktop/login1",
                                     "org.freedesktop.login1.Manager", "TerminateSession", on_logind_reply, m, "s",
                                     logind_session);
        if (r >= 0)
                r = sd_bus_call_method_async(bus, NULL, "org.freedesktop.login1", "/org/freedesktop/login1",
                                             "org.freedesktop.login1.Manager", "KillSession", on_logind_reply, m,
                                             "ssi", logind_session, "all", (int32_t) SIGKILL);
        if (r < 0)
                fprintf(stderr, "lockboxd: cannot ask logind to end session %s: %s\n", logind_session, strerror(-r));
}

/* ---- holding a session at open ------------------------------------------------------------------- */

/* From /proc/PID/stat: parent, state and start time. The command name may hold any byte,
 * so parse after the last ')'. */
static int proc_stat(pid_t pid, pid_t *ret_ppid, char *ret_state, uint64_t *ret_start_time) {
        char path[64], buf[1024], state;
        const char *p;
        unsigned long long start_time = 0;
        int ppid = 0, field = 2, r;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        r = read_small_file_at(AT_FDCWD, path, buf, sizeof(buf));
        if (r < 0)
                return r;
        p = strrchr(buf, ')');
        if (!p || sscanf(p + 1, " %c %d", &state, &ppid) != 2)
                return -EIO;
        /* Field 22 is the start time; p points at the end of field 2. */
        for (p++; *p && field < 21; p++)
                if (*p == ' ')
                        field++;
        if (field != 21 || sscanf(p, " %llu", &start_time) != 1)
                return -EIO;
        *ret_ppid = (pid_t) ppid;
        *ret_state = state;
        *ret_start_time = start_time;
        return 0;
}

static uint32_t proc_audit_session(pid_t pid) {
        char path[64], buf[32];
        unsigned long v;
        char *end;

        snprintf(path, sizeof(path), "/proc/%d/sessionid", (int) pid);
        if (read_small_file_at(AT_FDCWD, path, buf, sizeof(buf)) < 0)
                return AUDIT_SESSION_NONE;
        errno = 0;
        v = strtoul(buf, &end, 10);
        if (errno || end == buf || v > UINT32_MAX)
                return AUDIT_SESSION_NONE;
        return (uint32_t) v;
}

int session_identify(pid_t pid, uint32_t *ret_audit_session, uint64_t *ret_start_time) {
        uint32_t audit_session;
        pid_t ppid;
        char state;
        int r;

        r = proc_stat(pid, &ppid, &state, ret_start_time);
        if (r < 0)
                return r;
        if (state == 'Z' || state == 'X')
                return -ESRCH;
        /* Recorded for the audit trail only: the cgroup, not this, holds the session. */
        audit_session = proc_audit_session(pid);
        if (audit_session == proc_audit_session(ppid))
                audit_session = AUDIT_SESSION_NONE;
        *ret_audit_session = audit_session;
        return 0;
}

/* Is the caller in a logind session of uid whose scope holds it? Sets *ret_session. */
static bool logind_holds(const char *cg, pid_t pid, uid_t uid, char **ret_session) {
        _cleanup_(freep) char *session = NULL, *scope = NULL;
        uid_t owner;

        if (sd_pid_get_session(pid, &session) < 0 || sd_session_get_uid(session, &owner) < 0 || owner != uid)
                return false;
        /* The whole path, not its end: below user@UID.service the user makes cgroups of any
         * name, and one of those must never be taken for a scope of logind's. */
        if (asprintf(&scope, "/user.slice/user-%u.slice/session-%s.scope", (unsigned) uid, session) < 0) {
                scope = NULL;
                return false;
        }
        if (!streq(cg, scope))
                return false;
        *ret_session = session;
        session = NULL;
        return true;
}

/* Is the caller uid's systemd user manager (PAM service systemd-user), in the cgroup of
 * user@UID.service itself? That unit holds the manager and every --user job (systemd-run
 * --user, timers, lingering services); moving the manager out would break it, and the user
 * cannot move anything out of it (the slice above is root's). The whole path must match:
 * the user makes cgroups of any name below it, "…/user-N.slice/user@N.service" included. */
static bool user_manager_holds(const char *cg, const char *service, uid_t uid) {
        char unit[96];

        snprintf(unit, sizeof(unit), "/user.slice/user-%u.slice/user@%u.service", (unsigned) uid, (unsigned) uid);
        return streq_ptr(service, "systemd-user") && streq(cg, unit);
}

static bool can_kill(const struct sessions *m, const char *cg) {
        char path[CGROUP_PATH_MAX + 32];

        return cgroup_file(cg, "cgroup.kill", path) >= 0 && faccessat(m->root_fd, path, W_OK, 0) == 0;
}

int session_hold(struct sessions *m, struct lb_session *s, uid_t uid, char **ret_previous, const char **ret_why) {
        _cleanup_(freep) char *previous = NULL, *cg = NULL, *logind_session = NULL;
        char name[ID_LEN + 1];
        int r;

        *ret_why = "the session's processes cannot be found";
        r = pid_cgroup((pid_t) s->pid, &previous);
        if (r == -ENOMEM)
                return r;
        if (r < 0 || m->unusable) {
                *ret_why = m->unusable ?: "the session's cgroup is unknown";
                return r < 0 ? r : -EOPNOTSUPP;
        }

        if (logind_holds(previous, (pid_t) s->pid, uid, &logind_session) || user_manager_holds(previous, s->service, uid)) {
                if (!can_kill(m, previous)) {
                        *ret_why = "the kernel cannot kill the session's scope as a whole (cgroup.kill)";
                        return -EOPNOTSUPP;
                }
                cg = strdup(previous);
        } else {
                r = id_generate(name);
                if (r < 0)
                        return r;
                if (asprintf(&cg, "%s/session-%s", m->base, name) < 0) {
                        cg = NULL;
                        return -ENOMEM;
                }
                if (!cgroup_path_valid(cg)) {
                        *ret_why = "lockboxd's cgroup has an unusable name";
                        return -EINVAL;
                }
                /* Another lockboxd (tests) may remove the base between the two mkdirs. */
                for (int attempt = 0;; attempt++) {
                        /* The unit's cgroup is systemd's to make: never made again here. */
                        if (!m->base_is_unit && mkdirat(m->root_fd, m->base + 1, 0755) < 0 && errno != EEXIST) {
                                r = -errno;
                                *ret_why = "lockboxd cannot make cgroups (is the cgroup2 hierarchy writable?)";
                                return r;
                        }
                        if (mkdirat(m->root_fd, cg + 1, 0755) == 0)
                                break;
                        r = -errno;
                        if (r != -ENOENT || attempt >= 2) {
                                *ret_why = "lockboxd cannot make a cgroup for the session";
                                return r;
                        }
                }
                if (!can_kill(m, cg)) {
                        (void) unlinkat(m->root_fd, cg + 1, AT_REMOVEDIR);
                        *ret_why = "the kernel cannot kill a cgroup as a whole (cgroup.kill, Linux 5.14)";
                        return -EOPNOTSUPP;
                }
                r = cgroup_move(m, cg, (pid_t) s->pid);
                if (r < 0) {
                        (void) unlinkat(m->root_fd, cg + 1, AT_REMOVEDIR);
                        *ret_why = "the session cannot be moved into a cgroup of lockboxd's";
                        return r;
                }
        }
        if (!cg)
                return -ENOMEM;
        free(s->cgroup);
        free(s->logind_session);
        s->cgroup = cg;
        s->logind_session = logind_session ?: strdup("");
        cg = logind_session = NULL;
        if (!s->logind_session)
                return -ENOMEM;
        *ret_previous = previous;
        previous = NULL;
        return 0;
}

static bool own_cgroup(const struct sessions *m, const char *cg) {
        size_t n = m->base ? strlen(m->base) : 0;

        return n > 0 && strncmp(cg, m->base, n) == 0 && cg[n] == '/';
}

void session_unhold(struct sessions *m, const struct lb_session *s, const char *previous) {
        if (isempty(s->cgroup) || !own_cgroup(m, s->cgroup))
                return;
        if (previous)
                (void) cgroup_move(m, previous, (pid_t) s->pid);
        (void) unlinkat(m->root_fd, s->cgroup + 1, AT_REMOVEDIR);
}

/* ---- ending sessions ---------------------------------------------------------------------------- */

/* A session registered before sessions were held by cgroups has only its PAM caller. */
static bool legacy_caller_alive(const struct lb_session *s) {
        uint64_t start_time;
        pid_t ppid;
        char state;

        return proc_stat((pid_t) s->pid, &ppid, &state, &start_time) >= 0 && start_time == s->start_time &&
               state != 'Z' && state != 'X';
}

/* 1 when nothing of the session runs, 0 when something does, -errno when we cannot tell. */
static int session_empty(const struct sessions *m, const struct lb_session *s) {
        if (isempty(s->cgroup))
                return !legacy_caller_alive(s);
        return cgroup_empty(m, s->cgroup);
}

static int session_kill(struct sessions *m, const struct lb_session *s) {
        if (isempty(s->cgroup))
                return legacy_caller_alive(s) && kill((pid_t) s->pid, SIGKILL) < 0 ? -errno : 0;
        return cgroup_kill(m, s->cgroup);
}

/* The kernel says it is empty: our cgroup goes, and so does the registration. */
static void session_forget(struct sessions *m, const struct lb_session *s) {
        int r;

        if (!isempty(s->cgroup) && own_cgroup(m, s->cgroup) &&
            unlinkat(m->root_fd, s->cgroup + 1, AT_REMOVEDIR) < 0 && errno != ENOENT)
                fprintf(stderr, "lockboxd: cannot remove cgroup %s: %m\n", s->cgroup);
        r = store_session_remove(m->daemon->store, s->id);
        if (r < 0 && r != -ENOENT)
                fprintf(stderr, "lockboxd: cannot forget session %" PRIu32 ": %s\n", s->pid, strerror(-r));
        /* The operator's last session gone: their programs are no longer recorded. */
        execaudit_sync(m->daemon->execaudit);
}

static void audit_terminated(struct daemon *d, const struct lb_session *s, const struct lb_request *req,
                             const char *why, unsigned n_processes) {
        _cleanup_(freep) char *message = NULL;
        char pid_text[32];
        int r;

        snprintf(pid_text, sizeof(pid_text), "%" PRIu32, s->pid);
        if (asprintf(&message, "Session of operator %s (pid %" PRIu32 ", %u processes) terminated: %s", s->user,
                     s->pid, n_processes, why) < 0)
                message = NULL;
        r = audit_write(&(struct audit_entry) {
                .event = "session-terminated",
                .priority = LOG_WARNING,
                .request = req,
                .activity = "SessionTerminated",
                .user = d->config->operator_display_name,
                .operator_account = s->user,
                .ip = s->rhost,
                .tenant = d->config->tenant,
                .extra_name = "LOCKBOX_SESSION_PID",
                .extra_value = pid_text,
                .message = message,
        });
        if (r < 0)
                fprintf(stderr, "lockboxd: cannot audit the termination of session %" PRIu32 ": %s\n", s->pid,
                        strerror(-r));
}

/* Does the session still run under an active grant? */
static bool session_permitted(struct daemon *d, const struct lb_session *s, struct lb_request *req, bool *has_req,
                              const char **why) {
        *has_req = false;
        if (!s->request_id[0])
                return !d->config->enabled;
        if (store_get(d->store, s->request_id, req) < 0)
                return false;
        *has_req = true;
        if (!daemon_view_current(d, why))
                return false;
        return req->state == LB_STATE_APPROVED && req->expires_at > daemon_now();
}

static const char *end_reason(const struct lb_request *req) {
        if (!req)
                return "the lockbox was enabled and it has no grant";
        return req->state == LB_STATE_REVOKED ? "its grant was revoked" : "its grant ended";
}

static struct termination *terminating(struct sessions *m, int64_t id) {
        for (struct termination *t = m->terminations; t; t = t->next)
                if (t->session.id == id)
                        return t;
        return NULL;
}

static void termination_free(struct termination *t) {
        for (struct termination **p = &t->owner->terminations; *p; p = &(*p)->next)
                if (*p == t) {
                        *p = t->next;
                        break;
                }
        sd_event_source_disable_unref(t->timer);
        session_done(&t->session);
        free(t);
}

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

/* Until the kernel says the cgroup is empty; killed again each time (cheap, and it reaches
 * anything that was in the middle of being created). */
static int on_poll(sd_event_source *source, uint64_t usec, void *userdata) {
        struct termination *t = userdata;
        bool fast = usec - t->started < FAST_FOR_USEC;
        int r;

        r = session_empty(t->owner, &t->session);
        if (r > 0) {
                session_forget(t->owner, &t->session);
                termination_free(t);
                return 0;
        }
        (void) session_kill(t->owner, &t->session);
        if (!fast && !t->reported) {
                fprintf(stderr, "lockboxd: session %" PRIu32 " of %s is not empty %" PRIu64 " ms after its kill%s; "
                        "it stays registered\n", t->session.pid, t->session.user, (usec - t->started) / 1000,
                        r < 0 ? " (its cgroup cannot be read)" : "");
                t->reported = true;
        }
        (void) sd_event_source_set_time(source, usec + (fast ? POLL_FAST_USEC : POLL_SLOW_USEC));
        (void) sd_event_source_set_enabled(source, SD_EVENT_ONESHOT);
        return 0;
}

/* Audits, kills the session's cgroup (and tells logind), and watches it empty. */
static int terminate(struct daemon *d, struct lb_session *session, const struct lb_request *req, const char *why) {
        struct sessions *m = d->sessions;
        struct termination *t;
        int r;

        audit_terminated(d, session, req, why, isempty(session->cgroup) ? 1 : cgroup_count(m, session->cgroup));
        r = session_kill(m, session);
        if (r < 0)
                fprintf(stderr, "lockboxd: cannot kill the cgroup of session %" PRIu32 ": %s\n", session->pid,
                        strerror(-r));
        logind_end(m, session->logind_session);

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;         /* still registered: the next sweep goes on */
        t->owner = m;
        t->session = *session;
        *session = (struct lb_session) {};
        t->started = now_usec();
        r = sd_event_add_time_relative(d->event, &t->timer, CLOCK_MONOTONIC, POLL_FAST_USEC, 1000, on_poll, t);
        if (r < 0) {
                session_done(&t->session);
                free(t);
                return r;
        }
        t->next = m->terminations;
        m->terminations = t;
        return 0;
}

/* Ends the sessions not permitted now, or with end_all_why every one. */
static int enforce(struct daemon *d, const char *end_all_why) {
        struct sessions *m = d->sessions;
        struct lb_session *sessions = NULL;
        size_t n = 0;
        int r;

        r = store_sessions_list(d->store, NULL, &sessions, &n);
        if (r < 0) {
                fprintf(stderr, "lockboxd: cannot read the session registry: %s\n", strerror(-r));
                return r;
        }
        for (size_t i = 0; i < n; i++) {
                struct lb_request req = {};
                bool has_req = false;

                if (terminating(m, sessions[i].id))
                        continue;
                if (session_empty(m, &sessions[i]) > 0) {
                        /* Logged out and nothing left: forget it. */
                        session_forget(m, &sessions[i]);
                        continue;
                }
                const char *why = NULL;

                if (end_all_why) {
                        has_req = sessions[i].request_id[0] && store_get(d->store, sessions[i].request_id, &req) >= 0;
                        why = end_all_why;
                }
                if (end_all_why || !session_permitted(d, &sessions[i], &req, &has_req, &why)) {
                        int k = terminate(d, &sessions[i], has_req ? &req : NULL, why ? why : end_reason(has_req ? &req : NULL));
                        if (k < 0)
                                fprintf(stderr, "lockboxd: cannot end session %" PRIu32 ": %s\n",
                                        sessions[i].pid, strerror(-k));
                }
                if (has_req)
                        request_done(&req);
        }
        session_array_free(sessions, n);
        return 0;
}

int sessions_enforce(struct daemon *d) {
        return enforce(d, NULL);
}

int sessions_end_all(struct daemon *d, const char *why) {
        return enforce(d, why);
}

void sessions_stop(struct daemon *d) {
        struct sessions *m = d->sessions;
        struct lb_session *sessions = NULL;
        size_t n = 0;
        uint64_t deadline = now_usec() + STOP_WAIT_USEC;
        bool left;
        int r;

        if (!m)
                return;
        r = store_sessions_list(d->store, NULL, &sessions, &n);
        if (r < 0) {
                fprintf(stderr, "lockboxd: cannot read the session registry at exit: %s\n", strerror(-r));
                return;
        }
        for (size_t i = 0; i < n; i++) {
                struct lb_request req = {};

                if (terminating(m, sessions[i].id) || session_empty(m, &sessions[i]) > 0)
                        continue;
                if (sessions[i].request_id[0] && store_get(d->store, sessions[i].request_id, &req) < 0)
                        req = (struct lb_request) {};
                audit_terminated(d, &sessions[i], req.id[0] ? &req : NULL, "lockboxd stopped",
                                 isempty(sessions[i].cgroup) ? 1 : cgroup_count(m, sessions[i].cgroup));
                (void) session_kill(m, &sessions[i]);
                logind_end(m, sessions[i].logind_session);
                request_done(&req);
        }
        for (struct termination *t = m->terminations; t; t = t->next)
                (void) session_kill(m, &t->session);
        if (m->bus)
                (void) sd_bus_flush(m->bus);

        /* The loop is over: waiting here delays nobody but our own exit. */
        do {
                left = false;
                for (size_t i = 0; i < n; i++) {
                        if (sessions[i].id == 0)
                                continue;
                        if (session_empty(m, &sessions[i]) > 0) {
                                struct termination *t = terminating(m, sessions[i].id);

                                session_forget(m, &sessions[i]);
                                if (t)
                                        termination_free(t);
                                sessions[i].id = 0;
                        } else
                                left = true;
                }
                if (left)
                        (void) nanosleep(&(struct timespec) { .tv_nsec = POLL_FAST_USEC * 1000 }, NULL);
        } while (left && now_usec() < deadline);
        for (size_t i = 0; i < n; i++)
                if (sessions[i].id != 0)
                        fprintf(stderr, "lockboxd: session %" PRIu32 " of %s is not empty at exit; it stays "
                                "registered\n", sessions[i].pid, sessions[i].user);
        session_array_free(sessions, n);
}

/* Forgets the registered sessions whose cgroup the kernel reports empty. */
static void forget_empty(struct sessions *m) {
        struct lb_session *sessions = NULL;
        size_t n = 0;

        if (!m->daemon->store || store_sessions_list(m->daemon->store, NULL, &sessions, &n) < 0)
                return;
        for (size_t i = 0; i < n; i++)
                if (!terminating(m, sessions[i].id) && session_empty(m, &sessions[i]) > 0)
                        session_forget(m, &sessions[i]);
        session_array_free(sessions, n);
}

void sessions_free(struct sessions *m) {
        if (!m)
                return;
        /* No cgroup of ours outlives lockboxd empty. */
        forget_empty(m);
        while (m->terminations) {
                (void) session_kill(m, &m->terminations->session);
                termination_free(m->terminations);
        }
        /* Our subtree goes if it is empty (it is not while sessions are registered). */
        if (m->root_fd >= 0 && m->base)
                (void) unlinkat(m->root_fd, m->base + 1, AT_REMOVEDIR);
        m->bus = sd_bus_flush_close_unref(m->bus);
        if (m->root_fd >= 0)
                close(m->root_fd);
        free(m->root);
        free(m->base);
        free(m);
}
