#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Host tier: the Debian package on a real systemd host. A fresh Debian 12 root made with
# debootstrap from this machine's own apt mirror (cached as /var/lib/machines/lockbox-host-base,
# rebuilt when absent, copied per run so the cache stays clean) is booted with
# "systemd-nspawn -b --private-network"; the .deb built from this tree by
# "dpkg-buildpackage -us -uc -b" is installed into it with apt, and everything below runs
# inside it against its own systemd, logind, journald and sshd (ssh to 127.0.0.1 inside):
#
#   install: role groups with system GIDs, units enabled, Debian's /etc/pam.d/sshd untouched,
#   no profile and no lockboxd until the tenant is set, then dpkg-reconfigure starts both ·
#   systemd-analyze verify and security (<= 2.6) · SPEC 5 over sshd: a user in no role logs
#   in, an operator without a grant is refused, request, two approvals, login with a logind
#   session scope, revoke ends the session and its scope, refused again · socket activation
#   (first use starts lockboxd) · systemctl stop/start/restart/reload · kill -9 of lockboxd:
#   systemd restarts it and a revoke still ends a live session · apt remove (PAM stacks no
#   longer name the module, users log in), reinstall, apt purge (conffile, store gone),
#   reinstall.
#
# Leaves the host untouched: nothing but the container copy (removed at exit) and the cache.
# Needs root, debootstrap and systemd-nspawn; skipped without them.
set -u
: "${abs_top_srcdir:?run through make check or tests/run}"
top=$abs_top_srcdir

if [ "$(id -u)" != 0 ] || ! command -v systemd-nspawn >/dev/null || ! command -v debootstrap >/dev/null ||
   ! command -v dpkg-buildpackage >/dev/null; then
        echo "1..0 # SKIP needs root, systemd-nspawn, debootstrap and dpkg-buildpackage"
        exit 0
fi

n=0 failed=0
ok() {  # ok STATUS DESCRIPTION
        n=$((n + 1))
        if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi
}
diag() { printf '# %s\n' "$*"; }
bail() { echo "Bail out! $*"; exit 1; }
t0=$(date +%s)

BASE=/var/lib/machines/lockbox-host-base
ROOT=/var/lib/machines/lockbox-host-run.$$
WORK=$(mktemp -d /tmp/lb-host.XXXXXX)
NSPAWN_PID="" LEADER=""

cleanup() {
        if [ -n "$NSPAWN_PID" ] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
                kill -TERM "$NSPAWN_PID" 2>/dev/null    # nspawn: halt the container
                for _ in $(seq 100); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 0.1; done
                kill -KILL "$NSPAWN_PID" 2>/dev/null
                wait "$NSPAWN_PID" 2>/dev/null
        fi
        rm -rf --one-file-system "$ROOT" "$WORK"
}
trap cleanup EXIT

# ---- the package --------------------------------------------------------------------------------
# Built in a copy of the tree, so the build leaves nothing in it (and ../*.deb stays out of it).
mkdir -p "$WORK/src"
if [ -d "$top/.git" ]; then
        (cd "$top" && git ls-files --cached --others --exclude-standard debian; cd "$top" && git ls-files) |
                sort -u | (cd "$top" && tar -cf - --ignore-failed-read -T - 2>/dev/null) | tar -xf - -C "$WORK/src"
else
        (cd "$top" && tar -cf - --exclude=./build\* --exclude=autom4te.cache .) | tar -xf - -C "$WORK/src"
fi
(cd "$WORK/src" && dpkg-buildpackage -us -uc -b) >"$WORK/build.log" 2>&1
ok $? "dpkg-buildpackage -us -uc -b builds the package from the tree"
deb=$(ls "$WORK"/pam-lockbox_*.deb 2>/dev/null | head -1)
[ -n "$deb" ] || { tail -30 "$WORK/build.log" | sed 's/^/# /'; bail "no package built"; }
if command -v lintian >/dev/null; then
        tags=$(lintian --pedantic -I "$WORK"/pam-lockbox_*.changes 2>&1 | grep -v 'not recommended')
        ok "$([ -z "$tags" ]; echo $?)" "lintian --pedantic -I: no tag${tags:+: $(echo $tags)}"
