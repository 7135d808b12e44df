/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* lockboxd's core: store ownership, the clock, time-driven transitions and the operations
 * the bus methods perform, each audited before it is committed. */

#include <fcntl.h>
#include <pwd.h>
#include <inttypes.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <systemd/sd-daemon.h>

#include "audit.h"
#include "bus.h"
#include "daemon.h"
#include "duration.h"
#include "protocol.h"
#include "roles.h"
#include "notify.h"
#include "sessions.h"
#include "text.h"
#include "util.h"

#define SETTLE_BATCH 256

int64_t daemon_now(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec;
}

_printf_(4, 5)
static int fail(sd_bus_error *error, int r, const char *name, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        sd_bus_error_setfv(error, name, fmt, ap);
        va_end(ap);
        return r < 0 ? r : -EINVAL;
}

static int fail_store(sd_bus_error *error, int r, const char *what) {
        fprintf(stderr, "lockboxd: store: %s: %s\n", what, strerror(-r));
        return fail(error, r, LB_ERROR_FAILED, "store error while %s: %s", what, strerror(-r));
}

static int fail_audit(sd_bus_error *error, int r) {
        fprintf(stderr, "lockboxd: cannot write audit entry: %s\n", strerror(-r));
        return fail(error, r, LB_ERROR_FAILED, "cannot write the audit entry (%s): the change was not kept",
                    strerror(-r));
}

/* A change is committed first and audited after, so that the journal never reports what
 * the store did not keep. When the audit fails, the change is taken back (in its own
 * transaction) and the caller refused: no audit, no change. */
static void undo(struct daemon *d, int undo_result, const char *what, const char *id) {
        (void) d;
        if (undo_result < 0)
                fprintf(stderr, "lockboxd: CRITICAL: cannot take back %s %s after its audit failed: %s\n",
                        what, id, strerror(-undo_result));
}

static int op_delete_request(struct store *s, const void *id) {
        return store_delete(s, id);
}

/* A decision to take back: the row goes back to before, if it is still in the state
 * the decision gave it. */
struct restore {
        const struct lb_request *before;
        enum lb_state decided;
};

static int op_restore_request(struct store *s, const void *arg) {
        const struct restore *x = arg;

        return store_transition(s, x->before, x->decided);
}

static int op_forget_session(struct store *s, const void *id) {
        return store_session_remove(s, *(const int64_t *) id);
}

static int undo_in_transaction(struct daemon *d, int (*op)(struct store *s, const void *arg), const void *arg) {
        int r = store_begin(d->store);

        if (r >= 0)
                r = op(d->store, arg);
        if (r >= 0)
                r = store_commit(d->store);
        if (r < 0)
                (void) store_rollback(d->store);
        return r;
}

/* ---- the deadline timer ------------------------------------------------------------ */

static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        (void) s;
        (void) usec;
        (void) daemon_settle(userdata);
        return 0;
}

static int daemon_arm_timer(struct daemon *d) {
        int64_t next;
        int r;

        r = store_next_deadline(d->store, d->config->request_timeout, &next);
        if (r == -ENOENT)
                return sd_event_source_set_enabled(d->deadline_timer, SD_EVENT_OFF);
        if (r < 0)
                return r;
        if (next < 0)
                next = 0;
        r = sd_event_source_set_time(d->deadline_timer, (uint64_t) next * 1000000u);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(d->deadline_timer, SD_EVENT_ONESHOT);
}

static void audit_time_event(struct daemon *d, const struct lb_request *r) {
        _cleanup_(freep) char *message = NULL, *requester = text_escape(r->requester);
        bool expired = r->state == LB_STATE_EXPIRED;
        int k;

        if (asprintf(&message, expired ? "Request %s by %s expired undecided"
                                       : "Access granted by request %s to %s ended",
                     r->id, strempty(requester)) < 0)
                message = NULL;
        k = audit_write(&(struct audit_entry) {
                .event = expired ? "expired" : "ended",
                .priority = LOG_NOTICE,
                .request = r,
                .operator_account = r->requester,
                .message = message,
        });
        if (k < 0)
                fprintf(stderr, "lockboxd: cannot audit %s of request %s: %s\n",
                        expired ? "expiry" : "end", r->id, strerror(-k));
        notify_event(d, expired ? "expired" : "ended", r, NULL);
}

