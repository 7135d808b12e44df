#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Login cost of pam_lockbox.so under real libpam, with a store of 1k and of 1M requests.
#
#   run-bench-pam.sh [-n CYCLES] [-s "1000 1000000"]
#
# Uses the test harness (private namespace, test users, own journald, a real lockboxd),
# fills the store while lockboxd is stopped (sqlite3, one transaction, rows shaped like
# helper/store.c's schema), restarts it, and runs tests/bench/bench-pam for:
#   permit      account required pam_permit.so                      (the baseline)
#   grant       + pam_lockbox.so before it, operator with a grant    (PAM_SUCCESS)
#   no-grant    the same, operator without a grant                   (PAM_PERM_DENIED)
#   no-role     the same, user in no role                            (PAM_SUCCESS: ignored)
# in three kinds of process: "cold" (nothing loaded but libpam, so every cycle loads the
# module and all its libraries), "sshd-like" (libsystemd.so.0 resident, as in Debian's
# sshd, which links it; this is the figure that counts for ssh logins) and "resident"
# (the module and its libraries stay loaded: what is left is the module's own work and
# the round trip to lockboxd). Prints figures and asserts no times; exits 1 only when a
# cycle returned an unexpected PAM code.

. "$abs_top_srcdir/tests/lib/harness.sh"

BENCH="$abs_top_builddir/tests/bench/bench-pam"
[ -x "$BENCH" ] || bail "build tests/bench/bench-pam first"
CYCLES=2000
SIZES="1000 1000000"
while [ $# -gt 0 ]; do
        case $1 in
        -n) CYCLES=$2; shift 2 ;;
        -s) SIZES=$2; shift 2 ;;
        *) echo "usage: run-bench-pam.sh [-n CYCLES] [-s SIZES]" >&2; exit 2 ;;
        esac
done

lb_setup
lb_start_daemon || bail "lockboxd did not start"

SVC=$LB_TMP/pam.d
mkdir -p "$SVC"
printf '%s\n' 'account required pam_permit.so' >"$SVC/permit"
printf '%s\n' "account required $PAM_MODULE config=$LB_CONF" 'account required pam_permit.so' >"$SVC/lockbox"
printf '%s\n' 'account required pam_deny.so' >"$SVC/other"

# lbt-op1 holds a 4 h grant; lbt-op2 has none (only history, added below).
GRANT=$(as lbt-op1 lockbox request --ticket SR-BENCH --reason bench --duration 4h) || bail "request"
as lbt-mgr lockbox approve "$GRANT" >/dev/null || bail "manager approval"
as lbt-appr lockbox approve "$GRANT" >/dev/null || bail "approval"

