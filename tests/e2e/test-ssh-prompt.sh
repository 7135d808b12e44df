#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# e2e: the operator's journey at the login prompt (SPEC §5 auth stage) over a real sshd and
# the stock OpenSSH client. A pty (tmux) carries an interactive login: the operator answers
# the questions, an approver decides from "another terminal" (this script) during the wait,
# and the same ssh command lands in a shell. Non-interactive logins run with SSH_ASKPASS
# answering the prompts (SSH_ASKPASS_REQUIRE=force), several at once.
#
# Stacks: "key" = AuthenticationMethods publickey,keyboard-interactive:pam with the module as
# the whole auth stack; "password" = keyboard-interactive:pam with pam_unix, then the module.

if [ -z "${LB_IN_NAMESPACE:-}" ] && { [ ! -x /usr/sbin/sshd ] || ! command -v ssh >/dev/null || ! command -v tmux >/dev/null; }; then
        echo "1..0 # SKIP needs openssh-server, openssh-client and tmux"
        exit 0
fi

. "$abs_top_srcdir/tests/lib/harness.sh"
. "$abs_top_srcdir/tests/lib/sshd.sh"

HINT="desk.contoso.example"
lb_setup
lb_write_config 'prompt_wait = "20s";' "request_hint = \"$HINT\";"
lb_start_daemon || bail "lockboxd did not start"

KEY_SSHD="PermitTTY yes
KbdInteractiveAuthentication yes
ExposeAuthInfo yes
AuthenticationMethods publickey,keyboard-interactive:pam"
LB_SSHD_CONFIG_EXTRA=$KEY_SSHD
LB_SSHD_PAM_AUTH="auth required $PAM_MODULE config=$LB_CONF"
lb_sshd_start || bail "sshd did not start"

pending_of() {
        lb_sql "SELECT id FROM requests WHERE requester = '$1' AND state IN ('pending-manager', 'pending');"
}
cancel_all() {
        local id
        for id in $(pending_of "$1"); do as "$1" lockbox cancel "$id" >/dev/null 2>&1; done
}

. "$abs_top_srcdir/tests/lib/term.sh"

# ---- non-interactive logins: ssh asks SSH_ASKPASS ---------------------------------------------

ASKPASS=$LB_TMP/askpass
cat >"$ASKPASS" <<'EOF'
#!/bin/sh
# Answers the login prompt's questions as ASK_* say; logs each question.
echo "$1" >>"$ASK_LOG"
case "$1" in
*Password*) echo "$ASK_PASSWORD" ;;
*"File an access request"*) echo "$ASK_FILE" ;;
*"Service ticket"*) echo "SR-ASK" ;;
*Reason*) echo "askpass login" ;;
*Duration*) echo "" ;;
*"Wait up to"*) echo "$ASK_WAIT" ;;
*) echo "" ;;
esac
EOF
chmod 0755 "$ASKPASS"
askpass_ssh() {  # askpass_ssh USER OUT COMMAND: a login answered by $ASKPASS, setsid so no tty
        lb_ssh_command "$1"
        local cmd=("${LB_SSH_CMD[@]}")
        cmd=("${cmd[@]/BatchMode=yes/BatchMode=no}")
        env SSH_ASKPASS="$ASKPASS" SSH_ASKPASS_REQUIRE=force DISPLAY=none ASK_LOG="$2.asked" \
                ASK_FILE="${ASK_FILE:-y}" ASK_WAIT="${ASK_WAIT:-n}" ASK_PASSWORD="${ASK_PASSWORD:-}" \
                setsid -w "${cmd[@]}" -o KbdInteractiveAuthentication=yes "$3" >"$2" 2>"$2.err" </dev/null
}

# ==== the interactive journey ====================================================================

