#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Integration: time (SPEC §3, DESIGN "Time"): undecided requests expire after request_timeout and
# grants end at expires_at, by the daemon's own timers and audited; what ran out while the daemon
# was down is settled at start-up; every acknowledged decision survives a restart and a SIGKILL.
# request_timeout is 3 s and min_duration 1 s here, so nothing waits long. Under valgrind
# (LB_VALGRIND=1: every call is slow) all times are stretched by K = 4.

K=1; [ -n "${LB_VALGRIND:-}" ] && K=4
TIMEOUT=$((3 * K))                # request_timeout, seconds
LATE=$((1 * K))                   # how late after its deadline a timer may fire, seconds
LB_REQUEST_TIMEOUT=${TIMEOUT}s
. "$abs_top_srcdir/tests/lib/harness.sh"
lb_setup
lb_start_daemon || bail "lockboxd did not start"

# audited EVENT ID: the journal holds a LOCKBOX_EVENT=EVENT entry for request ID.
audited() { [ -n "$(journal_field LOCKBOX_EVENT "LOCKBOX_EVENT=$1" "LOCKBOX_REQUEST_ID=$2")" ]; }
# audit_time EVENT ID: when that entry reached the journal, in µs since the epoch.
audit_time() { journal_field __REALTIME_TIMESTAMP "LOCKBOX_EVENT=$1" "LOCKBOX_REQUEST_ID=$2" | head -1; }
# epoch ID FIELD: a time field of request ID, in seconds since the epoch.
epoch() { as root lockbox show "$1" --json | jq --arg f "$2" '.[$f] | fromdateiso8601'; }
# within LOW HIGH VALUE: LOW <= VALUE <= HIGH (integers).
within() { [ -n "$3" ] && [ "$3" -ge "$1" ] && [ "$3" -le "$2" ]; }
# grant USER DURATION: a request of USER approved through both stages now, in ID.
grant() {
        lb_new_request "$1" --duration "$2"
        run lbt-mgr approve "$ID" && run lbt-appr approve "$ID"
}

# ---- an undecided request expires by itself after request_timeout, audited as expired ----
lb_new_request lbt-op1; P=$ID
created=$(epoch "$P" created_at)
lb_new_request lbt-op2; P2=$ID
run lbt-mgr approve "$P2"           # pre-approval does not restart the clock
# No client call until the journal shows it: the daemon's timer, not a call, must settle it.
lb_wait_for $((TIMEOUT + 5 * K)) audited expired "$P"
ok "$?" "the pending-manager request is audited as expired without any call"
lb_wait_for $((3 * K)) audited expired "$P2"
ok "$?" "the pre-approved (pending) request is audited as expired too"
t=$(audit_time expired "$P")
ok "$(within $(( (created + TIMEOUT) * 1000000 )) $(( (created + TIMEOUT + LATE) * 1000000 )) "$t"; echo $?)" \
   "expired at created_at + request_timeout (created $created, audited at ${t:-never} µs)"
is "$(journal_field MESSAGE_ID LOCKBOX_EVENT=expired "LOCKBOX_REQUEST_ID=$P")" "$(lb_msgid expired)" "the expired entry has the expired MESSAGE_ID"
is "$(journal_field LOCKBOX_OPERATOR LOCKBOX_EVENT=expired "LOCKBOX_REQUEST_ID=$P")" lbt-op1 "… and names the operator"
is "$(lb_state "$P") $(lb_state "$P2")" "expired expired" "both requests are expired"
lb_refused 1 lbt-mgr approve "$P"
lb_refused 1 lbt-appr approve "$P2"
lb_refused 1 lbt-op1 cancel "$P"
run lbt-admin check lbt-op1 --json
is "$(jq -c '[.admitted, .request_id]' <<<"$OUT")" '[false,null]' "an expired request grants nothing"
run lbt-admin list --json
is "$(jq --arg a "$P" --arg b "$P2" '[.[].id] | index($a) == null and index($b) == null' <<<"$OUT")" true \
   "expired requests are not in the default list"

# ---- a 2 s grant is approved, admits, then ends by itself within 1 s of expires_at ----
grant lbt-op1 $((2 * K))s; G=$ID
is "$(lb_state "$G")" approved "a --duration $((2 * K))s request is approved"
run lbt-admin check lbt-op1 --json
is "$(jq -c '[.admitted, .request_id]' <<<"$OUT")" "[true,\"$G\"]" "check: admitted under the 2 s grant"
expires=$(epoch "$G" expires_at)
is "$((expires - $(epoch "$G" decided_at)))" $((2 * K)) "expires_at = decided_at + duration"
lb_wait_for $((6 * K)) audited ended "$G"
ok "$?" "the grant is audited as ended without any call"
t=$(audit_time ended "$G")
ok "$(within $((expires * 1000000)) $(( (expires + LATE) * 1000000 )) "$t"; echo $?)" \
   "ended within $LATE s after expires_at (expires $expires, audited at ${t:-never} µs)"
