/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Notifications: a configured command (no shell, LOCKBOX_* environment) and/or a plain-text
 * mail piped to sendmail -t. Both run as nobody, detached, with a time limit. */

#include <fcntl.h>
#include <stdarg.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <syslog.h>
#include <systemd/sd-event.h>
#include <systemd/sd-journal.h>

#include "daemon.h"
#include "duration.h"
#include "notify.h"
#include "text.h"
#include "util.h"

#define NOTIFY_TIMEOUT_USEC (10ULL * 1000000ULL)
#define MAIL_MAX (32 * 1024)
#define ENV_MAX 16
/* A request flood must not become a process flood: at most this many notifiers run at
 * once; the others wait in a FIFO of NOTIFY_QUEUE_MAX and start as running ones end. What
 * finds the queue full is dropped, with a warning in the journal and the count. */
#define NOTIFY_CHILDREN_MAX 4
#define NOTIFY_QUEUE_MAX 256

/* A notifier waiting for a free slot: copies of what spawn() was given. */
struct queued {
        char *what;
        char **argv;
        char **envp;
        char *input;
        struct queued *next;
};

struct child {
        struct daemon *daemon;
        pid_t pid;
        char *what;
        sd_event_source *exit_source;
        sd_event_source *timeout_source;
        struct child *prev, *next;
};

static void child_free(struct child *c) {
        if (c->daemon) {
                c->daemon->n_children--;
                if (c->prev)
                        c->prev->next = c->next;
                else
                        c->daemon->children = c->next;
                if (c->next)
                        c->next->prev = c->prev;
        }
        sd_event_source_disable_unref(c->exit_source);
        sd_event_source_disable_unref(c->timeout_source);
        free(c->what);
        free(c);
}

static void spawn_queued(struct daemon *d);

static int on_child_exit(sd_event_source *s, const siginfo_t *si, void *userdata) {
        struct child *c = userdata;
        struct daemon *d = c->daemon;

        (void) s;
        if (si->si_code != CLD_EXITED || si->si_status != 0)
                fprintf(stderr, "lockboxd: notifier %s failed (%s %d)\n", c->what,
                        si->si_code == CLD_EXITED ? "exit status" : "signal", si->si_status);
        child_free(c);
        spawn_queued(d);
        return 0;
}

static int on_child_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        struct child *c = userdata;

        (void) s;
        (void) usec;
        fprintf(stderr, "lockboxd: notifier %s took too long, killing it\n", c->what);
        (void) kill(-c->pid, SIGKILL);
        (void) kill(c->pid, SIGKILL);
        return 0;
}

/* In the child: a clean slate and no privileges. Never returns on failure paths. */
static void child_setup(int stdin_fd) {
        struct passwd *pw = getpwnam("nobody");
        sigset_t none;
        int null_fd;

        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        for (int sig = 1; sig < NSIG; sig++)
                (void) signal(sig, SIG_DFL);
        (void) setsid();

        null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null_fd < 0 || dup2(stdin_fd >= 0 ? stdin_fd : null_fd, STDIN_FILENO) < 0 ||
            dup2(null_fd, STDOUT_FILENO) < 0)
                _exit(126);
        /* stderr stays the daemon's: a notifier's complaints land next to ours. */

        if (!pw || setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0 ||
            setuid(0) == 0)
                _exit(126);
        if (chdir("/") < 0)
                _exit(126);
}

