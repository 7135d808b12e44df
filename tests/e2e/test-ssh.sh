#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# e2e: a real sshd (UsePAM yes, pam_lockbox in account and session) on 127.0.0.1, a real
# lockboxd and journald, the real ssh client with keys. All inside the harness's private
# mount namespace: the host's sshd, PAM stack and journal are never touched.
#
#   refused -> request -> manager -> approver -> admitted, session audited -> live session
#   cut on revoke -> refused; helper down / hung -> operators refused, others admitted;
#   lockbox disabled -> operators admitted and still audited.

if [ -z "${LB_IN_NAMESPACE:-}" ] && { [ ! -x /usr/sbin/sshd ] || ! command -v ssh >/dev/null; }; then
        echo "1..0 # SKIP needs openssh-server and openssh-client"
        exit 0
fi

. "$abs_top_srcdir/tests/lib/harness.sh"
. "$abs_top_srcdir/tests/lib/sshd.sh"

OP="Microsoft Operator"
UUID_RE='^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
PAM_TIMEOUT_S=1
HUNG_LIMIT_MS=3000      # pam_timeout (1 s) + key exchange and a margin

lb_setup
lb_write_config "pam_timeout = \"${PAM_TIMEOUT_S}s\";" 'expiry_warning = [ "3s", "1s" ];'
LB_SSHD_CONFIG_EXTRA="PermitTTY yes"    # one interactive login below shows the session banner
lb_start_daemon || bail "lockboxd did not start"
lb_sshd_start || bail "sshd did not start"
diag "sshd on 127.0.0.1:$LB_SSHD_PORT, log $LB_SSHD_LOG"

# note TEXT: diagnostics, one "# " line per line of TEXT.
note() { printf '%s\n' "$*" | sed 's/^/# /'; }

# refused USER WHAT: the ssh login of USER is refused and runs nothing.
refused() {
        local user=$1; shift
        rm -f "$LB_TMP/home/$user/ran"
        lb_ssh "$user" 'touch ~/ran; echo ran'
        is "$SSH_RC" 255 "$*: ssh exits 255"
        is "$SSH_OUT" "" "$*: the command printed nothing"
        ok "$([ ! -e "$LB_TMP/home/$user/ran" ]; echo $?)" "$*: the command did not run"
}

# admitted USER WHAT: the ssh login of USER runs a command whose output arrives.
admitted() {
        local user=$1; shift
        lb_ssh "$user" "echo hello from \$(id -un)"
        is "$SSH_RC" 0 "$*: ssh exits 0"
        is "$SSH_OUT" "hello from $user" "$*: the command's output arrives"
        [ "$SSH_RC" = 0 ] || note "ssh stderr: $SSH_ERR"
}

# field EVENT FIELD [MATCHES...]: FIELD of the newest entry of EVENT written since the mark
# $since; "<no entry>" when there is none, so that an expected empty field cannot pass by
# the entry's absence.
field() {
        local event=$1 f=$2 entry; shift 2
        entry=$(journal_since "${since:-0}" LOCKBOX_EVENT="$event" "$@" | tail -n 1)
        if [ -z "$entry" ]; then
                echo "<no entry>"
        else
                jq -r --arg f "$f" '.[$f] // empty' <<<"$entry"
        fi
}

# ---- users in no role are left alone ---------------------------------------------------------

since=$(lb_journal_mark)
admitted lbt-none "no-role user"
admitted lbt-admin "admin (not an operator)"
is "$(journal_since "$since" LOCKBOX_OPERATOR=lbt-none)" "" \
        "no audit entry for a no-role user"

# ---- an operator without a request is refused ------------------------------------------------

since=$(lb_journal_mark)
refused lbt-op1 "operator without a request"
like "$SSH_ERR" "lockbox: access refused \(no approved request grants access now\)" \
        "the refusal reason reaches the ssh client"
like "$SSH_ERR" "lockbox request --ticket SR --reason TEXT" \
        "the refusal names the lockbox request command"
note "ssh stderr on refusal: $SSH_ERR"
is "$(field access-denied LOCKBOX_OPERATOR LOCKBOX_OPERATOR=lbt-op1)" lbt-op1 \
        "journal: access-denied for lbt-op1"
