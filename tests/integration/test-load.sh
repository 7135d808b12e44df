#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Load: 500 clients at once (background processes, released together), mixed: operators
# filing requests, managers and approvers racing to decide the same requests, reads (list,
# show, status), admin checks, and the PAM module's AccessCheck (through lb-call, the module's
# own client library, as root). Asserts:
#   - no errors: every call exits 0, or 1 where a refusal is the expected outcome (two
#     deciders racing for one request: exactly one of them wins),
#   - no request lost or duplicated: every id printed by "request" is in "list --all --json"
#     exactly once, and nothing else appeared,
#   - lockboxd's open fds return exactly to their baseline once the clients are gone, and its
#     RSS to within 20 MiB of it.
# Figures: clients, operations, errors, elapsed, ops/s, peak fds, fds and RSS before/after,
# AccessCheck latency.

. "$abs_top_srcdir/tests/lib/harness.sh"

CLIENTS=${LB_LOAD_CLIENTS:-500}
OPS=${LB_LOAD_OPS:-2}                   # operations of each reading or requesting client
LOAD_USERS=20
POOL=$((CLIENTS / 10))                  # requests each pair of racing deciders fights over
RSS_TOLERANCE_KIB=$((20 * 1024))

ulimit -n "$(ulimit -Hn)" 2>/dev/null

lb_setup
T_START=$(lb_now_ms)
LD="$LB_TMP/load"
mkdir -p "$LD/r"

lb_call_prepare || bail "lb-call is needed for AccessCheck"
for i in $(seq "$LOAD_USERS"); do
        lb_add_user "lbt-load-$i" lockbox-operators || bail "cannot add lbt-load-$i"
done
lb_start_daemon || bail "lockboxd did not start"
T_USERS=$(lb_now_ms)

# ---- pools for the racing deciders -------------------------------------------------------------

# P1: awaiting a manager (approve by lbt-mgr races deny by lbt-mgr2: a manager, not an approver,
#     so once pre-approved the request is out of lbt-mgr2's reach).
# P2: pre-approved by lbt-mgr, awaiting an approver (approve by lbt-appr races deny by lbt-appr2).
P1=() P2=()
for i in $(seq "$POOL"); do
        run lbt-op1 request --ticket "POOL1-$i" --reason "load pool 1" --duration 1h
        [ "$RC" = 0 ] || bail "pool request: $ERR"
        P1+=("$OUT")
        run lbt-op2 request --ticket "POOL2-$i" --reason "load pool 2" --duration 1h
        [ "$RC" = 0 ] || bail "pool request: $ERR"
        P2+=("$OUT")
        run lbt-mgr approve "$OUT"
        [ "$RC" = 0 ] || bail "pool pre-approval: $ERR"
done
printf '%s\n' "${P1[@]}" "${P2[@]}" >"$LD/pool-ids"

T_POOLS=$(lb_now_ms)
# Warm up every path once, then let the daemon settle before the baseline.
run lbt-admin status --json; run lbt-admin check lbt-op1 --json; run lbt-mgr list; run lbt-appr show "${P1[0]}"
lb_access lbt-op1 10000
sleep 1
fd_before=$(lb_daemon_fds)
rss_before=$(lb_daemon_rss_kib)

# ---- the clients --------------------------------------------------------------------------------

# op FILE KIND USER ARGS...: one CLI call as USER; appends "KIND RC" to FILE (for requests also the id).
op() {
        local file=$1 kind=$2 user=$3 out rc; shift 3
        out=$(as "$user" "$LOCKBOX" -c "$LB_CONF" "$@" 2>>"$file.err")
        rc=$?
        if [ "$kind" = request ] && [ "$rc" = 0 ]; then
                echo "$kind $rc $out" >>"$file"
        else
                echo "$kind $rc" >>"$file"
        fi
}

