/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The life of requests: filing, looking up, deciding, listing, their audit story, and the
 * time-driven transitions (expiry, grant end) run by the deadline timer. Each change is
 * committed, then audited, and taken back if the entry cannot be written. */

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "audit.h"
#include "daemon.h"
#include "duration.h"
#include "notify.h"
#include "operation.h"
#include "protocol.h"
#include "requests.h"
#include "sessions.h"
#include "store-postgresql.h"
#include "text.h"
#include "warnings.h"

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

/* ---- writes: at once on the SQLite store, when the shared store answers in fleet mode ---- */

/* A filing or a decision between the checks that allowed it and the audit that ends it. */
struct write {
        struct daemon *d;
        struct lb_request req;          /* as written (the shared store's dates once it answers) */
        struct lb_request before;       /* a decision: the request as it was read */
        enum lb_action action;
        struct policy_outcome outcome;
        char *who_name;
        bool by_requester;
        char *ip;
        char *login_service;            /* a filing at this host's login prompt: its PAM service */
        op_done_t done;
        void *userdata;
};

static void write_free(struct write *w) {
        request_done(&w->req);
        request_done(&w->before);
        free(w->who_name);
        free(w->ip);
        free(w->login_service);
        free(w);
}

/* Ends the operation: the caller hears r (and error, or the request), and w is freed. */
static void write_end(struct write *w, int r, const sd_bus_error *error) {
        if (w->done)
                w->done(r, r >= 0 ? &w->req : NULL, error, w->userdata);
        write_free(w);
}

/* Fleet mode: the shared store lost the answer to w's write. Its caller hears so now; the
 * write ends (audited if it was applied) once the store says whether it was. */
static void write_in_doubt(struct write *w, const char *what) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

        (void) op_fail(&error, -EINPROGRESS, LB_ERROR_FAILED,
                       "%s: the shared store did not answer; whether it was recorded is known once it is reachable "
                       "again (lockbox show, lockbox audit)", what);
        w->done(-EINPROGRESS, NULL, &error, w->userdata);
        w->done = NULL;
}

static void write_fail(struct write *w, int r, const char *name, const char *message) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

        (void) op_fail(&error, r, name, "%s", message);
        write_end(w, r, &error);
}

/* An error of the shared store, for the caller: what happened to the write, in one line. */
static int fail_shared(sd_bus_error *error, int r, const char *what) {
        if (r == -EPERM)
                return op_fail(error, r, LB_ERROR_REFUSED,
                               "%s: this host's role in the shared store may not (decisions are made on a desk host)", what);
        if (r == -EIO || r == -EBUSY)
                return op_fail(error, r, LB_ERROR_FAILED, "%s: the shared store is unreachable; nothing was recorded",
                               what);
        return op_fail_store(error, r, what);
}

/* Shared-store take-backs run on their own; their failure is logged as critical. */
static void on_taken_back(int r, bool applied, const struct lb_request *row, void *userdata) {
        char *id = userdata;

        (void) row;
        if (r == -EINPROGRESS)
                return;         /* called again with the outcome */
        if (r < 0 || !applied)
                fprintf(stderr, "lockboxd: CRITICAL: cannot take back the change to request %s after its audit failed: %s\n",
                        id, r < 0 ? strerror(-r) : "it changed meanwhile");
        free(id);
}

static struct write *write_new(struct daemon *d, const char *who_name, const char *ip, op_done_t done, void *userdata) {
        struct write *w = calloc(1, sizeof(*w));

        if (!w)
                return NULL;
        w->d = d;
        w->done = done;
        w->userdata = userdata;
        w->who_name = strdup(who_name ? who_name : "");
        w->ip = strdup(ip ? ip : "");
        if (!w->who_name || !w->ip) {
                write_free(w);
                return NULL;
        }
        return w;
}

static void waiters_check(struct daemon *d);

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

        /* Whatever moved a deadline may move a warning before it, or answer a waiter. */
        warnings_arm(d);
        waiters_check(d);

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

/* Fleet mode: each due request is settled in the shared store, where of all the hosts that
 * try, one applies it and audits it. A grant that ran out ends its sessions on this host now,
 * whoever records the end. */
struct settle {
        struct daemon *d;
};