int daemon_settle(struct daemon *d) {
        bool ended_something = false;
        int r;

        for (;;) {
                struct lb_request *due = NULL;
                size_t n = 0, changed = 0;
                int64_t now = daemon_now();

                r = store_due(d->store, now - (int64_t) d->config->request_timeout, now, SETTLE_BATCH, &due, &n);
                if (r < 0) {
                        fprintf(stderr, "lockboxd: cannot read due requests: %s\n", strerror(-r));
                        break;
                }
                if (n == 0)
                        break;

                /* Time is not a decision that can be refused: the state changes
                 * even if its audit entry cannot be written (that is logged). */
                r = store_begin(d->store);
                for (size_t i = 0; r >= 0 && i < n; i++) {
                        int next = policy_due(d->config, &due[i], now);
                        enum lb_state was = due[i].state;

                        if (next < 0)
                                continue;
                        due[i].state = (enum lb_state) next;
                        r = store_transition(d->store, &due[i], was);
                        if (r == -ESTALE || r == -ENOENT) {
                                /* Settled or decided by someone else meanwhile: theirs to audit. */
                                due[i].state = was;
                                r = 0;
                        } else if (r >= 0)
                                changed++;
                }
                if (r >= 0)
                        r = store_commit(d->store);
                else
                        (void) store_rollback(d->store);
                if (r < 0) {
                        fprintf(stderr, "lockboxd: cannot settle due requests: %s\n", strerror(-r));
                        request_array_free(due, n);
                        break;
                }
                for (size_t i = 0; i < n; i++)
                        if (due[i].state == LB_STATE_EXPIRED || due[i].state == LB_STATE_ENDED)
                                audit_time_event(d, &due[i]);
                request_array_free(due, n);
                if (changed == 0)
                        break;
                ended_something = true;
        }
        /* A grant that ended takes its live sessions with it. */
        if (ended_something)
                (void) sessions_enforce(d);

        r = daemon_arm_timer(d);
        if (r < 0)
                fprintf(stderr, "lockboxd: cannot arm the deadline timer: %s\n", strerror(-r));
        return r;
}

/* ---- operations --------------------------------------------------------------------- */

static int validate_text(sd_bus_error *error, const char *field, const char *value, size_t max, bool allow_empty) {
        int r = text_validate(value, max, allow_empty);

        switch (r) {
        case 0:
                return 0;
        case -E2BIG:
                return fail(error, r, LB_ERROR_INVALID, "%s is longer than %zu bytes", field, max);
        case -ENODATA:
                return fail(error, r, LB_ERROR_INVALID, "%s must not be empty", field);
        default:
                return fail(error, r, LB_ERROR_INVALID,
                            "%s must be valid UTF-8 without control characters", field);
        }
}

static int require_role(const struct lb_caller *who, sd_bus_error *error) {
        if (who->roles == 0)
                return fail(error, -EPERM, LB_ERROR_REFUSED, "you have no lockbox role");
        return 0;
}

