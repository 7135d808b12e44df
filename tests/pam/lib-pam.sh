# SPDX-License-Identifier: LGPL-2.1-or-later
# The pam tier's shared pieces (test-pam.sh, test-pam-auth.sh): running one PAM transaction
# through tests/pam/pam-run, service files, the journal since a mark, grants. Sourced after
# tests/lib/harness.sh; service files go to $SVC.

PAM_RUN="$abs_top_builddir/tests/pam/pam-run"
[ -x "$PAM_RUN" ] || bail "build tests/pam/pam-run first"
PAM_KILL_AFTER=${PAM_KILL_AFTER:-20}   # seconds before pam-run is killed (a hang is then a failure, not a stuck suite)
SVC=$LB_TMP/pam.d
mkdir -p "$SVC"

svc() {  # svc NAME LINE...: writes the service file NAME
        local name=$1; shift
        printf '%s\n' "$@" >"$SVC/$name"
}

# ---- running PAM ------------------------------------------------------------------------------

BACKEND=wrapper
# pam SERVICE USER [pam-run OPTIONS]: one transaction; sets AUTH, ACCT, OPEN, CLOSE (return code
# names, "" when the step did not run), ACCT_MS, OPEN_MS (in-process times of the step), MSG
# (conversation messages, one per line), NMSG, PROMPTS (one per line), LOG (the module's syslog lines, wrapper backend
# only), PID (pam-run's pid), BETWEEN, WALL_MS, OUT.
pam_command() {  # sets PAM_CMD: pam-run under the chosen backend
        if [ "$BACKEND" = wrapper ]; then
                # Under tests/run's sanitizer stage the ASan runtime must come first.
                PAM_CMD=(env PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR="$SVC" PAM_WRAPPER_DEBUGLEVEL=2
                         LD_PRELOAD="${LB_SANITIZER_PRELOAD:+$LB_SANITIZER_PRELOAD }libpam_wrapper.so" "$PAM_RUN")
        else
                PAM_CMD=("$PAM_RUN" --confdir "$SVC")
        fi
}
pam() {
        local service=$1 user=$2 t0; shift 2
        pam_command
        t0=$(date +%s%N)
        OUT=$(timeout -s KILL "$PAM_KILL_AFTER" "${PAM_CMD[@]}" "$@" "$service" "$user" 2>"$LB_TMP/pam.err")
        RUN_RC=$?
        WALL_MS=$(( ($(date +%s%N) - t0) / 1000000 ))
        pam_read "$service $user $*"
}
# pam_bg SERVICE USER [OPTIONS]: the same in the background, its output in $BG_OUT as it
# comes; pam_bg_line REGEX waits for a line; pam_bg_end waits for the end and sets what pam sets.
BG_OUT=$LB_TMP/pam-bg.out
pam_bg() {
        local service=$1 user=$2; shift 2
        pam_command
        : >"$BG_OUT"
        BG_T0=$(date +%s%N)
        BG_WHAT="$service $user $*"
        timeout -s KILL "$PAM_KILL_AFTER" "${PAM_CMD[@]}" "$@" "$service" "$user" >"$BG_OUT" 2>"$LB_TMP/pam.err" &
        BG_PID=$!
}
pam_bg_line() {
        local i
        for i in $(seq 400); do
                grep -Eq -- "$1" "$BG_OUT" && return 0
                kill -0 "$BG_PID" 2>/dev/null || { grep -Eq -- "$1" "$BG_OUT"; return; }
                sleep 0.05
        done
        return 1
}
pam_bg_end() {
        wait "$BG_PID"
        RUN_RC=$?
        WALL_MS=$(( ($(date +%s%N) - BG_T0) / 1000000 ))
        OUT=$(cat "$BG_OUT")
        pam_read "$BG_WHAT"
}
pam_bg_kill() {  # as sshd ends the PAM process of a login whose client went away
        local pid
        pid=$(sed -n 's/^pid: //p' "$BG_OUT" | head -1)
        kill -TERM "${pid:-$BG_PID}" 2>/dev/null
        wait "$BG_PID" 2>/dev/null
        forget_wrapper_dir "$pid"
}
# pam_wrapper's copy of the service dir (/tmp/pam.X, holding the pid of its process)
# outlives a killed pam-run: remove ours, and only ours.
forget_wrapper_dir() {  # forget_wrapper_dir PID
        local d
        for d in /tmp/pam.?; do
                [ -n "$1" ] && [ -f "$d/pid" ] && [ "$(cat "$d/pid")" = "$1" ] && rm -rf "$d"
        done
}
pam_read() {  # pam_read WHAT: the fields of $OUT
        AUTH=$(out_field auth)
        ACCT=$(out_field account)
        OPEN=$(out_field open_session)
        CLOSE=$(out_field close_session)
        ACCT_MS=$(out_field account_ms)
        OPEN_MS=$(out_field open_session_ms)
        PID=$(out_field pid)
        BETWEEN=$(out_field between)
        MSG=$(sed -n 's/^msg: //p' <<<"$OUT")
        NMSG=$(grep -c '^msg: ' <<<"$OUT")
        PROMPTS=$(sed -n 's/^prompt: //p' <<<"$OUT")
        LOG=$(sed -n 's/^.*SYSLOG([0-9]*): //p' "$LB_TMP/pam.err")
        if [ "$RUN_RC" != 0 ]; then
                diag "pam-run $1 exited $RUN_RC after ${WALL_MS} ms${RUN_RC/#137/ (killed: it hung)}"
                sed 's/^/#   /' <<<"$OUT"
                grep -v 'PWRAP\|SYSLOG' "$LB_TMP/pam.err" | tail -n 30 | sed 's/^/#   stderr: /'
                forget_wrapper_dir "$PID"
        fi
}
out_field() { sed -n "s/^$1: //p" <<<"$OUT" | head -1; }