is "$(field access-denied LOCKBOX_IP LOCKBOX_OPERATOR=lbt-op1)" 127.0.0.1 "journal: access-denied LOCKBOX_IP=127.0.0.1"
is "$(field access-denied LOCKBOX_USER LOCKBOX_OPERATOR=lbt-op1)" "$OP" "journal: access-denied LOCKBOX_USER"
is "$(field access-denied LOCKBOX_ACTIVITY LOCKBOX_OPERATOR=lbt-op1)" AccessDenied \
        "journal: access-denied LOCKBOX_ACTIVITY=AccessDenied"
is "$(field access-denied LOCKBOX_REQUEST_ID LOCKBOX_OPERATOR=lbt-op1)" "" \
        "journal: access-denied without a request has an empty LOCKBOX_REQUEST_ID"
is "$(journal_since "$since" LOCKBOX_EVENT=session-open)" "" "journal: no session-open for the refused login"

# ---- request, manager, approver ---------------------------------------------------------------

run lbt-op1 request --ticket SR-4711 --reason "e2e: disk full on /var" --duration 10m
is "$RC" 0 "lbt-op1 files a request"
ID=$OUT
like "$ID" "$UUID_RE" "the request id is printed alone"

refused lbt-op1 "operator with a request awaiting the manager"
like "$SSH_ERR" "awaiting approval" "the refusal says the request awaits approval"

run lbt-mgr approve "$ID" --comment "ok from the support manager"
is "$RC" 0 "lbt-mgr pre-approves"
refused lbt-op1 "operator with a request awaiting the approver"

run lbt-appr approve "$ID" --comment "go ahead"
is "$RC" 0 "lbt-appr approves"
run lbt-op1 show "$ID" --json
is "$(jq -r .state <<<"$OUT")" approved "the request is approved"

# ---- admitted under the grant ------------------------------------------------------------------

since=$(lb_journal_mark)
lb_ssh lbt-op1 echo hello
is "$SSH_RC" 0 "granted operator: ssh exits 0"
is "$SSH_OUT" hello "granted operator: ssh lbt-op1@127.0.0.1 echo hello prints hello"
[ "$SSH_RC" = 0 ] || note "ssh stderr: $SSH_ERR"
refused lbt-op2 "another operator, no grant of theirs"

ok "$(lb_wait_journal_since 5 "$since" LOCKBOX_EVENT=session-close LOCKBOX_OPERATOR=lbt-op1; echo $?)" \
        "journal: session-close arrives after the ssh session ends"
for ev in access-granted session-open session-close; do
        m=(LOCKBOX_OPERATOR=lbt-op1)
        is "$(field $ev LOCKBOX_EVENT "${m[@]}")" $ev "journal: $ev for lbt-op1"
        is "$(field $ev LOCKBOX_USER "${m[@]}")" "$OP" "journal: $ev LOCKBOX_USER=$OP"
        is "$(field $ev LOCKBOX_IP "${m[@]}")" 127.0.0.1 "journal: $ev LOCKBOX_IP=127.0.0.1"
        is "$(field $ev LOCKBOX_REQUEST_ID "${m[@]}")" "$ID" "journal: $ev LOCKBOX_REQUEST_ID=<id>"
        is "$(field $ev LOCKBOX_TENANT "${m[@]}")" contoso "journal: $ev LOCKBOX_TENANT=contoso"
        is "$(field $ev SYSLOG_IDENTIFIER "${m[@]}")" lockbox "journal: $ev SYSLOG_IDENTIFIER=lockbox"
done
is "$(field session-open LOCKBOX_ACTIVITY LOCKBOX_OPERATOR=lbt-op1)" SessionOpen "journal: LOCKBOX_ACTIVITY=SessionOpen"
is "$(field session-close LOCKBOX_ACTIVITY LOCKBOX_OPERATOR=lbt-op1)" SessionClose "journal: LOCKBOX_ACTIVITY=SessionClose"
pid_open=$(field session-open LOCKBOX_SESSION_PID LOCKBOX_OPERATOR=lbt-op1)
pid_close=$(field session-close LOCKBOX_SESSION_PID LOCKBOX_OPERATOR=lbt-op1)
like "$pid_open" '^[0-9]+$' "journal: session-open carries the session pid"
is "$pid_close" "$pid_open" "journal: session-close names the same session"
like "$(field session-close MESSAGE LOCKBOX_OPERATOR=lbt-op1)" "closed a session" \
        "journal: the closed session was a registered one"
