# SPDX-License-Identifier: LGPL-2.1-or-later
# A real, isolated sshd for the e2e tier and the demo. Source it after harness.sh and
# call it after lb_setup (so /etc is already the private overlay):
#
#   . "$abs_top_srcdir/tests/lib/harness.sh"
#   . "$abs_top_srcdir/tests/lib/sshd.sh"
#   lb_setup
#   lb_start_daemon
#   lb_sshd_start                      # sshd on 127.0.0.1:$LB_SSHD_PORT, PAM service "sshd"
#   lb_ssh lbt-op1 echo hello          # sets SSH_OUT, SSH_ERR, SSH_RC, SSH_MS
#
# Everything lives in $LB_TMP/sshd (config, host key, log, pid file) and $LB_TMP/keys
# (AuthorizedKeysFile, one file per user). /etc/pam.d/sshd is written into the /etc overlay
# of the private namespace: the host's sshd, its config and its PAM stack are never touched.
# Sessions never get a pty (PermitTTY no), so utmp, wtmp and lastlog are not written either.

SSHD=${SSHD:-/usr/sbin/sshd}
LB_SSHD_DIR=""          # $LB_TMP/sshd, set by lb_sshd_start
LB_SSHD_LOG=""          # sshd's own log (-e, LogLevel VERBOSE)
LB_SSHD_PORT=""
LB_SSHD_PID=""
LB_SSHD_CONFIG_EXTRA=${LB_SSHD_CONFIG_EXTRA:-}   # sshd_config lines that take precedence

# The users sshd will log in (shell, home and key for each); a test may set its own list
# before sourcing this file.
declare -p LB_SSH_USERS >/dev/null 2>&1 || LB_SSH_USERS=(lbt-op1 lbt-op2 lbt-none lbt-admin)

# lb_sshd_pam_stack: /etc/pam.d/sshd of the namespace. Debian's own stack, with pam_lockbox
# added after common-account and common-session, as conf/pam.d-sshd.example says. The auth
# lines are LB_SSHD_PAM_AUTH: Debian's, unless a test sets its own (test-ssh-prompt.sh).
LB_SSHD_PAM_AUTH=${LB_SSHD_PAM_AUTH:-@include common-auth}
lb_sshd_pam_stack() {
        cat >/etc/pam.d/sshd <<EOF
# pam_lockbox e2e: the sshd service of the test namespace (an overlay, not the host's file).
$LB_SSHD_PAM_AUTH
account    required     pam_nologin.so
@include common-account
account    required     $PAM_MODULE config=$LB_CONF
session    required     pam_loginuid.so
session    optional     pam_keyinit.so force revoke
@include common-session
session    required     $PAM_MODULE config=$LB_CONF
session    required     pam_limits.so
EOF
        chmod 0644 /etc/pam.d/sshd
}

# lb_sshd_prepare_users: a home in the temp dir, /bin/sh, a password field that is unusable
# for password logins ('*'), and a key pair whose public half is in $LB_TMP/keys/USER.
# (useradd's locked '!' would do as well: with UsePAM yes sshd skips its own locked-account
# check and pam_unix's account stage only looks at expiry; '*' just says what we mean.)
lb_sshd_prepare_users() {
        local u
        mkdir -p "$LB_TMP/keys" "$LB_TMP/home"
        chmod 0755 "$LB_TMP/keys" "$LB_TMP/home"
        for u in "${LB_SSH_USERS[@]}"; do
                mkdir -p "$LB_TMP/home/$u"
                chown "$u:" "$LB_TMP/home/$u"
                chmod 0755 "$LB_TMP/home/$u"
                usermod -s /bin/sh -d "$LB_TMP/home/$u" -p '*' "$u" || return 1
                rm -f "$LB_TMP/keys/$u.key" "$LB_TMP/keys/$u.key.pub"
                ssh-keygen -q -t ed25519 -N '' -C "$u@lockbox-test" -f "$LB_TMP/keys/$u.key" || return 1
                cp "$LB_TMP/keys/$u.key.pub" "$LB_TMP/keys/$u"
                chmod 0644 "$LB_TMP/keys/$u"
        done
}

