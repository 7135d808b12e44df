/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The life of requests: filing, looking up, deciding, listing, their audit story, and the
 * time-driven transitions (expiry, grant end) run by the deadline timer. Each change is
 * committed, then audited, and taken back if the entry cannot be written. */

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include "audit.h"
#include "daemon.h"
#include "duration.h"
#include "notify.h"
#include "operation.h"
#include "protocol.h"
#include "requests.h"
#include "sessions.h"
#include "text.h"

#define SETTLE_BATCH 256

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

/* ---- the deadline timer ------------------------------------------------------------ */

static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        (void) s;
        (void) usec;
        (void) daemon_settle(userdata);
        return 0;
}

/* State changes come from this timer, never from a read: so that a read never sees a
 * request whose time has run out in its old state, the timer fires on time (1 µs
 * accuracy) and runs before any call the same loop iteration would dispatch. */
int daemon_deadline_timer_add(struct daemon *d) {
        int r = sd_event_add_time(d->event, &d->deadline_timer, CLOCK_REALTIME, 0, 1, on_deadline, d);

        if (r >= 0)
                r = sd_event_source_set_priority(d->deadline_timer, SD_EVENT_PRIORITY_IMPORTANT);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(d->deadline_timer, SD_EVENT_OFF);
}

int daemon_arm_deadline(struct daemon *d) {
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

        r = daemon_arm_deadline(d);
        if (r < 0)
                fprintf(stderr, "lockboxd: cannot arm the deadline timer: %s\n", strerror(-r));
        return r;
}

/* ---- operations --------------------------------------------------------------------- */

