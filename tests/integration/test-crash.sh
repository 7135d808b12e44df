#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Crash safety: while client loops (real test users, the real CLI) file, pre-approve, approve,
# deny, revoke and cancel requests, lockboxd is killed with SIGKILL at random moments and
# started again, many times. Whatever a client was told succeeded (exit 0) must survive:
#   - the store passes PRAGMA integrity_check after every crash (checked on a copy taken
#     while the daemon is dead, so the daemon still does its own recovery),
#   - every acknowledged request exists, exactly once,
#   - every acknowledged decision is reflected: the state is the acknowledged one or one
#     that can only follow it (approved -> ended/revoked; final states stay as they are),
#   - no state outside the eight of the SPEC, no duplicate ids,
#   - every acknowledged operation has its audit entry in the journal.
# Figures: rounds survived, operations acknowledged (by kind), refusals, helper-down exits.

. "$abs_top_srcdir/tests/lib/harness.sh"

ROUNDS=${LB_CRASH_ROUNDS:-30}
DEADLINE_SEC=${LB_CRASH_DEADLINE:-120}   # stop early rather than overrun the tier's budget

lb_setup
CR="$LB_TMP/crash"
mkdir -p "$CR/snap"

lb_start_daemon || bail "lockboxd did not start"


# cli NAME USER ARGS...: one CLI call as USER, bounded; sets COUT and CRC. Exit statuses a
# crash test can expect: 0, 1 (refused: someone else decided first), 4 (helper down).
# Anything else is written to $CR/unexpected.
cli() {
        local name=$1 user=$2; shift 2
        COUT=$(as "$user" timeout 40 "$LOCKBOX" -c "$LB_CONF" "$@" 2>"$CR/err.$name")
        CRC=$?
        case $CRC in
        0) ;;
        1) echo x >>"$CR/refused.$name" ;;
        4) echo x >>"$CR/down.$name" ;;
        *) echo "$name: lockbox $* -> exit $CRC: $(head -c 300 "$CR/err.$name")" >>"$CR/unexpected" ;;
        esac
}

# ack NAME ACTION: after a successful decision, log "ACTION ID STATE" from the CLI's answer.
ack_decision() {
        local name=$1 action=$2 id state
        if [[ "$COUT" =~ ^Request\ ([0-9a-f-]{36})\ pre-approved: ]]; then
                id=${BASH_REMATCH[1]} state=pending
        elif [[ "$COUT" =~ ^Request\ ([0-9a-f-]{36})\ approved:\ access\ until ]]; then
                id=${BASH_REMATCH[1]} state=approved
        elif [[ "$COUT" =~ ^Request\ ([0-9a-f-]{36})\ is\ now\ ([a-z-]+)$ ]]; then
                id=${BASH_REMATCH[1]} state=${BASH_REMATCH[2]}
        else
                echo "$name: $action acknowledged with unreadable output: $COUT" >>"$CR/unexpected"
                return
        fi
        echo "$action $id $state" >>"$CR/ack.$name"
}