int daemon_create_request(struct daemon *d, const struct lb_caller *who, const char *ip,
                          const char *tenant, const char *ticket, const char *reason,
                          uint64_t duration, struct lb_request *ret, sd_bus_error *error) {
        _cleanup_(freep) char *message = NULL, *esc_ticket = NULL;
        char dbuf[DURATION_BUF], minbuf[DURATION_BUF], maxbuf[DURATION_BUF];
        struct lb_request req = {};
        const char *why = NULL;
        uint64_t open_requests = 0;
        int r;

        r = require_role(who, error);
        if (r < 0)
                return r;
        r = validate_text(error, "ticket", ticket, TEXT_TICKET_MAX, false);
        if (r < 0)
                return r;
        r = validate_text(error, "reason", reason, TEXT_REASON_MAX, false);
        if (r < 0)
                return r;
        if (isempty(tenant))
                tenant = d->config->tenant;
        r = validate_text(error, "tenant", tenant, 64, false);
        if (r < 0)
                return r;
        if (duration == 0)
                duration = d->config->default_duration;
        if (duration > DURATION_MAX_SEC)
                return fail(error, -ERANGE, LB_ERROR_INVALID, "duration is out of range");

        r = policy_may_request(d->config, who, tenant, duration, &why);
        if (r == -ERANGE)
                return fail(error, r, LB_ERROR_REFUSED, "duration %s is outside the allowed range %s to %s",
                            duration_format(duration, dbuf), duration_format(d->config->min_duration, minbuf),
                            duration_format(d->config->max_duration, maxbuf));
        if (r < 0)
                return fail(error, r, LB_ERROR_REFUSED, "%s", why);

        r = store_count_pending(d->store, who->name, &open_requests);
        if (r < 0)
                return fail_store(error, r, "counting your pending requests");
        if (open_requests >= d->config->max_open_requests)
                return fail(error, -EUSERS, LB_ERROR_REFUSED,
                            "you have %" PRIu64 " requests pending, the most max_open_requests allows; "
                            "cancel one or wait for a decision", open_requests);

        req = (struct lb_request) {
                .requester_uid = who->uid,
                .duration = duration,
                .state = d->config->require_manager_approval ? LB_STATE_PENDING_MANAGER : LB_STATE_PENDING,
                .created_at = daemon_now(),
        };
        req.tenant = strdup(tenant);
        req.requester = strdup(who->name);
        req.ticket = strdup(ticket);
        req.reason = strdup(reason);
        if (!req.tenant || !req.requester || !req.ticket || !req.reason) {
                request_done(&req);
                return fail(error, -ENOMEM, LB_ERROR_FAILED, "out of memory");
        }

        for (int attempt = 0;; attempt++) {
                r = id_generate(req.id);
                if (r < 0)
                        break;
                r = store_begin(d->store);
                if (r < 0)
                        break;
                r = store_insert(d->store, &req);
                if (r != -EEXIST || attempt >= 3)
                        break;
                (void) store_rollback(d->store);
        }
        if (r >= 0)
                r = store_commit(d->store);
        if (r < 0) {
                (void) store_rollback(d->store);
                request_done(&req);
                return fail_store(error, r, "creating the request");
        }

        esc_ticket = text_escape(req.ticket);
        if (asprintf(&message, "Request %s filed by %s for tenant %s, ticket %s, for %s",
                     req.id, who->name, req.tenant, strempty(esc_ticket),
                     duration_format(req.duration, dbuf)) < 0)
                message = NULL;
        r = audit_write(&(struct audit_entry) {
                .event = "request-created",
                .priority = LOG_NOTICE,
                .request = &req,
                .user = d->config->operator_display_name,
                .operator_account = req.requester,
                .ip = ip,
                .message = message,
        });
        if (r < 0) {
                undo(d, undo_in_transaction(d, op_delete_request, req.id), "the request", req.id);
                request_done(&req);
                return fail_audit(error, r);
        }
        (void) daemon_arm_timer(d);
        notify_event(d, "request-created", &req, NULL);
        *ret = req;
        return 0;
}

int daemon_lookup(struct daemon *d, const struct lb_caller *who, const char *id_or_prefix,
                  struct lb_request *ret, sd_bus_error *error) {
        char id[ID_LEN + 1];
        /* Operators only ever match their own requests, so a prefix does not
         * reveal that someone else's request exists. */
        const char *only = policy_sees_all(who) ? NULL : who->name;
        int r;

        r = require_role(who, error);
        if (r < 0)
                return r;
        if (!id_prefix_valid(id_or_prefix))
                return fail(error, -EINVAL, LB_ERROR_INVALID,
                            "invalid request id: give the id or a unique prefix of at least %d characters",
                            ID_PREFIX_MIN);
        r = store_resolve_prefix(d->store, id_or_prefix, only, id);
        if (r == -ENOTUNIQ)
                return fail(error, r, LB_ERROR_INVALID, "request id prefix is ambiguous: give more characters");
        if (r == -ENOENT)
                return fail(error, r, LB_ERROR_NO_SUCH_REQUEST, "no such request");
        if (r < 0)
                return fail_store(error, r, "looking up the request");
        r = store_get(d->store, id, ret);
        if (r == -ENOENT)
                return fail(error, r, LB_ERROR_NO_SUCH_REQUEST, "no such request");
        if (r < 0)
                return fail_store(error, r, "reading the request");
        if (!policy_may_see(who, ret)) {
                request_done(ret);
                return fail(error, -ENOENT, LB_ERROR_NO_SUCH_REQUEST, "no such request");
        }
        return 0;
}