static void settle_round_end(struct daemon *d) {
        int64_t next;

        /* Still due after a round (the store was unreachable, or by the database's clock it is
         * not yet time): try again in a second, not at once. */
        if (store_next_deadline(d->store, d->config->request_timeout, &next) >= 0 && next <= daemon_now()) {
                (void) sd_event_source_set_time(d->deadline_timer, (uint64_t) (daemon_now() + 1) * 1000000u);
                (void) sd_event_source_set_enabled(d->deadline_timer, SD_EVENT_ONESHOT);
                return;
        }
        (void) daemon_arm_deadline(d);
}

static void on_settled(int r, bool applied, const struct lb_request *row, void *userdata) {
        struct settle *x = userdata;
        struct daemon *d = x->d;

        if (r == -EINPROGRESS)
                return;         /* called again with the outcome */
        free(x);
        if (r >= 0 && applied && (row->state == LB_STATE_EXPIRED || row->state == LB_STATE_ENDED))
                audit_time_event(d, row);
        if (--d->settles_in_flight == 0)
                settle_round_end(d);
}

static int settle_shared(struct daemon *d) {
        struct lb_request *due = NULL;
        size_t n = 0;
        bool grant_ended = false;
        int64_t now = daemon_now();
        int r;

        if (d->settles_in_flight > 0)
                return 0;       /* the round in flight re-arms the timer when it ends */
        r = store_due(d->store, now - (int64_t) d->config->request_timeout, now, SETTLE_BATCH, &due, &n);
        if (r < 0) {
                fprintf(stderr, "lockboxd: cannot read due requests: %s\n", strerror(-r));
                return r;
        }
        d->settles_in_flight++; /* the round itself, so that no answer ends it early */
        for (size_t i = 0; i < n; i++) {
                struct settle *x;

                if (policy_due(d->config, &due[i], now) < 0)
                        continue;
                if (due[i].state == LB_STATE_APPROVED)
                        grant_ended = true;
                x = calloc(1, sizeof(*x));
                if (!x)
                        break;
                x->d = d;
                d->settles_in_flight++;
                pgstore_settle(d->shared, &due[i], d->config->request_timeout, on_settled, x);
        }
        request_array_free(due, n);
        if (grant_ended)
                (void) sessions_enforce(d);
        if (--d->settles_in_flight == 0)
                settle_round_end(d);
        return 0;
}

int daemon_settle(struct daemon *d) {
        bool ended_something = false;
        int r;

        if (d->shared)
                return settle_shared(d);
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

void daemon_view_changed(struct daemon *d) {
        if (d->settles_in_flight == 0)
                (void) daemon_arm_deadline(d);
        else
                waiters_check(d);
        (void) sessions_enforce(d);
}

/* Not an audit event of its own (SPEC §8 has none): each operator it refuses is audited as
 * access-denied with this reason, each session it ends as session-terminated. */
void daemon_view_stale(struct daemon *d, bool stale, const char *why) {
        if (stale)
                fprintf(stderr, "lockboxd: operators are refused on this host: %s\n", why);
        else
                fprintf(stderr, "lockboxd: this host's view of the shared store is current again\n");
        if (stale)
                (void) sessions_enforce(d);
}

/* ---- operations --------------------------------------------------------------------- */

/* ", at the login prompt of HOST (SERVICE) from ADDRESS": where a login filed w, for the audit. */
static int login_origin(const struct write *w, char **ret) {
        _cleanup_(freep) char *host = NULL, *service = text_escape(w->login_service);
        char name[HOST_NAME_MAX + 1] = "";

        if (gethostname(name, sizeof(name) - 1) < 0 || !name[0])
                strcpy(name, "this host");
        host = text_escape(name);
        if (!host || !service)
                return -ENOMEM;
        if (asprintf(ret, ", at the login prompt of %s (%s)%s%s", host, service, isempty(w->ip) ? "" : " from ",
                     w->ip) < 0)
                return -ENOMEM;
        return 0;
}

static void filed(struct write *w, int r) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(freep) char *message = NULL, *esc_ticket = NULL, *origin = NULL;
        struct daemon *d = w->d;
        char dbuf[DURATION_BUF];

        if (r < 0) {
                r = d->shared ? fail_shared(&error, r, "filing the request") : op_fail_store(&error, r, "creating the request");
                write_end(w, r, &error);
                return;
        }
        esc_ticket = text_escape(w->req.ticket);
        if (w->login_service && login_origin(w, &origin) < 0)
                origin = NULL;
        if (asprintf(&message, "Request %s filed by %s for tenant %s, ticket %s, for %s%s",
                     w->req.id, w->req.requester, w->req.tenant, strempty(esc_ticket),
                     duration_format(w->req.duration, dbuf), strempty(origin)) < 0)
                message = NULL;
        r = audit_write(&(struct audit_entry) {
                .event = "request-created",
                .priority = LOG_NOTICE,
                .request = &w->req,
                .user = d->config->operator_display_name,
                .operator_account = w->req.requester,
                .ip = w->ip,
                .extra_name = w->login_service ? "LOCKBOX_VIA" : NULL,
                .extra_value = w->login_service ? "login-prompt" : NULL,
                .message = message,
        });
        if (r < 0) {
                if (d->shared) {
                        char *id = strdup(w->req.id);

                        if (id)
                                pgstore_withdraw(d->shared, id, on_taken_back, id);
                        else
                                fprintf(stderr, "lockboxd: CRITICAL: cannot take back request %s: out of memory\n", w->req.id);
                } else
                        op_take_back(d, op_delete_request, w->req.id, "the request", w->req.id);
                r = op_fail_audit(&error, r);
                write_end(w, r, &error);
                return;
        }
        (void) daemon_arm_deadline(d);
        notify_event(d, "request-created", &w->req, NULL);
        write_end(w, 0, NULL);
}

