#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Integration: every role rule of SPEC §2 and §4 through a real lockboxd, the real CLI and real
# users: who may request, see, pre-approve, approve, deny, revoke, cancel and check; nobody
# decides their own request; manager ≠ approver; root is admin; tenant and duration limits.

. "$abs_top_srcdir/tests/lib/harness.sh"
lb_setup
# min_duration 1m so that a request below it exists (the harness default is 1s).
lb_write_config 'min_duration = "1m";'

# Users in an operator group and a deciding group at once, to try deciding one's own request.
for u in lbt-opmgr lbt-opappr lbt-opadmin; do
        useradd -M -d "$LB_TMP/home/$u" -s /bin/sh "$u" || bail "useradd $u"
        LB_USERS+=("$u")
done
usermod -aG lockbox-operators,lockbox-managers lbt-opmgr
usermod -aG lockbox-operators,lockbox-approvers lbt-opappr
usermod -aG lockbox-operators,lockbox-admins lbt-opadmin

lb_start_daemon || bail "lockboxd did not start"

# step USER VERB ID WANT-STATE [ARGS...]: a permitted step: exit 0 and the request is now WANT-STATE.
step() {
        local user=$1 verb=$2 id=$3 want=$4; shift 4
        local state
        run "$user" "$verb" "$id" "$@"
        state=$(lb_state "$id")
        if [ "$RC" = 0 ] && [ "$state" = "$want" ]; then
                ok 0 "$user may $verb: -> $want"
        else
                ok 1 "$user may $verb: -> $want"
                printf '#   got: exit %s, state %s, stderr: %s\n' "$RC" "$state" "$ERR"
        fi
}

# pending USER: a request of USER pre-approved by lbt-mgr (state pending), in ID.
pending() {
        lb_new_request "$1"
        run lbt-mgr approve "$ID"
}
# approved USER: a request of USER approved by lbt-mgr and lbt-appr, in ID.
approved() {
        pending "$1"
        run lbt-appr approve "$ID"
}

# ---- only operators file requests ----
lb_new_request lbt-op1
is "$RC" 0 "an operator may file a request"
OP1_REQ=$ID
for u in lbt-mgr lbt-appr lbt-admin lbt-none lbt-mgrappr root; do
        before=$(lb_count)
        lb_new_request "$u"
        lb_is_error 1 "$u may not file a request (exit 1)"
        is "$(lb_count)" "$before" "… and nothing was stored"
done

# ---- operators see only their own requests ----
lb_new_request lbt-op2
OP2_REQ=$ID
run lbt-op2 show "$OP1_REQ"
lb_is_error 3 "another operator's request does not exist for lbt-op2 (show: exit 3)"
run lbt-op2 show "${OP1_REQ:0:8}"
lb_is_error 3 "… nor by prefix (exit 3)"
lb_refused 3 lbt-op2 cancel "$OP1_REQ"
run lbt-op2 list --all --json
is "$(jq -r '[.[].requester] | unique | join(" ")' <<<"$OUT")" "lbt-op2" "lbt-op2's list --all holds only lbt-op2's requests"
is "$(jq --arg id "$OP1_REQ" 'any(.[]; .id == $id)' <<<"$OUT")" false "… and not lbt-op1's"
run lbt-op1 list --json
is "$(jq -r '[.[].id] | join(" ")' <<<"$OUT")" "$OP1_REQ" "lbt-op1's list shows exactly their own pending request"
run lbt-op1 show "$OP1_REQ" --json
is "$RC:$(jq -r .requester <<<"$OUT")" "0:lbt-op1" "an operator may show their own request"
for u in lbt-mgr lbt-appr lbt-admin root; do
        run "$u" list --all --json
        is "$(jq --arg a "$OP1_REQ" --arg b "$OP2_REQ" '[.[].id] | (index($a) != null) and (index($b) != null)' <<<"$OUT")" \
           true "$u sees every operator's requests"
done

# ---- stage 1 belongs to managers; stage 2 to approvers and admins ----
lb_new_request lbt-op1; R=$ID
lb_refused 1 lbt-appr approve "$R"
lb_refused 1 lbt-admin approve "$R"
lb_refused 1 root approve "$R"
lb_refused 1 lbt-op1 approve "$R"
lb_refused 3 lbt-op2 approve "$R"
step lbt-mgr approve "$R" pending
lb_refused 1 lbt-mgr2 approve "$R"
lb_refused 1 lbt-mgr2 deny "$R"
lb_refused 1 lbt-op1 deny "$R"
step lbt-appr approve "$R" approved
lb_refused 1 lbt-mgr revoke "$R"
lb_refused 1 lbt-mgr2 revoke "$R"
lb_refused 1 lbt-op1 revoke "$R"
step lbt-appr2 revoke "$R" revoked
pending lbt-op1
step lbt-admin approve "$ID" approved
step lbt-admin revoke "$ID" revoked
pending lbt-op1
step root approve "$ID" approved
step root revoke "$ID" revoked
lb_new_request lbt-op1
step lbt-mgr2 deny "$ID" denied