access() {
        local file=$1 user=$2 t0 out rc
        t0=$(lb_now_ms)
        out=$("$LB_CALL" "$LB_SOCKET" 25000 AccessCheck "$user" sshd 127.0.0.1 ssh 2>&1)
        rc=$?
        echo "access $rc $(( $(lb_now_ms) - t0 ))" >>"$file"
        [ "$rc" = 0 ] || echo "$out" >>"$file.err"
}

client() {
        local i=$1 f="$LD/r/$1.log" j=$(( $1 / 10 )) n
        local loaduser="lbt-load-$(( $1 % LOAD_USERS + 1 ))"
        echo "$i $BASHPID" >>"$LD/ready"
        read -r _ <"$LD/go"
        case $(( i % 10 )) in
        0|1|2)  for n in $(seq "$OPS"); do
                        op "$f" request "$loaduser" request --ticket "LOAD-$i-$n" --reason "load $i/$n" --duration 30m
                done ;;
        3)      op "$f" "decide1 ${P1[j]} approve" lbt-mgr approve "${P1[j]}" --comment "load"
                op "$f" show lbt-appr show "${P1[j]}" --json ;;
        4)      op "$f" "decide1 ${P1[j]} deny" lbt-mgr2 deny "${P1[j]}" --comment "load"
                op "$f" list lbt-mgrappr list --state denied --json ;;
        5)      op "$f" "decide2 ${P2[j]} approve" lbt-appr approve "${P2[j]}"
                op "$f" list lbt-appr list --all --json ;;
        6)      op "$f" "decide2 ${P2[j]} deny" lbt-appr2 deny "${P2[j]}" --comment "load"
                op "$f" show lbt-admin show "${P2[j]:0:8}" ;;
        7)      for n in $(seq "$OPS"); do
                        op "$f" list "$loaduser" list --json
                        op "$f" status "$loaduser" status
                done ;;
        8)      for n in $(seq "$OPS"); do
                        op "$f" check lbt-admin check "$loaduser" --json
                done
                op "$f" list lbt-admin list --state pending --json ;;
        9)      for n in $(seq "$OPS"); do
                        access "$f" "$loaduser"
                done
                access "$f" lbt-op1 ;;
        esac
        echo "$i" >>"$LD/finished"
}

mkfifo "$LD/go"
exec 9<>"$LD/go"        # held open until every client has its line: none can miss the start
# The clients run at nice 19: 500 shells forking CLIs on two cores would otherwise starve
# lockboxd (CFS shares the CPU per process), and the test would measure the scheduler.
T_SPAWN=$(lb_now_ms)
(
        renice -n 19 -p "$BASHPID" >/dev/null
        for i in $(seq 0 $((CLIENTS - 1))); do
                client "$i" &
        done
        wait
) &
SPAWNER=$!
for t in $(seq 1200); do
        [ -e "$LD/ready" ] && [ "$(wc -l <"$LD/ready")" -ge "$CLIENTS" ] && break
        sleep 0.1
done
ready=$(wc -l <"$LD/ready")
is "$ready" "$CLIENTS" "all $CLIENTS clients are up and waiting for the start"

# Sample the daemon's fds while the clients run (its peak is the number of connections + base).
( peak=0; while [ ! -e "$LD/done" ]; do
        n=$(lb_daemon_fds); [ "${n:-0}" -gt "$peak" ] && peak=$n
        echo "$peak" >"$LD/peak"; sleep 0.05
  done ) &
SAMPLER=$!
# And a login now and then, at normal priority, under the module's own bound (pam_timeout 2 s):
# what an operator logging in during the storm would get.
( while [ ! -e "$LD/done" ]; do
        t=$(lb_now_ms)
        "$LB_CALL" "$LB_SOCKET" 2000 AccessCheck lbt-op1 sshd 127.0.0.1 ssh >/dev/null 2>&1
        echo "$? $(( $(lb_now_ms) - t ))" >>"$LD/probe"
        sleep 0.2
  done ) &