int daemon_decide(struct daemon *d, const struct lb_caller *who, const char *ip, enum lb_action action,
                  const char *id_or_prefix, const char *comment, struct lb_request *ret,
                  sd_bus_error *error) {
        _cleanup_(freep) char *message = NULL;
        struct policy_outcome outcome = {};
        struct lb_request req = {}, before = {};
        const char *why = NULL;
        char until[TIMESTAMP_BUF];
        bool by_requester;
        int r;

        r = validate_text(error, "comment", comment, TEXT_REASON_MAX, true);
        if (r < 0)
                return r;
        /* Decide on the state as of now, not as of the last timer. */
        (void) daemon_settle(d);
        r = daemon_lookup(d, who, id_or_prefix, &req, error);
        if (r < 0)
                return r;

        /* The request as it was, to put back if the decision cannot be audited. */
        r = store_get(d->store, req.id, &before);
        if (r < 0) {
                request_done(&req);
                return fail_store(error, r, "reading the request");
        }
        r = policy_decide(d->config, who, action, &req, comment, daemon_now(), &outcome, &why);
        if (r == -ENOMEM) {
                request_done(&before);
                request_done(&req);
                return fail(error, r, LB_ERROR_FAILED, "out of memory");
        }
        if (r < 0) {
                int k = fail(error, r, LB_ERROR_REFUSED, "cannot %s request %s: %s (it is %s)",
                             action_to_string(action), req.id, why, state_to_string(req.state));
                request_done(&before);
                request_done(&req);
                return k;
        }

        r = store_begin(d->store);
        if (r >= 0)
                r = store_transition(d->store, &req, before.state);
        if (r >= 0)
                r = store_commit(d->store);
        if (r < 0) {
                int k;

                (void) store_rollback(d->store);
                if (r == -ESTALE || r == -ENOENT)
                        k = fail(error, r, LB_ERROR_REFUSED, "cannot %s request %s: it was decided or ran out meanwhile",
                                 action_to_string(action), req.id);
                else
                        k = fail_store(error, r, "recording the decision");
                request_done(&req);
                request_done(&before);
                return k;
        }

        by_requester = action == ACTION_CANCEL && who->uid == req.requester_uid;
        if (asprintf(&message, "Request %s: %s by %s%s%s", req.id, outcome.event, who->name,
                     req.state == LB_STATE_APPROVED ? ", access until " : "",
                     req.state == LB_STATE_APPROVED ? timestamp_format(req.expires_at, until) : "") < 0)
                message = NULL;
        r = audit_write(&(struct audit_entry) {
                .event = outcome.event,
                .priority = LOG_NOTICE,
                .request = &req,
                .activity = ACTIVITY_DECISION,
                .user = by_requester ? d->config->operator_display_name : who->name,
                .operator_account = req.requester,
                .decision = outcome.decision,
                .item = true,
                .ip = ip,
                .message = message,
        });
        if (r < 0) {
                undo(d, undo_in_transaction(d, op_restore_request, &(struct restore) { &before, req.state }),
                     "the decision on", req.id);
                request_done(&req);
                request_done(&before);
                return fail_audit(error, r);
        }
        request_done(&before);
        (void) daemon_arm_timer(d);
        if (req.state == LB_STATE_REVOKED)
                (void) sessions_enforce(d);
        notify_event(d, outcome.event, &req, who->name);
        *ret = req;
        return 0;
}

int daemon_list(struct daemon *d, const struct lb_caller *who, const char *filter,
                struct lb_request **ret, size_t *ret_n, sd_bus_error *error) {
        const char *only = policy_sees_all(who) ? NULL : who->name;
        unsigned mask;
        int r;

        r = require_role(who, error);
        if (r < 0)
                return r;
        if (isempty(filter))
                mask = STATE_MASK_PENDING | STATE_BIT(LB_STATE_APPROVED);
        else if (streq(filter, "all"))
                mask = STATE_MASK_ALL;
        else {
                int s = state_from_string(filter);

                if (s < 0)
                        return fail(error, -EINVAL, LB_ERROR_INVALID, "unknown state");
                mask = STATE_BIT(s);
        }
        (void) daemon_settle(d);
        r = store_list(d->store, only, mask, LB_LIST_LIMIT, ret, ret_n);
        if (r < 0)
                return fail_store(error, r, "listing requests");
        return 0;
}

