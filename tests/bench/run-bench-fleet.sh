#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Fleet mode figures (SPEC §10), against a real PostgreSQL 15 (tests/fleet/lib-fleet.sh: TLS
# with client certificates, its own network namespace):
#
#   run-bench-fleet.sh [-n CYCLES] [-d DAEMONS] [-r ROUNDS]
#
#  1. Login cost: tests/bench/bench-pam (pam_lockbox.so under real libpam, the module and its
#     libraries resident) against a lockboxd on SQLite and, in the same run, against a fleet
#     host's lockboxd: the login path reads the host's view and never the network, so the two
#     should be the same.
#  2. Revocation propagation: DAEMONS (100) lockboxd processes on one PostgreSQL; a desk
#     approves and revokes, ROUNDS (10) times; for each revocation, the time from the desk's
#     lockbox revoke to each lockboxd's view having read it back (its log line, stamped as
#     it is read: bash's EPOCHREALTIME, no fork).
# Prints figures and asserts nothing; exits 1 only when something did not run.

. "$abs_top_srcdir/tests/lib/harness.sh"
. "$abs_top_srcdir/tests/fleet/lib-fleet.sh"

BENCH="$abs_top_builddir/tests/bench/bench-pam"
[ -x "$BENCH" ] || bail "build tests/bench/bench-pam first (make bench)"
CYCLES=2000
DAEMONS=100
ROUNDS=10
while [ $# -gt 0 ]; do
        case $1 in
        -n) CYCLES=$2; shift 2 ;;
        -d) DAEMONS=$2; shift 2 ;;
        -r) ROUNDS=$2; shift 2 ;;
        *) echo "usage: run-bench-fleet.sh [-n CYCLES] [-d DAEMONS] [-r ROUNDS]" >&2; exit 2 ;;
        esac
done

export FLEET_PG_MAX_CONNECTIONS=$((DAEMONS + 20))
lb_setup
lb_start_daemon || bail "lockboxd (SQLite) did not start"
fleet_certs "$LB_TMP/certs"
fleet_pg_start
fleet_host_start h1 10.77.0.11 lbf_host1
fleet_host_start many 10.77.0.12 lbf_host2
fleet_host_start desk 10.77.0.20 lbf_desk

# fleet_config HOST NAME: a fleet lockbox.conf for a lockboxd of HOST, its files named NAME.
fleet_config() {
        local h=$1 name=$2 dir=$LB_TMP/hosts/$1
        {
                sed -e '/^socket *=/d' -e '/^database *=/d' "$LB_CONF"
                echo "socket = \"$dir/run/$name.sock\";"
                echo "database = \"$dir/db/$name.db\";"
                echo "store = { backend = \"postgresql\"; conninfo = \"$(fleet_conninfo "$h")\"; };"
        } >"$dir/etc/$name.conf"
        chmod 0644 "$dir/etc/$name.conf"
        echo "$dir/etc/$name.conf"
}

# host_daemon HOST: HOST's lockboxd, its config over $LB_CONF in HOST's mount namespace.
host_daemon() {
        local h=$1 conf
        conf=$(fleet_config "$h" lockbox)
        on_host "$h" mount --bind "$conf" "$LB_CONF" || bail "cannot give $h its config"
        on_host "$h" "$LOCKBOXD" -c "$LB_CONF" >>"$LB_TMP/hosts/$h/lockboxd.log" 2>&1 &
        LB_PIDS+=("$!")
        lb_wait_for 10 on_host "$h" "$LOCKBOX" -c "$LB_CONF" status >/dev/null 2>&1 || bail "lockboxd on $h did not start"
}
host_daemon h1
host_daemon desk

hcli() {  # hcli HOST USER ARGS...
        local h=$1 user=$2; shift 2
        on_host "$h" setpriv --reuid="$user" --regid="$user" --init-groups --reset-env -- "$LOCKBOX" -c "$LB_CONF" "$@"
}

# ---- 1. login cost: SQLite host and fleet host, same run ----------------------------------------

SVC=$LB_TMP/pam.d
mkdir -p "$SVC"
printf '%s\n' 'account required pam_permit.so' >"$SVC/permit"
printf '%s\n' "account required $PAM_MODULE config=$LB_CONF" 'account required pam_permit.so' >"$SVC/lockbox"

GRANT=$(as lbt-op1 lockbox request --ticket SR-BENCH --reason bench --duration 4h) &&
        as lbt-mgr lockbox approve "$GRANT" >/dev/null && as lbt-appr lockbox approve "$GRANT" >/dev/null ||
        bail "grant on the SQLite host"
GRANT=$(hcli desk lbt-op1 request --ticket SR-BENCH --reason bench --duration 4h) &&
        hcli desk lbt-mgr approve "$GRANT" >/dev/null && hcli desk lbt-appr approve "$GRANT" >/dev/null ||
        bail "grant on the desk"
