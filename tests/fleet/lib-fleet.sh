# SPDX-License-Identifier: LGPL-2.1-or-later
# The fleet tier's world, sourced after harness.sh and lb_setup:
#
#   . "$abs_top_srcdir/tests/lib/harness.sh"
#   . "$abs_top_srcdir/tests/fleet/lib-fleet.sh"
#   lb_setup
#   fleet_certs "$LB_TMP/certs"              # test CA, server and client certificates
#   fleet_pg_start                           # PostgreSQL 15 on 10.77.0.1:5432 in netns lbf-db-$$
#   fleet_host_start h1 10.77.0.11 lbf_host1 # a host: own netns, mount ns, UTS ns, journald
#   on_host h1 psql "$(fleet_conninfo h1)" -Atc 'select 1'
#   lb_done
#
# The network: a bridge in the database's namespace (10.77.0.1/24) and, per host, a veth pair
# from that bridge to the host's namespace (interface eth0 there, "v-NAME" on the bridge).
# Both ends of every veth are created directly inside the namespaces, never in the root one,
# and /run/netns is a tmpfs of this test's mount namespace: neither interface names nor
# namespace names can collide with a parallel run, and no namespace is visible outside.
# Everything (PostgreSQL, every process of every host, the namespaces) is removed on exit,
# also after a failure or bail; fleet_cleanup runs before the harness's lb_cleanup.

FLEET_TAG=$$
FLEET_NET=10.77.0
FLEET_DB_ADDR=$FLEET_NET.1
FLEET_DB_NS=lbf-db-$FLEET_TAG
FLEET_BRIDGE=lbf-br
FLEET_PG=/usr/lib/postgresql/15/bin
FLEET_PG_USER=lbt-pg
FLEET_PG_ROLES="lbf_host1 lbf_host2 lbf_host3 lbf_desk lbf_admin"
# The schema lockboxd's PostgreSQL backend expects; overridable for trying a draft.
: "${FLEET_SCHEMA:=$abs_top_srcdir/conf/lockbox-postgresql.sql}"
FLEET_READY=""
FLEET_CERTS=""
FLEET_PG_DIR=""
FLEET_HOSTS=()
declare -gA FLEET_HOST_PID=() FLEET_HOST_NS=() FLEET_HOST_MNT=() FLEET_HOST_ROLE=() FLEET_HOST_ADDR=()

# fleet_setup: once, after lb_setup (the fleet functions call it themselves): a private
# /run/netns, the cleanup chained before the harness's, and an exit (so the cleanup) on
# SIGINT, SIGTERM and SIGHUP.
fleet_setup() {
        [ -n "$FLEET_READY" ] && return 0
        [ -n "${LB_TMP:-}" ] || bail "lib-fleet.sh: call lb_setup first"
        mkdir -p /run/netns
        mount -t tmpfs -o mode=0755 tmpfs /run/netns || bail "cannot mount tmpfs on /run/netns"
        trap 'fleet_cleanup; lb_cleanup' EXIT
        trap 'exit 129' HUP
        trap 'exit 130' INT
        trap 'exit 143' TERM
        mkdir -p "$LB_TMP/hosts"
        FLEET_READY=1
}

# ---- certificates ----------------------------------------------------------------------------

