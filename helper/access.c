/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Who gets in: the access decision for the module's account stage and `lockbox check`,
 * and operator sessions opening (held, registered, audited) and closing. */

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include "access.h"
#include "execaudit.h"
#include "audit.h"
#include "daemon.h"
#include "operation.h"
#include "protocol.h"
#include "roles.h"
#include "sessions.h"
#include "store-postgresql.h"
#include "text.h"
#include "warnings.h"

static int op_forget_session(struct store *s, const void *id) {
        return store_session_remove(s, *(const int64_t *) id);
}

/* What the module sends about a login: the PAM user, service, remote host and tty. */
static int validate_pam_items(sd_bus_error *error, const char *user, const char *service, const char *rhost,
                              const char *tty) {
        int r;

        if ((r = op_validate_text(error, FIELD_USER, user, false)) < 0 ||
            (r = op_validate_text(error, FIELD_SERVICE, service, true)) < 0 ||
            (r = op_validate_text(error, FIELD_RHOST, rhost, true)) < 0 ||
            (r = op_validate_text(error, FIELD_TTY, tty, true)) < 0)
                return r;
        return 0;
}

bool daemon_view_current(struct daemon *d, const char **why) {
        return !d->shared || pgstore_view_current(d->shared, why);
}

int daemon_access(struct daemon *d, const char *user, const char *service, const char *rhost,
                  const char *tty, enum access_purpose purpose, struct access_answer *ret, sd_bus_error *error) {
        _cleanup_(freep) char *message = NULL, *esc_service = NULL;
        struct access_answer a = {};
        char until[TIMESTAMP_BUF];
        int r;

        r = validate_pam_items(error, user, service, rhost, tty);
        if (r < 0)
                return r;
        r = user_is_operator(d->config, user);
        if (r == -ENOENT)
                return op_fail(error, r, LB_ERROR_INVALID, "no such user");
        if (r == -ENXIO)
                return op_fail(error, r, LB_ERROR_FAILED, "the operators group %s does not exist",
                            d->config->group_operators);
        if (r < 0)
                return op_fail(error, r, LB_ERROR_FAILED, "cannot read the groups of the user: %s", strerror(-r));

        if (r == 0 && purpose == ACCESS_QUERY) {
                /* `lockbox check`: the module ignores such users. */
                *ret = (struct access_answer) { .admitted = true, .reason = "not an operator: the lockbox does not apply" };
                return 0;
        }
        if (r == 0) {
                /* The module asks only about operators. If we disagree (its config=PATH names
                 * another group than ours), refuse rather than admit on our say-so. */
                a.admitted = false;
                a.reason = "lockboxd does not see this user as an operator: the module's and lockboxd's configs disagree";
        } else if (!d->config->enabled) {
                a.admitted = true;
                a.reason = "the lockbox is disabled on this host";
        } else if (!daemon_view_current(d, &a.reason)) {
                /* Fleet mode: a view that may have missed a revocation admits nobody. */
                a.admitted = false;
        } else {
                /* No settling here: the lookup compares expires_at with the clock itself,
                 * and the deadline timer does the state changes. */
                r = store_active_grant(d->store, user, d->config->tenant, daemon_now(), &a.grant);
                if (r >= 0) {
                        a.admitted = true;
                        a.reason = "an approved request grants access";
                } else if (r == -ENOENT) {
                        struct lb_request *pending = NULL;
                        size_t n = 0;

                        a.admitted = false;
                        a.reason = "no approved request grants access now";
                        if (store_list(d->store, user, STATE_MASK_PENDING, 1, &pending, &n) >= 0 && n > 0)
                                a.reason = "your request is still awaiting approval";
                        request_array_free(pending, n);
                } else
                        return op_fail_store(error, r, "looking up grants");
        }

        if (purpose == ACCESS_LOGIN) {
                esc_service = text_escape(service);
                if (asprintf(&message, "Operator %s %s via %s from %s: %s%s%s", user,
                             a.admitted ? "admitted" : "refused", strempty(esc_service),
                             isempty(rhost) ? "local" : rhost, a.reason,
                             a.grant.expires_at > 0 ? " until " : "",
                             a.grant.expires_at > 0 ? timestamp_format(a.grant.expires_at, until) : "") < 0)
                        message = NULL;
                r = audit_write(&(struct audit_entry) {
                        .event = a.admitted ? "access-granted" : "access-denied",
                        .priority = a.admitted ? LOG_NOTICE : LOG_WARNING,
                        .request = a.grant.id[0] ? &a.grant : NULL,
                        .activity = a.admitted ? "AccessGranted" : "AccessDenied",
                        .user = d->config->operator_display_name,
                        .operator_account = user,
                        .ip = rhost,
                        .tenant = d->config->tenant,
                        .message = message,
                });
                if (r < 0) {
                        request_done(&a.grant);
                        return op_fail_audit(error, r);
                }
        }
        *ret = a;
        return 0;
}

