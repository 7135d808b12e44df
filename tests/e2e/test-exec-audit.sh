#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# e2e: every program an operator runs under a grant is an operator-exec entry (SPEC §8),
# from the kernel audit (rules keyed by the login uid), over a real sshd: directly, in a
# detached setsid child, through sudo to root and su to another account; escaped and
# bounded; nothing for users in no role or root, nothing after the grant ended; records the
# kernel drops end the operator's session (audit-lost); without kernel audit, operator
# sessions are refused. Changes the kernel's audit backlog for one part, and restores it.

if [ -z "${LB_IN_NAMESPACE:-}" ] && { [ ! -x /usr/sbin/sshd ] || ! command -v sudo >/dev/null ||
                                      ! command -v auditctl >/dev/null; }; then
        echo "1..0 # SKIP needs openssh-server, sudo and auditd (for auditctl)"
        exit 0
fi

. "$abs_top_srcdir/tests/lib/harness.sh"
. "$abs_top_srcdir/tests/lib/sshd.sh"

lb_setup
lb_write_config 'pam_timeout = "2s";'
lb_start_daemon || bail "lockboxd did not start"
lb_sshd_start || bail "sshd did not start"
# The namespace's /etc is an overlay: this sudoers file is the test's alone.
echo 'lbt-op1 ALL=(ALL:ALL) NOPASSWD: ALL' >/etc/sudoers.d/lbtest
chmod 0440 /etc/sudoers.d/lbtest

# ==== the host's own rules coexist; an earlier lockboxd's are cleared ===========================

HOST_RULE=(exit,always -F arch=b64 -S fchmodat -k lbtest-host-$$)
STALE_RULE=(exit,always -F arch=b64 -S execve -F auid=4999999 -k lockbox-4999999)   # above pid_max: no such lockboxd
auditctl -a "${HOST_RULE[@]}" >/dev/null && auditctl -a "${STALE_RULE[@]}" >/dev/null || bail "auditctl -a failed"
lb_restart_daemon || bail "lockboxd did not restart"
rules=$(auditctl -l)
ok "$(grep -q "key=lockbox-4999999" <<<"$rules"; [ $? != 0 ]; echo $?)" \
        "at start, lockboxd removes the rules of an earlier lockboxd that is gone"
ok "$(grep -q "key=lbtest-host-$$" <<<"$rules"; echo $?)" "... and leaves the host's own rules alone"
auditctl -d "${HOST_RULE[@]}" >/dev/null

grant() {  # grant USER: an approved request of USER; its id in ID
        lb_new_request "$1" --duration 1h
        run lbt-mgr approve "$ID" >/dev/null
        run lbt-appr approve "$ID" >/dev/null
}
# execs MARKER [FIELD=VALUE...]: operator-exec entries whose argv holds MARKER
execs() {
        local marker=$1; shift
        journal LOCKBOX_EVENT=operator-exec "$@" | jq -c --arg m "$marker" 'select((.LOCKBOX_ARGV | strings) | contains($m))'
}
wait_exec() {  # wait_exec MARKER: until an entry with MARKER is in the journal (5 s)
        local i
        for i in $(seq 100); do
                [ -n "$(execs "$1")" ] && return 0
                sleep 0.05
        done
        return 1
}
exec_field() { execs "$1" | tail -n 1 | jq -r --arg f "$2" '.[$f] // "(absent)"'; }

# ==== what an operator runs =======================================================================