is "$(field access-denied LOCKBOX_OPERATOR LOCKBOX_OPERATOR=lbt-op2)" lbt-op2 "journal: access-denied for lbt-op2"
is "$(field access-denied LOCKBOX_REQUEST_ID LOCKBOX_OPERATOR=lbt-op2)" "" \
        "journal: lbt-op2's refusal does not carry lbt-op1's request"
n=$(journal LOCKBOX_REQUEST_ID="$ID" | jq -r .LOCKBOX_EVENT | sort -u | tr '\n' ' ')
is "$n" "access-granted approved manager-approved operator-exec request-created session-close session-open " \
        "journal LOCKBOX_REQUEST_ID=<id> tells the whole story so far"

# ---- revoke: the live session is cut, new logins refused ----------------------------------------

# live_session USER: starts "ssh USER@... 'echo started; exec sleep 60'" in the background
# (pid in LIVE) and waits until the remote command runs.
live_session() {
        lb_ssh_command "$1"
        rm -f "$LB_TMP/live.out"
        "${LB_SSH_CMD[@]}" 'echo started; exec sleep 60' >"$LB_TMP/live.out" 2>"$LB_TMP/live.err" </dev/null &
        LIVE=$!
        for i in $(seq 100); do grep -q started "$LB_TMP/live.out" 2>/dev/null && break; sleep 0.05; done
}

# live_session_ends SECONDS: waits up to SECONDS for the ssh client of the live session to
# end; sets CUT_MS (from now) and succeeds if it ended. Kills the client if not.
live_session_ends() {
        local start end i
        start=$(date +%s%N)
        for i in $(seq $(($1 * 20))); do kill -0 "$LIVE" 2>/dev/null || break; sleep 0.05; done
        end=$(date +%s%N)
        CUT_MS=$(((end - start) / 1000000))
        if kill -0 "$LIVE" 2>/dev/null; then
                kill -TERM "$LIVE" 2>/dev/null
                wait "$LIVE" 2>/dev/null
                return 1
        fi
        wait "$LIVE" 2>/dev/null
        return 0
}

# An interactive login (a shell on a pty): sshd shows what the session stage told the operator.
lb_ssh_command lbt-op1
banner=$(printf 'exit\n' | "${LB_SSH_CMD[@]:0:${#LB_SSH_CMD[@]}-1}" -tt "${LB_SSH_CMD[-1]}" 2>&1 | tr -d '\r')
like "$banner" "lockbox: access under request $ID, approved by lbt-appr, until [0-9T:-]+Z" \
        "an interactive ssh login shows one line: the request, its approver, the end of access"

live_session lbt-op1
is "$(cat "$LB_TMP/live.out")" started "a live operator session runs"
since=$(lb_journal_mark)
run lbt-appr revoke "$ID" --comment "done"
is "$RC" 0 "lbt-appr revokes the grant"
is "$(field revoked LOCKBOX_APPROVAL_DECISION)" Revoke "journal: revoked, LOCKBOX_APPROVAL_DECISION=Revoke"
live_session_ends 3
ok $? "the live ssh session ends after the revoke (${CUT_MS} ms)"
diag "live session cut ${CUT_MS} ms after lockbox revoke returned"
ok "$(lb_wait_journal_since 3 "$since" LOCKBOX_EVENT=session-terminated LOCKBOX_REQUEST_ID="$ID"; echo $?)" \
        "journal: session-terminated for the revoked grant"
is "$(field session-terminated LOCKBOX_ACTIVITY LOCKBOX_REQUEST_ID="$ID")" SessionTerminated \
        "journal: session-terminated LOCKBOX_ACTIVITY=SessionTerminated"
is "$(field session-terminated LOCKBOX_USER LOCKBOX_REQUEST_ID="$ID")" "$OP" "journal: session-terminated LOCKBOX_USER=$OP"
is "$(field session-terminated LOCKBOX_OPERATOR LOCKBOX_REQUEST_ID="$ID")" lbt-op1 \
        "journal: session-terminated LOCKBOX_OPERATOR=lbt-op1"