# lt_ms GOT LIMIT DESCRIPTION: GOT (milliseconds, may be fractional) < LIMIT
lt_ms() {
        local got=$1 limit=$2; shift 2
        if [ -n "$got" ] && awk -v g="$got" -v l="$limit" 'BEGIN { exit !(g < l) }'; then
                ok 0 "$*"
        else
                ok 1 "$*"
                printf '#   got: %s ms, want < %s ms (wall %s ms)\n' "${got:-none}" "$limit" "$WALL_MS"
        fi
}
ge_ms() {
        local got=$1 limit=$2; shift 2
        if [ -n "$got" ] && awk -v g="$got" -v l="$limit" 'BEGIN { exit !(g >= l) }'; then
                ok 0 "$*"
        else
                ok 1 "$*"
                printf '#   got: %s ms, want >= %s ms\n' "${got:-none}" "$limit"
        fi
}

# ---- the journal since a mark -----------------------------------------------------------------

mark() { CUR=$(lb_journal_cursor); }
# since FIELD=VALUE...: the entries written after the mark that match every FIELD=VALUE, as
# JSON lines. (Filtered here: journalctl 252 with --after-cursor and matches skips the first
# match when the cursor's own entry does not match.)
since() {
        local json kv
        if [ -n "${CUR:-}" ]; then json=$(journal --after-cursor="$CUR"); else json=$(journal); fi
        for kv; do
                json=$(jq -c --arg k "${kv%%=*}" --arg v "${kv#*=}" 'select(.[$k] == $v)' <<<"$json")
        done
        [ -z "$json" ] || printf '%s\n' "$json"
}
# audit EVENT FIELD=VALUE... DESCRIPTION-PREFIX: exactly one EVENT entry since the mark, and
# each FIELD of it equals VALUE.
audit() {
        local event=$1 what=${!#} entries n kv field want got; shift
        entries=$(since SYSLOG_IDENTIFIER=lockbox LOCKBOX_EVENT="$event")
        n=$(grep -c . <<<"$entries")
        is "$n" 1 "$what: one $event audit entry"
        while [ $# -gt 1 ]; do
                kv=$1; shift
                field=${kv%%=*}
                want=${kv#*=}
                got=$(tail -n 1 <<<"$entries" | jq -r --arg f "$field" 'if has($f) then .[$f] else "(absent)" end' 2>/dev/null)
                is "$got" "$want" "$what: $event has $field=$want"
        done
}
no_audit_of() {  # no_audit_of USER DESCRIPTION: no lockbox entry about USER since the mark
        local n
        n=$(since SYSLOG_IDENTIFIER=lockbox LOCKBOX_OPERATOR="$1" | grep -c .)
        is "$n" 0 "$2"
}

# ---- requests ---------------------------------------------------------------------------------

# grant USER DURATION: files a request as USER and has it approved (manager, then approver);
# sets GRANT to its id.
grant() {
        GRANT=$(as "$1" lockbox request --ticket "SR-$1" --reason "pam test" --duration "$2" 2>&1) ||
                bail "cannot file a request for $1: $GRANT"
        as lbt-mgr lockbox approve "$GRANT" >/dev/null 2>&1 || bail "manager approval of $GRANT failed"
        as lbt-appr lockbox approve "$GRANT" >/dev/null 2>&1 || bail "approval of $GRANT failed"
}
revoke() { as lbt-appr lockbox revoke "$1" --comment "pam test" >/dev/null 2>&1 || bail "revoke $1 failed"; }

