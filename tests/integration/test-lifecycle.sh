#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Integration: the request life cycle (SPEC §3, §4) through a real lockboxd and the real lockbox
# CLI run as real users: every legal transition, every illegal one refused, id prefixes, list
# filters and the exact JSON of show/list/check/status. Two stages first, then one stage.

. "$abs_top_srcdir/tests/lib/harness.sh"
lb_setup
lb_start_daemon || bail "lockboxd did not start"

UUID_RE='^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
TIME_RE='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$'
REQUEST_KEYS='["id","tenant","requester","ticket","reason","duration","state","created_at","decided_at","manager","approver","comment","expires_at"]'
STATES="pending-manager pending approved denied cancelled expired ended revoked"

declare -A EXPECT     # id -> the state every acknowledged step so far should have left it in

# show ID: request ID as root sees it, JSON.
show() { as root lockbox show "$1" --json 2>/dev/null; }

# step USER VERB ID WANT-STATE [ARGS...]: a legal step: exit 0 and the request is now WANT-STATE.
step() {
        local user=$1 verb=$2 id=$3 want=$4; shift 4
        local state
        run "$user" "$verb" "$id" "$@"
        state=$(lb_state "$id")
        if [ "$RC" = 0 ] && [ "$state" = "$want" ] && [ -z "$ERR" ]; then
                ok 0 "$user: $verb -> $want"
        else
                ok 1 "$user: $verb -> $want"
                printf '#   got: exit %s, state %s, stderr: %s\n' "$RC" "$state" "$ERR"
        fi
        # a prefix stands for the full id it resolved to
        local full
        full=$(show "$id" | jq -r .id)
        EXPECT[${full:-$id}]=$want
}

# new USER [OPTIONS...]: files a request (ID), expected in STATE0.
STATE0=pending-manager
new() {
        lb_new_request "$@"
        [ -n "$ID" ] && EXPECT[$ID]=$STATE0
}

# ---- `request` prints the new id alone on stdout: 36 chars of lower-case uuid and a newline ----
as lbt-op1 lockbox request --ticket SR-100 --reason "first request" >"$LB_TMP/out" 2>"$LB_TMP/err"
is "$?" 0 "request by an operator exits 0"
FIRST=$(cat "$LB_TMP/out")
like "$FIRST" "$UUID_RE" "request prints a lower-case uuid"
is "$(wc -c <"$LB_TMP/out")" 37 "stdout is exactly the 36-char id and a newline"
is "$(wc -c <"$LB_TMP/err")" 0 "request writes nothing to stderr"
EXPECT[$FIRST]=pending-manager

# A grant of 1 s, filed and approved now, is 'ended' by the time the illegal transitions run.
new lbt-op2 --duration 1s
SHORT=$ID
step lbt-mgr approve "$SHORT" pending
run lbt-appr approve "$SHORT"
like "$RC:$(lb_state "$SHORT")" "^0:(approved|ended)$" "lbt-appr: approve a 1 s grant"
EXPECT[$SHORT]=ended

# ---- a new request is pending-manager, with exactly the SPEC keys and nothing decided yet ----
J=$(show "$FIRST")
is "$(jq -c keys_unsorted <<<"$J")" "$REQUEST_KEYS" "show --json: exactly the SPEC keys, in order"
is "$(jq -c '[.id, .tenant, .requester, .ticket, .reason, .duration, .state]' <<<"$J")" \
   "[\"$FIRST\",\"contoso\",\"lbt-op1\",\"SR-100\",\"first request\",3600,\"pending-manager\"]" \
   "show --json: id, tenant, requester, ticket, reason, default duration 3600 s, pending-manager"
is "$(jq -c '[.decided_at, .manager, .approver, .comment, .expires_at]' <<<"$J")" "[null,null,null,null,null]" \
   "show --json: decided_at, manager, approver, comment, expires_at are null"
