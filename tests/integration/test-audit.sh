#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Integration: `lockbox audit` (SPEC §4) in a real journald. Any local user (and any root
# process) can send journald an entry with lockbox's SYSLOG_IDENTIFIER, MESSAGE_IDs and
# LOCKBOX_* fields; `lockbox audit` shows only the entries journald itself attributes to
# lockboxd (_UID=0 and lockboxd's executable), the documented journalctl queries (with
# _UID=0) leave out every non-root forger, visibility follows `show`, and an answer is bounded.

. "$abs_top_srcdir/tests/lib/harness.sh"
lb_setup
lb_start_daemon || bail "lockboxd did not start"
command -v python3 >/dev/null || bail "python3 is needed to forge journal entries"

# events: the LOCKBOX_EVENTs of lockbox audit --json output (OUT), space-separated.
events() { jq -r .event <<<"$OUT" | tr '\n' ' '; }

lb_new_request lbt-op1; R=$ID
run lbt-mgr approve "$R"
is "$RC:$(lb_state "$R")" "0:pending" "setup: a pending request of lbt-op1"

# ---- the forgeries: a user in no role, and a root process that is not lockboxd ----------------
forged=(SYSLOG_IDENTIFIER=lockbox "MESSAGE_ID=$(lb_msgid approved)" LOCKBOX_EVENT=approved
        "LOCKBOX_REQUEST_ID=$R" "LOCKBOX_ACTIVITY=Set-AccessToCustomerDataRequest" LOCKBOX_USER=lbt-appr
        LOCKBOX_OPERATOR=lbt-op1 LOCKBOX_APPROVAL_DECISION=Approve "LOCKBOX_ITEM=$R" LOCKBOX_TENANT=contoso
        "LOCKBOX_EXPIRES=2099-01-01T00:00:00Z")
lb_forge_entry lbt-none "${forged[@]}" "MESSAGE=Request $R: approved by lbt-appr (forged by a user)"
lb_forge_entry root "${forged[@]}" "MESSAGE=Request $R: approved by lbt-appr (forged by root)"
lb_wait_journal 5 "LOCKBOX_REQUEST_ID=$R" LOCKBOX_EVENT=approved
is "$(journal_field MESSAGE "LOCKBOX_REQUEST_ID=$R" LOCKBOX_EVENT=approved | sed 's/.*(forged by \(.*\))$/\1/' | sort | tr '\n' ' ')" \
   "a user root " "both forgeries reached the journal: journalctl LOCKBOX_REQUEST_ID=<id> shows an 'approved' for a pending request"

for who in root lbt-admin lbt-appr lbt-mgr lbt-op1; do
        lb_audit "$who" "$R" --json
        is "$RC:$(events)" "0:request-created manager-approved " "$who: lockbox audit ID --json shows lockboxd's two entries, no forged 'approved'"
done
lb_audit lbt-appr "$R"
is "$RC:$(wc -l <<<"$OUT")" "0:2" "lockbox audit ID (text): one line per entry, the forged ones left out"
like "$(head -1 <<<"$OUT")" "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z  request-created +lbt-op1 +Request $R" \
     "… each: time, event, who, message"
like "$(tail -1 <<<"$OUT")" "^[^ ]+  manager-approved +lbt-mgr +" "… a decision names the decider"
lb_audit lbt-admin --json
is "$(jq -r 'select(.request_id == "'"$R"'") | .event' <<<"$OUT" | tr '\n' ' ')" "request-created manager-approved " \
   "lockbox audit (all) leaves the forgeries out too"

# The documented journalctl queries filter on _UID=0: a non-root forger is left out.
is "$(journal_field MESSAGE _UID=0 "LOCKBOX_REQUEST_ID=$R" LOCKBOX_EVENT=approved | grep -c 'forged by a user')" 0 \
   "journalctl _UID=0 LOCKBOX_REQUEST_ID=<id> (the documented form) leaves out the user's forgery"

# ---- JSON: exactly the entry's LOCKBOX_* fields, lower-case, without the prefix, plus time, host ----
lb_audit root "$R" --json
is "$(head -1 <<<"$OUT" | jq -c 'keys')" \
   '["activity","approval_decision","event","expires","host","ip","item","operator","request_id","tenant","ticket","time","user"]' \
   "--json keys: the LOCKBOX_* fields without the prefix, lower-case, plus time and host"
