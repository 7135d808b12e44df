/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* pam_lockbox: admits an operator only while a Customer Lockbox grant of theirs is active,
 * and registers operator sessions with lockboxd. Users in no lockbox role are left alone.
 * Optionally (auth stage, after the real authentication) an operator without a grant may
 * file a request at the login prompt and wait there for the decision. */

#include <ctype.h>
#include <pwd.h>
#include <stdarg.h>
#include <syslog.h>
#include <time.h>
#include <security/pam_ext.h>
#include <security/pam_modules.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-login.h>

#include "client.h"
#include "config.h"
#include "duration.h"
#include "protocol.h"
#include "request.h"
#include "roles.h"
#include "text.h"
#include "util.h"

#define _public_ __attribute__((visibility("default")))
#define USEC_PER_SEC 1000000ULL

struct module_args {
        const char *config_path;
        bool debug;
        const char *bad_argument;       /* first argument we did not understand */
};

static void parse_args(int argc, const char **argv, struct module_args *a) {
        *a = (struct module_args) { .config_path = LOCKBOX_CONFIG_PATH };

        for (int i = 0; i < argc; i++) {
                if (strncmp(argv[i], "config=", 7) == 0 && argv[i][7] == '/')
                        a->config_path = argv[i] + 7;
                else if (streq(argv[i], "debug"))
                        a->debug = true;
                else if (!a->bad_argument)
                        a->bad_argument = argv[i];
        }
}

/* Logs why and returns the PAM code. */
_printf_(4, 5)
static int log_result(pam_handle_t *handle, int priority, int pam_code, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        pam_vsyslog(handle, priority, fmt, ap);
        va_end(ap);
        return pam_code;
}

static const char *pam_item_string(pam_handle_t *handle, int item) {
        const void *value = NULL;

        if (pam_get_item(handle, item, &value) != PAM_SUCCESS || !value)
                return "";
        return value;
}

static bool is_root(const char *user) {
        struct passwd pw, *result = NULL;
        char buf[4096];

        return getpwnam_r(user, &pw, buf, sizeof(buf), &result) == 0 && result && pw.pw_uid == 0;
}

/* Everything the module needs to know before it may talk to the helper. Returns true
 * for an operator whose checks may go on; otherwise *verdict is what to return: a
 * refusal, PAM_USER_UNKNOWN, or PAM_IGNORE for users in no role. Never PAM_SUCCESS. */
static bool prepare(pam_handle_t *handle, int argc, const char **argv, struct module_args *args,
                    struct lb_config **ret_config, const char **ret_user, char **ret_shown, int *verdict) {
        _cleanup_(config_freep) struct lb_config *c = NULL;
        _cleanup_(freep) char *shown_user = NULL;
        char err[CONFIG_ERROR_MAX];
        const char *user = NULL, *shown;
        bool from_snapshot = false;
        int r;

        *verdict = PAM_PERM_DENIED;
        parse_args(argc, argv, args);
        r = pam_get_user(handle, &user, NULL);
        if (r != PAM_SUCCESS || isempty(user)) {
                pam_syslog(handle, LOG_ERR, "cannot get the user name: %s", pam_strerror(handle, r));
                return false;
        }
        /* The name is whatever the application was given: never log it raw. */
        shown_user = text_escape(user);
        shown = shown_user ?: "(unprintable)";

        /* The rules lockboxd accepted last (its snapshot), not whatever the file says now:
         * an edit takes effect for daemon and module together, at a reload that passed.
         * Without a trustworthy config we cannot tell operators from others: refuse all
         * but root, who must be able to log in and repair it. */
        r = config_load_accepted(args->config_path, &c, &from_snapshot, err);
        if (r >= 0 && args->debug)
                pam_syslog(handle, LOG_DEBUG, "using %s", from_snapshot ? "lockboxd's snapshot of the config" : "the config file (no snapshot)");
        if (r < 0) {
                if (is_root(user)) {
                        pam_syslog(handle, LOG_CRIT, "admitting root despite an unusable config: %s", err);
                        *verdict = PAM_IGNORE;
                } else
                        pam_syslog(handle, LOG_ERR, "refusing %s: %s", shown, err);
                return false;
        }

        r = user_is_operator(c, user);
        if (r == -ENXIO) {
                if (is_root(user)) {
                        pam_syslog(handle, LOG_CRIT, "admitting root: the operators group %s does not exist",
                                   c->group_operators);
                        *verdict = PAM_IGNORE;
                } else
                        pam_syslog(handle, LOG_ERR, "refusing %s: the operators group %s does not exist",
                                   shown, c->group_operators);
                return false;
        }
        if (r == -ENOENT) {
                pam_syslog(handle, LOG_NOTICE, "unknown user %s", shown);
                *verdict = PAM_USER_UNKNOWN;
                return false;
        }
        if (r < 0) {
                errno = -r;
                pam_syslog(handle, LOG_ERR, "refusing %s: cannot read group membership: %m", shown);
                return false;
        }
        if (r == 0) {
                if (args->debug)
                        pam_syslog(handle, LOG_DEBUG, "%s is not an operator, ignoring", shown);
                *verdict = PAM_IGNORE;
                return false;
        }
        if (args->bad_argument) {
                pam_syslog(handle, LOG_ERR, "refusing operator %s: unknown module argument '%s'", shown,
                           args->bad_argument);
                return false;
        }

        *ret_shown = strdup(shown);
        if (!*ret_shown) {
                pam_syslog(handle, LOG_ERR, "refusing operator %s: out of memory", shown);
                return false;
        }
        *ret_config = c;
        c = NULL;
        *ret_user = user;
        return true;
}