like "$(jq -r .created_at <<<"$J")" "$TIME_RE" "created_at is RFC 3339 UTC"
delta=$(( $(date +%s) - $(jq '.created_at | fromdateiso8601' <<<"$J") ))
ok "$([ "$delta" -ge 0 ] && [ "$delta" -le 30 ]; echo $?)" "created_at is now (off by ${delta}s)"

# ---- two stages: pending-manager -> pending (manager) -> approved (approver) -> revoked ----
step lbt-mgr approve "$FIRST" pending
like "$OUT" "^Request $FIRST pre-approved" "manager's approve says pre-approved"
J=$(show "$FIRST")
is "$(jq -c '[.manager, .approver, .expires_at]' <<<"$J")" '["lbt-mgr",null,null]' \
   "after stage 1: manager recorded, no approver, no expiry"
step lbt-appr approve "$FIRST" approved --comment "go ahead"
like "$OUT" "^Request $FIRST approved: access until [0-9T:Z-]+$" "approver's approve says until when"
J=$(show "$FIRST")
is "$(jq -c '[.manager, .approver, .comment]' <<<"$J")" '["lbt-mgr","lbt-appr","go ahead"]' \
   "after stage 2: manager, approver and comment recorded"
like "$(jq -r '.decided_at + " " + .expires_at' <<<"$J")" "^[0-9T:-]+Z [0-9T:-]+Z$" "decided_at and expires_at are RFC 3339 UTC"
is "$(jq '(.expires_at | fromdateiso8601) - (.decided_at | fromdateiso8601)' <<<"$J")" 3600 \
   "expires_at = decided_at + duration"
delta=$(( $(date +%s) - $(jq '.decided_at | fromdateiso8601' <<<"$J") ))
ok "$([ "$delta" -ge 0 ] && [ "$delta" -le 30 ]; echo $?)" "decided_at is the time of the final approval"
step lbt-appr2 revoke "$FIRST" revoked --comment "work done"
is "$(show "$FIRST" | jq -r .comment)" "work done" "revoke records its comment"

# ---- durations: 1h30m, a bare number of seconds, 15m are stored in whole seconds ----
new lbt-op1 --duration 1h30m
is "$(show "$ID" | jq .duration)" 5400 "--duration 1h30m is 5400 s"
new lbt-op1 --duration 90
is "$(show "$ID" | jq .duration)" 90 "--duration 90 is 90 s"
new lbt-op1 --duration 15m
is "$(show "$ID" | jq .duration)" 900 "--duration 15m is 900 s"

# ---- deny at each stage ----
new lbt-op1; D1=$ID
step lbt-mgr deny "$D1" denied --comment "no ticket"
is "$(show "$D1" | jq -c '[.manager, .approver, .comment, .expires_at, (.decided_at != null)]')" \
   '["lbt-mgr",null,"no ticket",null,true]' "manager's stage-1 deny: manager recorded, decided, no expiry"
new lbt-op1; D2=$ID
step lbt-appr deny "$D2" denied
is "$(show "$D2" | jq -c '[.manager, .approver]')" '[null,"lbt-appr"]' "the customer may deny at stage 1: approver recorded"
new lbt-op1; D3=$ID
step lbt-mgr approve "$D3" pending
step lbt-appr deny "$D3" denied --comment "not now"
is "$(show "$D3" | jq -c '[.manager, .approver, .comment, .expires_at]')" '["lbt-mgr","lbt-appr","not now",null]' \
   "stage-2 deny: manager and approver recorded, no expiry"
new lbt-op1; D4=$ID
step lbt-mgr2 approve "$D4" pending
step lbt-admin deny "$D4" denied

# ---- cancel at each pending stage, by the requester and by an admin ----
new lbt-op1; C1=$ID
step lbt-op1 cancel "$C1" cancelled
is "$OUT" "Request $C1 is now cancelled" "cancel reports the new state"
new lbt-op1; C2=$ID
step lbt-admin cancel "$C2" cancelled
new lbt-op1; C3=$ID
step lbt-mgr approve "$C3" pending
step lbt-op1 cancel "$C3" cancelled
new lbt-op1; C4=$ID
step lbt-mgr approve "$C4" pending
step lbt-admin cancel "$C4" cancelled
is "$(show "$C4" | jq -c '[(.decided_at != null), .expires_at]')" '[true,null]' "a cancelled request is decided and never expires"