/* Starts argv[0] with envp, feeding it input (may be NULL), and watches it. */
static void spawn_now(struct daemon *d, const char *what, char *const argv[], char *const envp[], const char *input) {
        int pipe_fds[2] = { -1, -1 };
        struct child *c;
        pid_t pid;

        if (input && pipe2(pipe_fds, O_CLOEXEC) < 0) {
                fprintf(stderr, "lockboxd: notifier %s: pipe: %s\n", what, strerror(errno));
                return;
        }
        pid = fork();
        if (pid < 0) {
                fprintf(stderr, "lockboxd: notifier %s: fork: %s\n", what, strerror(errno));
                if (input) {
                        close(pipe_fds[0]);
                        close(pipe_fds[1]);
                }
                return;
        }
        if (pid == 0) {
                child_setup(pipe_fds[0]);
                execve(argv[0], argv, envp);
                _exit(127);
        }

        if (input) {
                size_t len = strlen(input);

                close(pipe_fds[0]);
                /* The message fits the pipe buffer; never wait for a slow reader. */
                (void) fcntl(pipe_fds[1], F_SETFL, O_NONBLOCK);
                if (write(pipe_fds[1], input, len) != (ssize_t) len)
                        fprintf(stderr, "lockboxd: notifier %s: could not pass the whole message\n", what);
                close(pipe_fds[1]);
        }

        c = calloc(1, sizeof(*c));
        if (!c || !(c->what = strdup(what)) ||
            sd_event_add_child(d->event, &c->exit_source, pid, WEXITED, on_child_exit, c) < 0 ||
            sd_event_add_time_relative(d->event, &c->timeout_source, CLOCK_MONOTONIC, NOTIFY_TIMEOUT_USEC, 0,
                                       on_child_timeout, c) < 0) {
                /* Cannot watch it: make sure it does not outlive us unwatched. */
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                if (c)
                        child_free(c);
                return;
        }
        c->pid = pid;
        c->daemon = d;
        d->n_children++;
        c->next = d->children;
        if (c->next)
                c->next->prev = c;
        d->children = c;
}

static void strv_free_null(char **v) {
        if (!v)
                return;
        for (char **p = v; *p; p++)
                free(*p);
        free(v);
}

static char **strv_copy(char *const v[]) {
        size_t n = 0;
        char **copy;

        while (v[n])
                n++;
        copy = calloc(n + 1, sizeof(char *));
        if (!copy)
                return NULL;
        for (size_t i = 0; i < n; i++)
                if (!(copy[i] = strdup(v[i]))) {
                        strv_free_null(copy);
                        return NULL;
                }
        return copy;
}

static void queued_free(struct queued *q) {
        free(q->what);
        strv_free_null(q->argv);
        strv_free_null(q->envp);
        free(q->input);
        free(q);
}

static void dropped_report(struct daemon *d, const char *why) {
        fprintf(stderr, "lockboxd: %u notification(s) dropped: %s\n", d->notify_dropped, why);
        sd_journal_send("PRIORITY=%i", LOG_WARNING, "SYSLOG_IDENTIFIER=lockboxd",
                        "LOCKBOX_NOTIFY_DROPPED=%u", d->notify_dropped,
                        "MESSAGE=%u notification(s) dropped: %s", d->notify_dropped, why, NULL);
}

/* Starts what fits from the queue, oldest first. */
static void spawn_queued(struct daemon *d) {
        while (d->notify_queue && d->n_children < NOTIFY_CHILDREN_MAX) {
                struct queued *q = d->notify_queue;

                d->notify_queue = q->next;
                if (!d->notify_queue)
                        d->notify_queue_tail = NULL;
                d->n_notify_queued--;
                spawn_now(d, q->what, q->argv, q->envp, q->input);
                queued_free(q);
        }
        if (d->notify_dropped > 0 && d->n_notify_queued < NOTIFY_QUEUE_MAX) {
                dropped_report(d, "the notifier queue was full; it has room again");
                d->notify_dropped = 0;
        }
}

static void spawn(struct daemon *d, const char *what, char *const argv[], char *const envp[], const char *input) {
        struct queued *q;

        if (d->n_children < NOTIFY_CHILDREN_MAX && !d->notify_queue) {
                spawn_now(d, what, argv, envp, input);
                return;
        }
        if (d->n_notify_queued >= NOTIFY_QUEUE_MAX) {
                if (d->notify_dropped++ == 0)
                        dropped_report(d, "the notifier queue is full");
                return;
        }
        q = calloc(1, sizeof(*q));
        if (!q || !(q->what = strdup(what)) || !(q->argv = strv_copy(argv)) || !(q->envp = strv_copy(envp)) ||
            (input && !(q->input = strdup(input)))) {
                if (q)
                        queued_free(q);
                d->notify_dropped++;
                dropped_report(d, "out of memory while queueing");
                d->notify_dropped = 0;
                return;
        }
        if (d->notify_queue_tail)
                d->notify_queue_tail->next = q;
        else
                d->notify_queue = q;
        d->notify_queue_tail = q;
        d->n_notify_queued++;
}