/* Calls member on lockboxd, waiting at most timeout_usec. On failure logs the cause and
 * returns a negative errno; a D-Bus error (-EBADR) is logged and left in *error. shown is
 * the user name as it may be logged (escaped). */
static int helper_call_until(pam_handle_t *handle, const struct lb_config *c, const char *shown, const char *member,
                             int (*build)(sd_bus_message *m, void *userdata), void *userdata,
                             uint64_t timeout_usec, sd_bus_error *error, sd_bus_message **reply) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        /* No flush on the way out: a hung helper must not hold us past our deadline. */
        _cleanup_(sd_bus_close_unrefp) sd_bus *bus = NULL;
        int r;

        r = client_open(c->socket, &bus);
        if (r >= 0)
                r = client_new_call(bus, &m, member);
        if (r >= 0)
                r = build(m, userdata);
        if (r >= 0)
                r = client_call(bus, m, timeout_usec, error, reply);
        if (r == -EBADR) {
                _cleanup_(freep) char *text = text_escape(error->message ?: error->name);
                pam_syslog(handle, LOG_ERR, "lockboxd refused %s for %s: %s", member, shown, strempty(text));
        } else if (r < 0) {
                errno = -r;
                pam_syslog(handle, LOG_ERR, "cannot ask lockboxd (%s) about %s: %m", c->socket, shown);
        }
        return r;
}

/* The same under the configured pam_timeout, the error only logged. */
static int helper_call(pam_handle_t *handle, const struct lb_config *c, const char *shown, const char *member,
                       int (*build)(sd_bus_message *m, void *userdata), void *userdata,
                       sd_bus_message **reply) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

        return helper_call_until(handle, c, shown, member, build, userdata, c->pam_timeout * USEC_PER_SEC, &error,
                                 reply);
}

struct access_params {
        const char *user, *service, *rhost, *tty;
};

static int build_access(sd_bus_message *m, void *userdata) {
        struct access_params *p = userdata;
        return sd_bus_message_append(m, "ssss", p->user, p->service, p->rhost, p->tty);
}

