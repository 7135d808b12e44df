#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A config mistake never locks the host out (SPEC §7): lockboxd --check-config, and the
# snapshot of the accepted configuration that lockboxd keeps for pam_lockbox (lockboxd(8)).
# The module's side (under real libpam) is tests/pam/test-pam.sh, section 12.

. "$abs_top_srcdir/tests/lib/harness.sh"

lb_setup
lb_call_prepare || bail "lb-call is needed"

# check PATH...: runs lockboxd --check-config as root; sets OUT, ERR, RC.
check() {
        OUT=$("$LOCKBOXD" --check-config "$@" 2>"$LB_TMP/stderr")
        RC=$?
        ERR=$(cat "$LB_TMP/stderr")
}
# check_fails DESCRIPTION REGEX PATH...: exit 2, nothing on stdout, one stderr line matching REGEX.
check_fails() {
        local what=$1 re=$2; shift 2
        check "$@"
        is "$RC/$(printf '%s\n' "$ERR" | grep -c .)/${OUT:-}" "2/1/" "--check-config $what: exit 2, one stderr line"
        like "$ERR" "$re" "--check-config $what: the line says where and why"
}

# ---- --check-config ------------------------------------------------------------------------

check "$LB_CONF"
is "$RC/$OUT/$ERR" "0//" "--check-config of a good file: exit 0, silent"
OUT=$("$LOCKBOXD" -c "$LB_CONF" --check-config 2>&1); RC=$?
is "$RC/$OUT" "0/" "--check-config without PATH checks the -c file"

BAD=$LB_TMP/etc/bad.conf
cp "$LB_CONF" "$BAD"
sed -i 's/^pam_timeout = .*/pam_timeout = "2 parsecs";/' "$BAD"
line=$(grep -n '^pam_timeout' "$BAD" | cut -d: -f1)
check_fails "of a typo" "^lockboxd: $BAD:$line: pam_timeout: invalid duration '2 parsecs'\$" "$BAD"
OUT=$("$LOCKBOXD" -c "$BAD" --check-config 2>&1); RC=$?
is "$RC" 2 "--check-config without PATH: the -c file's typo is found (exit 2)"
check_fails "of a missing file" "^lockboxd: $LB_TMP/etc/none.conf: cannot open: No such file" "$LB_TMP/etc/none.conf"
cp "$LB_CONF" "$LB_TMP/etc/unsafe.conf"; chmod 0666 "$LB_TMP/etc/unsafe.conf"
check_fails "of a world-writable file" "writable by group or others" "$LB_TMP/etc/unsafe.conf"
cp "$LB_CONF" "$LB_TMP/etc/user.conf"; chown lbt-op1 "$LB_TMP/etc/user.conf"
check_fails "of a file owned by a user" "not by root" "$LB_TMP/etc/user.conf"
echo 'no_such_key = 1;' >"$LB_TMP/etc/unknown.conf"; chmod 0644 "$LB_TMP/etc/unknown.conf"
check_fails "of an unknown key" ":1: .*no_such_key" "$LB_TMP/etc/unknown.conf"
check "$LB_CONF" extra
is "$RC" 2 "--check-config with two paths: usage error (exit 2)"
OUT=$(cd "$LB_TMP" && "$LOCKBOXD" --check-config "etc/lockbox.conf" 2>&1); RC=$?
like "$RC/$OUT" "^2/lockboxd: etc/lockbox.conf: unusable as the configuration path: not an absolute path$" \
     "--check-config of a relative path: exit 2, as lockboxd would not start with it"
OUT=$(setpriv --reuid=lbt-none --regid=lbt-none --init-groups -- "$LOCKBOXD" --check-config "$LB_CONF" 2>&1); RC=$?
is "$RC/$OUT" "0/" "--check-config needs no root"
[ -z "$(ls -A /run/lockbox)" ]
ok $? "--check-config writes no snapshot"

# admitted USER: "true" or "false", lockboxd's AccessCheck verdict for USER ("" if no reply).
admitted() {
        lb_access "$1"
        [[ "$CALL_OUT" == "reply "* ]] && echo "$CALL_OUT" | cut -d' ' -f2
}

