#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Tier 3: the module's auth stage (SPEC §5) under real libpam and pam_wrapper: asking at the
# login prompt, every branch of the conversation, and the wait for the decision. pam-run
# answers the prompts from its --reply list; sshd's part (SSH_AUTH_INFO_0) is set with --env,
# pam_unix's is the real pam_unix against a real password. The same over a real sshd and a
# pty is tests/e2e/test-ssh.sh.

. "$abs_top_srcdir/tests/lib/harness.sh"

[ -f "$PAM_MODULE" ] || bail "no module at $PAM_MODULE"
RHOST=192.0.2.10
KEY_INFO='SSH_AUTH_INFO_0=publickey ssh-ed25519 SHA256:lockboxtestkey'

lb_setup
. "$abs_top_srcdir/tests/pam/lib-pam.sh"
# ASan resolves its crypt_r interceptor at start-up: libcrypt, which pam_unix brings in later
# with dlopen(), must be loaded by then (else pam_unix calls a NULL crypt_r).
[ -z "${LB_SANITIZER_PRELOAD:-}" ] || LB_SANITIZER_PRELOAD="$LB_SANITIZER_PRELOAD libcrypt.so.1"
lb_write_config 'prompt_wait = "20s";'
lb_start_daemon || bail "lockboxd did not start"

RAW='[success=ok ignore=ok default=bad]'
# "key": the reference stack (publickey,keyboard-interactive:pam), the module alone in auth.
svc key "auth $RAW $PAM_MODULE config=$LB_CONF" "account $RAW $PAM_MODULE config=$LB_CONF"
# "password": pam_unix, then the module, in one keyboard-interactive stack.
svc password "auth requisite pam_unix.so" "auth $RAW $PAM_MODULE config=$LB_CONF" \
        "account $RAW $PAM_MODULE config=$LB_CONF"
svc other 'auth required pam_deny.so' 'account required pam_deny.so'

count() { lb_count "$@"; }
pending_of() {  # pending_of USER: ids of USER's pending requests
        lb_sql "SELECT id FROM requests WHERE requester = '$1' AND state IN ('pending-manager', 'pending');"
}
cancel_all() {  # cancel_all USER
        local id
        for id in $(pending_of "$1"); do as "$1" lockbox cancel "$id" >/dev/null 2>&1; done
}
no_prompts() {
        is "$PROMPTS" "" "$1: no prompt"
}
FILE=(--reply y --reply SR-100 --reply "login prompt test" --reply 30m)

# ==== 1. Only after someone else authenticated the user ===========================================

pam key lbt-none --auth --no-account
is "$AUTH" PAM_AUTH_ERR "nothing authenticated the user earlier: PAM_AUTH_ERR, even for a user in no role"
like "$LOG" "no earlier method or module authenticated" "... logged, naming the cause"
pam key lbt-op1 --auth --no-account "${FILE[@]}"
is "$AUTH" PAM_AUTH_ERR "nothing authenticated the operator earlier: PAM_AUTH_ERR"
no_prompts "nothing authenticated the operator earlier"
is "$(pending_of lbt-op1)" "" "nothing authenticated the operator earlier: nothing filed"
pam key lbt-op1 --auth --no-account --env 'SSH_AUTH_INFO_0=keyboard-interactive/pam' "${FILE[@]}"
is "$AUTH" PAM_AUTH_ERR "SSH_AUTH_INFO_0 naming only keyboard-interactive: not a proof, PAM_AUTH_ERR"
pam key lbt-op1 --auth --no-account --env 'SSH_AUTH_INFO_0=' "${FILE[@]}"
is "$AUTH" PAM_AUTH_ERR "empty SSH_AUTH_INFO_0: PAM_AUTH_ERR"
pam key lbt-op1 --auth --no-account --env 'SSH_AUTH_INFO_0=publickeyx ssh-ed25519 AAAA' "${FILE[@]}"
is "$AUTH" PAM_AUTH_ERR "a method name that only starts like publickey: PAM_AUTH_ERR"

# ==== 2. Users in no role: no prompt, no helper, no delay ==========================================