_public_ int pam_sm_acct_mgmt(pam_handle_t *handle, int flags, int argc, const char **argv) {
        _cleanup_(config_freep) struct lb_config *c = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(freep) char *shown = NULL;
        struct module_args args;
        struct access_params p = {};
        const char *reason = NULL, *request_id = NULL;
        int64_t expires_at = 0;
        int admitted = 0, verdict = PAM_PERM_DENIED, r;

        (void) flags;
        if (!prepare(handle, argc, argv, &args, &c, &p.user, &shown, &verdict))
                return verdict;

        p.service = pam_item_string(handle, PAM_SERVICE);
        p.rhost = pam_item_string(handle, PAM_RHOST);
        p.tty = pam_item_string(handle, PAM_TTY);
        r = helper_call(handle, c, shown, "AccessCheck", build_access, &p, &reply);
        if (r < 0) {
                (void) pam_error(handle, "lockbox: access refused: the lockbox helper could not confirm a grant");
                return PAM_PERM_DENIED;
        }
        r = sd_bus_message_read(reply, "bssx", &admitted, &reason, &request_id, &expires_at);
        if (r < 0)
                return log_result(handle, LOG_ERR, PAM_PERM_DENIED, "refusing %s: malformed reply from lockboxd",
                                  shown);
        if (admitted != 1) {
                _cleanup_(freep) char *why = text_escape(reason);

                pam_syslog(handle, LOG_NOTICE, "refusing operator %s: %s", shown, strempty(why));
                if (isempty(c->request_hint))
                        (void) pam_error(handle, "lockbox: access refused (%s); file a request with: "
                                         "lockbox request --ticket SR --reason TEXT", strempty(why));
                else
                        (void) pam_error(handle, "lockbox: access refused (%s); file a request on %s with: "
                                         "lockbox request --ticket SR --reason TEXT", strempty(why), c->request_hint);
                return PAM_PERM_DENIED;
        }
        if (args.debug)
                pam_syslog(handle, LOG_DEBUG, "admitting operator %s under request %s", shown, request_id);
        return PAM_SUCCESS;
}

struct session_params {
        struct access_params a;
        uint32_t pid;
        const char *logind_session;
        bool open;
};

static int build_session(sd_bus_message *m, void *userdata) {
        struct session_params *p = userdata;

        if (p->open)
                return sd_bus_message_append(m, "ssssus", p->a.user, p->a.service, p->a.rhost, p->a.tty,
                                             p->pid, p->logind_session);
        return sd_bus_message_append(m, "ssssu", p->a.user, p->a.service, p->a.rhost, p->a.tty, p->pid);
}

/* The one line an operator sees at session open (SPEC §5): the grant, its approver, its end. */
static void show_grant(pam_handle_t *handle, sd_bus_message *reply) {
        const char *request_id = NULL, *approver = NULL;
        _cleanup_(freep) char *shown_id = NULL, *shown_approver = NULL;
        int64_t expires_at = 0;
        char until[TIMESTAMP_BUF];

        if (sd_bus_message_read(reply, "ssx", &request_id, &approver, &expires_at) < 0 || isempty(request_id))
                return;
        shown_id = text_escape(request_id);
        shown_approver = text_escape(approver);
        (void) pam_info(handle, "lockbox: access under request %s, approved by %s, until %s", strempty(shown_id),
                        isempty(shown_approver) ? "(unknown)" : shown_approver, timestamp_format(expires_at, until));
}

static int session_hook(pam_handle_t *handle, int flags, int argc, const char **argv, bool open) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(config_freep) struct lb_config *c = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(freep) char *logind_session = NULL, *shown = NULL;
        struct module_args args;
        struct session_params p = { .open = open };
        int verdict = PAM_SESSION_ERR, r;

        if (!prepare(handle, argc, argv, &args, &c, &p.a.user, &shown, &verdict))
                return verdict == PAM_IGNORE ? PAM_IGNORE : PAM_SESSION_ERR;

        p.a.service = pam_item_string(handle, PAM_SERVICE);
        p.a.rhost = pam_item_string(handle, PAM_RHOST);
        p.a.tty = pam_item_string(handle, PAM_TTY);
        p.pid = (uint32_t) getpid();
        if (sd_pid_get_session(0, &logind_session) < 0)
                logind_session = NULL;
        p.logind_session = strempty(logind_session);

        r = helper_call_until(handle, c, shown, open ? "SessionOpen" : "SessionClose", build_session, &p,
                              c->pam_timeout * USEC_PER_SEC, &error, &reply);
        if (r == -EBADR && open && sd_bus_error_has_name(&error, LB_ERROR_REFUSED)) {
                /* lockboxd's own reason (no grant, its commands cannot be recorded, ...) */
                _cleanup_(freep) char *why = text_escape(error.message);

                (void) pam_error(handle, "lockbox: session refused: %s", strempty(why));
                return PAM_SESSION_ERR;
        }
        if (r < 0) {
                if (open)
                        (void) pam_error(handle, "lockbox: session refused: no active grant could be confirmed");
                return PAM_SESSION_ERR;
        }
        if (open && !(flags & PAM_SILENT))
                show_grant(handle, reply);
        return PAM_SUCCESS;
}

