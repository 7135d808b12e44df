#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Integration: the audit trail (SPEC §8) in a real journald: each event's entry and fields, the
# three admin queries of §8, a catalog entry for every MESSAGE_ID, and "no audit, no access"
# (§5): with journald gone a decision or a request is not taken and the CLI exits 4.

. "$abs_top_srcdir/tests/lib/harness.sh"
lb_setup
lb_start_daemon || bail "lockboxd did not start"

ACT=Set-AccessToCustomerDataRequest
OPNAME="Microsoft Operator"
declare -a CREATED DECISIONS      # request ids filed; "event id" of each decision taken

# fields ID [EXTRA-FIELD...]: one compact JSON array per journal entry of request ID, in order:
# event, identifier, MESSAGE_ID, activity, decision, item, user, operator, tenant, ticket.
fields() {
        journal "LOCKBOX_REQUEST_ID=$1" | jq -c '[.LOCKBOX_EVENT, .SYSLOG_IDENTIFIER, .MESSAGE_ID,
                .LOCKBOX_ACTIVITY, .LOCKBOX_APPROVAL_DECISION, .LOCKBOX_ITEM, .LOCKBOX_USER,
                .LOCKBOX_OPERATOR, .LOCKBOX_TENANT, .LOCKBOX_TICKET]'
}
# want EVENT ACTIVITY DECISION ITEM USER OPERATOR TICKET: the array fields() should give.
want() {
        jq -cn --arg e "$1" --arg m "$(lb_msgid "$1")" --arg a "$2" --arg d "$3" --arg i "$4" --arg u "$5" \
                --arg o "$6" --arg t "$7" '[$e, "lockbox", $m, $a, $d, $i, $u, $o, "contoso", $t]'
}
new() {  # new USER TICKET: files a request, ID
        run "$1" request --ticket "$2" --reason "journal test"
        ID=$OUT; CREATED+=("$ID")
        [ "$RC" = 0 ] || diag "request by $1 failed (exit $RC): $ERR"
}
decide() {  # decide USER VERB ID EVENT [ARGS]: a decision that must succeed
        local user=$1 verb=$2 id=$3 event=$4; shift 4
        run "$user" "$verb" "$id" "$@"
        [ "$RC" = 0 ] || diag "$user $verb $id failed: $ERR"
        DECISIONS+=("$event $id")
}

# ---- one whole life cycle: request-created, manager-approved, approved, revoked, each with its fields ----
new lbt-op1 SR-J1; R=$ID
decide lbt-mgr approve "$R" manager-approved
decide lbt-appr approve "$R" approved --comment "ok"
EXPIRES=$(as root lockbox show "$R" --json | jq -r .expires_at)
decide lbt-appr2 revoke "$R" revoked
is "$(journal_field LOCKBOX_EVENT "LOCKBOX_REQUEST_ID=$R" | tr '\n' ' ')" "request-created manager-approved approved revoked " \
   "journalctl LOCKBOX_REQUEST_ID=<id> tells the story in order"
mapfile -t entry < <(fields "$R")
is "${entry[0]}" "$(want request-created "" "" "" "$OPNAME" lbt-op1 SR-J1)" \
   "request-created: identifier, MESSAGE_ID, user '$OPNAME', operator, tenant, ticket; no decision or item"
is "${entry[1]}" "$(want manager-approved $ACT Approve "$R" lbt-mgr lbt-op1 SR-J1)" \
   "manager-approved: $ACT, Approve, item = id, user = the manager"
is "${entry[2]}" "$(want approved $ACT Approve "$R" lbt-appr lbt-op1 SR-J1)" \
   "approved: $ACT, Approve, item = id, user = the approver"
is "${entry[3]}" "$(want revoked $ACT Revoke "$R" lbt-appr2 lbt-op1 SR-J1)" \
   "revoked: $ACT, Revoke, item = id, user = the revoking approver"
is "$(journal_field LOCKBOX_EXPIRES LOCKBOX_EVENT=approved "LOCKBOX_REQUEST_ID=$R")" "$EXPIRES" "approved: LOCKBOX_EXPIRES is the grant's expires_at"
is "$(journal_field LOCKBOX_EXPIRES LOCKBOX_EVENT=request-created "LOCKBOX_REQUEST_ID=$R")" "" "request-created: no LOCKBOX_EXPIRES yet"
is "$(journal "LOCKBOX_REQUEST_ID=$R" | jq -r --arg id "$R" 'select((.MESSAGE | contains($id)) | not) | .LOCKBOX_EVENT')" "" \
   "every entry has a readable MESSAGE naming the request"