pam key lbt-none --auth --env "$KEY_INFO"
is "$AUTH/$ACCT" PAM_SUCCESS/PAM_IGNORE "user in no role after a key: PAM_SUCCESS (auth), untouched (account)"
no_prompts "user in no role"
is "$NMSG" 0 "user in no role: no message"
lb_stop_daemon
pam key lbt-none --auth --no-account --env "$KEY_INFO"
is "$AUTH" PAM_SUCCESS "user in no role, lockboxd stopped: PAM_SUCCESS (the helper is never asked)"
lt_ms "$WALL_MS" 1500 "user in no role, lockboxd stopped: not delayed"
pam key lbt-op1 --auth --no-account --env "$KEY_INFO" "${FILE[@]}"
is "$AUTH" PAM_PERM_DENIED "operator, lockboxd stopped: PAM_PERM_DENIED (fail closed)"
no_prompts "operator, lockboxd stopped"
lb_start_daemon || bail "lockboxd did not restart"

# ==== 3. Operators who need not or cannot be asked ==================================================

grant lbt-op2 1h
pam key lbt-op2 --auth --env "$KEY_INFO"
is "$AUTH/$ACCT" PAM_SUCCESS/PAM_SUCCESS "operator with an active grant: no question, auth and account succeed"
no_prompts "operator with an active grant"
revoke "$GRANT"

for conv in none null-reply fail; do
        pam key lbt-op1 --auth --no-account --env "$KEY_INFO" --conv "$conv"
        is "$AUTH" PAM_PERM_DENIED "conversation '$conv': PAM_PERM_DENIED"
        is "$(pending_of lbt-op1)" "" "conversation '$conv': nothing filed"
done
pam key lbt-op1 --auth --no-account --env "$KEY_INFO" --silent "${FILE[@]}"
is "$AUTH" PAM_PERM_DENIED "PAM_SILENT: PAM_PERM_DENIED"
is "$OUT" "$(grep -v '^msg:\|^prompt:' <<<"$OUT")" "PAM_SILENT: no message and no prompt at all"
is "$(pending_of lbt-op1)" "" "PAM_SILENT: nothing filed"

# ==== 4. The questions ===========================================================================

pam key lbt-op1 --auth --no-account --env "$KEY_INFO" --reply ""
is "$AUTH" PAM_PERM_DENIED "offer answered with an empty reply: PAM_PERM_DENIED"
like "$(head -1 <<<"$PROMPTS")" '^File an access request now\? \[y/N\]' "the offer is a yes/no question, no by default"
like "$MSG" "no active grant for tenant contoso" "the operator is told why first"
like "$(tail -1 <<<"$MSG")" "^lockbox: access refused; file a request with: lockbox request" "a no ends with where to ask"
is "$(pending_of lbt-op1)" "" "offer declined: nothing filed"

pam key lbt-op1 --auth --no-account --env "$KEY_INFO" --reply y
is "$AUTH" PAM_PERM_DENIED "no answer to the ticket question: PAM_PERM_DENIED"
like "$MSG" "no request filed" "... saying no request was filed"
is "$(pending_of lbt-op1)" "" "no answer to the ticket: nothing filed"

long=$(printf 'S%.0s' $(seq 65))
pam key lbt-op1 --auth --no-account --env "$KEY_INFO" --reply y --reply "$long" --reply $'SR\x01' \
        --reply x --reply x --reply 30m
is "$AUTH" PAM_PERM_DENIED "bad ticket twice: PAM_PERM_DENIED"
like "$MSG" "the ticket is too long" "a ticket over the limit: one clear line"
like "$MSG" "ticket must be valid UTF-8 without control characters" "a ticket with a control character: one clear line"
is "$(grep -c '^Service ticket' <<<"$PROMPTS")" 2 "bad ticket: asked exactly twice"
is "$(pending_of lbt-op1)" "" "bad ticket twice: nothing filed"

mark
pam key lbt-op1 --auth --no-account --env "$KEY_INFO" --rhost "$RHOST" --reply y --reply "$long" \
        --reply SR-200 --reply "   " --reply "checking the disk" --reply 5h --reply 45m --reply n
is "$AUTH" PAM_PERM_DENIED "bad input then good, then no wait: PAM_PERM_DENIED"
like "$MSG" "reason must not be empty" "an empty reason: one clear line"
like "$MSG" "give a duration from 1s to 4h" "a duration over max_duration: one clear line with the limits"
like "$(grep '^Duration' <<<"$PROMPTS" | head -1)" '^Duration \[1h\]: ' "the duration question shows the default"
ID=$(pending_of lbt-op1)
like "$ID" '^[0-9a-f-]{36}$' "bad input then good: exactly one request filed"
is "$(lb_sql "SELECT ticket || '|' || reason || '|' || duration || '|' || state FROM requests WHERE id = '$ID';")" \
        "SR-200|checking the disk|2700|pending-manager" "the request holds the answers given (45m = 2700 s)"