_public_ int pam_sm_open_session(pam_handle_t *handle, int flags, int argc, const char **argv) {
        return session_hook(handle, flags, argc, argv, true);
}

_public_ int pam_sm_close_session(pam_handle_t *handle, int flags, int argc, const char **argv) {
        return session_hook(handle, flags, argc, argv, false);
}

/* ---- auth stage: asking at the login prompt (SPEC §5) ------------------------------------ */

/* sshd's methods that establish who the user is, as SSH_AUTH_INFO_0 names them. */
static const char *const proving_methods[] = { "publickey", "password", "hostbased", "gssapi-with-mic", NULL };

/* Has an earlier sshd method or PAM module authenticated the user in this transaction? sshd
 * puts the methods that succeeded so far, one line each, in SSH_AUTH_INFO_0 right before it
 * runs the stack (publickey,keyboard-interactive:pam); pam_unix leaves its verdict as the
 * data "unix_setcred_return" (pam_unix, then pam_lockbox, in one stack). *how says which. */
static bool authenticated_earlier(pam_handle_t *handle, const char **how) {
        const char *info = pam_getenv(handle, "SSH_AUTH_INFO_0");
        const void *unix_verdict = NULL;

        for (const char *line = info; line && *line;) {
                size_t len = strcspn(line, "\n"), word = strcspn(line, " \n");

                for (size_t i = 0; proving_methods[i]; i++)
                        if (word == strlen(proving_methods[i]) && strncmp(line, proving_methods[i], word) == 0) {
                                *how = proving_methods[i];
                                return true;
                        }
                line += len + (line[len] == '\n');
        }
        if (pam_get_data(handle, "unix_setcred_return", &unix_verdict) == PAM_SUCCESS && unix_verdict &&
            *(const int *) unix_verdict == PAM_SUCCESS) {
                *how = "pam_unix";
                return true;
        }
        return false;
}

/* Does the application let us ask? A conversation function, and not PAM_SILENT. */
static bool may_converse(pam_handle_t *handle, int flags) {
        const void *item = NULL;
        const struct pam_conv *conv;

        if (flags & PAM_SILENT)
                return false;
        if (pam_get_item(handle, PAM_CONV, &item) != PAM_SUCCESS || !item)
                return false;
        conv = item;
        return conv->conv != NULL;
}

/* One question; *ret is the answer (to free) or NULL when none came (no conversation, a
 * failed one, a NULL reply). */
static void ask(pam_handle_t *handle, bool echo, const char *question, char **ret) {
        *ret = NULL;
        if (pam_prompt(handle, echo ? PAM_PROMPT_ECHO_ON : PAM_PROMPT_ECHO_OFF, ret, "%s", question) != PAM_SUCCESS) {
                free(*ret);
                *ret = NULL;
        }
}

static bool answer_is_yes(const char *a) {
        return a && (strcasecmp(a, "y") == 0 || strcasecmp(a, "yes") == 0);
}

#define ASK_TRIES 2     /* bad input gets one more chance */