static void on_filed_shared(int r, bool applied, const struct lb_request *row, void *userdata) {
        struct write *w = userdata;

        if (r == -EINPROGRESS) {
                write_in_doubt(w, "filing the request");
                return;
        }
        if (r >= 0 && !applied)
                r = -EEXIST;
        if (r >= 0)
                w->req.created_at = row->created_at;    /* the database's clock */
        filed(w, r);
}

void daemon_create_request(struct daemon *d, const struct lb_caller *who, const char *ip, const char *login_service,
                           const char *tenant, const char *ticket, const char *reason,
                           uint64_t duration, op_done_t done, void *userdata) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        char dbuf[DURATION_BUF], minbuf[DURATION_BUF], maxbuf[DURATION_BUF];
        struct write *w;
        const char *why = NULL;
        uint64_t open_requests = 0;
        int r;

        if ((r = op_require_role(who, &error)) < 0 ||
            (r = op_validate_text(&error, FIELD_TICKET, ticket, false)) < 0 ||
            (r = op_validate_text(&error, FIELD_REASON, reason, false)) < 0)
                goto fail;
        if (isempty(tenant))
                tenant = d->config->tenant;
        r = op_validate_text(&error, FIELD_TENANT, tenant, false);
        if (r < 0)
                goto fail;
        if (duration == 0)
                duration = d->config->default_duration;
        if (duration > DURATION_MAX_SEC) {
                r = op_fail(&error, -ERANGE, LB_ERROR_INVALID, "duration is out of range");
                goto fail;
        }

        r = policy_may_request(d->config, who, tenant, duration, &why);
        if (r == -ERANGE)
                r = op_fail(&error, r, LB_ERROR_REFUSED, "duration %s is outside the allowed range %s to %s",
                            duration_format(duration, dbuf), duration_format(d->config->min_duration, minbuf),
                            duration_format(d->config->max_duration, maxbuf));
        else if (r < 0)
                r = op_fail(&error, r, LB_ERROR_REFUSED, "%s", why);
        if (r < 0)
                goto fail;

        r = store_count_pending(d->store, who->name, &open_requests);
        if (r < 0) {
                r = op_fail_store(&error, r, "counting your pending requests");
                goto fail;
        }
        /* At the login prompt one pending request is enough: the prompt shows it instead, and
         * concurrent logins must not file one each. */
        if (login_service && open_requests > 0) {
                r = op_fail(&error, -EEXIST, LB_ERROR_REFUSED, "you already have a request pending; "
                            "log in again to wait for it, or cancel it (lockbox cancel)");
                goto fail;
        }
        if (open_requests >= d->config->max_open_requests) {
                r = op_fail(&error, -EUSERS, LB_ERROR_REFUSED,
                            "you have %" PRIu64 " requests pending, the most max_open_requests allows; "
                            "cancel one or wait for a decision", open_requests);
                goto fail;
        }

        w = write_new(d, who->name, ip, done, userdata);
        if (w && login_service) {
                w->login_service = strdup(login_service);
                if (!w->login_service) {
                        write_free(w);
                        w = NULL;
                }
        }
        if (!w) {
                r = op_fail(&error, -ENOMEM, LB_ERROR_FAILED, "out of memory");
                goto fail;
        }
        w->req = (struct lb_request) {
                .requester_uid = who->uid,
                .duration = duration,
                .state = d->config->require_manager_approval ? LB_STATE_PENDING_MANAGER : LB_STATE_PENDING,
                .created_at = daemon_now(),
        };
        w->req.tenant = strdup(tenant);
        w->req.requester = strdup(who->name);
        w->req.ticket = strdup(ticket);
        w->req.reason = strdup(reason);
        if (!w->req.tenant || !w->req.requester || !w->req.ticket || !w->req.reason) {
                write_fail(w, -ENOMEM, LB_ERROR_FAILED, "out of memory");
                return;
        }

        if (d->shared) {
                r = id_generate(w->req.id);
                if (r < 0) {
                        filed(w, r);
                        return;
                }
                pgstore_file(d->shared, &w->req, on_filed_shared, w);
                return;
        }
        for (int attempt = 0;; attempt++) {
                r = id_generate(w->req.id);
                if (r < 0)
                        break;
                r = store_begin(d->store);
                if (r < 0)
                        break;
                r = store_insert(d->store, &w->req);
                if (r != -EEXIST || attempt >= 3)
                        break;
                (void) store_rollback(d->store);
        }
        if (r >= 0)
                r = store_commit(d->store);
        if (r < 0)
                (void) store_rollback(d->store);
        filed(w, r);
        return;

