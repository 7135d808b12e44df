#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Faults on the login path and around the store and the journal. The login path is exercised
# with lb-call (AccessCheck through the PAM module's own client library, as root, under the
# module's bound pam_timeout = 2 s) and, if the build has tests/pam/pam-run, through the real
# module under libpam; the CLI is exercised as real test users.
#
#   helper down ........ socket gone; stale socket file with nobody listening; lockboxd frozen
#   helper hung ........ a listener that accepts and never answers; one that hangs up; one that
#                        answers garbage
#   store unreadable ... at start: unreadable file or directory (root without CAP_DAC_OVERRIDE),
#                        wrong kind of file, symlink, wrong owner, group-writable, read-only
#                        file system -> lockboxd refuses to start, one clear line
#                        while running: store files made immutable (the kernel refuses writes
#                        through open fds; a read-only remount is refused with EBUSY while the
#                        daemon holds the store open) -> decisions exit 4, reads work, nothing
#                        acknowledged lost
#   store corrupt ...... garbage in the header, in the middle, truncated -> refuses to start
#   disk full .......... the store on a 1 MiB tmpfs filled to ENOSPC -> request exits 4, no
#                        partial request (store or audit), reads keep working, space freed ->
#                        requests work again
#   journal gone ....... journald dead (socket left behind), journald gone (socket removed),
#                        journald stuck (SIGSTOP, its queue full) -> decisions exit 4 and are
#                        not taken, AccessCheck refused ("no audit, no access"); journald back
#                        -> works again
# Each fault's time to refusal is printed.

. "$abs_top_srcdir/tests/lib/harness.sh"

lb_setup
lb_call_prepare || bail "cannot build lb-call"
PAM_RUN="$abs_top_builddir/tests/pam/pam-run"
[ -x "$PAM_RUN" ] || PAM_RUN=""
PAM_TIMEOUT_MS=2000
LOGIN_SLACK_MS=1000     # what a login may take beyond pam_timeout before we call it a hang

FIGURES=()
figure() { FIGURES+=("$(printf '%-58s %6s ms' "$1" "$2")"); }

# timed USER ARGS...: run the CLI as USER; sets OUT, ERR, RC and MS.
timed() {
        local t0
        t0=$(lb_now_ms)
        run "$@"
        MS=$(( $(lb_now_ms) - t0 ))
}

# refused_cli WANT WHAT: after timed, one TAP line for "exit WANT, one 'lockbox: ' stderr line".
refused_cli() {
        local want=$1; shift
        lb_is_error "$want" "$* (exit $want, ${MS} ms)"
}

# login_refused WHAT: after lb_access, the login path refused (no reply, or an error reply),
# within pam_timeout plus slack.
login_refused() {
        ok $([ "$CALL_RC" = 4 ] || [ "$CALL_RC" = 1 ] && echo 0 || echo 1) \
                "$* -> AccessCheck refused (lb-call exit $CALL_RC: ${CALL_OUT:0:100})"
        ok $([ "$CALL_INNER_MS" -le $((PAM_TIMEOUT_MS + LOGIN_SLACK_MS)) ] && echo 0 || echo 1) \
                "$* -> the login path gives up within pam_timeout (${CALL_INNER_MS} ms, bound ${PAM_TIMEOUT_MS} ms + ${LOGIN_SLACK_MS} ms)"
}

# pam_account CONFIG USER: the real module's account stage under libpam (pam-run --confdir);
# sets PAM_RESULT and PAM_MS. Only when the build has pam-run.
pam_account() {
        local conf=$1 user=$2 dir="$LB_TMP/pam.d" out
        mkdir -p "$dir"
        echo "account required $PAM_MODULE config=$conf" >"$dir/lockbox-faults"
        out=$(timeout 120 "$PAM_RUN" --confdir "$dir" --rhost 127.0.0.1 --tty ssh lockbox-faults "$user" 2>&1)
        PAM_RESULT=$(sed -n 's/^account: //p' <<<"$out")
        PAM_MS=$(sed -n 's/^account_ms: \([0-9]*\).*/\1/p' <<<"$out")
        : "${PAM_MS:=999999}"
}