fi
t_build=$(date +%s)

# ---- the container ------------------------------------------------------------------------------
mirror() {  # the first Debian archive URI this machine's apt uses
        local m
        m=$(grep -h -s -E '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -1)
        [ -n "$m" ] || m=$(grep -h -s -E '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
                            awk '{print $2}' | grep -v security | head -1)
        echo "${m:-http://deb.debian.org/debian}"
}
# Everything the package and the tests need is installed now: the container then runs with
# a private network and never reaches the archive. The cache is rebuilt when absent or made
# with another package list.
PACKAGES=systemd,systemd-sysv,dbus,dbus-user-session,libpam-systemd,openssh-server,openssh-client,cron,at,sudo,procps,libsqlite3-0,libconfig9,libpq5,libaudit1,libauparse0
if [ ! -x "$BASE/usr/lib/systemd/systemd" ] || [ "$(cat "$BASE/.lockbox-packages" 2>/dev/null)" != "$PACKAGES" ]; then
        rm -rf --one-file-system "$BASE"
        rm -rf --one-file-system "$BASE.tmp"
        mkdir -p /var/lib/machines
        diag "building $BASE with debootstrap from $(mirror)"
        debootstrap --variant=minbase --include="$PACKAGES" bookworm "$BASE.tmp" "$(mirror)" \
                >"$WORK/debootstrap.log" 2>&1 &&
                echo "$PACKAGES" >"$BASE.tmp/.lockbox-packages" && mv "$BASE.tmp" "$BASE"
        ok $? "debootstrap made the base root" || { tail -20 "$WORK/debootstrap.log" | sed 's/^/# /'; bail "no base"; }
fi
cp -a "$BASE" "$ROOT"
cp "$deb" "$ROOT/root/"
t_base=$(date +%s)

boot() {
        # No machined and no systemd as PID 1 on a CI host: --register=no --keep-unit.
        systemd-nspawn -q -b -D "$ROOT" --register=no --keep-unit --private-network -M lbhost$$ \
                </dev/null >>"$WORK/console.log" 2>&1 &
        NSPAWN_PID=$!
        LEADER=""
        for _ in $(seq 300); do
                LEADER=$(pgrep -P "$NSPAWN_PID" | head -1)
                [ -n "$LEADER" ] && [ "$(cat /proc/"$LEADER"/comm 2>/dev/null)" = systemd ] && break
                LEADER=""
                sleep 0.1
        done
        [ -n "$LEADER" ] || return 1
        for _ in $(seq 300); do
                case $(cx systemctl is-system-running 2>/dev/null) in
                running|degraded) return 0 ;;
                esac
                sleep 0.1
        done
        return 1
}
cx() {  # cx CMD...: run CMD as root inside the container
        nsenter -t "$LEADER" -a -- /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
                DEBIAN_FRONTEND=noninteractive HOME=/root "$@"
}
as() {  # as USER CMD...: run CMD as USER (its groups, no PAM) inside the container
        local u=$1; shift
        cx setpriv --reuid "$u" --regid "$u" --init-groups --reset-env -- "$@"
}
wait_for() {  # wait_for TENTHS CMD...: until CMD succeeds, at most TENTHS tenths of a second
        local t=$1; shift
        for _ in $(seq "$t"); do "$@" && return 0; sleep 0.1; done
        return 1
}
ssh_as() {  # ssh_as USER CMD: log in over the container's sshd
        local u=$1; shift
        cx ssh -n -i /root/.ssh/id_ed25519 -o BatchMode=yes -o StrictHostKeyChecking=no \
                -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=10 "$u@127.0.0.1" "$@"
}
sessions_of() { cx loginctl list-sessions --no-legend 2>/dev/null | awk -v u="$1" '$3 == u {print $1}'; }
no_sessions_of() { [ -z "$(sessions_of "$1")" ]; }
main_pid() { cx systemctl show -P MainPID lockboxd.service; }