# ---- illegal transitions on live requests: refused with exit 1, state unchanged ----
new lbt-op1; A=$ID
step lbt-mgr approve "$A" pending
step lbt-appr approve "$A" approved
lb_refused 1 lbt-appr2 approve "$A"
lb_refused 1 lbt-mgr2 approve "$A"
lb_refused 1 lbt-appr2 deny "$A"
lb_refused 1 lbt-op1 cancel "$A"
lb_refused 1 lbt-admin cancel "$A"
new lbt-op1; P=$ID
lb_refused 1 lbt-appr revoke "$P"           # pending-manager
step lbt-mgr approve "$P" pending
lb_refused 1 lbt-appr revoke "$P"           # pending
lb_refused 1 lbt-admin revoke "$P"
lb_refused 1 lbt-mgr2 approve "$P"          # stage 1 is done: a manager cannot act again

# ---- ids: crafted rows (daemon stopped) sharing prefixes, and a pending one long past its timeout ----
lb_stop_daemon
OP1_UID=$(id -u lbt-op1); OP2_UID=$(id -u lbt-op2); NOW=$(date +%s)
row() { # id requester uid state created_at
        echo "INSERT INTO requests (id, tenant, requester, requester_uid, ticket, reason, duration, state, created_at)
              VALUES ('$1', 'contoso', '$2', $3, 'SR-X', 'crafted', 3600, '$4', $5);"
}
AMB1=abcdef01-0000-4000-8000-000000000001
AMB2=abcdef01-0000-4000-8000-000000000002
OWN1=abcdef02-0000-4000-8000-000000000001
OWN2=abcdef02-0000-4000-8000-000000000002
EXP=e0000000-0000-4000-8000-000000000001
FAB=fab00000-0000-4000-8000-000000000001     # lbt-op2's live grant, but for another tenant
lb_sql "$(row $AMB1 lbt-op1 "$OP1_UID" pending-manager "$NOW")
        $(row $AMB2 lbt-op1 "$OP1_UID" pending-manager "$NOW")
        $(row $OWN1 lbt-op1 "$OP1_UID" pending-manager "$NOW")
        $(row $OWN2 lbt-op2 "$OP2_UID" pending-manager "$NOW")
        $(row $EXP lbt-op1 "$OP1_UID" pending-manager $((NOW - 13 * 3600)))
        INSERT INTO requests (id, tenant, requester, requester_uid, ticket, reason, duration, state, created_at,
                              decided_at, manager, approver, expires_at)
        VALUES ('$FAB', 'fabrikam', 'lbt-op2', $OP2_UID, 'SR-F', 'crafted', 3600, 'approved', $NOW,
                $NOW, 'lbt-mgr', 'lbt-appr', $((NOW + 3600)));"
ok "$?" "crafted rows inserted into the store"
EXPECT[$AMB1]=pending-manager; EXPECT[$AMB2]=pending-manager
EXPECT[$OWN1]=pending-manager; EXPECT[$OWN2]=pending-manager
EXPECT[$EXP]=expired; EXPECT[$FAB]=approved
lb_start_daemon || bail "lockboxd did not restart"

run lbt-admin show abcdef01
lb_is_error 2 "ambiguous 8-char prefix: exit 2"
run lbt-admin show abcdef01-0000-4000-8000-00000000000
lb_is_error 2 "ambiguous 35-char prefix: exit 2"
run lbt-mgr approve abcdef01
lb_is_error 2 "approve with an ambiguous prefix: exit 2"
is "$(lb_state $AMB1) $(lb_state $AMB2)" "pending-manager pending-manager" "approve with an ambiguous prefix changed nothing"
run lbt-op1 show abcdef01
lb_is_error 2 "ambiguous among the operator's own requests: exit 2"
run lbt-admin show abcdef02
lb_is_error 2 "ambiguous for an admin who sees both: exit 2"
run lbt-op1 show abcdef02 --json
is "$RC:$(jq -r .id <<<"$OUT" 2>/dev/null)" "0:$OWN1" "an operator's prefix resolves among their own requests only"
run lbt-op2 show abcdef02 --json
is "$RC:$(jq -r .id <<<"$OUT" 2>/dev/null)" "0:$OWN2" "the same prefix resolves to the other operator's own request"
step lbt-mgr approve "$AMB2" pending
is "$(lb_state $AMB1)" pending-manager "the full id decides only that request"