is "$(field session-terminated LOCKBOX_IP LOCKBOX_REQUEST_ID="$ID")" 127.0.0.1 "journal: session-terminated LOCKBOX_IP=127.0.0.1"
for i in $(seq 20); do pgrep -u lbt-op1 --ns $$ --nslist mnt -x sleep >/dev/null || break; sleep 0.1; done
ok "$(! pgrep -u lbt-op1 --ns $$ --nslist mnt -x sleep >/dev/null; echo $?)" "no process of the cut session is left"
refused lbt-op1 "operator after revoke"
like "$SSH_ERR" "lockbox: access refused" "the refusal after revoke reaches the ssh client"

# ---- the grant runs out: the live session is cut, new logins refused -----------------------------

run lbt-op1 request --ticket SR-4712 --reason "e2e: short grant" --duration 5s
ID2=$OUT
run lbt-mgr approve "$ID2"
run lbt-appr approve "$ID2"
is "$RC" 0 "a 5 s grant is approved"
run lbt-op1 show "$ID2" --json
expires=$(date -d "$(jq -r .expires_at <<<"$OUT")" +%s%N 2>/dev/null || echo 0)
live_session lbt-op1
is "$(cat "$LB_TMP/live.out")" started "a live session runs under the short grant"
since=$(lb_journal_mark)
live_session_ends 10
ok $? "the live session ends when the grant runs out"
ended_ms=$((($(date +%s%N) - expires) / 1000000))
diag "live session cut ${ended_ms} ms after expires_at (1 s resolution)"
ok "$([ "$ended_ms" -le 2500 ]; echo $?)" "the session is cut within ~1 s of expires_at (${ended_ms} ms)"
ok "$(lb_wait_journal_since 3 "$since" LOCKBOX_EVENT=ended LOCKBOX_REQUEST_ID="$ID2"; echo $?)" "journal: ended for the short grant"
ok "$(lb_wait_journal_since 3 "$since" LOCKBOX_EVENT=session-terminated LOCKBOX_REQUEST_ID="$ID2"; echo $?)" \
        "journal: session-terminated for the grant that ran out"
refused lbt-op1 "operator after the grant ran out"

# ---- warnings on the operator's terminal before access ends (expiry_warning 3s, 1s) --------------------

run lbt-op1 request --ticket SR-4714 --reason "e2e: warnings" --duration 5s
ID4=$OUT
run lbt-mgr approve "$ID4"
run lbt-appr approve "$ID4"
lb_ssh_command lbt-op1
warned=$(printf 'sleep 9\n' | timeout 20 "${LB_SSH_CMD[@]:0:${#LB_SSH_CMD[@]}-1}" -tt "${LB_SSH_CMD[-1]}" 2>&1 | tr -d '\r')
until4=$(as root lockbox show "$ID4" --json | jq -r .expires_at)
is "$(grep -c -x "lockbox: access ends at $until4 (request $ID4)" <<<"$warned")" 2 \
        "an interactive session gets a warning on its terminal at 3 s and at 1 s before the end"
ok "$( ! grep -q 'lockbox: access ends at' <<<"$(lb_ssh lbt-none 'true'; echo "$SSH_OUT$SSH_ERR")"; echo $?)" \
        "a user in no role gets none"

# ---- lockbox done: the operator ends their own grant from inside the session -------------------------

run lbt-op1 request --ticket SR-4713 --reason "e2e: done early" --duration 1h
ID3=$OUT
run lbt-mgr approve "$ID3"
run lbt-appr approve "$ID3"
since=$(lb_journal_mark)
lb_ssh lbt-op1 "'$LOCKBOX' -c '$LB_CONF' done; sleep 5; echo survived"
# The session, the lockbox process in it included, is cut at once: its answer may not get out.
is "$(lb_state "$ID3")" ended "the operator ran lockbox done in their ssh session: the grant is ended"
ok "$( ! grep -q survived <<<"$SSH_OUT"; echo $?)" "… and the session it ran in is cut (ssh exit $SSH_RC)"
ok "$(lb_wait_journal_since 3 "$since" LOCKBOX_EVENT=session-terminated LOCKBOX_REQUEST_ID="$ID3"; echo $?)" \
        "journal: session-terminated for the grant the operator ended"