pam_refused() {
        [ -n "$PAM_RUN" ] || return 0
        pam_account "$1" lbt-op1
        is "$PAM_RESULT" PAM_PERM_DENIED "$2 -> pam_lockbox account stage: PAM_PERM_DENIED"
        ok $([ "$PAM_MS" -le $((PAM_TIMEOUT_MS + LOGIN_SLACK_MS)) ] && echo 0 || echo 1) \
                "$2 -> pam_lockbox returns within pam_timeout (${PAM_MS} ms)"
        figure "$2 (pam_lockbox account)" "$PAM_MS"
}

# A Unix socket listener that misbehaves: hang (accept, never answer), close (accept, hang
# up at once), garbage (answer nonsense, then hang up).
cat >"$LB_TMP/listener.py" <<'EOF'
import os, socket, sys, time
mode, path = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    os.unlink(path)
except FileNotFoundError:
    pass
s.bind(path)
os.chmod(path, 0o666)
s.listen(64)
held = []
while True:
    c, _ = s.accept()
    if mode == "hang":
        held.append(c)
    elif mode == "close":
        c.close()
    else:
        try:
            c.recv(256)
            c.sendall(b"REJECTED NONSENSE\r\n\x00\xff garbage\r\n")
        except OSError:
            pass
        c.close()
EOF
PYTHON=$(command -v python3)

# start_listener MODE PATH: sets LISTENER_PID once PATH is a socket.
start_listener() {
        "$PYTHON" "$LB_TMP/listener.py" "$1" "$2" >/dev/null 2>&1 &
        LISTENER_PID=$!
        LB_PIDS+=("$LISTENER_PID")
        lb_wait_for 10 test -S "$2"
}
stop_listener() {
        kill "$LISTENER_PID" 2>/dev/null
        wait "$LISTENER_PID" 2>/dev/null
        lb_forget_pid "$LISTENER_PID"
}

# conf_with_socket PATH: a copy of the test config pointing at another socket; prints its path.
conf_with_socket() {
        local c="$LB_TMP/etc/$(basename "$1").conf"
        sed "s|^socket = .*|socket = \"$1\";|" "$LB_CONF" >"$c"
        chmod 0644 "$c"
        echo "$c"
}

lb_start_daemon || bail "lockboxd did not start"

# ================================================================================================
# helper hung: accepts, never answers (the CLI's own bound is 30 s: it runs in the background
# while the other faults are tested, on a socket of its own)
# ================================================================================================

HUNG="$LB_TMP/run/hung.sock"
start_listener hang "$HUNG" || bail "the hanging listener did not start"
HUNG_LISTENER=$LISTENER_PID
(
        t0=$(lb_now_ms)
        out=$(as lbt-admin timeout 45 "$LOCKBOX" -c "$LB_CONF" --socket "$HUNG" status 2>&1)
        echo "$? $(( $(lb_now_ms) - t0 )) $out" >"$LB_TMP/hung-cli"
) &
HUNG_CLI=$!

lb_access lbt-op1 "$PAM_TIMEOUT_MS" "$HUNG"
login_refused "helper hung (accepts, never answers)"
is "$CALL_OUT" "unreachable Connection timed out" "helper hung: the client library reports a timeout"
ok $([ "$CALL_MS" -le $((PAM_TIMEOUT_MS + 3000)) ] && echo 0 || echo 1) \
        "helper hung: lb-call exits soon after its deadline (no flush of a half-open connection; ${CALL_MS} ms)"
figure "helper hung: AccessCheck (client library, 2 s bound)" "$CALL_INNER_MS"
pam_refused "$(conf_with_socket "$HUNG")" "helper hung"