mark=$(lb_journal_mark)
term_start lbt-op1
wait_screen 'File an access request now\? \[y/N\]' || bail "no offer at the prompt"
like "$(screen)" "no active grant for tenant contoso" "the operator is told why before the offer"
type_line y
wait_screen 'Service ticket: ' && type_line SR-500
wait_screen 'Reason: ' && type_line "disk full on db01"
wait_screen 'Duration \[1h\]: ' && type_line 30m
wait_screen 'Wait up to 20s for the decision\? \[Y/n\]' || bail "no wait question"
ID=$(pending_of lbt-op1)
like "$ID" '^[0-9a-f-]{36}$' "answered at the prompt: a request is filed"
like "$(screen)" "request $ID filed; it awaits a support manager's pre-approval" "the filing and its state reach the terminal"
type_line ""
sleep 0.5
as lbt-mgr lockbox approve "$ID" >/dev/null 2>&1 || bail "manager approval failed"
as lbt-appr lockbox approve "$ID" --comment "go ahead" >/dev/null 2>&1 || bail "approval failed"
t_approved=$(date +%s%N)
wait_screen "lockbox: access under request $ID" 10
ok $? "approved during the wait: the same ssh login lands in a session (banner shown)"
t_session=$(date +%s%N)
diag "approval to the waiting login's session banner: $(( (t_session - t_approved) / 1000000 )) ms"
type_line 'echo LOGGED-IN-AS-$(id -un)'
wait_screen '^LOGGED-IN-AS-lbt-op1' 10
ok $? "the operator has a shell"
like "$(screen)" "request $ID awaits the customer's approver" "the manager's step was shown"
like "$(screen)" "access under request $ID, approved by lbt-appr, until" "the approval was shown (the session banner)"
is "$(journal_since "$mark" LOCKBOX_EVENT=request-created | jq -r .LOCKBOX_VIA)" login-prompt \
        "the request's audit entry says it came from the login prompt"
is "$(journal_since "$mark" LOCKBOX_EVENT=request-created | jq -r .LOCKBOX_IP)" 127.0.0.1 \
        "... and from which address"
like "$(journal_since "$mark" LOCKBOX_EVENT=request-created | jq -r .MESSAGE)" "at the login prompt of .* \(sshd\) from 127.0.0.1" \
        "... in its message too"
is "$(journal_since "$mark" LOCKBOX_EVENT=session-open | jq -r .LOCKBOX_REQUEST_ID)" "$ID" "the session is audited under the grant"
type_line exit
wait_screen 'SSH-EXIT=0' 10
ok $? "ssh ends normally"
as lbt-appr lockbox revoke "$ID" --comment "test over" >/dev/null 2>&1

# Ctrl-C during the wait: ssh ends, the request stays. sshd reads nothing from the connection
# while PAM has the floor, so its pre-auth processes see the client gone only when the wait
# ends: bounded by prompt_wait (4 s here).
lb_write_config 'prompt_wait = "4s";' "request_hint = \"$HINT\";"
lb_reload_daemon || bail "reload failed"
term_start lbt-op1
wait_screen 'File an access request now' && type_line y
wait_screen 'Service ticket: ' && type_line SR-501
wait_screen 'Reason: ' && type_line "ctrl-c test"
wait_screen 'Duration' && type_line ""
wait_screen 'Wait up to 4s' && type_line ""
sleep 0.5
term send-keys -t "login$TERM_N" C-c
lb_wait_until 10 pane_dead
ok $? "Ctrl-C during the wait ends ssh"
ID=$(pending_of lbt-op1)
like "$ID" '^[0-9a-f-]{36}$' "Ctrl-C: the request stays pending"
lb_wait_until 8 '! pgrep -f "sshd: lbt-op1" >/dev/null'
ok $? "Ctrl-C: no sshd process of the login outlives prompt_wait"
lb_write_config 'prompt_wait = "20s";' "request_hint = \"$HINT\";"
lb_reload_daemon || bail "reload failed"

