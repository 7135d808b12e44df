#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Fleet mode (SPEC §10) end to end: a real PostgreSQL 15 (lib-fleet.sh: TLS, client certificates,
# its own network namespace), three gated hosts and two desks (and later a fourth gated host whose
# clock is off), each in network, mount and UTS namespaces of its own with its own journald,
# lockboxd and sshd. Shows with real ssh logins:
# one approval on a desk admits the operator on every host; a revocation on a desk cuts live
# sessions on every host (timed over ROUNDS rounds); a grant's end the same, audited once; a
# host cut off refuses operators and ends their sessions within stale_after + 1 s while users in
# no role log in; PostgreSQL restarted: hosts recover by themselves, nothing is lost, nothing
# audited twice; two desks racing to decide one request: one winner, one audit entry; a gated
# host's lockboxd cannot decide (the database refuses its role); lockbox audit on any host tells
# the story from every host; a decision whose answer was lost is audited once reconnected; a
# host whose clock is off refuses operators; a lockboxd killed (-9) reads its view back when
# started again. Figures are printed as diag.

. "$abs_top_srcdir/tests/lib/harness.sh"
. "$abs_top_srcdir/tests/lib/sshd.sh"
. "$abs_top_srcdir/tests/fleet/lib-fleet.sh"

LB_SSH_USERS=(lbt-op1 lbt-op2 lbt-none)
ROUNDS=${LB_FLEET_ROUNDS:-20}
STALE_AFTER_S=2
SSH_PORT=2222
GATED="h1 h2 h3"
DESKS="desk desk2"
HOSTS="$GATED $DESKS"
UUID_RE='^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'

lb_setup
lb_write_config
fleet_certs "$LB_TMP/certs"
fleet_pg_start
fleet_host_start h1 10.77.0.11 lbf_host1
fleet_host_start h2 10.77.0.12 lbf_host2
fleet_host_start h3 10.77.0.13 lbf_host3
fleet_host_start desk 10.77.0.20 lbf_desk
fleet_host_start desk2 10.77.0.21 lbf_desk

lb_sshd_prepare_users || bail "cannot prepare the ssh users"
lb_sshd_pam_stack
LB_SSHD_DIR=$LB_TMP/sshd
mkdir -p "$LB_SSHD_DIR" && chmod 0755 "$LB_SSHD_DIR"
ssh-keygen -q -t ed25519 -N '' -f "$LB_SSHD_DIR/ssh_host_ed25519_key" || bail "ssh-keygen"
echo "[127.0.0.1]:$SSH_PORT $(cut -d' ' -f1,2 "$LB_SSHD_DIR/ssh_host_ed25519_key.pub")" >"$LB_SSHD_DIR/known_hosts"
LB_SSHD_PORT=$SSH_PORT
[ -d /run/sshd ] || mkdir -m 0755 /run/sshd

# host_start NAME [WRAPPER...]: the host's lockbox.conf (its own socket, view, and certificate to the shared
# store) bind-mounted over $LB_CONF in its mount namespace, so the PAM stack and the CLI find
# it where every test does; then its lockboxd (run through WRAPPER, if given) and its sshd on
# 127.0.0.1:$SSH_PORT.
host_start() {
        local h=$1 dir=$LB_TMP/hosts/$1 i
        shift
        local -a wrapper=("$@")
        {
                sed -e '/^socket *=/d' -e '/^database *=/d' "$LB_CONF"
                echo "socket = \"$dir/run/lockbox.sock\";"
                echo "database = \"$dir/db/lockbox.db\";"
                echo "request_hint = \"desk.contoso.example\";"
                echo "store = { backend = \"postgresql\"; conninfo = \"$(fleet_conninfo "$h")\";"
                echo "          stale_after = \"${STALE_AFTER_S}s\"; };"
        } >"$dir/etc/lockbox.conf"
        chmod 0644 "$dir/etc/lockbox.conf"
        on_host "$h" mount --bind "$dir/etc/lockbox.conf" "$LB_CONF" || bail "cannot give $h its config"
        daemon_start "$h" "${wrapper[@]}"
        sed -e "s|^Port .*|Port $SSH_PORT|" -e "s|^PidFile .*|PidFile $dir/sshd.pid|" \
                "$LB_SSHD_DIR/sshd_config.base" >"$dir/sshd_config"
        # As lb_sshd_start does: in the sanitizer build the module needs ASan's runtime first.
        on_host "$h" env ${LB_SANITIZER_PRELOAD:+LD_PRELOAD="$LB_SANITIZER_PRELOAD"} \
                ${LB_SANITIZER_PRELOAD:+ASAN_OPTIONS="detect_leaks=0:abort_on_error=1"} \
                /usr/sbin/sshd -D -e -f "$dir/sshd_config" 2>"$dir/sshd.log" </dev/null &
        LB_PIDS+=("$!")
        lb_wait_for 10 grep -q "Server listening" "$dir/sshd.log" || bail "sshd on $h did not start: $(cat "$dir/sshd.log")"
}