# lockboxd itself frozen: the kernel still queues connections, nobody answers.
kill -STOP "$LB_DAEMON_PID"
lb_access lbt-op1 "$PAM_TIMEOUT_MS"
login_refused "lockboxd frozen (SIGSTOP)"
figure "lockboxd frozen: AccessCheck (client library, 2 s bound)" "$CALL_INNER_MS"
kill -CONT "$LB_DAEMON_PID"
lb_access lbt-op1 "$PAM_TIMEOUT_MS"
is "$CALL_RC" 0 "lockboxd thawed (SIGCONT): AccessCheck is answered again"

# ================================================================================================
# helper that hangs up at once, or answers garbage
# ================================================================================================

for mode in close garbage; do
        sock="$LB_TMP/run/$mode.sock"
        start_listener "$mode" "$sock" || bail "the $mode listener did not start"
        t0=$(lb_now_ms)
        OUT=$(as lbt-admin timeout 45 "$LOCKBOX" -c "$LB_CONF" --socket "$sock" status 2>"$LB_TMP/stderr")
        RC=$?; ERR=$(cat "$LB_TMP/stderr"); MS=$(( $(lb_now_ms) - t0 ))
        refused_cli 4 "helper $mode: lockbox status"
        figure "helper $mode: lockbox status" "$MS"
        lb_access lbt-op1 "$PAM_TIMEOUT_MS" "$sock"
        login_refused "helper $mode"
        figure "helper $mode: AccessCheck" "$CALL_INNER_MS"
        stop_listener
done

# ================================================================================================
# helper down
# ================================================================================================

lb_new_request lbt-op1
KEEP1=$ID
lb_stop_daemon
ok $([ ! -e "$LB_SOCKET" ] && echo 0 || echo 1) "lockboxd stopped (SIGTERM): its socket is gone"
timed lbt-admin status
refused_cli 4 "helper down (no socket): lockbox status"
figure "helper down (no socket): lockbox status" "$MS"
timed lbt-op1 request --ticket SR-DOWN --reason "helper down"
refused_cli 4 "helper down (no socket): lockbox request"
timed lbt-mgr approve "$KEEP1"
refused_cli 4 "helper down (no socket): lockbox approve"
figure "helper down (no socket): lockbox approve" "$MS"
lb_access lbt-op1 "$PAM_TIMEOUT_MS"
login_refused "helper down (no socket)"
figure "helper down (no socket): AccessCheck" "$CALL_INNER_MS"
pam_refused "$LB_CONF" "helper down (no socket)"

lb_start_daemon || bail "lockboxd did not start again"
kill -KILL "$LB_DAEMON_PID"; wait "$LB_DAEMON_PID" 2>/dev/null; lb_forget_pid "$LB_DAEMON_PID"
ok $([ -S "$LB_SOCKET" ] && echo 0 || echo 1) "lockboxd killed (SIGKILL): a stale socket file is left behind"
timed lbt-admin status
refused_cli 4 "helper down (stale socket): lockbox status"
figure "helper down (stale socket): lockbox status" "$MS"
timed lbt-mgr approve "$KEEP1"
refused_cli 4 "helper down (stale socket): lockbox approve"
lb_access lbt-op1 "$PAM_TIMEOUT_MS"
login_refused "helper down (stale socket)"
figure "helper down (stale socket): AccessCheck" "$CALL_INNER_MS"
pam_refused "$LB_CONF" "helper down (stale socket)"

lb_start_daemon || bail "lockboxd did not start over its stale socket"
is "$(lb_state "$KEEP1")" pending-manager "after the outages the request is still there, undecided"

# ================================================================================================
# store unreadable, of the wrong kind, or corrupt: lockboxd refuses to start
# ================================================================================================

for i in $(seq 40); do
        as lbt-op2 lockbox request --ticket "SR-FILL-$i" --reason "$(printf 'fill %.0s' $(seq 60))" >/dev/null