/* Asks for a text field, validated as `lockbox request` validates it. */
static int ask_text(pam_handle_t *handle, const char *question, enum text_field field, char **ret) {
        size_t max = text_fields[field].max;

        for (int i = 0; i < ASK_TRIES; i++) {
                _cleanup_(freep) char *answer = NULL;
                int r;

                ask(handle, true, question, &answer);
                if (!answer)
                        return PAM_CONV_ERR;
                r = text_validate(answer, max, false);
                if (r == 0) {
                        *ret = answer;
                        answer = NULL;
                        return PAM_SUCCESS;
                }
                (void) pam_error(handle, "lockbox: the %s %s", text_fields[field].name,
                                 r == -E2BIG ? "is too long" : r == -ENODATA ? "must not be empty" :
                                 "must be valid UTF-8 without control characters");
                if (r == -E2BIG)
                        (void) pam_error(handle, "lockbox: at most %zu bytes", max);
        }
        return PAM_AUTH_ERR;
}

/* Asks for the duration: empty means the default; within min_duration..max_duration. */
static int ask_duration(pam_handle_t *handle, const struct lb_config *c, uint64_t *ret) {
        char dbuf[DURATION_BUF], minbuf[DURATION_BUF], maxbuf[DURATION_BUF], question[64];

        (void) snprintf(question, sizeof(question), "Duration [%s]: ", duration_format(c->default_duration, dbuf));
        for (int i = 0; i < ASK_TRIES; i++) {
                _cleanup_(freep) char *answer = NULL;
                uint64_t v = 0;

                ask(handle, true, question, &answer);
                if (!answer)
                        return PAM_CONV_ERR;
                if (isempty(answer)) {
                        *ret = c->default_duration;
                        return PAM_SUCCESS;
                }
                if (duration_parse(answer, &v) == 0 && v >= c->min_duration && v <= c->max_duration) {
                        *ret = v;
                        return PAM_SUCCESS;
                }
                (void) pam_error(handle, "lockbox: give a duration from %s to %s, e.g. 30m or 2h",
                                 duration_format(c->min_duration, minbuf), duration_format(c->max_duration, maxbuf));
        }
        return PAM_AUTH_ERR;
}

/* The line that ends a refusal at the prompt: where requests are filed otherwise. */
static void say_where_to_ask(pam_handle_t *handle, const struct lb_config *c) {
        if (isempty(c->request_hint))
                (void) pam_error(handle, "lockbox: access refused; file a request with: "
                                 "lockbox request --ticket SR --reason TEXT");
        else
                (void) pam_error(handle, "lockbox: access refused; file a request on %s with: "
                                 "lockbox request --ticket SR --reason TEXT", c->request_hint);
}

static const char *waiting_for(const char *state) {
        if (streq(state, "pending-manager"))
                return "awaits a support manager's pre-approval";
        if (streq(state, "pending"))
                return "awaits the customer's approver";
        return NULL;
}

struct login_request_params {
        const char *user, *ticket, *reason, *service, *rhost;
        uint64_t duration;
};

static int build_login_request(sd_bus_message *m, void *userdata) {
        struct login_request_params *p = userdata;
        return sd_bus_message_append(m, "ssstss", p->user, p->ticket, p->reason, p->duration, p->service, p->rhost);
}

static int build_user(sd_bus_message *m, void *userdata) {
        return sd_bus_message_append(m, "s", (const char *) userdata);
}

/* Asks the questions and files the request. PAM_SUCCESS and *ret_id (to free), or the
 * refusal to return (the operator was told why). */