lb_wait_for 5 sh -c "nsenter -t ${FLEET_HOST_PID[h1]} -m -n -u -- '$LOCKBOX' -c '$LB_CONF' check lbt-op1 --json | jq -e .admitted >/dev/null" ||
        bail "h1 does not admit on the desk's grant"

STATUS=0
bench() {  # bench LABEL [on_host HOST]
        local label=$1; shift
        echo "## $label"
        "$@" "$BENCH" --confdir "$SVC" -n "$CYCLES" -w 100 \
                --preload libsystemd.so.0 --preload libconfig.so.9 --preload "$PAM_MODULE" \
                permit=permit:lbt-op1:PAM_SUCCESS grant=lockbox:lbt-op1:PAM_SUCCESS \
                no-grant=lockbox:lbt-op2:PAM_PERM_DENIED no-role=lockbox:lbt-none:PAM_SUCCESS || STATUS=1
}
{
        bench "sqlite host"
        bench "fleet host" on_host h1
} | tee "$LB_TMP/login.out"
echo "## login cost added over pam_permit (ms, module resident):   store   case       median     p99"
awk '
        /^## / { store = $2 }
        $1 == "permit" { pm[store] = $3; pp[store] = $5 }
        $1 == "grant" || $1 == "no-grant" || $1 == "no-role" {
                printf "##                                                     %-6s  %-9s %7.3f  %7.3f\n", store, $1,
                       $3 - pm[store], $5 - pp[store]
        }' "$LB_TMP/login.out"

# ---- 2. revocation propagation: DAEMONS lockboxd on one PostgreSQL --------------------------------

# Each log line is stamped when read (µs since the epoch), without a fork.
stamp() {
        local line
        while IFS= read -r line; do
                printf '%s %s\n' "${EPOCHREALTIME/./}" "$line"
        done
}
for i in $(seq "$DAEMONS"); do
        conf=$(fleet_config many "d$i")
        on_host many "$LOCKBOXD" -c "$conf" 2>&1 </dev/null | stamp >"$LB_TMP/hosts/many/d$i.log" &
        LB_PIDS+=("$!")
done
connected() {
        local n
        n=$(grep -l 'view of the shared store is current' "$LB_TMP"/hosts/many/d*.log 2>/dev/null | wc -l)
        [ "$n" -ge "$DAEMONS" ]
}
lb_wait_for 60 connected || bail "not all $DAEMONS lockboxd read the shared store ($(grep -l current "$LB_TMP"/hosts/many/d*.log | wc -l))"
rss=$(ps -C lockboxd -o rss= | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
echo "## $DAEMONS lockboxd connected to one PostgreSQL (median RSS ${rss} KiB each)"

# revision_seen_at REVISION FILE: when FILE's lockboxd read back REVISION or later (µs), or nothing.
revision_seen_at() {
        awk -v want="$1" '/view read back to revision/ { for (i = 1; i <= NF; i++) if ($i == "revision") r = $(i + 1) + 0;
                                                        if (r >= want) { print $1; exit } }' "$2"
}

: >"$LB_TMP/propagation"
for round in $(seq "$ROUNDS"); do
        id=$(hcli desk lbt-op2 request --ticket "SR-P$round" --reason propagation --duration 1h) || bail "request"
        hcli desk lbt-mgr approve "$id" >/dev/null && hcli desk lbt-appr approve "$id" >/dev/null || bail "approve"
        sleep 0.5
        t0=${EPOCHREALTIME/./}
        hcli desk lbt-appr revoke "$id" >/dev/null || bail "revoke"
        rev=$(fleet_admin_sql -c "select revision from lockbox.requests where id = '$id'")
        for i in $(seq 50); do
                n=0
                for f in "$LB_TMP"/hosts/many/d*.log; do
                        [ -n "$(revision_seen_at "$rev" "$f")" ] && n=$((n + 1))
                done
                [ "$n" -ge "$DAEMONS" ] && break
                sleep 0.1
        done
        for f in "$LB_TMP"/hosts/many/d*.log; do
                at=$(revision_seen_at "$rev" "$f")
                if [ -n "$at" ]; then echo $(((at - t0) / 1000)); else echo never; fi
        done >>"$LB_TMP/propagation"
done
never=$(grep -c never "$LB_TMP/propagation")
grep -v never "$LB_TMP/propagation" | sort -n | awk -v d="$DAEMONS" -v r="$ROUNDS" -v never="$never" '
        { a[NR] = $1 }
        END {
                printf "## revocation on the desk -> read back by each of %d lockboxd, %d rounds (%d views, %d never):\n", d, r, NR, never
                printf "##   p50 %d ms, p90 %d ms, p99 %d ms, max %d ms (from the desk'"'"'s lockbox revoke starting)\n",
                       a[int(NR * 0.5 + 0.5)], a[int(NR * 0.9 + 0.5)], a[int(NR * 0.99 + 0.5)], a[NR]
        }'
[ "$never" = 0 ] || STATUS=1
exit $STATUS