PROBE=$!

# A watchdog: a client still running after WATCHDOG_SEC is hung; it is killed and counted.
WATCHDOG_SEC=${LB_LOAD_WATCHDOG:-150}
( SECONDS=0
  while [ ! -e "$LD/done" ]; do
        if [ "$SECONDS" -ge "$WATCHDOG_SEC" ]; then
                touch "$LD/watchdog"
                kill -KILL $(awk '{ print $2 }' "$LD/ready") 2>/dev/null
                exit 0
        fi
        sleep 0.5
  done ) >/dev/null 2>&1 &
WATCHDOG=$!

t0=$(lb_now_ms)
head -c "$CLIENTS" /dev/zero | tr '\0' '\n' >&9
wait "$SPAWNER"
elapsed_ms=$(( $(lb_now_ms) - t0 ))
touch "$LD/done"
wait "$WATCHDOG" "$SAMPLER" "$PROBE"
ok $([ -e "$LD/watchdog" ] && echo 1 || echo 0) "every client finished within ${WATCHDOG_SEC}s (none hung)"
is "$(wc -l <"$LD/finished" 2>/dev/null || echo 0)" "$CLIENTS" "all $CLIENTS clients ran to their end"
exec 9>&-

ok $(kill -0 "$LB_DAEMON_PID" 2>/dev/null && echo 0 || echo 1) "lockboxd is still running after the load"

# ---- counting ----------------------------------------------------------------------------------