boot
ok $? "the container boots with systemd as PID 1 (systemd-nspawn -b --private-network)" ||
        { tail -20 "$WORK/console.log" | sed 's/^/# /'; bail "no container"; }
t_boot=$(date +%s)

# ---- install ------------------------------------------------------------------------------------
sshd_pam=$(cx md5sum /etc/pam.d/sshd)
cx apt-get install -y -q "/root/$(basename "$deb")" >"$WORK/apt.log" 2>&1
ok $? "apt-get install ./$(basename "$deb") (offline: every dependency is in the base)" ||
        tail -20 "$WORK/apt.log" | sed 's/^/# /'
gids=$(cx getent group lockbox-operators lockbox-managers lockbox-approvers lockbox-admins | cut -d: -f3)
ok "$([ "$(wc -w <<<"$gids")" = 4 ] && awk '$1 >= 1000 {exit 1}' <<<"$gids"; echo $?)" \
        "the four role groups exist with system GIDs (sysusers.d): $(echo $gids)"
cx systemctl is-enabled -q lockboxd.socket && cx systemctl is-enabled -q lockboxd.service
ok $? "lockboxd.socket and lockboxd.service are enabled (the service starts at boot)"
! cx grep -q pam_lockbox /etc/pam.d/common-account && ! cx systemctl is-active -q lockboxd.service
ok $? "without a tenant the PAM profile stays disabled and lockboxd is not started"
grep -q 'dpkg-reconfigure pam-lockbox' "$WORK/apt.log"
ok $? "and the install says what to do"
cx sh -c 'echo "tenant = \"contoso\";" >>/etc/lockbox/lockbox.conf'
# A container: the kernel serves audit to the initial pid namespace only, so operators'
# commands cannot be recorded here (tests/e2e/test-exec-audit.sh records them on the host).
cx sed -i 's/^record_commands = true;/record_commands = false;/' /etc/lockbox/lockbox.conf
cx dpkg-reconfigure pam-lockbox >>"$WORK/apt.log" 2>&1
ok $? "dpkg-reconfigure pam-lockbox after setting the tenant"
cx grep -q -E '^account[[:space:]]+required[[:space:]]+pam_lockbox.so' /etc/pam.d/common-account &&
        cx grep -q -E '^session[[:space:]]+required[[:space:]]+pam_lockbox.so' /etc/pam.d/common-session
ok $? "pam-auth-update put pam_lockbox.so into common-account and common-session"
[ "$(cx md5sum /etc/pam.d/sshd)" = "$sshd_pam" ] && [ -z "$(cx dpkg --verify openssh-server)" ]
ok $? "Debian's /etc/pam.d/sshd is untouched (dpkg --verify openssh-server is clean)"
cx systemctl is-active -q lockboxd.socket && cx systemctl is-active -q lockboxd.service
ok $? "lockboxd.socket and lockboxd.service are active"
cx lockbox status | grep -q 'Tenant: *contoso'
ok $? "lockbox status reaches lockboxd"
cx journalctl --list-catalog 2>/dev/null | grep -q -i '17cd3d2c692342d7ab0a2c047729b43c'
ok $? "the journal catalog knows the audit entries (updated by the systemd trigger)"
out=$(cx systemd-analyze verify --man=no /lib/systemd/system/lockboxd.service /lib/systemd/system/lockboxd.socket 2>&1)
ok "$([ -z "$out" ]; echo $?)" "systemd-analyze verify: no complaint about the units${out:+: $out}"
score=$(cx systemd-analyze security lockboxd.service 2>/dev/null | sed -n 's/.*exposure level for lockboxd.service: \([0-9.]*\).*/\1/p')
diag "systemd-analyze security lockboxd.service: $score"
# 2.6: the kernel audit sends its records to the host's network namespace only, so lockboxd
# keeps it (no PrivateNetwork=; IPAddressDeny=any and no AF_INET stay) and CAP_AUDIT_*.
ok "$(awk -v s="${score:-99}" 'BEGIN {exit !(s <= 2.6)}'; echo $?)" "systemd-analyze security lockboxd.service is at most 2.6 ($score)"

