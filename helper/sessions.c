/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Ending operator sessions when their grant ends: logind where it runs, and always the
 * whole process set of the session, found through the kernel's audit session id and the
 * process tree below the PAM caller. */

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <syslog.h>
#include <time.h>
#include <systemd/sd-bus.h>

#include "audit.h"
#include "daemon.h"
#include "sessions.h"
#include "util.h"

#define GRACE_USEC (300 * 1000)
#define POLL_USEC (20 * 1000)
#define KILL_ROUNDS 25
#define LOGIND_TIMEOUT_USEC (500 * 1000)

static int read_small_file(const char *path, char *buf, size_t size) {
        _cleanup_(closep) int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        ssize_t n;

        if (fd < 0)
                return -errno;
        n = read(fd, buf, size - 1);
        if (n < 0)
                return -errno;
        buf[n] = '\0';
        return 0;
}

/* From /proc/PID/stat: parent, state and start time. The command name may hold any
 * byte, so parse after the last ')'. */
static int proc_stat(pid_t pid, pid_t *ret_ppid, char *ret_state, uint64_t *ret_start_time) {
        char path[64], buf[1024], state;
        const char *p;
        unsigned long long start_time = 0;
        int ppid = 0, field = 2, r;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        r = read_small_file(path, buf, sizeof(buf));
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
        if (read_small_file(path, buf, sizeof(buf)) < 0)
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
        /* Only an audit session that began at the PAM caller (pam_loginuid ran for this
         * login) is the operator's alone. One inherited from the parent is shared with
         * whoever started the service, and must never be a reason to kill anything. */
        audit_session = proc_audit_session(pid);
        if (audit_session == proc_audit_session(ppid))
                audit_session = AUDIT_SESSION_NONE;
        *ret_audit_session = audit_session;
        return 0;
}

static bool caller_alive(const struct lb_session *s) {
        uint64_t start_time;
        pid_t ppid;
        char state;

        if (proc_stat((pid_t) s->pid, &ppid, &state, &start_time) < 0)
                return false;
        return start_time == s->start_time && state != 'Z' && state != 'X';
}

struct proc_entry {
        pid_t pid, ppid;
        uint64_t start_time;
        uint32_t audit_session;
        bool target;
};

/* Every live process of the session: the PAM caller (if it is still the same process),
 * everything below it, and everything in its audit session. */
static int session_targets(const struct lb_session *s, pid_t **ret, size_t *ret_n) {
        _cleanup_(freep) struct proc_entry *procs = NULL;
        _cleanup_(freep) pid_t *targets = NULL;
        DIR *dir;
        struct dirent *de;
        size_t n = 0, allocated = 0, n_targets = 0;
        pid_t self = getpid();
        bool grew;

        dir = opendir("/proc");
        if (!dir)
                return -errno;
        while ((de = readdir(dir))) {
                struct proc_entry e = {};
                char state, *end;
                long v;

                errno = 0;
                v = strtol(de->d_name, &end, 10);
                if (errno || *end || v <= 1 || v == self)
                        continue;
                e.pid = (pid_t) v;
                if (proc_stat(e.pid, &e.ppid, &state, &e.start_time) < 0 || state == 'Z' || state == 'X')
                        continue;
                e.audit_session = proc_audit_session(e.pid);
                e.target = (e.pid == (pid_t) s->pid && e.start_time == s->start_time) ||
                           (s->audit_session != AUDIT_SESSION_NONE && s->audit_session != 0 &&
                            e.audit_session == s->audit_session);
                if (n == allocated) {
                        size_t m = allocated ? allocated * 2 : 256;
                        struct proc_entry *b = reallocarray(procs, m, sizeof(*procs));

                        if (!b) {
                                closedir(dir);
                                return -ENOMEM;
                        }
                        procs = b;
                        allocated = m;
                }
                procs[n++] = e;
        }
        closedir(dir);

        /* Close over the tree: children of targets are targets. */
        do {
                grew = false;
                for (size_t i = 0; i < n; i++) {
                        if (procs[i].target)
                                continue;
                        for (size_t j = 0; j < n; j++)
                                if (procs[j].target && procs[j].pid == procs[i].ppid) {
                                        procs[i].target = grew = true;
                                        break;
                                }
                }
        } while (grew);

        targets = calloc(n + 1, sizeof(pid_t));
        if (!targets)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                if (procs[i].target)
                        targets[n_targets++] = procs[i].pid;
        *ret = targets;
        *ret_n = n_targets;
        targets = NULL;
        return 0;
}

bool session_alive(const struct lb_session *s) {
        _cleanup_(freep) pid_t *left = NULL;
        size_t n = 0;

        if (caller_alive(s))
                return true;
        /* The caller is gone, but what it started may not be (setsid, double fork). */
        if (s->audit_session == AUDIT_SESSION_NONE)
                return false;
        return session_targets(s, &left, &n) < 0 || n > 0;
}

bool session_lingers(const struct lb_session *s) {
        _cleanup_(freep) pid_t *left = NULL;
        size_t n = 0;

        if (s->audit_session == AUDIT_SESSION_NONE)
                return false;
        if (session_targets(s, &left, &n) < 0)
                return true;
        for (size_t i = 0; i < n; i++)
                if (left[i] != (pid_t) s->pid)
                        return true;
        return false;
}