# pick NAME USER FILTER-ARGS...: a random id from "list ... --json" as USER ("" if none).
pick() {
        local name=$1 user=$2; shift 2
        local ids
        PICKED=""
        cli "$name" "$user" list "$@" --json
        [ "$CRC" = 0 ] || return 0
        mapfile -t ids < <(jq -r '.[].id' <<<"$COUT" 2>/dev/null)
        [ "${#ids[@]}" -gt 0 ] && PICKED=${ids[RANDOM % ${#ids[@]}]}
        return 0
}

client() {
        local name=$1 kind=$2 user=$3 n=0
        while [ ! -e "$CR/stop" ] && [ "$n" -lt 20000 ]; do
                n=$((n + 1))
                case $kind in
                operator)       # file requests, sometimes cancel one of their own
                        if [ $((RANDOM % 10)) -lt 7 ]; then
                                cli "$name" "$user" request --ticket "SR-$name-$n" --reason "crash test $n" --duration 1h
                                if [ "$CRC" = 0 ]; then
                                        if [[ "$COUT" =~ ^[0-9a-f-]{36}$ ]]; then
                                                echo "create $COUT pending-manager" >>"$CR/ack.$name"
                                        else
                                                echo "$name: request acknowledged with output '$COUT'" >>"$CR/unexpected"
                                        fi
                                fi
                        else
                                pick "$name" "$user" --state pending-manager
                                [ -n "$PICKED" ] || continue
                                cli "$name" "$user" cancel "$PICKED"
                                [ "$CRC" = 0 ] && ack_decision "$name" cancel
                        fi
                        ;;
                manager)        # stage 1: pre-approve most, deny some
                        pick "$name" "$user" --state pending-manager
                        [ -n "$PICKED" ] || { sleep 0.02; continue; }
                        if [ $((RANDOM % 4)) -lt 3 ]; then
                                cli "$name" "$user" approve "$PICKED" --comment "stage 1"
                                [ "$CRC" = 0 ] && ack_decision "$name" preapprove
                        else
                                cli "$name" "$user" deny "$PICKED" --comment "no"
                                [ "$CRC" = 0 ] && ack_decision "$name" deny
                        fi
                        ;;
                approver)       # stage 2: approve most, deny some
                        pick "$name" "$user" --state pending
                        [ -n "$PICKED" ] || { sleep 0.02; continue; }
                        if [ $((RANDOM % 4)) -lt 3 ]; then
                                cli "$name" "$user" approve "$PICKED"
                                [ "$CRC" = 0 ] && ack_decision "$name" approve
                        else
                                cli "$name" "$user" deny "$PICKED"
                                [ "$CRC" = 0 ] && ack_decision "$name" deny
                        fi
                        ;;
                revoker)        # end grants, and approve now and then so there are grants
                        if [ $((RANDOM % 2)) = 0 ]; then
                                pick "$name" "$user" --state approved
                                [ -n "$PICKED" ] || { sleep 0.02; continue; }
                                cli "$name" "$user" revoke "$PICKED" --comment "done"
                                [ "$CRC" = 0 ] && ack_decision "$name" revoke
                        else
                                pick "$name" "$user" --state pending
                                [ -n "$PICKED" ] || { sleep 0.02; continue; }
                                cli "$name" "$user" approve "$PICKED"
                                [ "$CRC" = 0 ] && ack_decision "$name" approve
                        fi
                        ;;
                admin)          # cancel pending requests of either stage, and read
                        pick "$name" "$user" --all
                        cli "$name" "$user" status --json
                        pick "$name" "$user" --state pending
                        [ -n "$PICKED" ] || pick "$name" "$user" --state pending-manager
                        [ -n "$PICKED" ] || continue
                        cli "$name" "$user" cancel "$PICKED"
                        [ "$CRC" = 0 ] && ack_decision "$name" cancel
                        ;;
                esac
        done
}