fail:
        done(r, NULL, &error, userdata);
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

static void decided(struct write *w, int r) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(freep) char *message = NULL;
        struct daemon *d = w->d;
        struct lb_request *req = &w->req;
        char until[TIMESTAMP_BUF];

        if (r < 0) {
                if (r == -ESTALE || r == -ENOENT)
                        r = op_fail(&error, r, LB_ERROR_REFUSED, "cannot %s request %s: it was decided or ran out meanwhile",
                                    w->outcome.event ? action_to_string(w->action) : "decide", req->id);
                else
                        r = d->shared ? fail_shared(&error, r, "recording the decision")
                                      : op_fail_store(&error, r, "recording the decision");
                write_end(w, r, &error);
                return;
        }

        if (w->action == ACTION_DONE) {
                _cleanup_(freep) char *requester = text_escape(req->requester);

                /* The operator's own act, not a decision: like a grant that ran out, with who did it. */
                if (asprintf(&message, "Access granted by request %s to %s ended by the operator", req->id,
                             strempty(requester)) < 0)
                        message = NULL;
        } else if (asprintf(&message, "Request %s: %s by %s%s%s", req->id, w->outcome.event, w->who_name,
                            req->state == LB_STATE_APPROVED ? ", access until " : "",
                            req->state == LB_STATE_APPROVED ? timestamp_format(req->expires_at, until) : "") < 0)
                message = NULL;
        r = audit_write(&(struct audit_entry) {
                .event = w->outcome.event,
                .priority = LOG_NOTICE,
                .request = req,
                .activity = w->action == ACTION_DONE ? NULL : ACTIVITY_DECISION,
                .user = w->by_requester ? d->config->operator_display_name : w->who_name,
                .operator_account = req->requester,
                .decision = w->outcome.decision,
                .item = w->action != ACTION_DONE,
                .ip = w->ip,
                .message = message,
        });
        if (r < 0 && w->action == ACTION_DONE) {
                /* Access ending is not taken back for want of an entry (as at a grant's end by
                 * time): it stays ended, and that it is unaudited is logged. */
                fprintf(stderr, "lockboxd: cannot audit the end of request %s by its operator: %s\n", req->id,
                        strerror(-r));
                r = 0;
        }
        if (r < 0) {
                if (d->shared) {
                        char *id = strdup(req->id);

                        if (id)
                                pgstore_undecide(d->shared, &w->before, req->state, on_taken_back, id);
                        else
                                fprintf(stderr, "lockboxd: CRITICAL: cannot take back the decision on %s: out of memory\n",
                                        req->id);
                } else
                        op_take_back(d, op_restore_request, &(struct restore) { &w->before, req->state },
                                     "the decision on", req->id);
                r = op_fail_audit(&error, r);
                write_end(w, r, &error);
                return;
        }
        (void) daemon_arm_deadline(d);
        if (req->state == LB_STATE_REVOKED || req->state == LB_STATE_ENDED)
                (void) sessions_enforce(d);
        notify_event(d, w->outcome.event, req, w->who_name);
        write_end(w, 0, NULL);
}