static int file_at_prompt(pam_handle_t *handle, const struct lb_config *c, const char *user, const char *shown,
                          char **ret_id) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(freep) char *answer = NULL, *ticket = NULL, *reason = NULL;
        struct login_request_params p = { .user = user };
        const char *id = NULL;
        int r;

        (void) pam_info(handle, "lockbox: you have no active grant for tenant %s on this host.", c->tenant);
        ask(handle, true, "File an access request now? [y/N]: ", &answer);
        if (!answer_is_yes(answer)) {
                say_where_to_ask(handle, c);
                return PAM_PERM_DENIED;
        }
        if (ask_text(handle, "Service ticket: ", FIELD_TICKET, &ticket) != PAM_SUCCESS ||
            ask_text(handle, "Reason: ", FIELD_REASON, &reason) != PAM_SUCCESS ||
            ask_duration(handle, c, &p.duration) != PAM_SUCCESS) {
                (void) pam_error(handle, "lockbox: no request filed");
                return PAM_PERM_DENIED;
        }
        p.ticket = ticket;
        p.reason = reason;
        p.service = pam_item_string(handle, PAM_SERVICE);
        p.rhost = pam_item_string(handle, PAM_RHOST);
        r = helper_call_until(handle, c, shown, "LoginRequest", build_login_request, &p, c->pam_timeout * USEC_PER_SEC,
                              &error, &reply);
        if (r == -EBADR) {
                _cleanup_(freep) char *why = text_escape(error.message ?: error.name);
                (void) pam_error(handle, "lockbox: no request filed: %s", strempty(why));
                return PAM_PERM_DENIED;
        }
        if (r < 0) {
                /* A late answer may still have filed it (fleet mode writes to the shared store). */
                (void) pam_error(handle, "lockbox: the lockbox helper did not answer; log in again to see whether "
                                 "the request was filed");
                return PAM_PERM_DENIED;
        }
        if (sd_bus_message_read(reply, "s", &id) < 0 || !id_valid(id))
                return log_result(handle, LOG_ERR, PAM_PERM_DENIED, "refusing %s: malformed reply from lockboxd", shown);
        pam_syslog(handle, LOG_NOTICE, "operator %s filed request %s at the login prompt", shown, id);
        *ret_id = strdup(id);
        return *ret_id ? PAM_SUCCESS : PAM_BUF_ERR;
}

static uint64_t monotonic_usec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000u;
}

/* Waits up to prompt_wait for request id (now in state) to be decided: lockboxd answers
 * WaitRequest when it moves on, so the operator hears each step as it happens. */
static int wait_at_prompt(pam_handle_t *handle, const struct lb_config *c, const char *shown, const char *id,
                          const char *state) {
        _cleanup_(freep) char *answer = NULL;
        int last = state_from_string(state);
        uint64_t deadline;
        char wbuf[DURATION_BUF];

        if (c->prompt_wait == 0) {
                (void) pam_error(handle, "lockbox: log in again once request %s is approved", id);
                return PAM_PERM_DENIED;
        }
        /* A question, not only a line: sshd before 10.3 shows our lines only with a question
         * (or at the end), and the operator may rather not wait. */
        (void) pam_info(handle, "lockbox: Ctrl-C stops the wait; the request stays.");
        {
                char question[96];

                (void) snprintf(question, sizeof(question), "Wait up to %s for the decision? [Y/n]: ",
                                duration_format(c->prompt_wait, wbuf));
                ask(handle, true, question, &answer);
        }
        if (!answer || strcasecmp(answer, "n") == 0 || strcasecmp(answer, "no") == 0) {
                (void) pam_error(handle, "lockbox: log in again once request %s is approved", id);
                return PAM_PERM_DENIED;
        }

        deadline = monotonic_usec() + c->prompt_wait * USEC_PER_SEC;
        for (;;) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                _cleanup_(freep) char *approver = NULL, *comment = NULL;
                uint64_t now = monotonic_usec();
                struct client_wait p = { .id = id };
                struct wire_request w;
                int r;

                if (now >= deadline) {
                        (void) pam_error(handle, "lockbox: no decision on request %s within %s; it stays pending: "
                                         "log in again once it is approved", id, duration_format(c->prompt_wait, wbuf));
                        return PAM_PERM_DENIED;
                }
                p.timeout_usec = deadline - now;
                r = helper_call_until(handle, c, shown, "WaitRequest", client_build_wait, &p,
                                      p.timeout_usec + c->pam_timeout * USEC_PER_SEC, &error, &reply);
                if (r < 0) {
                        (void) pam_error(handle, "lockbox: the wait for request %s failed; log in again to see "
                                         "where it stands", id);
                        return PAM_PERM_DENIED;
                }
                if (client_read_request(reply, &w) <= 0 || state_from_string(w.state) < 0 || !streq(w.id, id))
                        return log_result(handle, LOG_ERR, PAM_PERM_DENIED, "refusing %s: malformed reply from lockboxd",
                                          shown);
                if (state_from_string(w.state) == last)
                        continue;
                last = state_from_string(w.state);
                approver = text_escape(w.approver);
                comment = text_escape(w.comment);
                if (waiting_for(w.state))
                        (void) pam_info(handle, "lockbox: request %s %s", id, waiting_for(w.state));
                else if (streq(w.state, "approved")) {
                        /* No line of our own: the session stage's banner names the grant, its
                         * approver and its end (and sshd 9.2 would show ours twice). */
                        pam_syslog(handle, LOG_NOTICE, "operator %s: request %s approved by %s during the login",
                                   shown, id, strempty(approver));
                        return PAM_SUCCESS;
                } else {
                        (void) pam_error(handle, "lockbox: request %s was %s%s%s; access refused", id, w.state,
                                         isempty(comment) ? "" : ": ", strempty(comment));
                        return PAM_PERM_DENIED;
                }
        }
}