is "$(field ended LOCKBOX_USER LOCKBOX_REQUEST_ID="$ID3")" "$OP" "journal: ended by the operator (LOCKBOX_USER=$OP)"
refused lbt-op1 "operator after lockbox done"

# ---- helper down: operators refused, everyone else admitted ---------------------------------------

lb_stop_daemon
refused lbt-op1 "operator with the helper stopped"
like "$SSH_ERR" "could not confirm a grant" "the refusal says the helper could not confirm"
admitted lbt-none "no-role user with the helper stopped"
admitted lbt-admin "admin with the helper stopped"

# ---- helper hung: refused within pam_timeout ---------------------------------------------------------

lb_start_daemon || bail "lockboxd did not restart"
lb_ssh lbt-op2 true
diag "refusal with a healthy helper took ${SSH_MS} ms"
# The client gives up after ~6 s of server silence (ServerAliveInterval 2 x 3), so a module
# that overstays its pam_timeout fails here in seconds, not at sshd's LoginGraceTime.
kill -STOP "$LB_DAEMON_PID"
refused lbt-op1 "operator with the helper SIGSTOPped"
hung_ms=$SSH_MS
diag "refusal with the helper SIGSTOPped (pam_timeout = ${PAM_TIMEOUT_S}s) took ${hung_ms} ms"
ok "$([ "$hung_ms" -lt "$HUNG_LIMIT_MS" ]; echo $?)" "the hung helper costs at most ~pam_timeout (${hung_ms} ms < ${HUNG_LIMIT_MS} ms)"
ok "$([ "$hung_ms" -ge $((PAM_TIMEOUT_S * 1000)) ]; echo $?)" "the module did wait for the helper (${hung_ms} ms >= pam_timeout)"
like "$SSH_ERR" "could not confirm a grant" "the refusal says the helper could not confirm"
admitted lbt-none "no-role user with the helper SIGSTOPped"
kill -CONT "$LB_DAEMON_PID"
run lbt-admin status
is "$RC" 0 "the helper answers again after SIGCONT"

# ---- lockbox disabled: operators admitted, still audited ----------------------------------------------

since=$(lb_journal_mark)
lb_write_config "pam_timeout = \"${PAM_TIMEOUT_S}s\";" "enabled = false;"
kill -HUP "$LB_DAEMON_PID"
ok "$(lb_wait_journal_since 5 "$since" LOCKBOX_EVENT=lockbox-disabled; echo $?)" "journal: lockbox-disabled after SIGHUP"
since=$(lb_journal_mark)
admitted lbt-op2 "operator without any request, lockbox disabled"
ok "$(lb_wait_journal_since 5 "$since" LOCKBOX_EVENT=session-close LOCKBOX_OPERATOR=lbt-op2; echo $?)" \
        "journal: session-close for lbt-op2"
for ev in access-granted session-open session-close; do
        is "$(field $ev LOCKBOX_OPERATOR LOCKBOX_OPERATOR=lbt-op2)" lbt-op2 "disabled: journal $ev for lbt-op2"
        is "$(field $ev LOCKBOX_USER LOCKBOX_OPERATOR=lbt-op2)" "$OP" "disabled: journal $ev LOCKBOX_USER=$OP"
        is "$(field $ev LOCKBOX_IP LOCKBOX_OPERATOR=lbt-op2)" 127.0.0.1 "disabled: journal $ev LOCKBOX_IP=127.0.0.1"
done
like "$(field access-granted MESSAGE LOCKBOX_OPERATOR=lbt-op2)" "disabled" "disabled: access-granted says the lockbox is disabled"

# ---- re-enabled: back to refusing ------------------------------------------------------------------------

lb_write_config "pam_timeout = \"${PAM_TIMEOUT_S}s\";"
kill -HUP "$LB_DAEMON_PID"
ok "$(lb_wait_journal_since 5 "$since" LOCKBOX_EVENT=lockbox-enabled; echo $?)" "journal: lockbox-enabled after SIGHUP"
refused lbt-op2 "operator after the lockbox is enabled again"

lb_done