like "$MSG" "request $ID filed; it awaits a support manager's pre-approval" "the operator is told the id and the state"
like "$(tail -1 <<<"$MSG")" "log in again once request $ID is approved" "declining the wait says what to do next"
audit request-created LOCKBOX_OPERATOR=lbt-op1 LOCKBOX_VIA=login-prompt LOCKBOX_IP="$RHOST" "filed at the prompt"
like "$(since LOCKBOX_EVENT=request-created | jq -r .MESSAGE)" "at the login prompt of .* \(key\) from $RHOST" \
        "the audit says it came from this host's login prompt, service and address"

# ==== 5. An operator with a pending request is told, not asked again ===============================

pam key lbt-op1 --auth --no-account --env "$KEY_INFO" --reply n
is "$AUTH" PAM_PERM_DENIED "pending request, wait declined: PAM_PERM_DENIED"
like "$(head -1 <<<"$MSG")" "your request $ID awaits a support manager's pre-approval" "pending request: told its id and state"
is "$(grep -c '^File an access' <<<"$PROMPTS")" 0 "pending request: not offered to file another"
is "$(pending_of lbt-op1)" "$ID" "pending request: still one"
as lbt-mgr lockbox approve "$ID" >/dev/null 2>&1 || bail "manager approval failed"
pam key lbt-op1 --auth --no-account --env "$KEY_INFO" --reply n
like "$(head -1 <<<"$MSG")" "your request $ID awaits the customer's approver" "after the manager: the new state"

# A flood of logins filing at once: one request, whatever the number of prompts.
cancel_all lbt-op1
flood=()
pam_command
for i in 1 2 3 4 5 6; do
        "${PAM_CMD[@]}" --auth --no-account --env "$KEY_INFO" "${FILE[@]}" --reply n key lbt-op1 \
                >"$LB_TMP/flood.$i" 2>/dev/null &
        flood+=($!)
done
wait "${flood[@]}"
is "$(pending_of lbt-op1 | grep -c .)" 1 "six logins filing at once: one request pending"
like "$(cat "$LB_TMP"/flood.*)" "already have a request pending|your request" "the others were told of the pending one"
cancel_all lbt-op1

# max_open_requests counts CLI filings too.
lb_write_config 'prompt_wait = "20s";' 'max_open_requests = 1;'
lb_reload_daemon || bail "reload failed"
as lbt-op1 lockbox request --ticket SR-1 --reason cli --tenant fabrikam >/dev/null 2>&1
pam key lbt-op1 --auth --no-account --env "$KEY_INFO" "${FILE[@]}" --reply n
is "$AUTH" PAM_PERM_DENIED "max_open_requests reached elsewhere: PAM_PERM_DENIED"
is "$(pending_of lbt-op1 | grep -c .)" 1 "max_open_requests reached elsewhere: nothing more filed"
cancel_all lbt-op1
lb_write_config 'prompt_wait = "20s";'
lb_reload_daemon || bail "reload failed"

# ==== 6. The wait ================================================================================

WAIT=(--reply y --reply SR-300 --reply "waiting test" --reply 30m --reply "")
pam_bg key lbt-op1 --auth --env "$KEY_INFO" "${WAIT[@]}"
pam_bg_line "^prompt: Wait up to 20s" || diag "no wait question: $(cat "$BG_OUT")"
ID=$(pending_of lbt-op1)
sleep 0.3
as lbt-mgr lockbox approve "$ID" >/dev/null 2>&1 || bail "manager approval failed"
pam_bg_line "request $ID awaits the customer's approver"
ok $? "during the wait: the manager's approval is shown as it happens"
as lbt-appr lockbox approve "$ID" >/dev/null 2>&1 || bail "approval failed"
t_approved=$(date +%s%N)
pam_bg_line "^auth: "
t_login=$(date +%s%N)
pam_bg_end
is "$AUTH/$ACCT" PAM_SUCCESS/PAM_SUCCESS "approved during the wait: the login goes on and the account stage admits"
like "$LOG" "request $ID approved by lbt-appr during the login" "approved: logged, with the approver"
diag "approval to the waiting login: $(( (t_login - t_approved) / 1000000 )) ms"
revoke "$ID"