_public_ int pam_sm_authenticate(pam_handle_t *handle, int flags, int argc, const char **argv) {
        _cleanup_(config_freep) struct lb_config *c = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(freep) char *shown = NULL, *filed_id = NULL;
        struct module_args args;
        const char *user = NULL, *how = NULL, *id = NULL, *state = NULL;
        int admitted = 0, verdict = PAM_PERM_DENIED, r;

        /* This module only gates: someone else must have proven who the user is. */
        if (!authenticated_earlier(handle, &how)) {
                pam_syslog(handle, LOG_ERR, "no earlier method or module authenticated the user "
                           "(see pam_lockbox(8) for the supported stacks): refusing");
                return PAM_AUTH_ERR;
        }
        if (!prepare(handle, argc, argv, &args, &c, &user, &shown, &verdict))
                return verdict == PAM_IGNORE ? PAM_SUCCESS : verdict;
        if (args.debug)
                pam_syslog(handle, LOG_DEBUG, "%s was authenticated by %s", shown, how);

        r = helper_call(handle, c, shown, "LoginState", build_user, (void *) user, &reply);
        if (r < 0) {
                if (!(flags & PAM_SILENT))
                        (void) pam_error(handle, "lockbox: access refused: the lockbox helper could not confirm a grant");
                return PAM_PERM_DENIED;
        }
        if (sd_bus_message_read(reply, "bss", &admitted, &id, &state) < 0 ||
            (!isempty(id) && (!id_valid(id) || !waiting_for(state))))
                return log_result(handle, LOG_ERR, PAM_PERM_DENIED, "refusing %s: malformed reply from lockboxd", shown);
        if (admitted)
                return PAM_SUCCESS;     /* the account stage admits, and audits it */

        /* Nobody to ask (scp under BatchMode-like clients, PAM_SILENT): refuse as the account
         * stage would, without filing or waiting. */
        if (!may_converse(handle, flags))
                return log_result(handle, LOG_NOTICE, PAM_PERM_DENIED,
                                  "refusing operator %s: no active grant, and no conversation to ask for one", shown);

        if (!isempty(id)) {
                (void) pam_info(handle, "lockbox: your request %s %s.", id, waiting_for(state));
                r = wait_at_prompt(handle, c, shown, id, state);
        } else {
                r = file_at_prompt(handle, c, user, shown, &filed_id);
                if (r == PAM_SUCCESS) {
                        state = c->require_manager_approval ? "pending-manager" : "pending";
                        (void) pam_info(handle, "lockbox: request %s filed; it %s.", filed_id, waiting_for(state));
                        r = wait_at_prompt(handle, c, shown, filed_id, state);
                }
        }
        /* Not PAM_MAXTRIES: sshd would then offer no method at all, and its client falls back
         * to asking for a password that cannot help. A refused keyboard-interactive round is
         * retried by the client (NumberOfPasswordPrompts), each round asking afresh. */
        return r == PAM_SUCCESS ? PAM_SUCCESS : PAM_PERM_DENIED;
}

/* Credentials are the business of the module that authenticated. */
_public_ int pam_sm_setcred(pam_handle_t *handle, int flags, int argc, const char **argv) {
        (void) handle;
        (void) flags;
        (void) argc;
        (void) argv;
        return PAM_SUCCESS;
}