# daemon_start NAME [WRAPPER...]: NAME's lockboxd; waits until it answers.
daemon_start() {
        local h=$1 i
        shift
        on_host "$h" "$@" "$LOCKBOXD" -c "$LB_CONF" >>"$LB_TMP/hosts/$h/lockboxd.log" 2>&1 &
        HOST_DAEMON[$h]=$!
        LB_PIDS+=("$!")
        for i in $(seq 100); do
                on_host "$h" "$LOCKBOX" -c "$LB_CONF" status >/dev/null 2>&1 && break
                sleep 0.05
        done
}

declare -A HOST_DAEMON=()
lb_sshd_write_config "$SSH_PORT"
mv "$LB_SSHD_DIR/sshd_config" "$LB_SSHD_DIR/sshd_config.base"
for h in $HOSTS; do
        host_start "$h"
done

# hrun HOST USER ARGS...: the CLI on HOST as USER; sets OUT, ERR, RC.
hrun() {
        local h=$1 user=$2; shift 2
        if [ "$user" = root ]; then
                OUT=$(on_host "$h" "$LOCKBOX" -c "$LB_CONF" "$@" 2>"$LB_TMP/stderr")
        else
                OUT=$(on_host "$h" setpriv --reuid="$user" --regid="$user" --init-groups --reset-env -- \
                        "$LOCKBOX" -c "$LB_CONF" "$@" 2>"$LB_TMP/stderr")
        fi
        RC=$?
        ERR=$(cat "$LB_TMP/stderr")
}

# hssh HOST USER COMMAND: an ssh login on HOST; sets SSH_OUT, SSH_ERR, SSH_RC.
hssh() {
        local h=$1 user=$2; shift 2
        lb_ssh_command "$user"
        SSH_OUT=$(on_host "$h" "${LB_SSH_CMD[@]}" "$@" 2>"$LB_TMP/ssh.stderr" </dev/null)
        SSH_RC=$?
        SSH_ERR=$(cat "$LB_TMP/ssh.stderr")
}

