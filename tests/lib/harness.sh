# SPDX-License-Identifier: LGPL-2.1-or-later
# Shared harness for the integration, pam and e2e tiers. Source it from a test script:
#
#   . "$abs_top_srcdir/tests/lib/harness.sh"
#   lb_setup                 # private mount namespace, /etc overlay, journald, users, config
#   lb_start_daemon          # a real lockboxd on a temporary socket and store
#   as lbt-op1 lockbox request --ticket SR1 --reason test
#   lb_done                  # prints the TAP plan, cleans up
#
# Everything happens inside a private mount namespace: /etc is an overlay (test users and
# groups never reach the host's files), /run/systemd/journal and /run/log are tmpfs with a
# journald of our own (the host's journal is untouched). Needs root.

set -u

: "${abs_top_builddir:?run through make check or tests/run}"
: "${abs_top_srcdir:?run through make check or tests/run}"

# Re-run the calling script inside a private mount namespace, once.
if [ -z "${LB_IN_NAMESPACE:-}" ]; then
        if [ "$(id -u)" != 0 ]; then
                echo "1..0 # SKIP these tests need root"
                exit 0
        fi
        export LB_IN_NAMESPACE=1
        exec unshare --mount --propagation private -- "${BASH:-bash}" "$0" "$@"
fi

# The checkout may sit under a directory only root can enter (root's home is 0700, so is
# any mktemp -d). Test users run the built programs, often through wrappers (timeout,
# valgrind, strace) that exec them after the privilege drop, so the tree must be reachable
# by every user however it is placed. Decided once, here: inside the namespace, the source
# and build trees are bind-mounted under a fresh 0755 directory in /tmp and every test uses
# those paths. The mounts vanish with the namespace; LB_TREE holds only the mount points
# and is removed with rmdir (never rm -r: it would descend into the checkout).
LB_TREE=$(mktemp -d /tmp/lockbox-tree.XXXXXX) || { echo "Bail out! mktemp"; exit 1; }
chmod 0755 "$LB_TREE"
mkdir "$LB_TREE/src" "$LB_TREE/build"
if ! mount --bind "$abs_top_srcdir" "$LB_TREE/src" || ! mount --bind "$abs_top_builddir" "$LB_TREE/build"; then
        echo "Bail out! cannot bind-mount the source and build trees under $LB_TREE"
        exit 1
fi
lb_release_tree() {
        [ -n "${LB_TREE:-}" ] || return 0
        umount -l "$LB_TREE/build" "$LB_TREE/src" 2>/dev/null
        rmdir "$LB_TREE/build" "$LB_TREE/src" "$LB_TREE" 2>/dev/null
        LB_TREE=""
}
trap lb_release_tree EXIT
abs_top_srcdir=$LB_TREE/src
abs_top_builddir=$LB_TREE/build
export abs_top_srcdir abs_top_builddir

LOCKBOX="$abs_top_builddir/helper/lockbox"
LOCKBOXD="$abs_top_builddir/helper/lockboxd"
PAM_MODULE="$abs_top_builddir/pam_lockbox/.libs/pam_lockbox.so"

LB_TESTS=0
LB_FAILED=0
LB_PIDS=()
LB_USERS=(lbt-op1 lbt-op2 lbt-mgr lbt-mgr2 lbt-appr lbt-appr2 lbt-admin lbt-none lbt-mgrappr)

# ---- TAP ----------------------------------------------------------------------------------

ok() {  # ok CONDITION-EXIT-STATUS DESCRIPTION
        local status=$1; shift
        LB_TESTS=$((LB_TESTS + 1))
        if [ "$status" -eq 0 ]; then
                echo "ok $LB_TESTS - $*"
        else
                LB_FAILED=$((LB_FAILED + 1))
                echo "not ok $LB_TESTS - $*"
        fi
}

is() {  # is GOT WANT DESCRIPTION
        local got=$1 want=$2; shift 2
        if [ "$got" = "$want" ]; then
                ok 0 "$*"
        else
                ok 1 "$*"
                printf '#   got:  %s\n#   want: %s\n' "$got" "$want"
        fi
}

like() {  # like GOT REGEX DESCRIPTION
        local got=$1 re=$2; shift 2
        if [[ "$got" =~ $re ]]; then
                ok 0 "$*"
        else
                ok 1 "$*"
                printf '#   got:  %s\n#   want match: %s\n' "$got" "$re"
        fi
}

diag() { printf '# %s\n' "$*"; }

bail() {
        echo "Bail out! $*"
        exit 1
}

# ---- the private world --------------------------------------------------------------------