int daemon_check_user(struct daemon *d, const struct lb_caller *who, const char *user, struct access_answer *ret,
                      sd_bus_error *error) {
        if (!policy_may_check_others(who))
                return op_fail(error, -EPERM, LB_ERROR_REFUSED, "only admins may check another user's access");
        return daemon_access(d, user, "", "", "", ACCESS_QUERY, ret, error);
}

/* ---- operator sessions ---------------------------------------------------------------------- */

/* An operator session that may not open, audited as access-denied with the reason. */
static int refuse_session(struct daemon *d, const char *user, const char *rhost, const char *why,
                          sd_bus_error *error) {
        _cleanup_(freep) char *message = NULL;

        if (asprintf(&message, "Operator %s: session refused: %s", user, why) < 0)
                message = NULL;
        (void) audit_write(&(struct audit_entry) {
                .event = "access-denied",
                .priority = LOG_WARNING,
                .activity = "AccessDenied",
                .user = d->config->operator_display_name,
                .operator_account = user,
                .ip = rhost,
                .tenant = d->config->tenant,
                .message = message ?: "Operator session refused",
        });
        return op_fail(error, -EPERM, LB_ERROR_REFUSED, "%s", why);
}

/* The audit entry of an operator session opening or closing, under grant (none if its id is
 * empty: a disabled lockbox, or a session that was not registered). */
static int audit_session(struct daemon *d, const char *event, const char *activity, const struct lb_request *grant,
                         const char *user, const char *rhost, uint32_t pid, const char *message) {
        char session_ref[32];

        snprintf(session_ref, sizeof(session_ref), "%" PRIu32, pid);
        return audit_write(&(struct audit_entry) {
                .event = event,
                .priority = LOG_NOTICE,
                .request = grant->id[0] ? grant : NULL,
                .activity = activity,
                .user = d->config->operator_display_name,
                .operator_account = user,
                .ip = rhost,
                .tenant = d->config->tenant,
                .extra_name = "LOCKBOX_SESSION_PID",
                .extra_value = session_ref,
                .message = message,
        });
}