done
lb_new_request lbt-op2; KEEP2=$ID
run lbt-mgr approve "$KEEP2"
n_before=$(lb_count)
lb_stop_daemon
DB=$LB_DATABASE DBDIR=$(dirname "$LB_DATABASE")
cp "$DB" "$LB_TMP/good.db"
SIZE=$(stat -c %s "$DB")

# refuses_start WHAT [WRAPPER...]: lockboxd must exit non-zero within 10 s, with one line
# "lockboxd: ..." naming the store or its directory, and serve nothing.
refuses_start() {
        local what=$1 t0 rc ms out lines; shift
        t0=$(lb_now_ms)
        out=$(timeout 10 "$@" "$LOCKBOXD" -c "$LB_CONF" 2>&1)
        rc=$?
        ms=$(( $(lb_now_ms) - t0 ))
        lines=$(printf '%s\n' "$out" | grep -c .)
        if [ "$rc" != 0 ] && [ "$rc" != 124 ] && [ "$lines" = 1 ] && [[ "$out" == "lockboxd: "*"$DBDIR"* ]] &&
           [ ! -S "$LB_SOCKET" ]; then
                ok 0 "$what: lockboxd refuses to start (exit $rc, ${ms} ms)"
        else
                ok 1 "$what: lockboxd refuses to start with one clear line"
                printf '#   exit %s after %s ms; output: %.400s\n' "$rc" "$ms" "$out"
        fi
        diag "  $what: $out"
        figure "store $what: lockboxd start refused" "$ms"
        rm -f "$LB_SOCKET"
}
restore_db() {
        rm -rf "$DB" "$DB-wal" "$DB-shm"
        cp "$LB_TMP/good.db" "$DB"
        chmod 0600 "$DB"
}
NODAC=(setpriv --bounding-set=-dac_override,-dac_read_search)

chmod 000 "$DB"
refuses_start "file mode 000, root without CAP_DAC_OVERRIDE" "${NODAC[@]}"
restore_db
chmod 000 "$DBDIR"
refuses_start "directory mode 000, root without CAP_DAC_OVERRIDE" "${NODAC[@]}"
chmod 0700 "$DBDIR"
mv "$DBDIR" "$DBDIR.real"; echo "not a directory" >"$DBDIR"
refuses_start "directory replaced by a regular file"
rm -f "$DBDIR"; mv "$DBDIR.real" "$DBDIR"
rm -f "$DB"; mkdir "$DB"
refuses_start "file replaced by a directory"
rmdir "$DB"; restore_db
mv "$DB" "$LB_TMP/elsewhere.db"; ln -s "$LB_TMP/elsewhere.db" "$DB"
refuses_start "file replaced by a symlink"
rm -f "$DB"; restore_db
chown lbt-none "$DB"
refuses_start "file owned by another user"
restore_db
chmod 0660 "$DB"
refuses_start "file group-writable"
restore_db
chmod 0770 "$DBDIR"
refuses_start "directory group-writable"
chmod 0700 "$DBDIR"
mount --bind "$DBDIR" "$DBDIR" && mount -o remount,bind,ro "$DBDIR"
refuses_start "directory on a read-only file system"
umount "$DBDIR"
dd if=/dev/urandom of="$DB" bs=100 count=1 conv=notrunc 2>/dev/null
refuses_start "corrupt: garbage over the header"
restore_db
dd if=/dev/urandom of="$DB" bs=4096 seek=$((SIZE / 4096 / 2)) count=2 conv=notrunc 2>/dev/null
refuses_start "corrupt: garbage in the middle (2 pages)"
restore_db
truncate -s $((SIZE / 2)) "$DB"
refuses_start "corrupt: truncated to half its size"
restore_db

