/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* pam_lockbox: admits an operator only while a Customer Lockbox grant of theirs is active,
 * and registers operator sessions with lockboxd. Users in no lockbox role are left alone. */

#include <pwd.h>
#include <stdarg.h>
#include <syslog.h>
#include <security/pam_ext.h>
#include <security/pam_modules.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-login.h>

#include "client.h"
#include "config.h"
#include "request.h"
#include "roles.h"
#include "text.h"
#include "util.h"

#define _public_ __attribute__((visibility("default")))

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

/* Calls member on lockboxd under the configured timeout. On failure logs the cause and
 * returns a negative errno; a D-Bus error's message is logged. shown is the user name
 * as it may be logged (escaped). */
static int helper_call(pam_handle_t *handle, const struct lb_config *c, const char *shown, const char *member,
                       int (*build)(sd_bus_message *m, void *userdata), void *userdata,
                       sd_bus_message **reply) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
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
                r = client_call(bus, m, c->pam_timeout * 1000000u, &error, reply);
        if (r == -EBADR) {
                _cleanup_(freep) char *text = text_escape(error.message ?: error.name);
                pam_syslog(handle, LOG_ERR, "lockboxd refused %s for %s: %s", member, shown, strempty(text));
        } else if (r < 0) {
                errno = -r;
                pam_syslog(handle, LOG_ERR, "cannot ask lockboxd (%s) about %s: %m", c->socket, shown);
        }
        return r;
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

        r = helper_call(handle, c, shown, open ? "SessionOpen" : "SessionClose", build_session, &p, &reply);
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