new lbt-op1; U=$ID
run lbt-admin show "${U:0:8}" --json
is "$RC:$(jq -r .id <<<"$OUT" 2>/dev/null)" "0:$U" "show with a unique 8-char prefix"
step lbt-mgr approve "${U:0:8}" pending
is "$(lb_state "$U")" pending "approve with a unique 8-char prefix decided that request"
step lbt-appr deny "${U:0:13}" denied
for verb in show approve deny cancel revoke; do
        run lbt-admin "$verb" "${U:0:7}"
        lb_is_error 2 "$verb with a 7-char prefix: exit 2"
done
run lbt-admin show "${U}0"
lb_is_error 2 "37-char id: exit 2"
run lbt-admin show ffffffff-ffff-4fff-bfff-ffffffffffff
lb_is_error 3 "show of an unknown id: exit 3"
run lbt-appr approve ffffffff-ffff-4fff-bfff-ffffffffffff
lb_is_error 3 "approve of an unknown id: exit 3"
run lbt-op1 cancel ffffffff
lb_is_error 3 "cancel of an unknown 8-char prefix: exit 3"

# ---- final states: nothing moves a denied, cancelled, expired, ended or revoked request ----
is "$(lb_state "$EXP")" expired "a pending request past request_timeout is expired"
lb_wait_until 5 '[ "$(lb_state "$SHORT")" = ended ]'
ok "$?" "a 1 s grant is ended"
EXPECT[$SHORT]=ended
for id in "$D1" "$C1" "$EXP" "$SHORT" "$FIRST"; do
        owner=$(show "$id" | jq -r .requester)
        lb_refused 1 lbt-mgr approve "$id"
        lb_refused 1 lbt-appr approve "$id"
        lb_refused 1 lbt-appr deny "$id"
        lb_refused 1 "$owner" cancel "$id"
        lb_refused 1 lbt-admin cancel "$id"
        lb_refused 1 lbt-appr revoke "$id"
done

# ---- list: default = pending and approved, --all, --state X, and the bad combinations ----
# ids ROOT-LIST-ARGS...: the sorted ids `lockbox list ARGS --json` gives root
ids() { as root lockbox list "$@" --json | jq -r '.[].id' | sort | tr '\n' ' '; }
want_ids() { local id s; for id in "${!EXPECT[@]}"; do
                for s in "$@"; do [ "${EXPECT[$id]}" = "$s" ] && echo "$id"; done
             done | sort | tr '\n' ' '; }
is "$(ids)" "$(want_ids pending-manager pending approved)" "list: pending-manager, pending and approved only"
is "$(ids --all)" "$(want_ids $STATES)" "list --all: every request"
for s in $STATES; do
        is "$(ids --state "$s")" "$(want_ids "$s")" "list --state $s: exactly the $s requests"
done
run lbt-admin list
text_ids=$(grep -oE '^[0-9a-f-]{36}' <<<"$OUT" | sort | tr '\n' ' ')
is "$text_ids" "$(want_ids pending-manager pending approved)" "list (text): the same requests, one line each"
run lbt-admin list --state bogus
lb_is_error 2 "list --state bogus: exit 2"
run lbt-admin list --all --state pending
lb_is_error 2 "list --all --state pending: exit 2"
run lbt-admin list --state
lb_is_error 2 "list --state without a value: exit 2"