pam_bg key lbt-op1 --auth --no-account --env "$KEY_INFO" "${WAIT[@]}"
pam_bg_line "^prompt: Wait up to" || diag "no wait question"
ID=$(pending_of lbt-op1)
as lbt-mgr lockbox deny "$ID" --comment "not this week" >/dev/null 2>&1 || bail "denial failed"
pam_bg_end
is "$AUTH" PAM_PERM_DENIED "denied during the wait: PAM_PERM_DENIED"
like "$(tail -1 <<<"$MSG")" "request $ID was denied: not this week; access refused" "denied: one line saying so"
lt_ms "$WALL_MS" 10000 "denied: the login ends at the decision, not at the end of the wait"

lb_write_config 'prompt_wait = "2s";'
lb_reload_daemon || bail "reload failed"
pam key lbt-op1 --auth --no-account --env "$KEY_INFO" "${WAIT[@]}"
is "$AUTH" PAM_PERM_DENIED "no decision within prompt_wait: PAM_PERM_DENIED"
ID=$(pending_of lbt-op1)
like "$(tail -1 <<<"$MSG")" "no decision on request $ID within 2s; it stays pending" "the wait over: one line saying so"
ge_ms "$WALL_MS" 2000 "the wait lasted prompt_wait"
is "$(lb_state "$ID")" pending-manager "the wait over: the request stays"

# Ctrl-C (sshd kills the PAM process): the request stays, lockboxd forgets the wait.
pam_bg key lbt-op1 --auth --no-account --env "$KEY_INFO" --reply ""
pam_bg_line "^prompt: Wait up to" || diag "no wait question"
sleep 0.3
pam_bg_kill
is "$(lb_state "$ID")" pending-manager "the waiting login killed: the request stays"
as lbt-mgr lockbox approve "$ID" >/dev/null 2>&1
ok $? "the waiting login killed: lockboxd goes on deciding"
cancel_all lbt-op1

lb_write_config 'prompt_wait = "0";'
lb_reload_daemon || bail "reload failed"
pam key lbt-op1 --auth --no-account --env "$KEY_INFO" "${FILE[@]}"
is "$AUTH" PAM_PERM_DENIED "prompt_wait 0: files, then refuses"
ID=$(pending_of lbt-op1)
like "$(tail -1 <<<"$MSG")" "log in again once request $ID is approved" "prompt_wait 0: says to log in again"
is "$(grep -c '^Wait up' <<<"$PROMPTS")" 0 "prompt_wait 0: no wait question"
cancel_all lbt-op1
lb_write_config 'prompt_wait = "20s";'
lb_reload_daemon || bail "reload failed"

# ==== 7. The password stack: pam_unix, then the module ===========================================

echo 'lbt-op2:Corr3ct-h0rse' | chpasswd
echo 'lbt-none:Corr3ct-h0rse' | chpasswd
pam password lbt-op2 --auth --no-account --reply wrong "${FILE[@]}"
is "$AUTH" PAM_AUTH_ERR "password stack, wrong password: PAM_AUTH_ERR"
is "$(grep -c '^File an access' <<<"$PROMPTS")" 0 "wrong password: the lockbox never asks"
is "$(pending_of lbt-op2)" "" "wrong password: nothing filed"
pam password lbt-none --auth --reply Corr3ct-h0rse
is "$AUTH/$ACCT" PAM_SUCCESS/PAM_IGNORE "password stack, user in no role: PAM_SUCCESS, untouched"
pam password lbt-op2 --auth --no-account --reply Corr3ct-h0rse "${FILE[@]}" --reply n
is "$AUTH" PAM_PERM_DENIED "password stack, operator: asked after the password (wait declined)"
like "$(pending_of lbt-op2)" '^[0-9a-f-]{36}$' "password stack: the request is filed"
cancel_all lbt-op2
# pam_unix's verdict, not its presence: a stack where a failed pam_unix does not stop the stack.
svc password-optional "auth optional pam_unix.so" "auth $RAW $PAM_MODULE config=$LB_CONF"
pam password-optional lbt-op2 --auth --no-account --reply wrong "${FILE[@]}"
is "$AUTH" PAM_AUTH_ERR "pam_unix failed but the stack went on: the module still refuses (PAM_AUTH_ERR)"
is "$(pending_of lbt-op2)" "" "pam_unix failed: nothing filed"

lb_done