static void signal_targets(const struct lb_session *s, int sig, size_t *ret_n) {
        _cleanup_(freep) pid_t *targets = NULL;
        size_t n = 0;

        *ret_n = 0;
        if (session_targets(s, &targets, &n) < 0)
                return;
        for (size_t i = 0; i < n; i++) {
                (void) kill(targets[i], sig);
                if (sig == SIGHUP)
                        (void) kill(targets[i], SIGCONT);
        }
        *ret_n = n;
}

static void logind_terminate(const char *logind_session) {
        _cleanup_(sd_bus_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

        if (isempty(logind_session) || sd_bus_open_system(&bus) < 0)
                return;
        (void) sd_bus_set_method_call_timeout(bus, LOGIND_TIMEOUT_USEC);
        if (sd_bus_call_method(bus, "org.freedesktop.login1", "/org/freedesktop/login1",
                               "org.freedesktop.login1.Manager", "TerminateSession", &error, NULL,
                               "s", logind_session) < 0)
                fprintf(stderr, "lockboxd: logind could not terminate session %s: %s\n", logind_session,
                        error.message ?: "unknown error");
}

static void audit_terminated(struct daemon *d, const struct lb_session *s, const struct lb_request *req,
                             size_t n_processes) {
        _cleanup_(freep) char *message = NULL;
        char pid_text[32];
        int r;

        snprintf(pid_text, sizeof(pid_text), "%" PRIu32, s->pid);
        if (asprintf(&message, "Session of operator %s (pid %" PRIu32 ", %zu processes) terminated: %s", s->user,
                     s->pid, n_processes,
                     !req ? "the lockbox was enabled and it has no grant"
                          : req->state == LB_STATE_REVOKED ? "its grant was revoked" : "its grant ended") < 0)
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
static bool session_permitted(struct daemon *d, const struct lb_session *s, struct lb_request *req, bool *has_req) {
        *has_req = false;
        if (!s->request_id[0])
                return !d->config->enabled;
        if (store_get(d->store, s->request_id, req) < 0)
                return false;
        *has_req = true;
        return req->state == LB_STATE_APPROVED && req->expires_at > daemon_now();
}

/* A session being ended: asked with SIGHUP, then killed after the grace period by a
 * timer, so the daemon goes on answering (logins included) meanwhile. */
struct termination {
        struct daemon *daemon;
        struct lb_session session;
        sd_event_source *timer;
        unsigned rounds;
        struct termination *next;
};

static struct termination *terminations;

static bool terminating(int64_t id) {
        for (struct termination *t = terminations; t; t = t->next)
                if (t->session.id == id)
                        return true;
        return false;
}

static void termination_free(struct termination *t) {
        for (struct termination **p = &terminations; *p; p = &(*p)->next)
                if (*p == t) {
                        *p = t->next;
                        break;
                }
        sd_event_source_disable_unref(t->timer);
        session_done(&t->session);
        free(t);
}

static int on_grace_over(sd_event_source *s, uint64_t usec, void *userdata) {
        struct termination *t = userdata;
        size_t killed = 0;

        signal_targets(&t->session, SIGKILL, &killed);
        /* New children may appear while we kill: go on until nothing is left. */
        if (killed > 0 && ++t->rounds < KILL_ROUNDS) {
                (void) sd_event_source_set_time(s, usec + POLL_USEC);
                (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
                return 0;
        }
        if (killed > 0)
                /* Still registered, so the next sweep ends it again: forgetting it
                 * would leave what survived out of every grant's reach. */
                fprintf(stderr, "lockboxd: session %" PRIu32 " of %s still has processes after %u rounds; "
                        "trying again at the next sweep\n", t->session.pid, t->session.user, t->rounds);
        else
                (void) store_session_remove(t->daemon->store, t->session.id);
        termination_free(t);
        return 0;
}

static int terminate(struct daemon *d, struct lb_session *session, const struct lb_request *req) {
        struct termination *t;
        size_t signalled = 0;
        int r;

        logind_terminate(session->logind_session);
        signal_targets(session, SIGHUP, &signalled);
        audit_terminated(d, session, req, signalled);

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->daemon = d;
        t->session = *session;
        *session = (struct lb_session) {};
        r = sd_event_add_time_relative(d->event, &t->timer, CLOCK_MONOTONIC, GRACE_USEC, 1000, on_grace_over, t);
        if (r < 0) {
                /* No timer: do not leave it half done. It stays registered: the next
                 * sweep forgets it if nothing is left, or ends what is. */
                signal_targets(&t->session, SIGKILL, &signalled);
                session_done(&t->session);
                free(t);
                return r;
        }
        t->next = terminations;
        terminations = t;
        return 0;
}

int sessions_enforce(struct daemon *d) {
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

                if (terminating(sessions[i].id))
                        continue;
                if (!session_alive(&sessions[i])) {
                        /* Closed without telling us, or logged out and nothing left: forget it. */
                        (void) store_session_remove(d->store, sessions[i].id);
                        continue;
                }
                if (!session_permitted(d, &sessions[i], &req, &has_req)) {
                        int k = terminate(d, &sessions[i], has_req ? &req : NULL);
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

void sessions_shutdown(struct daemon *d) {
        (void) d;
        /* Pending kills are finished now rather than abandoned. */
        while (terminations) {
                struct termination *t = terminations;
                size_t killed = 0;

                signal_targets(&t->session, SIGKILL, &killed);
                termination_free(t);
        }
}
