/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The state machine and its rules of who may decide what (policy.c), every transition. */

#include "config.h"
#include "policy.h"
#include "roles.h"
#include "tap.h"
#include "util.h"

#define NOW 1800000000

static struct lb_config *cfg;

static const struct lb_caller op = { 1001, "op", ROLE_OPERATOR };
static const struct lb_caller op2 = { 1002, "op2", ROLE_OPERATOR };
static const struct lb_caller mgr = { 1003, "mgr", ROLE_MANAGER };
static const struct lb_caller appr = { 1004, "appr", ROLE_APPROVER };
static const struct lb_caller admin = { 1005, "admin", ROLE_ADMIN };
static const struct lb_caller both = { 1006, "both", ROLE_MANAGER | ROLE_APPROVER };
static const struct lb_caller nobody = { 1007, "nobody", 0 };
/* An operator who is also a manager and an approver: still may not decide their own. */
static const struct lb_caller opall = { 1008, "opall", ROLE_OPERATOR | ROLE_MANAGER | ROLE_APPROVER | ROLE_ADMIN };

static void fresh(struct lb_request *r, const struct lb_caller *requester, enum lb_state state) {
        request_done(r);
        *r = (struct lb_request) {
                .id = "0f8fad5b-d9cb-469f-a165-70867728950e",
                .requester_uid = requester->uid,
                .duration = 3600,
                .state = state,
                .created_at = NOW - 60,
        };
        r->tenant = strdup("contoso");
        r->requester = strdup(requester->name);
        r->ticket = strdup("SR1");
        r->reason = strdup("disk full");
        if (state == LB_STATE_PENDING || state == LB_STATE_APPROVED)
                r->manager = strdup("mgr");
        if (state == LB_STATE_APPROVED) {
                r->approver = strdup("appr");
                r->decided_at = NOW - 30;
                r->expires_at = NOW + 3000;
        }
}

static int decide(const struct lb_caller *who, enum lb_action a, struct lb_request *r, const char *comment) {
        struct policy_outcome out = {};
        const char *why = NULL;
        return policy_decide(cfg, who, a, r, comment, NOW, &out, &why);
}

static void test_two_stage_approval(void) {
        struct lb_request r = {};
        struct policy_outcome out = {};
        const char *why = NULL;

        fresh(&r, &op, LB_STATE_PENDING_MANAGER);
        is_int(policy_decide(cfg, &mgr, ACTION_APPROVE, &r, "looks right", NOW, &out, &why), 0, "manager pre-approves");
        is_int(r.state, LB_STATE_PENDING, "pre-approval moves to pending");
        is_str(out.event, "manager-approved", "event manager-approved");
        is_str(out.decision, "Approve", "decision Approve");
        is_str(r.manager, "mgr", "manager recorded");
        is_int(r.expires_at, 0, "no grant yet");
        is_str(r.comment, "looks right", "comment kept");

        is_int(policy_decide(cfg, &appr, ACTION_APPROVE, &r, NULL, NOW, &out, &why), 0, "approver approves");
        is_int(r.state, LB_STATE_APPROVED, "approved");
        is_str(out.event, "approved", "event approved");
        is_str(r.approver, "appr", "approver recorded");
        is_int(r.decided_at, NOW, "decided now");
        is_int(r.expires_at, NOW + 3600, "grant runs duration from approval");
        is_str(r.comment, "looks right", "empty comment keeps the previous one");

        is_int(policy_decide(cfg, &appr, ACTION_REVOKE, &r, "done", NOW, &out, &why), 0, "approver revokes");
        is_int(r.state, LB_STATE_REVOKED, "revoked");
        is_str(out.decision, "Revoke", "decision Revoke");
        request_done(&r);
}