# ---- JSON of list, check and status: exact keys, RFC 3339 UTC or null, whole seconds ----
L=$(as root lockbox list --all --json)
is "$(jq -c 'map(keys_unsorted) | unique' <<<"$L")" "[$REQUEST_KEYS]" "list --json: every object has exactly the SPEC keys, in order"
is "$(jq --arg re "$TIME_RE" 'all(.[]; (.created_at | test($re)) and
        all(.decided_at, .expires_at; . == null or test($re)))' <<<"$L")" true "list --json: times are RFC 3339 UTC or null"
is "$(jq 'all(.[]; (.duration | type) == "number" and .duration == (.duration | floor) and .duration > 0)' <<<"$L")" true \
   "list --json: durations are whole seconds"
is "$(jq '[.[] | select(.state == "approved")] | length > 0 and
        all((.expires_at | fromdateiso8601) - (.decided_at | fromdateiso8601) == .duration)' <<<"$L")" true \
   "list --json: every approved request expires at decided_at + duration"
is "$(jq 'all(.[]; ((.state | IN("approved","ended","revoked")) | not) as $never | ($never | not) or .expires_at == null)' <<<"$L")" true \
   "list --json: only requests that were approved carry expires_at"

run lbt-admin check lbt-op1 --json
is "$(jq -c keys_unsorted <<<"$OUT")" '["user","admitted","reason","request_id","expires_at"]' "check --json: exactly the SPEC keys, in order"
is "$(jq -c '[.user, .admitted, .request_id, .expires_at]' <<<"$OUT")" \
   "[\"lbt-op1\",true,\"$A\",$(show "$A" | jq -c .expires_at)]" "check --json: admitted under the approved request, until its expiry"
is "$(jq -r '.reason | type' <<<"$OUT")" string "check --json: reason is text"
run lbt-admin check lbt-op2 --json
is "$(jq -c '[.user, .admitted, .request_id, .expires_at]' <<<"$OUT")" '["lbt-op2",false,null,null]' \
   "check --json: not admitted (a grant for another tenant counts for nothing), request_id and expires_at null"

run lbt-admin status --json
is "$(jq -c keys_unsorted <<<"$OUT")" '["enabled","tenant","version","counts","store"]' "status --json: exactly the SPEC keys, in order (store: SPEC §10)"
is "$(jq -c '[.enabled, .tenant, .version]' <<<"$OUT")" "[true,\"contoso\",\"$("$LOCKBOXD" --version | awk '{print $2}')\"]" \
   "status --json: enabled, tenant, the helper's version"
want_counts=$(for s in $STATES; do printf '"%s":%s\n' "$s" "$(want_ids "$s" | wc -w)"; done | paste -sd, -)
is "$(jq -c '.counts' <<<"$OUT")" "{$want_counts}" "status --json: counts by state match the requests"
is "$(jq -c '.store' <<<"$OUT")" '{"backend":"sqlite"}' "status --json: the store is this host's SQLite"
run lbt-admin status
like "$OUT" $'\nStore: +sqlite' "status: names the store"

# ---- one stage: require_manager_approval = false (new config, daemon restarted) ----
total=$(lb_count)
lb_write_config 'require_manager_approval = false;'
lb_restart_daemon || bail "lockboxd did not restart with the one-stage config"
is "$(lb_count)" "$total" "requests survive the restart"
STATE0=pending
new lbt-op1; S1=$ID
is "$(lb_state "$S1")" pending "without manager approval a request starts pending"
lb_refused 1 lbt-mgr approve "$S1"
step lbt-appr approve "$S1" approved
is "$(show "$S1" | jq -c '[.manager, .approver, ((.expires_at | fromdateiso8601) - (.decided_at | fromdateiso8601))]')" \
   '[null,"lbt-appr",3600]' "one stage: no manager, approver recorded, expires_at = decided_at + duration"
step lbt-admin revoke "$S1" revoked
new lbt-op1; S2=$ID
step lbt-appr deny "$S2" denied
new lbt-op1; S3=$ID
step lbt-op1 cancel "$S3" cancelled
new lbt-op1; S4=$ID
step lbt-admin cancel "$S4" cancelled
new lbt-op1; S5=$ID
step lbt-admin approve "$S5" approved
lb_refused 1 lbt-appr approve "$S5"