lb_sshd_write_config() {
        local port=$1
        cat >"$LB_SSHD_DIR/sshd_config" <<EOF
# pam_lockbox e2e sshd: loopback only, public keys only, PAM for account and session.
# Set by the test (LB_SSHD_CONFIG_EXTRA; sshd takes the first value of a keyword):
${LB_SSHD_CONFIG_EXTRA:-}
# Defaults of the harness:
ListenAddress 127.0.0.1
Port $port
HostKey $LB_SSHD_DIR/ssh_host_ed25519_key
PidFile $LB_SSHD_DIR/sshd.pid
AuthorizedKeysFile $LB_TMP/keys/%u
AuthorizedPrincipalsFile none
UsePAM yes
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
HostbasedAuthentication no
PermitRootLogin no
StrictModes no
PermitTTY no
PrintMotd no
PrintLastLog no
UseDNS no
X11Forwarding no
AllowTcpForwarding no
AllowAgentForwarding no
LogLevel VERBOSE
SyslogFacility AUTH
MaxStartups 100
LoginGraceTime 30
EOF
}

# lb_sshd_free_port: a port nobody listens on now (the kernel's pick when python3 is
# there, else a random one; lb_sshd_start retries if it was taken meanwhile).
lb_sshd_free_port() {
        if command -v python3 >/dev/null 2>&1; then
                python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' \
                        2>/dev/null && return 0
        fi
        echo $((20000 + RANDOM % 40000))
}

# lb_sshd_start: start sshd in the background (-D -e) and wait until it listens. Sets
# LB_SSHD_PORT and LB_SSHD_PID, and adds the pid to LB_PIDS so lb_cleanup stops it.
lb_sshd_start() {
        local attempt i port

        [ -n "${LB_TMP:-}" ] || { diag "call lb_setup before lb_sshd_start"; return 1; }
        LB_SSHD_DIR="$LB_TMP/sshd"
        LB_SSHD_LOG="$LB_SSHD_DIR/sshd.log"
        [ -x "$SSHD" ] || { diag "$SSHD is missing (apt-get install openssh-server)"; return 1; }
        command -v ssh >/dev/null || { diag "ssh is missing (apt-get install openssh-client)"; return 1; }
        getent passwd sshd >/dev/null || { diag "the privilege separation user sshd is missing"; return 1; }
        mkdir -p "$LB_SSHD_DIR"
        chmod 0755 "$LB_SSHD_DIR"

        # The privilege separation directory (an empty root-owned chroot) is compiled into
        # sshd. Debian's ssh.service creates the same directory at boot; we create it if it
        # is missing and leave it: tests running in parallel share it, and removing it under
        # another test's sshd would break that sshd's logins.
        if [ ! -d /run/sshd ]; then
                mkdir -m 0755 /run/sshd || return 1
        fi
        trap 'lb_sshd_cleanup; lb_cleanup' EXIT

        [ -f "$LB_SSHD_DIR/ssh_host_ed25519_key" ] ||
                ssh-keygen -q -t ed25519 -N '' -f "$LB_SSHD_DIR/ssh_host_ed25519_key" || return 1
        lb_sshd_prepare_users || { diag "cannot prepare the ssh users"; return 1; }
        lb_sshd_pam_stack

        for attempt in 1 2 3 4 5 6 7 8 9 10; do
                port=$(lb_sshd_free_port)
                lb_sshd_write_config "$port"
                "$SSHD" -t -f "$LB_SSHD_DIR/sshd_config" 2>"$LB_SSHD_DIR/sshd-t.log" || {
                        diag "sshd -t rejects the config:"; sed 's/^/#   /' "$LB_SSHD_DIR/sshd-t.log"
                        return 1
                }
                [ -s "$LB_SSHD_LOG" ] && cat "$LB_SSHD_LOG" >>"$LB_SSHD_LOG.earlier"
                # In the sanitizer build the module needs ASan's runtime loaded first; sshd's
                # own allocations at exit are not ours to judge, so leak checks are off there.
                env ${LB_SANITIZER_PRELOAD:+LD_PRELOAD="$LB_SANITIZER_PRELOAD"} \
                    ${LB_SANITIZER_PRELOAD:+ASAN_OPTIONS="detect_leaks=0:abort_on_error=1"} \
                    "$SSHD" -D -e -f "$LB_SSHD_DIR/sshd_config" 2>"$LB_SSHD_LOG" </dev/null &
                LB_SSHD_PID=$!
                for i in $(seq 200); do
                        if grep -q "Server listening on 127.0.0.1 port $port" "$LB_SSHD_LOG"; then
                                LB_SSHD_PORT=$port
                                echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$LB_SSHD_DIR/ssh_host_ed25519_key.pub")" \
                                        >"$LB_SSHD_DIR/known_hosts"
                                LB_PIDS+=("$LB_SSHD_PID")
                                return 0
                        fi
                        kill -0 "$LB_SSHD_PID" 2>/dev/null || break
                        sleep 0.05
                done
                kill -TERM "$LB_SSHD_PID" 2>/dev/null
                wait "$LB_SSHD_PID" 2>/dev/null
                LB_SSHD_PID=""
                grep -qi "bind\|address already in use" "$LB_SSHD_LOG" || break
        done
        diag "sshd did not start; its log:"
        sed 's/^/#   /' "$LB_SSHD_LOG"
        return 1
}