grant lbt-op1
lb_ssh lbt-op1 'cd /tmp && /bin/true direct-marker two
setsid sh -c "/bin/echo detached-marker" </dev/null >/dev/null 2>&1 &
sudo -n /usr/bin/id -u sudo-marker >/dev/null 2>&1; sudo -n /usr/bin/id -u
sudo -n su -s /bin/sh lbt-none -c "/usr/bin/printf su-marker" >/dev/null
wait'
is "$SSH_RC" 0 "the operator's session ran its commands"
like "$SSH_OUT" "^0$" "sudo to root worked (id -u printed 0)"
wait_exec direct-marker
is "$(exec_field direct-marker LOCKBOX_EXE)" /usr/bin/true "a program run directly: its executable"
is "$(exec_field direct-marker LOCKBOX_ARGV)" "/bin/true direct-marker two" "... its argv"
is "$(exec_field direct-marker LOCKBOX_REQUEST_ID)" "$ID" "... the request that allowed it"
is "$(exec_field direct-marker LOCKBOX_USER)" "Microsoft Operator" "... shown as the display name"
is "$(exec_field direct-marker LOCKBOX_OPERATOR)" lbt-op1 "... with the real account"
is "$(exec_field direct-marker LOCKBOX_ACTIVITY)" Exec "... activity Exec"
is "$(exec_field direct-marker LOCKBOX_EUSER)" lbt-op1 "... the effective user"
is "$(exec_field direct-marker LOCKBOX_CWD)" /tmp "... the working directory"
like "$(exec_field direct-marker LOCKBOX_AUDIT_SESSION)" '^[0-9]+$' "... and the audit session"
is "$(exec_field direct-marker SYSLOG_IDENTIFIER)/$(exec_field direct-marker _UID)" lockbox/0 "... written by lockboxd"
like "$(exec_field direct-marker MESSAGE)" "^Operator lbt-op1 ran /usr/bin/true as lbt-op1 under request $ID: /bin/true direct-marker two$" \
        "... in one readable line"
run lbt-appr audit "$ID"
like "$OUT" "ran /usr/bin/true as lbt-op1 under request $ID: /bin/true direct-marker two" \
        "lockbox audit ID shows the operator's commands in the request's story"
run lbt-appr audit "$ID" --json
is "$(jq -r 'select(.event == "operator-exec" and (.argv | startswith("/bin/true direct-marker"))) | .exe' <<<"$OUT" 2>&1)" \
        /usr/bin/true "lockbox audit ID --json: one object per entry, the command's fields included"
wait_exec detached-marker
is "$(exec_field detached-marker LOCKBOX_REQUEST_ID)" "$ID" "a detached setsid child's program is recorded under the request"
wait_exec sudo-marker
is "$(exec_field sudo-marker LOCKBOX_EUSER)" root "through sudo: recorded, effective user root"
is "$(exec_field sudo-marker LOCKBOX_OPERATOR)" lbt-op1 "... still the operator's (login uid)"
wait_exec su-marker
is "$(exec_field su-marker LOCKBOX_EUSER)" lbt-none "through su to another account: recorded as that account"
is "$(exec_field su-marker LOCKBOX_REQUEST_ID)" "$ID" "... under the request"

# Hostile arguments: control characters are escaped, 100 kB of arguments bounded.
big=$(head -c 100000 /dev/zero | tr '\0' x)
lb_ssh lbt-op1 "/bin/true ctl-marker \$(printf 'a\\033[2Jb') $big"
wait_exec ctl-marker
argv=$(exec_field ctl-marker LOCKBOX_ARGV)
like "$argv" '^/bin/true ctl-marker a\\x1b\[2Jb x' "a control character in argv is escaped (\\x1b)"
ok "$([ "$(printf %s "$argv" | wc -c)" -le 4004 ]; echo $?)" "100 kB of arguments is bounded (${#argv} characters shown)"
like "$argv" '…$' "... and marked as cut"

# ==== who is not recorded ===========================================================================

lb_ssh lbt-none '/bin/true none-marker'
/bin/true root-marker
lb_ssh lbt-op1 '/bin/true sync-marker'     # an operator's entry after both: they would be in by now
wait_exec sync-marker
is "$(execs none-marker)" "" "a user in no role: no operator-exec entry"
is "$(execs root-marker)" "" "root: no operator-exec entry"