static void on_decided_shared(int r, bool applied, const struct lb_request *row, void *userdata) {
        struct write *w = userdata;

        if (r == -EINPROGRESS) {
                write_in_doubt(w, "recording the decision");
                return;
        }
        if (r >= 0 && !applied)
                r = -ESTALE;
        if (r >= 0) {
                /* The database dated it: the request as it has it is the one audited. */
                request_done(&w->req);
                r = request_copy(row, &w->req);
        }
        decided(w, r);
}

void daemon_decide(struct daemon *d, const struct lb_caller *who, const char *ip, enum lb_action action,
                   const char *id_or_prefix, const char *comment, op_done_t done, void *userdata) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        const char *why = NULL;
        struct write *w;
        int64_t now;
        int r;

        r = op_validate_text(&error, FIELD_COMMENT, comment, true);
        if (r < 0) {
                done(r, NULL, &error, userdata);
                return;
        }
        w = write_new(d, who->name, ip, done, userdata);
        if (!w) {
                (void) op_fail(&error, -ENOMEM, LB_ERROR_FAILED, "out of memory");
                done(-ENOMEM, NULL, &error, userdata);
                return;
        }
        w->action = action;
        if (action == ACTION_DONE && isempty(id_or_prefix)) {
                /* `lockbox done` without an id: the caller's own active grant. */
                r = op_require_role(who, &error);
                if (r >= 0) {
                        r = store_active_grant(d->store, who->name, d->config->tenant, daemon_now(), &w->req);
                        if (r == -ENOENT)
                                r = op_fail(&error, r, LB_ERROR_NO_SUCH_REQUEST, "you have no active grant on this host");
                        else if (r < 0)
                                r = op_fail_store(&error, r, "looking up your grant");
                }
        } else
                r = daemon_lookup(d, who, id_or_prefix, &w->req, &error);
        if (r < 0) {
                write_end(w, r, &error);
                return;
        }

        /* The request as it was, to put back if the decision cannot be audited. */
        r = store_get(d->store, w->req.id, &w->before);
        if (r < 0) {
                r = op_fail_store(&error, r, "reading the request");
                write_end(w, r, &error);
                return;
        }
        /* Decide on the state as of now, not as of the last timer: a request whose time ran
         * out is decided as expired or ended, and the write below only lands if the row is
         * still in the state it was read in. */
        now = daemon_now();
        w->req.state = policy_state_at(d->config, &w->req, now);
        r = policy_decide(d->config, who, action, &w->req, comment, now, &w->outcome, &why);
        if (r == -ENOMEM) {
                write_fail(w, r, LB_ERROR_FAILED, "out of memory");
                return;
        }
        if (r < 0) {
                r = op_fail(&error, r, LB_ERROR_REFUSED, "cannot %s request %s: %s (it is %s)",
                            action_to_string(action), w->req.id, why, state_to_string(w->req.state));
                write_end(w, r, &error);
                return;
        }
        w->by_requester = (action == ACTION_CANCEL && who->uid == w->req.requester_uid) || action == ACTION_DONE;

        if (d->shared) {
                if (action == ACTION_DONE)
                        pgstore_finish(d->shared, &w->req, on_decided_shared, w);
                else
                        pgstore_decide(d->shared, &w->req, w->before.state, on_decided_shared, w);
                return;
        }
        r = store_begin(d->store);
        if (r >= 0)
                r = store_transition(d->store, &w->req, w->before.state);
        if (r >= 0)
                r = store_commit(d->store);
        if (r < 0)
                (void) store_rollback(d->store);
        decided(w, r);
}

/* ---- waiting for a decision (lockbox request --wait) --------------------------------------- */

struct waiter {
        struct daemon *d;
        char id[ID_LEN + 1];
        enum lb_state seen;             /* the state the caller saw: answered when it changes */
        sd_event_source *timer;
        op_done_t done;
        void *userdata;
        struct waiter *prev, *next;
};

static void waiter_end(struct waiter *w, int r, const struct lb_request *req, const sd_bus_error *error) {
        struct daemon *d = w->d;

        if (w->prev)
                w->prev->next = w->next;
        else
                d->waiters = w->next;
        if (w->next)
                w->next->prev = w->prev;
        d->n_waiters--;
        sd_event_source_disable_unref(w->timer);
        w->done(r, req, error, w->userdata);
        free(w);
}