cat "$LD"/r/*.log >"$LD/all"
ops=$(wc -l <"$LD/all")
# Errors: anything but 0, except the loser of each decision race (1).
errors=$(awk '$1 ~ /^decide/ { if ($4 != 0 && $4 != 1) n++; next } $2 != 0 { n++ } END { print n + 0 }' "$LD/all")
is "$errors" 0 "no errors among $ops operations of $CLIENTS clients (every call exit 0, or 1 for a lost decision race)"
if [ "$errors" != 0 ]; then
        awk '$1 ~ /^decide/ { if ($4 != 0 && $4 != 1) print; next } $2 != 0' "$LD/all" | sort | uniq -c | head -5 | sed 's/^/#   /'
        cat "$LD"/r/*.err 2>/dev/null | sort | uniq -c | sort -rn | head -5 | sed 's/^/#   /'
fi

# Each pool request: exactly one of its two deciders won, and the state says who.
run lbt-admin list --all --json
is "$RC" 0 "admin lists every request after the load"
printf '%s\n' "$OUT" >"$LD/list.json"
jq -r '.[] | "\(.id) \(.state)"' "$LD/list.json" >"$LD/states"
race=$(awk '
        FILENAME == ARGV[1] { st[$1] = $2; next }
        $1 ~ /^decide/ { key = $2; if ($4 == 0) { won[key]++; how[key] = $1 " " $3 } seen[key] = 1 }
        END {
                for (id in seen) {
                        if (won[id] != 1) { printf "%s: %d winners\n", id, won[id]; continue }
                        want = how[id] == "decide1 approve" ? "pending" : how[id] == "decide2 approve" ? "approved" : "denied"
                        if (st[id] != want) printf "%s: %s won but the state is %s\n", id, how[id], st[id]
                }
        }' "$LD/states" "$LD/all" | head -5)
is "$race" "" "every raced request ($((2 * POOL)) of them) has exactly one winning decider, and the state it set"

# No request lost, none duplicated, nothing extra.
awk '$1 == "request" && $2 == 0 { print $3 }' "$LD/all" | sort >"$LD/acked-ids"
n_acked=$(wc -l <"$LD/acked-ids")
jq -r '.[].id' "$LD/list.json" | sort >"$LD/listed-ids"
is "$(sort "$LD/acked-ids" | uniq -d | head -3)" "" "no id was printed by two requests"
is "$(uniq -d "$LD/listed-ids" | head -3)" "" "no id appears twice in list --all --json"
is "$(comm -23 "$LD/acked-ids" "$LD/listed-ids" | head -3)" "" "every one of the $n_acked ids printed by request is listed"
is "$(sort "$LD/acked-ids" "$LD/pool-ids" | comm -13 - "$LD/listed-ids" | head -3)" "" \
        "nothing is listed that no request printed (no phantom requests)"
is "$(jq -r '.[].state' "$LD/list.json" | grep -cvE '^(pending-manager|pending|approved|denied|cancelled|expired|ended|revoked)$')" 0 \
        "every listed state is one of the eight"

# ---- resources --------------------------------------------------------------------------------

fd_after=$(lb_daemon_fds)
for t in $(seq 100); do
        [ "$fd_after" -le "$fd_before" ] && break
        sleep 0.1
        fd_after=$(lb_daemon_fds)
done
is "$fd_after" "$fd_before" "lockboxd's open fds are back to the baseline after the clients left"
[ "$fd_after" != "$fd_before" ] && ls -l "/proc/$LB_DAEMON_PID/fd" | sed 's/^/#   /' | tail -10
rss_after=$(lb_daemon_rss_kib)
ok $([ $((rss_after - rss_before)) -le "$RSS_TOLERANCE_KIB" ] && echo 0 || echo 1) \
        "lockboxd's RSS is within 20 MiB of the baseline (${rss_before} KiB -> ${rss_after} KiB)"
run lbt-admin status
is "$RC" 0 "lockboxd still answers after the load"
too_many=$(grep -c 'refused or closed\|cannot set up a connection' "$LB_TMP/lockboxd.log")
is "$too_many" 0 "lockboxd refused no connection and logged no accept error"

lb_stop_daemon
is "$LB_DAEMON_STATUS" 0 "lockboxd stops cleanly after the load"
is "$(lb_sql 'PRAGMA integrity_check')" ok "PRAGMA integrity_check = ok after the load"

# ---- figures ----------------------------------------------------------------------------------

latency() {
        sort -n | awk '{ a[NR] = $1 } END { if (NR) printf "median %d ms, p95 %d ms, max %d ms (%d calls)", a[int((NR + 1) / 2)], a[int(NR * 0.95 + 0.5)], a[NR], NR }'
}
lat=$(awk '$1 == "access" { print $3 }' "$LD/all" | latency)
probe=$(awk '{ print $2 }' "$LD/probe" | latency)
probe_refused=$(awk '$1 != 0' "$LD/probe" | wc -l)
diag "clients: $CLIENTS concurrent (released together), operations: $ops, errors: $errors"
diag "by kind: $(awk '{ k = $1 ~ /^decide/ ? $1 " " $3 : $1; n[k]++ } END { for (k in n) printf "%s %d, ", k, n[k] }' "$LD/all" | sed 's/, $//')"
diag "elapsed: ${elapsed_ms} ms, $(awk -v o="$ops" -v e="$elapsed_ms" 'BEGIN { printf "%.1f", e ? o * 1000 / e : 0 }') ops/s"
diag "lockboxd fds: before $fd_before, peak $(cat "$LD/peak" 2>/dev/null), after $fd_after"
diag "lockboxd RSS: before ${rss_before} KiB, after ${rss_after} KiB ($(( (rss_after - rss_before) / 1024 )) MiB more)"
diag "AccessCheck by the clients (nice 19, 25 s bound, process start to exit): $lat"
diag "AccessCheck probes at normal priority under pam_timeout (2 s): $probe; not answered in time: $probe_refused"
diag "phases: setup+users $((T_USERS - T_START)) ms, pools $((T_POOLS - T_USERS)) ms, spawning $((t0 - T_SPAWN)) ms, load $elapsed_ms ms, checks $(( $(lb_now_ms) - t0 - elapsed_ms )) ms"
diag "machine load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (2 cores, shared with other test runs)"

lb_done