# ---- the snapshot --------------------------------------------------------------------------

SNAP=$(lb_snapshot_path)
lb_start_daemon || bail "lockboxd did not start"
cmp -s "$SNAP" "$LB_CONF"
ok $? "at start lockboxd keeps the accepted file, byte for byte, at $SNAP"
is "$(stat -c '%u %a' "$SNAP")" "0 644" "the snapshot is root's, mode 0644 like the file"
is "$(ls -A /run/lockbox | grep -c .)" 1 "no temporary file is left beside it"

REQ=$(as lbt-op1 lockbox request --ticket SR-1 --reason snapshot --duration 1h)
as lbt-mgr lockbox approve "$REQ" >/dev/null && as lbt-appr lockbox approve "$REQ" >/dev/null
is "$(admitted lbt-op2)" false "setup: operator without a grant refused by lockboxd"
cp "$SNAP" "$LB_TMP/snap.before"

# A typo, plus a change that would admit everyone: lockboxd must take neither.
lb_write_config 'enabled = false;' 'pam_timeout = "2 parsecs";'
lb_reload_daemon
is "$?" 1 "SIGHUP with a typo: the reload fails"
like "$(grep 'reload failed' "$LB_TMP/lockboxd.log" | tail -1)" "$LB_CONF:[0-9]+: pam_timeout" \
        "the failed reload names file, line and key"
is "$(admitted lbt-op2)" false "after the failed reload lockboxd keeps the old rules (operator without a grant refused)"
is "$(admitted lbt-op1)" true "after the failed reload an operator with a grant is still admitted"
cmp -s "$SNAP" "$LB_TMP/snap.before"
ok $? "after the failed reload the snapshot is the old one"

# A good edit reaches daemon and snapshot together.
lb_write_config 'enabled = false;'
lb_reload_daemon
is "$?" 0 "SIGHUP with a good file: reloaded"
cmp -s "$SNAP" "$LB_CONF"
ok $? "after the good reload the snapshot is the new file"
is "$(admitted lbt-op2)" true "after the good reload lockboxd applies it (disabled: operator admitted)"

# A new socket needs a restart: the module would dial it at once while lockboxd listens on
# the old one, so the reload fails and the snapshot stays.
lb_write_config
lb_reload_daemon || bail "reload to enabled failed"
cp "$SNAP" "$LB_TMP/snap.enabled"
sed -i "s|^socket = .*|socket = \"$LB_TMP/run/other.sock\";|" "$LB_CONF"
lb_reload_daemon
is "$?" 1 "SIGHUP with another socket: the reload fails"
like "$(grep 'reload failed' "$LB_TMP/lockboxd.log" | tail -1)" "socket, database and store can change only at a restart" \
     "... and says a restart is needed"
cmp -s "$SNAP" "$LB_TMP/snap.enabled"
ok $? "... the snapshot keeps the socket lockboxd listens on"
lb_write_config

# A snapshot that cannot be written fails the reload: daemon and module never disagree.
lb_write_config
lb_reload_daemon || bail "reload to enabled failed"
cp "$SNAP" "$LB_TMP/snap.enabled"
lb_write_config 'enabled = false;'
mount -t tmpfs -o ro,mode=0755 tmpfs /run/lockbox
lb_reload_daemon
is "$?" 1 "SIGHUP when the snapshot cannot be written: the reload fails"
is "$(admitted lbt-op2)" false "... and lockboxd keeps the rules the snapshot has"
umount /run/lockbox
cmp -s "$SNAP" "$LB_TMP/snap.enabled"
ok $? "... the snapshot the module reads"
lb_stop_daemon

# A start that fails (the file is broken) leaves the last accepted snapshot alone.
lb_write_config 'pam_timeout = "2 parsecs";'
cp "$SNAP" "$LB_TMP/snap.before"
timeout 10 "$LOCKBOXD" -c "$LB_CONF" >"$LB_TMP/start.log" 2>&1
is "$?" 1 "lockboxd does not start on a broken file"
cmp -s "$SNAP" "$LB_TMP/snap.before"
ok $? "... and the snapshot of the last accepted file stays"

lb_done