lb_cleanup() {
        local pid
        for pid in "${LB_PIDS[@]}"; do
                # A wrapper (strace, valgrind's launcher) may not pass the signal on.
                pkill -TERM -P "$pid" 2>/dev/null
                kill -TERM "$pid" 2>/dev/null
        done
        for pid in "${LB_PIDS[@]}"; do
                kill -CONT "$pid" 2>/dev/null
                wait "$pid" 2>/dev/null
        done
        # Users' stray processes (e.g. from sessions) must not outlive the test. Only those in
        # our mount namespace: test runs in parallel (make -j check) create the same user names
        # with the same uids in their own namespaces, and must not kill each other's processes.
        local u
        for u in "${LB_USERS[@]}"; do
                pkill -KILL -u "$u" --ns $$ --nslist mnt 2>/dev/null
        done
        [ -n "${LB_TMP:-}" ] && rm -rf "$LB_TMP"
        lb_release_tree
}

lb_setup() {
        LB_TMP=$(mktemp -d /tmp/lockbox-test.XXXXXX) || bail "mktemp"
        chmod 0755 "$LB_TMP"
        trap lb_cleanup EXIT
        mkdir -p "$LB_TMP/overlay/upper" "$LB_TMP/overlay/work" "$LB_TMP/etc" "$LB_TMP/run" "$LB_TMP/db"
        chmod 0700 "$LB_TMP/db"

        mount -t overlay overlay \
                -o "lowerdir=/etc,upperdir=$LB_TMP/overlay/upper,workdir=$LB_TMP/overlay/work" /etc ||
                bail "cannot overlay /etc"
        mkdir -p /run/systemd/journal /run/log
        mount -t tmpfs -o mode=0755 tmpfs /run/systemd/journal || bail "cannot mount tmpfs on /run/systemd/journal"
        mount -t tmpfs -o mode=0755 tmpfs /run/log || bail "cannot mount tmpfs on /run/log"
        # lockboxd's snapshots of accepted configs (config_snapshot_path()): never the host's.
        mkdir -p /run/lockbox
        mount -t tmpfs -o mode=0755 tmpfs /run/lockbox || bail "cannot mount tmpfs on /run/lockbox"
        [ -d /var/log/journal ] && mount -t tmpfs tmpfs /var/log/journal

        lb_start_journald
        lb_make_users
        lb_write_config
        [ -n "${LB_VALGRIND:-}" ] && lb_valgrind_wrappers
}

# With LB_VALGRIND=1, lockboxd and every lockbox call run under valgrind memcheck: an
# error changes the exit status to 99 (so exact exit-status checks fail) and lb_done
# reports the logs.
lb_valgrind_wrappers() {
        local prog
        mkdir -p "$LB_TMP/bin" "$LB_TMP/valgrind"
        chmod 1777 "$LB_TMP/valgrind"
        for prog in lockbox lockboxd; do
                cat >"$LB_TMP/bin/$prog" <<WRAPPER
#!/bin/sh
exec valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \\
        --show-leak-kinds=definite,indirect --track-fds=no --child-silent-after-fork=yes \\
        --suppressions="$abs_top_srcdir/tests/valgrind.supp" \\
        --log-file="$LB_TMP/valgrind/$prog.%p.log" "$abs_top_builddir/helper/$prog" "\$@"
WRAPPER
                chmod 0755 "$LB_TMP/bin/$prog"
        done
        LOCKBOX="$LB_TMP/bin/lockbox"
        LOCKBOXD="$LB_TMP/bin/lockboxd"
}

# valgrind 3.19 does not know pidfd_open (434), which sd-event tries for notifier child
# processes before falling back to waitid(); it says so in five lines that are not a finding.
lb_valgrind_findings() {
        grep -v -E 'unhandled amd64-linux syscall: 434|You may be able to write your own handler|README_MISSING_SYSCALL_OR_IOCTL|Nevertheless we consider this a bug|it at http://valgrind.org/support/bug_reports.html' "$1"
}