void notify_shutdown(struct daemon *d) {
        while (d->notify_queue) {
                struct queued *q = d->notify_queue;

                d->notify_queue = q->next;
                queued_free(q);
        }
        d->notify_queue_tail = NULL;
        if (d->n_notify_queued > 0)
                fprintf(stderr, "lockboxd: %u queued notification(s) not sent at shutdown\n", d->n_notify_queued);
        d->n_notify_queued = 0;
        while (d->children) {
                struct child *c = d->children;

                (void) kill(-c->pid, SIGKILL);
                (void) kill(c->pid, SIGKILL);
                (void) waitpid(c->pid, NULL, 0);
                child_free(c);
        }
}

_printf_(3, 4)
static bool env_add(char **envp, size_t *n, const char *fmt, ...) {
        va_list ap;
        int k;

        if (*n >= ENV_MAX - 1)
                return false;
        va_start(ap, fmt);
        k = vasprintf(&envp[*n], fmt, ap);
        va_end(ap);
        if (k < 0) {
                envp[*n] = NULL;
                return false;
        }
        (*n)++;
        return true;
}

static const char *audience_of(struct daemon *d, const char *event, const char **ret_group) {
        if (streq(event, "request-created")) {
                if (d->config->require_manager_approval) {
                        *ret_group = d->config->group_managers;
                        return "managers";
                }
                *ret_group = d->config->group_approvers;
                return "approvers";
        }
        if (streq(event, "manager-approved")) {
                *ret_group = d->config->group_approvers;
                return "approvers";
        }
        *ret_group = "";
        return "requester";
}

/* Mails carry no links: an operator's text could hold one, so defang what looks like one. */
static char *defang(const char *s) {
        _cleanup_(freep) char *escaped = text_escape(s);
        char *out, *o;

        if (!escaped)
                return NULL;
        out = malloc(strlen(escaped) * 3 + 1);
        if (!out)
                return NULL;
        o = out;
        for (const char *p = escaped; *p;) {
                if (strncmp(p, "://", 3) == 0) {
                        o = stpcpy(o, "[:]//");
                        p += 3;
                } else if (strncasecmp(p, "www.", 4) == 0) {
                        memcpy(o, p, 3);
                        o = stpcpy(o + 3, "[.]");
                        p += 4;
                } else
                        *o++ = *p++;
        }
        *o = '\0';
        return out;
}

static bool is_ascii_printable(const char *s) {
        for (; *s; s++)
                if ((unsigned char) *s < 0x20 || (unsigned char) *s > 0x7e)
                        return false;
        return true;
}