is "$(journal_field LOCKBOX_IP "LOCKBOX_REQUEST_ID=$R" | sort -u | tr '\n' ' ')" " " "LOCKBOX_IP is empty for local callers"
is "$(journal "LOCKBOX_REQUEST_ID=$R" | jq -r '._UID + " " + ._PID' | sort -u)" "0 $LB_DAEMON_PID" \
   "the entries come from lockboxd, as root (trusted _UID and _PID)"

# ---- the decider's address comes from logind only, never from the caller's environment ----
# (lockboxd reads no other process's memory: SSH_CONNECTION, which the caller could set at
# will, is not looked at; here no logind runs, so the address is empty.)
new lbt-op2 SR-J2; R2=$ID
as lbt-mgr env SSH_CONNECTION="203.0.113.7 50000 192.0.2.1 22" "$LOCKBOX" -c "$LB_CONF" approve "$R2" >/dev/null
DECISIONS+=("manager-approved $R2")
is "$(journal_field LOCKBOX_IP LOCKBOX_EVENT=manager-approved "LOCKBOX_REQUEST_ID=$R2")" "" \
   "a decision with SSH_CONNECTION in its environment but no logind session: LOCKBOX_IP is empty"

# ---- denied at each stage, cancelled by the requester and by an admin ----
new lbt-op1 SR-J3; D1=$ID
decide lbt-mgr deny "$D1" denied --comment "no"
is "$(fields "$D1" | tail -1)" "$(want denied $ACT Deny "$D1" lbt-mgr lbt-op1 SR-J3)" "denied at stage 1: Deny by the manager"
decide lbt-appr deny "$R2" denied
is "$(fields "$R2" | tail -1)" "$(want denied $ACT Deny "$R2" lbt-appr lbt-op2 SR-J2)" "denied at stage 2: Deny by the approver"
new lbt-op1 SR-J4; C1=$ID
decide lbt-op1 cancel "$C1" cancelled
is "$(fields "$C1" | tail -1)" "$(want cancelled $ACT Cancel "$C1" "$OPNAME" lbt-op1 SR-J4)" \
   "cancelled by the requester: Cancel, user '$OPNAME', operator = the requester"
new lbt-op2 SR-J5; C2=$ID
decide lbt-mgr approve "$C2" manager-approved
decide lbt-admin cancel "$C2" cancelled
is "$(fields "$C2" | tail -1)" "$(want cancelled $ACT Cancel "$C2" lbt-admin lbt-op2 SR-J5)" "cancelled by an admin: Cancel, user = the admin"

# ---- the admin's queries of SPEC §8 ----
got=$(journal LOCKBOX_ACTIVITY=$ACT | jq -r '.LOCKBOX_EVENT + " " + .LOCKBOX_REQUEST_ID' | sort)
is "$got" "$(printf '%s\n' "${DECISIONS[@]}" | sort)" "journalctl LOCKBOX_ACTIVITY=$ACT finds exactly every decision"
got=$(journal LOCKBOX_USER="$OPNAME" LOCKBOX_EVENT=request-created | jq -r .LOCKBOX_REQUEST_ID | sort)
is "$got" "$(printf '%s\n' "${CREATED[@]}" | sort)" "journalctl LOCKBOX_USER=\"$OPNAME\" finds every request filed"
is "$(journal LOCKBOX_USER="$OPNAME" | jq -r .LOCKBOX_OPERATOR | sort -u | tr '\n' ' ')" "lbt-op1 lbt-op2 " \
   "… each naming the real operator account in LOCKBOX_OPERATOR"
is "$(journal SYSLOG_IDENTIFIER=lockbox LOCKBOX_USER=lbt-op1 | wc -l)" 0 "no entry shows an operator's real account as LOCKBOX_USER"

# ---- every entry's MESSAGE_ID is the one helper/msgid.h fixes for its event ----
MAP=$(sed -n 's/^.*{ *"\([a-z-]*\)", *"\([0-9a-f]\{32\}\)" *}.*$/\1 \2/p' "$abs_top_srcdir/helper/msgid.h")
bad=$(journal SYSLOG_IDENTIFIER=lockbox | jq -r '.LOCKBOX_EVENT + " " + .MESSAGE_ID' | sort -u |
      while read -r event id; do grep -qx "$event $id" <<<"$MAP" || echo "$event:$id"; done)
is "$bad" "" "every lockbox entry carries its event's MESSAGE_ID"
is "$(cut -d' ' -f1 <<<"$MAP" | sort | tr '\n' ' ')" \
   "$(printf '%s\n' request-created manager-approved approved denied cancelled expired revoked ended access-granted \
      access-denied session-open session-close session-terminated lockbox-enabled lockbox-disabled config-reloaded operator-exec audit-lost | sort | tr '\n' ' ')" \
   "helper/msgid.h has exactly the 18 events of SPEC §8"
