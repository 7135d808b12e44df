#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Fleet: the shared store's ground rules against a real PostgreSQL 15 (lib-fleet.sh): every host
# reaches it over TLS with its client certificate from its own network namespace; connections
# without a certificate, without TLS or with another role's certificate are refused; the
# database, not the host, enforces who may decide (hosts have no table privileges and cannot
# call lockbox.decide, the desk can); a cut link fails within connect_timeout while the
# other hosts go on; a real server restart is survived.

. "$abs_top_srcdir/tests/lib/harness.sh"
. "$abs_top_srcdir/tests/fleet/lib-fleet.sh"
lb_setup

fleet_certs "$LB_TMP/certs"
fleet_pg_start
fleet_host_start h1 10.77.0.11 lbf_host1
fleet_host_start h2 10.77.0.12 lbf_host2
fleet_host_start h3 10.77.0.13 lbf_host3
fleet_host_start desk 10.77.0.20 lbf_desk
HOSTS="h1 h2 h3 desk"

# ---- the world: PostgreSQL in its namespace, hosts apart with journals of their own ---------------

postmaster=$(head -1 "$FLEET_PG_DIR/data/postmaster.pid")
is "$(readlink "/proc/$postmaster/ns/net")" "$(fleet_netns_id "$FLEET_DB_NS")" \
        "the postmaster runs in the database's network namespace"
is "$(stat -c %U "/proc/$postmaster")" "$FLEET_PG_USER" "the postmaster runs as $FLEET_PG_USER"

for h in $HOSTS; do
        is "$(on_host "$h" ip -4 -o addr show dev eth0 | awk '{ print $4 }')" "${FLEET_HOST_ADDR[$h]}/24" \
                "$h: its namespace's eth0 has ${FLEET_HOST_ADDR[$h]}"
done
for h in h1 h2; do
        on_host "$h" systemd-cat -t lbf-fleet-test echo "written on $h"
done
for h in h1 h2; do
        on_host "$h" journalctl --sync
        is "$(on_host "$h" journalctl -q --no-pager -t lbf-fleet-test -o json | jq -r '"\(._HOSTNAME) \(.MESSAGE)"')" \
                "lbf-$h written on $h" "$h: its own journald has its entry only, under its own hostname"
done
journalctl --sync
is "$(journalctl -q --no-pager -t lbf-fleet-test -o cat)" "" "the test's own journal has none of the hosts' entries"

# ---- TLS with client certificates --------------------------------------------------------------------

is "$(on_host h1 psql -X "$(fleet_conninfo h1 lbf_host1)" -Atc 'select 1' 2>&1)" "1" \
        "h1 reaches PostgreSQL from its namespace (verify-full, client certificate)"
for h in $HOSTS; do
        role=${FLEET_HOST_ROLE[$h]}
        is "$(fleet_sql "$h" 'SELECT ssl, client_dn, current_user FROM pg_stat_ssl WHERE pid = pg_backend_pid()' 2>&1)" \
                "t|/CN=$role|$role" "$h: connected over TLS as $role with the certificate CN=$role"
done

tls=$LB_TMP/hosts/h1/etc/tls
out=$(on_host h1 psql -X -Atc 'select 1' "host=10.77.0.1 port=5432 dbname=lockbox user=lbf_host1 \
sslmode=verify-full sslrootcert=$tls/ca.crt sslcert=$tls/none.crt sslkey=$tls/none.key connect_timeout=2" 2>&1)
rc=$?
like "$rc: $out" '^2: .*connection requires a valid client certificate' "a connection without a client certificate is refused"
conn=$(fleet_conninfo h1)
out=$(on_host h1 psql -X -Atc 'select 1' "${conn/sslmode=verify-full/sslmode=disable}" 2>&1)
rc=$?
like "$rc: $out" '^2: .*no pg_hba.conf entry for host "10.77.0.11", user "lbf_host1", database "lockbox", no encryption' \
        "a connection without TLS is refused"
out=$(fleet_sql h1 'select 1' lbf_desk 2>&1)
rc=$?
like "$rc: $out" '^2: .*certificate authentication failed for user "lbf_desk"' \
        "lbf_host1's certificate does not log in as lbf_desk"
out=$(on_host h1 psql -X -Atc 'select 1' "${conn/dbname=lockbox/dbname=postgres}" 2>&1)
rc=$?
like "$rc: $out" '^2: .*no pg_hba.conf entry for host "10.77.0.11", user "lbf_host1", database "postgres"' \
        "hosts reach no database but lockbox"

# ---- the database enforces the roles -----------------------------------------------------------------

# op: a fresh id for one write (lockbox.ops remembers the applied ones).
op() { cat /proc/sys/kernel/random/uuid; }
id=$(op)
is "$(fleet_sql h1 "SELECT applied, state FROM lockbox.file('$id', 'contoso', 'lbt-op1', 1001, 'SR-1', \
'fleet test', 3600, 'pending-manager', '$(op)')" 2>&1)" "t|pending-manager" "lbf_host1 files a request with lockbox.file"