# ---- users and ssh --------------------------------------------------------------------------------
for u in alice bob carol dave eve; do cx useradd -m -s /bin/bash "$u"; done
cx usermod -aG lockbox-operators alice
cx usermod -aG lockbox-managers bob
cx usermod -aG lockbox-approvers carol
cx usermod -aG lockbox-admins dave
cx ssh-keygen -q -t ed25519 -N '' -f /root/.ssh/id_ed25519 >/dev/null 2>&1 || { cx mkdir -p -m 0700 /root/.ssh &&
        cx ssh-keygen -q -t ed25519 -N '' -f /root/.ssh/id_ed25519 >/dev/null; }
for u in alice bob carol dave eve; do
        cx install -d -m 0700 -o "$u" -g "$u" "/home/$u/.ssh"
        cx install -m 0600 -o "$u" -g "$u" /root/.ssh/id_ed25519.pub "/home/$u/.ssh/authorized_keys"
done

grant() {  # grant: alice requests, bob and carol approve; prints the id
        local id
        id=$(as alice lockbox request --ticket SR-1 --reason host-tier --duration 1h) || return 1
        as bob lockbox approve "$id" >/dev/null && as carol lockbox approve "$id" >/dev/null || return 1
        echo "$id"
}
live_session_ends_on_revoke() {  # live_session_ends_on_revoke LABEL
        local id pid sess scope
        id=$(grant) || { ok 1 "$1: a grant"; return; }
        ssh_as alice 'exec sleep 600' 2>/dev/null &
        pid=$!
        wait_for 100 test -n "$(sessions_of alice)"
        sess=$(sessions_of alice | head -1)
        ok "$([ -n "$sess" ]; echo $?)" "$1: the operator's ssh login has a logind session ($sess)"
        scope=$(cx systemctl list-units --no-legend --plain "session-$sess.scope" | awk '{print $1}')
        ok "$([ "$scope" = "session-$sess.scope" ]; echo $?)" "$1: in its own scope ($scope)"
        as carol lockbox revoke "$id" >/dev/null
        ok $? "$1: carol revokes the grant"
        wait_for 50 no_sessions_of alice
        ok $? "$1: the revoke ends the session" ||
                cx journalctl -q --no-pager -o short-monotonic -u lockboxd.service -n 30 | sed 's/^/#   /'
        wait_for 50 sh -c "! kill -0 $pid 2>/dev/null"
        ok $? "$1: the ssh client is gone"
        ! cx systemctl is-active -q "session-$sess.scope"
        ok $? "$1: the session scope is gone"
        # (Its user manager, user@UID.service, logind stops UserStopDelaySec= after the last session.)
        left=$(cx sh -c 'for p in $(pgrep -u alice); do grep -q "/session-" /proc/$p/cgroup 2>/dev/null && cat /proc/$p/cmdline | tr "\0" " "; done')
        ok "$([ -z "$left" ]; echo $?)" "$1: no process of the operator is left in a session scope${left:+: $left}"
        kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
}

