#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Integration: lockboxd as a process (SPEC §6, §7): it refuses unsafe or invalid configs and
# stores, reloads on SIGHUP (audited; a broken config keeps the old one), stops cleanly on
# SIGTERM, works under socket activation, and the CLI says "helper unreachable" (exit 4) when it
# is down. Also --version and --help.

. "$abs_top_srcdir/tests/lib/harness.sh"
lb_setup

# ---- --version and --help exit 0 and say what they are ----
out=$("$LOCKBOXD" --version); rc=$?
like "$rc:$out" "^0:lockboxd [0-9]" "lockboxd --version"
out=$("$LOCKBOXD" --help); rc=$?
like "$rc:$out" "^0:Usage: lockboxd" "lockboxd --help"
run lbt-none --version
like "$RC:$OUT" "^0:lockbox [0-9]" "lockbox --version (any user, no helper needed)"
run lbt-none --help
like "$RC:$OUT" "^0:Usage: lockbox " "lockbox --help"
run lbt-none approve --help
like "$RC:$OUT" "^0:Usage: lockbox approve ID" "lockbox approve --help"
run lbt-none help request
like "$RC:$OUT" "^0:Usage: lockbox request " "lockbox help request"
out=$(as lbt-none "$LOCKBOXD" -c "$LB_CONF" 2>&1); rc=$?
like "$rc:$out" "^1:lockboxd: must run as root" "lockboxd refuses to run as a user (exit 1)"
"$LOCKBOXD" --bogus >/dev/null 2>&1
is "$?" 2 "lockboxd with an unknown option: exit 2"

# ---- the helper down: every verb exits 4 with one "lockbox: " line ----
ID0=00000000-0000-4000-8000-000000000000
down_verbs() {  # down_verbs WHY
        local args
        for args in "request --ticket SR-1 --reason r" "list" "list --all --json" "show $ID0" "approve $ID0" \
                    "deny $ID0" "cancel $ID0" "revoke $ID0" "check lbt-op1" "status" "status --json"; do
                run lbt-admin $args
                [ "${args%% *}" = request ] && run lbt-op1 $args
                lb_is_error 4 "helper $1: lockbox ${args//$ID0/ID} → exit 4"
        done
}
down_verbs "never started (no socket)"

# ---- a good start; SIGTERM stops it with status 0 and removes the socket ----
lb_start_daemon || bail "lockboxd did not start"
run lbt-op1 status --json
is "$RC:$(jq .enabled <<<"$OUT")" "0:true" "status works with the daemon up"
lb_stop_daemon TERM
is "$LB_DAEMON_STATUS" 0 "SIGTERM: lockboxd exits 0"
ok "$([ ! -e "$LB_SOCKET" ]; echo $?)" "SIGTERM: the socket file is removed"

# ---- after a SIGKILL the socket file is left but nobody answers: still exit 4 ----
lb_start_daemon || bail "lockboxd did not start"
lb_stop_daemon KILL
ok "$([ -S "$LB_SOCKET" ]; echo $?)" "SIGKILL leaves a stale socket file"
run lbt-op1 status
lb_is_error 4 "helper killed (stale socket): status → exit 4"
run lbt-op1 request --ticket SR-1 --reason r
lb_is_error 4 "helper killed (stale socket): request → exit 4"
run lbt-op1 --socket "$LB_TMP/run/none.sock" status
lb_is_error 4 "--socket to a path where nothing listens → exit 4"

# ---- lockboxd refuses to start with an unsafe or invalid config, naming file, line and key ----
BAD=$LB_TMP/bad
mkdir -p "$BAD/db"; chmod 0700 "$BAD/db"
# badconf NAME [LINE...]: a copy of the test config with its own socket and store, plus LINEs.
badconf() {
        local f=$BAD/$1.conf; shift
        sed -e "s|^socket = .*|socket = \"$BAD/lockbox.sock\";|" \
            -e "s|^database = .*|database = \"$BAD/db/lockbox.db\";|" "$LB_CONF" >"$f"
        local line; for line in "$@"; do echo "$line" >>"$f"; done
        chmod 0644 "$f"
        echo "$f"
}
# refuses DESCRIPTION REGEX ARGS...: lockboxd ARGS exits non-zero (and does not keep running)
# with a message matching REGEX, and no socket was created.
refuses() {
        local what=$1 re=$2 rc msg; shift 2
        rm -f "$BAD/lockbox.sock"
        timeout 5 "$LOCKBOXD" "$@" >"$LB_TMP/start.log" 2>&1
        rc=$?
        msg=$(cat "$LB_TMP/start.log")
        if [ "$rc" != 0 ] && [ "$rc" != 124 ] && [[ "$msg" =~ $re ]] && [ ! -e "$BAD/lockbox.sock" ]; then
                ok 0 "refuses to start: $what"
        else
                ok 1 "refuses to start: $what"
                printf '#   exit %s, message: %.300s\n#   want match: %s\n' "$rc" "$msg" "$re"
        fi
}
# starts CONFIG: lockboxd with CONFIG comes up (its socket appears), keeps running and stops
# with status 0 on SIGTERM.
starts() {
        local pid alive status
        rm -f "$BAD/lockbox.sock"
        "$LOCKBOXD" -c "$1" >"$LB_TMP/start.log" 2>&1 &
        pid=$!
        lb_wait_for 20 test -S "$BAD/lockbox.sock"
        kill -0 "$pid" 2>/dev/null; alive=$?
        kill -TERM "$pid" 2>/dev/null; wait "$pid"; status=$?
        [ "$alive" = 0 ] && [ "$status" = 0 ]
}
GOOD=$(badconf good)
starts "$GOOD"
ok "$?" "sanity: the same config, safe, starts, serves and stops cleanly"