is "$(cut -d' ' -f2 <<<"$MAP" | sort -u | wc -l)" 18 "… each with its own MESSAGE_ID"

# ---- the catalog: an entry for every MESSAGE_ID, shown by journalctl -x ----
CAT=$LB_TMP/catalog-root
mkdir -p "$CAT/usr/lib/systemd/catalog" "$CAT/var/lib/systemd/catalog"
cp "$abs_top_srcdir/conf/lockbox.catalog" "$CAT/usr/lib/systemd/catalog/"
journalctl --root="$CAT" --update-catalog 2>"$LB_TMP/catalog.err"
is "$?:$(cat "$LB_TMP/catalog.err")" "0:" "journalctl --update-catalog accepts conf/lockbox.catalog without a complaint"
LISTED=$(journalctl --root="$CAT" --list-catalog 2>/dev/null)
missing=$(cut -d' ' -f2 <<<"$MAP" | while read -r id; do grep -q "^$id " <<<"$LISTED" || echo "$id"; done)
is "$missing" "" "journalctl --list-catalog lists every MESSAGE_ID of helper/msgid.h"
is "$(wc -l <<<"$LISTED")" 18 "… and nothing else"
if [ -d /var/lib/systemd/catalog ] && mount --bind "$CAT/var/lib/systemd/catalog" /var/lib/systemd/catalog; then
        x=$(journalctl --no-pager -x "LOCKBOX_REQUEST_ID=$R" 2>/dev/null)
        like "$x" "Subject: An operator filed an access request" "journalctl -x explains request-created"
        is "$(grep -c 'Defined-By: pam_lockbox' <<<"$x")" 4 "journalctl -x explains all four entries of the life cycle"
        like "$x" "Operator lbt-op1 asked for access" "… with the entry's fields filled in"
        umount /var/lib/systemd/catalog
else
        ok 0 "# SKIP cannot put the test catalog in place for journalctl -x"
fi

# ---- no audit, no access: with journald gone, decisions and requests are not taken (exit 4) ----
# no_audit HOW: journald stopped ("dead": its socket left behind, nobody reading) or gone
# entirely ("gone": no socket either); every decision and a new request must be refused with
# exit 4 and change nothing, and a root AccessCheck (the PAM module's call) must fail closed.
no_audit() {
        local how=$1 P Q A total
        new lbt-op1 SR-N1; P=$ID                                  # pending-manager
        new lbt-op1 SR-N2; Q=$ID; run lbt-mgr approve "$Q"        # pending
        new lbt-op2 SR-N3; A=$ID; run lbt-mgr approve "$A"; run lbt-appr approve "$A"   # approved
        is "$(lb_state "$P") $(lb_state "$Q") $(lb_state "$A")" "pending-manager pending approved" \
           "journal $how: set-up (a pending-manager, a pending and an approved request)"
        total=$(lb_count)
        lb_stop_journald
        [ "$how" = gone ] && lb_remove_journal_sockets
        run lbt-mgr approve "$P"
        lb_is_error 4 "journal $how: a manager's approve → exit 4"
        run lbt-appr approve "$Q"
        lb_is_error 4 "journal $how: an approver's approve → exit 4"
        run lbt-appr deny "$Q"
        lb_is_error 4 "journal $how: deny → exit 4"
        run lbt-op1 cancel "$P"
        lb_is_error 4 "journal $how: cancel → exit 4"
        run lbt-appr revoke "$A"
        lb_is_error 4 "journal $how: revoke → exit 4"
        run lbt-op1 request --ticket SR-N4 --reason "no journal"
        lb_is_error 4 "journal $how: request → exit 4"
        if lb_have_bus_tool; then
                lb_bus root AccessCheck string:lbt-op2 string:sshd string: string:
                like "$BUS_ERR" "^Error org.lockbox.Error.Failed" \
                     "journal $how: AccessCheck (the PAM module's call) fails, the operator with a grant is not admitted"
        else
                ok 0 "# SKIP $LB_BUS_WHY_NOT"
        fi
        lb_start_journald
        is "$(lb_state "$P") $(lb_state "$Q") $(lb_state "$A")" "pending-manager pending approved" \
           "journal $how, then back: every request is in the state it had"
        is "$(lb_count)" "$total" "… and no request was stored"
        run lbt-mgr approve "$P"
        is "$RC:$(lb_state "$P")" "0:pending" "… and with the journal back the same approve is taken"
        is "$(journal_field LOCKBOX_EVENT LOCKBOX_REQUEST_ID="$P" | tr '\n' ' ')" "request-created manager-approved " \
           "… and audited, once"
}
no_audit dead
no_audit gone

lb_done