# fill FROM TO: rows FROM..TO (1-based) in one transaction. 10% are lbt-op1's and 10%
# lbt-op2's history (final states only), 80% belong to 5000 other requesters: mostly
# final, 1% pending (filed within the last 6 h, so not due), 0.5% approved (ending within
# 4 h). Nothing is due, so lockboxd settles nothing when it starts.
fill() {
        local from=$1 to=$2 now
        now=$(date +%s)
        lb_sql <<EOF || bail "bulk insert failed"
BEGIN IMMEDIATE;
WITH RECURSIVE n(i) AS (SELECT $from UNION ALL SELECT i + 1 FROM n WHERE i < $to),
rows AS (
  SELECT i,
         CASE WHEN i % 10 = 0 THEN 'lbt-op1' WHEN i % 10 = 1 THEN 'lbt-op2'
              ELSE 'bulk-op-' || (i % 5000) END AS who,
         CASE WHEN i % 10 IN (0, 1) THEN
                   CASE (i / 10) % 5 WHEN 0 THEN 'ended' WHEN 1 THEN 'revoked' WHEN 2 THEN 'denied'
                                     WHEN 3 THEN 'cancelled' ELSE 'expired' END
              WHEN i % 200 = 2 THEN 'pending'
              WHEN i % 200 = 3 THEN 'pending-manager'
              WHEN i % 200 = 4 THEN 'approved'
              ELSE CASE (i / 10) % 5 WHEN 0 THEN 'ended' WHEN 1 THEN 'revoked' WHEN 2 THEN 'denied'
                                     WHEN 3 THEN 'cancelled' ELSE 'expired' END END AS state
  FROM n
)
INSERT INTO requests (id, tenant, requester, requester_uid, ticket, reason, duration, state,
                      created_at, decided_at, manager, approver, comment, expires_at)
SELECT printf('%08x-%04x-4%03x-%04x-%012x', (i * 2654435761) % 4294967296, (i * 40503) % 65536,
              i % 4096, 32768 + i % 16384, (i * 1103515245 + 12345) & 281474976710655),
       'contoso', who, 60000 + i % 5000, 'SR-' || i, 'bulk request ' || i, 3600, state,
       CASE WHEN state IN ('pending', 'pending-manager') THEN $now - (i % 21600) - 1
            WHEN state = 'approved' THEN $now - 600
            ELSE $now - 86400 - (i % (3 * 365 * 86400)) END,
       CASE WHEN state IN ('pending', 'pending-manager', 'expired') THEN NULL
            WHEN state = 'approved' THEN $now - 300
            ELSE $now - 86000 - (i % (3 * 365 * 86400)) END,
       CASE WHEN state IN ('pending-manager') THEN NULL ELSE 'lbt-mgr' END,
       CASE WHEN state IN ('approved', 'ended', 'revoked') THEN 'lbt-appr' ELSE NULL END,
       NULL,
       CASE WHEN state = 'approved' THEN $now + 3600 + (i % 10800)
            WHEN state IN ('ended', 'revoked') THEN $now - 82400 - (i % (3 * 365 * 86400))
            ELSE NULL END
FROM rows;
COMMIT;
EOF
}

run_bench() {  # run_bench SIZE
        local mode
        local -a preload
        for mode in cold sshd-like resident; do
                case $mode in
                cold) preload=() ;;
                sshd-like) preload=(--preload libsystemd.so.0) ;;
                resident) preload=(--preload libsystemd.so.0 --preload libconfig.so.9 --preload "$PAM_MODULE") ;;
                esac
                echo "## store: $1 requests ($(lb_count) counted by lockboxd); process: $mode" | tee -a "$LB_TMP/bench.out"
                "$BENCH" --confdir "$SVC" -n "$CYCLES" -w 100 "${preload[@]}" \
                        permit=permit:lbt-op1:PAM_SUCCESS \
                        grant=lockbox:lbt-op1:PAM_SUCCESS \
                        no-grant=lockbox:lbt-op2:PAM_PERM_DENIED \
                        no-role=lockbox:lbt-none:PAM_SUCCESS | tee -a "$LB_TMP/bench.out"
                [ "${PIPESTATUS[0]}" = 0 ] || BENCH_FAILED=1
        done
}

BENCH_FAILED=0
filled=1        # the grant
for size in $SIZES; do
        lb_stop_daemon
        t0=$(date +%s.%N)
        fill $((filled + 1)) "$size"
        echo "## filled the store up to $size rows in $(echo "$(date +%s.%N) - $t0" | bc) s"
        filled=$size
        lb_start_daemon || bail "lockboxd did not restart with $size rows"
        run_bench "$size"
done

echo "## target: pam_lockbox adds <= 0.2 ms median and <= 1 ms p99 over pam_permit, 1M as fast as 1k"
echo "## added over permit (ms):   store  process    case       median     p99"
awk '
        /^## store:/ { size = $3; proc = $NF }
        $1 == "permit" { pm[size, proc] = $3; pp[size, proc] = $5 }
        $1 == "grant" || $1 == "no-grant" || $1 == "no-role" {
                printf "##                     %8s  %-9s  %-9s %7.3f  %7.3f\n", size, proc, $1,
                       $3 - pm[size, proc], $5 - pp[size, proc]
        }' "$LB_TMP/bench.out"
[ "$BENCH_FAILED" = 0 ]