# fleet_certs DIR: with openssl (EC prime256v1 keys, mode 0600), in DIR: ca.crt/ca.key (a test
# CA), server.crt/server.key (CN and subjectAltName IP:10.77.0.1, so sslmode=verify-full with
# host=10.77.0.1 passes) and ROLE.crt/ROLE.key for each role of FLEET_PG_ROLES (CN = the
# PostgreSQL role name, what pg_hba's "cert" method matches). Sets FLEET_CERTS=DIR.
fleet_certs() {
        local dir=$1 name
        fleet_setup
        mkdir -p "$dir" && chmod 0755 "$dir" || bail "fleet_certs: cannot create $dir"
        cat >"$dir/openssl.cnf" <<EOF
[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:$FLEET_DB_ADDR
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
        fleet_new_key "$dir/ca.key" &&
                openssl req -new -x509 -days 2 -config "$dir/openssl.cnf" -extensions ca \
                        -subj "/CN=lockbox fleet test CA $FLEET_TAG" -key "$dir/ca.key" -out "$dir/ca.crt" \
                        2>>"$dir/openssl.log" || bail "fleet_certs: cannot make the CA: $(cat "$dir/openssl.log")"
        fleet_signed_cert "$dir" server "$FLEET_DB_ADDR" server
        for name in $FLEET_PG_ROLES; do
                fleet_signed_cert "$dir" "$name" "$name" client
        done
        chmod 0644 "$dir"/*.crt
        FLEET_CERTS=$dir
}

# fleet_new_key FILE: a new EC prime256v1 private key in FILE, mode 0600.
fleet_new_key() {
        (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$1" \
                2>>"$(dirname "$1")/openssl.log")
}

# fleet_signed_cert DIR NAME CN SECTION: DIR/NAME.key and DIR/NAME.crt, signed by DIR's CA with
# the extensions of SECTION (server or client) of DIR/openssl.cnf.
fleet_signed_cert() {
        local dir=$1 name=$2 cn=$3 section=$4
        fleet_new_key "$dir/$name.key" &&
                openssl req -new -config "$dir/openssl.cnf" -subj "/CN=$cn" -key "$dir/$name.key" \
                        -out "$dir/$name.csr" 2>>"$dir/openssl.log" &&
                openssl x509 -req -days 2 -in "$dir/$name.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
                        -extfile "$dir/openssl.cnf" -extensions "$section" -out "$dir/$name.crt" \
                        2>>"$dir/openssl.log" ||
                bail "fleet_certs: cannot make the $name certificate: $(cat "$dir/openssl.log")"
        rm -f "$dir/$name.csr"
}

# ---- PostgreSQL ------------------------------------------------------------------------------

# in_db_netns COMMAND...: COMMAND in the database's network namespace (and this test's mount
# namespace, so the harness's cleanup of test users' processes sees PostgreSQL's).
in_db_netns() {
        nsenter --net="/run/netns/$FLEET_DB_NS" -- "$@"
}

# as_pg COMMAND...: COMMAND as the unprivileged account that runs PostgreSQL.
as_pg() {
        setpriv --reuid="$FLEET_PG_USER" --regid="$FLEET_PG_USER" --init-groups --reset-env -- "$@"
}

# fleet_pg_ctl ARGS...: pg_ctl on the test cluster as its account, inside the database's
# network namespace (where a postmaster it starts must run), logging to $LB_TMP/pg/pg_ctl.log.
fleet_pg_ctl() {
        in_db_netns setpriv --reuid="$FLEET_PG_USER" --regid="$FLEET_PG_USER" --init-groups --reset-env -- \
                "$FLEET_PG/pg_ctl" -D "$FLEET_PG_DIR/data" -l "$FLEET_PG_DIR/postgresql.log" "$@" \
                >>"$FLEET_PG_DIR/pg_ctl.log" 2>&1
}

# fleet_admin_sql [PSQL-ARGS...]: psql as the superuser lbf_admin over the server's unix socket
# (the only "local ... trust" path), database lockbox, ON_ERROR_STOP, no psqlrc, tuples only.
# E.g. fleet_admin_sql -c 'select count(*) from lockbox.requests'.
fleet_admin_sql() {
        "$FLEET_PG/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h "$FLEET_PG_DIR/socket" -p 5432 -U lbf_admin \
                -d lockbox "$@"
}

# fleet_pg_start: the database's network namespace (FLEET_DB_NS) with a bridge at 10.77.0.1/24;
# a fresh PostgreSQL 15 cluster in $LB_TMP/pg run by the test account lbt-pg inside that
# namespace, listening on 10.77.0.1:5432 (TLS with fleet_certs' server certificate, client
# certificates checked against the CA) and on a unix socket in $LB_TMP/pg/socket. pg_hba:
# "local all all trust" for the admin, "hostssl lockbox all 10.77.0.0/24 cert", nothing else.
# Database lockbox with FLEET_SCHEMA applied, login roles lbf_host1..3 (IN ROLE lockbox_host)
# and lbf_desk (IN ROLE lockbox_desk); the superuser is lbf_admin. Bails on failure.
fleet_pg_start() {
        local data
        fleet_setup
        [ -n "$FLEET_CERTS" ] || bail "fleet_pg_start: call fleet_certs first"
        [ -r "$FLEET_SCHEMA" ] || bail "fleet_pg_start: no schema at $FLEET_SCHEMA"
        [ -x "$FLEET_PG/postgres" ] || bail "fleet_pg_start: PostgreSQL 15 is not installed (postgresql-15)"

        ip netns add "$FLEET_DB_NS" || bail "cannot create network namespace $FLEET_DB_NS"
        ip -n "$FLEET_DB_NS" link set lo up &&
                ip -n "$FLEET_DB_NS" link add "$FLEET_BRIDGE" type bridge &&
                ip -n "$FLEET_DB_NS" addr add "$FLEET_DB_ADDR/24" dev "$FLEET_BRIDGE" &&
                ip -n "$FLEET_DB_NS" link set "$FLEET_BRIDGE" up ||
                bail "cannot set up the bridge in $FLEET_DB_NS"

        id -u "$FLEET_PG_USER" >/dev/null 2>&1 ||
                useradd -M -d "$LB_TMP/pg" -s /bin/sh "$FLEET_PG_USER" || bail "useradd $FLEET_PG_USER"
        LB_USERS+=("$FLEET_PG_USER")
        FLEET_PG_DIR=$LB_TMP/pg
        data=$FLEET_PG_DIR/data
        install -d -o "$FLEET_PG_USER" -g "$FLEET_PG_USER" -m 0700 "$FLEET_PG_DIR" "$FLEET_PG_DIR/socket" ||
                bail "cannot create $FLEET_PG_DIR"
        as_pg "$FLEET_PG/initdb" -D "$data" -U lbf_admin -A trust --no-locale -E UTF8 --no-sync \
                --no-instructions >"$FLEET_PG_DIR/initdb.log" 2>&1 ||
                bail "initdb failed: $(tail -n 5 "$FLEET_PG_DIR/initdb.log")"
        # PostgreSQL wants its key owned by its account and not readable by others.
        install -o "$FLEET_PG_USER" -g "$FLEET_PG_USER" -m 0600 "$FLEET_CERTS/server.key" "$data/server.key" &&
                install -o "$FLEET_PG_USER" -g "$FLEET_PG_USER" -m 0644 "$FLEET_CERTS/server.crt" "$data/server.crt" &&
                install -o "$FLEET_PG_USER" -g "$FLEET_PG_USER" -m 0644 "$FLEET_CERTS/ca.crt" "$data/ca.crt" ||
                bail "cannot install the server certificate"
        cat >>"$data/postgresql.conf" <<EOF

# ---- lockbox fleet test ----
listen_addresses = '$FLEET_DB_ADDR'
port = 5432
unix_socket_directories = '$FLEET_PG_DIR/socket'
unix_socket_permissions = 0700
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
ssl_ca_file = 'ca.crt'
ssl_min_protocol_version = 'TLSv1.2'
max_connections = ${FLEET_PG_MAX_CONNECTIONS:-60}
shared_buffers = 16MB
fsync = off
synchronous_commit = off
full_page_writes = off
log_connections = on
log_disconnections = on
log_line_prefix = '%m [%p] %q%u@%d %r '
EOF
        cat >"$data/pg_hba.conf" <<EOF
# lockbox fleet test: the admin over the unix socket, hosts and desk over TLS with a client
# certificate whose CN is their role. Nothing else.
local   all      all                    trust
hostssl lockbox  all    $FLEET_NET.0/24   cert
EOF
        chown "$FLEET_PG_USER:" "$data/pg_hba.conf" "$data/postgresql.conf"
        fleet_pg_ctl -w -t 30 start ||
                bail "PostgreSQL did not start: $(tail -n 5 "$FLEET_PG_DIR/pg_ctl.log" "$FLEET_PG_DIR/postgresql.log" 2>&1)"
        fleet_pg_wait || bail "PostgreSQL does not accept connections: $(tail -n 5 "$FLEET_PG_DIR/postgresql.log")"

        fleet_admin_sql -d postgres -c 'CREATE DATABASE lockbox' || bail "cannot create database lockbox"
        fleet_admin_sql -f "$FLEET_SCHEMA" >"$FLEET_PG_DIR/schema.log" 2>&1 ||
                bail "cannot apply $FLEET_SCHEMA: $(tail -n 5 "$FLEET_PG_DIR/schema.log")"
        fleet_admin_sql <<EOF || bail "cannot create the fleet's login roles"
CREATE ROLE lbf_host1 LOGIN IN ROLE lockbox_host;
CREATE ROLE lbf_host2 LOGIN IN ROLE lockbox_host;
CREATE ROLE lbf_host3 LOGIN IN ROLE lockbox_host;
CREATE ROLE lbf_desk LOGIN IN ROLE lockbox_desk;
EOF
}

# fleet_pg_wait [SECONDS]: waits (default 10 s) until PostgreSQL accepts connections on its
# socket and on 10.77.0.1:5432 (pg_isready from inside the database's namespace).
fleet_pg_wait() {
        lb_wait_for "${1:-10}" fleet_pg_ready
}
fleet_pg_ready() {
        "$FLEET_PG/pg_isready" -q -h "$FLEET_PG_DIR/socket" -p 5432 -t 2 &&
                in_db_netns "$FLEET_PG/pg_isready" -q -h "$FLEET_DB_ADDR" -p 5432 -d lockbox -t 2
}

# fleet_pg_stop [MODE]: stops PostgreSQL (pg_ctl stop -m MODE, default fast).
fleet_pg_stop() {
        [ -n "$FLEET_PG_DIR" ] && [ -f "$FLEET_PG_DIR/data/postmaster.pid" ] || return 0
        fleet_pg_ctl -m "${1:-fast}" -w -t 20 stop
}

# fleet_pg_restart: a real restart of the server (pg_ctl restart -m fast: every connection is
# cut, a new postmaster starts in the namespace); returns once it accepts connections again.
fleet_pg_restart() {
        fleet_pg_ctl -m fast -w -t 30 restart && fleet_pg_wait
}

# ---- hosts -----------------------------------------------------------------------------------

# fleet_host_start NAME ADDR ROLE: a host of the fleet. A network namespace (lbf-NAME-$$) whose
# eth0 (ADDR/24) is a veth to the bridge ("v-NAME" there; NAME at most 13 characters); a
# long-lived holder process in that namespace and in fresh mount and UTS namespaces (hostname
# lbf-NAME, an /etc/machine-id of its own, fresh tmpfs on /run/systemd/journal, /run/log,
# /run/lockbox and /var/log/journal) running a systemd-journald of its own (volatile, not
# reading /dev/kmsg, its own messages in $LB_TMP/hosts/NAME/journald.log). The host's files
# are in $LB_TMP/hosts/NAME: run/, db/ (0700), etc/, etc/tls/ with ca.crt, client.crt and
# client.key (ROLE's certificate, key 0600). Bails on failure.
fleet_host_start() {
        local name=$1 addr=$2 role=$3 ns dir pid
        fleet_setup
        [ -n "$FLEET_CERTS" ] || bail "fleet_host_start: call fleet_certs first"
        [ -f "$FLEET_CERTS/$role.crt" ] || bail "fleet_host_start: no certificate for role $role"
        [[ "$name" =~ ^[a-z0-9]{1,13}$ ]] || bail "fleet_host_start: bad host name '$name'"
        [ -z "${FLEET_HOST_PID[$name]:-}" ] || bail "fleet_host_start: $name already runs"
        ns=lbf-$name-$FLEET_TAG
        dir=$LB_TMP/hosts/$name

        ip netns add "$ns" || bail "cannot create network namespace $ns"
        FLEET_HOST_NS[$name]=$ns
        FLEET_HOSTS+=("$name")
        ip -n "$ns" link set lo up &&
                ip -n "$FLEET_DB_NS" link add "v-$name" type veth peer name eth0 netns "$ns" &&
                ip -n "$FLEET_DB_NS" link set "v-$name" master "$FLEET_BRIDGE" up &&
                ip -n "$ns" addr add "$addr/24" dev eth0 &&
                ip -n "$ns" link set eth0 up ||
                bail "cannot connect $ns to the bridge"

        mkdir -p "$dir/run" "$dir/db" "$dir/etc/tls" && chmod 0700 "$dir/db" || bail "cannot create $dir"
        install -m 0644 "$FLEET_CERTS/ca.crt" "$dir/etc/tls/ca.crt" &&
                install -m 0644 "$FLEET_CERTS/$role.crt" "$dir/etc/tls/client.crt" &&
                install -m 0600 "$FLEET_CERTS/$role.key" "$dir/etc/tls/client.key" ||
                bail "cannot install $name's certificate"
        od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$dir/etc/machine-id" && echo >>"$dir/etc/machine-id"
        # Only this host's entries: no kernel messages (every journald's own lines go there).
        printf '[Journal]\nStorage=volatile\nReadKMsg=no\n' >"$dir/etc/journald.conf"

        nsenter --net="/run/netns/$ns" -- unshare --mount --uts --propagation private -- \
                bash -c "$FLEET_HOLDER" fleet-holder "$dir" "lbf-$name" \
                </dev/null >"$dir/holder.log" 2>&1 &
        pid=$!
        FLEET_HOST_PID[$name]=$pid
        FLEET_HOST_ROLE[$name]=$role
        FLEET_HOST_ADDR[$name]=$addr
        lb_wait_for 10 test -e "$dir/ready" ||
                bail "host $name did not start: $(cat "$dir/holder.log" "$dir/journald.log" 2>/dev/null)"
        FLEET_HOST_MNT[$name]=$(readlink "/proc/$pid/ns/mnt")
}

# The holder of a host's namespaces ($1 the host's dir, $2 its hostname): its own journal and
# lockbox run dirs, its own journald; touches $1/ready, then sleeps until killed.
FLEET_HOLDER='
dir=$1
hostname "$2" || exit 1
mount -t tmpfs -o mode=0755 tmpfs /run/systemd/journal || exit 1
mount -t tmpfs -o mode=0755 tmpfs /run/log || exit 1
mount -t tmpfs -o mode=0755 tmpfs /run/lockbox || exit 1
if [ -d /var/log/journal ]; then mount -t tmpfs tmpfs /var/log/journal || exit 1; fi
mount --bind "$dir/etc/machine-id" /etc/machine-id || exit 1
mount --bind "$dir/etc/journald.conf" /etc/systemd/journald.conf || exit 1
SYSTEMD_LOG_TARGET=console /lib/systemd/systemd-journald </dev/null >"$dir/journald.log" 2>&1 &
for i in $(seq 200); do
        if [ -S /run/systemd/journal/socket ]; then
                touch "$dir/ready"
                exec sleep infinity
        fi
        sleep 0.05
done
echo "journald did not start"
exit 1
'

# on_host NAME COMMAND...: COMMAND inside host NAME's mount, network and UTS namespaces (its
# journal, its /run/lockbox, its eth0), in the current directory.
on_host() {
        local name=$1; shift
        [ -n "${FLEET_HOST_PID[$name]:-}" ] || { echo "on_host: no host $name" >&2; return 127; }
        nsenter -t "${FLEET_HOST_PID[$name]}" -m -n -u --wd="$PWD" -- "$@"
}

# fleet_conninfo NAME [USER]: the libpq conninfo with which host NAME reaches the database:
# TLS verify-full against the test CA, the host's own client certificate, as USER (default the
# host's role; another USER shows that the certificate's CN must match).
fleet_conninfo() {
        local name=$1 user=${2:-${FLEET_HOST_ROLE[$1]:-}} tls=$LB_TMP/hosts/$1/etc/tls
        echo "host=$FLEET_DB_ADDR port=5432 dbname=lockbox user=$user sslmode=verify-full" \
                "sslrootcert=$tls/ca.crt sslcert=$tls/client.crt sslkey=$tls/client.key connect_timeout=2"
}

# fleet_sql NAME SQL [USER]: runs SQL with psql from host NAME (fleet_conninfo NAME USER),
# unaligned tuples only, ON_ERROR_STOP; psql's output and exit status.
fleet_sql() {
        on_host "$1" "$FLEET_PG/psql" -X -q -A -t -v ON_ERROR_STOP=1 "$(fleet_conninfo "$1" "${3:-}")" -c "$2"
}

# fleet_link_down NAME / fleet_link_up NAME: cuts / restores host NAME's link to the bridge
# (its bridge-side veth down / up; established connections stall, new ones time out).
fleet_link_down() {
        ip -n "$FLEET_DB_NS" link set "v-$1" down
}
fleet_link_up() {
        ip -n "$FLEET_DB_NS" link set "v-$1" up
}

# fleet_host_stop NAME: ends host NAME: kills every process in its mount namespace (journald
# and whatever on_host started) or in its network namespace, and removes the namespace.
fleet_host_stop() {
        local name=$1
        [ -n "${FLEET_HOST_NS[$name]:-}" ] || return 0
        [ -n "${FLEET_HOST_MNT[$name]:-}" ] && fleet_kill_in_ns mnt "${FLEET_HOST_MNT[$name]}"
        kill -KILL "${FLEET_HOST_PID[$name]:-}" 2>/dev/null
        wait "${FLEET_HOST_PID[$name]:-}" 2>/dev/null
        fleet_kill_in_ns net "$(fleet_netns_id "${FLEET_HOST_NS[$name]}")"
        ip netns del "${FLEET_HOST_NS[$name]}" 2>/dev/null
        unset "FLEET_HOST_PID[$name]" "FLEET_HOST_NS[$name]" "FLEET_HOST_MNT[$name]"
}

# ---- cleanup ---------------------------------------------------------------------------------

# fleet_netns_id NS: the identity of named network namespace NS as /proc/PID/ns/net shows it.
fleet_netns_id() {
        local inode
        inode=$(stat -c %i "/run/netns/$1" 2>/dev/null) && echo "net:[$inode]"
}

# fleet_kill_in_ns KIND ID: SIGTERM, then after up to 2 s SIGKILL, every process whose KIND
# namespace (mnt, net) is ID (a readlink of /proc/PID/ns/KIND, e.g. "mnt:[4026532301]").
fleet_kill_in_ns() {
        local kind=$1 id=$2 p pids=() left i
        [ -n "$id" ] || return 0
        for p in /proc/[0-9]*; do
                [ "$(readlink "$p/ns/$kind" 2>/dev/null)" = "$id" ] && pids+=("${p#/proc/}")
        done
        [ ${#pids[@]} -gt 0 ] || return 0
        kill -TERM "${pids[@]}" 2>/dev/null
        for i in $(seq 20); do
                left=()
                for p in "${pids[@]}"; do
                        [ -e "/proc/$p" ] && [ "$(readlink "/proc/$p/ns/$kind" 2>/dev/null)" = "$id" ] &&
                                left+=("$p")
                done
                [ ${#left[@]} -eq 0 ] && return 0
                sleep 0.1
        done
        kill -KILL "${left[@]}" 2>/dev/null
}

# fleet_cleanup: PostgreSQL stopped (immediate: it removes its shared memory), every host
# stopped, every process left in a fleet namespace killed, the namespaces removed. Chained
# before lb_cleanup by fleet_setup; safe to run at any stage of the set-up.
fleet_cleanup() {
        local name
        fleet_pg_stop immediate
        for name in "${FLEET_HOSTS[@]}"; do
                fleet_host_stop "$name"
        done
        if [ -e "/run/netns/$FLEET_DB_NS" ]; then
                fleet_kill_in_ns net "$(fleet_netns_id "$FLEET_DB_NS")"
                ip netns del "$FLEET_DB_NS" 2>/dev/null
        fi
        return 0
}