int daemon_create_request(struct daemon *d, const struct lb_caller *who, const char *ip,
                          const char *tenant, const char *ticket, const char *reason,
                          uint64_t duration, struct lb_request *ret, sd_bus_error *error) {
        _cleanup_(freep) char *message = NULL, *esc_ticket = NULL;
        char dbuf[DURATION_BUF], minbuf[DURATION_BUF], maxbuf[DURATION_BUF];
        struct lb_request req = {};
        const char *why = NULL;
        uint64_t open_requests = 0;
        int r;

        r = op_require_role(who, error);
        if (r < 0)
                return r;
        r = op_validate_text(error, FIELD_TICKET, ticket, false);
        if (r < 0)
                return r;
        r = op_validate_text(error, FIELD_REASON, reason, false);
        if (r < 0)
                return r;
        if (isempty(tenant))
                tenant = d->config->tenant;
        r = op_validate_text(error, FIELD_TENANT, tenant, false);
        if (r < 0)
                return r;
        if (duration == 0)
                duration = d->config->default_duration;
        if (duration > DURATION_MAX_SEC)
                return op_fail(error, -ERANGE, LB_ERROR_INVALID, "duration is out of range");

        r = policy_may_request(d->config, who, tenant, duration, &why);
        if (r == -ERANGE)
                return op_fail(error, r, LB_ERROR_REFUSED, "duration %s is outside the allowed range %s to %s",
                            duration_format(duration, dbuf), duration_format(d->config->min_duration, minbuf),
                            duration_format(d->config->max_duration, maxbuf));
        if (r < 0)
                return op_fail(error, r, LB_ERROR_REFUSED, "%s", why);

        r = store_count_pending(d->store, who->name, &open_requests);
        if (r < 0)
                return op_fail_store(error, r, "counting your pending requests");
        if (open_requests >= d->config->max_open_requests)
                return op_fail(error, -EUSERS, LB_ERROR_REFUSED,
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
                return op_fail(error, -ENOMEM, LB_ERROR_FAILED, "out of memory");
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
                return op_fail_store(error, r, "creating the request");
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
                op_take_back(d, op_delete_request, req.id, "the request", req.id);
                request_done(&req);
                return op_fail_audit(error, r);
        }
        (void) daemon_arm_deadline(d);
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

        r = op_require_role(who, error);
        if (r < 0)
                return r;
        if (!id_prefix_valid(id_or_prefix))
                return op_fail(error, -EINVAL, LB_ERROR_INVALID,
                            "invalid request id: give the id or a unique prefix of at least %d characters",
                            ID_PREFIX_MIN);
        r = store_resolve_prefix(d->store, id_or_prefix, only, id);
        if (r == -ENOTUNIQ)
                return op_fail(error, r, LB_ERROR_INVALID, "request id prefix is ambiguous: give more characters");
        if (r == -ENOENT)
                return op_fail(error, r, LB_ERROR_NO_SUCH_REQUEST, "no such request");
        if (r < 0)
                return op_fail_store(error, r, "looking up the request");
        r = store_get(d->store, id, ret);
        if (r == -ENOENT)
                return op_fail(error, r, LB_ERROR_NO_SUCH_REQUEST, "no such request");
        if (r < 0)
                return op_fail_store(error, r, "reading the request");
        if (!policy_may_see(who, ret)) {
                request_done(ret);
                return op_fail(error, -ENOENT, LB_ERROR_NO_SUCH_REQUEST, "no such request");
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
        int64_t now;
        int r;

        r = op_validate_text(error, FIELD_COMMENT, comment, true);
        if (r < 0)
                return r;
        r = daemon_lookup(d, who, id_or_prefix, &req, error);
        if (r < 0)
                return r;

        /* The request as it was, to put back if the decision cannot be audited. */
        r = store_get(d->store, req.id, &before);
        if (r < 0) {
                request_done(&req);
                return op_fail_store(error, r, "reading the request");
        }
        /* Decide on the state as of now, not as of the last timer: a request whose time ran
         * out is decided as expired or ended, and the write below only lands if the row is
         * still in the state it was read in. */
        now = daemon_now();
        req.state = policy_state_at(d->config, &req, now);
        r = policy_decide(d->config, who, action, &req, comment, now, &outcome, &why);
        if (r == -ENOMEM) {
                request_done(&before);
                request_done(&req);
                return op_fail(error, r, LB_ERROR_FAILED, "out of memory");
        }
        if (r < 0) {
                int k = op_fail(error, r, LB_ERROR_REFUSED, "cannot %s request %s: %s (it is %s)",
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
                        k = op_fail(error, r, LB_ERROR_REFUSED, "cannot %s request %s: it was decided or ran out meanwhile",
                                 action_to_string(action), req.id);
                else
                        k = op_fail_store(error, r, "recording the decision");
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
                op_take_back(d, op_restore_request, &(struct restore) { &before, req.state },
                             "the decision on", req.id);
                request_done(&req);
                request_done(&before);
                return op_fail_audit(error, r);
        }
        request_done(&before);
        (void) daemon_arm_deadline(d);
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

        r = op_require_role(who, error);
        if (r < 0)
                return r;
        if (isempty(filter))
                mask = STATE_MASK_PENDING | STATE_BIT(LB_STATE_APPROVED);
        else if (streq(filter, "all"))
                mask = STATE_MASK_ALL;
        else {
                int s = state_from_string(filter);

                if (s < 0)
                        return op_fail(error, -EINVAL, LB_ERROR_INVALID, "unknown state");
                mask = STATE_BIT(s);
        }
        r = store_list(d->store, only, mask, LB_LIST_LIMIT, ret, ret_n);
        if (r < 0)
                return op_fail_store(error, r, "listing requests");
        return 0;
}

int daemon_audit(struct daemon *d, const struct lb_caller *who, const char *id_or_prefix, uint64_t since_usec,
                 struct audit_records *ret, sd_bus_error *error) {
        struct audit_query q = { .since_usec = since_usec };
        struct lb_request req = {};
        int r;

        r = op_require_role(who, error);
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
                return op_fail(error, r, LB_ERROR_FAILED, "cannot read the journal: %s", strerror(-r));
        }
        return 0;
}

int daemon_status(struct daemon *d, const struct lb_caller *who, uint64_t counts[static _LB_STATE_MAX],
                  sd_bus_error *error) {
        int r = op_require_role(who, error);

        if (r < 0)
                return r;
        r = store_count_by_state(d->store, counts);
        if (r < 0)
                return op_fail_store(error, r, "counting requests");
        return 0;
}