int daemon_access(struct daemon *d, const char *user, const char *service, const char *rhost,
                  const char *tty, enum access_purpose purpose, struct access_answer *ret, sd_bus_error *error) {
        _cleanup_(freep) char *message = NULL, *esc_service = NULL;
        struct access_answer a = {};
        char until[TIMESTAMP_BUF];
        int r;

        if ((r = validate_text(error, "user", user, 256, false)) < 0 ||
            (r = validate_text(error, "service", service, 64, true)) < 0 ||
            (r = validate_text(error, "rhost", rhost, 256, true)) < 0 ||
            (r = validate_text(error, "tty", tty, 64, true)) < 0)
                return r;
        r = user_is_operator(d->config, user);
        if (r == -ENOENT)
                return fail(error, r, LB_ERROR_INVALID, "no such user");
        if (r == -ENXIO)
                return fail(error, r, LB_ERROR_FAILED, "the operators group %s does not exist",
                            d->config->group_operators);
        if (r < 0)
                return fail(error, r, LB_ERROR_FAILED, "cannot read the groups of the user: %s", strerror(-r));

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
                        return fail_store(error, r, "looking up grants");
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
                        return fail_audit(error, r);
                }
        }
        *ret = a;
        return 0;
}

/* ---- setup ---------------------------------------------------------------------------- */

/* The store's directory and file must be root's alone: anyone else who could
 * write them could grant themselves access. */
