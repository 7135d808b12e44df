#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Every PAM service gates operators (issue 8): conf/pam-configs-lockbox, enabled by Debian's
# real pam-auth-update, puts pam_lockbox.so into common-account and both common-session
# files, so su, atd (and cron, login, sudo, systemd-user) ask lockboxd. A job queued with
# at(1) under a grant does not run after it; root is never gated.
#
# Why Account-Type: Additional: pam-auth-update writes the Primary block as
# "[success=N default=ignore]" jumps over pam_deny to pam_permit, so a Primary module's
# refusal is skipped when pam_unix succeeds. Additional lines come after that block as
# written, "required": a refusal from pam_lockbox is final, its PAM_IGNORE (users in no
# role, root) changes nothing. No Session-Interactive-Only line: pam-auth-update takes any
# value of it, "no" included, as "yes" and would leave common-session-noninteractive (atd,
# cron) without the module.
#
# Everything below happens in the harness's private mount namespace: /usr/share/pam-configs,
# /var/lib/pam, /var/cache/debconf and the at spool are private copies, the built module is
# made loadable as pam_lockbox.so by an overlay on the system's PAM module directory, and
# /etc (with the generated common-* files and /etc/lockbox/lockbox.conf) is the harness's
# overlay. The host's files are never touched.

. "$abs_top_srcdir/tests/lib/harness.sh"

PROFILE="$abs_top_srcdir/conf/pam-configs-lockbox"
[ -f "$PAM_MODULE" ] || bail "no module at $PAM_MODULE"
for tool in pam-auth-update su atd at; do
        command -v "$tool" >/dev/null || { echo "1..0 # SKIP $tool is not installed"; exit 0; }
done
PAMDIR=$(dirname "$(find /lib/ /usr/lib/ -maxdepth 3 -name pam_unix.so -path '*/security/*' -print -quit)")
[ -d "$PAMDIR" ] || bail "cannot find the PAM module directory"
# Under tests/run's sanitizer stage the module needs the ASan runtime loaded first (as sshd.sh does).
SAN_ENV=(${LB_SANITIZER_PRELOAD:+LD_PRELOAD="$LB_SANITIZER_PRELOAD"}
         ${LB_SANITIZER_PRELOAD:+ASAN_OPTIONS="detect_leaks=0:abort_on_error=1"})
DEFAULT_CONF=$(strings "$PAM_MODULE" | grep -m1 '^/.*lockbox\.conf$')

lb_setup
lb_services_world "$PROFILE" "$PAMDIR" || bail "cannot set up the private PAM world"

# The module reads its compile-time default; lockboxd serves that file (and snapshots it).
mkdir -p "$(dirname "$DEFAULT_CONF")"
cp "$LB_CONF" "$DEFAULT_CONF"; chmod 0644 "$DEFAULT_CONF"
LB_CONF=$DEFAULT_CONF
lb_start_daemon || bail "lockboxd did not start"

# ---- pam-auth-update ---------------------------------------------------------------------------

out=$(DEBIAN_FRONTEND=noninteractive pam-auth-update --package --enable lockbox 2>&1)
ok $? "pam-auth-update --package --enable lockbox succeeds${out:+: $out}"
acct=$(grep -v '^#' /etc/pam.d/common-account | grep .)
like "$acct" $'pam_permit.so\naccount[[:space:]]+required[[:space:]]+pam_lockbox.so' \
        "common-account: pam_lockbox is required, after the primary block's pam_permit (never jumped over)"
is "$(grep -c 'pam_lockbox' /etc/pam.d/common-account)" 1 "common-account: one pam_lockbox line"
like "$(grep pam_lockbox /etc/pam.d/common-session)" $'^session[[:space:]]+required[[:space:]]+pam_lockbox.so' \
        "common-session: pam_lockbox required"
like "$(grep pam_lockbox /etc/pam.d/common-session-noninteractive)" $'^session[[:space:]]+required[[:space:]]+pam_lockbox.so' \
        "common-session-noninteractive (atd, cron): pam_lockbox required"
# lockboxd holds a session where it finds it at the session stage; pam_systemd moves the caller
# into its logind scope, so it must have done so already (profile Priority 0: pam-auth-update
# orders equal priorities by name, descending, so "systemd" comes before "lockbox").
lb_line=$(grep -n pam_lockbox /etc/pam.d/common-session | cut -d: -f1)
sd_line=$(grep -n pam_systemd /etc/pam.d/common-session | cut -d: -f1)
ok "$([ -z "$sd_line" ] || [ "${lb_line:-0}" -gt "$sd_line" ]; echo $?)" \
        "common-session: pam_lockbox comes after pam_systemd (line ${lb_line:-none} > ${sd_line:-none})"