# Root with CAP_DAC_OVERRIDE reads a mode-000 file: that is not a fault, and it starts.
chmod 000 "$DB"
lb_start_daemon
ok $? "file mode 000, full root: lockboxd starts (root reads it anyway)"
lb_stop_daemon
restore_db
lb_start_daemon || bail "lockboxd did not start on the restored store"
is "$(lb_count)" "$n_before" "after the refused starts the store is whole ($n_before requests)"
is "$(lb_state "$KEEP2")" pending "and the acknowledged pre-approval is there"

# ================================================================================================
# store read-only while running
# ================================================================================================

lb_stop_daemon
RO="$LB_TMP/rostore"
mkdir -p "$RO"
if truncate -s 32M "$LB_TMP/ext4.img" && mkfs.ext4 -q -F "$LB_TMP/ext4.img" >/dev/null 2>&1 &&
   mount -o loop "$LB_TMP/ext4.img" "$RO" 2>/dev/null; then
        chmod 0700 "$RO"
        # The store's directory is a bind mount of its own, so that it can be remounted
        # read-only under the running daemon, if the kernel lets us.
        mount --bind "$RO" "$RO"
        lb_write_config "database = \"$RO/lockbox.db\";"
        LB_DATABASE="$RO/lockbox.db"
        lb_start_daemon || bail "lockboxd did not start on the ext4 store"
        lb_new_request lbt-op1; RO1=$ID
        lb_new_request lbt-op1; RO2=$ID
        run lbt-mgr approve "$RO2"
        run lbt-appr approve "$RO2"
        is "$(lb_state "$RO2")" approved "read-only store: set-up, a grant is approved"
        n_ro_audit=$(journal_field LOCKBOX_EVENT LOCKBOX_REQUEST_ID="$RO1" LOCKBOX_EVENT=manager-approved | grep -c .)

        # Linux refuses to make a mount read-only while a process holds a file on it open for
        # writing (EBUSY), and lockboxd holds its store open. Then the store's files are made
        # immutable instead: ext4 refuses writes through already open fds too (EPERM).
        if mount -o remount,bind,ro "$RO" 2>/dev/null; then
                RO_HOW="remounted read-only"
                diag "read-only store: the store's mount was remounted read-only under lockboxd"
        else
                RO_HOW="immutable files"
                diag "read-only store: remount,ro refused (EBUSY) while lockboxd holds the store open;"
                diag "  the store's files are made immutable instead (chattr +i)"
                chattr +i "$RO/lockbox.db" "$RO/lockbox.db-wal" "$RO/lockbox.db-shm" 2>/dev/null
                lsattr "$RO/lockbox.db" 2>/dev/null | grep -q '^....i' || RO_HOW=""
        fi
        if [ -n "$RO_HOW" ]; then
                timed lbt-mgr approve "$RO1"
                refused_cli 4 "read-only store ($RO_HOW): lockbox approve"
                figure "read-only store: lockbox approve" "$MS"
                timed lbt-op1 request --ticket SR-RO --reason "read-only store"
                refused_cli 4 "read-only store: lockbox request"
                figure "read-only store: lockbox request" "$MS"
                timed lbt-appr revoke "$RO2"
                refused_cli 4 "read-only store: lockbox revoke"
                run lbt-admin list --all --json
                is "$RC" 0 "read-only store: list still works"
                is "$(jq -r --arg a "$RO1" --arg b "$RO2" '[.[] | select(.id == $a or .id == $b) | .state] | sort | join(" ")' <<<"$OUT")" \
                        "approved pending-manager" "read-only store: nothing acknowledged is lost, nothing refused was taken"
                is "$(jq length <<<"$OUT")" 2 "read-only store: no partial request"
                is "$(journal_field LOCKBOX_EVENT LOCKBOX_REQUEST_ID="$RO1" LOCKBOX_EVENT=manager-approved | grep -c .)" \
                        "$n_ro_audit" "read-only store: the journal does not report the refused approval as taken"
                is "$(journal_field LOCKBOX_REQUEST_ID LOCKBOX_EVENT=request-created LOCKBOX_TICKET=SR-RO | grep -c .)" 0 \
                        "read-only store: the journal does not report the refused request as created"
                run lbt-admin status
                is "$RC" 0 "read-only store: status still works"
                lb_access lbt-op1 "$PAM_TIMEOUT_MS"
                like "$CALL_OUT" "^reply true $RO2 " "read-only store: the approved operator is still admitted (a read)"
                ok $(kill -0 "$LB_DAEMON_PID" 2>/dev/null && echo 0 || echo 1) "read-only store: lockboxd keeps serving"
                if [ "$RO_HOW" = "immutable files" ]; then
                        chattr -i "$RO/lockbox.db" "$RO/lockbox.db-wal" "$RO/lockbox.db-shm"
                else
                        mount -o remount,bind,rw "$RO"
                fi
                run lbt-mgr approve "$RO1"
                is "$RC" 0 "store writable again: the approval goes through"
                lb_new_request lbt-op1
                is "$RC" 0 "store writable again: requests work"
        else
                diag "SKIP read-only store while running: neither a read-only remount nor chattr +i works here"
        fi
        lb_stop_daemon
        is "$(sqlite3 -batch "$RO/lockbox.db" 'PRAGMA integrity_check' 2>&1)" ok "read-only store: integrity_check = ok afterwards"
        umount "$RO"; umount "$RO"