static void test_roles_and_duties(void) {
        struct lb_request r = {};

        fresh(&r, &op, LB_STATE_PENDING_MANAGER);
        is_int(decide(&appr, ACTION_APPROVE, &r, NULL), -EPERM, "approver cannot do stage 1");
        is_int(decide(&admin, ACTION_APPROVE, &r, NULL), -EPERM, "admin cannot do stage 1");
        is_int(decide(&op2, ACTION_APPROVE, &r, NULL), -EPERM, "operator cannot approve");
        is_int(decide(&nobody, ACTION_APPROVE, &r, NULL), -EPERM, "no role cannot approve");
        is_int(r.state, LB_STATE_PENDING_MANAGER, "refusals change nothing");

        fresh(&r, &opall, LB_STATE_PENDING_MANAGER);
        is_int(decide(&opall, ACTION_APPROVE, &r, NULL), -EACCES, "nobody approves their own request (stage 1)");
        is_int(decide(&opall, ACTION_DENY, &r, NULL), -EACCES, "nobody denies their own request");
        fresh(&r, &opall, LB_STATE_PENDING);
        is_int(decide(&opall, ACTION_APPROVE, &r, NULL), -EACCES, "nobody approves their own request (stage 2)");
        fresh(&r, &opall, LB_STATE_APPROVED);
        is_int(decide(&opall, ACTION_REVOKE, &r, NULL), -EACCES, "nobody revokes their own grant");

        fresh(&r, &op, LB_STATE_PENDING_MANAGER);
        is_int(decide(&both, ACTION_APPROVE, &r, NULL), 0, "manager+approver pre-approves");
        is_int(decide(&both, ACTION_APPROVE, &r, NULL), -EACCES, "and may not also approve stage 2");
        is_int(decide(&both, ACTION_DENY, &r, NULL), -EACCES, "nor deny at stage 2");
        is_int(r.state, LB_STATE_PENDING, "still pending");
        is_int(decide(&mgr, ACTION_APPROVE, &r, NULL), -EPERM, "a manager cannot do stage 2");
        is_int(decide(&admin, ACTION_APPROVE, &r, NULL), 0, "an admin approves stage 2");
        is_int(r.state, LB_STATE_APPROVED, "approved by admin");
        is_int(decide(&mgr, ACTION_REVOKE, &r, NULL), -EPERM, "a manager cannot revoke");
        is_int(decide(&op, ACTION_REVOKE, &r, NULL), -EPERM, "the operator cannot revoke");
        is_int(decide(&admin, ACTION_REVOKE, &r, NULL), 0, "an admin revokes");
        request_done(&r);
}

static void test_deny_and_cancel(void) {
        struct lb_request r = {};

        fresh(&r, &op, LB_STATE_PENDING_MANAGER);
        is_int(decide(&mgr, ACTION_DENY, &r, "no"), 0, "manager denies at stage 1");
        is_int(r.state, LB_STATE_DENIED, "denied");
        is_int(r.decided_at, NOW, "decided now");

        fresh(&r, &op, LB_STATE_PENDING_MANAGER);
        is_int(decide(&appr, ACTION_DENY, &r, NULL), 0, "the customer may deny at stage 1");
        is_str(r.approver, "appr", "as approver");

        fresh(&r, &op, LB_STATE_PENDING);
        is_int(decide(&mgr, ACTION_DENY, &r, NULL), -EPERM, "a manager cannot deny at stage 2");
        is_int(decide(&appr, ACTION_DENY, &r, NULL), 0, "approver denies at stage 2");

        fresh(&r, &op, LB_STATE_PENDING);
        is_int(decide(&op2, ACTION_CANCEL, &r, NULL), -EPERM, "another operator cannot cancel");
        is_int(decide(&appr, ACTION_CANCEL, &r, NULL), -EPERM, "an approver cannot cancel (deny instead)");
        is_int(decide(&op, ACTION_CANCEL, &r, NULL), 0, "the requester cancels");
        is_int(r.state, LB_STATE_CANCELLED, "cancelled");

        fresh(&r, &op, LB_STATE_PENDING_MANAGER);
        is_int(decide(&admin, ACTION_CANCEL, &r, NULL), 0, "an admin cancels");
        request_done(&r);
}