lb_valgrind_report() {
        local log bad=0
        for log in "$LB_TMP"/valgrind/*.log; do
                [ -n "$(lb_valgrind_findings "$log")" ] && bad=1
        done
        ok $bad "valgrind memcheck reports nothing for lockboxd and lockbox"
        # The reports follow the result, where tests/run shows them.
        for log in "$LB_TMP"/valgrind/*.log; do
                [ -n "$(lb_valgrind_findings "$log")" ] || continue
                diag "valgrind: $log"
                lb_valgrind_findings "$log" | sed 's/^/#   /' | head -40
        done
}

lb_start_journald() {
        # A dead journald leaves its sockets behind; the wait below must see a fresh one.
        if [ -z "${LB_JOURNALD_PID:-}" ] || ! kill -0 "$LB_JOURNALD_PID" 2>/dev/null; then
                lb_remove_journal_sockets
        fi
        /lib/systemd/systemd-journald >"$LB_TMP/journald.log" 2>&1 &
        LB_JOURNALD_PID=$!
        LB_PIDS+=("$LB_JOURNALD_PID")
        local i
        for i in $(seq 100); do
                [ -S /run/systemd/journal/socket ] && return 0
                sleep 0.05
        done
        bail "journald did not start: $(cat "$LB_TMP/journald.log")"
}

lb_stop_journald() {
        kill -TERM "$LB_JOURNALD_PID" 2>/dev/null
        wait "$LB_JOURNALD_PID" 2>/dev/null
}

# lb_remove_journal_sockets: after lb_stop_journald, remove the sockets journald leaves behind
# (a journal that is gone entirely, not just dead).
lb_remove_journal_sockets() {
        rm -f /run/systemd/journal/socket /run/systemd/journal/stdout /run/systemd/journal/dev-log \
                /run/systemd/journal/io.systemd.journal
}

lb_make_users() {
        local g u
        for g in lockbox-operators lockbox-managers lockbox-approvers lockbox-admins; do
                groupadd -f "$g" || bail "groupadd $g"
        done
        for u in "${LB_USERS[@]}"; do
                useradd -M -d "$LB_TMP/home/$u" -s /bin/sh "$u" || bail "useradd $u"
        done
        usermod -aG lockbox-operators lbt-op1
        usermod -aG lockbox-operators lbt-op2
        usermod -aG lockbox-managers lbt-mgr
        usermod -aG lockbox-managers lbt-mgr2
        usermod -aG lockbox-approvers lbt-appr
        usermod -aG lockbox-approvers lbt-appr2
        usermod -aG lockbox-admins lbt-admin
        usermod -aG lockbox-managers,lockbox-approvers lbt-mgrappr
}

# lb_write_config [KEY=VALUE ...]: the test config with second-scale times; arguments
# replace or add top-level lines, e.g. lb_write_config 'require_manager_approval = false;'
LB_CONF=""
lb_write_config() {
        LB_CONF="$LB_TMP/etc/lockbox.conf"
        LB_SOCKET="$LB_TMP/run/lockbox.sock"
        LB_DATABASE="$LB_TMP/db/lockbox.db"
        {
                echo 'enabled = true;'
                echo 'tenant = "contoso";'
                echo 'operator_display_name = "Microsoft Operator";'
                echo 'require_manager_approval = true;'
                echo "request_timeout = \"${LB_REQUEST_TIMEOUT:-12h}\";"
                echo 'max_duration = "4h";'
                echo 'min_duration = "1s";'
                echo 'default_duration = "1h";'
                echo 'pam_timeout = "2s";'
                # Tests file many requests per operator; test-limits.sh checks the default of 3.
                echo 'max_open_requests = 1000;'
                echo "socket = \"$LB_SOCKET\";"
                echo "database = \"$LB_DATABASE\";"
                echo 'groups = { operators = "lockbox-operators"; managers = "lockbox-managers";'
                echo '           approvers = "lockbox-approvers"; admins = "lockbox-admins"; };'
        } >"$LB_CONF.new"
        local line key
        for line in "$@"; do
                key=${line%%=*}
                key=${key// /}
                sed -i "/^$key *=/d" "$LB_CONF.new"
                echo "$line" >>"$LB_CONF.new"
        done
        chmod 0644 "$LB_CONF.new"
        mv "$LB_CONF.new" "$LB_CONF"
}

# ---- the daemon ------------------------------------------------------------------------------

lb_start_daemon() {
        "$LOCKBOXD" -c "$LB_CONF" "$@" >>"$LB_TMP/lockboxd.log" 2>&1 &
        LB_DAEMON_PID=$!
        LB_PIDS+=("$LB_DAEMON_PID")
        local i
        for i in $(seq 200); do
                if [ -S "$LB_SOCKET" ] && "$LOCKBOX" --socket "$LB_SOCKET" status >/dev/null 2>&1; then
                        return 0
                fi
                kill -0 "$LB_DAEMON_PID" 2>/dev/null || break
                sleep 0.05
        done
        diag "lockboxd log:"; sed 's/^/#   /' "$LB_TMP/lockboxd.log"
        return 1
}

lb_stop_daemon() {
        local signal=${1:-TERM}
        kill "-$signal" "$LB_DAEMON_PID" 2>/dev/null
        wait "$LB_DAEMON_PID" 2>/dev/null
        LB_DAEMON_STATUS=$?
}

# as USER COMMAND...: run COMMAND as USER (a real account, real uid and groups).
# "lockbox" as COMMAND means the built CLI with the test config.
as() {
        local user=$1; shift
        if [ "$1" = lockbox ]; then
                shift
                set -- "$LOCKBOX" -c "$LB_CONF" "$@"
        fi
        if [ "$user" = root ]; then
                "$@"
        else
                setpriv --reuid="$user" --regid="$user" --init-groups --reset-env -- "$@"
        fi
}

# run USER ARGS...: run the CLI as USER; sets OUT, ERR and RC.
run() {
        local user=$1; shift
        OUT=$(as "$user" lockbox "$@" 2>"$LB_TMP/stderr")
        RC=$?
        ERR=$(cat "$LB_TMP/stderr")
}

# ---- the journal ------------------------------------------------------------------------------

# journal MATCHES...: entries as JSON lines (journalctl -o json), after a sync.
journal() {
        journalctl --sync 2>/dev/null
        journalctl --no-pager -o json "$@" 2>/dev/null
}

# journal_field FIELD MATCHES...: the FIELD of each matching entry, one per line.
journal_field() {
        local field=$1; shift
        journal "$@" | jq -r --arg f "$field" '.[$f] // empty'
}

# lb_wait_journal SECONDS MATCHES...: wait up to SECONDS until the journal has an entry
# matching MATCHES (journalctl matches, e.g. LOCKBOX_EVENT=session-close). Fails on timeout.
lb_wait_journal() {
        local timeout=$1 i; shift
        for i in $(seq $((timeout * 10))); do
                [ -n "$(journal "$@")" ] && return 0
                sleep 0.1
        done
        return 1
}

# lb_journal_cursor: the cursor of the newest journal entry, to pass as
# journal --after-cursor="$cursor" MATCHES... for "entries written since then".
# (On Debian 12's systemd 252, --after-cursor together with field matches returns nothing;
# use it without matches, or lb_journal_mark and journal_since below.)
lb_journal_cursor() {
        journalctl --sync 2>/dev/null
        journalctl --no-pager -n 1 -o json 2>/dev/null | jq -r '.__CURSOR // empty'
}

# lb_journal_mark: a mark for "entries written from now on" (the newest entry's
# __REALTIME_TIMESTAMP), for journal_since and lb_wait_journal_since.
lb_journal_mark() {
        journalctl --sync 2>/dev/null
        journalctl --no-pager -n 1 -o json 2>/dev/null | jq -r '.__REALTIME_TIMESTAMP // "0"'
}

# journal_since MARK MATCHES...: like journal (JSON lines), only entries written after MARK.
journal_since() {
        local mark=$1; shift
        journal "$@" | jq -c --arg m "$mark" 'select((.__REALTIME_TIMESTAMP | tonumber) > ($m | tonumber))'
}

# lb_wait_journal_since SECONDS MARK MATCHES...: wait up to SECONDS until an entry matching
# MATCHES was written after MARK. Fails on timeout.
lb_wait_journal_since() {
        local timeout=$1 mark=$2 i; shift 2
        for i in $(seq $((timeout * 10))); do
                [ -n "$(journal_since "$mark" "$@")" ] && return 0
                sleep 0.1
        done
        return 1
}

# ---- helpers for the integration tier (added; the functions above keep their behaviour) ----------

# lb_is_error WANT DESCRIPTION: after run, checks RC = WANT, nothing on stdout and exactly one
# stderr line starting "lockbox: ".
lb_is_error() {
        local want=$1; shift
        local lines
        lines=$(printf '%s\n' "$ERR" | wc -l)
        if [ "$RC" = "$want" ] && [ -z "$OUT" ] && [ -n "$ERR" ] && [ "$lines" -eq 1 ] &&
           [[ "$ERR" == "lockbox: "* ]]; then
                ok 0 "$*"
        else
                ok 1 "$*"
                printf '#   want: exit %s, one stderr line "lockbox: ..."\n' "$want"
                printf '#   got:  exit %s, %s stderr line(s): %.300s\n' "$RC" "$lines" "$ERR"
                [ -n "$OUT" ] && printf '#   stdout: %.300s\n' "$OUT"
        fi
}

# lb_refused WANT USER VERB ID [ARGS...]: runs "lockbox VERB ID ARGS" as USER and checks, as one
# test, that it exits WANT with one "lockbox: " stderr line and that the state of ID (as root
# sees it) did not change. ID must be a full id.
lb_refused() {
        local want=$1 user=$2 verb=$3 id=$4; shift 4
        local before after
        before=$(lb_state "$id")
        run "$user" "$verb" "$id" "$@"
        after=$(lb_state "$id")
        if [ "$RC" = "$want" ] && [ -z "$OUT" ] && [ "$(printf '%s\n' "$ERR" | wc -l)" -eq 1 ] &&
           [[ "$ERR" == "lockbox: "* ]] && [ -n "$before" ] && [ "$after" = "$before" ]; then
                ok 0 "$user: $verb of a${before:+ $before} request refused (exit $want), state unchanged"
        else
                ok 1 "$user: $verb of a${before:+ $before} request refused (exit $want), state unchanged"
                printf '#   got: exit %s, state %s -> %s, stderr: %.300s\n' "$RC" "$before" "$after" "$ERR"
        fi
}

# lb_wait_for SECONDS COMMAND...: polls COMMAND every 0.1 s until it succeeds (0) or time is up (1).
lb_wait_for() {
        local deadline=$(( $(date +%s%N) + ${1%.*} * 1000000000 )); shift
        while :; do
                "$@" && return 0
                [ "$(date +%s%N)" -ge "$deadline" ] && return 1
                sleep 0.1
        done
}

# lb_wait_until SECONDS 'SHELL-CONDITION': like lb_wait_for, for a condition that must be
# evaluated anew at each poll, e.g. lb_wait_until 5 '[ "$(lb_state "$ID")" = ended ]'
# (lb_wait_for 5 test "$(lb_state "$ID")" = ended would read the state only once).
lb_wait_until() {
        local seconds=$1 condition=$2
        lb_wait_for "$seconds" eval "$condition"
}

# lb_new_request USER [REQUEST-OPTIONS...]: files a request as USER with a default ticket and
# reason (options given override them); sets ID to the new id ("" if refused) and RC.
LB_SERIAL=0
lb_new_request() {
        local user=$1; shift
        LB_SERIAL=$((LB_SERIAL + 1))
        run "$user" request --ticket "SR-$LB_SERIAL" --reason "integration test $LB_SERIAL" "$@"
        ID=""
        [ "$RC" = 0 ] && ID=$OUT
}

# lb_state ID: the state of request ID as root sees it ("" if it cannot be shown).
lb_state() {
        as root lockbox show "$1" --json 2>/dev/null | jq -r '.state // empty'
}

# lb_count [STATE]: the number of requests in the store (in STATE), from status --json as root.
lb_count() {
        as root lockbox status --json 2>/dev/null |
                jq -r --arg s "${1:-}" 'if $s == "" then ([.counts[]] | add) else .counts[$s] end'
}

# lb_spawn_daemon [ARGS...]: starts lockboxd like lb_start_daemon but never calls it (so nothing
# it does at start-up can be caused by a client); returns once its socket exists.
lb_spawn_daemon() {
        "$LOCKBOXD" -c "$LB_CONF" "$@" >>"$LB_TMP/lockboxd.log" 2>&1 &
        LB_DAEMON_PID=$!
        LB_PIDS+=("$LB_DAEMON_PID")
        lb_wait_for 10 test -S "$LB_SOCKET" && return 0
        diag "lockboxd log:"; sed 's/^/#   /' "$LB_TMP/lockboxd.log"
        return 1
}

# lb_restart_daemon [ARGS...]: SIGTERM the daemon, then start it again (lb_start_daemon).
lb_restart_daemon() {
        lb_stop_daemon
        lb_start_daemon "$@"
}

# lb_sql SQL...: runs SQL on the store with sqlite3. Only while the daemon is stopped.
lb_sql() {
        sqlite3 -batch "$LB_DATABASE" "$@"
}

# lb_msgid EVENT: the MESSAGE_ID helper/msgid.h assigns to EVENT.
lb_msgid() {
        sed -n "s/^.*{ *\"$1\", *\"\([0-9a-f]\{32\}\)\" *}.*$/\1/p" "$abs_top_srcdir/helper/msgid.h"
}

# lb_bus USER METHOD ARG...: calls METHOD of the daemon directly over its socket as USER,
# bypassing the CLI (dbus-send --peer; ARGs in dbus-send syntax, e.g. string:x uint64:5).
# Sets BUS_RC, BUS_OUT, BUS_ERR; BUS_ERR starts "Error NAME: message" on a D-Bus error.
# (busctl cannot be used: it always sends Hello to a bus driver, which a direct socket lacks.)
# A call that gets no reply at all (org.freedesktop.DBus.Error.NoReply) is retried, up to 5
# times, and counted in LB_BUS_NOREPLY: a test that cares asserts that count separately.
# lb_have_bus_tool says whether lb_bus can be used, and if not why, in LB_BUS_WHY_NOT.
LB_BUS_NOREPLY=0
LB_BUS_WHY_NOT=""
lb_have_bus_tool() {
        if ! command -v dbus-send >/dev/null 2>&1; then
                LB_BUS_WHY_NOT="dbus-send (package dbus-bin) is not installed"
                return 1
        fi
        return 0
}
lb_bus() {
        local user=$1 method=$2 try timeout=1000; shift 2
        [ -n "${LB_VALGRIND:-}" ] && timeout=10000
        for try in 1 2 3 4 5; do
                BUS_OUT=$(as "$user" dbus-send --peer="unix:path=$LB_SOCKET" --print-reply --reply-timeout=$timeout \
                        /org/lockbox/Lockbox "org.lockbox.Lockbox1.$method" "$@" 2>"$LB_TMP/bus-stderr")
                BUS_RC=$?
                BUS_ERR=$(cat "$LB_TMP/bus-stderr")
                [[ "$BUS_ERR" == "Error org.freedesktop.DBus.Error.NoReply:"* ]] || break
                LB_BUS_NOREPLY=$((LB_BUS_NOREPLY + 1))
        done
}

lb_done() {
        [ -n "${LB_VALGRIND:-}" ] && [ -n "${LB_TMP:-}" ] && lb_valgrind_report
        echo "1..$LB_TESTS"
        [ "$LB_FAILED" -eq 0 ]
}

# ---- helpers for the crash, load and fault tests (added) ---------------------------------------

# lb_now_ms: wall-clock milliseconds, for "time to refusal" figures.
lb_now_ms() {
        echo $(( $(date +%s%N) / 1000000 ))
}

# lb_call_prepare: makes LB_CALL the path of lb-call (tests/integration/lb-call.c: one call
# through the PAM module's client library, under a timeout). Uses the built one if the build
# has it, else compiles it into $LB_TMP. Returns 1 if neither works.
LB_CALL=""
lb_call_prepare() {
        if [ -x "$abs_top_builddir/tests/integration/lb-call" ]; then
                LB_CALL="$abs_top_builddir/tests/integration/lb-call"
                return 0
        fi
        LB_CALL="$LB_TMP/lb-call"
        [ -x "$LB_CALL" ] && return 0
        ${CC:-cc} -include "$abs_top_builddir/autoconfig.h" -I"$abs_top_srcdir/helper" -o "$LB_CALL" \
                "$abs_top_srcdir/tests/integration/lb-call.c" "$abs_top_builddir/.libs/libcommon.a" \
                $(pkg-config --libs libsystemd libconfig 2>/dev/null || echo -lsystemd -lconfig) \
                >"$LB_TMP/lb-call.build.log" 2>&1 && return 0
        diag "cannot build lb-call:"; sed 's/^/#   /' "$LB_TMP/lb-call.build.log"
        LB_CALL=""
        return 1
}

# lb_access USER [TIMEOUT_MS [SOCKET]]: AccessCheck for USER (service sshd, rhost 127.0.0.1,
# tty ssh) as root, the call pam_lockbox's account stage makes. Sets CALL_OUT, CALL_RC (0 reply,
# 1 D-Bus error, 4 unreachable or timed out, 124 killed after TIMEOUT + 10 s), CALL_MS (time
# until lb-call exited) and CALL_INNER_MS (lb-call's own figure, without process start-up).
lb_access() {
        local user=$1 timeout=${2:-2000} socket=${3:-$LB_SOCKET} t0
        t0=$(lb_now_ms)
        CALL_OUT=$(timeout $(( timeout / 1000 + 10 )) "$LB_CALL" "$socket" "$timeout" AccessCheck \
                "$user" sshd 127.0.0.1 ssh 2>"$LB_TMP/lb-call.stderr")
        CALL_RC=$?
        CALL_MS=$(( $(lb_now_ms) - t0 ))
        CALL_INNER_MS=$(sed -n 's/^elapsed_ms //p' "$LB_TMP/lb-call.stderr")
        : "${CALL_INNER_MS:=$CALL_MS}"
}

# lb_daemon_fds / lb_daemon_rss_kib: the running lockboxd's open fds and resident memory.
lb_daemon_fds() {
        ls "/proc/$LB_DAEMON_PID/fd" 2>/dev/null | wc -l
}
lb_daemon_rss_kib() {
        awk '/^VmRSS:/ { print $2 }' "/proc/$LB_DAEMON_PID/status" 2>/dev/null
}

# lb_forget_pid PID: drop a process that has been waited for from the cleanup list, so a
# test that restarts the daemon many times never signals a recycled pid at exit.
lb_forget_pid() {
        local p keep=()
        for p in "${LB_PIDS[@]}"; do
                [ "$p" = "$1" ] || keep+=("$p")
        done
        LB_PIDS=("${keep[@]}")
}

# lb_add_user NAME GROUP...: one more test user (in the /etc overlay), cleaned up like the others.
lb_add_user() {
        local u=$1 g; shift
        useradd -M -d "$LB_TMP/home/$u" -s /bin/sh "$u" || return 1
        LB_USERS+=("$u")
        for g in "$@"; do
                usermod -aG "$g" "$u" || return 1
        done
}

# ---- helpers for the config snapshot tests (added) ----------------------------------------------

# lb_snapshot_path [CONFIG]: where lockboxd keeps its snapshot of CONFIG (default the test
# config): /run/lockbox/ + the path without its leading '/', '-' as \x2d and '/' as '-',
# + ".active" (config_snapshot_path(); enough for the harness's paths).
lb_snapshot_path() {
        local p=${1:-$LB_CONF}
        p=${p#/}
        p=${p//-/\\x2d}
        p=${p//\//-}
        echo "/run/lockbox/$p.active"
}

# lb_reload_daemon: SIGHUP lockboxd and wait until its log shows the outcome (a
# "config-reloaded" audit entry or a "reload failed" line); returns 0 if it reloaded.
lb_reload_daemon() {
        local mark lines
        mark=$(lb_journal_mark)
        lines=$(grep -c 'reload failed' "$LB_TMP/lockboxd.log")
        kill -HUP "$LB_DAEMON_PID"
        local i
        for i in $(seq 100); do
                [ -n "$(journal_since "$mark" LOCKBOX_EVENT=config-reloaded)" ] && return 0
                [ "$(grep -c 'reload failed' "$LB_TMP/lockboxd.log")" -gt "$lines" ] && return 1
                sleep 0.1
        done
        return 2
}

# lb_services_world PROFILE PAMDIR: for tests/e2e/test-services.sh. In this mount namespace:
# /usr/share/pam-configs becomes a copy with PROFILE added as "lockbox"; /var/lib/pam and
# /var/cache/debconf (which pam-auth-update writes) become copies; PAMDIR (the system's PAM
# module directory) gets the built module as pam_lockbox.so through an overlay; the at spool
# (/var/spool/cron) becomes an empty private one.
lb_services_world() {
        local profile=$1 pamdir=$2 d
        mkdir -p "$LB_TMP/pam-configs" "$LB_TMP/pamlib/upper" "$LB_TMP/pamlib/work" "$LB_TMP/spool"
        cp -a /usr/share/pam-configs/. "$LB_TMP/pam-configs/" || return 1
        install -m 0644 "$profile" "$LB_TMP/pam-configs/lockbox" || return 1
        mount --bind "$LB_TMP/pam-configs" /usr/share/pam-configs || return 1
        for d in /var/lib/pam /var/cache/debconf; do
                mkdir -p "$LB_TMP/copy$d"
                cp -a "$d/." "$LB_TMP/copy$d/" || return 1
                mount --bind "$LB_TMP/copy$d" "$d" || return 1
        done
        install -m 0644 "$PAM_MODULE" "$LB_TMP/pamlib/upper/pam_lockbox.so" || return 1
        mount -t overlay overlay \
                -o "lowerdir=$pamdir,upperdir=$LB_TMP/pamlib/upper,workdir=$LB_TMP/pamlib/work" "$pamdir" || return 1
        mount -t tmpfs -o mode=0755 tmpfs /var/spool/cron || return 1
        for d in atjobs atspool; do
                install -d -o daemon -g daemon -m 1770 "/var/spool/cron/$d" || return 1
        done
        install -o daemon -g daemon -m 0600 /dev/null /var/spool/cron/atjobs/.SEQ
}

# ---- helpers for the audit tests (added) ---------------------------------------------------------

# lb_forge_entry USER FIELD=VALUE...: USER (any local account, or root) sends journald an entry
# of its own making over the native socket, the way a forger would (values without newlines).
lb_forge_entry() {
        local user=$1; shift
        as "$user" python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(("\n".join(sys.argv[1:]) + "\n").encode(), "/run/systemd/journal/socket")' "$@"
}

# lb_audit USER ARGS...: "lockbox audit ARGS" as USER after a journal sync (lockboxd's entries
# are in the journal once journald has read them); sets OUT, ERR, RC like run.
lb_audit() {
        local user=$1; shift
        journalctl --sync 2>/dev/null
        run "$user" audit "$@"
}

# ---- helpers for the limits test (added) --------------------------------------------------------

# lb_limits_attacker FILE: writes a hostile local client (python3, stdlib only) to FILE:
#   flood SOCKET N COUNTFILE   opens up to N authenticated connections and holds them; writes how
#                              many it holds to COUNTFILE (gives up after 20 s); then per stdin line:
#                              "check" writes how
#                              many lockboxd still keeps open to COUNTFILE.after, "again" opens up
#                              to N anew and writes COUNTFILE.again; exits (closing all) at EOF.
#   pipeline SOCKET N          N calls sent at once on one connection: prints "answers A closed C"
#   badframes SOCKET N         N connections that each send a malformed header
#   bigmsg SOCKET N SIZE PID   N connections each announce a SIZE-byte message and send all of it
#                              but the last byte; prints "dropped I AT" for each connection lockboxd
#                              closed (AT = bytes sent), "held I" for each it did not, then
#                              "rss KiB" of PID while holding them.
lb_limits_attacker() {
        cat >"$1" <<'EOF'
import os, socket, struct, sys, time

def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect(path)
        s.sendall(b"\0AUTH EXTERNAL " + str(os.getuid()).encode().hex().encode() + b"\r\n")
        if not s.recv(256).startswith(b"OK"):
            raise OSError("not accepted")
        s.sendall(b"BEGIN\r\n")
        return s
    except OSError:
        s.close()
        return None

def is_open(s):
    try:
        return s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False

def flood(path, n, countfile):
    def open_many():
        held, deadline = [], time.monotonic() + 20
        for _ in range(n):
            if time.monotonic() > deadline:
                break
            s = connect(path)
            if s:
                held.append(s)
        return held
    def write(name, v):
        with open(name + ".tmp", "w") as f:
            f.write("%d\n" % v)
        os.rename(name + ".tmp", name)
    held = open_many()
    write(countfile, len(held))
    for line in sys.stdin:
        if line.strip() == "check":
            write(countfile + ".after", sum(1 for s in held if is_open(s)))
        elif line.strip() == "again":
            held += open_many()
            write(countfile + ".again", len(held))

def bigmsg(path, n, size, pid):
    conns = [connect(path) for _ in range(n)]
    fields = b"\x01\x01o\x00" + b"\x00" * 4
    header = struct.pack("<BBBBIII", ord("l"), 1, 0, 1, size, 1, len(fields)) + fields
    chunk = b"\x00" * (1 << 20)
    for i, s in enumerate(conns):
        if s is None:
            print("dropped %d 0" % i)
            continue
        sent, want = 0, len(header) + size - 1
        try:
            s.settimeout(5)
            s.sendall(header)
            sent = len(header)
            while sent < want:
                k = s.send(chunk[: min(len(chunk), want - sent)])
                sent += k
            print("held %d" % i if is_open(s) else "dropped %d %d" % (i, sent))
        except OSError:
            print("dropped %d %d" % (i, sent))
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                print("rss %s" % line.split()[1])
    sys.stdout.flush()

def pad(b, a):
    return b + b"\0" * ((-len(b)) % a)

def method_call(serial, member):
    """A D-Bus method call with no arguments to lockboxd's object, little-endian."""
    f = b""
    for code, sig, val in ((1, "o", "/org/lockbox/Lockbox"), (2, "s", "org.lockbox.Lockbox1"), (3, "s", member)):
        f = pad(f, 8) + bytes([code, 1]) + sig.encode() + b"\0"
        v = val.encode()
        f = pad(f, 4) + struct.pack("<I", len(v)) + v + b"\0"
    return pad(struct.pack("<BBBBIII", ord("l"), 1, 0, 1, 0, serial, len(f)) + f, 8)

def pipeline(path, n):
    """Sends n calls at once on one connection, never reading until they are all out;
    prints the number of answers received and whether lockboxd closed the connection."""
    s = connect(path)
    if not s:
        print("answers 0 closed 1")
        return
    s.sendall(b"".join(method_call(i + 1, "GetStatus") for i in range(n)))
    data, closed = b"", 0
    s.settimeout(3)
    try:
        while True:
            k = s.recv(65536)
            if not k:
                closed = 1
                break
            data += k
    except OSError as e:
        closed = 0 if isinstance(e, socket.timeout) else 1
    # Each answer is a method return (type 2) or an error (type 3): count their headers.
    answers, i = 0, 0
    while i + 16 <= len(data):
        body, _, fields = struct.unpack_from("<III", data, i + 4)
        if data[i] != ord("l") or data[i + 1] not in (2, 3):
            break
        answers += 1
        i += 16 + ((fields + 7) & ~7) + body
    print("answers %d closed %d" % (answers, closed))

def call_string(serial, member, arg):
    """A D-Bus method call with one string argument to lockboxd's object, little-endian."""
    f = b""
    for code, sig, val in ((1, "o", "/org/lockbox/Lockbox"), (2, "s", "org.lockbox.Lockbox1"), (3, "s", member)):
        f = pad(f, 8) + bytes([code, 1]) + sig.encode() + b"\0"
        v = val.encode()
        f = pad(f, 4) + struct.pack("<I", len(v)) + v + b"\0"
    f = pad(f, 8) + bytes([8, 1]) + b"g\0" + bytes([1]) + b"s\0"
    body = struct.pack("<I", len(arg)) + arg.encode() + b"\0"
    return pad(struct.pack("<BBBBIII", ord("l"), 1, 0, 1, len(body), serial, len(f)) + f, 8) + body

def unread(path, n, pid):
    """n connections each asking for ListRequests("all") and never reading the answer;
    after three seconds, prints lockboxd's RSS and how many answers arrived."""
    conns = [c for c in (connect(path) for _ in range(n)) if c]
    for s in conns:
        try:
            s.sendall(call_string(1, "ListRequests", "all"))
        except OSError:
            pass
    time.sleep(3)
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                print("rss %s" % line.split()[1])
    # An answer lockboxd kept is waiting in the socket; one it dropped left the socket closed.
    kept, size = 0, 0
    for s in conns:
        try:
            head = s.recv(16, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except OSError:
            head = b""
        if len(head) == 16 and head[1] == 2:
            kept += 1
            size = 16 + ((struct.unpack_from("<I", head, 12)[0] + 7) & ~7) + struct.unpack_from("<I", head, 4)[0]
        elif head[1:2] == b"\3":
            print("error answer")
    print("answer %d bytes" % size)
    print("answered %d of %d" % (kept, len(conns)))
    sys.stdout.flush()
    for s in conns:
        s.close()

def badframes(path, n):
    """n connections, each sending one malformed header after authenticating."""
    for _ in range(n):
        s = connect(path)
        if s:
            try:
                s.sendall(b"X" * 16)
                s.recv(1)
            except OSError:
                pass
            s.close()

if sys.argv[1] == "flood":
    flood(sys.argv[2], int(sys.argv[3]), sys.argv[4])
elif sys.argv[1] == "pipeline":
    pipeline(sys.argv[2], int(sys.argv[3]))
elif sys.argv[1] == "badframes":
    badframes(sys.argv[2], int(sys.argv[3]))
elif sys.argv[1] == "unread":
    unread(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
else:
    bigmsg(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
EOF
}
