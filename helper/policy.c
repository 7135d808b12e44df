/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The request state machine: who may decide what, in which state, and what time does. */

#include "policy.h"
#include "roles.h"
#include "util.h"

static const char *const action_names[] = {
        [ACTION_APPROVE] = "approve",
        [ACTION_DENY] = "deny",
        [ACTION_CANCEL] = "cancel",
        [ACTION_REVOKE] = "revoke",
        [ACTION_DONE] = "end",
};

const char *action_to_string(enum lb_action a) {
        return (unsigned) a < ELEMENTSOF(action_names) ? action_names[a] : NULL;
}

static bool is_requester(const struct lb_caller *who, const struct lb_request *r) {
        return who->uid == r->requester_uid || streq_ptr(who->name, r->requester);
}

static int refuse(int error, const char **why, const char *text) {
        *why = text;
        return error;
}

static int set_comment(struct lb_request *r, const char *comment) {
        char *copy;

        if (isempty(comment))
                return 0;
        copy = strdup(comment);
        if (!copy)
                return -ENOMEM;
        free(r->comment);
        r->comment = copy;
        return 0;
}

static int set_name(char **field, const char *name) {
        char *copy = strdup(name);

        if (!copy)
                return -ENOMEM;
        free(*field);
        *field = copy;
        return 0;
}

int policy_decide(const struct lb_config *c, const struct lb_caller *who, enum lb_action action,
                  struct lb_request *r, const char *comment, int64_t now,
                  struct policy_outcome *out, const char **why) {
        bool deciding_role = who->roles & (ROLE_MANAGER | ROLE_APPROVER | ROLE_ADMIN);
        bool customer_role = who->roles & (ROLE_APPROVER | ROLE_ADMIN);
        int r_err;

        (void) c;

        switch (action) {
        case ACTION_APPROVE:
        case ACTION_DENY:
                if (!deciding_role)
                        return refuse(-EPERM, why, "only managers and approvers decide requests");
                if (is_requester(who, r))
                        return refuse(-EACCES, why, "nobody decides on their own request");
                if (r->state == LB_STATE_PENDING_MANAGER) {
                        if (action == ACTION_APPROVE && !(who->roles & ROLE_MANAGER))
                                return refuse(-EPERM, why, "the request awaits a support manager's pre-approval");
                        /* The customer may turn a request down at any stage. */
                        if (action == ACTION_APPROVE) {
                                r_err = set_name(&r->manager, who->name);
                                if (r_err < 0)
                                        return r_err;
                                r->state = LB_STATE_PENDING;
                                *out = (struct policy_outcome) { "manager-approved", "Approve" };
                        } else {
                                r_err = set_name(who->roles & ROLE_MANAGER ? &r->manager : &r->approver, who->name);
                                if (r_err < 0)
                                        return r_err;
                                r->state = LB_STATE_DENIED;
                                r->decided_at = now;
                                *out = (struct policy_outcome) { "denied", "Deny" };
                        }
                        return set_comment(r, comment);
                }
                if (r->state == LB_STATE_PENDING) {
                        if (!customer_role)
                                return refuse(-EPERM, why, "the request awaits the customer's approver");
                        if (streq_ptr(who->name, r->manager))
                                return refuse(-EACCES, why, "the manager and the approver of a request must be different people");
                        r_err = set_name(&r->approver, who->name);
                        if (r_err < 0)
                                return r_err;
                        r->decided_at = now;
                        if (action == ACTION_APPROVE) {
                                r->state = LB_STATE_APPROVED;
                                r->expires_at = now + (int64_t) r->duration;
                                *out = (struct policy_outcome) { "approved", "Approve" };
                        } else {
                                r->state = LB_STATE_DENIED;
                                *out = (struct policy_outcome) { "denied", "Deny" };
                        }
                        return set_comment(r, comment);
                }
                return refuse(-ESTALE, why, "the request is not pending");

        case ACTION_CANCEL:
                if (!is_requester(who, r) && !(who->roles & ROLE_ADMIN))
                        return refuse(-EPERM, why, "only the requester or an admin may cancel a request");
                if (r->state != LB_STATE_PENDING_MANAGER && r->state != LB_STATE_PENDING)
                        return refuse(-ESTALE, why, "only a pending request can be cancelled");
                r->state = LB_STATE_CANCELLED;
                r->decided_at = now;
                *out = (struct policy_outcome) { "cancelled", "Cancel" };
                return 0;

        case ACTION_REVOKE:
                if (!customer_role)
                        return refuse(-EPERM, why, "only approvers and admins revoke access");
                if (is_requester(who, r))
                        return refuse(-EACCES, why, "nobody decides on their own request");
                if (r->state != LB_STATE_APPROVED)
                        return refuse(-ESTALE, why, "only an approved request can be revoked");
                r->state = LB_STATE_REVOKED;
                r->decided_at = now;
                *out = (struct policy_outcome) { "revoked", "Revoke" };
                return set_comment(r, comment);

        case ACTION_DONE:
                /* Ending access early never extends it: only the operator who holds it. */
                if (who->uid != r->requester_uid || !streq_ptr(who->name, r->requester))
                        return refuse(-EPERM, why, "only the operator who holds a grant may end it early");
                if (r->state != LB_STATE_APPROVED)
                        return refuse(-ESTALE, why, "only an approved request can be ended");
                r->state = LB_STATE_ENDED;
                r->expires_at = now;
                *out = (struct policy_outcome) { "ended", NULL };
                return 0;
        }
        return refuse(-EINVAL, why, "unknown action");
}

int policy_may_request(const struct lb_config *c, const struct lb_caller *who, const char *tenant,
                       uint64_t duration, const char **why) {
        if (!(who->roles & ROLE_OPERATOR))
                return refuse(-EPERM, why, "only operators file requests");
        if (!streq(tenant, c->tenant))
                return refuse(-EPERM, why, "this host does not serve that tenant");
        if (duration < c->min_duration || duration > c->max_duration)
                return refuse(-ERANGE, why, "duration outside the allowed range");
        return 0;
}

bool policy_sees_all(const struct lb_caller *who) {
        return who->roles & (ROLE_MANAGER | ROLE_APPROVER | ROLE_ADMIN);
}

bool policy_may_check_others(const struct lb_caller *who) {
        return who->roles & ROLE_ADMIN;
}

bool policy_may_see(const struct lb_caller *who, const struct lb_request *r) {
        if (policy_sees_all(who))
                return true;
        return (who->roles & ROLE_OPERATOR) && is_requester(who, r);
}

enum lb_state policy_state_at(const struct lb_config *c, const struct lb_request *r, int64_t now) {
        int due = policy_due(c, r, now);

        return due >= 0 ? (enum lb_state) due : r->state;
}

int policy_due(const struct lb_config *c, const struct lb_request *r, int64_t now) {
        switch (r->state) {
        case LB_STATE_PENDING_MANAGER:
        case LB_STATE_PENDING:
                if (r->created_at + (int64_t) c->request_timeout <= now)
                        return LB_STATE_EXPIRED;
                return -1;
        case LB_STATE_APPROVED:
                if (r->expires_at <= now)
                        return LB_STATE_ENDED;
                return -1;
        default:
                return -1;
        }
}