/* The request of w as it is now, its state as of now (a due transition counted), or -errno. */
static int waiter_read(struct waiter *w, struct lb_request *ret) {
        int r = store_get(w->d->store, w->id, ret);

        if (r >= 0)
                ret->state = policy_state_at(w->d->config, ret, daemon_now());
        return r;
}

static void waiter_answer(struct waiter *w) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        struct lb_request req = {};
        int r = waiter_read(w, &req);

        if (r < 0) {
                r = op_fail(&error, r, LB_ERROR_NO_SUCH_REQUEST, "the request is gone");
                waiter_end(w, r, NULL, &error);
                return;
        }
        waiter_end(w, 0, &req, NULL);
        request_done(&req);
}

static int on_wait_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        (void) s;
        (void) usec;
        waiter_answer(userdata);
        return 0;
}

/* After any change of the requests: answers the waiters whose request moved on. */
static void waiters_check(struct daemon *d) {
        struct waiter *w = d->waiters, *next;

        for (; w; w = next) {
                struct lb_request req = {};
                bool moved;

                next = w->next;
                moved = waiter_read(w, &req) < 0 || req.state != w->seen;
                request_done(&req);
                if (moved)
                        waiter_answer(w);
        }
}

/* Waits on request id: one operator's logins all wait on their one pending request, so this
 * keeps them from taking every waiter (the module calls as root, under no per-uid cap). */
static unsigned waiters_on(struct daemon *d, const char *id) {
        unsigned n = 0;

        for (struct waiter *w = d->waiters; w; w = w->next)
                n += streq(w->id, id);
        return n;
}

void daemon_wait(struct daemon *d, const struct lb_caller *who, const char *id_or_prefix, uint64_t timeout_usec,
                 op_done_t done, void *userdata, struct waiter **ret_waiter) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        struct lb_request req = {};
        struct waiter *w;
        int r;

        *ret_waiter = NULL;
        if (timeout_usec > WAIT_MAX_USEC)
                timeout_usec = WAIT_MAX_USEC;
        r = daemon_lookup(d, who, id_or_prefix, &req, &error);
        if (r < 0) {
                done(r, NULL, &error, userdata);
                return;
        }
        req.state = policy_state_at(d->config, &req, daemon_now());
        /* Decided (or run out) already, or nothing to wait for: the answer is now. */
        if (!(STATE_BIT(req.state) & STATE_MASK_PENDING) || timeout_usec == 0) {
                done(0, &req, NULL, userdata);
                request_done(&req);
                return;
        }
        if (d->n_waiters >= WAITERS_MAX || waiters_on(d, req.id) >= WAITERS_PER_REQUEST) {
                request_done(&req);
                r = op_fail(&error, -EBUSY, LB_ERROR_FAILED, "too many callers are waiting; try again later");
                done(r, NULL, &error, userdata);
                return;
        }
        w = calloc(1, sizeof(*w));
        if (!w || sd_event_add_time_relative(d->event, &w->timer, CLOCK_MONOTONIC, timeout_usec, 0, on_wait_timeout, w) < 0) {
                free(w);
                request_done(&req);
                r = op_fail(&error, -ENOMEM, LB_ERROR_FAILED, "out of memory");
                done(r, NULL, &error, userdata);
                return;
        }
        w->d = d;
        memcpy(w->id, req.id, sizeof(w->id));
        w->seen = req.state;
        w->done = done;
        w->userdata = userdata;
        w->next = d->waiters;
        if (w->next)
                w->next->prev = w;
        d->waiters = w;
        d->n_waiters++;
        request_done(&req);
        *ret_waiter = w;
}

void daemon_wait_cancel(struct waiter *w) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r = op_fail(&error, -ECANCELED, LB_ERROR_FAILED, "the caller is gone");

        waiter_end(w, r, NULL, &error);
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

int daemon_pending_of(struct daemon *d, const char *user, struct lb_request *ret, sd_bus_error *error) {
        struct lb_request *list = NULL;
        int64_t now = daemon_now();
        size_t n = 0;
        int r, found = 0;

        r = store_list(d->store, user, STATE_MASK_PENDING, LB_LIST_LIMIT, &list, &n);
        if (r < 0)
                return op_fail_store(error, r, "listing requests");
        for (size_t i = 0; i < n && !found; i++) {
                int state = policy_state_at(d->config, &list[i], now);

                if (!(STATE_BIT(state) & STATE_MASK_PENDING) || !streq(list[i].tenant, d->config->tenant))
                        continue;
                *ret = list[i];
                ret->state = state;
                list[i] = (struct lb_request) {};
                found = 1;
        }
        request_array_free(list, n);
        return found;
}