f=$(badconf world); chmod 0646 "$f"
refuses "world-writable config" "$f.*writable by group or others" -c "$f"
f=$(badconf group); chmod 0664 "$f"
refuses "group-writable config" "$f.*writable by group or others" -c "$f"
f=$(badconf notroot); chown nobody "$f"
refuses "config owned by nobody" "$f.*not by root" -c "$f"
ln -s "$GOOD" "$BAD/link.conf"
refuses "symlinked config" "$BAD/link.conf.*symbolic link" -c "$BAD/link.conf"
refuses "missing config" "$BAD/missing.conf" -c "$BAD/missing.conf"
f=$(badconf unknown 'colour = "blue";')
refuses "unknown key" "$f:$(wc -l <"$f"): .*colour" -c "$f"
f=$(badconf unknown-group); sed -i '/^groups = /,/};/d' "$f"
echo 'groups = { operators = "o"; managers = "m"; approvers = "a"; admins = "x"; auditors = "y"; };' >>"$f"
refuses "unknown key in a group" "$f:$(wc -l <"$f"): .*auditors" -c "$f"
f=$(badconf badvalue); sed -i 's|^max_duration = .*|max_duration = "4x";|' "$f"
refuses "bad duration value" "$f:$(grep -n '^max_duration' "$f" | cut -d: -f1): .*max_duration" -c "$f"
f=$(badconf badtype); sed -i 's|^enabled = .*|enabled = "yes";|' "$f"
refuses "bad value type" "$f:$(grep -n '^enabled' "$f" | cut -d: -f1): .*enabled" -c "$f"
f=$(badconf badrange); sed -i 's|^min_duration = .*|min_duration = "5h";|' "$f"
refuses "min_duration above max_duration" "$f:[0-9]+: .*(min_duration|max_duration)" -c "$f"
f=$(badconf include "@include \"$GOOD\"")
refuses "@include" "$f:$(wc -l <"$f"): .*@include" -c "$f"
f=$(badconf syntax 'enabled = ;')
refuses "syntax error" "$f:[0-9]+: " -c "$f"

# ---- … and with an unsafe store or store directory ----
dbconf() {  # dbconf NAME: a config whose store is $BAD/NAME/lockbox.db
        local f=$BAD/db-$1.conf
        sed -e "s|^socket = .*|socket = \"$BAD/lockbox.sock\";|" \
            -e "s|^database = .*|database = \"$BAD/$1/lockbox.db\";|" "$LB_CONF" >"$f"
        mkdir -p "$BAD/$1"; chmod 0700 "$BAD/$1"
        echo "$f"
}
f=$(dbconf dbgroup); : >"$BAD/dbgroup/lockbox.db"; chmod 0660 "$BAD/dbgroup/lockbox.db"
refuses "group-writable database" "$BAD/dbgroup/lockbox.db" -c "$f"
f=$(dbconf dbworld); : >"$BAD/dbworld/lockbox.db"; chmod 0606 "$BAD/dbworld/lockbox.db"
refuses "world-writable database" "$BAD/dbworld/lockbox.db" -c "$f"
f=$(dbconf dbnobody); : >"$BAD/dbnobody/lockbox.db"; chmod 0600 "$BAD/dbnobody/lockbox.db"; chown nobody "$BAD/dbnobody/lockbox.db"
refuses "database owned by nobody" "$BAD/dbnobody/lockbox.db" -c "$f"
f=$(dbconf dblink); : >"$BAD/dblink/real.db"; chmod 0600 "$BAD/dblink/real.db"; ln -s real.db "$BAD/dblink/lockbox.db"
refuses "symlinked database" "$BAD/dblink/lockbox.db" -c "$f"
f=$(dbconf dirworld); chmod 0777 "$BAD/dirworld"
refuses "world-writable database directory" "$BAD/dirworld" -c "$f"
f=$(dbconf dirgroup); chmod 0770 "$BAD/dirgroup"
refuses "group-writable database directory" "$BAD/dirgroup" -c "$f"
f=$(dbconf dirnobody); chown nobody "$BAD/dirnobody"
refuses "database directory owned by nobody" "$BAD/dirnobody" -c "$f"
f=$(dbconf dbok); : >"$BAD/dbok/lockbox.db"; chmod 0600 "$BAD/dbok/lockbox.db"
starts "$f"
ok "$?" "sanity: an empty root-owned 0600 database file is accepted"
is "$(stat -c '%a %U' "$BAD/dbgroup/lockbox.db" "$BAD/dbnobody/lockbox.db" | tr '\n' ' ')" "660 root 600 nobody " \
   "a refused database is left as it was (not chmod/chown-ed into shape)"