static void test_final_states(void) {
        static const enum lb_state finals[] = {
                LB_STATE_DENIED, LB_STATE_CANCELLED, LB_STATE_EXPIRED, LB_STATE_ENDED, LB_STATE_REVOKED,
        };
        struct lb_request r = {};

        for (size_t i = 0; i < ELEMENTSOF(finals); i++) {
                const char *name = state_to_string(finals[i]);

                ok(state_is_final(finals[i]), "%s is final", name);
                fresh(&r, &op, finals[i]);
                is_int(decide(&appr, ACTION_APPROVE, &r, NULL), -ESTALE, "approve refused when %s", name);
                is_int(decide(&appr, ACTION_DENY, &r, NULL), -ESTALE, "deny refused when %s", name);
                is_int(decide(&op, ACTION_CANCEL, &r, NULL), -ESTALE, "cancel refused when %s", name);
                is_int(decide(&appr, ACTION_REVOKE, &r, NULL), -ESTALE, "revoke refused when %s", name);
                is_int(r.state, finals[i], "%s stays %s", name, name);
        }
        fresh(&r, &op, LB_STATE_APPROVED);
        is_int(decide(&appr, ACTION_APPROVE, &r, NULL), -ESTALE, "approve of an approved request refused");
        is_int(decide(&op, ACTION_CANCEL, &r, NULL), -ESTALE, "cancel of an approved request refused");
        fresh(&r, &op, LB_STATE_PENDING);
        is_int(decide(&appr, ACTION_REVOKE, &r, NULL), -ESTALE, "revoke of a pending request refused");
        ok(!state_is_final(LB_STATE_PENDING) && !state_is_final(LB_STATE_APPROVED) &&
           !state_is_final(LB_STATE_PENDING_MANAGER), "pending and approved are not final");
        request_done(&r);
}

/* lockbox done: the operator ends their own grant early; nobody else, and only an approved one. */
static void test_done(void) {
        struct policy_outcome out = {};
        const char *why = NULL;
        struct lb_request r = {};

        fresh(&r, &op, LB_STATE_APPROVED);
        is_int(decide(&appr, ACTION_DONE, &r, NULL), -EPERM, "an approver cannot end someone's grant as done");
        is_int(decide(&admin, ACTION_DONE, &r, NULL), -EPERM, "nor an admin");
        is_int(decide(&op2, ACTION_DONE, &r, NULL), -EPERM, "nor another operator");
        is_int(r.state, LB_STATE_APPROVED, "the grant stays approved");
        is_int(policy_decide(cfg, &op, ACTION_DONE, &r, NULL, NOW, &out, &why), 0, "its operator ends it");
        is_int(r.state, LB_STATE_ENDED, "… it is ended");
        is_int(r.expires_at, NOW, "… its end is now");
        is_str(out.event, "ended", "… audited as ended");
        ok(out.decision == NULL, "… which is no decision");
        is_int(decide(&op, ACTION_DONE, &r, NULL), -ESTALE, "an ended grant cannot be ended again");
        fresh(&r, &op, LB_STATE_PENDING);
        is_int(decide(&op, ACTION_DONE, &r, NULL), -ESTALE, "a pending request cannot be ended");
        request_done(&r);
}