int daemon_session_open(struct daemon *d, const char *user, const char *service, const char *rhost,
                        const char *tty, uint32_t pid, const char *logind_session,
                        struct lb_request *ret_grant, sd_bus_error *error) {
        _cleanup_(freep) char *message = NULL, *previous_cgroup = NULL;
        struct access_answer a = {};
        struct lb_session s = {};
        const char *why = NULL;
        bool held = false;
        uid_t uid = 0;
        int r;

        r = op_validate_text(error, FIELD_LOGIND_SESSION, logind_session, true);
        if (r < 0)
                return r;
        if (pid <= 1)
                return op_fail(error, -EINVAL, LB_ERROR_INVALID, "invalid pid");
        r = daemon_access(d, user, service, rhost, tty, ACCESS_SESSION, &a, error);
        if (r < 0)
                return r;
        if (!a.admitted)
                return refuse_session(d, user, rhost, a.reason, error);
        s = (struct lb_session) { .pid = pid, .opened_at = daemon_now() };
        r = session_identify((pid_t) pid, &s.audit_session, &s.start_time);
        if (r < 0) {
                r = op_fail(error, r, LB_ERROR_INVALID, "no such process %" PRIu32, pid);
                goto out;
        }
        strcpy(s.request_id, a.grant.id);
        s.user = strdup(user);
        s.service = strdup(service);
        s.tty = strdup(tty);
        s.rhost = strdup(rhost);
        if (!s.user || !s.service || !s.tty || !s.rhost) {
                r = op_fail(error, -ENOMEM, LB_ERROR_FAILED, "out of memory");
                goto out;
        }
        /* Held before the answer, so everything the session starts is born inside. The
         * logind session the module names is not taken on its word: session_hold() asks
         * logind about the pid itself. */
        r = user_uid_of_name(user, &uid);
        if (r >= 0)
                r = session_hold(d->sessions, &s, uid, &previous_cgroup, &why);
        else
                why = "the operator's account cannot be looked up";
        /* Every program of the session on record from its first (SPEC §8 operator-exec); with
         * the lockbox disabled as far as the kernel allows, without refusing anyone. */
        if (r >= 0 && d->config->record_commands) {
                const char *unrecorded = NULL;
                int k = execaudit_watch(d->execaudit, uid, &unrecorded);

                if (k < 0 && d->config->enabled) {
                        session_unhold(d->sessions, &s, previous_cgroup);
                        r = k;
                        why = unrecorded;
                }
        }
        if (r < 0) {
                r = refuse_session(d, user, rhost, why, error);
                goto out;
        }
        held = true;

        r = store_begin(d->store);
        if (r >= 0)
                r = store_session_add(d->store, &s);
        if (r >= 0)
                r = store_commit(d->store);
        if (r < 0) {
                (void) store_rollback(d->store);
                r = op_fail_store(error, r, "registering the session");
                goto out;
        }
        if (asprintf(&message, "Operator %s opened a session (pid %" PRIu32 ") from %s under %s", user, pid,
                     isempty(rhost) ? "local" : rhost, a.grant.id[0] ? a.grant.id : "a disabled lockbox") < 0)
                message = NULL;
        r = audit_session(d, "session-open", "SessionOpen", &a.grant, user, rhost, pid, message);
        if (r < 0) {
                op_take_back(d, op_forget_session, &s.id, "the session of", user);
                r = op_fail_audit(error, r);
                goto out;
        }
        *ret_grant = a.grant;
        a.grant = (struct lb_request) {};
        warnings_arm(d);
        r = 0;
out:
        if (r < 0 && held)
                session_unhold(d->sessions, &s, previous_cgroup);
        session_done(&s);
        request_done(&a.grant);
        return r;
}

int daemon_session_close(struct daemon *d, const char *user, const char *service, const char *rhost,
                         const char *tty, uint32_t pid, sd_bus_error *error) {
        _cleanup_(freep) char *message = NULL;
        struct lb_request req = {};
        struct lb_session s = {};
        bool found;
        int r;

        r = validate_pam_items(error, user, service, rhost, tty);
        if (r < 0)
                return r;
        /* The registration stays: logging out must not take what the session left behind
         * out of the grant's reach. It is forgotten when the kernel says its cgroup is
         * empty (sessions_enforce), under the same id a termination may be keyed by. */
        r = store_session_find(d->store, user, pid, &s);
        if (r < 0 && r != -ENOENT)
                return op_fail_store(error, r, "closing the session");
        found = r >= 0;
        if (found && s.request_id[0])
                (void) store_get(d->store, s.request_id, &req);

        /* The session has ended whatever happens to its audit entry; a failure is reported. */
        if (asprintf(&message, "Operator %s closed a session (pid %" PRIu32 ")%s", user, pid,
                     found ? "" : " that was not registered") < 0)
                message = NULL;
        r = audit_session(d, "session-close", "SessionClose", &req, user, rhost, pid, message);
        if (r < 0) {
                fprintf(stderr, "lockboxd: cannot write audit entry: %s\n", strerror(-r));
                r = op_fail(error, r, LB_ERROR_FAILED, "cannot write the audit entry of the session's end (%s)",
                         strerror(-r));
        }
        session_done(&s);
        request_done(&req);
        return r;
}