static void record_done(struct audit_record *e) {
        for (size_t i = 0; i < e->n_fields; i++)
                free(e->fields[i]);
        free(e->fields);
        free(e->host);
}

/* Fleet mode: the story of one request on this host (its journal) and on the others (the
 * shared store), told together. */
struct story {
        struct daemon *d;
        struct audit_records local;
        char id[ID_LEN + 1];
        audit_done_t done;
        void *userdata;
};

static void on_shared_story(int r, struct audit_records *shared, void *userdata) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        struct story *x = userdata;
        struct audit_records merged = { .truncated = x->local.truncated };
        const char *own = pgstore_hostname(x->d->shared);
        size_t i = 0, k = 0;

        if (r < 0) {
                r = op_fail(&error, r, LB_ERROR_FAILED,
                            "cannot read the other hosts' part of the story from the shared store (%s); this host's "
                            "part: journalctl _UID=0 LOCKBOX_REQUEST_ID=%s", strerror(-r), x->id);
                x->done(r, NULL, &error, x->userdata);
                goto done;
        }
        merged.records = calloc(x->local.n + shared->n + 1, sizeof(*merged.records));
        if (!merged.records) {
                r = op_fail(&error, -ENOMEM, LB_ERROR_FAILED, "out of memory");
                x->done(r, NULL, &error, x->userdata);
                goto done;
        }
        merged.truncated = x->local.truncated || shared->truncated;
        /* This host's own entries come from its journal, which attributes them to lockboxd:
         * its copies in the shared store are left out. */
        while (i < x->local.n || k < shared->n) {
                struct audit_record *e;

                if (k < shared->n && streq(shared->records[k].host, own)) {
                        record_done(&shared->records[k]);
                        shared->records[k++] = (struct audit_record) {};
                        continue;
                }
                if (k >= shared->n || (i < x->local.n && x->local.records[i].time_usec <= shared->records[k].time_usec))
                        e = &x->local.records[i++];
                else
                        e = &shared->records[k++];
                if (merged.n >= AUDIT_ENTRIES_MAX) {
                        merged.truncated = true;
                        record_done(e);
                } else
                        merged.records[merged.n++] = *e;
                *e = (struct audit_record) {};
        }
        x->done(0, &merged, NULL, x->userdata);
        audit_records_done(&merged);
done:
        audit_records_done(&x->local);
        free(x);
}

void daemon_audit(struct daemon *d, const struct lb_caller *who, const char *id_or_prefix, uint64_t since_usec,
                  audit_done_t done, void *userdata) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        struct audit_query q = { .since_usec = since_usec };
        struct audit_records list = {};
        struct lb_request req = {};
        struct story *x;
        int r;

        r = op_require_role(who, &error);
        if (r < 0)
                goto fail;
        if (!isempty(id_or_prefix)) {
                r = daemon_lookup(d, who, id_or_prefix, &req, &error);
                if (r < 0)
                        goto fail;
                q.request_id = req.id;
        } else if (!policy_sees_all(who))
                q.operator_account = who->name;
        r = journal_query(&q, &list);
        if (r < 0) {
                fprintf(stderr, "lockboxd: cannot read the journal: %s\n", strerror(-r));
                r = op_fail(&error, r, LB_ERROR_FAILED, "cannot read the journal: %s", strerror(-r));
                goto fail;
        }
        /* One host, or every story at once (each host's journal tells its own): answered now. */
        if (!d->shared || !q.request_id) {
                done(0, &list, NULL, userdata);
                audit_records_done(&list);
                request_done(&req);
                return;
        }
        x = calloc(1, sizeof(*x));
        if (!x) {
                audit_records_done(&list);
                r = op_fail(&error, -ENOMEM, LB_ERROR_FAILED, "out of memory");
                goto fail;
        }
        x->d = d;
        x->local = list;
        memcpy(x->id, req.id, sizeof(x->id));
        x->done = done;
        x->userdata = userdata;
        request_done(&req);
        pgstore_story(d->shared, x->id, since_usec, on_shared_story, x);
        return;
fail:
        request_done(&req);
        done(r, NULL, &error, userdata);
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