# ---- SPEC 5 over sshd, with logind ----------------------------------------------------------------
out=$(ssh_as eve 'echo in' 2>&1)
ok "$([ "$out" = in ]; echo $?)" "a user in no role logs in over ssh${out:+ ($out)}"
out=$(ssh_as alice 'echo in' 2>&1)
ok "$([ "$out" != in ]; echo $?)" "an operator without a grant is refused over ssh"
cx journalctl -q -o cat LOCKBOX_EVENT=access-denied LOCKBOX_OPERATOR=alice | grep -q .
ok $? "the refusal is audited (LOCKBOX_EVENT=access-denied)"
id=$(grant)
ok $? "alice requests, bob pre-approves, carol approves"
out=$(ssh_as alice 'echo in; cat /proc/self/loginuid' 2>&1)
ok "$([ "$(head -1 <<<"$out")" = in ]; echo $?)" "the operator logs in under the grant"
cx journalctl -q -o cat LOCKBOX_EVENT=access-granted LOCKBOX_OPERATOR=alice | grep -q .
ok $? "the admission is audited (LOCKBOX_EVENT=access-granted)"
as carol lockbox revoke "$id" >/dev/null
live_session_ends_on_revoke "first grant"
out=$(ssh_as alice 'echo in' 2>&1)
ok "$([ "$out" != in ]; echo $?)" "after the revoke the operator is refused again"

# A session no logind session holds (sudo -u, whose stack has no pam_systemd; cron and at
# alike) goes into a cgroup below lockbox-sessions.service, outside lockboxd.service's
# limits, and a revoke ends it there. sudo runs in a unit of the container's own (cx's
# nsenter leaves a process in a cgroup outside the container's view, which lockboxd
# rightly cannot hold).
id=$(grant)
out=$(cx systemd-run -q --wait --pipe sudo -u alice sh -c 'grep "^0::" /proc/self/cgroup' 2>&1 |
      grep -v 'unable to resolve host')
ok "$([[ "$out" =~ ^0::/system.slice/lockbox-sessions.service/session-[0-9a-f-]+$ ]]; echo $?)" \
        "sudo -u the operator under a grant is held below lockbox-sessions.service ($out)"
cx systemd-run -q sudo -u alice sleep 600
wait_for 50 cx pgrep -u alice -x sleep
as carol lockbox revoke "$id" >/dev/null
wait_for 30 sh -c "! nsenter -t $LEADER -a pgrep -u alice -x sleep >/dev/null"
ok $? "the revoke ends the operator's sudo session held there"

# ---- every other PAM service gates operators too (common-account, common-session) ---------------
uid_alice=$(cx id -u alice) uid_eve=$(cx id -u eve)
out=$(cx su -s /bin/sh alice -c 'echo in' 2>&1)
ok "$([ "$out" != in ]; echo $?)" "su to the operator without a grant is refused"
out=$(cx su -s /bin/sh eve -c 'echo in' 2>&1)
ok "$([ "$out" = in ]; echo $?)" "su to a user in no role works"
cx sh -c 'printf "alice ALL=(ALL) NOPASSWD: ALL\neve ALL=(ALL) NOPASSWD: ALL\n" >/etc/sudoers.d/lb-test; chmod 0440 /etc/sudoers.d/lb-test'
! as alice sudo -n true 2>/dev/null
ok $? "sudo by the operator without a grant is refused"
as eve sudo -n true
ok $? "sudo by a user in no role works"
cx loginctl enable-linger alice eve
wait_for 100 cx systemctl is-active -q "user@$uid_eve.service"
ok $? "linger starts the user manager of a user in no role"
! cx systemctl is-active -q "user@$uid_alice.service"
ok $? "linger does not start the user manager of the operator without a grant"
user_run() {  # user_run USER: systemd-run --user --wait /bin/true, as USER
        as "$1" env XDG_RUNTIME_DIR="/run/user/$(cx id -u "$1")" systemd-run -q --wait --user /bin/true
}
! user_run alice 2>/dev/null
ok $? "systemd-run --user as the operator without a grant is refused"
out=$(user_run eve 2>&1)
ok $? "systemd-run --user as a user in no role works${out:+: $out}"
! cx test -e "/run/user/$uid_alice/systemd"
ok $? "the operator has no user manager, so no --user job of theirs runs"
cx loginctl disable-linger alice eve