# ---- done: an operator ends their own grant early (approved -> ended) ----
new lbt-op1; D1=$ID
step lbt-appr approve "$D1" approved
lb_refused 3 lbt-op2 done "$D1"
lb_refused 1 lbt-appr done "$D1"
lb_refused 1 lbt-admin done "$D1"
since=$(lb_journal_mark)
step lbt-op1 done "$D1" ended
is "$(show "$D1" | jq -r '(.expires_at | fromdateiso8601) <= now')" true "done: the grant's end is now"
is "$(journal_since "$since" LOCKBOX_EVENT=ended LOCKBOX_REQUEST_ID="$D1" | jq -r '"\(.LOCKBOX_USER)|\(.LOCKBOX_OPERATOR)|\(.LOCKBOX_APPROVAL_DECISION)|\(.MESSAGE)"')" \
   "Microsoft Operator|lbt-op1||Access granted by request $D1 to lbt-op1 ended by the operator" \
   "done: audited once as ended, by the operator"
lb_refused 1 lbt-op1 done "$D1"
for id in $(as root lockbox list --state approved --json | jq -r '.[] | select(.requester == "lbt-op1") | .id'); do
        step lbt-admin revoke "$id" revoked
done
new lbt-op1; D2=$ID
step lbt-appr approve "$D2" approved
run lbt-op1 done
is "$RC:$OUT" "0:Request $D2 ended: your access under it has ended" "done without an id ends the operator's active grant"
EXPECT[$D2]=ended
is "$(lb_state "$D2")" ended "… which is now ended"
run lbt-op1 done
is "$RC:$ERR" "3:lockbox: you have no active grant on this host" "done with no active grant: exit 3"
run lbt-op1 done "$D1" "$D2"
is "$RC" 2 "done takes at most one id"

# ---- request --wait: the operator waits for the decision, told of each change ----
# wait_start NAME: lbt-op2 files with --wait in the background; its id in W, its pid in WAITER.
wait_start() {
        as lbt-op2 lockbox request --ticket "SR-$1" --reason "waits for the decision" --wait \
                >"$LB_TMP/$1.out" 2>"$LB_TMP/$1.err" &
        WAITER=$!
        lb_wait_for 5 test -s "$LB_TMP/$1.out"
        W=$(head -1 "$LB_TMP/$1.out")
        EXPECT[$W]=$STATE0
        lb_wait_for 5 test -s "$LB_TMP/$1.err"
}
wait_start W1
ok "$(sleep 0.3; kill -0 "$WAITER"; echo $?)" "request --wait: still waiting while the request is pending"
t0=$(lb_now_ms)
step lbt-appr approve "$W" approved
wait "$WAITER"
rc=$?
diag "approve -> the waiting lockbox request returned in $(($(lb_now_ms) - t0)) ms"
is "$rc" 0 "request --wait: exit 0 once approved"
like "$(cat "$LB_TMP/W1.err")" "^Request $W awaits the customer's approver"$'\n'"Request $W approved by lbt-appr: access until [0-9T:-]+Z$" \
        "request --wait: each state on stderr as it comes"
wait_start W2
step lbt-appr deny "$W" denied
wait "$WAITER"
is "$?" 1 "request --wait: exit 1 once denied"
like "$(tail -1 "$LB_TMP/W2.err")" "^Request $W is denied$" "… and says so"
wait_start W3
kill -TERM "$WAITER"; wait "$WAITER" 2>/dev/null
step lbt-op2 cancel "$W" cancelled
run lbt-admin status
is "$RC" 0 "a waiting caller that went away leaves lockboxd answering"

# ---- every request is exactly in the state its acknowledged steps left it ----
bad=""
for id in "${!EXPECT[@]}"; do
        [ "$(lb_state "$id")" = "${EXPECT[$id]}" ] || bad="$bad $id:${EXPECT[$id]}->$(lb_state "$id")"
done
is "$bad" "" "no request moved except by the steps above"

lb_done