# check_acks LABEL STATES-FILE ACKS-FILE: STATES-FILE has "ID STATE" lines (the store), ACKS-FILE
# "ACTION ID STATE" lines. One TAP line for "everything acknowledged is there", one for "states".
check_acks() {
        local label=$1 states=$2 acks=$3 problems
        problems=$(awk '
                function rank_ok(acked, now) {
                        if (acked == now) return 1
                        if (acked == "pending-manager") return 1
                        if (acked == "pending") return now != "pending-manager"
                        if (acked == "approved") return now == "ended" || now == "revoked"
                        return 0        # a final state never changes
                }
                FILENAME == ARGV[1] { if (NF == 2) { if ($1 in st) dup[$1] = 1; st[$1] = $2 } next }
                NF != 3 || length($2) != 36 { next }    # a line still being written
                {
                        if (!($2 in st)) { printf "lost: acknowledged %s of %s (%s) is not in the store\n", $1, $2, $3; next }
                        if (!rank_ok($3, st[$2]))
                                printf "regressed: %s acknowledged %s (%s), store says %s\n", $2, $3, $1, st[$2]
                }
                $1 == "create" { if ($2 in created) printf "duplicate: id %s acknowledged as created twice\n", $2; created[$2] = 1 }
                END { for (i in dup) printf "duplicate: id %s twice in the store\n", i }
        ' "$states" "$acks" | head -20)
        is "$problems" "" "$label: every acknowledged request and decision is in the store, none regressed, no duplicates"
        problems=$(awk '$2 !~ /^(pending-manager|pending|approved|denied|cancelled|expired|ended|revoked)$/' "$states" | head -5)
        is "$problems" "" "$label: every state is one of the eight"
}

# ---- run -------------------------------------------------------------------------------------

CLIENT_PIDS=()
client op1 operator lbt-op1 & CLIENT_PIDS+=($!)
client op2 operator lbt-op2 & CLIENT_PIDS+=($!)
client mgr manager lbt-mgr & CLIENT_PIDS+=($!)
client appr approver lbt-appr & CLIENT_PIDS+=($!)
client appr2 revoker lbt-appr2 & CLIENT_PIDS+=($!)
client admin admin lbt-admin & CLIENT_PIDS+=($!)

start=$(date +%s)
restart_ms=()
survived=0 integrity_bad=0 restart_bad=0 died_early=0 ack_fail=0 daemon_fail=0 checked=0
for round in $(seq "$ROUNDS"); do
        if [ $(( $(date +%s) - start )) -ge "$DEADLINE_SEC" ]; then
                diag "stopping after $((round - 1)) rounds: the time budget of ${DEADLINE_SEC}s is used up"
                break
        fi
        sleep "0.$(printf '%03d' $((50 + RANDOM % 351)))"
        if ! kill -0 "$LB_DAEMON_PID" 2>/dev/null; then
                died_early=$((died_early + 1))
                diag "round $round: lockboxd died before it was killed; log tail:"
                tail -5 "$LB_TMP/lockboxd.log" | sed 's/^/#   /'
        fi
        kill -KILL "$LB_DAEMON_PID" 2>/dev/null
        wait "$LB_DAEMON_PID" 2>/dev/null
        lb_forget_pid "$LB_DAEMON_PID"

        # The store as the crash left it, and what clients had been told until then.
        rm -f "$CR/snap/"*
        cp "$LB_DATABASE" "$CR/snap/db"
        [ -e "$LB_DATABASE-wal" ] && cp "$LB_DATABASE-wal" "$CR/snap/db-wal"
        cat "$CR"/ack.* >"$CR/snap/acks" 2>/dev/null

        t_restart=$(lb_now_ms)
        if ! lb_start_daemon; then
                restart_bad=$((restart_bad + 1))
                diag "round $round: lockboxd did not start again after SIGKILL"
                break
        fi
        survived=$((survived + 1))
        restart_ms+=($(( $(lb_now_ms) - t_restart )))

        ic=$(sqlite3 -batch "$CR/snap/db" 'PRAGMA integrity_check' 2>&1)
        if [ "$ic" != ok ]; then
                integrity_bad=$((integrity_bad + 1))
                diag "round $round: integrity_check: $(head -3 <<<"$ic")"
        fi
        sqlite3 -batch -separator ' ' "$CR/snap/db" 'SELECT id, state FROM requests' >"$CR/snap/states" 2>&1
        out=$(LB_TESTS=0 LB_FAILED=0; check_acks "round $round" "$CR/snap/states" "$CR/snap/acks" | grep '^not ok' -A3)
        checked=$((checked + $(wc -l <"$CR/snap/acks")))
        if [ -n "$out" ]; then
                ack_fail=$((ack_fail + 1))
                diag "round $round:"; sed 's/^/#   /' <<<"$out"
        fi
        # And the restarted daemon itself, after its own recovery, sees all of it (states only
        # move forward, so what the clients do meanwhile cannot hide a loss).
        if as lbt-admin "$LOCKBOX" -c "$LB_CONF" list --all --json >"$CR/snap/daemon.json" 2>"$CR/snap/daemon.err"; then
                jq -r '.[] | "\(.id) \(.state)"' "$CR/snap/daemon.json" >"$CR/snap/daemon-states" 2>/dev/null
                out=$(LB_TESTS=0 LB_FAILED=0; check_acks "round $round, as lockboxd sees it" "$CR/snap/daemon-states" \
                        "$CR/snap/acks" | grep '^not ok' -A3)
        else
                out="list --all --json right after the restart failed: $(head -c 200 "$CR/snap/daemon.err")"
        fi
        if [ -n "$out" ]; then
                daemon_fail=$((daemon_fail + 1))
                diag "round $round:"; sed 's/^/#   /' <<<"$out"
        fi
done

touch "$CR/stop"
for p in "${CLIENT_PIDS[@]}"; do wait "$p"; done
elapsed=$(( $(date +%s) - start ))

is "$died_early" 0 "lockboxd was alive at every kill (it never died by itself)"
is "$restart_bad" 0 "lockboxd started again after every SIGKILL"
is "$integrity_bad" 0 "PRAGMA integrity_check = ok on the store after every one of $survived crashes"
is "$ack_fail" 0 "after every crash, everything acknowledged before it was in the store ($checked acknowledgements checked in all)"
is "$daemon_fail" 0 "after every restart, lockboxd lists everything acknowledged before the crash, none regressed"
min_rounds=$(( ROUNDS < 10 ? ROUNDS : 10 ))
ok $([ "$survived" -ge "$min_rounds" ] && echo 0 || echo 1) \
        "at least $min_rounds crash rounds were run ($survived of $ROUNDS in the time budget)"

# ---- at the end, through the daemon, the store and the journal -----------------------------------

cat "$CR"/ack.* >"$CR/acks" 2>/dev/null
run lbt-admin list --all --json
is "$RC" 0 "admin lists all requests after the last restart"
jq -r '.[] | "\(.id) \(.state)"' <<<"$OUT" >"$CR/states.final" 2>/dev/null
check_acks "final (list --all --json)" "$CR/states.final" "$CR/acks"
is "$(jq -r '.[].id' <<<"$OUT" | sort | uniq -d | head -3)" "" "list --all --json has no id twice"

lb_stop_daemon
is "$LB_DAEMON_STATUS" 0 "lockboxd stops cleanly (SIGTERM) after the last crash recovery"
is "$(lb_sql 'PRAGMA integrity_check' 2>&1)" ok "PRAGMA integrity_check = ok on the final store"
lb_sql -separator ' ' 'SELECT id, state FROM requests' >"$CR/states.db"
check_acks "final (the store)" "$CR/states.db" "$CR/acks"
is "$(lb_sql 'SELECT count(*) - count(DISTINCT id) FROM requests')" 0 "no duplicate ids in the store"
n_acked_created=$(awk '$1 == "create"' "$CR/acks" | wc -l)
n_store=$(wc -l <"$CR/states.db")
ok $([ "$n_store" -ge "$n_acked_created" ] && echo 0 || echo 1) \
        "the store holds at least every acknowledged request ($n_store >= $n_acked_created)"

# Every acknowledged operation was audited (the audit is written before the commit).
journal SYSLOG_IDENTIFIER=lockbox | jq -r '"\(.LOCKBOX_EVENT) \(.LOCKBOX_REQUEST_ID)"' >"$CR/audit"
missing=$(awk '
        BEGIN { ev["create"] = "request-created"; ev["preapprove"] = "manager-approved"; ev["approve"] = "approved"
                ev["deny"] = "denied"; ev["cancel"] = "cancelled"; ev["revoke"] = "revoked" }
        FILENAME == ARGV[1] { seen[$1 " " $2] = 1; next }
        NF == 3 && !((ev[$1] " " $2) in seen) { printf "%s of %s has no %s audit entry\n", $1, $2, ev[$1] }
' "$CR/audit" "$CR/acks" | head -5)
is "$missing" "" "every acknowledged operation has its audit entry in the journal"

unexpected=$(head -5 "$CR/unexpected" 2>/dev/null)
is "$unexpected" "" "no CLI call ended other than 0, 1 (refused) or 4 (helper down), and none hung"

count() { cat "$CR"/$1.* 2>/dev/null | wc -l; }
diag "rounds survived: $survived of $ROUNDS (SIGKILL every 50-400 ms of uptime), ${elapsed}s"
diag "operations acknowledged: $(wc -l <"$CR/acks") ($(awk '{ n[$1]++ } END { for (a in n) printf "%s %d, ", a, n[a] }' "$CR/acks" | sed 's/, $//'))"
diag "restart after SIGKILL until the first answer: $(printf "%s\n" "${restart_ms[@]}" | sort -n | awk "{ a[NR] = \$1 } END { if (NR) printf \"median %d ms, max %d ms\", a[int((NR + 1) / 2)], a[NR] }")"
diag "refused (exit 1): $(count refused), helper down (exit 4): $(count down), requests in the store: $n_store"

lb_done