# cron and at: jobs of the operator, one filed without a grant and one filed under a grant
# that is revoked before they are due, never run; the same jobs of a user in no role do.
cx rm -f /tmp/cron-alice /tmp/cron-eve /tmp/at-alice /tmp/at-eve
for u in alice eve; do
        echo "* * * * * touch /tmp/cron-$u" | as "$u" crontab -
done
echo 'touch /tmp/at-alice' | as alice at now + 1 minute 2>/dev/null
id=$(grant)
echo 'touch /tmp/at-alice' | as alice at now + 1 minute 2>/dev/null
as carol lockbox revoke "$id" >/dev/null
echo 'touch /tmp/at-eve' | as eve at now + 1 minute 2>/dev/null
wait_for 1300 cx test -e /tmp/cron-eve -a -e /tmp/at-eve
ok $? "cron and at run the jobs of a user in no role"
sleep 2
! cx test -e /tmp/cron-alice
ok $? "cron refuses the operator's job (no grant)"
! cx test -e /tmp/at-alice
ok $? "at refuses the operator's jobs, the one filed under a grant that ended included"
cx journalctl -q -o cat _SYSTEMD_UNIT=lockboxd.service LOCKBOX_EVENT=access-denied LOCKBOX_OPERATOR=alice | grep -q -E 'via (cron|atd)'
ok $? "the refusals of cron and atd are audited"
as alice crontab -r

# ---- socket activation, systemctl -----------------------------------------------------------------
# No enforcer, no access: with the socket still listening, stopping lockboxd ends every
# operator session, the one logind holds and the one held below lockbox-sessions.service.
id=$(grant)
ssh_as alice 'exec sleep 600' 2>/dev/null &
ssh_pid=$!
cx systemd-run -q sudo -u alice sleep 700
wait_for 100 sh -c "nsenter -t $LEADER -a pgrep -u alice -fx 'sleep 600' >/dev/null &&
                    nsenter -t $LEADER -a pgrep -u alice -fx 'sleep 700' >/dev/null"
ok $? "stop: under a grant the operator has an ssh session and a sudo session"
t_stop=$(date +%s%N)
cx systemctl stop lockboxd.service
wait_for 20 sh -c "! nsenter -t $LEADER -a pgrep -u alice >/dev/null"
ok $? "systemctl stop lockboxd.service ends every operator process within 2 s ($(( ($(date +%s%N) - t_stop) / 1000000 )) ms)"
! cx systemctl is-active -q lockbox-sessions.service
ok $? "... and stops lockbox-sessions.service with it"
cx journalctl -q -o cat -u lockboxd.service LOCKBOX_EVENT=session-terminated LOCKBOX_REQUEST_ID="$id" |
        grep -q 'lockboxd stopped'
ok $? "... audited as session-terminated: lockboxd stopped"
kill -KILL "$ssh_pid" 2>/dev/null; wait "$ssh_pid" 2>/dev/null
! cx systemctl is-active -q lockboxd.service && cx systemctl is-active -q lockboxd.socket
ok $? "systemctl stop lockboxd.service leaves the socket listening"
cx lockbox status >/dev/null && cx systemctl is-active -q lockboxd.service
ok $? "the first use starts lockboxd through the socket"
as carol lockbox revoke "$id" >/dev/null
ok $? "the grant outlived the stop and is revoked now"
cx systemctl stop lockboxd.socket lockboxd.service
! cx test -e /run/lockbox/lockbox.sock
ok $? "stopping the socket removes the socket file (RemoveOnStop=)"
cx systemctl start lockboxd.socket && cx lockbox status >/dev/null
ok $? "systemctl start lockboxd.socket: lockbox status works again"
pid=$(main_pid)
cx systemctl reload lockboxd.service && [ "$(main_pid)" = "$pid" ]
ok $? "systemctl reload keeps the same process"
wait_for 30 sh -c "nsenter -t $LEADER -a journalctl -q -o cat -u lockboxd.service MESSAGE_ID=eae1242fcf5a481fbb0fdc56ac250c03 | grep -q ."
ok $? "the reload is audited"
cx systemctl restart lockboxd.service && [ "$(main_pid)" != "$pid" ] && cx lockbox status >/dev/null
ok $? "systemctl restart: a new process serves"