out=$(fleet_sql h1 "SELECT applied FROM lockbox.decide('$id', 'pending-manager', 'pending', 'm1', NULL, 'own', '$(op)')" 2>&1)
like "$out" 'permission denied for function decide' "lbf_host1 may not call lockbox.decide"
out=$(fleet_sql h1 "UPDATE lockbox.requests SET state = 'approved' WHERE id = '$id'" 2>&1)
like "$out" 'permission denied for table requests' "lbf_host1 may not UPDATE lockbox.requests"
out=$(fleet_sql h1 "INSERT INTO lockbox.requests (id, state) VALUES ('$(cat /proc/sys/kernel/random/uuid)', 'approved')" 2>&1)
like "$out" 'permission denied for table requests' "lbf_host1 may not INSERT into lockbox.requests"
out=$(fleet_sql h1 "DELETE FROM lockbox.requests WHERE id = '$id'" 2>&1)
like "$out" 'permission denied for table requests' "lbf_host1 may not DELETE from lockbox.requests"
out=$(fleet_sql h1 "SELECT state FROM lockbox.requests WHERE id = '$id'" 2>&1)
like "$out" 'permission denied for table requests' "lbf_host1 may not SELECT from lockbox.requests"
out=$(fleet_sql desk "UPDATE lockbox.requests SET state = 'approved' WHERE id = '$id'" 2>&1)
like "$out" 'permission denied for table requests' "lbf_desk may not UPDATE lockbox.requests either"
is "$(fleet_admin_sql -c "SELECT state FROM lockbox.requests WHERE id = '$id'")" "pending-manager" \
        "the request is still pending-manager"

out=$(fleet_sql desk "SELECT applied FROM lockbox.decide('$id', 'pending-manager', 'pending', 'lbt-op1', NULL, \
'own', '$(op)')" 2>&1)
like "$out" 'violates check constraint' "the database refuses the requester as the manager of their own request"
# decide sets manager, approver and comment to what it is given: the approval repeats the manager.
is "$(fleet_sql desk "SELECT applied, state, manager FROM lockbox.decide('$id', 'pending-manager', 'pending', 'm1', \
NULL, 'manager ok', '$(op)')" 2>&1)" "t|pending|m1" "lbf_desk decides: pending-manager -> pending (manager m1)"
is "$(fleet_sql desk "SELECT applied, state FROM lockbox.decide('$id', 'pending-manager', 'pending', 'm1', NULL, \
'again', '$(op)')" 2>&1)" "f|pending" "a decision from a state the request has left is not applied"
is "$(fleet_sql desk "SELECT applied, state, manager, approver, expires_at - decided_at FROM lockbox.decide('$id', \
'pending', 'approved', 'm1', 'a1', 'approved', '$(op)')" 2>&1)" "t|approved|m1|a1|3600" \
        "lbf_desk decides: pending -> approved (approver a1), a grant of the requested duration"
is "$(fleet_sql h2 "SELECT state FROM lockbox.view(0) WHERE id = '$id'" 2>&1)" "approved" \
        "another host sees the decision through lockbox.view"
# The shared story is bounded as lockboxd's answer is: 20 entries of 64 fields of 4 KB (5 MB)
# come back as the entries up to 1 MiB and the two that cross it (by which the reader knows).
fleet_sql h1 "SELECT count(lockbox.record(gen_random_uuid()::text, '$id', 1000000 + g, 'lbf-h1', \
array_fill('LOCKBOX_X=' || repeat('x', 4000), ARRAY[64]))) FROM generate_series(1, 20) g" >/dev/null
is "$(fleet_sql h2 "SELECT count(DISTINCT seq), sum(octet_length(field)) FROM lockbox.story('$id', 0)" 2>&1)" \
        "6|1539840" "lockbox.story of 5 MB of entries answers 6 entries (1.5 MB), not 20"
out=$(fleet_sql h1 "SELECT lockbox.record(gen_random_uuid()::text, '$id', 1, 'lbf-h1', ARRAY['not a field'])" 2>&1)
like "$out" 'an audit field is NAME=value' "lockbox.record refuses a field that is not NAME=value"
is "$(fleet_sql h3 "SELECT count(*), bool_and(id IS NULL AND db_now > 0) FROM lockbox.view(9223372036854775807)" 2>&1)" \
        "1|t" "lockbox.view with nothing new gives the database's clock alone"

# ---- a cut link, a restarted server ------------------------------------------------------------------

fleet_link_down h1
t0=$(lb_now_ms)
out=$(fleet_sql h1 'select 1' 2>&1)
rc=$?
ms=$(( $(lb_now_ms) - t0 ))
like "$rc: $out" '^2: .*(timeout expired|No route to host)' "h1 cannot connect while its link is down"
ok $(( ms > 3500 )) "... and psql gives up within connect_timeout (2 s; took $ms ms)"
is "$(fleet_sql h2 'select 1' 2>&1)" "1" "h2 still connects while h1's link is down"
fleet_link_up h1
lb_wait_for 10 fleet_sql h1 'select 1' >/dev/null 2>&1
ok $? "h1 connects again once its link is back"

on_host h2 psql -X "$(fleet_conninfo h2)" -Atc 'select pg_sleep(60)' >"$LB_TMP/held.out" 2>&1 &
held=$!
lb_wait_until 5 '[ "$(fleet_admin_sql -c "SELECT count(*) FROM pg_stat_activity WHERE usename = '"'lbf_host2'"'")" = 1 ]'
ok $? "h2 holds a connection open"
fleet_pg_restart
ok $? "PostgreSQL restarts (pg_ctl restart -m fast)"
wait "$held"
like "$(cat "$LB_TMP/held.out")" 'terminat|server closed the connection' "the restart cut h2's open connection"
new_postmaster=$(head -1 "$FLEET_PG_DIR/data/postmaster.pid")
ok $(( new_postmaster == postmaster )) "a new postmaster runs"
is "$(readlink "/proc/$new_postmaster/ns/net")" "$(fleet_netns_id "$FLEET_DB_NS")" \
        "... in the database's network namespace"
for h in $HOSTS; do
        is "$(fleet_sql "$h" 'select 1' 2>&1)" "1" "$h connects after the restart"
done
is "$(fleet_sql h3 "SELECT state FROM lockbox.view(0) WHERE id = '$id'" 2>&1)" "approved" \
        "the decision survived the restart"

lb_done