else
        diag "SKIP read-only store while running: cannot mount an ext4 image on a loop device here"
fi

# ================================================================================================
# disk full
# ================================================================================================

FULL="$LB_TMP/full"
mkdir -p "$FULL"
mount -t tmpfs -o size=1M,mode=0700 tmpfs "$FULL" || bail "cannot mount a small tmpfs"
lb_write_config "database = \"$FULL/lockbox.db\";"
LB_DATABASE="$FULL/lockbox.db"
lb_start_daemon || bail "lockboxd did not start on the small tmpfs"
lb_new_request lbt-op1; F1=$ID
lb_new_request lbt-op1; F2=$ID
run lbt-mgr approve "$F2"
dd if=/dev/zero of="$FULL/filler" bs=4k >/dev/null 2>&1
diag "disk full: $(df -k "$FULL" | awk 'NR == 2 { print $4 " KiB available" }')"

REASON=$(printf 'x%.0s' $(seq 1000))
n_ok=0 failed_ticket=""
for k in $(seq 300); do
        timed lbt-op1 request --ticket "SR-FULL-$k" --reason "$REASON"
        if [ "$RC" != 0 ]; then failed_ticket="SR-FULL-$k"; break; fi
        n_ok=$((n_ok + 1))
done
ok $([ -n "$failed_ticket" ] && echo 0 || echo 1) "disk full: a request is refused before long ($n_ok went through first)"
refused_cli 4 "disk full: lockbox request"
figure "disk full: lockbox request" "$MS"
run lbt-admin list --all --json
is "$RC" 0 "disk full: list still works"
is "$(jq length <<<"$OUT")" $((2 + n_ok)) "disk full: the store holds exactly the acknowledged requests (no partial request)"
is "$(jq -r --arg t "$failed_ticket" '[.[] | select(.ticket == $t)] | length' <<<"$OUT")" 0 \
        "disk full: the refused request is not in the store"
is "$(journal_field LOCKBOX_REQUEST_ID LOCKBOX_EVENT=request-created LOCKBOX_TICKET="$failed_ticket" | grep -c .)" 0 \
        "disk full: the journal does not report the refused request as created"
n_mgr_audit=$(journal_field LOCKBOX_EVENT LOCKBOX_REQUEST_ID="$F1" LOCKBOX_EVENT=manager-approved | grep -c .)
timed lbt-mgr approve "$F1"
refused_cli 4 "disk full: lockbox approve"
figure "disk full: lockbox approve" "$MS"
is "$(lb_state "$F1")" pending-manager "disk full: the refused approval was not taken"
is "$(journal_field LOCKBOX_EVENT LOCKBOX_REQUEST_ID="$F1" LOCKBOX_EVENT=manager-approved | grep -c .)" "$n_mgr_audit" \
        "disk full: the journal does not report the refused approval as taken"