# ---- kill -9 ----------------------------------------------------------------------------------------
pid=$(main_pid)
cx kill -KILL "$pid"
wait_for 100 sh -c "p=\$(nsenter -t $LEADER -a systemctl show -P MainPID lockboxd.service); [ \"\$p\" != 0 ] && [ \"\$p\" != $pid ]"
ok $? "after kill -9 systemd restarts lockboxd (Restart=on-failure)"
wait_for 50 sh -c "nsenter -t $LEADER -a lockbox status >/dev/null 2>&1"
ok $? "and it serves again"
live_session_ends_on_revoke "after kill -9"

# ---- audit burst: journald drops none ----------------------------------------------------------------
# AccessCheck (what the module's account stage calls) writes one entry per call; LogRateLimitIntervalSec=0
# keeps journald's per-unit rate limit (10,000 per 30 s by default) from dropping audit entries.
if [ -x "${abs_top_builddir:-}/tests/integration/lb-call" ]; then
        cp "$abs_top_builddir/tests/integration/lb-call" "$ROOT/root/lb-call"
        count() { cx journalctl -q -o json _SYSTEMD_UNIT=lockboxd.service LOCKBOX_EVENT=access-denied LOCKBOX_OPERATOR=alice | wc -l; }
        before=$(count)
        tb=$(date +%s)
        cx sh -c 'i=0; while [ $i -lt 10000 ]; do /root/lb-call /run/lockbox/lockbox.sock 5000 AccessCheck alice burst "" "" >/dev/null 2>&1 || exit 1; i=$((i + 1)); done'
        ok $? "10,000 AccessCheck calls as root in a burst are answered"
        cx journalctl --sync
        got=$(( $(count) - before ))
        diag "burst: 10000 calls in $(( $(date +%s) - tb )) s, $got entries"
        ok "$([ "$got" = 10000 ]; echo $?)" "all 10,000 audit entries arrive in the journal ($got)"
        ! cx journalctl -q -o cat -u systemd-journald.service | grep -q 'Suppressed.*lockboxd'
        ok $? "journald suppressed nothing of lockboxd"
fi

# ---- reboot --------------------------------------------------------------------------------------------
ended=$(grant) && as carol lockbox revoke "$ended" >/dev/null
kept=$(grant)
ssh_as alice 'exec sleep 600' 2>/dev/null &
pid=$!
wait_for 100 test -n "$(sessions_of alice)"
cx systemctl reboot
wait "$NSPAWN_PID" 2>/dev/null
kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
boot
ok $? "the container reboots"
cx systemctl is-active -q lockboxd.service
ok $? "after boot lockboxd runs before its first use (WantedBy=multi-user.target)"
state_of() { as alice lockbox show "$1" --json | grep -o '"state": *"[a-z-]*"' | tr -d ' '; }
[ "$(state_of "$kept")" = '"state":"approved"' ] && [ "$(state_of "$ended")" = '"state":"revoked"' ]
ok $? "the grant and the revoked request persist across the reboot"
no_sessions_of alice
ok $? "no operator session came back"
out=$(ssh_as alice 'echo in' 2>&1)
ok "$([ "$out" = in ]; echo $?)" "the operator logs in under the grant that persisted"
as carol lockbox revoke "$kept" >/dev/null
out=$(ssh_as alice 'echo in' 2>&1)
ok "$([ "$out" != in ]; echo $?)" "and is refused once it is revoked"