# Logging in again with that request pending: told where it stands, not asked to file again.
# The client retries a refused keyboard-interactive round NumberOfPasswordPrompts times.
term_start lbt-op1 -o NumberOfPasswordPrompts=2
wait_screen "your request $ID awaits a support manager's pre-approval" 10
ok $? "a pending request: its id and state are shown"
wait_screen 'Wait up to' && type_line n
wait_count 'Wait up to' 2 && type_line n
wait_screen 'SSH-EXIT=255' 10
ok $? "wait declined in each of the client's rounds: the login is refused"
like "$(screen)" "log in again once request $ID is approved" "... saying what to do next"
ok "$(screen | grep -q 'File an access request'; [ $? != 0 ]; echo $?)" "a pending request: no offer to file another"
cancel_all lbt-op1

# ==== non-interactive logins ====================================================================

# BatchMode turns keyboard-interactive off in the client: nothing asked, nothing filed.
lb_ssh lbt-op1 true
is "$SSH_RC" 255 "BatchMode under the prompt stack: refused"
is "$(pending_of lbt-op1)" "" "BatchMode: nothing filed"
# A user in no role answers no question and is not delayed beyond the key.
rm -f "$LB_TMP/none.out.asked"
askpass_ssh lbt-none "$LB_TMP/none.out" 'echo hello'
is "$(cat "$LB_TMP/none.out")" hello "a user in no role logs in through the prompt stack"
is "$(cat "$LB_TMP/none.out.asked" 2>/dev/null)" "" "... and is asked nothing"

# A flood of logins filing at once: one request.
flood=()
for i in 1 2 3 4 5 6; do
        askpass_ssh lbt-op1 "$LB_TMP/flood.$i" true &
        flood+=($!)
done
wait "${flood[@]}"
is "$(pending_of lbt-op1 | grep -c .)" 1 "six logins filing at the prompt at once: one request"
cancel_all lbt-op1

# ==== the pubkey-only sshd: the account stage's refusal says where to ask ========================

lb_sshd_stop
LB_SSHD_CONFIG_EXTRA="" LB_SSHD_PAM_AUTH="@include common-auth"
LB_SSHD_CONFIG_EXTRA="" lb_sshd_start || bail "sshd (pubkey only) did not start"
lb_ssh lbt-op1 true
is "$SSH_RC" 255 "pubkey-only sshd, BatchMode: the operator is refused"
like "$SSH_ERR" "file a request on $HINT with: lockbox request" "the refusal names where requests are filed (request_hint)"
is "$(pending_of lbt-op1)" "" "pubkey-only sshd: nothing asked, nothing filed"

# ==== the password stack: pam_unix, then the module =============================================

lb_sshd_stop
LB_SSHD_CONFIG_EXTRA="PermitTTY yes
KbdInteractiveAuthentication yes
AuthenticationMethods keyboard-interactive:pam"
LB_SSHD_PAM_AUTH="auth requisite pam_unix.so
auth required $PAM_MODULE config=$LB_CONF"
lb_sshd_start || bail "sshd (password stack) did not start"
echo 'lbt-op2:Corr3ct-h0rse' | chpasswd     # after lb_sshd_start, which locks passwords
echo 'lbt-none:Corr3ct-h0rse' | chpasswd
ASK_PASSWORD=wrong askpass_ssh lbt-op2 "$LB_TMP/pw.out" true
is "$(grep -c 'File an access' "$LB_TMP/pw.out.asked")" 0 "password stack, wrong password: the lockbox asks nothing"
is "$(pending_of lbt-op2)" "" "wrong password: nothing filed"
ASK_PASSWORD=Corr3ct-h0rse askpass_ssh lbt-none "$LB_TMP/pw-none.out" 'echo hello'
is "$(cat "$LB_TMP/pw-none.out")" hello "password stack: a user in no role logs in with the password alone"
rm -f "$LB_TMP/pw2.out.asked"
ASK_PASSWORD=Corr3ct-h0rse ASK_WAIT=n askpass_ssh lbt-op2 "$LB_TMP/pw2.out" true
is "$(grep -c 'File an access' "$LB_TMP/pw2.out.asked")" 1 "password stack, right password: the operator is offered to file"
like "$(pending_of lbt-op2)" '^[0-9a-f-]{36}$' "password stack: the request is filed"
cancel_all lbt-op2

lb_done