static char *compose_mail(struct daemon *d, const char *event, const char *audience, const struct lb_request *r,
                          const char *decided_by) {
        _cleanup_(freep) char *requester = defang(r->requester), *ticket = defang(r->ticket),
                                *reason = defang(r->reason), *comment = defang(r->comment),
                                *decider = defang(decided_by), *to = NULL;
        char host[256] = "", date[64], expires[TIMESTAMP_BUF], dbuf[DURATION_BUF];
        struct tm tm;
        time_t now = time(NULL);
        char *mail = NULL;
        size_t to_len = 1;

        if (!requester || !ticket || !reason || !comment || !decider)
                return NULL;
        for (size_t i = 0; i < d->config->n_notify_mail_to; i++)
                to_len += strlen(d->config->notify_mail_to[i]) + 2;
        to = calloc(1, to_len);
        if (!to)
                return NULL;
        for (size_t i = 0; i < d->config->n_notify_mail_to; i++) {
                if (i > 0)
                        strcat(to, ", ");
                strcat(to, d->config->notify_mail_to[i]);
        }
        (void) gethostname(host, sizeof(host) - 1);
        gmtime_r(&now, &tm);
        strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);

        if (asprintf(&mail,
                     "From: %s\n"
                     "To: %s\n"
                     "Subject: [lockbox] %s: request %.8s %s%s%s\n"
                     "Date: %s\n"
                     "Message-ID: <%s.%s.%lld@lockbox>\n"
                     "Auto-Submitted: auto-generated\n"
                     "MIME-Version: 1.0\n"
                     "Content-Type: text/plain; charset=utf-8\n"
                     "Content-Transfer-Encoding: 8bit\n"
                     "\n"
                     "Customer Lockbox on %s (tenant %s): %s, for the %s.\n"
                     "\n"
                     "Request:    %s\n"
                     "State:      %s\n"
                     "Requester:  %s\n"
                     "Ticket:     %s\n"
                     "Reason:     %s\n"
                     "Duration:   %s\n"
                     "Expires:    %s\n"
                     "Decided by: %s\n"
                     "Comment:    %s\n"
                     "\n"
                     "To review it, log in to %s and run:\n"
                     "  lockbox show %s\n"
                     "%s",
                     d->config->notify_from, to, d->config->tenant, r->id, event,
                     is_ascii_printable(ticket) ? ", ticket " : "", is_ascii_printable(ticket) ? ticket : "",
                     date, r->id, event, (long long) now, host, d->config->tenant, event, audience, r->id,
                     state_to_string(r->state), requester, ticket, reason, duration_format(r->duration, dbuf),
                     r->expires_at > 0 ? timestamp_format(r->expires_at, expires) : "-",
                     isempty(decided_by) ? "-" : decider, isempty(r->comment) ? "-" : comment, host, r->id,
                     r->state == LB_STATE_PENDING_MANAGER || r->state == LB_STATE_PENDING
                             ? "and decide with: lockbox approve ID | lockbox deny ID\n"
                             : r->state == LB_STATE_APPROVED ? "and end it early with: lockbox revoke ID\n" : "") < 0)
                return NULL;
        if (strlen(mail) > MAIL_MAX) {
                free(mail);
                return NULL;
        }
        return mail;
}

void notify_event(struct daemon *d, const char *event, const struct lb_request *r, const char *decided_by) {
        const struct lb_config *c = d->config;
        const char *group = "", *audience;
        char expires[TIMESTAMP_BUF] = "";

        if (isempty(c->notify_command) && c->n_notify_mail_to == 0)
                return;
        audience = audience_of(d, event, &group);

        if (!isempty(c->notify_command)) {
                char *envp[ENV_MAX] = {};
                size_t n = 0;
                bool ok = true;

                if (r->expires_at > 0)
                        timestamp_format(r->expires_at, expires);
#define ENV(fmt, ...) ok = ok && env_add(envp, &n, fmt, __VA_ARGS__)
                ENV("PATH=%s", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
                ENV("LOCKBOX_EVENT=%s", event);
                ENV("LOCKBOX_REQUEST_ID=%s", r->id);
                ENV("LOCKBOX_TENANT=%s", r->tenant);
                ENV("LOCKBOX_TICKET=%s", r->ticket);
                ENV("LOCKBOX_REQUESTER=%s", r->requester);
                ENV("LOCKBOX_STATE=%s", state_to_string(r->state));
                ENV("LOCKBOX_EXPIRES=%s", expires);
                ENV("LOCKBOX_DECIDED_BY=%s", strempty(decided_by));
                ENV("LOCKBOX_AUDIENCE=%s", audience);
                ENV("LOCKBOX_AUDIENCE_GROUP=%s", group);
#undef ENV
                if (ok) {
                        char *argv[] = { c->notify_command, (char *) event, NULL };
                        spawn(d, c->notify_command, argv, envp, NULL);
                } else
                        fprintf(stderr, "lockboxd: notifier: out of memory\n");
                for (size_t i = 0; i < n; i++)
                        free(envp[i]);
        }

        if (c->n_notify_mail_to > 0) {
                _cleanup_(freep) char *mail = compose_mail(d, event, audience, r, decided_by);
                char *argv[] = { c->notify_sendmail, (char *) "-t", (char *) "-i", NULL };
                char *envp[] = { (char *) "PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL };

                if (mail)
                        spawn(d, c->notify_sendmail, argv, envp, mail);
                else
                        fprintf(stderr, "lockboxd: cannot compose the mail for %s of %s\n", event, r->id);
        }
}