# live HOST USER: a live ssh session on HOST (a shell sleeping); its ssh client's pid in LIVE[HOST].
declare -A LIVE=()
live() {
        local h=$1 user=$2 i
        lb_ssh_command "$user"
        rm -f "$LB_TMP/live.$h"
        on_host "$h" "${LB_SSH_CMD[@]}" 'echo started; exec sleep 120' >"$LB_TMP/live.$h" 2>&1 </dev/null &
        LIVE[$h]=$!
        for i in $(seq 100); do grep -q started "$LB_TMP/live.$h" 2>/dev/null && return 0; sleep 0.05; done
        return 1
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# admitted_on HOST USER: lockboxd on HOST would admit USER now (what the module asks).
admitted_on() {
        [ "$(on_host "$1" "$LOCKBOX" -c "$LB_CONF" check "$2" --json 2>/dev/null | jq -r .admitted)" = true ]
}

# store_current HOST: HOST's status shows a view read back within 2 s and no store error.
store_current() {
        on_host "$1" "$LOCKBOX" -c "$LB_CONF" status --json 2>/dev/null |
                jq -e '.store.last_error == null and .store.view_age_ms != null and .store.view_age_ms <= 2000' >/dev/null
}

# hjournal HOST MATCHES...: that host's journal, JSON lines.
hjournal() {
        local h=$1; shift
        on_host "$h" journalctl --sync 2>/dev/null
        on_host "$h" journalctl -q --no-pager -o json "$@" 2>/dev/null
}

# count_everywhere MATCHES...: entries matching on all hosts together.
count_everywhere() {
        local h n=0
        for h in $HOSTS; do
                n=$((n + $(hjournal "$h" "$@" | wc -l)))
        done
        echo "$n"
}

# grant USER [DURATION]: a request filed by USER on the desk, pre-approved and approved there;
# its id in ID.
grant() {
        hrun desk "$1" request --ticket "SR-$RANDOM" --reason "fleet test" --duration "${2:-1h}"
        ID=$OUT
        hrun desk lbt-mgr approve "$ID" >/dev/null
        hrun desk lbt-appr approve "$ID"
}

percentile() {  # percentile P < numbers
        sort -n | awk -v p="$1" '{ a[NR] = $1 } END { if (NR == 0) { print "n/a"; exit } i = int((NR * p + 99) / 100); if (i < 1) i = 1; print a[i] }'
}

# ---- every host is up and reads the shared store ----------------------------------------------

for h in $HOSTS; do
        lb_wait_for 10 store_current "$h"
        hrun "$h" lbt-admin status --json
        is "$(jq -r '.store.backend' <<<"$OUT")" postgresql "$h: status names the postgresql store"
        ok "$(jq -e '.store.view_age_ms != null and .store.view_age_ms <= 2000' <<<"$OUT" >/dev/null; echo $?)" \
                "$h: its view is current ($(jq -c .store <<<"$OUT"))"
done
hrun h1 lbt-admin status
like "$OUT" $'Store: +postgresql' "status: the store, in words"
like "$OUT" $'View age: +[0-9]+\\.[0-9]{3} s' "status: the view's age, in words"

# ---- a host name in conninfo would be looked up with a blocking call in the event loop: refused ----
dns=$LB_TMP/hosts/h1/etc/dns.conf
sed -e "s|host=$FLEET_DB_ADDR|host=db.contoso.example|" -e "s|/run/lockbox.sock|/run/dns.sock|" \
        -e "s|/db/lockbox.db|/db/dns.db|" "$LB_TMP/hosts/h1/etc/lockbox.conf" >"$dns"
chmod 0644 "$dns"
out=$(on_host h1 timeout 10 "$LOCKBOXD" -c "$dns" 2>&1)
rc=$?
is "$rc" 1 "lockboxd refuses a conninfo whose host is a name without hostaddr"
like "$out" "host names are looked up by libpq with a blocking call; give hostaddr=ADDRESS" "… and says why"
sed -i "s|host=db.contoso.example|host=db.contoso.example hostaddr=$FLEET_DB_ADDR|" "$dns"
on_host h1 timeout 2 "$LOCKBOXD" -c "$dns" >/dev/null 2>&1
is "$?" 124 "… and runs with the name given a hostaddr (the name is then what verify-full checks)"

# ---- users in no role are never affected; an operator without a grant is told where to file ---

hssh h1 lbt-none 'echo hello'
is "$SSH_RC/$SSH_OUT" "0/hello" "h1: a user in no role logs in"
hssh h1 lbt-op1 'echo hello'
is "$SSH_RC" 255 "h1: an operator without a grant is refused"
like "$SSH_ERR" "access refused \(no approved request grants access now\); file a request on desk.contoso.example" \
        "h1: the refusal says where requests are filed (request_hint)"

# ---- one approval on a desk admits on every host --------------------------------------------------

hrun desk lbt-op1 request --ticket SR-1 --reason "fleet: first grant" --duration 1h
is "$RC" 0 "desk: the operator files a request"
ID=$OUT
like "$ID" "$UUID_RE" "desk: … and gets its id"
lb_wait_for 3 sh -c "nsenter -t ${FLEET_HOST_PID[h2]} -m -n -u -- '$LOCKBOX' -c '$LB_CONF' show '$ID' >/dev/null 2>&1"
hrun h2 lbt-mgr show "$ID" --json
is "$(jq -r .state <<<"$OUT")" pending-manager "h2: the request filed on the desk is in h2's view"
hrun h1 lbt-mgr approve "$ID"
is "$RC" 1 "h1 (lockbox_host): a manager's pre-approval is refused, exit 1"
like "$ERR" "may not \(decisions are made on a desk host\)" "h1: … because the database refuses this host's role"
hrun desk lbt-mgr approve "$ID"
is "$RC" 0 "desk: the manager pre-approves"
hrun desk lbt-appr approve "$ID"
is "$RC" 0 "desk: the approver approves"
t0=$(now_ms)
declare -A SEEN=()
while :; do
        left=0
        for h in $GATED; do
                [ -n "${SEEN[$h]:-}" ] && continue
                if admitted_on "$h" lbt-op1; then SEEN[$h]=$(($(now_ms) - t0)); else left=1; fi
        done
        [ $left = 0 ] || [ $(($(now_ms) - t0)) -gt 5000 ] && break
        sleep 0.02
done
for h in $GATED; do
        ok "$([ -n "${SEEN[$h]:-}" ]; echo $?)" "$h: admits the operator after one approval on the desk (${SEEN[$h]:-never} ms)"
        hssh "$h" lbt-op1 'echo in'
        is "$SSH_RC/$SSH_OUT" "0/in" "$h: the operator logs in over ssh"
done
diag "approve -> admitted: $(for h in $GATED; do printf '%s %s ms  ' "$h" "${SEEN[$h]:-never}"; done)"
is "$(count_everywhere LOCKBOX_EVENT=approved LOCKBOX_REQUEST_ID="$ID")" 1 "the approval is audited once, on the desk"
is "$(hjournal desk LOCKBOX_EVENT=approved LOCKBOX_REQUEST_ID="$ID" | wc -l)" 1 "… in the desk's journal"
is "$(hjournal h1 LOCKBOX_EVENT=session-open LOCKBOX_REQUEST_ID="$ID" | wc -l)" 1 "h1's session is audited in h1's journal"
# The whole story on any host: its own journal and the other hosts' entries from the shared store.
sleep 0.3
hrun h2 lbt-admin audit "$ID" --json
is "$RC" 0 "h2: lockbox audit of a request decided on the desk and used on three hosts"
story=$(jq -r '"\(.host) \(.event)"' <<<"$OUT")
for want in "lbf-desk request-created" "lbf-desk manager-approved" "lbf-desk approved" \
            "lbf-h1 access-granted" "lbf-h1 session-open" "lbf-h2 session-open" "lbf-h3 session-open" "lbf-h3 session-close"; do
        is "$(grep -c -x "$want" <<<"$story")" 1 "h2's story of the request holds '$want' once"
done
ok "$(jq -s -e 'map(.time) == (map(.time) | sort)' <<<"$OUT" >/dev/null; echo $?)" "… oldest first"
hrun h2 lbt-op2 audit "$ID"
is "$RC" 3 "another operator does not see the story: no such request (exit 3)"
hrun desk lbt-appr revoke "$ID" --comment "first grant done"
is "$RC" 0 "desk: the approver revokes the first grant"
for h in $GATED; do lb_wait_for 3 sh -c "! nsenter -t ${FLEET_HOST_PID[$h]} -m -n -u -- '$LOCKBOX' -c '$LB_CONF' check lbt-op1 --json | jq -e .admitted >/dev/null"; done

# ---- a revocation on a desk cuts live sessions on every host ------------------------------------

REVOKE_TIMES=()
for round in $(seq "$ROUNDS"); do
        grant lbt-op1 1h >/dev/null
        for h in $GATED; do lb_wait_for 3 admitted_on "$h" lbt-op1; done
        for h in $GATED; do live "$h" lbt-op1 || diag "round $round: no live session on $h"; done
        hrun desk2 lbt-appr revoke "$ID" --comment "round $round"
        t0=$(now_ms)
        for h in $GATED; do
                for i in $(seq 300); do kill -0 "${LIVE[$h]}" 2>/dev/null || break; sleep 0.01; done
                if kill -0 "${LIVE[$h]}" 2>/dev/null; then
                        REVOKE_TIMES+=(99999)
                        kill "${LIVE[$h]}" 2>/dev/null
                else
                        REVOKE_TIMES+=($(($(now_ms) - t0)))
                fi
                wait "${LIVE[$h]}" 2>/dev/null
        done
done
p50=$(printf '%s\n' "${REVOKE_TIMES[@]}" | percentile 50)
p99=$(printf '%s\n' "${REVOKE_TIMES[@]}" | percentile 99)
diag "revoke on desk2 -> live ssh session gone, ${#REVOKE_TIMES[@]} sessions over $ROUNDS rounds on 3 hosts: p50 $p50 ms, p99 $p99 ms, max $(printf '%s\n' "${REVOKE_TIMES[@]}" | sort -n | tail -1) ms"
ok "$([ "$p99" -le 1000 ]; echo $?)" "a revocation on a desk cuts live sessions on every host: p99 $p99 ms <= 1000 ms"
is "$(count_everywhere LOCKBOX_EVENT=revoked LOCKBOX_REQUEST_ID="$ID")" 1 "the last revocation is audited once"
n=0
for h in $GATED; do
        n=$((n + $(hjournal "$h" LOCKBOX_EVENT=session-terminated LOCKBOX_REQUEST_ID="$ID" | wc -l)))
done
is "$n" 3 "each host audits the end of its own session, once"

# ---- a grant's end, the same; its end is audited once ----------------------------------------------

grant lbt-op1 4s >/dev/null
for h in $GATED; do lb_wait_for 3 admitted_on "$h" lbt-op1; done
for h in $GATED; do live "$h" lbt-op1; done
hrun desk lbt-admin show "$ID" --json
expires=$(date -d "$(jq -r .expires_at <<<"$OUT")" +%s)
for h in $GATED; do
        for i in $(seq 800); do kill -0 "${LIVE[$h]}" 2>/dev/null || break; sleep 0.01; done
        late=$(($(now_ms) - expires * 1000))
        ok "$(! kill -0 "${LIVE[$h]}" 2>/dev/null; echo $?)" "$h: the live session ends with the grant (${late} ms after expires_at)"
        kill "${LIVE[$h]}" 2>/dev/null; wait "${LIVE[$h]}" 2>/dev/null
done
lb_wait_for 3 sh -c "[ \"\$(nsenter -t ${FLEET_HOST_PID[desk]} -m -n -u -- '$LOCKBOX' -c '$LB_CONF' show '$ID' --json | jq -r .state)\" = ended ]"
hrun h2 lbt-admin show "$ID" --json
is "$(jq -r .state <<<"$OUT")" ended "the grant is ended in the shared store"
sleep 1
is "$(count_everywhere LOCKBOX_EVENT=ended LOCKBOX_REQUEST_ID="$ID")" 1 \
        "five hosts raced to settle the grant's end: it is audited once, by the one that won"

# ---- two desks racing to decide one request: one winner, one audit entry ------------------------------

hrun desk lbt-op2 request --ticket SR-RACE --reason "race"
RACE=$OUT
hrun desk lbt-mgr approve "$RACE"
lb_wait_for 3 sh -c "[ \"\$(nsenter -t ${FLEET_HOST_PID[desk2]} -m -n -u -- '$LOCKBOX' -c '$LB_CONF' show '$RACE' --json | jq -r .state)\" = pending ]"
on_host desk setpriv --reuid=lbt-appr --regid=lbt-appr --init-groups --reset-env -- \
        "$LOCKBOX" -c "$LB_CONF" deny "$RACE" --comment one >/dev/null 2>"$LB_TMP/race1" &
p1=$!
on_host desk2 setpriv --reuid=lbt-appr2 --regid=lbt-appr2 --init-groups --reset-env -- \
        "$LOCKBOX" -c "$LB_CONF" approve "$RACE" --comment two >/dev/null 2>"$LB_TMP/race2" &
p2=$!
wait $p1; rc1=$?
wait $p2; rc2=$?
is "$(printf '%s\n' "$rc1" "$rc2" | sort | paste -sd' ')" "0 1" "two desks decide one request at once: one wins (0), the other is refused (1)"
n=$(( $(count_everywhere LOCKBOX_EVENT=denied LOCKBOX_REQUEST_ID="$RACE") + $(count_everywhere LOCKBOX_EVENT=approved LOCKBOX_REQUEST_ID="$RACE") ))
is "$n" 1 "… and one decision is audited"
like "$(cat "$LB_TMP/race1" "$LB_TMP/race2")" "decided or ran out meanwhile|is not pending \(it is (approved|denied)\)" "… the loser is told it was decided (meanwhile, or before it looked)"

# ---- a decision whose answer is lost is still audited, once -------------------------------------------
# The writers' lock is held from outside for 5 s: the desk's approval waits in its backend, the
# desk gives up on the answer after 4 s (the write is in doubt) and reconnects; meanwhile the
# lock is freed and the approval applied. Once reconnected the desk asks whether it was: yes,
# so it is audited, late and once.
hrun desk lbt-op2 request --ticket SR-DOUBT --reason "answer lost"
DOUBT=$OUT
hrun desk lbt-mgr approve "$DOUBT"
fleet_admin_sql -c "SELECT pg_advisory_lock(7366776300001), pg_sleep(5), pg_advisory_unlock(7366776300001)" >/dev/null &
locker=$!
sleep 0.3
hrun desk lbt-appr approve "$DOUBT"
is "$RC" 4 "the approver is told the shared store did not answer (exit 4)"
like "$ERR" "did not answer; whether it was recorded is known once it is reachable again" "… and what that means"
wait $locker
lb_wait_for 10 sh -c "[ \"\$(nsenter -t ${FLEET_HOST_PID[h1]} -m -n -u -- '$LOCKBOX' -c '$LB_CONF' show '$DOUBT' --json | jq -r .state)\" = approved ]"
hrun h1 lbt-admin show "$DOUBT" --json
is "$(jq -r .state <<<"$OUT")" approved "the approval whose answer was lost was applied"
lb_wait_for 5 sh -c "grep -q 'was applied although its answer was lost' '$LB_TMP/hosts/desk/lockboxd.log'"
like "$(cat "$LB_TMP/hosts/desk/lockboxd.log")" "write [0-9a-f-]+ of request $DOUBT was applied although its answer was lost" \
        "the desk found out once reconnected"
is "$(count_everywhere LOCKBOX_EVENT=approved LOCKBOX_REQUEST_ID="$DOUBT")" 1 "… and audited the approval, once"

# ---- a host whose clock is off from the database's refuses operators ------------------------------------
# h4's lockboxd sees a clock 30 s ahead (libfaketime: the wall clock only; its timers run on the
# kernel's monotonic clock as ever). Its view is read back on time, but by its clock the
# database's is 30 s behind: more than stale_after.
fleet_host_start h4 10.77.0.14 lbf_host3
host_start h4 env FAKETIME_DONT_FAKE_MONOTONIC=1 ${LB_SANITIZER_PRELOAD:+ASAN_OPTIONS=verify_asan_link_order=0} \
        faketime -f +30s
HOSTS="$HOSTS h4"
grant lbt-op1 1h >/dev/null
for h in $GATED; do lb_wait_for 3 admitted_on "$h" lbt-op1; done
lb_wait_for 5 sh -c "nsenter -t ${FLEET_HOST_PID[h4]} -m -n -u -- '$LOCKBOX' -c '$LB_CONF' show '$ID' >/dev/null 2>&1"
hrun h4 lbt-admin status --json
offset=$(jq -r '.store.clock_offset_ms' <<<"$OUT")
ok "$([ "$offset" -ge 29000 ] && [ "$offset" -le 31000 ]; echo $?)" "h4: status shows its clock ${offset} ms off from the database's"
hrun h4 lbt-admin check lbt-op1 --json
is "$(jq -r '"\(.admitted) \(.reason)"' <<<"$OUT")" "false this host's clock is off from the shared store's" \
        "h4: the operator with a grant is refused: its clock is off by more than stale_after"
hssh h4 lbt-op1 'echo in'
is "$SSH_RC" 255 "h4: the operator's ssh login is refused"
like "$(hjournal h4 LOCKBOX_EVENT=access-denied LOCKBOX_OPERATOR=lbt-op1 | tail -1 | jq -r .MESSAGE)" "clock is off" \
        "h4: … audited with the reason"
hssh h4 lbt-none 'echo hello'
is "$SSH_RC/$SSH_OUT" "0/hello" "h4: a user in no role logs in"
hssh h1 lbt-op1 'echo in'
is "$SSH_RC/$SSH_OUT" "0/in" "h1, whose clock is right, admits the same operator"

# ---- a host cut off refuses operators and ends their sessions; others are unaffected ----------------

grant lbt-op1 1h >/dev/null
for h in $GATED; do lb_wait_for 3 admitted_on "$h" lbt-op1; done
live h3 lbt-op1 || diag "no live session on h3"
since3=$(on_host h3 journalctl -q -n 1 -o json | jq -r .__REALTIME_TIMESTAMP)
fleet_link_down h3
t0=$(now_ms)
for i in $(seq 600); do kill -0 "${LIVE[h3]}" 2>/dev/null || break; sleep 0.01; done
cut=$(($(now_ms) - t0))
ok "$(! kill -0 "${LIVE[h3]}" 2>/dev/null; echo $?)" \
        "h3 cut off: the operator's live session ends within stale_after + 1 s (${cut} ms)"
kill "${LIVE[h3]}" 2>/dev/null; wait "${LIVE[h3]}" 2>/dev/null
diag "link down -> session on h3 ended: $cut ms (stale_after ${STALE_AFTER_S} s)"
ok "$([ "$cut" -le $((STALE_AFTER_S * 1000 + 1000)) ]; echo $?)" "… in $cut ms <= $((STALE_AFTER_S * 1000 + 1000)) ms"
hssh h3 lbt-op1 'echo in'
is "$SSH_RC" 255 "h3 cut off: the operator is refused"
like "$SSH_ERR" "out of date|not read the shared store" "… and told why"
why=$(hjournal h3 LOCKBOX_EVENT=access-denied LOCKBOX_OPERATOR=lbt-op1 | tail -1 | jq -r .MESSAGE)
like "$why" "view of the shared store is out of date" "h3: the refusal is audited with the reason"
like "$(hjournal h3 LOCKBOX_EVENT=session-terminated LOCKBOX_REQUEST_ID="$ID" | tail -1 | jq -r .MESSAGE)" "out of date" \
        "h3: the ended session is audited with the reason"
hssh h3 lbt-none 'echo hello'
is "$SSH_RC/$SSH_OUT" "0/hello" "h3 cut off: a user in no role still logs in"
hssh h1 lbt-op1 'echo in'
is "$SSH_RC/$SSH_OUT" "0/in" "h1, still connected, admits the operator meanwhile"
fleet_link_up h3
ok "$(lb_wait_for 10 admitted_on h3 lbt-op1; echo $?)" "h3's link back: it admits the operator again, by itself"
unset since3

# ---- PostgreSQL restarted mid-run: hosts recover by themselves; nothing lost or audited twice ---------

before=$(count_everywhere LOCKBOX_EVENT=approved)
fleet_pg_restart || bail "PostgreSQL did not restart"
for h in $GATED; do
        ok "$(lb_wait_for 15 admitted_on "$h" lbt-op1; echo $?)" \
                "$h: after PostgreSQL's restart the grant still admits (nothing acknowledged lost)"
done
for h in $HOSTS; do
        ok "$(lb_wait_for 15 store_current "$h"; echo $?)" "$h reconnected by itself: its view is current, no store error"
done
hrun desk lbt-op2 request --ticket SR-AFTER --reason "after the restart"
is "$RC" 0 "the desk files again after the restart"
AFTER=$OUT
hrun desk lbt-mgr approve "$AFTER"
hrun desk lbt-appr2 approve "$AFTER"
is "$RC" 0 "… and decides"
ok "$(lb_wait_for 5 admitted_on h1 lbt-op2; echo $?)" "h1 admits on the decision taken after the restart"
is "$(count_everywhere LOCKBOX_EVENT=approved)" "$((before + 1))" "no approval was audited twice across the restart"
for id in $(fleet_admin_sql -c "select id from lockbox.requests"); do
        for ev in request-created approved revoked ended expired; do
                n=$(count_everywhere LOCKBOX_EVENT=$ev LOCKBOX_REQUEST_ID="$id")
                [ "$n" -le 1 ] || { diag "$id: $ev audited $n times"; bad=1; }
        done
done
ok "${bad:-0}" "every request's events are audited at most once across all hosts"

# ---- a fleet lockboxd killed (-9) and started again reads its view back ---------------------------------

kill -KILL "$(pgrep -f -n "lockboxd -c $LB_CONF" --ns "${FLEET_HOST_PID[h2]}" --nslist mnt)" 2>/dev/null
wait "${HOST_DAEMON[h2]}" 2>/dev/null
hssh h2 lbt-op1 'echo in'
is "$SSH_RC" 255 "h2's lockboxd killed (-9): its operator logins are refused"
hssh h2 lbt-none 'echo hello'
is "$SSH_RC/$SSH_OUT" "0/hello" "… a user in no role logs in"
daemon_start h2
ok "$(lb_wait_for 10 admitted_on h2 lbt-op1; echo $?)" "h2's lockboxd started again: it reads the shared store back and admits the grant"
hssh h2 lbt-op1 'echo in'
is "$SSH_RC/$SSH_OUT" "0/in" "… over ssh"

# ---- lockbox done on a gated host ends the operator's grant on every host -----------------------------

grant lbt-op1 1h >/dev/null
for h in $GATED; do lb_wait_for 3 admitted_on "$h" lbt-op1; done
live h1 lbt-op1 || diag "no live session on h1"
hrun h3 lbt-op1 done
is "$RC:$OUT" "0:Request $ID ended: your access under it has ended" "h3 (lockbox_host): the operator ends their own grant"
for i in $(seq 300); do kill -0 "${LIVE[h1]}" 2>/dev/null || break; sleep 0.01; done
ok "$(! kill -0 "${LIVE[h1]}" 2>/dev/null; echo $?)" "… and their live session on h1 ends"
kill "${LIVE[h1]}" 2>/dev/null; wait "${LIVE[h1]}" 2>/dev/null
is "$(count_everywhere LOCKBOX_EVENT=ended LOCKBOX_REQUEST_ID="$ID")" 1 "… audited once, on h3"

# ---- an operator on a gated host files and waits; the desk's approval reaches the waiting command ----

on_host h1 setpriv --reuid=lbt-op2 --regid=lbt-op2 --init-groups --reset-env -- "$LOCKBOX" -c "$LB_CONF" \
        request --ticket SR-WAIT --reason "waits on h1" --duration 1h --wait >"$LB_TMP/wait.out" 2>"$LB_TMP/wait.err" &
waiter=$!
lb_wait_for 5 grep -q "awaits a support manager" "$LB_TMP/wait.err"
WAITED=$(head -1 "$LB_TMP/wait.out")
hrun desk lbt-mgr approve "$WAITED"
hrun desk lbt-appr approve "$WAITED"
t0=$(now_ms)
wait "$waiter"
rc=$?
diag "desk approval -> the lockbox request --wait on h1 returned in $(($(now_ms) - t0)) ms"
is "$rc" 0 "h1: lockbox request --wait filed on a gated host returns 0 once the desk approves"
like "$(cat "$LB_TMP/wait.err")" "awaits the customer's approver"$'\n'"Request $WAITED approved by lbt-appr" \
        "… having shown each state as the desk moved it"

# ---- the lockboxds ran clean ---------------------------------------------------------------------------

for h in $HOSTS; do
        ok "$(kill -0 "${HOST_DAEMON[$h]}" 2>/dev/null; echo $?)" "$h: lockboxd is still running"
done
if [ "$LB_FAILED" -gt 0 ]; then
        for h in $HOSTS; do
                diag "lockboxd on $h:"
                tail -n 40 "$LB_TMP/hosts/$h/lockboxd.log" | sed 's/^/#   /'
                diag "journal of $h:"
                on_host "$h" journalctl -q --no-pager -o cat | tail -n 30 | sed 's/^/#   /'
        done
fi

lb_done