static void test_time(void) {
        struct lb_request r = {};

        fresh(&r, &op, LB_STATE_PENDING_MANAGER);
        r.created_at = NOW - (int64_t) cfg->request_timeout + 1;
        is_int(policy_due(cfg, &r, NOW), -1, "pending-manager not due a second before the timeout");
        r.created_at = NOW - (int64_t) cfg->request_timeout;
        is_int(policy_due(cfg, &r, NOW), LB_STATE_EXPIRED, "pending-manager expires at the timeout");
        r.state = LB_STATE_PENDING;
        is_int(policy_due(cfg, &r, NOW), LB_STATE_EXPIRED, "pending expires at the timeout");

        fresh(&r, &op, LB_STATE_APPROVED);
        r.expires_at = NOW + 1;
        is_int(policy_due(cfg, &r, NOW), -1, "grant not due before expires_at");
        r.expires_at = NOW;
        is_int(policy_due(cfg, &r, NOW), LB_STATE_ENDED, "grant ends at expires_at");
        r.state = LB_STATE_REVOKED;
        is_int(policy_due(cfg, &r, NOW), -1, "final states are never due");
        is_int(policy_state_at(cfg, &r, NOW), LB_STATE_REVOKED, "a final state is the state at any time");

        /* Decisions are taken on the state at now, whether or not the timer settled it. */
        fresh(&r, &op, LB_STATE_APPROVED);
        is_int(policy_state_at(cfg, &r, NOW), LB_STATE_APPROVED, "a running grant is approved");
        r.expires_at = NOW;
        is_int(policy_state_at(cfg, &r, NOW), LB_STATE_ENDED, "a grant at expires_at is ended");
        r.state = policy_state_at(cfg, &r, NOW);
        is_int(decide(&appr, ACTION_REVOKE, &r, NULL), -ESTALE, "... and can no longer be revoked");
        fresh(&r, &op, LB_STATE_PENDING);
        r.created_at = NOW - (int64_t) cfg->request_timeout;
        is_int(policy_state_at(cfg, &r, NOW), LB_STATE_EXPIRED, "a pending request at its timeout is expired");
        r.state = policy_state_at(cfg, &r, NOW);
        is_int(decide(&appr, ACTION_APPROVE, &r, NULL), -ESTALE, "... and can no longer be approved");
        is_int(r.expires_at, 0, "... which grants nothing");
        request_done(&r);
}

static void test_may_request_and_see(void) {
        struct lb_request r = {};
        const char *why = NULL;

        is_int(policy_may_request(cfg, &op, "contoso", 3600, &why), 0, "operator may request");
        is_int(policy_may_request(cfg, &appr, "contoso", 3600, &why), -EPERM, "approver may not request");
        is_int(policy_may_request(cfg, &op, "fabrikam", 3600, &why), -EPERM, "other tenant refused");
        is_int(policy_may_request(cfg, &op, "contoso", cfg->max_duration, &why), 0, "max duration allowed");
        is_int(policy_may_request(cfg, &op, "contoso", cfg->max_duration + 1, &why), -ERANGE, "over max refused");
        is_int(policy_may_request(cfg, &op, "contoso", cfg->min_duration, &why), 0, "min duration allowed");
        is_int(policy_may_request(cfg, &op, "contoso", cfg->min_duration - 1, &why), -ERANGE, "under min refused");

        fresh(&r, &op, LB_STATE_PENDING);
        ok(policy_may_see(&op, &r), "operator sees own request");
        ok(!policy_may_see(&op2, &r), "operator does not see another's request");
        ok(policy_may_see(&mgr, &r) && policy_may_see(&appr, &r) && policy_may_see(&admin, &r),
           "managers, approvers, admins see all");
        ok(!policy_may_see(&nobody, &r), "no role sees nothing");
        request_done(&r);

        ok(policy_may_check_others(&admin) && policy_may_check_others(&opall), "admins check other users' access");
        ok(!policy_may_check_others(&op) && !policy_may_check_others(&mgr) && !policy_may_check_others(&appr) &&
           !policy_may_check_others(&both) && !policy_may_check_others(&nobody),
           "operators, managers, approvers and no role do not");
}

int main(void) {
        if (config_defaults(&cfg) < 0)
                return 99;
        free(cfg->tenant);
        cfg->tenant = strdup("contoso");
        test_two_stage_approval();
        test_roles_and_duties();
        test_deny_and_cancel();
        test_final_states();
        test_done();
        test_time();
        test_may_request_and_see();
        config_free(cfg);
        return tap_done();
}