# ---- nobody decides their own request ----
lb_new_request lbt-opmgr; OWN=$ID
lb_refused 1 lbt-opmgr approve "$OWN"
lb_refused 1 lbt-opmgr deny "$OWN"
step lbt-mgr approve "$OWN" pending
lb_new_request lbt-opappr; OWN=$ID
step lbt-mgr approve "$OWN" pending
lb_refused 1 lbt-opappr approve "$OWN"
lb_refused 1 lbt-opappr deny "$OWN"
step lbt-appr approve "$OWN" approved
lb_refused 1 lbt-opappr revoke "$OWN"
lb_new_request lbt-opadmin; OWN=$ID
step lbt-mgr approve "$OWN" pending
lb_refused 1 lbt-opadmin approve "$OWN"
step lbt-appr approve "$OWN" approved
lb_refused 1 lbt-opadmin revoke "$OWN"
lb_new_request lbt-opmgr
step lbt-opmgr cancel "$ID" cancelled

# ---- the manager and the approver of a request are two different people ----
lb_new_request lbt-op1; R=$ID
step lbt-mgrappr approve "$R" pending
lb_refused 1 lbt-mgrappr approve "$R"
lb_refused 1 lbt-mgrappr deny "$R"
is "$(as root lockbox show "$R" --json | jq -r .approver)" null "… and lbt-mgrappr was not recorded as approver"
step lbt-appr approve "$R" approved
pending lbt-op1
step lbt-mgrappr approve "$ID" approved
is "$(as root lockbox show "$ID" --json | jq -c '[.manager, .approver]')" '["lbt-mgr","lbt-mgrappr"]' \
   "lbt-mgrappr approves at stage 2 what another manager pre-approved"

# ---- cancel: the requester or an admin only ----
lb_new_request lbt-op1; R=$ID
lb_refused 1 lbt-mgr cancel "$R"
lb_refused 1 lbt-appr cancel "$R"
lb_refused 1 lbt-mgrappr cancel "$R"
lb_refused 3 lbt-op2 cancel "$R"
step lbt-admin cancel "$R" cancelled
pending lbt-op1
lb_refused 1 lbt-appr cancel "$ID"
step root cancel "$ID" cancelled

# ---- check: admins only; what it says about operators, others and unknown users ----
for u in lbt-op1 lbt-mgr lbt-appr lbt-mgrappr; do
        run "$u" check lbt-op1
        lb_is_error 1 "$u may not check (exit 1)"
done
run lbt-admin check lbt-op2 --json
is "$(jq -c '[.admitted, .request_id]' <<<"$OUT")" '[false,null]' "check: an operator without a grant is not admitted"
approved lbt-op2; G=$ID
run lbt-admin check lbt-op2 --json
is "$(jq -c '[.admitted, .request_id]' <<<"$OUT")" "[true,\"$G\"]" "check: an operator with a grant is admitted under it"
run root check lbt-op2 --json
is "$RC:$(jq -c .admitted <<<"$OUT")" "0:true" "root may check"
run lbt-admin check lbt-op2
like "$OUT" "^lbt-op2: admitted .*request $G until " "check (text) names the grant"
run lbt-admin revoke "$G"
run lbt-admin check lbt-op2 --json
is "$(jq -c '[.admitted, .request_id]' <<<"$OUT")" '[false,null]' "check: a revoked grant admits no more"
run lbt-admin check lbt-none --json
is "$RC:$(jq -c '[.admitted, .request_id]' <<<"$OUT")" '0:[true,null]' "check: a user in no role is not the lockbox's business (admitted)"
run lbt-admin check lbt-no-such-user
lb_is_error 2 "check of an unknown user: exit 2"

# ---- a user in no role is refused everything ----
lb_new_request lbt-op1; R=$ID
for args in "list" "list --all" "status" "show $R" "approve $R" "deny $R" "cancel $R" "revoke $R" \
            "check lbt-op1" "request --ticket SR-9 --reason nope"; do
        run lbt-none $args
        lb_is_error 1 "no role: lockbox ${args//$R/ID} → exit 1"
done
is "$(lb_state "$R")" pending-manager "… and the request was not touched"

# ---- every role may read the status ----
for u in lbt-op1 lbt-mgr lbt-appr lbt-admin root; do
        run "$u" status --json
        is "$RC:$(jq -r .tenant <<<"$OUT")" "0:contoso" "$u may read the status"
done

# ---- tenants: this host serves contoso only ----
before=$(lb_count)
lb_new_request lbt-op1 --tenant fabrikam
lb_is_error 1 "--tenant of another tenant: exit 1"
is "$(lb_count)" "$before" "… and nothing was stored"
lb_new_request lbt-op1 --tenant contoso
is "$RC:$(as root lockbox show "$ID" --json | jq -r .tenant)" "0:contoso" "--tenant contoso is accepted"

# ---- durations: min_duration 1m and max_duration 4h are enforced, with a message ----
before=$(lb_count)
lb_new_request lbt-op1 --duration 59s
lb_is_error 1 "--duration 59s (below min_duration 1m): exit 1"
like "$ERR" "duration" "… and the message says it is the duration"
lb_new_request lbt-op1 --duration 4h1s
lb_is_error 1 "--duration 4h1s (above max_duration 4h): exit 1"
like "$ERR" "duration" "… and the message says it is the duration"
lb_new_request lbt-op1 --duration 1d
lb_is_error 1 "--duration 1d (above max_duration): exit 1"
is "$(lb_count)" "$before" "nothing was stored for the refused durations"
lb_new_request lbt-op1 --duration 1m
is "$RC:$(as root lockbox show "$ID" --json | jq .duration)" "0:60" "--duration 1m (= min_duration) is accepted"
lb_new_request lbt-op1 --duration 4h
is "$RC:$(as root lockbox show "$ID" --json | jq .duration)" "0:14400" "--duration 4h (= max_duration) is accepted"

lb_done
