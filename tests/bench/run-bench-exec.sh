#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Operator commands on the record (SPEC §8 operator-exec): figures, over a real sshd session.
#
#   run-bench-exec.sh [-n EXECS]
#
#  1. The cost an operator's fork+exec pays for being recorded: EXECS (5000) runs of
#     /bin/true in an operator's session, with record_commands (the kernel audit rule of the
#     operator, lockboxd reading and writing each record) and without it.
#  2. Commands per second recorded without loss: the same burst, then how many operator-exec
#     entries reached the journal, and whether the kernel reported any record lost.
# Prints figures and asserts nothing; exits 1 only when something did not run.

. "$abs_top_srcdir/tests/lib/harness.sh"
. "$abs_top_srcdir/tests/lib/sshd.sh"

EXECS=5000
while [ $# -gt 0 ]; do
        case $1 in
        -n) EXECS=$2; shift 2 ;;
        *) echo "usage: run-bench-exec.sh [-n EXECS]" >&2; exit 2 ;;
        esac
done

lb_setup
lb_write_config 'pam_timeout = "2s";'
lb_start_daemon || bail "lockboxd did not start"
lb_sshd_start || bail "sshd did not start"

grant() {
        lb_new_request lbt-op1 --duration 1h
        run lbt-mgr approve "$ID" >/dev/null
        run lbt-appr approve "$ID" >/dev/null
}
# burst: EXECS runs of /bin/true in one operator session; prints the milliseconds they took
burst() {
        lb_ssh lbt-op1 "s=\$(date +%s%N); i=0; while [ \$i -lt $EXECS ]; do /bin/true; i=\$((i + 1)); done; \
echo \$(( (\$(date +%s%N) - s) / 1000000 ))"
        [ "$SSH_RC" = 0 ] || bail "the operator's session failed: $SSH_ERR"
        echo "$SSH_OUT"
}

lost_before=$(auditctl -s 2>/dev/null | awk '$1 == "lost" { print $2 }')
grant
recorded_ms=$(burst)
sleep 2
entries=$(journal LOCKBOX_EVENT=operator-exec LOCKBOX_REQUEST_ID="$ID" LOCKBOX_EXE=/usr/bin/true | grep -c .)
lost_after=$(auditctl -s 2>/dev/null | awk '$1 == "lost" { print $2 }')
lost_entries=$(journal LOCKBOX_EVENT=audit-lost | grep -c .)
run lbt-appr revoke "$ID" --comment bench >/dev/null

lb_write_config 'pam_timeout = "2s";' 'record_commands = false;'
lb_reload_daemon || bail "reload failed"
grant
plain_ms=$(burst)

echo "# $EXECS fork+exec of /bin/true in an operator's ssh session"
echo "#   recorded:     $recorded_ms ms ($(( EXECS * 1000 / (recorded_ms > 0 ? recorded_ms : 1) )) per second)"
echo "#   not recorded: $plain_ms ms ($(( EXECS * 1000 / (plain_ms > 0 ? plain_ms : 1) )) per second)"
echo "#   cost per fork+exec: $(( (recorded_ms - plain_ms) * 1000 / EXECS )) µs"
echo "#   operator-exec entries in the journal: $entries of $EXECS"
echo "#   records the kernel lost meanwhile: $(( ${lost_after:-0} - ${lost_before:-0} )); audit-lost entries: $lost_entries"
lb_done