static int check_private_path(const char *path, bool is_dir, bool create) {
        struct stat st;

        if (lstat(path, &st) < 0) {
                if (errno == ENOENT && create && is_dir) {
                        if (mkdir(path, 0700) < 0)
                                return -errno;
                        return check_private_path(path, is_dir, false);
                }
                return errno == ENOENT && !is_dir ? 0 : -errno;
        }
        if (is_dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
                return -EINVAL;
        if (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)))
                return -EPERM;
        return 0;
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
        r = check_private_path(dir, true, true);
        if (r < 0) {
                fprintf(stderr, "lockboxd: %s: database directory must be a directory owned by root and "
                        "not writable by group or others: %s\n", dir, strerror(-r));
                return r;
        }
        r = check_private_path(d->database_path, false, false);
        if (r < 0) {
                fprintf(stderr, "lockboxd: %s: database must be a regular file owned by root and "
                        "not writable by group or others: %s\n", d->database_path, strerror(-r));
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
        if (r >= 0 && (!streq(c->socket, d->config->socket) || !streq(c->database, d->config->database))) {
                snprintf(err, sizeof(err), "%s: socket and database can change only at a restart", d->config_path);
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
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGCHLD);      /* notifiers are watched through sd-event */
        sigprocmask(SIG_BLOCK, &mask, NULL);
        r = sd_event_add_signal(d->event, NULL, SIGTERM, on_signal, d);
        if (r >= 0)
                r = sd_event_add_signal(d->event, NULL, SIGINT, on_signal, d);
        if (r >= 0)
                r = sd_event_add_signal(d->event, NULL, SIGHUP, on_signal, d);
        if (r >= 0)
                r = sd_event_add_time(d->event, &d->deadline_timer, CLOCK_REALTIME, 0, 1000, on_deadline, d);
        if (r >= 0)
                r = sd_event_source_set_enabled(d->deadline_timer, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_time_relative(d->event, &d->sweep_timer, CLOCK_MONOTONIC, SWEEP_USEC,
                                               1000000, on_sweep, d);
        if (r >= 0)
                r = sd_event_source_set_enabled(d->sweep_timer, SD_EVENT_ON);
        if (r >= 0)
                r = sessions_new(d, &d->sessions);
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
        sessions_free(d->sessions);
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
        return fail(error, -EPERM, LB_ERROR_REFUSED, "%s", why);
}

int daemon_session_open(struct daemon *d, const char *user, const char *service, const char *rhost,
                        const char *tty, uint32_t pid, const char *logind_session,
                        char ret_request_id[static ID_LEN + 1], sd_bus_error *error) {
        _cleanup_(freep) char *message = NULL, *previous_cgroup = NULL;
        struct access_answer a = {};
        struct lb_session s = {};
        const char *why = NULL;
        char session_ref[32];
        bool held = false;
        uid_t uid = 0;
        int r;

        r = validate_text(error, "logind session", logind_session, 64, true);
        if (r < 0)
                return r;
        if (pid <= 1)
                return fail(error, -EINVAL, LB_ERROR_INVALID, "invalid pid");
        r = daemon_access(d, user, service, rhost, tty, ACCESS_SESSION, &a, error);
        if (r < 0)
                return r;
        if (!a.admitted)
                return refuse_session(d, user, rhost, a.reason, error);
        s = (struct lb_session) { .pid = pid, .opened_at = daemon_now() };
        r = session_identify((pid_t) pid, &s.audit_session, &s.start_time);
        if (r < 0) {
                r = fail(error, r, LB_ERROR_INVALID, "no such process %" PRIu32, pid);
                goto out;
        }
        strcpy(s.request_id, a.grant.id);
        s.user = strdup(user);
        s.service = strdup(service);
        s.tty = strdup(tty);
        s.rhost = strdup(rhost);
        if (!s.user || !s.service || !s.tty || !s.rhost) {
                r = fail(error, -ENOMEM, LB_ERROR_FAILED, "out of memory");
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
                r = fail_store(error, r, "registering the session");
                goto out;
        }
        snprintf(session_ref, sizeof(session_ref), "%" PRIu32, pid);
        if (asprintf(&message, "Operator %s opened a session (pid %" PRIu32 ") from %s under %s", user, pid,
                     isempty(rhost) ? "local" : rhost, a.grant.id[0] ? a.grant.id : "a disabled lockbox") < 0)
                message = NULL;
        r = audit_write(&(struct audit_entry) {
                .event = "session-open",
                .priority = LOG_NOTICE,
                .request = a.grant.id[0] ? &a.grant : NULL,
                .activity = "SessionOpen",
                .user = d->config->operator_display_name,
                .operator_account = user,
                .ip = rhost,
                .tenant = d->config->tenant,
                .extra_name = "LOCKBOX_SESSION_PID",
                .extra_value = session_ref,
                .message = message,
        });
        if (r < 0) {
                undo(d, undo_in_transaction(d, op_forget_session, &s.id), "the session of", user);
                r = fail_audit(error, r);
                goto out;
        }
        strcpy(ret_request_id, a.grant.id);
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
        char session_ref[32];
        bool found;
        int r;

        if ((r = validate_text(error, "user", user, 256, false)) < 0 ||
            (r = validate_text(error, "service", service, 64, true)) < 0 ||
            (r = validate_text(error, "rhost", rhost, 256, true)) < 0 ||
            (r = validate_text(error, "tty", tty, 64, true)) < 0)
                return r;
        /* The registration stays: logging out must not take what the session left behind
         * out of the grant's reach. It is forgotten when the kernel says its cgroup is
         * empty (sessions_enforce), under the same id a termination may be keyed by. */
        r = store_session_find(d->store, user, pid, &s);
        if (r < 0 && r != -ENOENT)
                return fail_store(error, r, "closing the session");
        found = r >= 0;
        if (found && s.request_id[0])
                (void) store_get(d->store, s.request_id, &req);

        /* The session has ended whatever happens to its audit entry; a failure is reported. */
        snprintf(session_ref, sizeof(session_ref), "%" PRIu32, pid);
        if (asprintf(&message, "Operator %s closed a session (pid %" PRIu32 ")%s", user, pid,
                     found ? "" : " that was not registered") < 0)
                message = NULL;
        r = audit_write(&(struct audit_entry) {
                .event = "session-close",
                .priority = LOG_NOTICE,
                .request = req.id[0] ? &req : NULL,
                .activity = "SessionClose",
                .user = d->config->operator_display_name,
                .operator_account = user,
                .ip = rhost,
                .tenant = d->config->tenant,
                .extra_name = "LOCKBOX_SESSION_PID",
                .extra_value = session_ref,
                .message = message,
        });
        if (r < 0) {
                fprintf(stderr, "lockboxd: cannot write audit entry: %s\n", strerror(-r));
                r = fail(error, r, LB_ERROR_FAILED, "cannot write the audit entry of the session's end (%s)",
                         strerror(-r));
        }
        session_done(&s);
        request_done(&req);
        return r;
}

int daemon_audit(struct daemon *d, const struct lb_caller *who, const char *id_or_prefix, uint64_t since_usec,
                 struct audit_records *ret, sd_bus_error *error) {
        struct audit_query q = { .since_usec = since_usec };
        struct lb_request req = {};
        int r;

        r = require_role(who, error);
        if (r < 0)
                return r;
        if (!isempty(id_or_prefix)) {
                r = daemon_lookup(d, who, id_or_prefix, &req, error);
                if (r < 0)
                        return r;
                q.request_id = req.id;
        } else if (!policy_sees_all(who))
                q.operator_account = who->name;
        r = journal_query(&q, ret);
        request_done(&req);
        if (r < 0) {
                fprintf(stderr, "lockboxd: cannot read the journal: %s\n", strerror(-r));
                return fail(error, r, LB_ERROR_FAILED, "cannot read the journal: %s", strerror(-r));
        }
        return 0;
}
