/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The request state machine and who may move it: every rule of SPEC §2 and §3 lives here. */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "request.h"

enum lb_action {
        ACTION_APPROVE,
        ACTION_DENY,
        ACTION_CANCEL,
        ACTION_REVOKE,
        ACTION_DONE,            /* the operator ends their own grant early */
};

struct lb_caller {
        uid_t uid;
        const char *name;
        unsigned roles;         /* ROLE_* */
};

/* What a successful decision did, for the audit. */
struct policy_outcome {
        const char *event;      /* LOCKBOX_EVENT */
        const char *decision;   /* LOCKBOX_APPROVAL_DECISION */
};

/* Applies action by who to r at now, with an optional comment (NULL or ""
 * keeps the previous one). On success r holds the new state and fields and
 * *out says what happened. On refusal r is unchanged, *why says why in a few
 * words, and the result is -EPERM (role), -EACCES (separation of duties) or
 * -ESTALE (the request is not in a state that allows it). */
int policy_decide(const struct lb_config *c, const struct lb_caller *who, enum lb_action action,
                  struct lb_request *r, const char *comment, int64_t now,
                  struct policy_outcome *out, const char **why);

/* May who file a request for tenant lasting duration seconds? 0, or -EPERM
 * (role, tenant) / -ERANGE (duration outside [min_duration, max_duration]),
 * with *why. */
int policy_may_request(const struct lb_config *c, const struct lb_caller *who, const char *tenant,
                       uint64_t duration, const char **why);

/* May who ask whether another user would be admitted (`lockbox check`)? Admins. */
bool policy_may_check_others(const struct lb_caller *who);

/* May who see r? Operators see their own, managers, approvers, admins all. */
bool policy_may_see(const struct lb_caller *who, const struct lb_request *r);
/* Does who see every request (and its audit story), not only their own? */
bool policy_sees_all(const struct lb_caller *who);

/* The state time moves r to at now: LB_STATE_EXPIRED for a pending request
 * older than request_timeout, LB_STATE_ENDED for a grant past expires_at;
 * -1 if nothing is due. */
int policy_due(const struct lb_config *c, const struct lb_request *r, int64_t now);

/* The state r is in at now: the one a due transition gives it (expired, ended), else
 * the stored one. Decisions are taken on it, so that none depends on the deadline
 * timer having run, and none needs to write the store before it reads. */
enum lb_state policy_state_at(const struct lb_config *c, const struct lb_request *r, int64_t now);

const char *action_to_string(enum lb_action a);