run lbt-admin status
is "$RC" 0 "disk full: status still works"
run lbt-appr show "$F2"
is "$RC" 0 "disk full: show still works"
lb_access lbt-op1 "$PAM_TIMEOUT_MS"
is "$CALL_RC" 0 "disk full: AccessCheck is still answered"
ok $(kill -0 "$LB_DAEMON_PID" 2>/dev/null && echo 0 || echo 1) "disk full: lockboxd keeps serving"

rm -f "$FULL/filler"
lb_new_request lbt-op1
is "$RC" 0 "space freed: requests work again"
run lbt-mgr approve "$F1"
is "$RC" 0 "space freed: the approval goes through"
is "$(lb_count)" $((3 + n_ok)) "space freed: every acknowledged request is there"
lb_stop_daemon
is "$(sqlite3 -batch "$LB_DATABASE" 'PRAGMA integrity_check' 2>&1)" ok "disk full: integrity_check = ok afterwards"
umount "$FULL"

# ================================================================================================
# journal unavailable: no audit, no access
# ================================================================================================

lb_write_config
lb_start_daemon || bail "lockboxd did not start"
lb_new_request lbt-op1; J1=$ID
lb_new_request lbt-op1; J2=$ID
lb_new_request lbt-op2; J3=$ID
run lbt-mgr approve "$J2"
run lbt-appr approve "$J2"
is "$(lb_state "$J2")" approved "journal faults: set-up, lbt-op1 holds an approved grant"
lb_access lbt-op1 "$PAM_TIMEOUT_MS"
like "$CALL_OUT" "^reply true " "journal up: the operator with a grant is admitted"
if [ -n "$PAM_RUN" ]; then
        pam_account "$LB_CONF" lbt-op1
        is "$PAM_RESULT" PAM_SUCCESS "journal up: pam_lockbox admits the operator with a grant"
fi

lb_access_ok() { lb_access "$1" "$PAM_TIMEOUT_MS"; [ "$CALL_RC" = 0 ]; }

JSOCKS=(/run/systemd/journal/socket /run/systemd/journal/stdout /run/systemd/journal/dev-log
        /run/systemd/journal/io.systemd.journal)

# journal_faults WHAT: the checks, for a journal that cannot take entries.
journal_faults() {
        local what=$1 n
        n=$(lb_count)
        lb_access lbt-op1 "$PAM_TIMEOUT_MS"
        is "$CALL_RC" 1 "$what: AccessCheck for an operator with a grant is refused with an error (got: ${CALL_OUT:0:90})"
        figure "$what: AccessCheck" "$CALL_INNER_MS"
        if [ -n "$PAM_RUN" ]; then
                pam_account "$LB_CONF" lbt-op1
                is "$PAM_RESULT" PAM_PERM_DENIED "$what: pam_lockbox refuses the operator with a grant (no audit, no access)"
                figure "$what (pam_lockbox account)" "$PAM_MS"
        fi
        timed lbt-mgr approve "$J1"
        refused_cli 4 "$what: lockbox approve"
        figure "$what: lockbox approve" "$MS"
        is "$(lb_state "$J1")" pending-manager "$what: the approval was not taken"
        timed lbt-appr revoke "$J2"
        refused_cli 4 "$what: lockbox revoke"
        is "$(lb_state "$J2")" approved "$what: the revocation was not taken"
        timed lbt-op2 cancel "$J3"
        refused_cli 4 "$what: lockbox cancel"
        timed lbt-op1 request --ticket SR-NOJOURNAL --reason "no journal"
        refused_cli 4 "$what: lockbox request"
        figure "$what: lockbox request" "$MS"
        is "$(lb_count)" "$n" "$what: no request was filed"
        ok $(kill -0 "$LB_DAEMON_PID" 2>/dev/null && echo 0 || echo 1) "$what: lockboxd keeps running"
}