lb_sshd_stop() {
        [ -n "$LB_SSHD_PID" ] || return 0
        # Our sshd's per-connection children first (the listener leaves them running).
        pkill -TERM -P "$LB_SSHD_PID" 2>/dev/null
        kill -TERM "$LB_SSHD_PID" 2>/dev/null
        wait "$LB_SSHD_PID" 2>/dev/null
        LB_SSHD_PID=""
}

lb_sshd_cleanup() {
        lb_sshd_stop
}

# lb_ssh_command USER: the ssh client command line for USER, in the array LB_SSH_CMD.
# The client reads no ~/.ssh/config, agent or key of root's; it trusts exactly the test
# host key (known_hosts of our own), so it prints no "Permanently added" warning. LogLevel
# stays INFO: that is the level at which ssh shows what the server's PAM stack tells the
# user (the lockbox refusal). ServerAlive* make the client give up after ~6 s of silence
# from the server, so a hung login fails a test quickly.
lb_ssh_command() {
        local user=$1
        LB_SSH_CMD=(ssh -F /dev/null -i "$LB_TMP/keys/$user.key" -p "$LB_SSHD_PORT"
                -o IdentitiesOnly=yes -o IdentityAgent=none
                -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$LB_SSHD_DIR/known_hosts"
                -o GlobalKnownHostsFile=/dev/null -o UpdateHostKeys=no
                -o BatchMode=yes -o ConnectTimeout=5 -o LogLevel=INFO
                -o ServerAliveInterval=2 -o ServerAliveCountMax=3
                "$user@127.0.0.1")
}

# lb_ssh USER COMMAND...: log in as USER over ssh and run COMMAND. Sets SSH_OUT, SSH_ERR,
# SSH_RC (ssh's exit status: 255 when the login is refused) and SSH_MS (wall time in ms).
lb_ssh() {
        local user=$1 start end; shift
        lb_ssh_command "$user"
        start=$(date +%s%N)
        SSH_OUT=$("${LB_SSH_CMD[@]}" "$@" 2>"$LB_TMP/ssh.stderr" </dev/null)
        SSH_RC=$?
        end=$(date +%s%N)
        SSH_ERR=$(cat "$LB_TMP/ssh.stderr")
        SSH_MS=$(((end - start) / 1000000))
}