# ---- remove, reinstall, purge, reinstall ------------------------------------------------------------
cx apt-get remove -y -q pam-lockbox >>"$WORK/apt.log" 2>&1
ok $? "apt-get remove pam-lockbox"
! cx grep -q pam_lockbox /etc/pam.d/common-account /etc/pam.d/common-session
ok $? "removed: the PAM stacks no longer name pam_lockbox.so"
out=$(ssh_as alice 'echo in' 2>&1)
ok "$([ "$out" = in ]; echo $?)" "removed: users log in, operators included${out:+ ($out)}"
out=$(ssh_as eve 'echo in' 2>&1)
ok "$([ "$out" = in ]; echo $?)" "removed: a user in no role logs in"
! cx systemctl is-active -q lockboxd.socket && ! cx test -e /lib/systemd/system/lockboxd.service
ok $? "removed: no lockboxd unit left running or installed"
cx grep -q 'tenant = "contoso"' /etc/lockbox/lockbox.conf && cx test -e /var/lib/lockbox/lockbox.db
ok $? "removed: the configuration and the store stay (until purge)"

cx apt-get install -y -q "/root/$(basename "$deb")" >>"$WORK/apt.log" 2>&1
ok $? "reinstall after remove"
cx grep -q pam_lockbox /etc/pam.d/common-account && cx systemctl is-active -q lockboxd.service
ok $? "reinstalled with the tenant kept: the profile is enabled and lockboxd runs at once"
out=$(ssh_as alice 'echo in' 2>&1)
ok "$([ "$out" != in ]; echo $?)" "reinstalled: the operator without a grant is refused again"
cx lockbox list --all --json | grep -q "$id"
ok $? "reinstalled: the store kept the old requests"

cx apt-get purge -y -q pam-lockbox >>"$WORK/apt.log" 2>&1
ok $? "apt-get purge pam-lockbox"
! cx test -e /etc/lockbox/lockbox.conf && ! cx test -e /var/lib/lockbox
ok $? "purged: the conffile and the store are gone"
! cx grep -q pam_lockbox /etc/pam.d/common-account /etc/pam.d/common-session &&
        ! cx sh -c 'ls /etc/systemd/system/*.wants/lockboxd.* 2>/dev/null | grep -q .'
ok $? "purged: no PAM line and no unit symlink left"
out=$(ssh_as alice 'echo in' 2>&1)
ok "$([ "$out" = in ]; echo $?)" "purged: users log in"
[ "$(cx md5sum /etc/pam.d/sshd)" = "$sshd_pam" ]
ok $? "purged: /etc/pam.d/sshd was never touched"

cx apt-get install -y -q "/root/$(basename "$deb")" >>"$WORK/apt.log" 2>&1
cx sh -c 'echo "tenant = \"contoso\";" >>/etc/lockbox/lockbox.conf'
cx sed -i 's/^record_commands = true;/record_commands = false;/' /etc/lockbox/lockbox.conf   # a container, as above
cx dpkg-reconfigure pam-lockbox >>"$WORK/apt.log" 2>&1
cx grep -q pam_lockbox /etc/pam.d/common-account && cx lockbox status >/dev/null
ok $? "reinstall after purge, tenant set, dpkg-reconfigure: enabled and serving"
out=$(ssh_as alice 'echo in' 2>&1)
ok "$([ "$out" != in ]; echo $?)" "the operator without a grant is refused"
live_session_ends_on_revoke "after purge and reinstall"

t_end=$(date +%s)
diag "times: build $((t_build - t0)) s, base $((t_base - t_build)) s, boot $((t_boot - t_base)) s, tests $((t_end - t_boot)) s, total $((t_end - t0)) s"
echo "1..$n"
[ "$failed" -eq 0 ]