# After the grant ends, the session is gone: what it would have run next never runs.
lb_ssh_command lbt-op1
# (The marker is made at run time: the shell's own argv must not hold it.)
"${LB_SSH_CMD[@]}" 'echo started; sleep 3; /bin/true after-revoke-$((40 + 2))' >"$LB_TMP/live.out" 2>&1 </dev/null &
live=$!
lb_wait_until 5 'grep -q started "$LB_TMP/live.out"'
run lbt-appr revoke "$ID" --comment "exec test"
wait "$live"
sleep 3.5
is "$(execs after-revoke-42)" "" "a command after the grant ended: no entry (the session was ended first)"
lb_wait_until 5 '[ -z "$(auditctl -l | grep "key=lockbox-$LB_DAEMON_PID")" ]'
ok $? "the operator's last session gone: lockboxd's audit rules are removed"

# ==== our rules removed by someone else (auditctl -D, an auditd restart with -D) =====================

grant lbt-op1
lb_ssh_command lbt-op1
"${LB_SSH_CMD[@]}" 'echo started; exec sleep 30' >"$LB_TMP/live.out" 2>&1 </dev/null &
live=$!
lb_wait_until 5 'grep -q started "$LB_TMP/live.out"'
mark=$(lb_journal_mark)
auditctl -D >/dev/null
lb_wait_until 5 '! kill -0 $live 2>/dev/null'
ok $? "lockboxd's rules deleted by auditctl -D: the operator's session is ended"
like "$(journal_since "$mark" LOCKBOX_EVENT=audit-lost | jq -r .MESSAGE | tail -n 1)" "rules .* were removed" \
        "... with an audit-lost entry saying why"
wait "$live" 2>/dev/null
run lbt-appr revoke "$ID" --comment "exec test"

# ==== records the kernel drops ======================================================================

grant lbt-op1
read -r backlog wait_time < <(auditctl -s | awk '/^backlog_limit/ { b = $2 } /^backlog_wait_time / { w = $2 } END { print b, w }')
lb_ssh_command lbt-op1
"${LB_SSH_CMD[@]}" 'echo started; sleep 1; i=0; while [ $i -lt 3000 ]; do /bin/true; i=$((i + 1)); done; sleep 5' \
        >"$LB_TMP/burst.out" 2>&1 </dev/null &
burst=$!
lb_wait_until 5 'grep -q started "$LB_TMP/burst.out"'
auditctl -b 1 --backlog_wait_time 0 >/dev/null 2>&1
wait "$burst"
auditctl -b "${backlog:-8192}" --backlog_wait_time "${wait_time:-60000}" >/dev/null 2>&1
lb_wait_journal 5 LOCKBOX_EVENT=audit-lost
like "$(journal LOCKBOX_EVENT=audit-lost | jq -r .LOCKBOX_COUNT | sort -n | tail -n 1)" '^[1-9][0-9]*$' \
        "a burst over a tiny backlog: audit-lost, with the count"
like "$(journal LOCKBOX_EVENT=session-terminated LOCKBOX_REQUEST_ID="$ID" | jq -r .MESSAGE | tail -n 1)" \
        "could no longer be recorded" "... and the operator's session is ended"
run lbt-appr revoke "$ID" --comment "exec test"

# ==== no kernel audit: operators refused =============================================================

# A lockboxd without the audit capabilities cannot use the kernel audit (nor can one in a
# container: the kernel serves audit to the initial pid namespace only).
lb_stop_daemon
printf '#!/bin/sh\nexec setpriv --bounding-set=-audit_control,-audit_read %q "$@"\n' "$LOCKBOXD" >"$LB_TMP/lockboxd-noaudit"
chmod 0755 "$LB_TMP/lockboxd-noaudit"
LOCKBOXD=$LB_TMP/lockboxd-noaudit lb_start_daemon || bail "lockboxd (without audit) did not start"
grant lbt-op1
lb_ssh lbt-op1 'echo hello'
like "$SSH_RC/$SSH_OUT" "^25[45]/lockbox: session refused: the kernel audit is unavailable" \
        "no kernel audit: an operator with a grant is refused at the session stage, told why"
like "$(grep -c 'audit is unavailable' "$LB_TMP/lockboxd.log")" '^[1-9]' "... and lockboxd says why"
lb_ssh lbt-none 'echo hello'
is "$SSH_OUT" hello "no kernel audit: a user in no role is unaffected"

lb_done