is "$(journal_field MESSAGE_ID LOCKBOX_EVENT=ended "LOCKBOX_REQUEST_ID=$G")" "$(lb_msgid ended)" "the ended entry has the ended MESSAGE_ID"
is "$(lb_state "$G")" ended "the grant is ended"
run lbt-admin check lbt-op1 --json
is "$(jq -c '[.admitted, .request_id, .expires_at]' <<<"$OUT")" '[false,null,null]' "check: not admitted after the end"
lb_refused 1 lbt-appr revoke "$G"

# ---- what runs out while the daemon is down is settled at start-up, before any call, and audited ----
# Both deadlines lie TIMEOUT s ahead and the daemon stops right after the second is set, so even
# a slow build (ASan) stops it first; that it did is checked once the deadlines can be read again.
total=$(( $(lb_count) + 2 ))                         # with the two requests made next
grant lbt-op2 ${TIMEOUT}s; DG=$ID                    # ends TIMEOUT s from now
lb_new_request lbt-op2; DP=$ID                       # times out TIMEOUT s from now
lb_stop_daemon
stopped=$(date +%s)
is "$LB_DAEMON_STATUS" 0 "lockboxd stops on SIGTERM with status 0"
sleep $((TIMEOUT + 1))
ok "$( ! audited expired "$DP" && ! audited ended "$DG"; echo $?)" "nothing was settled while the daemon was down"
lb_spawn_daemon || bail "lockboxd did not restart"
lb_wait_for $((5 * K)) audited expired "$DP"
ok "$?" "at start-up, the request that timed out meanwhile is audited as expired (no call made)"
lb_wait_for $((2 * K)) audited ended "$DG"
ok "$?" "at start-up, the grant that ran out meanwhile is audited as ended (no call made)"
is "$(journal_field _PID LOCKBOX_EVENT=ended "LOCKBOX_REQUEST_ID=$DG")" "$LB_DAEMON_PID" "… by the new daemon"
is "$(lb_state "$DP") $(lb_state "$DG")" "expired ended" "the two requests are expired and ended"
ok "$([ "$stopped" -lt "$(epoch "$DG" expires_at)" ] && [ "$stopped" -lt $(( $(epoch "$DP" created_at) + TIMEOUT )) ]; echo $?)" \
   "… and both deadlines were still ahead when the daemon stopped (stopped at $stopped)"
is "$(lb_count)" "$total" "every request survived the restart"
is "$(as root lockbox list --all --json | jq length)" "$total" "… and is listed"

# ---- SIGKILL: every acknowledged decision is there after a restart; timers are re-armed ----
declare -A WANT
lb_new_request lbt-op1; id=$ID
run lbt-mgr approve "$id" && run lbt-appr approve "$id" && WANT[$id]=approved; LONG=$id
lb_new_request lbt-op1; id=$ID
run lbt-mgr deny "$id" && WANT[$id]=denied
lb_new_request lbt-op2; id=$ID
run lbt-op2 cancel "$id" && WANT[$id]=cancelled
lb_new_request lbt-op2; id=$ID
run lbt-mgr approve "$id" && run lbt-appr deny "$id" && WANT[$id]=denied
lb_new_request lbt-op2; id=$ID
run lbt-mgr approve "$id" && run lbt-appr approve "$id" && run lbt-appr2 revoke "$id" && WANT[$id]=revoked
grant lbt-op2 $((4 * K))s; SOON=$ID
soon_expires=$(epoch "$SOON" expires_at)
is "${#WANT[@]}" 5 "five decisions acknowledged (exit 0)"
lb_stop_daemon KILL
ok "$([ -S "$LB_SOCKET" ]; echo $?)" "after SIGKILL the socket file is left behind"
lb_start_daemon
ok "$?" "lockboxd starts again over the stale socket"
bad=""
for id in "${!WANT[@]}"; do
        [ "$(lb_state "$id")" = "${WANT[$id]}" ] || bad="$bad $id:${WANT[$id]}->$(lb_state "$id")"
done
is "$bad" "" "every acknowledged decision survived SIGKILL"
for id in "${!WANT[@]}"; do
        audited "${WANT[$id]}" "$id" || bad="$bad $id:${WANT[$id]}"
done
is "$bad" "" "… and each was audited"
run lbt-admin check lbt-op1 --json
is "$(jq -c '[.admitted, .request_id]' <<<"$OUT")" "[true,\"$LONG\"]" "the 1 h grant still admits after SIGKILL"
lb_wait_for $((8 * K)) audited ended "$SOON"
ok "$?" "a grant approved before the SIGKILL still ends on time by the new daemon's timer"
t=$(audit_time ended "$SOON")
ok "$(within $((soon_expires * 1000000)) $(( (soon_expires + LATE) * 1000000 )) "$t"; echo $?)" \
   "… within $LATE s after its expires_at"

lb_done