# ---- a file that is not a socket where the socket goes: refused, and left alone ----
rm -f "$BAD/lockbox.sock"; echo "precious" >"$BAD/lockbox.sock"
timeout 5 "$LOCKBOXD" -c "$GOOD" >"$LB_TMP/start.log" 2>&1
rc=$?
ok "$([ "$rc" != 0 ] && [ "$rc" != 124 ]; echo $?)" "refuses to start: a regular file at the socket path (exit $rc)"
is "$(cat "$BAD/lockbox.sock")" precious "… and that file is untouched"
rm -f "$BAD/lockbox.sock"

# ---- SIGHUP reloads the config, audited; a broken config keeps the running one ----
lb_start_daemon || bail "lockboxd did not start"
reloads() { journal LOCKBOX_EVENT=config-reloaded | wc -l; }
status_enabled() { as root lockbox --socket "$LB_SOCKET" status --json 2>/dev/null | jq -r .enabled; }
lb_write_config 'enabled = false;'
kill -HUP "$LB_DAEMON_PID"
lb_wait_until 5 '[ "$(status_enabled)" = false ]'
ok "$?" "SIGHUP with enabled = false: status --json says enabled false"
lb_wait_until 3 '[ "$(reloads)" = 1 ]'
ok "$?" "… a config-reloaded entry is in the journal"
is "$(journal_field MESSAGE_ID LOCKBOX_EVENT=config-reloaded)" "$(lb_msgid config-reloaded)" "… with its MESSAGE_ID"
is "$(journal_field LOCKBOX_EVENT LOCKBOX_EVENT=lockbox-disabled | wc -l)" 1 "… and one lockbox-disabled entry"
is "$(journal_field MESSAGE_ID LOCKBOX_EVENT=lockbox-disabled)" "$(lb_msgid lockbox-disabled)" "… with its MESSAGE_ID"
is "$(journal_field SYSLOG_IDENTIFIER LOCKBOX_EVENT=lockbox-disabled)" lockbox "… from SYSLOG_IDENTIFIER=lockbox"
run lbt-admin check lbt-op1 --json
is "$(jq -c '[.admitted, .request_id]' <<<"$OUT")" '[true,null]' "disabled: an operator without a grant would be admitted"
like "$(jq -r .reason <<<"$OUT")" "disabled" "… and check says the lockbox is disabled"
lb_write_config 'enabled = true;'
kill -HUP "$LB_DAEMON_PID"
lb_wait_until 5 '[ "$(status_enabled)" = true ]'
ok "$?" "SIGHUP with enabled = true: enabled again"
lb_wait_until 3 '[ "$(journal LOCKBOX_EVENT=lockbox-enabled | wc -l)" = 1 ]'
ok "$?" "… a lockbox-enabled entry is in the journal"
is "$(journal_field MESSAGE_ID LOCKBOX_EVENT=lockbox-enabled)" "$(lb_msgid lockbox-enabled)" "… with its MESSAGE_ID"
is "$(reloads)" 2 "… and a second config-reloaded entry"
run lbt-admin check lbt-op1 --json
is "$(jq -c .admitted <<<"$OUT")" false "enabled: the operator without a grant is refused again"

lb_write_config 'max_duration = "1h";'
kill -HUP "$LB_DAEMON_PID"
lb_wait_until 3 '[ "$(reloads)" = 3 ]'
ok "$?" "SIGHUP with a new max_duration is reloaded"
is "$(journal LOCKBOX_EVENT=lockbox-enabled | wc -l) $(journal LOCKBOX_EVENT=lockbox-disabled | wc -l)" "1 1" \
   "… with no enabled/disabled entry when enabled did not change"