# journald dead, its socket left behind (connection refused).
lb_stop_journald
if [ ! -S /run/systemd/journal/socket ]; then
        "$PYTHON" -c 'import socket, sys; socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).bind(sys.argv[1])' \
                /run/systemd/journal/socket
fi
journal_faults "journald dead (stale socket)"

# journald gone altogether: no socket at all.
rm -f "${JSOCKS[@]}"
journal_faults "journald gone (no socket)"

rm -f "${JSOCKS[@]}"
lb_start_journald
run lbt-op1 request --ticket SR-JOURNAL-BACK --reason "journal back"
is "$RC" 0 "journald back: requests work again"
J4=$OUT
run lbt-mgr approve "$J4"
is "$RC" 0 "journald back: decisions work again"
lb_access lbt-op1 "$PAM_TIMEOUT_MS"
is "$CALL_RC" 0 "journald back: AccessCheck is answered again"
ok $(lb_wait_journal 5 LOCKBOX_REQUEST_ID="$J4" LOCKBOX_EVENT=manager-approved; echo $?) \
        "journald back: the decision is in the journal"

# journald stuck (SIGSTOP): its socket is there and accepts entries until its queue is full
# (net.unix.max_dgram_qlen), then a sender blocks. lockboxd must refuse, not hang with it.
lb_new_request lbt-op1; J5=$ID
kill -STOP "$LB_JOURNALD_PID"
stuck_at=""
fill_max=$(( $(cat /proc/sys/net/unix/max_dgram_qlen 2>/dev/null || echo 512) + 100 ))
for k in $(seq "$fill_max"); do # each AccessCheck of an operator writes one entry
        lb_access lbt-op2 "$PAM_TIMEOUT_MS"
        if [ "$CALL_RC" != 0 ]; then stuck_at=$k; break; fi
done
ok $([ -n "$stuck_at" ] && echo 0 || echo 1) \
        "journald stuck: AccessCheck is refused once journald's queue is full (after ${stuck_at:-more than $fill_max} entries, ${CALL_INNER_MS} ms)"
figure "journald stuck: AccessCheck" "$CALL_INNER_MS"
login_refused "journald stuck"
timed lbt-mgr approve "$J5"
refused_cli 4 "journald stuck: lockbox approve"
figure "journald stuck: lockbox approve" "$MS"
is "$(lb_state "$J5")" pending-manager "journald stuck: the approval was not taken"
run lbt-admin status
is "$RC" 0 "journald stuck: lockboxd still answers (status)"
kill -CONT "$LB_JOURNALD_PID"
lb_wait_for 10 lb_access_ok lbt-op1
is "$CALL_RC" 0 "journald resumed: AccessCheck is answered again"
run lbt-mgr approve "$J5"
is "$RC" 0 "journald resumed: decisions work again"
lb_stop_daemon

# ================================================================================================
# the hung CLI, last: its own bound is 30 s
# ================================================================================================

wait "$HUNG_CLI"
read -r hung_rc hung_ms hung_out <"$LB_TMP/hung-cli"
is "$hung_rc" 4 "helper hung: lockbox status exits 4 (got exit $hung_rc after ${hung_ms} ms: ${hung_out:0:120})"
ok $([ "$hung_ms" -le 35000 ] && echo 0 || echo 1) "helper hung: the CLI gives up by its 30 s bound (${hung_ms} ms)"
figure "helper hung: lockbox status (CLI bound 30 s)" "$hung_ms"
kill "$HUNG_LISTENER" 2>/dev/null; wait "$HUNG_LISTENER" 2>/dev/null

diag "time to refusal, by fault:"
for f in "${FIGURES[@]}"; do diag "  $f"; done
[ -n "$PAM_RUN" ] || diag "tests/pam/pam-run is not built: the module itself was not timed here (see the pam tier)"

lb_done