like "$(head -1 <<<"$OUT" | jq -r .time)" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$' "… time is RFC 3339 UTC"
is "$(head -1 <<<"$OUT" | jq -r .host)" "$(journal_field _HOSTNAME "LOCKBOX_REQUEST_ID=$R" _UID=0 | head -1)" "… host is the entry's _HOSTNAME"
is "$(head -1 <<<"$OUT" | jq -r '.request_id + " " + .operator + " " + .user')" "$R lbt-op1 Microsoft Operator" \
   "… with the entry's values"

# ---- visibility: like show; IDs as prefixes; usage ---------------------------------------------
lb_new_request lbt-op2; R2=$ID
lb_audit lbt-op2 "$R"
lb_is_error 3 "another operator's request: exit 3, as for show"
lb_audit lbt-none "$R"
lb_is_error 1 "a user in no role: exit 1"
lb_audit lbt-none
lb_is_error 1 "a user in no role, all: exit 1"
lb_audit lbt-op2 --json
is "$RC:$(jq -r .operator <<<"$OUT" | sort -u | tr '\n' ' ')" "0:lbt-op2 " "an operator's lockbox audit shows only their own story"
is "$(jq -r 'select(.request_id == "'"$R2"'") | .event' <<<"$OUT")" request-created "… including their request"
lb_audit lbt-mgr --json
is "$(jq -r .operator <<<"$OUT" | sort -u | tr '\n' ' ')" "lbt-op1 lbt-op2 " "a manager's shows everyone's"
lb_audit lbt-op1 "${R:0:8}" --json
is "$RC:$(events)" "0:request-created manager-approved " "an 8-character prefix works"
lb_audit lbt-op1 "${R:0:7}"
lb_is_error 2 "a 7-character prefix: exit 2"
lb_audit lbt-op1 "$R" "$R2"
lb_is_error 2 "two IDs: exit 2"
lb_audit lbt-op1 "$R" --since yesterday-ish
lb_is_error 2 "a bad --since: exit 2"
lb_audit lbt-op1 "$R" --since 2099-01-01
is "$RC:$OUT" "0:(no audit entries)" "--since a future date: no entries"
lb_audit lbt-op1 "$R" --json
T=$(tail -1 <<<"$OUT" | jq -r .time)
lb_audit lbt-op1 "$R" --since 1h --json
is "$(events)" "request-created manager-approved " "--since 1h (a duration: that long ago) shows both"
lb_audit lbt-op1 "$R" --since "$(date -u -d '1 hour ago' '+%Y-%m-%d %H:%M:%S')" --json
is "$(events)" "request-created manager-approved " "--since \"YYYY-MM-DD HH:MM:SS\" (UTC) an hour ago shows both"
lb_audit lbt-op1 "$R" --since "$T" --json
is "$(jq -r 'select(.time < "'"$T"'") | .event' <<<"$OUT")" "" "--since an RFC 3339 time shows nothing older"

# ---- an answer is bounded: 1000 entries, then where to go on --------------------------------------
lb_call_prepare || bail "no lb-call"
for i in $(seq 1005); do
        "$LB_CALL" "$LB_SOCKET" 2000 AccessCheck lbt-op2 sshd 127.0.0.1 ssh >/dev/null 2>&1
done
t0=$(lb_now_ms)
lb_audit lbt-op2 --json
ms=$(( $(lb_now_ms) - t0 ))
diag "lockbox audit of the first page of 1006 entries: ${ms} ms"
if [ -z "${LB_VALGRIND:-}" ]; then      # under valgrind the 0.2 s reading limit may cut earlier
        is "$RC:$(wc -l <<<"$OUT")" "0:1000" "an operator with 1,006 entries: the answer holds 1000"
fi
like "$ERR" "^lockbox: [0-9]+ entries shown, the most one answer holds; see the rest with --since [0-9T:-]+\.[0-9]{6}Z$" \
     "… and says so on stderr, with the --since to go on"
ALL=$OUT pages=1
while [[ "$ERR" == *"--since "* ]] && [ "$pages" -lt 200 ]; do
        lb_audit lbt-op2 --json --since "${ERR##*--since }"
        ALL+=$'\n'$OUT pages=$((pages + 1))
done
is "$RC:$ERR:$(grep -c . <<<"$ALL"):$(jq -r .event <<<"$ALL" | sort | uniq -c | awk '{ print $2 "=" $1 }' | tr '\n' ' ')" \
   "0::1006:access-denied=1005 request-created=1 " \
   "… and following --since shows all 1006 (1005 refusals, 1 request), none twice or lost ($pages answers)"

lb_done