lb_new_request lbt-op1 --duration 2h
lb_is_error 1 "… and the new max_duration applies (2h refused)"

# A broken config on SIGHUP: the daemon keeps serving with the config it has.
printf 'enabled = false;\nbroken = ;\n' >"$LB_CONF"
kill -HUP "$LB_DAEMON_PID"
sleep 1
ok "$(kill -0 "$LB_DAEMON_PID" 2>/dev/null; echo $?)" "SIGHUP with a broken config: lockboxd still runs"
is "$(status_enabled)" true "… still serves, with the old config (enabled true)"
is "$(reloads)" 3 "… and wrote no config-reloaded entry"
like "$(cat "$LB_TMP/lockboxd.log")" "reload failed.*$LB_CONF" "… and logged why, naming the file"
lb_write_config
kill -HUP "$LB_DAEMON_PID"
lb_wait_until 3 '[ "$(reloads)" = 4 ]'
ok "$?" "a fixed config is reloaded again"
lb_stop_daemon
is "$LB_DAEMON_STATUS" 0 "SIGTERM after reloads: exit 0"

# ---- sd_notify: READY=1 once serving, RELOADING=1/READY=1 around a reload, STOPPING=1 ----
if command -v python3 >/dev/null 2>&1; then
        python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1]); s.settimeout(0.2)
end = time.time() + 60
with open(sys.argv[2], "w", buffering=1) as out:
    while time.time() < end:
        try: out.write(s.recv(4096).decode(errors="replace").replace("\n", " ") + "\n")
        except socket.timeout: pass
' "$LB_TMP/notify.sock" "$LB_TMP/notify.log" &
        NOTIFY_PID=$!; LB_PIDS+=("$NOTIFY_PID")
        lb_wait_for 5 test -S "$LB_TMP/notify.sock"
        NOTIFY_SOCKET=$LB_TMP/notify.sock lb_start_daemon || bail "lockboxd did not start"
        lb_wait_for 30 grep -q READY=1 "$LB_TMP/notify.log"
        ok "$?" "sd_notify: READY=1 sent"
        kill -HUP "$LB_DAEMON_PID"
        lb_wait_for 30 grep -q RELOADING=1 "$LB_TMP/notify.log"
        ok "$?" "sd_notify: RELOADING=1 on SIGHUP"
        # A function, so the count is read at each poll (not once, when the arguments are built).
        ready_twice() { [ "$(grep -c READY=1 "$LB_TMP/notify.log")" -ge 2 ]; }
        lb_wait_for 30 ready_twice
        ok "$?" "sd_notify: READY=1 again after the reload"
        lb_stop_daemon
        lb_wait_for 30 grep -q STOPPING=1 "$LB_TMP/notify.log"
        ok "$?" "sd_notify: STOPPING=1 on SIGTERM"
        kill "$NOTIFY_PID" 2>/dev/null
else
        ok 0 "# SKIP python3 not installed: no sd_notify receiver"
fi

# ---- socket activation: a socket passed by the service manager is used, and not removed ----
ACTIVATE=$(command -v systemd-socket-activate || echo /lib/systemd/systemd-socket-activate)
if [ -x "$ACTIVATE" ]; then
        SOCK2=$LB_TMP/run/activated.sock
        "$ACTIVATE" -l "$SOCK2" "$LOCKBOXD" -c "$LB_CONF" >>"$LB_TMP/lockboxd.log" 2>&1 &
        LB_DAEMON_PID=$!; LB_PIDS+=("$LB_DAEMON_PID")
        lb_wait_for 5 test -S "$SOCK2"
        chmod 0666 "$SOCK2"           # what lockboxd.socket's SocketMode=0666 does
        run lbt-op1 --socket "$SOCK2" status --json
        is "$RC:$(jq -r .tenant <<<"$OUT")" "0:contoso" "socket activation: status over the passed socket"
        run lbt-op1 --socket "$SOCK2" request --ticket SR-SA --reason "via activation"
        like "$RC:$OUT" "^0:[0-9a-f-]{36}$" "socket activation: a request over the passed socket"
        ok "$([ ! -e "$LB_SOCKET" ]; echo $?)" "socket activation: the configured socket was not bound as well"
        lb_stop_daemon
        is "$LB_DAEMON_STATUS" 0 "socket activation: SIGTERM exits 0"
        ok "$([ -S "$SOCK2" ]; echo $?)" "socket activation: the service manager's socket file is left in place"
else
        ok 0 "# SKIP systemd-socket-activate not found"
fi

# ---- down again after all this: exit 4 everywhere ----
down_verbs "stopped"

lb_done