[[ "$acct" == *"pam_unix.so"* ]]
ok $? "common-account still has pam_unix"

# ---- su ----------------------------------------------------------------------------------------

# su run by root skips auth (pam_rootok) but still runs the account and session stages.
su_as() {  # su_as TARGET: su - TARGET -c true, run by root; sets RC
        timeout 20 env "${SAN_ENV[@]}" su - "$1" -c true </dev/null >"$LB_TMP/su.out" 2>&1
        RC=$?
}
mark=$(lb_journal_mark)
su_as lbt-op1
is "$RC" 1 "su to an operator without a grant: refused"
like "$(cat "$LB_TMP/su.out")" "denied|Permission|Authentication" "su says the account was refused"
ok "$(lb_wait_journal_since 5 "$mark" LOCKBOX_EVENT=access-denied LOCKBOX_OPERATOR=lbt-op1 >/dev/null; echo $?)" \
        "su's refusal is audited by lockboxd (access-denied)"
su_as lbt-none
is "$RC" 0 "su to a user in no role: admitted"
su_as root
is "$RC" 0 "su to root: admitted (root is never gated)"
lb_new_request lbt-op1 --duration 1h
as lbt-mgr lockbox approve "$ID" >/dev/null && as lbt-appr lockbox approve "$ID" >/dev/null
su_as lbt-op1
is "$RC" 0 "su to an operator with a grant: admitted"
as lbt-appr lockbox revoke "$ID" --comment "su done" >/dev/null
su_as lbt-op1
is "$RC" 1 "su to the operator after the revoke: refused again"

# ---- atd ---------------------------------------------------------------------------------------

# queue USER NAME: at now, as USER, a job that creates $MARKS/NAME.
MARKS=$LB_TMP/marks
mkdir -p "$MARKS"; chmod 1777 "$MARKS"
queue() {
        (cd / && echo "touch $MARKS/$2" | as "$1" at -M now) >"$LB_TMP/at.out" 2>&1
}
run_atd() {  # one pass over the queue; the jobs' children are given time to finish
        timeout 30 env "${SAN_ENV[@]}" atd -s >>"$LB_TMP/atd.log" 2>&1
        sleep 1
}

lb_new_request lbt-op1 --duration 4s
as lbt-mgr lockbox approve "$ID" >/dev/null && as lbt-appr lockbox approve "$ID" >/dev/null
is "$(lb_state "$ID")" approved "setup: lbt-op1 holds a 4 s grant"
queue lbt-op1 during-grant
ok $? "an operator under a grant queues an at job"
queue lbt-op2 no-grant
queue lbt-none no-role
lb_wait_until 15 '[ "$(lb_state "$ID")" = ended ]'
is "$(lb_state "$ID")" ended "setup: the grant ended"
mark=$(lb_journal_mark)
run_atd
[ ! -e "$MARKS/during-grant" ]
ok $? "the job queued under the grant does not run after it"
[ ! -e "$MARKS/no-grant" ]
ok $? "an operator's job without a grant does not run"
[ -e "$MARKS/no-role" ]
ok $? "the job of a user in no role runs"
lb_wait_journal_since 5 "$mark" LOCKBOX_EVENT=access-denied LOCKBOX_OPERATOR=lbt-op1 >/dev/null
ok $? "atd's account check of the expired operator is audited by lockboxd (access-denied)"
like "$(journal_since "$mark" LOCKBOX_EVENT=access-denied LOCKBOX_OPERATOR=lbt-op1 | jq -r .MESSAGE)" \
        "refused via atd" "the refusal names atd as the service"

# An operator's job while the grant is active runs: the gate is the grant, not the service.
lb_new_request lbt-op2 --duration 1h
as lbt-mgr lockbox approve "$ID" >/dev/null && as lbt-appr lockbox approve "$ID" >/dev/null
queue lbt-op2 with-grant
run_atd
[ -e "$MARKS/with-grant" ]
ok $? "an operator's job run while their grant is active runs"
as lbt-appr lockbox revoke "$ID" --comment "at done" >/dev/null

lb_done
